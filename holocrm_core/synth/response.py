"""True response probability of an outreach action in a context: the hidden reward model of the sample world.

A contextual bandit or an RL policy should learn that the best action depends on the context: a
proposal to a qualified C-level contact at an enterprise, a call to a director who has gone quiet, an email
to an individual contributor at a small company, and waiting when the contact was touched a day ago.
The function is pure (no randomness), vectorised, and is the ground truth that simulators draw from.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from holocrm_core.synth.vocabulary import INDUSTRIES, SENIORITIES

ACTIONS = ("email", "call", "proposal", "wait")
LIFECYCLES = ("lead", "qualified", "customer", "disqualified")
SIZE_BANDS = ("smb", "mid_market", "enterprise")
CONTEXT_COLUMNS = ("seniority", "industry", "lifecycle_status", "days_since_last_touch", "size_band")

_BASE = np.array([-1.9, -2.2, -2.6, -3.2])
_SENIORITY = {  # email, call, proposal, wait
    "c_level": [-0.7, -0.1, 0.6, 0.0],
    "vp": [-0.3, 0.3, 0.4, 0.0],
    "director": [0.0, 0.6, 0.0, 0.0],
    "manager": [0.4, 0.2, -0.2, 0.0],
    "individual": [0.7, -0.1, -0.7, 0.0],
}
_LIFECYCLE = {
    "lead": [0.2, 0.2, -1.0, 0.0],
    "qualified": [-0.1, 0.2, 0.9, 0.0],
    "customer": [0.5, -0.1, 0.1, 0.3],
    "disqualified": [-0.9, -1.0, -1.3, 0.3],
}
_SIZE = {
    "smb": [0.3, -0.1, -0.3, 0.0],
    "mid_market": [0.0, 0.3, 0.1, 0.0],
    "enterprise": [-0.3, 0.1, 0.4, 0.0],
}
# Industry preferences: regulated buyers answer the phone less and written proposals more.
_INDUSTRY = {
    "financial services": [0.1, -0.2, 0.3, 0.0],
    "healthcare": [-0.1, 0.3, 0.0, 0.0],
    "retail": [0.3, 0.0, -0.2, 0.0],
    "manufacturing": [-0.2, 0.4, 0.0, 0.0],
    "software": [0.4, -0.2, 0.1, 0.0],
    "logistics": [0.0, 0.3, -0.1, 0.0],
    "education": [0.2, -0.1, -0.2, 0.1],
    "energy": [-0.1, 0.2, 0.2, 0.0],
    "media": [0.3, 0.1, -0.1, 0.0],
    "real estate": [0.0, 0.3, 0.0, 0.0],
    "telecom": [0.1, 0.0, 0.1, 0.0],
    "government": [0.0, -0.3, 0.4, 0.1],
}


def _table(mapping: dict[str, list[float]], keys: tuple[str, ...] | list[str]) -> np.ndarray:
    # Last row: an unknown value contributes nothing.
    return np.array([mapping[k] for k in keys] + [[0.0, 0.0, 0.0, 0.0]])


_SEN_T = _table(_SENIORITY, SENIORITIES)
_LIFE_T = _table(_LIFECYCLE, LIFECYCLES)
_SIZE_T = _table(_SIZE, SIZE_BANDS)
_IND_T = _table(_INDUSTRY, INDUSTRIES)


def _codes(values: Any, vocabulary: tuple[str, ...] | list[str]) -> np.ndarray:
    lookup = {v: i for i, v in enumerate(vocabulary)}
    series = (
        pl.Series(values, dtype=pl.String) if not isinstance(values, pl.Series) else values.cast(pl.String)
    )
    return series.replace_strict(lookup, default=len(vocabulary), return_dtype=pl.Int64).to_numpy()


def _recency_effect(days: np.ndarray) -> np.ndarray:
    """Per action: how the days since the last touch change the response (n, 4)."""
    d = np.clip(np.nan_to_num(days.astype(np.float64), nan=30.0), 0.0, 3650.0)
    very_recent = np.exp(-d / 2.0)  # ~1 the day after a touch, ~0 after a week
    sweet = np.exp(-((np.log1p(d) - np.log1p(10.0)) ** 2) / 0.8)  # peaks around 10 days
    silence = np.clip((d - 14.0) / 60.0, 0.0, 1.0)  # grows after two weeks of silence
    email = 0.5 * sweet - 0.6 * very_recent - 0.2 * silence
    call = 0.7 * silence - 0.6 * very_recent
    proposal = 0.5 * (d <= 14) - 0.6 * silence - 0.4 * very_recent
    wait = 1.6 * very_recent - 0.6 * silence
    return np.stack([email, call, proposal, wait], axis=1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def action_response_probability(context: Mapping[str, Any] | pl.DataFrame) -> Any:
    """True probability that the contact responds positively to each action in ``ACTIONS``.

    ``context`` holds ``seniority``, ``industry``, ``lifecycle_status``, ``days_since_last_touch`` and
    ``size_band`` (unknown or missing values count as neutral). A dict of scalars returns
    ``{action: probability}``; a polars frame (or a dict of equal-length sequences) returns a float
    array of shape (rows, 4) in ``ACTIONS`` order.
    """
    scalar = isinstance(context, Mapping) and not any(
        isinstance(v, (list, tuple, np.ndarray, pl.Series)) for v in context.values()
    )
    if isinstance(context, pl.DataFrame):
        frame = context
    elif scalar:
        frame = pl.DataFrame({k: [context.get(k)] for k in CONTEXT_COLUMNS}, strict=False)
    else:
        frame = pl.DataFrame({k: context.get(k) for k in CONTEXT_COLUMNS if k in context}, strict=False)
    n = frame.height

    def column(name: str) -> Any:
        return frame[name] if name in frame.columns else pl.Series([None] * n, dtype=pl.String)

    days = (
        frame["days_since_last_touch"].cast(pl.Float64).fill_null(30.0).to_numpy()
        if "days_since_last_touch" in frame.columns
        else np.full(n, 30.0)
    )
    logit = (
        _BASE[None, :]
        + _SEN_T[_codes(column("seniority"), SENIORITIES)]
        + _LIFE_T[_codes(column("lifecycle_status"), LIFECYCLES)]
        + _SIZE_T[_codes(column("size_band"), SIZE_BANDS)]
        + _IND_T[_codes(column("industry"), INDUSTRIES)]
        + _recency_effect(days)
    )
    probs = _sigmoid(logit)
    if scalar:
        return {a: float(probs[0, i]) for i, a in enumerate(ACTIONS)}
    return probs


def action_response_grid() -> pl.DataFrame:
    """Every context combination (days in buckets) x action with its true probability (the truth table)."""
    days = [0, 1, 3, 7, 14, 30, 60, 120]
    grid = (
        pl.DataFrame({"seniority": SENIORITIES})
        .join(pl.DataFrame({"industry": INDUSTRIES}), how="cross")
        .join(pl.DataFrame({"lifecycle_status": list(LIFECYCLES)}), how="cross")
        .join(pl.DataFrame({"days_since_last_touch": days}), how="cross")
        .join(pl.DataFrame({"size_band": list(SIZE_BANDS)}), how="cross")
    )
    probs = action_response_probability(grid)
    best = np.array(ACTIONS)[probs.argmax(axis=1)]
    wide = grid.with_columns(
        *[pl.Series(f"p_{a}", probs[:, i]) for i, a in enumerate(ACTIONS)], pl.Series("best_action", best)
    )
    return (
        wide.unpivot(
            index=[*CONTEXT_COLUMNS, "best_action"],
            on=[f"p_{a}" for a in ACTIONS],
            variable_name="action",
            value_name="p_response",
        )
        .with_columns(pl.col("action").str.strip_prefix("p_"))
        .select(*CONTEXT_COLUMNS, "action", "p_response", "best_action")
    )
