"""A small HTTP client for a running HoloCRM server, so CLI commands answer without loading anything.

`holocrm search / similar / duplicates` (and `ask`, `score`) call ``server_url(option)``: the ``--server``
option, else ``HOLOCRM_SERVER``; when one is set, the command sends its request there (tens of milliseconds)
instead of opening the index and the model in a cold process (seconds). Standard library only: importing
this module costs nothing.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request

SERVER_ENV = "HOLOCRM_SERVER"
TIMEOUT_S = 30.0


class ServerError(RuntimeError):
    """The server answered with an error (its ``detail`` is the message) or could not be reached."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def server_url(option: str | None = None) -> str | None:
    """The server to use: ``option`` (``--server URL``), else ``$HOLOCRM_SERVER``, else None (work locally)."""
    url = (option or os.environ.get(SERVER_ENV) or "").strip()
    return url.rstrip("/") or None


def _headers() -> dict[str, str]:
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    key = os.environ.get("HOLOCRM_API_KEY")
    if key:
        headers["X-API-Key"] = key
    return headers


def _send(request: urllib.request.Request) -> dict:
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
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)
    url = f"{base}{path}" + (f"?{query}" if query else "")
    return _send(urllib.request.Request(url, headers=_headers(), method="GET"))


def post(base: str, path: str, body: dict) -> dict:
    data = json.dumps(body).encode("utf-8")
    return _send(urllib.request.Request(f"{base}{path}", data=data, headers=_headers(), method="POST"))
