"""The administration record (``tareplanner.administration/1``): dose-calibrator readings of
each treatment site, the delivered activity with decay, and its comparison with the written
directive. It holds its inputs, so ``tareplanner replay`` recomputes it. See
docs/treatment-day.md."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping

from ..errors import FieldValueError, SchemaError, UnknownNameError
from ..physics.administration import (Reading, delivered_activity, deviation_fraction,
                                      meets_criterion)
from .case import canonical_sha256
from .directive import validate_directive
from .fields import check_keys, number, require_object, suggestion, timestamp
from .provenance import software_versions

ADMINISTRATION_SCHEMA = "tareplanner.administration/1"
READING_FIELDS = ("activity_gbq", "time")
SITE_FIELDS = ("treatment_site", "vial", "residual", "administration_time")


def _reading(raw: Any, field: str) -> Reading:
    obj = require_object(raw, field)
    check_keys(obj, field, READING_FIELDS)
    return Reading(number(obj, "activity_gbq", field, minimum=0, maximum=100),
                   timestamp(obj, "time", field, required=True))


def parse_readings(document: Any, directive: dict) -> list[dict]:
    """Validated readings: one entry per treatment site of the directive, each with its vial
    reading(s), residual reading(s) and administration time."""
    sites = [p["treatment_site"] for p in directive["positions"]]
    if not isinstance(document, list) or not document:
        raise SchemaError("readings", document, "a list with one entry per treatment site")
    seen = set()
    out = []
    for i, raw in enumerate(document):
        field = f"readings[{i}]"
        obj = require_object(raw, field)
        check_keys(obj, field, SITE_FIELDS)
        site = obj.get("treatment_site")
        if site not in sites:
            raise UnknownNameError(f"{field}.treatment_site", site,
                                   "a treatment site of the directive: " + ", ".join(sites),
                                   suggestion(site, sites))
        if site in seen:
            raise FieldValueError(f"{field}.treatment_site", site, "each site once")
        seen.add(site)
        vial = obj.get("vial")
        if not isinstance(vial, list) or not vial:
            raise FieldValueError(f"{field}.vial", vial, "a non-empty list of readings "
                                  "{activity_gbq, time} before the administration")
        residual = obj.get("residual", [])
        if not isinstance(residual, list):
            raise FieldValueError(f"{field}.residual", residual, "a list of readings "
                                  "{activity_gbq, time} after the administration")
        admin = timestamp(obj, "administration_time", field, required=True)
        vial_r = [_reading(r, f"{field}.vial[{k}]") for k, r in enumerate(vial)]
        residual_r = [_reading(r, f"{field}.residual[{k}]") for k, r in enumerate(residual)]
        for k, r in enumerate(vial_r):
            if r.time > admin:
                raise FieldValueError(f"{field}.vial[{k}].time", r.time.isoformat(),
                                      f"at or before the administration ({admin.isoformat()})")
        for k, r in enumerate(residual_r):
            if r.time < admin:
                raise FieldValueError(f"{field}.residual[{k}].time", r.time.isoformat(),
                                      f"at or after the administration ({admin.isoformat()})")
        out.append({"treatment_site": site, "vial": vial_r, "residual": residual_r,
                    "administration_time": admin, "raw": obj})
    missing = [s for s in sites if s not in seen]
    if missing:
        raise FieldValueError("readings", sorted(seen), "readings for every treatment site of "
                              "the directive; missing: " + ", ".join(missing))
    return out


def administration_record(directive: Mapping[str, Any], readings: Any, *,
                          site_tolerance_fraction: float | None = None,
                          created: datetime | None = None) -> dict:
    """Delivered activity per treatment site and its comparison with the directive."""
    directive = validate_directive(directive)
    parsed = parse_readings(readings, directive)
    half_life = directive["nuclide"]["half_life_h"]
    criterion = directive["criteria"]["medical_event"]
    threshold = criterion["relative_deviation"]
    if site_tolerance_fraction is not None:
        number({"v": site_tolerance_fraction}, "v", "--site-tolerance", exclusive_minimum=0,
               maximum=1)
    prescribed = {p["treatment_site"]: p["prescribed_activity_gbq"]
                  for p in directive["positions"]}
    sites, warnings = [], []
    for entry in parsed:
        site = entry["treatment_site"]
        try:
            d = delivered_activity(entry["vial"], entry["residual"],
                                   entry["administration_time"], half_life)
        except ValueError as exc:
            raise FieldValueError(f"readings[{site}]", "vial and residual readings",
                                  "a residual below the vial activity", str(exc)) from None
        deviation = deviation_fraction(d.delivered_activity_gbq, prescribed[site])
        event = meets_criterion(deviation, threshold)
        beyond_site = (site_tolerance_fraction is not None
                       and meets_criterion(deviation, site_tolerance_fraction))
        sites.append({"treatment_site": site,
                      "administration_time": entry["administration_time"].isoformat(),
                      "prescribed_activity_gbq": prescribed[site],
                      "vial_at_administration_gbq": d.vial_at_administration_gbq,
                      "residual_at_administration_gbq": d.residual_at_administration_gbq,
                      "residual_fraction": d.residual_fraction,
                      "delivered_activity_gbq": d.delivered_activity_gbq,
                      "deviation_fraction": deviation, "medical_event": event,
                      "beyond_site_tolerance": beyond_site})
        if event:
            warnings.append({"code": "medical-event",
                             "message": f"{site}: delivered {d.delivered_activity_gbq:.3f} GBq "
                                        f"differs from the prescribed {prescribed[site]:.3f} GBq "
                                        f"by {deviation:+.1%} ({threshold:.0%} or more: "
                                        f"{criterion['source']}); report as the regulation "
                                        "requires"})
        elif beyond_site:
            warnings.append({"code": "beyond-site-tolerance",
                             "message": f"{site}: delivered differs from prescribed by "
                                        f"{deviation:+.1%} (site tolerance "
                                        f"{site_tolerance_fraction:.0%})"})
        if not entry["residual"]:
            warnings.append({"code": "no-residual-reading",
                             "message": f"{site}: no residual reading: the whole vial is "
                                        "taken as delivered"})
    return {
        "schema": ADMINISTRATION_SCHEMA,
        "created": (created or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        "software": software_versions(),
        "directive_sha256": canonical_sha256(directive),
        "plan_input_sha256": directive["plan_input_sha256"],
        "case_id": directive.get("case_id"), "patient_id": directive.get("patient_id"),
        "nuclide": directive["nuclide"],
        "criterion": {**criterion, "site_tolerance_fraction": site_tolerance_fraction},
        "readings": [e["raw"] for e in parsed],
        "sites": sites,
        "total_delivered_activity_gbq": sum(s["delivered_activity_gbq"] for s in sites),
        "total_prescribed_activity_gbq": sum(prescribed.values()),
        "medical_event": any(s["medical_event"] for s in sites),
        "warnings": warnings,
        "directive": directive,
    }


def validate_administration(document: Any, where: str = "administration record") -> dict:
    doc = require_object(document, where)
    if doc.get("schema") != ADMINISTRATION_SCHEMA:
        raise SchemaError(f"{where}.schema", doc.get("schema"), ADMINISTRATION_SCHEMA)
    for key in ("directive", "readings", "sites", "total_delivered_activity_gbq"):
        if key not in doc:
            raise SchemaError(f"{where}.{key}", None, "present")
    return doc


def replay_administration(record: dict) -> dict:
    """Recompute an administration record from the directive and readings it holds."""
    again = administration_record(record["directive"], record["readings"],
                                  site_tolerance_fraction=record["criterion"].get(
                                      "site_tolerance_fraction"))
    from .record_diff import diff_records
    differences: list = []
    diff_records(record, again, "", differences)
    return {"identical": not differences, "input_changed": False, "differences": differences,
            "software": {"record": record["software"], "replay": again["software"]}}


def administration_lines(record: dict) -> list[str]:
    """The administration record as report/text lines."""
    lines = [f"Administration ({record['schema']}); directive {record['directive_sha256'][:16]}"]
    for s in record["sites"]:
        lines.append(f"  {s['treatment_site']}: administered {s['administration_time']}; vial "
                     f"{s['vial_at_administration_gbq']:.3f} GBq, residual "
                     f"{s['residual_at_administration_gbq']:.3f} GBq "
                     f"({s['residual_fraction']:.1%}); delivered "
                     f"{s['delivered_activity_gbq']:.3f} GBq against "
                     f"{s['prescribed_activity_gbq']:.3f} prescribed "
                     f"({s['deviation_fraction']:+.1%})"
                     + ("  MEDICAL EVENT" if s["medical_event"] else ""))
    lines.append(f"  total delivered {record['total_delivered_activity_gbq']:.3f} GBq of "
                 f"{record['total_prescribed_activity_gbq']:.3f} GBq prescribed")
    for w in record["warnings"]:
        lines.append(f"  [{w['code']}] {w['message']}")
    return lines
