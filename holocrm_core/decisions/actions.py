"""The outreach action set and the decision context of a contact: what a policy may do, and what it sees.

``ActionSet`` is the configurable list of actions (default email, call, proposal, wait); actions can be added
and removed, and every policy keys its state by action *name* so that removing one arm never disturbs the
others. ``ContextEncoder`` turns a contact's context at a point in time (seniority, industry, lifecycle
status, company size band, days since the last touch, touches in the last 7 / 30 days, lead score and lead
band) into a fixed-width feature vector for the contextual policies and a segment code for the per-segment
ones. Unknown or missing values encode as "unknown" (all-zero one-hot block), never as an error: a
recommendation must be answerable for a contact with a sparse record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from holocrm_core.synth.vocabulary import INDUSTRIES, SENIORITIES

DEFAULT_ACTIONS = ("email", "call", "proposal", "wait")
LIFECYCLES = ("lead", "qualified", "customer", "disqualified")
SIZE_BANDS = ("smb", "mid_market", "enterprise")
LEAD_BANDS = ("hot", "warm", "cold")
# Days since the last touch, in bins: the response to a touch is not linear in days (a touch yesterday
# makes waiting best, a fortnight of silence makes a call best), so bins fit it where a slope cannot.
DAY_BINS = (1.0, 3.0, 7.0, 14.0, 30.0, 60.0)
CATEGORICAL = {
    "seniority": tuple(SENIORITIES),
    "industry": tuple(INDUSTRIES),
    "lifecycle_status": LIFECYCLES,
    "size_band": SIZE_BANDS,
}
NUMERIC_DEFAULTS = {
    "days_since_last_touch": 30.0,
    "touches_7d": 0.0,
    "touches_30d": 0.0,
    "lead_score": float("nan"),
}
CONTEXT_COLUMNS = (*CATEGORICAL, *NUMERIC_DEFAULTS, "lead_band")
DEFAULT_SEGMENT = ("lifecycle_status", "lead_band")


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


def _codes(values: pl.Series, vocabulary: tuple[str, ...]) -> np.ndarray:
    lookup = {v: i for i, v in enumerate(vocabulary)}
    s = values.cast(pl.String).str.to_lowercase().str.replace_all(" ", "_")
    lookup |= {v.lower().replace(" ", "_"): i for i, v in enumerate(vocabulary)}
    return s.replace_strict(lookup, default=len(vocabulary), return_dtype=pl.Int64).to_numpy()


class ContextEncoder:
    """Context -> features (bias, one-hot categories, day bins, log touches, centred lead score)."""

    def __init__(self, segment_columns: Sequence[str] = DEFAULT_SEGMENT):
        self.segment_columns = tuple(segment_columns)
        for column in self.segment_columns:
            if column not in CATEGORICAL and column != "lead_band":
                raise ValueError(
                    f"segment column {column!r} is not categorical: choose from "
                    f"{sorted([*CATEGORICAL, 'lead_band'])}"
                )
        names = ["bias"]
        for column, vocabulary in CATEGORICAL.items():
            names += [f"{column}={v}" for v in vocabulary]
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
        self.feature_names: tuple[str, ...] = tuple(names)
        self.segment_names: tuple[str, ...] = self._segment_names()

    @property
    def dim(self) -> int:
        return len(self.feature_names)

    def _vocabulary(self, column: str) -> tuple[str, ...]:
        return LEAD_BANDS if column == "lead_band" else CATEGORICAL[column]

    def _segment_names(self) -> tuple[str, ...]:
        names = [""]
        for column in self.segment_columns:
            values = (*self._vocabulary(column), "unknown")
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

        def numeric(name: str) -> np.ndarray:
            default = NUMERIC_DEFAULTS[name]
            if name not in frame.columns and name == "lead_score" and "score" in frame.columns:
                name = "score"
            if name not in frame.columns:
                return np.full(n, default)
            return frame[name].cast(pl.Float64, strict=False).fill_null(default).fill_nan(default).to_numpy()

        blocks = [np.ones((n, 1))]
        for name, vocabulary in CATEGORICAL.items():
            codes = _codes(column(name), vocabulary)
            block = np.zeros((n, len(vocabulary) + 1))
            block[np.arange(n), codes] = 1.0
            blocks.append(block[:, :-1])  # the "unknown" column is dropped: unknown = all zeros
        days = np.clip(numeric("days_since_last_touch"), 0.0, None)
        day_bin = np.searchsorted(np.asarray(DAY_BINS), days, side="left")
        block = np.zeros((n, len(DAY_BINS) + 1))
        block[np.arange(n), day_bin] = 1.0
        blocks.append(block)
        score = numeric("lead_score")
        missing = np.isnan(score)
        blocks.append(
            np.stack(
                [
                    np.log1p(np.clip(numeric("touches_7d"), 0, None)),
                    np.log1p(np.clip(numeric("touches_30d"), 0, None)),
                    np.where(missing, 0.0, score - 0.5),
                    missing.astype(float),
                ],
                axis=1,
            )
        )
        features = np.ascontiguousarray(np.hstack(blocks))
        segments = np.zeros(n, dtype=np.int64)
        for name in self.segment_columns:
            vocabulary = self._vocabulary(name)
            segments = segments * (len(vocabulary) + 1) + _codes(column(name), vocabulary)
        return Contexts(features, segments, self.segment_names, frame if keep_frame else None)

    def state_dict(self) -> dict[str, Any]:
        return {"segment_columns": list(self.segment_columns), "feature_names": list(self.feature_names)}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ContextEncoder:
        encoder = cls(state.get("segment_columns", DEFAULT_SEGMENT))
        if list(encoder.feature_names) != list(state.get("feature_names", encoder.feature_names)):
            raise ValueError(
                "the saved policy was trained on different context features than this code encodes"
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
