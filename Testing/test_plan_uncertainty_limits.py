"""The uncertainty section of a plan (plan_uncertainty) at plan level: the exceedance record of
a plan with every limit, the figure each position's activity is bound to (its goal, a
resolved 'maximum' goal, a shared limit, none for an explicit or BSA activity) and the
resolution table carried into the Monte Carlo. Each test names the bug it catches; the
expected values are worked out by hand in the docstrings, with the normal distribution's
quantiles and CDF from scipy.

The shared case (Testing/conftest.py): TheraSphere (Y-90, 49.67 J/GBq), density 1.03 g/mL,
LSF 0.06, R = 0, lung 1 kg; one position 'right hepatic' of 900 mL normal liver with T1 of
120 mL, TNR 3.1; whole liver 1800 mL with 150 mL tumour. Masses: normal 0.927 kg, T1
0.1236 kg, whole liver 1.854 kg, whole normal liver (1800 - 150) x 1.03e-3 = 1.6995 kg.
"""

import pytest
from scipy.stats import norm

from tareplanner import catalogue
from tareplanner.planning import plan_case
from tareplanner.records.case import parse_case

Z975 = norm.ppf(0.975)      # 1.959964: the 95 % interval's ends
Z90 = norm.ppf(0.90)        # 1.281552: a 10 % exceedance quantile


def _only(**sds):
    """Uncertainty settings with every standard uncertainty 0 except those given."""
    settings = {"calibrator_relative_sd": 0.0, "residual_sd": 0.0, "lsf_relative_sd": 0.0,
                "boundary_mm": 0.0, "tnr_relative_sd": 0.0, "lung_mass_relative_sd": 0.0,
                "samples": 40000, "seed": 11}
    settings.update(sds)
    return settings


def _site(**limits):
    return catalogue.validate_site_limits({"schema": "tareplanner.site-limits/1",
                                           "site": "Test Hospital",
                                           "products": {"therasphere": limits}})


def _plan(doc, site=None):
    return plan_case(parse_case(doc), site, "Test Hospital" if site else "")


def test_exceedance_record_of_a_plan_with_every_limit(base_case):
    """Bugs caught: a limit missing from the exceedance record, filed under another name
    (``lung-limit``, ``lung-cumulative-limit``, ``whole-liver-limit``,
    ``whole-normal-liver-limit``, ``<position>: normal-liver-limit``), checked against another
    figure or another limit's value (the lung limit against the cumulative lung dose, the
    whole-liver limit against the whole normal liver), and an explicit activity reported as
    scalable at the exceedance probability.

    Explicit 2 GBq, prior lung dose 10 Gy, only the calibrator uncertain (u = 10 %): every
    dose is D c with c = 1 + u z, so P(D c > L) = 1 - Phi((L / D - 1) / u) and, with a prior
    dose P, P(D c + P > L) = 1 - Phi(((L - P) / D - 1) / u). Doses by hand:
    e A = 49.67 x 0.94 x 2 = 93.3796 J; normal D_N = 93.3796 / (0.927 + 3.1 x 0.1236)
    = 93.3796 / 1.31016 = 71.2735 Gy; lung 49.67 x 0.06 x 2 / 1 = 5.9604 Gy (cumulative
    15.9604 Gy); whole liver 93.3796 / 1.854 = 50.3666 Gy; whole normal liver
    71.2735 x 0.927 / 1.6995 = 38.8764 Gy. Site limits (chosen so that no two
    probabilities are alike): normal 75, lung 6.5, cumulative 16.2, whole liver 57,
    whole normal 40 Gy."""
    base_case["positions"][0]["goal"] = {"activity_gbq": 2.0}
    base_case["prior_lung_dose_gy"] = 10
    base_case["uncertainty"] = _only(calibrator_relative_sd=0.1)
    site = _site(normal_liver_gy=75, lung_single_gy=6.5, lung_cumulative_gy=16.2,
                 whole_liver_gy=57, whole_normal_liver_gy=40)
    record = _plan(base_case, site)
    unc = record["uncertainty"]
    d_normal = 93.3796 / 1.31016
    lung = 49.67 * 0.06 * 2
    whole = 93.3796 / 1.854
    whole_normal = d_normal * 0.927 / 1.6995
    assert d_normal == pytest.approx(71.2735, abs=1e-4)
    assert whole_normal == pytest.approx(38.8764, abs=1e-4)
    expected = {
        "right hepatic: normal-liver-limit": ("right hepatic: normal liver", 75, d_normal, 0),
        "lung-limit": ("lung", 6.5, lung, 0),
        "lung-cumulative-limit": ("lung cumulative", 16.2, lung, 10),
        "whole-liver-limit": ("whole liver", 57, whole, 0),
        "whole-normal-liver-limit": ("whole normal liver", 40, whole_normal, 0)}
    assert set(unc["exceedance"]) == set(expected)
    for name, (figure, limit, dose, prior) in expected.items():
        entry = unc["exceedance"][name]
        assert entry["figure"] == figure, name
        assert entry["limit_gy"] == limit, name
        assert unc["figures"][figure]["nominal"] == pytest.approx(dose + prior, rel=1e-5), name
        p = 1 - norm.cdf(((limit - prior) / dose - 1) / 0.1)
        assert entry["probability"] == pytest.approx(p, abs=0.01), name
    # any limit: the one with the lowest L / D, the whole normal liver (40 / 38.8764)
    assert unc["probability_any_limit_exceeded"] == pytest.approx(
        1 - norm.cdf((40 / whole_normal - 1) / 0.1), abs=0.01)
    # an explicit activity is never scaled: no activity to propose at 5 %
    assert unc["at_exceedance_probability"] is None


def test_bsa_activity_is_explicit_in_the_monte_carlo(base_case):
    """Bugs caught: a position without a goal (the BSA method) failing in the uncertainty
    section, or treated as set for a dose (its activity then divided by the calibrator's
    error instead of multiplied, and scaled at the exceedance probability). SIR-Spheres by
    BSA, calibrator only, u = 10 %: the activity figure of a BSA activity A is A c, 95 %
    interval A (1 -+ 1.96 u)."""
    base_case.update(product="sir-spheres", method="bsa")
    for pos in base_case["positions"]:
        del pos["goal"]
    base_case["uncertainty"] = _only(calibrator_relative_sd=0.1)
    record = _plan(base_case)
    activity = record["positions"][0]["activity_gbq"]
    figure = record["uncertainty"]["figures"]["right hepatic: activity"]
    assert figure["nominal"] == pytest.approx(activity)
    assert figure["low"] == pytest.approx(activity * (1 - Z975 * 0.1), rel=0.01)
    assert figure["high"] == pytest.approx(activity * (1 + Z975 * 0.1), rel=0.01)
    assert record["uncertainty"]["at_exceedance_probability"] is None


def test_activity_limited_by_the_lung_is_bound_to_the_lung_dose(base_case):
    """Bug caught: a goal-bound position whose activity the lung limit cut down still bound to
    its goal's figure in the Monte Carlo (its activity then has the tumour dose's spread, not
    the lung dose's). Site lung limit 5 Gy: lung dose per GBq 49.67 x 0.06 / 1 kg = 2.98020
    Gy/GBq, so A = 5 / 2.9802 = 1.67774 GBq (below the 2.263 GBq of the 250 Gy goal). Only the
    lung mass uncertain (10 %): the lung dose is 5 / (1 + 0.1 z); the activity that gives it
    5 Gy is A (1 + 0.1 z), 95 % interval A (1 -+ 0.196); the tumour dose has no spread at all.
    The lung limit is met at the nominal mass and exceeded when the mass is low: probability
    0.5; with the case's exceedance probability of 10 % (not the 5 % default), the highest
    activity is A (1 - 1.2816 x 0.1), z at the 10th percentile."""
    base_case["uncertainty"] = _only(lung_mass_relative_sd=0.1, exceedance_probability=0.1)
    record = _plan(base_case, _site(lung_single_gy=5))
    position = record["positions"][0]
    assert position["limited_by"] == "lung-limit"
    activity = 5 / (49.67 * 0.06)
    assert position["activity_gbq"] == pytest.approx(activity, rel=1e-9)
    unc = record["uncertainty"]
    figure = unc["figures"]["right hepatic: activity"]
    assert figure["low"] == pytest.approx(activity * (1 - Z975 * 0.1), rel=0.01)
    assert figure["high"] == pytest.approx(activity * (1 + Z975 * 0.1), rel=0.01)
    assert unc["exceedance"]["lung-limit"] == {"figure": "lung", "limit_gy": 5,
                                               "probability": pytest.approx(0.5, abs=0.01)}
    at = unc["at_exceedance_probability"]
    assert at["probability"] == 0.1
    assert at["scale_factor"] == pytest.approx(1 - Z90 * 0.1, rel=0.005)
    assert at["activities_gbq"]["right hepatic"] == pytest.approx(
        activity * (1 - Z90 * 0.1), rel=0.005)


def test_tumour_goal_is_bound_to_the_lowest_tnr_tumour_not_the_first(base_case):
    """Bug caught: the partition flag lost on its way to the binding figure, so that a tumour
    goal is bound to the first tumour instead of the lowest-TNR one that the goal aims at.
    T1 (120 mL, TNR 3.1) first, T2 (1 mL, TNR 2) second; only T2's TNR uncertain (10 %).
    T2 is 1.03 g against 1.31 kg of TNR-weighted mass, so its TNR moves the normal-liver
    dose by at most 2 x 0.3 x 1.03e-3 / 1.31 = 0.05 %: the dose of T2 is its goal x (1 + 0.1 z)
    and the activity bound to it A / (1 + 0.1 z), 2.5th percentile A / 1.196. Bound to T1
    (the bug), the activity would have (almost) no spread."""
    base_case["positions"][0]["tumours"].append({"name": "T2", "volume_ml": 1, "tnr": 2.0})
    base_case["whole_liver_tumour_volume_ml"] = 151
    base_case["uncertainty"] = _only(tnr_relative_sd={"T1": 0.0, "T2": 0.1})
    record = _plan(base_case)
    position = record["positions"][0]
    assert [t["dose_gy"] for t in position["tumours"]] == [
        pytest.approx(250 * 3.1 / 2), pytest.approx(250)]
    figure = record["uncertainty"]["figures"]["right hepatic: activity"]
    activity = position["activity_gbq"]
    assert figure["low"] == pytest.approx(activity / (1 + Z975 * 0.1), rel=0.01)
    # T1's own TNR uncertainty (0 here) is its own, not the 10 % default: its dose moves
    # only through T2's share of the denominator (at most 0.05 %)
    t1 = record["uncertainty"]["figures"]["right hepatic/T1"]
    assert t1["high"] / t1["low"] == pytest.approx(1.0, abs=2e-3)


def test_a_resolved_maximum_goal_binds_the_activity_to_its_dose():
    """Bug caught: the goal a 'maximum' was resolved to not passed on (the position then bound
    to nothing, as if its activity were explicit, or refused). QuiremSpheres, bilobar HCC,
    'maximum' in one lobe: EANM 2022 Table 4, one-compartment perfused dose 60 Gy. Only the
    calibrator uncertain (10 %): the activity bound to the 60 Gy perfused dose is A / c,
    2.5th percentile A / 1.196 (an explicit one would be A c, A x 0.804)."""
    doc = {"schema": "tareplanner.case/1", "product": "quiremspheres", "method": "partition",
           "tissue_density_g_per_ml": 1.0, "lung_shunt_fraction": 0.05,
           "lsf_method": "scout-spect", "lung_mass_kg": 1.0,
           "whole_liver_volume_ml": 1500, "whole_liver_tumour_volume_ml": 80,
           "scenario": {"intent": "bilobar", "histology": "hcc"},
           "positions": [{"name": "right", "normal_volume_ml": 900,
                          "tumours": [{"name": "T1", "volume_ml": 80, "tnr": 3}],
                          "goal": {"maximum": True}}],
           "uncertainty": _only(calibrator_relative_sd=0.1)}
    record = plan_case(parse_case(doc))
    position = record["positions"][0]
    assert position["goal_resolved"]["goal"] == {"perfused_dose_gy": 60}
    figures = record["uncertainty"]["figures"]
    assert figures["right: perfused"]["nominal"] == pytest.approx(60.0)
    activity = position["activity_gbq"]
    assert figures["right: activity"]["low"] == pytest.approx(activity / (1 + Z975 * 0.1),
                                                              rel=0.01)
    assert record["uncertainty"]["at_exceedance_probability"] is not None


def _resolution(**kw):
    table = {"fwhm_mm": 14.0, "grid_fwhm_mm": [10.0, 14.0, 18.0],
             "tnr": {"T1": [3.6, 3.1, 2.8]}, "lsf": [0.08, 0.06, 0.05],
             "distribution": "uniform", "half_range_mm": 4.0,
             "source": "measured on the camera's phantom", "assumed": False}
    table.update(kw)
    return table


@pytest.mark.parametrize("distribution, spread, fwhm_low, fwhm_high, assumed", [
    ("uniform", {"half_range_mm": 4.0}, 14 - 0.95 * 4, 14 + 0.95 * 4, True),
    ("normal", {"sd_mm": 2.0}, 14 - Z975 * 2, 14 + Z975 * 2, False)])
def test_resolution_table_enters_the_monte_carlo(base_case, distribution, spread, fwhm_low,
                                                 fwhm_high, assumed):
    """Bugs caught: the case's resolution table dropped on its way to the Monte Carlo, its
    distribution or spread mixed up (a uniform half range read as a normal sd), its LSF
    column ignored, or it reported without its FWHMs, spread, source or method, or an
    assumed resolution reported as measured.

    Explicit 2 GBq, nothing else uncertain. The FWHM is uniform on 14 -+ 4 mm (its 2.5th and
    97.5th percentiles 14 -+ 0.95 x 4 = 10.2 and 17.8 mm) or normal with sd 2 mm (14 -+
    1.96 x 2 = 10.08 and 17.92 mm). The LSF is 0.06 x (table at the FWHM) / 0.06, linear
    between the grid points: 0.08 - (f - 10) / 4 x 0.02 below 14 mm, 0.06 - (f - 14) / 4
    x 0.01 above. The lung dose 49.67 x LSF x 2 / 1 kg falls as the FWHM grows, so its low
    end is at the high FWHM and its high end at the low one."""
    base_case["positions"][0]["goal"] = {"activity_gbq": 2.0}
    table = _resolution(distribution=distribution, assumed=assumed)
    del table["half_range_mm"]
    base_case["uncertainty"] = _only(resolution={**table, **spread})
    record = _plan(base_case)

    def lsf_at(f):
        return 0.08 - (f - 10) / 4 * 0.02 if f < 14 else 0.06 - (f - 14) / 4 * 0.01

    lung = record["uncertainty"]["figures"]["lung"]
    assert lung["nominal"] == pytest.approx(49.67 * 0.06 * 2, rel=1e-9)
    assert lung["low"] == pytest.approx(49.67 * lsf_at(fwhm_high) * 2, rel=0.005)
    assert lung["high"] == pytest.approx(49.67 * lsf_at(fwhm_low) * 2, rel=0.005)
    assert record["uncertainty"]["inputs"]["resolution"] == {
        "fwhm_mm": 14.0, "distribution": distribution, **spread, "assumed": assumed,
        "source": "measured on the camera's phantom",
        "method": "the partial-volume correction repeated at FWHMs 10.0, 14.0, 18.0 mm; "
                  "TNRs and LSF interpolated per sample"}


def test_resolution_table_moves_the_tumour_dose_through_its_tnr(base_case):
    """Bug caught: the table's TNR column not carried into the Monte Carlo (or under another
    tumour's name). Explicit 2 GBq, no LSF column, uniform FWHM 14 -+ 4 mm: T1's TNR is
    3.1 x (table at f) / 3.1, 3.6 - (f - 10) / 4 x 0.5 below 14 mm, 3.1 - (f - 14) / 4 x 0.3
    above. T1's dose e A TNR / (0.927 + 0.1236 TNR), e A = 93.3796 J, rises with the TNR,
    so its high end is at the 2.5th percentile FWHM 10.2 mm (TNR 3.575) and its low end at
    17.8 mm (TNR 2.815)."""
    base_case["positions"][0]["goal"] = {"activity_gbq": 2.0}
    table = _resolution()
    del table["lsf"]
    base_case["uncertainty"] = _only(resolution=table)
    record = _plan(base_case)

    def dose(tnr):
        return 93.3796 * tnr / (0.927 + 0.1236 * tnr)

    t1 = record["uncertainty"]["figures"]["right hepatic/T1"]
    assert t1["high"] == pytest.approx(dose(3.6 - 0.2 / 4 * 0.5), rel=0.005)
    assert t1["low"] == pytest.approx(dose(3.1 - 3.8 / 4 * 0.3), rel=0.005)
    # without an LSF column the lung dose has no spread
    lung = record["uncertainty"]["figures"]["lung"]
    assert lung["low"] == pytest.approx(lung["high"], rel=1e-12)


def test_a_manual_lsf_is_not_moved_by_the_resolution(base_case):
    """Bug caught: a hand-entered LSF (lsf_method 'manual', not measured on the emission
    image) moved by the table's LSF column, as if the camera's resolution had changed it."""
    base_case["positions"][0]["goal"] = {"activity_gbq": 2.0}
    base_case["lsf_method"] = "manual"
    base_case["uncertainty"] = _only(resolution=_resolution())
    lung = _plan(base_case)["uncertainty"]["figures"]["lung"]
    assert lung["low"] == pytest.approx(49.67 * 0.06 * 2, rel=1e-12)
    assert lung["high"] == pytest.approx(49.67 * 0.06 * 2, rel=1e-12)


def test_a_position_without_activity_has_finite_figures(base_case):
    """Bug caught: a position the limits leave no activity (a prior lung dose of 50 Gy
    reaches the 50 Gy cumulative limit, TheraSphere package insert) bound to the lung dose:
    its activity figure 0 x nominal / sample gave 0 / 0 = NaN, written into the plan as
    NaN (not JSON). Its activity is 0 GBq in every sample."""
    import json
    base_case["prior_lung_dose_gy"] = 50
    record = _plan(base_case)
    assert record["positions"][0]["activity_gbq"] == 0
    figure = record["uncertainty"]["figures"]["right hepatic: activity"]
    assert (figure["nominal"], figure["median"], figure["low"], figure["high"]) == (0, 0, 0, 0)
    json.dumps(record["uncertainty"], allow_nan=False)


def test_a_position_capped_by_a_promoted_perfused_row_is_bound_to_its_perfused_dose():
    """Bug caught: a position whose activity a site-promoted perfused-volume row capped
    (limited_by guideline_check.PERFUSED_LIMIT) bound to its goal instead of the perfused
    dose that set it (its activity would then carry the tumour dose's spread)."""
    from collections import namedtuple

    from tareplanner.guideline_check import PERFUSED_LIMIT
    from tareplanner.plan_uncertainty import _binding
    t = namedtuple("T", "name tnr")
    assert _binding("P", "tumour_dose_gy", PERFUSED_LIMIT, [t("T1", 3.0)], True) == \
        "P: perfused"


@pytest.mark.parametrize("basis", ["fit uncertainty",
                                   "spread of the spheres' equivalent FWHMs (recovery misfit)"])
def test_a_normal_resolution_reports_what_its_sd_is(base_case, basis):
    """A calibrated camera's FWHM sd is its PSF fit's uncertainty or, for a camera whose
    spheres do not follow one PSF, the spread of their equivalent FWHMs: the plan's
    uncertainty record says which (the case's ``sd_basis``, word for word). Bugs caught: the
    basis dropped from the record, written under another key, or looked up under another
    key (never found, or a KeyError). Explicit 2 GBq; the lung dose's interval is that of
    a normal FWHM of sd 2 mm: 14 -+ 1.96 x 2 mm, LSF 0.08 - (f - 10) / 4 x 0.02 below 14 mm
    and 0.06 - (f - 14) / 4 x 0.01 above, lung dose 49.67 x LSF x 2 / 1 kg."""
    base_case["positions"][0]["goal"] = {"activity_gbq": 2.0}
    table = _resolution(distribution="normal", sd_mm=2.0, sd_basis=basis)
    del table["half_range_mm"]
    base_case["uncertainty"] = _only(resolution=table)
    record = _plan(base_case)
    assert record["uncertainty"]["inputs"]["resolution"] == {
        "fwhm_mm": 14.0, "distribution": "normal", "sd_mm": 2.0, "sd_basis": basis,
        "assumed": False, "source": "measured on the camera's phantom",
        "method": "the partial-volume correction repeated at FWHMs 10.0, 14.0, 18.0 mm; "
                  "TNRs and LSF interpolated per sample"}
    lung = record["uncertainty"]["figures"]["lung"]
    assert lung["low"] == pytest.approx(49.67 * (0.06 - (Z975 * 2) / 4 * 0.01) * 2, rel=0.005)
    assert lung["high"] == pytest.approx(49.67 * (0.08 - (4 - Z975 * 2) / 4 * 0.02) * 2,
                                         rel=0.005)
