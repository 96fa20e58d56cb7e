"""``tareplanner serve``: the guided workflow in a web page (trame + trame-slicer).

The page is a thin view of :class:`.session.Session` (one parameter object, one MRML scene:
trame-slicer's): the eight panels of ``guided.PANELS`` with the titles and button states the
session computes, the slice views (axial, coronal, sagittal) and a 3D view of the scene, the
plan table, the warnings, the DVH and the files the Save step wrote. Every button runs one
guided function through :meth:`.session.Session.run` and shows its text (or its error).

Downloads are served by one route, ``/files/<name>``, that resolves the name with
:func:`.files.resolve_inside` and refuses anything outside the data folder.

One user session per process: every browser connected to the server sees and changes the
same patient.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import sys
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from trame.app import get_server
from trame.ui.vuetify3 import VAppLayout
from trame.widgets import client, html
from trame.widgets import vuetify3 as v3
from trame_rca.encoders import RcaImageEncoder
from trame_slicer.core import LayoutManager, SlicerApp
from trame_slicer.rca_view import register_rca_factories
from trame_slicer.views import Layout, LayoutDirection, ViewLayoutDefinition

from ..mrml import guided
from ..mrml.workflow import roles
from ..physics.solver import GOAL_KINDS
from .files import OutsideDataFolderError, content_type, resolve_inside
from . import dicom_panel, forms
from .segment_editor_page import SegmentEditorPage
from .report_worker import ReportWorker
from .viewer_controls import ViewerControls
from .session import (ACTION_PANEL, LABEL_MAPS, LOAD_FOLDER, NODE_FIELDS, SYNTHETIC_POSITIONS,
                      VALUE_FIELDS, Session)

log = logging.getLogger(__name__)

#: the page's expression for "this tab follows another read-only"
READ_ONLY = "owner_tab !== tab_id"
#: a tab that follows the owning one read-only (its shared controls are disabled)
FOLLOWER = f"!!owner_tab && {READ_ONLY}"
#: page state that every tab's fields write (the views' mode, presets, dose wash and opacity;
#: the data step's choices): taken from the owning tab only, a follower's change is put back
SHARED_FIELDS = ("view_mode", "ct_preset", "dose_from_gy", "fusion_opacity",
                 "synthetic_positions", "folder", "liver_labels", "tumour_labels")

PRODUCTS = ("therasphere", "sir-spheres", "quiremspheres")
METHODS = ("partition", "single-compartment", "bsa")
#: what the slice views show over the CT
VIEW_MODES = [{"title": "CT", "value": "ct"}, {"title": "CT + MAA SPECT", "value": "spect"},
              {"title": "CT + planned dose", "value": "plan"},
              {"title": "CT + post-treatment image", "value": "post"},
              {"title": "CT + delivered dose", "value": "verification"},
              {"title": "CT + a position's CBCT (registration check)", "value": "registration"}]
#: outline colours by segment role, and one per territory (display only)
ROLE_COLOURS = {"liver": (0.95, 0.55, 0.15), "tumour": (1.0, 0.1, 0.1),
                "lung": (0.45, 0.75, 1.0)}
TERRITORY_COLOURS = ((0.2, 0.85, 0.3), (0.9, 0.3, 0.9), (1.0, 0.9, 0.2), (0.2, 0.9, 0.9))
#: CT window/level presets (window, level) in HU: Slicer's CT-Abdomen and CT-Lung volume
#: display presets, and the liver window of Radiopaedia's "Windowing (CT)" article
CT_PRESETS = {"abdomen": (350.0, 40.0), "liver": (150.0, 30.0), "lung": (1400.0, -500.0)}
#: slice view orientation -> (view name, letters at the top, bottom, left, right edge; the
#: axis of the slice position with its positive and negative letter). Radiological
#: convention: the patient's right on the left of the screen.
VIEW_TEXT = {"Axial": ("Axial", "A", "P", "R", "L", ("S", "I")),
             "Coronal": ("Coronal", "S", "I", "R", "L", ("A", "P")),
             "Sagittal": ("Sagittal", "S", "I", "A", "P", ("R", "L"))}
#: what the colour bar of each fused image says (title with its unit)
LEGEND_TITLES = {"plan": "Planned dose (Gy)", "verification": "Delivered dose (Gy)"}
BUTTON_LABELS = {"load": "Load the synthetic patient", "registration": "Register the CBCTs",
                 "lungs": "Lungs from the CT", "territories": "Territories from the CBCTs",
                 "check segments": "Check the segments", "measurement": "Measure LSF and TNR",
                 "plan": "Plan", "directive": "Write the directive from the plan",
                 "administration": "Record the administration",
                 "verification": "Delivered dose and comparison", "save": "Save"}


def _quad_layout() -> Layout:
    return Layout(LayoutDirection.Horizontal, [
        Layout(LayoutDirection.Vertical, [ViewLayoutDefinition.axial_view(),
                                          ViewLayoutDefinition.coronal_view()]),
        Layout(LayoutDirection.Vertical, [ViewLayoutDefinition.sagittal_view(),
                                          ViewLayoutDefinition.threed_view()])])


def response_png(plan_record: dict | None) -> str:
    """The plan's dose-response curves (tumour response, liver toxicity) with the planned
    doses marked, as a PNG data URI; "" when the plan names no dose-response fit."""
    part = (plan_record or {}).get("dose_response")
    if not part or not part.get("fit"):
        return ""
    import base64
    import io

    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from ..records.response_report import plan_response_axes
    figure = Figure(figsize=(8.0, 2.9), dpi=100)
    tumour_ax, liver_ax = figure.subplots(1, 2)
    plan_response_axes(tumour_ax, liver_ax, part)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def dvh_png(reports: dict[str, dict]) -> str:
    """The cumulative DVH of each dose run (label -> dose report) as a PNG data URI."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    figure = Figure(figsize=(8.0, 2.9), dpi=100)
    axes = figure.add_subplot()
    styles = {"planned": "-", "delivered": "--"}
    colours = {}
    for label, report in reports.items():
        for name, row in report.items():
            dvh = row.get("dvh")
            if not dvh:
                continue
            line, = axes.plot(dvh["dose_gy"], dvh["volume_percent"], styles.get(label, "-"),
                              color=colours.get(name),
                              label=f"{name} ({label})")
            colours.setdefault(name, line.get_color())
    axes.set_xlabel("Dose (Gy)")
    axes.set_ylabel("Volume (%)")
    axes.set_ylim(0, 100)
    axes.set_xlim(left=0)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _voxels(node):
    """The voxel values of a volume node (flat; for ranges and percentiles)."""
    from vtkmodules.util.numpy_support import vtk_to_numpy
    return vtk_to_numpy(node.GetImageData().GetPointData().GetScalars())


def _value_at(node, ras) -> float | None:
    """The voxel value of a volume node at a RAS point (nearest voxel; its parent
    transform applied), or None outside it."""
    import numpy as np
    import vtk
    if node is None or node.GetImageData() is None:
        return None
    point = np.array([ras[0], ras[1], ras[2], 1.0])
    transform = node.GetParentTransformNode()
    if transform is not None:
        to_local = vtk.vtkGeneralTransform()
        transform.GetTransformFromWorld(to_local)
        point[:3] = to_local.TransformPoint(point[:3])
    ras_to_ijk = vtk.vtkMatrix4x4()
    node.GetRASToIJKMatrix(ras_to_ijk)
    ijk = np.rint(ras_to_ijk.MultiplyPoint(point)[:3]).astype(int)
    extent = node.GetImageData().GetExtent()
    if any(not extent[2 * a] <= ijk[a] <= extent[2 * a + 1] for a in range(3)):
        return None
    return float(node.GetImageData().GetScalarComponentAsDouble(*ijk, 0))


def _gradient_css(colour_node) -> str:
    """The colours of a colour node (table or procedural) as a CSS gradient, low to high."""
    if colour_node is None:
        return ""
    lookup = colour_node.GetLookupTable() if hasattr(colour_node, "GetLookupTable") else None
    if lookup is None and hasattr(colour_node, "GetColorTransferFunction"):
        lookup = colour_node.GetColorTransferFunction()
    if lookup is None:
        return ""
    low, high = lookup.GetRange()
    stops = []
    for i in range(9):
        rgb = [0.0, 0.0, 0.0]
        lookup.GetColor(low + (high - low) * i / 8.0, rgb)
        stops.append("rgb(%d,%d,%d)" % tuple(int(255 * c) for c in rgb))
    return "background: linear-gradient(to right, " + ", ".join(stops) + ")"


class WebApp:
    """The trame server, the Slicer scene and views, the session and the page."""

    def __init__(self, data_dir: str | Path, server=None):
        self.server = server or get_server(client_type="vue3")
        self.state, self.ctrl = self.server.state, self.server.controller
        self.slicer_app = SlicerApp()
        self.session = Session(self.slicer_app.scene, data_dir)
        self.reports = ReportWorker()       # the Save's PDF, drawn while the page answers
        self._report_tasks = set()
        self.session.report_writer = self.reports
        register_rca_factories(self.slicer_app.view_manager, self.server,
                               rca_encoder=RcaImageEncoder.JPEG)
        self.layout_manager = LayoutManager(self.slicer_app.scene,
                                            self.slicer_app.view_manager, self.server)
        self.layout_manager.register_layout("quad", _quad_layout())
        self.layout_manager.set_layout("quad")
        for view in self.slicer_app.view_manager.get_threed_views():
            # depth peeling with multisampling draws nothing translucent on Mesa's
            # off-screen (EGL) contexts: plain alpha blending instead
            view.renderer().SetUseDepthPeeling(False)
            view.renderer().SetUseDepthPeelingForVolumes(False)
        self._tab_clients, self._client_tabs = {}, {}
        self._view_heads, self._view_values, self._view_corner = {}, {}, {}
        self._guard_view_events()
        self._init_state()
        self.segment_editor = SegmentEditorPage(self)
        dicom_panel.install(self)
        self._annotate_views()
        self.viewer = ViewerControls(self, CT_PRESETS)
        self._build_ui()
        self.ctrl.on_server_bind.add(self._bind_routes)
        self.refresh()

    # ------------------------------------------------------------------ state
    def _init_state(self):
        s = self.state
        s.trame__title = "TAREPlanner"
        s.busy = ""
        s.updates = 0
        s.edit_error = ""
        s.view_mode = "ct"
        s.open_panels = [key for key, _, _ in guided.PANELS]
        s.folder = None
        s.liver_labels = None
        s.synthetic_positions = 2
        s.tumour_labels = None
        s.result_tab = "plan"
        s.fv, s.fe = {}, {}
        s.dose_from_gy, s.fusion_opacity, s.ct_preset = 20, 0.5, None
        s.segments, s.cursor, s.legend, s.legend_gradient = [], "", None, ""
        s.ct_window = ""
        self._shared_handlers = {
            "dose_from_gy": lambda _: self.show(self.state.view_mode),
            "fusion_opacity": lambda _: self.show(self.state.view_mode),
            "ct_preset": self._ct_preset,
            "view_mode": self.show}
        s.owner_tab = None
        s.confirm_new = False
        # the typed field's text lives in the browser until the field is left: the server's
        # updates never replace what is being typed (client-only state)
        s.draft, s.focus_key, s.sent_key, s.sent_text, s.tab_id = "", None, None, "", ""
        s.client_only("draft", "focus_key", "sent_key", "sent_text", "tab_id", "confirm_new",
                      "shown_steps")
        s.shown_steps = 1
        for name in VALUE_FIELDS:
            s[f"f_{name}"] = None
        for name in NODE_FIELDS:
            s[f"n_{name}"] = None
        self._accepted = {key: s[key] for key in SHARED_FIELDS}
        for key in SHARED_FIELDS:
            s.change(key)(partial(self._shared_changed, key))
        s.site_limits = None
        s.response_fit = None
        s.camera_files = {}
        for name, method in (("claim", self.claim), ("take_over", self.take_over),
                             ("commit", self.commit), ("edit", self.edit),
                             ("run", self.run), ("new_patient", self.new_patient),
                             ("add_position", self.add_position),
                             ("segment_visible", self.segment_visible),
                             ("remove_position", self.remove_position)):
            self.ctrl.trigger(name)(method)

    # ------------------------------------------------------------------ the owning tab
    owner = None
    #: the web server (wslink), known once it is bound: it names the connection each
    #: request comes from
    _web_app = None

    def _client(self):
        """The connection the request being handled came from (None outside a server)."""
        return getattr(self._web_app, "last_active_client_id", None)

    def _owns(self, tab) -> bool:
        """Whether ``tab`` (the id each page makes when it opens) may change the patient:
        the first tab to open (or to act) owns the session; every other tab follows it
        read-only until it takes over (and the owning tab is then told it is read-only).
        A tab id belongs to the connection that used it first: another connection that
        sends it (the owner's id is in every tab's state) is refused."""
        if not isinstance(tab, str) or not tab:
            return False
        client = self._client()
        if client is not None:
            if self._tab_clients.setdefault(tab, client) != client:
                log.warning("a request with another connection's tab id was refused")
                return False
            self._client_tabs[client] = tab
        if self.owner is None:
            self.owner = tab
            self.state.owner_tab = tab
        return tab == self.owner

    def _view_events_allowed(self) -> bool:
        """Whether the mouse and key events reaching the slice and 3D views now come from
        the owning tab. The views are shared: a stroke from a tab that follows read-only
        would paint the owner's segment with the owner's brush (or move its slices and
        window), so its events are dropped here, whatever its page sends."""
        client = self._client()
        if client is None:              # no web server (the page's model driven in-process)
            return True
        return self.owner is not None and self._client_tabs.get(client) == self.owner

    def _from_follower(self) -> bool:
        """Whether the request being handled comes from a tab other than the owning one
        (False outside a web server, and while no tab owns the session)."""
        return self.owner is not None and not self._view_events_allowed()

    def _shared_changed(self, key, **values):
        """A change of one of the SHARED_FIELDS: a follower's is put back to the owner's
        value (the page's control shows it again) and changes nothing; the owner's (or the
        server's) is kept and shown."""
        value = values.get(key)
        if self._from_follower():
            if value != self._accepted[key]:
                log.warning("a read-only tab's change of %s was put back", key)
                self.state[key] = self._accepted[key]
            return
        self._accepted[key] = value
        handler = self._shared_handlers.get(key)
        if handler is not None:
            handler(value)

    def _guard_view_events(self):
        """Every view's interaction handler passes only the owning tab's events."""
        for factory in getattr(self.slicer_app.view_manager, "_factories", []):
            for view in getattr(factory, "_views", {}).values():
                adapter = getattr(view, "view_adapter", None)
                if adapter is None or getattr(adapter, "_owner_only", False):
                    continue
                handle = adapter.on_interaction

                def guarded(origin, event, handle=handle):
                    if self._view_events_allowed():
                        handle(origin, event)
                adapter.on_interaction = guarded
                adapter._owner_only = True

    def claim(self, tab=None):
        self._owns(tab)
        self.refresh()

    def take_over(self, tab=None):
        client = self._client()
        if isinstance(tab, str) and tab and (
                client is None or self._tab_clients.setdefault(tab, client) == client):
            self.owner = tab
            if client is not None:
                self._client_tabs[client] = tab
        self.segment_editor.release()
        self.refresh(owner_tab=self.owner)

    # ------------------------------------------------------------------ edits
    def commit(self, tab=None, key=None, text=None):
        """A typed field was left (or Enter pressed): its text, read once."""
        if not self._owns(tab):
            return
        try:
            self.session.set_text(str(key), text)
        except ValueError:
            pass                          # shown beside the field (session.invalid)
        self.refresh()

    def edit(self, tab=None, key=None, value=None):
        """A choice, a tick box or a node: 'v:name', 'n:name', 'p:index:field',
        'site_limits'."""
        if not self._owns(tab):
            return
        key = str(key)
        nodes_changed = key.startswith("n:")

        def change():
            kind, _, name = key.partition(":")
            if kind == "v" and name in VALUE_FIELDS:
                self.session.set_value(name, value)
            elif kind == "n":
                self.session.set_node(name, value)
            elif kind == "p" and name.count(":") == 1:
                index, field = name.split(":")
                if not index.isdigit():
                    raise ValueError(f"position: got {index[:20]!r}; allowed: a row number")
                self.session.set_position_field(int(index), field, value)
            elif key == "site_limits":
                self.session.set_site_limits(value)
            elif key == "response_fit":
                self.session.set_response_fit(value)
            elif kind == "camera":
                self.session.set_camera_file(name, value)
            else:
                raise ValueError(f"field: got {key[:40]!r}; allowed: a field of the page")
        self._edit(change)
        if nodes_changed:
            self._show_segments()
            self.show(self.state.view_mode)     # the views follow the chosen CT and images

    def _edit(self, change):
        try:
            change()
            self.state.edit_error = ""
        except ValueError as error:
            self.state.edit_error = str(error)
        self.refresh()

    _refreshing = False

    def refresh(self, **extra):
        """Push what the session shows now into the page's state (with ``extra`` state
        values in the same update)."""
        session, s = self.session, self.state
        self._refreshing = True
        try:
            with s:
                s.update(extra)
                s.updates = (s.updates or 0) + 1
                s.titles = session.panel_titles()
                s.missing = session.missing()
                s.messages = {k: {"text": t, "error": e} for k, (t, e) in session.messages.items()}
                s.choices = session.node_choices()
                s.volumes = session.volumes()
                s.positions = session.position_rows()
                s.folders = session.folders()
                s.outputs = session.outputs()
                s.report_name = session.report_name()
                s.fv = session.field_texts()
                s.fe = session.field_errors()
                s.owner_tab = self.owner
                s.segments = self._segment_rows()
                s.plan_rows = session.plan_rows()
                s.plan_totals = session.plan_totals()
                s.goal_suggestions = guided.goal_suggestions(session.p)
                s.warnings = session.warnings()
                s.json_files = session.json_files()
                s.site_limits = session.site_limits_name()
                s.response_fit = session.response_fit_name()
                s.camera_files = session.camera_file_names()
                s.update(self.segment_editor.state())
                s.update(dicom_panel.page_state(self))
                for name, value in session.field_values().items():
                    s[f"{'n' if name in NODE_FIELDS else 'f'}_{name}"] = value
        finally:
            self._refreshing = False

    # ------------------------------------------------------------------ actions
    async def run(self, tab=None, action=None):
        if self.state.busy or not self._owns(tab) or action not in ACTION_PANEL:
            return
        with self.state:
            self.state.busy = action
        await asyncio.sleep(0.05)   # let the page show the busy state before the step runs
        try:
            ok, _ = self.session.run(action, folder=self.state.folder or "",
                                     positions=self.state.synthetic_positions,
                                     liver=self.state.liver_labels,
                                     tumours=self.state.tumour_labels)
            if ok:
                self._after(action)
                if action == "save":
                    self._report_pending()
        finally:
            self.refresh(busy="")
        if action == "plan" and not self._reports_warm:
            # a Save is possible from now on: the report worker starts and makes its imports
            # (2-3 CPU-s) while the plan is read, not while an earlier step runs
            self._reports_warm = True
            self.reports.warm()

    _reports_warm = False
    _report_tasks: set = set()
    #: the Save panel's line while the worker draws the report
    REPORT_PENDING = "report.pdf: being drawn; its link appears when it is written"

    def _report_pending(self):
        """After a Save: the panel says the report is being drawn; when the worker has
        written it (or failed to), the panel says so and the page gets its link."""
        future = self.reports.take()
        if future is None:
            return
        folder = self.session.saved_folder
        text, error = self.session.messages.get("save", ("", False))
        # the report is not written yet: its line of the list gives way to the pending one
        lines = [line for line in text.splitlines() if not line.endswith("/report.pdf")]
        self.session.messages["save"] = ("\n".join(lines + [self.REPORT_PENDING]), error)

        async def done():
            try:
                await asyncio.wrap_future(future)
                line, failed = f"report.pdf: written ({folder}/report.pdf)", False
            except Exception as exc:  # noqa: BLE001 - said in the Save panel
                log.warning("report of %s not written: %s: %s", folder,
                            type(exc).__name__, exc)
                line, failed = (f"report.pdf NOT written: {type(exc).__name__}: "
                                f"{str(exc)[:300]} (the records of {folder} are saved; "
                                "Save again for the report)"), True
            text, error = self.session.messages.get("save", ("", False))
            if self.session.saved_folder == folder and self.REPORT_PENDING in text:
                self.session.messages["save"] = (text.replace(self.REPORT_PENDING, line),
                                                 error or failed)
            self.refresh()
        # the loop keeps only a weak reference to a task: this one is kept until it ends
        task = asyncio.ensure_future(done())
        self._report_tasks.add(task)
        task.add_done_callback(self._report_tasks.discard)

    def add_position(self, tab=None):
        if self._owns(tab):
            self._edit(self.session.add_position)

    def new_patient(self, tab=None):
        """Everything cleared (after the page asked to confirm): the scene, the fields, the
        messages, the plan table, the DVH and the download list; saved files stay."""
        if self.state.busy or not self._owns(tab):
            return
        self._edit(self.session.new_patient)
        self.state.dvh = ""
        self.state.response_curves = ""
        self.state.view_mode = "ct"
        self.slicer_app.display_manager.show_volume_in_slice_background(None)
        self.slicer_app.display_manager.show_volume_in_slice_foreground(None)

    def remove_position(self, tab=None, index=None):
        if self._owns(tab):
            self._edit(lambda: self.session.remove_position(index))

    def _after(self, action):
        """What the views show after an action (display only)."""
        scene = self.slicer_app.scene
        if action in ("load", LOAD_FOLDER, LABEL_MAPS):
            for node in self._volume_nodes():
                if node.GetDisplayNode() is None:
                    node.CreateDefaultDisplayNodes()
            self._show_segments()
            self.viewer.after_load()
            self.state.view_mode = "ct"
            self.show("ct", reset=True)
            self._update_dvh()
        elif action in ("lungs", "territories"):
            self._show_segments()
            self.show(self.state.view_mode)
        elif action == "plan":
            self._show_models()
            self.state.view_mode = "plan" if guided.dose_volume_node(scene, "plan") else "ct"
            self.show(self.state.view_mode)
            self._update_dvh()
        elif action == "verification":
            self.state.view_mode = "verification"
            self.show("verification")
            self._update_dvh()
        elif action == "registration":
            self.show(self.state.view_mode)

    def _volume_nodes(self):
        nodes = self.slicer_app.scene.GetNodesByClass("vtkMRMLScalarVolumeNode")
        return [nodes.GetItemAsObject(i) for i in range(nodes.GetNumberOfItems())]

    def _show_segments(self):
        segmentation = self.session.p.segmentation
        if segmentation is None:
            return
        if segmentation.GetDisplayNode() is None:
            segmentation.CreateDefaultDisplayNodes()
        display = segmentation.GetDisplayNode()
        display.SetVisibility2DFill(False)
        display.SetVisibility2DOutline(True)
        display.SetSliceIntersectionThickness(2)
        segmentation.CreateClosedSurfaceRepresentation()
        display.SetOpacity3D(0.45)
        segments = segmentation.GetSegmentation()
        territory = 0
        for name, role in roles(segmentation).items():
            segment_id = segments.GetSegmentIdBySegmentName(name)
            # the lungs would hide the liver in the 3D view (they stay outlined in 2D)
            display.SetSegmentVisibility3D(segment_id, role != "lung")
            if role.startswith("territory:"):
                colour = TERRITORY_COLOURS[territory % len(TERRITORY_COLOURS)]
                territory += 1
            else:
                colour = ROLE_COLOURS.get(role)
            if colour:   # a display colour (the segment's own colour is left as it is)
                display.SetSegmentOverrideColor(segment_id, *colour)

    def _show_models(self):
        nodes = self.slicer_app.scene.GetNodesByClass("vtkMRMLModelNode")
        for i in range(nodes.GetNumberOfItems()):
            model = nodes.GetItemAsObject(i)
            if model.GetAttribute(guided.STEP_TAG) and model.GetDisplayNode() is not None:
                display = model.GetDisplayNode()
                # one colour per surface; without a colour table of the scene the views
                # would build an empty lookup table for it ("Bad table range: [0, -1]")
                display.SetScalarVisibility(False)
                if self.slicer_app.scene.GetNodeByID(display.GetColorNodeID() or "") is None:
                    display.SetAndObserveColorNodeID("vtkMRMLColorTableNodeGrey")
                display.SetVisibility(True)
                # the slice views draw isodose lines with their labels (viewer_controls)
                display.SetVisibility2D(False)

    def show(self, mode: str, reset: bool = False):
        """Slice views: the CT with the chosen image fused over it."""
        p, scene = self.session.p, self.slicer_app.scene
        display = self.slicer_app.display_manager
        if p.ctVolume is None or self.viewer.show(mode):
            return
        over = {"spect": p.spectVolume, "post": p.postTreatmentVolume,
                "plan": guided.dose_volume_node(scene, "plan"),
                "verification": guided.dose_volume_node(scene, "verification")}.get(mode)
        display.show_volume_in_slice_background(p.ctVolume)
        display.show_volume_in_slice_foreground(over)
        if over is not None:
            if over.GetDisplayNode() is None:
                over.CreateDefaultDisplayNodes()
            shown = over.GetDisplayNode()
            if mode in ("spect", "post"):
                import numpy as np
                shown.SetAndObserveColorNodeID("vtkMRMLPETProceduralColorNodePET-Heat")
                counts = _voxels(over)
                # the window up to the 99.9th percentile: the liver does not saturate
                top = float(np.percentile(counts[counts > 0], 99.9)) if (counts > 0).any() \
                    else 1.0
                shown.SetAutoWindowLevel(False)
                shown.SetWindowLevelMinMax(0.0, max(top, 1.0))
                shown.SetApplyThreshold(True)     # no colour where there is no uptake
                shown.SetLowerThreshold(min(1.0, top / 100.0))
            else:
                self._dose_wash(over, shown)
            for view in self.slicer_app.view_manager.get_slice_views():
                view.set_foreground_opacity(float(self.state.fusion_opacity or 0.5))
        self._legend(mode, over)
        if reset:
            display.reset_views()
        self.viewer.update_isodose()
        for view in self.slicer_app.view_manager.get_views():
            view.schedule_render()

    def _dose_wash(self, node, shown):
        """A dose volume as a continuous colour wash from the page's lower threshold (so
        that normal liver at 50-90 Gy shows) to the 99.5th percentile of the dose; the
        isodose lines of the slice views (viewer_controls) draw the levels."""
        import numpy as np
        dose = _voxels(node)
        # the delivered dose on the planned dose's scale, so that the two compare
        reference = guided.dose_volume_node(self.slicer_app.scene, "plan") or node
        scale = _voxels(reference)
        positive = scale[scale > 0]
        top = float(np.percentile(positive, 99.5)) if positive.size else 1.0
        low = max(float(self.state.dose_from_gy or 0.0), 0.0)
        shown.SetAndObserveColorNodeID(self._wash_colours().GetID())
        shown.SetAutoWindowLevel(False)
        shown.SetWindowLevelMinMax(low, max(top, low + 1.0))
        shown.SetAutoThreshold(False)
        shown.SetApplyThreshold(True)
        shown.SetLowerThreshold(max(low, 1e-3))
        shown.SetUpperThreshold(float(dose.max()) + 1.0)

    _wash = None

    def _wash_colours(self):
        """The dose wash's colour table, blue (low) through green and yellow to red (high),
        filled before it enters the scene (an empty table in the scene makes the views
        build an empty lookup table)."""
        scene = self.slicer_app.scene
        if self._wash is not None and scene.GetNodeByID(self._wash.GetID()) is self._wash:
            return self._wash
        import vtk
        lookup = vtk.vtkLookupTable()
        lookup.SetHueRange(0.667, 0.0)
        lookup.SetNumberOfTableValues(256)
        lookup.Build()
        table = scene.CreateNodeByClass("vtkMRMLColorTableNode")
        table.SetName("TAREPlanner dose wash")
        table.SetTypeToUser()
        table.SetNumberOfColors(256)
        for i in range(256):
            r, g, b, _ = lookup.GetTableValue(i)
            table.SetColor(i, f"{i}", r, g, b, 1.0)
        table.SetHideFromEditors(True)
        self._wash = scene.AddNode(table)
        return self._wash

    def _legend(self, mode: str, over) -> None:
        """The colour bar of the fused image (its title with the unit, its range) in the
        slice views and in the page."""
        scene = self.slicer_app.scene
        legends = scene.GetNodesByClass("vtkMRMLColorLegendDisplayNode")
        for i in range(legends.GetNumberOfItems()):
            legends.GetItemAsObject(i).SetVisibility(False)
        if over is None or over.GetDisplayNode() is None:
            self.state.legend = None
            return
        from ..mrml import attributes
        units = over.GetAttribute(attributes.UNITS) or ""
        title = LEGEND_TITLES.get(mode) or (
            ("Post-treatment" if mode == "post" else "MAA SPECT")
            + (f" ({units})" if units else ""))
        display = over.GetDisplayNode()
        legend = guided.colour_legend_node(scene, over)
        legend.SetTitleText(title.rsplit("(", 1)[-1].rstrip(")") if "(" in title else title)
        legend.SetLabelFormat("%.0f")
        legend.SetSize(0.08, 0.45)
        legend.SetVisibility(True)
        low, high = display.GetWindowLevelMin(), display.GetWindowLevelMax()
        self.state.legend_gradient = _gradient_css(display.GetColorNode())
        self.state.legend = {"title": title, "low": f"{low:.0f}", "high": f"{high:.0f}",
                             "threshold": f"{display.GetLowerThreshold():.0f}"
                             if display.GetApplyThreshold() else None}

    def _ct_preset(self, name):
        ct = self.session.p.ctVolume
        if name not in CT_PRESETS or ct is None:
            return
        if ct.GetDisplayNode() is None:
            ct.CreateDefaultDisplayNodes()
        window, level = CT_PRESETS[name]
        display = ct.GetDisplayNode()
        display.SetAutoWindowLevel(False)
        display.SetWindowLevel(window, level)
        self.state.ct_window = f"W {window:g} L {level:g} HU"
        for view in self.slicer_app.view_manager.get_views():
            view.schedule_render()

    # ------------------------------------------------------------------ view texts
    def _annotate_views(self):
        """Each slice view names itself, gives its slice position in mm and its orientation
        letters, and the values under the cursor (the page's line above the views gives
        them with the position)."""
        from vtkmodules.vtkRenderingAnnotation import vtkCornerAnnotation
        self._annotations = []
        for view in self.slicer_app.view_manager.get_slice_views():
            # the edges' letters, and the upper right corner's text on a half-transparent
            # background (readable over bone and the phantom's bright markers)
            annotation, head = vtkCornerAnnotation(), vtkCornerAnnotation()
            for corner_text in (annotation, head):
                corner_text.SetMaximumFontSize(15)
                corner_text.SetMinimumFontSize(10)
                corner_text.GetTextProperty().SetColor(1.0, 1.0, 0.6)
                corner_text.GetTextProperty().SetShadow(True)
                view.renderer().AddViewProp(corner_text)
            head.GetTextProperty().SetBackgroundColor(0.0, 0.0, 0.0)
            head.GetTextProperty().SetBackgroundOpacity(0.5)
            self._view_corner[id(annotation)] = head
            slice_node = view._logic.GetSliceNode()
            self._annotations.append((view, annotation, slice_node))
            slice_node.AddObserver("ModifiedEvent",
                                   lambda *_, v=view, a=annotation, n=slice_node:
                                   self._view_text(v, a, n))
            view.interactor().AddObserver("MouseMoveEvent",
                                          lambda *_, v=view, n=slice_node:
                                          self._under_cursor(v, n), 1.0)
            self._view_text(view, annotation, slice_node)

    #: the corners of vtkCornerAnnotation used: the upper right holds the view's name and
    #: slice position, and under them the values under the cursor (the upper left holds
    #: the view's own buttons, the foot its slice slider); the lower edge's letter is
    #: lifted two lines, above the slider and its handle
    UPPER_RIGHT, BOTTOM_EDGE, RIGHT_EDGE, LEFT_EDGE, TOP_EDGE = 3, 4, 5, 6, 7

    def _view_text(self, view, annotation, slice_node):
        name, top, bottom, left, right, (plus, minus) = VIEW_TEXT.get(
            slice_node.GetOrientation(), (slice_node.GetOrientation(), "", "", "", "",
                                          ("+", "-")))
        # the slice's position on its RAS axis (Slicer's sagittal offset counts towards L)
        axis = {"Axial": 2, "Coronal": 1, "Sagittal": 0}.get(slice_node.GetOrientation())
        offset = (slice_node.GetSliceToRAS().GetElement(axis, 3) if axis is not None
                  else view._logic.GetSliceOffset())
        self._view_heads[id(annotation)] = \
            f"{name} · {plus if offset >= 0 else minus} {abs(offset):.1f} mm"
        for corner in (0, 1, 2):
            annotation.SetText(corner, "")
        annotation.SetText(self.TOP_EDGE, top)
        annotation.SetText(self.BOTTOM_EDGE, f"{bottom}\n\n" if bottom else "")
        annotation.SetText(self.LEFT_EDGE, left)
        annotation.SetText(self.RIGHT_EDGE, right)
        self._corner_text(annotation)

    def _corner_text(self, annotation, values: str | None = None):
        """The upper right corner: the view's name and slice position, then ``values``
        (or the values shown there before)."""
        key = id(annotation)
        if values is not None:
            self._view_values[key] = values
        shown = self._view_values.get(key, "")
        self._view_corner.get(key, annotation).SetText(
            self.UPPER_RIGHT, self._view_heads.get(key, "") + (f"\n{shown}" if shown else ""))

    def _under_cursor(self, view, slice_node):
        """The CT (HU) and the fused image (its unit) at the mouse position."""
        import numpy as np
        x, y = view.interactor().GetEventPosition()
        ras = np.array(slice_node.GetXYToRAS().MultiplyPoint((float(x), float(y), 0.0, 1.0)))
        text = self.readout(ras)
        values = " · ".join(text.split(" · ")[1:])     # the position is the view's own
        for v, annotation, _ in self._annotations:
            if v is view:
                self._corner_text(annotation, values)
            elif self._view_values.get(id(annotation)):
                self._corner_text(annotation, "")      # the cursor has left that view
                v.schedule_render()
        view.schedule_render()
        with self.state:
            self.state.cursor = text

    def readout(self, ras) -> str:
        """The position (mm) and the CT (HU) and the fused image (its unit) at a RAS
        point."""
        p = self.session.p
        parts = [f"R {ras[0]:.1f} A {ras[1]:.1f} S {ras[2]:.1f} mm"]
        over = {"spect": p.spectVolume, "post": p.postTreatmentVolume,
                "plan": guided.dose_volume_node(self.slicer_app.scene, "plan"),
                "verification": guided.dose_volume_node(self.slicer_app.scene,
                                                        "verification"),
                "registration": self.viewer.registration_node(self.state.reg_check)
                }.get(self.state.view_mode)
        from ..mrml import attributes
        for label, node, unit in (("CT", p.ctVolume, "HU"),
                                  ("dose" if self.state.view_mode in ("plan", "verification")
                                   else "image", over, None)):
            value = _value_at(node, ras)
            if value is not None:
                unit = unit or ("Gy" if label == "dose" else
                                node.GetAttribute(attributes.UNITS) or "")
                parts.append(f"{label} {value:.1f} {unit}".rstrip())
        return " · ".join(parts)

    def segment_visible(self, tab=None, segment_id=None, visible=True):
        """Show or hide one segment in every view (the segment legend's tick boxes)."""
        segmentation = self.session.p.segmentation
        if not self._owns(tab) or segmentation is None or \
                segmentation.GetDisplayNode() is None or \
                segmentation.GetSegmentation().GetSegment(str(segment_id)) is None:
            return
        segmentation.GetDisplayNode().SetSegmentVisibility(str(segment_id), bool(visible))
        for view in self.slicer_app.view_manager.get_views():
            view.schedule_render()
        self.refresh()

    def _segment_rows(self) -> list[dict]:
        segmentation = self.session.p.segmentation
        if segmentation is None or segmentation.GetDisplayNode() is None:
            return []
        display = segmentation.GetDisplayNode()
        segments = segmentation.GetSegmentation()
        by_name = roles(segmentation)
        rows = []
        for i in range(segments.GetNumberOfSegments()):
            segment_id = segments.GetNthSegmentID(i)
            segment = segments.GetSegment(segment_id)
            colour = display.GetSegmentOverrideColor(segment_id)
            if colour == (0.0, 0.0, 0.0) or min(colour) < 0:
                colour = segment.GetColor()
            rows.append({"id": segment_id, "name": segment.GetName(),
                         "role": by_name.get(segment.GetName(), ""),
                         "colour": "#%02x%02x%02x" % tuple(int(255 * c) for c in colour),
                         "visible": bool(display.GetSegmentVisibility(segment_id))})
        return rows

    def _update_dvh(self):
        reports = {label: report for label in ("planned", "delivered")
                   if (report := self.session.dose_report(label))}
        self.state.dvh = dvh_png(reports) if reports else ""
        self.state.response_curves = response_png(self.session.plan_record())

    # ------------------------------------------------------------------ downloads
    def _bind_routes(self, wslink_server):
        from aiohttp import web
        self._web_app = wslink_server

        async def download(request):
            name = request.match_info["name"]
            try:
                path = resolve_inside(self.session.data_dir, name, field="download")
            except OutsideDataFolderError as error:
                return web.Response(status=404, text=str(error))
            return web.FileResponse(path, headers={
                "Content-Type": content_type(path),
                "Content-Disposition": f'attachment; filename="{path.name}"',
                "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})

        async def session_url(request):
            """The page asks a session manager where its websocket is before it connects
            (trame's client POSTs to /paraview/): this server is its own, at /ws."""
            scheme = "wss" if request.secure else "ws"
            return web.json_response({"sessionURL": f"{scheme}://USE_HOST/ws"})

        wslink_server.app.router.add_route("GET", "/files/{name:.*}", download)
        wslink_server.app.router.add_route("POST", "/paraview/", session_url)

    # ------------------------------------------------------------------ page
    def _button(self, action: str, label: str | None = None, confirm: str | None = None,
                **kwargs):
        """A button for one action: enabled when the action has what it needs (and no field
        it reads is refused or empty), its tooltip naming what is missing."""
        call = f"trigger('run', [tab_id, {action!r}])"
        if confirm:
            call = f"if (!({confirm[0]}) || window.confirm({confirm[1]!r})) {call};"
        with html.Span(classes="d-inline-block mr-2 mb-2"):
            v3.VBtn(label or BUTTON_LABELS[action], color="primary", size="small",
                    disabled=(f"!!missing[{action!r}] || !!busy || {READ_ONLY}",),
                    loading=(f"busy === {action!r}",), click=call,
                    raw_attrs=[f'data-action="{action}"'], **kwargs)
            v3.VTooltip(activator="parent", location="top",
                        text=(f"'needs ' + missing[{action!r}]",),
                        disabled=(f"!missing[{action!r}]",))

    def _message(self, panel: str):
        with html.Div(v_if=(f"messages[{panel!r}]",)):
            v3.VAlert(type="error", density="compact", variant="tonal", classes="mb-2 text-body-2",
                      v_if=(f"messages[{panel!r}].error",), text=(f"messages[{panel!r}].text",),
                      raw_attrs=[f'data-error="{panel}"'])
            html.Pre("{{ messages[%r].text }}" % panel, v_else=True,
                     classes="step-output", raw_attrs=[f'data-output="{panel}"'])

    def _typed(self, key: str, label: str, attrs: list[str], *, label_expr: bool = False,
               classes: str = "mb-2", **kwargs):
        """A typed field (``key``: a JS expression of its form key, 'f:name' or
        'p:index:name'). What is typed stays in the browser while the field has focus
        (the server's updates never replace it); leaving the field or pressing Enter sends
        the text once; a refused text stays in the field with its message beneath it."""
        k = key
        shown = f"focus_key === {k} ? draft : (sent_key === {k} ? sent_text : (fv[{k}] ?? ''))"
        # a field left unchanged sends nothing (no needless update of every tab)
        send = (f"if (focus_key === {k} && draft === (fv[{k}] ?? '')) focus_key = null; "
                f"else if (focus_key === {k}) {{ sent_key = {k}; sent_text = draft; "
                f"focus_key = null; trigger('commit', [tab_id, {k}, sent_text])"
                f".then(() => {{ if (sent_key === {k} && focus_key !== {k}) "
                f"sent_key = null; }}); }}")
        v3.VTextField(model_value=(shown,), label=(label,) if label_expr else label,
                      density="compact", hide_details="auto",
                      error_messages=(f"fe[{k}] || []",), readonly=(READ_ONLY,),
                      classes=classes,
                      raw_attrs=[*attrs,
                                 f'@focus="draft = String({shown}); focus_key = {k}"',
                                 f'@update:model-value="if (focus_key === {k}) draft = $event;"',
                                 f'@blur="{send};"', '@keydown.enter="$event.target.blur()"',
                                 'autocomplete="off"', 'spellcheck="false"'],
                      **kwargs)

    def _text(self, name: str, label: str, **kwargs):
        kwargs.pop("type", None)       # numbers are typed as text: the server reads them
        self._typed(f"'f:{name}'", label, [f'data-field="{name}"'], **kwargs)

    def _choice(self, name: str, label: str, items: str, **kwargs):
        v3.VSelect(model_value=(f"f_{name}",), items=(items,), label=label, density="compact",
                   hide_details=True, readonly=(READ_ONLY,),
                   update_modelValue=f"trigger('edit', [tab_id, 'v:{name}', $event])",
                   raw_attrs=[f'data-field="{name}"'], **kwargs)

    def _tick(self, name: str, label: str, **kwargs):
        v3.VCheckbox(model_value=(f"f_{name}",), label=label, density="compact",
                     hide_details=True, readonly=(READ_ONLY,),
                     update_modelValue=f"trigger('edit', [tab_id, 'v:{name}', !!$event])",
                     raw_attrs=[f'data-field="{name}"'], **kwargs)

    def _scenario_fields(self):
        """The scenario that selects the guideline rows (declared in mrml.parameters): the
        plan's output shows the guideline check and the goal suggestions."""
        from ..mrml.parameters import HISTOLOGIES, INTENTS
        with v3.VRow(dense=True):
            for name, label, items in (("treatmentIntent", "Treatment intent", INTENTS),
                                       ("histology", "Histology", HISTOLOGIES)):
                with v3.VCol(cols=6):
                    self._choice(name, label, repr(list(items)))
        self._text("bilirubinMgDl", "Total bilirubin (mg/dL), empty: not given",
                   classes="mb-2 mt-2")
        for name, label in (("liverCompromised", "Compromised liver function"),
                            ("priorTreatment", "Prior chemotherapy or liver treatment"),
                            ("favourableLiverFunction",
                             "More favourable liver function (Ho-166 bilobar: up to 60 Gy)")):
            self._tick(name, label)

    def _node_select(self, name: str, label: str):
        v3.VSelect(model_value=(f"n_{name}",), label=label,
                   items=(f"choices[{NODE_FIELDS[name]!r}]",),
                   update_modelValue=f"trigger('edit', [tab_id, 'n:{name}', $event ?? null])",
                   density="compact", hide_details=True, clearable=True, classes="mb-2",
                   readonly=(READ_ONLY,), raw_attrs=[f'data-field="{name}"'])

    def _panel(self, key: str):
        return v3.VExpansionPanel(value=key, raw_attrs=[f'data-panel="{key}"'])

    @contextmanager
    def _panel_text(self, key: str):
        """A panel's content. The first step's is built with the page; each later step's
        one browser task after the one before it (``shown_steps``, counted up once the page
        is mounted), so that the page shows and the first step answers before the browser
        has built the controls of all eight steps."""
        index = [k for k, _, _ in guided.PANELS].index(key)
        with v3.VExpansionPanelText():
            if index == 0:
                yield
            else:
                with html.Template(v_if=(f"shown_steps > {index}",)):
                    yield

    @staticmethod
    def _position_key(field: str) -> str:
        return "`p:${i}:" + field + "`"

    def _positions_editor(self, readings: bool):
        with html.Div(v_for="(pos, i) in positions", key="i", classes="position-row mb-1",
                      raw_attrs=['data-position="i"']):
            with v3.VRow(dense=True, align="center"):
                with v3.VCol(cols=3):
                    if readings:
                        html.Div("{{ pos.name || `position ${i + 1}` }}",
                                 classes="text-body-2", raw_attrs=[':data-reading-name="i"'])
                    else:
                        self._typed(self._position_key("name"), "`Position ${i + 1}`",
                                    [':data-position-name="i"'], label_expr=True, classes="")
                if not readings:
                    with v3.VCol(cols=7):
                        v3.VSelect(model_value=("pos.cbct",), items=("volumes",), label="CBCT",
                                   density="compact", hide_details=True, readonly=(READ_ONLY,),
                                   update_modelValue="trigger('edit', [tab_id, `p:${i}:cbct`, "
                                                     "$event ?? null])",
                                   raw_attrs=[':data-position-cbct="i"'])
                    with v3.VCol(cols=2):
                        v3.VBtn(icon="mdi-delete", size="small", variant="text",
                                disabled=(READ_ONLY,),
                                click="trigger('remove_position', [tab_id, i])",
                                raw_attrs=[':data-remove-position="i"'])
                else:
                    for field, label, width in (("vialGbq", "Vial activity (GBq)", 3),
                                                ("vialTime", "Vial time", 6)):
                        with v3.VCol(cols=width):
                            self._typed(self._position_key(field), label,
                                        [f':data-reading="`{field}-${{i}}`"',
                                         'inputmode="decimal"' if field == "vialGbq" else
                                         'inputmode="text"'], classes="")
            if readings:
                with v3.VRow(dense=True):
                    v3.VCol(cols=3)
                    for field, label, width in (("residualGbq", "Residual (GBq)", 3),
                                                ("residualTime", "Residual time", 6)):
                        with v3.VCol(cols=width):
                            self._typed(self._position_key(field), label,
                                        [f':data-reading="`{field}-${{i}}`"'], classes="")
                with v3.VRow(dense=True):
                    v3.VCol(cols=3)
                    with v3.VCol(cols=9):
                        self._typed(self._position_key("administeredAt"),
                                    "Administration time",
                                    [':data-reading="`administeredAt-${i}`"'], classes="")
        if not readings:
            v3.VBtn("Add a position", prepend_icon="mdi-plus", size="small", variant="tonal",
                    click="trigger('add_position', [tab_id])", classes="mb-2",
                    disabled=(READ_ONLY,), raw_attrs=['data-add-position'])

    def _build_ui(self):
        self.state.goal_kinds = [{"title": forms.GOAL_LABELS[k], "value": k} for k in GOAL_KINDS]
        self.state.goal_labels = {k: forms.goal_field(k).label for k in GOAL_KINDS}
        self.state.synthetic_position_counts = list(SYNTHETIC_POSITIONS)
        self.state.products = list(PRODUCTS)
        self.state.methods = list(METHODS)
        self.state.view_modes = VIEW_MODES
        self.state.dvh = ""
        self.state.response_curves = ""
        self.state.goal_suggestions = []
        with VAppLayout(self.server, full_height=True) as layout:
            client.Style(CSS + dicom_panel.CSS)
            client.ClientTriggers(mounted="tab_id = Math.random().toString(36).slice(2) + "
                                          "Date.now().toString(36); "
                                          "trigger('claim', [tab_id]); " + SHOW_STEPS)
            with v3.VAppBar(density="compact", color="blue-grey-darken-3"):
                v3.VAppBarTitle("TAREPlanner: radioembolization planning and verification")
                dicom_panel.identity_chip()
                v3.VChip("one session per server", size="small", classes="mr-2",
                         variant="outlined")
                v3.VProgressCircular(indeterminate=True, size=20, v_show=("busy",),
                                     classes="mr-4", raw_attrs=['data-busy'])
                html.Span(raw_attrs=[':data-updates="updates"'], style="display: none")
            with v3.VMain(), html.Div(classes="d-flex", style="height: calc(100vh - 48px)"):
                with html.Div(classes="steps-column"):
                    with v3.VAlert(v_if=(f"owner_tab && {READ_ONLY}",), type="warning",
                                   density="compact", variant="tonal", classes="ma-2",
                                   raw_attrs=['data-read-only']):
                        html.Span("This patient is open in another tab or browser: this tab "
                                  "follows it read-only.")
                        v3.VBtn("Take over here", size="small", variant="text",
                                click="if (window.confirm('Take over? The other tab becomes "
                                      "read-only.')) trigger('take_over', [tab_id]);",
                                raw_attrs=['data-take-over'])
                    self._steps()
                with html.Div(classes="d-flex flex-column flex-grow-1",
                              style="min-width: 0"):
                    with html.Div(classes="d-flex align-center px-2 ga-2 flex-wrap",
                                  style="min-height: 44px"):
                        v3.VSelect(v_model=("view_mode",), items=("view_modes",),
                                   label="Slice views show", density="compact",
                                   hide_details=True, style="max-width: 240px",
                                   disabled=(FOLLOWER,),
                                   raw_attrs=['data-field="view_mode"'])
                        with v3.VBtnToggle(v_model=("ct_preset",), density="compact",
                                           variant="outlined", divided=True,
                                           disabled=(FOLLOWER,),
                                           raw_attrs=['data-ct-presets']):
                            for name in CT_PRESETS:
                                v3.VBtn(name, value=name, size="small",
                                        raw_attrs=[f'data-ct-preset="{name}"'])
                        html.Span("{{ ct_window }}", classes="text-caption",
                                  raw_attrs=['data-ct-window'])
                        v3.VSlider(v_model=("dose_from_gy",), min=0, max=200, step=5,
                                   v_if=("['plan', 'verification'].includes(view_mode)",),
                                   label=("`Dose from ${dose_from_gy} Gy`",),
                                   disabled=(FOLLOWER,), density="compact", hide_details=True,
                                   style="max-width: 280px", raw_attrs=['data-dose-from'])
                        v3.VSlider(v_model=("fusion_opacity",), min=0, max=1, step=0.05,
                                   v_if=("!['ct', 'registration'].includes(view_mode)",),
                                   label="Opacity", disabled=(FOLLOWER,),
                                   density="compact", hide_details=True,
                                   style="max-width: 200px", raw_attrs=['data-opacity'])
                        self.viewer.isodose_field_ui()
                        with html.Div(v_if=("legend",), classes="d-flex align-center",
                                      raw_attrs=['data-legend']):
                            html.Span("{{ legend.title }}", classes="text-caption mr-1")
                            html.Span("{{ legend.low }}", classes="text-caption mr-1")
                            html.Div(style=("legend_gradient", ""),
                                     classes="legend-bar")
                            html.Span("{{ legend.high }}", classes="text-caption ml-1")
                    html.Div("{{ cursor || 'Move the mouse over a slice view: position and "
                             "values under the cursor' }}", classes="text-caption px-2",
                             raw_attrs=['data-cursor'])
                    # a tab that follows read-only only looks at the shared views (the
                    # server drops its view events too: _view_events_allowed)
                    with html.Div(style="flex: 3 1 0; min-height: 0; position: relative",
                                  classes=(f"'d-flex' + (owner_tab && {READ_ONLY} ? "
                                           "' views-read-only' : '')",),
                                  raw_attrs=['data-views']):
                        self.layout_manager.initialize_layout_grid(layout)
                    with html.Div(style="flex: 2 1 0; min-height: 0; overflow-y: auto",
                                  classes="results"):
                        self._results()
        self.ui = layout

    def _steps(self):
        v3.VAlert(v_if=("edit_error",), type="error", density="compact", variant="tonal",
                  text=("edit_error",), classes="ma-2", raw_attrs=['data-error="edit"'])
        with v3.VExpansionPanels(v_model=("open_panels",), multiple=True, variant="accordion"):
            with self._panel("data"):
                self._title("data")
                with self._panel_text("data"):
                    with html.Div(classes="d-flex align-center"):
                        self._button("load", confirm=(
                            "n_ctVolume", "Load the synthetic patient? The patient on the "
                                          "page is cleared (saved files stay)."))
                        v3.VSelect(v_model=("synthetic_positions",),
                                   items=("synthetic_position_counts",),
                                   label="positions", density="compact", hide_details=True,
                                   style="max-width: 130px", classes="mb-2",
                                   readonly=(READ_ONLY,),
                                   raw_attrs=['data-field="synthetic_positions"'])
                        html.Span("2: right and left hepatic; otherwise segmental",
                                  classes="text-caption ml-2 mb-2")
                    with html.Div(classes="d-flex align-center mb-2"):
                        v3.VSelect(v_model=("folder",), items=("folders",),
                                   label="or a folder of the data folder (DICOM, NIfTI)",
                                   density="compact", hide_details=True, classes="mr-2",
                                   readonly=(READ_ONLY,), raw_attrs=['data-field="folder"'])
                        v3.VBtn(icon="mdi-refresh", size="small", variant="text",
                                click=self.refresh, classes="mr-1",
                                raw_attrs=['data-refresh-folders', 'title="Read the data '
                                           'folder again"'])
                        v3.VBtn("Load folder", size="small", color="primary",
                                disabled=(f"!folder || !!busy || {READ_ONLY}",),
                                click=f"trigger('run', [tab_id, {LOAD_FOLDER!r}])",
                                raw_attrs=['data-action="load folder"'])
                        v3.VBtn("New patient", size="small", variant="tonal", classes="ml-1",
                                disabled=(f"!!busy || {READ_ONLY}",),
                                click="if (window.confirm('New patient? Everything on the page "
                                      "is cleared: images, segments, fields, plan and "
                                      "downloads (saved files stay in the data folder).')) "
                                      "trigger('new_patient', [tab_id]);",
                                raw_attrs=['data-new-patient',
                                           'title="An empty scene; saved files stay"'])
                    dicom_panel.panel()
                    self._message("data")
                    self._node_select("ctVolume", "Planning CT")
                    self._node_select("spectVolume", "MAA / Ho-166 scout SPECT")
                    self._node_select("segmentation", "Segmentation (liver, tumours)")
                    with html.Div(classes="d-flex align-center mb-2",
                                  v_if=("!n_segmentation && volumes.length",)):
                        for key, label in (("liver_labels", "liver label map"),
                                           ("tumour_labels", "tumour label map (1..n)")):
                            v3.VSelect(v_model=(key,), items=("volumes",), label=label,
                                       density="compact", hide_details=True, classes="mr-2",
                                       clearable=True, readonly=(READ_ONLY,))
                        v3.VBtn("Segment", size="small", color="primary",
                                disabled=("!n_ctVolume || !liver_labels || !tumour_labels || "
                                          f"!!busy || {READ_ONLY}",),
                                click=f"trigger('run', [tab_id, {LABEL_MAPS!r}])",
                                raw_attrs=[f'data-action="{LABEL_MAPS}"'])
                    html.Div("Injection positions", classes="text-subtitle-2 mb-1")
                    self._positions_editor(readings=False)
            with self._panel("registration"):
                self._title("registration")
                with self._panel_text("registration"):
                    self._node_select("diagnosticCt", "Diagnostic CT (optional)")
                    self._button("registration")
                    self._message("registration")
                    self.viewer.registration_ui()
            with self._panel("segmentation"):
                self._title("segmentation")
                with self._panel_text("segmentation"):
                    self._button("lungs")
                    self._button("territories")
                    self._button("check segments")
                    self._message("segmentation")
                    self.segment_editor.build()
            with self._panel("measurement"):
                self._title("measurement")
                with self._panel_text("measurement"):
                    self._text("lungBaseMarginMm", "Lung-base margin (mm), 0 for none")
                    self._tick("manualLsf", "Enter the LSF by hand")
                    self._text("manualLsfPercent", "Manual LSF (%)", v_if=("f_manualLsf",))
                    self._text("manualTnr", "Manual TNRs, e.g. T1=3.2, T2=2.5 (optional)")
                    self._camera_select("spectCameraFile")
                    self._button("measurement")
                    self._message("measurement")
            with self._panel("plan"):
                self._title("plan")
                with self._panel_text("plan"):
                    with v3.VRow(dense=True):
                        with v3.VCol(cols=6):
                            self._choice("product", "Product", "products")
                        with v3.VCol(cols=6):
                            self._choice("method", "Method", "methods")
                    self._text("treatmentTime",
                               "Treatment time (ISO 8601 with UTC offset, optional)",
                               classes="mb-2 mt-2")
                    self._scenario_fields()
                    with html.Div(v_if=("goal_suggestions.length",), classes="mb-2",
                                  raw_attrs=["data-goal-suggestions"]):
                        html.Div("Goals the scenario suggests (recommendations, not applied "
                                 "by themselves):", classes="text-caption")
                        with html.Ul(classes="text-caption"):
                            html.Li("{{ s }}", v_for="s in goal_suggestions", key="s")
                    html.Div("One goal per injection position (the rows of step 1)",
                             classes="text-caption mb-1")
                    self._positions_editor_goals_only()
                    self._tick("voxelDosimetry", "Voxel dosimetry")
                    self._text("isodoseLevelsGy",
                               "Isodose levels (Gy), empty for the plan's defaults")
                    v3.VSelect(model_value=("site_limits",), items=("json_files",),
                               clearable=True, readonly=(READ_ONLY,),
                               update_modelValue="trigger('edit', [tab_id, 'site_limits', "
                                                 "$event ?? null])",
                               label="Site limits file (tareplanner.site-limits/1), optional",
                               density="compact", hide_details=True, classes="mb-2",
                               raw_attrs=['data-field="siteLimitsFile"'])
                    v3.VSelect(model_value=("response_fit",), items=("json_files",),
                               clearable=True, readonly=(READ_ONLY,),
                               update_modelValue="trigger('edit', [tab_id, 'response_fit', "
                                                 "$event ?? null])",
                               label="Dose-response fit (tareplanner.response/1), optional",
                               density="compact", hide_details=True, classes="mb-2",
                               raw_attrs=['data-field="responseFit"'])
                    self._button("plan")
                    self._message("plan")
            with self._panel("treatment day"):
                self._title("treatment day")
                with self._panel_text("treatment day"):
                    self._button("directive")
                    html.Div("Dose-calibrator readings per position (times in ISO 8601 with "
                             "the UTC offset; residual 0 when none is left)",
                             classes="text-caption mb-1")
                    self._positions_editor(readings=True)
                    self._text("siteTolerancePercent", "Site tolerance (%), 0 for none",
                               classes="mb-2 mt-2")
                    self._text("confirmReadingsReason",
                               "Reason the readings are right (only for readings far from "
                               "the directive; empty: they are refused)", classes="mb-2")
                    self._button("administration")
                    self._message("treatment day")
            with self._panel("verification"):
                self._title("verification")
                with self._panel_text("verification"):
                    self._node_select("postTreatmentVolume", "Post-treatment PET or SPECT")
                    self._choice("postTreatmentKind", "Kind", "['pet', 'spect']", classes="mb-2")
                    self._text("administrationTime", "Administration time")
                    self._text("acquisitionTime", "Acquisition time")
                    self._text("administeredActivityGbq",
                               "Administered activity (GBq): a SPECT without an administration"
                               " record; empty for none")
                    self._camera_select("postTreatmentCameraFile")
                    self._button("verification")
                    self._message("verification")
            with self._panel("save"):
                self._title("save")
                with self._panel_text("save"):
                    html.Div("Each Save writes into a new folder of the data folder's output "
                             "folder; nothing is overwritten.", classes="text-caption mb-2")
                    self._tick("exportDicom", "DICOM RT Dose, SEG and RT Structure Set too "
                               "(a planning CT read from DICOM)")
                    self._button("save")
                    self._message("save")
                    self._file_links()

    # ------------------------------------------------------------------ camera files
    def _camera_select(self, field: str):
        """A camera file (tareplanner.camera/1) among the data folder's JSON files, or none
        (the resolution is then ASSUMED, and the panel says so)."""
        label = {"spectCameraFile": "SPECT camera file (tareplanner calibrate), optional: "
                                    "none is an ASSUMED resolution",
                 "postTreatmentCameraFile": "Post-treatment camera file (the PET's or SPECT's "
                                            "own), optional: none is ASSUMED"}[field]
        v3.VSelect(model_value=(f"camera_files.{field}",), items=("json_files",),
                   clearable=True, readonly=(READ_ONLY,),
                   update_modelValue=f"trigger('edit', [tab_id, 'camera:{field}', "
                                     "$event ?? null])",
                   label=label, density="compact", hide_details=True, classes="mb-2",
                   raw_attrs=[f'data-field="{field}"'])

    def _positions_editor_goals_only(self):
        with html.Div(v_for="(pos, i) in positions", key="i", classes="mb-1"):
            with v3.VRow(dense=True, align="center"):
                with v3.VCol(cols=3):
                    html.Div("{{ pos.name || `position ${i + 1}` }}", classes="text-body-2")
                with v3.VCol(cols=5):
                    v3.VSelect(model_value=("pos.goalKind",), items=("goal_kinds",),
                               label="Goal", density="compact", hide_details=True,
                               readonly=(READ_ONLY,),
                               update_modelValue="trigger('edit', [tab_id, `p:${i}:goalKind`,"
                                                 " $event])",
                               raw_attrs=[':data-goal-kind="i"'])
                with v3.VCol(cols=4):
                    self._typed(self._position_key("goalValue"), "goal_labels[pos.goalKind]",
                                [':data-plan-goal-value="i"', 'inputmode="decimal"'],
                                label_expr=True, classes="", v_if=("pos.goalKind !== 'maximum'",))

    def _title(self, key: str):
        v3.VExpansionPanelTitle("{{ titles[%r] }}" % key, classes="font-weight-medium",
                                raw_attrs=[f'data-title="{key}"'])

    def _file_links(self):
        with html.Div(v_if=("outputs.length",), classes="mt-2"):
            html.Div("Files of the saved plan on the page (download):",
                     classes="text-subtitle-2")
            with html.Ul(classes="file-list"):
                with html.Li(v_for="name in outputs", key="name"):
                    html.A("{{ name }}", href=("'files/' + name.split('/').map("
                                               "encodeURIComponent).join('/')",),
                           download=True, raw_attrs=[':data-file="name"'])

    def _results(self):
        with v3.VTabs(v_model=("result_tab",), density="compact"):
            v3.VTab("Plan", value="plan")
            v3.VTab("Warnings ({{ warnings.length }})", value="warnings")
            v3.VTab("DVH", value="dvh")
            v3.VTab("Dose-response", value="response")
            v3.VTab("Files", value="files")
            v3.VTab("Segments ({{ segments.length }})", value="segments")
        with v3.VWindow(v_model=("result_tab",), classes="pa-2"):
            with v3.VWindowItem(value="plan"):
                html.Div("No plan yet (step 5).", v_if=("!plan_rows.length",),
                         classes="text-caption")
                v3.VDataTable(v_if=("plan_rows.length",), items=("plan_rows",),
                              headers=("plan_headers", [
                                  {"title": "Position", "key": "position"},
                                  {"title": "Goal", "key": "goal"},
                                  {"title": "Activity (GBq)", "key": "activity_gbq"},
                                  {"title": "Normal liver (Gy)", "key": "normal_dose_gy"},
                                  {"title": "Perfused (Gy)", "key": "perfused_dose_gy"},
                                  {"title": "Tumours", "key": "tumours"},
                                  {"title": "Limited by", "key": "limited_by"}]),
                              density="compact", hide_default_footer=True,
                              raw_attrs=['data-plan-table'])
                html.Div("{{ plan_totals }}", classes="text-body-2 mt-1")
                html.A("Report (PDF)", v_if=("plan_rows.length && report_name",),
                       href=("'files/' + report_name.split('/').map("
                             "encodeURIComponent).join('/')",),
                       download=True, classes="mt-1", raw_attrs=['data-report-link'])
                html.Div("Not saved: the report comes with Save (step 8).",
                         v_if=("plan_rows.length && !report_name",),
                         classes="text-caption mt-1", raw_attrs=['data-report-missing'])
            with v3.VWindowItem(value="warnings"):
                html.Div("No warnings.", v_if=("!warnings.length",), classes="text-caption")
                with v3.VList(density="compact"):
                    with v3.VListItem(v_for="w in warnings", key="w.code + w.message"):
                        html.Span("{{ w.code }}", classes="font-weight-bold mr-2",
                                  raw_attrs=['data-warning-code'])
                        html.Span("{{ w.message }}", classes="text-body-2")
            with v3.VWindowItem(value="dvh"):
                html.Div("No DVH yet: plan with voxel dosimetry (step 5).", v_if=("!dvh",),
                         classes="text-caption")
                html.Img(v_if=("dvh",), src=("dvh",), style="max-width: 100%",
                         raw_attrs=['data-dvh'])
            with v3.VWindowItem(value="response"):
                html.Div("No dose-response fit named by the plan (step 5: Dose-response fit).",
                         v_if=("!response_curves",), classes="text-caption")
                html.Img(v_if=("response_curves",), src=("response_curves",),
                         style="max-width: 100%", raw_attrs=['data-response-curves'])
            with v3.VWindowItem(value="segments"):
                html.Div("No segments yet (step 1).", v_if=("!segments.length",),
                         classes="text-caption")
                with html.Div(v_for="seg in segments", key="seg.id",
                              classes="d-flex align-center", raw_attrs=[':data-segment="seg.name"']):
                    v3.VCheckbox(model_value=("seg.visible",), density="compact",
                                 hide_details=True, readonly=(READ_ONLY,),
                                 update_modelValue="trigger('segment_visible', "
                                                   "[tab_id, seg.id, !!$event])")
                    html.Span(style=("`display:inline-block;width:14px;height:14px;"
                                     "background:${seg.colour};margin-right:8px`",))
                    html.Span("{{ seg.name }}", classes="text-body-2 mr-2")
                    html.Span("{{ seg.role }}", classes="text-caption")
            with v3.VWindowItem(value="files"):
                html.Div("Nothing saved for the plan on the page (step 8).",
                         v_if=("!outputs.length",), classes="text-caption")
                self._file_links()


#: after the page is mounted: build the next step's panel, one browser task per step (the
#: browser paints and answers input in between)
SHOW_STEPS = ("const more = () => window.requestAnimationFrame(() => window.setTimeout("
              "() => { if (shown_steps < %d) { shown_steps += 1; more(); } }, 0)); more();"
              % len(guided.PANELS))

CSS = """
.steps-column { width: 700px; min-width: 520px; overflow-y: auto; border-right: 1px solid #ddd; }
.step-output { white-space: pre; font-size: 11px; line-height: 1.35; background: #f5f7f8;
               padding: 6px; border-radius: 4px; max-height: 300px; overflow: auto; }
.v-expansion-panel-text__wrapper { padding: 8px 12px 12px; }
.file-list { padding-left: 18px; font-size: 13px; }
.views-read-only { pointer-events: none; }
.legend-bar { width: 160px; height: 12px; border: 1px solid #999; }
.results .v-data-table { font-size: 12.5px; }
"""


def figure_imports() -> None:
    """The imports of the page's figures (the DVH, the dose-response curves: matplotlib, about
    1 s), made when the server starts rather than in the first step that draws one."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from ..records import response_report  # noqa: F401
    figure = Figure(figsize=(1.0, 1.0), dpi=20)     # loads the fonts the figures use
    figure.add_subplot().set_xlabel("Dose (Gy)")
    figure.savefig(io.BytesIO(), format="png")


def serve(data_dir: str | Path, *, host: str = "127.0.0.1", port: int = 8080,
          open_browser: bool = False) -> None:
    """Build the page and serve it until interrupted (one session per process)."""
    app = WebApp(data_dir)
    figure_imports()
    argv, sys.argv = sys.argv, sys.argv[:1]   # trame would read the command's own options
    try:
        app.server.start(host=host, port=port, open_browser=open_browser, timeout=0,
                         show_connection_info=True)
    finally:
        sys.argv = argv
        app.reports.shutdown()
