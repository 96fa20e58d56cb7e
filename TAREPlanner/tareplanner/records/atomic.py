"""Atomic file writing: write to a temporary file beside the target, then rename.

A reader never sees a partial target: it is either absent, the earlier version, or the new
one. The temporary name holds the writer's process id (``.NAME.PID.XXXX.tmp``); a process
killed mid-write leaves its temporary behind, and the next write of the same target removes
the temporaries of writers that no longer run.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ..errors import OutputPathError


class OutputExistsError(FileExistsError):
    """The output exists and overwriting was not asked for."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user
        return True
    return True


def remove_stale_temporaries(path: Path) -> None:
    """Remove ``.NAME.PID.*.tmp`` beside ``path`` left by writers that were killed."""
    prefix = f".{path.name}."
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return
    for entry in entries:
        if not (entry.name.startswith(prefix) and entry.name.endswith(".tmp")):
            continue
        pid = entry.name[len(prefix):].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                try:
                    entry.unlink()
                except OSError:
                    pass


def _output_error(path: Path, exc: OSError, field: str) -> OutputPathError:
    return OutputPathError(field, str(path), "a file path in a writable folder",
                           exc.strerror or type(exc).__name__)


def _prepare(path: Path, field: str) -> None:
    """Create the parent folder; named errors when ``path`` cannot be a file there."""
    if "\x00" in str(path):
        raise OutputPathError(field, str(path), "a path without NUL characters")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _output_error(path.parent, exc, field) from None
    remove_stale_temporaries(path)


@contextmanager
def atomic_path(path: str | Path, overwrite: bool = False,
                field: str = "output") -> Iterator[Path]:
    """A temporary file beside ``path`` to write to; renamed onto ``path`` when the block
    ends without error, removed otherwise. ``field`` names the output in errors."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(field, str(path), "a file path, not a folder")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; use --force to overwrite it")
    _prepare(path, field)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                                   dir=path.parent)
    except OSError as exc:
        raise _output_error(path, exc, field) from None
    os.close(fd)
    try:
        yield Path(tmp)
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise _output_error(path, exc, field) from None
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | Path, text: str, overwrite: bool = False,
                      field: str = "output") -> Path:
    """Write ``text`` to ``path`` so that readers never see a partial file."""
    with atomic_path(path, overwrite, field) as tmp:
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:  # a full disk, a quota
            raise _output_error(Path(path), exc, field) from None
    return Path(path)


def write_json_atomic(path: str | Path, document: Any, overwrite: bool = False,
                      field: str = "output") -> Path:
    """Write ``document`` as JSON (no NaN or Infinity: they are not JSON)."""
    try:
        text = json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    except ValueError as exc:
        raise ValueError(f"{path}: the document holds a value that is not JSON ({exc})") \
            from None
    return write_text_atomic(path, text, overwrite=overwrite, field=field)


@contextmanager
def atomic_folder(path: str | Path, field: str = "--out") -> Iterator[Path]:
    """A temporary folder beside ``path`` to fill; it replaces ``path`` (an earlier folder of
    that name is removed) when the block ends without error, and is removed otherwise. The
    caller decides beforehand whether replacing is allowed."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(field, str(path), "a folder, not a file")
    _prepare(path, field)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                                    dir=path.parent))
    except OSError as exc:
        raise _output_error(path, exc, field) from None
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
