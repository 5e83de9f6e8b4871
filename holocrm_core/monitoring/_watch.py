"""Every monitoring check over one HOLOCRM_HOME: what the assets, ``holocrm monitor`` and the API read.

- **Staged tables, model outputs and the index's vectors** (``staged_*``, ``scored_leads``, ``scored_deals``,
  ``embeddings``: centroid shift and a domain classifier per entity type) against a reference
  copy kept in ``HOLOCRM_HOME/monitoring/reference/``: the tables as they were when the served champions
  were promoted. The monitoring asset renews the reference when a champion changes (a model now trained on
  the new data), so drift always means "away from what the served models learned from".
- **Model inputs**: each scorer's training window (outcome-dataset snapshots up to its promotion) against
  the open records it scores now (the features beside each score).
- **Decay**: each served scorer re-judged on the outcomes after its promotion, against the heuristic and the
  plain logistic baseline fitted on the window before; the action policy on the rewards logged since.
- **Freshness** of the export, the index and each model.

``write_state`` leaves ``drift.json`` / ``decay.json`` beside the reference for the API's scrape-time
gauges. Tables are read from the warehouse in use (a folder or ``s3://``: ``settings.open_warehouse``), and
the reference copies and verdicts live in ``monitoring_store``: HOLOCRM_HOME/monitoring beside a local
warehouse, ``<warehouse>/_monitoring`` beside one on object storage (so the API and the workers of other
machines read what the monitoring asset wrote).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from holocrm_core.monitoring._decay import RewardDecay, ScoreDecay, judge_policy, judge_scorer
from holocrm_core.monitoring._drift import BLOCK, DriftReport, DriftThresholds, frame_drift
from holocrm_core.monitoring._freshness import Freshness, asset_freshness
from holocrm_core.monitoring._inputs import model_drift
from holocrm_core.settings import HoloPaths, open_warehouse, warehouse_root
from holocrm_core.warehouse import Warehouse

STAGED = ("staged_companies", "staged_contacts", "staged_deals", "staged_activities")
SCORED = {"contact": "scored_leads", "deal": "scored_deals"}
REFERENCE_TABLES = (*STAGED, *SCORED.values())
REFERENCE_ROWS = 200_000  # a sample this big judges drift as well as the whole table
# What the scored tables carry that is not an input or output worth judging.
SCORED_SKIP = ("reasons", "as_of", "scored_at", "model_version")


def monitoring_dir(paths: HoloPaths) -> Path:
    return paths.home / "monitoring"


MONITORING_PREFIX = "_monitoring"  # beside an object-storage warehouse's tables


def monitoring_store(paths: HoloPaths) -> Warehouse:
    """Where the reference copies (child ``reference``) and the ``drift`` / ``decay`` documents live."""
    root = warehouse_root(paths)
    if "://" in str(root):
        return Warehouse(root).child(MONITORING_PREFIX)
    return Warehouse(monitoring_dir(paths))


def reference_store(paths: HoloPaths) -> Warehouse:
    return monitoring_store(paths).child("reference")


def read_columns(warehouse: Warehouse, name: str, columns: list[str] | None = None) -> pl.DataFrame | None:
    """``name`` from the warehouse (only ``columns`` where given), or None when it does not exist."""
    if not warehouse.exists(name):
        return None
    if columns is None:
        return warehouse.read(name)
    if isinstance(warehouse.root, Path):  # a local file: read only those columns
        return warehouse.scan(name).select(columns).collect()
    return warehouse.read(name).select(columns)


@dataclass(frozen=True)
class Champion:
    """A served champion as the registry reports it."""

    model: str
    version: str
    promoted_at: datetime | None
    promoted_auc: float | None


@dataclass
class MonitoringReport:
    """``drift``: tables against the reference (blocking); ``inputs``: training windows against the open
    records (reported, never failing: decided-record snapshots and records still open differ by construction,
    open leads being the ones nobody decided, so on most exports this comparison always moves)."""

    drift: list[DriftReport] = field(default_factory=list)
    inputs: list[DriftReport] = field(default_factory=list)
    decay: list[ScoreDecay | RewardDecay] = field(default_factory=list)
    freshness: list[Freshness] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def drift_blocking(self) -> list[DriftReport]:
        return [r for r in self.drift if r.severity == BLOCK]

    @property
    def decayed(self) -> list[ScoreDecay | RewardDecay]:
        return [d for d in self.decay if d.failed]

    @property
    def stale(self) -> list[Freshness]:
        return [f for f in self.freshness if f.stale]

    def failing(self, include_stale: bool = True) -> bool:
        """A blocking drift, a decayed champion, or (unless told otherwise) a stale asset."""
        return bool(self.drift_blocking or self.decayed or (include_stale and self.stale))

    def lines(self) -> list[str]:
        out = ["drift:"]
        out += [f"  {line}" for report in self.drift for line in report.lines()] or ["  (nothing to compare)"]
        out.append("model inputs (training window vs records scored now; reported, not failing):")
        out += [f"  {line}" for report in self.inputs for line in report.lines()] or ["  (no scorer yet)"]
        out.append("decay:")
        out += [f"  {d.words}" for d in self.decay] or ["  (no champion to judge)"]
        out.append("freshness:")
        out += [f"  {f.words}" for f in self.freshness]
        out += [f"note: {n}" for n in self.notes]
        return out

    def as_dict(self) -> dict:
        return {
            "failing": self.failing(),
            "drift": [r.as_dict() for r in self.drift],
            "inputs": [r.as_dict() for r in self.inputs],
            "decay": [d.as_dict() for d in self.decay],
            "freshness": [f.as_dict() for f in self.freshness],
            "notes": self.notes,
        }


# -- champions ----------------------------------------------------------------------------------------------
def served_champions() -> dict[str, Champion]:
    """The gate-passed champions of the scorers and the action policy, read through the registry."""
    from holocrm_core import registry

    names = [*registry.MODEL_NAMES.values(), "holocrm_action_policy"]
    found = {}
    for name in names:
        try:
            info = registry.champion_version(name)
        except Exception:  # no store yet, or a store that cannot be read: no champion to judge
            info = None
        if info is None or not registry.gate_passed(info):
            continue
        promoted_auc = None
        try:
            import mlflow

            metrics = mlflow.MlflowClient().get_run(info.run_id).data.metrics
            promoted_auc = metrics.get("auc")
        except Exception:  # a run without metrics still has a champion worth judging
            pass
        stamp = getattr(info, "creation_timestamp", None)
        promoted_at = datetime.fromtimestamp(stamp / 1000, UTC) if stamp else None
        found[name] = Champion(name, str(info.version), promoted_at, promoted_auc)
    return found


# -- reference ----------------------------------------------------------------------------------------------
def _reference_meta(paths: HoloPaths) -> dict:
    try:
        return reference_store(paths).read_document("meta") or {}
    except (OSError, ValueError):
        return {}


def take_reference(paths: HoloPaths, champions: dict[str, Champion], force: bool = False) -> bool:
    """Copy the monitored tables as the new reference when the served champions changed (or none exists).

    Returns True when a new reference was taken."""
    key = {name: c.version for name, c in sorted(champions.items())}
    meta = _reference_meta(paths)
    if not force and meta and meta.get("champions") == key:
        return False
    warehouse, reference = open_warehouse(paths), reference_store(paths)
    taken = []
    for table in REFERENCE_TABLES:
        frame = read_columns(warehouse, table)
        if frame is None:
            continue
        if frame.height > REFERENCE_ROWS:
            frame = frame.sample(REFERENCE_ROWS, seed=0)
        reference.write(table, frame, operation="reference")
        taken.append(table)
    vectors = _embedding_sample(warehouse)
    if vectors is not None:
        reference.write("embeddings", vectors, operation="reference")
        taken.append("embeddings")
    meta = {"champions": key, "taken_at": datetime.now(UTC).isoformat(timespec="seconds"), "tables": taken}
    reference.update_document("meta", lambda _: meta)
    return True


EMBEDDING_ROWS = 2_000  # per entity type: the domain classifier's AUC is stable long before that


def _sample_mask() -> pl.Expr:
    return pl.int_range(pl.len()).shuffle(seed=0).over("entity_type") < EMBEDDING_ROWS


def _embedding_sample(warehouse: Warehouse) -> pl.DataFrame | None:
    """Up to EMBEDDING_ROWS entity vectors per entity type (what embedding drift compares).

    On a local warehouse the rows are chosen from the entity types alone and only their vectors are kept,
    streamed from the file: reading every vector to keep a few thousand held 9.5 GB at 1M contacts (6.2M
    vectors), the monitoring report's whole peak. The same rows either way (the choice depends on the types'
    order only)."""
    if not warehouse.exists("embeddings"):
        return None
    if not isinstance(warehouse.root, Path):  # object storage: read the two columns, then sample
        frame = read_columns(warehouse, "embeddings", ["entity_type", "vector"])
        return frame.filter(_sample_mask())
    scan = warehouse.scan_version("embeddings")  # one version, though read twice
    chosen = (
        scan.select("entity_type").with_row_index("_row").filter(_sample_mask()).collect().get_column("_row")
    )
    return (
        scan.select("entity_type", "vector")
        .with_row_index("_row")
        .filter(pl.col("_row").is_in(chosen.implode()))
        .drop("_row")
        .collect(engine="streaming")
    )


def embedding_report(reference: pl.DataFrame, current: pl.DataFrame) -> DriftReport:
    """Centroid shift and domain classifier per entity type: the index's vectors then and now."""
    from holocrm_core.monitoring._embedding import EmbeddingThresholds, embedding_drift

    limits = EmbeddingThresholds(max_rows=EMBEDDING_ROWS)
    columns = []
    for entity_type in sorted(
        set(reference["entity_type"].to_list()) & set(current["entity_type"].to_list())
    ):
        then = reference.filter(pl.col("entity_type") == entity_type)["vector"].to_numpy()
        now = current.filter(pl.col("entity_type") == entity_type)["vector"].to_numpy()
        columns.append(embedding_drift(f"{entity_type} vectors", np.asarray(then), np.asarray(now), limits))
    return DriftReport("embeddings", tuple(columns))


def table_drift(paths: HoloPaths, thresholds: DriftThresholds | None = None) -> tuple[list[DriftReport], str]:
    """Each monitored table now against its reference copy; the second value says when that was taken."""
    warehouse, folder = open_warehouse(paths), reference_store(paths)
    meta = _reference_meta(paths)
    reports = []
    for table in REFERENCE_TABLES:
        if not folder.exists(table) or not warehouse.exists(table):
            continue
        skip = SCORED_SKIP if table in SCORED.values() else ()
        reports.append(
            frame_drift(folder.read(table), warehouse.read(table), table, exclude=skip, thresholds=thresholds)
        )
    then, now = read_columns(folder, "embeddings"), _embedding_sample(warehouse)
    if then is not None and now is not None:
        reports.append(embedding_report(then, now))
    when = meta.get("taken_at")
    return reports, (
        f"reference taken {when}" if when else "no reference yet (the monitoring asset takes one)"
    )


# -- model inputs -------------------------------------------------------------------------------------------
def _training_window(dataset: pl.DataFrame, entity: str, champion: Champion | None) -> pl.DataFrame:
    from holocrm_core.scoring import entity_rows

    rows = entity_rows(dataset, entity)
    if champion is not None and champion.promoted_at is not None and "snapshot_at" in rows.columns:
        rows = rows.filter(pl.col("snapshot_at") <= champion.promoted_at)
    return rows


def input_drift(
    paths: HoloPaths, champions: dict[str, Champion], thresholds: DriftThresholds | None = None
) -> list[DriftReport]:
    """Each scorer's training window against the open records it scores now."""
    from holocrm_core.registry import MODEL_NAMES

    warehouse = open_warehouse(paths)
    dataset = read_columns(warehouse, "outcome_dataset")
    if dataset is None:
        return []
    reports = []
    for entity, table in SCORED.items():
        scored = read_columns(warehouse, table)
        if scored is None:
            continue
        window = _training_window(dataset, entity, champions.get(MODEL_NAMES[entity]))
        name = f"{MODEL_NAMES[entity]} inputs"
        reports.append(model_drift(window, scored, name, thresholds, exclude=("score",)))
    return reports


# -- decay --------------------------------------------------------------------------------------------------
def scorer_decay(
    dataset: pl.DataFrame,
    entity: str,
    champion: Champion,
    model=None,
    unlabelled: np.ndarray | None = None,
) -> ScoreDecay:
    """The champion on the outcomes after its promotion, against the heuristic and the logistic baseline
    fitted on the outcomes before it. ``model`` scores rows whose prediction at the time was not kept."""
    from holocrm_core.scoring import entity_rows, make_strategy, unwrap

    rows = entity_rows(dataset, entity)
    promoted = champion.promoted_at
    if promoted is None or "outcome_at" not in rows.columns:
        before, after = rows, rows.clear()
    else:
        before = rows.filter(pl.col("outcome_at").is_null() | (pl.col("outcome_at") <= promoted))
        after = rows.filter(pl.col("outcome_at") > promoted)
    y = after["label"].to_numpy().astype(int) if after.height else np.array([], dtype=int)
    kept = after.get_column("predicted_score") if "predicted_score" in after.columns else None
    same_version = (
        after.get_column("predicted_model_version").cast(pl.String).str.ends_with(champion.version).all()
        if "predicted_model_version" in after.columns and after.height
        else False
    )
    if after.height and kept is not None and kept.null_count() == 0 and same_version:
        p = kept.to_numpy()  # what the champion said at the time: the honest figure
    elif after.height and model is not None:
        p = unwrap(model).predict_proba(after)[:, 1]
    else:  # no prediction kept and no model to make one: nothing to judge on
        p, y = np.array([], dtype=float), np.array([], dtype=int)
    rivals = {}
    labels_before = before["label"].to_numpy().astype(int) if before.height else np.array([], dtype=int)
    if after.height and len(np.unique(labels_before)) == 2:
        for rival in ("heuristic", "logistic"):
            try:
                rivals[rival] = make_strategy(rival).fit(before, labels_before).predict_proba(after)[:, 1]
            except (ValueError, KeyError):  # a baseline that cannot fit this window is no rival
                continue
    return judge_scorer(
        champion.model,
        champion.version,
        y,
        p,
        promoted_auc=champion.promoted_auc,
        rivals=rivals if len(p) else {},
        unlabelled=unlabelled,
    )


def policy_decay(paths: HoloPaths, champion: Champion) -> RewardDecay | None:
    """The action policy's rewards since promotion against the other policies' in the same days."""
    log = read_columns(open_warehouse(paths), "action_log")
    if log is None:
        return None
    needed = {"occurred_at", "policy", "reward"}
    if not needed <= set(log.columns):
        return None
    since = log.filter(pl.col("reward").is_not_null())
    if champion.promoted_at is not None:
        since = since.filter(pl.col("occurred_at") > champion.promoted_at)
    mine = since.filter(pl.col("policy").cast(pl.String).str.contains(champion.version, literal=True))
    others = since.filter(~pl.col("policy").cast(pl.String).str.contains(champion.version, literal=True))
    return judge_policy(
        champion.model,
        champion.version,
        mine["reward"].to_numpy(),
        baseline_rewards=others["reward"].to_numpy() if others.height else None,
    )


def decay_checks(paths: HoloPaths, champions: dict[str, Champion]) -> tuple[list, list[str]]:
    from holocrm_core.registry import MODEL_NAMES, load_champion

    checks, notes = [], []
    warehouse = open_warehouse(paths)
    dataset = read_columns(warehouse, "outcome_dataset")
    for entity, name in MODEL_NAMES.items():
        champion = champions.get(name)
        if champion is None:
            notes.append(
                f"{name}: no gate-passed champion is served (the heuristic scores): no decay to judge"
            )
            continue
        if dataset is None:
            notes.append(f"{name}: no outcome dataset yet")
            continue
        scored = read_columns(warehouse, SCORED[entity], ["score"])
        unlabelled = scored["score"].to_numpy() if scored is not None else None
        loaded = None
        try:
            loaded = load_champion(name)
        except Exception as exc:  # the store moved or the artifact is gone: judge on kept predictions only
            notes.append(
                f"{name}: champion could not be loaded ({exc}); judged on predictions kept at the time"
            )
        checks.append(scorer_decay(dataset, entity, champion, loaded[0] if loaded else None, unlabelled))
    policy = champions.get("holocrm_action_policy")
    if policy is not None:
        judged = policy_decay(paths, policy)
        if judged is not None:
            checks.append(judged)
    notes.append(
        "holocrm_outreach_policy: no field rewards of the outreach policy are logged yet; not judged"
    )
    return checks, notes


# -- everything ---------------------------------------------------------------------------------------------
def watch(
    paths: HoloPaths | None = None,
    thresholds: DriftThresholds | None = None,
    with_decay: bool = True,
    champions: dict[str, Champion] | None = None,
) -> MonitoringReport:
    """Drift, decay and freshness of one HOLOCRM_HOME, in words."""
    paths = paths or HoloPaths.default()
    thresholds = thresholds or DriftThresholds.from_env()
    champions = served_champions() if champions is None else champions
    tables, when = table_drift(paths, thresholds)
    report = MonitoringReport(drift=tables, inputs=input_drift(paths, champions, thresholds))
    report.notes.append(when)
    if with_decay:
        report.decay, notes = decay_checks(paths, champions)
        report.notes += notes
    report.freshness = asset_freshness(paths)
    return report


def write_state(paths: HoloPaths, report: MonitoringReport) -> str:
    """The ``drift`` and ``decay`` documents for the API's gauges and the decay sensor (written atomically,
    in ``monitoring_store``: ``drift.json`` / ``decay.json``). Returns where."""
    store = monitoring_store(paths)
    written = datetime.now(UTC).isoformat(timespec="seconds")
    for name, payload in (
        ("drift", {"written_at": written, "reports": [r.as_dict() for r in report.drift + report.inputs]}),
        ("decay", {"written_at": written, "checks": [_decay_entry(d) for d in report.decay]}),
    ):
        document = json.loads(json.dumps(payload, default=str))
        store.update_document(name, lambda _, document=document: document)
    return str(store.root)


def read_state(paths: HoloPaths, name: str) -> dict:
    """The ``drift`` or ``decay`` document ``write_state`` left, or {} (none yet, or unreadable)."""
    try:
        return monitoring_store(paths).read_document(name) or {}
    except (OSError, ValueError):
        return {}


def _decay_entry(check) -> dict:
    entry = check.as_dict()
    entry["model"] = getattr(check, "model", None) or getattr(check, "policy", None)
    return entry
