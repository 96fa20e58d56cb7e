"""Monte Carlo propagation of the measured inputs' uncertainty to a plan's doses.

Method: the Monte Carlo method of GUM Supplement 1 (JCGM 101:2008), as the EANM guidance on
uncertainty analysis for molecular-radiotherapy dosimetry recommends where the model is not
linear (Gear et al., Eur J Nucl Med Mol Imaging 2018;45:2456-2474). Every input is sampled
from its stated distribution, the partition-model doses are recomputed for every sample at the
planned activities, and the results are summarised as a 95 % coverage interval (2.5th to
97.5th percentile), the probability that each limit is exceeded, and the share of each
input in each figure's variance (squared standardised regression coefficients).

Doses are linear in the activities, so nothing here needs an image: one sample is a handful
of multiplications, and 1,000 samples of a three-position plan take milliseconds.

Inputs and their model (relative standard uncertainties are fractions; one sample each):
- ``calibrator``: the administered activity of every position is A * c, c ~ N(1, u_cal)
  (one dose calibrator for the whole treatment: fully correlated across positions);
- ``residual``: R ~ N(R, u_R), kept in [0, 1);
- ``lsf``: LSF ~ N(LSF, u_LSF * LSF), kept in [0, 1) (counting statistics and the LSF method);
- ``tnr <tumour>``: TNR ~ N(TNR, u_TNR * TNR), kept > 0 (counting statistics and the
  partial-volume correction);
- ``volume <structure>``: a boundary shift s ~ U(-1, 1) voxel of ``boundary_mm`` changes the
  volume by s * boundary_mm * area, area that of the sphere of the same volume
  ((36 pi V^2)^(1/3));
- ``lung mass``: m ~ N(m, u_m * m);
- ``resolution fwhm``: the FWHM of the emission image's resolution, uniform over the
  assumed range (no calibration) or normal with the calibration's standard uncertainty (its
  fit uncertainty, or, for a camera whose spheres do not follow one PSF, the spread of the
  spheres' equivalent FWHMs where that is larger, or, for a reconstruction whose phantom
  recovery had not converged, the FWHM's change with more iterations where that is larger:
  ``RESOLUTION_SD_BASES``). The
  partial-volume correction was computed at a few FWHMs (the measurement's sensitivity
  table); each sample's TNRs and LSF are the corrected values interpolated (linearly) at its
  FWHM, relative to the nominal one, times the residual factors above: one FWHM per sample
  moves every TNR and the LSF together, as a wrong resolution does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

#: Coverage of the reported interval (2.5th to 97.5th percentile).
COVERAGE = 0.95

#: What a calibrated resolution's standard uncertainty is: the PSF fit's, or the spread of
#: the phantom spheres' equivalent FWHMs (a camera with a recovery-misfit warning).
RESOLUTION_SD_BASES = ("fit uncertainty",
                       "spread of the spheres' equivalent FWHMs (recovery misfit)",
                       "change of the FWHM with more iterations (reconstruction not converged)")


@dataclass(frozen=True)
class TumourInput:
    name: str
    volume_ml: float
    tnr: float | None
    tnr_relative_sd: float


@dataclass(frozen=True)
class PositionInput:
    name: str
    activity_gbq: float
    explicit: bool
    normal_volume_ml: float
    tumours: tuple[TumourInput, ...]
    #: the figure whose planned dose the activity is set for (its goal or binding limit);
    #: None for an explicit activity
    binding_figure: str | None = None


@dataclass(frozen=True)
class ResolutionInput:
    """The corrected TNRs and LSF at a few FWHMs, and the FWHM's distribution."""

    fwhm_mm: float
    grid_fwhm_mm: tuple[float, ...]
    tnr: Mapping[str, tuple[float, ...]]
    lsf: tuple[float, ...] | None
    distribution: str          # "uniform" (half_range_mm) or "normal" (sd_mm)
    spread_mm: float

    def sample(self, rng, n: int) -> np.ndarray:
        if self.distribution == "uniform":
            return self.fwhm_mm + self.spread_mm * rng.uniform(-1.0, 1.0, n)
        return self.fwhm_mm + self.spread_mm * rng.standard_normal(n)

    def factor(self, values, fwhm: np.ndarray) -> np.ndarray:
        """Value at ``fwhm`` over the value at the nominal FWHM (flat beyond the grid)."""
        grid = np.asarray(self.grid_fwhm_mm)
        v = np.asarray(values, dtype=float)
        return np.interp(fwhm, grid, v) / float(np.interp(self.fwhm_mm, grid, v))


@dataclass(frozen=True)
class PlanInputs:
    """The nominal plan and the standard uncertainty of each input."""

    energy_j_per_gbq: float
    density_g_per_ml: float
    partition: bool
    lung_shunt_fraction: float
    lsf_relative_sd: float
    residual_fraction: float
    residual_sd: float
    calibrator_relative_sd: float
    lung_mass_kg: float
    lung_mass_relative_sd: float
    prior_lung_dose_gy: float
    boundary_mm: float
    positions: tuple[PositionInput, ...]
    whole_liver_volume_ml: float | None = None
    whole_liver_tumour_volume_ml: float | None = None
    resolution: ResolutionInput | None = None


@dataclass(frozen=True)
class Limit:
    """A dose limit to report the exceedance probability of (figure name, limit in Gy)."""

    name: str
    figure: str
    limit_gy: float


def sphere_area_mm2(volume_ml: float) -> float:
    """Surface of the sphere of this volume, in mm^2: (36 pi V^2)^(1/3), V in mm^3."""
    v_mm3 = volume_ml * 1000.0
    return float((36.0 * np.pi * v_mm3 ** 2) ** (1.0 / 3.0))


def _volume_samples(volume_ml, boundary_mm, shift):
    """Volume after a boundary shift of ``shift`` voxels (ml), kept > 0."""
    delta_ml = shift * boundary_mm * sphere_area_mm2(volume_ml) / 1000.0
    return np.maximum(volume_ml + delta_ml, 1e-3 * volume_ml)


def nominal_samples(inputs: PlanInputs) -> dict[str, np.ndarray]:
    """The nominal value of every input, as one-sample arrays (same keys as sample_inputs)."""
    zero = PlanInputs(**{**inputs.__dict__, "resolution": None,
                         "calibrator_relative_sd": 0.0, "residual_sd": 0.0,
                         "lsf_relative_sd": 0.0, "lung_mass_relative_sd": 0.0,
                         "boundary_mm": 0.0, "positions": tuple(
                             PositionInput(**{**p.__dict__, "tumours": tuple(
                                 TumourInput(t.name, t.volume_ml, t.tnr, 0.0)
                                 for t in p.tumours)}) for p in inputs.positions)})
    return sample_inputs(zero, 1, 0)


def sample_inputs(inputs: PlanInputs, n: int, seed: int) -> dict[str, np.ndarray]:
    """One array of ``n`` samples per uncertain input (names as in the module docstring)."""
    rng = np.random.default_rng(seed)
    s: dict[str, np.ndarray] = {}
    s["calibrator"] = 1.0 + inputs.calibrator_relative_sd * rng.standard_normal(n)
    s["residual"] = np.clip(inputs.residual_fraction + inputs.residual_sd
                            * rng.standard_normal(n), 0.0, 0.999)
    s["lsf"] = np.clip(inputs.lung_shunt_fraction * (1.0 + inputs.lsf_relative_sd
                                                     * rng.standard_normal(n)), 0.0, 0.999)
    res = inputs.resolution
    fwhm = None
    if res is not None:
        # drawn from its own stream, so that the other inputs' samples stay as they were
        fwhm = res.sample(np.random.default_rng([seed, 18]), n)
        s["resolution fwhm"] = fwhm
        if res.lsf is not None:
            s["lsf"] = np.clip(s["lsf"] * res.factor(res.lsf, fwhm), 0.0, 0.999)
    s["lung mass"] = inputs.lung_mass_kg * np.maximum(
        1.0 + inputs.lung_mass_relative_sd * rng.standard_normal(n), 0.05)
    for pos in inputs.positions:
        s[f"volume {pos.name} normal liver"] = _volume_samples(
            pos.normal_volume_ml, inputs.boundary_mm, rng.uniform(-1.0, 1.0, n))
        for t in pos.tumours:
            s[f"volume {t.name}"] = _volume_samples(t.volume_ml, inputs.boundary_mm,
                                                    rng.uniform(-1.0, 1.0, n))
            if t.tnr is not None and inputs.partition:
                s[f"tnr {t.name}"] = t.tnr * np.maximum(
                    1.0 + t.tnr_relative_sd * rng.standard_normal(n), 0.01)
                if fwhm is not None and t.name in res.tnr:
                    s[f"tnr {t.name}"] = s[f"tnr {t.name}"] * res.factor(res.tnr[t.name], fwhm)
    if inputs.whole_liver_volume_ml is not None:
        s["volume whole liver"] = _volume_samples(inputs.whole_liver_volume_ml,
                                                  inputs.boundary_mm, rng.uniform(-1, 1, n))
    return s


def doses(inputs: PlanInputs, s: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Doses (Gy) of every figure for every sample at the planned activities."""
    rho = inputs.density_g_per_ml * 1e-3  # kg per mL
    e = inputs.energy_j_per_gbq * (1.0 - s["lsf"]) * (1.0 - s["residual"])
    out: dict[str, np.ndarray] = {}
    total = 0.0
    normal_energy = 0.0
    tumour_ml = 0.0
    for pos in inputs.positions:
        a = pos.activity_gbq * s["calibrator"]
        total = total + a
        m_normal = s[f"volume {pos.name} normal liver"] * rho
        m_tumours = [s[f"volume {t.name}"] * rho for t in pos.tumours]
        if inputs.partition and pos.tumours:
            denominator = m_normal + sum(s[f"tnr {t.name}"] * m
                                         for t, m in zip(pos.tumours, m_tumours))
        else:
            denominator = m_normal + sum(m_tumours)
        d_normal = e * a / denominator
        out[f"{pos.name}: normal liver"] = d_normal
        out[f"{pos.name}: perfused"] = e * a / (m_normal + sum(m_tumours))
        for t in pos.tumours:
            out[f"{pos.name}/{t.name}"] = (s[f"tnr {t.name}"] * d_normal
                                           if inputs.partition else d_normal)
            tumour_ml = tumour_ml + s[f"volume {t.name}"]
        normal_energy = normal_energy + d_normal * m_normal
    lung = inputs.energy_j_per_gbq * s["lsf"] * (1.0 - s["residual"]) * total / s["lung mass"]
    out["lung"] = lung
    out["lung cumulative"] = lung + inputs.prior_lung_dose_gy
    if inputs.whole_liver_volume_ml is not None:
        liver_ml = s["volume whole liver"]
        whole_tumour_ml = (tumour_ml if inputs.whole_liver_tumour_volume_ml is None else
                           inputs.whole_liver_tumour_volume_ml * liver_ml
                           / inputs.whole_liver_volume_ml)
        out["whole liver"] = e * total / (liver_ml * rho)
        out["whole normal liver"] = normal_energy / ((liver_ml - whole_tumour_ml) * rho)
    return out


def variance_shares(samples: Mapping[str, np.ndarray],
                    figures: Mapping[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Share of each input in the variance of each figure: squared standardised regression
    coefficients of a linear fit (they add up to the fit's R^2, near 1 for a nearly linear
    model), normalised to sum 1. One least-squares solve for all figures; inputs without
    spread are left out."""
    names = [k for k, v in samples.items() if np.std(v) > 0]
    out: dict[str, dict[str, float]] = {name: {} for name in figures}
    if not names:
        return out
    x = np.column_stack([(samples[k] - samples[k].mean()) / samples[k].std() for k in names])
    keys = [k for k, v in figures.items() if np.std(v) > 0]
    if not keys:
        return out
    y = np.column_stack([(figures[k] - figures[k].mean()) / figures[k].std() for k in keys])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    squares = coef ** 2
    totals = squares.sum(axis=0)
    for j, key in enumerate(keys):
        if totals[j] > 0:
            out[key] = {name: float(squares[i, j] / totals[j]) for i, name in enumerate(names)}
    return out


def summarise(values: np.ndarray, shares: Mapping[str, float], unit: str,
              top: int = 3) -> dict:
    """Median, 95 % coverage interval, relative standard deviation and the ``top`` inputs
    with the largest share of the variance."""
    low, high = np.percentile(values, [50 * (1 - COVERAGE), 50 * (1 + COVERAGE)])
    ranked = sorted(shares.items(), key=lambda kv: -kv[1])[:top]
    return {"unit": unit, "median": float(np.median(values)), "low": float(low),
            "high": float(high),
            "relative_sd": float(np.std(values) / np.mean(values)) if np.mean(values) else None,
            "main_contributors": [{"input": k, "variance_share": v} for k, v in ranked]}


def scale_with_exceedance(figures: Mapping[str, np.ndarray], limits: Sequence[Limit],
                          fixed: Mapping[str, np.ndarray], probability: float) -> float | None:
    """The largest factor k for the non-explicit activities such that the probability that any
    limit is exceeded is at most ``probability``.

    Doses are linear in the activities: per sample, dose(k) = k * flexible + fixed, so the
    sample's largest safe factor is min over limits of (limit - fixed) / flexible, and k is the
    ``probability``-quantile of those factors. None when no limit applies, and when no limit
    depends on an activity that can be scaled (every activity given explicitly: k would be
    infinite, which JSON cannot hold)."""
    if not limits:
        return None
    per_sample = None
    for limit in limits:
        flexible = figures[limit.figure] - fixed[limit.figure]
        with np.errstate(divide="ignore", invalid="ignore"):
            k = np.where(flexible > 0, (limit.limit_gy - fixed[limit.figure]) / flexible, np.inf)
        per_sample = k if per_sample is None else np.minimum(per_sample, k)
    k = float(np.quantile(per_sample, probability, method="lower"))
    return None if not np.isfinite(k) else max(k, 0.0)


def propagate(inputs: PlanInputs, limits: Sequence[Limit], *, n: int = 2000, seed: int = 0,
              exceedance_probability: float = 0.05) -> dict:
    """Intervals, exceedance probabilities, main contributors and the activities whose
    probability of exceeding any limit is at most ``exceedance_probability``."""
    s = sample_inputs(inputs, n, seed)
    figures = doses(inputs, s)
    nominal = {k: float(v[0]) for k, v in doses(inputs, nominal_samples(inputs)).items()}
    for pos in inputs.positions:
        # the activity that gives the binding figure its planned dose, sample by sample
        if pos.binding_figure is None or pos.activity_gbq == 0:
            # an explicit activity, or none at all (0 / 0 would give NaN)
            figures[f"{pos.name}: activity"] = pos.activity_gbq * s["calibrator"]
            nominal[f"{pos.name}: activity"] = pos.activity_gbq
        else:
            figures[f"{pos.name}: activity"] = (pos.activity_gbq * nominal[pos.binding_figure]
                                                / figures[pos.binding_figure])
            nominal[f"{pos.name}: activity"] = pos.activity_gbq
    # the part of each figure due to explicit (never scaled) activities and the prior lung dose
    fixed_inputs = PlanInputs(**{**inputs.__dict__, "positions": tuple(
        PositionInput(**{**p.__dict__, "activity_gbq": p.activity_gbq if p.explicit else 0.0})
        for p in inputs.positions)})
    fixed = doses(fixed_inputs, s)
    shares = variance_shares(s, figures)
    result = {
        "method": "Monte Carlo (JCGM 101; EANM uncertainty guidance, Gear et al. 2018)",
        "samples": n, "seed": seed, "coverage": COVERAGE,
        "figures": {name: {"nominal": nominal.get(name),
                           **summarise(v, shares[name],
                                       "GBq" if name.endswith(": activity") else "Gy")}
                    for name, v in figures.items()},
        "exceedance": {lim.name: {"figure": lim.figure, "limit_gy": lim.limit_gy,
                                  "probability": float(np.mean(figures[lim.figure]
                                                               > lim.limit_gy))}
                       for lim in limits},
    }
    any_exceeded = np.zeros(n, dtype=bool)
    for lim in limits:
        any_exceeded |= figures[lim.figure] > lim.limit_gy
    result["probability_any_limit_exceeded"] = float(any_exceeded.mean())
    k = scale_with_exceedance(figures, limits, fixed, exceedance_probability)
    result["at_exceedance_probability"] = None if k is None else {
        "probability": exceedance_probability, "scale_factor": k,
        "activities_gbq": {p.name: p.activity_gbq * (1.0 if p.explicit else k)
                           for p in inputs.positions}}
    return result
