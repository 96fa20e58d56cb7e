"""The planning and verification workflow on MRML nodes (the Slicer module's Logic calls this).

Structures live in one segmentation node; each segment carries its role in the tag
``TAREPlanner.Role``: ``liver``, ``lung``, ``tumour`` or ``territory:<position name>``.
Every step takes nodes, calls the core package and returns nodes or plain records; nothing
here touches widgets, so it runs headless on slicer-core.
"""

from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk
import vtk

from ..imaging.arrays import image_array
from ..imaging.measure import LabelInputs, PositionImages, measure
from ..imaging.loaded import LoadedImage
from ..imaging.registration import register_rigid_all
from ..imaging.segmentation import lungs_from_ct, territory_from_cbct
from . import attributes
from .results import dose_volume_node, dvh_nodes, indices_table_node
from .segmentations import masks_from_segmentation
from .volumes import LPS_TO_RAS, image_from_volume_node

ROLE_TAG = attributes.ROLE


def set_role(segmentation, segment_name: str, role: str) -> None:
    seg = segmentation.GetSegmentation()
    segment_id = seg.GetSegmentIdBySegmentName(segment_name)
    if not segment_id:
        raise ValueError(f"segment {segment_name!r} is not in {segmentation.GetName()}")
    seg.GetSegment(segment_id).SetTag(ROLE_TAG, role)


def roles(segmentation) -> dict[str, str]:
    """Segment name -> role, for the segments that have one."""
    seg = segmentation.GetSegmentation()
    out = {}
    for i in range(seg.GetNumberOfSegments()):
        segment = seg.GetNthSegment(i)
        tag = vtk.reference("")
        if segment.GetTag(ROLE_TAG, tag) and str(tag):
            out[segment.GetName()] = str(tag)
    return out


def add_mask_segment(segmentation, reference_node, name: str, mask: np.ndarray,
                     role: str) -> None:
    """Add a boolean [z, y, x] mask on ``reference_node``'s grid as a segment with a role."""
    import slicer

    from .volumes import volume_node_from_image
    image = sitk.GetImageFromArray(mask.astype(np.int16))
    image.CopyInformation(image_from_volume_node(reference_node))
    scene = segmentation.GetScene()
    label_node = volume_node_from_image(scene, image, "_segment", "vtkMRMLLabelMapVolumeNode")
    before = segmentation.GetSegmentation().GetNumberOfSegments()
    slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(label_node,
                                                                             segmentation)
    scene.RemoveNode(label_node)
    segment = segmentation.GetSegmentation().GetNthSegment(before)
    segment.SetName(name)
    segment.SetTag(ROLE_TAG, role)


def _loaded(node, modality: str, units: str) -> LoadedImage:
    """A volume node as the core's image, with the DICOM header values it was read with
    (patient, study, series: the measurement's identity block, the same-patient check) and
    its radionuclide (the header's, or attribute ``TAREPlanner.Radionuclide`` that the
    synthetic patient's loader sets): a camera file of another nuclide is then refused by
    name, as on the command line."""
    from .dicom_header import dicom_header
    meta = dicom_header(node)
    nuclide = node.GetAttribute(attributes.RADIONUCLIDE)
    if nuclide and not meta.get("radionuclide"):
        meta["radionuclide"] = nuclide
    return LoadedImage(image=image_from_volume_node(node), modality=modality, units=units,
                       source=f"MRML node {node.GetName()} ({node.GetID()})", sha256="",
                       meta=meta)


def scan_duration_s(node) -> float | None:
    """The scan's duration (s) of an emission volume: its DICOM header's ActualFrameDuration
    (kept by whatever read it, or read from Slicer's DICOM database), else attribute
    ``TAREPlanner.ScanDurationS`` (the synthetic patient's PET); None when neither holds a
    finite duration above 0 s (the noise of a PET in Bq/mL then assumes the camera file's
    duration, and says so), as ``tareplanner dose`` does for a PET without the tag."""
    from .dicom_header import dicom_header
    for value in (dicom_header(node).get("frame_duration_s"),
                  node.GetAttribute(attributes.SCAN_DURATION_S)):
        try:
            seconds = float(value) if value not in (None, "") else None
        except (TypeError, ValueError):
            seconds = None
        if seconds is not None and math.isfinite(seconds) and seconds > 0:
            return seconds
    return None


def transform_node_from_registration(scene, euler: sitk.Euler3DTransform, name: str):
    """A linear transform node that places the CBCT onto the CT in Slicer: its to-parent
    matrix is the inverse of the registration (which maps CT points to CBCT points),
    converted from LPS to RAS."""
    matrix = np.eye(4)
    matrix[:3, :3] = np.array(euler.GetMatrix()).reshape(3, 3)
    centre = np.array(euler.GetCenter())
    matrix[:3, 3] = np.array(euler.GetTranslation()) + centre - matrix[:3, :3] @ centre
    to_parent = np.linalg.inv(matrix)
    flip = np.diag([*np.diag(LPS_TO_RAS), 1.0])
    ras = flip @ to_parent @ flip
    node = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", name)
    vtk_matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            vtk_matrix.SetElement(r, c, float(ras[r, c]))
    node.SetMatrixTransformToParent(vtk_matrix)
    return node


def registration_from_transform_node(node) -> sitk.AffineTransform:
    """The CT-to-CBCT transform (LPS, as the core's registration gives it) of a transform node
    made by :func:`transform_node_from_registration` (or edited by the user)."""
    matrix = vtk.vtkMatrix4x4()
    node.GetMatrixTransformToParent(matrix)
    ras = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
    flip = np.diag([*np.diag(LPS_TO_RAS), 1.0])
    ct_to_cbct = np.linalg.inv(flip @ ras @ flip)
    affine = sitk.AffineTransform(3)
    affine.SetMatrix(tuple(ct_to_cbct[:3, :3].ravel()))
    affine.SetTranslation(tuple(ct_to_cbct[:3, 3]))
    return affine


def register_to_ct(scene, ct_node, moving_node, segmentation, *, margin_mm: float = 20.0):
    """Register a CBCT (or a diagnostic CT) to the planning CT (core registration, liver-grown
    mask); the moving volume is placed under the resulting transform node. Returns (transform
    node, registration record)."""
    return register_all_to_ct(scene, ct_node, [moving_node], segmentation,
                              margin_mm=margin_mm)[0]


def register_all_to_ct(scene, ct_node, moving_nodes, segmentation, *,
                       margin_mm: float = 20.0) -> list[tuple[object, object]]:
    """:func:`register_to_ct` of several volumes: the CT, its liver mask and the grown mask
    are made once, and the registrations run side by side in worker processes
    (:func:`~tareplanner.imaging.registration.register_rigid_all`, as ``tareplanner
    measure`` runs them; each result is the one registered alone). Each moving volume is
    placed under its own new transform node. Returns [(transform node, registration
    record)] in the order of ``moving_nodes``."""
    moving_nodes = list(moving_nodes)
    liver = _role_masks(segmentation, ct_node)["liver"]
    ct = image_from_volume_node(ct_node)
    liver_img = sitk.GetImageFromArray(liver.astype(np.uint8))
    liver_img.CopyInformation(ct)
    grown = sitk.BinaryDilate(liver_img, [max(1, int(round(margin_mm / s)))
                                          for s in ct.GetSpacing()])
    results = register_rigid_all(ct, [image_from_volume_node(node) for node in moving_nodes],
                                 grown)
    out = []
    for moving_node, result in zip(moving_nodes, results):
        node = transform_node_from_registration(scene, result.transform,
                                                f"{moving_node.GetName()} to CT")
        moving_node.SetAndObserveTransformNodeID(node.GetID())
        out.append((node, result))
    return out


def _role_masks(segmentation, reference_node) -> dict:
    masks = masks_from_segmentation(segmentation.GetScene(), segmentation, reference_node)
    out: dict = {"tumours": {}, "territories": {}}
    for name, role in roles(segmentation).items():
        if role == "liver":
            out["liver"] = masks[name]
        elif role == "lung":
            out["lungs"] = masks[name]
        elif role == "tumour":
            out["tumours"][name] = masks[name]
        elif role.startswith("territory:"):
            out["territories"][role.split(":", 1)[1]] = masks[name]
    if "liver" not in out:
        raise ValueError("the segmentation has no segment with role 'liver'")
    return out


def add_lungs_from_ct(ct_node, segmentation, name: str = "lungs") -> None:
    """Segment the lungs from the CT (core helper) into the segmentation, role 'lung'."""
    lungs = lungs_from_ct(image_from_volume_node(ct_node))
    remove_role(segmentation, "lung")
    add_mask_segment(segmentation, ct_node, name, sitk.GetArrayFromImage(lungs) > 0, "lung")


def add_territory_from_cbct(ct_node, cbct_node, segmentation, position: str,
                            transform_node=None) -> None:
    """Territory of ``position`` from the enhanced CBCT (core helper), role territory:NAME.
    The CBCT-to-CT placement is its parent transform node (the registration step's result,
    possibly adjusted by the user), or ``transform_node``. A territory segment of the same
    position made before is replaced."""
    add_territories_from_cbcts(ct_node, [(cbct_node, position, transform_node)], segmentation)


def add_territories_from_cbcts(ct_node, cbcts, segmentation) -> None:
    """:func:`add_territory_from_cbct` of each (CBCT node, position, transform node or None)
    of ``cbcts``, the CT and its liver mask read from the scene once for all of them."""
    cbcts = [(cbct, position, transform or cbct.GetParentTransformNode())
             for cbct, position, transform in cbcts]
    for cbct, _, transform in cbcts:
        if transform is None:
            raise ValueError(f"{cbct.GetName()}: register the CBCT to the CT first")
    liver = _role_masks(segmentation, ct_node)["liver"]
    ct = image_from_volume_node(ct_node)
    liver_img = sitk.GetImageFromArray(liver.astype(np.uint8))
    liver_img.CopyInformation(ct)
    for cbct, position, transform in cbcts:
        result = territory_from_cbct(ct, image_from_volume_node(cbct),
                                     registration_from_transform_node(transform), liver_img)
        remove_role(segmentation, f"territory:{position}")
        add_mask_segment(segmentation, ct_node, f"territory {position}",
                         sitk.GetArrayFromImage(result.mask) > 0, f"territory:{position}")


def remove_role(segmentation, role: str) -> None:
    """Remove the segments that carry ``role``."""
    seg = segmentation.GetSegmentation()
    for name, segment_role in roles(segmentation).items():
        if segment_role == role:
            seg.RemoveSegment(seg.GetSegmentIdBySegmentName(name))


def measure_from_nodes(ct_node, spect_node, segmentation, *, spect_units: str = "counts",
                       lung_base_margin_mm: float = 0.0, resolution: dict | None = None,
                       camera_field: str = "--camera") -> dict:
    """LSF, TNR and volumes from the SPECT and the segments with roles (core measurement);
    ``resolution``: the SPECT's camera file as ``measure --camera`` reads it (None: the
    assumed default, said so)."""
    m = _role_masks(segmentation, ct_node)
    ct = _loaded(ct_node, "CT", "HU")
    reference = ct.image
    tumour_map = np.zeros(m["liver"].shape, np.uint8)
    names = list(m["tumours"])
    for k, name in enumerate(names, start=1):
        tumour_map[m["tumours"][name] & (tumour_map == 0)] = k

    def image(array):
        img = sitk.GetImageFromArray(array.astype(np.uint8))
        img.CopyInformation(reference)
        return img

    labels = LabelInputs(liver=image(m["liver"]), tumours=image(tumour_map),
                         tumour_names={k: n for k, n in enumerate(names, start=1)},
                         lungs=image(m["lungs"]) if "lungs" in m else None,
                         sources={"segmentation": segmentation.GetName()})
    positions = [PositionImages(name=p, territory=image(mask))
                 for p, mask in m["territories"].items()]
    return measure(ct, _loaded(spect_node, "NM", spect_units), labels, positions,
                   lung_base_margin_mm=lung_base_margin_mm, resolution=resolution,
                   camera_field=camera_field)


def plan_table_node(scene, record: dict, name: str = "Plan"):
    """One row per position: activity, doses, binding constraint."""
    from .results import _table
    positions = record["positions"]
    columns = {"position": [p["name"] for p in positions],
               "activity_gbq": [p["activity_gbq"] for p in positions],
               "normal_dose_gy": [p["normal_dose_gy"] for p in positions],
               "perfused_dose_gy": [p["perfused_dose_gy"] or float("nan") for p in positions],
               "lowest_tumour_dose_gy": [min((t["dose_gy"] for t in p["tumours"]),
                                             default=float("nan")) for p in positions],
               "limited_by": [p["limited_by"] for p in positions]}
    return _table(scene, name, columns, string_columns=("position", "limited_by"))


def dose_nodes(scene, dose_image: sitk.Image, report: dict, name: str = "Dose"):
    """Dose volume (SlicerRT conventions), index table and DVH plot nodes of a dose report."""
    volume = dose_volume_node(scene, dose_image, name)
    table = indices_table_node(scene, report, f"{name} indices")
    dvh = dvh_nodes(scene, report, f"{name} DVH")
    return volume, table, dvh


def goal_object(kind: str, value: float | None) -> dict:
    """A case goal from the GUI's kind and value (``maximum`` takes no value)."""
    return {"maximum": True} if kind == "maximum" else {kind: float(value)}


def plan_from_measurement(scene, measurement: dict, *, product: str, method: str,
                          goals: dict[str, dict] | None = None, goal_kind: str | None = None,
                          goal_value: float | None = None, treatment_time: str | None = None,
                          manual_lung_shunt_fraction: float | None = None,
                          manual_tnr: dict[str, float] | None = None,
                          site_limits: dict | None = None, site_limits_label: str = "",
                          scenario: dict | None = None):
    """Case from a measurement, planned; returns the plan record and its table node.

    ``scenario``: the case's scenario (intent, histology, bilirubin_mg_dl, prior_treatment;
    ``liver_compromised`` goes to the case's top level), validated by the case parser.

    ``goals``: position name -> case goal (``goal_object``); positions without one, or all
    when ``goals`` is None, take ``goal_kind``/``goal_value``. Manual LSF/TNR replace the
    measured values and are recorded as manual entries. Raises the core's named errors."""
    from ..errors import FieldValueError
    from ..imaging.measure import case_from_measurement
    from ..planning import plan_case
    from ..records.case import parse_case

    names = [p["name"] for p in measurement["positions"]]
    goals = dict(goals or {})
    unknown = sorted(set(goals) - set(names))
    if unknown:
        raise FieldValueError("goals", unknown,
                              "positions of the measurement: " + ", ".join(names))
    for name in names:
        if name not in goals:
            if goal_kind is None and method != "bsa":
                raise FieldValueError(f"goal of {name}", None, "a goal for every position")
            goals[name] = goal_object(goal_kind, goal_value) if goal_kind else {}
    case = case_from_measurement(measurement, product=product, method=method, goals=goals,
                                 treatment_time=treatment_time or None,
                                 manual_lung_shunt_fraction=manual_lung_shunt_fraction,
                                 manual_tnr=manual_tnr)
    if scenario:
        scenario = dict(scenario)
        if scenario.pop("liver_compromised", False):
            case["liver_compromised"] = True
        if scenario:
            case["scenario"] = scenario
    record = plan_case(parse_case(case), site_limits, site_limits_label)
    return record, plan_table_node(scene, record)


def _structures(ct_node, segmentation):
    from ..dosimetry.structures import structures_from_labels
    m = _role_masks(segmentation, ct_node)
    if "lungs" not in m:
        raise ValueError("the segmentation has no segment with role 'lung'")
    return structures_from_labels(image_from_volume_node(ct_node), m["liver"], m["lungs"],
                                  m["tumours"], m["territories"])


def _nuclide(record: dict) -> str:
    from .. import catalogue
    return catalogue.product(record["product"]["key"]).nuclide


def predictive_dose_nodes(scene, ct_node, spect_node, segmentation, record: dict,
                          method: str = "kernel"):
    """Predictive voxel dose of a plan from the MAA/scout SPECT node: dose volume, index
    table and DVH nodes; returns (nodes, report, dose record ``tareplanner.dose/1``)."""
    from ..dosimetry.activity import predictive_activity
    from ..dosimetry.dose import dose_map, structure_report, v_thresholds_for_plan
    from ..dosimetry.partition import explain_voxel_doses
    from ..records.dose_record import dose_record
    structures = _structures(ct_node, segmentation)
    activity, info = predictive_activity(
        image_from_volume_node(spect_node), structures,
        {p["name"]: p["activity_gbq"] for p in record["positions"]},
        record["lung_shunt_fraction"], record["residual_fraction"])
    nuclide = _nuclide(record)
    dose, dose_info = dose_map(activity, nuclide, structures.reference,
                               structures.masks["lungs"], method=method)
    dose_info["convolution"] = "CPU (scipy.fft)"
    report = structure_report(dose, structures, nuclide=nuclide,
                              v_thresholds_gy=v_thresholds_for_plan(record))
    why = explain_voxel_doses(record, activity, dose, dose_info, info, nuclide,
                              structures.reference, structures)
    return (dose_nodes(scene, dose, report, "Dose planned"), report,
            dose_record(record, dose_info, info, report, why))


def _timestamp(text: str, field: str):
    from datetime import datetime

    from ..errors import FieldValueError
    try:
        value = datetime.fromisoformat(str(text).strip())
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise FieldValueError(field, text, "an ISO 8601 date and time with its UTC offset, "
                                           "e.g. 2026-12-01T10:00:00+01:00")
    return value


def verification_nodes(scene, ct_node, post_node, segmentation, record: dict, *,
                       kind: str = "pet", administration_time: str | None = None,
                       acquisition_time: str | None = None,
                       administered_gbq: float | None = None,
                       residual_fraction: float | None = None,
                       administered_source: str | None = None,
                       planned_report: dict | None = None,
                       resolution: dict | None = None):
    """Post-treatment dose: ``kind='pet'`` from a Y-90 PET node (Bq/mL at acquisition start,
    decayed back to the administration time), ``kind='spect'`` from a SPECT node in counts
    (Y-90 bremsstrahlung or Ho-166) scaled to the administered activity less the residual.
    The PET's activity is checked against ``administered_gbq`` less ``residual_fraction``
    (default: the plan's total and residual); ``administered_source`` names where the
    administered activity comes from (e.g. the administration record's delivered total).
    The structure mean doses are corrected for partial volume as ``tareplanner dose`` does
    (``resolution``: the image's camera file, read by
    :func:`~tareplanner.dosimetry.post_treatment_pvc.post_treatment_resolution`;
    None: the assumed default, with a warning).
    Returns the nodes, the report and, with the planned report, the comparison."""
    from .. import catalogue
    from ..dosimetry.activity import (counts_to_activity, not_applicable_check,
                                      pet_activity_at_administration,
                                      post_treatment_activity_check)
    from ..dosimetry.dose import compare, dose_map, structure_report
    from ..records.dose_record import indices_only
    from ..errors import FieldValueError
    structures = _structures(ct_node, segmentation)
    nuclide = _nuclide(record)
    if kind == "pet":
        activity = pet_activity_at_administration(
            image_from_volume_node(post_node), _timestamp(acquisition_time, "acquisition time"),
            _timestamp(administration_time, "administration time"),
            catalogue.nuclide(nuclide).half_life_h)
    elif kind == "spect":
        if administered_gbq is None or not administered_gbq > 0:
            raise FieldValueError("administered activity (GBq)", administered_gbq, "> 0")
        residual = record["residual_fraction"] if residual_fraction is None else residual_fraction
        if not 0 <= residual < 1:
            raise FieldValueError("residual fraction", residual, "0 <= R < 1")
        activity = counts_to_activity(image_from_volume_node(post_node), structures,
                                      float(administered_gbq), float(residual))
    else:
        raise FieldValueError("post-treatment image kind", kind, "pet or spect")
    from ..dosimetry.dose import v_thresholds_for_plan
    dose, _ = dose_map(activity, nuclide, structures.reference, structures.masks["lungs"])
    report = structure_report(dose, structures, nuclide=nuclide,
                              v_thresholds_gy=v_thresholds_for_plan(record))
    from ..dosimetry.post_treatment_pvc import post_treatment_correction
    pvc_record, pvc_warnings = post_treatment_correction(
        image_from_volume_node(post_node), structures, report, nuclide, kind, resolution,
        acquisition_s=scan_duration_s(post_node))
    comparison = (compare(indices_only(planned_report), indices_only(report))
                  if planned_report else None)
    post = {"source": f"MRML node {post_node.GetName()} ({kind})", "sha256": "",
            "administration_time": administration_time, "acquisition_time": acquisition_time,
            "activity_in_image_at_administration_gbq":
                float(image_array(activity).sum()),
            "structures": indices_only(report), "partial_volume_correction": pvc_record}
    outside = pvc_record.get("outside_liver_and_lungs_fraction_corrected")
    if kind == "pet" and administered_source and administered_gbq:
        from ..dosimetry.activity import activity_check, activity_inside
        check, warnings = activity_check(
            float(image_array(activity).sum(dtype=np.float64)),
            activity_inside(activity, structures), float(administered_gbq),
            float(record["residual_fraction"] if residual_fraction is None
                  else residual_fraction), administered_source,
            outside_fraction_corrected=outside)
    elif kind == "pet":
        check, warnings = post_treatment_activity_check(
            activity, structures, record, administered_gbq=administered_gbq or None,
            residual_fraction=residual_fraction, outside_fraction_corrected=outside)
    else:
        check, warnings = not_applicable_check(
            "the post-treatment SPECT counts are scaled to the administered activity less the "
            "residual: the image holds no independent measure of it"), []
    post.update(activity_check=check, warnings=pvc_warnings + warnings)
    return dose_nodes(scene, dose, report, "Dose delivered"), report, comparison, post



def _report_anatomy(dose: dict | None) -> dict | None:
    """The CT and structures the report's slice figures show, from the scene (the module's
    measurement record names nodes, not files the report could read): the structures'
    reference image is the planning CT itself."""
    if dose is None or dose.get("structures") is None:
        return None
    structures = dose["structures"]

    def image(mask):
        out = sitk.GetImageFromArray(np.asarray(mask, dtype=np.uint8))
        out.CopyInformation(structures.reference)
        return out
    return {"ct": structures.reference,
            "masks": {name: image(structures.masks[name]) for name in ("liver", "lungs")
                      if name in structures.masks},
            "tumours": {name: image(structures.masks[name])
                        for name, kind in structures.kinds.items() if kind == "tumour"}}


def _with_camera_parent(dose_record: dict, post_treatment: dict | None) -> dict:
    """The dose record with the post-treatment image's camera file among its parents (named
    by the hash of its bytes), as ``tareplanner dose --camera`` writes it."""
    from ..records.chain import camera_parent
    pvc = (post_treatment or {}).get("partial_volume_correction") or {}
    camera = camera_parent(pvc.get("resolution"))
    if camera is None:
        return dose_record
    return {**dose_record, "parents": {**(dose_record.get("parents") or {}), "camera": camera}}


def save_outputs(folder, record: dict, measurement: dict | None = None,
                 overwrite: bool = False, dose: dict | None = None,
                 dicom: dict | None = None, directive: dict | None = None,
                 administration: dict | None = None, report_writer=None) -> list:
    """Plan record, measurement record, written directive and administration record (when
    given: ``directive.json``, ``administration.json``, also shown in the report), dose
    folder, DICOM exports and PDF report into ``folder``.

    ``dose`` (optional): structures, nuclide, planned (image), planned_report, record (the
    dose record), and after verification delivered, delivered_report, post_treatment,
    comparison. ``dicom`` (optional): ct_files (the planning CT's DICOM files) and structures;
    writes ``dicom/`` with the RT Doses of ``dose`` in the CT's study and frame of reference
    and a DICOM SEG and an RT Structure Set of the structures and the territories. Nothing
    is written when a file exists (without ``overwrite``) or a library is missing; every
    file and folder is written atomically. ``report_writer`` (optional): a callable with
    the signature of ``records.report.write_report`` that writes the PDF elsewhere (the web
    page's worker process) and returns its path at once; by default it is written here."""
    from pathlib import Path

    from ..dependencies import require
    from ..records.atomic import OutputExistsError, atomic_folder, write_json_atomic
    require("matplotlib")
    if dicom is not None:
        require("pydicom", "highdicom")
    from ..records.report import write_report
    folder = Path(folder)
    targets = [folder / "plan.json", folder / "report.pdf"]
    if measurement is not None:
        targets.append(folder / "measurement.json")
    if directive is not None:
        targets.append(folder / "directive.json")
    if administration is not None:
        targets.append(folder / "administration.json")
    if dose is not None:
        targets.append(folder / "dose")
    if dicom is not None:
        targets.append(folder / "dicom")
    existing = [str(t) for t in targets if t.exists()]
    if existing and not overwrite:
        raise OutputExistsError(f"{', '.join(existing)} exist; choose another folder "
                                "(nothing was written)")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    dose_dir = None
    if dose is not None:
        from ..dosimetry.files import write_dose_files
        from ..records.dose_record import with_post_treatment
        dose_record = dict(dose["record"])
        if dose.get("delivered") is not None:
            dose_record = with_post_treatment(dose_record, dose["post_treatment"],
                                              dose.get("comparison"))
            dose_record = _with_camera_parent(dose_record, dose["post_treatment"])
        dose_dir = folder / "dose"
        with atomic_folder(dose_dir) as tmp:
            write_dose_files(tmp, dose["structures"], dose["nuclide"], dose["planned"],
                             dose["planned_report"], dose.get("delivered"),
                             dose.get("delivered_report"))
            write_json_atomic(tmp / "dose.json", dose_record)
        written.append(dose_dir)
    if dicom is not None:
        from ..dicom.common import dicom_identity
        from ..dicom.rtdose import write_rt_doses
        from ..dicom.rtstruct import write_rtstruct
        from ..dicom.seg import export_seg, exported_structures
        with atomic_folder(folder / "dicom") as tmp:
            if dose is not None:
                write_rt_doses(tmp, dicom_identity(dicom["ct_files"]), dose["planned"],
                               dose.get("delivered"))
            masks, kinds = exported_structures(dicom["structures"])
            export_seg(masks, kinds, list(dicom["ct_files"]), tmp / "structures_seg.dcm")
            write_rtstruct(masks, kinds, list(dicom["ct_files"]),
                           tmp / "structures_rtstruct.dcm")
        written.append(folder / "dicom")
    written.insert(0, write_json_atomic(folder / "plan.json", record, overwrite=overwrite))
    if measurement is not None:
        written.append(write_json_atomic(folder / "measurement.json", measurement,
                                         overwrite=overwrite))
    if directive is not None:
        written.append(write_json_atomic(folder / "directive.json", directive,
                                         overwrite=overwrite))
    if administration is not None:
        written.append(write_json_atomic(folder / "administration.json", administration,
                                         overwrite=overwrite))
    written.append((report_writer or write_report)(
        record, folder / "report.pdf", dose_dir=dose_dir, directive=directive,
        administration=administration, anatomy=_report_anatomy(dose), overwrite=overwrite))
    return written
