"""A realistic Y-90 PET, from an imaging model (extra ``realistic-spect``).

The default Y-90 PET of :mod:`.phantom` is the activity blurred by a Gaussian plus Poisson
noise at an assumed count. This module images the same activity the way a PET/CT scanner
does, at Y-90's tiny positron yield:

1. positrons = activity x positrons per decay (internal pair production, 32 per million
   decays) x acquisition time; the scanner's sensitivity per positron (the NEMA line-source
   sensitivity, per F-18 positron, spread over the axial field of view) gives the true
   coincidences before attenuation;
2. the scanner's resolution (an isotropic Gaussian of the NEMA FWHM) and parallel-line
   projection at the scanner's sinogram angles over 180 degrees (2-D, direct-plane
   sinograms; PyTomography's rotate-and-sum); every line of response is attenuated by
   exp(-integral of mu at 511 keV) through the true anatomy;
3. time of flight: each line of response is split into the scanner's time bins, an
   annihilation at distance t from the line's midpoint falling in a bin with the probability
   of a Gaussian of FWHM c x (timing resolution) / 2 centred on t (:func:`tof_weights`);
4. scattered coincidences (a fixed scatter fraction, the attenuated trues blurred along each
   projection and across the time bins) and random coincidences (a fixed random fraction,
   uniform over the sinogram and the time bins, i.e. over the coincidence window);
5. Poisson noise on the prompts;
6. ordinary-Poisson OSEM (PyTomography) with attenuation from the CT on the PET grid,
   resolution modelling, the same time-of-flight kernel and the expected scatter and
   randoms as additive term, then a Gaussian post-filter.

The image is in Bq/mL at the acquisition start: the reconstruction divided by the model's own
sensitivity x positron yield x time, i.e. a scanner whose Bq/mL calibration is exact for a
uniform source. PyTomography's own PET projectors need parallelproj, which is not on PyPI; the
rotate-and-sum projector of its SPECT module is the parallel-beam projector of a 2-D PET,
and the time-of-flight weights are applied along the summed axis.
Every parameter and its source is in ``data/pet_simulation.json``.

PyTomography and torch are imported inside the functions (as in :mod:`.spect_simulation`).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage, special

from .grid import Grid, block_mean
from .spect_simulation import (FWHM_TO_SIGMA, _ct_on_grid, _square_padding, _to_torch,
                               check_simulation_inputs, check_subsets, mu_from_hu,
                               require_extra, with_overrides)

NUCLIDE = "Y-90"


@lru_cache(maxsize=1)
def settings() -> dict:
    """The parameters of ``data/pet_simulation.json`` as plain values (sources dropped); the
    half-life from ``data/nuclides.json``."""
    path = Path(__file__).resolve().parent.parent / "data" / "pet_simulation.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    out = {section: {k: v["value"] for k, v in raw[section].items()}
           for section in ("nuclide", "scanner", "acquisition", "reconstruction")}
    if out["nuclide"]["half_life_h"] == "nuclides.json":
        from .. import catalogue
        out["nuclide"]["half_life_h"] = float(catalogue.nuclide(NUCLIDE).half_life_h)
    return out


def sensitivity_cps_per_positron_bq() -> float:
    """True coincidences per second per positron-emitting Bq in the field of view, before
    attenuation: the NEMA sensitivity (per F-18 decay, averaged over a line longer than the
    field of view) per F-18 positron, times line length / axial field of view."""
    s = settings()["scanner"]
    return (s["sensitivity_cps_per_kbq"] / 1000.0 / s["f18_positrons_per_decay"]
            * s["nema_line_source_length_mm"] / s["axial_fov_mm"])


def trues_per_bq() -> float:
    """Unattenuated true coincidences recorded per Bq of Y-90 over the acquisition."""
    p = settings()
    return (p["nuclide"]["positrons_per_decay"] * sensitivity_cps_per_positron_bq()
            * p["acquisition"]["minutes_per_bed"] * 60.0)


def tof_distance_mm(time_ps: float, speed_of_light_mm_per_ps: float) -> float:
    """A time difference along a line of response as a distance: c x dt / 2 (a time
    difference dt places the annihilation c dt / 2 from the line's midpoint)."""
    return speed_of_light_mm_per_ps * float(time_ps) / 2.0


def tof_weights(n_positions: int, spacing_mm: float, fwhm_mm: float, bins: int,
                bin_width_mm: float) -> np.ndarray:
    """(bins, n_positions): the probability that an annihilation at sample ``j`` of a line of
    response (``spacing_mm`` apart, centred on the line's midpoint) is recorded in time bin
    ``k`` (``bin_width_mm`` wide, the bins centred on the midpoint): the Gaussian of
    ``fwhm_mm`` integrated over the bin. A column sums to 1 where the bins cover the kernel;
    what falls beyond the outer bins is outside the coincidence window and not recorded."""
    lengths = (spacing_mm, fwhm_mm, bin_width_mm)
    if not (n_positions >= 1 and bins >= 1
            and all(math.isfinite(v) and v > 0 for v in lengths)):
        raise ValueError(f"time-of-flight weights: got {n_positions} positions, {bins} bins, "
                         f"spacing {spacing_mm} mm, FWHM {fwhm_mm} mm, bin width "
                         f"{bin_width_mm} mm; allowed: finite numbers > 0")
    sigma = fwhm_mm * FWHM_TO_SIGMA
    t = (np.arange(n_positions) - (n_positions - 1) / 2.0) * spacing_mm
    edges = (np.arange(bins + 1) - bins / 2.0) * bin_width_mm
    cdf = special.ndtr((edges[:, None] - t[None, :]) / sigma)
    return np.diff(cdf, axis=0)


@dataclass(frozen=True)
class PetProtocol:
    """One acquisition and reconstruction; defaults from ``data/pet_simulation.json``."""

    iterations: int | None = None
    subsets: int | None = None
    minutes_per_bed: float | None = None
    noise: bool = True
    scatter_and_randoms: bool = True
    attenuation_correction: bool = True
    resolution_modelling: bool = True
    post_filter_fwhm_mm: float | None = None
    time_of_flight: bool | None = None
    overrides: dict = field(default_factory=dict)   # any other parameter of the data file

    def resolved(self) -> dict:
        s = settings()
        out = with_overrides({**s["nuclide"], **s["scanner"], **s["acquisition"],
                              **s["reconstruction"]}, self.overrides)
        for name in ("iterations", "subsets", "minutes_per_bed", "post_filter_fwhm_mm",
                     "time_of_flight"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out["iterations"], out["subsets"], out["views"] = (
            int(out["iterations"]), int(out["subsets"]), int(out["views"]))
        check_subsets(out["views"], out["subsets"], "views")
        out["time_of_flight"] = bool(out["time_of_flight"])
        out["tof_bins"] = int(out["tof_bins"])
        c = out["speed_of_light_mm_per_ps"]
        out["tof_fwhm_mm"] = tof_distance_mm(out["tof_timing_resolution_ps"], c)
        out["tof_bin_width_mm"] = tof_distance_mm(out["tof_bin_width_ps"], c)
        return out


@dataclass
class PetSimulation:
    image: sitk.Image               # Bq/mL at the acquisition start, on the input grid
    trues: float                    # expected true coincidences (attenuated), all views
    scatter: float                  # expected scattered coincidences
    randoms: float                  # expected random coincidences
    prompts: float                  # recorded prompts (with noise when asked)
    unattenuated_trues: float       # activity x positron yield x sensitivity x time
    seconds: dict
    parameters: dict


def _gaussian_blur_torch(obj, fwhm_mm: float, spacing_mm: float):
    """Isotropic Gaussian blur of a (x, y, z) torch tensor, zero outside (symmetric: its own
    adjoint)."""
    import torch
    if fwhm_mm <= 0:
        return obj
    sigma = fwhm_mm * FWHM_TO_SIGMA / spacing_mm
    half = max(1, int(math.ceil(3.0 * sigma)))
    t = torch.arange(-half, half + 1, dtype=obj.dtype, device=obj.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    out = obj[None, None]
    for axis in range(3):
        shape = [1, 1, 1, 1, 1]
        shape[2 + axis] = kernel.numel()
        padding = [0, 0, 0]
        padding[axis] = half
        out = torch.nn.functional.conv3d(out, kernel.reshape(shape), padding=tuple(padding))
    return out[0, 0]


def _system_matrix(shape_xyz, spacing_cm: float, views: int, acf_xyz=None,
                   fwhm_mm: float = 0.0, tof: dict | None = None):
    """Parallel-line projector of a 2-D PET over 180 degrees (PyTomography's rotate-and-sum),
    with each line of response multiplied by its attenuation factor ``acf_xyz`` (views, r, z)
    and the object blurred by the scanner's Gaussian first. With ``tof`` (``fwhm_mm``,
    ``bins``, ``bin_width_mm``) every line is split into time bins: projections (bins, views,
    r, z) instead of (views, r, z)."""
    import pytomography
    import torch
    from pytomography.metadata.SPECT import SPECTObjectMeta, SPECTProjMeta
    from pytomography.projectors.SPECT import SPECTSystemMatrix
    from pytomography.transforms import Transform
    from pytomography.utils import pad_object, pad_proj, unpad_object

    spacing_mm = spacing_cm * 10.0

    class LineAttenuation(Transform):
        """exp(-integral of mu) along the whole line: the same for every point on it."""

        def __init__(self, factors):
            super().__init__()
            self.padded = pad_proj(factors)        # (views, r', z), 1 outside the grid

        @torch.no_grad()
        def forward(self, object_i, ang_idx):
            return object_i * self.padded[int(ang_idx)][None]

        @torch.no_grad()
        def backward(self, object_i, ang_idx):
            return object_i * self.padded[int(ang_idx)][None]

    class PetSystemMatrix(SPECTSystemMatrix):
        @torch.no_grad()
        def forward(self, object, subset_idx=None):
            blurred = _gaussian_blur_torch(object.to(pytomography.device), fwhm_mm, spacing_mm)
            return super().forward(blurred, subset_idx)

        @torch.no_grad()
        def backward(self, proj, subset_idx=None):
            return _gaussian_blur_torch(super().backward(proj, subset_idx), fwhm_mm, spacing_mm)

    class TofPetSystemMatrix(PetSystemMatrix):
        """The rotate-and-sum projector with the sum along each line replaced by the
        time-of-flight weights: bin k of a line = sum over its samples of w[k, j] f_j. The
        back-projection applies the transposed weights, so it stays the exact adjoint."""

        def __init__(self, *args, weights, **kwargs):
            super().__init__(*args, **kwargs)
            self.weights = weights                 # (bins, padded samples along the line)

        def _angles(self, subset_idx):
            if subset_idx is None:
                return list(range(self.proj_meta.num_projections))
            return [int(a) for a in self.subset_indices_array[subset_idx]]

        @torch.no_grad()
        def forward(self, object, subset_idx=None):
            blurred = _gaussian_blur_torch(object.to(pytomography.device), fwhm_mm, spacing_mm)
            padded = pad_object(blurred)
            angles = self._angles(subset_idx)
            proj = torch.zeros((self.weights.shape[0], len(angles), *padded.shape[1:]),
                               dtype=padded.dtype, device=padded.device)
            for i, a in enumerate(angles):
                object_i = self.rotation_transform.backward(padded,
                                                            270 - self.proj_meta.angles[a])
                for transform in self.obj2obj_transforms:
                    object_i = transform.forward(object_i, a)
                proj[:, i] = torch.tensordot(self.weights, object_i, dims=1)
            pad = self.object_meta.pad_size
            return proj[:, :, pad:-pad, :] if pad else proj

        @torch.no_grad()
        def backward(self, proj, subset_idx=None):
            pad = self.object_meta.pad_size
            proj = torch.nn.functional.pad(proj.to(pytomography.device), [0, 0, pad, pad])
            box = pad_object(torch.ones(self.object_meta.shape, device=proj.device),
                             mode="back_project")
            out = torch.zeros(self.object_meta.padded_shape, dtype=proj.dtype,
                              device=proj.device)
            for i, a in enumerate(self._angles(subset_idx)):
                object_i = torch.tensordot(self.weights.T, proj[:, i], dims=1) * box
                for transform in self.obj2obj_transforms[::-1]:
                    object_i = transform.backward(object_i, a)
                out += self.rotation_transform.forward(object_i, 270 - self.proj_meta.angles[a])
            return _gaussian_blur_torch(unpad_object(out), fwhm_mm, spacing_mm)

        def compute_normalization_factor(self, subset_idx=None):
            ones = torch.ones((self.weights.shape[0], *self.proj_meta.shape),
                              device=pytomography.device)
            if subset_idx is not None:
                ones = self.get_projection_subset(ones, subset_idx)
            return self.backward(ones, subset_idx)

    angles = np.arange(views) * (180.0 / views)
    object_meta = SPECTObjectMeta([spacing_cm] * 3, list(shape_xyz))
    # radii: the detector distance of a SPECT view; unused without a collimator response
    proj_meta = SPECTProjMeta((shape_xyz[1], shape_xyz[2]), [spacing_cm, spacing_cm],
                              list(angles), radii=[100.0] * views)
    transforms = [] if acf_xyz is None else [LineAttenuation(_to_torch(acf_xyz))]
    if tof is None:
        return PetSystemMatrix(transforms, [], object_meta, proj_meta)
    samples = int(object_meta.padded_shape[0])
    weights = tof_weights(samples, spacing_mm, tof["fwhm_mm"], tof["bins"],
                          tof["bin_width_mm"])
    return TofPetSystemMatrix(transforms, [], object_meta, proj_meta,
                              weights=_to_torch(weights))


def attenuation_factors(mu_xyz: np.ndarray, spacing_mm: float, views: int) -> np.ndarray:
    """exp(-sum of mu x path) of every line of response (views, r, z)."""
    import torch
    with torch.no_grad():
        line = _system_matrix(mu_xyz.shape, spacing_mm / 10.0, views).forward(_to_torch(mu_xyz))
    return np.exp(-line.cpu().numpy().astype(np.float64) * spacing_mm / 10.0)


def scatter_and_randoms(trues: np.ndarray, p: dict, spacing_mm: float,
                        time_of_flight: bool) -> tuple[np.ndarray, np.ndarray]:
    """(expected scatter, expected randoms) sinograms for the expected ``trues`` (axes
    (bins, views, r, z) with time of flight, (views, r, z) without; ``p`` the resolved
    protocol). Scatter: the trues blurred by a Gaussian of ``scatter_kernel_fwhm_mm`` along
    each projection (r) and, with time of flight, across the time bins (a scattered pair
    keeps little of its position along the line), scaled to ``scatter_fraction`` of trues
    plus scatter. Randoms: ``random_fraction`` of the prompts, uniform over the sinogram
    (and over the time bins: the coincidence window)."""
    scatter = np.zeros_like(trues)
    randoms = np.zeros_like(trues)
    if trues.sum() <= 0:
        return scatter, randoms
    sf = float(p["scatter_fraction"])
    if sf > 0:
        sigma_r = p["scatter_kernel_fwhm_mm"] * FWHM_TO_SIGMA / spacing_mm
        sigmas = ((p["scatter_kernel_fwhm_mm"] * FWHM_TO_SIGMA / p["tof_bin_width_mm"],
                   0.0, sigma_r, 0.0) if time_of_flight else (0.0, sigma_r, 0.0))
        spread = np.clip(ndimage.gaussian_filter(trues, sigmas, mode="constant"), 0.0, None)
        spread *= trues.sum() / spread.sum()
        scatter = sf / (1.0 - sf) * spread
    rf = float(p["random_fraction"])
    if rf > 0:
        total = rf / (1.0 - rf) * (trues.sum() + scatter.sum())
        randoms = np.full_like(trues, total / trues.size)
    return scatter, randoms


def simulate_pet(activity_bq: np.ndarray, mu_true_per_cm: np.ndarray, grid: Grid,
                 protocol: PetProtocol = PetProtocol(), *,
                 mu_recon_per_cm: np.ndarray | None = None,
                 seed: int | list[int] = 0) -> PetSimulation:
    """Image ``activity_bq`` (Y-90 Bq per voxel at the start of the acquisition, (z, y, x) on
    ``grid``, isotropic voxels) through ``mu_true_per_cm`` (511 keV) and reconstruct it with
    ``mu_recon_per_cm`` (the CT-derived map; default the true one). The transaxial plane is
    padded to a square around the grid centre; the image is cropped back to ``grid``."""
    require_extra()
    import torch
    from pytomography.algorithms import OSEM
    from pytomography.likelihoods import PoissonLogLikelihood

    p = protocol.resolved()
    spacing = check_simulation_inputs(grid, "activity_bq", activity_bq, mu_true_per_cm)
    mu_recon = mu_true_per_cm if mu_recon_per_cm is None else mu_recon_per_cm
    d_mm = float(spacing[0])
    views = p["views"]
    rng = np.random.default_rng(seed)
    seconds = {}
    nz, ny, nx = grid.shape_zyx
    n, pad_x, pad_y = _square_padding(nx, ny)

    def to_xyz(a):   # (z, y, x) -> padded (x, y, z)
        return np.pad(np.transpose(a, (2, 1, 0)), (pad_x, pad_y, (0, 0)))

    trues_per_bq_ = (p["positrons_per_decay"] * sensitivity_cps_per_positron_bq()
                     * p["minutes_per_bed"] * 60.0)
    per_view = to_xyz(activity_bq.astype(np.float64) * trues_per_bq_ / views)

    tof = ({"fwhm_mm": p["tof_fwhm_mm"], "bins": p["tof_bins"],
            "bin_width_mm": p["tof_bin_width_mm"]} if p["time_of_flight"] else None)
    t0 = time.perf_counter()
    acf_true = attenuation_factors(to_xyz(mu_true_per_cm.astype(np.float64)), d_mm, views)
    with torch.no_grad():
        h_true = _system_matrix(per_view.shape, d_mm / 10.0, views, acf_true,
                                p["system_fwhm_mm"], tof)
        trues = np.clip(h_true.forward(_to_torch(per_view)).cpu().numpy().astype(np.float64),
                        0.0, None)
    seconds["projection"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if protocol.scatter_and_randoms:
        scatter, randoms = scatter_and_randoms(trues, p, d_mm, bool(tof))
    else:
        scatter, randoms = np.zeros_like(trues), np.zeros_like(trues)
    expected = trues + scatter + randoms
    measured = rng.poisson(expected).astype(np.float64) if protocol.noise else expected
    background = scatter + randoms
    seconds["scatter_randoms_noise"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    acf_recon = (attenuation_factors(to_xyz(mu_recon.astype(np.float64)), d_mm, views)
                 if protocol.attenuation_correction else None)
    with torch.no_grad():
        h_rec = _system_matrix(per_view.shape, d_mm / 10.0, views, acf_recon,
                               p["system_fwhm_mm"] if protocol.resolution_modelling else 0.0,
                               tof)
        likelihood = PoissonLogLikelihood(
            h_rec, _to_torch(measured),
            additive_term=_to_torch(background) if background.any() else None)
        recon = OSEM(likelihood)(n_iters=p["iterations"], n_subsets=p["subsets"])
        recon = recon.cpu().numpy().astype(np.float64)
    seconds["reconstruction"] = time.perf_counter() - t0

    recon = recon[pad_x[0]:pad_x[0] + nx, pad_y[0]:pad_y[0] + ny, :]
    per_voxel = np.transpose(recon, (2, 1, 0)) * views / trues_per_bq_       # Bq per voxel
    fwhm = float(p["post_filter_fwhm_mm"])
    if fwhm > 0:
        per_voxel = ndimage.gaussian_filter(per_voxel, fwhm * FWHM_TO_SIGMA / d_mm,
                                            mode="constant")
    bq_ml = per_voxel / grid.voxel_volume_ml
    return PetSimulation(
        image=grid.image(bq_ml.astype(np.float32)), trues=float(trues.sum()),
        scatter=float(scatter.sum()), randoms=float(randoms.sum()),
        prompts=float(measured.sum()),
        unattenuated_trues=float(activity_bq.sum() * trues_per_bq_), seconds=seconds,
        parameters=p)


def mu_511(hu: np.ndarray) -> np.ndarray:
    """Linear attenuation coefficients (1/cm) at 511 keV from HU (data file's bilinear)."""
    return mu_from_hu(hu, settings()["scanner"]["hu_to_mu_per_cm"])


# --- the synthetic patient --------------------------------------------------------------

def phantom_pet(spec, grid: Grid, activity_bq: np.ndarray, ct: sitk.Image | None,
                stream: int) -> PetSimulation:
    """The realistic Y-90 PET of the synthetic patient: ``activity_bq`` (Bq per voxel at the
    acquisition start) imaged through the anatomy and reconstructed with the phantom's CT."""
    require_extra()
    k = max(1, int(spec.supersample))
    z, y, x = grid.points_mm(k)
    labels = spec.anatomy.labels(z, y, x)
    mu_true = block_mean(mu_511(spec.anatomy.hounsfield(labels)), k)
    mu_recon = mu_511(_ct_on_grid(ct, grid)) if ct is not None else mu_true
    return simulate_pet(activity_bq, mu_true, grid,
                        PetProtocol(noise=spec.pet_noise,
                                    iterations=getattr(spec, "reconstruction_iterations", None)),
                        mu_recon_per_cm=mu_recon, seed=[spec.seed, stream])


# --- the NEMA/IEC body phantom -----------------------------------------------------------

def iec_pet(spec, grid: Grid, activity_mbq: np.ndarray, ct: sitk.Image,
            mu_true_per_cm: np.ndarray) -> PetSimulation:
    """The realistic Y-90 PET of the IEC phantom with the patient's protocol, reconstructed
    with the phantom's CT as attenuation map."""
    require_extra()
    if spec.nuclide != NUCLIDE:
        raise ValueError(f"nuclide: got {spec.nuclide!r}; allowed: {NUCLIDE}")
    mu_recon = mu_511(_ct_on_grid(ct, grid))
    protocol = PetProtocol(noise=spec.noise,
                           minutes_per_bed=getattr(spec, "acquisition_minutes", None),
                           iterations=getattr(spec, "iterations", None))
    return simulate_pet(activity_mbq * 1e6, mu_true_per_cm, grid, protocol,
                        mu_recon_per_cm=mu_recon,
                        seed=[spec.seed, 8])
