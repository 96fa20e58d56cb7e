"""Output faults: a folder that cannot be written, a full disk, a run killed outright.

Expected, for ``report``, ``dose`` and ``demo``: one line on stderr naming the output and the
system's reason, exit status 2, no traceback, nothing left behind (no partial file, no
temporary). A run killed with SIGKILL (no clean-up at all) leaves the earlier set of outputs
whole, never a mix of old and new files, and the next run removes what it left.
"""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from tareplanner.records.atomic import atomic_folder, swapped_folder

from .hostile import assert_refused, run_cli, snapshot


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 KiB tmpfs (needs the right to mount: the superuser in a container)."""
    mount = tmp_path / "full"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                          capture_output=True)
    if proc.returncode != 0:
        pytest.skip("cannot mount a small file system here")
    yield mount
    # lazy: a writer that failed may still hold a file open until it is collected
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _commands(records, out: Path) -> dict[str, list]:
    return {
        "report": ["report", records["plan"], "--dose", records["dose"], "-o", out / "r.pdf"],
        "dose": ["dose", "--measurement", records["measurement"], "--plan", records["plan"],
                 "--method", "ldm", "--out", out / "dose"],
        "demo": ["demo", "--out", out / "demo", "--quiet"],
    }


@pytest.mark.parametrize("command", ["report", "dose", "demo"])
def test_full_disk_is_one_line_exit_2_and_nothing_left(records, tiny_disk, command):
    """Bug caught: OSError ENOSPC from a writer (pydicom, matplotlib, ITK) escaping as a
    traceback, and the half-written output or its temporary left on the disk."""
    outcome = run_cli(_commands(records, tiny_disk)[command])
    assert_refused(outcome, "No space left on device")
    assert snapshot(tiny_disk) == set()


@pytest.mark.parametrize("command", ["report", "dose", "demo"])
def test_unwritable_folder_is_one_line_exit_2_and_nothing_left(records, tmp_path, monkeypatch,
                                                               command):
    """Bug caught: PermissionError escaping as a traceback. The superuser writes anywhere, so
    the refusal of the system is played by the temporary-file calls every writer goes through
    (tempfile.mkstemp / mkdtemp) raising EACCES for the output folder."""
    out = tmp_path / "locked"
    out.mkdir()
    real_mkstemp, real_mkdtemp = tempfile.mkstemp, tempfile.mkdtemp

    def refuse(real):
        def call(*args, dir=None, **kwargs):
            if dir is not None and str(dir).startswith(str(out)):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dir))
            return real(*args, dir=dir, **kwargs)
        return call

    monkeypatch.setattr(tempfile, "mkstemp", refuse(real_mkstemp))
    monkeypatch.setattr(tempfile, "mkdtemp", refuse(real_mkdtemp))
    outcome = run_cli(_commands(records, out)[command])
    assert_refused(outcome, "Permission denied", str(out))
    assert snapshot(out) == set()


_SLOW_WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from tareplanner.records.atomic import {helper}
    with {helper}(Path(sys.argv[1])) as folder:
        for k in range(50):
            (folder / f"new{{k}}.txt").write_text("new")
            print(k, flush=True)
            time.sleep(0.05)
""")


@pytest.mark.parametrize("helper", ["swapped_folder", "atomic_folder"])
def test_killed_run_leaves_the_old_set_whole_and_the_next_run_cleans_up(tmp_path, helper):
    """Bug caught: a folder output rebuilt in place (old files removed, new ones written one
    by one), so that kill -9 halfway leaves a mix of new and old files; and temporaries of a
    killed run that the next run never removes. Expected: after kill -9 the output is the
    old set, byte for byte; after the next run it is the new set and nothing else lies beside
    it."""
    out = tmp_path / "out"
    with (swapped_folder if helper == "swapped_folder" else atomic_folder)(out) as first:
        for k in range(3):
            (first / f"old{k}.txt").write_text("old")
    before = _hashes(out)
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER.format(helper=helper),
                             str(out)], stdout=subprocess.PIPE, text=True)
    for _ in range(5):                      # five new files written, 45 to go
        proc.stdout.readline()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert _hashes(out) == before           # the old set, whole
    left = [p.name for p in tmp_path.iterdir() if p.name != "out"]
    assert left, "the killed run's unfinished folder is expected beside the output"
    with (swapped_folder if helper == "swapped_folder" else atomic_folder)(out) as again:
        (again / "new.txt").write_text("new")
    assert _hashes(out) == {"new.txt": hashlib.sha256(b"new").hexdigest()}
    beside = sorted(p.name for p in tmp_path.iterdir() if p.name != "out")
    # only the current generation (the link's target) remains beside a swapped folder
    assert beside == ([os.readlink(out)] if helper == "swapped_folder" else [])


def test_swap_replaces_an_earlier_real_folder(tmp_path):
    """An output folder written by an earlier version (a real folder, not a link) is set
    aside whole and replaced by the new generation; nothing of it remains."""
    out = tmp_path / "demo"
    out.mkdir()
    (out / "plan.json").write_text("old")
    with swapped_folder(out) as new:
        (new / "plan.json").write_text("new")
    assert out.is_symlink() and (out / "plan.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["demo", os.readlink(out)])


def test_swap_interrupted_in_the_block_keeps_the_old_set(tmp_path):
    """An error (or Ctrl-C) inside the block: the new generation is removed, the old set
    stays."""
    out = tmp_path / "demo"
    with swapped_folder(out) as new:
        (new / "a").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with swapped_folder(out) as new:
            (new / "a").write_text("new")
            raise KeyboardInterrupt
    assert (out / "a").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["demo", os.readlink(out)])


@pytest.mark.slow
def test_demo_killed_midway_leaves_the_earlier_demo_whole(tmp_path):
    """The demo itself: a complete earlier demo, then a second one killed with SIGKILL while
    it measures: the folder still holds the first demo, byte for byte, and its records'
    paths (the phantom they name) exist."""
    out = tmp_path / "demo"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    subprocess.run([sys.executable, "-m", "tareplanner", "demo", "--out", str(out), "--quiet"],
                   check=True, capture_output=True, env=env, timeout=600)
    before = _hashes(out)
    proc = subprocess.Popen([sys.executable, "-m", "tareplanner", "demo", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env)
    while not proc.stdout.readline().startswith("2/4"):
        pass
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert _hashes(out) == before
    import json
    measurement = json.loads((out / "measurement.json").read_text())
    assert Path(measurement["inputs"]["ct"]["source"]).is_dir()
