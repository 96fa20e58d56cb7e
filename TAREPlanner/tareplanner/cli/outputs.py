"""Where the commands may write.

A file output (``plan -o``, ``report -o``, ``directive -o``, ``administer -o``, ``measure -o``
and ``--measurement-output``) goes into a folder that exists: a missing folder is refused
(exit 2, naming the option, the path and the folder), not made, so that a mistyped folder
name does not leave a record where nobody looks for it. A folder output (``demo --out``,
``dose --out``, ``batch --out``, ``phantom OUT``) is the command's own folder: it is made,
with any missing parent folders.

The check runs before anything is read or computed, so a refusal costs nothing. A fault met
while writing (no permission, a full disk) is reported by :func:`output_fault` as one line,
exit status 2; the writers are atomic, so nothing is left of the output.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import OutputPathError

ALLOWED = "a file in an existing folder"


def check_output_file(path: str | Path, field: str) -> Path:
    """``path`` as a :class:`~pathlib.Path` when it can be written as a file: not a folder,
    and its folder exists; :class:`OutputPathError` naming ``field`` otherwise. (A NUL
    character is named by the atomic writer.)"""
    path = Path(path)
    if "\x00" in str(path):
        return path
    if path.is_dir():
        raise OutputPathError(field, str(path), "a file path, not a folder")
    folder = path.parent
    if folder.is_dir():
        return path
    blocking = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()),
                    None)
    if blocking is not None:
        raise OutputPathError(field, str(path), ALLOWED, f"{blocking} is a file, not a folder")
    raise OutputPathError(field, str(path), ALLOWED,
                          f"the folder {folder} does not exist: a file output makes no "
                          "folder, make it first")


def output_fault(exc: OSError, output: str | None = None) -> OutputPathError:
    """An operating-system error met while writing (no permission, no space left, a quota,
    a read-only file system) as a named error: the path, the system's reason and what is
    needed. The writers remove their temporary files on the way out, so nothing is left."""
    path = exc.filename if exc.filename is not None else (output or "the output")
    errno = exc.errno
    if errno is None:  # re-raised by a library with the number only in its text
        found = re.search(r"\[Errno (\d+)\]", str(exc))
        errno = int(found.group(1)) if found else None
    text = str(exc).strip()
    reason = (exc.strerror or (os.strerror(errno) if errno else "")
              or (text.splitlines()[0] if text else type(exc).__name__))
    return OutputPathError("output", str(path), "a folder that can be written, with free space",
                           reason)


__all__ = ["check_output_file", "output_fault"]
