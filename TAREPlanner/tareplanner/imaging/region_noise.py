"""The reconstruction noise of the corrected region means, from the camera file's measured
background variability (:mod:`tareplanner.physics.roi_noise`), for ``measure`` (TNRs and
LSF) and ``dose`` (structure mean doses)."""

from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk

from ..errors import FieldValueError
from ..physics.roi_noise import RoiNoiseModel, gtm_covariance, linear_sd, ratio_relative_sd
from .arrays import image_array

#: what the noise model stands for, written beside its figures
NOISE_BASIS = ("the camera file's background variability (IEC phantom, NEMA NU 2-2012 "
               "section 7), scaled to each region's volume by the fitted law and to this image by "
               "sqrt(phantom total / image total) (OSEM noise is multiplicative: Barrett et "
               "al. 1994), carried through the partial-volume correction (W^-1 diag(sd^2) "
               "W^-T); the regions' noise taken as independent")


def image_total(image: sitk.Image, counts: bool) -> float:
    """The image's total in the camera file's ``total_units``: counts, or Bq for Bq/mL."""
    total = float(np.nansum(image_array(image).astype(np.float64)))
    return total if counts else total * float(np.prod(image.GetSpacing())) / 1000.0


#: a Bq/mL image's noise scales with its counts: activity x duration; without both durations
DURATION_ASSUMED = ("the phantom's scan taken as long as this image's (an image in Bq/mL "
                    "carries no counts; give both durations: DICOM ActualFrameDuration, or "
                    "calibrate --acquisition-minutes)")


def corrected_noise(pvc, volumes_ml, image: sitk.Image, roi_noise: dict, *, counts: bool,
                    field: str = "--camera", acquisition_s: float | None = None
                    ) -> tuple[np.ndarray, dict]:
    """(covariance of ``pvc``'s corrected means, record): each region's measured mean gets
    the relative SD the camera's law gives for its volume; the correction carries them.
    For an image in Bq/mL the totals stand for counts only with the scans' durations
    (``acquisition_s`` of the image, the camera file's of the phantom): with both, the law
    is scaled by sqrt(phantom Bq x s / image Bq x s); without, equal durations are assumed
    and the record says so (``duration_assumed``)."""
    units = "counts" if counts else "Bq"
    if roi_noise["total_units"] != units:
        raise FieldValueError(f"{field}:roi_noise.total_units", roi_noise["total_units"],
                              f"{units} (the image's units)")
    measured_total = total = image_total(image, counts)
    if not (math.isfinite(total) and total > 0):
        raise FieldValueError("image total", total, "a finite total > 0 (an image with counts)")
    reference = roi_noise["reference_total"]
    durations = {}
    if not counts:
        phantom_s = roi_noise.get("acquisition_s")
        durations = {"phantom_s": phantom_s, "image_s": acquisition_s}
        if phantom_s and acquisition_s:
            reference, total = reference * phantom_s, total * acquisition_s
        else:
            durations["duration_assumed"] = DURATION_ASSUMED
    model = RoiNoiseModel(roi_noise["coefficient"], roi_noise["exponent"], reference,
                          tuple(roi_noise["volume_range_ml"]))
    volumes = np.asarray(volumes_ml, dtype=np.float64)
    present = volumes > 0
    relative = np.full(volumes.shape, np.nan)
    relative[present] = model.relative_sd(volumes[present], total)
    measured = np.asarray(pvc.measured_per_ml, dtype=np.float64)
    covariance = gtm_covariance(pvc.transfer_matrix, relative * np.abs(measured))
    corrected = np.asarray(pvc.corrected_per_ml, dtype=np.float64)
    low, high = model.volume_range_ml
    regions = {}
    for k, name in enumerate(pvc.names):
        if not present[k]:
            continue
        sd = math.sqrt(covariance[k, k]) if np.isfinite(covariance[k, k]) else None
        regions[name] = {
            "volume_ml": float(volumes[k]),
            "measured_relative_sd": float(relative[k]),
            "corrected_relative_sd": (sd / corrected[k] if sd is not None and corrected[k] > 0
                                      else None),
            **({"extrapolated": "below" if volumes[k] < low else "above"}
               if not low <= volumes[k] <= high else {})}
    record = {"basis": NOISE_BASIS, "image_total": measured_total,
              "total_units": units, "reference_total": roi_noise["reference_total"],
              **({"acquisition": durations} if durations else {}),
              "law": {"coefficient": model.coefficient, "exponent": model.exponent,
                      "volume_range_ml": [low, high]},
              "extrapolation": "regions larger than the phantom's largest sphere: the "
                               "relative SD falls as volume^-1/2 beyond it (independent "
                               "patches); smaller than its smallest: the fitted law",
              "regions": regions}
    return covariance, record


def ratio_sd(pvc, covariance, numerator: str, denominator: str) -> float | None:
    """Relative SD of the corrected mean ratio numerator / denominator (a TNR)."""
    i, j = pvc.names.index(numerator), pvc.names.index(denominator)
    value = ratio_relative_sd(pvc.corrected_per_ml, covariance, i, j)
    return value if math.isfinite(value) else None


def lung_shunt_sd(pvc, covariance, in_lungs_ml, in_liver_ml) -> float | None:
    """Relative SD of LSF = L / (L + H), L = sum c_j l_j and H = sum c_j h_j (the corrected
    means times each region's volume in the lungs and in the liver):
    dLSF/dc_j = (l_j H - h_j L) / (L + H)^2."""
    c = np.nan_to_num(np.asarray(pvc.corrected_per_ml, dtype=np.float64), nan=0.0)
    lungs = np.asarray(in_lungs_ml, dtype=np.float64)
    liver = np.asarray(in_liver_ml, dtype=np.float64)
    big_l, big_h = float(c @ lungs), float(c @ liver)
    if big_l <= 0 or big_l + big_h <= 0:
        return None
    gradient = (lungs * big_h - liver * big_l) / (big_l + big_h) ** 2
    return linear_sd(gradient, covariance) / (big_l / (big_l + big_h))


def noise_warnings(record: dict | None, what: str) -> list[dict]:
    """The warning a noise record calls for: the scans' durations assumed equal."""
    assumed = ((record or {}).get("acquisition") or {}).get("duration_assumed")
    if not assumed:
        return []
    return [{"code": "noise-duration-assumed",
             "message": f"the reconstruction noise of the {what} assumes {assumed}"}]


#: the warning of a tumour whose mean is too noisy for OSEM to be unbiased
COUNT_LIMITED_CODE = "count-limited-tumour"


def count_limit() -> dict:
    """``data/camera_calibration.json`` ``count_limited_relative_sd_max``: value and source."""
    from .calibration import calibration_data
    return calibration_data()["count_limited_relative_sd_max"]


def count_limited(record: dict | None, limit: float) -> dict[str, float]:
    """The tumours (``tumour:NAME`` regions of a noise record) whose measured mean's relative
    SD at the image's counts is above ``limit``: name -> that SD."""
    regions = (record or {}).get("regions") or {}
    out = {}
    for key, region in regions.items():
        sd = region.get("measured_relative_sd")
        if key.startswith("tumour:") and sd is not None and math.isfinite(sd) and sd > limit:
            out[key.split(":", 1)[1]] = float(sd)
    return out


def count_limited_warnings(record: dict | None) -> list[dict]:
    """A ``count-limited-tumour`` warning for each tumour :func:`count_limited` finds, and the
    record's ``count_limited`` entry (the limit, its source and the tumours), written into
    ``record``. A flag, not a correction: the bias was measured on one model."""
    if not record:
        return []
    limit = count_limit()
    found = count_limited(record, float(limit["value"]))
    record["count_limited"] = {"relative_sd_max": float(limit["value"]),
                               "source": limit["source"], "tumours": found}
    return [{"code": COUNT_LIMITED_CODE,
             "message": f"{name}: its measured mean has a relative noise SD of {sd:.1%} at this "
                        f"image's counts (the camera file's background variability), above "
                        f"{float(limit['value']):.0%}: at such counts OSEM reads a small hot "
                        "region low (measured on the realistic Ho-166 scout, "
                        "docs/imaging.md), so its TNR and dose may be underestimated by more "
                        "than the noise says; more counts (longer views, more activity) "
                        "reduce it"}
            for name, sd in found.items()]
