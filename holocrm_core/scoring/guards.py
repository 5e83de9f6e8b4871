"""Leak guards and adversarial validation: fields that give the outcome away, and training rows unlike today's.

Two questions are asked before any scorer learns:

- **Leak guard**, per field (numbers, picklists, custom fields, free text and notes alike): does the field
  on its own predict the outcome of *newer* records almost perfectly (held-out AUC above ``LEAK_AUC``,
  trained on the older 70%)? Or do its values tell decided records from open ones almost perfectly (a
  field filled in at the decision, such as "days to close" or a forecast category of "closed")? Either way
  the field is excluded and named, with the reason.
- **Adversarial validation**: can a classifier tell the training snapshots from the open records being
  scored? Near AUC 0.5 means the model is used on data like what it learned from. Above
  ``ADVERSARIAL_WARN`` it warns, above ``ADVERSARIAL_BLOCK`` the gate blocks promotion; both name the
  fields that separate the two.

Every single-field check encodes the field the same way: numbers in quantile bins (plus "missing"),
picklists by value, text by a bag-of-words logistic regression; the score of a bin is its outcome rate on
the fitting part, smoothed toward the overall rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from holocrm_core.scoring.features import column_kind, feature_columns

LEAK_AUC = 0.95
ADVERSARIAL_WARN = 0.7
ADVERSARIAL_BLOCK = 0.85
# Fewer open records than this cannot show what "before the outcome" looks like: those checks are skipped.
MIN_OPEN = 20
MIN_ROWS = 60
SAMPLE = 2500
BINS = 20
SMOOTHING = 10.0


@dataclass(frozen=True)
class ExcludedField:
    field: str
    reason: str
    auc: float


@dataclass
class GuardReport:
    """What the guards found: excluded fields, the adversarial AUC and level, the separating fields."""

    excluded: list[ExcludedField] = field(default_factory=list)
    adversarial_auc: float | None = None
    level: str = "skipped"  # ok | warn | block | skipped
    separating: list[tuple[str, float]] = field(default_factory=list)
    message: str = ""

    @property
    def excluded_fields(self) -> list[str]:
        return [e.field for e in self.excluded]

    @property
    def blocks(self) -> bool:
        return self.level == "block"

    def summary(self) -> str:
        """One line for the run, the asset and the CLI."""
        parts = []
        if self.excluded:
            parts.append("excluded " + "; ".join(f"{e.field} ({e.reason})" for e in self.excluded))
        if self.message:
            parts.append(self.message)
        return ". ".join(parts) or "no leaking field, training rows look like the open records"


def _codes(
    values: pl.Series, kind: str, edges: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """A field as discrete codes (strings): value bins for numbers, the value itself for picklists."""
    if kind == "numeric":
        x = values.cast(pl.Float64, strict=False).fill_nan(None).to_numpy().astype(np.float64)
        if edges is None:
            finite = x[~np.isnan(x)]
            edges = (
                np.unique(np.quantile(finite, np.linspace(0, 1, BINS + 1)[1:-1]))
                if len(finite)
                else np.array([])
            )
        codes = np.where(np.isnan(x), -1, np.searchsorted(edges, np.nan_to_num(x), side="right"))
        return codes.astype(str), edges
    return np.asarray(values.cast(pl.String).fill_null("\x00missing").to_list(), dtype=object), None


def _rate_scores(fit_codes, fit_y, score_codes) -> np.ndarray:
    prior = float(np.mean(fit_y))
    sums: dict = {}
    for code, label in zip(fit_codes.tolist(), fit_y.tolist(), strict=True):
        s = sums.setdefault(code, [0.0, 0])
        s[0] += label
        s[1] += 1
    rates = {c: (s + SMOOTHING * prior) / (n + SMOOTHING) for c, (s, n) in sums.items()}
    return np.array([rates.get(c, prior) for c in score_codes.tolist()])


def _text(values: pl.Series) -> list[str]:
    if values.dtype == pl.List(pl.String):
        return [" | ".join(v or []) for v in values.to_list()]
    return values.cast(pl.String).fill_null("").to_list()


def single_field_auc(
    fit: pl.Series, fit_y: np.ndarray, held: pl.Series, held_y: np.ndarray, kind: str
) -> float:
    """Held-out AUC of one field alone (fitted on ``fit``, judged on ``held``); NaN when it cannot be told."""
    from sklearn.metrics import roc_auc_score

    fit_y = np.asarray(fit_y).astype(int)
    held_y = np.asarray(held_y).astype(int)
    if len(np.unique(fit_y)) < 2 or len(np.unique(held_y)) < 2:
        return float("nan")
    if kind in ("text", "notes"):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        fit_text, held_text = _text(fit), _text(held)
        if not any(fit_text):
            return float("nan")
        try:
            vectorizer = TfidfVectorizer(min_df=3, max_features=3000, ngram_range=(1, 2), sublinear_tf=True)
            matrix = vectorizer.fit_transform(fit_text)
        except ValueError:  # too few words to keep any
            return float("nan")
        model = LogisticRegression(C=1.0, max_iter=500).fit(matrix, fit_y)
        scores = model.predict_proba(vectorizer.transform(held_text))[:, 1]
    else:
        fit_codes, edges = _codes(fit, kind)
        held_codes, _ = _codes(held, kind, edges)
        scores = _rate_scores(fit_codes, fit_y, held_codes)
    return float(roc_auc_score(held_y, scores))


GUARDED_KINDS = ("numeric", "categorical", "text", "notes")


def guarded_fields(frame: pl.DataFrame) -> list[tuple[str, str]]:
    return [(c, k) for c in feature_columns(frame) if (k := column_kind(c, frame.schema[c])) in GUARDED_KINDS]


def _sample(frame: pl.DataFrame, n: int, seed: int = 0) -> pl.DataFrame:
    return frame if frame.height <= n else frame.sample(n, seed=seed)


def leak_guard(
    decided: pl.DataFrame, still_open: pl.DataFrame | None = None, threshold: float = LEAK_AUC
) -> list[ExcludedField]:
    """Fields to exclude: too good alone on newer outcomes, or telling decided from open records.

    ``decided`` is in time order (the outcome dataset's order); the older 70% fit, the newest 30% judge.
    """
    if decided.height < MIN_ROWS:
        return []
    if decided.height > 2 * SAMPLE:  # every k-th row keeps the time order
        decided = decided.gather_every(decided.height // (2 * SAMPLE))
    y = decided["label"].to_numpy().astype(int)
    cut = int(0.7 * decided.height)
    found: list[ExcludedField] = []
    for name, kind in guarded_fields(decided):
        auc = single_field_auc(decided[name][:cut], y[:cut], decided[name][cut:], y[cut:], kind)
        if not np.isnan(auc) and auc > threshold:
            found.append(
                ExcludedField(name, f"alone it predicts newer outcomes with AUC {auc:.3f}", round(auc, 4))
            )
    if still_open is not None and still_open.height >= MIN_OPEN:
        known = {f.field for f in found}
        for name, auc in decided_vs_open(decided, still_open):
            if name not in known and auc > threshold:
                found.append(
                    ExcludedField(
                        name,
                        f"its values tell decided from open records (AUC {auc:.3f}): set at the decision",
                        round(auc, 4),
                    )
                )
    return found


def _adversarial_frames(decided: pl.DataFrame, still_open: pl.DataFrame) -> tuple[pl.DataFrame, np.ndarray]:
    a = _sample(decided, SAMPLE)
    b = _sample(still_open, SAMPLE, seed=1)
    common = [c for c in feature_columns(a) if c in b.columns]
    both = pl.concat([a.select(common), b.select(common)], how="vertical_relaxed")
    is_open = np.r_[np.zeros(a.height, dtype=int), np.ones(b.height, dtype=int)]
    order = np.random.default_rng(0).permutation(both.height)
    return both[order], is_open[order]


def decided_vs_open(decided: pl.DataFrame, still_open: pl.DataFrame) -> list[tuple[str, float]]:
    """Each field's held-out AUC at telling training snapshots from open records, strongest first."""
    both, is_open = _adversarial_frames(decided, still_open)
    half = both.height // 2
    out = []
    for name, kind in guarded_fields(both):
        auc = single_field_auc(both[name][:half], is_open[:half], both[name][half:], is_open[half:], kind)
        if not np.isnan(auc):
            out.append((name, round(auc, 4)))
    return sorted(out, key=lambda item: -item[1])


def adversarial_auc(decided: pl.DataFrame, still_open: pl.DataFrame, exclude: list[str] = ()) -> float:
    """Cross-validated AUC of gradient boosting telling training snapshots from open records."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    both, is_open = _adversarial_frames(
        decided.drop(exclude, strict=False), still_open.drop(exclude, strict=False)
    )
    columns, categorical = [], []
    for name, kind in guarded_fields(both):
        if kind == "numeric":
            columns.append(
                both[name].cast(pl.Float64, strict=False).fill_nan(None).to_numpy().astype(np.float64)
            )
            categorical.append(False)
        elif kind == "categorical":
            counts = both[name].cast(pl.String).value_counts(sort=True).head(200)
            lookup = {v: float(i) for i, v in enumerate(counts[name].to_list()) if v is not None}
            codes = [
                lookup.get(v, np.nan if v is None else 200.0) for v in both[name].cast(pl.String).to_list()
            ]
            columns.append(np.asarray(codes, dtype=np.float64))
            categorical.append(True)
        else:  # text and notes: how much of it there is
            columns.append(np.asarray([len(t) for t in _text(both[name])], dtype=np.float64))
            categorical.append(False)
    if not columns:
        return float("nan")
    from holocrm_core.scoring.boosting import _tree_threads

    matrix = np.column_stack(columns)
    model = HistGradientBoostingClassifier(
        max_iter=60,
        learning_rate=0.15,
        max_leaf_nodes=15,
        categorical_features=np.array(categorical),
        random_state=0,
    )
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    with _tree_threads():  # spinning OpenMP threads on a busy machine cost more than they give
        p = cross_val_predict(model, matrix, is_open, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(is_open, p))


def check_training_data(
    decided: pl.DataFrame,
    still_open: pl.DataFrame | None = None,
    leak_threshold: float = LEAK_AUC,
    warn: float = ADVERSARIAL_WARN,
    block: float = ADVERSARIAL_BLOCK,
) -> GuardReport:
    """Leak guard, then adversarial validation on the fields that remain."""
    report = GuardReport(excluded=leak_guard(decided, still_open, leak_threshold))
    if still_open is None or still_open.height < MIN_OPEN or decided.height < MIN_ROWS:
        report.message = "adversarial check skipped: fewer than 20 open records to compare with"
        return report
    excluded = report.excluded_fields
    report.adversarial_auc = round(adversarial_auc(decided, still_open, excluded), 4)
    kept = decided.drop(excluded, strict=False)
    report.separating = [
        (n, a) for n, a in decided_vs_open(kept, still_open.drop(excluded, strict=False)) if a > 0.6
    ][:5]
    named = ", ".join(f"{n} (AUC {a:.2f})" for n, a in report.separating) or "no single field"
    auc = report.adversarial_auc
    if auc > block:
        report.level = "block"
        report.message = (
            f"training snapshots differ from the open records being scored (adversarial AUC "
            f"{auc:.3f} above {block}); separating: {named}"
        )
    elif auc > warn:
        report.level = "warn"
        report.message = (
            f"training snapshots drift from the open records (adversarial AUC {auc:.3f}); separating: {named}"
        )
    else:
        report.level = "ok"
        report.message = f"training snapshots look like the open records (adversarial AUC {auc:.3f})"
    return report


__all__ = [
    "ADVERSARIAL_BLOCK",
    "ADVERSARIAL_WARN",
    "LEAK_AUC",
    "ExcludedField",
    "GuardReport",
    "adversarial_auc",
    "check_training_data",
    "decided_vs_open",
    "leak_guard",
    "single_field_auc",
]
