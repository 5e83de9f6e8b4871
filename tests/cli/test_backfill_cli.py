"""`holocrm backfill` (shard by shard, resumable, progress shown), `holocrm run --shard`, and the partition
layout `holocrm where` shows."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from holocrm_cli import app
from holocrm_core.synth import generate_export

runner = CliRunner()


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    root = tmp_path_factory.mktemp("backfill")
    folder = root / "exports" / "b1"
    generate_export(folder, n_contacts=100, seed=11, truth_dir=root / "truth")
    return folder


@pytest.fixture
def home(tmp_path, monkeypatch, export):
    monkeypatch.setenv("HOLOCRM_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HOLOCRM_SERVER", raising=False)
    monkeypatch.delenv("HOLOCRM_SHARDS", raising=False)
    landing = tmp_path / "home" / "landing"
    landing.mkdir(parents=True)
    (landing / "b1").symlink_to(export, target_is_directory=True)
    return tmp_path / "home"


def _error(result) -> str:
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


@pytest.mark.parametrize(
    "args, cause",
    [
        (["backfill", "--only", "lead_scoring_model"], "not a partitioned asset: lead_scoring_model"),
        (["backfill", "--shards", "4"], "shard 4 out of range: there are 4 (0..3, HOLOCRM_SHARDS)"),
        (["backfill", "--shards", "0,x"], "--shards '0,x': give shard numbers"),
        (["backfill", "--batch", "b9"], "no export batch 'b9'"),
        (["run", "--shard", "5"], "shard 5 out of range"),
        (["run", "--shard", "0", "--shard", "2"], "one run covers consecutive shards"),
        (["run", "--shard", "1", "--only", "decision_queue"], "not a partitioned asset: decision_queue"),
        (["run", "--shard", "1"], "batch 'b1' is not built yet"),
    ],
)
def test_bad_partition_arguments_are_one_line_and_exit_2(home, args, cause):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert cause in _error(result)


def _layout(table: str) -> dict:
    result = runner.invoke(app, ["where"])
    assert result.exit_code == 0, result.output
    partitions = json.loads(result.stdout)["partitions"]
    assert partitions["shards"] == 4 and "scored_leads" in partitions["partitioned_assets"]
    return partitions["batches"]


@pytest.mark.slow  # four in-process Dagster runs (~5 s each on the shared machine)
def test_backfill_runs_shard_by_shard_shows_progress_and_resumes(home):
    assert _layout("raw_contacts") == {}  # nothing built yet

    first = runner.invoke(app, ["backfill", "--batch", "b1", "--only", "raw_contacts", "--shards", "0,1"])
    assert first.exit_code == 0, first.output
    assert "backfill b1|0 [1/2]: raw_contacts" in first.output
    assert "backfill b1|1 [2/2]: raw_contacts" in first.output
    assert "backfill of b1: 2 runs, 0 failed" in first.output
    batch = _layout("raw_contacts")["b1"]
    assert batch["tables_with_some_shards"]["raw_contacts"] == [0, 1] and not batch["complete"]

    # Interrupted after shards 0 and 1: the next backfill goes on where it stopped.
    rest = runner.invoke(app, ["backfill", "--only", "raw_contacts"])
    assert rest.exit_code == 0, rest.output
    assert "backfill b1|0 [1/4]: raw_contacts already built" in rest.output
    assert "backfill b1|1 [2/4]: raw_contacts already built" in rest.output
    assert "backfill b1|3 [4/4]: raw_contacts\n" in rest.output
    assert "2 runs, 0 failed" in rest.output
    batch = _layout("raw_contacts")["b1"]
    assert "raw_contacts" not in batch["tables_with_some_shards"]
    assert (
        "raw_contacts" not in batch["tables_with_no_shard"]
        and "staged_contacts" in batch["tables_with_no_shard"]
    )
    assert batch["tables_with_every_shard"] >= 1 and batch["served_as_plain_tables"] >= 1

    # A shard alone needs the rest of its batch built: still refused, with what to run.
    assert "holocrm backfill" in _error(runner.invoke(app, ["run", "--shard", "2"]))
