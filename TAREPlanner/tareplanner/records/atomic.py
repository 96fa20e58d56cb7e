"""Atomic file writing: write to a temporary file beside the target, then rename."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


class OutputExistsError(FileExistsError):
    """The output exists and overwriting was not asked for."""


@contextmanager
def atomic_path(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """A temporary file beside ``path`` to write to; renamed onto ``path`` when the block
    ends without error, removed otherwise."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; use --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | Path, text: str, overwrite: bool = False) -> Path:
    """Write ``text`` to ``path`` so that readers never see a partial file."""
    with atomic_path(path, overwrite) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    return Path(path)


def write_json_atomic(path: str | Path, document: Any, overwrite: bool = False) -> Path:
    return write_text_atomic(path, json.dumps(document, indent=2, ensure_ascii=False) + "\n",
                             overwrite=overwrite)


@contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """A temporary folder beside ``path`` to fill; it replaces ``path`` (an earlier folder of
    that name is removed) when the block ends without error, and is removed otherwise. The
    caller decides beforehand whether replacing is allowed."""
    import shutil
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
