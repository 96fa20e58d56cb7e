"""A change of the written directive is a re-plan: the plan's own case, every treatment site
at the activity the directive prescribes after the change, planned again by the planning
code (``planning.plan_case``), so that the per-site doses, the lung dose (this treatment and
cumulative), the whole-liver and whole-normal-liver doses and every limit are those of the
new activities. See docs/treatment-day.md."""

from __future__ import annotations

import copy
from datetime import datetime

from .planning import plan_case
from .records.case import parse_case
from .records.chain import check_parent
from .records.directive import apply_change, check_change
from .replay import site_limits_from_record


def replan_at(plan: dict, activities_gbq: dict[str, float]) -> dict:
    """The plan record recomputed with every position at the activity given (GBq); the
    limits are the plan's own (its site limits included). BSA positions keep the BSA
    method's dose model; their activity is now the one given."""
    document = copy.deepcopy(plan["case"])
    if document.get("method") == "bsa":
        document["method"] = plan["dose_model"]
    for pos in document["positions"]:
        pos["goal"] = {"activity_gbq": float(activities_gbq[pos["name"]])}
    site, label = site_limits_from_record(plan)
    return plan_case(parse_case(document), site, label,
                     response=(plan.get("dose_response") or {}).get("fit"))


def change_directive(directive: dict, plan: dict, site: str, activity_gbq: float, reason: str,
                     by: str, when: datetime | str | None = None,
                     override_reason: str | None = None, *, plan_label: str = "plan",
                     directive_label: str = "directive") -> dict:
    """The directive with the activity of ``site`` changed and every dose re-planned (see
    :func:`records.directive.apply_change`). ``plan`` must be the plan the directive was
    written from (checked by hash)."""
    activity_gbq, reason, by = check_change(directive, site, activity_gbq, reason, by,
                                            override_reason)
    check_parent(directive, directive_label, "plan", plan, plan_label)
    activities = {p["treatment_site"]: p["prescribed_activity_gbq"]
                  for p in directive["positions"]}
    activities[site] = activity_gbq
    return apply_change(directive, replan_at(plan, activities), site, activity_gbq, reason, by,
                        when, override_reason)


def replay_directive(directive: dict, plan: dict) -> dict:
    """Recompute a directive from its plan and the changes it records; the differences."""
    from .records.directive import directive_from_plan
    from .records.record_diff import diff_records

    again = directive_from_plan(plan)
    for change in directive.get("changes") or []:
        override = (change.get("override") or {}).get("reason")
        again = change_directive(again, plan, change["treatment_site"], change["to"],
                                 change["reason"], change["by"], change["when"], override)
    differences: list = []
    diff_records(directive, again, "", differences)
    return {"identical": not differences, "input_changed": False, "differences": differences,
            "software": {"record": directive.get("software"), "replay": again["software"]}}
