"""DICOM RT Structure Set, read and written.

Reading: closed planar contours rasterised onto a reference grid. Each contour is mapped into
the reference image's continuous index space, assigned to the nearest slice, and filled at
voxel centres (even-odd rule across the contours of one slice, so that holes drawn as inner
contours stay empty).

Writing: the structures' masks (on the planning CT's grid) as closed planar contours on the
CT's slices, in its study and frame of reference. Each slice's contours are the 0.5 level
lines of the mask (contourpy, matplotlib's contouring), which run half way between a voxel
centre inside and its neighbour outside: filling them at the voxel centres with the even-odd
rule (as the reader above, and as TPSs do) gives back the mask voxel for voxel; holes are
inner contours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from matplotlib.path import Path as PolygonPath

from ..errors import ImageDataError


def read_rtstruct(path: str | Path, reference: sitk.Image) -> dict[str, np.ndarray]:
    """Boolean masks ([z, y, x] on ``reference``) of every ROI with contours, by ROI name.

    Refused with a named error: an unreadable file, another modality, ROI numbers or names
    that do not parse or repeat, contour data that are not finite (x, y, z) triples."""
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:
        raise ImageDataError(str(path), "unreadable", "a DICOM RT Structure Set",
                             str(exc)) from None
    try:
        return _masks(ds, Path(path), reference)
    except ImageDataError:
        raise
    except Exception as exc:  # a value that does not parse as its VR, a missing element
        raise ImageDataError(f"{path}:StructureSetROISequence/ROIContourSequence", "unreadable",
                             "an RT Structure Set with numbered, named ROIs and contours",
                             f"{type(exc).__name__}: {exc}") from None


def _masks(ds, path: Path, reference: sitk.Image) -> dict[str, np.ndarray]:
    if ds.get("Modality") != "RTSTRUCT":
        raise ImageDataError(f"{path}:Modality (0008,0060)", ds.get("Modality"), "RTSTRUCT")
    names: dict[int, str] = {}
    for roi in ds.get("StructureSetROISequence", []):
        number, name = int(roi.ROINumber), str(roi.get("ROIName", "") or "")
        if number in names or name in names.values():
            raise ImageDataError(f"{path}:StructureSetROISequence (3006,0020)",
                                 f"ROI {number} {name!r}", "unique ROI numbers and names")
        names[number] = name or f"ROI {number}"
    size = reference.GetSize()
    direction = np.array(reference.GetDirection()).reshape(3, 3)
    to_index = np.linalg.inv(direction @ np.diag(reference.GetSpacing()))
    origin = np.array(reference.GetOrigin())
    masks: dict[str, np.ndarray] = {}
    for roi in ds.get("ROIContourSequence", []):
        number = int(roi.ReferencedROINumber)
        name = names.get(number, f"ROI {number}")
        mask = masks.get(name, np.zeros(size[::-1], bool))
        for contour in roi.get("ContourSequence", []):
            if contour.get("ContourGeometricType", "CLOSED_PLANAR") not in ("CLOSED_PLANAR",):
                continue
            values = np.array([float(v) for v in contour.get("ContourData", [])])
            if values.size % 3 or not np.isfinite(values).all():
                raise ImageDataError(f"{path}:{name}:ContourData (3006,0050)",
                                     f"{values.size} values", "finite (x, y, z) triples")
            points = values.reshape(-1, 3)
            if len(points) < 3:
                continue
            index = (points - origin) @ to_index.T          # continuous (i, j, k)
            k = int(round(float(np.mean(index[:, 2])))) if abs(np.mean(index[:, 2])) < 1e9 \
                else -1
            if not 0 <= k < size[2]:
                continue
            i0 = max(int(np.floor(max(index[:, 0].min(), -1))), 0)
            i1 = min(int(np.ceil(min(index[:, 0].max(), size[0]))), size[0] - 1)
            j0 = max(int(np.floor(max(index[:, 1].min(), -1))), 0)
            j1 = min(int(np.ceil(min(index[:, 1].max(), size[1]))), size[1] - 1)
            if i1 < i0 or j1 < j0:
                continue
            jj, ii = np.mgrid[j0:j1 + 1, i0:i1 + 1]
            inside = PolygonPath(index[:, :2]).contains_points(
                np.column_stack([ii.ravel(), jj.ravel()])).reshape(ii.shape)
            mask[k, j0:j1 + 1, i0:i1 + 1] ^= inside
        masks[name] = mask
    if not masks:
        raise ImageDataError(f"{path}:ROIContourSequence (3006,0039)", "no contours",
                             "at least one ROI with closed planar contours")
    return masks


#: RT ROI Interpreted Type (3006,00A4) of each structure kind (PS3.3 C.8.8.8: defined terms)
INTERPRETED_TYPES = {"tumour": "GTV", "liver": "ORGAN", "lung": "ORGAN", "normal": "ORGAN",
                     "territory": "TREATED_VOLUME"}
#: ROI display colours (RGB 0-255) by kind
ROI_COLOURS = {"tumour": (255, 26, 26), "liver": (242, 140, 38), "lung": (77, 153, 242),
               "normal": (230, 200, 120), "territory": (51, 217, 77)}


def slice_contours(mask2d: np.ndarray) -> list[np.ndarray]:
    """Closed contours (each an (n, 2) array of (column, row) indices, not repeating its first
    point) around the True voxels of one slice: the 0.5 level lines of the mask, padded so
    that every line closes."""
    import contourpy
    padded = np.pad(mask2d.astype(np.float64), 1)
    generator = contourpy.contour_generator(z=padded, line_type=contourpy.LineType.Separate)
    out = []
    for line in generator.lines(0.5):
        points = np.asarray(line, dtype=np.float64) - 1.0      # undo the padding
        if len(points) > 1 and np.allclose(points[0], points[-1]):
            points = points[:-1]
        if len(points) >= 3:
            out.append(points)
    return out


def write_rtstruct(masks: dict[str, np.ndarray], kinds: dict[str, str], ct_source,
                   path: str | Path, *, label: str = "TAREPlanner structures",
                   series_number: int = 951) -> Path:
    """An RT Structure Set of ``masks`` (boolean [z, y, x] on the grid of the CT series
    ``ct_source``: its folder or files), one ROI per non-empty structure, contours on the
    CT's slices referencing their SOP instances, in the CT's patient, study and frame of
    reference; written atomically."""
    from datetime import datetime

    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    from pydicom.uid import RTStructureSetStorage

    from ..errors import FieldValueError
    from ..records.atomic import atomic_path
    from .common import base_dataset, ct_datasets, dicom_identity, make_uid, series_info_in

    sources = ct_datasets(ct_source)
    shape = (len(sources), int(sources[0].Rows), int(sources[0].Columns))
    names = [n for n in masks if np.asarray(masks[n]).any()]
    for name in names:
        if len(name) > 64:  # ROI Name is a DICOM LO
            raise FieldValueError("RTSTRUCT ROI name", name, "at most 64 characters (a DICOM "
                                  "ROI name); shorten the position or tumour name")
        if np.asarray(masks[name]).shape != shape:
            raise ValueError(f"structure {name!r} is {np.asarray(masks[name]).shape}, "
                             f"the CT {shape}")
    first = sources[0]
    identity = dicom_identity([first.filename]) if getattr(first, "filename", None) else {
        "patient_name": str(first.get("PatientName", "")),
        "patient_id": str(first.get("PatientID", "")),
        "study_instance_uid": str(first.StudyInstanceUID),
        "frame_of_reference_uid": str(first.FrameOfReferenceUID)}
    info = series_info_in(identity, series_description=label, series_number=series_number)
    now = datetime.now().astimezone()
    ds = base_dataset(info, RTStructureSetStorage, make_uid(), "RTSTRUCT")
    for keyword in ("SamplesPerPixel", "PhotometricInterpretation", "BitsAllocated",
                    "BitsStored", "HighBit", "PatientPosition", "FrameOfReferenceUID",
                    "PositionReferenceIndicator", "AcquisitionDate", "AcquisitionTime"):
        if keyword in ds:
            delattr(ds, keyword)
    ds.SeriesDate, ds.SeriesTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.InstanceNumber = 1
    ds.StructureSetLabel = label[:16]
    ds.StructureSetName = label[:64]
    ds.StructureSetDate, ds.StructureSetTime = ds.SeriesDate, ds.SeriesTime
    ds.ApprovalStatus = "UNAPPROVED"

    frame = Dataset()
    frame.FrameOfReferenceUID = identity["frame_of_reference_uid"]
    study = Dataset()
    study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"   # Detached Study Management
    study.ReferencedSOPInstanceUID = identity["study_instance_uid"]
    series = Dataset()
    series.SeriesInstanceUID = str(first.SeriesInstanceUID)
    images = []
    for source in sources:
        item = Dataset()
        item.ReferencedSOPClassUID = source.SOPClassUID
        item.ReferencedSOPInstanceUID = source.SOPInstanceUID
        images.append(item)
    series.ContourImageSequence = Sequence(images)
    study.RTReferencedSeriesSequence = Sequence([series])
    frame.RTReferencedStudySequence = Sequence([study])
    ds.ReferencedFrameOfReferenceSequence = Sequence([frame])

    # slice k of the masks is sources[k]: its position and in-plane axes map (column, row)
    # indices to patient coordinates (PS3.3 C.7.6.2.1.1)
    positions = np.array([[float(v) for v in d.ImagePositionPatient] for d in sources])
    orientation = np.array([float(v) for v in first.ImageOrientationPatient])
    row_spacing, column_spacing = (float(v) for v in first.PixelSpacing)
    axes = np.stack([orientation[:3] * column_spacing, orientation[3:] * row_spacing])
    rois, contours, observations = [], [], []
    for number, name in enumerate(names, start=1):
        kind = kinds.get(name, "normal")
        roi = Dataset()
        roi.ROINumber = number
        roi.ReferencedFrameOfReferenceUID = identity["frame_of_reference_uid"]
        roi.ROIName = name
        roi.ROIGenerationAlgorithm = "SEMIAUTOMATIC"
        rois.append(roi)
        items = []
        mask = np.asarray(masks[name], dtype=bool)
        for k in np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1)):
            for points in slice_contours(mask[k]):
                xyz = positions[k] + points @ axes
                item = Dataset()
                item.ContourGeometricType = "CLOSED_PLANAR"
                item.NumberOfContourPoints = len(xyz)
                item.ContourData = [f"{v:.4f}" for v in xyz.ravel()]
                image = Dataset()
                image.ReferencedSOPClassUID = sources[k].SOPClassUID
                image.ReferencedSOPInstanceUID = sources[k].SOPInstanceUID
                item.ContourImageSequence = Sequence([image])
                items.append(item)
        contour = Dataset()
        contour.ReferencedROINumber = number
        contour.ROIDisplayColor = list(ROI_COLOURS.get(kind, ROI_COLOURS["normal"]))
        contour.ContourSequence = Sequence(items)
        contours.append(contour)
        observation = Dataset()
        observation.ObservationNumber = number
        observation.ReferencedROINumber = number
        observation.RTROIInterpretedType = INTERPRETED_TYPES.get(kind, "ORGAN")
        observation.ROIInterpreter = ""
        observations.append(observation)
    ds.StructureSetROISequence = Sequence(rois)
    ds.ROIContourSequence = Sequence(contours)
    ds.RTROIObservationsSequence = Sequence(observations)
    with atomic_path(path, overwrite=True) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return Path(path)
