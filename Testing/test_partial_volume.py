"""Partial-volume correction (geometric transfer matrix, Rousset et al., J Nucl Med
1998;39:904-911) against hand calculations, Gaussian integrals and the synthetic patient's
ground truth (TNR T1 3.2, T2 2.4, T3 1.8; LSF 6 %: tareplanner/imaging/anatomy.py and
phantom.py; its MAA SPECT is blurred with a 14 mm FWHM Gaussian).
"""

import json
import math

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from tareplanner.cli.main import main
from tareplanner.errors import FieldValueError, TarePlannerInputError
from tareplanner.imaging.measure import (LabelInputs, PositionImages, measure,
                                         measurement_uncertainty)
from tareplanner.imaging.partial_volume import (PvcResult, RegionSet, build_regions,
                                                check_fwhm, correct_regions,
                                                correct_regions_with_psfs, default_resolution,
                                                resolution_from_camera_file, resolution_given,
                                                spect_index_on_grid)
from tareplanner.imaging.phantom import make_phantom, spec_for_size
from tareplanner.imaging.phantom_files import label_images
from tareplanner.imaging.readers import LoadedImage
from tareplanner.physics.partial_volume import (PointSpread, blur, fine_voxel_counts,
                                                region_means, solve_gtm, transfer_matrix)

SQRT_2PI = math.sqrt(2.0 * math.pi)
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))   # 2.35482


# --------------------------------------------------------------------------- physics

def _variance_along(image: np.ndarray, axis: int) -> float:
    profile = image.sum(axis=tuple(a for a in range(3) if a != axis))
    x = np.arange(profile.size)
    mean = (profile * x).sum() / profile.sum()
    return float((profile * (x - mean) ** 2).sum() / profile.sum())


def test_blur_width_is_the_fwhm_in_mm_along_each_axis():
    """Bug caught: the FWHM used as sigma (2.35 times too wide), or the spacing applied in
    (x, y, z) order to a (z, y, x) array (an anisotropic grid blurred along the wrong axes).

    FWHM 12 mm -> sigma = 12 / 2.35482 = 5.0959 mm; on a grid of 2 mm (z) and 1 mm (y, x)
    the variance of a blurred point is (5.0959 / 2)^2 = 6.4922 voxels^2 along z and
    5.0959^2 = 25.969 along y and x. Counts are kept (the kernel sums to 1)."""
    point = np.zeros((41, 81, 81))
    point[20, 40, 40] = 1.0
    out = blur(point, (2.0, 1.0, 1.0), PointSpread.gaussian(12.0))
    assert out.sum() == pytest.approx(1.0, rel=1e-6)
    assert _variance_along(out, 0) == pytest.approx((12.0 / FWHM_PER_SIGMA / 2) ** 2, rel=0.01)
    assert _variance_along(out, 1) == pytest.approx((12.0 / FWHM_PER_SIGMA) ** 2, rel=0.01)
    assert _variance_along(out, 2) == pytest.approx((12.0 / FWHM_PER_SIGMA) ** 2, rel=0.01)


def test_two_gaussian_psf_mixes_the_variances_by_weight():
    """Bug caught: the weights of a PSF with tails ignored (each component at full weight,
    counts doubled) or only the first component used.

    0.8 × (FWHM 6 mm) + 0.2 × (FWHM 18 mm) on 1 mm voxels: variance
    0.8 × (6/2.35482)^2 + 0.2 × (18/2.35482)^2 = 0.8 × 6.4925 + 0.2 × 58.432 = 16.880 mm^2."""
    point = np.zeros((121, 121, 121))
    point[60, 60, 60] = 1.0
    out = blur(point, (1.0, 1.0, 1.0), PointSpread(((0.8, 6.0), (0.2, 18.0))))
    assert out.sum() == pytest.approx(1.0, rel=1e-6)
    assert _variance_along(out, 2) == pytest.approx(16.880, rel=0.01)


@pytest.mark.parametrize("components, field, allowed", [
    (((0.5, 10.0), (0.4, 30.0)), "psf weights", "summing to 1"),
    (((1.0, -1.0),), "psf fwhm_mm", ">= 0 mm"),
    (((1.0, float("nan")),), "psf fwhm_mm", ">= 0 mm"),
    (((0.0, 10.0), (1.0, 10.0)), "psf weight", "> 0"),
    ((), "psf", "one or more"),
])
def test_psf_refuses_bad_components(components, field, allowed):
    """Bug caught: a PSF whose weights do not sum to 1 (counts created or lost) or with a
    negative or NaN width accepted silently."""
    with pytest.raises(ValueError) as info:
        PointSpread(components)
    assert str(info.value).startswith(f"{field}: got") and allowed in str(info.value)


def test_fine_voxel_counts_by_hand():
    """Bug caught: fine voxels outside the coarse grid (index -1) or in no region counted,
    or region and coarse index swapped in the flat bincount.

    Six fine voxels: coarse voxel 0 holds regions 0, 0, 1; coarse voxel 2 holds region 1;
    one fine voxel is outside the coarse grid, one is in no region."""
    index = np.array([0, 0, 0, 2, -1, 1])
    regions = np.array([0, 0, 1, 1, 0, -1])
    expected = np.array([[2, 1], [0, 0], [0, 1]])
    np.testing.assert_array_equal(fine_voxel_counts(index, regions, 2, 3), expected)


def test_transfer_matrix_of_two_slabs_against_the_gaussian_integral():
    """Bug caught: a transposed matrix (W[j, i] for W[i, j]: regions of unequal size show
    it), spill normalised by the wrong region's size, or the FWHM taken in voxels.

    Two slabs along x, A 50 voxels and B 150 voxels of 1 mm, FWHM 5 × 2.35482 mm (sigma
    5 mm). A half-space blurred by a Gaussian spills sigma/sqrt(2 pi) = 1.99471 mm of
    concentration across its boundary (integral of the normal tail). The mean of B's image
    over A is therefore 1.99471/50 = 0.039894, and of A's image over B 1.99471/150 =
    0.013298 (the outer faces lose counts to outside the image, not to the other slab)."""
    nx = 200
    labels = np.zeros((1, 1, nx), dtype=int)
    labels[..., 50:] = 1
    index = np.arange(nx).reshape(1, 1, nx)
    counts = fine_voxel_counts(index, labels, 2, nx)
    psf = PointSpread.gaussian(5.0 * FWHM_PER_SIGMA)
    # slabs infinite in y and z: a one-voxel grid there, with voxels so large (1 km) that
    # the blur does not reach across them
    w = transfer_matrix(counts, (1, 1, nx), (1e6, 1e6, 1.0), psf).matrix
    spill_mm = 5.0 / SQRT_2PI
    assert w[0, 1] == pytest.approx(spill_mm / 50, rel=0.01)
    assert w[1, 0] == pytest.approx(spill_mm / 150, rel=0.01)
    # each slab keeps what it does not spill across the boundary or out of the image
    assert w[0, 0] == pytest.approx(1 - 2 * spill_mm / 50, rel=0.01)
    assert w[1, 1] == pytest.approx(1 - 2 * spill_mm / 150, rel=0.01)


def test_gtm_recovers_known_means_from_a_blurred_sampled_image():
    """Bug caught: the matrix built with another operator than the one that reads the data
    (fractions of fine voxels against coarse voxels, a different blur): the corrected means
    would then differ from the true ones even without noise.

    Three regions on a 4× finer grid (a sphere of radius 6 mm, a shell around it, the rest);
    the image is made independently: true means 5, 1, 0.2 per fine voxel, averaged over
    each coarse voxel, blurred by FWHM 8 mm on the 4 mm coarse grid."""
    k, n = 4, 16
    z, y, x = np.meshgrid(*[(np.arange(n * k) + 0.5) / k * 4.0 - 32.0] * 3, indexing="ij")
    r = np.sqrt(x ** 2 + y ** 2 + z ** 2)
    labels = np.where(r < 6.0, 0, np.where(r < 14.0, 1, 2))
    truth = np.array([5.0, 1.0, 0.2])
    fine_image = truth[labels]
    coarse = fine_image.reshape(n, k, n, k, n, k).mean(axis=(1, 3, 5))
    psf = PointSpread.gaussian(8.0)
    # the image blurred independently of the module: sigma = FWHM / (2 sqrt(2 ln 2)) = 3.3973
    # mm = 0.84932 voxels of 4 mm, zero outside the field of view, kernel cut at 4 sigma
    sigma_voxels = 8.0 / (2.0 * math.sqrt(2.0 * math.log(2.0))) / 4.0
    image = ndimage.gaussian_filter(coarse, sigma_voxels, mode="constant", truncate=4.0)
    coarse_index = (np.arange(n)[:, None, None] * n * n + np.arange(n)[None, :, None] * n
                    + np.arange(n)[None, None, :])
    index = np.repeat(np.repeat(np.repeat(coarse_index, k, 0), k, 1), k, 2)
    counts = fine_voxel_counts(index, labels, 3, n ** 3)
    w = transfer_matrix(counts, (n, n, n), (4.0, 4.0, 4.0), psf).matrix
    measured = region_means(counts, image.ravel())
    assert measured[0] < 0.8 * truth[0]      # the sphere is strongly partial-volumed
    solution = solve_gtm(w, measured)
    assert solution.method == "linear solve"
    np.testing.assert_allclose(solution.means, truth, rtol=1e-9)


def test_negative_solution_falls_back_to_non_negative_least_squares():
    """Bug caught: a negative region mean (noise on a near-empty region) kept, or the
    fallback taken when the direct solution is valid; the relative residual of the fallback
    not reported (0), multiplied by |t| instead of divided, or dropped for a dim image.

    W = [[1, 0.5], [0.5, 1]], t = (1, 0.2): the direct solution is (1.2, -0.4). With c2 = 0
    the least squares minimise (c1 - 1)^2 + (0.5 c1 - 0.2)^2: 2(c1 - 1) + (0.5 c1 - 0.2) = 0,
    c1 = 2.2 / 2.5 = 0.88. With t = (1, 1) the direct solution (2/3, 2/3) is kept."""
    w = np.array([[1.0, 0.5], [0.5, 1.0]])
    nnls = solve_gtm(w, np.array([1.0, 0.2]))
    assert nnls.method == "non-negative least squares"
    np.testing.assert_allclose(nnls.means, [0.88, 0.0], atol=1e-12)
    # what the clipped solution leaves: a c - b = (0.88 - 1, 0.44 - 0.2) = (-0.12, 0.24),
    # |.| = sqrt(0.072) = 0.268328 over |b| = sqrt(1.04) = 1.019804: 0.263117; the same
    # relative residual for an image half as bright (|b| < 1)
    assert nnls.relative_residual == pytest.approx(0.263117, rel=1e-5)
    assert solve_gtm(w, np.array([0.5, 0.1])).relative_residual == pytest.approx(0.263117,
                                                                                 rel=1e-5)
    direct = solve_gtm(w, np.array([1.0, 1.0]))
    assert direct.method == "linear solve"
    np.testing.assert_allclose(direct.means, [2 / 3, 2 / 3], rtol=1e-12)


def test_blur_against_scipy_for_narrow_integer_and_mixed_psfs():
    """Bug caught: an integer image blurred in integers (scipy keeps the input's type: the
    counts truncated), a FWHM below 1 mm taken for "no blur", a zero-width component that
    replaces, subtracts or divides what the other components added, or that stops the sum.

    Expected from scipy.ndimage.gaussian_filter (kernel cut at 4 sigma, zero outside) with
    sigma = FWHM / 2.35482 / spacing worked out here: FWHM 0.9 mm on 1 mm voxels, sigma
    0.38219 voxels; 0.5 × no blur + 0.5 × FWHM 8 mm (sigma 3.3973 mm = 1.6986 voxels of 2
    mm), in both orders."""
    point = np.zeros((9, 9, 9), dtype=np.int64)
    point[4, 4, 4] = 1000
    narrow = blur(point, (1.0, 1.0, 1.0), PointSpread.gaussian(0.9))
    expected = ndimage.gaussian_filter(point.astype(float), 0.9 / FWHM_PER_SIGMA,
                                       mode="constant", truncate=4.0)
    np.testing.assert_allclose(narrow, expected, rtol=1e-12, atol=1e-12)
    assert narrow[4, 4, 4] < 900.0 and narrow[4, 4, 5] > 10.0
    wide = ndimage.gaussian_filter(point.astype(float), 8.0 / FWHM_PER_SIGMA / 2.0,
                                   mode="constant", truncate=4.0)
    for components in (((0.5, 0.0), (0.5, 8.0)), ((0.5, 8.0), (0.5, 0.0))):
        mixed = blur(point, (2.0, 2.0, 2.0), PointSpread(components))
        np.testing.assert_allclose(mixed, 0.5 * point + 0.5 * wide, rtol=1e-12, atol=1e-12)


def test_psf_takes_zero_and_sub_millimetre_widths():
    """Bug caught: a zero-width component (a PSF part that is not blurred: the "no blur" of
    an ideal camera) or a width under 1 mm refused."""
    assert PointSpread.gaussian(0.0).components == ((1.0, 0.0),)
    assert PointSpread(((0.5, 0.5), (0.5, 0.0))).components == ((0.5, 0.5), (0.5, 0.0))


def test_fine_voxel_counts_without_uncounted_voxels_and_mismatched_shapes():
    """Bug caught: the count table cut short when the last coarse voxels hold no fine voxel
    and no fine voxel is left uncounted (np.bincount returns only up to the largest index
    seen); a region map of another size than the index map accepted or refused without
    naming both sizes.

    Four coarse voxels, two regions; fine voxels only in coarse voxels 0 and 1."""
    counts = fine_voxel_counts(np.array([0, 1, 1]), np.array([1, 0, 1]), 2, 4)
    np.testing.assert_array_equal(counts, [[0, 1], [1, 1], [0, 0], [0, 0]])
    with pytest.raises(ValueError) as info:
        fine_voxel_counts(np.array([0, 1, 1]), np.array([1, 0]), 2, 4)
    assert str(info.value) == ("regions: got 2 voxels; allowed: as many as the index map (3)")


def _transfer_by_hand(counts, shape, spacing, fwhm):
    """W[i, j] worked out on the whole grid without the module: occupancy fractions
    n[v, j] / sum_k n[v, k] (0 where a coarse voxel holds no fine voxel), each blurred by
    scipy.ndimage.gaussian_filter over the whole grid, averaged over region i with the
    weights n[v, i]."""
    counts = counts.astype(float)
    occupied = counts.sum(axis=1)
    fractions = np.zeros_like(counts)
    fractions[occupied > 0] = counts[occupied > 0] / occupied[occupied > 0, None]
    sigma = [fwhm / FWHM_PER_SIGMA / s for s in spacing]
    n_regions = counts.shape[1]
    w = np.zeros((n_regions, n_regions))
    for j in range(n_regions):
        image = ndimage.gaussian_filter(fractions[:, j].reshape(shape), sigma, mode="constant",
                                        truncate=4.0).ravel()
        for i in range(n_regions):
            if counts[:, i].sum() > 0:
                w[i, j] = counts[:, i] @ image / counts[:, i].sum()
    return w


def test_transfer_matrix_on_sub_millimetre_voxels_with_empty_and_single_voxel_regions():
    """Bug caught: the blur of each region cut to a box narrower than its kernel (the reach
    computed with the spacing multiplied instead of divided: on 0.5 mm voxels a quarter of
    the kernel), the empty-voxel fractions divided by zero (NaN spread by the blur), a region
    of one fine voxel taken for an empty one, an empty region stopping the loop over the
    regions that follow or given a NaN row, its zero row and column kept in the condition
    number (infinite), the fine-voxel counts or the condition number lost from the result.

    A 1 × 3 × 40 grid of 0.5 mm voxels, FWHM 4 mm (sigma 3.4 voxels, kernel radius 14):
    region 0 a 4-voxel slab at x = 18-21, region 1 empty, region 2 a single fine voxel at
    x = 30, region 3 the rest; coarse voxels 0-1 hold no fine voxel (outside the CT).
    Expected: :func:`_transfer_by_hand` (scipy over the whole grid); the condition number is
    numpy's of the 3 × 3 matrix of the non-empty regions."""
    shape, spacing = (1, 3, 40), (0.5, 0.5, 0.5)
    x = np.tile(np.arange(40), 3)
    labels = np.full(120, 3)
    labels[(x >= 18) & (x <= 21)] = 0
    labels[np.flatnonzero(x == 30)[0]] = 2
    index = np.arange(120)
    index[x < 2] = -1
    counts = fine_voxel_counts(index, labels, 4, 120)
    assert counts[:, 1].sum() == 0 and counts[:, 2].sum() == 1
    tm = transfer_matrix(counts, shape, spacing, PointSpread.gaussian(4.0))
    expected = _transfer_by_hand(counts, shape, spacing, 4.0)
    assert np.isfinite(tm.matrix).all()
    np.testing.assert_allclose(tm.matrix, expected, rtol=1e-10, atol=1e-14)
    assert (tm.matrix[1] == 0).all() and (tm.matrix[:, 1] == 0).all()
    assert tm.matrix[2, 2] > 1e-3          # (most of its blur leaves the thin grid)
    np.testing.assert_array_equal(tm.fine_voxels, [12, 0, 1, 101])
    used = [0, 2, 3]
    assert tm.condition_number == pytest.approx(
        np.linalg.cond(expected[np.ix_(used, used)]), rel=1e-9)
    assert math.isfinite(tm.condition_number)


def test_transfer_matrix_of_nothing_and_of_the_wrong_grid():
    """Bug caught: no region at all giving a finite condition number (it is infinite: no
    system to solve), or counts for another grid accepted or refused without the sizes."""
    empty = transfer_matrix(np.zeros((8, 2)), (2, 2, 2), (1.0, 1.0, 1.0),
                            PointSpread.gaussian(5.0))
    assert empty.condition_number == math.inf
    np.testing.assert_array_equal(empty.matrix, np.zeros((2, 2)))
    with pytest.raises(ValueError) as info:
        transfer_matrix(np.zeros((7, 2)), (2, 2, 2), (1.0, 1.0, 1.0), PointSpread.gaussian(5.0))
    assert str(info.value) == "counts: got 7 coarse voxels; allowed: the grid's 8"


def test_region_means_by_hand():
    """Bug caught: an empty region given 0 (or garbage) instead of NaN, a region of a single
    fine voxel treated as empty, the counts and the image multiplied the wrong way round.

    Three coarse voxels with values 3, 6, 100 (integers, as a count image may be); region 0
    has 2 fine voxels in coarse voxel 0 and 1 in voxel 1: (2·3 + 1·6) / 3 = 4; region 1 has
    one fine voxel, in voxel 1: 6; region 2 none: NaN."""
    counts = np.array([[2, 0, 0], [1, 1, 0], [0, 0, 0]])
    means = region_means(counts, np.array([3, 6, 100]))
    np.testing.assert_array_equal(means[:2], [4.0, 6.0])
    assert math.isnan(means[2])


def test_gtm_leaves_out_regions_that_cannot_be_measured():
    """Bug caught: a region whose measured mean is NaN (no voxel) fed into the solve (every
    mean NaN), the matrix cut to the used rows but not the used columns, a region that
    spills nothing into the image (a zero column: its concentration is not measurable)
    given 0 instead of NaN, or a zero row taken for a zero column.

    By hand: W = [[1, 0.2, 0.1], [0.3, 1, 0.1], [0.1, 0.1, 1]], t = (1.2, 1.3, NaN): the
    2 × 2 system [[1, 0.2], [0.3, 1]] c = (1.2, 1.3) has det 0.94 and c = ((1.2 - 0.26) /
    0.94, (1.3 - 0.36) / 0.94) = (1, 1). W = [[1, 0], [0.5, 0]], t = (2, 1): region 1
    contributes to no measurement; region 0 alone: c0 = 2, exactly (residual 0)."""
    w = np.array([[1.0, 0.2, 0.1], [0.3, 1.0, 0.1], [0.1, 0.1, 1.0]])
    solution = solve_gtm(w, np.array([1.2, 1.3, np.nan]))
    np.testing.assert_allclose(solution.means[:2], [1.0, 1.0], rtol=1e-12)
    assert math.isnan(solution.means[2]) and solution.method == "linear solve"
    assert solution.relative_residual == pytest.approx(0.0, abs=1e-12)
    blind = solve_gtm(np.array([[1.0, 0.0], [0.5, 0.0]]), np.array([2.0, 1.0]))
    assert blind.means[0] == pytest.approx(2.0, rel=1e-12) and math.isnan(blind.means[1])
    assert blind.relative_residual == pytest.approx(0.0, abs=1e-12)


def test_gtm_with_nothing_measured_and_with_a_zero_image():
    """Bug caught: no measured region ending in an error or a made-up solution instead of
    NaN means, the method "none" and a NaN residual; an all-zero image (|t| = 0) dividing
    by zero in the relative residual (it is 0: W·0 = 0 exactly).

    By hand: t = (NaN, NaN) -> nothing to solve; W = I, t = (0, 0) -> c = (0, 0)."""
    none = solve_gtm(np.eye(2), np.array([np.nan, np.nan]))
    assert none.method == "none" and math.isnan(none.relative_residual)
    assert none.means.shape == (2,) and np.isnan(none.means).all()
    zero = solve_gtm(np.eye(2), np.zeros(2))
    np.testing.assert_array_equal(zero.means, [0.0, 0.0])
    assert zero.method == "linear solve" and zero.relative_residual == 0.0


# --------------------------------------------------------------------------- resolution

@pytest.mark.parametrize("value, ok", [(0.0, False), (1e-9, True), (50.0, True),
                                       (50.0001, False), (-3.0, False), (float("nan"), False),
                                       (float("inf"), False)])
def test_fwhm_range_edges(value, ok):
    """Bug caught: a zero, negative, non-finite or absurd FWHM (> 50 mm) accepted (a zero
    FWHM turns the correction into a no-op without saying so). Edges: 0 refused, just above
    0 accepted, 50 accepted, just above 50 refused."""
    if ok:
        assert resolution_given(value)["fwhm_mm"] == value
    else:
        with pytest.raises(FieldValueError) as info:
            resolution_given(value)
        assert str(info.value).startswith("--spect-fwhm-mm: got") and "<= 50" in str(info.value)


@pytest.mark.parametrize("text, field", [
    ('{"source": "line source 2025"}', "fwhm_mm"),
    ('{"fwhm_mm": 12}', "source"),
    ('{"fwhm_mm": "12", "source": "x"}', "fwhm_mm"),
    ('{"fwhm_mm": 12, "source": "x", "sigma_mm": 5}', "--camera"),
    ('[12]', "--camera"),
    ('{"fwhm_mm": 12, ', "--camera"),
])
def test_camera_file_refused_with_the_field(tmp_path, text, field):
    """Bug caught: a site camera file without a FWHM or without its source, with a FWHM as
    text, with an unknown key (a sigma given where a FWHM is meant) or not JSON accepted."""
    path = tmp_path / "camera.json"
    path.write_text(text)
    with pytest.raises(TarePlannerInputError) as info:
        resolution_from_camera_file(str(path))
    assert field in info.value.field


def test_camera_file_accepted(tmp_path):
    """Bug caught: the camera's measured FWHM or its source lost on the way to the record."""
    path = tmp_path / "camera.json"
    path.write_text(json.dumps({"fwhm_mm": 11.5, "source": "line source in water, 2026-01",
                                "name": "SPECT/CT room 2"}))
    res = resolution_from_camera_file(str(path))
    assert res["fwhm_mm"] == 11.5 and res["source"] == "line source in water, 2026-01"
    assert res["camera"] == "SPECT/CT room 2"


# --------------------------------------------------------------------------- synthetic patient

def _loaded(image, units, modality, radionuclide=None):
    meta = {"radionuclide": radionuclide} if radionuclide else {}
    return LoadedImage(image=image, modality=modality, units=units, source="memory",
                       sha256="", meta=meta)


def _measure(phantom, spect=None, **kwargs):
    labels = label_images(phantom)
    names = {k + 1: t.name for k, t in enumerate(phantom.spec.anatomy.tumours)}
    territories = sitk.GetArrayFromImage(labels["territories"])
    positions = []
    for i, terr in enumerate(phantom.spec.anatomy.territories, start=1):
        mask = sitk.GetImageFromArray((territories == i).astype(np.uint8))
        mask.CopyInformation(phantom.ct)
        positions.append(PositionImages(name=terr.name, territory=mask))
    return measure(_loaded(phantom.ct, "HU", "CT"),
                   _loaded(spect or phantom.spect, "counts", "NM", "Tc-99m"),
                   LabelInputs(liver=labels["liver"], tumours=labels["tumours"],
                               tumour_names=names, lungs=labels["lungs"]),
                   positions, **kwargs)


def _tnrs(m, key="tnr"):
    return {t["name"]: t[key] for p in m["positions"] for t in p["tumours"]}


@pytest.fixture(scope="module")
def noise_free():
    """The small patient's MAA SPECT without noise (14 mm FWHM blur, as always)."""
    return make_phantom(spec_for_size("small", spect_noise=False, pet=False))


def test_correction_recovers_the_truth_without_noise(noise_free):
    """Bug caught: spill-out left uncorrected (TNR 14-19 % low, LSF 10 % high on this
    patient), or corrected with the wrong measurement operator.

    Truth: TNR 3.2, 2.4, 1.8, LSF 6 %. Noise-free, so what is left is the sampling of the
    label maps (2 × 2 × 3 mm) and of the SPECT (4.42 mm): measured within 1.2 % (TNR) and
    0.2 % (LSF); the test allows 2.5 % and 1 %."""
    m = _measure(noise_free)
    truth = noise_free.truth
    assert m["partial_volume_correction"]["applied"] is True
    assert m["partial_volume_correction"]["fwhm_mm"] == 14.0
    for name, tnr in _tnrs(m).items():
        assert tnr == pytest.approx(truth["tnr_maa"][name], rel=0.025), name
        assert _tnrs(m, "tnr_uncorrected")[name] < 0.9 * truth["tnr_maa"][name]
    assert m["lung_shunt"]["lung_shunt_fraction"] == pytest.approx(0.06, rel=0.01)
    assert m["lung_shunt"]["partial_volume_corrected"] is True
    assert m["lung_shunt_uncorrected"]["lung_shunt_fraction"] > 0.063


def test_noisy_spect_within_5_percent_of_truth(small_phantom):
    """Bug caught: the correction amplifying the Poisson noise of small regions beyond use
    (the 7 mL tumour T3), or a lung-base bias left in the LSF.

    The small patient's own noisy SPECT (4e6 counts): every TNR and the LSF within 5 % of the
    truth (measured: within 1.7 % and 0.2 % over three seeds, docs/imaging.md)."""
    m = _measure(small_phantom)
    for name, tnr in _tnrs(m).items():
        assert tnr == pytest.approx(small_phantom.truth["tnr_maa"][name], rel=0.05), name
    assert m["lung_shunt"]["lung_shunt_fraction"] == pytest.approx(0.06, rel=0.05)


def test_assumed_resolution_too_small_or_too_large_moves_tnr_the_expected_way(noise_free):
    """Bug caught: the FWHM misread (mm against voxels, FWHM against sigma) so that a wider
    assumed PSF does not mean a stronger correction.

    The SPECT is blurred with 14 mm. Assuming 11.2 mm under-corrects (TNRs between the
    uncorrected value and the truth); assuming 16.8 mm over-corrects (above the truth)."""
    narrow = _measure(noise_free, resolution={"fwhm_mm": 11.2, "source": "test",
                                              "chosen_by": "test"})
    wide = _measure(noise_free, resolution={"fwhm_mm": 16.8, "source": "test",
                                            "chosen_by": "test"})
    truth = noise_free.truth["tnr_maa"]
    for name in truth:
        assert _tnrs(narrow, "tnr_uncorrected")[name] < _tnrs(narrow)[name] < truth[name]
        assert _tnrs(wide)[name] > truth[name]
    assert wide["partial_volume_correction"]["resolution"]["fwhm_mm"] == 16.8


def test_no_pvc_keeps_the_measured_values(noise_free):
    """Bug caught: --no-pvc still correcting, or the uncorrected values differing between
    the two runs (the correction must not change what is measured)."""
    off = _measure(noise_free, partial_volume_correction=False)
    on = _measure(noise_free)
    assert off["partial_volume_correction"]["applied"] is False
    assert _tnrs(off) == _tnrs(off, "tnr_uncorrected")
    for name, tnr in _tnrs(off).items():
        assert _tnrs(on, "tnr_uncorrected")[name] == pytest.approx(tnr, rel=1e-12)
    assert off["lung_shunt"] == off["lung_shunt_uncorrected"]
    assert on["lung_shunt_uncorrected"]["lung_shunt_fraction"] == pytest.approx(
        off["lung_shunt"]["lung_shunt_fraction"], rel=1e-12)


def test_lung_base_margin_with_the_correction(noise_free):
    """Bug caught: the lung-base method fed the uncorrected lung density, or the base region
    dropped from the matrix (its spill then wrongly attributed).

    With the correction the 20 mm base exclusion has nothing left to remove: it must agree
    with the whole-lung corrected LSF and the truth (6 %) within 1 %."""
    m = _measure(noise_free, lung_base_margin_mm=20.0)
    assert m["lung_shunt"]["method"] == "spect-lung-base-excluded"
    assert "lung base" in m["partial_volume_correction"]["regions"]
    assert m["lung_shunt"]["lung_shunt_fraction"] == pytest.approx(0.06, rel=0.01)
    assert m["lung_shunt_whole_lung"]["lung_shunt_fraction"] == pytest.approx(0.06, rel=0.01)


def test_regions_are_disjoint_and_cover_the_grid():
    """Bug caught: a voxel counted in two regions (a tumour also in its territory's normal
    liver) or in none (the GTM assumes the regions tile the image)."""
    shape = (4, 4, 4)
    liver = np.zeros(shape, bool)
    liver[1:3] = True
    tumour = np.zeros(shape, bool)
    tumour[1, 1, 1] = True
    territory = liver.copy()
    territory[2] = False
    lungs = np.zeros(shape, bool)
    lungs[3] = True
    body = np.ones(shape, bool)
    body[0, 0] = False
    regions = build_regions(tumours={"T1": tumour}, territories={"a": territory}, liver=liver,
                            lungs=lungs, body=body)
    assert regions.names == ("tumour:T1", "normal:a", "liver outside territories", "lungs",
                             "rest of body", "outside body")
    counts = np.bincount(regions.labels.ravel())
    # hand count: 1 tumour voxel, 16 - 1 normal, 16 outside territories, 16 lungs,
    # 16 - 4 rest of body in slice 0, 4 outside the body
    np.testing.assert_array_equal(counts, [1, 15, 16, 16, 12, 4])


# --------------------------------------------------------------------------- uncertainty

#: residual standard uncertainty of the corrected TNR and LSF (docs/imaging.md: measured
#: residuals at most 1.7 % and 0.43 % on the synthetic patient, rounded up to 2 % and 1 %),
#: and of the uncorrected TNR (docs/imaging.md: bias -14 to -19 % at 14 mm FWHM)
U_PVC_TNR, U_PVC_LSF, U_UNCORRECTED_TNR = 0.02, 0.01, 0.19


def _measurement(units="counts", applied=True):
    return {"spect": {"units": units}, "partial_volume_correction": {"applied": applied},
            "ct_spacing_mm": [1.0, 1.0, 2.5],
            "positions": [{"name": "right", "normal_counts": {"counts": 40000.0},
                           "tumours": [{"name": "T1", "counts": 10000.0}]}],
            "lung_shunt": {}, "lung_shunt_uncorrected": {
                "lung_counts": 5000.0, "lung_volume_ml": 2000.0, "lung_volume_used_ml": 1000.0}}


def test_case_uncertainty_by_hand():
    """Bug caught: Poisson terms from counts per mL instead of counts, the lung counts of
    the base-excluded method taken as measured (they are extrapolated to the whole lung),
    the residual of the correction left out, or a boundary other than the CT voxel size.

    u_pvc = 0.02 (TNR), 0.01 (LSF) (data file). TNR: sqrt(1/10000 + 1/40000 + 0.02^2) =
    sqrt(0.000525) = 0.022913. LSF: 5000 counts extrapolated from 1000 of 2000 mL -> 2500
    measured: sqrt(1/2500 + 0.01^2) = sqrt(0.0005) = 0.022361. Boundary: largest CT spacing,
    2.5 mm."""
    out = measurement_uncertainty(_measurement())
    assert out["tnr_relative_sd"]["T1"] == pytest.approx(0.022913, abs=1e-6)
    assert out["lsf_relative_sd"] == pytest.approx(0.022361, abs=1e-6)
    assert out["boundary_mm"] == 2.5


def test_case_uncertainty_without_counts_without_correction_and_manual():
    """Bug caught: Poisson terms computed from Bq/mL values as if they were counts; the
    small residual of the correction claimed when it was turned off; a measured
    uncertainty given to a value entered by hand."""
    bq = measurement_uncertainty(_measurement(units="Bq/mL"))
    assert bq["tnr_relative_sd"]["T1"] == pytest.approx(0.02)
    off = measurement_uncertainty(_measurement(applied=False))
    assert off["tnr_relative_sd"]["T1"] == pytest.approx(
        math.sqrt(1 / 10000 + 1 / 40000 + U_UNCORRECTED_TNR ** 2), abs=1e-6)
    manual = measurement_uncertainty(_measurement(), lsf_entered=True, tnr_entered={"T1"})
    assert "lsf_relative_sd" not in manual and "tnr_relative_sd" not in manual


# --------------------------------------------------------------------------- command line

def _measure_args(d, out, *extra):
    return ["measure", "--ct", str(d / "nifti" / "ct.nii.gz"),
            "--spect", str(d / "nifti" / "spect_maa.nii.gz"),
            "--liver", str(d / "labels" / "liver.nii.gz"),
            "--tumours", str(d / "labels" / "tumours.nii.gz"), "--tumour-names", "T1,T2,T3",
            "--territories", str(d / "labels" / "territories.nii.gz"),
            "--territory-names", "right hepatic,left hepatic", "--goal", "tumour_dose_gy=250",
            "--product", "therasphere", "-o", str(out / "case.json"),
            "--measurement-output", str(out / "measurement.json"), *extra]


@pytest.mark.parametrize("extra, message", [
    (["--spect-fwhm-mm", "-3"], "--spect-fwhm-mm: got -3.0; allowed: a FWHM in mm"),
    (["--spect-fwhm-mm", "nan"], "--spect-fwhm-mm: got nan"),
    (["--spect-fwhm-mm", "0"], "--spect-fwhm-mm: got 0.0"),
    (["--spect-fwhm-mm", "12", "--camera", "c.json"], "--camera: got 'c.json'; allowed: "
                                                      "either --camera or --spect-fwhm-mm"),
    (["--no-pvc", "--spect-fwhm-mm", "12"], "--no-pvc: got True"),
    (["--camera", "/nonexistent/camera.json"], "--camera: got '/nonexistent/camera.json'"),
])
def test_measure_refuses_bad_resolution_options(phantom_dir, tmp_path, capsys, extra, message):
    """Bug caught: an impossible resolution, two resolutions at once, or a resolution with
    --no-pvc accepted (exit 0) or failing with a traceback instead of exit 2 and a message
    naming the option, the value and what is allowed; nothing written."""
    assert main(_measure_args(phantom_dir, tmp_path, *extra)) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "case.json").exists()


def test_measure_command_records_resolution_and_uncertainty(phantom_dir, tmp_path, capsys):
    """Bug caught: the camera file's FWHM and source missing from the measurement record;
    the corrected values not reaching the case; the case's uncertainty section missing; a
    NIfTI SPECT (no radionuclide) corrected with an assumed resolution without a warning."""
    camera = tmp_path / "camera.json"
    camera.write_text(json.dumps({"fwhm_mm": 14.0, "source": "line source, 2026-01-10"}))
    assert main(_measure_args(phantom_dir, tmp_path, "--camera", str(camera))) == 0
    m = json.loads((tmp_path / "measurement.json").read_text())
    case = json.loads((tmp_path / "case.json").read_text())
    pvc = m["partial_volume_correction"]
    assert pvc["resolution"]["source"] == "line source, 2026-01-10"
    assert pvc["resolution"]["chosen_by"] == f"camera file {camera}"
    assert "spect-resolution-assumed" not in {w["code"] for w in m["warnings"]}
    truth = json.loads((phantom_dir / "truth.json").read_text())
    tnr = {t["name"]: t["tnr"] for p in case["positions"] for t in p["tumours"]}
    for name, value in tnr.items():
        assert value == pytest.approx(truth["tnr_maa"][name], rel=0.05), name
    assert case["lung_shunt_fraction"] == pytest.approx(0.06, rel=0.05)
    assert set(case["uncertainty"]["tnr_relative_sd"]) == {"T1", "T2", "T3"}
    assert case["uncertainty"]["boundary_mm"] == 3.0      # small patient's CT: 2 × 2 × 3 mm
    err = capsys.readouterr().err
    assert "partial-volume corrected (GTM, 14 mm FWHM)" in err

    out = tmp_path / "default"
    out.mkdir()
    assert main(_measure_args(phantom_dir, out)) == 0
    m = json.loads((out / "measurement.json").read_text())
    assert "spect-resolution-assumed" in {w["code"] for w in m["warnings"]}
    assert m["partial_volume_correction"]["resolution"]["chosen_by"].startswith(
        "default for Tc-99m; the SPECT names no radionuclide")


def test_measure_refuses_an_impossible_resolution_from_a_caller(noise_free):
    """Bug caught: a resolution handed to measure() by a caller other than the command line
    (the Slicer logic) used unchecked: a negative FWHM blurs nothing and the correction
    would silently do nothing."""
    with pytest.raises(FieldValueError) as info:
        _measure(noise_free, resolution={"fwhm_mm": -1.0, "source": "x", "chosen_by": "x"})
    assert str(info.value).startswith("resolution fwhm_mm: got -1.0; allowed: a FWHM in mm")


# --------------------------------------------------------------------------- image plumbing

def _grid_pair(origin_xyz=(-20.0, -22.0, -18.0)):
    """A SPECT of 10 × 8 × 6 voxels (x, y, z) of 4 × 5 × 6 mm and a CT twice as fine whose
    voxel centres sit a quarter of a SPECT voxel either side of the SPECT's centres (so each
    SPECT voxel holds exactly 2 × 2 × 2 CT voxel centres, none on a border)."""
    spect_spacing = (4.0, 5.0, 6.0)
    spect = sitk.Image([10, 8, 6], sitk.sitkFloat64)
    spect.SetSpacing(spect_spacing)
    spect.SetOrigin(origin_xyz)
    ct = sitk.Image([20, 16, 12], sitk.sitkInt16)
    ct.SetSpacing(tuple(s / 2 for s in spect_spacing))
    ct.SetOrigin(tuple(o - s / 4 for o, s in zip(origin_xyz, spect_spacing)))
    return spect, ct


def test_spect_index_on_grid_by_hand():
    """Bug caught: the SPECT voxel numbers laid out in (x, y, z) order instead of the (z, y,
    x) order of the arrays, a CT voxel outside the SPECT given a SPECT voxel instead of -1.

    CT voxel (z, y, x) = (2k + a, 2j + b, 2i + c) with a, b, c in {0, 1} lies in SPECT voxel
    (k, j, i), flat index k·8·10 + j·10 + i; a CT grid shifted one SPECT voxel (6 mm) up in z
    has its last two slices outside the SPECT."""
    spect, ct = _grid_pair()
    index = spect_index_on_grid(spect, ct)
    z, y, x = np.meshgrid(np.arange(12), np.arange(16), np.arange(20), indexing="ij")
    np.testing.assert_array_equal(index, (z // 2) * 80 + (y // 2) * 10 + x // 2)
    ct.SetOrigin(tuple(np.add(ct.GetOrigin(), (0.0, 0.0, 6.0))))
    shifted = spect_index_on_grid(spect, ct)
    np.testing.assert_array_equal(shifted[:10], ((z // 2 + 1) * 80 + (y // 2) * 10 + x // 2)[:10])
    assert (shifted[10:] == -1).all()


def test_correction_on_an_anisotropic_grid_recovers_the_concentrations_per_ml():
    """Bug caught: the SPECT spacing handed to the blur in (x, y, z) order instead of (z, y,
    x), the grid shape not reversed, the SPECT voxel volume taken in cm³ for mL wrongly (mm³
    / 1000) or left out, the measured means read from other voxels than the data.

    Three regions on the CT grid (a box, a slab, the rest) hold 50, 10 and 1 counts per mL.
    The SPECT is made independently of the module: each SPECT voxel holds the mean
    concentration of its 8 CT voxels times its volume (4·5·6 mm³ = 0.12 mL), blurred by
    scipy.ndimage.gaussian_filter with FWHM 10 mm, sigma = 10 / 2.35482 mm divided by the
    spacing of each axis (6, 5, 4 mm in z, y, x), zero outside, cut at 4 sigma. Anisotropic
    voxels and an unequal grid make every axis mix-up visible. Expected: measured = mean
    over each region of its CT voxels' SPECT value / 0.12 mL; corrected = 50, 10, 1."""
    spect, ct = _grid_pair()
    labels = np.full((12, 16, 20), 2, dtype=np.int16)
    labels[4:8, 5:11, 6:12] = 0
    labels[8:12, :, 3:9] = 1
    truth_per_ml = np.array([50.0, 10.0, 1.0])
    fine = truth_per_ml[labels]
    voxel_ml = 4.0 * 5.0 * 6.0 / 1000.0
    coarse = fine.reshape(6, 2, 8, 2, 10, 2).mean(axis=(1, 3, 5)) * voxel_ml
    sigma_mm = 10.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    image = ndimage.gaussian_filter(coarse, [sigma_mm / 6.0, sigma_mm / 5.0, sigma_mm / 4.0],
                                    mode="constant", truncate=4.0)
    spect = sitk.GetImageFromArray(image)
    spect.SetSpacing((4.0, 5.0, 6.0))
    spect.SetOrigin(_grid_pair()[0].GetOrigin())
    regions = RegionSet(("tumour:T", "normal:a", "rest"), labels)
    result = correct_regions(spect, ct, regions, 10.0)
    on_ct = np.repeat(np.repeat(np.repeat(image, 2, 0), 2, 1), 2, 2)
    measured = [on_ct[labels == r].mean() / voxel_ml for r in range(3)]
    np.testing.assert_allclose(result.measured_per_ml, measured, rtol=1e-12)
    assert result.measured_per_ml[0] < 0.9 * 50.0          # the box is partial-volumed
    np.testing.assert_allclose(result.corrected_per_ml, truth_per_ml, rtol=1e-9)
    assert result.method == "linear solve" and result.relative_residual < 1e-9
    assert result.names == ("tumour:T", "normal:a", "rest")
    assert result.corrected("normal:a") == pytest.approx(10.0, rel=1e-9)
    assert result.measured("tumour:T") == pytest.approx(measured[0], rel=1e-12)
    # the record's matrix is the system that was solved: W c = t, with numpy's condition
    np.testing.assert_allclose(result.transfer_matrix @ truth_per_ml, measured, rtol=1e-9)
    assert result.condition_number == pytest.approx(np.linalg.cond(result.transfer_matrix),
                                                    rel=1e-9)
    # the same correction through a list of PSFs gives one result per PSF, in order
    wide, same = correct_regions_with_psfs(spect, ct, regions, [PointSpread.gaussian(12.0),
                                                                PointSpread.gaussian(10.0)])
    np.testing.assert_allclose(same.corrected_per_ml, truth_per_ml, rtol=1e-9)
    assert wide.corrected_per_ml[0] > 50.0 * 1.01           # a wider PSF over-corrects


def test_pvc_result_lookups_and_record():
    """Bug caught: a region that has no voxel read as another region's value (or raising)
    instead of NaN; the recovery written as corrected / measured instead of measured /
    corrected; a NaN written into the record instead of null; a zero corrected mean divided.

    Hand values: measured 2, corrected 4 -> recovery 0.5; measured 1, corrected 0 ->
    recovery null; NaN measured and corrected -> null, null."""
    result = PvcResult(("a", "b", "c"), np.array([2.0, 1.0, np.nan]),
                       np.array([4.0, 0.0, np.nan]), np.eye(3), 7.5, "linear solve", 0.25)
    assert math.isnan(result.corrected("missing")) and math.isnan(result.measured("missing"))
    assert result.corrected("a") == 4.0 and result.measured("b") == 1.0
    assert result.as_dict() == {
        "regions": {"a": {"measured_per_ml": 2.0, "corrected_per_ml": 4.0, "recovery": 0.5},
                    "b": {"measured_per_ml": 1.0, "corrected_per_ml": 0.0, "recovery": None},
                    "c": {"measured_per_ml": None, "corrected_per_ml": None,
                          "recovery": None}},
        "condition_number": 7.5, "solver": "linear solve", "relative_residual": 0.25}


@pytest.mark.parametrize("nuclide, fwhm, chosen, known", [
    ("Tc-99m", 14.0, "default for Tc-99m", True),
    ("Ho-166", 18.0, "default for Ho-166", True),
    ("Lu-177", 14.0, "default for Tc-99m; no default for 'Lu-177'", False),
    (None, 14.0, "default for Tc-99m; the SPECT names no radionuclide", False),
])
def test_default_resolution_per_radionuclide(nuclide, fwhm, chosen, known):
    """Bug caught: a SPECT of an unknown radionuclide given another nuclide's default without
    saying so, or said to be of a known one; the default not flagged as assumed; its ±4 mm
    uniform range (Tc-99m SPECT without resolution recovery: 10-15 mm FWHM, Erlandsson et
    al. Phys Med Biol 2012;57:R119) lost. Values: Tc-99m 14 mm (upper part of 10-15 mm for
    an abdominal orbit), Ho-166 18 mm (about 1.3 × Tc-99m, medium-energy collimator)."""
    res = default_resolution(nuclide)
    assert res["fwhm_mm"] == fwhm and res["chosen_by"] == chosen
    assert res["assumed"] is True and res["radionuclide_known"] is known
    assert res["fwhm_half_range_mm"] == 4.0
    assert "Erlandsson" in res["source"] or "Stella" in res["source"]
    assert res["study"] and "JCGM" in res["fwhm_range_source"]


@pytest.mark.parametrize("value", [True, "12", None, [12.0]])
def test_check_fwhm_refuses_what_is_not_a_number(value):
    """Bug caught: a JSON true read as 1 mm, a FWHM as text or a list passed on to the blur."""
    with pytest.raises(FieldValueError) as info:
        check_fwhm(value, "camera:fwhm_mm")
    assert info.value.field == "camera:fwhm_mm"
    assert info.value.allowed == "a FWHM in mm, > 0 and <= 50"


def test_check_fwhm_takes_an_integer():
    """Bug caught: an integer FWHM from a JSON file (12, not 12.0) refused or kept an int."""
    value = check_fwhm(12, "x")
    assert value == 12.0 and isinstance(value, float)


def test_camera_file_fields_and_unreadable_files(tmp_path):
    """Bug caught: a source of blanks accepted; the source kept with its blanks; a name
    that is not text written into the record; a camera file's FWHM flagged as assumed or
    without the ±4 mm range that stands for its unknown uncertainty; an unreadable or
    non-UTF-8 file ending in a traceback."""
    path = tmp_path / "camera.json"
    path.write_text(json.dumps({"fwhm_mm": 12, "source": "  line source  ", "name": 3}))
    res = resolution_from_camera_file(str(path), field="--cam")
    assert res["source"] == "line source" and "camera" not in res
    assert res["fwhm_mm"] == 12.0 and res["assumed"] is False
    assert res["chosen_by"] == f"camera file {path}"
    assert res["fwhm_half_range_mm"] == 4.0
    assert res["fwhm_range_source"].startswith("a FWHM file without its uncertainty")
    path.write_text(json.dumps({"fwhm_mm": 12, "source": "   "}))
    with pytest.raises(FieldValueError) as info:
        resolution_from_camera_file(str(path), field="--cam")
    assert info.value.field == f"--cam {path}:source"
    path.write_bytes(b'{"fwhm_mm": 12, "source": "\xff"}')
    with pytest.raises(TarePlannerInputError) as info:
        resolution_from_camera_file(str(path), field="--cam")
    assert info.value.field == "--cam"
    with pytest.raises(FieldValueError) as info:
        resolution_from_camera_file(str(tmp_path / "none.json"), field="--cam")
    assert info.value.field == "--cam" and info.value.allowed == "a readable JSON file"


def test_resolution_given_records_its_origin():
    """Bug caught: a FWHM typed by the user recorded as assumed, or without the ±4 mm range
    that stands for its unknown uncertainty."""
    res = resolution_given(11.0, field="--fwhm")
    assert res == {"fwhm_mm": 11.0, "source": "given by the user (--fwhm)",
                   "chosen_by": "--fwhm", "assumed": False, "fwhm_half_range_mm": 4.0,
                   "fwhm_range_source": res["fwhm_range_source"]}
    assert res["fwhm_range_source"].startswith("a FWHM given without its uncertainty: ")


def test_lung_base_region_and_empty_regions():
    """Bug caught: the lung base not split from the rest of the lungs, the base claimed
    outside the lungs, or an empty region (no voxel) kept in the matrix (a zero row and
    column: a singular system). Hand count on a 4 × 4 × 4 grid: lungs are slices 2-3, the
    base is slices 3 and 0 (slice 0 is no lung: not base); no territory voxel lies in the
    liver (slice 1), so no 'normal:' region."""
    shape = (4, 4, 4)
    liver = np.zeros(shape, bool)
    liver[1] = True
    lungs = np.zeros(shape, bool)
    lungs[2:4] = True
    base = np.zeros(shape, bool)
    base[[0, 3]] = True
    territory = np.zeros(shape, bool)
    territory[0] = True
    regions = build_regions(tumours={"T1": np.zeros(shape, bool)}, territories={"a": territory},
                            liver=liver, lungs=lungs, body=np.ones(shape, bool), lung_base=base)
    assert regions.names == ("liver outside territories", "lung base", "lungs", "rest of body")
    np.testing.assert_array_equal(np.bincount(regions.labels.ravel()), [16, 16, 16, 16])
    assert (regions.labels[3] == 1).all() and (regions.labels[0] == 3).all()


@pytest.mark.parametrize("text, message", [
    (None, "--cam: got '{path}'; allowed: a readable JSON file (No such file or directory)"),
    ('{"fwhm_mm": 12, ', "--cam: got '{path}'; allowed: a JSON object with fwhm_mm and "
                         "source (Expecting property name enclosed in double quotes: line 1 "
                         "column 17 (char 16))"),
    ("[12]", "--cam: got 'list'; allowed: a JSON object with fwhm_mm and source"),
    ('{"fwhm_mm": 12, "source": "x", "sigma_mm": 5, "fwhm": 3}',
     "--cam {path}: got ['fwhm', 'sigma_mm']; allowed: keys fwhm_mm, source, name"),
    ('{"source": "x"}', "--cam {path}:fwhm_mm: got None; allowed: the camera's FWHM in mm"),
    ('{"fwhm_mm": true, "source": "x"}',
     "--cam {path}:fwhm_mm: got True; allowed: a FWHM in mm, > 0 and <= 50"),
    ('{"fwhm_mm": 12, "source": " "}', "--cam {path}:source: got ' '; allowed: a text saying "
                                       "where the FWHM comes from (measurement, date)"),
])
def test_camera_file_refusals_word_for_word(tmp_path, text, message):
    """Bug caught: a refusal of a camera file that does not name the file, the field, the
    value found (the unknown keys, the JSON type, the reason the file cannot be read, the
    JSON parser's own position of the error) and what is allowed. The parser's words are
    Python's json module's."""
    path = tmp_path / "camera.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(TarePlannerInputError) as info:
        resolution_from_camera_file(str(path), field="--cam")
    assert str(info.value) == message.format(path=path)


def test_camera_file_says_its_fwhm_has_no_stated_uncertainty(tmp_path):
    """Bug caught: a plain FWHM file recorded without saying that its uncertainty is the
    assumed ±4 mm because it is not a calibration (JCGM 100:2008 4.3.7, rectangular)."""
    path = tmp_path / "camera.json"
    path.write_text('{"fwhm_mm": 12, "source": "x"}')
    source = resolution_from_camera_file(str(path))["fwhm_range_source"]
    assert source.startswith("a FWHM file without its uncertainty (no tareplanner.camera/1 "
                             "calibration): Without a calibration the resolution is assumed")
    assert "JCGM 100:2008 4.3.7" in source


def test_camera_file_read_error_without_a_reason(tmp_path, monkeypatch):
    """Bug caught: an OS error that carries no reason (strerror None, as some file systems
    raise) given a made-up reason in the message instead of none."""
    from pathlib import Path

    def fail(*args, **kwargs):
        raise OSError()

    monkeypatch.setattr(Path, "read_text", fail)
    with pytest.raises(FieldValueError) as info:
        resolution_from_camera_file("camera.json", field="--cam")
    assert str(info.value) == "--cam: got 'camera.json'; allowed: a readable JSON file"


def test_region_volumes_by_hand():
    """Bug caught: a region's volume counted over the wrong mask, a region without voxels
    dropped from the vector (shifting every later region's volume onto the wrong name), or
    the voxel volume left out. By hand on a 2 x 2 x 3 label map of 3 regions (region 2
    empty), 0.008 mL voxels: whole 7 and 5 voxels; inside the mask 2 and 1."""
    labels = np.array([[[0, 0, 1], [0, 1, 0]], [[1, 0, 0], [1, 0, 1]]])
    regions = RegionSet(("a", "b", "empty"), labels)
    assert regions.volumes_ml(0.008) == pytest.approx([7 * 0.008, 5 * 0.008, 0.0])
    mask = np.zeros(labels.shape, bool)
    mask[0, 0, :] = True
    assert regions.volumes_ml(0.008, mask) == pytest.approx([2 * 0.008, 1 * 0.008, 0.0])
