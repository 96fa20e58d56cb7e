"""Segmentation helpers: lungs from CT, lung mass, lung-base exclusion, perfused territory
from an enhanced CBCT or from SPECT uptake, tumours by threshold, and geometry checks.

All masks are uint8 SimpleITK images on the CT grid. Users can always bring their own label
maps instead; these helpers give a starting point that the Segment Editor can refine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from .arrays import image_array
from .grid import resample_to

LUNG_HU_MAX = -400.0
BODY_HU_MIN = -500.0
OUTSIDE_FOV_HU = -900.0


def _array(image: sitk.Image) -> np.ndarray:
    return image_array(image)  # keeps the (often temporary) image alive


def mask_like(array: np.ndarray, reference: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(array.astype(np.uint8))
    image.CopyInformation(reference)
    return image


def voxel_volume_ml(image: sitk.Image) -> float:
    return float(np.prod(image.GetSpacing())) / 1000.0


def volume_ml(mask: sitk.Image) -> float:
    return float(np.count_nonzero(_array(mask))) * voxel_volume_ml(mask)


def _ball(radius_mm: float, spacing_zyx) -> np.ndarray:
    r = [max(1, int(round(radius_mm / s))) for s in spacing_zyx]
    zz, yy, xx = np.ogrid[-r[0]:r[0] + 1, -r[1]:r[1] + 1, -r[2]:r[2] + 1]
    return ((zz * spacing_zyx[0]) ** 2 + (yy * spacing_zyx[1]) ** 2
            + (xx * spacing_zyx[2]) ** 2) <= radius_mm ** 2 + 1e-9


def _largest_components(mask: np.ndarray, n: int, min_voxels: int = 1) -> np.ndarray:
    labels, count = ndimage.label(mask)
    if count == 0:
        return np.zeros_like(mask, dtype=bool)
    sizes = np.bincount(labels.ravel())[1:]
    order = np.argsort(sizes)[::-1][:n]
    keep = [i + 1 for i in order if sizes[i] >= min_voxels]
    return np.isin(labels, keep)


def body_mask(ct: sitk.Image) -> np.ndarray:
    """The patient body: voxels above -500 HU, largest component, holes filled per slice."""
    body = _largest_components(_array(ct) > BODY_HU_MIN, 1)
    return np.stack([ndimage.binary_fill_holes(s) for s in body])


def lungs_from_ct(ct: sitk.Image, *, min_volume_ml: float = 100.0) -> sitk.Image:
    """Lungs: air-like voxels (< -400 HU) inside the body, the two largest components above
    ``min_volume_ml``, holes (vessels) filled slice by slice."""
    hu = _array(ct)
    spacing = ct.GetSpacing()[::-1]
    body = body_mask(ct)
    air = (hu < LUNG_HU_MAX) & ndimage.binary_erosion(body, _ball(3.0, spacing))
    min_vox = int(min_volume_ml / voxel_volume_ml(ct))
    lungs = _largest_components(air, 2, min_vox)
    lungs = np.stack([ndimage.binary_fill_holes(s) for s in lungs])
    return mask_like(lungs, ct)


def lung_mass_kg(ct: sitk.Image, lungs: sitk.Image) -> float:
    """Lung mass by CT densitovolumetry: density (HU + 1000) / 1000 g/mL (Kao et al.,
    EJNMMI Res 2014;4:33), summed over the lung voxels."""
    hu = _array(ct)[_array(lungs) > 0].astype(np.float64)
    density = np.clip((hu + 1000.0) / 1000.0, 0.0, None)
    return float(density.sum() * voxel_volume_ml(ct) / 1000.0)


def exclude_lung_base(lungs: sitk.Image, liver: sitk.Image, margin_mm: float) -> sitk.Image:
    """Lungs without the voxels within ``margin_mm`` of the liver (the lung base, where
    liver counts blur and misregister into the lung)."""
    if margin_mm <= 0:
        return lungs
    distance = ndimage.distance_transform_edt(_array(liver) == 0,
                                              sampling=liver.GetSpacing()[::-1])
    return mask_like((_array(lungs) > 0) & (distance > margin_mm), lungs)


@dataclass(frozen=True)
class TerritoryResult:
    mask: sitk.Image
    threshold_hu: float
    liver_outside_fov_fraction: float


def territory_from_cbct(ct: sitk.Image, cbct: sitk.Image, transform: sitk.Transform,
                        liver: sitk.Image, *, smoothing_mm: float = 2.0,
                        min_component_ml: float = 2.0, crop: bool = True) -> TerritoryResult:
    """Perfused territory of one injection position: the enhanced part of the liver on the
    contrast CBCT, brought onto the CT grid through the registration ``transform``.

    The threshold separating enhanced from non-enhanced liver is Otsu's on the liver voxels
    inside the CBCT field of view; small islands are removed and holes filled.

    Every operation stays inside the liver, so with ``crop`` they run on the liver's
    bounding box grown by the reach of the smoothing and of the opening and closing (and
    one voxel): the same territory, voxel for voxel, as on the whole CT grid, at a fraction
    of the cost (the liver fills a small part of the CT's box).
    """
    liver_full = _array(liver) > 0
    box = _liver_box(liver_full, ct.GetSpacing()[::-1], smoothing_mm) if crop else None
    if box is not None:
        lower = [int(sl.start) for sl in box[::-1]]
        size = [int(sl.stop - sl.start) for sl in box[::-1]]
        grid = sitk.RegionOfInterest(ct, size, lower)
    else:
        box, grid = tuple(slice(0, n) for n in liver_full.shape), ct
    moved = sitk.Resample(sitk.Cast(cbct, sitk.sitkFloat32), grid, transform, sitk.sitkLinear,
                          -2000.0, sitk.sitkFloat32)
    values = _array(moved)
    liver_mask = liver_full[box]
    in_fov = values > OUTSIDE_FOV_HU
    if smoothing_mm > 0:  # normalised smoothing inside the liver: no mixing with its outside
        weight = (liver_mask & in_fov).astype(np.float32)
        sigma = [smoothing_mm / s for s in ct.GetSpacing()[::-1]]
        num = ndimage.gaussian_filter(np.where(weight > 0, values, 0).astype(np.float32), sigma)
        den = ndimage.gaussian_filter(weight, sigma)
        values = np.where(den > 1e-3, num / np.maximum(den, 1e-3), values)
    sample = values[liver_mask & in_fov]
    if sample.size < 100:
        raise ValueError("the CBCT does not cover the liver")
    threshold = _otsu(sample)
    enhanced = liver_mask & in_fov & (values > threshold)
    spacing = ct.GetSpacing()[::-1]
    enhanced = ndimage.binary_opening(enhanced, _ball(2.0, spacing))
    labels, count = ndimage.label(enhanced)
    if count:
        sizes = np.bincount(labels.ravel())
        keep = np.flatnonzero(sizes * voxel_volume_ml(ct) >= min_component_ml)
        enhanced = np.isin(labels, keep[keep > 0])
    enhanced = ndimage.binary_closing(enhanced, _ball(2.0, spacing)) & liver_mask
    enhanced = ndimage.binary_fill_holes(enhanced) & liver_mask
    outside = float(np.count_nonzero(liver_mask & ~in_fov)) / max(1, np.count_nonzero(liver_mask))
    territory = np.zeros(liver_full.shape, bool)
    territory[box] = enhanced
    return TerritoryResult(mask_like(territory, ct), float(threshold), outside)


def _liver_box(liver: np.ndarray, spacing_zyx, smoothing_mm: float):
    """The liver's bounding box (z, y, x slices) grown by what the territory's operations
    reach: the Gaussian's truncation radius (4 sigma, scipy's default), twice the 2-mm
    ball's radius plus one (closing: a dilation then an erosion), and one voxel; clipped to
    the grid. None without liver voxels (the whole grid is used)."""
    if not liver.any():
        return None
    ball = [max(1, int(round(2.0 / s))) for s in spacing_zyx]
    out = []
    for axis, (n, s, b) in enumerate(zip(liver.shape, spacing_zyx, ball)):
        gauss = int(4.0 * smoothing_mm / s + 0.5) if smoothing_mm > 0 else 0
        margin = max(gauss, 2 * b + 1) + 1
        present = np.flatnonzero(liver.any(axis=tuple(a for a in range(3) if a != axis)))
        out.append(slice(max(0, int(present[0]) - margin), min(n, int(present[-1]) + 1 + margin)))
    return tuple(out)


def _otsu(values: np.ndarray, bins: int = 256) -> float:
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(hist)
    total = weight[-1]
    mean = np.cumsum(hist * centres)
    between = (mean[-1] * weight - mean * total) ** 2 / np.maximum(weight * (total - weight), 1)
    return float(centres[int(np.argmax(between[:-1]))])


def territory_from_uptake(spect: sitk.Image, liver: sitk.Image, *,
                          threshold_fraction: float = 0.3,
                          robust_max_percentile: float = 99.0) -> sitk.Image:
    """Perfused liver from SPECT uptake: liver voxels above ``threshold_fraction`` of a robust
    maximum (the ``robust_max_percentile``-th percentile of the liver counts)."""
    if not 0 < threshold_fraction < 1:
        raise ValueError("threshold_fraction must be in (0, 1)")
    on_ct = _array(resample_to(sitk.Cast(spect, sitk.sitkFloat32), liver))
    liver_mask = _array(liver) > 0
    robust_max = float(np.percentile(on_ct[liver_mask], robust_max_percentile))
    return mask_like(liver_mask & (on_ct > threshold_fraction * robust_max), liver)


def tumours_from_threshold(ct: sitk.Image, liver: sitk.Image, *, below_liver_hu: float = 22.0,
                           smoothing_mm: float = 1.5, min_volume_ml: float = 0.5,
                           ) -> sitk.Image:
    """Hypodense lesions in the liver: voxels darker than the liver median by more than
    ``below_liver_hu`` after Gaussian smoothing; connected components numbered 1..n by
    decreasing volume."""
    smooth = _array(sitk.SmoothingRecursiveGaussian(sitk.Cast(ct, sitk.sitkFloat32),
                                                    smoothing_mm))
    liver_mask = _array(liver) > 0
    median = float(np.median(smooth[liver_mask]))
    candidates = liver_mask & (smooth < median - below_liver_hu)
    spacing = ct.GetSpacing()[::-1]
    candidates = ndimage.binary_opening(candidates, _ball(1.5, spacing))
    labels, count = ndimage.label(candidates)
    out = np.zeros(labels.shape, dtype=np.uint8)
    if count:
        sizes = np.bincount(labels.ravel())[1:]
        order = [i for i in np.argsort(sizes)[::-1]
                 if sizes[i] * voxel_volume_ml(ct) >= min_volume_ml]
        for new, old in enumerate(order[:254], start=1):
            component = ndimage.binary_fill_holes(labels == old + 1)
            out[component] = new
    return mask_like(out, ct)


def assign_tumours(tumours: dict[str, np.ndarray], territories: dict[str, np.ndarray]
                   ) -> tuple[dict[str, str], list[dict]]:
    """Each tumour belongs to the territory that holds most of its voxels; a tumour in no
    territory gets a 'tumour-not-perfused' warning."""
    tumour_territory: dict[str, str] = {}
    warnings = []
    for name, mask in tumours.items():
        shares = {p: np.count_nonzero(mask & t) for p, t in territories.items()}
        best = max(shares, key=shares.get) if shares else None
        if best is not None and shares[best] > 0:
            tumour_territory[name] = best
        else:
            warnings.append({"code": "tumour-not-perfused",
                             "message": f"tumour {name} lies in no perfused territory"})
    return tumour_territory, warnings


def geometry_checks(liver: np.ndarray, tumours: dict[str, np.ndarray],
                    territories: dict[str, np.ndarray], tumour_territory: dict[str, str], *,
                    tolerance: float = 0.05) -> list[dict]:
    """Warnings for tumours outside their territory, overlapping territories and territory
    outside the liver (boolean arrays on one grid)."""
    warnings = []
    for name, tumour in tumours.items():
        n = np.count_nonzero(tumour)
        if n == 0:
            warnings.append({"code": "tumour-empty", "message": f"tumour {name} has no voxels"})
            continue
        terr = tumour_territory.get(name)
        if terr is not None:
            outside = 1.0 - np.count_nonzero(tumour & territories[terr]) / n
            if outside > tolerance:
                warnings.append({"code": "tumour-outside-territory",
                                 "message": f"{outside:.0%} of tumour {name} lies outside "
                                            f"the territory of {terr}"})
        outside_liver = 1.0 - np.count_nonzero(tumour & liver) / n
        if outside_liver > tolerance:
            warnings.append({"code": "tumour-outside-liver",
                             "message": f"{outside_liver:.0%} of tumour {name} lies outside "
                                        "the liver"})
    names = list(territories)
    for i, a in enumerate(names):
        n = np.count_nonzero(territories[a])
        if n == 0:
            warnings.append({"code": "territory-empty", "message": f"territory {a} is empty"})
            continue
        outside = 1.0 - np.count_nonzero(territories[a] & liver) / n
        if outside > tolerance:
            warnings.append({"code": "territory-outside-liver",
                             "message": f"{outside:.0%} of the territory of {a} lies outside "
                                        "the liver"})
        for b in names[i + 1:]:
            overlap = np.count_nonzero(territories[a] & territories[b])
            if overlap:
                smaller = min(n, np.count_nonzero(territories[b]))
                warnings.append({"code": "territories-overlap",
                                 "message": f"territories of {a} and {b} overlap "
                                            f"({overlap / smaller:.1%} of the smaller)"})
    return warnings
