"""Segment editing on the web page: trame-slicer's segment editor on the workflow's segmentation.

The page edits the segments the workflow reads (the liver, the tumours, the lungs and the
perfused territories: the segments with one of ``guided.STRUCTURE_ROLES``) with the effects of
trame-slicer's segment editor (:mod:`trame_slicer.segmentation`), which apply every change
through 3D Slicer's own segment editor logic (``vtkSlicerSegmentEditorLogic``,
``ModifySegmentByLabelmap``) and VTK / ITK image filters:

- **paint** and **erase**: a brush of a given diameter (mm), a disc in the slice view it is
  drawn in (one slice thick) or a sphere; drawn with the mouse in a slice view;
- **threshold**: the segment becomes the CT voxels within a range of HU (inclusive);
- **islands**: keep the largest island, remove the islands smaller than a number of voxels, or
  (clicking in a slice view) keep or remove the island clicked;
- **smoothing**: median, opening, closing (kernel in mm) or Gaussian (standard deviation in
  mm) of the whole segment, or with the brush where it is drawn;
- **undo** and **redo** of the last edits (trame-slicer's undo stack).

Segments overlap by design (tumours inside the liver, territories over both): every edit
changes the chosen segment only (the editor's overwrite mode "allow overlap"); the editable
area may be limited to inside one segment (e.g. a threshold inside the liver).

Nothing else is needed to mark the later steps outdated: every step of
:mod:`tareplanner.mrml.guided` records the digest of the segments it read, so an edit makes
the steps that read the edited segment outdated (the registration and the segmentation step
for the liver, the measurement for every structure, and everything after them), exactly as an
edit in 3D Slicer's Segment Editor does for the module; an undo that restores the segments
makes them current again.

This module is the page's model of the editor (no web toolkit): the page
(:mod:`.segment_editor_page`) and the tests call it.
"""

from __future__ import annotations

import math

from trame_slicer.segmentation import (
    BrushDiameterMode,
    BrushShape,
    BrushSource,
    ModificationMode,
    SegmentationEditableAreaMode,
    SegmentationEffectErase,
    SegmentationEffectIslands,
    SegmentationEffectNoTool,
    SegmentationEffectPaint,
    SegmentationEffectSmoothing,
    SegmentationEffectThreshold,
    SegmentationIslandsMode,
    SegmentationOverwriteMode,
)
from trame_slicer.segmentation.segmentation_effect_smoothing import SmoothingEffectMode
from undo_stack import UndoStack

from ..mrml import guided
from ..mrml.workflow import roles

#: the effects the page offers (trame-slicer's effect classes)
EFFECTS = {"none": SegmentationEffectNoTool, "paint": SegmentationEffectPaint,
           "erase": SegmentationEffectErase, "threshold": SegmentationEffectThreshold,
           "islands": SegmentationEffectIslands, "smoothing": SegmentationEffectSmoothing}
EFFECT_LABELS = {"none": "None (view)", "paint": "Paint", "erase": "Erase",
                 "threshold": "Threshold", "islands": "Islands", "smoothing": "Smoothing"}
#: islands: the page's words -> trame-slicer's mode (the interactive ones act on a click)
ISLAND_MODES = {"keep largest": SegmentationIslandsMode.KEEP_LARGEST_ISLAND,
                "remove small": SegmentationIslandsMode.REMOVE_SMALL_ISLANDS,
                "keep clicked": SegmentationIslandsMode.KEEP_SELECTED,
                "remove clicked": SegmentationIslandsMode.REMOVE_SELECTED}
#: smoothing methods of the whole segment (Slicer's Smoothing effect; joint smoothing, which
#: changes every visible segment at once, is not offered)
SMOOTHING_METHODS = {"median": SmoothingEffectMode.MEDIAN,
                     "opening": SmoothingEffectMode.OPENING,
                     "closing": SmoothingEffectMode.CLOSING,
                     "gaussian": SmoothingEffectMode.GAUSSIAN}
#: the form's plausibility bounds (a slip is refused before it reaches the editor)
BRUSH_MM = (1.0, 100.0)
KERNEL_MM = (0.5, 50.0)
ISLAND_VOXELS = (1, 10_000_000)
HU_RANGE = (-3000.0, 30_000.0)
#: how many edits can be undone (each keeps two copies of the segmentation)
UNDO_LIMIT = 5
#: the slice view planes a brush disc lies in: the slice normal (RAS) of Slicer's presets
PLANE_NORMALS = {"axial": (0.0, 0.0, 1.0), "coronal": (0.0, 1.0, 0.0),
                 "sagittal": (1.0, 0.0, 0.0)}


def _editable(role: str) -> bool:
    return any(role == r or (r.endswith(":") and role.startswith(r))
               for r in guided.STRUCTURE_ROLES)


def _number(field: str, value, low: float, high: float, unit: str) -> float:
    """A number within [low, high] or a ValueError naming the field, the value and what is
    allowed (the sliders send numbers; anything else is refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{field}: got {str(value)[:40]!r}; allowed: a number from {low:g} "
                         f"to {high:g}{unit}")
    return float(value)


def _choice(field: str, value, allowed) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{field}: got {str(value)[:40]!r}; allowed: " + ", ".join(allowed))
    return value


class SegmentEditing:
    """The page's segment editor: the chosen segment and effect, the brush, and the edits,
    on ``session.p.segmentation`` with ``session.p.ctVolume`` as the source volume.

    ``editor`` is trame-slicer's ``SegmentationEditor`` of the page's ``SlicerApp`` (its
    effects draw in the page's views)."""

    def __init__(self, session, editor):
        self.session = session
        self.editor = editor
        self.undo_stack = UndoStack(undo_limit=UNDO_LIMIT)
        self.editor.set_undo_stack(self.undo_stack)
        self._bound = (None, None)
        self.effect_name = "none"
        self.brush_mm = 10.0
        self.sphere = False
        self.area_segment_id = ""
        self.threshold_hu = (100.0, 3000.0)
        self.island_mode = "keep largest"
        self.island_min_voxels = 100
        self.smoothing_method = "median"
        self.kernel_mm = 3.0
        #: (text, is_error) of the last edit
        self.message: tuple[str, bool] = ("", False)

    # ------------------------------------------------------------------ binding
    def bind(self) -> bool:
        """Follow the session's segmentation and CT: the editor edits ``p.segmentation`` with
        the planning CT as its source (a new patient starts with an empty undo stack).
        Whether there is a segmentation to edit."""
        p = self.session.p
        wanted = (p.segmentation, p.ctVolume)
        if wanted[0] is None or wanted[1] is None:
            if self._bound != (None, None):
                self._bound = (None, None)
                self.effect_name = "none"
                self.undo_stack.clear()
            return False
        if self._bound[0] is not wanted[0] or self._bound[1] is not wanted[1]:
            segmentation = wanted[0]
            if segmentation.GetDisplayNode() is None:
                segmentation.CreateDefaultDisplayNodes()
            self.editor.set_active_segmentation(segmentation, wanted[1])
            # segments overlap by design: an edit changes the chosen segment only
            self.editor.set_overwrite_mode(SegmentationOverwriteMode.ALLOW_OVERLAP)
            self.editor.set_editable_area(SegmentationEditableAreaMode.EVERYWHERE)
            self.undo_stack.clear()
            self._bound = wanted
            self.effect_name = "none"
            self.area_segment_id = ""
            ids = [s["id"] for s in self.segments()]
            self.editor.set_active_segment_id(ids[0] if ids else "")
        return True

    def _need(self) -> None:
        if not self.bind():
            raise ValueError("segment editing: got no segmentation; allowed: load a patient "
                             "with its segments first (step 1)")

    # ------------------------------------------------------------------ choices
    def segments(self) -> list[dict]:
        """The segments the workflow reads, each {id, name, role, title}, in the
        segmentation's order."""
        segmentation = self.session.p.segmentation
        if segmentation is None:
            return []
        by_name = roles(segmentation)
        seg = segmentation.GetSegmentation()
        out = []
        for index in range(seg.GetNumberOfSegments()):
            segment = seg.GetNthSegment(index)
            role = by_name.get(segment.GetName(), "")
            if _editable(role):
                out.append({"id": seg.GetNthSegmentID(index), "name": segment.GetName(),
                            "role": role, "title": f"{segment.GetName()} ({role})"})
        return out

    @property
    def segment_id(self) -> str:
        return self.editor.get_active_segment_id() if self.bind() else ""

    def select(self, segment_id) -> None:
        """The segment to edit: one of :meth:`segments`."""
        self._need()
        ids = [s["id"] for s in self.segments()]
        titles = [s["title"] for s in self.segments()]
        if segment_id not in ids:
            raise ValueError(f"segment to edit: got {str(segment_id)[:40]!r}; allowed: "
                             + (", ".join(titles) or "a segment with a role (liver, tumour, "
                                "lung, territory)"))
        self.editor.set_active_segment_id(segment_id)

    def set_effect(self, name) -> None:
        """Choose an effect (paint, erase and smoothing then act where the mouse draws in a
        slice view; islands in its 'clicked' modes where it clicks)."""
        name = _choice("effect", name, EFFECTS)
        if name != "none":
            self._need()
            if not self.segment_id:
                raise ValueError("effect: got no segment to edit; allowed: choose a segment")
        effect = self.editor.set_active_effect_type(EFFECTS[name])
        self.effect_name = name
        self._configure(effect)

    def _configure(self, effect) -> None:
        """Push the page's settings into the active effect."""
        if isinstance(effect, (SegmentationEffectPaint, SegmentationEffectErase,
                               SegmentationEffectSmoothing)):
            effect.set_brush_diameter(self.brush_mm, BrushDiameterMode.Absolute)
            effect.set_use_sphere_brush(self.sphere)
        if isinstance(effect, SegmentationEffectSmoothing):
            effect.set_smoothing_mode(SMOOTHING_METHODS[self.smoothing_method])
            effect.set_kernel_size(self.kernel_mm)
            effect.set_standard_deviation(self.kernel_mm)
        if isinstance(effect, SegmentationEffectThreshold):
            # Slicer's Threshold effect sets the segment to the range (within the editable
            # area); trame-slicer's effect adds by default
            effect.set_mode(ModificationMode.Set)
            effect.set_threshold_min_max_values(self.threshold_hu)
        if isinstance(effect, SegmentationEffectIslands):
            effect.set_island_mode(ISLAND_MODES[self.island_mode])
            effect.set_minimum_island_size(int(self.island_min_voxels))

    def set_brush(self, diameter_mm=None, sphere=None) -> None:
        """The brush of paint, erase and smoothing: its diameter in mm and whether it is a
        sphere (else a disc one slice thick in the view it is drawn in)."""
        if diameter_mm is not None:
            self.brush_mm = _number("brush diameter (mm)", diameter_mm, *BRUSH_MM, " mm")
        if sphere is not None:
            if not isinstance(sphere, bool):
                raise ValueError(f"sphere brush: got {str(sphere)[:40]!r}; allowed: true or "
                                 "false")
            self.sphere = sphere
        self._configure(self.editor.active_effect)

    def set_area(self, segment_id) -> None:
        """The editable area: everywhere ('' or None) or inside one segment (any segment of
        the segmentation, e.g. the liver)."""
        self._need()
        if not segment_id:
            self.editor.set_editable_area(SegmentationEditableAreaMode.EVERYWHERE)
            self.area_segment_id = ""
            return
        seg = self.session.p.segmentation.GetSegmentation()
        names = [seg.GetNthSegment(i).GetName() for i in range(seg.GetNumberOfSegments())]
        if not isinstance(segment_id, str) or seg.GetSegment(segment_id) is None:
            raise ValueError(f"editable area: got {str(segment_id)[:40]!r}; allowed: "
                             "everywhere or inside one of " + ", ".join(names))
        self.editor.set_editable_area(SegmentationEditableAreaMode.INSIDE_SINGLE_SEGMENT)
        self.editor.set_mask_segment_id(segment_id)
        self.area_segment_id = segment_id

    def set_threshold(self, low_hu, high_hu) -> None:
        low = _number("threshold from (HU)", low_hu, *HU_RANGE, " HU")
        high = _number("threshold to (HU)", high_hu, *HU_RANGE, " HU")
        if low > high:
            raise ValueError(f"threshold: got {low:g} to {high:g} HU; allowed: a lower bound "
                             "at most the upper bound")
        self.threshold_hu = (low, high)
        self._configure(self.editor.active_effect)

    def set_islands(self, mode=None, minimum_voxels=None) -> None:
        if mode is not None:
            self.island_mode = _choice("islands", mode, ISLAND_MODES)
        if minimum_voxels is not None:
            if isinstance(minimum_voxels, float) and minimum_voxels.is_integer():
                minimum_voxels = int(minimum_voxels)
            if not isinstance(minimum_voxels, int) or isinstance(minimum_voxels, bool):
                raise ValueError(f"minimum island size (voxels): got "
                                 f"{str(minimum_voxels)[:40]!r}; allowed: a whole number")
            self.island_min_voxels = int(_number("minimum island size (voxels)",
                                                 minimum_voxels, *ISLAND_VOXELS, " voxels"))
        self._configure(self.editor.active_effect)

    def set_smoothing(self, method=None, kernel_mm=None) -> None:
        if method is not None:
            self.smoothing_method = _choice("smoothing", method, SMOOTHING_METHODS)
        if kernel_mm is not None:
            self.kernel_mm = _number("smoothing kernel (mm)", kernel_mm, *KERNEL_MM, " mm")
        self._configure(self.editor.active_effect)

    # ------------------------------------------------------------------ edits
    def _active(self, name: str):
        self._need()
        if not self.segment_id:
            raise ValueError(f"{name}: got no segment to edit; allowed: choose a segment")
        if self.effect_name != name:
            self.set_effect(name)
        return self.editor.active_effect

    def paint(self, points_ras, *, erase: bool = False, plane: str | None = "axial",
              glyph=None) -> None:
        """One brush stroke through ``points_ras`` (RAS mm), as the mouse draws it: the
        current brush, a disc in ``plane`` ('axial', 'coronal', 'sagittal') one slice thick,
        or a sphere when the brush is a sphere (or ``plane`` is None). ``glyph`` replaces
        the brush by another closed surface (vtkPolyData, centred on each point)."""
        import vtk
        effect = self._active("erase" if erase else "paint")
        points = vtk.vtkPoints()
        for point in points_ras:
            points.InsertNextPoint(*[float(c) for c in point])
        if points.GetNumberOfPoints() == 0:
            raise ValueError("brush stroke: got no point; allowed: one or more RAS points")
        effect.paint_glyph_at_world_coordinates(glyph if glyph is not None else
                                                self.brush_glyph(plane), points)

    def brush_glyph(self, plane: str | None = "axial"):
        """The brush as trame-slicer's slice-view widget builds it: a sphere of the brush's
        diameter, or a disc (cylinder) whose axis is the slice normal and whose height is
        half the CT's spacing along it (one voxel layer)."""
        import vtk
        ct = self.session.p.ctVolume
        if self.sphere or plane is None:
            brush = BrushSource(BrushShape.Sphere, diameter=self.brush_mm)
        else:
            normal = PLANE_NORMALS[_choice("plane", plane, PLANE_NORMALS)]
            axis = max(range(3), key=lambda a: abs(normal[a]))
            step = abs(ct.GetSpacing()[axis]) if ct is not None else 1.0
            brush = BrushSource(BrushShape.Cylinder, diameter=self.brush_mm,
                                cylinder_height=step / 2.0)
            # the slice-to-RAS rotation of the view: its third column is the slice normal
            u = [1.0, 0.0, 0.0] if axis != 0 else [0.0, 1.0, 0.0]
            v = [0.0, 0.0, 0.0]
            vtk.vtkMath.Cross(normal, u, v)
            vtk.vtkMath.Cross(v, normal, u)
            matrix = vtk.vtkMatrix4x4()
            for row in range(3):
                matrix.SetElement(row, 0, u[row])
                matrix.SetElement(row, 1, v[row])
                matrix.SetElement(row, 2, normal[row])
            brush.set_brush_rotation(matrix)
        producer = brush.get_untransformed_output_port().GetProducer()
        producer.Update()
        return producer.GetOutput()

    def threshold(self, low_hu=None, high_hu=None) -> None:
        """The chosen segment becomes the CT voxels from ``low_hu`` to ``high_hu`` (inclusive)
        within the editable area."""
        if low_hu is not None or high_hu is not None:
            self.set_threshold(self.threshold_hu[0] if low_hu is None else low_hu,
                               self.threshold_hu[1] if high_hu is None else high_hu)
        effect = self._active("threshold")
        self._configure(effect)
        effect.apply()

    def islands(self, mode=None, minimum_voxels=None) -> None:
        """Keep the largest island or remove the islands smaller than the minimum (6-connected
        voxels); the 'clicked' modes act where a slice view is clicked (:meth:`island_at`)."""
        self.set_islands(mode, minimum_voxels)
        effect = self._active("islands")
        self._configure(effect)
        if self.island_mode == "keep largest":
            effect.keep_largest_island()
        elif self.island_mode == "remove small":
            effect.remove_small_islands(self.island_min_voxels)
        else:
            raise ValueError(f"islands: got {self.island_mode!r} (it acts where a slice view is "
                             "clicked); allowed to apply: keep largest, remove small")

    def island_at(self, point_ras, mode: str = "remove clicked") -> None:
        """Keep or remove the island of the chosen segment at ``point_ras`` (as a click)."""
        self.set_islands(mode)
        effect = self._active("islands")
        self._configure(effect)
        effect.select_island_at_position(tuple(float(c) for c in point_ras))

    def smooth(self, method=None, kernel_mm=None) -> None:
        """Smooth the whole chosen segment (median, opening, closing with a kernel of
        ``kernel_mm``; Gaussian with that standard deviation)."""
        self.set_smoothing(method, kernel_mm)
        effect = self._active("smoothing")
        self._configure(effect)
        effect.apply_smoothing()

    def undo(self) -> None:
        if not self.undo_stack.can_undo():
            raise ValueError("undo: got nothing to undo; allowed: after an edit")
        self.undo_stack.undo()

    def redo(self) -> None:
        if not self.undo_stack.can_redo():
            raise ValueError("redo: got nothing to redo; allowed: after an undo")
        self.undo_stack.redo()

    # ------------------------------------------------------------------ what the page shows
    def voxel_count(self, segment_id: str | None = None) -> int:
        """Voxels of a segment (the chosen one by default) on the CT's grid."""
        segment_id = segment_id or self.segment_id
        if not segment_id:
            return 0
        array = self.editor.get_segment_labelmap(segment_id, as_numpy_array=True)
        return int((array > 0).sum())

    def summary(self) -> str:
        """The chosen segment, its volume, and the steps an edit has made outdated."""
        if not self.bind() or not self.segment_id:
            return ""
        ct = self.session.p.ctVolume
        sx, sy, sz = ct.GetSpacing()
        voxels = self.voxel_count()
        name = self.session.p.segmentation.GetSegmentation().GetSegment(
            self.segment_id).GetName()
        text = f"{name}: {voxels} voxels, {voxels * sx * sy * sz / 1000.0:.1f} mL"
        outdated = [step for step, status in guided.statuses(self.session.p).items()
                    if status.state == guided.step_log.OUTDATED]
        if outdated:
            text += "; outdated: " + ", ".join(outdated) + " (run them again)"
        return text

    def run(self, what: str, **options) -> tuple[bool, str]:
        """One edit or setting from the page, by name; (ok, text). A refused one gives (False,
        its message) and changes nothing."""
        actions = {"select": lambda: self.select(options.get("value")),
                   "effect": lambda: self.set_effect(options.get("value")),
                   "brush": lambda: self.set_brush(options.get("diameter_mm"),
                                                   options.get("sphere")),
                   "area": lambda: self.set_area(options.get("value")),
                   "threshold range": lambda: self.set_threshold(*_pair(options.get("value"))),
                   "threshold": lambda: self.threshold(),
                   "islands mode": lambda: self.set_islands(mode=options.get("value")),
                   "islands minimum": lambda: self.set_islands(
                       minimum_voxels=options.get("value")),
                   "islands": lambda: self.islands(),
                   "smoothing method": lambda: self.set_smoothing(method=options.get("value")),
                   "smoothing kernel": lambda: self.set_smoothing(
                       kernel_mm=options.get("value")),
                   "smooth": lambda: self.smooth(),
                   "undo": self.undo, "redo": self.redo}
        try:
            _choice("segment editor action", what, actions)
            actions[what]()
        except ValueError as error:
            self.message = (str(error), True)
            return False, str(error)
        text = self.summary() if what in EDITS else ""
        if what in EDITS:
            self.message = (text, False)
        return True, text


#: the actions of :meth:`SegmentEditing.run` that change the segments
EDITS = ("threshold", "islands", "smooth", "undo", "redo")


def _pair(value) -> tuple:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"threshold range: got {str(value)[:40]!r}; allowed: two numbers "
                         "(from, to) in HU")
    return tuple(value)
