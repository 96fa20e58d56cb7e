"""The realistic Y-90 PET's expected scatter and randoms (imaging/pet_simulation.py
``scatter_and_randoms``): pure numpy, so these run without the extra.

Bugs they must catch: the scatter not blurred across the time-of-flight bins (a scattered
pair would keep its annihilation's position along the line), blurred across the views, a
kernel of the wrong width (FWHM taken for sigma, the bin width in ps for mm), the scatter or
random fraction taken of the wrong total, randoms not uniform over the time bins."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tareplanner.imaging import pet_simulation as ps

#: data/pet_simulation.json, read by hand: 200 mm FWHM scatter kernel, 312 ps bins,
#: c = 299.792458 mm/ns, scatter 33 % of trues + scatter, randoms 80 % of the prompts
KERNEL_FWHM_MM = 200.0
BIN_WIDTH_MM = 312.0 * 0.299792458 / 2.0          # c x dt / 2 = 46.768 mm
SIGMA_PER_FWHM = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


def protocol(**changes) -> dict:
    p = ps.PetProtocol().resolved()
    p.update(changes)
    return p


def moments(profile: np.ndarray) -> tuple[float, float]:
    x = np.arange(profile.size, dtype=float)
    w = profile / profile.sum()
    mean = float((w * x).sum())
    return mean, float((w * (x - mean) ** 2).sum())


def point_trues(bins: int, views: int, r: int, z: int) -> np.ndarray:
    trues = np.zeros((bins, views, r, z))
    trues[bins // 2, views // 2, r // 2, z // 2] = 1000.0
    return trues


def test_cited_constants_are_the_ones_the_model_uses():
    p = protocol()
    assert p["scatter_kernel_fwhm_mm"] == KERNEL_FWHM_MM
    assert p["tof_bin_width_mm"] == pytest.approx(BIN_WIDTH_MM, rel=1e-9)
    assert p["scatter_fraction"] == 0.33 and p["random_fraction"] == 0.8


def test_scatter_spreads_across_time_bins_by_the_kernel_width():
    """A point of trues in the middle of 41 bins: the scatter's time profile is the kernel,
    sigma = 200 mm x 0.4247 / 46.768 mm = 1.816 bins (variance 3.30 bins^2)."""
    d_mm = 4.0
    trues = point_trues(41, 5, 301, 3)
    scatter, _ = ps.scatter_and_randoms(trues, protocol(), d_mm, True)
    sigma_bins = KERNEL_FWHM_MM * SIGMA_PER_FWHM / BIN_WIDTH_MM
    mean, variance = moments(scatter.sum(axis=(1, 2, 3)))
    assert mean == pytest.approx(20.0, abs=1e-9)
    assert variance == pytest.approx(sigma_bins ** 2, rel=0.01)
    # along each projection: sigma = 200 mm x 0.4247 / 4 mm = 21.2 samples
    _, variance_r = moments(scatter.sum(axis=(0, 1, 3)))
    assert variance_r == pytest.approx((KERNEL_FWHM_MM * SIGMA_PER_FWHM / d_mm) ** 2, rel=0.01)
    # never across the views or the planes
    assert np.count_nonzero(scatter.sum(axis=(0, 2, 3))) == 1
    assert np.count_nonzero(scatter.sum(axis=(0, 1, 2))) == 1


def test_without_time_of_flight_only_the_projection_is_blurred():
    trues = point_trues(1, 5, 301, 3)[0]
    scatter, _ = ps.scatter_and_randoms(trues, protocol(), 4.0, False)
    assert scatter.shape == trues.shape
    _, variance_r = moments(scatter.sum(axis=(0, 2)))
    assert variance_r == pytest.approx((KERNEL_FWHM_MM * SIGMA_PER_FWHM / 4.0) ** 2, rel=0.01)
    assert np.count_nonzero(scatter.sum(axis=(1, 2))) == 1


def test_fractions_are_of_the_stated_totals():
    """Scatter 33 % of trues + scatter; randoms 80 % of trues + scatter + randoms, uniform
    over every bin, view and sample."""
    rng = np.random.default_rng(5)
    trues = rng.random((13, 8, 64, 4)) * 10.0
    scatter, randoms = ps.scatter_and_randoms(trues, protocol(), 4.0, True)
    t, s, r = trues.sum(), scatter.sum(), randoms.sum()
    assert s / (t + s) == pytest.approx(0.33, rel=1e-12)
    assert r / (t + s + r) == pytest.approx(0.8, rel=1e-12)
    assert np.ptp(randoms) == 0.0 and (scatter >= 0).all()


def test_no_trues_no_scatter_no_randoms_and_fractions_of_zero():
    scatter, randoms = ps.scatter_and_randoms(np.zeros((13, 2, 8, 2)), protocol(), 4.0, True)
    assert not scatter.any() and not randoms.any()
    trues = point_trues(13, 2, 16, 2)
    scatter, randoms = ps.scatter_and_randoms(
        trues, protocol(scatter_fraction=0.0, random_fraction=0.0), 4.0, True)
    assert not scatter.any() and not randoms.any()
