"""Serving over a real (tiny) LanceDB similarity index: similar contacts, semantic search, pinned versions."""

from __future__ import annotations

import polars as pl
import pytest
from fastapi.testclient import TestClient

from holocrm_api import ServingSettings, create_app
from tests.support.api import assert_error, build_home, build_index

store_module = pytest.importorskip(
    "holocrm_core.store", reason="the similarity store is not part of this build"
)


@pytest.fixture
def indexed_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOLOCRM_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    wh = build_home(tmp_path)
    build_index(tmp_path, wh)
    return tmp_path, wh


def test_similar_contacts_and_search_from_the_pinned_index(indexed_home):
    home, wh = indexed_home
    settings = ServingSettings.from_env(home=home, reload_interval_s=0, warm_query_embedder=False)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        health = client.get("/health").json()
        assert "similarity" not in health["missing"] and health["index_versions"]["contact"] >= 1
        pinned = health["index_versions"]["contact"]

        body = client.get("/api/contacts/C1/similar", params={"limit": 3}).json()
        assert body["results"][0]["id"] == "C5" and body["results"][0]["similarity"] > 0.9
        assert len(body["results"]) == 3 and all(r["id"] != "C1" for r in body["results"])
        high = client.get("/api/contacts/C1/similar", params={"min_similarity": 0.9}).json()
        assert [r["id"] for r in high["results"]] == ["C5"]
        assert_error(client.get("/api/contacts/C404/similar"), 404, "not_found")

        found = client.post(
            "/api/search/semantic",
            json={"query": "Person 3", "mode": "fulltext", "entity_types": ["contacts"]},
        ).json()
        assert found["results"] and found["results"][0]["id"] == "C3"
        assert all(r["entity_type"] == "contact" for r in found["results"])

        # The pipeline re-syncs the index (a new table version): the server keeps its pinned version until
        # it reloads, then serves the newest.
        wh.write(
            "staged_contacts",
            wh.read("staged_contacts").with_columns(
                pl.when(pl.col("contact_id") == "C3")
                .then(pl.lit("Zelda Quux"))
                .otherwise(pl.col("full_name"))
                .alias("full_name")
            ),
        )
        build_index(home, wh)
        assert client.get("/health").json()["index_versions"]["contact"] == pinned
        assert client.post("/api/admin/reload").json()["swapped"] is True
        assert client.get("/health").json()["index_versions"]["contact"] > pinned
        renamed = client.post("/api/search/semantic", json={"query": "Zelda", "mode": "fulltext"}).json()
        assert renamed["results"] and renamed["results"][0]["id"] == "C3"


@pytest.mark.slow
def test_hybrid_search_uses_the_offline_embedder(indexed_home, monkeypatch):
    home, _ = indexed_home
    # The torch backend loads in seconds; the ONNX fast path would first export the model into this tmp home.
    monkeypatch.setenv("HOLOCRM_EMBED_BACKEND", "torch")
    settings = ServingSettings.from_env(home=home, reload_interval_s=0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        body = client.post("/api/search/semantic", json={"query": "Fleet renewal", "limit": 5}).json()
        assert body["mode"] == "hybrid" and body["results"]
        assert body["results"][0]["id"] == "D1"  # the deal titled "Fleet renewal"
        assert "fulltext" in body["results"][0]["matched_by"]


@pytest.fixture
def static_tier_home(tmp_path, monkeypatch):
    """An index built with the static tier, served by a process whose tier is the default (minilm)."""
    monkeypatch.setenv("HOLOCRM_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    monkeypatch.delenv("HOLOCRM_EMBEDDER", raising=False)
    monkeypatch.delenv("HOLOCRM_SERVER", raising=False)
    build_index(tmp_path, build_home(tmp_path), model="model2vec:distilled-test")
    return tmp_path


def test_a_search_by_meaning_against_another_tier_is_a_409_naming_both(static_tier_home):
    settings = ServingSettings.from_env(home=static_tier_home, reload_interval_s=0, warm_query_embedder=False)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        for mode in ("vector", "hybrid"):
            body = assert_error(
                client.post("/api/search/semantic", json={"query": "fleet renewal", "mode": mode}),
                409,
                "embedding_model_mismatch",
            )
            assert body["index_tier"] == "static" and body["index_model"] == "model2vec:distilled-test"
            assert body["served_tier"] == "minilm" and "MiniLM" in body["served_model"]
            assert "HOLOCRM_EMBEDDER" in body["detail"] and "static tier" in body["detail"]
        # what needs no query embedding is still answered, and the connection stays usable
        words = client.post("/api/search/semantic", json={"query": "Person 3", "mode": "fulltext"})
        assert words.status_code == 200 and words.json()["results"][0]["id"] == "C3"
        assert client.get("/api/contacts/C1/similar").json()["results"][0]["id"] == "C5"
        documented = client.get("/openapi.json").json()["paths"]["/api/search/semantic"]["post"]["responses"]
        assert "409" in documented


def test_the_cli_names_both_tiers_and_exits_1(static_tier_home):
    from typer.testing import CliRunner

    from holocrm_cli import app

    result = CliRunner().invoke(app, ["search", "fleet renewal", "--mode", "vector"])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output
    assert "static tier ('model2vec:distilled-test')" in errors[0] and "minilm tier" in errors[0]


def test_labels_are_built_before_a_snapshot_serves(indexed_home, monkeypatch):
    """The first similar request must not label every contact (seconds at 1M, on the event loop): the loader
    warms the label lookups of the served types before it swaps a snapshot in, and the first answer names
    its hits from them."""
    from holocrm_api import records

    home, _ = indexed_home
    monkeypatch.setenv("HOLOCRM_WARM_TYPES", "contact")
    settings = ServingSettings.from_env(home=home, reload_interval_s=0, warm_query_embedder=False)
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        snap = app.state.services.loader.snapshot
        labels = records.served(snap).labels
        assert "contact" in labels._all and "C5" in labels._all["contact"]
        assert "deal" not in labels._all  # only the served types
        body = client.get("/api/contacts/C1/similar", params={"limit": 3}).json()
        assert body["results"][0]["label"] == labels._all["contact"]["C5"]
        assert records.served(snap) is records.served(snap)  # built once per snapshot
