"""The partitioned part of the graph run shard by shard gives the tables and the index of the default path
(every shard in one run)."""

import numpy as np
import polars as pl
import pytest

from holocrm_core.settings import HoloPaths

pytestmark = pytest.mark.slow  # two ingests and two embeddings of a small export, ~33 Dagster runs

TABLES = {
    "staged_companies": "company_id",
    "staged_contacts": "contact_id",
    "staged_deals": "deal_id",
    "staged_activities": "activity_id",
    "staged_attachments": "attachment_id",
    "entity_documents": "entity_id",
    "attachment_texts": "attachment_id",
    "scored_leads": "contact_id",
    "scored_deals": "deal_id",
}
QUARANTINES = ["quarantine_contacts", "quarantine_deals", "quarantine_activities", "file_errors"]


@pytest.fixture(scope="module")
def two_homes(tmp_path_factory):
    from holocrm_core.synth import generate_export
    from pipelines.jobs import PARTITIONED_ASSETS
    from pipelines.runner import backfill, run_all

    root = tmp_path_factory.mktemp("partitioned")
    export = root / "landing-src" / "b1"
    generate_export(export, n_contacts=80, seed=5, truth_dir=root / "truth")
    whole, sharded = HoloPaths(root / "whole"), HoloPaths(root / "sharded")
    summary = run_all(export, paths=whole, progress=lambda line: None, selection=PARTITIONED_ASSETS)
    assert summary.success, summary.errors
    runs = backfill(export, paths=sharded, progress=lambda line: None)
    assert runs and all(r.success for r in runs), [r.errors for r in runs if not r.success]
    return whole, sharded


def _read(paths: HoloPaths, name: str) -> pl.DataFrame:
    from holocrm_core.warehouse import Warehouse

    return Warehouse(paths.warehouse).read(name)


@pytest.mark.parametrize("name", list(TABLES))
def test_shard_by_shard_gives_the_default_paths_tables(two_homes, name):
    whole, sharded = (_read(p, name).sort(TABLES[name]) for p in two_homes)
    assert whole.height == sharded.height > 0
    drop = [c for c in ("seconds", "scored_at") if c in whole.columns]  # timings
    assert whole.drop(drop).equals(sharded.drop(drop).select(whole.drop(drop).columns))


def test_quarantine_is_the_same_rows(two_homes):
    for name in QUARANTINES:
        whole, sharded = (_read(p, name) for p in two_homes)
        key = ["source_file", "line", "column"]
        assert whole.sort(key).equals(sharded.sort(key).select(whole.columns)), name


def test_embeddings_and_index_are_the_same(two_homes):
    from holocrm_core.store import SimilarityStore

    whole, sharded = (_read(p, "embeddings").sort("entity_type", "entity_id") for p in two_homes)
    assert whole.select("entity_type", "entity_id", "content_hash").equals(
        sharded.select("entity_type", "entity_id", "content_hash")
    )
    # embedded in other batches: the quantized ONNX backend scales activations per batch, so a text embedded
    # with other texts moves a little (measured: cosine min 0.9945, median 0.998); same within that
    cosine = (np.stack(whole["vector"].to_numpy()) * np.stack(sharded["vector"].to_numpy())).sum(axis=1)
    assert cosine.min() > 0.99
    for entity_type in ("contact", "company", "deal", "activity"):
        ids = [
            sorted(
                SimilarityStore(str(p.lancedb)).table(entity_type).to_arrow().column("entity_id").to_pylist()
            )
            for p in two_homes
        ]
        assert ids[0] == ids[1] and len(set(ids[1])) == len(ids[1]) > 0


def test_a_shard_rerun_from_the_cli_restores_that_shard_and_touches_no_other(two_homes, monkeypatch):
    """`holocrm run --shard 2 --only entity_documents` on a built batch: shard 2's partition (damaged here)
    is rebuilt, the other shards' files keep their bytes, and the plain table is the union again."""
    import hashlib

    from typer.testing import CliRunner

    from holocrm_cli import app
    from holocrm_core.partitions import PartitionedTable, shard_table
    from holocrm_core.warehouse import Warehouse

    _, sharded = two_homes
    monkeypatch.setenv("HOLOCRM_HOME", str(sharded.home))
    monkeypatch.delenv("HOLOCRM_SERVER", raising=False)
    warehouse = Warehouse(sharded.warehouse)
    batch = PartitionedTable(warehouse, "entity_documents").batch("b1")
    good = batch.read(shard_table(2))
    batch.write(shard_table(2), good.head(1).with_columns(text=good["text"].head(1) + " damaged"))
    folder = sharded.warehouse / "_partitions" / "entity_documents" / "b1"

    def others() -> dict[str, str]:
        return {
            str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and "shard-0002" not in p.name and "shard-0002" not in str(p.parent)
        }

    before, union = others(), _read(sharded, "entity_documents")
    export = sharded.home.parent / "landing-src" / "b1"
    result = CliRunner().invoke(
        app, ["run", "--export", str(export), "--shard", "2", "--only", "entity_documents"]
    )
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.output and "entity_documents" in result.output
    assert batch.read(shard_table(2)).sort("entity_id").equals(good.sort("entity_id"))
    assert others() == before
    assert _read(sharded, "entity_documents").sort("entity_id").equals(union.sort("entity_id"))
