"""An in-process API client over a home, and the shape every API refusal has."""

from __future__ import annotations

from fastapi.testclient import TestClient

from holocrm_api import ServingSettings, create_app


def api_client(home, **overrides) -> TestClient:
    settings = ServingSettings.from_env(home=home, reload_interval_s=0, **overrides)
    return TestClient(create_app(settings), raise_server_exceptions=False)


def expect_error(response, status: int, error: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    assert "Traceback" not in response.text
    return body
