"""A deployment whose warehouse is on S3 (HOLOCRM_WAREHOUSE_URI=s3://...) works at every door: the API serves
and reloads its tables, the NL vocabulary and semantic layer live beside them, monitoring reads its inputs
and keeps its reference and verdicts there, and the CLI reads them, with nothing in HOLOCRM_HOME/warehouse.
Against the moto S3 server on loopback (tests/support/s3.py)."""

from __future__ import annotations

import json

import polars as pl
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from holocrm_api import ServingSettings, create_app
from holocrm_core.settings import HoloPaths
from holocrm_core.warehouse import Warehouse
from tests.support.api import build_home


@pytest.fixture
def s3_home(s3_env, tmp_path, monkeypatch, request):
    """An empty HOLOCRM_HOME whose warehouse is an S3 prefix holding the API tests' tiny tables."""
    uri = f"s3://{s3_env.bucket}/doors-{request.node.name[:40]}"
    home = tmp_path / "home"
    monkeypatch.setenv("HOLOCRM_HOME", str(home))
    monkeypatch.setenv("HOLOCRM_WAREHOUSE_URI", uri)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'no-registry' / 'mlflow.db'}")
    monkeypatch.delenv("HOLOCRM_SERVER", raising=False)
    local = build_home(tmp_path / "source")
    warehouse = Warehouse(uri)
    for name in local.tables():
        warehouse.write(name, local.read(name))
    return home, warehouse


def test_the_api_serves_and_reloads_tables_from_s3(s3_home):
    home, warehouse = s3_home
    settings = ServingSettings.from_env(home=home, reload_interval_s=0, warm_query_embedder=False)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert client.get("/api/contacts/C1/score").json()["score"] == pytest.approx(0.82)
        assert client.post("/api/admin/reload").json()["swapped"] is False  # nothing committed since
        scores = warehouse.read("scored_leads")
        warehouse.write("scored_leads", scores.with_columns(pl.lit(0.55).alias("score")))
        assert client.post("/api/admin/reload").json()["swapped"] is True  # the table-change check saw it
        assert client.get("/api/contacts/C1/score").json()["score"] == pytest.approx(0.55)
    assert not (home / "warehouse").exists() or not any((home / "warehouse").iterdir())


def test_the_nl_vocabulary_and_semantic_layer_live_beside_the_s3_tables(s3_home):
    from holocrm_core.metrics import SemanticLayer
    from holocrm_core.nlq import NLQContext, load_vocabulary
    from holocrm_core.nlq.answer import load_semantic_layer, write_semantic_layer

    home, warehouse = s3_home
    assert load_vocabulary(warehouse) is None  # nothing written yet
    tables = NLQContext.from_warehouse(warehouse, warm=False).tables
    where = NLQContext(tables).write_vocabulary(warehouse)
    assert where.startswith("s3://") and where.endswith("nlq_vocabulary.json")
    layer = SemanticLayer.default().with_overrides({"metrics": {}}, "defaults + test mapping")
    write_semantic_layer(warehouse, layer)
    assert load_semantic_layer(warehouse).source == "defaults + test mapping"
    assert (
        load_semantic_layer(HoloPaths(home)).source == "defaults + test mapping"
    )  # HoloPaths: the settings' S3

    ctx = NLQContext.from_warehouse(warehouse, warm=False)
    assert ctx.vocabulary_source == "artifact" and ctx.vocab.contact_names
    # a staged table committed after the vocabulary: stale, not read (rebuilt from the tables instead)
    warehouse.write("staged_deals", warehouse.read("staged_deals").with_columns(pl.lit("won").alias("stage")))
    assert load_vocabulary(warehouse) is None
    assert NLQContext.from_warehouse(warehouse, warm=False).vocabulary_source.startswith("rebuilt")

    from holocrm_cli import app

    answered = CliRunner().invoke(app, ["ask", "how many contacts", "--json"])
    assert answered.exit_code == 0, answered.output
    assert "6" in answered.stdout  # the six contacts of the S3 tables
    layer_shown = CliRunner().invoke(app, ["metrics", "--json"])
    assert (
        layer_shown.exit_code == 0 and json.loads(layer_shown.stdout)["source"] == "defaults + test mapping"
    )
    history = CliRunner().invoke(app, ["history", "staged_deals", "--json"])
    assert history.exit_code == 0, history.output
    assert len(json.loads(history.stdout)["versions"]) == 2


def test_monitoring_reads_s3_tables_and_keeps_its_reference_and_verdicts_there(s3_home):
    from holocrm_core.monitoring import (
        asset_freshness,
        monitoring_store,
        read_state,
        take_reference,
        watch,
        write_state,
    )

    home, warehouse = s3_home
    paths = HoloPaths(home)
    store = monitoring_store(paths)
    assert str(store.root).startswith(str(warehouse.root))
    assert take_reference(paths, {}, force=True)
    assert {"staged_contacts", "scored_leads"} <= set(store.child("reference").tables())

    report = watch(paths, champions={}, with_decay=False)
    # each S3 table judged against its S3 reference (6 rows: too few to call a column moved)
    assert {"staged_contacts", "staged_deals", "scored_leads", "scored_deals"} <= {
        r.name for r in report.drift
    }
    assert any("reference taken" in note for note in report.notes)
    fresh = {f.name: f for f in asset_freshness(paths)}
    assert fresh["export"].updated_at is not None and not fresh["export"].stale
    write_state(paths, report)
    assert read_state(paths, "drift")["reports"] and "checks" in read_state(paths, "decay")
    assert not (home / "monitoring").exists()  # nothing kept on this machine's disk
