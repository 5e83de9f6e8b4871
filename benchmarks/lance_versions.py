"""Disk, versions and memory of the LanceDB index under repeated shard merges (issue 26: at 1M contacts the
merges filled the disk with versions and peaked at 8.2-9.2 GB a shard).

    nice -n 15 .venv/bin/python benchmarks/lance_versions.py --rows 200000 --shards 4 --rounds 3

Synthetic documents (``--rows`` rows: one contact for four activities, texts of about 400 characters, random
unit vectors) are merged shard by shard into a fresh LanceDB folder (``SimilarityStore.merge_shards``, as the
``similarity_index`` step does), ``--rounds`` times, each round after the first changing the texts of
``--changed`` of the rows. Each merge runs in its own child process, whose peak resident memory is reported.
Prints JSON: per round the seconds, the largest child peak (MiB), the LanceDB folder's size and the number of
versions of each table. Run it with PYTHONPATH set to another checkout to measure that code on the same data.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl


def _frames(rows: int, round_: int, changed: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    from holocrm_core.embedding import DIM
    from holocrm_core.text import DOCUMENT_SCHEMA, FILTER_COLUMNS

    kinds = np.where(np.arange(rows) % 5 == 0, "contact", "activity")
    ids = [f"{'C' if k == 'contact' else 'A'}{i:08d}" for i, k in enumerate(kinds)]
    rng = np.random.default_rng(round_)
    edited = rng.random(rows) < (changed if round_ else 0.0)
    words = [
        "renewal",
        "pricing",
        "onboarding",
        "churn",
        "budget",
        "pilot",
        "contract",
        "security",
        "review",
        "integration",
    ]
    texts = [
        f"{ids[i]} {' '.join(words[(i + j) % len(words)] for j in range(40))} {'edit ' + str(round_) if e else ''}"
        for i, e in enumerate(edited)
    ]
    documents = pl.DataFrame(
        {
            "entity_type": kinds,
            "entity_id": ids,
            "text": texts,
            "content_hash": [hashlib.md5(t.encode()).hexdigest() for t in texts],
            **{c: [None] * rows for c in FILTER_COLUMNS},
        },
        schema=DOCUMENT_SCHEMA,
    )
    matrix = np.random.default_rng(0).normal(size=(rows, DIM)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    vectors = pl.DataFrame(
        {"entity_type": kinds, "entity_id": ids, "vector": matrix},
        schema_overrides={"vector": pl.Array(pl.Float32, DIM)},
    )
    return documents, vectors


def _child(uri: str, rows: int, round_: int, changed: float, shard: int, shards: int) -> None:
    from holocrm_core.partitions import in_shards
    from holocrm_core.store import SimilarityStore

    documents, vectors = _frames(rows, round_, changed)
    documents = in_shards(documents, "entity_id", [shard], shards)  # what the step receives: its shard
    vectors = in_shards(vectors, "entity_id", [shard], shards)
    SimilarityStore(uri).merge_shards(documents, vectors, [shard], shards)
    print(json.dumps({"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--changed", type=float, default=0.1, help="share of rows edited each later round")
    parser.add_argument("--work", type=Path, default=Path("/tmp/holocrm-lance-versions"))
    parser.add_argument("--child", nargs=3, type=int, help=argparse.SUPPRESS)  # round shard shards
    args = parser.parse_args()
    uri = str(args.work / "lancedb")
    if args.child:
        _child(uri, args.rows, args.child[0], args.changed, args.child[1], args.child[2])
        return
    import shutil

    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    rounds = []
    for round_ in range(args.rounds):
        started, peaks = time.perf_counter(), []
        for shard in range(args.shards):
            out = subprocess.run(
                [sys.executable, __file__, "--rows", str(args.rows), "--changed", str(args.changed)]
                + ["--work", str(args.work), "--child", str(round_), str(shard), str(args.shards)],
                check=True,
                capture_output=True,
                text=True,
                env=os.environ,
            )
            peaks.append(json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"])
        import lancedb

        db = lancedb.connect(uri)
        listed = db.list_tables()
        versions = {n: len(db.open_table(n).list_versions()) for n in getattr(listed, "tables", listed)}
        rounds.append(
            {
                "round": round_,
                "seconds": round(time.perf_counter() - started, 1),
                "peak_mib_max": round(max(peaks), 1),
                "lancedb_mib": round(_folder_bytes(Path(uri)) / 2**20, 1),
                "versions": versions,
                "load": [round(x, 2) for x in os.getloadavg()],
            }
        )
        print(json.dumps(rounds[-1]), file=sys.stderr)
    env = {k: v for k, v in os.environ.items() if k.startswith("HOLOCRM_LANCEDB")}
    print(json.dumps({"rows": args.rows, "shards": args.shards, "env": env, "rounds": rounds}, indent=1))


if __name__ == "__main__":
    main()
