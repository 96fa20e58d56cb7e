"""Hostile images: DICOM series with missing, malformed or extreme geometry and rescale tags,
truncated files, mixed series, NIfTI/NRRD/MHA with impossible headers, NaN or infinite
voxels, label maps that are not label maps, images that do not overlap the CT, and real
DICOM written by others (pydicom's test files, plastimatch).

The expected outcome of each is the DICOM standard's meaning of the tags (PS3.3 C.7.6.2:
orientation as two unit vectors, position and spacing in mm, spacing > 0; C.11.1 rescale)
and the phantom's ground truth (truth.json) where an image must be measured.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from hypothesis import given
from hypothesis import strategies as st
from pydicom.dataelem import DataElement

from .hostile import FUZZ, assert_refused, snapshot
from tareplanner.errors import ImageDataError, TarePlannerInputError
from tareplanner.imaging.readers import MAX_VOXELS, read_image

GEOMETRY_TAGS = ["ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing",
                 "SliceThickness", "RescaleSlope", "RescaleIntercept", "Rows", "Columns",
                 "SamplesPerPixel", "NumberOfFrames", "SeriesInstanceUID", "Modality",
                 "AcquisitionDate", "AcquisitionTime", "BitsAllocated", "PixelRepresentation"]
BAD_TEXT = ["", "abc", "nan", "inf", "-inf", "0", "-1", "1e+300", "1\\2", "1\\2\\3\\4\\5\\6\\7",
            "0\\0\\0\\0\\0\\0", "1\\0\\0\\1\\0\\0", "65535", "20261340", "256060"]


@pytest.fixture(scope="module")
def ct_slices(phantom_dir, tmp_path_factory):
    """Six slices of the synthetic patient's CT (enough for a volume, fast to read)."""
    folder = tmp_path_factory.mktemp("ct6")
    for path in sorted((phantom_dir / "dicom" / "ct").iterdir())[40:46]:
        shutil.copy(path, folder / path.name)
    return folder


def _check_loaded(loaded) -> None:
    """What every image handed on must be: finite voxels, finite spacing > 0."""
    values = sitk.GetArrayViewFromImage(loaded.image)
    assert np.isfinite(values).all()
    assert all(math.isfinite(s) and s > 0 for s in loaded.image.GetSpacing())
    assert all(math.isfinite(v) for v in loaded.image.GetOrigin())


def _mutate(path, tag: str, value) -> None:
    ds = pydicom.dcmread(path)
    if value is None:
        if tag in ds:
            delattr(ds, tag)
    else:  # written as text (LO), as a broken writer would, whatever the tag's VR
        ds[tag] = DataElement(pydicom.datadict.tag_for_keyword(tag), "LO", value)
    ds.save_as(path)


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, 5), st.sampled_from(GEOMETRY_TAGS),
                                st.one_of(st.none(), st.sampled_from(BAD_TEXT))),
                      min_size=1, max_size=3))
def test_dicom_tag_mutations_read_or_refused(ct_slices, tmp_path_factory, edits):
    """Any geometry, rescale, size or identity tag of a CT slice deleted or replaced by
    text the VR does not allow: the series is read into finite voxels on a positive
    spacing, or refused naming the file (before: zero or negative PixelSpacing gave a
    SimpleITK traceback, NaN positions 'cannot convert float NaN to integer', a NaN or
    1e300 RescaleSlope was measured as it was)."""
    folder = tmp_path_factory.mktemp("mut")
    series = folder / "ct"
    shutil.copytree(ct_slices, series)
    files = sorted(series.iterdir())
    for index, tag, value in edits:
        _mutate(files[index], tag, value)
    try:
        loaded = read_image(series)
    except ImageDataError as exc:
        assert str(series) in exc.field or "image" in exc.field
        return
    _check_loaded(loaded)


@FUZZ
@given(index=st.integers(0, 5), fraction=st.floats(0.0, 0.999))
def test_truncated_dicom_read_or_refused(ct_slices, tmp_path_factory, index, fraction):
    """A slice cut at any byte (a copy that stopped, a disk that filled): refused by name or,
    when the cut file is no longer DICOM at all, skipped and the gap in the series named."""
    folder = tmp_path_factory.mktemp("cut") / "ct"
    shutil.copytree(ct_slices, folder)
    path = sorted(folder.iterdir())[index]
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * fraction)])
    try:
        loaded = read_image(folder)
    except ImageDataError:
        return
    _check_loaded(loaded)
    assert loaded.image.GetSize()[2] in (5, 6)


def _header_image(folder, text: str, data: bytes, name: str):
    path = folder / name
    path.write_bytes(text.encode() + data)
    return path


@FUZZ
@given(size=st.lists(st.one_of(st.integers(0, 12), st.sampled_from([10 ** 5, 2 ** 31 - 1])),
                     min_size=1, max_size=5),
       spacing=st.sampled_from(["1", "0", "-1", "nan", "inf", "1e-300", "abc"]),
       components=st.sampled_from([1, 2, 3]),
       element=st.sampled_from(["MET_FLOAT", "MET_UCHAR", "MET_DOUBLE", "MET_NONE"]),
       fill=st.sampled_from([b"\x00", b"\xff", b"\x7f\xc0\x00\x00"]),
       short=st.booleans())
def test_mha_headers_read_or_refused(tmp_path_factory, size, spacing, components, element,
                                     fill, short):
    """MetaImage headers with any dimension count, giant or zero sizes, impossible spacing,
    vector pixels and truncated data: read into a 3D scalar image with finite voxels or
    refused (before: 2D/4D images and vector pixels reached resampling and failed with a
    SimpleITK traceback; a giant declared size was allocated)."""
    folder = tmp_path_factory.mktemp("mha")
    header = (f"ObjectType = Image\nNDims = {len(size)}\nDimSize = {' '.join(map(str, size))}\n"
              f"ElementSpacing = {' '.join([spacing] * len(size))}\n"
              f"ElementNumberOfChannels = {components}\nElementType = {element}\n"
              "ElementDataFile = LOCAL\n")
    count = int(np.prod(size, dtype=object)) * components * 8
    data = fill * (min(count, 10 ** 5) // len(fill) + 1)
    if short:
        data = data[:max(len(data) // 3, 1)]
    path = _header_image(folder, header, data, "image.mha")
    try:
        loaded = read_image(path, modality="NM", units="counts")
    except ImageDataError:
        return
    _check_loaded(loaded)
    assert loaded.image.GetDimension() == 3
    assert loaded.image.GetNumberOfPixels() <= MAX_VOXELS


def test_nan_and_infinite_voxels_refused(tmp_path):
    """NaN or infinite voxels were summed with nansum or reached the dose as they were."""
    for bad in (np.nan, np.inf, -np.inf):
        array = np.ones((4, 5, 6), np.float32)
        array[1, 2, 3] = bad
        path = tmp_path / "bad.nrrd"
        sitk.WriteImage(sitk.GetImageFromArray(array), str(path))
        with pytest.raises(ImageDataError, match="voxel values"):
            read_image(path)


def test_truncated_gzip_nifti_refused(phantom_dir, tmp_path):
    """ITK reads a truncated .nii.gz without an error and fills the rest with zeros: half a
    liver was measured as a whole one."""
    data = (phantom_dir / "labels" / "liver.nii.gz").read_bytes()
    path = tmp_path / "liver.nii.gz"
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(ImageDataError, match="gzip"):
        read_image(path)


def test_pydicom_test_files_read_or_refused(pydicom_test_files):
    """Every file pydicom ships (colour, JPEG, RLE, big-endian, truncated, RT Dose, SR,
    bad VR): an image with finite voxels or a named refusal; badVR.dcm raised a bare
    ValueError ('invalid literal for int()')."""
    read = refused = 0
    for path in sorted(pydicom_test_files.iterdir()):
        if not path.is_file():
            continue
        try:
            loaded = read_image(path)
        except TarePlannerInputError as exc:
            assert str(path) in exc.field
            refused += 1
            continue
        _check_loaded(loaded)
        read += 1
    assert read >= 5 and refused >= 20


# --- the measure command -------------------------------------------------------------------


def _measure_argv(d, out, **replace):
    args = {"--ct": d / "nifti" / "ct.nii.gz", "--spect": d / "nifti" / "spect_maa.nii.gz",
            "--liver": d / "labels" / "liver.nii.gz", "--tumours": d / "labels" / "tumours.nii.gz",
            "--tumour-names": "T1,T2,T3", "--territories": d / "labels" / "territories.nii.gz",
            "--goal": "tumour_dose_gy=250", "--product": "therasphere"}
    args.update(replace)
    argv = ["measure"]
    for key, value in args.items():
        if value is not None:
            argv += [key, value]
    return argv + ["-o", out / "case.json", "--measurement-output", out / "m.json"]


def _label(phantom_dir, name, transform, folder, suffix=".nrrd"):
    image = sitk.ReadImage(str(phantom_dir / "labels" / f"{name}.nii.gz"), sitk.sitkFloat32)
    array = transform(sitk.GetArrayFromImage(image))
    out = sitk.GetImageFromArray(np.asarray(array, np.float32))
    out.CopyInformation(image)
    path = folder / f"{name}_{transform.__name__}{suffix}"
    sitk.WriteImage(out, str(path))
    return path


def _empty(a):
    return np.zeros_like(a)


def _minus(a):
    return a - 5


def _times300(a):
    return a * 300


def _half(a):
    return a * 0.5


def _no_t2(a):
    return np.where(a == 2, 0, a)


def _nan(a):
    b = a.copy()
    b[0, 0, 0] = np.nan
    return b


def _moved(phantom_dir, name, folder):
    image = sitk.ReadImage(str(phantom_dir / name))
    image.SetOrigin((5000.0, 5000.0, 5000.0))
    path = folder / ("far_" + name.replace("/", "_"))
    sitk.WriteImage(image, str(path))
    return path


@pytest.mark.parametrize("case", [
    "liver empty", "liver negative", "tumours 300", "tumours fractional", "tumour T2 absent",
    "liver NaN", "spect far away", "liver far away", "ct as spect", "spect 2D",
    "tumour names repeated", "tumour name with slash", "too many tumour names",
    "goal for unknown position", "goal NaN", "lung margin negative", "case id newline",
    "position name dotdot", "spect negative",
])
def test_measure_refuses_hostile_images(records, sandbox, case):
    """Each input fault is refused naming its option, before anything is written; before,
    an empty tumour label was reported as a goal problem, a label of 300 wrapped to 44 by
    the 8-bit cast, -5 to 251, a SPECT 5 m away gave 'no counts in lungs and liver' without
    an option, and a NaN goal or negative lung margin was taken as given."""
    d = records["phantom"]
    f = sandbox.inputs
    variants = {
        "liver empty": ({"--liver": _label(d, "liver", _empty, f)}, "--liver"),
        "liver negative": ({"--liver": _label(d, "liver", _minus, f)}, "--liver"),
        "tumours 300": ({"--tumours": _label(d, "tumours", _times300, f)}, "--tumours"),
        "tumours fractional": ({"--tumours": _label(d, "tumours", _half, f)}, "--tumours"),
        "tumour T2 absent": ({"--tumours": _label(d, "tumours", _no_t2, f)}, "2 (T2)"),
        "liver NaN": ({"--liver": _label(d, "liver", _nan, f)}, "--liver"),
        "spect far away": ({"--spect": _moved(d, "nifti/spect_maa.nii.gz", f)}, "--spect"),
        "liver far away": ({"--liver": _moved(d, "labels/liver.nii.gz", f)}, "--liver"),
        "ct as spect": ({"--spect": d / "dicom" / "ct"}, "--spect"),
        "spect 2D": ({"--spect": _header_image(
            f, "ObjectType = Image\nNDims = 2\nDimSize = 4 4\nElementSpacing = 1 1\n"
               "ElementType = MET_FLOAT\nElementDataFile = LOCAL\n", b"\0" * 64, "s.mha")},
            "--spect"),
        "tumour names repeated": ({"--tumour-names": "T1,T1,T3"}, "--tumour-names"),
        "tumour name with slash": ({"--tumour-names": "T1,../T2,T3"}, "--tumour-names"),
        "too many tumour names": ({"--tumour-names": "T1,T2,T3,T4"}, "--tumours"),
        "goal for unknown position": ({"--goal": "nowhere:tumour_dose_gy=250"}, "--goal"),
        "goal NaN": ({"--goal": "tumour_dose_gy=nan"}, "--goal"),
        "lung margin negative": ({"--lung-base-margin-mm": "-5"}, "--lung-base-margin-mm"),
        "case id newline": ({"--case-id": "A\nB"}, "--case-id"),
        "position name dotdot": ({"--territories": None, "--position": f"..={d / 'dicom' / 'ct'}"},
                                 "--position"),
        "spect negative": ({"--spect": _label(d, "liver", _minus, f)}, "--spect"),
    }
    replace, fragment = variants[case]
    outcome = sandbox.run(_measure_argv(d, sandbox.out, **replace))
    assert_refused(outcome, fragment, out=sandbox.out)


def _ct_copy(phantom_dir, folder, edit=None):
    ct = folder / "ct"
    shutil.copytree(phantom_dir / "dicom" / "ct", ct)
    if edit:
        edit(sorted(ct.iterdir()))
    return ct


@pytest.mark.parametrize("case, fragment", [
    ("no ImagePositionPatient", "ImagePositionPatient"),
    ("no PixelSpacing", "PixelSpacing"),
    ("no ImageOrientationPatient", "ImageOrientationPatient"),
    ("zero PixelSpacing", "PixelSpacing"),
    ("mixed series", "SeriesInstanceUID"),
    ("slice missing", "ImagePositionPatient"),
    ("truncated pixel data", "PixelData"),
])
def test_measure_refuses_broken_dicom_ct(records, sandbox, case, fragment):
    """DICOM CT faults named by file and tag, with the --ct option in front."""
    d = records["phantom"]

    def edit(files):
        if case.startswith("no "):
            _mutate(files[3], case[3:], None)
        elif case == "zero PixelSpacing":
            ds = pydicom.dcmread(files[0])
            ds.PixelSpacing = [0, 0]
            ds.save_as(files[0])
        elif case == "mixed series":
            for path in (d / "dicom" / "cbct_left_hepatic").iterdir():
                shutil.copy(path, files[0].parent / ("cbct_" + path.name))
        elif case == "slice missing":
            files[10].unlink()
        else:
            data = files[5].read_bytes()
            files[5].write_bytes(data[:len(data) - 5000])
    ct = _ct_copy(d, sandbox.inputs, edit)
    outcome = sandbox.run(_measure_argv(d, sandbox.out, **{"--ct": ct}))
    assert_refused(outcome, "--ct", fragment, out=sandbox.out)


def test_measure_refuses_pydicom_files_as_inputs(records, sandbox, pydicom_test_files):
    """Real DICOM of other modalities given as CT or SPECT: refused by Modality, never
    measured as if it were the planning CT (an MR or an NM SPECT was taken for HU)."""
    d = records["phantom"]
    for option, name, fragment in (("--ct", "MR_small.dcm", "Modality"),
                                   ("--ct", "CT_small.dcm", "inside the CT"),
                                   ("--spect", "rtdose.dcm", "Modality"),
                                   ("--spect", "CT_small.dcm", "Modality"),
                                   ("--ct", "badVR.dcm", "--ct")):
        outcome = sandbox.run(_measure_argv(d, sandbox.out,
                                            **{option: pydicom_test_files / name}))
        assert_refused(outcome, fragment, out=sandbox.out)


def test_measure_rtstruct_from_pydicom_refused(records, sandbox, pydicom_test_files):
    """pydicom's RT Structure Set belongs to another patient: no liver on this CT."""
    d = records["phantom"]
    outcome = sandbox.run(_measure_argv(d, sandbox.out, **{
        "--ct": d / "dicom" / "ct", "--liver": None, "--tumours": None, "--tumour-names": None,
        "--rtstruct": pydicom_test_files / "rtstruct.dcm"}))
    assert_refused(outcome, "--rtstruct", out=sandbox.out)


@pytest.fixture(scope="module")
def plastimatch_files(phantom_dir, tmp_path_factory):
    """The synthetic patient's CT and structures written as DICOM by plastimatch (CT series
    and an RT Structure Set of binary masks: liver, lungs, T1..T3)."""
    exe = shutil.which("plastimatch")
    if exe is None:
        pytest.skip("plastimatch is not installed")
    folder = tmp_path_factory.mktemp("plastimatch")
    masks = folder / "masks"
    masks.mkdir()
    labels = {n: sitk.ReadImage(str(phantom_dir / "labels" / f"{n}.nii.gz"))
              for n in ("liver", "lungs", "tumours")}
    sitk.WriteImage(sitk.Cast(labels["liver"] > 0, sitk.sitkUInt8), str(masks / "liver.nrrd"))
    sitk.WriteImage(sitk.Cast(labels["lungs"] > 0, sitk.sitkUInt8), str(masks / "lungs.nrrd"))
    for k in (1, 2, 3):
        sitk.WriteImage(sitk.Cast(labels["tumours"] == k, sitk.sitkUInt8),
                        str(masks / f"T{k}.nrrd"))
    run = {"capture_output": True, "timeout": 120, "check": True}
    subprocess.run([exe, "convert", "--input", str(phantom_dir / "nifti" / "ct.nii.gz"),
                    "--output-dicom", str(folder / "ct")], **run)
    subprocess.run([exe, "convert", "--input-prefix", str(masks), "--output-dicom",
                    str(folder / "rs"), "--referenced-ct", str(folder / "ct")], **run)
    rtstruct = next((folder / "rs").glob("*.dcm"))
    return folder / "ct", rtstruct


@pytest.mark.parametrize("edit, fragment", [
    (lambda ds: setattr(ds.ROIContourSequence[0].ContourSequence[0], "ContourData",
                        [1.0, 2.0, 3.0, 4.0]), "ContourData"),
    (lambda ds: setattr(ds.ROIContourSequence[0].ContourSequence[0], "ContourData",
                        ["nan"] * 9), "ContourData"),
    (lambda ds: setattr(ds.StructureSetROISequence[1], "ROIName",
                        ds.StructureSetROISequence[0].ROIName), "StructureSetROISequence"),
    (lambda ds: setattr(ds, "Modality", "CT"), "Modality"),
    (lambda ds: ds.StructureSetROISequence[0].__setitem__(
        "ROINumber", DataElement(0x30060022, "LO", "x")), "ROI"),
])
def test_rtstruct_faults_named(tmp_path, plastimatch_files, edit, fragment):
    """Contour data that are not (x, y, z) triples raised a numpy reshape error, duplicate
    ROI names silently kept the last ROI, an unparsable ROI number a bare ValueError."""
    from tareplanner.dicom.rtstruct import read_rtstruct
    ds = pydicom.dcmread(plastimatch_files[1])
    edit(ds)
    path = tmp_path / "rs.dcm"
    ds.save_as(path)
    reference = sitk.Image(8, 8, 8, sitk.sitkUInt8)
    with pytest.raises(ImageDataError, match=fragment):
        read_rtstruct(path, reference)


@pytest.mark.parametrize("content", [b"", b"\0" * 128 + b"DICM" + b"\x02\x00", b"not dicom"])
def test_measure_refuses_broken_seg(records, sandbox, content):
    """A SEG file that is empty, cut after its preamble or not DICOM: refused as --seg."""
    d = records["phantom"]
    seg = sandbox.write("seg.dcm", content)
    outcome = sandbox.run(_measure_argv(d, sandbox.out, **{
        "--ct": d / "dicom" / "ct", "--liver": None, "--tumours": None, "--tumour-names": None,
        "--seg": seg}))
    assert_refused(outcome, "--seg", out=sandbox.out)


def test_plastimatch_ct_and_rtstruct_measured(records, sandbox, plastimatch_files):
    """A CT series and an RT Structure Set written by plastimatch are read and give the
    phantom's true volumes (truth.json, from the phantom's voxel labels) within 1 %."""
    d = records["phantom"]
    ct, rtstruct = plastimatch_files
    outcome = sandbox.run(_measure_argv(d, sandbox.out, **{
        "--ct": ct, "--liver": None, "--tumours": None, "--tumour-names": None,
        "--rtstruct": rtstruct}))
    assert outcome.code == 0, outcome.err
    measured = json.loads((sandbox.out / "m.json").read_text())["volumes_ml"]
    truth = json.loads((d / "truth.json").read_text())["volumes_ml"]
    assert measured["liver"] == pytest.approx(truth["liver"], rel=0.01)
    assert measured["lungs"] == pytest.approx(truth["lungs"], rel=0.01)
    for name, volume in truth["tumours"].items():
        assert measured["tumours"][name] == pytest.approx(volume, rel=0.01)
    assert sorted(p.name for p in sandbox.out.iterdir()) == [
        "case.json", "m.json", "m_labels", "m_structure_labels"]


def test_measure_existing_outputs_refused_up_front(records, sandbox):
    """An existing measurement record without --force: refused before measuring; before,
    the label folder beside it was overwritten and then the record refused."""
    d = records["phantom"]
    (sandbox.out / "m.json").write_text("{}")
    (sandbox.out / "m_labels").mkdir()
    (sandbox.out / "m_labels" / "keep.txt").write_text("earlier run")
    before = snapshot(sandbox.out)
    outcome = sandbox.run(_measure_argv(d, sandbox.out))
    assert_refused(outcome, "exists", out=sandbox.out, out_before=before)
    assert (sandbox.out / "m_labels" / "keep.txt").read_text() == "earlier run"


def test_dose_refuses_pet_outside_the_ct(records, sandbox):
    """A post-treatment PET that does not overlap the planning CT (another frame of
    reference, a wrong patient position) gave a delivered dose of zero everywhere without a
    word; now refused naming --pet, the dose folder not made."""
    pet = sandbox.inputs / "pet"
    shutil.copytree(records["phantom"] / "dicom" / "pet_y90", pet)
    for path in pet.iterdir():
        ds = pydicom.dcmread(path)
        ds.ImagePositionPatient = [5000 + float(v) for v in ds.ImagePositionPatient]
        ds.save_as(path)
    outcome = sandbox.run(["dose", "--measurement", records["measurement"], "--plan",
                           records["plan"], "--method", "ldm", "--pet", pet, "--out",
                           sandbox.out / "dose"])
    assert_refused(outcome, "--pet", "geometry", out=sandbox.out)
