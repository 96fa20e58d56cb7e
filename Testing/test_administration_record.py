"""The administration record's reader, replay, text lines and slip messages
(tareplanner.records.administration), against values written here by hand.

Sources: the record's schema (docs/schemas/administration-1.schema.json: ``schema`` is
"tareplanner.administration/1"); docs/treatment-day.md (a reading is questioned when the
delivered activity it implies is below 0.5 x or above 2 x the prescription; the message names
the likely slip, e.g. "likely decimal point one place to the right: did you mean 2.62 GBq?";
``tareplanner replay`` recomputes the record and lists any difference). Decay by hand:
A(t) = A0 * 2^(-t / 64.1 h) (Y-90). The directive is that of conftest.BASE_CASE (2.263 GBq
prescribed to "right hepatic", test_planning's hand calculation), built once.
"""

import copy
import json

import pytest

from conftest import BASE_CASE
from tareplanner.errors import FieldValueError, SchemaError
from tareplanner.planning import plan_case
from tareplanner.records.administration import (_slip_text, administration_lines,
                                                 administration_record, replay_administration,
                                                 validate_administration)
from tareplanner.records.case import parse_case
from tareplanner.records.directive import directive_from_plan

SITE = "right hepatic"


@pytest.fixture(scope="module")
def directive():
    return directive_from_plan(plan_case(parse_case(copy.deepcopy(BASE_CASE))))


def _readings(vial_gbq):
    """One vial reading at 08:00, administered at 10:00 (2 h of decay), no residual."""
    return [{"treatment_site": SITE,
             "vial": [{"activity_gbq": vial_gbq, "time": "2026-12-01T08:00:00+01:00"}],
             "administration_time": "2026-12-01T10:00:00+01:00"}]


# --- a vial read as 0 GBq ----------------------------------------------------------------

def test_a_vial_read_as_zero_is_questioned_not_a_traceback(directive):
    """Bug: a vial reading of 0 GBq (allowed: >= 0) implies nothing delivered, and the
    expected reading (the reading over delivered / prescribed) divided by zero
    (ZeroDivisionError). It is questioned like any implausible reading: 0 x the prescription,
    below 0.5 x; no slip can be named, so the message asks to check the units; confirmed, it
    is recorded as delivering nothing (-100 %: a medical event)."""
    with pytest.raises(FieldValueError) as error:
        administration_record(directive, _readings(0.0))
    e = error.value
    assert (e.field, e.value) == ("readings[0].vial[0]", 0.0)
    assert "0 x the prescribed 2.263 GBq (plausible: 0.5 x to 2 x)" in e.detail
    assert e.detail.endswith("; check the units (GBq) and the decimal point of each reading")
    record = administration_record(directive, _readings(0.0), confirm_reason="vial empty")
    (site,) = record["sites"]
    assert site["delivered_activity_gbq"] == 0.0 and site["deviation_fraction"] == -1.0
    assert site["medical_event"] is True


# --- the slip named in a question --------------------------------------------------------

def test_slip_text_names_a_decimal_point_below_one_gbq():
    """A reading of 5 GBq where 0.5 GBq was expected is 10 x too large: the decimal point one
    place to the right, 0.5 GBq meant. Bug: the ratio computed only when more than 1 GBq was
    expected (a small expected activity treated as none)."""
    assert _slip_text(5.0, 0.5) == ("likely decimal point one place to the right: did you "
                                    "mean 0.5 GBq?")


def test_slip_text_without_a_known_slip_asks_to_check_units():
    """3 GBq where 1 GBq was expected: 3 x is no known slip (x10 is 3.3 times further, far
    beyond the 25 % tolerance of a slip): the message asks to check the units and the decimal
    point, word for word. Bug: the words changed."""
    assert _slip_text(3.0, 1.0) == "check the units (GBq) and the decimal point"


def test_slip_text_with_nothing_expected_asks_to_check_units():
    """Nothing expected (0 GBq): no ratio, no slip (not a ZeroDivisionError). Bugs: the
    ratio taken whatever the expected activity (``>= 0`` or no test), the infinite ratio
    written as an invalid number."""
    assert _slip_text(2.0, 0.0) == "check the units (GBq) and the decimal point"


# --- reading a record --------------------------------------------------------------------

def test_a_record_that_is_no_object_is_refused_by_name():
    """Bug: the refusal of a record that is not a JSON object naming no field."""
    with pytest.raises(SchemaError) as error:
        validate_administration([])
    assert (error.value.field, error.value.value, error.value.allowed) == (
        "administration record", "list", "a JSON object")


@pytest.mark.parametrize("where, field", [(None, "administration record.schema"),
                                          ("record.json", "record.json.schema")])
def test_a_record_of_another_schema_is_refused_naming_it(where, field):
    """The record's schema must be "tareplanner.administration/1" (the schema file's
    ``const``). Bugs: the refusal without its field (the default place, 'administration
    record', or the one given), the value found or the schema expected."""
    args = () if where is None else (where,)
    with pytest.raises(SchemaError) as error:
        validate_administration({"schema": "tareplanner.directive/1"}, *args)
    assert (error.value.field, error.value.value, error.value.allowed) == (
        field, "tareplanner.directive/1", "tareplanner.administration/1")


@pytest.mark.parametrize("key", ["directive", "readings", "sites",
                                 "total_delivered_activity_gbq"])
def test_a_record_without_a_key_it_is_read_for_is_refused(key):
    """The directive and readings (replay recomputes from them), the sites and the delivered
    total (the dose reads it) must be present. Bug: the refusal without its field or its
    allowed value."""
    doc = {"schema": "tareplanner.administration/1", "directive": {}, "readings": [],
           "sites": [], "total_delivered_activity_gbq": 1.0}
    del doc[key]
    with pytest.raises(SchemaError) as error:
        validate_administration(doc)
    assert (error.value.field, error.value.value, error.value.allowed) == (
        f"administration record.{key}", None, "present")


# --- replay ------------------------------------------------------------------------------

def test_replay_keeps_the_site_tolerance_of_the_record(directive):
    """A record made with a site tolerance of 10 % replays identical: 2.263 GBq prescribed,
    the vial read 2.263 * 1.15 / 2^(-2 / 64.1) GBq at 08:00 holds 2.263 * 1.15 at 10:00,
    +15 %: beyond the site's 10 % (below the 20 % medical event). Bug: the replay made
    without the record's site tolerance (every such record reported as changed)."""
    prescribed = directive["positions"][0]["prescribed_activity_gbq"]
    record = administration_record(directive,
                                   _readings(prescribed * 1.15 / 2 ** (-2 / 64.1)),
                                   site_tolerance_fraction=0.10)
    assert record["sites"][0]["deviation_fraction"] == pytest.approx(0.15, abs=1e-12)
    assert record["sites"][0]["beyond_site_tolerance"] is True
    result = replay_administration(json.loads(json.dumps(record)))
    assert result["identical"] is True and result["differences"] == []


def test_replay_lists_a_changed_field_by_its_path(directive):
    """A record whose delivered total was changed to 9 GBq (delivered by hand: 2.5 GBq read
    at 08:00 is 2.5 * 2^(-2 / 64.1) = 2.44651 GBq at 10:00) replays with that one difference,
    named by its path in the record; the input is not reported as changed; the software of
    the record (here an older version) and of the replay are both shown. Bugs: the paths
    prefixed, the keys of the answer renamed or the input reported as changed."""
    record = json.loads(json.dumps(administration_record(directive, _readings(2.5))))
    software = dict(record["software"])
    record["total_delivered_activity_gbq"] = 9.0
    record["software"] = {"name": "tareplanner", "version": "0.0.1"}
    result = replay_administration(record)
    (difference,) = result["differences"]
    assert difference["field"] == "total_delivered_activity_gbq"
    assert (difference["record"], difference["replay"]) == (9.0, pytest.approx(2.44651,
                                                                                abs=1e-5))
    assert result == {"identical": False, "input_changed": False,
                      "differences": result["differences"],
                      "software": {"record": {"name": "tareplanner", "version": "0.0.1"},
                                   "replay": software}}


# --- the record as text ------------------------------------------------------------------

def test_administration_lines_word_for_word():
    """The record as text, on a record written here: the directive's hash shortened to 16
    hex digits, each site with its readings at 3 decimals, the residual fraction and the
    deviation at 1 decimal, "MEDICAL EVENT" after a site that is one and nothing after one
    that is not; the totals and the warnings. Bugs: 17 digits of the hash, the mark after
    every site or none, something written after a site that is no event."""
    record = {
        "schema": "tareplanner.administration/1",
        "directive_sha256": "0123456789abcdef" + "9" * 48,
        "sites": [
            {"treatment_site": "right", "administration_time": "2026-12-01T10:00:00+01:00",
             "vial_at_administration_gbq": 2.5, "residual_at_administration_gbq": 0.05,
             "residual_fraction": 0.02, "delivered_activity_gbq": 2.45,
             "prescribed_activity_gbq": 2.0, "deviation_fraction": 0.225,
             "medical_event": True},
            {"treatment_site": "left", "administration_time": "2026-12-01T11:00:00+01:00",
             "vial_at_administration_gbq": 1.0, "residual_at_administration_gbq": 0.0,
             "residual_fraction": 0.0, "delivered_activity_gbq": 1.0,
             "prescribed_activity_gbq": 1.0, "deviation_fraction": 0.0,
             "medical_event": False}],
        "total_delivered_activity_gbq": 3.45, "total_prescribed_activity_gbq": 3.0,
        "warnings": [{"code": "medical-event", "message": "right: report"}]}
    assert administration_lines(record) == [
        "Administration (tareplanner.administration/1); directive 0123456789abcdef",
        "  right: administered 2026-12-01T10:00:00+01:00; vial 2.500 GBq, residual 0.050 GBq "
        "(2.0%); delivered 2.450 GBq against 2.000 prescribed (+22.5%)  MEDICAL EVENT",
        "  left: administered 2026-12-01T11:00:00+01:00; vial 1.000 GBq, residual 0.000 GBq "
        "(0.0%); delivered 1.000 GBq against 1.000 prescribed (+0.0%)",
        "  total delivered 3.450 GBq of 3.000 GBq prescribed",
        "  [medical-event] right: report"]
