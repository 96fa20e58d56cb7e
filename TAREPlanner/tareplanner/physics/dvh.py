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


#: bins of the histogram that narrows each order statistic down to a few values
ORDER_BINS = 4096


def order_statistics(values: np.ndarray, ranks, low: float, high: float,
                     thresholds=()) -> tuple[dict, dict]:
    """``({rank: value}, {threshold: count})``: the value at each rank (0 = coldest) of
    ``values`` in ascending order, as ``np.partition`` gives it, and the number of values
    >= each threshold, as ``np.count_nonzero(values >= t)`` gives it, found in O(n) without
    moving the array: one histogram of ``ORDER_BINS`` bins between ``low`` and ``high`` (the
    minimum and maximum), then only the values in the bins that hold a wanted rank or
    threshold are looked at. The bin index is a non-decreasing function of the value
    (computed the same way for values and thresholds), so every value of a bin lies between
    those of the bins below and above it: ranks within a bin and counts above a bin are
    exact."""
    ranks = sorted(set(int(r) for r in ranks))
    thresholds = [float(t) for t in thresholds]
    if high <= low or values.size <= 4 * ORDER_BINS:
        part = np.partition(values, ranks)
        return ({r: float(part[r]) for r in ranks},
                {t: int(np.count_nonzero(values >= t)) for t in thresholds})

    def bin_of(x):
        index = np.subtract(x, np.float32(low), dtype=np.float32)
        index *= np.float32(ORDER_BINS / (high - low))
        np.clip(index, 0, ORDER_BINS - 1, out=index)
        return index.astype(np.intp)  # what np.bincount takes without a copy

    index = bin_of(values)
    counts = np.bincount(index, minlength=ORDER_BINS)
    below = np.concatenate([[0], np.cumsum(counts)])           # values in bins < b
    rank_bins = np.searchsorted(below, ranks, side="right") - 1  # bin holding each rank
    # a threshold's own bin, or none when it lies outside [low, high]
    inside = [t for t in thresholds if low < t <= high]
    threshold_bins = bin_of(np.array(inside, np.float32)) if inside else np.array([], int)
    wanted = np.zeros(ORDER_BINS, bool)
    wanted[rank_bins] = True
    wanted[threshold_bins] = True
    keep = np.flatnonzero(wanted[index])
    chosen, chosen_bin = values[keep], index[keep]
    at = {}
    for b in np.unique(rank_bins):
        in_bin = chosen[chosen_bin == b]
        these = [r for r, rb in zip(ranks, rank_bins) if rb == b]
        part = np.partition(in_bin, [r - int(below[b]) for r in these])
        at.update({r: float(part[r - int(below[b])]) for r in these})
    above = {}
    for t in thresholds:
        if t <= low:
            above[t] = int(values.size)
        elif t > high:
            above[t] = 0
    for t, b in zip(inside, threshold_bins):
        above[t] = (int(values.size - below[b + 1])
                    + int(np.count_nonzero(chosen[chosen_bin == b] >= t)))
    return at, above


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
        low, high = float(dose.min()), float(dose.max())
        values, above = order_statistics(dose, ranks, low, high, v_thresholds_gy)
        at = {p: values[r] for p, r in zip(percents, ranks)}
        total = float(n)
        mean = float(dose.mean(dtype=np.float64))
        v_values = {f"V{t:g}": float(above[float(t)] / n * 100.0) for t in v_thresholds_gy}
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
    index = dose * np.float32(1.0 / bin_gy)
    np.clip(index, 0, n, out=index)
    index = index.astype(np.intp)
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
