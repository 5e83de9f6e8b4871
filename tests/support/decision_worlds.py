"""True worlds for evaluating decision policies: contexts with a known best action, never seen by the product.

Two worlds, each a frame of contexts and the TRUE success probability of every action in each:

- the generated world (``sample_contexts`` / ``true_probabilities``): contexts like the sample generator's
  contacts, rewards from the generator's hidden response model (``synth.response``); ``drifted`` is the same
  world after a change in what works (the action effects rotate: email answers like call used to, call like
  proposal, proposal like email);
- the foreign-attribute world (``foreign_contexts`` / ``foreign_probabilities``): contacts whose attributes
  the generator does not know, arriving as an export's custom fields (``cf_region``, ``cf_channel``,
  ``cf_tier``, ``cf_fleet_size``), with a response that depends on them and not on anything the generator
  models.

Only tests and benchmarks import this module (``tests/core/test_layering.py`` says so for ``synth``).
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


# -- the foreign-attribute world -------------------------------------------------------------------------
REGIONS = ("nordics", "dach", "benelux", "iberia", "baltics")
CHANNELS = ("partner", "webinar", "cold_list", "referral")
TIERS = ("gold", "silver", "bronze")
# Logit effect per value on (email, call, proposal, wait): the best action turns on these attributes only.
_BASE = np.array([-1.8, -2.0, -2.3, -2.6])
_REGION = {
    "nordics": [0.6, -0.4, 0.0, 0.0],
    "dach": [-0.3, 0.2, 0.7, 0.0],
    "benelux": [0.0, 0.6, -0.2, 0.0],
    "iberia": [-0.2, 0.8, -0.3, 0.0],
    "baltics": [0.4, -0.2, -0.4, 0.5],
}
_CHANNEL = {
    "partner": [-0.4, 0.3, 0.8, 0.0],
    "webinar": [0.7, -0.2, -0.3, 0.0],
    "cold_list": [-0.2, -0.4, -0.8, 0.6],
    "referral": [0.0, 0.7, 0.3, 0.0],
}
_TIER = {"gold": [-0.3, 0.2, 0.6, 0.0], "silver": [0.1, 0.2, 0.0, 0.0], "bronze": [0.4, -0.3, -0.5, 0.2]}


def foreign_contexts(n: int, rng: np.random.Generator) -> pl.DataFrame:
    """``n`` open leads described by custom fields only (the generator's columns are absent or noise)."""
    return pl.DataFrame(
        {
            "cf_region": np.asarray(REGIONS)[rng.integers(0, len(REGIONS), n)],
            "cf_channel": np.asarray(CHANNELS)[rng.choice(len(CHANNELS), n, p=(0.3, 0.3, 0.25, 0.15))],
            "cf_tier": np.asarray(TIERS)[rng.choice(len(TIERS), n, p=(0.2, 0.35, 0.45))],
            "cf_fleet_size": np.round(rng.lognormal(3.0, 1.0, n)),
            "cf_account_manager": [f"am-{i}" for i in rng.integers(0, 400, n)],  # high cardinality: noise
        }
    )


def foreign_probabilities(contexts: pl.DataFrame) -> np.ndarray:
    """(n, 4) true success probability of every action in the foreign-attribute world."""

    def effect(column: str, table: dict[str, list[float]]) -> np.ndarray:
        rows = np.asarray([table[v] for v in table])
        index = {v: i for i, v in enumerate(table)}
        return rows[[index[v] for v in contexts[column].to_list()]]

    fleet = np.log1p(contexts["cf_fleet_size"].to_numpy().astype(float))
    big = (fleet > np.log1p(40.0))[:, None] * np.array([-0.3, 0.1, 0.5, 0.0])
    logit = (
        _BASE[None, :]
        + effect("cf_region", _REGION)
        + effect("cf_channel", _CHANNEL)
        + effect("cf_tier", _TIER)
    )
    return 1.0 / (1.0 + np.exp(-(logit + big)))


__all__ = [
    "ACTIONS",
    "foreign_contexts",
    "foreign_probabilities",
    "sample_contexts",
    "true_probabilities",
]
