"""The HoloCRM API: the FastAPI app over the latest artifacts, its middleware, error handlers and routers.

``create_app(settings)`` builds it; routes live in ``holocrm_api.routes`` (one router per domain), what
they share in ``holocrm_api.deps.Services``.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager, suppress
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from holocrm_api.config import ServingSettings
from holocrm_api.deps import Services
from holocrm_api.errors import install_error_handlers
from holocrm_api.middleware import RequestGuard
from holocrm_api.observability import install_observability
from holocrm_api.routes import (
    chat,
    duplicates,
    experiments,
    health,
    nlq,
    outcomes,
    recommendations,
    scores,
    similarity,
    slack,
)

ROUTERS = (health, similarity, nlq, scores, recommendations, outcomes, duplicates, experiments, chat, slack)
DOCS_ASSETS_URL = "/docs-assets"


def docs_assets() -> Path:
    """Swagger UI and Redoc, shipped in the fastapi-offline wheel: /docs and /redoc work without internet."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def install_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc served from local assets, not a CDN."""
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=docs_assets()), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
            swagger_js_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS_URL}/favicon.png",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )


def warm_routes(app: FastAPI) -> int:
    """Build FastAPI's routing of every included router now (returns the routes built).

    FastAPI (0.165) builds an included router's routes for matching on the first request that reaches them:
    each route's dependencies and parameter fields again, 32 pydantic TypeAdapters for the first `similar`
    request, 70-120 ms at load 9 on a just-started server, paid by the first burst of requests. (The
    Prometheus instrumentator used to do this on the first request of all, the start-up's /health probe, by
    listing the routes to find a template.)"""
    built = 0
    for route in app.router.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if callable(contexts):
            built += sum(1 for _ in contexts())
        low_priority = getattr(route, "effective_low_priority_routes", None)
        if callable(low_priority):
            built += len(low_priority())
    return built


def warm_similar_threads(services: Services) -> int:
    """Start every thread of the `similar` pool and answer one query per in-memory entity type on each, so
    that the first requests find them running (a thread's first query: 6-8 ms against 1.6 at 200k).
    Returns the threads warmed."""
    import threading

    from holocrm_api.records import warm_similar

    count = services.similar_pool._max_workers
    together = threading.Barrier(count, timeout=30)  # one task per thread: each waits for the others
    snap = services.loader.snapshot
    if snap is None:
        return 0

    def warm() -> None:
        with suppress(threading.BrokenBarrierError):
            together.wait()
        try:
            warm_similar(snap)
        except Exception as exc:  # noqa: BLE001 - a warm-up never stops the server; the request will say why
            logging.getLogger("holocrm.serving").warning("similar warm-up failed: %s", exc)

    for future in [services.similar_pool.submit(warm) for _ in range(count)]:
        future.result()
    return count


def create_app(settings: ServingSettings | None = None) -> FastAPI:
    """Build the API over HOLOCRM_HOME / the MLflow registry named in ``settings`` (default: from env)."""
    services = Services.build(settings or ServingSettings.from_env())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        services.loader.reload(force=True)
        services.actions.subscribe(services.loader.observe_outcome)  # learn online as outcomes are recorded
        services.loader.start()
        warm_routes(app)  # before the first request, not during it
        warm_similar_threads(services)
        try:
            yield
        finally:
            services.loader.stop()
            services.loader.close_decisions()  # persist what was learned online
            services.outcomes.close()
            services.actions.close()

    app = FastAPI(
        title="HoloCRM API",
        version="0.2.0",
        lifespan=lifespan,
        docs_url=None,  # served from local assets by install_docs
        redoc_url=None,
        summary="Similar contacts, semantic search, NL questions, scores, next-best actions; outcomes.",
    )
    app.state.services = services
    app.add_middleware(
        RequestGuard, metrics=services.metrics, max_body_bytes=services.settings.max_body_bytes
    )
    install_observability(app, services)  # HTTP metrics, request ids, JSON logs (after the guard: outside it)
    install_error_handlers(app)
    install_docs(app)
    for module in ROUTERS:
        app.include_router(module.router)
    return app
