"""Shards merged into the LanceDB index: idempotent, and two shards committing at once lose nothing."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import polars as pl
import pytest

from holocrm_core.embedding import DIM
from holocrm_core.partitions import in_shards
from holocrm_core.text import DOCUMENT_SCHEMA, FILTER_COLUMNS

SHARDS = 4


def _documents(n: int, note: str = "") -> tuple[pl.DataFrame, pl.DataFrame]:
    ids = [f"C{i:04d}" for i in range(n)]
    texts = [f"contact {i} works on pipeline tooling {note}" for i in range(n)]
    documents = pl.DataFrame(
        {
            "entity_type": ["contact"] * n,
            "entity_id": ids,
            "text": texts,
            "content_hash": [str(hash(t)) for t in texts],
            **{c: [None] * n for c in FILTER_COLUMNS},
        },
        schema=DOCUMENT_SCHEMA,
    )
    rng = np.random.default_rng(len(note))
    matrix = rng.normal(size=(n, DIM)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    vectors = pl.DataFrame(
        {"entity_type": ["contact"] * n, "entity_id": ids, "vector": matrix},
        schema_overrides={"vector": pl.Array(pl.Float32, DIM)},
    )
    return documents, vectors


def _indexed_ids(uri) -> list[str]:
    from holocrm_core.store import SimilarityStore

    return SimilarityStore(str(uri)).table("contact").to_arrow().column("entity_id").to_pylist()


def test_a_shard_merged_again_replaces_its_rows_and_leaves_the_others(tmp_path, monkeypatch):
    from holocrm_core import store as store_module
    from holocrm_core.store import SimilarityStore

    monkeypatch.setattr(store_module, "MERGE_SLICE_ROWS", 7)  # upserts in slices, as at 1M contacts

    documents, vectors = _documents(120)
    store = SimilarityStore(str(tmp_path / "lancedb"))
    for shard in range(SHARDS):
        store.merge_shards(documents, vectors, [shard], SHARDS)
    ids = _indexed_ids(tmp_path / "lancedb")
    assert len(ids) == 120 and len(set(ids)) == 120

    # shard 1 again: one of its entities gone, the others changed; no other shard's rows move
    mine = in_shards(documents, "entity_id", [1], SHARDS)
    dropped = mine["entity_id"][0]
    changed, changed_vectors = _documents(120, note="again")
    report = store.merge_shards(changed.filter(pl.col("entity_id") != dropped), changed_vectors, [1], SHARDS)[
        "contact"
    ]
    assert report.deleted == 1 and report.updated == mine.height - 1 and report.new == 0
    table = SimilarityStore(str(tmp_path / "lancedb")).table("contact").to_arrow()
    frame = pl.from_arrow(table.select(["entity_id", "text"]))
    assert frame.height == 119 and frame["entity_id"].n_unique() == 119 and dropped not in frame["entity_id"]
    again = frame.filter(pl.col("text").str.ends_with("again"))["entity_id"]
    assert sorted(again) == sorted(mine["entity_id"][1:])  # only shard 1's rows changed

    # the same shard, same rows, once more: nothing new, nothing duplicated
    report = store.merge_shards(changed.filter(pl.col("entity_id") != dropped), changed_vectors, [1], SHARDS)
    assert (report["contact"].new, report["contact"].updated, report["contact"].deleted) == (0, 0, 0)
    assert len(_indexed_ids(tmp_path / "lancedb")) == 119


def _merge(args) -> int:
    from holocrm_core.store import SimilarityStore

    uri, shard = args
    documents, vectors = _documents(400)
    SimilarityStore(uri).merge_shards(documents, vectors, [shard], SHARDS)
    return in_shards(documents, "entity_id", [shard], SHARDS).height


@pytest.mark.slow  # four spawned processes importing LanceDB: about 25 s on 2 busy cores
def test_shards_merging_at_once_lose_nothing(tmp_path):
    """Four processes create and merge into the same empty tables at the same time: LanceDB commit
    conflicts are retried, so every shard's rows are there once. (Measured with the retries switched off:
    2 of 3 such races failed a shard with "Retryable commit conflict", one leaving 300 of 400 rows.)"""
    uri = str(tmp_path / "lancedb")
    with ProcessPoolExecutor(max_workers=SHARDS, mp_context=multiprocessing.get_context("spawn")) as pool:
        merged = list(pool.map(_merge, [(uri, s) for s in range(SHARDS)]))
    ids = _indexed_ids(uri)
    assert sum(merged) == 400 and len(ids) == 400 and len(set(ids)) == 400


def test_a_table_torn_by_a_killed_creator_is_replaced_by_the_next_shard(tmp_path):
    """A shard stopped while creating a table leaves its data files and no version: listed, never readable."""
    from holocrm_core.store import SimilarityStore

    documents, vectors = _documents(80)
    uri = tmp_path / "lancedb"
    (uri / "contact.lance" / "data").mkdir(parents=True)
    (uri / "contact.lance" / "data" / ".tmpTorn").write_bytes(b"\0" * 64)
    store = SimilarityStore(str(uri))
    for shard in range(SHARDS):
        store.merge_shards(documents, vectors, [shard], SHARDS)
    ids = _indexed_ids(uri)
    assert sorted(ids) == sorted(documents["entity_id"].to_list())


def test_vectors_from_a_scan_in_any_order_are_aligned_slice_by_slice(tmp_path, monkeypatch):
    """The similarity_index asset hands the store a scan of its embeddings partition: the vectors reach the
    index row for row with their documents whatever the file's order and its extra rows, read in slices."""
    from holocrm_core import store as store_module
    from holocrm_core.store import SimilarityStore, _aligned

    monkeypatch.setattr(store_module, "VECTOR_SLICE_ROWS", 7)
    documents, vectors = _documents(60)
    extra = _documents(70, note="x")[1].slice(60, 10).with_columns(pl.col("entity_id") + "-other")
    shuffled = pl.concat([vectors, extra]).sample(fraction=1.0, shuffle=True, seed=3)
    shuffled.write_parquet(tmp_path / "vectors.parquet")
    scan = pl.scan_parquet(tmp_path / "vectors.parquet")

    aligned_docs, matrix, _ = _aligned(documents, scan)
    assert np.array_equal(matrix, vectors.get_column("vector").to_numpy())
    assert aligned_docs.get_column("entity_id").to_list() == documents.get_column("entity_id").to_list()
    assert np.array_equal(_aligned(documents, shuffled)[1], matrix)  # an eager frame: the same matrix

    eager, lazy = SimilarityStore(str(tmp_path / "eager")), SimilarityStore(str(tmp_path / "lazy"))
    for shard in range(SHARDS):
        eager.merge_shards(documents, vectors, [shard], SHARDS)
        lazy.merge_shards(documents, scan, [shard], SHARDS)

    def rows(store):
        table = store.table("contact").to_arrow().select(["entity_id", "vector", "row_hash"])
        return pl.from_arrow(table).sort("entity_id")

    assert rows(eager).equals(rows(lazy))
    with pytest.raises(ValueError, match="every document needs a vector"):
        _aligned(documents, scan.filter(pl.col("entity_id") != "C0005"))


def test_the_rotation_fitted_slice_by_slice_is_the_plain_covariance_one():
    from holocrm_core.embedding import SpectralRotation

    rng = np.random.default_rng(0)
    vectors = (rng.normal(size=(45_000, 32)) * np.exp(-np.arange(32) / 8)).astype(np.float32)
    fitted = SpectralRotation.fit(vectors)
    centred = (vectors - vectors.mean(axis=0)).astype(np.float64)
    eigenvalues = np.linalg.eigvalsh(centred.T @ centred / (len(vectors) - 1))[::-1]
    assert np.allclose(fitted.eigenvalues, eigenvalues, rtol=1e-6, atol=1e-9)
    rotated = fitted.rotate(vectors[:5])
    assert np.allclose(np.linalg.norm(rotated, axis=1), np.linalg.norm(vectors[:5], axis=1), rtol=1e-5)
