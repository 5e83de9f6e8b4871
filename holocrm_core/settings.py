"""Where HoloCRM keeps its state: one root (HOLOCRM_HOME) holding every folder, the MLflow store included.

``HoloPaths`` names each location (landing, warehouse, LanceDB, logs, models, MLflow's local store); the
root defaults to the project's ``.holocrm/``. HOLOCRM_HOME moves the root, MLFLOW_TRACKING_URI points MLflow
at another store (or a tracking server); the Dagster resources take these as defaults.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _home_default() -> Path:
    return Path(os.environ.get("HOLOCRM_HOME", PROJECT_ROOT / ".holocrm")).expanduser().resolve()


def mlflow_tracking_uri() -> str:
    """MLFLOW_TRACKING_URI when set; otherwise the SQLite store in HOLOCRM_HOME (``HoloPaths.mlflow_uri``)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
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
