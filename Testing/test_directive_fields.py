"""The written directive (records.directive) field by field, from a small plan record written
out here (two treatment sites, round numbers), not from the planner: what it states, how a
change rewrites it, what it refuses, and its text lines. Each test names the bug it catches.

The hand plan: Y-90 (49.67 J/GBq, half-life 64.1 h), LSF 0.05, lung 0.8 kg; 'right' 2.0 GBq
(normal 40 Gy, perfused 50 Gy, T1 120 Gy), 'left' 1.0 GBq (normal 30 Gy, no tumour); lung
dose 5.5 Gy (cumulative 7.5), whole liver 35 Gy, whole normal liver 28 Gy."""

import hashlib
import json
from datetime import datetime, timezone

import pytest

from tareplanner.errors import FieldValueError, SchemaError, UnknownNameError
from tareplanner.records.directive import (LIMITED_BY_CHANGE, apply_change, check_change,
                                           directive_from_plan, directive_lines,
                                           validate_directive)

CREATED = datetime(2026, 12, 1, 9, 30, 15, 123456, tzinfo=timezone.utc)


def _plan(**changes):
    plan = {
        "schema": "tareplanner.plan/1", "input_sha256": "a" * 64, "case_id": "C7",
        "patient_id": None, "product": {"key": "therasphere", "display_name": "TheraSphere"},
        "nuclide": {"name": "Y-90", "half_life_h": 64.1, "energy_per_activity_j_per_gbq": 49.67},
        "method": "partition", "dose_model": "partition", "treatment_time": None,
        "lung_shunt_fraction": 0.05, "lung_mass_kg": 0.8,
        "positions": [
            {"name": "right", "activity_gbq": 2.0, "normal_dose_gy": 40.0,
             "perfused_dose_gy": 50.0, "limited_by": "goal",
             "tumours": [{"name": "T1", "dose_gy": 120.0}],
             "violations": [{"limit": "normal-liver-limit", "dose_gy": 40.0, "limit_gy": 35}]},
            {"name": "left", "activity_gbq": 1.0, "normal_dose_gy": 30.0,
             "perfused_dose_gy": 30.0, "limited_by": "lung-limit", "tumours": []}],
        "lung_dose_gy": 5.5, "lung_dose_cumulative_gy": 7.5, "whole_liver_dose_gy": 35.0,
        "whole_liver": {"whole_normal_liver_dose_gy": 28.0},
        "violations": [{"limit": "lung-limit", "dose_gy": 5.5, "limit_gy": 5}],
        "warnings": [{"code": "lsf-high", "message": "m1"}, {"code": "lsf-high", "message": "m2"},
                     {"code": "no-scenario", "message": "m3"}]}
    plan.update(changes)
    return plan


def _canonical_sha(document):
    """The canonical JSON's hash as docs/treatment-day.md states it (sorted keys, no white
    space, UTF-8), written out here."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_directive_states_each_site_and_the_plans_doses():
    """Bugs caught: a site's activity or planned doses taken from another field, a tumour
    dropped, the lung (single, cumulative), whole-liver or whole-normal-liver dose lost, a
    site's violation not named with its site, a repeated check listed twice, the plan not
    named by the hash of its canonical JSON, the lung dose per delivered GBq computed with
    another factor: CF x LSF / M_lung = 49.67 x 0.05 / 0.8 = 3.104375 Gy/GBq."""
    plan = _plan()
    d = directive_from_plan(plan, created=CREATED)
    assert d["schema"] == "tareplanner.directive/1"
    assert d["created"] == "2026-12-01T09:30:15+00:00"
    assert d["positions"] == [
        {"treatment_site": "right", "prescribed_activity_gbq": 2.0,
         "planned_doses_gy": {"normal_liver": 40.0, "perfused": 50.0, "tumours": {"T1": 120.0}},
         "limited_by": "goal"},
        {"treatment_site": "left", "prescribed_activity_gbq": 1.0,
         "planned_doses_gy": {"normal_liver": 30.0, "perfused": 30.0, "tumours": {}},
         "limited_by": "lung-limit"}]
    sha = _canonical_sha(plan)
    assert d["plan_sha256"] == sha
    assert d["parents"] == {"plan": {"schema": "tareplanner.plan/1", "sha256": sha}}
    assert d["plan_input_sha256"] == "a" * 64
    assert (d["case_id"], d["patient_id"], d["treatment_time"]) == ("C7", None, None)
    assert (d["method"], d["dose_model"]) == ("partition", "partition")
    assert d["product"] == plan["product"] and d["nuclide"] == plan["nuclide"]
    assert (d["lung_dose_gy"], d["lung_dose_cumulative_gy"]) == (5.5, 7.5)
    assert (d["whole_liver_dose_gy"], d["whole_normal_liver_dose_gy"]) == (35.0, 28.0)
    assert d["violations"] == [
        {"limit": "lung-limit", "dose_gy": 5.5, "limit_gy": 5},
        {"limit": "normal-liver-limit", "dose_gy": 40.0, "limit_gy": 35, "position": "right"}]
    assert [w["code"] for w in d["plan_warnings"]] == ["lsf-high", "lsf-high", "no-scenario"]
    assert d["lung_gy_per_delivered_gbq"] == pytest.approx(3.104375, rel=1e-12)
    assert d["prescription_basis"] == ("activity at administration (GBq), with the absorbed "
                                       "doses it is planned to give")
    assert d["criteria"]["medical_event"]["relative_deviation"] == 0.2   # 10 CFR 35.3045(a)(1)
    assert "10 CFR 35.40" in d["regulation"]
    assert (d["changes"], d["overrides"]) == ([], [])
    assert d["signatures"] == {"authorised_user": None, "date": None,
                               "after_administration": {"authorised_user": None, "date": None}}
    # a plan without whole-liver figures or violations
    bare = _plan(whole_liver=None, violations=None, warnings=None)
    del bare["whole_liver_dose_gy"], bare["lung_dose_cumulative_gy"]
    bare["positions"][0]["violations"] = []
    d = directive_from_plan(bare, created=CREATED)
    assert (d["whole_liver_dose_gy"], d["whole_normal_liver_dose_gy"],
            d["lung_dose_cumulative_gy"]) == (None, None, None)
    assert (d["violations"], d["plan_warnings"]) == ([], [])
    # the creation time defaults to now, in UTC, to the second
    now = datetime.fromisoformat(directive_from_plan(_plan())["created"])
    assert now.utcoffset().total_seconds() == 0 and now.microsecond == 0


@pytest.mark.parametrize("plan, field", [
    ({"schema": "tareplanner.case/1"}, "plan.schema"), ("plan.json", "plan.schema")])
def test_directive_refuses_what_is_no_plan(plan, field):
    """Bug caught: a directive written from a case (or from anything) instead of a plan."""
    with pytest.raises(SchemaError) as err:
        directive_from_plan(plan)
    assert err.value.field == field and err.value.allowed == "tareplanner.plan/1"


@pytest.mark.parametrize("activity", [0.0, -1.0, float("nan")])
def test_directive_refuses_a_site_without_activity(activity):
    """Bug caught: a site prescribed no (or a negative, or NaN) activity; the error names the
    site's field."""
    plan = _plan()
    plan["positions"][1]["activity_gbq"] = activity
    with pytest.raises(FieldValueError) as err:
        directive_from_plan(plan)
    assert err.value.field == "plan.positions[left].activity_gbq"
    assert err.value.allowed == "a prescribed activity > 0"


def _replanned(right=2.4, violations=()):
    plan = _plan()
    plan["positions"][0].update(activity_gbq=right, normal_dose_gy=48.0, perfused_dose_gy=60.0,
                                tumours=[{"name": "T1", "dose_gy": 144.0}], violations=[])
    plan["positions"][1]["limited_by"] = "goal"
    plan.update(lung_dose_gy=6.6, lung_dose_cumulative_gy=8.6, whole_liver_dose_gy=42.0,
                whole_liver={"whole_normal_liver_dose_gy": 33.6}, violations=list(violations),
                warnings=[])
    return plan


def test_a_change_takes_every_dose_from_the_replan():
    """Bugs caught: a change that keeps the old doses, marks the wrong site as changed (or
    forgets an earlier change), loses its author, reason or time, or overwrites the
    history. 'right' 2.0 -> 2.4 GBq: every figure from the re-plan (x 1.2 here)."""
    d = directive_from_plan(_plan(), created=CREATED)
    out = apply_change(d, _replanned(), "right", 2.4, "new volume", "Dr A",
                       when=datetime(2026, 12, 1, 9, 0, 0, 999, tzinfo=timezone.utc))
    assert d["changes"] == []                         # the given directive is not modified
    right, left = out["positions"]
    assert right == {"treatment_site": "right", "prescribed_activity_gbq": 2.4,
                     "planned_doses_gy": {"normal_liver": 48.0, "perfused": 60.0,
                                          "tumours": {"T1": 144.0}},
                     "limited_by": LIMITED_BY_CHANGE}
    # an unchanged site keeps what set its activity (the re-plan says 'goal' only because
    # every activity is given there)
    assert left["limited_by"] == "lung-limit"
    assert left["planned_doses_gy"]["normal_liver"] == 30.0
    assert (out["lung_dose_gy"], out["lung_dose_cumulative_gy"]) == (6.6, 8.6)
    assert (out["whole_liver_dose_gy"], out["whole_normal_liver_dose_gy"]) == (42.0, 33.6)
    assert out["changes"] == [{"treatment_site": "right", "field": "prescribed_activity_gbq",
                               "from": 2.0, "to": 2.4, "reason": "new volume", "by": "Dr A",
                               "when": "2026-12-01T09:00:00+00:00"}]
    assert out["overrides"] == []
    # a second change, of the other site, keeps the first site marked as changed
    again = apply_change(out, _replanned(), "left", 1.0, "same", "Dr B", when="T2")
    assert [p["limited_by"] for p in again["positions"]] == [LIMITED_BY_CHANGE] * 2
    assert [c["when"] for c in again["changes"]] == ["2026-12-01T09:00:00+00:00", "T2"]
    # without a time: now, in UTC, to the second
    stamp = apply_change(out, _replanned(), "left", 1.0, "r", "b")["changes"][-1]["when"]
    assert datetime.fromisoformat(stamp).utcoffset().total_seconds() == 0
    assert "." not in stamp


def test_a_change_beyond_a_limit_needs_an_override_kept_on_the_directive():
    """Bugs caught: a change that exceeds a limit of the re-plan accepted without a reason,
    or its override not kept (on the change and in the directive's overrides, with what was
    exceeded written out: 'all sites: lung-limit 6.60 Gy > 5 Gy' and the site's own)."""
    d = directive_from_plan(_plan(), created=CREATED)
    replanned = _replanned(violations=[{"limit": "lung-limit", "dose_gy": 6.6, "limit_gy": 5}])
    replanned["positions"][0]["violations"] = [
        {"limit": "normal-liver-limit", "dose_gy": 48.0, "limit_gy": 35}]
    broken = ("all sites: lung-limit 6.60 Gy > 5 Gy; "
              "right: normal-liver-limit 48.00 Gy > 35 Gy")
    for reason in (None, ""):
        with pytest.raises(FieldValueError) as err:
            apply_change(d, replanned, "right", 2.4, "r", "Dr A", when="T", override_reason=reason)
        assert (err.value.field, err.value.value) == ("--activity-gbq", 2.4)
        assert err.value.detail == broken
        assert "--override-limits" in err.value.allowed
    out = apply_change(d, replanned, "right", 2.4, "r", "Dr A", when="T",
                       override_reason="tumour board")
    violations = [{"limit": "lung-limit", "dose_gy": 6.6, "limit_gy": 5},
                  {"limit": "normal-liver-limit", "dose_gy": 48.0, "limit_gy": 35,
                   "position": "right"}]
    assert out["changes"][0]["override"] == {"reason": "tumour board", "by": "Dr A",
                                             "when": "T", "violations": violations}
    assert out["overrides"] == [{"treatment_site": "right", "reason": "tumour board",
                                 "by": "Dr A", "when": "T", "exceeded": broken}]
    assert out["violations"] == violations


def test_check_change_options():
    """Bugs caught: a change of a site the directive does not hold, of an activity <= 0 or
    above 100 GBq, or without a reason or author, let through; the options returned in
    another order."""
    d = directive_from_plan(_plan(), created=CREATED)
    assert check_change(d, "left", 100, "why", "Dr A") == (100.0, "why", "Dr A")
    assert check_change(d, "left", 0.5, "why", "Dr A", "ok") == (0.5, "why", "Dr A")
    with pytest.raises(UnknownNameError) as err:
        check_change(d, "lefft", 1.0, "why", "Dr A")
    assert err.value.field == "--site" and "right, left" in err.value.allowed
    assert "left" in err.value.detail
    for activity in (0, -1, 100.0001):
        with pytest.raises(FieldValueError, match="--activity-gbq"):
            check_change(d, "left", activity, "why", "Dr A")
    for args, field in ((("", "Dr A", None), "--reason"), (("why", "", None), "--by"),
                        (("why", "Dr A", ""), "--override-limits")):
        with pytest.raises(FieldValueError) as err:
            check_change(d, "left", 1.0, *args)
        assert err.value.field == field


@pytest.mark.parametrize("change, field", [
    (lambda d: d.update(schema="tareplanner.plan/1"), "directive.schema"),
    (lambda d: d.update(positions=[]), "directive.positions"),
    (lambda d: d.update(positions={"a": 1}), "directive.positions"),
    (lambda d: d["positions"].__setitem__(1, "left"), "directive.positions[1]"),
    (lambda d: d["positions"][1].update(treatment_site=""), "directive.positions[1].treatment_site"),
    (lambda d: d["positions"][1].update(prescribed_activity_gbq=0),
     "directive.positions[1].prescribed_activity_gbq"),
    (lambda d: d["positions"][1].update(prescribed_activity_gbq=100.5),
     "directive.positions[1].prescribed_activity_gbq"),
    (lambda d: d.update(nuclide=None), "directive.nuclide"),
    (lambda d: d["nuclide"].update(half_life_h=0), "directive.nuclide.half_life_h"),
    (lambda d: d.update(changes=None), "directive.changes")])
def test_validate_directive_names_the_field(change, field):
    """Bug caught: a directive read from disk with a missing or malformed part the
    administration relies on accepted (then failing later with a traceback), or refused
    without naming the field."""
    d = directive_from_plan(_plan(), created=CREATED)
    assert validate_directive(d) is d
    change(d)
    with pytest.raises((SchemaError, FieldValueError)) as err:
        validate_directive(d)
    assert err.value.field == field


def test_directive_lines_read_as_written():
    """Bugs caught: a figure, a site, a limit exceeded, an override, the medical-event
    criteria or a change missing from (or misplaced in) the text the report prints. The
    expected text is written out here from the hand plan."""
    d = directive_from_plan(_plan(), created=CREATED)
    d = apply_change(d, _replanned(violations=[{"limit": "lung-limit", "dose_gy": 6.6,
                                                "limit_gy": 5}]) | {"warnings": [
        {"code": "lsf-high", "message": "m"}, {"code": "lsf-high", "message": "n"},
        {"code": "x", "message": "o"}]},
                     "right", 2.4, "new volume", "Dr A", when="2026-12-01T09:00:00+00:00",
                     override_reason="board")
    sha = _canonical_sha(_plan())
    assert directive_lines(d) == [
        f"Written directive (tareplanner.directive/1) for plan {sha[:16]}; case C7, "
        "patient ID not given",
        "Radionuclide Y-90; product TheraSphere; prescription: activity at administration "
        "(GBq), with the absorbed doses it is planned to give",
        "  right: 2.400 GBq (normal liver 48.0 Gy; T1 144 Gy) [limited by changed-activity]",
        "  left: 1.000 GBq (normal liver 30.0 Gy) [limited by lung-limit]",
        "  lung dose (all sites) 6.60 Gy, cumulative 8.60 Gy",
        "  whole liver 42.0 Gy; whole normal liver 33.6 Gy",
        "  LIMIT EXCEEDED all sites: lung-limit 6.60 Gy > 5 Gy",
        "  plan checks at these activities: lsf-high, x",
        "  OVERRIDE right by Dr A (2026-12-01T09:00:00+00:00): board "
        "[all sites: lung-limit 6.60 Gy > 5 Gy]",
        "Medical event if the delivered activity differs from the prescribed by 20% or more "
        f"({d['criteria']['medical_event']['source']})",
        "Medical event also if the lung dose exceeds the directive's by 0.5 Gy (Sv) and by "
        "50% or more (10 CFR 35.3045(a)(3))",
        "  change 2026-12-01T09:00:00+00:00: right 2.000 -> 2.400 GBq by Dr A (new volume)",
        "Authorised user: ______________________   date: __________",
        "After administration, activity administered recorded and signed: "
        "______________________   date: __________"]
    # without case id, cumulative lung dose, whole liver, site limit: the fallbacks
    bare = dict(d, case_id=None, patient_id="P1", lung_dose_cumulative_gy=None,
                whole_liver_dose_gy=None, violations=[], plan_warnings=[], overrides=[],
                changes=[], positions=[dict(d["positions"][1], limited_by=None)])
    bare["criteria"] = {"medical_event": d["criteria"]["medical_event"]}
    lines = directive_lines(bare)
    assert lines[0].endswith(f"; case SHA-256 {'a' * 12}, patient P1")
    assert lines[2:4] == ["  left: 1.000 GBq (normal liver 30.0 Gy) [limited by -]",
                          "  lung dose (all sites) 6.60 Gy"]
    assert lines[4].startswith("Medical event if") and len(lines) == 7
    only_whole = dict(bare, whole_liver_dose_gy=42.0, whole_normal_liver_dose_gy=None)
    assert directive_lines(only_whole)[4] == "  whole liver 42.0 Gy"


def test_reasons_are_sentences_not_names():
    """Bug caught: a reason checked as a name (64 characters, no '/'), so that a physicist's
    "re-measured 2/2 times in the dose calibrator, certificate 3.24 GBq" was refused. A reason
    holds '/' and up to 200 characters (records/fields.py REASON_MAX_CHARS: the web page's
    longest field text); 201 characters, an empty text and a newline are refused naming the
    option. The author stays a name ('/' refused)."""
    d = directive_from_plan(_plan(), created=CREATED)
    why = "re-measured 2/2 times in the dose calibrator, certificate 3.24 GBq"
    assert len(why) > 64
    assert check_change(d, "left", 1.0, why, "Dr A", "tumour board 2026/12/01") == (
        1.0, why, "Dr A")
    assert check_change(d, "left", 1.0, "r" * 200, "Dr A")[1] == "r" * 200
    for args, field, problem in (
            (("r" * 201, "Dr A", None), "--reason", "201 characters"),
            (("a\nb", "Dr A", None), "--reason", "control character '\\n'"),
            (("why", "Dr A", " "), "--override-limits", "empty"),
            (("why", "Dr A/B", None), "--by", "a path separator")):
        with pytest.raises(FieldValueError) as err:
            check_change(d, "left", 1.0, *args)
        assert (err.value.field, err.value.detail) == (field, problem)
