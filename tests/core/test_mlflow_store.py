"""MLflow's SQLite store is created once, before concurrent use: first users racing on a new store all work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRST_USE = """
import sys
from holocrm_core.settings import configure_mlflow
from holocrm_core import registry
configure_mlflow(sys.argv[1])
registry.ensure_experiment(f"race-{sys.argv[2]}")
print("ok")
"""


@pytest.mark.slow  # three processes import MLflow (about 15 s quiet)
def test_three_first_users_of_a_new_store_all_succeed(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_DISABLE_TELEMETRY": "true"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", FIRST_USE, uri, str(i)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=False):
        assert proc.returncode == 0 and out.strip().endswith("ok"), err[-2000:]
    assert (tmp_path / "mlflow.db.init-lock").exists()  # the store was created under the lock
