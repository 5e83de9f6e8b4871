"""Exports of other shapes than the full sample run green, and `--export X` reaches every asset that reads an
export (the export is one Dagster resource)."""

from __future__ import annotations

import polars as pl
import pytest

from holocrm_core import schema
from holocrm_core.settings import HoloPaths
from tests.support.exports import SHAPES, export_of_shape

INGEST = [f"raw_{e}" for e in schema.STAGING_ORDER] + [f"staged_{e}" for e in schema.STAGING_ORDER]


def test_every_asset_that_reads_the_export_uses_the_export_resource():
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    needs = {
        key.to_user_string()
        for key in graph.get_all_asset_keys()
        if "export" in graph.get(key).assets_def.required_resource_keys
    }
    assert {"raw_contacts", "attachment_texts", "action_log", "outreach_policy"} <= needs
    sensor_request = defs.resolve_sensor_def("new_export_sensor")
    assert sensor_request.job_name == "holocrm_all"


def test_export_outside_the_landing_folder_feeds_the_outreach_log(tmp_path):
    """`holocrm run --export X` with nothing in the landing folder: the action log reads X's outreach log
    (it used to read the newest landing batch, found none, and logged 'no export outreach log')."""
    from pipelines.runner import run_all

    export = export_of_shape(tmp_path / "exports", "no_attachments", n_contacts=100)
    expected = sum(pl.read_csv(f).height for f in (export / "outreach").glob("*.csv"))
    assert expected > 0
    lines: list[str] = []
    summary = run_all(
        export_dir=export,
        paths=HoloPaths(tmp_path / "home"),
        progress=lines.append,
        selection=[*INGEST, "action_log"],
    )
    assert summary.success, summary.errors
    meta = {a.asset: a.metadata for a in summary.assets}
    assert meta["action_log"]["export_dir"] == str(export.resolve())
    assert meta["action_log"]["from_export"] == expected
    assert not [line for line in lines if "no export outreach log" in line]


@pytest.mark.slow
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_an_export_of_another_shape_runs_green(tmp_path, shape):
    """The whole graph on an export of one entity only, or one entity missing: every asset does its work or
    says why there is nothing to do, and the run succeeds."""
    from pipelines.runner import run_all

    export = export_of_shape(tmp_path / "exports", shape, n_contacts=100)
    summary = run_all(export_dir=export, paths=HoloPaths(tmp_path / "home"), progress=lambda line: None)
    assert summary.success, summary.errors
    meta = {a.asset: a.metadata for a in summary.assets}
    from pipelines.definitions import defs

    every = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert set(meta) == every, every - set(meta)
    if "attachments" not in SHAPES[shape]:
        assert "no attachments" in meta["attachment_texts"]["nothing_to_do"]
        assert meta["attachment_chunks"]["chunks"] == 0
    if "activities" not in SHAPES[shape]:
        assert "no activities" in meta["activity_fused_embeddings"]["nothing_to_do"]
    else:
        assert meta["activity_fused_embeddings"]["activities"] > 0
