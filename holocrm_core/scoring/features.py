"""Feature encoding shared by the scorers: a polars feature frame -> a float matrix, grouped per CRM field.

Every learned scorer owns one ``FeatureEncoder`` fitted on its training rows, so the preprocessing travels
with the model (it is pickled inside the MLflow pyfunc) and is never re-fitted on the rows being scored.
Each raw column becomes a *group* of encoded columns; explanations replace one group at a time by its
training average, which is how a score's factors are named in the CRM's words.

Column conventions of a feature frame (the output of ``holocrm_core.outcomes``):
- identifier and bookkeeping columns (``META_COLUMNS``) are never features;
- numeric and boolean columns are numeric features; string columns are categorical;
- ``text_*`` string columns are free text, encoded by TF-IDF reduced with SVD;
- ``text_*`` list-of-string columns are the notes of a record, one per activity: a note rater learned from
  the outcomes (``holocrm_core.scoring.notes``) reads each note as a buying signal, a warning or neither,
  and the record gets the counts, expected counts and shares of each;
- ``emb_*`` list-of-float columns are precomputed embeddings (note embeddings), reduced with PCA so the
  tabular fields keep most of the model's capacity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

META_COLUMNS = frozenset(
    {
        "entity",
        "entity_id",
        "contact_id",
        "deal_id",
        "as_of",
        "outcome_at",
        "label",
        "outcome",
        "outcome_source",
        "predicted_score",
        "predicted_model_version",
        "score",
        "band",
        "reasons",
        "model_version",
        "scored_at",
        "scorer",
        # prediction-time snapshot bookkeeping: when the snapshot was taken, whether the outcome came within
        # the horizon, whether the export dated the decision. Each would leak the outcome as a feature.
        "snapshot_at",
        "within_horizon",
        "outcome_dated",
    }
)
TEXT_PREFIX = "text_"
EMBEDDING_PREFIX = "emb_"

# Categories seen fewer times than this in training share the "other" column: rare values over-fit.
MIN_CATEGORY_COUNT = 5
MAX_CATEGORIES = 40
TEXT_COMPONENTS = 24
# Below this many records with notes there are too few outcomes per phrase to learn a note lexicon
# (holocrm_core.scoring.notes); a direct note classifier does better there.
MIN_RECORDS_FOR_RATER = 1000
EMBEDDING_COMPONENTS = 16


def feature_columns(frame: pl.DataFrame) -> list[str]:
    """The columns of a feature frame a scorer may learn from (everything but ids, outcomes and scores)."""
    return [c for c in frame.columns if c not in META_COLUMNS]


def column_kind(name: str, dtype: pl.DataType) -> str | None:
    if name.startswith(TEXT_PREFIX) and dtype == pl.String:
        return "text"
    if name.startswith(TEXT_PREFIX) and dtype == pl.List(pl.String):
        return "notes"
    if name.startswith(EMBEDDING_PREFIX) and isinstance(dtype, (pl.List, pl.Array)):
        return "embedding"
    if dtype.is_numeric() or dtype == pl.Boolean:
        return "numeric"
    if dtype in (pl.String, pl.Categorical, pl.Enum) or isinstance(dtype, (pl.Categorical, pl.Enum)):
        return "categorical"
    return None  # datetimes, lists of strings: not features


@dataclass
class FeatureGroup:
    """One raw CRM field and the slice of encoded columns it became."""

    name: str
    kind: str
    start: int = 0
    stop: int = 0
    params: dict = field(default_factory=dict)


def _numeric_values(frame: pl.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    col = frame[name]
    if col.dtype == pl.Boolean:
        col = col.cast(pl.Float64)
    elif not col.dtype.is_numeric():
        col = col.cast(pl.Float64, strict=False)
    return col.cast(pl.Float64).fill_nan(None).to_numpy().astype(np.float64, copy=False)


def _string_values(frame: pl.DataFrame, name: str) -> pl.Series:
    if name not in frame.columns:
        return pl.Series(name, [None] * len(frame), dtype=pl.String)
    return frame[name].cast(pl.String)


class FeatureEncoder:
    """Fits on training rows; turns any feature frame with (a subset of) those columns into a matrix."""

    def __init__(
        self, text_components: int = TEXT_COMPONENTS, embedding_components: int = EMBEDDING_COMPONENTS
    ):
        self.text_components = text_components
        self.embedding_components = embedding_components
        self.groups: list[FeatureGroup] = []
        self.width = 0
        self.reference: np.ndarray | None = None

    # -- fitting ------------------------------------------------------------------------------------------
    def fit(self, frame: pl.DataFrame, y: np.ndarray | None = None) -> FeatureEncoder:
        self.groups = []
        for name in feature_columns(frame):
            kind = column_kind(name, frame.schema[name])
            if kind is None:
                continue
            group = FeatureGroup(name, kind)
            fitted = getattr(self, f"_fit_{kind}")(frame, group, y)
            if fitted:
                self.groups.append(group)
        start = 0
        for group in self.groups:
            group.start, group.stop = start, start + group.params["width"]
            start = group.stop
        self.width = start
        # The training average of every encoded column: what "a typical record" looks like to the model.
        self.reference = (
            self.transform(frame).mean(axis=0) if len(frame) else np.zeros(self.width, np.float32)
        )
        return self

    def _fit_numeric(self, frame, group, y) -> bool:
        values = _numeric_values(frame, group.name)
        present = values[~np.isnan(values)]
        if present.size == 0 or np.nanstd(present) == 0 and not np.isnan(values).any():
            return False
        # Counts, money and durations are heavy-tailed: log1p keeps one huge deal from dominating.
        use_log = bool(present.min() >= 0 and present.max() > 20)
        transformed = np.log1p(present) if use_log else present
        mean = float(transformed.mean())
        std = float(transformed.std()) or 1.0
        has_missing = bool(np.isnan(values).any())
        group.params = {
            "log": use_log,
            "mean": mean,
            "std": std,
            "fill": float(np.median(transformed)),
            "missing_flag": has_missing,
            "width": 1 + int(has_missing),
            "median_raw": float(np.median(present)),
        }
        return True

    def _fit_categorical(self, frame, group, y) -> bool:
        values = _string_values(frame, group.name)
        counts = values.drop_nulls().value_counts(sort=True)
        threshold = max(MIN_CATEGORY_COUNT, math.ceil(0.002 * len(frame)))
        kept = [v for v, n in counts.iter_rows() if n >= threshold][:MAX_CATEGORIES]
        if not kept and values.null_count() in (0, len(values)):
            return False
        group.params = {"categories": kept, "width": len(kept) + 2}  # + other + missing
        return True

    def _fit_text(self, frame, group, y) -> bool:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = _string_values(frame, group.name).fill_null("").to_list()
        if sum(1 for t in texts if t) < 20:
            return False
        vectorizer = TfidfVectorizer(
            ngram_range=(1, 2), min_df=3, max_features=4000, sublinear_tf=True, strip_accents="unicode"
        )
        try:
            matrix = vectorizer.fit_transform(texts)
        except ValueError:  # empty vocabulary
            return False
        components = min(self.text_components, matrix.shape[1] - 1, len(texts) - 1)
        if components < 2:
            return False
        svd = TruncatedSVD(n_components=components, random_state=0).fit(matrix)
        reduced = svd.transform(matrix)
        scale = reduced.std(axis=0) + 1e-6
        group.params = {
            "vectorizer": vectorizer,
            "svd": svd,
            "scale": scale,
            "width": components,
            "phrase_weights": _phrase_log_odds(vectorizer, matrix, y),
        }
        return True

    def _fit_embedding(self, frame, group, y) -> bool:
        from sklearn.decomposition import PCA

        matrix = _embedding_matrix(frame, group.name)
        present = ~np.isnan(matrix).any(axis=1)
        if present.sum() < 20:
            return False
        components = min(self.embedding_components, matrix.shape[1], int(present.sum()) - 1)
        pca = PCA(n_components=components, random_state=0).fit(matrix[present])
        reduced = pca.transform(matrix[present])
        group.params = {"pca": pca, "scale": reduced.std(axis=0) + 1e-6, "width": components}
        return True

    def _fit_notes(self, frame, group, y) -> bool:
        from holocrm_core.scoring.notes import NoteRater

        if y is None:
            return False
        row, notes = _exploded_notes(frame, group.name)
        if len(notes) < 50:
            return False
        y = np.asarray(y).astype(int)
        if len(np.unique(y[row])) < 2:
            return False
        if len(np.unique(row)) < MIN_RECORDS_FOR_RATER:
            return self._fit_note_classifier(frame, group, row, notes, y)
        # The rater's note labels come from cross-fitted ratings (see holocrm_core.scoring.notes), so the
        # training rows can be rated by the final rater without their own outcomes leaking in.
        rater = NoteRater().fit(row, notes, y, len(frame))
        group.params = {"rater": rater, "width": len(NOTE_AGGREGATES)}
        signal, warning = rater.rate_series(pl.Series(notes, dtype=pl.String))
        raw = _note_aggregates(row, signal, warning, len(frame))
        group.params["mean"] = raw.mean(axis=0)
        group.params["std"] = raw.std(axis=0) + 1e-6
        group.params["phrase_weights"] = rater.phrase_weights()
        return True

    def _fit_note_classifier(self, frame, group, row, notes, y) -> bool:
        """Few records: one linear note classifier on the record's outcome, cross-fitted on training rows."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import KFold

        note_y = y[row]
        vectorizer = TfidfVectorizer(
            ngram_range=(1, 2), min_df=5, max_features=30000, sublinear_tf=True, strip_accents="unicode"
        )
        matrix = vectorizer.fit_transform(notes)

        def classifier():
            return LogisticRegression(C=1.0, max_iter=2000)

        full = classifier().fit(matrix, note_y)
        # Out-of-fold ratings for the training rows, folds by record so a record's notes stay together.
        oof = np.zeros(len(notes))
        records = np.unique(row)
        for fit_records, rate_records in KFold(n_splits=5, shuffle=True, random_state=0).split(records):
            fit_mask = np.isin(row, records[fit_records])
            rate_mask = ~fit_mask
            if len(np.unique(note_y[fit_mask])) < 2:
                oof[rate_mask] = full.decision_function(matrix[rate_mask])
                continue
            oof[rate_mask] = (
                classifier().fit(matrix[fit_mask], note_y[fit_mask]).decision_function(matrix[rate_mask])
            )
        center = float(np.median(oof))
        spread = float(np.std(oof)) or 1.0
        group.params = {
            "vectorizer": vectorizer,
            "classifier": full,
            "center": center,
            "spread": spread,
            "width": len(NOTE_AGGREGATES),
        }
        raw = _rated_aggregates(row, (oof - center) / spread, len(frame))
        group.params["mean"] = raw.mean(axis=0)
        group.params["std"] = raw.std(axis=0) + 1e-6
        terms = vectorizer.get_feature_names_out()
        coef = full.coef_.ravel()
        strong = np.argsort(-np.abs(coef))[:3000]
        group.params["phrase_weights"] = {str(terms[i]): float(coef[i]) for i in strong}
        self._training_blocks = getattr(self, "_training_blocks", {})
        self._training_blocks[group.name] = ((raw - group.params["mean"]) / group.params["std"]).astype(
            np.float32
        )
        return True

    def fit_transform(self, frame: pl.DataFrame, y: np.ndarray | None = None) -> np.ndarray:
        """Fit, then encode the training rows themselves (note ratings cross-fitted, see module doc)."""
        self._training_blocks = {}
        self.fit(frame, y)
        matrix = self.transform(frame)
        for group in self.groups:
            if group.name in self._training_blocks:
                matrix[:, group.start : group.stop] = self._training_blocks[group.name]
        self._training_blocks = {}
        self.reference = matrix.mean(axis=0) if len(frame) else self.reference
        return matrix

    # -- transforming -------------------------------------------------------------------------------------
    def transform(self, frame: pl.DataFrame) -> np.ndarray:
        out = np.zeros((len(frame), self.width), dtype=np.float32)
        for group in self.groups:
            out[:, group.start : group.stop] = getattr(self, f"_transform_{group.kind}")(frame, group)
        return out

    def transform_record(self, record: dict) -> np.ndarray:
        """One record (field -> value) encoded exactly as ``transform`` encodes a one-row frame, without
        building a frame: the single-score path."""
        out = np.zeros(self.width, dtype=np.float32)
        for group in self.groups:
            value = record.get(group.name)
            p = group.params
            if group.kind == "numeric":
                try:
                    x = float(value) if value is not None else math.nan
                except (TypeError, ValueError):  # pandas' NA, a stray string
                    x = math.nan
                missing = math.isnan(x)
                if p["log"] and not missing:
                    x = math.log1p(max(x, 0.0))
                x = p["fill"] if missing else x
                out[group.start] = min(6.0, max(-6.0, (x - p["mean"]) / p["std"]))
                if p["missing_flag"]:
                    out[group.start + 1] = float(missing)
            elif group.kind == "categorical":
                cats = p["categories"]
                if value is None or isinstance(value, float) and math.isnan(value):
                    out[group.start + len(cats) + 1] = 1.0
                else:
                    value = str(value)
                    out[group.start + (cats.index(value) if value in cats else len(cats))] = 1.0
            elif group.kind == "notes" and "rater" in p:
                notes = (
                    []
                    if value is None or isinstance(value, float)
                    else [n for n in value if isinstance(n, str) and n]
                )
                signal, warning = p["rater"].rate(notes)
                row = np.zeros(len(notes), dtype=np.int64)
                raw = _note_aggregates(row, signal, warning, 1)
                out[group.start : group.stop] = ((raw - p["mean"]) / p["std"])[0]
            else:  # free text, embeddings, the few-records note classifier: the frame path
                missing = value is None or isinstance(value, float) and math.isnan(value)
                if not missing and not isinstance(value, (str, list)):
                    value = list(value)  # a numpy array from a pandas row
                frame = pl.DataFrame({"_one_row": [0]} if missing else {group.name: [value]})
                out[group.start : group.stop] = getattr(self, f"_transform_{group.kind}")(frame, group)[0]
        return out

    def _transform_numeric(self, frame, group) -> np.ndarray:
        p = group.params
        values = _numeric_values(frame, group.name)
        missing = np.isnan(values)
        if p["log"]:
            values = np.log1p(np.clip(values, 0, None))
        values = np.where(missing, p["fill"], values)
        # Clipping keeps an out-of-range value (a typo, a whale deal) from saturating the network.
        block = [np.clip((values - p["mean"]) / p["std"], -6, 6)]
        if p["missing_flag"]:
            block.append(missing.astype(np.float64))
        return np.column_stack(block)

    def _transform_categorical(self, frame, group) -> np.ndarray:
        cats = group.params["categories"]
        values = _string_values(frame, group.name)
        lookup = {c: i for i, c in enumerate(cats)}
        # replace_strict sends nulls to the default ("other") too: missing gets its own column explicitly.
        index = values.replace_strict(lookup, default=len(cats), return_dtype=pl.Int64)
        index = np.where(values.is_null().to_numpy(), len(cats) + 1, index.to_numpy())
        block = np.zeros((len(frame), len(cats) + 2), dtype=np.float32)
        block[np.arange(len(frame)), index] = 1.0
        return block

    def _transform_text(self, frame, group) -> np.ndarray:
        p = group.params
        texts = _string_values(frame, group.name).fill_null("")
        block = np.zeros((len(frame), p["width"]), dtype=np.float32)
        has_text = (texts.str.len_chars() > 0).to_numpy()
        if has_text.any():
            # Only rows with notes go through TF-IDF: an empty note encodes to the same vector anyway.
            rows = texts.filter(pl.Series(has_text)).to_list()
            block[has_text] = p["svd"].transform(p["vectorizer"].transform(rows)) / p["scale"]
        return block

    def _transform_notes(self, frame, group) -> np.ndarray:
        p = group.params
        row, notes = _exploded_notes_series(frame, group.name)
        if "rater" in p:
            signal, warning = p["rater"].rate_series(notes)
            raw = _note_aggregates(row, signal, warning, len(frame))
        else:
            ratings = np.zeros(0)
            if len(notes):
                ratings = (
                    p["classifier"].decision_function(p["vectorizer"].transform(notes.to_list()))
                    - p["center"]
                ) / p["spread"]
            raw = _rated_aggregates(row, ratings, len(frame))
        return (raw - p["mean"]) / p["std"]

    def _transform_embedding(self, frame, group) -> np.ndarray:
        p = group.params
        block = np.zeros((len(frame), p["width"]), dtype=np.float32)
        if group.name not in frame.columns:
            return block
        matrix = _embedding_matrix(frame, group.name)
        present = ~np.isnan(matrix).any(axis=1)
        if present.any():
            block[present] = p["pca"].transform(matrix[present]) / p["scale"]
        return block

    # -- explaining ---------------------------------------------------------------------------------------
    def group_names(self) -> list[str]:
        return [g.name for g in self.groups]

    def phrases_in(self, group: FeatureGroup, text: str, sign: int, limit: int = 2) -> list[str]:
        """Phrases of a note that pushed in the direction ``sign`` (+1 raises, -1 lowers) in training."""
        weights = group.params.get("phrase_weights") or {}
        if isinstance(text, (list, tuple)):
            text = " | ".join(t for t in text[:10] if t)  # the most recent notes are named
        if not text or not weights:
            return []
        if "vectorizer" in group.params:
            analyzer = group.params["vectorizer"].build_analyzer()
        else:
            from holocrm_core.scoring.notes import phrases as analyzer
        seen = {t for t in analyzer(text) if t in weights}

        def strength(term: str) -> float:
            # A phrase is as strong as its weakest word: "pricing concerns" beats "concerns hi".
            parts = [term, *term.split()] if " " in term else [term]
            return min(sign * weights.get(p, 0.0) for p in parts) + (0.01 if " " in term else 0.0)

        ranked = sorted(seen, key=lambda t: -strength(t))
        picked: list[str] = []
        for term in ranked:
            if strength(term) <= 0.01 or len(picked) >= limit:
                break
            if any(set(term.split()) & set(p.split()) for p in picked):
                continue  # "budget" adds nothing next to "budget approved"
            picked.append(term)
        return picked


NOTE_AGGREGATES = [
    "signal_notes",
    "warning_notes",
    "signal_sum",
    "warning_sum",
    "signal_share",
    "warning_share",
    "notes",
]


def _exploded_notes_series(frame: pl.DataFrame, name: str) -> tuple[np.ndarray, pl.Series]:
    if name not in frame.columns or not len(frame):
        return np.zeros(0, dtype=np.int64), pl.Series([], dtype=pl.String)
    exploded = (
        frame.select(pl.col(name))
        .with_row_index("_row")
        .explode(name)
        .drop_nulls(name)
        .filter(pl.col(name).str.len_chars() > 0)
    )
    return exploded["_row"].to_numpy().astype(np.int64), exploded[name]


def _exploded_notes(frame: pl.DataFrame, name: str) -> tuple[np.ndarray, list[str]]:
    row, notes = _exploded_notes_series(frame, name)
    return row, notes.to_list()


def _note_aggregates(row: np.ndarray, signal: np.ndarray, warning: np.ndarray, n: int) -> np.ndarray:
    """Per record: notes that read as buying signals / warnings, expected numbers of each (sum of
    probabilities), their shares of the notes, and how many notes there are."""
    count = np.bincount(row, minlength=n).astype(np.float64)
    signals = np.bincount(row, weights=signal > 0.5, minlength=n)
    warnings = np.bincount(row, weights=warning > 0.5, minlength=n)
    signal_sum = np.bincount(row, weights=signal, minlength=n)
    warning_sum = np.bincount(row, weights=warning, minlength=n)
    safe = np.maximum(count, 1.0)
    return np.column_stack(
        [signals, warnings, signal_sum, warning_sum, signals / safe, warnings / safe, np.log1p(count)]
    )


# Few records: a note rated this many spreads above (below) the typical note reads as a signal (warning).
NOTE_SIGNAL = 1.0


def _rated_aggregates(row: np.ndarray, ratings: np.ndarray, n: int) -> np.ndarray:
    """The same columns as ``_note_aggregates`` from one rating per note (the few-records classifier)."""
    signal = 1.0 / (1.0 + np.exp(-2.0 * (ratings - NOTE_SIGNAL)))
    warning = 1.0 / (1.0 + np.exp(2.0 * (ratings + NOTE_SIGNAL)))
    return _note_aggregates(row, signal, warning, n)


def _embedding_matrix(frame: pl.DataFrame, name: str) -> np.ndarray:
    col = frame[name]
    width = max((len(v) for v in col.drop_nulls().to_list()[:50]), default=0)
    out = np.full((len(frame), width), np.nan, dtype=np.float32)
    for i, v in enumerate(col.to_list()):
        if v is not None and len(v) == width:
            out[i] = v
    return out


def _phrase_log_odds(vectorizer, matrix, y) -> dict[str, float]:
    """Smoothed log-odds of each phrase among positive vs negative outcomes (for naming note reasons)."""
    if y is None:
        return {}
    y = np.asarray(y).astype(bool)
    if y.all() or not y.any():
        return {}
    present = (matrix > 0).astype(np.float64)
    pos = np.asarray(present[y].sum(axis=0)).ravel()
    neg = np.asarray(present[~y].sum(axis=0)).ravel()
    log_odds = np.log((pos + 1) / (y.sum() + 2)) - np.log((neg + 1) / ((~y).sum() + 2))
    # Keep phrases seen often enough that their direction is not noise.
    support = pos + neg
    terms = vectorizer.get_feature_names_out()
    keep = np.where(support >= 5)[0]
    return {str(terms[i]): float(log_odds[i]) for i in keep}
