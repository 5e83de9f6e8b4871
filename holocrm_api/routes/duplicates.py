"""Likely duplicate records (the pipeline's duplicate_candidates), most certain first, paged."""

from __future__ import annotations

from typing import Any

import polars as pl
from fastapi import APIRouter, Query

from holocrm_api.answers import jsonable
from holocrm_api.deps import Protected, SnapshotDep
from holocrm_api.errors import ALWAYS, INVALID, NOT_BUILT, PROTECTED
from holocrm_api.records import MAX_PAGE, EntityTypeName, entity_type_of

router = APIRouter(
    tags=["data quality"], dependencies=[Protected], responses={**PROTECTED, **INVALID, **NOT_BUILT, **ALWAYS}
)


@router.get("/api/duplicates")
async def duplicates(
    snap: SnapshotDep,
    entity_type: EntityTypeName | None = None,
    min_score: float = Query(0.0, ge=0.0, le=1.0, allow_inf_nan=False),
    limit: int = Query(50, ge=1, le=MAX_PAGE),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> dict[str, Any]:
    """Likely duplicate records, most certain first."""
    snap.require("duplicates")
    view = snap.duplicates
    if entity_type is not None:
        view = view.filter(pl.col("entity_type") == entity_type_of(entity_type))
    if min_score > 0:  # the loader sorted the table by score already
        view = view.filter(pl.col("score") >= min_score)
    page = view.slice(offset, limit)
    return {"total": view.height, "offset": offset, "limit": limit, "results": jsonable(page.to_dicts())}
