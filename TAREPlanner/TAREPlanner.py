"""TAREPlanner: 3D Slicer scripted module for liver radioembolization planning and verification.

The module class describes itself and registers the synthetic patient as Sample Data; the
Widget loads its .ui, binds it to the parameter node (so the GUI state is saved with the
scene), shows which steps are outdated and calls the Logic; the Logic delegates every step to
the core package's MRML layer (``tareplanner.mrml.guided``), which the headless tests run too.
"""

import logging
import os

import qt
import slicer
import vtk
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest,
                                           ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

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


def _parameterNodeClass():
    """The parameter node (GUI state and the steps' results, saved with the scene): built by
    the MRML layer from its one declaration (``tareplanner.mrml.parameters``), the positions
    as a list of any length."""
    from tareplanner.mrml.parameters import slicer_parameter_node_class
    return slicer_parameter_node_class("TAREPlannerParameterNode")


TAREPlannerParameterNode = _parameterNodeClass()

#: panel section (tareplanner.mrml.guided.PANELS) -> its collapsible button
PANEL_BUTTONS = {"data": "dataCollapsibleButton",
                 "registration": "registrationCollapsibleButton",
                 "segmentation": "segmentationCollapsibleButton",
                 "measurement": "measureCollapsibleButton", "plan": "planCollapsibleButton",
                 "treatment day": "treatmentDayCollapsibleButton",
                 "verification": "verificationCollapsibleButton",
                 "save": "saveCollapsibleButton"}
#: action (tareplanner.mrml.guided.ACTIONS) -> its button
ACTION_BUTTONS = {"load": "sampleButton", "registration": "registerButton",
                  "lungs": "lungsButton", "territories": "territoriesButton",
                  "check segments": "checkSegmentsButton", "measurement": "measureButton",
                  "plan": "planButton", "directive": "directiveButton",
                  "administration": "administerButton", "verification": "verifyButton",
                  "save": "saveButton"}
#: readings table column -> (position field, kind)
READING_COLUMNS = ((1, "vialGbq", "gbq"), (2, "vialTime", "time"), (3, "residualGbq", "gbq"),
                   (4, "residualTime", "time"), (5, "administeredAt", "time"))


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
        self._readyToolTips = {name: getattr(self.ui, name).toolTip
                               for name in ACTION_BUTTONS.values()}
        self.ui.addPositionButton.connect("clicked(bool)", self.onAddPosition)
        self.ui.removePositionButton.connect("clicked(bool)", self.onRemovePosition)
        self.ui.positionsTable.connect("cellChanged(int,int)", self.onPositionNameChanged)
        for table in (self.ui.positionsTable, self.ui.goalsTable, self.ui.readingsTable):
            table.horizontalHeader().setStretchLastSection(True)
            table.verticalHeader().setVisible(False)
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
        self.updatePositionTables()
        self._statusTimer.start()

    def updateStepTitles(self):
        """Panel titles (done / OUTDATED) and which buttons can be pressed (a button whose
        inputs are missing is disabled, its tooltip says what it needs)."""
        if not self._parameterNode:
            return
        for action, buttonName in ACTION_BUTTONS.items():
            button = getattr(self.ui, buttonName)
            needs = self.logic.missingText(self._parameterNode, action)
            button.enabled = not needs
            button.toolTip = needs or self._readyToolTips[buttonName]
        try:
            titles = self.logic.stepTitles(self._parameterNode)
        except ValueError as error:
            logging.info(f"TAREPlanner step status: {error}")
            return
        for panel, title in titles.items():
            getattr(self.ui, PANEL_BUTTONS[panel]).text = title
        self.ui.goalSuggestionsLabel.text = self.logic.goalSuggestionsText(self._parameterNode)

    # injection positions: three tables (step 2 names and CBCTs, step 5 goals, step 6
    # readings), one row per position of the parameter node's list
    def updatePositionTables(self):
        if not self._parameterNode:
            return
        positions = list(self._parameterNode.positions)
        tables = (self.ui.positionsTable, self.ui.goalsTable, self.ui.readingsTable)
        if any(table.rowCount != len(positions) for table in tables):
            self._buildPositionTables(positions)
            return
        for row, position in enumerate(positions):
            blocked = self.ui.positionsTable.blockSignals(True)
            self._setQuietly(self.ui.positionsTable.item(row, 0), "text", position.name)
            self.ui.positionsTable.blockSignals(blocked)
            self._setQuietly(self.ui.positionsTable.cellWidget(row, 1), "currentNode",
                             position.cbct, setter="setCurrentNode")
            self.ui.goalsTable.item(row, 0).setText(position.name)
            self._setQuietly(self.ui.goalsTable.cellWidget(row, 1), "currentText",
                             position.goalKind, setter="setCurrentText")
            self._setQuietly(self.ui.goalsTable.cellWidget(row, 2), "value", position.goalValue)
            self.ui.readingsTable.item(row, 0).setText(position.name)
            for column, field, _ in READING_COLUMNS:
                widget = self.ui.readingsTable.cellWidget(row, column)
                if widget is not None and not widget.hasFocus():   # never under the typist
                    self._setQuietly(widget, "text",
                                     self.logic.readingText(getattr(position, field)))

    @staticmethod
    def _setQuietly(target, prop, value, setter=None):
        """Show ``value`` without echoing a change back to the parameter node."""
        if target is None:
            return
        if isinstance(target, qt.QTableWidgetItem):
            if target.text() != value:
                target.setText(value)
            return
        current = getattr(target, prop)
        if (current() if callable(current) else current) == value:
            return
        blocked = target.blockSignals(True)
        if setter:
            getattr(target, setter)(value)
        else:
            setattr(target, prop, value)
        target.blockSignals(blocked)

    def _buildPositionTables(self, positions):
        from tareplanner.mrml.parameters import GOAL_KINDS
        names, goals, readings = (self.ui.positionsTable, self.ui.goalsTable,
                                  self.ui.readingsTable)
        for table in (names, goals, readings):
            table.blockSignals(True)
            table.clearContents()
            table.setRowCount(len(positions))
        for row, position in enumerate(positions):
            names.setItem(row, 0, qt.QTableWidgetItem(position.name))
            cbct = slicer.qMRMLNodeComboBox()
            cbct.nodeTypes = ["vtkMRMLScalarVolumeNode"]
            cbct.noneEnabled, cbct.addEnabled, cbct.removeEnabled = True, False, False
            cbct.setMRMLScene(slicer.mrmlScene)
            cbct.setCurrentNode(position.cbct)
            cbct.connect("currentNodeChanged(vtkMRMLNode*)",
                         lambda node, row=row: self._updatePosition(row, cbct=node))
            names.setCellWidget(row, 1, cbct)
            for table in (goals, readings):
                item = qt.QTableWidgetItem(position.name)
                item.setFlags(qt.Qt.ItemIsEnabled)
                table.setItem(row, 0, item)
            kind = qt.QComboBox()
            kind.addItems(list(GOAL_KINDS))
            kind.setCurrentText(position.goalKind)
            kind.connect("currentTextChanged(QString)",
                         lambda text, row=row: self._updatePosition(row, goalKind=text))
            goals.setCellWidget(row, 1, kind)
            goals.setCellWidget(row, 2, self._spinBox(
                position.goalValue, 2000.0, 2, lambda v, row=row: self._updatePosition(
                    row, goalValue=v)))
            for column, field, kindOfValue in READING_COLUMNS:
                # a line edit, not a spin box: an activity nobody typed stays empty (missing),
                # never 0; the text is read when the field is left, by the web page's rules
                widget = qt.QLineEdit(self.logic.readingText(getattr(position, field)))
                widget.placeholderText = ("GBq (0 if none)" if kindOfValue == "gbq"
                                          else "2026-12-01T10:00:00+01:00")
                widget.connect("editingFinished()",
                               lambda row=row, field=field, widget=widget:
                               self._setReading(row, field, widget))
                readings.setCellWidget(row, column, widget)
        for table in (names, goals, readings):
            table.blockSignals(False)

    @staticmethod
    def _spinBox(value, maximum, decimals, onChange, suffix=""):
        box = qt.QDoubleSpinBox()
        box.minimum, box.maximum, box.decimals, box.suffix = 0.0, maximum, decimals, suffix
        box.value = value
        box.connect("valueChanged(double)", onChange)
        return box

    def onPositionNameChanged(self, row, column):
        if column == 0:
            self._updatePosition(row, name=self.ui.positionsTable.item(row, 0).text().strip())

    def _setReading(self, row, field, widget):
        """A reading's field left: its text read once; a refused text stays in the field
        with the message as its tooltip, and the parameter keeps its value."""
        try:
            self.logic.setReading(self._parameterNode, row, field, widget.text)
            widget.toolTip = ""
            widget.styleSheet = ""
        except ValueError as error:
            widget.toolTip = str(error)
            widget.styleSheet = "border: 1px solid red"
            # not a dialog: a modal box taking the focus would end the editing a second time
            slicer.util.showStatusMessage(str(error), 10000)

    def _updatePosition(self, row, **values):
        with slicer.util.tryWithErrorDisplay("Could not change the position."):
            self.logic.updatePosition(self._parameterNode, row, **values)

    def onAddPosition(self):
        with slicer.util.tryWithErrorDisplay("Could not add a position."):
            self.logic.addPosition(self._parameterNode)

    def onRemovePosition(self):
        row = self.ui.positionsTable.currentRow()
        if row < 0:
            slicer.util.errorDisplay("Select the row of the position to remove (step 2).")
            return
        with slicer.util.tryWithErrorDisplay("Could not remove the position."):
            self.logic.removePosition(self._parameterNode, row)

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
    ``slicer.mrmlScene`` (``guided.run``: the same action table the web page uses); raises
    the core's named errors on bad input, never touches widgets."""

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
        return guided.run(slicer.mrmlScene, p, "registration")

    def addLungs(self, p):
        from tareplanner.mrml import guided
        return guided.run(slicer.mrmlScene, p, "lungs")

    def addTerritories(self, p):
        from tareplanner.mrml import guided
        return guided.run(slicer.mrmlScene, p, "territories")

    def checkSegments(self, p):
        from tareplanner.mrml import guided
        return guided.run(slicer.mrmlScene, p, "check segments")

    def measure(self, p):
        from tareplanner.mrml import guided
        return guided.run(slicer.mrmlScene, p, "measurement")

    def plan(self, p):
        from tareplanner.mrml import guided
        return guided.run(slicer.mrmlScene, p, "plan")

    def plannedDoseVolume(self):
        return self.doseNodes("plan")[0]

    def doseNodes(self, step):
        """(dose volume, DVH chart) made by 'plan' or 'verification' (None where absent)."""
        from tareplanner.mrml import guided
        return (guided.dose_volume_node(slicer.mrmlScene, step),
                guided.dvh_chart_node(slicer.mrmlScene, step))

    def writtenDirective(self, p):
        from tareplanner.mrml import guided
        return guided.run(slicer.mrmlScene, p, "directive")

    def administer(self, p):
        from tareplanner.mrml import guided
        return guided.run(slicer.mrmlScene, p, "administration")

    def verify(self, p):
        from tareplanner.mrml import guided
        return guided.run(slicer.mrmlScene, p, "verification")

    def save(self, p):
        from tareplanner.mrml import guided
        return guided.run(slicer.mrmlScene, p, "save")

    def stepTitles(self, p):
        """Panel -> title with its steps' status (the data panel has no step)."""
        from tareplanner.mrml import guided
        statuses = guided.statuses(p)
        return {panel: (guided.step_title(title, statuses[steps[0]]) if len(steps) == 1 else
                        guided.section_title(title, {step: statuses[step] for step in steps}))
                for panel, title, steps in guided.PANELS if steps}

    def missingText(self, p, action):
        """What ``action`` still needs ('' when its button can be pressed)."""
        from tareplanner.mrml import guided
        return guided.missing_text(p, action)

    def goalSuggestionsText(self, p):
        """The goals the panel's scenario suggests, with their sources ('' without one)."""
        from tareplanner.mrml import guided
        lines = guided.goal_suggestions(p)
        return ("Goals the scenario suggests (recommendations, not applied by themselves):\n"
                + "\n".join(f"- {line}" for line in lines)) if lines else ""

    # injection positions (a list of any length)
    def addPosition(self, p, **values):
        from tareplanner.mrml import guided
        return guided.add_position(p, **values)

    def removePosition(self, p, index):
        from tareplanner.mrml import guided
        guided.remove_position(p, index)

    def updatePosition(self, p, index, **values):
        from tareplanner.mrml import guided
        guided.update_position(p, index, **values)

    # the treatment day's readings, typed: the web page's rules (tareplanner.web.forms)
    @staticmethod
    def readingText(value):
        """A reading as its field shows it: empty when missing (never 0)."""
        from tareplanner.web import forms
        return forms.number_text(value)

    def setReading(self, p, index, field, text):
        """Position ``index``'s reading ``field`` from the text typed: empty is missing (NaN
        for an activity, '' for a time), never 0; a refused text (a comma, a unit, NaN,
        out of range, a time without its UTC offset) raises a ValueError naming the field,
        the text and what is allowed, and leaves the parameter as it was."""
        from tareplanner.mrml import guided
        from tareplanner.mrml.parameters import READING_FIELDS
        from tareplanner.web import forms
        if field not in READING_FIELDS:
            raise ValueError(f"reading: got {field!r}; allowed: {', '.join(READING_FIELDS)}")
        positions = list(p.positions)
        if not 0 <= index < len(positions):
            raise ValueError(f"position: got {index + 1}; allowed: 1 to {len(positions)}")
        spec = forms.POSITION_FIELDS[field]
        label = forms.position_label(index, positions[index].name, spec.label)
        guided.update_position(p, index, **{field: forms.parse(spec, text, label)})


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
        for index, position in enumerate(list(p.positions)):
            if position.name in prescribed:
                logic.updatePosition(p, index, vialGbq=prescribed[position.name],
                                     vialTime=p.treatmentTime, administeredAt=p.treatmentTime,
                                     residualGbq=0.0, residualTime=p.treatmentTime)
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
