"""The HoloCRM API: the FastAPI app over the latest artifacts, its middleware, error handlers and routers.

``create_app(settings)`` builds it; routes live in ``holocrm_api.routes`` (one router per domain), shared
objects in ``holocrm_api.deps.Services``.
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI

from holocrm_api.answers import AnswerCache
from holocrm_api.auth import ApiKeyGuard
from holocrm_api.config import ServingSettings
from holocrm_api.deps import Services
from holocrm_api.errors import install_error_handlers
from holocrm_api.loader import ArtifactLoader, Snapshot
from holocrm_api.metrics import ServingMetrics
from holocrm_api.middleware import RequestGuard
from holocrm_api.outcome_log import AppendOnlyLog
from holocrm_api.routes import duplicates, health, nlq, outcomes, recommendations, scores, similarity
from holocrm_core.decisions.segment_thompson import ThompsonRecommender

ROUTERS = (health, similarity, nlq, scores, recommendations, outcomes, duplicates)


def create_app(settings: ServingSettings | None = None) -> FastAPI:
    """Build the API over HOLOCRM_HOME / the MLflow registry named in ``settings`` (default: from env)."""
    settings = settings or ServingSettings.from_env()
    paths = settings.paths.ensure()
    metrics = ServingMetrics()
    guard = ApiKeyGuard(settings)  # raises when keys are required but none is configured

    def on_swap(snapshot: Snapshot | None) -> None:
        metrics.reloads.labels("error" if snapshot is None else "swapped").inc()
        if snapshot is not None:
            metrics.describe_snapshot(snapshot)

    services = Services(
        settings=settings, loader=ArtifactLoader(settings, on_swap=on_swap), metrics=metrics, guard=guard,
        outcomes=AppendOnlyLog(paths.logs / "outcomes.ndjson", fingerprint_fields=("deal_id", "outcome")),
        actions=AppendOnlyLog(paths.logs / "actions.ndjson", fingerprint_fields=("contact_id", "action", "reward")),
        recommender=ThompsonRecommender(), answers=AnswerCache(),
        nlq_slots=anyio.Semaphore(max(1, min(4, os.cpu_count() or 1))),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        services.loader.reload(force=True)
        recommendations.seed_recommender(services.recommender, services.loader.snapshot, services.actions)
        services.loader.start()
        try:
            yield
        finally:
            services.loader.stop()
            services.outcomes.close()
            services.actions.close()

    app = FastAPI(title="HoloCRM API", version="0.2.0", lifespan=lifespan,
                  summary="Similar contacts, semantic search, NL questions, scores, next-best actions; outcomes.")
    app.state.services = services
    app.add_middleware(RequestGuard, metrics=metrics, max_body_bytes=settings.max_body_bytes)
    install_error_handlers(app)
    for module in ROUTERS:
        app.include_router(module.router)
    return app
