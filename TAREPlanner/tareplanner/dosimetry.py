"""Voxel dosimetry of a case: predictive (from the MAA/scout SPECT and the plan's activities)
and post-treatment (from Y-90 PET in Bq/mL, or from SPECT counts scaled to the administered
activity), dose maps, DVHs and indices per structure, BED, and delivered-versus-planned.

Grids: the dose is computed on the emission image's grid (SPECT/PET); structures are CT-grid
label maps. Structure occupancy on the dose grid (for distributing activity) is computed by
supersampling (k³ points per dose voxel, nearest CT voxel); DVHs are computed at CT
resolution, the dose being linearly interpolated onto the CT grid (every CT voxel counted with
its volume), which handles partial dose voxels at structure edges.
"""

from __future__ import annotations

import math

from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

import numpy as np
import SimpleITK as sitk

from . import catalogue
from .imaging.arrays import image_array
from .imaging.grid import Grid, block_mean
from .kernel_data import POINT_KERNELS, point_kernel
from .physics.decay import decay_factor, hours_between
from .physics.dvh import bed_gy, cumulative_dvh, dose_indices
from .physics.kernels import voxel_kernel
from .physics.voxel_dose import density_from_hu, energy_fractions, kernel_dose_gy, ldm_dose_gy

DOSE_SCHEMA = "tareplanner.dose/1"
#: LQ parameters and the kernels' soft-tissue density, with their sources
#: (tareplanner/data/radiobiology.json)
SOFT_TISSUE_KERNEL_DENSITY = catalogue.radiobiology()["kernel_soft_tissue_density_g_per_cm3"][
    "value"]
BED_PARAMETERS = {kind: {k: v for k, v in entry.items() if k != "source"}
                  for kind, entry in catalogue.radiobiology()["bed_parameters"].items()}


@dataclass
class Structures:
    """CT-grid boolean masks by name, and each one's kind (tumour, normal, lung, liver)."""

    reference: sitk.Image
    masks: dict[str, np.ndarray]
    kinds: dict[str, str]
    territories: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def voxel_ml(self) -> float:
        return float(np.prod(self.reference.GetSpacing())) / 1000.0


def _supersampled(image: sitk.Image, k: int) -> Grid:
    """The grid that splits every voxel of ``image`` into k x k x k sub-voxels."""
    grid = Grid.of(image)
    return Grid(tuple(n * k for n in grid.size), tuple(s / k for s in grid.spacing_mm),
                tuple(o - s / 2 + s / (2 * k) for o, s in zip(grid.origin_mm, grid.spacing_mm)))


def occupancy_on(grid_image: sitk.Image, mask: np.ndarray, reference: sitk.Image,
                 supersample: int = 3) -> np.ndarray:
    """Fraction of each voxel of ``grid_image`` covered by a CT-grid ``mask``."""
    fine = _supersampled(grid_image, supersample)
    src = sitk.GetImageFromArray(mask.astype(np.uint8))
    src.CopyInformation(reference)
    ref_fine = fine.image(np.zeros(fine.shape_zyx, np.uint8))
    moved = sitk.Resample(src, ref_fine, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    return block_mean(sitk.GetArrayFromImage(moved).astype(np.float32), supersample)


def predictive_activity(counts: sitk.Image, structures: Structures, activities_gbq: dict,
                        lung_shunt_fraction: float, residual_fraction: float) -> tuple:
    """Activity per voxel (GBq) of the planned treatment, from the scout/MAA distribution.

    Position i's liver activity A_i (1 − R)(1 − LSF) is spread over its territory in
    proportion to the counts; the lung activity Σ A_i (1 − R) LSF over the lungs in proportion
    to the counts. Counts outside every territory and the lungs get no activity; their fraction
    is reported. Overlapping territories share a voxel's counts by their occupancy.
    """
    c = np.clip(sitk.GetArrayFromImage(counts).astype(np.float64), 0, None)
    occ = {name: occupancy_on(counts, m, structures.reference)
           for name, m in structures.territories.items()}
    total_occ = np.maximum(sum(occ.values()), 1.0)
    activity = np.zeros(c.shape, np.float64)
    for name, a_gbq in activities_gbq.items():
        share = c * occ[name] / total_occ
        if share.sum() <= 0:
            raise ValueError(f"the territory of {name!r} holds no counts")
        activity += share / share.sum() * a_gbq * (1 - residual_fraction) * (1 - lung_shunt_fraction)
    lungs = occupancy_on(counts, structures.masks["lungs"], structures.reference)
    lung_share = c * lungs
    total_gbq = sum(activities_gbq.values())
    if lung_share.sum() > 0:
        activity += lung_share / lung_share.sum() * total_gbq * (1 - residual_fraction) * \
            lung_shunt_fraction
    covered = np.clip(sum(occ.values()) + lungs, 0, 1)
    outside = float((c * (1 - covered)).sum() / c.sum()) if c.sum() > 0 else 0.0
    image = sitk.GetImageFromArray(activity.astype(np.float32))
    image.CopyInformation(counts)
    return image, {"counts_outside_territories_and_lungs_fraction": outside}


def pet_activity_at_administration(pet: sitk.Image, acquisition: datetime,
                                   administration: datetime, half_life_h: float) -> sitk.Image:
    """GBq per voxel at administration from a PET in Bq/mL decay-corrected to acquisition
    start: A = C · V · exp(λ Δt) (microspheres are permanent: physical decay only)."""
    voxel_ml = float(np.prod(pet.GetSpacing())) / 1000.0
    elapsed = hours_between(administration, acquisition)
    remaining = float(decay_factor(elapsed, half_life_h))
    if not (math.isfinite(remaining) and remaining > 0):
        raise ValueError(f"acquisition {elapsed:.4g} h after the administration: the decay "
                         "correction is out of range (check both times)")
    factor = 1.0 / remaining
    values = sitk.GetArrayFromImage(pet).astype(np.float64) * voxel_ml * factor / 1e9
    image = sitk.GetImageFromArray(values.astype(np.float32))
    image.CopyInformation(pet)
    return image


def counts_to_activity(counts: sitk.Image, structures: Structures, administered_gbq: float,
                       residual_fraction: float) -> sitk.Image:
    """Scale a post-treatment SPECT (bremsstrahlung or Ho-166) to the implanted activity:
    A(1 − R) shared by the counts in liver and lungs."""
    c = np.clip(sitk.GetArrayFromImage(counts).astype(np.float64), 0, None)
    inside = np.clip(occupancy_on(counts, structures.masks["liver"], structures.reference)
                     + occupancy_on(counts, structures.masks["lungs"], structures.reference), 0, 1)
    total = (c * inside).sum()
    if total <= 0:
        raise ValueError("no counts in liver and lungs")
    values = c * inside / total * administered_gbq * (1 - residual_fraction)
    image = sitk.GetImageFromArray(values.astype(np.float32))
    image.CopyInformation(counts)
    return image

def verification_settings() -> dict:
    """The packaged ``data/verification.json``: the tolerance of the post-treatment activity
    check with its source, and the likely causes of a difference."""
    import json
    from importlib import resources
    text = resources.files("tareplanner.data").joinpath("verification.json").read_text("utf-8")
    return json.loads(text)


def activity_check(image_total_gbq: float, inside_gbq: float, administered_gbq: float,
                   residual_fraction: float, administered_source: str,
                   tolerance: float | None = None) -> tuple[dict, list[dict]]:
    """Activity found in a post-treatment image against the activity administered.

    Expected in the patient: A_expected = A_administered (1 − R). Relative difference
    δ = (A_image − A_expected) / A_expected over the whole image (decay-corrected to the
    administration). |δ| ≤ tolerance passes (to 1·10⁻⁹ relative, for rounding); beyond it a
    ``post-treatment-activity`` warning names the likely causes. The tolerance defaults to
    ``data/verification.json``. Returns (the check, its warnings).
    """
    from .errors import FieldValueError
    settings = verification_settings()
    entry = settings["post_treatment_activity_tolerance"]
    tol = float(entry["value"]) if tolerance is None else float(tolerance)
    if not (np.isfinite(administered_gbq) and administered_gbq > 0):
        raise FieldValueError("administered activity (GBq)", administered_gbq,
                              "a finite activity > 0 GBq")
    if not 0 <= residual_fraction < 1:
        raise FieldValueError("residual fraction", residual_fraction, "0 <= R < 1")
    if not np.isfinite(image_total_gbq):
        raise FieldValueError("activity in the post-treatment image (GBq)", image_total_gbq,
                              "a finite number (the image holds NaN or infinite voxels)")
    expected = administered_gbq * (1.0 - residual_fraction)
    relative = (image_total_gbq - expected) / expected
    within = abs(relative) <= tol * (1 + 1e-9)
    check = {"applicable": True,
             "administered_activity_gbq": administered_gbq,
             "administered_source": administered_source,
             "residual_fraction": residual_fraction,
             "expected_in_patient_gbq": expected,
             "image_total_gbq": image_total_gbq,
             "inside_liver_and_lungs_gbq": inside_gbq,
             "inside_liver_and_lungs_fraction": (inside_gbq / image_total_gbq
                                                 if image_total_gbq > 0 else None),
             "relative_difference": relative,
             "tolerance": tol,
             "tolerance_source": entry["source"] if tolerance is None else "given by the caller",
             "within_tolerance": bool(within)}
    warnings = []
    if not within:
        causes = "; ".join(settings["likely_causes"]["value"])
        warnings.append({
            "code": "post-treatment-activity",
            "message": f"the post-treatment image holds {image_total_gbq:.3f} GBq at "
                       f"administration ({inside_gbq:.3f} GBq in liver and lungs) against "
                       f"{expected:.3f} GBq expected ({administered_source} "
                       f"{administered_gbq:.3f} GBq, residual {residual_fraction:.1%}): "
                       f"{relative:+.1%}, beyond the ±{tol:.0%} tolerance; delivered doses "
                       f"scale with it. Check: {causes}."})
    return check, warnings


def activity_inside(activity: sitk.Image, structures: Structures,
                    names=("liver", "lungs")) -> float:
    """GBq of an activity image inside the union of CT-grid structures (voxel occupancy by
    supersampling, as for the dose)."""
    occupied = sum(occupancy_on(activity, structures.masks[n], structures.reference)
                   for n in names)
    values = sitk.GetArrayFromImage(activity).astype(np.float64)
    return float((values * np.clip(occupied, 0, 1)).sum())


def post_treatment_activity_check(activity: sitk.Image, structures: Structures, plan: dict, *,
                                  administered_gbq: float | None = None,
                                  residual_fraction: float | None = None,
                                  tolerance: float | None = None) -> tuple[dict, list[dict]]:
    """:func:`activity_check` of a post-treatment activity image (GBq per voxel at
    administration, e.g. from :func:`pet_activity_at_administration`) against the plan's total
    activity less its residual, or ``administered_gbq`` and ``residual_fraction`` when the
    caller gives them."""
    total = float(sitk.GetArrayFromImage(activity).astype(np.float64).sum())
    if administered_gbq is None:
        administered, source = float(plan["total_activity_gbq"]), "planned total activity"
    else:
        administered, source = float(administered_gbq), "administered activity (given)"
    residual = float(plan["residual_fraction"] if residual_fraction is None
                     else residual_fraction)
    return activity_check(total, activity_inside(activity, structures), administered, residual,
                          source, tolerance)


def not_applicable_check(reason: str) -> dict:
    """The activity check of an image that was scaled to the administered activity."""
    return {"applicable": False, "reason": reason}


def structure_means(dose: sitk.Image, structures: Structures) -> dict[str, float]:
    """Mean dose (Gy) per structure at CT resolution (linear interpolation, as the DVHs)."""
    on_ct = sitk.Resample(dose, structures.reference, sitk.Transform(), sitk.sitkLinear, 0.0,
                          sitk.sitkFloat32)
    d = sitk.GetArrayFromImage(on_ct)
    return {name: float(d[mask].mean()) for name, mask in structures.masks.items() if mask.any()}


def partition_doses(plan: dict) -> dict[str, float]:
    """The plan record's compartment-model doses by dose-report structure name: tumours,
    ``normal liver (<position>)``, ``lungs`` and (when given) ``liver``."""
    doses = {}
    for pos in plan["positions"]:
        for t in pos["tumours"]:
            doses[t["name"]] = float(t["dose_gy"])
        doses[f"normal liver ({pos['name']})"] = float(pos["normal_dose_gy"])
    doses["lungs"] = float(plan["lung_dose_gy"])
    whole = plan.get("whole_liver_dose_gy")
    if isinstance(whole, (int, float)):
        doses["liver"] = float(whole)
    return doses


def voxel_versus_partition(plan: dict, voxel_means_gy: dict, ldm_means_gy: dict,
                           counts_outside_fraction: float, method: str) -> dict:
    """Why the voxel mean doses differ from the partition model's, per structure.

    activity effect = D_LDM / D_model − 1: where the image puts the activity (resolution
    spill between tumour and normal liver and across structure edges, a non-uniform uptake,
    the lung mass from CT voxels instead of the plan's lung mass); energy-escape effect =
    D_voxel / D_LDM − 1: beta energy carried across structure edges by the kernel (0 with
    LDM). Both multiply: D_voxel / D_model = (1 + activity)(1 + escape)."""
    model = partition_doses(plan)
    rows = {}
    for name, d_model in model.items():
        if name not in voxel_means_gy or name not in ldm_means_gy or d_model <= 0:
            continue
        ldm, voxel = ldm_means_gy[name], voxel_means_gy[name]
        rows[name] = {"model_gy": d_model, "ldm_mean_gy": ldm, "voxel_mean_gy": voxel,
                      "difference": voxel / d_model - 1,
                      "activity_effect": ldm / d_model - 1,
                      "energy_escape_effect": voxel / ldm - 1 if ldm > 0 else None}
    tumours = [n for n in rows if n not in ("lungs", "liver") and not n.startswith("normal")]
    explanation = [
        "The partition model spreads each compartment's activity uniformly over its mask "
        "(tumour at TNR times the normal-liver concentration); the voxel dose follows the "
        "image. D_voxel / D_model = (1 + activity effect)(1 + energy escape).",
        "Activity effect (LDM voxel mean against the model): the emission image is blurred "
        "by the scanner's resolution, so hot tumour counts spill into the normal liver and "
        "beyond the "
        "liver edge, uptake is not uniform within a structure, and lung doses use the CT lung "
        "density per voxel (a voxel mean, not the plan's lung mass of "
        f"{plan.get('lung_mass_kg')} kg)."
        + (" " + ", ".join(f"{n} {rows[n]['activity_effect']:+.1%}" for n in rows) + "."
           if rows else ""),
        f"Energy escape ({method} against LDM): beta energy crosses structure edges (mean "
        "range of Y-90 electrons in tissue ~2.5 mm, maximum ~11 mm); small and hot structures "
        "lose the most." + (" " + ", ".join(
            f"{n} {rows[n]['energy_escape_effect']:+.1%}" for n in rows
            if rows[n]["energy_escape_effect"] is not None) + "." if rows else ""),
        f"Counts outside the territories and lungs: {counts_outside_fraction:.1%} of the "
        "SPECT counts; the predictive dose gives them no activity (the planned activity is "
        "kept in the structures), whereas in a post-treatment PET in Bq/mL the activity "
        "outside liver and lungs is simply lost to them."]
    if tumours:
        explanation.append("Tumours: " + ", ".join(
            f"{n} {rows[n]['model_gy']:.0f} Gy (model) vs {rows[n]['voxel_mean_gy']:.0f} Gy "
            f"(voxel mean, {rows[n]['difference']:+.1%})" for n in tumours) + ".")
    return {"structures": rows, "explanation": explanation}



@lru_cache(maxsize=16)
def _fractions(nuclide: str, spacing_mm: tuple) -> np.ndarray:
    return energy_fractions(voxel_kernel(point_kernel(nuclide), spacing_mm,
                                         SOFT_TISSUE_KERNEL_DENSITY))


def dose_map(activity: sitk.Image, nuclide: str, ct: sitk.Image, lungs_ct: np.ndarray, *,
             method: str = "kernel", soft_tissue_density_g_per_ml: float | None = 1.03,
             convolve=None, density_curve=None,
             density_curve_info: dict | None = None) -> tuple[sitk.Image, dict]:
    """Absorbed dose (Gy) on the activity's grid.

    Density: lungs from the CT (HU to density with ``density_curve``, a
    ``physics.voxel_dose.HuDensityCurve``, by default the packaged ``data/hu_density.json``;
    averaged over each dose voxel); elsewhere ``soft_tissue_density_g_per_ml`` (the planning
    density), or the CT density when None. The record names the curve (``density_curve_info``
    as returned by ``density_curves.read_curve`` for a site file).
    ``method`` "kernel" (Y-90) or "ldm"; a nuclide without a kernel falls back to LDM, and the
    record says so.
    """
    cf = catalogue.nuclide(nuclide).energy_per_activity_j_per_gbq
    voxel_ml = float(np.prod(activity.GetSpacing())) / 1000.0
    from .density_curves import curve_record, default_curve

    if density_curve is None:
        density_curve = default_curve()
    ct_density = sitk.GetImageFromArray(density_from_hu(sitk.GetArrayFromImage(ct),
                                                        density_curve))
    ct_density.CopyInformation(ct)
    density = block_mean_resample(ct_density, activity)
    lung_occ = occupancy_on(activity, lungs_ct, ct)
    lung = lung_occ >= 0.5
    if soft_tissue_density_g_per_ml is not None:
        density = np.where(lung, density, np.float32(soft_tissue_density_g_per_ml))
    density = np.maximum(density, 0.05).astype(np.float32)
    a = sitk.GetArrayFromImage(activity).astype(np.float32)
    info = {"method": method, "nuclide": nuclide, "energy_per_activity_j_per_gbq": cf,
            "soft_tissue_density_g_per_ml": soft_tissue_density_g_per_ml,
            "lung": "local deposition with CT lung density",
            "density_curve": density_curve_info or curve_record(density_curve)}
    if method == "kernel" and nuclide not in POINT_KERNELS:
        method = "ldm"
        info.update(method="ldm", note=f"no beta kernel for {nuclide}: local deposition used")
    if method == "kernel":
        spacing = tuple(round(s, 6) for s in activity.GetSpacing())
        kwargs = {"convolve": convolve} if convolve is not None else {}
        dose = kernel_dose_gy(a, cf, density, voxel_ml, _fractions(nuclide, spacing),
                              lung_mask=lung, **kwargs)
        source = "Graves et al. 2019 Y-90 DPK integrated over the voxels"
        if nuclide != "Y-90":
            source += (f", range-scaled to {nuclide} with its ICRP-107 spectrum (Katz-Penfold "
                       "CSDA ranges, energy-weighted)")
        info["kernel"] = {"source": source,
                          "soft_tissue_density_g_per_cm3": SOFT_TISSUE_KERNEL_DENSITY}
    elif method == "ldm":
        dose = ldm_dose_gy(a, cf, density, voxel_ml)
    else:
        raise ValueError(f"method must be 'kernel' or 'ldm', got {method!r}")
    image = sitk.GetImageFromArray(dose.astype(np.float32))
    image.CopyInformation(activity)
    return image, info


def block_mean_resample(image: sitk.Image, reference: sitk.Image, supersample: int = 3):
    """Mean of ``image`` over each voxel of ``reference`` (supersampled, linear)."""
    fine = _supersampled(reference, supersample)
    moved = sitk.Resample(image, fine.image(np.zeros(fine.shape_zyx, np.float32)),
                          sitk.Transform(), sitk.sitkLinear, 1.0, sitk.sitkFloat32)
    return block_mean(sitk.GetArrayFromImage(moved), supersample)


def structure_report(dose: sitk.Image, structures: Structures, *, nuclide: str,
                     v_thresholds_gy=(), bin_gy: float = 1.0) -> dict:
    """Indices, BED indices and cumulative DVH of every structure (CT resolution)."""
    on_ct = sitk.Resample(dose, structures.reference, sitk.Transform(), sitk.sitkLinear, 0.0,
                          sitk.sitkFloat32)
    d = image_array(on_ct)
    half_life = catalogue.nuclide(nuclide).half_life_h
    report = {}
    top = float(d.max()) if d.size else 0.0
    for name, mask in structures.masks.items():
        values = d[mask]
        if values.size == 0:
            continue
        weights = None  # whole CT voxels
        kind = structures.kinds[name]
        idx = dose_indices(values, weights, structures.voxel_ml,
                           v_thresholds_gy=v_thresholds_gy).as_dict()
        lq = BED_PARAMETERS["tumour" if kind == "tumour" else "normal"]
        bed = bed_gy(values, half_life, lq["repair_half_time_h"], lq["alpha_beta_gy"])
        bed_idx = dose_indices(bed, weights, structures.voxel_ml)
        edges, volume = cumulative_dvh(values, weights, bin_gy, max_gy=top)
        bed_edges, bed_volume = cumulative_dvh(bed, weights, bin_gy,
                                               max_gy=float(bed_gy(top, half_life,
                                                                   lq["repair_half_time_h"],
                                                                   lq["alpha_beta_gy"])))
        report[name] = {"kind": kind, **idx,
                        "bed": {"mean_gy": bed_idx.mean_gy, "D70": bed_idx.d_gy["D70"],
                                "alpha_beta_gy": lq["alpha_beta_gy"],
                                "repair_half_time_h": lq["repair_half_time_h"]},
                        "dvh": {"dose_gy": edges.tolist(), "volume_percent": volume.tolist()},
                        "bed_dvh": {"dose_gy": bed_edges.tolist(),
                                    "volume_percent": bed_volume.tolist()}}
    return report


def bed_map(dose: sitk.Image, structures: Structures, nuclide: str) -> sitk.Image:
    """Voxel BED (Gy): tumour LQ parameters where tumours fill at least half of a voxel,
    normal-tissue parameters elsewhere."""
    half_life = catalogue.nuclide(nuclide).half_life_h
    tumour = np.zeros(structures.reference.GetSize()[::-1], bool)
    for name, mask in structures.masks.items():
        if structures.kinds[name] == "tumour":
            tumour |= mask
    in_tumour = occupancy_on(dose, tumour, structures.reference) >= 0.5
    d = sitk.GetArrayFromImage(dose).astype(np.float64)
    t, n = BED_PARAMETERS["tumour"], BED_PARAMETERS["normal"]
    values = np.where(in_tumour,
                      bed_gy(d, half_life, t["repair_half_time_h"], t["alpha_beta_gy"]),
                      bed_gy(d, half_life, n["repair_half_time_h"], n["alpha_beta_gy"]))
    image = sitk.GetImageFromArray(values.astype(np.float32))
    image.CopyInformation(dose)
    return image


def indices_only(report: dict) -> dict:
    """A structure report without its histograms (what records and comparisons keep)."""
    return {name: {k: v for k, v in r.items() if k not in ("dvh", "bed_dvh")}
            for name, r in report.items()}


def compare(planned: dict, delivered: dict) -> dict:
    """Delivered minus planned, per structure, for mean dose, D70 and V-values."""
    out = {}
    for name in planned:
        if name not in delivered:
            continue
        entry = {}
        for key, value in planned[name].items():
            if isinstance(value, (int, float)) and key in delivered[name] and key != "volume_ml":
                got = delivered[name][key]
                entry[key] = {"planned": value, "delivered": got, "difference": got - value,
                              "relative": (got - value) / value if value else None}
        out[name] = entry
    return out


def structures_from_labels(ct: sitk.Image, liver: np.ndarray, lungs: np.ndarray,
                           tumours: dict[str, np.ndarray], territories: dict[str, np.ndarray]
                           ) -> Structures:
    """Tumours, perfused normal liver per territory, whole normal liver, liver and lungs."""
    any_tumour = np.zeros(liver.shape, bool)
    for m in tumours.values():
        any_tumour |= m
    masks: dict[str, np.ndarray] = {}
    kinds: dict[str, str] = {}
    for name, m in tumours.items():
        masks[name], kinds[name] = m, "tumour"
    for name, t in territories.items():
        key = f"normal liver ({name})"
        masks[key], kinds[key] = t & liver & ~any_tumour, "normal"
    masks["normal liver"], kinds["normal liver"] = liver & ~any_tumour, "normal"
    masks["liver"], kinds["liver"] = liver, "liver"
    masks["lungs"], kinds["lungs"] = lungs, "lung"
    return Structures(ct, masks, kinds, dict(territories))


def dvh_csv(report: dict, key: str = "dvh") -> str:
    """Cumulative DVHs as CSV: dose (Gy), then % volume per structure. ``key`` "bed_dvh"
    gives the BED-volume histograms (each structure on its own BED scale, padded with 0)."""
    names = list(report)
    if not names:
        return "dose_gy\n"
    edges = max((report[n][key]["dose_gy"] for n in names), key=len)
    column = "bed_gy" if key == "bed_dvh" else "dose_gy"
    lines = [column + "," + ",".join(f'"{n} (%)"' for n in names)]
    for i, e in enumerate(edges):
        cells = []
        for n in names:
            v = report[n][key]["volume_percent"]
            cells.append(f"{v[i]:.4f}" if i < len(v) else "0.0000")
        lines.append(f"{e:g}," + ",".join(cells))
    return "\n".join(lines) + "\n"


def dvh_overlay_csv(planned: dict, delivered: dict) -> str:
    """Planned and delivered cumulative DVHs side by side (% volume), one row per dose bin."""
    names = [n for n in planned if n in delivered]
    edges = max([planned[n]["dvh"]["dose_gy"] for n in names]
                + [delivered[n]["dvh"]["dose_gy"] for n in names], key=len)
    header = ["dose_gy"] + [f'"{n} planned (%)","{n} delivered (%)"' for n in names]
    lines = [",".join(header)]
    for i, e in enumerate(edges):
        cells = [f"{e:g}"]
        for n in names:
            for report in (planned, delivered):
                v = report[n]["dvh"]["volume_percent"]
                cells.append(f"{v[i]:.4f}" if i < len(v) else "0.0000")
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def indices_csv(report: dict) -> str:
    skip = ("kind", "bed", "dvh", "bed_dvh")
    keys = [k for k in next(iter(report.values())) if k not in skip] if report else []
    lines = ["structure,kind," + ",".join(keys) + ",bed_mean_gy,bed_D70_gy"]
    for name, r in report.items():
        lines.append(f'"{name}",{r["kind"]},' + ",".join(f"{r[k]:.4f}" for k in keys)
                     + f",{r['bed']['mean_gy']:.4f},{r['bed']['D70']:.4f}")
    return "\n".join(lines) + "\n"


__all__ = ["Structures", "structures_from_labels", "predictive_activity", "dose_map",
           "structure_report", "compare", "pet_activity_at_administration",
           "counts_to_activity", "occupancy_on"]


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
    from .physics.solver import lung_allowance_gy, DoseLimits
    from .physics.voxel_planning import solve_voxel_plan

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


DOSE_RECORD_REQUIRED = ("schema", "created", "plan_input_sha256", "dose", "predictive")


def dose_record(plan: dict, dose_info: dict, predictive_info: dict, planned_report: dict,
                voxel_versus_partition: dict | None = None) -> dict:
    """A ``tareplanner.dose/1`` record of a predictive dose, with (when given) why its voxel
    means differ from the plan's partition-model doses (:func:`explain_voxel_doses`); the
    post-treatment part is added with :func:`with_post_treatment`."""
    predictive = {**predictive_info, "structures": indices_only(planned_report)}
    if voxel_versus_partition is not None:
        predictive["voxel_versus_partition"] = voxel_versus_partition
    return {"schema": DOSE_SCHEMA,
            "created": datetime.now().astimezone().isoformat(timespec="seconds"),
            "plan_input_sha256": plan["input_sha256"], "dose": dose_info,
            "predictive": predictive, "warnings": []}


def with_post_treatment(record: dict, post_treatment: dict,
                        comparison: dict | None = None) -> dict:
    """The dose record with its post-treatment part (and comparison); the post-treatment
    warnings (e.g. of the activity check) join the record's warnings."""
    out = dict(record)
    out["post_treatment"] = post_treatment
    if comparison:
        out["comparison"] = comparison
    codes = {(w["code"], w["message"]) for w in out.get("warnings") or []}
    out["warnings"] = list(out.get("warnings") or []) + [
        w for w in post_treatment.get("warnings") or [] if (w["code"], w["message"]) not in codes]
    return out


def explain_voxel_doses(plan: dict, activity: sitk.Image, voxel_dose: sitk.Image,
                        dose_info: dict, predictive_info: dict, nuclide: str, ct: sitk.Image,
                        structures: Structures, **dose_kwargs) -> dict:
    """:func:`voxel_versus_partition` of a predictive dose: the LDM dose of the same
    activity (same density; ``dose_kwargs`` as given to :func:`dose_map`) separates where the
    activity lies from the energy the kernel carries across edges."""
    voxel = structure_means(voxel_dose, structures)
    if dose_info["method"] == "ldm":
        ldm = voxel
    else:
        ldm_dose, _ = dose_map(activity, nuclide, ct, structures.masks["lungs"], method="ldm",
                               **dose_kwargs)
        ldm = structure_means(ldm_dose, structures)
    return voxel_versus_partition(plan, voxel, ldm,
                                  predictive_info["counts_outside_territories_and_lungs_fraction"],
                                  dose_info["method"])


def validate_dose_record(record, where: str = "dose record") -> dict:
    """Check a ``tareplanner.dose/1`` record read from disk (schema, required parts)."""
    from .errors import MissingFieldError, SchemaError

    if not isinstance(record, dict) or record.get("schema") != DOSE_SCHEMA:
        raise SchemaError(f"{where}.schema", record.get("schema") if isinstance(record, dict)
                          else None, DOSE_SCHEMA)
    for key in DOSE_RECORD_REQUIRED:
        if key not in record:
            raise MissingFieldError(f"{where}.{key}", "see docs/schemas/dose-1.schema.json")
    for part in ("predictive", "post_treatment"):
        if part in record and not isinstance(record[part].get("structures"), dict):
            raise SchemaError(f"{where}.{part}.structures", record[part].get("structures"),
                              "an object of structures")
    warnings = record.get("warnings", [])
    if not isinstance(warnings, list) or not all(
            isinstance(w, dict) and isinstance(w.get("code"), str)
            and isinstance(w.get("message"), str) for w in warnings):
        raise SchemaError(f"{where}.warnings", warnings,
                          "a list of objects with a code and a message")
    check = (record.get("post_treatment") or {}).get("activity_check")
    if check is not None and (not isinstance(check, dict) or not isinstance(
            check.get("applicable"), bool)):
        raise SchemaError(f"{where}.post_treatment.activity_check", check,
                          "an object with applicable (true or false)")
    return record


def v_thresholds_for_plan(plan: dict) -> list[float]:
    """Dose thresholds whose V_x is reported: 100, 120 and 205 Gy and the plan's tumour
    target (minimum of the product's range)."""
    target = (plan.get("tumour_target_gy") or {}).get("min") or 100
    return sorted({100.0, 120.0, 205.0, float(target)})


def write_dose_files(folder, structures: Structures, nuclide: str, planned: sitk.Image,
                     planned_report: dict, delivered: sitk.Image | None = None,
                     delivered_report: dict | None = None) -> list:
    """The dose files of a dose folder (the layout the report and batch read): dose and BED
    maps (NIfTI, Gy), DVH and BED-DVH tables, index tables, and with a delivered dose the
    planned-versus-delivered DVH table and the difference map. ``folder`` must exist (write
    into a temporary folder and rename it, as the callers do, for atomicity)."""
    from pathlib import Path
    folder = Path(folder)
    written = []

    def image(img, name):
        sitk.WriteImage(img, str(folder / name), useCompression=True)
        written.append(folder / name)

    def text(content, name):
        (folder / name).write_text(content)
        written.append(folder / name)

    image(planned, "dose_planned_gy.nii.gz")
    text(dvh_csv(planned_report), "dvh_planned.csv")
    text(indices_csv(planned_report), "indices_planned.csv")
    text(dvh_csv(planned_report, "bed_dvh"), "dvh_bed_planned.csv")
    image(bed_map(planned, structures, nuclide), "bed_planned_gy.nii.gz")
    if delivered is not None:
        image(delivered, "dose_delivered_gy.nii.gz")
        text(dvh_csv(delivered_report), "dvh_delivered.csv")
        text(indices_csv(delivered_report), "indices_delivered.csv")
        text(dvh_csv(delivered_report, "bed_dvh"), "dvh_bed_delivered.csv")
        text(dvh_overlay_csv(planned_report, delivered_report), "dvh_planned_vs_delivered.csv")
        on_planned = sitk.Resample(delivered, planned, sitk.Transform(), sitk.sitkLinear, 0.0)
        image(on_planned - planned, "dose_difference_gy.nii.gz")
    return written
