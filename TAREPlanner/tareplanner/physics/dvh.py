"""Dose-volume histograms, dose indices and the biologically effective dose.

DVHs are cumulative: V(D) = fraction of the structure's volume receiving at least D. Voxels
carry weights (their volume fraction inside the structure), so partial voxels at edges count
by their occupancy. D_x = the minimum dose received by the hottest x % of the volume (the dose
that at least x % of the volume receives: ICRU Report 83, J ICRU 2010;10(1), D_V%); with n whole
voxels it is the k-th hottest voxel, k = ceil(x n / 100). V_x = the fraction of the volume
receiving at least x Gy (a voxel at exactly x Gy counts).

BED for an exponentially decaying dose rate delivered to completion (Dale, Br J Radiol
1985;58:515; Cremonesi et al., Front Oncol 2014;4:210):
    BED = D · (1 + D · λ / ((μ + λ) · α/β)),   λ = ln2 / T_phys,  μ = ln2 / T_repair.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DEFAULT_D_PERCENTS = (2, 50, 70, 90, 95, 98)


@dataclass(frozen=True)
class DoseIndices:
    volume_ml: float
    mean_gy: float
    median_gy: float
    min_gy: float
    max_gy: float
    d_gy: dict            # {"D70": ...}
    v_percent: dict       # {"V100": ...}

    def as_dict(self) -> dict:
        return {"volume_ml": self.volume_ml, "mean_gy": self.mean_gy, "median_gy": self.median_gy,
                "min_gy": self.min_gy, "max_gy": self.max_gy, **self.d_gy, **self.v_percent}


def _sorted(dose: np.ndarray, weights: np.ndarray):
    order = np.argsort(dose, kind="stable")[::-1]       # hottest first
    d = dose[order]
    w = weights[order]
    cum = np.cumsum(w, dtype=np.float64)
    return d, cum / cum[-1]


def dose_at_volume(dose_sorted_desc: np.ndarray, cum_fraction: np.ndarray, percent: float):
    """D_x: the dose at which the hottest ``percent`` % of the volume is reached."""
    idx = int(np.searchsorted(cum_fraction, percent / 100.0 - 1e-12))
    return float(dose_sorted_desc[min(idx, len(dose_sorted_desc) - 1)])


def dose_indices(dose_gy: np.ndarray, weights: np.ndarray | None, voxel_ml: float,
                 d_percents=DEFAULT_D_PERCENTS, v_thresholds_gy=()) -> DoseIndices:
    """Indices of one structure: ``dose_gy`` and ``weights`` (occupancy 0..1, or None for
    whole voxels) of its voxels."""
    dose = np.asarray(dose_gy).ravel()
    percents = list(d_percents) + [50.0]
    if weights is None or np.all(np.asarray(weights) == 1):
        # whole voxels: order statistics by partial sorting, O(n), no weight arrays
        if dose.size == 0:
            raise ValueError("the structure has no voxels")
        n = dose.size
        ranks = [n - 1 - max(0, math.ceil(p / 100.0 * n - 1e-9) - 1) for p in percents]
        part = np.partition(dose, sorted(set(ranks)))
        at = {p: float(part[r]) for p, r in zip(percents, ranks)}
        total = float(n)
        mean = float(dose.mean(dtype=np.float64))
        v_values = {f"V{t:g}": float(np.count_nonzero(dose >= t) / n * 100.0)
                    for t in v_thresholds_gy}
        low, high = float(part.min()), float(part.max())
    else:
        w = np.asarray(weights, dtype=np.float64).ravel()
        keep = w > 0
        dose, w = dose[keep].astype(np.float64), w[keep]
        if dose.size == 0:
            raise ValueError("the structure has no voxels")
        total = float(w.sum())
        d_sorted, cum = _sorted(dose, w)
        at = {p: dose_at_volume(d_sorted, cum, p) for p in percents}
        mean = float((dose * w).sum() / total)
        v_values = {f"V{t:g}": float(w[dose >= t].sum() / total * 100.0)
                    for t in v_thresholds_gy}
        low, high = float(dose.min()), float(dose.max())
    return DoseIndices(volume_ml=total * voxel_ml, mean_gy=mean, median_gy=at[50.0],
                       min_gy=low, max_gy=high,
                       d_gy={f"D{p:g}": at[p] for p in d_percents}, v_percent=v_values)


def cumulative_dvh(dose_gy: np.ndarray, weights: np.ndarray | None, bin_gy: float,
                   max_gy: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(dose bin edges in Gy, % of volume receiving at least each edge); ``weights`` None
    for whole voxels."""
    if not (math.isfinite(bin_gy) and bin_gy > 0):
        raise ValueError(f"bin_gy must be a finite width > 0 Gy, got {bin_gy!r}")
    dose = np.asarray(dose_gy).ravel()
    w = None if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if max_gy is None:
        inside = dose if w is None else dose[w > 0]
        max_gy = float(inside.max()) if inside.size else 0.0
    n = int(math.ceil(max_gy / bin_gy)) + 1
    edges = np.arange(n + 1) * bin_gy
    index = np.clip(dose * np.float32(1.0 / bin_gy), 0, n).astype(np.int64)
    hist = np.bincount(index, weights=w, minlength=n + 1).astype(np.float64)
    above = np.cumsum(hist[::-1])[::-1]
    total = float(dose.size) if w is None else float(w.sum())
    return edges, above / max(total, 1e-300) * 100.0


def bed_gy(dose_gy, half_life_h: float, repair_half_time_h: float, alpha_beta_gy: float):
    """LQ biologically effective dose for a mono-exponentially decaying dose rate."""
    lam = math.log(2) / half_life_h
    mu = math.log(2) / repair_half_time_h
    d = np.asarray(dose_gy, dtype=np.float64)
    return d * (1.0 + d * lam / ((mu + lam) * alpha_beta_gy))
