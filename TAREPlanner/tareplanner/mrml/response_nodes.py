"""The plan's dose–response curves as MRML nodes: per outcome (tumour response, liver
toxicity) a table of the curve and its 95 % band, a table of the plan's values on the curve,
and one plot chart of both, so the Slicer module shows the curves with the plan's doses
marked (Plots module, or the chart in a plot view)."""

from __future__ import annotations

import numpy as np
import vtk

from ..records.response_report import CURVE_POINTS, _curve
from .attributes import CHART

CHART_KIND = "dose-response"


def _table(scene, name: str, columns: dict):
    table = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    for column, values in columns.items():
        array = vtk.vtkDoubleArray()
        array.SetName(column)
        for v in values:
            array.InsertNextValue(float(v))
        table.AddColumn(array)
    return table


def response_chart_nodes(scene, part: dict) -> list:
    """Tables, series and the chart of a plan's ``dose_response`` part ([] when its fit has
    no curve with a slope). The x axis is each fit's metric in Gy, the y axis the
    probability."""
    nodes, series = [], []
    marks_by = {"tumour": [(f"{r['position']}/{r['tumour']}", r.get("planned_value_gy"))
                           for r in part["tumours"]],
                "liver": [("normal liver", part["liver"].get("planned_value_gy"))]}
    for name, label in (("tumour", "P(response)"), ("liver", "P(toxicity)")):
        entry = part["fit"].get(name)
        curve = _curve(entry) if entry else None
        if curve is None:
            continue
        marks = [(n, v) for n, v in marks_by[name] if v is not None]
        top = max([v for _, v in marks] + [-entry["params"][0] / entry["params"][1]]) * 1.5
        x = np.linspace(0.0, max(top, 1.0), CURVE_POINTS)
        p, low, high = curve.probability(x)
        table = _table(scene, f"Dose-response {name} curve",
                       {"dose_gy": x, "p": p, "low": low, "high": high})
        nodes.append(table)
        for column, style in (("p", "solid"), ("low", "dash"), ("high", "dash")):
            s = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode",
                                        f"{label} {'' if column == 'p' else column}".strip())
            s.SetAndObserveTableNodeID(table.GetID())
            s.SetXColumnName("dose_gy")
            s.SetYColumnName(column)
            s.SetPlotType(s.PlotTypeScatter)
            s.SetMarkerStyle(s.MarkerStyleNone)
            if style == "dash":
                s.SetLineStyle(s.LineStyleDash)
            series.append(s)
        if marks:
            values = np.array([v for _, v in marks])
            marked = _table(scene, f"Dose-response {name} plan",
                            {"dose_gy": values, "p": curve.probability(values)[0]})
            nodes.append(marked)
            s = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", f"{label} at the plan")
            s.SetAndObserveTableNodeID(marked.GetID())
            s.SetXColumnName("dose_gy")
            s.SetYColumnName("p")
            s.SetPlotType(s.PlotTypeScatter)
            s.SetLineStyle(s.LineStyleNone)
            s.SetMarkerStyle(s.MarkerStyleCircle)
            series.append(s)
    if not series:
        return []
    chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", "Dose-response chart")
    chart.SetAttribute(CHART, CHART_KIND)
    chart.SetTitle("Dose-response at the plan's doses (information, not limits)")
    chart.SetXAxisTitle("dose metric of the fit (Gy)")
    chart.SetYAxisTitle("probability")
    for s in series:
        chart.AddAndObservePlotSeriesNodeID(s.GetID())
    return nodes + series + [chart]
