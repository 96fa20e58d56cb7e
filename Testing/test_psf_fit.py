"""The fit of a camera's point-spread function to a phantom of hot spheres
(physics/psf_fit.py), on small scenes whose images are made here with
scipy.ndimage.gaussian_filter (the independent blur) from a known PSF and calibration factor.

Expected values: the PSF and factor each image was made with; the second moment of a
two-Gaussian mixture (sum of weight × FWHM², worked out in each docstring); the recovery
coefficient as the occupancy-weighted mean of an image over a sphere divided by its true
concentration, computed here with numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from tareplanner.physics.partial_volume import PointSpread
from tareplanner.physics.psf_fit import (PhantomScene, ball_occupancy, effective_fwhm_mm, fit_psf,
                                         model_image, psf_from_parameters, recovery)

SIGMA_PER_FWHM = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))   # 1 / 2.35482
SPACING = (4.0, 3.0, 2.0)          # z, y, x (mm): anisotropic, so an axis mix-up shows
SHAPE = (16, 22, 30)


def _scene(s=10.0, b=1.0) -> PhantomScene:
    """Two spheres (radius 9 and 6 mm) in a uniform background filling the grid."""
    big = ball_occupancy(SHAPE, SPACING, (7.5, 10.5, 10.0), 9.0)
    small = ball_occupancy(SHAPE, SPACING, (8.0, 11.0, 21.0), 6.0)
    spheres = np.stack([big, small])
    background = 1.0 - spheres.sum(axis=0)
    mask = np.ones(SHAPE, dtype=bool)
    return PhantomScene(spheres, background, SPACING, s, b, mask)


def _image(scene: PhantomScene, components, factor: float) -> np.ndarray:
    """factor × sum_k w_k G_k(activity), G_k from scipy with sigma = FWHM / 2.35482 / spacing
    of each axis, zero outside, kernel cut at 4 sigma."""
    activity = (scene.sphere_concentration * scene.spheres.sum(axis=0)
                + scene.background_concentration * scene.background)
    out = np.zeros(SHAPE)
    for weight, fwhm in components:
        sigma = [fwhm * SIGMA_PER_FWHM / s for s in SPACING]
        out += weight * ndimage.gaussian_filter(activity, sigma, mode="constant", truncate=4.0)
    return factor * out


def test_gaussian_fit_recovers_the_fwhm_and_the_calibration_factor():
    """Bug caught: the FWHM fitted in voxels or as a sigma, the calibration factor scaled
    twice (by the start's scale) or inverted, the fit stopped at its start (10 mm), the
    residual or the voxel count not reported, the PSF returned not the one fitted.

    Image made with FWHM 13 mm and 2.5 image units per unit of concentration, no noise:
    the fit must give them back (1e-4) with a residual near 0."""
    scene = _scene()
    image = _image(scene, [(1.0, 13.0)], 2.5)
    fit = fit_psf(scene, image)
    assert fit.model == "gaussian"
    assert fit.parameters["fwhm_mm"] == pytest.approx(13.0, rel=1e-4)
    assert fit.psf.components == ((1.0, pytest.approx(13.0, rel=1e-4)),)
    assert fit.calibration_factor == pytest.approx(2.5, rel=1e-4)
    assert fit.voxels == math.prod(SHAPE)
    assert fit.relative_residual_rms < 1e-4
    assert fit.residual_sum_of_squares < 1e-6 * float((image ** 2).sum())
    assert fit.evaluations > 1
    assert fit.standard_uncertainties["fwhm_mm"] < 0.01
    assert fit.calibration_factor_sd < 0.001


def test_gaussian_fit_uncertainty_matches_the_spread_over_noise():
    """Bug caught: the parameters' standard uncertainties from the Jacobian scaled wrongly
    (RSS / n instead of RSS / (n - p), the covariance's square root forgotten, the factor's
    uncertainty not scaled back to image units).

    Truth from outside the formula: the spread of the fitted FWHM and factor over 12 images
    with independent Gaussian noise (sd 0.5, about 5 % of the sphere signal); the mean
    reported uncertainty must agree with the observed standard deviation within a factor of
    2 (12 samples give the sd to about ±20 %)."""
    scene = _scene()
    clean = _image(scene, [(1.0, 13.0)], 2.5)
    rng = np.random.default_rng(11)
    fwhm, factor, u_fwhm, u_factor = [], [], [], []
    for _ in range(12):
        fit = fit_psf(scene, clean + rng.normal(0.0, 0.5, SHAPE))
        fwhm.append(fit.parameters["fwhm_mm"])
        factor.append(fit.calibration_factor)
        u_fwhm.append(fit.standard_uncertainties["fwhm_mm"])
        u_factor.append(fit.calibration_factor_sd)
    assert 0.5 < np.mean(u_fwhm) / np.std(fwhm, ddof=1) < 2.0
    assert 0.5 < np.mean(u_factor) / np.std(factor, ddof=1) < 2.0
    assert np.mean(fwhm) == pytest.approx(13.0, abs=3 * np.mean(u_fwhm))
    # the residual rms over the mean image: the noise sd (0.5) over the mean of the image
    assert fit.relative_residual_rms == pytest.approx(0.5 / clean.mean(), rel=0.1)


def test_core_plus_tail_fit_recovers_the_tail():
    """Bug caught: the tail's weight given to the core (1 - w swapped for w), the tail FWHM
    not the core's times the ratio, the parameters named in another order.

    Image made with 0.8 × FWHM 8 mm + 0.2 × FWHM 24 mm (ratio 3) and factor 1.7, started
    from a Gaussian fit of the same image."""
    scene = _scene()
    image = _image(scene, [(0.8, 8.0), (0.2, 24.0)], 1.7)
    start = fit_psf(scene, image)
    fit = fit_psf(scene, image, "core-plus-tail", start=start)
    assert fit.model == "core-plus-tail"
    assert fit.parameters["core_fwhm_mm"] == pytest.approx(8.0, rel=0.01)
    assert fit.parameters["tail_weight"] == pytest.approx(0.2, rel=0.02)
    assert fit.parameters["tail_to_core_fwhm_ratio"] == pytest.approx(3.0, rel=0.02)
    assert fit.calibration_factor == pytest.approx(1.7, rel=0.01)
    (w1, f1), (w2, f2) = fit.psf.components
    assert (w1, f1, w2, f2) == pytest.approx((0.8, 8.0, 0.2, 24.0), rel=0.02)
    assert set(fit.standard_uncertainties) == {"core_fwhm_mm", "tail_weight",
                                               "tail_to_core_fwhm_ratio"}


def test_fit_refuses_an_unknown_model():
    """Bug caught: a misspelt model name fitted as one of the two models silently."""
    with pytest.raises(ValueError) as info:
        fit_psf(_scene(), np.zeros(SHAPE), "lorentzian")
    assert str(info.value) == "model: got 'lorentzian'; allowed: gaussian, core-plus-tail"


def test_psf_from_parameters_by_hand():
    """Bug caught: a tail of zero weight kept as a second component (a PointSpread refuses
    a zero weight), the weights 1 - w and w swapped, the tail FWHM not core × ratio."""
    assert psf_from_parameters("gaussian", [12.0]).components == ((1.0, 12.0),)
    assert psf_from_parameters("core-plus-tail", [10.0, 0.0, 3.0]).components == ((1.0, 10.0),)
    assert psf_from_parameters("core-plus-tail", [10.0, 0.25, 3.0]).components == (
        (0.75, 10.0), (0.25, 30.0))


def test_effective_fwhm_of_a_mixture():
    """Bug caught: the weights applied to the FWHMs instead of their squares (the second
    moments add: sigma² = sum w_k sigma_k²). By hand: sqrt(0.75 × 10² + 0.25 × 30²) =
    sqrt(75 + 225) = sqrt(300) = 17.3205 mm; one Gaussian of 12 mm: 12 mm."""
    assert effective_fwhm_mm(PointSpread(((0.75, 10.0), (0.25, 30.0)))) == pytest.approx(
        17.320508, rel=1e-7)
    assert effective_fwhm_mm(PointSpread.gaussian(12.0)) == 12.0


def test_model_image_and_recovery_against_numpy():
    """Bug caught: the model image not the PSF applied to S·spheres + B·background (a
    concentration dropped or swapped), a given activity ignored, the recovery divided by
    the concentration without the calibration factor, or averaged without the occupancy
    weights.

    Recovery of sphere k, by hand with numpy: sum_v f_k[v] image[v] / sum_v f_k[v] / (factor
    × S) for the image, and the same of the model (without the factor) / S."""
    scene = _scene(s=10.0, b=1.0)
    psf = PointSpread.gaussian(13.0)
    expected_model = _image(scene, [(1.0, 13.0)], 1.0)
    np.testing.assert_allclose(model_image(scene, psf), expected_model, rtol=1e-10, atol=1e-12)
    ones = np.ones(SHAPE)
    np.testing.assert_allclose(model_image(scene, psf, ones), ndimage.gaussian_filter(
        ones, [13.0 * SIGMA_PER_FWHM / s for s in SPACING], mode="constant", truncate=4.0),
        rtol=1e-10)
    image = 2.5 * expected_model * 1.1            # an image 10 % above the model
    fit = fit_psf(scene, 2.5 * expected_model)
    rec = recovery(scene, image, fit)
    for k in range(2):
        f = scene.spheres[k]
        model_k = (f * expected_model).sum() / f.sum() / 10.0
        assert rec.model[k] == pytest.approx(model_k, rel=1e-4)
        assert rec.measured[k] == pytest.approx(1.1 * model_k, rel=1e-4)
    assert rec.model[1] < rec.model[0] < 1.0       # the smaller sphere recovers less


def test_gaussian_fit_starts_from_a_given_fit():
    """Bug caught: the start handed to the Gaussian fit ignored (every fit from 10 mm): a
    calibration refitted from its own answer must stop at once. The image of FWHM 13 mm
    refitted from the fit of the same image needs fewer evaluations than from 10 mm and
    gives the same answer."""
    scene = _scene()
    image = _image(scene, [(1.0, 13.0)], 2.5)
    first = fit_psf(scene, image)
    again = fit_psf(scene, image, start=first)
    assert again.parameters["fwhm_mm"] == pytest.approx(13.0, rel=1e-4)
    assert again.evaluations < first.evaluations


def test_core_plus_tail_fit_without_a_start():
    """Bug caught: the core-plus-tail fit usable only after a Gaussian fit (a missing start
    read as a fit: AttributeError). Image made with 0.8 × FWHM 8 mm + 0.2 × FWHM 24 mm."""
    scene = _scene()
    fit = fit_psf(scene, _image(scene, [(0.8, 8.0), (0.2, 24.0)], 1.7), "core-plus-tail")
    assert fit.parameters["core_fwhm_mm"] == pytest.approx(8.0, rel=0.02)
    assert fit.parameters["tail_weight"] == pytest.approx(0.2, rel=0.05)


def test_fit_counts_its_evaluations(monkeypatch):
    """Bug caught: the number of model evaluations reported (the calibration record's cost
    of the fit) miscounted. Counted here independently: every evaluation of the model blurs
    the phantom once, and the fit blurs it once more before it starts (its first guess of
    the calibration factor)."""
    from tareplanner.physics import psf_fit

    calls = []
    real_blur = psf_fit.blur
    monkeypatch.setattr(psf_fit, "blur", lambda *a: calls.append(1) or real_blur(*a))
    scene = _scene()
    fit = fit_psf(scene, _image(scene, [(1.0, 13.0)], 2.5))
    assert fit.evaluations == len(calls) - 1 > 1


@pytest.mark.parametrize("start_fwhm_mm", [100.0, 0.1])
def test_a_start_outside_the_fitted_range_is_moved_inside(start_fwhm_mm):
    """A start (a given fit, e.g. from another camera's file) whose FWHM lies outside the
    range the fit searches (0.5-60 mm) is moved just inside it: from above, the fit still
    finds the 13 mm the image was made with (scipy's blur); from below it returns a fit
    within the range (a Gaussian of 0.5 mm barely blurs 2-4 mm voxels, so the fit has no
    slope to leave it: a start no calibration gives). Bug caught: the start not clipped to
    the range at either end, or clipped to a point outside it (``lo - 1e-9``, ``hi +
    1e-9``): scipy's least_squares then refuses it ("x0 is infeasible", a traceback)."""
    import dataclasses
    scene = _scene()
    image = _image(scene, [(1.0, 13.0)], 2.5)
    start = dataclasses.replace(fit_psf(scene, image), parameters={"fwhm_mm": start_fwhm_mm})
    fit = fit_psf(scene, image, start=start)
    if start_fwhm_mm > 60.0:
        assert fit.parameters["fwhm_mm"] == pytest.approx(13.0, rel=1e-3)
    else:
        assert 0.5 <= fit.parameters["fwhm_mm"] <= 60.0


def test_an_empty_image_gives_a_fit_without_uncertainties_not_a_traceback():
    """An image holding nothing (a scan of an unfilled phantom, a wrong series): the best
    calibration factor is 0 and the FWHM cannot be told (the model times 0 does not depend
    on it), so the normal equations are singular: the fit says so with NaN uncertainties
    instead of failing. Bug caught: the singular case's uncertainties set to None or to an
    array of no length (a TypeError or IndexError from the fit), the relative residual
    divided by the image's mean of 0 (ZeroDivisionError)."""
    scene = _scene()
    fit = fit_psf(scene, np.zeros(SHAPE))
    assert fit.calibration_factor == 0.0
    assert math.isnan(fit.calibration_factor_sd)
    assert math.isnan(fit.standard_uncertainties["fwhm_mm"])
    assert math.isnan(fit.relative_residual_rms)      # RSS 0 over a mean of 0


@pytest.mark.parametrize("voxels", [20, 3])
def test_fit_uncertainties_are_the_least_squares_covariance_on_few_voxels(voxels):
    """The standard uncertainties are those of the least-squares covariance, s^2 (J^T J)^-1
    with s^2 = RSS / (n - p) (n voxels, p = 2 parameters: FWHM and calibration factor;
    e.g. NIST/SEMATECH e-Handbook 4.4.4.4), computed here independently at the fitted
    values: the model from scipy's blur (``_image``), its FWHM derivative by central
    differences (0.01 mm), on 20 voxels at the big sphere's edge of an image with noise (so
    that n - p = 18 and n + p = 22 differ by a fifth), and on 3 (n - p = 1). Bugs caught:
    the degrees of freedom n + p or never below 2, the Jacobian taken with a step of the
    whole parameter (``diff_step`` 1.001)."""
    big_scene = _scene()
    mask = np.zeros(SHAPE, dtype=bool)
    if voxels == 20:
        mask[7:9, 10:12, 12:17] = True
    else:
        mask[7, 10, 12:15] = True
    scene = PhantomScene(big_scene.spheres, big_scene.background, SPACING, 10.0, 1.0, mask)
    rng = np.random.default_rng(5)
    image = _image(scene, [(1.0, 13.0)], 2.5) + rng.normal(0.0, 0.5, SHAPE)
    fit = fit_psf(scene, image)
    fwhm, k = fit.parameters["fwhm_mm"], fit.calibration_factor
    data = image[mask]

    def model(f, factor):
        return _image(scene, [(1.0, f)], factor)[mask]

    residual = model(fwhm, k) - data
    n, p = data.size, 2
    jac = np.column_stack([(model(fwhm + 0.005, k) - model(fwhm - 0.005, k)) / 0.01,
                           model(fwhm, 1.0)])
    cov = np.linalg.inv(jac.T @ jac) * (residual @ residual) / (n - p)
    assert n == voxels
    assert fit.standard_uncertainties["fwhm_mm"] == pytest.approx(math.sqrt(cov[0, 0]),
                                                                  rel=0.01)
    assert fit.calibration_factor_sd == pytest.approx(math.sqrt(cov[1, 1]), rel=0.01)



def test_core_plus_tail_calibration_uncertainty_is_the_factors_own():
    """With four parameters (core FWHM, tail weight, tail-to-core ratio, calibration
    factor) the calibration factor's uncertainty is the last diagonal element of the
    least-squares covariance s^2 (J^T J)^-1, s^2 = RSS / (n - p), computed here
    independently at the fitted values (scipy's blur of 0.8 x 8 mm + 0.2 x 24 mm, the
    FWHM-like derivatives by central differences) on an image with noise. Bug caught: the
    factor's uncertainty read from the second parameter's (``sd[+1]``: the tail weight's,
    which is the factor's only when there are two parameters)."""
    scene = _scene()
    rng = np.random.default_rng(9)
    image = _image(scene, [(0.8, 8.0), (0.2, 24.0)], 1.7) + rng.normal(0.0, 0.3, SHAPE)
    fit = fit_psf(scene, image, "core-plus-tail")
    core = fit.parameters["core_fwhm_mm"]
    w = fit.parameters["tail_weight"]
    ratio = fit.parameters["tail_to_core_fwhm_ratio"]
    k = fit.calibration_factor
    data = image.ravel()

    def model(c, wt, r, factor):
        return _image(scene, [(1.0 - wt, c), (wt, r * c)], factor).ravel()

    h = {"c": 0.005, "w": 1e-4, "r": 1e-4}
    jac = np.column_stack([
        (model(core + h["c"], w, ratio, k) - model(core - h["c"], w, ratio, k)) / (2 * h["c"]),
        (model(core, w + h["w"], ratio, k) - model(core, w - h["w"], ratio, k)) / (2 * h["w"]),
        (model(core, w, ratio + h["r"], k) - model(core, w, ratio - h["r"], k)) / (2 * h["r"]),
        model(core, w, ratio, 1.0)])
    residual = model(core, w, ratio, k) - data
    cov = np.linalg.inv(jac.T @ jac) * (residual @ residual) / (data.size - 4)
    assert fit.calibration_factor_sd == pytest.approx(math.sqrt(cov[3, 3]), rel=0.02)
    assert abs(math.sqrt(cov[1, 1]) / math.sqrt(cov[3, 3]) - 1.0) > 0.1   # told apart


def test_ball_occupancy_samples_four_points_per_voxel_axis_by_default():
    """A ball of radius 0.3 mm centred on a 1 mm voxel: with 4 x 4 x 4 sample points at
    +-0.125 and +-0.375 mm from the centre, only the 8 at (+-0.125, +-0.125, +-0.125)
    (0.0469 mm^2 <= 0.09 mm^2) lie inside: 8 / 64 = 0.125 (5 x 5 x 5 points would give 19 /
    125 = 0.152); the 26 neighbours hold none of it. Bug caught: another default sampling
    (the occupancies of every phantom sphere's edge voxels change)."""
    got = ball_occupancy((3, 3, 3), (1.0, 1.0, 1.0), (1.0, 1.0, 1.0), 0.3)
    expected = np.zeros((3, 3, 3))
    expected[1, 1, 1] = 8 / 64
    np.testing.assert_array_equal(got, expected)


def test_ball_occupancy_at_the_grid_edge_outside_it_and_on_its_surface():
    """By hand, 4 x 4 x 4 points per voxel at +-0.125 and +-0.375 voxel from its centre:
    a ball of radius 0.3 mm on 1 mm voxels centred on the corner voxel (0, 0, 0) fills 8 /
    64 of it (as in the middle of a grid); one whose reach (its radius plus one voxel) ends
    before the grid gives zeros; on 1 x 2 x 2 mm voxels the 8 inner points lie at
    (0.125, 0.25, 0.25) mm, exactly on a sphere of radius 0.375 mm (0.015625 + 0.0625 +
    0.0625 = 0.140625 = 0.375^2): a closed ball holds them, 8 / 64. Bugs caught: the box
    started at index 1 (the first voxel of every axis never sampled), the early return for
    a ball outside the grid dropped (its box then ends at index -7, which slices the grid's
    first 3 voxels along x: a shape mismatch), the surface left out
    (``<`` for ``<=``)."""
    corner = ball_occupancy((2, 2, 2), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), 0.3)
    expected = np.zeros((2, 2, 2))
    expected[0, 0, 0] = 8 / 64
    np.testing.assert_array_equal(corner, expected)
    outside = ball_occupancy((3, 3, 10), (1.0, 1.0, 1.0), (1.0, 1.0, -10.0), 0.3)
    np.testing.assert_array_equal(outside, np.zeros((3, 3, 10)))
    surface = ball_occupancy((3, 3, 3), (1.0, 2.0, 2.0), (1.0, 1.0, 1.0), 0.375)
    assert surface[1, 1, 1] == 8 / 64
    assert surface.sum() == 8 / 64
