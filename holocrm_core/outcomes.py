"""The outcome dataset (the "reflection buffer"): prediction-time snapshots of decided leads and closed deals.

A decided record (a lead that converted or was disqualified, a deal won or lost) contributes one row per
*prediction point* along its open life: at its creation and every ``SNAPSHOT_EVERY_DAYS`` while it was open
(at most ``MAX_SNAPSHOTS``, spread evenly), each labelled with the final outcome and ``within_horizon``
(the outcome came within ``HORIZON_DAYS``). Its features are computed as of that point by the same code
that scores open records now (``build_features_for``): only activities strictly before the point count,
ages are measured at the point, and lifecycle dates after it are never read. The time to the outcome, ages
measured at the outcome and fields set at the decision are never features.

A decided record with no usable date is never dropped: it is dated at the export's snapshot time
(``outcome_dated`` = false, counted in ``undated_outcomes``) and contributes one snapshot, taken then.

Outcomes recorded in the field (the serving module appends closed deals to
``HOLOCRM_HOME/logs/outcomes.ndjson``) override or add to the export's; the champion's prediction at the time
is kept beside the actual outcome, which is what ``learning_signals`` reports on.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from holocrm_core.schema import CUSTOM_PREFIX, ENTITIES, UTC_TIME

ENTITIES_SCORED = ("contact", "deal")
ACTIVITY_TYPES = ("email", "call", "meeting", "note", "proposal")
RECENT_NOTES = 5  # what the optional note embedding reads
MAX_NOTES = 40  # notes per record kept as features, most recent first
NOTE_CHARS = 300
DAY_US = 86_400_000_000
SNAPSHOT_EVERY_DAYS = float(os.environ.get("HOLOCRM_SNAPSHOT_EVERY_DAYS", "30"))
MAX_SNAPSHOTS = int(os.environ.get("HOLOCRM_MAX_SNAPSHOTS", "4"))
HORIZON_DAYS = float(os.environ.get("HOLOCRM_OUTCOME_HORIZON_DAYS", "90"))

FIELD_OUTCOMES_SCHEMA = pl.Schema(
    {
        "deal_id": pl.String,
        "outcome": pl.String,
        "closed_at": UTC_TIME,
        "recorded_at": UTC_TIME,
        "predicted_score": pl.Float64,
        "predicted_model_version": pl.String,
    }
)

OUTCOME_COLUMNS = [
    "entity",
    "entity_id",
    "outcome",
    "label",
    "outcome_at",
    "outcome_dated",
    "outcome_source",
    "predicted_score",
    "predicted_model_version",
    "snapshot_at",
    "within_horizon",
]
OUTCOME_SCHEMA = {
    "entity": pl.String,
    "entity_id": pl.String,
    "outcome": pl.String,
    "label": pl.Int8,
    "outcome_at": UTC_TIME,
    "outcome_dated": pl.Boolean,
    "outcome_source": pl.String,
    "predicted_score": pl.Float64,
    "predicted_model_version": pl.String,
    "snapshot_at": UTC_TIME,
    "within_horizon": pl.Boolean,
}


# -- inputs -----------------------------------------------------------------------------------------------
def normalise_tables(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Accept ``staged_contacts`` or ``contacts`` keys; missing tables become empty canonical frames."""
    out = {}
    for entity in ("companies", "contacts", "deals", "activities"):
        frame = tables.get(entity, tables.get(f"staged_{entity}"))
        if frame is None:
            frame = pl.DataFrame(schema=ENTITIES[entity])
        for name, dtype in ENTITIES[entity].items():
            if name not in frame.columns:
                frame = frame.with_columns(pl.lit(None, dtype=dtype).alias(name))
        out[entity] = frame
    return out


def _parse_time(value) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def read_field_outcomes(path: str | Path) -> pl.DataFrame:
    """Closed-deal outcomes recorded by the serving module (one JSON object per line): the closes still in
    force, one per deal.

    The log is folded in order by ``deal_states.latest_valid_outcomes``: lines are de-duplicated by
    ``idempotency_key``, a deal reopened after its close has no field outcome, and a close contradicting an
    earlier one (never accepted by the API) does not count. A malformed line is skipped (the log is
    append-only and a crash may leave a half-written last line).
    """
    from holocrm_core.deal_states import latest_valid_outcomes

    path = Path(path)
    if not path.exists():
        return pl.DataFrame(schema=FIELD_OUTCOMES_SCHEMA)
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    rows = []
    for record in latest_valid_outcomes(records):
        try:
            outcome = str(record["outcome"]).lower()
            if outcome not in ("won", "lost") or not record.get("deal_id"):
                continue
            prediction = record.get("prediction") or {}
            recorded = _parse_time(record.get("recorded_at"))
            rows.append(
                {
                    "deal_id": str(record["deal_id"]),
                    "outcome": outcome,
                    "closed_at": _parse_time(record.get("closed_at")) or recorded,
                    "recorded_at": recorded,
                    "predicted_score": None
                    if prediction.get("score") is None
                    else float(prediction["score"]),
                    "predicted_model_version": None
                    if prediction.get("model_version") is None
                    else str(prediction["model_version"]),
                }
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    if not rows:
        return pl.DataFrame(schema=FIELD_OUTCOMES_SCHEMA)
    frame = pl.DataFrame(rows, schema=FIELD_OUTCOMES_SCHEMA)
    return frame.sort("recorded_at", nulls_last=False).unique("deal_id", keep="last", maintain_order=True)


# -- outcomes ---------------------------------------------------------------------------------------------
def _dated(outcomes: pl.DataFrame, export_at: datetime | None) -> pl.DataFrame:
    """``outcome_dated`` says whether the export dated the decision; undated ones get ``export_at``."""
    dated = outcomes.with_columns(pl.col("outcome_at").is_not_null().alias("outcome_dated"))
    if export_at is None:
        return dated.filter(pl.col("outcome_dated"))
    return dated.with_columns(pl.col("outcome_at").fill_null(pl.lit(export_at, dtype=UTC_TIME)))


def lead_outcomes(contacts: pl.DataFrame, export_at: datetime | None = None) -> pl.DataFrame:
    """Converted (customer_at) and disqualified (disqualified_at) leads with the time of the decision.

    A lead whose status says decided but that carries no date of it gets ``export_at`` (when given) and
    ``outcome_dated`` = false; without ``export_at`` such leads are left out (``open_ids`` still knows
    them as decided)."""
    c = contacts.with_columns(
        pl.when(pl.col("customer_at").is_not_null())
        .then(pl.col("customer_at"))
        .when(pl.col("lifecycle_status") == "customer")
        .then(pl.col("updated_at"))
        .alias("_won_at"),
        pl.when(pl.col("disqualified_at").is_not_null())
        .then(pl.col("disqualified_at"))
        .when(pl.col("lifecycle_status") == "disqualified")
        .then(pl.col("updated_at"))
        .alias("_lost_at"),
    )
    won = pl.col("_won_at").is_not_null() | (
        (pl.col("lifecycle_status") == "customer") & pl.col("_lost_at").is_null()
    )
    decided = won | pl.col("_lost_at").is_not_null() | pl.col("lifecycle_status").is_in(["disqualified"])
    frame = c.filter(decided).select(
        pl.lit("contact").alias("entity"),
        pl.col("contact_id").alias("entity_id"),
        pl.when(won).then(pl.lit("converted")).otherwise(pl.lit("disqualified")).alias("outcome"),
        won.cast(pl.Int8).alias("label"),
        pl.when(won).then(pl.col("_won_at")).otherwise(pl.col("_lost_at")).alias("outcome_at"),
        pl.lit("export").alias("outcome_source"),
    )
    return _dated(frame, export_at)


def deal_outcomes(
    deals: pl.DataFrame, field_outcomes: pl.DataFrame | None = None, export_at: datetime | None = None
) -> pl.DataFrame:
    """Won and lost deals with their close time; outcomes recorded in the field override the export's.
    A closed deal without a close date is dated ``export_at`` (``outcome_dated`` = false), as for leads."""
    closed = deals.filter(pl.col("stage").is_in(["won", "lost"])).select(
        pl.lit("deal").alias("entity"),
        pl.col("deal_id").alias("entity_id"),
        pl.col("stage").alias("outcome"),
        (pl.col("stage") == "won").cast(pl.Int8).alias("label"),
        pl.coalesce("closed_at", "stage_changed_at").alias("outcome_at"),
        pl.lit("export").alias("outcome_source"),
        pl.lit(None, dtype=pl.Float64).alias("predicted_score"),
        pl.lit(None, dtype=pl.String).alias("predicted_model_version"),
    )
    if field_outcomes is not None and len(field_outcomes):
        known = set(deals["deal_id"].to_list())
        recorded = field_outcomes.filter(pl.col("deal_id").is_in(list(known))).select(
            pl.lit("deal").alias("entity"),
            pl.col("deal_id").alias("entity_id"),
            pl.col("outcome"),
            (pl.col("outcome") == "won").cast(pl.Int8).alias("label"),
            pl.col("closed_at").alias("outcome_at"),
            pl.lit("field").alias("outcome_source"),
            pl.col("predicted_score"),
            pl.col("predicted_model_version"),
        )
        closed = pl.concat(
            [closed.filter(~pl.col("entity_id").is_in(recorded["entity_id"].to_list())), recorded]
        )
    return _dated(closed, export_at)


# -- point-in-time features -------------------------------------------------------------------------------
def default_as_of(tables: dict[str, pl.DataFrame]) -> datetime:
    """The export's snapshot time: the latest moment any of its tables mentions (else now)."""
    t = normalise_tables(tables)
    candidates = [
        t["activities"]["occurred_at"].max(),
        t["contacts"]["updated_at"].max(),
        t["contacts"]["created_at"].max(),
        t["deals"]["created_at"].max(),
        t["deals"]["closed_at"].max(),
    ]
    candidates = [c for c in candidates if c is not None]
    return max(candidates) + timedelta(microseconds=1) if candidates else datetime.now(UTC)


def _cutoffs(ids, as_of, id_name: str) -> pl.DataFrame:
    ids = list(ids)
    if isinstance(as_of, (pl.Series, list, tuple, np.ndarray)):
        times = pl.Series("cutoff", list(as_of)).cast(UTC_TIME)
    else:
        times = pl.Series("cutoff", [as_of] * len(ids), dtype=UTC_TIME)
    return pl.DataFrame({id_name: pl.Series(ids, dtype=pl.String)}).with_columns(times)


def _activity_features(rows: pl.DataFrame, joined: pl.DataFrame) -> pl.DataFrame:
    """Counts by type, inbound, recency and the recent note text per ``_row``.

    ``joined`` pairs each row (``_row``, ``cutoff``) with its candidate activities; only those strictly
    before the cutoff count, which is what makes a training row point-in-time correct.
    """
    before = joined.filter(pl.col("occurred_at") < pl.col("cutoff"))
    age_days = (pl.col("cutoff") - pl.col("occurred_at")).dt.total_microseconds() / DAY_US
    text = pl.concat_str(
        [pl.col("subject").fill_null(""), pl.col("body").fill_null("")], separator=". "
    ).str.slice(0, NOTE_CHARS)
    aggregates = before.group_by("_row").agg(
        pl.len().alias("n_activities"),
        *[(pl.col("type") == t).sum().alias(f"n_{t}") for t in ACTIVITY_TYPES],
        (pl.col("direction") == "inbound").sum().alias("n_inbound"),
        (age_days <= 30).sum().alias("n_activities_30d"),
        (age_days <= 90).sum().alias("n_activities_90d"),
        age_days.min().alias("days_since_last_activity"),
        age_days.max().alias("days_since_first_activity"),
        text.sort_by(pl.col("occurred_at"), descending=True).head(MAX_NOTES).alias("text_notes"),
    )
    out = rows.select("_row").join(aggregates, on="_row", how="left")
    counts = [
        "n_activities",
        *[f"n_{t}" for t in ACTIVITY_TYPES],
        "n_inbound",
        "n_activities_30d",
        "n_activities_90d",
    ]
    return out.with_columns([pl.col(c).fill_null(0).cast(pl.Int64) for c in counts])


ACTIVITY_COLUMNS = ["occurred_at", "type", "direction", "subject", "body"]


def _company_features(companies: pl.DataFrame) -> pl.DataFrame:
    custom = [c for c in companies.columns if c.startswith(CUSTOM_PREFIX)]
    return companies.select(
        "company_id",
        pl.col("industry"),
        pl.col("size_band"),
        pl.col("employees").cast(pl.Float64),
        pl.col("annual_revenue").cast(pl.Float64),
        pl.col("region").alias("company_region"),
        *[pl.col(c).alias(f"company_{c}") for c in custom],
    )


def _days_between(later: str, earlier: str) -> pl.Expr:
    return (pl.col(later) - pl.col(earlier)).dt.total_microseconds() / DAY_US


def _lead_features(points: pl.DataFrame, t: dict[str, pl.DataFrame]) -> pl.DataFrame:
    contacts = t["contacts"]
    custom = [c for c in contacts.columns if c.startswith(CUSTOM_PREFIX)]
    # Only fields known when the lead came in; lifecycle dates enter only as "before the cutoff" flags.
    base = points.join(
        contacts.select(
            "contact_id", "seniority", "company_id", "owner", "lead_at", "qualified_at", "created_at", *custom
        ),
        on="contact_id",
        how="left",
    )
    base = base.join(_company_features(t["companies"]), on="company_id", how="left")
    base = base.with_columns(
        ((pl.col("cutoff") - pl.coalesce("lead_at", "created_at")).dt.total_microseconds() / DAY_US)
        .clip(lower_bound=0)
        .alias("lead_age_days"),
        (pl.col("qualified_at").is_not_null() & (pl.col("qualified_at") < pl.col("cutoff"))).alias(
            "was_qualified"
        ),
    )
    joined = points.select("_row", "contact_id", "cutoff").join(
        t["activities"].select("contact_id", *ACTIVITY_COLUMNS), on="contact_id", how="inner"
    )
    activity = _activity_features(points, joined)
    features = base.join(activity, on="_row", how="left")
    return features.drop("company_id", "lead_at", "qualified_at", "created_at", "owner")


def _deal_features(points: pl.DataFrame, t: dict[str, pl.DataFrame]) -> pl.DataFrame:
    deals = t["deals"]
    custom = [c for c in deals.columns if c.startswith(CUSTOM_PREFIX)]
    # stage, probability, stage_changed_at, expected_close_at and closed_at are set at or after the close of
    # a closed deal: they would leak the outcome, so they are never features.
    base = points.join(
        deals.select(
            "deal_id",
            "company_id",
            "contact_id",
            pl.col("value").cast(pl.Float64).alias("deal_value"),
            "currency",
            "product",
            "owner",
            pl.col("created_at").alias("_deal_created_at"),
            *custom,
        ),
        on="deal_id",
        how="left",
    )
    base = base.join(_company_features(t["companies"]), on="company_id", how="left")
    # The contact's own fields (job level, and custom ones such as where the lead came from) are known when
    # the deal opens, and they move its odds.
    contacts = t["contacts"]
    contact_custom = [c for c in contacts.columns if c.startswith(CUSTOM_PREFIX)]
    base = base.join(
        contacts.select(
            "contact_id", pl.col("seniority"), *[pl.col(c).alias(f"contact_{c}") for c in contact_custom]
        ),
        on="contact_id",
        how="left",
    ).with_columns(_days_between("cutoff", "_deal_created_at").clip(lower_bound=0).alias("deal_age_days"))
    # A deal's activities are those logged on it; an export that links none to the deal falls back to
    # its contact's activities logged without a deal.
    acts = t["activities"]
    on_deal = acts.filter(pl.col("deal_id").is_not_null())
    loose = acts.filter(pl.col("deal_id").is_null()).drop("deal_id")
    deal_points = base.select("_row", "deal_id", "contact_id", "cutoff")
    has_linked = pl.col("deal_id").is_in(on_deal["deal_id"].unique().to_list())
    linked = pl.concat(
        [
            deal_points.join(on_deal.select("deal_id", *ACTIVITY_COLUMNS), on="deal_id", how="inner"),
            deal_points.filter(~has_linked).join(
                loose.select("contact_id", *ACTIVITY_COLUMNS), on="contact_id", how="inner"
            ),
        ]
    )
    activity = _activity_features(deal_points, linked)
    features = base.join(activity, on="_row", how="left")
    return features.drop("company_id", "contact_id", "_deal_created_at")


def build_features_for(
    entity: str,
    ids,
    tables: dict[str, pl.DataFrame],
    as_of=None,
    embedder=None,
) -> pl.DataFrame:
    """Point-in-time features of contacts (``entity="contact"``) or deals (``"deal"``).

    ``as_of`` is one time for all ids (serving: now; default the export's snapshot time) or one time per id
    (training: each outcome's time). Only activities strictly before it count. Columns: the id
    (``contact_id`` / ``deal_id``), ``as_of``, then features (see ``holocrm_core.scoring.features``).
    ``text_notes`` lists the notes (subject + body) of those activities, most recent first.
    ``embedder`` (``encode(texts) -> (n, d)``) adds ``emb_recent_notes``, an embedding of the recent notes.
    """
    if entity not in ENTITIES_SCORED:
        raise ValueError(f"entity must be one of {ENTITIES_SCORED}, not {entity!r}")
    t = normalise_tables(tables)
    id_name = "contact_id" if entity == "contact" else "deal_id"
    if as_of is None:
        as_of = default_as_of(t)
    points = _cutoffs(ids, as_of, id_name).with_row_index("_row")
    features = _lead_features(points, t) if entity == "contact" else _deal_features(points, t)
    features = features.sort("_row").drop("_row").rename({"cutoff": "as_of"})
    if embedder is not None and len(features):
        texts = [" | ".join((notes or [])[:RECENT_NOTES]) for notes in features["text_notes"].to_list()]
        vectors = np.asarray(embedder.encode(texts), dtype=np.float32)
        vectors[np.array([not s for s in texts])] = np.nan  # no notes = missing, not the empty-string vector
        features = features.with_columns(
            pl.Series("emb_recent_notes", [None if np.isnan(v).any() else v.tolist() for v in vectors])
        )
    return features


# -- the outcome dataset ----------------------------------------------------------------------------------
def _predictions_at_the_time(outcomes: pl.DataFrame, previous_scores: pl.DataFrame | None) -> pl.DataFrame:
    """The champion's last score made before each outcome (from the previous scored_leads/scored_deals)."""
    if previous_scores is None or not len(previous_scores) or "scored_at" not in previous_scores.columns:
        return outcomes
    id_col = "contact_id" if "contact_id" in previous_scores.columns else "deal_id"
    prior = previous_scores.select(
        pl.col(id_col).alias("entity_id"),
        pl.col("score").alias("_prior_score"),
        pl.col("model_version").cast(pl.String).alias("_prior_version")
        if "model_version" in previous_scores.columns
        else pl.lit(None, dtype=pl.String).alias("_prior_version"),
        pl.col("scored_at").cast(UTC_TIME).alias("_scored_at"),
    )
    joined = outcomes.join(prior, on="entity_id", how="left").with_columns(
        (pl.col("_scored_at") < pl.col("outcome_at")).fill_null(False).alias("_usable")
    )
    return joined.with_columns(
        pl.coalesce("predicted_score", pl.when("_usable").then("_prior_score")).alias("predicted_score"),
        pl.coalesce("predicted_model_version", pl.when("_usable").then("_prior_version")).alias(
            "predicted_model_version"
        ),
    ).drop("_prior_score", "_prior_version", "_scored_at", "_usable")


def _life_start(entity: str, t: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """When each record's open life began: a lead when it came in, a deal when it was created."""
    if entity == "contact":
        c = t["contacts"]
        return c.select(
            pl.col("contact_id").alias("entity_id"), pl.coalesce("lead_at", "created_at").alias("_start")
        )
    return t["deals"].select(pl.col("deal_id").alias("entity_id"), pl.col("created_at").alias("_start"))


def prediction_points(
    outcomes: pl.DataFrame,
    starts: pl.DataFrame,
    every_days: float = SNAPSHOT_EVERY_DAYS,
    max_snapshots: int = MAX_SNAPSHOTS,
    horizon_days: float = HORIZON_DAYS,
) -> pl.DataFrame:
    """One row per prediction point (``snapshot_at``) of each outcome.

    The points lie on a calendar grid, every ``every_days``: a record is seen at each grid time while it
    was open, as a nightly scoring run would have seen it (so the ages and activity counts of the
    snapshots look like those of the open records scored now, not like a crowd of brand-new records). At
    most ``max_snapshots`` per record, spread evenly; a record open for less than one step is seen once,
    half-way through its open life. A record without a start, decided at its start, or whose decision the
    export did not date is seen once, at the outcome time (features use what happened strictly before it).
    """
    step_us = int(every_days * DAY_US)
    joined = outcomes.join(starts.unique("entity_id", keep="first"), on="entity_id", how="left")
    along_life = (
        pl.col("outcome_dated") & pl.col("_start").is_not_null() & (pl.col("_start") < pl.col("outcome_at"))
    )
    start_us = pl.col("_start").dt.epoch("us")
    first_us = (start_us + step_us - 1) // step_us * step_us  # the first grid time at or after the start
    end_us = pl.col("outcome_at").dt.epoch("us")
    on_grid = pl.when(first_us < end_us).then((end_us - 1 - first_us) // step_us + 1).otherwise(0)
    n = pl.when(along_life).then(on_grid).otherwise(0)
    joined = (
        joined.with_columns(n.alias("_n"), first_us.alias("_first"))
        .with_columns(
            pl.int_ranges(0, pl.min_horizontal(pl.col("_n"), max_snapshots).clip(lower_bound=1)).alias("_i")
        )
        .explode("_i")
    )
    spread = (pl.col("_i") * (pl.col("_n") - 1) / max(max_snapshots - 1, 1)).round().cast(pl.Int64)
    k = pl.when(pl.col("_n") > max_snapshots).then(spread).otherwise(pl.col("_i"))
    grid = pl.from_epoch(pl.col("_first") + k * step_us, time_unit="us").dt.replace_time_zone("UTC")
    halfway = pl.col("_start") + (pl.col("outcome_at") - pl.col("_start")) / 2
    snapshot = (
        pl.when(~along_life).then(pl.col("outcome_at")).when(pl.col("_n") == 0).then(halfway).otherwise(grid)
    )
    joined = joined.with_columns(snapshot.cast(UTC_TIME).alias("snapshot_at")).unique(
        ["entity_id", "snapshot_at"], maintain_order=True
    )
    to_outcome = (pl.col("outcome_at") - pl.col("snapshot_at")).dt.total_microseconds() / DAY_US
    return joined.with_columns((to_outcome <= horizon_days).alias("within_horizon")).drop(
        "_n", "_i", "_first"
    )


def export_time(tables: dict[str, pl.DataFrame]) -> datetime:
    """The export's snapshot time: what undated decisions are dated with and open records are scored at."""
    return default_as_of(tables)


def build_outcome_dataset(
    tables: dict[str, pl.DataFrame],
    field_outcomes: pl.DataFrame | None = None,
    previous_scores: dict[str, pl.DataFrame] | None = None,
    embedder=None,
    every_days: float = SNAPSHOT_EVERY_DAYS,
    max_snapshots: int = MAX_SNAPSHOTS,
    max_records: int = 0,
) -> pl.DataFrame:
    """Prediction-time snapshots of every decided lead and closed deal: features as of each snapshot
    (``build_features_for``, the code that scores open records), the prediction then, and the outcome.

    ``max_records`` (0: all): only the most recent that many decided records of each entity
    (``scoring.most_recent_records``, the training cap), so the snapshots and features of a 1M-contact
    export are not built for records no training round would use."""
    from holocrm_core.scoring import most_recent_records

    t = normalise_tables(tables)
    export_at = export_time(t)
    previous_scores = previous_scores or {}
    parts = []
    for entity, outcomes in (
        (
            "contact",
            lead_outcomes(t["contacts"], export_at).with_columns(
                pl.lit(None, dtype=pl.Float64).alias("predicted_score"),
                pl.lit(None, dtype=pl.String).alias("predicted_model_version"),
            ),
        ),
        ("deal", deal_outcomes(t["deals"], field_outcomes, export_at)),
    ):
        outcomes = _predictions_at_the_time(outcomes, previous_scores.get(entity))
        outcomes, _ = most_recent_records(outcomes, max_records)
        if not len(outcomes):
            continue
        points = prediction_points(outcomes, _life_start(entity, t), every_days, max_snapshots)
        features = build_features_for(
            entity, points["entity_id"], t, points["snapshot_at"], embedder=embedder
        )
        id_name = "contact_id" if entity == "contact" else "deal_id"
        parts.append(
            pl.concat(
                [points.select(*OUTCOME_COLUMNS, "_start"), features.drop(id_name, "as_of")], how="horizontal"
            )
        )
    if not parts:
        return pl.DataFrame(schema=OUTCOME_SCHEMA)
    # Time order for the folds. Records decided at the same time (undated decisions) follow when they came
    # in, then the export's own order (stable sort).
    ordered = pl.concat(parts, how="diagonal_relaxed").sort(
        "outcome_at", "_start", "snapshot_at", nulls_last=True, maintain_order=True
    )
    return ordered.drop("_start")


def undated_outcomes(dataset: pl.DataFrame, entity: str) -> int:
    """Decided records of ``entity`` whose decision the export did not date (dated at the export time)."""
    if "outcome_dated" not in dataset.columns or not dataset.height:
        return 0
    rows = dataset.filter((pl.col("entity") == entity) & ~pl.col("outcome_dated"))
    return rows["entity_id"].n_unique()


def open_ids(
    entity: str, tables: dict[str, pl.DataFrame], field_outcomes: pl.DataFrame | None = None
) -> list[str]:
    """Leads not yet converted or disqualified; deals not yet won or lost (in the export or in the field)."""
    t = normalise_tables(tables)
    if entity == "contact":
        c = t["contacts"]
        decided = set(lead_outcomes(c, export_time(t))["entity_id"].to_list())
        return [i for i in c["contact_id"].to_list() if i not in decided]
    d = t["deals"]
    closed_in_field = [] if field_outcomes is None else field_outcomes["deal_id"].to_list()
    return d.filter(~pl.col("stage").is_in(["won", "lost"]) & ~pl.col("deal_id").is_in(closed_in_field))[
        "deal_id"
    ].to_list()


def not_open_reason(entity: str, entity_id: str) -> str:
    """Why a decided lead or deal has no score: the same words at every door (CLI and API)."""
    kind, open_ones = ("lead", "open leads") if entity == "contact" else ("deal", "open deals")
    return (
        f"{kind} {entity_id!r} has no score: it is decided, not among the {open_ones} (scores are for those)"
    )


# -- learning signals -------------------------------------------------------------------------------------
def learning_signals(dataset: pl.DataFrame, entity: str | None = None) -> dict:
    """The roadmap's ``get_learning_signals``: success rate, prediction error over time, calibration, and
    what distinguishes won from lost (the fields whose typical value differs most between the two)."""
    from holocrm_core.scoring.calibration import expected_calibration_error
    from holocrm_core.scoring.features import column_kind, feature_columns

    signals: dict = {}
    for name in [entity] if entity else ENTITIES_SCORED:
        rows = dataset.filter(pl.col("entity") == name) if "entity" in dataset.columns else dataset
        if not len(rows):
            continue
        y = rows["label"].cast(pl.Float64)
        records = rows.unique("entity_id", keep="first") if "entity_id" in rows.columns else rows
        entry: dict = {
            "outcomes": records.height,
            "snapshots": len(rows),
            "success_rate": float(records["label"].cast(pl.Float64).mean()),
        }
        scored = rows.filter(pl.col("predicted_score").is_not_null())
        if len(scored):
            monthly = (
                scored.with_columns(
                    pl.col("outcome_at").dt.truncate("1mo").dt.strftime("%Y-%m").alias("month"),
                    ((pl.col("predicted_score") - pl.col("label")) ** 2).alias("sq_error"),
                )
                .group_by("month")
                .agg(pl.len().alias("outcomes"), pl.col("sq_error").mean().alias("brier"))
                .sort("month")
            )
            entry["prediction_error_by_month"] = monthly.to_dicts()
            entry["calibration_error"] = expected_calibration_error(
                scored["label"].to_numpy(), scored["predicted_score"].to_numpy()
            )
        else:
            entry["prediction_error_by_month"] = []
            entry["calibration_error"] = None
        distinguishing = []
        won = y.to_numpy() == 1
        for column in feature_columns(rows):
            kind = column_kind(column, rows.schema[column])
            if kind == "numeric":
                v = rows[column].cast(pl.Float64).to_numpy()
                ok = ~np.isnan(v)
                if ok.sum() < 10 or won[ok].all() or not won[ok].any():
                    continue
                spread = np.nanstd(v) or 1.0
                gap = (np.nanmean(v[won & ok]) - np.nanmean(v[~won & ok])) / spread
                distinguishing.append(
                    {
                        "field": column,
                        "effect": float(gap),
                        "won_mean": float(np.nanmean(v[won & ok])),
                        "lost_mean": float(np.nanmean(v[~won & ok])),
                    }
                )
            elif kind == "categorical":
                rates = (
                    rows.group_by(column)
                    .agg(pl.len().alias("n"), pl.col("label").cast(pl.Float64).mean().alias("rate"))
                    .filter(pl.col("n") >= 10)
                )
                if len(rates) < 2:
                    continue
                best = rates.sort("rate", descending=True).row(0, named=True)
                worst = rates.sort("rate").row(0, named=True)
                distinguishing.append(
                    {
                        "field": column,
                        "effect": float(best["rate"] - worst["rate"]) * 2,
                        "best_value": best[column],
                        "best_rate": float(best["rate"]),
                        "worst_value": worst[column],
                        "worst_rate": float(worst["rate"]),
                    }
                )
        distinguishing.sort(key=lambda d: -abs(d["effect"]))
        entry["what_distinguishes"] = distinguishing[:8]
        signals[name] = entry
    return signals
