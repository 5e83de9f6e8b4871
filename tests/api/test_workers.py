"""Two server workers writing the same logs, SIGKILLed mid-stream: nothing acknowledged is lost, nothing is
recorded twice, and no deal gets two outcomes."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import httpx
import pytest

from holocrm_api.outcome_log import read_log
from tests.support.api import build_writes_home
from tests.support.server import ServerGroup

DEALS = 120


@pytest.mark.slow  # two server processes start and stream for up to 40 s (about 30 s quiet, 95 s loaded)
def test_two_workers_killed_mid_stream_lose_and_duplicate_nothing(tmp_path):
    build_writes_home(tmp_path, deals=DEALS)
    server = ServerGroup(tmp_path, "--workers", "2")
    assert len(server.worker_pids()) >= 2
    acknowledged_actions: set[str] = set()
    acknowledged_closes: dict[str, tuple[str, str]] = {}  # key -> (deal, outcome) answered 201
    answered_states: dict[str, set[str]] = {}  # deal -> outcomes any answer said it has
    attempted: list[tuple[str, str, dict]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(worker: int) -> None:
        rng = random.Random(worker)
        # a fresh connection per request: the kernel spreads them over both workers
        n = 0
        while not stop.is_set():
            n += 1
            key = f"w{worker}-{n}"
            if n % 2:
                path = "/api/actions/outcome"
                body = {
                    "contact_id": f"C{rng.randint(1, 50)}",
                    "action": "email",
                    "reward": float(n % 3 == 0),
                }
            else:
                deal = f"D{rng.randint(1, DEALS)}"
                path, body = f"/api/deals/{deal}/close", {"outcome": rng.choice(["won", "lost"])}
            with lock:
                attempted.append((key, path, body))
            for _ in range(2):  # every submission retried once: it must be recorded once
                try:
                    r = httpx.post(server.url + path, json=body, headers={"Idempotency-Key": key}, timeout=5)
                except httpx.TransportError:
                    return
                with lock:
                    if path.endswith("/outcome") and r.status_code in (200, 201):
                        acknowledged_actions.add(key)
                    elif path.endswith("/close"):
                        deal = path.split("/")[3]
                        if r.status_code in (200, 201):
                            record = r.json()["record"]
                            answered_states.setdefault(deal, set()).add(record["outcome"])
                            if record["idempotency_key"] == key:
                                acknowledged_closes[key] = (deal, body["outcome"])
                        elif r.status_code == 409:
                            answered_states.setdefault(deal, set()).add(r.json()["current"]["status"])
                        else:
                            raise AssertionError(f"unexpected {r.status_code}: {r.text}")

    threads = [threading.Thread(target=client, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and len(acknowledged_actions) + len(acknowledged_closes) < 200:
        time.sleep(0.05)
    server.kill()  # both workers and their supervisor, mid-stream
    stop.set()
    for t in threads:
        t.join(timeout=15)

    assert len(acknowledged_actions) >= 40 and len(acknowledged_closes) >= 20, (
        "too short a stream to mean much"
    )
    actions = [r["idempotency_key"] for r in read_log(tmp_path / "logs" / "actions.ndjson")]
    closes = list(read_log(tmp_path / "logs" / "outcomes.ndjson"))
    close_keys = [r["idempotency_key"] for r in closes]
    assert acknowledged_actions <= set(actions), sorted(acknowledged_actions - set(actions))[:5]
    assert set(acknowledged_closes) <= set(close_keys), sorted(set(acknowledged_closes) - set(close_keys))[:5]
    assert len(actions) == len(set(actions)) and len(close_keys) == len(set(close_keys)), (
        "a key recorded twice"
    )
    per_deal = Counter(r["deal_id"] for r in closes)
    assert max(per_deal.values()) == 1, "a deal was given two outcomes"
    assert all(len(outcomes) == 1 for outcomes in answered_states.values()), "two answers contradicted"

    # Restarted (one process): every submission, acknowledged or not, can be retried and lands at most once.
    restarted = ServerGroup(tmp_path)
    try:
        with httpx.Client(base_url=restarted.url, timeout=10) as http:
            for key, path, body in attempted[-30:]:
                r = http.post(path, json=body, headers={"Idempotency-Key": key})
                assert r.status_code in (200, 201, 409), r.text
                if key in acknowledged_actions or key in acknowledged_closes:
                    assert r.status_code == 200 and r.json()["duplicate"] is True
    finally:
        restarted.stop()
    keys = [r["idempotency_key"] for r in read_log(tmp_path / "logs" / "outcomes.ndjson")]
    keys += [r["idempotency_key"] for r in read_log(tmp_path / "logs" / "actions.ndjson")]
    assert len(keys) == len(set(keys))
    assert max(Counter(r["deal_id"] for r in read_log(tmp_path / "logs" / "outcomes.ndjson")).values()) == 1
