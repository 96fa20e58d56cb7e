"""Ordering and dispensing of microspheres for a planned treatment time.

- TheraSphere: whole dose vials of fixed nominal activity, calibrated at noon Eastern
  Time on Sunday, 12-day shelf life; the vial is chosen so that its activity at the
  treatment time is at least the prescription, and the time at which it holds exactly
  the prescription is given (TheraSphere package insert).
- SIR-Spheres: a 3 GBq vial (at its calibration time) in 5 mL; the prescribed activity
  is drawn as a fraction (volume) of the vial at treatment time (Sirtex IFU).
- QuiremSpheres: the patient-specific activity is ordered calibrated for the treatment
  time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Sequence
from zoneinfo import ZoneInfo

from .decay import decay_factor, hours_between, hours_until_activity

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def latest_calibration_time(treatment_time: datetime, weekday: str, time_hhmm: str,
                            timezone: str) -> datetime:
    """The last weekly calibration (weekday, local time in ``timezone``) at or before treatment."""
    zone = ZoneInfo(timezone)
    local = treatment_time.astimezone(zone)
    hour, minute = (int(x) for x in time_hhmm.split(":"))
    days_back = (local.weekday() - WEEKDAYS.index(weekday)) % 7
    day = (local - timedelta(days=days_back)).date()
    calibration = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
    if calibration > local:
        calibration -= timedelta(days=7)
        calibration = datetime(calibration.year, calibration.month, calibration.day, hour,
                               minute, tzinfo=zone)
    return calibration


@dataclass(frozen=True)
class VialOrder:
    """Whole vials (TheraSphere) for one injection position."""

    vials_nominal_gbq: tuple[float, ...]
    calibration_time: datetime
    activity_at_treatment_gbq: float
    excess_fraction: float
    prescribed_activity_time: datetime
    days_after_calibration: float
    within_shelf_life: bool


def choose_vials(sizes_gbq: Sequence[float], required_nominal_gbq: float) -> tuple[float, ...]:
    """Smallest vial(s) whose nominal activity covers ``required_nominal_gbq``.

    One vial when the largest size suffices; otherwise as many of the largest as needed
    plus the smallest size that covers the remainder.
    """
    sizes = sorted(sizes_gbq)
    largest = sizes[-1]
    vials: list[float] = []
    remaining = required_nominal_gbq
    while remaining > largest + 1e-12:
        vials.append(largest)
        remaining -= largest
    vials.append(next(s for s in sizes if s >= remaining - 1e-12))
    return tuple(vials)


def calibration_candidates(treatment_time: datetime, weekday: str, time_hhmm: str,
                           timezone: str, shelf_life_days: float) -> tuple[datetime, ...]:
    """Weekly calibrations at or before treatment whose shelf life covers the treatment."""
    latest = latest_calibration_time(treatment_time, weekday, time_hhmm, timezone)
    candidates = [latest]
    while True:
        local = candidates[-1] - timedelta(days=7)
        previous = datetime(local.year, local.month, local.day, latest.hour, latest.minute,
                            tzinfo=latest.tzinfo)
        if hours_between(previous, treatment_time) > shelf_life_days * 24.0:
            break
        candidates.append(previous)
    return tuple(candidates)


def best_whole_vial_order(activity_gbq: float, treatment_time: datetime, half_life_h: float,
                          sizes_gbq: Sequence[float], calibrations: Sequence[datetime],
                          shelf_life_days: float) -> VialOrder:
    """Among the calibrations, the order with the fewest vials, then the least excess."""
    orders = [whole_vial_order(activity_gbq, treatment_time, half_life_h, sizes_gbq, c,
                               shelf_life_days) for c in calibrations]
    return min(orders, key=lambda o: (len(o.vials_nominal_gbq), o.excess_fraction))


def whole_vial_order(activity_gbq: float, treatment_time: datetime, half_life_h: float,
                     sizes_gbq: Sequence[float], calibration_time: datetime,
                     shelf_life_days: float) -> VialOrder:
    """Vials calibrated at ``calibration_time`` that hold at least ``activity_gbq`` at treatment."""
    elapsed_h = hours_between(calibration_time, treatment_time)
    factor = float(decay_factor(elapsed_h, half_life_h))
    vials = choose_vials(sizes_gbq, activity_gbq / factor)
    nominal = sum(vials)
    at_treatment = nominal * factor
    exact_time = calibration_time + timedelta(
        hours=hours_until_activity(nominal, activity_gbq, half_life_h))
    days = elapsed_h / 24.0
    return VialOrder(vials_nominal_gbq=vials, calibration_time=calibration_time,
                     activity_at_treatment_gbq=at_treatment,
                     excess_fraction=at_treatment / activity_gbq - 1.0,
                     prescribed_activity_time=exact_time, days_after_calibration=days,
                     within_shelf_life=0.0 <= days <= shelf_life_days)


def vial_sizes(standard_gbq: Sequence[float], step_gbq: float | None,
               range_gbq: Sequence[float] | None, custom: bool) -> tuple[float, ...]:
    """Orderable nominal vial activities: the standard sizes, or every step in the range."""
    if not custom or step_gbq is None or range_gbq is None:
        return tuple(sorted(standard_gbq))
    low, high = range_gbq
    n = int(round((high - low) / step_gbq))
    return tuple(round(low + i * step_gbq, 6) for i in range(n + 1))


@dataclass(frozen=True)
class VialDraw:
    """Part of a vial (SIR-Spheres) drawn for one injection position."""

    vial_activity_at_treatment_gbq: float
    fraction_of_vial: float
    volume_ml: float
    hours_after_calibration: float


def vial_draw(activity_gbq: float, vial_activity_gbq: float, vial_volume_ml: float,
              vial_calibration_time: datetime, treatment_time: datetime,
              half_life_h: float) -> VialDraw:
    """Fraction and volume of a vial that hold ``activity_gbq`` at the treatment time."""
    elapsed_h = hours_between(vial_calibration_time, treatment_time)
    in_vial = vial_activity_gbq * float(decay_factor(elapsed_h, half_life_h))
    fraction = activity_gbq / in_vial
    return VialDraw(vial_activity_at_treatment_gbq=in_vial, fraction_of_vial=fraction,
                    volume_ml=fraction * vial_volume_ml, hours_after_calibration=elapsed_h)


def vials_needed(total_activity_gbq: float, vial_activity_at_treatment_gbq: float) -> int:
    """Number of vials whose activity at treatment covers ``total_activity_gbq``."""
    return max(1, math.ceil(total_activity_gbq / vial_activity_at_treatment_gbq - 1e-9))


def sphere_count_range(activity_gbq: float, sphere_activity_min_bq: float,
                       sphere_activity_max_bq: float) -> tuple[float, float]:
    """Number of spheres carrying ``activity_gbq`` at the catalogue's activity per sphere."""
    return (activity_gbq * 1e9 / sphere_activity_max_bq, activity_gbq * 1e9 / sphere_activity_min_bq)
