"""Experiments: sticky assignment, estimators checked against independent computations, SRM, verdicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from scipy import stats as sps

from holocrm_core.experiments import (
    Assigner,
    Experiment,
    ExperimentError,
    ExperimentStore,
    Variant,
    analyse,
    assign,
    events_from_logs,
    plot,
    stats,
)

START = datetime(2026, 3, 1, tzinfo=UTC)


def make(name="exp-1", weights=(1.0, 1.0), metric="response_rate", **kw) -> Experiment:
    variants = (
        Variant("control", "decisions.cadence", weights[0]),
        Variant("treatment", "decisions.policy", weights[1]),
    )
    return Experiment(name, "contact", variants, metric, start=START.isoformat(), **kw)


def frames(exp, ids, variants, rewards, pre=None):
    served = [START + timedelta(days=1)] * len(ids)
    exposures = pl.DataFrame(
        {"experiment": exp.name, "unit_id": list(ids), "variant": list(variants), "served_at": served},
        schema_overrides={"served_at": pl.Datetime("us", "UTC")},
    )
    actions = [
        {"contact_id": u, "reward": float(r), "taken_at": (START + timedelta(days=2)).isoformat()}
        for u, r in zip(ids, rewards, strict=True)
    ]
    if pre is not None:
        actions += [
            {"contact_id": u, "reward": float(x), "taken_at": (START - timedelta(days=3)).isoformat()}
            for u, x in zip(ids, pre, strict=True)
        ]
    return exposures, events_from_logs("contact", actions, [])


def test_assignment_is_sticky_and_follows_the_weights():
    exp = make(weights=(1.0, 3.0))
    ids = [f"contact-{i}" for i in range(20_000)]
    first = [assign(exp, u) for u in ids]
    again = [Assigner(Experiment.from_json(exp.to_json()))(u) for u in ids]  # a restart: a new object
    assert first == again
    share = first.count("treatment") / len(first)
    assert 0.74 < share < 0.76
    other = make(name="exp-2", weights=(1.0, 3.0))
    assert [assign(other, u) for u in ids[:200]] != first[:200]  # experiments are independent


def test_definitions_are_validated_with_reasons(tmp_path):
    with pytest.raises(ExperimentError, match="unknown metric"):
        make(metric="clicks")
    with pytest.raises(ExperimentError, match="unknown strategy"):
        Experiment("x", "contact", (Variant("a", "nope"), Variant("b", "decisions.policy")), "response_rate")
    store = ExperimentStore(tmp_path)
    store.create(make())
    with pytest.raises(ExperimentError, match="exists already"):
        store.create(make())
    assert store.stop("exp-1").stop is not None
    assert [e.name for e in store.list()] == ["exp-1"]


def test_welch_matches_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 300), rng.normal(0.2, 2, 500)
    e = stats.welch(a, b)
    ref = sps.ttest_ind(b, a, equal_var=False)
    assert e.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    lo, hi = ref.confidence_interval(0.95)
    assert (e.ci_low, e.ci_high) == pytest.approx((lo, hi), rel=1e-9)


def test_cuped_equals_the_regression_adjusted_estimate():
    rng = np.random.default_rng(2)
    n = 4000
    x = rng.normal(0, 1, n)
    arm = rng.random(n) < 0.5
    y = 2 + 0.8 * x + 0.3 * arm + rng.normal(0, 0.6, n)
    adj = stats.cuped(y[~arm], y[arm], x[~arm], x[arm])
    # OLS y ~ 1 + arm + x: the arm coefficient is the CUPED difference when theta is the pooled slope
    design = np.column_stack([np.ones(n), arm, x - x.mean()])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    e = stats.welch(adj.control, adj.treatment)
    assert e.diff == pytest.approx(coef[1], abs=0.01)
    assert adj.theta == pytest.approx(0.8, abs=0.05)
    assert 0.5 < adj.variance_reduction < 0.8


def test_delta_method_se_matches_a_bootstrap():
    rng = np.random.default_rng(3)
    den0, den1 = rng.poisson(3, 800) + 1, rng.poisson(3, 800) + 1
    num0, num1 = rng.binomial(den0, 0.3), rng.binomial(den1, 0.35)
    e = stats.ratio_delta(num0, den0, num1, den1)
    boots = []
    for _ in range(400):
        i, j = rng.integers(0, 800, 800), rng.integers(0, 800, 800)
        boots.append(num1[j].sum() / den1[j].sum() - num0[i].sum() / den0[i].sum())
    assert e.se == pytest.approx(np.std(boots), rel=0.15)
    assert e.diff == pytest.approx(num1.sum() / den1.sum() - num0.sum() / den0.sum())


def test_sequential_interval_is_wider_than_the_fixed_one_and_contains_the_estimate():
    rng = np.random.default_rng(4)
    e = stats.welch(rng.normal(0, 1, 500), rng.normal(0.3, 1, 500))
    s = stats.sequential(e, tau=0.1)
    assert s.ci_low < e.ci_low < e.diff < e.ci_high < s.ci_high
    assert s.p_value >= e.p_value


def test_bayesian_chance_to_win_follows_the_posterior():
    e = stats.Effect(1.0, 1.1, 0.1, 0.1, 0.05, 0.0, 0.2, 0.05, 100, 100)
    b = stats.bayesian(e)
    assert b.chance_to_win == pytest.approx(sps.norm.cdf(2.0))
    # expected loss by simulation
    draws = np.random.default_rng(5).normal(0.1, 0.05, 400_000)
    assert b.expected_loss == pytest.approx(np.maximum(-draws, 0).mean(), rel=0.05)


def test_a_planted_uplift_ships_the_treatment_and_cuped_tightens_it():
    rng = np.random.default_rng(6)
    exp = make(metric="mean_reward")
    ids = [f"c{i}" for i in range(6000)]
    variants = [assign(exp, u) for u in ids]
    pre = rng.gamma(2, 1, len(ids))
    lift = np.array([0.4 if v == "treatment" else 0.0 for v in variants])
    rewards = np.clip(0.5 * pre + lift + rng.normal(0, 0.5, len(ids)), 0, None)
    report = analyse(exp, *frames(exp, ids, variants, rewards, pre))
    assert report.decision == "ship:treatment", report.verdict
    result = report.results[0]
    assert result.adjusted and result.variance_reduction > 0.3
    assert "treatment is better" in report.verdict


def test_no_difference_says_so():
    rng = np.random.default_rng(7)
    exp = make()
    ids = [f"c{i}" for i in range(3000)]
    variants = [assign(exp, u) for u in ids]
    report = analyse(exp, *frames(exp, ids, variants, (rng.random(len(ids)) < 0.2).astype(float)))
    assert report.decision == "continue"
    assert "no difference detected" in report.verdict


def test_sample_ratio_mismatch_blocks_the_verdict(tmp_path):
    rng = np.random.default_rng(8)
    exp = make(metric="mean_reward")
    ids = [f"c{i}" for i in range(20_000)]
    variants = [assign(exp, u) for u in ids]
    keep = [v == "control" or rng.random() < 0.9 for v in variants]  # 10% of treatment exposures lost
    ids = [u for u, k in zip(ids, keep, strict=True) if k]
    variants = [v for v, k in zip(variants, keep, strict=True) if k]
    rewards = np.where(np.array(variants) == "treatment", 2.0, 1.0)  # a huge "effect" that is not trusted
    report = analyse(exp, *frames(exp, ids, variants, rewards))
    assert report.srm.mismatch
    assert report.decision == "blocked"
    assert report.verdict.startswith("BLOCKED: sample-ratio mismatch")
    png = plot(report, tmp_path / "r.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
