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
from .fields import check_name, number, require_object, suggestion
from .provenance import software_versions

DIRECTIVE_SCHEMA = "tareplanner.directive/1"


@lru_cache(maxsize=None)
def criteria() -> dict:
    """Administration criteria with their sources (``data/administration.json``)."""
    text = resources.files("tareplanner.data").joinpath("administration.json").read_text("utf-8")
    return json.loads(text)


def directive_from_plan(plan: dict, *, created: datetime | None = None) -> dict:
    """A written directive for every position of a plan record."""
    if not isinstance(plan, dict) or plan.get("schema") != "tareplanner.plan/1":
        raise SchemaError("plan.schema", plan.get("schema") if isinstance(plan, dict) else None,
                          "tareplanner.plan/1")
    c = criteria()
    positions = []
    for pos in plan["positions"]:
        if not pos["activity_gbq"] > 0:
            raise FieldValueError(f"plan.positions[{pos['name']}].activity_gbq",
                                  pos["activity_gbq"], "a prescribed activity > 0")
        positions.append({
            "treatment_site": pos["name"],
            "prescribed_activity_gbq": pos["activity_gbq"],
            "planned_doses_gy": {"normal_liver": pos["normal_dose_gy"],
                                 "perfused": pos["perfused_dose_gy"],
                                 "tumours": {t["name"]: t["dose_gy"] for t in pos["tumours"]}},
            "limited_by": pos["limited_by"]})
    return {
        "schema": DIRECTIVE_SCHEMA,
        "created": (created or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        "software": software_versions(),
        "plan_input_sha256": plan["input_sha256"],
        "plan_sha256": canonical_sha256(plan),
        "case_id": plan.get("case_id"), "patient_id": plan.get("patient_id"),
        "product": plan["product"], "nuclide": plan["nuclide"],
        "method": plan["method"], "dose_model": plan["dose_model"],
        "treatment_time": plan.get("treatment_time"),
        "prescription_basis": "activity at administration (GBq), with the absorbed doses it is "
                              "planned to give",
        "positions": positions,
        "lung_dose_gy": plan["lung_dose_gy"],
        "criteria": c["criteria"],
        "regulation": c["regulation"],
        "changes": [],
        "signatures": {"authorised_user": None, "date": None,
                       "after_administration": {"authorised_user": None, "date": None}},
    }


def change_directive(directive: dict, site: str, activity_gbq: float, reason: str, by: str,
                     when: datetime | None = None) -> dict:
    """A copy of ``directive`` with the prescribed activity of ``site`` changed, the change
    recorded (10 CFR 35.40: a change before administration is dated and signed)."""
    validate_directive(directive)
    sites = [p["treatment_site"] for p in directive["positions"]]
    if site not in sites:
        raise UnknownNameError("--site", site, "a treatment site of the directive: "
                               + ", ".join(sites), suggestion(site, sites))
    new = number({"activity_gbq": activity_gbq}, "activity_gbq", "--change",
                 exclusive_minimum=0, maximum=100)
    reason = check_name(reason, "--reason")
    by = check_name(by, "--by")
    out = json.loads(json.dumps(directive))
    pos = next(p for p in out["positions"] if p["treatment_site"] == site)
    out["changes"].append({"treatment_site": site, "field": "prescribed_activity_gbq",
                           "from": pos["prescribed_activity_gbq"], "to": new,
                           "reason": reason, "by": by,
                           "when": (when or datetime.now(timezone.utc)).isoformat(
                               timespec="seconds")})
    # the planned doses scale with the activity (every dose is linear in it)
    factor = new / pos["prescribed_activity_gbq"]
    pos["prescribed_activity_gbq"] = new
    doses = pos["planned_doses_gy"]
    doses["normal_liver"] *= factor
    if doses["perfused"] is not None:
        doses["perfused"] *= factor
    doses["tumours"] = {k: v * factor for k, v in doses["tumours"].items()}
    return out


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
             f"; case {directive.get('case_id') or '-'}, patient {directive.get('patient_id') or '-'}",
             f"Radionuclide {directive['nuclide']['name']}; product "
             f"{directive['product']['display_name']}; prescription: "
             f"{directive['prescription_basis']}"]
    for pos in directive["positions"]:
        doses = pos["planned_doses_gy"]
        tumours = ", ".join(f"{k} {v:.0f} Gy" for k, v in doses["tumours"].items())
        lines.append(f"  {pos['treatment_site']}: {pos['prescribed_activity_gbq']:.3f} GBq "
                     f"(normal liver {doses['normal_liver']:.1f} Gy"
                     + (f"; {tumours}" if tumours else "") + ")")
    lines.append(f"  lung dose (all sites) {directive['lung_dose_gy']:.2f} Gy")
    me = directive["criteria"]["medical_event"]
    lines.append(f"Medical event if the delivered activity differs from the prescribed by "
                 f"{me['relative_deviation']:.0%} or more ({me['source']})")
    for change in directive["changes"]:
        lines.append(f"  change {change['when']}: {change['treatment_site']} "
                     f"{change['from']:.3f} -> {change['to']:.3f} GBq by {change['by']} "
                     f"({change['reason']})")
    lines += ["Authorised user: ______________________   date: __________",
              "After administration, activity administered recorded and signed: "
              "______________________   date: __________"]
    return lines
