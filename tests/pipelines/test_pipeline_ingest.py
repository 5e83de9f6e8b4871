"""The ingest part of the asset graph, materialized in process on a small generated export."""

from __future__ import annotations

import dagster as dg
import polars as pl
import pytest

from holocrm_core import schema
from holocrm_core.reconcile import reconcile
from holocrm_core.settings import HoloPaths
from holocrm_core.synth import generate_export, load_truth
from pipelines.resources import StorageResource

INGEST_ASSETS = ["raw_export", *[f"staged_{e}" for e in schema.STAGING_ORDER], "quarantine"]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    export = root / "home" / "landing" / "batch-1"
    summary = generate_export(export, n_contacts=300, seed=11, truth_dir=root / "truth")
    return root, export, summary


@pytest.fixture(scope="module")
def ingest_run(sample):
    from pipelines.runner import run_all

    root, export, _ = sample
    paths = HoloPaths(root / "home")
    selection = [f"raw_{e}" for e in schema.STAGING_ORDER] + [f"staged_{e}" for e in schema.STAGING_ORDER] + ["quarantine"]
    lines: list[str] = []
    summary = run_all(export_dir=None, paths=paths, progress=lines.append, selection=selection)
    return paths, summary, lines


def test_ingest_graph_materializes_and_checks_pass(ingest_run):
    paths, summary, lines = ingest_run
    assert summary.success, summary.errors
    materialized = {a.asset for a in summary.assets}
    assert {f"staged_{e}" for e in schema.STAGING_ORDER} <= materialized
    assert "quarantine" in materialized
    assert summary.failed_checks == [] or all("null_rates" in c for c in summary.failed_checks)
    assert any("staged_contacts" in line and "done" in line for line in lines), "progress shows each step"


def test_every_planted_dirty_row_is_quarantined_and_no_row_is_lost(ingest_run, sample):
    paths, _, _ = ingest_run
    root, _, generated = sample
    warehouse = StorageResource(home=str(paths.home)).warehouse()
    quarantine = warehouse.read("quarantine")
    dirty = load_truth(root / "truth")["dirty_rows"]
    caught = dirty.join(
        quarantine.select(pl.col("source_file"), pl.col("line").cast(pl.Int64), pl.col("rule").alias("caught_rule")),
        on=["source_file", "line"], how="left",
    )
    assert caught["caught_rule"].null_count() == 0, caught.filter(pl.col("caught_rule").is_null())
    assert quarantine.filter(pl.col("line") > 0).height == dirty.height, "no clean row is quarantined"
    for entity in schema.STAGING_ORDER:
        raw = warehouse.read(f"raw_{entity}")
        staged = warehouse.read(f"staged_{entity}")
        accounting = reconcile(raw, staged, warehouse.read(f"quarantine_{entity}"), schema.ID_COLUMN[entity])
        assert accounting["balanced"].all(), accounting
        assert staged.height == raw.height - dirty.filter(pl.col("entity") == entity).height


def test_rerun_is_idempotent(ingest_run):
    from pipelines.runner import run_all

    paths, _, _ = ingest_run
    warehouse = StorageResource(home=str(paths.home)).warehouse()
    before = {e: warehouse.read(f"staged_{e}") for e in schema.STAGING_ORDER}
    again = run_all(paths=paths, progress=lambda _: None,
                    selection=[f"raw_{e}" for e in schema.STAGING_ORDER] + [f"staged_{e}" for e in schema.STAGING_ORDER])
    assert again.success, again.errors
    for entity, frame in before.items():
        after = warehouse.read(f"staged_{entity}")
        id_column = schema.ID_COLUMN[entity]
        assert after.height == frame.height
        assert after[id_column].sort().to_list() == frame[id_column].sort().to_list()


def test_custom_fields_are_kept_and_reported(ingest_run):
    paths, summary, _ = ingest_run
    contacts = StorageResource(home=str(paths.home)).warehouse().read("staged_contacts")
    assert schema.custom_columns(contacts), "the sample export's custom contact fields are kept as cf_* columns"
    reported = next(a for a in summary.assets if a.asset == "staged_contacts").metadata["custom_fields"]
    assert all(c in reported for c in schema.custom_columns(contacts))


def test_sensor_requests_a_run_for_a_new_batch_once(sample):
    from pipelines.sensors import new_export_sensor

    root, export, _ = sample
    storage = StorageResource(home=str(root / "home"))
    context = dg.build_sensor_context(resources={"storage": storage})
    first = new_export_sensor(context)
    requests = first if isinstance(first, list) else [first]
    assert isinstance(requests[0], dg.RunRequest)
    assert requests[0].run_config["ops"]["raw_export"]["config"]["export_dir"] == str(export)
    again = new_export_sensor(dg.build_sensor_context(cursor=context.cursor, resources={"storage": storage}))
    assert isinstance(again, dg.SkipReason)


def test_definitions_load_with_schedule_sensor_and_job():
    from pipelines.definitions import defs

    assert defs.resolve_job_def("holocrm_all") is not None
    assert defs.resolve_schedule_def("daily_refresh").cron_schedule == "0 3 * * *"
    assert defs.resolve_sensor_def("new_export_sensor") is not None
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert {"staged_contacts", "staged_deals", "quarantine"} <= keys


def test_reconcile_flags_a_dropped_row():
    raw = pl.DataFrame({"contact_id": ["a", "b", "c"], "_source_file": ["x.csv"] * 3, "_line": [2, 3, 4]})
    quarantined = pl.DataFrame({"source_file": ["x.csv"], "line": [4]}, schema_overrides={"line": pl.Int64})
    staged_ok = pl.DataFrame({"contact_id": ["a", "b"]})
    staged_lost = pl.DataFrame({"contact_id": ["a"]})
    assert reconcile(raw, staged_ok, quarantined, "contact_id")["balanced"].all()
    report = reconcile(raw, staged_lost, quarantined, "contact_id")
    assert not report["balanced"].all()
    assert report.row(0, named=True)["rows_staged"] == 1


def test_cli_ingest_and_the_assets_stage_the_same_tables(ingest_run, sample):
    from holocrm_core.ingest import ingest_export

    paths, _, _ = ingest_run
    _, export, _ = sample
    warehouse = StorageResource(home=str(paths.home)).warehouse()
    direct = ingest_export(export)
    for entity in schema.STAGING_ORDER:
        id_column = schema.ID_COLUMN[entity]
        from_assets = warehouse.read(f"staged_{entity}").sort(id_column)
        assert direct.tables[entity].sort(id_column).equals(from_assets), entity
    assert direct.quarantine.height == warehouse.read("quarantine").height
    assert direct.unbalanced_files() == []


def test_raw_multi_asset_can_be_subset(sample, tmp_path):
    """The README's `holocrm run --only raw_contacts --only staged_contacts` on a fresh home."""
    from pipelines.runner import run_all

    _, export, _ = sample
    paths = HoloPaths(tmp_path / "home")
    lines: list[str] = []
    summary = run_all(export_dir=export, paths=paths, progress=lines.append,
                      selection=["raw_contacts", "staged_contacts"])
    assert summary.success, summary.errors
    assert {a.asset for a in summary.assets} == {"raw_contacts", "staged_contacts"}
    warehouse = StorageResource(home=str(paths.home)).warehouse()
    assert warehouse.read("staged_contacts").height > 0
    assert not warehouse.exists("raw_companies"), "only the selected raw table is written"
    assert any("references to companies not checked" in line for line in lines)
