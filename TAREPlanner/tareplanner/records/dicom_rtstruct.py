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
    """Boolean masks ([z, y, x] on ``reference``) of every ROI with contours, by ROI name."""
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:
        raise ImageDataError(str(path), "unreadable", "a DICOM RT Structure Set",
                             str(exc)) from None
    if ds.get("Modality") != "RTSTRUCT":
        raise ImageDataError(f"{path}:Modality (0008,0060)", ds.get("Modality"), "RTSTRUCT")
    names = {int(r.ROINumber): str(r.ROIName) for r in ds.get("StructureSetROISequence", [])}
    size = reference.GetSize()
    direction = np.array(reference.GetDirection()).reshape(3, 3)
    to_index = np.linalg.inv(direction @ np.diag(reference.GetSpacing()))
    origin = np.array(reference.GetOrigin())
    masks: dict[str, np.ndarray] = {}
    for roi in ds.get("ROIContourSequence", []):
        name = names.get(int(roi.ReferencedROINumber), f"ROI {roi.ReferencedROINumber}")
        mask = np.zeros(size[::-1], bool)
        for contour in roi.get("ContourSequence", []):
            if contour.get("ContourGeometricType", "CLOSED_PLANAR") not in ("CLOSED_PLANAR",):
                continue
            points = np.array([float(v) for v in contour.ContourData]).reshape(-1, 3)
            index = (points - origin) @ to_index.T          # continuous (i, j, k)
            k = int(round(float(np.mean(index[:, 2]))))
            if not 0 <= k < size[2] or len(points) < 3:
                continue
            i0 = max(int(np.floor(index[:, 0].min())), 0)
            i1 = min(int(np.ceil(index[:, 0].max())), size[0] - 1)
            j0 = max(int(np.floor(index[:, 1].min())), 0)
            j1 = min(int(np.ceil(index[:, 1].max())), size[1] - 1)
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
