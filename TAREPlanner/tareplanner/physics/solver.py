"""Activity prescription per injection position under product limits.

Each position has a goal (a dose to reach or an explicit activity). The goal activity
is capped by the normal-liver limit of the position and by its own caps (hard limits on the
perfused volume or the normal perfused liver of that position, e.g. a site's promoted
recommendation). Shared limits bound a dose that all
positions add to: the lung (per treatment and cumulative with earlier treatments), the whole
liver and the whole normal liver. When one binds, every non-explicit position is scaled by
the same factor, the smallest that any shared limit needs.
An explicit activity is never changed; each limit it exceeds is reported as a violation.
Doses are linear in activity, so every cap is a simple ratio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from .compartments import DosePerActivity

GOAL_KINDS = ("tumour_dose_gy", "normal_dose_gy", "perfused_dose_gy", "activity_gbq", "maximum")
LIMITED_BY_GOAL = "goal"
LIMITED_BY_NORMAL = "normal-liver-limit"
LIMITED_BY_LUNG = "lung-limit"
LIMITED_BY_WHOLE_LIVER = "whole-liver-limit"
LIMITED_BY_WHOLE_NORMAL_LIVER = "whole-normal-liver-limit"

#: Relative tolerance used when comparing a dose with a limit (floating-point round-off).
LIMIT_RTOL = 1e-9


@dataclass(frozen=True)
class PositionCap:
    """A hard limit on a dose of one position: ``gy_per_gbq * A <= limit_gy``."""

    name: str
    gy_per_gbq: float
    limit_gy: float


@dataclass(frozen=True)
class PositionProblem:
    """One injection position: its goal, its dose per GBq and its own caps."""

    name: str
    goal_kind: str
    goal_value: float | None
    dose_per_gbq: DosePerActivity
    caps: tuple[PositionCap, ...] = ()


@dataclass(frozen=True)
class DoseLimits:
    """Absorbed-dose limits in Gy; ``None`` means not applied."""

    normal_liver_gy: float | None
    lung_single_gy: float | None
    lung_cumulative_gy: float | None


@dataclass(frozen=True)
class Violation:
    limit: str
    dose_gy: float
    limit_gy: float


@dataclass(frozen=True)
class PositionSolution:
    name: str
    activity_gbq: float
    normal_dose_gy: float
    perfused_dose_gy: float
    tumour_doses_gy: tuple[float, ...]
    limited_by: str
    violations: tuple[Violation, ...]


@dataclass(frozen=True)
class Solution:
    positions: tuple[PositionSolution, ...]
    total_activity_gbq: float
    lung_dose_gy: float
    lung_dose_cumulative_gy: float
    lung_scale_factor: float
    violations: tuple[Violation, ...]
    scale_factor: float = 1.0


def goal_activity_gbq(problem: PositionProblem) -> float:
    """Activity that meets the goal exactly (``inf`` for ``maximum``)."""
    d = problem.dose_per_gbq
    kind, value = problem.goal_kind, problem.goal_value
    if kind == "maximum":
        return math.inf
    if kind == "activity_gbq":
        return float(value)
    if kind == "tumour_dose_gy":
        if not d.tumour_gy_per_gbq:
            raise ValueError(f"position {problem.name!r}: tumour_dose_gy goal without tumours")
        # every tumour reaches at least the goal: aim at the lowest-dose (lowest-TNR) tumour
        return value / min(d.tumour_gy_per_gbq)
    if kind == "normal_dose_gy":
        return value / d.normal_gy_per_gbq
    if kind == "perfused_dose_gy":
        return value / d.perfused_gy_per_gbq
    raise ValueError(f"goal kind must be one of {GOAL_KINDS}, got {kind!r}")


def lung_allowance_gy(limits: DoseLimits, prior_lung_dose_gy: float) -> float:
    """Lung dose this treatment may add: min(single limit, cumulative limit - prior)."""
    allowance = math.inf
    if limits.lung_single_gy is not None:
        allowance = min(allowance, limits.lung_single_gy)
    if limits.lung_cumulative_gy is not None:
        allowance = min(allowance, limits.lung_cumulative_gy - prior_lung_dose_gy)
    return allowance


@dataclass(frozen=True)
class SharedLimit:
    """A limit on a dose that every position adds to:
    dose = prior_gy + sum_p gy_per_gbq[p] * A_p  <=  limit_gy.

    The lung (single treatment and cumulative), the whole liver and the whole normal liver
    are shared limits; ``limited_by`` is what a position scaled by it reports."""

    name: str
    gy_per_gbq: tuple[float, ...]
    limit_gy: float
    limited_by: str
    prior_gy: float = 0.0


def lung_shared_limits(n_positions: int, lung_gy_per_gbq: float, limits: DoseLimits,
                       prior_lung_dose_gy: float) -> list[SharedLimit]:
    """The lung limits as shared limits: per treatment and cumulative (with the prior dose)."""
    per = (lung_gy_per_gbq,) * n_positions
    out = []
    if limits.lung_single_gy is not None:
        out.append(SharedLimit("lung-limit", per, limits.lung_single_gy, LIMITED_BY_LUNG))
    if limits.lung_cumulative_gy is not None:
        out.append(SharedLimit("lung-cumulative-limit", per, limits.lung_cumulative_gy,
                               LIMITED_BY_LUNG, prior_lung_dose_gy))
    return out


def _exceeds(dose_gy: float, limit_gy: float | None) -> bool:
    """A dose exceeds a limit only when it is above it (a dose equal to the limit is
    allowed), beyond floating-point round-off."""
    return limit_gy is not None and dose_gy > limit_gy * (1 + LIMIT_RTOL) + 1e-12


def shared_scale(activities: Sequence[float], explicit: Sequence[bool],
                 shared: Sequence[SharedLimit]) -> tuple[float, SharedLimit | None]:
    """The largest factor (<= 1) by which the non-explicit activities can be scaled so that
    every shared limit holds, and the limit that sets it (None when no limit binds)."""
    scale, binding = 1.0, None
    for limit in shared:
        fixed = limit.prior_gy + sum(c * a for c, a, e in zip(limit.gy_per_gbq, activities,
                                                                explicit) if e)
        flexible = sum(c * a for c, a, e in zip(limit.gy_per_gbq, activities, explicit)
                       if not e)
        if flexible > 0 and fixed + flexible > limit.limit_gy:
            factor = max(limit.limit_gy - fixed, 0.0) / flexible
            if factor < scale:
                scale, binding = factor, limit
    return scale, binding


def solve(problems: Sequence[PositionProblem], lung_gy_per_gbq: float, limits: DoseLimits,
          prior_lung_dose_gy: float = 0.0, shared: Sequence[SharedLimit] = ()) -> Solution:
    """Solve the activity of every position; see the module docstring for the rules.

    ``shared`` adds limits that all positions add to (whole liver, whole normal liver); the
    lung limits are always included."""
    n = len(problems)
    activities: list[float] = []
    limited_by: list[str] = []
    explicit = [p.goal_kind == "activity_gbq" for p in problems]
    for problem, fixed in zip(problems, explicit):
        goal = goal_activity_gbq(problem)
        if fixed:
            activities.append(goal)
            limited_by.append(LIMITED_BY_GOAL)
            continue
        cap, cap_name = math.inf, LIMITED_BY_NORMAL
        if limits.normal_liver_gy is not None:
            cap = limits.normal_liver_gy / problem.dose_per_gbq.normal_gy_per_gbq
        for own in problem.caps:
            if own.gy_per_gbq > 0 and own.limit_gy / own.gy_per_gbq < cap:
                cap, cap_name = own.limit_gy / own.gy_per_gbq, own.name
        if cap < goal:
            activities.append(cap)
            limited_by.append(cap_name)
        else:
            activities.append(goal)
            limited_by.append(LIMITED_BY_GOAL)
    for problem, activity in zip(problems, activities):
        if not math.isfinite(activity):
            raise ValueError(f"position {problem.name!r}: goal 'maximum' needs a hard limit "
                             "on the position's dose, and none applies")

    all_shared = lung_shared_limits(n, lung_gy_per_gbq, limits, prior_lung_dose_gy) \
        + list(shared)
    scale, binding = shared_scale(activities, explicit, all_shared)
    if binding is not None:
        for i, fixed in enumerate(explicit):
            if not fixed:
                activities[i] *= scale
                limited_by[i] = binding.limited_by

    solutions = []
    for problem, activity, bound in zip(problems, activities, limited_by):
        d = problem.dose_per_gbq
        normal = activity * d.normal_gy_per_gbq
        violations = []
        if _exceeds(normal, limits.normal_liver_gy):
            violations.append(Violation(LIMITED_BY_NORMAL, normal, limits.normal_liver_gy))
        for own in problem.caps:
            if _exceeds(activity * own.gy_per_gbq, own.limit_gy):
                violations.append(Violation(own.name, activity * own.gy_per_gbq, own.limit_gy))
        solutions.append(PositionSolution(
            name=problem.name, activity_gbq=activity, normal_dose_gy=normal,
            perfused_dose_gy=activity * d.perfused_gy_per_gbq,
            tumour_doses_gy=tuple(activity * t for t in d.tumour_gy_per_gbq),
            limited_by=bound, violations=tuple(violations)))

    total = sum(activities)
    lung = total * lung_gy_per_gbq
    case_violations = []
    for limit in all_shared:
        dose = limit.prior_gy + sum(c * a for c, a in zip(limit.gy_per_gbq, activities))
        if _exceeds(dose, limit.limit_gy):
            case_violations.append(Violation(limit.name, dose, limit.limit_gy))
    return Solution(positions=tuple(solutions), total_activity_gbq=total, lung_dose_gy=lung,
                    lung_dose_cumulative_gy=lung + prior_lung_dose_gy,
                    lung_scale_factor=scale if binding is not None
                    and binding.limited_by == LIMITED_BY_LUNG else 1.0,
                    violations=tuple(case_violations), scale_factor=scale)
