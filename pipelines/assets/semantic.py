"""Semantic layer assets: entity documents -> embeddings (incremental) -> LanceDB similarity index, duplicates."""

import time

import dagster as dg
import polars as pl

from holocrm_core import quality, schema
from holocrm_core.partitions import in_shards
from pipelines.io_manager import FEEDBACK, SHARD_COLUMN, lazy_ins, previous_partitions
from pipelines.metadata import check_result, markdown_table
from pipelines.partitions import PARTITIONED, SHARDS, run_partitions, whole_batch_ins
from pipelines.resources import EmbedderResource, LanceDBResource, StorageResource

GROUP = "semantic"
STAGED = list(schema.RECORD_STAGED_TABLES)


def _staged_tables(inputs: dict) -> dict[str, pl.DataFrame]:
    """The staged record tables among an asset's inputs, by plural ("contacts"), those built."""
    return {name.removeprefix("staged_"): inputs[name] for name in STAGED if inputs.get(name) is not None}


def _markdown(frame: pl.DataFrame, rows: int = 5, width: int = 80) -> dg.MetadataValue:
    return markdown_table(frame, rows=rows, width=width)


def _counts(frame: pl.DataFrame, column: str = "entity_type") -> dict[str, int]:
    if frame.is_empty():
        return {}
    return dict(frame.group_by(column).len().sort(column).iter_rows())


@dg.asset(
    group_name=GROUP,
    # a document names the contact's company and recent activities, whatever their shard: the whole batch
    ins=whole_batch_ins(STAGED),
    metadata={SHARD_COLUMN: "entity_id"},
    description="One text per contact, company, deal and activity (what a "
    "salesperson matches on, recent activity included) with its content hash and filter columns.",
    **PARTITIONED,
)
def entity_documents(
    context: dg.AssetExecutionContext, **staged: pl.DataFrame | None
) -> dg.MaterializeResult:
    from holocrm_core.text import entity_documents as render

    started = time.perf_counter()
    _, shards = run_partitions(context)
    # the run's shards rendered against the whole batch (names, companies and recent activities of any shard)
    documents = render(_staged_tables(staged), shards=shards, count=SHARDS)
    lengths = documents.get_column("text").str.len_chars() if len(documents) else pl.Series([0])
    context.log.info(f"{len(documents)} entity documents")
    return dg.MaterializeResult(
        value=documents,
        metadata={
            "documents": len(documents),
            "by_type": dg.MetadataValue.json(_counts(documents)),
            "mean_text_chars": float(lengths.mean() or 0),
            "max_text_chars": int(lengths.max() or 0),
            "seconds": round(time.perf_counter() - started, 3),
            "preview": _markdown(documents.select("entity_type", "entity_id", "text")),
        },
    )


EMBEDDING_CHECKS = ["one_vector_per_entity", "vector_dimension", "unit_norm_no_nan"]


def _progress_logger(context: dg.AssetExecutionContext, every_s: float = 5.0):
    """A progress callback for the embedding step: texts done, rate and time left, every few seconds."""
    last = [-every_s]

    def report(done: int, total: int, seconds: float) -> None:
        if seconds - last[0] < every_s and done < total:
            return
        last[0] = seconds
        rate = done / seconds if seconds > 0 else 0.0
        left = (total - done) / rate if rate > 0 else float("nan")
        context.log.info(
            f"progress: embedding {done}/{total} texts ({100 * done / total:.0f}%), {rate:.0f} texts/s, "
            f"about {left:.0f} s left"
        )

    return report


@dg.asset(
    group_name=GROUP,
    # the staged tables as scans: only their ids are read (what must have a vector)
    ins={"entity_documents": dg.AssetIn("entity_documents"), **lazy_ins(STAGED)},
    description="A 384-dim vector per entity document, keyed by entity id + content hash; a re-run embeds only "
    "new or changed text (the shard's previous vectors, of this batch or the one before, are the cache).",
    metadata={
        FEEDBACK: "embeddings (its own previous partitions: the cache of unchanged texts)",
        SHARD_COLUMN: "entity_id",
    },
    check_specs=[dg.AssetCheckSpec(name, asset="embeddings") for name in EMBEDDING_CHECKS],
    **PARTITIONED,
)
def embeddings(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    embedder: EmbedderResource,
    entity_documents: pl.DataFrame,
    **staged: pl.LazyFrame | None,
):  # no return annotation: with check specs Dagster would type the value Nothing
    from holocrm_core.embedding import DIM, embed_documents

    _, shards = run_partitions(context)
    documents = in_shards(entity_documents, "entity_id", shards, SHARDS)
    ids = {name: schema.entity(name.removeprefix("staged_")).id_column for name in staged}
    staged = {
        name: in_shards(frame.select(ids[name]).collect(), ids[name], shards, SHARDS)
        for name, frame in staged.items()
        if frame is not None
    }
    previous = previous_partitions(storage.home, "embeddings", context.partition_keys)
    started = time.perf_counter()
    model = embedder.load()
    load_seconds = time.perf_counter() - started
    run = embed_documents(documents, model, previous, progress=_progress_logger(context))
    context.log.info(f"embedded {run.new} texts, reused {run.reused}, dropped {run.deleted} deleted entities")

    # checks: every staged entity has exactly one vector of the right size, unit norm and finite
    expected = quality.expected_document_keys(_staged_tables(staged))
    checks = [
        check_result(quality.one_vector_per_entity(expected, run.vectors)),
        *[check_result(outcome) for outcome in quality.vector_checks(run.vectors, DIM)],  # in slices
    ]
    rate = run.new / run.seconds if run.new and run.seconds else 0.0
    return dg.MaterializeResult(
        value=run.vectors,
        metadata={
            "vectors": len(run.vectors),
            "new": run.new,
            "reused": run.reused,
            "deleted": run.deleted,
            "changed": run.changed,
            "model": model.model_name,
            "backend": model.backend,
            "dimension": DIM,
            "model_load_seconds": round(load_seconds, 3),
            "embed_seconds": round(run.seconds, 3),
            "texts_per_second": round(rate, 1),
            "chunked_texts": int(run.stats.get("chunked_texts", 0)),
            "by_type": dg.MetadataValue.json(_counts(run.vectors)),
        },
        check_results=checks,
    )


@dg.asset(
    group_name=GROUP,
    description="LanceDB tables per entity type (vectors, 96-dim spectral prefix, filter columns, full-text "
    "index, ANN index once large); each materialization leaves table versions a server can pin. A run of "
    "some shards merges their rows (upsert by id, their gone rows deleted) and leaves the other shards'.",
    check_specs=[dg.AssetCheckSpec("index_matches_documents", asset="similarity_index")],
    # the vectors as a scan: the store copies them into its matrix slice by slice, so a shard's vectors are
    # in memory once (1.2 GB at 1M contacts), not as a frame and again as the matrix
    ins=lazy_ins(["embeddings"], optional=False),
    **PARTITIONED,
)
def similarity_index(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    lancedb: LanceDBResource,
    entity_documents: pl.DataFrame,
    embeddings: pl.LazyFrame,
) -> dg.MaterializeResult:
    from holocrm_core.partitions import shard_of
    from holocrm_core.store import SimilarityStore, table_columns

    _, shards = run_partitions(context)
    every_shard = set(shards) >= set(range(SHARDS))
    documents = in_shards(entity_documents, "entity_id", shards, SHARDS)
    vectors = embeddings  # only the documents' vectors are read from it (store._aligned)
    started = time.perf_counter()
    store = SimilarityStore(lancedb.resolved_uri(storage))
    if every_shard:  # the index holds exactly the batch (types no longer exported are emptied)
        reports = store.sync(documents, vectors)
    else:  # these shards' rows merged in, concurrent shards' commits retried (SimilarityStore.merge_shards)
        reports = store.merge_shards(documents, vectors, shards, SHARDS)
    seconds = time.perf_counter() - started
    versions = store.versions()
    rotation = store.rotation()

    def indexed_rows(entity_type: str) -> int:
        table = store.table(entity_type)
        if every_shard:
            return int(table.count_rows())
        ids = table_columns(table, ["entity_id"]).column("entity_id").to_pylist()
        return int(shard_of(ids, SHARDS).is_in(shards).sum())

    indexed = {t: indexed_rows(t) for t in store.entity_types()}
    context.log.info(f"index versions {versions}")
    return dg.MaterializeResult(
        metadata={
            "uri": lancedb.resolved_uri(storage),
            "versions": dg.MetadataValue.json(versions),
            "rows": dg.MetadataValue.json(indexed),
            "new": sum(r.new for r in reports.values()),
            "updated": sum(r.updated for r in reports.values()),
            "reused": sum(r.reused for r in reports.values()),
            "deleted": sum(r.deleted for r in reports.values()),
            "per_type": dg.MetadataValue.json({t: r.as_dict() for t, r in reports.items()}),
            "scales": dg.MetadataValue.json([96, 192, 384]),
            "rotation_version": rotation.version if rotation else "identity",
            "explained_variance_96": round(rotation.explained_variance(96), 4) if rotation else 0.0,
            "explained_variance_192": round(rotation.explained_variance(192), 4) if rotation else 0.0,
            "sync_seconds": round(seconds, 3),
        },
        check_results=[check_result(quality.index_matches_documents(indexed, _counts(documents)))],
    )


@dg.multi_asset(
    name="duplicate_candidates",
    outs={
        "duplicate_candidates": dg.AssetOut(
            group_name=GROUP,
            description="Likely duplicate contacts and companies over the whole tables (score, reasons). "
            "Nothing is merged automatically.",
        ),
        "merge_proposals": dg.AssetOut(
            group_name=GROUP, description="A merge proposal per duplicate cluster (survivor, merged ids)."
        ),
    },
    # every input is a scan, read as far as it is needed: the staged contacts and companies (the columns the
    # engine compares only, then the clustered records' whole rows for the proposals), the vectors
    # (contacts' and companies' only), the deals and activities (the counts of their references); at 1M
    # contacts the whole staged tables, held through the linking, were 0.4 GB of the step's peak
    ins=lazy_ins(["staged_companies", "staged_contacts", "staged_deals", "staged_activities", "embeddings"]),
)
def duplicate_candidates(
    context: dg.AssetExecutionContext,
    embeddings: pl.LazyFrame | None,
    staged_deals: pl.LazyFrame | None,
    staged_activities: pl.LazyFrame | None,
    staged_contacts: pl.LazyFrame | None,
    staged_companies: pl.LazyFrame | None,
):
    from holocrm_core.dedupe import clusters, link_columns, merge_proposals
    from holocrm_core.dedupe import duplicate_candidates as find_duplicates

    def compared(frame: pl.LazyFrame | None, entity_type: str) -> pl.DataFrame | None:
        if frame is None:
            return None
        return frame.select(link_columns(entity_type, frame.collect_schema().names())).collect()

    def references(frame: pl.LazyFrame | None) -> pl.LazyFrame | None:
        if frame is None:
            return None
        names = frame.collect_schema().names()
        return frame.select([c for c in ("contact_id", "company_id") if c in names])

    started = time.perf_counter()
    # the vectors stay lazy: each type's are read only while its table is linked, and not at all above
    # the size where the vector pass is skipped (blocking.VECTOR_BLOCKING_MAX_ROWS)
    candidates = find_duplicates(
        compared(staged_contacts, "contact"), compared(staged_companies, "company"), vectors=embeddings
    )
    proposals = merge_proposals(
        candidates,
        staged_contacts,
        staged_companies,
        deals=references(staged_deals),
        activities=references(staged_activities),
    )
    groups = clusters(candidates)
    context.log.info(
        f"{len(candidates)} duplicate candidates in {groups.get_column('cluster_id').n_unique() if len(groups) else 0} clusters"
    )
    yield dg.MaterializeResult(
        asset_key="merge_proposals", value=proposals, metadata={"rows": len(proposals)}
    )
    yield dg.MaterializeResult(
        asset_key="duplicate_candidates",
        value=candidates,
        metadata={
            "pairs": len(candidates),
            "by_type": dg.MetadataValue.json(_counts(candidates)),
            "clusters": int(groups.get_column("cluster_id").n_unique()) if len(groups) else 0,
            "merge_proposals": len(proposals),
            "seconds": round(time.perf_counter() - started, 3),
            "preview": _markdown(
                candidates.with_columns(pl.col("reasons").list.join("; ")), rows=8, width=120
            ),
        },
    )
