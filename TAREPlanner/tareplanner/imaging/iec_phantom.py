"""The NEMA/IEC body phantom: its standard geometry (``data/iec_phantom.json``) and a
synthetic scan of it (CT and SPECT or PET) imaged with a chosen point-spread function, so
that a camera calibration can be tested against a known truth.

Coordinates are LPS millimetres: the axis of the sphere circle (and of the lung insert) is
the z axis through x = y = 0, the spheres lie in the plane z = 0, the body's flat side is
posterior (+y).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import numpy as np
import SimpleITK as sitk

from ..physics.partial_volume import PointSpread, blur
from ..physics.psf_fit import ball_occupancy
from .grid import Grid, block_mean

IEC_FILE = "iec_phantom.json"


@lru_cache(maxsize=None)
def iec_data() -> dict:
    text = resources.files("tareplanner.data").joinpath(IEC_FILE).read_text("utf-8")
    return json.loads(text)


def sphere_diameters_mm() -> tuple[float, ...]:
    return tuple(iec_data()["sphere_inner_diameters_mm"]["value"])


def standard_centres_mm(axis_xy_mm=(0.0, 0.0), plane_z_mm: float = 0.0,
                        first_angle_deg: float = 0.0, direction: int = 1
                        ) -> list[tuple[float, float, float]]:
    """Centres (x, y, z) of the six spheres in the standard's order (10 ... 37 mm): on the
    circle of the standard's radius around ``axis_xy_mm`` in the plane ``plane_z_mm``, the
    10 mm sphere at ``first_angle_deg`` (from +x towards +y), the next ones every
    ``direction`` * 60 degrees."""
    d = iec_data()
    radius = d["sphere_ring_radius_mm"]["value"]
    step = d["sphere_angle_step_deg"]["value"]
    out = []
    for k in range(len(sphere_diameters_mm())):
        angle = math.radians(first_angle_deg + direction * k * step)
        out.append((axis_xy_mm[0] + radius * math.cos(angle),
                    axis_xy_mm[1] + radius * math.sin(angle), float(plane_z_mm)))
    return out


def _body(z, y, x) -> np.ndarray:
    """Inside the D-shaped interior (approximate drawing, ``data/iec_phantom.json``)."""
    b = iec_data()["body"]
    r, depth = b["half_width_mm"], b["posterior_depth_mm"]
    z0 = -b["sphere_plane_from_posterior_end_mm"]
    z1 = z0 + b["interior_length_mm"]
    in_z = (z >= z0) & (z <= z1)
    front = (y <= 0) & (x ** 2 + y ** 2 <= r ** 2)
    back = (y > 0) & (y <= depth) & (np.abs(x) <= r)
    return in_z & (front | back)


def _lung(z, y, x) -> np.ndarray:
    radius = iec_data()["lung_insert_diameter_mm"]["value"] / 2.0
    return _body(z, y, x) & (x ** 2 + y ** 2 <= radius ** 2)


@dataclass(frozen=True)
class IecSpec:
    """A synthetic scan of the IEC body phantom."""

    modality: str = "SPECT"                 # "SPECT" (counts) or "PET" (Bq/mL)
    nuclide: str = "Tc-99m"
    psf: PointSpread = field(default_factory=lambda: PointSpread.gaussian(14.0))
    sphere_kbq_ml: float = 40.0
    background_kbq_ml: float = 5.0
    spacing_mm: tuple[float, float, float] = (4.42, 4.42, 4.42)
    ct_spacing_mm: tuple[float, float, float] = (2.0, 2.0, 2.0)
    #: SPECT: counts recorded per MBq in the phantom over the acquisition
    counts_per_mbq: float = 1.0e5
    #: PET: noise-equivalent counts per MBq (the Poisson noise of a Bq/mL image)
    pet_noise_counts_per_mbq: float = 2.0e4
    noise: bool = True
    ct_noise_hu: float = 10.0
    seed: int = 20261205
    first_angle_deg: float = 30.0
    supersample: int = 3
    #: "gaussian" (``psf`` blur and Poisson noise) or "realistic" (projection, attenuation,
    #: scatter, noise and OSEM: the SPECT of :mod:`.spect_simulation` or the Y-90 PET of
    #: :mod:`.pet_simulation`, extra realistic-spect)
    model: str = "gaussian"
    #: realistic model: the phantom's acquisition time in minutes (PET: the bed; SPECT: views
    #: x seconds per view); None: the patient's protocol (data/pet_simulation.json,
    #: data/spect_simulation.json). A phantom is often scanned longer than a patient.
    acquisition_minutes: float | None = None
    #: realistic model: the OSEM iterations; None: the protocol's. The same seed gives the
    #: same projections, so two iteration counts are one scan reconstructed twice (the
    #: convergence check of calibrate --more-iterations-image)
    iterations: int | None = None


#: the box imaged (mm, x y z)
BOX_LOW_MM = (-170.0, -160.0, -80.0)
BOX_HIGH_MM = (170.0, 100.0, 120.0)


def _ct(spec: IecSpec, rng) -> sitk.Image:
    hu = iec_data()["ct_hu"]
    grid = Grid.covering(BOX_LOW_MM, BOX_HIGH_MM, spec.ct_spacing_mm)
    z, y, x = grid.points_mm()
    body, lung = _body(z, y, x), _lung(z, y, x)
    values = np.full(body.shape, hu["air"], dtype=np.float32)
    values[body] = hu["water"]
    values[lung] = hu["lung_insert"]
    if spec.ct_noise_hu > 0:
        values += rng.normal(0.0, spec.ct_noise_hu, values.shape).astype(np.float32)
    return grid.image(values)


def iec_activity(spec: IecSpec, grid: Grid) -> np.ndarray:
    """True mean concentration (kBq/mL) of every voxel of ``grid`` (sub-voxel sampling)."""
    k = spec.supersample
    z, y, x = grid.points_mm(k)
    body = block_mean((_body(z, y, x) & ~_lung(z, y, x)).astype(np.float64), k)
    spacing_zyx = grid.spacing_mm[::-1]
    spheres = np.zeros(grid.shape_zyx)
    for (cx, cy, cz), d in zip(standard_centres_mm(first_angle_deg=spec.first_angle_deg),
                               sphere_diameters_mm()):
        index = [(c - o) / s for c, o, s in zip((cz, cy, cx), grid.origin_mm[::-1],
                                               spacing_zyx)]
        spheres += ball_occupancy(grid.shape_zyx, spacing_zyx, index, d / 2.0)
    background = np.clip(body - spheres, 0.0, 1.0)
    return spec.sphere_kbq_ml * spheres + spec.background_kbq_ml * background


def iec_mu_map(spec, grid: Grid, nuclide: str, modality: str = "SPECT") -> np.ndarray:
    """Linear attenuation coefficients (1/cm) of the IEC phantom's water, lung insert and
    air (``data/iec_phantom.json`` HU, the nuclide's HU -> mu; 511 keV for a PET), averaged
    over sub-voxels (noise-free: the phantom, not its CT)."""
    from .spect_simulation import mu_from_hu, settings
    if modality == "PET":
        from .pet_simulation import settings as pet_settings
        coefficients = pet_settings()["scanner"]["hu_to_mu_per_cm"]
    else:
        coefficients = settings()["nuclides"][nuclide]["hu_to_mu_per_cm"]
    hu = iec_data()["ct_hu"]
    k = max(1, int(spec.supersample))
    z, y, x = grid.points_mm(k)
    body, lung = _body(z, y, x), _lung(z, y, x)
    values = np.full(body.shape, hu["air"], dtype=np.float64)
    values[body] = hu["water"]
    values[lung] = hu["lung_insert"]
    return block_mean(mu_from_hu(values, coefficients), k)


def make_iec_phantom(spec: IecSpec) -> dict:
    """CT, emission image (counts for SPECT, Bq/mL for PET) and the truth."""
    if spec.modality not in ("SPECT", "PET"):
        raise ValueError(f"modality: got {spec.modality!r}; allowed: SPECT or PET")
    rng = np.random.default_rng(spec.seed)
    ct = _ct(spec, rng)
    grid = Grid.covering(BOX_LOW_MM, BOX_HIGH_MM, spec.spacing_mm)
    conc = iec_activity(spec, grid)                       # kBq/mL
    mbq = conc * grid.voxel_volume_ml / 1000.0            # MBq per voxel
    spacing_zyx = grid.spacing_mm[::-1]
    if spec.model not in ("gaussian", "realistic"):
        raise ValueError(f"model: got {spec.model!r}; allowed: gaussian or realistic")
    if spec.model == "realistic" and spec.modality == "PET":
        from .pet_simulation import NUCLIDE, iec_pet
        if spec.nuclide != NUCLIDE:
            raise ValueError(f"model: got 'realistic' for a {spec.nuclide} PET; allowed: "
                             f"realistic for a {NUCLIDE} PET")
        simulation = iec_pet(spec, grid, mbq, ct, iec_mu_map(spec, grid, spec.nuclide, "PET"))
        values = sitk.GetArrayFromImage(simulation.image).astype(np.float64)
        units, calibration = "Bq/mL", {"scale": 1.0}
    elif spec.model == "realistic":
        from .spect_simulation import iec_spect, realistic_counts_per_mbq
        simulation = iec_spect(spec, grid, mbq, ct, iec_mu_map(spec, grid, spec.nuclide))
        values = sitk.GetArrayFromImage(simulation.image).astype(np.float64)
        units = "counts"
        calibration = {"counts_per_mbq": realistic_counts_per_mbq(spec.nuclide,
                                                                  spec.acquisition_minutes)}
    elif spec.modality == "SPECT":
        expected = blur(mbq * spec.counts_per_mbq, spacing_zyx, spec.psf)
        values = (rng.poisson(np.clip(expected, 0, None)).astype(np.float64) if spec.noise
                  else expected)
        units, calibration = "counts", {"counts_per_mbq": spec.counts_per_mbq}
    else:
        per_count = 1.0 / spec.pet_noise_counts_per_mbq  # MBq per noise-equivalent count
        expected = blur(mbq, spacing_zyx, spec.psf)
        if spec.noise:
            expected = rng.poisson(np.clip(expected / per_count, 0, None)) * per_count
        values = expected * 1e9 / grid.voxel_volume_ml / 1e3  # MBq per voxel -> Bq/mL
        units, calibration = "Bq/mL", {"scale": 1.0}
    image = grid.image(values.astype(np.float32))
    truth = {
        "schema": "tareplanner.iec-phantom-truth/1",
        "modality": spec.modality, "nuclide": spec.nuclide, "units": units,
        "psf": ({"model": "realistic", "components": [],
                 "note": ("no single PSF: imaged and reconstructed by imaging/pet_simulation.py "
                          "(data/pet_simulation.json)" if spec.modality == "PET" else
                          "no single PSF: imaged and reconstructed by imaging/"
                          "spect_simulation.py (data/spect_simulation.json)")} if spec.model == "realistic" else
                {"components": [{"weight": w, "fwhm_mm": f} for w, f in spec.psf.components]}),
        "sphere_kbq_ml": spec.sphere_kbq_ml, "background_kbq_ml": spec.background_kbq_ml,
        "spheres": [{"diameter_mm": d, "centre_mm": list(c)} for d, c in zip(
            sphere_diameters_mm(), standard_centres_mm(first_angle_deg=spec.first_angle_deg))],
        "calibration": calibration, "noise": spec.noise, "seed": spec.seed,
        **({"acquisition_minutes": spec.acquisition_minutes}
           if spec.acquisition_minutes is not None else {}),
        **({"iterations": spec.iterations} if spec.iterations is not None else {}),
        "spacing_mm": list(spec.spacing_mm), "geometry_source": iec_data()["source"]}
    return {"ct": ct, "image": image, "truth": truth}
