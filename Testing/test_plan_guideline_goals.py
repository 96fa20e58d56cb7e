"""The guideline rows in the plan record (tareplanner.planning.plan_case): a 'maximum' goal
that no hard limit bounds, set to the recommendation of the scenario with the row named in
the record and a warning; a site's promoted whole-normal-liver row that a case without the
whole liver volume cannot check, with its warnings and the site's change recorded.

QuiremSpheres (Ho-166), bilobar HCC, two lobes (Testing/test_safety_edges.py, density
1 g/mL). EANM 2022 (Weber et al.) Table 4 (166Ho microspheres): one-compartment perfused
volume dose 60 Gy, LOE 3, a recommendation; bilobar whole normal liver < 40 Gy, LOE 4.
Each test names the bug it catches.
"""

import pytest

from tareplanner import catalogue
from tareplanner.errors import FieldValueError
from tareplanner.planning import plan_case
from tareplanner.records.case import parse_case

from test_safety_edges import BILOBAR_HCC, _two_lobes

TABLE_4_PERFUSED = ("EANM 2022 (Weber et al.), Table 4 (166Ho microspheres), HCC, every "
                    "intent: one-compartment perfused volume dose")


def test_maximum_goal_resolved_from_the_recommendation():
    """Bugs caught: the recommendation a 'maximum' goal was set to recorded without its goal,
    row, source, level of evidence, kind or printed value (or under other names), its
    warning emptied or garbled, a lobe left without it; the scenario (bilobar HCC, the
    rest at its defaults) not recorded, or warned of as missing; the suggestions of
    another product than Ho-166's (its one prescription, 60 Gy to the perfused volume)."""
    record = plan_case(parse_case(_two_lobes(scenario=BILOBAR_HCC)))
    for position in record["positions"]:
        assert position["goal_resolved"] == {
            "goal": {"perfused_dose_gy": 60}, "row": "eanm22-holmium-hcc-perfused-60",
            "source": TABLE_4_PERFUSED, "loe": "3", "kind": "recommendation",
            "printed": "60"}
        assert position["perfused_dose_gy"] == pytest.approx(60, rel=1e-9)
    scenario = {"intent": "bilobar", "histology": "hcc", "bilirubin_mg_dl": None,
                "prior_treatment": False, "liver_compromised": False,
                "favourable_liver_function": False}
    assert record["scenario"] == scenario
    assert record["guideline_check"]["scenario"] == scenario
    codes = [w["code"] for w in record["warnings"]]
    assert "no-scenario" not in codes and "recommendation-not-met" in codes
    assert [s["row"] for s in record["guideline_check"]["suggestions"]] == [
        "eanm22-holmium-hcc-perfused-60"]
    messages = [w["message"] for w in record["warnings"]
                if w["code"] == "maximum-goal-from-recommendation"]
    assert messages == [
        f"{lobe}: goal 'maximum' has no hard limit to reach; it is set to the perfused volume "
        f"60 Gy of {TABLE_4_PERFUSED} (LOE 3, a recommendation)" for lobe in ("right", "left")]


def test_promoted_whole_liver_limit_without_the_whole_liver_volume():
    """Bugs caught: a site's promoted whole-normal-liver limit silently unchecked when the
    case lacks the whole liver volume (or its warning garbled), the whole-liver doses of
    such a plan written as something other than null, the site's change of the row not
    recorded with the row, the site (its label reaching the guideline rows), the kinds and
    the reason."""
    doc = _two_lobes(scenario=BILOBAR_HCC)
    del doc["whole_liver_volume_ml"]
    site = catalogue.validate_site_limits({
        "schema": "tareplanner.site-limits/1", "site": "Test Hospital", "products": {},
        "guidelines": {"promote": [{"row": "eanm22-holmium-hcc-bilobar-whole-normal-40",
                                    "reason": "protocol 2026"}]}})
    record = plan_case(parse_case(doc), site, "Test Hospital")
    assert record["whole_liver_dose_gy"] is None
    assert record["whole_liver"]["checked"] is False
    assert record["whole_liver"]["whole_liver_dose_gy"] is None
    assert record["whole_liver"]["whole_normal_liver_dose_gy"] is None
    warnings = [(w["code"], w["message"]) for w in record["warnings"]]
    assert ("promoted-limit-not-checked", "the site's promoted whole-liver limits need "
            "whole_liver_volume_ml, which the case does not hold") in warnings
    assert ("whole-liver-not-checked", "whole_liver_volume_ml is not in the case: the "
            "whole-liver and whole-normal-liver limits were not checked") in warnings
    assert record["guideline_check"]["site_changes"] == [
        {"row": "eanm22-holmium-hcc-bilobar-whole-normal-40", "site": "Test Hospital",
         "kind_from": "recommendation", "kind_to": "hard", "promote_reason": "protocol 2026"}]
    (row,) = [r for r in record["guideline_check"]["rows"]
              if r["id"] == "eanm22-holmium-hcc-bilobar-whole-normal-40"]
    assert row["kind"] == "hard"
    assert row["site_change"] == {"site": "Test Hospital", "kind_from": "recommendation",
                                  "kind_to": "hard", "promote_reason": "protocol 2026"}
    assert (row["status"], row["reason"]) == ("not evaluated",
                                              "whole_liver_volume_ml is not in the case")


@pytest.mark.parametrize("promoted, whole_volume, warned", [(False, False, False),
                                                             (True, True, False)])
def test_promoted_limit_warning_only_when_promoted_and_unchecked(promoted, whole_volume,
                                                                 warned):
    """Bug caught: the warning of a promoted limit that cannot be checked given when the site
    promoted nothing (only the whole liver volume is missing), or when the case holds the
    whole liver volume and the promoted limit is checked."""
    doc = _two_lobes(scenario=BILOBAR_HCC)
    if not whole_volume:
        del doc["whole_liver_volume_ml"]
    site = catalogue.validate_site_limits({
        "schema": "tareplanner.site-limits/1", "site": "Test Hospital", "products": {},
        "guidelines": {"promote": [{"row": "eanm22-holmium-hcc-bilobar-whole-normal-40",
                                    "reason": "protocol 2026"}] if promoted else []}})
    record = plan_case(parse_case(doc), site, "Test Hospital")
    codes = [w["code"] for w in record["warnings"]]
    assert ("promoted-limit-not-checked" in codes) is warned
    assert ("whole-liver-not-checked" in codes) is not whole_volume


def test_a_sites_changed_value_reaches_the_goal_and_the_suggestions():
    """Bugs caught: a site's changed value of a recommendation (the Ho-166 perfused
    prescription 60 -> 55 Gy) ignored in the suggestions the plan shows or in the goal it
    resolves, or the change not recorded with its values and reason."""
    site = catalogue.validate_site_limits({
        "schema": "tareplanner.site-limits/1", "site": "Test Hospital", "products": {},
        "guidelines": {"change": [{"row": "eanm22-holmium-hcc-perfused-60", "value": 55,
                                   "reason": "protocol 2026"}]}})
    record = plan_case(parse_case(_two_lobes(scenario=BILOBAR_HCC)), site, "Test Hospital")
    (suggestion,) = record["guideline_check"]["suggestions"]
    assert (suggestion["row"], suggestion["goal"]) == ("eanm22-holmium-hcc-perfused-60",
                                                       {"perfused_dose_gy": 55})
    for position in record["positions"]:
        assert position["goal_resolved"]["goal"] == {"perfused_dose_gy": 55}
        assert position["perfused_dose_gy"] == pytest.approx(55, rel=1e-9)
    assert record["guideline_check"]["site_changes"] == [
        {"row": "eanm22-holmium-hcc-perfused-60", "site": "Test Hospital", "value_from": 60,
         "value_to": 55, "value_reason": "protocol 2026"}]


@pytest.mark.parametrize("method, warned", [("single-compartment", True), ("partition", False)])
def test_a_method_the_table_does_not_recommend_is_warned_of(base_case, method, warned):
    """Bug caught: single-compartment dosing of a resin radiation lobectomy planned without
    the warning that EANM 2022 Table 3 prints 'Not recommended' for it (the warning looked
    up for another product or without the scenario), or given for the partition model."""
    base_case.update(product="sir-spheres", method=method,
                     scenario={"intent": "lobectomy", "histology": "hcc"})
    base_case["positions"][0]["goal"] = {"activity_gbq": 1.0}
    record = plan_case(parse_case(base_case))
    messages = [w["message"] for w in record["warnings"] if w["code"] == "method-not-recommended"]
    if not warned:
        assert messages == []
        return
    (message,) = messages
    assert message.startswith("single-compartment dosing of a resin radiation lobectomy: "
                              "EANM 2022 Table 3 prints 'Not recommended'")
    assert message.endswith("(EANM 2022 Table 3 (90Y resin microspheres), lobectomy rows "
                            "(HCC, ICC, mCRC): single-compartment perfused volume dose column)")


def test_a_promoted_per_position_row_caps_the_position(base_case):
    """Bug caught: a row on the normal perfused liver that a site promoted to a hard limit
    not applied to the position (or applied without its dose per GBq). SIR-Spheres, unilobar
    HCC, the shared case's 250 Gy tumour goal: normal liver 250 / 3.1 = 80.65 Gy; the site
    promotes EANM 2022 Table 3's unilobar normal perfused liver < 40 Gy (resin): the
    position is held to 40 Gy (its tumour to 3.1 x 40 = 124 Gy), limited by the
    normal-liver limit."""
    base_case.update(product="sir-spheres", scenario={"intent": "unilobar", "histology": "hcc"})
    site = catalogue.validate_site_limits({
        "schema": "tareplanner.site-limits/1", "site": "Test Hospital", "products": {},
        "guidelines": {"promote": [{"row": "eanm22-resin-hcc-unilobar-normal-perfused-40",
                                    "reason": "protocol 2026"}]}})
    record = plan_case(parse_case(base_case), site, "Test Hospital")
    (position,) = record["positions"]
    assert position["normal_dose_gy"] == pytest.approx(40, rel=1e-9)
    assert position["limited_by"] == "normal-liver-limit"
    assert position["tumours"][0]["dose_gy"] == pytest.approx(3.1 * 40, rel=1e-9)


@pytest.mark.parametrize("scenario, where", [
    (None, "no scenario given"),
    ({"intent": "segmentectomy", "histology": "hcc"}, "scenario segmentectomy/hcc")])
def test_maximum_without_any_ceiling_is_refused_naming_the_position(base_case, scenario,
                                                                    where):
    """Bug caught: a 'maximum' goal that neither a hard limit nor a guideline ceiling bounds
    (TheraSphere without a scenario, or a segmentectomy, whose EANM 2022 rows are targets,
    not ceilings) refused without naming the position, its index, the product or the
    scenario."""
    base_case["positions"][0]["goal"] = {"maximum": True}
    if scenario:
        base_case["scenario"] = scenario
    with pytest.raises(FieldValueError) as info:
        plan_case(parse_case(base_case))
    assert info.value.field == "positions[0].goal"
    assert info.value.detail == (f"none applies to therasphere ({where}) for "
                                 "position 'right hepatic'")
