"""Activity solver: goals, normal-liver cap, shared lung cap, violations; property tests."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tareplanner.physics.compartments import dose_per_activity, lung_dose_per_activity
from tareplanner.physics.solver import DoseLimits, PositionProblem, solve

CF = 49.67
LIMITS = DoseLimits(normal_liver_gy=120, lung_single_gy=30, lung_cumulative_gy=50)


def _problem(name, kind, value, normal_kg=0.927, tumours=((0.1236, 3.1),), lsf=0.06):
    d = dose_per_activity("partition", CF, lsf, 0.0, normal_kg, [m for m, _ in tumours],
                          [r for _, r in tumours])
    return PositionProblem(name, kind, value, d)


def test_goal_reached_when_no_limit_binds():
    sol = solve([_problem("p", "tumour_dose_gy", 250)], lung_dose_per_activity(CF, 0.06, 0, 1),
                LIMITS)
    p = sol.positions[0]
    assert p.limited_by == "goal"
    assert p.tumour_doses_gy[0] == pytest.approx(250)
    assert p.activity_gbq == pytest.approx(2.2630, abs=1e-4)  # hand value, test_compartments


def test_lowest_tnr_tumour_is_aimed_at():
    prob = _problem("p", "tumour_dose_gy", 200, tumours=((0.05, 4.0), (0.05, 2.0)))
    sol = solve([prob], 0.0, LIMITS)
    assert min(sol.positions[0].tumour_doses_gy) == pytest.approx(200)
    assert sol.positions[0].tumour_doses_gy[0] == pytest.approx(400)


def test_normal_liver_limit_caps_goal():
    # SIR limit 40 Gy; goal 250 Gy tumour would need D_N = 250/3.1 = 80.6 Gy -> capped.
    limits = DoseLimits(40, 30, 50)
    sol = solve([_problem("p", "tumour_dose_gy", 250)], 0.0, limits)
    p = sol.positions[0]
    assert p.limited_by == "normal-liver-limit"
    assert p.normal_dose_gy == pytest.approx(40)
    assert p.activity_gbq == pytest.approx(40 / 35.637, abs=1e-3)
    assert not p.violations


def test_lung_limit_scales_every_position_by_the_same_factor():
    # LSF 20 %: lung dose per GBq = 49.67 * 0.2 = 9.934 Gy/GBq; 30 Gy allows 3.020 GBq in all.
    lsf = 0.2
    probs = [_problem("a", "normal_dose_gy", 100, lsf=lsf),
             _problem("b", "perfused_dose_gy", 110, normal_kg=0.5, lsf=lsf)]
    free = solve(probs, 0.0, LIMITS)
    capped = solve(probs, lung_dose_per_activity(CF, lsf, 0, 1.0), LIMITS)
    assert capped.total_activity_gbq == pytest.approx(30 / 9.934, rel=1e-9)
    ratios = [c.activity_gbq / f.activity_gbq for c, f in zip(capped.positions, free.positions)]
    assert ratios[0] == pytest.approx(ratios[1]) == pytest.approx(capped.lung_scale_factor)
    assert all(p.limited_by == "lung-limit" for p in capped.positions)
    assert capped.lung_dose_gy == pytest.approx(30)


def test_cumulative_lung_limit_with_prior_dose():
    # prior 35 Gy: only 15 Gy remain of the 50 Gy cumulative limit.
    lsf = 0.1
    sol = solve([_problem("a", "maximum", None, lsf=lsf)], lung_dose_per_activity(CF, lsf, 0, 1),
                LIMITS, prior_lung_dose_gy=35)
    assert sol.lung_dose_gy == pytest.approx(15)
    assert sol.lung_dose_cumulative_gy == pytest.approx(50)


def test_maximum_goal_is_bounded_by_normal_liver_limit():
    sol = solve([_problem("a", "maximum", None)], 0.0, LIMITS)
    assert sol.positions[0].normal_dose_gy == pytest.approx(120)
    assert sol.positions[0].limited_by == "normal-liver-limit"


def test_maximum_without_any_limit_is_an_error():
    with pytest.raises(ValueError, match="maximum"):
        solve([_problem("a", "maximum", None)], 0.0, DoseLimits(None, None, None))


def test_explicit_activity_is_never_capped_and_reports_violations():
    lsf = 0.2
    sol = solve([_problem("a", "activity_gbq", 5.0, lsf=lsf)],
                lung_dose_per_activity(CF, lsf, 0, 1), LIMITS)
    p = sol.positions[0]
    assert p.activity_gbq == 5.0
    # D_N = 5 * 49.67 * 0.8 / 1.31016 = 151.6 Gy > 120; lung = 5 * 9.934 = 49.67 Gy > 30
    assert [v.limit for v in p.violations] == ["normal-liver-limit"]
    assert p.violations[0].dose_gy == pytest.approx(151.65, abs=0.01)
    assert [v.limit for v in sol.violations] == ["lung-limit"]
    assert sol.violations[0].dose_gy == pytest.approx(49.67)


position = st.tuples(
    st.sampled_from(["tumour_dose_gy", "normal_dose_gy", "perfused_dose_gy", "maximum"]),
    st.floats(10, 600), st.floats(0.05, 2.0), st.floats(0.001, 0.5), st.floats(0.2, 10.0))


@settings(max_examples=200, deadline=None)
@given(st.lists(position, min_size=1, max_size=4), st.floats(0.0, 0.6), st.floats(0.3, 2.0),
       st.floats(0.0, 45.0), st.sampled_from([30.0, 40.0, 60.0, 120.0]))
def test_property_prescribed_activity_never_exceeds_a_limit(positions, lsf, lung_kg, prior,
                                                            normal_limit):
    limits = DoseLimits(normal_limit, 30.0, 50.0)
    probs = [PositionProblem(f"p{i}", kind, None if kind == "maximum" else value,
                             dose_per_activity("partition", CF, lsf, 0.0, mn, [mt], [r]))
             for i, (kind, value, mn, mt, r) in enumerate(positions)]
    sol = solve(probs, lung_dose_per_activity(CF, lsf, 0.0, lung_kg), limits, prior)
    for p in sol.positions:
        assert p.activity_gbq >= 0
        assert p.normal_dose_gy <= normal_limit * (1 + 1e-9)
        assert not p.violations
    assert sol.lung_dose_gy <= 30 * (1 + 1e-9)
    assert sol.lung_dose_cumulative_gy <= 50 * (1 + 1e-9) or sol.total_activity_gbq == 0
    assert not sol.violations or all(p.activity_gbq == 0 for p in sol.positions)


@settings(max_examples=200, deadline=None)
@given(st.floats(0.01, 20), st.floats(1.01, 5), st.floats(0, 0.5), st.floats(0.1, 2),
       st.floats(0.005, 0.5), st.floats(0.2, 10))
def test_property_doses_linear_in_activity(a, k, lsf, mn, mt, r):
    d = dose_per_activity("partition", CF, lsf, 0.0, mn, [mt], [r])
    one = solve([PositionProblem("p", "activity_gbq", a, d)], 0.0, DoseLimits(None, None, None))
    many = solve([PositionProblem("p", "activity_gbq", k * a, d)], 0.0,
                 DoseLimits(None, None, None))
    for x, y in [(one.positions[0].normal_dose_gy, many.positions[0].normal_dose_gy),
                 (one.positions[0].tumour_doses_gy[0], many.positions[0].tumour_doses_gy[0])]:
        assert y == pytest.approx(k * x, rel=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.floats(0.1, 10), st.floats(0.0, 0.5), st.floats(0.1, 2), st.floats(0.005, 0.5),
       st.floats(0.2, 10), st.floats(1.001, 3))
def test_property_tumour_dose_monotone_in_tnr_normal_dose_antitone(a, lsf, mn, mt, r, k):
    low = dose_per_activity("partition", CF, lsf, 0.0, mn, [mt], [r])
    high = dose_per_activity("partition", CF, lsf, 0.0, mn, [mt], [r * k])
    assert high.tumour_gy_per_gbq[0] > low.tumour_gy_per_gbq[0]
    assert high.normal_gy_per_gbq < low.normal_gy_per_gbq
    assert math.isclose(high.perfused_gy_per_gbq, low.perfused_gy_per_gbq)


def test_a_cap_with_no_dose_per_gbq_binds_nothing():
    """A position's own cap on a dose it does not receive (0 Gy/GBq: a position whose
    perfused volume holds no normal liver) cannot bind: it must be skipped, not divided by.
    Bug: the zero test dropped ('or' for 'and', '>=' for '>'): ZeroDivisionError. By hand:
    tumour goal 200 Gy at 100 Gy/GBq = 2 GBq; the second cap, 90 Gy at 60 Gy/GBq = 1.5 GBq,
    binds."""
    from tareplanner.physics.compartments import DosePerActivity
    from tareplanner.physics.solver import PositionCap

    d = DosePerActivity(normal_gy_per_gbq=0.0, perfused_gy_per_gbq=60.0,
                        tumour_gy_per_gbq=(100.0,))
    free = PositionProblem("p", "tumour_dose_gy", 200.0, d,
                           (PositionCap("normal-liver-limit", 0.0, 70.0),))
    sol = solve([free], 0.0, DoseLimits(None, None, None))
    assert sol.positions[0].activity_gbq == pytest.approx(2.0)
    assert sol.positions[0].limited_by == "goal"
    capped = PositionProblem("p", "tumour_dose_gy", 200.0, d,
                             (PositionCap("normal-liver-limit", 0.0, 70.0),
                              PositionCap("perfused-limit", 60.0, 90.0)))
    sol = solve([capped], 0.0, DoseLimits(None, None, None))
    assert sol.positions[0].activity_gbq == pytest.approx(1.5)
    assert sol.positions[0].limited_by == "perfused-limit"


def test_a_cap_below_one_gy_per_gbq_still_binds():
    """A cap whose dose per GBq is under 1 Gy/GBq is a cap like any other. Bug: caps tested
    against 1 instead of 0 (skipped). By hand: 0.6 Gy at 0.5 Gy/GBq = 1.2 GBq < the goal's
    200 Gy / 100 Gy/GBq = 2 GBq."""
    from tareplanner.physics.compartments import DosePerActivity
    from tareplanner.physics.solver import PositionCap

    d = DosePerActivity(normal_gy_per_gbq=0.5, perfused_gy_per_gbq=60.0,
                        tumour_gy_per_gbq=(100.0,))
    problem = PositionProblem("p", "tumour_dose_gy", 200.0, d,
                              (PositionCap("normal-liver-limit", 0.5, 0.6),))
    sol = solve([problem], 0.0, DoseLimits(None, None, None))
    assert sol.positions[0].activity_gbq == pytest.approx(1.2)
    assert sol.positions[0].limited_by == "normal-liver-limit"
    assert sol.positions[0].normal_dose_gy == pytest.approx(0.6)


def test_an_explicit_activity_beyond_a_position_cap_is_a_violation():
    """An activity goal is given as asked, and a position's own cap it exceeds is reported
    with the dose and the limit. Bugs: the cap's violation dropped, its dose divided by the
    dose per GBq, its fields lost. By hand: 3 GBq at 60 Gy/GBq = 180 Gy > 90 Gy; 1 GBq at
    0.5 Gy/GBq = 0.5 Gy <= 1 Gy (no violation; 1 / 0.5 = 2 would be one)."""
    from tareplanner.physics.compartments import DosePerActivity
    from tareplanner.physics.solver import PositionCap, Violation

    d = DosePerActivity(normal_gy_per_gbq=0.5, perfused_gy_per_gbq=60.0,
                        tumour_gy_per_gbq=(100.0,))
    over = PositionProblem("over", "activity_gbq", 3.0, d,
                           (PositionCap("perfused-limit", 60.0, 90.0),))
    within = PositionProblem("within", "activity_gbq", 1.0, d,
                             (PositionCap("normal-liver-limit", 0.5, 1.0),))
    sol = solve([over, within], 0.0, DoseLimits(None, None, None))
    assert sol.positions[0].activity_gbq == 3.0 and sol.positions[0].limited_by == "goal"
    assert sol.positions[0].violations == (Violation("perfused-limit", 180.0, 90.0),)
    assert sol.positions[1].violations == ()


def test_the_tightest_of_the_normal_liver_limit_and_a_position_cap_binds():
    """Caps are compared in GBq (limit / dose per GBq). Bug: a cap's limit multiplied by its
    dose per GBq (90 x 60 = 5400 'GBq', never below the normal-liver cap). By hand: the
    normal-liver limit 120 Gy at 40 Gy/GBq = 3 GBq; the perfused cap 90 Gy at 60 Gy/GBq =
    1.5 GBq; the tumour goal 200 Gy at 100 Gy/GBq = 2 GBq: 1.5 GBq, limited by the cap."""
    from tareplanner.physics.compartments import DosePerActivity
    from tareplanner.physics.solver import PositionCap

    d = DosePerActivity(normal_gy_per_gbq=40.0, perfused_gy_per_gbq=60.0,
                        tumour_gy_per_gbq=(100.0,))
    problem = PositionProblem("p", "tumour_dose_gy", 200.0, d,
                              (PositionCap("perfused-limit", 60.0, 90.0),))
    sol = solve([problem], 0.0, DoseLimits(120.0, None, None))
    assert sol.positions[0].activity_gbq == pytest.approx(1.5)
    assert sol.positions[0].limited_by == "perfused-limit"
