"""Optional libraries: which feature needs which, and which are missing here.

Inside 3D Slicer only numpy, scipy, SimpleITK and vtk can be relied on. Registration,
segmentation helpers, LSF/TNR, planning and voxel dosimetry need nothing else; the PDF report,
DICOM reading and export and RTSTRUCT import do. The Slicer module asks these questions on
first use and offers to install what is missing (``slicer.util.pip_install``); the command line
gets them from its pip install.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Requirement:
    distribution: str
    module: str
    minimum: str | None
    needed_for: str

    @property
    def specifier(self) -> str:
        return f"{self.distribution}>={self.minimum}" if self.minimum else self.distribution


#: what the Slicer module offers to install, with the features that need each
SLICER_REQUIREMENTS = (
    Requirement("pydicom", "pydicom", "3.0.1", "DICOM reading, RT Dose and SEG export"),
    Requirement("highdicom", "highdicom", None, "DICOM SEG export and import"),
    Requirement("matplotlib", "matplotlib", None, "PDF report, RTSTRUCT import"),
    Requirement("tzdata", "tzdata", None,
                "time zones for TheraSphere calibration times (systems without a zone database)"),
)


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("."):
        match = re.match(r"\d+", piece)
        if not match:
            break
        parts.append(int(match.group()))
    return tuple(parts)


def _zone_database_available() -> bool:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    try:
        ZoneInfo("America/New_York")
    except ZoneInfoNotFoundError:
        return False
    return True


def is_satisfied(requirement: Requirement) -> bool:
    if requirement.distribution == "tzdata":
        return _zone_database_available()
    try:
        if importlib.util.find_spec(requirement.module) is None:
            return False
    except (ImportError, ValueError):       # a broken or blocked installation
        return False
    if requirement.minimum is None:
        return True
    try:
        installed = importlib.metadata.version(requirement.distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return _version_tuple(installed) >= _version_tuple(requirement.minimum)


def missing(requirements=SLICER_REQUIREMENTS) -> list[Requirement]:
    """The requirements that are not importable here, or older than their minimum."""
    return [r for r in requirements if not is_satisfied(r)]


def install_message(missing_requirements) -> str:
    """The question the Slicer module asks before installing (one line per package)."""
    lines = ["TAREPlanner needs these Python packages, which this Slicer does not have yet:", ""]
    lines += [f"  {r.specifier}: {r.needed_for}" for r in missing_requirements]
    lines += ["", "Install them now (pip, a few minutes)? Without them, registration, "
              "segmentation, LSF/TNR, planning and voxel dosimetry still work; the features "
              "listed do not."]
    return "\n".join(lines)


def require(*distributions: str) -> None:
    """Raise a clear ImportError naming the package and what to do, if one is missing."""
    for r in SLICER_REQUIREMENTS:
        if r.distribution in distributions and not is_satisfied(r):
            raise ImportError(f"{r.specifier} is needed for {r.needed_for}; install it with "
                              f"'pip install \"{r.specifier}\"' (in Slicer: "
                              f"slicer.util.pip_install(\"{r.specifier}\"), or reopen the "
                              "TAREPlanner module and accept the installation)")
