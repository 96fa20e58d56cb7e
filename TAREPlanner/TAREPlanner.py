"""TAREPlanner: 3D Slicer scripted module for liver radioembolization planning and verification.

The module class only describes itself; the Widget loads its .ui, binds it to the parameter
node (so the GUI state is saved with the scene) and calls the Logic; the Logic calls the core
package ``tareplanner`` and its MRML layer (``tareplanner.mrml.workflow``), which the command
line and the headless tests use too.
"""

import logging
import os

import slicer
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest,
                                           ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

POSITION_SLOTS = (1, 2, 3)


class TAREPlanner(ScriptedLoadableModule):
    """Module description shown in Slicer."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "TAREPlanner"
        self.parent.categories = ["Nuclear Medicine"]
        self.parent.dependencies = []
        self.parent.contributors = ["TAREPlanner developers"]
        self.parent.helpText = (
            "Planning and verification of trans-arterial radioembolization (TARE/SIRT) with "
            "SIR-Spheres, TheraSphere and QuiremSpheres: CBCT registration per injection "
            "position, lungs and perfused territories, lung shunt fraction and tumour-to-normal "
            "ratio from the MAA or Ho-166 scout SPECT, single-compartment, partition and BSA "
            "activity planning against each product's limits, voxel dosimetry and post-treatment "
            "verification. The same engine runs on the command line as <code>tareplanner</code>.")
        self.parent.acknowledgementText = (
            "Physics references are listed in docs/physics.md and docs/dosimetry.md of the "
            "TAREPlanner extension.")


@parameterNodeWrapper
class TAREPlannerParameterNode:
    """GUI state, saved with the scene."""

    ctVolume: slicer.vtkMRMLScalarVolumeNode
    spectVolume: slicer.vtkMRMLScalarVolumeNode
    segmentation: slicer.vtkMRMLSegmentationNode
    product: str = "therasphere"
    method: str = "partition"
    treatmentTime: str = ""
    position1Name: str = "right hepatic"
    position1Cbct: slicer.vtkMRMLScalarVolumeNode
    position2Name: str = ""
    position2Cbct: slicer.vtkMRMLScalarVolumeNode
    position3Name: str = ""
    position3Cbct: slicer.vtkMRMLScalarVolumeNode
    lungBaseMarginMm: float = 0.0
    goalKind: str = "tumour_dose_gy"
    goalValue: float = 250.0
    voxelDosimetry: bool = True
    petVolume: slicer.vtkMRMLScalarVolumeNode
    administrationTime: str = ""
    acquisitionTime: str = ""
    outputFolder: str = ""


class TAREPlannerWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Seven panels (data, registration, segmentation, LSF/TNR, plan, verification, save);
    every button calls one Logic method and shows its result."""

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/TAREPlanner.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = TAREPlannerLogic()
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        buttons = {"registerButton": self.onRegister, "lungsButton": self.onLungs,
                   "territoriesButton": self.onTerritories, "measureButton": self.onMeasure,
                   "planButton": self.onPlan, "verifyButton": self.onVerify,
                   "saveButton": self.onSave}
        for name, handler in buttons.items():
            getattr(self.ui, name).connect("clicked(bool)", handler)
        self.initializeParameterNode()

    def cleanup(self):
        self.removeObservers()

    def enter(self):
        self.initializeParameterNode()

    def exit(self):
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None

    def onSceneStartClose(self, caller, event):
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())

    def setParameterNode(self, inputParameterNode):
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)

    def onRegister(self):
        with slicer.util.tryWithErrorDisplay("Registration failed.", waitCursor=True):
            self.ui.registrationStatusLabel.text = self.logic.registerPositions(
                self._parameterNode)

    def onLungs(self):
        with slicer.util.tryWithErrorDisplay("Lung segmentation failed.", waitCursor=True):
            self.ui.segmentationStatusLabel.text = self.logic.addLungs(self._parameterNode)

    def onTerritories(self):
        with slicer.util.tryWithErrorDisplay("Territory segmentation failed.", waitCursor=True):
            self.ui.segmentationStatusLabel.text = self.logic.addTerritories(
                self._parameterNode)

    def onMeasure(self):
        with slicer.util.tryWithErrorDisplay("Measurement failed.", waitCursor=True):
            self.ui.measurementText.plainText = self.logic.measure(self._parameterNode)

    def onPlan(self):
        with slicer.util.tryWithErrorDisplay("Planning failed.", waitCursor=True):
            self.ui.planText.plainText = self.logic.plan(self._parameterNode)

    def onVerify(self):
        with slicer.util.tryWithErrorDisplay("Verification failed.", waitCursor=True):
            self.ui.verificationText.plainText = self.logic.verify(self._parameterNode)

    def onSave(self):
        with slicer.util.tryWithErrorDisplay("Saving failed.", waitCursor=True):
            slicer.util.infoDisplay(self.logic.save(self._parameterNode))


class TAREPlannerLogic(ScriptedLoadableModuleLogic):
    """Calls the core package and its MRML layer; takes the parameter node and nodes, raises
    ValueError (the core's named errors) on bad input, never touches widgets. Keeps the results
    of the current session (registrations, measurement, plan) for the later steps."""

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        self.registrations = {}
        self.measurement = None
        self.record = None
        self.plannedReport = None

    def getParameterNode(self):
        return TAREPlannerParameterNode(super().getParameterNode())

    @staticmethod
    def positions(p):
        """(name, CBCT node) of the filled position slots."""
        out = []
        for slot in POSITION_SLOTS:
            name = getattr(p, f"position{slot}Name").strip()
            cbct = getattr(p, f"position{slot}Cbct")
            if name and cbct is not None:
                out.append((name, cbct))
        if not out:
            raise ValueError("positions: give at least one position name with its CBCT")
        return out

    @staticmethod
    def _require(p, *names):
        for name in names:
            if getattr(p, name) is None:
                raise ValueError(f"{name}: select a node")

    def registerPositions(self, p):
        from tareplanner.mrml import workflow
        self._require(p, "ctVolume", "segmentation")
        lines = []
        for name, cbct in self.positions(p):
            node, result = workflow.register_cbct(slicer.mrmlScene, p.ctVolume, cbct,
                                                  p.segmentation)
            self.registrations[name] = (cbct, node, result)
            angles = ", ".join(f"{a:.1f}" for a in result.angles_deg)
            shift = ", ".join(f"{t:.1f}" for t in result.transform.GetTranslation())
            lines.append(f"{name}: rotation ({angles}) deg, translation ({shift}) mm, "
                         f"MI {result.metric_before:.3f} -> {result.metric_after:.3f}")
        return "\n".join(lines)

    def addLungs(self, p):
        from tareplanner.mrml import workflow
        self._require(p, "ctVolume", "segmentation")
        workflow.add_lungs_from_ct(p.ctVolume, p.segmentation)
        return "lungs added (role: lung)"

    def addTerritories(self, p):
        from tareplanner.mrml import workflow
        self._require(p, "ctVolume", "segmentation")
        for name, _ in self.positions(p):
            if name not in self.registrations:
                raise ValueError(f"{name}: register its CBCT first")
            cbct, node, result = self.registrations[name]
            workflow.add_territory_from_cbct(p.ctVolume, cbct, node, result, p.segmentation,
                                             name)
        return "territories added (role: territory:<position>)"

    def measure(self, p):
        from tareplanner.mrml import workflow
        from tareplanner.records.plan_text import measurement_summary
        self._require(p, "ctVolume", "spectVolume", "segmentation")
        self.measurement = workflow.measure_from_nodes(
            p.ctVolume, p.spectVolume, p.segmentation, lung_base_margin_mm=p.lungBaseMarginMm)
        return measurement_summary(self.measurement)

    def plan(self, p):
        from tareplanner.mrml import workflow
        from tareplanner.records.plan_text import plan_summary
        if self.measurement is None:
            raise ValueError("measure LSF and TNR first (step 4)")
        self.record, _ = workflow.plan_from_measurement(
            slicer.mrmlScene, self.measurement, product=p.product, method=p.method,
            goal_kind=p.goalKind, goal_value=p.goalValue, treatment_time=p.treatmentTime)
        if p.voxelDosimetry:
            _, self.plannedReport = workflow.predictive_dose_nodes(
                slicer.mrmlScene, p.ctVolume, p.spectVolume, p.segmentation, self.record)
        return plan_summary(self.record)

    def verify(self, p):
        from tareplanner.mrml import workflow
        self._require(p, "ctVolume", "segmentation", "petVolume")
        if self.record is None:
            raise ValueError("plan first (step 5)")
        _, delivered, comparison = workflow.verification_nodes(
            slicer.mrmlScene, p.ctVolume, p.petVolume, p.segmentation, self.record,
            administration_time=p.administrationTime, acquisition_time=p.acquisitionTime,
            planned_report=self.plannedReport)
        lines = [f"{name}: delivered mean {r['mean_gy']:.1f} Gy, D70 {r['D70']:.1f} Gy"
                 for name, r in delivered.items()]
        if comparison:
            lines.append("")
            lines += [f"{name}: {c['mean_gy']['relative']:+.1%} vs plan"
                      for name, c in comparison.items() if c.get("mean_gy")
                      and c["mean_gy"]["relative"] is not None]
        return "\n".join(lines)

    def save(self, p):
        from tareplanner.mrml import workflow
        if self.record is None:
            raise ValueError("plan first (step 5)")
        if not p.outputFolder:
            raise ValueError("outputFolder: choose a folder")
        written = workflow.save_outputs(p.outputFolder, self.record, self.measurement)
        return "written: " + ", ".join(str(w) for w in written)

    def planFromCaseFile(self, casePath):
        from tareplanner.planning import plan_case
        from tareplanner.records.case import read_case
        return plan_case(read_case(casePath))


class TAREPlannerTest(ScriptedLoadableModuleTest):
    """Self-test: the whole workflow on the synthetic patient, built in memory."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_workflow_on_synthetic_patient()

    def test_workflow_on_synthetic_patient(self):
        import tempfile

        import SimpleITK as sitk

        from tareplanner.imaging.phantom import make_phantom, spec_for_size
        from tareplanner.imaging.phantom_files import label_images
        from tareplanner.mrml import workflow
        from tareplanner.mrml.segmentations import segmentation_from_labels
        from tareplanner.mrml.volumes import volume_node_from_image

        phantom = make_phantom(spec_for_size("small", pet=True))
        scene = slicer.mrmlScene
        logic = TAREPlannerLogic()
        p = logic.getParameterNode()
        p.ctVolume = volume_node_from_image(scene, phantom.ct, "CT")
        p.spectVolume = volume_node_from_image(scene, phantom.spect, "SPECT MAA")
        labels = label_images(phantom)
        seg = segmentation_from_labels(scene, labels["tumours"], {1: "T1", 2: "T2", 3: "T3"},
                                       p.ctVolume)
        for name in ("T1", "T2", "T3"):
            workflow.set_role(seg, name, "tumour")
        workflow.add_mask_segment(seg, p.ctVolume, "liver",
                                  sitk.GetArrayFromImage(labels["liver"]) > 0, "liver")
        p.segmentation = seg
        for slot, (name, image) in zip(POSITION_SLOTS, phantom.cbcts.items()):
            setattr(p, f"position{slot}Name", name)
            setattr(p, f"position{slot}Cbct", volume_node_from_image(scene, image, f"CBCT {name}"))
        logic.registerPositions(p)
        logic.addLungs(p)
        logic.addTerritories(p)
        logic.measure(p)
        logic.plan(p)
        p.petVolume = volume_node_from_image(scene, phantom.pet, "PET Y-90")
        truth = phantom.truth["y90_pet"]
        p.administrationTime = truth["administration_time"]
        p.acquisitionTime = truth["acquisition_start"]
        logic.verify(p)
        with tempfile.TemporaryDirectory() as tmp:
            p.outputFolder = os.path.join(tmp, "out")
            logic.save(p)
            self.assertTrue(os.path.exists(os.path.join(tmp, "out", "report.pdf")))
        self.assertGreater(logic.record["total_activity_gbq"], 0)
        logging.info("TAREPlanner self-test passed")
