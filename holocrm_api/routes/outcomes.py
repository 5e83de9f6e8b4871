"""What happened in the field: deals closed and actions taken, appended durably before the 2xx."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Header, Response
from pydantic import Field

from holocrm_api.deps import FORBIDDEN, ServicesDep, SnapshotDep, Writer
from holocrm_api.errors import (
    ALWAYS,
    INVALID,
    NOT_BUILT,
    PROTECTED,
    TOO_BIG,
    UNKNOWN,
    ApiError,
    bad_request,
    error_doc,
)
from holocrm_api.loader import CapabilityMissing, Snapshot
from holocrm_api.metrics import ServingMetrics
from holocrm_api.outcome_log import AppendOnlyLog, AppendResult, IdempotencyConflict, utc_now_iso
from holocrm_api.records import (
    ID_PATTERN,
    ApiBody,
    DealId,
    FiniteFloat,
    IsoTime,
    require_contact,
    require_deal,
)
from holocrm_api.routes.scores import score_now
from holocrm_core.deal_states import DealStateConflict
from holocrm_core.decisions.segment_thompson import ACTIONS

log = logging.getLogger("holocrm.serving")
CONFLICT = {
    409: error_doc(
        "The idempotency key was used before for a different request (`recorded` is that one), or the "
        "deal's current state contradicts the request (`current` is that state)"
    )
}
router = APIRouter(
    dependencies=[Writer],
    responses={
        **PROTECTED,
        **FORBIDDEN,
        **INVALID,
        **UNKNOWN,
        **NOT_BUILT,
        **TOO_BIG,
        **CONFLICT,
        **ALWAYS,
        200: {"description": "Recorded before (same idempotency key): the earlier record"},
    },
)
CLOCK_SKEW = timedelta(minutes=10)
IdempotencyHeader = Header(None, alias="Idempotency-Key", min_length=1, max_length=200)


class CloseDealRequest(ApiBody):
    outcome: Literal["won", "lost"]
    closed_at: IsoTime | None = Field(None, description="When the deal closed; default now (UTC)")
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)


class ReopenDealRequest(ApiBody):
    reason: str | None = Field(None, max_length=500, description="Why the deal is open again")
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)


class ActionOutcomeRequest(ApiBody):
    contact_id: str = Field(pattern=ID_PATTERN)
    deal_id: str | None = Field(None, pattern=ID_PATTERN)
    action: Literal[ACTIONS]
    reward: FiniteFloat = Field(ge=0.0, le=1.0, description="The result: 1 paid off, 0 did not, or a share")
    context: dict[str, str | bool | int | FiniteFloat | None] | None = Field(
        None, max_length=50, description="Decision context; default: the contact's now"
    )
    propensity: FiniteFloat | None = Field(
        None, gt=0.0, le=1.0, description="P(action) under the logging policy"
    )
    policy: str | None = Field(None, max_length=100)
    taken_at: IsoTime | None = None
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)


def idempotency_key(header: str | None, body: str | None) -> str:
    if header and body and header != body:
        # 409, not 422: each is well-formed alone; together they name two different requests.
        raise ApiError(
            409, "idempotency_conflict", "the Idempotency-Key header and body.idempotency_key differ"
        )
    return header or body or f"srv-{uuid.uuid4()}"


@router.post("/api/actions/outcome", tags=["decisions"], status_code=201)
def record_action_outcome(
    body: ActionOutcomeRequest,
    response: Response,
    snap: SnapshotDep,
    services: ServicesDep,
    key_header: str | None = IdempotencyHeader,
) -> dict[str, Any]:
    """Record an action taken with a contact and how it turned out (durable before the answer)."""
    key = idempotency_key(key_header, body.idempotency_key)
    contact = require_contact(snap, body.contact_id)
    if body.deal_id is not None:
        require_deal(snap, body.deal_id)
    decisions = snap.decisions
    known = decisions.context_of(body.contact_id) if decisions is not None else None
    served = decisions.served(body.contact_id) if decisions is not None else None
    if served is not None and served["action"] != body.action:
        served = None  # the caller did something else than what was served: its propensity is unknown
    record = {
        "idempotency_key": key,
        "recorded_at": utc_now_iso(),
        "contact_id": body.contact_id,
        "deal_id": body.deal_id,
        "action": body.action,
        "reward": body.reward,
        # the contact's full decision context as served (custom fields included), the caller's on top
        "context": {**(known or _short_context(contact)), **(body.context or {})},
        "propensity": body.propensity if body.propensity is not None else (served or {}).get("propensity"),
        "policy": body.policy or ((served or {}).get("policy_version")),
        "taken_at": body.taken_at.isoformat() if body.taken_at else None,
    }
    return append(services.actions, "actions", record, response, services.metrics)


def _short_context(contact: dict[str, Any]) -> dict[str, Any]:
    return {k: contact.get(k) for k in ("lifecycle_status", "seniority", "band")}


@router.post("/api/deals/{deal_id}/close", tags=["deals"], status_code=201)
def close_deal(
    body: CloseDealRequest,
    response: Response,
    deal_id: DealId,
    snap: SnapshotDep,
    services: ServicesDep,
    key_header: str | None = IdempotencyHeader,
) -> dict[str, Any]:
    """Record that a deal was won or lost, with the prediction that was made before it closed."""
    key = idempotency_key(key_header, body.idempotency_key)
    deal = require_deal(snap, deal_id)
    now = datetime.now(UTC)
    closed_at = body.closed_at or now
    if closed_at > now + CLOCK_SKEW:
        raise bad_request("body.closed_at", f"{closed_at.isoformat()} is in the future")
    created = deal.get("created_at")
    if isinstance(created, datetime) and closed_at < created:
        raise bad_request("body.closed_at", f"before the deal was created ({created.isoformat()})")
    existing = services.outcomes.get(key)
    record = {
        "idempotency_key": key,
        "recorded_at": utc_now_iso(),
        "kind": "close",
        "deal_id": deal_id,
        "outcome": body.outcome,
        "closed_at": closed_at.isoformat(),
        "prediction": existing["prediction"] if existing else prediction_before_close(snap, deal_id),
    }

    def one_outcome_per_deal() -> AppendResult | None:
        # Run under the log's lock with every process's records read: no two closes can race past it.
        same = services.deal_states.check_close(deal_id, body.outcome, deal.get("stage"))
        if same is None:
            return None
        return AppendResult(same.record or {**same.public(), "outcome": same.status}, created=False)

    return append(services.outcomes, "outcomes", record, response, services.metrics, one_outcome_per_deal)


@router.post("/api/deals/{deal_id}/reopen", tags=["deals"], status_code=201)
def reopen_deal(
    body: ReopenDealRequest,
    response: Response,
    deal_id: DealId,
    snap: SnapshotDep,
    services: ServicesDep,
    key_header: str | None = IdempotencyHeader,
) -> dict[str, Any]:
    """Reopen a closed deal (closed in the field or in the export), logged as a reopening; it can then be
    closed with either outcome. Reopening an open deal is 409 with its current state."""
    key = idempotency_key(key_header, body.idempotency_key)
    deal = require_deal(snap, deal_id)
    record = {
        "idempotency_key": key,
        "recorded_at": utc_now_iso(),
        "kind": "reopen",
        "deal_id": deal_id,
        "outcome": None,
        "reason": body.reason,
        "reopened_from": services.deal_states.state(deal_id, deal.get("stage")).status,
    }

    def only_a_closed_deal() -> None:
        services.deal_states.check_reopen(deal_id, deal.get("stage"))

    return append(services.outcomes, "outcomes", record, response, services.metrics, only_a_closed_deal)


def prediction_before_close(snap: Snapshot, deal_id: str) -> dict[str, Any]:
    try:
        scored = score_now(snap, "deal", deal_id)
    except (ApiError, CapabilityMissing):
        return {"score": None, "model_version": None, "source": "none"}
    return {"score": scored["score"], "model_version": scored["model"]["version"], "source": scored["source"]}


def append(
    log_: AppendOnlyLog, name: str, record: dict, response: Response, metrics: ServingMetrics, check=None
):
    try:
        result = log_.append(record, check=check)
    except DealStateConflict as exc:
        metrics.writes.labels(name, "conflict").inc()
        raise ApiError(409, "deal_state_conflict", str(exc), current=exc.current.public())
    except IdempotencyConflict as exc:
        metrics.writes.labels(name, "conflict").inc()
        raise ApiError(
            409,
            "idempotency_conflict",
            f"idempotency key {exc.key!r} was already used for a different request",
            recorded=exc.existing,
        )
    except OSError as exc:
        metrics.writes.labels(name, "error").inc()
        log.error("could not write to the %s log: %s", name, exc)
        raise ApiError(503, "log_unavailable", f"the {name} log could not be written; nothing was recorded")
    metrics.writes.labels(name, "created" if result.created else "duplicate").inc()
    if not result.created:
        response.status_code = 200
    return {"recorded": True, "duplicate": not result.created, "record": result.record}
