"""Camera files in the guided workflow (the Slicer module's and the web page's steps),
headless on slicer-core.

A site gives the module the camera file ``tareplanner calibrate`` wrote for its scout SPECT
and for its post-treatment PET; the measure and verification steps must use them exactly as
``measure --camera`` and ``dose --camera`` do, refuse the same files, name the camera in the
panel text instead of ASSUMED, and name it by hash among the saved records' parents.

Expected values come from outside the code under test: the synthetic patient's truth.json
(TNRs and LSF it was made with), the bytes of the camera file (SHA-256 by hashlib), and, as a
consistency check only, the command line run on the same files.
"""

from __future__ import annotations

import hashlib
import json

import pytest
import SimpleITK as sitk
import slicer

from tareplanner.cli.main import main
from tareplanner.errors import FieldValueError
from tareplanner.imaging.readers import read_image
from tareplanner.mrml import attributes, guided
from tareplanner.mrml.results import record_from_text_node
from tareplanner.mrml.segmentations import segmentation_from_labels
from tareplanner.mrml.volumes import volume_node_from_image
from tareplanner.mrml.workflow import add_lungs_from_ct, add_mask_segment, set_role

FWHM_MM = "10"   # not the synthetic patient's default 14 mm: the assumed value is wrong here


def _calibrate(iec, out, nuclide="Tc-99m", *extra):
    assert main(["calibrate", "--ct", str(iec / "ct.nii.gz"), "--image",
                 str(iec / "image.nii.gz"), "--nuclide", nuclide, "--sphere-kbq-ml", "40",
                 "--background-kbq-ml", "5", "--reconstruction", "OSEM 4i10s", "--name",
                 "room 2", "-o", str(out), *extra]) == 0
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A patient whose SPECT has a 10 mm Gaussian resolution and a 9 mm PET; the SPECT camera
    calibrated on the IEC phantom imaged at 10 mm, the PET camera on it imaged at 9 mm."""
    root = tmp_path_factory.mktemp("camera")
    patient, iec, iec_pet = root / "patient", root / "iec", root / "iec_pet"
    assert main(["phantom", str(patient), "--size", "small", "--fwhm-mm", FWHM_MM]) == 0
    assert main(["phantom", str(iec), "--iec", "--fwhm-mm", FWHM_MM]) == 0
    assert main(["phantom", str(iec_pet), "--iec", "--modality", "PET", "--nuclide", "Y-90",
                 "--fwhm-mm", "9"]) == 0
    return {"root": root, "patient": patient,
            "spect_camera": _calibrate(iec, root / "camera-spect.json"),
            "pet_camera": _calibrate(iec_pet, root / "camera-pet.json", "Y-90"),
            "truth": json.loads((patient / "truth.json").read_text())}


def _node(scene, path, name):
    image = read_image(path)
    node = volume_node_from_image(scene, image.image, name)
    node.SetAttribute(attributes.UNITS, image.units)
    if image.meta.get("radionuclide"):
        node.SetAttribute(attributes.RADIONUCLIDE, image.meta["radionuclide"])
    return node


def _panel(files):
    """The scene and the panel as a site fills them from the patient's files (DICOM SPECT
    and PET, whose headers name the radionuclide; the truth label maps as segments)."""
    d, truth = files["patient"], files["truth"]
    scene = slicer.vtkMRMLScene()
    p = guided.Parameters()
    p.ctVolume = _node(scene, d / "nifti" / "ct.nii.gz", "CT")
    p.spectVolume = _node(scene, d / "dicom" / "spect_maa", "SPECT")
    p.postTreatmentVolume = _node(scene, d / "dicom" / "pet_y90", "PET")
    assert p.spectVolume.GetAttribute(attributes.RADIONUCLIDE) == "Tc-99m"
    tumours = sitk.ReadImage(str(d / "labels" / "tumours.nii.gz"))
    names = {v: n for n, v in truth["tumour_labels"].items()}
    p.segmentation = segmentation_from_labels(scene, tumours, names, p.ctVolume, "structures")
    for name in names.values():
        set_role(p.segmentation, name, "tumour")
    liver = sitk.GetArrayFromImage(sitk.ReadImage(str(d / "labels" / "liver.nii.gz"))) > 0
    add_mask_segment(p.segmentation, p.ctVolume, "liver", liver, "liver")
    territories = sitk.GetArrayFromImage(sitk.ReadImage(str(d / "labels" /
                                                            "territories.nii.gz")))
    for name, value in truth["territory_labels"].items():
        add_mask_segment(p.segmentation, p.ctVolume, f"territory {name}", territories == value,
                         f"territory:{name}")
    add_lungs_from_ct(p.ctVolume, p.segmentation)
    guided.set_positions(p, [guided.new_position(p, name=name)
                             for name in truth["territory_labels"]])
    p.postTreatmentKind = "pet"
    p.administrationTime = truth["y90_pet"]["administration_time"]
    p.acquisitionTime = truth["y90_pet"]["acquisition_start"]
    return scene, p


@pytest.fixture(scope="module")
def measured(files):
    scene, p = _panel(files)
    p.spectCameraFile = str(files["spect_camera"])
    text = guided.measure(scene, p)
    return scene, p, text


def _tnrs(measurement):
    return {t["name"]: t["tnr"] for q in measurement["positions"] for t in q["tumours"]}


def test_measure_with_the_camera_file_is_calibrated(files, measured, tmp_path):
    """Bug caught: the panel's camera file not reaching the correction (the assumed 14 mm
    used on a 10 mm SPECT: T3 about +11 %), its PSF used otherwise than the command line
    uses it, or ASSUMED shown for a calibrated resolution. Truth: truth.json's TNRs and LSF
    (within 5 %); the command line on the same files as a consistency check."""
    scene, p, text = measured
    m = record_from_text_node(p.measurementRecord)
    truth = files["truth"]
    for name, tnr in _tnrs(m).items():
        assert tnr == pytest.approx(truth["tnr_maa"][name], rel=0.05), name
    assert m["lung_shunt"]["lung_shunt_fraction"] == pytest.approx(
        truth["lung_shunt_fraction"], rel=0.05)
    pvc = m["partial_volume_correction"]
    sha = hashlib.sha256(files["spect_camera"].read_bytes()).hexdigest()
    assert not pvc["assumed"] and pvc["resolution"]["camera"]["sha256"] == sha
    assert m["parents"]["camera"] == {"schema": "tareplanner.camera/1", "sha256": sha,
                                      "file": "camera-spect.json"}
    assert "spect-resolution-assumed" not in [w["code"] for w in m["warnings"]]
    # the panel names the camera: file, fitted FWHM with its uncertainty, reconstruction, date
    camera = json.loads(files["spect_camera"].read_text())
    assert "ASSUMED" not in text
    assert "camera-spect.json (room 2)" in text and "OSEM 4i10s" in text
    assert f"{camera['psf']['fwhm_mm']:.2f} +/- {camera['psf']['fwhm_sd_mm']:.2f} mm" in text
    assert camera["date"] in text
    # consistency: the command line on the same files gives the same corrected values
    out = tmp_path / "cli"
    out.mkdir()
    d = files["patient"]
    assert main(["measure", "--ct", str(d / "nifti" / "ct.nii.gz"), "--spect",
                 str(d / "dicom" / "spect_maa"), "--liver", str(d / "labels" / "liver.nii.gz"),
                 "--tumours", str(d / "labels" / "tumours.nii.gz"), "--tumour-names",
                 "T1,T2,T3", "--territories", str(d / "labels" / "territories.nii.gz"),
                 "--territory-names", "right hepatic,left hepatic", "--goal",
                 "tumour_dose_gy=250", "--product", "therasphere", "--camera",
                 str(files["spect_camera"]), "-o", str(out / "case.json"),
                 "--measurement-output", str(out / "m.json"), "--quiet"]) == 0
    cli = json.loads((out / "m.json").read_text())
    for name, tnr in _tnrs(cli).items():
        assert _tnrs(m)[name] == pytest.approx(tnr, rel=0.01), name
    assert m["lung_shunt"]["lung_shunt_fraction"] == pytest.approx(
        cli["lung_shunt"]["lung_shunt_fraction"], rel=0.01)


def test_measure_without_a_camera_file_says_assumed(files):
    """Bug caught: the default resolution used silently by the module (no ASSUMED in its
    text), or the camera file's step log not marking the measurement outdated."""
    scene, p = _panel(files)
    text = guided.measure(scene, p)
    assert "ASSUMED 14 mm FWHM" in text
    p.spectCameraFile = str(files["spect_camera"])
    state = guided.statuses(p)["measurement"]
    assert state.state == "outdated" and guided.SPECT_CAMERA_FIELD in state.reason


@pytest.mark.parametrize("change, message", [
    ({"psf": {"fwhm_mm": float("nan")}}, "psf.fwhm_mm: got nan"),
    ({"psf": {"fwhm_mm": -3.0}}, "psf.fwhm_mm: got -3.0"),
    ({"nuclide": "Ho-166"}, ":nuclide: got 'Ho-166'; allowed: Tc-99m"),
    ({"modality": "PET"}, ":modality: got 'PET'; allowed: SPECT"),
])
def test_measure_refuses_a_bad_camera_file_by_name(files, measured, tmp_path, change,
                                                   message):
    """Bug caught: the module using a camera file the command line refuses (NaN or negative
    FWHM, another nuclide than the SPECT's Tc-99m, a PET's file), or a refusal that does not
    name the panel field; the earlier measurement must stay."""
    scene, p, _ = measured
    camera = json.loads(files["spect_camera"].read_text())
    for key, value in change.items():
        if isinstance(value, dict):
            camera[key].update(value)
        else:
            camera[key] = value
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(camera))
    before = p.measurementRecord.GetText()
    saved = p.spectCameraFile
    p.spectCameraFile = str(bad)
    try:
        with pytest.raises(FieldValueError) as error:
            guided.measure(scene, p)
    finally:
        p.spectCameraFile = saved
    assert message in str(error.value) and guided.SPECT_CAMERA_FIELD in str(error.value)
    assert p.measurementRecord.GetText() == before


def test_verification_with_the_pet_camera_file(files, measured, tmp_path):
    """Bug caught: the module's delivered mean doses left uncorrected (or corrected with the
    assumed default) when the PET's own camera file is given, a SPECT's or another
    nuclide's camera file accepted for a Y-90 PET, or the camera file missing from the saved
    dose record's parents (by the hash of its bytes, as dose --camera writes it)."""
    scene, p, _ = measured
    p.product, p.method, p.voxelDosimetry = "therasphere", "partition", True
    guided.update_position(p, 0, goalKind="tumour_dose_gy", goalValue=250.0)
    guided.update_position(p, 1, goalKind="tumour_dose_gy", goalValue=250.0)
    guided.plan(scene, p)
    # a SPECT camera file (Tc-99m) for the Y-90 PET: refused, naming the field and modality
    p.postTreatmentCameraFile = str(files["spect_camera"])
    with pytest.raises(FieldValueError, match=r"post-treatment camera file .*:modality: got "
                                              r"'SPECT'; allowed: PET"):
        guided.verify(scene, p)
    pet = json.loads(files["pet_camera"].read_text())
    pet["nuclide"] = "Ho-166"
    other = tmp_path / "ho166-pet.json"
    other.write_text(json.dumps(pet))
    p.postTreatmentCameraFile = str(other)
    with pytest.raises(FieldValueError, match=r":nuclide: got 'Ho-166'; allowed: Y-90"):
        guided.verify(scene, p)
    assert p.deliveredDoseReport is None
    # without a camera file: assumed, said so
    p.postTreatmentCameraFile = ""
    text = guided.verify(scene, p)
    assert "ASSUMED 9 mm FWHM" in text
    # with the PET's camera file: calibrated, named, a parent of the saved dose record
    p.postTreatmentCameraFile = str(files["pet_camera"])
    text = guided.verify(scene, p)
    assert "ASSUMED" not in text.split("Partial-volume correction")[1].split("\n")[0]
    assert "camera-pet.json (room 2): PET Y-90" in text
    post = record_from_text_node(p.deliveredDoseReport)["post_treatment"]
    pvc = post["partial_volume_correction"]
    assert pvc["applied"] and not pvc["assumed"]
    report = record_from_text_node(p.deliveredDoseReport)["report"]
    assert report["T1"]["mean_gy"] > report["T1"]["mean_gy_uncorrected"]  # spill-out undone
    p.outputFolder = str(tmp_path / "saved")
    guided.save(scene, p)
    dose = json.loads((tmp_path / "saved" / "dose" / "dose.json").read_text())
    assert dose["parents"]["camera"] == {
        "schema": "tareplanner.camera/1", "file": "camera-pet.json",
        "sha256": hashlib.sha256(files["pet_camera"].read_bytes()).hexdigest()}
    measurement = json.loads((tmp_path / "saved" / "measurement.json").read_text())
    assert measurement["parents"]["camera"]["file"] == "camera-spect.json"
