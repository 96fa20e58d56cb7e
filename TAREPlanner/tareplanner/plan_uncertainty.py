"""The uncertainty part of a plan: the case's input uncertainties (or the defaults of
``data/uncertainty.json``, each with its source) propagated to the planned doses by
:mod:`tareplanner.physics.uncertainty`. No file I/O beyond the packaged data file."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any, Mapping

from .physics.solver import (LIMITED_BY_LUNG, LIMITED_BY_NORMAL, LIMITED_BY_WHOLE_LIVER,
                             LIMITED_BY_WHOLE_NORMAL_LIVER, Solution)
from .physics.uncertainty import (Limit, PlanInputs, PositionInput, ResolutionInput,
                                  TumourInput, propagate)
from .records.case import Case

#: Figure (of physics.uncertainty.doses) of each shared limit a position can be scaled by
SHARED_LIMIT_FIGURE = {LIMITED_BY_LUNG: "lung", LIMITED_BY_WHOLE_LIVER: "whole liver",
                       LIMITED_BY_WHOLE_NORMAL_LIVER: "whole normal liver"}


@lru_cache(maxsize=None)
def defaults() -> dict:
    """The default input uncertainties with their sources."""
    text = resources.files("tareplanner.data").joinpath("uncertainty.json").read_text("utf-8")
    return json.loads(text)["defaults"]


def settings(case: Case, lung_mass_source: str) -> dict:
    """Each input's standard uncertainty and where it comes from (the case or the default)."""
    d = defaults()
    own = dict(case.uncertainty or {})
    out: dict[str, Any] = {}
    for key in ("calibrator_relative_sd", "residual_sd", "lsf_relative_sd", "boundary_mm",
                "samples", "seed", "exceedance_probability"):
        out[key] = ({"value": own[key], "source": "case"} if key in own else
                    {"value": d[key]["value"], "source": d[key]["source"]})
    lung = d["lung_mass_relative_sd"][lung_mass_source]
    out["lung_mass_relative_sd"] = ({"value": own["lung_mass_relative_sd"], "source": "case"}
                                    if "lung_mass_relative_sd" in own else
                                    {"value": lung["value"], "source": lung["source"]})
    basis = own.get("counting_basis")
    if basis and "lsf_relative_sd" in own:
        out["lsf_relative_sd"]["source"] = f"case (counting statistics: {basis})"
    tnr = own.get("tnr_relative_sd")
    out["tnr_relative_sd"] = ({"value": tnr, "source": "case" if not basis else
                               f"case (counting statistics: {basis})"} if tnr is not None else
                              {"value": d["tnr_relative_sd"]["value"],
                               "source": d["tnr_relative_sd"]["source"]})
    return out


def _tnr_sd(setting: Mapping[str, Any], name: str) -> float:
    value = setting["value"]
    if isinstance(value, dict):
        return value.get(name, defaults()["tnr_relative_sd"]["value"])
    return value


def _binding(position: str, goal_kind: str | None, limited_by: str, tumours,
             partition: bool) -> str | None:
    """The figure (physics.uncertainty.doses) whose planned dose a position's activity is set
    for; None for an explicit activity."""
    if limited_by == LIMITED_BY_NORMAL:
        return f"{position}: normal liver"
    if limited_by == "perfused-limit":
        return f"{position}: perfused"
    if limited_by in SHARED_LIMIT_FIGURE:
        return SHARED_LIMIT_FIGURE[limited_by]
    if goal_kind is None or goal_kind == "activity_gbq":
        return None
    if goal_kind == "tumour_dose_gy":
        # the goal aims at the tumour with the lowest dose (lowest TNR)
        lowest = min(tumours, key=lambda t: t.tnr if (partition and t.tnr) else 0.0)
        return f"{position}/{lowest.name}"
    return f"{position}: " + {"normal_dose_gy": "normal liver",
                              "perfused_dose_gy": "perfused"}[goal_kind]


def _resolution_input(table: Mapping[str, Any] | None, lsf_method: str
                      ) -> ResolutionInput | None:
    """The case's resolution sensitivity table as a Monte Carlo input (None without one)."""
    if not table:
        return None
    spread = table["half_range_mm"] if table["distribution"] == "uniform" else table["sd_mm"]
    return ResolutionInput(
        fwhm_mm=table["fwhm_mm"], grid_fwhm_mm=tuple(table["grid_fwhm_mm"]),
        tnr={k: tuple(v) for k, v in table.get("tnr", {}).items()},
        lsf=tuple(table["lsf"]) if table.get("lsf") and lsf_method != "manual" else None,
        distribution=table["distribution"], spread_mm=float(spread))


def plan_uncertainty(case: Case, solution: Solution, *, energy_j_per_gbq: float,
                     partition: bool, lung_mass: Mapping[str, Any], limits_gy: Mapping[str, Any],
                     whole_limits: list, resolved_goals: Mapping[str, str] | None = None) -> dict:
    """The ``uncertainty`` part of a plan record. ``resolved_goals``: the dose goal a
    position's ``maximum`` goal was resolved to (position name -> goal kind)."""
    cfg = settings(case, lung_mass["source"])
    positions = []
    for pos, sol in zip(case.positions, solution.positions):
        goal_kind = pos.goal.kind if pos.goal else None
        goal_kind = (resolved_goals or {}).get(pos.name, goal_kind)
        binding = _binding(pos.name, goal_kind, sol.limited_by, pos.tumours, partition)
        positions.append(PositionInput(
            name=pos.name, activity_gbq=sol.activity_gbq,
            explicit=goal_kind in (None, "activity_gbq"),
            normal_volume_ml=pos.normal_volume_ml,
            tumours=tuple(TumourInput(t.name, t.volume_ml, t.tnr,
                                      _tnr_sd(cfg["tnr_relative_sd"], t.name))
                          for t in pos.tumours),
            binding_figure=binding))
    inputs = PlanInputs(
        energy_j_per_gbq=energy_j_per_gbq, density_g_per_ml=case.tissue_density_g_per_ml,
        partition=partition, lung_shunt_fraction=case.lung_shunt_fraction,
        lsf_relative_sd=cfg["lsf_relative_sd"]["value"],
        residual_fraction=case.residual_fraction, residual_sd=cfg["residual_sd"]["value"],
        calibrator_relative_sd=cfg["calibrator_relative_sd"]["value"],
        lung_mass_kg=lung_mass["kg"], lung_mass_relative_sd=cfg["lung_mass_relative_sd"]["value"],
        prior_lung_dose_gy=case.prior_lung_dose_gy, boundary_mm=cfg["boundary_mm"]["value"],
        positions=tuple(positions), whole_liver_volume_ml=case.whole_liver_volume_ml,
        whole_liver_tumour_volume_ml=case.whole_liver_tumour_volume_ml,
        resolution=_resolution_input((case.uncertainty or {}).get("resolution"),
                                     case.lsf_method))
    limits = []
    if limits_gy.get("normal_liver_gy") is not None:
        limits += [Limit(f"{p.name}: normal-liver-limit", f"{p.name}: normal liver",
                         limits_gy["normal_liver_gy"]) for p in case.positions]
    for name, figure, key in (("lung-limit", "lung", "lung_single_gy"),
                              ("lung-cumulative-limit", "lung cumulative", "lung_cumulative_gy")):
        if limits_gy.get(key) is not None:
            limits.append(Limit(name, figure, limits_gy[key]))
    limits += [Limit(s.name, SHARED_LIMIT_FIGURE[s.name], s.limit_gy) for s in whole_limits]
    result = propagate(inputs, limits, n=cfg["samples"]["value"], seed=cfg["seed"]["value"],
                       exceedance_probability=cfg["exceedance_probability"]["value"])
    table = (case.uncertainty or {}).get("resolution")
    if table:
        cfg = {**cfg, "resolution": {
            "fwhm_mm": table["fwhm_mm"], "distribution": table["distribution"],
            **({"half_range_mm": table["half_range_mm"]} if "half_range_mm" in table else
               {"sd_mm": table["sd_mm"],
                **({"sd_basis": table["sd_basis"]} if "sd_basis" in table else {})}),
            "assumed": table.get("assumed", False), "source": table.get("source", ""),
            "method": "the partial-volume correction repeated at FWHMs "
                      + ", ".join(f"{f:.1f}" for f in table["grid_fwhm_mm"])
                      + " mm; TNRs and LSF interpolated per sample"}}
    result["inputs"] = cfg
    return result
