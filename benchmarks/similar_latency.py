"""Latency of one `similar` query at serving scale, engine level, printed as JSON.

``SimilarityStore.similar`` at 1M contacts is ``EntityVectors.nearest``: a faiss inverted file over the 96-dim
spectral prefix gives candidates that are reranked on the full vectors (float16 from 500k rows), the record
itself excluded. This benchmark builds the same structures in memory, without LanceDB or a server, and times
that call one query at a time and from 10 threads at once (the server's concurrency), wall time and the CPU
time of the querying thread (``cpu_*``: the cost, whatever else the shared cores run), with recall@10
against an exact scan of the full float32 vectors. Configurations, each on the same vectors and queries:

- ``before``: the engine as it was (the query record excluded through a row mask, which widened the probes
  and made faiss test every scanned row against a bitmap; 6% of the lists probed);
- ``flat_lists_record_dropped``: the same index, the record dropped from the answer instead of masked;
- ``quantized_probing_<share>``: the engine now (4-bit PQ codes, fast scan), that share of the lists probed;
- ``default``: the engine now (IVF-PQ) with its own choice of probes;
- ``hnsw_ef_<ef>`` / ``hnsw_default`` (``--hnsw``): the HNSW graph over the prefix (``QUANTIZED_GRAPH``, off
  by default: HOLOCRM_SIMILAR_INDEX=hnsw), at that efSearch / at the engine's own; ``--hnsw-m`` /
  ``--hnsw-ef-construction`` override the build, ``--no-ivfpq`` skips the IVF-PQ configurations.

Data (``--data``): ``clustered`` random unit vectors in ``--clusters`` clusters with an anisotropic spectrum
(``--noise`` sets how loose; no model needed), or ``static``: the generated CRM's contact documents
(``holocrm_core.synth``, with their recent activity) embedded by the static tier (model2vec), the vectors
the 1M scale run serves; above 200,000 rows the further documents recombine the generated ones' fields.
Recall counts a returned row as a hit when its exact cosine reaches the exact 10th neighbour's (ties between
identical documents are not misses).

    .venv/bin/python benchmarks/similar_latency.py --rows 1000000              # clustered, about 3 GB
    .venv/bin/python benchmarks/similar_latency.py --data static --rows 200000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("LANCEDB_LOG", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def clustered(n: int, clusters: int, noise: float, seed: int = 0, dim: int = 384) -> np.ndarray:
    """Unit vectors around ``clusters`` centres, spectrum decaying like sentence embeddings'."""
    rng = np.random.default_rng(seed)
    spectrum = np.exp(-np.arange(dim) / 60.0).astype(np.float32)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32) * spectrum
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        block = centres[rng.integers(0, clusters, m)] + noise * rng.normal(size=(m, dim)).astype(
            np.float32
        ) * (0.5 + spectrum)
        out[start : start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


STATIC_BASE_MAX = 200_000  # contacts generated for --data static; more rows are recombined from their fields
# fields that differ between people of one profile: a recombined document takes them from other contacts
PERSONAL_FIELDS = ("Contact", "Email", "Notes", "Recent activity")


def _contact_texts(n: int, seed: int) -> list[str]:
    """The generated export's contact documents as the pipeline renders them (recent activity included)."""
    from holocrm_core.ingest.export import ingest_export
    from holocrm_core.synth.generator import generate_export
    from holocrm_core.text import _company_lookup, _contact_documents, _recent_activity_text
    from holocrm_core.warehouse import Warehouse

    with tempfile.TemporaryDirectory(prefix="holocrm-similar-") as tmp:
        generate_export(Path(tmp) / "landing", n_contacts=n, seed=seed, with_attachment_files=False)
        wh = Warehouse(Path(tmp) / "warehouse")
        ingest_export(Path(tmp) / "landing", wh)
        contacts, companies = wh.read("staged_contacts"), wh.read("staged_companies")
        recent = _recent_activity_text(wh.read("staged_activities"), "contact_id")
    return [d["text"] for d in _contact_documents(contacts, _company_lookup(companies), recent)]


def _recombined(texts: list[str], n: int, seed: int) -> list[str]:
    """``n`` documents: the generated ones, then each further one a generated contact's profile (title,
    company, industry, status, tags) with the personal fields (name, email, notes, recent activity) of other
    contacts, so a profile is shared by a few people as at 1M contacts over the same companies."""
    import re

    field = re.compile(r"(?:^| )(" + "|".join(PERSONAL_FIELDS) + r"): ")
    rng = np.random.default_rng(seed)

    def split(text: str) -> tuple[str, dict[str, str]]:
        parts = field.split(text)
        return parts[0], dict(zip(parts[1::2], parts[2::2], strict=True))

    out = list(texts)
    for base in rng.integers(0, len(texts), n - len(texts)):
        head, personal = split(texts[base])
        for name in PERSONAL_FIELDS:
            donor = split(texts[rng.integers(0, len(texts))])[1]
            if name in donor:
                personal[name] = donor[name]
            else:
                personal.pop(name, None)
        out.append(" ".join([head, *(f"{k}: {v}" for k, v in personal.items())]).strip())
    return out


def static_contacts(n: int, seed: int = 7) -> np.ndarray:
    """Contact documents embedded by the static tier (cached under the temp dir): up to
    ``STATIC_BASE_MAX`` generated ones, the rest recombined from them (``_recombined``)."""
    cache = Path(tempfile.gettempdir()) / f"holocrm-similar-static-v2-{n}-{seed}.npy"
    if cache.exists():
        return np.load(cache)
    from holocrm_core.embedding import load_embedder

    texts = _recombined(_contact_texts(min(n, STATIC_BASE_MAX), seed), n, seed)
    vectors = np.asarray(load_embedder(tier="static").encode(texts), dtype=np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    np.save(cache, vectors)
    return vectors


def lancedb_contacts(uri: str, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The contact vectors (float32) and served 96-dim prefixes of a built index, read only."""
    from holocrm_core.store import COARSE_SCALE, DIM, SimilarityStore

    table = SimilarityStore(uri).table("contact")
    data = table.search().select(["vector", "vector_96"]).limit(min(rows, table.count_rows())).to_arrow()
    out = []
    for column, width in (("vector", DIM), ("vector_96", COARSE_SCALE)):
        matrix = np.empty((data.num_rows, width), dtype=np.float32)
        start = 0
        for chunk in data.column(column).chunks:
            block = chunk.flatten().to_numpy(zero_copy_only=False).reshape(-1, width)
            matrix[start : start + len(block)] = block
            start += len(block)
        out.append(matrix)
    return out[0], out[1]


def exact_tenth(vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    """Each query's exact k-th best cosine over the other rows (full float32 vectors), 50 queries at a time."""
    out = np.empty(len(queries), dtype=np.float32)
    for first in range(0, len(queries), 50):
        part = queries[first : first + 50]
        sims = np.empty((len(vectors), len(part)), dtype=np.float32)
        for start in range(0, len(vectors), 100_000):
            sims[start : start + 100_000] = vectors[start : start + 100_000] @ vectors[part].T
        sims[part, np.arange(len(part))] = -np.inf
        out[first : first + len(part)] = -np.partition(-sims, k - 1, axis=0)[k - 1]
    return out


def precomputed_lists(index, vectors, coarse, full, batch: int) -> dict:
    """The cost of neighbour lists precomputed for every row (similar-by-id as a lookup): ``batch`` rows
    searched in one faiss call on one thread (the default probes and pool), reranked exactly, timed and
    projected to all rows; recall@10 of those rows' lists."""
    from holocrm_core import vectors as engine

    faiss = engine._faiss()
    engine._single_threaded(faiss)
    rng = np.random.default_rng(5)
    rows = np.sort(rng.choice(len(vectors), min(batch, len(vectors)), replace=False))
    want = max(engine.RERANK_FACTOR * 10, index.rerank_min) + 1
    started, started_cpu = time.perf_counter(), time.process_time()
    params = faiss.SearchParametersIVF(nprobe=index.nprobe)
    _, found = index.coarse_index.search(coarse[rows], want, params=params)
    scan = time.process_time() - started_cpu
    lists = np.empty((len(rows), 10), dtype=np.int64)
    for first in range(0, len(rows), 256):
        part = found[first : first + 256]
        part = np.where(part < 0, rows[first : first + 256, None], part)
        sims = np.einsum(
            "ij,ikj->ik",
            vectors[rows[first : first + 256]].astype(np.float32),
            vectors[part.reshape(-1)].astype(np.float32).reshape(len(part), want, -1),
        )
        sims[part == rows[first : first + 256, None]] = -np.inf
        lists[first : first + 256] = np.take_along_axis(part, np.argsort(-sims, axis=1)[:, :10], axis=1)
    wall, cpu = time.perf_counter() - started, time.process_time() - started_cpu
    return {
        "rows_searched": len(rows),
        "nprobe": index.nprobe,
        "pool": want,
        "cpu_ms_per_row": round(cpu * 1000 / len(rows), 3),
        "scan_cpu_ms_per_row": round(scan * 1000 / len(rows), 3),
        "wall_ms_per_row": round(wall * 1000 / len(rows), 3),
        "projected_cpu_seconds_all_rows": round(cpu * len(vectors) / len(rows)),
        "recall_at_10_sampled": recall_of(lists, rows, full),
    }


def recall_of(lists: np.ndarray, rows: np.ndarray, full: np.ndarray, sample: int = 200) -> float:
    """recall@10 of precomputed lists on ``sample`` of their rows (the exact 10th neighbour's bar)."""
    pick = np.arange(min(sample, len(rows)))
    bars = exact_tenth(full, rows[pick])
    hits = [float(np.sum(full[lists[i]] @ full[rows[i]] >= bars[i] - 1e-5)) / 10 for i in pick]
    return round(float(np.mean(hits)), 4)


def percentiles(seconds: list[float]) -> dict:
    ms = np.array(seconds) * 1000
    return {f"p{p}_ms": round(float(np.percentile(ms, p)), 2) for p in (50, 95, 99)}


def measure(search, queries: np.ndarray, threads: int) -> tuple[dict, list]:
    """Each query timed alone; with ``threads`` > 1 the queries are shared by that many threads at once."""
    latencies = [0.0] * len(queries)
    cpu = [0.0] * len(queries)
    found = [None] * len(queries)

    def work(slots):
        for i in slots:
            started, started_cpu = time.perf_counter(), time.thread_time()
            found[i] = search(int(queries[i]))
            latencies[i] = time.perf_counter() - started
            cpu[i] = time.thread_time() - started_cpu

    started = time.perf_counter()
    if threads == 1:
        work(range(len(queries)))
    else:
        pool = [
            threading.Thread(target=work, args=(range(t, len(queries), threads),)) for t in range(threads)
        ]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    wall = time.perf_counter() - started
    # CPU time of the query's own thread: what it costs, whatever else the shared cores run meanwhile
    cost = {f"cpu_{k}": v for k, v in percentiles(cpu).items() if not k.startswith("p99")}
    return {**percentiles(latencies), **cost, "queries_per_s": round(len(queries) / wall, 1)}, found


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=["clustered", "static"], default="clustered")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--vectors", default="", help="a .npy of unit vectors to use instead (--data ignored)"
    )
    parser.add_argument("--clusters", type=int, default=20_000)
    parser.add_argument("--noise", type=float, default=0.35)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--threads", type=int, default=10)
    parser.add_argument(
        "--probes", default="0.1,0.4", help="shares of the lists to probe, timed besides the default"
    )
    parser.add_argument(
        "--dims-per-code", type=int, default=0, help="PQ_DIMS_PER_CODE (default: the engine's)"
    )
    parser.add_argument("--no-before", action="store_true", help="skip the engine-as-it-was configuration")
    parser.add_argument(
        "--lancedb",
        default="",
        help="a built similarity index (HOLOCRM_HOME/lancedb): its contact vectors and served 96-dim "
        "prefixes, read only (--data ignored)",
    )
    parser.add_argument(
        "--reranks", default="", help="candidate pools (QUANTIZED_RERANK_MIN) timed at each probe share"
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=0,
        help="also time precomputing neighbour lists: the default engine's search for this many rows at "
        "once (one faiss call, one thread, then the exact rerank), projected to every row",
    )
    parser.add_argument(
        "--prefix-pools",
        default="",
        help="QUANTIZED_PREFIX_POOL values timed at each probe share and rerank pool (0: off)",
    )
    parser.add_argument("--hnsw", default="", help="efSearch values timed on the HNSW graph (0: engine's)")
    parser.add_argument("--hnsw-m", type=int, default=0, help="HNSW_M (default: the engine's)")
    parser.add_argument("--hnsw-ef-construction", type=int, default=0, help="HNSW_EF_CONSTRUCTION")
    parser.add_argument("--no-ivfpq", action="store_true", help="skip the IVF-PQ configurations")
    args = parser.parse_args()

    from holocrm_core import vectors as engine
    from holocrm_core.embedding import SpectralRotation
    from holocrm_core.store import COARSE_SCALE, FLOAT16_MIN_ROWS

    if args.dims_per_code:
        engine.PQ_DIMS_PER_CODE = args.dims_per_code
    engine.HNSW_M = args.hnsw_m or engine.HNSW_M
    engine.HNSW_EF_CONSTRUCTION = args.hnsw_ef_construction or engine.HNSW_EF_CONSTRUCTION
    load_before = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    served_coarse = None
    if args.lancedb:
        full, served_coarse = lancedb_contacts(args.lancedb, args.rows)
    elif args.vectors:
        full = np.load(args.vectors)[: args.rows]
    elif args.data == "static":
        full = static_contacts(args.rows)
    else:
        full = clustered(args.rows, args.clusters, args.noise)
    n = len(full)
    rng = np.random.default_rng(3)
    queries = rng.choice(n, min(args.queries, n), replace=False)
    tenth = exact_tenth(full, queries)
    if served_coarse is not None:
        coarse = served_coarse
    else:
        coarse = SpectralRotation.fit(full).transform(full, COARSE_SCALE)
    vectors = full.astype(np.float16) if n >= FLOAT16_MIN_ROWS else full
    prepare = time.perf_counter() - started
    builds, indexes = {}, {}
    for name, quantized in (("quantized", True), ("flat_lists", False), ("hnsw", True)):
        if (
            (name == "flat_lists" and args.no_before)
            or (name == "quantized" and args.no_ivfpq)
            or (name == "hnsw" and not args.hnsw)
        ):
            continue
        engine.QUANTIZED_GRAPH = name == "hnsw"
        rss = _rss_mb()
        started = time.perf_counter()
        indexes[name] = engine.VectorIndex(vectors, coarse, quantized=quantized)
        builds[name] = {
            "seconds": round(time.perf_counter() - started, 1),
            "kind": indexes[name].kind,
            "rss_growth_mb": round(_rss_mb() - rss),
        }

    def recall(found: list) -> float:
        hits = []
        for q, rows, bar in zip(queries, found, tenth, strict=True):
            rows = rows[rows != q]
            hits.append(float(np.sum(full[rows] @ full[q] >= bar - 1e-5)) / 10)
        return round(float(np.mean(hits)), 4)

    def similar(index):  # SimilarityStore.similar's call
        return lambda q: index.search(vectors[q].astype(np.float32), 10, coarse[q], None, [q])[0]

    def similar_before(index):  # the record excluded through a row mask, as the engine did
        everyone = np.ones(n, dtype=bool)
        return lambda q: index.search(vectors[q].astype(np.float32), 10, coarse[q], everyone, [q])[0]

    quantized = indexes.get("quantized")
    default_nprobe = quantized.nprobe if quantized else 0
    default_rerank, default_pool = (quantized.rerank_min, quantized.prefix_pool) if quantized else (0, 0)
    configs = {}  # name -> (index, search, nprobe, rerank pool, prefix pool, efSearch)
    if "flat_lists" in indexes and indexes["flat_lists"].nprobe:
        flat = indexes["flat_lists"]
        # the engine as it was: flat inverted lists, 6% probed, widened by the mask
        configs["before"] = (flat, similar_before(flat), flat.nprobe, flat.rerank_min, 0, 0)
        configs["flat_lists_record_dropped"] = (flat, similar(flat), flat.nprobe, flat.rerank_min, 0, 0)
    if default_nprobe:
        shares = [float(x) for x in args.probes.split(",") if x]
        reranks = [int(x) for x in args.reranks.split(",") if x] or [default_rerank]
        pools = [int(x) for x in args.prefix_pools.split(",") if x] or [default_pool]
        for share in shares:
            nprobe = max(1, int(np.ceil(share * quantized.coarse_index.nlist)))
            for rerank in reranks:
                for pool in pools:
                    name = f"quantized_probing_{share:g}"
                    name += f"_rerank_{rerank}" if rerank != default_rerank else ""
                    name += f"_prefix_pool_{pool}" if pool != default_pool else ""
                    configs[name] = (quantized, similar(quantized), nprobe, rerank, pool, 0)
    if quantized:
        configs["default"] = (quantized, similar(quantized), default_nprobe, default_rerank, default_pool, 0)
    if "hnsw" in indexes:
        graph = indexes["hnsw"]
        for ef in [int(x) for x in args.hnsw.split(",") if x]:
            name = f"hnsw_ef_{ef}" if ef else "hnsw_default"
            configs[name] = (graph, similar(graph), 0, graph.rerank_min, 0, ef or graph.ef_search)
    results = {}
    for name, (index, search, nprobe, rerank, pool, ef) in configs.items():
        index.nprobe, index.rerank_min, index.prefix_pool = nprobe, rerank, pool
        index.ef_search = ef
        search(int(queries[0]))  # first call: faiss and numpy warm
        single, found = measure(search, queries, 1)
        concurrent, _ = measure(search, queries, args.threads)
        results[name] = {
            "ef_search": index.ef_search,
            "nprobe": index.nprobe,
            "rerank": index.rerank_min,
            "prefix_pool": index.prefix_pool,
            "recall_at_10": recall(found),
            "one_at_a_time": single,
            f"{args.threads}_threads": concurrent,
        }
    precompute = (
        precomputed_lists(quantized, vectors, coarse, full, args.batch) if args.batch and quantized else None
    )
    print(
        json.dumps(
            {
                "benchmark": "similar_latency",
                "data": (f"served contacts of {args.lancedb}" if args.lancedb else args.vectors)
                or (
                    args.data
                    if args.data == "static"
                    else f"clustered ({args.clusters} clusters, noise {args.noise})"
                ),
                "rows": n,
                "queries": len(queries),
                "indexes": builds,
                "full_vectors": str(vectors.dtype),
                "prepare_seconds": round(prepare, 1),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "results": results,
                "precomputed_lists": precompute,
                "cpu_count": os.cpu_count(),
                "load_average": {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
