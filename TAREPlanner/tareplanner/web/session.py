"""The web page's one session: one parameter object, one MRML scene, the data folder.

This is the page's model without the page: it turns the guided workflow
(:mod:`tareplanner.mrml.guided`) into plain JSON values for the page (panel titles, what each
button still needs, the positions, the volumes to choose from, the plan table) and the page's
edits back into the parameter object. Every button runs exactly one ``guided`` function
(``guided.run``) and shows the text it returns; a bad input (a ValueError: the
message names the field, the value and what is allowed) comes back as the panel's error text,
never as a traceback. It imports no web toolkit, so the default test run covers it.

One session per process: the page is a view of this single object, so two browsers on the
same server see and change the same patient.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from ..mrml import attributes, guided
from ..mrml.parameters import POSITION_FIELDS, Parameters
from ..mrml.results import record_from_text_node
from ..records.plan_text import limited_by_text
from . import forms
from .files import OUTPUT_SUBFOLDER, list_folders, relative_name, resolve_inside

log = logging.getLogger(__name__)

#: the Data panel's own actions besides the synthetic patient: images from a folder of the
#: data folder, and the structures from label maps among them
LOAD_FOLDER = "load folder"
LABEL_MAPS = "label maps"


#: the synthetic patient's numbers of injection positions
SYNTHETIC_POSITIONS = guided.SYNTHETIC_POSITIONS


#: the panel (guided.PANELS key) that shows each action's text
ACTION_PANEL = {"load": "data", LOAD_FOLDER: "data", LABEL_MAPS: "data", "registration": "registration",
                "lungs": "segmentation", "territories": "segmentation",
                "check segments": "segmentation", "measurement": "measurement", "plan": "plan",
                "directive": "treatment day", "administration": "treatment day",
                "verification": "verification", "save": "save"}

def guided_camera_fields() -> dict[str, str]:
    """The camera-file fields (parameter name -> the name the panels and messages give it):
    each a file chosen inside the data folder."""
    return {"spectCameraFile": guided.SPECT_CAMERA_FIELD,
            "postTreatmentCameraFile": guided.POST_CAMERA_FIELD}


#: parameter fields that hold a node, and the MRML class of the nodes to choose from
NODE_FIELDS = {f.name: f.metadata["node_class"] for f in dataclasses.fields(Parameters)
               if "node_class" in f.metadata and not f.metadata.get("result")}
#: parameter fields the page edits as plain values (the output folder is fixed by --data)
VALUE_FIELDS = tuple(f.name for f in dataclasses.fields(Parameters)
                     if not f.metadata.get("result") and f.name not in NODE_FIELDS
                     and f.name not in ("positions", "outputFolder", "siteLimitsFile", "responseFit",
                                        *guided_camera_fields()))
NUMBER_TYPES = {"float": float, float: float, "int": int, int: int}


def _field_type(cls, name: str):
    return {f.name: f.type for f in dataclasses.fields(cls)}[name]


def convert(cls, name: str, value):
    """A value from the page as the field's type: a typed field's text through
    :func:`.forms.parse` (an empty number is missing, never 0), a choice among its allowed
    values, a boolean as such; a ValueError naming the field as the page labels it
    otherwise."""
    specs = forms.POSITION_FIELDS if cls is not Parameters else forms.VALUE_FIELDS
    if name in specs and name != "goalValue":
        return forms.parse(specs[name], value)
    declared = {f.name: f for f in dataclasses.fields(cls)}[name]
    kind = _field_type(cls, name)
    if "choices" in declared.metadata:
        if value not in declared.metadata["choices"]:
            raise ValueError(f"{name}: got {str(value)[:40]!r}; allowed: "
                             + ", ".join(declared.metadata["choices"]))
        return value
    if kind in ("bool", bool):
        if not isinstance(value, bool):
            raise ValueError(f"{name}: got {str(value)[:40]!r}; allowed: true or false")
        return value
    if kind in ("float", float):
        return forms.parse(forms.Field(name), value)
    return forms.parse(forms.Field(name, "text", empty="none"), value)


class Session:
    """The page's state: ``p`` (guided.Parameters), ``scene`` and the data folder."""

    def __init__(self, scene, data_dir: str | Path):
        self.scene = scene
        self.data_dir = Path(data_dir).resolve(strict=True)
        self.output_dir = self.data_dir / OUTPUT_SUBFOLDER
        #: writes the Save's PDF report (``workflow.save_outputs``); None: in this process
        self.report_writer = None
        self._fresh()

    def _fresh(self) -> None:
        self.p = Parameters()
        self.p.outputFolder = str(self.output_dir)
        #: panel key -> (text, is_error) of the last action shown in that panel
        self.messages: dict[str, tuple[str, bool]] = {}
        #: typed field key ('f:name', 'p:index:name') -> (its text, why it was refused)
        self.invalid: dict[str, tuple[str, str]] = {}
        #: the folder (relative to the data folder) of this patient's last Save, or None
        self.saved_folder: str | None = None

    def new_patient(self) -> None:
        """Start again: an empty scene (the views stay), fresh parameters, no message, no
        refused text and no saved plan on the page; the files saved so far stay in the data
        folder."""
        self.scene.Clear(0)
        self._fresh()

    # ------------------------------------------------------------------ running actions
    def run(self, action: str, **options) -> tuple[bool, str]:
        """Run one button's guided function; (ok, text). Bad input gives (False, message)
        and changes nothing else the page shows."""
        panel = ACTION_PANEL[action]
        try:
            if action == LOAD_FOLDER:
                text = self.load_folder(options.get("folder", ""))
            elif action == LABEL_MAPS:
                text = self.segmentation_from_label_maps(options.get("liver"),
                                                         options.get("tumours"))
            else:
                blocked = self.blocked(action)
                if blocked:
                    raise ValueError(f"{action}: first correct " + "; ".join(blocked))
                if action == "load":
                    count = options.get("positions") or 2
                    if count not in SYNTHETIC_POSITIONS:
                        raise ValueError(f"synthetic patient positions: got {str(count)[:20]}"
                                         "; allowed: 1 to 8")
                    self.new_patient()
                    text = guided.run(self.scene, self.p, action, positions=int(count))
                elif action == "save":
                    folder = self.new_output_folder()
                    self.p.outputFolder = str(folder)
                    try:
                        text = guided.run(self.scene, self.p, action,
                                          **({"report_writer": self.report_writer}
                                             if self.report_writer else {}))
                    except BaseException:
                        if not any(folder.iterdir()):
                            folder.rmdir()      # a refused Save leaves no empty folder
                        raise
                    self.saved_folder = relative_name(self.data_dir, folder)
                else:
                    text = guided.run(self.scene, self.p, action)
        except ValueError as error:
            self.messages[panel] = (str(error), True)
            return False, str(error)
        except Exception as error:  # noqa: BLE001 - shown in the page, logged in full here
            log.exception("%s failed", action)
            text = f"{action} failed: {type(error).__name__}: {error}"
            self.messages[panel] = (text, True)
            return False, text
        self.messages[panel] = (text, False)
        return True, text

    def load_folder(self, folder: str) -> str:
        """Data step from a folder inside the data folder: each image in it as a volume
        node (a folder of DICOM files is one series; its subfolders are read one by one;
        NIfTI, NRRD and MHA files one each). The page then chooses the CT, the SPECT, the
        CBCTs and the post-treatment image among the scene's volumes."""
        from ..imaging.readers import NON_DICOM_SUFFIXES, read_image
        from ..mrml.volumes import volume_node_from_image
        root = resolve_inside(self.data_dir, folder, field="folder", kind="dir")
        entries = sorted(e for e in root.iterdir() if not e.name.startswith("."))
        files = [e for e in entries if e.is_file()]
        images = [f for f in files if f.name.lower().endswith(NON_DICOM_SUFFIXES)]
        dicom_here = [f for f in files if f not in images]
        candidates = images + ([root] if dicom_here else []) + [e for e in entries
                                                                if e.is_dir()]
        loaded, skipped = [], []
        for path in candidates:
            name = relative_name(self.data_dir, path)
            try:
                resolve_inside(self.data_dir, name, field="folder", kind="any")
                image = read_image(path)
            except (ValueError, OSError) as error:
                skipped.append(f"{name}: {error}")
                continue
            node = volume_node_from_image(self.scene, image.image, name)
            node.SetAttribute(attributes.UNITS, image.units)
            if image.meta.get("series_instance_uid"):    # read from DICOM: keep its header
                from ..mrml.dicom_header import set_dicom_header
                set_dicom_header(node, image.meta, sorted(
                    f.resolve() for f in (path.rglob("*") if path.is_dir() else [path])
                    if f.is_file() and f.resolve().is_relative_to(self.data_dir)))
            loaded.append(f"{name} ({image.modality}, {image.units})")
        if not loaded:
            raise ValueError(f"folder: got {folder!r}; allowed: a folder inside the data "
                             "folder holding images (a DICOM series, NIfTI, NRRD or MHA)"
                             + (" (" + "; ".join(skipped[:3]) + ")" if skipped else ""))
        return ("loaded " + "; ".join(loaded) + "\nchoose the CT, the SPECT, each "
                "position's CBCT and the post-treatment image below"
                + ("\nnot read: " + "; ".join(skipped) if skipped else ""))

    def segmentation_from_label_maps(self, liver_id: str | None, tumours_id: str | None) -> str:
        """Data step for a loaded folder: the segmentation (liver, and tumours T1..Tn from
        the values 1..n of the tumour label map), with their roles, on the planning CT's
        grid, as the synthetic patient's. Lungs and territories come from steps 2 and 3."""
        import numpy as np
        import SimpleITK as sitk

        from ..imaging.arrays import image_array
        from ..mrml.segmentations import segmentation_from_labels
        from ..mrml.volumes import image_from_volume_node
        from ..mrml.workflow import add_mask_segment, set_role
        ct = self.p.ctVolume
        if ct is None:
            raise ValueError("label maps: got no planning CT; allowed: choose the planning CT "
                             "first (the label maps must be on its grid)")
        liver = self.node(liver_id, "vtkMRMLScalarVolumeNode", "liver label map")
        tumours = self.node(tumours_id, "vtkMRMLScalarVolumeNode", "tumour label map")
        if liver is None or tumours is None:
            raise ValueError("label maps: got none; allowed: a liver label map and a tumour "
                             "label map (values 1..n) among the loaded volumes")
        reference = image_from_volume_node(ct)
        images = {}
        for field, node in (("liver label map", liver), ("tumour label map", tumours)):
            image = image_from_volume_node(node)
            if image.GetSize() != reference.GetSize() or not np.allclose(
                    image.GetSpacing(), reference.GetSpacing()) or not np.allclose(
                    image.GetOrigin(), reference.GetOrigin(), atol=1e-3):
                raise ValueError(f"{field}: got {node.GetName()} ({image.GetSize()} voxels); "
                                 f"allowed: a label map on the planning CT's grid "
                                 f"({reference.GetSize()} voxels)")
            images[field] = image
        labels = sitk.Cast(images["tumour label map"], sitk.sitkInt16)
        values = sorted(int(v) for v in np.unique(image_array(labels)) if v > 0)
        if not values:
            raise ValueError(f"tumour label map: got {tumours.GetName()} with no label; "
                             "allowed: tumours labelled 1..n")
        names = {v: f"T{v}" for v in values}
        segmentation = segmentation_from_labels(self.scene, labels, names, ct, "structures")
        for name in names.values():
            set_role(segmentation, name, "tumour")
        add_mask_segment(segmentation, ct, "liver",
                         sitk.GetArrayFromImage(images["liver label map"]) > 0, "liver")
        self.p.segmentation = segmentation
        return (f"segmentation {segmentation.GetName()}: liver (role liver), "
                + ", ".join(names.values()) + " (role tumour)")

    def new_output_folder(self) -> Path:
        """A folder for one Save that does not exist yet, inside the data folder's output
        folder: ``plan-<date>T<time>Z`` (UTC), with ``-2``, ``-3``... when two Saves fall in
        the same second. Every Save writes into its own folder, so a second Save never
        meets the files of the first."""
        from datetime import datetime, timezone
        self.output_dir.mkdir(exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("plan-%Y%m%dT%H%M%SZ")
        for number in range(1, 1000):
            folder = self.output_dir / (stamp if number == 1 else f"{stamp}-{number}")
            try:
                folder.mkdir()
            except FileExistsError:
                continue
            return folder
        raise ValueError(f"output folder: got {self.output_dir}; allowed: a folder with "
                         "room for a new plan folder")

    # ------------------------------------------------------------------ editing
    def set_value(self, name: str, value) -> None:
        if name not in VALUE_FIELDS:
            raise ValueError(f"field: got {str(name)[:40]!r}; allowed: "
                             f"{', '.join(VALUE_FIELDS)}")
        setattr(self.p, name, convert(Parameters, name, value))

    def set_text(self, key: str, text) -> None:
        """A typed field left by the user (``key``: 'f:name' or 'p:index:name'): its text
        parsed once (:mod:`.forms`). A refused text is kept with its message for the page
        to show beside the field, the parameter is left as it was, and every action that
        reads the field is refused until it is corrected (:meth:`blocked`)."""
        try:
            self._set_text(key, text)
        except ValueError as error:
            self.invalid[key] = ("" if text is None else str(text)[:forms.MAX_TEXT + 20],
                                 str(error))
            raise
        self.invalid.pop(key, None)

    def _set_text(self, key: str, text) -> None:
        parts = str(key).split(":")
        if len(parts) == 2 and parts[0] == "f" and parts[1] in forms.VALUE_FIELDS:
            setattr(self.p, parts[1], forms.parse(forms.VALUE_FIELDS[parts[1]], text))
            return
        if len(parts) == 3 and parts[0] == "p" and parts[2] in forms.POSITION_FIELDS \
                and parts[1].isdigit() and int(parts[1]) < len(self.p.positions):
            index, name = int(parts[1]), parts[2]
            position = self.p.positions[index]
            spec = (forms.goal_field(position.goalKind) if name == "goalValue"
                    else forms.POSITION_FIELDS[name])
            label = forms.position_label(index, position.name, spec.label)
            guided.update_position(self.p, index, **{name: forms.parse(spec, text, label)})
            return
        raise ValueError(f"field: got {str(key)[:40]!r}; allowed: a field of the page")

    def field_texts(self) -> dict[str, str]:
        """Typed field key -> the text the page shows: the refused text while it is
        refused, else the parameter's value (empty when missing)."""
        out = {f"f:{name}": forms.number_text(getattr(self.p, name))
               for name in forms.VALUE_FIELDS}
        for index, position in enumerate(self.p.positions):
            for name in forms.POSITION_FIELDS:
                out[f"p:{index}:{name}"] = forms.number_text(getattr(position, name))
        out.update({key: text for key, (text, _) in self.invalid.items()})
        return out

    def field_errors(self) -> dict[str, str]:
        return {key: message for key, (_, message) in self.invalid.items()}

    def blocked(self, action: str) -> list[str]:
        """The fields ``action`` reads that are refused or empty, by their labels."""
        out = []
        uses = forms.ACTION_FIELDS.get(action, ())
        for key, (_, message) in self.invalid.items():
            name = key.split(":")[-1]
            if name in uses or f"*.{name}" in uses:
                out.append(message)
        return out + forms.missing_numbers(self.p, action)

    def _positions_changed(self) -> None:
        """Positions added or removed: their refused texts no longer match a row."""
        self.invalid = {k: v for k, v in self.invalid.items() if not k.startswith("p:")}

    def set_node(self, name: str, node_id: str | None) -> None:
        if name not in NODE_FIELDS:
            raise ValueError(f"field: got {name!r}; allowed: {', '.join(NODE_FIELDS)}")
        setattr(self.p, name, self.node(node_id, NODE_FIELDS[name], name))

    def node(self, node_id: str | None, node_class: str, field: str):
        if not node_id:
            return None
        node = self.scene.GetNodeByID(node_id)
        if node is None or not node.IsA(node_class):
            raise ValueError(f"{field}: got {node_id!r}; allowed: a {node_class} of the scene")
        return node

    def set_site_limits(self, name: str | None) -> None:
        """The plan's site limits file: a JSON file inside the data folder, or none."""
        self.p.siteLimitsFile = str(resolve_inside(self.data_dir, name, field="site limits")
                                    ) if name else ""

    def set_response_fit(self, name: str | None) -> None:
        """The plan's dose-response fit: a JSON file inside the data folder, or none."""
        self.p.responseFit = str(resolve_inside(self.data_dir, name, field="response fit")
                                 ) if name else ""

    def set_camera_file(self, name: str, value: str | None) -> None:
        """A camera file (``tareplanner calibrate``) for the SPECT or the post-treatment
        image: a file inside the data folder (:func:`.files.resolve_inside`), or none. Its
        content is read and checked when the step runs (another nuclide or modality, a NaN
        or negative FWHM: refused by name then)."""
        fields = guided_camera_fields()
        if name not in fields:
            raise ValueError(f"camera file: got {str(name)[:40]!r}; allowed: "
                             + ", ".join(fields))
        setattr(self.p, name, str(resolve_inside(self.data_dir, value, field=fields[name]))
                if value else "")

    def camera_file_names(self) -> dict[str, str | None]:
        """Parameter name -> the chosen camera file relative to the data folder, or None."""
        return {name: (relative_name(self.data_dir, getattr(self.p, name))
                       if getattr(self.p, name) else None) for name in guided_camera_fields()}

    def response_fit_name(self) -> str | None:
        return (relative_name(self.data_dir, self.p.responseFit)
                if self.p.responseFit else None)

    def site_limits_name(self) -> str | None:
        return (relative_name(self.data_dir, self.p.siteLimitsFile)
                if self.p.siteLimitsFile else None)

    def json_files(self) -> list[str]:
        """Relative names of the JSON files of the data folder (not its output), for the site
        limits choice."""
        names = []
        for path in sorted(self.data_dir.rglob("*.json")):
            name = relative_name(self.data_dir, path) if path.resolve().is_relative_to(
                self.data_dir) else None
            if name and not name.startswith(OUTPUT_SUBFOLDER + "/"):
                names.append(name)
        return names[:200]

    def add_position(self) -> None:
        guided.add_position(self.p)
        self._positions_changed()

    def remove_position(self, index: int) -> None:
        if not isinstance(index, int) or isinstance(index, bool):
            raise ValueError(f"position: got {str(index)[:20]!r}; allowed: a row number")
        guided.remove_position(self.p, index)
        self._positions_changed()

    def set_position_field(self, index: int, name: str, value) -> None:
        from ..mrml.parameters import InjectionPosition
        if name not in POSITION_FIELDS:
            raise ValueError(f"position field: got {name!r}; allowed: "
                             + ", ".join(POSITION_FIELDS))
        if not isinstance(index, int) or not 0 <= index < len(self.p.positions):
            raise ValueError(f"position: got {str(index)[:20]!r}; allowed: 1 to "
                             f"{len(self.p.positions)}")
        if name == "cbct":
            value = self.node(value, "vtkMRMLScalarVolumeNode", f"position {index + 1} CBCT")
        elif name in forms.POSITION_FIELDS:
            self.set_text(f"p:{index}:{name}", value)
            return
        else:
            value = convert(InjectionPosition, name, value)
        guided.update_position(self.p, index, **{name: value})
        if name == "goalKind":     # the goal's range depends on its kind: read it again
            self.invalid.pop(f"p:{index}:goalValue", None)

    # ------------------------------------------------------------------ what the page shows
    def panel_titles(self) -> dict[str, str]:
        states = guided.statuses(self.p)
        titles = {}
        for key, title, steps in guided.PANELS:
            if not steps:
                titles[key] = title + ("  [done]" if self.p.ctVolume is not None else "")
            elif len(steps) == 1:
                titles[key] = guided.step_title(title, states[steps[0]])
            else:
                titles[key] = guided.section_title(title, {s: states[s] for s in steps})
        return titles

    def missing(self) -> dict[str, str]:
        """Action -> what it still needs (empty: its button is enabled)."""
        out = {}
        for action in guided.ACTIONS:
            try:
                out[action] = "; ".join(self.blocked(action)
                                        + guided.missing_inputs(self.p, action))
            except ValueError as error:
                out[action] = str(error)
        return out

    def volumes(self, node_class: str = "vtkMRMLScalarVolumeNode") -> list[dict]:
        nodes = self.scene.GetNodesByClass(node_class)
        out = []
        for i in range(nodes.GetNumberOfItems()):
            node = nodes.GetItemAsObject(i)
            if node.GetHideFromEditors() or node.IsA("vtkMRMLLabelMapVolumeNode"):
                continue
            out.append({"title": node.GetName(), "value": node.GetID()})
        return out

    def node_choices(self) -> dict[str, list[dict]]:
        return {cls: self.volumes(cls) for cls in sorted(set(NODE_FIELDS.values()))}

    def field_values(self) -> dict:
        out = {name: getattr(self.p, name) for name in VALUE_FIELDS}
        out.update({name: (node.GetID() if (node := getattr(self.p, name)) is not None
                           else None) for name in NODE_FIELDS})
        return out

    def position_rows(self) -> list[dict]:
        rows = []
        for position in self.p.positions:
            row = {name: getattr(position, name) for name in POSITION_FIELDS}
            row["cbct"] = position.cbct.GetID() if position.cbct is not None else None
            rows.append(row)
        return rows

    def folders(self) -> list[str]:
        return list_folders(self.data_dir)

    def saved_current(self) -> bool:
        """Whether this patient's last Save holds the plan on the page: saved, and nothing
        it saved has changed since (the save step is current)."""
        return bool(self.saved_folder) and \
            guided.statuses(self.p)["save"].state == guided.step_log.CURRENT

    def outputs(self) -> list[str]:
        """Relative names of the files of this patient's last Save while it holds the plan
        on the page; none before a Save, after a new patient or once the plan changed."""
        if not self.saved_current():
            return []
        folder = self.data_dir / self.saved_folder
        # a file being written (an atomic writer's hidden temporary) is not offered
        return sorted(relative_name(self.data_dir, f) for f in folder.rglob("*")
                      if f.is_file() and not any(part.startswith(".") for part in
                                                 f.relative_to(folder).parts))

    def report_name(self) -> str | None:
        """The report of the saved plan on the page, or None."""
        name = f"{self.saved_folder}/report.pdf"
        return name if name in self.outputs() else None

    def plan_record(self) -> dict | None:
        return record_from_text_node(self.p.planRecord)

    def plan_rows(self) -> list[dict]:
        record = self.plan_record()
        if record is None:
            return []
        rows = []
        for position in record["positions"]:
            goal = ", ".join(forms.goal_text(k, v)
                             for k, v in (position.get("goal") or {}).items())
            tumours = "; ".join(f"{t['name']} {t['dose_gy']:.0f} Gy"
                                for t in position.get("tumours") or [])
            rows.append({"position": position["name"], "goal": goal,
                         "activity_gbq": f"{position['activity_gbq']:.3f}",
                         "normal_dose_gy": f"{position['normal_dose_gy']:.1f}",
                         "perfused_dose_gy": f"{position['perfused_dose_gy']:.1f}",
                         "tumours": tumours,
                         "limited_by": limited_by_text(position, record)})
        return rows

    def plan_totals(self) -> str:
        record = self.plan_record()
        if record is None:
            return ""
        return (f"total activity {record['total_activity_gbq']:.3f} GBq; lung dose "
                f"{record['lung_dose_gy']:.2f} Gy (cumulative "
                f"{record['lung_dose_cumulative_gy']:.2f} Gy); "
                f"{record['product']['display_name']}, {record['method']}")

    def warnings(self) -> list[dict]:
        record = self.plan_record()
        if record is None:
            return []
        return [{"code": w["code"], "message": w["message"]} for w in record["warnings"]]

    def dose_report(self, which: str = "planned") -> dict | None:
        node = self.p.plannedDoseReport if which == "planned" else self.p.deliveredDoseReport
        run = record_from_text_node(node)
        return (run or {}).get("report")
