"""DICOM RT Structure Set input: closed planar contours rasterised onto a reference grid.

Each contour is mapped into the reference image's continuous index space, assigned to the
nearest slice, and filled at voxel centres (even-odd rule across the contours of one slice,
so that holes drawn as inner contours stay empty)."""

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
