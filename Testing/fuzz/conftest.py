"""Fixtures of the hostile-input suite (see hostile.py for the outcome check)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .hostile import Sandbox, run_cli


@pytest.fixture
def sandbox(tmp_path) -> Sandbox:
    return Sandbox(tmp_path / "sandbox")


@pytest.fixture(scope="session")
def records(phantom_dir, tmp_path_factory):
    """The small synthetic patient measured (territory labels, no registration), planned,
    and its predictive dose (local deposition): paths of the case, measurement, plan and
    dose folder, built once per session."""
    root = tmp_path_factory.mktemp("fuzz_records")
    d = phantom_dir
    outcome = run_cli([
        "measure", "--ct", d / "nifti" / "ct.nii.gz", "--spect", d / "nifti" / "spect_maa.nii.gz",
        "--liver", d / "labels" / "liver.nii.gz", "--tumours", d / "labels" / "tumours.nii.gz",
        "--tumour-names", "T1,T2,T3", "--territories", d / "labels" / "territories.nii.gz",
        "--territory-names", "right hepatic,left hepatic", "--goal", "tumour_dose_gy=250",
        "--product", "therasphere", "-o", root / "case.json",
        "--measurement-output", root / "measurement.json"])
    assert outcome.code == 0, outcome.err
    outcome = run_cli(["plan", root / "case.json", "-o", root / "plan.json"])
    assert outcome.code == 0, outcome.err
    outcome = run_cli(["dose", "--measurement", root / "measurement.json", "--plan",
                       root / "plan.json", "--method", "ldm", "--out", root / "dose"])
    assert outcome.code == 0, outcome.err
    return {"case": root / "case.json", "measurement": root / "measurement.json",
            "plan": root / "plan.json", "dose": root / "dose", "phantom": d}


@pytest.fixture(scope="session")
def pydicom_test_files() -> Path:
    """pydicom's bundled test files (read from the installed package, never downloaded)."""
    import pydicom
    folder = Path(pydicom.__file__).parent / "data" / "test_files"
    if not folder.is_dir():
        pytest.skip("pydicom's test files are not installed")
    return folder

