"""A realistic SPECT of the synthetic patient, from an imaging model (extra ``realistic-spect``).

The default SPECT of :mod:`.phantom` is the activity blurred by a Gaussian plus Poisson noise.
This module images the same activity the way a SPECT/CT camera does:

1. projections of the activity at 120 views (body-contour orbit) with PyTomography's SPECT
   system matrix: attenuation through the true linear attenuation coefficients of the
   anatomy (bilinear HU -> mu at the photon energy) and the distance-dependent
   collimator-detector response of the collimator (Gaussian, SIMIND collimator geometry);
   counts per view = activity x sensitivity x time per view;
2. scatter in the photopeak window (numpy/scipy: PyTomography models scatter in the
   reconstruction but does not simulate it): scatter-to-primary ratio times the primary
   projection convolved with a 2-D mono-exponential kernel;
3. Poisson noise in the photopeak and scatter windows;
4. a triple-energy-window (Tc-99m) or upper-window (Ho-166) scatter estimate from the
   scatter windows, smoothed;
5. OSEM (PyTomography) with attenuation correction from the CT on the SPECT grid, resolution
   modelling and the scatter estimate as additive term.

The result is in counts: each voxel holds its estimated activity x sensitivity x total
acquisition time (views x seconds per view), i.e. the counts an unattenuated, scatter-free
camera would have recorded. Every parameter and its source is in ``data/spect_simulation.json``.

PyTomography and torch are imported inside the functions: importing this module (or the
package) never needs them; :func:`require_extra` says what to install when they are missing.
"""

from __future__ import annotations

import importlib.util
import json
import math
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage, signal

from .grid import Grid, block_mean

EXTRA = "realistic-spect"
INSTALL_HINT = 'pip install "tareplanner[realistic-spect]" (or pip install -e ".[realistic-spect]")'
NUCLIDES = ("Tc-99m", "Ho-166")
FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


class MissingExtraError(RuntimeError):
    """PyTomography (or torch) is not installed."""


def extra_available() -> bool:
    """True when the packages of the ``realistic-spect`` extra can be imported."""
    try:
        return all(importlib.util.find_spec(m) is not None for m in ("pytomography", "torch"))
    except (ImportError, ValueError):
        return False


def require_extra() -> None:
    if not extra_available():
        raise MissingExtraError(f"the realistic SPECT model needs the extra '{EXTRA}' "
                                f"(PyTomography and torch): {INSTALL_HINT}")


@lru_cache(maxsize=1)
def settings() -> dict:
    """The parameters of ``data/spect_simulation.json`` as plain values (sources dropped)."""
    path = Path(__file__).resolve().parent.parent / "data" / "spect_simulation.json"
    raw = json.loads(path.read_text(encoding="utf-8"))

    def values(section: dict) -> dict:
        return {k: v["value"] for k, v in section.items()}

    return {"nuclides": {n: values(p) for n, p in raw["nuclides"].items()},
            "acquisition": values(raw["acquisition"]),
            "reconstruction": values(raw["reconstruction"])}


def with_overrides(parameters: dict, overrides: dict) -> dict:
    """``parameters`` with ``overrides`` in place of some of its values; an override of a
    parameter the model does not have is refused by name."""
    unknown = set(overrides) - set(parameters)
    if unknown:
        raise ValueError(f"overrides: got {sorted(unknown)}; allowed: {sorted(parameters)}")
    return {**parameters, **overrides}


def check_subsets(views: int, subsets: int, noun: str) -> None:
    """OSEM's subsets must split the ``views`` evenly."""
    if views % subsets:
        raise ValueError(f"subsets: got {subsets}; allowed: a divisor of the {views} {noun}")


@dataclass(frozen=True)
class SpectProtocol:
    """One acquisition and reconstruction; defaults from ``data/spect_simulation.json``."""

    nuclide: str = "Tc-99m"
    projections: int | None = None
    seconds_per_projection: float | None = None
    iterations: int | None = None
    subsets: int | None = None
    orbit_clearance_mm: float | None = None
    scatter: bool = True
    noise: bool = True
    attenuation_correction: bool = True
    resolution_modelling: bool = True
    overrides: dict = field(default_factory=dict)   # nuclide parameters, e.g. scatter_to_primary

    def resolved(self) -> dict:
        if self.nuclide not in NUCLIDES:
            raise ValueError(f"nuclide: got {self.nuclide!r}; allowed: {', '.join(NUCLIDES)}")
        s = settings()
        out = with_overrides(s["nuclides"][self.nuclide], self.overrides)
        acq, rec = s["acquisition"], s["reconstruction"]
        out["projections"] = int(self.projections or acq["projections"])
        out["seconds_per_projection"] = float(self.seconds_per_projection
                                              or acq["seconds_per_projection"])
        out["orbit_clearance_mm"] = float(acq["orbit_clearance_mm"]
                                          if self.orbit_clearance_mm is None
                                          else self.orbit_clearance_mm)
        out["scatter_estimate_smoothing_fwhm_mm"] = float(acq["scatter_estimate_smoothing_fwhm_mm"])
        out["iterations"] = int(self.iterations or rec["iterations"])
        out["subsets"] = int(self.subsets or rec["subsets"])
        check_subsets(out["projections"], out["subsets"], "projections")
        return out


@dataclass
class SpectSimulation:
    image: sitk.Image               # reconstructed counts on the input grid
    primary_counts: float           # expected primary (unscattered) photopeak counts, all views
    scatter_counts: float           # expected scatter counts in the photopeak window, all views
    photopeak_counts: float         # recorded photopeak counts (with noise when asked)
    unattenuated_counts: float      # activity x sensitivity x time, all views
    radii_mm: np.ndarray            # detector distance from the rotation axis per view
    angles_deg: np.ndarray
    seconds: dict                   # wall time of each stage
    parameters: dict


def check_simulation_inputs(grid, activity_name: str, activity: np.ndarray,
                            mu_true_per_cm: np.ndarray):
    """What an emission simulation needs (the SPECT's and the PET's): isotropic voxels, the
    activity and attenuation maps on ``grid``, finite activities >= 0. Returns the spacing."""
    spacing = grid.spacing_mm
    if not np.allclose(spacing, spacing[0], rtol=1e-6):
        raise ValueError(f"grid spacing: got {spacing}; allowed: isotropic voxels")
    for name, a in ((activity_name, activity), ("mu_true_per_cm", mu_true_per_cm)):
        if a.shape != grid.shape_zyx:
            raise ValueError(f"{name}: shape {a.shape} does not match the grid {grid.shape_zyx}")
    if np.any(activity < 0) or not np.all(np.isfinite(activity)):
        raise ValueError(f"{activity_name}: allowed: finite values >= 0")
    return spacing


def mu_from_hu(hu: np.ndarray, coefficients: dict) -> np.ndarray:
    """Bilinear HU -> linear attenuation coefficient (1/cm), continuous at the break
    (``break_hu``, 0 when not given): ``water + slope_below_0 * HU`` below it, then
    ``slope_above_0`` per HU from the value at the break; air and below give 0."""
    hu = np.asarray(hu, dtype=np.float64)
    knee = float(coefficients.get("break_hu", 0.0))
    at_knee = coefficients["water"] + coefficients["slope_below_0"] * knee
    mu = np.where(hu < knee, coefficients["water"] + coefficients["slope_below_0"] * hu,
                  at_knee + coefficients["slope_above_0"] * (hu - knee))
    return np.clip(mu, 0.0, None)


def contour_radii_mm(body_xy: np.ndarray, spacing_mm: float, angles_deg: np.ndarray,
                     clearance_mm: float) -> np.ndarray:
    """Body-contour orbit: for every view, the distance from the rotation axis (the centre of
    the square transaxial grid) to the detector face = the body's extent towards the detector
    plus ``clearance_mm``. ``body_xy`` is a boolean (x, y) mask. In PyTomography's geometry
    the detector of view beta lies along (cos phi, sin phi) with phi = 270 deg - beta."""
    n = body_xy.shape[0]
    ix, iy = np.nonzero(body_xy)
    if ix.size == 0:
        extent = np.zeros(len(angles_deg))
    else:
        # voxel corners, so that the detector never cuts a body voxel
        centre = (n - 1) / 2.0
        px = (ix[:, None] - centre + np.array([-0.5, 0.5, -0.5, 0.5])[None, :]).ravel()
        py = (iy[:, None] - centre + np.array([-0.5, -0.5, 0.5, 0.5])[None, :]).ravel()
        phi = np.deg2rad(270.0 - np.asarray(angles_deg, dtype=float))
        extent = (np.outer(px, np.cos(phi)) + np.outer(py, np.sin(phi))).max(axis=0) * spacing_mm
    return np.maximum(extent, 0.0) + clearance_mm


def exponential_kernel(decay_mm: float, spacing_mm: tuple[float, float]) -> np.ndarray:
    """A normalised 2-D kernel exp(-r/decay) sampled on the projection pixels (to 5 decay
    lengths)."""
    half = [int(math.ceil(5.0 * decay_mm / s)) for s in spacing_mm]
    u = np.arange(-half[0], half[0] + 1)[:, None] * spacing_mm[0]
    v = np.arange(-half[1], half[1] + 1)[None, :] * spacing_mm[1]
    k = np.exp(-np.hypot(u, v) / decay_mm)
    return k / k.sum()


def scatter_projections(primary: np.ndarray, scatter_to_primary: float, decay_mm: float,
                        spacing_mm: tuple[float, float]) -> np.ndarray:
    """Expected scatter in the photopeak window for projections (views, r, z): the primary
    convolved with the exponential kernel, scaled so that scatter / primary =
    ``scatter_to_primary`` in every view (counts that leave the detector are not lost: the
    kernel is renormalised over the detector)."""
    if scatter_to_primary <= 0:
        return np.zeros_like(primary)
    kernel = exponential_kernel(decay_mm, spacing_mm)[None, :, :]
    spread = signal.fftconvolve(primary, kernel, mode="same", axes=(1, 2))
    spread = np.clip(spread, 0.0, None)
    totals = primary.sum(axis=(1, 2))
    spread_totals = spread.sum(axis=(1, 2))
    scale = np.divide(totals, spread_totals, out=np.zeros_like(totals), where=spread_totals > 0)
    return scatter_to_primary * spread * scale[:, None, None]


def window_width(window) -> float:
    return 0.0 if window is None else float(window[1] - window[0])


def scatter_window_counts(scatter: np.ndarray, p: dict) -> dict[str, np.ndarray]:
    """Expected counts of the lower and upper scatter windows, such that the window estimate
    (:func:`scatter_estimate`) equals the photopeak scatter in expectation."""
    w_pk = window_width(p["photopeak_window_kev"])
    out = {}
    for side in ("lower", "upper"):
        w = window_width(p[f"{side}_window_kev"])
        ratio = float(p[f"scatter_density_ratio_{side}"])
        if w > 0 and ratio > 0:
            out[side] = scatter * ratio * w / w_pk
    return out


def scatter_estimate(windows: dict[str, np.ndarray], p: dict,
                     spacing_mm: tuple[float, float]) -> np.ndarray | None:
    """TEW / dual-window estimate of the photopeak scatter: w_pk x sum(C_side / w_side) /
    sum(density ratios), then smoothed by a Gaussian in each view."""
    if not windows:
        return None
    w_pk = window_width(p["photopeak_window_kev"])
    density = sum(windows[s] / window_width(p[f"{s}_window_kev"]) for s in windows)
    ratio = sum(float(p[f"scatter_density_ratio_{s}"]) for s in windows)
    estimate = w_pk * density / ratio
    fwhm = p["scatter_estimate_smoothing_fwhm_mm"]
    if fwhm > 0:
        sigma = [0.0] + [fwhm * FWHM_TO_SIGMA / s for s in spacing_mm]
        estimate = ndimage.gaussian_filter(estimate, sigma, mode="nearest")
    return estimate


def _square_padding(nx: int, ny: int) -> tuple[int, tuple[int, int], tuple[int, int]]:
    n = max(nx, ny)
    return n, ((n - nx) // 2, n - nx - (n - nx) // 2), ((n - ny) // 2, n - ny - (n - ny) // 2)


def _cached_attenuation(mu_xyz):
    """PyTomography's attenuation transform with the survival probabilities of every view
    computed once (OSEM projects every view many times; the map does not change)."""
    import torch
    import pytomography
    from pytomography.transforms.SPECT import SPECTAttenuationTransform

    class CachedAttenuation(SPECTAttenuationTransform):
        def configure(self, object_meta, proj_meta):
            super().configure(object_meta, proj_meta)
            self._cache = {}

        def _factor(self, ang_idx):
            key = int(ang_idx)
            if key not in self._cache:
                self._cache[key] = super().forward(torch.ones((1,), dtype=pytomography.dtype,
                                                              device=pytomography.device),
                                                   ang_idx)
            return self._cache[key]

        @torch.no_grad()
        def forward(self, object_i, ang_idx):
            return object_i * self._factor(ang_idx)

        @torch.no_grad()
        def backward(self, object_i, ang_idx):
            return object_i * self._factor(ang_idx)

    return CachedAttenuation(torch.tensor(mu_xyz, dtype=pytomography.dtype,
                                          device=pytomography.device))


def _system_matrix(mu_xyz, spacing_cm, shape_xyz, angles, radii_cm, p, *, attenuation, psf,
                   cache=False):
    """PyTomography's SPECT system matrix (rotate and sum) with attenuation and the
    collimator-detector response."""
    import torch
    import pytomography
    from pytomography.io.SPECT.dicom import get_psfmeta_from_scanner_params
    from pytomography.metadata.SPECT import SPECTObjectMeta, SPECTProjMeta
    from pytomography.projectors.SPECT import SPECTSystemMatrix
    from pytomography.transforms.SPECT import SPECTAttenuationTransform, SPECTPSFTransform

    object_meta = SPECTObjectMeta([spacing_cm] * 3, list(shape_xyz))
    proj_meta = SPECTProjMeta((shape_xyz[1], shape_xyz[2]), [spacing_cm, spacing_cm],
                              list(angles), radii=list(radii_cm))
    transforms = []
    if attenuation:
        transforms.append(_cached_attenuation(mu_xyz) if cache else SPECTAttenuationTransform(
            torch.tensor(mu_xyz, dtype=pytomography.dtype, device=pytomography.device)))
    if psf:
        meta = get_psfmeta_from_scanner_params(
            p["collimator"], p["photon_energy_kev"],
            intrinsic_resolution=p["intrinsic_fwhm_mm"] / 10.0)
        transforms.append(SPECTPSFTransform(meta))
    return SPECTSystemMatrix(transforms, [], object_meta, proj_meta)


def _to_torch(array):
    import torch
    import pytomography
    return torch.tensor(np.ascontiguousarray(array), dtype=pytomography.dtype,
                        device=pytomography.device)


def simulate_spect(activity_mbq: np.ndarray, mu_true_per_cm: np.ndarray, grid: Grid,
                   protocol: SpectProtocol = SpectProtocol(), *,
                   mu_recon_per_cm: np.ndarray | None = None,
                   seed: int | list[int] = 0) -> SpectSimulation:
    """Image ``activity_mbq`` (MBq per voxel at the start of the acquisition, (z, y, x) on
    ``grid``, isotropic voxels) through the attenuating body ``mu_true_per_cm`` and
    reconstruct it with ``mu_recon_per_cm`` (the CT-derived map; default the true one).

    The transaxial plane is padded to a square around the grid centre (the rotation axis);
    the reconstruction is cropped back to ``grid``.
    """
    require_extra()
    import torch
    from pytomography.algorithms import OSEM
    from pytomography.likelihoods import PoissonLogLikelihood

    p = protocol.resolved()
    spacing = check_simulation_inputs(grid, "activity_mbq", activity_mbq, mu_true_per_cm)
    mu_recon = mu_true_per_cm if mu_recon_per_cm is None else mu_recon_per_cm
    d_mm = float(spacing[0])
    d_cm = d_mm / 10.0
    rng = np.random.default_rng(seed)
    seconds = {}

    nz, ny, nx = grid.shape_zyx
    n, pad_x, pad_y = _square_padding(nx, ny)

    def to_xyz(a):   # (z, y, x) -> padded (x, y, z)
        return np.pad(np.transpose(a, (2, 1, 0)), (pad_x, pad_y, (0, 0)))

    counts_per_view = activity_mbq * p["sensitivity_cps_per_mbq"] * p["seconds_per_projection"]
    obj = to_xyz(counts_per_view.astype(np.float64))
    mu_t = to_xyz(mu_true_per_cm.astype(np.float64))
    mu_r = to_xyz(mu_recon.astype(np.float64))

    views = p["projections"]
    angles = np.arange(views) * (360.0 / views)
    body = (mu_t > 0.02).any(axis=2) | (obj > 0).any(axis=2)
    radii_mm = contour_radii_mm(body, d_mm, angles, p["orbit_clearance_mm"])

    t0 = time.perf_counter()
    with torch.no_grad():
        h_true = _system_matrix(mu_t, d_cm, obj.shape, angles, radii_mm / 10.0, p,
                                attenuation=True, psf=True)
        primary = h_true.forward(_to_torch(obj)).cpu().numpy().astype(np.float64)
    primary = np.clip(primary, 0.0, None)
    seconds["projection"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    proj_spacing = (d_mm, d_mm)
    scatter = (scatter_projections(primary, p["scatter_to_primary"], p["scatter_kernel_decay_mm"],
                                   proj_spacing) if protocol.scatter else np.zeros_like(primary))
    expected = primary + scatter
    windows = scatter_window_counts(scatter, p) if protocol.scatter else {}
    if protocol.noise:
        measured = rng.poisson(expected).astype(np.float64)
        windows = {k: rng.poisson(v).astype(np.float64) for k, v in windows.items()}
    else:
        measured = expected
    estimate = scatter_estimate(windows, p, proj_spacing) if protocol.scatter else None
    seconds["scatter_and_noise"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    with torch.no_grad():
        h_rec = _system_matrix(mu_r, d_cm, obj.shape, angles, radii_mm / 10.0, p,
                               attenuation=protocol.attenuation_correction,
                               psf=protocol.resolution_modelling, cache=True)
        likelihood = PoissonLogLikelihood(
            h_rec, _to_torch(measured),
            additive_term=None if estimate is None else _to_torch(estimate))
        recon = OSEM(likelihood)(n_iters=p["iterations"], n_subsets=p["subsets"])
        recon = recon.cpu().numpy().astype(np.float64)
    seconds["reconstruction"] = time.perf_counter() - t0

    recon = recon[pad_x[0]:pad_x[0] + nx, pad_y[0]:pad_y[0] + ny, :]
    counts = np.transpose(recon, (2, 1, 0)) * views   # all views
    image = grid.image(counts.astype(np.float32))
    return SpectSimulation(
        image=image, primary_counts=float(primary.sum()), scatter_counts=float(scatter.sum()),
        photopeak_counts=float(measured.sum()),
        unattenuated_counts=float(counts_per_view.sum() * views),
        radii_mm=radii_mm, angles_deg=angles, seconds=seconds, parameters=p)


# --- the synthetic patient --------------------------------------------------------------

def _ct_on_grid(ct: sitk.Image, grid: Grid) -> np.ndarray:
    """The CT (HU) averaged onto the SPECT grid: Gaussian smoothing to the SPECT voxel size,
    then linear interpolation (what a SPECT/CT system does to build its mu map)."""
    ct_f = sitk.Cast(ct, sitk.sitkFloat32)
    sigma = [max(g, c) * FWHM_TO_SIGMA for g, c in zip(grid.spacing_mm, ct.GetSpacing())]
    smooth = sitk.SmoothingRecursiveGaussian(ct_f, sigma)
    ref = grid.image(np.zeros(grid.shape_zyx, dtype=np.float32))
    out = sitk.Resample(smooth, ref, sitk.Transform(), sitk.sitkLinear, -1000.0)
    return sitk.GetArrayFromImage(out).astype(np.float64)


def true_mu_map(spec, grid: Grid, nuclide: str) -> np.ndarray:
    """Linear attenuation coefficients (1/cm) of the analytic anatomy, averaged over
    sub-voxels (noise-free: the patient, not its CT)."""
    p = settings()["nuclides"][nuclide]
    k = max(1, int(spec.supersample))
    z, y, x = grid.points_mm(k)
    labels = spec.anatomy.labels(z, y, x)
    mu = mu_from_hu(spec.anatomy.hounsfield(labels), p["hu_to_mu_per_cm"])
    return block_mean(mu, k)


def phantom_spect(spec, grid: Grid, relative: np.ndarray, *, nuclide: str,
                  administered_mbq: float, delay_h: float, ct: sitk.Image | None,
                  stream: int) -> SpectSimulation:
    """The realistic SPECT of the synthetic patient: ``relative`` (the phantom's emission map
    on ``grid``) scaled to ``administered_mbq`` decayed over ``delay_h`` (administration to
    acquisition), imaged through the anatomy and reconstructed with the phantom's CT."""
    require_extra()
    from ..physics.decay import decay_factor

    p = settings()["nuclides"][nuclide]
    at_start = administered_mbq * float(decay_factor(delay_h, p["half_life_h"]))
    activity = relative * (at_start / relative.sum())
    mu_true = true_mu_map(spec, grid, nuclide)
    mu_recon = (mu_from_hu(_ct_on_grid(ct, grid), p["hu_to_mu_per_cm"])
                if ct is not None else mu_true)
    protocol = SpectProtocol(nuclide=nuclide, noise=spec.spect_noise,
                             seconds_per_projection=seconds_per_view(
                                 getattr(spec, "spect_acquisition_minutes", None)),
                             iterations=getattr(spec, "reconstruction_iterations", None))
    return simulate_spect(activity, mu_true, grid, protocol, mu_recon_per_cm=mu_recon,
                          seed=[spec.seed, stream])


# --- the NEMA/IEC body phantom -----------------------------------------------------------

def iec_spect(spec, grid: Grid, activity_mbq: np.ndarray, ct: sitk.Image,
              mu_true_per_cm: np.ndarray) -> SpectSimulation:
    """The realistic SPECT of the IEC phantom: ``activity_mbq`` (MBq per voxel at the start
    of the acquisition) imaged through the phantom (``mu_true_per_cm``, noise-free) with the patient's protocol (the same
    collimator, views, scatter, noise and OSEM as :func:`phantom_spect`) and reconstructed
    with the phantom's CT as attenuation map, so that a camera calibrated on it is the
    camera of the realistic synthetic patient."""
    require_extra()
    nuclide = spec.nuclide
    if nuclide not in NUCLIDES:
        raise ValueError(f"nuclide: got {nuclide!r}; allowed: {', '.join(NUCLIDES)}")
    mu_true = mu_true_per_cm
    mu_recon = mu_from_hu(_ct_on_grid(ct, grid), settings()["nuclides"][nuclide]["hu_to_mu_per_cm"])
    protocol = SpectProtocol(nuclide=nuclide, noise=spec.noise,
                             seconds_per_projection=seconds_per_view(
                                 getattr(spec, "acquisition_minutes", None)),
                             iterations=getattr(spec, "iterations", None))
    return simulate_spect(activity_mbq, mu_true, grid, protocol, mu_recon_per_cm=mu_recon,
                          seed=[spec.seed, 7])


def seconds_per_view(acquisition_minutes: float | None) -> float | None:
    """Seconds per view of an acquisition of ``acquisition_minutes`` (views x seconds per
    view), None for the protocol's own."""
    if acquisition_minutes is None:
        return None
    return float(acquisition_minutes) * 60.0 / settings()["acquisition"]["projections"]


def realistic_counts_per_mbq(nuclide: str, acquisition_minutes: float | None = None) -> float:
    """Counts per MBq of a realistic SPECT image (sensitivity x seconds per view x views):
    what the image of 1 MBq holds after a perfect reconstruction."""
    p = SpectProtocol(nuclide=nuclide,
                      seconds_per_projection=seconds_per_view(acquisition_minutes)).resolved()
    return p["sensitivity_cps_per_mbq"] * p["seconds_per_projection"] * p["projections"]
