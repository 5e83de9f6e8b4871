"""The outreach action set and the decision context of a contact: what a policy may do, and what it sees.

``ActionSet`` is the configurable list of actions (default email, call, proposal, wait); actions can be added
and removed, and every policy keys its state by action *name* so that removing one arm never disturbs the
others.

``ContextEncoder`` turns a contact's context at a point in time into a fixed-width feature vector for the
contextual policies and a segment code for the per-segment ones. What it encodes is *learned from the data*
(``ContextEncoder.fit`` on the staged contexts): every categorical column, the export's custom fields
(``cf_*``) included, keeps its most frequent values (at most ``max_categories``, each seen at least
``min_count`` times) and folds the rest into an ``other`` column; a column that is an identifier in disguise
(almost every value distinct) or constant is left out. Numeric custom fields are cut at their quantiles.
Recency (days since the last touch, in bins: the response to a touch is not linear in days) and touches in
the last 7 / 30 days are encoded the same way for every export, and so is the lead score. The fitted
vocabularies are the encoder's state, saved with the policy and versioned with it, so training, off-policy
evaluation and serving encode a contact identically. Unknown or missing values encode as all zeros, never as
an error: a recommendation must be answerable for a contact with a sparse record.

An unfitted ``ContextEncoder()`` knows only the canonical schema's vocabularies (seniority, lifecycle status,
size band, lead band): the vocabulary of a particular export is never written into the code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from holocrm_core.schema import CUSTOM_PREFIX, LifecycleStatus, Seniority, SizeBand

DEFAULT_ACTIONS = ("email", "call", "proposal", "wait")
LEAD_BANDS = ("hot", "warm", "cold")
OTHER = "other"
# Days since the last touch, in bins: the response to a touch is not linear in days (a touch yesterday
# makes waiting best, a fortnight of silence makes a call best), so bins fit it where a slope cannot.
DAY_BINS = (1.0, 3.0, 7.0, 14.0, 30.0, 60.0)
# The canonical schema's vocabularies: what an unfitted encoder knows (an export's values are fitted).
SCHEMA_CATEGORICAL = {
    "seniority": tuple(s.value for s in Seniority),
    "lifecycle_status": tuple(s.value for s in LifecycleStatus),
    "size_band": tuple(s.value for s in SizeBand),
    "lead_band": LEAD_BANDS,
}
# Recency, touches and the lead score: encoded the same way for every export, never fitted as categories.
NUMERIC_DEFAULTS = {
    "days_since_last_touch": 30.0,
    "touches_7d": 0.0,
    "touches_30d": 0.0,
    "lead_score": float("nan"),
}
# Columns of a context frame that are never features: identifiers and timestamps.
NOT_FEATURES = ("contact_id", "company_id", "deal_id", "action_id", "occurred_at", "bucket")
DEFAULT_SEGMENT = ("lifecycle_status", "lead_band")
MAX_CATEGORIES = 12
MIN_COUNT = 5
NUMERIC_QUANTILES = (0.25, 0.5, 0.75)


class ActionSet:
    """An ordered, configurable set of action names. Order is the column order of every probability matrix."""

    def __init__(self, actions: Iterable[str] = DEFAULT_ACTIONS):
        names = [str(a) for a in actions]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"an action set needs distinct, non-empty names; got {names}")
        self.names: tuple[str, ...] = tuple(names)

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self):
        return iter(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActionSet) and other.names == self.names

    def __repr__(self) -> str:
        return f"ActionSet({list(self.names)})"

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"unknown action {name!r}: the action set is {list(self.names)}") from None

    def indices(self, names: Iterable[str] | np.ndarray) -> np.ndarray:
        """Column index of each action name (KeyError on an unknown one)."""
        lookup = {a: i for i, a in enumerate(self.names)}
        out = []
        for n in names:
            if n not in lookup:
                raise KeyError(f"unknown action {n!r}: the action set is {list(self.names)}")
            out.append(lookup[n])
        return np.asarray(out, dtype=np.int64)

    def with_action(self, name: str) -> ActionSet:
        if name in self.names:
            return self
        return ActionSet((*self.names, name))

    def without_action(self, name: str) -> ActionSet:
        self.index(name)
        return ActionSet(a for a in self.names if a != name)


@dataclass(frozen=True)
class Contexts:
    """A batch of encoded decision contexts: features (n, d) for contextual policies, segment codes (n,)."""

    features: np.ndarray
    segments: np.ndarray
    segment_names: tuple[str, ...] = field(default=())
    frame: pl.DataFrame | None = None  # the raw contexts, kept only when asked (the logging policy reads it)

    def __len__(self) -> int:
        return len(self.features)

    def take(self, index: np.ndarray | slice) -> Contexts:
        frame = None
        if self.frame is not None:
            rows = np.atleast_1d(np.arange(self.frame.height)[index])
            frame = self.frame.select(pl.all().gather(rows))
        return Contexts(self.features[index], self.segments[index], self.segment_names, frame)


def _as_frame(contexts: pl.DataFrame | Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    if isinstance(contexts, pl.DataFrame):
        return contexts
    if isinstance(contexts, Mapping):
        scalar = not any(isinstance(v, (list, tuple, np.ndarray, pl.Series)) for v in contexts.values())
        return pl.DataFrame([dict(contexts)] if scalar else dict(contexts), strict=False)
    return pl.DataFrame(list(contexts), strict=False, infer_schema_length=None)


def normalise(values: pl.Series) -> pl.Series:
    """Category values as the encoder keys them: text, trimmed, lower case, spaces as underscores."""
    return values.cast(pl.String).str.strip_chars().str.to_lowercase().str.replace_all(r"\s+", "_")


def _codes(values: pl.Series, vocabulary: tuple[str, ...], other: bool = False) -> np.ndarray:
    """Index in ``vocabulary``; a value outside it gets ``len(vocabulary)`` ("other") when the column has an
    other bucket, and ``len(vocabulary) + other`` ("unknown", all zeros) when missing or not."""
    lookup = {v: i for i, v in enumerate(vocabulary)}
    unknown = len(vocabulary) + int(other)
    s = normalise(values)
    codes = s.replace_strict(lookup, default=len(vocabulary) if other else unknown, return_dtype=pl.Int64)
    missing = (s.is_null() | (s == "")).fill_null(True).to_numpy()
    return np.where(missing, unknown, codes.fill_null(unknown).to_numpy())


def _is_categorical(dtype: pl.DataType) -> bool:
    return dtype in (pl.String, pl.Boolean, pl.Categorical) or isinstance(dtype, pl.Enum)


def _is_numeric(dtype: pl.DataType) -> bool:
    return dtype.is_numeric()


class ContextEncoder:
    """Context -> features: bias, one-hot categories (fitted), day bins, log touches, lead score, numeric bins."""

    def __init__(
        self,
        segment_columns: Sequence[str] = DEFAULT_SEGMENT,
        categorical: Mapping[str, Sequence[str]] | None = None,
        other: Iterable[str] = (),
        numeric_bins: Mapping[str, Sequence[float]] | None = None,
    ):
        self.categorical: dict[str, tuple[str, ...]] = {
            str(c): tuple(str(v) for v in values)
            for c, values in (SCHEMA_CATEGORICAL if categorical is None else categorical).items()
        }
        self.other: frozenset[str] = frozenset(c for c in other if c in self.categorical)
        self.numeric_bins: dict[str, tuple[float, ...]] = {
            str(c): tuple(float(e) for e in edges) for c, edges in (numeric_bins or {}).items()
        }
        self.segment_columns = tuple(segment_columns)
        for column in self.segment_columns:
            if column not in self.categorical:
                raise ValueError(
                    f"segment column {column!r} is not a categorical column of this encoder: choose from "
                    f"{sorted(self.categorical)}"
                )
        names = ["bias"]
        for column, vocabulary in self.categorical.items():
            names += [f"{column}={v}" for v in vocabulary]
            if column in self.other:
                names.append(f"{column}={OTHER}")
        edges = (0.0, *DAY_BINS)
        names += [
            f"days_since_last_touch<={hi:g}" if lo == 0.0 else f"days_since_last_touch in ({lo:g},{hi:g}]"
            for lo, hi in zip(edges[:-1], edges[1:])
        ]
        names += [
            f"days_since_last_touch>{DAY_BINS[-1]:g}",
            "log1p(touches_7d)",
            "log1p(touches_30d)",
            "lead_score-0.5",
            "lead_score missing",
        ]
        for column, cuts in self.numeric_bins.items():
            bounds = (-np.inf, *cuts, np.inf)
            names += [f"{column} in ({lo:g},{hi:g}]" for lo, hi in zip(bounds[:-1], bounds[1:])]
        self.feature_names: tuple[str, ...] = tuple(names)
        self.segment_names: tuple[str, ...] = self._segment_names()

    # -- fitting -----------------------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        contexts: pl.DataFrame,
        segment_columns: Sequence[str] = DEFAULT_SEGMENT,
        max_categories: int = MAX_CATEGORIES,
        min_count: int = MIN_COUNT,
        max_distinct_share: float = 0.5,
    ) -> ContextEncoder:
        """Learn the categorical vocabularies and numeric cut points from a frame of contexts.

        A categorical column keeps its ``max_categories`` most frequent values seen ``min_count`` times or
        more; the rest share an ``other`` column. Left out: identifiers and timestamps, constant columns, and
        columns whose distinct values exceed ``max_distinct_share`` of the rows (a name or e-mail in disguise).
        """
        frame = _as_frame(contexts)
        n = frame.height
        categorical: dict[str, tuple[str, ...]] = {}
        other: list[str] = []
        numeric: dict[str, tuple[float, ...]] = {}
        for column, dtype in frame.schema.items():
            if column in NOT_FEATURES or column in NUMERIC_DEFAULTS or column.endswith("_id"):
                continue
            if _is_categorical(dtype):
                values = normalise(frame[column]).drop_nulls()
                values = values.filter(values != "")
                counts = values.value_counts(sort=True)
                distinct = counts.height
                if distinct < 2 and column not in SCHEMA_CATEGORICAL:
                    continue
                if distinct > max(max_categories, max_distinct_share * max(n, 1)):
                    continue
                kept = counts.filter(pl.col("count") >= min_count).head(max_categories)
                vocabulary = tuple(kept[column].to_list()) if kept.height else ()
                if column in SCHEMA_CATEGORICAL:  # the schema's values always, then what else is frequent
                    schema_values = SCHEMA_CATEGORICAL[column]
                    vocabulary = (*schema_values, *(v for v in vocabulary if v not in schema_values))
                if not vocabulary:
                    continue
                categorical[column] = vocabulary
                if distinct > len(vocabulary):
                    other.append(column)
            elif _is_numeric(dtype) and column.startswith(CUSTOM_PREFIX):
                values = frame[column].cast(pl.Float64).drop_nulls().drop_nans()
                if values.len() < min_count or values.n_unique() < 2:
                    continue
                cuts = sorted({float(values.quantile(q, "linear")) for q in NUMERIC_QUANTILES})
                numeric[column] = tuple(cuts)
        for column in segment_columns:  # a segment column must exist even when this frame lacks it
            categorical.setdefault(column, SCHEMA_CATEGORICAL.get(column, ()))
        return cls(segment_columns, categorical, other, numeric)

    # -- encoding ----------------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return len(self.feature_names)

    @property
    def columns(self) -> tuple[str, ...]:
        """The context columns this encoder reads (a frame lacking one encodes it as unknown)."""
        return (*self.categorical, *NUMERIC_DEFAULTS, *self.numeric_bins)

    def _segment_names(self) -> tuple[str, ...]:
        names = [""]
        for column in self.segment_columns:
            values = (*self.categorical[column], *((OTHER,) if column in self.other else ()), "unknown")
            names = [f"{n}|{v}" if n else v for n in names for v in values]
        return tuple(names)

    def encode(
        self,
        contexts: pl.DataFrame | Mapping[str, Any] | Sequence[Mapping[str, Any]],
        keep_frame: bool = False,
    ) -> Contexts:
        frame = _as_frame(contexts)
        n = frame.height

        def column(name: str) -> pl.Series:
            if name in frame.columns:
                return frame[name]
            if name == "lead_band" and "band" in frame.columns:  # scored_leads calls it "band"
                return frame["band"]
            return pl.Series(name, [None] * n, dtype=pl.String)

        def numeric(name: str, default: float) -> np.ndarray:
            if name not in frame.columns and name == "lead_score" and "score" in frame.columns:
                name = "score"
            if name not in frame.columns:
                return np.full(n, default)
            return frame[name].cast(pl.Float64, strict=False).fill_null(default).fill_nan(default).to_numpy()

        rows = np.arange(n)
        blocks = [np.ones((n, 1))]
        for name, vocabulary in self.categorical.items():
            has_other = name in self.other
            width = len(vocabulary) + int(has_other)
            block = np.zeros((n, width + 1))
            block[rows, _codes(column(name), vocabulary, has_other)] = 1.0
            blocks.append(block[:, :-1])  # the "unknown" column is dropped: unknown = all zeros
        days = np.clip(numeric("days_since_last_touch", NUMERIC_DEFAULTS["days_since_last_touch"]), 0.0, None)
        day_bin = np.searchsorted(np.asarray(DAY_BINS), days, side="left")
        block = np.zeros((n, len(DAY_BINS) + 1))
        block[rows, day_bin] = 1.0
        blocks.append(block)
        score = numeric("lead_score", float("nan"))
        missing = np.isnan(score)
        blocks.append(
            np.stack(
                [
                    np.log1p(np.clip(numeric("touches_7d", 0.0), 0, None)),
                    np.log1p(np.clip(numeric("touches_30d", 0.0), 0, None)),
                    np.where(missing, 0.0, score - 0.5),
                    missing.astype(float),
                ],
                axis=1,
            )
        )
        for name, cuts in self.numeric_bins.items():
            values = numeric(name, float("nan"))
            block = np.zeros((n, len(cuts) + 2))
            code = np.where(
                np.isnan(values), len(cuts) + 1, np.searchsorted(np.asarray(cuts), values, "left")
            )
            block[rows, code] = 1.0
            blocks.append(block[:, :-1])  # missing = all zeros
        features = np.ascontiguousarray(np.hstack(blocks))
        segments = np.zeros(n, dtype=np.int64)
        for name in self.segment_columns:
            vocabulary, has_other = self.categorical[name], name in self.other
            segments = segments * (len(vocabulary) + int(has_other) + 1) + _codes(
                column(name), vocabulary, has_other
            )
        return Contexts(features, segments, self.segment_names, frame if keep_frame else None)

    # -- state -------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": 2,
            "segment_columns": list(self.segment_columns),
            "categorical": {c: list(v) for c, v in self.categorical.items()},
            "other": sorted(self.other),
            "numeric_bins": {c: list(v) for c, v in self.numeric_bins.items()},
            "feature_names": list(self.feature_names),
        }

    @property
    def version(self) -> str:
        """A short fingerprint of what this encoder encodes: equal versions encode every context alike."""
        state = {k: v for k, v in self.state_dict().items() if k != "feature_names"}
        return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:12]

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ContextEncoder:
        if "categorical" not in state:
            raise ValueError(
                "the saved policy was trained with an encoder of fixed vocabularies (before the context was "
                "learned from the data): evaluate a new candidate (`holocrm policy evaluate`)"
            )
        encoder = cls(
            state.get("segment_columns", DEFAULT_SEGMENT),
            state["categorical"],
            state.get("other", ()),
            state.get("numeric_bins", {}),
        )
        if list(encoder.feature_names) != list(state.get("feature_names", encoder.feature_names)):
            raise ValueError(
                "the saved policy's context features differ from what this encoder state encodes"
            )
        return encoder


def touch_features(touch_contact: np.ndarray, touch_t: np.ndarray, contact: np.ndarray, t: np.ndarray):
    """Days since the last touch strictly before t and touches in the 7 / 30 days before t, vectorised."""
    order = np.lexsort((touch_t, touch_contact))
    tc, tt = touch_contact[order].astype(np.int64), touch_t[order].astype(np.int64)
    # One sorted int64 key per (contact, time): epoch seconds stay below 1e10 until the year 2286.
    key = tc * 10_000_000_000 + tt
    query = contact.astype(np.int64) * 10_000_000_000 + t.astype(np.int64)
    first = np.searchsorted(tc, contact, side="left")
    before = np.searchsorted(key, query, side="left")  # touches of earlier contacts + this one's before t
    has_last = before > first
    last_t = np.where(has_last, tt[np.maximum(before - 1, 0)], np.nan)
    days = (t.astype(np.float64) - last_t) / 86400.0

    def since(window_days: int) -> np.ndarray:
        start = np.searchsorted(key, query - window_days * 86400, side="left")
        return before - np.maximum(start, first)

    return days, since(7), since(30)
