"""The one way the web application reaches files: paths inside the ``--data`` folder.

Every download, every folder the page lists and every folder it reads or writes is resolved
here first. :func:`resolve_inside` follows symbolic links and ``..`` before it compares, so
neither a link nor a relative part can lead out of the folder; it refuses absolute paths,
percent-encoded separators and dots, backslashes, NUL bytes and paths outside the folder with
:class:`OutsideDataFolderError` (a ValueError naming the field, the value and what is
allowed). It imports nothing of the web toolkit, so it is tested with the default test run.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

from ..errors import FieldValueError

#: the subfolder of the data folder that the Save step writes into
OUTPUT_SUBFOLDER = "output"


class OutsideDataFolderError(FieldValueError):
    """A requested path that is not a file or folder inside the data folder."""


def _refuse(field: str, value: str, why: str) -> OutsideDataFolderError:
    return OutsideDataFolderError(field, value, f"a path relative to the data folder, inside "
                                                f"it ({why})")


def resolve_inside(data_dir: str | os.PathLike, requested: str, *, field: str = "path",
                   kind: str = "file") -> Path:
    """The real path of ``requested`` (relative to ``data_dir``) if it exists inside
    ``data_dir`` and is a ``kind`` ('file', 'dir' or 'any'); OutsideDataFolderError
    otherwise. ``requested`` is taken as given: a URL path is decoded once by the server
    before it gets here, so a '%' sequence still present here is refused, not decoded
    again."""
    root = Path(data_dir).resolve(strict=True)
    text = str(requested)
    if not text or "\x00" in text:
        raise _refuse(field, text, "an empty path or a NUL byte is not")
    if "%" in text and unquote(text) != text:
        raise _refuse(field, text, "percent-encoded characters are not decoded")
    if "\\" in text:
        raise _refuse(field, text, "backslashes are not")
    parts = PurePosixPath(text)
    if parts.is_absolute() or text.startswith("~"):
        raise _refuse(field, text, "absolute paths are not")
    if ".." in parts.parts:
        raise _refuse(field, text, "'..' is not")
    try:
        target = (root / parts).resolve(strict=True)
    except (OSError, RuntimeError):
        raise _refuse(field, text, "it does not exist") from None
    if target != root and root not in target.parents:
        raise _refuse(field, text, "links leading out of it are not followed")
    if kind == "file" and not target.is_file():
        raise _refuse(field, text, "a file")
    if kind == "dir" and not target.is_dir():
        raise _refuse(field, text, "a folder")
    return target


def relative_name(data_dir: str | os.PathLike, path: str | os.PathLike) -> str:
    """``path`` (inside ``data_dir``) as the relative POSIX name the page and the download
    address use."""
    root = Path(data_dir).resolve(strict=True)
    return Path(path).resolve().relative_to(root).as_posix()


def list_folders(data_dir: str | os.PathLike, *, exclude: tuple[str, ...] = (OUTPUT_SUBFOLDER,),
                 depth: int = 3) -> list[str]:
    """Relative names of the folders inside ``data_dir`` (links leading out are left out),
    up to ``depth`` levels, for the page's folder choice."""
    root = Path(data_dir).resolve(strict=True)
    out = []
    for current, dirs, _ in os.walk(root):
        here = Path(current)
        level = len(here.relative_to(root).parts)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and
                         not (level == 0 and d in exclude))
        if level >= depth:
            dirs[:] = []
        for d in dirs:
            try:
                out.append(relative_name(root, resolve_inside(root, (here / d).relative_to(root)
                                                              .as_posix(), kind="dir")))
            except OutsideDataFolderError:
                continue
    return sorted(set(out))


def content_type(path: Path) -> str:
    kind, _ = mimetypes.guess_type(path.name)
    return kind or "application/octet-stream"
