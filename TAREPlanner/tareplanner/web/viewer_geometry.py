"""The slice views' arithmetic, without a scene or a web toolkit (numpy and contourpy only):
window/level from a mouse drag, a dose slice sampled on a view's pixels, isodose lines and
where their labels go.

Window/level by dragging follows 3D Slicer's rule (``vtkMRMLWindowLevelWidget::
ProcessAdjustWindowLevel``, Libs/MRML/DisplayableManager): the gain is the image's scalar range
per pixel of the view's smaller side; moving right widens the window, moving up raises the
level; the window never goes below 0 and the level stays within [low - W/2, high + W/2].
Slicer adds each mouse move's step to the last values; here the change is taken from the
press position (the same when no limit is met), so a drag of (dx, dy) pixels always gives
W + g dx, L + g dy.
"""

from __future__ import annotations

import math

import numpy as np


def drag_gain(scalar_range: tuple[float, float], view_size_px: tuple[int, int]) -> float:
    """Window/level change per pixel of drag: the scalar range over the view's smaller side
    (3D Slicer's gain). 0 for a view without pixels."""
    side = min(int(view_size_px[0]), int(view_size_px[1]))
    if side <= 0:
        return 0.0
    return (float(scalar_range[1]) - float(scalar_range[0])) / side


def dragged_window_level(window: float, level: float, dx_px: float, dy_px: float,
                         scalar_range: tuple[float, float],
                         view_size_px: tuple[int, int]) -> tuple[float, float]:
    """(window, level) after a drag of ``dx_px`` pixels to the right and ``dy_px`` up (VTK
    display coordinates, y up) from where the button was pressed with ``window`` and
    ``level``: W + g dx and L + g dy with g = :func:`drag_gain`; the window at least 0, the
    level within [low - W/2, high + W/2] of the image's ``scalar_range``."""
    gain = drag_gain(scalar_range, view_size_px)
    low, high = float(scalar_range[0]), float(scalar_range[1])
    new_window = max(0.0, float(window) + gain * float(dx_px))
    new_level = float(level) + gain * float(dy_px)
    new_level = min(max(new_level, low - new_window / 2.0), high + new_window / 2.0)
    return new_window, new_level


def matching_preset(window: float, level: float, presets: dict[str, tuple[float, float]],
                    tolerance: float = 0.5) -> str | None:
    """The name of the preset whose (window, level) the display has (within ``tolerance``
    HU), or None: a drag away from a preset unselects it."""
    for name, (w, l) in presets.items():
        if abs(w - window) <= tolerance and abs(l - level) <= tolerance:
            return name
    return None


def window_level_text(window: float, level: float) -> str:
    """'W 350 L 40 HU' (one decimal when the numbers have one: a drag gives any number)."""
    def number(v: float) -> str:
        return f"{v:.0f}" if abs(v - round(v)) < 0.05 else f"{v:.1f}"
    return f"W {number(window)} L {number(level)} HU"


def slice_samples(values_kji: np.ndarray, ras_to_ijk: np.ndarray, xy_to_ras: np.ndarray,
                  width: int, height: int, outside: float = 0.0) -> np.ndarray:
    """The volume ``values_kji`` ([k, j, i] array) at every pixel centre of a slice view,
    nearest voxel, as a [y, x] array (row 0 at the bottom, VTK display coordinates);
    ``outside`` where the pixel falls outside the volume. ``xy_to_ras`` is the view's
    XY-to-RAS matrix (4x4), ``ras_to_ijk`` the volume's (with its transforms applied)."""
    width, height = int(width), int(height)
    if width <= 0 or height <= 0:
        return np.zeros((0, 0))
    x, y = np.meshgrid(np.arange(width, dtype=float), np.arange(height, dtype=float))
    xy = np.stack([x.ravel(), y.ravel(), np.zeros(x.size), np.ones(x.size)])
    ijk = np.rint((np.asarray(ras_to_ijk, float) @ np.asarray(xy_to_ras, float) @ xy)[:3])
    shape = values_kji.shape
    inside = ((ijk[0] >= 0) & (ijk[0] < shape[2]) & (ijk[1] >= 0) & (ijk[1] < shape[1])
              & (ijk[2] >= 0) & (ijk[2] < shape[0]))
    out = np.full(x.size, float(outside))
    i, j, k = (ijk[:, inside]).astype(int)
    out[inside] = values_kji[k, j, i]
    return out.reshape(height, width)


def contour_lines(image_yx: np.ndarray, level: float, min_points: int = 8) -> list[np.ndarray]:
    """The lines where a [y, x] image crosses ``level`` (contourpy, marching squares), each
    an (n, 2) array of (x, y) pixel coordinates; lines of fewer than ``min_points`` points
    (a voxel or two) are left out."""
    import contourpy
    if image_yx.size == 0 or not np.isfinite(level) or \
            not (np.nanmin(image_yx) < level <= np.nanmax(image_yx)):
        return []
    generator = contourpy.contour_generator(z=np.asarray(image_yx, dtype=float),
                                            line_type=contourpy.LineType.Separate)
    return [np.asarray(line) for line in generator.lines(level) if len(line) >= min_points]


def label_anchor(lines: list[np.ndarray], taken: list[tuple[float, float]] = (),
                 spacing_px: float = 18.0) -> tuple[float, float] | None:
    """Where a level's label goes: on its longest line, at its rightmost point not within
    ``spacing_px`` of a label already placed (``taken``); None without a line."""
    if not lines:
        return None
    longest = max(lines, key=len)
    order = np.argsort(-longest[:, 0])
    for index in order:
        x, y = longest[index]
        if all(math.hypot(x - tx, y - ty) >= spacing_px for tx, ty in taken):
            return float(x), float(y)
    x, y = longest[order[0]]
    return float(x), float(y)


def level_text(level_gy: float) -> str:
    """An isodose label: '120 Gy', '37.5 Gy'."""
    return f"{level_gy:g} Gy"


def flicker_opacity(opacity: float, phase: int) -> float:
    """The registration check's flicker: the chosen opacity on even phases, 0 (the CT alone)
    on odd ones."""
    return float(opacity) if phase % 2 == 0 else 0.0
