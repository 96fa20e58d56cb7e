"""Ordering and dispensing: TheraSphere vials, SIR-Spheres draw, Quirem, LSF from counts."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from tareplanner.physics.lung_shunt import lsf_planar_geometric_mean
from tareplanner.physics.ordering import (calibration_candidates, choose_vials,
                                          latest_calibration_time, vial_draw, vial_sizes,
                                          vials_needed, whole_vial_order)

NY = ZoneInfo("America/New_York")
CET = timezone(timedelta(hours=1))


def test_therasphere_calibration_is_last_sunday_noon_eastern():
    # Tuesday 1 Dec 2026 10:00 CET -> Sunday 29 Nov 2026 12:00 EST (UTC-5) = 18:00 CET.
    t = datetime(2026, 12, 1, 10, 0, tzinfo=CET)
    cal = latest_calibration_time(t, "sunday", "12:00", "America/New_York")
    assert cal == datetime(2026, 11, 29, 12, 0, tzinfo=NY)
    assert cal.utcoffset() == timedelta(hours=-5)
    # a Sunday morning treatment in New York precedes that day's calibration
    sunday_morning = datetime(2026, 11, 29, 9, 0, tzinfo=NY)
    assert latest_calibration_time(sunday_morning, "sunday", "12:00",
                                   "America/New_York") == datetime(2026, 11, 22, 12, 0, tzinfo=NY)
    # summer time: noon EDT is UTC-4
    summer = latest_calibration_time(datetime(2026, 7, 1, 12, tzinfo=timezone.utc), "sunday",
                                     "12:00", "America/New_York")
    assert summer.utcoffset() == timedelta(hours=-4) and summer.weekday() == 6


def test_calibration_candidates_respect_shelf_life():
    t = datetime(2026, 12, 1, 10, 0, tzinfo=CET)  # 40 h and 208 h after the last two Sundays
    cands = calibration_candidates(t, "sunday", "12:00", "America/New_York", 12)
    assert [c.day for c in cands] == [29, 22]
    assert len(calibration_candidates(t, "sunday", "12:00", "America/New_York", 5)) == 1


def test_whole_vial_choice_by_hand():
    # 40 h after calibration: factor 2^(-40/64.1) = 0.64887; 2.263 GBq needs 3.488 GBq nominal:
    # standard sizes -> 5 GBq vial (3.244 GBq at treatment); 0.5 GBq steps -> 3.5 GBq.
    cal = datetime(2026, 11, 29, 12, 0, tzinfo=NY)
    t = cal + timedelta(hours=40)
    standard = whole_vial_order(2.263, t, 64.1, (3, 5, 7, 10, 15, 20), cal, 12)
    assert standard.vials_nominal_gbq == (5,)
    assert standard.activity_at_treatment_gbq == pytest.approx(5 * 2 ** (-40 / 64.1))
    custom = whole_vial_order(2.263, t, 64.1, vial_sizes([3, 5], 0.5, [3, 20], True), cal, 12)
    assert custom.vials_nominal_gbq == (3.5,)
    # the vial holds exactly the prescription T1/2 * log2(A_nom / A) after calibration
    expected = cal + timedelta(hours=64.1 * __import__("math").log2(3.5 / 2.263))
    assert abs((custom.prescribed_activity_time - expected).total_seconds()) < 1


def test_choose_vials_splits_large_orders():
    assert choose_vials((3, 5, 7, 10, 15, 20), 26) == (20, 7)
    assert choose_vials((3, 5, 7, 10, 15, 20), 2.0) == (3,)
    assert vial_sizes([3, 20], 0.5, [3, 20], True)[:3] == (3.0, 3.5, 4.0)
    assert len(vial_sizes([3, 20], 0.5, [3, 20], True)) == 35


def test_sir_spheres_draw_by_hand():
    # vial 3 GBq calibrated 24 h before treatment: 3 * 2^(-24/64.1) = 2.3142 GBq;
    # 1.5 GBq is 64.82 % of the vial, i.e. 3.241 mL of its 5 mL.
    cal = datetime(2026, 12, 1, 9, 0, tzinfo=CET)
    draw = vial_draw(1.5, 3.0, 5.0, cal, cal + timedelta(hours=24), 64.1)
    assert draw.vial_activity_at_treatment_gbq == pytest.approx(2.3142, abs=1e-4)
    assert draw.fraction_of_vial == pytest.approx(0.6482, abs=1e-4)
    assert draw.volume_ml == pytest.approx(3.241, abs=1e-3)
    assert vials_needed(2.5, 2.3142) == 2
    assert vials_needed(2.3142, 2.3142) == 1


def test_planar_lsf_geometric_mean_by_hand():
    # GM lung = sqrt(100 * 400) = 200; GM liver = sqrt(1600 * 2500) = 2000; LSF = 200/2200.
    r = lsf_planar_geometric_mean(100, 400, 1600, 2500)
    assert r.lung_geometric_mean_counts == pytest.approx(200)
    assert r.lung_shunt_fraction == pytest.approx(200 / 2200)
    with pytest.raises(ValueError, match="lung_anterior_counts"):
        lsf_planar_geometric_mean(-1, 400, 1600, 2500)
