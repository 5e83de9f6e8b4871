"""Attachment assets: files -> attachment_texts (read once per content hash) -> attachment_chunks (LanceDB, vectors +
full text) -> activity_fused_embeddings (body + attachments)."""

import time

import dagster as dg
import polars as pl

from holocrm_core.partitions import in_shards
from pipelines.io_manager import (
    FEEDBACK,
    SHARD_COLUMN,
    lazy_ins,
    optional_ins,
    previous_partitions,
    previous_table,
)
from pipelines.metadata import markdown_table, nothing_to_do
from pipelines.partitions import PARTITIONED, SHARDS, export_folder, run_partitions
from pipelines.resources import EmbedderResource, ExportResource, LanceDBResource, StorageResource

GROUP = "attachments"


QUARANTINE_FILES = "quarantine_attachment_files"


@dg.multi_asset(
    name="attachment_texts",
    outs={
        "attachment_texts": dg.AssetOut(
            group_name=GROUP,
            description="Text of every attachment by page/slide/sheet/section, its kind detected by content; "
            "read in an isolated worker within size/page/time/memory limits; a file whose hash was read before "
            "is not read again. Unreadable files and parts go to quarantine_attachment_files with a reason.",
            metadata={
                FEEDBACK: "attachment_texts (its own previous partitions: files read before, by hash)",
                SHARD_COLUMN: "attachment_id",
            },
        ),
        QUARANTINE_FILES: dg.AssetOut(
            group_name=GROUP,
            description="Attachment files and parts that could not be read: file, locator, rule, reason.",
            metadata={SHARD_COLUMN: "attachment_id"},
        ),
    },
    ins=optional_ins(["staged_attachments"]),
    **PARTITIONED,
    check_specs=[dg.AssetCheckSpec("every_attachment_accounted", asset="attachment_texts")],
)
def attachment_texts(
    context: dg.AssetExecutionContext,
    export: ExportResource,
    storage: StorageResource,
    staged_attachments: pl.DataFrame | None,
):
    from holocrm_core.attachments.reading import TEXT_SCHEMA, read_attachments

    batch, shards = run_partitions(context)
    staged = (
        in_shards(staged_attachments, "attachment_id", shards, SHARDS)
        if staged_attachments is not None
        else pl.DataFrame(schema={"attachment_id": pl.String})
    )
    if staged.is_empty():
        empty = pl.DataFrame(schema=TEXT_SCHEMA)
        yield dg.MaterializeResult(
            asset_key=QUARANTINE_FILES, value=read_attachments(empty, ".").quarantine, metadata={"rows": 0}
        )
        yield dg.MaterializeResult(
            asset_key="attachment_texts",
            value=empty,
            metadata=nothing_to_do(
                context, "the export has no attachments (staged_attachments is empty)", attachments=0
            ),
            check_results=[
                dg.AssetCheckResult(
                    check_name="every_attachment_accounted", passed=True, metadata={"staged": 0, "texts": 0}
                )
            ],
        )
        return
    previous = previous_partitions(storage.home, "attachment_texts", context.partition_keys)
    started = time.perf_counter()
    folder = export_folder(export, storage, batch)
    result = read_attachments(staged, folder, previous, progress=context.log.info)
    yield dg.MaterializeResult(
        asset_key=QUARANTINE_FILES, value=result.quarantine, metadata={"rows": result.quarantine.height}
    )
    texts = result.texts
    by_kind = texts.group_by("status", "kind").len().sort("status", "kind") if texts.height else texts
    context.log.info(
        f"attachments: {result.files_read} files read, {result.files_reused} reused, "
        f"{result.quarantine.height} quarantined rows"
    )
    yield dg.MaterializeResult(
        asset_key="attachment_texts",
        value=texts,
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


CHUNK_VECTORS = "attachment_chunk_vectors"


@dg.multi_asset(
    name="attachment_chunks",
    outs={
        "attachment_chunks": dg.AssetOut(
            group_name=GROUP,
            dagster_type=dg.Nothing,
            description="Chunks of attachment text (never crossing a page/slide/sheet), embedded (a chunk whose "
            "file content is unchanged reuses its vector) and written to the LanceDB table attachment_chunks "
            "with a full-text index, so search returns the file and page that matched.",
        ),
        CHUNK_VECTORS: dg.AssetOut(
            group_name=GROUP,
            description="The attachment chunks with their vectors (the warehouse copy of the LanceDB table).",
            metadata={
                FEEDBACK: "attachment_chunk_vectors (its own previous table: vectors of unchanged files)"
            },
        ),
    },
)
def attachment_chunks(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    lancedb: LanceDBResource,
    embedder: EmbedderResource,
    attachment_texts: pl.DataFrame,
):
    from holocrm_core.attachments.index import attachment_chunks as make_chunks
    from holocrm_core.attachments.index import embed_chunks, write_chunk_table

    chunks = make_chunks(attachment_texts)
    if chunks.is_empty():
        # an empty chunk table replaces the last one, so no search finds files of an earlier export
        empty = embed_chunks(chunks, None).frame  # no text: the model is not even loaded
        write_chunk_table(lancedb.connect(storage), empty)
        yield dg.MaterializeResult(asset_key=CHUNK_VECTORS, value=empty, metadata={"rows": 0})
        yield dg.MaterializeResult(
            asset_key="attachment_chunks",
            metadata=nothing_to_do(context, "no readable attachment text to chunk", chunks=0, embedded=0),
        )
        return
    previous = previous_table(storage.home, CHUNK_VECTORS)
    started = time.perf_counter()
    run = embed_chunks(chunks, embedder.load(), previous)
    table = write_chunk_table(lancedb.connect(storage), run.frame)
    context.log.info(f"{chunks.height} chunks: {run.new} embedded, {run.reused} reused")
    yield dg.MaterializeResult(asset_key=CHUNK_VECTORS, value=run.frame, metadata={"rows": run.frame.height})
    yield dg.MaterializeResult(
        asset_key="attachment_chunks",
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
        },
    )


def _popped(holder: list):
    """Yield the items of ``holder`` and forget them (a list would keep them alive until it is dropped)."""
    while holder:
        yield holder.pop(0)


@dg.asset(
    group_name=GROUP,
    deps=["attachment_chunks"],
    # every vector of the batch can be larger than memory (1M contacts: 5M activities): fused slice by slice
    ins={**lazy_ins(["embeddings"]), **optional_ins([CHUNK_VECTORS])},
    description="One vector per activity fusing its body with its attachments (mean of body and chunk mean; "
    "activities without attachments keep the body vector), written to the warehouse and to the LanceDB table "
    "activity_fused_embeddings that similar-activity lookups rank by. Free-text search scores activities by "
    "max-sim over body and chunks, which the fusion study measured best for facts that sit in one chunk.",
)
def activity_fused_embeddings(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    lancedb: LanceDBResource,
    embeddings: pl.LazyFrame | None,
    attachment_chunk_vectors: pl.DataFrame | None,
) -> dg.MaterializeResult:
    import itertools
    import tempfile

    from holocrm_core.attachments.index import (
        FUSED_TABLE,
        fused_activity_frame,
        fused_activity_slices,
        write_fused_table,
    )

    db = lancedb.connect(storage)
    slices = (
        fused_activity_slices(embeddings, attachment_chunk_vectors) if embeddings is not None else iter(())
    )
    first = next(slices, None)
    if first is None:  # no activities (or no embeddings at all): the empty table replaces the last one
        frame = fused_activity_frame(None, None)
        table = write_fused_table(db, frame)
        figures = {"activities": 0, "with_attachments": 0, "lancedb_version": int(table.version)}
        return dg.MaterializeResult(
            value=frame, metadata=nothing_to_do(context, "the export has no activities", **figures)
        )
    # Slice by slice into LanceDB (one streamed commit) and into scratch Parquet files, then one streamed
    # warehouse commit: the whole batch's vectors are never in memory at once.
    counts = {"activities": 0, "with_attachments": 0}
    with tempfile.TemporaryDirectory(prefix="fused-", dir=storage.paths().home) as scratch:
        files: list[str] = []

        def written(frames):
            for frame in frames:
                files.append(f"{scratch}/{len(files):05d}.parquet")
                frame.write_parquet(files[-1])
                counts["activities"] += frame.height
                counts["with_attachments"] += int(frame["with_attachments"].sum())
                yield frame
                del frame  # before the next slice is computed

        head = [first]  # popped by the stream: no name here keeps the first slice alive while others load
        del first
        table = write_fused_table(db, written(itertools.chain(_popped(head), slices)))
        storage.warehouse().write(FUSED_TABLE, pl.scan_parquet(files), operation="fused, slice by slice")
    activities, attached = counts["activities"], counts["with_attachments"]
    figures = {
        "activities": activities,
        "with_attachments": attached,
        "lancedb_version": int(table.version),
        "method": "mean (one vector); search scores activities by maxsim over body and chunks",
    }
    return dg.MaterializeResult(metadata=figures)  # the table is committed above, streamed
