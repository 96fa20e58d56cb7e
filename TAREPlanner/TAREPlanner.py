"""TAREPlanner: 3D Slicer scripted module for liver radioembolization planning.

The module class only describes itself; the Widget holds no physics; the Logic calls the
core package ``tareplanner`` (installed beside this file), which the command line uses too.
"""

import logging
import os

import slicer
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest,
                                           ScriptedLoadableModuleWidget)


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
            "SIR-Spheres, TheraSphere and QuiremSpheres: lung shunt fraction, tumour-to-normal "
            "ratio, single-compartment, partition and BSA activity planning per injection "
            "position against each product's limits. The same engine runs on the command line "
            "as <code>tareplanner</code>. See the documentation in the extension's docs folder.")
        self.parent.acknowledgementText = (
            "Physics references are listed in docs/physics.md of the TAREPlanner extension.")


class TAREPlannerWidget(ScriptedLoadableModuleWidget):
    """A minimal panel: choose a case file, plan it, show the summary."""

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        import ctk
        import qt

        self.logic = TAREPlannerLogic()
        box = ctk.ctkCollapsibleButton()
        box.text = "Plan from a case file"
        self.layout.addWidget(box)
        form = qt.QFormLayout(box)
        self.casePathEdit = ctk.ctkPathLineEdit()
        self.casePathEdit.filters = ctk.ctkPathLineEdit.Files
        self.casePathEdit.nameFilters = ["Case files (*.json)"]
        form.addRow("Case (tareplanner.case/1):", self.casePathEdit)
        self.planButton = qt.QPushButton("Plan")
        form.addRow(self.planButton)
        self.summaryText = qt.QPlainTextEdit()
        self.summaryText.readOnly = True
        form.addRow(self.summaryText)
        self.planButton.connect("clicked(bool)", self.onPlan)
        self.layout.addStretch(1)

    def onPlan(self):
        with slicer.util.tryWithErrorDisplay("Planning failed.", waitCursor=True):
            self.summaryText.plainText = self.logic.planSummaryFromCaseFile(
                self.casePathEdit.currentPath)


class TAREPlannerLogic(ScriptedLoadableModuleLogic):
    """Calls the core package and its MRML layer (tareplanner.mrml.workflow); takes nodes and
    plain arguments, raises ValueError on bad input, never touches widgets."""

    def registerCbct(self, ctNode, cbctNode, segmentationNode):
        from tareplanner.mrml import workflow
        return workflow.register_cbct(slicer.mrmlScene, ctNode, cbctNode, segmentationNode)

    def addLungsFromCT(self, ctNode, segmentationNode):
        from tareplanner.mrml import workflow
        workflow.add_lungs_from_ct(ctNode, segmentationNode)

    def addTerritoryFromCbct(self, ctNode, cbctNode, transformNode, registration,
                             segmentationNode, positionName):
        from tareplanner.mrml import workflow
        workflow.add_territory_from_cbct(ctNode, cbctNode, transformNode, registration,
                                         segmentationNode, positionName)

    def measure(self, ctNode, spectNode, segmentationNode, lungBaseMarginMm=0.0):
        from tareplanner.mrml import workflow
        return workflow.measure_from_nodes(ctNode, spectNode, segmentationNode,
                                           lung_base_margin_mm=lungBaseMarginMm)

    def planFromCaseFile(self, casePath):
        from tareplanner.planning import plan_case
        from tareplanner.records.case import read_case

        return plan_case(read_case(casePath))

    def planSummaryFromCaseFile(self, casePath):
        from tareplanner.records.plan_text import plan_summary

        return plan_summary(self.planFromCaseFile(casePath))


class TAREPlannerTest(ScriptedLoadableModuleTest):
    """Self-test run by Slicer: plans the built-in example case."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_plan_demo_case()

    def test_plan_demo_case(self):
        import json
        import tempfile

        from tareplanner.cli.main import demo_case_document

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "case.json")
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(demo_case_document(), handle)
            record = TAREPlannerLogic().planFromCaseFile(path)
        self.assertEqual(record["schema"], "tareplanner.plan/1")
        self.assertGreater(record["total_activity_gbq"], 0)
        logging.info("TAREPlanner self-test passed")
