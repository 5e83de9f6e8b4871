"""Peak memory of one ``similarity_index`` shard on real 1M-contact inputs, without touching the 1M home.

    flock /work/bench.lock nice -n 10 .venv/bin/python benchmarks/similarity_index_memory.py \
        --source /work/scale1m/home --shards 8 --measure 0

A temporary HOLOCRM_HOME is made under ``--work`` (deleted at the end unless ``--keep``): its warehouse holds
symbolic links to the source home's ``entity_documents`` and ``embeddings`` partition files of the shards asked
for (read only; nothing of the source is written), and an empty LanceDB folder. ``--before`` shards are merged
first (unmeasured, so the measured shard merges into tables that hold other shards' rows, as every shard but
the first of a backfill does); then each ``--measure`` shard runs as the scale run runs it: its own child
process, ``pipelines.runner.run_all(selection=["similarity_index"], shards=[k])`` (benchmarks/scale.py's
step), with its peak resident memory (``ru_maxrss``) and the largest resident size of its process group sampled
every 0.25 s. With ``--timeline`` the sampled sizes are printed with the step's log lines, to tell which phase
holds the peak.

Prints JSON: per measured shard the seconds, the peaks, the input rows, the load averages, and the LanceDB
folder's size.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

INPUTS = ("entity_documents", "embeddings")


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _link_inputs(source: Path, home: Path, shards: list[int]) -> dict[str, int]:
    """The source's partition files of ``shards`` as symbolic links in ``home``'s warehouse; rows per input."""
    import polars as pl

    from holocrm_core.partitions import shard_table

    rows = {}
    for name in INPUTS:
        src = source / "warehouse" / "_partitions" / name
        manifest = json.loads((src / "_batches.json").read_text())
        batch = manifest.get("union") or manifest["batches"][-1]
        dst = home / "warehouse" / "_partitions" / name
        (dst / batch).mkdir(parents=True, exist_ok=True)
        (dst / "_batches.json").write_text(json.dumps(manifest))
        rows[name] = 0
        for shard in shards:
            file = f"{shard_table(shard)}.parquet"
            (dst / batch / file).symlink_to(src / batch / file)
            rows[name] += pl.scan_parquet(src / batch / file).select(pl.len()).collect().item()
    return rows


def _group_rss_mb(pgid: int) -> float:
    import scale

    return scale._group_rss_mb(pgid)


def _run_shard(home: Path, export: Path, shard: int, timeline: bool) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "POLARS_MAX_THREADS": "2",
        "HOLOCRM_HOME": str(home),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "LANCEDB_LOG": "error",
    }
    code = (
        "import json,sys\n"
        "from pathlib import Path\n"
        "from holocrm_core.settings import HoloPaths\n"
        "from pipelines.runner import run_all\n"
        f"s = run_all(export_dir=Path({str(export)!r}), paths=HoloPaths(Path({str(home)!r})),"
        f" selection=['similarity_index'], shards=[{shard}],"
        " progress=lambda l: print(l, file=sys.stderr, flush=True))\n"
        "print(json.dumps({'success': s.success, 'seconds': round(s.seconds, 2), 'errors': s.errors[:3]}))\n"
    )
    started = time.perf_counter()
    load_before = _load()
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
        start_new_session=True,
        text=True,
    )
    samples: list[tuple[float, float]] = []
    logs: list[tuple[float, str]] = []

    def watch() -> None:
        while proc.poll() is None:
            samples.append((time.perf_counter() - started, _group_rss_mb(proc.pid)))
            time.sleep(0.25)

    def read_log() -> None:
        for line in proc.stderr:
            logs.append((time.perf_counter() - started, line.rstrip()[:160]))

    threads = [threading.Thread(target=watch, daemon=True), threading.Thread(target=read_log, daemon=True)]
    for t in threads:
        t.start()
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    for t in threads:
        t.join(timeout=5)
    lines = out.strip().splitlines()
    figures = json.loads(lines[-1]) if lines else {"success": False, "errors": logs[-5:]}
    figures.update(
        {
            "shard": shard,
            "wall_seconds": round(time.perf_counter() - started, 2),
            "peak_mb": round(usage.ru_maxrss / 1024, 1),
            "peak_group_mb_sampled": round(max((mb for _, mb in samples), default=0.0), 1),
            "exit_code": os.waitstatus_to_exitcode(status),
            "load_avg_1_5_15": {"before": load_before, "after": _load()},
        }
    )
    if timeline:  # one line per second of the sampled group size, with the step's log lines between
        events = [(t, f"{mb:8.0f} MB") for t, mb in samples[::4]] + [
            (t, f"   log: {line}") for t, line in logs
        ]
        figures["timeline"] = [f"{t:7.1f}s {text}" for t, text in sorted(events)]
    return figures


def _lance_state(uri: Path) -> dict:
    """Per LanceDB table: its current version, the versions kept and the tags (readers' pins)."""
    import lancedb

    db = lancedb.connect(str(uri))
    out = {}
    for name in db.table_names():
        table = db.open_table(name)
        out[name] = {
            "version": int(table.version),
            "versions_kept": [int(v["version"]) for v in table.list_versions()],
            "tags": {k: int(v["version"]) for k, v in table.tags.list().items()},
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("/work/scale1m/home"))
    parser.add_argument("--export", type=Path, default=None, help="the source's export (default: ../export)")
    parser.add_argument("--shards", type=int, default=8, help="HOLOCRM_SHARDS of the source run")
    parser.add_argument("--before", default="", help="shards merged first, unmeasured (comma-separated)")
    parser.add_argument("--measure", default="0", help="shards measured, one child each (comma-separated)")
    parser.add_argument("--work", type=Path, default=None, help="parent of the temporary home")
    parser.add_argument("--keep", action="store_true", help="keep the temporary home")
    parser.add_argument("--timeline", action="store_true")
    parser.add_argument(
        "--in-place",
        action="store_true",
        help="re-run the --measure shards on the source home itself (writes its LanceDB tables, as a re-run "
        "of the step does); prints each table's versions and reader pins before and after",
    )
    args = parser.parse_args()
    os.environ["HOLOCRM_SHARDS"] = str(args.shards)
    before = [int(s) for s in args.before.split(",") if s]
    measure = [int(s) for s in args.measure.split(",") if s]
    export = args.export or args.source.parent / "export"
    if args.in_place:
        state = {"before": _lance_state(args.source / "lancedb")}
        results = [_run_shard(args.source, export, shard, args.timeline) for shard in measure]
        state["after"] = _lance_state(args.source / "lancedb")
        print(
            json.dumps(
                {
                    "benchmark": "similarity_index_memory",
                    "in_place": str(args.source),
                    "shards": args.shards,
                    "measured": results,
                    "lancedb": state,
                },
                indent=1,
            )
        )
        return
    work = Path(tempfile.mkdtemp(prefix="simindex-mem-", dir=args.work))
    home = work / "home"
    try:
        rows = _link_inputs(args.source, home, sorted(set(before + measure)))
        warmup = [_run_shard(home, export, shard, False) for shard in before]
        results = [_run_shard(home, export, shard, args.timeline) for shard in measure]
        lance = home / "lancedb"
        size = sum(f.stat().st_size for f in lance.rglob("*") if f.is_file()) if lance.exists() else 0
        print(
            json.dumps(
                {
                    "benchmark": "similarity_index_memory",
                    "source": str(args.source),
                    "shards": args.shards,
                    "input_rows": rows,
                    "before": [
                        {k: w.get(k) for k in ("shard", "success", "wall_seconds", "peak_mb")} for w in warmup
                    ],
                    "measured": results,
                    "lancedb_mb": round(size / 2**20, 1),
                    "pid": os.getpid(),
                },
                indent=1,
            )
        )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
