"""The duplicate step's memory savings give the same answer as the plain computation, to the last bit: the
comparison vectors counted in a table, EM's sums in chunks, only the pairs the answer reads kept, a type's
vectors read as slices of a scan, the staged tables read as scans of the compared columns."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import holocrm_core.dedupe.blocking as blocking
import holocrm_core.dedupe.link as link_module
import holocrm_core.dedupe.weights as weights
from holocrm_core.dedupe import (
    clustered_pairs,
    duplicate_candidates,
    fit_match_model,
    link_columns,
    merge_proposals,
)
from holocrm_core.dedupe.compare import (
    DISAGREE,
    EXACT,
    MISSING,
    VERY_SIMILAR,
    DigitValues,
    _levels_digits,
    factorize,
)
from tests.core.test_dedupe_prior import _people


def _sorted_patterns(levels: np.ndarray):
    """The comparison vectors as np.unique over one integer key per pair finds them (the reference)."""
    key = np.zeros(len(levels), dtype=np.int64)
    for f in range(levels.shape[1]):
        key = key * 5 + (levels[:, f].astype(np.int64) + 1)
    _, first, inverse, counts = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
    return levels[first], counts.astype(np.float64), inverse.reshape(-1)


@pytest.mark.parametrize("fields", [1, 6, 11])
def test_comparison_vectors_counted_in_a_table_are_the_sorted_ones(fields):
    """Six fields (5^6 possible vectors) are counted in a table, eleven (5^11) sorted: both give np.unique's
    vectors in its order, its counts and each pair's vector."""
    rng = np.random.default_rng(fields)
    levels = rng.integers(-1, 4, size=(20_000, fields)).astype(np.int8)
    levels[:5000] = levels[0]  # a common vector
    patterns, counts, inverse = weights._patterns(levels)
    expected = _sorted_patterns(levels)
    assert patterns.dtype == levels.dtype
    np.testing.assert_array_equal(patterns, expected[0])
    np.testing.assert_array_equal(counts, expected[1])
    np.testing.assert_array_equal(inverse, expected[2])
    np.testing.assert_array_equal(patterns[inverse], levels)


def test_em_sums_over_chunks_of_pairs_are_those_of_one_pass(monkeypatch):
    """EM with per-pair offsets, its posteriors summed 997 pairs at a time: the same m and prior, bit for
    bit, as in one chunk (a sum of chunk sums would differ in the last bits and move the scores)."""
    rng = np.random.default_rng(7)
    pairs = rng.integers(0, 4, size=(30_000, 3)).astype(np.int8)
    pairs[rng.random(pairs.shape) < 0.05] = -1
    unrelated = rng.choice(4, p=[0.9, 0.06, 0.02, 0.02], size=(5_000, 3)).astype(np.int8)
    offsets = rng.normal(0, 0.5, size=len(pairs))

    def fit():
        return fit_match_model(pairs, unrelated, ["a", "b", "c"], record_pairs=1e8, offsets=offsets)

    whole = fit()
    monkeypatch.setattr(weights, "LEVEL_CHUNK", 997)
    chunked = fit()
    assert chunked.iterations == whole.iterations > 1
    assert np.array_equal(chunked.m, whole.m)
    assert chunked.prior == whole.prior


def _all_pairs(monkeypatch) -> None:
    """duplicate_candidates as before: every scored candidate pair handed to the clustering."""
    plain = link_module._link_entity

    def every_pair(*args, **kwargs):
        kwargs["keep"] = None
        return plain(*args, **kwargs)

    monkeypatch.setattr(link_module, "_link_entity", every_pair)


@pytest.mark.parametrize("min_score", [0.9, 0.3])
def test_keeping_only_the_pairs_the_answer_reads_gives_the_same_answer(monkeypatch, min_score):
    """2,000 people with planted duplicates and many same-name pairs: the candidates (scores, weights,
    reasons) are the same whether every scored pair or only the kept ones (scored chunk by chunk) reach
    the clustering, at the served threshold and below the clustering's 0.5; and far fewer are kept."""
    contacts, companies, _ = _people(2_000, seed=11)
    monkeypatch.setattr(weights, "LEVEL_CHUNK", 4_096)
    kept = duplicate_candidates(contacts, companies, min_score=min_score)
    with monkeypatch.context() as patch:
        _all_pairs(patch)
        every = duplicate_candidates(contacts, companies, min_score=min_score)
    assert len(kept) > 20
    assert kept.equals(every)

    link = link_module._link_entity("contact", contacts, companies, None, keep=(min_score, 0.5))
    assert len(link.result.pairs) < link.result.candidates / 10


def test_the_clustering_reads_only_the_kept_pairs(monkeypatch):
    """On a random scored graph (15% of its pairs scored 0.5 or more), the pairs ``keep`` holds are clustered as in
    the whole graph: each pair of the answer is kept and gets the same verdict. The low-scored pairs
    between clustered records matter: without them the verdicts change."""
    rng = np.random.default_rng(3)
    n, triangles = 20_000, 200
    pairs = blocking.unique_pairs([rng.integers(0, n, size=(30_000, 2))], n)
    high = rng.random(len(pairs)) < 0.15
    scores = np.where(high, rng.uniform(0.5, 1.0, len(pairs)), rng.beta(0.5, 3.0, len(pairs)))
    # records a, b, c: b-c 0.96, a-b 0.95 and a-c low: a joins {b, c} only because a-c is scored above 0.05
    a = n + 3 * np.arange(triangles)
    pairs = np.concatenate(
        [pairs, np.stack([a + 1, a + 2], 1), np.stack([a, a + 1], 1), np.stack([a, a + 2], 1)]
    )
    scores = np.concatenate(
        [scores, np.full(triangles, 0.96), np.full(triangles, 0.95), np.full(triangles, 0.3)]
    )
    n += 3 * triangles
    monkeypatch.setattr(weights, "LEVEL_CHUNK", 333)
    kept = weights._kept(pairs, n, (0.9, 0.5), lambda part: scores[part])
    whole = clustered_pairs(n, pairs, scores, 0.5) & (scores >= 0.9)
    assert set(np.flatnonzero(whole)) <= set(kept.tolist()) and len(kept) < len(pairs) / 2
    np.testing.assert_array_equal(
        clustered_pairs(n, pairs[kept], scores[kept], 0.5) & (scores[kept] >= 0.9), whole[kept]
    )
    strong = np.flatnonzero(scores >= 0.9)
    assert (clustered_pairs(n, pairs[strong], scores[strong], 0.5) != whole[strong]).sum() >= triangles


def test_a_types_vectors_read_as_slices_of_a_scan_are_those_a_filter_reads(tmp_path, monkeypatch):
    """Vectors of three types in runs (as each shard writes them) and one interleaved stretch: the slices
    give a filter's rows in file order; with more runs than MAX_TYPE_RUNS the filter itself is used."""
    types = ["company"] * 40 + ["contact"] * 50 + ["company"] * 7 + ["deal"] * 30
    types += ["company", "contact"] * 10 + ["contact"] * 3
    rng = np.random.default_rng(0)
    frame = pl.DataFrame(
        {
            "entity_type": types,
            "entity_id": [f"id-{k}" for k in range(len(types))],
            "vector": pl.Series(rng.random((len(types), 4), dtype=np.float32), dtype=pl.Array(pl.Float32, 4)),
        }
    )
    frame.write_parquet(tmp_path / "embeddings.parquet", row_group_size=16)
    scan = pl.scan_parquet(tmp_path / "embeddings.parquet")
    for entity_type in ("company", "contact", "deal", "activity"):
        expected = frame.filter(pl.col("entity_type") == entity_type).select("entity_id", "vector")
        assert blocking._type_rows(scan, entity_type).equals(expected)
    monkeypatch.setattr(blocking, "MAX_TYPE_RUNS", 1)
    assert blocking._type_rows(scan, "company").equals(
        frame.filter(pl.col("entity_type") == "company").select("entity_id", "vector")
    )
    ids = frame.filter(pl.col("entity_type") == "company").get_column("entity_id").to_list()[::-1]
    aligned = blocking.aligned_vectors(ids, scan, "company")
    by_id = dict(
        zip(frame.get_column("entity_id").to_list(), frame.get_column("vector").to_numpy(), strict=True)
    )
    np.testing.assert_array_equal(aligned, np.stack([by_id[i] for i in ids]))


@pytest.mark.parametrize("phone", [True, False])
def test_digits_compared_through_codes_get_the_levels_of_their_values(phone):
    """Phones, postcodes and yyyymmdd dates (one digit off, two swapped, month and day swapped, another
    length, empty or None) compared as codes into their distinct values: the levels of the values."""
    rng = np.random.default_rng(int(phone))
    base = ["+441234567890", "+441234567809", "+44123456789", "20240316", "20241603", "20240613", "", None]
    values = base + [
        "".join(rng.choice(list("0123456789"), size=int(rng.integers(6, 12)))) for _ in range(40)
    ]
    codes, distinct = factorize(values)
    a, b = rng.integers(0, len(values), size=(2, 3_000))
    a[:64], b[:64] = np.repeat(np.arange(8), 8), np.tile(np.arange(8), 8)  # every pair of the base values
    expected = _levels_digits([values[i] for i in a], [values[j] for j in b], phone=phone)
    got = DigitValues(distinct).levels(codes[a], codes[b], phone=phone)
    np.testing.assert_array_equal(got, expected)
    assert set(expected[:64].tolist()) >= {MISSING, DISAGREE, VERY_SIMILAR, EXACT}


def test_candidate_pairs_are_each_distinct_pair_once_in_order():
    """The passes' pairs (repeated, either order, self pairs) become each distinct pair once, i < j, sorted."""
    rng = np.random.default_rng(5)
    parts = [rng.integers(0, 500, size=(4_000, 2)) for _ in range(3)]
    pairs = blocking.unique_pairs(parts, 500)
    every = np.concatenate(parts)
    every = np.sort(every[every[:, 0] != every[:, 1]], axis=1)
    np.testing.assert_array_equal(pairs, np.unique(every, axis=0))


def test_scans_of_the_compared_columns_give_the_whole_tables_answer():
    """What the asset reads: the staged tables' compared columns (a notes column, tags and dates left out)
    and scans for the proposals give the candidates and proposals of the whole tables."""
    contacts, companies, _ = _people(2_000, seed=4)
    contacts = contacts.with_columns(
        pl.format("note {}", pl.col("contact_id")).alias("notes"),
        pl.lit("x").alias("cf_segment"),
    )
    activities = pl.DataFrame(
        {"contact_id": contacts.get_column("contact_id").head(300), "company_id": None},
        schema={"contact_id": pl.String, "company_id": pl.String},
    )
    whole = duplicate_candidates(contacts, companies)
    compared = duplicate_candidates(
        contacts.select(link_columns("contact", contacts.columns)),
        companies.select(link_columns("company", companies.columns)),
    )
    assert "notes" not in link_columns("contact", contacts.columns)
    assert "cf_segment" in link_columns("contact", contacts.columns)
    assert compared.equals(whole) and len(whole) > 10
    eager = merge_proposals(whole, contacts, companies, activities=activities)
    lazy = merge_proposals(whole, contacts.lazy(), companies.lazy(), activities=activities.lazy())
    assert lazy.equals(eager) and len(eager) > 10
