"""Naive-Bayes lead scoring over field-value frequencies (what Odoo ships as predictive lead scoring).

For every field, how often each value occurs among won vs lost records; the score multiplies those
likelihood ratios. Numbers are cut into quantile bins first, so "3 meetings" and "4 meetings" share counts.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from holocrm_core.scoring.base import CRMScorer, as_polars
from holocrm_core.scoring.calibration import PlattScaler
from holocrm_core.scoring.features import column_kind, feature_columns

MISSING = "\x00missing"
OTHER = "\x00other"


class NaiveBayesScorer(CRMScorer):
    """Sum of per-field log-likelihood ratios with Laplace smoothing, Platt-calibrated."""

    name = "naive_bayes"

    def __init__(self, bins: int = 5, alpha: float = 1.0):
        self.bins = bins
        self.alpha = alpha

    def _tokens(self, X: pl.DataFrame, field: str) -> list[str]:
        kind, edges = self.fields_[field]
        if field not in X.columns:
            return [MISSING] * len(X)
        if kind == "numeric":
            values = X[field].cast(pl.Float64, strict=False).fill_nan(None).to_numpy().astype(np.float64)
            binned = np.searchsorted(edges, values, side="right")
            return [MISSING if np.isnan(v) else f"bin{b}" for v, b in zip(values, binned, strict=True)]
        return [MISSING if v is None else v for v in X[field].cast(pl.String).to_list()]

    def fit(self, X, y) -> NaiveBayesScorer:
        X = as_polars(X)
        y = np.asarray(y).astype(bool)
        self.fields_: dict[str, tuple[str, np.ndarray | None]] = {}
        for field in feature_columns(X):
            kind = column_kind(field, X.schema[field])
            if kind == "numeric":
                values = X[field].cast(pl.Float64, strict=False).fill_nan(None).drop_nulls().to_numpy()
                edges = (
                    np.unique(np.quantile(values, np.linspace(0, 1, self.bins + 1)[1:-1]))
                    if len(values)
                    else np.array([])
                )
                self.fields_[field] = ("numeric", edges)
            elif kind == "categorical":
                self.fields_[field] = ("categorical", None)
        n_pos, n_neg = int(y.sum()), int((~y).sum())
        self.prior_ = float(np.log((n_pos + 1) / (n_neg + 1)))
        self.log_ratio_: dict[str, dict[str, float]] = {}
        self.mean_ratio_: dict[str, float] = {}
        for field in self.fields_:
            tokens = np.array(self._tokens(X, field), dtype=object)
            values, inverse = np.unique(tokens, return_inverse=True)
            pos = np.bincount(inverse[y], minlength=len(values)).astype(float)
            neg = np.bincount(inverse[~y], minlength=len(values)).astype(float)
            k = len(values) + 1  # + unseen values
            ratio = np.log((pos + self.alpha) / (n_pos + self.alpha * k)) - np.log(
                (neg + self.alpha) / (n_neg + self.alpha * k)
            )
            table = dict(zip(values.tolist(), ratio.tolist(), strict=True))
            table[OTHER] = float(
                np.log((self.alpha / (n_pos + self.alpha * k)) / (self.alpha / (n_neg + self.alpha * k)))
            )
            self.log_ratio_[field] = table
            self.mean_ratio_[field] = float(ratio[inverse].mean()) if len(tokens) else 0.0
        raw = self._raw(X)
        self.calibration_ = PlattScaler().fit(raw, y)
        self._finish_fit(X)
        return self

    def _ratios(self, X: pl.DataFrame) -> np.ndarray:
        out = np.zeros((len(X), len(self.fields_)))
        for j, field in enumerate(self.fields_):
            table = self.log_ratio_[field]
            other = table[OTHER]
            out[:, j] = [table.get(t, other) for t in self._tokens(X, field)]
        return out

    def _raw(self, X: pl.DataFrame) -> np.ndarray:
        return self.prior_ + self._ratios(X).sum(axis=1)

    def decision_logit(self, X: pl.DataFrame) -> np.ndarray:
        return self.calibration_.logit(self._raw(X))

    def contributions(self, X) -> tuple[np.ndarray, list[str]]:
        X = as_polars(X)
        mean = np.array([self.mean_ratio_[f] for f in self.fields_])
        return (self._ratios(X) - mean) * self.calibration_.a, list(self.fields_)
