"""Gradient-boosted trees and a learned blend of trees with the neural scorer, as scoring strategies.

``GradientBoostedScorer`` is scikit-learn's ``HistGradientBoostingClassifier`` with native categorical splits
(a CRM's picklists: lead source, industry, tags) and native missing values, over the same CRM fields the
neural scorer reads; note text, free text and embeddings come in through the neural scorer's
``FeatureEncoder`` (note ratings, SVD, PCA), so both strategies see the same information. Like the neural
scorer it keeps the most recent rows aside (``holdout_mask``): the number of trees is chosen there (early
stopping on log loss) and the probabilities are calibrated there (Platt).

``BlendScorer`` fits both on the same rows and learns, on that same recent slice, how much to trust each
(a logistic regression over their calibrated log-odds, i.e. stacking and calibration in one step). A
component that does not help gets weight zero, so the blend also *selects*.

Reasons work as for the neural scorer: a field's contribution is how far the log-odds move when that field
is replaced by a typical training value (median number, most frequent category, average text encoding).
"""

from __future__ import annotations

import math
import os
from contextlib import contextmanager

import numpy as np
import polars as pl

from holocrm_core.scoring.base import CRMScorer, as_polars
from holocrm_core.scoring.calibration import PlattScaler, clip_probability, sigmoid
from holocrm_core.scoring.features import (
    FeatureEncoder,
    _numeric_values,
    _string_values,
)
from holocrm_core.scoring.neural import holdout_mask

# Categories seen fewer times than this share one code: a split on three leads is noise.
MIN_TREE_CATEGORY_COUNT = 10
# HistGradientBoosting allows at most 255 bins per feature; one is reserved for "other".
MAX_TREE_CATEGORIES = 250
# OpenMP threads for the trees. One by default: on a shared 2-core machine two spinning OpenMP threads made a
# fit 7 to 16 times slower than one thread (measured under load 6); set HOLOCRM_TREE_THREADS on a quiet box.
TREE_THREADS = int(os.environ.get("HOLOCRM_TREE_THREADS", "1"))


@contextmanager
def _tree_threads():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(TREE_THREADS, user_api="openmp"):
        yield


class GradientBoostedScorer(CRMScorer):
    """Histogram gradient boosting over CRM fields; trees chosen and probabilities calibrated on recent rows."""

    name = "gbm"

    def __init__(
        self,
        max_iter: int = 1000,
        learning_rate: float = 0.03,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 40,
        l2_regularization: float = 1.0,
        holdout_fraction: float = 0.2,
        refit_full: bool = True,
        seed: int = 0,
    ):
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.holdout_fraction = holdout_fraction
        self.refit_full = refit_full
        self.seed = seed

    # -- the tree matrix ----------------------------------------------------------------------------------
    def _fit_layout(self, X: pl.DataFrame) -> None:
        """Per encoder group: raw number, category code, or the encoder's dense block (text, notes, embeddings)."""
        self.layout_ = []
        start = 0
        for group in self.encoder_.groups:
            if group.kind == "numeric":
                spec = {"name": group.name, "kind": "numeric", "start": start, "stop": start + 1}
            elif group.kind == "categorical":
                counts = _string_values(X, group.name).drop_nulls().value_counts(sort=True)
                cats = [v for v, n in counts.iter_rows() if n >= MIN_TREE_CATEGORY_COUNT][
                    :MAX_TREE_CATEGORIES
                ]
                spec = {
                    "name": group.name,
                    "kind": "categorical",
                    "start": start,
                    "stop": start + 1,
                    "codes": {c: float(i) for i, c in enumerate(cats)},
                    "other": float(len(cats)),
                }
            else:
                width = group.stop - group.start
                spec = {
                    "name": group.name,
                    "kind": "dense",
                    "start": start,
                    "stop": start + width,
                    "encoded": (group.start, group.stop),
                }
            start = spec["stop"]
            self.layout_.append(spec)
        self.tree_width_ = start
        self.categorical_ = np.zeros(start, dtype=bool)
        for spec in self.layout_:
            if spec["kind"] == "categorical":
                self.categorical_[spec["start"]] = True

    def _tree_matrix(self, X: pl.DataFrame, dense: np.ndarray | None = None) -> np.ndarray:
        out = np.full((len(X), self.tree_width_), np.nan, dtype=np.float64)
        if dense is None and any(s["kind"] == "dense" for s in self.layout_):
            dense = self.encoder_.transform(X)
        for spec in self.layout_:
            a, b = spec["start"], spec["stop"]
            if spec["kind"] == "numeric":
                out[:, a] = _numeric_values(X, spec["name"])
            elif spec["kind"] == "categorical":
                values = _string_values(X, spec["name"])
                codes = values.replace_strict(spec["codes"], default=spec["other"], return_dtype=pl.Float64)
                # Missing stays NaN: the trees learn where unknown values go.
                out[:, a] = np.where(values.is_null().to_numpy(), np.nan, codes.to_numpy())
            else:
                ea, eb = spec["encoded"]
                out[:, a:b] = dense[:, ea:eb]
        return out

    def _record_row(self, record: dict) -> np.ndarray:
        out = np.full(self.tree_width_, np.nan, dtype=np.float64)
        dense = None
        for spec in self.layout_:
            value = record.get(spec["name"])
            a = spec["start"]
            if spec["kind"] == "numeric":
                try:
                    out[a] = float(value) if value is not None else math.nan
                except (TypeError, ValueError):
                    out[a] = math.nan
            elif spec["kind"] == "categorical":
                if value is not None and not (isinstance(value, float) and math.isnan(value)):
                    out[a] = spec["codes"].get(str(value), spec["other"])
            else:
                if dense is None:
                    dense = self.encoder_.transform_record(record)
                ea, eb = spec["encoded"]
                out[a : spec["stop"]] = dense[ea:eb]
        return out

    # -- fitting ------------------------------------------------------------------------------------------
    def _booster(self, max_iter: int):
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(
            max_iter=max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            categorical_features=self.categorical_ if self.categorical_.any() else None,
            early_stopping=False,
            random_state=self.seed,
        )

    def fit(self, X, y) -> GradientBoostedScorer:
        X = as_polars(X)
        y = np.asarray(y).astype(int)
        self.encoder_ = FeatureEncoder()
        dense = self.encoder_.fit_transform(X, y)  # note ratings of training rows are cross-fitted
        self._fit_layout(X)
        matrix = self._tree_matrix(X, dense)
        held = holdout_mask(X, y, self.holdout_fraction, self.seed)
        if len(np.unique(y[held])) < 2 or len(np.unique(y[~held])) < 2:
            held = holdout_mask(X.drop("outcome_at", strict=False), y, self.holdout_fraction, self.seed)
        with _tree_threads():
            self._fit_boosters(matrix, y, held)
        self.reference_ = self._reference_row(matrix)
        self._finish_fit(X)
        return self

    def _fit_boosters(self, matrix: np.ndarray, y: np.ndarray, held: np.ndarray) -> None:
        x_fit, y_fit, x_held, y_held = matrix[~held], y[~held], matrix[held], y[held]

        def held_loss(raw: np.ndarray) -> float:
            p = clip_probability(sigmoid(raw))
            return float(-np.mean(y_held * np.log(p) + (1 - y_held) * np.log(1 - p)))

        # Grow trees in steps while the recent rows keep getting better predicted (early stopping on log loss).
        step, patience = 25, 3
        booster = self._booster(step)
        booster.set_params(warm_start=True)
        best, stale = float("inf"), 0
        while booster.get_params()["max_iter"] <= self.max_iter:
            booster.fit(x_fit, y_fit)
            loss = held_loss(booster.decision_function(x_held))
            best, stale = (loss, 0) if loss < best - 1e-5 else (best, stale + 1)
            if stale >= patience:
                break
            booster.set_params(max_iter=booster.get_params()["max_iter"] + step)
        staged = list(booster.staged_decision_function(x_held))
        self.n_trees_ = int(np.argmin([held_loss(raw) for raw in staged])) + 1
        self.calibration_ = PlattScaler().fit(staged[self.n_trees_ - 1], y_held)
        # Out-of-sample log-odds of the recent rows, for a blend to weigh this model by (dropped after use).
        self.holdout_logit_ = self.calibration_.logit(staged[self.n_trees_ - 1])
        if self.refit_full:
            # All rows for the final trees (the recent slice is the most informative); the tree count and the
            # calibration found on the recent slice carry over.
            self.booster_ = self._booster(self.n_trees_).fit(matrix, y)
        else:  # the same trees as the first n_trees_ grown above (the fit is deterministic)
            self.booster_ = self._booster(self.n_trees_).fit(x_fit, y_fit)

    def _reference_row(self, matrix: np.ndarray) -> np.ndarray:
        ref = np.full(self.tree_width_, np.nan)
        for spec in self.layout_:
            a, b = spec["start"], spec["stop"]
            block = matrix[:, a:b]
            if spec["kind"] == "numeric":
                present = block[~np.isnan(block[:, 0]), 0]
                ref[a] = float(np.median(present)) if present.size else np.nan
            elif spec["kind"] == "categorical":
                present = block[~np.isnan(block[:, 0]), 0].astype(int)
                ref[a] = float(np.bincount(present).argmax()) if present.size else np.nan
            else:
                ref[a:b] = np.nanmean(block, axis=0)
        return ref

    # -- scoring ------------------------------------------------------------------------------------------
    def raw_logit_matrix(self, matrix: np.ndarray) -> np.ndarray:
        with _tree_threads():
            return np.asarray(self.booster_.decision_function(matrix), dtype=np.float64)

    def decision_logit(self, X: pl.DataFrame) -> np.ndarray:
        return self.calibration_.logit(self.raw_logit_matrix(self._tree_matrix(X)))

    def record_logit(self, record: dict) -> float:
        """Calibrated log-odds for one record given as a dict (field -> value), without building a frame."""
        return float(self.calibration_.logit(self.raw_logit_matrix(self._record_row(record)[None, :]))[0])

    def score_record(self, record: dict) -> float:
        return float(clip_probability(sigmoid(np.array([self.record_logit(record)])))[0])

    def contributions(self, X) -> tuple[np.ndarray, list[str]]:
        """Per field: log-odds of the record minus log-odds with this field set to its typical value."""
        X = as_polars(X)
        matrix = self._tree_matrix(X)
        base = self.raw_logit_matrix(matrix)
        out = np.zeros((len(X), len(self.layout_)))
        for j, spec in enumerate(self.layout_):
            a, b = spec["start"], spec["stop"]
            swapped = matrix.copy()
            swapped[:, a:b] = self.reference_[a:b]
            out[:, j] = base - self.raw_logit_matrix(swapped)
        return out * self.calibration_.a, [s["name"] for s in self.layout_]

    def phrase_finder(self):
        groups = {g.name: g for g in self.encoder_.groups}
        return lambda field, text, sign: (
            self.encoder_.phrases_in(groups[field], text, sign) if field in groups else []
        )


class BlendScorer(CRMScorer):
    """Neural scorer + gradient-boosted trees, weighted on the most recent training rows (stacking)."""

    name = "blend"

    def __init__(
        self,
        holdout_fraction: float = 0.2,
        seed: int = 0,
        neural: dict | None = None,
        gbm: dict | None = None,
    ):
        self.holdout_fraction = holdout_fraction
        self.seed = seed
        self.neural = neural
        self.gbm = gbm

    def fit(self, X, y) -> BlendScorer:
        from sklearn.linear_model import LogisticRegression

        from holocrm_core.scoring.neural import NeuralScorer

        X = as_polars(X)
        y = np.asarray(y).astype(int)
        common = {"holdout_fraction": self.holdout_fraction, "seed": self.seed}
        self.components_ = {
            "neural": NeuralScorer(**common, **(self.neural or {})).fit(X, y),
            "gbm": GradientBoostedScorer(**common, **(self.gbm or {})).fit(X, y),
        }
        held = holdout_mask(X, y, self.holdout_fraction, self.seed)
        if len(np.unique(y[held])) < 2 or len(np.unique(y[~held])) < 2:
            held = holdout_mask(X.drop("outcome_at", strict=False), y, self.holdout_fraction, self.seed)
        names = list(self.components_)
        # Out-of-sample log-odds of the recent rows: the neural net never trained on them, and the trees report
        # those of their first fit (before the refit on all rows).
        logits = np.column_stack(
            [
                self.components_["neural"].decision_logit(X.filter(pl.Series(held))),
                self.components_["gbm"].__dict__.pop("holdout_logit_"),
            ]
        )
        self.weights_, self.intercept_ = {n: 0.0 for n in names}, 0.0
        chosen = names
        while chosen:
            model = LogisticRegression(C=10.0).fit(logits[:, [names.index(n) for n in chosen]], y[held])
            coef = model.coef_.ravel()
            if (coef > 0).all() or len(chosen) == 1:
                self.weights_.update({n: float(c) for n, c in zip(chosen, coef, strict=True)})
                self.intercept_ = float(model.intercept_[0])
                break
            # A negative weight means "bet against this model": drop it rather than trust the sign.
            chosen = [n for n, c in zip(chosen, coef, strict=True) if c > 0] or [chosen[int(np.argmax(coef))]]
        self.selected_ = [n for n in names if self.weights_[n] > 0] or ["neural"]
        self._finish_fit(X)
        return self

    def decision_logit(self, X: pl.DataFrame) -> np.ndarray:
        total = np.full(len(X), self.intercept_)
        for name in self.selected_:
            total += self.weights_[name] * self.components_[name].decision_logit(X)
        return total

    def record_logit(self, record: dict) -> float:
        return self.intercept_ + sum(
            self.weights_[n] * self.components_[n].record_logit(record) for n in self.selected_
        )

    def score_record(self, record: dict) -> float:
        return float(clip_probability(sigmoid(np.array([self.record_logit(record)])))[0])

    def contributions(self, X) -> tuple[np.ndarray, list[str]]:
        X = as_polars(X)
        fields: list[str] = []
        parts = []
        for name in self.selected_:
            values, names = self.components_[name].contributions(X)
            parts.append((self.weights_[name], values, names))
            fields += [f for f in names if f not in fields]
        out = np.zeros((len(X), len(fields)))
        for weight, values, names in parts:
            for k, field in enumerate(names):
                out[:, fields.index(field)] += weight * values[:, k]
        return out, fields

    def phrase_finder(self):
        return self.components_[self.selected_[0]].phrase_finder()
