"""The post-treatment PET's scan duration in the Slicer module and on the web page.

A PET in Bq/mL holds no counts: the camera file's noise is scaled to it by the two scans'
durations (docs/imaging.md). The command line reads the patient's from its DICOM
ActualFrameDuration; the module's volume nodes must carry it too, or every PET noise in the
module assumes equal durations.
"""

import copy
import json

import numpy as np
import pytest
import SimpleITK as sitk
import slicer

from conftest import BASE_CASE
from tareplanner.cli.main import main
from tareplanner.mrml import attributes
from tareplanner.mrml import workflow as wf
from tareplanner.mrml.dicom_header import dicom_header, set_dicom_header
from tareplanner.mrml.volumes import volume_node_from_image


def _node(scene, name="PET"):
    image = sitk.Image(4, 4, 4, sitk.sitkFloat32)
    return volume_node_from_image(scene, image, name)


def test_scan_duration_from_the_header_then_the_attribute():
    """Bug caught: the header's duration ignored, the attribute preferred over the header,
    or an impossible value (NaN, infinite, zero, negative, text) taken as a duration."""
    scene = slicer.vtkMRMLScene()
    node = _node(scene)
    assert wf.scan_duration_s(node) is None
    node.SetAttribute(attributes.SCAN_DURATION_S, "1800.0")
    assert wf.scan_duration_s(node) == 1800.0
    set_dicom_header(node, {"frame_duration_s": 900.0, "patient_id": "X"})
    assert wf.scan_duration_s(node) == 900.0              # the header wins
    for bad in ("nan", "inf", "0", "-60", "thirty minutes", ""):
        other = _node(scene, f"PET {bad}")
        other.SetAttribute(attributes.SCAN_DURATION_S, bad)
        assert wf.scan_duration_s(other) is None, bad


def test_a_dicom_pets_frame_duration_stays_on_its_node(tmp_path):
    """Bug caught: the reader's frame duration dropped when its header is kept on the node
    (the module's and the web page's DICOM loaders). Truth: the series written with
    ActualFrameDuration 900000 ms, read back by pydicom."""
    import pydicom
    from conftest import write_test_pet_series
    from tareplanner.imaging.readers import read_image
    folder = tmp_path / "pet"
    write_test_pet_series(folder, 900.0)
    first = sorted(folder.iterdir())[0]
    assert float(pydicom.dcmread(first).ActualFrameDuration) == 900000.0
    loaded = read_image(str(folder))
    scene = slicer.vtkMRMLScene()
    node = _node(scene)
    set_dicom_header(node, loaded.meta)
    assert dicom_header(node)["frame_duration_s"] == 900.0
    assert wf.scan_duration_s(node) == 900.0


def test_the_synthetic_patients_pet_states_its_scan_duration(small_phantom):
    """Bug caught: the module's synthetic PET volume without the duration its DICOM series
    states (20 min for the Gaussian model), so that the module assumes what the command
    line reads."""
    from tareplanner.mrml.sample_data import load_synthetic_patient
    scene = slicer.vtkMRMLScene()
    patient = load_synthetic_patient(scene, "small")
    assert wf.scan_duration_s(patient.pet) == 1200.0


@pytest.fixture(scope="module")
def pet_camera(tmp_path_factory):
    """A Y-90 PET camera file from the 9 mm Gaussian IEC phantom scanned 120 min."""
    d = tmp_path_factory.mktemp("iec") / "pet"
    assert main(["phantom", str(d), "--iec", "--modality", "PET", "--nuclide", "Y-90",
                 "--fwhm-mm", "9"]) == 0
    out = d.parent / "camera.json"
    assert main(["calibrate", "--ct", str(d / "ct.nii.gz"), "--image",
                 str(d / "image.nii.gz"), "--nuclide", "Y-90", "--sphere-kbq-ml", "40",
                 "--background-kbq-ml", "5", "--acquisition-minutes", "120",
                 "-o", str(out)]) == 0
    assert json.loads(out.read_text())["roi_noise"]["acquisition_s"] == 7200.0
    return out


def test_module_verification_scales_the_noise_by_the_pets_duration(small_phantom,
                                                                   pet_camera):
    """Bug caught: the module's post-treatment correction given no scan duration, so that a
    phantom scanned 120 min passes its halved noise on to a 30 min patient scan. By hand:
    the same image and camera file, 7200 s phantom against a 1800 s PET: every region's
    noise sqrt(7200 / 1800) = 2 times the one computed with equal durations assumed; and
    the assumption (and its warning) only where the node holds no duration."""
    from tareplanner.dosimetry.post_treatment_pvc import post_treatment_resolution
    from conftest import mrml_ct_and_structures
    from tareplanner.planning import plan_case
    from tareplanner.records.case import parse_case
    p = small_phantom
    scene = slicer.vtkMRMLScene()
    ct, seg = mrml_ct_and_structures(scene, p)
    record = plan_case(parse_case(copy.deepcopy(BASE_CASE)))
    resolution = post_treatment_resolution(str(pet_camera), "Y-90", "pet")
    truth = p.truth["y90_pet"]

    def verify(node):
        *_, post = wf.verification_nodes(
            scene, ct, node, seg, record, administration_time=truth["administration_time"],
            acquisition_time=truth["acquisition_start"], resolution=resolution)
        return post

    timed_node = volume_node_from_image(scene, p.pet, "PET timed")
    timed_node.SetAttribute(attributes.SCAN_DURATION_S, "1800")
    untimed_node = volume_node_from_image(scene, p.pet, "PET untimed")
    timed, untimed = verify(timed_node), verify(untimed_node)
    noise_t = timed["partial_volume_correction"]["noise"]
    noise_u = untimed["partial_volume_correction"]["noise"]
    assert noise_t["acquisition"] == {"phantom_s": 7200.0, "image_s": 1800.0}
    assert "duration_assumed" in noise_u["acquisition"]
    compared = 0
    for name, region in noise_t["regions"].items():
        sd_u = noise_u["regions"][name]["measured_relative_sd"]
        if sd_u:
            assert region["measured_relative_sd"] == pytest.approx(2.0 * sd_u, rel=1e-9)
            compared += 1
    assert compared >= 4
    codes_t = {w["code"] for w in timed["warnings"]}
    codes_u = {w["code"] for w in untimed["warnings"]}
    assert "noise-duration-assumed" not in codes_t
    assert "noise-duration-assumed" in codes_u
    assert np.isfinite(noise_t["regions"]["tumour:T1"]["corrected_relative_sd"])
