"""From a validated case to a plan record: the activity-planning engine.

This module joins the catalogue (product data and limits), the compartment models,
the solver and the ordering rules. It does no file I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from . import catalogue
from .physics import bsa as bsa_model
from .physics import ordering as order
from .physics.compartments import (PARTITION, SINGLE_COMPARTMENT, dose_per_activity,
                                   liver_energy_fraction, lung_dose_per_activity)
from .physics.solver import DoseLimits, PositionProblem, Solution, Violation, solve
from .records.case import Case
from .records.provenance import software_versions

PLAN_SCHEMA = "tareplanner.plan/1"
ML_PER_KG_FACTOR = 1e-3  # mL * g/mL = g; g * 1e-3 = kg

#: Guard-rail thresholds (heuristic plausibility checks; warnings only, see docs/physics.md)
LIVER_VOLUME_PLAUSIBLE_ML = (600.0, 5000.0)
SMALL_PERFUSED_VOLUME_ML = 10.0
LSF_WARNING = 0.10
VIAL_EXCESS_WARNING = 0.10


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
    return applied, record


def _mass_kg(volume_ml: float, density_g_per_ml: float) -> float:
    return volume_ml * density_g_per_ml * ML_PER_KG_FACTOR


def plan_case(case: Case, site_limits: Mapping[str, Any] | None = None,
              site_limits_label: str = "", created: datetime | None = None) -> dict:
    """Plan a validated case; return the plan record (a JSON-ready dict)."""
    product = catalogue.product(case.product, site_limits, site_limits_label)
    nuclide = catalogue.nuclide(product.nuclide)
    cf = nuclide.energy_per_activity_j_per_gbq
    model = dose_model_for(case)
    limits, limits_record = effective_limits(case, product)
    rho = case.tissue_density_g_per_ml
    lsf, residual = case.lung_shunt_fraction, case.residual_fraction
    warnings: list[Warning_] = []

    problems = []
    bsa_details: dict[str, dict] = {}
    bsa_m2 = None
    if case.method == "bsa":
        bsa_m2 = bsa_model.dubois_bsa_m2(case.patient.height_cm, case.patient.weight_kg)
        factor = bsa_model.bsa_lsf_factor(lsf, product.bsa_lsf_bands)
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
        problems.append(PositionProblem(pos.name, goal_kind, goal_value, per_gbq))

    lung_per_gbq = lung_dose_per_activity(cf, lsf, residual, case.lung_mass_kg)
    solution = solve(problems, lung_per_gbq, limits, case.prior_lung_dose_gy)

    warnings += [Warning_(f"measurement:{w['code']}", w["message"])
                 for w in case.measurement_warnings]
    warnings += _clinical_warnings(case, product, solution, model)
    ordering_record = _ordering(case, product, nuclide, solution, warnings)

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
            "violations": [_violation(v) for v in sol.violations],
        }
        if pos.name in bsa_details:
            entry["bsa"] = bsa_details[pos.name]
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
        "lung_mass_kg": case.lung_mass_kg,
        "prior_lung_dose_gy": case.prior_lung_dose_gy,
        "liver_compromised": case.liver_compromised,
        "treatment_time": case.treatment_time.isoformat() if case.treatment_time else None,
        "positions": positions_record,
        "total_activity_gbq": solution.total_activity_gbq,
        "lung_dose_gy": solution.lung_dose_gy,
        "lung_dose_cumulative_gy": solution.lung_dose_cumulative_gy,
        "lung_scale_factor": solution.lung_scale_factor,
        "whole_liver_dose_gy": (
            cf * solution.total_activity_gbq * liver_energy_fraction(lsf, residual)
            / _mass_kg(case.whole_liver_volume_ml, rho)
            if case.whole_liver_volume_ml else None),
        "bsa_m2": bsa_m2,
        "limits": limits_record,
        "limits_source": f"site limits: {site_limits_label}" if site_limits else
                         "product defaults (tareplanner/data/products.json)",
        "tumour_target_gy": dict(product.tumour_target_gy),
        "ordering": ordering_record,
        "violations": [_violation(v) for v in solution.violations],
        "warnings": [w.as_dict() for w in warnings],
        "case": case.document,
    }
    return record


def _violation(v: Violation) -> dict:
    return {"limit": v.limit, "dose_gy": v.dose_gy, "limit_gy": v.limit_gy}


def _clinical_warnings(case: Case, product: catalogue.Product, solution: Solution,
                       model: str) -> list[Warning_]:
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
        if sol.limited_by == "lung-limit":
            w.append(Warning_("lung-limit-scaled",
                              f"{pos.name}: activity scaled by {solution.lung_scale_factor:.3f} "
                              "to respect the lung limit"))
        for v in sol.violations:
            w.append(Warning_("limit-exceeded", f"{pos.name}: {v.limit} exceeded "
                              f"({v.dose_gy:.1f} Gy > {v.limit_gy:g} Gy)"))
        if sol.activity_gbq <= 0:
            w.append(Warning_("zero-activity", f"{pos.name}: no activity can be given within "
                              "the limits"))
    for v in solution.violations:
        w.append(Warning_("limit-exceeded", f"{v.limit} exceeded ({v.dose_gy:.1f} Gy > "
                          f"{v.limit_gy:g} Gy)"))
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
              solution: Solution, warnings: list[Warning_]) -> dict:
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
        sizes = order.vial_sizes(supply["vial_sizes_gbq"], supply.get("custom_vial_step_gbq"),
                                 supply.get("custom_vial_range_gbq"),
                                 case.ordering.therasphere_vials == "custom")
        calibrations = order.calibration_candidates(t, supply["calibration_weekday"],
                                                    supply["calibration_time"],
                                                    supply["calibration_timezone"],
                                                    supply["shelf_life_days"])
        record["vial_sizes_gbq"] = list(sizes)
        for sol in solution.positions:
            if sol.activity_gbq <= 0:
                record["positions"].append({"name": sol.name, "activity_gbq": 0.0, "vials": []})
                continue
            v = order.best_whole_vial_order(sol.activity_gbq, t, half_life, sizes,
                                            calibrations, supply["shelf_life_days"])
            low, high = order.sphere_count_range(v.activity_at_treatment_gbq, spheres["min"],
                                                 spheres["max"])
            record["positions"].append({
                "name": sol.name, "activity_gbq": sol.activity_gbq,
                "vials_nominal_gbq": list(v.vials_nominal_gbq),
                "calibration_time": v.calibration_time.isoformat(),
                "activity_at_treatment_gbq": v.activity_at_treatment_gbq,
                "excess_fraction": v.excess_fraction,
                "prescribed_activity_time": v.prescribed_activity_time.astimezone(
                    t.tzinfo).isoformat(timespec="minutes"),
                "days_after_calibration": v.days_after_calibration,
                "spheres_estimate": [low, high]})
            if v.excess_fraction > VIAL_EXCESS_WARNING:
                warnings.append(Warning_(
                    "vial-excess",
                    f"{sol.name}: the vial holds {v.excess_fraction:.0%} more than prescribed "
                    f"at the treatment time; it holds the prescription at "
                    f"{record['positions'][-1]['prescribed_activity_time']}"))
            if not v.within_shelf_life:
                warnings.append(Warning_("outside-shelf-life",
                                         f"{sol.name}: treatment is {v.days_after_calibration:.1f} "
                                         "days after vial calibration, outside the shelf life"))
            if len(v.vials_nominal_gbq) > 1:
                warnings.append(Warning_("multiple-vials",
                                         f"{sol.name}: needs {len(v.vials_nominal_gbq)} vials"))
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
