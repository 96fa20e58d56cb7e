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
