"""The post-treatment activity check (tareplanner.dosimetry.activity.activity_check) field by
field, its caller-given tolerance, the warning of activity outside liver and lungs at its
edge, and the refusals, on numbers written here by hand.

Sources: the tolerance 20 % = QUEST's 10 % for Y-90 PET (EJNMMI 2015;42:1202) + ANSI
N42.13's +/- 10 % for dose calibrators; docs/dosimetry.md: "an activity-outside-structures
warning is written when that fraction (corrected when the correction ran) exceeds 5 %";
expected in the patient A (1 - R).
"""

import math
from datetime import datetime, timedelta, timezone

import pytest
import SimpleITK as sitk

from tareplanner.dosimetry.activity import activity_check, pet_activity_at_administration
from tareplanner.errors import FieldValueError


def test_activity_check_field_by_field():
    """5.0 GBq administered, 10 % residual: 4.5 GBq expected. The image holds 4.0 GBq, 3.6 of
    it in liver and lungs: (4.0 - 4.5) / 4.5 = -11.1 % (within 20 %), inside 3.6 / 4.0 = 0.9
    of the image, 0.4 GBq (0.1) outside, inside (3.6 - 4.5) / 4.5 = -0.2 of the expected; 2 %
    outside after the correction, below 5 %: no warning. Bugs: a field computed from another
    (the inside fraction of the expected, the inside difference over the image, the outside
    as inside), a field renamed or dropped."""
    check, warnings = activity_check(4.0, 3.6, 5.0, 0.1, "planned total activity",
                                     outside_fraction_corrected=0.02)
    assert warnings == []
    source = check.pop("tolerance_source")
    assert "QUEST" in source and "N42.13" in source
    assert "Weber" in check.pop("outside_warning_source")
    assert check == pytest.approx({
        "applicable": True, "administered_activity_gbq": 5.0,
        "administered_source": "planned total activity", "residual_fraction": 0.1,
        "expected_in_patient_gbq": 4.5, "image_total_gbq": 4.0,
        "inside_liver_and_lungs_gbq": 3.6, "inside_liver_and_lungs_fraction": 0.9,
        "outside_liver_and_lungs_gbq": 0.4, "outside_liver_and_lungs_fraction": 0.1,
        "inside_liver_and_lungs_relative_to_expected": -0.2,
        "outside_liver_and_lungs_fraction_corrected": 0.02, "relative_difference": -0.5 / 4.5,
        "tolerance": 0.20, "within_tolerance": True, "outside_warning_fraction": 0.05,
        "outside_warning_evaluated": True}, abs=1e-12)


def test_a_tolerance_given_by_the_caller_is_used_and_named():
    """A tolerance of 5 % given by the caller: 4.8 GBq against 4.5 expected is +6.7 %,
    beyond it (within the default 20 %); the check names the caller as its source and the
    warning quotes the tolerance used, word for word up to the list of causes. Bugs: the
    given tolerance ignored, its source named as the data file's."""
    check, warnings = activity_check(4.8, 4.8, 5.0, 0.1, "administered activity (given)",
                                     tolerance=0.05)
    assert (check["tolerance"], check["tolerance_source"], check["within_tolerance"]) == (
        0.05, "given by the caller", False)
    (warning,) = warnings
    assert warning["code"] == "post-treatment-activity"
    assert warning["message"].startswith(
        "the post-treatment image holds 4.800 GBq at administration (4.800 GBq in liver and "
        "lungs) against 4.500 GBq expected (administered activity (given) 5.000 GBq, "
        "residual 10.0%): +6.7%, beyond the ±5% tolerance; delivered doses scale with it. "
        "Check: ")


@pytest.mark.parametrize("outside, warned", [(0.05, False), (0.0501, True), (0.08, True),
                                             (None, False)])
def test_activity_outside_liver_and_lungs_warned_above_five_percent(outside, warned):
    """docs/dosimetry.md: warned when the fraction outside liver and lungs after the
    partial-volume correction exceeds 5 % (5 % itself is not); without the correction (None)
    it is not compared (blur alone puts several per cent outside). Bugs: ``>=`` for ``>``,
    the fraction compared when not corrected, the message's words lost."""
    check, warnings = activity_check(4.5, 4.0, 5.0, 0.1, "x",
                                     outside_fraction_corrected=outside)
    assert check["outside_warning_evaluated"] is (outside is not None)
    codes = [w["code"] for w in warnings]
    assert codes == (["activity-outside-structures"] if warned else [])
    if outside == 0.08:
        assert warnings[0]["message"] == (
            "8.0% of the activity in the post-treatment image lies outside liver and lungs "
            "after the partial-volume correction, more than 5%: look for extrahepatic "
            "deposition (stomach, duodenum, gallbladder) or a misregistered image")


@pytest.mark.parametrize("image_gbq", [float("nan"), float("inf")])
def test_an_image_with_nan_or_infinite_voxels_is_refused(image_gbq):
    """Bug: a check computed on a NaN or infinite total (silently 'not within')."""
    with pytest.raises(FieldValueError) as error:
        activity_check(image_gbq, 1.0, 5.0, 0.0, "x")
    assert error.value.field == "activity in the post-treatment image (GBq)"
    value = error.value.value
    assert value == image_gbq or (math.isnan(value) and math.isnan(image_gbq))
    assert error.value.allowed == ("a finite number (the image holds NaN or infinite "
                                   "voxels)")


def test_refusals_of_the_administered_activity_and_residual_word_for_word():
    """Bugs: the refusals naming another field or allowing another range."""
    with pytest.raises(FieldValueError) as error:
        activity_check(1.0, 1.0, 0.0, 0.0, "x")
    assert (error.value.field, error.value.value, error.value.allowed) == (
        "administered activity (GBq)", 0.0, "a finite activity > 0 GBq")
    with pytest.raises(FieldValueError) as error:
        activity_check(1.0, 1.0, 5.0, 1.0, "x")
    assert (error.value.field, error.value.value, error.value.allowed) == (
        "residual fraction", 1.0, "0 <= R < 1")
    assert activity_check(1.0, 1.0, 5.0, 0.0, "x")[0]["residual_fraction"] == 0.0


def test_pet_decay_correction_out_of_range_is_refused():
    """An acquisition 100,000 h after the administration: 2^(-100000 / 64.1) underflows to 0,
    and its inverse, the decay correction, is no number: refused naming the hours. Bug: an
    image of infinite activity."""
    pet = sitk.Image([2, 2, 2], sitk.sitkFloat32)
    admin = datetime(2026, 12, 1, 10, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match=r"acquisition 1e\+05 h after the administration"):
        pet_activity_at_administration(pet, admin + timedelta(hours=100000), admin, 64.1)


def test_pet_activity_by_hand():
    """A PET of 1e6 Bq/mL in 2 mm voxels (0.008 mL) acquired one half-life (64.1 h) after
    the administration: 1e6 * 0.008 * 2 / 1e9 = 1.6e-5 GBq a voxel at administration. Bugs:
    the voxel volume in cm^3 mistaken, the decay applied the wrong way."""
    pet = sitk.Image([2, 2, 2], sitk.sitkFloat32) + 1e6
    pet.SetSpacing((2.0, 2.0, 2.0))
    admin = datetime(2026, 12, 1, 10, tzinfo=timezone.utc)
    out = pet_activity_at_administration(pet, admin + timedelta(hours=64.1), admin, 64.1)
    assert sitk.GetArrayFromImage(out) == pytest.approx(1.6e-5, rel=1e-6)


def test_fractions_of_an_image_holding_less_than_one_gbq():
    """0.9 GBq in the image, 0.45 GBq of it in liver and lungs: half inside, half outside
    (the fractions are of the image, whatever its size). Bug: the fractions left undefined
    below 1 GBq (``> 1`` for ``> 0``)."""
    check, _ = activity_check(0.9, 0.45, 1.0, 0.0, "x")
    assert check["inside_liver_and_lungs_fraction"] == pytest.approx(0.5, rel=1e-12)
    assert check["outside_liver_and_lungs_fraction"] == pytest.approx(0.5, rel=1e-12)


def _uniform_case(overlap):
    import numpy as np

    from tareplanner.dosimetry.structures import Structures
    grid = sitk.Image([10, 10, 10], sitk.sitkFloat32)
    grid.SetSpacing((4.0, 4.0, 4.0))
    grid.SetOrigin((-20.0, -20.0, -20.0))
    activity = sitk.GetImageFromArray(np.full((10, 10, 10), 1e-3, np.float32))
    activity.CopyInformation(grid)
    liver = np.zeros((10, 10, 10), bool)
    liver[:, :, :5] = True
    lungs = liver.copy() if overlap else np.zeros_like(liver)
    return activity, Structures(grid, {"liver": liver, "lungs": lungs},
                                {"liver": "liver", "lungs": "lung"})


def test_overlapping_liver_and_lungs_are_counted_once():
    """1e-3 GBq in each of 1000 voxels (1 GBq); liver and lungs both drawn over the same 500
    voxels (segmentations that overlap): 0.5 GBq inside liver and lungs, not 1.0. Bug: the
    union's occupancy not capped at 1 (activity counted twice)."""
    from tareplanner.dosimetry.activity import activity_inside
    activity, structures = _uniform_case(overlap=True)
    assert activity_inside(activity, structures) == pytest.approx(0.5, rel=1e-6)


def test_post_treatment_check_passes_the_tolerance_and_outside_fraction_on():
    """The image check with a caller's 5 % tolerance and 8 % outside after correction: 1 GBq
    in the image against 1.0 * (1 - 0.1) = 0.9 GBq expected is +11.1 %, beyond 5 %; 8 % > 5 %
    outside: both warnings. Bugs: either argument not passed on."""
    from tareplanner.dosimetry.activity import post_treatment_activity_check
    activity, structures = _uniform_case(overlap=False)
    check, warnings = post_treatment_activity_check(
        activity, structures, {"total_activity_gbq": 1.0, "residual_fraction": 0.1},
        tolerance=0.05, outside_fraction_corrected=0.08)
    assert check["tolerance"] == 0.05 and check["image_total_gbq"] == pytest.approx(1.0, rel=1e-6)
    assert check["relative_difference"] == pytest.approx(1.0 / 0.9 - 1, rel=1e-5)
    assert sorted(w["code"] for w in warnings) == ["activity-outside-structures",
                                                   "post-treatment-activity"]


def test_the_likely_causes_are_listed_and_separated(monkeypatch):
    """The warning ends with every likely cause of the settings, '; '-separated (causes
    written here). Bug: the separator garbled."""
    from tareplanner.dosimetry import activity
    settings = activity.verification_settings()
    settings["likely_causes"] = {"value": ["first cause", "second cause"], "source": "here"}
    monkeypatch.setattr(activity, "verification_settings", lambda: settings)
    _, warnings = activity.activity_check(2.0, 2.0, 1.0, 0.0, "x")
    assert warnings[0]["message"].endswith("Check: first cause; second cause.")


def test_counts_scaled_to_the_administered_activity_by_hand():
    """A post-treatment SPECT scaled to A (1 - R) = 2.0 * (1 - 0.25) = 1.5 GBq over the counts
    in liver and lungs: counts 0.5 and 0.25 (fractional, as after scatter correction) in the
    liver and 0.25 in the lungs share it 2 : 1 : 1 (0.75, 0.375, 0.375 GBq); a negative
    count (reconstruction noise) in the liver and the 7 counts outside both get none; liver
    and lungs drawn over the same voxel count it once; an image with no counts in either is
    refused. Bugs: negative counts subtracting activity, counts below 1 raised to 1, an
    overlap counted twice, counts outside taken in, an empty image giving NaN."""
    import numpy as np

    from tareplanner.dosimetry.activity import counts_to_activity
    from tareplanner.dosimetry.structures import Structures
    grid = sitk.Image([5, 1, 1], sitk.sitkFloat32)
    grid.SetSpacing((4.0, 4.0, 4.0))
    counts = sitk.GetImageFromArray(np.array([[[0.5, 0.25, 0.25, -3.0, 7.0]]], np.float32))
    counts.CopyInformation(grid)
    liver = np.array([[[True, True, False, True, False]]])
    lungs = np.array([[[False, True, True, False, False]]])     # overlaps the liver at voxel 1
    structures = Structures(grid, {"liver": liver, "lungs": lungs},
                            {"liver": "liver", "lungs": "lung"})
    got = sitk.GetArrayFromImage(counts_to_activity(counts, structures, 2.0, 0.25))
    np.testing.assert_allclose(got.ravel(), [0.75, 0.375, 0.375, 0.0, 0.0], rtol=1e-6)
    empty = sitk.GetImageFromArray(np.array([[[0.0, 0.0, 0.0, -1.0, 7.0]]], np.float32))
    empty.CopyInformation(grid)
    with pytest.raises(ValueError, match="^no counts in liver and lungs$"):
        counts_to_activity(empty, structures, 2.0, 0.25)


def _row_grid(values):
    import numpy as np
    grid = sitk.Image([len(values), 1, 1], sitk.sitkFloat32)
    grid.SetSpacing((4.0, 4.0, 4.0))
    image = sitk.GetImageFromArray(np.array([[values]], np.float32))
    image.CopyInformation(grid)
    return grid, image


def test_predictive_activity_by_hand():
    """Six voxels in a row, counts 4, 2, 2, -1, 3, 1; territory A = voxels 0-1, B = 1-2
    (sharing voxel 1, whose counts they split by occupancy: 1 each), lungs = voxel 4, voxels
    3 and 5 outside. A 2.0 GBq, B 1.0 GBq, R 20 %, LSF 10 %: A's liver part 2.0 * 0.8 * 0.9 =
    1.44 GBq over its counts 4 : 1 (1.152, 0.288), B's 0.72 GBq over 1 : 2 (0.24, 0.48), the
    lungs (2.0 + 1.0) * 0.8 * 0.1 = 0.24 GBq; the negative count is none; outside: 1 of the
    12 counts. Bugs: the residual or the shunt left out or applied to the wrong part, the
    shared voxel counted twice, negative counts, the outside fraction of another total."""
    import numpy as np

    from tareplanner.dosimetry.activity import predictive_activity
    from tareplanner.dosimetry.structures import Structures
    grid, counts = _row_grid([4, 2, 2, -1, 3, 1])
    a = np.array([[[True, True, False, False, False, False]]])
    b = np.array([[[False, True, True, False, False, False]]])
    lungs = np.array([[[False, False, False, False, True, False]]])
    liver = a | b
    structures = Structures(grid, {"liver": liver, "lungs": lungs}, {"liver": "liver",
                                                                     "lungs": "lung"},
                            territories={"A": a, "B": b})
    image, info = predictive_activity(counts, structures, {"A": 2.0, "B": 1.0}, 0.1, 0.2)
    np.testing.assert_allclose(sitk.GetArrayFromImage(image).ravel(),
                               [1.152, 0.528, 0.48, 0.0, 0.24, 0.0], rtol=1e-6, atol=1e-9)
    assert info == {"counts_outside_territories_and_lungs_fraction": pytest.approx(1 / 12)}


def test_predictive_activity_refuses_a_territory_without_counts():
    """A territory over voxels without counts cannot take its activity: refused by name.
    Bug: its activity silently lost (or a division by zero)."""
    import numpy as np

    from tareplanner.dosimetry.activity import predictive_activity
    from tareplanner.dosimetry.structures import Structures
    grid, counts = _row_grid([4, 0, 0])
    empty = np.array([[[False, True, True]]])
    structures = Structures(grid, {"lungs": np.zeros_like(empty)}, {"lungs": "lung"},
                            territories={"A": ~empty, "segment 4": empty})
    with pytest.raises(ValueError, match="the territory of 'segment 4' holds no counts"):
        predictive_activity(counts, structures, {"A": 1.0, "segment 4": 1.0}, 0.1, 0.0)


def test_predictive_activity_on_a_coarser_spect_grid_shares_partial_voxels():
    """SPECT voxels of 8 mm over CT voxels of 8/3 mm (three per SPECT voxel and axis, so the
    occupancy by 3-fold supersampling is exact): the territory holds the first SPECT voxel
    whole and a third of the second (4 of the 6 CT voxels). With 2 counts in each, the
    territory's 1.0 GBq (no residual, no shunt) goes 2 : 2/3, 0.75 and 0.25 GBq, and two
    thirds of the second voxel's counts lie outside: (4/3) / 4 = 1/3. No lung counts: no lung
    activity (not NaN). Bugs: a partly covered voxel given more of its counts than its
    share, the lungs' share divided by zero."""
    import numpy as np

    from tareplanner.dosimetry.activity import predictive_activity
    from tareplanner.dosimetry.structures import Structures
    ct = sitk.Image([6, 3, 3], sitk.sitkFloat32)
    ct.SetSpacing((8 / 3, 8 / 3, 8 / 3))
    ct.SetOrigin((-8 + 4 / 3, -4 + 4 / 3, -4 + 4 / 3))
    spect = sitk.GetImageFromArray(np.array([[[2.0, 2.0]]], np.float32))
    spect.SetSpacing((8.0, 8.0, 8.0))
    spect.SetOrigin((-4.0, 0.0, 0.0))
    territory = np.zeros((3, 3, 6), bool)
    territory[:, :, :4] = True
    structures = Structures(ct, {"lungs": np.zeros_like(territory)}, {"lungs": "lung"},
                            territories={"A": territory})
    image, info = predictive_activity(spect, structures, {"A": 1.0}, 0.0, 0.0)
    np.testing.assert_allclose(sitk.GetArrayFromImage(image).ravel(), [0.75, 0.25],
                               rtol=1e-6)
    assert info["counts_outside_territories_and_lungs_fraction"] == pytest.approx(1 / 3)


def test_predictive_activity_of_fractional_counts():
    """Counts below 1 (a normalised or scatter-corrected image): 0.25, 0.25 in the territory,
    0.5 outside, 1.0 in all: the territory's 1.0 GBq (no residual, no shunt) splits 0.5 and
    0.5 GBq, and half the counts lie outside. Bugs: a territory of less than one count
    refused, the outside fraction reported as 0 when the image holds one count or less."""
    import numpy as np

    from tareplanner.dosimetry.activity import predictive_activity
    from tareplanner.dosimetry.structures import Structures
    grid, counts = _row_grid([0.25, 0.25, 0.5])
    territory = np.array([[[True, True, False]]])
    structures = Structures(grid, {"lungs": np.zeros_like(territory)}, {"lungs": "lung"},
                            territories={"A": territory})
    image, info = predictive_activity(counts, structures, {"A": 1.0}, 0.0, 0.0)
    np.testing.assert_allclose(sitk.GetArrayFromImage(image).ravel(), [0.5, 0.5, 0.0])
    assert info["counts_outside_territories_and_lungs_fraction"] == pytest.approx(0.5)


def test_the_check_of_an_image_scaled_to_the_activity_is_not_applicable():
    """A SPECT scaled to the administered activity holds it by construction: its check says
    so, with the reason given. Bug: the check reported as applicable or the reason lost."""
    from tareplanner.dosimetry.activity import not_applicable_check
    assert not_applicable_check("scaled to the administered activity") == {
        "applicable": False, "reason": "scaled to the administered activity"}
