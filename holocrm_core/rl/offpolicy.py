"""Sim-to-real check: the outreach policy judged off-policy on the logged history, beside its simulated value.

For every logged decision the doubly robust estimator of the decisions issue (``decisions.ope``) estimates
what the return from that point would have been had the candidate chosen there (and the logging policy
continued): reward = the logged return-to-go, reward model = a ridge regression of it per action on the
policy input. The logging policy is scored by the same estimator on the same rows, so the two numbers
compare like with like. This is a one-step-deviation estimate: whole-episode importance weights over 14
decisions of a near-deterministic policy would leave almost no effective sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from holocrm_core.rl.history import LOGGING_COLUMNS, obs_columns
from holocrm_core.rl.world import ACTIONS


@dataclass(frozen=True)
class OffPolicyCheck:
    candidate: object  # decisions.ope.Estimate
    logging: object
    difference: object  # DR of candidate - logging, paired interval

    @property
    def agrees(self) -> bool:
        """The candidate's DR estimate is not below the logging policy's."""
        return self.candidate.value >= self.logging.value

    def as_dict(self) -> dict:
        return {"candidate_dr": self.candidate.as_dict(), "logging_dr": self.logging.as_dict(),
                "difference_dr": self.difference.as_dict(), "agrees": self.agrees}


def reward_model(log: pl.DataFrame, alpha: float = 1.0) -> np.ndarray:
    """Predicted return-to-go of every action in every logged context, (n, 4): the DR's direct part."""
    from sklearn.linear_model import Ridge

    x = log.select(obs_columns()).to_numpy()
    y = log["return_to_go"].to_numpy()
    actions = log["action"].to_numpy()
    out = np.zeros((log.height, len(ACTIONS)))
    for i, name in enumerate(ACTIONS):
        rows = actions == name
        out[:, i] = Ridge(alpha=alpha).fit(x[rows], y[rows]).predict(x) if rows.sum() > 1 else y.mean()
    return out


def off_policy_check(log: pl.DataFrame, candidate_probabilities: np.ndarray, n_bootstrap: int = 200,
                     seed: int = 0) -> OffPolicyCheck:
    """DR estimates of the candidate and of the logging policy on ``log`` (from ``record_history``)."""
    from holocrm_core.decisions.ope import LoggedBandit, evaluate, paired_difference

    actions = log["action"].replace_strict({a: i for i, a in enumerate(ACTIONS)}, return_dtype=pl.Int64).to_numpy()
    logged = LoggedBandit(actions=actions, rewards=log["return_to_go"].to_numpy(), propensities=log["propensity"].to_numpy())
    predicted = reward_model(log)
    logging = log.select(LOGGING_COLUMNS).to_numpy()
    cand = evaluate(logged, candidate_probabilities, predicted, ("dr",), n_bootstrap, seed=seed)["dr"]
    base = evaluate(logged, logging, predicted, ("dr",), n_bootstrap, seed=seed)["dr"]
    diff = paired_difference(logged, candidate_probabilities, logging, predicted, n_bootstrap, seed=seed)
    return OffPolicyCheck(cand, base, diff)
