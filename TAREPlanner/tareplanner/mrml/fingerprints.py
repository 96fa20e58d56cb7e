"""Digests of MRML nodes for the workflow's step log (:mod:`tareplanner.steps`).

A digest changes when what a step would read changes: a volume's voxels and geometry (and
the transform it sits under), a segmentation's segments (names, roles, voxels), a transform's
matrix, a text node's text. Digests are BLAKE2b over the raw arrays (0.13 s for a
512 x 512 x 200 CT on 2 cores, docs/benchmarks.md), kept until the array is modified, so
refreshing the panel's step titles costs milliseconds.
"""

from __future__ import annotations

import hashlib

import numpy as np
import vtk
from vtk.util.numpy_support import vtk_to_numpy


def _matrix_bytes(matrix: vtk.vtkMatrix4x4) -> bytes:
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)]).tobytes()


#: voxel digests by (object address, modification times): arrays are hashed again only after
#: they were modified (VTK's modification time is a global counter, so a new object at a
#: reused address never matches an old entry)
_ARRAY_DIGESTS: dict = {}
_ARRAY_DIGESTS_KEPT = 64


def _array_digest(image_data, scalars) -> bytes:
    key = (image_data.__this__, image_data.GetMTime(), scalars.GetMTime())
    cached = _ARRAY_DIGESTS.get(key)
    if cached is None:
        cached = hashlib.blake2b(np.ascontiguousarray(vtk_to_numpy(scalars)).data,
                                 digest_size=16).digest()
        if len(_ARRAY_DIGESTS) >= _ARRAY_DIGESTS_KEPT:
            _ARRAY_DIGESTS.pop(next(iter(_ARRAY_DIGESTS)))
        _ARRAY_DIGESTS[key] = cached
    return cached


def _image_data_bytes(digest, image_data) -> None:
    if image_data is None:
        digest.update(b"no image")
        return
    digest.update(np.array(image_data.GetExtent()).tobytes())
    scalars = image_data.GetPointData().GetScalars()
    if scalars is not None:
        digest.update(_array_digest(image_data, scalars))


def _transform_bytes(digest, node) -> None:
    transform = node.GetParentTransformNode() if node is not None else None
    while transform is not None:
        matrix = vtk.vtkMatrix4x4()
        transform.GetMatrixTransformToParent(matrix)
        digest.update(_matrix_bytes(matrix))
        transform = transform.GetParentTransformNode()


def _segments_bytes(digest, node, keep) -> None:
    from .workflow import ROLE_TAG
    segmentation = node.GetSegmentation()
    for index in range(segmentation.GetNumberOfSegments()):
        segment = segmentation.GetNthSegment(index)
        role = vtk.reference("")
        segment.GetTag(ROLE_TAG, role)
        if not keep(str(role)):
            continue
        digest.update(f"{segment.GetName()}\0{role}\0{segment.GetLabelValue()}\0".encode())
        labelmap = segment.GetRepresentation("Binary labelmap")
        if labelmap is not None:
            matrix = vtk.vtkMatrix4x4()
            labelmap.GetImageToWorldMatrix(matrix)
            digest.update(_matrix_bytes(matrix))
            _image_data_bytes(digest, labelmap)


def segments_digest(segmentation, *roles: str) -> str:
    """Digest of the segments whose role is one of ``roles`` (a role ending in ':' matches
    every role with that prefix, e.g. 'territory:'); '' for no segmentation."""
    if segmentation is None:
        return ""
    digest = hashlib.blake2b(digest_size=16)

    def keep(role):
        return any(role == r or (r.endswith(":") and role.startswith(r)) for r in roles)

    _segments_bytes(digest, segmentation, keep)
    _transform_bytes(digest, segmentation)
    return digest.hexdigest()


def node_digest(node, *, with_transform: bool = True) -> str:
    """Digest of a volume, segmentation, transform or text node ('' for no node); without
    ``with_transform`` a volume's digest ignores the transform it is placed under."""
    if node is None:
        return ""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(node.GetClassName().encode())
    if node.IsA("vtkMRMLVolumeNode"):
        matrix = vtk.vtkMatrix4x4()
        node.GetIJKToRASMatrix(matrix)
        digest.update(_matrix_bytes(matrix))
        _image_data_bytes(digest, node.GetImageData())
        if with_transform:
            _transform_bytes(digest, node)
    elif node.IsA("vtkMRMLSegmentationNode"):
        _segments_bytes(digest, node, lambda role: True)
        _transform_bytes(digest, node)
    elif node.IsA("vtkMRMLTransformNode"):
        matrix = vtk.vtkMatrix4x4()
        node.GetMatrixTransformToParent(matrix)
        digest.update(_matrix_bytes(matrix))
        _transform_bytes(digest, node)
    elif node.IsA("vtkMRMLTextNode"):
        digest.update((node.GetText() or "").encode())
    else:
        raise TypeError(f"no digest for {node.GetClassName()}")
    return digest.hexdigest()


def value_digest(value) -> str:
    """Digest of a parameter value (its repr)."""
    return hashlib.blake2b(repr(value).encode(), digest_size=16).hexdigest()
