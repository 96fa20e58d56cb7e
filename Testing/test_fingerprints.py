"""Node digests of the step log (tareplanner.mrml.fingerprints), headless."""

import numpy as np
import SimpleITK as sitk
import slicer
import vtk

from tareplanner.mrml.fingerprints import node_digest, segments_digest, value_digest
from tareplanner.mrml.segmentations import segmentation_from_labels
from tareplanner.mrml.volumes import volume_node_from_image
from tareplanner.mrml.workflow import set_role


def _volume(scene):
    image = sitk.GetImageFromArray(np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6))
    return volume_node_from_image(scene, image, "v")


def test_volume_digest_follows_voxels_geometry_and_transform():
    scene = slicer.vtkMRMLScene()
    node = _volume(scene)
    first = node_digest(node)
    assert node_digest(node) == first                     # unchanged (cached) -> same
    array = slicer.util.arrayFromVolume(node)
    array[1, 2, 3] += 1
    slicer.util.arrayFromVolumeModified(node)
    edited = node_digest(node)
    assert edited != first
    node.SetSpacing(1.0, 1.0, 2.0)
    assert node_digest(node) != edited
    spaced = node_digest(node)
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    node.SetAndObserveTransformNodeID(transform.GetID())
    matrix = vtk.vtkMatrix4x4()
    matrix.SetElement(0, 3, 5.0)
    transform.SetMatrixTransformToParent(matrix)
    assert node_digest(node) != spaced
    assert node_digest(node, with_transform=False) == spaced
    assert node_digest(None) == ""


def test_segments_digest_by_role():
    scene = slicer.vtkMRMLScene()
    reference = _volume(scene)
    labels = np.zeros((4, 5, 6), np.uint8)
    labels[1:3, 1:3, 1:3] = 1
    labels[1:3, 1:3, 4:6] = 2
    image = sitk.GetImageFromArray(labels)
    seg = segmentation_from_labels(scene, image, {1: "liver", 2: "T1"}, reference)
    set_role(seg, "liver", "liver")
    liver_before = segments_digest(seg, "liver")
    tumours_before = segments_digest(seg, "tumour")
    set_role(seg, "T1", "tumour")
    assert segments_digest(seg, "liver") == liver_before      # other roles do not count
    assert segments_digest(seg, "tumour") != tumours_before
    assert node_digest(seg) != ""
    assert value_digest((1, "a")) == value_digest((1, "a")) != value_digest((1, "b"))


def test_text_node_digest():
    scene = slicer.vtkMRMLScene()
    text = scene.AddNewNodeByClass("vtkMRMLTextNode")
    text.SetText("a")
    before = node_digest(text)
    text.SetText("b")
    assert node_digest(text) != before
