"""Every refusal of the API as one JSON shape, ``{"error", "detail", ...}``, declared in the OpenAPI.

404 unknown id, 422 malformed input (with ``problems``: where and what), 413 oversized body, 401 missing or
wrong API key, 429 over the rate limit (Retry-After), 409 a search by meaning against an index of another
embedding tier than the server's (``index_tier`` / ``served_tier``), 503 artifact not built yet (with what to
run). No stack trace in any body: an unexpected error is logged with an incident id and answered 500 by the request
guard (``holocrm_api.middleware``), which keeps the connection usable.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from holocrm_api.loader import CapabilityMissing
from holocrm_core.services import Refusal
from holocrm_core.store import EmbeddingModelMismatch

REFUSAL_CODES = {"invalid": "invalid_request", "not_found": "not_found", "not_built": "not_built"}
# pydantic prefixes the message a validator raises; the service's own words are what the caller reads.
VALIDATOR_PREFIXES = ("Value error, ", "Assertion failed, ")


class Problem(BaseModel):
    where: str = Field(description="The part of the request, e.g. body.limit or path.contact_id")
    problem: str


class ErrorBody(BaseModel):
    """What every 4xx/5xx answer carries. Some errors add fields (``capability``, ``recorded``)."""

    model_config = ConfigDict(extra="allow")
    error: str = Field(description="A stable code: not_found, invalid_request, unauthorized, not_built, ...")
    detail: str = Field(description="What went wrong and what to do, in words")
    problems: list[Problem] | None = Field(None, description="For invalid_request: each problem found")


class ApiError(Exception):
    def __init__(
        self, status: int, error: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
    ):
        super().__init__(detail)
        self.status, self.error, self.detail, self.headers, self.extra = status, error, detail, headers, extra


def not_found(kind: str, entity_id: str) -> ApiError:
    return ApiError(404, "not_found", f"no {kind} with id {entity_id!r}")


def bad_request(where: str, problem: str) -> ApiError:
    return ApiError(
        422, "invalid_request", f"{where}: {problem}", problems=[{"where": where, "problem": problem}]
    )


def error_doc(description: str, **extra: Any) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description, **extra}


RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before trying again", "schema": {"type": "integer"}}
}
# The refusals each kind of route can give, for the OpenAPI (``responses=`` of a router or a route).
INVALID = {422: error_doc("The request is malformed: `problems` says where and what")}
UNKNOWN = {404: error_doc("No record with this id")}
NOT_BUILT = {
    503: error_doc(
        "The artifact this needs has not been built yet: `detail` says what to run", headers=RETRY_AFTER
    )
}
TOO_BIG = {
    413: error_doc("The request body is larger than the limit"),
    400: error_doc("Invalid Content-Length"),
}
PROTECTED = {
    401: error_doc("A valid API key is required (X-API-Key or Authorization: Bearer)"),
    429: error_doc("Too many requests for this API key", headers=RETRY_AFTER),
}
# Search by meaning when the served process embeds queries with another tier than the index was built with.
MISMATCH = {
    409: error_doc(
        "The index was built with another embedding tier than this server embeds queries with: "
        "`index_tier` / `served_tier` name them (HOLOCRM_EMBEDDER must match, or rebuild the index)"
    )
}
ALWAYS = {500: error_doc("Unexpected error; the body names an incident id found in the server log")}


def error_response(
    status: int, error: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail, **extra}, status_code=status, headers=headers)


def _problem(err: dict) -> str:
    message = str(err.get("msg", "invalid"))
    for prefix in VALIDATOR_PREFIXES:
        message = message.removeprefix(prefix)
    return message


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError):
        return error_response(exc.status, exc.error, exc.detail, exc.headers, **exc.extra)

    @app.exception_handler(Refusal)
    async def refusal(_: Request, exc: Refusal):
        extra = {}
        if exc.kind == "invalid":
            extra["problems"] = [{"where": exc.where or "request", "problem": exc.message}]
        headers = {"Retry-After": "60"} if exc.kind == "not_built" else None
        return error_response(exc.http_status, REFUSAL_CODES[exc.kind], exc.message, headers, **extra)

    @app.exception_handler(CapabilityMissing)
    async def capability_missing(_: Request, exc: CapabilityMissing):
        return error_response(503, "not_built", exc.message, {"Retry-After": "60"}, capability=exc.capability)

    @app.exception_handler(EmbeddingModelMismatch)
    async def model_mismatch(_: Request, exc: EmbeddingModelMismatch):
        return error_response(
            409,
            "embedding_model_mismatch",
            str(exc),
            index_tier=exc.indexed_tier,
            index_model=exc.indexed,
            served_tier=exc.query_tier,
            served_model=exc.query,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError):
        problems = [
            {"where": ".".join(str(p) for p in err.get("loc", ())), "problem": _problem(err)}
            for err in exc.errors()
        ]
        summary = "; ".join(f"{p['where']}: {p['problem']}" for p in problems[:5])
        return error_response(422, "invalid_request", summary, problems=problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        codes = {404: "not_found", 405: "method_not_allowed"}
        detail = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404 and detail == "Not Found":
            detail = "no such endpoint; see /docs"
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            # Starlette names the methods of the first route on the path; a path served by several routes
            # (GET and POST /api/experiments) allows all of theirs.
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
        return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), detail, headers)


def allowed_methods(request: Request) -> list[str]:
    from starlette.routing import Match

    methods: set[str] = set()
    for route in request.app.routes:
        if (
            getattr(route, "methods", None)
            and route.matches({**request.scope, "method": "GET"})[0] != Match.NONE
        ):
            methods |= set(route.methods)
    return sorted(methods)
