"""Ordering and dispensing of microspheres for a planned treatment time.

- TheraSphere: whole dose vials (standard sizes or 0.5 GBq steps), calibrated at noon
  Eastern Time on Sunday, 12-day shelf life (TheraSphere package insert). The vial is
  chosen so that its activity at the planned treatment time is within a tolerance of the
  prescription (default +/- 10 %, set by the site), inside the site's working hours and the
  shelf life; alternatives (another time, size, two vials, another day) come with their
  deviation; when none fits, the order says so (:func:`order_whole_vials`).
- SIR-Spheres: a 3 GBq vial (at its calibration time) in 5 mL; the prescribed activity
  is drawn as a fraction (volume) of the vial at treatment time (Sirtex IFU).
- QuiremSpheres: the patient-specific activity is ordered calibrated for the treatment
  time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
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


# --- ordering for the treatment time: tolerance, working hours, alternatives -------------

@dataclass(frozen=True)
class WorkingHours:
    """Treatment hours of a site, local time of the treatment's time zone; both ends are
    inside (07:00 and 19:00 are working hours, 19:00:01 is not)."""

    start_min: int
    end_min: int

    @classmethod
    def from_texts(cls, start: str, end: str) -> "WorkingHours":
        def minutes(text: str) -> int:
            h, m = text.split(":")
            return int(h) * 60 + int(m)
        return cls(minutes(start), minutes(end))

    def contains(self, moment: datetime, zone) -> bool:
        local = moment.astimezone(zone)
        minutes = local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60
        return self.start_min <= minutes <= self.end_min

    def text(self) -> str:
        return (f"{self.start_min // 60:02d}:{self.start_min % 60:02d}-"
                f"{self.end_min // 60:02d}:{self.end_min % 60:02d}")

    def day_edges(self, moment: datetime, zone) -> tuple[datetime, datetime]:
        """The start and end of the working day of ``moment`` (local date in ``zone``)."""
        local = moment.astimezone(zone)
        day = datetime(local.year, local.month, local.day, tzinfo=zone)
        return (day + timedelta(minutes=self.start_min), day + timedelta(minutes=self.end_min))


@dataclass(frozen=True)
class VialOption:
    """Whole vials of one calibration, infused at ``treatment_time``."""

    kind: str
    vials_nominal_gbq: tuple[float, ...]
    calibration_time: datetime
    treatment_time: datetime
    activity_at_treatment_gbq: float
    deviation_fraction: float
    days_after_calibration: float
    custom: bool

    def within(self, tolerance: float) -> bool:
        return abs(self.deviation_fraction) <= tolerance * (1 + 1e-12)


@dataclass(frozen=True)
class WholeVialPlan:
    """The order for one position: the chosen vials (``None`` when no vial holds the
    prescription within the tolerance at the planned time), the nearest option at the planned
    time, the alternatives, and whether the planned time is inside working hours."""

    chosen: VialOption | None
    nearest: VialOption
    alternatives: tuple[VialOption, ...]
    planned_time_in_hours: bool
    tolerance_fraction: float


def _option(kind: str, vials: tuple[float, ...], calibration: datetime, at: datetime,
            activity_gbq: float, half_life_h: float, custom_sizes: frozenset) -> VialOption:
    elapsed = hours_between(calibration, at)
    held = sum(vials) * float(decay_factor(elapsed, half_life_h))
    return VialOption(kind=kind, vials_nominal_gbq=vials, calibration_time=calibration,
                      treatment_time=at, activity_at_treatment_gbq=held,
                      deviation_fraction=held / activity_gbq - 1.0,
                      days_after_calibration=elapsed / 24.0,
                      custom=any(v in custom_sizes for v in vials))


def _rank(option: VialOption) -> tuple:
    # fewest vials, then the freshest calibration (an older vial of the same activity
    # carries several times the spheres: a clinical choice, offered as an alternative),
    # then the smallest deviation
    return (len(option.vials_nominal_gbq), -option.calibration_time.timestamp(),
            abs(option.deviation_fraction))


def order_whole_vials(activity_gbq: float, treatment_time: datetime, half_life_h: float,
                      standard_gbq: Sequence[float], custom_gbq: Sequence[float],
                      use_custom: bool, calibrations_for, shelf_life_days: float,
                      tolerance_fraction: float, hours: WorkingHours) -> WholeVialPlan:
    """Vials whose activity at the planned treatment time is within ``tolerance_fraction``
    of the prescription, and the alternatives a pharmacy can order instead.

    ``calibrations_for(moment)`` gives the calibrations whose shelf life covers ``moment``.
    Options at the planned time: one vial of each size, then two vials; the chosen one has
    the fewest vials, then the freshest calibration, then the smallest deviation.
    Alternatives, the best of each kind (never outside working hours nor the shelf life):
    another time within two days at which the vial holds exactly the prescription (or the
    nearest edge of that working day; the one closest to the planned time), another size (a
    custom 0.5 GBq step when the case orders standard sizes), two vials, and the same time on
    the days before and after (when within the tolerance)."""
    zone = treatment_time.tzinfo
    sizes = tuple(sorted(set(custom_gbq if use_custom else standard_gbq)))
    custom_set = frozenset(custom_gbq) - frozenset(standard_gbq)
    calibrations = calibrations_for(treatment_time)
    in_hours = hours.contains(treatment_time, zone)

    singles = [_option("planned time", (s,), c, treatment_time, activity_gbq, half_life_h,
                       custom_set) for c in calibrations for s in sizes]
    pairs = [_option("two vials", (a, b), c, treatment_time, activity_gbq, half_life_h,
                     custom_set)
             for c in calibrations for i, a in enumerate(sizes) for b in sizes[i:]]
    fitting = [o for o in singles + pairs if o.within(tolerance_fraction)]
    chosen = min(fitting, key=_rank) if fitting and in_hours else None
    nearest = chosen or min(singles + pairs, key=lambda o: (abs(o.deviation_fraction),
                                                          len(o.vials_nominal_gbq)))

    by_kind: dict[str, list[VialOption]] = {}
    if in_hours:
        by_kind["another size"] = [replace(o, kind="another size") for o in singles
                                   if chosen is None or o.vials_nominal_gbq !=
                                   chosen.vials_nominal_gbq]
        if not use_custom and custom_set:
            by_kind["custom activity"] = [
                _option("custom activity", (s,), c, treatment_time, activity_gbq, half_life_h,
                        custom_set) for c in calibrations for s in sorted(custom_set)]
        if not any(o.within(tolerance_fraction) for o in singles):
            by_kind["two vials"] = [o for o in pairs if chosen is None or o != chosen]
        for days in (-1, 1, -2, 2):
            moment = treatment_time + timedelta(days=days)
            by_kind[f"another day ({days:+d} d)"] = [
                _option(f"another day ({days:+d} d)", (s,), c, moment, activity_gbq,
                        half_life_h, custom_set) for c in calibrations_for(moment) for s in sizes]
    # another time within two days at which the chosen (or nearest) vial holds exactly the
    # prescription, or the nearest edge of that working day
    base = chosen if chosen is not None and len(chosen.vials_nominal_gbq) == 1 else \
        min(singles, key=lambda o: (abs(o.deviation_fraction), -o.calibration_time.timestamp()))
    if len(base.vials_nominal_gbq) == 1:
        size = base.vials_nominal_gbq[0]
        found = []
        cals = {c for d in (-2, 0, 2) for c in calibrations_for(treatment_time
                                                                + timedelta(days=d))}
        for c in sorted(cals):
            exact = c + timedelta(hours=hours_until_activity(size, activity_gbq, half_life_h))
            moment = exact
            if not hours.contains(exact, zone):
                start, end = hours.day_edges(exact, zone)
                moment = start if exact < start else end
            if not timedelta(0) <= moment - c <= timedelta(days=shelf_life_days) \
                    or abs(moment - treatment_time) > timedelta(days=2) \
                    or abs((moment - treatment_time).total_seconds()) < 60:
                continue
            found.append(_option("another time", (size,), c, moment, activity_gbq,
                                 half_life_h, custom_set))
        by_kind["another time"] = found
    alternatives = []
    for kind, options in by_kind.items():
        options = [o for o in options if hours.contains(o.treatment_time, zone)]
        if not options:
            continue
        if kind == "another time":
            fitting_time = [o for o in options if o.within(tolerance_fraction)]
            if fitting_time:
                alternatives.append(min(fitting_time, key=lambda o: abs(
                    o.treatment_time - treatment_time)))
            continue
        best = min(options, key=lambda o: abs(o.deviation_fraction))
        if kind.startswith("another day") and not best.within(tolerance_fraction):
            continue
        alternatives.append(best)
    ordered = sorted(alternatives, key=lambda o: (not o.within(tolerance_fraction),
                                                  o.kind.startswith("another day"),
                                                  abs(o.deviation_fraction)))
    return WholeVialPlan(chosen=chosen, nearest=nearest, alternatives=tuple(ordered),
                         planned_time_in_hours=in_hours, tolerance_fraction=tolerance_fraction)


