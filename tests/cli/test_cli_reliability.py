"""The CLI as an operator meets it: a wrong folder changes nothing, one writer per home, history/rollback."""

from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from holocrm_cli import app
from holocrm_core.synth import generate_export
from tests.support.processes import hold_home_lock

runner = CliRunner()


@pytest.fixture(scope="module")
def small_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-rel")
    generate_export(root / "export", n_contacts=120, seed=4, truth_dir=root / "truth")
    return root / "export"


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOLOCRM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return tmp_path / "home"


def table_rows(home) -> dict[str, int]:
    return {p.stem: pl.read_parquet(p).height for p in sorted((home / "warehouse").glob("*.parquet"))}


def test_ingest_of_an_empty_or_unrelated_folder_refuses_and_changes_nothing(small_export, home, tmp_path):
    assert runner.invoke(app, ["ingest", str(small_export)]).exit_code == 0
    before = table_rows(home)
    assert before["staged_contacts"] > 100 and before["staged_deals"] > 0
    (tmp_path / "empty").mkdir()
    (tmp_path / "unrelated").mkdir()
    (tmp_path / "unrelated" / "expenses.csv").write_text("date,amount,desc\n2024-01-01,12.50,lunch\n")
    for folder, says in (("empty", "holds no data file"), ("unrelated", "expenses.csv")):
        result = runner.invoke(app, ["ingest", str(tmp_path / folder)])
        assert result.exit_code == 2, result.output
        assert "nothing to ingest" in result.output and says in result.output
        assert "left as it was" in result.output
        assert table_rows(home) == before


def test_history_and_rollback_bring_back_an_earlier_table(small_export, home, tmp_path):
    assert runner.invoke(app, ["ingest", str(small_export)]).exit_code == 0
    first = pl.read_parquet(home / "warehouse" / "staged_contacts.parquet")
    fewer = tmp_path / "fewer"
    fewer.mkdir()
    (fewer / "contacts.csv").write_text((small_export / "contacts.csv").read_text().splitlines()[0] + "\n")
    assert runner.invoke(app, ["ingest", str(fewer)]).exit_code == 0
    assert pl.read_parquet(home / "warehouse" / "staged_contacts.parquet").height == 0

    shown = runner.invoke(app, ["history", "staged_contacts", "--json"])
    assert shown.exit_code == 0, shown.output
    versions = json.loads(shown.stdout)["versions"]
    assert [(v["version"], v["rows"], v["current"]) for v in versions] == [
        (1, first.height, False),
        (2, 0, True),
    ]
    back = runner.invoke(app, ["rollback", "staged_contacts", "--to", "1"])
    assert back.exit_code == 0, back.output
    assert pl.read_parquet(home / "warehouse" / "staged_contacts.parquet").equals(first)
    assert runner.invoke(app, ["rollback", "staged_contacts", "--to", "9"]).exit_code == 2
    missing = runner.invoke(app, ["history", "no_such_table"])
    assert missing.exit_code == 2 and "staged_contacts" in missing.output


def test_a_second_writer_on_the_same_home_is_refused_naming_the_first(small_export, home):
    holder = hold_home_lock(home)
    try:
        for command in (["ingest", str(small_export)], ["run", "--export", str(small_export)]):
            result = runner.invoke(app, command)
            assert result.exit_code == 75, result.output
            assert f"pid {holder.pid}" in result.output and "one writer per home" in result.output
        assert not (home / "warehouse" / "staged_contacts.parquet").exists()
    finally:
        holder.kill()
        holder.wait()
    assert runner.invoke(app, ["ingest", str(small_export)]).exit_code == 0  # the dead holder blocks nothing


@pytest.mark.slow  # a Dagster run in process (about 20 s quiet)
def test_a_run_on_a_folder_with_nothing_recognisable_fails_before_replacing_a_table(
    small_export, home, tmp_path
):
    assert runner.invoke(app, ["ingest", str(small_export)]).exit_code == 0
    before = table_rows(home)
    (tmp_path / "unrelated").mkdir()
    (tmp_path / "unrelated" / "expenses.csv").write_text("date,amount\n2024-01-01,12.50\n")
    only = ["--only", "raw_contacts", "--only", "staged_contacts"]
    result = runner.invoke(app, ["run", "--export", str(tmp_path / "unrelated"), *only])
    assert result.exit_code == 1, result.output
    assert "nothing to ingest" in result.output
    after = table_rows(home)
    assert {k: after[k] for k in before} == before
