"""Partial-volume correction of post-treatment structure mean doses (Y-90 PET, Ho-166 SPECT).

The post-treatment image is corrected as the planning SPECT is (geometric transfer matrix,
Rousset et al., J Nucl Med 1998;39:904-911, on the image's own grid, with its camera file or
an assumed resolution): the regions are the tumours, each territory's normal liver, the rest
of the liver, the lungs, the rest of the body and the outside of the body. Each structure's
mean dose is multiplied by the ratio of its corrected to its measured mean activity
concentration (the mean dose of a structure is proportional to the activity in it for local
deposition; with a kernel, cross-fire between structures is left as measured). What is
corrected: the structure mean doses. What is not: the voxel doses, the DVHs and the indices
taken from them (D70, V-values, BED), which would need a deconvolution.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..imaging.camera_file import camera_warnings, psf_of
from ..imaging.partial_volume import build_regions, correct_regions_with_psf
from ..imaging.region_noise import corrected_noise, noise_warnings
from ..imaging.segmentation import body_mask
from ..physics.roi_noise import linear_sd
from .structures import Structures

WHAT_IS_CORRECTED = ("structure mean doses: each multiplied by its structure's corrected over "
                     "measured mean activity concentration (geometric transfer matrix on the "
                     "post-treatment image's grid)")
WHAT_IS_NOT = ("voxel doses, DVHs, D70, V-values and BED are those of the image as "
               "reconstructed (not deconvolved): they keep the blur of the camera")


def default_post_resolution(modality: str, nuclide: str) -> dict:
    """The assumed resolution of a post-treatment image without a camera file."""
    from ..imaging.partial_volume import default_resolution, resolution_data
    data = resolution_data()
    if modality == "PET" and nuclide in data.get("pet_defaults", {}):
        entry = data["pet_defaults"][nuclide]
        spread = data["assumed_fwhm_half_range_mm"]
        return {"fwhm_mm": float(entry["fwhm_mm"]), "source": entry["source"],
                "study": entry["study"], "chosen_by": f"default for {nuclide} PET",
                "assumed": True, "fwhm_half_range_mm": float(spread["value"]),
                "fwhm_range_source": spread["source"]}
    return default_resolution(nuclide)


def correct_structure_means(image: sitk.Image, structures: Structures, report: dict,
                            resolution: dict, *, counts: bool = False,
                            acquisition_s: float | None = None) -> dict:
    """Corrected mean doses of the structures of ``report`` (structure_report of the
    post-treatment dose) in place (``mean_gy``; the measured one kept as
    ``mean_gy_uncorrected``); returns the record of the correction. With a camera file that
    holds the reconstruction's background variability, each corrected mean dose gets its
    noise (``mean_gy_noise_sd``: the relative SD of the structure's corrected activity,
    :mod:`tareplanner.imaging.region_noise`); ``counts``: the image is in counts (a
    post-treatment SPECT), else in Bq/mL."""
    masks = structures.masks
    tumours = {n: m for n, m in masks.items() if structures.kinds[n] == "tumour"}
    territories = dict(structures.territories)
    liver, lungs = masks["liver"], masks["lungs"]
    body = body_mask(structures.reference)
    regions = build_regions(tumours=tumours, territories=territories, liver=liver,
                            lungs=lungs, body=body)
    pvc = correct_regions_with_psf(image, structures.reference, regions, psf_of(resolution))
    n = len(regions.names)
    measured = np.nan_to_num(pvc.measured_per_ml, nan=0.0)
    corrected = np.nan_to_num(pvc.corrected_per_ml, nan=0.0)
    voxel_ml = structures.voxel_ml
    covariance, noise = None, None
    if resolution.get("roi_noise"):
        covariance, noise = corrected_noise(pvc, regions.volumes_ml(voxel_ml), image,
                                            resolution["roi_noise"],
                                            counts=counts, field="post-treatment camera file",
                                            acquisition_s=acquisition_s)
    factors, noise_sd = {}, {}
    for name, mask in masks.items():
        if name not in report:
            continue
        volume = regions.volumes_ml(voxel_ml, mask)
        m, c = float(volume @ measured), float(volume @ corrected)
        if m > 0:
            factors[name] = c / m
            if covariance is not None and c > 0:
                noise_sd[name] = linear_sd(volume, covariance) / c
    means = {}
    for name, factor in factors.items():
        entry = report[name]
        entry["mean_gy_uncorrected"] = entry["mean_gy"]
        entry["mean_gy"] = entry["mean_gy"] * factor
        entry["partial_volume_factor"] = factor
        means[name] = {"uncorrected_gy": entry["mean_gy_uncorrected"],
                       "corrected_gy": entry["mean_gy"], "factor": factor}
        if name in noise_sd:
            entry["mean_gy_noise_sd"] = entry["mean_gy"] * noise_sd[name]
            means[name]["noise_relative_sd"] = noise_sd[name]
            means[name]["noise_sd_gy"] = entry["mean_gy_noise_sd"]
    inside = np.zeros(n)
    for name in ("liver", "lungs"):
        inside += np.bincount(regions.labels[masks[name]], minlength=n)
    whole = np.bincount(regions.labels.ravel(), minlength=n).astype(float)
    total_c = float(whole @ corrected) * voxel_ml
    outside_c = float((whole - inside) @ corrected) * voxel_ml
    return {"applied": True, "resolution": resolution, "fwhm_mm": resolution["fwhm_mm"],
            "assumed": bool(resolution.get("assumed", False)),
            "corrected": WHAT_IS_CORRECTED, "not_corrected": WHAT_IS_NOT,
            "mean_dose_gy": means,
            **({"noise": noise} if noise else {}),
            "outside_liver_and_lungs_fraction_corrected": (outside_c / total_c
                                                           if total_c > 0 else None),
            **pvc.as_dict()}


def post_treatment_modality(kind: str) -> str:
    """The camera-file modality of a post-treatment image kind ('pet' or 'spect')."""
    return "PET" if kind == "pet" else "SPECT"


def post_treatment_resolution(path: str, nuclide: str, kind: str,
                              field: str = "post-treatment camera file") -> dict:
    """The post-treatment image's camera file, read and checked as ``dose --camera`` does:
    refused by name when it is for another nuclide than the treatment's or another modality
    than the image's, or when its FWHM is not a finite number > 0."""
    from ..imaging.camera_file import read_resolution_file
    return read_resolution_file(path, field, nuclide=nuclide,
                                modality=post_treatment_modality(kind))


def post_treatment_correction(image, structures, report: dict, nuclide: str, kind: str,
                              resolution: dict | None, acquisition_s: float | None = None
                              ) -> tuple[dict, list[dict]]:
    """The partial-volume correction of the structure mean doses of ``report`` (in place),
    as ``tareplanner dose`` makes it: with the camera file's resolution, or the assumed
    default and a ``post-treatment-resolution-assumed`` warning. Returns (record, warnings)."""
    pvc_record = correct_structure_means(
        image, structures, report,
        resolution or default_post_resolution(post_treatment_modality(kind), nuclide),
        counts=kind == "spect", acquisition_s=acquisition_s)
    warnings = camera_warnings(resolution) + noise_warnings(pvc_record.get("noise"),
                                                            "corrected mean doses")
    if pvc_record.get("assumed"):
        warnings.append({"code": "post-treatment-resolution-assumed",
                         "message": "structure mean doses corrected for partial volume with an "
                                    f"assumed {pvc_record['fwhm_mm']:g} mm FWHM "
                                    f"({pvc_record['resolution']['chosen_by']}): calibrate the "
                                    "camera (tareplanner calibrate) and give its camera file "
                                    "(dose --camera)"})
    return pvc_record, warnings
