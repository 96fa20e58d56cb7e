"""The segment editor on the web page (step 3, *Edit segments*): a thin view of
:class:`.segment_editing.SegmentEditing`.

The segment to edit (tumours, liver, lungs, territories), the editable area, the effect (none,
paint, erase, threshold, islands, smoothing), the brush, each effect's settings and its
*Apply* button, undo and redo, and a line with the segment's volume and the steps the edits
have made outdated. Paint, erase and the smoothing brush draw with the left mouse button in a
slice view (trame-slicer's effect pipelines in the page's views); the page's titles follow
each stroke. Only the tab that owns the session edits (the others follow read-only); taking
over ends the effect in use.
"""

from __future__ import annotations

import asyncio

from trame.widgets import html
from trame.widgets import vuetify3 as v3

from .segment_editing import (BRUSH_MM, EDITS, EFFECT_LABELS, EFFECTS, ISLAND_MODES,
                              KERNEL_MM, SMOOTHING_METHODS, SegmentEditing)

#: the page's expression for "this tab follows another read-only" (as app.READ_ONLY)
READ_ONLY = "owner_tab !== tab_id"
#: page setting -> the SegmentEditing.run action it sends, and the option it fills
SETTINGS = {"segment": ("select", "value"), "effect": ("effect", "value"),
            "brush_mm": ("brush", "diameter_mm"), "sphere": ("brush", "sphere"),
            "area": ("area", "value"), "threshold": ("threshold range", "value"),
            "islands_mode": ("islands mode", "value"),
            "islands_minimum": ("islands minimum", "value"),
            "smoothing_method": ("smoothing method", "value"),
            "kernel_mm": ("smoothing kernel", "value")}
#: how long after a mouse stroke the page's titles are refreshed (strokes come in bursts)
STROKE_REFRESH_S = 0.3


class SegmentEditorPage:
    """The editor's part of the page for :class:`.app.WebApp` ``app``."""

    def __init__(self, app):
        self.app = app
        self.editing = SegmentEditing(app.session, app.slicer_app.segmentation_editor)
        self._pending = None
        self._applying = False
        app.ctrl.trigger("se_set")(self.set)
        app.ctrl.trigger("se_apply")(self.apply)
        # a stroke drawn with the mouse changes the segmentation outside any button
        self.editing.editor.segmentation_modified.connect(self._modified)
        s = app.state
        s.se_open = False
        s.se_effects = [{"title": EFFECT_LABELS[k], "value": k} for k in EFFECTS]
        s.se_island_modes = list(ISLAND_MODES)
        s.se_smoothing_methods = list(SMOOTHING_METHODS)
        s.se_brush_range = list(BRUSH_MM)
        s.se_kernel_range = list(KERNEL_MM)
        s.update(self.state())

    # ------------------------------------------------------------------ state
    def state(self) -> dict:
        """The editor's part of the page state (merged into every refresh)."""
        e = self.editing
        bound = e.bind()
        # the segment's voxels are counted only while the editor is open (a refresh of a
        # real CT would otherwise count some 10^8 voxels for nothing)
        shown = bound and bool(self.app.state.se_open)
        text, error = e.message
        segments = e.segments()
        ct = self.app.session.p.ctVolume
        low, high = (ct.GetImageData().GetScalarRange() if ct is not None and
                     ct.GetImageData() is not None else (-1024.0, 3071.0))
        seg = self.app.session.p.segmentation
        every = [] if seg is None else [
            {"title": f"inside {seg.GetSegmentation().GetNthSegment(i).GetName()}",
             "value": seg.GetSegmentation().GetNthSegmentID(i)}
            for i in range(seg.GetSegmentation().GetNumberOfSegments())]
        return {"se_ready": bound and bool(segments),
                "se_segments": [{"title": s["title"], "value": s["id"]} for s in segments],
                "se_segment": e.segment_id or None, "se_effect": e.effect_name,
                "se_brush_mm": e.brush_mm, "se_sphere": e.sphere,
                "se_areas": [{"title": "everywhere", "value": ""}] + every,
                "se_area": e.area_segment_id,
                "se_threshold": [e.threshold_hu[0], e.threshold_hu[1]],
                "se_ct_range": [float(min(low, e.threshold_hu[0])),
                                float(max(high, e.threshold_hu[1]))],
                "se_islands_mode": e.island_mode, "se_islands_minimum": e.island_min_voxels,
                "se_smoothing_method": e.smoothing_method, "se_kernel_mm": e.kernel_mm,
                "se_can_undo": e.undo_stack.can_undo(), "se_can_redo": e.undo_stack.can_redo(),
                "se_voxels": e.voxel_count() if shown else 0,
                "se_summary": e.summary() if shown else "",
                "se_message": {"text": text, "error": error} if text else None}

    def _push(self, keep: str | None = None) -> None:
        """Send the editor's state; ``keep``: a state value the page holds already (a
        slider being moved: echoing each step back would move it under the mouse)."""
        values = self.state()
        values.pop(keep, None)
        with self.app.state as s:
            s.update(values)
            s.updates = (s.updates or 0) + 1     # every edit ends with one update

    # ------------------------------------------------------------------ page events
    def set(self, tab=None, key=None, value=None):
        """A setting changed in the page (the owning tab only)."""
        if key == "open":                # the editor shown or hidden (display only)
            self.app.state.se_open = bool(value)
            self._push()
            return
        if not self.app._owns(tab) or key not in SETTINGS:
            self._push()                 # a refused tab gets the owner's settings back
            return
        what, option = SETTINGS[key]
        ok, _ = self.editing.run(what, **{option: value})
        if ok and self.editing.message[1]:
            self.editing.message = ("", False)       # the refused setting was corrected
        # accepted: the page shows it already; refused: the page gets the value in force
        self._push(keep=f"se_{key}" if ok else None)

    def apply(self, tab=None, what=None):
        """An *Apply* button, undo or redo: the edit, then the page's titles."""
        if not self.app._owns(tab) or what not in EDITS or self.app.state.busy:
            return
        self._applying = True
        try:
            self.editing.run(what)
        finally:
            self._applying = False
        self._after_edit()

    def uses_mouse(self) -> bool:
        """Whether the left button in a slice view belongs to the editor now (a brush, or an
        island to click): the viewer's window/level drag and crosshair click then stand
        aside."""
        e = self.editing
        return e.effect_name in ("paint", "erase", "smoothing") or (
            e.effect_name == "islands" and e.island_mode.endswith("clicked"))

    def release(self) -> None:
        """The owner changed (or the patient): no effect stays active for mouse strokes."""
        if self.editing.effect_name != "none":
            self.editing.run("effect", value="none")
        self._push()

    def _modified(self, *_):
        """The segmentation changed (a mouse stroke, an undo): refresh the titles soon,
        once per burst."""
        if self._applying or self.app._refreshing:
            return
        try:
            loop = asyncio.get_event_loop()
        except RuntimeError:
            return
        if self._pending is None or self._pending.done():
            self._pending = loop.create_task(self._later())

    async def _later(self):
        await asyncio.sleep(STROKE_REFRESH_S)
        if self.editing.effect_name in ("paint", "erase", "smoothing", "islands"):
            self.editing.message = (self.editing.summary(), False)
        self._after_edit()

    def _after_edit(self):
        # an undo or redo rebuilds the segments, and with them their display: the page's
        # colours by role again
        self._applying = True
        try:
            self.app._show_segments()
        finally:
            self._applying = False
        for view in self.app.slicer_app.view_manager.get_views():
            view.schedule_render()
        self.app.refresh()

    # ------------------------------------------------------------------ page
    def build(self):
        """The *Edit segments* part of step 3."""
        with html.Div(classes="mt-2", raw_attrs=["data-segment-editor"]):
            v3.VBtn("Edit segments", size="small", variant="tonal",
                    prepend_icon=("se_open ? 'mdi-chevron-up' : 'mdi-chevron-down'",),
                    click="se_open = !se_open; trigger('se_set', [tab_id, 'open', se_open])",
                    classes="mb-2",
                    raw_attrs=["data-segment-editor-toggle"])
            with html.Div(v_show=("se_open",)):
                html.Div("No segments to edit yet (step 1).", v_if=("!se_ready",),
                         classes="text-caption")
                with html.Div(v_if=("se_ready",)):
                    self._controls()

    @staticmethod
    def _set(key: str, value: str = "$event") -> str:
        """The page takes the value at once and sends it (a refused one comes back as the
        value in force with its message)."""
        return f"se_{key} = {value}; trigger('se_set', [tab_id, {key!r}, se_{key}])"

    def _controls(self):
        with v3.VRow(dense=True):
            with v3.VCol(cols=6):
                v3.VSelect(model_value=("se_segment",), items=("se_segments",),
                           label="Segment to edit", density="compact", hide_details=True,
                           readonly=(READ_ONLY,), update_modelValue=self._set("segment"),
                           raw_attrs=['data-se-field="segment"'])
            with v3.VCol(cols=6):
                v3.VSelect(model_value=("se_area",), items=("se_areas",),
                           label="Editable area", density="compact", hide_details=True,
                           readonly=(READ_ONLY,), update_modelValue=self._set("area"),
                           raw_attrs=['data-se-field="area"'])
        with html.Div(classes="d-flex align-center flex-wrap ga-1 my-2"):
            with v3.VBtnToggle(model_value=("se_effect",), density="compact", mandatory=True,
                               variant="outlined", divided=True, disabled=(READ_ONLY,),
                               update_modelValue=self._set("effect"),
                               raw_attrs=["data-se-effects"]):
                for key in EFFECTS:
                    v3.VBtn(EFFECT_LABELS[key], value=key, size="small",
                            raw_attrs=[f'data-se-effect="{key}"'])
            v3.VBtn(icon="mdi-undo", size="small", variant="text",
                    disabled=(f"!se_can_undo || !!busy || {READ_ONLY}",),
                    click="trigger('se_apply', [tab_id, 'undo'])", raw_attrs=["data-se-undo"])
            v3.VBtn(icon="mdi-redo", size="small", variant="text",
                    disabled=(f"!se_can_redo || !!busy || {READ_ONLY}",),
                    click="trigger('se_apply', [tab_id, 'redo'])", raw_attrs=["data-se-redo"])
        with html.Div(v_if=("['paint', 'erase', 'smoothing'].includes(se_effect)",)):
            v3.VSlider(model_value=("se_brush_mm",), min=BRUSH_MM[0], max=BRUSH_MM[1], step=1,
                       label="Brush diameter (mm)", density="compact", hide_details=True,
                       thumb_label=True, readonly=(READ_ONLY,),
                       update_modelValue=self._set("brush_mm"),
                       raw_attrs=['data-se-field="brush_mm"'])
            html.Div("{{ se_brush_mm }} mm", classes="text-caption",
                     raw_attrs=["data-se-brush"])
            v3.VCheckbox(model_value=("se_sphere",), density="compact", hide_details=True,
                         label="Sphere brush (else a disc, one slice thick, in the slice view "
                               "it is drawn in)", readonly=(READ_ONLY,),
                         update_modelValue=self._set("sphere", "!!$event"),
                         raw_attrs=['data-se-field="sphere"'])
            html.Div("Draw with the left mouse button in a slice view"
                     " (smoothing: where the brush passes).", classes="text-caption")
        with html.Div(v_if=("se_effect === 'threshold'",)):
            v3.VRangeSlider(model_value=("se_threshold",), min=("se_ct_range[0]",),
                            max=("se_ct_range[1]",), step=1, label="Threshold (HU)",
                            density="compact", hide_details=True, thumb_label=True,
                            readonly=(READ_ONLY,),
                            update_modelValue=self._set("threshold"),
                            raw_attrs=['data-se-field="threshold"'])
            html.Div("{{ se_threshold[0] }} to {{ se_threshold[1] }} HU (inclusive): the "
                     "segment becomes these CT voxels within the editable area",
                     classes="text-caption")
            self._apply_button("threshold", "Apply threshold")
        with html.Div(v_if=("se_effect === 'islands'",)):
            v3.VSelect(model_value=("se_islands_mode",), items=("se_island_modes",),
                       label="Islands", density="compact", hide_details=True,
                       readonly=(READ_ONLY,), update_modelValue=self._set("islands_mode"),
                       raw_attrs=['data-se-field="islands_mode"'], classes="mb-1")
            v3.VSlider(v_if=("se_islands_mode === 'remove small'",),
                       model_value=("se_islands_minimum",), min=1, max=5000, step=1,
                       label="Minimum size (voxels)", density="compact", hide_details=True,
                       thumb_label=True, readonly=(READ_ONLY,),
                       update_modelValue=self._set("islands_minimum"),
                       raw_attrs=['data-se-field="islands_minimum"'])
            html.Div("Click an island in a slice view.", classes="text-caption",
                     v_if=("se_islands_mode.endsWith('clicked')",))
            self._apply_button("islands", "Apply", v_if=("!se_islands_mode.endsWith("
                                                         "'clicked')",))
        with html.Div(v_if=("se_effect === 'smoothing'",)):
            with v3.VRow(dense=True, classes="mt-1"):
                with v3.VCol(cols=5):
                    v3.VSelect(model_value=("se_smoothing_method",),
                               items=("se_smoothing_methods",), label="Smoothing",
                               density="compact", hide_details=True, readonly=(READ_ONLY,),
                               update_modelValue=self._set("smoothing_method"),
                               raw_attrs=['data-se-field="smoothing_method"'])
                with v3.VCol(cols=7):
                    v3.VSlider(model_value=("se_kernel_mm",), min=KERNEL_MM[0],
                               max=KERNEL_MM[1], step=0.5,
                               label="Kernel (mm; Gaussian: SD)", density="compact",
                               hide_details=True, thumb_label=True, readonly=(READ_ONLY,),
                               update_modelValue=self._set("kernel_mm"),
                               raw_attrs=['data-se-field="kernel_mm"'])
            self._apply_button("smooth", "Smooth the whole segment")
        html.Div("{{ se_summary }}", classes="text-body-2 mt-1",
                 raw_attrs=[':data-se-voxels="se_voxels"', "data-se-summary"])
        with html.Div(v_if=("se_message",)):
            v3.VAlert(v_if=("se_message.error",), type="error", density="compact",
                      variant="tonal", classes="mt-1 text-body-2",
                      text=("se_message.text",), raw_attrs=["data-se-error"])

    @staticmethod
    def _apply_button(what: str, label: str, **kwargs):
        v3.VBtn(label, color="primary", size="small", classes="mt-1",
                disabled=(f"!se_segment || !!busy || {READ_ONLY}",),
                click=f"trigger('se_apply', [tab_id, {what!r}])",
                raw_attrs=[f'data-se-apply="{what}"'], **kwargs)
