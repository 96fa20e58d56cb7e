"""No silent fallbacks: a registration whose fine level fails says so in the records, the
same inputs give the same measurement record (registrations side by side or one after the
other alike), Ctrl-C stops a batch cleanly and resumably,
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
    out.mkdir()                 # a file output goes into an existing folder (docs/cli.md)
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


def _cbcts(d: Path) -> list:
    return [sitk.ReadImage(str(d / "nifti" / f"cbct_{name}.nii.gz"))
            for name in ("right_hepatic", "left_hepatic")]


def test_registrations_side_by_side_give_the_results_one_after_the_other(phantom_dir,
                                                                        monkeypatch):
    """Bug caught: registrations run in worker processes differing from the same
    registrations run here (another thread count, a lost setting, an image changed on its
    way), or coming back out of order. Both CBCTs of the small synthetic patient: side by
    side (this process and one worker) must give records equal to those of
    ``register_rigid`` called one after the other, transform parameters bit for bit, and
    announce each registration once, in order."""
    ct, _, mask = _registration_inputs(phantom_dir)
    cbcts = _cbcts(phantom_dir)
    serial = [registration.register_rigid(ct, cbct, mask) for cbct in cbcts]
    announced = []
    with registration.observe_registrations(lambda: announced.append(len(announced))):
        parallel = registration.register_rigid_all(ct, cbcts, mask, processes=2)
    assert announced == [0, 1]
    assert [r.as_dict() for r in parallel] == [r.as_dict() for r in serial]
    for p, s in zip(parallel, serial):
        assert p.transform.GetParameters() == s.transform.GetParameters()
        assert p.transform.GetFixedParameters() == s.transform.GetFixedParameters()
    assert serial[0].as_dict() != serial[1].as_dict()  # two different registrations

    # no worker process can be had: the same results, here, one after the other
    monkeypatch.setattr(registration, "_worker_pool", lambda workers: None)
    announced.clear()
    with registration.observe_registrations(lambda: announced.append(len(announced))):
        fallback = registration.register_rigid_all(ct, cbcts, mask, processes=2)
    assert announced == [0, 1]
    assert [r.as_dict() for r in fallback] == [r.as_dict() for r in serial]


def test_workers_started_early_are_taken_over_with_the_same_results(phantom_dir, monkeypatch):
    """Bug caught: the pool started while the images are read (``workers_started_early``, as
    ``measure`` does) not used by the registrations (a second pool started: the early start
    saves nothing), used with other results than one after the other, or left running when
    no registration took it. The registrations inside the block must start no pool of their
    own and give ``register_rigid``'s records; a block left without registering ends its
    worker processes."""
    ct, cbct, mask = _registration_inputs(phantom_dir)
    small = {"working_spacing_mm": 4.0}
    alone = registration.register_rigid(ct, cbct, mask, **small)
    with registration.workers_started_early(2, processes=2):
        started = registration._STARTED[1]
        monkeypatch.setattr(registration, "_worker_pool", lambda workers: pytest.fail(
            "a second pool was started"))
        results = registration.register_rigid_all(ct, [cbct, cbct], mask, processes=2, **small)
        assert registration._STARTED == {}  # taken over, and shut down by its taker
    assert [r.as_dict() for r in results] == [alone.as_dict()] * 2
    assert all(not p.is_alive() for p in (started._processes or {}).values())
    monkeypatch.undo()

    with registration.workers_started_early(2, processes=2):
        unused = registration._STARTED[1]
        processes = list((unused._processes or {}).values())
    assert registration._STARTED == {}
    for process in processes:
        process.join(60)          # a loaded machine takes more than 10 s to end a worker
        assert not process.is_alive()

    # one registration, or one CPU: nothing is started
    with registration.workers_started_early(1, processes=2):
        assert registration._STARTED == {}
    with registration.workers_started_early(3, processes=1):
        assert registration._STARTED == {}


def test_registrations_side_by_side_fail_as_one_after_the_other(phantom_dir, monkeypatch):
    """An error in a worker reaches the caller as it would one after the other: the first
    failing image's (here an empty mask fails both), and a pool whose worker dies hands its
    registration back to this process (the result as usual)."""
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    ct, cbct, mask = _registration_inputs(phantom_dir)
    with pytest.raises(ValueError, match="registration mask is empty"):
        registration.register_rigid_all(ct, [cbct, cbct], mask * 0, processes=2)

    class DeadPool:  # a worker that died: every registration sent to it comes back broken
        def submit(self, *args, **kwargs):
            future = Future()
            future.set_exception(BrokenProcessPool("a worker died"))
            return future

        def shutdown(self, wait=True, cancel_futures=False):
            pass

    monkeypatch.setattr(registration, "_worker_pool", lambda workers: DeadPool())
    small = {"working_spacing_mm": 4.0}
    alone = registration.register_rigid(ct, cbct, mask, **small)
    announced = []
    with registration.observe_registrations(lambda: announced.append(1)):
        results = registration.register_rigid_all(ct, [cbct, cbct], mask, processes=2, **small)
    assert len(announced) == 2  # each announced once, though one went to the dead pool
    assert [r.as_dict() for r in results] == [alone.as_dict()] * 2


# ----------------------------------------------------------------------- (c) batch Ctrl-C
def _fake_parser(result):
    """A stand-in for the batch's dose_parser whose 'dose' command does ``result`` (raise or
    return)."""
    import argparse

    def command(args):
        if isinstance(result, BaseException):
            raise result
        return result

    class Parser:
        def parse_args(self, argv):
            return argparse.Namespace(func=command)
    return lambda: Parser()


def _row(pid="P1"):
    from tareplanner.cli.batch import CohortRow
    return CohortRow(pid, "/nowhere/measurement.json", "/nowhere/plan.json", None, None)


def test_keyboard_interrupt_in_a_patient_is_not_recorded_as_a_failure(tmp_path, monkeypatch):
    """Bug caught: Ctrl-C while a patient runs caught by ``except BaseException`` and written
    as that patient's failure (error.txt, status 'failed'), so the batch went on and its
    tables said the patient failed. Expected: KeyboardInterrupt passes through and nothing
    is written for the patient."""
    import tareplanner.cli.batch as batch
    from tareplanner.cli.batch import run_patient

    monkeypatch.setattr(batch, "dose_parser", _fake_parser(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        run_patient(_row(), str(tmp_path))
    assert list(tmp_path.rglob("*")) == []


@pytest.mark.parametrize("result, error", [
    (RuntimeError("disk full"), "RuntimeError: disk full"),
    (SystemExit(2), "SystemExit: 2"),
    (2, "RuntimeError: tareplanner dose ended with exit status 2"),
])
def test_real_patient_failures_are_still_recorded(tmp_path, monkeypatch, result, error):
    """The other side of the rule: an exception, an argument error (SystemExit) and a
    non-zero exit status are this patient's failure: recorded (status, error.txt), not
    raised. Bug caught: narrowing the except clause so far that these stop the cohort, or
    a non-zero exit status silently counted as done."""
    import tareplanner.cli.batch as batch
    from tareplanner.cli.batch import run_patient

    monkeypatch.setattr(batch, "dose_parser", _fake_parser(result))
    status = run_patient(_row(), str(tmp_path))
    assert status == {"patient_id": "P1", "status": "failed", "error": error}
    assert error.split(": ", 1)[-1] in (tmp_path / "patients" / "P1" / "error.txt").read_text()


def _cohort_patient(root: Path) -> Path:
    from tareplanner.cli.main import main

    d = root / "patient"
    assert main(["phantom", str(d / "img"), "--size", "small", "--seed", "31", "--no-pet"]) == 0
    img = d / "img"
    assert main(["measure", "--ct", str(img / "nifti/ct.nii.gz"),
                 "--spect", str(img / "nifti/spect_maa.nii.gz"),
                 "--liver", str(img / "labels/liver.nii.gz"),
                 "--tumours", str(img / "labels/tumours.nii.gz"), "--tumour-names", "T1,T2,T3",
                 "--territories", str(img / "labels/territories.nii.gz"),
                 "--territory-names", "right hepatic,left hepatic",
                 "--goal", "tumour_dose_gy=200", "--product", "therasphere",
                 "-o", str(d / "case.json"), "--measurement-output",
                 str(d / "measurement.json")]) == 0
    assert main(["plan", str(d / "case.json"), "-o", str(d / "plan.json")]) == 0
    return d


def test_ctrl_c_stops_the_batch_cleanly_and_a_rerun_continues(tmp_path, capsys):
    """Bug caught: Ctrl-C during ``tareplanner batch`` recorded as patients' failures, with
    Dask worker tracebacks and the batch not resumable.

    A terminal's Ctrl-C sends SIGINT to the whole process group (the command and its Dask
    workers): the test starts the command in its own session and signals the group once the
    first patient's dose record exists. Expected: exit status 130; stderr one line that
    starts 'tareplanner: batch interrupted' (no traceback, no worker noise); no error.txt,
    no status or index table; every dose.json present is a complete record; some patients
    not done. A rerun then does exactly the patients not done and skips the others."""
    from tareplanner.cli.batch import run_cohort

    patient = _cohort_patient(tmp_path)
    ids = [f"P{i}" for i in range(1, 9)]
    cohort = tmp_path / "cohort.csv"
    cohort.write_text("patient_id,measurement,plan\n" + "".join(
        f"{pid},{patient / 'measurement.json'},{patient / 'plan.json'}\n" for pid in ids))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "tareplanner", "batch", str(cohort),
                             "--out", str(out), "--quiet"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            cwd=tmp_path)
    first = out / "patients" / "P1" / "dose.json"
    deadline = time.monotonic() + 300
    while not first.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr
    assert stderr.splitlines()[-1].startswith("tareplanner: batch interrupted: ")
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert "Traceback" not in stderr + stdout

    assert not (out / "cohort_status.csv").exists()
    assert not (out / "cohort_indices.csv").exists()
    assert list(out.rglob("error.txt")) == []
    done = sorted(p.parent.name for p in out.glob("patients/*/dose.json"))
    for pid in done:
        json.loads((out / "patients" / pid / "dose.json").read_text())  # complete records
    assert "P1" in done and len(done) < len(ids)
    assert f"{len(done)} of {len(ids)} patient(s) done" in stderr

    statuses = {s["patient_id"]: s["status"]
                for s in run_cohort(cohort, out, workers=1, progress=False)["statuses"]}
    assert statuses == {pid: "skipped (done)" if pid in done else "done" for pid in ids}


# ----------------------------------------------------------------------- (d) CLI: pipe, Ctrl-C
EXAMPLE_CASE = REPO / "docs" / "examples" / "quirem-two-positions.case.json"


def test_closed_pipe_exits_141_without_a_traceback():
    """Bug caught: ``tareplanner plan case.json --json | head -1`` ending in a
    BrokenPipeError traceback (and 'Exception ignored ... BrokenPipeError' at exit).

    A real pipe whose reading end is closed before the command writes: every write fails
    with EPIPE, deterministically. Expected (Python docs, signal module, 'Note on SIGPIPE';
    128 + SIGPIPE = 141, what a shell reports for a program ended by a closed pipe): exit
    status 141 and nothing on stderr."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        run = subprocess.run([sys.executable, "-m", "tareplanner", "plan", str(EXAMPLE_CASE),
                              "--json"], stdout=write_end, stderr=subprocess.PIPE, text=True,
                             timeout=120, cwd=REPO)
    finally:
        os.close(write_end)
    assert run.returncode == 141
    assert run.stderr == ""


def test_head_reads_the_first_line_and_the_command_ends_quietly():
    """The user's pipeline itself: ``plan --json`` (about 10 kB, more than Python's 8 kB
    buffer, so written in several pieces) read by a reader that stops after its first line.
    Whether the command finished writing before the reader left (status 0) or not (141) is
    a race; either way the first line is '{' and stderr is empty. Bug caught: a traceback
    on stderr when the reader leaves first."""
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-m", "tareplanner", "plan",
                                 str(EXAMPLE_CASE), "--json"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=REPO)
        assert proc.stdout.readline() == b"{\n"
        proc.stdout.close()
        stderr = proc.stderr.read().decode()
        proc.stderr.close()
        assert proc.wait(timeout=120) in (0, 141)
        assert stderr == ""


def _subcommands(parser, prefix=()):
    """Every command path of ``parser`` ("plan", "response fit", ...) -> its own parser."""
    out = {}
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, sub in action.choices.items():
                nested = _subcommands(sub, (*prefix, name))
                out.update(nested or {" ".join((*prefix, name)): sub})
    return out


def _all_commands():
    from tareplanner.cli.main import build_parser
    parser = build_parser()
    return parser, _subcommands(parser)


def _minimal_argv(name, subparser):
    """The command with a dummy value for every positional and required option."""
    argv = name.split()
    for action in subparser._actions:
        if not action.option_strings:
            argv.append("1")
        elif action.required:
            argv += [action.option_strings[0], "1"]
    return argv


@pytest.mark.parametrize("name", sorted(_all_commands()[1]))
def test_keyboard_interrupt_in_every_command_exits_130_with_one_line(name, monkeypatch,
                                                                     capsys):
    """Bug caught: Ctrl-C in a command ending in a KeyboardInterrupt traceback (exit status
    1 or death by SIGINT). Every sub-command of the parser is run through ``main`` with its
    own function replaced by one that raises KeyboardInterrupt. Expected: 130 (128 +
    SIGINT), exactly one line on stderr, nothing on stdout."""
    import tareplanner.cli.main as cli

    parser, commands = _all_commands()

    def interrupted(args):
        raise KeyboardInterrupt

    commands[name].set_defaults(func=interrupted)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    assert cli.main(_minimal_argv(name, commands[name])) == 130
    captured = capsys.readouterr()
    assert captured.err == "tareplanner: interrupted\n"
    assert captured.out == ""


def test_ctrl_c_in_a_real_command_leaves_nothing_written(tmp_path):
    """The same with a real signal: ``tareplanner demo`` (the synthetic patient is written to
    a temporary folder and renamed when complete) receives SIGINT half a second after it
    said it started on the standard-size patient (seconds of work). Expected: status 130,
    one line on stderr, no traceback, and no file at all in the output folder (no
    half-written patient, no temporary folder left)."""
    out = tmp_path / "demo"
    proc = subprocess.Popen([sys.executable, "-m", "tareplanner", "demo", "--out", str(out),
                             "--size", "standard"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    first = proc.stdout.readline()  # printed inside the command: past start-up
    assert first.startswith("1/4 writing the synthetic patient"), first
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr
    assert stderr == "tareplanner: interrupted\n"
    assert "Traceback" not in stdout
    assert [p for p in out.rglob("*") if p.is_file()] == []
    assert [p for p in out.rglob("*") if p.name.startswith(".")] == []
