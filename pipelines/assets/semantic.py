"""Semantic layer assets: entity documents -> embeddings (incremental) -> LanceDB similarity index, duplicates."""

import time

import dagster as dg
import polars as pl

from holocrm_core import quality, schema
from pipelines.metadata import check_result, markdown_table
from pipelines.resources import EmbedderResource, LanceDBResource, StorageResource

GROUP = "semantic"
STAGED = list(schema.RECORD_STAGED_TABLES)


def _staged_tables(storage: StorageResource) -> dict[str, pl.DataFrame]:
    warehouse = storage.warehouse()
    return {name.removeprefix("staged_"): warehouse.read(name) for name in STAGED if warehouse.exists(name)}


def _markdown(frame: pl.DataFrame, rows: int = 5, width: int = 80) -> dg.MetadataValue:
    return markdown_table(frame, rows=rows, width=width)


def _counts(frame: pl.DataFrame, column: str = "entity_type") -> dict[str, int]:
    if frame.is_empty():
        return {}
    return dict(frame.group_by(column).len().sort(column).iter_rows())


@dg.asset(
    group_name=GROUP,
    deps=STAGED,
    description="One text per contact, company, deal and activity (what a "
    "salesperson matches on, recent activity included) with its content hash and filter columns.",
)
def entity_documents(context: dg.AssetExecutionContext, storage: StorageResource) -> dg.MaterializeResult:
    from holocrm_core.text import entity_documents as render

    started = time.perf_counter()
    documents = render(_staged_tables(storage))
    storage.warehouse().write("entity_documents", documents)
    lengths = documents.get_column("text").str.len_chars() if len(documents) else pl.Series([0])
    context.log.info(f"{len(documents)} entity documents")
    return dg.MaterializeResult(
        metadata={
            "documents": len(documents),
            "by_type": dg.MetadataValue.json(_counts(documents)),
            "mean_text_chars": float(lengths.mean() or 0),
            "max_text_chars": int(lengths.max() or 0),
            "seconds": round(time.perf_counter() - started, 3),
            "preview": _markdown(documents.select("entity_type", "entity_id", "text")),
        }
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
    deps=["entity_documents"],
    description="A 384-dim vector per entity document, keyed by entity id + content hash; a re-run embeds only "
    "new or changed text (the previous table is the cache).",
    check_specs=[dg.AssetCheckSpec(name, asset="embeddings") for name in EMBEDDING_CHECKS],
)
def embeddings(
    context: dg.AssetExecutionContext, storage: StorageResource, embedder: EmbedderResource
) -> dg.MaterializeResult:
    from holocrm_core.embedding import DIM, embed_documents, vectors_matrix

    warehouse = storage.warehouse()
    documents = warehouse.read("entity_documents")
    previous = warehouse.read("embeddings") if warehouse.exists("embeddings") else None
    started = time.perf_counter()
    model = embedder.load()
    load_seconds = time.perf_counter() - started
    run = embed_documents(documents, model, previous, progress=_progress_logger(context))
    warehouse.write("embeddings", run.vectors)
    context.log.info(f"embedded {run.new} texts, reused {run.reused}, dropped {run.deleted} deleted entities")

    # checks: every staged entity has exactly one vector of the right size, unit norm and finite
    expected = quality.expected_document_keys(_staged_tables(storage))
    matrix = vectors_matrix(run.vectors)
    checks = [
        check_result(quality.one_vector_per_entity(expected, run.vectors)),
        check_result(quality.vector_dimension(matrix, DIM)),
        check_result(quality.unit_norm_no_nan(matrix)),
    ]
    rate = run.new / run.seconds if run.new and run.seconds else 0.0
    return dg.MaterializeResult(
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
    deps=["entity_documents", "embeddings"],
    description="LanceDB tables per entity type (vectors, 96-dim spectral prefix, filter columns, full-text "
    "index, ANN index once large); each materialization leaves table versions a server can pin.",
    check_specs=[dg.AssetCheckSpec("index_matches_documents", asset="similarity_index")],
)
def similarity_index(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    lancedb: LanceDBResource,
    embedder: EmbedderResource,
) -> dg.MaterializeResult:
    from holocrm_core.store import SimilarityStore

    warehouse = storage.warehouse()
    documents = warehouse.read("entity_documents")
    vectors = warehouse.read("embeddings")
    started = time.perf_counter()
    store = SimilarityStore(lancedb.resolved_uri(storage))
    reports = store.sync(documents, vectors)
    seconds = time.perf_counter() - started
    versions = store.versions()
    rotation = store.rotation()
    indexed = {t: int(store.table(t).count_rows()) for t in store.entity_types()}
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


@dg.asset(
    group_name=GROUP,
    deps=[*STAGED, "embeddings"],
    description="Likely duplicate contacts and companies over the whole tables (score, reasons) and a merge "
    "proposal per cluster (warehouse table merge_proposals). Nothing is merged automatically.",
)
def duplicate_candidates(context: dg.AssetExecutionContext, storage: StorageResource) -> dg.MaterializeResult:
    from holocrm_core.dedupe import clusters, merge_proposals
    from holocrm_core.dedupe import duplicate_candidates as find_duplicates

    warehouse = storage.warehouse()
    staged = _staged_tables(storage)
    contacts = staged.get("contacts")
    companies = staged.get("companies")
    vectors = warehouse.read("embeddings") if warehouse.exists("embeddings") else None
    started = time.perf_counter()
    candidates = find_duplicates(contacts, companies, vectors=vectors)
    proposals = merge_proposals(
        candidates, contacts, companies, deals=staged.get("deals"), activities=staged.get("activities")
    )
    groups = clusters(candidates)
    warehouse.write("duplicate_candidates", candidates)
    warehouse.write("merge_proposals", proposals)
    context.log.info(
        f"{len(candidates)} duplicate candidates in {groups.get_column('cluster_id').n_unique() if len(groups) else 0} clusters"
    )
    return dg.MaterializeResult(
        metadata={
            "pairs": len(candidates),
            "by_type": dg.MetadataValue.json(_counts(candidates)),
            "clusters": int(groups.get_column("cluster_id").n_unique()) if len(groups) else 0,
            "merge_proposals": len(proposals),
            "seconds": round(time.perf_counter() - started, 3),
            "preview": _markdown(
                candidates.with_columns(pl.col("reasons").list.join("; ")), rows=8, width=120
            ),
        }
    )
