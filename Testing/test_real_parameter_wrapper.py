"""The module's parameter node on Slicer's own ``slicer.parameterNodeWrapper``.

slicer-core lacks the wrapper (it is part of the Slicer application's Python), so this test
runs only when ``SLICER_SOURCE_DIR`` names a Slicer source tree (it loads
``Base/Python/slicer/parameterNodeWrapper`` from there, with stand-ins for the Qt modules it
imports; no Slicer code is copied here). It checks what the stand-ins of
test_slicer_module_logic.py cannot: the class built from ``mrml.parameters`` is accepted, a
list of five positions (parameterPacks holding node references) is stored in the parameter
node, read back by a new wrapper, survives saving and reloading the scene, and a value outside
a Choice is refused; then the module's own self-test runs every step on it.

    SLICER_SOURCE_DIR=/path/to/Slicer pytest Testing/test_real_parameter_wrapper.py
"""

import importlib
import importlib.util
import os
import sys
import types
from pathlib import Path

import pytest
import slicer

from conftest import REPO

SOURCE = os.environ.get("SLICER_SOURCE_DIR", "")
WRAPPER = Path(SOURCE) / "Base" / "Python" / "slicer" / "parameterNodeWrapper"
pytestmark = pytest.mark.skipif(not (SOURCE and (WRAPPER / "__init__.py").is_file()),
                                reason="SLICER_SOURCE_DIR does not name a Slicer source tree")


def _any_attribute_module(name):
    module = types.ModuleType(name)
    made = {}

    def __getattr__(attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return made.setdefault(attr, type(attr, (), {"__init__": lambda self, *a, **k: None}))
    module.__getattr__ = __getattr__
    return module


@pytest.fixture
def wrapper(monkeypatch):
    for name in ("qt", "ctk"):
        monkeypatch.setitem(sys.modules, name, _any_attribute_module(name))
    widgets = _any_attribute_module("widgets")
    for name in ("qMRMLNodeComboBox", "qMRMLSubjectHierarchyTreeView",
                 "qMRMLSubjectHierarchyComboBox", "qMRMLCheckableNodeComboBox",
                 "qMRMLSegmentSelectorWidget", "qSlicerWidget", "qMRMLWidget",
                 "qMRMLSliderWidget", "qMRMLRangeWidget", "qMRMLSpinBox"):
        if not hasattr(slicer, name):
            monkeypatch.setattr(slicer, name, getattr(widgets, name), raising=False)
    if not hasattr(slicer.util, "NodeModify"):
        class NodeModify:
            def __init__(self, node):
                self.node = node

            def __enter__(self):
                self.was = self.node.StartModify()
                return self.node

            def __exit__(self, *exc):
                self.node.EndModify(self.was)
        monkeypatch.setattr(slicer.util, "NodeModify", NodeModify, raising=False)
    spec = importlib.util.spec_from_file_location(
        "slicer.parameterNodeWrapper", WRAPPER / "__init__.py",
        submodule_search_locations=[str(WRAPPER)])
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "slicer.parameterNodeWrapper", module)
    spec.loader.exec_module(module)
    return module


def test_five_positions_round_trip_through_the_real_wrapper(wrapper):
    from tareplanner.mrml import guided
    from tareplanner.mrml.parameters import slicer_parameter_node_class
    cls = slicer_parameter_node_class()
    scene = slicer.vtkMRMLScene()
    node = scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode")
    p = cls(node)
    assert (p.product, p.method, list(p.positions)) == ("therasphere", "partition", [])
    cbcts = [scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode") for _ in range(5)]
    guided.set_positions(p, [guided.new_position(p, name=f"segment {k + 2}", cbct=c)
                             for k, c in enumerate(cbcts)])
    guided.update_position(p, 4, goalKind="normal_dose_gy", goalValue=40.0, vialGbq=1.5)
    again = cls(node)
    assert [q.name for q in again.positions] == [f"segment {k}" for k in range(2, 7)]
    assert [q.cbct for q in again.positions] == cbcts
    assert (again.positions[4].goalKind, again.positions[4].goalValue,
            again.positions[4].vialGbq) == ("normal_dose_gy", 40.0, 1.5)
    scene.SetSaveToXMLString(1)
    scene.Commit()
    reloaded = slicer.vtkMRMLScene()
    reloaded.SetLoadFromXMLString(1)
    reloaded.SetSceneXMLString(scene.GetSceneXMLString())
    reloaded.Import()
    p2 = cls(reloaded.GetNodesByClass("vtkMRMLScriptedModuleNode").GetItemAsObject(0))
    assert [q.cbct.GetID() for q in p2.positions] == [c.GetID() for c in cbcts]
    with pytest.raises(ValueError, match="must be in one of the following"):
        guided.update_position(p2, 0, goalKind="nonsense")


def test_module_self_test_on_the_real_wrapper(wrapper, monkeypatch):
    from test_slicer_module_logic import _stand_ins
    monkeypatch.setitem(sys.modules, "slicer.ScriptedLoadableModule",
                        _stand_ins()["slicer.ScriptedLoadableModule"])
    monkeypatch.setattr(slicer, "mrmlScene", slicer.vtkMRMLScene(), raising=False)
    monkeypatch.syspath_prepend(str(REPO / "TAREPlanner"))
    monkeypatch.delitem(sys.modules, "TAREPlanner", raising=False)
    module = importlib.import_module("TAREPlanner")
    test = module.TAREPlannerTest("test_workflow_on_synthetic_patient")
    test.setUp()
    test.test_workflow_on_synthetic_patient()
    p = module.TAREPlannerLogic().getParameterNode()
    assert [q.name for q in p.positions] == ["right hepatic", "left hepatic"]
