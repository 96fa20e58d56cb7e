"""Warnings of the plan (tareplanner.planning) checked on inputs written here by hand: the
probable exceedance of a limit at its 5 % edge, a plan without a treatment time. Each test names the bug it catches."""

import copy

import pytest

from tareplanner import catalogue
from tareplanner.physics.solver import PositionSolution, Solution
from tareplanner.planning import _ordering, _uncertainty_warnings
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
