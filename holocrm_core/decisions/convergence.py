"""The convergence engine: one decision (with its confidence and propensity) out of distributions over actions.

Every decision maker in HoloCRM (the recommendation policies, the RL outreach policy) produces, per context, a
distribution over the actions; this module collapses it into the one action taken, by a named strategy:

- ``ARGMAX``: the most probable action (ties broken at random, so the propensity is 1 / number tied);
- ``EPSILON_GREEDY``: the argmax with probability 1 - epsilon, else a uniformly random action;
- ``SOFTMAX``: sample from p ** (1 / temperature), renormalised (temperature 1 = sample p, -> 0 = argmax);
- ``BAYESIAN_BLEND``: several policies' distributions mixed with posterior weights (normalised), then sampled;
- ``PURE_THOMPSON``: sample from the distribution itself. For a Thompson policy whose distribution is the
  probability that each action wins the posterior draw, this is Thompson sampling exactly.

The propensity is the probability the chosen action had under the distribution actually sampled from, which
is what off-policy evaluation divides by; the confidence is the probability mass of the chosen action under
the input (blended) distribution. Written here rather than taken from a library: the bandit libraries
(mabwiser, vowpalwabbit) each decide inside their own policy classes and expose no such shared collapse step
for an externally computed distribution (the RL policy's, a blend of policies).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np


class Strategy(str, Enum):
    ARGMAX = "argmax"
    EPSILON_GREEDY = "epsilon_greedy"
    SOFTMAX = "softmax"
    BAYESIAN_BLEND = "bayesian_blend"
    PURE_THOMPSON = "pure_thompson"


@dataclass(frozen=True)
class Decisions:
    """One decision per context: chosen action index, its propensity and confidence, and the distribution."""

    actions: np.ndarray  # (n,) int
    propensity: np.ndarray  # (n,) probability the chosen action had of being chosen
    confidence: np.ndarray  # (n,) mass of the chosen action in the input distribution
    distribution: np.ndarray | None  # (n, k) the distribution sampled from (None: a policy drew directly)

    def __len__(self) -> int:
        return len(self.actions)


def normalise(p: np.ndarray) -> np.ndarray:
    """Rows clipped at 0 and scaled to sum 1 (a row of zeros becomes uniform)."""
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, None)
    if p.ndim == 1:
        p = p[None, :]
    total = p.sum(axis=1, keepdims=True)
    uniform = np.full_like(p, 1.0 / p.shape[1])
    return np.where(total > 0, p / np.where(total > 0, total, 1.0), uniform)


def argmax_distribution(values: np.ndarray) -> np.ndarray:
    """One-hot of each row's maximum, split evenly among ties (the distribution of a random tie-break)."""
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    top = values >= values.max(axis=1, keepdims=True) - 1e-12
    return top / top.sum(axis=1, keepdims=True)


def sample_rows(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One category per row of a (n, k) probability matrix, vectorised (inverse CDF)."""
    cdf = np.cumsum(p, axis=1)
    u = rng.random((len(p), 1)) * cdf[:, -1:]
    return np.minimum((u >= cdf).sum(axis=1), p.shape[1] - 1)


class ConvergenceEngine:
    """Collapse distributions over actions into decisions by ``strategy``; deterministic under ``seed``."""

    def __init__(
        self,
        strategy: Strategy | str = Strategy.PURE_THOMPSON,
        epsilon: float = 0.1,
        temperature: float = 1.0,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
    ):
        self.strategy = Strategy(strategy)
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.epsilon, self.temperature = float(epsilon), float(temperature)
        self.rng = rng if rng is not None else np.random.default_rng(seed)

    def sampling_distribution(
        self, distribution: np.ndarray | Sequence[np.ndarray], weights: Sequence[float] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(input distribution after blending, distribution the decision is sampled from)."""
        if self.strategy is Strategy.BAYESIAN_BLEND:
            p = blend(distribution, weights)
        else:
            p = normalise(distribution)
        k = p.shape[1]
        if self.strategy is Strategy.ARGMAX:
            q = argmax_distribution(p)
        elif self.strategy is Strategy.EPSILON_GREEDY:
            q = (1.0 - self.epsilon) * argmax_distribution(p) + self.epsilon / k
        elif self.strategy is Strategy.SOFTMAX:
            logp = np.log(np.clip(p, 1e-300, None)) / self.temperature
            q = normalise(np.exp(logp - logp.max(axis=1, keepdims=True)))
        else:  # PURE_THOMPSON and BAYESIAN_BLEND sample the (blended) distribution itself
            q = p
        return p, q

    def decide(
        self, distribution: np.ndarray | Sequence[np.ndarray], weights: Sequence[float] | None = None
    ) -> Decisions:
        p, q = self.sampling_distribution(distribution, weights)
        chosen = sample_rows(q, self.rng)
        rows = np.arange(len(q))
        return Decisions(chosen, q[rows, chosen], p[rows, chosen], q)


def blend(
    distributions: np.ndarray | Sequence[np.ndarray], weights: Sequence[float] | None = None
) -> np.ndarray:
    """Posterior-weighted mixture of several policies' (n, k) distributions (weights normalised; default equal)."""
    if isinstance(distributions, np.ndarray) and distributions.ndim == 2:
        distributions = [distributions]
    stack = np.stack([normalise(d) for d in distributions])
    w = np.ones(len(stack)) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(w) != len(stack) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"need one non-negative weight per distribution ({len(stack)}), with a positive sum")
    return np.tensordot(w / w.sum(), stack, axes=1)
