"""Versioned warehouse tables: one commit per write, previous versions readable, rollback as a new version."""

from __future__ import annotations

import polars as pl
import pytest

from holocrm_core.warehouse import Retention, TableVersionError, Warehouse, parse_size


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


# -- retention: a count and a size bound, never the current version or the one a rollback needs -------------
def _on_disk(wh: Warehouse, name: str) -> list[int]:
    return sorted(int(p.stem) for p in wh.versions_dir(name).glob("*.parquet"))


def test_retention_keeps_the_newest_versions_within_both_bounds():
    keep = Retention(versions=4, superseded_max=250).keep
    sizes = [(1, 100), (2, 100), (3, 100), (4, 100), (5, 100)]
    assert keep(sizes, current=5) == {5, 4, 3}  # two superseded fit in 250 bytes, a third would not
    assert Retention(versions=3, superseded_max=None).keep(sizes, current=5) == {5, 4, 3}  # the count bound
    # the newest superseded version is kept whatever its size: a rollback of the last write needs it
    assert Retention(versions=5, superseded_max=0).keep(sizes, current=5) == {5, 4}
    assert Retention(versions=5, superseded_max=10).keep([(1, 10**9), (2, 10**9)], current=2) == {1, 2}
    assert Retention(versions=1, superseded_max=None).keep(sizes, current=5) == {5}  # asked for: no rollback
    # oldest first, without gaps: a small old version is not kept past a large newer one
    assert keep([(1, 10), (2, 200), (3, 100), (4, 10)], current=4) == {4, 3}
    assert keep(sizes, current=None) == {5, 4, 3, 2}  # no current version known: the newest, by count


def test_sizes_and_bad_settings_are_clear():
    assert parse_size("2GiB") == 2 * 1024**3 and parse_size("500MB") == 500 * 10**6
    assert parse_size("1.5 gb") == 1_500_000_000 and parse_size("1234") == 1234 and parse_size(7) == 7
    assert parse_size("none") is None and parse_size("unlimited") is None
    for bad in ("lots", "-1", "3 parsecs", ""):
        with pytest.raises(ValueError, match="not a size"):
            parse_size(bad)
    with pytest.raises(ValueError, match="at least 1"):
        Retention.from_values(versions="0")
    with pytest.raises(ValueError, match="HOLOCRM_WAREHOUSE_SUPERSEDED_MAX"):
        Retention.from_values(superseded_max="big")
    assert Retention.from_values() == Retention()  # the defaults: 5 versions, 2 GiB superseded


def test_superseded_versions_are_bounded_by_size_and_removed_from_disk(tmp_path, monkeypatch):
    wh = Warehouse(tmp_path)
    wh.write("t", frame(2000))
    one = wh.history("t")[0]["bytes"]
    monkeypatch.setenv("HOLOCRM_WAREHOUSE_VERSIONS", "5")
    monkeypatch.setenv("HOLOCRM_WAREHOUSE_SUPERSEDED_MAX", str(int(one * 2.5)))  # about two old versions
    for n in range(2001, 2006):
        wh.write("t", frame(n))
    assert [v["version"] for v in wh.history("t")] == [4, 5, 6]
    assert _on_disk(wh, "t") == [4, 5, 6]  # the files went, not only the listing
    assert wh.read("t").height == 2005 and wh.read("t", version=4).height == 2003
    assert wh.rollback("t", to=5) == 7 and wh.read("t").height == 2004


def test_a_zero_size_bound_still_keeps_what_a_rollback_needs(tmp_path, monkeypatch):
    monkeypatch.setenv("HOLOCRM_WAREHOUSE_SUPERSEDED_MAX", "0")
    wh = Warehouse(tmp_path)
    for n in (3, 4, 5):
        wh.write("t", frame(n))
    assert [(v["version"], v["current"]) for v in wh.history("t")] == [(2, False), (3, True)]
    assert wh.rollback("t", to=2) == 4 and wh.read("t").height == 4  # the last write undone
    assert [v["version"] for v in wh.history("t")] == [3, 4]  # and the rollback can be undone too
    assert wh.rollback("t", to=3) == 5 and wh.read("t").height == 5
    assert _on_disk(wh, "t") == [4, 5]


def test_pruning_is_idempotent_and_takes_crashed_writes(tmp_path, monkeypatch):
    monkeypatch.setenv("HOLOCRM_WAREHOUSE_VERSIONS", "2")
    wh = Warehouse(tmp_path)
    wh.write("t", frame(1))
    frame(9).write_parquet(wh.versions_dir("t") / "000002.parquet")  # a write killed before its commit
    wh.write("t", frame(3))
    wh.write("t", frame(4))
    assert _on_disk(wh, "t") == [3, 4]
    assert wh._prune("t") == [] and _on_disk(wh, "t") == [3, 4]  # again: nothing more to remove


def test_a_bad_retention_setting_fails_the_write_before_anything_is_written(tmp_path, monkeypatch):
    from holocrm_core.settings import SettingsError

    wh = Warehouse(tmp_path)
    wh.write("t", frame(2))
    monkeypatch.setenv("HOLOCRM_WAREHOUSE_SUPERSEDED_MAX", "a lot")
    with pytest.raises(SettingsError, match="not a size"):
        wh.write("t", frame(3))
    assert [v["version"] for v in wh.history("t")] == [1] and wh.read("t").height == 2


def test_retention_from_the_settings_file_and_the_warehouse_size(tmp_path, monkeypatch):
    from holocrm_core.settings import Backends

    settings = tmp_path / "settings.toml"
    settings.write_text('[warehouse]\nversions = 2\nsuperseded_max = "1MB"\n')
    monkeypatch.setenv("HOLOCRM_SETTINGS", str(settings))
    monkeypatch.delenv("HOLOCRM_WAREHOUSE_VERSIONS", raising=False)
    monkeypatch.delenv("HOLOCRM_WAREHOUSE_SUPERSEDED_MAX", raising=False)
    backends = Backends.load()
    assert backends.warehouse_retention == Retention(versions=2, superseded_max=10**6)
    assert "2 versions per table" in backends.described()["warehouse retention"]
    monkeypatch.setenv("HOLOCRM_WAREHOUSE_VERSIONS", "4")  # the environment wins over the file
    assert Backends.load().warehouse_retention.versions == 4

    wh = Warehouse(tmp_path / "wh")
    for n in (100, 200, 300):
        wh.write("t", frame(n))
    size = wh.size()
    files = {p.stat().st_ino: p.stat().st_size for p in (tmp_path / "wh").rglob("*.parquet")}
    assert size["current"] == wh.history("t")[-1]["bytes"]  # the current file and its version: one file
    assert size["current"] + size["superseded"] == sum(files.values())
    assert size["total"] >= size["current"] + size["superseded"]


def test_a_version_scan_reads_one_version_while_a_writer_commits(tmp_path):
    wh = Warehouse(tmp_path)
    wh.write("t", frame(10))
    scan = wh.scan_version("t")
    first = scan.slice(0, 5).collect()
    wh.write("t", frame(20))  # a commit between two slices of a reader
    second = scan.slice(5, 5).collect()
    assert pl.concat([first, second]).equals(frame(10))
    assert wh.scan_version("t").collect().height == 20
