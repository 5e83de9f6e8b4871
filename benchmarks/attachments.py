"""Attachment benchmark: extraction speed per kind, OCR seconds per image, speech real-time factor, peak memory,
hostile files, retrieval of facts that appear only in attachments (hybrid vs BM25 vs vector; fusion methods),
and the product's own door: the email that carries the file found by the entity search (`search --type
activity`, every mode) against the same search over the activity bodies alone.

    PYTHONPATH=. .venv/bin/python benchmarks/attachments.py [--contacts 300] [--per-text-kind 8]
        [--per-ocr-kind 4] [--audio 3] [--seed 11]

Prints one JSON object. Retrieval here is measured on a different seed than the one the hybrid weights
were tuned on (seeds 7 and 3, see holocrm_core/attachments/index.py), over every attachment of the sample.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def extraction(texts: pl.DataFrame, export: Path, files: pl.DataFrame) -> dict:
    sizes = {n: (export / "attachments" / n).stat().st_size for n in files["file_name"].unique().to_list()}
    first = texts.unique("file_hash", keep="first").with_columns(
        pl.col("file_name").replace_strict(sizes, default=0).alias("bytes")
    )
    out = {}
    for (kind,), group in first.group_by(["kind"]):
        seconds = float(group["seconds"].sum())
        megabytes = float(group["bytes"].sum()) / 2**20
        row = {
            "files": group.height,
            "seconds": round(seconds, 3),
            "files_per_s": round(group.height / seconds, 2) if seconds else None,
            "mb_per_s": round(megabytes / seconds, 3) if seconds else None,
        }
        if kind == "wav":
            audio = sum(json.loads(m).get("seconds", 0) for m in group["metadata"])
            row["audio_seconds"] = round(audio, 1)
            row["real_time_factor"] = round(seconds / audio, 3) if audio else None
        if kind in ("png", "jpeg", "tiff"):
            row["ocr_seconds_per_image"] = round(seconds / group.height, 3)
        out[kind or "quarantined"] = row
    scans = first.filter((pl.col("kind") == "pdf") & pl.col("metadata").str.contains('"ocr_pages": [1-9]'))
    if scans.height:
        out["pdf_scanned"] = {
            "files": scans.height,
            "ocr_seconds_per_page": round(float(scans["seconds"].sum()) / scans.height, 3),
        }
    return out


def ocr_engines(export: Path, facts: pl.DataFrame) -> dict:
    """Fact recall and seconds per image for both OCR engines on the generated images."""
    from holocrm_core.attachments import extract_data

    images = facts.filter(pl.col("kind").is_in(["png", "jpeg", "tiff", "pdf_scan"]))
    out = {}
    for engine in ["tesseract", "rapidocr"]:
        if engine == "tesseract" and not shutil.which("tesseract"):
            out[engine] = "not installed"
            continue
        os.environ["HOLOCRM_OCR"] = engine
        found, seconds, files = [], 0.0, 0
        for name, group in images.group_by("file_name"):
            started = time.perf_counter()
            text = extract_data((export / "attachments" / name[0]).read_bytes(), name[0]).text
            seconds += time.perf_counter() - started
            files += 1
            found += [v in text for v in group["value"]]
        out[engine] = {
            "images": files,
            "seconds_per_image": round(seconds / max(files, 1), 2),
            "facts_read_exactly": round(float(np.mean(found)), 3) if found else None,
        }
    os.environ.pop("HOLOCRM_OCR", None)
    return out


def asr_engines(export: Path, facts: pl.DataFrame) -> dict:
    """Per speech engine on the generated calls: seconds per recording and the share of the spoken facts
    found in the transcript, as digits (what a person types: "47,000", "14 March 2027") or as words."""
    from holocrm_core.attachments.media import _pcm16k, asr_engine_name, transcribe
    from holocrm_core.attachments.model import Context, Limits

    calls = facts.filter(pl.col("kind") == "wav")
    out = {"default": asr_engine_name()}
    for engine in ["pocketsphinx", "whisper"]:
        if engine == "whisper" and asr_engine_name() != "whisper":
            out[engine] = "not installed"
            continue
        found, seconds, audio = [], 0.0, 0.0
        for (name,), group in calls.group_by(["file_name"]):
            pcm = _pcm16k((export / "attachments" / name).read_bytes(), Context(Limits()))
            started = time.perf_counter()
            text = " ".join(transcribe(pcm, engine)).lower()
            seconds += time.perf_counter() - started
            audio += len(pcm) / 16000
            for fact, value, query in zip(group["fact"], group["value"], group["query"], strict=False):
                # every part of the value ("47,000", "14", "march", "2027"; not the currency code, said as
                # "dollars"), or the generator's spoken form of the query ("forty seven thousand dollars")
                parts = [p for p in str(value).lower().split() if p not in ("usd", "eur", "gbp")]
                words = query.lower().removeprefix("start date ").removeprefix("decision maker ")
                found.append({"fact": fact, "hit": all(p in text for p in parts) or words in text})
        frame = pl.DataFrame(found)
        out[engine] = {
            "recordings": calls["file_name"].n_unique(),
            "real_time_factor": round(seconds / audio, 3) if audio else None,
            "facts_in_transcript": dict(frame.group_by("fact").agg(pl.col("hit").mean()).iter_rows())
            if frame.height
            else {},
        }
    return out


def _recall(frame: pl.DataFrame, hits: list[bool]) -> dict:
    scored = frame.with_columns(pl.Series("hit", hits))
    return {
        "all": round(float(np.mean(hits)), 4) if hits else None,
        **{
            kind: round(float(v), 4)
            for kind, v in scored.group_by("kind").agg(pl.col("hit").mean()).sort("kind").iter_rows()
        },
    }


def activity_search(
    export: Path, work: Path, facts: pl.DataFrame, chunk_frame: pl.DataFrame, embedder, groups
):
    """Top-3 recall of the entity search over every activity of the export (`search --type activity`): with
    the attachment tables beside the index (what `holocrm run` builds) and without them (the bodies alone,
    the plain baseline: the facts are in no body)."""
    import lancedb

    from holocrm_core.attachments.index import fused_activity_frame, write_chunk_table, write_fused_table
    from holocrm_core.embedding import embed_documents
    from holocrm_core.ingest import ingest_export
    from holocrm_core.store import SimilarityStore
    from holocrm_core.text import entity_documents

    started = time.perf_counter()
    staged = ingest_export(export).tables
    documents = entity_documents({"activities": staged["activities"]})
    bodies = embed_documents(documents, embedder).vectors
    stores = {}
    for name in ("with_attachments", "bodies_only"):
        uri = str(work / f"lance_{name}")
        SimilarityStore(uri, embedder=embedder).sync(documents, bodies)
        if name == "with_attachments":
            db = lancedb.connect(uri)
            write_chunk_table(db, chunk_frame)
            write_fused_table(db, fused_activity_frame(bodies, chunk_frame))
        stores[name] = SimilarityStore(uri, embedder=embedder)
    out: dict = {"activities": documents.height, "index_seconds": round(time.perf_counter() - started, 2)}
    started = time.perf_counter()
    searches = 0
    for name, store in stores.items():
        for mode in ("hybrid", "vector", "fulltext"):
            for group, frame in groups.items():
                hits = []
                for query, activity in zip(frame["query"], frame["activity_id"], strict=False):
                    found = store.search(query, entity_types=["activity"], mode=mode, limit=3)
                    hits.append(activity in [h["id"] for h in found])
                    searches += 1
                out.setdefault(name, {}).setdefault(mode, {})[group] = _recall(frame, hits)
    out["ms_per_search"] = round(1000 * (time.perf_counter() - started) / max(searches, 1), 1)
    fact = facts.row(0, named=True)
    hit = next(
        (
            h
            for h in stores["with_attachments"].search(fact["query"], entity_types=["activity"], limit=3)
            if h["id"] == fact["activity_id"]
        ),
        None,
    )
    out["example"] = {"query": fact["query"], "hit": {k: v for k, v in (hit or {}).items() if k != "text"}}
    return out


def hostile() -> dict:
    from holocrm_core.attachments import AttachmentReader
    from holocrm_core.synth.attachment_files import hostile_corpus

    folder = Path(tempfile.mkdtemp(prefix="hostile_"))
    try:
        expected = hostile_corpus(folder)
        rows = {}
        with AttachmentReader() as reader:
            for name, rule in expected.items():
                outcome = reader.read(folder / name)
                rows[name] = {
                    "expected": rule or "read",
                    "got": outcome.rule or "read",
                    "reason": outcome.reason,
                    "seconds": round(outcome.seconds, 3),
                }
            peak = reader.peak_rss_bytes
        return {
            "files": rows,
            "all_as_expected": all(r["expected"] == r["got"] for r in rows.values()),
            "reader_peak_rss_mb": round(peak / 2**20, 1),
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=300)
    parser.add_argument("--per-text-kind", type=int, default=8)
    parser.add_argument("--per-ocr-kind", type=int, default=4)
    parser.add_argument("--audio", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--bodies", type=int, default=1500, help="other activity bodies in the fusion study")
    args = parser.parse_args()

    import lancedb

    from holocrm_core.attachments.index import (
        attachment_chunks,
        embed_chunks,
        fusion_study,
        retrieval_study,
        search_activities,
        write_chunk_table,
    )
    from holocrm_core.attachments.reading import read_attachments
    from holocrm_core.embedding import load_embedder
    from holocrm_core.synth import generate_export, load_truth
    from holocrm_core.synth.attachment_files import AUDIO_KINDS, OCR_KINDS, default_fact_counts

    report: dict = {"load_average_start": _load(), "args": vars(args)}
    work = Path(tempfile.mkdtemp(prefix="attach_bench_"))
    try:
        started = time.perf_counter()
        generate_export(
            work / "export",
            n_contacts=args.contacts,
            seed=args.seed,
            truth_dir=work / "truth",
            attachment_fact_counts=default_fact_counts(args.per_text_kind, args.per_ocr_kind, args.audio),
        )
        report["generate_seconds"] = round(time.perf_counter() - started, 2)
        export = work / "export"
        files = (
            pl.read_csv(export / "attachments.csv", infer_schema=False)
            .filter(
                pl.col("attachment_id").str.starts_with("ATT-")
                & pl.col("file_name").is_not_null()
                & pl.col("activity_id").is_not_null()
            )
            .unique("attachment_id")
        )
        facts = load_truth(work / "truth")["attachment_facts"]

        started = time.perf_counter()
        read = read_attachments(files, export)
        report["extraction"] = {
            "attachments": files.height,
            "files_read": read.files_read,
            "reused_by_hash": read.files_reused,
            "seconds": round(time.perf_counter() - started, 2),
            "peak_rss_mb": round(read.peak_rss_bytes / 2**20, 1),
            "quarantined": read.texts.filter(pl.col("status") != "ok").height,
            "by_kind": extraction(read.texts, export, files),
        }
        rerun = time.perf_counter()
        again = read_attachments(files, export, previous=read.texts)
        report["extraction"]["rerun"] = {
            "files_read": again.files_read,
            "seconds": round(time.perf_counter() - rerun, 2),
        }

        embedder = load_embedder()
        started = time.perf_counter()
        vectors = embed_chunks(attachment_chunks(read.texts), embedder)
        table = write_chunk_table(lancedb.connect(str(work / "lance")), vectors.frame)
        report["chunks"] = {
            "chunks": vectors.frame.height,
            "embedded": vectors.new,
            "seconds": round(time.perf_counter() - started, 2),
        }

        groups = {
            "text": facts.filter(~pl.col("kind").is_in(list(OCR_KINDS | AUDIO_KINDS))),
            "ocr": facts.filter(pl.col("kind").is_in(list(OCR_KINDS))),
            "audio": facts.filter(pl.col("kind").is_in(list(AUDIO_KINDS))),
        }
        report["retrieval_top3"] = {
            name: retrieval_study(table, group, embedder) for name, group in groups.items() if group.height
        }
        audio = facts.filter(pl.col("kind").is_in(list(AUDIO_KINDS)))
        if audio.height:
            hits = [
                a in [h["activity_id"] for h in search_activities(table, q, embedder, limit=3)]
                for q, a in zip(audio["query"], audio["activity_id"], strict=True)
            ]
            report["retrieval_top3"]["audio_by_fact"] = dict(
                audio.with_columns(pl.Series("hit", hits))
                .group_by("fact")
                .agg(pl.col("hit").mean())
                .iter_rows()
            )

        report["activity_search_top3"] = activity_search(export, work, facts, vectors.frame, embedder, groups)

        activities = (
            pl.read_csv(export / "activities.csv", infer_schema=False)
            .filter(pl.col("activity_id").str.starts_with("ACT-"))
            .unique("activity_id")
        )
        host_ids = set(facts["activity_id"].to_list())
        others = activities.filter(~pl.col("activity_id").is_in(list(host_ids))).sample(
            min(args.bodies, activities.height - len(host_ids)), seed=0
        )
        bodies_frame = pl.concat([activities.filter(pl.col("activity_id").is_in(list(host_ids))), others])
        texts = [
            f"{s or ''} {b or ''}".strip()
            for s, b in zip(bodies_frame["subject"], bodies_frame["body"], strict=True)
        ]
        started = time.perf_counter()
        body_vectors = embedder.encode(texts)
        bodies = dict(zip(bodies_frame["activity_id"].to_list(), body_vectors, strict=True))
        fact_chunks = vectors.frame.filter(pl.col("activity_id").is_in(list(bodies)))
        report["fusion_vector_only_top3"] = fusion_study(bodies, fact_chunks, facts, embedder)
        report["fusion_activities"] = len(bodies)
        report["fusion_seconds"] = round(time.perf_counter() - started, 2)
        report["ocr_engines"] = ocr_engines(export, facts)
        report["asr_engines"] = asr_engines(export, facts)
        report["hostile"] = hostile()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["load_average_end"] = _load()
    print(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
