"""Versioned warehouse tables: the cost of a committed write, a read of the current and of an older version,
for HoloCRM's manifest swap (``holocrm_core.warehouse``) against plain Parquet and, when the ``deltalake``
package is importable, Delta Lake written by polars. Prints JSON.

    .venv/bin/python benchmarks/warehouse.py --rows 200000 --writes 5

The table is a staged_contacts-like frame generated here (strings, timestamps, a list column).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from holocrm_core.warehouse import Warehouse  # noqa: E402


def contacts_like(rows: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "contact_id": [f"C{i:07d}" for i in range(rows)],
            "full_name": [f"Person {i}" for i in rng.integers(0, 10**6, rows)],
            "email": [f"p{i}@example.com" for i in rng.integers(0, 10**7, rows)],
            "lifecycle_status": rng.choice(["lead", "qualified", "customer"], rows).tolist(),
            "notes": [f"met at event {i}; follow up about pricing" for i in rng.integers(0, 1000, rows)],
            "tags": [["vip", "emea"] if i % 7 == 0 else [] for i in range(rows)],
            "created_at": pl.datetime_range(
                datetime(2020, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC), interval="1h", eager=True
            )[:rows].extend_constant(None, max(0, rows - 35065)),
        }
    )


def timed(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--writes", type=int, default=5)
    args = parser.parse_args()
    frames = [contacts_like(args.rows, seed) for seed in range(args.writes)]
    out: dict = {
        "benchmark": "warehouse",
        "rows": args.rows,
        "writes": args.writes,
        "cpu_count": os.cpu_count(),
    }
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # plain Parquet, replaced in place (what the warehouse did before versions)
        plain = root / "plain.parquet"
        write_ms = [
            timed(lambda f=f: f.write_parquet(plain, compression="zstd", compression_level=1)) for f in frames
        ]
        out["plain_parquet"] = {
            "write_ms_median": float(np.median(write_ms)),
            "read_ms": timed(lambda: pl.read_parquet(plain), 3),
            "versions_readable": 1,
        }
        wh = Warehouse(root / "wh")
        write_ms = [timed(lambda f=f: wh.write("staged_contacts", f)) for f in frames]
        out["manifest_swap"] = {
            "write_ms_median": float(np.median(write_ms)),
            "read_ms": timed(lambda: wh.read("staged_contacts"), 3),
            "read_version_1_ms": timed(lambda: wh.read("staged_contacts", version=1), 3),
            "history_ms": timed(lambda: wh.history("staged_contacts"), 3),
            "rollback_ms": timed(lambda: wh.rollback("staged_contacts", to=1)),
            "disk_mb": round(sum(p.stat().st_size for p in (root / "wh").rglob("*.parquet")) / 2**20, 1),
            "versions_readable": len(wh.history("staged_contacts")),
        }
        try:
            import deltalake  # noqa: F401
        except ImportError:
            out["delta_lake"] = {"skipped": "the deltalake package is not installed"}
        else:
            target = str(root / "delta")
            write_ms = [timed(lambda f=f: f.write_delta(target, mode="overwrite")) for f in frames]
            out["delta_lake"] = {
                "write_ms_median": float(np.median(write_ms)),
                "read_ms": timed(lambda: pl.read_delta(target), 3),
                "read_version_0_ms": timed(lambda: pl.read_delta(target, version=0), 3),
                "disk_mb": round(
                    sum(p.stat().st_size for p in (root / "delta").rglob("*.parquet")) / 2**20, 1
                ),
                "deltalake_version": __import__("deltalake").__version__,
            }
    out["load_average_1m"] = [round(load, 2), round(os.getloadavg()[0], 2)]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
