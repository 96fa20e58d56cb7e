"""The limits a plan applies to a case (tareplanner.planning.effective_limits): the normal-liver
and whole-normal-liver limits of a compromised liver instead of the standard ones, each with
its source. The product defaults set no normal-liver limit (the instructions for use give
none), so the values here are a site's, written by hand: 70 Gy for the normal perfused liver,
50 Gy for a compromised one. Each test names the bug it catches.
"""

import copy
from types import SimpleNamespace

import pytest

from tareplanner import catalogue
from tareplanner.errors import ClinicalCutoffError
from tareplanner.planning import (check_lsf_cutoff, effective_limits, plan_case,
                                 whole_liver_limits)
from tareplanner.records.case import parse_case

from conftest import BASE_CASE

SITE = {"schema": "tareplanner.site-limits/1", "site": "Test Hospital",
        "products": {"therasphere": {"normal_liver_gy": 70, "normal_liver_compromised_gy": 50}}}


def _limits(compromised):
    doc = copy.deepcopy(BASE_CASE)
    doc["liver_compromised"] = compromised
    site = catalogue.validate_site_limits(copy.deepcopy(SITE))
    product = catalogue.product("therasphere", site, "Test Hospital")
    return effective_limits(parse_case(doc), product)


@pytest.mark.parametrize("compromised, normal_gy, normal_key, whole_key", [
    (False, 70, "normal_liver_gy", "whole_normal_liver_gy"),
    (True, 50, "normal_liver_compromised_gy", "whole_normal_liver_compromised_gy")])
def test_a_compromised_liver_gets_the_compromised_limits(compromised, normal_gy, normal_key,
                                                        whole_key):
    """Bug caught: a compromised liver (``liver_compromised``) planned with the standard
    normal-liver limit (70 Gy here) instead of the compromised one (50 Gy), or the record
    naming another limit than the one applied. The lung limits are the package insert's
    30 Gy per treatment and 50 Gy cumulative either way."""
    applied, record = _limits(compromised)
    assert applied.normal_liver_gy == normal_gy
    assert (applied.lung_single_gy, applied.lung_cumulative_gy) == (30, 50)
    assert record["applied_normal_liver"] == normal_key
    assert record["applied_whole_normal_liver"] == whole_key
    assert record[normal_key] == {"value": normal_gy, "source": "site limits: Test Hospital"}


def test_a_compromised_liver_is_planned_to_its_own_limit():
    """Bug caught: the same, seen in the plan. Shared case, 'maximum' goal: density 1.03 g/mL,
    LSF 0.06, R = 0, Y-90 49.67 J/GBq; normal liver 0.927 kg, tumour 0.1236 kg at TNR 3.1:
    D_N = 49.67 x 0.94 / (0.927 + 3.1 x 0.1236) = 46.6898 / 1.31016 = 35.637 Gy/GBq. A
    compromised liver at 50 Gy: 50 / 35.637 = 1.4030 GBq (70 Gy would give 1.9643 GBq)."""
    doc = copy.deepcopy(BASE_CASE)
    doc["liver_compromised"] = True
    doc["positions"][0]["goal"] = {"maximum": True}
    site = catalogue.validate_site_limits(copy.deepcopy(SITE))
    record = plan_case(parse_case(doc), site, "Test Hospital")
    (position,) = record["positions"]
    assert position["normal_dose_gy"] == pytest.approx(50, rel=1e-9)
    assert position["activity_gbq"] == pytest.approx(50 / 35.637, rel=1e-4)
    assert position["limited_by"] == "normal-liver-limit"


@pytest.mark.parametrize("lsf, refused", [(0.2, False), (0.2001, True), (0.25, True)])
def test_lsf_cutoff_is_refused_with_its_source(lsf, refused):
    """Bugs caught: a lung shunt above the SIR-Spheres cut-off refused without the source of
    the cut-off ("Sirtex IFU: do not treat when the lung shunt exceeds 20 %"), or the cut-off
    itself refused (20 % is allowed: "> 20 %: do not treat")."""
    doc = copy.deepcopy(BASE_CASE)
    doc.update(product="sir-spheres", lung_shunt_fraction=lsf)
    case = parse_case(doc)
    if not refused:
        assert check_lsf_cutoff(case, catalogue.product("sir-spheres")) is None
        return
    with pytest.raises(ClinicalCutoffError) as info:
        check_lsf_cutoff(case, catalogue.product("sir-spheres"))
    assert str(info.value) == (
        f"lung_shunt_fraction: got {lsf!r}; allowed: <= 0.2 for sir-spheres (Sirtex IFU: do "
        "not treat when the lung shunt exceeds 20 %)")


@pytest.mark.parametrize("compromised, limit_gy, key", [
    (False, 75, "whole_normal_liver_gy"),
    (True, 50, "whole_normal_liver_compromised_gy")])
def test_a_compromised_liver_gets_the_compromised_whole_normal_liver_limit(compromised,
                                                                          limit_gy, key):
    """Bug caught: the whole normal liver of a compromised liver held to the standard limit
    (75 Gy here, a site's) instead of the compromised one (50 Gy), or a standard liver held
    to the compromised one; the whole liver's limit recorded without its source. Shared
    case, normal liver 35.637 Gy/GBq (see above) over 927 g of the 1699.5 g whole normal
    liver ((1800 - 150) mL x 1.03 g/mL): 35.637 x 0.927 / 1.6995 = 19.438 Gy per GBq."""
    doc = copy.deepcopy(BASE_CASE)
    doc["liver_compromised"] = compromised
    site = catalogue.validate_site_limits({
        "schema": "tareplanner.site-limits/1", "site": "Test Hospital",
        "products": {"therasphere": {"whole_normal_liver_gy": 75,
                                     "whole_normal_liver_compromised_gy": 50}}})
    product = catalogue.product("therasphere", site, "Test Hospital")
    shared, record = whole_liver_limits(parse_case(doc), product,
                                        [SimpleNamespace(normal_gy_per_gbq=35.637)], 49.67)
    (limit,) = shared
    assert (limit.name, limit.limit_gy) == ("whole-normal-liver-limit", limit_gy)
    assert limit.gy_per_gbq == (pytest.approx(19.438, abs=1e-3),)
    assert record["applied_whole_normal_liver"] == key
    assert record["limits"][key] == {"value": limit_gy, "source": "site limits: Test Hospital"}
    # the whole liver (tumours included): no hard limit in the package insert, nor the site's
    assert record["limits"]["whole_liver_gy"]["value"] is None
    assert record["limits"]["whole_liver_gy"]["source"].startswith(
        "no hard limit: the instructions for use give none")


def test_whole_liver_limits_not_checked_without_the_whole_liver_volume():
    """Bug caught: a case without ``whole_liver_volume_ml`` recorded as not checked without
    the reason, or checked against a mass it does not hold."""
    doc = copy.deepcopy(BASE_CASE)
    del doc["whole_liver_volume_ml"]
    shared, record = whole_liver_limits(parse_case(doc), catalogue.product("therasphere"),
                                        [SimpleNamespace(normal_gy_per_gbq=35.637)], 49.67)
    assert shared == []
    assert (record["checked"], record["reason"]) == (
        False, "whole_liver_volume_ml is not in the case")
    assert set(record) == {"limits", "checked", "reason"}


@pytest.mark.parametrize("tumour_ml, normal_kg", [(150, 1.6995), (None, 1.7304)])
def test_whole_normal_liver_mass_from_the_cases_tumour_volume_or_its_tumours(tumour_ml,
                                                                           normal_kg):
    """Bugs caught: the whole normal liver's mass taken without the tumours, or from the
    positions' tumours when the case gives the whole liver's tumour volume (150 mL), or not
    from them when it does not (T1, 120 mL). (1800 - 150) x 1.03 = 1699.5 g;
    (1800 - 120) x 1.03 = 1730.4 g; whole liver 1800 x 1.03 = 1854 g either way."""
    doc = copy.deepcopy(BASE_CASE)
    if tumour_ml is None:
        del doc["whole_liver_tumour_volume_ml"]
    _, record = whole_liver_limits(parse_case(doc), catalogue.product("therasphere"),
                                   [SimpleNamespace(normal_gy_per_gbq=35.637)], 49.67)
    assert record["checked"] is True
    assert record["whole_liver_mass_kg"] == pytest.approx(1.854, rel=1e-12)
    assert record["whole_normal_liver_mass_kg"] == pytest.approx(normal_kg, rel=1e-12)


def test_whole_liver_and_whole_normal_liver_shared_limits_by_hand():
    """Bugs caught: the whole-liver limit a site sets not applied, or with the liver energy
    without (1 - LSF)(1 - R), over another mass, for only some positions; the whole normal
    liver's share of a position not weighted by its normal-liver mass; the two limits
    swapped. Site limits 100 Gy whole liver, 75 Gy whole normal liver; LSF 0.06, R = 0.1;
    two positions, 'right hepatic' (927 g normal liver, 35.637 Gy/GBq) and 'left' (500 mL,
    515 g, 44.0 Gy/GBq, numbers given here). Whole liver: 49.67 x 0.94 x 0.9 / 1.854
    = 42.02082 / 1.854 = 22.66495 Gy/GBq for each position; whole normal liver
    (1699.5 g): 35.637 x 0.927 / 1.6995 = 19.438 and 44.0 x 0.515 / 1.6995 = 13.3333
    Gy/GBq."""
    doc = copy.deepcopy(BASE_CASE)
    doc["residual_fraction"] = 0.1
    doc["positions"].append({"name": "left", "normal_volume_ml": 500, "tumours": [],
                             "goal": {"activity_gbq": 0.5}})
    site = catalogue.validate_site_limits({
        "schema": "tareplanner.site-limits/1", "site": "Test Hospital",
        "products": {"therasphere": {"whole_liver_gy": 100, "whole_normal_liver_gy": 75}}})
    product = catalogue.product("therasphere", site, "Test Hospital")
    shared, record = whole_liver_limits(
        parse_case(doc), product,
        [SimpleNamespace(normal_gy_per_gbq=35.637), SimpleNamespace(normal_gy_per_gbq=44.0)],
        49.67)
    whole, normal = shared
    assert (whole.name, whole.limited_by, whole.limit_gy) == (
        "whole-liver-limit", "whole-liver-limit", 100)
    assert whole.gy_per_gbq == (pytest.approx(22.66495, abs=1e-5),) * 2
    assert (normal.name, normal.limited_by, normal.limit_gy) == (
        "whole-normal-liver-limit", "whole-normal-liver-limit", 75)
    assert normal.gy_per_gbq == (pytest.approx(19.438, abs=1e-3),
                                 pytest.approx(13.3333, abs=1e-4))
    assert record["limits"]["whole_liver_gy"] == {"value": 100,
                                                  "source": "site limits: Test Hospital"}
    assert "promoted_rows" not in record


def test_promoted_rows_become_shared_limits():
    """Bugs caught: a whole-liver or whole-normal-liver row that a site promoted to a hard
    limit not applied, applied with another dose per GBq or ceiling (a range's upper end),
    under another name, or not listed in the record. Rows written here (the shipped table
    has whole-normal-liver rows only; a whole-liver row is handled the same way): whole liver
    < 120 Gy, whole normal liver in the range 50-90 Gy. Shared case (R = 0): whole liver
    49.67 x 0.94 / 1.854 = 46.6898 / 1.854 = 25.1833 Gy/GBq; whole normal liver
    19.438 Gy/GBq (see above)."""
    rows = [SimpleNamespace(id="whole-liver-120", quantity="whole_liver", operator="<",
                            value=120, high=None),
            SimpleNamespace(id="whole-normal-50-90", quantity="whole_normal_liver",
                            operator="range", value=50, high=90)]
    shared, record = whole_liver_limits(parse_case(copy.deepcopy(BASE_CASE)),
                                        catalogue.product("therasphere"),
                                        [SimpleNamespace(normal_gy_per_gbq=35.637)], 49.67, rows)
    whole, normal = shared
    assert (whole.name, whole.limited_by, whole.limit_gy) == (
        "whole-liver-limit", "whole-liver-limit", 120)
    assert whole.gy_per_gbq == (pytest.approx(25.1833, abs=1e-4),)
    assert (normal.name, normal.limited_by, normal.limit_gy) == (
        "whole-normal-liver-limit", "whole-normal-liver-limit", 90)
    assert normal.gy_per_gbq == (pytest.approx(19.438, abs=1e-3),)
    assert record["promoted_rows"] == ["whole-liver-120", "whole-normal-50-90"]
