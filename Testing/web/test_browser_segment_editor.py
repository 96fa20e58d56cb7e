"""The segment editor of the web page as a person uses it: headless Chromium on
``tareplanner serve`` (its own server, the fixtures of test_browser), painting and erasing
with the mouse in the axial slice view.

The synthetic CT's grid is 2 x 2 x 3 mm; an 18 mm disc brush in the axial view covers the
voxels with i^2 + j^2 <= 20.25 of one slice: 69 voxels (worked out in
test_segment_editing.test_paint_adds_the_brush_voxels_worked_by_hand).

Run with ``pytest -m browser Testing/web``; skipped without the 'web' extra or Chromium.
"""

from __future__ import annotations

import time

import pytest

from .test_browser import (CHROMIUM, MISSING, _after, _choose, _click, _shot,  # noqa: F401
                           _state, _title, _updates, _wait_title, browser, page, server,
                           shots)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(bool(MISSING), reason=f"needs the 'web' extra (missing: "
                                             f"{', '.join(MISSING)})"),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium"),
]

DISC_VOXELS = 69


def _voxels(page) -> int:
    return int(_state(page, "se_voxels"))


def _wait_state(page, name: str, test: str, arg=None, timeout: int = 60_000) -> None:
    """Wait until ``test`` (a JS expression of ``v``, the state value, and ``a``) holds."""
    page.wait_for_function(f"([n, a]) => {{ const v = window.trame.state.get(n); "
                           f"return {test}; }}", arg=[name, arg], timeout=timeout)


def _effect(page, name: str) -> None:
    page.locator(f'[data-se-effect="{name}"]').click()
    _wait_state(page, "se_effect", "v === a", name)


#: a point of the axial view (fractions of the views' area; the axial view is its top left
#: quarter) in the body, on the patient's left of the liver, 20 mm and more from it
BODY = (0.40, 0.34)


def _click_axial(page) -> None:
    """Press and release the left button at :data:`BODY` in the axial view."""
    box = page.locator("[data-views]").bounding_box()
    x, y = box["x"] + box["width"] * BODY[0], box["y"] + box["height"] * BODY[1]
    page.mouse.move(x, y)
    time.sleep(0.3)
    page.mouse.down()
    time.sleep(0.2)
    page.mouse.up()


def _changed_from(page, voxels: int) -> int:
    _wait_state(page, "se_voxels", "v !== a", voxels)
    time.sleep(0.5)             # one stroke, one change: nothing else is coming
    return _voxels(page)


def test_paint_and_erase_by_mouse_in_a_slice_view(page, server, shots):
    """Bugs caught: mouse strokes in the views not reaching the segment (or painting another
    one), a brush in screen units, an edit not shown as outdating the steps that read the
    segment, undo not restoring it. The liver is painted with an 18 mm disc by one click in
    the axial view, in the body beside the liver: it gains the 69 voxels of the disc, and
    step 3 (which read the liver) becomes outdated; erasing with one click at the same
    place removes exactly the 69 voxels of the disc; two undos give the liver back voxel for
    voxel and step 3 is done again."""
    _click(page, "load")
    _wait_title(page, "data", "[done]")
    _click(page, "lungs")
    _wait_title(page, "segmentation", "[done]")
    page.locator("[data-segment-editor-toggle]").click()
    _choose(page, '[data-se-field="segment"]', "liver (liver)")
    _wait_state(page, "se_segments", "v.find(s => s.title === 'liver (liver)').value === "
                "window.trame.state.get('se_segment')")
    _effect(page, "paint")
    thumb = page.locator('[data-se-field="brush_mm"] .v-slider-thumb').first
    thumb.focus()
    for _ in range(8):                              # 10 mm -> 18 mm, 1 mm a key
        thumb.press("ArrowRight")
    _wait_state(page, "se_brush_mm", "v === 18")
    original = _voxels(page)
    assert original > 0
    _click_axial(page)
    painted = _changed_from(page, original)
    assert painted - original == DISC_VOXELS, (original, painted)
    _wait_title(page, "segmentation", "OUTDATED")
    assert "liver changed" in _title(page, "segmentation")
    assert "outdated: " in page.locator("[data-se-summary]").inner_text()
    # the page's colours by role stay (the liver orange, as the views show it elsewhere)
    liver = next(s for s in _state(page, "segments") if s["name"] == "liver")
    assert liver["colour"] == "#f28c26", liver
    _shot(page, shots, "segment-editor", "segmentation")

    _effect(page, "erase")
    _click_axial(page)
    erased = _changed_from(page, painted)
    assert painted - erased == DISC_VOXELS, (painted, erased)

    for expected in (painted, original):
        before = _updates(page)
        page.locator("[data-se-undo]").click()
        _after(page, before)
        _wait_state(page, "se_voxels", "v === a", expected)
    _wait_title(page, "segmentation", "[done]")
    liver = next(s for s in _state(page, "segments") if s["name"] == "liver")
    assert liver["colour"] == "#f28c26", liver        # its colour survives the undo

    # a stroke dragged across the view paints more than one disc, in the tumour chosen
    _choose(page, '[data-se-field="segment"]', "T1 (tumour)")
    _effect(page, "paint")
    start = _voxels(page)
    box = page.locator("[data-views]").bounding_box()
    x, y = box["x"] + box["width"] * BODY[0], box["y"] + box["height"] * BODY[1]
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - 40, y + 30, steps=12)
    page.mouse.up()
    stroke = _changed_from(page, start)
    assert stroke - start > DISC_VOXELS, (start, stroke)
    _effect(page, "none")
    assert not page.errors, page.errors


def _click_axial_settled(page, other) -> None:
    """A click in ``other``'s axial view, then time for any stroke to reach the owner."""
    _click_axial(other)
    time.sleep(2.0)        # a stroke's update arrives within STROKE_REFRESH_S (0.3 s)


def test_a_read_only_tab_cannot_paint(browser, page, server):
    """Bug: a second tab following read-only painted the owner's segment (the views are
    shared: its strokes reached the owner's active brush). With the owner's paint brush
    active, a click in the second tab's axial view changes nothing; nor does it when that
    page is altered to pass mouse events to the view (the server drops the view events of a
    connection that is not the owner's), nor an undo sent straight from it under the
    owner's own tab id (the undo of the stroke above). The same click from the owner paints
    the 69 voxels of the disc: the place and the brush would paint."""
    _choose(page, '[data-se-field="segment"]', "liver (liver)")
    _effect(page, "paint")
    _wait_state(page, "se_brush_mm", "v === 18")
    before = _voxels(page)
    context = browser.new_context(viewport={"width": 1680, "height": 1050})
    other = context.new_page()
    other.goto(server["url"])
    other.wait_for_selector('[data-title="data"]', timeout=120_000)
    other.locator("[data-read-only]").wait_for(timeout=30_000)
    other.locator("[data-views].views-read-only").wait_for(state="attached", timeout=30_000)
    time.sleep(1.5)                                  # its views' first images
    _click_axial_settled(page, other)
    assert _voxels(page) == before
    # a page altered to send its mouse events to the views anyway
    other.evaluate("document.querySelector('[data-views]').classList"
                   ".remove('views-read-only')")
    assert other.locator("[data-views].views-read-only").count() == 0
    _click_axial_settled(page, other)
    assert _voxels(page) == before
    updates = _updates(page)       # an undo that ran would end with an update
    other.evaluate("window.trame.trigger('se_apply', "
                   "[window.trame.state.get('owner_tab'), 'undo'])")
    time.sleep(1.5)
    assert _updates(page) == updates and _voxels(page) == before
    assert _state(page, "se_effect") == "paint"
    context.close()
    _click_axial(page)
    assert _changed_from(page, before) - before == DISC_VOXELS
    _effect(page, "none")


def test_no_traceback_in_the_server_log(server):
    """(Last.) The edits left no traceback and no VTK error in the server's log."""
    text = server["log"].read_text()
    assert "Traceback" not in text, text[text.find("Traceback"):][:3000]
    assert "ERROR" not in text, [line for line in text.splitlines() if "ERROR" in line][:5]
