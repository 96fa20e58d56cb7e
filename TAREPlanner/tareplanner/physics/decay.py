"""Radioactive decay and the energy released per unit activity.

The half-lives and energies per decay come from ``tareplanner/data/nuclides.json`` (ICRP
Publication 107, 2008, with each value's source and the derivation of the adopted energy per
activity); this module holds only the formulas.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np

#: Joule per MeV (CODATA 2018: 1 eV = 1.602176634e-19 J, exact).
JOULE_PER_MEV = 1.602176634e-13
SECONDS_PER_HOUR = 3600.0


def decay_constant_per_h(half_life_h: float) -> float:
    """Decay constant lambda = ln 2 / T_1/2, in 1/h."""
    if not half_life_h > 0:
        raise ValueError(f"half_life_h must be > 0, got {half_life_h!r}")
    return math.log(2.0) / half_life_h


def decay_factor(elapsed_h, half_life_h: float):
    """Fraction of activity left after ``elapsed_h`` hours: exp(-ln2 * t / T_1/2).

    Negative ``elapsed_h`` gives the activity *before* the reference time (factor > 1).
    Works element-wise on numpy arrays.
    """
    return np.exp(-decay_constant_per_h(half_life_h) * np.asarray(elapsed_h, dtype=float))[()]


def hours_between(start: datetime, end: datetime) -> float:
    """Signed hours from ``start`` to ``end``; both must carry a time zone."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("times must carry a UTC offset (time zone)")
    return (end - start).total_seconds() / SECONDS_PER_HOUR


def activity_at(activity_gbq: float, reference_time: datetime, time: datetime,
                half_life_h: float) -> float:
    """Activity at ``time`` of a source that held ``activity_gbq`` at ``reference_time``."""
    return float(activity_gbq * decay_factor(hours_between(reference_time, time), half_life_h))


def hours_until_activity(activity_gbq: float, target_activity_gbq: float,
                         half_life_h: float) -> float:
    """Hours after which ``activity_gbq`` has decayed to ``target_activity_gbq``."""
    if activity_gbq <= 0 or target_activity_gbq <= 0:
        raise ValueError("activities must be > 0")
    return math.log(activity_gbq / target_activity_gbq) / decay_constant_per_h(half_life_h)


def energy_per_activity_j_per_gbq(half_life_h: float, mean_energy_per_decay_mev: float) -> float:
    """Energy released per GBq administered, decayed to completion, in J/GBq.

    Number of decays per Bq over all time is the mean life tau = T_1/2 / ln 2 (s);
    E = 1e9 Bq/GBq * tau * E_mean.
    """
    mean_life_s = half_life_h * SECONDS_PER_HOUR / math.log(2.0)
    return 1e9 * mean_life_s * mean_energy_per_decay_mev * JOULE_PER_MEV
