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
    assert classes["TAREPlannerWidget"] == ["ScriptedLoadableModuleWidget"]
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


def test_cmake_builds_the_module_with_its_core_and_data():
    top = (REPO / "CMakeLists.txt").read_text()
    assert "add_subdirectory(TAREPlanner)" in top and "find_package(Slicer REQUIRED)" in top
    sub = (REPO / "TAREPlanner" / "CMakeLists.txt").read_text()
    assert "slicerMacroBuildScriptedModule" in sub
    assert "tareplanner/*.py" in sub and "tareplanner/*.json" in sub
    assert (REPO / "TAREPlanner" / "Resources" / "Icons" / "TAREPlanner.png").is_file()
