"""The web page's model (tareplanner.web.session) headless on slicer-core: each button runs
its guided function and keeps its text; bad input comes back as the message (field, value,
what is allowed), never as an exception; the positions list grows and shrinks; panel titles
and button states come from the guided workflow."""

import pytest

slicer = pytest.importorskip("slicer", reason="needs slicer-core (the 'test' extra)")

from tareplanner.mrml import guided  # noqa: E402
from tareplanner.web.session import ACTION_PANEL, Session  # noqa: E402


@pytest.fixture
def session(tmp_path):
    return Session(slicer.vtkMRMLScene(), tmp_path)


def test_every_guided_action_has_a_button(session):
    assert set(guided._ACTION_STEPS) == set(guided.ACTIONS) <= set(ACTION_PANEL)
    assert set(ACTION_PANEL.values()) <= {key for key, _, _ in guided.PANELS}
    assert set(session.panel_titles()) == {key for key, _, _ in guided.PANELS}


def test_buttons_say_what_they_need_before_loading(session):
    missing = session.missing()
    assert missing["load"] == ""
    assert "planning CT" in missing["registration"]
    ok, text = session.run("registration")
    assert not ok and "needs" in text and "planning CT" in text
    assert session.messages["registration"] == (text, True)


def test_bad_values_name_the_field(session):
    with pytest.raises(ValueError, match=r"Site tolerance \(%\): got 'abc'; allowed: a number"):
        session.set_value("siteTolerancePercent", "abc")
    with pytest.raises(ValueError, match="allowed"):
        session.set_value("stepLog", "")
    with pytest.raises(ValueError, match="ctVolume"):
        session.set_node("ctVolume", "vtkMRMLScalarVolumeNode999")


def test_folder_outside_the_data_folder_is_refused(session):
    ok, text = session.run("load folder", folder="../")
    assert not ok and text.startswith("folder: got '../'")


def test_positions_list_and_titles_after_loading(session):
    ok, text = session.run("load")
    assert ok and "synthetic patient loaded" in text
    assert [row["name"] for row in session.position_rows()] == ["right hepatic", "left hepatic"]
    session.add_position()
    session.set_position_field(2, "name", "segment 4")
    session.set_position_field(2, "goalValue", "120")
    assert session.position_rows()[2]["goalValue"] == 120.0
    session.remove_position(2)
    assert len(session.position_rows()) == 2
    assert session.panel_titles()["data"] == "1. Data  [done]"
    assert session.missing()["registration"] == ""
    assert "registered CBCT" in session.missing()["territories"]


def test_dicom_folder_to_plan(phantom_dir):
    """A patient from a folder of the data folder: its DICOM series and label maps loaded,
    the volumes chosen, the structures from the label maps, then the steps to the plan."""
    session = Session(slicer.vtkMRMLScene(), phantom_dir.parent)
    ok, text = session.run("load folder", folder="patient/dicom")
    assert ok and "patient/dicom/ct (CT, HU)" in text and "spect_maa (NM, counts)" in text
    assert session.run("load folder", folder="patient/labels")[0]
    volume = {v["title"]: v["value"] for v in session.volumes()}
    ok, text = session.run("label maps", liver=volume["patient/labels/liver.nii.gz"],
                           tumours=volume["patient/labels/tumours.nii.gz"])
    assert not ok and "planning CT" in text
    session.set_node("ctVolume", volume["patient/dicom/ct"])
    session.set_node("spectVolume", volume["patient/dicom/spect_maa"])
    ok, text = session.run("label maps", liver=volume["patient/labels/liver.nii.gz"],
                           tumours=volume["patient/labels/tumours.nii.gz"])
    assert ok and "T1, T2, T3 (role tumour)" in text
    for index, name in enumerate(("right hepatic", "left hepatic")):
        session.add_position()
        session.set_position_field(index, "name", name)
        session.set_position_field(index, "cbct",
                                   volume[f"patient/dicom/cbct_{name.replace(' ', '_')}"])
    session.set_value("voxelDosimetry", False)
    for action in ("registration", "lungs", "territories", "measurement", "plan"):
        ok, text = session.run(action)
        assert ok, (action, text)
    assert [row["position"] for row in session.plan_rows()] == ["right hepatic", "left hepatic"]
    assert set(session.panel_titles().values()) >= {"5. Plan  [done]", "4. LSF and TNR  [done]"}


def test_site_limits_file_is_chosen_inside_the_data_folder(session, tmp_path):
    (tmp_path / "site.json").write_text("{}")
    (tmp_path / "output").mkdir()
    (tmp_path / "output" / "plan.json").write_text("{}")
    assert session.json_files() == ["site.json"]
    session.set_site_limits("site.json")
    assert session.p.siteLimitsFile == str((tmp_path / "site.json").resolve())
    assert session.site_limits_name() == "site.json"
    with pytest.raises(ValueError, match="site limits: got '../x.json'"):
        session.set_site_limits("../x.json")
    session.set_site_limits(None)
    assert session.p.siteLimitsFile == ""


def test_segmental_synthetic_patient(session):
    ok, text = session.run("load", positions=5)
    assert ok, text
    assert len(session.position_rows()) == 5
    assert all(row["cbct"] for row in session.position_rows())
    nodes = session.scene.GetNumberOfNodes()
    assert session.run("load")[0]          # a new patient replaces the earlier one
    assert len(session.position_rows()) == 2
    assert session.scene.GetNumberOfNodes() < nodes
    ok, text = session.run("load", positions=9)
    assert not ok and "positions: got 9; allowed: 1 to 8" in text


def test_refused_and_empty_fields_block_the_actions_that_read_them(session):
    """Bugs: a refused residual (-0.1) left the administration running with 0 GBq; an empty
    field became 0. The refused text stays with its message, the parameter keeps its value,
    and the action names the field until it is corrected."""
    assert session.run("load")[0]
    with pytest.raises(ValueError, match=r"Residual activity \(GBq\) of position 1 "
                                         r"\(right hepatic\): got '-0.1'"):
        session.set_position_field(0, "residualGbq", "-0.1")
    residual = session.p.positions[0].residualGbq
    assert residual != residual                       # not recorded: still missing (NaN)
    assert session.field_texts()["p:0:residualGbq"] == "-0.1"     # still shown
    assert "Residual activity (GBq) of position 1" in session.missing()["administration"]
    ok, text = session.run("administration")
    assert not ok and "first correct Residual activity" in text
    session.set_position_field(0, "residualGbq", "0.1")
    assert session.field_errors() == {} and session.p.positions[0].residualGbq == 0.1
    session.set_text("f:lungBaseMarginMm", "")
    assert session.field_texts()["f:lungBaseMarginMm"] == ""
    assert "Lung-base margin (mm) is empty" in session.missing()["measurement"]
    with pytest.raises(ValueError, match="field: got"):
        session.set_text("f:stepLog", "x")
    with pytest.raises(ValueError, match="position: got"):
        session.set_position_field(7, "vialGbq", "1")


def test_every_save_has_its_own_folder_and_the_page_offers_the_latest(session, tmp_path):
    """Bugs: the second Save failed (OutputExistsError); the file list stayed on an earlier
    plan. Two Saves: two folders; the page lists the second only, and nothing once the
    plan changes or a new patient starts."""
    assert session.run("load")[0]
    session.set_value("voxelDosimetry", False)
    for action in ("registration", "lungs", "territories", "measurement", "plan", "save"):
        ok, text = session.run(action)
        assert ok, (action, text)
    first = session.saved_folder
    ok, text = session.run("save")
    assert ok, text
    second = session.saved_folder
    assert first != second and (tmp_path / first / "plan.json").is_file()
    assert (tmp_path / second / "plan.json").is_file()
    assert session.outputs() and all(n.startswith(second + "/") for n in session.outputs())
    assert session.report_name() == f"{second}/report.pdf"
    session.set_position_field(1, "goalValue", "41")
    assert session.outputs() == [] and session.report_name() is None
    assert "plan is outdated" in session.missing()["directive"]
    session.new_patient()
    assert session.outputs() == [] and session.saved_folder is None


def test_treatment_day_readings_start_empty_never_zero(session):
    """Bug caught: the page showing 0 in the vial and residual fields of a new patient (a
    value nobody typed, which the administration then recorded: residual 0.000 GBq, "No
    medical event"). Each reading field is empty, and the administration's tooltip names
    every empty one."""
    assert session.run("load")[0]
    texts = session.field_texts()
    for index in range(2):
        for name in ("vialGbq", "vialTime", "residualGbq", "residualTime", "administeredAt"):
            assert texts[f"p:{index}:{name}"] == "", name
    blocked = session.missing()["administration"]
    for label in ("Vial activity (GBq) of position 1 (right hepatic) is empty",
                  "Residual activity (GBq) of position 1 (right hepatic) is empty",
                  "Vial activity (GBq) of position 2 (left hepatic) is empty",
                  "Residual activity (GBq) of position 2 (left hepatic) is empty"):
        assert label in blocked
    # a position added on the page starts empty too
    session.add_position()
    assert session.field_texts()["p:2:vialGbq"] == session.field_texts()["p:2:residualGbq"] == ""


def _camera_json(nuclide: str, fwhm_mm: float) -> str:
    """A minimal tareplanner.camera/1 file (docs/schemas/camera-1.schema.json): a SPECT
    Gaussian of ``fwhm_mm``, written by hand."""
    import json
    return json.dumps({"schema": "tareplanner.camera/1", "modality": "SPECT",
                       "nuclide": nuclide, "reconstruction": "OSEM 4i10s", "name": "room 2",
                       "date": "2026-12-01T09:00:00+01:00",
                       "psf": {"model": "gaussian", "fwhm_mm": fwhm_mm, "fwhm_sd_mm": 0.5,
                               "components": [{"weight": 1.0, "fwhm_mm": fwhm_mm}]}})


def test_camera_file_in_the_web_session(phantom_dir, tmp_path):
    """Bug caught: the page's camera file chosen outside the data folder, a camera file of
    another nuclide than the SPECT's (its DICOM header: Tc-99m) used instead of refused by
    name, or the panel still saying ASSUMED when the camera file corrected the values.
    Truth: the synthetic patient's SPECT is a 14 mm Gaussian, its TNRs 3.2, 2.4, 1.8
    (truth.json), so a 14 mm camera file gives them within 5 %."""
    import json
    import shutil

    import numpy as np
    import SimpleITK as sitk

    from tareplanner.mrml.workflow import add_mask_segment
    data = tmp_path / "data"
    shutil.copytree(phantom_dir, data / "patient")
    (data / "cameras").mkdir()
    (data / "cameras" / "ho166.json").write_text(_camera_json("Ho-166", 14.0))
    (data / "cameras" / "tc99m.json").write_text(_camera_json("Tc-99m", 14.0))
    (tmp_path / "outside.json").write_text(_camera_json("Tc-99m", 14.0))
    session = Session(slicer.vtkMRMLScene(), data)
    assert session.run("load folder", folder="patient/dicom")[0]
    assert session.run("load folder", folder="patient/labels")[0]
    volume = {v["title"]: v["value"] for v in session.volumes()}
    session.set_node("ctVolume", volume["patient/dicom/ct"])
    session.set_node("spectVolume", volume["patient/dicom/spect_maa"])
    assert session.run("label maps", liver=volume["patient/labels/liver.nii.gz"],
                       tumours=volume["patient/labels/tumours.nii.gz"])[0]
    territories = sitk.GetArrayFromImage(sitk.ReadImage(
        str(data / "patient" / "labels" / "territories.nii.gz")))
    truth = json.loads((data / "patient" / "truth.json").read_text())
    for name, value in truth["territory_labels"].items():
        add_mask_segment(session.p.segmentation, session.p.ctVolume, f"territory {name}",
                         territories == value, f"territory:{name}")
    assert session.run("lungs")[0]
    # a file outside the data folder is refused, naming the field
    with pytest.raises(ValueError, match="SPECT camera file: got '../outside.json'"):
        session.set_camera_file("spectCameraFile", "../outside.json")
    with pytest.raises(ValueError, match="camera file: got 'stepLog'"):
        session.set_camera_file("stepLog", "cameras/tc99m.json")
    assert "cameras/ho166.json" in session.json_files()
    # another nuclide: refused by name, in the measurement panel's message
    session.set_camera_file("spectCameraFile", "cameras/ho166.json")
    ok, text = session.run("measurement")
    assert not ok and "SPECT camera file" in text
    assert ":nuclide: got 'Ho-166'; allowed: Tc-99m" in text
    assert session.messages["measurement"] == (text, True)
    # the site's camera: used, named in the panel instead of ASSUMED
    session.set_camera_file("spectCameraFile", "cameras/tc99m.json")
    assert session.camera_file_names() == {"spectCameraFile": "cameras/tc99m.json",
                                           "postTreatmentCameraFile": None}
    ok, text = session.run("measurement")
    assert ok, text
    assert "ASSUMED" not in text and "tc99m.json (room 2)" in text and "OSEM 4i10s" in text
    m = json.loads(session.p.measurementRecord.GetText())
    tnrs = {t["name"]: t["tnr"] for q in m["positions"] for t in q["tumours"]}
    for name, tnr in tnrs.items():
        assert tnr == pytest.approx(truth["tnr_maa"][name], rel=0.05), name
    assert not m["partial_volume_correction"]["assumed"]
    assert np.isclose(m["lung_shunt"]["lung_shunt_fraction"], truth["lung_shunt_fraction"],
                      rtol=0.05)
    session.set_camera_file("spectCameraFile", None)
    assert session.p.spectCameraFile == ""
