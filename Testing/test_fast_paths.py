"""The faster paths of the dose engine and the DVH indices give what the direct computations
give: the kernel spectrum computed from the kernel's offsets equals the FFT of the wrapped
kernel, the convolution equals scipy.signal.fftconvolve on odd and even grids, and the
histogram-narrowed order statistics and V_x counts equal numpy's partition and counts."""

import numpy as np
import pytest
import scipy.fft
from scipy import signal

from tareplanner.physics import voxel_dose as vd
from tareplanner.physics.dvh import ORDER_BINS, dose_indices, order_statistics


def _wrapped_spectrum(kernel, fshape):
    """Reference: the kernel placed around index 0 of a zero grid, then a real FFT."""
    grid = np.zeros(fshape)
    centre = [(k - 1) // 2 for k in kernel.shape]
    for index in np.ndindex(kernel.shape):
        grid[tuple((i - c) % n for i, c, n in zip(index, centre, fshape))] = kernel[index]
    return scipy.fft.rfftn(grid)


@pytest.mark.parametrize("shape", [(22, 42, 12), (23, 31, 17), (40, 9, 33)])
def test_kernel_spectrum_equals_fft_of_the_wrapped_kernel(shape):
    """Bug caught: a mirrored half read at the wrong offset (odd or even transform lengths),
    or a non-symmetric kernel taken for a symmetric one."""
    rng = np.random.default_rng(4)
    half = rng.random((4, 3, 5))
    symmetric = np.concatenate([half, half[-2::-1]], axis=0)
    symmetric = np.concatenate([symmetric, symmetric[:, -2::-1]], axis=1)
    symmetric = np.concatenate([symmetric, symmetric[:, :, -2::-1]], axis=2).astype(np.float32)
    general = rng.random((5, 4, 7)).astype(np.float32)
    for kernel in (symmetric, general):
        fshape = vd.fft_shape(shape, kernel.shape)
        vd.clear_spectrum_cache()
        product = np.ones(_wrapped_spectrum(kernel, fshape).shape, np.complex64)
        vd.multiply_spectrum(product, vd.kernel_spectrum(kernel, fshape), fshape)
        reference = _wrapped_spectrum(kernel, fshape)  # float32 round-off of its largest term
        np.testing.assert_allclose(product, reference, atol=1e-6 * np.abs(reference).max())
        values = rng.random(shape).astype(np.float32)
        np.testing.assert_allclose(vd.convolve_fft(values, kernel),
                                   signal.fftconvolve(values.astype(float), kernel.astype(float),
                                                      mode="same"), rtol=2e-5, atol=2e-5)


def test_spectrum_kept_per_grid_and_forgotten():
    kernel = np.ones((3, 3, 3), np.float32)
    vd.clear_spectrum_cache()
    first = vd.kernel_spectrum(kernel, (8, 8, 8))
    assert vd.kernel_spectrum(kernel, (8, 8, 8)) is first
    assert vd.kernel_spectrum(kernel, (9, 8, 8)) is not first


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["uniform", "skewed", "ties", "constant"])
def test_order_statistics_and_counts_equal_partition(dtype, kind):
    """Bug caught: a rank read in the wrong histogram bin, or a V_x count off by the values of
    the threshold's own bin (values equal to the threshold, float32 rounding at the bin
    edge). Reference: numpy.partition and count_nonzero(values >= t)."""
    rng = np.random.default_rng(7)
    n = 20 * ORDER_BINS + 13
    values = {"uniform": rng.random(n) * 200, "skewed": rng.exponential(10.0, n),
              "ties": np.round(rng.random(n) * 5), "constant": np.full(n, 3.5)}[kind]
    values = values.astype(dtype)
    ranks = [0, n - 1, n // 2, int(0.3 * n), int(0.02 * n), n - 7]
    thresholds = [float(values[5]), 100.0, 120.1, 3.0, 3.5, -1.0, 1e9]
    at, above = order_statistics(values, ranks, float(values.min()), float(values.max()),
                                 thresholds)
    reference = np.partition(values, ranks)
    assert at == {r: float(reference[r]) for r in ranks}
    assert above == {t: int(np.count_nonzero(values >= t)) for t in thresholds}


def test_order_statistics_at_the_extremes_and_without_thresholds():
    """Bug caught: a threshold exactly at the smallest value left uncounted (it is neither
    below the range nor inside it) or one exactly at the largest value counted as above the
    range (0 instead of the voxels at the maximum); the histogram path failing when no
    threshold lies inside the range or none is asked for. Reference: numpy.partition and
    count_nonzero(values >= t), on the histogram path (more than 4 × ORDER_BINS values)."""
    rng = np.random.default_rng(5)
    n = 4 * ORDER_BINS + 1
    values = (rng.random(n) * 50).astype(np.float32)
    low, high = float(values.min()), float(values.max())
    ranks = [0, n // 3, n - 1]
    reference = np.partition(values, ranks)
    for thresholds in ([low, high], [], [low - 1.0, high + 1.0]):
        at, above = order_statistics(values, ranks, low, high, thresholds)
        assert at == {r: float(reference[r]) for r in ranks}
        assert above == {t: int(np.count_nonzero(values >= t)) for t in thresholds}
    assert order_statistics(values, ranks, low, high, [low, high])[1] == {low: n, high: 1}


def test_whole_voxel_indices_by_hand():
    """D_x and V_x of 10,000 voxels with doses 1..10,000 Gy (shuffled): the hottest 70 % is
    reached at the 7,000th hottest voxel, 3,001 Gy; V100 counts 9,901 voxels >= 100 Gy."""
    values = np.random.default_rng(1).permutation(np.arange(1, 10001)).astype(np.float32)
    idx = dose_indices(values, None, 0.1, v_thresholds_gy=(100, 120))
    assert idx.d_gy["D70"] == 3001.0 and idx.d_gy["D2"] == 9801.0
    assert idx.median_gy == 5001.0 and idx.min_gy == 1.0 and idx.max_gy == 10000.0
    assert idx.v_percent == {"V100": pytest.approx(99.01), "V120": pytest.approx(98.81)}
