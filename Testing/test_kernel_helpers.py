"""The voxel-kernel helpers (tareplanner.physics.kernels) on kernels and spectra written here
by hand: the octant table mirrored, a spectrum's mean energy and energy-weighted range
(trapezoidal integrals worked out below; ranges from Katz & Penfold, Rev Mod Phys
1952;24:28: R = 0.412 E^(1.265 - 0.0954 ln E) g/cm^2), range scaling (Berger, MIRD Pamphlet
7: radii by the ratio of ranges, energies by the ratio of mean energies), a voxel kernel's
energy and units, and its size and normalisation."""

import math

import numpy as np
import pytest

from tareplanner.physics.kernels import (BetaSpectrum, PointKernel, VoxelKernel,
                                         octant_to_kernel, range_scaled_kernel, voxel_kernel)

MEV_TO_J = 1.602176634e-13   # CODATA 2018, exact


def test_octant_table_mirrored_into_a_full_kernel():
    """Rows (i, j, k) >= 0 with their value, mirrored to every sign: (1, 0, 0) fills the two
    x neighbours [1, 1, 0] and [1, 1, 2], (1, 1, 1) the eight corners, the centre its own
    value; offsets not in the table stay 0. Bugs: an axis mirrored onto another, the size
    taken from one axis only, a sign missing."""
    full = octant_to_kernel(np.array([[0, 0, 0], [1, 0, 0], [0, 0, 1], [1, 1, 1]]),
                            np.array([4.0, 3.0, 2.0, 1.0]))
    expected = np.zeros((3, 3, 3))
    expected[1, 1, 1] = 4.0
    expected[1, 1, 0] = expected[1, 1, 2] = 3.0      # x = i = +-1
    expected[0, 1, 1] = expected[2, 1, 1] = 2.0      # z = k = +-1
    for z in (0, 2):
        for y in (0, 2):
            for x in (0, 2):
                expected[z, y, x] = 1.0
    np.testing.assert_array_equal(full, expected)
    assert octant_to_kernel(np.array([[0, 0, 0], [0, 2, 0]]), np.array([1.0, 5.0])).shape == \
        (5, 5, 5)


def _range(e):
    return 0.412 * e ** (1.265 - 0.0954 * math.log(e))


def test_spectrum_mean_energy_and_energy_weighted_range_by_hand():
    """A spectrum flat from 0 to 2 MeV at points 0, 1, 2 MeV: mean energy = (trapezoid of
    E) / (trapezoid of 1) = 2 / 2 = 1 MeV. Energy-weighted range with weights w = E (0, 1, 2):
    numerator 0.5 (0 + R(1)) + 0.5 (R(1) + 2 R(2)) = R(1) + R(2), denominator
    0.5 (0 + 1) + 0.5 (1 + 2) = 2: (R(1) + R(2)) / 2 with R(1) = 0.412 and
    R(2) = 0.412 * 2^(1.265 - 0.0954 ln 2) = 0.9458 g/cm^2. Bugs: the weights not the
    energy, a normalisation by the wrong integral."""
    spectrum = BetaSpectrum(np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 1.0]))
    assert spectrum.mean_energy_mev == pytest.approx(1.0, rel=1e-12)
    assert _range(2.0) == pytest.approx(0.9458, abs=1e-4)
    assert spectrum.energy_weighted_range_g_per_cm2 == pytest.approx(
        (0.412 + _range(2.0)) / 2, rel=1e-9)


def test_range_scaled_kernel_by_hand():
    """Reference spectrum flat 0-4 MeV at 0, 2, 4 MeV: mean 2 MeV; energy-weighted range with
    weights (0, 2, 4), step 2: numerator 2 R(2) + (2 R(2) + 4 R(4)) = 4 R(2) + 4 R(4),
    denominator 2 + 6 = 8: (R(2) + R(4)) / 2, with R(4) = 0.530 * 4 - 0.106 = 2.014 g/cm^2
    (Katz & Penfold above 2.5 MeV). Target flat 0-1 MeV at 0, 0.5, 1 MeV: mean 0.5 MeV; range
    (0.25 R(0.5) + 0.25 R(1)) / 0.5. Radii scale by the ratio of the ranges, energies by
    0.5 / 2 = 0.25, the density kept (1.04). Bugs: the ratios inverted or multiplied, the
    energies scaled by the range ratio, the density dropped."""
    reference = BetaSpectrum(np.array([0.0, 2.0, 4.0]), np.ones(3))
    target = BetaSpectrum(np.array([0.0, 0.5, 1.0]), np.ones(3))
    assert reference.mean_energy_mev == pytest.approx(2.0, rel=1e-12)
    r_ref = (_range(2.0) + 2.014) / 2
    assert reference.energy_weighted_range_g_per_cm2 == pytest.approx(r_ref, rel=1e-9)
    # weights E = (0, 0.5, 1), step 0.5: numerator 0.25 (0.5 R(0.5)) + 0.25 (0.5 R(0.5) + R(1))
    # = 0.25 R(0.5) + 0.25 R(1); denominator 0.25 * 0.5 + 0.25 * 1.5 = 0.5
    r_target = (0.25 * _range(0.5) + 0.25 * 0.412) / 0.5
    point = PointKernel(np.array([0.1, 0.2]), np.array([0.6, 0.4]), 1.04)
    scaled = range_scaled_kernel(point, reference, target)
    np.testing.assert_allclose(scaled.outer_radius_cm, [0.1 * r_target / r_ref,
                                                        0.2 * r_target / r_ref], rtol=1e-9)
    np.testing.assert_allclose(scaled.energy_mev, [0.15, 0.1], rtol=1e-12)
    assert scaled.density_g_per_cm3 == 1.04


def test_voxel_kernel_energy_and_s_value_units():
    """27 voxels of 1 Gy per decay, 2 mm voxels of density 1.04: mass 0.008 * 1.04 g each,
    energy 27 * 1 J/kg * 0.00832e-3 kg = 2.2464e-4 J = 2.2464e-4 / 1.602176634e-13 MeV;
    S in mGy/(MBq s) = Gy per decay * 1e6 decays/MBq s * 1e3 mGy/Gy. Bugs: the mass in kg
    taken as g, the unit factors wrong."""
    kernel = VoxelKernel((2.0, 2.0, 2.0), np.ones((3, 3, 3)), 1.04)
    assert kernel.energy_mev() == pytest.approx(27 * 0.008e-3 * 1.04 / MEV_TO_J, rel=1e-12)
    np.testing.assert_allclose(kernel.s_values_mgy_per_mbq_s(), 1e9)


def test_voxel_kernel_size_from_the_range_and_normalised():
    """A point kernel reaching 2.5 mm (two shells, 0.6 and 0.9 MeV) in water-like tissue of
    1.0 g/mL: 2 mm voxels need ceil(2.5 / 2) = 2 voxels each side (5 per axis); 4 mm along z
    ceil(2.5 / 4) = 1 (3); normalised, the voxels hold the kernel's 1.5 MeV per decay; given
    radius 1 per axis, 3 per axis. Bugs: the half size from another axis, floor for ceil,
    the normalisation to another total."""
    point = PointKernel(np.array([0.1, 0.25]), np.array([0.6, 0.9]), 1.0)
    kernel = voxel_kernel(point, (2.0, 2.0, 4.0), 1.0, subdivisions=4)
    assert kernel.values_gy_per_decay.shape == (3, 5, 5)
    assert kernel.spacing_mm == (2.0, 2.0, 4.0) and kernel.density_g_per_cm3 == 1.0
    assert kernel.energy_mev() == pytest.approx(1.5, rel=1e-9)
    small = voxel_kernel(point, (2.0, 2.0, 2.0), 1.0, radius_voxels=1, subdivisions=4)
    assert small.values_gy_per_decay.shape == (3, 3, 3)
    assert small.energy_mev() == pytest.approx(1.5, rel=1e-9)
    raw = voxel_kernel(point, (2.0, 2.0, 2.0), 1.0, radius_voxels=1, subdivisions=4,
                       normalise=False)
    assert raw.energy_mev() != pytest.approx(1.5, rel=1e-3)   # sampled, not normalised
    np.testing.assert_allclose(small.values_gy_per_decay,
                               raw.values_gy_per_decay * 1.5 / raw.energy_mev(), rtol=1e-9)


def test_voxel_kernel_defaults_are_the_documented_ones():
    """docs/dosimetry.md: the kernel is computed for soft tissue, 1.04 g/cm^3, as a
    triangle-weighted integral on a grid of 8 sub-cells per voxel and axis. Bug: a default
    density or sub-cell count other than the documented one (every dose changes)."""
    point = PointKernel(np.array([0.1, 0.25]), np.array([0.6, 0.9]), 1.0)
    default = voxel_kernel(point, (2.0, 2.0, 2.0), radius_voxels=1)
    stated = voxel_kernel(point, (2.0, 2.0, 2.0), 1.04, radius_voxels=1, subdivisions=8)
    assert default.density_g_per_cm3 == 1.04
    np.testing.assert_array_equal(default.values_gy_per_decay, stated.values_gy_per_decay)


def test_voxel_kernel_radius_per_axis_in_x_y_z_order():
    """A radius given per axis is (x, y, z), like the spacing; the values are indexed
    [z, y, x]: radius (1, 2, 3) gives 7 x 5 x 3 voxels. Bug: the axes' order not reversed
    (x's radius applied along z)."""
    point = PointKernel(np.array([0.1, 0.25]), np.array([0.6, 0.9]), 1.0)
    kernel = voxel_kernel(point, (2.0, 2.0, 2.0), 1.0, radius_voxels=(1, 2, 3),
                          subdivisions=2)
    assert kernel.values_gy_per_decay.shape == (7, 5, 3)


def test_point_kernel_dose_inside_between_and_beyond_its_shells():
    """Two shells, 0-1 cm holding 1 MeV and 1-2 cm holding 3 MeV, density 1: shell-mean doses
    1 / (4/3 pi) = 0.238732 and 3 / (4/3 pi 7) = 0.102314 MeV/g at the shells' mid-volume
    radii cbrt(1/2) = 0.793701 and cbrt(9/2) = 1.650964 cm; between them the log of the dose
    is linear in log r; inside the first mid radius the first shell's dose; at the kernel's
    edge (2 cm) still the last shell's dose; beyond it none. Bugs: the clamp at the second
    mid radius, the edge itself set to 0, no 0 beyond the edge."""
    point = PointKernel(np.array([1.0, 2.0]), np.array([1.0, 3.0]), 1.0)
    d1, d2 = 1 / (4 / 3 * math.pi), 3 / (4 / 3 * math.pi * 7)
    m1, m2 = 0.5 ** (1 / 3), 4.5 ** (1 / 3)
    t = (math.log(1.2) - math.log(m1)) / (math.log(m2) - math.log(m1))
    between = math.exp(math.log(d1) + t * (math.log(d2) - math.log(d1)))
    got = point.dose_per_decay_mev_per_g(np.array([0.5, 1.2, 2.0, 2.5]))
    np.testing.assert_allclose(got, [d1, between, d2, 0.0], rtol=1e-9)
    assert d1 == pytest.approx(0.238732, abs=1e-6) and d2 == pytest.approx(0.102314, abs=1e-6)
