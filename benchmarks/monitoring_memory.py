"""Peak memory of the ``monitoring_report`` step on a finished run's tables, without writing to that run's home.

    flock /work/bench.lock nice -n 10 .venv/bin/python benchmarks/monitoring_memory.py --source /work/scale1m/home

A temporary HOLOCRM_HOME is made under ``--work`` (deleted at the end): symbolic links to the source's
warehouse tables and LanceDB folder (read only), copies of its MLflow store, models, logs and monitoring
folder (the step writes its state and may renew the drift reference there). The step then runs as
benchmarks/scale.py runs it (its own process; peak ``ru_maxrss`` and the sampled size of its process group;
stopped past ``--max-rss-mb``). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

COPIED = ("mlruns", "models", "logs", "monitoring")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("/work/scale1m/home"))
    parser.add_argument("--export", type=Path, default=None, help="the source's export (default: ../export)")
    parser.add_argument("--work", type=Path, default=None, help="parent of the temporary home")
    parser.add_argument("--max-rss-mb", type=float, default=7000.0)
    args = parser.parse_args()
    import scale

    export = args.export or args.source.parent / "export"
    work = Path(tempfile.mkdtemp(prefix="monitoring-mem-", dir=args.work))
    home = work / "home"
    try:
        (home / "warehouse").mkdir(parents=True)
        for item in (args.source / "warehouse").iterdir():
            if item.is_file() and not item.name.startswith("."):
                (home / "warehouse" / item.name).symlink_to(item)
        (home / "lancedb").symlink_to(args.source / "lancedb")
        for name in COPIED:
            if (args.source / name).exists():
                shutil.copytree(args.source / name, home / name, symlinks=True)
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "POLARS_MAX_THREADS": "2",
            "HOLOCRM_HOME": str(home),
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "LANCEDB_LOG": "error",
        }
        command = [sys.executable, str(ROOT / "benchmarks" / "scale.py"), "--work", str(work)]
        command += ["--export", str(export), "--child-asset", "monitoring_report"]
        figures = scale.run_child(command, env, args.max_rss_mb, lambda line: print(line, file=sys.stderr))
        print(json.dumps({"benchmark": "monitoring_memory", "source": str(args.source), **figures}, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
