"""Segmentation nodes <-> label maps and boolean masks on a reference grid."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
import slicer
import vtk

from ..imaging.arrays import image_array
from .volumes import image_from_volume_node, volume_node_from_image


def segmentation_from_labels(scene, labels: sitk.Image, names: dict[int, str], reference_node,
                             node_name: str = "Segmentation"):
    """A segmentation node with one segment per label value (``names``: value -> name)."""
    label_node = volume_node_from_image(scene, sitk.Cast(labels, sitk.sitkInt16),
                                        "_labels", "vtkMRMLLabelMapVolumeNode")
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", node_name)
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(reference_node)
    slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(label_node,
                                                                             segmentation)
    scene.RemoveNode(label_node)
    seg = segmentation.GetSegmentation()
    present = sorted(int(v) for v in np.unique(image_array(labels)) if v)
    for index, value in enumerate(present):
        segment = seg.GetNthSegment(index)
        segment.SetName(names.get(value, f"label {value}"))
    return segmentation


def masks_from_segmentation(scene, segmentation, reference_node) -> dict[str, np.ndarray]:
    """Boolean masks ([z, y, x], on ``reference_node``'s grid) of every segment, by name."""
    seg = segmentation.GetSegmentation()
    masks = {}
    for index in range(seg.GetNumberOfSegments()):
        segment_id = seg.GetNthSegmentID(index)
        label_node = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "_export")
        ids = vtk.vtkStringArray()
        ids.InsertNextValue(segment_id)
        slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
            segmentation, ids, label_node, reference_node)
        masks[seg.GetNthSegment(index).GetName()] = \
            sitk.GetArrayFromImage(image_from_volume_node(label_node)) > 0
        scene.RemoveNode(label_node)
    return masks
