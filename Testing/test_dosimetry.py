"""Voxel dosimetry of the synthetic patient: predictive dose against the partition model,
activity bookkeeping, post-treatment dose from the Y-90 PET against its truth."""

from datetime import datetime

import numpy as np
import pytest
import SimpleITK as sitk

from tareplanner.dosimetry.activity import pet_activity_at_administration, predictive_activity
from tareplanner.dosimetry.dose import compare, dose_map, structure_report
from tareplanner.dosimetry.structures import structures_from_labels
from tareplanner.imaging import anatomy as anat
from tareplanner.imaging.phantom import make_phantom, spec_for_size
from tareplanner.physics.compartments import dose_per_activity

CF = 49.67


def _structures(phantom):
    labels = sitk.GetArrayFromImage(phantom.labels)
    terr = sitk.GetArrayFromImage(phantom.territories)
    a = phantom.spec.anatomy
    tumours = {t.name: labels == anat.FIRST_TUMOUR + k for k, t in enumerate(a.tumours)}
    territories = {t.name: terr == i for i, t in enumerate(a.territories, start=1)}
    lungs = (labels == anat.LUNG_RIGHT) | (labels == anat.LUNG_LEFT)
    return structures_from_labels(phantom.ct, labels >= anat.LIVER, lungs, tumours, territories)


@pytest.fixture(scope="module")
def ideal():
    return make_phantom(spec_for_size("small", spect_noise=False, spect_fwhm_mm=0.0,
                                      supersample=1, spect_spacing_mm=(2.0, 2.0, 3.0)))


def test_predictive_activity_is_conserved(small_phantom):
    s = _structures(small_phantom)
    activity, info = predictive_activity(small_phantom.spect, s,
                                         {"right hepatic": 2.0, "left hepatic": 1.0}, 0.06, 0.03)
    assert float(sitk.GetArrayViewFromImage(activity).sum(dtype=np.float64)) == \
        pytest.approx(3.0 * 0.97, rel=1e-5)
    # blur and background leave some counts outside territories and lungs: reported
    assert 0.0 < info["counts_outside_territories_and_lungs_fraction"] < 0.15


def test_ldm_dose_of_ideal_spect_equals_partition_model(ideal):
    # With counts proportional to the true concentrations, the LDM mean doses equal the
    # partition model's (Ho et al. 1996) for the same masses: D_N = CF A (1-LSF)/(M_N + r M_T).
    s = _structures(ideal)
    a_gbq = {"right hepatic": 2.0, "left hepatic": 1.0}
    activity, _ = predictive_activity(ideal.spect, s, a_gbq, 0.06, 0.0)
    dose, info = dose_map(activity, "Y-90", ideal.ct, s.masks["lungs"], method="ldm")
    report = structure_report(dose, s, nuclide="Y-90")
    truth = ideal.truth
    for name, a in a_gbq.items():
        tumours = [t for t in ideal.spec.anatomy.tumours
                   if t.name in next(p["tumours"] for p in truth["positions"] if p["name"] == name)]
        normal_kg = truth["volumes_ml"]["territories"][name]["normal"] * 1.03e-3
        d = dose_per_activity("partition", CF, 0.06, 0.0, normal_kg,
                              [truth["volumes_ml"]["tumours"][t.name] * 1.03e-3 for t in tumours],
                              [t.tnr_maa for t in tumours])
        assert report[f"normal liver ({name})"]["mean_gy"] == \
            pytest.approx(a * d.normal_gy_per_gbq, rel=0.01)
        for t, per_gbq in zip(tumours, d.tumour_gy_per_gbq):
            assert report[t.name]["mean_gy"] == pytest.approx(a * per_gbq, rel=0.01)


def test_kernel_dose_keeps_energy_and_lowers_small_structures(ideal):
    s = _structures(ideal)
    activity, _ = predictive_activity(ideal.spect, s, {"right hepatic": 2.0,
                                                       "left hepatic": 1.0}, 0.06, 0.0)
    ldm, _ = dose_map(activity, "Y-90", ideal.ct, s.masks["lungs"], method="ldm")
    kern, info = dose_map(activity, "Y-90", ideal.ct, s.masks["lungs"], method="kernel")
    assert info["method"] == "kernel"
    r_ldm = structure_report(ldm, s, nuclide="Y-90")
    r_kern = structure_report(kern, s, nuclide="Y-90")
    # whole normal liver: energy leaves it at its surface and into the hotter tumours'
    # neighbourhood is returned only in part: kernel mean a few % below LDM (order 3 % for a
    # whole liver, REFERENCES "kernel convolution vs LDM"), never above
    ratio = r_kern["normal liver"]["mean_gy"] / r_ldm["normal liver"]["mean_gy"]
    assert 0.95 < ratio < 1.0
    assert r_kern["T3"]["mean_gy"] < r_ldm["T3"]["mean_gy"]
    assert r_kern["T1"]["mean_gy"] == pytest.approx(r_ldm["T1"]["mean_gy"], rel=0.08)


def test_ho166_uses_its_range_scaled_kernel(small_phantom):
    s = _structures(small_phantom)
    activity, _ = predictive_activity(small_phantom.spect, s, {"right hepatic": 5.0,
                                                               "left hepatic": 2.0}, 0.05, 0.0)
    dose, info = dose_map(activity, "Ho-166", small_phantom.ct, s.masks["lungs"],
                          method="kernel")
    assert info["method"] == "kernel" and "Ho-166" in info["kernel"]["source"]
    assert info["energy_per_activity_j_per_gbq"] == pytest.approx(15.87)
    ldm, _ = dose_map(activity, "Ho-166", small_phantom.ct, s.masks["lungs"], method="ldm")
    r_k = structure_report(dose, s, nuclide="Ho-166")
    r_l = structure_report(ldm, s, nuclide="Ho-166")
    # shorter range than Y-90: kernel and LDM closer for the whole normal liver
    assert 0.97 < r_k["normal liver"]["mean_gy"] / r_l["normal liver"]["mean_gy"] < 1.0


def test_post_treatment_pet_recovers_known_activity_and_difference(small_phantom):
    truth = small_phantom.truth["y90_pet"]
    s = _structures(small_phantom)
    activity = pet_activity_at_administration(
        small_phantom.pet, datetime.fromisoformat(truth["acquisition_start"]),
        datetime.fromisoformat(truth["administration_time"]), 64.1)
    administered = sum(truth["administered_activity_gbq"].values())
    assert float(sitk.GetArrayViewFromImage(activity).sum(dtype=np.float64)) == \
        pytest.approx(administered * (1 - truth["residual_fraction"]), rel=0.01)
    delivered, _ = dose_map(activity, "Y-90", small_phantom.ct, s.masks["lungs"])
    # plan the same activities on the MAA: the known differences are the lung shunt
    # (MAA 6 % vs delivered 4.5 %) and the tumour uptake (MAA TNR vs Y-90 TNR)
    planned_activity, _ = predictive_activity(small_phantom.spect, s,
                                              truth["administered_activity_gbq"], 0.06,
                                              truth["residual_fraction"])
    planned, _ = dose_map(planned_activity, "Y-90", small_phantom.ct, s.masks["lungs"])
    diff = compare(structure_report(planned, s, nuclide="Y-90"),
                   structure_report(delivered, s, nuclide="Y-90"))
    lung = diff["lungs"]["mean_gy"]["relative"]
    assert lung == pytest.approx(0.045 / 0.06 - 1, abs=0.05)
    # T2: MAA TNR 2.4 < Y-90 TNR 2.6 -> delivered above planned; T1: 3.2 > 2.7 -> below
    assert diff["T2"]["mean_gy"]["difference"] > 0
    assert diff["T1"]["mean_gy"]["difference"] < 0


def test_voxel_plan_meets_goals_and_limits(small_phantom):
    # the partition plan of the measured synthetic patient (two positions, 250 Gy tumour
    # goals, TheraSphere 120 Gy normal-liver limit); LP jointly over both positions
    from tareplanner.dosimetry.voxel_plan import voxel_plan, voxel_plan_record
    from tareplanner.planning import plan_case
    from tareplanner.records.case import parse_case

    truth = small_phantom.truth
    case = parse_case({
        "schema": "tareplanner.case/1", "product": "therasphere", "method": "partition",
        "lung_shunt_fraction": 0.066, "lsf_method": "spect-whole-lung",
        "positions": [
            {"name": "right hepatic", "normal_volume_ml": 1270,
             "tumours": [{"name": "T1", "volume_ml": 58, "tnr": 2.7},
                         {"name": "T3", "volume_ml": 7.3, "tnr": 1.5}],
             "goal": {"tumour_dose_gy": 250}},
            {"name": "left hepatic", "normal_volume_ml": 686,
             "tumours": [{"name": "T2", "volume_ml": 20.5, "tnr": 2.0}],
             "goal": {"tumour_dose_gy": 150}}]})
    # a site's hard 120 Gy normal-liver limit (the package insert gives none; EANM 2022's
    # < 120 Gy is a recommendation); no whole-liver limit:
    # test_voxel_plan_keeps_the_whole_normal_liver_limit has one
    site = {"schema": "tareplanner.site-limits/1", "products": {"therasphere": {
        "normal_liver_gy": 120}}}
    plan = plan_case(case, site, "test")
    s = _structures(small_phantom)
    result = voxel_plan(small_phantom.spect, s, plan, "Y-90", small_phantom.ct)
    st = result["structures"]
    for name in ("right hepatic", "left hepatic"):
        assert st[f"normal liver ({name})"]["mean_gy"] <= 120 * (1 + 1e-3)
    assert st["lungs"]["mean_gy"] <= 30 * (1 + 1e-3)
    goals = {"T1": 250, "T3": 250, "T2": 150}
    for t, fraction in result["tumour_goal_fractions"].items():
        assert st[t]["mean_gy"] >= fraction * goals[t] * (1 - 1e-3)
    # T3 (low TNR) cannot reach 250 Gy under the right normal-liver limit, which binds; the
    # left position's beta dose near the boundary reaches the right normal liver (coupling),
    # so raising T2 would push T3 lower still: the max-min optimum holds T2 at T3's fraction
    assert result["goal_fraction"] < 1
    assert "normal-liver-limit (right hepatic)" in result["binding"]
    assert result["tumour_goal_fractions"]["T3"] == pytest.approx(result["goal_fraction"])
    assert result["tumour_goal_fractions"]["T1"] == pytest.approx(1.0)
    assert result["tumour_goal_fractions"]["T2"] >= result["goal_fraction"] - 1e-9
    record = voxel_plan_record(plan, result)
    assert record["method"] == "voxel"
    assert record["positions"][0]["limited_by"] == "normal-liver-limit"
    assert any(w["code"] == "voxel-goal-not-reached" for w in record["warnings"])


def test_post_treatment_spect_counts_and_bed_map(small_phantom):
    from tareplanner.dosimetry.activity import counts_to_activity
    from tareplanner.dosimetry.dose import bed_map
    from tareplanner.physics.dvh import bed_gy

    s = _structures(small_phantom)
    activity = counts_to_activity(small_phantom.scout, s, administered_gbq=4.0,
                                  residual_fraction=0.05)
    assert float(sitk.GetArrayViewFromImage(activity).sum(dtype=np.float64)) == \
        pytest.approx(4.0 * 0.95, rel=1e-5)
    dose, _ = dose_map(activity, "Y-90", small_phantom.ct, s.masks["lungs"])
    bed = sitk.GetArrayFromImage(bed_map(dose, s, "Y-90"))
    d = sitk.GetArrayFromImage(dose).astype(np.float64)
    tumour_params = bed_gy(d, 64.1, 1.5, 10.0)
    normal_params = bed_gy(d, 64.1, 2.5, 2.5)
    is_tumour = np.isclose(bed, tumour_params, rtol=1e-5)
    is_normal = np.isclose(bed, normal_params, rtol=1e-5)
    assert np.all(is_tumour | is_normal)
    hot = d > 50
    assert np.any(is_tumour & hot & ~is_normal) and np.any(is_normal & hot & ~is_tumour)


def test_voxel_plan_keeps_the_whole_normal_liver_limit(small_phantom):
    """Catches a voxel plan that meets each position's 120 Gy normal-liver limit but puts the
    whole normal liver above a hard whole-normal-liver limit the partition plan applies (a
    new user found 110 Gy whole normal liver with no warning). The limits are the site's:
    120 Gy normal liver, and EANM 2022 Table 2's bilobar HCC < 90 Gy (bilirubin 0.8 mg/dL)
    promoted to a hard limit."""
    from tareplanner.dosimetry.voxel_plan import voxel_plan, voxel_plan_record
    from tareplanner.planning import plan_case
    from tareplanner.records.case import parse_case

    case = parse_case({
        "schema": "tareplanner.case/1", "product": "therasphere", "method": "partition",
        "lung_shunt_fraction": 0.06, "lsf_method": "spect-whole-lung",
        "positions": [
            {"name": "right hepatic", "normal_volume_ml": 1270,
             "tumours": [{"name": "T1", "volume_ml": 58, "tnr": 3.2},
                         {"name": "T3", "volume_ml": 7.3, "tnr": 1.8}],
             "goal": {"tumour_dose_gy": 250}},
            {"name": "left hepatic", "normal_volume_ml": 686,
             "tumours": [{"name": "T2", "volume_ml": 20.5, "tnr": 2.4}],
             "goal": {"tumour_dose_gy": 250}}],
        "scenario": {"intent": "bilobar", "histology": "hcc", "bilirubin_mg_dl": 0.8}})
    site = {"schema": "tareplanner.site-limits/1",
            "products": {"therasphere": {"normal_liver_gy": 120}},
            "guidelines": {"promote": [{"row": "eanm22-glass-hcc-bilobar-whole-normal-90",
                                        "reason": "test protocol"}]}}
    plan = plan_case(case, site, "test")
    result = voxel_plan(small_phantom.spect, _structures(small_phantom), plan, "Y-90",
                        small_phantom.ct)
    st = result["structures"]
    assert st["normal liver"]["mean_gy"] <= 90 * (1 + 1e-3)
    assert "whole-normal-liver-limit" in result["binding"]
    record = voxel_plan_record(plan, result)
    assert {p["limited_by"] for p in record["positions"]} <= {"goal", "whole-normal-liver-limit"}
    assert record["whole_liver_dose_gy"] == pytest.approx(st["liver"]["mean_gy"])
    assert "uncertainty" not in record   # the partition plan's intervals do not apply


def test_structure_voxels_by_kept_indices_equal_the_boolean_mask():
    """structure_report takes each structure's voxels by indices its Structures keeps: the
    same values in the same order as ``array[mask]``, found again when a mask is replaced."""
    import SimpleITK as sitk

    from tareplanner.dosimetry.structures import Structures

    rng = np.random.default_rng(5)
    array = rng.random((6, 7, 8), dtype=np.float32)
    masks = {"a": rng.random((6, 7, 8)) > 0.5, "empty": np.zeros((6, 7, 8), bool)}
    s = Structures(sitk.Image(8, 7, 6, sitk.sitkUInt8), masks, {"a": "tumour", "empty": "lung"})
    for name, mask in masks.items():
        np.testing.assert_array_equal(s.values_in(array, name), array[mask])
    first = s.flat_indices("a")
    assert s.flat_indices("a") is first                      # kept
    replaced = ~s.masks["a"]
    s.masks["a"] = replaced
    np.testing.assert_array_equal(s.values_in(array, "a"), array[replaced])
    with pytest.raises(IndexError):
        s.values_in(array[:3], "a")
