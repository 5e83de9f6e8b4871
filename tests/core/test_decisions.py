"""Decision policies, the convergence engine and off-policy evaluation: behaviour that can fail."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from holocrm_core.decisions import ope
from holocrm_core.decisions.actions import ActionSet, ContextEncoder
from holocrm_core.decisions.convergence import ConvergenceEngine, Strategy, blend
from holocrm_core.decisions.policies import (
    UCB1,
    ContextualThompson,
    EpsilonGreedy,
    LinUCB,
    LoggingPolicy,
    SegmentThompson,
    gaussian_win_probabilities,
    policy_from_state,
)
from holocrm_core.synth.outreach import logging_policy_probabilities
from tests.support.decision_worlds import sample_contexts, true_probabilities

ENCODER = ContextEncoder()
QUALIFIED_DIRECTOR = {
    "seniority": "director",
    "industry": "software",
    "lifecycle_status": "qualified",
    "size_band": "mid_market",
    "days_since_last_touch": 9,
    "lead_band": "hot",
}
ALL_POLICIES = [
    ContextualThompson,
    lambda **kw: ContextualThompson(likelihood="linear", **kw),
    LinUCB,
    SegmentThompson,
    UCB1,
    EpsilonGreedy,
]


def repeated(context: dict, n: int):
    return ENCODER.encode([context] * n)


# -- context encoding ---------------------------------------------------------------------------------------
def test_encoder_one_hot_and_unknown_values_encode_as_zeros():
    ctx = ENCODER.encode([QUALIFIED_DIRECTOR, {"seniority": "astronaut", "days_since_last_touch": None}])
    names = list(ENCODER.feature_names)
    assert ctx.features.shape == (2, ENCODER.dim)
    assert ctx.features[0, names.index("seniority=director")] == 1.0
    assert ctx.features[1, [i for i, n in enumerate(names) if n.startswith("seniority=")]].sum() == 0.0
    # a missing day count is read as 30 days (the 14-30 bin), not as "touched today"
    assert ctx.features[1, names.index("days_since_last_touch in (14,30]")] == 1.0
    assert ENCODER.segment_names[ctx.segments[0]] == "qualified|hot"
    assert ENCODER.segment_names[ctx.segments[1]] == "unknown|unknown"


# -- learning from outcomes -------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [SegmentThompson, ContextualThompson])
def test_500_outcomes_move_the_posterior_toward_the_true_rate(make):
    rng = np.random.default_rng(3)
    policy = make(seed=0)
    ctx = repeated(QUALIFIED_DIRECTOR, 500)
    call = policy.actions.index("call")
    before_mean, before_sd = (m[0, call] for m in policy.expected_reward(ctx.take(slice(0, 1))))
    rewards = (rng.random(500) < 0.3).astype(float)
    for i in range(500):  # online, one outcome at a time, as the API records them
        policy.update(ctx.take(slice(i, i + 1)), ["call"], [rewards[i]])
    mean, sd = (m[0, call] for m in policy.expected_reward(ctx.take(slice(0, 1))))
    assert abs(before_mean - 0.3) > 0.15
    assert abs(mean - 0.3) < 0.05
    assert sd < before_sd / 3
    # each action has its own posterior: the others learned nothing
    email = policy.actions.index("email")
    assert policy.expected_reward(ctx.take(slice(0, 1)))[0][0, email] == pytest.approx(before_mean)


def test_batch_and_online_logistic_updates_agree():
    rng = np.random.default_rng(0)
    frame = sample_contexts(400, rng)
    ctx = ENCODER.encode(frame)
    a = rng.integers(0, 4, 400)
    r = (rng.random(400) < true_probabilities(frame)[np.arange(400), a]).astype(float)
    batch, online = ContextualThompson(), ContextualThompson()
    batch.update(ctx, a, r)
    for i in range(400):
        online.update(ctx.take(slice(i, i + 1)), a[i : i + 1], r[i : i + 1])
    b_mean, _ = batch.expected_reward(ctx)
    o_mean, _ = online.expected_reward(ctx)
    # outcome-by-outcome Laplace updates approximate the batch posterior closely
    assert np.abs(b_mean - o_mean).mean() < 0.02
    assert np.corrcoef(b_mean.ravel(), o_mean.ravel())[0, 1] > 0.95


@pytest.mark.parametrize("make", ALL_POLICIES)
def test_state_survives_a_restart_same_decisions_under_the_same_seed(make):
    rng = np.random.default_rng(1)
    frame = sample_contexts(300, rng)
    ctx = ENCODER.encode(frame)
    policy = make(seed=42)
    a = rng.integers(0, 4, 300)
    policy.update(ctx, a, (rng.random(300) < 0.3).astype(float))
    restored = policy_from_state(json.loads(json.dumps(policy.state_dict())))
    assert type(restored) is type(policy)
    first, second = policy.choose(ctx), restored.choose(ctx)
    assert np.array_equal(first.actions, second.actions)
    assert np.allclose(first.propensity, second.propensity)
    # and it keeps learning from where it was
    restored.update(ctx.take(slice(0, 5)), ["wait"] * 5, [1.0] * 5)
    assert restored.observations == policy.observations + 5


@pytest.mark.parametrize("make", ALL_POLICIES)
def test_bad_outcomes_are_refused_and_change_nothing(make):
    policy = make(seed=0)
    ctx = repeated(QUALIFIED_DIRECTOR, 1)
    before = json.dumps(policy.state_dict())
    with pytest.raises(KeyError):
        policy.update(ctx, ["fax"], [1.0])
    with pytest.raises(ValueError):
        policy.update(ctx, ["call"], [1.5])
    with pytest.raises(ValueError):
        policy.update(ctx, ["call"], [float("nan")])
    assert json.dumps(policy.state_dict()) == before


@pytest.mark.parametrize("make", [ContextualThompson, SegmentThompson, LinUCB])
def test_adding_and_removing_an_action_keeps_the_others_learning(make):
    policy = make(seed=0)
    ctx = repeated(QUALIFIED_DIRECTOR, 200)
    policy.update(ctx, ["proposal"] * 200, [1.0] * 100 + [0.0] * 100)
    before = policy.expected_reward(ctx.take(slice(0, 1)))[0][0, policy.actions.index("proposal")]
    policy.add_action("linkedin")
    policy.remove_action("email")
    assert list(policy.actions) == ["call", "proposal", "wait", "linkedin"]
    after = policy.expected_reward(ctx.take(slice(0, 1)))[0][0, policy.actions.index("proposal")]
    assert after == pytest.approx(before)
    assert policy.probabilities(ctx.take(slice(0, 3))).shape == (3, 4)
    policy.update(ctx.take(slice(0, 1)), ["linkedin"], [1.0])


def test_contextual_thompson_learns_context_dependent_best_actions():
    """On the true response model, 4,000 rounds: the best action more often than segment TS and chance."""
    rng = np.random.default_rng(5)
    frame = sample_contexts(4000, rng)
    ctx = ENCODER.encode(frame)
    p = true_probabilities(frame)
    hits = {}
    for make in (ContextualThompson, SegmentThompson):
        policy = make(seed=5)
        chosen = []
        for i in range(0, 4000, 10):  # rewards arrive ten at a time
            part = ctx.take(slice(i, i + 10))
            a = policy.sample_choice(part)
            policy.update(part, a, (rng.random(len(a)) < p[i : i + 10][np.arange(len(a)), a]).astype(float))
            chosen.append(a)
        hits[make.name] = float((np.concatenate(chosen) == p.argmax(axis=1))[2000:].mean())
    assert hits["contextual_thompson"] > hits["segment_thompson"] + 0.05
    assert hits["contextual_thompson"] > 0.6


# -- convergence engine -----------------------------------------------------------------------------------
def test_gaussian_win_probabilities_match_monte_carlo():
    rng = np.random.default_rng(0)
    mean, sd = rng.normal(size=(5, 4)), rng.uniform(0.1, 1.5, size=(5, 4))
    draws = mean[:, None, :] + sd[:, None, :] * rng.standard_normal((5, 200_000, 4))
    mc = np.stack([(draws.argmax(axis=2) == a).mean(axis=1) for a in range(4)], axis=1)
    assert np.abs(gaussian_win_probabilities(mean, sd) - mc).max() < 0.01


@pytest.mark.parametrize("strategy", list(Strategy))
def test_engine_propensities_are_the_frequencies_it_chooses_with(strategy):
    p = np.array([[0.5, 0.3, 0.15, 0.05]])
    engine = ConvergenceEngine(strategy, epsilon=0.2, temperature=0.5, seed=0)
    decisions = engine.decide(np.repeat(p, 40_000, axis=0))
    freq = np.bincount(decisions.actions, minlength=4) / len(decisions)
    assert np.abs(freq - decisions.distribution[0]).max() < 0.01
    assert np.allclose(decisions.propensity, decisions.distribution[0][decisions.actions])
    if strategy is Strategy.ARGMAX:
        assert set(decisions.actions) == {0} and decisions.propensity[0] == 1.0
    if strategy is Strategy.EPSILON_GREEDY:
        assert decisions.distribution[0] == pytest.approx([0.85, 0.05, 0.05, 0.05])
    if strategy is Strategy.SOFTMAX:  # temperature < 1 sharpens
        assert decisions.distribution[0, 0] > 0.5


def test_argmax_splits_ties_and_blend_weights_the_policies():
    engine = ConvergenceEngine("argmax", seed=1)
    d = engine.decide(np.tile([0.4, 0.4, 0.1, 0.1], (2000, 1)))
    assert set(d.actions) == {0, 1} and np.allclose(d.propensity, 0.5)
    mixed = blend([np.array([[1.0, 0, 0, 0]]), np.array([[0, 1.0, 0, 0]])], weights=[3, 1])
    assert mixed[0] == pytest.approx([0.75, 0.25, 0, 0])
    with pytest.raises(ValueError):
        blend([np.array([[1.0, 0]])], weights=[-1])


# -- off-policy evaluation --------------------------------------------------------------------------------
def _logged(seed: int, n: int = 4000):
    rng = np.random.default_rng(seed)
    frame = sample_contexts(n, rng)
    ctx = ENCODER.encode(frame, keep_frame=True)
    q = LoggingPolicy(distribution=logging_policy_probabilities).probabilities(ctx)
    a = (np.cumsum(q, axis=1) < rng.random((n, 1))).sum(axis=1).clip(max=3)
    p = true_probabilities(frame)
    r = (rng.random(n) < p[np.arange(n), a]).astype(float)
    return ctx, q, a, r, p


def test_ope_estimates_cover_the_true_value_of_a_different_policy():
    ctx, q, a, r, p = _logged(0)
    target = np.eye(4)[p.argmax(axis=1)]  # the oracle: very different from the reps' habits
    truth = float((target * p).sum(axis=1).mean())
    model = ope.fit_reward_model(ctx, a, r, ActionSet())
    estimates = ope.evaluate(
        ope.LoggedBandit(a, r, q[np.arange(len(a)), a]), target, model.expected_reward(ctx)[0], seed=0
    )
    assert set(estimates) == set(ope.ESTIMATORS)
    for name in ("ips", "snips", "dr"):
        assert estimates[name].covers(truth), (name, estimates[name], truth)
        assert abs(estimates[name].value - truth) / truth < 0.12
    assert 0 < estimates["ips"].ess < len(a)
    # evaluating the logging policy itself: all weights are 1, so IPS is the logged mean and ESS is n
    on_policy = ope.evaluate(ope.LoggedBandit(a, r, q[np.arange(len(a)), a]), q, estimators=("ips",))["ips"]
    assert on_policy.value == pytest.approx(r.mean()) and on_policy.ess == pytest.approx(len(a))


def test_gate_refuses_a_policy_whose_interval_does_not_clear_the_champion():
    champion = ope.Estimate("dr", 0.25, 0.23, 0.27, 900.0, 4000)
    close = ope.Estimate("dr", 0.26, 0.24, 0.28, 900.0, 4000)  # better point estimate, interval overlaps
    clear = ope.Estimate("dr", 0.30, 0.27, 0.33, 900.0, 4000)
    logging = ope.Estimate("dr", 0.20, 0.19, 0.21, 4000.0, 4000)
    refused = ope.promotion_gate(close, champion, logging, champion_version="3")
    assert not refused.promote and "champion v3" in refused.reason
    assert ope.promotion_gate(clear, champion, logging).promote
    assert not ope.promotion_gate(ope.Estimate("dr", 0.21, 0.18, 0.24, 1.0, 10), None, logging).promote
    assert ope.promotion_gate(clear, None, None).promote


def test_gate_on_real_logs_refuses_the_champion_against_itself_and_promotes_a_clearly_better_policy():
    ctx, q, a, r, p = _logged(1)
    logs = ope.LoggedBandit(a, r, q[np.arange(len(a)), a])
    predicted = ope.fit_reward_model(ctx, a, r, ActionSet()).expected_reward(ctx)[0]
    oracle = np.eye(4)[p.argmax(axis=1)]
    uniform = np.full_like(q, 0.25)
    est = {
        name: ope.evaluate(logs, t, predicted, estimators=("dr",), seed=0)["dr"]
        for name, t in {"oracle": oracle, "uniform": uniform, "logging": q}.items()
    }
    assert not ope.promotion_gate(est["oracle"], est["oracle"]).promote
    assert not ope.promotion_gate(est["uniform"], None, est["logging"]).promote
    assert ope.promotion_gate(est["oracle"], est["uniform"], est["logging"]).promote
    diff = ope.paired_difference(logs, oracle, uniform, predicted)
    assert diff.low > 0


def test_logging_policy_needs_the_raw_contexts_and_never_learns():
    policy = LoggingPolicy(distribution=logging_policy_probabilities, seed=0)
    ctx = ENCODER.encode([QUALIFIED_DIRECTOR], keep_frame=True)
    before = policy.probabilities(ctx)
    policy.update(ctx, ["call"], [1.0])
    assert np.allclose(policy.probabilities(ctx), before) and before.min() >= 0.05
    with pytest.raises(ValueError):
        policy.probabilities(ENCODER.encode([QUALIFIED_DIRECTOR]))
    assert isinstance(ctx.frame, pl.DataFrame)
