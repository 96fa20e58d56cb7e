"""No silent fallbacks: a registration whose fine level fails says so in the records, the
same inputs give the same measurement record, Ctrl-C stops a batch cleanly and resumably,
and the command line ends quietly on a closed pipe or Ctrl-C."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import REPO

import tareplanner.imaging.registration as registration
from tareplanner.imaging.loaded import LoadedImage
from tareplanner.imaging.measure import (LabelInputs, PositionImages, case_from_measurement,
                                         measure)
from tareplanner.imaging.readers import read_image
from tareplanner.planning import plan_case
from tareplanner.records.case import parse_case
from tareplanner.records.report import plan_lines


def _fail_fine_level(*args, **kwargs):
    raise RuntimeError("itk::ExceptionObject: All samples map outside moving image buffer")


# ----------------------------------------------------------------------- (a) registration
def test_failed_fine_level_is_a_warning_with_the_metric_values(phantom_dir, monkeypatch):
    """Bug caught: a fine registration level that raises is swallowed and the coarse result
    kept with no trace (the old ``except RuntimeError: pass``).

    Forced failure: the fine level raises RuntimeError as ITK does when the transform leaves
    the overlap. Expected: the coarse transform is returned; the result carries a warning
    naming the failure and the Mattes MI before and after the coarse levels (the values the
    record holds as mattes_mi_before / mattes_mi_after, printed to 4 decimals), and the
    record's fine_level says 'failed' with the error text."""
    monkeypatch.setattr(registration, "_refine", _fail_fine_level)
    result = registration.register_rigid(*_registration_inputs(phantom_dir))
    record = result.as_dict()
    assert record["fine_level"]["status"] == "failed"
    assert "outside moving image buffer" in record["fine_level"]["error"]
    assert "mattes_mi_fine" not in record["fine_level"]
    # the coarse levels' metric is what the result reports as "after"
    assert record["mattes_mi_after"] == record["fine_level"]["mattes_mi_coarse"]
    assert record["mattes_mi_after"] < record["mattes_mi_before"]
    [warning] = result.warnings
    assert warning["code"] == "registration-fine-level-failed"
    assert f"{record['mattes_mi_before']:.4f}" in warning["message"]
    assert f"{record['mattes_mi_after']:.4f}" in warning["message"]
    assert "outside moving image buffer" in warning["message"]
    assert record["warnings"] == [warning]


def _registration_inputs(d: Path):
    ct = sitk.ReadImage(str(d / "nifti" / "ct.nii.gz"))
    cbct = sitk.ReadImage(str(d / "nifti" / "cbct_right_hepatic.nii.gz"))
    liver = sitk.ReadImage(str(d / "labels" / "liver.nii.gz"))
    return ct, cbct, sitk.BinaryDilate(sitk.Cast(liver > 0, sitk.sitkUInt8), [10, 10, 7])


@pytest.mark.parametrize("shift_mm, status", [(0.0, "accepted"), (5.0, "rejected")])
def test_fine_level_kept_only_when_not_worse(phantom_dir, monkeypatch, shift_mm, status):
    """Rule: the fine result replaces the coarse one when its metric is <= the coarse one.
    Edge: a fine level that returns the coarse transform unchanged has exactly the coarse
    metric (same transform, same voxels, one thread) and is accepted without a warning.
    Beyond it: a fine level that ends 5 mm off (a worse metric) is rejected with a
    'registration-fine-level-rejected' warning giving both metric values. (The other side,
    a better fine level, is the ordinary path of test_imaging_measure.)
    Bug caught: a rejected refinement kept silently, or an equal one rejected."""
    def fine(fixed, moving, mask, start, *args):
        moved = sitk.Euler3DTransform(start)
        x, y, z = start.GetTranslation()
        moved.SetTranslation((x + shift_mm, y, z))
        return moved, 7, "test fine level"
    monkeypatch.setattr(registration, "_refine", fine)
    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    result = registration.register_rigid(*_registration_inputs(phantom_dir),
                                         working_spacing_mm=4.0)
    assert sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() == threads  # restored
    level = result.fine_level
    assert level["status"] == status
    if status == "accepted":
        assert level["mattes_mi_fine"] == level["mattes_mi_coarse"] == result.metric_after
        assert result.warnings == () and result.stop_condition == "test fine level"
    else:
        assert level["mattes_mi_fine"] > level["mattes_mi_coarse"] == result.metric_after
        [warning] = result.warnings
        assert warning["code"] == "registration-fine-level-rejected"
        assert f"{level['mattes_mi_fine']:.4f}" in warning["message"]
        assert f"{level['mattes_mi_coarse']:.4f}" in warning["message"]
        assert result.stop_condition != "test fine level"


def test_fine_level_failure_reaches_measurement_case_plan_and_report(phantom_dir, monkeypatch):
    """Bug caught: the registration warning kept inside the registration and lost on its way
    to the people who sign the plan (measurement warnings -> case.measurement.warnings ->
    plan record warnings -> report's Warnings section)."""
    monkeypatch.setattr(registration, "_refine", _fail_fine_level)
    d = phantom_dir
    ct = read_image(str(d / "nifti" / "ct.nii.gz"), modality="CT", units="HU")
    spect = read_image(str(d / "nifti" / "spect_maa.nii.gz"), modality="NM", units="counts")
    cbct = read_image(str(d / "nifti" / "cbct_right_hepatic.nii.gz"), modality="CT",
                      units="HU")
    territories = sitk.ReadImage(str(d / "labels" / "territories.nii.gz"))
    labels = LabelInputs(liver=sitk.ReadImage(str(d / "labels" / "liver.nii.gz")),
                         tumours=sitk.ReadImage(str(d / "labels" / "tumours.nii.gz")),
                         tumour_names={1: "T1", 2: "T2", 3: "T3"},
                         lungs=sitk.ReadImage(str(d / "labels" / "lungs.nii.gz")))
    positions = [PositionImages(name="right hepatic", cbct=cbct),
                 PositionImages(name="left hepatic", territory=territories == 2)]
    measurement = measure(ct, spect, labels, positions)
    codes = [w["code"] for w in measurement["warnings"]]
    assert codes.count("registration-fine-level-failed") == 1
    warning = next(w for w in measurement["warnings"]
                   if w["code"] == "registration-fine-level-failed")
    assert warning["message"].startswith("right hepatic: ")
    reg = measurement["positions"][0]["registration"]
    assert f"{reg['mattes_mi_after']:.4f}" in warning["message"]

    goals = {"right hepatic": {"tumour_dose_gy": 200}, "left hepatic": {"tumour_dose_gy": 200}}
    case = case_from_measurement(measurement, product="therasphere", method="partition",
                                 goals=goals, treatment_time="2026-12-01T10:00:00+01:00")
    assert warning in case["measurement"]["warnings"]
    record = plan_case(parse_case(case))
    plan_warnings = {(w["code"], w["message"]) for w in record["warnings"]}
    assert ("measurement:registration-fine-level-failed", warning["message"]) in plan_warnings
    report = "\n".join(plan_lines(record))
    assert "registration-fine-level-failed" in report


# ----------------------------------------------------------------------- (b) determinism
def _measure_command(d: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "tareplanner", "measure",
            "--ct", str(d / "nifti" / "ct.nii.gz"),
            "--spect", str(d / "nifti" / "spect_maa.nii.gz"),
            "--liver", str(d / "labels" / "liver.nii.gz"),
            "--tumours", str(d / "labels" / "tumours.nii.gz"), "--tumour-names", "T1,T2,T3",
            "--position", f"right hepatic={d / 'nifti' / 'cbct_right_hepatic.nii.gz'}",
            "--position", f"left hepatic={d / 'nifti' / 'cbct_left_hepatic.nii.gz'}",
            "--goal", "tumour_dose_gy=250", "--product", "therasphere",
            "--treatment-time", "2026-12-01T10:00:00+01:00",
            "-o", str(out / "case.json"), "--measurement-output", str(out / "measurement.json")]


def test_measure_is_bit_reproducible(phantom_dir, tmp_path):
    """Bug caught: identical runs of ``tareplanner measure`` giving different records
    (1280.676 against 1280.688 mL): ITK's multi-threaded Mattes metric adds per-thread
    partial sums in a varying order, so the CBCT registration, hence the territories, moved
    between runs. Two runs in separate processes (different Python hash seeds, so that no
    set or dict order can hide either), into the same output path, must write the same bytes:
    measurement record (but for its 'created' time), case (but for the measurement file's
    SHA-256, which covers that time) and label maps."""
    out = tmp_path / "out"
    runs = []
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        run = subprocess.run(_measure_command(phantom_dir, out), capture_output=True,
                             text=True, env=env, timeout=900, cwd=tmp_path)
        assert run.returncode == 0, run.stderr[-2000:]
        files = {p.relative_to(out).as_posix(): p.read_bytes()
                 for p in sorted(out.rglob("*")) if p.is_file()}
        measurement_bytes = files.pop("measurement.json")
        measurement = json.loads(measurement_bytes)
        created = measurement.pop("created")
        assert created  # the only field allowed to differ
        # the case names the measurement file by its SHA-256, which covers 'created'
        digest = hashlib.sha256(measurement_bytes).hexdigest()
        assert json.loads(files["case.json"])["measurement"]["sha256"] == digest
        files["case.json"] = files["case.json"].replace(digest.encode(), b"<sha256>")
        runs.append((json.dumps(measurement, indent=2).encode(), files))
        for p in sorted(out.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
    (first, first_files), (second, second_files) = runs
    assert first == second
    assert sorted(first_files) == sorted(second_files)
    assert {"case.json", "measurement_labels/territories.nii.gz"} <= set(first_files)
    for name in first_files:
        assert first_files[name] == second_files[name], name
