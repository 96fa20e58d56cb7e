"""Dose maps (kernel convolution or local deposition) on the emission grid, and per structure
at CT resolution: indices, BED, cumulative DVHs, mean doses, delivered against planned."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import SimpleITK as sitk

from .. import catalogue
from ..imaging.arrays import image_array
from ..kernel_data import POINT_KERNELS, point_kernel
from ..physics.dvh import bed_gy, cumulative_dvh, dose_indices
from ..physics.kernels import voxel_kernel
from ..physics.voxel_dose import density_from_hu, energy_fractions, kernel_dose_gy, ldm_dose_gy
from .structures import Structures, block_mean_resample, occupancy_on

#: LQ parameters and the kernels' soft-tissue density, with their sources
#: (tareplanner/data/radiobiology.json)
SOFT_TISSUE_KERNEL_DENSITY = catalogue.radiobiology()["kernel_soft_tissue_density_g_per_cm3"][
    "value"]
BED_PARAMETERS = {kind: {k: v for k, v in entry.items() if k != "source"}
                  for kind, entry in catalogue.radiobiology()["bed_parameters"].items()}


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
    from ..density_curves import curve_record, default_curve

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


def structure_report(dose: sitk.Image, structures: Structures, *, nuclide: str,
                     v_thresholds_gy=(), bin_gy: float = 1.0) -> dict:
    """Indices, BED indices and cumulative DVH of every structure (CT resolution)."""
    on_ct = sitk.Resample(dose, structures.reference, sitk.Transform(), sitk.sitkLinear, 0.0,
                          sitk.sitkFloat32)
    d = image_array(on_ct)
    half_life = catalogue.nuclide(nuclide).half_life_h
    report = {}
    top = float(d.max()) if d.size else 0.0
    for name in structures.masks:
        values = structures.values_in(d, name)
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


def structure_means(dose: sitk.Image, structures: Structures) -> dict[str, float]:
    """Mean dose (Gy) per structure at CT resolution (linear interpolation, as the DVHs)."""
    on_ct = sitk.Resample(dose, structures.reference, sitk.Transform(), sitk.sitkLinear, 0.0,
                          sitk.sitkFloat32)
    d = sitk.GetArrayFromImage(on_ct)
    return {name: float(values.mean()) for name in structures.masks
            if (values := structures.values_in(d, name)).size}


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


def v_thresholds_for_plan(plan: dict) -> list[float]:
    """Dose thresholds whose V_x is reported: 100, 120 and 205 Gy and the plan's tumour
    target (minimum of the product's range)."""
    target = (plan.get("tumour_target_gy") or {}).get("min") or 100
    return sorted({100.0, 120.0, 205.0, float(target)})
