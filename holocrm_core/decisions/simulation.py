"""A contextual bandit world for evaluating policies: contexts like the CRM's, rewards from the true model.

Contexts are drawn like the sample generator's contacts (seniority, industry, lifecycle status, size band,
days since the last touch, recent touches); the reward of an action is a Bernoulli draw from
``synth.response.action_response_probability``, so the best action of every context and the regret of every
decision are known exactly. ``drifted_probabilities`` is the same world after a change in what works
(the action effects rotate: email answers like call used to, call like proposal, proposal like email).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from holocrm_core.synth.response import ACTIONS, LIFECYCLES, SIZE_BANDS, action_response_probability
from holocrm_core.synth.vocabulary import INDUSTRIES, SENIORITIES

SENIORITY_SHARE = (0.08, 0.12, 0.22, 0.28, 0.30)
LIFECYCLE_SHARE = (0.45, 0.25, 0.20, 0.10)
SIZE_SHARE = (0.5, 0.3, 0.2)
DRIFT_ROTATION = (1, 2, 0, 3)


def sample_contexts(n: int, rng: np.random.Generator) -> pl.DataFrame:
    """``n`` raw decision contexts with the generator's vocabularies."""
    days = np.round(rng.lognormal(mean=2.3, sigma=1.1, size=n), 1)
    days = np.where(
        rng.random(n) < 0.12, rng.uniform(0.0, 2.0, n).round(1), days
    )  # touched in the last 2 days
    t30 = rng.poisson(np.clip(30.0 / np.maximum(days, 1.0), 0.3, 6.0))
    return pl.DataFrame(
        {
            "seniority": np.asarray(SENIORITIES)[rng.choice(len(SENIORITIES), n, p=SENIORITY_SHARE)],
            "industry": np.asarray(INDUSTRIES)[rng.integers(0, len(INDUSTRIES), n)],
            "lifecycle_status": np.asarray(LIFECYCLES)[rng.choice(len(LIFECYCLES), n, p=LIFECYCLE_SHARE)],
            "size_band": np.asarray(SIZE_BANDS)[rng.choice(len(SIZE_BANDS), n, p=SIZE_SHARE)],
            "days_since_last_touch": days,
            "touches_7d": np.minimum(t30, rng.poisson(np.where(days <= 7, 1.5, 0.0))),
            "touches_30d": t30,
        }
    )


def true_probabilities(contexts: pl.DataFrame, drifted: bool = False) -> np.ndarray:
    """(n, 4) true success probability of every action; after the drift when ``drifted``."""
    p = action_response_probability(contexts)
    return p[:, list(DRIFT_ROTATION)] if drifted else p


__all__ = ["ACTIONS", "sample_contexts", "true_probabilities"]
