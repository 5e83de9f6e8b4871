"""LanceDB version retention: merges leave a bounded number of versions, a pinned reader keeps its own."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from holocrm_core import lance_versions
from tests.core.test_store_shards import SHARDS, _documents


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@pytest.fixture
def no_retention(monkeypatch):
    """Remove every version nothing pins, at once (a test cannot wait the default 10 minutes)."""
    monkeypatch.setenv("HOLOCRM_LANCEDB_RETENTION_S", "0")
    monkeypatch.setattr(lance_versions, "MARGIN_S", 0.0)


def _merge_rounds(store, rounds: int, start: int = 0) -> list[tuple[int, int]]:
    """Merge every shard ``rounds`` times with changed texts; (versions, folder bytes) after each round."""
    out = []
    for r in range(start, start + rounds):
        documents, vectors = _documents(120, note=f"round {r}")
        for shard in range(SHARDS):
            store.merge_shards(documents, vectors, [shard], SHARDS)
        table = store.table("contact")
        out.append((len(table.list_versions()), _folder_bytes(Path(store.uri) / "contact.lance")))
    return out


def test_merges_keep_versions_and_disk_bounded(tmp_path, monkeypatch, no_retention):
    from holocrm_core import store as store_module
    from holocrm_core.store import SimilarityStore

    monkeypatch.setattr(store_module, "MERGE_SLICE_ROWS", 20)  # many commits per merge, as at 1M contacts
    store = SimilarityStore(str(tmp_path / "lancedb"))
    figures = _merge_rounds(store, 3)
    versions = [v for v, _ in figures]
    sizes = [b for _, b in figures]
    # each round commits dozens of versions (slices, deletes, index updates); only the latest stays
    assert max(versions) <= 2, figures
    assert sizes[-1] <= 1.5 * sizes[0], figures
    ids = store.table("contact").to_arrow().column("entity_id").to_pylist()
    assert len(ids) == 120 and len(set(ids)) == 120


def test_default_retention_keeps_recent_versions(tmp_path):
    """Without the override a version superseded a moment ago stays (a reader may have just opened it)."""
    from holocrm_core.store import SimilarityStore

    store = SimilarityStore(str(tmp_path / "lancedb"))
    versions = [v for v, _ in _merge_rounds(store, 2)]
    assert versions[-1] > versions[0] > 2


def test_a_pinned_reader_keeps_answering_after_merges_and_cleanup(tmp_path, no_retention):
    from holocrm_core.store import SimilarityStore

    uri = str(tmp_path / "lancedb")
    writer = SimilarityStore(uri)
    _merge_rounds(writer, 1)
    pinned = SimilarityStore(uri, version=SimilarityStore(uri).versions())
    held = pinned.hold()
    _merge_rounds(writer, 2, start=1)
    # the pinned reader still reads its version: the round-0 texts, vectors and full-text index
    assert pinned.table("contact").version == held["contact"]
    assert "round 0" in pinned.texts("contact", ["C0001"])["C0001"]
    hits = pinned.search("pipeline tooling round 0", entity_types=["contact"], mode="fulltext", limit=3)
    assert hits and all(h["id"].startswith("C") for h in hits)
    assert len(pinned.similar("contact", "C0001", limit=3)) == 3
    # released: the next cleanup removes that version, and a reader pinned to it fails
    pinned.release()
    assert writer.compact()["contact"]["versions_after"] == 1
    with pytest.raises((ValueError, RuntimeError, OSError)):
        SimilarityStore(uri, version=held).table("contact").count_rows()


def test_a_pin_that_is_not_renewed_expires(tmp_path, monkeypatch, no_retention):
    from holocrm_core.store import SimilarityStore

    uri = str(tmp_path / "lancedb")
    writer = SimilarityStore(uri)
    _merge_rounds(writer, 1)
    reader = SimilarityStore(uri)
    reader.hold()
    renewed_tag = reader._holds["contact"][1]
    assert reader.renew_hold(force=True)
    assert reader._holds["contact"][1] != renewed_tag
    assert list(writer.table("contact").tags.list()) == [reader._holds["contact"][1]]
    _merge_rounds(writer, 1, start=1)
    assert len(writer.table("contact").list_versions()) >= 2  # the pinned one stays
    monkeypatch.setenv("HOLOCRM_LANCEDB_PIN_TTL_S", "1")
    time.sleep(1.2)  # the pin is older than its lifetime now
    report = writer.compact()["contact"]
    assert report["expired_pins"] == 1 and report["versions_after"] == 1


def test_cleanup_window_keeps_newest_recent_and_pinned_versions(monkeypatch):
    now = datetime(2026, 12, 6, 22, 0, 0)
    # versions 1..5 committed an hour, 50, 40, 5 and 1 minutes ago
    ages_min = [60, 50, 40, 5, 1]
    versions = [{"version": i + 1, "timestamp": now - timedelta(minutes=m)} for i, m in enumerate(ages_min)]
    monkeypatch.setattr(lance_versions, "MARGIN_S", 0.0)
    ts = now.timestamp()
    monkeypatch.setenv("HOLOCRM_LANCEDB_RETENTION_S", "600")
    # version 3 was the latest until 5 minutes ago (inside the 10 minutes): kept, with 4 and 5
    assert lance_versions.cleanup_window(versions, set(), ts) == (timedelta(minutes=40), 3)
    assert lance_versions.cleanup_window(versions, {2}, ts) == (
        timedelta(minutes=50, seconds=5),
        2,
    )  # + pin margin
    monkeypatch.setenv("HOLOCRM_LANCEDB_RETENTION_S", "0")
    assert lance_versions.cleanup_window(versions, set(), ts) == (timedelta(minutes=1), 5)
    monkeypatch.setenv("HOLOCRM_LANCEDB_KEEP_VERSIONS", "4")
    assert lance_versions.cleanup_window(versions, set(), ts) == (timedelta(minutes=50), 2)
    monkeypatch.setenv("HOLOCRM_LANCEDB_KEEP_VERSIONS", "zero")
    with pytest.raises(ValueError, match="HOLOCRM_LANCEDB_KEEP_VERSIONS"):
        lance_versions.cleanup_window(versions, set(), ts)


def test_sync_rewrites_and_cleans_up_too(tmp_path, no_retention):
    """The whole-index sync (overwrite on a new rotation, upserts otherwise) leaves one version per table."""
    from holocrm_core.store import SimilarityStore

    store = SimilarityStore(str(tmp_path / "lancedb"))
    for r in range(3):
        documents, vectors = _documents(60, note=f"sync {r}")
        reports = store.sync(documents, vectors, refit_rotation=r == 1)
        assert reports["contact"].rows == 60
    assert len(store.table("contact").list_versions()) == 1
    texts = store.texts("contact", ["C0001", "C0059"])
    assert all("sync 2" in t for t in texts.values())
    assert len(store.search("pipeline", entity_types=["contact"], mode="fulltext", limit=5)) == 5


def test_fused_vectors_are_written_in_one_streamed_commit(tmp_path, no_retention):
    import lancedb
    import numpy as np
    import polars as pl

    from holocrm_core.attachments.index import fused_activity_frame, write_fused_table
    from holocrm_core.embedding import DIM

    def embeddings(start: int, n: int) -> pl.DataFrame:
        vectors = np.random.default_rng(start).normal(size=(n, DIM)).astype(np.float32)
        return pl.DataFrame(
            {
                "entity_type": ["activity"] * n,
                "entity_id": [f"A{start + i:05d}" for i in range(n)],
                "vector": vectors,
            },
            schema_overrides={"vector": pl.Array(pl.Float32, DIM)},
        )

    db = lancedb.connect(str(tmp_path / "lancedb"))
    for run in range(2):  # a second run replaces the first; its vectors' files go
        slices = (fused_activity_frame(embeddings(start, 40), None) for start in (0, 40, 80))
        table = write_fused_table(db, slices)
        assert len(table.list_versions()) == 1, run
    ids = table.to_arrow().column("activity_id").to_pylist()
    assert ids == [f"A{i:05d}" for i in range(120)]
    assert write_fused_table(db, fused_activity_frame(None, None)).count_rows() == 0
