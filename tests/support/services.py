"""A server process for the backend tests: started on a free loopback port in its own process group, waited
for, and stopped (SIGTERM, then SIGKILL) however the test ends. Used by postgres.py, redis.py and s3.py."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}: {_tail(log)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listened on 127.0.0.1:{port} within {timeout_s:.0f} s: {_tail(log)}")


def start(
    command: list[str], log: Path, env: dict | None = None, preexec: Callable[[], None] | None = None
) -> subprocess.Popen:
    handle = open(log, "ab")  # noqa: SIM115 (the child owns it; closed with the process)
    try:
        return subprocess.Popen(
            command,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
            preexec_fn=preexec,
        )
    finally:
        handle.close()


def stop(process: subprocess.Popen, timeout_s: float = 15) -> None:
    """SIGTERM to the server's process group, SIGKILL when it has not gone within ``timeout_s``."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout_s)
    except ProcessLookupError:
        pass


def _tail(log: Path, chars: int = 1500) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"
