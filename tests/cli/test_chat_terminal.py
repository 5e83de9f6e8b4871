"""`holocrm chat` driven in a real terminal (tmux send-keys / capture-pane, issue 29): a lookup with its
clarification, a follow-up, a write previewed and confirmed, a write refused, the history (Up) and Tab
completion (readline, or prompt_toolkit when installed). Skipped without tmux (`.ci/run` installs it)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from holocrm_core.warehouse import Warehouse
from tests.core.test_nlq_data import make_tables

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)"
)


class Terminal:
    """A tmux session on a private socket running one command."""

    def __init__(self, command: str, env: dict[str, str]):
        self.socket = f"holocrm-chat-{uuid.uuid4().hex[:8]}"
        self.name = "chat"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        self._tmux("new-session", "-d", "-s", self.name, "-x", "200", "-y", "60", f"env {exports} {command}")

    def _tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], check=True, capture_output=True, text=True
        ).stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-J", "-S", "-2000", "-t", self.name)

    def send(self, text: str) -> None:
        self._tmux("send-keys", "-t", self.name, "-l", text)
        self._tmux("send-keys", "-t", self.name, "Enter")

    def keys(self, *keys: str) -> None:
        """Keys by tmux name (``Up``, ``Tab``, ``Enter``), or literal text after ``-l``."""
        self._tmux("send-keys", "-t", self.name, *keys)

    def wait_for(self, text: str, timeout: float = 90.0, count: int = 1) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if screen.count(text) >= count:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared; the screen:\n{self.screen()}")

    def exited(self, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            alive = subprocess.run(
                ["tmux", "-L", self.socket, "has-session", "-t", self.name], capture_output=True
            )
            if alive.returncode != 0:
                return True
            time.sleep(0.2)
        return False

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


def test_chat_in_a_real_terminal(tmp_path):
    home = tmp_path / "home"
    warehouse = Warehouse(home / "warehouse")
    for entity, frame in make_tables().items():
        warehouse.write(f"staged_{entity}", frame)
    env = {"HOLOCRM_HOME": str(home), "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    for key in ("MLFLOW_TRACKING_URI", "PATH"):
        if key in os.environ:
            env[key] = os.environ[key]
    term = Terminal(f"{shlex.quote(sys.executable)} -m holocrm_cli chat --as-of 2026-10-31", env)
    try:
        term.wait_for("you>")
        term.send("find acme")
        term.wait_for("Which one do you mean?")
        term.send("the first one")
        term.wait_for("Found Acme Bank")
        term.send("open deals")
        term.wait_for("4 record(s)")
        term.send("only the ones in financial services")
        term.wait_for("2 record(s)")
        term.send("show Acme core banking")
        term.send("close it as won")
        term.wait_for("About to change Acme core banking")
        assert (
            not (home / "logs" / "outcomes.ndjson").exists()
            or not (home / "logs" / "outcomes.ndjson").read_text().strip()
        )
        term.send("yes")
        term.wait_for("Done: close_deal on Acme core banking")
        term.send("close Globex pilot as lost")
        term.wait_for("is not the record in focus")
        # history: the Up arrow brings the last line back
        term.keys("Up", "Enter")
        term.wait_for("is not the record in focus", count=2)
        # completion: Tab finishes a company's name
        term.keys("-l", "prepare me for my call with Ini")
        term.keys("Tab")
        term.wait_for("prepare me for my call with Initech")
        term.keys("Enter")
        term.wait_for("Preparing your call with Initech")
        term.send("quit")
        assert term.exited(), "`quit` did not end the chat"
    finally:
        term.close()
    lines = (home / "logs" / "outcomes.ndjson").read_text().splitlines()
    assert len(lines) == 1 and '"deal_id":"d1"' in lines[0] and '"outcome":"won"' in lines[0]
