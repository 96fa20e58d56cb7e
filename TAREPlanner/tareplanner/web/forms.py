"""The page's typed fields: what each one is called, what it accepts, and its text.

A field's text is read only when the field is left (or Enter is pressed), never while it is
typed into, and it is read here, once: :func:`parse` turns the text into the parameter's value
or raises :class:`~tareplanner.errors.FieldValueError` naming the field as the page labels it
("Vial activity (GBq) of position 1"), the text and what is allowed. Nothing is guessed:

- an empty numeric field is **missing** (NaN in the parameter object), never 0: the actions
  that read it are refused, naming it (:func:`missing_numbers`);
- a number is digits with a point: ``1,5`` (a decimal comma), ``4 GBq`` (a unit: the unit is
  in the label), ``NaN``, ``inf`` and anything beyond the field's range are refused;
- a time is ISO 8601 with its UTC offset; a name or a list is at most :data:`MAX_TEXT`
  characters.

The ranges of the numbers are the form's plausibility bounds (a typing slip such as an extra
zero is refused before it reaches a step), not clinical limits: the steps apply the limits
of the catalogue and the site. The module imports no web toolkit, so the default test run
covers it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime

from ..errors import FieldValueError
from ..records.fields import NAME_ALLOWED, REASON_ALLOWED, name_problem, reason_problem

#: the longest text a field takes (names, lists, times)
MAX_TEXT = 200
#: a decimal number as typed: digits with an optional point and exponent, nothing else
NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")

#: goal kind -> its words with the unit (the choice list and the plan table show these)
GOAL_LABELS = {"tumour_dose_gy": "Tumour dose (Gy)", "normal_dose_gy": "Normal-liver dose (Gy)",
               "perfused_dose_gy": "Perfused-volume dose (Gy)",
               "activity_gbq": "Activity (GBq)", "maximum": "Maximum the limits allow"}
#: goal kind -> (smallest, largest) value the form takes (plausibility bounds)
GOAL_RANGES = {"tumour_dose_gy": (0.0, 2000.0), "normal_dose_gy": (0.0, 2000.0),
               "perfused_dose_gy": (0.0, 2000.0), "activity_gbq": (0.0, 100.0)}
GOAL_UNITS = {"tumour_dose_gy": "Gy", "normal_dose_gy": "Gy", "perfused_dose_gy": "Gy",
              "activity_gbq": "GBq"}


@dataclass(frozen=True)
class Field:
    """One typed field: its label (with the unit), its kind ('number', 'time', 'name',
    'reason', 'levels', 'tnr'), the numbers' range (``low`` < value, or <= with ``low_inclusive``;
    value <= ``high``) and the unit; ``empty``: what an empty field means ('missing', or
    'none' for the fields whose label says what none is)."""

    label: str
    kind: str = "number"
    low: float = 0.0
    high: float = math.inf
    low_inclusive: bool = True
    unit: str = ""
    empty: str = "missing"
    #: the value an empty field stands for when ``empty`` is 'none'
    none_value: object = ""


#: parameter fields (guided.Parameters) typed on the page
VALUE_FIELDS = {
    "lungBaseMarginMm": Field("Lung-base margin (mm)", high=100.0, unit="mm"),
    "manualLsfPercent": Field("Manual LSF (%)", high=99.9, unit="%"),
    "manualTnr": Field("Manual TNRs", "tnr", empty="none"),
    "treatmentTime": Field("Treatment time", "time", empty="none"),
    "isodoseLevelsGy": Field("Isodose levels (Gy)", "levels", empty="none"),
    "siteTolerancePercent": Field("Site tolerance (%)", high=100.0, unit="%"),
    "confirmReadingsReason": Field("Reason the readings are right", "reason", empty="none"),
    "administrationTime": Field("Administration time", "time", empty="none"),
    "acquisitionTime": Field("Acquisition time", "time", empty="none"),
    "administeredActivityGbq": Field("Administered activity (GBq)", high=100.0, unit="GBq",
                                     empty="none", none_value=0.0),
    # kept as its text ("" is not given, 0 is a value)
    "bilirubinMgDl": Field("Total bilirubin (mg/dL)", "number text", high=50.0,
                           unit="mg/dL", empty="none"),
}
#: injection-position fields typed on the page (the goal's label depends on its kind)
POSITION_FIELDS = {
    "name": Field("Name", "name", empty="none"),
    "goalValue": Field("Goal"),
    "vialGbq": Field("Vial activity (GBq)", low=0.0, low_inclusive=False, high=100.0,
                     unit="GBq"),
    "vialTime": Field("Vial time", "time", empty="none"),
    "residualGbq": Field("Residual activity (GBq)", high=100.0, unit="GBq"),
    "residualTime": Field("Residual time", "time", empty="none"),
    "administeredAt": Field("Administration time", "time", empty="none"),
}

#: action -> the page fields it reads ('name' for a parameter, '*.name' for every position's)
ACTION_FIELDS = {
    "registration": ("*.name",),
    "territories": ("*.name",),
    "measurement": ("lungBaseMarginMm",),
    "plan": ("*.name", "*.goalValue", "treatmentTime", "manualLsfPercent", "manualTnr",
             "isodoseLevelsGy"),
    "administration": ("siteTolerancePercent", "confirmReadingsReason", "*.vialGbq", "*.vialTime", "*.residualGbq",
                       "*.residualTime", "*.administeredAt"),
    "verification": ("administrationTime", "acquisitionTime", "administeredActivityGbq"),
}


def goal_text(kind: str, value) -> str:
    """A recorded goal in words: 'Tumour dose 250 Gy', 'Maximum the limits allow'."""
    label = GOAL_LABELS.get(kind, kind)
    if value is True or kind not in GOAL_UNITS:
        return label
    return f"{label.split(' (')[0]} {value:g} {GOAL_UNITS[kind]}"


def goal_field(kind: str) -> Field:
    """The goal value's field for a goal kind: its label and range."""
    low, high = GOAL_RANGES.get(kind, (0.0, math.inf))
    return Field(GOAL_LABELS.get(kind, kind), low=low, low_inclusive=False, high=high,
                 unit=GOAL_UNITS.get(kind, ""))


def position_label(index: int, name: str, label: str) -> str:
    """'Vial activity (GBq) of position 1 (right hepatic)'."""
    who = f"position {index + 1}" + (f" ({name})" if (name or "").strip() else "")
    return f"{label} of {who}"


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _range_text(spec: Field) -> str:
    unit = f" {spec.unit}" if spec.unit else ""
    low = f"{spec.low:g}" if spec.low_inclusive else f"more than {spec.low:g}"
    high = "" if math.isinf(spec.high) else f" to {spec.high:g}"
    return f"a number from {low}{high}{unit}" if spec.low_inclusive else \
        f"a number {low}{unit}" + (f" and at most {spec.high:g}{unit}" if high else "")


def _refuse(label: str, text: str, allowed: str) -> FieldValueError:
    return FieldValueError(label, _short(text), allowed)


def parse_number(spec: Field, text: str, label: str | None = None) -> float:
    """The number of a numeric field's text; NaN for an empty field that is missing."""
    label = label or spec.label
    stripped = text.strip()
    if not stripped:
        if spec.empty == "none":
            return spec.none_value
        return math.nan
    if len(stripped) > 40:
        raise _refuse(label, stripped, "a number of at most 40 characters")
    if not NUMBER.fullmatch(stripped):
        if re.fullmatch(r"[+-]?\d+,\d+", stripped):
            why = f"{_range_text(spec)}, with a point as the decimal separator (1.5, not 1,5)"
        elif re.match(r"[+-]?(\d+(\.\d*)?|\.\d+)\s*\S", stripped):
            why = f"{_range_text(spec)}, without a unit (the unit is in the label)"
        else:
            why = _range_text(spec)
        raise _refuse(label, stripped, why)
    value = float(stripped)
    below = value < spec.low if spec.low_inclusive else value <= spec.low
    if not math.isfinite(value) or below or value > spec.high:
        raise _refuse(label, stripped, _range_text(spec))
    return value


def parse_time(spec: Field, text: str, label: str | None = None) -> str:
    label = label or spec.label
    stripped = text.strip()
    if not stripped:
        return ""
    allowed = "an ISO 8601 date and time with its UTC offset, e.g. 2026-12-01T10:00:00+01:00"
    if len(stripped) > 40:
        raise _refuse(label, stripped, allowed)
    try:
        value = datetime.fromisoformat(stripped)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None or not re.match(r"\d{4}-\d{2}-\d{2}", stripped):
        raise _refuse(label, stripped, allowed)
    return stripped


def parse(spec: Field, text, label: str | None = None):
    """The parameter value of a field's text (see the module docstring)."""
    label = label or spec.label
    if text is None:
        text = ""
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise _refuse(label, repr(text), "text typed into the field")
    text = str(text)
    if "\x00" in text or len(text) > MAX_TEXT:
        raise _refuse(label, text, f"at most {MAX_TEXT} characters of text")
    if spec.kind == "number":
        return parse_number(spec, text, label)
    if spec.kind == "time":
        return parse_time(spec, text, label)
    if spec.kind == "number text":
        return "" if not text.strip() else f"{parse_number(spec, text, label):g}"
    stripped = text.strip()
    if spec.kind == "levels" and stripped:
        from ..mrml.isodose import parse_levels_gy
        levels = parse_levels_gy(stripped, label)
        if any(not math.isfinite(v) or v > 2000.0 for v in levels):
            raise _refuse(label, stripped, "doses in Gy from more than 0 to 2000, separated by "
                                           "commas")
    if spec.kind == "tnr" and stripped:
        from ..imaging.measure import parse_manual_tnr
        values = parse_manual_tnr(stripped, label)
        if any(not (math.isfinite(v) and 0 < v <= 1000) for v in values.values()):
            raise _refuse(label, stripped, "tumour=TNR pairs with TNRs from more than 0 to "
                                           "1000, e.g. T1=3.2, T2=2.5")
    if spec.kind == "name" and stripped and name_problem(stripped) is not None:
        raise _refuse(label, stripped, NAME_ALLOWED)
    if spec.kind == "reason" and stripped and reason_problem(stripped) is not None:
        raise _refuse(label, stripped, REASON_ALLOWED)
    return stripped


def number_text(value) -> str:
    """A parameter number as its field shows it: empty when missing (NaN or None)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


def is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def missing_numbers(p, action: str) -> list[str]:
    """The numeric fields ``action`` reads that are empty (missing), by their labels."""
    out = []
    for entry in ACTION_FIELDS.get(action, ()):
        if entry.startswith("*."):
            name = entry[2:]
            for index, position in enumerate(p.positions):
                if not (position.name or "").strip():
                    continue
                if name == "goalValue":
                    if position.goalKind == "maximum":
                        continue
                    label = goal_field(position.goalKind).label
                else:
                    label = POSITION_FIELDS[name].label
                if POSITION_FIELDS[name].kind == "number" and is_missing(getattr(position, name)):
                    out.append(position_label(index, position.name, label) + " is empty")
        else:
            spec = VALUE_FIELDS[entry]
            if entry == "manualLsfPercent" and not p.manualLsf:
                continue
            if spec.kind == "number" and is_missing(getattr(p, entry)):
                out.append(f"{spec.label} is empty")
    return out
