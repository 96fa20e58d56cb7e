"""The ordering part of a plan record (planning._ordering) for each way a product is supplied,
with explicit activities so that every figure is a hand calculation: a SIR-Spheres vial drawn
from (decay of the vial to the treatment time, fraction, volume, spheres, vials needed, the
use window), QuiremSpheres calibrated for the treatment (sphere counts), and a plan without a
treatment time. Each test names the bug it catches.

Y-90 half-life 64.1 h (ICRP 107; SIR-Spheres product data). SIR-Spheres vial 3.0 GBq in 5 mL,
44 million spheres, used within 24 h of calibration (Sirtex product data,
data/products.json). QuiremSpheres 200-400 Bq per sphere (Cardiovasc Intervent Radiol
2019;42(9):1240, Table 4)."""

import math

import pytest

from tareplanner.planning import plan_case
from tareplanner.records.case import parse_case

T = "2026-12-01T10:00:00+01:00"


def _case(product, activities, treatment_time=T, **kw):
    doc = {"schema": "tareplanner.case/1", "product": product, "method": "partition",
           "tissue_density_g_per_ml": 1.0, "lung_shunt_fraction": 0.05,
           "lsf_method": "scout-spect", "lung_mass_kg": 1.0,
           "whole_liver_volume_ml": 1500, "whole_liver_tumour_volume_ml": 100,
           "positions": [
               {"name": "right", "normal_volume_ml": 900,
                "tumours": [{"name": "T1", "volume_ml": 80, "tnr": 3}],
                "goal": {"activity_gbq": activities[0]}},
               {"name": "left", "normal_volume_ml": 500,
                "tumours": [{"name": "T2", "volume_ml": 20, "tnr": 2}],
                "goal": {"activity_gbq": activities[1]}}]}
    if treatment_time is not None:
        doc["treatment_time"] = treatment_time
    doc.update(kw)
    return doc


def _plan(doc):
    record = plan_case(parse_case(doc))
    return record, record["ordering"], [w["code"] for w in record["warnings"]]


def _y90(a, hours):
    return a * math.exp(-math.log(2) * hours / 64.1)


def test_sir_spheres_vial_draw_by_hand():
    """Bugs caught: the vial's activity not decayed from its calibration to the treatment (or
    decayed the wrong way), the fraction or volume of another site, the sphere count of the
    whole vial, the total not set. Calibrated 16 h before the treatment: the vial holds
    3.0 exp(-ln2 x 16 / 64.1) = 2.52337 GBq; right 1.2 GBq is 1.2 / 2.52337 = 0.475554 of
    it, 2.37777 mL of 5 mL, 0.475554 x 44e6 = 20.924 million spheres; left 0.8 GBq,
    0.317036, 1.58518 mL; 2.0 GBq in total fit one vial."""
    record, order, codes = _plan(_case("sir-spheres", (1.2, 0.8), ordering={
        "vial_calibration_time": "2026-11-30T18:00:00+01:00"}))
    in_vial = _y90(3.0, 16)
    assert in_vial == pytest.approx(2.52337, abs=1e-5)
    assert order["kind"] == "vial-draw"
    assert order["source"].startswith("Sirtex product data")
    assert order["vial_activity_gbq"] == 3.0
    assert order["vial_calibration_time"] == "2026-11-30T18:00:00+01:00"
    for entry, activity in zip(order["positions"], (1.2, 0.8)):
        assert entry["activity_gbq"] == activity
        assert entry["vial_activity_at_treatment_gbq"] == pytest.approx(in_vial, rel=1e-9)
        assert entry["fraction_of_vial"] == pytest.approx(activity / in_vial, rel=1e-9)
        assert entry["volume_ml"] == pytest.approx(5 * activity / in_vial, rel=1e-9)
        assert entry["spheres_estimate"] == pytest.approx(44e6 * activity / in_vial, rel=1e-9)
    assert [e["name"] for e in order["positions"]] == ["right", "left"]
    assert order["positions"][0]["volume_ml"] == pytest.approx(2.37777, abs=1e-5)
    assert order["vials_needed"] == 1
    assert order["total_activity_gbq"] == pytest.approx(2.0)
    assert "vial-calibration-assumed" not in codes and "multiple-vials" not in codes
    assert "outside-shelf-life" not in codes and "no-treatment-time" not in codes


def test_sir_spheres_total_beyond_one_vial_needs_two():
    """Bug caught: a total above what one decayed vial holds ordered as one vial, without a
    warning. 2.0 + 1.0 = 3.0 GBq > 2.52337 GBq in the vial 16 h after calibration: 2 vials."""
    _, order, codes = _plan(_case("sir-spheres", (2.0, 1.0), ordering={
        "vial_calibration_time": "2026-11-30T18:00:00+01:00"}))
    assert order["vials_needed"] == 2
    assert "multiple-vials" in codes


def test_sir_spheres_vial_without_calibration_time_is_assumed_full():
    """Bug caught: a vial without a calibration time decayed from another moment, or
    assumed without a warning. It is taken to hold its nominal 3.0 GBq at the treatment:
    right 1.2 GBq is 0.4 of it, 2.0 mL."""
    _, order, codes = _plan(_case("sir-spheres", (1.2, 0.8)))
    assert order["vial_calibration_time"] == T
    assert order["positions"][0]["vial_activity_at_treatment_gbq"] == pytest.approx(3.0)
    assert order["positions"][0]["volume_ml"] == pytest.approx(2.0)
    assert "vial-calibration-assumed" in codes
    assert "outside-shelf-life" not in codes


@pytest.mark.parametrize("calibration, late", [
    ("2026-11-30T10:00:00+01:00", False),          # 24 h: the last moment of the window
    ("2026-11-30T09:59:00+01:00", True),           # 24 h 1 min
    ("2026-11-30T10:01:00+01:00", False)])
def test_sir_spheres_use_window_edge(calibration, late):
    """Bug caught: the 24 h use window after calibration (Sirtex product data) counted with
    >= (the last moment refused) or not checked."""
    _, _, codes = _plan(_case("sir-spheres", (0.5, 0.5),
                              ordering={"vial_calibration_time": calibration}))
    assert ("outside-shelf-life" in codes) is late


def test_quiremspheres_are_calibrated_for_the_treatment():
    """Bugs caught: the sphere count range inverted or of another activity, the calibration
    time not the treatment time. Right 1.2 GBq at 200-400 Bq per sphere: 1.2e9 / 400 = 3.0
    million to 1.2e9 / 200 = 6.0 million spheres."""
    _, order, codes = _plan(_case("quiremspheres", (1.2, 0.8)))
    assert order["kind"] == "patient-specific"
    right, left = order["positions"]
    assert right == {"name": "right", "activity_gbq": 1.2, "calibration_time": T,
                     "spheres_estimate": [pytest.approx(3.0e6), pytest.approx(6.0e6)]}
    assert left["spheres_estimate"] == [pytest.approx(2.0e6), pytest.approx(4.0e6)]
    assert order["total_activity_gbq"] == pytest.approx(2.0)
    assert "no-treatment-time" not in codes


def test_without_a_treatment_time_no_order_is_made():
    """Bug caught: a vial decayed to some assumed time when the case holds none, or the plan
    silent about it."""
    _, order, codes = _plan(_case("sir-spheres", (1.2, 0.8), treatment_time=None))
    assert order == {"kind": "vial-draw", "source": order["source"],
                     "positions": [{"name": "right", "activity_gbq": 1.2},
                                   {"name": "left", "activity_gbq": 0.8}]}
    assert "no-treatment-time" in codes


def test_therasphere_whole_vial_record_by_hand(base_case):
    """Bugs caught: the whole-vial entry of a plan with the vial's activity at another time,
    the deviation against another activity, the moment the vial holds the prescription
    dropped or shifted, the sphere count of the prescription instead of the vial, the
    custom sizes or the site's rules not recorded. The shared case: 2.26298 GBq
    (Testing/test_planning.py), treatment Tuesday 2026-12-01 10:00 +01:00 = 09:00 UTC.
    TheraSphere package insert: vials calibrated Sunday noon Eastern Time (2026-11-29
    12:00 -05:00 = 17:00 UTC, 40 h before), custom activities 3-20 GBq in 0.5 GBq steps.
    A 3.5 GBq vial holds 3.5 x 2^(-40 / 64.1) = 2.27100 GBq at 10:00 (+0.35 %, within the
    10 % default tolerance), and exactly 2.26298 GBq 64.1 / ln 2 x ln(3.5 / 2.26298)
    = 40.32 h after calibration: 10:19 +01:00; 1.667 days after calibration; at 1250-2500
    Bq per sphere (data/products.json) 2.27100e9 / 2500 = 0.908 to 1.817 million spheres."""
    record = plan_case(parse_case(base_case))
    order = record["ordering"]
    (entry,) = order["positions"]
    activity = 2.26298
    in_vial = 3.5 * 2 ** (-40 / 64.1)
    assert in_vial == pytest.approx(2.27100, abs=1e-5)
    assert entry["activity_gbq"] == pytest.approx(activity, abs=1e-5)
    assert (entry["status"], entry["within_tolerance"]) == ("within-tolerance", True)
    assert (entry["vials_nominal_gbq"], entry["custom_activity"]) == ([3.5], True)
    assert entry["calibration_time"] == "2026-11-29T12:00:00-05:00"
    assert entry["activity_at_treatment_gbq"] == pytest.approx(in_vial, rel=1e-9)
    assert entry["deviation_fraction"] == pytest.approx(in_vial / activity - 1, abs=1e-5)
    assert entry["excess_fraction"] == entry["deviation_fraction"]
    hours = 64.1 / math.log(2) * math.log(3.5 / activity)
    assert hours == pytest.approx(40.32, abs=0.01)
    assert entry["prescribed_activity_time"] == "2026-12-01T10:19+01:00"
    assert entry["days_after_calibration"] == pytest.approx(40 / 24)
    assert entry["spheres_estimate"] == [pytest.approx(in_vial * 1e9 / 2500),
                                         pytest.approx(in_vial * 1e9 / 1250)]
    assert entry["alternatives"] and all(a["vials_nominal_gbq"] for a in entry["alternatives"])
    assert order["vial_sizes_gbq"] == [3 + 0.5 * i for i in range(35)]
    assert order["custom_vial_step_gbq"] == 0.5
    assert order["activity_tolerance_fraction"] == 0.1
    assert order["working_hours"] == "07:00-19:00"
    assert order["rules_source"].startswith("TAREPlanner defaults")
    assert order["total_activity_gbq"] == pytest.approx(activity, abs=1e-5)
    codes = [w["code"] for w in record["warnings"]]
    assert "treatment-outside-working-hours" not in codes and "no-vial-fits" not in codes


def test_therasphere_standard_vials_only(base_case):
    """Bugs caught: the custom sizes offered when the case asks for the standard vials
    (3, 5, 7, 10, 15, 20 GBq, TheraSphere package insert), or a moment for the prescription
    given that falls outside the working hours. 2.26298 GBq 40 h after calibration needs
    3.4876 GBq nominal: this week's 3 GBq vial holds 1.947 GBq (-14 %), the 5 GBq one 3.244
    GBq (+43 %); last week's 20 GBq vial (calibrated 2026-11-22, 208 h before, within the
    12-day shelf life) holds 20 x 2^(-208 / 64.1) = 2.10964 GBq (-6.78 %, within 10 %). It
    held exactly 2.26298 GBq 64.1 / ln 2 x ln(2.26298 / 2.10964) = 6.5 h before the
    treatment, at 03:30 +01:00, outside 07:00-19:00: no such moment is given."""
    base_case["ordering"] = {"therasphere_vials": "standard"}
    record = plan_case(parse_case(base_case))
    order = record["ordering"]
    assert order["vial_sizes_gbq"] == [3.0, 5.0, 7.0, 10.0, 15.0, 20.0]
    (entry,) = order["positions"]
    in_vial = 20 * 2 ** (-208 / 64.1)
    assert in_vial == pytest.approx(2.10964, abs=1e-5)
    assert (entry["vials_nominal_gbq"], entry["custom_activity"]) == ([20.0], False)
    assert entry["calibration_time"] == "2026-11-22T12:00:00-05:00"
    assert entry["activity_at_treatment_gbq"] == pytest.approx(in_vial, rel=1e-9)
    assert entry["deviation_fraction"] == pytest.approx(in_vial / 2.26298 - 1, abs=1e-5)
    assert entry["days_after_calibration"] == pytest.approx(208 / 24)
    assert entry["prescribed_activity_time"] is None


def test_therasphere_treatment_outside_working_hours(base_case):
    """Bugs caught: a treatment time outside the working hours (07:00-19:00 by default, both
    ends inside) ordered for without a warning; the alternative offered instead shown in
    another time zone, without its vial or with the wrong deviation. At 19:01 +01:00 no vial
    is proposed; the first alternative is a 4 GBq custom vial of the same calibration
    (Sunday 2026-11-29 12:00 -05:00) at 19:00 +01:00, 49 h after it: 4 x 2^(-49 / 64.1)
    = 2.35474 GBq, +4.05 % of 2.26298 GBq, 2.042 days. The nearest order at 19:01 itself is
    3.5 + 20 GBq of last week's calibration (2026-11-22 12:00 -05:00, 217.017 h before):
    23.5 x 2^(-217.017 / 64.1) = 2.24855 GBq, -0.64 %."""
    base_case["treatment_time"] = "2026-12-01T19:01:00+01:00"
    record = plan_case(parse_case(base_case))
    codes = [w["code"] for w in record["warnings"]]
    assert "treatment-outside-working-hours" in codes
    (entry,) = record["ordering"]["positions"]
    assert entry["status"] == "no-vial-within-tolerance"
    in_vial = 4 * 2 ** (-49 / 64.1)
    assert in_vial == pytest.approx(2.35474, abs=1e-5)
    assert entry["alternatives"][0] == {
        "kind": "another time", "vials_nominal_gbq": [4.0], "custom_activity": True,
        "calibration_time": "2026-11-29T12:00:00-05:00",
        "treatment_time": "2026-12-01T19:00+01:00",
        "activity_at_treatment_gbq": pytest.approx(in_vial, rel=1e-9),
        "deviation_fraction": pytest.approx(in_vial / 2.26298 - 1, abs=1e-5),
        "days_after_calibration": pytest.approx(49 / 24)}
    (message,) = [w["message"] for w in record["warnings"] if w["code"] == "no-vial-fits"]
    assert message.startswith("right hepatic: NO VIAL FITS: no vial holds 2.263 GBq within "
                              "±10 % at 2026-12-01T19:01+01:00 inside working hours "
                              "07:00-19:00; nearest 3.5 + 20 GBq (-0.6%). ")
    assert message.endswith("Order instead: 4 GBq vial calibrated 2026-11-29, at "
                            "2026-12-01T19:00+01:00 (+4.1%, another time)")
    base_case["treatment_time"] = "2026-12-01T19:00:00+01:00"
    record = plan_case(parse_case(base_case))
    assert "treatment-outside-working-hours" not in [w["code"] for w in record["warnings"]]
