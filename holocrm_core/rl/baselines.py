"""Baselines the outreach policy must beat: random, always email, cadence, Thompson sampling, an oracle.

Each policy answers ``probabilities(world) -> (n, 4)`` over ``ACTIONS`` for the episodes running in an
``OutreachWorld`` and ``act(world, rng)`` draws from it (deterministic policies put all mass on one
action). The oracle reads the world's own response probabilities, so it is only meaningful in the true
world of generated data: it is the reference for the gap to the best one could do knowing the truth.
"""

from __future__ import annotations

import numpy as np

from holocrm_core.rl.world import (
    ACTIONS,
    CALL,
    CUSTOMER,
    EMAIL,
    LEAD,
    NO_TOUCH,
    PROPOSAL,
    QUALIFIED,
    WAIT,
    OutreachWorld,
)


class OutreachPolicy:
    name = "policy"

    def probabilities(self, world: OutreachWorld) -> np.ndarray:
        raise NotImplementedError

    def act(self, world: OutreachWorld, rng: np.random.Generator) -> np.ndarray:
        p = self.probabilities(world)
        cumulative = p.cumsum(axis=1)
        return np.minimum((rng.random((len(p), 1)) > cumulative).sum(axis=1), p.shape[1] - 1)


def one_hot(actions: np.ndarray, k: int = 4) -> np.ndarray:
    out = np.zeros((len(actions), k))
    out[np.arange(len(actions)), actions] = 1.0
    return out


class RandomPolicy(OutreachPolicy):
    name = "random"

    def probabilities(self, world):
        return np.full((world.n, 4), 0.25)


class ConstantPolicy(OutreachPolicy):
    def __init__(self, action: int, name: str):
        self.action, self.name = action, name

    def probabilities(self, world):
        return one_hot(np.full(world.n, self.action))


def always_email() -> ConstantPolicy:
    return ConstantPolicy(EMAIL, "always_email")


def always_wait() -> ConstantPolicy:
    return ConstantPolicy(WAIT, "always_wait")


class CadencePolicy(OutreachPolicy):
    """The sales playbook: email, a call 3 days later, repeat; once qualified (after a meeting) a proposal,
    a follow-up call 3 days later, and the proposal again."""

    name = "cadence"

    def __init__(self, gap_days: int = 3):
        self.gap_days = gap_days

    def probabilities(self, world):
        s = world.state
        due = (world.days_since_last_touch() >= self.gap_days) | (s.last_touch_type == NO_TOUCH)
        closing = (s.lifecycle == QUALIFIED) | (s.lifecycle == CUSTOMER)
        prospecting = np.where(s.last_touch_type == EMAIL, CALL, EMAIL)
        closing_step = np.where(s.last_touch_type == PROPOSAL, CALL, PROPOSAL)
        action = np.where(due, np.where(closing, closing_step, prospecting), WAIT)
        return one_hot(action)


class OraclePolicy(OutreachPolicy):
    """Greedy on the world's own response model: the action with the best expected gain today.

    Gain of an action = P(response) x what the response is worth at this stage (a qualified contact is worth
    ``qualified_share`` of the deal, a won deal all of it, a revived cold contact ``revive_share``) minus its
    cost; touches that would over-contact the contact are not taken. One-step lookahead only: it knows the
    truth but not the future, so a learned policy can beat it.
    """

    name = "oracle"

    def __init__(self, qualified_share: float = 0.35, revive_share: float = 0.1):
        self.qualified_share, self.revive_share = qualified_share, revive_share

    def probabilities(self, world):
        s, cfg = world.state, world.config
        p = world.true_probabilities()
        value = np.minimum(world.starts.value[s.start], cfg.max_value)
        closing = (s.lifecycle == QUALIFIED) | (s.lifecycle == CUSTOMER)
        worth = (
            np.where(s.lifecycle == LEAD, self.qualified_share, np.where(closing, 0.0, self.revive_share))
            * value
        )
        gain = p * worth[:, None]
        wins_on = np.zeros_like(p)
        wins_on[:, PROPOSAL] = 1.0
        wins_on[:, WAIT] = s.last_touch_type == PROPOSAL
        gain = np.where(closing[:, None], p * wins_on * value[:, None], gain) - world.cost[None, :]
        crowded = world.touches(7).sum(axis=1) >= cfg.over_contact_limit
        gain[crowded, :WAIT] = -np.inf
        return one_hot(gain.argmax(axis=1))


class LoggingPolicy(OutreachPolicy):
    """A known, stochastic policy behind a logged history: ``distribution(contexts) -> (n, 4)`` over
    ``ACTIONS`` for the decision contexts of the running episodes (on generated data, the sample world's reps'
    habits: ``holocrm_core.rl.truth.sample_logging_policy``)."""

    name = "logging"

    def __init__(self, distribution):
        self.distribution = distribution

    def probabilities(self, world):
        return np.asarray(self.distribution(world.contexts()), dtype=np.float64)


class ThompsonBaseline(OutreachPolicy):
    """The decisions issue's contextual Thompson sampling, fitted on the logged responses, deciding each day
    through the convergence engine (pure Thompson). A bandit: it chases today's response, not the deal."""

    name = "thompson"

    def __init__(self, log, seed: int = 0):
        from holocrm_core.decisions.policies import ContextualThompson

        self.policy = ContextualThompson(ACTIONS, seed=seed)
        self.policy.update(
            self.policy.encoder.encode(log), log["action"].to_numpy(), log["responded"].cast(float).to_numpy()
        )

    def probabilities(self, world):
        return self.policy.probabilities(self.policy.encoder.encode(world.contexts()))

    def act(self, world, rng):
        return self.policy.choose(self.policy.encoder.encode(world.contexts())).actions


def heuristic_baselines() -> list[OutreachPolicy]:
    """The baselines every promotion is judged against (the oracle needs the truth, so it is not one)."""
    return [RandomPolicy(), always_email(), CadencePolicy()]
