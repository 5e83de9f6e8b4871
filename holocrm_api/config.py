"""Serving configuration: where the artifacts are, who may call, and the limits that keep the API safe.

Every field has a local default and an environment variable, so the same code serves a laptop and a
deployment: ``ServingSettings.from_env()`` reads HOLOCRM_HOME, MLFLOW_TRACKING_URI, HOLOCRM_LANCEDB_URI,
HOLOCRM_API_KEY(S), HOLOCRM_API_KEY_REQUIRED, HOLOCRM_RELOAD_INTERVAL_S, HOLOCRM_MAX_BODY_BYTES.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from holocrm_core.settings import HoloPaths, mlflow_tracking_uri

SCORER_MODELS = {"contacts": "holocrm_lead_scorer", "deals": "holocrm_deal_scorer"}


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class ServingSettings:
    home: Path = field(default_factory=lambda: HoloPaths.default().home)
    mlflow_tracking_uri: str = ""  # empty = holocrm_core.settings.mlflow_tracking_uri()
    lancedb_uri: str = ""  # empty = HOLOCRM_HOME/lancedb
    api_key_required: bool = False
    api_keys: tuple[str, ...] = ()
    max_body_bytes: int = 64 * 1024  # CRM writes are small; anything bigger is a mistake or an attack
    max_limit: int = 100  # the most rows one list/search request may ask for
    max_question_chars: int = 1000
    reload_interval_s: float = 15.0  # 0 = no background reload (on-demand only)
    model_names: dict[str, str] = field(default_factory=lambda: dict(SCORER_MODELS))
    load_models: bool = True  # False skips MLflow entirely (serve precomputed tables only)
    rescore_max_rows: int = 2_000_000  # rescore a stale scored table at load up to this many rows
    warm_query_embedder: bool = True  # load the text embedder at start, not on the first search

    @classmethod
    def from_env(cls, **overrides) -> "ServingSettings":
        env = os.environ
        keys = tuple(
            k.strip()
            for k in (env.get("HOLOCRM_API_KEYS", "") + "," + env.get("HOLOCRM_API_KEY", "")).split(",")
            if k.strip()
        )
        settings = cls(
            home=HoloPaths.default().home,
            mlflow_tracking_uri=env.get("MLFLOW_TRACKING_URI", ""),
            lancedb_uri=env.get("HOLOCRM_LANCEDB_URI", ""),
            api_key_required=_truthy(env.get("HOLOCRM_API_KEY_REQUIRED")),
            api_keys=keys,
            reload_interval_s=float(env.get("HOLOCRM_RELOAD_INTERVAL_S", 15.0)),
            max_body_bytes=int(env.get("HOLOCRM_MAX_BODY_BYTES", 64 * 1024)),
        )
        return replace(settings, **overrides) if overrides else settings

    @property
    def paths(self) -> HoloPaths:
        return HoloPaths(Path(self.home))

    def resolved_tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or mlflow_tracking_uri()

    def resolved_lancedb_uri(self) -> str:
        return self.lancedb_uri or str(self.paths.lancedb)
