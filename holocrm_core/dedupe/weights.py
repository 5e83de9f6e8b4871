"""Weights: a Fellegi-Sunter model whose "unrelated pair" probabilities (u) come from random record pairs and
whose "same entity" probabilities (m) start from each field kind's prior and are learned by EM on the
candidate pairs, constrained (``learned_m``). ``link_records`` scores the candidate pairs of a table;
``reasons`` explains a pair."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from holocrm_core.dedupe.blocking import candidate_pairs
from holocrm_core.dedupe.compare import (
    DISAGREE,
    EXACT,
    LEVELS,
    MISSING,
    SIMILAR,
    VERY_SIMILAR,
    Comparator,
    DigitValues,
    _company_presence_levels,
    factorize,
    per_value_pair,
)


@dataclass
class MatchModel:
    """Fellegi-Sunter parameters: P(level | duplicate) = m, P(level | unrelated) = u, prior of a duplicate."""

    fields: list[str]
    m: np.ndarray  # (fields, LEVELS)
    u: np.ndarray
    prior: float
    iterations: int = 0

    def weights(self) -> np.ndarray:
        return np.log(self.m / self.u)

    def log_odds(self, levels: np.ndarray) -> np.ndarray:
        w = self.weights()
        total = np.full(len(levels), np.log(self.prior / (1 - self.prior)))
        for f in range(len(self.fields)):
            lv = levels[:, f]
            seen = lv >= 0
            total[seen] += w[f, lv[seen]]
        return total


# Prior beliefs, as Dirichlet pseudo-counts: they decide on tiny tables and fade as pairs accumulate.
DEFAULT_M = np.array([0.05, 0.10, 0.15, 0.70])  # a duplicate mostly agrees
DEFAULT_U = np.array([0.90, 0.06, 0.02, 0.02])  # two unrelated records mostly differ
PRIOR_PAIRS = 30.0
# Candidate pairs are compared this many at a time (bounds the temporaries of a million-row table).
LEVEL_CHUNK = 1_000_000
# Comparison vectors are counted in a table of every possible one (5^fields entries) up to this size, else
# sorted (np.unique).
PATTERN_TABLE_MAX = 1 << 24
# m is learned by EM within one table too (see fit_match_model), constrained (``learned_m``): a field
# compared on fewer expected duplicates than MIN_FIELD_EVENTS keeps its kind's prior m; no level's m falls
# below M_FLOOR times its prior (EM's self-confirmation: pairs that disagree get a low posterior, so they
# never count, so the disagreement looks ever rarer); no level weighs less than a less-agreeing one.
LEARN_M = True
MIN_FIELD_EVENTS = 10.0
M_FLOOR = 0.1


def _level_frequencies(
    levels: np.ndarray,
    weights: np.ndarray | None = None,
    prior: np.ndarray | None = None,
    prior_pairs: float = PRIOR_PAIRS,
) -> np.ndarray:
    return _normalised(_level_counts(levels, weights), prior, prior_pairs)


def _level_counts(levels: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Per field and level, the (weighted) number of pairs at that level (MISSING not counted)."""
    n_fields = levels.shape[1]
    out = np.zeros((n_fields, LEVELS))
    w = np.ones(len(levels)) if weights is None else weights
    for f in range(n_fields):
        seen = levels[:, f] >= 0
        out[f] = np.bincount(levels[seen, f], weights=w[seen], minlength=LEVELS)[:LEVELS]
    return out


def _normalised(counts: np.ndarray, prior: np.ndarray | None, prior_pairs: float = PRIOR_PAIRS) -> np.ndarray:
    prior = np.broadcast_to(DEFAULT_M if prior is None else prior, counts.shape)
    out = counts + prior * prior_pairs + 1e-3
    return out / out.sum(axis=1, keepdims=True)


def monotone_m(m: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The m closest to ``m`` (in likelihood) whose weights log(m / u) never fall as agreement rises.

    For one field: maximise sum_l m_l log(q_l) over distributions q with q_l / u_l non-decreasing in the level
    (DISAGREE < SIMILAR < VERY_SIMILAR < EXACT). Its solution is the isotonic regression of the ratios
    m_l / u_l with weights u_l (pool adjacent violators; Robertson, Wright & Dykstra, order-restricted
    inference), which keeps sum_l u_l r_l = 1, so q = u r is a distribution. Not m itself is ordered (a
    duplicate's e-mail differs far more often than it is one typo away) but the evidence each level gives.
    """
    out = np.empty_like(m)
    for f in range(m.shape[0]):
        blocks: list[list] = []  # [ratio, weight, levels]
        for level in range(m.shape[1]):
            blocks.append([m[f, level] / u[f, level], u[f, level], [level]])
            while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
                r2, w2, l2 = blocks.pop()
                r1, w1, l1 = blocks.pop()
                blocks.append([(r1 * w1 + r2 * w2) / (w1 + w2), w1 + w2, l1 + l2])
        for ratio, _, levels in blocks:
            out[f, levels] = ratio * u[f, levels]
    return out / out.sum(axis=1, keepdims=True)


def learned_m(counts: np.ndarray, m_prior: np.ndarray, u: np.ndarray) -> np.ndarray:
    """m from the expected level counts of the duplicates (EM's M step), constrained.

    Each field's levels: the counts plus the prior's pseudo-counts (``PRIOR_PAIRS``: a level seen in few
    duplicates stays near its prior); a field compared on fewer than ``MIN_FIELD_EVENTS`` expected
    duplicates keeps its prior m (the fallback of a small table or a sparse column); no level below
    ``M_FLOOR`` times its prior m; then ``monotone_m``, so that a more agreeing level never weighs less than
    a less agreeing one (a typo cannot count for a duplicate more than an exact agreement).
    """
    m_prior = np.broadcast_to(m_prior, counts.shape)
    m = _normalised(counts, m_prior)
    floor = M_FLOOR * m_prior / m_prior.sum(axis=1, keepdims=True)
    for f in range(len(m)):
        if counts[f].sum() < MIN_FIELD_EVENTS:
            m[f] = m_prior[f] / m_prior[f].sum()
            continue
        low = m[f] < floor[f]
        if low.any():  # the floored levels take their floor, the others share the rest by their m
            m[f, ~low] *= (1.0 - floor[f, low].sum()) / m[f, ~low].sum()
            m[f, low] = floor[f, low]
    return monotone_m(m, u)


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def _patterns(levels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct rows of ``levels`` (pairs x fields, values -1..3), how often each occurs and, per pair,
    the index of its row (rows in the order of their integer key, as ``np.unique`` sorts them)."""
    fields = levels.shape[1]
    if fields > 24:  # too many fields for one integer key: every row its own pattern
        return levels, np.ones(len(levels)), np.arange(len(levels))
    base = LEVELS + 1
    key = np.zeros(len(levels), dtype=np.int64)
    for f in range(fields):  # in place: one key array, not a temporary per field (10s of millions of pairs)
        key *= base
        key += levels[:, f]
        key += 1
    if base**fields > PATTERN_TABLE_MAX:
        _, first, inverse, counts = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
        return levels[first], counts.astype(np.float64), inverse.reshape(-1)
    # few possible keys (5^fields): counted by bincount, no sort of every pair's key; the same rows, counts
    # and inverse as np.unique's
    counts = np.bincount(key, minlength=base**fields)
    distinct = np.flatnonzero(counts)
    lookup = np.zeros(base**fields, dtype=np.int32)  # at most 2^24 vectors: int32 row numbers
    lookup[distinct] = np.arange(len(distinct), dtype=np.int32)
    inverse = lookup[key]
    del key, lookup
    patterns = np.empty((len(distinct), fields), dtype=levels.dtype)
    rest = distinct.copy()
    for f in reversed(range(fields)):
        patterns[:, f] = rest % base - 1
        rest //= base
    return patterns, counts[distinct].astype(np.float64), inverse


def fit_match_model(
    pair_levels: np.ndarray,
    random_levels: np.ndarray,
    fields: list[str],
    max_iter: int = 100,
    tol: float = 1e-6,
    m_prior: np.ndarray | None = None,
    learn_m: bool = True,
    record_pairs: float | None = None,
    offsets: np.ndarray | None = None,
) -> MatchModel:
    """EM for m and the prior on the candidate pairs; u is fixed from random pairs (nearly all unrelated).

    m is learned as splink does (m by EM on the candidate pairs, u from random pairs), with constraints so
    that a level cannot learn nonsense (``learned_m``): the field kind's prior as Dirichlet pseudo-counts
    (a level seen in few duplicates stays near it), a field with too few expected duplicates kept at its
    prior, a floor under each level, and weights that never fall as agreement rises. ``learn_m=False``
    keeps m at its prior and learns only the share of duplicates.

    ``record_pairs``: the number of record pairs the candidates were drawn from (n(n-1)/2 in one table).
    Then the prior is that of two random records being one (as u is measured on random records), learned
    by EM over every record pair, the pairs blocking left out counting as unrelated: the expected number of
    duplicates, not the share of the candidates. Without it the prior is the share of the candidates, which
    counts the evidence that put a pair in a block twice, and grows with the coincidental pairs that common
    names bring in as a table grows. ``offsets``: a per-pair addition to the log odds (term frequencies).
    """
    u = _level_frequencies(random_levels, prior=DEFAULT_U)
    m_prior = (
        np.tile(DEFAULT_M, (len(fields), 1)) if m_prior is None else np.asarray(m_prior, dtype=np.float64)
    )
    model = MatchModel(fields, m_prior.copy(), u, 0.1)
    if len(pair_levels) == 0:
        return model
    # EM over the distinct comparison vectors: the same sums as over every pair (millions of pairs share
    # a few thousand vectors); per-pair offsets are added to their vector's log odds pair by pair
    patterns, counts, inverse = _patterns(pair_levels)
    if record_pairs is not None:
        record_pairs = max(float(record_pairs), float(len(pair_levels)))
        # start as if a tenth of the candidates were duplicates
        model.prior = float(np.clip(0.1 * len(pair_levels) / record_pairs, 1e-15, 0.1))
    total = record_pairs if record_pairs is not None else len(pair_levels)
    low = 1e-15 if record_pairs is not None else 1e-6
    for iteration in range(max_iter):
        log_odds = model.log_odds(patterns)
        if offsets is None:
            posterior = 1.0 / (1.0 + np.exp(-np.clip(log_odds, -50, 50)))
            weight = posterior * counts
        else:
            # 1 / (1 + exp(-clip(log odds + offset))) per pair, summed per vector, a chunk of pairs at a time
            # (no array of every pair's posterior) and in pair order: np.add.at adds as np.bincount does,
            # one pair after the other, so the sums are the same to the last bit
            weight = np.zeros(len(patterns))
            for start in range(0, len(inverse), LEVEL_CHUNK):
                part = slice(start, start + LEVEL_CHUNK)
                per_pair = log_odds[inverse[part]]
                per_pair += offsets[part]
                np.clip(per_pair, -50, 50, out=per_pair)
                np.negative(per_pair, out=per_pair)
                np.exp(per_pair, out=per_pair)
                per_pair += 1.0
                np.divide(1.0, per_pair, out=per_pair)
                np.add.at(weight, inverse[part], per_pair)
                del per_pair
        new_m = learned_m(_level_counts(patterns, weight), m_prior, u) if learn_m else model.m
        new_prior = float(np.clip((weight.sum() + 1.0) / (total + 10.0), low, 0.5))
        change = (
            abs(np.log(new_prior / model.prior)) if record_pairs is not None else abs(new_prior - model.prior)
        )
        delta = np.abs(new_m - model.m).max() + change
        model = MatchModel(fields, new_m, u, new_prior, iteration + 1)
        if delta < tol:
            break
    return model


def _tf_shift(counts: np.ndarray) -> np.ndarray:
    """Per value, the shift of an exact agreement's weight by how common the value is (term frequencies).

    A record holding v agrees with an unrelated record on v with probability (c_v - 1) / (P - 1): the
    share of the other P - 1 filled records that hold v too (leave-one-out: a value two records of one
    duplicate pair share is not counted as common for it). Given an agreement, that share is compared with
    its typical value over the agreements of random pairs (weighted by c_v (c_v - 1)): positive for a rarer
    value, negative for a more common one. The shifts average out over those agreements, so term
    frequencies move weight from common values to rare ones and leave the level's weight (u, measured on
    random pairs) where it was. A field whose values never repeat gets no shift.
    """
    counts = np.asarray(counts, dtype=np.float64)
    filled = counts.sum()
    pairs = counts * (counts - 1)
    if filled < 2 or pairs.sum() <= 0:
        return np.zeros(len(counts))
    others = np.maximum(counts - 1, 1.0) / (filled - 1)  # a value held once: as rare as one other holder
    typical = float(pairs @ others / pairs.sum())
    return np.log(typical) - np.log(others)


@dataclass
class LinkResult:
    pairs: pl.DataFrame  # i, j, score, log_odds and one level column per field
    model: MatchModel
    candidates: int


def link_records(
    frame: pl.DataFrame,
    comparators: list[Comparator],
    block_keys: list[pl.Expr],
    sorted_keys: list[pl.Expr] = (),
    vectors: np.ndarray | None = None,
    random_pairs: int = 200_000,
    seed: int = 0,
    max_block: int = 200,
    window: int = 6,
    learn_m: bool = True,
    pairs: np.ndarray | None = None,
    random_source: np.ndarray | None = None,
    prior: str = "candidates",
    keep: tuple[float, float] | None = None,
) -> LinkResult:
    """Score every candidate pair of ``frame``'s rows; ``score`` is P(duplicate | comparison vector).

    ``pairs``: the candidate pairs when the caller blocked already (else the blocking passes here run);
    ``random_source``: per-row source labels, so the "unrelated pair" sample is drawn across sources too.
    ``random_pairs``: the sample u is measured on. Rare levels (two unrelated company names nearly
    identical: about 1 in 10,000 pairs) need a large one: with 20,000 pairs a handful of events and the
    Dirichlet pseudo-counts set u, which at the random-pair prior cost the planted company typos at 100k
    contacts (recall 0.92 at 0.9; 1.0 with 200,000 pairs, a few seconds more at 1M rows).
    ``prior``: "candidates" (the share of duplicates among the candidate pairs) or "records" (the chance
    that two random records are one, learned over every record pair: see ``fit_match_model``; it does not
    grow with the coincidental pairs of a large table). Comparators carrying term frequencies
    (``Comparator.with_term_frequencies``) weigh an exact agreement by how common the agreed value is.
    ``keep``: (pair_min, row_min): the result holds only the pairs scored pair_min or more and those between
    two records that each have a pair scored row_min or more (what ``duplicate_candidates`` reads: its
    threshold and its clustering's); default every candidate pair. A million contacts' tens of millions of
    candidates are then scored chunk by chunk and never framed whole.
    """
    if prior not in ("candidates", "records"):
        raise ValueError(f"prior must be 'candidates' or 'records', not {prior!r}")
    if pairs is None:
        pairs = candidate_pairs(frame, block_keys, sorted_keys, vectors, max_block=max_block, window=window)
    # each column once as codes into its distinct values: a field is compared once per distinct pair of
    # values, not once per candidate pair (names, titles and companies repeat)
    columns = {c.name: factorize(frame.get_column(c.name).to_list()) for c in comparators if not c.by_row}
    # digits and phones: compared pair by pair through their codes (no per-pair Python loop; each pair's
    # levels are those of its two values, so the same as once per distinct pair of values)
    digits = {
        c.name: DigitValues(columns[c.name][1])
        for c in comparators
        if c.function is None and c.kind in ("digits", "phone")
    }

    def levels_for(idx: np.ndarray) -> np.ndarray:
        out = np.empty((len(idx), len(comparators)), dtype=np.int8)
        # in chunks: the temporary codes and sort keys of one chunk, not of every pair, are held at once
        for start in range(0, len(idx), LEVEL_CHUNK):
            out[start : start + LEVEL_CHUNK] = chunk_levels(idx[start : start + LEVEL_CHUNK])
        return out

    def chunk_levels(idx: np.ndarray) -> np.ndarray:
        out = np.empty((len(idx), len(comparators)), dtype=np.int8)
        for k, comp in enumerate(comparators):
            if comp.by_row:  # the function reads the row numbers (CharGrams, PersonNames)
                out[:, k] = comp.levels(idx[:, 0], idx[:, 1])
            else:
                codes, values = columns[comp.name]
                a, b = codes[idx[:, 0]], codes[idx[:, 1]]
                if (
                    comp.kind == "exact" and comp.function is None
                ) or comp.function is _company_presence_levels:
                    # equal values are equal codes: no string is looked at
                    empty = np.array([not v for v in values], dtype=bool)
                    levels = np.where(a == b, EXACT, DISAGREE)
                    if comp.function is _company_presence_levels:  # one side empty: a level of its own
                        levels[empty[a] ^ empty[b]] = SIMILAR
                        levels[empty[a] & empty[b]] = MISSING
                    else:
                        levels[empty[a] | empty[b]] = MISSING
                    out[:, k] = levels
                elif comp.name in digits:
                    out[:, k] = digits[comp.name].levels(a, b, phone=comp.kind == "phone")
                else:
                    out[:, k] = per_value_pair(comp.levels, a, b, values, values)
        return out

    rng = np.random.default_rng(seed)
    n = len(frame)
    if n * (n - 1) // 2 <= random_pairs:
        # small table: every pair once (sampling with replacement would overweight its few coincidences)
        i, j = np.triu_indices(n, 1)
        random_idx = np.stack([i, j], axis=1).astype(np.int64)
    else:
        random_idx = rng.integers(0, n, size=(random_pairs, 2))
        random_idx = random_idx[random_idx[:, 0] != random_idx[:, 1]]
    if random_source is not None:
        random_idx = random_idx[random_source[random_idx[:, 0]] != random_source[random_idx[:, 1]]]
    fields = [c.name for c in comparators]
    pair_levels = levels_for(pairs)
    m_prior = np.array(
        [
            np.asarray(c.m_prior, dtype=np.float64) / sum(c.m_prior) if c.m_prior else DEFAULT_M
            for c in comparators
        ]
    )
    random_levels = levels_for(random_idx)
    offsets = None
    for k, comp in enumerate(comparators):
        if comp.tf_counts is not None:
            comp.tf_shift = _tf_shift(comp.tf_counts)
            if len(pairs):
                offsets = np.zeros(len(pairs)) if offsets is None else offsets
                for start in range(0, len(pairs), LEVEL_CHUNK):  # the temporaries of one chunk at a time
                    part = slice(start, start + LEVEL_CHUNK)
                    exact = pair_levels[part, k] == EXACT
                    rows = pairs[part][exact]
                    offsets[part][exact] += comp.pair_tf_shift(rows[:, 0], rows[:, 1])
                    del rows, exact
    record_pairs = None
    if prior == "records":
        if random_source is None:
            record_pairs = n * (n - 1) / 2
        else:
            _, sizes = np.unique(random_source, return_counts=True)
            record_pairs = (sizes.sum() ** 2 - (sizes.astype(np.float64) ** 2).sum()) / 2
    model = fit_match_model(
        pair_levels,
        random_levels,
        fields,
        m_prior=m_prior,
        learn_m=learn_m,
        record_pairs=record_pairs,
        offsets=offsets,
    )

    def scored(index) -> tuple[np.ndarray, np.ndarray]:
        """The log odds and the score of the pairs at ``index`` (a slice or row numbers into ``pairs``)."""
        log_odds = model.log_odds(pair_levels[index])
        if offsets is not None:
            log_odds = log_odds + offsets[index]
        return log_odds, 1.0 / (1.0 + np.exp(-np.clip(log_odds, -50, 50)))

    index = slice(None)
    if keep is not None and len(pairs):
        index = _kept(pairs, n, keep, lambda part: scored(part)[1])
    log_odds, score = scored(index) if len(pairs) else (np.zeros(0), np.zeros(0))
    result = pl.DataFrame(
        {
            "i": pairs[index, 0] if len(pairs) else np.zeros(0, np.int64),
            "j": pairs[index, 1] if len(pairs) else np.zeros(0, np.int64),
            "score": score,
            "log_odds": log_odds,
        }
        | {
            f"level_{f}": pair_levels[index, k] if len(pairs) else np.zeros(0, np.int8)
            for k, f in enumerate(fields)
        }
    )
    return LinkResult(result, model, len(pairs))


def _kept(pairs: np.ndarray, n: int, keep: tuple[float, float], score_of) -> np.ndarray:
    """Row numbers into ``pairs`` of the pairs ``keep = (pair_min, row_min)`` keeps: scored ``pair_min`` or
    more, or joining two records that each have a pair scored ``row_min`` or more (the pairs a clustering
    step at ``row_min`` reads: ``cluster.coherent_clusters``). Scored chunk by chunk (``score_of(slice)``):
    no array of every candidate's score."""
    pair_min, row_min = keep
    strong = np.zeros(len(pairs), dtype=bool)
    active = np.zeros(n, dtype=bool)
    for start in range(0, len(pairs), LEVEL_CHUNK):
        part = slice(start, start + LEVEL_CHUNK)
        score = score_of(part)
        strong[part] = score >= pair_min
        active[pairs[part][score >= row_min].reshape(-1)] = True
    for start in range(0, len(pairs), LEVEL_CHUNK):
        part = pairs[start : start + LEVEL_CHUNK]
        strong[start : start + LEVEL_CHUNK] |= active[part[:, 0]] & active[part[:, 1]]
    return np.flatnonzero(strong)


def reasons(levels_row: dict, weights: np.ndarray, comparators: list[Comparator], top: int = 6) -> list[str]:
    """Every compared field's contribution (its log-likelihood weight), strongest first."""
    scored = []
    for k, comp in enumerate(comparators):
        level = levels_row[f"level_{comp.name}"]
        if level < 0:
            continue
        text = (
            comp.reason.get(level)
            or f"{comp.name.replace('_', ' ')} "
            + (
                {
                    EXACT: "identical",
                    VERY_SIMILAR: "nearly identical",
                    SIMILAR: "similar",
                    DISAGREE: "differs",
                }[level]
            )
        )
        weight = weights[k, level]
        if level == EXACT and comp.tf_shift is not None and "i" in levels_row:
            weight += comp.pair_tf_shift(np.array([levels_row["i"]]), np.array([levels_row["j"]]))[0]
        scored.append((weight, text))
    scored.sort(key=lambda x: -abs(x[0]))
    return [f"{t} ({w:+.1f})" for w, t in scored[:top]]
