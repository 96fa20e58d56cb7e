"""Synthetic patient with ground truth: CT, Tc-99m MAA SPECT, one contrast-enhanced CBCT per
injection position (with a known rigid offset), optional Ho-166 scout SPECT, and a
post-treatment Y-90 PET. Reproducible (seeded); sizes for tests, the demo and benchmarks.

The images are generated in memory (:func:`make_phantom`); :mod:`.phantom_files` writes them
as DICOM and NIfTI with the truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..physics.decay import decay_factor
from . import anatomy as anat
from .grid import Grid, block_mean

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


@dataclass(frozen=True)
class PhantomSpec:
    """Everything that defines a synthetic patient; the defaults are the ``standard`` size."""

    seed: int = 20261122
    ct_spacing_mm: tuple[float, float, float] = (1.0, 1.0, 2.5)
    cbct_spacing_mm: tuple[float, float, float] = (1.5, 1.5, 1.5)
    spect_spacing_mm: tuple[float, float, float] = (4.42, 4.42, 4.42)
    pet_spacing_mm: tuple[float, float, float] = (4.0, 4.0, 4.0)
    supersample: int = 3
    spect_fwhm_mm: float = 14.0
    #: a wide tail of the SPECT's PSF: (fraction of the counts, FWHM mm), or None
    spect_tail: tuple[float, float] | None = None
    spect_noise: bool = True
    spect_total_counts: float = 4.0e6
    #: "gaussian" (blur + noise, the default) or "realistic" (projection, scatter, noise and
    #: OSEM: imaging/spect_simulation.py, extra ``realistic-spect``)
    spect_model: str = "gaussian"
    pet_fwhm_mm: float = 9.0
    pet_counts: float = 3.0e6
    pet_noise: bool = True
    #: "gaussian" (blur + noise at pet_counts, the default) or "realistic" (Y-90 positron
    #: yield, attenuation, scatter, randoms, noise and OSEM: imaging/pet_simulation.py, extra
    #: ``realistic-spect``)
    pet_model: str = "gaussian"
    #: the realistic models' OSEM iterations (SPECT and PET); None: the protocol's
    #: (data/spect_simulation.json, data/pet_simulation.json)
    reconstruction_iterations: int | None = None
    #: the realistic SPECTs' acquisition in minutes (views x seconds per view; MAA and
    #: Ho-166 scout); None: the protocol's (data/spect_simulation.json, 120 x 20 s = 40)
    spect_acquisition_minutes: float | None = None
    ct_noise_hu: float = 10.0
    cbct_noise_hu: float = 20.0
    cbct_enhancement_hu: float = 160.0
    cbct_tumour_enhancement_hu: float = 260.0
    cbct_fov_radius_mm: float = 130.0
    lung_shunt_fraction: float = 0.06
    maa_fractions: tuple[float, ...] = (0.68, 0.32)
    background_ratio: float = 0.003
    cbct_angles_deg: tuple[tuple[float, float, float], ...] = ((2.0, -1.5, 3.0),
                                                               (-2.5, 2.0, -2.0))
    cbct_translations_mm: tuple[tuple[float, float, float], ...] = ((9.0, -6.0, 12.0),
                                                                    (-7.0, 8.0, -10.0))
    ho166_scout: bool = False
    scout_activity_mbq: float = 250.0
    maa_activity_mbq: float = 150.0
    pet: bool = True
    pet_activities_gbq: tuple[float, ...] = (2.2, 0.8)
    pet_lung_shunt_fraction: float = 0.045
    pet_residual_fraction: float = 0.03
    administration_time: str = "2026-12-01T10:00:00+01:00"
    pet_delay_h: float = 4.0
    workup_time: str = "2026-11-24T11:00:00+01:00"
    box_low_mm: tuple[float, float, float] = (-180.0, -140.0, -90.0)
    box_high_mm: tuple[float, float, float] = (180.0, 140.0, 180.0)
    anatomy: anat.Anatomy = field(default_factory=anat.default_anatomy)


SIZES = {
    "small": dict(ct_spacing_mm=(2.0, 2.0, 3.0), cbct_spacing_mm=(3.0, 3.0, 3.0), supersample=2),
    "standard": {},
    "large": dict(ct_spacing_mm=(0.8, 0.8, 2.0), cbct_spacing_mm=(1.0, 1.0, 1.0)),
}


def spec_for_size(size: str, positions: int = 2, **overrides) -> PhantomSpec:
    """The synthetic patient of ``size`` with ``positions`` injection positions (1 to 8;
    :func:`.anatomy.segmental_anatomy`); 2, the default, is the built-in right and left
    hepatic patient. ``overrides`` replace any other field of :class:`PhantomSpec`."""
    if size not in SIZES:
        raise ValueError(f"size: got {size!r}; allowed: {', '.join(SIZES)}")
    spec = PhantomSpec(**SIZES[size])
    if positions != 2:
        spec = replace(spec, **segmental_fields(positions, overrides.get("seed", spec.seed)))
    return replace(spec, **overrides)


#: total activity (GBq) of the synthetic treatment, shared out as the MAA is
SEGMENTAL_TOTAL_ACTIVITY_GBQ = 3.0
#: relative arterial supply per segment on top of its volume (fixed, so that the MAA
#: concentration differs a little from one segment to the next)
_SEGMENT_PERFUSION = (1.0, 0.9, 1.1, 0.95, 1.05, 0.92, 1.08, 1.0)


def segmental_fields(positions: int, seed: int) -> dict:
    """The fields of :class:`PhantomSpec` that depend on the number of positions: the
    anatomy, the MAA fraction of each territory (its volume weighted by its tumours' TNR and
    a fixed perfusion factor), one CBCT offset per position (drawn from ``seed``: rotations
    within 3 degrees and translations of 10 to 16 mm, as the two of the built-in patient)
    and the Y-90 activity of each position (3 GBq shared out as the MAA)."""
    a = anat.segmental_anatomy(positions)
    grid = Grid.covering(PhantomSpec.box_low_mm, PhantomSpec.box_high_mm, (3.0, 3.0, 3.0))
    z, y, x = grid.points_mm()
    labels = a.labels(z, y, x)
    terr = a.territory(labels, z, y, x)
    weights = []
    for i, _ in enumerate(a.territories, start=1):
        weight = float(((labels == anat.LIVER) & (terr == i)).sum())
        for k, tumour in enumerate(a.tumours):
            if a.tumour_territory(k) == i:
                weight += tumour.tnr_maa * float((labels == anat.FIRST_TUMOUR + k).sum())
        weights.append(weight * _SEGMENT_PERFUSION[i - 1])
    fractions = [round(w / sum(weights), 4) for w in weights]
    fractions[-1] = round(1.0 - sum(fractions[:-1]), 4)
    rng = np.random.default_rng([seed, 40])
    angles, translations = [], []
    for _ in range(positions):
        angles.append(tuple(round(float(v), 1) for v in rng.uniform(-3.0, 3.0, 3)))
        direction = rng.normal(size=3)
        length = rng.uniform(10.0, 16.0)
        translations.append(tuple(round(float(v), 1)
                                  for v in direction / np.linalg.norm(direction) * length))
    activities = tuple(round(SEGMENTAL_TOTAL_ACTIVITY_GBQ * f, 3) for f in fractions)
    return dict(anatomy=a, maa_fractions=tuple(fractions), cbct_angles_deg=tuple(angles),
                cbct_translations_mm=tuple(translations), pet_activities_gbq=activities)


def spec_administering(spec: PhantomSpec, activities_gbq: dict[str, float]) -> PhantomSpec:
    """The synthetic patient treated with ``activities_gbq`` (GBq per position, by territory
    name, e.g. a plan's): its Y-90 PET and truth follow them; every other image is unchanged
    (same seed). The residual, lung shunt and Y-90 TNRs stay the spec's."""
    names = [t.name for t in spec.anatomy.territories]
    missing = [n for n in names if n not in activities_gbq]
    if missing:
        raise ValueError(f"activities_gbq: no activity for {', '.join(missing)}; "
                         f"positions: {', '.join(names)}")
    activities = tuple(float(activities_gbq[n]) for n in names)
    if not all(math.isfinite(a) and a > 0 for a in activities):
        raise ValueError(f"activities_gbq: got {activities}; allowed: finite activities > 0")
    return replace(spec, pet_activities_gbq=activities)


@dataclass
class Phantom:
    spec: PhantomSpec
    ct: sitk.Image
    labels: sitk.Image            # anatomy labels on the CT grid
    territories: sitk.Image       # 0 / 1..P on the CT grid
    spect: sitk.Image             # MAA counts
    cbcts: dict[str, sitk.Image]
    cbct_transforms: dict[str, sitk.Euler3DTransform]   # CT point -> CBCT point
    scout: sitk.Image | None
    pet: sitk.Image | None        # Bq/mL at acquisition start
    truth: dict


def _rng(spec: PhantomSpec, stream: int) -> np.random.Generator:
    return np.random.default_rng([spec.seed, stream])


def _euler(centre, angles_deg, translation) -> sitk.Euler3DTransform:
    t = sitk.Euler3DTransform()
    t.SetCenter(tuple(float(c) for c in centre))
    t.SetRotation(*(math.radians(a) for a in angles_deg))
    t.SetTranslation(tuple(float(v) for v in translation))
    return t


def _inverse_points(transform: sitk.Euler3DTransform, z, y, x):
    """Points p with transform(p) = (x, y, z): p = R^T (q - c - t) + c."""
    r = np.array(transform.GetMatrix()).reshape(3, 3)
    c = np.array(transform.GetCenter())
    t = np.array(transform.GetTranslation())
    q = [x - c[0] - t[0], y - c[1] - t[1], z - c[2] - t[2]]
    p = [r[0, i] * q[0] + r[1, i] * q[1] + r[2, i] * q[2] + c[i] for i in range(3)]
    return p[2], p[1], p[0]


def _blur(array: np.ndarray, fwhm_mm: float, spacing_mm) -> np.ndarray:
    if fwhm_mm <= 0:
        return array
    sigma = [fwhm_mm * FWHM_TO_SIGMA / s for s in spacing_mm[::-1]]
    return ndimage.gaussian_filter(array, sigma, mode="constant")


def _emission(spec: PhantomSpec, grid: Grid, tnr_attr: str, liver_fractions, lsf: float,
              background_ratio: float):
    """Relative activity per voxel of ``grid`` (sum over sub-voxels) and the truth it obeys."""
    a = spec.anatomy
    k = spec.supersample
    z, y, x = grid.points_mm(k)
    labels = a.labels(z, y, x)
    terr = a.territory(labels, z, y, x)
    conc = np.zeros(labels.shape, dtype=np.float64)
    positions = []
    for i, _ in enumerate(a.territories, start=1):
        normal = (labels == anat.LIVER) & (terr == i)
        weight = float(normal.sum())
        for t_idx, tumour in enumerate(a.tumours):
            if a.tumour_territory(t_idx) == i:
                weight += getattr(tumour, tnr_attr) * float((labels == anat.FIRST_TUMOUR + t_idx).sum())
        c_i = liver_fractions[i - 1] / weight
        conc[normal] = c_i
        for t_idx, tumour in enumerate(a.tumours):
            if a.tumour_territory(t_idx) == i:
                conc[labels == anat.FIRST_TUMOUR + t_idx] = getattr(tumour, tnr_attr) * c_i
        positions.append(c_i)
    lungs = (labels == anat.LUNG_RIGHT) | (labels == anat.LUNG_LEFT)
    conc[lungs] = lsf / (1.0 - lsf) / float(lungs.sum())
    background = (labels == anat.SOFT_TISSUE) | (labels == anat.FAT) | (labels == anat.BONE)
    conc[background] = background_ratio * float(np.mean(positions))
    per_voxel = block_mean(conc, k) * k ** 3
    liver_total = 1.0  # sum of the liver fractions
    lung_total = lsf / (1.0 - lsf)
    return per_voxel, {"liver": liver_total, "lung": lung_total,
                       "background": float(conc[background].sum())}


def _spect(spec: PhantomSpec, grid: Grid, tnr_attr: str, total_counts: float, stream: int,
           realistic: dict | None = None):
    relative, parts = _emission(spec, grid, tnr_attr, spec.maa_fractions,
                                spec.lung_shunt_fraction, spec.background_ratio)
    if spec.spect_model == "realistic":
        from .spect_simulation import phantom_spect
        return phantom_spect(spec, grid, relative, stream=stream, **realistic).image, parts
    expected = relative * (total_counts / relative.sum())
    if spec.spect_tail:
        from ..physics.partial_volume import PointSpread, blur
        weight, tail_fwhm = spec.spect_tail
        psf = PointSpread(((1.0 - weight, spec.spect_fwhm_mm), (weight, tail_fwhm)))
        blurred = blur(expected, grid.spacing_mm[::-1], psf)
    else:
        blurred = _blur(expected, spec.spect_fwhm_mm, grid.spacing_mm)
    if spec.spect_noise:
        counts = _rng(spec, stream).poisson(np.clip(blurred, 0, None)).astype(np.float32)
    else:
        counts = blurred.astype(np.float32)
    return grid.image(counts), parts


def make_phantom(spec: PhantomSpec) -> Phantom:
    """Build every image of the synthetic patient and its ground truth."""
    a = spec.anatomy
    _check_per_position(spec)
    ct_grid = Grid.covering(spec.box_low_mm, spec.box_high_mm, spec.ct_spacing_mm)
    z, y, x = ct_grid.points_mm()
    labels = a.labels(z, y, x)
    terr = a.territory(labels, z, y, x)
    hu_clean = a.hounsfield(labels)
    hu = hu_clean + _rng(spec, 1).normal(0.0, spec.ct_noise_hu, labels.shape).astype(np.float32)
    hu[labels == anat.OUTSIDE] = -1000.0
    ct = ct_grid.image(np.clip(np.round(hu), -1024, 3071).astype(np.int16))

    spect_grid = Grid.covering(spec.box_low_mm, spec.box_high_mm, spec.spect_spacing_mm)
    if spec.spect_model not in ("gaussian", "realistic"):
        raise ValueError(f"spect_model: got {spec.spect_model!r}; allowed: gaussian, realistic")
    # realistic model: activity decayed from administration (work-up - 1 h) to the SPECT
    # (work-up + 40 min, + 50 min for the scout), as phantom_files writes them
    spect, _ = _spect(spec, spect_grid, "tnr_maa", spec.spect_total_counts, 2,
                      dict(nuclide="Tc-99m", administered_mbq=spec.maa_activity_mbq,
                           delay_h=100.0 / 60.0, ct=ct))
    scout = None
    if spec.ho166_scout:
        scout, _ = _spect(spec, spect_grid, "tnr_y90", spec.spect_total_counts / 3.0, 3,
                          dict(nuclide="Ho-166", administered_mbq=spec.scout_activity_mbq,
                               delay_h=110.0 / 60.0, ct=ct))

    cbcts, transforms = {}, {}
    liver_centre = a.liver.centre_mm
    for i, terr_def in enumerate(a.territories):
        transform = _euler(liver_centre, spec.cbct_angles_deg[i], spec.cbct_translations_mm[i])
        r = spec.cbct_fov_radius_mm
        low = (liver_centre[0] - r, liver_centre[1] - r, liver_centre[2] - 100.0)
        high = (liver_centre[0] + r, liver_centre[1] + r, liver_centre[2] + 100.0)
        grid = Grid.covering(low, high, spec.cbct_spacing_mm)
        cz, cy, cx = grid.points_mm()
        pz, py, px = _inverse_points(transform, *np.broadcast_arrays(cz, cy, cx))
        lab = a.labels(pz, py, px)
        ter = a.territory(lab, pz, py, px)
        values = a.hounsfield(lab)
        values[(lab == anat.LIVER) & (ter == i + 1)] += spec.cbct_enhancement_hu
        values[(lab >= anat.FIRST_TUMOUR) & (ter == i + 1)] += spec.cbct_tumour_enhancement_hu
        values += _rng(spec, 10 + i).normal(0.0, spec.cbct_noise_hu, values.shape)
        fov = (cx - liver_centre[0]) ** 2 + (cy - liver_centre[1]) ** 2 <= r ** 2
        values[~np.broadcast_to(fov, values.shape)] = -1000.0
        cbcts[terr_def.name] = grid.image(np.clip(np.round(values), -1024, 3071).astype(np.int16))
        transforms[terr_def.name] = transform

    pet = None
    admin = datetime.fromisoformat(spec.administration_time)
    acquisition = admin + timedelta(hours=spec.pet_delay_h)
    if spec.pet:
        pet = _pet(spec, ct_grid, ct)

    voxel_ml = ct_grid.voxel_volume_ml
    lungs = (labels == anat.LUNG_RIGHT) | (labels == anat.LUNG_LEFT)
    density = (hu_clean[lungs] + 1000.0) / 1000.0
    truth = {
        "schema": "tareplanner.phantom-truth/1",
        "seed": spec.seed,
        "ct_spacing_mm": list(spec.ct_spacing_mm),
        "spect_spacing_mm": list(spec.spect_spacing_mm),
        "spect_fwhm_mm": spec.spect_fwhm_mm,
        **({"spect_model": "realistic"} if spec.spect_model == "realistic" else {}),
        **({"pet_model": "realistic"} if spec.pet and spec.pet_model == "realistic" else {}),
        **({"reconstruction_iterations": spec.reconstruction_iterations}
           if spec.reconstruction_iterations is not None else {}),
        **({"spect_acquisition_minutes": spec.spect_acquisition_minutes}
           if spec.spect_acquisition_minutes is not None else {}),
        "volumes_ml": {
            "liver": float((labels >= anat.LIVER).sum() * voxel_ml),
            "lungs": float(lungs.sum() * voxel_ml),
            "tumours": {t.name: float((labels == anat.FIRST_TUMOUR + k).sum() * voxel_ml)
                        for k, t in enumerate(a.tumours)},
            "territories": {
                terr_def.name: {
                    "perfused": float((terr == i).sum() * voxel_ml),
                    "normal": float(((terr == i) & (labels == anat.LIVER)).sum() * voxel_ml)}
                for i, terr_def in enumerate(a.territories, start=1)},
        },
        "analytic_tumour_volumes_ml": {t.name: t.shape.volume_ml for t in a.tumours},
        "lung_mass_kg": float(density.sum() * voxel_ml / 1000.0),
        "lung_shunt_fraction": spec.lung_shunt_fraction,
        "maa_fractions": list(spec.maa_fractions),
        "positions": [{"name": terr_def.name, "label": i,
                       "tumours": [t.name for k, t in enumerate(a.tumours)
                                   if a.tumour_territory(k) == i]}
                      for i, terr_def in enumerate(a.territories, start=1)],
        "tnr_maa": {t.name: t.tnr_maa for t in a.tumours},
        "cbct_transforms": {name: {"center_mm": list(t.GetCenter()),
                                   "angles_deg": list(spec.cbct_angles_deg[i]),
                                   "translation_mm": list(t.GetTranslation()),
                                   "maps": "CT point -> CBCT point"}
                            for i, (name, t) in enumerate(transforms.items())},
        "maa": {"activity_mbq": spec.maa_activity_mbq, "time": spec.workup_time},
    }
    if spec.ho166_scout:
        truth["ho166_scout"] = {"activity_mbq": spec.scout_activity_mbq,
                                "tnr": {t.name: t.tnr_y90 for t in a.tumours}}
    if spec.pet:
        truth["y90_pet"] = {
            "administered_activity_gbq": dict(zip([t.name for t in a.territories],
                                                  spec.pet_activities_gbq)),
            "administration_time": admin.isoformat(),
            "acquisition_start": acquisition.isoformat(),
            "lung_shunt_fraction": spec.pet_lung_shunt_fraction,
            "residual_fraction": spec.pet_residual_fraction,
            "tnr": {t.name: t.tnr_y90 for t in a.tumours},
            "units": "Bq/mL at acquisition start (decay correction START)"}
    return Phantom(spec=spec, ct=ct, labels=ct_grid.image(labels),
                   territories=ct_grid.image(terr), spect=spect, cbcts=cbcts,
                   cbct_transforms=transforms, scout=scout, pet=pet, truth=truth)


def _check_per_position(spec: PhantomSpec) -> None:
    """Every per-position field has one entry per territory of the anatomy."""
    count = len(spec.anatomy.territories)
    for name in ("maa_fractions", "cbct_angles_deg", "cbct_translations_mm",
                 "pet_activities_gbq"):
        value = getattr(spec, name)
        if len(value) != count:
            raise ValueError(f"{name}: got {len(value)} entries; allowed: one per territory "
                             f"({count}: {', '.join(t.name for t in spec.anatomy.territories)})")


#: the scan duration the synthetic patient's Gaussian-model PET states (its DICOM series'
#: ActualFrameDuration): 20 min. An assumption: that model's noise is set by its
#: noise-equivalent counts, not by a scan time. The realistic model's bed time is
#: data/pet_simulation.json's ``minutes_per_bed``
GAUSSIAN_PET_SCAN_S = 1200.0


def pet_scan_duration_s(spec: PhantomSpec) -> float:
    """The synthetic patient's PET scan duration (s): the realistic model's bed time, else
    :data:`GAUSSIAN_PET_SCAN_S`. Its DICOM series and its Slicer volume state it, so that a
    camera file's noise is scaled to it as to a real scan's."""
    if spec.pet_model == "realistic":
        from .pet_simulation import settings as pet_settings
        return float(pet_settings()["acquisition"]["minutes_per_bed"]) * 60.0
    return GAUSSIAN_PET_SCAN_S


def _pet(spec: PhantomSpec, ct_grid: Grid, ct: sitk.Image | None = None) -> sitk.Image:
    """Y-90 PET in Bq/mL at acquisition start, from the administered activities (the
    realistic model images it through the anatomy and reconstructs it with ``ct``)."""
    if spec.pet_model not in ("gaussian", "realistic"):
        raise ValueError(f"pet_model: got {spec.pet_model!r}; allowed: gaussian, realistic")
    grid = Grid.covering(spec.box_low_mm, spec.box_high_mm, spec.pet_spacing_mm)
    total_gbq = float(sum(spec.pet_activities_gbq))
    fractions = [a_i / total_gbq for a_i in spec.pet_activities_gbq]
    relative, parts = _emission(spec, grid, "tnr_y90", fractions, spec.pet_lung_shunt_fraction,
                                0.0)
    # relative sums to 1 (liver) + LSF/(1-LSF) (lung); no free Y-90 elsewhere.
    implanted_bq = total_gbq * 1e9 * (1.0 - spec.pet_residual_fraction)
    at_start = implanted_bq * float(decay_factor(spec.pet_delay_h, 64.1))
    bq = relative * (at_start / (parts["liver"] + parts["lung"]))
    if spec.pet_model == "realistic":
        from .pet_simulation import phantom_pet
        return phantom_pet(spec, grid, bq, ct, stream=21).image
    counts_per_bq = spec.pet_counts / bq.sum()
    blurred = _blur(bq * counts_per_bq, spec.pet_fwhm_mm, grid.spacing_mm)
    noisy = (_rng(spec, 20).poisson(np.clip(blurred, 0, None)) if spec.pet_noise
             else blurred) / counts_per_bq
    voxel_ml = grid.voxel_volume_ml
    return grid.image((noisy / voxel_ml).astype(np.float32))
