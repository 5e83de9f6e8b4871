"""The runner: runs of a killed process are marked failed at the next start, live runs are left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg

from pipelines import runner

# A run that stays STARTED until its process ends: one op that sleeps, tagged the way run_all tags its runs.
CHILD = textwrap.dedent(
    """
    import time
    import dagster as dg
    from pipelines.runner import run_tags

    @dg.op
    def wait_long():
        time.sleep(120)

    @dg.job
    def holocrm_sleeper():
        wait_long()

    holocrm_sleeper.execute_in_process(instance=dg.DagsterInstance.get(), tags=run_tags())
    """
)


def _start_child(dagster_home: Path) -> subprocess.Popen:
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.Popen([sys.executable, "-c", CHILD], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _started_run(instance, pid: int, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={runner.PID_TAG: str(pid)}))
        if runs and runs[0].status == dg.DagsterRunStatus.STARTED:
            return runs[0]
        time.sleep(0.3)
    raise AssertionError(f"no STARTED run of pid {pid} within {timeout}s")


def test_a_killed_run_is_marked_failed_and_a_live_one_is_left(tmp_path, monkeypatch):
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(runner.DAGSTER_YAML)
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    killed, alive = _start_child(dagster_home), _start_child(dagster_home)
    try:
        instance = dg.DagsterInstance.get()
        killed_run = _started_run(instance, killed.pid)
        alive_run = _started_run(instance, alive.pid)
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(timeout=10)
        assert instance.get_run_by_id(killed_run.run_id).status == dg.DagsterRunStatus.STARTED, "stale before"

        marked = runner.fail_abandoned_runs(instance)

        assert marked == [killed_run.run_id]
        assert instance.get_run_by_id(killed_run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(alive_run.run_id).status == dg.DagsterRunStatus.STARTED
        assert runner.fail_abandoned_runs(instance) == [], "idempotent"
    finally:
        for child in (killed, alive):
            if child.poll() is None:
                child.kill()
                child.wait(timeout=10)
