"""The uncertainty Monte Carlo (physics.uncertainty, plan_uncertainty) against values worked out
by hand here, each test naming the bug it catches. Each of these bugs once passed the suite:
the lung dose without (1 - R), the residual sampled around 0 instead of R, the whole normal
liver divided by the whole liver, the TNR's standard deviation scaled by the TNR, the activity
figure inverted.

The hand example (round numbers so that every figure can be checked on paper):
energy 50 J/GBq, density 1.0 g/mL, LSF 0.1, residual R = 0.2, lung 1.0 kg, prior lung dose 5 Gy,
one position of A = 2 GBq: normal liver 1000 mL, tumour T1 of 100 mL with TNR 4; whole liver
1500 mL holding 150 mL of tumour.

Partition model (MIRD; Ho et al. 1996; the SIR-Spheres and TheraSphere IFUs), doses in Gy =
J/kg, with e = energy x (1 - LSF) x (1 - R) = 50 x 0.9 x 0.8 = 36 J/GBq reaching the liver:
- normal liver: e A / (m_N + TNR m_T) = 72 / (1.0 + 4 x 0.1) = 72 / 1.4 = 51.428571 Gy
- tumour: TNR x normal = 205.714286 Gy
- perfused: e A / (m_N + m_T) = 72 / 1.1 = 65.454545 Gy
- lung: energy x LSF x (1 - R) x A / m_lung = 50 x 0.1 x 0.8 x 2 / 1 = 8 Gy; cumulative 13 Gy
- whole liver: e A / m_liver = 72 / 1.5 = 48 Gy
- whole normal liver: energy in normal liver / normal-liver mass = 51.428571 x 1.0 / (1.5 - 0.15)
  = 38.095238 Gy
"""

import numpy as np
import pytest

from tareplanner.physics.uncertainty import (Limit, PlanInputs, PositionInput, ResolutionInput,
                                             TumourInput, doses, nominal_samples, propagate,
                                             sample_inputs, scale_with_exceedance, summarise,
                                             variance_shares)

HAND = {"right: normal liver": 72 / 1.4, "right/T1": 4 * 72 / 1.4,
        "right: perfused": 72 / 1.1, "lung": 8.0, "lung cumulative": 13.0,
        "whole liver": 48.0, "whole normal liver": (72 / 1.4) / 1.35}


def _inputs(*, explicit=False, binding="right: normal liver", whole_tumour=150.0,
            calibrator=0.0, residual=0.0, lsf=0.0, tnr=0.0, lung=0.0, boundary=0.0,
            partition=True):
    return PlanInputs(
        energy_j_per_gbq=50.0, density_g_per_ml=1.0, partition=partition,
        lung_shunt_fraction=0.1, lsf_relative_sd=lsf, residual_fraction=0.2, residual_sd=residual,
        calibrator_relative_sd=calibrator, lung_mass_kg=1.0, lung_mass_relative_sd=lung,
        prior_lung_dose_gy=5.0, boundary_mm=boundary,
        positions=(PositionInput("right", 2.0, explicit, 1000.0,
                                 (TumourInput("T1", 100.0, 4.0, tnr),),
                                 None if explicit else binding),),
        whole_liver_volume_ml=1500.0, whole_liver_tumour_volume_ml=whole_tumour)


def test_nominal_figures_are_the_hand_values():
    """Bugs caught: (1 - R) dropped from the lung dose (10 Gy instead of 8), the residual's
    nominal taken as 0 (e = 45, normal 64.3 Gy), the whole normal liver divided by the whole
    liver's mass (34.3 Gy instead of 38.1), the prior lung dose left out of the cumulative."""
    nominal = {k: float(v[0]) for k, v in doses(_inputs(), nominal_samples(_inputs())).items()}
    assert nominal == pytest.approx(HAND, rel=1e-9)
    result = propagate(_inputs(), [], n=200, seed=1)
    for name, value in HAND.items():
        assert result["figures"][name]["nominal"] == pytest.approx(value, rel=1e-9)
        # no input has a spread: every sample is the nominal plan
        assert result["figures"][name]["median"] == pytest.approx(value, rel=1e-9)
        assert result["figures"][name]["low"] == pytest.approx(value, rel=1e-9)
        assert result["figures"][name]["high"] == pytest.approx(value, rel=1e-9)


def test_whole_normal_liver_without_a_stated_tumour_volume_uses_the_tumours():
    """Bug caught: the whole-liver tumour volume not taken from the positions' tumours when
    the case gives none. By hand: 51.428571 / (1.5 - 0.1) = 36.734694 Gy."""
    nominal = doses(_inputs(whole_tumour=None), nominal_samples(_inputs(whole_tumour=None)))
    assert float(nominal["whole normal liver"][0]) == pytest.approx((72 / 1.4) / 1.4, rel=1e-9)


def test_without_partition_every_tumour_gets_the_perfused_dose():
    """Bug caught: TNR applied outside the partition model. By hand: 72 / 1.1 Gy for normal
    liver, tumour and perfused alike."""
    nominal = doses(_inputs(partition=False), nominal_samples(_inputs(partition=False)))
    for name in ("right: normal liver", "right/T1", "right: perfused"):
        assert float(nominal[name][0]) == pytest.approx(72 / 1.1, rel=1e-9)


def test_residual_is_sampled_around_r_with_its_absolute_sd():
    """Bug caught: the residual sampled around 0 (R dropped) or with a relative sd. With
    u_R = 0.02 absolute: mean 0.2, sd 0.02 (n = 40000: standard error 1e-4)."""
    s = sample_inputs(_inputs(residual=0.02), 40000, 3)["residual"]
    assert s.mean() == pytest.approx(0.2, abs=5e-4)
    assert s.std() == pytest.approx(0.02, rel=0.02)


def test_tnr_sd_is_relative_not_scaled_by_the_tnr():
    """Bug caught: the TNR's standard deviation multiplied by the TNR again (TNR x (1 + u TNR
    z)): with TNR 4 and u = 0.05 the relative sd would be 0.2 instead of 0.05."""
    s = sample_inputs(_inputs(tnr=0.05), 40000, 5)["tnr T1"]
    assert s.mean() == pytest.approx(4.0, rel=2e-3)
    assert s.std() / 4.0 == pytest.approx(0.05, rel=0.03)


def test_lsf_and_lung_mass_are_relative():
    """Bug caught: the LSF or the lung mass sampled with an absolute sd. LSF 0.1 with a 10 %
    relative sd -> sd 0.01; lung mass 1 kg with 20 % -> sd 0.2 kg."""
    s = sample_inputs(_inputs(lsf=0.1, lung=0.2), 40000, 7)
    assert s["lsf"].std() == pytest.approx(0.01, rel=0.03)
    assert s["lung mass"].std() == pytest.approx(0.2, rel=0.03)


def test_activity_figure_is_planned_activity_over_dose_ratio():
    """Bug caught: the activity figure inverted (A x figure / nominal instead of A x nominal /
    figure). With only the calibrator uncertain (c ~ N(1, 0.1)) the binding figure is the
    planned dose times c, so the activity giving the planned dose is A / c: its 2.5th and
    97.5th percentiles are A / (1 + 1.96 x 0.1) = 1.6722 and A / (1 - 1.96 x 0.1) = 2.4876
    GBq (the inverted figure would give 1.608 and 2.392). An explicit activity is A x c."""
    result = propagate(_inputs(calibrator=0.1), [], n=40000, seed=11)
    activity = result["figures"]["right: activity"]
    assert activity["nominal"] == 2.0 and activity["unit"] == "GBq"
    assert activity["low"] == pytest.approx(2 / 1.196, rel=0.01)
    assert activity["high"] == pytest.approx(2 / 0.804, rel=0.01)
    explicit = propagate(_inputs(calibrator=0.1, explicit=True), [], n=40000, seed=11)
    assert explicit["figures"]["right: activity"]["low"] == pytest.approx(2 * 0.804, rel=0.01)
    assert explicit["figures"]["right: activity"]["high"] == pytest.approx(2 * 1.196, rel=0.01)


def test_calibrator_scales_every_dose_alike():
    """Bug caught: the calibrator factor applied to some figures only. With c ~ N(1, 0.1) the
    interval of every dose is nominal x (1 -/+ 1.96 x 0.1) (the prior lung dose excepted)."""
    result = propagate(_inputs(calibrator=0.1), [], n=40000, seed=13)
    for name in ("right: normal liver", "right/T1", "lung", "whole liver",
                 "whole normal liver"):
        fig = result["figures"][name]
        assert fig["low"] == pytest.approx(HAND[name] * 0.804, rel=0.01), name
        assert fig["high"] == pytest.approx(HAND[name] * 1.196, rel=0.01), name
        assert fig["relative_sd"] == pytest.approx(0.1, rel=0.03), name
        assert fig["main_contributors"][0]["input"] == "calibrator"
        assert fig["main_contributors"][0]["variance_share"] == pytest.approx(1.0, abs=1e-6)


def test_exceedance_and_scale_factor_for_the_lung_limit():
    """Bug caught: exceedance counted with >= or against the wrong figure, or the scale
    factor's quantile taken at 1 - p. Lung 8 Gy with c ~ N(1, 0.1), limit 8 Gy: half the
    samples exceed it (0.5); at p = 5 % the factor is 1 / (1 + 1.645 x 0.1) = 0.8587."""
    result = propagate(_inputs(calibrator=0.1), [Limit("lung-limit", "lung", 8.0)],
                       n=40000, seed=17, exceedance_probability=0.05)
    assert result["exceedance"]["lung-limit"]["probability"] == pytest.approx(0.5, abs=0.01)
    assert result["probability_any_limit_exceeded"] == pytest.approx(0.5, abs=0.01)
    at = result["at_exceedance_probability"]
    assert at["scale_factor"] == pytest.approx(1 / 1.1645, rel=0.01)
    assert at["activities_gbq"]["right"] == pytest.approx(2 / 1.1645, rel=0.01)
    # an explicit activity is never scaled: no factor (it would be infinite)
    explicit = propagate(_inputs(calibrator=0.1, explicit=True),
                         [Limit("lung-limit", "lung", 8.0)], n=2000, seed=17)
    assert explicit["at_exceedance_probability"] is None


def test_boundary_shift_changes_volumes_by_a_sphere_surface():
    """Bug caught: the boundary shift's volume change off by the surface formula. 1000 mL is a
    sphere of r = 62.035 mm (V = 4/3 pi r^3 = 1e6 mm^3); a shift uniform in [-1, 1] x 2 mm
    changes it by up to 4 pi r^2 x 2 mm = 96.71 mL: samples span 903.3..1096.7 mL."""
    r = (3e6 / (4 * np.pi)) ** (1 / 3)
    change = 4 * np.pi * r ** 2 * 2.0 / 1000.0
    s = sample_inputs(_inputs(boundary=2.0), 40000, 19)["volume right normal liver"]
    assert s.min() == pytest.approx(1000 - change, rel=1e-3)
    assert s.max() == pytest.approx(1000 + change, rel=1e-3)
    assert s.std() == pytest.approx(change / np.sqrt(3), rel=0.02)   # uniform: half-width/sqrt 3


def test_plan_uncertainty_nominal_figures_are_the_plans_doses(base_case):
    """Bug caught: the uncertainty section's nominal doses not those of the plan (a wrong
    binding figure, a dropped residual or density). The shared case (TheraSphere, Y-90
    49.67 J/GBq, density 1.03 g/mL, LSF 0.06, R = 0, lung 1 kg; one position of 900 mL
    normal liver with T1 of 120 mL, TNR 3.1, goal 250 Gy; whole liver 1800 mL with 150 mL
    tumour), by hand:
    normal = 250 / 3.1 = 80.645 Gy; masses 0.927 kg normal, 0.1236 kg tumour;
    liver energy = 80.645 x 0.927 + 250 x 0.1236 = 105.658 J; perfused = 105.658 / 1.0506
    = 100.569 Gy; A = 105.658 / (49.67 x 0.94) = 2.26298 GBq; lung = 49.67 x 0.06 x A / 1
    = 6.7441 Gy; whole liver = 105.658 / 1.854 = 56.989 Gy; whole normal liver = 80.645 x
    0.927 / ((1800 - 150) x 1.03e-3) = 43.988 Gy."""
    from tareplanner.planning import plan_case
    from tareplanner.records.case import parse_case

    record = plan_case(parse_case(base_case))
    figures = record["uncertainty"]["figures"]
    normal = 250 / 3.1
    energy = normal * 0.927 + 250 * 0.1236
    activity = energy / (49.67 * 0.94)
    hand = {"right hepatic: normal liver": normal, "right hepatic/T1": 250.0,
            "right hepatic: perfused": energy / 1.0506, "lung": 49.67 * 0.06 * activity,
            "lung cumulative": 49.67 * 0.06 * activity, "whole liver": energy / 1.854,
            "whole normal liver": normal * 0.927 / (1650 * 1.03e-3),
            "right hepatic: activity": activity}
    for name, value in hand.items():
        assert figures[name]["nominal"] == pytest.approx(value, rel=1e-6), name
    # and the same numbers stand in the plan itself
    position = record["positions"][0]
    assert position["activity_gbq"] == pytest.approx(activity, rel=1e-6)
    assert position["normal_dose_gy"] == pytest.approx(normal, rel=1e-6)
    assert record["lung_dose_gy"] == pytest.approx(49.67 * 0.06 * activity, rel=1e-6)
    assert record["whole_liver"]["whole_normal_liver_dose_gy"] == pytest.approx(
        hand["whole normal liver"], rel=1e-6)
    # the defaults stated with their source, the case's own values marked as the case's
    inputs = record["uncertainty"]["inputs"]
    assert inputs["calibrator_relative_sd"]["value"] == 0.05
    assert inputs["lung_mass_relative_sd"]["value"] == 0.1        # entered by hand: 10 %
    assert all(inputs[k]["source"] for k in inputs)


# --------------------------------------------------------------------------- sampling edges

def test_lung_dose_divides_by_the_lung_mass():
    """Bug caught: the lung mass multiplied instead of divided (invisible with 1 kg). With
    2 kg: 50 x 0.1 x 0.8 x 2 / 2 = 4 Gy."""
    inputs = PlanInputs(**{**_inputs().__dict__, "lung_mass_kg": 2.0})
    assert float(doses(inputs, nominal_samples(inputs))["lung"][0]) == pytest.approx(4.0)


def test_fractions_are_kept_within_0_and_0_999():
    """Bugs caught: the clip of the residual or the LSF dropped at either end. R = 0 with
    an sd of 0.5: half the samples would be negative; LSF 0.9 with 50 % relative: a third
    would exceed 1 (the clip keeps them at 0.999)."""
    inputs = PlanInputs(**{**_inputs(residual=0.5, lsf=0.5).__dict__,
                           "residual_fraction": 0.0, "lung_shunt_fraction": 0.9})
    s = sample_inputs(inputs, 4000, 23)
    assert s["residual"].min() == 0.0 and s["residual"].max() == 0.999
    assert s["lsf"].min() >= 0.0 and s["lsf"].max() == 0.999
    assert (s["residual"] == 0.0).mean() == pytest.approx(0.5, abs=0.03)


def test_every_volume_shifts_by_at_most_one_boundary_and_stays_positive():
    """Bugs caught: the shift drawn from another interval than [-1, 1] voxel for the tumour
    or the whole liver, or the floor of a shrinking volume (1e-3 x V) turned into 1e-3 / V.
    By hand: a 100 mL sphere has r = 28.794 mm, surface 10418.6 mm^2: +-20.84 mL for 2 mm;
    1500 mL: r = 71.01 mm, surface 63366 mm^2, +-126.7 mL. A 0.001 mL tumour with a 20 mm
    boundary would go negative: it is kept at 1e-6 mL."""
    s = sample_inputs(_inputs(boundary=2.0), 40000, 29)
    for name, volume in (("volume T1", 100.0), ("volume whole liver", 1500.0)):
        r = (3 * volume * 1000 / (4 * np.pi)) ** (1 / 3)
        change = 4 * np.pi * r ** 2 * 2.0 / 1000.0
        assert s[name].min() == pytest.approx(volume - change, rel=1e-3), name
        assert s[name].max() == pytest.approx(volume + change, rel=1e-3), name
    tiny = PlanInputs(**{**_inputs(boundary=20.0).__dict__, "positions": (PositionInput(
        "right", 2.0, False, 1000.0, (TumourInput("T1", 0.001, 4.0, 0.0),),
        "right: normal liver"),)})
    assert sample_inputs(tiny, 2000, 31)["volume T1"].min() == pytest.approx(1e-6)


def test_tnr_is_not_sampled_outside_the_partition_model():
    """Bug caught: a TNR sampled (and listed as an input of the variance) when the model
    does not use it."""
    assert "tnr T1" not in sample_inputs(_inputs(tnr=0.1, partition=False), 10, 1)
    assert "tnr T1" in sample_inputs(_inputs(tnr=0.1), 10, 1)


def test_variance_shares_of_two_inputs_by_hand():
    """Bugs caught: inputs or figures not standardised, the coefficients not squared, the
    shares not normalised. a, b independent standard normal; the inputs are a and B = 2 b
    (sd 2), the figure y = 3 a + 2 b = 3 a + B: the standardised coefficients are 3 and 2
    (over the sd of y, sqrt(13)): shares 9/13 = 0.6923 and 4/13 = 0.3077. A figure without
    spread has no shares; an input without spread is left out."""
    rng = np.random.default_rng(37)
    a, b = rng.standard_normal(20000), rng.standard_normal(20000)
    shares = variance_shares({"a": a, "b": 2.0 * b, "c": np.ones(20000)},
                             {"y": 3 * a + 2.0 * b, "flat": np.full(20000, 5.0)})
    assert shares["y"]["a"] == pytest.approx(9 / 13, abs=0.01)
    assert shares["y"]["b"] == pytest.approx(4 / 13, abs=0.01)
    assert sum(shares["y"].values()) == pytest.approx(1.0, abs=1e-12)
    assert "c" not in shares["y"] and shares["flat"] == {}


def test_summarise_by_hand():
    """Bugs caught: the coverage percentiles off (2.55 % for 2.5 %), contributors not
    ranked by share or not cut at three, a relative sd given for a zero mean. The values
    0..1000: 2.5th percentile 25, 97.5th 975, median 500, sd 288.819 / mean 500."""
    values = np.arange(1001, dtype=float)
    shares = {"a": 0.1, "b": 0.4, "c": 0.3, "d": 0.2}
    out = summarise(values, shares, "Gy")
    assert (out["unit"], out["median"]) == ("Gy", 500.0)
    assert (out["low"], out["high"]) == (pytest.approx(25.0, abs=1e-9),
                                         pytest.approx(975.0, abs=1e-9))
    assert out["relative_sd"] == pytest.approx(np.sqrt((1001 ** 2 - 1) / 12) / 500, rel=1e-9)
    assert [c["input"] for c in out["main_contributors"]] == ["b", "c", "d"]
    assert summarise(np.zeros(5), {}, "Gy")["relative_sd"] is None


def test_scale_factor_uses_the_lower_quantile_and_the_fixed_part():
    """Bugs caught: the quantile interpolated (not the sample at or below it), the fixed part
    added instead of subtracted, small flexible doses (< 1 Gy) ignored. By hand: flexible
    doses 1, 2, 3, 4 Gy against a limit of 4 Gy: factors 4, 2, 1.333, 1; the 50 % lower
    quantile of (1, 1.333, 2, 4) is 1.333. With a fixed 1 Gy in each: (4 - 1) / flexible.
    Flexible doses of 0.1..0.4 Gy against 0.4 Gy give the same factors."""
    flexible = np.array([1.0, 2.0, 3.0, 4.0])
    limit = [Limit("lung-limit", "lung", 4.0)]
    zero = {"lung": np.zeros(4)}
    assert scale_with_exceedance({"lung": flexible}, limit, zero, 0.5) == pytest.approx(4 / 3)
    assert scale_with_exceedance({"lung": flexible + 1.0}, limit, {"lung": np.ones(4)},
                                 0.5) == pytest.approx(1.0)
    small = [Limit("lung-limit", "lung", 0.4)]
    assert scale_with_exceedance({"lung": flexible / 10}, small, zero, 0.5) == \
        pytest.approx(4 / 3)
    assert scale_with_exceedance({"lung": flexible}, [], zero, 0.5) is None


def test_exceedance_counts_only_doses_above_the_limit_and_any_limit():
    """Bugs caught: a dose equal to its limit counted as exceeding it; the 'any limit'
    probability keeping only the last limit. Without spread the lung is 8 Gy: a limit of
    8 Gy is not exceeded (0), one of 7.9 Gy always (1); with the whole-liver limit of
    1000 Gy listed after it, any limit is still exceeded with probability 1."""
    at = propagate(_inputs(), [Limit("lung-limit", "lung", 8.0)], n=100, seed=1)
    assert at["exceedance"]["lung-limit"]["probability"] == 0.0
    assert at["probability_any_limit_exceeded"] == 0.0
    both = propagate(_inputs(), [Limit("lung-limit", "lung", 7.9),
                                 Limit("whole-liver-limit", "whole liver", 1000.0)],
                     n=100, seed=1)
    assert both["probability_any_limit_exceeded"] == 1.0
    assert both["exceedance"]["whole-liver-limit"] == {"figure": "whole liver",
                                                       "limit_gy": 1000.0, "probability": 0.0}


def test_result_record_fields_and_defaults():
    """Bug caught: the record's method, seed or units misnamed, the defaults (2000 samples,
    seed 0) changed, an explicit activity's nominal lost or an explicit activity scaled by
    the exceedance factor."""
    result = propagate(_inputs(calibrator=0.1, explicit=True),
                       [Limit("lung-limit", "lung", 8.0)])
    assert result["method"] == "Monte Carlo (JCGM 101; EANM uncertainty guidance, Gear et " \
                               "al. 2018)"
    assert (result["samples"], result["seed"], result["coverage"]) == (2000, 0, 0.95)
    assert result["figures"]["right: activity"]["nominal"] == 2.0
    assert result["figures"]["right: activity"]["unit"] == "GBq"
    assert result["figures"]["lung"]["unit"] == "Gy"
    mixed = PlanInputs(**{**_inputs(calibrator=0.1).__dict__, "positions": (
        PositionInput("right", 2.0, False, 1000.0, (TumourInput("T1", 100.0, 4.0, 0.0),),
                      "right: normal liver"),
        PositionInput("left", 1.0, True, 500.0, ()))})
    at = propagate(mixed, [Limit("lung-limit", "lung", 10.0)], n=4000, seed=3)
    assert at["at_exceedance_probability"]["activities_gbq"]["left"] == 1.0
    assert at["at_exceedance_probability"]["activities_gbq"]["right"] < 2.0


# --------------------------------------------------------------------------- plan_uncertainty

def test_binding_figure_of_each_way_a_position_is_limited():
    """Bugs caught: the activity figure bound to the wrong dose: a normal-liver-limited
    position to its goal, a shared limit to the position, an explicit activity to a dose, a
    tumour goal to another tumour than the lowest-TNR one (or, outside the partition model,
    to any but the first)."""
    from collections import namedtuple

    from tareplanner.physics.solver import (LIMITED_BY_GOAL, LIMITED_BY_LUNG,
                                            LIMITED_BY_NORMAL, LIMITED_BY_WHOLE_LIVER,
                                            LIMITED_BY_WHOLE_NORMAL_LIVER)
    from tareplanner.plan_uncertainty import _binding
    t = namedtuple("T", "name tnr")
    tumours = [t("T1", 3.0), t("T2", 2.0), t("T3", 4.0)]
    assert _binding("P", "tumour_dose_gy", LIMITED_BY_NORMAL, tumours, True) == \
        "P: normal liver"
    assert _binding("P", "tumour_dose_gy", LIMITED_BY_LUNG, tumours, True) == "lung"
    assert _binding("P", "normal_dose_gy", LIMITED_BY_WHOLE_LIVER, tumours, True) == \
        "whole liver"
    assert _binding("P", "normal_dose_gy", LIMITED_BY_WHOLE_NORMAL_LIVER, tumours, True) == \
        "whole normal liver"
    assert _binding("P", "activity_gbq", LIMITED_BY_GOAL, tumours, True) is None
    assert _binding("P", None, LIMITED_BY_GOAL, tumours, True) is None
    assert _binding("P", "tumour_dose_gy", LIMITED_BY_GOAL, tumours, True) == "P/T2"
    assert _binding("P", "tumour_dose_gy", LIMITED_BY_GOAL, tumours, False) == "P/T1"
    assert _binding("P", "normal_dose_gy", LIMITED_BY_GOAL, tumours, True) == "P: normal liver"
    assert _binding("P", "perfused_dose_gy", LIMITED_BY_GOAL, tumours, True) == "P: perfused"


def test_tnr_uncertainty_per_tumour_falls_back_to_the_default():
    """Bug caught: a tumour missing from a per-tumour TNR uncertainty getting none (or
    another's). The default is 10 % relative (data/uncertainty.json: counting statistics and
    the partial-volume residual, Gear et al. 2018)."""
    from tareplanner.plan_uncertainty import _tnr_sd
    assert _tnr_sd({"value": {"T1": 0.3}}, "T1") == 0.3
    assert _tnr_sd({"value": {"T1": 0.3}}, "T2") == 0.1
    assert _tnr_sd({"value": 0.2}, "T9") == 0.2


def test_settings_name_their_source(base_case):
    """Bug caught: a case's own uncertainty reported as the default (or the reverse), or the
    lung-mass uncertainty taken for another lung-mass source. Defaults (data/uncertainty.json
    with their sources): calibrator 5 %, residual 0.01, LSF 10 %, boundary 2 mm, 2000
    samples, seed 20181, exceedance 5 %; lung mass 5 % (CT), 10 % (entered), 25 %
    (convention)."""
    from tareplanner.plan_uncertainty import settings
    from tareplanner.records.case import parse_case
    case = parse_case(base_case)
    cfg = settings(case, "entered")
    expected = {"calibrator_relative_sd": 0.05, "residual_sd": 0.01, "lsf_relative_sd": 0.1,
                "boundary_mm": 2.0, "samples": 2000, "seed": 20181,
                "exceedance_probability": 0.05, "lung_mass_relative_sd": 0.1,
                "tnr_relative_sd": 0.1}
    assert {k: v["value"] for k, v in cfg.items()} == expected
    assert all(v["source"] != "case" and len(v["source"]) > 20 for v in cfg.values())
    assert settings(case, "ct-densitovolumetry")["lung_mass_relative_sd"]["value"] == 0.05
    assert settings(case, "convention")["lung_mass_relative_sd"]["value"] == 0.25
    own = dict(base_case, uncertainty={"calibrator_relative_sd": 0.07, "samples": 500,
                                       "lung_mass_relative_sd": 0.2, "tnr_relative_sd": 0.3})
    cfg = settings(parse_case(own), "entered")
    for key, value in (("calibrator_relative_sd", 0.07), ("samples", 500),
                       ("lung_mass_relative_sd", 0.2), ("tnr_relative_sd", 0.3)):
        assert cfg[key] == {"value": value, "source": "case"}, key
    assert cfg["residual_sd"]["source"] != "case"


def test_a_limit_no_scalable_activity_reaches_does_not_block_the_factor():
    """Bug caught: a limit whose dose comes only from explicit activities (flexible part 0)
    treated as binding (factor -inf, no answer). The explicit position 'left' (1 GBq into
    100 mL: 36 x 1 / 0.1 = 360 Gy normal liver) exceeds its 100 Gy limit by itself; the
    scalable position's factor is still set by the lung (8 Gy nominal against 10 Gy)."""
    mixed = PlanInputs(**{**_inputs(calibrator=0.1).__dict__, "positions": (
        PositionInput("right", 2.0, False, 1000.0, (TumourInput("T1", 100.0, 4.0, 0.0),),
                      "right: normal liver"),
        PositionInput("left", 1.0, True, 100.0, ()))})
    limits = [Limit("left: normal-liver-limit", "left: normal liver", 100.0),
              Limit("lung-limit", "lung", 10.0)]
    at = propagate(mixed, limits, n=4000, seed=5)["at_exceedance_probability"]
    # lung: 50 x 0.1 x 0.8 x (2 k + 1) c <= 10 at the 95th percentile of c (1.1645):
    # k = (10 / (4 x 1.1645) - 1) / 2
    assert at["scale_factor"] == pytest.approx((10 / (4 * 1.1645) - 1) / 2, rel=0.02)


@pytest.mark.parametrize("goal, explicit", [({"tumour_dose_gy": 250}, False),
                                            ({"activity_gbq": 2.0}, True)])
def test_plan_activity_figure_follows_the_goal_or_the_explicit_activity(base_case, goal,
                                                                        explicit):
    """Bugs caught (plan level): the binding figure or the explicit flag not passed on, the
    case's seed not used. Only the calibrator uncertain (10 %): a goal-bound activity is
    A / c (2.5th percentile A / 1.196), an explicit one A x c (A x 0.804)."""
    from tareplanner.planning import plan_case
    from tareplanner.records.case import parse_case
    base_case["positions"][0]["goal"] = goal
    base_case["uncertainty"] = {"calibrator_relative_sd": 0.1, "residual_sd": 0.0,
                                "lsf_relative_sd": 0.0, "boundary_mm": 0.0,
                                "tnr_relative_sd": 0.0, "lung_mass_relative_sd": 0.0,
                                "samples": 40000, "seed": 7}
    record = plan_case(parse_case(base_case))
    activity = record["positions"][0]["activity_gbq"]
    figure = record["uncertainty"]["figures"]["right hepatic: activity"]
    assert record["uncertainty"]["seed"] == 7 and record["uncertainty"]["samples"] == 40000
    low = activity * 0.804 if explicit else activity / 1.196
    assert figure["low"] == pytest.approx(low, rel=0.01)


def test_a_resolution_fwhm_is_sampled_uniformly_or_normally_around_its_value():
    """The emission image's FWHM: uniform over 8 +- 2 mm (an assumed range: mean 8, standard
    deviation 2 / sqrt(3) = 1.1547 mm, never outside 6-10 mm) or normal with a calibration's
    sd of 0.5 mm (mean 8, sd 0.5, 5 % beyond 8 +- 1.96 x 0.5). Bugs caught: the two
    distributions swapped or the uniform one's name misread, the half range divided by the
    deviate, the interval [-1, 1] changed at either end, one deviate for all samples."""
    uniform = ResolutionInput(8.0, (6.0, 10.0), {}, None, "uniform", 2.0)
    f = uniform.sample(np.random.default_rng(3), 40000)
    assert f.shape == (40000,)
    assert f.min() >= 6.0 and f.max() <= 10.0
    assert f.min() < 6.01 and f.max() > 9.99
    assert f.mean() == pytest.approx(8.0, abs=0.02)
    assert f.std() == pytest.approx(2.0 / np.sqrt(3.0), rel=0.01)
    normal = ResolutionInput(8.0, (6.0, 10.0), {}, None, "normal", 0.5)
    g = normal.sample(np.random.default_rng(4), 40000)
    assert g.shape == (40000,)
    assert g.mean() == pytest.approx(8.0, abs=0.01)
    assert g.std() == pytest.approx(0.5, rel=0.02)
    assert (np.abs(g - 8.0) > 1.96 * 0.5).mean() == pytest.approx(0.05, abs=0.005)


def test_a_resolution_factor_is_interpolated_and_relative_to_the_nominal_fwhm():
    """Corrected values 2, 3 and 5 at FWHMs 6, 8 and 10 mm, nominal 8 mm (value 3): at 4
    and 6 mm 2 / 3 (flat below the grid), 7 mm 2.5 / 3, 8 mm 1, 9 mm 4 / 3, 10 and 12 mm
    5 / 3 (flat above). Bugs caught: the ratio inverted or multiplied, the grid or the
    values or the nominal FWHM left out of either interpolation."""
    res = ResolutionInput(8.0, (6.0, 8.0, 10.0), {}, None, "uniform", 1.0)
    got = res.factor((2.0, 3.0, 5.0), np.array([4.0, 6.0, 7.0, 8.0, 9.0, 10.0, 12.0]))
    np.testing.assert_allclose(got, [2 / 3, 2 / 3, 2.5 / 3, 1.0, 4 / 3, 5 / 3, 5 / 3],
                               rtol=1e-12)


def _with_resolution(resolution, **kwargs):
    """The hand example with a second tumour T2 (50 mL, TNR 2) the table does not hold."""
    base = _inputs(**kwargs)
    position = PositionInput("right", 2.0, False, 1000.0,
                             (TumourInput("T1", 100.0, 4.0, 0.0),
                              TumourInput("T2", 50.0, 2.0, 0.0)), "right: normal liver")
    return PlanInputs(**{**base.__dict__, "positions": (position,), "resolution": resolution})


def test_each_sample_moves_the_tnrs_and_the_lsf_with_its_fwhm():
    """One FWHM per sample moves every TNR and the LSF together. Table: T1's corrected TNR
    3 at 6 mm and 5 at 10 mm, the LSF 0.08 and 0.12, nominal FWHM 8 mm (TNR 4, LSF 0.10,
    as the case's own), uniform +- 2 mm, no other spread. By hand, for a sample's FWHM f in
    6-10 mm: TNR(f) = 3 + 0.5 (f - 6), so T1's TNR is 4 x TNR(f) / 4 = f / 2; LSF(f) = 0.08 +
    0.01 (f - 6), so the LSF is 0.1 x LSF(f) / 0.1 = 0.02 + 0.01 f; T2, not in the table,
    keeps its TNR 2. The FWHMs come from their own stream: the same seed gives the same
    FWHMs, and the other inputs' samples are those of the plan without the table. Bugs
    caught: the table ignored for the LSF or a TNR (or applied to a tumour it does not
    hold), the factor divided, the FWHM samples not recorded as an input or drawn from an
    unseeded generator (a plan's uncertainty not reproducible)."""
    res = ResolutionInput(8.0, (6.0, 10.0), {"T1": (3.0, 5.0)}, (0.08, 0.12), "uniform", 2.0)
    s = sample_inputs(_with_resolution(res), 2000, 5)
    f = s["resolution fwhm"]
    assert f.shape == (2000,) and f.min() >= 6.0 and f.max() <= 10.0
    assert f.std() == pytest.approx(2.0 / np.sqrt(3.0), rel=0.05)
    np.testing.assert_allclose(s["tnr T1"], f / 2.0, rtol=1e-12)
    np.testing.assert_allclose(s["lsf"], 0.02 + 0.01 * f, rtol=1e-12)
    np.testing.assert_array_equal(s["tnr T2"], 2.0)
    again = sample_inputs(_with_resolution(res), 2000, 5)
    np.testing.assert_array_equal(again["resolution fwhm"], f)
    spread = dict(calibrator=0.1, residual=0.05, lung=0.1, boundary=2.0)
    with_table = sample_inputs(_with_resolution(res, **spread), 500, 6)
    without = sample_inputs(_with_resolution(None, **spread), 500, 6)
    for name in ("calibrator", "residual", "lung mass", "volume right normal liver",
                 "volume T1", "volume T2", "volume whole liver"):
        np.testing.assert_array_equal(with_table[name], without[name], err_msg=name)


def test_an_lsf_moved_by_its_fwhm_is_kept_below_0_999():
    """An LSF of 0.95 whose corrected value falls from 0.95 at 6 mm to 0.5 at 10 mm (0.725
    at the nominal 8 mm): at f mm the sample's LSF is 0.95 x (0.95 - 0.1125 (f - 6)) / 0.725,
    1.2448 at 6 mm, kept at 0.999 (a fraction of the activity below 1). Bug caught: the clip
    after the FWHM factor dropped or widened (an LSF above 1: a negative liver dose)."""
    res = ResolutionInput(8.0, (6.0, 10.0), {}, (0.95, 0.5), "uniform", 2.0)
    inputs = PlanInputs(**{**_with_resolution(res).__dict__, "lung_shunt_fraction": 0.95})
    s = sample_inputs(inputs, 4000, 7)
    f = s["resolution fwhm"]
    expected = np.minimum(0.95 * (0.95 - 0.1125 * (f - 6.0)) / 0.725, 0.999)
    np.testing.assert_allclose(s["lsf"], expected, rtol=1e-12)
    assert s["lsf"].max() == 0.999 and (s["lsf"] == 0.999).mean() > 0.2


@pytest.mark.parametrize("activity_gbq", [0.0, 1.0])
def test_the_activity_figure_of_one_gbq_and_of_none(activity_gbq):
    """A position set for its normal-liver dose with only the calibrator uncertain (c ~ N(1,
    0.1)): the activity giving the planned dose is A / c, for A = 1 GBq between 1 / 1.196 =
    0.8361 and 1 / 0.804 = 1.2438 GBq; a position given no activity (the limits leave none)
    has 0 GBq in every sample, not 0 / 0. Bugs caught: the no-activity case tested against
    1 GBq (a 1 GBq position then carried as if explicit: A x c, 0.804-1.196 GBq; and 0 / 0 =
    NaN for none)."""
    base = _inputs(calibrator=0.1)
    position = PositionInput("right", activity_gbq, False, 1000.0,
                             (TumourInput("T1", 100.0, 4.0, 0.0),), "right: normal liver")
    inputs = PlanInputs(**{**base.__dict__, "positions": (position,)})
    figure = propagate(inputs, [], n=40000, seed=11)["figures"]["right: activity"]
    assert figure["nominal"] == activity_gbq
    if activity_gbq == 0.0:
        assert (figure["median"], figure["low"], figure["high"]) == (0.0, 0.0, 0.0)
    else:
        assert figure["low"] == pytest.approx(1 / 1.196, rel=0.01)
        assert figure["high"] == pytest.approx(1 / 0.804, rel=0.01)


@pytest.mark.parametrize("own, lsf_source, tnr_source", [
    ({"counting_basis": "the camera file's background variability (x)",
      "lsf_relative_sd": 0.03, "tnr_relative_sd": {"T1": 0.08}},
     "case (counting statistics: the camera file's background variability (x))",
     "case (counting statistics: the camera file's background variability (x))"),
    ({"counting_basis": "Poisson statistics of the image's counts (y)",
      "tnr_relative_sd": {"T1": 0.04}},
     None, "case (counting statistics: Poisson statistics of the image's counts (y))"),
    ({"lsf_relative_sd": 0.03, "tnr_relative_sd": {"T1": 0.08}}, "case", "case"),
])
def test_settings_say_what_the_counting_uncertainty_stands_for(base_case, own, lsf_source,
                                                               tnr_source):
    """Bug caught: a measured TNR or LSF uncertainty shown without its counting basis (the
    camera's background variability or the image's Poisson counts), or the basis put on an
    LSF the case did not give (the default's own source must stay)."""
    from tareplanner.plan_uncertainty import defaults, settings
    from tareplanner.records.case import parse_case
    cfg = settings(parse_case(dict(base_case, uncertainty=own)), "entered")
    assert cfg["tnr_relative_sd"] == {"value": own["tnr_relative_sd"], "source": tnr_source}
    if lsf_source is None:
        assert cfg["lsf_relative_sd"] == defaults()["lsf_relative_sd"]
    else:
        assert cfg["lsf_relative_sd"] == {"value": own["lsf_relative_sd"],
                                          "source": lsf_source}
