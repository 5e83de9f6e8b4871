"""Production metrics, request ids and JSON logs of the API (holocrm_api.metrics, holocrm_api.observability)."""

from __future__ import annotations

import io
import json
import logging
import os
import time

import pytest
from fastapi.testclient import TestClient

from holocrm_api import ServingSettings, create_app
from holocrm_api.observability import configure_logging


def _client(home) -> TestClient:
    settings = ServingSettings.from_env(home=home, reload_interval_s=0)
    return TestClient(create_app(settings), raise_server_exceptions=False)


@pytest.fixture
def client(home):
    with _client(home) as c:
        yield c


def _sample(text: str, name: str, **labels) -> float | None:
    """The value of one sample in the exposition text (labels must all match)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_http_metrics_by_route_template_and_status_class(client):
    for contact in ("C1", "C2", "NOPE"):
        client.get(f"/api/contacts/{contact}/score")
    text = client.get("/metrics").text
    route = "/api/contacts/{contact_id}/score"
    assert _sample(text, "http_requests_total", handler=route, status="2xx", method="GET") == 2.0
    assert _sample(text, "http_requests_total", handler=route, status="4xx") == 1.0
    count = _sample(text, "http_request_duration_seconds_count", handler=route)
    assert count == 3.0
    assert (
        'http_request_duration_seconds_bucket{handler="/api/contacts/{contact_id}/score",le="0.005"' in text
    )
    assert _sample(text, "holocrm_requests_in_flight") == 1.0  # the scrape itself
    assert 'handler="/metrics"' not in text  # scrapes do not count themselves


def test_http_metrics_label_requests_answered_before_or_without_a_route(home):
    """The route template even when the request guard answered before routing (401, 413) or the method was
    wrong (405); ``none`` for no route and for a redirect to a path's slash twin (no series per raw path);
    a mount by its prefix; answers counted only for a 200 of a counted route."""
    from tests.support.api import make_client

    with make_client(home, api_keys=("k",)) as c:
        key = {"X-API-Key": "k"}
        assert c.get("/api/contacts/C1/score").status_code == 401  # no key: answered before routing
        assert c.get("/api/contacts/C1/score", headers=key).status_code == 200
        assert c.get("/api/contacts/NOPE/score", headers=key).status_code == 404
        assert c.post("/api/contacts/C1/score", headers=key).status_code == 405
        big = b"x" * 2_000_000
        assert c.post("/api/search/semantic", content=big, headers=key).status_code == 413
        assert c.get("/no/such/path", headers=key).status_code == 404
        slash = c.get("/api/contacts/C7/score/", headers=key, follow_redirects=False)
        assert slash.status_code == 307
        assert c.get("/docs-assets/swagger-ui.css").status_code == 200
        text = c.get("/metrics").text
    score = "/api/contacts/{contact_id}/score"
    assert _sample(text, "http_requests_total", handler=score, method="GET", status="4xx") == 2.0
    assert _sample(text, "http_requests_total", handler=score, method="GET", status="2xx") == 1.0
    assert _sample(text, "http_requests_total", handler=score, method="POST", status="4xx") == 1.0
    assert _sample(text, "http_requests_total", handler="/api/search/semantic", status="4xx") == 1.0
    assert _sample(text, "http_requests_total", handler="none", status="4xx") == 1.0
    assert _sample(text, "http_requests_total", handler="none", status="3xx") == 1.0
    assert _sample(text, "http_requests_total", handler="/docs-assets", status="2xx") == 1.0
    assert "C7" not in text and "/no/such/path" not in text
    assert _sample(text, "http_request_duration_seconds_count", handler=score, method="GET") == 3.0
    assert 'le="+Inf"' in text and 'le="0.001"' in text
    counted = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("holocrm_predictions_total{")
    )
    assert counted == 1.0  # the one 200 score, not the 404


def test_answers_are_counted_by_band_and_by_action_and_policy(client):
    bands = [client.get(f"/api/contacts/C{i}/score").json()["band"] for i in (1, 2, 3)]
    picks = [client.get("/api/contacts/C1/recommendation").json() for _ in range(4)]
    text = client.get("/metrics").text
    for band in set(bands):
        assert _sample(text, "holocrm_predictions_total", band=band) == bands.count(band)
    total = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("holocrm_recommendations_total{")
    )
    assert total == 4.0
    first = picks[0]
    assert _sample(text, "holocrm_recommendations_total", action=first["action"]) >= 1.0


def test_monitoring_figures_are_read_from_disk_at_scrape_time(client, home):
    monitoring = home / "monitoring"
    monitoring.mkdir(exist_ok=True)
    drift = {
        "reports": [
            {
                "name": "deals",
                "severity": "block",
                "columns": [
                    {"column": "value", "psi": 1.9, "distance": 0.8, "distance_name": "wasserstein_sd"}
                ],
            }
        ]
    }
    (monitoring / "drift.json").write_text(json.dumps(drift))
    (monitoring / "decay.json").write_text(
        json.dumps({"checks": [{"model": "lead", "failed": True, "auc": 0.61}]})
    )
    text = client.get("/metrics").text
    assert _sample(text, "holocrm_drift_score", report="deals", column="value", measure="psi") == 1.9
    assert _sample(text, "holocrm_drift_severity", report="deals") == 2.0
    assert _sample(text, "holocrm_decay_failing", model="lead") == 1.0
    assert _sample(text, "holocrm_asset_stale", asset="index") == 1.0  # the tiny home has no LanceDB table
    assert _sample(text, "holocrm_asset_age_seconds", asset="lead_model") < 3600
    assert _sample(text, "holocrm_outcome_log_lag_seconds") == 0.0


def test_outcome_log_lag_grows_when_outcomes_wait(home):
    from holocrm_api.metrics import outcome_log_lag
    from holocrm_core.settings import HoloPaths

    paths = HoloPaths(home).ensure()
    dataset = paths.warehouse / "outcome_dataset.parquet"
    dataset.write_bytes(b"x")
    old = time.time() - 600
    os.utime(dataset, (old, old))
    assert outcome_log_lag(paths) == 0.0  # no outcome logged
    paths.outcomes_log.write_text('{"deal_id": "D1"}\n')
    assert outcome_log_lag(paths) == pytest.approx(600, abs=5)


def test_request_id_is_echoed_and_stamped_on_the_access_line(home):
    stream = io.StringIO()
    with _client(home) as client:
        configure_logging(level="INFO", fmt="json", stream=stream)
        try:
            given = client.get("/api/contacts/C1/score", headers={"X-Request-ID": "abc-123"})
            made = client.get("/api/contacts/C2/score", headers={"X-Request-ID": "bad id\n"})
        finally:
            configure_logging(level="WARNING")
    assert given.headers["x-request-id"] == "abc-123"
    assert len(made.headers["x-request-id"]) == 32  # an unusable id is replaced, not echoed
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "holocrm.access"]
    assert access[0]["request_id"] == "abc-123" and access[0]["status"] == 200
    assert access[0]["route"] == "/api/contacts/{contact_id}/score" and access[0]["ms"] >= 0
    assert access[1]["request_id"] == made.headers["x-request-id"]


def test_logs_are_quiet_by_default_and_settings_are_checked():
    logger = configure_logging()
    assert logger.level == logging.WARNING
    assert not logging.getLogger("holocrm.access").isEnabledFor(logging.INFO)
    with pytest.raises(ValueError, match="not a log level"):
        configure_logging(level="LOUD")
    with pytest.raises(ValueError, match="json or text"):
        configure_logging(fmt="xml")
    configure_logging()


def test_health_names_stale_assets(client, home):
    body = client.get("/health").json()
    freshness = body["freshness"]
    by_name = {a["name"]: a for a in freshness["assets"]}
    assert "index" in freshness["stale"] and "never built" in by_name["index"]["words"]
    assert not by_name["lead_model"]["stale"] and by_name["lead_model"]["age_hours"] < 1
