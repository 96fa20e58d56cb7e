"""Hostile outputs: existing files, folders where files belong (and the reverse), a full or
read-only disk, NUL characters in paths, a process killed while writing, and the exit status
of the real command (a separate process: a traceback, exit 1 or a crash by signal would show
only there).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import textwrap
import time

import pytest

from .hostile import PYTHON, assert_refused, snapshot


def test_existing_outputs_refused_without_force(sandbox, records):
    """plan -o, report -o and dose --out refuse an existing output and leave it as it was."""
    plan_out = sandbox.out / "plan.json"
    plan_out.write_text("earlier")
    report_out = sandbox.out / "report.pdf"
    report_out.write_text("earlier")
    dose_out = sandbox.out / "dose"
    dose_out.mkdir()
    (dose_out / "dose.json").write_text("earlier")
    before = snapshot(sandbox.out)
    for argv in (["plan", records["case"], "-o", plan_out],
                 ["report", records["plan"], "-o", report_out],
                 ["dose", "--measurement", records["measurement"], "--plan", records["plan"],
                  "--method", "ldm", "--out", dose_out]):
        assert_refused(sandbox.run(argv), "exists", out=sandbox.out, out_before=before)
    assert plan_out.read_text() == report_out.read_text() == "earlier"
    assert (dose_out / "dose.json").read_text() == "earlier"


def test_outputs_of_the_wrong_kind_refused(sandbox, records):
    """A folder given as -o, a file as a parent folder, a file as --out: named errors; before,
    os.replace onto a folder or mkdir under a file raised IsADirectoryError/FileExistsError
    tracebacks, and dose --out FILE failed in os.iterdir."""
    a_file = sandbox.out / "file.txt"
    a_file.write_text("x")
    before = snapshot(sandbox.out)
    cases = [(["plan", records["case"], "-o", sandbox.out, "--force"], "-o"),
             (["plan", records["case"], "-o", a_file / "plan.json"], "-o"),
             (["plan", records["case"], "-o", "plan\x00.json"], "-o"),
             (["report", records["plan"], "-o", sandbox.out, "--force"], "-o"),
             (["report", records["plan"], "-o", a_file / "r.pdf"], "-o"),
             (["dose", "--measurement", records["measurement"], "--plan", records["plan"],
               "--method", "ldm", "--out", a_file], "--out"),
             (["measure", "--ct", "x", "--spect", "y", "--product", "therasphere",
               "--measurement-output", sandbox.out, "--force"], "--measurement-output")]
    for argv, fragment in cases:
        assert_refused(sandbox.run(argv), fragment, out=sandbox.out, out_before=before)


@pytest.mark.parametrize("where", ["replace", "fsync"])
def test_full_disk_leaves_nothing(sandbox, records, monkeypatch, where):
    """No space left while writing or renaming: exit 2 naming -o, and neither the output
    nor its temporary file is left behind."""
    import tareplanner.records.atomic as atomic

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(atomic.os, where, full)
    outcome = sandbox.run(["plan", records["case"], "-o", sandbox.out / "plan.json"])
    assert_refused(outcome, "-o", "No space left", out=sandbox.out)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="the superuser writes into read-only folders")
def test_read_only_folder_refused(sandbox, records):
    folder = sandbox.out / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        outcome = sandbox.run(["plan", records["case"], "-o", folder / "plan.json"])
        assert_refused(outcome, "-o", out=folder)
    finally:
        folder.chmod(0o700)


KILL_WHILE_WRITING = textwrap.dedent("""
    import os, signal, sys
    from tareplanner.records.atomic import atomic_path
    with atomic_path(sys.argv[1], overwrite=True) as tmp:
        with open(tmp, "w") as handle:
            handle.write('{"half": ')
            handle.flush()
            os.kill(os.getpid(), signal.SIGKILL)
""")


def test_killed_while_writing_leaves_the_old_file(sandbox, records):
    """A process killed in the middle of writing a record: the record is the earlier one,
    complete; the temporary file left by the killed writer is removed by the next write."""
    target = sandbox.out / "plan.json"
    target.write_text('{"earlier": true}\n')
    result = subprocess.run([PYTHON, "-c", KILL_WHILE_WRITING, str(target)],
                            capture_output=True, timeout=60)
    assert result.returncode == -signal.SIGKILL
    assert json.loads(target.read_text()) == {"earlier": True}
    leftovers = [p.name for p in sandbox.out.iterdir() if p.name != "plan.json"]
    assert leftovers and all(n.startswith(".plan.json.") and n.endswith(".tmp")
                             for n in leftovers)
    outcome = sandbox.run(["plan", records["case"], "-o", target, "--force"])
    assert outcome.code == 0, outcome.err
    assert sorted(p.name for p in sandbox.out.iterdir()) == ["plan.json"]
    assert json.loads(target.read_text())["schema"] == "tareplanner.plan/1"


def test_dose_killed_midway_leaves_no_partial_folder(sandbox, records):
    """dose killed at any moment: --out is absent or complete, never partial; what a killed
    run leaves (a hidden temporary folder) is removed by the next run."""
    out = sandbox.out / "dose"
    argv = [PYTHON, "-m", "tareplanner", "dose", "--measurement", str(records["measurement"]),
            "--plan", str(records["plan"]), "--method", "ldm", "--out", str(out)]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2.0)
    process.kill()
    process.wait(timeout=60)
    if out.exists():
        assert (out / "dose.json").is_file()
    hidden = [p for p in sandbox.out.iterdir() if p.name != "dose"]
    assert all(p.name.startswith(".dose.") and p.name.endswith(".tmp") for p in hidden)
    outcome = sandbox.run(["dose", "--measurement", records["measurement"], "--plan",
                           records["plan"], "--method", "ldm", "--out", out, "--force"])
    assert outcome.code == 0, outcome.err
    assert [p.name for p in sandbox.out.iterdir()] == ["dose"]


def _cli(*argv, cwd):
    return subprocess.run([PYTHON, "-m", "tareplanner", *map(str, argv)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_real_process_exit_status_and_one_line(sandbox, records):
    """In a separate process (as users run it): exit status 2, one line on stderr, no
    traceback, no crash by signal, for a malformed case, a truncated DICOM CT, a broken
    plan record and a usage error."""
    import shutil
    ct = sandbox.inputs / "ct"
    shutil.copytree(records["phantom"] / "dicom" / "ct", ct)
    first = sorted(ct.iterdir())[0]
    first.write_bytes(first.read_bytes()[:1200])
    case = sandbox.write("case.json", '{"schema": "tareplanner.case/1", "a": 1, "a": 2}')
    record = json.loads(records["plan"].read_text())
    del record["positions"][0]["activity_gbq"]
    plan = sandbox.write("plan.json", record)
    runs = [
        (("plan", case, "-o", sandbox.out / "p.json"), "duplicate key"),
        (("measure", "--ct", ct, "--spect", records["phantom"] / "dicom" / "spect_maa",
          "--liver", records["phantom"] / "labels" / "liver.nii.gz", "--product",
          "therasphere", "--territories", records["phantom"] / "labels" / "territories.nii.gz",
          "--goal", "tumour_dose_gy=250", "-o", sandbox.out / "c.json"), "--ct"),
        (("report", plan, "-o", sandbox.out / "r.pdf"), "record.positions[0].activity_gbq"),
        (("dose", "--bin-gy", "x"), "--bin-gy"),
    ]
    for argv, fragment in runs:
        result = _cli(*argv, cwd=sandbox.cwd)
        assert result.returncode == 2, (argv, result.returncode, result.stderr[-1500:])
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and fragment in lines[0], result.stderr
        assert "Traceback" not in result.stderr
    assert snapshot(sandbox.out) == set()
    assert snapshot(sandbox.cwd) == set()


def test_report_with_long_and_unicode_names(sandbox, records):
    """Names at the 64-character limit and outside ASCII (Latin, Greek: glyphs the report's
    font has) go through plan and report whole;
    a position renamed by hand in the record (its uncertainty figures keyed by the old
    name) is refused by name instead of a KeyError while the PDF is drawn."""
    case = json.loads(records["case"].read_text())
    case["case_id"] = "C" * 64
    case["positions"][0]["name"] = "gauche é – λοβός " + "x" * 47
    path = sandbox.write("case.json", case)
    plan = sandbox.out / "plan.json"
    assert sandbox.run(["plan", path, "-o", plan]).code == 0
    outcome = sandbox.run(["report", plan, "-o", sandbox.out / "r.pdf"])
    assert outcome.code == 0, outcome.err
    assert (sandbox.out / "r.pdf").read_bytes().startswith(b"%PDF")
    record = json.loads(plan.read_text())
    if record.get("uncertainty"):
        record["positions"][0]["name"] = "renamed"
        edited = sandbox.write("edited.json", record)
        assert_refused(sandbox.run(["report", edited, "-o", sandbox.out / "e.pdf"]),
                       "record.uncertainty.figures")
