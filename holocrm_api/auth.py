"""API-key authentication: off for the local default, on with one setting (HOLOCRM_API_KEY_REQUIRED=1).

A key travels in ``X-API-Key`` or ``Authorization: Bearer <key>``. Keys are compared in constant time.
Health, metrics and the API docs stay open so probes and scrapers work without a secret.
"""

from __future__ import annotations

import hmac

OPEN_PATHS = frozenset({"/health", "/metrics", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"})


class ApiKeyChecker:
    def __init__(self, required: bool, keys: tuple[str, ...]):
        if required and not keys:
            raise ValueError(
                "API keys are required but none is configured: set HOLOCRM_API_KEY (or HOLOCRM_API_KEYS, "
                "comma-separated)"
            )
        self.required = required
        self._keys = tuple(k.encode() for k in keys)

    def needs_key(self, path: str) -> bool:
        return self.required and path not in OPEN_PATHS

    def key_from_headers(self, headers: list[tuple[bytes, bytes]]) -> bytes | None:
        for name, value in headers:
            if name == b"x-api-key":
                return value.strip()
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                return value[7:].strip()
        return None

    def allowed(self, presented: bytes | None) -> bool:
        if presented is None:
            return False
        # Compare against every key (no early exit) so timing does not tell which key was close.
        ok = False
        for key in self._keys:
            ok |= hmac.compare_digest(presented, key)
        return ok
