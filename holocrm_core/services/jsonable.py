"""Plain JSON values from what the core returns (datetimes, Decimals, numpy scalars, NaN, polars frames), so
the CLI's ``--json`` and the API print the same answer."""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any


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
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    kind = type(value).__module__.split(".")[0]
    if kind == "polars":
        if hasattr(value, "to_dicts"):  # DataFrame
            return jsonable(value.to_dicts())
        if hasattr(value, "to_list"):  # Series
            return jsonable(value.to_list())
    if kind == "numpy":
        return jsonable(value.tolist() if hasattr(value, "shape") and value.shape else value.item())
    return str(value)
