"""The action log: every outreach action with its context at that moment, its propensity and its outcome.

Two sources feed it: the export's outreach log (``<export>/outreach/*.csv``: action_id, contact_id,
occurred_at, action, policy, propensity, responded, window_days; the sample generator writes one) and the
actions recorded through the API (HOLOCRM_HOME/logs/actions.ndjson, reward given by the caller). Each row
gets the decision context as the warehouse knew it *before* the action: the contact's seniority and
lifecycle status, the company's industry and size band, days since the last activity and touches in the
last 7 / 30 days (from staged activities strictly before the action). The lead score is taken only from
what the API recorded at decision time: today's score of a contact is not what it was then. The lifecycle
status is the export's current one (exports carry no status history), which the sample generator's logging
policy used too.

Nothing is dropped silently: rows with an unknown contact, an action outside the action set or a reward
outside [0, 1] stay in the log with ``usable = False`` and a ``problem`` a person can act on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from holocrm_core.decisions.actions import DEFAULT_ACTIONS, touch_features
from holocrm_core.schema import CUSTOM_PREFIX

OUTREACH_DIR = "outreach"
LOG_COLUMNS = {
    "action_id": pl.String,
    "contact_id": pl.String,
    "occurred_at": pl.Datetime("us", "UTC"),
    "action": pl.String,
    "source": pl.String,
    "policy": pl.String,
    "propensity": pl.Float64,
    "reward": pl.Float64,
    "window_days": pl.Int64,
    "lead_score": pl.Float64,
    "lead_band": pl.String,
}
CONTEXT_FROM_WAREHOUSE = (
    "seniority",
    "industry",
    "lifecycle_status",
    "size_band",
    "days_since_last_touch",
    "touches_7d",
    "touches_30d",
)


LOG_BOOKKEEPING = (
    "action_id",
    "contact_id",
    "occurred_at",
    "action",
    "source",
    "policy",
    "propensity",
    "reward",
    "window_days",
    "usable",
    "problem",
)
COMPANY_PREFIX = "company_"


def context_columns(table: str, columns: list[str]) -> list[str]:
    """The columns of a staged table (``staged_contacts``, ``staged_companies``, ``staged_activities``) that
    a decision context reads (``contact_attributes``, the touch features): what a caller holding a lazy scan
    of the table needs to collect (at 1M contacts the activities with their texts are over 2 GB in memory,
    their ids and dates about 100 MB)."""
    wanted = {
        "staged_contacts": ("contact_id", "seniority", "lifecycle_status", "company_id"),
        "staged_companies": ("company_id", "industry", "size_band"),
        "staged_activities": ("contact_id", "occurred_at"),
    }.get(table)
    if wanted is None:
        raise ValueError(f"no decision context is read from {table!r}")
    custom = table != "staged_activities"
    return [c for c in columns if c in wanted or (custom and c.startswith(CUSTOM_PREFIX))]


def positions(keys: pl.Series, ids: pl.Series) -> np.ndarray:
    """The row of each of ``keys`` in ``ids`` (the last one where an id repeats), -1 where it is absent or
    null: a join, not a Python dict over millions of strings (about 1 GB at 1M contacts' 5M activities)."""
    if not len(keys):
        return np.zeros(0, dtype=np.int64)
    index = pl.DataFrame({"k": ids.cast(pl.String), "i": np.arange(len(ids), dtype=np.int64)}).unique(
        "k", keep="last"
    )
    found = pl.DataFrame({"k": keys.cast(pl.String)}).join(index, on="k", how="left", maintain_order="left")
    return found["i"].fill_null(-1).to_numpy().astype(np.int64, copy=False)


def contact_attributes(contacts: pl.DataFrame, companies: pl.DataFrame | None) -> pl.DataFrame:
    """contact_id + what the export says about each contact and its company, custom fields included.

    The contact's seniority and lifecycle status and its own ``cf_*`` fields; the company's industry, size
    band and ``cf_*`` fields (named ``company_cf_*``, so a field both carry stays two columns). These are the
    categorical and numeric columns the context encoder is fitted on: the export decides what a decision sees.
    """
    own = [c for c in ("seniority", "lifecycle_status", "company_id") if c in contacts.columns]
    custom = [c for c in contacts.columns if c.startswith(CUSTOM_PREFIX)]
    people = contacts.select("contact_id", *own, *custom)
    for column in ("seniority", "lifecycle_status", "company_id"):
        if column not in people.columns:
            people = people.with_columns(pl.lit(None, pl.String).alias(column))
    if companies is not None and companies.height:
        company_custom = [c for c in companies.columns if c.startswith(CUSTOM_PREFIX)]
        firm = companies.select(
            "company_id",
            *[pl.col(c) for c in ("industry", "size_band") if c in companies.columns],
            *[pl.col(c).alias(COMPANY_PREFIX + c) for c in company_custom],
        )
        people = people.join(firm, on="company_id", how="left")
    for column in ("industry", "size_band"):
        if column not in people.columns:
            people = people.with_columns(pl.lit(None, pl.String).alias(column))
    return people.drop("company_id")


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=LOG_COLUMNS)


def _utc(column: str) -> pl.Expr:
    return pl.col(column).str.to_datetime(time_zone="UTC", strict=False, time_unit="us")


def read_export_outreach(export_dir: str | Path | None) -> pl.DataFrame:
    """The export's outreach log (empty when the export has none)."""
    folder = Path(export_dir) / OUTREACH_DIR if export_dir else None
    files = sorted(folder.glob("*.csv")) if folder is not None and folder.is_dir() else []
    if not files:
        return _empty()
    raw = pl.concat([pl.read_csv(f, infer_schema=False) for f in files], how="diagonal_relaxed")
    return raw.select(
        pl.col("action_id"),
        pl.col("contact_id"),
        _utc("occurred_at").alias("occurred_at"),
        pl.col("action"),
        pl.lit("export").alias("source"),
        pl.col("policy"),
        pl.col("propensity").cast(pl.Float64, strict=False),
        pl.col("responded").cast(pl.Float64, strict=False).alias("reward"),
        pl.col("window_days").cast(pl.Int64, strict=False),
        pl.lit(None, pl.Float64).alias("lead_score"),
        pl.lit(None, pl.String).alias("lead_band"),
    )


def read_recorded_actions(path: str | Path) -> pl.DataFrame:
    """Actions recorded through the API (one JSON object per line; a torn last line is skipped)."""
    path = Path(path)
    if not path.exists():
        return _empty()
    rows: list[dict[str, Any]] = []
    for line in path.read_bytes().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        context = record.get("context") or {}
        rows.append(
            {
                "action_id": record.get("idempotency_key"),
                "contact_id": record.get("contact_id"),
                "occurred_at": record.get("taken_at") or record.get("recorded_at"),
                "action": record.get("action"),
                "source": "api",
                "policy": record.get("policy"),
                "propensity": record.get("propensity"),
                "reward": record.get("reward"),
                "window_days": None,
                "lead_score": context.get("lead_score", context.get("score")),
                "lead_band": context.get("lead_band", context.get("band")),
            }
        )
    if not rows:
        return _empty()
    frame = pl.DataFrame(rows, schema={**LOG_COLUMNS, "occurred_at": pl.String}, strict=False)
    return frame.with_columns(_utc("occurred_at").alias("occurred_at")).select(list(LOG_COLUMNS))


def build_action_log(
    logged: pl.DataFrame,
    contacts: pl.DataFrame,
    companies: pl.DataFrame | None,
    activities: pl.DataFrame | None,
    actions: tuple[str, ...] = DEFAULT_ACTIONS,
) -> pl.DataFrame:
    """Join every logged action to its point-in-time context; flag (never drop) the rows that cannot be used."""
    logged = logged.unique("action_id", keep="last", maintain_order=True).sort("occurred_at", "action_id")
    people = contact_attributes(contacts, companies)
    custom = [c for c in people.columns if c not in CONTEXT_FROM_WAREHOUSE and c != "contact_id"]
    log = logged.join(people.with_columns(_known=pl.lit(True)), on="contact_id", how="left")
    ids = contacts["contact_id"]
    owner = positions(log["contact_id"], ids)
    t = log["occurred_at"].dt.epoch("s").fill_null(0).to_numpy()
    if activities is not None and activities.height:
        acts = activities.select("contact_id", pl.col("occurred_at").dt.epoch("s").alias("t")).drop_nulls()
        touch_owner = positions(acts["contact_id"], ids)
        keep = touch_owner >= 0
        days, t7, t30 = touch_features(touch_owner[keep], acts["t"].to_numpy()[keep], owner, t)
    else:
        days, t7, t30 = np.full(len(t), np.nan), np.zeros(len(t), int), np.zeros(len(t), int)
    log = log.with_columns(
        pl.Series("days_since_last_touch", days).fill_nan(None),
        pl.Series("touches_7d", t7),
        pl.Series("touches_30d", t30),
    )
    problem = (
        pl.when(pl.col("occurred_at").is_null())
        .then(pl.lit("the action time is missing or not a date"))
        .when(pl.col("_known").is_null())
        .then(pl.lit("the contact is not in the staged contacts"))
        .when(~pl.col("action").is_in(list(actions)))
        .then(pl.lit(f"the action is not one of {', '.join(actions)}"))
        .when(pl.col("reward").is_null())
        .then(pl.lit("no outcome recorded yet"))
        .when((pl.col("reward") < 0) | (pl.col("reward") > 1))
        .then(pl.lit("the reward is outside [0, 1]"))
        .when(pl.col("propensity").is_not_null() & ((pl.col("propensity") <= 0) | (pl.col("propensity") > 1)))
        .then(pl.lit("the propensity is outside (0, 1]"))
    )
    return (
        log.with_columns(problem.alias("problem"))
        .with_columns(usable=pl.col("problem").is_null())
        .select(
            "action_id",
            "contact_id",
            "occurred_at",
            "action",
            "source",
            "policy",
            "propensity",
            "reward",
            "window_days",
            *CONTEXT_FROM_WAREHOUSE,
            "lead_score",
            "lead_band",
            *custom,
            "usable",
            "problem",
        )
    )


def context_frame(log: pl.DataFrame) -> pl.DataFrame:
    """The context columns of action-log rows (every column but the log's bookkeeping), as the encoder reads
    them: the warehouse's context, the lead score and band, and the export's custom fields."""
    return log.select([c for c in log.columns if c not in LOG_BOOKKEEPING])
