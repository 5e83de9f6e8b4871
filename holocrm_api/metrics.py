"""Prometheus metrics of the serving module: requests, latency, what is served (model and index versions).

Each app gets its own registry so several apps in one process (tests) do not collide.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from holocrm_api.loader import Snapshot

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ServingMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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
        )
        self.index_version = Gauge(
            "holocrm_index_version", "LanceDB table version served", ["entity_type"], registry=self.registry
        )
        self.loaded_at = Gauge(
            "holocrm_artifacts_loaded_timestamp_seconds",
            "When the served artifacts were loaded",
            registry=self.registry,
        )
        self.reloads = Counter(
            "holocrm_artifact_reloads", "Artifact reloads", ["result"], registry=self.registry
        )
        self.writes = Counter(
            "holocrm_log_writes", "Durable log writes", ["log", "result"], registry=self.registry
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

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
        return generate_latest(self.registry)
