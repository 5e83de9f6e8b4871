"""Serving over a real (tiny) LanceDB similarity index: similar contacts, semantic search, pinned versions."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

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


def _comparable(value):
    """JSON form, floats to 6 places, unset (None) fields dropped (the routes leave them out)."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def _service_answer(client, entity_type, entity_id, **kwargs):
    """The answer of the service the CLI calls, on the snapshot the app serves (what the route must return)."""
    from holocrm_api.records import served
    from holocrm_core.services import similar_records

    snap = client.app.state.services.loader.snapshot
    answer = similar_records(snap.store, entity_type, entity_id, labels=served(snap).labels, **kwargs)
    return _comparable({**answer, "index_version": snap.index_versions[entity_type]})


def test_concurrent_similar_requests_each_get_their_own_answer(indexed_home):
    """Similar runs on worker threads: 60 requests at once (10 at a time), each the service's own answer
    for its record (the record itself excluded), in both routes, with filters honoured."""
    home, _ = indexed_home
    settings = ServingSettings.from_env(home=home, reload_interval_s=0, warm_query_embedder=False)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        asks = [(f"C{1 + n % 6}", 1 + n % 5) for n in range(60)]
        expected = {
            ask: _service_answer(client, "contact", ask[0], limit=ask[1], min_similarity=-1.0)
            for ask in set(asks)
        }

        def ask(pair):
            contact_id, limit = pair
            params = {"limit": limit, "min_similarity": -1.0}  # every neighbour, however unlike
            if limit % 2:
                return client.get(f"/api/contacts/{contact_id}/similar", params=params)
            return client.get(f"/api/similar/contact/{contact_id}", params=params)

        with ThreadPoolExecutor(10) as pool:
            responses = list(pool.map(ask, asks))
        for (contact_id, limit), response in zip(asks, responses, strict=True):
            assert response.status_code == 200, response.text
            body = response.json()
            body.pop("contact_id", None)
            assert _comparable(body) == expected[(contact_id, limit)]
            assert len(body["results"]) == limit
            assert all(r["id"] != contact_id and r["label"] for r in body["results"])

        from holocrm_core.services import rules

        stages = {"D1": "proposal", "D2": "negotiation", "D3": "won"}
        wanted = ["stage=won,negotiation"]
        with ThreadPoolExecutor(10) as pool:
            filtered = list(
                pool.map(
                    lambda deal: client.get(f"/api/similar/deal/{deal}", params={"filter": wanted}),
                    ["D1", "D2", "D3"] * 5,
                )
            )
        for deal, response in zip(["D1", "D2", "D3"] * 5, filtered, strict=True):
            assert response.status_code == 200, response.text
            ids = [r["id"] for r in response.json()["results"]]
            assert ids and deal not in ids and {stages[i] for i in ids} <= {"won", "negotiation"}
            same = _service_answer(client, "deal", deal, filters=rules.filter_pairs(wanted))
            assert _comparable(response.json()) == same
        # a refusal on the worker thread is still the route's 404
        assert_error(client.get("/api/contacts/C404/similar"), 404, "not_found")


def test_the_event_loop_answers_while_a_similar_query_scans(indexed_home, monkeypatch):
    """The query runs off the event loop: while one is held inside the store, /health still answers."""
    home, _ = indexed_home
    scanning, release = threading.Event(), threading.Event()
    original = store_module.SimilarityStore.similar

    def held(self, *args, **kwargs):
        scanning.set()
        assert release.wait(20), "the test never released the query"
        return original(self, *args, **kwargs)

    settings = ServingSettings.from_env(home=home, reload_interval_s=0, warm_query_embedder=False)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        monkeypatch.setattr(store_module.SimilarityStore, "similar", held)  # after the start-up's warm-up
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(client.get, "/api/contacts/C1/similar", params={"limit": 2})
            assert scanning.wait(20)
            try:
                health = client.get("/health")  # on the loop, while the query is held on its thread
            finally:
                release.set()
            assert health.status_code == 200
            body = pending.result(timeout=20).json()
        assert [r["id"] for r in body["results"]][0] == "C5" and len(body["results"]) == 2


def test_a_snapshot_answers_one_similar_query_per_type_before_it_serves(indexed_home, monkeypatch):
    """The loader's prepare step asks one query per type; at start-up each `similar` thread asks one more
    (the pool's threads are running before the first request)."""
    home, _ = indexed_home
    monkeypatch.setenv("HOLOCRM_SIMILAR_THREADS", "2")
    asked: list[tuple[str, str]] = []
    original = store_module.SimilarityStore.similar

    def counted(self, entity_type, entity_id, **kwargs):
        asked.append((entity_type, threading.current_thread().name))
        return original(self, entity_type, entity_id, **kwargs)

    monkeypatch.setattr(store_module.SimilarityStore, "similar", counted)
    settings = ServingSettings.from_env(home=home, reload_interval_s=0, warm_query_embedder=False)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        on_pool = [(t, name) for t, name in asked if name.startswith("holocrm-similar")]
        prepared = sorted(t for t, name in asked if not name.startswith("holocrm-similar"))
        assert prepared == ["contact", "deal"]  # the prepare step, before any request
        assert len({name for _, name in on_pool}) == 2  # both threads started and warmed
        assert sorted(t for t, _ in on_pool) == ["contact", "contact", "deal", "deal"]
        before = len(asked)
        assert client.get("/api/contacts/C1/similar").status_code == 200
        assert [t for t, _ in asked[before:]] == ["contact"]


def test_the_routing_is_built_before_the_first_request(indexed_home, monkeypatch):
    """FastAPI builds an included router's routes for matching on the first request that reaches them (a
    just-started server's first burst paid for it); the app builds them at start-up instead."""
    import fastapi.routing

    context = getattr(fastapi.routing, "_EffectiveRouteContext", None)
    if context is None:
        pytest.skip("this FastAPI builds its routing eagerly (no _EffectiveRouteContext)")
    home, _ = indexed_home
    built: list[str] = []
    original = context.from_api_route

    def counted(cls, **kwargs):
        built.append(kwargs["original_route"].path)
        return original(**kwargs)

    settings = ServingSettings.from_env(home=home, reload_interval_s=0, warm_query_embedder=False)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        monkeypatch.setattr(context, "from_api_route", classmethod(counted))
        assert client.get("/api/contacts/C1/similar").status_code == 200
        assert client.get("/api/similar/deal/D1").status_code in (200, 404)
        assert client.get("/api/contacts/C1/score").status_code in (200, 404, 503)
        assert client.get("/no/such/route").status_code == 404
    assert built == []


def test_similar_threads_setting(monkeypatch):
    from holocrm_api.deps import similar_threads

    monkeypatch.delenv("HOLOCRM_SIMILAR_THREADS", raising=False)
    assert similar_threads() >= 2
    monkeypatch.setenv("HOLOCRM_SIMILAR_THREADS", " 3 ")
    assert similar_threads() == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("HOLOCRM_SIMILAR_THREADS", bad)
        with pytest.raises(ValueError, match="HOLOCRM_SIMILAR_THREADS"):
            similar_threads()


def test_similar_answers_are_what_the_declared_model_serialises(indexed_home):
    """The similar answers are what ``SimilarAnswer`` with ``exclude_unset`` makes of them (keys, values, key
    order; unset fields absent), on both routes and with a filter, and the OpenAPI names the model: the
    contract any faster serialisation of this hot route must keep."""
    import json

    from holocrm_api.routes.similarity import SimilarAnswer
    from holocrm_core.text import FILTER_COLUMNS

    home, _ = indexed_home
    settings = ServingSettings.from_env(home=home, reload_interval_s=0, warm_query_embedder=False)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        first = client.get("/api/contacts/C1/similar").json()["results"][0]
        column = next(c for c in FILTER_COLUMNS if first.get(c) not in (None, ""))  # a filter the hit passes
        for path, params in (
            ("/api/contacts/C1/similar", {"limit": 4}),
            ("/api/similar/contact/C2", {"limit": 3, "min_similarity": -1.0}),
            ("/api/similar/contacts/C2", {"filter": f"{column}={first[column]}"}),
        ):
            answer = client.get(path, params=params)
            assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
            body = answer.json()
            assert body["results"], path
            expected = SimilarAnswer.model_validate(body).model_dump(mode="json", exclude_unset=True)
            assert body == expected
            assert list(body) == list(expected)
            assert [list(h) for h in body["results"]] == [list(h) for h in expected["results"]]
            assert {"id", "entity_type", "label", "similarity"} <= set(body["results"][0])
            assert "score" not in body["results"][0]  # unset fields stay absent, as exclude_unset left them
        assert "contact_id" not in client.get("/api/similar/contact/C2").json()
        assert client.get("/api/contacts/C2/similar").json()["contact_id"] == "C2"
        schema = client.get("/openapi.json").json()
        for path in ("/api/contacts/{contact_id}/similar", "/api/similar/{entity_type}/{entity_id}"):
            ok = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
            assert ok == {"$ref": "#/components/schemas/SimilarAnswer"}
        assert json.loads(answer.content) == body
