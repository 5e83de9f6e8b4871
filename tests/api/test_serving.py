"""Serving API, in process: every endpoint's answers and refusals over small hand-made warehouse tables."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import pytest

from holocrm_api import ServingSettings, create_app
from holocrm_api.outcome_log import AppendOnlyLog, read_log
from holocrm_core.decisions.segment_thompson import ThompsonRecommender
from tests.support.api import assert_error, make_client


@pytest.fixture
def client(home):
    with make_client(home) as c:
        yield c


# -- health, docs, metrics -----------------------------------------------------------------------------
def test_health_reports_what_is_served_and_what_is_missing(client):
    body = client.get("/health").json()
    assert body["tables"]["staged_contacts"] == 6
    assert body["status"] == "degraded"  # no similarity index, no NL module output, no models here
    assert "similarity" in body["missing"] and "holocrm run" in body["missing"]["similarity"]
    assert body["loaded_at"] and body["auth"] == "off"


def test_openapi_lists_every_endpoint(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/contacts/{contact_id}/similar",
        "/api/search/semantic",
        "/api/query/natural-language",
        "/api/contacts/{contact_id}/score",
        "/api/deals/{deal_id}/score",
        "/api/contacts/{contact_id}/recommendation",
        "/api/duplicates",
        "/api/deals/{deal_id}/close",
        "/api/actions/outcome",
        "/metrics",
        "/health",
    ):
        assert path in paths
    assert client.get("/docs").status_code == 200


def test_metrics_count_requests_by_route_template(client):
    client.get("/api/contacts/C1/score")
    client.get("/api/contacts/C2/score")
    client.get("/api/contacts/NOPE/score")
    text = client.get("/metrics").text
    assert (
        'holocrm_requests_total{method="GET",route="/api/contacts/{contact_id}/score",status="200"} 2.0'
        in text
    )
    assert 'route="/api/contacts/{contact_id}/score",status="404"} 1.0' in text
    assert "holocrm_request_seconds_bucket" in text
    assert "holocrm_artifacts_loaded_timestamp_seconds" in text


# -- scores ----------------------------------------------------------------------------------------------
def test_contact_score_comes_from_the_scored_table_with_reasons(client):
    body = client.get("/api/contacts/C1/score").json()
    assert body["score"] == pytest.approx(0.82)
    assert body["band"] == "hot"
    assert body["reasons"][0].startswith("+ replied")
    assert body["source"] == "scored_table" and body["model"]["name"] == "holocrm_lead_scorer"


def test_deal_score_and_unknown_ids(client):
    assert client.get("/api/deals/D2/score").json()["score"] == pytest.approx(0.3)
    assert_error(client.get("/api/deals/D404/score"), 404, "not_found")
    assert_error(client.get("/api/contacts/C404/score"), 404, "not_found")
    # A decided (disqualified) contact has no lead score: 404 that says so, not a crash.
    body = assert_error(client.get("/api/contacts/C6/score"), 404, "not_scored")
    from holocrm_core.outcomes import not_open_reason

    assert body["detail"] == not_open_reason("contact", "C6")  # `holocrm score contact C6` says the same
    # An open lead the pipeline's table lacks (newer than its run) is scored now, by the served scorer, once.
    first = client.get("/api/contacts/C5/score").json()
    assert first["source"] == "on_demand" and 0.0 < first["score"] < 1.0 and first["reasons"]
    assert first["model"] == {"name": "holocrm_lead_scorer", "version": "heuristic", "served_as": "heuristic"}
    assert client.get("/api/contacts/C5/score").json()["score"] == first["score"]


def test_malformed_ids_are_refused(client):
    body = assert_error(client.get("/api/contacts/bad%20id%3B/score"), 422, "invalid_request")
    assert "contact_id" in body["detail"]


# -- recommendations ---------------------------------------------------------------------------------------
def test_recommendation_carries_its_policy_reasons_and_posterior(client):
    body = client.get("/api/contacts/C1/recommendation", params={"posterior": True}).json()
    assert body["action"] in {"email", "call", "proposal", "wait"} and body["decided"] is False
    assert set(body["posterior"]) == {"email", "call", "proposal", "wait"}
    assert body["policy"]["served_as"] == "learning_online" and body["policy"]["why"]
    assert 0 < body["propensity"] <= 1
    drawn = body["posterior"][body["action"]]["draw"]
    assert drawn == max(p["draw"] for p in body["posterior"].values())
    assert "posterior" not in client.get("/api/contacts/C1/recommendation").json() or (
        client.get("/api/contacts/C1/recommendation").json()["posterior"] is None
    )
    # a decided contact gets no recommendation, with the reason
    decided = client.get("/api/contacts/C6/recommendation").json()
    assert decided["action"] is None and decided["decided"] and "disqualified" in decided["reason"]
    assert_error(client.get("/api/contacts/C404/recommendation"), 404, "not_found")


def test_recommendation_learns_from_recorded_outcomes(client):
    for n in range(30):
        for action, reward in (("call", 1.0), ("email", 0.0), ("proposal", 0.0), ("wait", 0.0)):
            r = client.post(
                "/api/actions/outcome",
                json={
                    "contact_id": "C1",
                    "action": action,
                    "reward": reward,
                    "idempotency_key": f"learn-{action}-{n}",
                },
            )
            assert r.status_code == 201, r.text
    body = client.get("/api/contacts/C1/recommendation", params={"posterior": True}).json()
    assert body["action"] == "call"
    rates = {a: p["expected_success_rate"] for a, p in body["posterior"].items()}
    assert rates["call"] > 0.7 > max(rates["email"], rates["proposal"], rates["wait"])
    assert body["posterior"]["call"]["trials"] == 30
    assert client.get("/api/decisions/policy").json()["online"]["learned_online"] == 120


def test_thompson_recommender_ignores_bad_outcomes():
    rec = ThompsonRecommender(seed=1)
    assert not rec.observe("dance", 1.0, {})
    assert not rec.observe("call", 3.0, {})
    assert rec.observe("call", 1.0, '{"lifecycle_status": "lead", "band": "hot"}')
    assert rec.posteriors("lead|hot")[0][1] == 2.0


# -- durable writes ---------------------------------------------------------------------------------------
def test_close_deal_records_outcome_with_prediction_once(client, home):
    first = client.post(
        "/api/deals/D1/close",
        json={"outcome": "won", "closed_at": "2024-03-01T10:00:00Z"},
        headers={"Idempotency-Key": "close-D1"},
    )
    assert first.status_code == 201, first.text
    record = first.json()["record"]
    assert record["prediction"]["score"] == pytest.approx(0.7)
    again = client.post(
        "/api/deals/D1/close",
        json={"outcome": "won", "closed_at": "2024-03-01T10:00:00Z"},
        headers={"Idempotency-Key": "close-D1"},
    )
    assert again.status_code == 200 and again.json()["duplicate"] is True
    lines = (home / "logs" / "outcomes.ndjson").read_text().splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert set(line) >= {"idempotency_key", "recorded_at", "deal_id", "outcome", "closed_at", "prediction"}
    assert (
        line["deal_id"] == "D1"
        and line["outcome"] == "won"
        and line["closed_at"].startswith("2024-03-01T10:00")
    )
    assert set(line["prediction"]) >= {"score", "model_version"}


def test_close_deal_refusals(client):
    assert_error(client.post("/api/deals/D404/close", json={"outcome": "won"}), 404, "not_found")
    body = assert_error(client.post("/api/deals/D1/close", json={"outcome": "maybe"}), 422, "invalid_request")
    assert "outcome" in body["detail"] and "won" in body["detail"]
    body = assert_error(
        client.post("/api/deals/D1/close", json={"outcome": "won", "colour": "red"}), 422, "invalid_request"
    )
    assert "colour" in body["detail"]
    body = assert_error(
        client.post(
            "/api/deals/D1/close", content=b'{"outcome": "won"', headers={"content-type": "application/json"}
        ),
        422,
        "invalid_request",
    )
    assert "JSON" in body["detail"]
    body = assert_error(
        client.post("/api/deals/D1/close", json={"outcome": "won", "closed_at": "2999-01-01"}),
        422,
        "invalid_request",
    )
    assert "future" in body["detail"]
    body = assert_error(
        client.post("/api/deals/D1/close", json={"outcome": "won", "closed_at": "2020-01-01"}),
        422,
        "invalid_request",
    )
    assert "before the deal was created" in body["detail"]
    # Same key, different outcome: a conflict, and the first record stands.
    client.post("/api/deals/D2/close", json={"outcome": "won"}, headers={"Idempotency-Key": "k-D2"})
    body = assert_error(
        client.post("/api/deals/D2/close", json={"outcome": "lost"}, headers={"Idempotency-Key": "k-D2"}),
        409,
        "idempotency_conflict",
    )
    assert body["recorded"]["outcome"] == "won"
    body = assert_error(
        client.post(
            "/api/deals/D2/close",
            json={"outcome": "won", "idempotency_key": "a"},
            headers={"Idempotency-Key": "b"},
        ),
        409,
        "idempotency_conflict",
    )
    assert "differ" in body["detail"]
    body = assert_error(
        client.post("/api/deals/D2/close", json={"outcome": "won", "closed_at": 1700000000}),
        422,
        "invalid_request",
    )
    assert "ISO 8601" in body["detail"]


def test_oversized_bodies_are_refused(client, home):
    big = {"outcome": "won", "idempotency_key": "x" * 100, "pad": "y" * 200_000}
    assert_error(client.post("/api/deals/D1/close", json=big), 413, "payload_too_large")

    def chunks():  # no Content-Length: the limit must hold on the bytes actually read
        for _ in range(100):
            yield b"x" * 1024

    assert_error(client.post("/api/deals/D1/close", content=chunks()), 413, "payload_too_large")
    assert not (home / "logs" / "outcomes.ndjson").read_text()


def test_action_outcome_recorded_with_context_and_refusals(client, home):
    r = client.post(
        "/api/actions/outcome",
        json={
            "contact_id": "C2",
            "deal_id": "D2",
            "action": "email",
            "reward": 1,
            "propensity": 0.25,
            "policy": "thompson_beta",
            "idempotency_key": "act-1",
        },
    )
    assert r.status_code == 201, r.text
    line = json.loads((home / "logs" / "actions.ndjson").read_text().splitlines()[0])
    assert line["context"]["lifecycle_status"] == "lead" and line["context"]["lead_band"] == "warm"
    for key in (
        "idempotency_key",
        "recorded_at",
        "contact_id",
        "deal_id",
        "action",
        "reward",
        "context",
        "propensity",
        "policy",
    ):
        assert key in line
    assert_error(
        client.post("/api/actions/outcome", json={"contact_id": "C404", "action": "call", "reward": 1}),
        404,
        "not_found",
    )
    assert_error(
        client.post(
            "/api/actions/outcome",
            json={"contact_id": "C1", "deal_id": "D404", "action": "call", "reward": 1},
        ),
        404,
        "not_found",
    )
    body = assert_error(
        client.post("/api/actions/outcome", json={"contact_id": "C1", "action": "call", "reward": 7}),
        422,
        "invalid_request",
    )
    assert "reward" in body["detail"]


def test_idempotency_keys_survive_a_restart(home):
    with make_client(home) as c:
        assert (
            c.post(
                "/api/deals/D1/close", json={"outcome": "lost"}, headers={"Idempotency-Key": "restart-1"}
            ).status_code
            == 201
        )
    with make_client(home) as c:
        r = c.post("/api/deals/D1/close", json={"outcome": "lost"}, headers={"Idempotency-Key": "restart-1"})
        assert r.status_code == 200 and r.json()["duplicate"] is True
        assert c.get("/health").json()["logs"]["outcomes"] == 1


def test_log_survives_a_torn_last_line(tmp_path):
    path = tmp_path / "outcomes.ndjson"
    path.write_bytes(b'{"idempotency_key": "a", "deal_id": "D1"}\n{"idempotency_key": "b", "de')
    log = AppendOnlyLog(path)
    assert "a" in log and "b" not in log
    log.append({"idempotency_key": "c", "deal_id": "D2"})
    log.close()
    assert [r["idempotency_key"] for r in read_log(path)] == ["a", "c"]


def test_two_writers_on_one_log_record_a_key_once(tmp_path):
    path = tmp_path / "actions.ndjson"
    first, second = AppendOnlyLog(path), AppendOnlyLog(path)  # as two server processes would
    assert first.append({"idempotency_key": "k", "n": 1}).created
    assert not second.append({"idempotency_key": "k", "n": 1}).created
    first.close(), second.close()
    assert len(list(read_log(path))) == 1


# -- list endpoints and limits -----------------------------------------------------------------------------
def test_duplicates_filtered_paged_and_sorted(client):
    body = client.get("/api/duplicates", params={"entity_type": "contact"}).json()
    assert body["total"] == 2 and body["results"][0]["score"] == pytest.approx(0.97)
    assert body["results"][0]["reasons"] == ["same e-mail"]
    assert client.get("/api/duplicates", params={"entity_type": "contacts"}).json()["total"] == 2
    body = client.get("/api/duplicates", params={"min_score": 0.8, "limit": 1, "offset": 1}).json()
    assert body["total"] == 2 and len(body["results"]) == 1 and body["results"][0]["id_a"] == "A1"
    assert_error(client.get("/api/duplicates", params={"entity_type": "unicorn"}), 422, "invalid_request")


def test_absurd_limits_are_refused(client):
    body = assert_error(client.get("/api/duplicates", params={"limit": 10**9}), 422, "invalid_request")
    assert "limit" in body["detail"] and "100" in body["detail"]
    assert_error(client.get("/api/contacts/C1/similar", params={"limit": 5000}), 422, "invalid_request")
    assert_error(client.get("/api/contacts/C1/similar", params={"limit": 0}), 422, "invalid_request")
    assert_error(
        client.post("/api/search/semantic", json={"query": "cto", "limit": 5000}), 422, "invalid_request"
    )
    body = assert_error(
        client.post("/api/search/semantic", json={"query": "cto", "entity_types": ["unicorn"]}),
        422,
        "invalid_request",
    )
    assert "entity_types" in body["detail"] and "contact" in body["detail"]
    assert_error(
        client.post("/api/query/natural-language", json={"question": "q" * 5000}), 422, "invalid_request"
    )


# -- capabilities not built yet ------------------------------------------------------------------------------
def test_unbuilt_artifacts_answer_503_with_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("HOLOCRM_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'none' / 'mlflow.db'}")
    with make_client(tmp_path) as c:
        for response in (
            c.get("/api/contacts/C1/similar"),
            c.get("/api/contacts/C1/score"),
            c.get("/api/duplicates"),
            c.post("/api/search/semantic", json={"query": "cto"}),
            c.post("/api/query/natural-language", json={"question": "how many leads?"}),
            c.post("/api/deals/D1/close", json={"outcome": "won"}),
        ):
            body = assert_error(response, 503, "not_built")
            assert "holocrm run" in body["detail"]
        assert c.get("/health").json()["status"] == "degraded"


def test_internal_errors_do_not_leak_stack_traces(client, monkeypatch):
    snap = client.app.state.services.loader.snapshot

    def exploding(_):
        raise RuntimeError("secret internals at /srv/holocrm/models.py line 12")

    monkeypatch.setattr(snap.scores["contact"], "lookup", exploding)
    r = client.get("/api/contacts/C1/score")
    body = assert_error(r, 500, "internal_error")
    assert "secret" not in r.text and "incident" in body["detail"]


# -- auth ---------------------------------------------------------------------------------------------------
def test_api_key_required_when_configured(home):
    with make_client(home, api_key_required=True, api_keys=("s3cret", "other")) as c:
        assert_error(c.get("/api/contacts/C1/score"), 401, "unauthorized")
        assert_error(c.get("/api/contacts/C1/score", headers={"X-API-Key": "wrong"}), 401, "unauthorized")
        assert_error(c.post("/api/deals/D1/close", json={"outcome": "won"}), 401, "unauthorized")
        assert c.get("/api/contacts/C1/score", headers={"X-API-Key": "s3cret"}).status_code == 200
        assert c.get("/api/contacts/C1/score", headers={"Authorization": "Bearer other"}).status_code == 200
        assert c.get("/health").json() == {"status": "degraded"}  # probes stay open, and see the status only
        assert c.get("/health", headers={"X-API-Key": "wrong"}).json() == {"status": "degraded"}
        assert c.get("/health", headers={"X-API-Key": "other"}).json()["auth"] == "api_key"


def test_auth_off_by_default_and_required_without_keys_is_a_setup_error(home):
    with make_client(home) as c:
        assert c.get("/api/contacts/C1/score").status_code == 200
    with pytest.raises(ValueError, match="HOLOCRM_API_KEY"):
        create_app(ServingSettings.from_env(home=home, api_key_required=True, api_keys=()))


def test_settings_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("HOLOCRM_HOME", str(tmp_path))
    monkeypatch.setenv("HOLOCRM_API_KEY_REQUIRED", "1")
    monkeypatch.setenv("HOLOCRM_API_KEYS", "a, b")
    settings = ServingSettings.from_env()
    assert settings.api_key_required and settings.api_keys == ("a", "b")
    assert os.fspath(settings.home) == os.fspath(tmp_path.resolve())


# -- natural language -----------------------------------------------------------------------------------------
def test_natural_language_answer_carries_its_plan_and_is_reused(client):
    pytest.importorskip("holocrm_core.nlq", reason="the NL module is not part of this build")
    r = client.post("/api/query/natural-language", json={"question": "how many contacts do we have"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["understood"] is True and body["plan"] and body["plan_words"]
    assert body["trace"] and body["cached"] is False
    assert body["value"] == 6 or body["row_count"] == 6
    again = client.post(
        "/api/query/natural-language", json={"question": "How many  contacts do we have"}
    ).json()
    assert again["cached"] is True and again["plan"] == body["plan"]
    gibberish = client.post("/api/query/natural-language", json={"question": "blorp zxq frobnicate"}).json()
    # nothing close to a question the vocabulary can build: not understood, no rows (suggestions may be empty)
    assert gibberish["understood"] is False and not gibberish.get("rows")
    assert_error(client.post("/api/query/natural-language", json={"question": ""}), 422, "invalid_request")


def test_concurrent_writers_return_only_after_their_line_is_synced(tmp_path):
    import threading

    log = AppendOnlyLog(tmp_path / "outcomes.ndjson")
    late: list[str] = []

    def writer(w: int) -> None:
        for n in range(40):
            key = f"w{w}-{n}"
            log.append({"idempotency_key": key, "deal_id": "D1"})
            if log._synced < log.end_offset(
                key
            ):  # acknowledged before its fsync: the bug this guards against
                late.append(key)
            log.append({"idempotency_key": key, "deal_id": "D1"})  # a retry: recorded once

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    keys = [r["idempotency_key"] for r in read_log(tmp_path / "outcomes.ndjson")]
    assert not late
    assert len(keys) == 240 == len(set(keys))


def test_the_outcome_dataset_reads_what_close_deal_wrote(client, home):
    outcomes = pytest.importorskip("holocrm_core.outcomes")
    client.post(
        "/api/deals/D1/close",
        json={"outcome": "won", "closed_at": "2024-05-01T12:00:00Z"},
        headers={"Idempotency-Key": "ds-1"},
    )
    client.post("/api/deals/D2/close", json={"outcome": "lost"}, headers={"Idempotency-Key": "ds-2"})
    frame = outcomes.read_field_outcomes(home / "logs" / "outcomes.ndjson")
    rows = {r["deal_id"]: r for r in frame.to_dicts()}
    assert rows["D1"]["outcome"] == "won" and rows["D1"]["predicted_score"] == pytest.approx(0.7)
    assert rows["D1"]["closed_at"] == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert rows["D2"]["outcome"] == "lost" and rows["D2"]["predicted_score"] == pytest.approx(0.3)


def test_natural_language_unclear_question_lists_readings_and_pick_runs_one(client):
    pytest.importorskip("holocrm_core.nlq", reason="the NL module is not part of this build")
    question = "how many contacts do we have zorblax"
    body = client.post("/api/query/natural-language", json={"question": question}).json()
    assert body["high_confidence"] is False and body["readings"], body
    first = body["readings"][0]
    assert first["pick"] == 1 and first["plan_words"] and "record_count" in first
    picked = client.post("/api/query/natural-language", json={"question": question, "pick": 1}).json()
    assert picked["understood"] is True and picked["plan_words"] == first["plan_words"]
    assert picked["value"] == first["value"]
    too_far = client.post("/api/query/natural-language", json={"question": question, "pick": 9}).json()
    assert too_far["understood"] is False and "reading" in too_far["hints"][0]
