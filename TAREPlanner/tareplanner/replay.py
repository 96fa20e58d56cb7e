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
    if not overrides and not site_lung_mass:
        return None, ""
    label = record.get("limits_source", "record").removeprefix("site limits: ")
    site = {"schema": catalogue.SITE_LIMITS_SCHEMA,
            "products": {record["product"]["key"]: overrides}}
    if site_lung_mass:
        site["lung_mass"] = "convention"
    return site, label


def replay(record: dict) -> dict:
    """Recompute ``record`` and compare. Returns {"identical", "differences", "software"}."""
    case = parse_case(record["case"])
    if case.input_sha256 != record["input_sha256"]:
        return {"identical": False, "input_changed": True,
                "differences": [{"field": "input_sha256", "record": record["input_sha256"],
                                 "replay": canonical_sha256(record["case"])}]}
    site, label = site_limits_from_record(record)
    again = plan_case(case, site, label)
    if "parents" in record:  # files (site limits, camera) are checked with the chain
        again["parents"] = record["parents"]
    differences: list = []
    diff_records(record, again, "", differences)
    return {"identical": not differences, "input_changed": False, "differences": differences,
            "software": {"record": record["software"], "replay": again["software"]}}


def replay_chain(paths: list[str]) -> dict:
    """Verify a chain of records (files, or folders written by ``tareplanner dose``): every
    parent each one names is among them (or a copy it holds) and unchanged, at most one
    administration per directive (:func:`records.chain.verify_links`, which raises a named
    error otherwise), then every record that can be recomputed is: a plan from its case, a
    directive from its plan and changes, an administration from its directive and readings.
    Returns {"identical", "links", "records": [{"record", "identical", "differences"}]}."""
    from .records.administration import (ADMINISTRATION_SCHEMA, replay_administration,
                                         validate_administration)
    from .records.chain import RecordChainError, read_record_file, verify_links
    from .records.directive import DIRECTIVE_SCHEMA, validate_directive
    from .records.record_checks import PLAN_SCHEMA, check_plan_record
    from .replan import replay_directive

    records = [read_record_file(p, "record") for p in paths]
    links = verify_links(records)
    by_hash = {h: r for r in records for h in r.hashes}
    results = []
    for r in records:
        doc = r.document
        if r.schema == PLAN_SCHEMA:
            result = replay(check_plan_record(doc, r.label))
        elif r.schema == DIRECTIVE_SCHEMA:
            validate_directive(doc, r.label)
            plan = by_hash.get(doc.get("plan_sha256"))
            if plan is None:
                raise RecordChainError(f"{r.label} parents.plan", doc.get("plan_sha256"),
                                       "its plan among the records given")
            result = replay_directive(doc, check_plan_record(plan.document, plan.label))
        elif r.schema == ADMINISTRATION_SCHEMA:
            result = replay_administration(validate_administration(doc, r.label))
        else:
            results.append({"record": r.label, "schema": r.schema, "identical": True,
                            "recomputed": False, "differences": []})
            continue
        results.append({"record": r.label, "schema": r.schema, "identical": result["identical"],
                        "recomputed": True, "differences": result["differences"]})
    return {"identical": all(x["identical"] for x in results), "links": links,
            "records": results}
