"""Uncertainty of a plan: Monte Carlo intervals against closed forms.

With only the calibrator uncertain (relative standard uncertainty u), every dose at the
planned activity is D_nom * c with c ~ N(1, u): the 95 % interval is D_nom * (1 +/- 1.959964 u),
the probability of exceeding a limit L is 1 - Phi((L / D_nom - 1) / u), and the largest
activity factor with at most probability p of exceeding L is k = L / (D_nom (1 + z_(1-p) u)).
These closed forms (normal distribution, scipy.stats for Phi and z) are the expected values.
"""

import copy
import math

import numpy as np
import pytest
from scipy import stats

from tareplanner.physics.uncertainty import sphere_area_mm2, _volume_samples
from tareplanner.planning import plan_case
from tareplanner.records.case import parse_case
from tareplanner.records.plan_text import plan_summary

#: The site's own hard limit of 40 Gy normal liver for SIR-Spheres (EANM 2022 Table 3 gives
#: 40 Gy as a recommendation; a site makes it a limit in its site file)
SITE_40 = {"schema": "tareplanner.site-limits/1", "site": "test site",
           "products": {"sir-spheres": {"normal_liver_gy": 40}}}

N = 100_000
U_CAL = 0.05
ONLY_CALIBRATOR = {"calibrator_relative_sd": U_CAL, "residual_sd": 0, "lsf_relative_sd": 0,
                   "tnr_relative_sd": 0, "boundary_mm": 0, "lung_mass_relative_sd": 0,
                   "samples": N, "seed": 7}


def _single(goal_gy, **uncertainty):
    # SIR-Spheres single compartment, 1000 mL perfused at 1.03 g/mL, LSF 5 %, limit 40 Gy
    return {"schema": "tareplanner.case/1", "product": "sir-spheres",
            "method": "single-compartment", "lung_shunt_fraction": 0.05,
            "lsf_method": "spect-whole-lung", "lung_mass_kg": 1.0,
            "positions": [{"name": "p", "normal_volume_ml": 1000, "tumours": [],
                           "goal": {"normal_dose_gy": goal_gy}}],
            "uncertainty": {**ONLY_CALIBRATOR, **uncertainty}}


def _se(u):  # sampling tolerance for a 2.5th/97.5th percentile with N samples, in dose units
    return 0.02 * u


def test_calibrator_only_interval_is_closed_form():
    """Catches an interval that is not the 2.5-97.5 percentile range, a calibrator factor
    applied twice or not at all, or a wrong coverage."""
    record = plan_case(parse_case(_single(30)))
    fig = record["uncertainty"]["figures"]["p: normal liver"]
    z = stats.norm.ppf(0.975)
    assert z == pytest.approx(1.959964, abs=1e-6)
    assert fig["nominal"] == pytest.approx(30.0)
    assert fig["low"] / 30 == pytest.approx(1 - z * U_CAL, abs=_se(U_CAL))
    assert fig["high"] / 30 == pytest.approx(1 + z * U_CAL, abs=_se(U_CAL))
    assert fig["relative_sd"] == pytest.approx(U_CAL, rel=0.02)
    assert fig["main_contributors"][0] == {"input": "calibrator", "variance_share": 1.0}
    # lung dose: CF * A * LSF / m, also scaled by c alone
    lung = record["uncertainty"]["figures"]["lung"]
    assert lung["high"] / lung["nominal"] == pytest.approx(1 + z * U_CAL, abs=_se(U_CAL))


@pytest.mark.parametrize("goal", [36.0, 38.0, 40.0])
def test_exceedance_probability_is_closed_form(goal):
    """P(D > 40 Gy) at the planned activity = 1 - Phi((40/D - 1)/u): 36 Gy -> 1.31 %,
    38 Gy -> 15.2 %, 40 Gy (at the limit) -> 50 %."""
    record = plan_case(parse_case(_single(goal)), SITE_40, "site")
    expected = 1 - stats.norm.cdf((40 / goal - 1) / U_CAL)
    got = record["uncertainty"]["exceedance"]["p: normal-liver-limit"]["probability"]
    assert got == pytest.approx(expected, abs=4 * math.sqrt(expected * (1 - expected) / N) + 1e-4)
    warned = "limit-exceedance-probable" in [w["code"] for w in record["warnings"]]
    assert warned is bool(expected > 0.05)


def test_highest_activity_at_exceedance_probability_is_closed_form():
    """k = L / (D (1 + z_0.95 u)) for p = 5 %: at D = 30 Gy, k = 40 / (30 * 1.08224) = 1.2320."""
    record = plan_case(parse_case(_single(30)), SITE_40, "site")
    best = record["uncertainty"]["at_exceedance_probability"]
    k = 40 / (30 * (1 + stats.norm.ppf(0.95) * U_CAL))
    assert k == pytest.approx(1.2320, abs=1e-4)
    assert best["scale_factor"] == pytest.approx(k, rel=2e-3)
    activity = record["positions"][0]["activity_gbq"]
    assert best["activities_gbq"]["p"] == pytest.approx(activity * k, rel=2e-3)


def test_lsf_uncertainty_moves_liver_and_lung_in_opposite_directions():
    """Only the LSF uncertain (u = 20 %): lung dose ~ LSF, liver dose ~ (1 - LSF). Hand: the
    lung interval is LSF * (1 +/- 1.96 * 0.2) relative, the liver's (1 - LSF(1 -/+ 0.392)) / 0.95."""
    doc = _single(30, calibrator_relative_sd=0, lsf_relative_sd=0.2)
    u = plan_case(parse_case(doc))["uncertainty"]["figures"]
    z = stats.norm.ppf(0.975)
    assert u["lung"]["high"] / u["lung"]["nominal"] == pytest.approx(1 + z * 0.2, abs=0.01)
    assert u["p: normal liver"]["low"] / 30 == pytest.approx((1 - 0.05 * (1 + z * 0.2)) / 0.95,
                                                              abs=1e-3)


def test_boundary_shift_changes_a_sphere_by_its_surface():
    """r = 20 mm sphere (33.51 mL): one 2 mm voxel outwards adds 4 pi r^2 * 2 mm = 10.05 mL."""
    v = 4 / 3 * math.pi * 20 ** 3 / 1000
    assert sphere_area_mm2(v) == pytest.approx(4 * math.pi * 400, rel=1e-12)
    assert _volume_samples(v, 2.0, np.array([1.0, -1.0]))[0] == pytest.approx(v + 10.053, abs=1e-3)


def test_plan_summary_and_seed(base_case):
    """The text shows the intervals; the same seed gives the same record (replayable)."""
    a = plan_case(parse_case(copy.deepcopy(base_case)))
    b = plan_case(parse_case(copy.deepcopy(base_case)))
    assert a["uncertainty"] == b["uncertainty"]
    text = plan_summary(a)
    assert "95% intervals" in text and "P(limit exceeded" in text
    fig = a["uncertainty"]["figures"]["right hepatic/T1"]
    assert fig["low"] < 250 < fig["high"]
    assert set(a["uncertainty"]["inputs"]) >= {"calibrator_relative_sd", "lsf_relative_sd",
                                               "tnr_relative_sd", "boundary_mm",
                                               "lung_mass_relative_sd"}
    assert all(v["source"] for v in a["uncertainty"]["inputs"].values())


@pytest.mark.parametrize("field, value", [("samples", 10), ("samples", 1000.5),
                                          ("calibrator_relative_sd", -0.1),
                                          ("exceedance_probability", 1.0), ("bogus", 1),
                                          ("tnr_relative_sd", {"T9": 0.1})])
def test_bad_uncertainty_fields_are_named(base_case, field, value):
    base_case["uncertainty"] = {field: value}
    with pytest.raises(ValueError, match=f"uncertainty.{field}|{field}"):
        parse_case(base_case)
