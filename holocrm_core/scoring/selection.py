"""Model selection a data scientist would trust: rolling-origin time folds over every candidate scorer.

Candidates (``CANDIDATES``): the weighted heuristic, a regularised logistic regression on one-hot and
scaled fields (the plain baseline), gradient boosting, the neural scorer, and their blend (the mean
log-odds of the three learned ones, so it costs no extra training). Each is trained on everything older
than a fold and judged on the fold (``rolling_folds``: three consecutive slices of the newest rows, newest
last). The chosen candidate has the lowest mean held-out log loss; AUC, log loss and ECE are kept per fold.

Calibration is refitted on the newest slice: the chosen candidate's fold model scored that slice without
having seen it, and a Platt map from those log-odds to the outcomes is put on top of the final model
(refitted on every row). ``recalibrated`` figures per fold measure that recipe honestly: fold k's scores
are mapped with the Platt fit on fold k-1. The map is kept only where that evidence says it helps (lower
mean recalibrated log loss than the candidate's own calibration on the same folds): after a shift that
reverses between slices (seen on a 78k win/loss export) a map fitted on the previous slice makes the
next one worse, and the candidate's own calibration on its most recent training rows is then used.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from holocrm_core.scoring.base import CRMScorer, as_polars
from holocrm_core.scoring.calibration import PlattScaler, logit, quality
from holocrm_core.scoring.features import FeatureEncoder

CANDIDATES = ("heuristic", "logistic", "gbm", "neural", "blend")
BLENDED = ("logistic", "gbm", "neural")
FOLDS = 3
FOLD_FRACTION = 0.15  # each fold is this share of the rows; the oldest 55% only ever train
ORDER_COLUMNS = ("outcome_at",)


class LogisticScorer(CRMScorer):
    """Regularised logistic regression on one-hot picklists and scaled numbers: the plain baseline."""

    name = "logistic"

    def __init__(self, C: float = 0.5, max_iter: int = 2000):
        self.C = C
        self.max_iter = max_iter

    def fit(self, X, y) -> LogisticScorer:
        from sklearn.linear_model import LogisticRegression

        X = as_polars(X)
        y = np.asarray(y).astype(int)
        self.encoder_ = FeatureEncoder()
        matrix = self.encoder_.fit_transform(X, y)
        self.model_ = LogisticRegression(C=self.C, max_iter=self.max_iter).fit(matrix, y)
        self._finish_fit(X)
        return self

    def _logit_matrix(self, matrix: np.ndarray) -> np.ndarray:
        return self.model_.decision_function(matrix).astype(np.float64)

    def decision_logit(self, X: pl.DataFrame) -> np.ndarray:
        return self._logit_matrix(self.encoder_.transform(X))

    def score_record(self, record: dict) -> float:
        from holocrm_core.scoring.calibration import clip_probability, sigmoid

        z = self._logit_matrix(self.encoder_.transform_record(record)[None, :])
        return float(clip_probability(sigmoid(z))[0])

    def contributions(self, X) -> tuple[np.ndarray, list[str]]:
        X = as_polars(X)
        delta = (self.encoder_.transform(X) - self.encoder_.reference) * self.model_.coef_.ravel()
        groups = self.encoder_.groups
        out = (
            np.column_stack([delta[:, g.start : g.stop].sum(axis=1) for g in groups])
            if groups
            else np.zeros((len(X), 0))
        )
        return out, [g.name for g in groups]

    def phrase_finder(self):
        groups = {g.name: g for g in self.encoder_.groups}
        return lambda f, text, sign: self.encoder_.phrases_in(groups[f], text, sign) if f in groups else []


class BlendedScorer(CRMScorer):
    """The mean calibrated log-odds of several fitted scorers (reasons: the mean of their contributions)."""

    name = "blend"

    def __init__(self, members: list | None = None):
        self.members = members or []

    def fit(self, X, y) -> BlendedScorer:
        for member in self.members:
            member.fit(X, y)
        self._finish_fit(as_polars(X))
        return self

    def decision_logit(self, X: pl.DataFrame) -> np.ndarray:
        return np.mean([m.decision_logit(X) for m in self.members], axis=0)

    def score_record(self, record: dict) -> float:
        from holocrm_core.scoring.calibration import clip_probability, sigmoid

        z = np.mean([logit(np.array([m.score_record(record)]))[0] for m in self.members])
        return float(clip_probability(sigmoid(np.array([z])))[0])

    def contributions(self, X) -> tuple[np.ndarray, list[str]]:
        X = as_polars(X)
        parts = [m.contributions(X) for m in self.members]
        fields = sorted({f for _, names in parts for f in names})
        index = {f: i for i, f in enumerate(fields)}
        out = np.zeros((len(X), len(fields)))
        for values, names in parts:
            for j, name in enumerate(names):
                out[:, index[name]] += values[:, j] / len(parts)
        return out, fields

    def phrase_finder(self):
        finders = [f for m in self.members if (f := m.phrase_finder()) is not None]
        return (
            (lambda f, text, sign: next((p for fn in finders if (p := fn(f, text, sign))), []))
            if finders
            else None
        )


class RecalibratedScorer(CRMScorer):
    """A fitted scorer with a Platt map on its log-odds, learned on the newest slice of outcomes."""

    def __init__(self, scorer=None, calibration: PlattScaler | None = None):
        self.scorer = scorer
        self.calibration = calibration or PlattScaler()

    @property
    def name(self) -> str:  # type: ignore[override]
        return getattr(self.scorer, "name", "scorer")

    def fit(self, X, y) -> RecalibratedScorer:
        self.scorer.fit(X, y)
        self._finish_fit(as_polars(X))
        return self

    def decision_logit(self, X: pl.DataFrame) -> np.ndarray:
        return self.calibration.logit(self.scorer.decision_logit(X))

    def score_record(self, record: dict) -> float:
        if hasattr(self.scorer, "score_record"):
            from holocrm_core.scoring.calibration import clip_probability, sigmoid

            z = self.calibration.logit(logit(np.array([self.scorer.score_record(record)])))
            return float(clip_probability(sigmoid(z))[0])
        return float(self.predict_proba(pl.DataFrame([record]))[0, 1])

    def contributions(self, X) -> tuple[np.ndarray, list[str]]:
        values, names = self.scorer.contributions(X)
        return values * self.calibration.a, names

    def phrase_finder(self):
        return self.scorer.phrase_finder()


def make_candidate(name: str, named: str | None = None, **params):
    """A fresh, unfitted candidate; ``params`` reach the candidates whose constructor takes them. The
    strategy asked for by name (``named``) is built exactly as ``make_strategy`` builds it."""
    from holocrm_core.scoring import make_strategy

    if name == named:
        return make_strategy(name, **params)
    if name == "logistic":
        return LogisticScorer(**_accepted(LogisticScorer, params))
    if name == "blend":
        return BlendedScorer([make_candidate(m, **params) for m in BLENDED])
    from holocrm_core.scoring import STRATEGIES

    factory = STRATEGIES[name]
    target = factory if inspect.isclass(factory) else _strategy_class(name)
    return make_strategy(name, **_accepted(target, params))


def _strategy_class(name: str):
    if name == "neural":
        from holocrm_core.scoring.neural import NeuralScorer

        return NeuralScorer
    from holocrm_core.scoring import boosting

    return {"gbm": boosting.GradientBoostedScorer, "blend_stacked": boosting.BlendScorer}.get(name, CRMScorer)


def _accepted(cls, params: dict) -> dict:
    try:
        names = set(inspect.signature(cls.__init__).parameters)
    except (TypeError, ValueError):
        return {}
    return {k: v for k, v in params.items() if k in names}


# -- folds ------------------------------------------------------------------------------------------------
def rolling_folds(
    rows: pl.DataFrame, folds: int = FOLDS, fold_fraction: float = FOLD_FRACTION
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train_index, test_index)`` per fold, newest last; rows must be in time order.

    A record's snapshots share their outcome time, so a boundary is moved past rows with the same outcome
    time as the row before it (a record never straddles a fold); an export without dates (one time for
    all) is split by its row order.
    """
    n = rows.height
    size = max(1, int(round(fold_fraction * n)))
    first = n - folds * size
    if first < 1:
        return []
    times = rows["outcome_at"].to_physical().to_numpy() if "outcome_at" in rows.columns else np.arange(n)
    ids = rows["entity_id"].to_list() if "entity_id" in rows.columns else list(range(n))

    def boundary(at: int) -> int:
        # Never split one record's snapshots; ties between different records may be split.
        while 0 < at < n and ids[at] == ids[at - 1] and times[at] == times[at - 1]:
            at += 1
        return at

    edges = [boundary(first + k * size) for k in range(folds)] + [n]
    out = []
    for k in range(folds):
        lo, hi = edges[k], edges[k + 1]
        if hi > lo:
            out.append((np.arange(lo), np.arange(lo, hi)))
    return out


# -- the selection round ------------------------------------------------------------------------------------
@dataclass
class CandidateResult:
    name: str
    folds: list[dict] = field(default_factory=list)  # per fold: auc, log_loss, ece, rows (+ recalibrated)
    newest_scores: np.ndarray | None = None
    newest_logits: np.ndarray | None = None
    previous_logits: np.ndarray | None = None  # the fold before the newest, to recalibrate as served
    previous_y: np.ndarray | None = None
    error: str | None = None

    @property
    def served_newest_scores(self) -> np.ndarray | None:
        """Newest-fold scores with the calibration the final model gets (see ``recalibration_helps``)."""
        if self.newest_logits is None:
            return None
        if self.recalibration_helps and self.previous_logits is not None:
            return PlattScaler().fit(self.previous_logits, self.previous_y)(self.newest_logits)
        return self.newest_scores

    @property
    def recalibration_helps(self) -> bool:
        """Did a Platt map fitted on the previous slice lower log loss on the next one, on average?"""
        pairs = [
            (f["log_loss"], f["recalibrated_log_loss"]) for f in self.folds if "recalibrated_log_loss" in f
        ]
        return bool(pairs) and float(np.mean([b for _, b in pairs])) < float(np.mean([a for a, _ in pairs]))

    @property
    def newest_ece(self) -> float:
        """ECE on the newest fold of the calibration the final model gets."""
        newest = self.newest
        return (
            newest.get("recalibrated_ece", float("nan"))
            if self.recalibration_helps
            else newest.get("ece", float("nan"))
        )

    def mean(self, metric: str) -> float:
        values = [f[metric] for f in self.folds if f.get(metric) == f.get(metric)]
        return float(np.mean(values)) if values else float("nan")

    @property
    def newest(self) -> dict:
        return self.folds[-1] if self.folds else {}

    def summary(self) -> dict:
        return {
            "mean_log_loss": round(self.mean("log_loss"), 4),
            "mean_auc": round(self.mean("auc"), 4),
            "mean_ece": round(self.mean("ece"), 4),
            "recalibrate_on_newest_slice": self.recalibration_helps,
            "newest_fold_ece_as_served": round(self.newest_ece, 4),
            "folds": [
                {k: round(v, 4) if isinstance(v, float) else v for k, v in f.items()} for f in self.folds
            ],
            **({"error": self.error} if self.error else {}),
        }


@dataclass
class Selection:
    chosen: str
    candidates: dict[str, CandidateResult]
    folds: list[tuple[np.ndarray, np.ndarray]]

    def summary(self) -> dict:
        return {
            "chosen": self.chosen,
            "by": "mean held-out log loss over rolling time folds",
            "candidates": {n: c.summary() for n, c in self.candidates.items()},
        }


def _fold_metrics(y: np.ndarray, p: np.ndarray) -> dict:
    q = quality(y, p)
    return {
        "auc": q["auc"],
        "log_loss": q["log_loss"],
        "ece": q["ece"],
        "rows": len(y),
        "positives": int(y.sum()),
    }


def evaluate_candidates(
    rows: pl.DataFrame, candidates=CANDIDATES, folds: int = FOLDS, named: str | None = None, **params
) -> Selection:
    """Every candidate on the same rolling time folds; the lowest mean log loss is chosen."""
    y = rows["label"].to_numpy().astype(int)
    splits = rolling_folds(rows, folds)
    results = {name: CandidateResult(name) for name in candidates}
    learned = [n for n in candidates if n != "blend" or named == "blend"]
    for k, (train, test) in enumerate(splits):
        fit_rows, test_rows = rows[train], rows[test]
        if len(np.unique(y[train])) < 2:
            continue
        fold_logits: dict[str, np.ndarray] = {}
        for name in learned:
            if results[name].error:
                continue
            try:
                model = make_candidate(name, named, **params).fit(fit_rows, y[train])
                fold_logits[name] = model.decision_logit(as_polars(test_rows))
            except Exception as exc:  # noqa: BLE001 - a candidate that cannot fit these rows drops out, named
                results[name].error = f"{type(exc).__name__}: {exc}"[:300]
        if "blend" in results and named != "blend" and all(m in fold_logits for m in BLENDED):
            fold_logits["blend"] = np.mean([fold_logits[m] for m in BLENDED], axis=0)
        for name, z in fold_logits.items():
            result = results[name]
            p = 1.0 / (1.0 + np.exp(-z))
            metrics = _fold_metrics(y[test], p)
            if result.newest_logits is not None and k > 0:
                previous_y = y[splits[k - 1][1]]
                platt = PlattScaler().fit(result.newest_logits, previous_y)
                metrics["recalibrated_ece"] = quality(y[test], platt(z))["ece"]
                metrics["recalibrated_log_loss"] = quality(y[test], platt(z))["log_loss"]
            result.folds.append(metrics)
            if result.newest_logits is not None:
                result.previous_logits, result.previous_y = result.newest_logits, y[splits[k - 1][1]]
            result.newest_logits, result.newest_scores = z, p
    complete = [n for n, r in results.items() if r.folds and not r.error and len(r.folds) == len(splits)]
    chosen = min(complete, key=lambda n: results[n].mean("log_loss")) if complete else "heuristic"
    return Selection(chosen, results, splits)


def final_scorer(selection: Selection, rows: pl.DataFrame, named: str | None = None, **params):
    """The chosen candidate refitted on every row, with its calibration refitted on the newest slice."""
    y = rows["label"].to_numpy().astype(int)
    model = make_candidate(selection.chosen, named, **params).fit(rows, y)
    chosen = selection.candidates[selection.chosen]
    if chosen.newest_logits is None or not selection.folds or not chosen.recalibration_helps:
        return model
    newest_y = y[selection.folds[-1][1]]
    platt = PlattScaler().fit(chosen.newest_logits, newest_y)
    wrapped = RecalibratedScorer(model, platt)
    wrapped._finish_fit(as_polars(rows))
    return wrapped


__all__ = [
    "CANDIDATES",
    "BlendedScorer",
    "CandidateResult",
    "LogisticScorer",
    "RecalibratedScorer",
    "Selection",
    "evaluate_candidates",
    "final_scorer",
    "make_candidate",
    "rolling_folds",
]
