"""Similar contacts (nearest neighbours in the embedding index) and semantic search over every entity."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import Field, create_model, field_validator

from holocrm_api.answers import jsonable
from holocrm_api.deps import Protected, SnapshotDep
from holocrm_api.errors import (
    ALWAYS,
    INVALID,
    NOT_BUILT,
    PROTECTED,
    TOO_BIG,
    UNKNOWN,
    ApiError,
    bad_request,
)
from holocrm_api.records import (
    MAX_PAGE,
    ApiBody,
    ContactId,
    EntityTypeName,
    PageSize,
    entity_type_of,
    require_contact,
)
from holocrm_core.text import FILTER_COLUMNS

router = APIRouter(
    tags=["similarity"], dependencies=[Protected], responses={**PROTECTED, **INVALID, **NOT_BUILT, **ALWAYS}
)

FilterValue = str | list[str]
# One optional field per filter the index holds, so the OpenAPI names them and anything else is a 422.
SearchFilters = create_model(
    "SearchFilters",
    __base__=ApiBody,
    **{column: (FilterValue | None, Field(None, max_length=200)) for column in FILTER_COLUMNS},
)


class SemanticSearchRequest(ApiBody):
    query: str = Field(min_length=1, max_length=1000, description="What to look for, in words")
    entity_types: list[EntityTypeName] | None = Field(
        None, max_length=4, description="contact, company, deal, activity (default: all)"
    )
    mode: Literal["hybrid", "vector", "fulltext"] = Field(
        "hybrid", description="vector: by meaning; fulltext: by words (BM25); hybrid: both, fused by rank"
    )
    limit: PageSize = 10
    filters: SearchFilters | None = Field(
        None, description='Scalar prefilters, e.g. {"industry": "logistics"}'
    )

    @field_validator("entity_types")
    @classmethod
    def _types(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else list(dict.fromkeys(entity_type_of(v) for v in value))


@router.get("/api/contacts/{contact_id}/similar", responses=UNKNOWN)
# async: the warmed store answers from memory in about a millisecond, less than the thread-pool hop costs
# under concurrency (GIL contention measured p95 67 ms at 10 clients with a sync handler).
async def similar_contacts(
    contact_id: ContactId,
    snap: SnapshotDep,
    limit: int = Query(10, ge=1, le=MAX_PAGE),
    min_similarity: float = Query(0.0, ge=-1.0, le=1.0, allow_inf_nan=False),
) -> dict[str, Any]:
    """Contacts most like this one (nearest neighbours in the embedding index)."""
    require_contact(snap, contact_id)
    snap.require("similarity")
    try:
        rows = snap.store.similar("contact", contact_id, limit=limit, min_similarity=min_similarity)
    except KeyError:
        raise ApiError(
            404,
            "not_found",
            f"contact {contact_id!r} is not in the similarity index yet "
            "(it was added after the index was built); run `holocrm run`",
        )
    return {
        "contact_id": contact_id,
        "index_version": snap.index_versions.get("contact"),
        "results": jsonable(rows),
    }


@router.post("/api/search/semantic", responses=TOO_BIG)
def semantic_search(body: SemanticSearchRequest, snap: SnapshotDep) -> dict[str, Any]:
    """Find entities by meaning (vector), by words (full text) or both (hybrid)."""
    snap.require("similarity")
    filters = body.filters.model_dump(exclude_none=True) if body.filters else None
    try:
        rows = snap.store.search(
            body.query,
            entity_types=body.entity_types,
            mode=body.mode,
            limit=body.limit,
            filters=filters or None,
        )
    except ValueError:  # the store's message names its internals: say what the caller can change
        raise bad_request("body.filters", "the index cannot apply these filters; see SearchFilters in /docs")
    return {
        "query": body.query,
        "mode": body.mode,
        "index_versions": snap.index_versions,
        "results": jsonable(rows),
    }
