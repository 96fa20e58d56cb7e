"""Shared limits (lung, whole liver) with explicit activities beside goal positions, by hand.

The solver's rule (physics.solver): an explicit activity is never changed; every other
position is scaled by one factor, the smallest any shared limit needs, counting the dose the
explicit positions (and the prior lung dose) already give:
    factor = (limit - fixed) / flexible, fixed = prior + sum over explicit c_p A_p.
The doses per GBq are written here as round numbers (DosePerActivity directly), so that the
limits are the explicit numbers of each test, whatever the product's recommendations.
"""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tareplanner.physics.compartments import DosePerActivity
from tareplanner.physics.solver import (LIMITED_BY_GOAL, LIMITED_BY_LUNG,
                                        LIMITED_BY_WHOLE_LIVER, DoseLimits, PositionProblem,
                                        SharedLimit, solve)

#: normal liver 50 Gy/GBq, perfused 40, one tumour 150
PER_GBQ = DosePerActivity(50.0, 40.0, (150.0,))
LUNG_GY_PER_GBQ = 5.0
NO_LIMITS = DoseLimits(None, None, None)


def _explicit(name, gbq):
    return PositionProblem(name, "activity_gbq", gbq, PER_GBQ)


def _goal(name, normal_gy):
    return PositionProblem(name, "normal_dose_gy", normal_gy, PER_GBQ)   # A = normal / 50


def test_lung_limit_counts_the_explicit_positions_dose():
    """Bug caught: the shared limit ignoring the explicit position's lung dose (factor
    15 / 10 = 1.5, nothing scaled, lung 20 Gy). By hand: explicit 2 GBq gives 10 Gy; the goal
    position wants 100 / 50 = 2 GBq (10 Gy); limit 15 Gy: factor (15 - 10) / 10 = 0.5 ->
    1 GBq; lung 5 x 3 = 15 Gy."""
    sol = solve([_explicit("A", 2.0), _goal("B", 100.0)], LUNG_GY_PER_GBQ,
                DoseLimits(None, 15.0, None))
    a, b = sol.positions
    assert a.activity_gbq == 2.0 and a.limited_by == LIMITED_BY_GOAL
    assert b.activity_gbq == pytest.approx(1.0, rel=1e-12)
    assert b.limited_by == LIMITED_BY_LUNG
    assert sol.scale_factor == pytest.approx(0.5, rel=1e-12)
    assert sol.lung_scale_factor == pytest.approx(0.5, rel=1e-12)
    assert sol.lung_dose_gy == pytest.approx(15.0, rel=1e-12)
    assert sol.violations == ()


def test_explicit_position_alone_beyond_the_limit_leaves_nothing_to_the_others():
    """An explicit 4 GBq gives the lung 20 Gy > 15 Gy by itself: the goal position gets 0 GBq
    (factor max(15 - 20, 0) / 10 = 0) and the excess is reported, not hidden."""
    sol = solve([_explicit("A", 4.0), _goal("B", 100.0)], LUNG_GY_PER_GBQ,
                DoseLimits(None, 15.0, None))
    assert sol.positions[0].activity_gbq == 4.0
    assert sol.positions[1].activity_gbq == 0.0
    assert [(v.limit, v.dose_gy, v.limit_gy) for v in sol.violations] == \
        [("lung-limit", pytest.approx(20.0), 15.0)]


def test_cumulative_lung_limit_counts_prior_and_explicit():
    """Prior 40 Gy, cumulative limit 50 Gy (single 30 Gy does not bind): explicit 1 GBq
    (5 Gy) -> fixed 45 Gy; the goal's 2 GBq (10 Gy) scaled by (50 - 45) / 10 = 0.5 -> 1 GBq;
    this treatment's lung dose 10 Gy, cumulative exactly 50 Gy (allowed)."""
    sol = solve([_explicit("A", 1.0), _goal("B", 100.0)], LUNG_GY_PER_GBQ,
                DoseLimits(None, 30.0, 50.0), prior_lung_dose_gy=40.0)
    assert sol.positions[1].activity_gbq == pytest.approx(1.0, rel=1e-12)
    assert sol.lung_dose_gy == pytest.approx(10.0)
    assert sol.lung_dose_cumulative_gy == pytest.approx(50.0)
    assert sol.violations == ()


def test_whole_liver_limit_with_per_position_coefficients_and_its_edge():
    """A whole-liver limit of 60 Gy with 10 Gy/GBq from A (explicit 2 GBq: 20 Gy) and
    20 Gy/GBq from B. B's goal of 2 GBq gives exactly 60 Gy: at the limit, nothing scaled.
    B's goal of 2.5 GBq gives 70 Gy: factor (60 - 20) / 50 = 0.8 -> B = 2 GBq, limited by the
    whole-liver limit."""
    shared = [SharedLimit("whole-liver-limit", (10.0, 20.0), 60.0, LIMITED_BY_WHOLE_LIVER)]
    at_edge = solve([_explicit("A", 2.0), _goal("B", 100.0)], 0.0, NO_LIMITS, shared=shared)
    assert at_edge.positions[1].activity_gbq == 2.0
    assert at_edge.positions[1].limited_by == LIMITED_BY_GOAL
    assert at_edge.scale_factor == 1.0 and at_edge.violations == ()
    above = solve([_explicit("A", 2.0), _goal("B", 125.0)], 0.0, NO_LIMITS, shared=shared)
    assert above.positions[1].activity_gbq == pytest.approx(2.0, rel=1e-12)
    assert above.positions[1].limited_by == LIMITED_BY_WHOLE_LIVER
    assert above.scale_factor == pytest.approx(0.8, rel=1e-12)
    assert above.lung_scale_factor == 1.0          # the lung did not bind
    assert above.violations == ()


def test_smallest_factor_of_several_shared_limits_wins():
    """Lung 15 Gy needs factor (15 - 5) / 15 = 0.6667 (explicit 1 GBq, goal 3 GBq); a whole-
    liver limit of 100 Gy at 10 Gy/GBq each needs (100 - 10) / 30 = 3 (does not bind): the
    goal position gets 3 x 0.6667 = 2 GBq, limited by the lung."""
    shared = [SharedLimit("whole-liver-limit", (10.0, 10.0), 100.0, LIMITED_BY_WHOLE_LIVER)]
    sol = solve([_explicit("A", 1.0), _goal("B", 150.0)], LUNG_GY_PER_GBQ,
                DoseLimits(None, 15.0, None), shared=shared)
    assert sol.positions[1].activity_gbq == pytest.approx(2.0, rel=1e-12)
    assert sol.positions[1].limited_by == LIMITED_BY_LUNG


def test_dose_equal_to_a_limit_is_allowed_and_just_above_is_reported():
    """Edge of the violation test: an explicit activity giving exactly the limit is not a
    violation; 1e-6 relative above is (the round-off tolerance is 1e-9 relative)."""
    exact = solve([_explicit("A", 3.0)], LUNG_GY_PER_GBQ, DoseLimits(None, 15.0, None))
    assert exact.violations == ()
    above = solve([_explicit("A", 3.0 * (1 + 1e-6))], LUNG_GY_PER_GBQ,
                  DoseLimits(None, 15.0, None))
    assert [v.limit for v in above.violations] == ["lung-limit"]
    normal = solve([_explicit("A", 2.4 * (1 + 1e-6))], 0.0, DoseLimits(120.0, None, None))
    assert [v.limit for v in normal.positions[0].violations] == ["normal-liver-limit"]
    assert solve([_explicit("A", 2.4)], 0.0, DoseLimits(120.0, None, None)) \
        .positions[0].violations == ()


position = st.tuples(
    st.sampled_from(["activity_gbq", "tumour_dose_gy", "normal_dose_gy", "perfused_dose_gy"]),
    st.floats(0.1, 8.0), st.floats(5.0, 200.0))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(position, min_size=1, max_size=5), st.floats(1.0, 20.0),
       st.floats(0.0, 40.0), st.lists(st.floats(1.0, 60.0), min_size=5, max_size=5),
       st.floats(20.0, 200.0))
def test_property_shared_limits_with_explicit_positions(positions, lung_per_gbq, prior,
                                                        liver_coefficients, liver_limit):
    """Explicit activities stay as given; every other position is scaled by one factor in
    [0, 1] from its goal; each shared limit holds unless the explicit positions (and the prior
    dose) exceed it by themselves, in which case the others get 0 GBq and the violation is
    reported; and a factor below 1 is set by a limit that the result meets exactly."""
    problems = []
    for i, (kind, gbq, gy) in enumerate(positions):
        value = gbq if kind == "activity_gbq" else gy
        problems.append(PositionProblem(f"p{i}", kind, value, PER_GBQ))
    coefficients = tuple(liver_coefficients[:len(problems)])
    shared = [SharedLimit("whole-liver-limit", coefficients, liver_limit,
                          LIMITED_BY_WHOLE_LIVER)]
    limits = DoseLimits(None, 30.0, 50.0)
    sol = solve(problems, lung_per_gbq, limits, prior, shared=shared)
    goals = [p.goal_value if p.goal_kind == "activity_gbq" else
             p.goal_value / {"tumour_dose_gy": 150.0, "normal_dose_gy": 50.0,
                             "perfused_dose_gy": 40.0}[p.goal_kind] for p in problems]
    explicit = [p.goal_kind == "activity_gbq" for p in problems]
    got = [p.activity_gbq for p in sol.positions]
    factors = {round(g_ / goal, 9) for g_, goal, e in zip(got, goals, explicit) if not e}
    assert len(factors) <= 1                                   # one factor for all
    for g_, goal, e in zip(got, goals, explicit):
        if e:
            assert g_ == goal                                  # never changed
        else:
            assert -1e-12 <= g_ <= goal * (1 + 1e-12)
    fixed_lung = prior + lung_per_gbq * sum(g for g, e in zip(got, explicit) if e)
    fixed_liver = sum(c * g for c, g, e in zip(coefficients, got, explicit) if e)
    lung_single = lung_per_gbq * sum(got)
    liver = sum(c * g for c, g in zip(coefficients, got))
    checks = [(lung_single, 30.0, lung_per_gbq * sum(g for g, e in zip(got, explicit) if e)),
              (prior + lung_single, 50.0, fixed_lung), (liver, liver_limit, fixed_liver)]
    reported = {v.limit for v in sol.violations}
    for dose, limit, fixed in checks:
        if fixed <= limit * (1 + 1e-9):
            assert dose <= limit * (1 + 1e-9) + 1e-9
        else:
            assert all(g == 0 for g, e in zip(got, explicit) if not e)
            assert reported
    if factors and next(iter(factors)) < 1 - 1e-9 and any(
            goal > 0 for goal, e in zip(goals, explicit) if not e):
        assert any(math.isclose(dose, limit, rel_tol=1e-6) or fixed > limit
                   for dose, limit, fixed in checks)


def test_lung_allowance_by_hand():
    """min(single limit, cumulative limit - prior): 30 and 50 - 25 -> 25 Gy; without the
    cumulative 30; without the single 50 - 25 = 25; with neither, no bound (inf)."""
    from tareplanner.physics.solver import lung_allowance_gy
    assert lung_allowance_gy(DoseLimits(None, 30.0, 50.0), 25.0) == 25.0
    assert lung_allowance_gy(DoseLimits(None, 30.0, 50.0), 5.0) == 30.0
    assert lung_allowance_gy(DoseLimits(None, 30.0, None), 25.0) == 30.0
    assert lung_allowance_gy(DoseLimits(None, None, 50.0), 25.0) == 25.0
    assert lung_allowance_gy(DoseLimits(None, None, None), 25.0) == math.inf


def test_goals_by_hand_and_the_solution_fields():
    """Bugs caught: a perfused-dose goal multiplied by the dose per GBq, the solution's name
    or perfused dose lost. Perfused goal 80 Gy at 40 Gy/GBq -> 2 GBq: normal 100 Gy,
    perfused 80 Gy, tumour 300 Gy."""
    sol = solve([PositionProblem("P", "perfused_dose_gy", 80.0, PER_GBQ)], 0.0, NO_LIMITS)
    p = sol.positions[0]
    assert (p.name, p.activity_gbq, p.normal_dose_gy, p.perfused_dose_gy,
            p.tumour_doses_gy) == ("P", 2.0, 100.0, 80.0, (300.0,))


def test_goal_messages():
    """The messages name the position and the goal kinds."""
    from tareplanner.physics.solver import goal_activity_gbq
    with pytest.raises(ValueError, match=r"^position 'P': tumour_dose_gy goal without "
                                         r"tumours$"):
        goal_activity_gbq(PositionProblem("P", "tumour_dose_gy", 100.0,
                                          DosePerActivity(50.0, 40.0, ())))
    with pytest.raises(ValueError, match=r"^goal kind must be one of \('tumour_dose_gy', "):
        goal_activity_gbq(PositionProblem("P", "mean_dose", 1.0, PER_GBQ))
    with pytest.raises(ValueError, match=r"^position 'P': goal 'maximum' needs a hard limit "
                                         r"on the position's dose, and none applies$"):
        solve([PositionProblem("P", "maximum", None, PER_GBQ)], 0.0, NO_LIMITS)


def test_ties_and_tiny_doses():
    """Edges: a goal exactly at the normal-liver cap is reported as limited by the goal; of
    two shared limits needing the same factor the first listed (the lung) is named; a lung
    dose below 1 Gy still binds (0.1 Gy/GBq x 2 GBq = 0.2 Gy > 0.15 Gy: factor 0.75); a
    limit of 0 Gy with a dose of 0 Gy is not a violation; a normal-liver violation carries
    its dose and limit."""
    at_cap = solve([_goal("B", 100.0)], 0.0, DoseLimits(100.0, None, None))
    assert at_cap.positions[0].limited_by == LIMITED_BY_GOAL
    shared = [SharedLimit("whole-liver-limit", (10.0,), 10.0, LIMITED_BY_WHOLE_LIVER)]
    tie = solve([_goal("B", 100.0)], 5.0, DoseLimits(None, 5.0, None), shared=shared)
    assert tie.positions[0].activity_gbq == pytest.approx(1.0)
    assert tie.positions[0].limited_by == LIMITED_BY_LUNG
    tiny = solve([_goal("B", 100.0)], 0.1, DoseLimits(None, 0.15, None))
    assert tiny.positions[0].activity_gbq == pytest.approx(1.5)
    zero = solve([_explicit("A", 0.0)], 0.0, DoseLimits(0.0, None, None))
    assert zero.positions[0].violations == ()
    over = solve([_explicit("A", 3.0)], 0.0, DoseLimits(120.0, None, None))
    v = over.positions[0].violations[0]
    assert (v.limit, v.dose_gy, v.limit_gy) == ("normal-liver-limit", 150.0, 120.0)


def test_cumulative_limit_named_in_violations_and_limited_by():
    """Bug caught: the cumulative lung limit misnamed or not reported as the lung. Prior
    45 Gy, cumulative 50 Gy: explicit 2 GBq (10 Gy) reaches 55 Gy -> violation
    'lung-cumulative-limit'; a goal position alone (2 GBq) is scaled to 1 GBq, limited by
    the lung."""
    over = solve([_explicit("A", 2.0)], LUNG_GY_PER_GBQ, DoseLimits(None, None, 50.0), 45.0)
    assert [(v.limit, v.dose_gy) for v in over.violations] == \
        [("lung-cumulative-limit", pytest.approx(55.0))]
    scaled = solve([_goal("B", 100.0)], LUNG_GY_PER_GBQ, DoseLimits(None, None, 50.0), 45.0)
    assert scaled.positions[0].activity_gbq == pytest.approx(1.0)
    assert scaled.positions[0].limited_by == LIMITED_BY_LUNG
