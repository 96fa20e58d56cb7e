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

from conftest import vial_readings
from tareplanner.errors import FieldValueError, SchemaError
from tareplanner.records.administration import (_slip_text, administration_lines,
                                                 administration_record, replay_administration,
                                                 validate_administration)

SITE = "right hepatic"


# --- a vial read as 0 GBq ----------------------------------------------------------------

def test_a_vial_read_as_zero_is_questioned_not_a_traceback(directive):
    """Bug: a vial reading of 0 GBq (allowed: >= 0) implies nothing delivered, and the
    expected reading (the reading over delivered / prescribed) divided by zero
    (ZeroDivisionError). It is questioned like any implausible reading: 0 x the prescription,
    below 0.5 x; no slip can be named, so the message asks to check the units; confirmed, it
    is recorded as delivering nothing (-100 %: a medical event)."""
    with pytest.raises(FieldValueError) as error:
        administration_record(directive, vial_readings(0.0))
    e = error.value
    assert (e.field, e.value) == ("readings[0].vial[0]", 0.0)
    assert "0 x the prescribed 2.263 GBq (plausible: 0.5 x to 2 x)" in e.detail
    assert e.detail.endswith("; check the units (GBq) and the decimal point of each reading")
    record = administration_record(directive, vial_readings(0.0), confirm_reason="vial empty")
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
                                   vial_readings(prescribed * 1.15 / 2 ** (-2 / 64.1)),
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
    record = json.loads(json.dumps(administration_record(directive, vial_readings(2.5))))
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


# --- questions, the lung criterion, overrides and the record's fields --------------------

def _vial_at_8(delivered_at_10_gbq):
    """The reading at 08:00 of a vial that holds ``delivered_at_10_gbq`` at 10:00."""
    return delivered_at_10_gbq / 2 ** (-2 / 64.1)


def test_a_decimal_slip_is_refused_word_for_word(directive):
    """0.262 GBq read at 08:00 (2.62 meant): 0.262 * 0.978605 = 0.2564 GBq delivered, 0.113 x
    the prescribed 2.263 GBq (plausible 0.5 x to 2 x, docs/treatment-day.md); the reading
    that would have given the prescription is 2.263 / 0.978605 = 2.31 GBq, and 0.262 / 2.31
    = 0.113 is within 25 % of x0.1: the decimal point, 2.62 GBq meant. Bugs: the refusal's
    field, value, allowed text or message garbled."""
    with pytest.raises(FieldValueError) as error:
        administration_record(directive, vial_readings(0.262))
    e = error.value
    assert (e.field, e.value) == ("readings[0].vial[0]", 0.262)
    assert e.allowed == ("a plausible reading in GBq (delivered 0.5 x to 2 x the prescription, "
                         "within the product's largest vial), or --confirm-readings REASON when "
                         "it is right")
    assert e.detail == (
        "right hepatic: the readings imply 0.2564 GBq delivered, 0.113 x the prescribed 2.263 "
        "GBq (plausible: 0.5 x to 2 x); readings[0].vial[0]: 0.262 GBq where about 2.31 GBq "
        "was expected, likely decimal point one place to the left: did you mean 2.62 GBq?")


def test_two_questions_of_one_reading_are_joined(directive):
    """26.2 GBq read (2.62 meant) is both above TheraSphere's largest vial (20 GBq) and 11.3 x
    the prescription: both questions are given, joined by " | ", the vial's first. Bug: the
    separator garbled or a question lost."""
    with pytest.raises(FieldValueError) as error:
        administration_record(directive, vial_readings(26.2))
    first, second = error.value.detail.split(" | ")
    assert first.startswith("readings[0].vial[0]: 26.2 GBq is above the largest vial")
    assert second.startswith("right hepatic: the readings imply 25.64 GBq delivered, 11.3 x")


def test_a_question_names_the_option_typed_and_the_record_its_place(directive):
    """Readings typed as options: the refusal names the option as typed; once confirmed, the
    record names the reading by its place in the record and keeps the reason, with a
    'reading-confirmed' warning that repeats the question. Bugs: the option's name lost, the
    record naming the option instead of its own place, the reason lost."""
    fields = {"readings[0].vial[0]": "--vial 'right hepatic=0.262@08:00'"}
    with pytest.raises(FieldValueError) as error:
        administration_record(directive, vial_readings(0.262), fields=fields)
    assert error.value.field == "--vial 'right hepatic=0.262@08:00'"
    assert "; --vial 'right hepatic=0.262@08:00': 0.262 GBq where" in error.value.detail
    record = administration_record(directive, vial_readings(0.262), fields=fields,
                                   confirm_reason="two vials pooled")
    (question,) = record["plausibility"]["questioned"]
    assert (question["reading"], question["value_gbq"]) == ("readings[0].vial[0]", 0.262)
    assert record["plausibility"]["confirmed_reason"] == "two vials pooled"
    assert (record["plausibility"]["low_factor"], record["plausibility"]["high_factor"]) == (
        0.5, 2.0)
    confirmed = [w["message"] for w in record["warnings"] if w["code"] == "reading-confirmed"]
    assert confirmed == [question["message"] + "; confirmed: two vials pooled"]


def test_several_vial_readings_are_questioned_together(directive):
    """Two vial readings of 13.1 GBq each at 08:00: 2 * 13.1 * 0.978605 = 25.64 GBq
    delivered, 11.3 x: no single reading to blame, so the question names the site's readings
    and asks to check each. Bugs: the first reading blamed, its value shown."""
    readings = vial_readings(13.1)
    readings[0]["vial"].append({"activity_gbq": 13.1, "time": "2026-12-01T08:00:00+01:00"})
    with pytest.raises(FieldValueError) as error:
        administration_record(directive, readings)
    assert (error.value.field, error.value.value) == ("the readings of right hepatic",
                                                      "readings")
    assert error.value.detail.endswith(
        "(plausible: 0.5 x to 2 x); check the units (GBq) and the decimal point of each "
        "reading")


def test_a_reading_above_the_largest_vial_is_questioned_word_for_word(directive):
    """TheraSphere's largest vial is 20 GBq (package insert): with 15 GBq prescribed, a
    vial read 20.5 GBq at 08:00 (20.06 GBq delivered, 1.34 x: plausible) is questioned for
    its size alone; 20.5 / 15 = 1.37 is no known slip. Bugs: the message's words, the
    source not shortened."""
    d = copy.deepcopy(directive)
    d["positions"][0]["prescribed_activity_gbq"] = 15.0
    with pytest.raises(FieldValueError) as error:
        administration_record(d, vial_readings(20.5))
    detail = error.value.detail
    assert detail.startswith("readings[0].vial[0]: 20.5 GBq is above the largest vial of the "
                             "product (20 GBq; ")
    assert detail.endswith("); check the units (GBq) and the decimal point")
    source = detail[len("readings[0].vial[0]: 20.5 GBq is above the largest vial of the "
                        "product (20 GBq; "):-len("); check the units (GBq) and the decimal "
                                                  "point")]
    assert 0 < len(source) <= 80


def test_lung_dose_criterion_by_hand(directive):
    """10 CFR 35.3045(a)(3): a medical event when the lung dose exceeds the directive's by
    0.5 Gy (Sv) and by 50 % or more. The directive's lung dose per delivered GBq is
    CF * LSF / M = 49.67 * 0.06 / 1.0 = 2.9802 Gy/GBq and its lung dose 2.263 * 2.9802 =
    6.744 Gy; 3.6 GBq delivered gives 10.729 Gy, +59.1 % and +3.98 Gy: an event. Bugs: the
    estimate from another activity, the warning's words or figures lost."""
    record = administration_record(directive, vial_readings(_vial_at_8(3.6)),
                                   confirm_reason="not needed")
    lung = record["lung_criterion"]
    assert lung["applicable"] is True and lung["medical_event"] is True
    assert lung["estimated_dose_gy"] == pytest.approx(3.6 * 2.9802, rel=1e-9)
    assert lung["expected_dose_gy"] == pytest.approx(6.744, abs=1e-3)
    assert lung["relative_excess"] == pytest.approx(3.6 / 2.26298 - 1, abs=1e-4)
    assert (lung["excess_dose_gy"], lung["relative_excess_criterion"]) == (0.5, 0.5)
    (message,) = [w["message"] for w in record["warnings"] if w["code"] == "medical-event-lung"]
    assert message.startswith("lung dose 10.73 Gy from the delivered activity exceeds the "
                              "directive's 6.74 Gy by 3.98 Gy and +59% (10 CFR 35.3045(a)(3)")
    assert message.endswith("…); report as the regulation requires")
    assert record["medical_event"] is True


def test_lung_criterion_of_an_older_directive_or_no_expected_dose(directive):
    """A directive without a lung dose per GBq (written by an older version): the criterion
    is not applicable and says why; an expected lung dose of 0 Gy (a directive edited by hand)
    gives no relative excess, and its warning gives the excess in Gy alone. Bugs: the
    reason's words, a ZeroDivisionError, a warning formatting None (a traceback)."""
    old = copy.deepcopy(directive)
    del old["lung_gy_per_delivered_gbq"]
    lung = administration_record(old, vial_readings(_vial_at_8(2.263)))["lung_criterion"]
    assert (lung["applicable"], lung["reason"]) == (
        False, "the directive holds no lung dose per GBq (written by an older version)")
    assert "10 CFR 35.3045(a)(3)" in lung["source"]
    zero = copy.deepcopy(directive)
    zero["lung_dose_gy"] = 0.0
    record = administration_record(zero, vial_readings(_vial_at_8(2.263)))
    lung = record["lung_criterion"]
    assert lung["relative_excess"] is None and lung["applicable"] is True
    # 2.263 * 2.9802 = 6.744 Gy against none expected: more than 0.5 Gy over it
    (message,) = [w["message"] for w in record["warnings"] if w["code"] == "medical-event-lung"]
    assert message.startswith("lung dose 6.74 Gy from the delivered activity exceeds the "
                              "directive's 0.00 Gy by 6.74 Gy (10 CFR 35.3045(a)(3)")


def test_an_override_of_the_directive_is_repeated_on_the_record(directive):
    """A limit exceeded and accepted in the directive shows on the administration record,
    word for word. Bug: the override's site, limit, author, date or reason lost."""
    d = copy.deepcopy(directive)
    d["overrides"] = [{"treatment_site": "right hepatic", "reason": "tumour board",
                       "by": "Dr A", "when": "2026-11-30T09:00:00+00:00",
                       "exceeded": "right hepatic: normal-liver-limit 124.73 Gy > 120 Gy"}]
    record = administration_record(d, vial_readings(_vial_at_8(2.263)))
    (message,) = [w["message"] for w in record["warnings"] if w["code"] == "limit-override"]
    assert message == ("right hepatic: prescribed beyond a limit (right hepatic: "
                       "normal-liver-limit 124.73 Gy > 120 Gy), accepted by Dr A on "
                       "2026-11-30T09:00:00+00:00: tumour board")
    assert record["overrides"] == d["overrides"]


def test_record_fields_by_hand(directive):
    """The record names its directive by the SHA-256 of its canonical JSON (sorted keys, no
    white space, UTF-8: docs/treatment-day.md), carries the plan's hashes, the readings as
    given, the totals and the time it was made. Bugs: a field dropped or taken from
    elsewhere, the prescribed total of another site."""
    import hashlib
    from datetime import datetime, timezone
    created = datetime(2026, 12, 1, 12, 0, 5, 999, tzinfo=timezone.utc)
    readings = vial_readings(_vial_at_8(2.263))
    record = administration_record(directive, readings, created=created)
    text = json.dumps(directive, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert record["directive_sha256"] == sha
    assert record["parents"] == {"directive": {"schema": "tareplanner.directive/1",
                                               "sha256": sha}}
    assert record["created"] == "2026-12-01T12:00:05+00:00"
    assert (record["plan_input_sha256"], record["plan_sha256"]) == (
        directive["plan_input_sha256"], directive["plan_sha256"])
    assert (record["case_id"], record["patient_id"]) == (None, None)
    assert record["readings"] == readings and record["directive"] == directive
    assert record["total_prescribed_activity_gbq"] == \
        directive["positions"][0]["prescribed_activity_gbq"]
    assert record["total_delivered_activity_gbq"] == pytest.approx(2.263, rel=1e-9)
    assert record["medical_event"] is False and record["nuclide"]["half_life_h"] == 64.1
    assert record["plausibility"]["questioned"] == []
    assert record["plausibility"]["confirmed_reason"] is None
    # a reason given although nothing was questioned is not recorded as a confirmation
    again = administration_record(directive, readings, confirm_reason="just in case")
    assert again["plausibility"]["confirmed_reason"] is None
