"""Two uvicorn workers in Prometheus multiprocess mode: /metrics on either one counts every worker's requests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.slow
REQUESTS = 40


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _score_requests(text: str) -> float:
    for family in text_string_to_metric_families(text):
        if family.name == "http_requests":
            return sum(
                s.value
                for s in family.samples
                if s.name == "http_requests_total"
                and s.labels.get("handler") == "/api/contacts/{contact_id}/score"
            )
    return 0.0


def test_two_workers_share_their_counts(home, tmp_path):
    folder = tmp_path / "prom"
    folder.mkdir()
    port = _free_port()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder), "HOLOCRM_RELOAD_INTERVAL_S": "0"}
    env["HOLOCRM_WARM_QUERY_EMBEDDER"] = "false"
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - open for the server process's whole life
    command = [sys.executable, "-m", "uvicorn", "holocrm_api.main:create_app", "--factory", "--workers", "2"]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        else:
            pytest.fail((tmp_path / "server.log").read_text())
        time.sleep(3)  # the second worker may still be starting; give it time to accept
        for _ in range(REQUESTS):
            with httpx.Client() as client:  # a new connection each time, so both workers get some
                assert client.get(f"{url}/api/contacts/C1/score").status_code == 200
        scrapes = []
        for _ in range(6):
            with httpx.Client() as client:
                scrapes.append(_score_requests(client.get(f"{url}/metrics").text))
        assert scrapes == [REQUESTS] * 6, scrapes  # every scrape, whichever worker answers, sees all of them
        pids = {name.rsplit("_", 1)[-1] for name in os.listdir(folder) if name.startswith("counter_")}
        assert len(pids) >= 2, f"one worker answered everything: {os.listdir(folder)}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
