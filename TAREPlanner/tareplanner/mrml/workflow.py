"""The planning and verification workflow on MRML nodes (the Slicer module's Logic calls this).

Structures live in one segmentation node; each segment carries its role in the tag
``TAREPlanner.Role``: ``liver``, ``lung``, ``tumour`` or ``territory:<position name>``.
Every step takes nodes, calls the core package and returns nodes or plain records; nothing
here touches widgets, so it runs headless on slicer-core.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
import vtk

from ..imaging.measure import LabelInputs, PositionImages, measure
from ..imaging.loaded import LoadedImage
from ..imaging.registration import register_rigid
from ..imaging.segmentation import lungs_from_ct, territory_from_cbct
from .results import dose_volume_node, dvh_nodes, indices_table_node
from .segmentations import masks_from_segmentation
from .volumes import LPS_TO_RAS, image_from_volume_node

ROLE_TAG = "TAREPlanner.Role"


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
    return LoadedImage(image=image_from_volume_node(node), modality=modality, units=units,
                       source=f"MRML node {node.GetName()} ({node.GetID()})", sha256="")


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


def register_cbct(scene, ct_node, cbct_node, segmentation, *, margin_mm: float = 20.0):
    """Register a CBCT to the CT (core registration, liver-grown mask); the CBCT is placed
    under the resulting transform node. Returns (transform node, registration record)."""
    liver = _role_masks(segmentation, ct_node)["liver"]
    ct = image_from_volume_node(ct_node)
    liver_img = sitk.GetImageFromArray(liver.astype(np.uint8))
    liver_img.CopyInformation(ct)
    grown = sitk.BinaryDilate(liver_img, [max(1, int(round(margin_mm / s)))
                                          for s in ct.GetSpacing()])
    result = register_rigid(ct, image_from_volume_node(cbct_node), grown)
    node = transform_node_from_registration(scene, result.transform,
                                            f"{cbct_node.GetName()} to CT")
    cbct_node.SetAndObserveTransformNodeID(node.GetID())
    return node, result


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
    add_mask_segment(segmentation, ct_node, name, sitk.GetArrayFromImage(lungs) > 0, "lung")


def add_territory_from_cbct(ct_node, cbct_node, transform_node, registration, segmentation,
                            position: str) -> None:
    """Territory of ``position`` from the enhanced CBCT (core helper), role territory:NAME."""
    liver = _role_masks(segmentation, ct_node)["liver"]
    ct = image_from_volume_node(ct_node)
    liver_img = sitk.GetImageFromArray(liver.astype(np.uint8))
    liver_img.CopyInformation(ct)
    result = territory_from_cbct(ct, image_from_volume_node(cbct_node), registration.transform,
                                 liver_img)
    add_mask_segment(segmentation, ct_node, f"territory {position}",
                     sitk.GetArrayFromImage(result.mask) > 0, f"territory:{position}")


def measure_from_nodes(ct_node, spect_node, segmentation, *, spect_units: str = "counts",
                       lung_base_margin_mm: float = 0.0) -> dict:
    """LSF, TNR and volumes from the SPECT and the segments with roles (core measurement)."""
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
                   lung_base_margin_mm=lung_base_margin_mm)


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


def plan_from_measurement(scene, measurement: dict, *, product: str, method: str,
                          goal_kind: str, goal_value: float | None,
                          treatment_time: str | None = None):
    """Case from a measurement (same goal for every position), planned; returns the plan
    record and its table node. Raises the core's named errors on bad input."""
    from ..imaging.measure import case_from_measurement
    from ..planning import plan_case
    from ..records.case import parse_case

    goal = {"maximum": True} if goal_kind == "maximum" else {goal_kind: float(goal_value)}
    case = case_from_measurement(measurement, product=product, method=method,
                                 goals={p["name"]: goal for p in measurement["positions"]},
                                 treatment_time=treatment_time or None)
    record = plan_case(parse_case(case))
    return record, plan_table_node(scene, record)


def _structures(ct_node, segmentation):
    from ..dosimetry import structures_from_labels
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
    table and DVH nodes; returns (nodes, report)."""
    from ..dosimetry import dose_map, predictive_activity, structure_report
    structures = _structures(ct_node, segmentation)
    activity, _ = predictive_activity(image_from_volume_node(spect_node), structures,
                                      {p["name"]: p["activity_gbq"] for p in record["positions"]},
                                      record["lung_shunt_fraction"], record["residual_fraction"])
    nuclide = _nuclide(record)
    dose, _ = dose_map(activity, nuclide, structures.reference, structures.masks["lungs"],
                       method=method)
    report = structure_report(dose, structures, nuclide=nuclide)
    return dose_nodes(scene, dose, report, "Dose planned"), report


def verification_nodes(scene, ct_node, pet_node, segmentation, record: dict, *,
                       administration_time: str, acquisition_time: str,
                       planned_report: dict | None = None):
    """Post-treatment dose from a Y-90 PET node (Bq/mL at acquisition start): nodes, report
    and, with the planned report, the delivered-versus-planned comparison."""
    from datetime import datetime

    from .. import catalogue
    from ..dosimetry import (compare, dose_map, indices_only, pet_activity_at_administration,
                             structure_report)
    structures = _structures(ct_node, segmentation)
    nuclide = _nuclide(record)
    activity = pet_activity_at_administration(
        image_from_volume_node(pet_node), datetime.fromisoformat(acquisition_time),
        datetime.fromisoformat(administration_time), catalogue.nuclide(nuclide).half_life_h)
    dose, _ = dose_map(activity, nuclide, structures.reference, structures.masks["lungs"])
    report = structure_report(dose, structures, nuclide=nuclide)
    comparison = (compare(indices_only(planned_report), indices_only(report))
                  if planned_report else None)
    return dose_nodes(scene, dose, report, "Dose delivered"), report, comparison


def save_outputs(folder, record: dict, measurement: dict | None = None,
                 overwrite: bool = False) -> list:
    """Plan record, measurement record and PDF report into ``folder`` (atomic writes)."""
    from pathlib import Path

    from ..dependencies import require
    from ..records.atomic import write_json_atomic
    require("matplotlib")
    from ..records.report import write_report
    folder = Path(folder)
    written = [write_json_atomic(folder / "plan.json", record, overwrite=overwrite)]
    if measurement is not None:
        written.append(write_json_atomic(folder / "measurement.json", measurement,
                                         overwrite=overwrite))
    written.append(write_report(record, folder / "report.pdf", overwrite=overwrite))
    return written
