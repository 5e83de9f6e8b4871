"""A small HTTP client for a running HoloCRM server, so CLI commands answer without loading anything.

`holocrm search / similar / duplicates / ask` call ``server_url(option)``: the ``--server`` option, else
``HOLOCRM_SERVER``, else the server `holocrm serve` announced for this HOLOCRM_HOME (``logs/server.json``,
used only while it answers); when there is one, the command sends its request there (tens of milliseconds)
instead of opening the index and the model in a cold process (seconds). ``HOLOCRM_SERVER=off`` always works
locally. Standard library only: importing this module costs nothing.
"""

from __future__ import annotations

import json
import os

SERVER_ENV = "HOLOCRM_SERVER"
TIMEOUT_S = 30.0
ANNOUNCE_FILE = "server.json"  # under HOLOCRM_HOME/logs, written by `holocrm serve` while it runs
OFF = ("off", "none", "local", "0")


class ServerError(RuntimeError):
    """The server answered with an error (its ``detail`` is the message) or could not be reached."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def server_url(option: str | None = None) -> str | None:
    """The server to use: ``option`` (``--server URL``), else ``$HOLOCRM_SERVER``, else the one announced for
    this home while it accepts connections, else None (work locally)."""
    url = (option or os.environ.get(SERVER_ENV) or "").strip()
    if url.lower() in OFF:
        return None
    return url.rstrip("/") or announced_server()


def _announce_path():
    from holocrm_core.settings import HoloPaths

    return HoloPaths.default().logs / ANNOUNCE_FILE


def announce(url: str, auth: bool) -> None:
    """Say where this home's server listens (called by `holocrm serve`); ``withdraw`` on exit."""
    path = _announce_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"url": url, "pid": os.getpid(), "auth": auth}))


def withdraw() -> None:
    path = _announce_path()
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def announced_server() -> str | None:
    """The URL `holocrm serve` announced for this home, when its process lives and its port accepts."""
    import socket
    import urllib.parse

    try:
        announced = json.loads(_announce_path().read_text())
        url, pid = str(announced["url"]).rstrip("/"), int(announced["pid"])
        if announced.get("auth") and not os.environ.get("HOLOCRM_API_KEY"):
            return None  # it would refuse us: work locally
        os.kill(pid, 0)  # raises when no such process
        parts = urllib.parse.urlsplit(url)
        with socket.create_connection((parts.hostname, parts.port or 80), timeout=0.2):
            return url
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _headers() -> dict[str, str]:
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    key = os.environ.get("HOLOCRM_API_KEY")
    if key:
        headers["X-API-Key"] = key
    return headers


def _send(request) -> dict:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return json.loads(response.read().decode("utf-8") or "{}")
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read().decode("utf-8") or "{}")
        except ValueError:
            body = {}
        detail = body.get("detail") if isinstance(body, dict) else None
        raise ServerError(f"server said {exc.code}: {detail or exc.reason}", exc.code) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServerError(f"cannot reach the server at {request.full_url}: {reason}") from None


def get(base: str, path: str, **params) -> dict:
    import urllib.parse
    import urllib.request

    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)
    url = f"{base}{path}" + (f"?{query}" if query else "")
    return _send(urllib.request.Request(url, headers=_headers(), method="GET"))


def post(base: str, path: str, body: dict) -> dict:
    import urllib.request

    data = json.dumps(body).encode("utf-8")
    return _send(urllib.request.Request(f"{base}{path}", data=data, headers=_headers(), method="POST"))
