"""Lead and deal scoring: candidates judged on rolling time folds, the best by log loss, guards first.

The strategy is chosen in one place (``make_strategy``). By default (HOLOCRM_SCORING_STRATEGY unset or
"auto") ``train_scorer`` lets the data choose: the weighted heuristic, a regularised logistic regression
(one-hot + scaled fields), gradient boosting ("gbm"), the neural scorer ("neural", notes-aware) and their
blend are trained on the same rolling-origin time folds (``holocrm_core.scoring.selection``) and the one
with the lowest mean held-out log loss is refitted on every outcome, its calibration refitted on the newest
slice. Setting HOLOCRM_SCORING_STRATEGY to one name ("neural", "gbm", "logistic", "blend", "heuristic",
"naive_bayes") trains only that one (the logistic baseline is still measured, the gate needs it).

Why no fixed default: the neural scorer leads on CRM data with notes (the generator) and on ifood, but on
flat attribute exports (x_education, a 78k win/loss export) trees or the logistic regression do better and
the neural scorer does not travel; ``benchmarks/scoring_generality.py`` prints the figures per dataset.

Before anything learns, the guards (``holocrm_core.scoring.guards``) exclude fields that leak the outcome
and compare the training snapshots with the open records being scored. Fewer than ``MIN_EACH`` converted
and ``MIN_EACH`` lost records: the weighted heuristic scores, with a message saying why.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from holocrm_core.scoring.base import CRMScorer, ScoringStrategy, as_polars
from holocrm_core.scoring.calibration import band_thresholds, quality
from holocrm_core.scoring.features import META_COLUMNS, feature_columns
from holocrm_core.scoring.heuristic import WeightedHeuristicScorer
from holocrm_core.scoring.naive_bayes import NaiveBayesScorer

MIN_EACH = 40
VALIDATION_FRACTION = 0.2
ENTITY_WORDS = {"contact": ("converted", "disqualified", "lead"), "deal": ("won", "lost", "deal")}
ID_COLUMNS = ("contact_id", "deal_id", "entity_id")


def _neural(**params):
    from holocrm_core.scoring.neural import NeuralScorer

    return NeuralScorer(**params)


def _gbm(**params):
    from holocrm_core.scoring.boosting import GradientBoostedScorer

    return GradientBoostedScorer(**params)


def _blend(**params):
    from holocrm_core.scoring.boosting import BlendScorer

    return BlendScorer(**params)


STRATEGIES = {
    "heuristic": WeightedHeuristicScorer,
    "naive_bayes": NaiveBayesScorer,
    "neural": _neural,
    "gbm": _gbm,
    "blend": _blend,
}


AUTO = "auto"


def _logistic(**params):
    from holocrm_core.scoring.selection import LogisticScorer

    return LogisticScorer(**params)


STRATEGIES["logistic"] = _logistic


def default_strategy() -> str:
    """HOLOCRM_SCORING_STRATEGY, else "auto" (every candidate on rolling time folds, best log loss wins)."""
    return os.environ.get("HOLOCRM_SCORING_STRATEGY", AUTO) or AUTO


def make_strategy(name: str | None = None, **params) -> ScoringStrategy:
    """The one place a single scoring strategy is built (by name or HOLOCRM_SCORING_STRATEGY; "auto"
    builds the neural scorer, the candidate that reads notes, for callers that need one strategy)."""
    name = name or default_strategy()
    if name == AUTO:
        name = "neural"
    if name not in STRATEGIES:
        raise ValueError(f"unknown scoring strategy {name!r}; choose one of {sorted(STRATEGIES)}")
    return STRATEGIES[name](**params)


# -- minimum data and the time split ----------------------------------------------------------------------
@dataclass(frozen=True)
class MinimumData:
    enough: bool
    positives: int
    negatives: int
    message: str


def minimum_data(
    y: np.ndarray, entity: str = "deal", min_each: int = MIN_EACH, undated: int = 0
) -> MinimumData:
    """The minimum-data rule: at least ``min_each`` positive and negative outcomes (records) to learn from.
    ``undated``: decided records the export did not date (they count, dated at the export time)."""
    y = np.asarray(y).astype(int)
    pos, neg = int(y.sum()), int(len(y) - y.sum())
    column = "customer_at / disqualified_at" if entity == "contact" else "closed_at"
    note = (
        f" {undated} of them carried no decision date and were dated at the export's time; map a date "
        f"column to {column} (or use status_dates: in the mapping file) to fix."
        if undated
        else ""
    )
    good, bad, noun = ENTITY_WORDS.get(entity, ("won", "lost", entity))
    if pos >= min_each and neg >= min_each:
        return MinimumData(
            True, pos, neg, f"{pos} {good} and {neg} {bad} {noun}s: enough to learn a score.{note}"
        )
    return MinimumData(
        False,
        pos,
        neg,
        f"Only {pos} {good} and {neg} {bad} {noun}s so far; a learned {noun} score needs at least {min_each} "
        f"of each. Scores come from the weighted heuristic (engagement, recency, job level, company size"
        f"{', deal value' if entity == 'deal' else ''}, budget, source, segment) until then.{note}",
    )


def time_split(
    frame: pl.DataFrame, validation_fraction: float = VALIDATION_FRACTION, time_column: str = "outcome_at"
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Older rows to train on, the most recent ``validation_fraction`` to validate on (ties stay together)."""
    ordered = frame.sort(time_column, nulls_last=False)
    k = max(1, int(round(validation_fraction * len(ordered))))
    cutoff = ordered[time_column][len(ordered) - k]
    if cutoff is None:
        return ordered.head(len(ordered) - k), ordered.tail(k)
    train = ordered.filter(pl.col(time_column).is_null() | (pl.col(time_column) < cutoff))
    valid = ordered.filter(pl.col(time_column) >= cutoff)
    return train, valid


def entity_rows(dataset: pl.DataFrame, entity: str) -> pl.DataFrame:
    """The outcome rows of one entity, without the columns that only the other entity fills."""
    rows = dataset.filter(pl.col("entity") == entity) if "entity" in dataset.columns else dataset
    keep = [c for c in rows.columns if c in META_COLUMNS or rows[c].null_count() < len(rows)]
    return rows.select(keep)


# -- training ---------------------------------------------------------------------------------------------
@dataclass
class TrainingOutcome:
    """What a training round produced: the scorer to use, the baselines, all judged on the newest fold."""

    entity: str
    strategy: str
    scorer: ScoringStrategy
    heuristic: WeightedHeuristicScorer
    enough_data: MinimumData
    train: pl.DataFrame
    validation: pl.DataFrame
    metrics: dict[str, float] = field(default_factory=dict)
    heuristic_metrics: dict[str, float] = field(default_factory=dict)
    validation_scores: np.ndarray | None = None
    heuristic_validation_scores: np.ndarray | None = None
    params: dict = field(default_factory=dict)
    logistic_metrics: dict[str, float] = field(default_factory=dict)
    selection: object | None = None  # holocrm_core.scoring.selection.Selection
    guard: object | None = None  # holocrm_core.scoring.guards.GuardReport
    undated: int = 0
    records_left_out: int = 0  # older decided records past the training cap (training_records_cap)

    @property
    def learned(self) -> bool:
        return self.strategy != "heuristic" and self.enough_data.enough

    @property
    def y_validation(self) -> np.ndarray:
        return self.validation["label"].to_numpy().astype(int)

    @property
    def excluded_fields(self) -> list[str]:
        return self.guard.excluded_fields if self.guard is not None else []


TRAINING_RECORDS = 20_000  # default cap on decided records per training round (HOLOCRM_TRAINING_RECORDS)


def training_records_cap() -> int:
    """The most decided records one training round uses (``HOLOCRM_TRAINING_RECORDS``; 0 = no cap).

    Rule: the most recent N decided records by outcome time (all of a record's snapshots kept), so a round
    learns from the behaviour closest to the records it will score and the rolling time folds judge it on
    the newest outcomes as before; cost stays bounded as an export grows (training at 100k contacts took
    10 minutes uncapped). The default is set by the learning curve of ``benchmarks/training_cap.py``.
    """
    raw = os.environ.get("HOLOCRM_TRAINING_RECORDS", "")
    if not raw:
        return TRAINING_RECORDS
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"HOLOCRM_TRAINING_RECORDS must be a whole number of records, got {raw!r}") from exc
    if value < 0:
        raise ValueError(f"HOLOCRM_TRAINING_RECORDS must be 0 (no cap) or more, got {value}")
    return value


def most_recent_records(rows: pl.DataFrame, cap: int) -> tuple[pl.DataFrame, int]:
    """``rows`` cut to the ``cap`` decided records with the latest outcome time (every snapshot of a kept
    record, the rows' order unchanged) and how many records were left out; ``cap`` 0 keeps everything."""
    if not cap or "entity_id" not in rows.columns:
        return rows, 0
    when = pl.col("outcome_at") if "outcome_at" in rows.columns else pl.lit(None, pl.Datetime("us", "UTC"))
    if "outcome_dated" in rows.columns:  # an undated decision is dated at the export time: count it oldest
        when = pl.when(pl.col("outcome_dated")).then(when)
    records = rows.group_by("entity_id").agg(when.max().alias("_recency"))
    if records.height <= cap:
        return rows, 0
    keep = records.sort("_recency", "entity_id", descending=True, nulls_last=True).head(cap)
    kept = rows.filter(pl.col("entity_id").is_in(keep.get_column("entity_id").implode()))
    return kept, records.height - cap


def _record_labels(rows: pl.DataFrame) -> np.ndarray:
    """One label per decided record (a record has several snapshots)."""
    if not len(rows):
        return np.array([], dtype=int)
    if "entity_id" not in rows.columns:
        return rows["label"].to_numpy().astype(int)
    return rows.unique("entity_id", keep="first")["label"].to_numpy().astype(int)


def train_scorer(
    dataset: pl.DataFrame,
    entity: str,
    strategy: str | None = None,
    validation_fraction: float = VALIDATION_FRACTION,
    min_each: int = MIN_EACH,
    open_features: pl.DataFrame | None = None,
    candidates=None,
    max_records: int | None = None,
    **params,
) -> TrainingOutcome:
    """Guard the fields, then judge candidates on rolling time folds and refit the best on every outcome.

    ``open_features``: the open records about to be scored (``build_features_for`` now); with them the
    guards also compare training snapshots with today's records. ``strategy`` (or
    HOLOCRM_SCORING_STRATEGY) other than "auto" restricts the candidates to that one (plus the heuristic
    and the logistic baseline, which the gate compares with). ``params`` reach the candidates whose
    constructor takes them (e.g. ``epochs`` for the neural scorer). ``max_records``: the most recent decided
    records trained on (default ``training_records_cap()``; 0 = all).
    """
    from holocrm_core.outcomes import undated_outcomes
    from holocrm_core.scoring import selection as sel
    from holocrm_core.scoring.guards import GuardReport, check_training_data

    strategy = strategy or default_strategy()
    rows = entity_rows(dataset, entity)
    undated = undated_outcomes(rows, entity) if "entity" in rows.columns else 0
    rows, left_out = most_recent_records(rows, training_records_cap() if max_records is None else max_records)
    enough = minimum_data(_record_labels(rows), entity, min_each, undated)
    guard = GuardReport()
    if enough.enough:
        guard = check_training_data(rows, open_features)
        rows = rows.drop(guard.excluded_fields, strict=False)
    y_all = rows["label"].to_numpy().astype(int) if len(rows) else np.array([], dtype=int)
    if candidates is None:
        candidates = (
            sel.CANDIDATES if strategy == AUTO else tuple(dict.fromkeys(("heuristic", "logistic", strategy)))
        )
    folds = sel.rolling_folds(rows) if enough.enough else []
    if not enough.enough or not folds:
        train, valid = time_split(rows, validation_fraction) if len(rows) >= 2 else (rows, rows)
        heuristic = WeightedHeuristicScorer().fit(rows, y_all)
        outcome = TrainingOutcome(
            entity,
            "heuristic",
            heuristic,
            heuristic,
            enough,
            train,
            valid,
            params=dict(params),
            guard=guard,
            undated=undated,
            records_left_out=left_out,
        )
        if len(valid):
            outcome.validation_scores = outcome.heuristic_validation_scores = heuristic.predict_proba(valid)[
                :, 1
            ]
            outcome.metrics = outcome.heuristic_metrics = quality(
                valid["label"].to_numpy(), outcome.validation_scores
            )
        return outcome
    named = None if strategy == AUTO else strategy
    selection = sel.evaluate_candidates(rows, candidates, named=named, **params)
    if named in selection.candidates and selection.candidates[named].folds:
        selection.chosen = named  # asked for by name: measured beside the others, not replaced by them
    scorer = sel.final_scorer(selection, rows, named=named, **params)
    heuristic = WeightedHeuristicScorer().fit(rows, y_all)
    train_index, newest_index = folds[-1]
    outcome = TrainingOutcome(
        entity,
        selection.chosen,
        scorer,
        heuristic,
        enough,
        rows[train_index],
        rows[newest_index],
        params=dict(params),
        selection=selection,
        guard=guard,
        undated=undated,
        records_left_out=left_out,
    )
    y_valid = outcome.y_validation
    chosen = selection.candidates[selection.chosen]
    outcome.validation_scores = chosen.newest_scores
    outcome.metrics = quality(y_valid, chosen.newest_scores)
    base = selection.candidates.get("heuristic")
    if base is not None and base.newest_scores is not None:
        outcome.heuristic_validation_scores = base.newest_scores
        outcome.heuristic_metrics = quality(y_valid, base.newest_scores)
    plain = selection.candidates.get("logistic")
    if plain is not None and plain.newest_scores is not None:
        outcome.logistic_metrics = quality(y_valid, plain.newest_scores)
    return outcome


# -- scoring ----------------------------------------------------------------------------------------------
def unwrap(model):
    """The scorer inside a loaded MLflow pyfunc, a ``ScorerModel`` wrapper, or a bare strategy."""
    if hasattr(model, "unwrap_python_model"):
        model = model.unwrap_python_model()
    return getattr(model, "scorer", model)


def score_frame(model, features: pl.DataFrame, explain: bool = True, top: int = 3) -> pl.DataFrame:
    """Score every row: id column(s), score (calibrated probability), band (hot/warm/cold), reasons."""
    features = as_polars(features)
    scorer = unwrap(model)
    scores = scorer.predict_proba(features)[:, 1]
    thresholds = band_thresholds()
    ids = [c for c in ID_COLUMNS if c in features.columns]
    hot, warm = thresholds
    out = features.select(ids).with_columns(pl.Series("score", scores, dtype=pl.Float64))
    # Bands and empty reasons as expressions: building a million Python strings or lists costs seconds.
    out = out.with_columns(
        pl.when(pl.col("score") >= hot)
        .then(pl.lit("hot"))
        .when(pl.col("score") >= warm)
        .then(pl.lit("warm"))
        .otherwise(pl.lit("cold"))
        .alias("band")
    )
    if explain and len(features):
        return out.with_columns(
            pl.Series("reasons", scorer.reasons(features, top=top), dtype=pl.List(pl.String))
        )
    return out.with_columns(pl.lit([], dtype=pl.List(pl.String)).alias("reasons"))


__all__ = [
    "AUTO",
    "MIN_EACH",
    "STRATEGIES",
    "CRMScorer",
    "MinimumData",
    "NaiveBayesScorer",
    "ScoringStrategy",
    "TrainingOutcome",
    "WeightedHeuristicScorer",
    "default_strategy",
    "entity_rows",
    "feature_columns",
    "make_strategy",
    "minimum_data",
    "score_frame",
    "time_split",
    "train_scorer",
    "unwrap",
]
