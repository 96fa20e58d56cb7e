"""Verifying a whole record chain (``tareplanner replay A B C ...``): the links first
(records/chain.py), then every record that can be recomputed, recomputed."""

from __future__ import annotations

from .replay import replay


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
