"""Seconds, CPU seconds and peak memory of ONE asset step on an existing HOLOCRM_HOME, as the scale run's child
runs it (benchmarks/scale.py), without touching any scale run's state.json.

    nice -n 10 .venv/bin/python benchmarks/asset_memory.py --home /tmp/mem200k/home --shards 8 \
        --asset policy_evaluation
    ... --asset quarantine_activities,staged_activities --partition all --timeline
    ... --asset embeddings --partition 3

The step (a node of the graph: one asset, or a multi-asset's outputs joined by commas, as scale.py names
them) runs in its own child process: ``pipelines.runner.run_all(selection=NAMES, shards=[PARTITION])`` on
``--home`` with ``--export`` (default: the ``export`` folder beside the home, as scale.py lays them out), under
the scale run's environment (``POLARS_MAX_THREADS=2``, the embedding tier, the batch retention settings). It
rewrites the step's own outputs only (assets are idempotent), like a re-run of that step of the scale run.

Prints JSON: seconds (wall), cpu_seconds (user + system of the child and its descendants), peak_mb (the
child's ``ru_maxrss``), peak_group_mb_sampled (the largest resident size of its process group, sampled every
``--interval`` s), the load averages before and after, the run's success and failed steps. ``--timeline`` adds
the sampled sizes interleaved with the step's log lines (which phase holds the peak).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from scale import ALL_SHARDS, BATCH_RETENTION, _group_rss_mb, _load  # noqa: E402


def _child(home: Path, export: Path | None, node: str, partition: str | None) -> dict:
    """In the child: materialize one node (and its checks) into ``home``; CPU seconds and peak of this process."""
    from holocrm_core.settings import HoloPaths
    from pipelines.runner import run_all

    started = time.perf_counter()
    summary = run_all(
        export_dir=export,
        paths=HoloPaths(home),
        selection=node.split(","),
        progress=lambda line: print(line, file=sys.stderr, flush=True),
        **({"shards": [int(partition)]} if partition not in (None, ALL_SHARDS) else {}),
    )
    return {
        "success": summary.success,
        "run_seconds": round(time.perf_counter() - started, 2),
        "failed_steps": summary.failed_steps,
        "failed_checks": summary.failed_checks,
        "errors": [e[:500] for e in summary.errors],
        "metadata": {
            o.asset: {
                k: v for k, v in o.metadata.items() if isinstance(v, (int, float, bool)) and len(k) < 60
            }
            for o in summary.assets
        },
    }


def measure(args: argparse.Namespace) -> dict:
    home = args.home.resolve()
    export = (args.export or home.parent / "export").resolve()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "POLARS_MAX_THREADS": os.environ.get("POLARS_MAX_THREADS", "2"),
        "HOLOCRM_HOME": str(home),
        "HOLOCRM_EMBEDDER": args.tier,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "LANCEDB_LOG": "error",
        **{k: os.environ.get(k, v) for k, v in BATCH_RETENTION.items()},
    }
    if args.shards:
        env["HOLOCRM_SHARDS"] = str(args.shards)
    command = [sys.executable, __file__, "--home", str(home), "--export", str(export), "--child", args.asset]
    if args.partition:
        command += ["--partition", args.partition]
    load_before = _load()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT, start_new_session=True
    )
    timeline: list[tuple[float, str]] = []
    peak = {"group_mb": 0.0, "killed": None}

    def watch() -> None:
        while proc.poll() is None:
            rss = _group_rss_mb(proc.pid)
            if rss > peak["group_mb"] or args.timeline:
                timeline.append((time.perf_counter() - started, f"rss {rss:.0f} MiB"))
            peak["group_mb"] = max(peak["group_mb"], rss)
            if rss > args.max_rss_mb:
                peak["killed"] = (
                    f"stopped: its processes held {rss:.0f} MiB, over --max-rss-mb {args.max_rss_mb}"
                )
                os.killpg(proc.pid, signal.SIGKILL)
                return
            time.sleep(args.interval)

    def log_lines() -> None:
        for raw in proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            timeline.append((time.perf_counter() - started, line[:200]))

    threads = [threading.Thread(target=watch, daemon=True), threading.Thread(target=log_lines, daemon=True)]
    for thread in threads:
        thread.start()
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    for thread in threads:
        thread.join(timeout=5)
    seconds = time.perf_counter() - started
    lines = stdout.decode(errors="replace").strip().splitlines()
    try:
        figures = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        figures = {"output_tail": lines[-5:]}
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the child and every descendant it waited for
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    code = os.waitstatus_to_exitcode(status)
    figures.update(
        {
            "asset": args.asset,
            "partition": args.partition,
            "home": str(home),
            "seconds": round(seconds, 2),
            "cpu_seconds": round(cpu, 2),
            "peak_mb": round(usage.ru_maxrss / 1024, 1),
            "peak_group_mb_sampled": round(peak["group_mb"], 1),
            "exit_code": code,
            "load_avg_1_5_15": {"before": load_before, "after": _load()},
        }
    )
    if peak["killed"]:
        figures["error"] = peak["killed"]
    figures["ok"] = code == 0 and figures.get("success", False) and not peak["killed"]
    if args.timeline:
        figures["timeline"] = [f"{t:8.1f}s {line}" for t, line in sorted(timeline, key=lambda x: x[0])]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--home", type=Path, required=True, help="an existing HOLOCRM_HOME (its outputs rewritten)"
    )
    parser.add_argument("--export", type=Path, default=None, help="the export (default: HOME/../export)")
    parser.add_argument("--asset", help="the step: an asset, or a multi-asset's outputs joined by commas")
    parser.add_argument("--partition", default=None, help=f"a shard number, or {ALL_SHARDS!r} (every shard)")
    parser.add_argument("--shards", type=int, default=0, help="HOLOCRM_SHARDS the home was built with")
    parser.add_argument("--tier", choices=["static", "minilm"], default="static", help="HOLOCRM_EMBEDDER")
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between memory samples")
    parser.add_argument("--max-rss-mb", type=float, default=8000.0, help="stop the step past this size")
    parser.add_argument("--timeline", action="store_true", help="the samples with the step's log lines")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.home, args.export, args.child, args.partition)), flush=True)
        return
    if not args.asset:
        parser.error("--asset is required")
    if not args.home.is_dir():
        raise SystemExit(f"{args.home} is not a HOLOCRM_HOME folder")
    figures = measure(args)
    print(json.dumps(figures, indent=1))
    if not figures["ok"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
