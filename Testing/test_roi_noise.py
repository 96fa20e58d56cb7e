"""The reconstruction noise of region means (physics/roi_noise.py): the fitted law, its
propagation through the partial-volume correction, and the ratios and sums taken from it.

Expected values come from outside the code under test: the law's values and two-point slopes
by hand, Python's statistics module, matrix inverses written out for 2 x 2, and Monte Carlo
draws solved with numpy.linalg.solve (the correction's own linear algebra is not used)."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from tareplanner.physics.roi_noise import (RoiNoiseModel, coefficient_of_variation,
                                           fit_roi_noise, gtm_covariance, linear_sd,
                                           ratio_relative_sd)


def test_fit_gives_back_an_exact_power_law():
    """Bug caught: the exponent's sign flipped, or log(u) fitted against V instead of
    log V (the law would then not go through points made from it)."""
    v = [0.5236, 1.1503, 2.5724, 5.5753, 11.4940, 26.5218]     # the IEC spheres' volumes
    u = [0.15 * x ** -0.3 for x in v]
    a, b = fit_roi_noise(v, u)
    assert a == pytest.approx(0.15, rel=1e-9) and b == pytest.approx(0.3, rel=1e-9)


def test_fit_through_two_points_by_hand():
    """Bug caught: a least-squares line that is not the line through two points.
    By hand: b = ln(0.2 / 0.1) / ln(8 / 1) = 1/3; a = 0.2 (the value at 1 mL)."""
    a, b = fit_roi_noise([1.0, 8.0], [0.2, 0.1])
    assert b == pytest.approx(1.0 / 3.0, rel=1e-12) and a == pytest.approx(0.2, rel=1e-12)


@pytest.mark.parametrize("volumes, sds", [
    ([1.0], [0.1]),                          # one size
    ([1.0, 2.0], [0.1, float("nan")]),       # one usable
    ([1.0, 2.0], [0.1, 0.0]),                # a zero CV has no logarithm
    ([-1.0, 2.0], [0.1, 0.1]),
])
def test_fit_refuses_fewer_than_two_usable_sizes(volumes, sds):
    """Bug caught: a law fitted through one point (any slope) or through log(0)."""
    with pytest.raises(ValueError, match="relative_sds: got 1 usable sizes"):
        fit_roi_noise(volumes, sds)


def test_the_law_by_hand():
    """Bug caught: the total's ratio inverted (more counts must mean less noise) or not
    square-rooted. By hand: 0.2 x 8^-(1/3) x sqrt(1e6 / 4e6) = 0.2 x 0.5 x 0.5 = 0.05."""
    model = RoiNoiseModel(0.2, 1.0 / 3.0, 1e6, (0.5, 26.5))
    assert model.relative_sd(8.0, 4e6) == pytest.approx(0.05, rel=1e-12)
    assert model.relative_sd([1.0, 8.0], 1e6) == pytest.approx([0.2, 0.1], rel=1e-12)


@pytest.mark.parametrize("volume, total, field", [
    (1.0, 0.0, "total"), (1.0, float("nan"), "total"), (1.0, -5.0, "total"),
    (0.0, 1e6, "volume_ml"), (float("inf"), 1e6, "volume_ml"), (-2.0, 1e6, "volume_ml"),
])
def test_the_law_refuses_impossible_inputs(volume, total, field):
    """Bug caught: a NaN or infinite noise from an empty image or a zero volume."""
    with pytest.raises(ValueError, match=f"^{field}: got"):
        RoiNoiseModel(0.2, 0.3, 1e6, (0.5, 26.5)).relative_sd(volume, total)


def test_coefficient_of_variation_is_the_sample_one():
    """Bug caught: the population SD (n) instead of the sample SD (n - 1), or the SD not
    divided by the mean. Expected: Python's statistics module."""
    means = [98.0, 103.0, 101.0, 95.0, 104.0, 99.5]
    assert coefficient_of_variation(means) == pytest.approx(
        statistics.stdev(means) / statistics.mean(means), rel=1e-12)


@pytest.mark.parametrize("means", [[5.0], [1.0, float("nan")], [-1.0, -2.0], [1.0, -1.0]])
def test_coefficient_of_variation_refuses_what_has_none(means):
    """Bug caught: a CV from one region, from a NaN, or of a background with no counts."""
    with pytest.raises(ValueError, match="^means:"):
        coefficient_of_variation(means)


def test_covariance_of_a_2x2_correction_by_hand():
    """Bug caught: W^-1 diag(s^2) W^-T with W transposed, or the SDs not squared.
    W = [[0.8, 0.1], [0.2, 0.9]]: det = 0.70, W^-1 = [[0.9, -0.1], [-0.2, 0.8]] / 0.70;
    with s = (2, 3): var_1 = (0.81 x 4 + 0.01 x 9) / 0.49 = 3.33 / 0.49,
    var_2 = (0.04 x 4 + 0.64 x 9) / 0.49 = 5.92 / 0.49,
    cov = (0.9 x -0.2 x 4 + -0.1 x 0.8 x 9) / 0.49 = -1.44 / 0.49."""
    w = np.array([[0.8, 0.1], [0.2, 0.9]])
    c = gtm_covariance(w, [2.0, 3.0])
    assert c[0, 0] == pytest.approx(3.33 / 0.49, rel=1e-12)
    assert c[1, 1] == pytest.approx(5.92 / 0.49, rel=1e-12)
    assert c[0, 1] == pytest.approx(-1.44 / 0.49, rel=1e-12)
    assert c[1, 0] == pytest.approx(c[0, 1], rel=1e-12)


def test_covariance_against_monte_carlo_draws():
    """Bug caught: any error in the propagation. 40,000 noisy measurements of a 4-region
    scene, each corrected with numpy.linalg.solve: their sample covariance agrees with the
    propagated one within the draws' own scatter (3 % on the variances)."""
    rng = np.random.default_rng(7)
    w = np.array([[0.62, 0.10, 0.05, 0.01], [0.20, 0.85, 0.08, 0.02],
                  [0.10, 0.04, 0.80, 0.03], [0.08, 0.01, 0.07, 0.94]])
    truth = np.array([300.0, 120.0, 90.0, 5.0])
    sd = np.array([18.0, 4.0, 3.5, 0.4])
    draws = (w @ truth) + rng.standard_normal((40000, 4)) * sd
    corrected = np.linalg.solve(w, draws.T).T
    sample = np.cov(corrected, rowvar=False)
    propagated = gtm_covariance(w, sd)
    assert np.diag(propagated) == pytest.approx(np.diag(sample), rel=0.03)
    assert propagated[0, 1] == pytest.approx(sample[0, 1], rel=0.08)


def test_covariance_leaves_out_regions_with_no_voxel():
    """Bug caught: a region with no voxel (zero column) making the whole matrix NaN or
    singular. The 1 x 1 rest by hand: 1 / 0.5^2 x 2^2 = 16."""
    w = np.array([[0.5, 0.0], [0.0, 0.0]])
    c = gtm_covariance(w, [2.0, 1.0])
    assert c[0, 0] == pytest.approx(16.0) and np.isnan(c[1, 1]) and np.isnan(c[0, 1])


def test_covariance_refuses_mismatched_shapes():
    """Bug caught: SDs of another region list silently broadcast."""
    with pytest.raises(ValueError, match="w, measured_sd: got shapes"):
        gtm_covariance(np.eye(3), [1.0, 2.0])


def test_ratio_sd_by_hand():
    """Bug caught: the covariance term's sign, or relative variances not divided by the
    squared means. Independent: sqrt(0.1^2 + 0.05^2); fully correlated with equal relative
    SDs: 0 (the ratio does not move)."""
    means = np.array([200.0, 100.0])
    independent = np.diag([(0.1 * 200) ** 2, (0.05 * 100) ** 2])
    assert ratio_relative_sd(means, independent, 0, 1) == pytest.approx(
        math.hypot(0.1, 0.05), rel=1e-12)
    correlated = np.array([[400.0, 200.0], [200.0, 100.0]])     # sd 20 and 10, rho = 1
    assert ratio_relative_sd(means, correlated, 0, 1) == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(ratio_relative_sd(np.array([200.0, 0.0]), independent, 0, 1))


def test_linear_sd_by_hand():
    """Bug caught: g^T C g with g unsquared, or regions with NaN covariance spoiling it.
    g = (2, 1), C = [[4, 1], [1, 9]]: 4 x 4 + 2 x 2 x 1 x 1 + 9 = 29."""
    c = np.array([[4.0, 1.0, np.nan], [1.0, 9.0, np.nan], [np.nan, np.nan, np.nan]])
    assert linear_sd([2.0, 1.0, 0.0], c) == pytest.approx(math.sqrt(29.0), rel=1e-12)
    assert linear_sd([0.0, 0.0, 0.0], c) == 0.0


def test_beyond_the_largest_sphere_the_noise_falls_as_one_over_root_volume():
    """Bug caught: the fitted (shallow) law extrapolated to a liver, or the square root's
    branch applied inside the measured range. By hand: u(26.5) = 0.2 x 26.5^-0.25; at
    4 x 26.5 mL half of it; at 10 mL (inside) 0.2 x 10^-0.25."""
    model = RoiNoiseModel(0.2, 0.25, 1e6, (0.5, 26.5))
    at_largest = 0.2 * 26.5 ** -0.25
    assert model.relative_sd(26.5, 1e6) == pytest.approx(at_largest, rel=1e-12)
    assert model.relative_sd(4 * 26.5, 1e6) == pytest.approx(at_largest / 2, rel=1e-12)
    assert model.relative_sd(10.0, 1e6) == pytest.approx(0.2 * 10 ** -0.25, rel=1e-12)
    assert model.relative_sd(0.25, 1e6) == pytest.approx(0.2 * 0.25 ** -0.25, rel=1e-12)


def test_messages_name_what_is_allowed():
    """Bug caught: a refusal that no longer says what is allowed."""
    with pytest.raises(ValueError) as fit:
        fit_roi_noise([1.0], [0.1])
    assert str(fit.value) == ("relative_sds: got 1 usable sizes; allowed: two or more sizes "
                              "with a finite relative SD > 0")
    with pytest.raises(ValueError) as cov:
        gtm_covariance(np.eye(2), [1.0])
    assert str(cov.value) == ("w, measured_sd: got shapes (2, 2) and (1,); allowed: (R, R) "
                              "and (R,)")


def test_edges_just_inside_what_is_allowed():
    """Bug caught: limits moved from 0 to 1 or from 2 to 3 (a total or a background below 1,
    two background regions, a zero volume left out of the fit rather than breaking it)."""
    model = RoiNoiseModel(0.2, 0.5, 1.0, (0.5, 26.5))
    assert model.relative_sd(4.0, 0.25) == pytest.approx(0.2 * 0.5 * 2.0, rel=1e-12)
    assert coefficient_of_variation([0.5, 0.7]) == pytest.approx(
        statistics.stdev([0.5, 0.7]) / 0.6, rel=1e-12)
    a, b = fit_roi_noise([0.0, 1.0, 8.0], [0.3, 0.2, 0.1])   # the 0 mL size is left out
    assert b == pytest.approx(1.0 / 3.0, rel=1e-12) and a == pytest.approx(0.2, rel=1e-12)


def test_ratio_with_partial_correlation_and_small_means():
    """Bug caught: the covariance term's factor or division changed (a partial correlation
    is the case where it shows), or means between 0 and 1 refused. By hand: var = 400/200^2 +
    100/100^2 - 2 x 100 / (200 x 100) = 0.01; means 0.5 and 0.25 with the same relative
    covariances give the same 0.1; a zero mean gives NaN."""
    c = np.array([[400.0, 100.0], [100.0, 100.0]])
    assert ratio_relative_sd(np.array([200.0, 100.0]), c, 0, 1) == pytest.approx(0.1)
    small = c * (0.5 / 200.0) ** 2
    small[0, 1] = small[1, 0] = 100.0 * (0.5 / 200.0) * (0.25 / 100.0)
    small[1, 1] = 100.0 * (0.25 / 100.0) ** 2
    assert ratio_relative_sd(np.array([0.5, 0.25]), small, 0, 1) == pytest.approx(0.1)
    assert math.isnan(ratio_relative_sd(np.array([0.0, 100.0]), c, 0, 1))
    assert math.isnan(ratio_relative_sd(np.array([200.0, 0.0]), c, 0, 1))


def test_a_region_absent_by_its_column_is_left_out():
    """Bug caught: regions judged by their row instead of their column (a region whose own
    image reaches nothing is not measurable). By hand: only region 0 is used, 1 / 0.5^2 x
    sd^2 = 4 x 9 = 36."""
    c = gtm_covariance(np.array([[0.5, 0.0], [0.3, 0.0]]), [3.0, 1.0])
    assert c[0, 0] == pytest.approx(36.0) and np.isnan(c[1, 1])


def test_linear_sd_ignores_an_unmeasured_region_and_keeps_small_variances():
    """Bug caught: a region with NaN covariance but a weight spoiling the sum, or a floor of
    1 on the variance. By hand: g = (0.1, 0, 5), C00 = 4, region 2 unmeasured: sqrt(0.04)."""
    c = np.array([[4.0, 0.0, np.nan], [0.0, 9.0, np.nan], [np.nan, np.nan, np.nan]])
    assert linear_sd([0.1, 0.0, 5.0], c) == pytest.approx(0.2, rel=1e-12)


def test_ratio_of_a_negative_mean_is_nan():
    """Bug caught: either mean's check dropped (a negative corrected mean, as noise can make
    one, would give a finite, meaningless relative SD)."""
    c = np.array([[400.0, 100.0], [100.0, 100.0]])
    assert math.isnan(ratio_relative_sd(np.array([-200.0, 100.0]), c, 0, 1))
    assert math.isnan(ratio_relative_sd(np.array([200.0, -100.0]), c, 0, 1))
