"""Soak: a mixed load (reads, writes, NL questions, search) held for --minutes, with a model reload and a new
index version mid-way. Prints JSON: failed requests, lost writes, RSS growth, latency per kind.

Builds (or reuses, ``--home``) the same home as ``benchmarks/serving.py`` (generated export, staged,
heuristic scores, real duplicate candidates, a LanceDB index with clustered random vectors), starts
``holocrm serve`` on loopback and drives it with ``--clients`` keep-alive clients. Half-way it forces a
reload (``POST /api/admin/reload?force=true``) and writes a new version of the contact index (vectors of 5%
of the contacts changed), then reloads again so the new version is served. Every write carries an
idempotency key; at the end every acknowledged key must be in the server's logs exactly once.

    .venv/bin/python benchmarks/soak.py --minutes 30             # the issue's soak (100k contacts)
    .venv/bin/python benchmarks/soak.py --minutes 2 --contacts 3000 --home /tmp/soak

Passes when: zero failed requests (anything but 2xx, or no answer), zero lost or duplicated writes, server
RSS growth < 10% (from the end of the first tenth of the run, once caches are warm, to the end).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.serving import QUESTIONS, SEARCH_QUERIES, RawHTTPConnection, build_home  # noqa: E402
from holocrm_core.warehouse import Warehouse  # noqa: E402

MIX = (  # kind, weight
    ("similar", 3),
    ("score", 3),
    ("recommendation", 2),
    ("duplicates", 1),
    ("search", 2),
    ("nl", 2),
    ("action_outcome", 2),
    ("close_deal", 1),
)


def server_rss_mb(pid: int) -> float:
    import psutil

    try:
        proc = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20
    except psutil.NoSuchProcess:
        return float("nan")


def start_server(home: Path, workers: int) -> tuple[subprocess.Popen, str]:
    import httpx

    from benchmarks.serving import free_port

    port = free_port()
    env = {
        **os.environ,
        "HOLOCRM_HOME": str(home),
        "MLFLOW_TRACKING_URI": os.environ.get(
            "HOLOCRM_BENCH_MLFLOW", f"sqlite:///{home / 'mlruns' / 'mlflow.db'}"
        ),
    }
    exe = Path(sys.executable).with_name("holocrm")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "holocrm_cli"]
    proc = subprocess.Popen(
        [*command, "serve", "--host", "127.0.0.1", "--port", str(port), "--reload-interval", "0"]
        + ["--log-level", "warning", "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError("server did not start within 300 s")


def new_index_version(home: Path, fraction: float = 0.05, seed: int = 5) -> dict:
    """Write a new version of the contact index: the vectors of ``fraction`` of the contacts change."""
    import polars as pl

    from holocrm_core.store import SimilarityStore
    from holocrm_core.text import entity_documents

    wh = Warehouse(home / "warehouse")
    tables = {name: wh.read(f"staged_{name}") for name in ("contacts", "companies")}
    docs = entity_documents(tables).filter(pl.col("entity_type") == "contact")
    store = SimilarityStore(str(home / "lancedb"))
    before = store.versions().get("contact")
    vectors = store.entity_vectors("contact")
    rng = np.random.default_rng(seed)
    matrix = np.stack(
        [vectors.vector(vectors.position_of(i, "contact")) for i in docs["entity_id"].to_list()]
    )
    changed = rng.random(len(docs)) < fraction
    matrix[changed] += 0.2 * rng.normal(size=(int(changed.sum()), matrix.shape[1])).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    stamp = f" (updated {time.time():.0f})"  # the index keys rows by content hash: a new text, a new hash
    docs = docs.with_columns(
        pl.when(pl.Series(changed)).then(pl.col("text") + stamp).otherwise(pl.col("text")).alias("text"),
        pl.when(pl.Series(changed))
        .then(pl.col("content_hash") + stamp)
        .otherwise(pl.col("content_hash"))
        .alias("content_hash"),
    )
    started = time.perf_counter()
    SimilarityStore(str(home / "lancedb")).sync(docs, matrix.astype(np.float32))
    after = SimilarityStore(str(home / "lancedb")).versions().get("contact")
    return {
        "from": before,
        "to": after,
        "changed": int(changed.sum()),
        "seconds": round(time.perf_counter() - started, 1),
    }


async def soak(url: str, ids: dict, seconds: float, clients: int, midway, pid: int) -> dict:
    host, port = url.removeprefix("http://").split(":")
    kinds = [k for k, w in MIX for _ in range(w)]
    deals = list(ids["open_deals"])
    random.Random(1).shuffle(deals)
    deal_iter = iter(deals * 1000)
    outcome_of: dict[str, str] = dict(ids["closed_before"])  # a deal closed earlier keeps its outcome
    counter = iter(range(10**9))
    stats = {k: {"ok": 0, "failed": 0, "latencies": []} for k, _ in MIX}
    failures: dict[str, int] = {}
    acknowledged: dict[str, set[str]] = {"actions": set(), "outcomes": set()}
    started = time.monotonic()
    deadline = started + seconds
    rss: list[tuple[float, float]] = []
    events: list[dict] = []

    def request_for(kind: str):
        if kind == "similar":
            return "GET", f"/api/contacts/{random.choice(ids['contacts'])}/similar?limit=10", None, None
        if kind == "score":
            return "GET", f"/api/contacts/{random.choice(ids['leads'])}/score", None, None
        if kind == "recommendation":
            return "GET", f"/api/contacts/{random.choice(ids['contacts'])}/recommendation", None, None
        if kind == "duplicates":
            return "GET", "/api/duplicates?limit=20", None, None
        if kind == "search":
            query = (
                random.choice(SEARCH_QUERIES)
                if random.random() < 0.5
                else f"{random.choice(SEARCH_QUERIES)} {next(counter)}"
            )
            return "POST", "/api/search/semantic", {"query": query, "limit": 10}, None
        if kind == "nl":
            return (
                "POST",
                "/api/query/natural-language",
                {"question": random.choice(QUESTIONS), "limit": 20},
                None,
            )
        key = f"soak-{os.getpid()}-{next(counter)}"
        if kind == "action_outcome":
            body = {
                "contact_id": random.choice(ids["contacts"]),
                "action": random.choice(["email", "call"]),
                "reward": float(random.random() < 0.2),
                "idempotency_key": key,
            }
            return "POST", "/api/actions/outcome", body, ("actions", key)
        deal = next(deal_iter)
        outcome = outcome_of.setdefault(deal, random.choice(["won", "lost"]))
        return (
            "POST",
            f"/api/deals/{deal}/close",
            {"outcome": outcome, "idempotency_key": key},
            ("outcomes", key),
        )

    async def client():
        conn = RawHTTPConnection(host, int(port))
        while time.monotonic() < deadline:
            kind = random.choice(kinds)
            method, path, body, write = request_for(kind)
            payload = None if body is None else json.dumps(body).encode()
            t = time.perf_counter()
            try:
                status = await asyncio.wait_for(conn.request(method, path, payload), 30)
            except Exception as exc:  # noqa: BLE001 (every failure is counted and named)
                status = type(exc).__name__
            elapsed = time.perf_counter() - t
            if isinstance(status, int) and 200 <= status < 300:
                stats[kind]["ok"] += 1
                stats[kind]["latencies"].append(elapsed)
                if write and status == 201 or write and status == 200 and kind == "action_outcome":
                    acknowledged[write[0]].add(write[1])
            else:
                stats[kind]["failed"] += 1
                failures[f"{kind}:{status}"] = failures.get(f"{kind}:{status}", 0) + 1
        await conn.close()

    async def watcher():
        did_midway = False
        while time.monotonic() < deadline:
            rss.append((round(time.monotonic() - started, 1), round(server_rss_mb(pid), 1)))
            if not did_midway and time.monotonic() - started >= seconds / 2:
                did_midway = True
                events.extend(await asyncio.to_thread(midway))
            await asyncio.sleep(min(5.0, max(0.5, seconds / 100)))

    await asyncio.gather(watcher(), *(client() for _ in range(clients)))
    return {"stats": stats, "failures": failures, "acknowledged": acknowledged, "rss": rss, "events": events}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--home", default="", help="reuse/keep this HOLOCRM_HOME (default: a temp dir)")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("LANCEDB_LOG", "error")

    tmp = None if args.home else tempfile.TemporaryDirectory(prefix="holocrm-soak-")
    home = Path(args.home or tmp.name)
    marker = home / f"bench-{args.contacts}.json"
    counts = json.loads(marker.read_text()) if marker.exists() else build_home(home, args.contacts)
    marker.write_text(json.dumps(counts))
    wh = Warehouse(home / "warehouse")
    ids = {
        "contacts": wh.read("staged_contacts")["contact_id"].to_list(),
        "leads": wh.read("scored_leads")["contact_id"].to_list(),
        "open_deals": wh.read("scored_deals")["deal_id"].to_list(),
    }
    logs = home / "logs"
    before = {name: _keys(logs / f"{name}.ndjson") for name in ("actions", "outcomes")}
    ids["closed_before"] = _closed_deals(logs / "outcomes.ndjson")

    proc, url = start_server(home, args.workers)
    load_before = os.getloadavg()

    def midway() -> list[dict]:
        import httpx

        done = []
        t = time.perf_counter()
        r = httpx.post(f"{url}/api/admin/reload", params={"force": "true"}, timeout=120)
        done.append(
            {"event": "model reload", "status": r.status_code, "seconds": round(time.perf_counter() - t, 2)}
        )
        version = new_index_version(home)
        t = time.perf_counter()
        r = httpx.post(f"{url}/api/admin/reload", timeout=120)
        served = httpx.get(f"{url}/health", timeout=10).json().get("index_versions", {})
        done.append(
            {
                "event": "new index version",
                **version,
                "reload_status": r.status_code,
                "served_contact_version": served.get("contact"),
                "reload_seconds": round(time.perf_counter() - t, 2),
            }
        )
        return done

    try:
        out = asyncio.run(soak(url, ids, args.minutes * 60, args.clients, midway, proc.pid))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)

    lost, duplicated = {}, {}
    for name in ("actions", "outcomes"):
        keys = _keys(logs / f"{name}.ndjson")
        lost[name] = len(out["acknowledged"][name] - set(keys))
        duplicated[name] = len(keys) - len(set(keys))
    rss = [m for _, m in out["rss"] if m == m]
    warm = rss[max(1, len(rss) // 10)] if len(rss) > 2 else (rss[0] if rss else float("nan"))
    growth = (rss[-1] - warm) / warm * 100 if rss else float("nan")
    # the mid-way swap loads a second snapshot: growth after it settles says whether memory keeps creeping
    half = [m for t, m in out["rss"] if m == m and t >= args.minutes * 60 * 0.6]
    after_swap = (half[-1] - half[0]) / half[0] * 100 if len(half) > 1 else float("nan")
    step = max(1, len(out["rss"]) // 20)
    timeline = out["rss"][::step] + ([out["rss"][-1]] if out["rss"] and len(out["rss"]) % step != 1 else [])
    kinds = {}
    for kind, s in out["stats"].items():
        ms = np.array(s["latencies"]) * 1000
        kinds[kind] = {
            "ok": s["ok"],
            "failed": s["failed"],
            "p50_ms": round(float(np.percentile(ms, 50)), 1) if len(ms) else None,
            "p95_ms": round(float(np.percentile(ms, 95)), 1) if len(ms) else None,
            "p99_ms": round(float(np.percentile(ms, 99)), 1) if len(ms) else None,
        }
    failed = sum(s["failed"] for s in out["stats"].values())
    total = failed + sum(s["ok"] for s in out["stats"].values())
    result = {
        "benchmark": "soak",
        "minutes": args.minutes,
        "contacts": counts.get("contacts"),
        "clients": args.clients,
        "workers": args.workers,
        "cpu_count": os.cpu_count(),
        "load_average_1m": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "requests": total,
        "requests_per_s": round(total / (args.minutes * 60), 1),
        "failed_requests": failed,
        "failures": out["failures"],
        "writes_acknowledged": {k: len(v) for k, v in out["acknowledged"].items()},
        "writes_before": {k: len(v) for k, v in before.items()},
        "lost_writes": lost,
        "duplicated_writes": duplicated,
        "rss_mb": {
            "after_warmup": round(warm, 1),
            "end": round(rss[-1], 1) if rss else None,
            "max": round(max(rss), 1) if rss else None,
            "samples": len(rss),
        },
        "rss_growth_pct": round(growth, 2),
        "rss_growth_after_swap_pct": round(after_swap, 2),
        "rss_timeline_s_mb": timeline,
        "events": out["events"],
        "by_kind": kinds,
        "passed": {
            "zero_failed_requests": failed == 0,
            "zero_lost_writes": sum(lost.values()) == 0,
            "zero_duplicated_writes": sum(duplicated.values()) == 0,
            "rss_growth_under_10pct": growth < 10,
            "new_index_served": any(
                e.get("event") == "new index version" and e.get("served_contact_version") == e.get("to")
                for e in out["events"]
            ),
        },
    }
    print(json.dumps(result, indent=2))
    if tmp is not None:
        tmp.cleanup()


def _closed_deals(path: Path) -> dict[str, str]:
    """deal id -> outcome, for the deals an earlier run of this home already closed (the log's fold)."""
    from holocrm_api.outcome_log import read_log
    from holocrm_core.deal_states import latest_valid_outcomes

    return {r["deal_id"]: r["outcome"] for r in latest_valid_outcomes(read_log(path))}


def _keys(path: Path) -> list[str]:
    from holocrm_api.outcome_log import read_log

    return [r["idempotency_key"] for r in read_log(path)]


if __name__ == "__main__":
    main()
