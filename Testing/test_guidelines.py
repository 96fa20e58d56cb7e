"""Guideline rows with their scope and strength, the scenario that selects them, the check
of a plan, the site's promotions, and the TheraSphere order for the treatment time.

Every expected value is typed from its source (EANM 2022, Weber et al., Eur J Nucl Med Mol
Imaging 2022;49:1682-1699, Tables 2-4 as published at PMC8940802) or computed by hand in the
test (Y-90 half-life 64.1 h, TheraSphere package insert); none is read from the data file the
code reads.
"""

import json
import math
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from tareplanner import catalogue
from tareplanner.cli.main import main
from tareplanner.errors import FieldValueError, UnknownNameError
from tareplanner.physics.ordering import (WorkingHours, calibration_candidates,
                                          order_whole_vials)
from tareplanner.planning import plan_case
from tareplanner.records.case import parse_case
from tareplanner.records.plan_text import plan_summary

CF_Y90 = 49.67        # J/GBq, nuclides.json (TvNG 2023 review)
HALF_LIFE_H = 64.1    # Y-90, TheraSphere package insert
CET = timezone(timedelta(hours=1))
NY = ZoneInfo("America/New_York")
STANDARD = (3, 5, 7, 10, 15, 20)                       # package insert
CUSTOM = tuple(3 + 0.5 * i for i in range(35))         # 3 to 20 GBq in 0.5 GBq steps


def _decay(hours):
    return 2 ** (-hours / HALF_LIFE_H)


def _plan(doc, site=None):
    return plan_case(parse_case(doc), site, "test site" if site else "")


def _codes(record):
    return [w["code"] for w in record["warnings"]]


def _rows(record, quantity):
    return [c for c in record["guideline_check"]["rows"] if c["quantity"] == quantity]


# --- the lobar TheraSphere case ----------------------------------------------------------

def _lobar(scenario=None, goal=110.0):
    """Right lobe 900 mL normal + 100 mL tumour, whole liver 1300 mL (100 mL tumour),
    single compartment, LSF 5 %, 1.03 g/mL."""
    doc = {"schema": "tareplanner.case/1", "product": "therasphere",
           "method": "single-compartment", "tissue_density_g_per_ml": 1.03,
           "lung_shunt_fraction": 0.05, "lsf_method": "spect-whole-lung", "lung_mass_kg": 1.0,
           "whole_liver_volume_ml": 1300, "whole_liver_tumour_volume_ml": 100,
           "treatment_time": "2026-12-01T10:00:00+01:00",
           "positions": [{"name": "right lobe", "normal_volume_ml": 900,
                          "tumours": [{"name": "T1", "volume_ml": 100}],
                          "goal": {"perfused_dose_gy": goal}}]}
    if scenario is not None:
        doc["scenario"] = scenario
    return doc


@pytest.mark.parametrize("bilirubin, threshold, status", [
    (0.8, 90, "met"), (1.0999, 90, "met"), (1.1, 50, "not met"), (1.1001, 50, "not met"),
    (None, 75, "not met")])
def test_lobar_therasphere_at_110_gy_with_the_guideline_check(bilirubin, threshold, status):
    """Catches the 75 Gy cap cutting a standard lobar plan to 100 Gy. Hand: the plan stays
    at its goal, A = 110 * 1.03 / (49.67 * 0.95) = 2.4011 GBq; single compartment, the whole
    normal liver gets 110 Gy in its 900 of 1200 mL: 110 * 900 / 1200 = 82.5 Gy. EANM 2022
    Table 2 footnote ***: 90 Gy below 1.1 mg/dL (met by 7.5 Gy), 50 Gy above (exactly 1.1:
    the stricter 50 Gy), 75 Gy when no bilirubin is given; a recommendation, LOE 3."""
    scenario = {"intent": "unilobar", "histology": "hcc"}
    if bilirubin is not None:
        scenario["bilirubin_mg_dl"] = bilirubin
    record = _plan(_lobar(scenario))
    pos = record["positions"][0]
    assert pos["activity_gbq"] == pytest.approx(110 * 1.03 / (CF_Y90 * 0.95), rel=1e-9)
    assert pos["perfused_dose_gy"] == pytest.approx(110.0)
    assert pos["limited_by"] == "goal"
    assert record["whole_liver"]["whole_normal_liver_dose_gy"] == pytest.approx(82.5)
    (row,) = _rows(record, "whole_normal_liver")
    assert (row["value"], row["status"], row["kind"], row["loe"]) == (
        threshold, status, "recommendation", "3")
    assert row["margin"] == pytest.approx(threshold - 82.5)
    assert "Table 2" in row["source"]
    text = plan_summary(record)
    assert "guideline check (unilobar, hcc" in text
    assert f"82.5 Gy vs < {threshold} Gy" in text


def test_lobar_hcc_rows_with_their_conditions():
    """The other rows of Table 2, HCC unilobar: perfused 80-150 (LOE 3), '> 150 if whole
    liver dose < 150' (LOE 1*, not met at 110 Gy), normal perfused < 120 if the hepatic
    reserve is below 30 % (here 1 - 1000/1300 = 23.1 %: it applies, 110 Gy met by 10 Gy),
    tumour >= 205 (single compartment: 110 Gy, not met by 95 Gy)."""
    record = _plan(_lobar({"intent": "lobar", "histology": "HCC", "bilirubin_mg_dl": 0.5}))
    assert record["guideline_check"]["facts"]["hepatic_reserve_fraction"] == pytest.approx(
        1 - 1000 / 1300)
    perfused = {c["threshold"]: c for c in _rows(record, "perfused")}
    assert perfused["80–150 Gy"]["status"] == "met"
    assert perfused["> 150 Gy"]["status"] == "not met" and perfused["> 150 Gy"]["loe"] == "1*"
    (normal,) = _rows(record, "normal_perfused")
    assert normal["threshold"] == "< 120 Gy" and normal["margin"] == pytest.approx(10.0)
    tumour = {c["threshold"]: c for c in _rows(record, "tumour")}
    assert tumour[">= 205 Gy"]["margin"] == pytest.approx(110 - 205)
    assert "recommendation-not-met" in _codes(record)


@pytest.mark.parametrize("liver_ml, applies", [(1000 / 0.70 - 1e-3, True),
                                               (1000 / 0.70, False), (1000 / 0.70 + 1, False)])
def test_glass_normal_perfused_120_only_below_30_percent_reserve(liver_ml, applies):
    """EANM 2022 Table 2: '< 120 if HR < 30 %'. Hand: perfused 1000 mL; the reserve
    1 - 1000/V is below 30 % exactly when V < 1000/0.7 = 1428.57 mL."""
    doc = _lobar({"intent": "unilobar", "histology": "hcc"})
    doc["whole_liver_volume_ml"] = liver_ml
    rows = _rows(_plan(doc), "normal_perfused")
    assert (len(rows) == 1) is applies


def test_segmentectomy_and_lobar_thresholds_differ():
    """Segmentectomy: perfused > 400 Gy (Table 2 LOE 3; Salem 2023), whole normal liver
    'not applicable'; unilobar: the whole normal liver rows, no 400 Gy row."""
    seg = _plan(_lobar({"intent": "segmentectomy", "histology": "hcc"}, goal=400))
    perfused = _rows(seg, "perfused")
    assert {c["threshold"] for c in perfused} == {"> 400 Gy", ">= 400 Gy"}
    assert all(c["status"] == "met" and c["margin"] == pytest.approx(0) for c in perfused)
    assert _rows(seg, "whole_normal_liver") == []
    lobar = _plan(_lobar({"intent": "unilobar", "histology": "hcc"}, goal=400))
    assert "> 400 Gy" not in {c["threshold"] for c in _rows(lobar, "perfused")}
    assert _rows(lobar, "whole_normal_liver")
    # just below 400 Gy: not met
    below = _plan(_lobar({"intent": "segmentectomy", "histology": "hcc"}, goal=400 * (1 - 1e-6)))
    assert {c["status"] for c in _rows(below, "perfused")} == {"not met"}


def test_resin_segmentectomy_and_lobar_rows():
    """Table 3 (resin): segmentectomy perfused > 150 (LOE 4); unilobar normal perfused < 40
    (LOE cell "3 / 4", the 4 taken for the Levillain [93] value); radiation lobectomy normal
    perfused > 70 Gy, a target (hepatic reserve > 30 %)."""
    doc = _lobar({"intent": "segmentectomy", "histology": "mcrc"})
    doc["product"] = "sir-spheres"
    assert [c["threshold"] for c in _rows(_plan(doc), "perfused")] == ["> 150 Gy"]
    doc["scenario"]["intent"] = "unilobar"
    (row,) = _rows(_plan(doc), "normal_perfused")
    assert (row["threshold"], row["direction"], row["loe"]) == ("< 40 Gy", "limit", "4 (of 3/4)")
    doc["scenario"].update(intent="radiation-lobectomy", histology="hcc")
    doc["whole_liver_volume_ml"] = 2000   # reserve 50 % > 30 %
    (row,) = _rows(_plan(doc), "normal_perfused")
    assert (row["threshold"], row["direction"]) == ("> 70 Gy", "target")


def test_without_a_scenario_only_hard_rows_and_a_warning():
    """Without a scenario only the rows of every scenario hold: the hard lung limits and the
    regulatory reporting criterion on the ordered vial; no recommendation."""
    record = _plan(_lobar())
    assert record["scenario"] is None
    assert {c["kind"] for c in record["guideline_check"]["rows"]} == {"hard",
                                                                      "regulatory-report"}
    assert "no-scenario" in _codes(record)
    assert "NO SCENARIO GIVEN" in plan_summary(record)
    # and no recommendation scales a plan: at 300 Gy perfused nothing caps it
    record = _plan(_lobar(goal=300))
    assert record["positions"][0]["perfused_dose_gy"] == pytest.approx(300)


def test_goal_suggestions_from_the_scenario():
    """Glass HCC segmentectomy: perfused 400 Gy; glass HCC unilobar: tumour 205 Gy; resin:
    tumour 100 Gy ('>= 100-120'); Ho-166: perfused 60 Gy; each with its source."""
    from tareplanner import guidelines as gl
    facts = gl.Facts()

    def goals(product, intent, histology):
        s = gl.parse_scenario({"intent": intent, "histology": histology})
        return {(next(iter(g["goal"])), next(iter(g["goal"].values())), g["source"][:8])
                for g in gl.suggestions(product, s, facts)}
    assert ("perfused_dose_gy", 400, "EANM 202") in goals("therasphere", "segmentectomy", "hcc")
    assert ("tumour_dose_gy", 205, "EANM 202") in goals("therasphere", "unilobar", "hcc")
    assert ("tumour_dose_gy", 100, "EANM 202") in goals("sir-spheres", "bilobar", "icc")
    assert ("perfused_dose_gy", 60, "EANM 202") in goals("quiremspheres", "bilobar", "mcrc")


# --- bad input ---------------------------------------------------------------------------

@pytest.mark.parametrize("scenario, field, hint", [
    ({"intent": "segmentecomy", "histology": "hcc"}, "scenario.intent", "segmentectomy"),
    ({"intent": "bilobar", "histology": "hepatocellular"}, "scenario.histology", None),
    ({"intent": "bilobar", "histology": "mcr"}, "scenario.histology", "mcrc"),
    ({"intent": "bilobar", "histology": "hcc", "bilirubin_mg_dl": -0.1},
     "scenario.bilirubin_mg_dl", None),
    ({"intent": "bilobar", "histology": "hcc", "bilirubin_mg_dl": float("nan")},
     "scenario.bilirubin_mg_dl", None),
    ({"intent": "bilobar", "histology": "hcc", "bilirubin_mg_dl": True},
     "scenario.bilirubin_mg_dl", None),
    ({"histology": "hcc"}, "scenario.intent", None),
    ({"intent": "bilobar", "histology": "hcc", "bilirubine": 1}, "scenario.bilirubine",
     "bilirubin_mg_dl"),
])
def test_bad_scenarios_are_refused_naming_the_field(scenario, field, hint):
    with pytest.raises(ValueError) as info:
        parse_case(_lobar(scenario))
    message = str(info.value)
    assert field.split(".")[-1] in message
    if hint:
        assert f"did you mean {hint!r}" in message


def test_bad_scenario_on_the_command_line_writes_nothing(tmp_path, capsys):
    case = tmp_path / "case.json"
    case.write_text(json.dumps(_lobar({"intent": "lobr", "histology": "hcc"})))
    out = tmp_path / "plan.json"
    assert main(["plan", str(case), "-o", str(out)]) == 2
    assert "did you mean 'lobar'" in capsys.readouterr().err
    assert not out.exists()
    case.write_text(json.dumps(_lobar()))
    assert main(["guidelines", str(case), "--intent", "bilobar", "--histology", "hcc",
                 "--bilirubin", "nan", "-o", str(out)]) == 2
    assert "scenario.bilirubin_mg_dl: got nan" in capsys.readouterr().err
    assert not out.exists()
    assert main(["guidelines", str(case), "--intent", "bilobar", "--histology", "hcc",
                 "--bilirubin", "0.9", "-o", str(out)]) == 0
    assert json.loads(out.read_text())["scenario"] == {"intent": "bilobar", "histology": "hcc",
                                                       "bilirubin_mg_dl": 0.9}


@pytest.mark.parametrize("section, field, allowed", [
    ({"promote": [{"row": "eanm22-glass-hcc-bilobar-whole-normal-9", "reason": "x"}]},
     "guidelines.promote[0].row", "did you mean 'eanm22-glass-hcc-bilobar-whole-normal-90'"),
    ({"promote": [{"row": "eanm22-glass-hcc-unilobar-tumour-205", "reason": "x"}]},
     "guidelines.promote[0].row", "a target is a goal"),
    ({"promote": [{"row": "ifu-therasphere-lung-single", "reason": "x"}]},
     "guidelines.promote[0].row", "already a hard limit"),
    ({"promote": [{"row": "eanm22-glass-hcc-bilobar-whole-normal-90"}]},
     "guidelines.promote[0].reason", "reason"),
    ({"change": [{"row": "eanm22-holmium-hcc-bilobar-whole-normal-40", "value": float("nan"),
                  "reason": "x"}]}, "guidelines.change[0].value", "a number > 0"),
    ({"demote": []}, "guidelines", "unknown field 'demote'"),
])
def test_bad_site_guideline_sections(section, field, allowed, tmp_path, capsys):
    site = {"schema": "tareplanner.site-limits/1", "products": {}, "guidelines": section}
    with pytest.raises(ValueError) as info:
        catalogue.validate_site_limits(site)
    assert field in str(info.value) and allowed in str(info.value)
    if not any(isinstance(v, float) and math.isnan(v) for e in section.get("change", [])
               for v in e.values()):
        path = tmp_path / "site.json"
        path.write_text(json.dumps(site))
        case = tmp_path / "case.json"
        case.write_text(json.dumps(_lobar()))
        out = tmp_path / "plan.json"
        assert main(["plan", str(case), "--site-limits", str(path), "-o", str(out)]) == 2
        assert field in capsys.readouterr().err
        assert not out.exists()


def test_a_site_changes_a_value_with_its_reason():
    """Table 4 footnote ***: bilobar 'up to 60 Gy in patients with more favourable liver
    function': a site sets 60 with its reason; the record and the text carry it."""
    site = catalogue.validate_site_limits({
        "schema": "tareplanner.site-limits/1", "products": {},
        "guidelines": {"change": [{"row": "eanm22-holmium-mcrc-bilobar-whole-normal-40",
                                   "value": 60, "reason": "Child-Pugh A5 protocol"}]}})
    doc = _lobar({"intent": "bilobar", "histology": "mcrc"}, goal=60)
    doc["product"] = "quiremspheres"
    record = _plan(doc, site)
    (row,) = _rows(record, "whole_normal_liver")
    assert row["value"] == 60 and row["kind"] == "recommendation"
    assert row["site_change"]["value_from"] == 40
    assert row["site_change"]["value_reason"] == "Child-Pugh A5 protocol"
    assert "value 40 -> 60 (Child-Pugh A5 protocol)" in plan_summary(record)


# --- TheraSphere ordering for the treatment time -----------------------------------------

TUESDAY_10 = datetime(2026, 12, 1, 10, 0, tzinfo=CET)   # 40 h after Sunday 29 Nov noon EST
HOURS = WorkingHours.from_texts("07:00", "19:00")


def _cals(moment):
    return calibration_candidates(moment, "sunday", "12:00", "America/New_York", 12)


def _order(activity, when=TUESDAY_10, use_custom=True, tolerance=0.10, hours=HOURS):
    return order_whole_vials(activity, when, HALF_LIFE_H, STANDARD, CUSTOM, use_custom, _cals,
                             12, tolerance, hours)


def test_the_issue_order_is_a_3_5_gbq_vial_within_4_percent():
    """Catches the 5 GBq vial (+49 %) and the 22:38 treatment time. Hand: 40 h after
    calibration, 5 GBq holds 5 * 2^(-40/64.1) = 3.2444 GBq (+48.8 % of 2.18); a 3.5 GBq vial
    holds 2.2711 GBq, +4.18 %. Standard sizes only: the 20 GBq vial of the week before
    (208 h: 20 * 2^(-208/64.1) = 2.1096 GBq, -3.23 %)."""
    assert 5 * _decay(40) / 2.18 - 1 == pytest.approx(0.488, abs=1e-3)
    plan = _order(2.18)
    assert plan.chosen.vials_nominal_gbq == (3.5,)
    assert plan.chosen.deviation_fraction == pytest.approx(3.5 * _decay(40) / 2.18 - 1)
    assert plan.chosen.deviation_fraction == pytest.approx(0.0418, abs=1e-4)
    standard = _order(2.18, use_custom=False)
    assert standard.chosen.vials_nominal_gbq == (20,)
    assert standard.chosen.deviation_fraction == pytest.approx(20 * _decay(208) / 2.18 - 1)
    custom = [o for o in standard.alternatives if o.kind == "custom activity"]
    assert custom and custom[0].vials_nominal_gbq == (3.5,)


@pytest.mark.parametrize("factor, fits", [(1 - 1e-6, False), (1.0, True), (1 + 1e-6, True)])
def test_order_at_the_edge_of_the_tolerance(factor, fits):
    """Standard sizes; the prescription A = 5 * 2^(-40/64.1) / 1.10 = 2.9494 GBq makes the
    5 GBq vial exactly +10 %: within; a slightly smaller prescription puts it above +10 %,
    no other single vial is near (3 GBq -34 %, 20 GBq of the week before
    20 * 2^(-208/64.1) = 2.1096 GBq, -28 %), and the order is two vials of the week before:
    20 + 7 GBq, 27 * 2^(-208/64.1) = 2.8480 GBq, -3.4 %."""
    activity = 5 * _decay(40) / 1.10 * factor
    plan = _order(activity, use_custom=False)
    if fits:
        assert plan.chosen.vials_nominal_gbq == (5,)
        assert plan.chosen.deviation_fraction == pytest.approx(5 * _decay(40) / activity - 1)
    else:
        assert sorted(plan.chosen.vials_nominal_gbq) == [7, 20]
        assert plan.chosen.deviation_fraction == pytest.approx(27 * _decay(208) / activity - 1)
        assert plan.chosen.deviation_fraction == pytest.approx(-0.034, abs=1e-3)


@pytest.mark.parametrize("hh, mm, ss, inside", [(6, 59, 59, False), (7, 0, 0, True),
                                                 (19, 0, 0, True), (19, 0, 1, False)])
def test_working_hours_edges(hh, mm, ss, inside):
    """07:00 and 19:00 are inside, a second outside is not (default 07:00-19:00 in the
    treatment's time zone); outside, no vial is proposed for the planned time and every
    alternative is inside working hours."""
    when = datetime(2026, 12, 1, hh, mm, ss, tzinfo=CET)
    plan = _order(2.18, when)
    assert plan.planned_time_in_hours is inside
    assert (plan.chosen is not None) is inside
    for o in plan.alternatives:
        local = o.treatment_time.astimezone(CET)
        assert (7, 0) <= (local.hour, local.minute) and \
            local.hour * 3600 + local.minute * 60 + local.second <= 19 * 3600


def test_no_time_outside_working_hours_is_ever_proposed():
    for hour in range(24):
        for activity in (0.8, 2.18, 5.0, 12.0, 30.0):
            plan = _order(activity, datetime(2026, 12, 2, hour, 30, tzinfo=CET))
            times = [o.treatment_time for o in plan.alternatives]
            if plan.chosen:
                times.append(plan.chosen.treatment_time)
            assert all(HOURS.contains(t, CET) for t in times), (hour, activity)


def test_another_time_at_the_edge_of_the_working_day():
    """A 3.5 GBq vial holds 2.18 GBq exactly 64.1 * log2(3.5 / 2.18) = 43.78 h after Sunday
    noon EST (18:00 CET), i.e. Tuesday 13:47 CET: inside the day, the alternative is at that
    time. For
    2.40 GBq it is 34.90 h, Tuesday 04:54 CET: the alternative is the start of the working
    day, 07:00, where the vial holds 3.5 * 2^(-37/64.1) = 2.3400 GBq (-2.5 %)."""
    exact_h = HALF_LIFE_H * math.log2(3.5 / 2.18)
    assert exact_h == pytest.approx(43.78, abs=0.01)
    plan = _order(2.18)
    (alt,) = [o for o in plan.alternatives if o.kind == "another time"]
    cal = datetime(2026, 11, 29, 12, 0, tzinfo=NY)
    assert abs((alt.treatment_time - (cal + timedelta(hours=exact_h))).total_seconds()) < 1
    plan = _order(2.40)
    assert plan.chosen.vials_nominal_gbq == (3.5,)
    (alt,) = [o for o in plan.alternatives if o.kind == "another time"]
    assert alt.treatment_time == datetime(2026, 12, 1, 7, 0, tzinfo=CET)
    assert alt.activity_at_treatment_gbq == pytest.approx(3.5 * _decay(37))


def test_site_tolerance_and_the_no_vial_warning_in_the_plan():
    """A site's ±0.5 % tolerance: 3.5 GBq at +4.18 % no longer fits, nor 3.0 GBq
    (3 * 2^(-40/64.1) / 2.18 - 1 = -10.7 %), nor a pair of the week before (20.5 GBq:
    -0.8 %, 21 GBq: +1.6 %): the record says no vial fits, the warning says it in capitals,
    and the alternative inside the tolerance (another time: 13:47) is offered."""
    site = catalogue.validate_site_limits({"schema": "tareplanner.site-limits/1",
                                           "products": {},
                                           "ordering": {"activity_tolerance_fraction": 0.005}})
    doc = _lobar({"intent": "unilobar", "histology": "hcc"})
    doc["positions"][0]["goal"] = {"activity_gbq": 2.18}
    record = _plan(doc, site)
    entry = record["ordering"]["positions"][0]
    assert entry["within_tolerance"] is False and entry["status"] == "no-vial-within-tolerance"
    assert record["ordering"]["activity_tolerance_fraction"] == 0.005
    (warning,) = [w for w in record["warnings"] if w["code"] == "no-vial-fits"]
    assert "NO VIAL FITS" in warning["message"] and "another time" in warning["message"]
    assert "NO VIAL FITS" in plan_summary(record)
    # the default ±10 %: 3.5 GBq, +4.18 %, and the regulation row is met
    record = _plan(doc)
    entry = record["ordering"]["positions"][0]
    assert entry["vials_nominal_gbq"] == [3.5]
    assert entry["deviation_fraction"] == pytest.approx(3.5 * _decay(40) / 2.18 - 1)
    (row,) = _rows(record, "activity_deviation")
    assert row["status"] == "met" and row["plan_value"] == pytest.approx(0.0418, abs=1e-4)


@pytest.mark.parametrize("ordering, field", [
    ({"activity_tolerance_fraction": 0.2}, "activity_tolerance_fraction"),
    ({"activity_tolerance_fraction": 0}, "activity_tolerance_fraction"),
    ({"working_hours": {"start": "19:00", "end": "07:00"}}, "working_hours.end"),
    ({"working_hours": {"start": "7:00", "end": "19:00"}}, "working_hours.start"),
    ({"working_hours": {"start": "07:00", "end": "24:00"}}, "working_hours.end"),
])
def test_bad_site_ordering_rules(ordering, field):
    with pytest.raises(FieldValueError, match=field.replace(".", r"\.")):
        catalogue.validate_site_limits({"schema": "tareplanner.site-limits/1",
                                        "products": {}, "ordering": ordering})


def test_site_working_hours_move_the_proposal():
    """With working hours 08:00-16:00 a 10:00 treatment is inside and 07:30 is not."""
    site = catalogue.validate_site_limits({
        "schema": "tareplanner.site-limits/1", "products": {},
        "ordering": {"working_hours": {"start": "08:00", "end": "16:00"}}})
    doc = _lobar({"intent": "unilobar", "histology": "hcc"})
    doc["treatment_time"] = "2026-12-01T07:30:00+01:00"
    record = _plan(doc, site)
    assert "treatment-outside-working-hours" in _codes(record)
    assert record["ordering"]["working_hours"] == "08:00-16:00"
    for alt in record["ordering"]["positions"][0]["alternatives"]:
        assert "08:00" <= alt["treatment_time"][11:16] <= "16:00"


def test_unknown_row_errors_are_unknown_name_errors():
    with pytest.raises(UnknownNameError):
        catalogue.validate_site_limits({"schema": "tareplanner.site-limits/1", "products": {},
                                        "guidelines": {"promote": [{"row": "nope",
                                                                    "reason": "x"}]}})


def test_a_plan_with_site_guideline_changes_and_ordering_rules_replays_exactly():
    """Catches a replay that drops the site's promoted rows or ordering rules (the record
    would not reproduce: a promoted limit binds, the tolerance picks the vial)."""
    from tareplanner.replay import replay
    site = catalogue.validate_site_limits({
        "schema": "tareplanner.site-limits/1", "products": {},
        "guidelines": {"promote": [{"row": "eanm22-glass-hcc-lobectomy-unilobar-whole-normal-90",
                                    "reason": "protocol"}]},
        "ordering": {"activity_tolerance_fraction": 0.05,
                     "working_hours": {"start": "08:00", "end": "18:00"}}})
    record = _plan(_lobar({"intent": "unilobar", "histology": "hcc", "bilirubin_mg_dl": 0.5},
                          goal=150), site)
    # 150 Gy perfused would give 150 * 900 / 1200 = 112.5 Gy whole normal liver: the promoted
    # 90 Gy row binds, scaling the position by 90 / 112.5 = 0.8
    assert record["positions"][0]["perfused_dose_gy"] == pytest.approx(120.0)
    assert record["positions"][0]["limited_by"] == "whole-normal-liver-limit"
    result = replay(record)
    assert result["identical"], result["differences"]


def test_a_promoted_range_caps_the_perfused_dose_of_a_position():
    """A promoted range binds at its upper end: EANM 2022 Table 2, HCC unilobar, perfused
    80-150 Gy promoted; a 200 Gy perfused goal is capped at 150 Gy. Hand:
    A = 150 * 1.03 / (49.67 * 0.95) = 3.2742 GBq; an explicit activity above it is a
    violation of the perfused limit with the row's source and the site's reason."""
    site = catalogue.validate_site_limits({
        "schema": "tareplanner.site-limits/1", "products": {},
        "guidelines": {"promote": [{"row": "eanm22-glass-hcc-unilobar-perfused-80-150",
                                    "reason": "site cap 150 Gy perfused"}]}})
    record = _plan(_lobar({"intent": "unilobar", "histology": "hcc"}, goal=200), site)
    pos = record["positions"][0]
    assert pos["activity_gbq"] == pytest.approx(150 * 1.03 / (CF_Y90 * 0.95), rel=1e-9)
    assert pos["limited_by"] == "perfused-limit"
    doc = _lobar({"intent": "unilobar", "histology": "hcc"})
    doc["positions"][0]["goal"] = {"activity_gbq": 150 * 1.03 / (CF_Y90 * 0.95) * (1 + 1e-6)}
    (v,) = _plan(doc, site)["positions"][0]["violations"]
    assert v["limit"] == "perfused-limit" and v["limit_gy"] == 150
    assert "Table 2" in v["source"] and "site cap 150 Gy perfused" in v["source"]
    # the same goal without the site: a recommendation only, nothing caps it
    assert _plan(_lobar({"intent": "unilobar", "histology": "hcc"}, goal=200))[
        "positions"][0]["perfused_dose_gy"] == pytest.approx(200)


def test_site_changes_are_on_the_pdf(tmp_path):
    """The site's promoted rows and changed values, with their reasons, are printed in the
    PDF's guideline check (a record without them would hide why a plan was scaled)."""
    pypdf = pytest.importorskip("pypdf")
    from tareplanner.records.report import write_report
    site = catalogue.validate_site_limits({
        "schema": "tareplanner.site-limits/1", "site": "Test site", "products": {},
        "guidelines": {"promote": [{"row": "eanm22-glass-hcc-lobectomy-unilobar-whole-normal-90",
                                    "reason": "protocol 2026 A"}]}})
    record = _plan(_lobar({"intent": "unilobar", "histology": "hcc", "bilirubin_mg_dl": 0.5},
                          goal=150), site)
    out = write_report(record, tmp_path / "plan.pdf")
    text = " ".join(" ".join(page.extract_text().split())
                    for page in pypdf.PdfReader(str(out)).pages)
    assert "Guideline check" in text
    assert "promoted to a hard limit (protocol 2026 A)" in text


def test_a_row_changed_and_promoted_names_both_with_the_site():
    """Catches a site-change line that drops one of two changes made to the same row, or the
    site's name: the row's value set to 80 and the row promoted, both reasons shown, joined
    by '; ', with the site's label (the helper passes 'test site') in brackets on the
    report's line."""
    from tareplanner.records.report_tables import site_change_lines
    site = catalogue.validate_site_limits({
        "schema": "tareplanner.site-limits/1", "site": "Test site", "products": {},
        "guidelines": {
            "change": [{"row": "eanm22-glass-hcc-lobectomy-unilobar-whole-normal-90",
                        "value": 80, "reason": "r1"}],
            "promote": [{"row": "eanm22-glass-hcc-lobectomy-unilobar-whole-normal-90",
                         "reason": "r2"}]}})
    record = _plan(_lobar({"intent": "unilobar", "histology": "hcc", "bilirubin_mg_dl": 0.5},
                          goal=150), site)
    assert site_change_lines(record) == [
        "Site change, eanm22-glass-hcc-lobectomy-unilobar-whole-normal-90: "
        "value 90 -> 80 (r1); promoted to a hard limit (r2) [test site]"]
    assert ("site value 90 -> 80 (r1); promoted to a hard limit (r2)"
            in plan_summary(record))
