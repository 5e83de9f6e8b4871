"""Prometheus metrics of the serving module: HTTP, what is served, what it answers, and how the world moves.

- HTTP, by ``HttpMetrics`` (a pure-ASGI middleware): ``http_requests_total`` (handler, method, status class)
  and ``http_request_duration_seconds`` (per route template and method, the buckets below), the names,
  labels and buckets prometheus-fastapi-instrumentator gave them; requests in flight as
  ``holocrm_requests_in_flight``. The request guard's own ``holocrm_requests`` / ``holocrm_request_seconds``
  stay (exact status codes).
- What is served: ``holocrm_model_version`` (model, served_as), ``holocrm_index_version``, reloads, writes.
- What it answers: ``holocrm_predictions_total`` (model, band), ``holocrm_recommendations_total`` (action,
  policy), ``holocrm_experiment_exposures_total`` (experiment, arm), read from the answers themselves so no
  route has to remember to count.
- How the world moves, read at scrape time from what the pipeline and the API leave on disk: drift scores
  and verdicts, decay verdicts (``HOLOCRM_HOME/monitoring/*.json``, written by the monitoring assets and
  ``holocrm monitor``), asset age and staleness, and the outcome-log lag.

Each app gets its own registry so several apps in one process (tests) do not collide.

**Several workers** (``uvicorn --workers N``, gunicorn): set ``PROMETHEUS_MULTIPROC_DIR`` to an empty folder
*before* the server starts (prometheus_client picks its value store at import), wipe it at each start.
Every worker then writes its counters and histograms to memory-mapped files there, and ``/metrics`` on any
worker answers the sum over all of them (gauges: the live workers' most recent value). The scrape-time
figures (drift, decay, freshness, lag) are read from disk, so every worker says the same.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from time import perf_counter

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

from holocrm_api.loader import Snapshot

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SEVERITY_VALUE = {"ok": 0, "skipped": 0, "warn": 1, "block": 2}
# Answers whose body says what was predicted or recommended (``HttpMetrics`` buffers only these bodies).
COUNTED_ROUTES = frozenset(
    {
        "/api/contacts/{contact_id}/score",
        "/api/deals/{deal_id}/score",
        "/api/contacts/{contact_id}/recommendation",
    }
)
UNTEMPLATED = "none"  # the handler label of a request no route answers (404s; redirects to a slash twin)
EXCLUDED_HANDLERS = frozenset({"/metrics"})  # scrapes do not count themselves


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


class MonitoringCollector:
    """Figures read from disk at scrape time: drift, decay, asset freshness, outcome-log lag."""

    def __init__(self, home: Path):
        from holocrm_core.settings import HoloPaths

        self.paths = HoloPaths(Path(home))

    def _report(self, name: str) -> dict:
        from holocrm_core.monitoring import read_state

        return read_state(self.paths, name)  # HOLOCRM_HOME/monitoring, or beside an s3:// warehouse

    def collect(self):
        from holocrm_core.monitoring import asset_freshness

        drift_score = GaugeMetricFamily(
            "holocrm_drift_score",
            "Drift of a column since the model's training window (psi, or the distance named in measure)",
            labels=["report", "column", "measure"],
        )
        drift_severity = GaugeMetricFamily(
            "holocrm_drift_severity",
            "Worst drift verdict of a report: 0 ok, 1 warn, 2 block",
            labels=["report"],
        )
        for report in self._report("drift").get("reports", []):
            drift_severity.add_metric([report["name"]], SEVERITY_VALUE.get(report.get("severity"), 0))
            for column in report.get("columns", []):
                if column.get("psi") is not None:
                    drift_score.add_metric([report["name"], column["column"], "psi"], column["psi"])
                if column.get("distance") is not None:
                    measure = column.get("distance_name") or "distance"
                    drift_score.add_metric([report["name"], column["column"], measure], column["distance"])
        decay = GaugeMetricFamily(
            "holocrm_decay_failing",
            "1 when a champion failed its decay check since promotion",
            labels=["model"],
        )
        decay_auc = GaugeMetricFamily(
            "holocrm_decay_auc", "AUC of a champion on the outcomes since its promotion", labels=["model"]
        )
        for check in self._report("decay").get("checks", []):
            decay.add_metric([check["model"]], 1.0 if check.get("failed") else 0.0)
            if check.get("auc") is not None:
                decay_auc.add_metric([check["model"]], check["auc"])
        age = GaugeMetricFamily("holocrm_asset_age_seconds", "Age of an asset on disk", labels=["asset"])
        stale = GaugeMetricFamily(
            "holocrm_asset_stale",
            "1 when an asset is past its freshness limit (or never built)",
            labels=["asset"],
        )
        limit = GaugeMetricFamily(
            "holocrm_asset_freshness_limit_seconds", "The age an asset may reach", labels=["asset"]
        )
        try:
            freshness = asset_freshness(self.paths)
        except (
            ValueError
        ):  # a malformed HOLOCRM_FRESHNESS_* variable: say nothing rather than fail the scrape
            freshness = []
        for item in freshness:
            if item.age_hours is not None:
                age.add_metric([item.name], item.age_hours * 3600)
            stale.add_metric([item.name], 1.0 if item.stale else 0.0)
            limit.add_metric([item.name], item.limit_hours * 3600)
        lag = GaugeMetricFamily(
            "holocrm_outcome_log_lag_seconds",
            "How long the newest logged outcome has waited for the outcome dataset to learn from it",
        )
        lag.add_metric([], outcome_log_lag(self.paths))
        yield from (drift_score, drift_severity, decay, decay_auc, age, stale, limit, lag)


def outcome_log_lag(paths, now: float | None = None) -> float:
    """Seconds the outcome dataset has been behind the outcome log: 0 when it learned from every logged
    outcome, else the time since it was built (since the log was written, when it was never built)."""
    log = paths.outcomes_log
    if not log.exists() or log.stat().st_size == 0:
        return 0.0
    from holocrm_core.settings import open_warehouse

    built_at = open_warehouse(paths).modified_at("outcome_dataset")  # a folder or object storage
    logged = log.stat().st_mtime
    built = built_at.timestamp() if built_at is not None else None
    if built is not None and logged <= built:
        return 0.0
    return max(0.0, (now or time.time()) - (built if built is not None else logged))


class ServingMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, home: Path | None = None) -> None:
        self.registry = CollectorRegistry()
        self.home = home
        self.requests = Counter(
            "holocrm_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "holocrm_request_seconds",
            "Time to answer a request",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.model_version = Gauge(
            "holocrm_model_version",
            "Registered model version served (0: the heuristic)",
            ["model", "served_as"],
            registry=self.registry,
            multiprocess_mode="livemostrecent",
        )
        self.index_version = Gauge(
            "holocrm_index_version",
            "LanceDB table version served",
            ["entity_type"],
            registry=self.registry,
            multiprocess_mode="livemostrecent",
        )
        self.loaded_at = Gauge(
            "holocrm_artifacts_loaded_timestamp_seconds",
            "When the served artifacts were loaded",
            registry=self.registry,
            multiprocess_mode="livemostrecent",
        )
        self.reloads = Counter(
            "holocrm_artifact_reloads", "Artifact reloads", ["result"], registry=self.registry
        )
        self.writes = Counter(
            "holocrm_log_writes", "Durable log writes", ["log", "result"], registry=self.registry
        )
        self.predictions = Counter(
            "holocrm_predictions",
            "Scores answered, by model and band",
            ["model", "band"],
            registry=self.registry,
        )
        self.recommendations = Counter(
            "holocrm_recommendations",
            "Next best actions answered, by action and the policy that chose it",
            ["action", "policy"],
            registry=self.registry,
        )
        self.exposures = Counter(
            "holocrm_experiment_exposures",
            "Callers exposed to an experiment arm",
            ["experiment", "arm"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "holocrm_requests_in_flight",
            "HTTP requests being answered now",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        # The HTTP metrics of every route (``HttpMetrics``): the names, help texts, labels and buckets that
        # prometheus-fastapi-instrumentator gave them (dashboards and alerts read these).
        self.http_requests = Counter(
            "http_requests_total",
            "Total number of requests by method, status and handler.",
            ["handler", "method", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "http_request_duration_seconds",
            "Duration of HTTP requests in seconds",
            ["handler", "method"],
            buckets=(*LATENCY_BUCKETS, float("inf")),
            registry=self.registry,
        )
        self._http_children: dict[tuple[str, str, str], tuple] = {}
        self._children: dict[tuple[str, str, str], tuple] = {}
        self.monitoring = MonitoringCollector(home) if home is not None else None
        if self.monitoring is not None and not multiprocess_dir():
            self.registry.register(self.monitoring)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """The request guard's figures (exact status code); label children are looked up once per series."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(method, route, str(status)), self.latency.labels(method, route))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_http(self, method: str, handler: str, status: int, seconds: float) -> None:
        """``http_requests_total`` (status class) and ``http_request_duration_seconds`` of one request."""
        key = (handler, method, status)
        children = self._http_children.get(key)
        if children is None:
            status_class = f"{str(status)[0]}xx"
            children = (
                self.http_requests.labels(handler, method, status_class),
                self.http_latency.labels(handler, method),
            )
            self._http_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def count_exposure(self, experiment: str, arm: str) -> None:
        self.exposures.labels(experiment, arm).inc()

    def count_answer(self, body: bytes) -> None:
        """Count the score / recommendation a 200 answer of a ``COUNTED_ROUTES`` route carried."""
        if not body:
            return
        try:
            answer = json.loads(body)
        except ValueError:
            return
        if not isinstance(answer, dict):
            return
        if "band" in answer and isinstance(answer.get("model"), dict):
            self.predictions.labels(str(answer["model"].get("name")), str(answer["band"])).inc()
        elif "action" in answer:
            policy = answer.get("policy") or answer.get("source") or "unknown"
            self.recommendations.labels(str(answer["action"]), str(policy)).inc()

    def instrument(self, app) -> None:
        """HTTP metrics for every route (latency per route template, status classes, answers counted)."""
        app.add_middleware(HttpMetrics, metrics=self)

    def on_swap(self, snapshot: Snapshot | None) -> None:
        """The loader's callback: None when a reload failed, else the snapshot now served."""
        self.reloads.labels("error" if snapshot is None else "swapped").inc()
        if snapshot is not None:
            self.describe_snapshot(snapshot)

    def describe_snapshot(self, snapshot: Snapshot) -> None:
        self.model_version.clear()
        for name, scorer in snapshot.scorers.items():
            version = float(scorer.version) if scorer.version.isdigit() else 0.0
            self.model_version.labels(name, scorer.served_as).set(version)
        self.index_version.clear()
        for entity_type, version in snapshot.index_versions.items():
            self.index_version.labels(entity_type).set(float(version))
        self.loaded_at.set(snapshot.loaded_at_epoch)

    def render(self) -> bytes:
        """The exposition: this process's registry, or with several workers the sum over all of them."""
        folder = multiprocess_dir()
        if not folder:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=folder)
        if self.monitoring is not None:
            merged.register(self.monitoring)
        return generate_latest(merged)


class HttpMetrics:
    """Pure ASGI: ``http_requests_total`` and ``http_request_duration_seconds`` per route template, and the
    scores and recommendations the answers carried (``ServingMetrics.count_answer``).

    It replaced prometheus-fastapi-instrumentator, which cost about 0.47 ms of the event loop per request
    (a ``Request``, its own match of the path against every route, a ``Response`` and an ``Info`` object
    per request). Here the route template is the one the router chose (``scope["route"]``, read after the
    answer); only a request answered before routing (401 from the request guard, 413, a 404) is matched
    against the routes, once. The same names, help texts, labels and buckets; ``/metrics`` itself is not
    counted; a request no route answers is ``handler="none"`` (the instrumentator labelled a redirect to the
    path's slash twin by the raw path asked for: one series per path; here ``none`` too).
    """

    def __init__(self, app, metrics: ServingMetrics):
        self.app, self.metrics = app, metrics
        self._routes: list | None = None  # the app's routes, flattened on first use (fallback matching)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = perf_counter()
        status = [500]
        body: list[bytes] | None = None
        root_path = scope.get("root_path", "")  # a mount below changes it; the fallback match needs this one

        async def send_counted(message):
            nonlocal body
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                route = scope.get("route")
                if status[0] == 200 and getattr(route, "path", None) in COUNTED_ROUTES:
                    body = []
            elif body is not None and message["type"] == "http.response.body":
                body.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            route = scope.get("route")
            handler = getattr(route, "path", None) or self._match({**scope, "root_path": root_path})
            if handler not in EXCLUDED_HANDLERS:
                self.metrics.observe_http(scope["method"], handler, status[0], perf_counter() - started)
                if body is not None:
                    self.metrics.count_answer(b"".join(body))

    def _match(self, scope) -> str:
        """The template of a request answered before routing (or by no route): a full match first, else the
        first partial one (a 405), else ``none``."""
        from starlette.routing import Match

        if self._routes is None:
            self._routes = _flat_routes(getattr(scope.get("app"), "routes", None) or [])
        partial = None
        for route in self._routes:
            try:
                match, _ = route.matches(scope)
            except Exception:  # noqa: BLE001 - a route that cannot judge this scope is not its template
                continue
            if match == Match.FULL:
                return route.path
            if match == Match.PARTIAL and partial is None:
                partial = route.path
        return partial or UNTEMPLATED


def _flat_routes(routes) -> list:
    """Directly matchable routes: FastAPI's included routers expand to their routes (with their prefix)."""
    flat = []
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if callable(contexts):
            for context in contexts():
                flat.append(getattr(context, "starlette_route", None) or context)
        elif getattr(route, "path", None) is not None:
            flat.append(route)
    return flat
