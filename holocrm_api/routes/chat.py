"""``POST /api/chat``: one turn of a conversation kept on the server under its ``session_id``.

The turn is read by ``holocrm_core.chat`` over the served snapshot's tables, NL context, similarity store and
decision service. A write is previewed first and made only on a later turn's "yes" (or ``yes: true``); it is
appended here to the API's own durable outcome log, checked against the deal states under the log's lock,
exactly as ``POST /api/deals/{id}/close`` does; notes go to HOLOCRM_HOME/logs/notes.ndjson. Only callers
with the write scope can confirm a write; any caller can read.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import Field, StrictBool
from starlette.concurrency import run_in_threadpool

from holocrm_api.auth import Caller
from holocrm_api.deps import Protected, ServicesDep, SnapshotDep, require_caller
from holocrm_api.errors import ALWAYS, INVALID, NOT_BUILT, PROTECTED, TOO_BIG, ApiError
from holocrm_api.outcome_log import AppendOnlyLog
from holocrm_api.records import ID_PATTERN, ApiBody

router = APIRouter(
    tags=["chat"],
    dependencies=[Protected],
    responses={**PROTECTED, **INVALID, **NOT_BUILT, **TOO_BIG, **ALWAYS},
)
MAX_SESSIONS = 1000  # the least recently used conversation is forgotten past this
_sessions: OrderedDict[str, Any] = OrderedDict()
_data: dict[int, Any] = {}  # id(snapshot) -> ChatData (one per served snapshot)
_lock = threading.Lock()
_notes: dict[str, AppendOnlyLog] = {}


class ChatRequest(ApiBody):
    text: str = Field(min_length=1, max_length=1000, description="What the user said")
    session_id: str | None = Field(
        None,
        pattern=ID_PATTERN,
        description="The conversation; omitted: a new one (its id is returned)",
    )
    yes: StrictBool = Field(False, description="Make a write this turn proposes without waiting for a yes")


def _chat_data(snap):
    from holocrm_core.chat import ChatData

    with _lock:
        data = _data.get(id(snap))
        if data is None:
            tables = {name.removeprefix("staged_"): frame for name, frame in snap.tables.items()}
            data = ChatData(
                tables,
                nlq_factory=(lambda: snap.nlq_context) if snap.nlq_context is not None else None,
                similarity=snap.store,
                decisions_factory=(lambda: snap.decisions) if snap.decisions is not None else None,
            )
            _data.clear()  # the previous snapshot's data is no longer served
            _data[id(snap)] = data
        return data


def _writer(services, can_write: bool):
    def write(kind: str, record: dict, check=None) -> dict:
        if not can_write:
            raise PermissionError("confirming a write needs an API key with the write scope")
        if kind == "close_deal":
            result = services.outcomes.append(record, check=check)
        else:
            path = services.settings.paths.logs / "notes.ndjson"
            with _lock:
                log = _notes.setdefault(str(path), AppendOnlyLog(path))
            result = log.append(record)
        return {"record": result.record, "created": result.created}

    return write


@router.post("/api/chat")
async def chat(
    body: ChatRequest,
    snap: SnapshotDep,
    services: ServicesDep,
    caller: Annotated[Caller, Depends(require_caller)],
) -> dict[str, Any]:
    """One turn: the intent read, its arguments, the records shown (with ids), the write proposed, made or
    refused, and the trace of the steps run."""
    from holocrm_core.chat import ChatSession

    try:
        data = _chat_data(snap)
    except ValueError as exc:
        raise ApiError(503, "not_built", str(exc)) from None
    data.deal_states = services.deal_states  # the API's own fold of its outcome log
    can_write = caller.allows("write")
    session_id = body.session_id or uuid.uuid4().hex
    with _lock:
        session = _sessions.pop(session_id, None) or ChatSession(data, session_id=session_id)
        _sessions[session_id] = session
        while len(_sessions) > MAX_SESSIONS:
            _sessions.popitem(last=False)
    session.data = data
    session.writer = _writer(services, can_write)
    turn = await run_in_threadpool(session.turn, body.text, body.yes)
    return {"session_id": session_id, **turn}
