"""Artifact loader: what the API serves, pinned in one immutable snapshot and swapped atomically on reload.

A snapshot holds the warehouse tables the API answers from, the LanceDB similarity store pinned to the
newest table versions, the scorer served for leads and deals with their scores, and the natural-language
query context. A request reads ``loader.snapshot`` once and uses only that object, so a reload never changes
the ground under a request in flight and never drops one.

**Gates.** Which scorer is served is the registry's resolver's answer (``holocrm_core.registry.resolve``),
the same one the pipeline and the CLI ask: the champion whose gate passed, else the newest earlier version
that passed, else the weighted heuristic; ``/health`` shows the registry's verdict line for each.

**Latency.** Scores are lookups: the pipeline's ``scored_leads`` / ``scored_deals`` when they came from the
served scorer; otherwise (missing, or made by another version) every open record is scored here, in the
background build, before the snapshot serves. Only an open record that no table holds (newer than the last
run) is scored on demand, once, and cached in the snapshot.

A capability whose artifact has not been built yet is recorded in ``snapshot.missing`` with what to run; the
API answers 503 with that message. A background thread (``start()``) checks a cheap fingerprint (table file
stamps, LanceDB versions, champion alias and gate tags) every ``reload_interval_s`` and rebuilds the snapshot
only when something changed; ``reload()`` does it on demand.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import polars as pl

from holocrm_api.config import ServingSettings
from holocrm_core import registry
from holocrm_core.decisions.service import ACTION_POLICY, DecisionService
from holocrm_core.embedding import load_embedder
from holocrm_core.id_index import IdIndex, encodable, id_bytes
from holocrm_core.nlq import NLQContext
from holocrm_core.outcomes import build_features_for, open_ids, read_field_outcomes
from holocrm_core.query_embedding import BatchingQueryEmbedder
from holocrm_core.scoring import score_frame
from holocrm_core.settings import lancedb_built, warehouse_root
from holocrm_core.store import SimilarityStore
from holocrm_core.warehouse import Warehouse

log = logging.getLogger("holocrm.serving")


def release_freed_memory() -> None:
    """After a swap the previous snapshot's tables and vectors are garbage: collect them and hand the freed
    pages back to the OS (glibc keeps them otherwise, and RSS steps up with every reload).

    What survives (the served snapshot, the modules) is then frozen (``gc.freeze``): the cyclic collector does
    not walk it again until the next swap unfreezes it. With the snapshot held in arrays the process has few
    long-lived objects, so full collections come often, and one walking the snapshot's large containers took
    0.9-1.4 s at 200k contacts on the busy machine, on the event loop, mid-request (measured with a gc
    callback; none during serving once frozen)."""
    import contextlib
    import ctypes
    import gc

    gc.unfreeze()  # the previous snapshot's objects are collectable again
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    gc.freeze()


RUN_HINT = "run `holocrm run` to build it"
HEURISTIC = "heuristic"
STAGED_TABLES = ("staged_companies", "staged_contacts", "staged_deals", "staged_activities")
SCORED_TABLES = {"contact": ("scored_leads", "contact_id"), "deal": ("scored_deals", "deal_id")}
SERVED_TABLES = (
    *STAGED_TABLES,
    "scored_leads",
    "scored_deals",
    "duplicate_candidates",
    "action_log",
    "recommendations",
)
# Read for the snapshot's build only (the decision service learns from the action log; no route reads either
# from the snapshot): dropped once it is built, their row counts kept for ``describe`` (at 1M contacts the
# action log's 2.9M rows of 24 columns held about 0.5 GB in every server process).
BUILD_ONLY_TABLES = ("action_log", "recommendations")
WATCHED_TABLES = (*SERVED_TABLES, "outcome_dataset")  # the heuristic is fitted on the outcome dataset
FIELD_OUTCOMES = "outcomes.ndjson"
DECISION_MODELS = (ACTION_POLICY, "holocrm_outreach_policy")
ON_DEMAND_CACHE = 10_000
BUILD_ATTEMPTS = 3  # builds of one reload while the artifacts keep changing under it

ServedAs = Literal["champion", "previous_passing", "heuristic"]


class CapabilityMissing(Exception):
    """An artifact the request needs has not been built (503)."""

    def __init__(self, capability: str, message: str):
        super().__init__(message)
        self.capability = capability
        self.message = message


@dataclass(frozen=True)
class ServedScorer:
    """The scorer answering for one entity: which version, why that one, and the scorer itself."""

    entity: str
    model_name: str
    version: str  # registered version number, or "heuristic"
    served_as: ServedAs
    reason: str
    run_id: str | None = None
    model: Any = field(default=None, repr=False, compare=False)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.model_name,
            "version": self.version,
            "served_as": self.served_as,
            "verdict": self.reason,  # the registry's verdict line, word for word
            "run_id": self.run_id,
        }


def table_model_version(frame: pl.DataFrame) -> str | None:
    """The version that produced a scored table: "3" for ``holocrm_lead_scorer/3``, "heuristic", or None."""
    if "model_version" not in frame.columns or not frame.height:
        return None
    versions = frame["model_version"].drop_nulls().cast(pl.String).unique().to_list()
    if len(versions) != 1:
        return None
    return versions[0].rsplit("/", 1)[-1]


@dataclass
class EntityScores:
    """Scores of one entity as served: a lookup table plus on-demand scoring of open records it lacks."""

    scorer: ServedScorer
    frame: pl.DataFrame | None
    id_column: str
    origin: str  # scored_table, rescored_at_load, scored_at_load
    open_ids: frozenset[str]
    tables: dict[str, pl.DataFrame] = field(repr=False)
    _position: Mapping[str, int] = field(default_factory=dict, repr=False)
    _cache: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.frame is not None:
            ids = self.frame[self.id_column].cast(pl.String).to_list()
            self._position = (
                IdIndex.build(id_bytes(ids)) if encodable(ids) else {k: n for n, k in enumerate(ids)}
            )

    def lookup(self, entity_id: str) -> tuple[dict[str, Any], str] | None:
        """``(row, origin)`` when the score is a lookup (precomputed or cached), else None."""
        n = self._position.get(entity_id)
        if n is not None:
            return self.frame.row(n, named=True), self.origin
        cached = self._cache.get(entity_id)
        return (cached, "on_demand") if cached is not None else None

    def is_open(self, entity_id: str) -> bool:
        return entity_id in self.open_ids

    def score_now(self, entity_id: str) -> dict[str, Any]:
        """Score an open record the tables lack (newer than the last run); the answer is cached."""
        features = build_features_for(self.scorer.entity, [entity_id], self.tables)
        row = score_frame(self.scorer.model, features).row(0, named=True)
        with self._lock:
            if len(self._cache) >= ON_DEMAND_CACHE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[entity_id] = row
        return row


class FrameRows(Mapping):
    """id -> the row's other fields as a dict, read from a frame on each lookup: what ``{row.pop(id): row for
    row in frame.to_dicts()}`` answers (the last row of a repeated id wins), without a million Python dicts
    (at 1M contacts the contacts' dicts held 667 MB and the deals' 203 MB in every server process)."""

    def __init__(self, frame: pl.DataFrame, id_column: str):
        ids = frame.get_column(id_column).to_list()
        self._frame = frame.drop(id_column)
        self._index: Mapping[str, int] = (
            IdIndex.build(id_bytes(ids)) if encodable(ids) else {k: i for i, k in enumerate(ids)}
        )

    def get(self, key, default=None):
        n = self._index.get(key)
        return default if n is None else self._frame.row(n, named=True)

    def __getitem__(self, key) -> dict[str, Any]:
        row = self.get(key)
        if row is None:
            raise KeyError(key)
        return row

    def __contains__(self, key) -> bool:
        return key in self._index

    def __iter__(self):
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


@dataclass(frozen=True)
class Snapshot:
    loaded_at: datetime
    fingerprint: tuple
    tables: dict[str, pl.DataFrame] = field(repr=False)
    contacts: Mapping[str, dict[str, Any]] = field(repr=False)  # contact_id -> decision context fields
    deals: Mapping[str, dict[str, Any]] = field(repr=False)  # deal_id -> stage, created_at, contact_id
    scores: dict[str, EntityScores] = field(repr=False)  # "contact" / "deal"
    duplicates: pl.DataFrame | None = field(repr=False)
    store: SimilarityStore | None = field(repr=False)
    index_versions: dict[str, int]
    nlq_context: NLQContext | None = field(repr=False)
    missing: dict[str, str]  # capability -> what is missing and what to run
    load_seconds: float = 0.0
    decisions: DecisionService | None = field(default=None, repr=False)  # the one decision service
    table_rows: dict[str, int] = field(default_factory=dict)  # every table read, the build-only ones too

    @property
    def loaded_at_epoch(self) -> float:
        return self.loaded_at.timestamp()

    @property
    def scorers(self) -> dict[str, ServedScorer]:
        return {s.scorer.model_name: s.scorer for s in self.scores.values()}

    def require(self, capability: str) -> None:
        if capability in self.missing:
            raise CapabilityMissing(capability, self.missing[capability])

    def describe(self) -> dict[str, Any]:
        return {
            "loaded_at": self.loaded_at.isoformat(),
            "load_seconds": round(self.load_seconds, 3),
            "index_versions": self.index_versions,
            "models": {name: scorer.describe() for name, scorer in self.scorers.items()},
            "scores": {
                entity: {"origin": s.origin, "rows": 0 if s.frame is None else s.frame.height}
                for entity, s in self.scores.items()
            },
            "tables": self.table_rows or {name: frame.height for name, frame in self.tables.items()},
            "decisions": self.decisions.describe() if self.decisions is not None else None,
            "missing": self.missing,
        }


def _empty_snapshot(missing: dict[str, str]) -> Snapshot:
    return Snapshot(
        loaded_at=datetime.now(UTC),
        fingerprint=(),
        tables={},
        contacts={},
        deals={},
        scores={},
        duplicates=None,
        store=None,
        index_versions={},
        nlq_context=None,
        missing=missing,
    )


class ArtifactLoader:
    """Builds snapshots from HOLOCRM_HOME and the MLflow registry; swaps them in without a pause."""

    def __init__(
        self,
        settings: ServingSettings,
        on_swap: Callable[[Snapshot | None], None] | None = None,
        prepare: Callable[[Snapshot], object] | None = None,
    ):
        """``prepare``: called with each new snapshot before it is swapped in (warm what the first requests
        would otherwise build); a failure there is logged and the snapshot served anyway."""
        self.settings = settings
        self._prepare = prepare
        self.warehouse = Warehouse(warehouse_root(settings.paths))  # a folder or s3:// (ObjectWarehouse)
        self._snapshot = _empty_snapshot({"all": f"artifacts not loaded yet; {RUN_HINT}"})
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_swap = on_swap
        self.last_error: str | None = None
        self.last_check_at: datetime | None = None
        self._mlflow_ready = False
        self._model_cache: dict[tuple[str, str], Any] = {}
        self._query_embedder = None
        # The action outcomes recorded so far (the API's durable log): a new decision service learns those
        # its online state has not applied yet. Set by holocrm_api.deps.Services.
        self.outcome_records: Callable[[], list[dict[str, Any]]] = list

    # -- public --------------------------------------------------------------------------------------
    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot  # one attribute read: atomic under the GIL

    def reload(self, force: bool = False) -> bool:
        """Rebuild the snapshot if any artifact changed (or ``force``); True when a new one was swapped in."""
        with self._reload_lock:  # one rebuild at a time; readers never wait on this lock
            self.last_check_at = datetime.now(UTC)
            self._renew_pins()
            try:
                fingerprint = self._fingerprint()
                if not force and fingerprint == self._snapshot.fingerprint:
                    return False
                snapshot = self._settled_build(fingerprint)
                self._prepared(snapshot)
            except Exception as exc:  # keep serving the previous snapshot
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception(
                    "artifact reload failed; still serving the snapshot from %s", self._snapshot.loaded_at
                )
                if self._on_swap:
                    self._on_swap(None)
                return False
            self._snapshot = snapshot
            self.last_error = None
            if self._on_swap:
                self._on_swap(snapshot)
            del snapshot
            release_freed_memory()
            return True

    def _renew_pins(self) -> None:
        """Keep the served index versions pinned (``SimilarityStore.renew_hold``: once a quarter of
        ``HOLOCRM_LANCEDB_PIN_TTL_S`` has passed)."""
        store = self._snapshot.store
        if store is None:
            return
        try:
            store.renew_hold()
        except Exception as exc:  # a failed renewal leaves the old pin, valid until it expires
            log.warning("could not renew the pins of the served index versions: %s", exc)

    def _prepared(self, snapshot: Snapshot) -> None:
        if self._prepare is None:
            return
        started = time.perf_counter()
        try:
            warmed = self._prepare(snapshot)
            log.info("snapshot prepared in %.2fs: %s", time.perf_counter() - started, warmed)
        except Exception:  # the first requests then build what was not warmed
            log.exception("preparing the new snapshot failed; serving it unwarmed")

    def _settled_build(self, fingerprint: tuple) -> Snapshot:
        """A snapshot built on a state that did not move while it was built. The fingerprint is read before
        the build and the build reads the artifacts again (a promotion is three registry writes: version, gate
        tag, alias), so an artifact changed meanwhile may be in the snapshot or not: then it is built again
        on the new state (at most ``BUILD_ATTEMPTS`` times). Still moving after that: served, with an empty
        fingerprint so the next check rebuilds it."""
        for _ in range(BUILD_ATTEMPTS):
            snapshot = self._build(fingerprint)
            settled = self._fingerprint()
            if settled == fingerprint:
                return snapshot
            log.info("an artifact changed while the snapshot was built: building it again")
            fingerprint = settled
        return dataclasses.replace(snapshot, fingerprint=())

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
        """What changes when ``name`` is committed, on a folder or on object storage (``Warehouse.stamp``)."""
        stamp = self.warehouse.stamp(name)
        return None if stamp is None else (name, stamp)

    def _fingerprint(self) -> tuple:
        tables = tuple(self._table_stamp(n) for n in WATCHED_TABLES)
        return (
            tables,
            tuple(sorted(self._index_versions().items())),
            self._registry_state(),
            self._policy_state(),
        )

    def _build(self, fingerprint: tuple) -> Snapshot:
        started = time.perf_counter()
        missing: dict[str, str] = {}
        tables = {name: self.warehouse.read(name) for name in SERVED_TABLES if self.warehouse.exists(name)}
        scores = self._scores(tables, missing)
        contacts = self._contact_contexts(tables, scores.get("contact"), missing)
        deals = self._deal_facts(tables, missing)
        duplicates = tables.get("duplicate_candidates")
        if duplicates is not None:
            duplicates = duplicates.sort("score", descending=True, nulls_last=True)  # a page is then a slice
        else:
            missing["duplicates"] = f"duplicate candidates have not been built yet; {RUN_HINT}"
        store, index_versions = self._open_store(missing)
        decisions = self._decisions(tables, missing)
        table_rows = {name: frame.height for name, frame in tables.items()}
        for name in BUILD_ONLY_TABLES:  # in place: the scores' on-demand scoring holds this same dict
            tables.pop(name, None)
        snapshot = Snapshot(
            loaded_at=datetime.now(UTC),
            fingerprint=fingerprint,
            tables=tables,
            contacts=contacts,
            deals=deals,
            scores=scores,
            duplicates=duplicates,
            store=store,
            index_versions=index_versions,
            nlq_context=self._nlq_context(tables, scores, store, missing),
            missing=missing,
            load_seconds=time.perf_counter() - started,
            decisions=decisions,
            table_rows=table_rows,
        )
        log.info("serving snapshot loaded in %.2fs: %s", snapshot.load_seconds, snapshot.describe())
        return snapshot

    # -- scores --------------------------------------------------------------------------------------
    def _scores(self, tables: dict[str, pl.DataFrame], missing: dict[str, str]) -> dict[str, EntityScores]:
        out: dict[str, EntityScores] = {}
        staged = {"contact": "staged_contacts", "deal": "staged_deals"}
        field_outcomes = read_field_outcomes(self.settings.paths.outcomes_log)
        for entity, (table_name, id_column) in SCORED_TABLES.items():
            if staged[entity] not in tables:
                missing[f"score_{entity}s"] = (
                    f"no {entity} scores: {staged[entity]} has not been built; {RUN_HINT}"
                )
                continue
            scorer = self._served_scorer(entity)
            still_open = open_ids(entity, tables, field_outcomes)
            frame, origin = tables.get(table_name), "scored_table"
            made_by = None if frame is None else table_model_version(frame)
            # A table of unknown provenance (no model_version column) is trusted: it is what the pipeline wrote.
            if frame is None or (made_by is not None and made_by != scorer.version):
                origin = "scored_at_load" if frame is None else "rescored_at_load"
                frame = self._score_all(scorer, still_open, tables)
            out[entity] = EntityScores(scorer, frame, id_column, origin, frozenset(still_open), tables)
        return out

    def _score_all(self, scorer: ServedScorer, ids: list[str], tables) -> pl.DataFrame | None:
        """Score every open record with the served scorer now, so requests stay lookups."""
        if len(ids) > self.settings.rescore_max_rows:
            log.warning("%d open %ss: above rescore_max_rows, scored on demand", len(ids), scorer.entity)
            return None
        started = time.perf_counter()
        features = build_features_for(scorer.entity, ids, tables)
        frame = score_frame(scorer.model, features).with_columns(
            pl.lit(scorer.version).alias("model_version")
        )
        log.info(
            "scored %d open %ss with %s %s in %.1fs",
            frame.height,
            scorer.entity,
            scorer.model_name,
            scorer.version,
            time.perf_counter() - started,
        )
        return frame

    def _served_scorer(self, entity: str) -> ServedScorer:
        """What the registry's resolver says serves ``entity`` (the heuristic when there is no registry)."""
        name = registry.MODEL_NAMES[entity]
        if not self.settings.load_models or self._registry_absent():
            return self._heuristic(entity, name, registry.nothing_registered_line(name))
        self._mlflow()
        choice = registry.resolve(entity, name)
        if choice.version == HEURISTIC:
            return self._heuristic(entity, name, choice.line)
        return self._registered(entity, name, choice.info, choice.served_as, choice.line)

    def _registered(self, entity: str, name: str, info, served_as: ServedAs, reason: str) -> ServedScorer:
        version = str(info.version)
        model = self._model_cache.get((name, version))
        if model is None:
            # Load by number, not by alias: the alias may move between reading it and loading.
            model = self._mlflow().pyfunc.load_model(f"models:/{name}/{version}")
            self._model_cache = {
                (name, version): model,
                **{k: v for k, v in self._model_cache.items() if k[0] != name},
            }
        return ServedScorer(entity, name, version, served_as, reason, info.run_id, model)

    def _heuristic(self, entity: str, name: str, reason: str) -> ServedScorer:
        model = registry.heuristic_scorer(entity, self.warehouse)
        return ServedScorer(entity, name, HEURISTIC, "heuristic", reason, model=model)

    def _contact_contexts(self, tables, scores: EntityScores | None, missing) -> Mapping[str, dict[str, Any]]:
        frame = tables.get("staged_contacts")
        if frame is None:
            missing["contacts"] = f"staged_contacts has not been built yet; {RUN_HINT}"
            return {}
        cols = [
            c for c in ("contact_id", "lifecycle_status", "seniority", "company_id") if c in frame.columns
        ]
        ctx = frame.select(cols).with_columns(pl.col("contact_id").cast(pl.String))
        if scores is not None and scores.frame is not None:
            bands = scores.frame.select(pl.col("contact_id").cast(pl.String), pl.col("band").cast(pl.String))
            ctx = ctx.join(bands, on="contact_id", how="left")
        return FrameRows(ctx, "contact_id")

    def _deal_facts(self, tables, missing) -> Mapping[str, dict[str, Any]]:
        frame = tables.get("staged_deals")
        if frame is None:
            missing["deals"] = f"staged_deals has not been built yet; {RUN_HINT}"
            return {}
        cols = [
            c for c in ("deal_id", "stage", "contact_id", "created_at", "closed_at") if c in frame.columns
        ]
        return FrameRows(frame.select(cols).with_columns(pl.col("deal_id").cast(pl.String)), "deal_id")

    # -- LanceDB -------------------------------------------------------------------------------------
    def _index_versions(self) -> dict[str, int]:
        uri = self.settings.resolved_lancedb_uri()
        if not _has_lance_tables(uri):
            return {}
        try:
            return SimilarityStore(uri).versions()
        except Exception as exc:  # an empty or half-built index folder: treat as not built
            log.warning("could not read LanceDB versions: %s", exc)
            return {}

    def _open_store(self, missing) -> tuple[SimilarityStore | None, dict[str, int]]:
        uri = self.settings.resolved_lancedb_uri()
        if not _has_lance_tables(uri):
            missing["similarity"] = (
                f"the similarity index has not been built yet ({uri} is empty); {RUN_HINT}"
            )
            return None, {}
        try:
            newest = SimilarityStore(uri).versions()
            if not newest:
                missing["similarity"] = f"the similarity index has no tables yet; {RUN_HINT}"
                return None, {}
            # Pin the versions read now: later writes by the pipeline do not change what this snapshot serves,
            # and their cleanup does not remove these versions (a LanceDB tag per table, renewed on each
            # reload check, dropped when the snapshot is garbage collected: holocrm_core.lance_versions)
            store = SimilarityStore(
                uri,
                version=newest,
                embedder=self._embedder(),
                vector_cache=self.settings.resolved_vector_cache(),
            )
            try:
                store.hold()
            except Exception as exc:  # a read-only store (object storage without write rights): unpinned
                log.warning("could not pin the served index versions (a cleanup may remove them): %s", exc)
            store.warm()  # read the pinned vectors into memory now, before this snapshot serves a request
            return store, newest
        except Exception as exc:
            log.warning("similarity index could not be opened: %s", exc)
            missing["similarity"] = f"the similarity index could not be opened; {RUN_HINT}"
            return None, {}

    def _embedder(self):
        """The query embedder, loaded once per process and warmed so the first search is not slow."""
        if self._query_embedder is None and self.settings.warm_query_embedder:
            try:
                embedder = load_embedder()
                embedder.encode(["warm up"])
                # concurrent searches share batches; repeated queries come from a cache
                self._query_embedder = BatchingQueryEmbedder(embedder)
            except Exception as exc:  # vector/hybrid search will say so; similar-by-id still works
                log.warning("query embedder could not be loaded: %s", exc)
        return self._query_embedder  # None: the store loads it on the first vector search

    # -- MLflow --------------------------------------------------------------------------------------
    def _mlflow(self):
        import mlflow  # ~5 s to import: only when a registry exists

        if not self._mlflow_ready:
            registry.configure(self.settings.resolved_tracking_uri())
            self._mlflow_ready = True
        return mlflow

    def _registry_absent(self) -> bool:
        """A local SQLite registry that does not exist yet holds no champion: skip importing MLflow."""
        uri = self.settings.resolved_tracking_uri()
        return uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists()

    def _registry_state(self) -> tuple:
        """Champion version, the versions whose gate passed and the verdict, per model: a change rebuilds."""
        if not self.settings.load_models or self._registry_absent():
            return ()
        client = self._mlflow().MlflowClient()
        state = []
        for name in registry.MODEL_NAMES.values():
            try:
                info = registry.champion_version(name)
                passed = sorted(
                    int(v.version)
                    for v in client.search_model_versions(f"name='{name}'")
                    if registry.gate_passed(v)
                )
                verdict = registry.model_tags(name).get(registry.VERDICT_TAG)
            except Exception:  # registry unreachable: the next check tries again
                continue
            state.append((name, None if info is None else str(info.version), tuple(passed), verdict))
        return tuple(state)

    # -- decisions -----------------------------------------------------------------------------------
    def _policy_state(self) -> tuple:
        """The decision policies' champion versions and gate tags: a promotion means a rebuild."""
        if not self.settings.load_models or self._registry_absent():
            return ()
        self._mlflow()
        state = []
        for name in DECISION_MODELS:
            try:
                info = registry.champion_version(name)
            except Exception:  # registry unreachable: the next check tries again
                continue
            state.append((name, None if info is None else (str(info.version), registry.gate_passed(info))))
        return tuple(state)

    def _decisions(self, tables, missing) -> DecisionService | None:
        """The decision service of this snapshot; keeps the online learner when its base is unchanged."""
        if "staged_contacts" not in tables:
            missing["decisions"] = f"recommendations need staged_contacts; {RUN_HINT}"
            return None
        load_registry = self.settings.load_models and not self._registry_absent()
        if load_registry:
            self._mlflow()
        previous = self._snapshot.decisions
        try:
            service = DecisionService.build(
                tables,
                self.settings.paths.home,
                load_registry=load_registry,
                learner=previous.learner if previous is not None else None,
            )
            service.replay(self.outcome_records())
        except Exception as exc:
            log.exception("the decision service could not be built")
            missing["decisions"] = f"the decision service could not be built ({exc}); {RUN_HINT}"
            return None
        if previous is not None and previous.learner is not service.learner:
            previous.close()  # its state is persisted; the new service replayed what it lacked
        return service

    def observe_outcome(self, record: dict[str, Any]) -> None:
        """Learn from an action outcome just recorded (the served decision service, online)."""
        decisions = self._snapshot.decisions
        if decisions is not None:
            decisions.observe(record)

    def close_decisions(self) -> None:
        if self._snapshot.decisions is not None:
            self._snapshot.decisions.close()

    # -- NL queries ----------------------------------------------------------------------------------
    def _nlq_context(self, tables, scores: dict[str, EntityScores], store, missing) -> NLQContext | None:
        if "staged_contacts" not in tables:
            missing["nlq"] = f"natural-language queries need the staged tables; {RUN_HINT}"
            return None
        staged = {
            name.removeprefix("staged_"): frame for name, frame in tables.items() if name in STAGED_TABLES
        }
        # The NL engine ranks by the scores this snapshot serves (gate-respecting), not the files as written.
        served = {f"{entity}s": s.frame for entity, s in scores.items() if s.frame is not None}
        try:
            from holocrm_core.nlq.meaning import lazy_embed

            # Words no rule knows are matched by meaning with the query embedder (loaded on first need).
            return NLQContext(staged, similarity=store, scores=served, embed=lazy_embed(self._query_embedder))
        except Exception as exc:
            log.warning("NL query context could not be built: %s", exc)
            missing["nlq"] = f"the NL query context could not be built; {RUN_HINT}"
            return None


def _has_lance_tables(uri: str) -> bool:
    return lancedb_built(uri)  # object storage: always True, the store answers


__all__ = ["ArtifactLoader", "CapabilityMissing", "EntityScores", "ServedScorer", "Snapshot"]
