"""Next best action for a contact, drawn by the segment Thompson recommender with its posterior."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from holocrm_api.deps import Protected, ServicesDep, SnapshotDep
from holocrm_api.errors import ALWAYS, INVALID, NOT_BUILT, PROTECTED, UNKNOWN
from holocrm_api.loader import Snapshot
from holocrm_api.outcome_log import AppendOnlyLog
from holocrm_api.records import ContactId, require_contact
from holocrm_core.decisions.segment_thompson import ThompsonRecommender

router = APIRouter(
    tags=["decisions"],
    dependencies=[Protected],
    responses={**PROTECTED, **INVALID, **UNKNOWN, **NOT_BUILT, **ALWAYS},
)


def decision_context(contact: dict[str, Any]) -> dict[str, Any]:
    return {
        "lifecycle_status": contact.get("lifecycle_status"),
        "band": contact.get("band"),
        "seniority": contact.get("seniority"),
    }


@router.get("/api/contacts/{contact_id}/recommendation")
async def contact_recommendation(
    contact_id: ContactId, snap: SnapshotDep, services: ServicesDep
) -> dict[str, Any]:
    """Next best action (email, call, proposal, wait) by Thompson sampling, with its posterior."""
    # A draw from in-memory Beta posteriors: microseconds, so nothing to precompute.
    context = require_contact(snap, contact_id)
    return services.recommender.recommend(contact_id, decision_context(context)).as_dict()


def seed_recommender(recommender: ThompsonRecommender, snap: Snapshot, actions: AppendOnlyLog) -> None:
    """Learn from the pipeline's action_log table (rows not also in the serving log), then the serving log."""
    seen = set()
    for record in actions.records():
        recommender.observe_record(record)
        seen.add(record["idempotency_key"])
    table = snap.tables.get("action_log")
    if table is not None and {"action", "reward"} <= set(table.columns):
        for row in table.iter_rows(named=True):
            if row.get("action_id") in seen or row.get("reward") is None:
                continue
            recommender.observe_record(row)
    actions.subscribe(recommender.observe_record)  # from now on, learn as outcomes are recorded
