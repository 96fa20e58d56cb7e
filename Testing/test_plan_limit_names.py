"""The names under which a plan reports its limits: each violation with its limit's source, and
the per-position normal-liver limit in the uncertainty's exceedance table (a promoted row on
the perfused volume, named 'perfused-limit': Testing/test_schemas.py).

Bugs these tests catch: a violation of the
normal-liver or of the cumulative lung limit recorded without the source of its value; the
normal-liver limit left out of the Monte Carlo's exceedance probabilities. Doses by hand:
TheraSphere 49.67 Gy kg / GBq; the shared case (tissue 1.03 g/mL, one position of 900 mL
normal liver and a 120 mL tumour at TNR 3.1, LSF 6 %, lung 1 kg)."""

from __future__ import annotations

import copy

import pytest

from tareplanner import catalogue
from tareplanner.planning import plan_case
from tareplanner.records.case import parse_case

SITE = "Test Hospital"


def _site(document: dict):
    return catalogue.validate_site_limits({"schema": "tareplanner.site-limits/1",
                                           "site": SITE, **document})


def test_a_violation_of_the_normal_liver_limit_carries_its_source(base_case):
    """A site's TheraSphere normal-liver limit of 70 Gy and an explicit 3 GBq. Partition
    model, normal liver per GBq: 49.67 x (1 - 0.06) / (M_normal + TNR x M_tumour) with
    M_normal = 900 x 1.03 / 1000 = 0.927 kg and M_tumour = 120 x 1.03 / 1000 = 0.1236 kg:
    46.690 / (0.927 + 0.38316) = 35.637 Gy/GBq; 3 GBq give 106.9 Gy, above 70: the
    violation is recorded with the limit's value and the site's source."""
    site = _site({"products": {"therasphere": {"normal_liver_gy": 70}}})
    base_case["positions"][0]["goal"] = {"activity_gbq": 3.0}
    record = plan_case(parse_case(base_case), site, SITE)
    (position,) = record["positions"]
    (violation,) = position["violations"]
    assert violation["limit"] == "normal-liver-limit"
    assert violation["limit_gy"] == 70
    assert violation["dose_gy"] == pytest.approx(3 * 49.67 * 0.94 / (0.927 + 3.1 * 0.1236),
                                              rel=1e-4)
    applied = record["limits"][record["limits"]["applied_normal_liver"]]
    assert violation["source"] and violation["source"] == applied["source"]
    assert SITE in violation["source"]


def test_a_violation_of_the_cumulative_lung_limit_carries_its_source(base_case):
    """10 GBq with 6 % to 1 kg of lung: 49.67 x 10 x 0.06 / 1 = 29.802 Gy this time (below
    the 30 Gy single limit) and 54.802 Gy with the 25 Gy of an earlier treatment, above the
    cumulative 50 Gy: one case-level violation, with TheraSphere's cumulative-lung source."""
    base_case["positions"][0]["goal"] = {"activity_gbq": 10.0}
    base_case["prior_lung_dose_gy"] = 25
    record = plan_case(parse_case(base_case))
    (violation,) = record["violations"]
    assert violation["limit"] == "lung-cumulative-limit"
    assert violation["dose_gy"] == pytest.approx(54.802, rel=1e-9)
    assert violation["limit_gy"] == 50
    assert violation["source"].startswith("TheraSphere package insert; lung <= 50 Gy cumulative")


def test_the_normal_liver_limit_enters_the_exceedance_table(base_case):
    """With a normal-liver limit (the site's 70 Gy) the Monte Carlo reports the probability
    that the position's normal liver exceeds it, beside the lung limits; without one (the
    instructions for use give none) only the lung limits are there."""
    without = plan_case(parse_case(copy.deepcopy(base_case)))
    assert set(without["uncertainty"]["exceedance"]) == {"lung-limit", "lung-cumulative-limit"}
    site = _site({"products": {"therasphere": {"normal_liver_gy": 70}}})
    record = plan_case(parse_case(base_case), site, SITE)
    table = record["uncertainty"]["exceedance"]
    extra = set(table) - {"lung-limit", "lung-cumulative-limit"}
    assert len(extra) == 1
    (entry,) = [table[k] for k in extra]
    assert entry["limit_gy"] == 70
    assert "right hepatic" in entry["figure"] or "right hepatic" in next(iter(extra))
