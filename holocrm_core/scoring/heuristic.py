"""The weighted heuristic of today's CRM: points for engagement, recency, job level, company size, deal value,
and the custom fields whose meaning a CRM admin would score by hand (budget, lead source, segment).

This is the baseline every learned model must beat, and the fallback while too few outcomes exist to learn
from. The weights are fixed by hand (as in a CRM's lead-scoring settings); ``fit`` only maps the points onto
calibrated probabilities, so a 40-point lead reads as "about 30% likely" rather than "40". Custom fields are
found by their names (``cf_*budget*``, ``cf_*source*`` / ``*origin*``, ``cf_*segment*``), so on an
export with attributes only (no activities, no job titles) the heuristic still means something.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from holocrm_core.scoring.base import CRMScorer, as_polars
from holocrm_core.scoring.calibration import PlattScaler

SENIORITY_POINTS = {"c_level": 20.0, "vp": 16.0, "director": 12.0, "manager": 8.0, "individual": 4.0}
SIZE_POINTS = {"enterprise": 15.0, "mid_market": 10.0, "smb": 5.0}


def _numeric(frame: pl.DataFrame, name: str) -> np.ndarray | None:
    if name not in frame.columns:
        return None
    return frame[name].cast(pl.Float64, strict=False).fill_nan(None).to_numpy().astype(np.float64)


def _engagement(frame: pl.DataFrame) -> np.ndarray | None:
    n = _numeric(frame, "n_activities")
    if n is None:
        return None
    return 25.0 * np.minimum(1.0, np.log1p(np.nan_to_num(n)) / math.log1p(20))


def _recency(frame: pl.DataFrame) -> np.ndarray | None:
    days = _numeric(frame, "days_since_last_activity")
    if days is None:
        return None
    return np.where(np.isnan(days), 0.0, 20.0 * np.exp(-np.clip(np.nan_to_num(days), 0, None) / 30.0))


def _seniority(frame: pl.DataFrame) -> np.ndarray | None:
    if "seniority" not in frame.columns:
        return None
    return np.array([SENIORITY_POINTS.get(v, 6.0) for v in frame["seniority"].cast(pl.String).to_list()])


def _company_size(frame: pl.DataFrame) -> np.ndarray | None:
    if "size_band" in frame.columns:
        return np.array([SIZE_POINTS.get(v, 5.0) for v in frame["size_band"].cast(pl.String).to_list()])
    employees = _numeric(frame, "employees")
    if employees is None:
        return None
    return np.where(employees >= 1000, 15.0, np.where(employees >= 200, 10.0, 5.0))


def _deal_value(frame: pl.DataFrame) -> np.ndarray | None:
    value = _numeric(frame, "deal_value")
    if value is None:
        return None
    return 10.0 * np.minimum(1.0, np.log1p(np.nan_to_num(np.clip(value, 0, None))) / math.log1p(500_000))


SOURCE_POINTS = (  # (words in the source value, points): the usual lead-scoring settings
    (("referral", "recommend", "partner", "word of mouth"), 10.0),
    (("event", "webinar", "trade show", "conference"), 7.0),
    (("web", "organic", "search", "inbound", "website", "google", "chat"), 5.0),
    (("cold", "purchased", "list", "outbound", "import"), 1.0),
)
SEGMENT_POINTS = (
    (("enterprise", "large", "strategic"), 10.0),
    (("mid",), 7.0),
    (("smb", "small", "startup"), 3.0),
)


def _custom_column(frame: pl.DataFrame, words: tuple[str, ...], numeric: bool) -> str | None:
    for name in frame.columns:
        if "cf_" not in name or not any(w in name for w in words):
            continue
        if frame.schema[name].is_numeric() == numeric:
            return name
    return None


def _word_points(frame: pl.DataFrame, words: tuple[str, ...], table) -> np.ndarray | None:
    name = _custom_column(frame, words, numeric=False)
    if name is None:
        return None

    def points(value) -> float:
        text = str(value or "").lower()
        return next((p for keys, p in table if any(k in text for k in keys)), 4.0)

    return np.array([points(v) for v in frame[name].cast(pl.String).to_list()])


def _budget(frame: pl.DataFrame) -> np.ndarray | None:
    name = _custom_column(frame, ("budget",), numeric=True)
    if name is None:
        return None
    value = np.clip(
        np.nan_to_num(frame[name].cast(pl.Float64).fill_nan(None).to_numpy().astype(np.float64)), 0, None
    )
    # A fixed scale, as a hand-set rule would have: the same budget gets the same points in any batch.
    return 10.0 * np.minimum(1.0, np.log1p(value) / np.log1p(1_000_000))


def _source(frame: pl.DataFrame) -> np.ndarray | None:
    return _word_points(frame, CUSTOM_FIELD_WORDS["lead_source"][0], SOURCE_POINTS)


def _segment(frame: pl.DataFrame) -> np.ndarray | None:
    return _word_points(frame, CUSTOM_FIELD_WORDS["segment"][0], SEGMENT_POINTS)


# field whose reason is shown -> points rule
RULES = {
    "n_activities": _engagement,
    "days_since_last_activity": _recency,
    "seniority": _seniority,
    "size_band": _company_size,
    "deal_value": _deal_value,
    "budget": _budget,
    "lead_source": _source,
    "segment": _segment,
}
NEUTRAL_POINTS = [12.5, 10.0, 12.0, 10.0, 5.0, 5.0, 5.0, 5.0]
CUSTOM_FIELD_WORDS = {
    "budget": (("budget",), True),
    "lead_source": (("source", "origin", "channel"), False),
    "segment": (("segment", "tier"), False),
}


def _field(key: str, frame: pl.DataFrame) -> str:
    """The column a rule's reason names: the custom field it read, else the rule's own field."""
    if key in CUSTOM_FIELD_WORDS:
        words, numeric = CUSTOM_FIELD_WORDS[key]
        return _custom_column(frame, words, numeric) or key
    return key


class WeightedHeuristicScorer(CRMScorer):
    """Hand-weighted points (0..90), calibrated to probabilities on the training outcomes."""

    name = "heuristic"

    def _points(self, X: pl.DataFrame) -> np.ndarray:
        columns = []
        for rule in RULES.values():
            pts = rule(X)
            columns.append(np.zeros(len(X)) if pts is None else pts)
        return np.column_stack(columns) if columns else np.zeros((len(X), 0))

    def fit(self, X, y) -> WeightedHeuristicScorer:
        X = as_polars(X)
        points = self._points(X)
        # With no records yet, "typical" is the middle of each rule's range.
        self.mean_points_ = points.mean(axis=0) if len(X) else np.array(NEUTRAL_POINTS)
        total = points.sum(axis=1) / 10.0
        y = np.asarray(y).astype(int)
        if len(np.unique(y)) < 2:
            # No outcomes of both kinds yet: an average record reads as 50%, more points as more likely.
            self.calibration_ = PlattScaler(a=1.0, b=-float(total.mean()) if len(total) else -4.5)
        else:
            self.calibration_ = PlattScaler().fit(total, y)
        self._finish_fit(X)
        return self

    def decision_logit(self, X: pl.DataFrame) -> np.ndarray:
        return self.calibration_.logit(self._points(X).sum(axis=1) / 10.0)

    def contributions(self, X) -> tuple[np.ndarray, list[str]]:
        X = as_polars(X)
        delta = (self._points(X) - self.mean_points_) / 10.0 * self.calibration_.a
        # A rule whose field this record type does not have (deal value on a lead) explains nothing.
        available = np.array([rule(X.head(0)) is not None for rule in RULES.values()])
        return np.where(available, delta, 0.0), [_field(key, X) for key in RULES]
