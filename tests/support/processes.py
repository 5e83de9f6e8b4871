"""Other processes for tests that need a second writer: one that holds a home's lock until told to stop."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

HOLDER = """
import sys, time
from holocrm_core.homelock import home_lock
with home_lock(sys.argv[1], "test holder"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold_home_lock(home: Path, seconds: float = 60.0) -> subprocess.Popen:
    """Start a process that takes ``home``'s writer lock and holds it for ``seconds`` (or until killed)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(home), str(seconds)], stdout=subprocess.PIPE, env=env, text=True
    )
    deadline = time.monotonic() + 30
    line = proc.stdout.readline()
    if line.strip() != "held" or time.monotonic() > deadline:
        proc.kill()
        raise RuntimeError(f"the lock holder did not start: {line!r}")
    return proc
