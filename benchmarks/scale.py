"""The scale run: generate an export of N contacts (1,000,000 by default, about 5M activities), then
materialize the whole asset graph on it step by step, resumable, and serve the result; prints JSON with the
seconds and peak memory of every step.

    nice -n 10 .venv/bin/python benchmarks/scale.py --work /tmp/holocrm-scale      # 1M contacts, static tier
    .venv/bin/python benchmarks/scale.py --contacts 100000 --work /tmp/scale-100k
    .venv/bin/python benchmarks/scale.py --work DIR --report        # the JSON of what finished so far
    setsid nohup nice -n 10 .venv/bin/python benchmarks/scale.py --work DIR > DIR.log 2>&1 &   # long runs

Steps, each in its own child process (its peak memory is its own: ``ru_maxrss`` of the child and its
descendants, and the largest resident size of its process group sampled every second):

- ``generate``, ``baseline_polars_read_write``, ``ingest_core``: benchmarks/ingest.py's steps (the generator
  of holocrm_core.synth, the bare polars read + Parquet write of the same CSV files that is the issue's
  yardstick, and ``ingest_export`` alone);
- ``asset:NAME`` (``asset:NAME[PARTITION]`` for each partition of a partitioned asset): every asset of
  ``pipelines.definitions`` in topological order, materialized by ``pipelines.runner.run_all`` into one
  HOLOCRM_HOME under ``--work``, the way ``holocrm run`` does, under the embedding tier ``--tier``;
- ``serving``: benchmarks/serving.py against that home: p50/p95/p99 of similar and the lead and deal scores at
  ``--clients`` concurrent clients.

Resumable: ``--work/state.json`` records each finished step (its figures); running again skips them and
continues with the first unfinished one (a step interrupted or failed runs again from its start; assets are
idempotent). ``--fresh`` starts over. A step whose process group grows past ``--max-rss-mb`` is stopped and
recorded as failed, so one runaway step cannot take a shared machine's memory.

Storage: a batch run that no rollback or server of older versions needs keeps little history, unless the
environment says otherwise: ``HOLOCRM_WAREHOUSE_VERSIONS=2`` with ``HOLOCRM_WAREHOUSE_SUPERSEDED_MAX=0`` (each
warehouse table keeps its current version and the one a rollback needs; holocrm_core/warehouse.py) and
``HOLOCRM_LANCEDB_RETENTION_S=0`` (LanceDB keeps its newest and pinned versions; holocrm_core/lance_versions.py).
The report ends with the sizes of the home's warehouse (current tables, superseded versions, partitions) and
LanceDB folder.

Targets (issue 26): ingest under 2x the bare polars read + write; the whole graph under 2 hours at 1M
contacts with embeddings included; serving p95 under 50 ms for similar and score at 10 clients.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

STATE = "state.json"
GRAPH_TARGET_S = 2 * 3600
SERVING_TARGET_MS = 50.0
INGEST_RATIO_TARGET = 2.0
INGEST_ASSETS = ("quarantine",)  # with every raw_* and staged_* step: what the graph spends on ingest
SERVING_ENDPOINTS = ("similar", "contact_score", "deal_score")
ALL_SHARDS = "all"  # the partition label of a step run once over every shard of the batch


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -- state ------------------------------------------------------------------------------------------------
class RunState:
    """``state.json`` under the work folder: the run's configuration and every finished step's figures."""

    def __init__(self, work: Path, config: dict, fresh: bool):
        self.path = work / STATE
        self.data = {"config": config, "steps": {}}
        if self.path.exists() and not fresh:
            saved = json.loads(self.path.read_text())
            if saved.get("config") != config:
                raise SystemExit(
                    f"{self.path} was written for {saved.get('config')}, not {config}: "
                    "use the same options, another --work folder, or --fresh to start over"
                )
            self.data = saved

    def done(self, step: str) -> bool:
        return bool(self.data["steps"].get(step, {}).get("ok"))

    def record(self, step: str, figures: dict) -> None:
        self.data["steps"][step] = figures
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        os.replace(tmp, self.path)  # a kill mid-write never leaves a torn state file


# -- child processes --------------------------------------------------------------------------------------
def _group_rss_mb(pgid: int) -> float:
    """Resident memory of every process in a process group, MiB (children of a step included)."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:  # field 5 of stat: process group
                continue
            total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")  # field 24: rss in pages
        except (OSError, IndexError, ValueError):
            continue
    return total / 2**20


def run_child(command: list[str], env: dict, max_rss_mb: float, log, step: str = "") -> dict:
    """Run one step's process; its last stdout line is JSON. Adds seconds, peak memory, load averages."""
    load_before = _load()
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, env=env, cwd=ROOT, start_new_session=True)
    peak = {"group_mb": 0.0, "killed": None}

    def watch() -> None:
        while proc.poll() is None:
            rss = _group_rss_mb(proc.pid)
            peak["group_mb"] = max(peak["group_mb"], rss)
            if rss > max_rss_mb:
                peak["killed"] = (
                    f"stopped: its processes held {rss:.0f} MiB, over --max-rss-mb {max_rss_mb:.0f}"
                )
                os.killpg(proc.pid, signal.SIGKILL)
                return
            time.sleep(1.0)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    watcher.join(timeout=5)
    code = os.waitstatus_to_exitcode(status)
    text = stdout.decode(errors="replace").strip()
    lines = text.splitlines()
    try:  # one JSON document: the whole output (serving.py indents it) or its last line
        figures = json.loads(text)
    except json.JSONDecodeError:
        try:
            figures = json.loads(lines[-1]) if lines else {}
        except json.JSONDecodeError:
            figures = {"output_tail": lines[-5:]}
    figures.update(
        {
            "wall_seconds": round(time.perf_counter() - started, 2),
            "peak_mb": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux; the largest process of the step
            "peak_group_mb_sampled": round(peak["group_mb"], 1),
            "exit_code": code,
            "load_avg_1_5_15": {"before": load_before, "after": _load()},
        }
    )
    if peak["killed"]:
        figures["error"] = peak["killed"]
    figures["ok"] = code == 0 and figures.get("success", True) and not peak["killed"]
    log(
        f"{'ok ' if figures['ok'] else 'FAILED '}{step} {figures['wall_seconds']}s "
        f"peak {figures['peak_mb']} MiB load {figures['load_avg_1_5_15']['after']}"
    )
    return figures


def _asset_child(work: Path, step: str, export: Path, partition: str | None) -> dict:
    """In the child: materialize one node of the graph (and its checks) into the run's home."""
    import warnings

    # dagster's BetaWarning for partition mappings and backfill policies, printed by every child on import:
    # the log is for the steps (``holocrm run`` silences third-party warnings the same way)
    warnings.filterwarnings("ignore", message=r".* is currently in beta")
    from holocrm_core.settings import HoloPaths
    from pipelines.runner import run_all

    names = step.split(",")
    summary = run_all(
        export_dir=export,
        paths=HoloPaths(work / "home"),
        selection=names,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
        **({"shards": [int(partition)]} if partition not in (None, ALL_SHARDS) else {}),
    )
    metadata = {}
    for outcome in summary.assets:
        metadata[outcome.asset] = {
            k: v for k, v in outcome.metadata.items() if isinstance(v, (int, float, bool)) and len(k) < 60
        }
    return {
        "success": summary.success,
        "seconds": round(summary.seconds, 2),
        "assets": names,
        "failed_steps": summary.failed_steps,
        "failed_checks": summary.failed_checks,
        "errors": [e[:500] for e in summary.errors],
        "metadata": metadata,
    }


# -- the graph --------------------------------------------------------------------------------------------
def graph_steps() -> list[tuple[str, list[str]]]:
    """(node name, [shards] or []) for every node of the asset graph, in topological order; a multi-asset
    is one node (its outputs are materialized together). A partitioned node (export batch x shard,
    ``pipelines.partitions``) is one step per shard of the run's batch (``HOLOCRM_SHARDS``)."""
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    steps: list[tuple[str, list[str]]] = []
    seen: set[str] = set()
    for key in graph.toposorted_asset_keys:
        assets_def = graph.assets_def_for_key(key)
        keys = sorted(k.to_user_string() for k in assets_def.keys)
        name = ",".join(keys)
        if name in seen:
            continue
        seen.add(name)
        partitions = []
        if assets_def.partitions_def is not None:  # export batch x shard: this run's batch, shard by shard
            from holocrm_core.partitions import shard_count

            partitions = [str(shard) for shard in range(shard_count())]
            if _per_batch(keys):  # one run over every shard: the batch read once, written per shard
                partitions = [ALL_SHARDS]
        steps.append((name, partitions))
    return steps


def _per_batch(keys: list[str]) -> bool:
    """Reading the export and staging it is work per batch (each file read once; a column's date format
    and a custom field's type are inferred from all of its values): one run covers every shard of the batch
    and writes each shard's partition. The steps after it read only what each shard needs."""
    return any(k.startswith(("raw_", "staged_")) for k in keys)


def _percentiles(serving: dict) -> dict:
    out = {}
    for name in SERVING_ENDPOINTS:
        cell = serving.get("results", {}).get(name, {})
        for level, figures in cell.items():
            out[f"{name}@{level}"] = {
                k: figures.get(k) for k in ("p50_ms", "p95_ms", "p99_ms", "errors", "requests")
            }
    return out


def per_node(assets: dict) -> list[dict]:
    """One row per graph node: its steps (shards), seconds summed, the slowest shard, the largest peak."""
    nodes: dict[str, dict] = {}
    for step, figures in assets.items():
        node = step.removeprefix("asset:").split("[")[0]
        row = nodes.setdefault(node, {"node": node, "steps": 0, "ok": True, "seconds": 0.0, "slowest": 0.0})
        row["steps"] += 1
        row["ok"] = row["ok"] and bool(figures.get("ok"))
        row["seconds"] = round(row["seconds"] + (figures.get("wall_seconds") or 0), 1)
        row["slowest"] = max(row["slowest"], figures.get("wall_seconds") or 0)
        row["peak_mb"] = max(row.get("peak_mb", 0), figures.get("peak_mb") or 0)
    return list(nodes.values())


def markdown(report: dict) -> str:
    lines = ["| step | shards | seconds | slowest shard | peak MB |", "|---|---|---|---|---|"]
    for name in ("generate", "baseline_polars_read_write", "ingest_core"):
        if name in report:
            cell = report[name]
            lines.append(f"| {name} | | {cell.get('seconds')} | | {cell.get('peak_mb')} |")
    for row in report["per_node"]:
        flag = "" if row["ok"] else " (failed)"
        lines.append(
            f"| {row['node']}{flag} | {row['steps']} | {row['seconds']} | {row['slowest']} | {row['peak_mb']:,.0f} |"
        )
    storage = report.get("storage_mb", {})
    if storage.get("warehouse"):
        wh = storage["warehouse"]
        lines.append(
            f"\nStorage: warehouse {wh['total']:,.0f} MiB (current tables {wh['current']:,.0f}, superseded "
            f"versions {wh['superseded']:,.0f}, partitions {wh['partitions']:,.0f}), "
            f"LanceDB {storage.get('lancedb', 0):,.0f} MiB"
        )
    return "\n".join(lines)


# what a batch run keeps of old versions (the environment wins): see the module docstring
BATCH_RETENTION = {
    "HOLOCRM_WAREHOUSE_VERSIONS": "2",
    "HOLOCRM_WAREHOUSE_SUPERSEDED_MAX": "0",
    "HOLOCRM_LANCEDB_RETENTION_S": "0",
}


def storage_mb(home: Path) -> dict:
    """MiB on disk of the home's warehouse (each file once: a current table is a hard link to its version)
    and LanceDB folder."""
    from holocrm_core.warehouse import Warehouse

    out = {}
    if (home / "warehouse").exists():
        out["warehouse"] = {k: round(v / 2**20, 1) for k, v in Warehouse(home / "warehouse").size().items()}
    lance = home / "lancedb"
    if lance.exists():
        out["lancedb"] = round(sum(f.stat().st_size for f in lance.rglob("*") if f.is_file()) / 2**20, 1)
    return out


def summarize(state: RunState) -> dict:
    steps = state.data["steps"]
    assets = {k: v for k, v in steps.items() if k.startswith("asset:")}
    table = [
        {
            "step": k,
            "ok": v.get("ok"),
            "seconds": v.get("wall_seconds"),
            "asset_seconds": v.get("seconds"),
            "peak_mb": v.get("peak_mb"),
            "peak_group_mb": v.get("peak_group_mb_sampled"),
            "load_after": v.get("load_avg_1_5_15", {}).get("after"),
        }
        for k, v in assets.items()
    ]
    graph_seconds = sum(v.get("wall_seconds", 0) for v in assets.values() if v.get("ok"))
    report: dict = {
        "benchmark": "scale",
        "config": state.data["config"],
        "steps_finished": sum(1 for v in steps.values() if v.get("ok")),
        "per_asset": table,
        "graph_seconds_finished_steps": round(graph_seconds, 1),
        "graph_peak_mb": max([v.get("peak_mb", 0) for v in assets.values()] or [0]),
    }
    for name in ("generate", "baseline_polars_read_write", "ingest_core"):
        if name in steps:
            report[name] = {
                k: steps[name].get(k)
                for k in ("seconds", "wall_seconds", "peak_mb", "rows", "load_avg_1_5_15")
            }
    baseline = steps.get("baseline_polars_read_write", {}).get("seconds")
    if baseline:
        ingest_assets = sum(
            v.get("seconds") or 0
            for k, v in assets.items()
            if any(
                part.split("[")[0] in INGEST_ASSETS or part.startswith(("raw_", "staged_"))
                for part in k.removeprefix("asset:").split(",")
            )
        )
        report["ingest_vs_bare_polars"] = {
            "ingest_core": round(steps.get("ingest_core", {}).get("seconds", 0) / baseline, 2),
            "ingest_assets_in_graph": round(ingest_assets / baseline, 2) if ingest_assets else None,
            "target": INGEST_RATIO_TARGET,
        }
    report["per_node"] = per_node(assets)
    report["storage_mb"] = storage_mb(state.path.parent / "home")
    if "serving" in steps:
        report["serving"] = _percentiles(steps["serving"])
    report["targets"] = {
        "graph_under_2h": graph_seconds < GRAPH_TARGET_S if table and all(r["ok"] for r in table) else None,
        "serving_p95_under_50ms_at_10": all(
            (v.get("p95_ms") or 1e9) < SERVING_TARGET_MS
            for k, v in report.get("serving", {}).items()
            if "@c10" in k
        )
        if "serving" in report
        else None,
    }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=None, help="state, export and HOLOCRM_HOME (kept)")
    parser.add_argument("--tier", choices=["static", "minilm"], default="static", help="HOLOCRM_EMBEDDER")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fresh", action="store_true", help="forget finished steps and start over")
    parser.add_argument(
        "--report", action="store_true", help="print the JSON of the finished steps, run nothing"
    )
    parser.add_argument("--markdown", action="store_true", help="the finished steps as a table, per node")
    parser.add_argument("--only", default="", help="comma-separated step names (prefixes) to run")
    parser.add_argument("--skip", default="", help="comma-separated step names (prefixes) to leave out")
    parser.add_argument("--shards", type=int, default=0, help="HOLOCRM_SHARDS for the partitioned assets")
    parser.add_argument("--max-rss-mb", type=float, default=8000.0)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--requests", type=int, default=300, help="serving requests per endpoint")
    parser.add_argument("--child-asset", help=argparse.SUPPRESS)
    parser.add_argument("--partition", help=argparse.SUPPRESS)
    parser.add_argument("--export", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = (args.work or Path(f"/tmp/holocrm-scale-{args.contacts}")).resolve()
    if args.child_asset:
        print(json.dumps(_asset_child(work, args.child_asset, args.export, args.partition)), flush=True)
        return

    work.mkdir(parents=True, exist_ok=True)
    config = {"contacts": args.contacts, "seed": args.seed, "tier": args.tier}
    if args.shards:
        config["shards"] = args.shards
        os.environ["HOLOCRM_SHARDS"] = str(args.shards)  # graph_steps and every child read it
    state = RunState(work, config, args.fresh)
    if args.report:
        print(json.dumps(summarize(state), indent=2))
        return
    if args.markdown:
        print(markdown(summarize(state)))
        return

    def log(line: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {line}", file=sys.stderr, flush=True)

    def wanted(step: str) -> bool:
        only = [s for s in args.only.split(",") if s]
        skip = [s for s in args.skip.split(",") if s]
        return (not only or any(step.startswith(s) for s in only)) and not any(
            step.startswith(s) for s in skip
        )

    import ingest as ingest_bench

    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "POLARS_MAX_THREADS": "2",
        "HOLOCRM_HOME": str(work / "home"),
        "HOLOCRM_EMBEDDER": args.tier,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "LANCEDB_LOG": "error",
        **{k: os.environ.get(k, v) for k, v in BATCH_RETENTION.items()},
    }
    os.environ.update({k: env[k] for k in ("HOLOCRM_HOME", "HOLOCRM_EMBEDDER", "POLARS_MAX_THREADS")})
    export = work / "export"
    for name, mode in (
        ("generate", "generate"),
        ("baseline_polars_read_write", "baseline"),
        ("ingest_core", "ingest"),
    ):
        if state.done(name) or not wanted(name):
            continue
        if mode != "generate" and not (export / "contacts.csv").exists():
            raise SystemExit(f"{export} has no export: run the generate step first")
        log(f"{name} ...")
        load_before = _load()
        try:
            figures = ingest_bench._measure(mode, export, work, args.contacts)
            figures["ok"] = True
        except SystemExit as exc:
            figures = {"ok": False, "error": str(exc)}
        figures.setdefault("load_avg_1_5_15", {"before": load_before, "after": _load()})
        state.record(name, figures)
        log(f"{name}: {figures.get('seconds')} s, peak {figures.get('peak_mb')} MiB")

    for node, partitions in graph_steps():
        for partition in partitions or [None]:
            step = f"asset:{node}" + (f"[{partition}]" if partition else "")
            if state.done(step) or not wanted(step):
                continue
            command = [sys.executable, __file__, "--work", str(work), "--export", str(export)]
            if partition:
                command += ["--partition", partition]
            command += ["--child-asset", node]
            log(f"{step} ...")
            state.record(step, run_child(command, env, args.max_rss_mb, log, step))

    if wanted("serving") and not state.done("serving"):
        home = work / "home"
        marker = home / f"bench-{args.contacts}.json"  # serving.py reuses a home that has its marker
        if not marker.exists():
            marker.write_text(json.dumps({"contacts": args.contacts, "built_by": "benchmarks/scale.py"}))
        command = [
            sys.executable,
            str(ROOT / "benchmarks" / "serving.py"),
            "--home",
            str(home),
            "--contacts",
            str(args.contacts),
            "--endpoints",
            ",".join(SERVING_ENDPOINTS),
            "--concurrency",
            str(args.clients),
            "--requests",
            str(args.requests),
        ]
        log("serving ...")
        # the endpoints measured read contacts, companies and deals: the server leaves the activity vectors
        # (about 13 GB at 1M contacts with the fused ones) out of memory (SimilarityStore.warm)
        serving_env = {
            **env,
            "HOLOCRM_WARM_TYPES": os.environ.get("HOLOCRM_WARM_TYPES", "contact,company,deal"),
        }
        state.record("serving", run_child(command, serving_env, args.max_rss_mb, log, "serving"))
    print(json.dumps(summarize(state), indent=2))


if __name__ == "__main__":
    main()
