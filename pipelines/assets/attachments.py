"""Attachment assets: files -> attachment_texts (read once per content hash) -> attachment_chunks (LanceDB, vectors +
full text) -> activity_fused_embeddings (body + attachments)."""

import time

import dagster as dg
import polars as pl

from pipelines.metadata import markdown_table, nothing_to_do
from pipelines.resources import EmbedderResource, ExportResource, LanceDBResource, StorageResource

GROUP = "attachments"


@dg.asset(
    group_name=GROUP,
    deps=["staged_attachments"],
    description="Text of every attachment by page/slide/sheet/section, its kind detected by content; read in an "
    "isolated worker within size/page/time/memory limits; a file whose hash was read before is not read again. "
    "Unreadable files and parts go to quarantine_attachment_files with a reason.",
    check_specs=[dg.AssetCheckSpec("every_attachment_accounted", asset="attachment_texts")],
)
def attachment_texts(
    context: dg.AssetExecutionContext, export: ExportResource, storage: StorageResource
) -> dg.MaterializeResult:
    from holocrm_core.attachments.reading import TEXT_SCHEMA, read_attachments

    warehouse = storage.warehouse()
    staged = (
        warehouse.read("staged_attachments")
        if warehouse.exists("staged_attachments")
        else pl.DataFrame(schema={"attachment_id": pl.String})
    )
    if staged.is_empty():
        empty = pl.DataFrame(schema=TEXT_SCHEMA)
        warehouse.write("attachment_texts", empty)
        warehouse.write("quarantine_attachment_files", read_attachments(empty, ".").quarantine)
        return dg.MaterializeResult(
            metadata=nothing_to_do(
                context, "the export has no attachments (staged_attachments is empty)", attachments=0
            ),
            check_results=[
                dg.AssetCheckResult(
                    check_name="every_attachment_accounted", passed=True, metadata={"staged": 0, "texts": 0}
                )
            ],
        )
    previous = warehouse.read("attachment_texts") if warehouse.exists("attachment_texts") else None
    started = time.perf_counter()
    result = read_attachments(staged, export.folder(storage), previous, progress=context.log.info)
    warehouse.write("attachment_texts", result.texts)
    warehouse.write("quarantine_attachment_files", result.quarantine)
    texts = result.texts
    by_kind = texts.group_by("status", "kind").len().sort("status", "kind") if texts.height else texts
    context.log.info(
        f"attachments: {result.files_read} files read, {result.files_reused} reused, "
        f"{result.quarantine.height} quarantined rows"
    )
    return dg.MaterializeResult(
        metadata={
            "attachments": texts.height,
            "files_read": result.files_read,
            "reused_by_hash": result.files_reused,
            "quarantined": texts.filter(pl.col("status") != "ok").height,
            "problems_inside_files": result.quarantine.filter(pl.col("locator") != "").height,
            "by_kind": markdown_table(by_kind, rows=40),
            "seconds_by_kind": dg.MetadataValue.json(result.seconds_by_kind),
            "reader_peak_rss_mb": round(result.peak_rss_bytes / 2**20, 1),
            "quarantine_examples": markdown_table(
                result.quarantine.select("file_name", "rule", "reason"), rows=10
            ),
            "seconds": round(time.perf_counter() - started, 2),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="every_attachment_accounted",
                passed=texts.height == staged.height,
                metadata={"staged": staged.height, "texts": texts.height},
            )
        ],
    )


@dg.asset(
    group_name=GROUP,
    deps=["attachment_texts"],
    description="Chunks of attachment text (never crossing a page/slide/sheet), embedded (a chunk whose file "
    "content is unchanged reuses its vector) and written to the LanceDB table attachment_chunks with a "
    "full-text index, so search returns the file and page that matched.",
)
def attachment_chunks(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    lancedb: LanceDBResource,
    embedder: EmbedderResource,
) -> dg.MaterializeResult:
    from holocrm_core.attachments.index import attachment_chunks as make_chunks
    from holocrm_core.attachments.index import embed_chunks, write_chunk_table

    warehouse = storage.warehouse()
    chunks = make_chunks(warehouse.read("attachment_texts"))
    if chunks.is_empty():
        # an empty chunk table replaces the last one, so no search finds files of an earlier export
        empty = embed_chunks(chunks, None).frame  # no text: the model is not even loaded
        warehouse.write("attachment_chunk_vectors", empty)
        write_chunk_table(lancedb.connect(storage), empty)
        return dg.MaterializeResult(
            metadata=nothing_to_do(context, "no readable attachment text to chunk", chunks=0, embedded=0)
        )
    previous = (
        warehouse.read("attachment_chunk_vectors") if warehouse.exists("attachment_chunk_vectors") else None
    )
    started = time.perf_counter()
    run = embed_chunks(chunks, embedder.load(), previous)
    warehouse.write("attachment_chunk_vectors", run.frame)
    table = write_chunk_table(lancedb.connect(storage), run.frame)
    context.log.info(f"{chunks.height} chunks: {run.new} embedded, {run.reused} reused")
    return dg.MaterializeResult(
        metadata={
            "chunks": chunks.height,
            "embedded": run.new,
            "reused": run.reused,
            "lancedb_table": "attachment_chunks",
            "lancedb_version": int(table.version),
            "chunks_by_kind": dg.MetadataValue.json(
                dict(chunks.group_by("kind").len().iter_rows()) if chunks.height else {}
            ),
            "seconds": round(time.perf_counter() - started, 2),
            "preview": markdown_table(chunks.select("file_name", "locator", "text"), rows=5),
        }
    )


@dg.asset(
    group_name=GROUP,
    deps=["attachment_chunks", "embeddings"],
    description="One vector per activity fusing its body with its attachments (mean of body and chunk mean; "
    "activities without attachments keep the body vector), written to the warehouse and to the LanceDB table "
    "activity_fused_embeddings that similar-activity lookups rank by. Free-text search scores activities by "
    "max-sim over body and chunks, which the fusion study measured best for facts that sit in one chunk.",
)
def activity_fused_embeddings(
    context: dg.AssetExecutionContext, storage: StorageResource, lancedb: LanceDBResource
) -> dg.MaterializeResult:
    from holocrm_core.attachments.index import fused_activity_frame, write_fused_table

    warehouse = storage.warehouse()
    vectors = warehouse.read("embeddings") if warehouse.exists("embeddings") else None
    chunks = (
        warehouse.read("attachment_chunk_vectors") if warehouse.exists("attachment_chunk_vectors") else None
    )
    frame = fused_activity_frame(vectors, chunks)
    warehouse.write("activity_fused_embeddings", frame)
    table = write_fused_table(lancedb.connect(storage), frame)
    figures = {
        "activities": frame.height,
        "with_attachments": int(frame["with_attachments"].sum()) if frame.height else 0,
        "lancedb_version": int(table.version),
        "method": "mean (one vector); search scores activities by maxsim over body and chunks",
    }
    if frame.is_empty():
        return dg.MaterializeResult(
            metadata=nothing_to_do(context, "the export has no activities", **figures)
        )
    return dg.MaterializeResult(metadata=figures)
