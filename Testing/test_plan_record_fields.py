"""The plan record (tareplanner.planning.plan_case) field by field, for one case planned with
an explicit activity so that every figure is a hand calculation.

The case: the shared TheraSphere case of Testing/conftest.py with 2.0 GBq given to 'right
hepatic' (normal liver 900 mL, tumour T1 120 mL at TNR 3.1, density 1.03 g/mL), LSF 0.06,
R = 0, lung 1 kg entered, 3 Gy of earlier lung dose, whole liver 1800 mL with 150 mL of
tumour. Y-90 64.1 h, 49.67 J/GBq (Dutch TvNG 2023; EANM 2022). Partition model (Ho et al.
1996): liver energy 49.67 x 0.94 x 2.0 = 93.3796 J.
- masses: normal 900 x 1.03 = 927 g, tumour 120 x 1.03 = 123.6 g, perfused 1020 x 1.03 =
  1050.6 g, whole liver 1854 g, whole normal liver (1800 - 150) x 1.03 = 1699.5 g;
- normal liver 93.3796 / (0.927 + 3.1 x 0.1236) = 93.3796 / 1.31016 = 71.2734 Gy, tumour
  3.1 x 71.2734 = 220.9476 Gy, perfused 93.3796 / 1.0506 = 88.8822 Gy;
- lung 49.67 x 0.06 x 2.0 / 1 kg = 5.9604 Gy, cumulative 3 + 5.9604 = 8.9604 Gy;
- whole liver 93.3796 / 1.854 = 50.3666 Gy, whole normal liver 71.2734 x 0.927 / 1.6995
  = 38.8764 Gy;
- hepatic reserve (whole liver outside the treated territory) (1800 - 1020) / 1800 = 0.43333.
Each test names the bug it catches.
"""

import copy
import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

import tareplanner

from tareplanner.planning import plan_case
from tareplanner.records.case import parse_case
from tareplanner.records.response_record import fit_for_plan

from conftest import BASE_CASE

CAMERA_SHA = "ab" * 32
#: the guideline table the package reads (found through the package, wherever it is installed)
GUIDELINES = Path(tareplanner.__file__).resolve().parent / "data" / "guidelines.json"


@pytest.fixture(scope="module")
def planned():
    doc = copy.deepcopy(BASE_CASE)
    doc["positions"][0]["goal"] = {"activity_gbq": 2.0}
    doc.update(prior_lung_dose_gy=3.0, case_id="case-7")
    doc["patient"]["id"] = "P-001"
    doc["measurement"] = {
        "warnings": [{"code": "spect-truncated", "message": "SPECT field of view cuts the liver"}],
        "resolution": {"fwhm_mm": 12.0, "camera_sha256": CAMERA_SHA}}
    record = plan_case(parse_case(copy.deepcopy(doc)),
                       created=datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc))
    return doc, record


def test_identity_and_parents(planned):
    """Bugs caught: the record's schema, creation time, case, patient or input hash lost or
    taken from elsewhere; the camera file the case's figures were corrected with not named
    by its hash. The input hash is SHA-256 of the case in canonical JSON (sorted keys, no
    whitespace), computed here with hashlib."""
    doc, record = planned
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert record["schema"] == "tareplanner.plan/1"
    assert record["created"] == "2026-12-01T08:00:00+00:00"
    assert record["input_sha256"] == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert (record["case_id"], record["patient_id"]) == ("case-7", "P-001")
    assert record["case"] == doc
    assert record["parents"] == {"camera": {"schema": "tareplanner.camera/1",
                                            "sha256": CAMERA_SHA}}


def test_case_figures_carried_into_the_record(planned):
    """Bug caught: a figure of the case written under another name or replaced in the
    record (product, method, nuclide, LSF, residual, density, lung mass, prior lung dose,
    compromised liver, treatment time)."""
    _, record = planned
    assert record["product"]["key"] == "therasphere"
    assert record["product"]["display_name"].startswith("TheraSphere")
    assert (record["method"], record["dose_model"]) == ("partition", "partition")
    nuclide = record["nuclide"]
    assert (nuclide["name"], nuclide["half_life_h"]) == ("Y-90", 64.1)
    assert nuclide["energy_per_activity_j_per_gbq"] == 49.67
    assert "Dutch TvNG 2023" in nuclide["source"]
    assert (record["lung_shunt_fraction"], record["lsf_method"]) == (0.06, "spect-whole-lung")
    assert (record["residual_fraction"], record["tissue_density_g_per_ml"]) == (0.0, 1.03)
    assert record["lung_mass_kg"] == 1.0 and record["lung_mass"]["kg"] == 1.0
    assert (record["prior_lung_dose_gy"], record["liver_compromised"]) == (3.0, False)
    assert record["treatment_time"] == "2026-12-01T10:00:00+01:00"
    assert record["bsa_m2"] is None
    assert record["limits_source"] == "product defaults (tareplanner/data/products.json)"
    assert record["tumour_target_gy"]["min"] == 205  # EANM 2022 Table 2, HCC tumour >= 205


def test_position_entry_by_hand(planned):
    """Bugs caught: a position's masses computed with another density or volume, its doses
    of another compartment, its tumours without their mass or dose."""
    _, record = planned
    (position,) = record["positions"]
    assert position == {
        "name": "right hepatic", "goal": {"activity_gbq": 2.0}, "activity_gbq": 2.0,
        "normal_dose_gy": pytest.approx(71.2734, abs=1e-4),
        "perfused_dose_gy": pytest.approx(88.8822, abs=1e-4),
        "normal_volume_ml": 900.0, "normal_mass_kg": pytest.approx(0.927, rel=1e-12),
        "perfused_volume_ml": 1020.0, "perfused_mass_kg": pytest.approx(1.0506, rel=1e-12),
        "tumours": [{"name": "T1", "volume_ml": 120.0,
                     "mass_kg": pytest.approx(0.1236, rel=1e-12), "tnr": 3.1,
                     "dose_gy": pytest.approx(220.9476, abs=1e-4)}],
        "limited_by": "goal", "violations": []}


def test_totals_by_hand(planned):
    """Bugs caught: the lung dose without the earlier dose in its cumulative figure, the
    whole-liver figures over another mass, a scale factor where nothing was scaled."""
    _, record = planned
    assert record["total_activity_gbq"] == 2.0
    assert record["lung_dose_gy"] == pytest.approx(5.9604, rel=1e-12)
    assert record["lung_dose_cumulative_gy"] == pytest.approx(8.9604, rel=1e-12)
    assert record["lung_scale_factor"] == 1.0
    assert record["whole_liver_dose_gy"] == pytest.approx(50.3666, abs=1e-4)
    whole = record["whole_liver"]
    assert whole["checked"] is True
    assert whole["whole_liver_mass_kg"] == pytest.approx(1.854, rel=1e-12)
    assert whole["whole_normal_liver_mass_kg"] == pytest.approx(1.6995, rel=1e-12)
    assert whole["whole_liver_dose_gy"] == record["whole_liver_dose_gy"]
    assert whole["whole_normal_liver_dose_gy"] == pytest.approx(38.8764, abs=1e-4)
    assert record["violations"] == []


def test_measurement_warnings_and_guideline_check(planned):
    """Bugs caught: a warning of the measurement that made the case (carried in the case)
    dropped from the plan or not marked as the measurement's; the guideline check without
    the hepatic reserve it used or the hash of the guideline table it read (computed here
    with hashlib from the file)."""
    _, record = planned
    warnings = [(w["code"], w["message"]) for w in record["warnings"]]
    assert ("measurement:spect-truncated", "SPECT field of view cuts the liver") in warnings
    assert record["scenario"] is None
    check = record["guideline_check"]
    assert check["scenario"] is None
    assert check["facts"] == {"hepatic_reserve_fraction": pytest.approx(0.43333, abs=1e-5)}
    digest = hashlib.sha256(GUIDELINES.read_bytes()).hexdigest()
    assert check["source"] == f"tareplanner/data/guidelines.json sha256 {digest[:16]}"
    assert check["rows"] and check["site_changes"] == []
    assert isinstance(check["conventions"], dict) and check["conventions"]


def test_dose_response_is_added_with_its_warnings(planned):
    """Bugs caught: a dose-response fit given to the plan not shown in the record, or its
    warnings not joined to the plan's (or replacing them). The shared case planned to its
    250 Gy tumour goal with SIR-Spheres and the published glass fit (J Nucl Med
    2020;61(1):104: 50 % tumour control at a mean 292 Gy): T1 at 250 Gy is below the 292 Gy,
    and the fit is of another product (TheraSphere) than the plan's. Without a fit the plan
    has no dose_response."""
    _, record = planned
    assert "dose_response" not in record
    doc = copy.deepcopy(BASE_CASE)
    doc["product"] = "sir-spheres"
    fit = fit_for_plan("published:glass-tcp-mean-2020", None)
    record = plan_case(parse_case(doc), response=fit)
    (tumour,) = record["dose_response"]["tumours"]
    assert (tumour["position"], tumour["tumour"]) == ("right hepatic", "T1")
    assert tumour["planned_value_gy"] == pytest.approx(250)
    assert (tumour["d50_gy"], tumour["relative_to_d50"]) == (292, "below")
    codes = [w["code"] for w in record["warnings"]]
    assert codes[-1] == "response-fit-other-product"
    assert "vial-calibration-assumed" in codes and "no-scenario" in codes
    assert record["dose_response"]["warnings"] == [w for w in record["warnings"]
                                                   if w["code"] == "response-fit-other-product"]


def test_uncertainty_nominals_are_the_plans_figures(planned):
    """Bugs caught: the uncertainty Monte Carlo of the plan run with another dose model (the
    tumour at the perfused mean dose instead of the partition model's 220.9476 Gy), another
    energy per GBq, lung mass, prior lung dose or limits: its nominal figures must be the
    plan's, by hand above; the lung limits it checks are the package insert's 30 Gy per
    treatment and 50 Gy cumulative."""
    _, record = planned
    figures = record["uncertainty"]["figures"]
    nominal = {name: figure["nominal"] for name, figure in figures.items()}
    assert nominal == {
        "right hepatic: normal liver": pytest.approx(71.2734, abs=1e-4),
        "right hepatic: perfused": pytest.approx(88.8822, abs=1e-4),
        "right hepatic/T1": pytest.approx(220.9476, abs=1e-4),
        "lung": pytest.approx(5.9604, rel=1e-12),
        "lung cumulative": pytest.approx(8.9604, rel=1e-12),
        "whole liver": pytest.approx(50.3666, abs=1e-4),
        "whole normal liver": pytest.approx(38.8764, abs=1e-4),
        "right hepatic: activity": 2.0}
    exceedance = record["uncertainty"]["exceedance"]
    assert {name: (e["figure"], e["limit_gy"]) for name, e in exceedance.items()} == {
        "lung-limit": ("lung", 30), "lung-cumulative-limit": ("lung cumulative", 50)}


def test_record_holds_every_field_under_its_name(planned):
    """Bug caught: a field of the plan record written under another name (or lost), which a
    reader of the record (report, directive, the schema docs/schemas/plan-1.schema.json)
    would miss. The fields, written here, of a plan without a dose-response fit."""
    _, record = planned
    assert set(record) == {
        "schema", "created", "software", "input_sha256", "case_id", "patient_id", "product",
        "method", "dose_model", "nuclide", "lung_shunt_fraction", "lsf_method",
        "residual_fraction", "tissue_density_g_per_ml", "lung_mass_kg", "lung_mass",
        "prior_lung_dose_gy", "liver_compromised", "treatment_time", "positions",
        "total_activity_gbq", "lung_dose_gy", "lung_dose_cumulative_gy", "lung_scale_factor",
        "whole_liver_dose_gy", "whole_liver", "bsa_m2", "limits", "limits_source",
        "tumour_target_gy", "ordering", "violations", "uncertainty", "warnings", "case",
        "parents", "scenario", "guideline_check"}
    assert set(record["guideline_check"]) == {"scenario", "facts", "rows", "suggestions",
                                              "site_changes", "conventions", "source"}
    assert set(record["product"]) == {"key", "display_name"}
    assert set(record["nuclide"]) == {"name", "half_life_h", "energy_per_activity_j_per_gbq",
                                      "source"}
    assert record["software"]["name"] == "tareplanner"


def test_creation_time_defaults_to_now_in_utc():
    """Bug caught: a plan made without a creation time stamped with the machine's local
    time without its offset (or another moment) instead of the present moment in UTC."""
    before = datetime.now(timezone.utc).replace(microsecond=0)
    record = plan_case(parse_case(copy.deepcopy(BASE_CASE)))
    after = datetime.now(timezone.utc)
    created = datetime.fromisoformat(record["created"])
    assert record["created"].endswith("+00:00")
    assert before <= created <= after
