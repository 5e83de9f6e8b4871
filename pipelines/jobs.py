"""The main job: the whole asset graph, from export files to models."""

import dagster as dg

holocrm_all_job = dg.define_asset_job(
    "holocrm_all",
    selection=dg.AssetSelection.all(),
    description="Materialize the whole HoloCRM graph: ingest, semantic layer, outcomes, models, NL vocabulary.",
)
