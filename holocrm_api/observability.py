"""Request ids, structured JSON logs and the HTTP metrics hook-up of the API.

Every request gets an id: the caller's ``X-Request-ID`` when it is a plain token (letters, digits, ``.-_:``,
up to 64), else a new one; it is echoed in the ``X-Request-ID`` response header and stamped on every log
record written while the request is answered (the guard's incident lines included), so one grep finds a
request's whole story.

Logs are quiet by default: the ``holocrm`` loggers write WARNING and above, one JSON object per line on
stderr (``time``, ``level``, ``logger``, ``message``, ``request_id``, and the record's extra fields).
``HOLOCRM_LOG_LEVEL=INFO`` adds one access line per request (method, route, status, milliseconds);
``HOLOCRM_LOG_FORMAT=text`` gives plain lines for a terminal.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

REQUEST_ID: ContextVar[str | None] = ContextVar("holocrm_request_id", default=None)
HEADER = b"x-request-id"
_TOKEN = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "request_id",
}
access_log = logging.getLogger("holocrm.access")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record; extra fields (``log.info(..., extra={...})``) become keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        entry.update(
            {k: v for k, v in record.__dict__.items() if k not in _RESERVED and not k.startswith("_")}
        )
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str | None = None, fmt: str | None = None, stream=None) -> logging.Logger:
    """Set up the ``holocrm`` logger tree once (idempotent): level, JSON or text, request ids."""
    root = logging.getLogger("holocrm")
    level_name = (level or os.environ.get("HOLOCRM_LOG_LEVEL") or "WARNING").upper()
    if level_name not in logging.getLevelNamesMapping():
        raise ValueError(f"HOLOCRM_LOG_LEVEL={level_name!r} is not a log level (DEBUG, INFO, WARNING, ERROR)")
    fmt = (fmt or os.environ.get("HOLOCRM_LOG_FORMAT") or "json").lower()
    if fmt not in ("json", "text"):
        raise ValueError(f"HOLOCRM_LOG_FORMAT={fmt!r} must be json or text")
    for handler in [h for h in root.handlers if getattr(h, "_holocrm", False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._holocrm = True
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
    )
    root.addHandler(handler)
    root.setLevel(level_name)
    root.propagate = False
    return root


class RequestContext:
    """Pure ASGI: the request id, the in-flight gauge and (at INFO) the access line."""

    def __init__(self, app, metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = next((v for k, v in scope["headers"] if k == HEADER), b"").decode("latin-1")
        request_id = given if _TOKEN.match(given) else uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        status = [500]
        started = time.perf_counter()

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (HEADER, request_id.encode())]}
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.in_flight.dec()
            if access_log.isEnabledFor(logging.INFO):
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                access_log.info(
                    "%s %s %s",
                    scope["method"],
                    route,
                    status[0],
                    extra={
                        "method": scope["method"],
                        "route": route,
                        "status": status[0],
                        "ms": round((time.perf_counter() - started) * 1000, 2),
                    },
                )
            REQUEST_ID.reset(token)


def install_observability(app, services) -> None:
    """Called once by ``create_app``: logging, HTTP metrics, request ids, and disk-read monitoring figures."""
    from holocrm_api.metrics import MonitoringCollector

    configure_logging()
    metrics = services.metrics
    if metrics.monitoring is None:
        metrics.monitoring = MonitoringCollector(services.settings.home)
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            metrics.registry.register(metrics.monitoring)
    metrics.instrument(app)
    app.add_middleware(RequestContext, metrics=metrics)  # outermost: the id covers every log line
