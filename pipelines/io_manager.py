"""The warehouse IO manager: assets receive their upstream tables as parameters and return their outputs.

An asset's output is the warehouse table of the same name (``holocrm_core.warehouse``: one versioned Parquet
table, atomic commit): an asset returns ``dg.MaterializeResult(value=frame, metadata=...)`` (or yields one per
output of a multi-asset) and this IO manager commits ``frame``; an asset that returns no value (a model in
MLflow, a LanceDB index, a JSON artifact) writes nothing here. An input named after an upstream asset is that
table, read back; an input declared optional (``optional_ins`` / ``AssetIn(metadata={OPTIONAL: True})`` or a
``pl.DataFrame | None`` annotation) is None while the table has not been built (an export without deals, a
subset run), any other missing input fails with the table's name.

Partitioned assets (``pipelines.partitions``: export batch x entity-id shard) keep one table per partition
under ``warehouse/_partitions/NAME/`` (``holocrm_core.partitions.PartitionedTable``): a partition's rows are
replaced on every write, never appended, so a re-run of one shard touches nothing else, and the plain table
``NAME`` is re-committed as the union after each write (the newest complete batch, all of its shards), which
is what unpartitioned assets, the CLI and the API read. A run over several partitions at once (the default
path runs every shard of a batch in one run) returns one frame and the IO manager splits it by each row's
shard (``holocrm_core.partitions.shard_of`` of the asset's ``SHARD_COLUMN``); a partitioned input loads the
partitions the run asked for, concatenated.

Feedback reads (an asset reading the previous materialization of itself as a cache, or of a downstream
asset: ``outcome_dataset`` joins the scores served before each outcome) cannot be graph edges (they would be
cycles); they go through ``previous_table`` here and are named in the asset's ``FEEDBACK`` metadata, so the
lineage a person reads in the UI is still complete.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import dagster as dg
import polars as pl

from holocrm_core.partitions import PartitionedTable, shard_of, split_by_shard
from holocrm_core.settings import HoloPaths
from holocrm_core.warehouse import Warehouse
from pipelines.partitions import SHARDS  # the count the partitions definition was built with

OPTIONAL = "holocrm/optional"  # input metadata: a table not built yet loads as None
LAZY = "holocrm/lazy"  # input metadata: the table as a pl.LazyFrame scan (read what you need, in slices)
SHARD_COLUMN = (
    "holocrm/shard_column"  # output metadata: the entity id column a partitioned table is sharded by
)
FEEDBACK = "holocrm/reads_previous"  # asset metadata: tables read as they were before this run (not edges)
PARTITION_METADATA = ("table", "partitions_written", "union_batch")  # what handle_output adds, for the UI


def optional_ins(names: Iterable[str]) -> dict[str, dg.AssetIn]:
    """Inputs (parameter name = table name) that load as None while their table has not been built."""
    return {name: dg.AssetIn(key=name, metadata={OPTIONAL: True}) for name in names}


def lazy_ins(names: Iterable[str], optional: bool = True) -> dict[str, dg.AssetIn]:
    """Inputs that load as a ``pl.LazyFrame`` over the table's file (None while not built, if optional): for
    a table that may be larger than memory (every vector of a 1M-contact export), so the asset filters,
    projects or slices it before collecting."""
    return {name: dg.AssetIn(key=name, metadata={OPTIONAL: optional, LAZY: True}) for name in names}


def required_ins(names: Iterable[str]) -> dict[str, dg.AssetIn]:
    return {name: dg.AssetIn(key=name) for name in names}


def _warehouse(home: str) -> Warehouse:
    """The warehouse StorageResource.warehouse() opens for the same home (object storage when configured)."""
    from holocrm_core.settings import warehouse_root

    paths = HoloPaths(Path(home)) if home else HoloPaths.default()
    return Warehouse(warehouse_root(paths.ensure()))


def _is_optional(context: dg.InputContext) -> bool:
    if (context.definition_metadata or {}).get(OPTIONAL):
        return True
    # a ``pl.DataFrame | None`` annotation is a nullable Dagster type (its kind is not exported by name)
    return getattr(getattr(context.dagster_type, "kind", None), "name", "") == "NULLABLE"


class WarehouseIOManager(dg.ConfigurableIOManager):
    """Tables in HOLOCRM_HOME/warehouse (``home`` empty = HOLOCRM_HOME or the default), partition-aware."""

    home: str = ""

    def warehouse(self) -> Warehouse:
        return _warehouse(self.home)

    # -- outputs -----------------------------------------------------------------------------------------
    def handle_output(self, context: dg.OutputContext, obj) -> None:
        if obj is None:
            return
        name = context.asset_key.path[-1]
        if not isinstance(obj, (pl.DataFrame, dict)):
            raise TypeError(f"{name}: the warehouse stores polars DataFrames, got {type(obj).__name__}")
        warehouse = self.warehouse()
        if not context.has_asset_partitions:
            if isinstance(obj, dict):
                raise TypeError(f"{name} is not partitioned: return one DataFrame, not one per partition")
            warehouse.write(name, obj)
            return
        keys = [_split_key(key) for key in context.asset_partition_keys]
        count = SHARDS
        if isinstance(obj, dict):  # one frame per partition, computed by the asset (quarantine tables)
            parts, whole = {_split_key(k): v for k, v in obj.items()}, None
            if set(parts) != set(keys):
                raise ValueError(
                    f"{name}: the run covers partitions {sorted(keys)} but the asset returned {sorted(parts)}"
                )
        else:
            column = (context.definition_metadata or {}).get(SHARD_COLUMN)
            parts, whole = split_by_shard(name, obj, keys, column, count), obj
        written = PartitionedTable(warehouse, name).write_partitions(parts, count, whole=whole)
        context.add_output_metadata(
            {
                "table": name,
                "partitions_written": written.partitions,
                "union_batch": written.union_batch or "(no complete batch yet)",
            }
        )

    # -- inputs ------------------------------------------------------------------------------------------
    def load_input(self, context: dg.InputContext):
        name = context.asset_key.path[-1]
        warehouse = self.warehouse()
        table = PartitionedTable(warehouse, name)
        if context.has_asset_partitions and table.exists():
            keys = [_split_key(key) for key in context.asset_partition_keys]
            batches = {batch for batch, _ in keys}
            whole = {shard for _, shard in keys} >= set(range(SHARDS))
            if len(batches) == 1 and not (whole and table.union_batch() in batches):
                # a partitioned reader: its own shards, or its batch's every shard (WHOLE_BATCH); the union
                # (below) when that is what is asked for: one file, in the export's row order
                lazy = (context.definition_metadata or {}).get(LAZY)
                frame = table.scan_partitions(keys) if lazy else table.read_partitions(keys)
                if frame is not None:
                    return frame
                return self._missing(context, f"partitions {keys[0][0]}|* of {name}")
            # partitions of several batches asked for: an unpartitioned reader, which reads the union below
        if warehouse.exists(name):
            if (context.definition_metadata or {}).get(LAZY):
                return warehouse.scan_version(name)  # one version, even if collected slice by slice
            return warehouse.read(name)
        return self._missing(context, str(warehouse.path(name)))

    @staticmethod
    def _missing(context: dg.InputContext, what: str):
        if _is_optional(context):
            return None
        name = context.asset_key.path[-1]
        raise FileNotFoundError(
            f"table {name!r} has not been built yet ({what} missing): materialize {name} first (`holocrm run`)"
        )


def _split_key(key) -> tuple[str, int]:
    """A partition key (``dg.MultiPartitionKey``, its "batch|shard" string or a tuple) as (batch, shard)."""
    if isinstance(key, tuple):
        return key[0], int(key[1])
    if isinstance(key, dg.MultiPartitionKey):
        dims = key.keys_by_dimension
        return dims["batch"], int(dims["shard"])
    batch, shard = str(key).split("|")
    return batch, int(shard)


def previous_table(home: str, name: str) -> pl.DataFrame | None:
    """A table as it was before this run (a cache, or a feedback edge named in the asset's FEEDBACK
    metadata); None if it was never built."""
    warehouse = _warehouse(home)
    return warehouse.read(name) if warehouse.exists(name) else None


def previous_partitions(home: str, name: str, partition_keys) -> pl.DataFrame | None:
    """A partitioned table's rows in ``partition_keys`` as they were before this run (an asset's own cache:
    the embeddings of the shard's previous batch are reused for unchanged texts). A table written before
    partitions existed serves as the cache of every shard."""
    warehouse = _warehouse(home)
    table = PartitionedTable(warehouse, name)
    if not table.exists():
        return warehouse.read(name) if warehouse.exists(name) else None
    keys = [_split_key(key) for key in partition_keys]
    return table.read_partitions(keys, fallback_to_previous_batch=True)


__all__ = [
    "FEEDBACK",
    "LAZY",
    "OPTIONAL",
    "PARTITION_METADATA",
    "SHARD_COLUMN",
    "WarehouseIOManager",
    "lazy_ins",
    "optional_ins",
    "previous_partitions",
    "previous_table",
    "required_ins",
    "shard_of",
]
