"""Single-compartment (MIRD), partition and lung dose against hand calculations."""

import pytest

from tareplanner.physics.compartments import dose_per_activity, lung_dose_per_activity


def test_single_compartment_matches_therasphere_ifu_formula():
    # TheraSphere IFU: A [GBq] = D [Gy] * M [kg] / 50 (CF = 50 Gy kg/GBq, LSF and R = 0).
    # 120 Gy to 1.2 kg -> 2.88 GBq.
    d = dose_per_activity("single-compartment", 50.0, 0.0, 0.0, 1.2, [], None)
    assert 120.0 / d.perfused_gy_per_gbq == pytest.approx(2.88)


def test_lsf_and_residual_reduce_liver_dose_in_the_right_direction():
    # D = CF * A * (1 - LSF) * (1 - R) / M: 49.67 * 2 * 0.9 * 0.97 / 1.5 = 57.82 Gy (by hand).
    d = dose_per_activity("single-compartment", 49.67, 0.10, 0.03, 1.5, [], None)
    assert 2.0 * d.perfused_gy_per_gbq == pytest.approx(57.816, abs=1e-3)
    # Inverse: the activity for a dose is *larger* with a shunt, A = D M / (CF (1 - LSF)).
    no_shunt = dose_per_activity("single-compartment", 49.67, 0.0, 0.0, 1.5, [], None)
    assert 100 / d.perfused_gy_per_gbq > 100 / no_shunt.perfused_gy_per_gbq
    assert (100 / d.perfused_gy_per_gbq) == pytest.approx(100 * 1.5 / (49.67 * 0.9 * 0.97))


def test_partition_model_issue_example_by_hand():
    # Case of the issue: 900 mL normal, 120 mL tumour TNR 3.1, density 1.03, LSF 6 %, CF 49.67.
    # M_N = 0.927 kg, M_T = 0.1236 kg; denominator = 0.927 + 3.1 * 0.1236 = 1.31016 kg.
    # D_N/A = 49.67 * 0.94 / 1.31016 = 35.637 Gy/GBq; D_T/A = 110.47 Gy/GBq;
    # A for 250 Gy tumour = 2.2630 GBq.
    d = dose_per_activity("partition", 49.67, 0.06, 0.0, 0.927, [0.1236], [3.1])
    assert d.normal_gy_per_gbq == pytest.approx(35.637, abs=1e-3)
    assert d.tumour_gy_per_gbq[0] == pytest.approx(110.47, abs=1e-2)
    assert 250 / d.tumour_gy_per_gbq[0] == pytest.approx(2.2630, abs=1e-4)
    # perfused mean dose is the energy over the whole perfused mass, whatever the TNR
    assert d.perfused_gy_per_gbq == pytest.approx(49.67 * 0.94 / (0.927 + 0.1236))


def test_partition_energy_is_conserved():
    # sum of dose * mass over compartments = energy deposited in the liver
    masses, tnrs = [0.05, 0.2], [4.0, 1.5]
    d = dose_per_activity("partition", 49.67, 0.05, 0.02, 1.0, masses, tnrs)
    energy = d.normal_gy_per_gbq * 1.0 + sum(t * m for t, m in zip(d.tumour_gy_per_gbq, masses))
    assert energy == pytest.approx(49.67 * 0.95 * 0.98, rel=1e-12)


def test_partition_with_tnr_one_equals_single_compartment():
    part = dose_per_activity("partition", 49.67, 0.05, 0.0, 1.0, [0.3], [1.0])
    single = dose_per_activity("single-compartment", 49.67, 0.05, 0.0, 1.0, [0.3], None)
    assert part.normal_gy_per_gbq == pytest.approx(single.perfused_gy_per_gbq)


def test_lung_dose_by_hand():
    # D_L = CF * LSF * A / M_lung: 49.67 * 0.1 * 3 / 1.0 = 14.90 Gy
    assert 3 * lung_dose_per_activity(49.67, 0.10, 0.0, 1.0) == pytest.approx(14.901)
    # lighter lungs (0.8 kg) receive proportionally more
    assert lung_dose_per_activity(49.67, 0.1, 0.0, 0.8) == pytest.approx(49.67 * 0.1 / 0.8)


def test_bad_model_inputs_are_rejected():
    with pytest.raises(ValueError, match="model"):
        dose_per_activity("voxel", 49.67, 0, 0, 1.0, [], None)
    with pytest.raises(ValueError, match="TNR"):
        dose_per_activity("partition", 49.67, 0, 0, 1.0, [0.1], [0.0])
    with pytest.raises(ValueError, match="lung_mass_kg"):
        lung_dose_per_activity(49.67, 0.1, 0, 0.0)
