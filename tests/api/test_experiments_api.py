"""Experiments over HTTP: create, sticky assignment, one exposure per served answer, report, promotion gate."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from holocrm_api import ServingSettings, create_app

BODY = {
    "name": "cadence-vs-policy",
    "unit": "contact",
    "variants": [
        {"name": "control", "strategy": "decisions.cadence"},
        {"name": "policy", "strategy": "decisions.policy"},
    ],
    "primary_metric": "response_rate",
}


def _client(home) -> TestClient:
    return TestClient(create_app(ServingSettings.from_env(home=home)), raise_server_exceptions=False)


def test_assignment_is_sticky_and_each_answer_is_exposed_once(home):
    with _client(home) as client:
        created = client.post("/api/experiments", json=BODY)
        assert created.status_code == 201, created.text
        assert client.post("/api/experiments", json=BODY).status_code == 409
        url = "/api/experiments/cadence-vs-policy/assignment"
        first = client.get(url, params={"unit_id": "c-1", "answer_id": "a-1"}).json()
        retry = client.get(url, params={"unit_id": "c-1", "answer_id": "a-1"}).json()
        second = client.get(url, params={"unit_id": "c-1", "answer_id": "a-2"}).json()
        assert first["exposure_logged"] and not retry["exposure_logged"] and second["exposure_logged"]
        assert first["variant"] == retry["variant"] == second["variant"]
        variants = {client.get(url, params={"unit_id": f"c-{i}"}).json()["variant"] for i in range(40)}
        assert variants == {"control", "policy"}
    lines = (home / "logs" / "exposures.ndjson").read_text().splitlines()
    keys = [json.loads(line)["idempotency_key"] for line in lines]
    assert len(keys) == len(set(keys)) == 42  # a-1 once, a-2, and 40 served answers
    # a restart assigns the same way
    with _client(home) as client:
        again = client.get(url, params={"unit_id": "c-1"}).json()
        assert again["variant"] == first["variant"]
        report = client.get("/api/experiments/cadence-vs-policy/report")
        assert report.status_code == 200, report.text
        assert sum(report.json()["units"].values()) == 40  # c-0 ... c-39


def test_unknown_experiment_and_bad_definitions_are_refused(home):
    with _client(home) as client:
        assert client.get("/api/experiments/nope/report").status_code == 404
        bad = {**BODY, "primary_metric": "clicks"}
        answer = client.post("/api/experiments", json=bad)
        assert answer.status_code == 422 and "primary_metric" in answer.text


def test_promotion_without_a_winner_is_refused(home):
    with _client(home) as client:
        client.post("/api/experiments", json=BODY)
        answer = client.post("/api/experiments/cadence-vs-policy/promote")
        assert answer.status_code == 409
        assert "nothing to promote" in answer.json()["detail"]
