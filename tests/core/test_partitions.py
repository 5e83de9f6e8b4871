"""Partitioned warehouse tables: stable shards, a re-run of one shard touches nothing else, concurrent shard
commits lose nothing, the union is the newest complete batch."""

from __future__ import annotations

import hashlib
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import polars as pl
import pytest

from holocrm_core.partitions import (
    PartitionedTable,
    batch_key,
    in_shards,
    shard_count,
    shard_of,
    shard_table,
    split_by_shard,
)
from holocrm_core.warehouse import Warehouse

SHARDS = 4


def _contacts(n: int, prefix: str = "C", note: str = "") -> pl.DataFrame:
    return pl.DataFrame({"contact_id": [f"{prefix}{i}" for i in range(n)], "note": [note] * n})


def _digest(path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def test_shards_are_stable_and_ignore_surrounding_spaces():
    ids = ["C1", " C1 ", "C2", None, ""]
    shards = shard_of(ids, 8).to_list()
    # CRC-32 is fixed by its definition: the same ids land in the same shards on any machine, any version
    assert shards == shard_of(pl.Series(ids), 8).to_list()
    assert shards[0] == shards[1] and shards[3] == shards[4]
    assert all(0 <= s < 8 for s in shards)
    spread = shard_of([f"C{i}" for i in range(4000)], SHARDS).value_counts()
    assert spread.height == SHARDS and spread["count"].min() > 800  # about a quarter each


def test_shard_count_setting(monkeypatch):
    monkeypatch.delenv("HOLOCRM_SHARDS", raising=False)
    assert shard_count() == 4
    monkeypatch.setenv("HOLOCRM_SHARDS", "16")
    assert shard_count() == 16
    monkeypatch.setenv("HOLOCRM_SHARDS", "zero")
    with pytest.raises(ValueError, match="HOLOCRM_SHARDS"):
        shard_count()


def test_batch_keys_are_valid_partition_and_table_names():
    assert batch_key("export 2026-12-01 (hubspot)") == "export_2026-12-01_hubspot"
    assert batch_key("a|b,c") == "a_b_c"  # "|" separates the dimensions of a partition key
    assert not batch_key("..").startswith(".") and batch_key("") == "batch"


def test_split_refuses_rows_of_a_shard_the_run_does_not_own():
    frame = _contacts(50)
    parts = split_by_shard("t", frame, [("b", s) for s in range(SHARDS)], "contact_id", SHARDS)
    assert sum(p.height for p in parts.values()) == 50
    for (_, shard), part in parts.items():
        assert set(shard_of(part["contact_id"], SHARDS).to_list()) <= {shard}
    with pytest.raises(ValueError, match="rows of shards"):
        split_by_shard("t", frame, [("b", 0), ("b", 1)], "contact_id", SHARDS)


def _write_batch(table: PartitionedTable, batch: str, frame: pl.DataFrame) -> None:
    keys = [(batch, s) for s in range(SHARDS)]
    table.write_partitions(split_by_shard(table.name, frame, keys, "contact_id", SHARDS), SHARDS, whole=frame)


def test_rerun_of_one_shard_touches_no_other_shard_and_duplicates_nothing(tmp_path):
    warehouse = Warehouse(tmp_path / "warehouse")
    table = PartitionedTable(warehouse, "staged_contacts")
    frame = _contacts(200)
    _write_batch(table, "b1", frame)
    # the default path (every shard in one run): the union is the frame as returned, in its row order
    assert warehouse.read("staged_contacts").equals(frame)
    files = {s: table.batch("b1").path(shard_table(s)) for s in range(SHARDS)}
    before = {s: (_digest(p), p.stat().st_mtime_ns) for s, p in files.items()}

    # shard 2 again, its rows changed: only its file changes, and the union replaces its rows
    shard2 = in_shards(frame, "contact_id", [2], SHARDS).with_columns(pl.lit("again").alias("note"))
    table.write_partitions({("b1", 2): shard2}, SHARDS)
    for s, path in files.items():
        unchanged = (_digest(path), path.stat().st_mtime_ns) == before[s]
        assert unchanged == (s != 2), f"shard {s}"
    union = warehouse.read("staged_contacts")
    assert union.height == 200 and union["contact_id"].n_unique() == 200
    assert union.filter(pl.col("note") == "again").height == shard2.height

    # the same shard with the same rows once more: no new version anywhere
    versions = len(warehouse.history("staged_contacts"))
    table.write_partitions({("b1", 2): shard2}, SHARDS)
    assert len(warehouse.history("staged_contacts")) == versions
    assert _digest(files[2]) == _digest(files[2])


def test_union_is_the_newest_complete_batch(tmp_path):
    warehouse = Warehouse(tmp_path / "warehouse")
    table = PartitionedTable(warehouse, "staged_contacts")
    _write_batch(table, "b1", _contacts(40, "OLD"))
    newer = _contacts(60, "NEW")
    keys = [("b2", s) for s in range(SHARDS)]
    parts = split_by_shard("staged_contacts", newer, keys, "contact_id", SHARDS)
    for shard in range(SHARDS - 1):  # a backfill of the new batch, shard by shard, not finished
        table.write_partitions({("b2", shard): parts[("b2", shard)]}, SHARDS)
        assert warehouse.read("staged_contacts")["contact_id"].str.starts_with("OLD").all()
    table.write_partitions({("b2", SHARDS - 1): parts[("b2", SHARDS - 1)]}, SHARDS)
    union = warehouse.read("staged_contacts")
    assert sorted(union["contact_id"]) == sorted(newer["contact_id"]) and table.union_batch() == "b2"
    # a partitioned reader of the old batch still reads the old batch
    assert table.read_partitions([("b1", s) for s in range(SHARDS)]).height == 40


def _commit_shard(args) -> int:
    root, shard, rounds = args
    table = PartitionedTable(Warehouse(root), "embeddings")
    frame = _contacts(400)
    mine = in_shards(frame, "contact_id", [shard], SHARDS)
    for i in range(rounds):
        table.write_partitions({("b1", shard): mine.with_columns(pl.lit(f"r{i}").alias("note"))}, SHARDS)
    return mine.height


def test_shards_committing_at_once_lose_nothing(tmp_path):
    root = tmp_path / "warehouse"
    # spawned, not forked: a fork of a process whose polars thread pool ran can deadlock
    with ProcessPoolExecutor(max_workers=SHARDS, mp_context=multiprocessing.get_context("spawn")) as pool:
        heights = list(pool.map(_commit_shard, [(root, s, 5) for s in range(SHARDS)]))
    union = Warehouse(root).read("embeddings")
    assert union.height == sum(heights) == 400
    assert union["contact_id"].n_unique() == 400
    assert set(union["note"]) == {"r4"}  # every shard's last commit is in the union
