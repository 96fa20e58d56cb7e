"""The guided steps of both views (the Slicer module, the web application), on one parameter
object.

Data, registration, segmentation, LSF and TNR, plan, treatment day (written directive,
administration), verification, save.

``p`` holds the parameters declared once in :mod:`.parameters`: the Slicer module's parameter
node (built from that declaration), or the plain :class:`~.parameters.Parameters` the web
application and the headless tests use. The injection positions are a list of any length
(``p.positions``), changed through :func:`add_position`, :func:`update_position` and
:func:`remove_position`; :func:`missing_inputs` says which buttons can be pressed.

Every step reads its inputs from ``p``, calls the workflow functions, keeps its results in the
scene (text nodes with the records, dose volumes, tables, charts, isodose models, all tagged
with the step that made them and replaced when the step runs again) and records its inputs'
digests in ``p.stepLog`` so that :func:`statuses` can tell which steps are outdated. Each step
returns the text the panel shows. Bad input raises the core's named errors (ValueError subclasses).
"""

from __future__ import annotations

from .. import steps as step_log
from ..physics.solver import GOAL_KINDS
from . import attributes
from . import fingerprints as fp
from . import workflow
from .parameters import GOAL_FIELDS, POSITION_FIELDS, READING_FIELDS
from .parameters import InjectionPosition, Parameters  # noqa: F401  (the views' parameters)
from .results import record_from_text_node, record_text_node

STEP_TAG = attributes.STEP
#: the camera-file fields as the panels and their error messages name them
SPECT_CAMERA_FIELD = "SPECT camera file"
POST_CAMERA_FIELD = "post-treatment camera file"
STRUCTURE_ROLES = ("liver", "tumour", "lung", "territory:")

#: the panel sections of both views (Slicer module, web): key, title, the steps it holds
PANELS = (("data", "1. Data", ()),
          ("registration", "2. Registration", ("registration",)),
          ("segmentation", "3. Segmentation", ("segmentation",)),
          ("measurement", "4. LSF and TNR", ("measurement",)),
          ("plan", "5. Plan", ("plan",)),
          ("treatment day", "6. Treatment day", ("directive", "administration")),
          ("verification", "7. Verification (after treatment)", ("verification",)),
          ("save", "8. Save", ("save",)))


# ----------------------------------------------------------------------------- inputs
def positions(p, *, required: bool = True) -> list[tuple[int, str, object]]:
    """(number from 1, name, CBCT node) of the positions that have a name and a CBCT."""
    out = []
    for number, position in enumerate(p.positions, start=1):
        name = (position.name or "").strip()
        if name and position.cbct is not None:
            out.append((number, name, position.cbct))
    names = [name for _, name, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"positions: names must differ; got {', '.join(names)}")
    if required and not out:
        raise ValueError("positions: give at least one position name with its CBCT")
    return out


def new_position(p, **values):
    """A position of the element type ``p.positions`` holds (a dataclass headless, the
    parameterPack in Slicer), with ``values`` and the declared defaults."""
    return p.position_type(**values)


def set_positions(p, new) -> None:
    """Replace the whole list (the Slicer parameter node sees a whole-list assignment)."""
    p.positions = [position if isinstance(position, p.position_type)
                   else new_position(p, **position) for position in new]


def _position_values(position) -> dict:
    return {name: getattr(position, name) for name in POSITION_FIELDS}


def add_position(p, **values) -> int:
    """Append a position; returns its index (from 0)."""
    set_positions(p, [*p.positions, new_position(p, **values)])
    return len(p.positions) - 1


def remove_position(p, index: int) -> None:
    """Remove the position at ``index`` (from 0)."""
    current = list(p.positions)
    if not 0 <= index < len(current):
        raise ValueError(f"position: got {index + 1}; allowed: 1 to {len(current)}")
    del current[index]
    set_positions(p, current)


def update_position(p, index: int, **values) -> None:
    """Change fields of the position at ``index`` (from 0), e.g. ``goalValue=40.0``."""
    current = list(p.positions)
    if not 0 <= index < len(current):
        raise ValueError(f"position: got {index + 1}; allowed: 1 to {len(current)}")
    unknown = sorted(set(values) - set(POSITION_FIELDS))
    if unknown:
        raise ValueError(f"position field: got {', '.join(unknown)}; allowed: "
                         + ", ".join(POSITION_FIELDS))
    merged = _position_values(current[index]) | values
    current[index] = new_position(p, **merged)
    set_positions(p, current)


def _require(p, *names: str) -> None:
    for name in names:
        if getattr(p, name) is None:
            raise ValueError(f"{name}: select a node")


def _goal(position, number: int) -> dict:
    kind = position.goalKind
    if kind not in GOAL_KINDS:
        raise ValueError(f"position {number} goal: got {kind!r}; allowed: "
                         f"{', '.join(GOAL_KINDS)}")
    return workflow.goal_object(kind, position.goalValue)


def goals(p) -> dict[str, dict]:
    """Position name -> case goal, for the positions of the measurement record."""
    measurement = record_from_text_node(p.measurementRecord) or {"positions": []}
    by_name = {(position.name or "").strip(): (number, position)
               for number, position in enumerate(p.positions, start=1)}
    out = {}
    for measured in measurement["positions"]:
        if measured["name"] not in by_name:
            raise ValueError(f"goal of {measured['name']}: the position is no longer in step 2; "
                             "measure again (step 4)")
        number, position = by_name[measured["name"]]
        out[measured["name"]] = _goal(position, number)
    return out


def manual_values(p) -> tuple[float | None, dict[str, float]]:
    """(manual LSF as a fraction or None, manual TNR per tumour)."""
    from ..imaging.measure import parse_manual_tnr
    lsf = p.manualLsfPercent / 100.0 if p.manualLsf else None
    return lsf, parse_manual_tnr(p.manualTnr or "", "manual TNR")


def step_inputs(p, step: str) -> dict[str, str]:
    """Digests of what ``step`` reads, as it stands now."""
    d, v = fp.node_digest, fp.value_digest
    slots = positions(p, required=False)
    if step == "registration":
        inputs = {"CT": d(p.ctVolume), "liver": fp.segments_digest(p.segmentation, "liver"),
                  "diagnostic CT": d(p.diagnosticCt, with_transform=False)}
        inputs.update({f"CBCT {name}": d(cbct, with_transform=False) for _, name, cbct in slots})
        return inputs
    if step == "segmentation":
        inputs = {"CT": d(p.ctVolume), "liver": fp.segments_digest(p.segmentation, "liver")}
        inputs.update({f"CBCT placement {name}": d(cbct) for _, name, cbct in slots})
        return inputs
    if step == "measurement":
        return {"CT": d(p.ctVolume), "SPECT": d(p.spectVolume),
                "segments": fp.segments_digest(p.segmentation, *STRUCTURE_ROLES),
                "lung-base margin": v(p.lungBaseMarginMm),
                SPECT_CAMERA_FIELD: _file_digest(p.spectCameraFile)}
    if step == "plan":
        return {"measurement": d(p.measurementRecord), "product": v(p.product),
                "method": v(p.method), "treatment time": v(p.treatmentTime),
                "scenario": v((p.treatmentIntent, p.histology, p.bilirubinMgDl,
                               p.liverCompromised, p.priorTreatment,
                               p.favourableLiverFunction)),
                "goals": v([((position.name or "").strip(),
                             *(getattr(position, f) for f in GOAL_FIELDS))
                            for position in p.positions]),
                "manual values": v((p.manualLsf, p.manualLsfPercent, p.manualTnr)),
                "voxel dosimetry": v(p.voxelDosimetry), "isodose levels": v(p.isodoseLevelsGy),
                "site limits": _file_digest(p.siteLimitsFile),
                "response fit": (p.responseFit if (p.responseFit or "").startswith(
                    "published:") else _file_digest(p.responseFit))}
    if step == "directive":
        return {"plan": d(p.planRecord)}
    if step == "administration":
        inputs = {"directive": d(p.directiveRecord),
                  "site tolerance": v(p.siteTolerancePercent)}
        inputs.update({f"{name} readings": v(_readings(position)) for _, name, position
                       in _named_positions(p)})
        return inputs
    if step == "verification":
        return {"plan": d(p.planRecord), "planned dose": d(p.plannedDoseReport),
                "administration": d(p.administrationRecord),
                "post-treatment image": d(p.postTreatmentVolume),
                "segments": fp.segments_digest(p.segmentation, *STRUCTURE_ROLES),
                "post-treatment settings": v((p.postTreatmentKind, p.administrationTime,
                                              p.acquisitionTime, p.administeredActivityGbq)),
                POST_CAMERA_FIELD: _file_digest(p.postTreatmentCameraFile)}
    if step == "save":
        return {"plan": d(p.planRecord), "measurement": d(p.measurementRecord),
                "directive": d(p.directiveRecord), "administration": d(p.administrationRecord),
                "planned dose": d(p.plannedDoseReport),
                "delivered dose": d(p.deliveredDoseReport), "folder": v(p.outputFolder),
                "DICOM export": v(p.exportDicom)}
    raise ValueError(f"step: got {step!r}; allowed: {', '.join(step_log.STEPS)}")


#: the actions (buttons) of both views, in panel order
ACTIONS = ("load", "registration", "lungs", "territories", "check segments", "measurement",
           "plan", "directive", "administration", "verification", "save")


def missing_inputs(p, action: str) -> list[str]:
    """What ``action`` still needs, in words, empty when its button can be pressed (both views
    enable a button only when this is empty and show it as the tooltip otherwise)."""
    missing = []

    def need(name, words):
        if getattr(p, name) is None:
            missing.append(words)

    if action == "load":
        return []
    try:
        named = positions(p, required=False)
    except ValueError as error:          # two positions of the same name
        missing.append(str(error))
        named = None
    placed = [name for _, name, cbct in named or ()
              if cbct.GetParentTransformNode() is not None]
    if action in ("registration", "lungs", "territories", "check segments", "measurement",
                  "verification"):
        need("ctVolume", "the planning CT (step 1)")
        need("segmentation", "the segmentation (step 1)")
    if action == "registration" and named == []:
        missing.append("at least one injection position with a name and its CBCT (step 1)")
    if action == "territories" and not placed:
        missing.append("a registered CBCT (step 2)")
    if action == "measurement":
        need("spectVolume", "the MAA or Ho-166 scout SPECT (step 1)")
    if action in ("plan",) and p.measurementRecord is None:
        missing.append("the LSF and TNR measurement (step 4)")
    if action in ("directive", "verification", "save") and p.planRecord is None:
        missing.append("the plan (step 5)")
    if action == "administration":
        if p.directiveRecord is None:
            missing.append("the written directive (step 6)")
        missing += [f"{name}: the vial reading and its time, and the administration time"
                    for _, name, position in _named_positions(p)
                    if not (_entered(position.vialGbq) and position.vialGbq
                            and (position.vialTime or "").strip()
                            and (position.administeredAt or "").strip())]
        missing += [f"{name}: the residual activity (0 when none is left)"
                    for _, name, position in _named_positions(p)
                    if not _entered(position.residualGbq)]
    if action in ("directive", "administration") and p.planRecord is not None:
        missing += _outdated_records(p, action)
    if action == "verification":
        need("postTreatmentVolume", "the post-treatment PET or SPECT (step 7)")
    if action == "save" and not (p.outputFolder or "").strip():
        missing.append("an output folder")
    missing += _other_patients(p, action, named)
    if action not in ACTIONS:
        raise ValueError(f"action: got {action!r}; allowed: {', '.join(ACTIONS)}")
    return missing


def _other_patients(p, action: str, named) -> list[str]:
    """Series of another patient than the planning CT's (their DICOM Patient IDs differ),
    named: the CBCTs and the diagnostic CT before registration, the SPECT before the
    measurement, the post-treatment image before verification."""
    from .dicom_header import patient_mismatches
    if p.ctVolume is None:
        return []
    others = {"registration": [(f"CBCT of {name}", cbct) for _, name, cbct in named or ()]
              + [("diagnostic CT", p.diagnosticCt)],
              "measurement": [("MAA / Ho-166 scout SPECT", p.spectVolume)],
              "verification": [("post-treatment image", p.postTreatmentVolume)]}
    return patient_mismatches(p.ctVolume, others.get(action, []))


def _outdated_records(p, action: str) -> list[str]:
    """The treatment day is written from the plan on the panel only: the directive is
    refused while the plan is outdated, the administration while the plan or the directive
    is (each named with what changed)."""
    try:
        states = statuses(p)
    except ValueError:           # two positions of the same name: said by missing_inputs
        return []
    out = []
    if states["plan"].state == step_log.OUTDATED:
        out.append(f"a current plan (the plan is outdated: {states['plan'].reason}; plan "
                   "again, step 5)")
    if action == "administration" and p.directiveRecord is not None and \
            states["directive"].state == step_log.OUTDATED:
        out.append(f"a current written directive (it is outdated: "
                   f"{states['directive'].reason}; write it again, step 6)")
    return out


def run(scene, p, action: str, **options) -> str:
    """Run one action (a button of either view) and return the text its panel shows. An
    action whose inputs are missing is refused, naming them (the views disable its button
    then, this is the guard behind it). ``options``: the synthetic patient's ``positions``
    and ``size`` for 'load'."""
    if action not in ACTIONS:
        raise ValueError(f"action: got {action!r}; allowed: {', '.join(ACTIONS)}")
    missing = missing_inputs(p, action)
    if missing:
        raise ValueError(f"{action}: needs " + "; ".join(missing))
    return _ACTION_STEPS[action](scene, p, **options)


def _load_text(scene, p, positions: int = 2, size: str = "small") -> str:
    patient = load_synthetic_patient(scene, p, size, positions)
    lines = [f"CT: {patient.ct.GetName()}", f"SPECT: {patient.spect.GetName()}",
             f"segmentation: {patient.segmentation.GetName()} (liver and tumours)"]
    lines += [f"position {name}: CBCT {node.GetName()}" for name, node in patient.cbcts.items()]
    if patient.pet is not None:
        lines.append(f"post-treatment PET: {patient.pet.GetName()}")
    return "synthetic patient loaded\n" + "\n".join(lines)


def missing_text(p, action: str) -> str:
    """The tooltip of an action's button: what it needs, or what it does when ready."""
    missing = missing_inputs(p, action)
    return ("needs " + "; ".join(missing)) if missing else ""


def _named_positions(p) -> list[tuple[int, str, object]]:
    """(number from 1, name, position) of the positions that have a name (CBCT or not)."""
    return [(number, name, position) for number, position in enumerate(p.positions, start=1)
            if (name := (position.name or "").strip())]


def _entered(value) -> bool:
    """Whether a numeric reading was entered: a number, not the missing NaN (nor None)."""
    return isinstance(value, (int, float)) and value == value


def _readings(position) -> tuple:
    return tuple(getattr(position, field) for field in READING_FIELDS)


def _file_digest(path: str) -> str:
    import hashlib
    from pathlib import Path
    if not (path or "").strip():
        return ""
    file = Path(path)
    return hashlib.blake2b(file.read_bytes(), digest_size=16).hexdigest() if file.is_file() \
        else f"missing {path}"


def _done(p, step: str) -> None:
    log = step_log.load_log(p.stepLog)
    p.stepLog = step_log.dump_log(step_log.record_run(log, step, step_inputs(p, step)))


def statuses(p) -> dict[str, step_log.StepStatus]:
    """Status of every step: not run, current, or outdated with the inputs that changed."""
    return step_log.statuses(step_log.load_log(p.stepLog),
                             {step: step_inputs(p, step) for step in step_log.STEPS})


def _replace_step_nodes(scene, tag: str, nodes) -> None:
    """Tag ``nodes`` as made by ``tag``, removing the nodes an earlier run made."""
    keep = {node.GetID() for node in nodes}
    for node in list(_tagged(scene, tag)):
        if node.GetID() not in keep:
            scene.RemoveNode(node)
    for node in nodes:
        node.SetAttribute(STEP_TAG, tag)


def _tagged(scene, tag: str):
    collection = scene.GetNodes()
    for index in range(collection.GetNumberOfItems()):
        node = collection.GetItemAsObject(index)
        if node.GetAttribute(STEP_TAG) == tag:
            yield node


def _chart_nodes(dvh) -> list:
    table, chart, series = dvh
    return [table, chart, *series]


# ----------------------------------------------------------------------------- steps
def register_positions(scene, p) -> str:
    """Step 2: every position's CBCT (and the diagnostic CT, if chosen) registered to the CT,
    each placed under its own transform node (an earlier one of this step is replaced)."""
    _require(p, "ctVolume", "segmentation")
    moving = [(name, cbct) for _, name, cbct in positions(p)]
    if p.diagnosticCt is not None:
        moving.append(("diagnostic CT", p.diagnosticCt))
    for name, node in moving:
        old = node.GetParentTransformNode()
        node.SetAndObserveTransformNodeID(None)
        if old is not None and old.GetAttribute(STEP_TAG) == "registration":
            scene.RemoveNode(old)
    # side by side in worker processes, the CT and its liver mask made once
    placed = workflow.register_all_to_ct(scene, p.ctVolume, [node for _, node in moving],
                                         p.segmentation)
    lines = []
    for (name, _), (transform, result) in zip(moving, placed):
        transform.SetAttribute(STEP_TAG, "registration")
        angles = ", ".join(f"{a:.1f}" for a in result.angles_deg)
        shift = ", ".join(f"{t:.1f}" for t in result.transform.GetTranslation())
        lines.append(f"{name}: rotation ({angles}) deg, translation ({shift}) mm, "
                     f"MI {result.metric_before:.3f} -> {result.metric_after:.3f}")
        lines += [f"{name}: warning [{w['code']}] {w['message']}" for w in result.warnings]
    _done(p, "registration")
    return "\n".join(lines)


def check_segments(p) -> str:
    """Step 3: segments by role with their volumes, the roles still missing, and the geometry
    checks (tumour outside its territory or the liver, overlapping territories, territory
    outside the liver)."""
    import numpy as np

    from ..imaging.segmentation import assign_tumours, geometry_checks
    from .segmentations import masks_from_segmentation
    from .workflow import roles
    _require(p, "ctVolume", "segmentation")
    masks = masks_from_segmentation(p.segmentation.GetScene(), p.segmentation, p.ctVolume)
    spacing = p.ctVolume.GetSpacing()
    voxel_ml = spacing[0] * spacing[1] * spacing[2] / 1000.0
    by_role: dict[str, list[str]] = {}
    for name, role in roles(p.segmentation).items():
        by_role.setdefault(role, []).append(name)
    lines = []
    for role in sorted(by_role):
        for name in by_role[role]:
            lines.append(f"{role:<28}{name:<24}{np.count_nonzero(masks[name]) * voxel_ml:9.1f} mL")
    missing = [r for r in ("liver", "tumour", "lung") if r not in by_role]
    missing += [f"territory:{name}" for _, name, _ in positions(p, required=False)
                if f"territory:{name}" not in by_role]
    if missing:
        lines.append("missing roles: " + ", ".join(missing))
    if "liver" in by_role:
        liver = np.any([masks[n] for n in by_role["liver"]], axis=0)
        tumours = {n: masks[n] for n in by_role.get("tumour", [])}
        territories = {r.split(":", 1)[1]: np.any([masks[n] for n in names], axis=0)
                       for r, names in by_role.items() if r.startswith("territory:")}
        assignment, warnings = assign_tumours(tumours, territories) if territories else ({}, [])
        warnings += geometry_checks(liver, tumours, territories, assignment)
        lines += [f"tumour {t} -> territory {a}" for t, a in assignment.items()]
        lines += [f"warning [{w['code']}] {w['message']}" for w in warnings]
    return "\n".join(lines)


def add_lungs(p) -> str:
    """Step 3 helper: lungs from the CT as a segment with role 'lung' (replacing an earlier
    one)."""
    _require(p, "ctVolume", "segmentation")
    workflow.add_lungs_from_ct(p.ctVolume, p.segmentation)
    _done(p, "segmentation")
    return ("lungs added (role: lung); edit them in the Segment Editor if needed\n\n"
            + check_segments(p))


def add_territories(p) -> str:
    """Step 3 helper: each position's perfused territory from its enhanced CBCT."""
    _require(p, "ctVolume", "segmentation")
    names = []
    for _, name, cbct in positions(p):
        if cbct.GetParentTransformNode() is None:
            raise ValueError(f"{name}: register its CBCT first (step 2)")
        names.append(name)
    workflow.add_territories_from_cbcts(
        p.ctVolume, [(cbct, name, None) for _, name, cbct in positions(p)], p.segmentation)
    _done(p, "segmentation")
    return (f"territories added for {', '.join(names)} (role: territory:<position>); "
            "edit them in the Segment Editor if needed\n\n" + check_segments(p))


def spect_resolution(p) -> dict | None:
    """The scout SPECT's camera file read as ``measure --camera`` reads it (NaN, negative or
    missing FWHM refused, naming the field); None without one (the assumed default). Its
    modality and radionuclide are checked against the SPECT by the measurement itself."""
    path = (p.spectCameraFile or "").strip()
    if not path:
        return None
    from ..imaging.camera_file import read_resolution_file
    return read_resolution_file(path, SPECT_CAMERA_FIELD)


def post_treatment_resolution(p, record: dict) -> dict | None:
    """The post-treatment image's camera file read and checked as ``dose --camera`` does it
    (another nuclide than the treatment's or another modality than the image kind's refused
    by name); None without one (the assumed default, with a warning)."""
    path = (p.postTreatmentCameraFile or "").strip()
    if not path:
        return None
    from ..dosimetry.post_treatment_pvc import post_treatment_resolution as read
    return read(path, workflow._nuclide(record), p.postTreatmentKind, POST_CAMERA_FIELD)


def measure(scene, p) -> str:
    """Step 4: LSF, TNR and volumes; the measurement record is kept in a text node."""
    from ..records.plan_text import measurement_summary
    _require(p, "ctVolume", "spectVolume", "segmentation")
    record = workflow.measure_from_nodes(p.ctVolume, p.spectVolume, p.segmentation,
                                         lung_base_margin_mm=p.lungBaseMarginMm,
                                         resolution=spect_resolution(p),
                                         camera_field=SPECT_CAMERA_FIELD)
    p.measurementRecord = record_text_node(scene, record, "TAREPlanner measurement",
                                           p.measurementRecord)
    _done(p, "measurement")
    return measurement_summary(record)


def scenario_of(p) -> dict | None:
    """The scenario of the panel as the case holds it (None when neither intent nor histology
    is chosen; then only liver_compromised). The bilirubin text is a number in mg/dL or
    empty; the case parser refuses anything else with the field named."""
    from .parameters import NOT_GIVEN
    scenario: dict = {}
    intent, histology = ((value or "").strip() for value in (p.treatmentIntent, p.histology))
    intent, histology = ("" if intent == NOT_GIVEN else intent,
                         "" if histology == NOT_GIVEN else histology)
    if intent or histology:
        scenario.update(intent=intent or None, histology=histology or None,
                        prior_treatment=bool(p.priorTreatment))
        if p.favourableLiverFunction:
            scenario["favourable_liver_function"] = True
        text = (p.bilirubinMgDl or "").strip()
        if text:
            try:
                scenario["bilirubin_mg_dl"] = float(text)
            except ValueError:
                from ..errors import FieldValueError
                raise FieldValueError("scenario.bilirubin_mg_dl", text,
                                      "total bilirubin in mg/dL, a number from 0 to 50, or "
                                      "empty") from None
    if p.liverCompromised:
        scenario["liver_compromised"] = True
    return scenario or None


#: goal kind -> how a suggestion reads it
_SUGGESTION_WORDS = {"tumour_dose_gy": "tumour dose", "perfused_dose_gy": "perfused dose",
                     "normal_dose_gy": "normal-liver dose"}


def goal_suggestions(p) -> list[str]:
    """The goals the panel's scenario suggests (EANM 2022 targets and prescriptions for the
    product, intent and histology; the measured volumes give the hepatic reserve), each with
    its source and level of evidence: offered before planning, never applied by themselves.
    Empty without a scenario; one line saying why when the scenario cannot be read."""
    from .. import catalogue
    from ..guidelines import Facts, parse_scenario, suggestions
    try:
        scenario = scenario_of(p)
        if scenario is None:
            return []
        compromised = bool(scenario.pop("liver_compromised", False))
        parsed = parse_scenario(scenario, liver_compromised=compromised)
        site, label = (catalogue.read_site_limits(p.siteLimitsFile.strip())
                       if (p.siteLimitsFile or "").strip() else (None, ""))
    except ValueError as error:
        return [f"no suggestions: {error}"]
    reserve = None
    measurement = record_from_text_node(p.measurementRecord)
    if measurement is not None:
        liver = (measurement.get("volumes_ml") or {}).get("liver")
        perfused = sum(q.get("perfused_volume_ml", 0.0)
                       for q in measurement.get("positions", []))
        if liver:
            reserve = max(0.0, 1.0 - perfused / liver)
    facts = Facts(bilirubin_mg_dl=parsed.bilirubin_mg_dl, hepatic_reserve_fraction=reserve,
                  compromised_or_pretreated=compromised or parsed.prior_treatment,
                  favourable_liver_function=parsed.favourable_liver_function)
    lines = []
    for g in suggestions(p.product, parsed, facts, site, label):
        (kind, value), = g["goal"].items()
        condition = f"; {g['condition']}" if g["condition"] else ""
        lines.append(f"{_SUGGESTION_WORDS.get(kind, kind)} {value:g} Gy ({g['printed']}"
                     f"{condition}; {g['source']}, LOE {g['loe']}; {g['kind']})")
    return lines


def plan(scene, p) -> str:
    """Step 5: the plan (per-position goals, manual values recorded as such) as a record and a
    table; with voxel dosimetry the predictive dose volume, indices, DVH chart and isodose
    display."""
    from ..records.plan_text import plan_summary
    from .isodose import (default_levels_gy, dose_colour_table, isodose_model_nodes,
                          parse_levels_gy, show_dose_with_levels)
    measurement = record_from_text_node(p.measurementRecord)
    if measurement is None:
        raise ValueError("measure LSF and TNR first (step 4)")
    manual_lsf, manual_tnr = manual_values(p)
    site_limits, site_label = (None, "")
    if (p.siteLimitsFile or "").strip():
        from .. import catalogue
        site_limits, site_label = catalogue.read_site_limits(p.siteLimitsFile.strip())
    record, table = workflow.plan_from_measurement(
        scene, measurement, product=p.product, method=p.method, goals=goals(p),
        treatment_time=p.treatmentTime, manual_lung_shunt_fraction=manual_lsf,
        manual_tnr=manual_tnr, site_limits=site_limits, site_limits_label=site_label,
        scenario=scenario_of(p))
    nodes = [table]
    if (p.responseFit or "").strip():
        from ..records.response_record import with_response
        from .response_nodes import response_chart_nodes
        record = with_response(record, p.responseFit.strip())
        nodes += response_chart_nodes(scene, record["dose_response"])
    p.planRecord = record_text_node(scene, record, "TAREPlanner plan", p.planRecord)
    text = plan_summary(record)
    if p.voxelDosimetry:
        _require(p, "ctVolume", "spectVolume", "segmentation")
        (volume, indices, dvh), report, dose_record = workflow.predictive_dose_nodes(
            scene, p.ctVolume, p.spectVolume, p.segmentation, record)
        p.plannedDoseReport = record_text_node(
            scene, {"schema": "tareplanner.dose-run/1", "record": dose_record,
                    "report": report}, "TAREPlanner planned dose", p.plannedDoseReport)
        levels = (parse_levels_gy(p.isodoseLevelsGy) if (p.isodoseLevelsGy or "").strip()
                  else default_levels_gy(record))
        nodes += [volume, indices, *_chart_nodes(dvh)]
        if levels:
            colours = dose_colour_table(scene, levels, name="TAREPlanner planned dose levels")
            show_dose_with_levels(volume, colours)
            nodes += [colours, *isodose_model_nodes(scene, volume, levels)]
        text += "\n\nVoxel dosimetry (planned):\n" + _indices_text(report)
        if levels:
            text += "\nisodose levels: " + ", ".join(f"{v:g}" for v in levels) + " Gy"
    elif p.plannedDoseReport is not None:
        p.plannedDoseReport.SetText("")
    _replace_step_nodes(scene, "plan", nodes)
    _done(p, "plan")
    return text


def _indices_text(report: dict) -> str:
    lines = [f"{'structure':<24}{'mean':>8}{'D70':>8}{'D95':>8}{'max':>8}  Gy"]
    lines += [f"{name[:24]:<24}{r['mean_gy']:>8.1f}{r['D70']:>8.1f}{r['D95']:>8.1f}"
              f"{r['max_gy']:>8.1f}" for name, r in report.items()]
    return "\n".join(lines)


def written_directive(scene, p) -> str:
    """Treatment day, first part: the written directive generated from the plan record (per
    treatment site the prescribed activity with its planned doses, the medical-event
    criterion, blank signature lines), kept in a text node like the plan record."""
    from ..records.directive import directive_from_plan, directive_lines
    record = record_from_text_node(p.planRecord)
    if record is None:
        raise ValueError("plan first (step 5)")
    directive = directive_from_plan(record)
    p.directiveRecord = record_text_node(scene, directive, "TAREPlanner written directive",
                                         p.directiveRecord)
    _done(p, "directive")
    return "\n".join(directive_lines(directive))


def administration_readings(p, directive: dict) -> list[dict]:
    """The readings list of ``records.administration`` from the panel: for each treatment site
    of the directive, the position of that name gives one vial reading, one residual
    reading (none when its time is empty) and the administration time."""
    from ..errors import FieldValueError
    by_name = {name: (number, position) for number, name, position in _named_positions(p)}
    out = []
    for site in directive["positions"]:
        name = site["treatment_site"]
        if name not in by_name:
            raise FieldValueError(f"readings of {name}", None,
                                  "a position (step 2) named like each treatment site of the "
                                  "directive: " + ", ".join(s["treatment_site"]
                                                            for s in directive["positions"]))

        number, position = by_name[name]

        def get(field, position=position):
            return getattr(position, field)
        label = f"position {number} ({name})"
        vial_gbq = get("vialGbq")
        if not (isinstance(vial_gbq, (int, float)) and vial_gbq > 0):
            raise FieldValueError(f"{label} vial activity", vial_gbq,
                                  "the dose-calibrator reading of the vial before the "
                                  "administration, > 0 GBq")
        vial_time = get("vialTime")
        workflow._timestamp(vial_time, f"{label} vial time")
        administered_at = get("administeredAt")
        workflow._timestamp(administered_at, f"{label} administration time")
        residual = []
        if not _entered(get("residualGbq")):
            raise FieldValueError(f"{label} residual activity", "empty",
                                  "the dose-calibrator reading of the residual in GBq "
                                  "(0 when none is left)")
        if (get("residualTime") or "").strip():
            workflow._timestamp(get("residualTime"), f"{label} residual time")
            residual.append({"activity_gbq": float(get("residualGbq")),
                             "time": get("residualTime").strip()})
        elif get("residualGbq"):
            raise FieldValueError(f"{label} residual time", get("residualTime"),
                                  "the time of the residual reading (ISO 8601 with its UTC "
                                  "offset), or no residual activity")
        out.append({"treatment_site": name,
                    "vial": [{"activity_gbq": float(vial_gbq), "time": vial_time.strip()}],
                    "residual": residual, "administration_time": administered_at.strip()})
    return out


def administer(scene, p) -> str:
    """Treatment day, second part: the administration record from the dose-calibrator
    readings of each treatment site (delivered activity at the administration time, decay
    corrected, less the residual) checked against the written directive: the medical-event
    criterion and the site's own tolerance. Kept in a text node; the verification then uses
    its delivered total."""
    from ..errors import FieldValueError
    from ..records.administration import administration_lines, administration_record
    directive = record_from_text_node(p.directiveRecord)
    if directive is None:
        raise ValueError("write the directive first (step 6)")
    tolerance = p.siteTolerancePercent
    if not (isinstance(tolerance, (int, float)) and 0 <= tolerance <= 100):
        raise FieldValueError("site tolerance (%)", tolerance, "0 (none) to 100 %")
    record = administration_record(directive, administration_readings(p, directive),
                                   site_tolerance_fraction=tolerance / 100.0 or None,
                                   confirm_reason=p.confirmReadingsReason or None)
    p.administrationRecord = record_text_node(scene, record, "TAREPlanner administration",
                                              p.administrationRecord)
    _done(p, "administration")
    return "\n".join(administration_flags(record) + [""] + administration_lines(record))


def administration_flags(record: dict) -> list[str]:
    """The lines to read first: each site that is a medical event or beyond the site's
    tolerance, or that none is."""
    criterion = record["criterion"]
    lines = []
    for s in record["sites"]:
        if s["medical_event"]:
            lines.append(f"MEDICAL EVENT: {s['treatment_site']} delivered "
                         f"{s['delivered_activity_gbq']:.3f} GBq, {s['deviation_fraction']:+.1%}"
                         f" from the prescribed {s['prescribed_activity_gbq']:.3f} GBq "
                         f"({criterion['relative_deviation']:.0%} or more: "
                         f"{criterion['source']})")
        elif s["beyond_site_tolerance"]:
            lines.append(f"BEYOND SITE TOLERANCE: {s['treatment_site']} "
                         f"{s['deviation_fraction']:+.1%} (tolerance "
                         f"{criterion['site_tolerance_fraction']:.0%})")
    if not lines:
        lines.append(f"No medical event: every site within "
                     f"{criterion['relative_deviation']:.0%} of its prescribed activity")
    return lines


def _delivered_activity(p, record: dict) -> tuple[float | None, float | None, str | None]:
    """(administered activity, residual fraction, its source) for the verification: the
    administration's delivered total with no further residual (the record subtracted it)
    when the administration step has run, else the panel's value (or the plan's)."""
    from ..errors import FieldValueError
    administration = record_from_text_node(p.administrationRecord)
    if administration is None:
        return p.administeredActivityGbq or None, None, None
    from ..records.chain import check_parent
    # one check of the record chain for the command line, the module and the web page
    check_parent(administration.get("directive") or administration,
                 "the administration in the scene (its directive)", "plan", record,
                 "the plan of this scene: write the directive and record the "
                 "administration again (step 6)")
    if p.administeredActivityGbq:
        raise FieldValueError("administered activity (GBq)", p.administeredActivityGbq,
                              "0 when the administration is recorded (its delivered total is "
                              "used)")
    total = administration["total_delivered_activity_gbq"]
    return float(total), 0.0, "delivered total of the administration record"


def _activity_check_text(check: dict) -> str:
    """The delivered-activity check in the report's words."""
    from ..records.report_tables import administered_text
    if not check.get("applicable"):
        return f"Delivered-activity check: not applicable ({check.get('reason', '')})"
    verdict = ("within" if check["within_tolerance"] else "BEYOND")
    return (f"Delivered-activity check: the image holds {check['image_total_gbq']:.3f} GBq at "
            f"administration ({check['inside_liver_and_lungs_gbq']:.3f} GBq in liver and "
            f"lungs) against {administered_text(check)}: {check['relative_difference']:+.1%}, "
            f"{verdict} the ±{check['tolerance']:.0%} tolerance")


def verify(scene, p) -> str:
    """Step 7: delivered dose from the post-treatment PET or SPECT, its DVH, the change
    against the planned dose, and the activity in the image against the delivered activity
    (the administration record's total when it exists, else the plan's activity)."""
    _require(p, "ctVolume", "segmentation", "postTreatmentVolume")
    record = record_from_text_node(p.planRecord)
    if record is None:
        raise ValueError("plan first (step 5)")
    administered, residual, source = _delivered_activity(p, record)
    resolution = post_treatment_resolution(p, record)
    planned = (record_from_text_node(p.plannedDoseReport) or {}).get("report")
    (volume, indices, dvh), delivered, comparison, post = workflow.verification_nodes(
        scene, p.ctVolume, p.postTreatmentVolume, p.segmentation, record,
        kind=p.postTreatmentKind, administration_time=p.administrationTime,
        acquisition_time=p.acquisitionTime, administered_gbq=administered,
        residual_fraction=residual, administered_source=source, planned_report=planned,
        resolution=resolution)
    p.deliveredDoseReport = record_text_node(
        scene, {"schema": "tareplanner.dose-run/1", "report": delivered,
                "post_treatment": post, "comparison": comparison},
        "TAREPlanner delivered dose", p.deliveredDoseReport)
    _replace_step_nodes(scene, "verification", [volume, indices, *_chart_nodes(dvh)])
    _done(p, "verification")
    text = "Delivered dose:\n" + _indices_text(delivered)
    if comparison:
        text += "\n\nMean dose, delivered vs planned:\n" + "\n".join(
            f"{name}: {c['mean_gy']['delivered']:.1f} vs {c['mean_gy']['planned']:.1f} Gy "
            f"({c['mean_gy']['relative']:+.1%})" for name, c in comparison.items()
            if c.get("mean_gy") and c["mean_gy"]["relative"] is not None)
    elif planned is None:
        text += "\n\n(no planned voxel dose to compare with: plan with voxel dosimetry)"
    text += "\n\n" + post_pvc_text(post["partial_volume_correction"])
    text += "\n\n" + _activity_check_text(post["activity_check"])
    for w in post.get("warnings") or []:
        text += f"\n\nwarning: [{w['code']}] {w['message']}"
    return text


def post_pvc_text(pvc: dict) -> str:
    """The post-treatment correction in the panel's words: the camera (or ASSUMED), what is
    corrected and the structure means as imaged and corrected."""
    from ..records.plan_text import mean_dose_words, resolution_words
    if not pvc.get("applied"):
        return f"Partial-volume correction: not applied ({pvc.get('reason', '')})"
    return (f"Partial-volume correction of the structure mean doses, resolution "
            f"{resolution_words(pvc['resolution'])}\n{mean_dose_words(pvc)}"
            f"\nnot corrected: {pvc['not_corrected']}")


def _dose_image(scene, tag: str):
    from .volumes import image_from_volume_node
    node = dose_volume_node(scene, tag)
    return None if node is None else image_from_volume_node(node)


def ct_dicom_files(ct_node, database=None) -> list[str]:
    """The DICOM files of a CT volume: those kept on the node by the reader that loaded it
    (:mod:`.dicom_header`: a DICOM folder or series loaded by the web page), else, for a
    volume loaded by Slicer's DICOM module, its instance UIDs (attribute DICOM.instanceUIDs)
    looked up in the DICOM database (``slicer.dicomDatabase`` unless given). Empty when the
    CT was not loaded from DICOM."""
    from .dicom_header import dicom_files, dicom_header
    dicom_header(ct_node, database)  # keeps the files of a volume of Slicer's DICOM module
    return dicom_files(ct_node)


def save(scene, p, *, overwrite: bool = False, dicom_database=None,
         report_writer=None) -> str:
    """Step 8: plan record, measurement record, the written directive and administration
    record when the treatment-day steps ran, the dose folder (maps, DVHs, indices, dose.json)
    when voxel dosimetry was run, with ``p.exportDicom`` the DICOM RT Doses and SEG in the
    planning CT's study, and the PDF report, into ``p.outputFolder`` (``report_writer``:
    see ``workflow.save_outputs``)."""
    record = record_from_text_node(p.planRecord)
    if record is None:
        raise ValueError("plan first (step 5)")
    if not (p.outputFolder or "").strip():
        raise ValueError("output folder: choose a folder")
    states = statuses(p)
    outdated = [step for step in ("measurement", "plan", "directive", "administration")
                if states[step].state == step_log.OUTDATED]
    if outdated:
        raise ValueError(f"{', '.join(outdated)} outdated: run again before saving "
                         "(the saved plan must match the images and segments, the directive "
                         "and administration the plan)")
    planned = record_from_text_node(p.plannedDoseReport)
    dose = None
    if planned is not None:
        delivered = record_from_text_node(p.deliveredDoseReport) or {}
        dose = {"structures": workflow._structures(p.ctVolume, p.segmentation),
                "nuclide": workflow._nuclide(record), "planned": _dose_image(scene, "plan"),
                "planned_report": planned["report"], "record": planned["record"],
                "delivered": _dose_image(scene, "verification") if delivered else None,
                "delivered_report": delivered.get("report"),
                "post_treatment": delivered.get("post_treatment"),
                "comparison": delivered.get("comparison")}
    dicom = None
    if p.exportDicom:
        files = ct_dicom_files(p.ctVolume, dicom_database)
        if not files:
            from ..errors import FieldValueError
            raise FieldValueError("DICOM export", p.ctVolume.GetName() if p.ctVolume else None,
                                  "a planning CT loaded with Slicer's DICOM module (its study "
                                  "and frame of reference are referenced by the exports)")
        dicom = {"ct_files": files,
                 "structures": dose["structures"] if dose else
                 workflow._structures(p.ctVolume, p.segmentation)}
    written = workflow.save_outputs(p.outputFolder, record,
                                    record_from_text_node(p.measurementRecord),
                                    overwrite=overwrite, dose=dose, dicom=dicom,
                                    directive=record_from_text_node(p.directiveRecord),
                                    administration=record_from_text_node(
                                        p.administrationRecord),
                                    report_writer=report_writer)
    _done(p, "save")
    return "written:\n" + "\n".join(str(w) for w in written)


# ----------------------------------------------------------------------------- panel helpers
#: the synthetic patient's numbers of injection positions (2: right and left hepatic,
#: otherwise the segmental patient)
SYNTHETIC_POSITIONS = tuple(range(1, 9))


def load_synthetic_patient(scene, p, size: str = "small", positions: int = 2):
    """Step 1 shortcut: the synthetic patient into the scene and into ``p`` (CT, SPECT,
    structures, one position per CBCT, the Y-90 PET with its times); ``positions`` other than
    2 gives the segmental patient with that many injection positions (1 to 8)."""
    from .sample_data import load_synthetic_patient as load
    if positions not in SYNTHETIC_POSITIONS:
        raise ValueError(f"synthetic patient positions: got {positions!r}; allowed: 1 to 8 "
                         "(2: right and left hepatic; otherwise one per liver segment)")
    patient = load(scene, size, positions=positions)
    p.ctVolume, p.spectVolume, p.segmentation = patient.ct, patient.spect, patient.segmentation
    set_positions(p, [new_position(p, name=name, cbct=cbct)
                      for name, cbct in patient.cbcts.items()])
    if patient.pet is not None:
        p.postTreatmentVolume = patient.pet
        p.postTreatmentKind = "pet"
        p.administrationTime = patient.administration_time
        p.acquisitionTime = patient.pet_acquisition_time
        p.treatmentTime = patient.administration_time
    return patient


def dose_volume_node(scene, step: str):
    """The dose volume made by ``step`` ('plan' or 'verification'), or None."""
    for node in _tagged(scene, step):
        if node.IsA("vtkMRMLScalarVolumeNode") and node.GetAttribute(
                attributes.DOSE_VOLUME) == "1":
            return node
    return None


def colour_legend_node(scene, volume_node):
    """The colour legend (colour bar) display node of a volume, made on first use (both
    views show a fused image's colour bar with its title and unit)."""
    import slicer
    for index in range(volume_node.GetNumberOfDisplayNodes()):
        node = volume_node.GetNthDisplayNode(index)
        if node is not None and node.IsA("vtkMRMLColorLegendDisplayNode"):
            return node
    if volume_node.GetDisplayNode() is None:
        volume_node.CreateDefaultDisplayNodes()
    legend = slicer.vtkMRMLColorLegendDisplayNode()
    scene.AddNode(legend)
    volume_node.AddAndObserveDisplayNodeID(legend.GetID())
    legend.SetAndObservePrimaryDisplayNode(volume_node.GetDisplayNode())
    return legend


def dvh_chart_node(scene, step: str):
    """The DVH chart made by ``step`` ('plan' or 'verification'), or None."""
    return next((node for node in _tagged(scene, step) if node.IsA("vtkMRMLPlotChartNode")
                 and not node.GetAttribute(attributes.CHART)), None)


def response_chart_node(scene):
    """The dose-response chart made by the plan step (a fit chosen), or None."""
    return next((node for node in _tagged(scene, "plan") if node.IsA("vtkMRMLPlotChartNode")
                 and node.GetAttribute(attributes.CHART)), None)


def section_title(title: str, states: dict[str, step_log.StepStatus]) -> str:
    """Title of a panel section holding several steps (name -> status), e.g. the treatment
    day's directive and administration: outdated when one is (each named with its reason),
    done when all are, the steps done so far otherwise."""
    outdated = [f"{name}: {s.reason}" for name, s in states.items()
                if s.state == step_log.OUTDATED]
    if outdated:
        return f"{title}  [OUTDATED: {'; '.join(outdated)}]"
    done = [name for name, s in states.items() if s.state == step_log.CURRENT]
    if not done:
        return title
    if len(done) == len(states):
        return f"{title}  [done]"
    return f"{title}  [{', '.join(done)} done]"


def step_title(title: str, status: step_log.StepStatus) -> str:
    """Panel title with the step's status: '5. Plan  [outdated: measurement changed ...]'."""
    if status.state == step_log.NOT_RUN:
        return title
    if status.state == step_log.CURRENT:
        return f"{title}  [done]"
    return f"{title}  [OUTDATED: {status.reason}]"


#: action (ACTIONS) -> the one step function its button runs, returning the panel's text
_ACTION_STEPS = {
    "load": _load_text,
    "registration": register_positions,
    "lungs": lambda scene, p: add_lungs(p),
    "territories": lambda scene, p: add_territories(p),
    "check segments": lambda scene, p: check_segments(p),
    "measurement": measure,
    "plan": plan,
    "directive": written_directive,
    "administration": administer,
    "verification": verify,
    "save": save,
}
