"""An image with its units, source and hash, as the readers and the MRML layer hand it on.

Kept apart from the readers so that measuring from images already in memory (Slicer volume
nodes) needs no DICOM library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import SimpleITK as sitk

#: units of emission images that TAREPlanner can use
COUNT_UNITS = ("CNTS", "{counts}", "counts")
ACTIVITY_UNITS = ("BQML", "Bq/ml", "Bq/mL")


@dataclass
class LoadedImage:
    """An image with what is known about it."""

    image: sitk.Image
    modality: str
    units: str
    source: str
    sha256: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def is_activity(self) -> bool:
        return self.units in ACTIVITY_UNITS

    @property
    def is_counts(self) -> bool:
        return self.units in COUNT_UNITS
