"""The ingest part of the asset graph, materialized in process on a small generated export."""

from __future__ import annotations

import dagster as dg
import polars as pl
import pytest

from holocrm_core import schema
from holocrm_core.reconcile import reconcile
from holocrm_core.settings import HoloPaths
from holocrm_core.synth import load_truth
from pipelines.resources import StorageResource

INGEST_SELECTION = [f"raw_{e}" for e in schema.STAGING_ORDER] + [f"staged_{e}" for e in schema.STAGING_ORDER]


@pytest.fixture()
def ingest_run(sample_graph):
    """The session's sample graph (read only): its home and what `holocrm run` printed."""
    return HoloPaths(sample_graph.home), sample_graph.output


def _latest_metadata(paths: HoloPaths, asset: str) -> dict:
    instance = dg.DagsterInstance.from_config(str(paths.dagster_home))
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    return {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}


def test_ingest_graph_materializes_and_checks_pass(ingest_run):
    paths, output = ingest_run
    assert "succeeded" in output
    for entity in schema.STAGING_ORDER:
        assert f"  + staged_{entity} done in" in output, "progress shows each step"
        assert f"\n  staged_{entity} " in output, "the summary lists each staged table"
    assert "\n  quarantine " in output
    failed = next((line for line in output.splitlines() if line.startswith("checks not passed")), "")
    not_passed = [c for c in failed.removeprefix("checks not passed: ").split(", ") if c]
    assert all("null_rates" in c or "gate" in c for c in not_passed), failed


def test_every_planted_dirty_row_is_quarantined_and_no_row_is_lost(ingest_run, sample_graph):
    paths, _ = ingest_run
    warehouse = StorageResource(home=str(paths.home)).warehouse()
    quarantine = warehouse.read("quarantine")
    dirty = load_truth(sample_graph.truth)["dirty_rows"]
    caught = dirty.join(
        quarantine.select(
            pl.col("source_file"), pl.col("line").cast(pl.Int64), pl.col("rule").alias("caught_rule")
        ),
        on=["source_file", "line"],
        how="left",
    )
    assert caught["caught_rule"].null_count() == 0, caught.filter(pl.col("caught_rule").is_null())
    assert quarantine.filter(pl.col("line") > 0).height == dirty.height, "no clean row is quarantined"
    for entity in schema.STAGING_ORDER:
        raw = warehouse.read(f"raw_{entity}")
        staged = warehouse.read(f"staged_{entity}")
        accounting = reconcile(raw, staged, warehouse.read(f"quarantine_{entity}"), schema.ID_COLUMN[entity])
        assert accounting["balanced"].all(), accounting
        assert staged.height == raw.height - dirty.filter(pl.col("entity") == entity).height


def test_rerun_is_idempotent(sample_graph, tmp_path):
    from pipelines.runner import run_all

    graph = sample_graph.copy(tmp_path)
    warehouse = StorageResource(home=str(graph.home)).warehouse()
    before = {e: warehouse.read(f"staged_{e}") for e in schema.STAGING_ORDER}
    again = run_all(
        export_dir=graph.export,
        paths=HoloPaths(graph.home),
        progress=lambda _: None,
        selection=INGEST_SELECTION,
    )
    assert again.success, again.errors
    for entity, frame in before.items():
        after = warehouse.read(f"staged_{entity}")
        id_column = schema.ID_COLUMN[entity]
        assert after.height == frame.height
        assert after[id_column].sort().to_list() == frame[id_column].sort().to_list()


def test_custom_fields_are_kept_and_reported(ingest_run):
    paths, _ = ingest_run
    contacts = StorageResource(home=str(paths.home)).warehouse().read("staged_contacts")
    assert schema.custom_columns(contacts), "the sample export's custom contact fields are kept as cf_*"
    reported = _latest_metadata(paths, "staged_contacts")["custom_fields"]
    assert all(c in reported for c in schema.custom_columns(contacts))


def test_sensor_requests_a_run_for_a_new_batch_once(sample_graph):
    """A new batch folder becomes an export_batch partition and one run over all of its shards."""
    from pipelines.partitions import SHARDS
    from pipelines.sensors import new_export_sensor

    export = sample_graph.export
    storage = StorageResource(home=str(sample_graph.home))
    instance = dg.DagsterInstance.ephemeral()
    context = dg.build_sensor_context(instance=instance, resources={"storage": storage})
    first = new_export_sensor(context)
    assert isinstance(first, dg.SensorResult) and len(first.run_requests) == 1
    request = first.run_requests[0]
    assert request.run_config["resources"]["export"]["config"]["export_dir"] == str(export)
    assert request.tags["dagster/asset_partition_range_start"] == "batch-1|0"
    assert request.tags["dagster/asset_partition_range_end"] == f"batch-1|{SHARDS - 1}"
    assert [r.partition_keys for r in first.dynamic_partitions_requests] == [["batch-1"]]
    instance.add_dynamic_partitions("export_batch", ["batch-1"])
    again = new_export_sensor(
        dg.build_sensor_context(cursor=context.cursor, instance=instance, resources={"storage": storage})
    )
    assert not again.run_requests and "already ingested" in again.skip_reason.skip_message
    assert not again.dynamic_partitions_requests


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


def test_cli_ingest_and_the_assets_stage_the_same_tables(ingest_run, sample_graph):
    from holocrm_core.ingest import ingest_export

    paths, _ = ingest_run
    export = sample_graph.export
    warehouse = StorageResource(home=str(paths.home)).warehouse()
    direct = ingest_export(export)
    for entity in schema.STAGING_ORDER:
        id_column = schema.ID_COLUMN[entity]
        from_assets = warehouse.read(f"staged_{entity}").sort(id_column)
        assert direct.tables[entity].sort(id_column).equals(from_assets), entity
    assert direct.quarantine.height == warehouse.read("quarantine").height
    assert direct.unbalanced_files() == []


def test_raw_multi_asset_can_be_subset(sample_graph, tmp_path):
    """The README's `holocrm run --only raw_contacts --only staged_contacts` on a fresh home."""
    from pipelines.runner import run_all

    export = sample_graph.export
    paths = HoloPaths(tmp_path / "home")
    lines: list[str] = []
    summary = run_all(
        export_dir=export, paths=paths, progress=lines.append, selection=["raw_contacts", "staged_contacts"]
    )
    assert summary.success, summary.errors
    # the quarantine of the staged table is a declared output of the same step, committed with it
    assert {a.asset for a in summary.assets} == {"raw_contacts", "staged_contacts", "quarantine_contacts"}
    warehouse = StorageResource(home=str(paths.home)).warehouse()
    assert warehouse.read("staged_contacts").height > 0
    assert not warehouse.exists("raw_companies"), "only the selected raw table is written"
    assert any("references to companies not checked" in line for line in lines)
