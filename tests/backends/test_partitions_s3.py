"""Partitioned tables on S3: the same guarantees as on a folder without a lock (holocrm_core/partitions.py:
the union is a compare-and-swap commit): shards committing at once lose nothing, a re-run of one shard
rewrites that shard only."""

from __future__ import annotations

import threading

import polars as pl

from holocrm_core.partitions import PartitionedTable, in_shards, shard_table, split_by_shard
from holocrm_core.warehouse import Warehouse

SHARDS = 4


def _contacts(n: int) -> pl.DataFrame:
    return pl.DataFrame({"contact_id": [f"C{i}" for i in range(n)], "note": [""] * n})


def test_shards_committing_at_once_on_s3_lose_nothing(s3_env):
    root = f"s3://{s3_env.bucket}/partitions-race"
    frame = _contacts(400)
    errors: list[BaseException] = []

    def commit(shard: int) -> None:
        try:
            table = PartitionedTable(Warehouse(root), "embeddings")
            mine = in_shards(frame, "contact_id", [shard], SHARDS)
            for i in range(4):
                table.write_partitions(
                    {("b1", shard): mine.with_columns(pl.lit(f"r{i}").alias("note"))}, SHARDS
                )
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=commit, args=(s,)) for s in range(SHARDS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    union = Warehouse(root).read("embeddings")
    assert union.height == 400 and union["contact_id"].n_unique() == 400
    assert set(union["note"]) == {"r3"}  # every shard's last commit is in the union
    assert PartitionedTable(Warehouse(root), "embeddings").union_batch() == "b1"


def test_a_rerun_of_one_shard_on_s3_touches_no_other_shard(s3_env):
    warehouse = Warehouse(f"s3://{s3_env.bucket}/partitions-rerun")
    table = PartitionedTable(warehouse, "staged_contacts")
    frame = _contacts(200)
    keys = [("b1", s) for s in range(SHARDS)]
    table.write_partitions(
        split_by_shard("staged_contacts", frame, keys, "contact_id", SHARDS), SHARDS, whole=frame
    )
    assert warehouse.read("staged_contacts").equals(frame) and table.shards_written("b1") == set(
        range(SHARDS)
    )
    before = {s: table.batch("b1").current_version(shard_table(s)) for s in range(SHARDS)}
    shard2 = in_shards(frame, "contact_id", [2], SHARDS).with_columns(pl.lit("again").alias("note"))
    table.write_partitions({("b1", 2): shard2}, SHARDS)
    after = {s: table.batch("b1").current_version(shard_table(s)) for s in range(SHARDS)}
    assert {s for s in range(SHARDS) if after[s] != before[s]} == {2}
    union = warehouse.read("staged_contacts")
    assert union.height == 200 and union.filter(pl.col("note") == "again").height == shard2.height
