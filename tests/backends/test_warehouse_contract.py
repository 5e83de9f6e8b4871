"""The warehouse contract the IO manager and partitioned tables build on, on a folder and on S3 alike:
compare-and-swap commits, atomic JSON documents, child warehouses."""

from __future__ import annotations

import threading

import polars as pl
import pytest

from holocrm_core.warehouse import CommitConflict, Warehouse


@pytest.fixture(params=["folder", "s3"])
def warehouse(request, tmp_path) -> Warehouse:
    if request.param == "folder":
        return Warehouse(tmp_path / "warehouse")
    endpoint = request.getfixturevalue("s3_env")
    return Warehouse(
        f"s3://{endpoint.bucket}/contract-{request.node.name.split('[')[0][-20:]}-{id(tmp_path)}"
    )


def test_a_write_expecting_an_old_version_is_refused(warehouse):
    warehouse.write("scored_leads", pl.DataFrame({"x": [1]}), expect_version=None)
    with pytest.raises(CommitConflict):
        warehouse.write("scored_leads", pl.DataFrame({"x": [2]}), expect_version=None)
    warehouse.write("scored_leads", pl.DataFrame({"x": [3]}), expect_version=1)
    with pytest.raises(CommitConflict, match="at version 2, not 1"):
        warehouse.write("scored_leads", pl.DataFrame({"x": [4]}), expect_version=1)
    assert warehouse.read("scored_leads")["x"].to_list() == [3]


def test_document_updates_from_racing_writers_are_never_lost(warehouse):
    def bump(document):
        document = document or {"count": 0}
        return {"count": document["count"] + 1}

    def writer():
        for _ in range(8):
            warehouse.update_document("_batches", bump)

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert warehouse.read_document("_batches") == {"count": 24}
    assert warehouse.read_document("absent") is None
    assert warehouse.tables() == []  # documents are not tables


def test_a_child_warehouse_is_separate_and_on_the_same_storage(warehouse):
    part = warehouse.child("_partitions", "embeddings", "batch-1")
    part.write("shard-0001", pl.DataFrame({"id": ["a"]}))
    assert type(part) is type(warehouse) and part.tables() == ["shard-0001"]
    assert warehouse.tables() == [] and not warehouse.exists("shard-0001")


def test_the_stamp_changes_with_each_commit_only(warehouse):
    """What the API's reload and the NL vocabulary poll: a commit changes it, a read or an identical rewrite
    (no new version) does not; ``modified_at`` is the commit's time."""
    from datetime import UTC, datetime, timedelta

    assert warehouse.stamp("scored_leads") is None and warehouse.modified_at("scored_leads") is None
    warehouse.write("scored_leads", pl.DataFrame({"x": [1]}))
    first = warehouse.stamp("scored_leads")
    assert first is not None
    warehouse.read("scored_leads")
    warehouse.write("scored_leads", pl.DataFrame({"x": [1]}))  # the same bytes: no new version
    assert warehouse.stamp("scored_leads") == first
    warehouse.write("scored_leads", pl.DataFrame({"x": [2]}))
    assert warehouse.stamp("scored_leads") not in (None, first)
    assert abs(warehouse.modified_at("scored_leads") - datetime.now(UTC)) < timedelta(minutes=1)
