"""Dose-calibrator readings refused by name (records.administration.parse_readings and its
reading reader), each refusal's field, value and allowed text checked against the rules
written here.

Sources: docs/treatment-day.md (each reading is an object {activity_gbq, time}; activity
>= 0 and <= 100 GBq; the time an ISO 8601 date-time with its UTC offset, required; unknown
fields refused with the allowed ones); the record's schema
(docs/schemas/administration-1.schema.json: a reading has exactly ``activity_gbq`` and
``time``, both required; a site entry has ``treatment_site``, ``vial``, ``residual`` and
``administration_time``).
"""

import pytest

from tareplanner.errors import (FieldValueError, MissingFieldError, SchemaError,
                                UnknownFieldError, UnknownNameError)
from tareplanner.records.administration import parse_readings

TWO_SITES = {"positions": [{"treatment_site": "right"}, {"treatment_site": "left"}]}
ADMIN = "2026-12-01T10:00:00+01:00"
TIME_ALLOWED = "an ISO 8601 date-time with UTC offset, e.g. 2026-12-01T10:00:00+01:00"


def _with_vial(reading):
    """The right site read with ``reading`` as its only vial reading; the left site fine."""
    return [{"treatment_site": "right", "vial": [reading], "administration_time": ADMIN},
            {"treatment_site": "left", "administration_time": ADMIN,
             "vial": [{"activity_gbq": 1.0, "time": "2026-12-01T08:00:00+01:00"}]}]


def _refused(readings, kind):
    with pytest.raises(kind) as error:
        parse_readings(readings, TWO_SITES)
    return error.value


def test_a_reading_that_is_no_object_is_refused_by_its_place():
    """A vial reading given as a bare number (3.0 instead of {activity_gbq, time}). Bug: the
    refusal without the reading's place ("readings[0].vial[0]")."""
    e = _refused(_with_vial(3.0), SchemaError)
    assert (e.field, e.value, e.allowed) == ("readings[0].vial[0]", "float", "a JSON object")


def test_an_unknown_field_of_a_reading_is_refused_by_its_place():
    """A reading with "activity_mbq" (only activity_gbq and time are allowed). Bug: the
    refusal naming the key alone, not where it is."""
    e = _refused(_with_vial({"activity_mbq": 3000, "time": "2026-12-01T08:00:00+01:00"}),
                 UnknownFieldError)
    assert (e.field, e.value, e.allowed) == ("readings[0].vial[0].activity_mbq",
                                             "activity_mbq", "activity_gbq, time")


@pytest.mark.parametrize("value", [100.5, -0.25, "3"])
def test_a_reading_out_of_range_shows_the_value_given(value):
    """docs/treatment-day.md: 0 to 100 GBq. Bug: the refusal without the value typed (the
    user cannot see which reading was wrong)."""
    e = _refused(_with_vial({"activity_gbq": value, "time": "2026-12-01T08:00:00+01:00"}),
                 FieldValueError)
    assert (e.field, e.value) == ("readings[0].vial[0].activity_gbq", value)


def test_a_reading_without_its_time_is_refused_by_its_place():
    """Every reading needs its time (the decay to the administration is computed from it).
    Bugs: the time made optional (a reading without time taken, then a traceback comparing
    None with the administration time), the refusal naming "time" without its place."""
    e = _refused(_with_vial({"activity_gbq": 3.0}), MissingFieldError)
    assert (e.field, e.allowed) == ("readings[0].vial[0].time", TIME_ALLOWED)


def test_a_reading_time_without_utc_offset_is_refused_by_its_place():
    """A local time without its offset is ambiguous by hours of Y-90 decay. Bug: the refusal
    naming "time" without its place."""
    e = _refused(_with_vial({"activity_gbq": 3.0, "time": "2026-12-01T08:00:00"}),
                 FieldValueError)
    assert (e.field, e.value) == ("readings[0].vial[0].time", "2026-12-01T08:00:00")


def test_an_integer_reading_is_kept_as_a_float():
    """A reading typed as the integer 3 is 3.0 GBq as a float (the record's numbers are
    floats). Bug: the int kept (an int where a float is written)."""
    (right, _left) = parse_readings(_with_vial({"activity_gbq": 3,
                                                "time": "2026-12-01T08:00:00+01:00"}), TWO_SITES)
    value = right["vial"][0].activity_gbq
    assert value == 3.0 and type(value) is float


def test_an_unknown_field_of_a_site_entry_is_refused_by_its_place():
    """A site entry with "administered" (the allowed fields: treatment_site, vial, residual,
    administration_time). Bug: the refusal naming the key alone, not its entry."""
    readings = _with_vial({"activity_gbq": 3.0, "time": "2026-12-01T08:00:00+01:00"})
    readings[1]["administered"] = ADMIN
    e = _refused(readings, UnknownFieldError)
    assert (e.field, e.value, e.allowed) == (
        "readings[1].administered", "administered",
        "treatment_site, vial, residual, administration_time")


def test_a_mistyped_site_is_refused_with_the_closest_site_suggested():
    """"rigth" is no site of the directive (right, left); the refusal suggests "right".
    Bugs: the suggestion lost, or made for nothing."""
    readings = _with_vial({"activity_gbq": 3.0, "time": "2026-12-01T08:00:00+01:00"})
    readings[0]["treatment_site"] = "rigth"
    e = _refused(readings, UnknownNameError)
    assert (e.field, e.value, e.allowed, e.detail) == (
        "readings[0].treatment_site", "rigth", "a treatment site of the directive: right, left",
        "did you mean 'right'?")


def test_a_site_without_its_administration_time_is_refused_by_its_place():
    """The administration time is what every reading is decayed to. Bug: the refusal naming
    "administration_time" without its entry."""
    readings = _with_vial({"activity_gbq": 3.0, "time": "2026-12-01T08:00:00+01:00"})
    del readings[1]["administration_time"]
    e = _refused(readings, MissingFieldError)
    assert (e.field, e.allowed) == ("readings[1].administration_time", TIME_ALLOWED)


def test_a_residual_reading_out_of_range_is_refused_by_its_place():
    """A residual read as 150 GBq (above 100 GBq) second in its list. Bug: the refusal
    without the residual reading's place."""
    readings = _with_vial({"activity_gbq": 3.0, "time": "2026-12-01T08:00:00+01:00"})
    readings[1]["residual"] = [{"activity_gbq": 0.1, "time": "2026-12-01T11:00:00+01:00"},
                               {"activity_gbq": 150, "time": "2026-12-01T11:00:00+01:00"}]
    e = _refused(readings, FieldValueError)
    assert (e.field, e.value) == ("readings[1].residual[1].activity_gbq", 150)


def test_every_site_missing_is_named():
    """A directive of three sites (right, left, segment 4) with readings for the left one
    only: both missing sites are named, in the directive's order, separated by a comma.
    Bug: the sites run together or joined by something else."""
    three = {"positions": [{"treatment_site": "right"}, {"treatment_site": "left"},
                           {"treatment_site": "segment 4"}]}
    with pytest.raises(FieldValueError) as error:
        parse_readings(_with_vial({"activity_gbq": 1, "time": ADMIN})[1:], three)
    assert (error.value.field, error.value.value, error.value.allowed) == (
        "readings", ["left"],
        "readings for every treatment site of the directive; missing: right, segment 4")
