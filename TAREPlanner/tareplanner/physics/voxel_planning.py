"""Voxel-based activity planning by linear programming.

Dose is linear in each position's activity: the mean dose of structure s is
m_s(A) = Σ_i A_i · u_{s,i}, with u_{s,i} the mean dose of s per GBq given at position i
(from the unit dose maps). The planner maximises the lowest tumour goal fraction t
(t ≤ 1, so no tumour is pushed beyond its goal for its own sake) subject to

    Σ_i A_i u_{k,i} ≥ t · g_k · κ_k     for every tumour k (κ_k = mean/D70 when the goal is a D70)
    Σ_i A_i u_{s,i} ≤ L_s               for every limited structure s (normal liver, lungs)
    A_i ≥ 0,

with a small penalty on the total activity to pick the least activity among equal t
(scipy.optimize.linprog, HiGHS). All positions are solved jointly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

ACTIVITY_PENALTY = 1e-6


@dataclass(frozen=True)
class LpResult:
    activities_gbq: np.ndarray
    goal_fraction: float               # the lowest tumour goal fraction t
    tumour_goal_fractions: np.ndarray  # each tumour's fraction (<= 1)
    binding: tuple[str, ...]


def solve_voxel_plan(tumour_per_gbq: np.ndarray, tumour_goals_gy: np.ndarray,
                     limit_per_gbq: np.ndarray, limits_gy: np.ndarray,
                     limit_names: list[str], *, max_activity_gbq: float = 100.0) -> LpResult:
    """Solve the LP lexicographically: (1) maximise the lowest goal fraction t; (2) with t
    kept, maximise the sum of the tumours' fractions (each <= 1), so that positions not held
    back by the worst tumour still bring theirs to goal; the least total activity among equal
    solutions. ``tumour_per_gbq`` is (n_tumours, n_positions), ``limit_per_gbq`` is
    (n_limits, n_positions)."""
    u = np.atleast_2d(np.asarray(tumour_per_gbq, dtype=float))
    lim = np.atleast_2d(np.asarray(limit_per_gbq, dtype=float))
    n_k, n_pos = u.shape
    goals = np.asarray(tumour_goals_gy, dtype=float)
    # variables x = (A_1..A_n, t_1..t_K, t_min)
    n_var = n_pos + n_k + 1
    rows, rhs = [], []
    for k in range(n_k):                    # g_k t_k - u_k.A <= 0
        row = np.zeros(n_var)
        row[:n_pos] = -u[k]
        row[n_pos + k] = goals[k]
        rows.append(row)
        rhs.append(0.0)
        row = np.zeros(n_var)               # t_min - t_k <= 0
        row[-1] = 1.0
        row[n_pos + k] = -1.0
        rows.append(row)
        rhs.append(0.0)
    for s in range(lim.shape[0]):           # u_s.A <= L_s
        row = np.zeros(n_var)
        row[:n_pos] = lim[s]
        rows.append(row)
        rhs.append(float(limits_gy[s]))
    bounds = [(0.0, max_activity_gbq)] * n_pos + [(0.0, 1.0)] * (n_k + 1)
    a_ub, b_ub = np.array(rows), np.array(rhs)

    def run(c, extra_bounds):
        res = linprog(c, A_ub=a_ub, b_ub=b_ub, bounds=extra_bounds, method="highs")
        if not res.success:
            raise ValueError(f"voxel plan: the linear program failed ({res.message})")
        return res.x

    c1 = np.zeros(n_var)
    c1[-1] = -1.0
    t_min = float(run(c1, bounds)[-1])
    bounds2 = bounds[:-1] + [(max(0.0, t_min - 1e-9), 1.0)]
    c2 = np.zeros(n_var)
    c2[n_pos:n_pos + n_k] = -1.0
    c2[:n_pos] = ACTIVITY_PENALTY
    x = run(c2, bounds2)
    a = x[:n_pos]
    binding = [name for s, name in enumerate(limit_names)
               if limits_gy[s] - lim[s] @ a <= 1e-6 * max(1.0, float(limits_gy[s]))]
    return LpResult(a, t_min, x[n_pos:n_pos + n_k], tuple(binding))
