"""Object storage: moto's S3 server honours conditional writes, and the warehouse and LanceDB commit on it
without losing or duplicating a concurrent commit."""

from __future__ import annotations

import threading

import botocore.exceptions
import polars as pl
import pytest

from holocrm_core import objectstore
from holocrm_core.settings import Backends, connect_lancedb
from holocrm_core.warehouse import TableVersionError, Warehouse
from holocrm_core.warehouse_s3 import ObjectWarehouse


def frame(n: int, tag: str = "") -> pl.DataFrame:
    return pl.DataFrame({"contact_id": [f"c{tag}{i}" for i in range(n)], "score": [i / 10 for i in range(n)]})


def test_the_endpoint_refuses_stale_conditional_writes(s3_endpoint):
    """What LanceDB's and the warehouse's commits rely on (lance >= 0.24 writes its manifests with
    If-None-Match: *): moto 5.2.5's server answers 412 to both kinds of lost race."""
    client = s3_endpoint.client()
    etag = client.put_object(Bucket=s3_endpoint.bucket, Key="probe/k", Body=b"1", IfNoneMatch="*")["ETag"]
    for kwargs in ({"IfNoneMatch": "*"}, {"IfMatch": '"not-the-etag"'}):
        with pytest.raises(botocore.exceptions.ClientError) as lost:
            client.put_object(Bucket=s3_endpoint.bucket, Key="probe/k", Body=b"2", **kwargs)
        assert lost.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    client.put_object(Bucket=s3_endpoint.bucket, Key="probe/k", Body=b"3", IfMatch=etag)
    assert client.get_object(Bucket=s3_endpoint.bucket, Key="probe/k")["Body"].read() == b"3"
    objectstore.probe_conditional_writes(
        objectstore.s3_client(Backends.load(s3_endpoint.env())), s3_endpoint.bucket
    )


def test_warehouse_on_s3_keeps_the_local_api(s3_env):
    wh = Warehouse(f"s3://{s3_env.bucket}/wh-api")
    assert isinstance(wh, ObjectWarehouse) and wh.tables() == []
    with pytest.raises(FileNotFoundError, match="has not been built yet"):
        wh.read("staged_contacts")
    wh.write("staged_contacts", frame(3))
    wh.write("staged_contacts", frame(5))
    wh.write("staged_contacts", frame(5))  # the same bytes again: no new version
    assert wh.read("staged_contacts").height == 5 and wh.read("staged_contacts", version=1).equals(frame(3))
    assert [(v["version"], v["rows"], v["current"]) for v in wh.history("staged_contacts")] == [
        (1, 3, False),
        (2, 5, True),
    ]
    assert wh.rollback("staged_contacts", to=1) == 3
    assert wh.read("staged_contacts").equals(frame(3)) and wh.current_version("staged_contacts") == 3
    assert wh.scan("staged_contacts").select(pl.len()).collect().item() == 3
    assert wh.exists("staged_contacts") and not wh.exists("staged_deals")
    assert wh.tables() == ["staged_contacts"]
    with pytest.raises(TableVersionError, match="kept versions are 1, 2, 3"):
        wh.read("staged_contacts", version=9)
    with pytest.raises(ValueError, match="not a valid table name"):
        wh.write("../escape", frame(1))


def test_a_claim_left_by_a_killed_writer_is_skipped_then_removed(s3_env, monkeypatch):
    monkeypatch.setenv("HOLOCRM_WAREHOUSE_VERSIONS", "2")
    wh = Warehouse(f"s3://{s3_env.bucket}/wh-orphan")
    wh.write("t", frame(2))
    orphan = wh._version_key("t", 2)  # written, never committed: the writer died between claim and commit
    s3_env.client().put_object(Bucket=s3_env.bucket, Key=orphan, Body=frame(9).write_ipc(None).getvalue())
    assert wh.read("t").height == 2 and wh.current_version("t") == 1
    wh.write("t", frame(3))
    wh.write("t", frame(4))
    assert [v["version"] for v in wh.history("t")] == [3, 4]  # 2 skipped, 1 aged out (keep 2)
    keys = objectstore.list_keys(wh.client, wh.bucket, wh._key("_versions", "t"))
    assert sorted(k.rsplit("/", 1)[-1] for k in keys) == ["000003.parquet", "000004.parquet"]


def test_the_size_bound_removes_superseded_objects_but_keeps_the_rollback_one(s3_env, monkeypatch):
    monkeypatch.setenv("HOLOCRM_WAREHOUSE_SUPERSEDED_MAX", "0")
    wh = Warehouse(f"s3://{s3_env.bucket}/wh-size")
    for n in (2, 3, 4):
        wh.write("t", frame(n))
    assert [(v["version"], v["current"]) for v in wh.history("t")] == [(2, False), (3, True)]
    keys = objectstore.list_keys(wh.client, wh.bucket, wh._key("_versions", "t"))
    assert sorted(k.rsplit("/", 1)[-1] for k in keys) == ["000002.parquet", "000003.parquet"]
    assert wh.rollback("t", to=2) == 4 and wh.read("t").height == 3


def test_concurrent_writers_lose_no_commit_and_share_no_version(s3_env, monkeypatch):
    monkeypatch.setenv("HOLOCRM_WAREHOUSE_VERSIONS", "100")
    root = f"s3://{s3_env.bucket}/wh-race"
    errors: list[BaseException] = []

    def writer(tag: str) -> None:
        try:
            wh = Warehouse(root)
            for i in range(4):
                wh.write("shared", frame(i + 1, tag))
        except BaseException as exc:  # noqa: BLE001 (reported by the assertion below)
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(tag,)) for tag in "abc"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    wh = Warehouse(root)
    history = wh.history("shared")
    assert len(history) == 12 and len({v["version"] for v in history}) == 12
    contents = sorted(tuple(wh.read("shared", version=v["version"])["contact_id"]) for v in history)
    assert contents == sorted(tuple(frame(i + 1, tag)["contact_id"]) for tag in "abc" for i in range(4))


def test_lancedb_on_s3_merges_concurrent_appends(s3_env):
    """Two writers append to one LanceDB table on S3 at once: LanceDB's conditional manifest PUT makes the
    loser rebase and retry; every row lands once."""
    import pyarrow as pa

    uri = f"s3://{s3_env.bucket}/lance-race"
    db = connect_lancedb(uri)
    db.create_table("vectors", pa.table({"id": ["seed"], "v": [[0.0, 0.0]]}))
    errors: list[BaseException] = []

    def appender(tag: str) -> None:
        try:
            table = connect_lancedb(uri).open_table("vectors")
            for i in range(6):
                table.add(pa.table({"id": [f"{tag}{i}"], "v": [[float(i), 1.0]]}))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=appender, args=(tag,)) for tag in "xy"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    ids = connect_lancedb(uri).open_table("vectors").to_arrow()["id"].to_pylist()
    assert sorted(ids) == sorted(["seed"] + [f"{tag}{i}" for tag in "xy" for i in range(6)])
