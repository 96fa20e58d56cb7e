"""Replaying a plan record: recompute it from the case and limits it holds and report every
difference (reproducibility of individually planned exposures, EURATOM 2013/59 art. 56)."""

from __future__ import annotations

from . import catalogue
from .planning import plan_case
from .records.case import canonical_sha256, parse_case
from .records.record_diff import diff_records


def site_limits_from_record(record: dict) -> tuple[dict | None, str]:
    """The limits of a record, as a site-limits document when they differ from the defaults."""
    defaults = catalogue.product(record["product"]["key"]).limits
    overrides = {name: entry["value"] for name, entry in record["limits"].items()
                 if name in defaults and entry["value"] != defaults[name].value}
    site_lung_mass = (record.get("lung_mass") or {}).get("chosen_by") == "site"
    changes = (record.get("guideline_check") or {}).get("site_changes") or []
    ordering = record.get("ordering") or {}
    site_ordering = str(ordering.get("rules_source", "")).startswith("site limits")
    if not overrides and not site_lung_mass and not changes and not site_ordering:
        return None, ""
    label = record.get("limits_source", "record").removeprefix("site limits: ")
    site = {"schema": catalogue.SITE_LIMITS_SCHEMA,
            "products": {record["product"]["key"]: overrides}}
    if site_lung_mass:
        site["lung_mass"] = "convention"
    if changes:  # the site's promoted and changed guideline rows, with their reasons
        site["guidelines"] = {
            "promote": [{"row": c["row"], "reason": c["promote_reason"]} for c in changes
                        if "kind_to" in c],
            "change": [{"row": c["row"], "value": c["value_to"], "reason": c["value_reason"]}
                       for c in changes if "value_to" in c]}
    if site_ordering:
        start, end = ordering["working_hours"].split("-")
        site["ordering"] = {"activity_tolerance_fraction": ordering["activity_tolerance_fraction"],
                            "working_hours": {"start": start, "end": end}}
    return site, label


def replay(record: dict) -> dict:
    """Recompute ``record`` and compare. Returns {"identical", "differences", "software"}."""
    case = parse_case(record["case"])
    if case.input_sha256 != record["input_sha256"]:
        return {"identical": False, "input_changed": True,
                "differences": [{"field": "input_sha256", "record": record["input_sha256"],
                                 "replay": canonical_sha256(record["case"])}]}
    site, label = site_limits_from_record(record)
    again = plan_case(case, site, label,
                      response=(record.get("dose_response") or {}).get("fit"))
    if "parents" in record:  # files (site limits, camera) are checked with the chain
        again["parents"] = record["parents"]
    differences: list = []
    diff_records(record, again, "", differences)
    return {"identical": not differences, "input_changed": False, "differences": differences,
            "software": {"record": record["software"], "replay": again["software"]}}

