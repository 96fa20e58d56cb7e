"""Isodose surfaces and the dose colour table (tareplanner.mrml.isodose), headless.

Reference: a Gaussian dose D(r) = D0 exp(-(r/s)^2) on an anisotropic, rotated grid; the
isodose surface at level L is the sphere r = s sqrt(ln(D0/L)) (volume 4/3 pi r^3, centred on
the peak), computed by hand here.
"""

import numpy as np
import pytest
import SimpleITK as sitk
import slicer
import vtk

from tareplanner.errors import FieldValueError
from tareplanner.mrml.isodose import (default_levels_gy, dose_colour_table, isodose_model_nodes,
                                      parse_levels_gy, show_dose_with_levels)
from tareplanner.mrml.volumes import volume_node_from_image

D0, S_MM = 200.0, 40.0
SPACING = (2.0, 1.5, 3.0)
PEAK_INDEX = (40, 35, 30)        # x, y, z


@pytest.fixture(scope="module")
def dose_scene():
    z, y, x = np.mgrid[:60, :70, :80]
    r = np.sqrt(((x - PEAK_INDEX[0]) * SPACING[0]) ** 2 + ((y - PEAK_INDEX[1]) * SPACING[1]) ** 2
                + ((z - PEAK_INDEX[2]) * SPACING[2]) ** 2)
    dose = (D0 * np.exp(-(r / S_MM) ** 2)).astype(np.float32)
    dose[5, 5, 5] = 150.0                       # a one-voxel hot spot (noise)
    image = sitk.GetImageFromArray(dose)
    image.SetSpacing(SPACING)
    image.SetOrigin((10.0, -20.0, 5.0))
    image.SetDirection((0, 1, 0, -1, 0, 0, 0, 0, 1))
    scene = slicer.vtkMRMLScene()
    return scene, volume_node_from_image(scene, image, "Dose"), image


def _volume_and_centre(model):
    mass = vtk.vtkMassProperties()
    mass.SetInputData(model.GetPolyData())
    mass.Update()
    centre = vtk.vtkCenterOfMass()
    centre.SetInputData(model.GetPolyData())
    centre.SetUseScalarsAsWeights(False)
    centre.Update()
    return mass.GetVolume(), np.array(centre.GetCenter())


def test_isodose_surfaces_enclose_the_analytic_volume_at_the_right_place(dose_scene):
    scene, node, image = dose_scene
    levels = [50.0, 100.0, 150.0]
    models = isodose_model_nodes(scene, node, levels)
    lps = np.array(image.TransformIndexToPhysicalPoint(PEAK_INDEX))
    peak_ras = lps * [-1, -1, 1]
    for level, model in zip(levels, models):
        radius = S_MM * np.sqrt(np.log(D0 / level))
        volume, centre = _volume_and_centre(model)
        assert volume == pytest.approx(4 / 3 * np.pi * radius ** 3, rel=0.02)
        assert np.linalg.norm(centre - peak_ras) < 0.5
        assert model.GetAttribute("TAREPlanner.IsodoseLevelGy") == f"{level:g}"
        assert model.GetDisplayNode().GetVisibility2D()
    # blue for the lowest level, red for the highest
    assert models[0].GetDisplayNode().GetColor()[2] > 0.9
    assert models[-1].GetDisplayNode().GetColor()[0] > 0.85


def test_small_regions_are_not_drawn_unless_asked(dose_scene):
    scene, node, _ = dose_scene
    default, = isodose_model_nodes(scene, node, [140.0])
    every, = isodose_model_nodes(scene, node, [140.0], min_region_ml=0.0)
    regions = []
    for model in (default, every):
        connectivity = vtk.vtkPolyDataConnectivityFilter()
        connectivity.SetInputData(model.GetPolyData())
        connectivity.SetExtractionModeToAllRegions()
        connectivity.Update()
        regions.append(connectivity.GetNumberOfExtractedRegions())
    assert regions == [1, 2]


def test_colour_table_bands(dose_scene):
    scene, node, _ = dose_scene
    table = dose_colour_table(scene, [100.0, 50.0])
    show_dose_with_levels(node, table)
    display = node.GetDisplayNode()
    assert display.GetColorNodeID() == table.GetID()
    assert (display.GetWindowLevelMin(), display.GetWindowLevelMax()) == (0.0, 100.0)
    assert display.GetApplyThreshold()
    assert display.GetLowerThreshold() == 50.0 and display.GetUpperThreshold() == pytest.approx(D0)
    n = table.GetNumberOfColors()
    rgba = [0.0] * 4
    table.GetColor(int(0.4 * (n - 1)), rgba)       # 40 Gy: below the lowest level
    assert rgba[3] == 0.0
    table.GetColor(int(0.6 * (n - 1)), rgba)       # 60 Gy: first band, opaque
    assert rgba[3] == 1.0
    with pytest.raises(ValueError):
        dose_colour_table(scene, [])


def test_levels_from_the_plan_and_from_text():
    record = {"limits": {"applied_normal_liver": "normal_liver_gy",
                         "normal_liver_gy": {"value": 120, "source": "x"}},
              "tumour_target_gy": {"min": 205, "max": None},
              "positions": [{"goal": {"tumour_dose_gy": 250}}, {"goal": {"activity_gbq": 1.2}},
                            {"goal": {"normal_dose_gy": 40}}]}
    assert default_levels_gy(record) == [40.0, 120.0, 205.0, 250.0]
    assert parse_levels_gy("205, 50;120 ,50") == [50.0, 120.0, 205.0]
    with pytest.raises(FieldValueError, match="isodose levels"):
        parse_levels_gy("50, -3")
    with pytest.raises(FieldValueError, match="isodose levels"):
        parse_levels_gy("fifty")
