"""Operations: /health (status for anyone, details for callers with a key), /metrics, on-demand reload."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from holocrm_api.deps import FORBIDDEN, Admin, CallerDep, ServicesDep
from holocrm_api.errors import ALWAYS, INVALID, PROTECTED
from holocrm_core.monitoring import asset_freshness

router = APIRouter(tags=["operations"], responses=ALWAYS)


class Health(BaseModel):
    """``status`` is public; the rest appears only for a caller with a valid key (or when auth is off)."""

    model_config = ConfigDict(extra="allow")
    status: Literal["ok", "degraded"] = Field(description="degraded: some artifact is not built yet")


@router.get(
    "/health",
    response_model=Health,
    response_model_exclude_none=True,
    openapi_extra={"security": [{}, {"ApiKeyHeader": []}, {"BearerKey": []}]},
)
async def health(services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    """What is served: index versions, the scorer of each model and why, when loaded, what is missing."""
    snap = services.loader.snapshot
    status = "ok" if not snap.missing else "degraded"
    if caller is None:  # auth is on and no valid key: a probe needs the status, not the internals
        return {"status": status}
    return {
        "status": status,
        **snap.describe(),
        "last_reload_check": services.loader.last_check_at.isoformat()
        if services.loader.last_check_at
        else None,
        "last_reload_error": services.loader.last_error,
        "logs": {"outcomes": len(services.outcomes), "actions": len(services.actions)},
        "auth": "api_key" if services.guard.enabled else "off",
        "freshness": freshness(services),
    }


def freshness(services) -> dict[str, Any]:
    """Each asset's age against its limit (holocrm_core.monitoring.POLICIES); stale ones named first."""
    try:
        items = asset_freshness(services.settings.paths)
    except ValueError as exc:  # a malformed HOLOCRM_FRESHNESS_* variable
        return {"error": str(exc)}
    return {"stale": [f.name for f in items if f.stale], "assets": [f.as_dict() for f in items]}


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def prometheus_metrics(services: ServicesDep) -> Response:
    """Request counts and latency by route template, served model and index versions, reloads, writes."""
    return Response(services.metrics.render(), media_type=services.metrics.content_type)


@router.post("/api/admin/reload", dependencies=[Admin], responses={**PROTECTED, **FORBIDDEN, **INVALID})
def reload_artifacts(services: ServicesDep, force: bool = False) -> dict[str, Any]:
    """Check for newer artifacts now (the loader also checks on its own every few seconds)."""
    swapped = services.loader.reload(force=force)
    return {"swapped": swapped, "error": services.loader.last_error, **services.loader.snapshot.describe()}
