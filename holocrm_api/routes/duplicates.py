"""Likely duplicate records (the pipeline's duplicate_candidates), most certain first, paged, with both
records' labels: the answer `holocrm duplicates` gives, from the same service."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from holocrm_api.deps import Protected, SnapshotDep
from holocrm_api.errors import ALWAYS, INVALID, NOT_BUILT, PROTECTED
from holocrm_api.records import MAX_PAGE, EntityTypeName, served
from holocrm_core.services import duplicate_page, jsonable

router = APIRouter(
    tags=["data quality"], dependencies=[Protected], responses={**PROTECTED, **INVALID, **NOT_BUILT, **ALWAYS}
)


class DuplicatePair(BaseModel):
    model_config = ConfigDict(extra="allow")
    entity_type: str
    id_a: str
    id_b: str
    score: float | None = Field(None, description="Probability the two records are one (0 to 1)")
    label_a: str | None = Field(None, description="What a person recognises record a by")
    label_b: str | None = None
    reasons: list[str] | None = None


class DuplicatePage(BaseModel):
    total: int
    offset: int
    limit: int
    results: list[DuplicatePair]


@router.get("/api/duplicates", response_model=DuplicatePage, response_model_exclude_unset=True)
async def duplicates(
    snap: SnapshotDep,
    entity_type: EntityTypeName | None = None,
    min_score: float = Query(0.0, ge=0.0, le=1.0, allow_inf_nan=False),
    limit: int = Query(50, ge=1, le=MAX_PAGE),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> dict[str, Any]:
    """Likely duplicate records, most certain first, each with both records' names."""
    snap.require("duplicates")
    context = served(snap)
    page = duplicate_page(
        context.duplicates(),
        entity_type=entity_type,
        min_score=min_score,
        limit=limit,
        offset=offset,
        labels=context.labels,
        ranked=True,
    )
    return jsonable(page)
