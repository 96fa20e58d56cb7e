"""The slice views' controls as a person uses them, in headless Chromium on ``tareplanner
serve`` (its own server and data folder): window/level by dragging, the linked crosshair, the
registration check of each position's CBCT, the isodose lines with their labels. Each control
is checked by a number: the CT's window/level after a drag of known pixels (3D Slicer's rule,
docs/web.md), the crosshair's RAS against the point under the mouse and the CT voxel there
(read from the synthetic patient's own image with SimpleITK), the CBCT's opacity in every
slice view against the slider, an isodose label's text against the typed level and its place
against the line's pixels in a screenshot.

Run with ``pytest -m browser Testing/web/test_viewer_browser.py``.
"""

from __future__ import annotations

import io
import re
import time

import numpy as np
import pytest

from .test_browser import (CHROMIUM, GOAL_WORDS, GOALS, LEFT, MISSING, RIGHT, _after, _choose,
                           _click, _fill, _output, _shot, _state, _updates, _wait_title,
                           browser, page, server, shots)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(bool(MISSING), reason=f"needs the 'web' extra (missing: "
                                             f"{', '.join(MISSING)}): pip install -e \".[web]\""),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium "
                                                     "(apt-get install -y chromium)"),
]

__all__ = ["browser", "page", "server", "shots"]      # the fixtures, for this module's server


@pytest.fixture(scope="module")
def phantom_ct():
    """The synthetic patient's CT as the phantom generator makes it (the page loads the
    same 'small' two-position patient): an image outside the page's code."""
    from tareplanner.imaging.phantom import make_phantom, spec_for_size
    return make_phantom(spec_for_size("small", 2)).ct


@pytest.fixture(scope="module")
def planned(page):
    """The synthetic patient loaded, registered, segmented, measured and planned (250 Gy
    tumour dose on the right, 40 Gy normal liver on the left, voxel dosimetry)."""
    _click(page, "load")
    assert "synthetic patient loaded" in _output(page, "data")
    for action in ("registration", "lungs", "territories", "measurement"):
        _click(page, action)
    _wait_title(page, "measurement", "[done]")
    for index, name in enumerate((RIGHT, LEFT)):
        kind, value = GOALS[name]
        _choose(page, f'[data-goal-kind="{index}"]', GOAL_WORDS[kind])
        _fill(page, f'[data-plan-goal-value="{index}"]', f"{value:g}")
    _click(page, "plan")
    _wait_title(page, "plan", "[done]")
    return page


def _view_mode(page, title: str) -> None:
    page.locator('[data-field="view_mode"]').first.click()
    menu = page.locator(".v-menu .v-overlay__content >> visible=true")
    menu.get_by_role("option", name=title, exact=True).click()
    menu.first.wait_for(state="hidden")


def _wait_state(page, expression: str, arg=None, timeout_ms: int = 30_000) -> None:
    page.wait_for_function(f"(arg) => {{ const s = (n) => window.trame.state.get(n); "
                           f"return {expression}; }}", arg=arg, timeout=timeout_ms)


def _settled(page, name: str, quiet_s: float = 1.5, timeout_s: float = 30) -> None:
    """Wait until the state value ``name`` has not changed for ``quiet_s``."""
    last, since = _state(page, name), time.monotonic()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = _state(page, name)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return


#: the crosshair moved from ``arg`` (its earlier position, or null)
MOVED = "s('crosshair') && (!arg || s('crosshair').some((v, k) => v !== arg[k]))"


def _view_box(page, index: int) -> dict:
    """The page box of slice view ``index`` (0 axial, 1 coronal, 2 sagittal: the quad
    layout's order)."""
    return page.locator(".layout-grid-item").nth(index).bounding_box()


def test_window_level_follows_a_left_drag(planned, phantom_ct):
    """Bugs: a left-drag did nothing; the shown window/level kept a preset's numbers after
    the display changed. The rule (3D Slicer's vtkMRMLWindowLevelWidget, docs/web.md):
    window + g dx, level + g dy, g = the CT's HU range / the view's smaller side in pixels,
    dx to the right, dy up. Dragging 60 px right and 30 px up from the abdomen preset
    (350 / 40) therefore gives 350 + 60 g / 40 + 30 g, g from the phantom's own HU range;
    the preset is no longer shown selected; choosing the liver preset gives 150 / 30."""
    import SimpleITK as sitk
    page = planned
    _view_mode(page, "CT")
    page.locator('[data-ct-preset="abdomen"]').click()
    _wait_state(page, "s('ct_wl') && s('ct_wl')[0] === 350 && s('ct_wl')[1] === 40")
    stats = sitk.MinimumMaximumImageFilter()
    stats.Execute(phantom_ct)
    hu_range = stats.GetMaximum() - stats.GetMinimum()
    assert _state(page, "ct_range") == [stats.GetMinimum(), stats.GetMaximum()]
    width, height = _state(page, "view_sizes")["Axial"]
    gain = hu_range / min(width, height)
    box = _view_box(page, 0)
    assert abs(box["width"] - width) <= 4 and abs(box["height"] - height) <= 4, (box, width,
                                                                                height)
    x, y = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 60, y - 30, steps=6)
    time.sleep(0.3)
    page.mouse.up()
    expected = (350 + 60 * gain, 40 + 30 * gain)
    _wait_state(page, "Math.abs(s('ct_wl')[0] - arg[0]) < arg[2] && "
                      "Math.abs(s('ct_wl')[1] - arg[1]) < arg[2]",
                arg=[*expected, gain * 0.51])
    window, level = _state(page, "ct_wl")
    assert window == pytest.approx(expected[0], abs=gain * 0.51)
    assert level == pytest.approx(expected[1], abs=gain * 0.51)
    shown = page.locator("[data-ct-window]").inner_text()
    assert shown == f"W {window:.1f} L {level:.1f} HU", shown
    assert _state(page, "ct_preset") is None
    assert page.locator(".v-btn--active[data-ct-preset]").count() == 0
    page.locator('[data-ct-preset="liver"]').click()
    _wait_state(page, "s('ct_wl')[0] === 150 && s('ct_wl')[1] === 30")
    page.wait_for_function("() => document.querySelector('[data-ct-window]').innerText"
                           " === 'W 150 L 30 HU'", timeout=10_000)
    assert _state(page, "ct_preset") == "liver"


def test_a_click_sets_the_crosshair_in_every_view(planned, phantom_ct, shots):
    """Bug: no linked crosshair. A click in the axial view puts the crosshair at the point
    the readout gave under the mouse (within a voxel), the coronal and sagittal views move
    to planes through it, and the readout gives the CT value there: the phantom's CT voxel
    at that point (SimpleITK, LPS = (-R, -A, S)). Shift+move in the coronal view moves it
    again (the axial view follows). None is shown before the first click (the window/level
    drag above sets none)."""
    import SimpleITK as sitk
    page = planned
    assert _state(page, "crosshair") is None       # none until put somewhere
    box = _view_box(page, 0)
    x, y = box["x"] + box["width"] * 0.42, box["y"] + box["height"] * 0.45
    before = _state(page, "cursor")
    page.mouse.move(x - 5, y)
    page.mouse.move(x, y)
    # the server answers events as it can (two shared cores): wait for the readout to move
    _wait_state(page, "(s('cursor') || '').includes('HU') && s('cursor') !== arg", arg=before)
    _settled(page, "cursor")
    hovered = [float(v) for v in re.search(r"R (-?\d+\.\d) A (-?\d+\.\d) S (-?\d+\.\d) mm",
                                           _state(page, "cursor")).groups()]
    before = _state(page, "crosshair")
    page.mouse.down()
    page.mouse.up()
    _wait_state(page, MOVED, arg=before)
    _settled(page, "slice_planes")
    crosshair = np.array(_state(page, "crosshair"))
    spacing = np.array(phantom_ct.GetSpacing())
    assert np.all(np.abs(crosshair - np.array(hovered)) <= spacing + 0.05), (crosshair,
                                                                             hovered)
    planes = _state(page, "slice_planes")
    for name in ("Axial", "Coronal", "Sagittal"):
        normal, origin = np.array(planes[name]["normal"]), np.array(planes[name]["origin"])
        distance = abs(float(normal @ (crosshair - origin)))
        assert distance <= spacing.max() / 2 + 0.05, (name, distance)
    r, a, s = crosshair
    index = np.array(phantom_ct.TransformPhysicalPointToContinuousIndex((-r, -a, s)))
    nearest = phantom_ct.GetPixel(*[int(v) for v in np.rint(index)])
    shown = float(re.search(r"CT (-?\d+\.\d) HU", _state(page, "cursor")).group(1))
    assert shown == pytest.approx(float(nearest), abs=0.05), (shown, nearest)
    _shot(page, shots, "viewer-crosshair")
    # Shift+move in the coronal view: the crosshair follows; the axial view moves to it
    coronal = _view_box(page, 1)
    cx, cy = coronal["x"] + coronal["width"] * 0.45, coronal["y"] + coronal["height"] * 0.6
    page.keyboard.down("Shift")
    page.mouse.move(cx - 4, cy)
    page.mouse.move(cx, cy)
    page.keyboard.up("Shift")
    _wait_state(page, MOVED, arg=_state(page, "crosshair"))
    _settled(page, "crosshair")
    _settled(page, "slice_planes")
    moved = np.array(_state(page, "crosshair"))
    axial = _state(page, "slice_planes")["Axial"]
    assert abs(moved[2] - axial["origin"][2]) <= spacing[2] / 2 + 0.05


def test_the_registration_check_shows_each_cbct_over_the_ct(planned, shots):
    """Bug: no way to see whether a CBCT's registration matches. Each position's CBCT is
    shown over the CT (the foreground of every slice view) with the opacity its slider
    shows; the flicker alternates that opacity with 0 (the CT alone) and stops on the
    slider's value."""
    page = planned
    page.locator('[data-panel="registration"]').scroll_into_view_if_needed()
    page.locator('[data-reg-show="1"]').click()
    _wait_state(page, "s('foreground') && s('foreground').volume === arg",
                arg="TAREPlanner CBCT left hepatic")
    assert _state(page, "view_mode") == "registration"
    slider = page.locator('[data-reg-opacity="1"] [role="slider"]').first
    track = page.locator('[data-reg-opacity="1"] .v-slider-track').first.bounding_box()
    page.mouse.click(track["x"] + 0.3 * track["width"], track["y"] + track["height"] / 2)
    _wait_state(page, "s('reg_opacity')['1'] !== undefined && "
                      "Math.abs(s('reg_opacity')['1'] - 0.3) < 0.026")
    page.wait_for_function("() => Math.abs(Number(document.querySelector("
                           "'[data-reg-opacity=\"1\"] [role=slider]').getAttribute("
                           "'aria-valuenow')) - 0.3) < 0.026", timeout=10_000)
    shown = float(slider.get_attribute("aria-valuenow"))
    _wait_state(page, "s('foreground').opacity.every((o) => Math.abs(o - arg) < 1e-6)",
                arg=shown)
    assert _state(page, "foreground")["opacity"] == [pytest.approx(shown)] * 3
    assert page.locator('[data-reg-opacity-value="1"]').inner_text() == "0.30"
    _shot(page, shots, "viewer-registration-check", "registration")
    # flicker: the opacity alternates between the slider's and 0, twice a second
    page.locator('[data-reg-flicker="1"] input').click()
    _wait_state(page, "s('reg_flicker') === 1")
    seen = set()
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline and len(seen) < 2:
        seen.add(tuple(_state(page, "foreground")["opacity"]))
        time.sleep(0.1)
    assert seen == {(0.3, 0.3, 0.3), (0.0, 0.0, 0.0)}, seen
    page.locator('[data-reg-flicker="1"] input').click()
    _wait_state(page, "s('reg_flicker') === null && "
                      "s('foreground').opacity.every((o) => Math.abs(o - 0.3) < 1e-6)")
    # the other position keeps its own opacity (0.5 until moved)
    page.locator('[data-reg-show="0"]').click()
    _wait_state(page, "s('foreground').volume === arg && "
                      "s('foreground').opacity.every((o) => Math.abs(o - 0.5) < 1e-6)",
                arg="TAREPlanner CBCT right hepatic")


def _distance_to_colour(image: np.ndarray, colour: tuple[int, int, int],
                        box: tuple[float, float, float, float], tolerance: float) -> float:
    """The distance (pixels) from the rectangle ``box`` (x0, y0, x1, y1) to the nearest
    pixel of ``image`` within ``tolerance`` of ``colour`` outside it; inf if none."""
    close = np.linalg.norm(image[..., :3].astype(float) - np.array(colour), axis=-1) \
        <= tolerance
    ys, xs = np.nonzero(close)
    x0, y0, x1, y1 = box
    outside = (xs < x0) | (xs > x1) | (ys < y0) | (ys > y1)
    xs, ys = xs[outside], ys[outside]
    if xs.size == 0:
        return float("inf")
    dx = np.maximum(np.maximum(x0 - xs, 0), xs - x1)
    dy = np.maximum(np.maximum(y0 - ys, 0), ys - y1)
    return float(np.hypot(dx, dy).min())


def test_isodose_lines_carry_their_levels(planned, shots):
    """Bug: isodose lines without their values. With the planned dose shown and the levels
    typed above the views (50, 120 Gy), every label reads its level ('50 Gy', '120 Gy') and
    sits on its line: in a screenshot of the view (the dose wash at opacity 0, so only the
    lines carry colour), a pixel of the label's colour lies within 6 px outside the label's
    box (at most 9 px a character and 22 px high around its anchor). Bad levels are
    refused beside the field (-5, abc, 1e9)."""
    from PIL import Image
    page = planned
    _view_mode(page, "CT + planned dose")
    _wait_state(page, "s('view_mode') === 'plan' && s('isodose_labels').length > 0")
    field = page.locator("[data-isodose-levels] input").first
    field.click()
    for bad in ("-5", "abc", "1e9"):
        field.fill(bad)
        field.press("Enter")
        _wait_state(page, "(s('isodose_error') || '').includes(arg)", arg=f"'{bad}'")
        message = page.locator("[data-isodose-levels] .v-messages").first
        message.wait_for()
        assert "Isodose lines (Gy)" in message.inner_text() and "allowed" in \
            message.inner_text(), message.inner_text()
        field.click()
    field.click()
    field.fill("50, 120")
    field.press("Enter")
    _wait_state(page, "JSON.stringify(s('isodose_levels')) === '[50,120]' && "
                      "s('isodose_labels').length > 0")
    page.evaluate("() => window.trame.state.set('fusion_opacity', 0)")
    _wait_state(page, "s('fusion_opacity') === 0")
    time.sleep(2.5)       # the views' images arrive after the state
    labels = _state(page, "isodose_labels")
    assert {label["text"] for label in labels} <= {"50 Gy", "120 Gy"}
    for label in labels:
        assert label["text"] == f"{label['level_gy']:g} Gy"
    # the lowest level's colour (blue) is no segment's outline colour: find its labels
    checked = 0
    for index, name in enumerate(("Axial", "Coronal", "Sagittal")):
        for label in (lb for lb in labels if lb["view"] == name and lb["level_gy"] == 50):
            box = _view_box(page, index)
            scale_x, scale_y = box["width"] / label["width"], box["height"] / label["height"]
            png = page.screenshot(clip=box)
            image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
            ax, ay = label["x"] * scale_x, label["y"] * scale_y
            half_w = (9 * len(label["text"]) + 8) / 2
            colour = tuple(int(label["colour"][k:k + 2], 16) for k in (1, 3, 5))
            distance = _distance_to_colour(image, colour, (ax - half_w, ay - 11, ax + half_w,
                                                           ay + 11), tolerance=70)
            assert distance <= 6, (name, label, distance)
            checked += 1
    assert checked >= 2, labels
    page.evaluate("() => window.trame.state.set('fusion_opacity', 0.5)")
    _shot(page, shots, "viewer-isodose", "plan")


def test_no_traceback_in_the_viewer_server_log(server):
    """(Last.) The controls above left no traceback and no VTK error in the log."""
    text = server["log"].read_text()
    assert "Traceback" not in text, text[text.find("Traceback"):][:3000]
    assert "ERROR" not in text, [line for line in text.splitlines() if "ERROR" in line][:5]
