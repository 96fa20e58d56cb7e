"""The guideline rows of a case: which hold, which bind the solver, and the check of a plan.

Hard rows (instructions for use, regulation, the site's promoted recommendations) become
limits of the solver; recommendations are only checked: met or not, by how much, with their
source and level of evidence. A ``maximum`` goal asks for the most the limits allow: where
no hard limit bounds the position, it is resolved to the lowest applicable recommendation on
the position's perfused or normal perfused liver, quoted as the goal's source.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

from . import guidelines as gl
from .errors import FieldValueError
from .physics.solver import LIMITED_BY_NORMAL, PositionCap

PERFUSED_LIMIT = "perfused-limit"


def facts_for(case) -> gl.Facts:
    """Bilirubin, hepatic reserve (1 - perfused / whole liver volume, the untreated liver
    fraction of EANM 2022 Table 2) and compromised-or-pretreated of a case."""
    reserve = None
    if case.whole_liver_volume_ml:
        perfused = sum(p.perfused_volume_ml for p in case.positions)
        reserve = max(0.0, 1.0 - perfused / case.whole_liver_volume_ml)
    scenario = case.scenario
    return gl.Facts(
        bilirubin_mg_dl=scenario.bilirubin_mg_dl if scenario else None,
        hepatic_reserve_fraction=reserve,
        compromised_or_pretreated=bool(case.liver_compromised
                                       or (scenario is not None and scenario.prior_treatment)),
        favourable_liver_function=bool(scenario is not None
                                       and scenario.favourable_liver_function))


@dataclass(frozen=True)
class CaseRows:
    """The rows that hold for a case, with the reason a row cannot be evaluated (or None)."""

    rows: tuple[tuple[gl.Row, str | None], ...]

    def hard_bindable(self) -> list[gl.Row]:
        """Site-promoted rows that bind the solver (limits and ranges' upper ends)."""
        return [r for r, unknown in self.rows if r.kind == "hard" and r.site_change
                and unknown is None and r.direction in ("limit", "range")
                and r.quantity in gl.PER_POSITION_BINDABLE + gl.SHARED_BINDABLE]

    def ceilings_for_maximum(self) -> list[gl.Row]:
        """Recommendations that can stand for a ``maximum`` goal: a ceiling (limit,
        prescription or range's upper end) on a position's perfused or normal perfused liver."""
        return [r for r, unknown in self.rows if unknown is None
                and r.direction in ("limit", "prescription", "range")
                and r.quantity in gl.PER_POSITION_BINDABLE]


def case_rows(case, site_limits: Mapping[str, Any] | None, site_label: str) -> CaseRows:
    return CaseRows(tuple(gl.applicable(gl.site_rows(site_limits, site_label), case.product,
                                        case.scenario, facts_for(case))))


def ceiling(row: gl.Row) -> float:
    return row.high if row.operator == "range" else row.value


def _gy_per_gbq(row: gl.Row, per_gbq) -> float:
    return per_gbq.normal_gy_per_gbq if row.quantity == "normal_perfused" \
        else per_gbq.perfused_gy_per_gbq


def position_caps(rows: CaseRows, per_gbq) -> tuple[PositionCap, ...]:
    """The promoted per-position rows as hard caps of one position."""
    return tuple(PositionCap(LIMITED_BY_NORMAL if r.quantity == "normal_perfused"
                             else PERFUSED_LIMIT, _gy_per_gbq(r, per_gbq), ceiling(r))
                 for r in rows.hard_bindable() if r.quantity in gl.PER_POSITION_BINDABLE)


def resolve_maximum(position_name: str, index: int, rows: CaseRows, per_gbq,
                    product_key: str, scenario) -> tuple[str, float, gl.Row]:
    """The dose goal a ``maximum`` goal stands for when no hard limit bounds the position:
    the applicable recommendation that allows the least activity."""
    candidates = rows.ceilings_for_maximum()
    if not candidates:
        where = (f"scenario {scenario.intent}/{scenario.histology}" if scenario
                 else "no scenario given")
        raise FieldValueError(
            f"positions[{index}].goal", {"maximum": True},
            "a dose goal (tumour_dose_gy, normal_dose_gy, perfused_dose_gy) or an activity; "
            "'maximum' needs a hard limit (site file) or a guideline ceiling on the "
            "position's perfused or normal perfused liver",
            f"none applies to {product_key} ({where}) for position {position_name!r}")
    row = min(candidates, key=lambda r: ceiling(r) / _gy_per_gbq(r, per_gbq))
    kind = "normal_dose_gy" if row.quantity == "normal_perfused" else "perfused_dose_gy"
    return kind, ceiling(row), row


# --- the check of a plan -----------------------------------------------------------------

def _values(record: Mapping[str, Any]) -> dict[str, list[tuple[str, float | None, str]]]:
    """Plan values per quantity: (where, value, why missing)."""
    whole = record["whole_liver"]
    missing_liver = "" if whole.get("checked") else "whole_liver_volume_ml is not in the case"
    out: dict[str, list] = {"tumour": [], "perfused": [], "normal_perfused": []}
    for p in record["positions"]:
        out["perfused"].append((p["name"], p["perfused_dose_gy"], ""))
        out["normal_perfused"].append((p["name"], p["normal_dose_gy"], ""))
        out["tumour"] += [(f"{p['name']}/{t['name']}", t["dose_gy"], "") for t in p["tumours"]]
    out["whole_normal_liver"] = [("case", whole.get("whole_normal_liver_dose_gy"),
                                  missing_liver)]
    out["whole_liver"] = [("case", whole.get("whole_liver_dose_gy"), missing_liver)]
    out["lung_single"] = [("case", record["lung_dose_gy"], "")]
    out["lung_cumulative"] = [("case", record["lung_dose_cumulative_gy"], "")]
    out["lung_shunt_fraction"] = [("case", record["lung_shunt_fraction"], "")]
    deviations = [(e["name"], e.get("deviation_fraction"), "")
                  for e in record["ordering"]["positions"] if "deviation_fraction" in e]
    out["activity_deviation"] = deviations
    return out


def check(record: Mapping[str, Any], rows: CaseRows, product) -> list[dict]:
    """Every applicable row against the plan's value: met or not, by how much, its source,
    level of evidence and kind."""
    values = _values(record)
    tolerance = gl.prescription_tolerance()
    out = []
    for r, unknown in rows.rows:
        value, high = r.value, r.high
        if r.product_limit is not None:
            value = product.limits[r.product_limit].value
            if value is None:
                continue
        threshold = replace(r, value=value) if value != r.value else r
        base = {"id": r.id, "kind": r.kind, "quantity": r.quantity,
                "quantity_label": gl.QUANTITY_LABELS[r.quantity],
                "direction": r.direction, "operator": r.operator, "value": value,
                "high": high, "unit": r.unit, "printed": r.printed,
                "threshold": threshold.threshold_text(), "source": r.source(), "loe": r.loe,
                "note": r.note, "edge": r.edge, "basis": r.basis,
                "site_change": dict(r.site_change) if r.site_change else None}
        if r.product_limit is not None:
            base["source"] = product.limits[r.product_limit].source
        entries = values.get(r.quantity, [])
        if r.quantity == "activity_deviation" and not entries:
            continue
        for where, plan_value, missing in entries:
            entry = dict(base, where=where, plan_value=plan_value,
                         condition_known=unknown is None)
            if r.quantity == "activity_deviation" and plan_value is not None:
                plan_value = abs(plan_value)
                entry["plan_value"] = plan_value
            reason = unknown or (missing if plan_value is None else None)
            if reason is None and r.only_if:
                cond = values[r.only_if["quantity"]][0]
                if cond[1] is None:
                    reason = cond[2] or f"{r.only_if['quantity']} not known"
            if reason:
                entry.update(status="not evaluated", met=None, margin=None, reason=reason)
            else:
                met = gl.meets(r.operator, plan_value, value, high, tolerance,
                               strict=r.edge == "strict")
                margin = gl.margin(r.operator, plan_value, value, high)
                why = None
                if met and r.only_if:
                    cond_value = values[r.only_if["quantity"]][0][1]
                    if not gl.meets(r.only_if["operator"], cond_value, r.only_if["value"]):
                        met, why = False, (
                            f"its condition fails: {gl.QUANTITY_LABELS[r.only_if['quantity']]}"
                            f" {cond_value:.1f} Gy, not {r.only_if['operator']} "
                            f"{r.only_if['value']:g} Gy")
                entry.update(status="met" if met else "not met", met=met, margin=margin,
                             reason=why)
            out.append(entry)
    return out


def method_warnings(product_key: str, scenario, method: str) -> list[tuple[str, str]]:
    """(code, message) for a dosimetry method the scenario's table prints as not recommended
    (``method_notes`` of the guideline data)."""
    if scenario is None:
        return []
    return [("method-not-recommended", f"{note['message']} ({note['source']})")
            for note in gl.data().get("method_notes", [])
            if note["product"] == product_key and scenario.intent in note["intents"]
            and note["method"] == method]


def summary_warnings(scenario, checks: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(code, message) for the plan's warnings: no scenario; recommendations not met."""
    w = []
    if scenario is None:
        w.append(("no-scenario",
                  "no scenario given (treatment intent, histology, liver function): only the "
                  "hard limits and the recommendations that hold in every scenario are "
                  "checked; give the case a scenario to check the EANM 2022 rows that apply"))
    reached = [c for c in checks if c["kind"] == "regulatory-report" and c["met"] is False]
    if reached:
        w.append(("regulatory-criterion-reached",
                  "a regulatory reporting criterion is reached (a reporting trigger, not a dose "
                  "limit; see the guideline check): " + "; ".join(
                      f"{c['where']}: {c['quantity_label']} {c['plan_value']:.4g} vs "
                      f"{c['threshold']} ({c['source']})" for c in reached)))
    missed = [c for c in checks if c["kind"] == "recommendation" and c["met"] is False]
    if missed:
        w.append(("recommendation-not-met",
                  f"{len(missed)} guideline recommendation(s) not met (they do not limit the "
                  "plan; see the guideline check): " + "; ".join(
                      f"{c['where']}: {c['quantity_label']} {c['plan_value']:.4g} vs "
                      f"{c['threshold']} ({c['source']}, LOE {c['loe']})" for c in missed[:4])
                  + (" ..." if len(missed) > 4 else "")))
    return w
