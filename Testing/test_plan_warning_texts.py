"""Warnings of the plan (tareplanner.planning) checked on inputs written here by hand: the
probable exceedance of a limit at its 5 % edge, a plan without a treatment time, and the
clinical warnings word for word (tareplanner.planning._clinical_warnings, on a solution
written here: the warnings depend on its figures, not on how they were solved). Each test
names the bug it catches."""

import copy

import pytest

from tareplanner import catalogue
from tareplanner.physics.solver import PositionSolution, Solution, Violation
from tareplanner.planning import _clinical_warnings, _ordering, _uncertainty_warnings
from tareplanner.records.case import parse_case

from conftest import BASE_CASE


def _uncertainty(probability):
    """An uncertainty record as plan_uncertainty writes it: the lung limit of 30 Gy exceeded
    with ``probability``; the lung dose's 95 % interval 24.04-31.96 Gy."""
    return {"coverage": 0.95,
            "figures": {"lung_gy": {"low": 24.04, "high": 31.96}},
            "exceedance": {"lung-limit": {"probability": probability, "limit_gy": 30.0,
                                          "figure": "lung_gy"}}}


@pytest.mark.parametrize("probability, warned", [(0.05, False), (0.0501, True)])
def test_exceedance_warning_above_five_percent(probability, warned):
    """Bug caught: a limit exceeded with a probability of exactly 5 % warned of (``>=`` for
    ``>``): the warning is for a probability above 5 %."""
    warnings = [(w.code, w.message) for w in _uncertainty_warnings(_uncertainty(probability))]
    expected = [("limit-exceedance-probable",
                 "lung-limit: exceeded with probability 5% at the planned activities (limit "
                 "30 Gy, 95% interval 24.0-32.0 Gy)")]
    assert warnings == (expected if warned else [])


def test_no_treatment_time_is_a_warning_word_for_word():
    """Bugs caught: a plan without a treatment time ordering vials decayed to some assumed
    moment, or its warning emptied: the activities are those at administration, with no
    decay and no vial calculation."""
    doc = copy.deepcopy(BASE_CASE)
    del doc["treatment_time"]
    product = catalogue.product("therasphere")
    solution = Solution((PositionSolution("right hepatic", 2.0, 0.0, 0.0, (), "goal", ()),),
                        2.0, 0.0, 0.0, 1.0, ())
    warnings = []
    record = _ordering(parse_case(doc), product, catalogue.nuclide("Y-90"), solution, warnings)
    assert record["positions"] == [{"name": "right hepatic", "activity_gbq": 2.0}]
    assert [(w.code, w.message) for w in warnings] == [(
        "no-treatment-time", "no treatment_time: activities are at administration, no decay "
        "or vial calculation was made")]


def _clinical_case():
    """TheraSphere (tumour target 205 Gy minimum, EANM 2022 Table 2 HCC), LSF 12 % of an
    unspecified method; 'right' (400 mL normal liver, T1 100 mL at TNR 0.8) and 'tiny'
    (8 mL, no tumour); whole liver 550 mL with 100 mL of tumour."""
    doc = copy.deepcopy(BASE_CASE)
    doc.update(lung_shunt_fraction=0.12, lsf_method="unspecified",
               whole_liver_volume_ml=550, whole_liver_tumour_volume_ml=100)
    doc["positions"] = [
        {"name": "right", "normal_volume_ml": 400,
         "tumours": [{"name": "T1", "volume_ml": 100, "tnr": 0.8}],
         "goal": {"activity_gbq": 1.0}},
        {"name": "tiny", "normal_volume_ml": 8, "tumours": [], "goal": {"activity_gbq": 0.1}}]
    return parse_case(doc)


def test_clinical_warnings_word_for_word():
    """Bugs caught: any of the plan's clinical warnings with its text emptied, garbled or
    naming another position, tumour, figure or source: the LSF above 10 % and of an
    unrecorded method, a TNR below 1, a tumour below the product's target, a small perfused
    volume, an activity scaled by a shared limit (factor 0.741, the lung limit's source as
    given here), a position's and the plan's violations (dose at one decimal), no activity
    in a position, an implausible whole liver (550 mL, outside 600-5000 mL)."""
    right = PositionSolution("right", 1.0, 80.0, 60.0, (150.0,), "lung-limit",
                             (Violation("normal-liver-limit", 80.04, 70.0),))
    tiny = PositionSolution("tiny", 0.0, 0.0, 0.0, (), "lung-limit", ())
    solution = Solution((right, tiny), 1.0, 30.0, 30.0, 0.741,
                        (Violation("lung-cumulative-limit", 52.36, 50.0),), scale_factor=0.741)
    sources = {"lung-limit": "site limits: Test Hospital",
               "normal-liver-limit": "site normal-liver limit",
               "lung-cumulative-limit": "TheraSphere package insert"}
    warnings = _clinical_warnings(_clinical_case(), catalogue.product("therasphere"),
                                  solution, "partition", sources)
    assert [(w.code, w.message) for w in warnings] == [
        ("lsf-high", "lung shunt fraction 12.0% is above 10%: check lung dose and the LSF "
                     "method (unspecified)"),
        ("lsf-method-unspecified", "the LSF method is not recorded; planar LSF is typically "
                                   "several times SPECT LSF (Thomas et al., JVIR 2025)"),
        ("tnr-below-1", "right/T1: TNR 0.8 < 1, the tumour takes up less than normal liver"),
        ("tumour-below-target", "right/T1: tumour dose 150 Gy is below the therasphere target "
                                "of 205 Gy"),
        ("lung-limit-scaled", "right: activity scaled by 0.741 to respect the lung limit "
                              "(site limits: Test Hospital)"),
        ("limit-exceeded", "right: normal-liver-limit exceeded (80.0 Gy > 70 Gy; site "
                           "normal-liver limit)"),
        ("perfused-volume-small", "tiny: perfused volume 8 mL is below 10 mL"),
        ("lung-limit-scaled", "tiny: activity scaled by 0.741 to respect the lung limit "
                              "(site limits: Test Hospital)"),
        ("zero-activity", "tiny: no activity can be given within the limits"),
        ("limit-exceeded", "lung-cumulative-limit exceeded (52.4 Gy > 50 Gy; TheraSphere "
                           "package insert)"),
        ("liver-volume-implausible", "whole liver volume 550 mL is outside 600-5000 mL")]


def test_single_compartment_warning_only_with_tumours():
    """Bug caught: the single-compartment warning given for the partition model, or its
    text garbled."""
    solution = Solution((PositionSolution("right", 1.0, 50.0, 50.0, (50.0,), "goal", ()),
                         PositionSolution("tiny", 0.1, 50.0, 50.0, (), "goal", ())),
                        1.1, 5.0, 5.0, 1.0, ())
    codes = {}
    for model in ("single-compartment", "partition"):
        warnings = _clinical_warnings(_clinical_case(), catalogue.product("therasphere"),
                                      solution, model, {})
        codes[model] = [(w.code, w.message) for w in warnings
                        if w.code == "single-compartment-tumour"]
    assert codes == {"single-compartment": [(
        "single-compartment-tumour",
        "single-compartment model: tumour doses equal the perfused mean dose")],
        "partition": []}


def _sir_order(activities, ordering=None):
    doc = copy.deepcopy(BASE_CASE)
    doc["product"] = "sir-spheres"
    if ordering:
        doc["ordering"] = ordering
    positions = tuple(PositionSolution(name, a, 0.0, 0.0, (), "goal", ())
                      for name, a in activities)
    solution = Solution(positions, sum(a for _, a in activities), 0.0, 0.0, 1.0, ())
    warnings = []
    record = _ordering(parse_case(doc), catalogue.product("sir-spheres"),
                       catalogue.nuclide("Y-90"), solution, warnings)
    return record, [(w.code, w.message) for w in warnings]


def test_vial_without_calibration_time_warning_word_for_word():
    """Bug caught: the assumption of a full vial at the treatment (no calibration time given)
    made with its warning emptied or garbled."""
    _, warnings = _sir_order([("right hepatic", 1.2)])
    assert warnings == [("vial-calibration-assumed",
                         "ordering.vial_calibration_time not given: the vial is assumed to "
                         "hold its nominal activity at treatment time")]


def test_late_and_several_vials_warnings_word_for_word():
    """Bugs caught: the warnings of a vial used beyond its 24 h after calibration (Sirtex
    product data) and of several vials emptied, garbled or with another figure. Calibrated
    25 h before the treatment (2026-11-30 09:00 +01:00), the 3 GBq vial holds
    3 x 2^(-25/64.1) = 2.2938 GBq: 2.0 + 1.0 = 3.0 GBq needs 2 vials."""
    record, warnings = _sir_order([("right", 2.0), ("left", 1.0)],
                                  {"vial_calibration_time": "2026-11-30T09:00:00+01:00"})
    assert record["positions"][0]["vial_activity_at_treatment_gbq"] == pytest.approx(
        3 * 2 ** (-25 / 64.1), rel=1e-9)
    assert record["vials_needed"] == 2
    assert warnings == [
        ("outside-shelf-life", "treatment is 25.0 h after vial calibration, beyond 24 h"),
        ("multiple-vials", "total activity needs 2 vials")]


def test_use_window_counted_in_hours_of_3600_seconds():
    """Bug caught: the hours since the vial's calibration counted with another number of
    seconds per hour, which moves the end of the 24 h window: 5 s beyond it
    (calibration 2026-11-30 09:59:55 +01:00, treatment 2026-12-01 10:00 +01:00) is
    86405 / 3600 = 24.0014 h, beyond 24 h (86405 / 3601 would be 23.995 h)."""
    _, warnings = _sir_order([("right hepatic", 1.2)],
                             {"vial_calibration_time": "2026-11-30T09:59:55+01:00"})
    assert warnings == [("outside-shelf-life",
                         "treatment is 24.0 h after vial calibration, beyond 24 h")]


def test_perfused_volume_at_the_round_off_allowance_is_not_warned_of():
    """Bug caught: territories adding up to exactly the whole liver plus its 0.01 % round-off
    allowance (1800 x 1.0001 = 1800.18 mL) warned of as overlapping (``>=`` for ``>``)."""
    doc = copy.deepcopy(BASE_CASE)
    edge = 1800 * 1.0001
    assert edge == pytest.approx(1800.18, abs=1e-9)
    doc["positions"] = [{"name": "whole", "normal_volume_ml": edge, "tumours": [],
                         "goal": {"activity_gbq": 1.0}}]
    doc["whole_liver_tumour_volume_ml"] = 0
    solution = Solution((PositionSolution("whole", 1.0, 20.0, 20.0, (), "goal", ()),),
                        1.0, 3.0, 3.0, 1.0, ())
    warnings = _clinical_warnings(parse_case(doc), catalogue.product("therasphere"),
                                  solution, "partition", {})
    assert "perfused-exceeds-liver" not in [w.code for w in warnings]


def test_tumours_at_the_round_off_allowance_are_not_warned_of():
    """Bug caught: positions' tumours adding up to exactly the case's whole-liver tumour
    volume plus its 0.01 % allowance (100 x 1.0001 = 100.01 mL) warned of as inconsistent
    (``>=`` for ``>``)."""
    doc = copy.deepcopy(BASE_CASE)
    edge = 100 * 1.0001
    assert edge == pytest.approx(100.01, abs=1e-9)
    doc["whole_liver_tumour_volume_ml"] = 100
    doc["positions"][0]["tumours"][0]["volume_ml"] = edge
    solution = Solution((PositionSolution("right hepatic", 2.0, 70.0, 90.0, (220.0,), "goal",
                                          ()),), 2.0, 6.0, 6.0, 1.0, ())
    warnings = _clinical_warnings(parse_case(doc), catalogue.product("therasphere"),
                                  solution, "partition", {})
    assert "tumour-volume-inconsistent" not in [w.code for w in warnings]
