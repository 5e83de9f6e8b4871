"""One chat turn at the API's doors (``POST /api/chat``, the Slack endpoints): the conversation loaded from
the session store shared by every worker, the turn run over the served snapshot, the state saved back.

A write is previewed first and made only on a later turn's "yes" (or ``yes``); it is appended to the API's
own durable logs, exactly as its routes do: closes and reopenings to the outcome log (checked against the
deal states under the log's lock), action outcomes to the action log (the decision service learns from
them), notes to HOLOCRM_HOME/logs/notes.ndjson, experiments through the experiment service.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from holocrm_api.outcome_log import AppendOnlyLog

log = logging.getLogger("holocrm.chat")
_data: dict[int, Any] = {}  # id(snapshot) -> ChatData (one per served snapshot)
_lock = threading.Lock()
_notes: dict[str, AppendOnlyLog] = {}
_stores: dict[int, Any] = {}  # id(services) -> SessionStore (one connection per app; the file is shared)
_session_locks: dict[str, threading.Lock] = {}


def chat_data(snap, services):
    from holocrm_core.chat import ChatData
    from holocrm_core.experiments.service import ExperimentService

    with _lock:
        data = _data.get(id(snap))
        if data is None:
            tables = {name.removeprefix("staged_"): frame for name, frame in snap.tables.items()}
            home = services.settings.paths.home
            data = ChatData(
                tables,
                nlq_factory=(lambda: snap.nlq_context) if snap.nlq_context is not None else None,
                similarity=snap.store,
                decisions_factory=(lambda: snap.decisions) if snap.decisions is not None else None,
                experiments_factory=lambda: ExperimentService(home),
            )
            while len(_data) >= 2:  # the snapshot before the previous one is no longer served
                _data.pop(next(iter(_data)))
            _data[id(snap)] = data
            # the name index and last touches in the background: the first turns need not wait for them
            threading.Thread(target=_warm, args=(data,), name="chat-warm", daemon=True).start()
    data.deal_states = services.deal_states  # the API's own fold of its outcome log
    return data


def _warm(data) -> None:
    try:
        data.warm()
    except Exception as exc:  # noqa: BLE001 - a warm-up failure only means the first turn does the work
        log.warning("chat warm-up failed: %s: %s", type(exc).__name__, exc)


def session_store(services):
    from holocrm_core.chat.sessions import SessionStore

    with _lock:
        store = _stores.get(id(services))
        if store is None:
            store = _stores[id(services)] = SessionStore.under(services.settings.paths.home)
        return store


def writer(
    services, can_write: bool, why_not: str = "confirming a write needs an API key with the write scope"
):
    from holocrm_core.chat.experiment_intents import create_experiment
    from holocrm_core.experiments.service import ExperimentService

    def write(kind: str, record: dict, check=None) -> dict:
        if not can_write:
            raise PermissionError(why_not)
        if kind in ("close_deal", "reopen_deal"):
            result = services.outcomes.append(record, check=check)
        elif kind == "record_outcome":
            result = services.actions.append(record)
        elif kind == "start_experiment":
            return create_experiment(ExperimentService(services.settings.paths.home), record)
        else:
            path = services.settings.paths.logs / "notes.ndjson"
            with _lock:
                log = _notes.setdefault(str(path), AppendOnlyLog(path))
            result = log.append(record)
        return {"record": result.record, "created": result.created}

    return write


def run_turn(snap, services, session_id: str, text: str, yes: bool, write) -> dict[str, Any]:
    """Load the session (any worker may have run its last turn), run the turn, save it. Blocking: call it
    from a worker thread."""
    from holocrm_core.chat import ChatSession

    data = chat_data(snap, services)
    store = session_store(services)
    with _lock:
        lock = _session_locks.setdefault(session_id, threading.Lock())
        if len(_session_locks) > 10_000:
            _session_locks.clear()
            _session_locks[session_id] = lock
    with lock:
        state = store.load(session_id)
        if state is None:
            session = ChatSession(data, writer=write, session_id=session_id)
        else:
            session = ChatSession.restore(data, state, writer=write)
        turn = session.turn(text, yes)
        store.save(session_id, session.state())
    return turn
