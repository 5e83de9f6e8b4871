"""The HoloCRM API: a thin FastAPI app over the latest artifacts, plus the durable write path for outcomes.

``create_app(settings)`` builds the app. Reads (similar contacts, search, NL questions, scores,
recommendations, duplicates) answer from the loader's current snapshot; writes (deal closed, action
outcome) are appended to fsync-ed logs before the 2xx. Every error is JSON ``{"error", "detail"}``
without a stack trace: 404 unknown id, 422 malformed input (with what is wrong), 413 oversized body,
401 missing/invalid API key (when required), 503 artifact not built yet (with what to run).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import anyio
from fastapi import FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from holocrm_api.auth import ApiKeyChecker
from holocrm_api.config import ServingSettings
from holocrm_api.loader import ArtifactLoader, CapabilityMissing, Snapshot, _optional_module
from holocrm_api.metrics import ServingMetrics
from holocrm_api.outcome_log import AppendOnlyLog, IdempotencyConflict, utc_now_iso
from holocrm_core import schema
from holocrm_core.decisions.segment_thompson import ACTIONS, ThompsonRecommender

log = logging.getLogger("holocrm.serving")

# Entity types as the similarity store and duplicate table name them; plurals are accepted too.
ENTITY_TYPES = ("contact", "company", "deal", "activity")
ENTITY_ALIASES = {"contacts": "contact", "companies": "company", "deals": "deal", "activities": "activity"}


def entity_type_of(value: str) -> str:
    name = ENTITY_ALIASES.get(value, value)
    if name not in ENTITY_TYPES:
        raise ValueError(f"unknown entity type {value!r}: use one of {', '.join(ENTITY_TYPES)}")
    return name
ID_PATTERN = r"^[A-Za-z0-9_.:@-]{1,128}$"  # CRM ids: no slashes, spaces or control characters
HARD_LIMIT_CEILING = 10_000  # beyond any sane page; settings.max_limit is the real bound
MAX_ROWS_RETURNED = 200
CLOCK_SKEW = timedelta(minutes=10)
ANSWER_TTL_S = 60.0  # a question without as_of counts "last week" from now: reuse its answer briefly only


class AnswerCache:
    """Recent NL answers per snapshot: the same question asked again (a dashboard tile) costs a lookup."""

    def __init__(self, size: int = 512):
        self.size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple, tuple[float | None, dict]] = OrderedDict()

    @staticmethod
    def key(snap, question: str, as_of, limit: int) -> tuple:
        return (snap.loaded_at, " ".join(question.lower().split()), as_of.isoformat() if as_of else None, limit)

    def get(self, key: tuple) -> dict | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, payload = entry
            if expires is not None and expires < time.monotonic():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return payload

    def put(self, key: tuple, payload: dict, ttl: float | None) -> None:
        with self._lock:
            self._entries[key] = (None if ttl is None else time.monotonic() + ttl, payload)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: str, **extra: Any):
        super().__init__(detail)
        self.status, self.error, self.detail, self.extra = status, error, detail, extra


def not_found(kind: str, entity_id: str) -> ApiError:
    return ApiError(404, "not_found", f"no {kind} with id {entity_id!r}")


def _bad_request(where: str, problem: str) -> ApiError:
    return ApiError(422, "invalid_request", f"{where}: {problem}", problems=[{"where": where, "problem": problem}])


# -- request bodies ----------------------------------------------------------------------------------
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SemanticSearchRequest(_Body):
    query: str = Field(min_length=1, max_length=1000, description="What to look for, in words")
    entity_types: list[str] | None = Field(
        None, max_length=4, description="contact, company, deal, activity (default: all)")
    mode: Literal["hybrid", "vector", "fulltext"] = Field(
        "hybrid", description="vector: by meaning; fulltext: by words (BM25); hybrid: both, fused by rank")
    limit: int = Field(10, ge=1, le=HARD_LIMIT_CEILING)
    filters: dict[str, str | int | float | bool | list[str]] | None = Field(
        None, max_length=10, description="Scalar prefilters, e.g. {\"industry\": \"logistics\"}")

    @field_validator("entity_types")
    @classmethod
    def _types(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else list(dict.fromkeys(entity_type_of(v) for v in value))


class NaturalLanguageRequest(_Body):
    question: str = Field(min_length=1, max_length=1000)
    as_of: datetime | None = Field(None, description="Answer as the data stood at this time (ISO 8601)")
    limit: int = Field(50, ge=1, le=HARD_LIMIT_CEILING, description="Rows returned (the answer counts all)")


class CloseDealRequest(_Body):
    outcome: Literal["won", "lost"]
    closed_at: datetime | None = Field(None, description="When the deal closed; default now (UTC)")
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)

    @field_validator("closed_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)  # CRM convention: naive times are UTC
        return value


class ActionOutcomeRequest(_Body):
    contact_id: str = Field(pattern=ID_PATTERN)
    deal_id: str | None = Field(None, pattern=ID_PATTERN)
    action: Literal[ACTIONS]
    reward: float = Field(ge=0.0, le=1.0, description="The result: 1 paid off, 0 did not, or a share")
    context: dict[str, Any] | None = Field(None, description="Decision context; default: the contact's now")
    propensity: float | None = Field(None, gt=0.0, le=1.0, description="P(action) under the logging policy")
    policy: str | None = Field(None, max_length=100)
    taken_at: datetime | None = None
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)


def _idempotency_key(header: str | None, body: str | None) -> str:
    if header and body and header != body:
        raise _bad_request("idempotency_key", "the Idempotency-Key header and the body field differ")
    return header or body or f"srv-{uuid.uuid4()}"


# -- ASGI middleware: metrics, auth, body size (pure ASGI: no per-request task overhead) -----------
class GuardMiddleware:
    def __init__(self, app, metrics: ServingMetrics, auth: ApiKeyChecker, max_body_bytes: int):
        self.app, self.metrics, self.auth, self.max_body = app, metrics, auth, max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status_box = [500]

        async def send_with_status(message):
            if message["type"] == "http.response.start":
                status_box[0] = message["status"]
            await send(message)

        try:
            if self.auth.needs_key(scope["path"]) and not self.auth.allowed(
                self.auth.key_from_headers(scope["headers"])
            ):
                return await _send_json(send_with_status, 401, {
                    "error": "unauthorized",
                    "detail": "a valid API key is required: send it as X-API-Key or Authorization: Bearer",
                }, extra_headers=[(b"www-authenticate", b"Bearer")])
            if scope["method"] in ("POST", "PUT", "PATCH"):
                receive = await self._bounded_body(scope, receive, send_with_status)
                if receive is None:
                    return
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(scope["method"], label, status_box[0], time.perf_counter() - started)

    async def _bounded_body(self, scope, receive, send):
        """Read the body up to the limit; answer 413 past it. Returns a receive that replays the body."""
        too_big = {"error": "payload_too_large",
                   "detail": f"request body is larger than the {self.max_body} bytes allowed"}
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    if int(value) > self.max_body:
                        await _send_json(send, 413, too_big)
                        return None
                except ValueError:
                    await _send_json(send, 400, {"error": "bad_request", "detail": "invalid Content-Length"})
                    return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_body:  # chunked upload without a Content-Length
                await _send_json(send, 413, too_big)
                return None
            chunks.append(body)
            if not message.get("more_body"):
                break
        whole = b"".join(chunks)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": whole, "more_body": False}
            return await receive()

        return replay


async def _send_json(send, status: int, payload: dict, extra_headers=()):
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra_headers]})
    await send({"type": "http.response.body", "body": body})


# -- the app -----------------------------------------------------------------------------------------
def create_app(settings: ServingSettings | None = None) -> FastAPI:
    """Build the API over HOLOCRM_HOME / the MLflow registry named in ``settings`` (default: from env)."""
    settings = settings or ServingSettings.from_env()
    paths = settings.paths.ensure()
    metrics = ServingMetrics()
    auth = ApiKeyChecker(settings.api_key_required, settings.api_keys)

    def on_swap(snapshot: Snapshot | None) -> None:
        if snapshot is None:
            metrics.reloads.labels("error").inc()
            return
        metrics.reloads.labels("swapped").inc()
        metrics.describe_snapshot(snapshot)

    loader = ArtifactLoader(settings, on_swap=on_swap)
    outcomes = AppendOnlyLog(paths.logs / "outcomes.ndjson", fingerprint_fields=("deal_id", "outcome"))
    actions = AppendOnlyLog(paths.logs / "actions.ndjson", fingerprint_fields=("contact_id", "action", "reward"))
    recommender = ThompsonRecommender()
    answers = AnswerCache()
    nlq_slots = anyio.Semaphore(max(1, min(4, os.cpu_count() or 1)))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loader.reload(force=True)
        _seed_recommender(recommender, loader.snapshot, actions)
        loader.start()
        try:
            yield
        finally:
            loader.stop()
            outcomes.close()
            actions.close()

    app = FastAPI(
        title="HoloCRM API",
        version="0.1.0",
        summary="Similar contacts, semantic search, NL questions, scores, next-best actions; outcome capture.",
        lifespan=lifespan,
    )
    app.state.settings, app.state.loader, app.state.metrics = settings, loader, metrics
    app.state.outcomes, app.state.actions, app.state.recommender = outcomes, actions, recommender
    app.add_middleware(GuardMiddleware, metrics=metrics, auth=auth, max_body_bytes=settings.max_body_bytes)
    _install_error_handlers(app)

    def check_limit(limit: int, where: str = "limit") -> int:
        if limit > settings.max_limit:
            raise _bad_request(where, f"at most {settings.max_limit} (got {limit})")
        return limit

    # -- operations ------------------------------------------------------------------------------------
    @app.get("/health", tags=["operations"])
    async def health() -> dict[str, Any]:
        """What is served: index versions, champion models, when loaded, and what is not built yet."""
        snap = loader.snapshot
        return {
            "status": "ok" if not snap.missing else "degraded",
            **snap.describe(),
            "last_reload_check": loader.last_check_at.isoformat() if loader.last_check_at else None,
            "last_reload_error": loader.last_error,
            "logs": {"outcomes": len(outcomes), "actions": len(actions)},
            "recommender": recommender.summary(),
            "auth": "api_key" if settings.api_key_required else "off",
        }

    @app.get("/metrics", tags=["operations"], include_in_schema=True)
    async def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    @app.post("/api/admin/reload", tags=["operations"])
    def reload_artifacts(force: bool = False) -> dict[str, Any]:
        """Check for newer artifacts now (the loader also checks on its own every few seconds)."""
        swapped = loader.reload(force=force)
        return {"swapped": swapped, "error": loader.last_error, **loader.snapshot.describe()}

    # -- similarity and search -------------------------------------------------------------------------
    @app.get("/api/contacts/{contact_id}/similar", tags=["similarity"])
    # async: the warmed store answers from memory in about a millisecond, less than the thread-pool hop costs
    # under concurrency (GIL contention measured p95 67 ms at 10 clients with a sync handler).
    async def similar_contacts(
        contact_id: str = Path(pattern=ID_PATTERN),
        limit: int = Query(10, ge=1, le=settings.max_limit),
        min_similarity: float = Query(0.0, ge=-1.0, le=1.0),
    ) -> dict[str, Any]:
        """Contacts most like this one (nearest neighbours in the embedding index)."""
        snap = loader.snapshot
        _require_contact(snap, contact_id)
        snap.require("similarity")
        try:
            rows = snap.store.similar("contact", contact_id, limit=limit, min_similarity=min_similarity)
        except KeyError:
            raise ApiError(404, "not_found", f"contact {contact_id!r} is not in the similarity index yet "
                           "(it was added after the index was built); run `holocrm run`")
        return {"contact_id": contact_id, "index_version": snap.index_versions.get("contact"),
                "results": _jsonable(rows)}

    @app.post("/api/search/semantic", tags=["similarity"])
    def semantic_search(body: SemanticSearchRequest) -> dict[str, Any]:
        """Find entities by meaning (vector), by words (full text) or both (hybrid)."""
        check_limit(body.limit, "body.limit")
        snap = loader.snapshot
        snap.require("similarity")
        try:
            rows = snap.store.search(body.query, entity_types=body.entity_types, mode=body.mode,
                                     limit=body.limit, filters=body.filters)
        except ValueError as exc:  # the store rejects a filter column or value it does not know
            raise _bad_request("body.filters", str(exc))
        return {"query": body.query, "mode": body.mode, "index_versions": snap.index_versions,
                "results": _jsonable(rows)}

    # -- natural language ------------------------------------------------------------------------------
    @app.post("/api/query/natural-language", tags=["questions"])
    async def natural_language_query(body: NaturalLanguageRequest) -> dict[str, Any]:
        """Answer a question about the CRM in plain words; the answer carries the parsed plan (the trace)."""
        check_limit(body.limit, "body.limit")
        snap = loader.snapshot
        snap.require("nlq")
        key = answers.key(snap, body.question, body.as_of, body.limit)
        cached = answers.get(key)
        if cached is not None:
            return {**cached, "cached": True}
        async with nlq_slots:  # polars already uses every core: more parallel questions only thrash
            payload = await run_in_threadpool(_answer_question, snap, body)
        answers.put(key, payload, ttl=None if body.as_of else ANSWER_TTL_S)
        return {**payload, "cached": False}

    # -- scores ----------------------------------------------------------------------------------------
    @app.get("/api/contacts/{contact_id}/score", tags=["scores"])
    async def contact_score(contact_id: str = Path(pattern=ID_PATTERN)) -> dict[str, Any]:
        """The lead score of a contact (0..1), its band and the factors behind it."""
        snap = loader.snapshot
        _require_contact(snap, contact_id)
        return {"contact_id": contact_id, **await _score_async(snap, "contacts", contact_id, settings)}

    @app.get("/api/deals/{deal_id}/score", tags=["scores"])
    async def deal_score(deal_id: str = Path(pattern=ID_PATTERN)) -> dict[str, Any]:
        """The win probability of an open deal, its band and the factors behind it."""
        snap = loader.snapshot
        _require_deal(snap, deal_id)
        return {"deal_id": deal_id, **await _score_async(snap, "deals", deal_id, settings)}

    # -- decisions -------------------------------------------------------------------------------------
    @app.get("/api/contacts/{contact_id}/recommendation", tags=["decisions"])
    async def contact_recommendation(contact_id: str = Path(pattern=ID_PATTERN)) -> dict[str, Any]:
        """Next best action (email, call, proposal, wait) by Thompson sampling, with its posterior."""
        snap = loader.snapshot
        context = _require_contact(snap, contact_id)
        return recommender.recommend(contact_id, _decision_context(context)).as_dict()

    @app.post("/api/actions/outcome", tags=["decisions"], status_code=201)
    def record_action_outcome(
        body: ActionOutcomeRequest,
        response: Response,
        idempotency_key: str | None = Header(None, alias="Idempotency-Key", max_length=200),
    ) -> dict[str, Any]:
        """Record an action taken with a contact and how it turned out (durable before the answer)."""
        key = _idempotency_key(idempotency_key, body.idempotency_key)
        snap = loader.snapshot
        contact = _require_contact(snap, body.contact_id)
        if body.deal_id is not None:
            _require_deal(snap, body.deal_id)
        context = {**_decision_context(contact), **(body.context or {})}
        record = {
            "idempotency_key": key,
            "recorded_at": utc_now_iso(),
            "contact_id": body.contact_id,
            "deal_id": body.deal_id,
            "action": body.action,
            "reward": body.reward,
            "context": context,
            "propensity": body.propensity,
            "policy": body.policy,
            "taken_at": body.taken_at.isoformat() if body.taken_at else None,
        }
        return _append(actions, "actions", record, response, metrics)

    # -- deals -----------------------------------------------------------------------------------------
    @app.post("/api/deals/{deal_id}/close", tags=["deals"], status_code=201)
    def close_deal(
        body: CloseDealRequest,
        response: Response,
        deal_id: str = Path(pattern=ID_PATTERN),
        idempotency_key: str | None = Header(None, alias="Idempotency-Key", max_length=200),
    ) -> dict[str, Any]:
        """Record that a deal was won or lost, with the prediction that was made before it closed."""
        key = _idempotency_key(idempotency_key, body.idempotency_key)
        snap = loader.snapshot
        deal = _require_deal(snap, deal_id)
        now = datetime.now(UTC)
        closed_at = body.closed_at or now
        if closed_at > now + CLOCK_SKEW:
            raise _bad_request("body.closed_at", f"{closed_at.isoformat()} is in the future")
        created = deal.get("created_at")
        if isinstance(created, datetime) and closed_at < created:
            raise _bad_request("body.closed_at", f"before the deal was created ({created.isoformat()})")
        existing = outcomes.get(key)
        prediction = existing["prediction"] if existing else _prediction_before_close(snap, deal_id, settings)
        record = {
            "idempotency_key": key,
            "recorded_at": utc_now_iso(),
            "deal_id": deal_id,
            "outcome": body.outcome,
            "closed_at": closed_at.isoformat(),
            "prediction": prediction,
        }
        return _append(outcomes, "outcomes", record, response, metrics)

    # -- duplicates ------------------------------------------------------------------------------------
    @app.get("/api/duplicates", tags=["data quality"])
    async def duplicates(
        entity_type: Literal[ENTITY_TYPES + tuple(ENTITY_ALIASES)] | None = None,
        min_score: float = Query(0.0, ge=0.0, le=1.0),
        limit: int = Query(50, ge=1, le=settings.max_limit),
        offset: int = Query(0, ge=0, le=10_000_000),
    ) -> dict[str, Any]:
        """Likely duplicate records, most certain first."""
        snap = loader.snapshot
        snap.require("duplicates")
        kind = entity_type_of(entity_type) if entity_type else None
        return _duplicate_page(snap.duplicates, kind, min_score, limit, offset)

    return app


# -- helpers -----------------------------------------------------------------------------------------
def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError):
        return JSONResponse({"error": exc.error, "detail": exc.detail, **exc.extra}, status_code=exc.status)

    @app.exception_handler(CapabilityMissing)
    async def capability_missing(_: Request, exc: CapabilityMissing):
        return JSONResponse(
            {"error": "not_built", "capability": exc.capability, "detail": exc.message},
            status_code=503, headers={"Retry-After": "60"},
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError):
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()))
            problems.append({"where": where, "problem": err.get("msg", "invalid")})
        summary = "; ".join(f"{p['where']}: {p['problem']}" for p in problems[:5])
        return JSONResponse({"error": "invalid_request", "detail": summary, "problems": problems}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException):
        codes = {404: "not_found", 405: "method_not_allowed"}
        detail = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404 and detail == "Not Found":
            detail = "no such endpoint; see /docs"
        return JSONResponse({"error": codes.get(exc.status_code, "http_error"), "detail": detail},
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        incident = uuid.uuid4().hex[:12]
        log.error("unhandled error %s on %s %s", incident, request.method, request.url.path, exc_info=exc)
        return JSONResponse({"error": "internal_error",
                             "detail": f"the server could not answer; incident {incident} is in its log"},
                            status_code=500)


def _require_contact(snap: Snapshot, contact_id: str) -> dict[str, Any]:
    snap.require("contacts")
    context = snap.contacts.get(contact_id)
    if context is None:
        raise not_found("contact", contact_id)
    return context


def _require_deal(snap: Snapshot, deal_id: str) -> dict[str, Any]:
    snap.require("deals")
    deal = snap.deals.get(deal_id)
    if deal is None:
        raise not_found("deal", deal_id)
    return deal


def _decision_context(contact: dict[str, Any]) -> dict[str, Any]:
    return {"lifecycle_status": contact.get("lifecycle_status"), "band": contact.get("band"),
            "seniority": contact.get("seniority")}


def _seed_recommender(recommender: ThompsonRecommender, snap: Snapshot, actions: AppendOnlyLog) -> None:
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


def _append(log_: AppendOnlyLog, name: str, record: dict, response: Response, metrics: ServingMetrics):
    try:
        result = log_.append(record)
    except IdempotencyConflict as exc:
        metrics.writes.labels(name, "conflict").inc()
        raise ApiError(409, "idempotency_conflict",
                       f"idempotency key {exc.key!r} was already used for a different request",
                       recorded=exc.existing)
    except OSError as exc:
        metrics.writes.labels(name, "error").inc()
        log.error("could not write to the %s log: %s", name, exc)
        raise ApiError(503, "log_unavailable", f"the {name} log could not be written; nothing was recorded")
    metrics.writes.labels(name, "created" if result.created else "duplicate").inc()
    if not result.created:
        response.status_code = 200
    return {"recorded": True, "duplicate": not result.created, "record": result.record}


async def _score_async(snap: Snapshot, entity: str, entity_id: str, settings: ServingSettings) -> dict[str, Any]:
    """A precomputed score is a dict lookup: answer it on the event loop; live scoring goes to a thread."""
    fast = _precomputed_score(snap, entity, entity_id, settings)
    if fast is not None:
        return fast
    return await run_in_threadpool(_score, snap, entity, entity_id, settings)


def _precomputed_score(snap: Snapshot, entity: str, entity_id: str, settings: ServingSettings) -> dict | None:
    model_name = settings.model_names[entity]
    champion = snap.models.get(model_name)
    table = snap.scored.get(entity)
    row = table.get(entity_id) if table is not None else None
    if row is not None and (champion is None or table.model_version is None or table.model_version == champion.version):
        return _score_payload(row, table.model_version or (champion.version if champion else None),
                              model_name, table.origin)
    return None


def _score(snap: Snapshot, entity: str, entity_id: str, settings: ServingSettings) -> dict[str, Any]:
    """Serve the precomputed score when it came from the current champion, else score with the champion."""
    model_name = settings.model_names[entity]
    champion = snap.models.get(model_name)
    table = snap.scored.get(entity)
    row = table.get(entity_id) if table is not None else None
    fast = _precomputed_score(snap, entity, entity_id, settings)
    if fast is not None:
        return fast
    if champion is not None:
        live = _live_score(snap, entity, entity_id, champion)
        if live is not None:
            return _score_payload(live, champion.version, model_name, "champion")
    if row is not None:  # stale but better than nothing; say so
        return _score_payload(row, table.model_version, model_name, "scored_table_stale")
    snap.require(f"score_{entity}")
    kind = "lead" if entity == "contacts" else "deal"
    raise ApiError(404, "not_scored", f"{kind} {entity_id!r} has no score: it is not among the scored "
                   f"{'open leads' if entity == 'contacts' else 'open deals'}")


def _score_payload(row: dict, version, model_name: str, source: str) -> dict[str, Any]:
    return {
        "score": _num(row.get("score")),
        "band": row.get("band"),
        "reasons": _jsonable(row.get("reasons")),
        "model": {"name": model_name, "version": None if version is None else str(version)},
        "source": source,
    }


def _live_score(snap: Snapshot, entity: str, entity_id: str, champion) -> dict | None:
    """Score one entity with the champion; None when the feature builder is not available."""
    outcomes = _optional_module("holocrm_core.outcomes")
    scoring = _optional_module("holocrm_core.scoring")
    if outcomes is None or scoring is None:
        return None
    if not hasattr(outcomes, "build_features_for") or not hasattr(scoring, "score_frame"):
        return None
    try:
        # as_of=None: the export's snapshot time, the same clock the pipeline's scored tables use.
        features = outcomes.build_features_for(schema.entity(entity).name, [entity_id], snap.tables, None)
        scored = scoring.score_frame(champion.model, features)
    except Exception as exc:
        log.warning("live scoring of %s %s failed: %s", entity, entity_id, exc)
        return None
    if scored is None or scored.height == 0:
        return None
    return scored.row(0, named=True)


def _prediction_before_close(snap: Snapshot, deal_id: str, settings: ServingSettings) -> dict[str, Any]:
    try:
        scored = _score(snap, "deals", deal_id, settings)
    except (ApiError, CapabilityMissing):
        return {"score": None, "model_version": None, "source": "none"}
    return {"score": scored["score"], "model_version": scored["model"]["version"], "source": scored["source"]}


def _duplicate_page(frame, entity_type, min_score, limit, offset) -> dict[str, Any]:
    import polars as pl

    score_col = next((c for c in ("score", "similarity", "probability") if c in frame.columns), None)
    view = frame
    if entity_type is not None and "entity_type" in view.columns:
        view = view.filter(pl.col("entity_type") == entity_type)
    if score_col is not None and min_score > 0:  # the loader sorted the table by score already
        view = view.filter(pl.col(score_col) >= min_score)
    page = view.slice(offset, limit)
    return {"total": view.height, "offset": offset, "limit": limit, "results": _jsonable(page.to_dicts())}


def _answer_question(snap: Snapshot, body: NaturalLanguageRequest) -> dict[str, Any]:
    nlq = _optional_module("holocrm_core.nlq")
    answer = nlq.ask(body.question, snap.nlq_context, as_of=body.as_of, similarity=snap.store)
    return _answer_payload(body.question, answer, body.limit)


def _answer_payload(question: str, answer, limit: int) -> dict[str, Any]:
    if hasattr(answer, "to_json"):  # the NL module's own JSON form: plan, trace, rows, hints
        payload = _jsonable(answer.to_json(max_rows=min(limit, MAX_ROWS_RETURNED)))
        payload.setdefault("question", question)
        return payload
    rows = getattr(answer, "rows", None)
    total = None
    if rows is not None and hasattr(rows, "height"):
        total = rows.height
        rows = rows.head(min(limit, MAX_ROWS_RETURNED)).to_dicts()
    elif isinstance(rows, list):
        total = len(rows)
        rows = rows[: min(limit, MAX_ROWS_RETURNED)]

    def call(name):
        value = getattr(answer, name, None)
        return value() if callable(value) else value

    return {
        "question": question,
        "understood": bool(getattr(answer, "understood", rows is not None)),
        "confidence": _num(getattr(answer, "confidence", None)),
        "plan": _jsonable(call("plan_json")),
        "plan_words": call("plan_words"),
        "trace": _jsonable(getattr(answer, "trace", None)),
        "suggestions": _jsonable(getattr(answer, "suggestions", None)),
        "row_count": total,
        "rows": _jsonable(rows),
    }


def _num(value):
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _jsonable(value):
    """Make polars/numpy/decimal/datetime values JSON-safe (the API answers JSON, not Python objects)."""
    from decimal import Decimal

    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "to_dicts"):
        return _jsonable(value.to_dicts())
    if hasattr(value, "to_list"):
        return _jsonable(value.to_list())
    if hasattr(value, "item"):
        return _jsonable(value.item())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if hasattr(value, "__dict__"):
        return _jsonable(vars(value))
    return str(value)

