"""Region-based partial-volume correction: the geometric transfer matrix (GTM).

Rousset OG, Ma Y, Evans AC. Correction for partial volume effects in PET: principle and
validation. J Nucl Med 1998;39:904-911.

The image is modelled as a sum of uniform regions j with unknown true means c_j (per mL).
Region j alone, at unit concentration, gives the image g_j = PSF * f_j, where f_j is the
fraction of each emission voxel that region j occupies. The mean of g_j over region i, read
through the same measurement operator as the data, is W[i, j]; the measured region means t
obey t = W c, and the correction solves that system for c.

Here the measurement operator is the one of :mod:`tareplanner.imaging.quantities`: every
voxel of the fine (CT) grid takes the value of the emission voxel that contains its centre.
A region's mean over the fine grid is then a weighted mean of emission voxels, the weight of
emission voxel v being the number n_i[v] of fine voxels of region i whose centre lies in v.
The same counts give the occupancy fractions f_j[v] = n_j[v] / sum_k n_k[v], so the whole
matrix is built on the coarse emission grid: one blur per region, no fine-grid convolution.

Pure functions: arrays in, arrays or frozen dataclasses out, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, optimize

#: FWHM = 2 sqrt(2 ln 2) sigma for a Gaussian
FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


@dataclass(frozen=True)
class PointSpread:
    """An isotropic point-spread function: a weighted sum of 3D Gaussians.

    ``components`` holds (weight, fwhm_mm) pairs; the weights sum to 1 (counts are kept).
    One component is the usual single-Gaussian model; two model a PSF with wider tails.
    """

    components: tuple[tuple[float, float], ...]

    @classmethod
    def gaussian(cls, fwhm_mm: float) -> "PointSpread":
        return cls(((1.0, float(fwhm_mm)),))

    def __post_init__(self):
        if not self.components:
            raise ValueError("psf: got no components; allowed: one or more (weight, fwhm_mm)")
        for weight, fwhm in self.components:
            if not (math.isfinite(weight) and weight > 0):
                raise ValueError(f"psf weight: got {weight!r}; allowed: a finite weight > 0")
            if not (math.isfinite(fwhm) and fwhm >= 0):
                raise ValueError(f"psf fwhm_mm: got {fwhm!r}; allowed: a finite FWHM >= 0 mm")
        total = sum(w for w, _ in self.components)
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"psf weights: got a sum of {total!r}; allowed: weights summing "
                             "to 1")


def blur(array: np.ndarray, spacing_mm, psf: PointSpread) -> np.ndarray:
    """``array`` (z, y, x) convolved with ``psf``; ``spacing_mm`` in the same axis order.

    Separable Gaussian filters (scipy.ndimage.gaussian_filter, kernel cut at 4 sigma),
    zero outside the array (``mode="constant"``): activity outside the field of view is not
    known, and counts blurred out of it are lost, as in the image.
    """
    array = np.asarray(array, dtype=np.float64)
    out = np.zeros_like(array)
    for weight, fwhm in psf.components:
        if fwhm <= 0:
            out += weight * array
            continue
        sigma = [fwhm * FWHM_TO_SIGMA / s for s in spacing_mm]
        out += weight * ndimage.gaussian_filter(array, sigma, mode="constant")
    return out


def fine_voxel_counts(index: np.ndarray, regions: np.ndarray, n_regions: int,
                      n_coarse: int) -> np.ndarray:
    """n[v, j]: the number of fine voxels of region j whose centre lies in coarse voxel v.

    ``index`` (any shape) holds, for every fine voxel, the flat index of the coarse voxel that
    contains its centre, or -1 outside the coarse grid; ``regions`` (same shape) the region
    number 0..n_regions-1 of every fine voxel, or -1 for none. One ``np.bincount``.
    """
    index = np.asarray(index).ravel()
    regions = np.asarray(regions).ravel()
    if index.shape != regions.shape:
        raise ValueError(f"regions: got {regions.size} voxels; allowed: as many as the index "
                         f"map ({index.size})")
    n_bins = n_coarse * n_regions
    dtype = np.int32 if n_bins < 2 ** 31 - 1 else np.int64
    flat = index.astype(dtype) * dtype(n_regions) + regions.astype(dtype)
    flat[(index < 0) | (regions < 0)] = n_bins          # one bin for "not counted"
    return np.bincount(flat, minlength=n_bins + 1)[:n_bins].reshape(n_coarse, n_regions)


@dataclass(frozen=True)
class TransferMatrix:
    """W[i, j]: mean over region i of the measured image of region j at unit concentration."""

    matrix: np.ndarray          # (R, R)
    fine_voxels: np.ndarray     # (R,) fine voxels of each region inside the coarse grid
    condition_number: float


def transfer_matrix(counts: np.ndarray, shape_zyx, spacing_mm, psf: PointSpread
                    ) -> TransferMatrix:
    """The geometric transfer matrix of regions given by their fine-voxel counts.

    ``counts``: n[v, j] from :func:`fine_voxel_counts` (V coarse voxels × R regions);
    ``shape_zyx`` and ``spacing_mm`` (z, y, x) of the coarse grid; ``psf`` the system's.
    Regions with no fine voxel get a zero row and column (their value is not measurable).
    """
    return transfer_matrices(counts, shape_zyx, spacing_mm, [psf])[0]


def transfer_matrices(counts: np.ndarray, shape_zyx, spacing_mm, psfs
                      ) -> list[TransferMatrix]:
    """:func:`transfer_matrix` for several PSFs, sharing the occupancy fractions and each
    region's bounding box. Each region is blurred inside its box grown by the widest kernel's
    radius (scipy truncates at 4 sigma): outside it the region's image is exactly zero."""
    counts = np.asarray(counts, dtype=np.float64)
    n_coarse, n_regions = counts.shape
    if n_coarse != int(np.prod(shape_zyx)):
        raise ValueError(f"counts: got {n_coarse} coarse voxels; allowed: the grid's "
                         f"{int(np.prod(shape_zyx))}")
    shape_zyx = tuple(int(n) for n in shape_zyx)
    occupied = counts.sum(axis=1)
    fractions = np.divide(counts, occupied[:, None], out=np.zeros_like(counts),
                          where=occupied[:, None] > 0)
    n_fine = counts.sum(axis=0)
    grid = fractions.reshape(*shape_zyx, n_regions)
    counts_grid = counts.reshape(*shape_zyx, n_regions)
    spans = []
    for axis in range(3):
        others = tuple(a for a in range(4) if a not in (axis, 3))
        present = grid.any(axis=others)            # (n_axis, R)
        spans.append(present)
    out = []
    for psf in psfs:
        reach = [max((int(4.0 * f * FWHM_TO_SIGMA / s + 0.5) for _, f in psf.components),
                     default=0) + 1 for s in spacing_mm]
        w = np.zeros((n_regions, n_regions))
        for j in range(n_regions):
            if n_fine[j] == 0:
                continue
            box = []
            for axis in range(3):
                idx = np.flatnonzero(spans[axis][:, j])
                box.append(slice(max(int(idx[0]) - reach[axis], 0),
                                 min(int(idx[-1]) + reach[axis] + 1, shape_zyx[axis])))
            box = tuple(box)
            image = blur(grid[box + (j,)], spacing_mm, psf)
            w[:, j] = counts_grid[box].reshape(-1, n_regions).T @ image.ravel()
        w = np.divide(w, n_fine[:, None], out=np.zeros_like(w), where=n_fine[:, None] > 0)
        used = n_fine > 0
        cond = float(np.linalg.cond(w[np.ix_(used, used)])) if used.any() else float("inf")
        out.append(TransferMatrix(w, n_fine, cond))
    return out


def region_means(counts: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Mean of ``image`` (flat, one value per coarse voxel) over each region, read as the
    fine grid reads it: sum_v n[v, j] image[v] / sum_v n[v, j] (NaN for empty regions)."""
    counts = np.asarray(counts, dtype=np.float64)
    n_fine = counts.sum(axis=0)
    sums = counts.T @ np.asarray(image, dtype=np.float64).ravel()
    return np.divide(sums, n_fine, out=np.full(n_fine.shape, np.nan), where=n_fine > 0)


@dataclass(frozen=True)
class GtmSolution:
    means: np.ndarray           # corrected region means (NaN for regions with no voxel)
    method: str                 # "linear solve" or "non-negative least squares"
    relative_residual: float    # |W c - t| / |t|


def solve_gtm(w: np.ndarray, measured: np.ndarray) -> GtmSolution:
    """True region means c from W c = t.

    The square system is solved directly (Rousset et al. 1998); when that gives a negative
    mean (noise on a near-empty region), the non-negative least-squares solution
    (scipy.optimize.nnls, Lawson-Hanson) is taken instead. Regions whose measured mean is
    NaN (no voxel) are left out and get NaN.
    """
    w = np.asarray(w, dtype=np.float64)
    t = np.asarray(measured, dtype=np.float64)
    used = np.isfinite(t) & (np.abs(w).sum(axis=0) > 0)
    out = np.full(t.shape, np.nan)
    if not used.any():
        return GtmSolution(out, "none", float("nan"))
    a, b = w[np.ix_(used, used)], t[used]
    c, *_ = np.linalg.lstsq(a, b, rcond=None)
    method = "linear solve"
    if np.any(c < 0):
        c, _ = optimize.nnls(a, b)
        method = "non-negative least squares"
    norm = float(np.linalg.norm(b))
    residual = float(np.linalg.norm(a @ c - b)) / norm if norm > 0 else 0.0
    out[used] = c
    return GtmSolution(out, method, residual)
