"""Structures of a case: CT-grid masks by name and kind, and the occupancy of an emission or
dose grid's voxels by them (supersampled)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from ..imaging.grid import Grid, block_fraction, block_mean


@dataclass
class Structures:
    """CT-grid boolean masks by name, and each one's kind (tumour, normal, lung, liver).

    Each structure's voxel indices are found once per mask array and kept (a structure report
    takes the voxels of every dose by them): replace a mask by a new array, do not modify one
    in place."""

    reference: sitk.Image
    masks: dict[str, np.ndarray]
    kinds: dict[str, str]
    territories: dict[str, np.ndarray] = field(default_factory=dict)
    _flat: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def voxel_ml(self) -> float:
        return float(np.prod(self.reference.GetSpacing())) / 1000.0

    def flat_indices(self, name: str) -> np.ndarray:
        """Indices of the structure's voxels in the C-order flattened CT grid, ascending
        (``np.flatnonzero`` of its mask), computed on first use and kept with the mask."""
        mask = self.masks[name]
        kept = self._flat.get(name)
        if kept is None or kept[0] is not mask:
            index = np.flatnonzero(mask)
            if mask.size < 2 ** 31:
                index = index.astype(np.int32)
            kept = self._flat[name] = (mask, index)
        return kept[1]

    def values_in(self, array: np.ndarray, name: str) -> np.ndarray:
        """``array[mask]`` of the structure (``array`` on the CT grid): the same values in
        the same order, taken by the kept indices instead of a pass over the whole mask."""
        if array.shape != self.masks[name].shape:
            raise IndexError(f"array {array.shape} is not on the grid of {name!r} "
                             f"{self.masks[name].shape}")
        return np.take(array.reshape(-1), self.flat_indices(name))


def _supersampled(image: sitk.Image, k: int) -> Grid:
    """The grid that splits every voxel of ``image`` into k x k x k sub-voxels."""
    grid = Grid.of(image)
    return Grid(tuple(n * k for n in grid.size), tuple(s / k for s in grid.spacing_mm),
                tuple(o - s / 2 + s / (2 * k) for o, s in zip(grid.origin_mm, grid.spacing_mm)))


def occupancy_on(grid_image: sitk.Image, mask: np.ndarray, reference: sitk.Image,
                 supersample: int = 3) -> np.ndarray:
    """Fraction of each voxel of ``grid_image`` covered by a CT-grid ``mask``.

    Kept by content (the mask's bytes, both grids and ``supersample``): the same mask on the
    same grid is not resampled again, whichever step asks (:func:`occupancies_on` fills the
    kept values of several masks with one resampling). Read-only: copy it to change it."""
    key = _occupancy_key(grid_image, mask, reference, supersample)
    kept = _OCCUPANCIES.get(key)
    if kept is None:
        kept = _keep(key, _occupancy(grid_image, (mask != 0).astype(np.uint8), reference,
                                     supersample))
    return kept


def occupancies_on(grid_image: sitk.Image, masks, reference: sitk.Image,
                   supersample: int = 3) -> list[np.ndarray]:
    """:func:`occupancy_on` of each of ``masks``: those not kept yet resampled eight at a
    time, each one a bit of one uint8 image (nearest-neighbour resampling picks the same
    source voxel for every bit, so each occupancy equals the mask's own, value for value)."""
    masks = list(masks)
    keys = [_occupancy_key(grid_image, m, reference, supersample) for m in masks]
    todo = list(dict.fromkeys(k for k, m in zip(keys, masks)
                              if k not in _OCCUPANCIES and m.dtype == bool))
    first = {k: masks[keys.index(k)] for k in todo}
    for start in range(0, len(todo), 8):
        group = todo[start:start + 8]
        packed = np.zeros(first[group[0]].shape, np.uint8)
        for bit, key in enumerate(group):
            packed |= first[key].astype(np.uint8) << np.uint8(bit)
        fine = _resampled(grid_image, packed, reference, supersample)
        for bit, key in enumerate(group):
            _keep(key, block_fraction((fine >> np.uint8(bit)) & np.uint8(1), supersample))
    return [_OCCUPANCIES[k] if k in _OCCUPANCIES else occupancy_on(grid_image, m, reference,
                                                                   supersample)
            for k, m in zip(keys, masks)]


def _resampled(grid_image, mask_uint8, reference, supersample) -> np.ndarray:
    fine = _supersampled(grid_image, supersample)
    src = sitk.GetImageFromArray(mask_uint8)
    src.CopyInformation(reference)
    ref_fine = fine.image(np.zeros(fine.shape_zyx, np.uint8))
    moved = sitk.Resample(src, ref_fine, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    return sitk.GetArrayFromImage(moved)


def _occupancy(grid_image, mask_uint8, reference, supersample) -> np.ndarray:
    return block_fraction(_resampled(grid_image, mask_uint8, reference, supersample),
                          supersample)


#: occupancies kept by content (the newest last), at most _KEEP_BYTES of them
_OCCUPANCIES: dict = {}
_KEEP_BYTES = 256 * 2 ** 20


def _geometry(image: sitk.Image) -> tuple:
    return (image.GetSize(), image.GetSpacing(), image.GetOrigin(), image.GetDirection())


def _occupancy_key(grid_image, mask: np.ndarray, reference, supersample: int) -> tuple:
    import hashlib
    mask = np.ascontiguousarray(mask)
    digest = hashlib.blake2b(mask.reshape(-1).view(np.uint8), digest_size=16).hexdigest()
    return (_geometry(grid_image), _geometry(reference), int(supersample), mask.shape,
            mask.dtype.str, digest)


def _keep(key, occupancy: np.ndarray) -> np.ndarray:
    occupancy.flags.writeable = False
    _OCCUPANCIES.pop(key, None)
    _OCCUPANCIES[key] = occupancy
    while sum(v.nbytes for v in _OCCUPANCIES.values()) > _KEEP_BYTES and len(_OCCUPANCIES) > 1:
        _OCCUPANCIES.pop(next(iter(_OCCUPANCIES)))
    return occupancy


def block_mean_resample(image: sitk.Image, reference: sitk.Image, supersample: int = 3):
    """Mean of ``image`` over each voxel of ``reference`` (supersampled, linear)."""
    fine = _supersampled(reference, supersample)
    moved = sitk.Resample(image, fine.image(np.zeros(fine.shape_zyx, np.float32)),
                          sitk.Transform(), sitk.sitkLinear, 1.0, sitk.sitkFloat32)
    return block_mean(sitk.GetArrayFromImage(moved), supersample)


def structures_from_labels(ct: sitk.Image, liver: np.ndarray, lungs: np.ndarray,
                           tumours: dict[str, np.ndarray], territories: dict[str, np.ndarray]
                           ) -> Structures:
    """Tumours, perfused normal liver per territory, whole normal liver, liver and lungs."""
    any_tumour = np.zeros(liver.shape, bool)
    for m in tumours.values():
        any_tumour |= m
    masks: dict[str, np.ndarray] = {}
    kinds: dict[str, str] = {}
    for name, m in tumours.items():
        masks[name], kinds[name] = m, "tumour"
    for name, t in territories.items():
        key = f"normal liver ({name})"
        masks[key], kinds[key] = t & liver & ~any_tumour, "normal"
    masks["normal liver"], kinds["normal liver"] = liver & ~any_tumour, "normal"
    masks["liver"], kinds["liver"] = liver, "liver"
    masks["lungs"], kinds["lungs"] = lungs, "lung"
    return Structures(ct, masks, kinds, dict(territories))
