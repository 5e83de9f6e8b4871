"""Outcomes that cannot contradict: one outcome per deal, repeats idempotent, reopening explicit."""

from __future__ import annotations

import pytest

from holocrm_api.outcome_log import read_log
from holocrm_core.deal_states import latest_valid_outcomes
from tests.support.api import api_client, expect_error


@pytest.fixture
def client(home):
    with api_client(home) as c:
        yield c


def close(client, deal, outcome, key=None):
    return client.post(
        f"/api/deals/{deal}/close", json={"outcome": outcome}, headers={"Idempotency-Key": key} if key else {}
    )


def logged(home) -> list[dict]:
    return list(read_log(home / "logs" / "outcomes.ndjson"))


def test_won_then_lost_is_409_with_the_current_state_and_nothing_logged(client, home):
    assert close(client, "D1", "won", "k1").status_code == 201
    body = expect_error(close(client, "D1", "lost", "k2"), 409, "deal_state_conflict")
    assert body["current"]["status"] == "won" and body["current"]["source"] == "field"
    assert body["current"]["idempotency_key"] == "k1" and "reopen" in body["detail"]
    assert [r["outcome"] for r in logged(home)] == ["won"]


def test_closing_again_with_the_same_outcome_is_idempotent(client, home):
    assert close(client, "D1", "won", "k1").status_code == 201
    again = close(client, "D1", "won", "another-key")
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["record"]["idempotency_key"] == "k1"
    assert len(logged(home)) == 1


def test_a_deal_the_export_holds_closed_is_refused_unless_reopened(client, home):
    # D3 is "won" in the export
    body = expect_error(close(client, "D3", "lost"), 409, "deal_state_conflict")
    assert body["current"] == {"deal_id": "D3", "status": "won", "source": "export"}
    assert close(client, "D3", "won").status_code == 200  # agrees with the export: nothing to record
    assert logged(home) == []
    reopened = client.post("/api/deals/D3/reopen", json={"reason": "customer backed out"})
    assert reopened.status_code == 201, reopened.text
    assert reopened.json()["record"]["kind"] == "reopen"
    assert reopened.json()["record"]["reopened_from"] == "won"
    assert close(client, "D3", "lost").status_code == 201
    assert [(r["kind"], r["outcome"]) for r in logged(home)] == [("reopen", None), ("close", "lost")]


def test_reopen_then_close_the_other_way_and_the_dataset_sees_the_latest(client, home):
    assert close(client, "D1", "won").status_code == 201
    assert client.post("/api/deals/D1/reopen", json={}, headers={"Idempotency-Key": "r1"}).status_code == 201
    replay = client.post("/api/deals/D1/reopen", json={}, headers={"Idempotency-Key": "r1"})
    assert replay.status_code == 200 and replay.json()["duplicate"] is True
    assert close(client, "D1", "lost").status_code == 201
    body = expect_error(client.post("/api/deals/D2/reopen", json={}), 409, "deal_state_conflict")
    assert body["current"]["status"] == "open"
    latest = latest_valid_outcomes(logged(home))
    assert [(r["deal_id"], r["outcome"]) for r in latest] == [("D1", "lost")]


def test_the_state_survives_a_restart_and_is_shared_by_two_servers(home):
    with api_client(home) as first, api_client(home) as second:
        assert close(first, "D2", "lost").status_code == 201
        expect_error(close(second, "D2", "won"), 409, "deal_state_conflict")  # the other process's close
    with api_client(home) as restarted:
        expect_error(close(restarted, "D2", "won"), 409, "deal_state_conflict")


def test_latest_valid_state_ignores_contradictions_in_an_old_log():
    records = [
        {"idempotency_key": "a", "deal_id": "D1", "outcome": "won"},
        {"idempotency_key": "b", "deal_id": "D1", "outcome": "lost"},  # written before the guard existed
        {"idempotency_key": "a", "deal_id": "D1", "outcome": "won"},
        {"idempotency_key": "c", "deal_id": "D2", "outcome": "lost"},
        {"idempotency_key": "d", "deal_id": "D2", "kind": "reopen"},
        {"idempotency_key": "e", "deal_id": "D3", "outcome": "lost"},
    ]
    latest = latest_valid_outcomes(records, export_stages={"D3": "won"})
    assert [(r["deal_id"], r["outcome"]) for r in latest] == [("D1", "won")]
