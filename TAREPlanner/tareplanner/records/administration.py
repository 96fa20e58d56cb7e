"""The administration record (``tareplanner.administration/1``): dose-calibrator readings of
each treatment site, the delivered activity with decay, and its comparison with the written
directive. It holds its inputs, so ``tareplanner replay`` recomputes it. See
docs/treatment-day.md."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping

from ..errors import FieldValueError, SchemaError, UnknownNameError
from ..physics.administration import (Reading, delivered_activity, deviation_fraction,
                                      exceeds_organ_dose_criterion, likely_slip,
                                      meets_criterion)
from .case import canonical_sha256
from .directive import validate_directive
from .directive import criteria
from .fields import check_keys, check_reason, number, require_object, suggestion, timestamp
from .provenance import software_versions

ADMINISTRATION_SCHEMA = "tareplanner.administration/1"
READING_FIELDS = ("activity_gbq", "time")
SITE_FIELDS = ("treatment_site", "vial", "residual", "administration_time")


#: readings above this are no vial of any product (GBq)
MAX_READING_GBQ = 100


def _reading(raw: Any, field: str) -> Reading:
    obj = require_object(raw, field)
    check_keys(obj, field, READING_FIELDS)
    value = obj.get("activity_gbq")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not \
            0 <= value <= MAX_READING_GBQ or value != value:
        raise FieldValueError(f"{field}.activity_gbq", value,
                              f"a dose-calibrator reading in GBq, >= 0 and <= "
                              f"{MAX_READING_GBQ} GBq")
    return Reading(float(value), timestamp(obj, "time", field, required=True))


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


def largest_vial_gbq(product_key: str) -> tuple[float | None, str]:
    """The largest activity one vial of the product holds at calibration (GBq), with where it
    comes from; None for a patient-specific product."""
    from .. import catalogue

    try:
        supply = dict(catalogue.product(product_key).supply or {})
    except Exception:  # an unknown product: no vial to compare with
        return None, ""
    sizes = [float(v) for v in supply.get("vial_sizes_gbq") or []]
    sizes += [float(v) for v in (supply.get("custom_vial_range_gbq") or [])[1:]]
    if supply.get("vial_activity_gbq"):
        sizes.append(float(supply["vial_activity_gbq"])
                     * (1 + float(supply.get("vial_activity_tolerance_fraction") or 0)))
    if not sizes:
        return None, ""
    return max(sizes), str(supply.get("source", "tareplanner/data/products.json"))


def _slip_text(entered: float, expected: float) -> str:
    """The likely slip of a reading ``entered`` where about ``expected`` was due."""
    rules = criteria()["plausibility"]
    found = likely_slip(entered / expected if expected > 0 else float("inf"),
                        [(s["factor"], s["slip"]) for s in rules["slips"]],
                        rules["slip_tolerance_fraction"])
    if found is None:
        return "check the units (GBq) and the decimal point"
    factor, slip = found
    return f"likely {slip}: did you mean {entered / factor:.4g} GBq?"


def question_readings(directive: Mapping[str, Any], parsed: list[dict], sites: list[dict],
                      fields: Mapping[str, str] | None = None) -> list[dict]:
    """Readings that are not plausible: a delivered activity below ``low_factor`` or above
    ``high_factor`` times the prescription (``data/administration.json``, with its reason),
    or a vial reading above the product's largest vial. Each names the reading (the option
    typed, when ``fields`` maps the readings' paths to it), its value in GBq and the likely
    slip."""
    rules = criteria()["plausibility"]
    low, high = rules["low_factor"], rules["high_factor"]
    largest, source = largest_vial_gbq((directive.get("product") or {}).get("key", ""))
    fields = fields or {}
    questions = []
    for index, (entry, site) in enumerate(zip(parsed, sites)):
        name = site["treatment_site"]
        ratio = site["delivered_activity_gbq"] / site["prescribed_activity_gbq"]
        for k, reading in enumerate(entry["vial"]):
            path = f"readings[{index}].vial[{k}]"
            if largest is not None and reading.activity_gbq > largest:
                questions.append({
                    "treatment_site": name, "reading": fields.get(path, path),
                    "value_gbq": reading.activity_gbq,
                    "message": f"{fields.get(path, path)}: {reading.activity_gbq:g} GBq is "
                               f"above the largest vial of the product ({largest:g} GBq; "
                               f"{source[:80]}); "
                               + _slip_text(reading.activity_gbq,
                                            site["prescribed_activity_gbq"])})
        if not low <= ratio <= high:
            vial = entry["vial"][0].activity_gbq if len(entry["vial"]) == 1 else None
            path = f"readings[{index}].vial[0]"
            named = fields.get(path, path) if vial is not None else f"the readings of {name}"
            # nothing delivered (a vial read as 0 GBq): no activity to compare the reading with
            expected_vial = (vial / ratio) if vial is not None and ratio > 0 else None
            questions.append({
                "treatment_site": name, "reading": named, "value_gbq": vial,
                "message": f"{name}: the readings imply {site['delivered_activity_gbq']:.4g} "
                           f"GBq delivered, {ratio:.3g} x the prescribed "
                           f"{site['prescribed_activity_gbq']:.4g} GBq (plausible: "
                           f"{low:g} x to {high:g} x)"
                           + (f"; {named}: {vial:g} GBq where about {expected_vial:.3g} GBq "
                              f"was expected, " + _slip_text(vial, expected_vial)
                              if expected_vial is not None else
                              "; check the units (GBq) and the decimal point of each reading")})
    return questions


def administration_record(directive: Mapping[str, Any], readings: Any, *,
                          site_tolerance_fraction: float | None = None,
                          created: datetime | None = None,
                          confirm_reason: str | None = None,
                          fields: Mapping[str, str] | None = None) -> dict:
    """Delivered activity per treatment site and its comparison with the directive.

    Readings that are not plausible (:func:`question_readings`) are refused unless
    ``confirm_reason`` says why they are right; the reason is then recorded. ``fields`` maps
    the readings' paths (``readings[0].vial[0]``) to what the user typed, for the messages."""
    from .chain import parent_ref

    directive = validate_directive(directive)
    parsed = parse_readings(readings, directive)
    half_life = directive["nuclide"]["half_life_h"]
    criterion = directive["criteria"]["medical_event"]
    threshold = criterion["relative_deviation"]
    organ = criteria()["criteria"]["medical_event_organ_dose"]
    if site_tolerance_fraction is not None:
        number({"--site-tolerance": site_tolerance_fraction}, "--site-tolerance", "",
               exclusive_minimum=0, maximum=1)
    if confirm_reason is not None:
        confirm_reason = check_reason(confirm_reason, "--confirm-readings")
    prescribed = {p["treatment_site"]: p["prescribed_activity_gbq"]
                  for p in directive["positions"]}
    sites, warnings = [], []
    for index, entry in enumerate(parsed):
        site = entry["treatment_site"]
        try:
            d = delivered_activity(entry["vial"], entry["residual"],
                                   entry["administration_time"], half_life)
        except ValueError as exc:
            where = (fields or {}).get(f"readings[{index}].residual[0]", f"readings[{site}]")
            raise FieldValueError(where, "vial and residual readings",
                                  "a residual below the vial activity (GBq)",
                                  str(exc)) from None
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
    questions = question_readings(directive, parsed, sites, fields)
    if questions and confirm_reason is None:
        first = questions[0]
        raise FieldValueError(first["reading"], first["value_gbq"] if first["value_gbq"]
                              is not None else "readings",
                              "a plausible reading in GBq (delivered "
                              f"{criteria()['plausibility']['low_factor']:g} x to "
                              f"{criteria()['plausibility']['high_factor']:g} x the "
                              "prescription, within the product's largest vial), or "
                              "--confirm-readings REASON when it is right",
                              " | ".join(q["message"] for q in questions))
    if fields:  # the record names the readings by their place in it, not the options typed
        questions = question_readings(directive, parsed, sites)
    for q in questions:
        warnings.append({"code": "reading-confirmed",
                         "message": f"{q['message']}; confirmed: {confirm_reason}"})
    delivered_total = sum(s["delivered_activity_gbq"] for s in sites)
    lung = _lung_event(directive, delivered_total, organ)
    if lung.get("medical_event"):
        warnings.append({"code": "medical-event-lung",
                         "message": f"lung dose {lung['estimated_dose_gy']:.2f} Gy from the "
                                    f"delivered activity exceeds the directive's "
                                    f"{lung['expected_dose_gy']:.2f} Gy by "
                                    f"{lung['estimated_dose_gy'] - lung['expected_dose_gy']:.2f}"
                                    " Gy" + (f" and {lung['relative_excess']:+.0%}"
                                             if lung["relative_excess"] is not None else "")
                                    + f" ({organ['source'][:160]}…); report as the "
                                    "regulation requires"})
    for o in directive.get("overrides") or []:
        warnings.append({"code": "limit-override",
                         "message": f"{o['treatment_site']}: prescribed beyond a limit "
                                    f"({o['exceeded']}), accepted by {o['by']} on "
                                    f"{o['when']}: {o['reason']}"})
    return {
        "schema": ADMINISTRATION_SCHEMA,
        "created": (created or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        "software": software_versions(),
        "parents": {"directive": parent_ref(directive)},
        "directive_sha256": canonical_sha256(directive),
        "plan_input_sha256": directive["plan_input_sha256"],
        "plan_sha256": directive.get("plan_sha256"),
        "case_id": directive.get("case_id"), "patient_id": directive.get("patient_id"),
        "nuclide": directive["nuclide"],
        "criterion": {**criterion, "site_tolerance_fraction": site_tolerance_fraction},
        "lung_criterion": lung,
        "plausibility": {k: criteria()["plausibility"][k]
                         for k in ("low_factor", "high_factor", "reason")}
        | {"questioned": questions, "confirmed_reason": confirm_reason if questions else None},
        "readings": [e["raw"] for e in parsed],
        "sites": sites,
        "total_delivered_activity_gbq": delivered_total,
        "total_prescribed_activity_gbq": sum(prescribed.values()),
        "medical_event": any(s["medical_event"] for s in sites)
        or bool(lung.get("medical_event")),
        "overrides": list(directive.get("overrides") or []),
        "warnings": warnings,
        "directive": directive,
    }


def _lung_event(directive: Mapping[str, Any], delivered_total_gbq: float,
                organ: Mapping[str, Any]) -> dict:
    """The lung-dose criterion of 10 CFR 35.3045(a)(3): the lung dose estimated from the
    delivered activity (the plan's lung dose per delivered GBq, CF * LSF / M_lung, the
    residual already left out of the delivered activity) against the directive's."""
    per_gbq = directive.get("lung_gy_per_delivered_gbq")
    expected = directive.get("lung_dose_gy")
    if not isinstance(per_gbq, (int, float)) or not isinstance(expected, (int, float)):
        return {"applicable": False, "reason": "the directive holds no lung dose per GBq "
                                               "(written by an older version)",
                "source": organ["source"]}
    dose = per_gbq * delivered_total_gbq
    return {"applicable": True, "organ": organ["organ"], "expected_dose_gy": expected,
            "estimated_dose_gy": dose,
            "relative_excess": dose / expected - 1 if expected > 0 else None,
            "excess_dose_gy": organ["excess_dose_gy"],
            "relative_excess_criterion": organ["relative_excess"],
            "medical_event": exceeds_organ_dose_criterion(dose, expected, organ["excess_dose_gy"],
                                                          organ["relative_excess"]),
            "basis": organ["quantity"], "source": organ["source"]}


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
                                      "site_tolerance_fraction"),
                                  confirm_reason=(record.get("plausibility") or {}).get(
                                      "confirmed_reason"))
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
