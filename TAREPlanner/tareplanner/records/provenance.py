"""Software provenance for records: versions of this package and its dependencies."""

from __future__ import annotations

import platform
from importlib import metadata

from .. import __version__

DEPENDENCIES = ("numpy", "scipy", "SimpleITK", "pydicom")


def software_versions() -> dict:
    """Name and version of tareplanner, Python and the installed dependencies."""
    versions = {"name": "tareplanner", "version": __version__,
                "python": platform.python_version()}
    for name in DEPENDENCIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
