"""Next-best-action for contacts: the policy's decision with priority, expected success, uncertainty, reasons.

``open_contact_contexts`` builds the decision context of every open contact (not disqualified) as of the
newest activity in the warehouse, with the current lead score and band when scored_leads exists.
``recommend`` decides for a batch (vectorised; one call for 100k contacts) through the convergence engine
and answers, per contact: the action, its propensity (the probability it had of being chosen, logged with
the outcome for off-policy evaluation), the posterior expected success rate and its uncertainty, the number
of outcomes that action has been learned from, a priority, and the reasoning in words (for the contextual
policy: the context features that most favour the chosen action over the runner-up).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from holocrm_core.decisions.action_log import CONTEXT_FROM_WAREHOUSE
from holocrm_core.decisions.actions import touch_features
from holocrm_core.decisions.convergence import Strategy
from holocrm_core.decisions.policies import ContextualThompson

PRIORITY_THRESHOLDS = (0.25, 0.12)  # expected success rate: high at or above the first, medium the second
OPEN_STATUSES = ("lead", "qualified", "customer")


def open_contact_contexts(
    contacts: pl.DataFrame,
    companies: pl.DataFrame | None,
    activities: pl.DataFrame | None,
    scored_leads: pl.DataFrame | None = None,
    as_of: datetime | None = None,
) -> pl.DataFrame:
    """contact_id + decision context of every open contact, as of ``as_of`` (default: the newest activity)."""
    people = contacts.filter(
        pl.col("lifecycle_status").is_in(OPEN_STATUSES) | pl.col("lifecycle_status").is_null()
    )
    people = people.select("contact_id", "seniority", "lifecycle_status", "company_id")
    if companies is not None and companies.height:
        people = people.join(
            companies.select("company_id", "industry", "size_band"), on="company_id", how="left"
        )
    else:
        people = people.with_columns(industry=pl.lit(None, pl.String), size_band=pl.lit(None, pl.String))
    if as_of is None:
        as_of = activities["occurred_at"].max() if activities is not None and activities.height else None
    n = people.height
    if as_of is not None and activities is not None and activities.height:
        index = {c: i for i, c in enumerate(people["contact_id"].to_list())}
        acts = activities.select("contact_id", pl.col("occurred_at").dt.epoch("s").alias("t")).drop_nulls()
        owner = np.array([index.get(c, -1) for c in acts["contact_id"].to_list()], dtype=np.int64)
        keep = owner >= 0
        at = int(as_of.timestamp()) + 1  # "before as_of" includes the newest activity itself
        days, t7, t30 = touch_features(owner[keep], acts["t"].to_numpy()[keep], np.arange(n), np.full(n, at))
    else:
        days, t7, t30 = np.full(n, np.nan), np.zeros(n, int), np.zeros(n, int)
    frame = people.drop("company_id").with_columns(
        pl.Series("days_since_last_touch", days).fill_nan(None),
        pl.Series("touches_7d", t7),
        pl.Series("touches_30d", t30),
    )
    if scored_leads is not None and {"contact_id", "score"} <= set(scored_leads.columns):
        bands = scored_leads.select(
            "contact_id",
            pl.col("score").alias("lead_score"),
            (pl.col("band") if "band" in scored_leads.columns else pl.lit(None, pl.String)).alias(
                "lead_band"
            ),
        )
        frame = frame.join(bands, on="contact_id", how="left")
    else:
        frame = frame.with_columns(lead_score=pl.lit(None, pl.Float64), lead_band=pl.lit(None, pl.String))
    return frame.select("contact_id", *CONTEXT_FROM_WAREHOUSE, "lead_score", "lead_band")


def _percent(x: pl.Expr) -> pl.Expr:
    return (x * 100).round(0).cast(pl.Int64).cast(pl.String) + "%"


def _factor_names(policy, features: np.ndarray, chosen: np.ndarray, runner: np.ndarray) -> list[str | None]:
    """The active context feature that most favours the chosen action over the runner-up (logistic TS)."""
    if not isinstance(policy, ContextualThompson):
        return [None] * len(chosen)
    diff = policy.arms.mean[chosen] - policy.arms.mean[runner]  # (n, d)
    contribution = features * diff
    contribution[:, 0] = -np.inf  # the bias is not a reason
    contribution[features == 0] = -np.inf
    best = contribution.argmax(axis=1)
    names = np.asarray(policy.encoder.feature_names, dtype=object)[best]
    return [
        n if np.isfinite(c) and c > 0 else None
        for n, c in zip(names, contribution[np.arange(len(best)), best])
    ]


def recommend(
    policy,
    contexts: pl.DataFrame,
    strategy: Strategy | str | None = None,
    version: str | None = None,
    **engine_options: float,
) -> pl.DataFrame:
    """One recommendation per row of ``contexts`` (contact_id + context columns)."""
    encoded = policy.encoder.encode(contexts)
    if hasattr(policy, "choose_from_scores") and strategy in (None, Strategy.PURE_THOMPSON, "pure_thompson"):
        scores = policy.score_posterior(encoded)  # the costly part, shared by the decision and its rates
        decisions, (rate, sd) = policy.choose_from_scores(*scores), policy.rates_from_scores(*scores)
    else:
        decisions = policy.choose(encoded, strategy, **engine_options)
        rate, sd = policy.expected_reward(encoded)
    rows = np.arange(len(encoded))
    chosen = decisions.actions
    masked = rate.copy()
    masked[rows, chosen] = -np.inf
    runner = masked.argmax(axis=1) if rate.shape[1] > 1 else chosen
    if hasattr(policy, "trials"):
        trials = policy.trials(encoded)[rows, chosen]
    else:
        trials = np.asarray(policy.arms.counts)[chosen]
    names = np.asarray(policy.actions.names, dtype=object)
    out = pl.DataFrame(
        {
            "contact_id": contexts["contact_id"] if "contact_id" in contexts.columns else [None] * len(rows),
            "action": names[chosen].astype(str),
            "propensity": np.round(decisions.propensity, 4),
            "confidence": np.round(decisions.confidence, 4),
            "expected_success_rate": np.round(rate[rows, chosen], 4),
            "uncertainty": np.round(sd[rows, chosen], 4),
            "trials": np.round(trials).astype(np.int64),
            "runner_up": names[runner].astype(str),
            "runner_up_success_rate": np.round(rate[rows, runner], 4),
            "factor": pl.Series(_factor_names(policy, encoded.features, chosen, runner), dtype=pl.String),
        }
    )
    high, medium = PRIORITY_THRESHOLDS
    reasoning = (
        pl.col("action")
        + " has a "
        + _percent(pl.col("expected_success_rate"))
        + " expected success rate (+/- "
        + _percent(pl.col("uncertainty"))
        + ", learned from "
        + pl.col("trials").cast(pl.String)
        + " outcomes) against "
        + _percent(pl.col("runner_up_success_rate"))
        + " for "
        + pl.col("runner_up")
        + pl.when(pl.col("factor").is_not_null())
        .then(pl.lit("; the strongest reason: ") + pl.col("factor"))
        .otherwise(pl.lit(""))
        + "; chosen with probability "
        + pl.col("propensity").round(2).cast(pl.String)
    )
    return out.with_columns(
        priority=pl.when(pl.col("expected_success_rate") >= high)
        .then(pl.lit("high"))
        .when(pl.col("expected_success_rate") >= medium)
        .then(pl.lit("medium"))
        .otherwise(pl.lit("low")),
        reasoning=reasoning,
        policy=pl.lit(policy.name),
        policy_version=pl.lit(version, pl.String),
    ).drop("factor")


def recommendation_record(row: dict[str, Any], posterior: dict[str, Any] | None = None) -> dict[str, Any]:
    """One recommendation row as the API answers it."""
    keys = (
        "contact_id",
        "action",
        "priority",
        "expected_success_rate",
        "uncertainty",
        "trials",
        "reasoning",
        "propensity",
        "confidence",
        "runner_up",
        "policy",
        "policy_version",
    )
    return {**{k: row.get(k) for k in keys}, **({"posterior": posterior} if posterior else {})}
