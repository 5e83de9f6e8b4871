"""The API tests' shared set-up: a tiny HOLOCRM_HOME, an in-process client, error checks, a free port."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import numpy as np
import polars as pl
from fastapi.testclient import TestClient

from holocrm_api import ServingSettings, create_app
from holocrm_core.warehouse import Warehouse

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def build_home(home, contacts: int = 6) -> Warehouse:
    """A tiny HOLOCRM_HOME: staged contacts/deals, precomputed scores and duplicate candidates."""
    wh = Warehouse(home / "warehouse")
    ids = [f"C{i}" for i in range(1, contacts + 1)]
    wh.write(
        "staged_contacts",
        pl.DataFrame(
            {
                "contact_id": ids,
                "full_name": [f"Person {i}" for i in range(1, contacts + 1)],
                "lifecycle_status": ["lead", "lead", "qualified", "customer", "lead", "disqualified"][
                    :contacts
                ],
                "seniority": ["vp", "manager", "c_level", None, "director", "individual"][:contacts],
                "created_at": [T0] * contacts,
                "updated_at": [T0] * contacts,
            }
        ),
    )
    wh.write(
        "staged_deals",
        pl.DataFrame(
            {
                "deal_id": ["D1", "D2", "D3"],
                "title": ["Fleet renewal", "Pilot", "Expansion"],
                "contact_id": ["C1", "C2", "C3"],
                "stage": ["proposal", "negotiation", "won"],
                "created_at": [T0, T0, T0],
            }
        ),
    )
    wh.write(
        "scored_leads",
        pl.DataFrame(
            {
                "contact_id": ["C1", "C2", "C3"],
                "score": [0.82, 0.41, 0.12],
                "band": ["hot", "warm", "cold"],
                "reasons": [
                    ["+ replied to 3 emails", "- no meeting yet"],
                    ["+ VP title"],
                    ["- no activity in 90 days"],
                ],
            }
        ),
    )
    wh.write(
        "scored_deals",
        pl.DataFrame(
            {
                "deal_id": ["D1", "D2"],
                "score": [0.7, 0.3],
                "band": ["hot", "warm"],
                "reasons": [["+ proposal sent"], ["- stalled 40 days"]],
            }
        ),
    )
    wh.write(
        "duplicate_candidates",
        pl.DataFrame(
            {
                "entity_type": ["contact", "contact", "company"],
                "id_a": ["C1", "C2", "A1"],
                "id_b": ["C5", "C6", "A2"],
                "score": [0.97, 0.55, 0.9],
                "match_weight": [9.1, 1.2, 7.5],
                "reasons": [["same e-mail"], ["similar surname"], ["same domain"]],
            }
        ),
    )
    return wh


def make_client(home, **overrides) -> TestClient:
    settings = ServingSettings.from_env(home=home, reload_interval_s=0, **overrides)
    return TestClient(create_app(settings), raise_server_exceptions=False)


def assert_error(response, status: int, error: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    assert "Traceback" not in response.text and 'File "' not in response.text
    return body


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_index(home, wh, model: str = "") -> None:
    """The home's similarity index over random vectors; ``model``: the embedding model id it records."""
    from holocrm_core.store import SimilarityStore
    from holocrm_core.text import entity_documents

    tables = {name.removeprefix("staged_"): wh.read(name) for name in ("staged_contacts", "staged_deals")}
    docs = entity_documents(tables)
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(len(docs), 384)).astype(np.float32)
    ids = docs["entity_id"].to_list()
    # C5 is a near copy of C1: it must come back as C1's most similar contact.
    vectors[ids.index("C5")] = vectors[ids.index("C1")] + 0.05 * rng.normal(size=384)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    SimilarityStore(str(home / "lancedb")).sync(docs, vectors, model=model)


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
