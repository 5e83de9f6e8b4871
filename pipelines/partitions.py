"""The partitions of the expensive assets: export batch (dynamic, added by the landing sensor or the runner)
x a stable hash shard of the entity id (``holocrm_core.partitions``; ``HOLOCRM_SHARDS``, default 4).

Partitioned: the raw and staged tables (with their quarantine), entity documents, embeddings, attachment
texts and the scores of open records. A partition key is "<batch>|<shard>" (``dg.MultiPartitionKey``).
A partitioned asset that needs a whole batch of an upstream table (a contact's document names its company
and its activities, whatever their shard) reads it with ``WHOLE_BATCH``: the same batch, every shard.
Unpartitioned assets (models, decisions, monitoring...) read the union, the plain warehouse table.

Backfills run shard by shard (``BackfillPolicy.multi_run(1)``: one run per partition, so a backfill fans out
over whatever executor runs them); `holocrm run` runs every shard of its batch in one run (the default path:
one process, no per-shard start-up cost), see ``pipelines.runner``.
"""

from __future__ import annotations

import dagster as dg

from holocrm_core.partitions import batch_key, shard_count

BATCHES = "export_batch"
BATCH_DIM, SHARD_DIM = "batch", "shard"

export_batches = dg.DynamicPartitionsDefinition(name=BATCHES)
SHARDS = shard_count()
batch_shards = dg.MultiPartitionsDefinition(
    {
        BATCH_DIM: export_batches,
        SHARD_DIM: dg.StaticPartitionsDefinition([str(s) for s in range(SHARDS)]),
    }
)
# A backfill launches one run per (batch, shard): the shards of a large batch run in parallel where the
# run launcher / executor allows, and a failed shard is retried alone.
SHARD_BY_SHARD = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)

# Upstream partitions of the same batch, every shard (documents need every activity of a contact).
WHOLE_BATCH = dg.MultiPartitionMapping(
    {
        BATCH_DIM: dg.DimensionPartitionMapping(BATCH_DIM, dg.IdentityPartitionMapping()),
        SHARD_DIM: dg.DimensionPartitionMapping(SHARD_DIM, dg.AllPartitionMapping()),
    }
)

PARTITIONED = {"partitions_def": batch_shards, "backfill_policy": SHARD_BY_SHARD}


def whole_batch_ins(names, optional: bool = True, lazy: bool = False) -> dict[str, dg.AssetIn]:
    """Inputs reading every shard of the run's batch of each table (``lazy``: as a ``pl.LazyFrame`` scan,
    for an asset that reads only some columns of a large table)."""
    from pipelines.io_manager import LAZY, OPTIONAL

    metadata = {OPTIONAL: optional, **({LAZY: True} if lazy else {})}
    return {name: dg.AssetIn(key=name, partition_mapping=WHOLE_BATCH, metadata=metadata) for name in names}


def run_partitions(context) -> tuple[str, list[int]]:
    """(the batch, its shards) a partitioned asset's run covers: one partition, or a range of one batch."""
    batches, shards = set(), []
    for key in context.partition_keys:
        dims = key.keys_by_dimension if isinstance(key, dg.MultiPartitionKey) else _dims(str(key))
        batches.add(dims[BATCH_DIM])
        shards.append(int(dims[SHARD_DIM]))
    if len(batches) != 1:
        raise ValueError(f"a run covers the shards of one export batch, not {sorted(batches)}: run one batch")
    return batches.pop(), sorted(set(shards))


def _dims(key: str) -> dict[str, str]:
    batch, shard = key.split("|")
    return {BATCH_DIM: batch, SHARD_DIM: shard}


def shard_range_tags(batch: str, shards: list[int] | None = None) -> dict[str, str]:
    """Run tags for one run over every shard of ``batch`` (Dagster orders multi-partition keys batch first,
    so the range is exactly that batch's shards), or over ``shards``, consecutive (one: ``[2]``)."""
    wanted = sorted(set(shards)) if shards else list(range(SHARDS))
    if wanted != list(range(wanted[0], wanted[-1] + 1)) or wanted[0] < 0 or wanted[-1] >= SHARDS:
        raise ValueError(f"shards {wanted}: a run covers consecutive shards of 0..{SHARDS - 1}")
    return {
        "dagster/asset_partition_range_start": f"{batch}|{wanted[0]}",
        "dagster/asset_partition_range_end": f"{batch}|{wanted[-1]}",
    }


__all__ = [
    "PARTITIONED",
    "SHARDS",
    "WHOLE_BATCH",
    "batch_key",
    "batch_shards",
    "export_batches",
    "run_partitions",
    "shard_range_tags",
    "whole_batch_ins",
]


def export_folder(export, storage, batch: str):
    """The export folder of ``batch``: the export resource's folder when one is set (it must be that batch's
    folder), else the landing folder's batch whose key is ``batch``."""
    from holocrm_core.landing import export_batches as landed

    if export.export_dir:
        folder = export.folder(storage)
        if batch_key(folder.name) != batch:
            raise ValueError(
                f"the run is for export batch {batch!r} but the export resource names {folder} "
                f"(batch {batch_key(folder.name)!r}): leave export_dir empty to read the batch from the landing "
                "folder, or run that batch"
            )
        return folder
    landing = storage.paths().landing
    folders = landed(landing)
    for folder in folders:
        if batch_key(folder.name) == batch:
            return folder
    known = ", ".join(batch_key(f.name) for f in folders) or "none"
    raise FileNotFoundError(f"no export folder for batch {batch!r} in {landing} (batches there: {known})")
