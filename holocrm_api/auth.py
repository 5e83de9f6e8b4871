"""API-key authentication and per-key rate limiting: on as soon as any key is configured.

Keys come from the environment (HOLOCRM_API_KEY, HOLOCRM_API_KEYS) and from a key file (HOLOCRM_API_KEY_FILE,
one key a line, ``#`` comments), which is re-read when its modification time changes, so keys rotate without
a restart. A caller may present a key as ``Authorization: Bearer <key>`` and/or ``X-API-Key: <key>``; every
presented credential is checked, Bearer first then X-API-Key, and the first that matches identifies the
caller, so a wrong header can never shadow a right one. Keys are compared in constant time.

Each key carries a scope: ``read`` (questions and lookups), ``write`` (also record outcomes: close or
reopen a deal, an action's result) or ``admin`` (also reload models and indexes); each includes the ones
before it. A key is written ``KEY:SCOPE`` (environment or file) or ``KEY SCOPE`` (file); a key without a
scope is ``admin``, as every key was before scopes existed.

Authentication is decided first, by the request guard (``holocrm_api.middleware``), before routing, the body
size limit or validation: without a valid key every path but the public ones (health, metrics, the API
docs) is 401, so an anonymous caller learns nothing about paths, sizes or bodies. The scope a route needs is
checked by its dependency (403).

Each key has a token bucket (``rate_limit_per_minute``, ``rate_limit_burst``); an empty bucket answers 429
with the seconds until the next token in Retry-After.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from holocrm_api.config import ServingSettings

log = logging.getLogger("holocrm.serving")


SCOPES = ("read", "write", "admin")  # each includes the ones before it


@dataclass(frozen=True)
class Caller:
    """Who is asking: ``key_id`` is a short hash of the matching key (never the key), or "anonymous"."""

    key_id: str
    authenticated: bool
    scope: str = "admin"

    def allows(self, needed: str) -> bool:
        return SCOPES.index(self.scope) >= SCOPES.index(needed)


ANONYMOUS = Caller("anonymous", authenticated=False)  # auth off: everything is allowed


def parse_key(entry: str) -> tuple[bytes, str]:
    """``KEY``, ``KEY:SCOPE`` or ``KEY SCOPE`` -> (key, scope); no scope (or an unknown suffix) = admin."""
    entry = entry.strip()
    for sep in (" ", "\t", ":"):
        head, found, tail = entry.rpartition(sep)
        if found and head.strip() and tail.strip().lower() in SCOPES:
            return head.strip().encode(), tail.strip().lower()
    return entry.encode(), "admin"


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:12]


def presented_credentials(headers: list[tuple[bytes, bytes]]) -> list[bytes]:
    """Every credential in the request, in the fixed checking order: Bearer tokens, then X-API-Key values."""
    bearer = [v[7:].strip() for n, v in headers if n == b"authorization" and v[:7].lower() == b"bearer "]
    api_key = [v.strip() for n, v in headers if n == b"x-api-key"]
    return [c for c in (*bearer, *api_key) if c]


class KeyRing:
    """The accepted keys: those of the environment plus the key file, re-read whenever the file changes."""

    def __init__(self, env_keys: tuple[str, ...], key_file: Path | None):
        self._env = tuple(parse_key(k) for k in env_keys)
        self._file = key_file
        self._stamp: tuple[int, int] | None = None
        self._file_keys: tuple[tuple[bytes, str], ...] = ()
        self._lock = threading.Lock()
        if key_file is not None:
            if not key_file.exists():
                raise ValueError(f"the API key file {key_file} (HOLOCRM_API_KEY_FILE) does not exist")
            self._refresh()

    @property
    def configured(self) -> bool:
        """Auth is on whenever keys could come from somewhere, even while the file is momentarily empty."""
        return bool(self._env) or self._file is not None

    def keys(self) -> tuple[tuple[bytes, str], ...]:
        """Every accepted key with its scope."""
        if self._file is not None:
            self._refresh()
        return self._env + self._file_keys

    def _refresh(self) -> None:
        try:
            st = os.stat(self._file)
        except FileNotFoundError:  # mid-rotation (rename): keep the keys read last
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        with self._lock:
            lines = self._file.read_text().splitlines()
            self._file_keys = tuple(
                parse_key(line) for line in lines if line.strip() and not line.lstrip().startswith("#")
            )
            self._stamp = stamp
        log.info("API key file %s read: %d keys", self._file, len(self._file_keys))


class RateLimiter:
    """A token bucket per key: ``per_minute`` sustained, ``burst`` at once."""

    def __init__(self, per_minute: int, burst: int):
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, last refill)
        self._lock = threading.Lock()

    def wait_seconds(self, who: str) -> int:
        """0 when the request may go ahead (a token is taken), else the whole seconds to wait."""
        if self.rate <= 0:
            return 0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(who, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[who] = (tokens - 1.0, now)
                return 0
            self._buckets[who] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.rate))


class ApiKeyGuard:
    """Authentication and rate limiting as the API applies them."""

    def __init__(self, settings: ServingSettings):
        self.ring = KeyRing(settings.env_keys, settings.api_key_file)
        if settings.api_key_required and not self.ring.keys():
            raise ValueError(
                "API keys are required but none is configured: set HOLOCRM_API_KEY (or HOLOCRM_API_KEYS, "
                "comma-separated, or HOLOCRM_API_KEY_FILE)"
            )
        self.enabled = settings.api_key_required or self.ring.configured
        self.limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)

    def authenticate(self, headers: list[tuple[bytes, bytes]]) -> Caller | None:
        """The caller behind the first presented credential that matches a key; None when none does."""
        if not self.enabled:
            return ANONYMOUS
        keys = self.ring.keys()
        for presented in presented_credentials(headers):
            matched = None
            for key, scope in keys:  # no early exit: timing must not tell which key was close
                if hmac.compare_digest(presented, key):
                    matched = (key, scope)
            if matched is not None:
                return Caller(key_id(matched[0]), authenticated=True, scope=matched[1])
        return None
