"""Lead and deal scores: a lookup in the served scores; an open record newer than the last run is scored now."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from holocrm_api.answers import jsonable
from holocrm_api.deps import Protected, SnapshotDep
from holocrm_api.errors import ALWAYS, INVALID, NOT_BUILT, PROTECTED, UNKNOWN, ApiError
from holocrm_api.loader import EntityScores, Snapshot
from holocrm_api.records import ContactId, DealId, require_contact, require_deal
from holocrm_core.outcomes import not_open_reason

router = APIRouter(
    tags=["scores"],
    dependencies=[Protected],
    responses={**PROTECTED, **INVALID, **UNKNOWN, **NOT_BUILT, **ALWAYS},
)
KIND = {"contact": "lead", "deal": "deal"}


def served_scores(snap: Snapshot, entity: str) -> EntityScores:
    scores = snap.scores.get(entity)
    if scores is None:
        snap.require(f"score_{entity}s")
        raise ApiError(503, "not_built", f"no {KIND[entity]} scores are loaded yet")
    return scores


def score_payload(scores: EntityScores, row: dict[str, Any], source: str) -> dict[str, Any]:
    score = row.get("score")
    return {
        "score": None if score is None else float(score),
        "band": row.get("band"),
        "reasons": jsonable(row.get("reasons")),
        "model": {
            "name": scores.scorer.model_name,
            "version": scores.scorer.version,
            "served_as": scores.scorer.served_as,
        },
        "source": source,
    }


def not_scored(entity: str, entity_id: str) -> ApiError:
    return ApiError(404, "not_scored", not_open_reason(entity, entity_id))  # the CLI's words too


def score_now(snap: Snapshot, entity: str, entity_id: str) -> dict[str, Any]:
    """The score, computing it when it is not a lookup (blocking: call from a thread)."""
    scores = served_scores(snap, entity)
    found = scores.lookup(entity_id)
    if found is not None:
        return score_payload(scores, *found)
    if not scores.is_open(entity_id):
        raise not_scored(entity, entity_id)
    return score_payload(scores, scores.score_now(entity_id), "on_demand")


async def score_of(snap: Snapshot, entity: str, entity_id: str) -> dict[str, Any]:
    """A lookup answers on the event loop; only on-demand scoring goes to a thread."""
    scores = served_scores(snap, entity)
    found = scores.lookup(entity_id)
    if found is not None:
        return score_payload(scores, *found)
    return await run_in_threadpool(score_now, snap, entity, entity_id)


@router.get("/api/contacts/{contact_id}/score")
async def contact_score(contact_id: ContactId, snap: SnapshotDep) -> dict[str, Any]:
    """The lead score of a contact (0..1), its band, the factors behind it and the scorer that made it."""
    require_contact(snap, contact_id)
    return {"contact_id": contact_id, **await score_of(snap, "contact", contact_id)}


@router.get("/api/deals/{deal_id}/score")
async def deal_score(deal_id: DealId, snap: SnapshotDep) -> dict[str, Any]:
    """The win probability of an open deal, its band, the factors behind it and the scorer that made it."""
    require_deal(snap, deal_id)
    return {"deal_id": deal_id, **await score_of(snap, "deal", deal_id)}
