"""Structures of a case: CT-grid masks by name and kind, and the occupancy of an emission or
dose grid's voxels by them (supersampled)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from ..imaging.grid import Grid, block_mean


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
    """Fraction of each voxel of ``grid_image`` covered by a CT-grid ``mask``."""
    fine = _supersampled(grid_image, supersample)
    src = sitk.GetImageFromArray(mask.astype(np.uint8))
    src.CopyInformation(reference)
    ref_fine = fine.image(np.zeros(fine.shape_zyx, np.uint8))
    moved = sitk.Resample(src, ref_fine, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    return block_mean(sitk.GetArrayFromImage(moved).astype(np.float32), supersample)


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
