"""The guideline check of a plan (tareplanner.guideline_check.check) on rows and plan values
written here by hand: the size of a vial's deviation, a conditional row ("> 150 if whole liver
dose < 150", EANM 2022 Table 2) whose condition holds, fails or is not known, and a
prescription row met within its display tolerance.

Expected values are worked by hand from docs/physics.md: "a prescription (Ho-166 '60') is
shown as met within ±5 % (a display convention: the table gives no tolerance)"; "'> 150 if
whole liver dose < 150' is met only when both hold"; a row is met, not met (with the margin:
how far, in its unit) or not evaluated (with the reason).
"""

import pytest

from tareplanner import guideline_check as gc
from tareplanner import guidelines as gl


def _row(row_id, quantity, operator, value, kind="recommendation", only_if=None,
         edge="equal meets", unit="Gy"):
    return gl.Row(id=row_id, product="glass", intents=("any",), histologies=("any",),
                  quantity=quantity, operator=operator, value=value, high=None, unit=unit,
                  printed=str(value), kind=kind, document="eanm-2022", table="Table 2",
                  row=row_id, loe="3", only_if=only_if, edge=edge)


def _rows(*rows):
    return gc.CaseRows(tuple((r, None) for r in rows))


def _plan(perfused_gy=(200.0,), normal_gy=50.0, whole=None, deviations=()):
    """A plan record with one position per perfused dose; ``whole`` the whole-liver part."""
    return {"whole_liver": whole if whole is not None else {"checked": False},
            "lung_dose_gy": 5.0, "lung_dose_cumulative_gy": 5.0, "lung_shunt_fraction": 0.05,
            "ordering": {"positions": [{"name": f"P{i}", "deviation_fraction": d}
                                       for i, d in enumerate(deviations)]},
            "positions": [{"name": f"P{i}", "perfused_dose_gy": gy, "normal_dose_gy": normal_gy,
                           "tumours": []} for i, gy in enumerate(perfused_gy)]}


def _whole(gy):
    return {"checked": True, "whole_liver_dose_gy": gy, "whole_normal_liver_dose_gy": gy}


# --- the vial's deviation ----------------------------------------------------------------

NRC = _row("nrc", "activity_deviation", "<", 0.2, kind="regulatory-report", edge="strict",
           unit="fraction")


def test_a_deviation_is_checked_and_shown_by_its_size():
    """The criterion "differs by 20 percent or more" is on the size of the deviation: a vial
    holding 25 % less (-0.25) is shown as 0.25, not met by 0.2 - 0.25 = -0.05; 10 % more
    (+0.10): 0.10, met by 0.10. Bugs: the signed value shown (the size written under another
    key), a vial 25 % short passing as met."""
    entries = gc.check(_plan(deviations=(-0.25, 0.10)), _rows(NRC), None)
    got = [(e["where"], e["plan_value"], e["met"], round(e["margin"], 12)) for e in entries]
    assert got == [("P0", 0.25, False, -0.05), ("P1", 0.10, True, 0.10)]
    assert all(set(e) == set(entries[0]) for e in entries)


def test_the_size_is_taken_only_of_a_deviation():
    """A dose below 0 (impossible: a fault upstream) is shown and compared as it is, not
    turned into a positive dose: -50 Gy against <= 70 Gy, margin 70 - (-50) = 120 Gy. Bug:
    the absolute value taken for every quantity (``or`` for ``and``), which would show
    50 Gy and a margin of 20 Gy."""
    (entry, ) = gc.check(_plan(normal_gy=-50.0), _rows(_row("n70", "normal_perfused", "<=",
                                                             70.0)), None)
    assert (entry["plan_value"], entry["margin"]) == (-50.0, 120.0)


# --- a conditional row: "> 150 if whole liver dose < 150" ---------------------------------

CONDITIONAL = _row("perfused-150", "perfused", ">", 150.0,
                   only_if={"quantity": "whole_liver", "operator": "<", "value": 150.0})


def test_a_conditional_row_without_the_whole_liver_is_not_evaluated():
    """Without the whole liver's volume the condition cannot be judged: not evaluated, with
    the reason the whole-liver rows give, no verdict and no margin. Bugs: the condition's
    missing value not looked for (or looked for in the wrong place: a TypeError comparing
    None), its reason dropped or replaced by a generic one, the margin key left out of the
    entry (plan-1.schema.json lists it)."""
    (entry,) = gc.check(_plan(), _rows(CONDITIONAL), None)
    assert {k: entry[k] for k in ("status", "met", "margin", "reason", "plan_value")} == {
        "status": "not evaluated", "met": None, "margin": None,
        "reason": "whole_liver_volume_ml is not in the case", "plan_value": 200.0}


def test_a_conditional_row_whose_condition_has_no_value_names_the_quantity():
    """A whole-liver value missing without a reason of its own: the row is not evaluated and
    says which quantity is not known ("whole_liver not known"). Bugs: the fallback reason
    dropped (the row evaluated against None), or its quantity looked up under another key."""
    (entry,) = gc.check(_plan(whole={"checked": True}), _rows(CONDITIONAL), None)
    assert (entry["status"], entry["margin"], entry["reason"]) == (
        "not evaluated", None, "whole_liver not known")


@pytest.mark.parametrize("perfused, whole, met, reason", [
    (200.0, 100.0, True, None),      # both hold: met, 200 - 150 = 50 Gy
    (140.0, 100.0, False, None),     # the dose fails, the condition holds
    (200.0, 160.0, False, "its condition fails: whole liver 160.0 Gy, not < 150 Gy"),
])
def test_a_conditional_row_is_met_only_when_both_hold(perfused, whole, met, reason):
    """docs/physics.md: "> 150 if whole liver dose < 150" is met only when both hold. By
    hand: 200 Gy > 150 with the whole liver at 100 Gy < 150: met, margin 50; 140 Gy: not met,
    margin -10; 200 Gy with the whole liver at 160 Gy: not met, because the condition
    fails. Bug: the condition's test negated (a row met only when its condition fails)."""
    (entry,) = gc.check(_plan(perfused_gy=(perfused,), whole=_whole(whole)),
                        _rows(CONDITIONAL), None)
    assert (entry["met"], entry["reason"]) == (met, reason)
    assert entry["margin"] == perfused - 150.0


# --- a prescription row, met within +/- 5 % -----------------------------------------------

@pytest.mark.parametrize("plan_gy, met", [
    (63.0, True), (57.0, True),       # +5 % and -5 % exactly: met
    (63.1, False), (56.9, False),     # just beyond
    (60.0, True),
])
def test_a_prescription_is_met_within_five_percent(plan_gy, met):
    """docs/physics.md: a prescription (Ho-166 "60") is shown as met within +/- 5 %: 60 Gy
    +/- 3 Gy, both ends included; the margin is minus the distance, -|plan - 60|. Bug: the
    tolerance not passed (only exactly 60 Gy met)."""
    (entry,) = gc.check(_plan(perfused_gy=(plan_gy,)), _rows(_row("ho-60", "perfused", "=",
                                                                  60.0)), None)
    assert entry["met"] is met
    assert entry["margin"] == pytest.approx(-abs(plan_gy - 60.0), abs=1e-12)


# --- the facts the rows' conditions read, and the site's rows ------------------------------

def _case(compromised=False, scenario=None, whole_ml=2000.0, perfused_ml=(600.0, 400.0)):
    from types import SimpleNamespace
    return SimpleNamespace(product="therasphere", scenario=scenario, liver_compromised=compromised,
                           whole_liver_volume_ml=whole_ml,
                           positions=[SimpleNamespace(perfused_volume_ml=v) for v in perfused_ml])


def _scenario(prior=False, favourable=False, bilirubin=1.2):
    from types import SimpleNamespace
    return SimpleNamespace(bilirubin_mg_dl=bilirubin, prior_treatment=prior,
                           favourable_liver_function=favourable, intent="unilobar",
                           histology="hcc")


@pytest.mark.parametrize("compromised, prior, expected", [
    (False, False, False), (True, False, True), (False, True, True), (True, True, True)])
def test_compromised_or_pretreated_is_either(compromised, prior, expected):
    """EANM 2022 Table 2's "compromised or pretreated liver": a compromised liver (the case)
    or a prior treatment (the scenario), either one. Bugs: both required (``and``), the fact
    left unknown (None) or always false."""
    facts = gc.facts_for(_case(compromised, _scenario(prior)))
    assert facts.compromised_or_pretreated is expected


def test_facts_of_a_case_by_hand():
    """Hepatic reserve = 1 - perfused / whole liver (EANM 2022 Table 2's untreated liver
    fraction): 1 - (600 + 400) / 2000 = 0.5; the bilirubin and liver function from the
    scenario. Without a scenario a compromised liver still counts, the bilirubin is not
    known; more perfused than the whole liver gives no reserve (0, not negative)."""
    facts = gc.facts_for(_case(scenario=_scenario(favourable=True)))
    assert (facts.hepatic_reserve_fraction, facts.bilirubin_mg_dl,
            facts.favourable_liver_function) == (0.5, 1.2, True)
    facts = gc.facts_for(_case(compromised=True, perfused_ml=(2500.0,)))
    assert (facts.hepatic_reserve_fraction, facts.bilirubin_mg_dl,
            facts.compromised_or_pretreated, facts.favourable_liver_function) == (
        0.0, None, True, False)


def test_case_rows_carry_the_site_s_name():
    """A site that lowers the TheraSphere single-treatment lung limit from 30 Gy (package
    insert) to 25 Gy: the row of the case says which site changed it. Bug: the site's name
    not passed on (the plan would not say whose limit it is)."""
    site = {"guidelines": {"change": [{"row": "ifu-therasphere-lung-single", "value": 25,
                                       "reason": "local practice"}]}}
    rows = dict((r.id, r) for r, _ in gc.case_rows(_case(), site, "Hospital X").rows)
    change = rows["ifu-therasphere-lung-single"].site_change
    assert (change["site"], change["value_to"], change["value_reason"]) == (
        "Hospital X", 25.0, "local practice")
