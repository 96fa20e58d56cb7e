"""The fraction of each emission voxel a CT-grid structure covers, counted block by block.

Bugs these tests catch: a stride taken along the wrong axis, a block that starts one
sub-voxel off, a count that overflows its integer type for large blocks, a division by k
instead of k**3, and a result whose float32 value differs from the mean of the block's
sub-voxels (the value the activity, dose and check figures were computed from before)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from tareplanner.dosimetry import structures
from tareplanner.imaging.grid import block_fraction


def test_hand_counted_blocks():
    """A 6 x 3 x 3 array of two 3 x 3 x 3 blocks along z: the first holds five ones, the
    second 27: fractions 5/27 and 1 (float32)."""
    bits = np.zeros((6, 3, 3), np.uint8)
    bits[0, 0, :] = 1          # 3 ones
    bits[2, 1, 1] = 1          # 1 one
    bits[1, 2, 0] = 1          # 1 one
    bits[3:6] = 1
    out = block_fraction(bits, 3)
    assert out.shape == (2, 1, 1) and out.dtype == np.float32
    assert out[0, 0, 0] == np.float32(5) / np.float32(27)
    assert out[1, 0, 0] == 1.0


def test_each_axis_is_blocked_along_itself():
    """One sub-voxel set at (z, y, x) = (4, 1, 7) with k = 2 falls in block (2, 0, 3) only."""
    bits = np.zeros((6, 4, 8), np.uint8)
    bits[4, 1, 7] = 1
    out = block_fraction(bits, 2)
    assert out.shape == (3, 2, 4)
    assert np.argwhere(out > 0).tolist() == [[2, 0, 3]]
    assert out[2, 0, 3] == np.float32(1 / 8)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 6, 7])
def test_equals_the_float_mean_of_each_block(k):
    """Against the plain float32 mean over each k x k x k block written out with numpy's
    reshape (k = 7: 343 sub-voxels, more than a uint8 count holds)."""
    rng = np.random.default_rng(k)
    shape = (3 * k, 2 * k, 4 * k)
    bits = (rng.random(shape) < 0.4).astype(np.uint8)
    bits[:k, :k, :k] = 1                            # one full block
    expected = bits.astype(np.float32).reshape(3, k, 2, k, 4, k).mean(axis=(1, 3, 5))
    out = block_fraction(bits, k)
    assert out.dtype == np.float32
    assert np.array_equal(out, expected)
    assert out[0, 0, 0] == 1.0


def test_occupancy_against_simpleitk_resampling():
    """A CT-grid box of 2 x 2 x 3 mm voxels on a 4.42 mm emission grid: each emission voxel's
    occupancy equals the fraction of its 3 x 3 x 3 sub-voxel centres that SimpleITK's own
    nearest-neighbour resampling puts inside the box, worked out here from the sub-voxel
    centres' physical positions (no project code)."""
    ct = sitk.Image(40, 36, 20, sitk.sitkUInt8)
    ct.SetSpacing((2.0, 2.0, 3.0))
    ct.SetOrigin((-40.0, -36.0, -30.0))
    mask = np.zeros((20, 36, 40), bool)
    mask[5:13, 8:25, 10:31] = True
    emission = sitk.Image(17, 15, 12, sitk.sitkFloat32)
    emission.SetSpacing((4.42, 4.42, 4.42))
    emission.SetOrigin((-36.0, -31.0, -25.0))
    structures._OCCUPANCIES.clear()
    occupancy = structures.occupancy_on(emission, mask, ct)
    # the sub-voxel centres, and the CT voxel each falls in (rounding half up, as ITK does)
    k, s = 3, 4.42
    zs = -25.0 + np.arange(12 * k) * s / k - s / 2 + s / (2 * k)
    ys = -31.0 + np.arange(15 * k) * s / k - s / 2 + s / (2 * k)
    xs = -36.0 + np.arange(17 * k) * s / k - s / 2 + s / (2 * k)
    iz = np.floor((zs + 30.0) / 3.0 + 0.5).astype(int)
    iy = np.floor((ys + 36.0) / 2.0 + 0.5).astype(int)
    ix = np.floor((xs + 40.0) / 2.0 + 0.5).astype(int)
    inside = (((iz >= 5) & (iz < 13))[:, None, None] & ((iy >= 8) & (iy < 25))[None, :, None]
              & ((ix >= 10) & (ix < 31))[None, None, :])
    counts = inside.reshape(12, k, 15, k, 17, k).sum(axis=(1, 3, 5))
    expected = counts.astype(np.float32) / np.float32(27)
    assert np.array_equal(occupancy, expected)
    assert 0 < occupancy.max() == 1.0
