"""The step log behind the module's outdated marking (tareplanner.steps), without Slicer."""

from datetime import datetime, timezone

import pytest

from tareplanner import steps

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)


def _inputs(**overrides):
    base = {step: {"x": "1"} for step in steps.STEPS}
    base.update(overrides)
    return base


def test_not_run_current_outdated():
    log = steps.record_run({}, "measurement", {"CT": "a", "SPECT": "b"}, NOW)
    assert steps.status(log, "plan", {}).state == steps.NOT_RUN
    assert steps.status(log, "measurement", {"CT": "a", "SPECT": "b"}).state == steps.CURRENT
    changed = steps.status(log, "measurement", {"CT": "a", "SPECT": "c"})
    assert changed.state == steps.OUTDATED and changed.changed == ("SPECT",)
    assert changed.text == "outdated: SPECT changed"
    # an input that appeared or disappeared counts as changed
    assert steps.status(log, "measurement", {"CT": "a"}).changed == ("SPECT",)
    assert steps.status(log, "measurement", {"CT": "a", "SPECT": "b", "LSF": "m"}).changed == \
        ("LSF",)
    assert log["measurement"]["done_at"] == "2026-11-23T09:30:00+00:00"


def test_outdated_propagates_to_the_steps_that_use_the_result():
    log = {}
    for step in steps.STEPS:
        log = steps.record_run(log, step, {"x": "1"}, NOW)
    assert {s.state for s in steps.statuses(log, _inputs()).values()} == {steps.CURRENT}
    states = steps.statuses(log, _inputs(measurement={"x": "2"}))
    assert states["registration"].state == states["segmentation"].state == steps.CURRENT
    assert states["measurement"].changed == ("x",)
    assert states["plan"].changed == ("measurement step",)
    assert states["directive"].changed == ("plan step",)
    assert states["administration"].changed == ("directive step",)
    assert states["verification"].changed == ("plan step", "administration step")
    assert states["save"].changed == ("plan step", "directive step", "administration step",
                                      "verification step")
    assert states["plan"].text == "outdated: uses the outdated measurement step"
    both = steps.statuses(log, _inputs(measurement={"x": "2"}, plan={"x": "3"}))["plan"]
    assert both.reason == "x changed; uses the outdated measurement step"


def test_not_run_steps_do_not_propagate():
    log = steps.record_run({}, "plan", {"x": "1"}, NOW)
    states = steps.statuses(log, _inputs())
    assert states["measurement"].state == steps.NOT_RUN and states["plan"].state == steps.CURRENT


def test_log_round_trip_and_bad_input():
    log = steps.record_run({}, "save", {"folder": "f"}, NOW)
    assert steps.load_log(steps.dump_log(log)) == log
    assert steps.load_log("") == {}
    with pytest.raises(ValueError, match="step: got 'dose'"):
        steps.record_run({}, "dose", {})
    with pytest.raises(ValueError, match="JSON object"):
        steps.load_log("[1, 2]")


def test_treatment_day_steps_sit_between_plan_and_verification():
    """A new plan or directive outdates the administration; a new administration outdates
    the verification (its delivered activity) but not the plan or the directive."""
    assert steps.STEPS.index("plan") < steps.STEPS.index("directive") < \
        steps.STEPS.index("administration") < steps.STEPS.index("verification")
    log = {}
    for step in steps.STEPS:
        log = steps.record_run(log, step, {"x": "1"}, NOW)
    states = steps.statuses(log, _inputs(directive={"x": "2"}))
    assert states["plan"].state == steps.CURRENT
    assert states["administration"].changed == ("directive step",)
    assert states["verification"].changed == ("administration step",)
    states = steps.statuses(log, _inputs(administration={"x": "2"}))
    assert states["directive"].state == steps.CURRENT
    assert states["verification"].changed == ("administration step",)
    # verification without an administration: a not-run administration outdates nothing
    log = {step: entry for step, entry in log.items() if step != "administration"}
    states = steps.statuses(log, _inputs(directive={"x": "2"}))
    assert states["administration"].state == steps.NOT_RUN
    assert states["verification"].state == steps.CURRENT
