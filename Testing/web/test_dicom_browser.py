"""The web page's DICOM browser at the session level (no browser): the patients, studies and
series of the data folder with their identity; series picked as the planning CT, the scout
SPECT, the CBCTs and the post-treatment PET; the CT's identity carried into the measurement,
the plan and every page of the report; series of another patient refused by name (here, on
the command line and in the guided steps); Save writing RT Dose, SEG and RT Structure Set
that pydicom, highdicom and matplotlib read back to the dose map and the masks; a hostile
data folder listed as far as it can be, every skipped file named with its reason.

Expected values come from the files themselves read with pydicom (another reader than the
one under test), from the scene's dose volume and segments, and from hand counts of the
files the tests write."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

slicer = pytest.importorskip("slicer", reason="needs slicer-core (the 'test' extra)")

from tareplanner.web.dicom_browser import DicomBrowser, scan  # noqa: E402
from tareplanner.web.session import Session  # noqa: E402

RIGHT, LEFT = "right hepatic", "left hepatic"


def _first(folder: Path):
    return pydicom.dcmread(sorted(folder.glob("*.dcm"))[0], stop_before_pixels=True)


def _other_patient_spect(src: Path, dst: Path) -> Path:
    """A copy of the MAA SPECT as another patient's series (new Patient ID, name, UIDs)."""
    dst.mkdir(parents=True)
    for f in src.glob("*.dcm"):
        ds = pydicom.dcmread(f)
        ds.PatientID, ds.PatientName = "OTHER-007", "OTHER^PATIENT"
        ds.SeriesInstanceUID = pydicom.uid.generate_uid()
        ds.SeriesDescription = "SPECT of another patient"
        ds.save_as(dst / f.name)
    return dst


@pytest.fixture(scope="module")
def data(phantom_dir, tmp_path_factory):
    """A data folder with the synthetic patient (DICOM and label maps) and a SPECT series of
    another patient."""
    root = tmp_path_factory.mktemp("dicomdata")
    shutil.copytree(phantom_dir / "dicom", root / "patient" / "dicom")
    shutil.copytree(phantom_dir / "labels", root / "patient" / "labels")
    _other_patient_spect(phantom_dir / "dicom" / "spect_maa", root / "other" / "spect")
    return root


def _uid(catalogue, description: str) -> str:
    return next(s.uid for s in catalogue.series.values() if s.description == description)


def test_scan_lists_patients_studies_series_with_identity(data):
    """Bug caught: series grouped wrongly (one patient per file, studies mixed), images
    miscounted (a multi-frame SPECT counted as one), identity fields missing or swapped."""
    catalogue = scan(data)
    ct = _first(data / "patient" / "dicom" / "ct")
    patients = {p["id"]: p for p in catalogue.patients()}
    assert set(patients) == {str(ct.PatientID), "OTHER-007"}
    ours = patients[str(ct.PatientID)]
    assert ours["name"] == "TAREPLANNER, SYNTHETIC"          # SYNTHETIC^TAREPLANNER as PN
    assert ours["sex"] == str(ct.PatientSex)
    [study] = ours["studies"]
    assert study["date"] == f"{ct.StudyDate[:4]}-{ct.StudyDate[4:6]}-{ct.StudyDate[6:]}"
    rows = {r["description"]: r for r in study["series"]}
    # images: slices counted by hand from the folders; the NM SPECT is one multi-frame file
    spect = _first(data / "patient" / "dicom" / "spect_maa")
    assert rows["CT"]["images"] == len(list((data / "patient/dicom/ct").glob("*.dcm")))
    assert rows["SPECT Tc-99m MAA"]["images"] == int(spect.NumberOfFrames)
    assert rows["SPECT Tc-99m MAA"]["files"] == 1
    assert {r["modality"] for r in study["series"]} == {"CT", "NM", "PT"}
    assert catalogue.skipped == [] and catalogue.capped == 0


@pytest.fixture(scope="module")
def planned(data, tmp_path_factory):
    """The synthetic patient picked from the browser, planned with voxel dosimetry,
    verified with its Y-90 PET and saved."""
    session = Session(slicer.vtkMRMLScene(), data)
    browser = DicomBrowser(session)
    browser.scan()
    catalogue = browser.catalogue
    out = {"session": session, "browser": browser, "picks": {}}
    out["picks"]["ct"] = browser.pick(_uid(catalogue, "CT"), "ct")
    out["picks"]["spect"] = browser.pick(_uid(catalogue, "SPECT Tc-99m MAA"), "spect")
    for index, name in enumerate((RIGHT, LEFT)):
        session.add_position()
        session.set_position_field(index, "name", name)
        out["picks"][name] = browser.pick(_uid(catalogue, f"CBCT {name}"), f"cbct:{index}")
    out["picks"]["post"] = browser.pick(_uid(catalogue, "PET Y-90"), "post")
    assert session.run("load folder", folder="patient/labels")[0]
    volume = {v["title"]: v["value"] for v in session.volumes()}
    ok, text = session.run("label maps", liver=volume["patient/labels/liver.nii.gz"],
                           tumours=volume["patient/labels/tumours.nii.gz"])
    assert ok, text
    session.set_value("voxelDosimetry", True)
    for action in ("registration", "lungs", "territories", "measurement", "plan",
                   "verification", "save"):
        ok, text = session.run(action)
        assert ok, (action, text)
    out["folder"] = data / session.saved_folder
    return out


def test_picked_series_fill_the_roles(planned):
    """Bug caught: a pick loading the series but not setting the role (or the wrong
    position's CBCT), or the PET's times left empty although its header holds them."""
    session = planned["session"]
    p = session.p
    assert p.ctVolume.GetName() == "CT CT" and p.spectVolume.GetName() == "NM SPECT Tc-99m MAA"
    assert [pos.cbct.GetName() for pos in p.positions] == [f"CT CBCT {RIGHT}", f"CT CBCT {LEFT}"]
    assert p.postTreatmentKind == "pet" and p.acquisitionTime and p.administrationTime
    assert "from its header" in planned["picks"]["post"]
    used = planned["browser"].used()
    assert sorted(sum(used.values(), [])) == sorted(
        ["planning CT", "scout SPECT", "post-treatment", f"CBCT of {RIGHT}", f"CBCT of {LEFT}"])


def test_identity_of_the_ct_reaches_the_plan_and_every_report_page(planned, data):
    """Bug caught: the measurement made from scene nodes dropping the CT's DICOM identity
    (the report then says 'name not given' on a real patient's plan)."""
    import json

    from pypdf import PdfReader
    ct = _first(data / "patient" / "dicom" / "ct")
    session = planned["session"]
    assert str(ct.PatientID) in planned["browser"].identity_text()
    measurement = json.loads((planned["folder"] / "measurement.json").read_text())
    identity = measurement["inputs"]["ct"]["identity"]
    assert identity["patient_id"] == str(ct.PatientID)
    assert identity["patient_name"] == "TAREPLANNER, SYNTHETIC"
    plan = json.loads((planned["folder"] / "plan.json").read_text())
    assert plan["case"]["patient"]["id"] == str(ct.PatientID)
    assert plan["case"]["patient"]["name"] == "TAREPLANNER, SYNTHETIC"
    pages = PdfReader(planned["folder"] / "report.pdf").pages
    assert len(pages) > 1
    for number, page in enumerate(pages, start=1):
        text = page.extract_text()
        assert str(ct.PatientID) in text and "TAREPLANNER, SYNTHETIC" in text, number
    assert session.outputs()


def _ct_geometry(folder: Path):
    """The CT's slices sorted along their normal, from pydicom: positions, in-plane axes and
    spacing, frame of reference (the test's own reading of the CT)."""
    slices = [pydicom.dcmread(f, stop_before_pixels=True) for f in folder.glob("*.dcm")]
    slices.sort(key=lambda d: float(d.ImagePositionPatient[2]))
    return slices


def test_rt_dose_holds_the_planned_and_delivered_dose(planned, data):
    """Bug caught: Dose Grid Scaling wrong, frames in the wrong order or transposed, a grid
    origin off the CT's, the delivered dose missing, the RT Dose in another frame of
    reference, study or patient than the CT's."""
    from tareplanner.mrml import guided
    scene = planned["session"].scene
    slices = _ct_geometry(data / "patient" / "dicom" / "ct")
    ct = slices[0]
    rng = np.random.default_rng(7)
    for name, tag in (("planned", "plan"), ("delivered", "verification")):
        ds = pydicom.dcmread(planned["folder"] / "dicom" / f"rtdose_{name}.dcm")
        assert ds.Modality == "RTDOSE" and ds.DoseUnits == "GY"
        assert ds.DoseSummationType == ("PLAN" if name == "planned" else "RECORD")
        for keyword in ("FrameOfReferenceUID", "StudyInstanceUID", "PatientID", "PatientName"):
            assert str(ds[keyword].value) == str(ct[keyword].value), keyword
        # the dose grid is the scene's dose volume's (the SPECT's grid, in the CT's frame):
        # its first voxel's centre, RAS in the scene, is LPS in DICOM (x and y negated)
        node = guided.dose_volume_node(scene, tag)
        ras = np.array(node.GetOrigin())
        assert np.allclose([float(v) for v in ds.ImagePositionPatient],
                           [-ras[0], -ras[1], ras[2]], atol=1e-3)
        assert np.allclose([float(v) for v in ds.PixelSpacing], node.GetSpacing()[:2])
        assert np.allclose(np.diff([float(v) for v in ds.GridFrameOffsetVector]),
                           node.GetSpacing()[2])
        dose = np.asarray(slicer.util.arrayFromVolume(node))
        stored = ds.pixel_array.astype(np.float64) * float(ds.DoseGridScaling)
        assert stored.shape == dose.shape == (int(ds.NumberOfFrames), int(ds.Rows),
                                              int(ds.Columns))
        index = tuple(rng.integers(0, n, 2000) for n in dose.shape)
        hot = np.unravel_index(np.argsort(dose, axis=None)[-200:], dose.shape)
        for where in (index, hot):
            # the rounding allowed: one step of the 32-bit scale (peak / (2^32 - 1)), and the
            # scene's float32 copy of the dose (half a float32 step: 2^-24 of the value; the
            # file is written from the dose before it is stored as float32)
            assert np.allclose(stored[where], dose[where], rtol=2.0 ** -24,
                               atol=float(ds.DoseGridScaling))
        assert dose.max() > 10      # a real dose map, not zeros compared with zeros


def _expected_masks(session):
    from tareplanner.mrml import workflow
    structures = workflow._structures(session.p.ctVolume, session.p.segmentation)
    masks = dict(structures.masks)
    masks.update({f"territory {n}": t for n, t in structures.territories.items()})
    return masks


def test_seg_frames_equal_the_masks(planned, data):
    """Bug caught: segments missing (territories, lungs), frames mapped to the wrong CT
    slices, or the SEG in another frame of reference or patient than the CT's."""
    import highdicom as hd
    slices = _ct_geometry(data / "patient" / "dicom" / "ct")
    seg = hd.seg.segread(planned["folder"] / "dicom" / "structures_seg.dcm")
    for keyword in ("FrameOfReferenceUID", "StudyInstanceUID", "PatientID", "PatientName"):
        assert str(seg[keyword].value) == str(slices[0][keyword].value), keyword
    pixels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=[d.SOPInstanceUID for d in slices],
        assert_missing_frames_are_empty=True)
    expected = _expected_masks(planned["session"])
    labels = [seg.get_segment_description(i + 1).segment_label
              for i in range(seg.number_of_segments)]
    assert {"liver", "lungs", "T1", f"territory {RIGHT}", f"territory {LEFT}"} <= set(labels)
    for i, label in enumerate(labels):
        assert np.array_equal(pixels[..., i] > 0, expected[label]), label


def test_rtstruct_contours_lie_on_the_mask_boundaries(planned, data):
    """Bug caught: contours shifted by half a voxel or one slice, x and y swapped, holes
    filled, ROIs missing, the structure set in another frame of reference or patient.
    Checked two ways without the project's reader: every contour vertex, in the CT's voxel
    indices computed here from its headers, lies half way between a voxel inside and a voxel
    outside the mask; and the contours filled at the voxel centres (even-odd rule,
    matplotlib's point-in-polygon) give back the mask voxel for voxel."""
    from matplotlib.path import Path as PolygonPath
    slices = _ct_geometry(data / "patient" / "dicom" / "ct")
    ct = slices[0]
    ds = pydicom.dcmread(planned["folder"] / "dicom" / "structures_rtstruct.dcm")
    assert ds.Modality == "RTSTRUCT"
    for keyword in ("StudyInstanceUID", "PatientID", "PatientName"):
        assert str(ds[keyword].value) == str(ct[keyword].value), keyword
    frame = ds.ReferencedFrameOfReferenceSequence[0]
    assert frame.FrameOfReferenceUID == ct.FrameOfReferenceUID
    referenced = {i.ReferencedSOPInstanceUID for i in
                  frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
                  .ContourImageSequence}
    assert referenced == {d.SOPInstanceUID for d in slices}
    names = {r.ROINumber: r.ROIName for r in ds.StructureSetROISequence}
    assert all(r.ReferencedFrameOfReferenceUID == ct.FrameOfReferenceUID
               for r in ds.StructureSetROISequence)
    expected = _expected_masks(planned["session"])
    assert set(names.values()) == {n for n, m in expected.items() if m.any()}
    z = np.array([float(d.ImagePositionPatient[2]) for d in slices])
    origin = np.array([float(v) for v in ct.ImagePositionPatient])
    row_mm, col_mm = (float(v) for v in ct.PixelSpacing)
    uid_to_k = {d.SOPInstanceUID: k for k, d in enumerate(slices)}
    for roi in ds.ROIContourSequence:
        name = names[roi.ReferencedROINumber]
        mask = expected[name]
        filled = np.zeros(mask.shape, bool)
        for contour in roi.ContourSequence:
            xyz = np.array([float(v) for v in contour.ContourData]).reshape(-1, 3)
            k = uid_to_k[contour.ContourImageSequence[0].ReferencedSOPInstanceUID]
            assert np.allclose(xyz[:, 2], z[k], atol=1e-3)
            col = (xyz[:, 0] - origin[0]) / col_mm
            row = (xyz[:, 1] - origin[1]) / row_mm
            # on a grid edge: one index whole, the other half way
            frac_c, frac_r = np.abs(col - np.round(col)), np.abs(row - np.round(row))
            on_col = (frac_c < 1e-3) & (np.abs(frac_r - 0.5) < 1e-3)
            on_row = (frac_r < 1e-3) & (np.abs(frac_c - 0.5) < 1e-3)
            assert np.all(on_col | on_row), name
            c0, r0 = np.floor(col).astype(int), np.floor(row).astype(int)
            c1, r1 = np.ceil(col).astype(int), np.ceil(row).astype(int)

            def at(r, c):
                inside = (r >= 0) & (r < mask.shape[1]) & (c >= 0) & (c < mask.shape[2])
                out = np.zeros(r.shape, bool)
                out[inside] = mask[k, r[inside], c[inside]]
                return out
            # the two voxel centres either side of each vertex: one in, one out
            assert np.all(at(r0, c0) != at(r1, c1)), name
            rr, cc = np.mgrid[0:mask.shape[1], 0:mask.shape[2]]
            filled[k] ^= PolygonPath(np.column_stack([col, row])).contains_points(
                np.column_stack([cc.ravel(), rr.ravel()])).reshape(rr.shape)
        assert np.array_equal(filled, mask), name


def test_a_series_of_another_patient_is_refused_by_name(planned, data):
    """Bug caught: the SPECT of another patient measured against this patient's CT (the
    plan would be made from someone else's lung shunt). Refused when picked, and by the
    guided step when the node is chosen otherwise (the measurement's button says why)."""
    session, browser = planned["session"], planned["browser"]
    other = _uid(browser.catalogue, "SPECT of another patient")
    with pytest.raises(ValueError, match=r"MAA / Ho-166 scout SPECT: got \"Patient ID "
                                         r"'OTHER-007' \(OTHER, PATIENT\)\"; allowed: a series "
                                         r"of the planning CT's patient, Patient ID 'SYNTH-001'"):
        browser.pick(other, "spect")
    # loaded another way (the folder), chosen as the SPECT: the step refuses it, naming it
    assert session.run("load folder", folder="other/spect")[0]
    volume = {v["title"]: v["value"] for v in session.volumes()}
    keep = session.p.spectVolume
    session.set_node("spectVolume", volume["other/spect"])
    try:
        assert "Patient ID 'OTHER-007'" in session.missing()["measurement"]
        ok, text = session.run("measurement")
        assert not ok and "OTHER-007" in text and "SYNTH-001" in text
    finally:
        session.p.spectVolume = keep


def test_measure_on_the_command_line_refuses_another_patients_spect(data, tmp_path):
    """Bug caught: `tareplanner measure` planning from a SPECT of another patient than the
    CT's (it compared no Patient ID): exit 2, the option named, both IDs given."""
    dicom, labels = data / "patient" / "dicom", data / "patient" / "labels"
    result = subprocess.run(
        [sys.executable, "-m", "tareplanner", "measure", "--ct", str(dicom / "ct"),
         "--spect", str(data / "other" / "spect"), "--liver", str(labels / "liver.nii.gz"),
         "--product", "therasphere", "--method", "partition",
         "--position", f"right={dicom / 'cbct_right_hepatic'}",
         "--goal", "right:tumour_dose_gy=250", "-o", str(tmp_path / "case.json")],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "--spect" in result.stderr and "OTHER-007" in result.stderr \
        and "SYNTH-001" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "case.json").exists()


def test_a_hostile_data_folder_is_listed_as_far_as_it_goes(phantom_dir, tmp_path):
    """Bug caught: a scan that stops (or raises) at the first bad file, follows a link out
    of the data folder, lists a truncated file as a series, or reads without end.

    The folder holds pydicom's own test files (from the installed package), a CT slice cut
    in half, text named .dcm, a link to a file outside and a link to a folder outside; each
    is either listed or named as skipped with its reason. A second folder of 60 files scanned
    with a cap of 50 reads 50 and says 10 were not read."""
    root = tmp_path / "data"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(sorted((phantom_dir / "dicom" / "ct").glob("*.dcm"))[0], outside / "ct.dcm")
    tests = Path(pydicom.__file__).parent / "data" / "test_files"
    shutil.copytree(tests, root / "pydicom")
    good = sorted((phantom_dir / "dicom" / "ct").glob("*.dcm"))
    (root / "bad").mkdir()
    whole = good[1].read_bytes()
    (root / "bad" / "cut.dcm").write_bytes(whole[:len(whole) // 2])
    (root / "bad" / "header_cut.dcm").write_bytes(whole[:200])
    (root / "bad" / "notes.dcm").write_text("not DICOM at all\n" * 20)
    (root / "bad" / "empty.dcm").write_bytes(b"")
    (root / "bad" / "out.dcm").symlink_to(outside / "ct.dcm")
    (root / "bad" / "away").symlink_to(outside)

    catalogue = scan(root)
    skipped = dict(catalogue.skipped)
    header = pydicom.dcmread(good[1], stop_before_pixels=True)
    need = int(header.Rows) * int(header.Columns) * 2          # 16-bit, one frame
    assert skipped["bad/cut.dcm"].startswith(f"cut short: {len(whole) // 2} bytes, its pixel "
                                             f"data alone need {need}")
    # cut inside the header: pydicom reads what is there, without the series UID
    assert skipped["bad/header_cut.dcm"].startswith(("header unreadable",
                                                     "no Series Instance UID"))
    assert skipped["bad/notes.dcm"].startswith("not a DICOM file")
    assert skipped["bad/empty.dcm"].startswith(("not a DICOM file", "header unreadable"))
    assert skipped["bad/out.dcm"] == "a link leading out of the data folder: not read"
    assert skipped["bad/away"] == "a link to a folder: not followed"
    # nothing outside was read: the outside CT's series is not listed
    outside_uid = str(pydicom.dcmread(outside / "ct.dcm", stop_before_pixels=True)
                      .SeriesInstanceUID)
    assert outside_uid not in catalogue.series
    # pydicom's files: the readable ones listed (CT_small.dcm's series among them), the
    # others named (DICOMDIR indexes, files without the DICM prefix)
    ct_small = pydicom.dcmread(tests / "CT_small.dcm", stop_before_pixels=True)
    assert str(ct_small.SeriesInstanceUID) in catalogue.series
    assert skipped["pydicom/dicomdirtests/DICOMDIR"].startswith("a DICOMDIR index")
    assert skipped["pydicom/no_meta.dcm"].startswith("not a DICOM file")
    assert catalogue.patients() and catalogue.summary()
    # picking a listed series that cannot be read names it, never raises anything else
    session = Session(slicer.vtkMRMLScene(), root)
    browser = DicomBrowser(session)
    browser.catalogue = catalogue
    for series in list(catalogue.series.values())[:40]:
        try:
            browser.pick(series.uid, "ct")
        except ValueError as error:
            assert str(error)
    with pytest.raises(ValueError, match="series: got 'nope'"):
        browser.pick("nope", "ct")
    with pytest.raises(ValueError, match="role: got 'lungs'"):
        browser.pick(str(ct_small.SeriesInstanceUID), "lungs")

    many = tmp_path / "many"
    many.mkdir()
    for i in range(60):
        (many / f"f{i:03d}.dcm").write_bytes(b"x" * 10)
    capped = scan(many, max_files=50)
    assert capped.files_read == 50 and capped.capped == 10
    assert "10 more not read" in capped.summary()
