"""The PPO outreach champion in serving: the gated policy answers for the contacts and actions it covers.

``load_outreach_champion`` returns the ``holocrm_outreach_policy`` version behind ``champion`` only when it
carries ``holocrm.gate=passed`` (the registry's contract), else None. The policy was trained on episodes of
the outreach world, so it covers open contacts (lead, qualified, customer) and the world's four actions;
``observations`` builds its input from a contact's decision context the way ``OutreachWorld.observe`` does at
the start of an episode (no touch in the episode yet, a mean deal, the whole horizon ahead; touches of the
last 7 / 30 days counted as emails, the one touch type the warehouse context does not split), the industry
in the slots of the vocabulary the policy was trained with (logged with it). A policy logged before that
vocabulary was has none: it is still served, with every industry as other / unknown (it does not cover the
contact's industry), and its ``reason`` says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from holocrm_core.rl.world import (
    ACTIONS,
    LIFECYCLES,
    MAX_DAYS,
    MAX_INDUSTRIES,
    OBS_HIGH,
    SENIORITIES,
    SIZE_BANDS,
    check_industries,
    codes,
    industry_codes,
    lifecycle_codes,
)

OUTREACH_MODEL = "holocrm_outreach_policy"
COVERED_STATUSES = ("lead", "qualified", "customer")


def observations(contexts: pl.DataFrame, industries: tuple[str, ...]) -> np.ndarray:
    """(n, OBS_DIM) policy input for decision contexts, as at the start of an outreach episode, with the
    industry in the slots of ``industries`` (the policy's vocabulary)."""
    n = contexts.height
    rows = np.arange(n)

    def column(name: str) -> pl.Series:
        return contexts[name] if name in contexts.columns else pl.Series(name, [None] * n, dtype=pl.String)

    def number(name: str, default: float) -> np.ndarray:
        if name not in contexts.columns:
            return np.full(n, default)
        return contexts[name].cast(pl.Float64, strict=False).fill_null(default).fill_nan(default).to_numpy()

    parts = []
    for code, width in (
        (codes(column("seniority"), SENIORITIES), len(SENIORITIES) + 1),
        (industry_codes(column("industry"), industries), MAX_INDUSTRIES + 1),
        (codes(column("size_band"), SIZE_BANDS), len(SIZE_BANDS) + 1),
        (lifecycle_codes(column("lifecycle_status")), len(LIFECYCLES)),
    ):
        one_hot = np.zeros((n, width), np.float32)
        one_hot[rows, code] = 1.0
        parts.append(one_hot)
    d = np.clip(number("days_since_last_touch", 30.0), 0, MAX_DAYS).astype(np.float32)
    t7, t30 = number("touches_7d", 0.0), number("touches_30d", 0.0)
    zeros = np.zeros(n)
    last = np.zeros((n, 4), np.float32)
    last[:, 0] = 1.0  # no touch in this episode yet
    parts += [
        np.stack([t7, zeros, zeros], axis=1) / 3.0,
        np.stack([t30, zeros, zeros], axis=1) / 10.0,
        np.stack([np.minimum(d / 30.0, 4.0), np.log1p(d) / np.log1p(MAX_DAYS)], axis=1),
        last,
        np.stack([np.nan_to_num(number("lead_score", 0.5), nan=0.5), np.full(n, 0.5), np.ones(n)], axis=1),
    ]
    return np.clip(np.concatenate(parts, axis=1, dtype=np.float32), 0.0, OBS_HIGH)


@dataclass
class OutreachChampion:
    """The gated PPO policy and its registered version; ``decide`` answers for a frame of contexts."""

    model: Any = field(repr=False)  # the pyfunc (holocrm_core.rl.tracking.OutreachPolicyModel)
    version: str
    reason: str
    actions: tuple[str, ...] = ACTIONS
    statuses: tuple[str, ...] = COVERED_STATUSES  # the lifecycle stages its episodes cover
    industries: tuple[str, ...] | None = None  # its input's industry vocabulary; None: logged without one

    def decide(self, contexts: pl.DataFrame) -> pd.DataFrame:
        """p_<action> columns, the chosen action and its propensity per context."""
        obs = observations(contexts, self.industries or ())
        frame = pd.DataFrame(obs, columns=[f"obs_{i}" for i in range(obs.shape[1])])
        return self.model.predict(frame)


def load_outreach_champion(model_name: str = OUTREACH_MODEL) -> OutreachChampion | None:
    """The gated outreach champion, or None (none registered, or its gate did not pass)."""
    from holocrm_core.registry import load_champion

    loaded = load_champion(model_name)
    if loaded is None:
        return None
    model, info = loaded
    tags = info.tags or {}
    reason = tags.get("holocrm.gate_reason") or tags.get("promotion_reason") or "passed its gate"
    industries = policy_industries(model, tags)
    if industries is None:
        reason += "; logged without its industry vocabulary, so every industry counts as unknown"
    return OutreachChampion(model, str(info.version), reason, industries=industries)


def policy_industries(model, tags: dict[str, str]) -> tuple[str, ...] | None:
    """The industry vocabulary logged with a policy: its pyfunc artifact, else its version tag, else None."""
    from holocrm_core.rl.tracking import INDUSTRIES_TAG

    unwrap = getattr(model, "unwrap_python_model", None)
    logged = getattr(unwrap(), "industries", None) if unwrap is not None else None
    if logged is None and INDUSTRIES_TAG in tags:
        logged = json.loads(tags[INDUSTRIES_TAG])
    return check_industries(logged) if logged is not None else None
