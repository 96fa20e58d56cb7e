"""The written directive (``tareplanner.directive/1``) generated from a plan record.

It states, per injection position (treatment site), the radionuclide, the product and the
prescribed activity with the doses it is planned to give, the lung dose, the criteria the
administration is checked against, and blank signature fields. Changes made before the
administration are kept in ``changes`` (what, from, to, why, by whom, when); the prescription
in force is the one after the last change. See docs/treatment-day.md.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from typing import Any

from ..errors import FieldValueError, SchemaError, UnknownNameError
from .case import canonical_sha256
from .fields import check_name, check_reason, number, require_object, suggestion
from .provenance import software_versions

DIRECTIVE_SCHEMA = "tareplanner.directive/1"


@lru_cache(maxsize=None)
def criteria() -> dict:
    """Administration criteria with their sources (``data/administration.json``)."""
    text = resources.files("tareplanner.data").joinpath("administration.json").read_text("utf-8")
    return json.loads(text)


def _plan_doses(plan: dict) -> dict:
    """The doses of a plan record that a directive states beside the activities: lung (this
    treatment and cumulative), whole liver and whole normal liver, and the limits exceeded."""
    whole = plan.get("whole_liver") or {}
    return {"lung_dose_gy": plan["lung_dose_gy"],
            "lung_dose_cumulative_gy": plan.get("lung_dose_cumulative_gy"),
            "whole_liver_dose_gy": plan.get("whole_liver_dose_gy"),
            "whole_normal_liver_dose_gy": whole.get("whole_normal_liver_dose_gy"),
            "violations": [dict(v) for v in plan.get("violations") or []]
            + [dict(v, position=p["name"]) for p in plan["positions"]
               for v in p.get("violations") or []],
            # the plan's checks at these activities: recommendations, probabilities of
            # exceeding a limit, ordering (after a change: of the re-plan)
            "plan_warnings": [dict(w) for w in plan.get("warnings") or []]}


def _position(pos: dict) -> dict:
    return {"treatment_site": pos["name"],
            "prescribed_activity_gbq": pos["activity_gbq"],
            "planned_doses_gy": {"normal_liver": pos["normal_dose_gy"],
                                 "perfused": pos["perfused_dose_gy"],
                                 "tumours": {t["name"]: t["dose_gy"] for t in pos["tumours"]}},
            "limited_by": pos["limited_by"]}


def directive_from_plan(plan: dict, *, created: datetime | None = None) -> dict:
    """A written directive for every position of a plan record."""
    from .chain import parent_ref

    if not isinstance(plan, dict) or plan.get("schema") != "tareplanner.plan/1":
        raise SchemaError("plan.schema", plan.get("schema") if isinstance(plan, dict) else None,
                          "tareplanner.plan/1")
    c = criteria()
    positions = []
    for pos in plan["positions"]:
        if not pos["activity_gbq"] > 0:
            raise FieldValueError(f"plan.positions[{pos['name']}].activity_gbq",
                                  pos["activity_gbq"], "a prescribed activity > 0")
        positions.append(_position(pos))
    return {
        "schema": DIRECTIVE_SCHEMA,
        "created": (created or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        "software": software_versions(),
        "parents": {"plan": parent_ref(plan)},
        "plan_input_sha256": plan["input_sha256"],
        "plan_sha256": canonical_sha256(plan),
        "case_id": plan.get("case_id"), "patient_id": plan.get("patient_id"),
        "product": plan["product"], "nuclide": plan["nuclide"],
        "method": plan["method"], "dose_model": plan["dose_model"],
        "treatment_time": plan.get("treatment_time"),
        "prescription_basis": "activity at administration (GBq), with the absorbed doses it is "
                              "planned to give",
        "positions": positions,
        **_plan_doses(plan),
        # CF * LSF / M_lung: the lung dose per GBq delivered (the residual is already out of
        # a delivered activity), for the lung criterion of 10 CFR 35.3045(a)(3)
        "lung_gy_per_delivered_gbq": plan["nuclide"]["energy_per_activity_j_per_gbq"]
        * plan["lung_shunt_fraction"] / plan["lung_mass_kg"],
        "criteria": c["criteria"],
        "regulation": c["regulation"],
        "changes": [],
        "overrides": [],
        "signatures": {"authorised_user": None, "date": None,
                       "after_administration": {"authorised_user": None, "date": None}},
    }


#: ``limited_by`` of a treatment site whose activity a change set
LIMITED_BY_CHANGE = "changed-activity"


def apply_change(directive: dict, replanned: dict, site: str, activity_gbq: float,
                 reason: str, by: str, when: datetime | str | None = None,
                 override_reason: str | None = None) -> dict:
    """A copy of ``directive`` with the prescribed activity of ``site`` changed (10 CFR 35.40:
    a change before administration is dated and signed), every dose taken from ``replanned``:
    the plan recomputed with every site at its prescribed activity (``tareplanner.replan``),
    so the lung (single and cumulative), whole-liver and whole-normal-liver doses and every
    limit are those of the new activities. A change that exceeds a limit is refused unless
    ``override_reason`` says why it is accepted; the override is then kept in ``overrides``
    and shown on every later record."""
    validate_directive(directive)
    out = json.loads(json.dumps(directive))
    pos = next(p for p in out["positions"] if p["treatment_site"] == site)
    stamp = when if isinstance(when, str) else (when or datetime.now(timezone.utc)).isoformat(
        timespec="seconds")
    change = {"treatment_site": site, "field": "prescribed_activity_gbq",
              "from": pos["prescribed_activity_gbq"], "to": activity_gbq,
              "reason": reason, "by": by, "when": stamp}
    doses = _plan_doses(replanned)
    if doses["violations"]:
        broken = "; ".join(f"{v.get('position', 'all sites')}: {v['limit']} "
                           f"{v['dose_gy']:.2f} Gy > {v['limit_gy']:g} Gy"
                           for v in doses["violations"])
        if not override_reason:
            raise FieldValueError("--activity-gbq", activity_gbq,
                                  "an activity within every limit of the plan, or "
                                  "--override-limits REASON to accept it", broken)
        change["override"] = {"reason": override_reason, "by": by, "when": stamp,
                              "violations": doses["violations"]}
        out.setdefault("overrides", []).append({"treatment_site": site, "reason":
                                                override_reason, "by": by, "when": stamp,
                                                "exceeded": broken})
    planned = {p["name"]: p for p in replanned["positions"]}
    for p in out["positions"]:
        again = _position(planned[p["treatment_site"]])
        again["limited_by"] = LIMITED_BY_CHANGE if p["treatment_site"] == site or \
            p.get("limited_by") == LIMITED_BY_CHANGE else p.get("limited_by")
        p.update(again)
    out.update(doses)
    out["changes"].append(change)
    return out


def check_change(directive: dict, site: str, activity_gbq: float, reason: str,
                 by: str, override_reason: str | None = None) -> tuple[float, str, str]:
    """The options of a change, checked: a treatment site of the directive, an activity
    > 0 and <= 100 GBq, a reason and an author (and the override's reason, when given)."""
    validate_directive(directive)
    sites = [p["treatment_site"] for p in directive["positions"]]
    if site not in sites:
        raise UnknownNameError("--site", site, "a treatment site of the directive: "
                               + ", ".join(sites), suggestion(site, sites))
    new = number({"--activity-gbq": activity_gbq}, "--activity-gbq", "", exclusive_minimum=0,
                 maximum=100)
    if override_reason is not None:
        check_reason(override_reason, "--override-limits")
    return new, check_reason(reason, "--reason"), check_name(by, "--by")


def validate_directive(document: Any, where: str = "directive") -> dict:
    """Check a directive read from disk: schema and the parts the administration uses."""
    doc = require_object(document, where)
    if doc.get("schema") != DIRECTIVE_SCHEMA:
        raise SchemaError(f"{where}.schema", doc.get("schema"), DIRECTIVE_SCHEMA)
    positions = doc.get("positions")
    if not isinstance(positions, list) or not positions:
        raise SchemaError(f"{where}.positions", positions, "a non-empty list of treatment sites")
    for i, pos in enumerate(positions):
        require_object(pos, f"{where}.positions[{i}]")
        check_name(pos.get("treatment_site"), f"{where}.positions[{i}].treatment_site")
        number(pos, "prescribed_activity_gbq", f"{where}.positions[{i}]", exclusive_minimum=0,
               maximum=100)
    half_life = require_object(doc.get("nuclide"), f"{where}.nuclide")
    number(half_life, "half_life_h", f"{where}.nuclide", exclusive_minimum=0)
    if not isinstance(doc.get("changes"), list):
        raise SchemaError(f"{where}.changes", doc.get("changes"), "a list of changes")
    return doc


def directive_lines(directive: dict) -> list[str]:
    """The directive as report/text lines."""
    lines = [f"Written directive ({directive['schema']}) for plan {directive['plan_sha256'][:16]}"
             f"; case {directive.get('case_id') or 'SHA-256 ' + directive['plan_input_sha256'][:12]}"
             f", patient {directive.get('patient_id') or 'ID not given'}",
             f"Radionuclide {directive['nuclide']['name']}; product "
             f"{directive['product']['display_name']}; prescription: "
             f"{directive['prescription_basis']}"]
    for pos in directive["positions"]:
        doses = pos["planned_doses_gy"]
        tumours = ", ".join(f"{k} {v:.0f} Gy" for k, v in doses["tumours"].items())
        lines.append(f"  {pos['treatment_site']}: {pos['prescribed_activity_gbq']:.3f} GBq "
                     f"(normal liver {doses['normal_liver']:.1f} Gy"
                     + (f"; {tumours}" if tumours else "") + ")")
    lines[-len(directive["positions"]):] = [
        line + f" [limited by {pos.get('limited_by') or '-'}]"
        for line, pos in zip(lines[-len(directive["positions"]):], directive["positions"])]
    lung = f"  lung dose (all sites) {directive['lung_dose_gy']:.2f} Gy"
    if directive.get("lung_dose_cumulative_gy") is not None:
        lung += f", cumulative {directive['lung_dose_cumulative_gy']:.2f} Gy"
    lines.append(lung)
    if directive.get("whole_liver_dose_gy") is not None:
        lines.append(f"  whole liver {directive['whole_liver_dose_gy']:.1f} Gy"
                     + (f"; whole normal liver {directive['whole_normal_liver_dose_gy']:.1f} Gy"
                        if directive.get("whole_normal_liver_dose_gy") is not None else ""))
    for v in directive.get("violations") or []:
        lines.append(f"  LIMIT EXCEEDED {v.get('position', 'all sites')}: {v['limit']} "
                     f"{v['dose_gy']:.2f} Gy > {v['limit_gy']:g} Gy")
    if directive.get("plan_warnings"):
        lines.append("  plan checks at these activities: " + ", ".join(
            dict.fromkeys(w["code"] for w in directive["plan_warnings"])))
    for o in directive.get("overrides") or []:
        lines.append(f"  OVERRIDE {o['treatment_site']} by {o['by']} ({o['when']}): "
                     f"{o['reason']} [{o['exceeded']}]")
    me = directive["criteria"]["medical_event"]
    lines.append(f"Medical event if the delivered activity differs from the prescribed by "
                 f"{me['relative_deviation']:.0%} or more ({me['source']})")
    organ = directive["criteria"].get("medical_event_organ_dose")
    if organ:
        lines.append(f"Medical event also if the lung dose exceeds the directive's by "
                     f"{organ['excess_dose_gy']:g} Gy (Sv) and by "
                     f"{organ['relative_excess']:.0%} or more (10 CFR 35.3045(a)(3))")
    for change in directive["changes"]:
        lines.append(f"  change {change['when']}: {change['treatment_site']} "
                     f"{change['from']:.3f} -> {change['to']:.3f} GBq by {change['by']} "
                     f"({change['reason']})")
    lines += ["Authorised user: ______________________   date: __________",
              "After administration, activity administered recorded and signed: "
              "______________________   date: __________"]
    return lines
