"""The DICOM browser as a person uses it (headless Chromium on ``tareplanner serve``): the
synthetic patient's DICOM series copied into the data folder, read from the page, each
series picked from the list (planning CT, scout SPECT, the CBCT of each position, the Y-90
PET), the CT's identity shown, the plan made and saved; the Save's folder offers the RT
Dose, the SEG and the RT Structure Set for download, and they carry the CT's patient and
frame of reference (read back with pydicom). A data folder with a cut file, text named .dcm
and a link leading out lists what it can and names what it skipped; the server's log has no
traceback.

Run with ``pytest -m browser Testing/web`` (skipped without the web extra or Chromium).
"""

from __future__ import annotations

import shutil

import pydicom
import pytest

from .test_browser import (MISSING, CHROMIUM, _after, _choose, _click, _fill,  # noqa: F401
                           _output, _report_written, _shot, _state, _updates, _wait_title,
                           browser, page, server, shots)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(bool(MISSING), reason="needs the 'web' extra"),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium"),
]

RIGHT, LEFT = "right hepatic", "left hepatic"


def _scan(page) -> str:
    before = _updates(page)
    page.locator("[data-dicom-scan]").click()
    _after(page, before)
    return page.locator("[data-dicom-summary]").inner_text()


def _use_as(page, description: str, role: str) -> None:
    _choose(page, f'[data-use-as="{description}"]', role)
    page.wait_for_function("() => !document.querySelector('[data-busy]') || "
                           "getComputedStyle(document.querySelector('[data-busy]')).display "
                           "=== 'none'", timeout=120_000)


def test_series_picked_from_the_browser_are_planned_and_saved_as_dicom(page, server, shots,
                                                                       phantom_dir, tmp_path):
    """Bug caught: picks that do not reach the roles, an identity that stays off the page,
    a Save without the DICOM exports (or with exports another system would file under
    another patient or frame of reference)."""
    data = server["data"]
    shutil.copytree(phantom_dir / "dicom", data / "patient" / "dicom")
    shutil.copytree(phantom_dir / "labels", data / "patient" / "labels")
    ct = pydicom.dcmread(sorted((data / "patient/dicom/ct").glob("*.dcm"))[0],
                         stop_before_pixels=True)
    page.locator('[data-panel="data"]').scroll_into_view_if_needed()
    assert _scan(page).startswith("6 series of 1 patient(s)")
    patient = page.locator(f'[data-dicom-patient="{ct.PatientID}"]')
    assert "TAREPLANNER, SYNTHETIC" in patient.inner_text()
    assert "90 images" in page.locator('[data-dicom-series="CT"]').inner_text()

    for index, name in enumerate((RIGHT, LEFT)):
        before = _updates(page)
        page.locator("[data-add-position]").click()
        _after(page, before)
        _fill(page, f'[data-position-name="{index}"]', name)
    _use_as(page, "CT", "Planning CT")
    _use_as(page, "SPECT Tc-99m MAA", "Scout SPECT (MAA / Ho-166)")
    _use_as(page, f"CBCT {RIGHT}", f"CBCT of {RIGHT}")
    _use_as(page, f"CBCT {LEFT}", f"CBCT of {LEFT}")
    _use_as(page, "PET Y-90", "Post-treatment PET or SPECT")
    assert "from its header" in _output(page, "data")
    identity = page.locator("[data-identity]").inner_text()
    assert f"ID {ct.PatientID}" in identity and "TAREPLANNER, SYNTHETIC" in identity
    assert str(ct.PatientID) in page.locator("[data-identity-bar]").inner_text()
    assert "planning CT" in page.locator('[data-dicom-series="CT"] [data-used]').inner_text()
    _shot(page, shots, "dicom-browser", "data")

    _choose(page, '[data-field="folder"]', "patient/labels")
    _click(page, "load folder")
    _choose(page, '.v-select:has-text("liver label map")', "patient/labels/liver.nii.gz")
    _choose(page, '.v-select:has-text("tumour label map")', "patient/labels/tumours.nii.gz")
    _click(page, "label maps")
    for action, panel in (("registration", "registration"), ("lungs", None),
                          ("territories", "segmentation"), ("measurement", "measurement")):
        _click(page, action)
        if panel:
            _wait_title(page, panel, "[done]")
    for index in range(2):
        _choose(page, f'[data-goal-kind="{index}"]', "Tumour dose (Gy)")
        _fill(page, f'[data-plan-goal-value="{index}"]', "200")
    _click(page, "plan")
    _wait_title(page, "plan", "[done]")
    _click(page, "verification")
    _wait_title(page, "verification", "[done]")
    _click(page, "save")
    _wait_title(page, "save", "[done]")
    saved = page.locator('[data-file$="/plan.json"]').first.get_attribute("data-file")
    folder = saved.rsplit("/", 1)[0]
    for name in ("rtdose_planned.dcm", "rtdose_delivered.dcm", "structures_seg.dcm",
                 "structures_rtstruct.dcm"):
        assert page.locator(f'[data-file="{folder}/dicom/{name}"]').count() >= 1, name
    link = page.locator(f'[data-file="{folder}/dicom/structures_rtstruct.dcm"]').first
    link.scroll_into_view_if_needed()
    with page.expect_download() as download:
        link.click()
    path = tmp_path / "rtstruct.dcm"
    download.value.save_as(path)
    rtstruct = pydicom.dcmread(path)
    assert rtstruct.PatientID == ct.PatientID and rtstruct.StudyInstanceUID == ct.StudyInstanceUID
    assert rtstruct.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID == \
        ct.FrameOfReferenceUID
    dose = pydicom.dcmread(data / folder / "dicom" / "rtdose_planned.dcm",
                           stop_before_pixels=True)
    assert dose.FrameOfReferenceUID == ct.FrameOfReferenceUID and dose.PatientID == ct.PatientID
    _report_written(page, folder)
    from pypdf import PdfReader
    for page_pdf in PdfReader(data / folder / "report.pdf").pages:
        assert str(ct.PatientID) in page_pdf.extract_text()
    _shot(page, shots, "dicom-save", "save")
    assert not page.errors, page.errors


def test_a_hostile_folder_lists_what_it_can(page, server, tmp_path):
    """Bug caught: one bad file stopping the scan (or a server traceback), a link leading out
    of the data folder read."""
    data = server["data"]
    bad = data / "bad"
    bad.mkdir()
    (bad / "notes.dcm").write_text("not DICOM\n")
    whole = sorted((data / "patient/dicom/ct").glob("*.dcm"))[0].read_bytes()
    (bad / "cut.dcm").write_bytes(whole[:len(whole) // 2])
    outside = tmp_path / "outside.dcm"
    outside.write_bytes(whole)
    (bad / "out.dcm").symlink_to(outside)
    summary = _scan(page)
    assert summary.startswith("6 series of 1 patient(s)") and "3 file(s) skipped" in summary
    panel = page.locator("[data-dicom-skipped]")
    panel.locator(".v-expansion-panel-title").click()
    text = panel.inner_text()
    assert "bad/notes.dcm: not a DICOM file" in text
    assert "bad/cut.dcm: cut short" in text
    assert "bad/out.dcm: a link leading out of the data folder: not read" in text


def _copy_as(source, target, description: str, **values) -> None:
    ds = pydicom.dcmread(source)
    ds.SeriesDescription = description
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    for key, value in values.items():
        setattr(ds, key, value)
    target.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(target)


def test_structures_from_the_data_folder_load_onto_the_ct(page, server):
    """Bugs caught: a SEG or RT Structure Set listed as "not an image" with no way to load
    it; another patient's SEG drawn on this CT, or its refusal shown nowhere near the series
    picked. The SEG and the RT Structure Set the Save above wrote, copied into the data
    folder as series of their own: each loads as the liver, the lungs and the tumours
    T1-T3 with their roles; the same SEG as another patient's is refused beside its row and
    the segments stay those loaded before."""
    data = server["data"]
    [saved] = sorted(data.glob("output/*/dicom"))[-1:]
    _copy_as(saved / "structures_seg.dcm", data / "structures" / "seg.dcm", "SEG planned")
    _copy_as(saved / "structures_rtstruct.dcm", data / "structures" / "rs.dcm",
             "RTSTRUCT planned")
    _copy_as(saved / "structures_seg.dcm", data / "other" / "seg.dcm",
             "SEG of another patient", PatientID="OTHER-007", PatientName="OTHER^PATIENT")
    page.locator('[data-panel="data"]').scroll_into_view_if_needed()
    _scan(page)
    expected = {"liver": "liver", "lungs": "lung", "T1": "tumour", "T2": "tumour",
                "T3": "tumour"}
    for description in ("SEG planned", "RTSTRUCT planned"):
        _use_as(page, description, "Structures on the planning CT (liver, lungs, tumours)")
        assert "liver (role liver)" in _output(page, "data")
        segments = {s["name"]: s["role"] for s in _state(page, "segments")}
        assert segments == expected, segments
        assert "structures" in page.locator(
            f'[data-dicom-series="{description}"] [data-used]').inner_text()
    _use_as(page, "SEG of another patient",
            "Structures on the planning CT (liver, lungs, tumours)")
    beside = page.locator('[data-dicom-error="SEG of another patient"]')
    beside.wait_for(timeout=30_000)
    assert "OTHER-007" in beside.inner_text() and "structures" in beside.inner_text()
    assert "OTHER-007" in page.locator('[data-error="data"]').inner_text()
    segments = {s["name"]: s["role"] for s in _state(page, "segments")}
    assert segments == expected, segments
    assert not page.errors, page.errors


def test_no_traceback_in_the_server_log(server):
    """(Last.) The picks, the Save and the hostile folder left no traceback in the log."""
    text = server["log"].read_text()
    assert "Traceback" not in text, text[text.find("Traceback"):][:3000]
