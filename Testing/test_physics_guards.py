"""The guards and edges of the small physics modules (decay, lung_shunt, administration,
compartments), each test naming the bugs it catches. Expected values are worked out by hand in
the docstrings; the messages are part of the behaviour (the command line prints them as they
are), so their words are checked too.
"""

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from tareplanner.physics.administration import (Reading, delivered_activity,
                                                deviation_fraction, meets_criterion)
from tareplanner.physics.bsa import (LsfBand, bsa_activity, bsa_lsf_factor, check_lsf_bands,
                                     dubois_bsa_m2)
from tareplanner.physics.compartments import dose_per_activity, lung_dose_per_activity
from tareplanner.physics.decay import (decay_constant_per_h, decay_factor,
                                       energy_per_activity_j_per_gbq, hours_between,
                                       hours_until_activity)
from tareplanner.physics.lung_shunt import lsf_planar_geometric_mean

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)


# --------------------------------------------------------------------------- decay

def test_half_life_must_be_positive_and_small_ones_are_allowed():
    """Bugs caught: a half-life of 0 accepted (division by zero later), or the bound moved
    to 1 h (Tc-99m's 6.0 h passes either way; 0.5 h must pass). ln 2 / 0.5 = 1.386294 /h."""
    assert decay_constant_per_h(0.5) == pytest.approx(math.log(2) / 0.5, rel=1e-12)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match=r"half_life_h must be > 0, got "):
            decay_constant_per_h(bad)


def test_decay_factor_takes_integers_and_lists():
    """Bug caught: elapsed times not converted to float (an integer list of hours)."""
    np.testing.assert_allclose(decay_factor([0, 64], 64), [1.0, 0.5])
    assert decay_factor(2, 2.0) == pytest.approx(0.5)


def test_hours_between_needs_both_offsets():
    """Bug caught: only one naive time refused ('or' turned to 'and')."""
    naive = datetime(2026, 12, 1, 10, 0)
    for start, end in ((naive, T0), (T0, naive), (naive, naive)):
        with pytest.raises(ValueError, match=r"^times must carry a UTC offset \(time zone\)$"):
            hours_between(start, end)
    assert hours_between(T0, T0 + timedelta(hours=3)) == 3.0


def test_hours_until_activity_refuses_zero_either_side():
    """Bugs caught: zero activity accepted on one side (log of 0), or the bound moved to
    1 GBq (0.5 GBq is a real activity). By hand, 0.5 -> 0.25 GBq takes one half-life."""
    assert hours_until_activity(0.5, 0.25, 64.1) == pytest.approx(64.1, rel=1e-12)
    for a, b in ((0.0, 1.0), (1.0, 0.0), (-1.0, 1.0), (1.0, -1.0)):
        with pytest.raises(ValueError, match=r"^activities must be > 0$"):
            hours_until_activity(a, b, 64.1)


def test_energy_per_gbq_by_hand():
    """Bug caught: a constant off in the last digit. 1 GBq x mean life (T / ln 2) x mean
    energy: Y-90 64.1 h, 0.9267 MeV: 1e9 x 332,909.7 s x 0.9267 x 1.602176634e-13 J
    = 49.43 J (ICRP-107 values give the 49.67 J/GBq of nuclides.json with T = 64.10 h and
    E = 0.9331 MeV)."""
    mean_life_s = 64.1 * 3600 / math.log(2)
    expected = 1e9 * mean_life_s * 0.9267 * 1.602176634e-13
    assert energy_per_activity_j_per_gbq(64.1, 0.9267) == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------- planar LSF

def test_planar_lsf_by_hand_both_branches():
    """Bugs caught: either branch of the overflow-safe ratio wrong. GM lung = sqrt(4 x 9) = 6,
    GM liver = sqrt(16 x 36) = 24: LSF 6 / 30 = 0.2. Reversed (lung 24, liver 6): 0.8 (the
    second branch, 1 / (1 + 6/24)). Equal (10, 10): 0.5 (the edge between the branches)."""
    low = lsf_planar_geometric_mean(4, 9, 16, 36)
    assert (low.lung_geometric_mean_counts, low.liver_geometric_mean_counts) == (6.0, 24.0)
    assert low.lung_shunt_fraction == pytest.approx(0.2, rel=1e-12)
    high = lsf_planar_geometric_mean(16, 36, 4, 9)
    assert high.lung_shunt_fraction == pytest.approx(0.8, rel=1e-12)
    assert high.liver_geometric_mean_counts == 6.0
    assert lsf_planar_geometric_mean(10, 10, 10, 10).lung_shunt_fraction == 0.5
    assert lsf_planar_geometric_mean(0, 0, 0.25, 1).lung_shunt_fraction == 0.0
    assert lsf_planar_geometric_mean(0.25, 1, 0, 0).lung_shunt_fraction == 1.0


@pytest.mark.parametrize("position", range(4))
def test_planar_lsf_names_the_bad_count(position):
    """Bug caught: the wrong name in the message, or 0 counts refused (a lung without counts
    is an LSF of 0) while -1 is accepted."""
    names = ["lung_anterior_counts", "lung_posterior_counts", "liver_anterior_counts",
             "liver_posterior_counts"]
    counts = [1.0, 1.0, 1.0, 1.0]
    counts[position] = -1.0
    with pytest.raises(ValueError, match=rf"^{names[position]}: got -1.0; allowed: a finite "
                                         r"number >= 0$"):
        lsf_planar_geometric_mean(*counts)
    counts[position] = 0.0
    lsf_planar_geometric_mean(*counts)                  # zero is a count


def test_planar_lsf_all_zero_and_fractional_counts():
    """Bugs caught: all-zero counts not refused, or the refusal moved to sums below 1 count
    (background-corrected counts can be fractional)."""
    with pytest.raises(ValueError, match=r"^lung and liver counts are all zero; LSF is "
                                         r"undefined$"):
        lsf_planar_geometric_mean(0, 0, 0, 0)
    assert lsf_planar_geometric_mean(0.01, 0.01, 0.09, 0.09).lung_shunt_fraction == \
        pytest.approx(0.1, rel=1e-12)


# --------------------------------------------------------------------------- administration

def test_delivered_activity_edges_by_hand():
    """Bugs caught: a residual equal to the vial refused (0 delivered is possible), the
    residual fraction inverted or its zero case, no vial reading accepted. Readings at the
    administration time need no decay: vial 2 GBq, residual 0.5 -> 1.5 GBq, R = 0.25."""
    d = delivered_activity([Reading(2.0, T0)], [Reading(0.5, T0)], T0, 64.1)
    assert (d.vial_at_administration_gbq, d.residual_at_administration_gbq,
            d.delivered_activity_gbq, d.residual_fraction) == (2.0, 0.5, 1.5, 0.25)
    all_left = delivered_activity([Reading(2.0, T0)], [Reading(2.0, T0)], T0, 64.1)
    assert all_left.delivered_activity_gbq == 0.0 and all_left.residual_fraction == 1.0
    empty = delivered_activity([Reading(0.0, T0)], [], T0, 64.1)
    assert empty.residual_fraction == 0.0
    small = delivered_activity([Reading(0.5, T0)], [Reading(0.1, T0)], T0, 64.1)
    assert small.residual_fraction == pytest.approx(0.2)
    with pytest.raises(ValueError, match=r"^the residual \(2\.5 GBq at administration\) "
                                         r"exceeds the vial activity \(2 GBq\)$"):
        delivered_activity([Reading(2.0, T0)], [Reading(2.5, T0)], T0, 64.1)
    with pytest.raises(ValueError, match=r"^at least one vial reading is needed$"):
        delivered_activity([], [], T0, 64.1)


def test_deviation_and_criterion_edges():
    """Bugs caught: a prescription of 0 accepted, the bound moved to 1 GBq (0.5 GBq is a
    prescription), the criterion's edge: 'differs by 20 percent or more' includes 20 %."""
    assert deviation_fraction(0.6, 0.5) == pytest.approx(0.2)
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match=r"^prescribed activity must be > 0, got "):
            deviation_fraction(1.0, bad)
    assert meets_criterion(0.2, 0.2) and meets_criterion(-0.2, 0.2)
    assert not meets_criterion(0.1999, 0.2)


# --------------------------------------------------------------------------- compartments

def test_single_compartment_by_hand():
    """Bugs caught: the single-compartment model not giving every part the perfused dose.
    50 J/GBq, no shunt: 50 / (0.9 + 0.1) = 50 Gy/GBq for normal, perfused and tumour."""
    d = dose_per_activity("single-compartment", 50.0, 0.0, 0.0, 0.9, [0.1], None)
    assert (d.normal_gy_per_gbq, d.perfused_gy_per_gbq, d.tumour_gy_per_gbq) == \
        (pytest.approx(50.0), pytest.approx(50.0), (pytest.approx(50.0),))


def test_partition_guards():
    """Bugs caught: a normal mass of 0 accepted, TNRs missing or of the wrong count
    accepted, a TNR of 0 accepted; and the messages."""
    with pytest.raises(ValueError, match=r"^normal_mass_kg must be > 0, got 0"):
        dose_per_activity("partition", 50.0, 0.0, 0.0, 0.0, [0.1], [2.0])
    for ratios in (None, [2.0, 3.0], []):
        with pytest.raises(ValueError, match=r"^the partition model needs one TNR per "
                                             r"tumour$"):
            dose_per_activity("partition", 50.0, 0.0, 0.0, 0.9, [0.1], ratios)
    with pytest.raises(ValueError, match=r"^every TNR must be > 0$"):
        dose_per_activity("partition", 50.0, 0.0, 0.0, 0.9, [0.1], [0.0])
    with pytest.raises(ValueError, match=r"^lung_mass_kg must be > 0, got 0"):
        lung_dose_per_activity(50.0, 0.1, 0.0, 0.0)


# --------------------------------------------------------------------------- BSA method

def test_dubois_guards_allow_small_values():
    """Bugs caught: 0 cm or 0 kg accepted, or the bound moved to 1 (a 0.5 kg weight is
    absurd for a patient but is a number the formula takes: the case's own range refuses
    it). By hand: 0.20247 x 0.5^0.725 x 0.5^0.425 = 0.20247 x 0.5^1.15 = 0.091"""
    assert dubois_bsa_m2(50.0, 0.5) == pytest.approx(0.20247 * 0.5 ** 1.15, rel=1e-12)
    assert dubois_bsa_m2(0.5, 1.0) == pytest.approx(0.20247 * 0.005 ** 0.725, rel=1e-12)
    with pytest.raises(ValueError, match=r"^height_cm must be > 0, got 0"):
        dubois_bsa_m2(0.0, 70.0)
    with pytest.raises(ValueError, match=r"^weight_kg must be > 0, got 0"):
        dubois_bsa_m2(170.0, 0.0)


SIRTEX = [LsfBand(0.0, 0.10, 1.0), LsfBand(0.10, 0.15, 0.8), LsfBand(0.15, 0.20, 0.6, True)]


def test_lsf_band_table_checks_name_the_fault():
    """Bugs caught: an empty band, a factor of 0, a gap between bands, an empty table
    accepted; the message naming the wrong band."""
    check_lsf_bands(SIRTEX)
    cases = [
        ([], r"^the table has no band$"),
        ([LsfBand(0.0, 0.0, 1.0, True)], r"^band 0 is empty \(0 to 0\)$"),
        ([LsfBand(0.0, 0.1, 0.0, True)], r"^band 0 has activity factor 0, outside \(0, 1\]$"),
        ([LsfBand(0.0, 0.1, 1.0)], r"^band 0: only the last band may hold its upper edge, "
                                   r"and it must$"),
        ([LsfBand(0.0, 0.1, 1.0), LsfBand(0.1, 0.15, 0.8), LsfBand(0.16, 0.2, 0.6, True)],
         r"^band 2 starts at 0\.16 but band 1 stops at 0\.15 \(gap or overlap\)$"),
    ]
    for bands, message in cases:
        with pytest.raises(ValueError, match=message):
            check_lsf_bands(bands)


def test_lsf_factor_outside_the_table_names_its_top():
    """Bug caught: the top of the table misreported (the wrong band's edge, or 0). The
    Sirtex table ends at 20 % (Sirtex IFU: > 20 %, do not treat); 20 % itself is in it."""
    assert bsa_lsf_factor(0.20, SIRTEX) == 0.6
    with pytest.raises(ValueError, match=r"outside the manufacturer's reduction table "
                                         r"\(0 to 0\.2\)$"):
        bsa_lsf_factor(0.21, SIRTEX)
    with pytest.raises(ValueError, match=r"\(0 to 0\)$"):
        bsa_lsf_factor(0.05, [])


def test_bsa_activity_by_hand_and_its_guards():
    """Sirtex BSA method: A = (BSA - 0.2 + V_T / V_L) x V_perfused / V_L x factor.
    BSA 1.8 m2, liver 1000 mL of which 0 mL tumour (allowed), perfused 500 mL, factor 0.8:
    (1.8 - 0.2 + 0) x 0.5 x 0.8 = 0.64 GBq; all liver tumour (1000 mL, allowed): involvement
    1 -> (2.6) x 0.5 x 0.8 = 1.04 GBq. Bugs caught: 0 mL tumour or a fully involved liver
    refused, a liver of 0 mL accepted, the result's fields left out."""
    a = bsa_activity(1.8, 1000.0, 0.0, 500.0, 0.8)
    assert (a.bsa_m2, a.tumour_involvement, a.whole_liver_activity_gbq, a.perfused_fraction,
            a.lsf_factor) == (1.8, 0.0, pytest.approx(1.6), 0.5, 0.8)
    assert a.activity_gbq == pytest.approx(0.64)
    assert bsa_activity(1.8, 1000.0, 1000.0, 500.0, 0.8).activity_gbq == pytest.approx(1.04)
    assert bsa_activity(1.8, 0.5, 0.25, 0.5).tumour_involvement == 0.5   # small volumes
    assert bsa_activity(1.8, 1000.0, 0.5, 500.0).tumour_involvement == pytest.approx(5e-4)
    with pytest.raises(ValueError, match=r"^whole_liver_volume_ml must be > 0$"):
        bsa_activity(1.8, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match=r"^whole_liver_tumour_volume_ml must be within "
                                         r"\[0, whole_liver_volume_ml\]$"):
        bsa_activity(1.8, 1000.0, 1000.5, 500.0)


def test_planar_lsf_near_the_float_limit():
    """Bugs caught: a ratio that divides by the sum of the geometric means, which overflows
    near the float limit (the smaller-lung branch once did: LSF 0 instead of 0.4). Counts of
    1.5e308 (lung) and 1e308 (liver): the sum is inf; the ratio form gives 1 / (1 + 1/1.5)
    = 0.6, and 0.4 the other way round. Equal counts of 1.7e308: 0.5, not 0."""
    assert lsf_planar_geometric_mean(1.5e308, 1.5e308, 1e308, 1e308).lung_shunt_fraction == \
        pytest.approx(0.6, rel=1e-12)
    assert lsf_planar_geometric_mean(1e308, 1e308, 1.5e308, 1.5e308).lung_shunt_fraction == \
        pytest.approx(0.4, rel=1e-12)
    assert lsf_planar_geometric_mean(1.7e308, 1.7e308, 1.7e308, 1.7e308).lung_shunt_fraction \
        == 0.5


def test_criterion_holds_at_its_round_off_allowance():
    """Bug caught: '>=' turned to '>' at the allowance itself: a deviation of exactly
    0.2 x (1 - 1e-9) meets a 20 % criterion."""
    assert meets_criterion(0.2 * (1.0 - 1e-9), 0.2)


def test_swapped_counts_warning_above_half():
    """Bugs caught: the 50 % edge moved or turned ('above 50 %' excludes 50 % itself), the
    swapped LSF not 1 - LSF. GM lung 6, liver 4 -> LSF 0.6: warned, swapped 40.00 %;
    lung = liver -> 0.5: no warning."""
    from tareplanner.physics.lung_shunt import SWAPPED_COUNTS_LSF, swapped_counts_warning
    assert SWAPPED_COUNTS_LSF == 0.5
    warning = swapped_counts_warning(lsf_planar_geometric_mean(36, 1, 16, 1))
    assert warning["code"] == "lsf-above-50-percent"
    assert warning["message"] == ("LSF 60.00% is above 50%: most of the activity would reach "
                                  "the lungs; the lung and liver counts are likely swapped "
                                  "(swapped, the LSF is 40.00%); check which ROI is which "
                                  "before using it")
    assert swapped_counts_warning(lsf_planar_geometric_mean(1, 1, 1, 1)) is None
    assert swapped_counts_warning(lsf_planar_geometric_mean(1.0001, 1, 1, 1)) is not None


def test_organ_dose_criterion_and_reading_slips_at_their_edges():
    """10 CFR 35.3045(a)(3): a dose to an organ outside the site exceeding the expected dose
    by 0.5 Sv (Gy for beta) or more AND by 50 % or more. Bugs caught: either edge made
    exclusive; a reading slip of a zero, negative or
    infinite ratio, no slip known, or the tolerance edge made exclusive.
    By hand: expected 1 Gy, dose 1.5 Gy: excess 0.5 Gy = 0.5 Gy and = 50 % -> met (edges
    included); expected 10 Gy, dose 15 Gy: the 50 % edge itself."""
    from tareplanner.physics.administration import exceeds_organ_dose_criterion, likely_slip
    assert exceeds_organ_dose_criterion(1.5, 1.0, 0.5, 0.5)
    assert exceeds_organ_dose_criterion(15.0, 10.0, 0.5, 0.5)
    assert exceeds_organ_dose_criterion(0.5, 0.0, 0.5, 0.5)        # nothing expected: 0.5 Gy
    assert not exceeds_organ_dose_criterion(1.49, 1.0, 0.5, 0.5)
    slips = [(1000.0, "MBq for GBq"), (37.0, "mCi for GBq")]
    assert likely_slip(1000.0, slips, 0.05) == (1000.0, "MBq for GBq")
    for ratio in (0.0, -1000.0, float("inf"), float("nan")):
        assert likely_slip(ratio, slips, 0.05) is None
    assert likely_slip(1000.0, [], 0.05) is None
    # either side of the 5 % tolerance
    assert likely_slip(37.0 * 1.049, slips, 0.05) == (37.0, "mCi for GBq")
    assert likely_slip(37.0 / 1.049, slips, 0.05) == (37.0, "mCi for GBq")
    assert likely_slip(37.0 * 1.051, slips, 0.05) is None
