"""Dose–response building blocks (physics.dose_response) at their edges: the critical value,
the links, a dose's interval and its record, the Hosmer–Lemeshow groups, the observed rates,
every refusal of a cohort and of a DVH word for word, and the EUD, each against a hand
calculation, a closed form with its source, or scipy."""

import math
import sys
import warnings

import numpy as np
import pytest
from scipy import stats

pytest.importorskip("statsmodels")

from tareplanner.physics import dose_response as dr  # noqa: E402
from tareplanner.physics.dose_response import (  # noqa: E402
    Curve, DoseInterval, DoseResponseError, check_cohort, dose_at_probability, eud_gy,
    hosmer_lemeshow, inverse_link, link_function, observed_rates)

Z95 = 1.959963984540054      # normal 97.5 % quantile (Abramowitz & Stegun 26.2: 1.95996)
T95_4DF = 2.7764451051977987  # Student's t, 4 df, 97.5 % (published tables: 2.776)


def expit(x):
    return 1 / (1 + math.exp(-x))


# --- critical value and links -------------------------------------------------------------

def test_critical_value_is_students_t_with_clusters_and_normal_without():
    """Catches the t quantile dropped for a cluster-robust fit (a normal one gives intervals
    too narrow with few patients): t(0.975, 4) = 2.776 and t(0.95, 9) = 1.833 from the
    published table; without degrees of freedom the normal 1.960."""
    assert dr.critical_value(0.95, 4) == pytest.approx(2.776, abs=5e-4)
    assert dr.critical_value(0.90, 9) == pytest.approx(1.833, abs=5e-4)
    assert dr.critical_value(0.95) == pytest.approx(1.960, abs=5e-4)
    assert dr.critical_value(0.95, None) == pytest.approx(Z95)


def test_an_unknown_link_is_refused_naming_it_and_the_allowed_ones():
    """Catches a link refusal that names neither the link given nor the links allowed, from
    the distribution lookup and from the GLM built for a fit."""
    message = "link: got 'cloglog'; allowed: logit, probit"
    with pytest.raises(ValueError) as err:
        inverse_link(0.0, "cloglog")
    assert str(err.value) == message
    with pytest.raises(ValueError) as err:
        link_function(0.5, "cloglog")
    assert str(err.value) == message
    dose = np.linspace(50, 500, 40)
    y = np.arange(40) % 2
    with pytest.raises(ValueError) as err:
        dr.fit_dose_response(dose, y, None, link="cloglog")
    assert str(err.value) == message


def test_links_by_hand():
    """Catches a swapped link: logit F(1) = 1/(1+e^-1), F^-1(0.8) = ln 4; probit
    Phi(1.96) = 0.975 (normal table)."""
    assert float(inverse_link(1.0, "logit")) == pytest.approx(expit(1.0))
    assert float(link_function(0.8, "logit")) == pytest.approx(math.log(4))
    assert float(inverse_link(1.96, "probit")) == pytest.approx(0.9750, abs=1e-4)


# --- a dose's interval ---------------------------------------------------------------------

COV = ((0.36, -0.0013), (-0.0013, 5.0e-6))


def _fieller_roots(q, b0, b1, cov, z):
    """Fieller's limits: roots of (q - b0 - b1 D)^2 - z^2 (V00 + 2 D V01 + D^2 V11)."""
    poly = np.polynomial.Polynomial([q - b0, -b1]) ** 2 - z ** 2 * np.polynomial.Polynomial(
        [cov[0][0], 2 * cov[0][1], cov[1][1]])
    return sorted(poly.roots().real)


def test_curve_band_with_few_patients_uses_students_t():
    """Catches the band of a cluster-robust curve built with the normal quantile instead of
    t with G - 1 degrees of freedom: at D = 300 Gy, eta = 1, se^2 = V00 + 2 D V01 + D^2 V11
    (hand), limits F(1 -+ 2.776 se) with t(0.975, 4) = 2.776."""
    p, low, high = Curve("logit", (-5.0, 0.02), COV, df=4).probability(300.0)
    se = math.sqrt(0.36 - 2 * 300 * 0.0013 + 300 ** 2 * 5e-6)
    assert float(p) == pytest.approx(expit(1.0))
    assert float(low) == pytest.approx(expit(1 - T95_4DF * se))
    assert float(high) == pytest.approx(expit(1 + T95_4DF * se))


def test_curve_band_of_integer_doses_does_not_overflow():
    """Catches doses kept in their integer type (DICOM dose grids are stored as integers):
    300 Gy as int16 squared overflows 16 bits (90,000 > 32,767); the band must equal the one
    at 300.0 Gy worked by hand."""
    p, low, high = Curve("logit", (-5.0, 0.02), COV).probability(np.array([300], np.int16))
    se = math.sqrt(0.36 - 2 * 300 * 0.0013 + 300 ** 2 * 5e-6)
    assert float(low[0]) == pytest.approx(expit(1 - Z95 * se))
    assert float(high[0]) == pytest.approx(expit(1 + Z95 * se))
    assert float(p[0]) == pytest.approx(expit(1.0))


def test_curve_dose_at_passes_coverage_and_degrees_of_freedom():
    """Catches a curve's dose of probability p computed at another probability, coverage or
    critical value: D80 = (ln 4 + 5)/0.02 Gy; the 90 % Fieller limits with t(0.95, 4) =
    2.132 (table) from the roots of the quadratic (numpy), the delta method's
    D -+ t sqrt(g C g'), g = (-1/b1, -D/b1)."""
    d = Curve("logit", (-5.0, 0.02), COV, df=4).dose_at(0.8, coverage=0.90)
    t = stats.t.ppf(0.95, 4)
    assert t == pytest.approx(2.132, abs=5e-4)
    dose = (math.log(4) + 5) / 0.02
    assert d.p == 0.8 and d.dose_gy == pytest.approx(dose)
    assert d.bounded
    assert (d.low_gy, d.high_gy) == pytest.approx(_fieller_roots(math.log(4), -5, 0.02, COV, t))
    g = np.array([-1 / 0.02, -dose / 0.02])
    se = math.sqrt(g @ np.array(COV) @ g)
    assert (d.delta_low_gy, d.delta_high_gy) == pytest.approx((dose - t * se, dose + t * se))


def test_dose_at_probability_uses_the_degrees_of_freedom_given():
    """Catches ``df`` ignored by the dose's interval: D50 = 250 Gy, its 95 % Fieller limits
    with t(0.975, 4) = 2.776."""
    d = dose_at_probability((-5.0, 0.02), COV, "logit", 0.5, df=4)
    assert (d.low_gy, d.high_gy) == pytest.approx(_fieller_roots(0.0, -5, 0.02, COV, T95_4DF))
    assert d.delta_high_gy - 250.0 == pytest.approx(
        T95_4DF * math.sqrt(np.array([-50, -12500]) @ np.array(COV) @ np.array([-50, -12500])))


def test_delta_interval_narrower_than_one_gy_is_kept():
    """Catches the delta method's standard error floored at 1 Gy instead of 0: with V00 =
    1e-6, V11 = 1e-12, V01 = 0: se^2 = 50^2 1e-6 + 12500^2 1e-12 = 0.00265625 (hand),
    se = 0.0515 Gy."""
    d = dose_at_probability((-5.0, 0.02), [[1e-6, 0.0], [0.0, 1e-12]], "logit", 0.5)
    se = math.sqrt(0.00265625)
    assert (d.delta_low_gy, d.delta_high_gy) == pytest.approx((250 - Z95 * se, 250 + Z95 * se))


def test_fieller_without_uncertainty_collapses_to_the_dose():
    """Catches the edge of Fieller's discriminant (= 0 is bounded): a curve given without
    covariance (a published relation) has a = b1^2 = 0.25, b = -2 (q - b0) b1 = -5, c =
    (q - b0)^2 = 25, b^2 - 4ac = 0 exactly: the interval is the point D50 = 5/0.5 = 10 Gy."""
    d = dose_at_probability((-5.0, 0.5), [[0.0, 0.0], [0.0, 0.0]], "logit", 0.5)
    assert d.bounded
    assert (d.low_gy, d.dose_gy, d.high_gy) == (10.0, 10.0, 10.0)
    assert (d.delta_low_gy, d.delta_high_gy) == (10.0, 10.0)


def test_fieller_at_a_slope_exactly_at_its_limit_is_unbounded():
    """Catches the edge of Fieller's leading coefficient: a = b1^2 - z^2 V11 = 0 exactly (the
    slope's z statistic equals the critical value) is unbounded, not a division by 0.
    b1 = 0.25, V11 = b1^2 / z^2 with z = 2 (coverage 2 Phi(2) - 1), exact in binary."""
    coverage = 2 * stats.norm.cdf(2.0) - 1
    z = dr.critical_value(coverage)
    v11 = 0.0625 / (z * z)
    assert 0.0625 - z * z * v11 == 0.0
    d = dose_at_probability((-1.0, 0.25), [[0.01, 0.0], [0.0, v11]], "logit", 0.5,
                            coverage=coverage)
    assert not d.bounded and d.low_gy is None and d.high_gy is None
    assert d.dose_gy == pytest.approx(4.0)


def test_dose_interval_record_by_hand():
    """Catches a renamed key or a wrong interval label in the record of a dose."""
    bounded = DoseInterval(0.5, 250.0, 200.0, 320.0, 190.0, 310.0, True)
    assert bounded.as_dict() == {"p": 0.5, "dose_gy": 250.0, "low_gy": 200.0, "high_gy": 320.0,
                                 "interval": "Fieller", "delta_low_gy": 190.0,
                                 "delta_high_gy": 310.0}
    unbounded = DoseInterval(0.8, 400.0, None, None, 100.0, 700.0, False)
    assert unbounded.as_dict()["interval"] == (
        "Fieller (unbounded: the slope does not differ from 0 at this level)")
    assert unbounded.as_dict()["low_gy"] is None and unbounded.as_dict()["high_gy"] is None


# --- Hosmer–Lemeshow -----------------------------------------------------------------------

def test_hosmer_lemeshow_four_groups_by_hand():
    """Catches groups counted wrongly (df = g - 2) or observations not ordered by p: eight
    observations given out of order, four groups of two. By hand (E = sum p, term
    (O - E)^2 / (E (1 - E/n))): (0.1, 0.2) O 1 E 0.3: 0.49/0.255; (0.3, 0.4) O 0 E 0.7:
    0.49/0.455; (0.6, 0.7) O 2 E 1.3: 0.49/0.455; (0.8, 0.9) O 1 E 1.7: 0.49/0.255; df 2,
    p = exp(-chi2/2) (the chi2 survival function with 2 df)."""
    p = [0.7, 0.1, 0.9, 0.4, 0.2, 0.8, 0.6, 0.3]
    y = [1, 0, 1, 0, 1, 0, 1, 0]
    chi2, df, pv = hosmer_lemeshow(y, p, groups=4)
    expected = 2 * 0.49 / 0.255 + 2 * 0.49 / 0.455
    assert chi2 == pytest.approx(expected)
    assert df == 2
    assert pv == pytest.approx(math.exp(-expected / 2))


def test_hosmer_lemeshow_groups_of_one():
    """Catches a group of one observation dropped: three groups of one; (1 - 0.2)^2/(0.2 0.8)
    + (0 - 0.5)^2/(0.5 0.5) + (1 - 0.9)^2/(0.9 0.1) = 4 + 1 + 1/9; df max(3 - 2, 1) = 1."""
    chi2, df, _ = hosmer_lemeshow([1, 0, 1], [0.2, 0.5, 0.9], groups=3)
    assert chi2 == pytest.approx(5 + 1 / 9)
    assert df == 1


def test_hosmer_lemeshow_skips_a_group_predicted_with_certainty():
    """Catches a group with E (1 - E/n) = 0 counted (0/0): predictions 0, 0 | 0.5, 0.5 with
    outcomes 0, 0 | 1, 1: only the second group counts, (2 - 1)^2/(1 x 0.5) = 2, df 1,
    p = erfc(1) (chi2 with 1 df: P(X > x) = erfc(sqrt(x/2)))."""
    chi2, df, pv = hosmer_lemeshow([0, 0, 1, 1], [0.0, 0.0, 0.5, 0.5], groups=2)
    assert chi2 == pytest.approx(2.0) and df == 1
    assert pv == pytest.approx(math.erfc(1.0))


def _hl_by_hand(y, p, groups):
    """The statistic written here: stable order by p (Python's sorted keeps the cohort's order
    among ties), groups of sizes n//g + 1 for the first n % g, then n//g."""
    n = len(y)
    order = sorted(range(n), key=lambda i: p[i])
    sizes = [n // groups + (1 if k < n % groups else 0) for k in range(groups)]
    chi2, start = 0.0, 0
    for size in sizes:
        idx = order[start:start + size]
        start += size
        o = sum(y[i] for i in idx)
        e = sum(p[i] for i in idx)
        chi2 += (o - e) ** 2 / (e * (1 - e / size))
    return chi2


def test_hosmer_lemeshow_ties_keep_the_cohorts_order():
    """Catches an unstable sort of tied predictions (the groups, and so the statistic, would
    depend on the sorting algorithm): 60 predictions rounded to 0.1, against the statistic
    computed here with Python's stable sort."""
    rng = np.random.default_rng(7)
    p = np.round(rng.uniform(0.05, 0.95, 60), 1)
    y = (rng.random(60) < p).astype(int)
    chi2, df, _ = hosmer_lemeshow(y, p, groups=10)
    assert chi2 == pytest.approx(_hl_by_hand(list(y), list(p), 10))
    assert df == 8


# --- observed rates ------------------------------------------------------------------------

def _wilson(k, n, z=Z95):
    """Wilson's score interval (Wilson, JASA 1927;22:209), written out."""
    phat = k / n
    centre = (phat + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_observed_rates_in_four_dose_quartiles_by_hand():
    """Catches wrong bins, counts, rates or intervals: eight lesions given out of order, four
    bins of two by dose (the default), each with its lowest, highest and median dose, events,
    rate and 95 % Wilson interval (formula written here)."""
    dose = [70, 10, 40, 80, 20, 60, 30, 50]
    y = [1, 0, 0, 1, 1, 1, 0, 0]
    bins = observed_rates(dose, y)
    assert len(bins) == 4
    expected = [(10, 20, 15, 1), (30, 40, 35, 0), (50, 60, 55, 1), (70, 80, 75, 2)]
    for b, (low, high, median, events) in zip(bins, expected):
        assert (b.dose_low_gy, b.dose_high_gy, b.dose_median_gy) == (low, high, median)
        assert (b.n, b.events, b.rate) == (2, events, events / 2)
        assert (b.low, b.high) == pytest.approx(_wilson(events, 2))


def test_observed_rates_with_fewer_lesions_than_bins():
    """Catches bins of one lesion dropped (or an empty bin kept): three lesions in four bins
    give three bins of one."""
    bins = observed_rates([5.0, 1.0, 3.0], [1, 0, 1])
    assert [(b.dose_low_gy, b.n, b.events) for b in bins] == [(1.0, 1, 0), (3.0, 1, 1),
                                                                (5.0, 1, 1)]
    assert (bins[0].low, bins[0].high) == pytest.approx(_wilson(0, 1))


def test_observed_rates_ties_keep_the_cohorts_order():
    """Catches an unstable sort of tied doses (the events of a bin would depend on the sorting
    algorithm): 40 lesions at five doses; each bin's events counted here in the cohort's
    order among equal doses (Python's stable sort)."""
    rng = np.random.default_rng(7)
    dose = np.repeat([100.0, 200.0, 300.0, 400.0, 500.0], 8)
    rng.shuffle(dose)
    y = rng.integers(0, 2, 40)
    order = sorted(range(40), key=lambda i: dose[i])
    bins = observed_rates(dose, y)
    for k, b in enumerate(bins):
        assert b.events == sum(int(y[i]) for i in order[10 * k:10 * k + 10])


# --- the cohort's refusals -----------------------------------------------------------------

def _interleaved(n=40):
    dose = np.linspace(10.0, 400.0, n)
    return dose, np.arange(n) % 2, np.arange(n) % 12


def _refusal(dose, y, cluster, **kwargs):
    with pytest.raises(DoseResponseError) as err:
        check_cohort(dose, y, cluster, what="lesion response", **kwargs)
    return str(err.value)


def test_doses_and_outcomes_of_different_number_are_refused():
    """Catches a length mismatch (or 2-D input) passed on to the fit."""
    dose, y, patient = _interleaved()
    assert _refusal(dose, y[:-1], patient) == (
        "lesion response: doses and outcomes differ in number ((40,) and (39,))")
    assert _refusal(dose.reshape(2, 20), y.reshape(2, 20), None) == (
        "lesion response: doses and outcomes differ in number ((2, 20) and (2, 20))")


def test_missing_and_non_finite_doses_are_counted():
    """Catches a missing dose (None) failing with a TypeError, or the count of non-finite
    doses wrong: one None, then two NaN and one infinity."""
    dose, y, patient = _interleaved()
    with_none = dose.tolist()
    with_none[5] = None
    assert _refusal(with_none, y, patient) == (
        "lesion response: 1 dose(s) are not finite numbers")
    bad = dose.copy()
    bad[[1, 2, 3]] = [np.nan, np.inf, np.nan]
    assert _refusal(bad, y, patient) == "lesion response: 3 dose(s) are not finite numbers"


def test_outcomes_other_than_0_and_1_are_refused_with_the_value():
    """Catches an outcome of 2 (a count, a grade) taken as an event, and a refusal that does
    not show the value."""
    dose, y, patient = _interleaved()
    y2 = y.copy()
    y2[7] = 2
    assert _refusal(dose, y2, patient) == "lesion response: outcomes must be 0 or 1; got 2"
    y3 = y.astype(float)
    y3[[3, 9]] = [0.5, np.nan]
    assert _refusal(dose, y3, patient) == (
        "lesion response: outcomes must be 0 or 1; got 0.5 and 1 other value(s)")


def test_one_outcome_only_is_refused_naming_which():
    """Catches the refusal of a cohort without both outcomes saying the wrong one (or sending
    all non-events to the too-few-events refusal)."""
    dose, _, patient = _interleaved()
    assert _refusal(dose, np.ones(40, int), patient) == (
        "lesion response: all 40 outcomes are events: a dose–response needs both outcomes")
    assert _refusal(dose, np.zeros(40, int), patient) == (
        "lesion response: all 40 outcomes are non-events: a dose–response needs both outcomes")


def test_a_single_event_is_enough_when_the_caller_asks_for_one():
    """Catches one event taken as 'all non-events': with min_events = 1 (a caller's choice),
    one event among 39 non-events, not separated, is accepted."""
    dose = np.linspace(10.0, 400.0, 40)
    y = np.zeros(40, int)
    y[20] = 1
    check_cohort(dose, y, None, what="t", min_events=1)


@pytest.mark.parametrize("non_events, ok", [(9, False), (10, True), (11, True)])
def test_fewest_non_events_edge_and_message(non_events, ok):
    """Catches an off-by-one at the 10-per-parameter rule on the non-event side (Peduzzi et
    al. 1996), and a refusal that does not give the counts, the minimum and its source."""
    n = 30 + non_events
    dose = np.linspace(10.0, 400.0, n)
    y = np.ones(n, int)
    y[np.linspace(0, n - 1, non_events).astype(int)] = 0
    if ok:
        check_cohort(dose, y, None, what="lesion response")
    else:
        assert _refusal(dose, y, None) == (
            "lesion response: 30 event(s) and 9 non-event(s); at least 10 of each are needed "
            "for a fit of two parameters (10 events per parameter, Peduzzi et al., J Clin "
            "Epidemiol 1996;49:1373)")


def test_too_few_patients_message_and_no_patient_check_without_patients():
    """Catches the patients' minimum applied without patient labels (one observation per
    patient), or not said: 9 patients refused with the count and the minimum; the same
    cohort without labels accepted; a minimum of 0 (the caller's) skips the check."""
    dose, y, _ = _interleaved()
    assert _refusal(dose, y, np.arange(40) % 9) == (
        "lesion response: 9 patient(s); at least 10 are needed for a cluster-robust "
        "covariance (patients are the independent units)")
    check_cohort(dose, y, None, what="t")
    check_cohort(dose, y, np.arange(40) % 9, what="t", min_clusters=0)
    check_cohort(dose, y, np.arange(40) % 9, what="t", min_clusters=None)


SEPARATED_UP = ("lesion response: the outcomes are separated by dose (every event at ≥ 212.3 "
                "Gy, every non-event on the other side): the maximum-likelihood slope is "
                "infinite and no interval can be given")
SEPARATED_DOWN = ("lesion response: the outcomes are separated by dose (every event at ≤ 187.7 "
                  "Gy, every non-event on the other side): the maximum-likelihood slope is "
                  "infinite and no interval can be given")


def _two_sides():
    """20 doses below 200 Gy (to 187.66), 20 above (from 212.34)."""
    return np.r_[np.linspace(10.0, 187.66, 20), np.linspace(212.34, 400.0, 20)]


@pytest.mark.parametrize("events_high, moved, touching, overlapping, refusal", [
    (True, 19, 212.34, 212.35, SEPARATED_UP),
    (False, 20, 187.66, 187.65, SEPARATED_DOWN),
])
def test_separation_at_its_edge(events_high, moved, touching, overlapping, refusal):
    """Catches separation missed, or said the wrong way round. Rising: every event at
    >= 212.34 Gy (shown to 4 digits) and every non-event below is refused; a non-event at
    exactly the lowest event's dose still leaves the slope infinite (quasi-complete
    separation) and is refused; one just above it (212.35 Gy) overlaps and is accepted.
    Falling: every event at <= 187.66 Gy is refused, at its edge (a non-event at exactly the
    highest event's dose) too, and just beyond (a non-event at 187.65 Gy) accepted."""
    dose = _two_sides()
    low, high = np.zeros(20, int), np.ones(20, int)
    y = np.r_[low, high] if events_high else np.r_[high, low]
    assert _refusal(dose, y, None) == refusal
    edge = dose.copy()
    edge[moved] = touching
    assert _refusal(edge, y, None) == refusal
    beyond = dose.copy()
    beyond[moved] = overlapping
    check_cohort(beyond, y, None, what="t")


# --- statsmodels and its fit ---------------------------------------------------------------

def test_missing_statsmodels_is_said_with_the_install_command(monkeypatch):
    """Catches a bare ImportError: without statsmodels the fit says which extra installs it
    (pyproject.toml's 'response' extra)."""
    monkeypatch.setitem(sys.modules, "statsmodels.api", None)
    dose, y, _ = _interleaved()
    with pytest.raises(ImportError) as err:
        dr.fit_dose_response(dose, y, None)
    assert str(err.value) == ("dose–response fits need statsmodels: pip install "
                              "'tareplanner[response]'")


def test_a_fit_that_does_not_converge_is_refused_saying_so():
    """Catches statsmodels' convergence warning let through (a fit reported as if it had
    converged): one Newton iteration from a start of 0 cannot converge; the refusal says so
    with statsmodels' reason."""
    dose, y, _ = _interleaved()
    with pytest.raises(DoseResponseError) as err:
        dr._fit(dr._glm(dose, y, "logit"), method="newton", maxiter=1, start_params=[0.0, 0.0])
    assert str(err.value).startswith("the fit did not converge (")
    assert "converge" in str(err.value)[len("the fit did not converge ("):]


def test_far_out_doses_fit_without_floating_point_errors_or_warnings():
    """Catches floating-point errors of far-out predictions reaching the caller: a lesion at
    100,000 Gy (a slope of 0.02/Gy puts its linear predictor near 2,000, where exp(-eta)
    underflows) under a caller that raises on every floating-point error
    (np.errstate(all='raise')) and turns every warning into an error; the fit runs."""
    rng = np.random.default_rng(3)
    dose = np.linspace(10.0, 400.0, 60)
    y = (rng.random(60) < 1 / (1 + np.exp(-0.02 * (dose - 200)))).astype(int)
    dose[0], y[0] = 0.0, 0
    dose[-1], y[-1] = 1e5, 1
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = dr.fit_dose_response(dose, y, np.arange(60) % 12)
    assert fit.n == 60 and fit.curve.params[1] > 0
    plain = dr.fit_dose_response(dose, y, np.arange(60) % 12)
    assert fit.plateau == plain.plateau
    assert "FloatingPointError" not in fit.plateau.reason


def test_the_glm_design_has_its_intercept_even_for_one_dose():
    """Catches the intercept column left out for a constant dose (statsmodels' add_constant
    skips a constant column unless told to add one)."""
    model = dr._glm(np.full(6, 100.0), [0, 1, 0, 1, 0, 1], "logit")
    assert model.exog.tolist() == [[1.0, 100.0]] * 6


def test_patient_labels_of_another_number_are_refused():
    """Catches patient labels that do not match the doses one to one (statsmodels' error
    deep in the covariance otherwise)."""
    dose, y, patient = _interleaved()
    assert _refusal(dose, y, patient[:-2]) == (
        "lesion response: patients and doses differ in number ((38,) and (40,))")
    with pytest.raises(DoseResponseError, match=r"patients and doses differ in number"):
        dr.fit_dose_response(dose, y, patient[:-2])


def test_single_precision_inputs_are_computed_in_double():
    """Catches single-precision inputs (dose maps are stored as float32) computed in single
    precision: Hosmer–Lemeshow of float32 predictions, a dose's Fieller limits from a
    float32 covariance and the observed bins' median doses of float32 doses, against the
    same values in double precision (the statistic written here, numpy's roots, the
    midpoint by hand)."""
    rng = np.random.default_rng(11)
    p32 = rng.uniform(0.05, 0.95, 60).astype(np.float32)
    y = (rng.random(60) < p32).astype(int)
    chi2, _, _ = hosmer_lemeshow(y, p32, groups=10)
    assert chi2 == pytest.approx(_hl_by_hand(list(y), [float(v) for v in p32], 10), rel=1e-12)
    cov32 = np.array(COV, np.float32)
    d = dose_at_probability((-5.0, 0.02), cov32, "logit", 0.5)
    assert (d.low_gy, d.high_gy) == pytest.approx(
        _fieller_roots(0.0, -5.0, 0.02, cov32.astype(float).tolist(), Z95), rel=1e-11)
    dose32 = rng.uniform(10, 500, 8).astype(np.float32)
    order = sorted(range(8), key=lambda i: dose32[i])
    bins = observed_rates(dose32, np.arange(8) % 2)
    for k, b in enumerate(bins):
        a, c = float(dose32[order[2 * k]]), float(dose32[order[2 * k + 1]])
        assert b.dose_median_gy == (a + c) / 2


# --- EUD -----------------------------------------------------------------------------------

def _eud(fractions, doses, alpha):
    """Niemierko's EUD (Med Phys 1997;24:103), written out: -ln(sum v_i e^(-alpha D_i))/alpha."""
    return -math.log(sum(v * math.exp(-alpha * d) for v, d in zip(fractions, doses))) / alpha


def test_eud_of_a_three_edge_dvh_by_hand():
    """Catches the last bin's volume taken from the wrong edge or bins at the wrong doses:
    V(0) = 100 %, V(10) = 60 %, V(20) = 20 %: 40 % at 5 Gy, 40 % at 15 Gy, 20 % at 20 Gy
    (the last edge keeps its own volume); alpha 0.1/Gy: 10.246 Gy."""
    expected = _eud([0.4, 0.4, 0.2], [5.0, 15.0, 20.0], 0.1)
    assert expected == pytest.approx(10.2463, abs=1e-4)
    assert eud_gy([0, 10, 20], [100, 60, 20], 0.1) == pytest.approx(expected)


def test_eud_of_a_dvh_that_starts_below_100_percent_is_normalised():
    """Catches the volumes not normalised to the DVH's own total: V(10) = 80 %, V(20) = 20 %
    (the first 20 % not given): 60 and 20 of 80, i.e. 0.75 at 15 Gy and 0.25 at 20 Gy."""
    assert eud_gy([10, 20], [80, 20], 0.1) == pytest.approx(_eud([0.75, 0.25], [15, 20], 0.1))


def test_eud_of_one_edge_and_of_a_small_alpha():
    """Catches a DVH of one edge refused (a uniform dose: EUD = that dose) and the EUD's limit
    for alpha -> 0, the mean dose (0.4 x 5 + 0.4 x 15 + 0.2 x 20 = 12 Gy)."""
    assert eud_gy([50.0], [100.0], 0.1) == pytest.approx(50.0)
    assert eud_gy([0, 10, 20], [100, 60, 20], 1e-9) == pytest.approx(12.0, abs=1e-5)


@pytest.mark.parametrize("edges, volume", [([], []), ([0, 10], [100]), ([[0, 10]], [[100, 50]]),
                                           ([0, 10, 20], [100, 50])])
def test_eud_refuses_a_malformed_dvh(edges, volume):
    """Catches an empty, mismatched or 2-D DVH passed on (a broadcast error or a wrong EUD)."""
    with pytest.raises(ValueError) as err:
        eud_gy(edges, volume, 0.1)
    assert str(err.value) == "a cumulative DVH: as many volumes as dose edges, at least one"


@pytest.mark.parametrize("alpha", [0.0, -0.1, float("nan"), float("inf")])
def test_eud_refuses_alpha_outside_its_range(alpha):
    """Catches alpha = 0 (division by 0), a negative, NaN or infinite alpha accepted; the
    refusal names the field, the value and the range (just above 0 is accepted, above)."""
    with pytest.raises(ValueError) as err:
        eud_gy([0, 10], [100, 50], alpha)
    assert str(err.value) == (f"alpha_per_gy: got {alpha!r}; allowed: a finite value > 0 "
                              "per Gy")


@pytest.mark.parametrize("edges, volume", [([0, np.nan, 20], [100, 60, 20]),
                                           ([0, 10, 20], [100, np.inf, 20]),
                                           ([0, 10, 20], [100, None, 20]),
                                           ([0, None, 20], [100, 60, 20])])
def test_eud_refuses_a_non_finite_or_missing_value(edges, volume):
    """Catches a NaN, infinite or missing (None) edge or volume giving a NaN EUD or a
    TypeError."""
    with pytest.raises(ValueError) as err:
        eud_gy(edges, volume, 0.1)
    assert str(err.value) == "the DVH holds a value that is not a finite number"


def test_eud_refuses_a_dvh_without_volume():
    """Catches a DVH of zero volume going on to an empty array (total = 0 is the edge)."""
    with pytest.raises(ValueError) as err:
        eud_gy([0, 10, 20], [0, 0, 0], 0.1)
    assert str(err.value) == "the DVH holds no volume"
