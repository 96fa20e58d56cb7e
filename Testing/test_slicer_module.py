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


def test_only_the_widget_uses_qt():
    """qt/ctk appear in the Widget only: Logic, parameter node and test are GUI-free."""
    for node in _tree().body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name != "TAREPlannerWidget":
            used = {n.value.id for n in ast.walk(node) if isinstance(n, ast.Attribute)
                    and isinstance(n.value, ast.Name)}
            assert not {"qt", "ctk"} & used, node.name


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
    """Field name -> annotation (AST) of the parameter node declaration."""
    tree = _tree()
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef)
               and n.name == "TAREPlannerParameterNode")
    assert any(getattr(d, "id", None) == "parameterNodeWrapper" for d in cls.decorator_list)
    return {stmt.target.id: stmt for stmt in cls.body if isinstance(stmt, ast.AnnAssign)}


def _module_constants():
    return {node.targets[0].id: ast.literal_eval(node.value) for node in _tree().body
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id.isupper() and isinstance(node.value, ast.List)}


def _internal(stmt):
    """Results kept by the steps (text nodes, the step log): no widget."""
    return ast.unparse(stmt.annotation) == "slicer.vtkMRMLTextNode" or stmt.target.id == "stepLog"


def test_ui_file_is_valid_and_matches_the_widget():
    root, widgets, bound = _ui_widgets()
    assert root.tag == "ui" and root.find("class").text == "TAREPlanner"
    # every self.ui.<name> the Widget uses exists in the .ui
    used = set()
    for node in ast.walk(_tree()):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                and node.value.attr == "ui"):
            used.add(node.attr)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                node.value.endswith(("Button", "CollapsibleButton")) and node.value[0].islower():
            used.add(node.value)
    assert used and used <= set(widgets), used - set(widgets)
    # the eight sections are there, in order, the treatment day between plan and verification
    titles = [w.find("property/string").text for w in root.iter("widget")
              if w.get("class") == "ctkCollapsibleButton"]
    assert [t.split(".")[0] for t in titles] == ["1", "2", "3", "4", "5", "6", "7", "8"]
    assert titles[4:7] == ["5. Plan", "6. Treatment day", "7. Verification (after treatment)"]
    # every bound widget names a parameter-node field; every field shown has a widget
    fields = _parameter_fields()
    assert set(bound.values()) <= set(fields)
    assert {n for n, s in fields.items() if not _internal(s)} == set(bound.values())
    # node selectors receive the scene
    selectors = {n for n, w in widgets.items() if w.get("class") == "qMRMLNodeComboBox"}
    receivers = {c.find("receiver").text for c in root.iter("connection")}
    assert selectors <= receivers


def test_bound_widgets_have_types_the_parameter_node_can_connect():
    """The GUI connectors of slicer.parameterNodeWrapper (Slicer's guiConnectors.py):
    QCheckBox <-> bool, QDoubleSpinBox <-> float, QLineEdit <-> str, qMRMLNodeComboBox <->
    node, QComboBox <-> str only with a Choice annotation (else connectGui raises)."""
    _, widgets, bound = _ui_widgets()
    fields = _parameter_fields()
    constants = _module_constants()
    simple = {"QCheckBox": "bool", "QDoubleSpinBox": "float", "QLineEdit": "str"}
    for widget_name, field in bound.items():
        widget = widgets[widget_name]
        stmt = fields[field]
        annotation = ast.unparse(stmt.annotation)
        cls = widget.get("class")
        if cls in simple:
            assert annotation == simple[cls], (widget_name, annotation)
        elif cls == "qMRMLNodeComboBox":
            node_types = [s.text for s in widget.iter("string")
                          if s.text and s.text.startswith("vtkMRML")]
            assert annotation == f"slicer.{node_types[0]}", (widget_name, annotation)
        elif cls == "QComboBox":
            assert isinstance(stmt.annotation, ast.Subscript)
            assert ast.unparse(stmt.annotation.value) == "Annotated"
            base, choice = stmt.annotation.slice.elts
            assert ast.unparse(base) == "str" and choice.func.id == "Choice"
            choices = constants[choice.args[0].id]
            items = [i.find("property/string").text for i in widget.findall("item")]
            assert items == choices, widget_name
            assert ast.literal_eval(stmt.value) in choices
        else:
            raise AssertionError(f"{widget_name}: no connector for {cls}")


def test_choices_are_the_cores():
    from tareplanner import catalogue
    from tareplanner.mrml.guided import GOAL_KINDS
    from tareplanner.physics.solver import GOAL_KINDS as SOLVER_GOALS
    from tareplanner.records.case import METHODS
    constants = _module_constants()
    assert sorted(constants["PRODUCTS"]) == sorted(catalogue.product_keys())
    assert sorted(constants["METHODS"]) == sorted(METHODS)
    assert constants["GOAL_KINDS"] == list(GOAL_KINDS)
    assert set(GOAL_KINDS) == set(SOLVER_GOALS)
