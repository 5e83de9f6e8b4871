"""Model assets: lead and deal scorers trained on the outcome dataset, gated, and the scored open records.

``lead_scoring_model`` / ``deal_scoring_model`` guard the fields (leaks, adversarial check against the
open records about to be scored), judge every candidate on rolling time folds, and hand the round to the
registry's one gate (``holocrm_core.registry``), which registers what is served and writes one verdict
line. The asset's ``<asset>_gate`` check reports that verdict (the same line as the run summary, the CLI,
``/health`` and MLflow); it warns rather than blocks, because something is always served: the scored
tables come from whatever the registry's resolver says is served.
"""

import dagster as dg
import polars as pl

from holocrm_core import schema
from holocrm_core.partitions import shard_of
from holocrm_core.registry import DEAL_MODEL, LEAD_MODEL
from pipelines.assets.outcomes import STAGED, read_staged
from pipelines.io_manager import SHARD_COLUMN, optional_ins
from pipelines.partitions import PARTITIONED, SHARDS, run_partitions, whole_batch_ins
from pipelines.resources import MLflowResource, StorageResource

GROUP = "learning"
MODELS = {"contact": ("lead_scoring_model", LEAD_MODEL), "deal": ("deal_scoring_model", DEAL_MODEL)}
SCORED = {
    "contact": ("scored_leads", schema.CONTACT.id_column),
    "deal": ("scored_deals", schema.DEAL.id_column),
}


def _metric(metrics: dict, key: str):
    value = metrics.get(key)
    return None if value is None or value != value else round(float(value), 4)


def _open_features(storage: StorageResource, entity: str, tables: dict) -> pl.DataFrame:
    from holocrm_core.outcomes import build_features_for, open_ids, read_field_outcomes

    field = read_field_outcomes(storage.paths().outcomes_log)
    return build_features_for(entity, open_sample(open_ids(entity, tables, field)), tables)


def open_sample(ids: list[str]) -> list[str]:
    """The open records the guards compare training rows with: all of them, or past the training cap
    (``training_records_cap``) a fixed-seed uniform sample of that many (an adversarial check between two
    samples of equal size; building features for 700k open leads of a 1M export would cost more than
    training). The order of ``ids`` is kept."""
    import random

    from holocrm_core.scoring import training_records_cap

    cap = training_records_cap()
    if not cap or len(ids) <= cap:
        return ids
    keep = set(random.Random(0).sample(range(len(ids)), cap))
    return [i for n, i in enumerate(ids) if n in keep]


def _train(
    context,
    storage: StorageResource,
    mlflow: MLflowResource,
    entity: str,
    dataset: pl.DataFrame,
    staged: dict,
) -> dg.MaterializeResult:
    from holocrm_core.registry import log_training, resolve
    from holocrm_core.scoring import train_scorer

    asset_name, model_name = MODELS[entity]
    uri = mlflow.configure()
    open_features = _open_features(storage, entity, read_staged(staged))
    outcome = train_scorer(dataset, entity, open_features=open_features)
    if not outcome.enough_data.enough:
        context.log.warning(outcome.enough_data.message)
    if outcome.guard is not None and (outcome.guard.excluded or outcome.guard.level in ("warn", "block")):
        context.log.warning(f"{model_name}: {outcome.guard.summary()}")
    result = log_training(outcome, model_name)
    served = resolve(entity, model_name)  # what serves now, and the verdict line every door shows
    verdict = result.verdict
    passed = bool(verdict is not None and verdict.passed)
    context.log.info(served.line)
    m = result.metrics
    guard = outcome.guard
    return dg.MaterializeResult(
        metadata={
            # The first six short figures are what `holocrm run` prints for this asset.
            "served": served.model_version,
            "gate": "passed" if passed else ("failed" if verdict is not None else "(not run)"),
            "strategy": outcome.strategy,
            "auc": _metric(m, "auc"),
            "logistic_auc": _metric(m, "logistic_auc"),
            "heuristic_auc": _metric(m, "heuristic_auc"),
            "verdict": served.line,
            "excluded_fields": ", ".join(outcome.excluded_fields) or "(none)",
            "rows": outcome.train.height + outcome.validation.height,
            "records": outcome.enough_data.positives + outcome.enough_data.negatives,
            "positives": outcome.enough_data.positives,
            "negatives": outcome.enough_data.negatives,
            "champion_auc_before": _metric(m, "champion_auc"),
            "ece": _metric(m, "ece"),
            "top_decile_lift_vs_heuristic": _metric(m, "lift_vs_heuristic"),
            "registered_version": result.version or "(none)",
            "served_version": result.served_version or "heuristic",
            "guards": guard.summary() if guard is not None else "(not run)",
            "adversarial_auc": guard.adversarial_auc if guard is not None else None,
            "undated_outcomes": outcome.undated,
            "records_left_out_by_cap": outcome.records_left_out,
            "candidates": dg.MetadataValue.json(outcome.selection.summary() if outcome.selection else {}),
            "mlflow_run": dg.MetadataValue.url(result.run_url),
            "mlflow_tracking_uri": uri,
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=f"{asset_name}_gate",
                passed=passed,
                severity=dg.AssetCheckSeverity.WARN,
                description=served.line,
                metadata={"served": served.model_version, "verdict": served.line},
            )
        ],
    )


def _gate_spec(asset_name: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        f"{asset_name}_gate",
        asset=asset_name,
        description="The registry's verdict: the selected scorer passed its gate (beats the plain logistic "
        "regression, the heuristic and the champion on rows it never saw, calibrated) and is served; a warning "
        "says what is served instead and why.",
    )


TRAINING_INS = {"outcome_dataset": dg.AssetIn("outcome_dataset"), **optional_ins(STAGED)}


@dg.asset(group_name=GROUP, ins=TRAINING_INS, check_specs=[_gate_spec("lead_scoring_model")])
def lead_scoring_model(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    mlflow: MLflowResource,
    outcome_dataset: pl.DataFrame,
    **staged: pl.DataFrame | None,
) -> dg.MaterializeResult:
    """Learned lead score (conversion probability): trained, compared, registered as holocrm_lead_scorer."""
    return _train(context, storage, mlflow, "contact", outcome_dataset, staged)


@dg.asset(group_name=GROUP, ins=TRAINING_INS, check_specs=[_gate_spec("deal_scoring_model")])
def deal_scoring_model(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    mlflow: MLflowResource,
    outcome_dataset: pl.DataFrame,
    **staged: pl.DataFrame | None,
) -> dg.MaterializeResult:
    """Learned deal score (win probability): trained, compared, registered as holocrm_deal_scorer."""
    return _train(context, storage, mlflow, "deal", outcome_dataset, staged)


def _score(
    context, storage: StorageResource, mlflow: MLflowResource, entity: str, staged: dict
) -> dg.MaterializeResult:
    from holocrm_core.outcomes import build_features_for, open_ids, read_field_outcomes
    from holocrm_core.registry import load_served, resolve

    table, id_name = SCORED[entity]
    mlflow.configure()
    tables = read_staged(staged)
    field = read_field_outcomes(storage.paths().outcomes_log)
    # the open records of the run's shards, with features from the whole batch (a lead's company, activity)
    _, shards = run_partitions(context)
    ids = open_ids(entity, tables, field)
    ids = [i for i, s in zip(ids, shard_of(ids, SHARDS).to_list(), strict=True) if s in shards]
    features = build_features_for(entity, ids, tables)
    served = resolve(entity)
    model_version = served.model_version
    # every record decided (a lead export of closed leads): nothing to score, and a learned model refuses an
    # empty matrix, so none is asked
    scored = (
        score_open_records(load_served(served, storage.warehouse()), model_version, features)
        if features.height
        else no_scores(features, model_version)
    )
    bands = dict(scored.group_by("band").len().iter_rows()) if scored.height else {}
    if not scored.height:
        context.log.info(
            f"{table}: no open {'leads' if entity == 'contact' else 'deals'} to score (every one is decided)"
        )
    context.log.info(f"{table}: {scored.height} scored with {model_version}")
    return dg.MaterializeResult(
        value=scored,
        metadata={
            "rows": scored.height,
            "open_records": features.height,
            "model_version": model_version,
            "verdict": served.line,
            "hot": bands.get("hot", 0),
            "warm": bands.get("warm", 0),
            "cold": bands.get("cold", 0),
            "mean_score": round(float(scored["score"].mean()), 4) if scored.height else None,
        },
    )


def no_scores(features: pl.DataFrame, model_version: str) -> pl.DataFrame:
    """The scored table with no rows: the columns of ``score_open_records``, typed."""
    return features.with_columns(
        pl.lit(None, pl.Float64).alias("score"),
        pl.lit(None, pl.String).alias("band"),
        pl.lit(None, pl.List(pl.String)).alias("reasons"),
        pl.lit(model_version).alias("model_version"),
        (pl.col("as_of") if "as_of" in features.columns else pl.lit(None)).alias("scored_at"),
    )


def score_open_records(scorer, model_version: str, features: pl.DataFrame) -> pl.DataFrame:
    from holocrm_core.scoring import score_frame

    scored = score_frame(scorer, features)
    # Features are kept beside the score so anyone can reproduce it with the registered pyfunc.
    rest = features.drop([c for c in scored.columns if c in features.columns])
    return pl.concat([scored, rest], how="horizontal").with_columns(
        pl.lit(model_version).alias("model_version"), pl.col("as_of").alias("scored_at")
    )


@dg.asset(
    group_name=GROUP,
    deps=["lead_scoring_model"],
    ins=whole_batch_ins(STAGED),
    metadata={SHARD_COLUMN: SCORED["contact"][1]},
    **PARTITIONED,
)
def scored_leads(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    mlflow: MLflowResource,
    **staged: pl.DataFrame | None,
) -> dg.MaterializeResult:
    """Every open lead with its conversion score, band (hot/warm/cold) and top positive/negative reasons."""
    return _score(context, storage, mlflow, "contact", staged)


@dg.asset(
    group_name=GROUP,
    deps=["deal_scoring_model"],
    ins=whole_batch_ins(STAGED),
    metadata={SHARD_COLUMN: SCORED["deal"][1]},
    **PARTITIONED,
)
def scored_deals(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    mlflow: MLflowResource,
    **staged: pl.DataFrame | None,
) -> dg.MaterializeResult:
    """Every open deal with its win score, band and top positive/negative reasons."""
    return _score(context, storage, mlflow, "deal", staged)
