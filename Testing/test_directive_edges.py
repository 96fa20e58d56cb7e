"""The written directive (records.directive) at the edges the field tests leave: the words of
a refused change, a change recorded on a directive written before overrides were kept, and
the text of a site with two tumours and of a limit exceeded at one site. The hand plan is
that of Testing/test_directive_fields.py ('right' 2.0 GBq with T1 120 Gy, 'left' 1.0 GBq;
re-planned with 'right' at 2.4 GBq: every dose x 1.2)."""

import pytest

from tareplanner.errors import FieldValueError
from tareplanner.records.directive import apply_change, directive_from_plan, directive_lines
from test_directive_fields import CREATED, _plan, _replanned

LUNG = {"limit": "lung-limit", "dose_gy": 6.6, "limit_gy": 5}


def test_a_change_beyond_a_limit_is_refused_word_for_word():
    """docs/treatment-day.md: a change beyond a limit is refused, naming the limit and the
    dose, unless ``--override-limits REASON`` records why it is accepted. Bug: the words of
    what is allowed changed (the option to type lost or its case changed)."""
    d = directive_from_plan(_plan(), created=CREATED)
    with pytest.raises(FieldValueError) as error:
        apply_change(d, _replanned(violations=[LUNG]), "right", 2.4, "r", "Dr A", when="T")
    assert error.value.allowed == ("an activity within every limit of the plan, or "
                                   "--override-limits REASON to accept it")


def test_an_override_on_a_directive_written_without_overrides():
    """A directive written before overrides were kept has no ``overrides`` list: the override
    of a change is still kept, in a new list. Bug: no list made for it (AttributeError)."""
    d = directive_from_plan(_plan(), created=CREATED)
    del d["overrides"]
    out = apply_change(d, _replanned(violations=[LUNG]), "right", 2.4, "r", "Dr A", when="T",
                       override_reason="tumour board")
    assert out["overrides"] == [{"treatment_site": "right", "reason": "tumour board",
                                 "by": "Dr A", "when": "T",
                                 "exceeded": "all sites: lung-limit 6.60 Gy > 5 Gy"}]


def test_directive_lines_of_two_tumours_and_a_site_s_limit():
    """Two tumours of one site are listed ", "-separated (T1 120 Gy, T2 80 Gy); a limit
    exceeded at one site names that site, not "all sites". Bugs: the separator garbled, the
    site's name looked up under another key."""
    plan = _plan()
    plan["positions"][0]["tumours"].append({"name": "T2", "dose_gy": 80.0})
    lines = directive_lines(directive_from_plan(plan, created=CREATED))
    assert "  right: 2.000 GBq (normal liver 40.0 Gy; T1 120 Gy, T2 80 Gy) [limited by goal]" \
        in lines
    assert "  LIMIT EXCEEDED right: normal-liver-limit 40.00 Gy > 35 Gy" in lines
    assert "  LIMIT EXCEEDED all sites: lung-limit 5.50 Gy > 5 Gy" in lines


def test_check_change_refusals_name_the_option_exactly():
    """Bugs: the sites a change may name garbled in the refusal; the activity's refusal
    naming another field than the option typed (``--activity-gbq``, nothing before it)."""
    from tareplanner.errors import UnknownNameError
    from tareplanner.records.directive import check_change
    d = directive_from_plan(_plan(), created=CREATED)
    with pytest.raises(UnknownNameError) as error:
        check_change(d, "middle", 1.0, "why", "Dr A")
    assert error.value.allowed == "a treatment site of the directive: right, left"
    with pytest.raises(FieldValueError) as error:
        check_change(d, "left", 0, "why", "Dr A")
    assert (error.value.field, error.value.value) == ("--activity-gbq", 0)


def test_validate_directive_refusals_field_value_and_allowed():
    """A directive that is no JSON object, or of another schema: refused naming the place
    ('directive'), what was found and what is allowed ("tareplanner.directive/1", the schema
    file's ``const``). Bugs: the field, the value or the allowed schema dropped."""
    from tareplanner.errors import SchemaError
    from tareplanner.records.directive import validate_directive
    with pytest.raises(SchemaError) as error:
        validate_directive(["not", "a", "directive"])
    assert (error.value.field, error.value.value, error.value.allowed) == (
        "directive", "list", "a JSON object")
    d = directive_from_plan(_plan(), created=CREATED)
    d["schema"] = "tareplanner.plan/1"
    with pytest.raises(SchemaError) as error:
        validate_directive(d, "directive.json")
    assert (error.value.field, error.value.value, error.value.allowed) == (
        "directive.json.schema", "tareplanner.plan/1", "tareplanner.directive/1")


@pytest.mark.parametrize("change, field, value, allowed", [
    (lambda d: d.update(positions=[]), "directive.positions", [],
     "a non-empty list of treatment sites"),
    (lambda d: d.update(positions={"a": 1}), "directive.positions", {"a": 1},
     "a non-empty list of treatment sites"),
    (lambda d: d["positions"].__setitem__(1, "left"), "directive.positions[1]", "str",
     "a JSON object"),
    (lambda d: d["positions"][1].update(prescribed_activity_gbq=0),
     "directive.positions[1].prescribed_activity_gbq", 0, "a number > 0 and <= 100"),
    (lambda d: d["positions"][0].update(prescribed_activity_gbq=100.5),
     "directive.positions[0].prescribed_activity_gbq", 100.5, "a number > 0 and <= 100"),
    (lambda d: d.update(nuclide=None), "directive.nuclide", "NoneType", "a JSON object"),
    (lambda d: d["nuclide"].update(half_life_h=-1), "directive.nuclide.half_life_h", -1,
     "a number > 0"),
    (lambda d: d.update(changes=None), "directive.changes", None, "a list of changes"),
    (lambda d: d.update(changes={}), "directive.changes", {}, "a list of changes")])
def test_validate_directive_refusals_word_for_word(change, field, value, allowed):
    """Every part of a directive read from disk that the administration relies on, refused
    with its place, the value found and what is allowed (activities > 0 and <= 100 GBq, as a
    change allows; a half-life > 0). Bugs: the value found or the allowed text dropped or
    garbled, a bound changed."""
    from tareplanner.errors import SchemaError
    from tareplanner.records.directive import validate_directive
    d = directive_from_plan(_plan(), created=CREATED)
    change(d)
    with pytest.raises((SchemaError, FieldValueError)) as error:
        validate_directive(d)
    assert (error.value.field, error.value.value, error.value.allowed) == (field, value, allowed)


@pytest.mark.parametrize("plan, value", [({"schema": "tareplanner.case/1"}, "tareplanner.case/1"),
                                         ("plan.json", None)])
def test_directive_from_what_is_no_plan_shows_what_was_found(plan, value):
    """Bug: the refusal of a case (or of anything but a plan record) without the schema it
    found (None for what is no JSON object)."""
    from tareplanner.errors import SchemaError
    with pytest.raises(SchemaError) as error:
        directive_from_plan(plan)
    assert (error.value.field, error.value.value) == ("plan.schema", value)


def test_directive_from_a_plan_without_activity_shows_the_activity():
    """Bug: the refusal of a site prescribed no activity without the value found (0.0)."""
    plan = _plan()
    plan["positions"][0]["activity_gbq"] = 0.0
    with pytest.raises(FieldValueError) as error:
        directive_from_plan(plan)
    assert (error.value.field, error.value.value) == ("plan.positions[right].activity_gbq", 0.0)


def test_directive_carries_the_patient_and_the_treatment_time():
    """A plan of patient 'P-17' treated on 1 Dec 2026 10:00 UTC+1: the directive states both
    (the field tests' plan has neither). Bug: either looked up under another key (None)."""
    d = directive_from_plan(_plan(patient_id="P-17", treatment_time="2026-12-01T10:00:00+01:00"),
                            created=CREATED)
    assert (d["patient_id"], d["treatment_time"]) == ("P-17", "2026-12-01T10:00:00+01:00")
