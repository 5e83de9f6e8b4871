"""Cold-start time of the everyday CLI commands: `search`, `similar`, `ask`, `score` (and `recommend`).

Each command runs in a fresh Python process (what a person typing it gets), ``--repeat`` times; the median
and the spread are printed as JSON with the load average before and after (the machine may be shared:
a high load inflates every figure; CPU time is printed too, it inflates less). `--with-server` times them
again while `holocrm serve` runs on the same home, which the commands then use by themselves. Needs a
HOLOCRM_HOME that `holocrm run` has built.

    HOLOCRM_HOME=... .venv/bin/python benchmarks/cli_speed.py --repeat 5 --with-server
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

TARGET_S = 1.5
ROOT = Path(__file__).resolve().parents[1]


def _first_id(home: Path, table: str, column: str) -> str:
    import polars as pl

    return str(pl.read_parquet(home / "warehouse" / f"{table}.parquet", columns=[column])[column][0])


def commands(home: Path) -> dict[str, list[str]]:
    contact = _first_id(home, "staged_contacts", "contact_id")
    scored = home / "warehouse" / "scored_leads.parquet"
    lead = _first_id(home, "scored_leads", "contact_id") if scored.exists() else contact
    return {
        "search": ["search", "budget concerns", "--limit", "5"],
        "similar": ["similar", "contact", contact, "--limit", "5"],
        "ask": ["ask", "open deals by industry", "--as-of", "2026-10-31"],
        "score": ["score", "contact", lead],
        "recommend": ["recommend", "contact", lead],
    }


def time_command(args: list[str], repeat: int, env: dict[str, str]) -> dict:
    """Wall time (what a person waits) and CPU time (user + system: less inflated by a shared machine)."""
    seconds, cpu, codes = [], [], set()
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "holocrm_cli", *args], capture_output=True, env=env, cwd=ROOT
        )
        seconds.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        codes.add(done.returncode)
    return {
        "median_s": round(statistics.median(seconds), 3),
        "min_s": round(min(seconds), 3),
        "max_s": round(max(seconds), 3),
        "median_cpu_s": round(statistics.median(cpu), 3),
        "exit_codes": sorted(codes),
    }


@contextlib.contextmanager
def running_server(env: dict[str, str]):
    """`holocrm serve` on a free port for this home; the commands find it by its announcement."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "holocrm_cli", "serve", "--port", str(port), "--reload-interval", "0"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.5)
        else:
            sys.exit("the server did not answer /health within 300 s")
        yield
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--home", type=Path, default=None, help="default: $HOLOCRM_HOME")
    parser.add_argument("--only", nargs="*", default=None, help="commands to time (default: all)")
    parser.add_argument(
        "--with-server",
        action="store_true",
        help="also time them while `holocrm serve` runs on this home (the commands use it by themselves)",
    )
    options = parser.parse_args()
    home = options.home or Path(os.environ.get("HOLOCRM_HOME", ROOT / ".holocrm"))
    if not (home / "warehouse" / "staged_contacts.parquet").exists():
        sys.exit(f"no built HOLOCRM_HOME at {home}: run `holocrm run` first (or pass --home)")
    env = {**os.environ, "HOLOCRM_HOME": str(home), "PYTHONPATH": str(ROOT)}
    env["HOLOCRM_SERVER"] = "off"  # cold local work first, not a server round trip
    chosen = {n: a for n, a in commands(home).items() if not options.only or n in options.only}
    load_before = os.getloadavg()
    results = {name: time_command(args, options.repeat, env) for name, args in chosen.items()}
    served = None
    if options.with_server:
        env.pop("HOLOCRM_SERVER")
        with running_server(env):
            served = {name: time_command(args, options.repeat, env) for name, args in chosen.items()}
    load_after = os.getloadavg()
    print(
        json.dumps(
            {
                "benchmark": "cli_cold_start",
                "repeat": options.repeat,
                "target_s": TARGET_S,
                "results": results,
                "under_target": {n: r["median_s"] < TARGET_S for n, r in results.items()},
                "with_server": served,
                "load_average_before": [round(x, 2) for x in load_before],
                "load_average_after": [round(x, 2) for x in load_after],
                "cpus": os.cpu_count(),
                "embed_backend": os.environ.get("HOLOCRM_EMBED_BACKEND", "auto"),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
