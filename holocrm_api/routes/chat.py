"""``POST /api/chat``: one turn of a conversation kept under its ``session_id`` (in a session store every
worker shares; see ``holocrm_api.chat_turns``).

The turn is read by ``holocrm_core.chat`` over the served snapshot's tables, NL context, similarity store,
decision service and experiments. A write is previewed first and made only on a later turn's "yes" (or
``yes: true``), appended to the API's own durable logs. Only callers with the write scope can confirm a
write; any caller can read.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import Field, StrictBool
from starlette.concurrency import run_in_threadpool

from holocrm_api.auth import Caller
from holocrm_api.chat_turns import run_turn, writer
from holocrm_api.deps import Protected, ServicesDep, SnapshotDep, require_caller
from holocrm_api.errors import ALWAYS, INVALID, NOT_BUILT, PROTECTED, TOO_BIG, ApiError
from holocrm_api.records import ID_PATTERN, ApiBody

router = APIRouter(
    tags=["chat"],
    dependencies=[Protected],
    responses={**PROTECTED, **INVALID, **NOT_BUILT, **TOO_BIG, **ALWAYS},
)


class ChatRequest(ApiBody):
    text: str = Field(min_length=1, max_length=1000, description="What the user said")
    session_id: str | None = Field(
        None,
        pattern=ID_PATTERN,
        description="The conversation; omitted: a new one (its id is returned)",
    )
    yes: StrictBool = Field(False, description="Make a write this turn proposes without waiting for a yes")


@router.post("/api/chat")
async def chat(
    body: ChatRequest,
    snap: SnapshotDep,
    services: ServicesDep,
    caller: Annotated[Caller, Depends(require_caller)],
) -> dict[str, Any]:
    """One turn: the intent read, its arguments, the records shown (with ids), the write proposed, made or
    refused, and the trace of the steps run."""
    session_id = body.session_id or uuid.uuid4().hex
    write = writer(services, caller.allows("write"))
    try:
        turn = await run_in_threadpool(run_turn, snap, services, session_id, body.text, body.yes, write)
    except ValueError as exc:  # no staged tables in the served snapshot
        raise ApiError(503, "not_built", str(exc)) from None
    return {"session_id": session_id, **turn}
