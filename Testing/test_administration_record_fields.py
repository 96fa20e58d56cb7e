"""Fields of the administration record taken from its directive or the clock
(records.administration.administration_record), checked against values written here.

Sources: docs/treatment-day.md and the record's schema (docs/schemas/administration-1.schema.json:
``created`` is the time the record was made, in UTC, ISO 8601 with its offset; the record
carries the case and patient identifiers of its directive); docs/case-format.md (``case_id``
and ``patient.id`` are copied from the case into the plan and on into its records). The
directive is that of conftest.BASE_CASE (TheraSphere, 2.263 GBq prescribed to "right
hepatic"), planned here with a case and a patient identifier. Decay by hand:
A(t) = A0 * 2^(-t / 64.1 h) (Y-90).
"""

import copy
from datetime import datetime, timedelta, timezone

import pytest

from conftest import BASE_CASE
from tareplanner.planning import plan_case
from tareplanner.records.administration import administration_record
from tareplanner.records.case import parse_case
from tareplanner.records.directive import directive_from_plan

SITE = "right hepatic"


@pytest.fixture(scope="module")
def directive():
    case = copy.deepcopy(BASE_CASE)
    case["case_id"] = "liver-07"
    case["patient"] = dict(case["patient"], id="P-0042")
    return directive_from_plan(plan_case(parse_case(case)))


def _readings():
    """A vial of 2.263 / 2^(-2 / 64.1) GBq read at 08:00: 2.263 GBq at 10:00."""
    return [{"treatment_site": SITE,
             "vial": [{"activity_gbq": 2.263 / 2 ** (-2 / 64.1),
                       "time": "2026-12-01T08:00:00+01:00"}],
             "administration_time": "2026-12-01T10:00:00+01:00"}]


def test_created_is_now_in_utc_to_the_second(directive):
    """Without a time given, the record is stamped now, in UTC with its offset written
    ("+00:00"), to the second. Bug: the local time without an offset (a naive date-time:
    ambiguous by hours, refused by the record readers that want an offset)."""
    before = datetime.now(timezone.utc).replace(microsecond=0)
    record = administration_record(directive, _readings())
    after = datetime.now(timezone.utc)
    created = record["created"]
    assert created.endswith("+00:00") and "." not in created
    stamp = datetime.fromisoformat(created)
    assert stamp.utcoffset() == timedelta(0)
    assert before <= stamp <= after


def test_case_and_patient_identifiers_come_from_the_directive(directive):
    """The case "liver-07" and the patient "P-0042" of the case are on the directive and
    copied onto the administration record. Bugs: either identifier read under another key
    (None on the record: an administration not traceable to its patient)."""
    assert (directive["case_id"], directive["patient_id"]) == ("liver-07", "P-0042")
    record = administration_record(directive, _readings())
    assert (record["case_id"], record["patient_id"]) == ("liver-07", "P-0042")
