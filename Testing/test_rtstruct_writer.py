"""The RT Structure Set writer (dicom/rtstruct.py) on a small CT written here: contours that
give back the masks voxel for voxel (holes, voxels touching only at a corner, a voxel on the
slice's edge), geometry in the CT's patient coordinates, refusals named.

The expected masks are drawn by hand in the test; the contours are filled with matplotlib's
point-in-polygon (even-odd rule) at the voxel centres computed from the CT's own headers read
with pydicom, not with the project's reader."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from matplotlib.path import Path as PolygonPath

from tareplanner.dicom.common import SeriesInfo, make_uid
from tareplanner.dicom.images import write_ct_series
from tareplanner.dicom.rtstruct import read_rtstruct, write_rtstruct
from tareplanner.errors import FieldValueError


@pytest.fixture
def ct(tmp_path):
    image = sitk.Image(12, 10, 3, sitk.sitkInt16)        # x 12, y 10, z 3
    image.SetSpacing((1.5, 2.0, 3.0))
    image.SetOrigin((-20.0, 35.0, 100.0))
    info = SeriesInfo(patient_name="DOE^JANE", patient_id="PAT-1", study_uid=make_uid(),
                      frame_of_reference_uid=make_uid(), series_uid=make_uid())
    write_ct_series(image, tmp_path / "ct", info)
    return tmp_path / "ct", image


def _masks():
    ring = np.zeros((3, 10, 12), bool)
    ring[1, 2:8, 2:9] = True
    ring[1, 4:6, 4:7] = False                             # a hole
    corners = np.zeros((3, 10, 12), bool)
    corners[0, 0, 0] = corners[0, 1, 1] = True            # touch at a corner only
    corners[2, 9, 11] = True                              # on the slice's far edge
    return {"ring": ring, "corners": corners}


def _filled(path, ct_folder, shape):
    slices = sorted((pydicom.dcmread(f, stop_before_pixels=True) for f in ct_folder.iterdir()),
                    key=lambda d: float(d.ImagePositionPatient[2]))
    by_uid = {d.SOPInstanceUID: k for k, d in enumerate(slices)}
    x0, y0 = (float(v) for v in slices[0].ImagePositionPatient[:2])
    dy, dx = (float(v) for v in slices[0].PixelSpacing)
    ds = pydicom.dcmread(path)
    names = {r.ROINumber: r.ROIName for r in ds.StructureSetROISequence}
    out = {}
    for roi in ds.ROIContourSequence:
        filled = np.zeros(shape, bool)
        for contour in roi.ContourSequence:
            xyz = np.array([float(v) for v in contour.ContourData]).reshape(-1, 3)
            k = by_uid[contour.ContourImageSequence[0].ReferencedSOPInstanceUID]
            assert np.allclose(xyz[:, 2], float(slices[k].ImagePositionPatient[2]))
            rr, cc = np.mgrid[0:shape[1], 0:shape[2]]
            centres = np.column_stack([x0 + cc.ravel() * dx, y0 + rr.ravel() * dy])
            filled[k] ^= PolygonPath(xyz[:, :2]).contains_points(centres).reshape(rr.shape)
        out[names[roi.ReferencedROINumber]] = filled
    return ds, out


def test_contours_give_back_the_masks(ct, tmp_path):
    """Bug caught: a hole filled, corner-touching voxels merged or lost, an edge voxel's
    contour left open, x and y or row and column swapped (the grid is not square and its
    spacings differ), the structure set filed under another patient or frame."""
    folder, image = ct
    masks = _masks()
    path = write_rtstruct(masks, {"ring": "liver", "corners": "tumour"}, folder,
                          tmp_path / "rs.dcm")
    ds, filled = _filled(path, folder, masks["ring"].shape)
    for name, mask in masks.items():
        assert np.array_equal(filled[name], mask), name
    header = pydicom.dcmread(next(folder.iterdir()), stop_before_pixels=True)
    assert ds.PatientID == "PAT-1" and ds.StudyInstanceUID == header.StudyInstanceUID
    assert ds.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID == \
        header.FrameOfReferenceUID
    types = {o.ReferencedROINumber: o.RTROIInterpretedType for o in ds.RTROIObservationsSequence}
    assert sorted(types.values()) == ["GTV", "ORGAN"]
    # and the project's own reader agrees
    back = read_rtstruct(path, image)
    assert all(np.array_equal(back[n], masks[n]) for n in masks)


def test_refusals_are_named(ct, tmp_path):
    """Bug caught: a ROI name cut to 64 characters (two names could merge), a mask of
    another grid written with shifted contours, a half-written file left behind."""
    folder, _ = ct
    mask = _masks()["ring"]
    with pytest.raises(FieldValueError, match="RTSTRUCT ROI name"):
        write_rtstruct({"x" * 65: mask}, {}, folder, tmp_path / "a.dcm")
    with pytest.raises(ValueError, match=r"is \(3, 10, 11\), the CT \(3, 10, 12\)"):
        write_rtstruct({"liver": mask[..., :11]}, {}, folder, tmp_path / "b.dcm")
    assert not list(tmp_path.glob("*.dcm")) and not list(tmp_path.glob(".*tmp"))
