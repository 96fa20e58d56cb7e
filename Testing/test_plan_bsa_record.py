"""The BSA method in the plan record (tareplanner.planning.plan_case with method "bsa"):
the figures of the BSA formula for each position, the LSF reduction and its warning, and the
refusal of an LSF outside the manufacturer's table, by hand.

SIR-Spheres IFU: whole-liver activity A (GBq) = BSA (m2) - 0.2 + tumour involvement
(tumour volume / liver volume); a position gets A x its perfused share of the liver; lung
shunt < 10 % full activity, 10-15 % reduced by 20 %, 15-20 % by 40 %, > 20 % not treated.
BSA by Du Bois & Du Bois (1916): 0.007184 x W^0.425 x H^0.725 (kg, cm); the metre form
0.20247 x H^0.725 x W^0.425 rounds the constant differently (1.3e-5 relative), hence the
1e-4 tolerance on the figures that follow from it.
Each test names the bug it catches.
"""

import copy

import pytest

from tareplanner import catalogue
from tareplanner.errors import ClinicalCutoffError
from tareplanner.planning import plan_case
from tareplanner.records.case import parse_case

from conftest import BASE_CASE

# shared case: 172 cm, 80 kg; liver 1800 mL with 150 mL tumour; 'right hepatic' perfused
# 900 + 120 = 1020 mL
BSA_M2 = 0.007184 * 80 ** 0.425 * 172 ** 0.725          # 1.9317 m2
INVOLVEMENT = 150 / 1800                                 # 0.08333
WHOLE_LIVER_GBQ = BSA_M2 - 0.2 + INVOLVEMENT             # 1.8150 GBq
PERFUSED = 1020 / 1800                                   # 0.56667


def _bsa_case(lsf):
    doc = copy.deepcopy(BASE_CASE)
    doc.update(product="sir-spheres", method="bsa", lung_shunt_fraction=lsf)
    del doc["positions"][0]["goal"]
    return doc


@pytest.mark.parametrize("lsf, factor", [(0.06, 1.0), (0.12, 0.8)])
def test_bsa_figures_in_the_record(lsf, factor):
    """Bugs caught: a BSA position recorded without its BSA, tumour involvement,
    whole-liver activity, perfused share or LSF factor (or with one for another), its goal
    not shown as the BSA method's, the reduction warned of at full activity or its warning
    garbled. LSF 6 %: 1.8150 x 0.56667 = 1.0285 GBq, no reduction; LSF 12 %: x 0.8 =
    0.8228 GBq."""
    assert BSA_M2 == pytest.approx(1.9317, abs=1e-4)
    record = plan_case(parse_case(_bsa_case(lsf)))
    (position,) = record["positions"]
    assert position["goal"] == {"bsa": True}
    assert position["bsa"] == {"bsa_m2": pytest.approx(BSA_M2, rel=1e-4),
                               "tumour_involvement": pytest.approx(INVOLVEMENT, rel=1e-9),
                               "whole_liver_activity_gbq": pytest.approx(WHOLE_LIVER_GBQ,
                                                                         rel=1e-4),
                               "perfused_fraction": pytest.approx(PERFUSED, rel=1e-9),
                               "lsf_factor": factor}
    assert position["activity_gbq"] == pytest.approx(WHOLE_LIVER_GBQ * PERFUSED * factor,
                                                     rel=1e-4)
    assert record["bsa_m2"] == pytest.approx(BSA_M2, rel=1e-4)
    reductions = [w["message"] for w in record["warnings"] if w["code"] == "bsa-lsf-reduction"]
    if factor == 1.0:
        assert reductions == []
    else:
        (message,) = reductions
        assert message.startswith("BSA activity reduced to 80% for LSF 12.0% (Sirtex "
                                  "SIR-Spheres IFU: lung shunt < 10 % full activity")
        assert message.endswith(")")


def test_lsf_outside_the_bsa_table_is_refused_with_the_table_source():
    """Bug caught: an LSF that a site's cut-off allows (25 %) but the manufacturer's BSA
    table does not cover (it ends at 20 %) planned, or refused without naming the field, the
    value, what is allowed or the table's source."""
    site = catalogue.validate_site_limits({"schema": "tareplanner.site-limits/1",
                                           "site": "Test Hospital",
                                           "products": {"sir-spheres": {"lsf_cutoff": 0.25}}})
    with pytest.raises(ClinicalCutoffError) as info:
        plan_case(parse_case(_bsa_case(0.22)), site, "Test Hospital")
    error = info.value
    assert (error.field, error.value) == ("lung_shunt_fraction", 0.22)
    assert error.allowed == "an LSF within the manufacturer's BSA reduction table"
    assert error.detail.endswith("; Sirtex SIR-Spheres IFU: lung shunt < 10 % full activity, "
                                 "10-15 % reduce activity by 20 %, 15-20 % reduce by 40 %, "
                                 "> 20 % do not treat")
