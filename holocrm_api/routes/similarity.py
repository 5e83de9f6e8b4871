"""Records like this one (nearest neighbours in the embedding index) and search over every entity.

Thin routes: each validates the request, calls the service the CLI calls too (``holocrm_core.services``) and
adds what only a server knows (the index versions it serves).
"""

from __future__ import annotations

import asyncio
import contextvars
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    create_model,
    field_validator,
)

from holocrm_api.deps import Protected, ServicesDep, SnapshotDep
from holocrm_api.errors import ALWAYS, INVALID, MISMATCH, NOT_BUILT, PROTECTED, TOO_BIG, UNKNOWN
from holocrm_api.records import (
    ID_PATTERN,
    MAX_PAGE,
    ApiBody,
    ContactId,
    EntityTypeName,
    PageSize,
    SearchModeName,
    entity_type_of,
    served,
)
from holocrm_core.services import Refusal, rules, search_records, similar_records
from holocrm_core.text import FILTER_COLUMNS

router = APIRouter(
    tags=["similarity"], dependencies=[Protected], responses={**PROTECTED, **INVALID, **NOT_BUILT, **ALWAYS}
)

FilterValue = str | list[str]
# A query filter names a filter column the index holds: anything else is a 422 the OpenAPI announces.
FilterPair = Annotated[
    str,
    StringConstraints(pattern=rf"^({'|'.join(FILTER_COLUMNS)})=.*[^\s,].*$", max_length=400),
]
# One optional field per filter the index holds, so the OpenAPI names them and anything else is a 422.
SearchFilters = create_model(
    "SearchFilters",
    __base__=ApiBody,
    **{column: (FilterValue | None, Field(None, max_length=200)) for column in FILTER_COLUMNS},
)


class Hit(BaseModel):
    """One record found: its id, type, label (name, title, company...) and score; the index's filter
    columns (industry, stage, owner...) and, for search, ``snippet`` and ``matched_by`` come along."""

    model_config = ConfigDict(extra="allow")
    id: str
    entity_type: str
    label: str | None = Field(None, description="What a person recognises the record by")
    score: float | None = Field(None, description="Search: on the scale `score_kind` names")
    similarity: float | None = Field(None, description="Cosine similarity of the embeddings")


class AttachmentHit(BaseModel):
    model_config = ConfigDict(extra="allow")
    entity_type: str
    activity_id: str
    file_name: str
    locator: str | None = None
    score: float | None = None
    snippet: str | None = None


class SimilarAnswer(BaseModel):
    entity_type: str
    entity_id: str
    label: str | None = None
    score_kind: str
    results: list[Hit]
    index_version: int | None = None
    contact_id: str | None = Field(None, description="The contact asked about (contacts route only)")


class SearchAnswer(BaseModel):
    query: str
    mode: str
    score_kind: str
    results: list[Hit]
    attachments: list[AttachmentHit] | None = None
    attachments_score_kind: str | None = None
    index_versions: dict[str, int] = {}


def _service_text(value: str, check) -> str:
    try:
        return check(value)
    except Refusal as exc:  # the service's own words, as a 422 problem
        raise ValueError(exc.message) from None


class SemanticSearchRequest(ApiBody):
    query: str = Field(
        max_length=rules.MAX_QUERY_CHARS,
        json_schema_extra={"minLength": 1},
        description="What to look for, in words (an empty text is refused)",
    )
    entity_types: list[EntityTypeName] | None = Field(
        None, max_length=4, description="contact, company, deal, activity (default: all)"
    )
    mode: SearchModeName = Field(
        "hybrid",
        description="vector (alias semantic, meaning): by meaning; fulltext (alias text, keyword, words): "
        "by words (BM25); hybrid: both, fused by rank",
    )
    limit: PageSize = 10
    filters: SearchFilters | None = Field(
        None, description='Scalar prefilters, e.g. {"industry": "logistics"}'
    )
    with_text: StrictBool = Field(False, description="Add each hit's whole indexed text")
    attachments: StrictBool = Field(
        False, description="Also return matching attachment passages, as a second list on its own scale"
    )

    @field_validator("query")
    @classmethod
    def _query(cls, value: str) -> str:
        return _service_text(value, rules.query_text)

    @field_validator("entity_types")
    @classmethod
    def _types(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else list(dict.fromkeys(entity_type_of(v) for v in value))


def _similar(snap, entity_type, entity_id, limit, min_similarity, filters) -> dict[str, Any]:
    snap.require("similarity")
    answer = similar_records(
        snap.store,
        entity_type,
        entity_id,
        limit=limit,
        min_similarity=min_similarity,
        filters=filters,
        labels=served(snap).labels,
    )
    return {**answer, "index_version": snap.index_versions.get(answer["entity_type"])}


async def _similar_off_loop(services, snap, *args) -> dict[str, Any]:
    """``_similar`` on a worker thread of ``services.similar_pool`` (``HOLOCRM_SIMILAR_THREADS`` threads,
    queries taken in arrival order), in this request's context (its request id on any log line).

    At 1M rows a query's faiss scan costs about 3 ms of CPU. Answered on the event loop (the route was
    async), ten clients' queries ran one after another on one core: p50 64 / p95 143 ms at 10 clients. faiss
    releases the GIL while it scans, so on a worker thread both cores scan while the loop keeps reading and
    writing other requests (benchmarks/results/serving-1m-20261207.json, README "Scale"). A plain executor
    rather than ``anyio.to_thread``: the hop is on the event loop, whose time every request waits for."""
    context = contextvars.copy_context()
    call = partial(context.run, _similar, snap, *args)
    return await asyncio.get_running_loop().run_in_executor(services.similar_pool, call)


@router.get(
    "/api/contacts/{contact_id}/similar",
    responses=UNKNOWN,
    response_model=SimilarAnswer,
    response_model_exclude_unset=True,
)
# async, with the query itself on a worker thread (``_similar_off_loop``): one thread-pool hop, not the two
# of a sync handler (FastAPI validates a sync handler's answer on the pool too).
async def similar_contacts(
    contact_id: ContactId,
    snap: SnapshotDep,
    services: ServicesDep,
    limit: int = Query(10, ge=1, le=MAX_PAGE),
    min_similarity: float = Query(0.0, ge=-1.0, le=1.0, allow_inf_nan=False),
) -> dict[str, Any]:
    """Contacts most like this one (nearest neighbours in the embedding index), with their names."""
    answer = await _similar_off_loop(services, snap, "contact", contact_id, limit, min_similarity, None)
    return {**answer, "contact_id": contact_id}


@router.get(
    "/api/similar/{entity_type}/{entity_id}",
    responses=UNKNOWN,
    response_model=SimilarAnswer,
    response_model_exclude_unset=True,
)
async def similar_records_route(
    entity_type: EntityTypeName,
    snap: SnapshotDep,
    services: ServicesDep,
    entity_id: str = Path(pattern=ID_PATTERN, description="The record's CRM id"),
    limit: int = Query(10, ge=1, le=MAX_PAGE),
    min_similarity: float = Query(0.0, ge=-1.0, le=1.0, allow_inf_nan=False),
    filter: list[FilterPair] | None = Query(
        None, max_length=10, description="column=value (a,b for any of them), repeatable"
    ),
) -> dict[str, Any]:
    """Records of any type (contact, company, deal, activity) most like this one, with optional filters."""
    filters = rules.filter_pairs(filter)
    return await _similar_off_loop(services, snap, entity_type, entity_id, limit, min_similarity, filters)


@router.post(
    "/api/search/semantic",
    responses={**TOO_BIG, **MISMATCH},
    response_model=SearchAnswer,
    response_model_exclude_unset=True,
)
def semantic_search(body: SemanticSearchRequest, snap: SnapshotDep) -> dict[str, Any]:
    """Find records by meaning (vector), by words (full text) or both (hybrid), each with its label."""
    snap.require("similarity")
    filters = body.filters.model_dump(exclude_none=True) if body.filters else None
    answer = search_records(
        snap.store,
        body.query,
        entity_types=body.entity_types,
        mode=body.mode,
        limit=body.limit,
        filters=filters or None,
        with_text=body.with_text,
        attachments=body.attachments,
        labels=served(snap).labels,
    )
    return {**answer, "index_versions": snap.index_versions}
