"""Isodose display of a dose volume: surfaces at chosen dose levels as model nodes (shown as
contours in the slice views and as surfaces in 3D) and a dose colour table for the volume.

Levels default to the plan's own numbers: the normal-liver limit that applied, the tumour
dose target of the product (lower end of its range) and every position's dose goal.
"""

from __future__ import annotations

import numpy as np
import vtk

from . import attributes

#: colours of isodose levels, lowest first (blue -> red)
LEVEL_COLOURS = ((0.20, 0.40, 1.00), (0.10, 0.80, 0.90), (0.20, 0.85, 0.20),
                 (1.00, 0.85, 0.10), (1.00, 0.50, 0.00), (0.90, 0.10, 0.10))


def default_levels_gy(record: dict) -> list[float]:
    """Dose levels worth seeing for a plan record (Gy, ascending)."""
    levels = set()
    limits = record.get("limits") or {}
    applied = limits.get("applied_normal_liver")
    if applied and isinstance(limits.get(applied), dict) and limits[applied].get("value"):
        levels.add(float(limits[applied]["value"]))
    target = (record.get("tumour_target_gy") or {}).get("min")
    if target:
        levels.add(float(target))
    for row in (record.get("guideline_check") or {}).get("rows", []):
        # the scenario's thresholds on a position's doses (tumour, perfused, normal liver)
        if row.get("quantity") in ("tumour", "perfused", "normal_perfused"):
            levels.update(float(v) for v in (row.get("value"), row.get("high")) if v)
    for position in record.get("positions", []):
        for kind, value in (position.get("goal") or {}).items():
            if kind.endswith("_dose_gy") and value:
                levels.add(float(value))
    return sorted(levels)


def parse_levels_gy(text: str, field: str = "isodose levels") -> list[float]:
    """'50, 120, 205' -> [50.0, 120.0, 205.0]; each level must be a positive number."""
    from ..errors import FieldValueError
    levels = []
    for item in (s.strip() for s in text.replace(";", ",").split(",")):
        if not item:
            continue
        try:
            value = float(item)
        except ValueError:
            value = float("nan")
        if not value > 0:
            raise FieldValueError(field, item, "positive doses in Gy separated by commas")
        levels.append(value)
    return sorted(set(levels))


def _colour(index: int, count: int):
    if count <= 1:
        return LEVEL_COLOURS[-1]
    return LEVEL_COLOURS[round(index * (len(LEVEL_COLOURS) - 1) / (count - 1))]


def _without_small_regions(dose: np.ndarray, level: float, min_voxels: int) -> np.ndarray:
    """The dose with connected regions at or above ``level`` smaller than ``min_voxels`` set
    to zero (6-connectivity)."""
    from scipy import ndimage
    labels, count = ndimage.label(dose >= level)
    if count == 0:
        return dose
    sizes = np.bincount(labels.ravel())
    small = sizes < min_voxels
    small[0] = False
    if not small.any():
        return dose
    out = dose.copy()
    out[small[labels]] = 0.0
    return out


def surface_ras(values: np.ndarray, level: float, ijk_to_ras) -> vtk.vtkPolyData:
    """Closed surface where a [k, j, i] array crosses ``level`` (flying edges on the array
    padded by one voxel of zeros, so surfaces reaching the border close), in RAS through
    ``ijk_to_ras`` (vtkMatrix4x4), with consistent outward normals."""
    from vtk.util.numpy_support import numpy_to_vtk
    image = vtk.vtkImageData()
    image.SetDimensions(values.shape[2], values.shape[1], values.shape[0])
    image.GetPointData().SetScalars(numpy_to_vtk(np.ascontiguousarray(values).ravel(),
                                                 deep=True))
    padded = vtk.vtkImageConstantPad()
    padded.SetInputData(image)
    padded.SetOutputWholeExtent(-1, values.shape[2], -1, values.shape[1], -1, values.shape[0])
    padded.SetConstant(0)
    surface = vtk.vtkFlyingEdges3D()
    surface.SetInputConnection(padded.GetOutputPort())
    surface.SetValue(0, level)
    surface.ComputeNormalsOff()
    transform = vtk.vtkTransform()
    transform.SetMatrix(ijk_to_ras)
    to_ras = vtk.vtkTransformPolyDataFilter()
    to_ras.SetInputConnection(surface.GetOutputPort())
    to_ras.SetTransform(transform)
    normals = vtk.vtkPolyDataNormals()
    normals.SetInputConnection(to_ras.GetOutputPort())
    normals.SplittingOff()
    normals.ConsistencyOn()
    normals.AutoOrientNormalsOn()
    normals.Update()
    polydata = vtk.vtkPolyData()
    polydata.DeepCopy(normals.GetOutput())
    return polydata


def isodose_model_nodes(scene, dose_node, levels_gy, *, name: str | None = None,
                        opacity_3d: float = 0.3, min_region_ml: float = 0.5) -> list:
    """One closed surface per level (RAS, from the dose volume's geometry) as a model node,
    coloured blue (low) to red (high), visible in 3D and as a contour in the slice views.
    Regions above a level smaller than ``min_region_ml`` (noise hot spots of a few voxels,
    e.g. in the lungs of a count-limited SPECT) are not drawn; DVHs are unaffected."""
    import slicer
    name = name or f"{dose_node.GetName()} isodose"
    dose = np.array(slicer.util.arrayFromVolume(dose_node), dtype=np.float32)  # a copy
    voxel_ml = float(np.prod(dose_node.GetSpacing())) / 1000.0
    min_voxels = max(1, int(np.ceil(min_region_ml / voxel_ml)))
    ijk_to_ras = vtk.vtkMatrix4x4()
    dose_node.GetIJKToRASMatrix(ijk_to_ras)
    nodes = []
    levels = sorted(float(v) for v in levels_gy)
    for index, level in enumerate(levels):
        values = _without_small_regions(dose, level, min_voxels)
        polydata = surface_ras(values, level, ijk_to_ras)
        model = scene.AddNewNodeByClass("vtkMRMLModelNode", f"{name} {level:g} Gy")
        model.SetAndObservePolyData(polydata)
        model.SetAttribute(attributes.ISODOSE_LEVEL_GY, f"{level:g}")
        model.SetAttribute(attributes.ISODOSE_DOSE_VOLUME, dose_node.GetID())
        model.CreateDefaultDisplayNodes()
        display = model.GetDisplayNode()
        display.SetColor(*_colour(index, len(levels)))
        display.SetOpacity(opacity_3d)
        display.SetVisibility2D(True)
        display.SetSliceIntersectionThickness(2)
        nodes.append(model)
    return nodes


def dose_colour_table(scene, levels_gy, *, name: str = "TAREPlanner dose levels"):
    """A colour table for the dose volume: transparent below the lowest level, then one
    colour per band between levels (same colours as the isodose surfaces). Its range is
    [0, highest level]; doses above the highest level take the top colour."""
    levels = sorted(float(v) for v in levels_gy)
    if not levels:
        raise ValueError("isodose levels: give at least one level")
    top = levels[-1]
    entries = 256
    table = scene.AddNewNodeByClass("vtkMRMLColorTableNode", name)
    table.SetTypeToUser()
    table.SetNumberOfColors(entries)
    for i in range(entries):
        dose = top * i / (entries - 1)
        band = sum(1 for level in levels if dose >= level) - 1
        if band < 0:
            table.SetColor(i, f"below {levels[0]:g} Gy", 0.0, 0.0, 0.0, 0.0)
        else:
            r, g, b = _colour(band, len(levels))
            table.SetColor(i, f">= {levels[band]:g} Gy", r, g, b, 1.0)
    table.SetAttribute(attributes.LEVELS_GY, ",".join(f"{v:g}" for v in levels))
    return table


def show_dose_with_levels(dose_node, table) -> None:
    """Display the dose volume with the level colour table, window [0, highest level], and
    voxels below the lowest level hidden (display threshold), so the dose shows as coloured
    bands over the CT."""
    import numpy as np

    import slicer
    dose_node.CreateDefaultDisplayNodes()
    display = dose_node.GetDisplayNode()
    display.SetAndObserveColorNodeID(table.GetID())
    levels = [float(v) for v in table.GetAttribute(attributes.LEVELS_GY).split(",")]
    display.AutoWindowLevelOff()
    display.SetWindowLevelMinMax(0.0, levels[-1])
    display.AutoThresholdOff()
    display.SetApplyThreshold(True)
    peak = float(np.max(slicer.util.arrayFromVolume(dose_node), initial=0.0))
    display.SetThreshold(levels[0], max(peak, levels[-1]))
