"""The jobs: the whole asset graph, and the partitioned part of it shard by shard."""

import dagster as dg

from holocrm_core import schema
from pipelines.partitions import batch_shards

holocrm_all_job = dg.define_asset_job(
    "holocrm_all",
    selection=dg.AssetSelection.all(),
    description="Materialize the whole HoloCRM graph: ingest, semantic layer, outcomes, models, NL vocabulary.",
)

# Every asset partitioned by (export batch, shard): what a backfill fans out (one run per partition).
PARTITIONED_ASSETS = [
    *(e.raw_asset for e in schema.REGISTRY),
    "file_errors",
    *(e.staged_asset for e in schema.REGISTRY),
    *(e.quarantine_table for e in schema.REGISTRY),
    "entity_documents",
    "embeddings",
    "similarity_index",
    "attachment_texts",
    "quarantine_attachment_files",
    "scored_leads",
    "scored_deals",
]

holocrm_shards_job = dg.define_asset_job(
    "holocrm_shards",
    selection=dg.AssetSelection.assets(*PARTITIONED_ASSETS),
    partitions_def=batch_shards,
    description="The partitioned assets of one (export batch, shard): ingest, documents, embeddings, the "
    "shard's rows of the LanceDB index, attachment texts, scores of open records (with the served models). Backfill it shard by shard; then run holocrm_all "
    "(or the unpartitioned assets) on the union.",
)
