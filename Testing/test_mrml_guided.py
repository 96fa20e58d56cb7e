"""The module's guided steps (tareplanner.mrml.guided), headless on slicer-core.

The parameter object is the one declaration both views use (``mrml.parameters.Parameters``; the
Slicer module builds its parameter node wrapper from it), so the test drives the steps with
exactly the state the GUI binds. It checks the nodes and numbers against independent computations and the
phantom truth, the step log (outdated marking), manual entries, per-position goals, isodoses,
re-runs replacing their nodes, and saving (files, report pages, no silent overwrite).
"""

import json
import types

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
import slicer
import vtk
from conftest import REPO

from tareplanner.errors import FieldValueError
from tareplanner.mrml import guided
from tareplanner.mrml.isodose import default_levels_gy
from tareplanner.mrml.results import record_from_text_node
from tareplanner.mrml.segmentations import masks_from_segmentation
from tareplanner.dicom.seg import read_seg
from tareplanner.mrml.volumes import image_from_volume_node, volume_node_from_image
from tareplanner.mrml.workflow import registration_from_transform_node, roles
from tareplanner.records.atomic import OutputExistsError


Params = guided.Parameters


def _states(p):
    return {step: s.state for step, s in guided.statuses(p).items()}


def _tagged(scene, tag, cls):
    nodes = scene.GetNodesByClass(cls)
    return [nodes.GetItemAsObject(i) for i in range(nodes.GetNumberOfItems())
            if nodes.GetItemAsObject(i).GetAttribute(guided.STEP_TAG) == tag]


@pytest.fixture(scope="module")
def session():
    scene = slicer.vtkMRMLScene()
    p = Params()
    patient = guided.load_synthetic_patient(scene, p)
    return scene, p, patient


def test_load_fills_the_panel(session):
    scene, p, patient = session
    assert p.ctVolume is patient.ct and p.spectVolume is patient.spect
    assert [q.name for q in p.positions] == ["right hepatic", "left hepatic"]
    assert p.positions[0].cbct is patient.cbcts["right hepatic"]
    assert p.positions[1].cbct is patient.cbcts["left hepatic"]
    assert p.postTreatmentVolume is patient.pet and p.postTreatmentKind == "pet"
    assert roles(p.segmentation) == {"T1": "tumour", "T2": "tumour", "T3": "tumour",
                                     "liver": "liver"}
    assert set(_states(p).values()) == {"not run"}


def test_steps_in_order_with_outdated_marking(session, tmp_path, phantom_dir):
    scene, p, patient = session
    # segment check before the helpers: what is missing
    text = guided.check_segments(p)
    assert "missing roles: lung, territory:right hepatic, territory:left hepatic" in text
    assert "liver" in text and "T1" in text
    # a diagnostic CT: the planning CT moved by a known translation
    ct_image = image_from_volume_node(p.ctVolume)
    shift = sitk.TranslationTransform(3, (5.0, -4.0, 3.0))
    p.diagnosticCt = volume_node_from_image(
        scene, sitk.Resample(ct_image, ct_image, shift, sitk.sitkLinear, -1000.0), "diag CT")
    # 2. registration: one transform per position and one for the diagnostic CT, tagged
    text = guided.register_positions(scene, p)
    assert "right hepatic" in text and "left hepatic" in text and "diagnostic CT" in text
    transforms = _tagged(scene, "registration", "vtkMRMLLinearTransformNode")
    assert len(transforms) == 3
    found = registration_from_transform_node(p.diagnosticCt.GetParentTransformNode())
    for point in ((-40.0, 0.0, 10.0), (30.0, 20.0, -20.0)):
        back = found.TransformPoint(shift.TransformPoint(point))
        assert np.linalg.norm(np.subtract(back, point)) < 1.0
    transforms = [q.cbct.GetParentTransformNode() for q in p.positions]
    assert _states(p)["registration"] == "current"
    # 3. segmentation helpers
    guided.add_lungs(p)
    text = guided.add_territories(p)
    assert set(roles(p.segmentation).values()) >= {"lung", "territory:right hepatic",
                                                   "territory:left hepatic"}
    assert "missing roles" not in text
    assert "tumour T1 -> territory right hepatic" in text
    assert "tumour T2 -> territory left hepatic" in text
    # 4. measurement
    guided.measure(scene, p)
    measurement = record_from_text_node(p.measurementRecord)
    # partial-volume corrected by default (Tc-99m default 14 mm FWHM): truth 6 %, within 5 %
    assert measurement["partial_volume_correction"]["applied"] is True
    assert measurement["lung_shunt"]["lung_shunt_fraction"] == pytest.approx(0.06, rel=0.05)
    assert _states(p)["measurement"] == "current"

    # 5. plan with one goal per position, in the scenario of the panel (bilobar HCC,
    # bilirubin 0.8 mg/dL)
    guided.update_position(p, 0, goalKind="tumour_dose_gy", goalValue=250.0)
    guided.update_position(p, 1, goalKind="normal_dose_gy", goalValue=40.0)
    p.treatmentIntent, p.histology, p.bilirubinMgDl = "bilobar", "hcc", "0.8"
    guided.plan(scene, p)
    record = record_from_text_node(p.planRecord)
    by_name = {q["name"]: q for q in record["positions"]}
    assert by_name["right hepatic"]["goal"] == {"tumour_dose_gy": 250.0}
    assert by_name["left hepatic"]["goal"] == {"normal_dose_gy": 40.0}
    # EANM 2022's whole-normal-liver threshold is a recommendation: it is checked (bilobar
    # HCC, bilirubin < 1.1 mg/dL: < 90 Gy, Table 2) and never scales the plan; each lobe
    # keeps its goal
    assert record["scenario"]["intent"] == "bilobar"
    (row,) = [c for c in record["guideline_check"]["rows"]
              if c["quantity"] == "whole_normal_liver"]
    assert row["value"] == 90 and row["kind"] == "recommendation"
    assert row["plan_value"] == pytest.approx(record["whole_liver"]["whole_normal_liver_dose_gy"])
    assert by_name["left hepatic"]["limited_by"] == "goal"
    assert by_name["left hepatic"]["normal_dose_gy"] == pytest.approx(40.0)
    assert "guideline check (bilobar, hcc, bilirubin 0.8 mg/dL" in guided.plan(scene, p)
    assert _states(p)["plan"] == "current"

    # isodoses at the plan's own levels: goals 40 and 250 Gy, the scenario's thresholds on
    # the positions (perfused 80-150 Gy, tumour 205 Gy) and the product's tumour target
    levels = default_levels_gy(record)
    assert {40.0, 80.0, 150.0, 205.0, 250.0} <= set(levels)
    models = _tagged(scene, "plan", "vtkMRMLModelNode")
    assert sorted(float(m.GetAttribute("TAREPlanner.IsodoseLevelGy")) for m in models) == levels
    dose_node = guided.dose_volume_node(scene, "plan")
    dose = slicer.util.arrayFromVolume(dose_node)
    voxel_ml = float(np.prod(dose_node.GetSpacing())) / 1000.0
    lowest = next(m for m in models if float(m.GetAttribute("TAREPlanner.IsodoseLevelGy"))
                  == levels[0])
    mass = vtk.vtkMassProperties()
    mass.SetInputData(lowest.GetPolyData())
    mass.Update()
    inside_ml = (dose >= levels[0]).sum() * voxel_ml
    assert mass.GetVolume() / 1000.0 == pytest.approx(inside_ml, rel=0.1)
    assert dose_node.GetDisplayNode().GetColorNode().GetAttribute("TAREPlanner.LevelsGy")

    # site limits: a file lowering TheraSphere's normal-liver limit to 75 Gy
    site = tmp_path / "site.json"
    site.write_text((REPO / "docs" / "examples" / "site-limits.json").read_text())
    p.siteLimitsFile = str(site)
    assert guided.statuses(p)["plan"].changed == ("site limits",)
    guided.plan(scene, p)
    record = record_from_text_node(p.planRecord)
    assert record["limits"]["normal_liver_gy"]["value"] == 75
    right = next(q for q in record["positions"] if q["name"] == "right hepatic")
    assert right["normal_dose_gy"] == pytest.approx(75.0) and \
        right["limited_by"] == "normal-liver-limit"
    p.siteLimitsFile = ""
    guided.plan(scene, p)

    # manual LSF: the plan becomes outdated, then records the entry
    p.manualLsf, p.manualLsfPercent = True, 5.0
    status = guided.statuses(p)["plan"]
    assert status.state == "outdated" and status.changed == ("manual values",)
    guided.plan(scene, p)
    record = record_from_text_node(p.planRecord)
    assert record["lung_shunt_fraction"] == pytest.approx(0.05)
    assert record["lsf_method"] == "manual"
    note = next(w for w in record["warnings"] if w["code"] == "measurement:manual-entry")
    measured = measurement["lung_shunt"]["lung_shunt_fraction"]
    assert f"{measured:.2%}" in note["message"] and "5.00%" in note["message"]
    assert record["case"]["measurement"]["manual_entries"][0]["measured"] == \
        pytest.approx(measured, abs=1e-6)
    # the re-run replaced its nodes
    assert len(_tagged(scene, "plan", "vtkMRMLScalarVolumeNode")) == 1
    assert len(_tagged(scene, "plan", "vtkMRMLModelNode")) == len(levels)

    # 6. verification from the Y-90 PET
    text = guided.verify(scene, p)
    assert "delivered vs planned" in text
    delivered = record_from_text_node(p.deliveredDoseReport)
    truth_activity = sum(patient.truth["y90_pet"]["administered_activity_gbq"].values())
    residual = patient.truth["y90_pet"]["residual_fraction"]
    assert delivered["post_treatment"]["activity_in_image_at_administration_gbq"] == \
        pytest.approx(truth_activity * (1 - residual), rel=0.05)
    assert set(_states(p).values()) == {"current", "not run"}

    # 7. save: records, dose folder, report with the dose pages; no silent overwrite
    p.outputFolder = str(tmp_path / "out")
    guided.save(scene, p)
    out = tmp_path / "out"
    assert json.loads((out / "plan.json").read_text())["lsf_method"] == "manual"
    dose_record = json.loads((out / "dose" / "dose.json").read_text())
    assert dose_record["schema"] == "tareplanner.dose/1" and "comparison" in dose_record
    assert (out / "dose" / "dvh_planned.csv").exists()
    assert (out / "dose" / "dvh_delivered.csv").exists()
    from pypdf import PdfReader
    pages = [page.extract_text() for page in PdfReader(out / "report.pdf").pages]
    assert any("Voxel dosimetry" in text for text in pages)
    # the slices show the planning CT from the scene with a row through every tumour (the
    # module's measurement record names nodes, not files the report could read)
    anatomy = next(text for text in pages if "Dose on the anatomy" in text)
    assert "Planned dose on the CT" in anatomy and "Planned dose alone" not in anatomy
    assert all(f"Through tumour {t}" in anatomy for t in ("T1", "T2", "T3"))
    assert _states(p)["save"] == "current"
    before = (out / "plan.json").stat().st_mtime_ns
    with pytest.raises(OutputExistsError):
        guided.save(scene, p)
    assert (out / "plan.json").stat().st_mtime_ns == before

    # DICOM export needs a CT loaded from DICOM: refused, nothing written
    p.exportDicom, p.outputFolder = True, str(tmp_path / "out_dicom")
    with pytest.raises(FieldValueError, match="DICOM export"):
        guided.save(scene, p)
    assert not (tmp_path / "out_dicom").exists()
    # the same CT as written to DICOM (same synthetic patient), as Slicer's DICOM module
    # leaves it: instance UIDs on the node, files in the DICOM database
    files = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID: str(f)
             for f in sorted((phantom_dir / "dicom" / "ct").iterdir())}
    p.ctVolume.SetAttribute("DICOM.instanceUIDs", " ".join(files))
    database = types.SimpleNamespace(fileForInstance=files.get)
    guided.save(scene, p, dicom_database=database)
    ct_header = pydicom.dcmread(next(iter(files.values())), stop_before_pixels=True)
    planned_dose = image_from_volume_node(guided.dose_volume_node(scene, "plan"))
    for name in ("planned", "delivered"):
        rt = pydicom.dcmread(tmp_path / "out_dicom" / "dicom" / f"rtdose_{name}.dcm")
        assert rt.StudyInstanceUID == ct_header.StudyInstanceUID
        assert rt.FrameOfReferenceUID == ct_header.FrameOfReferenceUID
        assert rt.PatientID == ct_header.PatientID
    rt = pydicom.dcmread(tmp_path / "out_dicom" / "dicom" / "rtdose_planned.dcm")
    peak = float(rt.pixel_array.max()) * float(rt.DoseGridScaling)
    assert peak == pytest.approx(float(sitk.GetArrayViewFromImage(planned_dose).max()), rel=1e-6)
    segments = read_seg(tmp_path / "out_dicom" / "dicom" / "structures_seg.dcm",
                        list(files.values()))
    masks = masks_from_segmentation(scene, p.segmentation, p.ctVolume)
    assert np.array_equal(segments["T1"]["mask"], masks["T1"])
    assert np.array_equal(segments["liver"]["mask"], masks["liver"])
    p.exportDicom = False

    # an edited input marks the steps that read it, and saving refuses an outdated plan
    p.lungBaseMarginMm = 15.0
    states = guided.statuses(p)
    assert states["measurement"].changed == ("lung-base margin",)
    assert states["plan"].changed == ("measurement step",)        # uses an outdated result
    assert states["registration"].state == "current"
    p.outputFolder = str(tmp_path / "out2")
    with pytest.raises(ValueError, match="measurement"):
        guided.save(scene, p)
    assert not (tmp_path / "out2").exists()
    guided.measure(scene, p)
    states = guided.statuses(p)
    assert states["measurement"].state == "current"
    assert states["plan"].changed == ("measurement",)
    assert states["verification"].changed == ("plan step",)
    # editing a segment marks the measurement outdated
    segmentation = p.segmentation.GetSegmentation()
    segmentation.RemoveSegment(segmentation.GetSegmentIdBySegmentName("T3"))
    assert guided.statuses(p)["measurement"].changed == ("segments",)
    # moving a CBCT's transform marks the territories outdated, not the registration
    matrix = vtk.vtkMatrix4x4()
    transforms[0].GetMatrixTransformToParent(matrix)
    matrix.SetElement(0, 3, matrix.GetElement(0, 3) + 2.0)
    transforms[0].SetMatrixTransformToParent(matrix)
    states = guided.statuses(p)
    assert states["registration"].state == "current"
    assert states["segmentation"].state == "outdated"
    assert all(c.startswith("CBCT placement") for c in states["segmentation"].changed)


def test_bad_panel_values_name_the_field():
    p = Params()
    p.manualTnr = "T1=3.2, T2"
    with pytest.raises(FieldValueError, match="manual TNR"):
        guided.manual_values(p)
    guided.add_position(p, name="right", cbct=object())
    guided.add_position(p, name="right ", cbct=object())
    with pytest.raises(ValueError, match="names must differ"):
        guided.positions(p)
    with pytest.raises(ValueError, match="measure LSF and TNR first"):
        guided.plan(slicer.vtkMRMLScene(), Params())


def test_step_titles_say_what_the_module_self_test_looks_for():
    from tareplanner import steps
    done = steps.StepStatus("plan", steps.CURRENT, (), "2026-11-23T09:00:00+00:00")
    outdated = steps.StepStatus("plan", steps.OUTDATED, ("goals", "measurement step"))
    assert guided.step_title("5. Plan", steps.StepStatus("plan", steps.NOT_RUN)) == "5. Plan"
    assert guided.step_title("5. Plan", done) == "5. Plan  [done]"
    assert guided.step_title("5. Plan", outdated) == \
        "5. Plan  [OUTDATED: goals changed; uses the outdated measurement step]"
    module = (REPO / "TAREPlanner" / "TAREPlanner.py").read_text()
    assert 'assertNotIn("OUTDATED"' in module and 'assertIn("OUTDATED"' in module


def test_panel_scenario_carries_every_liver_function_fact():
    """Bug caught: a scenario fact that the case file takes but the module's and web page's
    panel cannot set (more favourable liver function, EANM 2022 Table 4 footnote ***), or
    one set on the panel that the case never sees. Expected: the scenario of the panel as
    the case format writes it (docs/case-format.md), refused with compromised liver."""
    from tareplanner.errors import FieldValueError
    from tareplanner.guidelines import parse_scenario

    p = guided.Parameters()
    assert guided.scenario_of(p) is None
    p.treatmentIntent, p.histology, p.bilirubinMgDl = "bilobar", "hcc", "0.6"
    p.favourableLiverFunction = True
    scenario = guided.scenario_of(p)
    assert scenario == {"intent": "bilobar", "histology": "hcc", "prior_treatment": False,
                        "bilirubin_mg_dl": 0.6, "favourable_liver_function": True}
    assert parse_scenario(scenario).favourable_liver_function is True
    p.favourableLiverFunction = False
    assert "favourable_liver_function" not in guided.scenario_of(p)
    p.favourableLiverFunction, p.liverCompromised = True, True
    scenario = guided.scenario_of(p)
    assert scenario.pop("liver_compromised") is True  # the case's top-level field
    with pytest.raises(FieldValueError, match="favourable_liver_function"):
        parse_scenario(scenario, liver_compromised=True)


def test_goal_suggestions_of_the_panel_before_planning():
    """Bug caught: the module and the web page offering no goal from the scenario before
    planning, or one of another product or intent. Expected values typed from EANM 2022
    (Weber et al., Eur J Nucl Med Mol Imaging 2022;49:1682-1699): Table 2 (glass), HCC:
    tumour >= 205 Gy (multi-compartment); segmentectomy perfused > 400 Gy; Table 4
    (Ho-166): one-compartment perfused 60 Gy. A scenario the case parser refuses gives one
    line naming the field, no suggestion."""
    p = guided.Parameters()
    assert guided.goal_suggestions(p) == []          # no scenario: nothing suggested
    p.product, p.treatmentIntent, p.histology, p.bilirubinMgDl = \
        "therasphere", "bilobar", "hcc", "0.8"
    lines = guided.goal_suggestions(p)
    assert any(line.startswith("tumour dose 205 Gy") and "Table 2" in line for line in lines)
    assert all("Table 4" not in line for line in lines)
    p.treatmentIntent = "segmentectomy"
    assert any(line.startswith("perfused dose 400 Gy") and "Table 2" in line
               for line in guided.goal_suggestions(p))
    p.product, p.treatmentIntent = "quiremspheres", "unilobar"
    lines = guided.goal_suggestions(p)
    assert any(line.startswith("perfused dose 60 Gy") and "Table 4" in line for line in lines)
    assert all("Table 2" not in line for line in lines)
    p.bilirubinMgDl = "-1"
    [line] = guided.goal_suggestions(p)
    assert line.startswith("no suggestions: scenario.bilirubin_mg_dl")
