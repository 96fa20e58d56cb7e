"""Dose thresholds as data, with their scope and strength (``data/guidelines.json``).

Every threshold a plan is checked against is a row: the quantity it bounds (tumour, perfused
volume, normal perfused liver, whole normal liver, whole liver, lung), the threshold and its
direction (a target to reach, a limit to stay below, a prescription or a range), the scenario
it holds in (product, treatment intent, histology, liver function), the exact source (document,
table, row) and level of evidence, and its kind:

- ``hard``: instructions for use, regulation, or the site's choice. Hard limits bind the solver.
- ``recommendation``: EANM 2022 Tables 2-4, Salem et al. 2023. A recommendation is checked and
  shown (met or not, by how much, source, level) and never scales a plan by itself. A site
  promotes one to a hard limit, or changes its value, in its site-limits file, with a reason
  that every record carries.
- ``regulatory-report``: a regulation's reporting criterion (US NRC 10 CFR 35.3045 medical
  event). Checked and shown, never a dose limit of the solver. Its source says "20 percent
  or more", so the row is ``"edge": "strict"``: a value equal to its threshold does not meet
  it (exactly 20 % is a medical event).

A row's ``basis`` is ``printed`` (the value is printed in its source for that scenario) or
``extrapolation`` (TAREPlanner applies a printed value outside the printed scope, for the
reason in the row text).

This module is pure: it reads its packaged data file and evaluates rows against numbers.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from typing import Any, Iterable, Mapping

from .errors import FieldValueError, MissingFieldError, SchemaError, UnknownNameError
from .records.fields import check_keys, require_object, suggestion

GUIDELINES_SCHEMA = "tareplanner.guidelines/1"
SCENARIO_FIELDS = ("intent", "histology", "bilirubin_mg_dl", "prior_treatment",
                   "favourable_liver_function")
#: Quantities a row can bound, with the goal kind that reaches a target on it (if any).
QUANTITIES = {"tumour": "tumour_dose_gy", "perfused": "perfused_dose_gy",
              "normal_perfused": "normal_dose_gy", "whole_normal_liver": None,
              "whole_liver": None, "lung_single": None, "lung_cumulative": None,
              "lung_shunt_fraction": None, "activity_deviation": None,
              "non_treatment_site_dose_excess": None}
QUANTITY_LABELS = {"tumour": "tumour", "perfused": "perfused volume",
                   "normal_perfused": "normal perfused liver",
                   "whole_normal_liver": "whole normal liver", "whole_liver": "whole liver",
                   "lung_single": "lung (this treatment)", "lung_cumulative": "lung (cumulative)",
                   "lung_shunt_fraction": "lung shunt fraction",
                   "activity_deviation": "vial activity vs directive (pre-order)",
                   "non_treatment_site_dose_excess": "organ dose above expected"}
OPERATORS = ("<", "<=", ">", ">=", "=", "range")
KINDS = ("hard", "recommendation", "regulatory-report")
EDGES = ("equal meets", "strict")
BASES = ("printed", "extrapolation")
#: The scope of a row that holds for every intent or every histology.
ANY = ("any",)
IF_UNKNOWN = ("not applicable", "not evaluated")
ROW_FIELDS = ("id", "product", "intents", "histologies", "quantity", "operator", "value",
              "high", "relative_value", "unit", "printed", "kind", "document", "table", "row",
              "loe", "when", "only_if", "note", "product_limit", "edge", "basis",
              "jurisdiction")
#: Quantities a promoted row can bind in the solver (per position, or shared by all).
PER_POSITION_BINDABLE = ("normal_perfused", "perfused")
SHARED_BINDABLE = ("whole_normal_liver", "whole_liver")
#: Relative round-off allowed when comparing a plan value with a threshold.
RTOL = 1e-9
BILIRUBIN_MAX_MG_DL = 50.0


@dataclass(frozen=True)
class Scenario:
    """What the thresholds depend on: treatment intent, histology and liver function."""

    intent: str
    histology: str
    bilirubin_mg_dl: float | None
    prior_treatment: bool
    liver_compromised: bool
    favourable_liver_function: bool = False

    def as_dict(self) -> dict:
        return {"intent": self.intent, "histology": self.histology,
                "bilirubin_mg_dl": self.bilirubin_mg_dl, "prior_treatment": self.prior_treatment,
                "liver_compromised": self.liver_compromised,
                "favourable_liver_function": self.favourable_liver_function}


@dataclass(frozen=True)
class Row:
    id: str
    product: str
    intents: tuple[str, ...]
    histologies: tuple[str, ...]
    quantity: str
    operator: str
    value: float | None
    high: float | None
    unit: str
    printed: str
    kind: str
    document: str
    table: str
    row: str
    loe: str
    when: tuple[Mapping[str, Any], ...] = ()
    only_if: Mapping[str, Any] | None = None
    note: str = ""
    product_limit: str | None = None
    site_change: Mapping[str, Any] | None = None
    edge: str = "equal meets"
    basis: str = "printed"
    jurisdiction: str = ""
    relative_value: float | None = None

    @property
    def direction(self) -> str:
        return {"<": "limit", "<=": "limit", ">": "target", ">=": "target",
                "=": "prescription", "range": "range"}[self.operator]

    def source(self, documents: Mapping[str, Any] | None = None) -> str:
        documents = documents or data()["documents"]
        cite = documents[self.document]["citation"].split(". ")[0] if self.document in \
            documents else self.document
        short = {"eanm-2022": "EANM 2022 (Weber et al.)", "salem-2023": "Salem et al. 2023"}
        text = f"{short.get(self.document, cite)}, {self.table}, {self.row}"
        if self.basis == "extrapolation":
            text = "TAREPlanner extrapolation of " + text
        return text

    def threshold_text(self) -> str:
        if self.operator == "range":
            return f"{self.value:g}–{self.high:g} {self.unit}"
        unit = "" if self.unit == "fraction" else f" {self.unit}"
        value = f"{self.value:.0%}" if self.unit == "fraction" else f"{self.value:g}"
        strict = " (equal: not met)" if self.edge == "strict" else ""
        return f"{self.operator} {value}{unit}{strict}"


@lru_cache(maxsize=None)
def data() -> dict:
    """The packaged guideline table (``data/guidelines.json``)."""
    text = resources.files("tareplanner.data").joinpath("guidelines.json").read_text("utf-8")
    document = json.loads(text)
    if document.get("schema") != GUIDELINES_SCHEMA:
        raise SchemaError("guidelines.json schema", document.get("schema"), GUIDELINES_SCHEMA)
    return document


def intents() -> tuple[str, ...]:
    return tuple(data()["intents"])


def histologies() -> tuple[str, ...]:
    return tuple(data()["histologies"])


def _bad(entry: Any, field: str, value: Any, allowed: str) -> SchemaError:
    rid = entry.get("id", "?") if isinstance(entry, dict) else "?"
    return SchemaError(f"guidelines.json row {rid}: {field}", value, allowed)


def _scope(entry: Mapping[str, Any], field: str, known: Iterable[str]) -> tuple[str, ...]:
    """``intents``/``histologies``: a non-empty list of known names, or ``["any"]``."""
    value = entry.get(field)
    known = tuple(known)
    allowed = f'["any"] or a non-empty list of {", ".join(known)}'
    if not isinstance(value, list) or not value or \
            not all(isinstance(v, str) for v in value):
        raise _bad(entry, field, value, allowed)
    if list(value) == list(ANY):
        return ANY
    if any(v not in known for v in value) or len(set(value)) != len(value):
        raise _bad(entry, field, value, allowed)
    return tuple(value)


def _number(entry: Mapping[str, Any], field: str, required: bool) -> float | None:
    value = entry.get(field)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value):
        raise _bad(entry, field, value, "a finite number")
    return value


def parse_row(entry: Any, document: Mapping[str, Any] | None = None) -> Row:
    """One row of the guideline table, checked: known fields, scope lists, quantity,
    operator, kind, edge, basis and conditions. A malformed row raises SchemaError naming
    the row, the field, the value and what is allowed."""
    document = document if document is not None else data()
    if not isinstance(entry, dict):
        raise SchemaError("guidelines.json row", entry, "an object")
    unknown = sorted(set(entry) - set(ROW_FIELDS))
    if unknown:
        raise _bad(entry, unknown[0], entry[unknown[0]], "one of " + ", ".join(ROW_FIELDS))
    for field in ("id", "product", "unit", "printed", "document", "table", "row", "loe"):
        if not isinstance(entry.get(field), str) or not entry[field].strip():
            raise _bad(entry, field, entry.get(field), "non-empty text")
    choices = {"quantity": tuple(QUANTITIES), "operator": OPERATORS, "kind": KINDS}
    for field, allowed in choices.items():
        if entry.get(field) not in allowed:
            raise _bad(entry, field, entry.get(field), "one of " + ", ".join(allowed))
    edge = entry.get("edge", "equal meets")
    if edge not in EDGES:
        raise _bad(entry, "edge", edge, "one of " + ", ".join(EDGES))
    basis = entry.get("basis", "printed")
    if basis not in BASES:
        raise _bad(entry, "basis", basis, "one of " + ", ".join(BASES))
    if entry["kind"] == "regulatory-report" and edge != "strict":
        raise _bad(entry, "edge", edge, "'strict' for a regulatory-report row (its source "
                   "counts a value equal to the threshold as an event: '... or more')")
    if entry["document"] not in document.get("documents", {}):
        raise _bad(entry, "document", entry["document"], "a key of documents")
    value = _number(entry, "value", required=entry.get("product_limit") is None)
    high = _number(entry, "high", required=entry["operator"] == "range")
    when = entry.get("when") or []
    if not isinstance(when, list):
        raise _bad(entry, "when", when, "a list of conditions")
    for p in when:
        if not isinstance(p, dict) or p.get("field") not in Facts.__dataclass_fields__ \
                or p.get("op") not in ("<", "<=", ">", ">=", "==", "missing") \
                or p.get("if_unknown", "not evaluated") not in IF_UNKNOWN:
            raise _bad(entry, "when", p, "conditions {field: one of " + ", ".join(
                Facts.__dataclass_fields__) + ", op, value, if_unknown: one of "
                + ", ".join(IF_UNKNOWN) + "}")
    return Row(id=entry["id"], product=entry["product"],
               intents=_scope(entry, "intents", document.get("intents", ())),
               histologies=_scope(entry, "histologies", document.get("histologies", ())),
               quantity=entry["quantity"], operator=entry["operator"], value=value, high=high,
               unit=entry["unit"], printed=entry["printed"], kind=entry["kind"],
               document=entry["document"], table=entry["table"], row=entry["row"],
               loe=entry["loe"], when=tuple(when), only_if=entry.get("only_if"),
               note=entry.get("note", ""), product_limit=entry.get("product_limit"),
               edge=edge, basis=basis, jurisdiction=entry.get("jurisdiction", ""),
               relative_value=_number(entry, "relative_value", required=False))


def parse_rows(document: Mapping[str, Any]) -> tuple[Row, ...]:
    """Every row of a guideline document, each checked by :func:`parse_row`; ids unique."""
    out = tuple(parse_row(e, document) for e in document.get("rows", ()))
    ids = [r.id for r in out]
    duplicate = next((i for i in ids if ids.count(i) > 1), None)
    if duplicate:
        raise SchemaError("guidelines.json row id", duplicate, "unique ids")
    return out


@lru_cache(maxsize=None)
def rows() -> tuple[Row, ...]:
    """Every row of the guideline table, as published (before any site change)."""
    return parse_rows(data())


def row_ids() -> tuple[str, ...]:
    return tuple(r.id for r in rows())


# --- the scenario ------------------------------------------------------------------------

def _choice(value: Any, field: str, choices: Iterable[str], aliases: Mapping[str, str]) -> str:
    choices = tuple(choices)
    if isinstance(value, str):
        key = value.strip().casefold()
        key = aliases.get(key, key)
        if key in choices:
            return key
    names = choices + tuple(aliases)
    raise UnknownNameError(field, value, "one of " + ", ".join(choices)
                           + (" (also " + ", ".join(aliases) + ")" if aliases else ""),
                           suggestion(value, names, any_case=True))


def parse_scenario(raw: Any, liver_compromised: bool = False) -> Scenario | None:
    """The case's ``scenario`` section (``None`` when absent). Intent and histology are
    required; an unknown one is refused with the closest name suggested; total bilirubin in
    mg/dL is optional, a finite number from 0 to 50."""
    if raw is None:
        return None
    obj = require_object(raw, "scenario")
    check_keys(obj, "scenario", SCENARIO_FIELDS)
    for key in ("intent", "histology"):
        if obj.get(key) is None:
            raise MissingFieldError(f"scenario.{key}", "one of " + ", ".join(
                intents() if key == "intent" else histologies()))
    intent = _choice(obj["intent"], "scenario.intent", intents(), data()["intent_aliases"])
    histology = _choice(obj["histology"], "scenario.histology", histologies(), {})
    bili = obj.get("bilirubin_mg_dl")
    if bili is not None and (isinstance(bili, bool) or not isinstance(bili, (int, float))
                             or not math.isfinite(bili) or not 0 <= bili <= BILIRUBIN_MAX_MG_DL):
        raise FieldValueError("scenario.bilirubin_mg_dl", bili,
                              f"total bilirubin in mg/dL, a number from 0 to "
                              f"{BILIRUBIN_MAX_MG_DL:g} (or leave it out)")
    prior = obj.get("prior_treatment", False)
    if not isinstance(prior, bool):
        raise FieldValueError("scenario.prior_treatment", prior,
                              "true or false (prior chemotherapy or liver-directed treatment)")
    favourable = obj.get("favourable_liver_function", False)
    if not isinstance(favourable, bool):
        raise FieldValueError("scenario.favourable_liver_function", favourable,
                              "true or false (more favourable liver function, EANM 2022 "
                              "Table 4 footnote ***)")
    if favourable and liver_compromised:
        raise FieldValueError("scenario.favourable_liver_function", favourable,
                              "false when the case says liver_compromised: true")
    return Scenario(intent=intent, histology=histology, favourable_liver_function=favourable,
                    bilirubin_mg_dl=None if bili is None else float(bili),
                    prior_treatment=prior, liver_compromised=bool(liver_compromised))


# --- site changes ------------------------------------------------------------------------

def validate_site_guidelines(section: Any, label: str) -> None:
    """A site file's ``guidelines`` section: ``promote`` (a recommendation becomes a hard
    limit) and ``change`` (a row's value), each with the row id and a reason."""
    where = f"{label}.guidelines"
    obj = require_object(section, where)
    check_keys(obj, where, ("promote", "change"))
    known = {r.id: r for r in rows()}
    for part in ("promote", "change"):
        entries = obj.get(part, [])
        if not isinstance(entries, list):
            raise FieldValueError(f"{where}.{part}", entries, "a list of {row, reason} objects")
        for i, entry in enumerate(entries):
            at = f"{where}.{part}[{i}]"
            entry = require_object(entry, at)
            check_keys(entry, at, ("row", "reason") + (("value",) if part == "change" else ()))
            row_id = entry.get("row")
            if row_id not in known:
                raise UnknownNameError(f"{at}.row", row_id,
                                       "the id of a row of data/guidelines.json (see "
                                       "docs/physics.md or `tareplanner guidelines --all`)",
                                       suggestion(row_id, known))
            reason = entry.get("reason")
            if not (isinstance(reason, str) and reason.strip() and len(reason) <= 300
                    and reason.isprintable()):
                raise FieldValueError(f"{at}.reason", reason,
                                      "the site's reason, printable text of at most 300 characters")
            row = known[row_id]
            if part == "promote":
                if row.kind != "recommendation":
                    raise FieldValueError(f"{at}.row", row_id, "a recommendation (this row is "
                                          + ("already a hard limit)" if row.kind == "hard" else
                                             "a regulatory reporting criterion, not a dose "
                                             "limit)"))
                if row.direction not in ("limit", "range") or row.quantity not in \
                        PER_POSITION_BINDABLE + SHARED_BINDABLE:
                    raise FieldValueError(
                        f"{at}.row", row_id, "a limit (< or a range's upper end) on the "
                        "perfused volume, the normal perfused liver, the whole normal liver or "
                        "the whole liver: a target is a goal, not a limit that can bind the "
                        "solver")
            else:
                value = entry.get("value")
                if row.product_limit is not None:
                    raise FieldValueError(f"{at}.row", row_id, "a row with its own value (this "
                                          f"one is products.{row.product_limit}: change it "
                                          "under products)")
                if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                        not math.isfinite(value) or value <= 0 or \
                        (row.unit == "fraction" and value > 1):
                    raise FieldValueError(f"{at}.value", value, "a number > 0"
                                          + (" and <= 1" if row.unit == "fraction" else ""))
                if row.operator == "range" and value >= row.high:
                    raise FieldValueError(f"{at}.value", value,
                                          f"the range's low end, below its high end "
                                          f"({row.high:g})")


def site_rows(site_limits: Mapping[str, Any] | None, site_label: str = "") -> tuple[Row, ...]:
    """The rows with the site's promotions and value changes applied; each changed row
    carries ``site_change`` (what changed, the reason, the site)."""
    section = (site_limits or {}).get("guidelines") or {}
    promote = {e["row"]: e["reason"] for e in section.get("promote", [])}
    change = {e["row"]: (e["value"], e["reason"]) for e in section.get("change", [])}
    out = []
    for r in rows():
        if r.id in promote or r.id in change:
            record: dict[str, Any] = {"site": site_label}
            if r.id in change:
                value, reason = change[r.id]
                record.update(value_from=r.value, value_to=float(value), value_reason=reason)
                r = replace(r, value=float(value))
            if r.id in promote:
                record.update(kind_from=r.kind, kind_to="hard", promote_reason=promote[r.id])
                r = replace(r, kind="hard")
            r = replace(r, site_change=record)
        out.append(r)
    return tuple(out)


def site_change_parts(change: dict) -> list[str]:
    """What a site changed in a guideline row, in words: its value and whether it was promoted
    to a hard limit, each with the site's reason."""
    parts = []
    if "value_to" in change:
        parts.append(f"value {change['value_from']:g} -> {change['value_to']:g} "
                     f"({change['value_reason']})")
    if "kind_to" in change:
        parts.append(f"promoted to a hard limit ({change['promote_reason']})")
    return parts


def site_change_text(change: Mapping[str, Any]) -> str:
    return "site " + "; ".join(site_change_parts(change)) + (f" [{change['site']}]" if change.get("site") else "")


# --- which rows hold ---------------------------------------------------------------------

@dataclass(frozen=True)
class Facts:
    """What the conditions of a row read: total bilirubin, the hepatic reserve (untreated
    liver fraction) and whether the liver is compromised or pretreated."""

    bilirubin_mg_dl: float | None = None
    hepatic_reserve_fraction: float | None = None
    compromised_or_pretreated: bool | None = None
    favourable_liver_function: bool | None = None

    def get(self, name: str):
        return getattr(self, name)


def _predicate(p: Mapping[str, Any], facts: Facts) -> bool | None:
    value = facts.get(p["field"])
    if p["op"] == "missing":
        return value is None
    if value is None:
        # a row whose table gives a separate row for the unknown case does not apply; any
        # other row is shown as not evaluated, with the fact it lacks
        return False if p.get("if_unknown") == "not applicable" else None
    return {"<": value < p["value"], "<=": value <= p["value"], ">": value > p["value"],
            ">=": value >= p["value"], "==": value == p["value"]}[p["op"]]


def _in(value: str | None, allowed: tuple[str, ...]) -> bool:
    return allowed == ANY or value in allowed


def applicable(all_rows: Iterable[Row], product: str, scenario: Scenario | None,
               facts: Facts) -> list[tuple[Row, str | None]]:
    """The rows that hold for this product and scenario, each with ``None`` or the reason it
    cannot be evaluated (a condition on a fact the case does not hold).

    Without a scenario only the rows that hold in every scenario (any intent, any histology,
    no condition) apply."""
    out = []
    for r in all_rows:
        if r.product not in ("any", product):
            continue
        if scenario is None:
            if r.intents != ANY or r.histologies != ANY or r.when:
                continue
        elif not (_in(scenario.intent, r.intents) and _in(scenario.histology, r.histologies)):
            continue
        results = [(_predicate(p, facts), p) for p in r.when]
        if any(ok is False for ok, _ in results):
            continue
        unknown = [p["field"] for ok, p in results if ok is None]
        out.append((r, f"{', '.join(unknown)} not known" if unknown else None))
    return out


# --- evaluation --------------------------------------------------------------------------

def meets(operator: str, plan_value: float, value: float, high: float | None = None,
          tolerance_fraction: float = 0.0, strict: bool = False) -> bool:
    """Whether ``plan_value`` meets the threshold. A value equal to the threshold meets it
    (within a relative round-off of 1e-9), whichever way the table prints it, unless
    ``strict`` (a row with ``"edge": "strict"``, e.g. "differs by 20 percent or more" is a
    medical event): then an equal value, within the same round-off, does not meet a ``<``
    or ``>`` threshold."""
    tol = RTOL * max(abs(value), 1e-12)
    if strict and operator in ("<", ">"):
        return plan_value < value - tol if operator == "<" else plan_value > value + tol
    if operator in ("<", "<="):
        return plan_value <= value + tol
    if operator in (">", ">="):
        return plan_value >= value - tol
    if operator == "=":
        return abs(plan_value - value) <= tolerance_fraction * abs(value) + tol
    if operator == "range":
        return value - tol <= plan_value <= high + RTOL * abs(high)
    raise ValueError(operator)


def margin(operator: str, plan_value: float, value: float, high: float | None = None) -> float:
    """By how much the threshold is met (positive) or missed (negative), in its unit."""
    if operator in ("<", "<="):
        return value - plan_value
    if operator in (">", ">="):
        return plan_value - value
    if operator == "=":
        return -abs(plan_value - value)
    return min(plan_value - value, high - plan_value)


def prescription_tolerance() -> float:
    return float(data()["conventions"]["prescription_tolerance_fraction"])


def suggestions(product: str, scenario: Scenario | None, facts: Facts,
                site_limits: Mapping[str, Any] | None = None, site_label: str = "") -> list[dict]:
    """Goal suggestions: the targets and prescriptions that hold in the scenario, each as
    the goal that reaches it, with its source and level of evidence."""
    out = []
    for r, unknown in applicable(site_rows(site_limits, site_label), product, scenario, facts):
        goal = QUANTITIES.get(r.quantity)
        if goal is None or r.direction == "limit" or unknown:
            continue
        value = r.value
        out.append({"row": r.id, "goal": {goal: value}, "quantity": r.quantity,
                    "printed": r.printed, "threshold": r.threshold_text(),
                    "source": r.source(), "loe": r.loe, "kind": r.kind,
                    "condition": (f"only if {QUANTITY_LABELS[r.only_if['quantity']]} "
                                  f"{r.only_if['operator']} {r.only_if['value']:g} Gy"
                                  if r.only_if else ""),
                    "note": r.note})
    return out
