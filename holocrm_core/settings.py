"""Where HoloCRM keeps its state: one root (HOLOCRM_HOME) holding every folder, the MLflow store included,
and the backends that can replace those folders (PostgreSQL, a tracking server, object storage).

``HoloPaths`` names each location (landing, warehouse, LanceDB, logs, models, MLflow's local store); the
root defaults to the project's ``.holocrm/``. HOLOCRM_HOME moves the root, MLFLOW_TRACKING_URI points MLflow
at another store (or a tracking server); the Dagster resources take these as defaults.

``Backends`` is the one switch for the rest (README "Backends and executors"): the Dagster instance's storage
(SQLite under DAGSTER_HOME, or PostgreSQL), the executor (in-process, multiprocess, Celery), MLflow's
tracking server and artifact store, and the LanceDB and warehouse URIs (a folder, or ``s3://bucket/prefix``),
read from a TOML settings file (HOLOCRM_SETTINGS, else HOLOCRM_HOME/settings.toml when present) with the
environment variables taking precedence. ``holocrm where`` prints what is in use, secrets masked.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _home_default() -> Path:
    return Path(os.environ.get("HOLOCRM_HOME", PROJECT_ROOT / ".holocrm")).expanduser().resolve()


def mlflow_tracking_uri() -> str:
    """MLFLOW_TRACKING_URI (or the settings file's ``[mlflow] tracking_uri``) when set; otherwise the SQLite
    store in HOLOCRM_HOME (``HoloPaths.mlflow_uri``)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or Backends.load().mlflow_tracking_uri
    if uri:
        return uri
    paths = HoloPaths.default()
    paths.mlruns.mkdir(parents=True, exist_ok=True)
    return paths.mlflow_uri


def configure_mlflow(tracking_uri: str | None = None) -> str:
    """Point the mlflow client (tracking and registry) at ``tracking_uri`` or :func:`mlflow_tracking_uri`.

    The one place MLflow is configured: the Dagster resource, the serving loader and the registry call it.
    """
    import mlflow

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    uri = tracking_uri or mlflow_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    ensure_mlflow_store(uri)
    return uri


_READY_STORES: set[str] = set()


def ensure_mlflow_store(tracking_uri: str | None = None) -> None:
    """Create (migrate) a SQLite MLflow store once, under a file lock, before anything uses it concurrently.

    Two processes that open a new SQLite store at once both run MLflow's schema migrations and one fails
    ("Online migration expected to match one row"); serialising the first open removes the race. Other
    stores (a tracking server) are created by their server. Once per store per process.
    """
    import fcntl

    uri = tracking_uri or mlflow_tracking_uri()
    if not uri.startswith("sqlite:///") or uri in _READY_STORES:
        return
    db = Path(uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(db.with_name(db.name + ".init-lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore
        from mlflow.tracking._tracking_service.utils import DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH

        TrackingStore(uri, DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH)
        RegistryStore(uri)
    finally:
        os.close(fd)
    _READY_STORES.add(uri)


@dataclass(frozen=True)
class HoloPaths:
    """The folders under one HOLOCRM_HOME root."""

    home: Path

    @classmethod
    def default(cls) -> HoloPaths:
        return cls(_home_default())

    @property
    def landing(self) -> Path:
        """Where export files are dropped (one folder per export batch or the files directly)."""
        return self.home / "landing"

    @property
    def truth(self) -> Path:
        """Hidden ground truth of the generated sample export (never read by the product)."""
        return self.home / "truth"

    @property
    def warehouse(self) -> Path:
        """Canonical tables as Parquet, one file per asset."""
        return self.home / "warehouse"

    @property
    def lancedb(self) -> Path:
        return self.home / "lancedb"

    @property
    def logs(self) -> Path:
        """Append-only logs written by the serving module (outcomes, actions)."""
        return self.home / "logs"

    @property
    def outcomes_log(self) -> Path:
        """Outcomes recorded in the field (won/lost, converted): appended by the API, read by outcome_dataset."""
        return self.logs / "outcomes.ndjson"

    @property
    def actions_log(self) -> Path:
        """Actions taken and their rewards, appended by the API."""
        return self.logs / "actions.ndjson"

    @property
    def models(self) -> Path:
        """Model files that are not MLflow artifacts (training checkpoints)."""
        return self.home / "models"

    @property
    def outreach_policy(self) -> Path:
        """The PPO outreach policy's checkpoint folder (resumed by the asset and by `holocrm rl train`)."""
        return self.models / "outreach_policy"

    @property
    def mlruns(self) -> Path:
        """MLflow's local store: the SQLite database of runs and registry, and the run artifacts."""
        return self.home / "mlruns"

    @property
    def mlflow_uri(self) -> str:
        """The tracking (and registry) URI of the local store; artifacts go beside it in ``mlruns/``."""
        return f"sqlite:///{self.mlruns / 'mlflow.db'}"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    def ensure(self) -> HoloPaths:
        for p in (self.landing, self.warehouse, self.lancedb, self.logs, self.models, self.dagster_home):
            p.mkdir(parents=True, exist_ok=True)
        return self


# ------------------------------------------------------------------------------------------------ backends
PG_SCHEME = "postgresql+psycopg2://"
EXECUTORS = ("default", "in_process", "multiprocess", "celery", "k8s")
# Redis's own default is 1 h. 30 min: about 3x the longest step measured (the lead model at 100,000 contacts,
# 621 s on 2 cores); raise it for bigger exports whose training steps run longer.
DEFAULT_VISIBILITY_TIMEOUT_S = 1800
NUMBER_FIELDS = {
    "celery_visibility_timeout",
    "warehouse_versions",
    "warehouse_superseded_max",
}  # may be a TOML integer in the settings file

# field -> (environment variable, settings-file section, settings-file key). The environment wins over the file
# so a deployment (Helm values, a CI job) can override one value without rewriting the file.
_SOURCES = {
    "dagster_storage": ("HOLOCRM_DAGSTER_STORAGE", "dagster", "storage"),
    "executor": ("HOLOCRM_EXECUTOR", "dagster", "executor"),
    "celery_broker": ("HOLOCRM_CELERY_BROKER", "dagster", "celery_broker"),
    "celery_backend": ("HOLOCRM_CELERY_BACKEND", "dagster", "celery_backend"),
    "celery_visibility_timeout": (
        "HOLOCRM_CELERY_VISIBILITY_TIMEOUT",
        "dagster",
        "celery_visibility_timeout",
    ),
    "mlflow_tracking_uri": ("MLFLOW_TRACKING_URI", "mlflow", "tracking_uri"),
    "mlflow_artifacts": ("HOLOCRM_MLFLOW_ARTIFACTS", "mlflow", "artifacts"),
    "lancedb_uri": ("HOLOCRM_LANCEDB_URI", "lancedb", "uri"),
    "warehouse_uri": ("HOLOCRM_WAREHOUSE_URI", "warehouse", "uri"),
    "warehouse_versions": ("HOLOCRM_WAREHOUSE_VERSIONS", "warehouse", "versions"),
    "warehouse_superseded_max": ("HOLOCRM_WAREHOUSE_SUPERSEDED_MAX", "warehouse", "superseded_max"),
    "s3_endpoint": ("AWS_ENDPOINT_URL", "s3", "endpoint_url"),
    "s3_region": ("AWS_REGION", "s3", "region"),
    "s3_access_key": ("AWS_ACCESS_KEY_ID", "s3", "access_key_id"),
    "s3_secret_key": ("AWS_SECRET_ACCESS_KEY", "s3", "secret_access_key"),
}


class SettingsError(ValueError):
    """A settings file or value HoloCRM cannot use (the message says which and why)."""


def settings_file() -> Path | None:
    """HOLOCRM_SETTINGS when set (it must exist), else HOLOCRM_HOME/settings.toml when present, else None."""
    named = os.environ.get("HOLOCRM_SETTINGS")
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise SettingsError(f"HOLOCRM_SETTINGS names {path}, which is not a file")
        return path
    default = _home_default() / "settings.toml"
    return default if default.is_file() else None


@dataclass(frozen=True)
class Backends:
    """Which backend each part of HoloCRM uses. Empty strings mean the embedded default (a folder or a SQLite
    file under HOLOCRM_HOME); see ``_SOURCES`` for the environment variable and file key of each field."""

    dagster_storage: str = ""  # "" = SQLite under DAGSTER_HOME; postgresql+psycopg2://user:pass@host:port/db
    executor: str = "default"  # default (Dagster's: in-process or multiprocess) | in_process | multiprocess | celery | k8s
    celery_broker: str = ""  # redis://host:port/db (the executor "celery")
    celery_backend: str = ""  # "" = the broker
    # seconds before Redis hands an unacknowledged step to another worker: "" = DEFAULT_VISIBILITY_TIMEOUT_S
    celery_visibility_timeout: str = ""
    mlflow_tracking_uri: str = ""  # "" = sqlite in HOLOCRM_HOME/mlruns; http://tracking-server:5000
    mlflow_artifacts: str = ""  # where the tracking server keeps artifacts (s3://bucket/mlflow); informative
    lancedb_uri: str = ""  # "" = HOLOCRM_HOME/lancedb; s3://bucket/lancedb
    warehouse_uri: str = ""  # "" = HOLOCRM_HOME/warehouse; s3://bucket/warehouse
    # retention of each warehouse table's versions (holocrm_core.warehouse.Retention): "" = the defaults
    warehouse_versions: str = ""  # versions per table, the current one included (default 5)
    warehouse_superseded_max: str = ""  # bytes of superseded versions per table: 2GiB, 500MB, none
    s3_endpoint: str = ""  # "" = AWS itself; http://127.0.0.1:9000 for an S3-compatible server
    s3_region: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    source: str = "defaults"  # where the values came from (for `holocrm where`)

    @classmethod
    def load(cls, env: dict[str, str] | None = None) -> Backends:
        """The settings file (if any), then the environment on top; raises SettingsError on a bad value."""
        env = os.environ if env is None else env
        path = settings_file()
        data: dict = {}
        if path is not None:
            try:
                data = tomllib.loads(path.read_text())
            except tomllib.TOMLDecodeError as exc:
                raise SettingsError(f"{path} is not valid TOML: {exc}") from exc
        values: dict[str, str] = {}
        from_env: list[str] = []
        for name, (variable, section, key) in _SOURCES.items():
            value = env.get(variable) or ""
            if not value and name == "s3_region":
                value = env.get("AWS_DEFAULT_REGION") or ""
            if value:
                from_env.append(variable)
            else:
                raw = (data.get(section) or {}).get(key, "")
                if isinstance(raw, int) and not isinstance(raw, bool) and name in NUMBER_FIELDS:
                    raw = str(raw)
                if not isinstance(raw, str):
                    raise SettingsError(f"{path}: [{section}] {key} must be a string, not {raw!r}")
                value = raw
            if value:
                values[name] = value.strip()
        sources = [str(path)] if path else []
        if from_env:
            sources.append("environment (" + ", ".join(from_env) + ")")
        backends = cls(**values, source="; ".join(sources) or "defaults")
        backends.check()
        return backends

    def check(self) -> None:
        if self.executor not in EXECUTORS:
            raise SettingsError(f"executor {self.executor!r} is not one of {', '.join(EXECUTORS)}")
        if self.celery_visibility_timeout and not (
            self.celery_visibility_timeout.isdigit() and int(self.celery_visibility_timeout) >= 1
        ):
            raise SettingsError(
                f"celery visibility timeout {self.celery_visibility_timeout!r} (HOLOCRM_CELERY_VISIBILITY_TIMEOUT) "
                "must be a whole number of seconds, at least 1"
            )
        if self.executor == "celery" and not self.celery_broker:
            raise SettingsError(
                "the celery executor needs a broker: set HOLOCRM_CELERY_BROKER=redis://host:port/0"
            )
        if self.dagster_storage and not self.dagster_storage.startswith(PG_SCHEME):
            raise SettingsError(
                f"dagster storage {mask_uri(self.dagster_storage)!r} is not a {PG_SCHEME} URL (leave it empty "
                "for SQLite under DAGSTER_HOME). The driver must be named: dagster-postgres 0.29 speaks psycopg2, "
                "and SQLAlchemy 2.1 would pick psycopg 3 for a plain postgresql:// URL"
            )
        try:
            self.warehouse_retention  # noqa: B018 (validates both values)
        except ValueError as exc:
            raise SettingsError(str(exc)) from exc
        for name in ("lancedb_uri", "warehouse_uri"):
            uri = getattr(self, name)
            if "://" in uri and not uri.startswith("s3://"):
                raise SettingsError(f"{name} {uri!r}: only a local folder or s3://bucket/prefix is supported")

    def s3_client_kwargs(self) -> dict:
        """Keyword arguments for ``boto3.client("s3", ...)``: the endpoint, region and keys that are set."""
        kwargs = {
            "endpoint_url": self.s3_endpoint or None,
            "region_name": self.s3_region or None,
            "aws_access_key_id": self.s3_access_key or None,
            "aws_secret_access_key": self.s3_secret_key or None,
        }
        return {k: v for k, v in kwargs.items() if v}

    def storage_options(self) -> dict[str, str]:
        """The same, as object_store options (LanceDB's and polars' Rust S3 client)."""
        options = {
            "aws_endpoint": self.s3_endpoint,
            "aws_region": self.s3_region or "us-east-1",
            "aws_access_key_id": self.s3_access_key,
            "aws_secret_access_key": self.s3_secret_key,
        }
        if self.s3_endpoint.startswith("http://"):
            options["allow_http"] = "true"  # an S3-compatible server on a private network or loopback
        return {k: v for k, v in options.items() if v}

    def described(self, paths: HoloPaths | None = None) -> dict[str, str]:
        """What is in use, for people: every default spelled out, every secret masked."""
        paths = paths or HoloPaths.default()
        executor = self.executor
        if executor == "celery":
            executor = (
                f"celery (broker {mask_uri(self.celery_broker)}, "
                f"visibility timeout {self.visibility_timeout_s} s)"
            )
        artifacts = self.mlflow_artifacts or (
            "served by the tracking server"
            if self.mlflow_tracking_uri.startswith("http")
            else str(paths.mlruns)
        )
        return {
            "settings": self.source,
            "dagster instance": mask_uri(self.dagster_storage)
            if self.dagster_storage
            else f"sqlite in {os.environ.get('DAGSTER_HOME') or paths.dagster_home}",
            "executor": executor,
            "mlflow tracking": mask_uri(self.mlflow_tracking_uri or mlflow_tracking_uri()),
            "mlflow artifacts": mask_uri(artifacts),
            "lancedb": self.lancedb_uri or str(paths.lancedb),
            "warehouse": self.warehouse_uri or str(paths.warehouse),
            "warehouse retention": self.warehouse_retention.describe(),
            "s3 endpoint": self.s3_endpoint or ("AWS" if self.uses_s3 else "not used"),
            "s3 access key": _mask_secret(self.s3_access_key) if self.uses_s3 else "not used",
            "s3 secret key": ("*** (set)" if self.s3_secret_key else _mask_secret(""))
            if self.uses_s3
            else "not used",
        }

    @property
    def warehouse_retention(self):
        """The ``holocrm_core.warehouse.Retention`` these settings name (ValueError on a bad value)."""
        from holocrm_core.warehouse import Retention

        return Retention.from_values(self.warehouse_versions, self.warehouse_superseded_max)

    @property
    def visibility_timeout_s(self) -> int:
        """How long a step a Celery worker took may stay unacknowledged before Redis redelivers it to another
        worker (a whole worker killed mid-step: its step waits this long). Must exceed the longest step, or a
        step still running is started again elsewhere (harmless, steps are idempotent, but the work doubles)."""
        return int(self.celery_visibility_timeout or DEFAULT_VISIBILITY_TIMEOUT_S)

    @property
    def uses_s3(self) -> bool:
        uris = (self.lancedb_uri, self.warehouse_uri, self.mlflow_artifacts)
        return any(u.startswith("s3://") for u in uris)


def mask_uri(uri: str) -> str:
    """``scheme://user:secret@host/...`` -> ``scheme://user:***@host/...``; other strings unchanged."""
    if "://" not in uri:
        return uri
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _mask_secret(value: str) -> str:
    if not value:
        return "(from the environment's default credentials)"
    return "***" if len(value) < 12 else f"{value[:2]}***{value[-2:]}"


def lancedb_uri(paths: HoloPaths | None = None) -> str:
    """The LanceDB URI in use: the settings' ``lancedb_uri``, else HOLOCRM_HOME/lancedb."""
    return Backends.load().lancedb_uri or str((paths or HoloPaths.default()).lancedb)


def connect_lancedb(uri: str | None = None):
    """The one place LanceDB is opened: a folder, or ``s3://`` with the settings' endpoint and keys.

    LanceDB (0.40, lance >= 0.24) commits a table version on S3 by writing its manifest with a conditional PUT
    (``If-None-Match: *``): two writers of the same version cannot both win, the loser retries on the new
    version. That needs a store that honours the header: AWS S3 (since 2024-08), MinIO, and moto 5.2.5's
    server (checked in tests/backends/test_object_store.py); a store that ignores it loses commits.
    """
    import lancedb

    uri = uri or lancedb_uri()
    if uri.startswith("s3://"):
        return lancedb.connect(uri, storage_options=Backends.load().storage_options())
    return lancedb.connect(uri)


def warehouse_root(paths: HoloPaths | None = None) -> str | Path:
    """Where the warehouse tables live: the settings' ``warehouse_uri`` (``s3://...``), else HOLOCRM_HOME's."""
    return Backends.load().warehouse_uri or (paths or HoloPaths.default()).warehouse


def open_warehouse(paths: HoloPaths | None = None):
    """The warehouse in use (``warehouse_root``): a local ``Warehouse`` or, on ``s3://``, an ``ObjectWarehouse``
    with the same API. Every reader outside the pipeline (CLI, API, monitoring) opens it here, never a folder."""
    from holocrm_core.warehouse import Warehouse

    return Warehouse(warehouse_root(paths))


def lancedb_built(uri: str) -> bool:
    """Whether the LanceDB index at ``uri`` may hold tables: a local folder with a ``.lance`` table; on object
    storage always True (listing costs a round trip: the store answers, and says when it holds nothing)."""
    if "://" in uri:
        return True
    path = Path(uri)
    return path.is_dir() and any(p.suffix == ".lance" for p in path.iterdir())
