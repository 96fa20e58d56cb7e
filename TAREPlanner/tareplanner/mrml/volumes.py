"""Scalar volume nodes <-> SimpleITK images (LPS in SimpleITK, RAS in MRML)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
import slicer
import vtk

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def volume_node_from_image(scene, image: sitk.Image, name: str,
                           node_class: str = "vtkMRMLScalarVolumeNode"):
    """A new volume node in ``scene`` holding ``image`` (values and geometry)."""
    node = scene.AddNewNodeByClass(node_class, name)
    update_volume_node(node, image)
    return node


def update_volume_node(node, image: sitk.Image) -> None:
    direction = np.array(image.GetDirection()).reshape(3, 3)
    ras_dirs = LPS_TO_RAS @ direction
    matrix = vtk.vtkMatrix4x4()
    for r in range(3):
        for c in range(3):
            matrix.SetElement(r, c, float(ras_dirs[r, c]))
    node.SetIJKToRASDirectionMatrix(matrix)
    node.SetSpacing(*image.GetSpacing())
    node.SetOrigin(*(LPS_TO_RAS @ np.array(image.GetOrigin())))
    slicer.util.updateVolumeFromArray(node, sitk.GetArrayFromImage(image))


def image_from_volume_node(node) -> sitk.Image:
    """The SimpleITK image (LPS) of a volume node (a copy of its voxels)."""
    array = slicer.util.arrayFromVolume(node)
    image = sitk.GetImageFromArray(np.array(array))
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASDirectionMatrix(matrix)
    ras_dirs = np.array([[matrix.GetElement(r, c) for c in range(3)] for r in range(3)])
    image.SetDirection(tuple((LPS_TO_RAS @ ras_dirs).ravel()))
    image.SetSpacing(node.GetSpacing())
    image.SetOrigin(tuple(LPS_TO_RAS @ np.array(node.GetOrigin())))
    return image
