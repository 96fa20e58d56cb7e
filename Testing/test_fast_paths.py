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


@pytest.mark.parametrize("spacing_mm", [(2.0, 2.0, 3.0), (1.0, 1.0, 2.5)])
def test_territory_on_the_liver_box_equals_the_whole_grid(spacing_mm):
    """Bug caught: the liver box grown too little for the 4-sigma Gaussian or the closing
    (a territory voxel lost or gained at the box's edge), a box off by one voxel, the crop's
    origin placed wrongly (the CBCT resampled at shifted points), or a territory pasted back
    at the wrong place. Reference: the same territory computed on the whole CT grid. A
    liver near the grid's edge (the box clipped) and a CBCT whose field of view cuts the
    liver (holes to fill, islands to drop) are included."""
    import SimpleITK as sitk

    from tareplanner.imaging.segmentation import territory_from_cbct
    shape = (40, 64, 72)
    zz, yy, xx = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    spacing_zyx = spacing_mm[::-1]
    mm = [a * s for a, s in zip((zz, yy, xx), spacing_zyx)]
    liver = (((mm[0] - 40) / 30) ** 2 + ((mm[1] - 60) / 45) ** 2
             + ((mm[2] - 8) / 60) ** 2) <= 1.0            # touches the x = 0 edge
    rng = np.random.default_rng(7)
    hu = np.where(liver, 60.0, -100.0) + rng.normal(0, 8, shape)
    enhanced = liver & (mm[2] < 45) & (np.hypot(mm[0] - 40, mm[1] - 60) > 4)
    hu[enhanced] += 120.0
    hu[liver & (rng.random(shape) < 0.002)] += 150.0    # islands
    ct = sitk.GetImageFromArray(np.where(liver, 60.0, -100.0).astype(np.float32))
    ct.SetSpacing(spacing_mm)
    ct.SetOrigin((-12.0, 5.0, 30.0))
    cbct = sitk.GetImageFromArray(hu.astype(np.float32))
    cbct.CopyInformation(ct)
    cbct_fov = sitk.GetArrayFromImage(cbct)
    cbct_fov[:, : shape[1] // 3, :] = -3000.0           # outside the field of view
    cbct = sitk.GetImageFromArray(cbct_fov)
    cbct.CopyInformation(ct)
    shift = sitk.TranslationTransform(3, (0.7, -1.3, 0.4))
    liver_image = sitk.GetImageFromArray(liver.astype(np.uint8))
    liver_image.CopyInformation(ct)
    whole = territory_from_cbct(ct, cbct, shift, liver_image, crop=False)
    boxed = territory_from_cbct(ct, cbct, shift, liver_image)
    a, b = (sitk.GetArrayFromImage(r.mask) for r in (whole, boxed))
    assert 0 < a.sum() < liver.sum()
    np.testing.assert_array_equal(b, a)
    assert boxed.threshold_hu == whole.threshold_hu
    assert boxed.liver_outside_fov_fraction == whole.liver_outside_fov_fraction > 0
    assert boxed.mask.GetOrigin() == ct.GetOrigin() and boxed.mask.GetSize() == ct.GetSize()


def test_packed_occupancies_equal_each_mask_resampled_alone(monkeypatch):
    """Bug caught: a bit of the packed image read as another mask's (a shift off by one),
    more than eight masks in one uint8, an occupancy kept for a mask whose content changed
    (kept by identity instead of content), or for another grid. Reference: each mask
    resampled alone onto the supersampled grid by SimpleITK's nearest neighbour and
    averaged over each 3 x 3 x 3 block, written out here."""
    import SimpleITK as sitk

    from tareplanner.dosimetry import structures as st
    resample = sitk.Resample
    rng = np.random.default_rng(11)
    shape = (20, 26, 30)
    reference = sitk.Image(shape[::-1], sitk.sitkUInt8)
    reference.SetSpacing((2.0, 2.0, 3.0))
    reference.SetOrigin((-10.0, 4.0, 7.5))
    grid = sitk.Image((9, 11, 8), sitk.sitkFloat32)
    grid.SetSpacing((5.5, 4.9, 6.1))
    grid.SetOrigin((-8.0, 6.0, 9.0))
    masks = [rng.random(shape) < f for f in np.linspace(0.05, 0.9, 11)]   # 11: two packs

    def alone(mask):
        k = 3
        size = [n * k for n in grid.GetSize()]
        spacing = [s / k for s in grid.GetSpacing()]
        origin = [o - s / 2 + s / (2 * k) for o, s in zip(grid.GetOrigin(), grid.GetSpacing())]
        fine = sitk.Image(size, sitk.sitkUInt8)
        fine.SetSpacing(spacing)
        fine.SetOrigin(origin)
        src = sitk.GetImageFromArray(mask.astype(np.uint8))
        src.CopyInformation(reference)
        a = sitk.GetArrayFromImage(resample(src, fine, sitk.Transform(),
                                            sitk.sitkNearestNeighbor, 0)).astype(np.float32)
        nz, ny, nx = (n // k for n in a.shape)
        return a.reshape(nz, k, ny, k, nx, k).mean(axis=(1, 3, 5))

    st._OCCUPANCIES.clear()
    calls = []
    monkeypatch.setattr(sitk, "Resample", lambda *a, **kw: calls.append(1) or resample(*a, **kw))
    got = st.occupancies_on(grid, masks, reference)
    assert len(calls) == 2                      # 11 masks: 8 + 3 bits
    for mask, occupancy in zip(masks, got):
        np.testing.assert_array_equal(occupancy, alone(mask))
    # kept: asked again (one by one, or a copy of the same content) without resampling
    np.testing.assert_array_equal(st.occupancy_on(grid, masks[4].copy(), reference), got[4])
    assert len(calls) == 2
    # a changed mask (same array, new content) and another grid are resampled again
    changed = masks[4].copy()
    changed[0, 0, :] = ~changed[0, 0, :]
    np.testing.assert_array_equal(st.occupancy_on(grid, changed, reference), alone(changed))
    other = sitk.Image((9, 11, 8), sitk.sitkFloat32)
    other.SetSpacing((5.5, 4.9, 6.1))
    other.SetOrigin((-7.0, 6.0, 9.0))
    st.occupancy_on(other, masks[4], reference)
    assert len(calls) == 4
    with pytest.raises(ValueError):             # a kept occupancy cannot be changed in place
        got[0][0, 0, 0] = 2.0
