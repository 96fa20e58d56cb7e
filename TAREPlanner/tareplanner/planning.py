"""From a validated case to a plan record: the activity-planning engine.

This module joins the catalogue (product data and limits), the compartment models,
the solver and the ordering rules. It does no file I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from . import catalogue
from . import guideline_check
from . import guidelines as gl
from .physics import bsa as bsa_model
from .physics import decay
from .physics import ordering as order
from .physics.compartments import (PARTITION, SINGLE_COMPARTMENT, dose_per_activity,
                                   liver_energy_fraction, lung_dose_per_activity)
from .errors import ClinicalCutoffError
from .plan_uncertainty import plan_uncertainty
from .physics.solver import (LIMITED_BY_NORMAL, LIMITED_BY_WHOLE_LIVER,
                             LIMITED_BY_WHOLE_NORMAL_LIVER, DoseLimits, PositionProblem,
                             SharedLimit, Solution, Violation, solve)
from .records.case import Case
from .records.provenance import software_versions

PLAN_SCHEMA = "tareplanner.plan/1"
ML_PER_KG_FACTOR = 1e-3  # mL * g/mL = g; g * 1e-3 = kg

#: Guard-rail thresholds (heuristic plausibility checks; warnings only, see docs/physics.md)
LIVER_VOLUME_PLAUSIBLE_ML = (600.0, 5000.0)
SMALL_PERFUSED_VOLUME_ML = 10.0
LSF_WARNING = 0.10
#: A CT lung mass that differs from the 1 kg convention by more than this fraction (of the
#: CT mass) is a warning: the lung dose then depends on the choice by as much.
LUNG_MASS_DIFFERENCE_WARNING = 0.20


@dataclass(frozen=True)
class Warning_:
    code: str
    message: str

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


def dose_model_for(case: Case) -> str:
    """The dose model used: the method itself, or for BSA the partition model when every
    tumour has a TNR (else single-compartment)."""
    if case.method != "bsa":
        return case.method
    tumours = [t for p in case.positions for t in p.tumours]
    return PARTITION if tumours and all(t.tnr is not None for t in tumours) else SINGLE_COMPARTMENT


def effective_limits(case: Case, product: catalogue.Product) -> tuple[DoseLimits, dict]:
    """Limits applied to this case and a record of each with its source."""
    lim = product.limits
    normal_key = "normal_liver_compromised_gy" if case.liver_compromised else "normal_liver_gy"
    applied = DoseLimits(normal_liver_gy=lim[normal_key].value,
                         lung_single_gy=lim["lung_single_gy"].value,
                         lung_cumulative_gy=lim["lung_cumulative_gy"].value)
    record = {name: {"value": v.value, "source": v.source} for name, v in lim.items()}
    record["applied_normal_liver"] = normal_key
    record["applied_whole_normal_liver"] = ("whole_normal_liver_compromised_gy"
                                            if case.liver_compromised else "whole_normal_liver_gy")
    return applied, record


def check_lsf_cutoff(case: Case, product: catalogue.Product) -> None:
    """Refuse a lung shunt above the product's cut-off (site limits included). The cut-off
    itself is allowed: "> 20 %: do not treat" (Sirtex IFU)."""
    cutoff = product.limits["lsf_cutoff"]
    if cutoff.value is not None and case.lung_shunt_fraction > cutoff.value:
        raise ClinicalCutoffError("lung_shunt_fraction", case.lung_shunt_fraction,
                                  f"<= {cutoff.value:g} for {product.key}", cutoff.source)


def lung_mass(case: Case, site_limits: Mapping[str, Any] | None = None,
              site_limits_label: str = "") -> dict:
    """The lung mass the plan uses, where it comes from and who chose it.

    The patient's mass (CT densitovolumetry or entered) is used when the case holds one
    (EANM 2022: patient-specific lung mass when a CT is available). The 1 kg convention of
    the package inserts is used when the case or the site chooses it explicitly, and, with a
    warning, when the case holds no mass."""
    convention = catalogue.lung_mass_convention()
    policy = (site_limits or {}).get("lung_mass", "ct")
    ct_kg = case.lung_mass_ct_kg
    conv = f"{convention.value:g} kg convention of the package inserts"
    if case.lung_mass_source == "convention":
        kg, source, chosen_by, note = convention.value, "convention", "case", \
            f"{conv}, chosen in the case"
    elif policy == "convention":
        kg, source, chosen_by, note = convention.value, "convention", "site", \
            f"{conv}, chosen by the site limits ({site_limits_label})"
    elif case.lung_mass_source == "ct-densitovolumetry":
        kg, source, chosen_by, note = case.lung_mass_kg, "ct-densitovolumetry", "case", \
            "CT densitovolumetry (lung voxels, density (HU + 1000)/1000 g/mL)"
    elif case.lung_mass_source == "entered":
        kg, source, chosen_by, note = case.lung_mass_kg, "entered", "case", \
            "entered in the case"
    else:
        kg, source, chosen_by, note = convention.value, "convention", "default", \
            f"{conv}: the case holds no lung mass"
    difference = abs(convention.value - ct_kg) / ct_kg if ct_kg else None
    return {"kg": kg, "source": source, "chosen_by": chosen_by, "note": note, "ct_kg": ct_kg,
            "convention_kg": convention.value, "convention_source": convention.source,
            "ct_difference_fraction": difference}


#: An exceedance probability above this at the planned activities is a warning.
EXCEEDANCE_WARNING = 0.05


def _uncertainty_warnings(uncertainty: dict) -> list[Warning_]:
    """A limit that the planned activities exceed with a probability above 5 %."""
    return [Warning_("limit-exceedance-probable",
                     f"{name}: exceeded with probability {e['probability']:.0%} at the planned "
                     f"activities (limit {e['limit_gy']:g} Gy, {uncertainty['coverage']:.0%} "
                     f"interval {uncertainty['figures'][e['figure']]['low']:.1f}-"
                     f"{uncertainty['figures'][e['figure']]['high']:.1f} Gy)")
            for name, e in uncertainty["exceedance"].items()
            if e["probability"] > EXCEEDANCE_WARNING]


def _lung_mass_warnings(mass: dict) -> list[Warning_]:
    w = []
    if mass["chosen_by"] == "default":
        w.append(Warning_("lung-mass-not-measured",
                          f"the case holds no lung mass: the {mass['convention_kg']:g} kg "
                          "convention is used; EANM 2022 recommends the patient's lung mass "
                          "from CT (tareplanner measure writes it into the case)"))
    diff = mass["ct_difference_fraction"]
    if diff is not None and diff > LUNG_MASS_DIFFERENCE_WARNING:
        used = "the CT mass" if mass["source"] != "convention" else \
            f"the {mass['convention_kg']:g} kg convention"
        w.append(Warning_("lung-mass-differs",
                          f"CT lung mass {mass['ct_kg']:.3g} kg differs from the "
                          f"{mass['convention_kg']:g} kg convention by {diff:.0%} (more than "
                          f"{LUNG_MASS_DIFFERENCE_WARNING:.0%} of the CT mass); the lung dose "
                          f"scales with 1/mass and this plan uses {used}"))
    return w


def whole_liver_limits(case: Case, product: catalogue.Product, per_gbq: list,
                       cf: float, promoted: list | None = None
                       ) -> tuple[list[SharedLimit], dict]:
    """Whole-liver and whole-normal-liver limits as shared limits across the positions.

    Whole liver (tumours included): D = CF * (1 - LSF)(1 - R) * sum A / M_liver.
    Whole normal liver: the energy each position gives its perfused normal liver
    (D_N * M_N), summed, over the whole normal-liver mass (liver minus tumours); normal
    liver outside every territory receives nothing. Not checked without
    ``whole_liver_volume_ml``. ``promoted``: guideline rows a site made hard limits on the
    whole liver or the whole normal liver."""
    lim = product.limits
    normal_key = ("whole_normal_liver_compromised_gy" if case.liver_compromised
                  else "whole_normal_liver_gy")
    record: dict[str, Any] = {"limits": {
        "whole_liver_gy": {"value": lim["whole_liver_gy"].value,
                           "source": lim["whole_liver_gy"].source},
        normal_key: {"value": lim[normal_key].value, "source": lim[normal_key].source}}}
    if case.whole_liver_volume_ml is None:
        record.update(checked=False, reason="whole_liver_volume_ml is not in the case")
        return [], record
    rho = case.tissue_density_g_per_ml
    liver_kg = _mass_kg(case.whole_liver_volume_ml, rho)
    tumour_ml = case.whole_liver_tumour_volume_ml
    if tumour_ml is None:
        tumour_ml = sum(t.volume_ml for p in case.positions for t in p.tumours)
    normal_kg = _mass_kg(case.whole_liver_volume_ml - tumour_ml, rho)
    fraction = liver_energy_fraction(case.lung_shunt_fraction, case.residual_fraction)
    shared = []
    if lim["whole_liver_gy"].value is not None:
        shared.append(SharedLimit(LIMITED_BY_WHOLE_LIVER,
                                  (cf * fraction / liver_kg,) * len(case.positions),
                                  lim["whole_liver_gy"].value, LIMITED_BY_WHOLE_LIVER))
    if lim[normal_key].value is not None:
        shared.append(SharedLimit(
            LIMITED_BY_WHOLE_NORMAL_LIVER,
            tuple(d.normal_gy_per_gbq * _mass_kg(p.normal_volume_ml, rho) / normal_kg
                  for d, p in zip(per_gbq, case.positions)),
            lim[normal_key].value, LIMITED_BY_WHOLE_NORMAL_LIVER))
    for row in promoted or ():
        if row.quantity == "whole_liver":
            shared.append(SharedLimit(LIMITED_BY_WHOLE_LIVER,
                                      (cf * fraction / liver_kg,) * len(case.positions),
                                      guideline_check.ceiling(row), LIMITED_BY_WHOLE_LIVER))
        elif row.quantity == "whole_normal_liver":
            shared.append(SharedLimit(
                LIMITED_BY_WHOLE_NORMAL_LIVER,
                tuple(d.normal_gy_per_gbq * _mass_kg(p.normal_volume_ml, rho) / normal_kg
                      for d, p in zip(per_gbq, case.positions)),
                guideline_check.ceiling(row), LIMITED_BY_WHOLE_NORMAL_LIVER))
        record.setdefault("promoted_rows", []).append(row.id)
    record.update(checked=True, whole_liver_mass_kg=liver_kg, whole_normal_liver_mass_kg=normal_kg,
                  applied_whole_normal_liver=normal_key)
    return shared, record


def _mass_kg(volume_ml: float, density_g_per_ml: float) -> float:
    return volume_ml * density_g_per_ml * ML_PER_KG_FACTOR


def plan_case(case: Case, site_limits: Mapping[str, Any] | None = None,
              site_limits_label: str = "", created: datetime | None = None,
              response: Mapping[str, Any] | None = None) -> dict:
    """Plan a validated case; return the plan record (a JSON-ready dict). ``response``: a
    dose–response fit (records.response_record.fit_for_plan) whose probabilities at the
    planned doses the record shows (information only: they change nothing)."""
    product = catalogue.product(case.product, site_limits, site_limits_label)
    check_lsf_cutoff(case, product)
    nuclide = catalogue.nuclide(product.nuclide)
    cf = nuclide.energy_per_activity_j_per_gbq
    model = dose_model_for(case)
    limits, limits_record = effective_limits(case, product)
    rows = guideline_check.case_rows(case, site_limits, site_limits_label)
    promoted = rows.hard_bindable()
    resolved_goals: dict[str, dict] = {}
    rho = case.tissue_density_g_per_ml
    lsf, residual = case.lung_shunt_fraction, case.residual_fraction
    warnings: list[Warning_] = []

    problems = []
    per_gbq_all = []
    bsa_details: dict[str, dict] = {}
    bsa_m2 = None
    if case.method == "bsa":
        bsa_m2 = bsa_model.dubois_bsa_m2(case.patient.height_cm, case.patient.weight_kg)
        try:
            factor = bsa_model.bsa_lsf_factor(lsf, product.bsa_lsf_bands)
        except ValueError as exc:
            raise ClinicalCutoffError("lung_shunt_fraction", lsf,
                                      "an LSF within the manufacturer's BSA reduction table",
                                      f"{exc}; {product.bsa_lsf_source}") from None
        if factor < 1:
            warnings.append(Warning_("bsa-lsf-reduction",
                                     f"BSA activity reduced to {factor:.0%} for LSF {lsf:.1%} "
                                     f"({product.bsa_lsf_source})"))
    for pos in case.positions:
        per_gbq = dose_per_activity(
            model, cf, lsf, residual, _mass_kg(pos.normal_volume_ml, rho),
            [_mass_kg(t.volume_ml, rho) for t in pos.tumours],
            [t.tnr for t in pos.tumours] if model == PARTITION else None)
        if case.method == "bsa":
            result = bsa_model.bsa_activity(bsa_m2, case.whole_liver_volume_ml,
                                            case.whole_liver_tumour_volume_ml,
                                            pos.perfused_volume_ml, factor)
            bsa_details[pos.name] = {"bsa_m2": result.bsa_m2,
                                     "tumour_involvement": result.tumour_involvement,
                                     "whole_liver_activity_gbq": result.whole_liver_activity_gbq,
                                     "perfused_fraction": result.perfused_fraction,
                                     "lsf_factor": result.lsf_factor}
            goal_kind, goal_value = "activity_gbq", result.activity_gbq
        else:
            goal_kind, goal_value = pos.goal.kind, pos.goal.value
        caps = guideline_check.position_caps(rows, per_gbq)
        if goal_kind == "maximum" and limits.normal_liver_gy is None and not caps:
            goal_kind, goal_value, row = guideline_check.resolve_maximum(
                pos.name, len(problems), rows, per_gbq, product.key, case.scenario)
            resolved_goals[pos.name] = {"goal": {goal_kind: goal_value}, "row": row.id,
                                        "source": row.source(), "loe": row.loe,
                                        "kind": row.kind, "printed": row.printed}
            warnings.append(Warning_(
                "maximum-goal-from-recommendation",
                f"{pos.name}: goal 'maximum' has no hard limit to reach; it is set to the "
                f"{gl.QUANTITY_LABELS[row.quantity]} {row.printed} Gy of {row.source()} "
                f"(LOE {row.loe}, a {row.kind})"))
        problems.append(PositionProblem(pos.name, goal_kind, goal_value, per_gbq, caps))
        per_gbq_all.append(per_gbq)

    mass = lung_mass(case, site_limits, site_limits_label)
    lung_per_gbq = lung_dose_per_activity(cf, lsf, residual, mass["kg"])
    shared, whole_record = whole_liver_limits(
        case, product, per_gbq_all, cf,
        [r for r in promoted if r.quantity in gl.SHARED_BINDABLE])
    if not whole_record["checked"] and any(r.quantity in gl.SHARED_BINDABLE for r in promoted):
        warnings.append(Warning_("promoted-limit-not-checked",
                                 "the site's promoted whole-liver limits need "
                                 "whole_liver_volume_ml, which the case does not hold"))
    solution = solve(problems, lung_per_gbq, limits, case.prior_lung_dose_gy, shared)
    whole_record["whole_liver_dose_gy"] = whole_record["whole_normal_liver_dose_gy"] = None
    if whole_record["checked"]:
        whole_record["whole_liver_dose_gy"] = (
            cf * solution.total_activity_gbq * liver_energy_fraction(lsf, residual)
            / whole_record["whole_liver_mass_kg"])
        whole_record["whole_normal_liver_dose_gy"] = sum(
            s.normal_dose_gy * _mass_kg(p.normal_volume_ml, rho)
            for s, p in zip(solution.positions, case.positions)) \
            / whole_record["whole_normal_liver_mass_kg"]
    promoted_sources = {}
    for r in promoted:
        name = {"normal_perfused": LIMITED_BY_NORMAL, "perfused": guideline_check.PERFUSED_LIMIT,
                "whole_liver": LIMITED_BY_WHOLE_LIVER,
                "whole_normal_liver": LIMITED_BY_WHOLE_NORMAL_LIVER}[r.quantity]
        promoted_sources.setdefault(name, []).append(
            f"{r.source()} (LOE {r.loe}), {gl.site_change_text(r.site_change)}")
    limit_sources = {"lung-limit": limits_record["lung_single_gy"]["source"],
                     "lung-cumulative-limit": limits_record["lung_cumulative_gy"]["source"],
                     "normal-liver-limit": limits_record[limits_record["applied_normal_liver"]
                                                         ]["source"],
                     LIMITED_BY_WHOLE_LIVER: limits_record["whole_liver_gy"]["source"],
                     LIMITED_BY_WHOLE_NORMAL_LIVER: limits_record[
                         limits_record["applied_whole_normal_liver"]]["source"]}
    for name, texts in promoted_sources.items():
        own = limit_sources.get(name) if _limit_value_set(limits_record, name) else None
        limit_sources[name] = "; ".join(texts + ([own] if own else []))
    warnings += _lung_mass_warnings(mass)
    uncertainty = plan_uncertainty(
        case, solution, energy_j_per_gbq=cf, partition=model == PARTITION, lung_mass=mass,
        limits_gy={"normal_liver_gy": limits.normal_liver_gy,
                   "lung_single_gy": limits.lung_single_gy,
                   "lung_cumulative_gy": limits.lung_cumulative_gy}, whole_limits=shared,
        resolved_goals={k: next(iter(v["goal"])) for k, v in resolved_goals.items()})
    warnings += _uncertainty_warnings(uncertainty)

    warnings += [Warning_(f"measurement:{w['code']}", w["message"])
                 for w in case.measurement_warnings]
    warnings += _clinical_warnings(case, product, solution, model, limit_sources)
    if not whole_record["checked"]:
        warnings.append(Warning_("whole-liver-not-checked",
                                 "whole_liver_volume_ml is not in the case: the whole-liver and "
                                 "whole-normal-liver limits were not checked"))
    ordering_record = _ordering(case, product, nuclide, solution, warnings, site_limits,
                                site_limits_label)

    positions_record = []
    for pos, sol in zip(case.positions, solution.positions):
        entry = {
            "name": pos.name,
            "goal": pos.goal.as_dict() if pos.goal else {"bsa": True},
            "activity_gbq": sol.activity_gbq,
            "normal_dose_gy": sol.normal_dose_gy,
            "perfused_dose_gy": sol.perfused_dose_gy,
            "normal_volume_ml": pos.normal_volume_ml,
            "normal_mass_kg": _mass_kg(pos.normal_volume_ml, rho),
            "perfused_volume_ml": pos.perfused_volume_ml,
            "perfused_mass_kg": _mass_kg(pos.perfused_volume_ml, rho),
            "tumours": [{"name": t.name, "volume_ml": t.volume_ml,
                         "mass_kg": _mass_kg(t.volume_ml, rho), "tnr": t.tnr, "dose_gy": d}
                        for t, d in zip(pos.tumours, sol.tumour_doses_gy)],
            "limited_by": sol.limited_by,
            "violations": [_violation(v, limit_sources) for v in sol.violations],
        }
        if pos.name in bsa_details:
            entry["bsa"] = bsa_details[pos.name]
        if pos.name in resolved_goals:
            entry["goal_resolved"] = resolved_goals[pos.name]
        positions_record.append(entry)

    record = {
        "schema": PLAN_SCHEMA,
        "created": (created or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        "software": software_versions(),
        "input_sha256": case.input_sha256,
        "case_id": case.case_id,
        "patient_id": case.patient.patient_id,
        "product": {"key": product.key, "display_name": product.display_name},
        "method": case.method,
        "dose_model": model,
        "nuclide": {"name": nuclide.name, "half_life_h": nuclide.half_life_h,
                    "energy_per_activity_j_per_gbq": cf,
                    "source": nuclide.sources["energy_per_activity_j_per_gbq"]},
        "lung_shunt_fraction": lsf,
        "lsf_method": case.lsf_method,
        "residual_fraction": residual,
        "tissue_density_g_per_ml": rho,
        "lung_mass_kg": mass["kg"],
        "lung_mass": mass,
        "prior_lung_dose_gy": case.prior_lung_dose_gy,
        "liver_compromised": case.liver_compromised,
        "treatment_time": case.treatment_time.isoformat() if case.treatment_time else None,
        "positions": positions_record,
        "total_activity_gbq": solution.total_activity_gbq,
        "lung_dose_gy": solution.lung_dose_gy,
        "lung_dose_cumulative_gy": solution.lung_dose_cumulative_gy,
        "lung_scale_factor": solution.lung_scale_factor,
        "whole_liver_dose_gy": whole_record["whole_liver_dose_gy"],
        "whole_liver": whole_record,
        "bsa_m2": bsa_m2,
        "limits": limits_record,
        "limits_source": f"site limits: {site_limits_label}" if site_limits else
                         "product defaults (tareplanner/data/products.json)",
        "tumour_target_gy": dict(product.tumour_target_gy),
        "ordering": ordering_record,
        "violations": [_violation(v, limit_sources) for v in solution.violations],
        "uncertainty": uncertainty,
        "warnings": [w.as_dict() for w in warnings],
        "case": case.document,
    }
    camera_sha = (case.resolution or {}).get("camera_sha256")
    if camera_sha:  # the camera file the case's TNRs and LSF were corrected with
        record["parents"] = {"camera": {"schema": "tareplanner.camera/1", "sha256": camera_sha}}
    record["scenario"] = case.scenario.as_dict() if case.scenario else None
    checks = guideline_check.check(record, rows, product)
    record["guideline_check"] = {
        "scenario": record["scenario"],
        "facts": {"hepatic_reserve_fraction": guideline_check.facts_for(case)
                  .hepatic_reserve_fraction},
        "rows": checks,
        "suggestions": gl.suggestions(product.key, case.scenario,
                                      guideline_check.facts_for(case), site_limits,
                                      site_limits_label),
        "site_changes": [{"row": r.id, **r.site_change}
                         for r in gl.site_rows(site_limits, site_limits_label) if r.site_change],
        "conventions": {k: v for k, v in gl.data()["conventions"].items()},
        "source": "tareplanner/data/guidelines.json sha256 "
                  + catalogue.data_file_sha256("guidelines.json")[:16]}
    record["warnings"] += [Warning_(code, message).as_dict() for code, message in
                           guideline_check.summary_warnings(case.scenario, checks)
                           + guideline_check.method_warnings(product.key, case.scenario,
                                                             case.method)]
    if response is not None:
        from .records.response_record import plan_response
        record["dose_response"] = plan_response(record, dict(response))
        record["warnings"] += record["dose_response"]["warnings"]
    return record


def _limit_value_set(limits_record: Mapping[str, Any], name: str) -> bool:
    key = {LIMITED_BY_NORMAL: limits_record.get("applied_normal_liver"),
           LIMITED_BY_WHOLE_LIVER: "whole_liver_gy",
           LIMITED_BY_WHOLE_NORMAL_LIVER: limits_record.get("applied_whole_normal_liver")}.get(name)
    return bool(key) and limits_record.get(key, {}).get("value") is not None


def _violation(v: Violation, sources: Mapping[str, str]) -> dict:
    return {"limit": v.limit, "dose_gy": v.dose_gy, "limit_gy": v.limit_gy,
            "source": sources.get(v.limit, "")}


def _clinical_warnings(case: Case, product: catalogue.Product, solution: Solution,
                       model: str, limit_sources: Mapping[str, str]) -> list[Warning_]:
    w: list[Warning_] = []
    lsf = case.lung_shunt_fraction
    if lsf > LSF_WARNING:
        w.append(Warning_("lsf-high", f"lung shunt fraction {lsf:.1%} is above "
                          f"{LSF_WARNING:.0%}: check lung dose and the LSF method "
                          f"({case.lsf_method})"))
    if case.lsf_method == "unspecified":
        w.append(Warning_("lsf-method-unspecified",
                          "the LSF method is not recorded; planar LSF is typically several "
                          "times SPECT LSF (Thomas et al., JVIR 2025)"))
    target_min = product.tumour_target_gy.get("min")
    for pos, sol in zip(case.positions, solution.positions):
        for t, dose in zip(pos.tumours, sol.tumour_doses_gy):
            if t.tnr is not None and t.tnr < 1:
                w.append(Warning_("tnr-below-1", f"{pos.name}/{t.name}: TNR {t.tnr:g} < 1, the "
                                  "tumour takes up less than normal liver"))
            if target_min is not None and dose < target_min:
                w.append(Warning_("tumour-below-target",
                                  f"{pos.name}/{t.name}: tumour dose {dose:.0f} Gy is below the "
                                  f"{product.key} target of {target_min:g} Gy"))
        if pos.perfused_volume_ml < SMALL_PERFUSED_VOLUME_ML:
            w.append(Warning_("perfused-volume-small",
                              f"{pos.name}: perfused volume {pos.perfused_volume_ml:g} mL is "
                              f"below {SMALL_PERFUSED_VOLUME_ML:g} mL"))
        if sol.limited_by in ("lung-limit", LIMITED_BY_WHOLE_LIVER, LIMITED_BY_WHOLE_NORMAL_LIVER):
            w.append(Warning_(f"{sol.limited_by}-scaled",
                              f"{pos.name}: activity scaled by {solution.scale_factor:.3f} "
                              f"to respect the {sol.limited_by.replace('-', ' ')} "
                              f"({limit_sources[sol.limited_by]})"))
        for v in sol.violations:
            w.append(Warning_("limit-exceeded", f"{pos.name}: {v.limit} exceeded "
                              f"({v.dose_gy:.1f} Gy > {v.limit_gy:g} Gy; "
                              f"{limit_sources.get(v.limit, '')})"))
        if sol.activity_gbq <= 0:
            w.append(Warning_("zero-activity", f"{pos.name}: no activity can be given within "
                              "the limits"))
    for v in solution.violations:
        w.append(Warning_("limit-exceeded", f"{v.limit} exceeded ({v.dose_gy:.1f} Gy > "
                          f"{v.limit_gy:g} Gy; {limit_sources.get(v.limit, '')})"))
    if model == SINGLE_COMPARTMENT and any(p.tumours for p in case.positions):
        w.append(Warning_("single-compartment-tumour",
                          "single-compartment model: tumour doses equal the perfused mean dose"))
    if case.whole_liver_volume_ml is not None:
        low, high = LIVER_VOLUME_PLAUSIBLE_ML
        if not low <= case.whole_liver_volume_ml <= high:
            w.append(Warning_("liver-volume-implausible",
                              f"whole liver volume {case.whole_liver_volume_ml:g} mL is outside "
                              f"{low:g}-{high:g} mL"))
        perfused = sum(p.perfused_volume_ml for p in case.positions)
        if perfused > case.whole_liver_volume_ml * 1.0001:
            w.append(Warning_("perfused-exceeds-liver",
                              f"perfused volumes add up to {perfused:g} mL, more than the whole "
                              f"liver ({case.whole_liver_volume_ml:g} mL): territories overlap?"))
    if case.whole_liver_tumour_volume_ml is not None:
        tumours = sum(t.volume_ml for p in case.positions for t in p.tumours)
        if tumours > case.whole_liver_tumour_volume_ml * 1.0001:
            w.append(Warning_("tumour-volume-inconsistent",
                              f"tumours of the positions add up to {tumours:g} mL, more than "
                              f"whole_liver_tumour_volume_ml ({case.whole_liver_tumour_volume_ml:g})"))
    return w


def _ordering(case: Case, product: catalogue.Product, nuclide: catalogue.Nuclide,
              solution: Solution, warnings: list[Warning_],
              site_limits: Mapping[str, Any] | None = None, site_limits_label: str = "") -> dict:
    supply = product.supply
    kind = supply["kind"]
    spheres = product.sphere_activity_bq
    record: dict[str, Any] = {"kind": kind, "source": supply.get("source", ""),
                              "positions": []}
    if case.treatment_time is None:
        warnings.append(Warning_("no-treatment-time",
                                 "no treatment_time: activities are at administration, no decay "
                                 "or vial calculation was made"))
        for sol in solution.positions:
            record["positions"].append({"name": sol.name, "activity_gbq": sol.activity_gbq})
        return record
    t = case.treatment_time
    half_life = nuclide.half_life_h
    if kind == "whole-vial":
        _whole_vial_ordering(case, product, solution, warnings, record, half_life,
                             catalogue.ordering_rules(product, site_limits, site_limits_label))
    elif kind == "vial-draw":
        calibration = case.ordering.vial_calibration_time
        if calibration is None:
            calibration = t
            warnings.append(Warning_("vial-calibration-assumed",
                                     "ordering.vial_calibration_time not given: the vial is "
                                     "assumed to hold its nominal activity at treatment time"))
        record["vial_activity_gbq"] = supply["vial_activity_gbq"]
        record["vial_calibration_time"] = calibration.isoformat()
        in_vial = None
        for sol in solution.positions:
            d = order.vial_draw(sol.activity_gbq, supply["vial_activity_gbq"],
                                supply["vial_volume_ml"], calibration, t, half_life)
            in_vial = d.vial_activity_at_treatment_gbq
            record["positions"].append({
                "name": sol.name, "activity_gbq": sol.activity_gbq,
                "vial_activity_at_treatment_gbq": d.vial_activity_at_treatment_gbq,
                "fraction_of_vial": d.fraction_of_vial, "volume_ml": d.volume_ml,
                "spheres_estimate": d.fraction_of_vial * supply["spheres_per_vial"]})
        record["vials_needed"] = order.vials_needed(solution.total_activity_gbq, in_vial)
        hours = (t - calibration).total_seconds() / 3600
        if hours > supply["shelf_life_h_after_calibration"]:
            warnings.append(Warning_("outside-shelf-life",
                                     f"treatment is {hours:.1f} h after vial calibration, beyond "
                                     f"{supply['shelf_life_h_after_calibration']} h"))
        if record["vials_needed"] > 1:
            warnings.append(Warning_("multiple-vials",
                                     f"total activity needs {record['vials_needed']} vials"))
    else:  # patient-specific
        for sol in solution.positions:
            low, high = order.sphere_count_range(sol.activity_gbq, spheres["min"], spheres["max"])
            record["positions"].append({"name": sol.name, "activity_gbq": sol.activity_gbq,
                                        "calibration_time": t.isoformat(),
                                        "spheres_estimate": [low, high]})
    record["total_activity_gbq"] = solution.total_activity_gbq
    return record


def _option_record(o: order.VialOption, zone) -> dict:
    return {"kind": o.kind, "vials_nominal_gbq": list(o.vials_nominal_gbq),
            "custom_activity": o.custom,
            "calibration_time": o.calibration_time.isoformat(),
            "treatment_time": o.treatment_time.astimezone(zone).isoformat(timespec="minutes"),
            "activity_at_treatment_gbq": o.activity_at_treatment_gbq,
            "deviation_fraction": o.deviation_fraction,
            "days_after_calibration": o.days_after_calibration}


def _whole_vial_ordering(case: Case, product: catalogue.Product, solution: Solution,
                         warnings: list[Warning_], record: dict, half_life: float,
                         rules: dict) -> None:
    """TheraSphere: vials holding the prescription within the tolerance at the treatment
    time, inside working hours and the shelf life; the alternatives; a clear warning when
    no vial fits."""
    supply = product.supply
    spheres = product.sphere_activity_bq
    t = case.treatment_time
    zone = t.tzinfo
    standard = tuple(float(v) for v in supply["vial_sizes_gbq"])
    custom = order.vial_sizes(standard, supply.get("custom_vial_step_gbq"),
                              supply.get("custom_vial_range_gbq"), True)
    use_custom = case.ordering.therasphere_vials == "custom"
    hours = order.WorkingHours.from_texts(rules["working_hours"]["start"],
                                          rules["working_hours"]["end"])
    tolerance = rules["activity_tolerance_fraction"]

    def calibrations_for(moment):
        return order.calibration_candidates(moment, supply["calibration_weekday"],
                                            supply["calibration_time"],
                                            supply["calibration_timezone"],
                                            supply["shelf_life_days"])
    record.update(vial_sizes_gbq=list(custom if use_custom else standard),
                  custom_vial_step_gbq=supply.get("custom_vial_step_gbq"),
                  activity_tolerance_fraction=tolerance, working_hours=hours.text(),
                  rules_source=rules["source"])
    if not hours.contains(t, zone):
        warnings.append(Warning_(
            "treatment-outside-working-hours",
            f"the treatment time {t.isoformat(timespec='minutes')} is outside the working "
            f"hours {hours.text()} ({rules['source']}): no vial is proposed for it; see the "
            "alternatives"))
    for sol in solution.positions:
        if sol.activity_gbq <= 0:
            record["positions"].append({"name": sol.name, "activity_gbq": 0.0, "vials": []})
            continue
        plan = order.order_whole_vials(sol.activity_gbq, t, half_life, standard, custom,
                                       use_custom, calibrations_for, supply["shelf_life_days"],
                                       tolerance, hours)
        v = plan.chosen or plan.nearest
        exact = v.calibration_time + timedelta(hours=decay.hours_until_activity(
            sum(v.vials_nominal_gbq), sol.activity_gbq, half_life))
        exact_ok = hours.contains(exact, zone) and \
            timedelta(0) <= exact - v.calibration_time <= timedelta(days=supply["shelf_life_days"])
        low, high = order.sphere_count_range(v.activity_at_treatment_gbq, spheres["min"],
                                             spheres["max"])
        entry = {
            "name": sol.name, "activity_gbq": sol.activity_gbq,
            "status": "within-tolerance" if plan.chosen else "no-vial-within-tolerance",
            "within_tolerance": plan.chosen is not None,
            "vials_nominal_gbq": list(v.vials_nominal_gbq), "custom_activity": v.custom,
            "calibration_time": v.calibration_time.isoformat(),
            "activity_at_treatment_gbq": v.activity_at_treatment_gbq,
            "deviation_fraction": v.deviation_fraction,
            "excess_fraction": v.deviation_fraction,
            "prescribed_activity_time": exact.astimezone(zone).isoformat(timespec="minutes")
            if exact_ok else None,
            "days_after_calibration": v.days_after_calibration,
            "spheres_estimate": [low, high],
            "alternatives": [_option_record(o, zone) for o in plan.alternatives]}
        record["positions"].append(entry)
        if plan.chosen is None:
            fits = [o for o in plan.alternatives if o.within(tolerance)]
            warnings.append(Warning_(
                "no-vial-fits",
                f"{sol.name}: NO VIAL FITS: no vial holds {sol.activity_gbq:.3f} GBq within "
                f"±{tolerance * 100:g} % at {t.isoformat(timespec='minutes')} inside working hours "
                f"{hours.text()}; nearest {' + '.join(f'{x:g}' for x in v.vials_nominal_gbq)} "
                f"GBq ({v.deviation_fraction:+.1%}). "
                + (f"Order instead: {_option_text(fits[0])}" if fits else
                   "No alternative fits either: change the treatment time or the prescription")))
        elif len(v.vials_nominal_gbq) > 1:
            warnings.append(Warning_("multiple-vials",
                                     f"{sol.name}: needs {len(v.vials_nominal_gbq)} vials"))


def _option_text(o: order.VialOption) -> str:
    vials = " + ".join(f"{x:g}" for x in o.vials_nominal_gbq)
    return (f"{vials} GBq vial calibrated {o.calibration_time.date().isoformat()}, at "
            f"{o.treatment_time.isoformat(timespec='minutes')} ({o.deviation_fraction:+.1%}, "
            f"{o.kind})")
