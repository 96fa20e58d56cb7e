"""Voxel values an image must not hold: NaN, infinity, and (in an emission image) negative
counts beyond reconstruction noise.

A NaN or infinite voxel has no count or density to sum; left in, it silently drops out of (or
swamps) the sums that give the lung shunt fraction and the tumour-to-normal ratios, so it is
refused, naming how many voxels and where they lie (index and patient-coordinate extent).
Negative voxels occur in filtered back-projection and some iterative reconstructions as
noise around zero; a few are summed as they are, with a warning naming how many and where.
When their total exceeds :data:`NEGATIVE_COUNTS_LIMIT` of the positive counts the image is
not counts any more (a wrong rescale intercept, a subtracted background) and it is refused.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..errors import ImageDataError
from .arrays import image_array

#: largest allowed sum of the negative voxels, as a fraction of the sum of the positive ones
NEGATIVE_COUNTS_LIMIT = 0.01


def where_voxels(image: sitk.Image, mask: np.ndarray) -> str:
    """The extent of the voxels in ``mask`` ([z, y, x] array of ``image``): index ranges
    (x, y, z) and the patient coordinates (LPS, mm) of the two corner voxels."""
    idx = np.argwhere(mask)
    lo, hi = idx.min(axis=0)[::-1], idx.max(axis=0)[::-1]  # x, y, z
    p_lo = image.TransformIndexToPhysicalPoint([int(v) for v in lo])
    p_hi = image.TransformIndexToPhysicalPoint([int(v) for v in hi])
    ranges = ", ".join(f"{axis} {a}..{b}" for axis, a, b in zip("xyz", lo, hi))
    return (f"voxel indices {ranges}; from ({', '.join(f'{v:.1f}' for v in p_lo)}) to "
            f"({', '.join(f'{v:.1f}' for v in p_hi)}) mm")


def check_finite_voxels(image: sitk.Image, where: str) -> None:
    """ImageDataError when any voxel is NaN or infinite, naming how many and where."""
    values = image_array(image)
    if values.dtype.kind != "f":
        return
    bad = ~np.isfinite(values)
    if bad.any():
        n_nan = int(np.isnan(values).sum())
        n_inf = int(bad.sum()) - n_nan
        raise ImageDataError(f"{where}:voxel values",
                             f"{n_nan} NaN and {n_inf} infinite voxels of {values.size} "
                             f"({where_voxels(image, bad)})",
                             "finite numbers in every voxel (check the rescale slope and "
                             "intercept; mask the image outside the field of view with 0)")


def check_emission_voxels(image: sitk.Image, where: str) -> dict | None:
    """Check an emission image (SPECT, PET counts or activity): NaN or infinite voxels are
    refused; negative voxels summing to more than NEGATIVE_COUNTS_LIMIT of the positive
    counts are refused; fewer give the returned warning (code 'negative-voxels', naming how
    many and where). None when every voxel is finite and >= 0."""
    check_finite_voxels(image, where)
    values = image_array(image)
    negative = values < 0
    if not negative.any():
        return None
    negative_sum = float(-values[negative].sum(dtype=np.float64))
    positive_sum = float(values[values > 0].sum(dtype=np.float64))
    n = int(negative.sum())
    located = where_voxels(image, negative)
    if negative_sum > NEGATIVE_COUNTS_LIMIT * positive_sum:
        share = negative_sum / positive_sum if positive_sum > 0 else float("inf")
        raise ImageDataError(f"{where}:voxel values",
                             f"{n} negative voxels summing to {share:.1%} of the positive "
                             f"counts ({located})",
                             f"counts or activity >= 0; negative noise summing to at most "
                             f"{NEGATIVE_COUNTS_LIMIT:.0%} of the positive counts (a wrong "
                             "rescale intercept or a subtracted background?)")
    return {"code": "negative-voxels",
            "message": f"{where}: {n} negative voxels ({negative_sum / positive_sum:.2%} of "
                       f"the positive counts; {located}) are summed as they are (no "
                       "clipping)"}
