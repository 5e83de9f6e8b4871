"""Serving latency: p50/p95/p99 per endpoint under 1, 10, 50 and 200 concurrent clients, on loopback only.

Builds (or reuses, ``--home``) a HOLOCRM_HOME from the generated export (``holocrm_core.synth``, 100,000
contacts by default), staged by the ingest; lead and deal scores written as the pipeline writes them, by the
weighted heuristic (no training round, to keep the setup light: the heuristic is what is served before the
first one); a LanceDB similarity index of the contacts' real documents with clustered random vectors (no
embedding time); duplicate candidates found by the real dedupe engine. Every endpoint's cell is a real
measurement: writes use payloads the API accepts (each deal is closed once, with one outcome; a repeat is an
idempotent 200), and semantic search is measured twice, with repeated queries (the cache) and with a fresh
query every request (batching, no cache). Starts
``holocrm serve`` on a free 127.0.0.1 port and drives it with a minimal keep-alive client. Bounded: each
(endpoint, concurrency) cell stops at ``--warmup`` + ``--requests`` requests or ``--cell-seconds`` seconds.
Each cell's first ``--warmup`` requests (default 50) are reported apart as ``cold`` (the first cell's are a
just-started server's first burst); its p50/p95/p99 are the steady state after them, ``all`` both together.

    .venv/bin/python benchmarks/serving.py                    # 100k contacts, prints JSON
    .venv/bin/python benchmarks/serving.py --contacts 20000 --requests 200

Targets (2-core machine): p95 < 50 ms for similar, score and recommendation and < 100 ms for NL questions
at 10 clients, < 250 ms at 50, zero errors at 200.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from holocrm_core.warehouse import Warehouse  # noqa: E402

QUESTIONS = [
    "how many leads do we have",
    "show open deals over 50000 in negotiation",
    "which contacts are vps in healthcare",
    "top 10 deals by value",
    "deals won last quarter",
]

SEARCH_QUERIES = [
    "cto at a logistics company",
    "cfo healthcare",
    "worried about the budget",
    "head of procurement in retail",
    "asked for a demo last month",
]
SEARCH_WORDS = [
    "cto",
    "cfo",
    "vp",
    "director",
    "manager",
    "engineer",
    "logistics",
    "healthcare",
    "retail",
    "finance",
    "budget",
    "renewal",
    "pilot",
    "demo",
    "pricing",
    "procurement",
    "security",
    "expansion",
    "contract",
    "onboarding",
    "churn",
    "upgrade",
    "integration",
]

DISTINCT_QUESTIONS = [
    "show open deals over {n} in negotiation",
    "top {k} deals by value",
    "deals in proposal worth more than {n}",
    "how many deals are worth less than {n}",
]


# -- data ------------------------------------------------------------------------------------------------
def build_home(home: Path, n_contacts: int, seed: int = 7) -> dict:
    """The generated export, staged; heuristic scores written as the pipeline writes them; a vector index.

    Kept light on purpose: no model training (the weighted heuristic is the served scorer, as it is before
    the first training round), no embedding (clustered random vectors), no duplicate search.
    """
    from holocrm_core.ingest.export import ingest_export
    from holocrm_core.outcomes import build_features_for, open_ids
    from holocrm_core.scoring import WeightedHeuristicScorer, score_frame
    from holocrm_core.synth import generate_export

    timings = {}
    started = time.perf_counter()
    generate_export(
        home / "landing",
        n_contacts=n_contacts,
        seed=seed,
        truth_dir=home / "truth",
        with_attachment_files=False,
    )
    timings["generate_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    wh = Warehouse(home / "warehouse")
    ingest_export(home / "landing", wh)
    timings["ingest_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    tables = {name: wh.read(f"staged_{name}") for name in ("companies", "contacts", "deals", "activities")}
    scorer = WeightedHeuristicScorer().fit(pl.DataFrame(), np.array([], dtype=int))
    for entity, table in (("contact", "scored_leads"), ("deal", "scored_deals")):
        features = build_features_for(entity, open_ids(entity, tables), tables)
        scored = score_frame(scorer, features).with_columns(
            pl.lit("heuristic").alias("model_version"), features["as_of"].alias("scored_at")
        )
        wh.write(table, scored)
    timings["score_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    from holocrm_core.dedupe import duplicate_candidates

    wh.write("duplicate_candidates", duplicate_candidates(tables["contacts"], tables["companies"]))
    timings["dedupe_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    index = build_similarity_index(home, tables)
    timings["index_s"] = round(time.perf_counter() - started, 1)
    return {
        "contacts": tables["contacts"].height,
        "deals": tables["deals"].height,
        "companies": tables["companies"].height,
        "activities": tables["activities"].height,
        "similarity_index": index,
        "setup": timings,
    }


def build_similarity_index(home: Path, tables: dict[str, pl.DataFrame]) -> str:
    """Index the contacts' real documents with clustered random vectors (no embedding time spent)."""
    from holocrm_core.store import SimilarityStore
    from holocrm_core.text import entity_documents

    docs = entity_documents({"contacts": tables["contacts"], "companies": tables["companies"]})
    docs = docs.filter(pl.col("entity_type") == "contact")
    rng = np.random.default_rng(11)
    centres = rng.normal(size=(64, 384)).astype(np.float32)
    vectors = centres[rng.integers(0, 64, len(docs))] + 0.3 * rng.normal(size=(len(docs), 384)).astype(
        np.float32
    )
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    reports = SimilarityStore(str(home / "lancedb")).sync(docs, vectors)
    return f"built: {len(docs)} contact vectors, ann={reports['contact'].ann_index if 'contact' in reports else None}"


# -- server ----------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, workers: int = 1) -> tuple[subprocess.Popen, str]:
    """``holocrm serve`` on a free loopback port, answering once every one of its ``workers`` processes has
    loaded its snapshot (each worker loads its own: /health's ``loaded_at`` tells them apart)."""
    import httpx

    port = free_port()
    env = {
        **os.environ,
        "HOLOCRM_HOME": str(home),
        "MLFLOW_TRACKING_URI": os.environ.get(
            "HOLOCRM_BENCH_MLFLOW", f"sqlite:///{home / 'mlruns' / 'mlflow.db'}"
        ),
    }
    exe = Path(sys.executable).with_name("holocrm")
    command = [str(exe)] if exe.exists() else [sys.executable, "-c", "from holocrm_cli import main; main()"]
    proc = subprocess.Popen(
        [
            *command,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--reload-interval",
            "0",
            "--log-level",
            "warning",
            "--workers",  # always named: a HOLOCRM_WORKERS in the environment would otherwise decide
            str(workers),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    # at 1M contacts the server reads 1.4M vectors and builds their indexes and labels before it answers
    deadline = time.monotonic() + 900
    loaded: set[str] = set()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            answer = httpx.get(f"{url}/health", timeout=2)  # a new connection: any worker may take it
            if answer.status_code == 200:
                loaded.add(str(answer.json().get("loaded_at")))
                if len(loaded) >= workers:
                    return proc, url
                time.sleep(0.1)
        except httpx.TransportError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"server did not start within 900 s ({len(loaded)} of {workers} workers answered)")


def server_rss_mb(proc: subprocess.Popen) -> float:
    """Resident memory of the server and its worker processes, MB."""
    import psutil

    root = psutil.Process(proc.pid)
    return round(sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20, 1)


def server_memory_mb(proc: subprocess.Popen) -> dict:
    """Per process (the server and its workers): resident (RSS), proportional (PSS: a page shared by two
    processes counts half in each, so the sum is what they hold together) and private anonymous memory, MB.
    Memory-mapped vector files (HOLOCRM_VECTOR_CACHE) are in every worker's RSS but in the PSS sum once."""
    import psutil

    root = psutil.Process(proc.pid)
    out = {"processes": []}
    for p in [root, *root.children(recursive=True)]:
        try:
            info = p.memory_full_info()
        except (psutil.Error, OSError):
            continue
        out["processes"].append(
            {
                "rss": round(info.rss / 2**20, 1),
                "pss": round(info.pss / 2**20, 1),
                "uss": round(info.uss / 2**20, 1),
            }
        )
    out["pss_sum"] = round(sum(p["pss"] for p in out["processes"]), 1)
    return out


# -- load ------------------------------------------------------------------------------------------------
def endpoints(
    contact_ids: list[str], lead_ids: list[str], open_deal_ids: list[str], closed_before: dict | None = None
):
    """name -> (method, path factory, body factory)."""
    counter = iter(range(10**9))
    # A deal has one outcome: each close takes the next deal, with the outcome fixed per deal, so a deal met
    # again (the list cycles) is an idempotent repeat (200), never a contradiction (409).
    to_close = list(open_deal_ids)
    random.Random(3).shuffle(to_close)
    closing = iter(to_close * 1000)
    closed_with: dict[str, str] = dict(closed_before or {})  # a reused home: deals closed by an earlier run

    def pick(ids):
        return random.choice(ids)

    def next_close() -> tuple[str, str]:
        deal = next(closing)
        return deal, closed_with.setdefault(deal, "won" if len(closed_with) % 3 == 0 else "lost")

    current_close: list[tuple[str, str]] = []

    def close_path() -> str:
        current_close[:] = [next_close()]
        return f"/api/deals/{current_close[0][0]}/close"

    def search_words() -> str:
        return " ".join(random.sample(SEARCH_WORDS, 3))

    return {
        "similar": ("GET", lambda: f"/api/contacts/{pick(contact_ids)}/similar?limit=10", None),
        # Scores exist for open leads and deals only (a decided one answers 404 not_scored): ask for those.
        "contact_score": ("GET", lambda: f"/api/contacts/{pick(lead_ids)}/score", None),
        "deal_score": ("GET", lambda: f"/api/deals/{pick(open_deal_ids)}/score", None),
        "recommendation": ("GET", lambda: f"/api/contacts/{pick(contact_ids)}/recommendation", None),
        "duplicates": ("GET", lambda: "/api/duplicates?limit=20", None),
        "semantic_search": (
            "POST",
            lambda: "/api/search/semantic",
            lambda: {"query": random.choice(SEARCH_QUERIES), "limit": 10},
        ),
        # A new query every request: nothing from the cache, only batching helps.
        "semantic_search_distinct": (
            "POST",
            lambda: "/api/search/semantic",
            lambda: {"query": f"{search_words()} {next(counter)}", "limit": 10},
        ),
        "natural_language": (
            "POST",
            lambda: "/api/query/natural-language",
            lambda: {"question": random.choice(QUESTIONS), "limit": 20},
        ),
        # Fresh numbers every time: no answer can come from the server's answer cache.
        "natural_language_distinct": (
            "POST",
            lambda: "/api/query/natural-language",
            lambda: {
                "question": random.choice(DISTINCT_QUESTIONS).format(
                    n=random.randint(1_000, 400_000), k=random.randint(2, 60)
                ),
                "limit": 20,
            },
        ),
        "close_deal": (
            "POST",
            close_path,
            lambda: {
                "outcome": current_close[0][1],
                "idempotency_key": f"bench-{os.getpid()}-{next(counter)}",
            },
        ),
        "action_outcome": (
            "POST",
            lambda: "/api/actions/outcome",
            lambda: {
                "contact_id": pick(contact_ids),
                "action": random.choice(["email", "call"]),
                "reward": 1.0 if random.random() < 0.2 else 0.0,
                "idempotency_key": f"bench-act-{os.getpid()}-{next(counter)}",
            },
        ),
    }


class RawHTTPConnection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams.

    httpx costs about 2.5 ms of CPU per request on this 2-core machine, which the server then has to share:
    its queueing, not the server, dominated the measured latency. This client costs tens of microseconds,
    so the figures describe the server.
    """

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: bytes | None) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
            lines = raw.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:] if h)}
            if "content-length" in headers:
                await self.reader.readexactly(int(headers["content-length"]))
            elif headers.get("transfer-encoding") == "chunked":
                while True:
                    size = int((await self.reader.readline()).strip(), 16)
                    await self.reader.readexactly(size + 2)
                    if size == 0:
                        break
            if headers.get("connection") == "close":
                await self.close()
            return status
        except Exception:
            await self.close()
            raise

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = self.reader = None


def _percentiles(ms: np.ndarray) -> dict:
    if not len(ms):
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None}
    return {f"p{q}_ms": round(float(np.percentile(ms, q)), 2) for q in (50, 95, 99)}


async def run_cell(
    url: str, spec, concurrency: int, requests: int, seconds: float, client: str = "raw", warmup: int = 0
) -> dict:
    """``warmup`` requests first (the cold start: reported apart as ``cold``), then ``requests`` measured
    (the steady state: p50/p95/p99); ``all`` is both together (how earlier rounds counted)."""
    import httpx

    method, path_of, body_of = spec
    latencies: list[float] = []
    started_at: list[float] = []  # each answered request's start, seconds into the cell
    cold: list[bool] = []  # each answered request: one of the first ``warmup`` issued
    requests += warmup
    errors: dict[str, int] = {}
    unavailable = 0
    issued = 0
    deadline = time.monotonic() + seconds
    cell_start = time.perf_counter()
    host, port = url.removeprefix("http://").split(":")
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:

        async def send(conn, path, body):
            if conn is None:
                r = await http.request(method, path, json=body)
                return r.status_code
            payload = None if body is None else json.dumps(body).encode()
            return await asyncio.wait_for(conn.request(method, path, payload), 30)

        async def worker():
            nonlocal issued, unavailable
            conn = RawHTTPConnection(host, int(port)) if client == "raw" else None
            while issued < requests and time.monotonic() < deadline:
                in_warmup = issued < warmup
                issued += 1
                path = path_of()
                body = body_of() if body_of else None
                start = time.perf_counter()
                try:
                    status = await send(conn, path, body)
                except (
                    TimeoutError,
                    httpx.HTTPError,
                    OSError,
                    asyncio.IncompleteReadError,
                    ValueError,
                ) as exc:
                    status = type(exc).__name__
                elapsed = time.perf_counter() - start
                if status == 503:
                    unavailable += 1  # capability not built: not a serving error, reported apart
                elif isinstance(status, int) and status < 400:
                    latencies.append(elapsed)
                    started_at.append(start - cell_start)
                    cold.append(in_warmup)
                else:
                    errors[str(status)] = errors.get(str(status), 0) + 1
            if conn is not None:
                await conn.close()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    if unavailable and not latencies:
        return {"skipped": "503: capability not built in this home", "requests": unavailable}
    ms = np.array(latencies) * 1000
    cell_seconds = time.perf_counter() - cell_start
    is_cold = np.array(cold, dtype=bool)
    steady, first = ms[~is_cold], ms[is_cold]
    steady_start = np.array(started_at)[~is_cold]
    out = {
        "requests": int(len(steady)) + sum(errors.values()),
        "seconds": round(cell_seconds, 2),  # the whole cell, warm-up included
        "answered_per_s": round(len(latencies) / cell_seconds, 1) if cell_seconds > 0 else None,
        **_percentiles(steady),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        # the five slowest measured requests: (seconds into the cell when sent, ms)
        "slowest": [
            [round(float(steady_start[i]), 2), round(float(steady[i]), 1)]
            for i in np.argsort(-steady)[:5].tolist()
        ],
    }
    if warmup:
        out["cold"] = {  # the first ``warmup`` requests of the cell: a just-started server's first burst
            "requests": int(len(first)),
            **_percentiles(first),
            "max_ms": round(float(first.max()), 1) if len(first) else None,
            # the first answers, in the order they came back
            "first_ms": [round(float(v), 1) for v in first[: min(len(first), 2 * concurrency, 20)]],
        }
        out["all"] = {"requests": int(len(ms)), **_percentiles(ms)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300, help="per endpoint and concurrency level")
    parser.add_argument("--cell-seconds", type=float, default=10.0, help="time cap per endpoint and level")
    parser.add_argument("--concurrency", default="1,10,50,200")
    parser.add_argument(
        "--warmup",
        type=int,
        default=50,
        help="requests sent first in each cell and reported apart (cold); the percentiles are the steady "
        "state after them (0: none)",
    )
    parser.add_argument("--endpoints", default="", help="comma-separated subset (default: all)")
    parser.add_argument(
        "--client",
        choices=["raw", "httpx"],
        default="raw",
        help="raw: minimal keep-alive HTTP/1.1 client (default); httpx: httpx.AsyncClient",
    )
    parser.add_argument("--home", default="", help="reuse/keep this HOLOCRM_HOME (default: a temp dir)")
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("HOLOCRM_WORKERS") or 1),  # what `holocrm serve` itself would read
        help="server processes (holocrm serve --workers; default HOLOCRM_WORKERS or 1); each loads the home",
    )
    args = parser.parse_args()

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("LANCEDB_LOG", "error")
    tmp = None if args.home else tempfile.TemporaryDirectory(prefix="holocrm-bench-")
    home = Path(args.home or tmp.name)
    marker = home / f"bench-{args.contacts}.json"
    started = time.perf_counter()
    if marker.exists():
        counts = json.loads(marker.read_text())
    else:
        counts = build_home(home, args.contacts)
        marker.write_text(json.dumps(counts))
    build_seconds = time.perf_counter() - started

    wh = Warehouse(home / "warehouse")
    contact_ids = wh.read("staged_contacts")["contact_id"].to_list()
    lead_ids = wh.read("scored_leads")["contact_id"].to_list()
    open_ids = wh.read("scored_deals")["deal_id"].to_list()
    from holocrm_api.outcome_log import read_log
    from holocrm_core.deal_states import latest_valid_outcomes

    closed = {
        r["deal_id"]: r["outcome"] for r in latest_valid_outcomes(read_log(home / "logs" / "outcomes.ndjson"))
    }
    specs = endpoints(contact_ids, lead_ids, open_ids, closed)
    chosen = [e for e in args.endpoints.split(",") if e] or list(specs)

    starting = time.perf_counter()
    proc, url = start_server(home, args.workers)
    start_seconds = time.perf_counter() - starting
    rss_mb = server_rss_mb(proc)
    memory = server_memory_mb(proc)
    load_before = os.getloadavg()
    results: dict = {}
    try:
        import httpx

        health = httpx.get(f"{url}/health", timeout=10).json()
        for level in (int(c) for c in args.concurrency.split(",")):
            for name in chosen:
                cell = asyncio.run(
                    run_cell(
                        url, specs[name], level, args.requests, args.cell_seconds, args.client, args.warmup
                    )
                )
                results.setdefault(name, {})[f"c{level}"] = cell
        rss_mb = max(rss_mb, server_rss_mb(proc))
        after = server_memory_mb(proc)
        memory = after if after["pss_sum"] > memory["pss_sum"] else memory
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        if tmp is not None:
            tmp.cleanup()

    targets = {
        "similar": 50,
        "contact_score": 50,
        "deal_score": 50,
        "recommendation": 50,
        "duplicates": 50,
        "close_deal": 50,
        "action_outcome": 50,
        "semantic_search": 100,
        "semantic_search_distinct": 100,
        "natural_language": 100,
        "natural_language_distinct": 100,
    }
    verdict = {}
    for name, limit in targets.items():
        cell = results.get(name, {}).get("c10", {})
        if cell.get("p95_ms") is not None:
            verdict[f"{name}_p95_at_10_under_{limit}ms"] = cell["p95_ms"] < limit
    for name in targets:
        cell = results.get(name, {}).get("c50", {})
        if cell.get("p95_ms") is not None:
            verdict[f"{name}_p95_at_50_under_250ms"] = cell["p95_ms"] < 250
    errors_at = {
        level: sum(
            cell.get("errors", 0) for r in results.values() for k, cell in r.items() if k == f"c{level}"
        )
        for level in (50, 200)
    }
    print(
        json.dumps(
            {
                "benchmark": "serving",
                "contacts": args.contacts,
                "data": counts,
                "data_build_seconds": round(build_seconds, 1),
                "scorer": "weighted heuristic (no training round in this setup; the served scorer before the first one)",
                "cpu_count": os.cpu_count(),
                # Other work on the machine inflates every figure: the 1-minute load average before and after.
                "load_average_1m": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
                "served": {
                    "index_versions": health.get("index_versions"),
                    "models": health.get("models"),
                    "missing": sorted(health.get("missing", {})),
                },
                "client": args.client,
                "workers": args.workers,
                # until every worker answered /health with its snapshot loaded; resident memory of all
                # the server's processes (the larger of after start and after the cells)
                "server_start_seconds": round(start_seconds, 1),
                "server_rss_mb": rss_mb,
                "server_memory_mb": memory,  # the larger PSS sum of the two readings, per process
                "requests_per_cell": args.requests,
                "warmup_per_cell": args.warmup,  # sent first, reported apart as each cell's "cold"
                "results": results,
                "errors_total": sum(cell.get("errors", 0) for r in results.values() for cell in r.values()),
                # cells that measured nothing (a capability not built answers 503): must be empty
                "cells_not_measured": [
                    f"{name}@{level}"
                    for name, r in results.items()
                    for level, cell in r.items()
                    if "skipped" in cell
                ],
                "errors_at_50": errors_at[50],
                "errors_at_200": errors_at[200],
                "targets_met": {**verdict, "zero_errors_at_200": errors_at[200] == 0},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
