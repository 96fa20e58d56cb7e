"""A change of the written directive re-plans the case (tareplanner.replan), and a directive
is replayed from its plan and the changes it records; values by hand.

The case is conftest.BASE_CASE (one position, "right hepatic": normal liver 900 mL, tumour
120 mL with TNR 3.1, density 1.03 g/mL, LSF 6 %, no residual). Partition model by hand
(EANM 2022; docs/physics.md): D_N = A * CF * (1 - LSF) / (M_N + TNR * M_T), CF = 49.67 J/GBq
(Y-90), M_N = 0.927 kg, M_T = 0.1236 kg: M_N + TNR M_T = 1.31016 kg.
"""

import copy

import pytest

from conftest import BASE_CASE
from tareplanner.planning import plan_case
from tareplanner.records.case import parse_case
from tareplanner.records.directive import directive_from_plan
from tareplanner.replan import change_directive, replan_at, replay_directive

SITE = "right hepatic"


def test_a_bsa_plan_is_replanned_at_the_activity_given():
    """SIR-Spheres planned by BSA (every tumour has a TNR: partition model): a change to
    1.0 GBq re-plans the position at 1.0 GBq with the BSA plan's dose model, D_N =
    1.0 * 49.67 * 0.94 / 1.31016 = 35.637 Gy. Bug: the case kept as a BSA case, whose
    positions take no activity (the change refused)."""
    case = copy.deepcopy(BASE_CASE)
    case.update(product="sir-spheres", method="bsa")
    del case["positions"][0]["goal"]
    plan = plan_case(parse_case(case))
    again = replan_at(plan, {SITE: 1.0})
    assert again["dose_model"] == "partition"
    assert again["positions"][0]["activity_gbq"] == pytest.approx(1.0, rel=1e-12)
    assert again["positions"][0]["normal_dose_gy"] == pytest.approx(
        1.0 * 49.67 * 0.94 / 1.31016, rel=1e-5)


def test_replay_of_a_change_beyond_a_limit_uses_its_recorded_override():
    """A site's hard normal-liver limit of 120 Gy: 3.5 GBq gives 3.5 * 49.67 * 0.94 /
    1.31016 = 124.7 Gy, beyond it, accepted only with the override recorded in the change.
    The replay repeats the change with that override and finds the same directive. Bug: the
    override's reason not read from the recorded change (the replay refused)."""
    site = {"schema": "tareplanner.site-limits/1", "site": "test site",
            "products": {"therasphere": {"normal_liver_gy": 120}}}
    plan = plan_case(parse_case(copy.deepcopy(BASE_CASE)), site, "test site")
    changed = change_directive(directive_from_plan(plan), plan, SITE, 3.5, "larger lobe",
                               "Dr A", override_reason="tumour board decision")
    assert changed["positions"][0]["planned_doses_gy"]["normal_liver"] == pytest.approx(
        3.5 * 49.67 * 0.94 / 1.31016, rel=1e-5)
    (override,) = changed["overrides"]
    assert override["exceeded"] == "right hepatic: normal-liver-limit 124.73 Gy > 120 Gy"
    result = replay_directive(changed, plan)
    assert result["identical"] is True and result["differences"] == []


def test_a_replan_keeps_the_plan_s_site_limits_and_dose_response_fit(monkeypatch):
    """The re-plan takes the plan's own site limits, named by the site's label ("test
    site", the 120 Gy normal-liver limit: 3.5 GBq gives 124.7 Gy, a violation there), and
    the plan's dose-response fit (its probabilities and warnings reach the changed
    directive's plan checks). Bugs: the site limits or their label dropped, the fit not
    passed on."""
    import tareplanner.replan as replan
    site = {"schema": "tareplanner.site-limits/1", "site": "test site",
            "products": {"therasphere": {"normal_liver_gy": 120}}}
    plan = plan_case(parse_case(copy.deepcopy(BASE_CASE)), site, "test site")
    again = replan_at(plan, {SITE: 3.5})
    assert again["limits_source"] == "site limits: test site"
    (violation,) = again["positions"][0]["violations"]
    assert (violation["limit"], violation["limit_gy"]) == ("normal-liver-limit", 120)
    fit = {"marker": "the plan's fit"}
    seen = {}
    monkeypatch.setattr(replan, "plan_case",
                        lambda case, site, label, response=None: seen.update(response=response))
    replan_at(dict(plan, dose_response={"fit": fit}), {SITE: 3.5})
    assert seen["response"] is fit


def test_replay_lists_a_changed_field_by_its_path():
    """A directive whose lung dose was edited to 99 Gy (the plan's, by hand: 2.263 GBq *
    49.67 * 0.06 / 1.0 kg = 6.744 Gy) replays with that one difference, named by its path;
    the input is not reported as changed; the software of the directive (here an older
    version) and of the replay are both shown. Bugs: the paths prefixed, the answer's keys
    renamed, the input reported as changed."""
    plan = plan_case(parse_case(copy.deepcopy(BASE_CASE)))
    directive = directive_from_plan(plan)
    software = dict(directive["software"])
    directive["lung_dose_gy"] = 99.0
    directive["software"] = {"name": "tareplanner", "version": "0.0.1"}
    result = replay_directive(directive, plan)
    (difference,) = result["differences"]
    assert difference["field"] == "lung_dose_gy"
    assert (difference["record"], difference["replay"]) == (99.0, pytest.approx(6.744,
                                                                                 abs=1e-3))
    assert result == {"identical": False, "input_changed": False,
                      "differences": result["differences"],
                      "software": {"record": {"name": "tareplanner", "version": "0.0.1"},
                                   "replay": software}}


def test_a_change_from_another_plan_names_both_records():
    """A directive changed with a plan it was not written from (the same case planned again)
    is refused; the refusal names the directive and the plan as 'directive' and 'plan' by
    default, or by the names the caller gives (the files typed). Bug: the default names
    garbled."""
    from tareplanner.records.chain import RecordChainError
    plan = plan_case(parse_case(copy.deepcopy(BASE_CASE)))
    directive = directive_from_plan(plan)
    other = plan_case(parse_case(copy.deepcopy(BASE_CASE)))
    other["created"] = "2000-01-01T00:00:00+00:00"
    with pytest.raises(RecordChainError) as error:
        change_directive(directive, other, SITE, 2.0, "r", "Dr A")
    assert error.value.field == "directive parents.plan"
    assert error.value.detail == ("plan is another plan, or it was changed after directive "
                                  "was written")
    with pytest.raises(RecordChainError) as error:
        change_directive(directive, other, SITE, 2.0, "r", "Dr A", plan_label="plan.json",
                         directive_label="directive.json")
    assert error.value.detail == ("plan.json is another plan, or it was changed after "
                                  "directive.json was written")
