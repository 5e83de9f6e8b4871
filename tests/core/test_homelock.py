"""One writer per home: a second writer is refused (naming the holder) or waits; dead holders never block."""

from __future__ import annotations

import json
import socket
import time

import pytest

from holocrm_core.homelock import LOCK_FILE, HomeLocked, home_lock
from tests.support.processes import hold_home_lock


def test_a_second_writer_is_refused_with_the_holders_pid_host_and_start(tmp_path):
    holder = hold_home_lock(tmp_path)
    try:
        with pytest.raises(HomeLocked) as refused, home_lock(tmp_path, "second run"):
            pass
        message = str(refused.value)
        assert f"pid {holder.pid}" in message and socket.gethostname() in message
        assert "test holder" in message and "started 20" in message and "--wait" in message
    finally:
        holder.kill()
        holder.wait()


def test_a_waiting_writer_goes_ahead_once_the_holder_ends(tmp_path):
    holder = hold_home_lock(tmp_path, seconds=1.0)
    try:
        started = time.monotonic()
        said = []
        with home_lock(tmp_path, "queued run", wait_s=30, progress=said.append) as me:
            assert me.purpose == "queued run"
        assert time.monotonic() - started >= 0.3
        assert any("waiting for test holder" in line for line in said)
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_leaves_a_stale_lock_that_is_broken_safely(tmp_path):
    holder = hold_home_lock(tmp_path)
    holder.kill()  # SIGKILL: no cleanup ran, the file still names it
    holder.wait()
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == holder.pid
    said = []
    with home_lock(tmp_path, "next run", progress=said.append):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["purpose"] == "next run"
    assert any("broke a stale lock" in line and str(holder.pid) in line for line in said)


def test_the_lock_is_reentrant_in_one_process_and_released_after(tmp_path):
    with home_lock(tmp_path, "outer"):
        with home_lock(tmp_path, "inner (the runner inside the CLI)"):
            pass
        assert json.loads((tmp_path / LOCK_FILE).read_text())["purpose"] == "outer"
    assert (tmp_path / LOCK_FILE).read_text() == ""  # released: nobody is named as holder
    with home_lock(tmp_path, "after"):
        pass


def test_a_lancedb_commit_conflict_is_retried_and_other_errors_are_not():
    from holocrm_core.homelock import retry_commit_conflicts

    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError(
                "Retryable commit conflict for version 4: preempted by concurrent transaction CreateIndex"
            )
        return "done"

    assert retry_commit_conflicts(flaky, first_delay_s=0.001) == "done" and len(calls) == 3
    with pytest.raises(ValueError, match="schema"):
        retry_commit_conflicts(lambda: (_ for _ in ()).throw(ValueError("schema mismatch")))
