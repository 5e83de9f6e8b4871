"""Off-policy evaluation: what a candidate policy would have earned, estimated from another policy's logs.

Given logged rounds (context, action taken, its propensity under the logging policy, reward), the target
policy's action distribution per logged context, and a reward model's prediction for every action:

- ``dm``: direct method, the reward model averaged under the target policy;
- ``ips``: inverse propensity scoring, mean of w * r with w = pi(a|x) / p_log(a|x);
- ``snips``: self-normalised IPS, sum(w r) / sum(w);
- ``dr``: doubly robust, DM plus the importance-weighted residual of the reward model;
- ``switch_dr``: DR where w <= tau, the reward model alone elsewhere (Wang et al. 2017; as in the Open Bandit
  Pipeline).

Each estimate comes with a percentile bootstrap interval (rows resampled, vectorised) and the effective
sample size (sum w)^2 / sum w^2 of the importance weights. The Open Bandit Pipeline (obp) implements the same
estimators but pins old scikit-learn / pandas releases that conflict with this stack; the estimators are a
few lines of numpy each, checked against the generator's known true values in
``benchmarks/decisions_quality.py``. ``promotion_gate`` is the champion rule: a candidate becomes the
champion only when the lower bound of its interval is above the champion's estimate (and the logging
policy's), on the same logs with the same estimator.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

ESTIMATORS = ("dm", "ips", "snips", "dr", "switch_dr")


@dataclass(frozen=True)
class Estimate:
    estimator: str
    value: float
    low: float
    high: float
    ess: float
    n: int

    def covers(self, truth: float) -> bool:
        return self.low <= truth <= self.high

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LoggedBandit:
    """Logged rounds for evaluation: action (n,), reward (n,), propensity (n,) of the logged action."""

    actions: np.ndarray
    rewards: np.ndarray
    propensities: np.ndarray

    def __post_init__(self):
        n = len(self.actions)
        if not len(self.rewards) == len(self.propensities) == n:
            raise ValueError("actions, rewards and propensities must have the same length")
        if n and (np.asarray(self.propensities) <= 0).any():
            raise ValueError("logged propensities must be positive (off-policy weights divide by them)")

    def __len__(self) -> int:
        return len(self.actions)


def _contributions(logs: LoggedBandit, target: np.ndarray, predicted: np.ndarray | None, tau: float):
    """Per-row terms: (w, w*r, dm term, dr term, switch term)."""
    rows = np.arange(len(logs))
    a = np.asarray(logs.actions, dtype=np.int64)
    r = np.asarray(logs.rewards, dtype=np.float64)
    w = target[rows, a] / np.asarray(logs.propensities, dtype=np.float64)
    if predicted is None:
        return w, w * r, None, None, None
    dm = (target * predicted).sum(axis=1)
    residual = w * (r - predicted[rows, a])
    return w, w * r, dm, dm + residual, dm + np.where(w <= tau, residual, 0.0)


def _point(name: str, w, wr, dm, dr, sw) -> np.ndarray:
    """Estimator value along the last axis (rows); works on (n,) and on bootstrap (B, n) arrays."""
    if name == "ips":
        return wr.mean(axis=-1)
    if name == "snips":
        return wr.sum(axis=-1) / np.maximum(w.sum(axis=-1), 1e-12)
    return {"dm": dm, "dr": dr, "switch_dr": sw}[name].mean(axis=-1)


def evaluate(
    logs: LoggedBandit,
    target: np.ndarray,
    predicted: np.ndarray | None = None,
    estimators: tuple[str, ...] = ESTIMATORS,
    n_bootstrap: int = 200,
    alpha: float = 0.05,
    tau: float = 20.0,
    seed: int = 0,
) -> dict[str, Estimate]:
    """Estimate the value of ``target`` (n, k action distribution per logged row) from ``logs``.

    ``predicted`` (n, k) is the reward model's expected reward of every action in every logged context;
    without it only IPS and SNIPS are computed.
    """
    target = np.asarray(target, dtype=np.float64)
    if target.shape[0] != len(logs):
        raise ValueError(f"target distribution has {target.shape[0]} rows for {len(logs)} logged rounds")
    terms = _contributions(logs, target, None if predicted is None else np.asarray(predicted, float), tau)
    names = [e for e in estimators if predicted is not None or e in ("ips", "snips")]
    rng = np.random.default_rng(seed)
    n = len(logs)
    w = terms[0]
    ess = float(w.sum() ** 2 / max((w**2).sum(), 1e-300))
    out: dict[str, Estimate] = {}
    # Bootstrap in chunks of resamples so memory stays at chunk x n floats.
    chunk = max(1, min(n_bootstrap, 2_000_000 // max(n, 1)))
    boots: dict[str, list[np.ndarray]] = {name: [] for name in names}
    done = 0
    while done < n_bootstrap:
        b = min(chunk, n_bootstrap - done)
        idx = rng.integers(0, n, size=(b, n))
        sampled = [None if t is None else t[idx] for t in terms]
        for name in names:
            boots[name].append(_point(name, *sampled))
        done += b
    for name in names:
        values = np.concatenate(boots[name])
        low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
        out[name] = Estimate(name, float(_point(name, *terms)), float(low), float(high), ess, n)
    return out


def paired_difference(
    logs: LoggedBandit,
    target_a: np.ndarray,
    target_b: np.ndarray,
    predicted: np.ndarray,
    n_bootstrap: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
) -> Estimate:
    """DR estimate of value(a) - value(b) on the same rows, with a paired bootstrap interval."""
    _, _, _, dr_a, _ = _contributions(logs, np.asarray(target_a, float), predicted, np.inf)
    _, _, _, dr_b, _ = _contributions(logs, np.asarray(target_b, float), predicted, np.inf)
    diff = dr_a - dr_b
    rng = np.random.default_rng(seed)
    values = np.array([diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(n_bootstrap)])
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return Estimate("dr_difference", float(diff.mean()), float(low), float(high), float("nan"), len(diff))


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str
    candidate: dict[str, Any]
    champion: dict[str, Any] | None
    logging: dict[str, Any] | None


def promotion_gate(
    candidate: Estimate,
    champion: Estimate | None,
    logging: Estimate | None = None,
    champion_version: str | None = None,
) -> GateDecision:
    """Champion only when the candidate's lower bound clears the champion's (and the logging policy's) value."""
    bound = f"{candidate.estimator.upper()} lower bound {candidate.low:.4f}"
    as_dict = lambda e: None if e is None else e.as_dict()
    if not np.isfinite(candidate.low):
        return GateDecision(
            False,
            "the candidate's interval is undefined (no logged support)",
            candidate.as_dict(),
            as_dict(champion),
            as_dict(logging),
        )
    if logging is not None and candidate.low <= logging.value:
        return GateDecision(
            False,
            f"{bound} does not clear the logging policy's {logging.value:.4f}",
            candidate.as_dict(),
            as_dict(champion),
            as_dict(logging),
        )
    if champion is not None and candidate.low <= champion.value:
        who = f"champion v{champion_version}" if champion_version else "the champion"
        return GateDecision(
            False,
            f"{bound} does not clear {who}'s {champion.value:.4f}",
            candidate.as_dict(),
            as_dict(champion),
            as_dict(logging),
        )
    against = "no champion yet" if champion is None else f"champion {champion.value:.4f}"
    if logging is not None:
        against += f", logging policy {logging.value:.4f}"
    return GateDecision(
        True, f"{bound} clears {against}", candidate.as_dict(), as_dict(champion), as_dict(logging)
    )


def fit_reward_model(
    contexts, actions: np.ndarray, rewards: np.ndarray, action_names, prior_precision=1.0, encoder=None
):
    """Per-action Bayesian logistic regression on the logged rounds (the DM / DR reward model); ``encoder``
    is the one that encoded ``contexts`` (its width is the model's)."""
    from holocrm_core.decisions.policies import ContextualThompson

    model = ContextualThompson(action_names, prior_precision=prior_precision, encoder=encoder)
    model.update(contexts, actions, rewards)
    return model
