"""Activities planned on voxel doses: one dose map per GBq and position, goals and limits on
structure mean doses (or D70), solved jointly; and the plan record of the result."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..imaging.arrays import image_array
from ..records.dose_record import indices_only
from .activity import predictive_activity
from .dose import dose_map, structure_report
from .structures import Structures


def unit_dose_maps(counts: sitk.Image, structures: Structures, positions: list[str],
                   lung_shunt_fraction: float, residual_fraction: float, nuclide: str,
                   ct: sitk.Image, method: str = "kernel") -> dict[str, sitk.Image]:
    """Dose map per GBq administered at each position (its lung share included)."""
    maps = {}
    for name in positions:
        activity, _ = predictive_activity(counts, structures, {name: 1.0}, lung_shunt_fraction,
                                          residual_fraction)
        maps[name], _ = dose_map(activity, nuclide, ct, structures.masks["lungs"], method=method)
    return maps


def voxel_plan(counts: sitk.Image, structures: Structures, plan: dict, nuclide: str,
               ct: sitk.Image, *, method: str = "kernel", tumour_index: str = "mean") -> dict:
    """Activities meeting the plan's tumour goals under voxel limits, jointly for all positions.

    Goals: each position's ``tumour_dose_gy`` applies to its tumours as a mean dose
    (``tumour_index`` "mean") or a D70 ("D70", iterated: the LP works on means, scaled by the
    current D70/mean ratio, three passes). Limits: mean dose of each position's perfused normal
    liver (the plan's applied normal-liver limit), of the lungs (lung allowance), and of the
    whole liver and whole normal liver (the plan's whole-liver limits).
    """
    from ..physics.solver import lung_allowance_gy, DoseLimits
    from ..physics.voxel_planning import solve_voxel_plan

    names = [p["name"] for p in plan["positions"]]
    maps = unit_dose_maps(counts, structures, names, plan["lung_shunt_fraction"],
                          plan["residual_fraction"], nuclide, ct, method)
    reports = {n: structure_report(maps[n], structures, nuclide=nuclide) for n in names}
    tumours, goals = [], []
    for p in plan["positions"]:
        goal = p["goal"].get("tumour_dose_gy")
        for t in p["tumours"]:
            if goal is not None and t["name"] in structures.masks:
                tumours.append(t["name"])
                goals.append(goal)
    if not tumours:
        raise ValueError("voxel plan: no position has a tumour_dose_gy goal")
    lim = plan["limits"]
    normal_limit = lim[lim["applied_normal_liver"]]["value"]
    allowance = lung_allowance_gy(DoseLimits(None, lim["lung_single_gy"]["value"],
                                             lim["lung_cumulative_gy"]["value"]),
                                  plan["prior_lung_dose_gy"])
    limit_names, limit_rows, limit_values = [], [], []
    for n in names:
        key = f"normal liver ({n})"
        if normal_limit is not None and key in structures.masks:
            limit_names.append(f"normal-liver-limit ({n})")
            limit_rows.append([reports[m][key]["mean_gy"] for m in names])
            limit_values.append(normal_limit)
    if np.isfinite(allowance):
        limit_names.append("lung-limit")
        limit_rows.append([reports[m]["lungs"]["mean_gy"] for m in names])
        limit_values.append(allowance)
    # the limits shared by all positions: mean dose of the whole liver and of the whole
    # normal liver (EANM 2022; products.json), as the partition plan applies them
    whole_normal_key = lim.get("applied_whole_normal_liver")
    for name, key, structure in (
            ("whole-liver-limit", "whole_liver_gy", "liver"),
            ("whole-normal-liver-limit", whole_normal_key, "normal liver")):
        value = (lim.get(key) or {}).get("value") if key else None
        if value is not None and structure in structures.masks:
            limit_names.append(name)
            limit_rows.append([reports[m][structure]["mean_gy"] for m in names])
            limit_values.append(value)
    # guideline recommendations the site promoted to hard limits, as the partition plan
    # applies them (whole liver, whole normal liver, a position's normal liver)
    for row in (plan.get("guideline_check") or {}).get("rows", []):
        if row.get("kind") != "hard" or not row.get("site_change") \
                or not row.get("condition_known", True):
            continue
        ceiling = row["high"] if row.get("operator") == "range" else row["value"]
        structure, name = {
            "whole_liver": ("liver", "whole-liver-limit"),
            "whole_normal_liver": ("normal liver", "whole-normal-liver-limit"),
            "normal_perfused": (f"normal liver ({row['where']})",
                                f"normal-liver-limit ({row['where']})")}.get(
                row["quantity"], (None, None))
        if structure in structures.masks:
            limit_names.append(name)
            limit_rows.append([reports[m][structure]["mean_gy"] for m in names])
            limit_values.append(ceiling)
    per_gbq = np.array([[reports[m][t]["mean_gy"] for m in names] for t in tumours])
    scale = np.ones(len(tumours))
    for _ in range(3 if tumour_index == "D70" else 1):
        result = solve_voxel_plan(per_gbq, np.array(goals) * scale, np.array(limit_rows),
                                  np.array(limit_values), limit_names)
        arrays = [image_array(maps[n]) for n in names]
        total = sitk.GetImageFromArray(sum(float(a) * arr for a, arr in
                                           zip(result.activities_gbq, arrays)).astype(np.float32))
        total.CopyInformation(maps[names[0]])
        achieved = structure_report(total, structures, nuclide=nuclide)
        if tumour_index == "D70":
            scale = np.array([achieved[t]["mean_gy"] / max(achieved[t]["D70"], 1e-9)
                              for t in tumours])
    return {"method": f"voxel-{method}", "tumour_index": tumour_index,
            "activities_gbq": dict(zip(names, map(float, result.activities_gbq))),
            "goal_fraction": result.goal_fraction,
            "tumour_goal_fractions": dict(zip(tumours, map(float, result.tumour_goal_fractions))),
            "binding": list(result.binding),
            "structures": indices_only(achieved),
            "dose": total}


def voxel_plan_record(plan: dict, result: dict) -> dict:
    """A ``tareplanner.plan/1`` record of a voxel plan: the partition plan's case, limits and
    provenance, with the voxel activities, mean doses and binding constraints."""
    import copy

    record = copy.deepcopy(plan)
    structures = result["structures"]
    record["method"] = "voxel"
    record["dose_model"] = result["method"]
    record["voxel_plan"] = {k: v for k, v in result.items() if k not in ("structures", "dose")}
    warnings = [w for w in plan["warnings"] if w["code"] not in ("tumour-below-target",
                                                                  "limit-exceeded")]
    for pos in record["positions"]:
        name = pos["name"]
        pos["activity_gbq"] = result["activities_gbq"][name]
        pos["normal_dose_gy"] = structures[f"normal liver ({name})"]["mean_gy"]
        pos["perfused_dose_gy"] = None
        for t in pos["tumours"]:
            t["dose_gy"] = structures[t["name"]]["mean_gy"]
            t["d70_gy"] = structures[t["name"]]["D70"]
        reached = all(result["tumour_goal_fractions"].get(t["name"], 1.0) >= 1 - 1e-6
                      for t in pos["tumours"])
        binding = result["binding"]
        pos["limited_by"] = "goal" if reached or not binding else _voxel_limited_by(binding)
        pos["binding_constraints"] = [] if reached else list(binding)
        pos["violations"] = []
    for t, fraction in result["tumour_goal_fractions"].items():
        if fraction < 1 - 1e-6:
            warnings.append({"code": "voxel-goal-not-reached",
                             "message": f"{t}: {fraction:.0%} of its goal within the limits"})
    record["warnings"] = warnings
    record["total_activity_gbq"] = float(sum(result["activities_gbq"].values()))
    record["lung_dose_gy"] = structures["lungs"]["mean_gy"]
    record["lung_dose_cumulative_gy"] = structures["lungs"]["mean_gy"] + plan["prior_lung_dose_gy"]
    record["violations"] = []
    # the partition plan's intervals belong to its activities, not to these
    record.pop("uncertainty", None)
    if "liver" in structures and "normal liver" in structures:
        record["whole_liver_dose_gy"] = structures["liver"]["mean_gy"]
        if record.get("whole_liver", {}).get("checked"):
            record["whole_liver"] = {**record["whole_liver"],
                                     "whole_liver_dose_gy": structures["liver"]["mean_gy"],
                                     "whole_normal_liver_dose_gy":
                                         structures["normal liver"]["mean_gy"]}
    return record


def _voxel_limited_by(binding: list[str]) -> str:
    """The plan's limited_by for a voxel plan held back by these binding limits."""
    for kind in ("whole-normal-liver-limit", "whole-liver-limit", "normal-liver-limit",
                 "lung-limit"):
        if any(b.startswith(kind) for b in binding):
            return kind
    return "normal-liver-limit"
