"""Voxel dose (tareplanner.physics.voxel_dose) at its edges, against scipy and hand values:
the FFT convolution with even-sized and symmetric kernels (scipy.signal.fftconvolve, 'same'
mode, is the reference), the density curve's checks, the density floor and ends, and the
kernel dose's scaling, clipping and lung voxels with a one-voxel kernel (then D = A CF / (rho
V), the local deposition of EANM 2022's dosimetry guidance, by hand)."""

import warnings

import numpy as np
import pytest
from scipy import signal

from tareplanner.physics.kernels import VoxelKernel
from tareplanner.physics.voxel_dose import (HuDensityCurve, clear_spectrum_cache,
                                            convolve_fft, density_from_hu, energy_fractions,
                                            fft_shape, kernel_dose_gy, kernel_spectrum,
                                            ldm_dose_gy)

CF = 49.67   # J/GBq, Y-90


@pytest.mark.parametrize("kernel_shape", [(6, 4, 5), (2, 5, 4), (3, 3, 3)])
def test_convolution_with_even_kernels_equals_scipy(kernel_shape):
    """Bugs: the padding of an even-sized kernel's longer half cut short (the convolution
    wraps into the kept region), the kernel's centre offset by one."""
    rng = np.random.default_rng(1)
    values = rng.random((12, 10, 9)).astype(np.float32)
    kernel = rng.random(kernel_shape).astype(np.float32)
    np.testing.assert_allclose(convolve_fft(values, kernel),
                               signal.fftconvolve(values, kernel, mode="same"), rtol=1e-4,
                               atol=1e-4)


def test_convolution_with_a_symmetric_kernel_equals_scipy_twice():
    """A kernel symmetric along every axis (as the voxel kernels are) takes the real,
    half-kept spectrum; the second call reads it from the cache. Bugs: the mirrored halves
    read the wrong way, a cached spectrum of another grid reused."""
    rng = np.random.default_rng(2)
    k = rng.random((5, 3, 7))
    k = k + k[::-1]
    k = k + k[:, ::-1]
    k = (k + k[:, :, ::-1]).astype(np.float32)
    clear_spectrum_cache()
    for shape in [(12, 10, 9), (12, 10, 9), (7, 11, 8)]:
        values = rng.random(shape).astype(np.float32)
        np.testing.assert_allclose(convolve_fft(values, k),
                                   signal.fftconvolve(values, k, mode="same"), rtol=1e-4,
                                   atol=1e-4)


def _curve(hu=(-1000.0, 0.0, 1000.0), rho=(0.0, 1.0, 2.0), minimum=0.01):
    return HuDensityCurve(hu, rho, minimum, "test", "by hand")


TWO_POINTS = "a density curve needs at least two (HU, density) points"
STRICT = "the HU values of a density curve must increase strictly"
DENSITIES = "the densities of a density curve must be finite and >= 0"


@pytest.mark.parametrize("kwargs, words", [
    ({"hu": (0.0,), "rho": (1.0,)}, TWO_POINTS),
    ({"hu": (0.0, 1.0), "rho": (1.0, 1.0, 1.0)}, TWO_POINTS),
    ({"hu": ((0.0, 1.0), (2.0, 3.0)), "rho": ((1.0, 1.0), (1.0, 1.0))}, TWO_POINTS),
    ({"hu": (0.0, 0.0), "rho": (1.0, 1.0)}, STRICT),
    ({"hu": (10.0, 0.0), "rho": (1.0, 1.0)}, STRICT),
    ({"hu": (0.0, float("nan")), "rho": (1.0, 1.0)}, STRICT),
    ({"hu": (0.0, float("inf")), "rho": (1.0, 1.0)}, STRICT),
    ({"rho": (0.0, -0.1, 2.0)}, DENSITIES),
    ({"rho": (0.0, float("inf"), 2.0)}, DENSITIES),
    ({"minimum": 0.0}, "minimum_g_per_ml must be > 0"),
])
def test_a_density_curve_is_checked(kwargs, words):
    """Bugs: a one-point curve, equal or decreasing HU, a NaN or infinite HU (infinity
    increases), a negative or infinite
    density or a zero floor accepted (zero or negative voxel masses downstream)."""
    with pytest.raises(ValueError) as error:
        _curve(**kwargs)
    assert str(error.value) == words


def test_the_edges_of_a_density_curve_are_allowed():
    """Two points are enough; a density of 0 at a point is allowed (the floor keeps the
    mass positive); HU 0.5 apart still increase. Bugs: ``< 3`` points, ``<= 0`` densities or
    steps under 1 HU refused."""
    assert _curve(hu=(-1000.0, 0.0), rho=(0.0, 1.0)).hu == (-1000.0, 0.0)
    assert _curve(hu=(0.0, 0.5), rho=(1.0, 1.0)).hu == (0.0, 0.5)     # a step under 1 HU


def test_density_from_hu_floor_and_ends_by_hand():
    """Curve (-1000, 0), (0, 1), (1000, 2) g/mL, floor 0.01: -2000 HU -> 0 -> 0.01 (floor,
    constant beyond the first point); -500 HU -> 0.5; 500 HU -> 1.5; 3000 HU -> 2.0 (constant
    beyond the last). Bugs: the floor not applied, the line extrapolated beyond the ends."""
    got = density_from_hu(np.array([-2000, -1000, -500, 500, 3000]), _curve())
    np.testing.assert_allclose(got, [0.01, 0.01, 0.5, 1.5, 2.0], rtol=1e-6)
    assert got.dtype == np.float32


def test_kernel_dose_with_a_one_voxel_kernel_is_local_deposition():
    """With a kernel that keeps all energy in its voxel the kernel dose is the local dose,
    D = A CF / (rho V): 1e-3 GBq in 4 mm voxels (0.064 mL) at 1.04 g/mL = 49.67e-3 /
    (1.04 * 0.064e-3) = 746.24 Gy; at a uniform density given as a number the same. Bugs:
    the voxel volume in mL taken as litres, the density applied twice or not at all."""
    activity = np.full((3, 3, 3), 1e-3, np.float32)
    one = np.ones((1, 1, 1), np.float32)
    expected = 1e-3 * CF / (1.04 * 0.064e-3)
    assert expected == pytest.approx(746.24, abs=0.01)
    np.testing.assert_allclose(kernel_dose_gy(activity, CF, 1.04, 0.064, one), expected,
                               rtol=1e-5)
    density = np.full(activity.shape, 1.04, np.float32)
    np.testing.assert_allclose(kernel_dose_gy(activity, CF, density, 0.064, one), expected,
                               rtol=1e-5)


def test_kernel_dose_clips_round_off_and_keeps_the_lungs_own_energy():
    """A convolution returning negative values (FFT round-off far from activity) gives 0 Gy,
    not a negative dose; lung voxels take their own energy at lung density whatever the
    convolution gives: 1e-3 GBq at 0.28 g/mL in 0.064 mL: 49.67e-3 / (0.28 * 0.064e-3) =
    2771.76 Gy. Bugs: no clip at zero, the lungs' energy convolved or not added back."""
    activity = np.full((2, 2, 2), 1e-3, np.float32)
    lung = np.zeros(activity.shape, bool)
    lung[0] = True
    density = np.where(lung, 0.28, 1.04).astype(np.float32)
    dose = kernel_dose_gy(activity, CF, density, 0.064, np.ones((1, 1, 1), np.float32),
                          lung_mask=lung, convolve=lambda energy, fractions: -energy - 1.0)
    np.testing.assert_allclose(dose[0], 1e-3 * CF / (0.28 * 0.064e-3), rtol=1e-5)
    assert np.all(dose[1] == 0.0)


def test_convolution_with_a_point_symmetric_but_not_mirror_symmetric_kernel():
    """A kernel equal to itself turned through the centre (k[-z, -y, -x] = k[z, y, x]) but not
    mirror-symmetric along each axis: its spectrum is not the real, half-kept one of the voxel
    kernels. Bug: symmetry tested by flipping all axes at once (this kernel then convolved
    as if mirror-symmetric, wrongly)."""
    rng = np.random.default_rng(3)
    k = rng.random((3, 5, 3))
    k = (k + k[::-1, ::-1, ::-1]).astype(np.float32)
    assert not np.array_equal(k, k[::-1])
    values = rng.random((9, 8, 7)).astype(np.float32)
    np.testing.assert_allclose(convolve_fft(values, k),
                               signal.fftconvolve(values, k, mode="same"), rtol=1e-4, atol=1e-4)


def _mirror_symmetric(shape, seed):
    k = np.random.default_rng(seed).random(shape)
    for axis in range(len(shape)):
        k = k + np.flip(k, axis)
    return k.astype(np.float32)


@pytest.mark.parametrize("kernel_shape", [(2, 2, 2), (4, 4, 4), (4, 2, 4)])
def test_convolution_with_even_mirror_symmetric_kernels_equals_scipy(kernel_shape):
    """An even-sized kernel equal to its mirror image along every axis has no centre voxel:
    its spectrum is not the real cosine sum of the odd voxel kernels. Bug: the symmetry
    test's "odd size along every axis" miswritten (``k / 2 == 1``, ``k % 3 == 1``,
    ``k % 2 != 1``), so that such a kernel takes the cosine path and is convolved shifted
    by half a voxel. Reference: ``scipy.signal.fftconvolve``, 'same' mode."""
    rng = np.random.default_rng(5)
    kernel = _mirror_symmetric(kernel_shape, 6)
    values = rng.random((9, 8, 7)).astype(np.float32)
    np.testing.assert_allclose(convolve_fft(values, kernel),
                               signal.fftconvolve(values, kernel, mode="same"), rtol=1e-4,
                               atol=1e-4)


@pytest.mark.parametrize("values_shape, kernel_shape", [
    ((11,), (3,)), ((11,), (4,)), ((9, 8), (3, 5)), ((9, 8), (4, 3)),
    ((5, 4, 6, 7), (3, 2, 3, 4)), ((5, 4, 6, 7), (3, 3, 3, 3))])
def test_convolution_in_one_two_and_four_dimensions_equals_scipy(values_shape, kernel_shape):
    """The convolution is written for any number of axes, as ``scipy.signal.fftconvolve``
    is (the reference, 'same' mode). Bugs: a 1-D kernel's only axis contracted twice (a
    reshape error), the middle axes of a 4-D kernel skipped (the loop over them stepping by
    2), with symmetric ((3, 3, 3, 3)) and general kernels."""
    rng = np.random.default_rng(7)
    values = rng.random(values_shape).astype(np.float32)
    if kernel_shape == (3, 3, 3, 3):
        kernel = _mirror_symmetric(kernel_shape, 8)
    else:
        kernel = rng.random(kernel_shape).astype(np.float32)
    np.testing.assert_allclose(convolve_fft(values, kernel),
                               signal.fftconvolve(values, kernel, mode="same"), rtol=1e-4,
                               atol=1e-4)


def test_a_symmetric_kernel_convolves_without_a_numpy_warning():
    """The voxel kernels (odd, mirror-symmetric) take the real cosine spectrum. Bug: the
    spectrum computed with complex exponentials and then cast to single-precision reals
    (NumPy's ComplexWarning, "casting complex values to real discards the imaginary
    part", in every dose computation's log)."""
    clear_spectrum_cache()
    kernel = _mirror_symmetric((3, 5, 3), 9)
    values = np.random.default_rng(10).random((8, 7, 6)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = convolve_fft(values, kernel)
    np.testing.assert_allclose(got, signal.fftconvolve(values, kernel, mode="same"),
                               rtol=1e-4, atol=1e-4)


def test_a_kernel_spectrum_is_kept_for_the_last_two_grids():
    """A dose command convolves the planned, delivered and voxel-plan doses on one grid:
    the kernel's spectrum is computed once and kept for the last two grids (a 3-D
    spectrum is a quarter of the grid's size, so no more are kept). Bugs: the cache never
    read (looked up under another key, or the spectrum stored as None: computed again for
    every dose) or a third grid's spectrum kept (``>`` for ``>=`` when the oldest is
    dropped)."""
    clear_spectrum_cache()
    kernel = _mirror_symmetric((3, 3, 3), 11)
    grids = [fft_shape(shape, kernel.shape) for shape in [(8, 8, 8), (9, 9, 9), (10, 10, 10)]]
    assert len(set(grids)) == 3
    first = kernel_spectrum(kernel, grids[0])
    assert kernel_spectrum(kernel, grids[0]) is first          # kept
    second = kernel_spectrum(kernel, grids[1])
    third = kernel_spectrum(kernel, grids[2])                   # the first is dropped
    assert kernel_spectrum(kernel, grids[2]) is third
    assert kernel_spectrum(kernel, grids[1]) is second
    again = kernel_spectrum(kernel, grids[0])
    assert again is not first
    np.testing.assert_array_equal(again, first)                 # computed again, the same
    clear_spectrum_cache()


def test_dose_maps_are_single_precision_with_values_by_hand():
    """Dose grids of a whole abdomen (512 x 512 x 300 voxels) are kept in single precision
    (float32: 315 MB a grid rather than 630 MB), whatever precision the activity comes in.
    Values by hand: 2e-3 GBq of Y-90 (49.67 J/GBq) in a 0.064 mL voxel at 1.04 g/mL:
    2e-3 * 49.67 / (1.04 * 0.064e-3) = 1492.48 Gy; a kernel of S-values (1, 2, 1) along x
    gives the energy fractions (1, 2, 1) / 4 = (0.25, 0.5, 0.25). Bugs: ``astype(None)`` or
    an output array without its dtype (float64 dose maps, twice the memory), the
    convolution run in double precision on a double-precision input."""
    activity = np.full((2, 2, 2), 2e-3)                        # float64 in
    expected = 2e-3 * CF / (1.04 * 0.064e-3)
    assert expected == pytest.approx(1492.48, abs=0.01)
    ldm = ldm_dose_gy(activity, CF, 1.04, 0.064)
    assert ldm.dtype == np.float32
    np.testing.assert_allclose(ldm, expected, rtol=1e-6)
    kernel = VoxelKernel((4.0, 4.0, 4.0), np.array([[[1.0, 2.0, 1.0]]]) * 1e-12, 1.04)
    fractions = energy_fractions(kernel)
    assert fractions.dtype == np.float32
    np.testing.assert_allclose(fractions, [[[0.25, 0.5, 0.25]]], rtol=1e-7)
    assert convolve_fft(activity, fractions).dtype == np.float32
    one = np.ones((1, 1, 1), np.float32)
    for density in (1.04, np.full(activity.shape, 1.04)):
        dose = kernel_dose_gy(activity, CF, density, 0.064, one)
        assert dose.dtype == np.float32
        np.testing.assert_allclose(dose, expected, rtol=1e-6)


def test_kernel_dose_on_a_one_dimensional_density_map_by_hand():
    """A density map along one axis is a map, not a uniform density. 1, 2 and 3 MBq in
    0.064 mL voxels at 1, 2 and 4 g/mL with a one-voxel kernel (local deposition,
    D = A CF / (rho V)): 1e-3 * 49.67 / (1 * 0.064e-3) = 776.09 Gy, 2e-3 * 49.67 /
    (2 * 0.064e-3) = 776.09 Gy, 3e-3 * 49.67 / (4 * 0.064e-3) = 582.07 Gy. Bug: only maps of
    two or more axes taken as maps (``np.ndim(density) > 1``: the 1-D map then read as one
    number, a TypeError)."""
    activity = np.array([1e-3, 2e-3, 3e-3], np.float32)
    dose = kernel_dose_gy(activity, CF, np.array([1.0, 2.0, 4.0], np.float32), 0.064,
                          np.ones(1, np.float32))
    np.testing.assert_allclose(dose, [776.09, 776.09, 582.07], atol=0.01)


@pytest.mark.parametrize("hu, rho, words", [((0.0, None), (1.0, 1.0), STRICT),
                                             ((0.0, 1.0), (1.0, None), DENSITIES)])
def test_a_density_curve_with_a_missing_value_gets_its_own_refusal(hu, rho, words):
    """A point without its HU or its density (None, e.g. a curve built by a script from an
    incomplete table) is refused by the curve's own check, as NaN is. Bug: the points not
    read as numbers (``np.asarray`` without ``dtype=float``: an object array, and a
    TypeError from NumPy instead of the curve's ValueError)."""
    with pytest.raises(ValueError) as error:
        _curve(hu=hu, rho=rho)
    assert str(error.value) == words
