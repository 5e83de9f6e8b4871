"""`holocrm experiment ...` and `holocrm field simulate` at small size: the loop runs and tells the truth."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from holocrm_cli import app
from holocrm_cli.field import simulate

runner = CliRunner()


def test_experiment_lifecycle_from_the_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("HOLOCRM_HOME", str(tmp_path))
    created = runner.invoke(
        app,
        ["experiment", "create", "scores-ab", "--variant", "control=scoring.champion",
         "--variant", "heuristic=scoring.heuristic:1", "--metric", "conversion", "--unit", "deal"],
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    assert "scores-ab" in runner.invoke(app, ["experiment", "list"]).output
    bad = runner.invoke(app, ["experiment", "create", "x", "--variant", "a=nope", "--variant", "b=nope"])
    assert bad.exit_code == 1 and "unknown strategy" in bad.output
    report = runner.invoke(app, ["experiment", "report", "scores-ab", "--json"])
    assert report.exit_code == 0, report.output
    assert json.loads(report.output)["units"] == {"control": 0, "heuristic": 0}
    assert runner.invoke(app, ["experiment", "promote", "scores-ab"]).exit_code == 1  # no winner: refused
    assert "stopped" in runner.invoke(app, ["experiment", "stop", "scores-ab"]).output
    missing = runner.invoke(app, ["experiment", "report", "nope"])
    assert missing.exit_code == 1 and "no experiment named 'nope'" in missing.output


@pytest.mark.slow
def test_field_simulation_runs_through_the_api_and_reports_against_the_truth(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    summary = simulate(weeks=3, contacts=40, seed=3, null=True, home=tmp_path / "field")
    assert [w["week"] for w in summary["weeks"]] == [1, 2, 3]
    assert summary["true_uplift"] == 0.0  # both arms serve the cadence in the null world
    assert summary["covers_truth"]
    assert summary["decision"] == "continue"  # "no difference" when there is none
    logs = tmp_path / "field" / "logs"
    exposures = (logs / "exposures.ndjson").read_text().splitlines()
    assert len(exposures) == 3 * 40  # one exposure per served answer
    assert len((logs / "actions.ndjson").read_text().splitlines()) == 3 * 40
