"""The HoloCRM API: the FastAPI app over the latest artifacts, its middleware, error handlers and routers.

``create_app(settings)`` builds it; routes live in ``holocrm_api.routes`` (one router per domain), what
they share in ``holocrm_api.deps.Services``.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from holocrm_api.config import ServingSettings
from holocrm_api.deps import Services
from holocrm_api.errors import install_error_handlers
from holocrm_api.middleware import RequestGuard
from holocrm_api.routes import (
    duplicates,
    experiments,
    health,
    nlq,
    outcomes,
    recommendations,
    scores,
    similarity,
)

ROUTERS = (health, similarity, nlq, scores, recommendations, outcomes, duplicates, experiments)


def create_app(settings: ServingSettings | None = None) -> FastAPI:
    """Build the API over HOLOCRM_HOME / the MLflow registry named in ``settings`` (default: from env)."""
    services = Services.build(settings or ServingSettings.from_env())

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

    app = FastAPI(
        title="HoloCRM API",
        version="0.2.0",
        lifespan=lifespan,
        summary="Similar contacts, semantic search, NL questions, scores, next-best actions; outcomes.",
    )
    app.state.services = services
    app.add_middleware(
        RequestGuard, metrics=services.metrics, max_body_bytes=services.settings.max_body_bytes
    )
    install_error_handlers(app)
    for module in ROUTERS:
        app.include_router(module.router)
    return app
