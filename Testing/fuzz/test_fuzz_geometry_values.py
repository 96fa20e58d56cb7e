"""Hostile images and cases that once got through silently or with a traceback: NaN, infinite
and negative SPECT voxels, single-frame RT Dose without its Dose Grid Scaling, a CT with gantry
tilt, a SPECT covering half the CT, integers beyond any float, impossible volumes. Each test
names the bug it catches; expected values come from pydicom's own reading, from hand
calculation or from the bounds written in the test."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from tareplanner.errors import FieldValueError, ImageDataError
from tareplanner.imaging.loaded import LoadedImage
from tareplanner.imaging.measure import LabelInputs, PositionImages, measure
from tareplanner.imaging.phantom_files import label_images
from tareplanner.imaging.readers import read_image
from tareplanner.imaging.voxel_checks import check_emission_voxels
from tareplanner.records.case import parse_case

from .hostile import assert_refused


# --------------------------------------------------------------------------- RT Dose scaling

@pytest.mark.parametrize("single, multi", [("rtdose_1frame.dcm", "rtdose.dcm"),
                                           ("rtdose_rle_1frame.dcm", "rtdose_rle.dcm"),
                                           ("rtdose_expb_1frame.dcm", "rtdose_expb.dcm")])
def test_rt_dose_scaled_alike_single_and_multi_frame(pydicom_test_files, single, multi):
    """Bug caught: a single-frame RT Dose read as a plain slice, its Dose Grid Scaling
    (3004,000E) ignored: 1.254e6 where the multi-frame twin gives 1.254. Expected values:
    pydicom's pixel_array times DoseGridScaling (PS3.3 C.8.8.3), computed here."""
    for name in (single, multi):
        ds = pydicom.dcmread(pydicom_test_files / name)
        expected = ds.pixel_array.astype(np.float64) * float(ds.DoseGridScaling)
        expected = expected.reshape(-1, ds.Rows, ds.Columns)
        got = sitk.GetArrayFromImage(read_image(pydicom_test_files / name).image)
        np.testing.assert_allclose(got, expected, rtol=1e-6)
        assert got.max() == pytest.approx(1.254, rel=1e-6)   # 1254000 x 1e-6 Gy
    first = sitk.GetArrayFromImage(read_image(pydicom_test_files / multi).image)[0]
    np.testing.assert_allclose(
        sitk.GetArrayFromImage(read_image(pydicom_test_files / single).image)[0], first)


def test_rt_dose_scaling_zero_or_negative_is_refused(pydicom_test_files, tmp_path):
    """Bug caught: a Dose Grid Scaling of 0 (every dose 0 Gy) or below taken as given."""
    for value in ("0", "-1e-6"):
        ds = pydicom.dcmread(pydicom_test_files / "rtdose_1frame.dcm")
        ds.DoseGridScaling = value
        path = tmp_path / f"scaling{value}.dcm"
        ds.save_as(path)
        with pytest.raises(ImageDataError, match=r"DoseGridScaling \(3004,000E\)"):
            read_image(path)


# --------------------------------------------------------------------------- gantry tilt

def _tilted_ct(phantom_dir: Path, folder: Path, degrees: float, tag: bool = True) -> Path:
    """The phantom's CT series with each slice moved along y by z * tan(tilt), as a scanner
    with gantry tilt writes it (the orientation stays axial, the positions shear)."""
    ct = folder / f"ct_tilt_{degrees}"
    shutil.copytree(phantom_dir / "dicom" / "ct", ct)
    shift = math.tan(math.radians(degrees))
    for path in ct.iterdir():
        ds = pydicom.dcmread(path)
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [f"{x:.4f}", f"{y + z * shift:.4f}", f"{z:.4f}"]
        if tag:
            ds.GantryDetectorTilt = f"{degrees:g}"
        ds.save_as(path)
    return ct


def test_gantry_tilt_is_refused_naming_the_drift(phantom_dir, tmp_path):
    """Bug caught: a CT with gantry tilt read as if orthogonal: every slice placed at the
    first slice's x and y, voxels up to tan(tilt) x z-extent from the DICOM positions (91 mm
    for a long scan) without a word."""
    ct = _tilted_ct(phantom_dir, tmp_path, 15.0)
    with pytest.raises(ImageDataError) as error:
        read_image(ct)
    message = str(error.value)
    assert "ImagePositionPatient (0020,0032)" in message
    assert "GantryDetectorTilt (0018,1120) is 15 degrees" in message
    # the largest drift is that of the last slice: tan(15 deg) x the z extent, by hand
    positions = sorted(float(pydicom.dcmread(p).ImagePositionPatient[2]) for p in ct.iterdir())
    drift = math.tan(math.radians(15)) * (positions[-1] - positions[0])
    assert f"{drift:.2f} mm off the slice normal" in message


def test_sheared_stack_without_tilt_tag_is_refused_and_tiny_jitter_is_not(phantom_dir,
                                                                           tmp_path):
    """Bug caught: only the GantryDetectorTilt tag looked at (a sheared stack without it read
    as orthogonal), or rounding of the positions (1e-4 mm) refused."""
    with pytest.raises(ImageDataError, match="off the slice normal"):
        read_image(_tilted_ct(phantom_dir, tmp_path, 2.0, tag=False))
    jitter = _tilted_ct(phantom_dir, tmp_path, 1e-5, tag=False)   # < 0.01 mm over the stack
    assert read_image(jitter).image.GetSize()[2] == len(list(jitter.iterdir()))


def test_tilted_ct_refused_by_measure_with_exit_2(records, sandbox, tmp_path):
    """The command line: exit 2, one line naming --ct, nothing written."""
    d = records["phantom"]
    ct = _tilted_ct(d, tmp_path, 15.0)
    outcome = sandbox.run(["measure", "--ct", ct, "--spect", d / "nifti" / "spect_maa.nii.gz",
                           "--liver", d / "labels" / "liver.nii.gz",
                           "--territories", d / "labels" / "territories.nii.gz",
                           "--territory-names", "right hepatic,left hepatic",
                           "--goal", "normal_dose_gy=40", "--product", "therasphere",
                           "-o", sandbox.out / "case.json"])
    assert_refused(outcome, "--ct", "off the slice normal", out=sandbox.out)


# --------------------------------------------------------------------------- voxel values

def _measure(phantom, spect: sitk.Image, pvc: bool = False) -> dict:
    labels = label_images(phantom)
    names = {k + 1: t.name for k, t in enumerate(phantom.spec.anatomy.tumours)}
    territories = sitk.GetArrayFromImage(labels["territories"])
    positions = []
    for i, terr in enumerate(phantom.spec.anatomy.territories, start=1):
        mask = sitk.GetImageFromArray((territories == i).astype(np.uint8))
        mask.CopyInformation(phantom.ct)
        positions.append(PositionImages(name=terr.name, territory=mask))
    return measure(LoadedImage(phantom.ct, "CT", "HU", "ct", ""),
                   LoadedImage(spect, "NM", "counts", "spect", ""),
                   LabelInputs(liver=labels["liver"], tumours=labels["tumours"],
                               tumour_names=names, lungs=labels["lungs"]),
                   positions, partial_volume_correction=pvc)


def _tumour_box_on_spect(phantom, name="T1"):
    """The SPECT voxels whose centres lie in the bounding box of tumour ``name`` (CT grid)."""
    labels = sitk.GetArrayFromImage(label_images(phantom)["tumours"])
    number = [t.name for t in phantom.spec.anatomy.tumours].index(name) + 1
    idx = np.argwhere(labels == number)
    ct = phantom.ct
    corners = [ct.TransformIndexToPhysicalPoint([int(v) for v in c[::-1]])
               for c in (idx.min(axis=0), idx.max(axis=0))]
    spect = phantom.spect
    lo, hi = (np.array(spect.TransformPhysicalPointToIndex(c))[::-1] for c in corners)
    lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
    return tuple(slice(int(a), int(b) + 1) for a, b in zip(lo, hi))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_voxels_over_a_tumour_are_refused_naming_count_and_place(small_phantom, bad):
    """Bug caught: NaN voxels over part of a tumour silently dropped from its sum (TNR 1.37
    instead of 3.17), +inf accepted. Expected: refused, naming how many voxels (counted here)
    and the index range they occupy (the box written here)."""
    values = sitk.GetArrayFromImage(small_phantom.spect)
    box = _tumour_box_on_spect(small_phantom)
    values[box] = bad
    spect = sitk.GetImageFromArray(values)
    spect.CopyInformation(small_phantom.spect)
    n = values[box].size
    with pytest.raises(ImageDataError) as error:
        _measure(small_phantom, spect)
    message = str(error.value)
    expected_counts = (f"{n} NaN and 0 infinite" if np.isnan(bad) else f"0 NaN and {n} infinite")
    assert expected_counts in message
    z, y, x = box
    assert f"x {x.start}..{x.stop - 1}, y {y.start}..{y.stop - 1}, z {z.start}..{z.stop - 1}" \
        in message


def test_half_negative_spect_is_refused_and_noise_is_warned(small_phantom):
    """Bug caught: a SPECT whose every other voxel is negative (a subtracted background, a
    wrong intercept) measured as counts. By hand: noise of -1 in 10 voxels against a total of
    millions of counts is far below 1 % -> a warning naming 10 voxels; the image minus its
    mean (about half the voxels negative, their sum equal to the positive sum) -> refused."""
    values = sitk.GetArrayFromImage(small_phantom.spect).astype(np.float64)
    assert values.min() >= 0
    noisy = values.copy()
    noisy.flat[:10] = -1.0
    image = sitk.GetImageFromArray(noisy.astype(np.float32))
    image.CopyInformation(small_phantom.spect)
    warning = check_emission_voxels(image, "spect")
    assert warning["code"] == "negative-voxels" and "10 negative voxels" in warning["message"]
    assert "x 0..9, y 0..0, z 0..0" in warning["message"]
    measured = _measure(small_phantom, image)
    assert any(w["code"] == "negative-voxels" and "10 negative voxels" in w["message"]
               for w in measured["warnings"])
    centred = sitk.GetImageFromArray((values - values.mean()).astype(np.float32))
    centred.CopyInformation(small_phantom.spect)
    with pytest.raises(ImageDataError, match="negative voxels summing to 100"):
        _measure(small_phantom, centred)


def test_negative_limit_edges():
    """The 1 % edge, by hand: positives summing to 1000; negatives of -10 (1 %) pass with a
    warning, -10.5 (1.05 %) are refused."""
    for negative, refused in ((-10.0, False), (-10.5, True)):
        values = np.zeros((2, 2, 10), np.float32)
        values[0, 0, :] = 100.0
        values[1, 1, 0] = negative
        image = sitk.GetImageFromArray(values)
        if refused:
            with pytest.raises(ImageDataError):
                check_emission_voxels(image, "x")
        else:
            assert "1 negative voxels (1.00% of the positive counts" in \
                check_emission_voxels(image, "x")["message"]


def test_spect_covering_half_the_ct_is_refused_not_divided_by_zero(small_phantom):
    """Bug caught: a SPECT shifted by half its width (a position's normal liver outside it)
    gave ZeroDivisionError in the TNR. Expected: an ImageDataError naming the field of
    view and the position."""
    spect = sitk.Image(small_phantom.spect)
    origin = list(spect.GetOrigin())
    origin[0] += spect.GetSize()[0] * spect.GetSpacing()[0] / 2
    spect.SetOrigin(origin)
    for pvc in (False, True):
        with pytest.raises(ImageDataError) as error:
            _measure(small_phantom, spect, pvc=pvc)
        assert "field of view" in str(error.value) or "partial-volume" in str(error.value)


def test_spect_covering_half_the_ct_refused_on_the_command_line(records, sandbox):
    d = records["phantom"]
    image = sitk.ReadImage(str(d / "nifti" / "spect_maa.nii.gz"))
    origin = list(image.GetOrigin())
    origin[0] += image.GetSize()[0] * image.GetSpacing()[0] / 2
    image.SetOrigin(origin)
    half = sandbox.inputs / "spect_half.nii.gz"
    sitk.WriteImage(image, str(half))
    outcome = sandbox.run(["measure", "--ct", d / "nifti" / "ct.nii.gz", "--spect", half,
                           "--liver", d / "labels" / "liver.nii.gz",
                           "--tumours", d / "labels" / "tumours.nii.gz",
                           "--tumour-names", "T1,T2,T3",
                           "--territories", d / "labels" / "territories.nii.gz",
                           "--territory-names", "right hepatic,left hepatic",
                           "--goal", "tumour_dose_gy=250", "--product", "therasphere",
                           "-o", sandbox.out / "case.json"])
    assert_refused(outcome, "field of view", out=sandbox.out)


# --------------------------------------------------------------------------- case numbers

def test_integer_of_400_digits_is_refused_not_overflowing(base_case):
    """Bug caught: OverflowError (a traceback) from math.isfinite on an integer beyond any
    float. Expected: a FieldValueError naming the field and the number of digits."""
    for field in ("whole_liver_volume_ml", "lung_mass_kg", "tissue_density_g_per_ml"):
        case = dict(base_case)
        case[field] = 10 ** 400
        with pytest.raises(FieldValueError) as error:
            parse_case(case)
        assert error.value.field == field
        assert error.value.value == "an integer of 401 digits"


@pytest.mark.parametrize("where, value, ok", [
    ("whole_liver_volume_ml", 15000, True), ("whole_liver_volume_ml", 15000.5, False),
    ("whole_liver_volume_ml", 1e6, False), ("normal_volume_ml", 15000.5, False),
    ("normal_volume_ml", 1e7, False), ("tumour", 15000.5, False),
    ("activity_gbq", 30, True), ("activity_gbq", 30.01, False), ("activity_gbq", 3000, False),
    ("lung_mass_kg", 5.0, True), ("lung_mass_kg", 5.01, False),
])
def test_impossible_volumes_activities_and_masses_refused_at_the_edge(base_case, where, value,
                                                                      ok):
    """Bug caught: normal-liver volumes of 1e6-1e7 mL (1-10 m^3) planned. Edges, by hand
    from data/plausible_ranges.json's reasons: 15 L per volume, 30 GBq per position, 5 kg
    of lung: the edge itself is allowed, just above is refused with the range."""
    case = base_case
    if where == "normal_volume_ml":
        case["positions"][0]["normal_volume_ml"] = value
    elif where == "tumour":
        case["positions"][0]["tumours"][0]["volume_ml"] = value
    elif where == "activity_gbq":
        case["positions"][0]["goal"] = {"activity_gbq": value}
    else:
        case[where] = value
    if where == "whole_liver_volume_ml" and ok:
        case["positions"][0]["normal_volume_ml"] = 900
    if ok:
        parse_case(case)
        return
    with pytest.raises(FieldValueError) as error:
        parse_case(case)
    limit = {"activity_gbq": "30", "lung_mass_kg": "5"}.get(where, "15000")
    assert f"<= {limit}" in error.value.allowed
