"""Voxel dosimetry physics: kernels against Monte Carlo tables, energy conservation, LDM,
uniform sphere, density scaling, DVH of an analytic phantom, BED."""


import numpy as np
import pytest

from tareplanner.kernel_data import LANCONELLI_SIZES_MM, lanconelli_voxel_s_values, point_kernel
from tareplanner.physics.dvh import bed_gy, cumulative_dvh, dose_indices
from tareplanner.physics.kernels import voxel_kernel
from tareplanner.physics.voxel_dose import (density_from_hu, energy_fractions, kernel_dose_gy,
                                            ldm_dose_gy)

CF = 49.67


@pytest.mark.parametrize("size_mm", LANCONELLI_SIZES_MM)
def test_kernel_from_point_kernel_matches_lanconelli(size_mm):
    # Independent Monte Carlo voxel S-values (Lanconelli et al. 2012, soft tissue 1.04 g/cm3).
    ref = lanconelli_voxel_s_values(size_mm)
    ours = voxel_kernel(point_kernel("Y-90"), (size_mm,) * 3, 1.04, radius_voxels=5,
                        normalise=False).s_values_mgy_per_mbq_s()
    c = 5
    assert ours[c, c, c] == pytest.approx(ref[c, c, c], rel=0.01)          # self-dose
    tol = 0.03 if size_mm <= 5 else 0.08
    for offset in [(c, c, c + 1), (c, c + 1, c + 1)]:                       # face, edge
        assert ours[offset] == pytest.approx(ref[offset], rel=tol)


def test_kernel_normalisation_and_anisotropy():
    pk = point_kernel("Y-90")
    assert pk.total_energy_mev == pytest.approx(0.930, abs=0.001)  # Graves 2019: all beta energy
    k = voxel_kernel(pk, (2.0, 2.0, 4.0), 1.04)
    assert k.energy_mev() == pytest.approx(pk.total_energy_mev, rel=1e-9)
    f = energy_fractions(k)
    assert f.sum() == pytest.approx(1.0, rel=1e-6)
    assert f.shape[0] < f.shape[1] == f.shape[2]          # fewer voxels along the 4 mm axis
    np.testing.assert_allclose(f, f[::-1, ::-1, ::-1], rtol=1e-6)


def _sphere(shape, radius_vox):
    z, y, x = np.indices(shape) - (np.array(shape)[:, None, None, None] - 1) / 2
    return np.sqrt(x ** 2 + y ** 2 + z ** 2) <= radius_vox


def test_energy_is_conserved_in_a_large_uniform_medium():
    spacing = 4.42
    voxel_ml = spacing ** 3 / 1000
    fractions = energy_fractions(voxel_kernel(point_kernel("Y-90"), (spacing,) * 3, 1.04))
    activity = np.zeros((64, 64, 64), np.float32)
    activity[20:44, 18:40, 22:46] = 0.001
    activity[30:34, 30:34, 30:34] = 0.02
    dose = kernel_dose_gy(activity, CF, 1.04, voxel_ml, fractions)
    deposited = float((dose.astype(np.float64) * 1.04 * voxel_ml / 1000).sum())
    assert deposited == pytest.approx(float(activity.sum(dtype=np.float64)) * CF, rel=1e-3)


def test_uniform_sphere_ldm_exact_and_kernel_fall_off():
    spacing = 2.0
    voxel_ml = spacing ** 3 / 1000
    sphere = _sphere((81, 81, 81), 30)                      # 60 mm radius
    total_gbq = 2.0
    activity = np.where(sphere, total_gbq / sphere.sum(), 0).astype(np.float32)
    ldm = ldm_dose_gy(activity, CF, 1.03, voxel_ml)
    expected = total_gbq * CF / (1.03 * sphere.sum() * voxel_ml / 1000)   # D = A CF / M
    np.testing.assert_allclose(ldm[sphere], expected, rtol=1e-5)
    fractions = energy_fractions(voxel_kernel(point_kernel("Y-90"), (spacing,) * 3, 1.03))
    kern = kernel_dose_gy(activity, CF, 1.03, voxel_ml, fractions)
    assert kern[40, 40, 40] == pytest.approx(expected, rel=0.005)  # deep inside: as LDM
    # on a (locally flat) surface half of the dose of the interior; nothing beyond ~11 mm
    surface = kern[40, 40, 40 + 30]
    assert 0.4 * expected < surface < 0.65 * expected
    assert kern[40, 40, 40 + 30 + 6] < 0.01 * expected
    # the mean over the sphere drops below LDM by the energy that escapes (a few %)
    assert 0.95 * expected < kern[sphere].mean() < expected


def test_density_scaling_and_lung_ldm():
    spacing = 4.0
    voxel_ml = spacing ** 3 / 1000
    fractions = energy_fractions(voxel_kernel(point_kernel("Y-90"), (spacing,) * 3, 1.04))
    activity = np.full((40, 40, 40), 1e-3, np.float32)
    dense = kernel_dose_gy(activity, CF, 2.08, voxel_ml, fractions)
    normal = kernel_dose_gy(activity, CF, 1.04, voxel_ml, fractions)
    assert dense[20, 20, 20] == pytest.approx(normal[20, 20, 20] / 2, rel=1e-4)
    lung = np.zeros(activity.shape, bool)
    lung[:, :, :20] = True
    density = np.where(lung, 0.28, 1.04).astype(np.float32)
    mixed = kernel_dose_gy(activity, CF, density, voxel_ml, fractions, lung_mask=lung)
    # deep in the lung: local deposition with lung density
    assert mixed[20, 20, 5] == pytest.approx(1e-3 * CF / (0.28 * voxel_ml / 1000), rel=1e-4)
    assert mixed[20, 20, 35] == pytest.approx(normal[20, 20, 35], rel=1e-4)


def test_hu_to_density():
    # packaged curve (data/hu_density.json): (HU + 1000)/1000 up to water (Kao 2014), floor
    # 0.001; 1000 HU on Schneider 2000's bone line 101 HU 1.0762 -> 1600 HU 1.9642:
    # 1.0762 + 899/1499 * 0.888 = 1.60876 g/mL
    from tareplanner.density_curves import default_curve

    np.testing.assert_allclose(density_from_hu(np.array([-1000, -720, 0, 1000]),
                                               default_curve()),
                               [0.001, 0.28, 1.0, 1.60876], atol=1e-5)


def test_dvh_of_an_analytic_phantom():
    # doses uniformly spread over 0..100 Gy: V(D) = 1 - D/100, D_x = 100 - x, mean 50 Gy
    dose = np.linspace(0, 100, 100001)
    w = np.ones_like(dose)
    idx = dose_indices(dose, w, voxel_ml=0.001, v_thresholds_gy=(40, 100))
    assert idx.mean_gy == pytest.approx(50, abs=1e-6)
    assert idx.median_gy == pytest.approx(50, abs=0.01)
    assert idx.d_gy["D70"] == pytest.approx(30, abs=0.01)
    assert idx.d_gy["D95"] == pytest.approx(5, abs=0.01)
    assert idx.v_percent["V40"] == pytest.approx(60, abs=0.01)
    assert idx.volume_ml == pytest.approx(100.001)
    edges, volume = cumulative_dvh(dose, w, bin_gy=1.0)
    np.testing.assert_allclose(volume[:101], 100 - edges[:101], atol=0.01)
    # partial voxels: the hot half counted at half weight moves the mean to 100/3 * ...
    weights = np.where(dose > 50, 0.5, 1.0)
    half = dose_indices(dose, weights, voxel_ml=0.001)
    expected_mean = (25 * 1.0 * 50 + 75 * 0.5 * 50) / (50 + 25)   # by hand: 41.67 Gy
    assert half.mean_gy == pytest.approx(expected_mean, rel=1e-3)
    assert half.volume_ml == pytest.approx(75.0, rel=1e-3)


def test_bed_by_hand():
    # Y-90 (T = 64.1 h), repair half-time 1.5 h, alpha/beta 10 Gy, D = 100 Gy:
    # lambda = 0.010813/h, mu = 0.462098/h, lambda/(mu+lambda) = 0.022870,
    # BED = 100 * (1 + 100 * 0.022870 / 10) = 122.87 Gy
    assert bed_gy(100.0, 64.1, 1.5, 10.0) == pytest.approx(122.87, abs=0.01)
    # long repair (T_rep -> infinity, mu -> 0): BED = D (1 + D / (alpha/beta)), the single-fraction limit
    assert bed_gy(10.0, 64.1, 1e9, 10.0) == pytest.approx(20.0, rel=1e-6)


def test_lp_planner_on_a_hand_problem():
    # two positions, two tumours; tumour 1 fed only by position 1, tumour 2 only by 2;
    # normal-liver limits 40 Gy at 10 Gy/GBq each; tumour 1 gets 50 Gy/GBq, tumour 2 30 Gy/GBq.
    # Goals 150 Gy: position 1 reaches it at 3 GBq (normal 30 Gy); position 2 is capped at
    # 4 GBq (120 Gy, t = 0.8). The least activity for position 1 is exactly 3 GBq.
    from tareplanner.physics.voxel_planning import solve_voxel_plan

    r = solve_voxel_plan(np.array([[50.0, 0.0], [0.0, 30.0]]), np.array([150.0, 150.0]),
                         np.array([[10.0, 0.0], [0.0, 10.0]]), np.array([40.0, 40.0]),
                         ["nl1", "nl2"])
    np.testing.assert_allclose(r.activities_gbq, [3.0, 4.0], rtol=1e-6)
    assert r.goal_fraction == pytest.approx(0.8)
    np.testing.assert_allclose(r.tumour_goal_fractions, [1.0, 0.8], rtol=1e-6)
    assert r.binding == ("nl2",)


def test_gpu_path_is_optional_and_says_what_it_needs(monkeypatch):
    # Without CuPy the default install still works and the GPU path explains itself; the
    # GPU agreement (< 1e-6 relative) is measured by Testing/benchmarks/bench_gpu_convolution.py.
    import importlib.util

    from tareplanner.physics import gpu

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "cupy" else real(name, *a))
    assert not gpu.cupy_available()
    with pytest.raises(RuntimeError, match=r"tareplanner\[gpu\]"):
        gpu.gpu_convolver()


def test_custom_fft_convolution_equals_scipy():
    from scipy import signal

    from tareplanner.physics.voxel_dose import convolve_fft

    rng = np.random.default_rng(5)
    values = rng.random((23, 31, 17)).astype(np.float32)
    kernel = rng.random((7, 5, 9)).astype(np.float32)
    np.testing.assert_allclose(convolve_fft(values, kernel),
                               signal.fftconvolve(values, kernel, mode="same"), rtol=1e-4,
                               atol=1e-5)


@pytest.mark.parametrize("nuclide", ["Sr-89", "Re-188"])
@pytest.mark.parametrize("size_mm", LANCONELLI_SIZES_MM)
def test_range_scaled_kernels_match_sr89_and_re188(nuclide, size_mm):
    # The Ho-166 kernel is the Y-90 DPK range-scaled with the ICRP-107 spectrum. The same
    # method applied to Sr-89 (mean beta 0.58 MeV) and Re-188 (0.76 MeV), which bracket Ho-166
    # (0.67 MeV), must reproduce their independent Monte Carlo voxel S-values (Lanconelli 2012).
    ref = lanconelli_voxel_s_values(size_mm, nuclide)
    ours = voxel_kernel(point_kernel(nuclide), (size_mm,) * 3, 1.04, radius_voxels=5,
                        normalise=False).s_values_mgy_per_mbq_s()
    c = 5
    assert ours[c, c, c] == pytest.approx(ref[c, c, c], rel=0.025)           # self-dose
    if size_mm <= 6.0:
        assert ours[c, c, c + 1] == pytest.approx(ref[c, c, c + 1], rel=0.08)  # face


def test_ho166_kernel_lies_between_sr89_and_re188():
    from tareplanner.kernel_data import beta_spectrum

    ranges = {n: beta_spectrum(n).energy_weighted_range_g_per_cm2
              for n in ("Sr-89", "Ho-166", "Re-188", "Y-90")}
    assert ranges["Sr-89"] < ranges["Ho-166"] < ranges["Re-188"] < ranges["Y-90"]
    # ICRP-107 mean beta energy of Ho-166: 0.665 MeV (nuclides.json)
    assert beta_spectrum("Ho-166").mean_energy_mev == pytest.approx(0.665, abs=0.002)
    # the fraction of the energy absorbed in the source voxel falls with the range
    absorbed = {}
    for n in ("Sr-89", "Ho-166", "Re-188", "Y-90"):
        f = energy_fractions(voxel_kernel(point_kernel(n), (4.42,) * 3, 1.04))
        c = f.shape[0] // 2
        absorbed[n] = f[c, c, c]
    assert absorbed["Sr-89"] > absorbed["Ho-166"] > absorbed["Re-188"] > absorbed["Y-90"]


def test_katz_penfold_range():
    from tareplanner.physics.kernels import csda_range_g_per_cm2

    # Katz & Penfold 1952: R(1 MeV) = 0.412 g/cm2; R(3 MeV) = 0.530*3 - 0.106 = 1.484 g/cm2
    assert float(csda_range_g_per_cm2(1.0)) == pytest.approx(0.412)
    assert float(csda_range_g_per_cm2(3.0)) == pytest.approx(1.484)


def test_lp_planner_cap_unused_position_and_limit_count():
    """Bug caught: the activity cap other than the stated 100 GBq default, a position that
    helps no tumour given activity (a lower bound above 0), the limits looped over the
    positions instead of the limits. By hand: one tumour fed by position 1 at 1 Gy/GBq
    with a 1000 Gy goal: capped at 100 GBq, t = 0.1; position 2 feeds nothing: 0 GBq; one
    limit (lungs, 0.001 Gy/GBq from position 1, 1 Gy: 1000 GBq, not reached)."""
    from tareplanner.physics.voxel_planning import solve_voxel_plan

    r = solve_voxel_plan(np.array([[1.0, 0.0]]), np.array([1000.0]),
                         np.array([[0.001, 0.0]]), np.array([1.0]), ["lungs"])
    np.testing.assert_allclose(r.activities_gbq, [100.0, 0.0], atol=1e-7)
    assert r.goal_fraction == pytest.approx(0.1) and r.binding == ()


def test_lp_planner_keeps_the_worst_tumour_and_stops_at_the_goal():
    """Bug caught: the second stage trading the worst tumour's fraction for a larger sum
    (the lowest fraction not kept), the first stage letting a fraction exceed 1 (a tumour
    pushed beyond its goal: the second stage then has no solution).

    Two positions share one limit A1 + A2 <= 10 GBq; T1 (goal 100 Gy) gets 10 Gy/GBq from
    position 1, T2 (goal 50 Gy) 10 Gy/GBq from position 2. Equal fractions: A1 / 10 = A2 /
    5, A1 + A2 = 10 -> A1 = 6.667, A2 = 3.333, t = 0.667 (giving T2 more would raise the
    sum but lower T1). One tumour at 50 Gy/GBq, goal 150 Gy, limit 10 Gy/GBq <= 40 Gy:
    the goal is met at 3 GBq, not pushed to 4 GBq."""
    from tareplanner.physics.voxel_planning import solve_voxel_plan

    r = solve_voxel_plan(np.array([[10.0, 0.0], [0.0, 10.0]]), np.array([100.0, 50.0]),
                         np.array([[1.0, 1.0]]), np.array([10.0]), ["shared"])
    np.testing.assert_allclose(r.activities_gbq, [20 / 3, 10 / 3], rtol=1e-6)
    assert r.goal_fraction == pytest.approx(2 / 3, rel=1e-6)
    assert r.binding == ("shared",)
    one = solve_voxel_plan(np.array([[50.0]]), np.array([150.0]), np.array([[10.0]]),
                           np.array([40.0]), ["normal"])
    np.testing.assert_allclose(one.activities_gbq, [3.0], rtol=1e-6)
    assert one.goal_fraction == pytest.approx(1.0) and one.binding == ()


def test_lp_planner_binding_tolerance_and_failure():
    """Bug caught: the binding tolerance (1e-6 of the limit, at least 1e-6 Gy) applied as
    1e-6 / limit or with a floor of 2e-6 Gy; an impossible program (a negative limit)
    failing without saying so.

    One position, goal unreachable; limit a: 0.1 Gy/GBq <= 0.5 Gy binds at 5 GBq. Limit b
    on the same dose at 0.5 + 1.5e-6 Gy: slack 1.5e-6 > 1e-6 Gy -> not binding. Limit c at
    40 Gy on 8 Gy/GBq binds at the same 5 GBq; limit d on the same dose at 40.00002 Gy:
    slack 2e-5 <= 4e-5 -> binding."""
    from tareplanner.physics.voxel_planning import solve_voxel_plan

    r = solve_voxel_plan(np.array([[10.0]]), np.array([1000.0]),
                         np.array([[0.1], [0.1], [8.0], [8.0]]),
                         np.array([0.5, 0.5 + 1.5e-6, 40.0, 40.00002]), ["a", "b", "c", "d"])
    np.testing.assert_allclose(r.activities_gbq, [5.0], rtol=1e-9)
    assert r.binding == ("a", "c", "d")
    with pytest.raises(ValueError) as info:
        solve_voxel_plan(np.array([[10.0]]), np.array([100.0]), np.array([[1.0]]),
                         np.array([-1.0]), ["x"])
    assert str(info.value).startswith("voxel plan: the linear program failed (")


def test_the_lowest_fraction_is_the_worst_tumour_not_the_last():
    """Bug: the lowest goal fraction read from the last tumour's fraction (``[-2]`` for
    ``[-1]``). One position, a normal-liver limit of 50 Gy at 1 Gy/GBq: A = 50 GBq. Tumour 1
    gets 1 Gy/GBq (50 of its 100 Gy: fraction 0.5), tumour 2 (the last) 10 Gy/GBq (500 Gy:
    fraction capped at 1). The lowest fraction is 0.5, tumour 1's, by hand."""
    from tareplanner.physics.voxel_planning import solve_voxel_plan

    r = solve_voxel_plan(np.array([[1.0], [10.0]]), np.array([100.0, 100.0]),
                         np.array([[1.0]]), np.array([50.0]), ["normal"])
    assert r.goal_fraction == pytest.approx(0.5, abs=1e-7)
    assert r.activities_gbq == pytest.approx([50.0], abs=1e-6)
    assert r.tumour_goal_fractions == pytest.approx([0.5, 1.0], abs=1e-7)
    assert r.binding == ("normal",)
