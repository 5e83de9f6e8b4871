"""The JSON the API answers with, and the NL answer cache.

``jsonable`` (from ``holocrm_core.services``, the CLI's ``--json`` uses the same) turns what the core returns
into JSON-safe values; the cache keeps recent natural-language answers per snapshot, so a question asked again (a dashboard
tile) costs a lookup.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from datetime import datetime

from holocrm_core.services import jsonable

__all__ = ["AnswerCache", "jsonable"]


class AnswerCache:
    """Recent NL answers per snapshot, least recently used out first; entries may expire."""

    def __init__(self, size: int = 512):
        self.size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple, tuple[float | None, dict]] = OrderedDict()

    @staticmethod
    def key(
        loaded_at: datetime,
        question: str,
        as_of: datetime | None,
        limit: int,
        partial: bool = False,
        pick: int | None = None,
    ) -> tuple:
        words = " ".join(question.lower().split())
        return (loaded_at, words, as_of.isoformat() if as_of else None, limit, partial, pick)

    def get(self, key: tuple) -> dict | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, payload = entry
            if expires is not None and expires < time.monotonic():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return payload

    def put(self, key: tuple, payload: dict, ttl: float | None) -> None:
        with self._lock:
            self._entries[key] = (None if ttl is None else time.monotonic() + ttl, payload)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
