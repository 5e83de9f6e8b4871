"""Typed dependencies of the routes: the served snapshot, settings, services, and the API-key check.

Each is an ``async def`` so FastAPI calls it on the event loop (a plain ``def`` dependency costs a thread-pool
hop per request). ``Protected`` is the router-level dependency that authenticates and rate-limits; its
``Security`` parameters are what makes the OpenAPI declare the two API-key schemes.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated

import anyio
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from holocrm_api.answers import AnswerCache
from holocrm_api.auth import ApiKeyGuard, Caller
from holocrm_api.config import ServingSettings
from holocrm_api.errors import ApiError, error_doc
from holocrm_api.loader import ArtifactLoader, Snapshot
from holocrm_api.metrics import ServingMetrics
from holocrm_api.outcome_log import AppendOnlyLog
from holocrm_api.records import warm_snapshot
from holocrm_core.deal_states import DealStates

api_key_header = APIKeyHeader(
    name="X-API-Key",
    scheme_name="ApiKeyHeader",
    auto_error=False,
    description="An API key (HOLOCRM_API_KEY / _KEYS / _KEY_FILE)",
)
bearer = HTTPBearer(
    scheme_name="BearerKey", auto_error=False, description="The same API key as a Bearer token"
)


@dataclass(frozen=True)
class Services:
    """What the routes share for the life of the app (built in ``holocrm_api.main.create_app``)."""

    settings: ServingSettings
    loader: ArtifactLoader
    metrics: ServingMetrics
    guard: ApiKeyGuard
    outcomes: AppendOnlyLog
    actions: AppendOnlyLog
    answers: AnswerCache
    nlq_slots: anyio.Semaphore
    similar_pool: ThreadPoolExecutor  # the worker threads `similar` scans on (routes/similarity.py)
    deal_states: DealStates  # the outcome log folded: one outcome per deal (kept current by subscription)

    @classmethod
    def build(cls, settings: ServingSettings) -> Services:
        paths = settings.paths.ensure()
        metrics = ServingMetrics()
        guard = ApiKeyGuard(settings)  # raises when keys are required but none is configured
        actions = AppendOnlyLog(paths.actions_log, fingerprint_fields=("contact_id", "action", "reward"))
        loader = ArtifactLoader(settings, on_swap=metrics.on_swap, prepare=warm_snapshot)
        loader.outcome_records = actions.records  # a new decision service learns what its state lacks
        outcomes = AppendOnlyLog(paths.outcomes_log, fingerprint_fields=("deal_id", "outcome"))
        deal_states = DealStates()
        outcomes.subscribe(deal_states.observe, replay=True)
        return cls(
            settings=settings,
            loader=loader,
            metrics=metrics,
            guard=guard,
            outcomes=outcomes,
            actions=actions,
            answers=AnswerCache(),
            # polars already uses every core: more questions at once than cores only thrash
            nlq_slots=anyio.Semaphore(max(1, min(4, os.cpu_count() or 1))),
            similar_pool=ThreadPoolExecutor(similar_threads(), thread_name_prefix="holocrm-similar"),
            deal_states=deal_states,
        )


def similar_threads() -> int:
    """How many `similar` queries scan at once, each on its own worker thread: one per core (at least 2), or
    ``HOLOCRM_SIMILAR_THREADS``. More would only share the cores (the same throughput, a wider spread of
    latencies: a queue in front of the cores answers in arrival order)."""
    raw = os.environ.get("HOLOCRM_SIMILAR_THREADS", "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"HOLOCRM_SIMILAR_THREADS must be a whole number, not {raw!r}") from None
        if value < 1:
            raise ValueError(f"HOLOCRM_SIMILAR_THREADS must be at least 1, not {value}")
        return value
    return max(2, os.cpu_count() or 1)


async def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_settings(services: ServicesDep) -> ServingSettings:
    return services.settings


async def get_snapshot(request: Request) -> Snapshot:
    # read once per request: a reload never changes it mid-request. From the request, not through
    # ``ServicesDep``: every dependency is solved again on every request, on the event loop.
    return request.app.state.services.loader.snapshot


SettingsDep = Annotated[ServingSettings, Depends(get_settings)]
SnapshotDep = Annotated[Snapshot, Depends(get_snapshot)]


def _caller_of(request: Request, services: Services) -> Caller | None:
    """The caller behind a valid key; None when auth is on and no presented key matches. The request guard
    has already decided it (before routing); asked again only where no guard ran."""
    state = request.scope.get("state") or {}
    if "caller" in state:
        return state["caller"]
    return services.guard.authenticate(request.scope["headers"])


async def identify_caller(request: Request, services: ServicesDep) -> Caller | None:
    return _caller_of(request, services)


async def require_caller(
    request: Request,
    _key: Annotated[str | None, Security(api_key_header)] = None,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None,
) -> Caller:
    """Every protected route's check: a caller with a valid key, within its rate limit.

    Reads the services and the caller straight from the request rather than through two more dependencies:
    FastAPI solves every dependency on every request, on the event loop (about 0.1 ms for these two at the
    1M server's `similar`). The two ``Security`` parameters stay: they make the OpenAPI declare the schemes.
    """
    services: Services = request.app.state.services
    caller = _caller_of(request, services)
    if caller is None:
        raise ApiError(
            401,
            "unauthorized",
            "a valid API key is required: send it as X-API-Key or Authorization: Bearer",
            headers={"WWW-Authenticate": "Bearer"},
        )
    wait = services.guard.limiter.wait_seconds(caller.key_id) if caller.authenticated else 0
    if wait:
        raise ApiError(
            429,
            "rate_limited",
            f"too many requests for this API key; retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    return caller


CallerDep = Annotated[Caller | None, Depends(identify_caller)]
Protected = Depends(require_caller)


def require_scope(needed: str):
    """A dependency that lets through only a caller whose key has scope ``needed`` (or a wider one): 403."""

    async def check(caller: Annotated[Caller, Depends(require_caller)]) -> Caller:
        if not caller.allows(needed):
            raise ApiError(
                403,
                "forbidden",
                f"this API key has the {caller.scope} scope; this operation needs a {needed} key",
            )
        return caller

    return Depends(check)


FORBIDDEN = {403: error_doc("The API key's scope does not allow this operation (read < write < admin)")}
Writer = require_scope("write")  # records outcomes: close or reopen a deal, an action's result
Admin = require_scope("admin")  # reloads models and indexes
