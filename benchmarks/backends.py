"""The warehouse on a folder and on an S3-compatible endpoint (moto's server on loopback): a committed write and
a read of one table, and commits per second when several writers race on one table (how many commits lost the
race and retried). Prints JSON.

    .venv/bin/python benchmarks/backends.py --rows 200000 --writers 4 --writes 8

moto keeps objects in a Python process's memory: the S3 figures are the protocol's cost (HTTP, conditional
PUTs, manifest reads), not AWS's latency, which adds tens of milliseconds per request.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402

from holocrm_core import objectstore  # noqa: E402
from holocrm_core.warehouse import Warehouse  # noqa: E402


def contacts_like(rows: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "contact_id": [f"c{i:08d}" for i in range(rows)],
            "email": [f"person{i}@example{i % 97}.com" for i in range(rows)],
            "lead_score": [(i * 7919 % 1000) / 1000 for i in range(rows)],
        }
    )


def moto_server() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("moto's server did not start")


def measure(warehouse_of, frame: pl.DataFrame, writers: int, writes: int) -> dict:
    wh = warehouse_of("single")
    started = time.perf_counter()
    wh.write("staged_contacts", frame)
    write_s = time.perf_counter() - started
    started = time.perf_counter()
    assert wh.read("staged_contacts").height == frame.height
    read_s = time.perf_counter() - started
    small = frame.head(1000)
    race = warehouse_of("race")
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(writes):
                race.write("shared", small.with_columns(pl.lit(f"{n}-{i}").alias("writer")))
        except BaseException as exc:  # noqa: BLE001 (reported)
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    race_s = time.perf_counter() - started
    versions = [v["version"] for v in race.history("shared")]
    return {
        "write_s": round(write_s, 3),
        "read_s": round(read_s, 3),
        "race_commits": writers * writes,
        "race_commits_per_s": round(writers * writes / race_s, 1),
        "race_versions_kept_unique": len(versions) == len(set(versions)),
        "race_errors": [repr(e) for e in errors],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--writes", type=int, default=8)
    args = parser.parse_args()
    os.environ["HOLOCRM_WAREHOUSE_VERSIONS"] = str(args.writers * args.writes + 1)
    frame = contacts_like(args.rows)
    out: dict = {"rows": args.rows, "writers": args.writers, "writes_each": args.writes}
    with tempfile.TemporaryDirectory() as folder:
        out["folder"] = measure(lambda name: Warehouse(Path(folder) / name), frame, args.writers, args.writes)
    process, endpoint = moto_server()
    try:
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench-secret",
                "AWS_REGION": "us-east-1",
            }
        )
        objectstore.s3_client().create_bucket(Bucket="holocrm-bench")
        out["s3_moto"] = measure(
            lambda name: Warehouse(f"s3://holocrm-bench/{name}"), frame, args.writers, args.writes
        )
    finally:
        process.terminate()
        process.wait(10)
    out["load_average"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
