"""Absorbed dose–response: binary regression of an outcome (lesion response, liver toxicity)
against a dose metric, the doses of given response probabilities with their intervals, the
95 % band, goodness of fit, a threshold/plateau analysis, and the probability at a planned
dose. Pure: numpy arrays in, frozen dataclasses out; the fits are statsmodels'.

Model: P(y = 1 | D) = F(b0 + b1·D), F the logistic function (logit link) or the standard
normal distribution function (probit link). With the probit link and the dose in Gy this is
the Lyman model of normal-tissue complication (Lyman, Radiat Res 1985;104:S13; Burman et al.,
Int J Radiat Oncol Biol Phys 1991;21:123) for a uniform or mean dose: NTCP = Φ((D − TD50) /
(m·TD50)), so TD50 = −b0/b1 and m = −1/b0.

Lesions of one patient are not independent (same activity, same biology): the covariance of
(b0, b1) is cluster-robust with the patient as cluster (statsmodels GLM,
``cov_type='cluster'``; Liang & Zeger, Biometrika 1986;73:13). With a random patient effect on
the linear predictor the population-averaged curve that the GLM estimates is flatter than the
patient-level one, but both give 50 % at the same dose (the effect is symmetric about 0), so
D50 keeps its meaning.

The dose D_p of response probability p is (F⁻¹(p) − b0)/b1, a ratio of estimates: its interval
is Fieller's (Fieller, J R Stat Soc B 1954;16:175), the set of doses D where
(F⁻¹(p) − b0 − b1·D)² ≤ z²·Var(b0 + b1·D); it is bounded only when the slope differs from 0 at
that level, and is then not symmetric about D_p. The delta-method interval is recorded beside it.

Goodness of fit: the Hosmer–Lemeshow statistic over groups of predicted probability
(Hosmer & Lemeshow, Applied Logistic Regression, 2nd ed., Wiley 2000, §5.2.2), χ² with g − 2
degrees of freedom; deviance; the area under the ROC curve (Mann–Whitney).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

LINKS = ("logit", "probit")
#: two-sided coverage of every interval and band
COVERAGE = 0.95
#: fewest events (and non-events) of a fitted outcome: 10 events per estimated parameter
#: beyond the intercept (Peduzzi et al., J Clin Epidemiol 1996;49:1373)
MIN_EVENTS = 10
#: fewest patients (clusters) for a cluster-robust covariance (with fewer, the sandwich
#: estimator is biased low: Cameron & Miller, J Hum Resour 2015;50:317, "few clusters")
MIN_CLUSTERS = 10
#: groups of the Hosmer–Lemeshow test
HL_GROUPS = 10
#: probabilities whose doses are reported (threshold 10 %, 50 %, 80 %, plateau onset 90 %)
REPORTED_P = (0.1, 0.5, 0.8, 0.9)
#: a plateau estimate above logistic(7) = 0.9991 is taken as the bound 1 (no plateau)
PLATEAU_AT_ONE_LOGIT = 7.0


def critical_value(coverage: float = COVERAGE, df: int | None = None) -> float:
    """The two-sided critical value: Student's t with ``df`` degrees of freedom (G − 1 for a
    cluster-robust covariance of G clusters, Cameron & Miller 2015, §VI), else normal."""
    q = 0.5 + coverage / 2
    return float(stats.t.ppf(q, df) if df else stats.norm.ppf(q))


class DoseResponseError(ValueError):
    """A cohort that cannot be fitted; the message says why (too small, one outcome only,
    separated, ...)."""


def _link_distribution(link: str):
    """The distribution whose cdf is the inverse link: logistic (logit) or normal (probit)."""
    if link == "logit":
        return stats.logistic
    if link == "probit":
        return stats.norm
    raise ValueError(f"link: got {link!r}; allowed: {', '.join(LINKS)}")


def inverse_link(eta, link: str):
    """F(η): the probability for a linear predictor η."""
    return _link_distribution(link).cdf(np.asarray(eta, dtype=np.float64))


def link_function(p, link: str):
    """F⁻¹(p): the linear predictor of probability p."""
    return _link_distribution(link).ppf(np.asarray(p, dtype=np.float64))


@dataclass(frozen=True)
class DoseInterval:
    """The dose of response probability ``p`` (Gy) with its Fieller interval (None where
    unbounded) and the delta-method interval."""
    p: float
    dose_gy: float
    low_gy: float | None
    high_gy: float | None
    delta_low_gy: float
    delta_high_gy: float
    bounded: bool

    def as_dict(self) -> dict:
        return {"p": self.p, "dose_gy": self.dose_gy, "low_gy": self.low_gy,
                "high_gy": self.high_gy, "interval": "Fieller" if self.bounded else
                "Fieller (unbounded: the slope does not differ from 0 at this level)",
                "delta_low_gy": self.delta_low_gy, "delta_high_gy": self.delta_high_gy}


@dataclass(frozen=True)
class Curve:
    """A fitted (or published) curve: the link, the coefficients (b0, b1 per Gy) and their
    covariance."""
    link: str
    params: tuple[float, float]
    covariance: tuple[tuple[float, float], tuple[float, float]]
    df: int | None = None    # degrees of freedom of the critical value (None: normal)

    def probability(self, dose_gy, coverage: float = COVERAGE):
        """(P, low, high) at ``dose_gy`` (array or number): the interval of the linear
        predictor, b0 + b1·D ± z·se, mapped through F."""
        d = np.asarray(dose_gy, dtype=np.float64)
        b0, b1 = self.params
        c = np.asarray(self.covariance)
        eta = b0 + b1 * d
        se = np.sqrt(np.maximum(c[0, 0] + 2 * d * c[0, 1] + d * d * c[1, 1], 0.0))
        z = critical_value(coverage, self.df)
        return (inverse_link(eta, self.link), inverse_link(eta - z * se, self.link),
                inverse_link(eta + z * se, self.link))

    def dose_at(self, p: float, coverage: float = COVERAGE) -> DoseInterval:
        return dose_at_probability(self.params, np.asarray(self.covariance), self.link, p,
                                   coverage, self.df)


def dose_at_probability(params, cov, link: str, p: float, coverage: float = COVERAGE,
                        df: int | None = None) -> DoseInterval:
    """D_p = (F⁻¹(p) − b0)/b1 with Fieller's and the delta method's intervals (critical
    value of t with ``df`` degrees of freedom, or normal)."""
    b0, b1 = float(params[0]), float(params[1])
    cov = np.asarray(cov, dtype=np.float64)
    q = float(link_function(p, link))
    z = critical_value(coverage, df)
    dose = (q - b0) / b1
    # delta method: gradient of (q - b0)/b1 with respect to (b0, b1)
    g = np.array([-1.0 / b1, -dose / b1])
    se = math.sqrt(max(float(g @ cov @ g), 0.0))
    # Fieller: (q - b0 - b1 D)^2 - z^2 (V00 + 2 D V01 + D^2 V11) <= 0, a quadratic in D
    v00, v01, v11 = cov[0, 0], cov[0, 1], cov[1, 1]
    a = b1 * b1 - z * z * v11
    b = -2.0 * ((q - b0) * b1 + z * z * v01)
    c = (q - b0) ** 2 - z * z * v00
    disc = b * b - 4 * a * c
    if a > 0 and disc >= 0:
        roots = sorted(((-b - math.sqrt(disc)) / (2 * a), (-b + math.sqrt(disc)) / (2 * a)))
        low, high, bounded = roots[0], roots[1], True
    else:
        low, high, bounded = None, None, False
    return DoseInterval(p=p, dose_gy=dose, low_gy=low, high_gy=high,
                        delta_low_gy=dose - z * se, delta_high_gy=dose + z * se,
                        bounded=bounded)


@dataclass(frozen=True)
class GoodnessOfFit:
    hosmer_lemeshow_chi2: float
    hosmer_lemeshow_df: int
    hosmer_lemeshow_p: float
    deviance: float
    deviance_df: int
    pearson_chi2: float
    auc: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def hosmer_lemeshow(y, p, groups: int = HL_GROUPS) -> tuple[float, int, float]:
    """(χ², degrees of freedom g − 2, p-value): observations ordered by predicted probability
    and cut into ``groups`` groups of (nearly) equal size; Σ (O − E)² / (E (1 − E/n))."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    chi2 = 0.0
    used = 0
    for chunk in np.array_split(order, groups):
        if chunk.size == 0:
            continue
        n = chunk.size
        observed = y[chunk].sum()
        expected = p[chunk].sum()
        denominator = expected * (1 - expected / n)
        if denominator > 0:
            chi2 += (observed - expected) ** 2 / denominator
            used += 1
    df = max(used - 2, 1)
    return float(chi2), df, float(stats.chi2.sf(chi2, df))


def auc(y, score) -> float:
    """Area under the ROC curve: the Mann–Whitney probability that a random event has a higher
    score than a random non-event (ties count one half)."""
    y = np.asarray(y, dtype=bool)
    ranks = stats.rankdata(np.asarray(score, dtype=np.float64))
    n1, n0 = int(y.sum()), int((~y).sum())
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


@dataclass(frozen=True)
class Plateau:
    """The plateau model P = p_max·F(b0 + b1·D): the highest response probability reached at
    high dose, its interval, and the likelihood-ratio test of p_max < 1 against the curve
    that tends to 1 (on the boundary: p = ½·P(χ²₁ > LR), Self & Liang, JASA 1987;82:605)."""
    estimated: bool
    p_max: float | None = None
    p_max_low: float | None = None
    p_max_high: float | None = None
    likelihood_ratio: float | None = None
    p_value: float | None = None
    reason: str = ""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ObservedBin:
    dose_low_gy: float
    dose_high_gy: float
    dose_median_gy: float
    n: int
    events: int
    rate: float
    low: float
    high: float


@dataclass(frozen=True)
class DoseResponseFit:
    """A fitted dose–response of one outcome."""
    curve: Curve
    naive_covariance: tuple[tuple[float, float], tuple[float, float]]
    n: int
    events: int
    clusters: int
    doses: tuple[DoseInterval, ...]
    naive_d50: DoseInterval
    goodness: GoodnessOfFit
    slope_p_value: float
    band_dose_gy: tuple[float, ...]
    band_p: tuple[float, ...]
    band_low: tuple[float, ...]
    band_high: tuple[float, ...]
    observed: tuple[ObservedBin, ...]
    plateau: Plateau
    covariance_kind: str
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def dose(self, p: float) -> DoseInterval:
        for d in self.doses:
            if abs(d.p - p) < 1e-12:
                return d
        return self.curve.dose_at(p)


def check_cohort(dose, outcome, cluster, *, what: str, min_events: int = MIN_EVENTS,
                 min_clusters: int | None = MIN_CLUSTERS) -> None:
    """Refuse a cohort that cannot give a trustworthy fit, saying why: non-finite doses, too
    few events or non-events, too few patients, outcomes separated by dose."""
    dose = np.asarray(dose, dtype=np.float64)
    y = np.asarray(outcome)
    if dose.shape != y.shape or dose.ndim != 1:
        raise DoseResponseError(f"{what}: doses and outcomes differ in number "
                                f"({dose.shape} and {y.shape})")
    if cluster is not None and np.shape(cluster) != dose.shape:
        raise DoseResponseError(f"{what}: patients and doses differ in number "
                                f"({np.shape(cluster)} and {dose.shape})")
    if not np.all(np.isfinite(dose)):
        raise DoseResponseError(f"{what}: {int((~np.isfinite(dose)).sum())} dose(s) are not "
                                "finite numbers")
    events = int(np.sum(y == 1))
    non_events = int(np.sum(y == 0))
    if events + non_events != y.size:
        other = y[(y != 0) & (y != 1)].tolist()
        more = f" and {len(other) - 1} other value(s)" if len(other) > 1 else ""
        raise DoseResponseError(f"{what}: outcomes must be 0 or 1; got {other[0]!r}{more}")
    if events == 0 or non_events == 0:
        raise DoseResponseError(
            f"{what}: all {y.size} outcomes are {'events' if non_events == 0 else 'non-events'}"
            ": a dose–response needs both outcomes")
    if min(events, non_events) < min_events:
        raise DoseResponseError(
            f"{what}: {events} event(s) and {non_events} non-event(s); at least {min_events} of "
            "each are needed for a fit of two parameters (10 events per parameter, Peduzzi et "
            "al., J Clin Epidemiol 1996;49:1373)")
    if cluster is not None and min_clusters:
        k = len(np.unique(np.asarray(cluster)))
        if k < min_clusters:
            raise DoseResponseError(
                f"{what}: {k} patient(s); at least {min_clusters} are needed for a "
                "cluster-robust covariance (patients are the independent units)")
    lowest_event, highest_non = dose[y == 1].min(), dose[y == 0].max()
    highest_event, lowest_non = dose[y == 1].max(), dose[y == 0].min()
    if highest_non <= lowest_event or highest_event <= lowest_non:
        raise DoseResponseError(
            f"{what}: the outcomes are separated by dose (every event at "
            f"{'≥' if highest_non <= lowest_event else '≤'} "
            f"{lowest_event if highest_non <= lowest_event else highest_event:.4g} Gy, every "
            "non-event on the other side): the maximum-likelihood slope is infinite and no "
            "interval can be given")


def _statsmodels():
    try:
        import statsmodels.api as sm
    except ImportError:
        raise ImportError("dose–response fits need statsmodels: pip install "
                          "'tareplanner[response]'") from None
    return sm


def _glm(dose, y, link: str):
    sm = _statsmodels()
    links = {"logit": sm.families.links.Logit, "probit": sm.families.links.Probit}
    if link not in links:
        raise ValueError(f"link: got {link!r}; allowed: {', '.join(LINKS)}")
    x = sm.add_constant(np.asarray(dose, dtype=np.float64), has_constant="add")
    return sm.GLM(np.asarray(y, dtype=np.float64), x,
                  family=sm.families.Binomial(link=links[link]()))


def _fit(model, **kwargs):
    from statsmodels.tools.sm_exceptions import ConvergenceWarning
    # np.errstate: far-out predictions overflow (statsmodels' own link functions)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("error", ConvergenceWarning)
        try:
            return model.fit(**kwargs)
        except (ConvergenceWarning, np.linalg.LinAlgError) as exc:
            raise DoseResponseError(f"the fit did not converge ({exc})") from None


def observed_rates(dose, y, bins: int = 4) -> tuple[ObservedBin, ...]:
    """Observed event rates in dose quantile bins with Wilson score intervals."""
    from statsmodels.stats.proportion import proportion_confint
    dose = np.asarray(dose, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    order = np.argsort(dose, kind="stable")
    out = []
    for chunk in np.array_split(order, bins):
        if chunk.size == 0:
            continue
        events = int(y[chunk].sum())
        low, high = proportion_confint(events, chunk.size, alpha=1 - COVERAGE, method="wilson")
        out.append(ObservedBin(float(dose[chunk].min()), float(dose[chunk].max()),
                               float(np.median(dose[chunk])), int(chunk.size), events,
                               events / chunk.size, float(low), float(high)))
    return tuple(out)


def plateau_fit(dose, y, cluster, link: str, start) -> Plateau:
    """The plateau model P = p_max·F(b0 + b1·D), by maximum likelihood (statsmodels
    GenericLikelihoodModel), p_max on the logit scale; cluster-robust when clusters are
    given. Not estimated when the optimiser fails."""
    sm = _statsmodels()
    from statsmodels.base.model import GenericLikelihoodModel

    dose = np.asarray(dose, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)

    class _PlateauModel(GenericLikelihoodModel):
        def loglikeobs(self, params):
            b0, b1, g = params
            p = inverse_link(b0 + b1 * self.exog[:, 1], link) * stats.logistic.cdf(g)
            p = np.clip(p, 1e-12, 1 - 1e-12)
            return self.endog * np.log(p) + (1 - self.endog) * np.log1p(-p)

    x = sm.add_constant(dose, has_constant="add")
    model = _PlateauModel(y, x, extra_params_names=["logit_p_max"])
    kwargs = {"cov_type": "cluster", "cov_kwds": {"groups": cluster}} if cluster is not None \
        else {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = model.fit(start_params=np.array([start[0], start[1], 3.0]),
                               method="bfgs", maxiter=500, disp=False, **kwargs)
    except Exception as exc:  # the optimiser's failures are many; the plateau is optional
        return Plateau(False, reason=f"not estimated ({type(exc).__name__})")
    g = float(result.params[2])
    if not np.isfinite(g) or not result.mle_retvals["converged"]:
        return Plateau(False, reason="not estimated (the optimiser did not converge)")
    z = stats.norm.ppf(0.5 + COVERAGE / 2)
    p0 = inverse_link(start[0] + start[1] * dose, link)
    p0 = np.clip(p0, 1e-12, 1 - 1e-12)
    ll0 = float(np.sum(y * np.log(p0) + (1 - y) * np.log1p(-p0)))
    lr = max(2 * (float(result.llf) - ll0), 0.0)
    if g > PLATEAU_AT_ONE_LOGIT:
        # on the bound the likelihood is flat in p_max: its covariance may not exist, and
        # no interval is given
        return Plateau(True, p_max=1.0, likelihood_ratio=lr, p_value=float(
            0.5 * stats.chi2.sf(lr, 1)), reason="no plateau below 1: the estimate of p_max "
            "lies on its bound (the response probability tends to 1 at high dose)")
    try:
        se = float(np.sqrt(max(result.cov_params()[2, 2], 0.0)))
    except ValueError:    # statsmodels: no covariance where the Hessian cannot be inverted
        se = math.nan
    if not np.isfinite(se):
        return Plateau(False, reason="not estimated (the covariance of p_max could not be "
                                     "computed)")
    return Plateau(True, p_max=float(stats.logistic.cdf(g)),
                   p_max_low=float(stats.logistic.cdf(g - z * se)),
                   p_max_high=float(stats.logistic.cdf(g + z * se)),
                   likelihood_ratio=lr, p_value=float(0.5 * stats.chi2.sf(lr, 1)))


def fit_dose_response(dose, outcome, cluster=None, *, link: str = "logit",
                      band_points: int = 101, what: str = "outcome",
                      plateau: bool = True, min_events: int = MIN_EVENTS,
                      min_clusters: int | None = MIN_CLUSTERS) -> DoseResponseFit:
    """Fit P(outcome = 1) = F(b0 + b1·dose_gy) (statsmodels GLM, binomial family).

    ``cluster``: one label per observation (the patient); the covariance is then
    cluster-robust (``cov_type='cluster'``), otherwise the sandwich (HC1) one, which stays
    valid when the link is not the true one (White, Econometrica 1982;50:1). The model-based
    (naive) covariance is kept beside it, to show what ignoring the clusters would claim."""
    dose = np.asarray(dose, dtype=np.float64)
    y = np.asarray(outcome, dtype=np.float64)
    check_cohort(dose, y, cluster, what=what, min_events=min_events,
                 min_clusters=min_clusters if cluster is not None else None)
    model = _glm(dose, y, link)
    naive = _fit(model)
    if cluster is not None:
        groups = np.unique(np.asarray(cluster), return_inverse=True)[1]
        result = _fit(model, cov_type="cluster", cov_kwds={"groups": groups})
        kind = "cluster-robust (patient as cluster; statsmodels GLM cov_type='cluster')"
        clusters = int(groups.max() + 1)
    else:
        result = _fit(model, cov_type="HC1")
        kind = ("heteroskedasticity-robust (HC1; one observation per patient; statsmodels GLM "
                "cov_type='HC1')")
        clusters = len(y)
    params = tuple(float(v) for v in result.params)
    cov = np.asarray(result.cov_params(), dtype=np.float64)
    if cluster is None:
        # statsmodels' 'HC1' of a GLM is White's HC0 (no small-sample factor): HC1 is HC0
        # times n/(n - k), k = 2 parameters (MacKinnon & White, J Econom 1985;29:305)
        cov = cov * (len(y) / (len(y) - 2))
    df = clusters - 1 if cluster is not None else None
    curve = Curve(link, params, (tuple(cov[0]), tuple(cov[1])), df)
    naive_cov = np.asarray(naive.cov_params(), dtype=np.float64)
    notes = []
    z_slope = params[1] / math.sqrt(cov[1, 1]) if cov[1, 1] > 0 else float("inf")
    slope_p = float(2 * (stats.t.sf(abs(z_slope), df) if df else stats.norm.sf(abs(z_slope))))
    if params[1] <= 0:
        notes.append("the fitted probability does not rise with dose (slope "
                     f"{params[1]:.3g} per Gy): the doses of given probabilities are "
                     "not meaningful")
    elif slope_p >= 1 - COVERAGE:
        notes.append(f"the slope does not differ from 0 at the {COVERAGE:.0%} level "
                     f"(p = {slope_p:.2g}): intervals of the doses are unbounded")
    predicted = inverse_link(params[0] + params[1] * dose, link)   # scipy's: no overflow
    hl = hosmer_lemeshow(y, predicted)
    if hl[2] < 0.05:
        notes.append(f"Hosmer–Lemeshow p = {hl[2]:.2g}: the curve does not describe the "
                     "observed rates well")
    with np.errstate(all="ignore"):     # statsmodels' own predictions overflow far out
        deviance, pearson = float(result.deviance), float(result.pearson_chi2)
    gof = GoodnessOfFit(hosmer_lemeshow_chi2=hl[0], hosmer_lemeshow_df=hl[1],
                        hosmer_lemeshow_p=hl[2], deviance=deviance,
                        deviance_df=int(result.df_resid), pearson_chi2=pearson,
                        auc=auc(y, dose))
    grid = np.linspace(0.0, float(dose.max()) * 1.1, band_points)
    p, low, high = curve.probability(grid)
    doses = tuple(dose_at_probability(params, cov, link, q, df=df) for q in REPORTED_P)
    return DoseResponseFit(
        curve=curve, naive_covariance=(tuple(naive_cov[0]), tuple(naive_cov[1])),
        n=int(y.size), events=int(y.sum()), clusters=clusters, doses=doses,
        naive_d50=dose_at_probability(params, naive_cov, link, 0.5), goodness=gof,
        slope_p_value=slope_p, band_dose_gy=tuple(grid.tolist()), band_p=tuple(p.tolist()),
        band_low=tuple(low.tolist()), band_high=tuple(high.tolist()),
        observed=observed_rates(dose, y),
        plateau=(plateau_fit(dose, y, cluster, link, params) if plateau else
                 Plateau(False, reason="not requested")),
        covariance_kind=kind, warnings=tuple(notes))


def eud_gy(edges_gy, volume_percent, alpha_per_gy: float) -> float:
    """Equivalent uniform dose of a tumour of radiosensitivity α (Niemierko, Med Phys
    1997;24:103): EUD = −ln(Σ v_i exp(−α D_i)) / α, from a cumulative DVH (% of the volume
    receiving at least each edge): bin i holds v_i = V(e_i) − V(e_i+1) at the dose of its centre, the last
    edge its remaining volume at that edge."""
    edges = np.asarray(edges_gy, dtype=np.float64)
    cumulative = np.asarray(volume_percent, dtype=np.float64) / 100.0
    if edges.ndim != 1 or edges.shape != cumulative.shape or edges.size == 0:
        raise ValueError("a cumulative DVH: as many volumes as dose edges, at least one")
    if not (math.isfinite(alpha_per_gy) and alpha_per_gy > 0):
        raise ValueError(f"alpha_per_gy: got {alpha_per_gy!r}; allowed: a finite value > 0 "
                         "per Gy")
    if not (np.all(np.isfinite(edges)) and np.all(np.isfinite(cumulative))):
        raise ValueError("the DVH holds a value that is not a finite number")
    fractions = np.append(cumulative[:-1] - cumulative[1:], cumulative[-1])
    doses = np.append((edges[:-1] + edges[1:]) / 2, edges[-1])
    total = fractions.sum()
    if total <= 0:
        raise ValueError("the DVH holds no volume")
    fractions = np.clip(fractions, 0.0, None)
    keep = fractions > 0
    fractions, doses = fractions[keep] / fractions[keep].sum(), doses[keep]
    # log-sum-exp about the lowest dose: exp(-alpha D) underflows at high dose
    low = doses.min()
    return float(low - np.log(np.sum(fractions * np.exp(-alpha_per_gy * (doses - low))))
                 / alpha_per_gy)


def lyman_parameters(params) -> tuple[float, float]:
    """(TD50 Gy, m) of a probit fit b0 + b1·D = (D − TD50)/(m·TD50)."""
    b0, b1 = float(params[0]), float(params[1])
    return -b0 / b1, -1.0 / b0


@dataclass(frozen=True)
class SyntheticCohort:
    """Lesions and outcomes drawn from a stated true dose–response (see
    :func:`synthetic_cohort`)."""
    patient: np.ndarray      # patient index of each lesion
    dose_gy: np.ndarray      # lesion mean dose
    response: np.ndarray     # 0/1
    liver_dose_gy: np.ndarray    # per patient
    toxicity: np.ndarray     # per patient, 0/1
    truth: dict


def synthetic_cohort(patients: int, lesions_per_patient: int, *, seed: int = 0,
                     d50_gy: float = 250.0, slope_per_gy: float = 0.02,
                     patient_sd_logit: float = 0.0, dose_median_gy: float = 250.0,
                     patient_dose_sd_log: float = 0.5, lesion_dose_sd_log: float = 0.3,
                     td50_gy: float = 60.0, ntcp_slope_per_gy: float = 0.08,
                     liver_dose_median_gy: float = 55.0) -> SyntheticCohort:
    """A cohort with a known truth. Lesion doses are log-normal: a patient factor (median
    ``dose_median_gy``, log-sd ``patient_dose_sd_log``: lesions of a patient share the
    activity) times a lesion factor (log-sd ``lesion_dose_sd_log``). Response is Bernoulli
    with logit P = slope·(D − D50) + u, u ~ N(0, ``patient_sd_logit``²) per patient (a random
    patient effect: the lesions of a patient respond together). Toxicity per patient:
    logit NTCP = slope·(D_liver − TD50), liver doses log-normal (log-sd 0.35)."""
    rng = np.random.default_rng(seed)
    patient = np.repeat(np.arange(patients), lesions_per_patient)
    patient_factor = rng.lognormal(np.log(dose_median_gy), patient_dose_sd_log, patients)
    dose = patient_factor[patient] * rng.lognormal(0.0, lesion_dose_sd_log, patient.size)
    u = rng.normal(0.0, patient_sd_logit, patients) if patient_sd_logit > 0 else \
        np.zeros(patients)
    eta = slope_per_gy * (dose - d50_gy) + u[patient]
    response = (rng.random(patient.size) < stats.logistic.cdf(eta)).astype(int)
    liver = rng.lognormal(np.log(liver_dose_median_gy), 0.35, patients)
    toxicity = (rng.random(patients) < stats.logistic.cdf(
        ntcp_slope_per_gy * (liver - td50_gy))).astype(int)
    truth = {"model": "logit", "d50_gy": d50_gy, "slope_per_gy": slope_per_gy,
             "patient_sd_logit": patient_sd_logit, "td50_gy": td50_gy,
             "ntcp_slope_per_gy": ntcp_slope_per_gy, "seed": seed,
             "patients": patients, "lesions_per_patient": lesions_per_patient}
    return SyntheticCohort(patient, dose, response, liver, toxicity, truth)
