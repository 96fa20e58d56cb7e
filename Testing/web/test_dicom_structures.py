"""A DICOM SEG or RT Structure Set of the data folder loaded from the web page's DICOM
browser as the segments on the planning CT (session level, no browser): the liver, the lungs
and the tumours with their roles; other structures (normal liver, territories, the body)
left out; refused by name with nothing loaded: another patient's series, a file cut short,
no planning CT, a structures series picked as an image or an image as structures.

Expected values: the voxel counts of the synthetic patient's label maps (NIfTI, read with
SimpleITK and counted with numpy), which the SEG and RT Structure Set were written from;
the RT Structure Set's contours run half way between voxel centres, so its masks give the
label maps back voxel for voxel (dicom/rtstruct.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

slicer = pytest.importorskip("slicer", reason="needs slicer-core (the 'test' extra)")
pytest.importorskip("highdicom", reason="needs highdicom (the 'dicom' extra)")
sitk = pytest.importorskip("SimpleITK")

from tareplanner.mrml.segmentations import masks_from_segmentation  # noqa: E402
from tareplanner.mrml.workflow import roles  # noqa: E402
from tareplanner.web.dicom_browser import DicomBrowser, STRUCTURES_SERIES  # noqa: E402
from tareplanner.web.session import Session  # noqa: E402


def _labels(phantom_dir: Path) -> dict[str, np.ndarray]:
    read = {name: sitk.GetArrayFromImage(sitk.ReadImage(str(phantom_dir / "labels" /
                                                            f"{name}.nii.gz")))
            for name in ("liver", "lungs", "tumours", "territories")}
    masks = {"liver": read["liver"] > 0, "lungs": read["lungs"] > 0,
             "territory right": read["territories"] == 1}
    for value in sorted(int(v) for v in np.unique(read["tumours"]) if v):
        masks[f"T{value}"] = read["tumours"] == value
    masks["normal liver"] = masks["liver"] & (read["tumours"] == 0)
    return masks


KINDS = {"liver": "liver", "lungs": "lung", "territory right": "territory",
         "normal liver": "normal"}


def _retag(path: Path, out: Path, description: str, **values) -> Path:
    ds = pydicom.dcmread(path)
    ds.SeriesDescription = description
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    for key, value in values.items():
        setattr(ds, key, value)
    out.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(out)
    return out


@pytest.fixture(scope="module")
def data(phantom_dir, tmp_path_factory):
    """The synthetic patient's DICOM CT, a SEG and an RT Structure Set of its label maps
    (liver, lungs, tumours, normal liver and one territory), and the SEG as another
    patient's."""
    from tareplanner.dicom.rtstruct import write_rtstruct
    from tareplanner.dicom.seg import export_seg
    root = tmp_path_factory.mktemp("structuresdata")
    shutil.copytree(phantom_dir / "dicom" / "ct", root / "patient" / "ct")
    ct_files = sorted((root / "patient" / "ct").glob("*.dcm"))
    masks = _labels(phantom_dir)
    kinds = {name: KINDS.get(name, "tumour") for name in masks}
    scratch = tmp_path_factory.mktemp("written")
    export_seg(masks, kinds, ct_files, scratch / "seg.dcm")
    write_rtstruct(masks, kinds, ct_files, scratch / "rtstruct.dcm")
    _retag(scratch / "seg.dcm", root / "patient" / "seg" / "seg.dcm", "SEG structures")
    _retag(scratch / "rtstruct.dcm", root / "patient" / "rtstruct" / "rs.dcm",
           "RTSTRUCT structures")
    _retag(scratch / "seg.dcm", root / "other" / "seg.dcm", "SEG of another patient",
           PatientID="OTHER-007", PatientName="OTHER^PATIENT")
    return root, masks


def _session(root: Path):
    session = Session(slicer.vtkMRMLScene(), root)
    browser = DicomBrowser(session)
    browser.scan()
    return session, browser


def _uid(browser, description: str) -> str:
    return next(s.uid for s in browser.catalogue.series.values()
                if s.description == description)


def _segmentations(session) -> int:
    return session.scene.GetNodesByClass("vtkMRMLSegmentationNode").GetNumberOfItems()


@pytest.mark.parametrize("description", ["SEG structures", "RTSTRUCT structures"])
def test_structures_load_as_the_segments_of_the_planning_ct(data, description):
    """Bugs caught: a SEG or RT Structure Set listed but not loadable, segments shifted or
    resampled off the CT grid, a territory or the normal liver taken as a tumour, roles
    missing (the later steps find no liver), the series not shown as used."""
    root, masks = data
    session, browser = _session(root)
    row = next(r for p in browser.page()["patients"] for st in p["studies"]
               for r in st["series"] if r["description"] == description)
    assert row["structures"] and not row["image"]
    browser.pick(_uid(browser, "CT"), "ct")
    text = browser.pick(_uid(browser, description), "structures")
    assert "liver (role liver)" in text and "T1 (role tumour)" in text
    segmentation = session.p.segmentation
    tumours = sorted(n for n in masks if n.startswith("T"))
    assert roles(segmentation) == {"liver": "liver", "lungs": "lung",
                                   **{name: "tumour" for name in tumours}}
    loaded = masks_from_segmentation(session.scene, segmentation, session.p.ctVolume)
    for name in ["liver", "lungs", *tumours]:
        assert int(loaded[name].sum()) == int(masks[name].sum()), name
        assert np.array_equal(loaded[name], masks[name]), name
    assert segmentation.GetAttribute(STRUCTURES_SERIES) == _uid(browser, description)
    assert browser.used()[_uid(browser, description)] == ["structures"]


def test_a_seg_of_another_patient_is_refused_and_nothing_loads(data):
    """Bug caught: another patient's segments drawn on this patient's CT (the SEG's frames
    name other images, but a checker that looked at the grid alone would take them)."""
    root, _ = data
    session, browser = _session(root)
    browser.pick(_uid(browser, "CT"), "ct")
    with pytest.raises(ValueError, match=r"structures \(SEG SEG of another patient\).*"
                                         r"OTHER-007"):
        browser.pick(_uid(browser, "SEG of another patient"), "structures")
    assert session.p.segmentation is None and _segmentations(session) == 0


def test_a_file_cut_short_is_refused_and_nothing_loads(data, tmp_path):
    """Bugs caught: a truncated structure set read as far as it goes (structures silently
    missing) or a traceback. The file is cut after the scan listed it (a copy still being
    written): the pick names the file and loads nothing; cut before the scan, it is listed
    as skipped with its reason."""
    root, _ = data
    copy = tmp_path / "data"
    shutil.copytree(root / "patient", copy / "patient")
    session, browser = _session(copy)
    browser.pick(_uid(browser, "CT"), "ct")
    for name in ("rtstruct/rs.dcm", "seg/seg.dcm"):
        path = copy / "patient" / name
        whole = path.read_bytes()
        path.write_bytes(whole[:len(whole) // 3])
    for description in ("RTSTRUCT structures", "SEG structures"):
        with pytest.raises(ValueError, match=r"cut short|header unreadable|a file cut short\?"):
            browser.pick(_uid(browser, description), "structures")
    assert session.p.segmentation is None and _segmentations(session) == 0
    again = DicomBrowser(session)
    again.scan()
    skipped = dict(again.catalogue.skipped)
    assert set(skipped) == {"patient/rtstruct/rs.dcm", "patient/seg/seg.dcm"}, skipped
    assert skipped["patient/seg/seg.dcm"].startswith("cut short")
    assert skipped["patient/rtstruct/rs.dcm"].startswith("incomplete RT Structure Set")


def test_structures_need_the_planning_ct_and_their_own_role(data):
    """Bugs caught: segments loaded with no CT to put them on (a crash), a SEG picked as the
    planning CT, a CT picked as structures."""
    root, _ = data
    session, browser = _session(root)
    with pytest.raises(ValueError, match="no planning CT; allowed: .*choose the planning CT"):
        browser.pick(_uid(browser, "SEG structures"), "structures")
    with pytest.raises(ValueError, match=r"planning CT: got a SEG series .*a SEG or RT "
                                         r"Structure Set loads as structures"):
        browser.pick(_uid(browser, "SEG structures"), "ct")
    with pytest.raises(ValueError, match="structures: got a CT series"):
        browser.pick(_uid(browser, "CT"), "structures")
    assert session.p.segmentation is None and session.p.ctVolume is None
