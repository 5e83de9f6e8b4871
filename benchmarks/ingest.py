"""Ingest speed and memory: read + validate + quarantine + write Parquet, against a bare polars read+write.

    .venv/bin/python benchmarks/ingest.py                 # 1,000,000 contacts (~5M activities, ~740 MB CSV)
    .venv/bin/python benchmarks/ingest.py --quick         # 100,000 contacts
    .venv/bin/python benchmarks/ingest.py --export DIR    # an existing export folder

The export is generated once with ``holocrm_core.synth.generate_export`` into a temp folder (kept with
``--keep``). Each measurement runs in its own child process so its peak memory (ru_maxrss) is its own;
children are pinned to 2 polars threads, the target machine. Prints one JSON object.
Targets: ingest < 15 s and < 4 GB peak for 1M contacts on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _child(mode: str, export: Path, out: Path) -> None:
    import polars as pl

    started = time.perf_counter()
    if mode == "baseline":
        rows = 0
        for path in sorted(export.glob("*.csv")):
            frame = pl.read_csv(path, infer_schema=False)
            rows += frame.height
            frame.write_parquet(out / f"{path.stem}.parquet", compression="zstd")
        print(json.dumps({"seconds": time.perf_counter() - started, "rows": rows}))
        return
    from holocrm_core.ingest import ingest_export
    from holocrm_core.warehouse import Warehouse

    result = ingest_export(export, warehouse=Warehouse(out))
    seconds = time.perf_counter() - started
    read = sum(r.rows_read for r in result.files)
    print(json.dumps({
        "seconds": seconds,
        "rows": read,
        "staged": {e: t.height for e, t in result.tables.items()},
        "quarantined": result.quarantine.height,
        "invariant_violations": len(result.check_rows_read_invariant()),
    }))


def _measure(mode: str, export: Path, scratch: Path) -> dict:
    out = scratch / mode
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    env = {**os.environ, "POLARS_MAX_THREADS": "2", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, __file__, "--child", mode, "--export", str(export), "--out", str(out)],
                            stdout=subprocess.PIPE, env=env, cwd=ROOT)
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} child failed with exit code {proc.returncode}")
    figures = json.loads(stdout.decode().strip().splitlines()[-1])
    figures["peak_mb"] = round(usage.ru_maxrss / 1024, 1)  # ru_maxrss is in KiB on Linux
    figures["rows_per_s"] = round(figures["rows"] / figures["seconds"])
    figures["seconds"] = round(figures["seconds"], 2)
    shutil.rmtree(out, ignore_errors=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 contacts")
    parser.add_argument("--export", type=Path, help="ingest this export folder instead of generating one")
    parser.add_argument("--keep", action="store_true", help="keep the generated export (its path is printed)")
    parser.add_argument("--child", choices=["baseline", "ingest"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.export, args.out)
        return
    contacts = 100_000 if args.quick else args.contacts
    scratch = Path(tempfile.mkdtemp(prefix="holocrm-bench-ingest-"))
    report: dict = {"benchmark": "ingest", "cores": os.cpu_count()}
    try:
        export = args.export
        if export is None:
            from holocrm_core.synth import generate_export

            export = scratch / "export"
            started = time.perf_counter()
            generate_export(export, n_contacts=contacts, seed=0, truth_dir=scratch / "truth",
                            with_attachment_files=False)
            report["generate_seconds"] = round(time.perf_counter() - started, 1)
            report["contacts"] = contacts
        report["export"] = str(export)
        report["csv_mb"] = round(sum(p.stat().st_size for p in export.glob("*.csv")) / 2**20, 1)
        report["baseline_polars_read_write"] = _measure("baseline", export, scratch)
        report["ingest"] = _measure("ingest", export, scratch)
        report["targets"] = {"ingest_seconds": 15, "peak_mb": 4096, "note": "1M contacts on 2 cores"}
        report["ingest_vs_baseline"] = round(report["ingest"]["seconds"] / report["baseline_polars_read_write"]["seconds"], 2)
    finally:
        if not args.keep and args.export is None:
            shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
