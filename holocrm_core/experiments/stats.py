"""The estimators behind an experiment report, each a plain function over per-unit arrays.

Written against scipy only (tea-tasting 1.x was considered: it needs narwhals/ibis frames and gives no
sequential test; gbstats pins numpy < 2). Every estimator is checked in the tests against an independent
computation (scipy's Welch test, OLS for CUPED, simulation for the delta method and the confidence
sequence). Conventions: ``control`` and ``treatment`` are 1-D float arrays of one value per unit; effects
are treatment minus control (absolute) with the relative lift beside it.

- Welch's t-test (unequal variances) for means; the delta method for ratio metrics (sum num / sum den
  per arm, e.g. won value per deal).
- Bayesian: a flat-prior normal posterior of the difference (GrowthBook's default engine works the same
  way on large samples): chance to win and expected loss, in the metric's units.
- CUPED (Deng et al. 2013): y - theta (x - mean x) with theta = cov(y, x) / var(x) pooled over the arms;
  the variance reduction is reported.
- Sequential: the mixture sequential probability ratio test (Johari et al. 2017, the one behind
  Optimizely's always-valid p-values; Eppo's sequential intervals are of the same family): an always-valid
  p-value and confidence sequence that stay valid under continuous peeking.
- Sample-ratio mismatch: Pearson chi-squared of the units per variant against the configured weights;
  p < 0.001 blocks the verdict (GrowthBook's threshold).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

SRM_ALPHA = 0.001


@dataclass(frozen=True)
class Effect:
    """One comparison of treatment against control on one metric."""

    control_mean: float
    treatment_mean: float
    diff: float  # treatment - control
    lift: float | None  # diff / control_mean (None when the control mean is 0)
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    n_control: int
    n_treatment: int

    def as_dict(self) -> dict:
        return asdict(self)


def _lift(diff: float, base: float) -> float | None:
    return diff / base if base else None


def welch(control: np.ndarray, treatment: np.ndarray, alpha: float = 0.05) -> Effect:
    """Difference of means with Welch's unequal-variance t-test and its (1 - alpha) interval."""
    c, t = np.asarray(control, float), np.asarray(treatment, float)
    n0, n1 = len(c), len(t)
    if n0 < 2 or n1 < 2:
        raise ValueError(f"each arm needs at least 2 units (control {n0}, treatment {n1})")
    m0, m1 = float(c.mean()), float(t.mean())
    v0, v1 = float(c.var(ddof=1)) / n0, float(t.var(ddof=1)) / n1
    se = math.sqrt(v0 + v1)
    diff = m1 - m0
    if se == 0.0:
        p = 1.0 if diff == 0 else 0.0
        return Effect(m0, m1, diff, _lift(diff, m0), 0.0, diff, diff, p, n0, n1)
    df = (v0 + v1) ** 2 / ((v0**2 / (n0 - 1)) + (v1**2 / (n1 - 1))) if v0 > 0 and v1 > 0 else n0 + n1 - 2
    tstat = diff / se
    p = float(2 * stats.t.sf(abs(tstat), df))
    q = float(stats.t.ppf(1 - alpha / 2, df))
    return Effect(m0, m1, diff, _lift(diff, m0), se, diff - q * se, diff + q * se, p, n0, n1)


def ratio_delta(
    num_control: np.ndarray,
    den_control: np.ndarray,
    num_treatment: np.ndarray,
    den_treatment: np.ndarray,
    alpha: float = 0.05,
) -> Effect:
    """Ratio metric (sum of numerators / sum of denominators per arm) compared by the delta method."""

    def ratio_and_var(num, den):
        num, den = np.asarray(num, float), np.asarray(den, float)
        n = len(num)
        mx, my = float(num.mean()), float(den.mean())
        if my == 0:
            raise ValueError("a ratio metric's denominator sums to 0 in one arm")
        r = mx / my
        cov = np.cov(num, den, ddof=1) if n > 1 else np.zeros((2, 2))
        var = (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / (my * my * n)
        return r, max(float(var), 0.0), n

    r0, var0, n0 = ratio_and_var(num_control, den_control)
    r1, var1, n1 = ratio_and_var(num_treatment, den_treatment)
    se = math.sqrt(var0 + var1)
    diff = r1 - r0
    z = float(stats.norm.ppf(1 - alpha / 2))
    p = float(2 * stats.norm.sf(abs(diff) / se)) if se > 0 else float(diff == 0)
    return Effect(r0, r1, diff, _lift(diff, r0), se, diff - z * se, diff + z * se, p, n0, n1)


@dataclass(frozen=True)
class Bayesian:
    chance_to_win: float  # P(treatment > control)
    expected_loss: float  # E[max(0, control - treatment)]: what choosing the treatment risks
    expected_loss_control: float  # E[max(0, treatment - control)]: what keeping the control risks


def bayesian(effect: Effect) -> Bayesian:
    """Flat-prior normal posterior of the difference: N(diff, se^2)."""
    d, s = effect.diff, effect.se
    if s == 0:
        return Bayesian(float(d > 0) + 0.5 * float(d == 0), max(-d, 0.0), max(d, 0.0))
    z = d / s
    pdf, cdf = float(stats.norm.pdf(z)), float(stats.norm.cdf(z))
    loss_treat = s * pdf - d * (1 - cdf)  # E[max(0, -D)]
    loss_ctrl = s * pdf + d * cdf  # E[max(0, D)]
    return Bayesian(cdf, max(loss_treat, 0.0), max(loss_ctrl, 0.0))


@dataclass(frozen=True)
class Cuped:
    control: np.ndarray
    treatment: np.ndarray
    theta: float
    variance_reduction: float  # 1 - var(adjusted) / var(raw), pooled over both arms


def cuped(
    control: np.ndarray, treatment: np.ndarray, pre_control: np.ndarray, pre_treatment: np.ndarray
) -> Cuped:
    """Adjust each arm's values by a pre-period covariate (theta pooled over both arms)."""
    y = np.concatenate([np.asarray(control, float), np.asarray(treatment, float)])
    x = np.concatenate([np.asarray(pre_control, float), np.asarray(pre_treatment, float)])
    var_x = float(x.var(ddof=1))
    theta = float(np.cov(y, x, ddof=1)[0, 1] / var_x) if var_x > 0 else 0.0
    mean_x = float(x.mean())
    adj = y - theta * (x - mean_x)
    var_y = float(y.var(ddof=1))
    reduction = 1.0 - float(adj.var(ddof=1)) / var_y if var_y > 0 else 0.0
    n0 = len(control)
    return Cuped(adj[:n0], adj[n0:], theta, reduction)


@dataclass(frozen=True)
class Sequential:
    p_value: float  # always-valid: stays valid whenever the report is read
    ci_low: float
    ci_high: float
    tau: float  # the mixing standard deviation of the effect


def sequential(effect: Effect, tau: float | None = None, alpha: float = 0.05) -> Sequential:
    """mSPRT with a normal mixture N(0, tau^2) over the effect, on the normal approximation of diff.

    With V = se^2: Lambda = sqrt(V / (V + tau^2)) exp(diff^2 tau^2 / (2 V (V + tau^2))); the always-valid
    p-value is min(1, 1/Lambda) and the confidence sequence is {theta: Lambda(theta) < 1/alpha}.
    ``tau`` defaults to the standard error the experiment would have at about 10x today's sample's
    precision floor: max(se, 0.1 |control mean|) keeps the test sensitive to effects of ~10% lift.
    """
    v = effect.se**2
    if v == 0:
        return Sequential(effect.p_value, effect.ci_low, effect.ci_high, 0.0)
    if tau is None:
        tau = max(effect.se, 0.1 * abs(effect.control_mean)) or effect.se
    t2 = tau * tau
    log_lambda = 0.5 * math.log(v / (v + t2)) + effect.diff**2 * t2 / (2 * v * (v + t2))
    p = 1.0 if log_lambda <= 0 else min(1.0, math.exp(-log_lambda))
    half = math.sqrt(v * (v + t2) / t2 * (2 * math.log(1 / alpha) + math.log((v + t2) / v)))
    return Sequential(p, effect.diff - half, effect.diff + half, tau)


@dataclass(frozen=True)
class SampleRatio:
    p_value: float
    mismatch: bool
    observed: dict[str, int]
    expected_share: dict[str, float]


def sample_ratio(counts: dict[str, int], weights: dict[str, float], alpha: float = SRM_ALPHA) -> SampleRatio:
    """Pearson chi-squared of units per variant against the configured weights."""
    names = list(weights)
    total_w = sum(weights.values())
    observed = np.array([counts.get(n, 0) for n in names], float)
    n = observed.sum()
    share = {k: weights[k] / total_w for k in names}
    if n == 0 or len(names) < 2:
        return SampleRatio(1.0, False, {k: int(counts.get(k, 0)) for k in names}, share)
    expected = np.array([share[k] * n for k in names])
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    p = float(stats.chi2.sf(chi2, len(names) - 1))
    return SampleRatio(p, p < alpha, {k: int(counts.get(k, 0)) for k in names}, share)
