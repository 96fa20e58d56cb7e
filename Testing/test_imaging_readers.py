"""Readers: our own DICOM round-trips with identical geometry, DICOM written by others,
and clear errors for unusable input."""

import shutil

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.data import get_testdata_file

from tareplanner.errors import ImageDataError
from tareplanner.imaging.grid import same_geometry
from tareplanner.imaging.readers import read_image


@pytest.mark.parametrize("key, attribute, tolerance", [
    ("ct", "ct", 0.0), ("spect_maa", "spect", 0.0), ("spect_ho166", "scout", 0.0),
    ("pet_y90", "pet", 2e-5), ("cbct_right_hepatic", None, 0.0), ("cbct_left_hepatic", None, 0.0)])
def test_phantom_dicom_reads_back_identically(phantom_dir, small_phantom, key, attribute,
                                              tolerance):
    loaded = read_image(phantom_dir / "dicom" / key)
    if attribute is None:
        name = key.removeprefix("cbct_").replace("_", " ")
        reference = small_phantom.cbcts[name]
    else:
        reference = getattr(small_phantom, attribute)
    assert same_geometry(loaded.image, reference, tol_mm=1e-3)
    a = sitk.GetArrayFromImage(loaded.image).astype(np.float64)
    b = sitk.GetArrayFromImage(reference).astype(np.float64)
    # PET is stored as int16 with a per-slice slope: relative quantisation <= 1/65534
    assert np.max(np.abs(a - b)) <= tolerance * np.max(np.abs(b)) + 1e-6
    nifti = read_image(phantom_dir / "nifti" / f"{key}.nii.gz")
    assert same_geometry(nifti.image, reference, tol_mm=1e-3)


def test_units_and_timing_from_headers(phantom_dir):
    ct = read_image(phantom_dir / "dicom" / "ct")
    assert (ct.modality, ct.units) == ("CT", "HU")
    spect = read_image(phantom_dir / "dicom" / "spect_maa")
    assert (spect.modality, spect.units) == ("NM", "counts")
    assert spect.meta["radionuclide"] == "Tc-99m"
    assert spect.meta["administered_activity_bq"] == pytest.approx(150e6)  # NM dose in MBq
    pet = read_image(phantom_dir / "dicom" / "pet_y90")
    assert (pet.modality, pet.units, pet.meta["decay_correction"]) == ("PT", "BQML", "START")
    assert pet.meta["radionuclide"] == "Y-90"
    assert pet.meta["administered_activity_bq"] == pytest.approx(3.0e9)
    assert pet.meta["administration_datetime"] == "2026-12-01T10:00:00+01:00"
    assert pet.meta["acquisition_datetime"] == "2026-12-01T14:00:00+01:00"
    assert read_image(phantom_dir / "dicom" / "spect_ho166").meta["radionuclide"] == "Ho-166"


def test_ct_written_by_others_matches_simpleitk():
    # pydicom's CT_small.dcm (GE, signed pixels, rescale slope/intercept): compare with
    # SimpleITK's own (GDCM) reader, an independent implementation.
    path = get_testdata_file("CT_small.dcm")
    ours = read_image(path)
    theirs = sitk.ReadImage(path, sitk.sitkFloat32)
    assert ours.modality == "CT" and ours.units == "HU"
    np.testing.assert_allclose(ours.image.GetOrigin(), theirs.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(ours.image.GetSpacing()[:2], theirs.GetSpacing()[:2], atol=1e-6)
    np.testing.assert_allclose(ours.image.GetDirection(), theirs.GetDirection(), atol=1e-6)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(ours.image),
                                  sitk.GetArrayFromImage(theirs))


def test_multiframe_rt_dose_written_by_others():
    # pydicom's rtdose.dcm: multi-frame grid with GridFrameOffsetVector and DoseGridScaling.
    path = get_testdata_file("rtdose.dcm")
    ds = pydicom.dcmread(path)
    ours = read_image(path)
    assert ours.units == ds.DoseUnits  # "RELATIVE" in this file
    expected = ds.pixel_array * float(ds.DoseGridScaling)
    np.testing.assert_allclose(sitk.GetArrayFromImage(ours.image), expected, rtol=1e-6)
    offsets = [float(v) for v in ds.GridFrameOffsetVector]
    assert ours.image.GetSpacing()[2] == pytest.approx(abs(offsets[1] - offsets[0]))
    first = np.array([float(v) for v in ds.ImagePositionPatient])
    np.testing.assert_allclose(ours.image.GetOrigin(), first + np.array([0, 0, offsets[0]]),
                               atol=1e-4)


def _copy_series(src, dst):
    shutil.copytree(src, dst)
    return sorted(dst.iterdir())


def test_mixed_series_are_refused(phantom_dir, tmp_path):
    mixed = tmp_path / "mixed"
    _copy_series(phantom_dir / "dicom" / "ct", mixed)
    shutil.copy(phantom_dir / "dicom" / "spect_maa" / "NM0001.dcm", mixed / "NM0001.dcm")
    with pytest.raises(ImageDataError, match="several series"):
        read_image(mixed)
    uid = pydicom.dcmread(mixed / "NM0001.dcm").SeriesInstanceUID
    assert read_image(mixed, series_uid=uid).modality == "NM"


def test_non_uniform_slice_spacing_is_refused(phantom_dir, tmp_path):
    files = _copy_series(phantom_dir / "dicom" / "ct", tmp_path / "gap")
    files[10].unlink()
    with pytest.raises(ImageDataError, match=r"CT0012.dcm:ImagePositionPatient.*uniform spacing"):
        read_image(tmp_path / "gap")


def test_missing_orientation_names_file_and_tag(phantom_dir, tmp_path):
    files = _copy_series(phantom_dir / "dicom" / "ct", tmp_path / "noiop")
    ds = pydicom.dcmread(files[3])
    del ds.ImageOrientationPatient
    ds.save_as(files[3])
    with pytest.raises(ImageDataError, match=r"CT0004.dcm:ImageOrientationPatient \(0020,0037\)"):
        read_image(tmp_path / "noiop")


def test_pet_without_units_is_refused(phantom_dir, tmp_path):
    files = _copy_series(phantom_dir / "dicom" / "pet_y90", tmp_path / "pet")
    for f in files:
        ds = pydicom.dcmread(f)
        del ds.Units
        ds.save_as(f)
    with pytest.raises(ImageDataError, match=r"Units \(0054,1001\)"):
        read_image(tmp_path / "pet")


def test_suv_pet_is_refused(phantom_dir, tmp_path):
    files = _copy_series(phantom_dir / "dicom" / "pet_y90", tmp_path / "suv")
    for f in files:
        ds = pydicom.dcmread(f)
        ds.Units = "GML"
        ds.save_as(f)
    with pytest.raises(ImageDataError, match="GML"):
        read_image(tmp_path / "suv")


def test_empty_and_corrupted_input(tmp_path, phantom_dir):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageDataError, match="no DICOM images"):
        read_image(tmp_path / "empty")
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"not an image")
    with pytest.raises(ImageDataError, match="broken.nii.gz"):
        read_image(broken)
    truncated = tmp_path / "trunc"
    files = _copy_series(phantom_dir / "dicom" / "ct", truncated)
    data = files[0].read_bytes()
    files[0].write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageDataError, match="CT0001.dcm"):
        read_image(truncated)
    with pytest.raises(ImageDataError, match="existing file"):
        read_image(tmp_path / "nowhere")


@pytest.mark.parametrize("suffix", [".nrrd", ".mha", ".nii.gz"])
def test_research_formats_read_back(small_phantom, tmp_path, suffix):
    path = tmp_path / f"spect{suffix}"
    sitk.WriteImage(small_phantom.spect, str(path))
    loaded = read_image(path, units="counts", modality="NM")
    assert loaded.units == "counts" and loaded.is_counts
    assert same_geometry(loaded.image, small_phantom.spect, tol_mm=1e-3)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(loaded.image),
                                  sitk.GetArrayFromImage(small_phantom.spect))
    assert len(loaded.sha256) == 64


def test_rtstruct_written_by_plastimatch_reads_back(phantom_dir, small_phantom, tmp_path):
    # our label maps -> RT Structure Set by plastimatch (an independent implementation) ->
    # our contour rasteriser: the same voxels; then used as the input of a measurement
    import json
    import subprocess
    import sys
    from pathlib import Path

    from tareplanner.cli.main import main
    from tareplanner.imaging.phantom_files import label_images
    from tareplanner.dicom.rtstruct import read_rtstruct

    labels = label_images(small_phantom)
    tumours = sitk.GetArrayFromImage(labels["tumours"])
    masks = {"liver": sitk.GetArrayFromImage(labels["liver"]) > 0,
             "T1": tumours == 1, "T2": tumours == 2, "T3": tumours == 3}
    ss = np.zeros(tumours.shape, np.uint32)
    for bit, mask in enumerate(masks.values()):
        ss |= mask.astype(np.uint32) << bit
    image = sitk.GetImageFromArray(ss)
    image.CopyInformation(small_phantom.ct)
    sitk.WriteImage(image, str(tmp_path / "ss.mha"))
    (tmp_path / "ss.txt").write_text("".join(f"{b}|255\\0\\0|{n}\n"
                                             for b, n in enumerate(masks)))
    exe = Path(sys.executable).parent / "plastimatch"
    exe = str(exe) if exe.exists() else shutil.which("plastimatch")
    subprocess.run([exe, "convert", "--input-ss-img", str(tmp_path / "ss.mha"),
                    "--input-ss-list", str(tmp_path / "ss.txt"), "--output-dicom",
                    str(tmp_path / "rt"), "--referenced-ct", str(phantom_dir / "dicom" / "ct")],
                   check=True, capture_output=True)
    rtss = next(p for p in (tmp_path / "rt").rglob("*") if p.is_file()
                and pydicom.dcmread(p, stop_before_pixels=True).Modality == "RTSTRUCT")
    got = read_rtstruct(rtss, small_phantom.ct)
    for name, mask in masks.items():
        np.testing.assert_array_equal(got[name], mask)
    case = tmp_path / "case.json"
    assert main(["measure", "--ct", str(phantom_dir / "dicom" / "ct"), "--spect",
                 str(phantom_dir / "dicom" / "spect_maa"), "--rtstruct", str(rtss),
                 "--territories", str(phantom_dir / "labels" / "territories.nii.gz"),
                 "--goal", "maximum", "--product", "therasphere", "-o", str(case),
                 "--measurement-output", str(tmp_path / "m.json")]) == 0
    measured = json.loads((tmp_path / "m.json").read_text())
    assert set(measured["volumes_ml"]["tumours"]) == {"T1", "T2", "T3"}
    with pytest.raises(ImageDataError, match="RTSTRUCT"):
        read_rtstruct(next((phantom_dir / "dicom" / "ct").iterdir()), small_phantom.ct)
