"""A Redis server for tests (Debian's redis-server): a free loopback port, data in a temp folder, no
persistence; the Celery executor's broker."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.services import free_port, start, stop, wait_for_port


def redis_available() -> str:
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (apt-get install redis-server; ./dev test installs it): skipped"
    return ""


def run_redis(folder: Path):
    """Yields the broker URL ``redis://127.0.0.1:PORT/0`` of a fresh server; stops it afterwards."""
    reason = redis_available()
    if reason:
        pytest.skip(reason)
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "redis.log"
    command = [
        shutil.which("redis-server"),
        "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
        "--save", "", "--appendonly", "no", "--protected-mode", "no",
    ]  # fmt: skip
    process = start(command, log)
    try:
        wait_for_port(port, process, log)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(process)
