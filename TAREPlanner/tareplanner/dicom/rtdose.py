"""DICOM RT Dose of a dose map, in the planning CT's study and frame of reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk
from pydicom.uid import RTDoseStorage

from .common import (SeriesInfo, axial_geometry, base_dataset, make_uid, plane_geometry, save,
                     series_info_in)


def write_rt_dose(dose_gy: sitk.Image, path: str | Path, info: SeriesInfo, *,
                  summation: str = "PLAN", comment: str = "") -> Path:
    """An RT Dose (multi-frame, Gy, 32-bit unsigned with Dose Grid Scaling) in the frame of
    reference and study of ``info`` (those of the planning CT), readable by TPSs, SlicerRT
    and plastimatch. Frames are axial planes at Grid Frame Offset Vector from the first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    spacing, origin, size = axial_geometry(dose_gy)
    values = np.clip(sitk.GetArrayFromImage(dose_gy).astype(np.float64), 0, None)
    peak = float(values.max()) if values.size else 0.0
    scaling = peak / (2 ** 32 - 1) if peak > 0 else 1.0
    stored = np.round(values / scaling).astype(np.uint32)
    ds = base_dataset(info, RTDoseStorage, make_uid(), "RTDOSE")
    ds.BitsAllocated = 32
    ds.BitsStored = 32
    ds.HighBit = 31
    ds.PixelRepresentation = 0
    ds.InstanceNumber = 1
    ds.NumberOfFrames = size[2]
    ds.FrameIncrementPointer = 0x3004000C  # Grid Frame Offset Vector
    ds.GridFrameOffsetVector = [f"{k * spacing[2]:.4f}" for k in range(size[2])]
    ds.ImagePositionPatient = [f"{v:.4f}" for v in origin]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    plane_geometry(ds, spacing, size)
    ds.DoseUnits = "GY"
    ds.DoseType = "PHYSICAL"
    ds.DoseSummationType = summation
    ds.DoseGridScaling = f"{scaling:.10g}"
    ds.DoseComment = comment[:64]
    ds.PixelData = stored.tobytes()
    save(ds, path)
    return path


def write_rt_doses(folder: str | Path, identity: dict, planned: sitk.Image,
                   delivered: sitk.Image | None = None) -> list[Path]:
    """RT Dose of the planned (summation PLAN) and delivered (RECORD) dose in the CT's study
    and frame of reference (``identity``: patient_name, patient_id, study_instance_uid,
    frame_of_reference_uid)."""
    written = []
    for name, image, summation, number in (("planned", planned, "PLAN", 900),
                                           ("delivered", delivered, "RECORD", 901)):
        if image is None:
            continue
        info = series_info_in(identity, series_description=f"TAREPlanner {name} dose",
                              series_number=number)
        written.append(write_rt_dose(image, Path(folder) / f"rtdose_{name}.dcm", info,
                                     summation=summation, comment=f"TAREPlanner {name} dose"))
    return written
