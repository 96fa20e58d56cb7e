"""Atomic file writing: write to a temporary file beside the target, then rename.

A reader never sees a partial target: it is either absent, the earlier version, or the new
one. The temporary name holds the writer's process id (``.NAME.PID.XXXX.tmp``); a process
killed mid-write leaves its temporary behind, and the next write of the same target removes
the temporaries of writers that no longer run.

A set of outputs whose records name each other's files by path (the demo's folder) is built
in a new generation folder beside the old one and swapped in whole: the output path is a
symbolic link to the current generation, replaced in one step (:func:`swapped_folder`).
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


def _usual_mode(folder: Path) -> None:
    """Give a folder made by mkdtemp (mode 700) the mode a plain mkdir would (777 less the
    umask), since it becomes the output folder."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)


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
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 600; the output gets a plain file's mode
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
    """A temporary folder beside ``path`` to fill; it replaces ``path`` when the block ends
    without error (the earlier folder of that name is first renamed aside whole, then
    removed, so that a run killed at any point never leaves a mix of old and new files), and
    is removed otherwise. The caller decides beforehand whether replacing is allowed."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(field, str(path), "a folder, not a file")
    _prepare(path, field)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                                    dir=path.parent))
    except OSError as exc:
        raise _output_error(path, exc, field) from None
    _usual_mode(tmp)
    try:
        yield tmp
        try:
            _replace_setting_aside(path, tmp, path.exists())
        except OSError as exc:
            raise _output_error(path, exc, field) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


GENERATION = "generation"


def _generation_prefix(path: Path) -> str:
    return f".{path.name}.{GENERATION}."


def remove_stale_generations(path: Path) -> None:
    """Remove the generation folders beside ``path`` (``.NAME.generation.PID.XXXX``) that
    ``path`` does not point to and whose writer no longer runs: what a killed run left."""
    prefix = _generation_prefix(path)
    current = Path(os.readlink(path)).name if path.is_symlink() else None
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(prefix) or entry.name == current:
            continue
        pid = entry.name[len(prefix):].split(".", 1)[0]
        if pid.isdigit() and (int(pid) == os.getpid() or _pid_alive(int(pid))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)


def _replace_setting_aside(path: Path, new: Path, folder_there: bool) -> None:
    """``new`` renamed onto ``path``; a real folder at ``path`` (``folder_there``) is first
    set aside whole (one rename) and removed after the swap, so ``path`` is never a mix."""
    if not folder_there:
        os.replace(new, path)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                                  dir=path.parent))
    os.replace(path, aside / path.name)
    os.replace(new, path)
    shutil.rmtree(aside, ignore_errors=True)


@contextmanager
def swapped_folder(path: str | Path, field: str = "--out") -> Iterator[Path]:
    """A new generation folder beside ``path`` (``.NAME.generation.PID.XXXX``) to fill with a
    whole set of outputs. When the block ends without error, ``path`` becomes a symbolic link
    to it in one step (a link renamed onto ``path``; an earlier real folder of that name is
    set aside first) and the previous generation is removed; on an error or an interrupt the
    new generation is removed and the old set stays as it was. A run killed outright (kill -9)
    leaves the old set whole and its unfinished generation, which the next run removes.
    Records written in the block name files by the generation's path, which stays valid for
    as long as it is the current one."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(field, str(path), "a folder, not a file")
    _prepare(path, field)
    remove_stale_generations(path)
    try:
        generation = Path(tempfile.mkdtemp(prefix=f"{_generation_prefix(path)}{os.getpid()}.",
                                           dir=path.parent))
    except OSError as exc:
        raise _output_error(path, exc, field) from None
    _usual_mode(generation)
    link = path.parent / f".{path.name}.{os.getpid()}.link.tmp"
    try:
        yield generation
        previous = (path.parent / os.readlink(path)) if path.is_symlink() else None
        try:
            os.symlink(generation.name, link)
            _replace_setting_aside(path, link, path.exists() and not path.is_symlink())
        except OSError as exc:
            raise _output_error(path, exc, field) from None
        if previous is not None and previous.name != generation.name \
                and previous.name.startswith(_generation_prefix(path)):
            shutil.rmtree(previous, ignore_errors=True)
    except BaseException:
        shutil.rmtree(generation, ignore_errors=True)
        if os.path.lexists(link):
            os.unlink(link)
        raise
