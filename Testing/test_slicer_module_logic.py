"""The module file's Logic and self-test, run on slicer-core.

slicer-core has MRML but not the application framework the module file imports
(``slicer.ScriptedLoadableModule``, ``slicer.parameterNodeWrapper``, ``qt``). Minimal
stand-ins for those three are installed here, only for this test: the parameter node becomes a
plain object with the declared fields and defaults, the Logic's ``getParameterNode`` a
scripted-module node in the scene. Then TAREPlanner.py is imported as Slicer would, and its
own self-test (``TAREPlannerTest``) runs every step through ``TAREPlannerLogic`` on the
synthetic patient. What the stand-ins cannot show (the real wrapper's serialisation and GUI
connectors) is checked against Slicer's rules in test_slicer_module.py.
"""

import importlib
import sys
import types
import typing
import unittest

import pytest
import slicer

from conftest import REPO


def _stand_ins():
    qt = types.ModuleType("qt")

    scripted = types.ModuleType("slicer.ScriptedLoadableModule")

    class ScriptedLoadableModuleLogic:
        def __init__(self, parent=None):
            pass

        def getParameterNode(self):
            scene = slicer.mrmlScene
            node = scene.GetSingletonNode("TAREPlanner", "vtkMRMLScriptedModuleNode")
            if node is None:
                node = scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode")
                node.SetSingletonTag("TAREPlanner")
            return node

    class Base:
        def __init__(self, *args, **kwargs):
            pass

    scripted.ScriptedLoadableModuleLogic = ScriptedLoadableModuleLogic
    scripted.ScriptedLoadableModule = Base
    scripted.ScriptedLoadableModuleWidget = Base
    scripted.ScriptedLoadableModuleTest = unittest.TestCase

    wrapper = types.ModuleType("slicer.parameterNodeWrapper")

    class Choice:
        def __init__(self, choices):
            self.choices = list(choices)

    def _default(cls, name):
        annotation = cls.__annotations__[name]
        return [] if typing.get_origin(annotation) is list else getattr(cls, name, None)

    def parameterPack(cls):
        """A plain class with keyword construction and the declared defaults."""
        names = list(cls.__annotations__)

        def __init__(self, **values):
            unknown = set(values) - set(names)
            if unknown:
                raise TypeError(f"unknown fields {unknown}")
            for name in names:
                setattr(self, name, values.get(name, _default(cls, name)))
        return type(cls.__name__, (), {"__init__": __init__, "__annotations__": dict(
            cls.__annotations__)})

    def parameterNodeWrapper(cls):
        """Values live with the parameter node (as in Slicer): a new wrapper of the same
        node sees them."""
        fields = {name: _default(cls, name) for name in cls.__annotations__}
        values_by_node = {}

        class Wrapped:
            def __init__(self, parameterNode):
                object.__setattr__(self, "parameterNode", parameterNode)
                values_by_node.setdefault(parameterNode.GetID(), dict(fields))

            def __getattr__(self, name):
                values = values_by_node[self.parameterNode.GetID()]
                if name not in values:
                    raise AttributeError(name)
                return values[name]

            def __setattr__(self, name, value):
                if name not in fields:
                    raise AttributeError(f"{cls.__name__} has no parameter {name}")
                values_by_node[self.parameterNode.GetID()][name] = value

        Wrapped.__name__ = cls.__name__
        return Wrapped

    wrapper.Choice = Choice
    wrapper.parameterNodeWrapper = parameterNodeWrapper
    wrapper.parameterPack = parameterPack
    return {"qt": qt, "slicer.ScriptedLoadableModule": scripted,
            "slicer.parameterNodeWrapper": wrapper}


@pytest.fixture
def module(monkeypatch):
    for name, stand_in in _stand_ins().items():
        monkeypatch.setitem(sys.modules, name, stand_in)
    monkeypatch.setattr(slicer, "mrmlScene", slicer.vtkMRMLScene(), raising=False)
    monkeypatch.syspath_prepend(str(REPO / "TAREPlanner"))
    monkeypatch.delitem(sys.modules, "TAREPlanner", raising=False)
    return importlib.import_module("TAREPlanner")


def test_module_self_test_runs_every_step_through_the_logic(module):
    test = module.TAREPlannerTest("test_workflow_on_synthetic_patient")
    test.setUp()
    test.test_workflow_on_synthetic_patient()
    scene = slicer.mrmlScene
    logic = module.TAREPlannerLogic()
    p = logic.getParameterNode()
    assert p.planRecord is not None and p.deliveredDoseReport is not None
    assert logic.plannedDoseVolume().GetAttribute("DicomRtImport.DoseVolume") == "1"
    # isodoses: the product's tumour target (TheraSphere 205 Gy) and the 250 Gy tumour goal;
    # no normal-liver hard limit applies without a site's choice
    assert scene.GetNodesByClass("vtkMRMLModelNode").GetNumberOfItems() >= 2
    for step in ("plan", "verification"):
        dose, chart = logic.doseNodes(step)
        assert dose.GetAttribute("TAREPlanner.Step") == step
        assert chart.GetNumberOfPlotSeriesNodes() >= 5
    titles = logic.stepTitles(p)
    assert titles["registration"] == "2. Registration  [done]"
    assert "missing roles" not in logic.checkSegments(p)
    # an outdated plan is refused by the treatment day (bug caught: a directive written
    # from a plan whose goal had changed since)
    logic.updatePosition(p, 0, goalValue=200.0)
    assert "OUTDATED" in logic.stepTitles(p)["plan"]
    for step in (logic.writtenDirective, logic.administer):
        with pytest.raises(ValueError, match=r"a current plan \(the plan is outdated"):
            step(p)


def test_first_use_check_names_what_is_missing(module, monkeypatch):
    from tareplanner import dependencies
    logic = module.TAREPlannerLogic()
    assert logic.missingRequirements() == dependencies.missing()
    monkeypatch.setattr(dependencies.importlib.util, "find_spec",
                        lambda name: None if name == "highdicom" else object())
    missing = logic.missingRequirements()
    assert [r.distribution for r in missing] == ["highdicom"]
    installed = []
    monkeypatch.setattr(slicer.util, "pip_install", installed.append, raising=False)
    logic.installRequirements(missing)
    assert installed == [["highdicom"]]
    assert "highdicom: DICOM SEG export and import" in logic.installMessage(missing)


def test_panel_readings_are_missing_until_typed_never_zero(module):
    """The Slicer panel's treatment-day readings (line edits read by the web page's rules,
    through the Logic). Bugs caught: a spin box showing 0 for a reading nobody entered (and
    recording it); a decimal comma or a unit read as another number; a refused text
    changing the parameter; an empty residual let through as 0."""
    import math
    logic = module.TAREPlannerLogic()
    p = logic.getParameterNode()
    logic.addPosition(p, name="right hepatic")
    position = p.positions[0]
    assert math.isnan(position.vialGbq) and math.isnan(position.residualGbq)
    assert logic.readingText(position.vialGbq) == logic.readingText(position.residualGbq) == ""
    logic.setReading(p, 0, "vialGbq", "2.5")
    assert p.positions[0].vialGbq == 2.5 and logic.readingText(2.5) == "2.5"
    for text, why in (("1,5", "decimal separator"), ("4 GBq", "without a unit"),
                      ("nan", "a number more than 0"), ("0", "a number more than 0"),
                      ("101", "at most 100 GBq")):
        with pytest.raises(ValueError, match=r"Vial activity \(GBq\) of position 1 "
                                             r"\(right hepatic\): got '" + text + "'.*" + why):
            logic.setReading(p, 0, "vialGbq", text)
        assert p.positions[0].vialGbq == 2.5           # the refused text changed nothing
    logic.setReading(p, 0, "vialGbq", "")
    assert math.isnan(p.positions[0].vialGbq)          # emptied: missing again, not 0
    logic.setReading(p, 0, "residualGbq", "0")          # 0 typed: nothing left, a reading
    assert p.positions[0].residualGbq == 0.0
    with pytest.raises(ValueError, match="Vial time of position 1 .*UTC offset"):
        logic.setReading(p, 0, "vialTime", "2026-12-01T10:00:00")
    logic.setReading(p, 0, "vialTime", " 2026-12-01T10:00:00+01:00 ")
    assert p.positions[0].vialTime == "2026-12-01T10:00:00+01:00"
    with pytest.raises(ValueError, match="reading: got 'goalValue'"):
        logic.setReading(p, 0, "goalValue", "3")
    # an empty residual activity: the administration button says so
    logic.setReading(p, 0, "residualGbq", "")
    assert "right hepatic: the residual activity (0 when none is left)" in \
        logic.missingText(p, "administration")
