"""Calibrated probabilities and the quality figures every scorer is judged by.

A score of 0% or 100% is a promise no sales team can keep, so every probability is kept inside
[``FLOOR``, 1 - ``FLOOR``]. Quality is measured on held-out rows: AUC, average precision, Brier score,
log loss, expected calibration error (ECE) and lift in the top decile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FLOOR = 0.001


def clip_probability(p: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(p, dtype=np.float64), FLOOR, 1.0 - FLOOR)


def logit(p: np.ndarray) -> np.ndarray:
    p = clip_probability(p)
    return np.log(p / (1 - p))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


@dataclass
class PlattScaler:
    """p = sigmoid(a * raw_logit + b), fitted on rows the scorer did not train on."""

    a: float = 1.0
    b: float = 0.0

    def fit(self, raw_logit: np.ndarray, y: np.ndarray) -> PlattScaler:
        from sklearn.linear_model import LogisticRegression

        y = np.asarray(y).astype(int)
        if len(np.unique(y)) < 2:
            return self
        # Mild regularisation: a small calibration slice must not flip or explode the slope.
        model = LogisticRegression(C=10.0).fit(np.asarray(raw_logit).reshape(-1, 1), y)
        self.a = float(model.coef_[0, 0])
        self.b = float(model.intercept_[0])
        return self

    def logit(self, raw_logit: np.ndarray) -> np.ndarray:
        return self.a * np.asarray(raw_logit, dtype=np.float64) + self.b

    def __call__(self, raw_logit: np.ndarray) -> np.ndarray:
        return clip_probability(sigmoid(self.logit(raw_logit)))


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Average |observed rate - mean predicted| over equal-count bins, weighted by bin size."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    if len(y) == 0:
        return float("nan")
    order = np.argsort(p, kind="stable")
    error = 0.0
    for chunk in np.array_split(order, min(bins, len(y))):
        if len(chunk):
            error += len(chunk) * abs(y[chunk].mean() - p[chunk].mean())
    return float(error / len(y))


def ece_noise_floor(
    p: np.ndarray, bins: int = 10, simulations: int = 200, quantile: float = 0.95, seed: int = 0
) -> float:
    """The ECE a *perfectly* calibrated scorer would still show on these rows, by chance alone: outcomes
    drawn from the scores themselves, ECE measured, ``quantile`` of those. On 100 outcomes it is about 0.1,
    so a calibration gate must not fail a model for less than this."""
    p = clip_probability(p)
    if len(p) == 0:
        return float("nan")
    rng = np.random.default_rng(seed)
    draws = [
        expected_calibration_error((rng.random(len(p)) < p).astype(float), p, bins)
        for _ in range(simulations)
    ]
    return float(np.quantile(draws, quantile))


def ece_bootstrap(
    y: np.ndarray, p: np.ndarray, bins: int = 10, resamples: int = 200, seed: int = 0
) -> dict[str, float]:
    """ECE and its spread over bootstrap resamples of the rows (5th, 50th, 95th percentile)."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(resamples):
        idx = rng.integers(0, len(y), len(y))
        draws.append(expected_calibration_error(y[idx], p[idx], bins))
    q05, q50, q95 = np.quantile(draws, [0.05, 0.5, 0.95])
    return {
        "ece": expected_calibration_error(y, p, bins),
        "p05": float(q05),
        "p50": float(q50),
        "p95": float(q95),
    }


def top_decile_lift(y: np.ndarray, p: np.ndarray) -> float:
    """Success rate among the top 10% by score divided by the overall success rate."""
    y = np.asarray(y, dtype=np.float64)
    if len(y) == 0 or y.mean() == 0:
        return float("nan")
    k = max(1, int(round(0.1 * len(y))))
    top = np.argsort(-np.asarray(p), kind="stable")[:k]
    return float(y[top].mean() / y.mean())


def quality(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """AUC, average precision, Brier, log loss, ECE and top-decile lift of probabilities ``p``."""
    from sklearn.metrics import (
        average_precision_score,
        brier_score_loss,
        log_loss,
        roc_auc_score,
    )

    y = np.asarray(y).astype(int)
    p = clip_probability(p)
    both = len(np.unique(y)) == 2
    return {
        "auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "average_precision": float(average_precision_score(y, p)) if both else float("nan"),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "ece": expected_calibration_error(y, p),
        "top_decile_lift": top_decile_lift(y, p),
        "rows": float(len(y)),
        "positives": float(y.sum()),
    }


HOT_PROBABILITY = 0.5
WARM_PROBABILITY = 0.2


def band_thresholds() -> tuple[float, float]:
    """(hot, warm) as calibrated probabilities: hot from 50%, warm from 20% unless HOLOCRM_BAND_HOT /
    HOLOCRM_BAND_WARM say otherwise. Probabilities, not quantiles of training scores: after a shift a
    "hot" lead is still a likely one, and "10% (hot)" cannot appear."""
    import os

    hot = float(os.environ.get("HOLOCRM_BAND_HOT", HOT_PROBABILITY))
    warm = float(os.environ.get("HOLOCRM_BAND_WARM", WARM_PROBABILITY))
    return (hot, min(warm, hot))


def band_for(scores: np.ndarray, thresholds: tuple[float, float]) -> list[str]:
    hot, warm = thresholds
    s = np.asarray(scores)
    return np.where(s >= hot, "hot", np.where(s >= warm, "warm", "cold")).tolist()
