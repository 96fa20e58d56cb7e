"""CT, NM (multi-frame SPECT) and PET image series with pydicom.

Used by the synthetic patient; the same writers export images for other systems. Every
series gets deterministic UIDs when a ``uid_seed`` is given (reproducible phantoms).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import (CTImageStorage, NuclearMedicineImageStorage,
                         PositronEmissionTomographyImageStorage)

from .common import (SeriesInfo, axial_geometry, axial_slice_geometry, base_dataset, code_item,
                     make_uid, plane_geometry, save)


def write_ct_series(image: sitk.Image, folder: str | Path, info: SeriesInfo,
                    uid_seed: str | None = None) -> list[Path]:
    """One CT Image Storage file per slice; HU stored unsigned with intercept -1024."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    spacing, origin, size = axial_geometry(image)
    hu = sitk.GetArrayFromImage(image)
    stored = np.clip(np.round(hu) + 1024, 0, 65535).astype(np.uint16)
    paths = []
    for k in range(size[2]):
        uid = make_uid(uid_seed, info.series_uid, k) if uid_seed else make_uid()
        ds = base_dataset(info, CTImageStorage, uid, "CT")
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.InstanceNumber = k + 1
        axial_slice_geometry(ds, origin, spacing, size, k)
        ds.PixelRepresentation = 0
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
        ds.KVP = 120
        ds.PixelData = stored[k].tobytes()
        path = folder / f"CT{k + 1:04d}.dcm"
        save(ds, path)
        paths.append(path)
    return paths


#: radionuclide codes (DICOM CID 18 / 4020, SNOMED-RT identifiers). Only codes checked
#: against the standard are listed; other nuclides are named in Radiopharmaceutical and by
#: their half-life.
RADIONUCLIDE_CODES = {
    "Tc-99m": ("C-163A8", "SRT", "^99m^Technetium"),
}


def _radiopharmaceutical(name: str, nuclide: str, total_dose: float, start: datetime | None,
                         half_life_s: float | None = None) -> Sequence:
    item = Dataset()
    item.Radiopharmaceutical = f"{name} ({nuclide})"
    if nuclide in RADIONUCLIDE_CODES:
        item.RadionuclideCodeSequence = Sequence([code_item(*RADIONUCLIDE_CODES[nuclide])])
    item.RadionuclideTotalDose = f"{total_dose:.6g}"
    if half_life_s is not None:
        item.RadionuclideHalfLife = f"{half_life_s:.6g}"
    if start is not None:
        item.RadiopharmaceuticalStartDateTime = start.strftime("%Y%m%d%H%M%S.%f%z")
        item.RadiopharmaceuticalStartTime = start.strftime("%H%M%S")
    return Sequence([item])


def write_nm_spect(image: sitk.Image, path: str | Path, info: SeriesInfo, *, nuclide: str,
                   radiopharmaceutical: str, administered_mbq: float,
                   administration: datetime | None, energy_window_kev: tuple[float, float],
                   uid_seed: str | None = None) -> Path:
    """A reconstructed SPECT as one multi-frame NM Image Storage file (counts).

    Frames are slices along the normal of the detector orientation (Slice Vector); the
    counts are stored as uint16 with a Real World Value Mapping to UCUM {counts}.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    spacing, origin, size = axial_geometry(image)
    counts = sitk.GetArrayFromImage(image).astype(np.float64)
    top = float(counts.max()) if counts.size else 0.0
    slope = 1.0 if top <= 65535 else top / 65535.0
    stored = np.clip(np.round(counts / slope), 0, 65535).astype(np.uint16)
    uid = make_uid(uid_seed, info.series_uid, "nm") if uid_seed else make_uid()
    ds = base_dataset(info, NuclearMedicineImageStorage, uid, "NM")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION"]
    ds.InstanceNumber = 1
    ds.NumberOfFrames = size[2]
    ds.FrameIncrementPointer = 0x00540080  # Slice Vector
    ds.SliceVector = list(range(1, size[2] + 1))
    ds.NumberOfSlices = size[2]
    ds.NumberOfEnergyWindows = 1
    ds.EnergyWindowVector = [1] * size[2]
    ds.NumberOfDetectors = 1
    ds.DetectorVector = [1] * size[2]
    ds.NumberOfRotations = 1
    ds.RotationVector = [1] * size[2]
    plane_geometry(ds, spacing, size)
    ds.SpacingBetweenSlices = f"{spacing[2]:.6g}"
    ds.PixelRepresentation = 0
    detector = Dataset()
    detector.ImagePositionPatient = [f"{v:.4f}" for v in origin]
    detector.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.DetectorInformationSequence = Sequence([detector])
    window = Dataset()
    limits = Dataset()
    limits.EnergyWindowLowerLimit = f"{energy_window_kev[0]:.5g}"
    limits.EnergyWindowUpperLimit = f"{energy_window_kev[1]:.5g}"
    window.EnergyWindowRangeSequence = Sequence([limits])
    window.EnergyWindowName = nuclide
    ds.EnergyWindowInformationSequence = Sequence([window])
    ds.RadiopharmaceuticalInformationSequence = _radiopharmaceutical(
        radiopharmaceutical, nuclide, administered_mbq, administration)
    rwvm = Dataset()
    rwvm.LUTExplanation = "counts"
    rwvm.LUTLabel = "COUNTS"
    rwvm.MeasurementUnitsCodeSequence = Sequence([code_item("{counts}", "UCUM", "Counts")])
    rwvm.RealWorldValueIntercept = 0.0
    rwvm.RealWorldValueSlope = float(slope)
    rwvm.RealWorldValueFirstValueMapped = 0
    rwvm.RealWorldValueLastValueMapped = 65535
    ds.RealWorldValueMappingSequence = Sequence([rwvm])
    ds.PixelData = stored.tobytes()
    save(ds, path)
    return path


def write_pet_series(image: sitk.Image, folder: str | Path, info: SeriesInfo, *, nuclide: str,
                     radiopharmaceutical: str, administered_bq: float, administration: datetime,
                     half_life_s: float, frame_duration_s: float = 1200.0,
                     uid_seed: str | None = None) -> list[Path]:
    """One PET Image Storage file per slice, Units BQML, decay corrected to START;
    int16 pixels with a per-slice Rescale Slope."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    spacing, origin, size = axial_geometry(image)
    values = sitk.GetArrayFromImage(image).astype(np.float64)
    paths = []
    for k in range(size[2]):
        plane = values[k]
        peak = float(np.abs(plane).max())
        slope = peak / 32767.0 if peak > 0 else 1.0
        uid = make_uid(uid_seed, info.series_uid, k) if uid_seed else make_uid()
        ds = base_dataset(info, PositronEmissionTomographyImageStorage, uid, "PT")
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.InstanceNumber = k + 1
        ds.ImageIndex = k + 1
        ds.NumberOfSlices = size[2]
        ds.SeriesType = ["STATIC", "IMAGE"]
        ds.Units = "BQML"
        ds.CountsSource = "EMISSION"
        ds.DecayCorrection = "START"
        ds.CorrectedImage = ["ATTN", "DECY", "SCAT", "DTIM"]
        ds.DecayFactor = "1"
        ds.FrameReferenceTime = "0"
        ds.ActualFrameDuration = int(frame_duration_s * 1000)
        axial_slice_geometry(ds, origin, spacing, size, k)
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = 0
        ds.RescaleSlope = f"{slope:.8g}"
        ds.RadiopharmaceuticalInformationSequence = _radiopharmaceutical(
            radiopharmaceutical, nuclide, administered_bq, administration, half_life_s)
        stored = np.clip(np.round(plane / float(ds.RescaleSlope)), -32768, 32767).astype(np.int16)
        ds.PixelData = stored.tobytes()
        path = folder / f"PT{k + 1:04d}.dcm"
        save(ds, path)
        paths.append(path)
    return paths
