"""The background variability of an IEC phantom scan: how noisy a region's mean is on this
camera and reconstruction (:mod:`tareplanner.physics.roi_noise`).

For each of the six sphere diameters, balls of that diameter are laid on a lattice of the
same pitch (so that they do not overlap) through the phantom's uniform background: each ball
lies wholly in the CT's water volume (distances on the CT's grid) with at least
``edge_margin_mm`` between its surface and the body's wall or the lung insert, and at least as far from every sphere's surface
(NEMA NU 2-2012 section 7 (image quality): 15 mm). Of those, the ``rois_per_size`` nearest the spheres'
plane are kept (NEMA: 60, on the sphere plane and 1 and 2 cm either side). Each ball's mean
is weighted by its occupancy of the voxels (4^3 sub-voxel samples), as a structure's is. The
coefficient of variation of the means of each size, and the power law fitted through them,
go into the camera file (``roi_noise``).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..errors import ImageDataError
from ..physics.psf_fit import ball_occupancy
from ..physics.roi_noise import coefficient_of_variation, fit_roi_noise
from .arrays import image_array
from .iec_phantom import iec_data, sphere_diameters_mm


def depth_in_water_mm(ct: sitk.Image) -> np.ndarray:
    """Distance (mm) of every CT voxel inside the water volume to the nearest voxel outside
    it (the body's wall, the lung insert, air); 0 outside."""
    water = image_array(ct) > iec_data()["ct_threshold_hu"]["value"]
    return ndimage.distance_transform_edt(
        water, sampling=np.asarray(ct.GetSpacing(), dtype=float)[::-1])


def roi_centres_mm(ct: sitk.Image, image: sitk.Image, centres, diameter_mm: float,
                   count: int, margin_mm: float, inside_mm: np.ndarray | None = None
                   ) -> np.ndarray:
    """Centres (x, y, z mm) of up to ``count`` non-overlapping background balls of
    ``diameter_mm`` wholly inside the image, nearest the spheres' plane first
    (``inside_mm``: :func:`depth_in_water_mm` of ``ct``, computed when not given)."""
    if inside_mm is None:
        inside_mm = depth_in_water_mm(ct)
    points = np.asarray(centres, dtype=float)                       # (6, x y z)
    middle = points.mean(axis=0)
    normal = np.linalg.svd(points - middle)[2][-1]                  # the spheres' plane
    radius = diameter_mm / 2.0
    low = np.asarray(image.TransformIndexToPhysicalPoint((0, 0, 0)), dtype=float)
    high = np.asarray(image.TransformIndexToPhysicalPoint(
        tuple(int(n) - 1 for n in image.GetSize())), dtype=float)
    lo = np.minimum(low, high) + diameter_mm / 2.0             # the whole ball in the image
    hi = np.maximum(low, high) - diameter_mm / 2.0
    axes = [middle[a] + diameter_mm * np.arange(np.ceil((lo[a] - middle[a]) / diameter_mm),
                                               np.floor((hi[a] - middle[a]) / diameter_mm) + 1)
            for a in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    if grid.size == 0:
        return np.zeros((0, 3))
    index = np.array([ct.TransformPhysicalPointToContinuousIndex(tuple(p)) for p in grid])
    nearest = np.rint(index[:, ::-1]).astype(int)                   # z, y, x of the CT
    inside = np.all((nearest >= 0) & (nearest < inside_mm.shape), axis=1)
    grid, nearest = grid[inside], nearest[inside]
    ok = inside_mm[tuple(nearest.T)] >= radius + margin_mm
    diameters = np.asarray(sphere_diameters_mm(), dtype=float)
    gaps = np.linalg.norm(grid[:, None, :] - points[None, :, :], axis=-1) - diameters / 2.0
    ok &= np.all(gaps >= radius + margin_mm, axis=1)
    chosen = grid[ok]
    order = np.argsort(np.abs((chosen - middle) @ normal), kind="stable")
    return chosen[order[:count]]


def background_variability(ct: sitk.Image, image: sitk.Image, centres, *, counts: bool,
                           settings: dict) -> dict:
    """The camera file's ``roi_noise``: per sphere diameter the ROIs' count, mean and
    coefficient of variation; the fitted law; the image's total (counts, or Bq for an image
    in Bq/mL) that the law is relative to. ``settings``: ``background_variability`` of
    ``data/camera_calibration.json`` (rois_per_size, edge_margin_mm, min_rois, source)."""
    s = settings
    values = image_array(image).astype(np.float64)
    spacing_zyx = tuple(float(v) for v in image.GetSpacing()[::-1])
    voxel_ml = float(np.prod(image.GetSpacing())) / 1000.0
    depth = depth_in_water_mm(ct)
    sizes = []
    for d in sphere_diameters_mm():
        found = roi_centres_mm(ct, image, centres, d, int(s["rois_per_size"]),
                               float(s["edge_margin_mm"]), depth)
        means = []
        for p in found:
            index = np.asarray(image.TransformPhysicalPointToContinuousIndex(tuple(p)))[::-1]
            w = ball_occupancy(values.shape, spacing_zyx, index, d / 2.0)
            means.append(float((w * values).sum() / w.sum()))
        entry = {"diameter_mm": d, "volume_ml": float(np.pi * d ** 3 / 6000.0),
                 "rois": len(means)}
        if len(means) >= int(s["min_rois"]):
            entry["background_mean"] = float(np.mean(means))
            entry["relative_sd"] = coefficient_of_variation(means)
        else:
            entry["relative_sd"] = None
            entry["why_none"] = (f"{len(means)} background balls of this size fit; at least "
                                 f"{int(s['min_rois'])} are needed")
        sizes.append(entry)
    usable = [e for e in sizes if e["relative_sd"]]
    if len(usable) < 2:
        raise ImageDataError("--image", f"{len(usable)} sphere sizes with a background "
                             "variability", "a phantom whose background holds balls of at "
                             "least two sphere sizes (is the CT's water volume in the image?)")
    a, b = fit_roi_noise([e["volume_ml"] for e in usable], [e["relative_sd"] for e in usable])
    total = float(values.sum()) * (1.0 if counts else voxel_ml)
    return {
        "method": s["source"],
        "sizes": sizes,
        "model": {"coefficient": a, "exponent": b,
                  "volume_range_ml": [min(e["volume_ml"] for e in usable),
                                      max(e["volume_ml"] for e in usable)],
                  "law": "relative SD of a region's mean = coefficient x (volume / 1 mL)^"
                         "-exponent x sqrt(reference_total / the image's total)"},
        "reference_total": total,
        "total_units": "counts" if counts else "Bq",
    }
