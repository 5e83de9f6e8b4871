"""Next-best-action for a contact: Thompson sampling over email / call / proposal / wait.

Each (context bucket, action) pair has a Beta posterior over the chance that the action pays off, learned
from the action outcome log (a reward in [0, 1] adds ``reward`` to alpha and ``1 - reward`` to beta). To
recommend, one value is drawn from each action's posterior and the highest draw wins; the answer carries
the posteriors it drew from, the draws, and the propensity of the chosen action (the chance Thompson
sampling picks it, estimated by Monte Carlo) so the logged decision can be evaluated off-policy later.

The context bucket is deliberately coarse (lifecycle status x lead-score band) so that every bucket sees
enough outcomes to learn from; a bucket with no data falls back to the pooled posterior of its action.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

ACTIONS = ("email", "call", "proposal", "wait")
POLICY_NAME = "thompson_beta"
PRIOR = (1.0, 1.0)  # uniform Beta prior
PROPENSITY_DRAWS = 4000


def context_bucket(context: Mapping[str, Any] | None) -> str:
    """The bucket a decision context falls in: ``<lifecycle_status>|<lead band>``."""
    context = context or {}
    if context.get("bucket"):
        return str(context["bucket"])
    status = context.get("lifecycle_status") or "unknown"
    band = context.get("band") or "unknown"
    return f"{status}|{band}"


@dataclass(frozen=True)
class Recommendation:
    contact_id: str
    action: str
    propensity: float
    policy: str
    context: dict[str, Any]
    posterior: dict[str, dict[str, float]]  # action -> alpha, beta, mean, draw, observations
    pooled: bool  # True: the bucket had no outcomes yet and the pooled posteriors were used

    def as_dict(self) -> dict[str, Any]:
        return {
            "contact_id": self.contact_id,
            "action": self.action,
            "propensity": self.propensity,
            "policy": self.policy,
            "context": self.context,
            "posterior": self.posterior,
            "posterior_source": "pooled" if self.pooled else "bucket",
        }


class ThompsonRecommender:
    """Beta posteriors per (bucket, action), updated online as outcomes are recorded. Thread-safe."""

    def __init__(self, actions: Iterable[str] = ACTIONS, seed: int | None = None):
        self.actions = tuple(actions)
        self._index = {a: i for i, a in enumerate(self.actions)}
        self._lock = threading.Lock()
        # bucket -> array[len(actions), 3] of (alpha gain, beta gain, observations); prior added on read
        self._counts: dict[str, np.ndarray] = {}
        self._pooled = np.zeros((len(self.actions), 3))
        self._rng = np.random.default_rng(seed)
        self.observations = 0
        # P(each action wins the draw) depends only on the posterior, not on one request's draw: compute it
        # once per posterior state (Monte Carlo) and reuse it until an outcome changes that posterior.
        self._propensity_cache: dict[bytes, np.ndarray] = {}

    def observe(self, action: str, reward: float, context: Mapping[str, Any] | str | None) -> bool:
        """Learn from one outcome; returns False (and learns nothing) for an unknown action or bad reward."""
        i = self._index.get(action)
        if i is None:
            return False
        try:
            r = float(reward)
        except (TypeError, ValueError):
            return False
        if not 0.0 <= r <= 1.0:
            return False
        if isinstance(context, str):  # the warehouse action_log keeps context as a JSON string
            try:
                context = json.loads(context)
            except ValueError:
                context = {}
        bucket = context_bucket(context if isinstance(context, Mapping) else None)
        with self._lock:
            counts = self._counts.get(bucket)
            if counts is None:
                counts = self._counts[bucket] = np.zeros((len(self.actions), 3))
            counts[i] += (r, 1.0 - r, 1.0)
            self._pooled[i] += (r, 1.0 - r, 1.0)
            self.observations += 1
            if len(self._propensity_cache) > 10_000:
                self._propensity_cache.clear()
        return True

    def observe_record(self, record: Mapping[str, Any]) -> bool:
        return self.observe(record.get("action"), record.get("reward"), record.get("context"))

    def posteriors(self, bucket: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
        with self._lock:
            counts = self._counts.get(bucket)
            pooled = counts is None or counts[:, 2].sum() == 0
            source = (self._pooled if pooled else counts).copy()
        return source[:, 0] + PRIOR[0], source[:, 1] + PRIOR[1], source[:, 2], pooled

    def action_probabilities(self, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """P(Thompson sampling picks each action) under these posteriors (Monte Carlo, cached)."""
        key = alpha.tobytes() + beta.tobytes()
        with self._lock:
            cached = self._propensity_cache.get(key)
            if cached is not None:
                return cached
            sims = self._rng.beta(alpha, beta, size=(PROPENSITY_DRAWS, len(self.actions)))
        wins = np.bincount(np.argmax(sims, axis=1), minlength=len(self.actions)) / PROPENSITY_DRAWS
        # Never log a propensity of exactly 0: off-policy weights divide by it.
        wins = np.maximum(wins, 1.0 / PROPENSITY_DRAWS)
        with self._lock:
            self._propensity_cache[key] = wins
        return wins

    def recommend(self, contact_id: str, context: dict[str, Any]) -> Recommendation:
        bucket = context_bucket(context)
        alpha, beta, n, pooled = self.posteriors(bucket)
        with self._lock:  # numpy Generators are not thread-safe
            draws = self._rng.beta(alpha, beta)
        chosen = int(np.argmax(draws))
        propensity = float(self.action_probabilities(alpha, beta)[chosen])
        posterior = {
            a: {
                "alpha": float(alpha[i]),
                "beta": float(beta[i]),
                "mean": float(alpha[i] / (alpha[i] + beta[i])),
                "draw": float(draws[i]),
                "observations": int(n[i]),
            }
            for i, a in enumerate(self.actions)
        }
        return Recommendation(
            contact_id=contact_id,
            action=self.actions[chosen],
            propensity=round(propensity, 4),
            policy=POLICY_NAME,
            context={**context, "bucket": bucket},
            posterior=posterior,
            pooled=pooled,
        )

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {"policy": POLICY_NAME, "observations": self.observations, "buckets": len(self._counts)}
