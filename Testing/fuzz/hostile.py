"""Helpers of the hostile-input suite: running the command, the sandbox, the outcome check.

Every command gets inputs under ``<sandbox>/in`` and writes under ``<sandbox>/out``; the
current folder is ``<sandbox>/cwd``. The outcome of a hostile input is either success or a
refusal: exit status 2, one line ``tareplanner: error: FIELD: got VALUE; allowed: ...`` on
stderr naming the field, no traceback, no new file in the output folder, nothing written
anywhere else in the sandbox.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, settings

#: examples per property; raise with TAREPLANNER_FUZZ_EXAMPLES for a longer search
EXAMPLES = int(os.environ.get("TAREPLANNER_FUZZ_EXAMPLES", "40"))
settings.register_profile(
    "fuzz", max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large])
FUZZ = settings.get_profile("fuzz")


@dataclass
class Outcome:
    code: int
    out: str
    err: str


def run_cli(argv: list[str]) -> Outcome:
    """``tareplanner ARGV`` in this process: exit status, stdout, stderr. An exception that
    escapes the command (a traceback for the user) fails the test at once."""
    from tareplanner.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse
            code = exc.code
    return Outcome(code, out.getvalue(), err.getvalue())


def snapshot(folder: Path) -> set[str]:
    """Every path under ``folder`` (files and folders, hidden ones included)."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.exists() else set()


class Sandbox:
    """A folder with in/, out/ and cwd/ (the current folder while a command runs)."""

    def __init__(self, root: Path):
        self.root = root
        self.inputs = root / "in"
        self.out = root / "out"
        self.cwd = root / "cwd"
        for folder in (self.inputs, self.out, self.cwd):
            folder.mkdir(parents=True, exist_ok=True)

    def write(self, name: str, content) -> Path:
        path = self.inputs / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8", errors="surrogatepass")
        else:
            path.write_text(json.dumps(content), encoding="utf-8")
        return path

    def run(self, argv: list) -> Outcome:
        """Run the command from cwd/; nothing may appear outside out/ (inputs excepted)."""
        before_in, before_cwd = snapshot(self.inputs), snapshot(self.cwd)
        previous = os.getcwd()
        os.chdir(self.cwd)
        try:
            outcome = run_cli(argv)
        finally:
            os.chdir(previous)
        assert snapshot(self.cwd) == before_cwd, "files written into the current folder"
        assert snapshot(self.inputs) == before_in, "files written beside the inputs"
        extra = {p.name for p in self.root.iterdir()} - {"in", "out", "cwd"}
        assert not extra, f"files written outside the output folder: {extra}"
        return outcome

    def clear_out(self) -> None:
        shutil.rmtree(self.out)
        self.out.mkdir()


def assert_refused(outcome: Outcome, *fragments: str, out_before: set[str] | None = None,
                   out: Path | None = None) -> None:
    """Exit 2, one line naming the field (every fragment appears in it), nothing new in
    ``out`` (compared with ``out_before``)."""
    lines = outcome.err.strip().splitlines()
    assert outcome.code == 2, (outcome.code, outcome.err[-2000:])
    assert len(lines) == 1, outcome.err
    assert lines[0].startswith("tareplanner"), lines[0]
    assert "error:" in lines[0] and "Traceback" not in outcome.err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    if out is not None:
        assert snapshot(out) == (out_before or set()), \
            f"left in the output folder: {snapshot(out) - (out_before or set())}"


def assert_named_error(outcome: Outcome, out: Path | None = None,
                       out_before: set[str] | None = None) -> None:
    """A refusal of the project's form: FIELD: got VALUE; allowed: WHAT (or, for a field
    the schema does not have, [WHERE: ]unknown field 'KEY'; [did you mean ...?] allowed:
    FIELDS)."""
    assert_refused(outcome, out=out, out_before=out_before)
    line = outcome.err.strip()
    assert ": got " in line and "; allowed: " in line \
        or "unknown field '" in line and " allowed: " in line \
        or "exists" in line \
        or "error: argument" in line or "required" in line, line



PYTHON = sys.executable
