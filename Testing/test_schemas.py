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


def test_a_promoted_perfused_cap_validates_when_it_binds_and_when_it_is_exceeded(base_case):
    """Bug caught: the plan schema listed no 'perfused-limit', though a site's promoted row on
    the perfused volume caps a position under that name (it binds, and an explicit activity
    above it is reported as its violation): such a plan did not validate against its own
    schema. TheraSphere, bilobar HCC, the site promoting EANM 2022's glass perfused-volume
    range 80-150 Gy and a tumour goal of 600 Gy at TNR 6 (perfused (600 x 120 + 100 x 900) /
    1020 = 158.8 Gy > 150): the position is held to 150 Gy to its perfused volume; the same
    case with an explicit 5 GBq is above it."""
    from tareplanner import catalogue
    base_case.update(scenario={"intent": "bilobar", "histology": "hcc"})
    base_case["positions"][0]["tumours"][0]["tnr"] = 6.0
    base_case["positions"][0]["goal"] = {"tumour_dose_gy": 600}
    site = catalogue.validate_site_limits({
        "schema": "tareplanner.site-limits/1", "site": "Test Hospital", "products": {},
        "guidelines": {"promote": [{"row": "eanm22-glass-hcc-bilobar-perfused-80-150",
                                    "reason": "protocol 2026"}]}})
    record = plan_case(parse_case(base_case), site, "Test Hospital")
    (position,) = record["positions"]
    assert position["limited_by"] == "perfused-limit"
    assert position["perfused_dose_gy"] == pytest.approx(150, rel=1e-9)
    jsonschema.validate(record, PLAN)
    explicit = copy.deepcopy(base_case)
    explicit["positions"][0]["goal"] = {"activity_gbq": 5.0}
    record = plan_case(parse_case(explicit), site, "Test Hospital")
    (position,) = record["positions"]
    assert [v["limit"] for v in position["violations"]] == ["perfused-limit"]
    jsonschema.validate(record, PLAN)
