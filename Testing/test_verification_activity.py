"""Post-treatment verification: the activity in the Y-90 PET against the administered activity,
its tolerance, and why voxel mean doses differ from the partition model's.

Independent truths: hand calculations written out in each test (decay over one half-life
doubles the activity; A (1 − R); relative differences at ±20 %), the synthetic patient's truth
file (activity administered, residual), and the tolerance's published components (QUEST:
10 % for 90Y PET on current scanners; ANSI N42.13: ±10 % for dose calibrators).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import pytest
import SimpleITK as sitk

from tareplanner.dosimetry.activity import (activity_check, pet_activity_at_administration,
                                            post_treatment_activity_check)
from tareplanner.dosimetry.partition import voxel_versus_partition
from tareplanner.dosimetry.structures import Structures
from tareplanner.records.dose_record import validate_dose_record, with_post_treatment
from tareplanner.errors import TarePlannerInputError

Y90_HALF_LIFE_H = 64.1   # ICRP-107 / package inserts (REFERENCES)


def test_tolerance_is_the_published_sum_and_has_its_source():
    """Bug caught: a tolerance in the data file that drifts from the literature it cites, or
    a data file without its source. QUEST (EJNMMI 2015;42:1202): 90Y PET within 10 % on
    current ToF+RR scanners; ANSI N42.13-2004: dose calibrators within ±10 %; sum 20 %."""
    from tareplanner.dosimetry.activity import verification_settings
    entry = verification_settings()["post_treatment_activity_tolerance"]
    assert entry["value"] == pytest.approx(0.10 + 0.10)
    assert "QUEST" in entry["source"] and "N42.13" in entry["source"]


# expected in the patient: 5.0 GBq administered, no residual -> 5.0 GBq; edges at
# 5.0 × (1 ± 0.20) = 4.0 and 6.0 GBq
@pytest.mark.parametrize("image_gbq, flagged", [
    (5.0, False),
    (4.0, False), (4.001, False), (3.999, True),     # −20 %: at, inside, beyond
    (6.0, False), (5.999, False), (6.001, True),     # +20 %
    (2.91, True),                                    # the demo before the fix: −41.8 %
])
def test_activity_check_at_and_either_side_of_the_tolerance(image_gbq, flagged):
    """Bugs caught: the edge itself flagged (> vs >=), only one sign checked (abs missing),
    the relative difference taken against the image instead of the expected activity."""
    check, warnings = activity_check(image_gbq, image_gbq, 5.0, 0.0, "planned total activity")
    assert check["relative_difference"] == pytest.approx((image_gbq - 5.0) / 5.0, abs=1e-12)
    assert check["within_tolerance"] is (not flagged)
    assert bool(warnings) is flagged


def test_activity_check_subtracts_the_residual_and_names_the_causes():
    """Bugs caught: the residual ignored or applied the wrong way (A/(1−R)), a warning that
    does not say what to check. Hand: 5.0 GBq with 20 % residual -> 4.0 GBq expected; an
    image of 3.0 GBq is 3/4 − 1 = −25 %, beyond 20 %."""
    check, warnings = activity_check(3.0, 2.7, 5.0, 0.2, "administered activity (given)")
    assert check["expected_in_patient_gbq"] == pytest.approx(4.0)
    assert check["relative_difference"] == pytest.approx(-0.25)
    assert check["inside_liver_and_lungs_fraction"] == pytest.approx(0.9)
    message = warnings[0]["message"]
    assert warnings[0]["code"] == "post-treatment-activity"
    for words in ("3.000 GBq", "4.000 GBq", "-25.0%", "calibration", "residual",
                  "field of view", "decay", "administration time"):
        assert words in message, words
    # 4.0 GBq in the image is what 5.0 GBq less 20 % leaves: no warning
    assert activity_check(4.0, 4.0, 5.0, 0.2, "x")[0]["within_tolerance"]


@pytest.mark.parametrize("administered, residual, field", [
    (0.0, 0.0, "administered"), (-1.0, 0.0, "administered"), (float("nan"), 0.0, "administered"),
    (5.0, 1.0, "residual"), (5.0, -0.1, "residual"), (5.0, float("nan"), "residual")])
def test_activity_check_refuses_impossible_inputs(administered, residual, field):
    """Bug caught: a division by zero or a silent NaN check for impossible activities."""
    with pytest.raises(TarePlannerInputError, match=field):
        activity_check(1.0, 1.0, administered, residual, "x")


def _grid(size=(10, 10, 10), spacing=(4.0, 4.0, 4.0)) -> sitk.Image:
    image = sitk.Image(list(size), sitk.sitkFloat32)
    image.SetSpacing(spacing)
    image.SetOrigin((-20.0, -20.0, -20.0))
    return image


def test_pet_activity_is_integrated_decay_corrected_and_split_by_structure():
    """Bugs caught: the PET integrated without the voxel volume (Bq/mL taken as Bq), decay
    corrected the wrong way (towards acquisition), the liver+lungs part counted over the
    whole image.

    Hand: 500 kBq/mL in 8 × 8 × 8 voxels of 4 mm (0.064 mL) = 512 × 0.064 mL × 5e5 Bq/mL
    = 1.6384e7 Bq at acquisition, one half-life (64.1 h) after administration: 3.2768e7 Bq
    = 0.032768 GBq at administration. The liver covers the half with x < 0 (4 of 8 columns):
    0.016384 GBq inside liver and lungs.
    """
    pet = _grid()
    array = np.zeros((10, 10, 10), np.float32)
    array[1:9, 1:9, 1:9] = 5e5
    pet_image = sitk.GetImageFromArray(array)
    pet_image.CopyInformation(pet)
    administration = datetime.fromisoformat("2026-12-01T10:00:00+01:00")
    activity = pet_activity_at_administration(pet_image,
                                              administration + timedelta(hours=Y90_HALF_LIFE_H),
                                              administration, Y90_HALF_LIFE_H)
    liver = np.zeros((10, 10, 10), bool)
    liver[:, :, :5] = True                     # x index 0..4: x = -20..-4 mm
    structures = Structures(pet, {"liver": liver, "lungs": np.zeros_like(liver)},
                            {"liver": "liver", "lungs": "lung"})
    plan = {"total_activity_gbq": 0.04, "residual_fraction": 0.1}
    check, warnings = post_treatment_activity_check(activity, structures, plan)
    assert check["image_total_gbq"] == pytest.approx(0.032768, rel=1e-6)
    assert check["inside_liver_and_lungs_gbq"] == pytest.approx(0.016384, rel=1e-6)
    # plan: 0.04 GBq less 10 % = 0.036 GBq; 0.032768 / 0.036 − 1 = −8.98 %: within 20 %
    assert check["expected_in_patient_gbq"] == pytest.approx(0.036)
    assert check["relative_difference"] == pytest.approx(0.032768 / 0.036 - 1, rel=1e-6)
    assert check["administered_source"] == "planned total activity" and not warnings
    # the caller's administered activity replaces the plan's: 0.05 GBq, R 0 -> −34.5 %
    check, warnings = post_treatment_activity_check(activity, structures, plan,
                                                    administered_gbq=0.05,
                                                    residual_fraction=0.0)
    assert check["relative_difference"] == pytest.approx(0.032768 / 0.05 - 1, rel=1e-6)
    assert check["administered_source"] == "administered activity (given)" and warnings


def test_synthetic_pet_holds_the_administered_activity_and_the_old_demo_is_flagged(small_phantom):
    """Bug caught (the demo before the fix): a plan of 5.804 GBq verified against a PET that
    the synthetic patient built from 2.2 + 0.8 GBq (its truth file), unflagged. Hand: the PET
    holds 3.0 × (1 − 0.03) = 2.91 GBq; against 5.804 GBq planned (R 0) that is
    2.91 / 5.804 − 1 = −49.9 %."""
    from tareplanner.dosimetry.structures import structures_from_labels
    truth = small_phantom.truth["y90_pet"]
    activity = pet_activity_at_administration(
        small_phantom.pet, datetime.fromisoformat(truth["acquisition_start"]),
        datetime.fromisoformat(truth["administration_time"]), Y90_HALF_LIFE_H)
    labels = sitk.GetArrayFromImage(small_phantom.labels)
    from tareplanner.imaging import anatomy as anat
    liver = labels >= anat.LIVER
    lungs = (labels == anat.LUNG_RIGHT) | (labels == anat.LUNG_LEFT)
    structures = structures_from_labels(small_phantom.ct, liver, lungs, {}, {})
    administered = sum(truth["administered_activity_gbq"].values())
    plan = {"total_activity_gbq": administered, "residual_fraction": truth["residual_fraction"]}
    check, warnings = post_treatment_activity_check(activity, structures, plan)
    assert check["image_total_gbq"] == pytest.approx(3.0 * 0.97, rel=0.01)
    assert abs(check["relative_difference"]) < 0.01 and not warnings
    # 9 mm FWHM blur: some activity spills beyond the liver and lung masks, but most is inside
    assert 0.85 < check["inside_liver_and_lungs_fraction"] < 1.0
    old_demo = {"total_activity_gbq": 5.804, "residual_fraction": 0.0}
    check, warnings = post_treatment_activity_check(activity, structures, old_demo)
    assert check["relative_difference"] == pytest.approx(2.91 / 5.804 - 1, abs=0.01)
    assert warnings and not check["within_tolerance"]


def test_synthetic_patient_administering_a_plan_puts_it_in_the_pet():
    """Bug caught: the demo's PET built from activities other than the plan's. Hand: a plan
    of 3.86 + 1.945 GBq with the phantom's 3 % residual leaves 5.805 × 0.97 = 5.631 GBq."""
    from tareplanner.imaging.phantom import make_phantom, spec_administering, spec_for_size
    spec = spec_administering(spec_for_size("small"),
                              {"right hepatic": 3.86, "left hepatic": 1.945})
    phantom = make_phantom(spec)
    truth = phantom.truth["y90_pet"]
    assert truth["administered_activity_gbq"] == {"right hepatic": 3.86, "left hepatic": 1.945}
    activity = pet_activity_at_administration(
        phantom.pet, datetime.fromisoformat(truth["acquisition_start"]),
        datetime.fromisoformat(truth["administration_time"]), Y90_HALF_LIFE_H)
    total = float(sitk.GetArrayFromImage(activity).astype(np.float64).sum())
    assert total == pytest.approx(5.805 * 0.97, rel=0.01)
    with pytest.raises(ValueError, match="left hepatic"):
        spec_administering(spec_for_size("small"), {"right hepatic": 1.0})


def test_voxel_versus_partition_splits_activity_and_energy_escape():
    """Bugs caught: a structure compared with the wrong model dose (whole normal liver
    instead of a position's), the two effects swapped, the product not recovering the total.
    Hand: T1 model 200 Gy, LDM 190 Gy, kernel 180 Gy -> activity 190/200 − 1 = −5 %,
    escape 180/190 − 1 = −5.26 %, total 180/200 − 1 = −10 %."""
    plan = {"positions": [{"name": "right", "normal_dose_gy": 50.0,
                           "tumours": [{"name": "T1", "dose_gy": 200.0}]}],
            "lung_dose_gy": 10.0, "whole_liver_dose_gy": 60.0, "lung_mass_kg": 1.0}
    voxel = {"T1": 180.0, "normal liver (right)": 52.0, "normal liver": 99.0, "lungs": 13.0,
             "liver": 58.0}
    ldm = {"T1": 190.0, "normal liver (right)": 51.0, "normal liver": 98.0, "lungs": 12.5,
           "liver": 59.0}
    why = voxel_versus_partition(plan, voxel, ldm, 0.11, "kernel")
    t1 = why["structures"]["T1"]
    assert t1["activity_effect"] == pytest.approx(-0.05)
    assert t1["energy_escape_effect"] == pytest.approx(180 / 190 - 1)
    assert t1["difference"] == pytest.approx(-0.10)
    assert why["structures"]["normal liver (right)"]["model_gy"] == 50.0
    assert why["structures"]["lungs"]["activity_effect"] == pytest.approx(0.25)
    assert why["structures"]["liver"]["model_gy"] == 60.0
    assert "normal liver" not in why["structures"]        # no model dose of its own
    assert any("11.0%" in line for line in why["explanation"])


def test_post_treatment_warnings_reach_the_record_schema_and_report(tmp_path):
    """Bugs caught: the activity warning left in the post-treatment part only (not in the
    record's warnings that the report prints), a record the published schema refuses, a
    report page that does not show the check."""
    import jsonschema

    from conftest import REPO
    from tareplanner.records.report import verification_lines
    check, warnings = activity_check(2.91, 2.7, 5.804, 0.0, "planned total activity")
    record = {"schema": "tareplanner.dose/1", "created": "2026-12-01T10:00:00+01:00",
              "plan_input_sha256": "0" * 64,
              "dose": {"method": "kernel", "nuclide": "Y-90",
                       "energy_per_activity_j_per_gbq": 49.67},
              "predictive": {"structures": {}, "counts_outside_territories_and_lungs_fraction":
                             0.1},
              "warnings": []}
    post = {"source": "pet", "sha256": "", "structures": {},
            "activity_in_image_at_administration_gbq": 2.91, "activity_check": check,
            "warnings": warnings}
    out = with_post_treatment(record, post, {})
    assert [w["code"] for w in out["warnings"]] == ["post-treatment-activity"]
    assert record["warnings"] == []                        # the input is not changed
    schema = json.loads((REPO / "docs" / "schemas" / "dose-1.schema.json").read_text())
    jsonschema.validate(json.loads(json.dumps(out)), schema)
    validate_dose_record(out)
    lines = "\n".join(verification_lines(out))
    assert "OUTSIDE TOLERANCE" in lines and "-49.9%" in lines and "post-treatment-activity" in lines
    bad = dict(out, warnings=[{"code": 3}])
    with pytest.raises(TarePlannerInputError, match="warnings"):
        validate_dose_record(bad)


def test_dose_command_refuses_impossible_activity_options(tmp_path, capsys):
    """Bug caught: a negative or NaN administered activity or a residual of 100 % accepted
    (division by zero, a meaningless check); the error must name the option and the value,
    exit with status 2 and write nothing."""
    from tareplanner.cli.main import main
    for option, value in (("--administered-gbq", "-1"), ("--administered-gbq", "nan"),
                          ("--residual-fraction", "1"), ("--residual-fraction", "-0.5")):
        out = tmp_path / "dose"
        assert main(["dose", "--measurement", "m.json", "--plan", "p.json", "--pet", "pet",
                     option, value, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert option in err and value in err.lower() and "Traceback" not in err
        assert not out.exists()


def test_an_empty_post_treatment_image_is_flagged_and_reported():
    """Bug caught: a PET holding no activity (wrong series, wrong units) crashing the report
    on the undefined inside fraction instead of being flagged at −100 %."""
    from tareplanner.records.report import verification_lines
    check, warnings = activity_check(0.0, 0.0, 5.0, 0.0, "planned total activity")
    assert check["relative_difference"] == -1.0 and warnings
    assert check["inside_liver_and_lungs_fraction"] is None
    text = "\n".join(verification_lines({"post_treatment": {"activity_check": check},
                                         "warnings": warnings}))
    assert "-100.0%" in text and "OUTSIDE TOLERANCE" in text
