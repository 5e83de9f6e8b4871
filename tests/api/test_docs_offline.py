"""The API's /docs and /redoc work without internet: their assets are served by the API itself.

A headless Chromium (Debian package `chromium`) opens /docs on a live server with every other host
unreachable, and must find the operations rendered by Swagger UI. Skipped, saying so, when Chromium is absent.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time

import pytest
from fastapi.testclient import TestClient

from holocrm_api import ServingSettings, create_app

CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
)
OPERATIONS = ("/api/search/semantic", "/api/duplicates", "/api/query/natural-language")


def _app(tmp_path):
    """The API over an empty home: no artifact is needed to document the operations."""
    return create_app(ServingSettings.from_env(home=tmp_path, reload_interval_s=0, load_models=False))


def test_docs_pages_name_only_local_assets(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with TestClient(_app(tmp_path)) as client:
        for page in ("/docs", "/redoc"):
            html = client.get(page).text
            assert "cdn." not in html and "googleapis" not in html, page
        docs = client.get("/docs").text
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
            url = next(part.split('"')[0] for part in docs.split('"/') if asset in part.split('"')[0])
            response = client.get("/" + url)
            assert response.status_code == 200 and len(response.content) > 10_000, asset
        assert client.get("/docs-assets/redoc.standalone.js").status_code == 200


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (Debian package `chromium`)")
def test_a_browser_without_network_finds_the_operations_in_docs(tmp_path, monkeypatch):
    import uvicorn

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(_app(tmp_path), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        dom = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                f"--user-data-dir={tmp_path / 'chromium'}",
                # the network is off: every host but this server's is unreachable
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--proxy-server=http://127.0.0.1:9",
                "--proxy-bypass-list=127.0.0.1",
                "--virtual-time-budget=15000",
                "--dump-dom",
                f"http://127.0.0.1:{port}/docs",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    finally:
        server.should_exit = True
        thread.join(10)
    assert "opblock" in dom, dom[:2000]  # Swagger UI rendered the operations (its script loaded locally)
    for path in OPERATIONS:
        assert path in dom, path
