"""`holocrm metrics` lists the semantic layer; `holocrm ask --pick N` runs a reading of an unclear question."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from holocrm_core.warehouse import Warehouse
from tests.support.nlq_tables import tiny_tables


def test_metrics_lists_the_layer_and_a_mappings_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv("HOLOCRM_HOME", str(tmp_path / "home"))
    from holocrm_cli import app

    result = CliRunner().invoke(app, ["metrics"])
    assert result.exit_code == 0, result.output
    assert "open_pipeline" in result.output and "win_rate" in result.output and "leads" in result.output
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("entities: {}\nsemantic:\n  drop: [sales_cycle]\n")
    data = json.loads(CliRunner().invoke(app, ["metrics", "--mapping", str(mapping), "--json"]).output)
    assert "sales_cycle" not in data["metrics"] and "win_rate" in data["metrics"]
    mapping.write_text("entities: {}\nsemantic:\n  metrics: {x: {entity: deals, aggregate: median}}\n")
    bad = CliRunner().invoke(app, ["metrics", "--mapping", str(mapping)])
    assert bad.exit_code == 2 and "metrics.x.aggregate" in bad.output


def test_ask_prints_readings_and_pick_runs_one(tmp_path, monkeypatch):
    home = tmp_path / "home"
    warehouse = Warehouse(home / "warehouse")
    for entity, frame in tiny_tables().items():
        warehouse.write(f"staged_{entity}", frame)
    monkeypatch.setenv("HOLOCRM_HOME", str(home))
    from holocrm_cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["ask", "Sam's open deals", "--as-of", "2026-10-31"])
    assert result.exit_code == 0, result.output
    assert "Readings (run one with --pick N):" in result.output
    assert "Sam Rep" in result.output and "Sam Ode" in result.output
    picks = {}
    for n in (1, 2):
        data = json.loads(
            runner.invoke(
                app, ["ask", "Sam's open deals", "--as-of", "2026-10-31", "--pick", str(n), "--json"]
            ).output
        )
        picks[n] = {r["deal_id"] for r in data["rows"]}
    assert sorted(picks.values(), key=sorted) == [{"d1"}, {"d3"}]
    bad = runner.invoke(app, ["ask", "Sam's open deals", "--as-of", "2026-10-31", "--pick", "5"])
    assert bad.exit_code == 2 and "reading" in bad.output


def test_the_runs_mapping_reaches_the_semantic_layer(tmp_path):
    from holocrm_core.nlq.answer import SEMANTIC_FILE
    from holocrm_core.settings import HoloPaths
    from pipelines.runner import run_all

    home = tmp_path / "home"
    warehouse = Warehouse(home / "warehouse")
    for entity, frame in tiny_tables().items():
        warehouse.write(f"staged_{entity}", frame)
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("entities: {}\nsemantic:\n  drop: [sales_cycle]\n")
    summary = run_all(
        mapping=mapping, paths=HoloPaths(home), progress=lambda _: None, selection=["nlq_vocabulary"]
    )
    assert summary.success
    layer = json.loads((warehouse.root / SEMANTIC_FILE).read_text())
    assert "sales_cycle" not in layer["layer"]["metrics"] and "win_rate" in layer["layer"]["metrics"]
