"""The MRML layer on real MRML nodes, headless (PyPI slicer-core): geometry LPS <-> RAS,
segmentations <-> masks, dose volume with SlicerRT attributes, tables and DVH plots."""

import numpy as np
import pytest
import SimpleITK as sitk
import slicer

from tareplanner.imaging.phantom_files import label_images
from tareplanner.mrml.results import dose_volume_node, dvh_nodes, indices_table_node
from tareplanner.mrml.segmentations import masks_from_segmentation, segmentation_from_labels
from tareplanner.mrml.volumes import image_from_volume_node, volume_node_from_image


@pytest.fixture
def scene():
    return slicer.vtkMRMLScene()


def test_volume_geometry_lps_to_ras_and_back(scene, small_phantom):
    node = volume_node_from_image(scene, small_phantom.ct, "CT")
    lps = np.array(small_phantom.ct.GetOrigin())
    # RAS = (-L, -P, S): the same physical point in Slicer's convention
    np.testing.assert_allclose(node.GetOrigin(), [-lps[0], -lps[1], lps[2]])
    ijk = (10, 20, 30)
    import vtk
    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    ras_point = m.MultiplyPoint((*ijk, 1.0))[:3]
    lps_point = small_phantom.ct.TransformIndexToPhysicalPoint(ijk)
    np.testing.assert_allclose(ras_point, [-lps_point[0], -lps_point[1], lps_point[2]],
                               atol=1e-6)
    back = image_from_volume_node(node)
    np.testing.assert_allclose(back.GetOrigin(), small_phantom.ct.GetOrigin())
    np.testing.assert_allclose(back.GetDirection(), small_phantom.ct.GetDirection())
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back),
                                  sitk.GetArrayFromImage(small_phantom.ct))


def test_segmentation_round_trip(scene, small_phantom):
    ct = volume_node_from_image(scene, small_phantom.ct, "CT")
    labels = label_images(small_phantom)["tumours"]
    seg = segmentation_from_labels(scene, labels, {1: "T1", 2: "T2", 3: "T3"}, ct)
    masks = masks_from_segmentation(scene, seg, ct)
    truth = sitk.GetArrayFromImage(labels)
    assert list(masks) == ["T1", "T2", "T3"]
    for value, name in enumerate(masks, start=1):
        np.testing.assert_array_equal(masks[name], truth == value)


def test_dose_volume_tables_and_dvh_plots(scene, small_phantom):
    dose_image = sitk.Cast(small_phantom.spect, sitk.sitkFloat32) * 0.5
    node = dose_volume_node(scene, dose_image, "Dose planned")
    assert node.GetAttribute("DicomRtImport.DoseVolume") == "1"
    assert node.GetAttribute("DicomRtImport.DoseUnitName") == "GY"
    report = {
        "T1": {"kind": "tumour", "volume_ml": 58.0, "mean_gy": 300.0, "median_gy": 301.0,
               "min_gy": 120.0, "max_gy": 420.0, "D2": 410.0, "D50": 301.0, "D70": 280.0,
               "D90": 240.0, "D95": 220.0, "D98": 200.0, "V100": 100.0,
               "dvh": {"dose_gy": [0.0, 1.0, 2.0], "volume_percent": [100.0, 99.0, 98.0]}},
        "lungs": {"kind": "lung", "volume_ml": 2500.0, "mean_gy": 20.0, "median_gy": 19.0,
                  "min_gy": 1.0, "max_gy": 90.0, "D2": 60.0, "D50": 19.0, "D70": 15.0,
                  "D90": 9.0, "D95": 7.0, "D98": 5.0, "V100": 0.0,
                  "dvh": {"dose_gy": [0.0, 1.0, 2.0], "volume_percent": [100.0, 90.0, 80.0]}},
    }
    table = indices_table_node(scene, report)
    assert table.GetNumberOfRows() == 2
    assert table.GetCellText(0, 0) == "T1"
    col = table.GetTable().GetColumnByName("D70")
    assert col.GetValue(0) == pytest.approx(280.0) and col.GetValue(1) == pytest.approx(15.0)
    dvh_table, chart, series = dvh_nodes(scene, report)
    assert chart.GetNumberOfPlotSeriesNodes() == 2
    assert series[1].GetYColumnName() == "lungs (%)"
    assert dvh_table.GetTable().GetColumnByName("lungs (%)").GetValue(2) == pytest.approx(80.0)
