"""The plan's own warnings (planning._clinical_warnings, _uncertainty_warnings) at their edges,
on the shared case of Testing/conftest.py (TheraSphere, Y-90 49.67 J/GBq, density 1.03 g/mL,
LSF 0.06, R = 0, lung 1 kg; 'right hepatic' 900 mL normal liver + T1 120 mL, TNR 3.1, goal
250 Gy: 2.26298 GBq, lung 6.7441 Gy; whole liver 1800 mL with 150 mL tumour). The
consistency checks allow 0.01 % for round-off (planning.py); each test names the bug it
catches."""

import pytest
from scipy.stats import norm

from tareplanner import catalogue
from tareplanner.planning import plan_case
from tareplanner.records.case import parse_case


def _plan(doc, site=None):
    return plan_case(parse_case(doc), site, "Test Hospital" if site else "")


def _warnings(record, code):
    return [w["message"] for w in record["warnings"] if w["code"] == code]


@pytest.mark.parametrize("whole_ml, warned", [(1019.8, True), (1019.95, False), (1020, False)])
def test_perfused_volumes_above_the_whole_liver(base_case, whole_ml, warned):
    """Bug caught: territories adding up to more than the liver (overlapping contours) not
    flagged, or flagged within the 0.01 % round-off allowance. Perfused 900 + 120 = 1020 mL;
    1019.8 x 1.0001 = 1019.90 < 1020 (warned), 1019.95 x 1.0001 = 1020.05 (not)."""
    base_case["whole_liver_volume_ml"] = whole_ml
    record = _plan(base_case)
    messages = _warnings(record, "perfused-exceeds-liver")
    assert bool(messages) is warned
    if warned:
        assert messages == ["perfused volumes add up to 1020 mL, more than the whole liver "
                            "(1019.8 mL): territories overlap?"]


@pytest.mark.parametrize("tumour_ml, warned", [(119.98, True), (119.99, False), (120, False)])
def test_tumours_above_the_stated_tumour_volume(base_case, tumour_ml, warned):
    """Bug caught: positions' tumours adding up to more than the case's whole-liver tumour
    volume not flagged (or flagged within round-off): 120 mL against 119.98 x 1.0001 =
    119.992 (warned) and 119.99 x 1.0001 = 120.002 (not)."""
    base_case["whole_liver_tumour_volume_ml"] = tumour_ml
    messages = _warnings(_plan(base_case), "tumour-volume-inconsistent")
    assert bool(messages) is warned
    if warned:
        assert messages == ["tumours of the positions add up to 120 mL, more than "
                            "whole_liver_tumour_volume_ml (119.98)"]


def test_unspecified_lsf_method_is_named(base_case):
    """Bug caught: an LSF of unknown method (planar LSF is typically several times SPECT LSF,
    Thomas et al., JVIR 2025) passed without a word."""
    assert not _warnings(_plan(base_case), "lsf-method-unspecified")
    base_case["lsf_method"] = "unspecified"
    (message,) = _warnings(_plan(base_case), "lsf-method-unspecified")
    assert "Thomas et al., JVIR 2025" in message


def test_single_compartment_tumour_doses_are_named(base_case):
    """Bug caught: single-compartment tumour doses (equal to the perfused mean) shown
    without saying so; a position without tumours needs no such warning."""
    base_case["method"] = "single-compartment"
    assert _warnings(_plan(base_case), "single-compartment-tumour") == [
        "single-compartment model: tumour doses equal the perfused mean dose"]
    base_case["positions"][0].update(tumours=[], goal={"normal_dose_gy": 50})
    base_case["whole_liver_tumour_volume_ml"] = 0
    assert not _warnings(_plan(base_case), "single-compartment-tumour")


def test_a_lung_scaled_activity_says_by_how_much_and_why(base_case):
    """Bug caught: an activity cut down by the lung limit without a warning, or with another
    factor or source. Site lung limit 5 Gy against the goal's 6.7441 Gy: factor 5 / 6.7441
    = 0.741 (EANM/package-insert lung limit replaced by the site's, named as the site's)."""
    site = catalogue.validate_site_limits({"schema": "tareplanner.site-limits/1",
                                           "site": "Test Hospital",
                                           "products": {"therasphere": {"lung_single_gy": 5}}})
    record = _plan(base_case, site)
    assert record["positions"][0]["limited_by"] == "lung-limit"
    assert record["lung_scale_factor"] == pytest.approx(5 / 6.7441, rel=1e-4)
    assert _warnings(record, "lung-limit-scaled") == [
        "right hepatic: activity scaled by 0.741 to respect the lung limit "
        "(site limits: Test Hospital)"]
    assert record["limits_source"] == "site limits: Test Hospital"


def test_no_activity_within_the_limits_is_named(base_case):
    """Bug caught: a position planned to 0 GBq without a warning. A prior lung dose of 50 Gy
    reaches the 50 Gy cumulative limit (TheraSphere package insert) before any activity."""
    base_case["prior_lung_dose_gy"] = 50
    record = _plan(base_case)
    assert record["positions"][0]["activity_gbq"] == 0
    assert _warnings(record, "zero-activity") == [
        "right hepatic: no activity can be given within the limits"]


@pytest.mark.parametrize("limit_gy, warned", [(6.5, True), (9.0, False)])
def test_probable_exceedance_is_a_warning(base_case, limit_gy, warned):
    """Bug caught: a limit the planned activities exceed with a probability above 5 % not
    warned of, or its message with another probability or interval. Explicit 2 GBq, only
    the calibrator uncertain (10 %): lung 49.67 x 0.06 x 2 = 5.9604 Gy, 95 % interval
    5.9604 x (1 -+ 1.96 x 0.1) = 4.8-7.1 Gy; P(lung > 6.5) = 1 - Phi((6.5 / 5.9604 - 1) /
    0.1) = 18 %; against 9 Gy: 1 - Phi(5.1), 0 %."""
    base_case["positions"][0]["goal"] = {"activity_gbq": 2.0}
    base_case["uncertainty"] = {"calibrator_relative_sd": 0.1, "residual_sd": 0.0,
                                "lsf_relative_sd": 0.0, "boundary_mm": 0.0,
                                "tnr_relative_sd": 0.0, "lung_mass_relative_sd": 0.0,
                                "samples": 40000, "seed": 5}
    site = catalogue.validate_site_limits({"schema": "tareplanner.site-limits/1",
                                           "site": "Test Hospital",
                                           "products": {"therasphere": {
                                               "lung_single_gy": limit_gy}}})
    record = _plan(base_case, site)
    p = 1 - norm.cdf((limit_gy / 5.9604 - 1) / 0.1)
    messages = _warnings(record, "limit-exceedance-probable")
    assert bool(messages) is warned
    if warned:
        assert f"{p:.0%}" == "18%"
        assert messages == [f"lung-limit: exceeded with probability 18% at the planned "
                            f"activities (limit {limit_gy:g} Gy, 95% interval 4.8-7.1 Gy)"]


@pytest.mark.parametrize("hard_gy, own", [(None, False), (45, True)])
def test_a_promoted_row_and_the_sites_own_limit_are_both_named(hard_gy, own):
    """Bug caught: the source of a limit that a site both promoted from a guideline row and
    set itself naming only one of them, or naming the product's 'no hard limit' text when
    the site set none. QuiremSpheres, bilobar HCC, 'maximum' in both lobes (60 Gy perfused,
    EANM 2022 Table 4); the site promotes the bilobar whole-normal-liver row (< 40 Gy, LOE 4),
    which scales both lobes by 0.744 (Testing/test_safety_edges.py); with its own 45 Gy as
    well, the 40 Gy still binds and both are named."""
    from test_safety_edges import BILOBAR_HCC, _two_lobes
    site = {"schema": "tareplanner.site-limits/1", "site": "Test Hospital",
            "products": {"quiremspheres": {"whole_normal_liver_gy": hard_gy}} if hard_gy else {},
            "guidelines": {"promote": [{"row": "eanm22-holmium-hcc-bilobar-whole-normal-40",
                                        "reason": "protocol 2026"}]}}
    record = _plan(_two_lobes(scenario=BILOBAR_HCC), catalogue.validate_site_limits(site))
    messages = _warnings(record, "whole-normal-liver-limit-scaled")
    assert len(messages) == 2
    for message in messages:
        assert "activity scaled by 0.744 to respect the whole normal liver limit" in message
        assert "Table 4 (166Ho microspheres), HCC, bilobar" in message
        assert "(LOE 4), site promoted to a hard limit (protocol 2026)" in message
        assert message.endswith("; site limits: Test Hospital)") is own
        assert "no hard limit" not in message


def test_a_violation_names_the_dose_the_limit_and_its_source(base_case):
    """Bug caught: a violation of the plan recorded without its dose, its limit or the
    limit's source. Explicit 12 GBq: lung 49.67 x 0.06 x 12 / 1 kg = 35.7624 Gy against the
    30 Gy per treatment of the TheraSphere package insert."""
    base_case["positions"][0]["goal"] = {"activity_gbq": 12.0}
    (violation,) = _plan(base_case)["violations"]
    assert set(violation) == {"limit", "dose_gy", "limit_gy", "source"}
    assert violation["limit"] == "lung-limit"
    assert violation["dose_gy"] == pytest.approx(35.7624, rel=1e-9)
    assert violation["limit_gy"] == 30
    assert violation["source"].startswith("TheraSphere package insert; lung <= 30 Gy")
