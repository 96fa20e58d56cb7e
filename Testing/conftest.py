"""Shared helpers for the test suite."""

import copy
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

BASE_CASE = {
    "schema": "tareplanner.case/1",
    "product": "therasphere",
    "method": "partition",
    "tissue_density_g_per_ml": 1.03,
    "lung_shunt_fraction": 0.06,
    "lsf_method": "spect-whole-lung",
    "lung_mass_kg": 1.0,
    "prior_lung_dose_gy": 0,
    "residual_fraction": 0.0,
    "liver_compromised": False,
    "patient": {"height_cm": 172, "weight_kg": 80},
    "whole_liver_volume_ml": 1800,
    "whole_liver_tumour_volume_ml": 150,
    "treatment_time": "2026-12-01T10:00:00+01:00",
    "positions": [{"name": "right hepatic", "normal_volume_ml": 900,
                   "tumours": [{"name": "T1", "volume_ml": 120, "tnr": 3.1}],
                   "goal": {"tumour_dose_gy": 250}}],
}


#: the base case's one injection position, the site of its directive's readings
BASE_SITE = "right hepatic"


def vial_readings(vial_gbq, residual_gbq=None):
    """Treatment-day readings of the base case's directive: one vial read at 08:00,
    administered at 10:00 (2 h of decay), a residual (when given) read at 11:00."""
    entry = {"treatment_site": BASE_SITE,
             "vial": [{"activity_gbq": vial_gbq, "time": "2026-12-01T08:00:00+01:00"}],
             "administration_time": "2026-12-01T10:00:00+01:00"}
    if residual_gbq is not None:
        entry["residual"] = [{"activity_gbq": residual_gbq,
                              "time": "2026-12-01T11:00:00+01:00"}]
    return [entry]


@pytest.fixture(scope="module")
def directive():
    """The written directive of the base case's plan (a module may define its own)."""
    from tareplanner.planning import plan_case
    from tareplanner.records.case import parse_case
    from tareplanner.records.directive import directive_from_plan
    return directive_from_plan(plan_case(parse_case(copy.deepcopy(BASE_CASE))))


@pytest.fixture
def computer_in_utc(monkeypatch):
    """The computer's own time zone set to UTC for the test (and restored after it), so that
    a time judged in the computer's zone instead of the treatment's (UTC+1) shows."""
    import time
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def base_case():
    """A fresh copy of the case of the issue text (TheraSphere, partition, one position)."""
    return copy.deepcopy(BASE_CASE)


@pytest.fixture
def write_case(tmp_path):
    def _write(document, name="case.json"):
        path = tmp_path / name
        path.write_text(json.dumps(document) if not isinstance(document, str) else document)
        return path
    return _write


@pytest.fixture(scope="session")
def small_phantom():
    """The small synthetic patient in memory (built once per test session)."""
    from tareplanner.imaging.phantom import make_phantom, spec_for_size

    return make_phantom(spec_for_size("small", ho166_scout=True))


@pytest.fixture(scope="session")
def phantom_dir(small_phantom, tmp_path_factory):
    """The small synthetic patient written to disk (DICOM, NIfTI, labels, truth)."""
    from tareplanner.imaging.phantom_files import write_phantom

    out = tmp_path_factory.mktemp("phantom") / "patient"
    write_phantom(small_phantom, out)
    return out


def write_test_pet_series(folder, frame_duration_s: float) -> None:
    """A small Y-90 PET DICOM series (3 slices of 1000 Bq/mL, 4 mm voxels) acquired
    2026-12-01 14:00 UTC, for ``frame_duration_s`` seconds (ActualFrameDuration)."""
    from datetime import datetime, timezone

    import numpy as np
    import SimpleITK as sitk

    from tareplanner.dicom.common import SeriesInfo, make_uid
    from tareplanner.dicom.images import write_pet_series
    image = sitk.GetImageFromArray(np.full((3, 4, 5), 1000.0, dtype=np.float32))
    image.SetSpacing((4.0, 4.0, 4.0))
    when = datetime(2026, 12, 1, 14, 0, tzinfo=timezone.utc)
    info = SeriesInfo(study_uid=make_uid("s"), frame_of_reference_uid=make_uid("f"),
                      series_uid=make_uid("pet"), series_description="PET Y-90",
                      series_number=20, series_datetime=when, acquisition_datetime=when)
    write_pet_series(image, folder, info, nuclide="Y-90",
                     radiopharmaceutical="Y-90 microspheres", administered_bq=3e9,
                     administration=datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc),
                     half_life_s=64.1 * 3600, frame_duration_s=frame_duration_s)


def small_patient_measure_args(patient, out, spect=None,
                               measurement: str = "measurement.json") -> list[str]:
    """The ``tareplanner measure`` arguments for a synthetic patient folder: its SPECT
    (``spect``, default the MAA NIfTI) with its truth label maps, goal and product, writing
    case.json and ``measurement`` into ``out``; quiet."""
    spect = patient / "nifti" / "spect_maa.nii.gz" if spect is None else spect
    return ["measure", "--ct", str(patient / "nifti" / "ct.nii.gz"), "--spect", str(spect),
            "--liver", str(patient / "labels" / "liver.nii.gz"),
            "--tumours", str(patient / "labels" / "tumours.nii.gz"),
            "--tumour-names", "T1,T2,T3",
            "--territories", str(patient / "labels" / "territories.nii.gz"),
            "--territory-names", "right hepatic,left hepatic",
            "--goal", "tumour_dose_gy=250", "--product", "therasphere",
            "-o", str(out / "case.json"), "--measurement-output", str(out / measurement),
            "--quiet"]


def measure_small_patient(patient, out, *extra) -> int:
    """``tareplanner measure`` of a synthetic patient folder's MAA SPECT (NIfTI) with its
    truth label maps into ``out`` (created): case.json and measurement.json; exit status."""
    from tareplanner.cli.main import main
    out.mkdir()
    return main([*small_patient_measure_args(patient, out), *extra])


def mrml_ct_and_structures(scene, phantom):
    """The synthetic patient's CT as a volume node and a segmentation of its tumours (T1-T3),
    liver and lungs (from the CT), with their roles."""
    import SimpleITK as sitk

    from tareplanner.imaging.phantom_files import label_images
    from tareplanner.mrml import workflow as wf
    from tareplanner.mrml.segmentations import segmentation_from_labels
    from tareplanner.mrml.volumes import volume_node_from_image
    ct = volume_node_from_image(scene, phantom.ct, "CT")
    labels = label_images(phantom)
    seg = segmentation_from_labels(scene, labels["tumours"], {1: "T1", 2: "T2", 3: "T3"}, ct)
    for name in ("T1", "T2", "T3"):
        wf.set_role(seg, name, "tumour")
    wf.add_mask_segment(seg, ct, "liver", sitk.GetArrayFromImage(labels["liver"]) > 0, "liver")
    wf.add_lungs_from_ct(ct, seg)
    return ct, seg


def delivered_truth_gy(truth: dict, energy_j_per_gbq: float,
                       density_g_per_ml: float) -> dict:
    """The delivered mean dose (local deposition) of every tumour and every territory's
    normal liver of a synthetic patient, by hand from its ``truth.json``: the partition model
    it was built with. Territory i's share of the implanted Y-90 that stays in the liver,
    A_i = administered_i x (1 - residual fraction) x (1 - lung shunt fraction), is spread at
    one concentration over its normal liver and at TNR times it over its tumours, so
    D(normal, i) = A_i x E / (rho x (V_normal,i + sum of TNR_t x V_t)) and D(t) = TNR_t x
    D(normal, i) (volumes from the truth's label maps). Decay cancels: the PET's activity
    at the scan and the dose both come from the same implanted activity.

    Why not the dose of the phantom's PET written without blur and noise: that image is
    still sampled on the PET's 4 mm voxels, whose boundary voxels mix tumour and liver; its
    structure means read 2-9 % below these (T2 -9 %), a partial-volume loss of the truth
    itself. ``energy_j_per_gbq`` and ``density_g_per_ml``: the dose record's (its
    ``energy_per_activity_j_per_gbq`` and ``soft_tissue_density_g_per_ml``), so that the
    comparison is of the partial-volume correction, not of those constants."""
    pet = truth["y90_pet"]
    volumes = truth["volumes_ml"]
    liver_share = (1.0 - pet["residual_fraction"]) * (1.0 - pet["lung_shunt_fraction"])
    out = {}
    for position in truth["positions"]:
        name, tumours = position["name"], position["tumours"]
        volume_ml = volumes["territories"][name]["normal"] + sum(
            pet["tnr"][t] * volumes["tumours"][t] for t in tumours)
        activity_gbq = pet["administered_activity_gbq"][name] * liver_share
        normal = activity_gbq * energy_j_per_gbq / (density_g_per_ml / 1000.0 * volume_ml)
        out[f"normal liver ({name})"] = normal
        out.update({t: pet["tnr"][t] * normal for t in tumours})
    return out
