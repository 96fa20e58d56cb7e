"""SIR-Spheres body-surface-area method (Sirtex IFU) and DuBois BSA."""

import pytest

from tareplanner import catalogue
from tareplanner.physics.bsa import bsa_activity, bsa_lsf_factor, dubois_bsa_m2


def test_dubois_matches_the_original_constant_form():
    # DuBois & DuBois 1916: BSA = 0.007184 * W^0.425 * H_cm^0.725. 172 cm, 80 kg -> 1.9317 m2
    # (hand: 172^0.725 = 41.757, 80^0.425 = 6.4391, 0.007184 * 41.757 * 6.4391 = 1.9317).
    assert dubois_bsa_m2(172, 80) == pytest.approx(0.007184 * 80 ** 0.425 * 172 ** 0.725,
                                                   rel=2e-4)
    assert dubois_bsa_m2(172, 80) == pytest.approx(1.9317, abs=2e-4)


def test_whole_liver_bsa_activity():
    # Sirtex IFU formula, hand computed: BSA 2.0 m2, 25 % tumour involvement
    # -> A = 2.0 - 0.2 + 0.25 = 2.05 GBq.
    result = bsa_activity(2.0, whole_liver_volume_ml=1600, whole_liver_tumour_volume_ml=400,
                          perfused_volume_ml=1600)
    assert result.tumour_involvement == pytest.approx(0.25)
    assert result.activity_gbq == pytest.approx(2.05)


def test_lobar_bsa_scales_with_perfused_fraction_and_lsf():
    # right lobe 60 % of the liver, LSF band 15-20 %: 2.05 * 0.6 * 0.6 = 0.738 GBq
    result = bsa_activity(2.0, 1600, 400, 960, lsf_factor=0.6)
    assert result.activity_gbq == pytest.approx(0.738)


@pytest.mark.parametrize("lsf, factor", [(0.0, 1.0), (0.099, 1.0), (0.10, 0.8), (0.149, 0.8),
                                         (0.15, 0.6), (0.199, 0.6)])
def test_sirtex_lsf_reductions(lsf, factor):
    # Sirtex IFU: < 10 % none, 10-15 % reduce by 20 %, 15-20 % reduce by 40 %.
    bands = catalogue.product("sir-spheres").bsa_lsf_bands
    assert bsa_lsf_factor(lsf, bands) == factor


def test_typical_bsa_activities_are_in_the_published_range():
    # Lam JVIR 2014; Grosser JVIR 2015: typical BSA activities 0.85-2.7 GBq.
    for height, weight, involvement in [(160, 55, 0.05), (180, 95, 0.3), (172, 80, 0.1)]:
        bsa = dubois_bsa_m2(height, weight)
        a = bsa_activity(bsa, 1500, 1500 * involvement, 1500).activity_gbq
        assert 0.85 <= a <= 2.7
