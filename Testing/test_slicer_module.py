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
    """Field name -> dataclass field of the one parameter declaration (mrml.parameters), from
    which the module builds its parameterNodeWrapper class."""
    import dataclasses

    from tareplanner.mrml.parameters import Parameters
    return {f.name: f for f in dataclasses.fields(Parameters)}


def _internal(field):
    """Results kept by the steps (text nodes, the step log) and the positions list (shown in
    tables the Widget fills): no bound widget."""
    return field.metadata.get("result") or field.name == "positions"


def test_module_builds_its_parameter_node_from_the_one_declaration():
    """No second declaration in the module file: its parameter node class is made by
    mrml.parameters.slicer_parameter_node_class."""
    tree = _tree()
    assert not any(isinstance(n, ast.ClassDef) and n.name == "TAREPlannerParameterNode"
                   for n in tree.body)
    assert "slicer_parameter_node_class" in MODULE.read_text()
    assert "parameterNodeWrapper" not in {a.name for n in ast.walk(tree)
                                          if isinstance(n, ast.ImportFrom) for a in n.names}


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
    assert {n for n, f in fields.items() if not _internal(f)} == set(bound.values())
    # the positions list has its three tables and the add/remove buttons
    assert {"positionsTable", "goalsTable", "readingsTable", "addPositionButton",
            "removePositionButton"} <= set(widgets)
    # node selectors receive the scene
    selectors = {n for n, w in widgets.items() if w.get("class") == "qMRMLNodeComboBox"}
    receivers = {c.find("receiver").text for c in root.iter("connection")}
    assert selectors <= receivers


def test_bound_widgets_have_types_the_parameter_node_can_connect():
    """The GUI connectors of slicer.parameterNodeWrapper (Slicer's guiConnectors.py):
    QCheckBox <-> bool, QDoubleSpinBox <-> float, QLineEdit <-> str, qMRMLNodeComboBox <->
    node, QComboBox <-> str only with a Choice annotation (else connectGui raises)."""
    import typing

    from tareplanner.mrml.parameters import Parameters
    _, widgets, bound = _ui_widgets()
    fields = _parameter_fields()
    hints = typing.get_type_hints(Parameters)
    simple = {"QCheckBox": bool, "QDoubleSpinBox": float, "QLineEdit": str}
    for widget_name, name in bound.items():
        widget, field = widgets[widget_name], fields[name]
        cls = widget.get("class")
        if cls in simple:
            assert hints[name] is simple[cls] and not field.metadata, (widget_name, name)
        elif cls == "qMRMLNodeComboBox":
            node_types = [s.text for s in widget.iter("string")
                          if s.text and s.text.startswith("vtkMRML")]
            assert field.metadata["node_class"] == node_types[0], widget_name
        elif cls == "QComboBox":
            items = [i.find("property/string").text for i in widget.findall("item")]
            assert tuple(items) == field.metadata["choices"], widget_name
            assert field.default in items
        else:
            raise AssertionError(f"{widget_name}: no connector for {cls}")


def test_slicer_annotations_follow_the_declaration():
    """What the module's parameterNodeWrapper is built from: node classes, Choice annotations
    with the declared values, positions as a list of the position's parameterPack."""
    import typing

    from tareplanner.mrml.parameters import (InjectionPosition, Parameters,
                                             slicer_annotations)
    packs = []
    out = slicer_annotations(Parameters, node_type=lambda name: f"slicer.{name}",
                             choice=lambda values: ("Choice", tuple(values)),
                             pack_of=lambda cls: packs.append(cls) or "PositionPack")
    assert out["ctVolume"] == ("slicer.vtkMRMLScalarVolumeNode", None)
    assert out["segmentation"] == ("slicer.vtkMRMLSegmentationNode", None)
    assert out["planRecord"] == ("slicer.vtkMRMLTextNode", None)
    annotation, default = out["product"]
    assert typing.get_args(annotation) == (str, ("Choice", ("therasphere", "sir-spheres",
                                                            "quiremspheres")))
    assert default == "therasphere"
    assert out["positions"] == (list["PositionPack"], None) and packs == [InjectionPosition]
    assert out["lungBaseMarginMm"] == (float, 0.0) and out["voxelDosimetry"] == (bool, True)
    position = slicer_annotations(InjectionPosition, node_type=str, choice=tuple,
                                  pack_of=None)
    assert set(position) == {"name", "cbct", "goalKind", "goalValue", "vialGbq", "vialTime",
                             "residualGbq", "residualTime", "administeredAt"}


def test_choices_are_the_cores():
    from tareplanner import catalogue
    from tareplanner.mrml.parameters import GOAL_KINDS, METHODS as PANEL_METHODS, PRODUCTS
    from tareplanner.physics.solver import GOAL_KINDS as SOLVER_GOALS
    from tareplanner.records.case import METHODS
    assert sorted(PRODUCTS) == sorted(catalogue.product_keys())
    assert sorted(PANEL_METHODS) == sorted(METHODS)
    assert set(GOAL_KINDS) == set(SOLVER_GOALS)


#: what the module's code does with a widget, and the Qt classes that have it (Qt 5
#: documentation: QAbstractButton::clicked, QTableWidget::item/cellWidget/currentRow and
#: QAbstractItemView's headers, QPlainTextEdit::plainText, QLabel::text, QObject's signals)
QT_MEMBERS = {
    "QPushButton": {"connect", "toolTip", "enabled", "text", "clicked", "blockSignals"},
    "ctkCollapsibleButton": {"connect", "text", "collapsed", "toolTip", "enabled"},
    "QTableWidget": {"connect", "item", "cellWidget", "setCellWidget", "setItem",
                     "currentRow", "rowCount", "setRowCount", "columnCount", "removeRow",
                     "insertRow", "horizontalHeader", "verticalHeader", "blockSignals",
                     "enabled", "toolTip"},
    "QPlainTextEdit": {"plainText", "setPlainText", "toPlainText", "enabled", "toolTip"},
    "QLabel": {"text", "setText", "toolTip", "enabled"},
}
#: the class a widget's name promises in this module (the names the code reads by)
NAME_CLASSES = {"CollapsibleButton": "ctkCollapsibleButton", "Button": "QPushButton",
                "Table": "QTableWidget", "Text": "QPlainTextEdit", "Label": "QLabel"}


def _widget_uses():
    """Widget name -> the members the module's code uses on it: ``self.ui.name.member``,
    ``setattr(self.ui.name, "member", ...)`` and, for the names in the module's button
    tables (ACTION_BUTTONS, PANEL_BUTTONS, the setup's handlers), ``getattr(self.ui,
    name).member``."""
    uses: dict[str, set[str]] = {}
    tree = _tree()
    dynamic = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and \
                isinstance(node.value.value, ast.Attribute) and node.value.value.attr == "ui":
            uses.setdefault(node.value.attr, set()).add(node.attr)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setattr" and \
                isinstance(node.args[0], ast.Attribute) and \
                isinstance(node.args[0].value, ast.Attribute) and \
                node.args[0].value.attr == "ui" and isinstance(node.args[1], ast.Constant):
            uses.setdefault(node.args[0].attr, set()).add(node.args[1].value)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Call) and \
                getattr(node.value.func, "id", "") == "getattr" and \
                isinstance(node.value.args[0], ast.Attribute) and \
                node.value.args[0].attr == "ui":
            dynamic.add(node.attr)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                node.value.endswith("Button") and node.value[:1].islower():
            uses.setdefault(node.value, set())
    for name in [n for n in uses if n.endswith("Button")]:
        uses[name] |= dynamic & QT_MEMBERS[NAME_CLASSES["CollapsibleButton"
                                                        if name.endswith("CollapsibleButton")
                                                        else "Button"]]
    return uses


def test_every_widget_the_code_uses_has_the_class_it_expects():
    """Bug it catches: a widget renamed or retyped in the .ui (a QLabel turned into a
    QLineEdit, a table into a list) that the module still reads as before, which fails only
    when a clinician presses the button in Slicer. Read from the .ui's XML (no Qt): every
    widget the code uses exists, has the class its name promises, and that class has every
    member the code uses on it."""
    _, widgets, _ = _ui_widgets()
    uses = _widget_uses()
    assert {"planButton", "positionsTable", "planText", "registrationStatusLabel",
            "dataCollapsibleButton"} <= set(uses)
    for name, members in sorted(uses.items()):
        assert name in widgets, f"{name}: used by TAREPlanner.py, not in the .ui"
        suffix = next(s for s in NAME_CLASSES if name.endswith(s))
        expected = NAME_CLASSES[suffix]
        found = widgets[name].get("class")
        assert found == expected, f"{name}: the .ui has a {found}; the code expects {expected}"
        unknown = members - QT_MEMBERS[expected]
        assert not unknown, f"{name} ({expected}): the code uses {sorted(unknown)}"
