"""The scoring-strategy contract: scikit-learn's estimator interface over CRM feature frames.

Every scorer (weighted heuristic, naive Bayes, neural) takes a polars feature frame (see
``holocrm_core.scoring.features``), learns from 0/1 outcomes, returns calibrated probabilities and, per
row, how much each CRM field moved the score (log-odds), which ``explain`` turns into reasons.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator, ClassifierMixin

from holocrm_core.scoring.calibration import band_thresholds, clip_probability
from holocrm_core.scoring.explain import reasons_from_contributions


@runtime_checkable
class ScoringStrategy(Protocol):
    """What the pipeline, the registry and the API need from any lead or deal scorer."""

    def fit(self, X: pl.DataFrame, y: np.ndarray) -> ScoringStrategy: ...

    def predict_proba(self, X: pl.DataFrame) -> np.ndarray: ...

    def contributions(self, X: pl.DataFrame) -> tuple[np.ndarray, list[str]]: ...

    def reasons(self, X: pl.DataFrame, top: int = 3) -> list[list[str]]: ...


def as_polars(X) -> pl.DataFrame:
    if isinstance(X, pl.DataFrame):
        return X
    try:
        import pandas as pd

        if isinstance(X, pd.DataFrame):
            return pl.from_pandas(X)
    except ImportError:  # pragma: no cover - pandas ships with mlflow
        pass
    return pl.DataFrame(X)


class CRMScorer(BaseEstimator, ClassifierMixin):
    """Shared plumbing: probabilities from a calibrated logit, bands, reasons from contributions."""

    name = "scorer"

    def _finish_fit(self, X: pl.DataFrame) -> None:
        self.classes_ = np.array([0, 1])
        self.band_thresholds_ = band_thresholds()

    def decision_logit(self, X: pl.DataFrame) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict_proba(self, X) -> np.ndarray:
        from holocrm_core.scoring.calibration import sigmoid

        p = clip_probability(sigmoid(self.decision_logit(as_polars(X))))
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def contributions(self, X) -> tuple[np.ndarray, list[str]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def phrase_finder(self):
        return None

    def reasons(self, X, top: int = 3) -> list[list[str]]:
        X = as_polars(X)
        contributions, fields = self.contributions(X)
        return reasons_from_contributions(
            contributions, fields, X, top=top, phrase_finder=self.phrase_finder()
        )
