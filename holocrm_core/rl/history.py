"""Logged outreach history: every action a known logging policy took, its context, propensity and outcome.

The simulator is fitted from such a log and the off-policy check reads it. On generated data the log is
drawn here by playing the reps' logging policy (propensities known: ``holocrm_core.rl.truth``) in the true world
over the export's contacts: the generator's "historical actions". A log recorded in production has the
same columns (``LOG_COLUMNS``); ``obs_*`` hold the policy input at decision time so a candidate policy can
be scored on exactly what the logging policy saw.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from holocrm_core.rl.baselines import OutreachPolicy
from holocrm_core.rl.world import ACTIONS, OBS_DIM, EpisodeStarts, OutreachWorld, ResponseTable, WorldConfig

LOG_COLUMNS = [
    "episode",
    "step",
    "contact_id",
    "seniority",
    "industry",
    "lifecycle_status",
    "days_since_last_touch",
    "size_band",
    "touches_7d",
    "touches_30d",
    "lead_score",
    "action",
    "propensity",
    "responded",
    "reward",
    "return_to_go",
]


LOGGING_COLUMNS = [f"logging_{a}" for a in ACTIONS]  # the logging policy's whole distribution at the time


def obs_columns() -> list[str]:
    return [f"obs_{i}" for i in range(OBS_DIM)]


def record_history(
    table: ResponseTable,
    starts: EpisodeStarts,
    episodes: int,
    seed: int = 0,
    policy: OutreachPolicy | None = None,
    config: WorldConfig | None = None,
) -> pl.DataFrame:
    """Play ``policy`` (a known, stochastic logging policy) for ``episodes`` episodes and log every decision."""
    if policy is None:
        raise ValueError("record_history needs the logging policy whose propensities the log records")
    world = OutreachWorld(table, starts, episodes, config, seed=seed)
    world.reset(start_index=np.arange(episodes) % len(starts))
    rng = np.random.default_rng(seed + 7)
    active = np.ones(episodes, bool)
    chunks = []
    for step in range(world.config.horizon_days):
        rows = np.flatnonzero(active)
        if not len(rows):
            break
        probs = policy.probabilities(world)
        cumulative = probs.cumsum(axis=1)
        actions = np.minimum((rng.random((episodes, 1)) > cumulative).sum(axis=1), 3)
        contexts, obs = world.contexts(), world.observe()
        out = world.step(actions, active)
        chunk = contexts[rows].with_columns(
            pl.Series("episode", rows),
            pl.lit(step).alias("step"),
            pl.Series("contact_id", world.starts.contact_id[world.state.start[rows]].astype(str)),
            pl.Series("action", np.array(ACTIONS)[actions[rows]]),
            pl.Series("propensity", probs[rows, actions[rows]]),
            pl.Series("responded", out["responded"][rows]),
            pl.Series("reward", out["reward"][rows]),
        )
        chunks.append(
            pl.concat(
                [
                    chunk,
                    pl.DataFrame(probs[rows], schema=LOGGING_COLUMNS),
                    pl.DataFrame(obs[rows], schema=obs_columns()),
                ],
                how="horizontal",
            )
        )
        active &= ~out["done"]
    log = pl.concat(chunks)
    # What followed each decision in its episode (the logging policy's return from there on).
    log = log.sort(["episode", "step"]).with_columns(
        pl.col("reward").reverse().cum_sum().reverse().over("episode").alias("return_to_go")
    )
    return log.select(LOG_COLUMNS + LOGGING_COLUMNS + obs_columns())
