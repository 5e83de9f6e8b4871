"""Comparison: each pair of values gets an agreement level (exact / very similar / similar / different /
missing). Jaro-Winkler on names with nicknames and swapped order, digit edits on numbers, dates and phones,
IDF-weighted word overlap on names, text and addresses, relative gaps on numbers, character n-grams on
spelling. ``Comparator`` is one field of the comparison vector."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from holocrm_core.dedupe.normalise import _number, canonical_first_name

MISSING = -1
DISAGREE, SIMILAR, VERY_SIMILAR, EXACT = 0, 1, 2, 3
LEVELS = 4


def _jw(a: list[str], b: list[str]) -> np.ndarray:
    from rapidfuzz.distance import JaroWinkler
    from rapidfuzz.process import cpdist

    if not a:
        return np.zeros(0)
    return np.asarray(cpdist(a, b, scorer=JaroWinkler.normalized_similarity, workers=1), dtype=np.float64)


def _levels_from_similarity(
    a: list[str], b: list[str], very: float = 0.94, similar: float = 0.85
) -> np.ndarray:
    sim = _jw(a, b)
    out = np.where(
        sim >= 1.0 - 1e-9,
        EXACT,
        np.where(sim >= very, VERY_SIMILAR, np.where(sim >= similar, SIMILAR, DISAGREE)),
    )
    missing = np.array([not x or not y for x, y in zip(a, b, strict=True)], dtype=bool)
    out[missing] = MISSING
    return out


def _levels_exact(a: list[str], b: list[str]) -> np.ndarray:
    out = np.array([EXACT if x == y else DISAGREE for x, y in zip(a, b, strict=True)], dtype=np.int64)
    out[np.array([not x or not y for x, y in zip(a, b, strict=True)], dtype=bool)] = MISSING
    return out


def _levels_digits(a: list[str], b: list[str], phone: bool = False) -> np.ndarray:
    """Numbers, dates and phones: exact, one edit or two digits swapped (a typo), two edits, else different.

    ``phone``: a typo must keep the length, and two edits are a different number (phones have no
    "similar"); otherwise yyyymmdd dates with month and day swapped count as a typo.
    """
    from rapidfuzz.distance import OSA
    from rapidfuzz.process import cpdist

    if not len(a):
        return np.zeros(0, dtype=np.int64)
    a = [x or "" for x in a]
    b = [y or "" for y in b]
    missing = np.array([not x or not y for x, y in zip(a, b, strict=True)], dtype=bool)
    equal = np.array([x == y for x, y in zip(a, b, strict=True)], dtype=bool)
    same_length = np.array([len(x) == len(y) for x, y in zip(a, b, strict=True)], dtype=bool)
    edits = np.asarray(cpdist(a, b, scorer=OSA.distance, workers=1), dtype=np.int64)
    out = np.full(len(a), DISAGREE, dtype=np.int64)
    typo = (same_length | (not phone)) & (edits <= 1)
    if not phone:
        out[edits <= 2] = SIMILAR
        for k in np.flatnonzero(same_length & ~typo & ~equal):  # yyyymmdd with month and day swapped
            x, y = a[k], b[k]
            if len(x) == 8 and x[:4] == y[:4] and x[4:6] == y[6:8] and x[6:8] == y[4:6]:
                typo[k] = True
    out[typo] = VERY_SIMILAR
    out[equal] = EXACT
    out[missing] = MISSING
    return out


class DigitValues:
    """One digits / phone column's distinct values (``factorize``) ready for ``levels``: as an object array
    (gathered per pair without a Python loop) and their lengths (None and "" are empty)."""

    def __init__(self, values: list):
        self.values = np.array([v or "" for v in values], dtype=object)
        self.lengths = np.fromiter((len(v) for v in self.values), dtype=np.int64, count=len(self.values))

    def levels(self, a_codes: np.ndarray, b_codes: np.ndarray, phone: bool) -> np.ndarray:
        """``_levels_digits`` of the pairs given as codes into the values (equal codes: equal values): the
        same levels, with the string comparisons made only for pairs that are neither equal nor missing."""
        from rapidfuzz.distance import OSA
        from rapidfuzz.process import cpdist

        a_codes, b_codes = np.asarray(a_codes, dtype=np.int64), np.asarray(b_codes, dtype=np.int64)
        length_a, length_b = self.lengths[a_codes], self.lengths[b_codes]
        missing = (length_a == 0) | (length_b == 0)
        equal = a_codes == b_codes
        same_length = length_a == length_b
        out = np.full(len(a_codes), DISAGREE, dtype=np.int64)
        todo = np.flatnonzero(~missing & ~equal)  # the other pairs' levels do not read the edits
        edits = (
            np.asarray(
                cpdist(
                    self.values[a_codes[todo]], self.values[b_codes[todo]], scorer=OSA.distance, workers=1
                ),
                dtype=np.int64,
            ).reshape(-1)
            if len(todo)
            else np.zeros(0, dtype=np.int64)
        )
        typo = np.zeros(len(a_codes), dtype=bool)
        typo[todo] = (same_length[todo] | (not phone)) & (edits <= 1)
        if not phone:
            out[todo[edits <= 2]] = SIMILAR
            for k in np.flatnonzero(
                same_length & ~typo & ~equal & ~missing
            ):  # yyyymmdd, month and day swapped
                x, y = self.values[a_codes[k]], self.values[b_codes[k]]
                if len(x) == 8 and x[:4] == y[:4] and x[4:6] == y[6:8] and x[6:8] == y[4:6]:
                    typo[k] = True
        out[typo] = VERY_SIMILAR
        out[equal] = EXACT
        out[missing] = MISSING
        return out


@dataclass
class Comparator:
    """One field of the comparison vector: ``kind`` is string, exact, digits, phone or a custom function."""

    name: str
    kind: str = "string"
    very: float = 0.94
    similar: float = 0.85
    function: object = None  # (values_a, values_b) -> levels, for composite fields
    m_prior: tuple | None = None  # prior P(level | duplicate) for DISAGREE..EXACT; None = DEFAULT_M
    reason: dict = field(default_factory=dict)  # level -> sentence for the reasons column
    # the function compares row numbers (n-gram vectors, first and last name together): link_records then
    # passes the pairs' row numbers as arrays, not the column's values
    by_row: bool = False
    # term frequencies (``with_term_frequencies``): each row's value as a code (-1: empty) and how many
    # rows hold each code; an exact agreement on a rare value then weighs more than on a common one (as
    # splink's term-frequency adjustment). ``tf_shift`` (per code, see ``weights._tf_shift``) is set by
    # link_records.
    tf_codes: np.ndarray | None = None
    tf_counts: np.ndarray | None = None
    tf_shift: np.ndarray | None = None

    def with_term_frequencies(self, values: list) -> Comparator:
        """This comparator with the term frequencies of ``values`` (one per row, as compared)."""
        codes, distinct = factorize(values)
        empty = np.array([not v for v in distinct], dtype=bool)
        counts = np.bincount(codes, minlength=len(distinct)).astype(np.float64)
        counts[empty] = 0.0
        self.tf_codes = np.where(empty[codes], -1, codes) if len(codes) else codes
        self.tf_counts = counts
        return self

    def pair_tf_shift(self, a_rows: np.ndarray, b_rows: np.ndarray) -> np.ndarray:
        """The term-frequency shift of each pair's exact-agreement weight (0 where a value is empty): the
        more common of the two values decides (a nickname or a swapped name can agree across values)."""
        if self.tf_shift is None or self.tf_codes is None:
            return np.zeros(len(a_rows))
        a, b = self.tf_codes[a_rows], self.tf_codes[b_rows]
        both = (a >= 0) & (b >= 0)
        out = np.zeros(len(a_rows))
        out[both] = np.minimum(self.tf_shift[a[both]], self.tf_shift[b[both]])
        return out

    def levels(self, a: list, b: list) -> np.ndarray:
        if self.function is not None:
            return np.asarray(self.function(a, b), dtype=np.int64)
        if self.kind == "exact":
            return _levels_exact(a, b)
        if self.kind in ("digits", "phone"):
            return _levels_digits(a, b, phone=self.kind == "phone")
        return _levels_from_similarity(a, b, self.very, self.similar)


def factorize(values: list) -> tuple[np.ndarray, list]:
    """(codes, distinct values): ``values[i] == distinct[codes[i]]``; one pass, None kept apart from ""."""
    seen: dict = {}
    codes = np.fromiter((seen.setdefault(v, len(seen)) for v in values), dtype=np.int64, count=len(values))
    return codes, list(seen)


def per_value_pair(function, a_codes: np.ndarray, b_codes: np.ndarray, a_values: list, b_values: list):
    """``function(values_a, values_b)`` for the pairs given as codes, evaluated once per distinct pair of
    values (names, titles and companies repeat: a few thousand distinct pairs stand for millions)."""
    a_codes, b_codes = np.asarray(a_codes, dtype=np.int64), np.asarray(b_codes, dtype=np.int64)
    if len(a_codes) == 0:
        return np.asarray(function([], []), dtype=np.int64)
    width = max(1, len(b_values))
    distinct, inverse = np.unique(a_codes * width + b_codes, return_inverse=True)
    out = np.asarray(
        function(
            [a_values[i] for i in (distinct // width).tolist()],
            [b_values[j] for j in (distinct % width).tolist()],
        )
    )
    return out[inverse.reshape(-1)]


def _person_name_levels(first_a, first_b, last_a, last_b) -> tuple[np.ndarray, np.ndarray]:
    """First and last name levels, with nicknames (Bob = Robert) and swapped order (Smith John) counted."""
    firsts, lasts = factorize(list(first_a) + list(first_b)), factorize(list(last_a) + list(last_b))
    n = len(first_a)
    return _person_name_levels_coded(
        firsts[0][:n], firsts[0][n:], lasts[0][:n], lasts[0][n:], firsts[1], lasts[1]
    )


def _person_name_levels_coded(fa, fb, la, lb, first_values, last_values) -> tuple[np.ndarray, np.ndarray]:
    """``_person_name_levels`` over codes into ``first_values`` / ``last_values``: every comparison is made
    once per distinct pair of names."""
    first_lv = per_value_pair(_levels_from_similarity, fa, fb, first_values, first_values)
    last_lv = per_value_pair(_levels_from_similarity, la, lb, last_values, last_values)
    canon, canon_codes = factorize([canonical_first_name(x) for x in first_values])
    named = np.array([bool(c) for c in canon_codes], dtype=bool)
    ca, cb = canon[fa], canon[fb]
    nick = named[ca] & (ca == cb) & (first_lv < EXACT) if len(fa) else np.zeros(0, dtype=bool)
    first_lv[nick] = VERY_SIMILAR
    swapped_first = per_value_pair(_levels_from_similarity, fa, lb, first_values, last_values)
    swapped_last = per_value_pair(_levels_from_similarity, la, fb, last_values, first_values)
    straight = np.maximum(first_lv, 0) + np.maximum(last_lv, 0)
    swapped = np.maximum(swapped_first, 0) + np.maximum(swapped_last, 0)
    use_swap = swapped > straight
    first_lv = np.where(use_swap, swapped_first, first_lv)
    last_lv = np.where(use_swap, swapped_last, last_lv)
    return first_lv, last_lv


def _company_presence_levels(a: list[str], b: list[str]) -> np.ndarray:
    """Same company / only one record has one (a level of its own: duplicates rarely lose it) / different."""
    out = []
    for x, y in zip(a, b, strict=True):
        if not x and not y:
            out.append(MISSING)
        elif not x or not y:
            out.append(SIMILAR)
        else:
            out.append(EXACT if x == y else DISAGREE)
    return np.asarray(out, dtype=np.int64)


class PersonNames:
    """Nickname- and order-aware first/last name levels for pairs of row numbers (computed once per pair
    list: the first and the last name comparator ask for the same pairs in turn)."""

    def __init__(self, firsts: list[str], lasts: list[str]):
        self.first_codes, self.first_values = factorize(firsts)
        self.last_codes, self.last_values = factorize(lasts)
        self._key = None
        self._levels = None

    def _compute(self, a_rows, b_rows):
        a_rows, b_rows = np.asarray(a_rows, dtype=np.int64), np.asarray(b_rows, dtype=np.int64)
        key = (
            len(a_rows),
            tuple(a_rows[:3].tolist()),
            tuple(b_rows[:3].tolist()),
            tuple(a_rows[-3:].tolist()),
            tuple(b_rows[-3:].tolist()),
        )
        if key != self._key:
            self._levels = None  # the previous pair list's levels go before the next are computed
            self._levels = _person_name_levels_coded(
                self.first_codes[a_rows],
                self.first_codes[b_rows],
                self.last_codes[a_rows],
                self.last_codes[b_rows],
                self.first_values,
                self.last_values,
            )
            self._key = key
        return self._levels

    def first(self, a_rows, b_rows):
        return self._compute(a_rows, b_rows)[0]

    def last(self, a_rows, b_rows):
        return self._compute(a_rows, b_rows)[1]


class TokenIdf:
    """Inverse document frequencies of the tokens of one field over the table: a rare shared word ("Zuni")
    says more than a common one ("grill"), so containment and overlap are scored by what is shared."""

    def __init__(self, documents: list[str]):
        from collections import Counter

        counts = Counter(t for d in documents for t in set(d.split()))
        n = max(1, len(documents))
        self.n = n
        self.idf = {t: float(np.log((n + 1) / (c + 0.5))) for t, c in counts.items()}
        self.unseen = float(np.log((n + 1) / 0.5))

    def contained_rare(self, a: str, b: str, share: float = 0.6) -> bool:
        """One token set contains the other and the contained words are rare enough to identify: their
        IDF sum reaches ``share`` of log(n) ("Noodle House" in "Noodle House Restaurant" yes, "Grill" in
        "Joe's Grill" no)."""
        x, y = set(a.split()), set(b.split())
        small = x if len(x) <= len(y) else y
        if not small or not (x <= y or y <= x):
            return False
        return sum(self.idf.get(t, self.unseen) for t in small) >= share * float(np.log(self.n + 1))

    def overlap(self, a: list[str], b: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For many pairs at once: the IDF-weighted cosine (as ``cosine``), whether one token set contains
        the other, and the IDF sum of the smaller set (as ``contained_rare`` reads it), from sparse
        token matrices over the distinct values."""
        from scipy import sparse

        codes, values = factorize(list(a) + list(b))
        token_ids: dict[str, int] = {}
        indptr, indices, weights = [0], [], []
        sizes, sums = [], []
        for value in values:
            tokens = set((value or "").split())
            for t in tokens:
                indices.append(token_ids.setdefault(t, len(token_ids)))
                weights.append(self.idf.get(t, self.unseen))
            indptr.append(len(indices))
            sizes.append(len(tokens))
            sums.append(sum(self.idf.get(t, self.unseen) for t in tokens))
        shape = (len(values), max(1, len(token_ids)))
        idf = sparse.csr_matrix((np.asarray(weights, dtype=np.float64), indices, indptr), shape=shape)
        ones = sparse.csr_matrix((np.ones(len(indices)), indices, indptr), shape=shape)
        squares = np.asarray(idf.multiply(idf).sum(axis=1)).reshape(-1)
        n = len(a)
        ca, cb = codes[:n], codes[n:]
        shared = np.asarray(idf[ca].multiply(idf[cb]).sum(axis=1)).reshape(-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            cos = np.where(
                (squares[ca] > 0) & (squares[cb] > 0), shared / np.sqrt(squares[ca] * squares[cb]), 0.0
            )
        common = np.asarray(ones[ca].multiply(ones[cb]).sum(axis=1)).reshape(-1)
        size, total = np.asarray(sizes), np.asarray(sums)
        smaller = np.where(size[ca] <= size[cb], ca, cb)
        contained = (size[smaller] > 0) & (common == size[smaller])
        return cos, contained, total[smaller]

    def cosine(self, a: str, b: str) -> float:
        """IDF-weighted cosine of the two token sets (1.0 = same words, 0.0 = none shared)."""
        x, y = set(a.split()), set(b.split())
        if not x or not y:
            return 0.0
        w = lambda t: self.idf.get(t, self.unseen) ** 2  # noqa: E731 - a local weight
        shared = sum(w(t) for t in x & y)
        return shared / float(np.sqrt(sum(w(t) for t in x) * sum(w(t) for t in y)))


def _idf_levels(idf: TokenIdf, very: float, similar: float, typo: bool):
    """Levels from IDF-weighted token overlap: same / very similar (or one typo) / similar / different."""
    from rapidfuzz.distance import OSA

    def levels(a: list[str], b: list[str]) -> np.ndarray:
        from rapidfuzz.process import cpdist

        out = np.full(len(a), DISAGREE, dtype=np.int64)
        if not len(a):
            return out
        a = [x or "" for x in a]
        b = [y or "" for y in b]
        cos, contained, small_idf = idf.overlap(a, b)
        if typo:
            # for names, a word more or less is containment (below), not "very similar"
            same_shape = np.array([len(x.split()) == len(y.split()) for x, y in zip(a, b, strict=True)])
            shortest = np.array([min(len(x), len(y)) for x, y in zip(a, b, strict=True)])
            edits = np.asarray(cpdist(a, b, scorer=OSA.distance, workers=1))
            very_similar = ((cos >= very) & same_shape) | (edits <= np.where(shortest < 8, 1, 2))
            # one contains the other, and what it contains is rare enough
            similar_enough = contained & (small_idf >= 0.6 * float(np.log(idf.n + 1)))
        else:
            very_similar, similar_enough = cos >= very, cos >= similar
        out[similar_enough] = SIMILAR
        out[very_similar] = VERY_SIMILAR
        out[np.array([x == y for x, y in zip(a, b, strict=True)], dtype=bool)] = EXACT
        out[np.array([not x or not y for x, y in zip(a, b, strict=True)], dtype=bool)] = MISSING
        return out

    return levels


def _address_levels(idf: TokenIdf):
    words = _idf_levels(idf, 0.75, 0.45, typo=True)

    def levels(a: list[str], b: list[str]) -> np.ndarray:
        out = words(a, b)
        for k in np.flatnonzero(out > DISAGREE).tolist():
            x, y = a[k], b[k]
            numbers_x = {t for t in x.split() if any(c.isdigit() for c in t)}
            numbers_y = {t for t in y.split() if any(c.isdigit() for c in t)}
            if out[k] > DISAGREE and numbers_x and numbers_y and not numbers_x & numbers_y:
                out[k] = DISAGREE  # same street, another house number: another place
        return out

    return levels


def _number_levels(a: list[str], b: list[str]) -> np.ndarray:
    """Numbers with a relative tolerance: equal / within 5% / within 20% / further apart."""
    out = []
    for x, y in zip(a, b, strict=True):
        x, y = _number(x), _number(y)
        if x is None or y is None:
            out.append(MISSING)
            continue
        gap = abs(x - y) / max(abs(x), abs(y), 1e-9)
        out.append(EXACT if x == y else VERY_SIMILAR if gap <= 0.05 else SIMILAR if gap <= 0.2 else DISAGREE)
    return np.asarray(out, dtype=np.int64)


def _code_levels(a: list[str], b: list[str]) -> np.ndarray:
    """Identifier-like tokens (model numbers): one shared / both have some, none shared / missing."""
    out = []
    for x, y in zip(a, b, strict=True):
        if not x or not y:
            out.append(MISSING)
        else:
            out.append(EXACT if set(x.split()) & set(y.split()) else DISAGREE)
    return np.asarray(out, dtype=np.int64)


class CharGrams:
    """Character 3-5-gram TF-IDF vectors of one field: spelling similarity that survives typos, run-together
    words and reordering ("EZXS88W Linksys switch" / "Linksys EtherFast EZXS88W"); also a blocking pass."""

    def __init__(self, values: list[str]):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.empty = np.array([not v for v in values])
        texts = [v or "" for v in values]
        try:
            self.matrix = (
                TfidfVectorizer(
                    analyzer="char_wb", ngram_range=(3, 5), min_df=1, sublinear_tf=True, dtype=np.float32
                )
                .fit_transform(texts)
                .tocsr()
            )
        except ValueError:  # nothing but empty values
            self.matrix = None

    def similarity(self, a_rows: np.ndarray, b_rows: np.ndarray) -> np.ndarray:
        if self.matrix is None or len(a_rows) == 0:
            return np.zeros(len(a_rows))
        return np.asarray(self.matrix[a_rows].multiply(self.matrix[b_rows]).sum(axis=1)).reshape(-1)

    def levels(self, a: list[str], b: list[str]) -> np.ndarray:
        a_rows, b_rows = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
        sim = self.similarity(a_rows, b_rows)
        out = np.where(
            sim >= 0.95, EXACT, np.where(sim >= 0.7, VERY_SIMILAR, np.where(sim >= 0.45, SIMILAR, DISAGREE))
        )
        out[self.empty[a_rows] | self.empty[b_rows]] = MISSING
        return out.astype(np.int64)

    def neighbours(self, k: int, labels: np.ndarray | None = None, chunk: int = 1024) -> np.ndarray:
        """Each row with its ``k`` most similar rows (of the other source when ``labels`` are given)."""
        if self.matrix is None:
            return np.zeros((0, 2), dtype=np.int64)
        n = self.matrix.shape[0]
        out = []
        for start in range(0, n, chunk):
            rows = np.arange(start, min(n, start + chunk))
            sims = (self.matrix[rows] @ self.matrix.T).toarray()
            sims[np.arange(len(rows)), rows] = -1
            if labels is not None:
                sims[labels[rows][:, None] == labels[None, :]] = -1
            sims[:, self.empty] = -1
            top = np.argpartition(-sims, min(k, n - 1) - 1, axis=1)[:, :k]
            keep = np.take_along_axis(sims, top, axis=1) > 0.1
            out.append(
                np.stack(
                    [np.repeat(rows, top.shape[1])[keep.reshape(-1)], top.reshape(-1)[keep.reshape(-1)]],
                    axis=1,
                )
            )
        return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.int64)
