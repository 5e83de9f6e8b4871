"""`holocrm serve` as a real process group on a free loopback port (one or several workers)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

HOLOCRM = Path(sys.executable).with_name("holocrm")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerGroup:
    """The server and its workers in their own session: ``kill()`` SIGKILLs every one of them at once."""

    def __init__(self, home: Path, *extra: str, env: dict | None = None, start_timeout_s: float = 120):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {
            **os.environ,
            "HOLOCRM_HOME": str(home),
            "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlruns' / 'mlflow.db'}",
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
            **(env or {}),
        }
        command = [str(HOLOCRM)] if HOLOCRM.exists() else [sys.executable, "-m", "holocrm_cli"]
        self.log_path = home / f"server-{self.port}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop/kill)
        self.process = subprocess.Popen(
            [
                *command,
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--reload-interval",
                "0",
                "--log-level",
                "warning",
                *extra,
            ],
            env=environment,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"server did not answer /health within {start_timeout_s} s")

    def worker_pids(self) -> list[int]:
        import psutil

        return [c.pid for c in psutil.Process(self.process.pid).children(recursive=True)]

    def kill(self) -> None:
        """SIGKILL the whole group (the supervisor and every worker), as a crash or the OOM killer would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        self.log.close()
