"""Results as MRML nodes: dose volume (SlicerRT conventions), tables and DVH plots."""

from __future__ import annotations

import SimpleITK as sitk
import vtk

from . import attributes
from .volumes import volume_node_from_image

INDEX_COLUMNS = ("volume_ml", "mean_gy", "median_gy", "min_gy", "max_gy", "D2", "D50", "D70",
                 "D90", "D95", "D98")


def dose_volume_node(scene, dose: sitk.Image, name: str = "Dose"):
    """A scalar volume marked as dose (SlicerRT: attribute DicomRtImport.DoseVolume = 1,
    unit Gy), so isodose and DVH modules can use it."""
    node = volume_node_from_image(scene, sitk.Cast(dose, sitk.sitkFloat32), name)
    node.SetAttribute(attributes.DOSE_VOLUME, "1")
    node.SetAttribute(attributes.DOSE_UNIT_NAME, "GY")
    node.SetAttribute(attributes.DOSE_UNIT_VALUE, "1.0")
    return node


def _table(scene, name: str, columns: dict[str, list], string_columns=("structure", "kind")):
    table = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    for column, values in columns.items():
        array = vtk.vtkStringArray() if column in string_columns else vtk.vtkDoubleArray()
        array.SetName(column)
        for v in values:
            array.InsertNextValue(str(v) if column in string_columns else float(v))
        table.AddColumn(array)
    return table


def indices_table_node(scene, report: dict, name: str = "Dose indices"):
    """One row per structure: volume (mL), mean/median/min/max and D_x (Gy), V_x (%)."""
    names = list(report)
    v_columns = sorted({k for r in report.values() for k in r if k.startswith("V")
                        and k[1:].replace(".", "").isdigit()}, key=lambda k: float(k[1:]))
    columns = {"structure": names, "kind": [report[n]["kind"] for n in names]}
    for key in INDEX_COLUMNS + tuple(v_columns):
        columns[key] = [report[n].get(key, float("nan")) for n in names]
    return _table(scene, name, columns)


def dvh_nodes(scene, report: dict, name: str = "DVH"):
    """DVH as a table (dose in Gy, volume in % per structure), plot series and a chart."""
    names = list(report)
    dose = report[names[0]]["dvh"]["dose_gy"]
    columns = {"dose_gy": dose}
    for n in names:
        columns[f"{n} (%)"] = report[n]["dvh"]["volume_percent"]
    table = _table(scene, f"{name} table", columns, string_columns=())
    chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", f"{name} chart")
    chart.SetTitle("Cumulative DVH")
    chart.SetXAxisTitle("Dose (Gy)")
    chart.SetYAxisTitle("Volume (%)")
    series_nodes = []
    for n in names:
        series = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", n)
        series.SetAndObserveTableNodeID(table.GetID())
        series.SetXColumnName("dose_gy")
        series.SetYColumnName(f"{n} (%)")
        series.SetPlotType(series.PlotTypeScatter)
        series.SetMarkerStyle(series.MarkerStyleNone)
        chart.AddAndObservePlotSeriesNodeID(series.GetID())
        series_nodes.append(series)
    return table, chart, series_nodes


def record_text_node(scene, record: dict, name: str, node=None):
    """Keep a record (measurement, plan, dose report) in the scene as JSON in a text node, so
    it is saved and restored with the scene; ``node`` is updated in place when given."""
    import json
    node = node or scene.AddNewNodeByClass("vtkMRMLTextNode", name)
    node.SetText(json.dumps(record, indent=1, sort_keys=True, default=str))
    node.SetAttribute(attributes.RECORD, str(record.get("schema", "report")))
    return node


def record_from_text_node(node) -> dict | None:
    """The record kept by :func:`record_text_node` (None for no node or an empty one)."""
    import json
    if node is None or not node.GetText():
        return None
    return json.loads(node.GetText())
