"""Serving API over a real uvicorn on loopback: `holocrm serve`, auth, body limits, and no lost outcome on SIGKILL."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.api import build_home, free_port

HOLOCRM = Path(sys.executable).with_name("holocrm")


class Server:
    """`holocrm serve` in its own process group on a free loopback port."""

    def __init__(self, home: Path, *extra: str, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {
            **os.environ,
            "HOLOCRM_HOME": str(home),
            "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlruns' / 'mlflow.db'}",
            **(env or {}),
        }
        command = (
            [str(HOLOCRM)]
            if HOLOCRM.exists()
            else [sys.executable, "-c", "from holocrm_cli import main; main()"]
        )
        self.log = open(home / f"server-{self.port}.log", "wb")  # noqa: SIM115 - the server's stdout, closed in stop()
        self.process = subprocess.Popen(
            [
                *command,
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--reload-interval",
                "0",
                "--log-level",
                "warning",
                *extra,
            ],
            env=environment,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {(home / f'server-{self.port}.log').read_text()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("server did not answer /health within 90 s")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def logged_keys(path: Path) -> list[str]:
    keys = []
    for line in path.read_bytes().split(b"\n"):
        if line.strip():
            with contextlib.suppress(ValueError):  # a line torn by the kill was never acknowledged
                keys.append(json.loads(line)["idempotency_key"])
    return keys


@pytest.fixture
def home(tmp_path):
    build_home(tmp_path)
    return tmp_path


def test_real_server_answers_refuses_and_requires_keys_when_told(home):
    server = Server(home, "--api-key-required", env={"HOLOCRM_API_KEY": "field-key"})
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            assert set(http.get("/health").json()) == {"status"}
            assert http.get("/api/contacts/C1/score").status_code == 401
            key = {"X-API-Key": "field-key"}
            assert http.get("/health", headers=key).json()["auth"] == "api_key"
            score = http.get("/api/contacts/C1/score", headers=key)
            assert score.status_code == 200 and score.json()["band"] == "hot"
            assert http.get("/api/contacts/C404/score", headers=key).status_code == 404
            rec = http.get("/api/contacts/C2/recommendation", params={"posterior": True}, headers=key).json()
            assert rec["action"] in rec["posterior"]
            assert http.get("/api/duplicates", headers=key).json()["total"] == 3
            too_big = http.post("/api/deals/D1/close", headers=key, content=b"{" + b" " * 200_000 + b"}")
            assert too_big.status_code == 413 and too_big.json()["error"] == "payload_too_large"
            bad = http.post("/api/deals/D1/close", headers=key, json={"outcome": "tie"})
            assert bad.status_code == 422 and "outcome" in bad.json()["detail"]
            ok = http.post(
                "/api/deals/D1/close", headers={**key, "Idempotency-Key": "srv-1"}, json={"outcome": "won"}
            )
            assert ok.status_code == 201
            assert 'route="/api/deals/{deal_id}/close",status="201"' in http.get("/metrics").text
    finally:
        server.stop()


def field_result(n: int) -> tuple[str, dict]:
    """The n-th write of the stream: an action's result (many per contact; a deal has only one outcome)."""
    return "/api/actions/outcome", {"contact_id": f"C{1 + n % 6}", "action": "call", "reward": n % 2}


def test_sigkill_mid_stream_loses_no_acknowledged_outcome(home):
    """Stream field results from 4 clients (each key sent twice), SIGKILL the server, then check the log."""
    server = Server(home)
    acknowledged: set[str] = set()
    attempted: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(worker: int) -> None:
        with httpx.Client(base_url=server.url, timeout=5) as http:
            n = 0
            while not stop.is_set():
                key = f"w{worker}-{n}"
                n += 1
                with lock:
                    attempted.append(key)
                for _ in range(2):  # a retry of the same submission must be recorded once
                    path, body = field_result(n)
                    try:
                        r = http.post(path, json=body, headers={"Idempotency-Key": key})
                    except httpx.TransportError:
                        return
                    if r.status_code in (200, 201):
                        with lock:
                            acknowledged.add(key)

    workers = [threading.Thread(target=client, args=(w,)) for w in range(4)]
    for w in workers:
        w.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(acknowledged) < 150:
        time.sleep(0.05)
    server.kill()  # mid-stream: requests are in flight right now
    stop.set()
    for w in workers:
        w.join(timeout=10)
    server.log.close()

    assert len(acknowledged) >= 50, "the stream was too short to mean anything"
    log_path = home / "logs" / "actions.ndjson"
    keys = logged_keys(log_path)
    assert acknowledged <= set(keys), f"lost acknowledged writes: {sorted(acknowledged - set(keys))[:5]}"
    assert len(keys) == len(set(keys)), "a retried idempotency key was recorded twice"

    # After a restart every key, acknowledged or not, can be retried and still lands exactly once.
    restarted = Server(home)
    try:
        with httpx.Client(base_url=restarted.url, timeout=10) as http:
            for key in attempted[-20:] + sorted(acknowledged)[:20]:
                path, body = field_result(int(key.split("-")[1]) + 1)
                r = http.post(path, json=body, headers={"Idempotency-Key": key})
                if key in acknowledged:
                    assert r.status_code == 200 and r.json()["duplicate"] is True
                else:
                    assert r.status_code in (200, 201)
    finally:
        restarted.stop()
    final = logged_keys(log_path)
    assert len(final) == len(set(final))
    assert acknowledged <= set(final)
