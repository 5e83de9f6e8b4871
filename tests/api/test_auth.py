"""Auth that cannot be half on: a key set means auth on; every presented key checked; rotation; rate limits."""

from __future__ import annotations

import os
import time

import pytest

from holocrm_api import ServingSettings, create_app
from tests.support.api import assert_error, make_client


def test_a_key_set_alone_turns_auth_on(home, monkeypatch):
    monkeypatch.setenv("HOLOCRM_API_KEY", "only-this")  # no HOLOCRM_API_KEY_REQUIRED: the issue-11 trap
    with make_client(home) as c:
        assert_error(c.get("/api/contacts/C1/score"), 401, "unauthorized")
        assert c.get("/api/contacts/C1/score", headers={"X-API-Key": "only-this"}).status_code == 200
        assert c.get("/health", headers={"X-API-Key": "only-this"}).json()["auth"] == "api_key"


def test_a_wrong_header_cannot_shadow_a_right_one(home):
    with make_client(home, api_keys=("right",)) as c:
        both = {"X-API-Key": "wrong", "Authorization": "Bearer right"}
        assert c.get("/api/contacts/C1/score", headers=both).status_code == 200
        reverse = {"X-API-Key": "right", "Authorization": "Bearer wrong"}
        assert c.get("/api/contacts/C1/score", headers=reverse).status_code == 200
        assert_error(
            c.get("/api/contacts/C1/score", headers={"X-API-Key": "wrong", "Authorization": "Bearer wrong"}),
            401,
            "unauthorized",
        )
        assert_error(
            c.get("/api/contacts/C1/score", headers={"Authorization": "Basic cmlnaHQ="}), 401, "unauthorized"
        )


def test_health_shows_only_the_status_without_a_key(home):
    with make_client(home, api_keys=("k",)) as c:
        assert c.get("/health").json() == {"status": "degraded"}
        detailed = c.get("/health", headers={"Authorization": "Bearer k"}).json()
        assert detailed["tables"]["staged_contacts"] == 6 and "models" in detailed and "logs" in detailed
        assert c.get("/metrics").status_code == 200  # scrapers and probes need no secret


def test_openapi_declares_the_api_key_schemes(home):
    with make_client(home, api_keys=("k",)) as c:
        spec = c.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["ApiKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": schemes["ApiKeyHeader"]["description"],
    }
    assert schemes["BearerKey"]["scheme"] == "bearer"
    score = spec["paths"]["/api/contacts/{contact_id}/score"]["get"]
    assert {"ApiKeyHeader": []} in score["security"] and {"BearerKey": []} in score["security"]
    assert {"401", "429"} <= set(score["responses"])
    assert {} in spec["paths"]["/health"]["get"]["security"]  # health: a key is optional


def test_keys_from_a_file_rotate_without_a_restart(home, tmp_path):
    key_file = tmp_path / "keys.txt"
    key_file.write_text("# field team\nfirst-key\n")
    with make_client(home, api_key_file=key_file) as c:
        assert c.get("/api/contacts/C1/score", headers={"X-API-Key": "first-key"}).status_code == 200
        key_file.write_text("second-key\n")
        later = time.time() + 5  # a distinct mtime even on a coarse-grained file system
        os.utime(key_file, (later, later))
        assert_error(c.get("/api/contacts/C1/score", headers={"X-API-Key": "first-key"}), 401, "unauthorized")
        assert c.get("/api/contacts/C1/score", headers={"X-API-Key": "second-key"}).status_code == 200
        key_file.write_text("")  # emptied: auth stays on and refuses everyone rather than opening up
        os.utime(key_file, (later + 5, later + 5))
        assert_error(
            c.get("/api/contacts/C1/score", headers={"X-API-Key": "second-key"}), 401, "unauthorized"
        )


def test_required_without_any_key_refuses_to_start(home, tmp_path):
    with pytest.raises(ValueError, match="HOLOCRM_API_KEY"):
        create_app(ServingSettings.from_env(home=home, api_key_required=True))
    with pytest.raises(ValueError, match="does not exist"):
        create_app(ServingSettings.from_env(home=home, api_key_file=tmp_path / "absent.txt"))


def test_rate_limit_per_key_answers_429_with_retry_after(home):
    with make_client(home, api_keys=("a", "b"), rate_limit_per_minute=60, rate_limit_burst=3) as c:
        statuses = [c.get("/api/contacts/C1/score", headers={"X-API-Key": "a"}).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = c.get("/api/contacts/C1/score", headers={"X-API-Key": "a"})
        body = assert_error(limited, 429, "rate_limited")
        assert 1 <= int(limited.headers["Retry-After"]) <= 2 and "retry" in body["detail"]
        # Another key has its own bucket.
        assert c.get("/api/contacts/C1/score", headers={"X-API-Key": "b"}).status_code == 200
