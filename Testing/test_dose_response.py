"""Dose–response fits (physics.dose_response): the maths against independent calculations,
the refusals at their edges, and the synthetic cohort with a known truth (coverage of the
true D50; clustering that matters)."""

import math

import numpy as np
import pytest
from scipy import optimize, stats

pytest.importorskip("statsmodels")

from tareplanner.physics.dose_response import (  # noqa: E402
    MIN_CLUSTERS, MIN_EVENTS, Curve, DoseResponseError, auc, check_cohort, dose_at_probability,
    fit_dose_response, hosmer_lemeshow, lyman_parameters, synthetic_cohort)


def test_dose_at_probability_and_fieller_interval_by_hand():
    """Catches a wrong sign in Fieller's quadratic (its V01 term) or a D_p formula with the
    wrong link inverse. Hand calculation: b0 = -5, b1 = 0.02/Gy -> D50 = 250 Gy; D80 =
    (ln 4 + 5)/0.02 Gy. Fieller's limits are the roots of
    (q - b0 - b1 D)^2 - z^2 (V00 + 2 D V01 + D^2 V11), found here with numpy.roots."""
    params = (-5.0, 0.02)
    cov = np.array([[0.36, -0.0013], [-0.0013, 5.0e-6]])
    d50 = dose_at_probability(params, cov, "logit", 0.5)
    assert d50.dose_gy == pytest.approx(250.0)
    d80 = dose_at_probability(params, cov, "logit", 0.8)
    assert d80.dose_gy == pytest.approx((math.log(4) + 5) / 0.02)
    z = stats.norm.ppf(0.975)
    for d, q in ((d50, 0.0), (d80, math.log(4))):
        poly = np.polynomial.Polynomial([q + 5.0, -0.02]) ** 2 - z ** 2 * np.polynomial.Polynomial(
            [cov[0, 0], 2 * cov[0, 1], cov[1, 1]])
        roots = sorted(poly.roots().real)
        assert (d.low_gy, d.high_gy) == pytest.approx(roots, rel=1e-9)
        # the delta method: se^2 = g C g', g = (-1/b1, -D/b1)
        g = np.array([-1 / 0.02, -d.dose_gy / 0.02])
        se = math.sqrt(g @ cov @ g)
        assert (d.delta_low_gy, d.delta_high_gy) == pytest.approx(
            (d.dose_gy - z * se, d.dose_gy + z * se))
    # probit: D50 = -b0/b1 too; D80 = (Phi^-1(0.8) - b0)/b1 with Phi^-1(0.8) = 0.8416212
    assert dose_at_probability(params, cov, "probit", 0.8).dose_gy == pytest.approx(
        (0.8416212 + 5) / 0.02, rel=1e-6)


def test_fieller_interval_unbounded_when_slope_not_significant():
    """Catches an interval reported as finite when b1^2 <= z^2 V11 (slope not different from
    0): the set of doses is then unbounded, and must be said to be."""
    d = dose_at_probability((-1.0, 0.004), [[0.1, 0.0], [0.0, 1e-5]], "logit", 0.5)
    assert 0.004 ** 2 < stats.norm.ppf(0.975) ** 2 * 1e-5
    assert not d.bounded and d.low_gy is None and d.high_gy is None


def test_probability_band_by_hand():
    """Catches a band built on the probability scale instead of the linear predictor: at
    D = 300 Gy, eta = -5 + 6 = 1, se^2 = V00 + 2 D V01 + D^2 V11 (hand), P = 1/(1+e^-1)."""
    cov = ((0.36, -0.0013), (-0.0013, 5.0e-6))
    p, low, high = Curve("logit", (-5.0, 0.02), cov).probability(300.0)
    se = math.sqrt(0.36 - 2 * 300 * 0.0013 + 300 ** 2 * 5e-6)
    z = stats.norm.ppf(0.975)
    assert float(p) == pytest.approx(1 / (1 + math.exp(-1)))
    assert float(low) == pytest.approx(1 / (1 + math.exp(-(1 - z * se))))
    assert float(high) == pytest.approx(1 / (1 + math.exp(-(1 + z * se))))


def test_fit_matches_maximum_likelihood_and_cluster_sandwich_computed_here():
    """Catches a fit that is not the maximum-likelihood logistic regression, or a covariance
    that is not clustered by patient: the coefficients are compared with scipy's minimiser of
    the log-likelihood written here, and the covariance with the cluster sandwich
    (X'WX)^-1 (sum_g s_g s_g') (X'WX)^-1 times G/(G-1) (N-1)/(N-K) (Cameron & Miller 2015,
    CR1), computed here with numpy."""
    c = synthetic_cohort(60, 3, seed=3, patient_sd_logit=1.0)
    fit = fit_dose_response(c.dose_gy, c.response, c.patient, plateau=False)
    x = np.column_stack([np.ones_like(c.dose_gy), c.dose_gy / 100.0])
    y = c.response.astype(float)

    def nll(b):
        eta = x @ b
        return -np.sum(y * eta - np.logaddexp(0, eta))
    b = optimize.minimize(nll, [0.0, 0.0], method="BFGS", options={"gtol": 1e-10}).x
    assert fit.curve.params[0] == pytest.approx(b[0], rel=1e-4)
    assert fit.curve.params[1] == pytest.approx(b[1] / 100.0, rel=1e-4)
    xd = np.column_stack([np.ones_like(c.dose_gy), c.dose_gy])
    p = 1 / (1 + np.exp(-(xd @ np.array(fit.curve.params))))
    bread = np.linalg.inv(xd.T @ (xd * (p * (1 - p))[:, None]))
    scores = xd * (y - p)[:, None]
    meat = np.zeros((2, 2))
    for g in np.unique(c.patient):
        s = scores[c.patient == g].sum(axis=0)
        meat += np.outer(s, s)
    n, k, groups = len(y), 2, len(np.unique(c.patient))
    sandwich = bread @ meat @ bread * groups / (groups - 1) * (n - 1) / (n - k)
    assert np.asarray(fit.curve.covariance) == pytest.approx(sandwich, rel=1e-5)
    assert np.asarray(fit.naive_covariance) == pytest.approx(bread, rel=1e-5)
    assert fit.curve.df == groups - 1


def test_hosmer_lemeshow_by_hand():
    """Catches a wrong statistic or degrees of freedom: two groups of two (ordered by p),
    group 1: p = 0.2, 0.4, O = 1, E = 0.6; group 2: p = 0.6, 0.8, O = 1, E = 1.4;
    chi2 = 0.4^2/(0.6*0.7) + 0.4^2/(1.4*0.3); with g = 2 the df is floored at 1."""
    chi2, df, p = hosmer_lemeshow([0, 1, 1, 0], [0.2, 0.4, 0.6, 0.8], groups=2)
    expected = 0.16 / (0.6 * 0.7) + 0.16 / (1.4 * 0.3)
    assert chi2 == pytest.approx(expected)
    assert df == 1 and p == pytest.approx(stats.chi2.sf(expected, 1))


def test_auc_is_the_mann_whitney_probability():
    """Catches an AUC with ties or ranks mishandled: scipy's Mann–Whitney U / (n1 n0)."""
    rng = np.random.default_rng(5)
    y = rng.random(80) < 0.4
    score = np.round(rng.normal(size=80) + y, 1)     # ties on purpose
    u = stats.mannwhitneyu(score[y], score[~y]).statistic
    assert auc(y, score) == pytest.approx(u / (y.sum() * (~y).sum()))


def test_lyman_parameters_by_hand():
    """Catches TD50 and m swapped or inverted: (D - TD50)/(m TD50) with TD50 = 60 Gy,
    m = 0.25 is b0 = -1/m = -4, b1 = 1/(m TD50) = 1/15 per Gy."""
    assert lyman_parameters((-4.0, 1 / 15)) == pytest.approx((60.0, 0.25))


def _cohort(events, non_events, patients):
    """Doses that interleave (no separation); outcomes with the given counts."""
    n = events + non_events
    dose = np.linspace(50, 500, n)
    y = np.zeros(n, int)
    idx = np.r_[np.arange(1, n, 2), np.arange(0, n, 2)][:events]
    y[idx] = 1
    return dose, y, np.arange(n) % patients


@pytest.mark.parametrize("events, ok", [(MIN_EVENTS - 1, False), (MIN_EVENTS, True),
                                        (MIN_EVENTS + 1, True)])
def test_fewest_events_edge(events, ok):
    """Catches an off-by-one at the 10-events rule (Peduzzi 1996): 9 refused, 10 and 11
    fitted."""
    dose, y, patient = _cohort(events, 30, 12)
    if ok:
        check_cohort(dose, y, patient, what="t")
    else:
        with pytest.raises(DoseResponseError, match="at least 10 of each"):
            check_cohort(dose, y, patient, what="t")


@pytest.mark.parametrize("patients, ok", [(MIN_CLUSTERS - 1, False), (MIN_CLUSTERS, True),
                                          (MIN_CLUSTERS + 1, True)])
def test_fewest_patients_edge(patients, ok):
    """Catches an off-by-one at the fewest clusters for a cluster-robust covariance."""
    dose, y, patient = _cohort(20, 20, patients)
    if ok:
        check_cohort(dose, y, patient, what="t")
    else:
        with pytest.raises(DoseResponseError, match="patient"):
            check_cohort(dose, y, patient, what="t")


def test_refusals_say_why():
    """Catches a fit returned for a cohort that cannot give one: one outcome only, doses
    separating the outcomes (infinite slope), a NaN dose."""
    dose = np.linspace(50, 500, 40)
    with pytest.raises(DoseResponseError, match="both outcomes"):
        check_cohort(dose, np.ones(40, int), np.arange(40) % 12, what="t")
    y = (dose > 250).astype(int)
    with pytest.raises(DoseResponseError, match="separated"):
        check_cohort(dose, y, np.arange(40) % 12, what="t")
    y2 = y.copy()
    y2[[0, -1]] = 1 - y2[[0, -1]]    # one overlap each side: no longer separated
    check_cohort(dose, y2, np.arange(40) % 12, what="t")
    bad = dose.copy()
    bad[3] = np.nan
    with pytest.raises(DoseResponseError, match="not finite"):
        check_cohort(bad, y2, np.arange(40) % 12, what="t")


#: repeated cohorts of the coverage test, and the fewest covering the truth that a true
#: coverage of 95 % gives with probability 99 % (one-sided binomial quantile)
REPEATS = 200
TOLERATED = int(stats.binom.ppf(0.01, REPEATS, 0.95))


def test_coverage_of_the_true_d50():
    """Catches intervals that are too narrow (a covariance that ignores the patients, a
    normal critical value with few clusters, a wrong Fieller root): in 200 synthetic cohorts
    of 80 patients x 3 lesions drawn from logit P = 0.02 (D - 250 Gy) + u, u ~ N(0, 1) per
    patient, the 95 % interval of D50 must hold 250 Gy in at least 182 (the 1 % quantile of
    Binomial(200, 0.95): a true 95 % coverage fails this test less than once in a hundred runs; the
    seeds are fixed, so the run is deterministic). D50 is the same for the patient-level
    and the population-averaged curve (symmetric random effect)."""
    assert TOLERATED == 182
    covered = 0
    for seed in range(REPEATS):
        c = synthetic_cohort(80, 3, seed=1000 + seed, patient_sd_logit=1.0)
        d = fit_dose_response(c.dose_gy, c.response, c.patient, plateau=False).dose(0.5)
        covered += bool(d.bounded and d.low_gy <= 250.0 <= d.high_gy)
    assert covered >= TOLERATED


def test_ignoring_the_patients_gives_too_narrow_intervals():
    """Catches a fit whose intervals ignore that lesions of a patient respond together: with
    a strong random patient effect (sd 2 on the logit scale) and 8 lesions per patient
    sharing the patient's dose, the naive (model-based) D50 intervals cover the truth far
    less often than 95 % (20 fewer than the 182 of 200 of the coverage test), the cluster-robust
    ones as often as the coverage test asks, and the naive intervals are narrower."""
    naive = robust = 0
    widths = []
    for seed in range(REPEATS):
        c = synthetic_cohort(40, 8, seed=5000 + seed, patient_sd_logit=2.0,
                             lesion_dose_sd_log=0.15)
        fit = fit_dose_response(c.dose_gy, c.response, c.patient, plateau=False)
        d, n = fit.dose(0.5), fit.naive_d50
        robust += bool(d.bounded and d.low_gy <= 250.0 <= d.high_gy)
        naive += bool(n.bounded and n.low_gy <= 250.0 <= n.high_gy)
        if d.bounded and n.bounded:
            widths.append((n.high_gy - n.low_gy) / (d.high_gy - d.low_gy))
    assert naive < TOLERATED - 20
    assert robust >= TOLERATED
    assert np.median(widths) < 0.8


def test_liver_toxicity_fit_recovers_td50():
    """Catches a probit (Lyman) fit on the wrong scale: 400 patients drawn with logit NTCP =
    0.08 (D - 60 Gy); the probit D50 (TD50) interval holds 60 Gy and the Lyman TD50 equals
    the D50 (both -b0/b1)."""
    c = synthetic_cohort(400, 1, seed=11)
    fit = fit_dose_response(c.liver_dose_gy, c.toxicity, None, link="probit", plateau=False)
    d = fit.dose(0.5)
    assert d.low_gy <= 60.0 <= d.high_gy
    assert lyman_parameters(fit.curve.params)[0] == pytest.approx(d.dose_gy)


def test_plateau_model_finds_a_plateau_below_one():
    """Catches a plateau analysis that cannot see one: responses drawn with P = 0.6 F(...)
    (at most 60 % of lesions respond at any dose) give p_max near 0.6 with an interval
    below 1, and a small p-value against the curve that tends to 1."""
    rng = np.random.default_rng(2)
    dose = rng.uniform(20, 800, 900)
    patient = np.arange(900) % 300
    y = (rng.random(900) < 0.6 * stats.logistic.cdf(0.03 * (dose - 200))).astype(int)
    fit = fit_dose_response(dose, y, patient)
    plateau = fit.plateau
    assert plateau.estimated and plateau.p_max_high < 0.75
    assert plateau.p_max_low < 0.6 < plateau.p_max_high
    assert plateau.p_value < 0.001


def test_six_hundred_lesions_fit_within_five_seconds():
    """Catches a fit too slow for a cohort of 200 patients and 600 lesions (<= 5 s on the
    2-core machine), plateau model included."""
    import time
    c = synthetic_cohort(200, 3, seed=1, patient_sd_logit=1.0)
    start = time.perf_counter()
    fit_dose_response(c.dose_gy, c.response, c.patient)
    fit_dose_response(c.liver_dose_gy, c.toxicity, None, link="probit", plateau=False)
    assert time.perf_counter() - start <= 5.0


def test_eud_from_a_dvh_by_hand():
    """Catches an EUD that is a mean (no exponential weighting), weights bins by the
    cumulative instead of the differential volume, or overflows at high dose: half the
    voxels at 80 Gy and half at 200 Gy, alpha 0.01/Gy: EUD = -ln(0.5 e^-0.8 + 0.5 e^-2)/0.01
    = 123.0 Gy (by hand: 0.22466 + 0.06767 = 0.29233, -ln = 1.2298), within half a DVH bin
    (1 Gy bins: each dose sits at its bin's centre); a uniform 3000 Gy gives 3000 (+ half a bin) without overflow."""
    from tareplanner.physics.dose_response import eud_gy
    from tareplanner.physics.dvh import cumulative_dvh
    dose = np.r_[np.full(500, 80.0), np.full(500, 200.0)].astype(np.float32)
    edges, volume = cumulative_dvh(dose, None, 1.0)
    expected = -math.log(0.5 * math.exp(-0.8) + 0.5 * math.exp(-2.0)) / 0.01
    assert expected == pytest.approx(123.0, abs=0.05)
    assert eud_gy(edges[:-1], volume[:-1], 0.01) == pytest.approx(expected, abs=0.5)
    edges, volume = cumulative_dvh(np.full(10, 3000.0, np.float32), None, 1.0)
    assert eud_gy(edges[:-1], volume[:-1], 0.5) == pytest.approx(3000.0, abs=0.5)
    with pytest.raises(ValueError, match="alpha_per_gy"):
        eud_gy(edges[:-1], volume[:-1], 0.0)
