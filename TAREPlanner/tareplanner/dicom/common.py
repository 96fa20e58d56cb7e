"""Shared parts of the DICOM writers: UIDs, the patient/study/series header, plane geometry,
the planning CT's datasets and the study and frame of reference that an RT Dose or SEG of that
CT must reference."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

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


def base_dataset(info: SeriesInfo, sop_class: str, sop_uid: str, modality: str) -> Dataset:
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


def axial_geometry(image: sitk.Image):
    direction = np.array(image.GetDirection()).reshape(3, 3)
    if not np.allclose(direction, np.eye(3), atol=1e-6):
        raise ValueError("the writers take axial images with identity direction")
    return image.GetSpacing(), image.GetOrigin(), image.GetSize()


def axial_slice_geometry(ds: Dataset, origin, spacing, size, k: int) -> None:
    """Position, orientation, spacing and size of axial slice ``k`` of a volume."""
    z = origin[2] + k * spacing[2]
    ds.ImagePositionPatient = [f"{v:.4f}" for v in (origin[0], origin[1], z)]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SliceLocation = f"{z:.4f}"
    plane_geometry(ds, spacing, size)


def plane_geometry(ds: Dataset, spacing, size) -> None:
    """Pixel spacing, slice thickness, rows and columns of axial planes."""
    ds.PixelSpacing = [f"{spacing[1]:.6g}", f"{spacing[0]:.6g}"]
    ds.SliceThickness = f"{spacing[2]:.6g}"
    ds.Rows, ds.Columns = size[1], size[0]


def save(ds: Dataset, path: Path) -> None:
    ds.save_as(path, enforce_file_format=True)


def code_item(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


#: the header attributes that say whose image a series is, of which study and series, and in
#: which frame of reference, by the keys the readers' metadata and the records use
#: (PS3.3 C.7.1.1 Patient, C.7.2.1 General Study, C.7.3.1 General Series, C.7.4.1 Frame of
#: Reference, C.7.5.1 General Equipment, C.12.1 SOP Common)
HEADER_KEYWORDS = {
    "patient_name": "PatientName", "patient_id": "PatientID",
    "patient_birth_date": "PatientBirthDate", "patient_sex": "PatientSex",
    "study_instance_uid": "StudyInstanceUID", "study_date": "StudyDate",
    "study_time": "StudyTime", "study_id": "StudyID", "accession_number": "AccessionNumber",
    "study_description": "StudyDescription", "referring_physician_name": "ReferringPhysicianName",
    "series_instance_uid": "SeriesInstanceUID", "series_description": "SeriesDescription",
    "frame_of_reference_uid": "FrameOfReferenceUID", "institution_name": "InstitutionName",
    "sop_class_uid": "SOPClassUID"}


def header_text(ds, keys) -> dict[str, str]:
    """The ``keys`` of :data:`HEADER_KEYWORDS` read from ``ds`` as text ('' when absent or
    empty)."""
    return {key: str(ds.get(HEADER_KEYWORDS[key], "") or "") for key in keys}


#: what an RT Dose, SEG or RT Structure Set of a CT references of it
IDENTITY_KEYS = ("patient_name", "patient_id", "patient_birth_date", "patient_sex",
                 "study_instance_uid", "study_date", "study_time", "study_id",
                 "accession_number", "referring_physician_name", "frame_of_reference_uid")


def dicom_identity(ct_files) -> dict:
    """Patient, study and frame of reference of a CT series (read from its first file's
    header): what an RT Dose or SEG of that CT must reference."""
    files = [f for f in ct_files if f]
    if not files:
        raise ValueError("DICOM CT: no files")
    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    return header_text(ds, IDENTITY_KEYS)


#: the CT's patient and study attributes a new series in its study repeats (PS3.3 C.7.1.1,
#: C.7.2.1: the Patient and General Study modules are the same for every series of a study)
STUDY_ATTRIBUTES = {key: HEADER_KEYWORDS[key] for key in (
    "patient_birth_date", "patient_sex", "study_date", "study_time", "study_id",
    "accession_number", "referring_physician_name")}


def series_info_in(identity: dict, *, series_description: str, series_number: int) -> SeriesInfo:
    """A new series in the patient, study and frame of reference of ``identity`` (as returned
    by :func:`dicom_identity` or a reader's metadata)."""
    return SeriesInfo(patient_name=identity.get("patient_name") or "",
                      patient_id=identity.get("patient_id") or "",
                      study_uid=identity["study_instance_uid"],
                      frame_of_reference_uid=identity["frame_of_reference_uid"],
                      series_uid=make_uid(), series_description=series_description,
                      series_number=series_number,
                      extra={keyword: identity[key] for key, keyword in STUDY_ATTRIBUTES.items()
                             if identity.get(key)})


def ct_datasets(ct_source) -> list:
    """The CT series' datasets (a folder, or a list of its files) sorted along the slice
    normal (the order of our arrays)."""
    from pydicom.errors import InvalidDicomError

    from ..errors import ImageDataError

    paths = ([Path(p) for p in ct_source] if isinstance(ct_source, (list, tuple))
             else sorted(Path(ct_source).rglob("*")))
    datasets = []
    for p in paths:
        if not p.is_file():
            continue
        try:
            datasets.append(pydicom.dcmread(p))
        except InvalidDicomError:  # not DICOM (a README, a DICOMDIR index is skipped too)
            continue
        except Exception as exc:
            raise ImageDataError(str(p), "corrupted", "a readable DICOM file", str(exc)) \
                from None
    datasets = [d for d in datasets if "ImagePositionPatient" in d]
    if not datasets:
        raise ImageDataError(str(ct_source), "no DICOM images with a position",
                             "the planning CT's DICOM folder")
    iop = np.array([float(v) for v in datasets[0].ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    return sorted(datasets, key=lambda d: float(np.array(
        [float(v) for v in d.ImagePositionPatient]) @ normal))
