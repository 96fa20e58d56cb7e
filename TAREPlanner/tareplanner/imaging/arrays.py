"""NumPy arrays of SimpleITK images that are safe to keep.

``sitk.GetArrayViewFromImage`` returns a view of the image's voxel buffer that does not keep
the image alive: ``sitk.GetArrayViewFromImage(sitk.Resample(...))`` frees the resampled image
at once and the view then reads freed memory (wrong values or a segmentation fault, the
larger the image the likelier). :func:`image_array` gives the same view without the copy,
but the returned array holds a reference to the image, so the buffer lives as long as the
array or anything sliced from it. Every voxel read in the package goes through it.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk


class _ImageBuffer:
    """Exposes an image's voxel buffer to NumPy and keeps the image alive."""

    __slots__ = ("image", "__array_interface__")

    def __init__(self, image: sitk.Image):
        self.image = image
        interface = dict(sitk.GetArrayViewFromImage(image).__array_interface__)
        pointer, _ = interface["data"]
        interface["data"] = (pointer, True)  # read-only
        self.__array_interface__ = interface


def image_array(image: sitk.Image) -> np.ndarray:
    """The voxels of ``image`` as a read-only array [z, y, x] (plus components), no copy.

    The array keeps ``image`` alive, so it may be taken of a temporary image and kept. Do not
    modify ``image`` in place (``SetPixel``, slice assignment) while the array is in use; take
    ``sitk.GetArrayFromImage`` (a copy) where a writable array is needed.
    """
    if not isinstance(image, sitk.Image):
        raise TypeError(f"image_array: expected a SimpleITK image, got {type(image).__name__}")
    array = np.asarray(_ImageBuffer(image))
    if array.base is None or not isinstance(array.base, _ImageBuffer):  # pragma: no cover
        raise RuntimeError("image_array: NumPy did not keep the image buffer's owner")
    return array
