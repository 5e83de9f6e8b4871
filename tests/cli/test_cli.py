"""The `holocrm` command line: the main job end to end on a small export, and clear errors for bad input."""

from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from holocrm_cli import app
from holocrm_core.synth import generate_export

runner = CliRunner()


@pytest.fixture(scope="module")
def small_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    generate_export(root / "export", n_contacts=150, seed=3, truth_dir=root / "truth")
    return root


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOLOCRM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("HOLOCRM_EMBED_BACKEND", "torch")  # no ONNX export inside the test suite
    return tmp_path / "home"


def test_generate_writes_the_export_and_its_truth(tmp_path):
    command = ["generate", "--contacts", "120", "--seed", "5", "--out", str(tmp_path / "x")]
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rows"]["contacts.csv"] >= 120
    assert (tmp_path / "x" / "contacts.csv").exists() and (tmp_path / "truth" / "leads.parquet").exists()


def test_generate_refuses_an_absurd_size(tmp_path):
    result = runner.invoke(app, ["generate", "--contacts", "5", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "100" in result.output


def test_ingest_reports_every_file_and_balances(small_export, home):
    result = runner.invoke(app, ["ingest", str(small_export / "export"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["profile"] == "generic"
    for file in report["files"]:
        assert file["error"] is None
        assert file["rows_read"] == file["rows_staged"] + file["rows_quarantined"]
    assert (home / "warehouse" / "staged_contacts.parquet").exists()


def test_missing_export_folder_is_a_clear_error(home, tmp_path):
    for command in (["ingest", str(tmp_path / "nowhere")], ["run", "--export", str(tmp_path / "nowhere")]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2
        assert "does not exist" in result.output


def test_where_names_every_location(home):
    result = runner.invoke(app, ["where"])
    assert result.exit_code == 0
    locations = json.loads(result.stdout)
    assert locations["home"] == str(home.resolve())
    assert locations["warehouse"].startswith(str(home.resolve()))
    assert locations["warehouse_retention"].startswith("5 versions per table")


def test_similar_before_any_index_says_what_to_run(home):
    result = runner.invoke(app, ["similar", "contact", "c-1"])
    assert result.exit_code != 0
    assert "holocrm run" in result.output


def test_main_job_materializes_the_whole_graph(sample_graph):
    """`holocrm run` (the session's sample graph) succeeds and its summary names every asset."""
    assert "succeeded" in sample_graph.output
    for asset in (
        "staged_contacts",
        "quarantine",
        "embeddings",
        "similarity_index",
        "duplicate_candidates",
        "outcome_dataset",
        "lead_scoring_model",
        "scored_leads",
        "nlq_vocabulary",
    ):
        assert f"\n  {asset} " in sample_graph.output, f"{asset} missing from the summary"
    scored = pl.read_parquet(sample_graph.home / "warehouse" / "scored_leads.parquet")
    assert scored.height > 0 and scored["score"].is_between(0, 1, closed="none").all()


def test_similar_and_score_answer_from_the_run(sample_env):
    contact_id = pl.read_parquet(sample_env.home / "warehouse" / "staged_contacts.parquet")["contact_id"][0]
    similar = runner.invoke(app, ["similar", "contact", contact_id, "--json"])
    assert similar.exit_code == 0, similar.output
    neighbours = json.loads(similar.stdout)["results"]
    assert neighbours and all(n["id"] != contact_id for n in neighbours)
    assert all(n["label"] for n in neighbours)  # each look-alike named beside its id

    open_lead = pl.read_parquet(sample_env.home / "warehouse" / "scored_leads.parquet")["contact_id"][0]
    score = runner.invoke(app, ["score", "contact", open_lead, "--json"])
    assert score.exit_code == 0, score.output
    assert 0 < json.loads(score.stdout)["score"] < 1

    # A decided lead has no score: refused with the API's words (holocrm_api/routes/scores.py answers 404
    # not_scored with the same not_open_reason), not scored at one door and refused at the other.
    from holocrm_core.outcomes import not_open_reason

    contacts = pl.read_parquet(sample_env.home / "warehouse" / "staged_contacts.parquet")
    decided = contacts.filter(pl.col("lifecycle_status").is_in(["customer", "disqualified"]))["contact_id"][0]
    refused = runner.invoke(app, ["score", "contact", decided])
    assert refused.exit_code == 1 and refused.stderr.strip() == not_open_reason("contact", decided)


def test_a_second_run_on_the_same_export_embeds_nothing_new(sample_graph, tmp_path, monkeypatch):
    graph = sample_graph.copy(tmp_path)
    for key, value in graph.env.items():
        monkeypatch.setenv(key, value)
    again = runner.invoke(
        app, ["run", "--export", str(graph.export), "--only", "entity_documents", "--only", "embeddings"]
    )
    assert again.exit_code == 0, again.output
    lines = again.output.splitlines()
    embeddings_line = next(line for line in lines if line.strip().startswith("embeddings "))
    assert "new=0" in embeddings_line and "reused=" in embeddings_line


def test_the_run_summary_and_score_models_tell_the_same_verdict(sample_env):
    """One verdict line per scoring model: what `holocrm run` printed is what `holocrm score models` says."""
    models = runner.invoke(app, ["score", "models"])
    assert models.exit_code == 0, models.output
    lines = [line for line in models.stdout.splitlines() if line.strip()]
    assert [line.split(":")[0] for line in lines] == ["holocrm_lead_scorer", "holocrm_deal_scorer"]
    summary = sample_env.output.split("scores served:")[1].splitlines()[1:3]
    assert [line.strip() for line in summary] == lines
