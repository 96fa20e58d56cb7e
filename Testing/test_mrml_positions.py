"""Injection positions as a list of any length (mrml.parameters, mrml.guided), and the
buttons' readiness both views show (missing_inputs).

Bugs these catch: a fourth or fifth position silently dropped (the old three fixed slots), a
goal or reading of a later position not outdating its step, a changed element not reaching
the parameter node (in-place edits instead of whole-list assignment), a button enabled while
its step's inputs are missing, or a tooltip that does not say what is missing.
"""

import pytest
import slicer

from tareplanner.mrml import guided
from tareplanner.mrml.parameters import InjectionPosition, Parameters


class _Cbct:
    """A CBCT volume stand-in: registered when it has a parent transform."""

    def __init__(self, placed=False):
        self.placed = placed

    def GetParentTransformNode(self):
        return object() if self.placed else None

    def GetAttribute(self, name):
        return None          # no attribute set (no DICOM header kept on it)

    def GetName(self):
        return "CBCT"


class _RecordingParameters(Parameters):
    """Counts whole-list assignments (what the Slicer parameter node observes)."""

    assignments = 0

    def __setattr__(self, name, value):
        if name == "positions":
            type(self).assignments += 1
        super().__setattr__(name, value)


def _five():
    p = Parameters()
    for k in range(5):
        guided.add_position(p, name=f"segment {k + 2}", cbct=_Cbct())
    return p


def test_any_number_of_positions_in_order():
    p = _five()
    assert [number for number, _, _ in guided.positions(p)] == [1, 2, 3, 4, 5]
    assert [name for _, name, _ in guided.positions(p)] == [f"segment {k}" for k in range(2, 7)]
    guided.remove_position(p, 1)
    assert [q.name for q in p.positions] == ["segment 2", "segment 4", "segment 5",
                                             "segment 6"]
    guided.add_position(p, name="segment 8", cbct=_Cbct(), goalKind="normal_dose_gy",
                        goalValue=40.0)
    assert p.positions[-1] == InjectionPosition(name="segment 8", cbct=p.positions[-1].cbct,
                                                goalKind="normal_dose_gy", goalValue=40.0)


def test_changes_are_whole_list_assignments():
    p = _RecordingParameters()
    _RecordingParameters.assignments = 0
    guided.add_position(p, name="a", cbct=_Cbct())
    guided.add_position(p, name="b", cbct=_Cbct())
    before = list(p.positions)
    guided.update_position(p, 1, goalValue=80.0)
    guided.remove_position(p, 0)
    assert _RecordingParameters.assignments == 4
    assert before[1].goalValue == 250.0            # the old element was not changed in place
    assert p.positions[0].goalValue == 80.0 and p.positions[0].name == "b"


def test_bad_position_edits_name_the_field():
    p = _five()
    with pytest.raises(ValueError, match=r"position field: got vialgbq; allowed: name, cbct"):
        guided.update_position(p, 0, vialgbq=1.0)
    with pytest.raises(ValueError, match=r"position: got 6; allowed: 1 to 5"):
        guided.update_position(p, 5, name="x")
    with pytest.raises(ValueError, match=r"position: got 0; allowed: 1 to 5"):
        guided.remove_position(p, -1)
    guided.update_position(p, 4, name="segment 2 ")
    with pytest.raises(ValueError, match="names must differ"):
        guided.positions(p)


def test_goal_and_readings_of_the_fifth_position_outdate_their_steps():
    p = _five()
    plan_before = guided.step_inputs(p, "plan")["goals"]
    guided.update_position(p, 4, goalValue=120.0)
    assert guided.step_inputs(p, "plan")["goals"] != plan_before
    readings = guided.step_inputs(p, "administration")
    assert set(readings) == {"directive", "site tolerance"} | {
        f"segment {k} readings" for k in range(2, 7)}
    guided.update_position(p, 4, vialGbq=1.5)
    after = guided.step_inputs(p, "administration")
    assert [k for k in readings if readings[k] != after[k]] == ["segment 6 readings"]


def test_buttons_say_what_is_missing():
    p = Parameters()
    assert guided.missing_inputs(p, "load") == []
    assert guided.missing_text(p, "registration") == (
        "needs the planning CT (step 1); the segmentation (step 1); at least one injection "
        "position with a name and its CBCT (step 1)")
    assert guided.missing_inputs(p, "plan") == ["the LSF and TNR measurement (step 4)"]
    assert guided.missing_inputs(p, "save") == ["the plan (step 5)", "an output folder"]
    scene = slicer.vtkMRMLScene()
    p.ctVolume = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
    p.segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    guided.add_position(p, name="right", cbct=_Cbct())
    assert guided.missing_inputs(p, "registration") == []
    assert guided.missing_inputs(p, "territories") == ["a registered CBCT (step 2)"]
    guided.update_position(p, 0, cbct=_Cbct(placed=True))
    assert guided.missing_inputs(p, "territories") == []
    # two positions of one name: the registration says so instead of raising
    guided.add_position(p, name="right", cbct=_Cbct())
    assert guided.missing_inputs(p, "registration") == [
        "positions: names must differ; got right, right"]
    # administration: the directive, then each named position's readings
    p.directiveRecord = scene.AddNewNodeByClass("vtkMRMLTextNode")
    guided.update_position(p, 1, name="left")
    assert guided.missing_inputs(p, "administration") == [
        "right: the vial reading and its time, and the administration time",
        "left: the vial reading and its time, and the administration time",
        "right: the residual activity (0 when none is left)",
        "left: the residual activity (0 when none is left)"]
    for index in (0, 1):
        guided.update_position(p, index, vialGbq=1.0, vialTime="2026-12-01T08:00:00+01:00",
                               administeredAt="2026-12-01T10:00:00+01:00")
    # the residual activity is missing until entered (0 typed when none is left)
    assert guided.missing_inputs(p, "administration") == [
        "right: the residual activity (0 when none is left)",
        "left: the residual activity (0 when none is left)"]
    for index in (0, 1):
        guided.update_position(p, index, residualGbq=0.0)
    assert guided.missing_inputs(p, "administration") == []
    with pytest.raises(ValueError, match="action: got 'dose'; allowed: load, registration"):
        guided.missing_inputs(p, "dose")


def test_panels_cover_every_step_once():
    from tareplanner import steps
    held = [step for _, _, group in guided.PANELS for step in group]
    assert sorted(held) == sorted(steps.STEPS)
    assert [title.split(".")[0] for _, title, _ in guided.PANELS] == [str(k) for k in
                                                                      range(1, 9)]


def test_mrml_attribute_names_are_defined_once():
    """Every MRML attribute name (``TAREPlanner.*``, SlicerRT's ``DicomRtImport.*``, the DICOM
    module's ``DICOM.*``) is written as a literal only in mrml/attributes.py; the names other
    modules read are the ones those modules use (SlicerRT's dose volume identification)."""
    import ast

    from conftest import REPO

    from tareplanner.mrml import attributes
    assert attributes.DOSE_VOLUME == "DicomRtImport.DoseVolume"
    assert attributes.DOSE_UNIT_NAME == "DicomRtImport.DoseUnitName"
    assert attributes.DICOM_INSTANCE_UIDS == "DICOM.instanceUIDs"
    package = REPO / "TAREPlanner" / "tareplanner"
    found = []
    for path in [*package.rglob("*.py"), REPO / "TAREPlanner" / "TAREPlanner.py"]:
        if path.name == "attributes.py" and path.parent.name == "mrml":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    node.value.startswith(("TAREPlanner.", "DicomRtImport.", "DICOM.")) and \
                    " " not in node.value and not node.value.endswith((".py", ".ui", ".png")):
                found.append(f"{path.relative_to(REPO)}:{node.lineno} {node.value}")
    assert found == []
