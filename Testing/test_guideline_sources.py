"""The guideline rows against the wording of their sources: the US NRC medical-event criteria
(10 CFR 35.3045), the level-of-evidence cells of EANM 2022 Table 3, the rows TAREPlanner
extrapolates, the footnotes the rows carry, the tumour target of the products and the schema
of a row.

Every expected number is typed here from its source, never read from the data file the code
reads: 10 CFR 35.3045(a)(1) "differs from the prescribed dose or dosage by 20 percent or
more"; (a)(3) "exceeds by 0.5 Sv (50 rem) or more ... and 50 percent or more the expected
dose"; EANM 2022 (Weber et al., Eur J Nucl Med Mol Imaging 2022;49:1682-1699, PMC8940802)
Table 2 "HCC tumour >= 205", "segmentectomy > 400" (perfused volume), Table 3 "segmentectomy
> 150" (perfused volume), the stacked "3 / 4" LOE cells, Table 4 footnote *** "Up to 60 Gy in
patients with more favourable liver function".
"""

import copy
import json

import pytest

from tareplanner import catalogue, guideline_check
from tareplanner import guidelines as gl
from tareplanner.cli.main import main
from tareplanner.errors import FieldValueError, SchemaError
from tareplanner.physics.administration import exceeds_organ_dose_criterion, meets_criterion
from tareplanner.planning import plan_case
from tareplanner.records.case import parse_case
from tareplanner.records.plan_text import plan_summary

CFR_RELATIVE = 0.20          # 10 CFR 35.3045(a)(1)(i)/(ii): "20 percent or more"
CFR_ORGAN_EXCESS_SV = 0.5    # 10 CFR 35.3045(a)(3): "0.5 Sv (50 rem) or more"
CFR_ORGAN_RELATIVE = 0.50    # 10 CFR 35.3045(a)(3): "and 50 percent or more"


def _row(row_id):
    return {r.id: r for r in gl.rows()}[row_id]


def _record(deviations):
    """The smallest plan record the check reads: ordered-vial deviations, no liver volume."""
    return {"whole_liver": {"checked": False}, "positions": [], "lung_dose_gy": 1.0,
            "lung_dose_cumulative_gy": 1.0, "lung_shunt_fraction": 0.05,
            "ordering": {"positions": [{"name": f"P{i}", "deviation_fraction": d}
                                       for i, d in enumerate(deviations)]}}


def _nrc_check(deviations):
    rows = guideline_check.CaseRows(((_row("nrc-medical-event-activity"), None),))
    return guideline_check.check(_record(deviations), rows, None)


# --- D1: "20 percent or more" is a medical event at exactly 20 % ---------------------------

@pytest.mark.parametrize("deviation, event", [
    (0.1999, False), (CFR_RELATIVE, True), (0.2001, True),
    (-0.1999, False), (-CFR_RELATIVE, True), (-0.2001, True),      # "differs": either way
    (1.2 / 1.0 - 1, True),        # 0.19999999999999996 in floating point: still 20 %
])
def test_exactly_20_percent_is_a_medical_event(deviation, event):
    """Bug caught: the generic edge rule (a value equal to a threshold meets it) applied to
    the NRC row made a deviation of exactly 20 % compliant, although the regulation says
    '20 percent or more' is a medical event. Edges 19.99 / 20 / 20.01 %, both directions."""
    (entry,) = _nrc_check([deviation])
    assert entry["met"] is (not event)
    assert entry["status"] == ("not met" if event else "met")
    assert entry["edge"] == "strict" and entry["kind"] == "regulatory-report"
    # the administration record's decision agrees at the same edges
    assert meets_criterion(deviation, CFR_RELATIVE) is event


def test_the_generic_edge_rule_still_holds_for_recommendations():
    """Bug caught: making the NRC row strict must not make equal values fail EANM rows
    (a normal perfused liver of exactly 40 Gy meets '< 40', a tumour of 205 meets '>= 205')."""
    assert gl.meets("<", 40.0, 40.0) and gl.meets(">=", 205.0, 205.0)
    assert gl.meets(">", 150.0, 150.0) and not gl.meets(">", 150.0, 150.0, strict=True)
    assert not gl.meets("<", 0.2, 0.2, strict=True) and gl.meets("<", 0.1999, 0.2, strict=True)


def test_a_reached_criterion_is_a_warning_naming_it_a_reporting_trigger():
    """Bug caught: a reached medical-event criterion shown only in the table (as a 'hard'
    limit) and never as a warning of the plan."""
    checks = _nrc_check([CFR_RELATIVE])
    warnings = dict(guideline_check.summary_warnings(object(), checks))
    assert "reporting trigger, not a dose limit" in warnings["regulatory-criterion-reached"]
    assert "regulatory-criterion-reached" not in dict(
        guideline_check.summary_warnings(object(), _nrc_check([0.1999])))


# --- D2-D5: what the NRC rows are ----------------------------------------------------------

def test_the_nrc_rows_are_reporting_triggers_of_the_us_not_solver_limits():
    """Bug caught: the NRC row as a 'hard' limit of the solver, without its jurisdiction,
    and described as the medical-event decision although it checks the ordered vial."""
    for row_id in ("nrc-medical-event-activity", "nrc-medical-event-organ-dose"):
        r = _row(row_id)
        assert r.kind == "regulatory-report" and r.edge == "strict"
        assert r.jurisdiction.startswith("US") and r.table.startswith("10 CFR 35.3045(a)")
        assert r.intents == gl.ANY and r.histologies == gl.ANY and r.product == "any"
    r = _row("nrc-medical-event-activity")
    assert (r.operator, r.value, r.unit) == ("<", CFR_RELATIVE, "fraction")
    assert "pre-order" in r.row and "either direction" in r.row
    assert "delivered activity" in r.note and "0.5 Sv" in r.note and "0.05 Sv" in r.note
    rows = guideline_check.CaseRows(((r, None),))
    assert rows.hard_bindable() == []          # never a cap of the solver


def test_the_organ_dose_row_matches_the_regulation_and_the_administration_record():
    """Bug caught: (a)(3) missing from the table, or its numbers differing from the
    administration record that decides it (0.5 Sv and 50 %, both required)."""
    r = _row("nrc-medical-event-organ-dose")
    assert (r.value, r.relative_value, r.unit) == (CFR_ORGAN_EXCESS_SV, CFR_ORGAN_RELATIVE, "Sv")
    admin = json.loads(catalogue._data_text("administration.json"))["criteria"]
    assert admin["medical_event"]["relative_deviation"] == CFR_RELATIVE
    organ = admin["medical_event_organ_dose"]
    assert (organ["excess_dose_gy"], organ["relative_excess"]) == (CFR_ORGAN_EXCESS_SV,
                                                                   CFR_ORGAN_RELATIVE)
    # the decision at the edges, expected lung dose 1 Gy (1 Gy = 1 Sv for beta radiation):
    # +0.5 Gy is both 0.5 Sv and 50 % -> an event; just below either -> none
    assert exceeds_organ_dose_criterion(1.5, 1.0, r.value, r.relative_value)
    assert not exceeds_organ_dose_criterion(1.4999, 1.0, r.value, r.relative_value)
    # expected 2 Gy: +0.5 Gy is only 25 %: not an event; +1.0 Gy (50 %) is
    assert not exceeds_organ_dose_criterion(2.5, 2.0, r.value, r.relative_value)
    assert exceeds_organ_dose_criterion(3.0, 2.0, r.value, r.relative_value)


def test_a_site_cannot_promote_a_reporting_criterion_to_a_dose_limit():
    with pytest.raises(FieldValueError, match="regulatory reporting criterion"):
        gl.validate_site_guidelines({"promote": [{"row": "nrc-medical-event-activity",
                                                  "reason": "x"}]}, "site")


# --- D6-D8, D16, D17: resin Table 3 ----------------------------------------------------------

@pytest.mark.parametrize("histology", ["hcc", "icc", "mcrc"])
def test_resin_loe_cells_printed_3_over_4(histology):
    """Bug caught: the stacked '3 / 4' LOE cell read as 'first for the normal liver' (3),
    the opposite of what the table's own pattern shows (values from Levillain [93] alone
    print a single 4), and applied unevenly (ICC lobectomy)."""
    for row_id in (f"eanm22-resin-{histology}-unilobar-normal-perfused-40",
                   f"eanm22-resin-{histology}-bilobar-normal-perfused-30",
                   f"eanm22-resin-{histology}-bilobar-normal-perfused-40"):
        r = _row(row_id)
        assert r.loe == "4 (of 3/4)" and "'3 / 4'" in r.note, row_id
    r = _row(f"eanm22-resin-{histology}-unilobar-bilobar-tumour-100")
    assert r.loe == "3 (of 3/4)" and "'3 / 4'" in r.note
    assert r.intents == ("unilobar", "bilobar")
    lob = _row(f"eanm22-resin-{histology}-lobectomy-tumour-100")
    assert lob.intents == ("lobectomy",)
    # HCC and mCRC lobectomy print a single 4; ICC lobectomy prints '3 / 4'
    assert lob.loe == ("3 (of 3/4)" if histology == "icc" else "4")
    seventy = _row(f"eanm22-resin-{histology}-lobectomy-normal-perfused-70")
    assert seventy.loe == ("4 (of 3/4)" if histology == "icc" else "4")
    assert "'Not recommended'" in seventy.note          # single-compartment, lobectomy


def test_resin_icc_footnote_and_the_old_merged_ids_are_gone():
    r = _row("eanm22-resin-icc-unilobar-bilobar-tumour-100")
    assert "86 Gy" in r.note and "38 Gy" in r.note and r.printed.endswith("***")
    assert not any(i.endswith("-lobar-bilobar-tumour-100") and "resin" in i
                   for i in gl.row_ids())


# --- D9-D15: extrapolations, footnotes, unknown facts ---------------------------------------

def test_net_and_other_rows_are_labelled_as_an_extrapolation():
    """Bug caught: NET/other rows cited as printed Table 2 rows with LOE 3 (Table 2 has only
    HCC, ICC and mCRC rows; footnote *** only calls the values safe for non-HCC patients)."""
    for value in (75, 50, 90):
        r = _row(f"eanm22-glass-net-other-lobar-bilobar-whole-normal-{value}")
        assert r.basis == "extrapolation" and r.loe != "3" and "extrapolation" in r.loe
        assert r.source().startswith("TAREPlanner extrapolation") and "footnote ***" in r.table
    assert all(r.basis == "printed" for r in gl.rows() if "net" not in r.histologies)


def test_bilirubin_at_exactly_1_1_is_a_convention_and_the_hcc_scope_is_said():
    """Footnote ***: '> 1.1' -> 50 Gy, '< 1.1' -> 90 Gy, 'In HCC patients'. Bug caught:
    the 1.1 edge shown as the source's and the HCC scope hidden on ICC/mCRC rows."""
    fifty = _row("eanm22-glass-hcc-lobectomy-unilobar-whole-normal-50")
    assert "> 1.1" in fifty.printed and "TAREPlanner convention" in fifty.note
    (p,) = fifty.when
    assert (p["op"], p["value"]) == (">=", 1.1) and "TAREPlanner" in p["convention"]
    for h in ("icc", "mcrc"):
        for v in (50, 90):
            assert "'In HCC patients'" in _row(
                f"eanm22-glass-{h}-lobar-bilobar-whole-normal-{v}").note
    assert "not captured" in _row("eanm22-glass-hcc-bilobar-whole-normal-90").note
    facts = gl.Facts(bilirubin_mg_dl=1.1)
    assert gl._predicate(p, facts) is True
    assert gl._predicate(p, gl.Facts(bilirubin_mg_dl=1.0999)) is False


def test_rows_with_footnote_four_stars_say_its_text_is_not_captured():
    for row_id in ("eanm22-glass-hcc-lobectomy-tumour-250-300",
                   "eanm22-glass-hcc-unilobar-tumour-250-300",
                   "eanm22-glass-hcc-bilobar-perfused-80-150"):
        r = _row(row_id)
        assert r.printed.endswith("****") and "not captured" in r.note


def _unilobar_glass(liver_ml):
    doc = {"schema": "tareplanner.case/1", "product": "therasphere",
           "method": "single-compartment", "tissue_density_g_per_ml": 1.03,
           "lung_shunt_fraction": 0.05, "lsf_method": "spect-whole-lung", "lung_mass_kg": 1.0,
           "treatment_time": "2026-12-01T10:00:00+01:00",
           "scenario": {"intent": "unilobar", "histology": "hcc"},
           "positions": [{"name": "right lobe", "normal_volume_ml": 900,
                          "tumours": [{"name": "T1", "volume_ml": 100}],
                          "goal": {"perfused_dose_gy": 110}}]}
    if liver_ml is not None:
        doc["whole_liver_volume_ml"] = liver_ml
        doc["whole_liver_tumour_volume_ml"] = 100
    return plan_case(parse_case(doc), None, "")


def test_the_120_row_is_not_evaluated_without_the_hepatic_reserve_and_says_so():
    """'< 120 if HR < 30 %' (Table 2): without the whole liver volume the reserve is unknown.
    Bug caught: the row silently dropped (or silently met) when the reserve is not known.
    Edge: perfused 1000 mL, HR < 30 % exactly when the liver is < 1000 / 0.7 mL."""
    record = _unilobar_glass(None)
    (row,) = [c for c in record["guideline_check"]["rows"]
              if c["id"] == "eanm22-glass-hcc-unilobar-normal-perfused-120"]
    assert row["status"] == "not evaluated" and "hepatic_reserve_fraction" in row["reason"]
    assert "LOE 1 cannot strictly hold" in _row(row["id"]).note
    for liver_ml, present in ((1000 / 0.7 - 1e-3, True), (1000 / 0.7 + 1e-3, False)):
        ids = [c["id"] for c in _unilobar_glass(liver_ml)["guideline_check"]["rows"]]
        assert ("eanm22-glass-hcc-unilobar-normal-perfused-120" in ids) is present


HO_BILOBAR_GY = 40          # EANM 2022 Table 4, bilobar whole normal liver "< 40***"
HO_FAVOURABLE_GY = 60       # footnote ***: "Up to 60 Gy in patients with more favourable ..."


def _holmium_bilobar(favourable, whole_normal_gy):
    """Bilobar QuiremSpheres, one position covering the whole liver (1000 mL normal, no
    tumour), single compartment: the whole normal liver dose equals the perfused dose."""
    scenario = {"intent": "bilobar", "histology": "mcrc"}
    if favourable is not None:
        scenario["favourable_liver_function"] = favourable
    doc = {"schema": "tareplanner.case/1", "product": "quiremspheres",
           "method": "single-compartment", "tissue_density_g_per_ml": 1.03,
           "lung_shunt_fraction": 0.05, "lsf_method": "spect-whole-lung", "lung_mass_kg": 1.0,
           "whole_liver_volume_ml": 1000, "whole_liver_tumour_volume_ml": 0,
           "scenario": scenario,
           "positions": [{"name": "liver", "normal_volume_ml": 1000, "tumours": [],
                          "goal": {"perfused_dose_gy": whole_normal_gy}}]}
    record = plan_case(parse_case(doc), None, "")
    return [c for c in record["guideline_check"]["rows"] if c["quantity"] == "whole_normal_liver"]


@pytest.mark.parametrize("favourable, limit", [(None, HO_BILOBAR_GY), (False, HO_BILOBAR_GY),
                                               (True, HO_FAVOURABLE_GY)])
def test_holmium_bilobar_footnote_three_stars_is_encoded(favourable, limit):
    """Bug caught: Table 4 footnote *** (up to 60 Gy with more favourable liver function)
    only in a note while the resin footnote ** split is encoded. Without the fact the printed
    40 Gy holds; edges at the limit and just either side (equal meets a recommendation)."""
    for dose, met in ((limit - 0.01, True), (limit, True), (limit + 0.01, False)):
        (row,) = _holmium_bilobar(favourable, dose)
        assert row["value"] == limit and row["met"] is met, (dose, row)
        assert row["plan_value"] == pytest.approx(dose, rel=1e-9)


def test_favourable_liver_function_must_be_a_boolean():
    with pytest.raises(FieldValueError, match="favourable_liver_function"):
        gl.parse_scenario({"intent": "bilobar", "histology": "hcc",
                           "favourable_liver_function": "yes"})
    with pytest.raises(FieldValueError, match="liver_compromised"):
        gl.parse_scenario({"intent": "bilobar", "histology": "hcc",
                           "favourable_liver_function": True}, liver_compromised=True)


def test_lung_limit_sources_say_what_was_not_verified():
    """Bug caught: the QuiremSpheres cumulative 50 Gy cited to its IFU while the product data
    cite the Dutch TvNG review; lung limits cited to EANM 2022 without a checked text."""
    assert _row("ifu-quiremspheres-lung-cumulative").document != "quirem-ifu"
    for key in catalogue.product_keys():
        for name in ("lung_single_gy", "lung_cumulative_gy"):
            source = catalogue.product(key).limits[name].source
            assert "not verified" in source, (key, name)
    assert "not verified" in _row("ifu-therasphere-lung-single").loe


# --- D20: product tumour targets ------------------------------------------------------------

def test_tumour_targets_are_tumour_doses_and_segmentectomy_doses_are_perfused():
    """Bug caught: glass tumour minimum 200 Gy (Table 2 prints HCC '>= 205'), and the
    segmentectomy perfused-volume doses (glass > 400, resin > 150) filed as 'ablative' tumour
    targets."""
    glass = catalogue.product("therasphere")
    assert glass.tumour_target_gy["min"] == 205
    products = json.loads(catalogue._data_text("products.json"))["products"]
    for key, seg in (("therasphere", 400), ("sir-spheres", 150), ("quiremspheres", None)):
        assert "ablative" not in products[key]["tumour_target_gy"]
        assert products[key]["segmentectomy_perfused_gy"]["value"] == seg
        if seg:
            assert "perfused" in products[key]["segmentectomy_perfused_gy"]["source"]


# --- D21: one schema for a row, checked by the loader ---------------------------------------

GOOD = {"id": "x", "product": "therasphere", "intents": ["unilobar"], "histologies": ["hcc"],
        "quantity": "tumour", "operator": ">=", "value": 205, "unit": "Gy", "printed": ">= 205",
        "kind": "recommendation", "document": "eanm-2022", "table": "Table 2", "row": "r",
        "loe": "3"}


@pytest.mark.parametrize("change, field", [
    ({"intents": "any"}, "intents"),                  # the former string sentinel
    ({"histologies": "any"}, "histologies"),
    ({"intents": []}, "intents"),
    ({"intents": ["unilobar", "lobar-ish"]}, "intents"),
    ({"histologies": ["hcc", "hcc"]}, "histologies"),
    ({"quantity": "liver"}, "quantity"),
    ({"kind": "hard limit"}, "kind"),
    ({"edge": "sometimes"}, "edge"),
    ({"basis": "guess"}, "basis"),
    ({"value": float("nan")}, "value"),
    ({"document": "nowhere"}, "document"),
    ({"colour": "red"}, "colour"),
    ({"kind": "regulatory-report"}, "edge"),          # '... or more' needs a strict edge
    ({"when": [{"field": "bilirubin_mg_dl", "op": "<", "value": 1, "if_unknown": "skip"}]},
     "when"),
])
def test_a_malformed_row_is_refused_by_the_loader(change, field):
    document = gl.data()
    entry = dict(GOOD, **change)
    gl.parse_row(GOOD, document)                      # the good row loads
    with pytest.raises(SchemaError, match=f"row x: {field}"):
        gl.parse_rows(dict(document, rows=[entry]))


def test_duplicate_ids_are_refused_and_every_packaged_row_loads():
    document = gl.data()
    with pytest.raises(SchemaError, match="unique ids"):
        gl.parse_rows(dict(document, rows=[GOOD, copy.deepcopy(GOOD)]))
    raw = document["rows"]
    assert all(isinstance(e["intents"], list) and isinstance(e["histologies"], list)
               for e in raw)
    assert len(gl.parse_rows(document)) == len(raw)


def test_every_scope_row_is_listed_as_every_intent(capsys):
    assert main(["guidelines", "--all"]) == 0
    out = capsys.readouterr().out
    block = out[out.index("nrc-medical-event-activity"):]
    assert "every intent, every histology" in block.splitlines()[1]
    assert "regulatory-report" in block.splitlines()[1]


def test_the_plan_text_shows_the_regulatory_kind():
    record = _unilobar_glass(1300)
    text = plan_summary(record)
    assert "REG." in text and "10 CFR 35.3045(a)(1)(ii)" in text


@pytest.mark.parametrize("intent, method, warned", [
    ("lobectomy", "single-compartment", True), ("lobectomy", "partition", False),
    ("unilobar", "single-compartment", False)])
def test_resin_single_compartment_lobectomy_is_not_recommended(intent, method, warned):
    """EANM 2022 Table 3 prints 'Not recommended' in the single-compartment column of every
    lobectomy row. Bug caught: the note only in the data, never a warning of the plan."""
    doc = {"schema": "tareplanner.case/1", "product": "sir-spheres", "method": method,
           "tissue_density_g_per_ml": 1.03, "lung_shunt_fraction": 0.05,
           "lsf_method": "spect-whole-lung", "lung_mass_kg": 1.0,
           "whole_liver_volume_ml": 2000, "whole_liver_tumour_volume_ml": 100,
           "scenario": {"intent": intent, "histology": "mcrc"},
           "positions": [{"name": "right lobe", "normal_volume_ml": 900,
                          "tumours": [{"name": "T1", "volume_ml": 100, "tnr": 3}],
                          "goal": {"normal_dose_gy": 35}}]}
    record = plan_case(parse_case(doc), None, "")
    codes = [w["code"] for w in record["warnings"]]
    assert ("method-not-recommended" in codes) is warned


def test_the_salem_row_says_it_is_unverified():
    """Bug caught: a value cited to Salem et al. 2023 as if read from the paper, although it
    was typed from second-hand notes."""
    r = _row("salem23-glass-hcc-segmentectomy-perfused-400")
    assert "not verified" in r.loe and "verify before relying" in r.note


def test_the_favourable_liver_function_is_named_in_the_plan_text():
    """Bug caught: the 60 Gy row applied without the plan saying why."""
    from tareplanner.records import report_tables
    doc_record = plan_case(parse_case({
        "schema": "tareplanner.case/1", "product": "quiremspheres",
        "method": "single-compartment", "tissue_density_g_per_ml": 1.03,
        "lung_shunt_fraction": 0.05, "lsf_method": "spect-whole-lung", "lung_mass_kg": 1.0,
        "whole_liver_volume_ml": 1000, "whole_liver_tumour_volume_ml": 0,
        "scenario": {"intent": "bilobar", "histology": "mcrc",
                     "favourable_liver_function": True},
        "positions": [{"name": "liver", "normal_volume_ml": 1000, "tumours": [],
                       "goal": {"perfused_dose_gy": 50}}]}), None, "")
    assert "more favourable liver function" in plan_summary(doc_record)
    assert "more favourable liver function" in report_tables.scenario_text(doc_record)
