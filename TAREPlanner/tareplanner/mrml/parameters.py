"""The module's parameters, declared once.

The guided workflow (:mod:`.guided`) reads everything from one parameter object ``p``. Its
fields are declared here, once, as plain dataclasses:

- :class:`InjectionPosition`: one injection position (its name, its CBCT, its goal and its
  dose-calibrator readings on the treatment day);
- :class:`Parameters`: the inputs of every step, ``positions`` as a list of any length, and
  the results the steps keep (records in text nodes, the step log).

Three views use the declaration: the headless tests and the web application use
:class:`Parameters` itself; the Slicer module builds its ``parameterNodeWrapper`` class (saved
with the scene, bound to the panel) from the same declaration with
:func:`slicer_parameter_node_class` (``positions`` becomes a ``list`` of a ``parameterPack``).
The field metadata say what the Slicer wrapper needs: the MRML class of a node reference, the
allowed values of a choice, and whether a field is a step's result rather than an input.

Whole lists are assigned (``p.positions = [...]``), never changed in place, so that the Slicer
parameter node sees every change (its list elements are copies).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from ..physics.solver import GOAL_KINDS

PRODUCTS = ("therasphere", "sir-spheres", "quiremspheres")
#: the scenario's choices, as in data/guidelines.json (NOT_GIVEN: no scenario)
NOT_GIVEN = "not given"
INTENTS = (NOT_GIVEN, "segmentectomy", "lobectomy", "unilobar", "bilobar")
HISTOLOGIES = (NOT_GIVEN, "hcc", "icc", "mcrc", "net", "other")
METHODS = ("partition", "single-compartment", "bsa")
POST_TREATMENT_KINDS = ("pet", "spect")

SCALAR_VOLUME = "vtkMRMLScalarVolumeNode"
SEGMENTATION = "vtkMRMLSegmentationNode"
TEXT = "vtkMRMLTextNode"


def _node(node_class: str, *, result: bool = False):
    """A node reference (None until chosen); ``result``: made by a step, not chosen."""
    return field(default=None, metadata={"node_class": node_class, "result": result})


def _choice(default: str, choices: tuple[str, ...]):
    return field(default=default, metadata={"choices": tuple(choices)})


@dataclass
class InjectionPosition:
    """One injection position: its name (the treatment site of the directive), its CBCT, its
    planning goal and, on the treatment day, one vial and one residual dose-calibrator reading
    with their times and the administration time (ISO 8601 with the UTC offset). The
    readings start empty: an activity nobody entered is missing (NaN), never 0, and the
    administration step refuses it, naming the field."""

    name: str = ""
    cbct: object = _node(SCALAR_VOLUME)
    goalKind: str = _choice("tumour_dose_gy", GOAL_KINDS)
    goalValue: float = 250.0
    vialGbq: float = math.nan
    vialTime: str = ""
    residualGbq: float = math.nan
    residualTime: str = ""
    administeredAt: str = ""


#: the fields of a position read by the plan step (its goal)
GOAL_FIELDS = ("goalKind", "goalValue")
#: the fields of a position read by the administration step (its readings)
READING_FIELDS = ("vialGbq", "vialTime", "residualGbq", "residualTime", "administeredAt")


@dataclass
class Parameters:
    """The inputs of every step and the results the steps keep (see the module docstring)."""

    ctVolume: object = _node(SCALAR_VOLUME)
    spectVolume: object = _node(SCALAR_VOLUME)
    segmentation: object = _node(SEGMENTATION)
    diagnosticCt: object = _node(SCALAR_VOLUME)
    product: str = _choice("therasphere", PRODUCTS)
    method: str = _choice("partition", METHODS)
    treatmentTime: str = ""
    # the scenario that selects the guideline rows (intent, histology, liver function);
    # bilirubin as text: "" is "not given" (0 is a value)
    treatmentIntent: str = _choice(NOT_GIVEN, INTENTS)
    histology: str = _choice(NOT_GIVEN, HISTOLOGIES)
    bilirubinMgDl: str = ""
    liverCompromised: bool = False
    priorTreatment: bool = False
    #: more favourable liver function (EANM 2022 Table 4 footnote ***: Ho-166 bilobar up to
    #: 60 Gy whole normal liver instead of < 40 Gy)
    favourableLiverFunction: bool = False
    positions: list[InjectionPosition] = field(default_factory=list)
    lungBaseMarginMm: float = 0.0
    #: the scout SPECT's camera file (tareplanner.camera/1, ``tareplanner calibrate``): its
    #: measured resolution corrects the TNRs and the LSF; empty: an assumed one, said so
    spectCameraFile: str = ""
    manualLsf: bool = False
    manualLsfPercent: float = 0.0
    manualTnr: str = ""
    voxelDosimetry: bool = True
    isodoseLevelsGy: str = ""
    siteLimitsFile: str = ""
    #: dose-response fit of the plan: a tareplanner.response/1 file or published:KEY
    responseFit: str = ""
    siteTolerancePercent: float = 0.0
    #: why dose-calibrator readings outside the plausible range are right (recorded with
    #: the administration); empty: such readings are refused
    confirmReadingsReason: str = ""
    postTreatmentVolume: object = _node(SCALAR_VOLUME)
    postTreatmentKind: str = _choice("pet", POST_TREATMENT_KINDS)
    #: the post-treatment PET's or SPECT's own camera file: corrects the structure mean doses
    postTreatmentCameraFile: str = ""
    administrationTime: str = ""
    acquisitionTime: str = ""
    administeredActivityGbq: float = 0.0
    outputFolder: str = ""
    exportDicom: bool = False
    # results of the steps
    measurementRecord: object = _node(TEXT, result=True)
    planRecord: object = _node(TEXT, result=True)
    directiveRecord: object = _node(TEXT, result=True)
    administrationRecord: object = _node(TEXT, result=True)
    plannedDoseReport: object = _node(TEXT, result=True)
    deliveredDoseReport: object = _node(TEXT, result=True)
    stepLog: str = field(default="", metadata={"result": True})


def panel_fields(cls=Parameters) -> list[str]:
    """The fields a panel shows (inputs), in declaration order."""
    return [f.name for f in dataclasses.fields(cls) if not f.metadata.get("result")]


def result_fields(cls=Parameters) -> list[str]:
    """The fields the steps write (records and the step log)."""
    return [f.name for f in dataclasses.fields(cls) if f.metadata.get("result")]


def slicer_annotations(cls, *, node_type, choice, pack_of) -> dict[str, tuple[object, object]]:
    """Field name -> (annotation, default) of ``cls`` for Slicer's parameter node wrapper:
    ``node_type(class_name)`` gives the MRML class, ``choice(values)`` the ``Choice``
    annotation of a string, ``pack_of(dataclass)`` the ``parameterPack`` of a nested
    dataclass (for ``list[...]`` fields)."""
    import typing
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if "node_class" in f.metadata:
            out[f.name] = (node_type(f.metadata["node_class"]), None)
        elif "choices" in f.metadata:
            out[f.name] = (typing.Annotated[str, choice(list(f.metadata["choices"]))], f.default)
        elif typing.get_origin(hint) is list:
            (element,) = typing.get_args(hint)
            out[f.name] = (list[pack_of(element)], None)
        else:
            out[f.name] = (hint, f.default)
    return out


def slicer_parameter_node_class(name: str = "TAREPlannerParameterNode"):
    """The ``parameterNodeWrapper`` class of :class:`Parameters` (Slicer application only):
    ``positions`` is a ``list`` of the ``parameterPack`` of :class:`InjectionPosition`."""
    import slicer
    from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper, parameterPack

    def node_type(class_name):
        return getattr(slicer, class_name)

    def build(cls, class_name, decorate):
        namespace = {"__doc__": cls.__doc__, "__module__": __name__, "__annotations__": {}}
        for field_name, (annotation, default) in slicer_annotations(
                cls, node_type=node_type, choice=Choice, pack_of=pack_of).items():
            namespace["__annotations__"][field_name] = annotation
            if default is not None:
                namespace[field_name] = default
        return decorate(type(class_name, (), namespace))

    packs = {}

    def pack_of(element):
        if element not in packs:
            packs[element] = build(element, f"TAREPlanner{element.__name__}", parameterPack)
        return packs[element]

    wrapper = build(Parameters, name, parameterNodeWrapper)
    wrapper.position_type = pack_of(InjectionPosition)
    return wrapper


#: the element type of ``Parameters.positions`` (the Slicer wrapper sets its parameterPack)
Parameters.position_type = InjectionPosition
POSITION_FIELDS = tuple(f.name for f in dataclasses.fields(InjectionPosition))
