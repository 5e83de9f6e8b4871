"""Partitioned tables on either storage (a folder, the S3 endpoint): a re-run of one shard replaces only its
rows, and shards committing their unions at once lose nothing (compare-and-swap on the union)."""

from __future__ import annotations

import threading

import polars as pl
import pytest

from holocrm_core.partitions import PartitionedTable, in_shards, split_by_shard
from holocrm_core.warehouse import Warehouse

SHARDS = 4


@pytest.fixture(params=["folder", "s3"])
def warehouse(request, tmp_path) -> Warehouse:
    if request.param == "folder":
        return Warehouse(tmp_path / "warehouse")
    endpoint = request.getfixturevalue("s3_env")
    return Warehouse(f"s3://{endpoint.bucket}/partitions-{id(tmp_path)}")


def _contacts(n: int, note: str = "") -> pl.DataFrame:
    return pl.DataFrame({"contact_id": [f"C{i}" for i in range(n)], "note": [note] * n})


def test_a_shard_rerun_replaces_only_its_rows(warehouse):
    table = PartitionedTable(warehouse, "staged_contacts")
    frame = _contacts(80)
    keys = [("b1", s) for s in range(SHARDS)]
    table.write_partitions(split_by_shard("t", frame, keys, "contact_id", SHARDS), SHARDS, whole=frame)
    assert warehouse.read("staged_contacts").equals(frame) and table.union_batch() == "b1"
    again = in_shards(frame, "contact_id", [2], SHARDS).with_columns(pl.lit("again").alias("note"))
    table.write_partitions({("b1", 2): again}, SHARDS)
    union = warehouse.read("staged_contacts")
    assert union.height == 80 and union["contact_id"].n_unique() == 80
    assert union.filter(pl.col("note") == "again").height == again.height
    assert table.shards_written("b1") == set(range(SHARDS))


def test_shards_committing_at_once_lose_nothing(warehouse):
    table = PartitionedTable(warehouse, "embeddings")
    frame = _contacts(200)
    errors = []

    def commit(shard: int) -> None:
        try:
            part = in_shards(frame, "contact_id", [shard], SHARDS)
            for i in range(3):
                PartitionedTable(warehouse, "embeddings").write_partitions(
                    {("b1", shard): part.with_columns(pl.lit(f"r{i}").alias("note"))}, SHARDS
                )
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=commit, args=(s,)) for s in range(SHARDS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    union = warehouse.read("embeddings")
    assert union.height == 200 and union["contact_id"].n_unique() == 200 and set(union["note"]) == {"r2"}
    assert table.union_batch() == "b1"
