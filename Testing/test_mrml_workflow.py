"""The workflow Logic on MRML nodes, headless: the synthetic patient loaded as nodes,
segments with roles, CBCT registration as a transform node, lungs and territories as
segments, LSF/TNR, plan table, dose volume with DVH nodes."""

import numpy as np
import pytest
import SimpleITK as sitk
import slicer
import vtk

from conftest import mrml_ct_and_structures
from tareplanner.dosimetry.activity import predictive_activity
from tareplanner.dosimetry.dose import dose_map, structure_report
from tareplanner.dosimetry.structures import structures_from_labels
from tareplanner.imaging.measure import case_from_measurement
from tareplanner.imaging.phantom_files import label_images
from tareplanner.mrml import workflow as wf
from tareplanner.mrml.volumes import volume_node_from_image
from tareplanner.planning import plan_case
from tareplanner.records.case import parse_case


def test_workflow_on_mrml(small_phantom, tmp_path):
    p = small_phantom
    scene = slicer.vtkMRMLScene()
    ct, seg = mrml_ct_and_structures(scene, p)
    spect = volume_node_from_image(scene, p.spect, "SPECT MAA")
    labels = label_images(p)
    assert wf.roles(seg) == {"T1": "tumour", "T2": "tumour", "T3": "tumour", "liver": "liver",
                             "lungs": "lung"}

    liver = sitk.GetArrayFromImage(labels["liver"]) > 0
    points = np.array([p.ct.TransformIndexToPhysicalPoint(tuple(int(v) for v in i[::-1]))
                       for i in np.argwhere(liver)[::2000]])
    for name, cbct_image in p.cbcts.items():
        cbct = volume_node_from_image(scene, cbct_image, f"CBCT {name}")
        node, registration = wf.register_to_ct(scene, ct, cbct, seg)
        assert cbct.GetTransformNodeID() == node.GetID()
        matrix = vtk.vtkMatrix4x4()
        node.GetMatrixTransformToParent(matrix)
        m = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
        truth = p.cbct_transforms[name]
        for point in points:
            in_cbct = np.array(truth.TransformPoint(tuple(point)))       # LPS
            ras = m @ np.array([-in_cbct[0], -in_cbct[1], in_cbct[2], 1.0])
            assert np.linalg.norm(ras[:3] - [-point[0], -point[1], point[2]]) < 2.0
        # the transform node gives back the registration (CT point -> CBCT point, LPS)
        restored = wf.registration_from_transform_node(node)
        for point in points[::5]:
            assert np.allclose(restored.TransformPoint(tuple(point)),
                               registration.transform.TransformPoint(tuple(point)), atol=1e-6)
        wf.add_territory_from_cbct(ct, cbct, seg, name)

    measurement = wf.measure_from_nodes(ct, spect, seg)
    # partial-volume corrected by default (Tc-99m default 14 mm FWHM): truth 6 %, within 5 %
    assert measurement["partial_volume_correction"]["applied"] is True
    assert measurement["lung_shunt"]["lung_shunt_fraction"] == pytest.approx(0.06, rel=0.05)
    for pos in measurement["positions"]:
        expected = p.truth["volumes_ml"]["territories"][pos["name"]]["perfused"]
        assert pos["perfused_volume_ml"] == pytest.approx(expected, rel=0.03)

    record, table = wf.plan_from_measurement(scene, measurement, product="therasphere",
                                             method="partition", goal_kind="tumour_dose_gy",
                                             goal_value=250)
    case = case_from_measurement(measurement, product="therasphere", method="partition",
                                 goals={n: {"tumour_dose_gy": 250} for n in p.cbcts})
    assert record["positions"] == plan_case(parse_case(case))["positions"]
    assert table.GetNumberOfRows() == 2
    assert table.GetTable().GetColumnByName("activity_gbq").GetValue(0) == \
        pytest.approx(record["positions"][0]["activity_gbq"])

    masks = wf._role_masks(seg, ct)
    structures = structures_from_labels(p.ct, masks["liver"], masks["lungs"], masks["tumours"],
                                        masks["territories"])
    activity, _ = predictive_activity(p.spect, structures,
                                      {q["name"]: q["activity_gbq"] for q in record["positions"]},
                                      record["lung_shunt_fraction"], 0.0)
    dose, _ = dose_map(activity, "Y-90", p.ct, structures.masks["lungs"])
    report = structure_report(dose, structures, nuclide="Y-90")
    volume, indices, (dvh_table, chart, series) = wf.dose_nodes(scene, dose, report)
    assert volume.GetAttribute("DicomRtImport.DoseVolume") == "1"
    assert indices.GetNumberOfRows() == len(report)
    assert chart.GetNumberOfPlotSeriesNodes() == len(report)

    # the GUI's later steps: predictive dose, verification from a PET node, saving
    (planned_volume, _, _), planned, dose_record = wf.predictive_dose_nodes(scene, ct, spect,
                                                                           seg, record)
    assert dose_record["schema"] == "tareplanner.dose/1"
    assert dose_record["predictive"]["structures"]["T1"]["mean_gy"] == planned["T1"]["mean_gy"]
    assert planned_volume.GetAttribute("DicomRtImport.DoseVolume") == "1"
    assert planned["T1"]["mean_gy"] == pytest.approx(report["T1"]["mean_gy"], rel=1e-6)
    pet = volume_node_from_image(scene, p.pet, "PET Y-90")
    truth = p.truth["y90_pet"]
    nodes, delivered, comparison, post = wf.verification_nodes(
        scene, ct, pet, seg, record, administration_time=truth["administration_time"],
        acquisition_time=truth["acquisition_start"], planned_report=planned)
    # SPECT counts scaled to the administered activity less the residual (A (1 - R))
    _, _, _, post_spect = wf.verification_nodes(scene, ct, pet, seg, record, kind="spect",
                                                administered_gbq=3.0, residual_fraction=0.1)
    assert post_spect["activity_in_image_at_administration_gbq"] == pytest.approx(2.7, rel=1e-4)
    with pytest.raises(ValueError, match="administered activity"):
        wf.verification_nodes(scene, ct, pet, seg, record, kind="spect")
    with pytest.raises(ValueError, match="administration time"):
        wf.verification_nodes(scene, ct, pet, seg, record, administration_time="1 Dec",
                              acquisition_time=truth["acquisition_start"])
    assert comparison["lungs"]["mean_gy"]["delivered"] == pytest.approx(
        delivered["lungs"]["mean_gy"])
    # activity check (hand): the PET holds the truth's 3.0 GBq less 3 % residual = 2.91 GBq,
    # checked against the plan's total activity less its residual; SPECT counts: not applicable
    check = post["activity_check"]
    assert check["image_total_gbq"] == pytest.approx(3.0 * 0.97, rel=0.01)
    expected = record["total_activity_gbq"] * (1 - record["residual_fraction"])
    assert check["expected_in_patient_gbq"] == pytest.approx(expected)
    assert bool(post["warnings"]) is (abs(2.91 / expected - 1) > 0.2)
    assert post_spect["activity_check"]["applicable"] is False
    written = wf.save_outputs(tmp_path, record, measurement)
    assert [w.name for w in written] == ["plan.json", "measurement.json", "report.pdf"]
    # the module's saved dose record carries the post-treatment warnings
    saved = wf.save_outputs(tmp_path / "with_dose", record, measurement, dose={
        "structures": wf._structures(ct, seg), "nuclide": "Y-90",
        "planned": wf.image_from_volume_node(planned_volume), "planned_report": planned,
        "record": dose_record, "delivered": wf.image_from_volume_node(nodes[0]),
        "delivered_report": delivered, "post_treatment": post, "comparison": comparison})
    import json
    saved_record = json.loads((tmp_path / "with_dose" / "dose" / "dose.json").read_text())
    assert saved_record["post_treatment"]["activity_check"] == check
    assert saved_record["warnings"] == post["warnings"] and "dose" in [w.name for w in saved]
