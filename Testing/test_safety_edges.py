"""Edges of every piecewise rule of the plan, the lung mass and the whole-liver limits.

Each expected value is a hand calculation from the cited formula or table, written out
beside the assertion; each test names the error it is there to catch.
"""

import copy
import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tareplanner import catalogue
from tareplanner.errors import (ClinicalCutoffError, FieldValueError, MissingFieldError,
                                UnknownNameError)
from tareplanner.physics.bsa import LsfBand, bsa_lsf_factor, check_lsf_bands
from tareplanner.physics.ordering import latest_calibration_time
from tareplanner.planning import plan_case
from tareplanner.records.case import parse_case
from tareplanner.records.plan_text import plan_summary

CF_Y90 = 49.67   # J/GBq (nuclides.json; TvNG 2023)
CF_HO = 15.87    # J/GBq
EPS = 1e-9


def _plan(doc, site=None, label="test site"):
    return plan_case(parse_case(doc), site, label if site else "")


def _codes(record):
    return [w["code"] for w in record["warnings"]]


def _bsa_case(lsf):
    # 172 cm, 80 kg: DuBois 0.007184 * 80^0.425 * 172^0.725 = 1.9317 m2 (hand, see test_bsa);
    # whole liver 1600 mL of which 400 mL tumour (involvement 0.25), one whole-liver position.
    return {"schema": "tareplanner.case/1", "product": "sir-spheres", "method": "bsa",
            "lung_shunt_fraction": lsf, "lsf_method": "planar-geometric-mean",
            "patient": {"height_cm": 172, "weight_kg": 80},
            "whole_liver_volume_ml": 1600, "whole_liver_tumour_volume_ml": 400,
            "positions": [{"name": "whole liver", "normal_volume_ml": 1200,
                           "tumours": [{"name": "T1", "volume_ml": 400}]}]}


BSA_WHOLE_LIVER_GBQ = 0.20247 * 1.72 ** 0.725 * 80 ** 0.425 - 0.2 + 0.25  # = 1.9817 GBq


# --- 1. SIR-Spheres BSA lung-shunt bands (Sirtex IFU: < 10 % none, 10-15 % x0.8,
#        15-20 % x0.6, > 20 % do not treat) ------------------------------------------------

@pytest.mark.parametrize("lsf, factor", [
    (0.0, 1.0), (0.10 - EPS, 1.0),
    (0.10, 0.8), (0.10 + EPS, 0.8), (0.15 - EPS, 0.8),
    (0.15, 0.6), (0.15 + EPS, 0.6), (0.20 - EPS, 0.6),
    (0.20, 0.6),   # exactly 20 %: still the 15-20 % band; only "> 20 %" is refused
])
def test_bsa_activity_at_every_band_edge(lsf, factor):
    """Catches a band edge that belongs to no band (at 20 % the activity was given without
    reduction, x1.0 instead of x0.6: +67 %) or to the wrong band."""
    record = _plan(_bsa_case(lsf))
    assert record["positions"][0]["bsa"]["lsf_factor"] == factor
    assert record["positions"][0]["activity_gbq"] == pytest.approx(
        BSA_WHOLE_LIVER_GBQ * factor, rel=1e-4)


def test_lsf_just_above_the_cutoff_is_refused():
    """Catches a cut-off that lets 20 % + epsilon through."""
    with pytest.raises(ClinicalCutoffError, match="lung_shunt_fraction"):
        _plan(_bsa_case(0.20 + EPS))


def test_site_cutoff_is_applied_at_its_edge():
    """Catches a site's stricter shunt cut-off being ignored (it used to be checked against
    the product default only, before site limits were known)."""
    site = {"schema": "tareplanner.site-limits/1", "products": {"sir-spheres": {"lsf_cutoff": 0.15}}}
    assert _plan(_bsa_case(0.15), site)["positions"][0]["bsa"]["lsf_factor"] == 0.6
    with pytest.raises(ClinicalCutoffError, match=r"<= 0.15"):
        _plan(_bsa_case(0.15 + EPS), site)


def test_site_cutoff_above_the_table_refuses_the_bsa_method():
    """Catches the silent default factor 1.0 for an LSF above the manufacturer's table
    (a site that raises the cut-off to 25 % must not get full BSA activity at 22 %)."""
    site = {"schema": "tareplanner.site-limits/1", "products": {"sir-spheres": {"lsf_cutoff": 0.25}}}
    with pytest.raises(ClinicalCutoffError, match="reduction table"):
        _plan(_bsa_case(0.22), site)
    with pytest.raises(ValueError, match="outside"):
        bsa_lsf_factor(0.22, catalogue.product("sir-spheres").bsa_lsf_bands)


@pytest.mark.parametrize("bands, words", [
    ([LsfBand(0.0, 0.1, 1.0), LsfBand(0.15, 0.2, 0.6, True)], "gap or overlap"),
    ([LsfBand(0.0, 0.12, 1.0), LsfBand(0.1, 0.2, 0.6, True)], "gap or overlap"),
    ([LsfBand(0.0, 0.1, 1.0), LsfBand(0.1, 0.2, 0.6)], "last band"),
    ([LsfBand(0.05, 0.2, 1.0, True)], "starts at"),
    ([LsfBand(0.0, 0.2, 1.5, True)], "activity factor"),
])
def test_band_tables_with_a_gap_or_open_end_are_refused(bands, words):
    """Catches a reduction table that leaves an LSF without a band (the class of error behind
    the 20 % overdose): the catalogue refuses it when it is read."""
    with pytest.raises(ValueError, match=words):
        check_lsf_bands(bands)


def test_packaged_band_table_matches_the_ifu():
    """The product file against the Sirtex IFU table, typed here from the IFU."""
    bands = catalogue.product("sir-spheres").bsa_lsf_bands
    assert [(b.lsf_from, b.lsf_to, b.activity_factor, b.to_inclusive) for b in bands] == [
        (0.0, 0.10, 1.0, False), (0.10, 0.15, 0.8, False), (0.15, 0.20, 0.6, True)]
    assert catalogue.product("sir-spheres").limits["lsf_cutoff"].value == 0.20


# --- other piecewise rules of the plan, at each edge -------------------------------------

def _explicit(base_case, activity_gbq, **changes):
    doc = copy.deepcopy(base_case)
    doc.update(changes)
    doc["positions"][0]["goal"] = {"activity_gbq": activity_gbq}
    return doc


SITE_120 = {"schema": "tareplanner.site-limits/1", "site": "test site",
            "products": {"therasphere": {"normal_liver_gy": 120}}}


def test_normal_liver_limit_edge(base_case):
    """A dose equal to a hard limit is allowed; just above is a violation. The 120 Gy is the
    site's own hard limit (the package insert gives none: EANM 2022 Table 2's < 120 Gy is a
    recommendation). Hand: TheraSphere, LSF 6 %, normal 900 mL and T1 120 mL TNR 3.1 at
    1.03 g/mL: D_N/A = 49.67 * 0.94 / (0.927 + 3.1 * 0.1236) = 35.637 Gy/GBq; 120 Gy at
    3.3673 GBq."""
    per_gbq = CF_Y90 * 0.94 / (0.9 * 1.03 + 3.1 * 0.12 * 1.03)
    at_limit = 120 / per_gbq
    assert per_gbq == pytest.approx(35.637, abs=1e-3)
    assert _plan(_explicit(base_case, at_limit), SITE_120)["positions"][0]["violations"] == []
    over = _plan(_explicit(base_case, at_limit * (1 + 1e-6)), SITE_120)["positions"][0]
    assert [v["limit"] for v in over["violations"]] == ["normal-liver-limit"]
    # without the site's limit nothing binds the normal liver: no violation, however high
    assert _plan(_explicit(base_case, at_limit * 2))["positions"][0]["violations"] == []


def test_lung_limit_edge(base_case):
    """Lung dose equal to 30 Gy is allowed, just above is a violation. Hand: 1 kg lung,
    LSF 6 %: 49.67 * 0.06 = 2.9802 Gy/GBq; 30 Gy at 10.0665 GBq."""
    at_limit = 30 / (CF_Y90 * 0.06)
    doc = _explicit(base_case, at_limit)
    doc["positions"][0]["normal_volume_ml"] = 4000  # keep the normal liver far from its limit
    doc["whole_liver_volume_ml"] = 4200
    assert not any(v["limit"] == "lung-limit" for v in _plan(doc)["violations"])
    doc["positions"][0]["goal"] = {"activity_gbq": at_limit * (1 + 1e-6)}
    assert "lung-limit" in [v["limit"] for v in _plan(doc)["violations"]]


@pytest.mark.parametrize("lsf, warned", [(0.10 - EPS, False), (0.10, False), (0.10 + EPS, True)])
def test_lsf_high_warning_edge(base_case, lsf, warned):
    """'LSF above 10 %' warns above 10 %, not at it."""
    base_case["lung_shunt_fraction"] = lsf
    assert ("lsf-high" in _codes(_plan(base_case))) is warned


@pytest.mark.parametrize("tnr, warned", [(1 - EPS, True), (1.0, False), (1 + EPS, False)])
def test_tnr_below_one_edge(base_case, tnr, warned):
    """'TNR < 1' warns below 1 only."""
    base_case["positions"][0]["tumours"][0]["tnr"] = tnr
    assert ("tnr-below-1" in _codes(_plan(base_case))) is warned


@pytest.mark.parametrize("goal, warned", [(205 - 1e-6, True), (205, False), (205 + 1e-6, False)])
def test_tumour_target_edge(base_case, goal, warned):
    """A tumour at the TheraSphere target minimum is not below it: EANM 2022 Table 2 prints
    HCC tumour '>= 205' Gy (the former 200 warned nothing between 200 and 205)."""
    base_case["positions"][0]["goal"] = {"tumour_dose_gy": goal}
    assert ("tumour-below-target" in _codes(_plan(base_case))) is warned


@pytest.mark.parametrize("volume, warned", [(10 - 1e-6, True), (10, False)])
def test_small_perfused_volume_edge(base_case, volume, warned):
    base_case["positions"][0].update(normal_volume_ml=volume, tumours=[],
                                     goal={"normal_dose_gy": 50})
    assert ("perfused-volume-small" in _codes(_plan(base_case))) is warned


@pytest.mark.parametrize("liver, warned", [(600 - 1e-6, True), (600, False), (5000, False),
                                           (5000 + 1e-6, True)])
def test_liver_volume_plausibility_edges(base_case, liver, warned):
    base_case.update(whole_liver_volume_ml=liver, whole_liver_tumour_volume_ml=120)
    base_case["positions"][0]["normal_volume_ml"] = 400
    assert ("liver-volume-implausible" in _codes(_plan(base_case))) is warned


def _therasphere_order(base_case, treatment):
    base_case["treatment_time"] = treatment.isoformat()
    return _plan(base_case)


def test_therasphere_calibration_week_edges(base_case):
    """Calibration noon Eastern Time on Sunday (TheraSphere insert): a treatment at that
    instant uses that calibration (0 days after); one minute earlier it is the previous
    Sunday's (7 days minus a minute)."""
    et = ZoneInfo("America/New_York")
    sunday_noon = datetime(2026, 11, 29, 12, 0, tzinfo=et)   # 29 Nov 2026 is a Sunday
    assert latest_calibration_time(sunday_noon, "sunday", "12:00", "America/New_York") \
        == sunday_noon
    earlier = sunday_noon - timedelta(minutes=1)
    assert latest_calibration_time(earlier, "sunday", "12:00", "America/New_York") \
        == datetime(2026, 11, 22, 12, 0, tzinfo=et)


@pytest.mark.parametrize("minutes, inside", [(-1, True), (0, True), (1, False)])
def test_therasphere_shelf_life_edge(minutes, inside):
    """12-day shelf life from calibration (insert): 12 days exactly is inside."""
    from tareplanner.physics.ordering import whole_vial_order
    calibration = datetime(2026, 11, 22, 12, 0, tzinfo=ZoneInfo("America/New_York"))
    treatment = calibration + timedelta(days=12, minutes=minutes)
    order = whole_vial_order(1.0, treatment, 64.1, [3, 5, 7, 10, 15, 20], calibration, 12)
    assert order.within_shelf_life is inside


@pytest.mark.parametrize("hours, warned", [(24 - 1 / 60, False), (24, False), (24 + 1 / 60, True)])
def test_sir_vial_use_window_edge(hours, warned):
    """SIR vial used more than 24 h after calibration warns; at 24 h it does not."""
    doc = _bsa_case(0.05)
    treatment = datetime(2026, 12, 1, 10, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))
    doc["treatment_time"] = treatment.isoformat()
    doc["ordering"] = {"vial_calibration_time": (treatment - timedelta(hours=hours)).isoformat()}
    assert ("outside-shelf-life" in _codes(_plan(doc))) is warned


# --- 2. lung mass -------------------------------------------------------------------------

def _lung_case(base_case, **lung):
    doc = _explicit(base_case, 2.0)
    del doc["lung_mass_kg"]
    doc.update(lung)
    return doc


def test_lung_dose_uses_the_ct_lung_mass(base_case):
    """Catches the plan silently using 1 kg when the case holds the CT mass. Hand:
    D_L = CF * A * LSF * (1 - R) / m = 49.67 * 2 * 0.06 / 0.72 = 8.2783 Gy."""
    record = _plan(_lung_case(base_case, lung_mass_kg=0.72,
                              lung_mass_source="ct-densitovolumetry"))
    assert record["lung_dose_gy"] == pytest.approx(49.67 * 2 * 0.06 / 0.72, rel=1e-9)
    assert record["lung_dose_gy"] == pytest.approx(8.2783, abs=1e-4)
    assert record["lung_mass"]["source"] == "ct-densitovolumetry"
    assert "0.72 kg: CT densitovolumetry" in plan_summary(record)
    # 0.72 vs 1 kg: |1 - 0.72| / 0.72 = 39 % > 20 %
    assert "lung-mass-differs" in _codes(record)


def test_convention_chosen_in_the_case_is_recorded(base_case):
    """The 1 kg convention chosen explicitly: D_L = 49.67 * 2 * 0.06 / 1 = 5.9604 Gy, with
    the CT mass kept for comparison and the choice in the record and the text."""
    record = _plan(_lung_case(base_case, lung_mass_source="convention", lung_mass_ct_kg=0.72))
    assert record["lung_dose_gy"] == pytest.approx(5.9604, abs=1e-4)
    assert (record["lung_mass"]["source"], record["lung_mass"]["chosen_by"]) == \
        ("convention", "case")
    assert "chosen in the case (CT mass 0.72 kg)" in plan_summary(record)
    assert "lung-mass-differs" in _codes(record)
    assert "lung-mass-not-measured" not in _codes(record)


def test_convention_chosen_by_the_site_is_recorded(base_case):
    site = {"schema": "tareplanner.site-limits/1", "lung_mass": "convention", "products": {}}
    record = _plan(_lung_case(base_case, lung_mass_kg=0.72,
                              lung_mass_source="ct-densitovolumetry"), site, "Hospital X")
    assert record["lung_dose_gy"] == pytest.approx(5.9604, abs=1e-4)
    assert record["lung_mass"]["chosen_by"] == "site"
    assert "Hospital X" in record["lung_mass"]["note"]


def test_case_without_lung_mass_warns(base_case):
    """No silent 1 kg: the default is named in the record and warned."""
    record = _plan(_lung_case(base_case))
    assert record["lung_mass"]["kg"] == 1.0
    assert record["lung_mass"]["chosen_by"] == "default"
    assert "lung-mass-not-measured" in _codes(record)


@pytest.mark.parametrize("ct_kg, warned", [(1.24, False), (1.25, False), (1.26, True),
                                           (0.84, False), (0.83, True)])
def test_lung_mass_difference_warning_edge(base_case, ct_kg, warned):
    """Warn when the CT mass and 1 kg differ by more than 20 % of the CT mass:
    1.25 kg -> 0.25/1.25 = 20 % (no warning), 1.26 -> 20.6 %, 1.24 -> 19.4 %,
    0.84 -> 19.0 %, 0.83 -> 20.5 %."""
    record = _plan(_lung_case(base_case, lung_mass_kg=ct_kg,
                              lung_mass_source="ct-densitovolumetry"))
    assert ("lung-mass-differs" in _codes(record)) is warned


@pytest.mark.parametrize("fields, error", [
    ({"lung_mass_source": "convention", "lung_mass_kg": 0.8}, FieldValueError),
    ({"lung_mass_source": "ct-densitovolumetry"}, MissingFieldError),
    ({"lung_mass_source": "ct-densitovolumetry", "lung_mass_kg": 0.7, "lung_mass_ct_kg": 0.8},
     FieldValueError),
    ({"lung_mass_source": "guess", "lung_mass_kg": 0.7}, UnknownNameError),
])
def test_inconsistent_lung_mass_fields_are_refused(base_case, fields, error):
    doc = _lung_case(base_case, **fields)
    with pytest.raises(error):
        parse_case(doc)


# --- 3. whole-liver and whole-normal-liver limits ----------------------------------------

def _two_lobes(product="quiremspheres", goals=({"maximum": True}, {"maximum": True}), **kw):
    # density 1 g/mL for round numbers: liver 1.5 kg, tumours 0.1 kg, whole normal 1.4 kg;
    # right: normal 0.9 kg + T1 0.08 kg (TNR 3); left: normal 0.5 kg + T2 0.02 kg (TNR 2)
    doc = {"schema": "tareplanner.case/1", "product": product, "method": "partition",
           "tissue_density_g_per_ml": 1.0, "lung_shunt_fraction": 0.05,
           "lsf_method": "scout-spect", "lung_mass_kg": 1.0,
           "whole_liver_volume_ml": 1500, "whole_liver_tumour_volume_ml": 100,
           "positions": [
               {"name": "right", "normal_volume_ml": 900,
                "tumours": [{"name": "T1", "volume_ml": 80, "tnr": 3}], "goal": goals[0]},
               {"name": "left", "normal_volume_ml": 500,
                "tumours": [{"name": "T2", "volume_ml": 20, "tnr": 2}], "goal": goals[1]}]}
    doc.update(kw)
    return doc


def _hand_whole(cf, a_right, a_left, lsf=0.05):
    """Whole-liver and whole-normal-liver mean doses by hand (partition model)."""
    e = cf * (1 - lsf)
    dn_right = e * a_right / (0.9 + 3 * 0.08)
    dn_left = e * a_left / (0.5 + 2 * 0.02)
    whole = e * (a_right + a_left) / 1.5
    whole_normal = (dn_right * 0.9 + dn_left * 0.5) / 1.4
    return whole, whole_normal


def _perfused_60(cf, lsf=0.05):
    """Activities giving each lobe 60 Gy perfused (one compartment, EANM 2022 Table 4):
    A = 60 * M_perfused / (CF * (1 - LSF)); right 0.98 kg, left 0.52 kg."""
    return 60 * 0.98 / (cf * (1 - lsf)), 60 * 0.52 / (cf * (1 - lsf))


BILOBAR_HCC = {"intent": "bilobar", "histology": "hcc"}


def test_holmium_60_gy_is_a_perfused_prescription_not_a_whole_liver_cap():
    """Catches Ho-166's 60 Gy used as a whole-liver hard cap (it scaled a bilobar plan by
    0.97) and the bilobar whole normal liver passing at 53-56 Gy without a word. EANM 2022
    Table 4: one-compartment perfused volume dose 60 Gy (LOE 3); multi-compartment whole
    normal liver < 40 Gy bilobar. Hand: 'maximum' in each lobe is the 60 Gy perfused
    prescription (no hard limit applies); D_N right = 60 * 0.98 / (0.9 + 3 * 0.08) = 51.579 Gy,
    left = 60 * 0.52 / (0.5 + 2 * 0.02) = 57.778 Gy; whole normal liver
    (51.579 * 0.9 + 57.778 * 0.5) / 1.4 = 53.792 Gy: not met against < 40 Gy, by 13.79 Gy,
    and the plan is not scaled."""
    a_r, a_l = _perfused_60(CF_HO)
    record = _plan(_two_lobes(scenario=BILOBAR_HCC))
    right, left = record["positions"]
    assert right["activity_gbq"] == pytest.approx(a_r, rel=1e-9)
    assert left["activity_gbq"] == pytest.approx(a_l, rel=1e-9)
    assert right["perfused_dose_gy"] == pytest.approx(60.0, rel=1e-9)
    assert right["goal_resolved"]["row"] == "eanm22-holmium-hcc-perfused-60"
    whole_normal = (60 * 0.98 / 1.14 * 0.9 + 60 * 0.52 / 0.54 * 0.5) / 1.4
    assert whole_normal == pytest.approx(53.792, abs=1e-3)
    assert record["whole_liver"]["whole_normal_liver_dose_gy"] == pytest.approx(whole_normal)
    (row,) = [c for c in record["guideline_check"]["rows"]
              if c["id"] == "eanm22-holmium-hcc-bilobar-whole-normal-40"]
    assert (row["status"], row["kind"], row["loe"]) == ("not met", "recommendation", "4")
    assert row["margin"] == pytest.approx(40 - whole_normal)
    assert "Table 4" in row["source"]
    assert {"recommendation-not-met", "maximum-goal-from-recommendation"} <= set(_codes(record))
    assert not record["violations"]


def test_a_site_promotes_the_bilobar_holmium_row_and_it_binds():
    """A promoted recommendation is a hard limit: both lobes are scaled by
    40 / 53.792 = 0.74360 so that the whole normal liver is 40 Gy; the reason is on the
    record."""
    site = {"schema": "tareplanner.site-limits/1", "site": "test site", "products": {},
            "guidelines": {"promote": [{"row": "eanm22-holmium-hcc-bilobar-whole-normal-40",
                                        "reason": "protocol 2026: bilobar Ho-166 at 40 Gy"}]}}
    catalogue.validate_site_limits(site)
    a_r, a_l = _perfused_60(CF_HO)
    whole_normal = (60 * 0.98 / 1.14 * 0.9 + 60 * 0.52 / 0.54 * 0.5) / 1.4
    record = _plan(_two_lobes(scenario=BILOBAR_HCC), site)
    right, left = record["positions"]
    assert right["activity_gbq"] == pytest.approx(a_r * 40 / whole_normal, rel=1e-9)
    assert left["activity_gbq"] == pytest.approx(a_l * 40 / whole_normal, rel=1e-9)
    assert record["whole_liver"]["whole_normal_liver_dose_gy"] == pytest.approx(40.0)
    assert right["limited_by"] == "whole-normal-liver-limit"
    (row,) = [c for c in record["guideline_check"]["rows"]
              if c["id"] == "eanm22-holmium-hcc-bilobar-whole-normal-40"]
    assert row["kind"] == "hard" and row["status"] == "met"
    assert row["site_change"]["promote_reason"] == "protocol 2026: bilobar Ho-166 at 40 Gy"
    (change,) = record["guideline_check"]["site_changes"]
    assert change["kind_from"] == "recommendation" and change["kind_to"] == "hard"
    assert "protocol 2026" in plan_summary(record)


SITE_WHOLE_60 = {"schema": "tareplanner.site-limits/1", "site": "test site",
                 "products": {"quiremspheres": {"whole_liver_gy": 60}}}


@pytest.mark.parametrize("factor, violated", [(1 - 1e-6, False), (1.0, False), (1 + 1e-6, True)])
def test_explicit_activities_at_the_whole_liver_limit_edge(factor, violated):
    """An explicit activity is never changed: at a (site's) whole-liver limit no violation,
    above it a violation named with its source. Hand: 60 Gy whole liver at
    A = 60 * 1.5 / (15.87 * 0.95) = 5.96963 GBq, split 4 : 1.96963."""
    total = 60 * 1.5 / (CF_HO * 0.95) * factor
    record = _plan(_two_lobes(goals=({"activity_gbq": 4.0}, {"activity_gbq": total - 4.0})),
                   SITE_WHOLE_60)
    whole, whole_normal = _hand_whole(CF_HO, 4.0, total - 4.0)
    assert record["whole_liver"]["whole_liver_dose_gy"] == pytest.approx(whole, rel=1e-9)
    assert record["whole_liver"]["whole_normal_liver_dose_gy"] == pytest.approx(whole_normal,
                                                                                 rel=1e-9)
    names = [v["limit"] for v in record["violations"]]
    assert ("whole-liver-limit" in names) is violated
    if violated:
        (v,) = [v for v in record["violations"] if v["limit"] == "whole-liver-limit"]
        assert v["limit_gy"] == 60 and "site limits" in v["source"]


@pytest.mark.parametrize("bilirubin, threshold", [(None, 50), (1.0999, 90), (1.1, 50),
                                                  (1.1001, 50)])
def test_glass_bilobar_whole_normal_liver_by_bilirubin(bilirubin, threshold):
    """Catches every glass plan capped at 75 Gy whatever the bilirubin. EANM 2022 Table 2,
    HCC bilobar: whole normal liver '< 50/90' (LOE 3); footnote ***: 50 Gy for total
    bilirubin > 1.1 mg/dL, 90 Gy below; exactly 1.1 is in neither clause and takes the
    stricter 50 Gy; without a bilirubin the stricter 50 Gy is shown. Hand: two lobes at
    120 Gy normal-liver goals give a whole normal liver of 120 Gy (all normal liver perfused);
    nothing scales the plan (a recommendation), the check is not met by 120 - threshold."""
    scenario = dict(BILOBAR_HCC)
    if bilirubin is not None:
        scenario["bilirubin_mg_dl"] = bilirubin
    record = _plan(_two_lobes("therasphere", ({"normal_dose_gy": 120}, {"normal_dose_gy": 120}),
                              scenario=scenario))
    for pos in record["positions"]:
        assert pos["normal_dose_gy"] == pytest.approx(120.0, rel=1e-9)
        assert pos["limited_by"] == "goal"
    rows = [c for c in record["guideline_check"]["rows"] if c["quantity"] == "whole_normal_liver"]
    assert [c["value"] for c in rows] == [threshold]
    assert rows[0]["status"] == "not met"
    assert rows[0]["margin"] == pytest.approx(threshold - 120.0)


@pytest.mark.parametrize("dose, status", [(90 * (1 - 1e-6), "met"), (90.0, "met"),
                                          (90 * (1 + 1e-6), "not met")])
def test_glass_whole_normal_liver_equal_to_the_threshold_meets_it(dose, status):
    """A plan value equal to a threshold meets it (guidelines.json conventions.edge), just
    above does not. Hand: a normal-dose goal D in both lobes gives D to the whole normal
    liver; bilirubin 0.8 mg/dL: the 90 Gy row."""
    record = _plan(_two_lobes("therasphere", ({"normal_dose_gy": dose}, {"normal_dose_gy": dose}),
                              scenario=dict(BILOBAR_HCC, bilirubin_mg_dl=0.8)))
    (row,) = [c for c in record["guideline_check"]["rows"] if c["quantity"] == "whole_normal_liver"]
    assert row["value"] == 90 and row["status"] == status


def test_promoted_limits_need_the_liver_volume():
    site = {"schema": "tareplanner.site-limits/1", "products": {},
            "guidelines": {"promote": [{"row": "eanm22-holmium-hcc-bilobar-whole-normal-40",
                                        "reason": "protocol"}]}}
    doc = _two_lobes(scenario=BILOBAR_HCC)
    del doc["whole_liver_volume_ml"], doc["whole_liver_tumour_volume_ml"]
    record = _plan(doc, site)
    assert record["whole_liver"]["checked"] is False
    assert {"whole-liver-not-checked", "promoted-limit-not-checked"} <= set(_codes(record))
    assert "whole liver: not checked" in plan_summary(record)


def test_relabelled_product_limits_are_no_longer_hard_caps():
    """Catches an EANM 2022 recommendation used as a hard cap: the instructions for use
    give no normal-liver or whole-liver limit, so products.json holds none (null); the
    values live in guidelines.json as recommendations, typed here from EANM 2022 Tables 2-4
    (PMC8940802): glass whole normal liver < 75 (50/90), glass HCC unilobar normal perfused
    < 120 if HR < 30 %, glass 150 is a perfused dose with a whole-liver condition, resin
    unilobar < 40 and bilobar < 30/40, Ho-166 perfused 60, whole normal liver < 60 / < 40."""
    from tareplanner import guidelines
    for key in ("sir-spheres", "therasphere", "quiremspheres"):
        lim = catalogue.product(key).limits
        for name in ("normal_liver_gy", "normal_liver_compromised_gy", "whole_normal_liver_gy",
                     "whole_normal_liver_compromised_gy", "whole_liver_gy"):
            assert lim[name].value is None, (key, name)
            assert "no hard limit" in lim[name].source
        assert (lim["lung_single_gy"].value, lim["lung_cumulative_gy"].value) == (30, 50)
    rows = {r.id: r for r in guidelines.rows()}
    expected = {  # id: (quantity, operator, value, high, LOE, table)
        "eanm22-glass-hcc-lobectomy-unilobar-whole-normal-75": ("whole_normal_liver", "<", 75, None, "3", "Table 2"),
        "eanm22-glass-hcc-lobectomy-unilobar-whole-normal-50": ("whole_normal_liver", "<", 50, None, "3", "Table 2"),
        "eanm22-glass-hcc-lobectomy-unilobar-whole-normal-90": ("whole_normal_liver", "<", 90, None, "3", "Table 2"),
        "eanm22-glass-hcc-unilobar-normal-perfused-120": ("normal_perfused", "<", 120, None, "1*", "Table 2"),
        "eanm22-glass-hcc-unilobar-perfused-150": ("perfused", ">", 150, None, "1*", "Table 2"),
        "eanm22-glass-hcc-segmentectomy-perfused": ("perfused", ">", 400, None, "3", "Table 2"),
        "eanm22-glass-hcc-unilobar-tumour-205": ("tumour", ">=", 205, None, "1*", "Table 2"),
        "eanm22-glass-icc-lobar-bilobar-tumour-260": ("tumour", ">=", 260, None, "3", "Table 2"),
        "eanm22-glass-mcrc-lobar-bilobar-tumour-189": ("tumour", ">=", 189, None, "3", "Table 2"),
        "eanm22-glass-hcc-unilobar-perfused-80-150": ("perfused", "range", 80, 150, "3", "Table 2"),
        "eanm22-resin-hcc-segmentectomy-perfused": ("perfused", ">", 150, None, "4", "Table 3"),
        "eanm22-resin-hcc-unilobar-normal-perfused-40": ("normal_perfused", "<", 40, None, "4 (of 3/4)", "Table 3"),
        "eanm22-resin-hcc-bilobar-normal-perfused-30": ("normal_perfused", "<", 30, None, "4 (of 3/4)", "Table 3"),
        "eanm22-resin-hcc-bilobar-normal-perfused-40": ("normal_perfused", "<", 40, None, "4 (of 3/4)", "Table 3"),
        "eanm22-resin-hcc-lobectomy-normal-perfused-70": ("normal_perfused", ">", 70, None, "4", "Table 3"),
        "eanm22-resin-mcrc-lobectomy-tumour-100": ("tumour", ">", 100, None, "4", "Table 3"),
        "eanm22-resin-mcrc-unilobar-bilobar-tumour-100": ("tumour", ">", 100, None, "3 (of 3/4)", "Table 3"),
        "eanm22-holmium-hcc-perfused-60": ("perfused", "=", 60, None, "3", "Table 4"),
        "eanm22-holmium-hcc-lobar-whole-normal-60": ("whole_normal_liver", "<", 60, None, "4", "Table 4"),
        "eanm22-holmium-mcrc-bilobar-whole-normal-40": ("whole_normal_liver", "<", 40, None, "3", "Table 4"),
        "eanm22-holmium-icc-lobar-bilobar-tumour-150": ("tumour", ">", 150, None, "3–4", "Table 4"),
        "eanm22-holmium-mcrc-lobar-bilobar-tumour-90": ("tumour", ">", 90, None, "3", "Table 4"),
    }
    for row_id, (quantity, op, value, high, loe, table) in expected.items():
        r = rows[row_id]
        assert (r.quantity, r.operator, r.value, r.high, r.loe) == (quantity, op, value, high, loe)
        assert r.kind == "recommendation" and r.table.startswith(table) and r.document == "eanm-2022"
    assert rows["eanm22-glass-hcc-unilobar-normal-perfused-120"].when == (
        {"field": "hepatic_reserve_fraction", "op": "<", "value": 0.30,
         "if_unknown": "not evaluated"},)
    assert rows["eanm22-glass-hcc-unilobar-perfused-150"].only_if == {
        "quantity": "whole_liver", "operator": "<", "value": 150}
    assert all(r.kind == "hard" for r in rows.values() if r.document.endswith("ifu"))
    assert all(r.kind == "regulatory-report" for r in rows.values()
               if r.document.startswith("nrc"))
    assert catalogue.lung_mass_convention().value == 1.0
    assert math.isclose(BSA_WHOLE_LIVER_GBQ, 1.9817, abs_tol=1e-4)


def test_replay_reproduces_a_site_lung_mass_choice(base_case):
    """A plan made with a site's 1 kg choice replays identically (the choice is in the record)."""
    from tareplanner.replay import replay
    site = {"schema": "tareplanner.site-limits/1", "lung_mass": "convention", "products": {}}
    record = _plan(_lung_case(base_case, lung_mass_kg=0.72,
                              lung_mass_source="ct-densitovolumetry"), site, "Hospital X")
    assert replay(record)["identical"]


def test_core_guards_for_the_slicer_path():
    """The module calls the core directly (no CLI checks): a zero DVH bin and a decay
    correction that underflows are refused by the core itself instead of dividing by zero."""
    import numpy as np
    import SimpleITK as sitk

    from tareplanner.dosimetry.activity import pet_activity_at_administration
    from tareplanner.physics.dvh import cumulative_dvh
    with pytest.raises(ValueError, match="bin_gy"):
        cumulative_dvh(np.ones(3), None, 0.0)
    pet = sitk.Image(2, 2, 2, sitk.sitkFloat32)
    admin = datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC"))
    with pytest.raises(ValueError, match="decay correction"):
        pet_activity_at_administration(pet, admin + timedelta(days=3650), admin, 64.1)


def test_dose_refuses_a_plan_of_another_measurement(tmp_path, base_case):
    """Catches `dose` running a plan made for another case (a one-position hand-written plan
    against a two-position measurement gave the second position 0 Gy without a word)."""
    import hashlib
    import json

    from tareplanner.cli.dose_commands import _check_plan_matches_measurement
    measurement = {"positions": [{"name": "right hepatic"}, {"name": "left hepatic"}],
                   "tumour_labels": {"T1": 1, "T2": 2}}
    path = tmp_path / "measurement.json"
    path.write_text(json.dumps(measurement))
    plan = _plan(base_case)                       # right hepatic with T1, names no measurement
    with pytest.raises(FieldValueError, match="left hepatic"):
        _check_plan_matches_measurement(plan, measurement, str(path))
    base_case["positions"].append({"name": "left hepatic", "normal_volume_ml": 500,
                                   "tumours": [{"name": "T2", "volume_ml": 20, "tnr": 2}],
                                   "goal": {"tumour_dose_gy": 200}})
    _check_plan_matches_measurement(_plan(base_case), measurement, str(path))   # names match
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    base_case["measurement"] = {"file": "measurement.json", "sha256": digest}
    _check_plan_matches_measurement(_plan(base_case), measurement, str(path))   # same file
    base_case["measurement"]["sha256"] = "0" * 64
    with pytest.raises(FieldValueError, match="SHA-256"):
        _check_plan_matches_measurement(_plan(base_case), measurement, str(path))


def test_dose_finds_images_next_to_the_measurement_record(tmp_path, monkeypatch):
    """Catches `dose --measurement ../case/measurement.json` refusing images that measure
    recorded relative to the record's folder; a path that exists as given is kept."""
    from pathlib import Path

    from tareplanner.cli.dose_commands import _resolve_next_to_record
    record_dir = tmp_path / "case"
    (record_dir / "patient").mkdir(parents=True)
    (record_dir / "patient" / "ct.nii.gz").write_bytes(b"x")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "here").mkdir(parents=True)
    (elsewhere / "here" / "spect.nii.gz").write_bytes(b"x")
    monkeypatch.chdir(elsewhere)
    m = {"inputs": {"ct": {"source": "patient/ct.nii.gz"},
                    "spect": {"source": "here/spect.nii.gz"},
                    "labels": {"liver": "patient/missing.nii.gz"}},
         "label_outputs": {"lungs": str(record_dir / "patient" / "ct.nii.gz")}}
    _resolve_next_to_record(m, record_dir)
    assert Path(m["inputs"]["ct"]["source"]) == record_dir / "patient" / "ct.nii.gz"
    assert m["inputs"]["spect"]["source"] == "here/spect.nii.gz"           # exists as given
    assert m["inputs"]["labels"]["liver"] == "patient/missing.nii.gz"      # left to be refused
    assert m["label_outputs"]["lungs"] == str(record_dir / "patient" / "ct.nii.gz")
