"""A dose–response fit field by field (physics.dose_response.fit_dose_response), the plateau
model (the maximum likelihood computed here with scipy; its last steps with the optimiser's
answer given by hand) and the synthetic cohort's stated truth (large samples against the
documented distributions)."""

import math

import numpy as np
import pytest
from scipy import optimize, special, stats

pytest.importorskip("statsmodels")

from statsmodels.base.model import GenericLikelihoodModel  # noqa: E402

from tareplanner.physics.dose_response import (  # noqa: E402
    DoseResponseError, Plateau, fit_dose_response, plateau_fit, synthetic_cohort)

Z95 = 1.959963984540054


def _mle(dose, y, link="logit"):
    """Maximum-likelihood (b0, b1) of P = F(b0 + b1 D), minimised here with scipy (the dose
    in units of 100 Gy for the optimiser's conditioning)."""
    x = np.column_stack([np.ones_like(dose), dose / 100.0])
    y = np.asarray(y, float)

    def nll(b):
        eta = x @ b
        if link == "logit":
            return -np.sum(y * eta - np.logaddexp(0, eta))
        return -np.sum(y * special.log_ndtr(eta) + (1 - y) * special.log_ndtr(-eta))
    b = optimize.minimize(nll, [0.0, 0.0], method="BFGS", options={"gtol": 1e-10}).x
    return b[0], b[1] / 100.0


def _fieller(q, params, cov, z):
    poly = np.polynomial.Polynomial([q - params[0], -params[1]]) ** 2 - z ** 2 * \
        np.polynomial.Polynomial([cov[0][0], 2 * cov[0][1], cov[1][1]])
    return sorted(poly.roots().real)


# function-scoped fixtures: the mutation run maps each test to the functions it calls, and a
# fit made once for the module would be mapped to the first test only
@pytest.fixture
def cohort():
    return synthetic_cohort(60, 3, seed=3, patient_sd_logit=1.0)


@pytest.fixture
def clustered(cohort):
    return fit_dose_response(cohort.dose_gy, cohort.response, cohort.patient, plateau=False)


@pytest.fixture
def unclustered(cohort):
    return fit_dose_response(cohort.dose_gy, cohort.response, None, plateau=False)


# --- the fit's fields ----------------------------------------------------------------------

def test_cluster_robust_fit_reports_t_based_doses_and_slope_p(clustered, cohort):
    """Catches the reported doses or the slope's p-value computed with the normal quantile
    although the covariance is clustered (60 patients: t with 59 df), or the slope's z
    statistic wrong: Fieller's limits from the fit's own coefficients and covariance with
    t(0.975, 59), by numpy's roots; p = 2 P(T59 > |b1| / se(b1))."""
    params, cov = clustered.curve.params, clustered.curve.covariance
    t59 = stats.t.ppf(0.975, 59)
    for d, p in zip(clustered.doses, (0.1, 0.5, 0.8, 0.9)):
        q = math.log(p / (1 - p))
        assert d.p == p and d.dose_gy == pytest.approx((q - params[0]) / params[1])
        assert (d.low_gy, d.high_gy) == pytest.approx(_fieller(q, params, cov, t59))
    z = params[1] / math.sqrt(cov[1][1])
    assert clustered.slope_p_value == pytest.approx(2 * stats.t.sf(abs(z), 59))
    assert clustered.clusters == 60 and clustered.curve.df == 59
    assert clustered.covariance_kind == (
        "cluster-robust (patient as cluster; statsmodels GLM cov_type='cluster')")


def test_fit_without_patients_is_hc1_with_normal_quantile(unclustered, cohort):
    """Catches the model-based covariance (or t with n - 1 df) used without patient labels:
    the coefficients against scipy's maximum likelihood; the covariance against the HC1
    sandwich (X'WX)^-1 (sum_i s_i s_i') (X'WX)^-1 n/(n - k) (MacKinnon & White 1985)
    computed here with numpy; the doses' limits with the normal 1.960."""
    dose, y = cohort.dose_gy, cohort.response.astype(float)
    b = _mle(dose, y)
    assert unclustered.curve.params == pytest.approx(b, rel=1e-4)
    x = np.column_stack([np.ones_like(dose), dose])
    p = special.expit(x @ np.array(unclustered.curve.params))
    bread = np.linalg.inv(x.T @ (x * (p * (1 - p))[:, None]))
    scores = x * (y - p)[:, None]
    n = len(y)
    hc1 = bread @ (scores.T @ scores) @ bread * n / (n - 2)
    assert np.asarray(unclustered.curve.covariance) == pytest.approx(hc1, rel=1e-5)
    assert unclustered.curve.df is None and unclustered.clusters == n
    d50 = unclustered.dose(0.5)
    assert (d50.low_gy, d50.high_gy) == pytest.approx(
        _fieller(0.0, unclustered.curve.params, unclustered.curve.covariance, Z95))
    z = unclustered.curve.params[1] / math.sqrt(unclustered.curve.covariance[1][1])
    assert unclustered.slope_p_value == pytest.approx(2 * stats.norm.sf(abs(z)))
    assert unclustered.covariance_kind == (
        "heteroskedasticity-robust (HC1; one observation per patient; statsmodels GLM "
        "cov_type='HC1')")


def test_dose_of_an_unreported_probability(clustered):
    """Catches a dose asked for outside the reported ones (30 %) computed at another
    probability: (ln(0.3/0.7) - b0)/b1."""
    b0, b1 = clustered.curve.params
    assert clustered.dose(0.3).dose_gy == pytest.approx((math.log(0.3 / 0.7) - b0) / b1)
    assert clustered.dose(0.3).p == 0.3


def test_goodness_of_fit_fields_by_hand(unclustered, cohort):
    """Catches a goodness-of-fit field taken from the wrong place: Hosmer–Lemeshow with 10
    groups has 8 df; the binary deviance -2 sum(y ln p + (1-y) ln(1-p)) with n - 2 df;
    Pearson's sum (y - p)^2 / (p (1 - p)); the AUC of the dose as Mann–Whitney U/(n1 n0)
    (scipy); p from scipy's maximum likelihood."""
    dose, y = cohort.dose_gy, cohort.response.astype(float)
    b0, b1 = _mle(dose, y)
    p = special.expit(b0 + b1 * dose)
    g = unclustered.goodness
    assert g.hosmer_lemeshow_df == 8
    assert g.hosmer_lemeshow_p == pytest.approx(stats.chi2.sf(g.hosmer_lemeshow_chi2, 8))
    assert g.deviance == pytest.approx(-2 * np.sum(y * np.log(p) + (1 - y) * np.log1p(-p)),
                                       rel=1e-6)
    assert g.deviance_df == len(y) - 2
    assert g.pearson_chi2 == pytest.approx(np.sum((y - p) ** 2 / (p * (1 - p))), rel=1e-5)
    u = stats.mannwhitneyu(dose[y == 1], dose[y == 0]).statistic
    assert g.auc == pytest.approx(u / ((y == 1).sum() * (y == 0).sum()))


def test_band_grid_and_observed_bins(clustered, cohort):
    """Catches the band's grid changed (101 doses from 0 to 1.1 x the highest dose) or the
    observed rates not in four dose quartiles."""
    grid = np.asarray(clustered.band_dose_gy)
    top = 1.1 * float(cohort.dose_gy.max())
    assert len(grid) == 101 and grid[0] == 0.0 and grid[-1] == pytest.approx(top)
    assert np.diff(grid) == pytest.approx(np.full(100, top / 100))
    b0, b1 = clustered.curve.params
    assert np.asarray(clustered.band_p) == pytest.approx(special.expit(b0 + b1 * grid))
    assert len(clustered.observed) == 4
    assert sum(b.n for b in clustered.observed) == 180


def test_a_good_fit_has_no_warnings_and_no_plateau_unless_asked(clustered):
    """Catches warnings given for a rising, significant, well-fitting curve (HL p = 0.064
    here), and a plateau fitted although not requested."""
    assert clustered.warnings == ()
    assert clustered.plateau == Plateau(False, reason="not requested")


def test_a_falling_curve_is_warned_about(cohort):
    """Catches a falling curve's doses reported without saying they mean nothing: the
    outcomes flipped; the slope, from scipy's maximum likelihood, shown to 3 digits."""
    y = 1 - cohort.response
    fit = fit_dose_response(cohort.dose_gy, y, cohort.patient, plateau=False)
    slope = _mle(cohort.dose_gy, y)[1]
    assert fit.warnings == (
        f"the fitted probability does not rise with dose (slope {slope:.3g} per Gy): the "
        "doses of given probabilities are not meaningful",)


def test_a_slope_that_does_not_differ_from_zero_is_warned_about():
    """Catches the warning of an insignificant slope missing (p = 0.066 >= 0.05): outcomes
    drawn at random regardless of dose."""
    rng = np.random.default_rng(1)
    dose = rng.uniform(50, 500, 60)
    y = (rng.random(60) < 0.5).astype(int)
    fit = fit_dose_response(dose, y, None, plateau=False)
    b1, v11 = fit.curve.params[1], fit.curve.covariance[1][1]
    p = 2 * stats.norm.sf(b1 / math.sqrt(v11))
    assert 0.05 <= p < 0.1 and b1 > 0
    assert fit.warnings == (
        f"the slope does not differ from 0 at the 95% level (p = {p:.2g}): intervals of the "
        "doses are unbounded",)


def test_a_curve_that_misses_the_observed_rates_is_warned_about():
    """Catches the Hosmer–Lemeshow warning missing for a U-shaped response (90 % below 105
    and above 405 Gy, 10 % between) that no monotone curve describes."""
    rng = np.random.default_rng(0)
    dose = np.linspace(10, 500, 300)
    y = (rng.random(300) < np.where(np.abs(dose - 255) > 150, 0.9, 0.1)).astype(int)
    fit = fit_dose_response(dose, y, None, plateau=False)
    hl = fit.goodness.hosmer_lemeshow_p
    assert hl < 1e-6
    assert fit.warnings[-1] == (f"Hosmer–Lemeshow p = {hl:.2g}: the curve does not describe "
                                "the observed rates well")


def test_probit_fit_is_the_maximum_likelihood_probit():
    """Catches the probit link not passed to the GLM (a logit fit instead): 400 patients'
    liver doses and toxicities; the coefficients against scipy's maximum likelihood of
    P = Phi(b0 + b1 D)."""
    c = synthetic_cohort(400, 1, seed=11)
    fit = fit_dose_response(c.liver_dose_gy, c.toxicity, None, link="probit", plateau=False)
    assert fit.curve.params == pytest.approx(_mle(c.liver_dose_gy, c.toxicity, "probit"),
                                             rel=1e-4)
    assert fit.curve.link == "probit"


def test_fit_refusals_use_the_callers_settings(cohort):
    """Catches the cohort's checks run without the patient labels, the caller's minimum of
    events or patients, or the outcome's name: 9 patients refused; 6 patients accepted
    with min_clusters = 5; 6 events accepted with min_events = 5; without ``what`` the
    refusal names 'outcome'."""
    dose = np.linspace(10.0, 400.0, 40)
    y = np.arange(40) % 2
    with pytest.raises(DoseResponseError, match=r"^outcome: 9 patient\(s\)"):
        fit_dose_response(dose, y, np.arange(40) % 9, plateau=False)
    with pytest.raises(DoseResponseError, match=r"^lesions: 9 patient\(s\)"):
        fit_dose_response(dose, y, np.arange(40) % 9, plateau=False, what="lesions")
    fit = fit_dose_response(dose, y, np.arange(40) % 6, plateau=False, min_clusters=5)
    assert fit.clusters == 6
    y6 = np.zeros(40, int)
    y6[[3, 9, 15, 21, 27, 33]] = 1
    fit = fit_dose_response(dose, y6, None, plateau=False, min_events=5)
    assert fit.events == 6
    with pytest.raises(DoseResponseError, match=r"^outcome: all 40 outcomes are events"):
        fit_dose_response(dose, np.ones(40, int), None)


# --- the plateau model ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def plateau_cohort():
    """At most 60 % of lesions respond at any dose."""
    rng = np.random.default_rng(2)
    dose = rng.uniform(20, 800, 900)
    y = (rng.random(900) < 0.6 * stats.logistic.cdf(0.03 * (dose - 200))).astype(float)
    return dose, y


def _plateau_nll(theta, dose, y):
    b0, b1, g = theta
    p = special.expit(b0 + b1 * dose / 100.0) * special.expit(g)
    return -np.sum(y * np.log(p) + (1 - y) * np.log1p(-p))


def test_plateau_is_the_maximum_likelihood_with_its_interval(plateau_cohort, capsys):
    """Catches a wrong plateau likelihood, interval or test: p_max = expit(g) at the maximum
    of sum y ln p + (1 - y) ln(1 - p), p = expit(g) F(b0 + b1 D), found here with scipy; the
    interval expit(g -+ 1.96 se), se from the inverse of the Hessian of the negative
    log-likelihood (central differences written here); LR = 2 (ll_plateau - ll_logistic) with
    both maxima from scipy; p = LR's chi2(1) tail / 2 (Self & Liang 1987). Nothing is printed
    (the optimiser's progress would mix with the command line's output)."""
    dose, y = plateau_cohort
    fit = fit_dose_response(dose, y, None)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    plateau = fit.plateau
    res = optimize.minimize(_plateau_nll, [-6.0, 3.0, 0.5], args=(dose, y), method="BFGS",
                            options={"gtol": 1e-9})
    theta = res.x
    h = np.zeros((3, 3))
    step = 1e-4
    for i in range(3):
        for j in range(3):
            e_i, e_j = np.eye(3)[i] * step, np.eye(3)[j] * step
            h[i, j] = (_plateau_nll(theta + e_i + e_j, dose, y)
                       - _plateau_nll(theta + e_i - e_j, dose, y)
                       - _plateau_nll(theta - e_i + e_j, dose, y)
                       + _plateau_nll(theta - e_i - e_j, dose, y)) / (4 * step * step)
    se = math.sqrt(np.linalg.inv(h)[2, 2])
    g = theta[2]
    assert plateau.estimated and plateau.reason == ""
    assert plateau.p_max == pytest.approx(special.expit(g), rel=1e-4)
    assert plateau.p_max_low == pytest.approx(special.expit(g - Z95 * se), rel=1e-3)
    assert plateau.p_max_high == pytest.approx(special.expit(g + Z95 * se), rel=1e-3)
    b0, b1 = _mle(dose, y)
    p0 = special.expit(b0 + b1 * dose)
    ll0 = np.sum(y * np.log(p0) + (1 - y) * np.log1p(-p0))
    lr = 2 * (-res.fun - ll0)
    assert plateau.likelihood_ratio == pytest.approx(lr, rel=1e-3)
    assert plateau.p_value == pytest.approx(0.5 * math.erfc(math.sqrt(lr / 2)), rel=1e-2)


class _Answer:
    """The optimiser's answer, given by hand: parameters (b0, b1, g), the covariance's
    (g, g) element, the maximum log-likelihood and whether it converged."""

    def __init__(self, g, var_g, llf, converged=True, cov_error=False):
        self.params = np.array([-5.0, 0.02, g])
        self._var_g, self._cov_error = var_g, cov_error
        self.llf = llf
        self.mle_retvals = {"converged": converged}

    def cov_params(self):
        if self._cov_error:
            raise ValueError("need covariance of parameters for computing (unnormalized) "
                             "covariances")
        return np.diag([1.0, 1.0, self._var_g])


#: four lesions at 100-400 Gy, outcomes 0 1 0 1; at the start (-5, 0.02 /Gy) the linear
#: predictors are -3, -1, 1, 3: ll0 = ln F(3) + ln F(-1) + ln(1 - F(1)) + ln F(3)
#: = 2 ln F(3) + 2 ln F(-1) (F the logistic function; 1 - F(x) = F(-x))
DOSE4 = np.array([100.0, 200.0, 300.0, 400.0])
Y4 = np.array([0.0, 1.0, 0.0, 1.0])
LL0 = 2 * math.log(1 / (1 + math.exp(-3))) + 2 * math.log(1 / (1 + math.exp(1)))


def _answered(monkeypatch, answer, cluster=None, start=(-5.0, 0.02), dose=DOSE4, y=Y4):
    seen = {}

    def fit(model, **kwargs):
        seen["model"], seen["kwargs"] = model, kwargs
        if isinstance(answer, Exception):
            raise answer
        return answer
    monkeypatch.setattr(GenericLikelihoodModel, "fit", fit)
    return plateau_fit(dose, y, cluster, "logit", start), seen


def test_plateau_below_one_by_hand(monkeypatch):
    """Catches a wrong interval, LR or p-value from the optimiser's answer: g = 0.5, var(g)
    = 0.04 (se 0.2), llf = ll0 + 3: p_max = expit(0.5), limits expit(0.5 -+ 1.96 x 0.2),
    LR = 6 and p = erfc(sqrt(3))/2 (half the chi2(1) tail, Self & Liang 1987)."""
    plateau, seen = _answered(monkeypatch, _Answer(0.5, 0.04, LL0 + 3.0))
    assert plateau == Plateau(True, p_max=pytest.approx(special.expit(0.5)),
                              p_max_low=pytest.approx(special.expit(0.5 - Z95 * 0.2)),
                              p_max_high=pytest.approx(special.expit(0.5 + Z95 * 0.2)),
                              likelihood_ratio=pytest.approx(6.0),
                              p_value=pytest.approx(0.5 * math.erfc(math.sqrt(3.0))))
    assert seen["kwargs"]["start_params"] == pytest.approx([-5.0, 0.02, 3.0])
    assert "cov_type" not in seen["kwargs"]


def test_plateau_log_likelihood_by_hand(monkeypatch):
    """Catches a wrong plateau likelihood or its clipping: at (b0, b1, g) = (-5, 0.02, 0)
    the four lesions' p = F(-3)/2, F(-1)/2, F(1)/2, F(3)/2; at (-800, 2, 40) the lesion at
    100 Gy has F(-600) = 0 and the one at 400 Gy F(0) x F(40); probabilities held within
    [1e-12, 1 - 1e-12], so ln 1e-12 for an event at p = 0 and ln(1 - (1 - 1e-12)) for a
    non-event at p = 1 (lesions at 0 and 1000 Gy, (-800, 2, 40))."""
    _, seen = _answered(monkeypatch, _Answer(0.5, 0.04, LL0))
    model = seen["model"]
    assert model.exog[:, 0] == pytest.approx(np.ones(4))
    ll = model.loglikeobs(np.array([-5.0, 0.02, 0.0]))
    p = [special.expit(e) / 2 for e in (-3, -1, 1, 3)]
    assert ll == pytest.approx([math.log(1 - p[0]), math.log(p[1]), math.log(1 - p[2]),
                                math.log(p[3])])
    _, seen = _answered(monkeypatch, _Answer(0.5, 0.04, LL0), dose=np.array([0.0, 1000.0]),
                        y=np.array([1.0, 0.0]), start=(-5.0, 0.02))
    ll = seen["model"].loglikeobs(np.array([-800.0, 2.0, 40.0]))
    assert ll == pytest.approx([math.log(1e-12), math.log(1 - (1 - 1e-12))], rel=1e-6)


def test_plateau_likelihood_ratio_with_a_start_that_predicts_certainty(monkeypatch):
    """Catches the logistic curve's log-likelihood not clipped: a start (-800, 2 /Gy) gives
    p = F(-800) = 0 at 0 Gy (an event) and F(1200) = 1 at 1000 Gy (a non-event): each
    counts ln 1e-12 (probabilities held within [1e-12, 1 - 1e-12]); with llf = 2 ln 1e-12 + 5
    the LR is 10."""
    ll0 = math.log(1e-12) + math.log(1 - (1 - 1e-12))
    plateau, _ = _answered(monkeypatch, _Answer(0.5, 0.04, ll0 + 5.0),
                           dose=np.array([0.0, 1000.0]), y=np.array([1.0, 0.0]),
                           start=(-800.0, 2.0))
    assert plateau.likelihood_ratio == pytest.approx(10.0, rel=1e-9)


def test_plateau_likelihood_ratio_is_not_negative(monkeypatch):
    """Catches a negative (or floored at 1) likelihood ratio when the optimiser's maximum is
    below the logistic curve's (llf = ll0 - 0.5): LR 0 and p = 1/2."""
    plateau, _ = _answered(monkeypatch, _Answer(0.5, 0.04, LL0 - 0.5))
    assert plateau.likelihood_ratio == 0.0 and plateau.p_value == 0.5


@pytest.mark.parametrize("g, bound", [(7.0, False), (7.0 + 1e-9, True), (40.0, True)])
def test_plateau_on_its_bound_at_the_edge(monkeypatch, g, bound):
    """Catches the bound p_max = 1 taken at or below logit 7 (0.9991), or reported without
    its LR, p-value and reason: g = 7 is a plateau below 1 (p_max = expit(7)); just above,
    p_max is 1 with LR = 2 and p = erfc(1)/2, no interval, whatever the covariance."""
    plateau, _ = _answered(monkeypatch, _Answer(g, 0.04, LL0 + 1.0, cov_error=bound))
    if bound:
        assert plateau == Plateau(
            True, p_max=1.0, likelihood_ratio=pytest.approx(2.0),
            p_value=pytest.approx(0.5 * math.erfc(1.0)),
            reason="no plateau below 1: the estimate of p_max lies on its bound (the "
                   "response probability tends to 1 at high dose)")
    else:
        assert plateau.p_max == pytest.approx(special.expit(7.0))
        assert plateau.p_max_low == pytest.approx(special.expit(7.0 - Z95 * 0.2))


@pytest.mark.parametrize("answer, reason", [
    (_Answer(0.5, 0.04, LL0, converged=False), "not estimated (the optimiser did not converge)"),
    (_Answer(float("nan"), 0.04, LL0), "not estimated (the optimiser did not converge)"),
    (_Answer(0.5, float("nan"), LL0),
     "not estimated (the covariance of p_max could not be computed)"),
    (_Answer(0.5, 0.04, LL0, cov_error=True),
     "not estimated (the covariance of p_max could not be computed)"),
    (np.linalg.LinAlgError("Singular matrix"), "not estimated (LinAlgError)"),
])
def test_plateau_not_estimated_says_why(monkeypatch, answer, reason):
    """Catches a plateau reported from an optimiser that failed, did not converge, or left no
    covariance for p_max (statsmodels' ValueError: a traceback from the fit before)."""
    plateau, _ = _answered(monkeypatch, answer)
    assert plateau == Plateau(False, reason=reason)


def test_plateau_with_a_zero_variance_has_a_point_interval(monkeypatch):
    """Catches a negative variance of g (round-off) taken as not finite: floored at 0, the
    interval is the point p_max."""
    plateau, _ = _answered(monkeypatch, _Answer(0.5, -1e-12, LL0))
    assert plateau.p_max_low == plateau.p_max == plateau.p_max_high == pytest.approx(
        special.expit(0.5))


def test_plateau_with_patients_is_cluster_robust(monkeypatch):
    """Catches the patients not passed to the plateau's covariance."""
    patient = np.array([0, 0, 1, 1])
    _, seen = _answered(monkeypatch, _Answer(0.5, 0.04, LL0), cluster=patient)
    assert seen["kwargs"]["cov_type"] == "cluster"
    assert list(seen["kwargs"]["cov_kwds"]["groups"]) == [0, 0, 1, 1]


def test_plateau_of_a_curve_tending_to_one_no_longer_fails():
    """Catches the plateau of a cohort whose response tends to 1 failing with statsmodels'
    'need covariance of parameters' (a traceback from the fit; this cohort gave it): 600
    lesions drawn from F(0.02 (D - 250 Gy)) up to 1500 Gy give p_max on its bound and a
    p-value above 0.05 (no plateau)."""
    rng = np.random.default_rng(0)
    dose = rng.uniform(20, 1500, 600)
    y = (rng.random(600) < stats.logistic.cdf(0.02 * (dose - 250))).astype(int)
    plateau = fit_dose_response(dose, y, None).plateau
    assert plateau.estimated and plateau.p_max == 1.0 and plateau.p_value > 0.05
    assert plateau.reason.startswith("no plateau below 1")


# --- the synthetic cohort ------------------------------------------------------------------

def test_synthetic_truth_records_its_defaults():
    """Catches a default that differs from the documented truth (D50 250 Gy, slope 0.02/Gy,
    no patient effect, TD50 60 Gy, NTCP slope 0.08/Gy, seed 0) or a renamed key."""
    c = synthetic_cohort(3, 2)
    assert c.truth == {"model": "logit", "d50_gy": 250.0, "slope_per_gy": 0.02,
                       "patient_sd_logit": 0.0, "td50_gy": 60.0, "ntcp_slope_per_gy": 0.08,
                       "seed": 0, "patients": 3, "lesions_per_patient": 2}
    assert c.response.dtype.kind == "i" and c.toxicity.dtype.kind == "i"
    assert list(c.patient) == [0, 0, 1, 1, 2, 2]


def test_synthetic_cohort_is_reproducible_from_its_seed():
    """Catches a cohort that is not the same for the same seed (the default seed 0
    included), or the same for another seed."""
    a, b, other = synthetic_cohort(20, 3), synthetic_cohort(20, 3, seed=0), \
        synthetic_cohort(20, 3, seed=1)
    for name in ("dose_gy", "response", "liver_dose_gy", "toxicity"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.dose_gy, other.dose_gy)


@pytest.fixture
def large():
    """One million patients, two lesions each (about a second)."""
    return synthetic_cohort(1_000_000, 2, seed=5)


def test_synthetic_lesion_doses_follow_the_documented_log_normals(large):
    """Catches a wrong median or spread of the doses: ln D = ln 250 + a + b, a ~ N(0, 0.5^2)
    per patient, b ~ N(0, 0.3^2) per lesion: the mean of ln D within 0.002 of ln 250 (its
    standard error sqrt(0.25/1e6 + 0.09/2e6) = 0.00054), the within-patient spread of
    ln D (b1 - b2)/sqrt(2) has sd 0.3 (lesions do not share one factor)."""
    log_d = np.log(large.dose_gy).reshape(-1, 2)
    assert log_d.mean() == pytest.approx(math.log(250.0), abs=0.002)
    assert np.std((log_d[:, 0] - log_d[:, 1]) / math.sqrt(2)) == pytest.approx(0.3, abs=0.002)
    assert np.std(log_d.mean(axis=1)) == pytest.approx(math.sqrt(0.25 + 0.09 / 2), abs=0.002)


def test_synthetic_liver_doses_and_toxicity_follow_the_truth(large):
    """Catches a wrong liver-dose median (55 Gy), log-sd (0.35) or NTCP curve: the mean of
    ln D_liver within 0.0015 of ln 55 (se 0.00035), its sd 0.35; in 5 Gy bins the toxicity
    rate within 4 standard errors of F(0.08 (D - 60)) at the bin's mean dose."""
    log_l = np.log(large.liver_dose_gy)
    assert log_l.mean() == pytest.approx(math.log(55.0), abs=0.0015)
    assert log_l.std() == pytest.approx(0.35, abs=0.001)
    edges = np.arange(30.0, 100.0, 5.0)
    which = np.digitize(large.liver_dose_gy, edges)
    for k in range(1, len(edges)):
        inside = which == k
        p = np.mean(special.expit(0.08 * (large.liver_dose_gy[inside] - 60.0)))
        se = math.sqrt(p * (1 - p) / inside.sum())
        assert abs(large.toxicity[inside].mean() - p) < 4 * se + 1e-9


def test_synthetic_response_follows_the_truth_without_a_patient_effect(large):
    """Catches a patient effect drawn by default (it flattens the population curve) or a
    wrong response curve: in 50 Gy bins from 50 to 600 Gy the response rate within 4
    standard errors of the mean of F(0.02 (D - 250)) over the bin's lesions."""
    dose, response = large.dose_gy, large.response
    edges = np.arange(50.0, 650.0, 50.0)
    which = np.digitize(dose, edges)
    for k in range(1, len(edges)):
        inside = which == k
        p = np.mean(special.expit(0.02 * (dose[inside] - 250.0)))
        se = math.sqrt(p * (1 - p) / inside.sum())
        assert abs(response[inside].mean() - p) < 4 * se


def test_synthetic_patient_effect_makes_lesions_of_a_patient_respond_together():
    """Catches the patient effect not drawn (sd 2 on the logit scale): with equal doses
    (no dose spread) the two lesions of a patient agree more often than independent ones,
    whose agreement at p = 1/2 is 1/2."""
    c = synthetic_cohort(20000, 2, seed=9, patient_sd_logit=2.0, patient_dose_sd_log=0.0,
                         lesion_dose_sd_log=0.0)
    r = c.response.reshape(-1, 2)
    assert np.mean(r[:, 0] == r[:, 1]) > 0.6


def test_synthetic_cohort_draws_in_the_documented_order():
    """Catches a change to what a seed draws (the documentation's examples and any published
    cohort are reproduced from their seed): the cohort written out here with numpy's
    Generator in the documented order (patient dose factors, lesion factors, patient
    effects only when their sd > 0, responses, liver doses, toxicities), for seed 4 with
    and without a patient effect."""
    for sd in (0.0, 1.0):
        c = synthetic_cohort(5, 3, seed=4, patient_sd_logit=sd)
        rng = np.random.default_rng(4)
        patient = np.repeat(np.arange(5), 3)
        factor = rng.lognormal(math.log(250.0), 0.5, 5)
        dose = factor[patient] * rng.lognormal(0.0, 0.3, 15)
        u = rng.normal(0.0, sd, 5) if sd > 0 else np.zeros(5)
        response = rng.random(15) < special.expit(0.02 * (dose - 250.0) + u[patient])
        liver = rng.lognormal(math.log(55.0), 0.35, 5)
        toxicity = rng.random(5) < special.expit(0.08 * (liver - 60.0))
        assert np.array_equal(c.patient, patient)
        assert c.dose_gy == pytest.approx(dose, rel=1e-15)
        assert np.array_equal(c.response, response.astype(int))
        assert c.liver_dose_gy == pytest.approx(liver, rel=1e-15)
        assert np.array_equal(c.toxicity, toxicity.astype(int))


def test_plateau_optimiser_settings(monkeypatch):
    """Catches the optimiser's settings changed: BFGS from the GLM's coefficients and
    p_max = expit(3) = 0.95, at most 500 iterations, nothing printed."""
    _, seen = _answered(monkeypatch, _Answer(0.5, 0.04, LL0))
    kwargs = seen["kwargs"]
    assert (kwargs["method"], kwargs["maxiter"], kwargs["disp"]) == ("bfgs", 500, False)
    assert list(kwargs["start_params"]) == [-5.0, 0.02, 3.0]


def test_plateau_model_has_its_constant_even_at_one_dose_level(monkeypatch):
    """Catches the intercept column left out when every lesion has the same dose (a trial at
    one dose level; statsmodels' add_constant skips a constant column unless told to add)."""
    _, seen = _answered(monkeypatch, _Answer(0.5, 0.04, LL0), dose=np.full(4, 100.0))
    assert seen["model"].exog.shape == (4, 2)
    assert seen["model"].exog[:, 0] == pytest.approx(np.ones(4))
    assert seen["model"].exog[:, 1] == pytest.approx(np.full(4, 100.0))


def test_plateau_likelihood_ratio_of_single_precision_doses(monkeypatch):
    """Catches float32 doses (dose maps are stored in single precision) giving the logistic
    curve's log-likelihood in single precision: the four doses 100.1 ... 400.7 Gy as
    float32, ll0 by hand in double precision from the same values, LR = 2 (llf - ll0) to
    1e-9."""
    dose32 = np.array([100.1, 200.3, 300.5, 400.7], np.float32)
    eta = [-5.0 + 0.02 * float(d) for d in dose32]
    ll0 = sum(math.log(special.expit(e)) if yy else math.log(special.expit(-e))
              for e, yy in zip(eta, Y4))
    plateau, _ = _answered(monkeypatch, _Answer(0.5, 0.04, ll0 + 1.5), dose=dose32)
    assert plateau.likelihood_ratio == pytest.approx(3.0, abs=1e-9)


def test_fit_passes_the_patients_to_the_plateau(monkeypatch, cohort):
    """Catches the plateau of a clustered fit given without its patients (an interval of
    p_max that ignores that lesions of a patient respond together)."""
    seen = {}

    def fit(model, **kwargs):
        seen.update(kwargs)
        return _Answer(0.5, 0.04, 0.0)
    monkeypatch.setattr(GenericLikelihoodModel, "fit", fit)
    fit_dose_response(cohort.dose_gy, cohort.response, cohort.patient)
    assert seen["cov_type"] == "cluster"
    assert np.array_equal(seen["cov_kwds"]["groups"], cohort.patient)


def test_single_precision_doses_fit_as_double(cohort):
    """Catches float32 doses (dose maps are stored in single precision) carried into the
    predicted probabilities in single precision: the Hosmer–Lemeshow statistic of the fit of
    float32 doses equals that of the same doses in double precision (1e-12)."""
    dose32 = cohort.dose_gy.astype(np.float32)
    single = fit_dose_response(dose32, cohort.response, cohort.patient, plateau=False)
    double = fit_dose_response(dose32.astype(np.float64), cohort.response, cohort.patient,
                               plateau=False)
    assert single.goodness.hosmer_lemeshow_chi2 == pytest.approx(
        double.goodness.hosmer_lemeshow_chi2, rel=1e-12)
    assert single.curve.params == pytest.approx(double.curve.params, rel=1e-12)
