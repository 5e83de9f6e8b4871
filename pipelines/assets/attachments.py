"""Attachment assets: files -> attachment_texts (read once per content hash) -> attachment_chunks (LanceDB, vectors +
full text) -> activity_fused_embeddings (body + attachments)."""

import time
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl

from pipelines.metadata import markdown_table
from pipelines.resources import EmbedderResource, LanceDBResource, StorageResource

GROUP = "attachments"


class AttachmentFilesConfig(dg.Config):
    """Where the attachment files are: the export folder their paths are relative to (as raw_export's
    export_dir; empty = the newest batch folder in HOLOCRM_HOME/landing, raw_export's default too)."""

    export_dir: str = ""


def _export_dir(config: AttachmentFilesConfig, storage: StorageResource) -> Path:
    from holocrm_core.landing import resolve_export_dir

    return Path(resolve_export_dir(storage.paths().landing, config.export_dir or None))


@dg.asset(
    group_name=GROUP,
    deps=["staged_attachments"],
    description="Text of every attachment by page/slide/sheet/section, its kind detected by content; read in an "
    "isolated worker within size/page/time/memory limits; a file whose hash was read before is not read again. "
    "Unreadable files and parts go to quarantine_attachment_files with a reason.",
    check_specs=[dg.AssetCheckSpec("every_attachment_accounted", asset="attachment_texts")],
)
def attachment_texts(
    context: dg.AssetExecutionContext, config: AttachmentFilesConfig, storage: StorageResource
) -> dg.MaterializeResult:
    from holocrm_core.attachments.reading import read_attachments

    warehouse = storage.warehouse()
    staged = warehouse.read("staged_attachments")
    previous = warehouse.read("attachment_texts") if warehouse.exists("attachment_texts") else None
    started = time.perf_counter()
    result = read_attachments(staged, _export_dir(config, storage), previous, progress=context.log.info)
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
    "activities without attachments keep the body vector). Search itself scores activities by max-sim over "
    "body and chunks, which the fusion study measured best for facts that sit in one chunk.",
)
def activity_fused_embeddings(
    context: dg.AssetExecutionContext, storage: StorageResource
) -> dg.MaterializeResult:
    from holocrm_core.attachments.index import fused_activity_vectors

    warehouse = storage.warehouse()
    vectors = warehouse.read("embeddings")
    activities = vectors.filter(pl.col("entity_type") == "activity")
    bodies = {
        a: np.asarray(v, dtype=np.float32) for a, v in zip(activities["entity_id"], activities["vector"])
    }
    chunks = warehouse.read("attachment_chunk_vectors")
    fused = fused_activity_vectors(bodies, chunks, method="mean")
    with_files = set(chunks["activity_id"].to_list()) if chunks.height else set()
    frame = pl.DataFrame(
        {
            "activity_id": list(fused),
            "vector": pl.Series([v.tolist() for v in fused.values()], dtype=pl.Array(pl.Float32, 384)),
            "with_attachments": [a in with_files for a in fused],
        }
    )
    warehouse.write("activity_fused_embeddings", frame)
    return dg.MaterializeResult(
        metadata={
            "activities": frame.height,
            "with_attachments": int(frame["with_attachments"].sum()),
            "method": "mean (one vector); search scores activities by maxsim over body and chunks",
        }
    )
