"""The whole-vial order of a plan (TheraSphere; tareplanner.planning._whole_vial_ordering) at
its edges, on activities written here by hand instead of a solved plan: a position that gets
no activity, a small and a large one, two vials, no vial and no alternative that fits, the
treatment outside the working hours, and the moment the vial holds the prescription exactly
(given only inside the working hours and the vial's shelf life, both ends included).

Product data (TheraSphere package insert, as quoted in data/products.json): dose vials of 3,
5, 7, 10, 15 and 20 GBq and custom activities from 3 to 20 GBq in 0.5 GBq steps, calibrated
at noon Eastern Time on Sundays (12:00 -05:00 = 17:00 UTC in November and December), 12-day
shelf life from calibration. Y-90 half-life 64.1 h (ICRP 107). The site's ordering rules are
written here: the vial within +/- 10 % of the prescription, treatment 07:00-19:00.
Each test names the bug it catches.
"""

import copy
import dataclasses

import pytest

from tareplanner import catalogue
from tareplanner.physics.solver import PositionSolution, Solution
from tareplanner.planning import _whole_vial_ordering, plan_case
from tareplanner.records.case import parse_case

from conftest import BASE_CASE

HALF_LIFE_H = 64.1
RULES = {"activity_tolerance_fraction": 0.1,
         "working_hours": {"start": "07:00", "end": "19:00"},
         "source": "the site's ordering rules"}
TUESDAY = "2026-12-01T10:00:00+01:00"  # 09:00 UTC: 40 h after Sunday 2026-11-29 17:00 UTC


def _order(activities, treatment_time=TUESDAY, rules=RULES, vials="custom", product=None):
    """The ordering record and warnings for positions given as (name, activity_gbq)."""
    doc = copy.deepcopy(BASE_CASE)
    doc["treatment_time"] = treatment_time
    doc["ordering"] = {"therasphere_vials": vials}
    case = parse_case(doc)
    positions = tuple(PositionSolution(name, a, 0.0, 0.0, (), "goal", ())
                      for name, a in activities)
    solution = Solution(positions, sum(a for _, a in activities), 0.0, 0.0, 1.0, ())
    warnings, record = [], {"positions": []}
    _whole_vial_ordering(case, product or catalogue.product("therasphere"), solution,
                         warnings, record, HALF_LIFE_H, rules)
    return record, [(w.code, w.message) for w in warnings]


def test_a_position_without_activity_gets_no_vial_and_the_next_one_still_does():
    """Bugs caught: a position of 0 GBq (no activity within the limits) written with another
    name, activity or vial list, or ending the order so that the positions after it get no
    vial; a small activity (0.8 GBq, below 1 GBq: a small segment) taken for no activity.
    0.8 GBq on Tuesday 10:00 +01:00: this week's smallest vial (3 GBq, 40 h) holds
    3 x 2^(-40/64.1) = 1.946 GBq (+143 %); last week's calibration (Sunday 2026-11-22
    17:00 UTC, 208 h before) gives 2^(-208/64.1) = 0.105482 per GBq: 7.5 GBq holds 0.79112 GBq
    (-1.1 %, within 10 %; 7.0 GBq holds 0.7384, -7.7 %; 8.0 GBq 0.8439, +5.5 %): one 7.5 GBq
    custom vial of 2026-11-22, no warning of several vials."""
    record, warnings = _order([("segment 2", 0.0), ("segment 3", 0.8)])
    zero, small = record["positions"]
    assert zero == {"name": "segment 2", "activity_gbq": 0.0, "vials": []}
    per_gbq = 2 ** (-208 / 64.1)
    assert per_gbq == pytest.approx(0.105482, abs=1e-6)
    assert small["name"] == "segment 3"
    assert (small["status"], small["within_tolerance"]) == ("within-tolerance", True)
    assert small["vials_nominal_gbq"] == [7.5]
    assert small["calibration_time"] == "2026-11-22T12:00:00-05:00"
    assert small["activity_at_treatment_gbq"] == pytest.approx(7.5 * per_gbq, rel=1e-9)
    assert small["activity_at_treatment_gbq"] == pytest.approx(0.79112, abs=1e-5)
    assert warnings == []


def test_two_vials_are_named_in_a_warning():
    """Bugs caught: an order of two vials given without the warning (counted from three
    vials), the warning's code or text lost or garbled. 22 GBq on Tuesday 10:00 +01:00: the
    largest vial of this week holds 20 x 2^(-40/64.1) = 12.97 GBq (-41 %); two vials of 34 GBq
    in all hold 34 x 2^(-40/64.1) = 22.0612 GBq (+0.28 %)."""
    record, warnings = _order([("segment 4", 22.0)])
    (entry,) = record["positions"]
    assert len(entry["vials_nominal_gbq"]) == 2
    assert sum(entry["vials_nominal_gbq"]) == 34.0
    assert entry["activity_at_treatment_gbq"] == pytest.approx(22.0612, abs=1e-4)
    assert warnings == [("multiple-vials", "segment 4: needs 2 vials")]


def test_one_vial_is_not_several():
    """Bug caught: the warning of several vials given for one vial (``>= 1``). The 0.8 GBq
    position above and the 2.26298 GBq one of the shared case (one 3.5 GBq vial,
    Testing/test_plan_ordering_record.py) give no warning."""
    for activity in (0.8, 2.26298):
        record, warnings = _order([("right", activity)])
        assert len(record["positions"][0]["vials_nominal_gbq"]) == 1
        assert [code for code, _ in warnings] == []


def test_no_vial_and_no_alternative_fit():
    """Bug caught: the advice when nothing fits lost or garbled. 30 GBq on Tuesday 10:00
    +01:00: two 20 GBq vials of this week hold 40 x 2^(-40/64.1) = 25.954 GBq (-13.5 %), the
    most any order holds; the same time a day earlier 40 x 2^(-16/64.1) = 33.64 GBq (+12 %)
    needs two vials, which the other days do not offer; no single vial ever held 30 GBq."""
    record, warnings = _order([("segment 5", 30.0)])
    (entry,) = record["positions"]
    assert entry["status"] == "no-vial-within-tolerance"
    assert entry["vials_nominal_gbq"] == [20.0, 20.0]
    assert 40 * 2 ** (-40 / 64.1) == pytest.approx(25.954, abs=1e-3)
    assert warnings == [("no-vial-fits",
                         "segment 5: NO VIAL FITS: no vial holds 30.000 GBq within ±10 % at "
                         "2026-12-01T10:00+01:00 inside working hours 07:00-19:00; nearest "
                         "20 + 20 GBq (-13.5%). No alternative fits either: change the "
                         "treatment time or the prescription")]


def test_treatment_outside_working_hours_message_word_for_word():
    """Bug caught: the warning of a treatment outside the working hours emptied or its advice
    garbled. 19:01 +01:00 is after 19:00."""
    _, warnings = _order([("right", 2.26298)], treatment_time="2026-12-01T19:01:00+01:00")
    assert warnings[0] == (
        "treatment-outside-working-hours",
        "the treatment time 2026-12-01T19:01+01:00 is outside the working hours 07:00-19:00 "
        "(the site's ordering rules): no vial is proposed for it; see the alternatives")


def test_prescribed_time_checked_in_the_treatments_time_zone(computer_in_utc):
    """Bug caught: the working hours of the moment the vial holds the prescription checked in
    the machine's time zone instead of the treatment's. A 3 GBq vial of Sunday 2026-11-29
    17:00 UTC holds A = 3 x 2^(-37.755/64.1) GBq 37.755 h later, at Tuesday 06:45:18 UTC =
    07:45 +01:00: inside 07:00-19:00 in the treatment's zone (outside them in UTC). At the
    treatment (10:00 +01:00, 40 h) it holds 3 x 2^(-40/64.1) = A x 2^(-2.245/64.1), -2.4 %;
    3.5 GBq would be +13.8 %."""
    activity = 3 * 2 ** (-37.755 / 64.1)
    record, _ = _order([("right", activity)])
    (entry,) = record["positions"]
    assert (entry["vials_nominal_gbq"], entry["calibration_time"]) == (
        [3.0], "2026-11-29T12:00:00-05:00")
    assert entry["prescribed_activity_time"] == "2026-12-01T07:45+01:00"


def test_prescribed_time_at_the_calibration_itself():
    """Bugs caught: the shelf life counted from after the calibration (the moment of
    calibration itself refused) or from a day after it. 3.0 GBq prescribed at Sunday
    2026-11-29 17:00 -05:00, five hours after the calibration at 12:00 -05:00: the 3 GBq
    vial holds 3 x 2^(-5/64.1) = 2.8406 GBq (-5.3 %; 3.5 GBq would be +10.5 %) and held
    exactly 3.0 GBq at its calibration, 12:00 -05:00, inside the working hours."""
    record, _ = _order([("right", 3.0)], treatment_time="2026-11-29T17:00:00-05:00")
    (entry,) = record["positions"]
    assert entry["vials_nominal_gbq"] == [3.0]
    assert entry["deviation_fraction"] == pytest.approx(2 ** (-5 / 64.1) - 1, abs=1e-12)
    assert entry["prescribed_activity_time"] == "2026-11-29T12:00-05:00"


def test_prescribed_time_at_the_end_of_the_shelf_life():
    """Bug caught: the last moment of the 12-day shelf life refused (``<`` for ``<=``). A site
    tolerance of 0.1 % and A = 20 x 2^(-288/64.1) = 0.88820 GBq on Friday 2026-12-11 12:00
    -05:00, 288 h = 12 days after the calibration of 2026-11-29: only the 20 GBq vial of that
    calibration holds it (this week's calibration, 120 h before, needs
    A / 2^(-120/64.1) = 3.255 GBq nominal: 3.0 is -7.8 %, 3.5 is +7.5 %); it held exactly A
    at 12:00 -05:00, the end of its shelf life."""
    activity = 20 * 2 ** (-288 / 64.1)
    assert activity == pytest.approx(0.88820, abs=1e-5)
    rules = dict(RULES, activity_tolerance_fraction=0.001)
    record, _ = _order([("right", activity)], treatment_time="2026-12-11T12:00:00-05:00",
                       rules=rules)
    (entry,) = record["positions"]
    assert (entry["vials_nominal_gbq"], entry["calibration_time"]) == (
        [20.0], "2026-11-29T12:00:00-05:00")
    assert entry["days_after_calibration"] == pytest.approx(12.0)
    assert entry["prescribed_activity_time"] == "2026-12-11T12:00-05:00"


def test_a_whole_vial_product_without_custom_activities_offers_its_standard_sizes():
    """Bug caught: the custom sizes built from nothing instead of the standard sizes when the
    product offers no custom activities (no step or range in its supply): the order fails or
    offers sizes that do not exist. TheraSphere without its custom activities, a case asking
    for custom vials, 2.26298 GBq on Tuesday 10:00 +01:00: the standard sizes 3, 5, 7, 10, 15
    and 20 GBq; this week's 3 GBq vial holds 3 x 2^(-40/64.1) = 1.946 GBq (-14 %), 5 GBq
    3.243 GBq (+43 %); last week's 20 GBq vial (208 h) 20 x 2^(-208/64.1) = 2.10964 GBq
    (-6.8 %, within 10 %)."""
    therasphere = catalogue.product("therasphere")
    supply = {k: v for k, v in therasphere.supply.items()
              if k not in ("custom_vial_step_gbq", "custom_vial_range_gbq")}
    record, _ = _order([("right", 2.26298)],
                       product=dataclasses.replace(therasphere, supply=supply))
    assert record["vial_sizes_gbq"] == [3.0, 5.0, 7.0, 10.0, 15.0, 20.0]
    (entry,) = record["positions"]
    assert (entry["vials_nominal_gbq"], entry["custom_activity"]) == ([20.0], False)
    assert entry["calibration_time"] == "2026-11-22T12:00:00-05:00"
    assert entry["activity_at_treatment_gbq"] == pytest.approx(2.10964, abs=1e-5)


def test_the_sites_ordering_rules_reach_the_plan():
    """Bug caught: the site's ordering rules (tolerance, working hours) not passed on to the
    order of a plan, or recorded without the site's name. A site at +/- 2 % and 08:00-17:00:
    the shared case's 2.26298 GBq at Tuesday 10:00 +01:00 is one 3.5 GBq vial of Sunday
    (3.5 x 2^(-40/64.1) = 2.27100 GBq, +0.35 %, within 2 %)."""
    site = catalogue.validate_site_limits({
        "schema": "tareplanner.site-limits/1", "site": "Test Hospital", "products": {},
        "ordering": {"activity_tolerance_fraction": 0.02,
                     "working_hours": {"start": "08:00", "end": "17:00"}}})
    record = plan_case(parse_case(copy.deepcopy(BASE_CASE)), site, "Test Hospital")
    order = record["ordering"]
    assert order["activity_tolerance_fraction"] == 0.02
    assert order["working_hours"] == "08:00-17:00"
    assert order["rules_source"] == "site limits: Test Hospital"
    (entry,) = order["positions"]
    assert (entry["vials_nominal_gbq"], entry["within_tolerance"]) == ([3.5], True)
