"""The module's treatment-day steps (written directive, administration) and the verification
with the delivered activity, headless on slicer-core on the small synthetic patient.

The plan prescribes the activities the synthetic patient's Y-90 PET was made with (2.2 GBq
right, 0.8 GBq left; 3 % residual), so the PET's activity can be checked against the
delivered total. The readings' expected values are computed here by hand from the decay law
with the Y-90 half-life of 64.1 h (docs/treatment-day.md):

    A_delivered = A_vial exp(-lambda (t_adm - t_vial)) - A_residual exp(+lambda (t_res - t_adm))
"""

import json
import math

import pytest
import slicer

from tareplanner.errors import FieldValueError
from tareplanner.mrml import guided
from tareplanner.mrml.results import record_from_text_node
from tareplanner.records.case import canonical_sha256

HALF_LIFE_H = 64.1
LAMBDA = math.log(2) / HALF_LIFE_H
T_ADM = "2026-12-01T10:00:00+01:00"        # the synthetic patient's administration time

# right hepatic: vial read 2 h before, residual half an hour after
RIGHT = dict(vialGbq=2.248, vialTime="2026-12-01T08:00:00+01:00", residualGbq=0.066,
             residualTime="2026-12-01T10:30:00+01:00", administeredAt=T_ADM)
RIGHT_VIAL_AT_ADM = 2.248 * math.exp(-LAMBDA * 2.0)
RIGHT_RESIDUAL_AT_ADM = 0.066 * math.exp(LAMBDA * 0.5)
RIGHT_DELIVERED = RIGHT_VIAL_AT_ADM - RIGHT_RESIDUAL_AT_ADM
# left hepatic: vial read 2 h 50 min before its administration at 10:20, residual at 10:50
LEFT = dict(vialGbq=0.825, vialTime="2026-12-01T07:30:00+01:00", residualGbq=0.024,
            residualTime="2026-12-01T10:50:00+01:00", administeredAt="2026-12-01T10:20:00+01:00")
LEFT_DELIVERED = 0.825 * math.exp(-LAMBDA * (2 + 50 / 60)) - 0.024 * math.exp(LAMBDA * 0.5)


def _set_readings(p, number, readings):
    guided.update_position(p, number - 1, **readings)


def _states(p):
    return {step: s.state for step, s in guided.statuses(p).items()}


@pytest.fixture(scope="module")
def planned():
    """Synthetic patient through planning: one activity goal per position (the PET's)."""
    scene = slicer.vtkMRMLScene()
    p = guided.Parameters()
    patient = guided.load_synthetic_patient(scene, p)
    guided.register_positions(scene, p)
    guided.add_lungs(p)
    guided.add_territories(p)
    guided.measure(scene, p)
    guided.update_position(p, 0, goalKind="activity_gbq", goalValue=2.2)
    guided.update_position(p, 1, goalKind="activity_gbq", goalValue=0.8)
    p.voxelDosimetry = False
    guided.plan(scene, p)
    return scene, p, patient


def test_hand_calculated_readings():
    """The expected values themselves, worked out by hand from the readings above."""
    assert RIGHT_VIAL_AT_ADM == pytest.approx(2.1999, abs=1e-4)
    assert RIGHT_RESIDUAL_AT_ADM == pytest.approx(0.06636, abs=1e-5)
    assert RIGHT_DELIVERED == pytest.approx(2.1336, abs=1e-4)
    assert LEFT_DELIVERED == pytest.approx(0.7760, abs=1e-4)


def test_readings_start_empty_and_an_empty_one_is_refused_never_zero(planned):
    """(Before the readings are entered.) Bugs caught: a reading nobody entered recorded as
    0 GBq (the residual defaulted to 0: "Record the administration" ran with residual 0.000
    GBq and said "No medical event"); an empty vial activity passing the button's check
    because NaN is truthy; an empty residual reaching the record as NaN."""
    scene, p, _ = planned
    fresh = guided.InjectionPosition()
    assert math.isnan(fresh.vialGbq) and math.isnan(fresh.residualGbq)
    for position in p.positions:
        assert math.isnan(position.vialGbq) and math.isnan(position.residualGbq)
        assert position.vialTime == position.residualTime == position.administeredAt == ""
    guided.written_directive(scene, p)
    missing = guided.missing_inputs(p, "administration")
    for name in ("right hepatic", "left hepatic"):
        assert f"{name}: the vial reading and its time, and the administration time" in missing
        assert f"{name}: the residual activity (0 when none is left)" in missing
    # everything entered but the right position's residual activity: refused, naming it
    _set_readings(p, 1, {k: v for k, v in RIGHT.items() if k != "residualGbq"})
    _set_readings(p, 2, LEFT)
    assert guided.missing_inputs(p, "administration") == [
        "right hepatic: the residual activity (0 when none is left)"]
    with pytest.raises(ValueError, match="right hepatic: the residual activity"):
        guided.run(scene, p, "administration")
    with pytest.raises(FieldValueError, match=r"position 1 \(right hepatic\) residual "
                                              r"activity.*0 when none is left"):
        guided.administer(scene, p)
    assert p.administrationRecord is None
    # 0 typed where none is left is a reading: accepted
    _set_readings(p, 1, {**RIGHT, "residualGbq": 0.0, "residualTime": ""})
    assert guided.missing_inputs(p, "administration") == []
    for number in (1, 2):       # empty again for the next test
        _set_readings(p, number, dict(vialGbq=math.nan, vialTime="", residualGbq=math.nan,
                                      residualTime="", administeredAt=""))


def test_directive_administration_and_verification_with_the_delivered_activity(planned,
                                                                               tmp_path):
    scene, p, patient = planned
    plan = record_from_text_node(p.planRecord)
    assert {q["name"]: q["activity_gbq"] for q in plan["positions"]} == \
        pytest.approx({"right hepatic": 2.2, "left hepatic": 0.8})

    # written directive: generated from the plan kept in the scene, shown as text
    text = guided.written_directive(scene, p)
    directive = record_from_text_node(p.directiveRecord)
    assert directive["plan_sha256"] == canonical_sha256(plan)
    assert "right hepatic: 2.200 GBq" in text and "left hepatic: 0.800 GBq" in text
    assert "20% or more" in text
    assert _states(p)["directive"] == "current" and _states(p)["administration"] == "not run"

    # administration: readings per position, hand-calculated delivered activity
    _set_readings(p, 1, RIGHT)
    _set_readings(p, 2, LEFT)
    p.siteTolerancePercent = 10.0
    text = guided.administer(scene, p)
    record = record_from_text_node(p.administrationRecord)
    sites = {s["treatment_site"]: s for s in record["sites"]}
    right, left = sites["right hepatic"], sites["left hepatic"]
    assert right["vial_at_administration_gbq"] == pytest.approx(RIGHT_VIAL_AT_ADM, rel=1e-9)
    assert right["residual_at_administration_gbq"] == pytest.approx(RIGHT_RESIDUAL_AT_ADM,
                                                                    rel=1e-9)
    assert right["delivered_activity_gbq"] == pytest.approx(RIGHT_DELIVERED, rel=1e-9)
    assert right["deviation_fraction"] == pytest.approx(RIGHT_DELIVERED / 2.2 - 1, rel=1e-6)
    assert left["delivered_activity_gbq"] == pytest.approx(LEFT_DELIVERED, rel=1e-9)
    assert record["total_delivered_activity_gbq"] == pytest.approx(
        RIGHT_DELIVERED + LEFT_DELIVERED, rel=1e-9)
    assert record["plan_input_sha256"] == plan["input_sha256"]
    assert not record["medical_event"]
    assert text.splitlines()[0].startswith("No medical event")
    assert f"delivered {RIGHT_DELIVERED:.3f} GBq against 2.200 prescribed" in text

    # verification uses the delivered total, residual 0 (the record subtracted it)
    text = guided.verify(scene, p)
    post = record_from_text_node(p.deliveredDoseReport)["post_treatment"]
    check = post["activity_check"]
    total = RIGHT_DELIVERED + LEFT_DELIVERED
    assert check["administered_activity_gbq"] == pytest.approx(total, rel=1e-9)
    assert check["residual_fraction"] == 0.0
    assert check["expected_in_patient_gbq"] == pytest.approx(total, rel=1e-9)
    assert "administration record" in check["administered_source"]
    # the PET holds what was implanted: 3.0 GBq less its 3 % residual
    truth = patient.truth["y90_pet"]
    implanted = sum(truth["administered_activity_gbq"].values()) * (1 - truth["residual_fraction"])
    assert check["image_total_gbq"] == pytest.approx(implanted, rel=0.05)
    assert check["relative_difference"] == pytest.approx(check["image_total_gbq"] / total - 1,
                                                         rel=1e-9)
    assert check["within_tolerance"]
    assert "Delivered-activity check" in text and f"{total:.3f} GBq" in text
    assert set(_states(p).values()) == {"current", "not run"}

    # a changed reading outdates the administration and, through it, the verification
    guided.update_position(p, 0, vialGbq=1.65)
    states = guided.statuses(p)
    assert states["administration"].changed == ("right hepatic readings",)
    assert states["verification"].changed == ("administration step",)
    assert states["directive"].state == "current"

    # 25 % under-delivered at the right position: a medical event, flagged first
    _set_readings(p, 1, dict(vialGbq=1.65, vialTime=T_ADM, residualGbq=0.0, residualTime="",
                             administeredAt=T_ADM))
    text = guided.administer(scene, p)
    record = record_from_text_node(p.administrationRecord)
    right = next(s for s in record["sites"] if s["treatment_site"] == "right hepatic")
    assert right["delivered_activity_gbq"] == pytest.approx(1.65, rel=1e-12)
    assert right["deviation_fraction"] == pytest.approx(-0.25, abs=1e-12)
    assert right["medical_event"] and record["medical_event"]
    assert text.splitlines()[0].startswith("MEDICAL EVENT: right hepatic delivered 1.650 GBq, "
                                           "-25.0%")
    assert "MEDICAL EVENT" not in text.splitlines()[1]          # the left site is not
    assert "[no-residual-reading] right hepatic" in text
    states = guided.statuses(p)
    assert states["administration"].state == "current"
    assert states["verification"].changed == ("administration",)

    # a new plan outdates the directive and the administration; the verification refuses
    # the administration of the previous plan, and saving refuses outdated records
    guided.update_position(p, 1, goalValue=0.7)
    guided.plan(scene, p)
    states = guided.statuses(p)
    assert states["directive"].changed == ("plan",)
    assert states["administration"].changed == ("directive step",)
    with pytest.raises(FieldValueError, match="parents.plan.*record the administration again"):
        guided.verify(scene, p)
    p.outputFolder = str(tmp_path / "refused")
    with pytest.raises(ValueError, match="directive, administration outdated"):
        guided.save(scene, p)
    assert not (tmp_path / "refused").exists()
    guided.written_directive(scene, p)
    assert guided.statuses(p)["administration"].changed == ("directive",)
    guided.administer(scene, p)
    assert _states(p)["administration"] == "current"

    # save writes directive.json and administration.json beside plan.json
    p.outputFolder = str(tmp_path / "out")
    text = guided.save(scene, p)
    out = tmp_path / "out"
    saved_plan = json.loads((out / "plan.json").read_text())
    saved_directive = json.loads((out / "directive.json").read_text())
    saved_administration = json.loads((out / "administration.json").read_text())
    assert saved_directive["plan_sha256"] == canonical_sha256(saved_plan)
    assert saved_administration["directive_sha256"] == canonical_sha256(saved_directive)
    assert saved_administration == record_from_text_node(p.administrationRecord)
    assert "directive.json" in text and "administration.json" in text


def test_bad_readings_name_the_position_and_field(planned):
    scene, p, _ = planned
    guided.written_directive(scene, p)
    _set_readings(p, 1, RIGHT)
    _set_readings(p, 2, LEFT)
    p.siteTolerancePercent = 0.0
    saved = p.positions[1].vialTime
    guided.update_position(p, 1, vialTime="2026-12-01T07:30")  # no UTC offset
    with pytest.raises(FieldValueError, match=r"position 2 \(left hepatic\) vial time"):
        guided.administer(scene, p)
    guided.update_position(p, 1, vialTime=saved)
    guided.update_position(p, 0, residualTime="")  # residual without its time
    with pytest.raises(FieldValueError, match=r"position 1 \(right hepatic\) residual time"):
        guided.administer(scene, p)
    guided.update_position(p, 0, residualTime=RIGHT["residualTime"])
    guided.update_position(p, 0, vialGbq=0.0)
    with pytest.raises(FieldValueError, match="vial activity"):
        guided.administer(scene, p)
    guided.update_position(p, 0, vialGbq=RIGHT["vialGbq"])
    name = p.positions[1].name
    guided.update_position(p, 1, name="left lobe")  # no position for a site
    with pytest.raises(FieldValueError, match="readings of left hepatic"):
        guided.administer(scene, p)
    guided.update_position(p, 1, name=name)
    p.siteTolerancePercent = 150.0
    with pytest.raises(FieldValueError, match="site tolerance"):
        guided.administer(scene, p)
    p.siteTolerancePercent = 0.0
    guided.administer(scene, p)                                 # all good again
    with pytest.raises(ValueError, match="write the directive first"):
        guided.administer(slicer.vtkMRMLScene(), guided.Parameters())


def test_section_title_of_the_treatment_day():
    from tareplanner import steps
    done = steps.StepStatus("directive", steps.CURRENT, (), "2026-12-01T09:00:00+00:00")
    not_run = steps.StepStatus("administration", steps.NOT_RUN)
    outdated = steps.StepStatus("administration", steps.OUTDATED, ("directive step",))
    title = "6. Treatment day"
    assert guided.section_title(title, {"directive": not_run, "administration": not_run}) == \
        title
    assert guided.section_title(title, {"directive": done, "administration": not_run}) == \
        "6. Treatment day  [directive done]"
    assert guided.section_title(title, {"directive": done, "administration": done}) == \
        "6. Treatment day  [done]"
    assert guided.section_title(title, {"directive": done, "administration": outdated}) == \
        "6. Treatment day  [OUTDATED: administration: uses the outdated directive step]"


def test_plan_with_only_activity_goals_is_json(base_case):
    """A plan whose every activity is given (the treatment day of the test above) has no
    activity to scale: the 'highest activities at a stated exceedance probability' are
    absent, not an infinite factor that JSON cannot hold (saving such a plan failed)."""
    from tareplanner.planning import plan_case
    from tareplanner.records.case import parse_case
    base_case["positions"][0]["goal"] = {"activity_gbq": 2.2}
    record = plan_case(parse_case(base_case))
    assert record["uncertainty"]["at_exceedance_probability"] is None
    json.dumps(record, allow_nan=False)


def test_implausible_reading_needs_a_recorded_reason_in_the_module(planned):
    """Bug caught: the module (and the web page, which runs the same step) recording a
    decimal-point slip without a question, or offering no way to record a reading that is
    right. The right hepatic vial read as 22.48 GBq (x10 of the 2.248 GBq above) implies
    22.48 exp(-ln2 2 h / 64.1 h) - 0.066 exp(ln2 0.5 h / 64.1 h) = 21.93 GBq delivered
    against 2.2 GBq prescribed: about 10x, beyond the twice-the-prescription plausibility
    bound. Without a reason it is refused naming the slip; with one it is recorded."""
    scene, p, _ = planned
    guided.written_directive(scene, p)
    _set_readings(p, 1, {**RIGHT, "vialGbq": 22.48})
    _set_readings(p, 2, LEFT)
    p.siteTolerancePercent = 0.0
    p.confirmReadingsReason = ""
    delivered = 22.48 * math.exp(-LAMBDA * 2.0) - RIGHT_RESIDUAL_AT_ADM
    assert delivered / 2.2 == pytest.approx(9.97, abs=0.01)
    with pytest.raises(FieldValueError, match="decimal point"):
        guided.administer(scene, p)
    p.confirmReadingsReason = "vial re-measured: 22.48 GBq is right"
    try:
        guided.administer(scene, p)
        record = record_from_text_node(p.administrationRecord)
        assert record["plausibility"]["confirmed_reason"] == p.confirmReadingsReason
        assert "reading-confirmed" in [w["code"] for w in record["warnings"]]
    finally:
        p.confirmReadingsReason = ""
        _set_readings(p, 1, RIGHT)
