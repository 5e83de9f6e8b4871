"""The warehouse IO manager: tables in, tables out, optional inputs as None, partitions shard by shard."""

import dagster as dg
import polars as pl
import pytest

from holocrm_core.partitions import PartitionedTable, shard_of, shard_table
from holocrm_core.warehouse import Warehouse
from pipelines.io_manager import SHARD_COLUMN, WarehouseIOManager, lazy_ins, optional_ins
from pipelines.partitions import BATCHES, PARTITIONED, SHARDS, run_partitions, shard_range_tags

PEOPLE = pl.DataFrame({"contact_id": [f"C{i}" for i in range(60)], "version": [1] * 60})
SEEN: dict[str, object] = {}


@dg.asset(ins=optional_ins(["never_built"]))
def reads_optional(never_built: pl.DataFrame | None) -> dg.MaterializeResult:
    SEEN["never_built"] = never_built
    return dg.MaterializeResult(value=pl.DataFrame({"n": [0 if never_built is None else never_built.height]}))


@dg.asset
def reads_required(never_built: pl.DataFrame) -> dg.MaterializeResult:
    return dg.MaterializeResult(value=never_built)


@dg.asset(metadata={SHARD_COLUMN: "contact_id"}, **PARTITIONED)
def people(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """The rows of the run's shards; ``SEEN["version"]`` stands for a changed export."""
    _, shards = run_partitions(context)
    frame = PEOPLE.with_columns(pl.lit(SEEN.get("version", 1)).alias("version"))
    return dg.MaterializeResult(value=frame.filter(shard_of(frame["contact_id"], SHARDS).is_in(shards)))


@dg.asset
def people_count(people: pl.DataFrame) -> dg.MaterializeResult:
    """Unpartitioned: reads the union."""
    return dg.MaterializeResult(value=pl.DataFrame({"rows": [people.height]}))


@dg.asset(ins=lazy_ins(["people", "never_built"]))
def people_lazily(people: pl.LazyFrame | None, never_built: pl.LazyFrame | None) -> dg.MaterializeResult:
    """A table larger than memory is read as a scan: filtered before it is collected."""
    SEEN["lazy"] = (type(people), never_built)
    return dg.MaterializeResult(value=people.filter(pl.col("contact_id").str.ends_with("7")).collect())


def _instance(batch: str = "b1") -> dg.DagsterInstance:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(BATCHES, [batch])
    return instance


def test_an_optional_input_not_built_loads_as_none_and_a_required_one_names_the_table(tmp_path):
    resources = {"io_manager": WarehouseIOManager(home=str(tmp_path))}
    spec = dg.AssetSpec("never_built")
    assert dg.materialize([reads_optional, spec], resources=resources, selection=["reads_optional"]).success
    assert SEEN["never_built"] is None
    assert Warehouse(tmp_path / "warehouse").read("reads_optional")["n"].to_list() == [0]

    result = dg.materialize(
        [reads_required, spec], resources=resources, selection=["reads_required"], raise_on_error=False
    )
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error
    assert "'never_built' has not been built yet" in str(failure.to_string())


def test_one_shard_rerun_replaces_its_rows_and_touches_no_other_shard(tmp_path):
    resources = {"io_manager": WarehouseIOManager(home=str(tmp_path))}
    instance = _instance()
    warehouse = Warehouse(tmp_path / "warehouse")
    # the default path: every shard of the batch in one run, then the unpartitioned reader of the union
    assert dg.materialize(
        [people, people_count], resources=resources, instance=instance, tags=shard_range_tags("b1")
    ).success
    assert warehouse.read("people").equals(PEOPLE)  # the union, in the order the asset returned it
    assert warehouse.read("people_count")["rows"].to_list() == [60]
    table = PartitionedTable(warehouse, "people")
    files = {s: table.batch("b1").path(shard_table(s)) for s in range(SHARDS)}
    before = {s: (p.read_bytes(), p.stat().st_mtime_ns) for s, p in files.items()}

    # a backfill of shard 1 alone, after the export changed: shard 1 is replaced, nothing else moves
    SEEN["version"] = 2
    try:
        one = dg.MultiPartitionKey({"batch": "b1", "shard": "1"})
        assert dg.materialize([people], resources=resources, instance=instance, partition_key=one).success
    finally:
        SEEN.pop("version")
    for s, path in files.items():
        assert ((path.read_bytes(), path.stat().st_mtime_ns) == before[s]) == (s != 1), f"shard {s}"
    union = warehouse.read("people")
    assert union.height == 60 and union["contact_id"].n_unique() == 60  # replaced, not appended
    mine = shard_of(union["contact_id"], SHARDS) == 1
    assert (union.filter(mine)["version"] == 2).all() and (union.filter(~mine)["version"] == 1).all()


def test_a_run_over_two_batches_is_refused(tmp_path):
    instance = _instance("b1")
    instance.add_dynamic_partitions(BATCHES, ["b2"])
    tags = {"dagster/asset_partition_range_start": "b1|0", "dagster/asset_partition_range_end": "b2|0"}
    result = dg.materialize(
        [people],
        resources={"io_manager": WarehouseIOManager(home=str(tmp_path))},
        instance=instance,
        tags=tags,
        raise_on_error=False,
    )
    assert not result.success
    assert "one export batch" in result.get_step_failure_events()[0].event_specific_data.error.to_string()


@pytest.mark.parametrize("name", ["staged_contacts", "entity_documents", "embeddings", "scored_leads"])
def test_the_sample_graph_is_partitioned_and_its_union_is_read_by_plain_name(sample_graph, name):
    """`holocrm run` wrote every shard of its batch; the CLI's `warehouse.read(name)` is their union."""
    warehouse = Warehouse(sample_graph.home / "warehouse")
    table = PartitionedTable(warehouse, name)
    batch = table.union_batch()
    assert batch == "batch-1" and table.shards_written(batch) == set(range(SHARDS))
    parts = table.read_partitions([(batch, s) for s in range(SHARDS)])
    union = warehouse.read(name)
    assert union.height == parts.height > 0
    key = "entity_id" if "entity_id" in union.columns else union.columns[0]
    assert union.select(pl.col(key).sort()).equals(parts.select(pl.col(key).sort()))


def test_a_lazy_input_is_a_scan_of_the_union_and_an_unbuilt_one_is_none(tmp_path):
    resources = {"io_manager": WarehouseIOManager(home=str(tmp_path))}
    instance = _instance()
    assert dg.materialize(
        [people], resources=resources, instance=instance, tags=shard_range_tags("b1")
    ).success
    spec = dg.AssetSpec("never_built")
    assert dg.materialize(
        [people, people_lazily, spec], resources=resources, instance=instance, selection=["people_lazily"]
    ).success
    assert SEEN["lazy"] == (pl.LazyFrame, None)
    got = Warehouse(tmp_path / "warehouse").read("people_lazily")
    assert got["contact_id"].to_list() == [c for c in PEOPLE["contact_id"] if c.endswith("7")]
