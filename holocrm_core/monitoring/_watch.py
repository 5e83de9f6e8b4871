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
gauges.
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
from holocrm_core.settings import HoloPaths

STAGED = ("staged_companies", "staged_contacts", "staged_deals", "staged_activities")
SCORED = {"contact": "scored_leads", "deal": "scored_deals"}
REFERENCE_TABLES = (*STAGED, *SCORED.values())
REFERENCE_ROWS = 200_000  # a sample this big judges drift as well as the whole table
# What the scored tables carry that is not an input or output worth judging.
SCORED_SKIP = ("reasons", "as_of", "scored_at", "model_version")


def monitoring_dir(paths: HoloPaths) -> Path:
    return paths.home / "monitoring"


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
        return json.loads((monitoring_dir(paths) / "reference" / "meta.json").read_text())
    except (OSError, ValueError):
        return {}


def take_reference(paths: HoloPaths, champions: dict[str, Champion], force: bool = False) -> bool:
    """Copy the monitored tables as the new reference when the served champions changed (or none exists).

    Returns True when a new reference was taken."""
    key = {name: c.version for name, c in sorted(champions.items())}
    meta = _reference_meta(paths)
    folder = monitoring_dir(paths) / "reference"
    if not force and meta and meta.get("champions") == key:
        return False
    folder.mkdir(parents=True, exist_ok=True)
    taken = []
    for table in REFERENCE_TABLES:
        source = paths.warehouse / f"{table}.parquet"
        if not source.exists():
            continue
        frame = pl.read_parquet(source)
        if frame.height > REFERENCE_ROWS:
            frame = frame.sample(REFERENCE_ROWS, seed=0)
        frame.write_parquet(folder / f"{table}.parquet")
        taken.append(table)
    vectors = _embedding_sample(paths.warehouse / "embeddings.parquet")
    if vectors is not None:
        vectors.write_parquet(folder / "embeddings.parquet")
        taken.append("embeddings")
    meta = {"champions": key, "taken_at": datetime.now(UTC).isoformat(timespec="seconds"), "tables": taken}
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))
    return True


EMBEDDING_ROWS = 2_000  # per entity type: the domain classifier's AUC is stable long before that


def _embedding_sample(path: Path) -> pl.DataFrame | None:
    """Up to EMBEDDING_ROWS entity vectors per entity type (what embedding drift compares)."""
    if not path.exists():
        return None
    frame = pl.read_parquet(path, columns=["entity_type", "vector"])
    return frame.filter(pl.int_range(pl.len()).shuffle(seed=0).over("entity_type") < EMBEDDING_ROWS)


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
    folder = monitoring_dir(paths) / "reference"
    meta = _reference_meta(paths)
    reports = []
    for table in REFERENCE_TABLES:
        reference, current = folder / f"{table}.parquet", paths.warehouse / f"{table}.parquet"
        if not reference.exists() or not current.exists():
            continue
        skip = SCORED_SKIP if table in SCORED.values() else ()
        reports.append(
            frame_drift(
                pl.read_parquet(reference),
                pl.read_parquet(current),
                table,
                exclude=skip,
                thresholds=thresholds,
            )
        )
    then, now = folder / "embeddings.parquet", _embedding_sample(paths.warehouse / "embeddings.parquet")
    if then.exists() and now is not None:
        reports.append(embedding_report(pl.read_parquet(then), now))
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

    warehouse = paths.warehouse
    if not (warehouse / "outcome_dataset.parquet").exists():
        return []
    dataset = pl.read_parquet(warehouse / "outcome_dataset.parquet")
    reports = []
    for entity, table in SCORED.items():
        scored = warehouse / f"{table}.parquet"
        if not scored.exists():
            continue
        window = _training_window(dataset, entity, champions.get(MODEL_NAMES[entity]))
        name = f"{MODEL_NAMES[entity]} inputs"
        reports.append(model_drift(window, pl.read_parquet(scored), name, thresholds, exclude=("score",)))
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
    log_path = paths.warehouse / "action_log.parquet"
    if not log_path.exists():
        return None
    log = pl.read_parquet(log_path)
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
    dataset_path = paths.warehouse / "outcome_dataset.parquet"
    dataset = pl.read_parquet(dataset_path) if dataset_path.exists() else None
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
        scored = paths.warehouse / f"{SCORED[entity]}.parquet"
        unlabelled = (
            pl.read_parquet(scored, columns=["score"])["score"].to_numpy() if scored.exists() else None
        )
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


def write_state(paths: HoloPaths, report: MonitoringReport) -> Path:
    """``drift.json`` and ``decay.json`` for the API's gauges (written atomically)."""
    folder = monitoring_dir(paths)
    folder.mkdir(parents=True, exist_ok=True)
    written = datetime.now(UTC).isoformat(timespec="seconds")
    for name, payload in (
        ("drift", {"written_at": written, "reports": [r.as_dict() for r in report.drift + report.inputs]}),
        ("decay", {"written_at": written, "checks": [_decay_entry(d) for d in report.decay]}),
    ):
        tmp = folder / f".{name}.json.tmp"
        tmp.write_text(json.dumps(payload, default=str))
        tmp.replace(folder / f"{name}.json")
    return folder


def _decay_entry(check) -> dict:
    entry = check.as_dict()
    entry["model"] = getattr(check, "model", None) or getattr(check, "policy", None)
    return entry
