"""The slice views' arithmetic (tareplanner.web.viewer_geometry), without a browser or the
web extra: window/level by dragging (3D Slicer's rule, vtkMRMLWindowLevelWidget::
ProcessAdjustWindowLevel: gain = scalar range / the view's smaller side; W + g dx, L + g dy;
W >= 0; L within [low - W/2, high + W/2]), the dose on a view's pixels, isodose lines and
their labels. Expected values are worked by hand in each test."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tareplanner.web.viewer_geometry import (contour_lines, drag_gain, dragged_window_level,
                                             flicker_opacity, label_anchor, level_text,
                                             matching_preset, slice_samples,
                                             window_level_text)

#: the synthetic CT's HU range and a slice view of 488 x 279 pixels (the page's axial view)
CT_RANGE, VIEW = (-1000.0, 742.0), (488, 279)
GAIN = 1742.0 / 279.0          # 6.2437... HU a pixel


def test_gain_is_the_range_over_the_smaller_side():
    """Bug it catches: the gain taken over the larger side (a drag too slow in wide views)
    or over the window instead of the range."""
    assert drag_gain(CT_RANGE, VIEW) == pytest.approx(6.243727598566, rel=1e-12)
    assert drag_gain(CT_RANGE, (279, 488)) == pytest.approx(GAIN)
    assert drag_gain(CT_RANGE, (0, 488)) == 0.0


def test_drag_right_widens_the_window_and_up_raises_the_level():
    """From the abdomen preset 350 / 40, 60 px right and 30 px up: 350 + 60 x 6.2437 =
    724.62 HU and 40 + 30 x 6.2437 = 227.31 HU. Bug: axes swapped or signs reversed."""
    window, level = dragged_window_level(350.0, 40.0, 60, 30, CT_RANGE, VIEW)
    assert window == pytest.approx(350.0 + 60 * 6.243727598566, abs=1e-9)
    assert level == pytest.approx(40.0 + 30 * 6.243727598566, abs=1e-9)
    assert (window, level) == pytest.approx((724.6236559, 227.3118280), abs=1e-6)
    # left and down: narrower, lower
    window, level = dragged_window_level(350.0, 40.0, -10, -5, CT_RANGE, VIEW)
    assert (window, level) == pytest.approx((350.0 - 62.43727599, 40.0 - 31.21863799))
    # no movement, no change
    assert dragged_window_level(350.0, 40.0, 0, 0, CT_RANGE, VIEW) == (350.0, 40.0)


def test_window_never_goes_below_zero():
    """Edges of the window limit: exactly 0 at dx = -350 / g, 0 beyond, positive before."""
    at = -350.0 / GAIN
    assert dragged_window_level(350.0, 40.0, at, 0, CT_RANGE, VIEW)[0] == pytest.approx(
        0.0, abs=1e-9)
    assert dragged_window_level(350.0, 40.0, at - 1, 0, CT_RANGE, VIEW)[0] == 0.0
    assert dragged_window_level(350.0, 40.0, -1000, 0, CT_RANGE, VIEW)[0] == 0.0
    assert dragged_window_level(350.0, 40.0, at + 1, 0, CT_RANGE, VIEW)[0] == pytest.approx(
        GAIN, abs=1e-9)


def test_level_stays_within_the_range_and_half_the_window():
    """Level limits for W = 350 on [-1000, 742]: at most 742 + 175 = 917 HU, at least
    -1000 - 175 = -1175 HU; each at the edge, just inside and beyond."""
    top = (917.0 - 40.0) / GAIN                 # dy that reaches 917 exactly
    assert dragged_window_level(350, 40, 0, top, CT_RANGE, VIEW)[1] == pytest.approx(917.0)
    assert dragged_window_level(350, 40, 0, top + 1, CT_RANGE, VIEW)[1] == 917.0
    assert dragged_window_level(350, 40, 0, top - 1, CT_RANGE, VIEW)[1] == pytest.approx(
        917.0 - GAIN)
    bottom = (-1175.0 - 40.0) / GAIN
    assert dragged_window_level(350, 40, 0, bottom, CT_RANGE, VIEW)[1] == pytest.approx(
        -1175.0)
    assert dragged_window_level(350, 40, 0, bottom - 1, CT_RANGE, VIEW)[1] == -1175.0
    assert dragged_window_level(350, 40, 0, bottom + 1, CT_RANGE, VIEW)[1] == pytest.approx(
        -1175.0 + GAIN)


def test_from_the_press_equals_slicers_step_by_step_sum():
    """Slicer adds each move's step to the last values; taken from the press position the
    result is the same while no limit is met (moves of 7, 13, 20 and 20 px = 60 px)."""
    window, level = 350.0, 40.0
    for dx, dy in ((7, 3), (13, 7), (20, 10), (20, 10)):
        window, level = dragged_window_level(window, level, dx, dy, CT_RANGE, VIEW)
    assert (window, level) == pytest.approx(
        dragged_window_level(350.0, 40.0, 60, 30, CT_RANGE, VIEW), abs=1e-9)


def test_a_preset_is_selected_only_at_its_values():
    presets = {"abdomen": (350.0, 40.0), "liver": (150.0, 30.0), "lung": (1400.0, -500.0)}
    assert matching_preset(350.0, 40.0, presets) == "abdomen"
    assert matching_preset(150.4, 29.6, presets) == "liver"        # within 0.5 HU
    assert matching_preset(150.6, 30.0, presets) is None           # just beyond
    assert matching_preset(724.6, 227.3, presets) is None


def test_window_level_text():
    assert window_level_text(350.0, 40.0) == "W 350 L 40 HU"
    assert window_level_text(724.6236, 227.3118) == "W 724.6 L 227.3 HU"
    assert window_level_text(1400.0, -500.0) == "W 1400 L -500 HU"


def test_slice_samples_the_nearest_voxel_of_each_pixel():
    """A volume whose value says where it is (i + 10 j + 100 k) seen by a view whose pixel
    (x, y) is at RAS (x + 1, y + 2, 3), the volume's IJK = RAS: the pixel shows
    (x + 1) + 10 (y + 2) + 300; pixels beyond i = 5 or j = 4 are outside (0). Bug: x and y
    or i and k swapped, rows counted from the top."""
    k, j, i = np.meshgrid(np.arange(4), np.arange(5), np.arange(6), indexing="ij")
    values = (i + 10 * j + 100 * k).astype(float)
    xy_to_ras = np.array([[1, 0, 0, 1], [0, 1, 0, 2], [0, 0, 1, 3], [0, 0, 0, 1]], float)
    image = slice_samples(values, np.eye(4), xy_to_ras, 7, 4)
    assert image.shape == (4, 7)
    assert image[0, 0] == 1 + 20 + 300
    assert image[2, 3] == 4 + 40 + 300
    assert image[0, 4] == 5 + 20 + 300
    assert image[0, 5] == 0.0                    # i = 6: outside
    assert image[3, 0] == 0.0                    # j = 5: outside
    # a pixel half a voxel off goes to the nearest voxel
    shifted = xy_to_ras.copy()
    shifted[0, 3] = 1.4
    assert slice_samples(values, np.eye(4), shifted, 1, 1)[0, 0] == 1 + 20 + 300
    assert slice_samples(values, np.eye(4), xy_to_ras, 0, 4).size == 0


def test_an_isodose_line_runs_where_the_dose_crosses_its_level():
    """A cone of dose (100 - distance from (60, 40)) crosses 80 Gy on the circle of radius
    20: every point of the line within 0.5 px of it, the circle closed. No line for a level
    above the maximum or at or below the minimum."""
    y, x = np.mgrid[0:80, 0:120].astype(float)
    dose = 100.0 - np.hypot(x - 60.0, y - 40.0)
    lines = contour_lines(dose, 80.0)
    assert len(lines) == 1
    radius = np.hypot(lines[0][:, 0] - 60.0, lines[0][:, 1] - 40.0)
    assert np.all(np.abs(radius - 20.0) < 0.5)
    assert np.allclose(lines[0][0], lines[0][-1])
    assert contour_lines(dose, 101.0) == []
    assert contour_lines(dose, float(dose.min())) == []
    assert contour_lines(dose, float("nan")) == []
    assert contour_lines(np.zeros((0, 0)), 1.0) == []
    # a one-voxel speck (fewer than 8 points) is no line
    speck = np.zeros((20, 20))
    speck[10, 10] = 5.0
    assert contour_lines(speck, 2.0) == []


def test_a_label_sits_on_its_line_apart_from_the_others():
    """On the 80 Gy circle above the label goes to its rightmost point (80, 40); with a
    label already at (80, 40) it moves along the line to a point at least 18 px from it."""
    y, x = np.mgrid[0:80, 0:120].astype(float)
    lines = contour_lines(100.0 - np.hypot(x - 60.0, y - 40.0), 80.0)
    anchor = label_anchor(lines)
    assert anchor == pytest.approx((80.0, 40.0), abs=0.5)
    moved = label_anchor(lines, [(80.0, 40.0)])
    assert math.hypot(moved[0] - 80.0, moved[1] - 40.0) >= 18.0
    assert abs(math.hypot(moved[0] - 60.0, moved[1] - 40.0) - 20.0) < 0.5
    assert label_anchor([]) is None


def test_label_texts_and_flicker():
    assert level_text(120.0) == "120 Gy"
    assert level_text(37.5) == "37.5 Gy"
    assert [flicker_opacity(0.3, phase) for phase in range(4)] == [0.3, 0.0, 0.3, 0.0]
