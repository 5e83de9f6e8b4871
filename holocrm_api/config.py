"""Serving configuration: where the artifacts are, who may call, and the limits that keep the API safe.

One pydantic-settings class: every field has a local default and an environment variable, so the same code
serves a laptop and a deployment. Names: HOLOCRM_HOME, MLFLOW_TRACKING_URI, HOLOCRM_LANCEDB_URI,
HOLOCRM_API_KEY / HOLOCRM_API_KEYS (comma-separated) / HOLOCRM_API_KEY_FILE (one key a line, re-read when
it changes), HOLOCRM_API_KEY_REQUIRED, HOLOCRM_RATE_LIMIT_PER_MINUTE, HOLOCRM_RELOAD_INTERVAL_S,
HOLOCRM_MAX_BODY_BYTES, HOLOCRM_SLACK_SIGNING_SECRET / _WRITES / _BOT_TOKEN / _API_URL. A key set anywhere
means auth is on: there is no way to configure a key and leave
the API open by mistake.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from holocrm_core.settings import HoloPaths, lancedb_uri, mlflow_tracking_uri


class ServingSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HOLOCRM_", frozen=True, extra="ignore", populate_by_name=True
    )

    home: Path = Field(default_factory=lambda: HoloPaths.default().home)
    # Empty = holocrm_core.settings.mlflow_tracking_uri() (the project's SQLite store).
    mlflow_tracking_uri: str = Field(
        "", validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "mlflow_tracking_uri")
    )
    lancedb_uri: str = ""  # empty = HOLOCRM_HOME/lancedb
    api_key_required: bool = False  # refuse to start when no key is configured
    api_key: str = ""
    api_keys: Annotated[tuple[str, ...], NoDecode] = ()
    api_key_file: Path | None = None
    rate_limit_per_minute: int = Field(6000, ge=0, description="per API key; 0 = no limit")
    rate_limit_burst: int = Field(200, ge=1, description="requests a key may send at once before it waits")
    max_body_bytes: int = 64 * 1024  # CRM writes are small; anything bigger is a mistake or an attack
    max_limit: int = 100  # the most rows one list/search request may ask for
    reload_interval_s: float = 15.0  # 0 = no background reload (on-demand only)
    load_models: bool = True  # False skips MLflow entirely (serve precomputed tables and the heuristic)
    rescore_max_rows: int = 2_000_000  # score a missing or stale scored table at load up to this many rows
    warm_query_embedder: bool = True  # load the text embedder at start, not on the first search
    # Where each served vector table version is written once and memory-mapped by every server process
    # (holocrm_core.store.EntityVectors.save / open). Empty = HOLOCRM_HOME/cache/served_vectors when the
    # LanceDB index is a local folder; "off" = read LanceDB into each process's own memory every start.
    vector_cache: str = ""
    slack_signing_secret: str = ""  # Slack app's signing secret; empty = the /api/slack routes answer 503
    slack_writes: bool = True  # a Slack user may confirm a previewed write (every write still needs "yes")
    slack_bot_token: str = ""  # xoxb-...: events' replies are posted to their channel (empty: not posted)
    slack_api_url: str = "https://slack.com/api"

    @field_validator("home", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split(cls, value):
        if isinstance(value, str):
            return tuple(k.strip() for k in value.split(",") if k.strip())
        return value

    @classmethod
    def from_env(cls, **overrides) -> ServingSettings:
        """Environment first, then ``overrides`` (what a test or the CLI says explicitly)."""
        return cls(**overrides)

    @property
    def env_keys(self) -> tuple[str, ...]:
        keys = [k.strip() for k in (self.api_key, *self.api_keys) if k and k.strip()]
        return tuple(dict.fromkeys(keys))

    @property
    def paths(self) -> HoloPaths:
        return HoloPaths(self.home)

    def resolved_tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or mlflow_tracking_uri()

    def resolved_vector_cache(self) -> Path | None:
        """The served vectors' cache folder (``vector_cache``), or None: switched off, or an index on object
        storage (the cache is keyed by the local table's version manifests)."""
        if self.vector_cache.strip().lower() == "off":
            return None
        if self.vector_cache.strip():
            return Path(self.vector_cache).expanduser()
        if "://" in self.resolved_lancedb_uri():
            return None
        return self.home / "cache" / "served_vectors"

    def resolved_lancedb_uri(self) -> str:
        """HOLOCRM_LANCEDB_URI, else the settings file's ``[lancedb] uri``, else HOLOCRM_HOME/lancedb."""
        return self.lancedb_uri or lancedb_uri(self.paths)
