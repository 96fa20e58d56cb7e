"""Fitting a camera's point-spread function to an image of a phantom of hot spheres.

The forward model is the one the partial-volume correction uses (physics/partial_volume.py):
the true activity is uniform in each sphere (concentration S) and in the background
(concentration B), so on the emission grid it is

    a = S * sum_k f_k + B * f_bg,

with f_k the fraction of each voxel inside sphere k and f_bg the fraction inside the fillable
background (water minus spheres). The image is modelled as k * (PSF * a): one blur of one
array per PSF component, whatever the number of spheres. ``k`` is the calibration factor
(image units per unit of concentration). The PSF is an isotropic Gaussian (one FWHM) or a
core-plus-tail PSF (two Gaussians, weights 1 - w and w). The parameters are found by
non-linear least squares (scipy.optimize.least_squares, trust-region reflective) over the
voxels near the spheres; their standard uncertainties come from the Jacobian at the
solution, cov = (J^T J)^-1 * RSS / (n - p) (voxel noise taken as independent).

Recovery coefficient of sphere k: the mean of the image over the sphere (weighted by f_k)
divided by the true concentration in image units (k * S), for the image and for the model.

Equivalent FWHM of sphere k: the FWHM of the one Gaussian at which the model's recovery of
sphere k (the same computation, the whole scene blurred) equals its measured recovery; one
root of a 1-D function found by Brent's method (scipy.optimize.brentq) over a bracket of
FWHMs. Where the measured recovery lies outside what the model gives over the bracket, there
is none, and the side is said (not clipped to the bracket's end). Where one PSF describes the
image, every sphere's equivalent FWHM is that PSF's FWHM; their spread says how far the
reconstruction is from one PSF, in millimetres of FWHM.

Pure: arrays in, frozen dataclasses out, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from .partial_volume import PointSpread, blur

#: FWHM searched (mm)
FWHM_BOUNDS_MM = (0.5, 60.0)
#: tail weight searched
TAIL_WEIGHT_BOUNDS = (0.0, 0.6)
#: tail FWHM as a multiple of the core's
TAIL_RATIO_BOUNDS = (1.3, 8.0)


def ball_occupancy(shape_zyx, spacing_mm_zyx, centre_index_zyx, radius_mm: float,
                   supersample: int = 4) -> np.ndarray:
    """Fraction of every voxel inside a ball (sub-voxel sampling, ``supersample``^3 points).

    ``centre_index_zyx`` is the ball's centre in continuous voxel indices (z, y, x), so the
    grid may have any orthonormal direction; ``spacing_mm_zyx`` in the same order. Only the
    voxels of the ball's bounding box are sampled (vectorised over that box)."""
    shape = tuple(int(n) for n in shape_zyx)
    spacing = np.asarray(spacing_mm_zyx, dtype=float)
    centre = np.asarray(centre_index_zyx, dtype=float)
    out = np.zeros(shape, dtype=np.float64)
    reach = radius_mm / spacing + 1.0
    low = np.maximum(np.floor(centre - reach).astype(int), 0)
    high = np.minimum(np.ceil(centre + reach).astype(int) + 1, shape)
    if np.any(high <= low):
        return out
    k = int(supersample)
    offsets = (np.arange(k) + 0.5) / k - 0.5
    axes = [((np.arange(lo, hi)[:, None] + offsets[None, :]).ravel() - c) * s
            for lo, hi, c, s in zip(low, high, centre, spacing)]
    dz, dy, dx = axes
    inside = (dz[:, None, None] ** 2 + dy[None, :, None] ** 2 + dx[None, None, :] ** 2
              <= radius_mm ** 2)
    n = high - low
    frac = inside.reshape(n[0], k, n[1], k, n[2], k).mean(axis=(1, 3, 5))
    out[low[0]:high[0], low[1]:high[1], low[2]:high[2]] = frac
    return out


@dataclass(frozen=True)
class PhantomScene:
    """What the fit needs: occupancies on the (cropped) emission grid and the truth."""

    spheres: np.ndarray             # (K, z, y, x) fraction of each voxel inside sphere k
    background: np.ndarray          # (z, y, x) fraction inside the background (no sphere)
    spacing_mm: tuple               # (z, y, x)
    sphere_concentration: float     # S (any unit, e.g. kBq/mL)
    background_concentration: float  # B (same unit)
    fit_mask: np.ndarray            # (z, y, x) voxels used in the fit

    def activity(self) -> np.ndarray:
        return (self.sphere_concentration * self.spheres.sum(axis=0)
                + self.background_concentration * self.background)


def model_image(scene: PhantomScene, psf: PointSpread, activity: np.ndarray | None = None
                ) -> np.ndarray:
    """PSF * activity, in concentration units (no calibration factor)."""
    a = scene.activity() if activity is None else activity
    return blur(a, scene.spacing_mm, psf)


def psf_from_parameters(model: str, x) -> PointSpread:
    if model == "gaussian":
        return PointSpread.gaussian(float(x[0]))
    core, weight, ratio = float(x[0]), float(x[1]), float(x[2])
    if weight <= 0:
        return PointSpread.gaussian(core)
    return PointSpread(((1.0 - weight, core), (weight, core * ratio)))


@dataclass(frozen=True)
class PsfFit:
    model: str                      # "gaussian" or "core-plus-tail"
    psf: PointSpread
    parameters: dict                # name -> value
    standard_uncertainties: dict    # name -> standard uncertainty
    calibration_factor: float       # image units per concentration unit
    calibration_factor_sd: float
    residual_sum_of_squares: float
    relative_residual_rms: float    # sqrt(mean residual^2) / mean image over the fit voxels
    voxels: int
    evaluations: int


def fit_psf(scene: PhantomScene, image: np.ndarray, model: str = "gaussian",
            start: PsfFit | None = None) -> PsfFit:
    """Least-squares fit of a Gaussian or core-plus-tail PSF and the calibration factor."""
    image = np.asarray(image, dtype=np.float64)
    mask = scene.fit_mask
    data = image[mask]
    activity = scene.activity()
    if model == "gaussian":
        x0 = [start.parameters["fwhm_mm"] if start else 10.0]
        lower, upper = [FWHM_BOUNDS_MM[0]], [FWHM_BOUNDS_MM[1]]
        names = ["fwhm_mm"]
    elif model == "core-plus-tail":
        core = start.parameters["fwhm_mm"] if start else 10.0
        x0 = [0.9 * core, 0.1, 3.0]
        lower = [FWHM_BOUNDS_MM[0], TAIL_WEIGHT_BOUNDS[0], TAIL_RATIO_BOUNDS[0]]
        upper = [FWHM_BOUNDS_MM[1], TAIL_WEIGHT_BOUNDS[1], TAIL_RATIO_BOUNDS[1]]
        names = ["core_fwhm_mm", "tail_weight", "tail_to_core_fwhm_ratio"]
    else:
        raise ValueError(f"model: got {model!r}; allowed: gaussian, core-plus-tail")

    def unit(x) -> np.ndarray:
        return blur(activity, scene.spacing_mm, psf_from_parameters(model, x))[mask]

    first = unit(x0)
    k0 = float(first @ data / (first @ first)) if first @ first > 0 else 1.0
    scale = abs(k0) if k0 else 1.0
    evaluations = 0

    def residuals(p) -> np.ndarray:
        nonlocal evaluations
        evaluations += 1
        return p[-1] * scale * unit(p[:-1]) - data

    p0 = np.array(x0 + [k0 / scale])
    lo = np.array(lower + [-np.inf])
    hi = np.array(upper + [np.inf])
    p0 = np.clip(p0, lo + 1e-9, hi - 1e-9)
    result = optimize.least_squares(residuals, p0, bounds=(lo, hi), method="trf",
                                    x_scale="jac", diff_step=1e-3)
    rss = float(result.fun @ result.fun)
    n, p = data.size, p0.size
    jac = result.jac
    try:
        cov = np.linalg.inv(jac.T @ jac) * rss / max(n - p, 1)
        sd = np.sqrt(np.clip(np.diag(cov), 0, None))
    except np.linalg.LinAlgError:
        sd = np.full(p, np.nan)
    params = {name: float(v) for name, v in zip(names, result.x[:-1])}
    sds = {name: float(v) for name, v in zip(names, sd[:-1])}
    psf = psf_from_parameters(model, result.x[:-1])
    mean = float(np.mean(data))
    return PsfFit(model, psf, params, sds, float(result.x[-1] * scale), float(sd[-1] * scale),
                  rss, math.sqrt(rss / n) / mean if mean else float("nan"), int(n), evaluations)


def effective_fwhm_mm(psf: PointSpread) -> float:
    """The FWHM of the one Gaussian with the same second moment (variance-weighted)."""
    return math.sqrt(sum(w * f ** 2 for w, f in psf.components))


@dataclass(frozen=True)
class SphereRecovery:
    measured: np.ndarray   # (K,)
    model: np.ndarray      # (K,)


def recovery(scene: PhantomScene, image: np.ndarray, fit: PsfFit) -> SphereRecovery:
    """Mean over each sphere (weighted by its occupancy) over the true concentration in image
    units, for the image and for the fitted model."""
    weights = scene.spheres.reshape(scene.spheres.shape[0], -1)
    totals = weights.sum(axis=1)
    true = fit.calibration_factor * scene.sphere_concentration
    measured = weights @ np.asarray(image, dtype=np.float64).ravel() / totals / true
    model = weights @ model_image(scene, fit.psf).ravel() / totals / scene.sphere_concentration
    return SphereRecovery(measured, model)


def model_recovery(scene: PhantomScene, psf: PointSpread) -> np.ndarray:
    """The model's recovery of every sphere with ``psf``: the occupancy-weighted mean of the
    blurred scene over the sphere over the sphere concentration (as in :func:`recovery`)."""
    weights = scene.spheres.reshape(scene.spheres.shape[0], -1)
    return (weights @ model_image(scene, psf).ravel() / weights.sum(axis=1)
            / scene.sphere_concentration)


@dataclass(frozen=True)
class EquivalentFwhm:
    """One sphere's equivalent Gaussian FWHM (mm), or None with the reason."""

    fwhm_mm: float | None
    #: "found", or "above" (the measured recovery exceeds the model's at the bracket's
    #: sharpest FWHM) or "below" (it is under the model's at the widest), or "not finite"
    status: str
    measured: float
    #: the model's recovery at the bracket's ends (sharpest, widest)
    model_at_bracket: tuple[float, float]


def equivalent_fwhms(scene: PhantomScene, measured, bracket_mm=(1.0, 60.0),
                     xtol_mm: float = 1e-3) -> tuple[EquivalentFwhm, ...]:
    """Per sphere, the Gaussian FWHM at which the model's recovery of the sphere equals
    ``measured`` (one value per sphere of ``scene``): Brent's root of
    model_recovery(FWHM) - measured over ``bracket_mm``. One blur of the scene per FWHM
    tried, shared by every sphere at the bracket's ends."""
    measured = np.asarray(measured, dtype=float).ravel()
    if measured.size != scene.spheres.shape[0]:
        raise ValueError(f"measured: got {measured.size} recoveries; allowed: one per sphere "
                         f"({scene.spheres.shape[0]})")
    lo, hi = (float(v) for v in bracket_mm)
    if not (0 < lo < hi):
        raise ValueError(f"bracket_mm: got {bracket_mm!r}; allowed: 0 < low < high")
    cache: dict[float, np.ndarray] = {}

    def rc(fwhm: float) -> np.ndarray:
        if fwhm not in cache:
            cache[fwhm] = model_recovery(scene, PointSpread.gaussian(fwhm))
        return cache[fwhm]

    at_lo, at_hi = rc(lo), rc(hi)
    out = []
    for k, m in enumerate(measured):
        ends = (float(at_lo[k]), float(at_hi[k]))
        f_lo, f_hi = ends[0] - m, ends[1] - m
        if not math.isfinite(m):
            out.append(EquivalentFwhm(None, "not finite", float(m), ends))
        elif f_lo == 0.0:
            out.append(EquivalentFwhm(lo, "found", float(m), ends))
        elif f_hi == 0.0:
            out.append(EquivalentFwhm(hi, "found", float(m), ends))
        elif (f_lo > 0) != (f_hi > 0):
            root = optimize.brentq(lambda f, k=k, m=m: float(rc(f)[k]) - m, lo, hi,
                                   xtol=xtol_mm)
            out.append(EquivalentFwhm(float(root), "found", float(m), ends))
        else:
            # the model's recovery falls with the FWHM: a measured value above both ends
            # lies above the sharpest's, one below both under the widest's
            out.append(EquivalentFwhm(None, "above" if m > max(ends) else "below", float(m),
                                      ends))
    return tuple(out)
