"""Artifact loader: what the API serves, pinned in one immutable snapshot and swapped atomically on reload.

A snapshot holds the warehouse tables the API answers from (precomputed scores, duplicate candidates, the
ids that exist), the LanceDB similarity store pinned to the newest table versions, the ``champion`` alias of
each registered scoring model, and the natural-language query context. A request reads
``loader.snapshot`` once and uses only that object, so a reload that swaps in a newer snapshot never
changes the ground under a request in flight and never drops one.

A capability whose artifact has not been built yet is recorded in ``snapshot.missing`` with what to run;
the API answers 503 with that message instead of crashing. A background thread (``start()``) checks a
cheap fingerprint (table file stamps, LanceDB versions, champion alias versions) every
``reload_interval_s`` and rebuilds the snapshot only when something changed; ``reload()`` does it on demand.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

from holocrm_api.config import ServingSettings
from holocrm_core import schema
from holocrm_core.warehouse import Warehouse

log = logging.getLogger("holocrm.serving")

RUN_HINT = "run `holocrm run` to build it"
STAGED_TABLES = ("staged_companies", "staged_contacts", "staged_deals", "staged_activities")
SERVED_TABLES = (*STAGED_TABLES, "scored_leads", "scored_deals", "duplicate_candidates", "action_log")


class CapabilityMissing(Exception):
    """An artifact the request needs has not been built (503)."""

    def __init__(self, capability: str, message: str):
        super().__init__(message)
        self.capability = capability
        self.message = message


def _optional_module(name: str):
    """Import a sibling module another part of HoloCRM provides; None while it does not exist yet."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            return None
        raise


@dataclass(frozen=True)
class ModelInfo:
    """A champion model as served: registry name, version, where it came from, the loaded model."""

    name: str
    version: str
    run_id: str | None
    source: str
    model: Any = field(repr=False, compare=False)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "run_id": self.run_id, "source": self.source}


@dataclass(frozen=True)
class ScoreTable:
    """A precomputed score table (scored_leads / scored_deals) indexed by entity id."""

    frame: pl.DataFrame
    id_column: str
    position: dict[str, int]
    model_version: str | None  # the model version that produced the scores, when the table says
    origin: str = "scored_table"  # or "rescored_at_load": the champion changed since the pipeline scored

    @classmethod
    def build(cls, frame: pl.DataFrame, id_column: str, origin: str = "scored_table") -> "ScoreTable":
        version = None
        if "model_version" in frame.columns and frame.height:
            versions = frame["model_version"].drop_nulls().unique().to_list()
            version = str(versions[0]) if len(versions) == 1 else None
        ids = frame[id_column].cast(pl.String).to_list()
        return cls(frame, id_column, {i: n for n, i in enumerate(ids)}, version, origin)

    def get(self, entity_id: str) -> dict[str, Any] | None:
        n = self.position.get(entity_id)
        return None if n is None else self.frame.row(n, named=True)


@dataclass(frozen=True)
class Snapshot:
    loaded_at: datetime
    fingerprint: tuple
    tables: dict[str, pl.DataFrame] = field(repr=False)
    contacts: dict[str, dict[str, Any]] = field(repr=False)  # contact_id -> decision context fields
    deals: dict[str, dict[str, Any]] = field(repr=False)  # deal_id -> stage, created_at, contact_id
    scored: dict[str, ScoreTable] = field(repr=False)  # "contacts" / "deals" -> table
    duplicates: pl.DataFrame | None = field(repr=False)
    store: Any = field(repr=False)
    index_versions: dict[str, int]
    models: dict[str, ModelInfo]  # registry name -> champion
    nlq_context: Any = field(repr=False)
    missing: dict[str, str]  # capability -> what is missing and what to run
    load_seconds: float = 0.0

    @property
    def loaded_at_epoch(self) -> float:
        return self.loaded_at.timestamp()

    def require(self, capability: str) -> None:
        if capability in self.missing:
            raise CapabilityMissing(capability, self.missing[capability])

    def describe(self) -> dict[str, Any]:
        return {
            "loaded_at": self.loaded_at.isoformat(),
            "load_seconds": round(self.load_seconds, 3),
            "index_versions": self.index_versions,
            "models": {name: info.describe() for name, info in self.models.items()},
            "tables": {name: frame.height for name, frame in self.tables.items()},
            "missing": self.missing,
        }


def _empty_snapshot(missing: dict[str, str]) -> Snapshot:
    return Snapshot(
        loaded_at=datetime.now(UTC), fingerprint=(), tables={}, contacts={}, deals={}, scored={},
        duplicates=None, store=None, index_versions={}, models={}, nlq_context=None, missing=missing,
    )


class ArtifactLoader:
    """Builds snapshots from HOLOCRM_HOME and the MLflow registry; swaps them in without a pause."""

    def __init__(self, settings: ServingSettings, on_swap=None):
        self.settings = settings
        self.warehouse = Warehouse(settings.paths.warehouse)
        self._snapshot = _empty_snapshot({"all": f"artifacts not loaded yet; {RUN_HINT}"})
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_swap = on_swap
        self.last_error: str | None = None
        self.last_check_at: datetime | None = None
        self._mlflow_ready = False
        self._model_cache: dict[str, ModelInfo] = {}
        self._query_embedder = None

    # -- public --------------------------------------------------------------------------------------
    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot  # one attribute read: atomic under the GIL

    def reload(self, force: bool = False) -> bool:
        """Rebuild the snapshot if any artifact changed (or ``force``); True when a new one was swapped in."""
        with self._reload_lock:  # one rebuild at a time; readers never wait on this lock
            self.last_check_at = datetime.now(UTC)
            try:
                fingerprint = self._fingerprint()
                if not force and fingerprint == self._snapshot.fingerprint:
                    return False
                snapshot = self._build(fingerprint)
            except Exception as exc:  # keep serving the previous snapshot
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("artifact reload failed; still serving the snapshot from %s",
                              self._snapshot.loaded_at)
                if self._on_swap:
                    self._on_swap(None)
                return False
            self._snapshot = snapshot
            self.last_error = None
            if self._on_swap:
                self._on_swap(snapshot)
            return True

    def start(self) -> None:
        if self.settings.reload_interval_s <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._watch, name="holocrm-artifact-reload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    # -- building ------------------------------------------------------------------------------------
    def _watch(self) -> None:
        while not self._stop.wait(self.settings.reload_interval_s):
            self.reload()

    def _table_stamp(self, name: str) -> tuple | None:
        path = self.warehouse.path(name)
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        return (name, st.st_mtime_ns, st.st_size)

    def _fingerprint(self) -> tuple:
        tables = tuple(self._table_stamp(n) for n in SERVED_TABLES)
        return (tables, tuple(sorted(self._index_versions().items())), tuple(sorted(self._champion_versions().items())))

    def _build(self, fingerprint: tuple) -> Snapshot:
        started = time.perf_counter()
        missing: dict[str, str] = {}
        tables: dict[str, pl.DataFrame] = {}
        for name in SERVED_TABLES:
            if self.warehouse.exists(name):
                tables[name] = self.warehouse.read(name)

        contacts = self._contact_contexts(tables, missing)
        deals = self._deal_facts(tables, missing)

        scored: dict[str, ScoreTable] = {}
        for entity, table, id_column in (("contacts", "scored_leads", "contact_id"), ("deals", "scored_deals", "deal_id")):
            if table in tables and id_column in tables[table].columns:
                scored[entity] = ScoreTable.build(tables[table], id_column)

        duplicates = tables.get("duplicate_candidates")
        if duplicates is not None:
            # Sorted once here so a page request is a slice, not a sort.
            score_col = next((c for c in ("score", "similarity", "probability") if c in duplicates.columns), None)
            if score_col is not None:
                duplicates = duplicates.sort(score_col, descending=True, nulls_last=True)
        else:
            missing["duplicates"] = f"duplicate candidates have not been built yet; {RUN_HINT}"

        store, index_versions = self._open_store(missing)
        models = self._load_champions(missing)
        for entity, table in list(scored.items()):
            champion = models.get(self.settings.model_names.get(entity, ""))
            if champion is not None and table.model_version is not None and table.model_version != champion.version:
                scored[entity] = self._rescore(entity, table, champion, tables) or table
        for entity in ("contacts", "deals"):
            if entity not in scored and self.settings.model_names.get(entity) not in models:
                what = "lead" if entity == "contacts" else "deal"
                missing[f"score_{entity}"] = (
                    f"no {what} scores yet: neither the scored_{'leads' if entity == 'contacts' else 'deals'} "
                    f"table nor a champion {self.settings.model_names.get(entity)} model exists; {RUN_HINT}"
                )
        nlq_context = self._nlq_context(missing, store)

        snapshot = Snapshot(
            loaded_at=datetime.now(UTC),
            fingerprint=fingerprint,
            tables=tables,
            contacts=contacts,
            deals=deals,
            scored=scored,
            duplicates=duplicates,
            store=store,
            index_versions=index_versions,
            models=models,
            nlq_context=nlq_context,
            missing=missing,
            load_seconds=time.perf_counter() - started,
        )
        log.info("serving snapshot loaded in %.2fs: %s", snapshot.load_seconds, snapshot.describe())
        return snapshot

    def _rescore(self, entity: str, table: ScoreTable, champion: ModelInfo, tables) -> ScoreTable | None:
        """A champion newer than the pipeline's scores: score the same ids now, in this background build,
        so requests keep answering from a lookup instead of building features per request."""
        outcomes = _optional_module("holocrm_core.outcomes")
        scoring = _optional_module("holocrm_core.scoring")
        if outcomes is None or scoring is None or table.frame.height > self.settings.rescore_max_rows:
            return None
        try:
            started = time.perf_counter()
            ids = table.frame[table.id_column].cast(pl.String).to_list()
            features = outcomes.build_features_for(schema.entity(entity).name, ids, tables)
            frame = scoring.score_frame(champion.model, features).with_columns(
                pl.lit(champion.version).alias("model_version"))
            log.info("rescored %d %s with %s v%s in %.1fs", frame.height, entity, champion.name, champion.version,
                     time.perf_counter() - started)
            return ScoreTable.build(frame, table.id_column, origin="rescored_at_load")
        except Exception as exc:  # serve the older scores (marked stale) rather than nothing
            log.warning("rescoring %s with the new champion failed: %s", entity, exc)
            return None

    def _contact_contexts(self, tables, missing) -> dict[str, dict[str, Any]]:
        frame = tables.get("staged_contacts")
        if frame is None:
            missing["contacts"] = f"staged_contacts has not been built yet; {RUN_HINT}"
            return {}
        cols = [c for c in ("contact_id", "lifecycle_status", "seniority", "company_id") if c in frame.columns]
        ctx = frame.select(cols).with_columns(pl.col("contact_id").cast(pl.String))
        bands = tables.get("scored_leads")
        if bands is not None and {"contact_id", "band"} <= set(bands.columns):
            ctx = ctx.join(
                bands.select(pl.col("contact_id").cast(pl.String), pl.col("band").cast(pl.String)),
                on="contact_id", how="left",
            )
        rows = ctx.to_dicts()
        return {row.pop("contact_id"): row for row in rows}

    def _deal_facts(self, tables, missing) -> dict[str, dict[str, Any]]:
        frame = tables.get("staged_deals")
        if frame is None:
            missing["deals"] = f"staged_deals has not been built yet; {RUN_HINT}"
            return {}
        cols = [c for c in ("deal_id", "stage", "contact_id", "created_at", "closed_at") if c in frame.columns]
        rows = frame.select(cols).with_columns(pl.col("deal_id").cast(pl.String)).to_dicts()
        return {row.pop("deal_id"): row for row in rows}

    # -- LanceDB -------------------------------------------------------------------------------------
    def _store_module(self):
        return _optional_module("holocrm_core.store")

    def _index_versions(self) -> dict[str, int]:
        module = self._store_module()
        if module is None or not _has_lance_tables(self.settings.resolved_lancedb_uri()):
            return {}
        try:
            return dict(module.SimilarityStore(self.settings.resolved_lancedb_uri()).versions())
        except Exception as exc:  # an empty or half-built index folder: treat as not built
            log.warning("could not read LanceDB versions: %s", exc)
            return {}

    def _open_store(self, missing) -> tuple[Any, dict[str, int]]:
        module = self._store_module()
        if module is None:
            missing["similarity"] = f"similarity search is not part of this build (holocrm_core.store is missing); {RUN_HINT} once it is"
            return None, {}
        uri = self.settings.resolved_lancedb_uri()
        if not _has_lance_tables(uri):
            missing["similarity"] = f"the similarity index has not been built yet ({uri} is empty); {RUN_HINT}"
            return None, {}
        try:
            newest = dict(module.SimilarityStore(uri).versions())
            if not newest:
                missing["similarity"] = f"the similarity index has no tables yet; {RUN_HINT}"
                return None, {}
            # Pin the versions read now: later writes by the pipeline do not change what this snapshot serves.
            store = module.SimilarityStore(uri, version=newest, embedder=self._embedder())
            if hasattr(store, "warm"):
                store.warm()  # read the pinned vectors into memory now, before this snapshot serves a request
            return store, newest
        except Exception as exc:
            log.warning("similarity index could not be opened: %s", exc)
            missing["similarity"] = f"the similarity index could not be opened ({exc}); {RUN_HINT}"
            return None, {}

    def _embedder(self):
        """The query embedder, loaded once per process and warmed so the first search is not slow."""
        if self._query_embedder is None:
            if not self.settings.warm_query_embedder:
                return None  # the store loads it on the first vector search
            try:
                from holocrm_core.embedding import load_embedder

                embedder = load_embedder()
                embedder.encode(["warm up"])
                self._query_embedder = embedder
            except Exception as exc:  # vector/hybrid search will say so; similar-by-id still works
                log.warning("query embedder could not be loaded: %s", exc)
                return None
        return self._query_embedder

    # -- MLflow --------------------------------------------------------------------------------------
    def _configure_mlflow(self):
        import os

        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        import mlflow

        if not self._mlflow_ready:
            uri = self.settings.resolved_tracking_uri()
            mlflow.set_tracking_uri(uri)
            mlflow.set_registry_uri(uri)
            self._mlflow_ready = True
        return mlflow

    def _registry_absent(self) -> bool:
        """A local SQLite registry that does not exist yet holds no champion: skip importing MLflow (~5 s)."""
        uri = self.settings.resolved_tracking_uri()
        if uri.startswith("sqlite:///"):
            from pathlib import Path

            return not Path(uri.removeprefix("sqlite:///")).exists()
        return False

    def _champion_versions(self) -> dict[str, str]:
        if not self.settings.load_models or self._registry_absent():
            return {}
        mlflow = self._configure_mlflow()
        versions: dict[str, str] = {}
        for name in self.settings.model_names.values():
            try:
                info = self._champion_info(mlflow, name)
            except Exception:  # registry unreachable: the next check tries again
                continue
            if info is not None:
                versions[name] = str(info.version)
        return versions

    def _load_champions(self, missing) -> dict[str, ModelInfo]:
        if not self.settings.load_models:
            return {}
        if self._registry_absent():
            for name in self.settings.model_names.values():
                missing[f"model:{name}"] = f"no champion {name} is registered yet (no model registry); {RUN_HINT}"
            return {}
        mlflow = self._configure_mlflow()
        models: dict[str, ModelInfo] = {}
        for name in self.settings.model_names.values():
            try:
                info = self._champion_info(mlflow, name)
                if info is None:
                    missing[f"model:{name}"] = f"no champion {name} is registered yet; {RUN_HINT}"
                    continue
                version = str(info.version)
                cached = self._model_cache.get(name)
                if cached is not None and cached.version == version:
                    models[name] = cached  # unchanged champion: no need to load it again
                    continue
                # Load by number, not by alias: the alias may move between reading it and loading.
                source = f"models:/{name}/{version}"
                model = mlflow.pyfunc.load_model(source)
                models[name] = ModelInfo(name, version, getattr(info, "run_id", None), source, model)
            except Exception as exc:
                log.warning("champion %s could not be loaded: %s", name, exc)
                missing[f"model:{name}"] = f"the champion {name} could not be loaded ({exc})"
        self._model_cache = dict(models)
        return models

    def _champion_info(self, mlflow, name: str):
        registry = _optional_module("holocrm_core.registry")
        if registry is not None and hasattr(registry, "champion_version"):
            return registry.champion_version(name)
        try:
            return mlflow.MlflowClient().get_model_version_by_alias(name, "champion")
        except Exception as exc:
            if _is_not_found(exc):
                return None
            raise

    # -- NL queries ----------------------------------------------------------------------------------
    def _nlq_context(self, missing, store=None):
        module = _optional_module("holocrm_core.nlq")
        if module is None or not hasattr(module, "NLQContext"):
            missing["nlq"] = f"natural-language queries are not part of this build (holocrm_core.nlq is incomplete); {RUN_HINT} once it is"
            return None
        if not self.warehouse.exists("staged_contacts"):
            missing["nlq"] = f"natural-language queries need the staged tables; {RUN_HINT}"
            return None
        try:
            return module.NLQContext.from_warehouse(self.warehouse, similarity=store)
        except Exception as exc:
            log.warning("NL query context could not be built: %s", exc)
            missing["nlq"] = f"the NL query context could not be built ({exc}); {RUN_HINT}"
            return None


def _field(info, name: str):
    if info is None:
        return None
    if isinstance(info, dict):
        return info.get(name)
    return getattr(info, name, None)


def _is_not_found(exc: Exception) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(s in text for s in ("not found", "resource_does_not_exist", "does not exist", "registered model alias"))


def _has_lance_tables(uri: str) -> bool:
    if "://" in uri:
        return True  # object storage: let the store answer
    from pathlib import Path

    path = Path(uri)
    return path.is_dir() and any(p.suffix == ".lance" for p in path.iterdir())
