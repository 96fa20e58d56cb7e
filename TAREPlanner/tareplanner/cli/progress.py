"""Progress lines of the long commands (``measure``, ``dose``, ``batch``, ``demo``).

Step lines go to standard error, so that standard output keeps only what a command answers
(a case, a summary, a table) and can be piped. They are written only when standard error is
a terminal and ``--quiet`` was not given: a script, a log file or a test sees nothing.
``TAREPLANNER_PROGRESS=1`` forces them on (a terminal multiplexer that hides the terminal),
``TAREPLANNER_PROGRESS=0`` off.

Each line names the step and the time since the command started::

    [measure   0.4 s] reading the CT
    [measure   1.2 s] registering CBCT 1/2 (right hepatic)
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

#: environment variable forcing the progress lines on (1) or off (0)
ENVIRONMENT = "TAREPLANNER_PROGRESS"


def wanted(quiet: bool = False, stream: TextIO | None = None) -> bool:
    """Whether progress lines are written: not ``quiet``, and standard error a terminal
    (or the environment variable set to 1)."""
    if quiet:
        return False
    forced = os.environ.get(ENVIRONMENT, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced by an object without isatty
        return False


class Progress:
    """Step lines of one command on standard error (nothing when not :func:`wanted`)."""

    def __init__(self, command: str, *, quiet: bool = False, stream: TextIO | None = None):
        self.command = command
        self.stream = stream
        self.enabled = wanted(quiet, stream)
        self.start = time.perf_counter()

    def step(self, text: str) -> None:
        """One line: the command, the seconds since it started, ``text``."""
        if not self.enabled:
            return
        stream = sys.stderr if self.stream is None else self.stream
        elapsed = time.perf_counter() - self.start
        try:
            stream.write(f"[{self.command} {elapsed:5.1f} s] {text}\n")
            stream.flush()
        except (OSError, ValueError):  # standard error closed: progress is not worth failing
            self.enabled = False

    def bar(self, done: int, total: int, text: str = "") -> None:
        """A one-line bar redrawn in place (``\\r``), ended on the last item."""
        if not self.enabled or total <= 0:
            return
        stream = sys.stderr if self.stream is None else self.stream
        filled = "#" * int(30 * done / total)
        try:
            stream.write(f"\r[{filled:<30}] {done}/{total} {text}"
                         + ("\n" if done >= total else ""))
            stream.flush()
        except (OSError, ValueError):
            self.enabled = False

    def end_bar(self) -> None:
        """End an unfinished bar (an interrupted batch) so that the next line starts clean."""
        if self.enabled:
            stream = sys.stderr if self.stream is None else self.stream
            try:
                stream.write("\n")
                stream.flush()
            except (OSError, ValueError):
                self.enabled = False


#: no progress at all (library calls)
SILENT = Progress.__new__(Progress)
SILENT.command, SILENT.stream, SILENT.enabled, SILENT.start = "", None, False, 0.0


def registration_steps(progress: Progress, names: list[str]):
    """A context manager announcing each CBCT registration (in the order of ``names``, the
    positions with a CBCT) as a step line."""
    from ..imaging.registration import observe_registrations

    count = {"n": 0}

    def announce() -> None:
        k = count["n"]
        count["n"] += 1
        name = names[k] if k < len(names) else f"{k + 1}"
        progress.step(f"registering CBCT {k + 1}/{len(names)} ({name}) to the CT")

    return observe_registrations(announce)


__all__ = ["ENVIRONMENT", "Progress", "SILENT", "registration_steps", "wanted"]
