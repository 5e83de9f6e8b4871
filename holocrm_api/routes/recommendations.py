"""Next best action for a contact: the gated champion policy's precomputed choice, else segment Thompson.

The `recommendations` asset writes the champion action policy's decision for every open contact (contextual
Thompson sampling once `holocrm_action_policy@champion` passed its off-policy gate); a contact it does not
hold, or a run with no passed champion, is answered by the segment recommender that learns online.
"""

from __future__ import annotations

from typing import Any

import polars as pl
from fastapi import APIRouter

from holocrm_api.deps import Protected, ServicesDep, SnapshotDep
from holocrm_api.errors import ALWAYS, INVALID, NOT_BUILT, PROTECTED, UNKNOWN
from holocrm_api.loader import Snapshot
from holocrm_api.outcome_log import AppendOnlyLog
from holocrm_api.records import ContactId, require_contact
from holocrm_core.decisions.recommend import recommendation_record
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
    champion = champion_recommendation(snap, contact_id)
    if champion is not None:
        return champion
    return services.recommender.recommend(contact_id, decision_context(context)).as_dict()


def champion_recommendation(snap: Snapshot, contact_id: str) -> dict[str, Any] | None:
    """The pipeline's decision for this contact when a gated champion policy made it, else None."""
    table = snap.tables.get("recommendations")
    if table is None or not {"contact_id", "action", "policy_version"} <= set(table.columns):
        return None
    rows = table.filter(pl.col("contact_id") == contact_id).head(1)
    if rows.height == 0:
        return None
    row = rows.row(0, named=True)
    if str(row.get("policy_version") or "").startswith("segment_thompson"):
        return None  # no passed champion: the online segment recommender is fresher
    return {**recommendation_record(row), "source": "champion_policy"}


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
