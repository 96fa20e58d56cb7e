"""Writing CT, NM (multi-frame SPECT) and PET image series with pydicom.

Used by the synthetic patient; the same writers export images for other systems. Every
series gets deterministic UIDs when a ``uid_seed`` is given (reproducible phantoms).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (CTImageStorage, ExplicitVRLittleEndian, NuclearMedicineImageStorage,
                         PositronEmissionTomographyImageStorage, RTDoseStorage, generate_uid)

from .. import __version__

UID_ROOT = "1.2.826.0.1.3680043.10.1524."  # pydicom's prefix space, organisation sub-root


@dataclass
class SeriesInfo:
    """Patient, study and series attributes shared by the writers."""

    patient_name: str = "TAREPLANNER^SYNTHETIC"
    patient_id: str = "SYNTH-001"
    study_uid: str = ""
    frame_of_reference_uid: str = ""
    series_uid: str = ""
    series_description: str = ""
    series_number: int = 1
    series_datetime: datetime | None = None
    acquisition_datetime: datetime | None = None
    extra: dict = field(default_factory=dict)


def make_uid(*entropy) -> str:
    """A UID, deterministic when ``entropy`` is given."""
    return generate_uid(prefix=UID_ROOT, entropy_srcs=[str(e) for e in entropy] or None)


def _dt(value: datetime | None) -> tuple[str, str]:
    if value is None:
        return "", ""
    return value.strftime("%Y%m%d"), value.strftime("%H%M%S.%f")[:13]


def _base(info: SeriesInfo, sop_class: str, sop_uid: str, modality: str) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID_ROOT + "1"
    meta.ImplementationVersionName = f"TAREPLANNER{__version__}"[:16]
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.Modality = modality
    ds.PatientName = info.patient_name
    ds.PatientID = info.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.StudyInstanceUID = info.study_uid
    ds.SeriesInstanceUID = info.series_uid
    ds.FrameOfReferenceUID = info.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.StudyID = "1"
    ds.SeriesNumber = info.series_number
    ds.SeriesDescription = info.series_description
    ds.Manufacturer = "TAREPlanner"
    ds.ManufacturerModelName = "synthetic"
    ds.SoftwareVersions = __version__
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.StudyDate, ds.StudyTime = _dt(info.series_datetime)
    ds.SeriesDate, ds.SeriesTime = _dt(info.series_datetime)
    ds.AcquisitionDate, ds.AcquisitionTime = _dt(info.acquisition_datetime)
    ds.ContentDate, ds.ContentTime = _dt(info.series_datetime)
    stamp = info.series_datetime or info.acquisition_datetime
    if stamp is not None and stamp.utcoffset() is not None:
        minutes = int(stamp.utcoffset().total_seconds() // 60)
        ds.TimezoneOffsetFromUTC = f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}" \
                                   f"{abs(minutes) % 60:02d}"
    ds.PatientPosition = "FFS"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    for key, value in info.extra.items():
        setattr(ds, key, value)
    return ds


def _geometry(image: sitk.Image):
    direction = np.array(image.GetDirection()).reshape(3, 3)
    if not np.allclose(direction, np.eye(3), atol=1e-6):
        raise ValueError("the writers take axial images with identity direction")
    return image.GetSpacing(), image.GetOrigin(), image.GetSize()


def _axial_slice_geometry(ds: Dataset, origin, spacing, size, k: int) -> None:
    """Position, orientation, spacing and size of axial slice ``k`` of a volume."""
    z = origin[2] + k * spacing[2]
    ds.ImagePositionPatient = [f"{v:.4f}" for v in (origin[0], origin[1], z)]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SliceLocation = f"{z:.4f}"
    ds.PixelSpacing = [f"{spacing[1]:.6g}", f"{spacing[0]:.6g}"]
    ds.SliceThickness = f"{spacing[2]:.6g}"
    ds.Rows, ds.Columns = size[1], size[0]


def _save(ds: Dataset, path: Path) -> None:
    ds.save_as(path, enforce_file_format=True)


def write_ct_series(image: sitk.Image, folder: str | Path, info: SeriesInfo,
                    uid_seed: str | None = None) -> list[Path]:
    """One CT Image Storage file per slice; HU stored unsigned with intercept -1024."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    spacing, origin, size = _geometry(image)
    hu = sitk.GetArrayFromImage(image)
    stored = np.clip(np.round(hu) + 1024, 0, 65535).astype(np.uint16)
    paths = []
    for k in range(size[2]):
        uid = make_uid(uid_seed, info.series_uid, k) if uid_seed else make_uid()
        ds = _base(info, CTImageStorage, uid, "CT")
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.InstanceNumber = k + 1
        _axial_slice_geometry(ds, origin, spacing, size, k)
        ds.PixelRepresentation = 0
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
        ds.KVP = 120
        ds.PixelData = stored[k].tobytes()
        path = folder / f"CT{k + 1:04d}.dcm"
        _save(ds, path)
        paths.append(path)
    return paths


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


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
        item.RadionuclideCodeSequence = Sequence([_code(*RADIONUCLIDE_CODES[nuclide])])
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
    spacing, origin, size = _geometry(image)
    counts = sitk.GetArrayFromImage(image).astype(np.float64)
    top = float(counts.max()) if counts.size else 0.0
    slope = 1.0 if top <= 65535 else top / 65535.0
    stored = np.clip(np.round(counts / slope), 0, 65535).astype(np.uint16)
    uid = make_uid(uid_seed, info.series_uid, "nm") if uid_seed else make_uid()
    ds = _base(info, NuclearMedicineImageStorage, uid, "NM")
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
    ds.PixelSpacing = [f"{spacing[1]:.6g}", f"{spacing[0]:.6g}"]
    ds.SliceThickness = f"{spacing[2]:.6g}"
    ds.SpacingBetweenSlices = f"{spacing[2]:.6g}"
    ds.Rows, ds.Columns = size[1], size[0]
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
    rwvm.MeasurementUnitsCodeSequence = Sequence([_code("{counts}", "UCUM", "Counts")])
    rwvm.RealWorldValueIntercept = 0.0
    rwvm.RealWorldValueSlope = float(slope)
    rwvm.RealWorldValueFirstValueMapped = 0
    rwvm.RealWorldValueLastValueMapped = 65535
    ds.RealWorldValueMappingSequence = Sequence([rwvm])
    ds.PixelData = stored.tobytes()
    _save(ds, path)
    return path


def write_pet_series(image: sitk.Image, folder: str | Path, info: SeriesInfo, *, nuclide: str,
                     radiopharmaceutical: str, administered_bq: float, administration: datetime,
                     half_life_s: float, frame_duration_s: float = 1200.0,
                     uid_seed: str | None = None) -> list[Path]:
    """One PET Image Storage file per slice, Units BQML, decay corrected to START;
    int16 pixels with a per-slice Rescale Slope."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    spacing, origin, size = _geometry(image)
    values = sitk.GetArrayFromImage(image).astype(np.float64)
    paths = []
    for k in range(size[2]):
        plane = values[k]
        peak = float(np.abs(plane).max())
        slope = peak / 32767.0 if peak > 0 else 1.0
        uid = make_uid(uid_seed, info.series_uid, k) if uid_seed else make_uid()
        ds = _base(info, PositronEmissionTomographyImageStorage, uid, "PT")
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
        _axial_slice_geometry(ds, origin, spacing, size, k)
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = 0
        ds.RescaleSlope = f"{slope:.8g}"
        ds.RadiopharmaceuticalInformationSequence = _radiopharmaceutical(
            radiopharmaceutical, nuclide, administered_bq, administration, half_life_s)
        stored = np.clip(np.round(plane / float(ds.RescaleSlope)), -32768, 32767).astype(np.int16)
        ds.PixelData = stored.tobytes()
        path = folder / f"PT{k + 1:04d}.dcm"
        _save(ds, path)
        paths.append(path)
    return paths


def write_rt_dose(dose_gy: sitk.Image, path: str | Path, info: SeriesInfo, *,
                  summation: str = "PLAN", comment: str = "") -> Path:
    """An RT Dose (multi-frame, Gy, 32-bit unsigned with Dose Grid Scaling) in the frame of
    reference and study of ``info`` (those of the planning CT), readable by TPSs, SlicerRT
    and plastimatch. Frames are axial planes at Grid Frame Offset Vector from the first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    spacing, origin, size = _geometry(dose_gy)
    values = np.clip(sitk.GetArrayFromImage(dose_gy).astype(np.float64), 0, None)
    peak = float(values.max()) if values.size else 0.0
    scaling = peak / (2 ** 32 - 1) if peak > 0 else 1.0
    stored = np.round(values / scaling).astype(np.uint32)
    ds = _base(info, RTDoseStorage, make_uid(), "RTDOSE")
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
    ds.PixelSpacing = [f"{spacing[1]:.6g}", f"{spacing[0]:.6g}"]
    ds.SliceThickness = f"{spacing[2]:.6g}"
    ds.Rows, ds.Columns = size[1], size[0]
    ds.DoseUnits = "GY"
    ds.DoseType = "PHYSICAL"
    ds.DoseSummationType = summation
    ds.DoseGridScaling = f"{scaling:.10g}"
    ds.DoseComment = comment[:64]
    ds.PixelData = stored.tobytes()
    _save(ds, path)
    return path


def dicom_identity(ct_files) -> dict:
    """Patient, study and frame of reference of a CT series (read from its first file's
    header): what an RT Dose or SEG of that CT must reference."""
    import pydicom
    files = [f for f in ct_files if f]
    if not files:
        raise ValueError("DICOM CT: no files")
    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    return {"patient_name": str(ds.get("PatientName", "")),
            "patient_id": str(ds.get("PatientID", "")),
            "study_instance_uid": str(ds.get("StudyInstanceUID", "")),
            "frame_of_reference_uid": str(ds.get("FrameOfReferenceUID", ""))}


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
        info = SeriesInfo(patient_name=identity.get("patient_name") or "",
                          patient_id=identity.get("patient_id") or "",
                          study_uid=identity["study_instance_uid"],
                          frame_of_reference_uid=identity["frame_of_reference_uid"],
                          series_uid=make_uid(), series_description=f"TAREPlanner {name} dose",
                          series_number=number)
        written.append(write_rt_dose(image, Path(folder) / f"rtdose_{name}.dcm", info,
                                     summation=summation, comment=f"TAREPlanner {name} dose"))
    return written
