"""The scripted module file: Slicer conventions that can be checked without the application.

slicer-core has no ScriptedLoadableModule (it is part of the Slicer application), so the
module file is parsed, not imported; the Logic's work is the core's, tested elsewhere.
"""

import ast

from conftest import REPO

MODULE = REPO / "TAREPlanner" / "TAREPlanner.py"


def _tree():
    return ast.parse(MODULE.read_text(), filename=str(MODULE))


def test_module_defines_the_four_scripted_module_classes():
    classes = {node.name: [b.id for b in node.bases if isinstance(b, ast.Name)]
               for node in _tree().body if isinstance(node, ast.ClassDef)}
    assert classes["TAREPlanner"] == ["ScriptedLoadableModule"]
    assert classes["TAREPlannerWidget"] == ["ScriptedLoadableModuleWidget",
                                            "VTKObservationMixin"]
    assert classes["TAREPlannerLogic"] == ["ScriptedLoadableModuleLogic"]
    assert classes["TAREPlannerTest"] == ["ScriptedLoadableModuleTest"]


def test_module_category_and_help():
    text = MODULE.read_text()
    assert 'self.parent.categories = ["Nuclear Medicine"]' in text
    assert 'self.parent.title = "TAREPlanner"' in text
    assert "self.parent.helpText" in text


def test_only_the_widget_imports_qt():
    top_level_imports = [node for node in _tree().body
                         if isinstance(node, (ast.Import, ast.ImportFrom))]
    names = {alias.name for node in top_level_imports for alias in node.names}
    assert not {"qt", "ctk"} & names


def test_core_package_never_imports_slicer_or_qt():
    for path in (REPO / "TAREPlanner" / "tareplanner").rglob("*.py"):
        if "mrml" in path.parts:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mods = [node.module or ""]
            else:
                continue
            for mod in mods:
                assert mod.split(".")[0] not in {"slicer", "qt", "ctk"}, f"{path}: {mod}"


UI = REPO / "TAREPlanner" / "Resources" / "UI" / "TAREPlanner.ui"


def _ui_widgets():
    import xml.etree.ElementTree as ET

    root = ET.parse(UI).getroot()
    widgets = {w.get("name"): w for w in root.iter("widget") if w.get("name")}
    bound = {}
    for name, w in widgets.items():
        for prop in w.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bound[name] = prop.find("string").text
    return root, widgets, bound


def _parameter_fields():
    tree = _tree()
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef)
               and n.name == "TAREPlannerParameterNode")
    assert any(getattr(d, "id", None) == "parameterNodeWrapper" for d in cls.decorator_list)
    return {stmt.target.id for stmt in cls.body if isinstance(stmt, ast.AnnAssign)}


def test_ui_file_is_valid_and_matches_the_widget():
    root, widgets, bound = _ui_widgets()
    assert root.tag == "ui" and root.find("class").text == "TAREPlanner"
    # every self.ui.<name> the Widget uses exists in the .ui
    used = set()
    for node in ast.walk(_tree()):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                and node.value.attr == "ui"):
            used.add(node.attr)
        if isinstance(node, ast.Dict):
            used |= {k.value for k in node.keys
                     if isinstance(k, ast.Constant) and str(k.value).endswith("Button")}
    assert used and used <= set(widgets), used - set(widgets)
    # the seven steps are there, in order
    titles = [w.find("property/string").text for w in root.iter("widget")
              if w.get("class") == "ctkCollapsibleButton"]
    assert [t.split(".")[0] for t in titles] == ["1", "2", "3", "4", "5", "6", "7"]
    # every bound widget names a parameter-node field, and every field has a widget
    fields = _parameter_fields()
    assert set(bound.values()) == fields
    # node selectors receive the scene
    selectors = {n for n, w in widgets.items() if w.get("class") == "qMRMLNodeComboBox"}
    receivers = {c.find("receiver").text for c in root.iter("connection")}
    assert selectors <= receivers
