"""The slice views' mouse and display controls of the web page (trame-slicer views):

- **window/level by dragging** with the left button on a slice view: the background image
  (the CT) by 3D Slicer's rule (:mod:`.viewer_geometry`); the window/level shown beside the
  CT presets follows, and a preset is shown selected only while the display has its values;
- a **linked crosshair**: a left click (press and release without moving) or Shift + mouse
  move in one slice view puts the crosshair there; the other slice views move to that point,
  every slice view draws it, and the readout of the values under the cursor gives that point;
- the **registration check**: one position's CBCT (under its registration transform) over
  the CT with its own opacity, and a flicker that shows and hides it twice a second;
- **isodose lines with labels** (the level in Gy on each line) in the slice views, at levels
  typed above the views (empty: the plan's isodose levels), drawn from the dose on the
  view's pixels whenever the slice, the zoom or the dose changes.

The display only: nothing here changes a record or a parameter of the plan.
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np

from . import forms
from .viewer_geometry import (contour_lines, dragged_window_level, flicker_opacity,
                              label_anchor, level_text, matching_preset, slice_samples,
                              window_level_text)

log = logging.getLogger(__name__)

#: a press and release closer than this (pixels) is a click (the crosshair), not a drag
CLICK_PX = 3
#: the flicker's half period (s): the CBCT shown, then the CT alone
FLICKER_S = 0.5
#: the viewer's isodose levels field
LEVELS_FIELD = forms.Field("Isodose lines (Gy)", "levels", empty="none")
MAX_LEVELS = 8
#: crosshair display (vtkMRMLCrosshairNode::NoCrosshair, ShowBasic) and thickness (Medium)
NO_CROSSHAIR, SHOW_BASIC, THICKNESS_MEDIUM = 0, 1, 2


def _matrix(vtk_matrix) -> np.ndarray:
    return np.array([[vtk_matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def _ras_to_ijk(node) -> np.ndarray:
    """A volume's RAS-to-IJK matrix with its parent (linear) transform applied."""
    import vtk
    matrix = vtk.vtkMatrix4x4()
    node.GetRASToIJKMatrix(matrix)
    out = _matrix(matrix)
    transform = node.GetParentTransformNode()
    if transform is not None and transform.IsTransformToWorldLinear():
        to_parent = vtk.vtkMatrix4x4()
        transform.GetMatrixTransformToWorld(to_parent)
        out = out @ np.linalg.inv(_matrix(to_parent))
    return out


class ViewerControls:
    """The controls of the slice views of one :class:`.app.WebApp`."""

    def __init__(self, app, ct_presets: dict[str, tuple[float, float]]):
        self.app = app
        self.ct_presets = dict(ct_presets)
        self.state = app.state
        s = self.state
        s.ct_wl, s.ct_range, s.crosshair, s.slice_planes = None, None, None, {}
        s.isodose_draft, s.isodose_text, s.isodose_error = "", "", ""
        s.isodose_levels, s.isodose_labels = [], []
        s.reg_check, s.reg_opacity, s.reg_flicker = None, {}, None
        s.view_sizes = {}
        s.foreground = None
        s.client_only("isodose_draft")
        for name, method in (("isodose_levels_text", self.set_levels),
                             ("reg_check", self.registration_check),
                             ("reg_flicker_set", self.set_flicker)):
            app.ctrl.trigger(name)(method)
        self._drag = None          # (view, x, y, window, level, scalar range) while pressed
        self._dragged = False
        self._ct_observed = None
        self._crosshair_observed = None
        self._last_ras = None
        self._flicker_task = None
        self._dose_cache = {}
        self._iso = {}             # view -> (lines actor, [text actors])
        for view in app.slicer_app.view_manager.get_slice_views():
            self._install(view)

    # ------------------------------------------------------------------ views
    def _slice_views(self):
        return [(view, view._logic.GetSliceNode())
                for view in self.app.slicer_app.view_manager.get_slice_views()]

    def _install(self, view):
        import vtk
        iren = view.interactor()
        for event, handler in (("LeftButtonPressEvent", self._press),
                               ("MouseMoveEvent", self._move),
                               ("LeftButtonReleaseEvent", self._release)):
            # the callback holds its own command (to stop Slicer's handling of the event)
            holder = [None]
            tag = iren.AddObserver(event, lambda obj, _e, v=view, h=handler, c=holder:
                                   h(v, obj, c[0]), 10.0)
            holder[0] = iren.GetCommand(tag)
        lines = vtk.vtkActor2D()
        mapper = vtk.vtkPolyDataMapper2D()
        lines.SetMapper(mapper)
        lines.GetProperty().SetLineWidth(2.0)
        lines.SetVisibility(False)
        view.renderer().AddViewProp(lines)
        self._iso[view] = (lines, [])
        view._logic.GetSliceNode().AddObserver(
            "ModifiedEvent", lambda *_, v=view: self._slice_moved(v))

    def _slice_moved(self, view):
        self._update_isodose_view(view)
        self._push_planes()
        slice_node = view._logic.GetSliceNode()
        size = list(slice_node.GetDimensions()[:2])
        if (self.state.view_sizes or {}).get(slice_node.GetOrientation()) != size:
            with self.state:
                self.state.view_sizes = {**(self.state.view_sizes or {}),
                                         slice_node.GetOrientation(): size}

    # ------------------------------------------------------------------ window/level drag
    def _ct_display(self):
        ct = self.app.session.p.ctVolume
        if ct is None or ct.GetImageData() is None:
            return None
        if ct.GetDisplayNode() is None:
            ct.CreateDefaultDisplayNodes()
        return ct.GetDisplayNode()

    def _press(self, view, iren, command):
        if iren.GetShiftKey() or iren.GetControlKey():
            return
        editor = getattr(self.app, "segment_editor", None)
        if editor is not None and editor.uses_mouse():
            return              # the segment editor's brush (or island click) has the button
        display = self._ct_display()
        if display is None:
            return
        x, y = iren.GetEventPosition()
        ct = self.app.session.p.ctVolume
        self._drag = (view, x, y, display.GetWindow(), display.GetLevel(),
                      ct.GetImageData().GetScalarRange())
        self._dragged = False
        if command is not None:
            command.SetAbortFlag(1)      # the press is ours (Slicer would start its own)

    def _move(self, view, iren, command):
        if self._drag is None or self._drag[0] is not view:
            return
        _, x0, y0, window, level, scalar_range = self._drag
        x, y = iren.GetEventPosition()
        if not self._dragged and max(abs(x - x0), abs(y - y0)) < CLICK_PX:
            return
        self._dragged = True
        size = view._logic.GetSliceNode().GetDimensions()[:2]
        new_window, new_level = dragged_window_level(window, level, x - x0, y - y0,
                                                     scalar_range, size)
        display = self._ct_display()
        if display is not None:
            display.SetAutoWindowLevel(False)
            display.SetWindowLevel(new_window, new_level)

    def _release(self, view, iren, command):
        if self._drag is None or self._drag[0] is not view:
            return
        _, x0, y0, *_ = self._drag
        clicked = not self._dragged
        self._drag, self._dragged = None, False
        if command is not None:
            command.SetAbortFlag(1)
        if clicked:
            slice_node = view._logic.GetSliceNode()
            ras = slice_node.GetXYToRAS().MultiplyPoint((float(x0), float(y0), 0.0, 1.0))[:3]
            self.set_crosshair(ras, view)

    def observe_ct(self):
        """After a load: the CT's display node tells the page its window/level."""
        display = self._ct_display()
        if display is None or display is self._ct_observed:
            self._ct_changed()
            return
        self._ct_observed = display
        display.AddObserver("ModifiedEvent", lambda *_: self._ct_changed())
        self._ct_changed()

    def _ct_changed(self):
        display = self._ct_display()
        if display is None:
            return
        window, level = display.GetWindow(), display.GetLevel()
        low, high = self.app.session.p.ctVolume.GetImageData().GetScalarRange()
        if self.state.ct_wl == [window, level] and self.state.ct_range == [low, high]:
            return
        preset = matching_preset(window, level, self.ct_presets)
        with self.state:
            self.state.ct_wl = [window, level]
            self.state.ct_range = [low, high]
            self.state.ct_window = window_level_text(window, level)
            if self.state.ct_preset != preset:
                self.state.ct_preset = preset
        for view, _ in self._slice_views():
            view.schedule_render()

    # ------------------------------------------------------------------ crosshair
    def _crosshair_node(self):
        node = self.app.slicer_app.scene.GetFirstNodeByClass("vtkMRMLCrosshairNode")
        if node is not None and node is not self._crosshair_observed:
            self._crosshair_observed = node
            # drawn once the user puts it somewhere (not at the scene's origin on loading)
            node.SetCrosshairMode(NO_CROSSHAIR)
            node.SetCrosshairThickness(THICKNESS_MEDIUM)
            self._last_ras = [round(float(v), 3) for v in node.GetCrosshairRAS()]
            node.AddObserver("ModifiedEvent", lambda *_: self._crosshair_moved())
        return node

    def set_crosshair(self, ras, view=None):
        """The crosshair at ``ras``: every other slice view moves to it (its slice through
        the point), and the readout gives the values there."""
        node = self._crosshair_node()
        if node is None:
            return
        r, a, s = (float(v) for v in ras)
        for other, slice_node in self._slice_views():
            if other is not view:
                slice_node.JumpSliceByOffsetting(r, a, s)
        node.SetCrosshairRAS(r, a, s)
        self._crosshair_moved(force=True)

    def _crosshair_moved(self, force: bool = False):
        node = self._crosshair_observed
        if node is None:
            return
        ras = [round(float(v), 3) for v in node.GetCrosshairRAS()]
        if not force and ras == self._last_ras:
            return                # another property changed (not the point)
        self._last_ras = ras
        if node.GetCrosshairMode() != SHOW_BASIC:
            node.SetCrosshairMode(SHOW_BASIC)
        with self.state:
            self.state.crosshair = ras
            self.state.cursor = self.app.readout(ras)
        self._push_planes()
        for view, _ in self._slice_views():
            view.schedule_render()

    def _push_planes(self):
        """Each slice view's plane (normal and a point, RAS) while a crosshair is set."""
        if self.state.crosshair is None:
            return
        planes = {}
        for _, slice_node in self._slice_views():
            to_ras = _matrix(slice_node.GetSliceToRAS())
            planes[slice_node.GetOrientation()] = {"normal": to_ras[:3, 2].tolist(),
                                                   "origin": to_ras[:3, 3].tolist()}
        if planes != self.state.slice_planes:
            with self.state:
                self.state.slice_planes = planes

    def after_load(self):
        """A patient was loaded: the crosshair shown, the CT's window/level observed."""
        node = self._crosshair_node()
        if node is not None:              # hidden until it is put somewhere again
            node.SetCrosshairMode(NO_CROSSHAIR)
            self._last_ras = [round(float(v), 3) for v in node.GetCrosshairRAS()]
        self.state.crosshair, self.state.slice_planes = None, {}
        self.observe_ct()
        self._dose_cache.clear()

    # ------------------------------------------------------------------ registration check
    def registration_node(self, index):
        positions = self.app.session.p.positions
        if not isinstance(index, int) or not 0 <= index < len(positions):
            return None
        return positions[index].cbct

    def show(self, mode: str) -> bool:
        """The app's view modes pass here first: True when this module drew the views (the
        registration check)."""
        self.observe_ct()                 # the CT may have been chosen anew
        if mode != "registration":
            self._stop_flicker()
            if self.state.reg_check is not None:
                self.state.reg_check = None
            return False
        p = self.app.session.p
        if self.state.reg_check is None:
            self.state.reg_check = 0          # chosen from the list: the first position
        cbct = self.registration_node(self.state.reg_check)
        display = self.app.slicer_app.display_manager
        if p.ctVolume is None or cbct is None:
            return False
        if cbct.GetDisplayNode() is None:
            cbct.CreateDefaultDisplayNodes()
        shown = cbct.GetDisplayNode()
        # magenta over the grey CT: an edge out of place shows as a coloured fringe
        shown.SetAndObserveColorNodeID("vtkMRMLColorTableNodeMagenta")
        shown.SetApplyThreshold(False)
        display.show_volume_in_slice_background(p.ctVolume)
        display.show_volume_in_slice_foreground(cbct)
        self._set_opacity(self._opacity(self.state.reg_check))
        self.app._legend("registration", None)
        self.update_isodose()
        return True

    def _opacity(self, index) -> float:
        return float((self.state.reg_opacity or {}).get(str(index), 0.5))

    def _set_opacity(self, opacity: float):
        for view, _ in self._slice_views():
            view.set_foreground_opacity(float(opacity))
        self._push_foreground()

    def _push_foreground(self):
        views = self._slice_views()
        if not views:
            return
        composite = views[0][0]._logic.GetSliceCompositeNode()
        node = self.app.slicer_app.scene.GetNodeByID(composite.GetForegroundVolumeID() or "")
        with self.state:
            self.state.foreground = {
                "volume": node.GetName() if node is not None else None,
                "opacity": [round(v.get_foreground_opacity(), 6) for v, _ in views]}

    def registration_check(self, tab=None, index=None, opacity=None, flicker=None):
        """Show position ``index``'s CBCT over the CT with ``opacity`` (0 to 1), flickering
        when ``flicker``; None index: back to the CT alone."""
        if not self.app._owns(tab):
            return
        if index is None:
            self.state.view_mode = "ct"
            return
        if self.registration_node(index) is None:
            return
        if opacity is not None:
            try:
                value = min(max(float(opacity), 0.0), 1.0)
            except (TypeError, ValueError):
                value = 0.5
            self.state.reg_opacity = {**(self.state.reg_opacity or {}), str(index): value}
        self.state.reg_check = index
        self.state.view_mode = "registration"
        self.app.show("registration")
        if flicker is not None:
            self.set_flicker(tab, index if flicker else None)

    def set_flicker(self, tab=None, index=None):
        if not self.app._owns(tab):
            return
        self._stop_flicker()
        if index is None or self.registration_node(index) is None:
            self.state.reg_flicker = None
            if self.state.view_mode == "registration":
                self._set_opacity(self._opacity(self.state.reg_check))
            return
        if self.state.reg_check != index or self.state.view_mode != "registration":
            self.registration_check(tab, index)
        self.state.reg_flicker = index
        self._flicker_task = asyncio.ensure_future(self._flicker(index))

    async def _flicker(self, index):
        phase = 0
        try:
            while self.state.reg_flicker == index and self.state.view_mode == "registration":
                self._set_opacity(flicker_opacity(self._opacity(index), phase))
                phase += 1
                await asyncio.sleep(FLICKER_S)
        except asyncio.CancelledError:
            pass

    def _stop_flicker(self):
        if self._flicker_task is not None:
            self._flicker_task.cancel()
            self._flicker_task = None
        if self.state.reg_flicker is not None:
            self.state.reg_flicker = None

    # ------------------------------------------------------------------ isodose lines
    def set_levels(self, tab=None, text=None):
        """The isodose lines' levels typed above the views (empty: the plan's levels)."""
        if not self.app._owns(tab):
            return
        try:
            parsed = forms.parse(LEVELS_FIELD, text)
            from ..mrml.isodose import parse_levels_gy
            levels = parse_levels_gy(parsed, LEVELS_FIELD.label) if parsed else []
            if len(levels) > MAX_LEVELS:
                raise ValueError(f"{LEVELS_FIELD.label}: got {len(levels)} levels; allowed: "
                                 f"at most {MAX_LEVELS}")
        except ValueError as error:
            self.state.isodose_error = str(error)
            return
        self.state.isodose_error = ""
        self.state.isodose_text = parsed
        self._levels_typed = levels
        self.update_isodose()

    _levels_typed: list = []

    def _dose(self):
        """The dose the slice views show (plan or verification mode), or None."""
        from ..mrml import guided
        if self.state.view_mode not in ("plan", "verification"):
            return None
        return guided.dose_volume_node(self.app.slicer_app.scene, self.state.view_mode)

    def levels(self) -> list[float]:
        """The typed levels, else the plan's isodose levels (its models' levels)."""
        if self._levels_typed:
            return list(self._levels_typed)
        from ..mrml import attributes, guided
        scene = self.app.slicer_app.scene
        plan = guided.dose_volume_node(scene, "plan")
        if plan is None:
            return []
        out = set()
        models = scene.GetNodesByClass("vtkMRMLModelNode")
        for i in range(models.GetNumberOfItems()):
            model = models.GetItemAsObject(i)
            level = model.GetAttribute(attributes.ISODOSE_LEVEL_GY)
            if level and model.GetAttribute(attributes.ISODOSE_DOSE_VOLUME) == plan.GetID():
                out.add(float(level))
        return sorted(out)

    def _dose_array(self, node):
        from vtkmodules.util.numpy_support import vtk_to_numpy
        image = node.GetImageData()
        key = (node.GetID(), image.GetMTime())
        if self._dose_cache.get("key") != key:
            dims = image.GetDimensions()
            values = vtk_to_numpy(image.GetPointData().GetScalars())
            self._dose_cache = {"key": key,
                                "array": values.reshape(dims[2], dims[1], dims[0])}
        return self._dose_cache["array"]

    def update_isodose(self):
        levels = self.levels()
        self.state.isodose_levels = levels
        labels = []
        for view, _ in self._slice_views():
            labels += self._update_isodose_view(view, push=False)
        self.state.isodose_labels = labels

    def _update_isodose_view(self, view, push: bool = True) -> list[dict]:
        import vtk
        from vtkmodules.util.numpy_support import numpy_to_vtk
        from ..mrml.isodose import _colour
        lines_actor, texts = self._iso[view]
        for text in texts:
            view.renderer().RemoveViewProp(text)
        texts.clear()
        dose = self._dose()
        levels = self.levels() if dose is not None else []
        slice_node = view._logic.GetSliceNode()
        width, height = slice_node.GetDimensions()[:2]
        if dose is None or dose.GetImageData() is None or not levels:
            if lines_actor.GetVisibility():
                view.schedule_render()
            lines_actor.SetVisibility(False)
            if push:
                self._push_labels(view, [])
            return []
        image = slice_samples(self._dose_array(dose), _ras_to_ijk(dose),
                              _matrix(slice_node.GetXYToRAS()), width, height)
        points, cells, colours, labels, taken = vtk.vtkPoints(), vtk.vtkCellArray(), [], [], []
        name = slice_node.GetOrientation()
        for index, level in enumerate(levels):
            colour = _colour(index, len(levels))
            lines = contour_lines(image, level)
            for line in lines:
                first = points.GetNumberOfPoints()
                for x, y in line:
                    points.InsertNextPoint(float(x), float(y), 0.0)
                cells.InsertNextCell(len(line))
                for k in range(len(line)):
                    cells.InsertCellPoint(first + k)
                colours.append([int(255 * c) for c in colour])
            anchor = label_anchor(lines, taken)
            if anchor is None:
                continue
            taken.append(anchor)
            text = vtk.vtkTextActor()
            text.SetInput(level_text(level))
            prop = text.GetTextProperty()
            prop.SetFontSize(13)
            prop.SetBold(True)
            # the line's colour lightened (readable on the dark box, told apart from the line)
            prop.SetColor(*(c + 0.4 * (1.0 - c) for c in colour))
            prop.SetBackgroundColor(0.0, 0.0, 0.0)
            prop.SetBackgroundOpacity(0.65)
            prop.SetJustificationToCentered()
            prop.SetVerticalJustificationToCentered()
            text.SetDisplayPosition(int(round(anchor[0])), int(round(anchor[1])))
            view.renderer().AddViewProp(text)
            texts.append(text)
            labels.append({"view": name, "level_gy": level, "text": level_text(level),
                           "x": anchor[0], "y": height - 1 - anchor[1],
                           "width": width, "height": height,
                           "colour": "#%02x%02x%02x" % tuple(int(255 * c) for c in colour)})
        polydata = vtk.vtkPolyData()
        polydata.SetPoints(points)
        polydata.SetLines(cells)
        if colours:
            scalars = numpy_to_vtk(np.array(colours, dtype=np.uint8), deep=True)
            scalars.SetName("colours")
            polydata.GetCellData().SetScalars(scalars)
        mapper = lines_actor.GetMapper()
        mapper.SetInputData(polydata)
        mapper.SetColorModeToDirectScalars()
        mapper.ScalarVisibilityOn()
        mapper.SetScalarModeToUseCellData()
        lines_actor.SetVisibility(bool(colours))
        view.schedule_render()
        if push:
            self._push_labels(view, labels)
        return labels

    def _push_labels(self, view, labels):
        name = view._logic.GetSliceNode().GetOrientation()
        shown = self.state.isodose_labels or []
        rest = [label for label in shown if label["view"] != name]
        if rest + labels != shown:
            with self.state:
                self.state.isodose_labels = rest + labels

    # ------------------------------------------------------------------ page
    def isodose_field_ui(self):
        """Above the views, with a dose shown: the isodose lines' levels (read when the field
        is left or Enter is pressed; the message beside it when refused)."""
        from trame.widgets import vuetify3 as v3
        v3.VTextField(v_model=("isodose_draft",), label="Isodose lines (Gy)",
                      placeholder=("isodose_levels.join(', ')",),
                      persistent_placeholder=True,
                      v_if=("['plan', 'verification'].includes(view_mode)",),
                      density="compact", hide_details="auto",
                      style="max-width: 190px; min-width: 150px",
                      error_messages=("isodose_error ? [isodose_error] : []",),
                      raw_attrs=['data-isodose-levels', 'autocomplete="off"',
                                 'title="Levels in Gy separated by commas, read when the '
                                 'field is left or Enter is pressed; empty: the plan\'s '
                                 'isodose levels"',
                                 '@blur="trigger(\'isodose_levels_text\', [tab_id, '
                                 'isodose_draft])"',
                                 '@keydown.enter="$event.target.blur()"'])

    def registration_ui(self):
        """In the registration panel: each position's CBCT over the CT, its opacity and a
        flicker, to see whether the registration matches."""
        from trame.widgets import html
        from trame.widgets import vuetify3 as v3
        html.Div("Registration check: a position's CBCT over the CT", classes="text-subtitle-2",
                 v_if=("positions.length && n_ctVolume",))
        with html.Div(v_for="(pos, i) in positions", key="i", v_if=("n_ctVolume",),
                      classes="d-flex align-center ga-2",
                      raw_attrs=[':data-reg-check="i"']):
            v3.VBtn("{{ pos.name || `position ${i + 1}` }}", size="small",
                    variant=("reg_check === i && view_mode === 'registration' ? 'flat' : "
                             "'outlined'",),
                    color="primary", disabled=("!pos.cbct",),
                    click="trigger('reg_check', [tab_id, i, null, null])",
                    raw_attrs=[':data-reg-show="i"'])
            v3.VSlider(model_value=("reg_opacity[String(i)] ?? 0.5",), min=0, max=1,
                       step=0.05, density="compact", hide_details=True,
                       label="CBCT opacity", disabled=("!pos.cbct",),
                       style="max-width: 260px",
                       update_modelValue="trigger('reg_check', [tab_id, i, $event, null])",
                       raw_attrs=[':data-reg-opacity="i"'])
            html.Span("{{ Number(reg_opacity[String(i)] ?? 0.5).toFixed(2) }}",
                      classes="text-caption", raw_attrs=[':data-reg-opacity-value="i"'])
            v3.VSwitch(model_value=("reg_flicker === i",), label="flicker", color="primary",
                       density="compact", hide_details=True, disabled=("!pos.cbct",),
                       update_modelValue="trigger('reg_flicker_set', [tab_id, $event ? i : "
                                         "null])",
                       raw_attrs=[':data-reg-flicker="i"'])
