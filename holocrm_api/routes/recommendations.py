"""Next best action for a contact, from the one decision service the CLI and the pipeline answer with too.

Which contacts get a recommendation, which policy answers (the gated PPO outreach champion where it covers
the contact, else the contextual policy learning online, else the segment recommender) and why: all decided
in ``holocrm_core.decisions.service``; this route validates, asks, and shapes the answer.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from holocrm_api.deps import Protected, SnapshotDep
from holocrm_api.errors import ALWAYS, INVALID, NOT_BUILT, PROTECTED, UNKNOWN, ApiError
from holocrm_api.records import ContactId, require_contact

router = APIRouter(
    tags=["decisions"],
    dependencies=[Protected],
    responses={**PROTECTED, **INVALID, **UNKNOWN, **NOT_BUILT, **ALWAYS},
)


class PolicyInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(description="The policy that answered")
    kind: str
    version: str
    served_as: str = Field(description="outreach_champion, champion, learning_online or fallback")
    why: str = Field(description="Why this policy serves this contact")


class Recommendation(BaseModel):
    model_config = ConfigDict(extra="allow")
    contact_id: str
    action: str | None = Field(description="email, call, proposal or wait; null for a decided contact")
    decided: bool = Field(description="True: the contact gets no recommendation (see reason)")
    reason: str | None = Field(None, description="Why a decided contact gets none")
    policy: PolicyInfo | None = None
    policy_version: str | None = None
    priority: str | None = None
    expected_success_rate: float | None = None
    uncertainty: float | None = None
    trials: int | None = None
    propensity: float | None = Field(None, description="P(this action) under the served policy: log it")
    reasoning: str | None = Field(None, description="The reasons in a salesperson's words")
    factors: list[str] | None = Field(None, description="The context features behind the reasons")
    posterior: dict[str, dict[str, Any]] | None = Field(None, description="Per action, when asked for")


@router.get("/api/contacts/{contact_id}/recommendation", response_model=Recommendation)
async def contact_recommendation(
    contact_id: ContactId,
    snap: SnapshotDep,
    posterior: bool = Query(False, description="Include the posterior behind the decision, per action"),
) -> dict[str, Any]:
    """Next best action (email, call, proposal, wait): which policy answered, its version, why, the reasons."""
    require_contact(snap, contact_id)
    snap.require("decisions")
    answer = snap.decisions.recommend(contact_id, posterior=posterior)
    if answer is None:  # in the contacts table but not the decision service's (built from older tables)
        raise ApiError(503, "not_built", f"contact {contact_id} is newer than the decision service; retry")
    return answer


@router.get("/api/decisions/policy", tags=["decisions"])
async def decision_policy(snap: SnapshotDep) -> dict[str, Any]:
    """The served decision policies, their versions and why, and what was learned online (reward curve)."""
    snap.require("decisions")
    return snap.decisions.describe()
