"""The planning engine end to end: records, BSA, products, ordering, warnings, site limits."""

import json

import pytest

from tareplanner import catalogue
from tareplanner.planning import plan_case
from tareplanner.records.case import parse_case


def _plan(doc, **kw):
    return plan_case(parse_case(doc), **kw)


def test_record_fields_of_the_issue(base_case):
    record = _plan(base_case)
    assert record["schema"] == "tareplanner.plan/1"
    pos = record["positions"][0]
    for key in ("name", "activity_gbq", "normal_dose_gy", "perfused_dose_gy", "tumours",
                "limited_by", "violations"):
        assert key in pos
    assert pos["tumours"][0]["name"] == "T1"
    assert pos["tumours"][0]["dose_gy"] == pytest.approx(250)
    assert pos["activity_gbq"] == pytest.approx(2.2630, abs=1e-4)
    for key in ("total_activity_gbq", "lung_dose_gy", "limits", "ordering", "warnings",
                "software", "input_sha256"):
        assert key in record
    # lung dose = 49.67 * 0.06 * 2.2630 / 1.0 = 6.744 Gy (hand)
    assert record["lung_dose_gy"] == pytest.approx(6.744, abs=1e-3)
    # the package insert gives no normal-liver limit: EANM 2022's < 120 Gy is a recommendation
    assert record["limits"]["normal_liver_gy"]["value"] is None
    assert "recommendation" in record["limits"]["normal_liver_gy"]["source"]
    assert len(record["input_sha256"]) == 64
    json.dumps(record)  # JSON-ready


def test_positions_keep_input_order(base_case):
    base_case["positions"] = [
        {"name": n, "normal_volume_ml": v, "tumours": [], "goal": {"normal_dose_gy": 50}}
        for n, v in [("z", 300), ("a", 200), ("m", 100)]]
    assert [p["name"] for p in _plan(base_case)["positions"]] == ["z", "a", "m"]


def test_input_hash_ignores_key_order(base_case):
    reordered = dict(reversed(list(base_case.items())))
    assert _plan(base_case)["input_sha256"] == _plan(reordered)["input_sha256"]


def test_bsa_plan_by_hand(base_case):
    # 172 cm / 80 kg -> BSA 1.9317 m2; involvement
    # 150/1800 = 0.08333; whole liver
    # A = 1.9317 - 0.2 + 0.0833 = 1.8150 GBq; perfused (900+120)/1800 = 0.5667 -> 1.0285 GBq;
    # LSF 12 % -> x0.8 = 0.8228 GBq.
    base_case.update(product="sir-spheres", method="bsa", lung_shunt_fraction=0.12)
    del base_case["positions"][0]["goal"]
    record = _plan(base_case)
    pos = record["positions"][0]
    assert record["bsa_m2"] == pytest.approx(1.9317, abs=1e-4)
    assert pos["activity_gbq"] == pytest.approx(0.8228, abs=2e-4)
    assert pos["bsa"]["lsf_factor"] == 0.8
    assert record["dose_model"] == "partition"
    assert any(w["code"] == "bsa-lsf-reduction" for w in record["warnings"])
    assert any(w["code"] == "lsf-high" for w in record["warnings"])


@pytest.mark.parametrize("intent, compromised, expected", [
    ("bilobar", True, 30), ("bilobar", False, 40), ("unilobar", True, 40),
    ("unilobar", False, 40)])
def test_sir_maximum_goal_follows_the_scenario(base_case, intent, compromised, expected):
    """Catches resin's 40/30 Gy applied to every intent as hard caps. EANM 2022 Table 3
    (resin): unilobar normal perfused liver < 40 Gy; bilobar < 30 Gy in pretreated or
    compromised liver, else 40 Gy (LOE 3). A 'maximum' goal without a hard limit reaches
    that recommendation, named in the record."""
    base_case.update(product="sir-spheres", liver_compromised=compromised,
                     scenario={"intent": intent, "histology": "hcc"})
    base_case["positions"][0]["goal"] = {"maximum": True}
    record = _plan(base_case)
    assert record["positions"][0]["normal_dose_gy"] == pytest.approx(expected)
    resolved = record["positions"][0]["goal_resolved"]
    assert resolved["goal"] == {"normal_dose_gy": expected} and "Table 3" in resolved["source"]


def test_maximum_goal_without_any_ceiling_is_refused(base_case):
    """No hard limit and no scenario: 'maximum' has nothing to reach; a clear error naming
    the goal, nothing planned."""
    from tareplanner.errors import FieldValueError
    base_case.update(product="sir-spheres")
    base_case["positions"][0]["goal"] = {"maximum": True}
    with pytest.raises(FieldValueError, match=r"positions\[0\]\.goal.*no scenario given"):
        _plan(base_case)


def test_quirem_ho166_single_compartment_60_gy(base_case):
    # 60 Gy to 1 kg perfused liver with Ho-166: A = 60 * 1.0 / (15.87 * (1 - LSF)).
    base_case.update(product="quiremspheres", method="single-compartment",
                     lung_shunt_fraction=0.0, tissue_density_g_per_ml=1.0)
    base_case["positions"] = [{"name": "whole liver", "normal_volume_ml": 1000,
                               "goal": {"perfused_dose_gy": 60}}]
    record = _plan(base_case)
    assert record["positions"][0]["activity_gbq"] == pytest.approx(60 / 15.87)
    assert record["ordering"]["kind"] == "patient-specific"
    assert record["ordering"]["positions"][0]["calibration_time"].startswith("2026-12-01T10:00")


def test_sir_ordering_draw(base_case):
    base_case.update(product="sir-spheres",
                     ordering={"vial_calibration_time": "2026-11-30T10:00:00+01:00"})
    base_case["positions"][0]["goal"] = {"normal_dose_gy": 30}
    record = _plan(base_case)
    entry = record["ordering"]["positions"][0]
    in_vial = 3.0 * 2 ** (-24 / 64.1)
    assert entry["vial_activity_at_treatment_gbq"] == pytest.approx(in_vial)
    assert entry["volume_ml"] == pytest.approx(5.0 * entry["activity_gbq"] / in_vial)


def test_warnings_go_into_the_record(base_case):
    base_case["positions"][0]["tumours"][0]["tnr"] = 0.8
    base_case["positions"][0]["goal"] = {"normal_dose_gy": 60}
    codes = {w["code"] for w in _plan(base_case)["warnings"]}
    assert {"tnr-below-1", "tumour-below-target"} <= codes


def test_explicit_activity_violations_in_record(base_case):
    base_case["lung_shunt_fraction"] = 0.2
    base_case["positions"][0]["goal"] = {"activity_gbq": 5.0}
    site = catalogue.validate_site_limits({"schema": "tareplanner.site-limits/1",
                                           "products": {"therasphere": {"normal_liver_gy": 120}}})
    record = _plan(base_case, site_limits=site, site_limits_label="site 120 Gy")
    assert record["positions"][0]["activity_gbq"] == 5.0
    assert record["positions"][0]["violations"][0]["limit"] == "normal-liver-limit"
    assert record["violations"][0]["limit"] == "lung-limit"
    assert any(w["code"] == "limit-exceeded" for w in record["warnings"])


def test_site_limits_override_and_are_recorded(base_case):
    site = catalogue.validate_site_limits({"schema": "tareplanner.site-limits/1",
                                           "site": "Test Hospital",
                                           "products": {"therasphere": {"normal_liver_gy": 70}}})
    base_case["positions"][0]["goal"] = {"maximum": True}
    record = _plan(base_case, site_limits=site, site_limits_label="Test Hospital")
    assert record["positions"][0]["normal_dose_gy"] == pytest.approx(70)
    assert record["limits"]["normal_liver_gy"] == {"value": 70,
                                                   "source": "site limits: Test Hospital"}
    assert record["limits_source"] == "site limits: Test Hospital"


def test_planar_counts_give_lsf(base_case):
    del base_case["lung_shunt_fraction"]
    del base_case["lsf_method"]
    base_case["planar_counts"] = {"lung_anterior_counts": 100, "lung_posterior_counts": 400,
                                  "liver_anterior_counts": 1600, "liver_posterior_counts": 2500}
    record = _plan(base_case)
    assert record["lung_shunt_fraction"] == pytest.approx(200 / 2200)
    assert record["lsf_method"] == "planar-geometric-mean"
