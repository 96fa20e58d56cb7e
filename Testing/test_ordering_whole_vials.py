"""Whole-vial ordering helpers at their edges, by hand: the vial split at exactly the largest
size, a vial that exactly covers the need, the fields of a whole-vial order (excess, days,
shelf life from the calibration itself), the best of several calibrations, the sphere count
and the working hours' text.

Hand values: Y-90 half-life 64.1 h (2.6684 d, DDEP); TheraSphere calibration Sunday noon
Eastern Time, shelf life 12 days (TheraSphere package insert). 2^(-40/64.1) = 0.648858,
2^(-208/64.1) = 0.105482 (40 h and 208 h after the last two Sundays' calibrations of a
Tuesday 10:00 CET treatment).
"""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from tareplanner.physics.ordering import (WorkingHours, best_whole_vial_order, choose_vials,
                                          sphere_count_range, vial_draw, vial_sizes,
                                          whole_vial_order)

NY = ZoneInfo("America/New_York")
CET = timezone(timedelta(hours=1))
STANDARD = (3, 5, 7, 10, 15, 20)
HALF_LIFE_H = 64.1
TUESDAY_10 = datetime(2026, 12, 1, 10, 0, tzinfo=CET)
SUNDAY_29 = datetime(2026, 11, 29, 12, 0, tzinfo=NY)   # 40 h before TUESDAY_10
SUNDAY_22 = datetime(2026, 11, 22, 12, 0, tzinfo=NY)   # 208 h before TUESDAY_10


@pytest.mark.parametrize("need, vials", [
    (20, (20,)),            # exactly the largest: one vial, not 20 + 3
    (40, (20, 20)),         # exactly two of the largest: no third vial
    (20.5, (20, 3)),        # just above the largest: the smallest covers the 0.5 left
    (5, (5,)),              # exactly a size: that size, not the next (7)
    (5.000001, (7,)),       # just above a size: the next one
    (4.999999, (5,)),
])
def test_choose_vials_at_the_edges_of_the_sizes(need, vials):
    """Catches a split that starts a second vial when the need equals the largest size
    (``>=`` for ``>``, or the round-off allowance subtracted), a loop that never splits a
    need just above it, and a vial that must exceed (not reach) the need. Hand: sizes
    3-20 GBq of the insert; 20.5 = 20 + 0.5 -> 20 + 3."""
    assert choose_vials(STANDARD, need) == vials


def test_whole_vial_order_fields_by_hand():
    """Catches a lost calibration time, an excess of +1 or A_vial * A, the days after
    calibration dropped. Hand: 2.263 GBq 40 h after calibration needs 2.263 / 0.648869 =
    3.488 GBq nominal -> 5 GBq, which holds 5 * 0.648858 = 3.24429 GBq: excess
    3.24429 / 2.263 - 1 = +43.36 %; 40 h = 1.6667 d."""
    t = SUNDAY_29 + timedelta(hours=40)
    order = whole_vial_order(2.263, t, HALF_LIFE_H, STANDARD, SUNDAY_29, 12)
    assert order.calibration_time == SUNDAY_29
    assert order.vials_nominal_gbq == (5,)
    assert order.activity_at_treatment_gbq == pytest.approx(3.24429, abs=1e-5)
    assert order.excess_fraction == pytest.approx(0.4336, abs=1e-4)
    assert order.days_after_calibration == pytest.approx(40 / 24)
    assert order.within_shelf_life is True


@pytest.mark.parametrize("hours, inside", [(0, True), (12, True), (24, True), (-1, False)])
def test_shelf_life_starts_at_the_calibration(hours, inside):
    """The shelf life runs from the calibration (0 d, inclusive) to 12 d (insert): a vial
    used at its calibration time or half a day after it is inside; an hour before it is
    not. Catches ``0 < days`` and a shelf life that starts one day after calibration."""
    order = whole_vial_order(1.0, SUNDAY_29 + timedelta(hours=hours), HALF_LIFE_H, STANDARD,
                             SUNDAY_29, 12)
    assert order.within_shelf_life is inside


def test_best_whole_vial_order_fewest_vials_then_least_excess():
    """Catches the wrong choice among calibrations. 2.18 GBq on Tuesday 10:00 CET: the
    calibration of 29 Nov needs 2.18 / 0.648858 = 3.36 GBq -> one 5 GBq vial (+48.8 %);
    that of 22 Nov needs 2.18 / 0.105482 = 20.67 GBq -> 20 + 3 (two vials): one vial wins
    despite its excess. 2.0 GBq: 29 Nov 5 GBq (5 * 0.648858 / 2 - 1 = +62.2 %), 22 Nov
    18.96 -> 20 GBq (20 * 0.105482 / 2 - 1 = +5.48 %): both one vial, the least excess
    wins."""
    cals = (SUNDAY_29, SUNDAY_22)
    one = best_whole_vial_order(2.18, TUESDAY_10, HALF_LIFE_H, STANDARD, cals, 12)
    assert one.vials_nominal_gbq == (5,) and one.calibration_time == SUNDAY_29
    assert one.excess_fraction == pytest.approx(0.488, abs=1e-3)
    least = best_whole_vial_order(2.0, TUESDAY_10, HALF_LIFE_H, STANDARD, cals[::-1], 12)
    assert least.vials_nominal_gbq == (20,) and least.calibration_time == SUNDAY_22
    assert least.excess_fraction == pytest.approx(0.0548, abs=1e-4)
    least = best_whole_vial_order(2.0, TUESDAY_10, HALF_LIFE_H, STANDARD, cals, 12)
    assert least.calibration_time == SUNDAY_22
    assert least.days_after_calibration == pytest.approx(208 / 24)


def test_vial_draw_reports_the_hours_after_calibration():
    """Catches the elapsed time lost from a SIR-Spheres draw: a vial calibrated 24 h before
    treatment reports 24 h."""
    cal = datetime(2026, 12, 1, 9, 0, tzinfo=CET)
    draw = vial_draw(1.5, 3.0, 5.0, cal, cal + timedelta(hours=24), HALF_LIFE_H)
    assert draw.hours_after_calibration == 24


def test_sphere_count_range_by_hand():
    """Catches a swapped or mis-scaled range: 2 GBq at 40-70 Bq a sphere (SIR-Spheres,
    Kennedy et al. consensus) is 2e9 / 70 = 2.857e7 to 2e9 / 40 = 5.0e7 spheres."""
    low, high = sphere_count_range(2.0, 40.0, 70.0)
    assert low == pytest.approx(2e9 / 70, rel=1e-12)     # 2.857e7
    assert high == pytest.approx(5.0e7, rel=1e-12)


@pytest.mark.parametrize("start, end", [("07:00", "19:05"), ("00:00", "23:59"),
                                        ("08:30", "16:00")])
def test_working_hours_text_round_trips(start, end):
    """Catches the hours and minutes of the shown working hours computed with a wrong base
    (07:00 = 420 min: 420 // 61 = 6, 420 % 61 = 54; 19:05 = 1145 min: 1145 // 61 = 18)."""
    assert WorkingHours.from_texts(start, end).text() == f"{start}-{end}"


def test_vial_sizes_standard_unless_custom_with_step_and_range():
    """Catches ``and`` for ``or`` in the choice between standard and custom sizes: custom
    sizes need the flag, the step and the range; without any of them the standard sizes
    are ordered, sorted (insert: 3, 5, 7, 10, 15, 20 GBq; custom 3-20 GBq in 0.5 GBq)."""
    assert vial_sizes([20, 3, 5], 0.5, [3, 20], False) == (3, 5, 20)
    assert vial_sizes([20, 3, 5], None, [3, 20], True) == (3, 5, 20)
    assert vial_sizes([20, 3, 5], 0.5, None, True) == (3, 5, 20)
    assert vial_sizes([20, 3, 5], 0.5, [3, 4], True) == (3.0, 3.5, 4.0)


def test_working_hours_minutes_from_text():
    """Catches ``h * 60 - m`` and ``h * 61 + m``: 07:30 is 450 min, 19:05 is 1145 min."""
    hours = WorkingHours.from_texts("07:30", "19:05")
    assert (hours.start_min, hours.end_min) == (450, 1145)


@pytest.mark.parametrize("hh, mm, ss, us, inside", [
    (19, 30, 0, 0, False),        # h * 60 - m would put 19:30 at 1110 min, inside
    (7, 30, 0, 0, True),
    (19, 0, 0, 500_000, False),   # half a second after the end is outside
    (6, 59, 59, 500_000, False),  # half a second before the start is outside
])
def test_working_hours_contain_by_minute_second_and_microsecond(hh, mm, ss, us, inside):
    """07:00-19:00 (both ends inside, the default of data/ordering rules): the minutes of the
    day are h * 60 + m + (s + us / 1e6) / 60. Catches ``- m`` and ``s - us``."""
    hours = WorkingHours.from_texts("07:00", "19:00")
    assert hours.contains(datetime(2026, 12, 1, hh, mm, ss, us, tzinfo=CET), CET) is inside


def test_working_day_edges_in_the_treatment_time_zone():
    """Catches the day taken in another zone and the end subtracted: 00:30 CET on 2 Dec is
    23:30 UTC on 1 Dec, and its working day is 2 Dec 07:00-19:00 CET."""
    hours = WorkingHours.from_texts("07:00", "19:00")
    start, end = hours.day_edges(datetime(2026, 12, 1, 23, 30, tzinfo=timezone.utc), CET)
    assert start == datetime(2026, 12, 2, 7, 0, tzinfo=CET)
    assert end == datetime(2026, 12, 2, 19, 0, tzinfo=CET)


def _cals(moment):
    from tareplanner.physics.ordering import calibration_candidates
    return calibration_candidates(moment, "sunday", "12:00", "America/New_York", 12)


def test_order_option_days_and_custom_flag_by_hand():
    """Catches an option without its days after calibration (or hours * 24) and without its
    custom flag. 2.18 GBq on Tuesday 10:00 CET, 0.5 GBq steps 3-20 GBq: the 3.5 GBq vial of
    Sunday 29 Nov noon EST, 40 h = 1.6667 d before, is a custom size (not one of the
    insert's 3, 5, 7, 10, 15, 20 GBq); ordered from standard sizes only, the 20 GBq vial of
    22 Nov (208 h = 8.6667 d) is not custom."""
    from tareplanner.physics.ordering import order_whole_vials
    custom = vial_sizes(STANDARD, 0.5, [3, 20], True)
    hours = WorkingHours.from_texts("07:00", "19:00")
    plan = order_whole_vials(2.18, TUESDAY_10, HALF_LIFE_H, STANDARD, custom, True, _cals, 12,
                             0.10, hours)
    assert plan.chosen.vials_nominal_gbq == (3.5,) and plan.chosen.kind == "planned time"
    assert plan.chosen.days_after_calibration == pytest.approx(40 / 24)
    assert plan.chosen.custom is True
    plan = order_whole_vials(2.18, TUESDAY_10, HALF_LIFE_H, STANDARD, custom, False, _cals, 12,
                             0.10, hours)
    assert plan.chosen.vials_nominal_gbq == (20,)
    assert plan.chosen.days_after_calibration == pytest.approx(208 / 24)
    assert plan.chosen.custom is False


def test_two_vials_chosen_when_no_single_vial_fits():
    """Catches a chosen pair shown under another kind. 2.85 GBq on Tuesday 10:00 CET,
    standard sizes: no single vial is within 10 % (29 Nov: 5 GBq holds 3.2443 GBq, +13.8 %,
    3 GBq 1.9466 GBq, -31.7 %; 22 Nov: 20 GBq 2.1096 GBq, -26.0 %); of 22 Nov's pairs
    20 + 7 = 27 GBq holds 27 * 0.105482 = 2.8480 GBq, -0.07 %, the smallest deviation."""
    from tareplanner.physics.ordering import order_whole_vials
    plan = order_whole_vials(2.85, TUESDAY_10, HALF_LIFE_H, STANDARD, STANDARD, False, _cals,
                             12, 0.10, WorkingHours.from_texts("07:00", "19:00"))
    assert sorted(plan.chosen.vials_nominal_gbq) == [7, 20]
    assert plan.chosen.kind == "two vials"
    assert plan.chosen.calibration_time == SUNDAY_22
    assert plan.chosen.deviation_fraction == pytest.approx(-0.0007, abs=1e-4)


def test_alternatives_another_size_and_custom_activity_by_hand():
    """Catches another size that repeats the chosen vial, an alternative shown under the
    kind of the planned time, and custom activities offered to a case that already orders
    them. 2.18 GBq on Tuesday 10:00 CET, standard sizes: the chosen vial is 20 GBq of 22 Nov
    (20 * 0.105482 = 2.1096 GBq, -3.23 %); the nearest other size is 3 GBq of 29 Nov
    (3 * 0.648858 = 1.9466 GBq, -10.71 %), and the custom 3.5 GBq of 29 Nov
    (3.5 * 0.648858 = 2.2710 GBq, +4.18 %) is offered as a custom activity. Ordering
    custom sizes already, no custom activity is offered on top."""
    from tareplanner.physics.ordering import order_whole_vials
    custom = vial_sizes(STANDARD, 0.5, [3, 20], True)
    hours = WorkingHours.from_texts("07:00", "19:00")
    plan = order_whole_vials(2.18, TUESDAY_10, HALF_LIFE_H, STANDARD, custom, False, _cals, 12,
                             0.10, hours)
    assert plan.chosen.vials_nominal_gbq == (20,)
    kinds = {o.kind: o for o in plan.alternatives}
    other = kinds["another size"]
    assert other.vials_nominal_gbq == (3,) and other.calibration_time == SUNDAY_29
    assert other.deviation_fraction == pytest.approx(-0.1071, abs=1e-4)
    assert kinds["custom activity"].vials_nominal_gbq == (3.5,)
    assert kinds["custom activity"].deviation_fraction == pytest.approx(0.0418, abs=1e-4)
    plan = order_whole_vials(2.18, TUESDAY_10, HALF_LIFE_H, STANDARD, custom, True, _cals, 12,
                             0.10, hours)
    assert "custom activity" not in {o.kind for o in plan.alternatives}


def test_another_day_before_is_offered_at_the_same_time():
    """Catches the day before replaced by the day after and the day taken the wrong way.
    2.18 GBq, custom 0.5 GBq steps, Tuesday 10:00 CET: the day before, Monday 10:00 CET, is
    16 h after Sunday 29 Nov noon EST (3 GBq: 3 * 2^(-16/64.1) = 2.5234 GBq, +15.8 %, out)
    and 184 h after 22 Nov: 2^(-184/64.1) = 0.136738, 16 GBq holds 2.1878 GBq, +0.36 %, the
    smallest deviation (15.5 GBq: -2.78 %)."""
    from tareplanner.physics.ordering import order_whole_vials
    custom = vial_sizes(STANDARD, 0.5, [3, 20], True)
    plan = order_whole_vials(2.18, TUESDAY_10, HALF_LIFE_H, STANDARD, custom, True, _cals, 12,
                             0.10, WorkingHours.from_texts("07:00", "19:00"))
    (before,) = [o for o in plan.alternatives if o.kind == "another day (-1 d)"]
    assert before.treatment_time == datetime(2026, 11, 30, 10, 0, tzinfo=CET)
    assert before.vials_nominal_gbq == (16.0,) and before.calibration_time == SUNDAY_22
    assert before.deviation_fraction == pytest.approx(0.0036, abs=1e-4)
