"""Treatment day: written directive, its changes, the administration record.

Expected values are hand calculations of decay (A(t) = A0 exp(-ln2 t / T1/2), T1/2 from the
directive's nuclide: Y-90 64.1 h, Ho-166 26.8 h) and the 20 % medical-event criterion of
10 CFR 35.3045(a)(1) ("differs ... by 20 percent or more"), tested at its edge.
"""

import copy
import json
import math

import pytest

from tareplanner.cli.main import main
from tareplanner.errors import FieldValueError, SchemaError, UnknownNameError
from tareplanner.planning import plan_case
from tareplanner.records.administration import administration_record, replay_administration
from tareplanner.records.case import parse_case
from tareplanner.records.directive import directive_from_plan
from tareplanner.replan import change_directive

T_Y90 = 64.1


@pytest.fixture
def plan(base_case):
    return plan_case(parse_case(base_case))


@pytest.fixture
def directive(plan):
    return directive_from_plan(plan)


def _decay(a, hours, half_life=T_Y90):
    return a * math.exp(-math.log(2) * hours / half_life)


def _readings(vial_gbq, residual_gbq=None, site="right hepatic"):
    entry = {"treatment_site": site,
             "vial": [{"activity_gbq": vial_gbq, "time": "2026-12-01T08:00:00+01:00"}],
             "administration_time": "2026-12-01T10:00:00+01:00"}
    if residual_gbq is not None:
        entry["residual"] = [{"activity_gbq": residual_gbq, "time": "2026-12-01T11:00:00+01:00"}]
    return [entry]


def test_directive_carries_the_prescription(directive, base_case):
    """The directive states site, radionuclide, product and the plan's activity (2.263 GBq,
    test_planning's hand calculation) and is tied to the plan by its hash."""
    (site,) = directive["positions"]
    assert site["treatment_site"] == "right hepatic"
    assert site["prescribed_activity_gbq"] == pytest.approx(2.2630, abs=1e-4)
    assert site["planned_doses_gy"]["tumours"]["T1"] == pytest.approx(250)
    assert directive["nuclide"]["name"] == "Y-90"
    assert directive["criteria"]["medical_event"]["relative_deviation"] == 0.20
    assert "10 CFR 35.3045" in directive["criteria"]["medical_event"]["source"]
    assert directive["signatures"]["authorised_user"] is None


def test_delivered_activity_is_decay_corrected(directive):
    """Vial 3.0 GBq at 08:00, administered 10:00, residual 0.10 GBq at 11:00 (Y-90):
    3.0 exp(-ln2 2/64.1) - 0.10 exp(+ln2 1/64.1) = 2.93582 - 0.10109 = 2.83473 GBq."""
    record = administration_record(directive, _readings(3.0, 0.10))
    (site,) = record["sites"]
    vial = _decay(3.0, 2)
    residual = _decay(0.10, -1)
    assert vial == pytest.approx(2.93582, abs=1e-5) and residual == pytest.approx(0.10109, abs=1e-5)
    assert site["vial_at_administration_gbq"] == pytest.approx(vial, rel=1e-12)
    assert site["residual_at_administration_gbq"] == pytest.approx(residual, rel=1e-12)
    assert site["delivered_activity_gbq"] == pytest.approx(vial - residual, rel=1e-12)
    assert site["deviation_fraction"] == pytest.approx((vial - residual) / 2.2630 - 1, abs=1e-4)


@pytest.mark.parametrize("ratio, event", [(0.8 - 1e-6, True), (0.8, True), (0.8 + 1e-6, False),
                                          (1.2 - 1e-6, False), (1.2, True), (1.2 + 1e-6, True)])
def test_medical_event_criterion_edges(directive, ratio, event):
    """20 % or more either way is a medical event; 20 % itself is one (it used to be missed
    by floating point: 1.2 / 1 - 1 = 0.19999999999999996)."""
    prescribed = directive["positions"][0]["prescribed_activity_gbq"]
    vial_at_8 = prescribed * ratio / _decay(1.0, 2)   # delivered = ratio * prescribed, no residual
    record = administration_record(directive, _readings(vial_at_8))
    assert record["sites"][0]["medical_event"] is event
    assert ("medical-event" in [w["code"] for w in record["warnings"]]) is event


def test_site_tolerance_is_flagged_separately(directive):
    prescribed = directive["positions"][0]["prescribed_activity_gbq"]
    record = administration_record(directive, _readings(prescribed * 0.88 / _decay(1.0, 2)),
                                   site_tolerance_fraction=0.10)
    assert record["sites"][0]["beyond_site_tolerance"] and not record["medical_event"]
    assert "beyond-site-tolerance" in [w["code"] for w in record["warnings"]]


def test_change_before_administration_is_recorded_and_used(directive, plan):
    """A change (2.263 -> 2.0 GBq) is kept with reason, author and time; the doses scale with
    the activity (tumour 250 Gy -> 250 * 2.0 / 2.263 = 220.9 Gy) and the administration is
    checked against the changed prescription."""
    changed = change_directive(directive, plan, "right hepatic", 2.0,
                               "smaller lobe on angiography", "Dr A. Example")
    (change,) = changed["changes"]
    assert change["from"] == pytest.approx(2.2630, abs=1e-4) and change["to"] == 2.0
    assert changed["positions"][0]["planned_doses_gy"]["tumours"]["T1"] == pytest.approx(
        250 * 2.0 / directive["positions"][0]["prescribed_activity_gbq"])
    record = administration_record(changed, _readings(2.0 / _decay(1.0, 2)))
    assert record["sites"][0]["deviation_fraction"] == pytest.approx(0.0, abs=1e-12)
    assert directive["changes"] == []  # the original is not modified


@pytest.mark.parametrize("mutate, error, words", [
    (lambda r: r[0].update(treatment_site="left"), UnknownNameError, "treatment_site"),
    (lambda r: r[0]["vial"][0].update(time="2026-12-01T10:30:00+01:00"), FieldValueError,
     "at or before the administration"),
    (lambda r: r[0]["residual"][0].update(time="2026-12-01T09:00:00+01:00"), FieldValueError,
     "at or after the administration"),
    (lambda r: r[0]["residual"][0].update(activity_gbq=5.0), FieldValueError, "residual"),
    (lambda r: r[0]["vial"][0].update(activity_gbq=float("nan")), FieldValueError, "activity_gbq"),
    (lambda r: r[0]["vial"][0].update(activity_gbq=-1), FieldValueError, "activity_gbq"),
    (lambda r: r[0].update(vial=[]), FieldValueError, "vial"),
    (lambda r: r[0].pop("administration_time"), Exception, "administration_time"),
    (lambda r: r[0]["vial"][0].update(time="2026-12-01T08:00:00"), FieldValueError, "UTC offset"),
    (lambda r: r.append(copy.deepcopy(r[0])), FieldValueError, "each site once"),
    (lambda r: r.clear(), SchemaError, "readings"),
])
def test_bad_readings_are_refused_by_name(directive, mutate, error, words):
    readings = _readings(3.0, 0.1)
    mutate(readings)
    with pytest.raises(error, match=words):
        administration_record(directive, readings)


def test_administration_replays(directive):
    record = json.loads(json.dumps(administration_record(directive, _readings(3.0, 0.1))))
    assert replay_administration(record)["identical"]
    record["sites"][0]["delivered_activity_gbq"] += 0.01
    assert not replay_administration(record)["identical"]


def test_cli_directive_administer_replay(tmp_path, base_case, capsys):
    case = tmp_path / "case.json"
    case.write_text(json.dumps(base_case))
    plan, directive, admin = (tmp_path / n for n in ("plan.json", "directive.json",
                                                    "admin.json"))
    assert main(["plan", str(case), "-o", str(plan)]) == 0
    assert main(["directive", str(plan), "-o", str(directive)]) == 0
    args = ["administer", str(directive), "--vial", "right hepatic=2.4@2026-12-01T08:00+01:00",
            "--residual", "right hepatic=0.05@2026-12-01T11:00+01:00",
            "--administered-at", "right hepatic=2026-12-01T10:00+01:00", "-o", str(admin)]
    assert main(args) == 0
    assert main(["replay", str(admin)]) == 0
    assert main(args) == 2                     # existing output: refused without --force
    assert "exists" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    assert main(["administer", str(directive), "--vial", "right hepatic=lots", "-o",
                 str(bad)]) == 2
    assert not bad.exists()
    assert main(["directive", str(plan), "--change", str(directive), "--site", "nowhere",
                 "--activity-gbq", "1", "--reason", "x", "--by", "y", "-o",
                 str(tmp_path / "d2.json")]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_records_match_their_published_schemas(directive):
    """docs/schemas/directive-1 and administration-1 describe what the program writes."""
    import jsonschema
    from referencing import Registry, Resource

    from conftest import REPO
    schemas = {name: json.loads((REPO / "docs" / "schemas" / name).read_text())
               for name in ("directive-1.schema.json", "administration-1.schema.json")}
    registry = Registry().with_resources(
        (s["$id"], Resource.from_contents(s)) for s in schemas.values())
    jsonschema.validate(directive, schemas["directive-1.schema.json"])
    record = json.loads(json.dumps(administration_record(directive, _readings(3.0, 0.1))))
    jsonschema.Draft202012Validator(schemas["administration-1.schema.json"],
                                    registry=registry).validate(record)


def test_dose_takes_the_delivered_activity_of_its_own_plan(directive, base_case, tmp_path):
    """`dose --administration`: the administered activity becomes the delivered total (hand:
    the readings' decay-corrected difference) with no second residual; an administration of
    another plan, or one given together with --administered-gbq, is refused by name."""
    import argparse

    from tareplanner.cli.dose_commands import _administration_activity
    plan = plan_case(parse_case(base_case))
    record = administration_record(directive_from_plan(plan), _readings(3.0, 0.10))
    path = tmp_path / "admin.json"
    path.write_text(json.dumps(record))
    args = argparse.Namespace(administration=str(path), administered_gbq=None,
                              residual_fraction=None)
    _administration_activity(args, plan)
    assert args.administered_gbq == pytest.approx(_decay(3.0, 2) - _decay(0.10, -1), rel=1e-12)
    assert args.residual_fraction == 0.0
    both = argparse.Namespace(administration=str(path), administered_gbq=2.0,
                              residual_fraction=None)
    with pytest.raises(FieldValueError, match="not both"):
        _administration_activity(both, plan)
    other = dict(base_case, case_id="another")
    with pytest.raises(FieldValueError, match="parents.plan"):
        _administration_activity(argparse.Namespace(administration=str(path),
                                                    administered_gbq=None,
                                                    residual_fraction=None),
                                 plan_case(parse_case(other)))
