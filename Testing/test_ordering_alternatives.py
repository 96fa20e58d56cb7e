"""The alternatives of a whole-vial order (tareplanner.physics.ordering.order_whole_vials) on
small cases built here by hand: the two-vial alternative, the same time on the other days,
the order of the alternatives, the weekly calibration (its zone, minutes and shelf-life end),
the base vial of the another-time search and every edge of that search (the calibrations it
searches, the working day's edges, the shelf life, the two days and the minute around the
planned time).

Each case has one or two calibrations placed by hand and one or two vial sizes; the
calibrations a moment may use are those whose shelf life covers it (0 <= moment - c <= shelf
life), as ``calibrations_for`` promises. Hand values: A(t) = A0 * 2^(-t / T), T = 64.1 h
(Y-90, DDEP); a vial of nominal activity s holds exactly the prescription A at
c + T * log2(s / A) (the prescription is chosen here so that this time falls where each
test needs it). Times are in a fixed UTC+1 zone (no daylight saving) and the working hours
are 07:00-19:00, both ends inside.
"""

from datetime import datetime, timedelta, timezone

import pytest

from tareplanner.physics.ordering import WorkingHours, order_whole_vials

T_H = 64.1
ZONE = timezone(timedelta(hours=1))
HOURS = WorkingHours.from_texts("07:00", "19:00")


def _at(day, hh, mm=0, ss=0):
    return datetime(2026, 12, day, hh, mm, ss, tzinfo=ZONE)


def _plan(activity_gbq, treatment, calibrations, sizes=(10.0,), shelf_days=12.0,
          tolerance=0.10):
    shelf = timedelta(days=shelf_days)

    def calibrations_for(moment):
        return tuple(c for c in calibrations if timedelta(0) <= moment - c <= shelf)

    return order_whole_vials(activity_gbq, treatment, T_H, sizes, sizes, False,
                             calibrations_for, shelf_days, tolerance, HOURS)


def _kinds(plan):
    return {o.kind: o for o in plan.alternatives}


def _another_time(plan):
    return [o for o in plan.alternatives if o.kind == "another time"]


def _holding_exactly(size_gbq, after_h):
    """The prescription that a vial of ``size_gbq`` holds exactly ``after_h`` hours after its
    calibration: size * 2^(-after_h / T)."""
    return size_gbq * 2 ** (-after_h / T_H)


# --- two vials ---------------------------------------------------------------------------

def test_two_vial_alternative_is_the_next_best_pair_not_the_chosen_one():
    """Bugs: the two-vial alternative left out when a pair is chosen, offered only when a
    single vial fits (the condition negated), or repeating the chosen pair. One calibration
    64.1 h (one half-life) before treatment: a vial holds half its nominal activity. 4.2 GBq
    from 3 and 5 GBq vials: singles hold 1.5 and 2.5 GBq (-64.3 %, -40.5 %), pairs 3 + 3 =
    3.0 GBq (-28.6 %), 3 + 5 = 4.0 GBq (-4.76 %, within 10 %: chosen), 5 + 5 = 5.0 GBq
    (5.0 / 4.2 - 1 = +19.05 %): the alternative."""
    t = _at(16, 12)
    plan = _plan(4.2, t, [t - timedelta(hours=64.1)], sizes=(3.0, 5.0))
    assert plan.chosen.vials_nominal_gbq == (3.0, 5.0) and plan.chosen.kind == "two vials"
    assert plan.chosen.deviation_fraction == pytest.approx(4.0 / 4.2 - 1, abs=1e-12)
    pair = _kinds(plan)["two vials"]
    assert pair.vials_nominal_gbq == (5.0, 5.0)
    assert pair.deviation_fraction == pytest.approx(5.0 / 4.2 - 1, abs=1e-12)


def test_no_two_vial_alternative_when_a_single_vial_fits():
    """Bug: two vials offered although one vial holds the prescription (the condition
    negated). 2.5 GBq one half-life after calibration: one 5 GBq vial holds exactly 2.5 GBq;
    the pairs (3 + 3: +20 %, ...) are not offered."""
    t = _at(16, 12)
    plan = _plan(2.5, t, [t - timedelta(hours=64.1)], sizes=(3.0, 5.0))
    assert plan.chosen.vials_nominal_gbq == (5.0,)
    assert "two vials" not in _kinds(plan)


# --- the same time on another day --------------------------------------------------------

@pytest.mark.parametrize("days", [-2, -1, 1, 2])
def test_another_day_at_the_same_time_on_each_of_the_four_days(days):
    """Bugs: one of the four days (-2, -1, +1, +2 d) left out or replaced by another (-3 d,
    +3 d), or the day taken the wrong way (the label of +1 d on the day before). One 10 GBq
    vial calibrated 3 days before the planned time, prescription chosen so that it holds
    exactly the prescription ``days`` days from the planned time, at the same hour: 10 *
    2^(-(72 + 24 days) / 64.1). A day earlier or later it is off by 2^(24 / 64.1) = 1.296
    (+29.6 %, -22.9 %), outside 10 %: only that day is offered."""
    t = _at(16, 12)
    cal = t - timedelta(days=3)
    plan = _plan(_holding_exactly(10.0, 72 + 24 * days), t, [cal])
    found = [o for o in plan.alternatives if o.kind.startswith("another day")]
    assert [o.kind for o in found] == [f"another day ({days:+d} d)"]
    (day,) = found
    assert day.treatment_time == t + timedelta(days=days)
    assert day.calibration_time == cal and day.vials_nominal_gbq == (10.0,)
    assert abs(day.deviation_fraction) < 1e-9


# --- the another-time search -------------------------------------------------------------

def test_another_time_starts_from_the_freshest_of_two_equally_near_vials():
    """Bug: the vial the another-time search starts from, among singles equally near the
    prescription, taken from the oldest calibration instead of the freshest. Planned 20:00
    (outside working hours: nothing is chosen); 2.5 GBq; calibrations 64.1 h and 128.2 h
    before: 5 GBq of the first holds 5 / 2 = 2.5 GBq, 10 GBq of the second 10 / 4 = 2.5 GBq
    (both exactly the prescription). From the 5 GBq vial of the fresher calibration the
    search finds 19:00 (the end of the working day; exactly at 20:00), holding
    2^(1 / 64.1) - 1 = +1.087 %; the 10 GBq vial would give the same time from the older
    calibration."""
    t = _at(16, 20)
    fresh, old = t - timedelta(hours=64.1), t - timedelta(hours=128.2)
    plan = _plan(2.5, t, [old, fresh], sizes=(5.0, 10.0))
    assert plan.chosen is None and not plan.planned_time_in_hours
    (other,) = _another_time(plan)
    assert other.vials_nominal_gbq == (5.0,) and other.calibration_time == fresh
    assert other.treatment_time == _at(16, 19)
    assert other.deviation_fraction == pytest.approx(2 ** (1 / 64.1) - 1, abs=1e-12)


def test_another_time_searches_a_calibration_expired_at_the_planned_time():
    """Bug: the calibrations of two days before the planned time not searched (+2 d for
    -2 d). Planned Wed 16 Dec 10:00; calibrations 15 Dec 10:00 and 3 Dec 22:00 (12.5 days
    before: past its 12-day shelf life at 10:00 on the 16th, inside it two days earlier).
    0.625 GBq = 10 GBq / 16: a 10 GBq vial holds it 4 half-lives = 256.4 h = 10 d 16 h 24 min
    after its calibration: 3 Dec 22:00 + 10 d 16:24 = Mon 14 Dec 14:24 (1 d 19 h 36 min
    before the planned time, 10.7 days after calibration): offered. The vial of 15 Dec would
    hold it on 26 Dec, beyond two days."""
    t = _at(16, 10)
    old, fresh = t - timedelta(days=12, hours=12), t - timedelta(days=1)
    (other,) = _another_time(_plan(10.0 / 16, t, [old, fresh]))
    assert other.calibration_time == old
    assert abs(other.treatment_time - _at(14, 14, 24)) < timedelta(seconds=1)
    assert abs(other.deviation_fraction) < 1e-9


def test_another_time_searches_the_calibrations_of_the_planned_day_with_a_short_shelf_life():
    """Bug: the planned day's own calibrations not searched (+1 d for 0 d), which a 12-day
    shelf life hides (the windows of -2 d and +2 d overlap) but a 2-day one does not.
    Planned 16 Dec 18:00, calibration 15 Dec 06:00 (36 h before, inside 2 days; not inside
    the windows of 14 Dec 18:00 (it is later) or 17 Dec 18:00 (older than 2 days)).
    10 / sqrt(2) GBq: the 10 GBq vial holds it half a half-life = 32.05 h after calibration,
    16 Dec 14:03; at 18:00 it holds 2^(-3.95 / 64.1) - 1 = -4.18 % (chosen)."""
    t = _at(16, 18)
    cal = _at(15, 6)
    plan = _plan(_holding_exactly(10.0, 32.05), t, [cal], shelf_days=2.0)
    assert plan.chosen is not None and plan.chosen.calibration_time == cal
    (other,) = _another_time(plan)
    assert abs(other.treatment_time - _at(16, 14, 3)) < timedelta(seconds=1)


def test_another_time_judges_working_hours_in_the_treatment_s_zone(computer_in_utc):
    """Bug: the exact time judged against the working hours in the computer's time zone
    instead of the treatment's. 10 GBq, calibration 15 Dec 12:00 (UTC+1), exactly the
    prescription 19.5 h later, 16 Dec 07:30 UTC+1 (06:30 UTC, before 07:00 in UTC): inside
    the working hours there, so 07:30 is offered (planned 12:00: -4.75 %, chosen). Judged in
    UTC it would be moved to the end of the day, 19:00, where it holds -11.7 % (not
    offered)."""
    t = _at(16, 12)
    (other,) = _another_time(_plan(_holding_exactly(10.0, 19.5), t, [_at(15, 12)]))
    assert abs(other.treatment_time - _at(16, 7, 30)) < timedelta(seconds=1)


@pytest.mark.parametrize("after_h, moment, deviation", [
    (32.0, (16, 19), 2 ** (1 / 64.1) - 1),     # exactly at 20:00 -> the end, 19:00, +1.087 %
    (18.0, (16, 7), 2 ** (-1 / 64.1) - 1),     # exactly at 06:00 -> the start, 07:00, -1.076 %
])
def test_another_time_outside_working_hours_moves_to_the_nearest_edge(after_h, moment,
                                                                      deviation):
    """Bug: an exact time outside working hours always moved to the start of the day (or
    always to the end). Calibration 15 Dec 12:00, planned 16 Dec 12:00: exactly the
    prescription at 20:00 (32 h after calibration; at 12:00 +9.04 %, chosen): offered at
    19:00, 1 h earlier, holding 2^(1 / 64.1) - 1 more; at 07:00 it would hold
    2^(13 / 64.1) - 1 = +15.1 %, not within 10 %. Exactly at 06:00 (18 h; at 12:00 -6.28 %):
    offered at 07:00."""
    t = _at(16, 12)
    (other,) = _another_time(_plan(_holding_exactly(10.0, after_h), t, [_at(15, 12)]))
    assert other.treatment_time == _at(*moment)
    assert other.deviation_fraction == pytest.approx(deviation, abs=1e-9)


def test_another_time_hours_after_calibration():
    """Bug: the another time refused within a day of its calibration (a shelf life starting
    one day late). Calibration 16 Dec 08:00, exactly the prescription 2 h later at 10:00
    (planned 12:00: -2.14 %, chosen): 10:00 is offered."""
    t = _at(16, 12)
    found = _another_time(_plan(_holding_exactly(10.0, 2.0), t, [_at(16, 8)]))
    assert [o.treatment_time for o in found] == [_at(16, 10)]


def test_another_time_at_the_calibration_itself_is_inside_the_shelf_life():
    """Bug: the calibration time itself counted outside the shelf life (``0 < age``). 10 GBq
    prescribed from a 10 GBq vial calibrated 16 Dec 08:00: it holds exactly that at its
    calibration, 08:00, which is offered (planned 12:00: 2^(-4 / 64.1) - 1 = -4.23 %,
    chosen)."""
    t = _at(16, 12)
    (other,) = _another_time(_plan(10.0, t, [_at(16, 8)]))
    assert other.treatment_time == _at(16, 8) and other.deviation_fraction == 0.0


@pytest.mark.parametrize("cal_minute, offered", [(0, True), (59, False)])
def test_another_time_at_the_end_of_the_shelf_life(cal_minute, offered):
    """Bug: the last moment of the shelf life (exactly 12 days after calibration) refused
    (``<`` for ``<=``). Calibration 4 Dec 19:00, planned 16 Dec 12:00 (11 d 17 h after it);
    exactly the prescription at 20:00 on 16 Dec (289 h after calibration; at 12:00 +9.04 %,
    chosen); moved to 19:00, which is exactly 12 days after calibration: offered. Calibrated
    at 18:59, 19:00 on the 16th is 12 days and a minute after it: not offered."""
    cal = _at(4, 19) if cal_minute == 0 else _at(4, 18, 59)
    t = _at(16, 12)
    exact_h = (_at(16, 20) - cal).total_seconds() / 3600
    found = _another_time(_plan(_holding_exactly(10.0, exact_h), t, [cal]))
    assert [o.treatment_time for o in found] == ([_at(16, 19)] if offered else [])


@pytest.mark.parametrize("exact, moment", [
    ((18, 6), (18, 7)),      # moved to 07:00 on the 18th: exactly 2 days after, offered
    ((18, 7, 1), None),      # 2 days and 1 minute after: not offered
])
def test_another_time_within_two_days_edges_included(exact, moment):
    """Bugs: exactly two days from the planned time refused (``>=``), or more than two days
    offered (three days, or the two-day and one-minute rules joined by ``and``). Planned
    16 Dec 07:00, calibration 15 Dec 07:00 (the planned time is too early for the vial:
    nothing within 10 %). Exactly the prescription at 06:00 on the 18th (71 h after
    calibration): moved to 07:00, 48 h after the planned time, holding -1.076 %: offered.
    Exactly at 07:01: 2 d 1 min away: not offered."""
    t = _at(16, 7)
    cal = _at(15, 7)
    exact_h = (_at(*exact) - cal).total_seconds() / 3600
    found = _another_time(_plan(_holding_exactly(10.0, exact_h), t, [cal]))
    assert [o.treatment_time for o in found] == ([_at(*moment)] if moment else [])


@pytest.mark.parametrize("planned, offered", [((16, 18, 59, 0), True), ((16, 18, 59, 1), False)])
def test_another_time_a_minute_from_the_planned_time(planned, offered):
    """Bugs: a time exactly 60 s from the planned one refused (``<=`` or ``< 61``), or a
    time less than a minute from it offered as another time (it is the planned time). A vial
    calibrated a day before the planned time holds exactly the prescription at 20:00: moved
    to 19:00 (+1.087 %, offered). Planned at 18:59:00, 19:00 is 60 s later: offered; planned
    at 18:59:01 (calibrated at 18:59:01 the day before), 59 s later: not offered."""
    t = _at(*planned)
    cal = t - timedelta(days=1)
    exact_h = (_at(16, 20) - cal).total_seconds() / 3600
    found = _another_time(_plan(_holding_exactly(10.0, exact_h), t, [cal]))
    assert [o.treatment_time for o in found] == ([_at(16, 19)] if offered else [])


def test_another_time_that_misses_the_tolerance_is_not_offered():
    """Bug: the another-time alternative handled like the other kinds (the nearest offered
    whatever its deviation). Tolerance 5 %; calibration 15 Dec 12:00, planned 16 Dec 12:00;
    exactly the prescription at 00:00 on 17 Dec (36 h after calibration): the nearest edge
    of that working day is 07:00, 7 h later, where the vial holds 2^(-7 / 64.1) - 1 =
    -7.3 %: beyond 5 %, not offered."""
    t = _at(16, 12)
    plan = _plan(_holding_exactly(10.0, 36.0), t, [_at(15, 12)], tolerance=0.05)
    assert _another_time(plan) == [] and plan.tolerance_fraction == 0.05


def test_another_time_closest_to_the_planned_time_is_offered():
    """Bug: the first another time found (that of the oldest calibration) offered instead of
    the one closest to the planned time. Calibrations 14 and 15 Dec 12:00, planned 16 Dec
    12:00; exactly the prescription 20 h after calibration: 15 Dec 08:00 (28 h before the
    planned time) and 16 Dec 08:00 (4 h before): the latter is offered (at the planned time
    the vial of 15 Dec holds 2^(-4 / 64.1) - 1 = -4.2 %: chosen)."""
    t = _at(16, 12)
    (other,) = _another_time(_plan(_holding_exactly(10.0, 20.0), t, [_at(14, 12),
                                                                     _at(15, 12)]))
    assert other.treatment_time == _at(16, 8) and other.calibration_time == _at(15, 12)


def test_alternatives_in_order_fitting_first_then_other_days_then_by_deviation():
    """Bugs: the alternatives that miss the tolerance listed first, an alternative on another
    day listed before one on the planned day with the same deviation. Calibration 13 Dec
    12:00, planned 16 Dec 12:00, 10 GBq holding exactly the prescription on 17 Dec 12:00
    (96 h after calibration): another time (17 Dec 12:00, 0 %) and the day after (0 %) fit;
    at the planned time the vial holds 2^(24 / 64.1) - 1 = +29.6 % (another size) and two
    vials 2 * 1.296 - 1 = +159 %: listed after them, the smaller deviation first."""
    t = _at(16, 12)
    plan = _plan(_holding_exactly(10.0, 96.0), t, [_at(13, 12)])
    assert [o.kind for o in plan.alternatives] == [
        "another time", "another day (+1 d)", "another size", "two vials"]
    assert plan.alternatives[2].deviation_fraction == pytest.approx(2 ** (24 / 64.1) - 1,
                                                                    abs=1e-12)


# --- the weekly calibration --------------------------------------------------------------

def test_latest_calibration_date_in_the_calibration_s_zone(computer_in_utc):
    """Bug: the weekday and date of the treatment taken in the computer's time zone instead
    of the calibration's. A calibration on Sunday 00:30 Auckland time (UTC+13 in December);
    treatment Sunday 6 Dec 2026 01:00 there (Saturday 12:00 UTC): the latest calibration is
    that same Sunday 00:30, not the Sunday before."""
    from zoneinfo import ZoneInfo
    from tareplanner.physics.ordering import latest_calibration_time
    auckland = ZoneInfo("Pacific/Auckland")
    got = latest_calibration_time(datetime(2026, 12, 6, 1, 0, tzinfo=auckland), "sunday",
                                  "00:30", "Pacific/Auckland")
    assert got == datetime(2026, 12, 6, 0, 30, tzinfo=auckland)


@pytest.mark.parametrize("treatment, calibration", [
    ((13, 14, 0), (13, 12, 30)),      # Sunday 14:00: that Sunday's 12:30
    ((13, 12, 0), (6, 12, 30)),       # Sunday 12:00, before 12:30: the Sunday before
])
def test_latest_calibration_keeps_its_minutes(treatment, calibration):
    """Bug: the calibration's minutes dropped (12:30 read as 12:00), on the same Sunday or
    the week before. A calibration on Sundays 12:30 New York time (EST in December):
    Sunday 13 Dec 14:00 -> 13 Dec 12:30; Sunday 13 Dec 12:00 -> 6 Dec 12:30."""
    from zoneinfo import ZoneInfo
    from tareplanner.physics.ordering import latest_calibration_time
    ny = ZoneInfo("America/New_York")
    got = latest_calibration_time(datetime(2026, 12, *treatment, tzinfo=ny), "sunday", "12:30",
                                  "America/New_York")
    assert got == datetime(2026, 12, *calibration, tzinfo=ny)


@pytest.mark.parametrize("treatment, candidates", [
    ((25, 12, 30), [(20, 12, 30), (13, 12, 30)]),   # Fri 25 Dec: 13 Dec is exactly 12 d old
    ((25, 13, 30), [(20, 12, 30)]),                 # an hour later: 12 d 1 h, beyond
])
def test_calibration_candidates_at_the_end_of_the_shelf_life(treatment, candidates):
    """Bugs: a calibration exactly 12 days old (the insert's shelf life, last day included)
    left out (``>=``), one 12 days and an hour old kept (days of 25 h), the earlier
    calibrations' minutes dropped. Sundays 12:30 New York time; treatment Friday 25 Dec
    12:30: the calibrations of 20 and 13 Dec (5 and 12 days before); at 13:30 only 20 Dec."""
    from zoneinfo import ZoneInfo
    from tareplanner.physics.ordering import calibration_candidates
    ny = ZoneInfo("America/New_York")
    got = calibration_candidates(datetime(2026, 12, *treatment, tzinfo=ny), "sunday", "12:30",
                                 "America/New_York", 12)
    assert list(got) == [datetime(2026, 12, *c, tzinfo=ny) for c in candidates]


@pytest.mark.parametrize("other_cal, exact", [
    ((14, 2), (14, 16)),      # 2 d 10 h before the planned time: only the -2 d window has it
    ((16, 20), (17, 10)),     # 8 h after it (the next calibration): only the +2 d window
])
def test_another_time_searches_two_days_either_side_with_a_short_shelf_life(other_cal, exact):
    """Bugs: the calibrations searched 3 days before or after the planned time instead of 2,
    which a 12-day shelf life hides but a 2-day one does not. Planned 16 Dec 12:00, shelf
    life 2 days, tolerance 5 %; the vial of 15 Dec 12:00 (covering the planned time) holds
    exactly the prescription 14 h after calibration (16 Dec 02:00, moved to 07:00:
    2^(-5 / 64.1) - 1 = -5.3 %, beyond 5 %). A calibration of 14 Dec 02:00 (covering 14 Dec
    12:00, not 13 Dec 12:00 nor the planned time) or of 16 Dec 20:00 (covering 18 Dec 12:00,
    not 19 Dec) gives the exact time 14 h later, 14 Dec 16:00 (44 h before the planned time)
    or 17 Dec 10:00 (22 h after): offered."""
    t = _at(16, 12)
    cals = [_at(15, 12), _at(*other_cal)]
    (other,) = _another_time(_plan(_holding_exactly(10.0, 14.0), t, cals, shelf_days=2.0,
                                   tolerance=0.05))
    assert other.calibration_time == _at(*other_cal)
    assert abs(other.treatment_time - _at(*exact)) < timedelta(seconds=1)
