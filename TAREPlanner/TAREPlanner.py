"""TAREPlanner: 3D Slicer scripted module for liver radioembolization planning and verification.

The module class describes itself and registers the synthetic patient as Sample Data; the
Widget loads its .ui, binds it to the parameter node (so the GUI state is saved with the
scene), shows which steps are outdated and calls the Logic; the Logic delegates every step to
the core package's MRML layer (``tareplanner.mrml.guided``), which the headless tests run too.
"""

import logging
import os
from typing import Annotated

import qt
import slicer
import vtk
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest,
                                           ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

PRODUCTS = ["therasphere", "sir-spheres", "quiremspheres"]
METHODS = ["partition", "single-compartment", "bsa"]
GOAL_KINDS = ["tumour_dose_gy", "normal_dose_gy", "perfused_dose_gy", "activity_gbq", "maximum"]
POST_TREATMENT_KINDS = ["pet", "spect"]
SAMPLE_NAME = "TAREPlannerSyntheticPatient"


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
            "activity planning against each product's limits, voxel dosimetry with isodoses "
            "and post-treatment verification. The same engine runs on the command line as "
            "<code>tareplanner</code>. Try it on the synthetic patient (Sample Data, category "
            "TAREPlanner, or the button in step 1).")
        self.parent.acknowledgementText = (
            "Physics references are listed in docs/physics.md and docs/dosimetry.md of the "
            "TAREPlanner extension.")
        slicer.app.connect("startupCompleted()", registerSampleData)


def registerSampleData():
    """The synthetic patient in the Sample Data module (category TAREPlanner). It is built in
    memory by the core package (no download), so the entry has a custom loader."""
    import SampleData
    SampleData.SampleDataLogic.registerCustomSampleDataSource(
        category="TAREPlanner", sampleName=SAMPLE_NAME,
        thumbnailFileName=os.path.join(os.path.dirname(__file__), "Resources", "Icons",
                                       f"{SAMPLE_NAME}.png"),
        uris=[], fileNames=[], nodeNames=[], customDownloader=loadSyntheticPatientSample)


def loadSyntheticPatientSample(source=None):
    """Sample Data loader: the synthetic patient into the scene and into the module's panel."""
    with slicer.util.tryWithErrorDisplay("Could not build the synthetic patient.",
                                         waitCursor=True):
        logic = TAREPlannerLogic()
        parameterNode = logic.getParameterNode()
        patient = logic.loadSyntheticPatient(parameterNode)
        slicer.util.setSliceViewerLayers(background=patient.ct, foreground=patient.spect,
                                          foregroundOpacity=0.4, fit=True)
        slicer.util.selectModule("TAREPlanner")


@parameterNodeWrapper
class TAREPlannerParameterNode:
    """GUI state and the results of the steps (records in text nodes), saved with the scene."""

    ctVolume: slicer.vtkMRMLScalarVolumeNode
    spectVolume: slicer.vtkMRMLScalarVolumeNode
    segmentation: slicer.vtkMRMLSegmentationNode
    diagnosticCt: slicer.vtkMRMLScalarVolumeNode
    product: Annotated[str, Choice(PRODUCTS)] = "therasphere"
    method: Annotated[str, Choice(METHODS)] = "partition"
    treatmentTime: str = ""
    position1Name: str = "right hepatic"
    position1Cbct: slicer.vtkMRMLScalarVolumeNode
    position1GoalKind: Annotated[str, Choice(GOAL_KINDS)] = "tumour_dose_gy"
    position1GoalValue: float = 250.0
    position2Name: str = ""
    position2Cbct: slicer.vtkMRMLScalarVolumeNode
    position2GoalKind: Annotated[str, Choice(GOAL_KINDS)] = "tumour_dose_gy"
    position2GoalValue: float = 250.0
    position3Name: str = ""
    position3Cbct: slicer.vtkMRMLScalarVolumeNode
    position3GoalKind: Annotated[str, Choice(GOAL_KINDS)] = "tumour_dose_gy"
    position3GoalValue: float = 250.0
    lungBaseMarginMm: float = 0.0
    manualLsf: bool = False
    manualLsfPercent: float = 0.0
    manualTnr: str = ""
    voxelDosimetry: bool = True
    isodoseLevelsGy: str = ""
    siteLimitsFile: str = ""
    # treatment day: dose-calibrator readings per position (one vial, one residual reading)
    position1VialGbq: float = 0.0
    position1VialTime: str = ""
    position1ResidualGbq: float = 0.0
    position1ResidualTime: str = ""
    position1AdministeredAt: str = ""
    position2VialGbq: float = 0.0
    position2VialTime: str = ""
    position2ResidualGbq: float = 0.0
    position2ResidualTime: str = ""
    position2AdministeredAt: str = ""
    position3VialGbq: float = 0.0
    position3VialTime: str = ""
    position3ResidualGbq: float = 0.0
    position3ResidualTime: str = ""
    position3AdministeredAt: str = ""
    siteTolerancePercent: float = 0.0
    postTreatmentVolume: slicer.vtkMRMLScalarVolumeNode
    postTreatmentKind: Annotated[str, Choice(POST_TREATMENT_KINDS)] = "pet"
    administrationTime: str = ""
    acquisitionTime: str = ""
    administeredActivityGbq: float = 0.0
    outputFolder: str = ""
    exportDicom: bool = False
    # results of the steps (not shown as fields)
    measurementRecord: slicer.vtkMRMLTextNode
    planRecord: slicer.vtkMRMLTextNode
    directiveRecord: slicer.vtkMRMLTextNode
    administrationRecord: slicer.vtkMRMLTextNode
    plannedDoseReport: slicer.vtkMRMLTextNode
    deliveredDoseReport: slicer.vtkMRMLTextNode
    stepLog: str = ""


#: panel section -> (collapsible button, title, the steps it holds)
STEP_PANELS = {"registration": ("registrationCollapsibleButton", "2. Registration",
                                ("registration",)),
               "segmentation": ("segmentationCollapsibleButton", "3. Segmentation",
                                ("segmentation",)),
               "measurement": ("measureCollapsibleButton", "4. LSF and TNR", ("measurement",)),
               "plan": ("planCollapsibleButton", "5. Plan", ("plan",)),
               "treatment day": ("treatmentDayCollapsibleButton", "6. Treatment day",
                                 ("directive", "administration")),
               "verification": ("verificationCollapsibleButton",
                                "7. Verification (after treatment)", ("verification",)),
               "save": ("saveCollapsibleButton", "8. Save", ("save",))}


class TAREPlannerWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Eight panels (data, registration, segmentation, LSF/TNR, plan, treatment day,
    verification, save);
    every button calls one Logic method and shows its result; panel titles say which steps
    are outdated."""

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._observedSegmentation = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/TAREPlanner.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = TAREPlannerLogic()
        self._statusTimer = qt.QTimer()
        self._statusTimer.setSingleShot(True)
        self._statusTimer.setInterval(700)
        self._statusTimer.connect("timeout()", self.updateStepTitles)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent,
                         self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        buttons = {"sampleButton": self.onSample, "registerButton": self.onRegister,
                   "lungsButton": self.onLungs, "territoriesButton": self.onTerritories,
                   "segmentEditorButton": self.onSegmentEditor,
                   "checkSegmentsButton": self.onCheckSegments, "measureButton": self.onMeasure,
                   "planButton": self.onPlan, "directiveButton": self.onDirective,
                   "administerButton": self.onAdminister, "verifyButton": self.onVerify,
                   "saveButton": self.onSave}
        for name, handler in buttons.items():
            getattr(self.ui, name).connect("clicked(bool)", handler)
        self.initializeParameterNode()
        self.offerMissingPackages()

    def offerMissingPackages(self):
        missing = self.logic.missingRequirements()
        if missing and slicer.util.confirmOkCancelDisplay(self.logic.installMessage(missing),
                                                          "TAREPlanner: Python packages"):
            with slicer.util.tryWithErrorDisplay("Installing the packages failed.",
                                                 waitCursor=True):
                self.logic.installRequirements(missing)

    def cleanup(self):
        self.removeObservers()

    def enter(self):
        self.initializeParameterNode()
        self.updateStepTitles()

    def exit(self):
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent,
                                self.onInputsChanged)

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
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent,
                                self.onInputsChanged)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent,
                             self.onInputsChanged)
            self.onInputsChanged()

    def onInputsChanged(self, caller=None, event=None):
        """Watch the chosen segmentation's edits and refresh the step titles shortly after."""
        segmentation = self._parameterNode.segmentation if self._parameterNode else None
        if segmentation is not self._observedSegmentation:
            if self._observedSegmentation is not None:
                self.removeObserver(self._observedSegmentation,
                                    slicer.vtkSegmentation.SegmentModified, self.onInputsChanged)
            if segmentation is not None:
                self.addObserver(segmentation, slicer.vtkSegmentation.SegmentModified,
                                 self.onInputsChanged)
            self._observedSegmentation = segmentation
        self._statusTimer.start()

    def updateStepTitles(self):
        if not self._parameterNode:
            return
        try:
            titles = self.logic.stepTitles(self._parameterNode)
        except ValueError as error:
            logging.info(f"TAREPlanner step status: {error}")
            return
        for panel, (buttonName, _, _) in STEP_PANELS.items():
            getattr(self.ui, buttonName).text = titles[panel]

    def _run(self, failure, call, show):
        with slicer.util.tryWithErrorDisplay(failure, waitCursor=True):
            show(call(self._parameterNode))
        self.updateStepTitles()

    def onSample(self):
        self._run("Could not build the synthetic patient.", self.logic.loadSyntheticPatient,
                  lambda patient: slicer.util.setSliceViewerLayers(
                      background=patient.ct, foreground=patient.spect, foregroundOpacity=0.4,
                      fit=True))

    def onRegister(self):
        self._run("Registration failed.", self.logic.registerPositions,
                  lambda text: setattr(self.ui.registrationStatusLabel, "text", text))

    def onLungs(self):
        self._run("Lung segmentation failed.", self.logic.addLungs,
                  lambda text: setattr(self.ui.segmentationStatusLabel, "text", text))

    def onTerritories(self):
        self._run("Territory segmentation failed.", self.logic.addTerritories,
                  lambda text: setattr(self.ui.segmentationStatusLabel, "text", text))

    def onCheckSegments(self):
        self._run("Checking the segments failed.", self.logic.checkSegments,
                  lambda text: setattr(self.ui.segmentationStatusLabel, "text", text))

    def onSegmentEditor(self):
        slicer.util.selectModule("SegmentEditor")
        if self._parameterNode and self._parameterNode.segmentation:
            slicer.modules.SegmentEditorWidget.editor.setSegmentationNode(
                self._parameterNode.segmentation)

    def onMeasure(self):
        self._run("Measurement failed.", self.logic.measure,
                  lambda text: setattr(self.ui.measurementText, "plainText", text))

    def onPlan(self):
        self._run("Planning failed.", self.logic.plan, self._showPlan)

    def _showPlan(self, text):
        self.ui.planText.plainText = text
        self._showDose("plan")

    def _showDose(self, step):
        dose, chart = self.logic.doseNodes(step)
        if dose is not None:
            slicer.util.setSliceViewerLayers(background=self._parameterNode.ctVolume,
                                              foreground=dose, foregroundOpacity=0.5)
        if chart is not None:
            slicer.modules.plots.logic().ShowChartInLayout(chart)

    def onDirective(self):
        self._run("Writing the directive failed.", self.logic.writtenDirective,
                  lambda text: setattr(self.ui.directiveText, "plainText", text))

    def onAdminister(self):
        self._run("Recording the administration failed.", self.logic.administer,
                  lambda text: setattr(self.ui.administrationText, "plainText", text))

    def onVerify(self):
        self._run("Verification failed.", self.logic.verify, self._showVerification)

    def _showVerification(self, text):
        self.ui.verificationText.plainText = text
        self._showDose("verification")

    def onSave(self):
        self._run("Saving failed.", self.logic.save,
                  lambda text: setattr(self.ui.saveStatusLabel, "text", text))


class TAREPlannerLogic(ScriptedLoadableModuleLogic):
    """Delegates every step to ``tareplanner.mrml.guided`` on the parameter node and
    ``slicer.mrmlScene``; raises the core's named errors on bad input, never touches widgets."""

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self):
        return TAREPlannerParameterNode(super().getParameterNode())

    # first use: packages beyond Slicer's own Python
    def missingRequirements(self):
        from tareplanner.dependencies import missing
        return missing()

    def installMessage(self, requirements):
        from tareplanner.dependencies import install_message
        return install_message(requirements)

    def installRequirements(self, requirements):
        slicer.util.pip_install([r.specifier for r in requirements])

    # the steps
    def loadSyntheticPatient(self, p):
        from tareplanner.mrml import guided
        return guided.load_synthetic_patient(slicer.mrmlScene, p)

    def registerPositions(self, p):
        from tareplanner.mrml import guided
        return guided.register_positions(slicer.mrmlScene, p)

    def addLungs(self, p):
        from tareplanner.mrml import guided
        return guided.add_lungs(p)

    def addTerritories(self, p):
        from tareplanner.mrml import guided
        return guided.add_territories(p)

    def checkSegments(self, p):
        from tareplanner.mrml import guided
        return guided.check_segments(p)

    def measure(self, p):
        from tareplanner.mrml import guided
        return guided.measure(slicer.mrmlScene, p)

    def plan(self, p):
        from tareplanner.mrml import guided
        return guided.plan(slicer.mrmlScene, p)

    def plannedDoseVolume(self):
        return self.doseNodes("plan")[0]

    def doseNodes(self, step):
        """(dose volume, DVH chart) made by 'plan' or 'verification' (None where absent)."""
        from tareplanner.mrml import guided
        return (guided.dose_volume_node(slicer.mrmlScene, step),
                guided.dvh_chart_node(slicer.mrmlScene, step))

    def writtenDirective(self, p):
        from tareplanner.mrml import guided
        return guided.written_directive(slicer.mrmlScene, p)

    def administer(self, p):
        from tareplanner.mrml import guided
        return guided.administer(slicer.mrmlScene, p)

    def verify(self, p):
        from tareplanner.mrml import guided
        return guided.verify(slicer.mrmlScene, p)

    def save(self, p):
        from tareplanner.mrml import guided
        return guided.save(slicer.mrmlScene, p)

    def stepTitles(self, p):
        from tareplanner.mrml import guided
        statuses = guided.statuses(p)
        return {panel: (guided.step_title(title, statuses[steps[0]]) if len(steps) == 1 else
                        guided.section_title(title, {step: statuses[step] for step in steps}))
                for panel, (_, title, steps) in STEP_PANELS.items()}


class TAREPlannerTest(ScriptedLoadableModuleTest):
    """Self-test: the whole workflow on the synthetic patient, through the Logic."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_workflow_on_synthetic_patient()

    def test_workflow_on_synthetic_patient(self):
        import tempfile

        logic = TAREPlannerLogic()
        p = logic.getParameterNode()
        logic.loadSyntheticPatient(p)
        logic.registerPositions(p)
        logic.addLungs(p)
        logic.addTerritories(p)
        logic.measure(p)
        logic.plan(p)
        self.assertIsNotNone(logic.plannedDoseVolume())
        self.assertIn("Written directive", logic.writtenDirective(p))
        # the treatment day: each prescribed activity read in the vial at the administration
        # time, nothing left in it
        import json
        directive = json.loads(p.directiveRecord.GetText())
        prescribed = {site["treatment_site"]: site["prescribed_activity_gbq"]
                      for site in directive["positions"]}
        for slot in (1, 2, 3):
            name = getattr(p, f"position{slot}Name")
            if name in prescribed:
                setattr(p, f"position{slot}VialGbq", prescribed[name])
                setattr(p, f"position{slot}VialTime", p.treatmentTime)
                setattr(p, f"position{slot}AdministeredAt", p.treatmentTime)
                setattr(p, f"position{slot}ResidualGbq", 0.0)
                setattr(p, f"position{slot}ResidualTime", p.treatmentTime)
        self.assertIn("No medical event", logic.administer(p))
        logic.verify(p)
        titles = logic.stepTitles(p)
        self.assertNotIn("OUTDATED", " ".join(titles.values()))
        with tempfile.TemporaryDirectory() as tmp:
            p.outputFolder = os.path.join(tmp, "out")
            logic.save(p)
            self.assertTrue(os.path.exists(os.path.join(tmp, "out", "report.pdf")))
            for name in ("directive.json", "administration.json"):
                self.assertTrue(os.path.exists(os.path.join(tmp, "out", name)))
        p.lungBaseMarginMm = 10.0
        self.assertIn("OUTDATED", logic.stepTitles(p)["measurement"])
        logging.info("TAREPlanner self-test passed")
