"""Outcome assets: prediction-time snapshots of decided leads and closed deals, features as of each one."""

import json

import dagster as dg
import polars as pl

from holocrm_core import schema
from holocrm_core.outcomes import (
    build_outcome_dataset,
    learning_signals,
    read_field_outcomes,
    undated_outcomes,
)
from pipelines.io_manager import FEEDBACK, optional_ins, previous_table
from pipelines.resources import StorageResource

GROUP = "learning"
STAGED = list(schema.RECORD_STAGED_TABLES)


def read_staged(inputs: dict) -> dict[str, pl.DataFrame]:
    """The staged record tables among an asset's inputs (those built), by table name."""
    return {name: inputs[name] for name in STAGED if inputs.get(name) is not None}


PREVIOUS_SCORES = {"contact": "scored_leads", "deal": "scored_deals"}


@dg.asset(
    group_name=GROUP,
    ins=optional_ins(STAGED),
    metadata={
        FEEDBACK: "scored_leads, scored_deals (the scores served before each outcome: downstream of this "
        "asset, so read as they were before the run, not as graph edges)"
    },
)
def outcome_dataset(
    context: dg.AssetExecutionContext, storage: StorageResource, **staged: pl.DataFrame | None
) -> dg.MaterializeResult:
    """Every converted/disqualified lead and won/lost deal (the most recent ``HOLOCRM_TRAINING_RECORDS`` of
    each, default 20,000: what a training round uses), features as known before the outcome, the
    champion's prediction at the time (when there was one), and the outcome. Field-recorded outcomes
    (HOLOCRM_HOME/logs/outcomes.ndjson) override or add to the export's."""
    field = read_field_outcomes(storage.paths().outcomes_log)
    previous = {
        entity: frame
        for entity, table in PREVIOUS_SCORES.items()
        if (frame := previous_table(storage.home, table)) is not None
    }
    from holocrm_core.scoring import training_records_cap

    dataset = build_outcome_dataset(
        read_staged(staged),
        field_outcomes=field,
        previous_scores=previous,
        max_records=training_records_cap(),  # the most recent N decided records of each entity
    )
    signals = learning_signals(dataset)

    def count(entity: str, label: int | None = None) -> int:
        rows = dataset.filter(pl.col("entity") == entity)
        rows = rows if label is None else rows.filter(pl.col("label") == label)
        return rows["entity_id"].n_unique() if rows.height else 0

    for entity, noun in (("contact", "leads"), ("deal", "deals")):
        if undated_outcomes(dataset, entity):
            context.log.warning(
                f"{undated_outcomes(dataset, entity)} decided {noun} carry no decision date: dated at "
                "the export's time (map a date column, or status_dates: in a mapping file)"
            )

    context.log.info(f"outcome dataset: {dataset.height} rows ({field.height} recorded in the field)")
    return dg.MaterializeResult(
        value=dataset,
        metadata={
            "rows": dataset.height,
            "snapshots": dataset.height,
            "undated_leads": undated_outcomes(dataset, "contact"),
            "undated_deals": undated_outcomes(dataset, "deal"),
            "leads": count("contact"),
            "leads_converted": count("contact", 1),
            "deals": count("deal"),
            "deals_won": count("deal", 1),
            "field_outcomes": field.height,
            "with_prediction_at_the_time": dataset.filter(pl.col("predicted_score").is_not_null()).height,
            "learning_signals": dg.MetadataValue.json(json.loads(json.dumps(signals, default=str))),
        },
    )
