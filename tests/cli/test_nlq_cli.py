"""`holocrm ask` and the nlq_vocabulary asset on a small warehouse."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from holocrm_core.warehouse import Warehouse
from tests.core.test_nlq_data import make_tables


def _warehouse(tmp_path):
    home = tmp_path / "home"
    warehouse = Warehouse(home / "warehouse")
    for entity, frame in make_tables().items():
        warehouse.write(f"staged_{entity}", frame)
    return home, warehouse


def test_ask_prints_table_plan_and_trace(tmp_path, monkeypatch):
    home, _ = _warehouse(tmp_path)
    monkeypatch.setenv("HOLOCRM_HOME", str(home))
    from holocrm_cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["ask", "won deals last quarter", "--as-of", "2026-10-31"])
    assert result.exit_code == 0, result.output
    assert "d6" in result.output and "Plan:" in result.output and "'last quarter'" in result.output
    result = runner.invoke(app, ["ask", "deals in the zorblax sector", "--as-of", "2026-10-31", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["understood"] is False and "zorblax" in data["unknown_words"] and data["suggestions"]


def test_ask_without_tables_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("HOLOCRM_HOME", str(tmp_path / "empty"))
    from holocrm_cli import app

    result = CliRunner().invoke(app, ["ask", "open deals"])
    assert result.exit_code == 1 and "holocrm run" in result.output


def test_vocabulary_asset_writes_the_artifact(tmp_path):
    from pipelines.definitions import materialize

    home, warehouse = _warehouse(tmp_path)
    result = materialize(["nlq_vocabulary"], home=str(home))
    assert result.success
    artifact = json.loads((warehouse.root / "nlq_vocabulary.json").read_text())
    assert "Financial Services" in artifact["categories"]["companies.industry"]
    assert artifact["size_bands_small_to_large"][-1] == "enterprise"
    assert any(k == "fintech" for k in artifact["synonyms"])


def test_ask_reads_the_vocabulary_artifact_and_rebuilds_a_stale_one(tmp_path):
    import os

    from holocrm_core.nlq import NLQContext, Vocabulary, load_vocabulary
    from pipelines.definitions import materialize

    home, warehouse = _warehouse(tmp_path)
    assert load_vocabulary(warehouse.root) is None  # nothing written yet
    assert materialize(["nlq_vocabulary"], home=str(home)).success
    loaded = load_vocabulary(warehouse.root)
    built = Vocabulary.from_tables(NLQContext.from_warehouse(warehouse, vocabulary=loaded).tables)
    assert loaded.phrases == built.phrases and loaded.company_names == built.company_names
    ctx = NLQContext.from_warehouse(warehouse)
    assert ctx.vocabulary_source == "artifact" and ctx.vocab.lookup(("fintech",))
    # a staged table newer than the artifact: the artifact is stale and not read
    later = (warehouse.root / "nlq_vocabulary.json").stat().st_mtime + 10
    os.utime(warehouse.path("staged_deals"), (later, later))
    assert load_vocabulary(warehouse.root) is None
    assert NLQContext.from_warehouse(warehouse).vocabulary_source.startswith("rebuilt")


def test_ask_rejects_an_as_of_out_of_range_and_runs_partial_on_request(tmp_path, monkeypatch):
    home, _ = _warehouse(tmp_path)
    monkeypatch.setenv("HOLOCRM_HOME", str(home))
    from holocrm_cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["ask", "open deals", "--as-of", "9999-12-31"])
    assert result.exit_code == 2 and "as_of" in result.output
    plain = json.loads(
        runner.invoke(app, ["ask", "open deals in zorblax", "--as-of", "2026-10-31", "--json"]).output
    )
    assert plain["rows"] == [] and plain["record_count"] == 0
    partial = json.loads(
        runner.invoke(
            app, ["ask", "open deals in zorblax", "--as-of", "2026-10-31", "--json", "--partial"]
        ).output
    )
    assert partial["record_count"] == 4 and partial["understood"] is False
