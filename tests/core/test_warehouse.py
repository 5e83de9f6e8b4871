"""Versioned warehouse tables: one commit per write, previous versions readable, rollback as a new version."""

from __future__ import annotations

import polars as pl
import pytest

from holocrm_core.warehouse import TableVersionError, Warehouse


def frame(n: int) -> pl.DataFrame:
    return pl.DataFrame({"contact_id": [f"c{i}" for i in range(n)], "score": [i / 10 for i in range(n)]})


def test_every_write_is_a_version_and_previous_ones_stay_readable(tmp_path):
    wh = Warehouse(tmp_path)
    wh.write("staged_contacts", frame(3))
    wh.write("staged_contacts", frame(5))
    assert wh.read("staged_contacts").height == 5
    assert pl.read_parquet(wh.path("staged_contacts")).height == 5  # readers of the plain file still work
    assert wh.read("staged_contacts", version=1).height == 3
    history = wh.history("staged_contacts")
    assert [(v["version"], v["rows"], v["current"]) for v in history] == [(1, 3, False), (2, 5, True)]


def test_a_failed_write_leaves_the_current_version_untouched(tmp_path, monkeypatch):
    wh = Warehouse(tmp_path)
    wh.write("staged_deals", frame(4))

    def broken(path, written):
        raise OSError("disk full")

    monkeypatch.setattr(Warehouse, "_validate", staticmethod(broken))
    with pytest.raises(OSError, match="disk full"):
        wh.write("staged_deals", frame(0))
    assert wh.read("staged_deals").height == 4
    assert [v["version"] for v in wh.history("staged_deals")] == [1]
    assert not list(wh.versions_dir("staged_deals").glob(".*tmp*"))


def test_a_write_killed_before_its_commit_is_not_history(tmp_path):
    wh = Warehouse(tmp_path)
    wh.write("t", frame(2))
    orphan = wh.versions_dir("t") / "000002.parquet"  # written, never swapped in (a kill between the two)
    frame(9).write_parquet(orphan)
    assert wh.read("t").height == 2 and wh.current_version("t") == 1
    assert [v["version"] for v in wh.history("t")] == [1]
    with pytest.raises(TableVersionError, match="no version 2"):
        wh.rollback("t", to=2)
    wh.write("t", frame(3))
    assert wh.current_version("t") == 3 and wh.read("t").height == 3


def test_rollback_is_a_new_version_with_the_old_content(tmp_path):
    wh = Warehouse(tmp_path)
    wh.write("t", frame(3))
    wh.write("t", frame(0))
    version = wh.rollback("t", to=1)
    assert version == 3
    assert wh.read("t").equals(frame(3))
    assert wh.history("t")[-1]["operation"] == "rollback to 1"
    with pytest.raises(TableVersionError, match="kept versions are 1, 2, 3"):
        wh.rollback("t", to=7)
    with pytest.raises(TableVersionError, match="no table 'nope'"):
        wh.history("nope")


def test_a_table_written_before_versioning_is_adopted_as_a_version(tmp_path):
    frame(6).write_parquet(tmp_path / "legacy.parquet")
    wh = Warehouse(tmp_path)
    wh.write("legacy", frame(1))
    assert wh.read("legacy", version=1).height == 6
    assert wh.history("legacy")[0]["operation"].startswith("adopted")


def test_only_the_newest_versions_are_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("HOLOCRM_WAREHOUSE_VERSIONS", "3")
    wh = Warehouse(tmp_path)
    for n in range(1, 7):
        wh.write("t", frame(n))
    assert [v["version"] for v in wh.history("t")] == [4, 5, 6]
    assert wh.read("t").height == 6


def test_writing_the_same_table_again_keeps_one_version(tmp_path):
    wh = Warehouse(tmp_path)
    wh.write("t", frame(4))
    wh.write("t", frame(4))  # a re-run on the same export
    assert [v["version"] for v in wh.history("t")] == [1]
    wh.write("t", frame(5))
    wh.rollback("t", to=1)
    wh.write("t", frame(4))  # the same as the rolled-back current: nothing new
    assert [v["version"] for v in wh.history("t")] == [1, 2, 3]
