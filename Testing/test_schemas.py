"""The published JSON Schemas (docs/schemas) agree with what the program reads and writes."""

import copy
import json

import jsonschema
import pytest

from tareplanner.cli.main import demo_case_document
from tareplanner.planning import plan_case
from tareplanner.records.case import parse_case

from conftest import REPO


def _schema(name):
    return json.loads((REPO / "docs" / "schemas" / name).read_text())


CASE = _schema("case-1.schema.json")
PLAN = _schema("plan-1.schema.json")
SITE = _schema("site-limits-1.schema.json")


def test_schemas_are_valid_json_schema():
    for schema in (CASE, PLAN, SITE):
        jsonschema.Draft202012Validator.check_schema(schema)


def test_example_cases_validate(base_case):
    jsonschema.validate(base_case, CASE)
    jsonschema.validate(demo_case_document(), CASE)
    for path in (REPO / "docs" / "examples").glob("*.case.json"):
        jsonschema.validate(json.loads(path.read_text()), CASE)
        parse_case(json.loads(path.read_text()))


def test_plan_records_validate(base_case):
    jsonschema.validate(plan_case(parse_case(base_case)), PLAN)
    jsonschema.validate(plan_case(parse_case(demo_case_document())), PLAN)
    for path in (REPO / "docs" / "examples").glob("*.case.json"):
        jsonschema.validate(plan_case(parse_case(json.loads(path.read_text()))), PLAN)


@pytest.mark.parametrize("mutation", [
    lambda c: c.update(product="sirspheres"),
    lambda c: c.update(lung_shunt_fraction=1.0),
    lambda c: c["positions"][0].update(normal_volume_ml=-1),
    lambda c: c["positions"][0]["tumours"][0].update(tnr=0),
    lambda c: c.update(schema="tareplanner.case/2"),
    lambda c: c.update(extra_field=1),
    lambda c: c["positions"][0].update(goal={"tumour_dose_gy": 100, "normal_dose_gy": 40}),
])
def test_schema_and_program_reject_the_same_bad_cases(base_case, mutation):
    bad = copy.deepcopy(base_case)
    mutation(bad)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, CASE)
    with pytest.raises(ValueError):
        parse_case(bad)


def test_site_limits_example_validates():
    path = REPO / "docs" / "examples" / "site-limits.json"
    jsonschema.validate(json.loads(path.read_text()), SITE)
