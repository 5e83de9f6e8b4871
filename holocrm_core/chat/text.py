"""How the assistant writes values into its replies and records: dates, clipped text, JSON-safe values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def day(value: Any) -> str:
    return value.date().isoformat() if hasattr(value, "date") else str(value or "")[:10]


def clip(value: Any, n: int) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "as_tuple"):  # Decimal
        return float(value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def jsonable(value: Any) -> Any:
    from holocrm_core.services import jsonable as to_json

    return to_json(value)
