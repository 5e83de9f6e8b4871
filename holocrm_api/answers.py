"""The JSON the API answers with: plain values from polars/numpy/decimal rows, and the NL answer cache.

``jsonable`` turns what the core returns (rows with datetimes, Decimals, numpy scalars, NaN) into JSON-safe
values; the cache keeps recent natural-language answers per snapshot, so a question asked again (a dashboard
tile) costs a lookup.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl


def jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, pl.DataFrame):
        return jsonable(value.to_dicts())
    if isinstance(value, (pl.Series, np.ndarray)):
        return jsonable(value.to_list() if isinstance(value, pl.Series) else value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)


class AnswerCache:
    """Recent NL answers per snapshot, least recently used out first; entries may expire."""

    def __init__(self, size: int = 512):
        self.size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple, tuple[float | None, dict]] = OrderedDict()

    @staticmethod
    def key(loaded_at: datetime, question: str, as_of: datetime | None, limit: int) -> tuple:
        return (loaded_at, " ".join(question.lower().split()), as_of.isoformat() if as_of else None, limit)

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
