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


def build_writes_home(home, deals: int = 200, contacts: int = 50):
    """A home with many open deals and contacts: enough distinct targets for concurrent writes."""
    from datetime import UTC, datetime

    import polars as pl

    from holocrm_core.warehouse import Warehouse

    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    wh = Warehouse(home / "warehouse")
    contact_ids = [f"C{i}" for i in range(1, contacts + 1)]
    wh.write(
        "staged_contacts",
        pl.DataFrame(
            {
                "contact_id": contact_ids,
                "full_name": [f"Person {i}" for i in range(1, contacts + 1)],
                "lifecycle_status": ["lead"] * contacts,
                "created_at": [t0] * contacts,
                "updated_at": [t0] * contacts,
            }
        ),
    )
    wh.write(
        "staged_deals",
        pl.DataFrame(
            {
                "deal_id": [f"D{i}" for i in range(1, deals + 1)],
                "title": [f"Deal {i}" for i in range(1, deals + 1)],
                "contact_id": [contact_ids[i % contacts] for i in range(deals)],
                "stage": ["proposal"] * deals,
                "created_at": [t0] * deals,
            }
        ),
    )
    return wh
