"""Reading the notes of a lead or deal: which notes are buying signals, which are warnings, learned from outcomes.

Nobody labels notes, so the labels come from the outcomes in three steps:

1. every sentence of every note is split into words and word pairs; a record-level logistic regression on
   the *sum* of its sentences' words learns how much each word moves the odds of winning (cross-fitted: a
   record's sentences are rated by a model that never saw that record's outcome, so names and other
   record-specific words cannot leak it);
2. the ratings of sentences fall into three groups (clearly up, clearly down, neither); the cut points are
   found from the ratings themselves (Otsu's method on each side of the median), and each note takes the
   label of its most extreme sentence;
3. a note classifier (buying signal / warning / neither) is trained on those labels and retrained on its own
   answers twice (self-training): a phrase that is usually a warning becomes a warning everywhere, which
   removes most of the noise of step 1.

The classifier is kept as a *lexicon* (phrase -> weight per class), so rating notes needs no scikit-learn:
a million notes are rated in polars (Aho-Corasick phrase matching), a single note in plain Python, and both
give the same numbers.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl

SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")
WORD = re.compile(r"[a-z0-9]+")
NOT_WORD = r"[^a-z0-9]+"
CLASSES = ("neither", "signal", "warning")
# Phrases whose weights move a note's class logits by less than this are left out of the lexicon.
LEXICON_MIN_WEIGHT = 0.02
MAX_LEXICON = 4000
# Ratings of this many distinct notes are remembered per rater (about 24 bytes each, plus the hash table).
MAX_REMEMBERED_NOTES = 5_000_000
NOTE_HASH_SEED = 20261125
# Fewer notes than this are rated directly, without the memory (its join would cost more than the rating).
DIRECT_RATING_NOTES = 64


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def phrases(text: str) -> list[str]:
    """Words and adjacent word pairs of a text (the units the lexicon weighs)."""
    w = words(text)
    return w + [f"{a} {b}" for a, b in zip(w, w[1:])]


def _otsu(values: np.ndarray) -> float:
    """The cut that best separates ``values`` into two groups (largest between-group variance)."""
    v = np.sort(values)
    if len(v) < 10:
        return float(v[-1]) if len(v) else 0.0
    cumulative = np.cumsum(v)
    n = len(v)
    k = np.arange(1, n)
    mean_low = cumulative[:-1] / k
    mean_high = (cumulative[-1] - cumulative[:-1]) / (n - k)
    between = k * (n - k) * (mean_high - mean_low) ** 2
    lo, hi = int(0.02 * n), int(0.98 * n)  # a cut isolating a handful of outliers is no separation
    best = lo + int(np.argmax(between[lo:hi])) if hi > lo else n // 2
    return float((v[best] + v[best + 1]) / 2) if best + 1 < n else float(v[best])


class NoteRater:
    """Learns from outcomes which notes are buying signals and which are warnings; rates any note."""

    def __init__(
        self, record_c: float = 0.03, note_c: float = 1.0, folds: int = 5, rounds: int = 2, seed: int = 0
    ):
        self.record_c = record_c
        self.note_c = note_c
        self.folds = folds
        self.rounds = rounds
        self.seed = seed

    # -- learning -----------------------------------------------------------------------------------------
    def fit(self, record: np.ndarray, notes: list[str], y: np.ndarray, n_records: int) -> NoteRater:
        """``record[i]`` is the row (0..n_records-1) of note ``i``; ``y`` the outcome of every row."""
        import scipy.sparse as sp
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import KFold

        y = np.asarray(y).astype(int)
        sentence_note, sentences = [], []
        for i, note in enumerate(notes):
            for s in SENTENCE_END.split(note):
                if s.strip():
                    sentence_note.append(i)
                    sentences.append(s)
        sentence_note = np.asarray(sentence_note, dtype=np.int64)
        sentence_record = record[sentence_note]
        min_df = max(5, int(0.0005 * len(sentences)))
        vectorizer = CountVectorizer(analyzer=phrases, min_df=min_df, binary=True, dtype=np.float32)
        S = vectorizer.fit_transform(sentences).tocsr()
        # Record-level words: the sum of the record's sentences (a second "budget approved" counts again).
        to_record = sp.csr_matrix(
            (np.ones(len(sentences), np.float32), (sentence_record, np.arange(len(sentences)))),
            shape=(n_records, len(sentences)),
        )
        R = (to_record @ S).tocsr()
        # How many notes a record has also moves its odds; give that its own column so words don't absorb it.
        volume = np.log1p(np.bincount(record, minlength=n_records)).reshape(-1, 1).astype(np.float32)
        design = sp.hstack([R, volume]).tocsr()
        rating = np.zeros(len(sentences))
        has_notes = np.unique(record)
        folds = KFold(n_splits=self.folds, shuffle=True, random_state=self.seed)
        for fit_idx, rate_idx in folds.split(has_notes):
            fit_records, rate_records = has_notes[fit_idx], has_notes[rate_idx]
            if len(np.unique(y[fit_records])) < 2:
                continue
            model = LogisticRegression(C=self.record_c, max_iter=3000).fit(
                design[fit_records], y[fit_records]
            )
            mask = np.isin(sentence_record, rate_records)
            rating[mask] = S[mask] @ model.coef_.ravel()[: S.shape[1]]
        rating -= np.median(rating)
        up = _otsu(rating[rating > 0]) if (rating > 0).sum() >= 10 else np.inf
        down = -_otsu(-rating[rating < 0]) if (rating < 0).sum() >= 10 else -np.inf
        self.cuts_ = (float(up), float(down))
        # A note is a signal (warning) when its most extreme sentence is beyond the cut.
        high = np.full(len(notes), -np.inf)
        low = np.full(len(notes), np.inf)
        np.maximum.at(high, sentence_note, rating)
        np.minimum.at(low, sentence_note, rating)
        label = np.where((high > up) & (high - up >= down - low), 1, np.where(low < down, 2, 0))
        N = CountVectorizer(
            analyzer=phrases, vocabulary=vectorizer.vocabulary_, binary=True, dtype=np.float32
        ).transform(notes)
        self.vocabulary_ = vectorizer.get_feature_names_out()
        self.weights_, self.intercepts_ = None, None
        for _ in range(self.rounds + 1):
            present = np.unique(label)
            if len(present) < 2:
                break
            model = LogisticRegression(C=self.note_c, max_iter=3000).fit(N, label)
            coef = np.zeros((3, N.shape[1]))
            intercept = np.full(3, -20.0)  # a class never seen stays impossible
            if len(present) == 2:  # binary LR: one row of weights for the second class
                coef[present[1]] = model.coef_[0]
                intercept[present[0]], intercept[present[1]] = 0.0, model.intercept_[0]
            else:
                coef[present] = model.coef_
                intercept[present] = model.intercept_
            self.weights_, self.intercepts_ = coef, intercept
            label = np.argmax(N @ coef.T + intercept, axis=1)
        self._build_lexicon()
        return self

    def _build_lexicon(self) -> None:
        if self.weights_ is None:
            self.lexicon_ = {}
            self.intercepts_ = np.array([0.0, -20.0, -20.0])
            return
        # Class logits only matter relative to "neither": keep phrases that move signal or warning vs neither.
        relative = self.weights_[1:] - self.weights_[0]
        strength = np.abs(relative).max(axis=0)
        keep = np.argsort(-strength)[:MAX_LEXICON]
        keep = keep[strength[keep] >= LEXICON_MIN_WEIGHT]
        self.lexicon_ = {
            str(self.vocabulary_[j]): (float(relative[0, j]), float(relative[1, j])) for j in keep
        }
        self.base_ = (
            float(self.intercepts_[1] - self.intercepts_[0]),
            float(self.intercepts_[2] - self.intercepts_[0]),
        )
        self._table = None

    # -- rating -------------------------------------------------------------------------------------------
    @staticmethod
    def _probabilities(signal_logit: np.ndarray, warning_logit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        top = np.maximum(0.0, np.maximum(signal_logit, warning_logit))
        e0, e1, e2 = np.exp(-top), np.exp(signal_logit - top), np.exp(warning_logit - top)
        total = e0 + e1 + e2
        return e1 / total, e2 / total

    def rate(self, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """P(buying signal), P(warning) of each note (plain Python: for one record at a time)."""
        b1, b2 = getattr(self, "base_", (-20.0, -20.0))
        s = np.full(len(notes), b1)
        w = np.full(len(notes), b2)
        lexicon = self.lexicon_
        for i, note in enumerate(notes):
            for phrase in set(phrases(note or "")):
                weight = lexicon.get(phrase)
                if weight is not None:
                    s[i] += weight[0]
                    w[i] += weight[1]
        return self._probabilities(s, w)

    def rate_series(self, notes: pl.Series) -> tuple[np.ndarray, np.ndarray]:
        """Same as ``rate`` for many notes at once: each distinct note is rated once, and remembered.

        A note never changes once written, and the same open records are scored again every night, so the
        rater keeps the ratings of the notes it has seen, keyed by a 64-bit hash of the note text. The memory
        belongs to this rater, i.e. to one model version: a new champion starts with an empty one.
        """
        n = len(notes)
        b1, b2 = getattr(self, "base_", (-20.0, -20.0))
        if not n or not self.lexicon_:
            return self._probabilities(np.full(n, b1), np.full(n, b2))
        if n < DIRECT_RATING_NOTES:
            # A handful of notes (one record from the API): plain Python beats any join against the memory.
            return self.rate(notes.to_list())
        keyed = pl.DataFrame({"_h": notes.fill_null("").hash(seed=NOTE_HASH_SEED), "_text": notes})
        memory = getattr(self, "_memory", None)
        if memory is not None:
            looked_up = keyed.join(memory, on="_h", how="left", maintain_order="left")
            unseen = looked_up.filter(pl.col("_signal").is_null()).select("_h", "_text")
        else:
            looked_up, unseen = None, keyed
        if unseen.height:
            new = unseen.unique("_h", keep="first")
            signal, warning = self._probabilities(*self._rate_logits(new["_text"]))
            rated = pl.DataFrame({"_h": new["_h"], "_signal": signal, "_warning": warning})
            if memory is None or memory.height + rated.height > MAX_REMEMBERED_NOTES:
                # Full (or empty): start again from the notes of this batch, the ones most likely to come back.
                kept = keyed.select("_h").unique()
                memory = (
                    rated if memory is None else pl.concat([memory.join(kept, on="_h", how="semi"), rated])
                )
            else:
                memory = pl.concat([memory, rated])
            self._memory = memory
            looked_up = keyed.select("_h").join(memory, on="_h", how="left", maintain_order="left")
        return looked_up["_signal"].to_numpy(), looked_up["_warning"].to_numpy()

    def _rate_logits(self, notes: pl.Series) -> tuple[np.ndarray, np.ndarray]:
        """Signal and warning log-odds (vs "neither") of each note: vectorised phrase matching in polars."""
        b1, b2 = getattr(self, "base_", (-20.0, -20.0))
        n = len(notes)
        if getattr(self, "_table", None) is None:
            patterns = list(self.lexicon_)
            self._table = (
                [f" {p} " for p in patterns],
                pl.DataFrame(
                    {
                        "_match": [f" {p} " for p in patterns],
                        "_s": [self.lexicon_[p][0] for p in patterns],
                        "_w": [self.lexicon_[p][1] for p in patterns],
                    }
                ),
            )
        patterns, table = self._table
        padded = (
            pl.lit(" ") + notes.fill_null("").str.to_lowercase().str.replace_all(NOT_WORD, " ") + pl.lit(" ")
        )
        matched = (
            pl.DataFrame({"_text": notes})
            .with_row_index("_note")
            .select(
                "_note", padded.str.extract_many(patterns, overlapping=True).list.unique().alias("_match")
            )
            .explode("_match")
            .drop_nulls("_match")
            .join(table, on="_match", how="inner")
            .group_by("_note")
            .agg(pl.col("_s").sum(), pl.col("_w").sum())
        )
        s = np.full(n, b1)
        w = np.full(n, b2)
        idx = matched["_note"].to_numpy()
        s[idx] += matched["_s"].to_numpy()
        w[idx] += matched["_w"].to_numpy()
        return s, w

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_table"] = None  # rebuilt on first use; keeps the pickled model small
        state["_memory"] = None  # ratings remembered while scoring are not part of the model
        state.pop("weights_", None)
        state.pop("vocabulary_", None)
        return state

    def phrase_weights(self) -> dict[str, float]:
        """Phrase -> how much it pushes a note towards "signal" rather than "warning" (for naming reasons)."""
        return {p: s - w for p, (s, w) in self.lexicon_.items()}
