"""The request guard around every route: authentication first, metrics, the body-size limit, and a 500 that
keeps the connection.

Authentication comes before anything else looks at the request: without a valid key (when auth is on) every
path but the public ones is answered 401 before routing, before the body is read or its size checked, and
before validation, so an anonymous caller cannot tell a real path from an unknown one or probe the limits.
The caller found is left in ``scope["state"]["caller"]`` for the routes' scope and rate-limit checks.

Pure ASGI (no per-request task as BaseHTTPMiddleware would add). An error no route handled is answered here
with a JSON 500 naming an incident id, and *not* re-raised: Starlette's outer error middleware re-raises
after its 500, and uvicorn then closes the keep-alive connection the request came on, so the client's next
request on it was reset. Only an error after the response started (nothing left to answer with) goes on up.
"""

from __future__ import annotations

import json
import logging
import time
import uuid

from holocrm_api.metrics import ServingMetrics

log = logging.getLogger("holocrm.serving")
# Paths anyone may call: probes and scrapers (health shows only its status without a key), the API docs, and
# Slack's two routes (Slack sends no API key: they check Slack's request signature, holocrm_api.routes.slack).
PUBLIC_PATHS = frozenset(
    {"/health", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
    | {"/api/slack/commands", "/api/slack/events"}
)
PUBLIC_PREFIXES = ("/docs-assets/",)  # the Swagger UI / Redoc files the docs pages load (holocrm_api.main)


def _public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


UNAUTHORIZED = {
    "error": "unauthorized",
    "detail": "a valid API key is required: send it as X-API-Key or Authorization: Bearer",
}


async def send_json(send, status: int, payload: dict, extra_headers=()) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *extra_headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    def __init__(self, app, metrics: ServingMetrics, max_body_bytes: int, guard=None):
        self.app, self.metrics, self.max_body = app, metrics, max_body_bytes
        self.guard = guard  # holocrm_api.auth.ApiKeyGuard; None: the app's services' guard

    def _key_guard(self, scope):
        if self.guard is not None:
            return self.guard
        services = getattr(getattr(scope.get("app"), "state", None), "services", None)
        return getattr(services, "guard", None)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status_box = [0]

        async def send_with_status(message):
            if message["type"] == "http.response.start":
                status_box[0] = message["status"]
            await send(message)

        try:
            guard = self._key_guard(scope)
            if guard is not None:
                caller = guard.authenticate(scope["headers"])
                scope.setdefault("state", {})["caller"] = caller
                if caller is None and not _public(scope["path"]):
                    await send_json(send_with_status, 401, UNAUTHORIZED, [(b"www-authenticate", b"Bearer")])
                    return
            if scope["method"] in ("POST", "PUT", "PATCH"):
                receive = await self._bounded_body(scope, receive, send_with_status)
                if receive is None:
                    return
            await self.app(scope, receive, send_with_status)
        except Exception as exc:
            if status_box[0]:
                raise  # the response is under way: nothing left to answer with
            incident = uuid.uuid4().hex[:12]
            log.error("unhandled error %s on %s %s", incident, scope["method"], scope["path"], exc_info=exc)
            await send_json(
                send_with_status,
                500,
                {
                    "error": "internal_error",
                    "detail": f"the server could not answer; incident {incident} is in its log",
                },
            )
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(scope["method"], label, status_box[0] or 500, time.perf_counter() - started)

    async def _bounded_body(self, scope, receive, send):
        """Read the body up to the limit; answer 413 past it. Returns a receive that replays the body."""
        too_big = {
            "error": "payload_too_large",
            "detail": f"request body is larger than the {self.max_body} bytes allowed",
        }
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    if int(value) > self.max_body:
                        await send_json(send, 413, too_big)
                        return None
                except ValueError:
                    await send_json(send, 400, {"error": "bad_request", "detail": "invalid Content-Length"})
                    return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_body:  # chunked upload without a Content-Length
                await send_json(send, 413, too_big)
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
