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
                                UnknownFieldError)
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
