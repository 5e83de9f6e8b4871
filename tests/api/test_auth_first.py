"""Authentication before anything else; scoped keys: a read key cannot write or reload."""

from __future__ import annotations

import pytest

from holocrm_api.auth import parse_key
from tests.support.api import api_client, expect_error

KEYS = ("reader-key:read", "writer-key:write", "admin-key")


@pytest.fixture
def client(home):
    with api_client(home, api_keys=KEYS, max_body_bytes=1024) as c:
        yield c


def test_unauthenticated_requests_get_401_whatever_the_path_or_body(client):
    huge = b"x" * (10 * 1024 * 1024)
    for response in (
        client.post("/api/deals/D1/close", content=huge, headers={"content-type": "application/json"}),
        client.get("/api/no/such/path"),
        client.post("/api/no/such/path", content=huge),
        client.post("/api/deals/D1/close", json={"outcome": "maybe", "colour": "red"}),
        client.get("/api/contacts/C404/score"),
        client.get("/api/duplicates", params={"limit": 10**9}),
        client.get("/api/no/such/path", headers={"X-API-Key": "wrong"}),
    ):
        body = expect_error(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer" and "API key" in body["detail"]
    # with a key the same requests get their real answers: 413, 404, 422
    key = {"X-API-Key": "reader-key"}
    expect_error(
        client.post("/api/search/semantic", content=b"x" * 5000, headers=key), 413, "payload_too_large"
    )
    assert client.get("/api/no/such/path", headers=key).status_code == 404
    assert client.get("/api/contacts/C404/score", headers=key).status_code == 404
    # public: probes, scrapers, docs
    assert client.get("/health").json() == {"status": "degraded"}
    assert client.get("/metrics").status_code == 200 and client.get("/openapi.json").status_code == 200


def test_a_read_key_cannot_close_a_deal_record_an_outcome_or_reload(client, home):
    read = {"X-API-Key": "reader-key"}
    assert client.get("/api/contacts/C1/score", headers=read).status_code == 200
    for response in (
        client.post("/api/deals/D1/close", json={"outcome": "won"}, headers=read),
        client.post("/api/deals/D3/reopen", json={}, headers=read),
        client.post(
            "/api/actions/outcome", json={"contact_id": "C1", "action": "call", "reward": 1}, headers=read
        ),
        client.post("/api/admin/reload", headers=read),
    ):
        body = expect_error(response, 403, "forbidden")
        assert "read scope" in body["detail"]
    assert not (home / "logs" / "outcomes.ndjson").read_text()
    assert not (home / "logs" / "actions.ndjson").read_text()


def test_a_write_key_records_but_cannot_reload_and_an_admin_key_can(client):
    write = {"Authorization": "Bearer writer-key"}
    assert client.post("/api/deals/D1/close", json={"outcome": "won"}, headers=write).status_code == 201
    expect_error(client.post("/api/admin/reload", headers=write), 403, "forbidden")
    assert client.post("/api/admin/reload", headers={"X-API-Key": "admin-key"}).status_code == 200


def test_key_entries_and_their_scopes():
    assert parse_key("abc") == (b"abc", "admin")
    assert parse_key("abc:read") == (b"abc", "read")
    assert parse_key("abc write") == (b"abc", "write")
    assert parse_key("a:b:c") == (b"a:b:c", "admin")  # an unknown suffix is part of the key
