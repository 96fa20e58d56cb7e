"""Delivered activity from dose-calibrator readings, and its comparison with the prescription.

The activity delivered at one injection position is what the vial held, less what stayed in
the vial, tubing and catheter (the residual), both decay-corrected to the administration time:

    A_delivered(t_adm) = A_vial(t_vial) * exp(-lambda (t_adm - t_vial))
                         - sum_k A_residual,k(t_k) * exp(+lambda (t_k - t_adm))

(residuals are measured after the administration, so their correction goes back in time).
The deviation from the prescription is A_delivered / A_prescribed - 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

from .decay import activity_at


@dataclass(frozen=True)
class Reading:
    """One dose-calibrator reading: activity (GBq) at its measurement time."""

    activity_gbq: float
    time: datetime


@dataclass(frozen=True)
class Delivered:
    vial_at_administration_gbq: float
    residual_at_administration_gbq: float
    delivered_activity_gbq: float
    residual_fraction: float


def delivered_activity(vial: Sequence[Reading], residuals: Sequence[Reading],
                       administration_time: datetime, half_life_h: float) -> Delivered:
    """Activity delivered at ``administration_time`` from the vial readings before and the
    residual readings after (each decay-corrected to the administration time).

    Raises ``ValueError`` when the residual exceeds what the vial held."""
    if not vial:
        raise ValueError("at least one vial reading is needed")
    before = sum(activity_at(r.activity_gbq, r.time, administration_time, half_life_h)
                 for r in vial)
    after = sum(activity_at(r.activity_gbq, r.time, administration_time, half_life_h)
                for r in residuals)
    if after > before:
        raise ValueError(f"the residual ({after:.4g} GBq at administration) exceeds the vial "
                         f"activity ({before:.4g} GBq)")
    delivered = before - after
    return Delivered(before, after, delivered, after / before if before > 0 else 0.0)


def deviation_fraction(delivered_gbq: float, prescribed_gbq: float) -> float:
    """Relative difference of the delivered from the prescribed activity."""
    if not prescribed_gbq > 0:
        raise ValueError(f"prescribed activity must be > 0, got {prescribed_gbq!r}")
    return delivered_gbq / prescribed_gbq - 1.0


def meets_criterion(deviation: float, threshold_fraction: float) -> bool:
    """True when the deviation reaches the criterion: |deviation| >= threshold ("differs by
    20 percent or more" includes 20 % itself). A relative round-off allowance of 1e-9 keeps
    an exact 20 % (1.2 / 1.0 - 1 = 0.19999999999999996 in floating point) at the criterion."""
    return abs(deviation) >= threshold_fraction * (1.0 - 1e-9)


def exceeds_organ_dose_criterion(dose_gy: float, expected_gy: float, excess_gy: float,
                                 relative_excess: float) -> bool:
    """True when a dose to an organ outside the treatment site exceeds the dose expected
    from the written directive both by ``excess_gy`` or more and by ``relative_excess`` (a
    fraction of the expected dose) or more: 10 CFR 35.3045(a)(3) with 0.5 Sv and 50 %
    (1 Gy = 1 Sv for beta radiation). Both edges are included, with the relative round-off
    allowance of :func:`meets_criterion`."""
    excess = dose_gy - expected_gy
    return (excess >= excess_gy * (1.0 - 1e-9)
            and excess >= relative_excess * expected_gy * (1.0 - 1e-9))


def likely_slip(ratio: float, slips: Sequence[tuple[float, str]],
                tolerance_fraction: float) -> tuple[float, str] | None:
    """The reading slip (factor, description) whose factor is nearest ``ratio`` (entered over
    expected) within ``tolerance_fraction`` (relative, on either side); None otherwise."""
    import math

    if not (ratio > 0 and math.isfinite(ratio)):
        return None
    best = min(slips, key=lambda s: abs(math.log(ratio / s[0])), default=None)
    if best is None or abs(math.log(ratio / best[0])) > math.log1p(tolerance_fraction):
        return None
    return best
