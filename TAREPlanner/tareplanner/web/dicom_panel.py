"""The DICOM browser's part of the page (trame): the list of patients, studies and series of
the data folder, a *Use as* choice on each image series (planning CT, scout SPECT, each
position's CBCT, post-treatment PET or SPECT), the skipped files with their reasons, and the
planning CT's identity. The logic is :mod:`.dicom_browser`'s; this module only draws it and
wires its two triggers into :class:`.app.WebApp`."""

from __future__ import annotations

import logging

from trame.widgets import html
from trame.widgets import vuetify3 as v3

from .dicom_browser import ROLES, DicomBrowser

READ_ONLY = "owner_tab !== tab_id"
log = logging.getLogger(__name__)


def install(app) -> None:
    """The browser on ``app`` (a WebApp): its state and its triggers."""
    app.dicom = DicomBrowser(app.session)
    app.dicom_errors = {}          # series UID -> why picking it loaded nothing
    app.state.dicom = {"patients": [], "skipped": [], "summary": ""}
    app.state.dicom_identity = ""
    app.state.dicom_roles = []
    app.state.dicom_structure_roles = [
        {"title": "Structures on the planning CT (liver, lungs, tumours)",
         "value": "structures"}]
    app.state.dicom_errors = {}
    app.ctrl.trigger("dicom_scan")(lambda tab=None: _scan(app, tab))   # a coroutine
    app.ctrl.trigger("dicom_pick")(
        lambda tab=None, uid=None, role=None: _pick(app, tab, uid, role))


def page_state(app) -> dict:
    """The browser's state for :meth:`.app.WebApp.refresh`."""
    p = app.session.p
    roles = [{"title": "Planning CT", "value": "ct"},
             {"title": "Scout SPECT (MAA / Ho-166)", "value": "spect"}]
    roles += [{"title": f"CBCT of {pos.name or f'position {i + 1}'}", "value": f"cbct:{i}"}
              for i, pos in enumerate(p.positions)]
    roles.append({"title": "Post-treatment PET or SPECT", "value": "post"})
    return {"dicom": app.dicom.page(), "dicom_identity": app.dicom.identity_text(),
            "dicom_roles": roles, "dicom_errors": dict(app.dicom_errors)}


async def _scan(app, tab) -> None:
    """Read the data folder's headers in a worker thread (no scene is touched): the page
    stays live, showing that it is busy, for the seconds a large folder takes."""
    import asyncio
    if app.state.busy or not app._owns(tab):
        return
    app.dicom_errors = {}
    with app.state:
        app.state.busy = "dicom scan"
    try:
        text, error = await asyncio.get_running_loop().run_in_executor(None, _scan_text, app)
    finally:
        app.session.messages["data"] = (text, error) if "text" in locals() else \
            ("reading the data folder failed", True)
        app.refresh(busy="")


def _scan_text(app) -> tuple[str, bool]:
    try:
        return app.dicom.scan(), False
    except ValueError as exc:
        return str(exc), True


def _pick(app, tab, uid, role) -> None:
    if app.state.busy or not app._owns(tab):
        return
    from .session import LOAD_FOLDER
    with app.state:
        app.state.busy = "dicom"
    key = str(uid)[:70]
    try:
        try:
            text = app.dicom.pick(str(uid), str(role))
        except ValueError as exc:
            app.session.messages["data"] = (str(exc), True)
            app.dicom_errors = {key: str(exc)}      # beside the series' "Use as" choice
            return
        except Exception as exc:  # noqa: BLE001 - a reader's failure: said on the page
            log.warning("DICOM series %s not loaded: %s: %s", uid, type(exc).__name__, exc)
            text = (f"series: {key!r} could not be read ({type(exc).__name__}: {exc})")
            app.session.messages["data"] = (text, True)
            app.dicom_errors = {key: text}
            return
        app.dicom_errors = {}
        app.session.messages["data"] = (text, False)
        app._after(LOAD_FOLDER)             # the views show the new volume
    finally:
        app.refresh(busy="")


def identity_chip() -> None:
    """The planning CT's identity in the page's top bar (when it is read from DICOM)."""
    v3.VChip("{{ dicom_identity }}", v_if=("dicom_identity",), size="small", classes="mr-2",
             color="white", variant="outlined", raw_attrs=["data-identity-bar"])


def panel() -> None:
    """The browser in the Data panel."""
    with v3.VCard(variant="outlined", classes="mb-2 pa-2", raw_attrs=["data-dicom-browser"]):
        with html.Div(classes="d-flex align-center"):
            html.Span("DICOM in the data folder", classes="text-subtitle-2 mr-2")
            v3.VBtn("Read the data folder", size="small", variant="tonal",
                    prepend_icon="mdi-folder-search",
                    disabled=(f"!!busy || {READ_ONLY}",),
                    click="trigger('dicom_scan', [tab_id])", raw_attrs=["data-dicom-scan"])
            html.Span("{{ dicom.summary }}", classes="text-caption ml-2",
                      raw_attrs=["data-dicom-summary"])
        html.Div("Planning CT: {{ dicom_identity }}", v_if=("dicom_identity",),
                 classes="text-body-2 mt-1", raw_attrs=["data-identity"])
        with html.Div(v_for="pt in dicom.patients", key="pt.key", classes="mt-2",
                      raw_attrs=[':data-dicom-patient="pt.id"']):
            html.Div("{{ pt.name }} · ID {{ pt.id }} · born {{ pt.birth_date || 'not given' }}"
                     " · {{ ({M: 'male', F: 'female', O: 'other'})[pt.sex] || "
                     "'sex not given' }}",
                     classes="text-body-2 font-weight-medium")
            with html.Div(v_for="st in pt.studies", key="st.uid", classes="ml-3"):
                html.Div("study {{ st.date || '(no date)' }} · {{ st.description }}",
                         classes="text-caption")
                with html.Table(classes="dicom-series ml-2"):
                    with html.Tr(v_for="se in st.series", key="se.uid",
                                 raw_attrs=[':data-dicom-series="se.description"',
                                            ':data-series-uid="se.uid"']):
                        html.Td("{{ se.modality }}", classes="font-weight-medium")
                        html.Td("{{ se.description }}")
                        html.Td("{{ se.images }} images")
                        html.Td("{{ se.folder }}", classes="text-caption")
                        with html.Td(style="width: 150px"):
                            v3.VSelect(v_if=("se.image || se.structures",), model_value=(None,),
                                       items=("se.structures ? dicom_structure_roles : "
                                              "dicom_roles",), placeholder="Use as...",
                                       density="compact", hide_details=True,
                                       variant="underlined", readonly=(READ_ONLY,),
                                       disabled=("!!busy",),
                                       update_modelValue="$event && trigger('dicom_pick', "
                                                         "[tab_id, se.uid, $event])",
                                       raw_attrs=[':data-use-as="se.description"'])
                            html.Span("not an image", v_else=True, classes="text-caption")
                        with html.Td():
                            html.Div("{{ se.used.join(', ') }}",
                                     classes="text-caption text-success font-weight-medium",
                                     raw_attrs=["data-used"])
                            html.Div("{{ dicom_errors[se.uid] }}",
                                     v_if=("dicom_errors[se.uid]",),
                                     classes="text-caption text-error",
                                     raw_attrs=[':data-dicom-error="se.description"'])
        with v3.VExpansionPanels(v_if=("dicom.skipped.length",), classes="mt-2"):
            with v3.VExpansionPanel(raw_attrs=["data-dicom-skipped"]):
                v3.VExpansionPanelTitle("Skipped files ({{ dicom.skipped.length }} shown)",
                                        classes="text-caption")
                with v3.VExpansionPanelText():
                    html.Pre("{{ dicom.skipped.join('\\n') }}", classes="step-output")


CSS = """
.dicom-series { font-size: 12.5px; border-collapse: collapse; }
.dicom-series td { padding: 0 6px; vertical-align: middle; }
"""

__all__ = ["install", "page_state", "panel", "identity_chip", "CSS", "ROLES"]
