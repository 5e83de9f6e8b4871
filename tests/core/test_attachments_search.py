"""Attachment text made findable: chunks keep their page, the LanceDB table finds the file and page of a fact,
reading is incremental by file hash, and fusion puts the attachment's facts into the activity's reach."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from holocrm_core.attachments.index import (
    CHUNK_CHARS,
    attachment_chunks,
    chunk_sections,
    embed_chunks,
    fuse,
    fusion_study,
    retrieval_study,
    search_activities,
    search_chunks,
    write_chunk_table,
)
from holocrm_core.attachments.reading import read_attachments
from holocrm_core.synth.attachment_files import default_fact_counts, write_fact_attachments


@pytest.fixture(scope="module")
def embedder():
    from holocrm_core.embedding import load_embedder

    return load_embedder()


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """Three fact-bearing files of each text kind on their own activities, plus a shared boilerplate file."""
    root = tmp_path_factory.mktemp("export")
    hosts = [
        {
            "activity_id": f"ACT-{i:05d}",
            "company": f"Company {i}",
            "person": "Robert Smith",
            "product": "Data Platform",
            "rep": "Jane Doe",
            "currency": "EUR",
        }
        for i in range(200)
    ]
    counts = {k: (0 if k in ("pdf_scan", "png", "jpeg", "tiff", "wav") else 3) for k in default_fact_counts()}
    rows, truth = write_fact_attachments(np.random.default_rng(7), hosts, counts, root / "attachments")
    (root / "attachments" / "terms.txt").write_text("Standard terms and conditions apply.\n" * 5)
    rows += [
        {"activity_id": f"ACT-{i:05d}", "file_name": "terms.txt", "media_type": "text/plain", "size_bytes": 0}
        for i in range(150, 160)
    ]
    attachments = pl.DataFrame(rows).with_columns(
        pl.format("ATT-{}", pl.int_range(pl.len()).cast(pl.String).str.zfill(5)).alias("attachment_id"),
        pl.format("attachments/{}", pl.col("file_name")).alias("path"),
    )
    return root, attachments, pl.DataFrame(truth)


@pytest.fixture(scope="module")
def read(export):
    root, attachments, _ = export
    return read_attachments(attachments, root)


def test_chunks_never_cross_a_section_and_respect_the_size():
    sections = [
        {"locator": "page 1", "text": "word " * 400},
        {"locator": "page 2", "text": "Total price: 5 EUR"},
    ]
    chunks = chunk_sections(sections)
    assert {loc for loc, _ in chunks} == {"page 1", "page 2"}
    assert all(len(text) <= CHUNK_CHARS for _, text in chunks)
    assert chunks[-1] == ("page 2", "Total price: 5 EUR")
    assert len([c for c in chunks if c[0] == "page 1"]) >= 3


def test_every_attachment_is_read_shared_files_once_and_a_rerun_reads_nothing(export, read):
    root, attachments, _ = export
    assert read.texts.height == attachments.height
    assert (read.texts["status"] == "ok").all()
    assert read.files_read == attachments["file_name"].n_unique()  # terms.txt: 10 rows, read once
    again = read_attachments(attachments, root, previous=read.texts)
    assert again.files_read == 0 and again.files_reused == attachments.height
    assert (
        again.texts.sort("attachment_id")["text"].to_list()
        == read.texts.sort("attachment_id")["text"].to_list()
    )


def test_a_missing_or_escaping_file_is_quarantined_and_the_others_kept(export, tmp_path):
    root, attachments, _ = export
    bad = pl.DataFrame(
        {
            "attachment_id": ["ATT-X1", "ATT-X2"],
            "activity_id": ["ACT-1", "ACT-2"],
            "file_name": ["gone.pdf", "passwd"],
            "media_type": ["", ""],
            "size_bytes": [0, 0],
            "path": ["attachments/gone.pdf", "../../../../etc/passwd"],
        }
    )
    result = read_attachments(pl.concat([attachments.head(2), bad], how="diagonal_relaxed"), root)
    assert result.texts.filter(pl.col("status") == "ok").height == 2
    reasons = dict(zip(result.quarantine["file_name"], result.quarantine["reason"], strict=True))
    assert "No such file" in reasons["gone.pdf"] and "leaves the export folder" in reasons["passwd"]


def test_search_finds_the_file_and_page_of_a_fact(tmp_path, read, export, embedder):
    import lancedb

    _, _, truth = export
    chunks = attachment_chunks(read.texts)
    vectors = embed_chunks(chunks, embedder)
    table = write_chunk_table(lancedb.connect(str(tmp_path / "lance")), vectors.frame)
    pdf_fact = truth.filter((pl.col("kind") == "pdf") & (pl.col("fact") == "competitor")).row(0, named=True)
    hits = search_chunks(table, pdf_fact["query"], embedder, limit=3)
    assert hits[0]["file_name"] == pdf_fact["file_name"] and hits[0]["locator"] == "page 2"
    assert pdf_fact["value"] in hits[0]["text"]
    found = search_activities(table, truth.filter(pl.col("kind") == "pptx")["query"][3], embedder, limit=3)
    assert truth.filter(pl.col("kind") == "pptx")["activity_id"][3] in [h["activity_id"] for h in found]


def test_unchanged_chunks_are_not_embedded_again(read, embedder):
    chunks = attachment_chunks(read.texts)
    first = embed_chunks(chunks, embedder)
    again = embed_chunks(chunks, embedder, previous=first.frame)
    assert again.new == 0 and again.reused == first.new
    assert np.allclose(
        np.asarray(again.frame["vector"].to_list()), np.asarray(first.frame["vector"].to_list())
    )


@pytest.fixture(scope="module")
def chunk_table(tmp_path_factory, read, embedder):
    import lancedb

    vectors = embed_chunks(attachment_chunks(read.texts), embedder).frame
    return vectors, write_chunk_table(lancedb.connect(str(tmp_path_factory.mktemp("lance"))), vectors)


def test_top3_hybrid_retrieval_per_text_kind_beats_the_bm25_baseline(chunk_table, export, embedder):
    _, _, truth = export
    study = retrieval_study(chunk_table[1], truth, embedder, k=3)
    kinds = [k for k in study["hybrid"] if k != "all"]
    assert len(kinds) == 15  # the 20 generated kinds less OCR (4) and speech (1)
    assert all(study["hybrid"][k] >= 0.95 for k in kinds), study["hybrid"]
    assert (
        study["hybrid"]["all"] >= study["fulltext"]["all"]
        and study["hybrid"]["all"] >= study["vector"]["all"]
    )


def test_maxsim_fusion_beats_single_vector_fusion(chunk_table, export, embedder):
    _, _, truth = export
    chunks = chunk_table[0]
    rng = np.random.default_rng(0)
    bodies = {}
    for activity in truth["activity_id"].unique().to_list() + [f"ACT-9{i:04d}" for i in range(300)]:
        vector = rng.normal(size=384).astype(np.float32)  # stand-in bodies: the facts are not in them
        bodies[activity] = vector / np.linalg.norm(vector)
    study = fusion_study(bodies, chunks, truth, embedder)
    assert study["maxsim"]["all"] >= study["mean"]["all"] >= study["body_only"]["all"]
    assert study["maxsim"]["all"] > study["body_only"]["all"] + 0.1  # the attachment reaches the activity


def test_fuse_keeps_unit_norm_and_attention_leans_to_the_related_chunk():
    body = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    chunks = np.array([[0.9, 0.436, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    mean, attention = fuse(body, chunks, "mean"), fuse(body, chunks, "attention")
    assert np.isclose(np.linalg.norm(mean), 1) and np.isclose(np.linalg.norm(attention), 1)
    assert attention[2] < mean[2]
    assert json.dumps(fuse(body, np.zeros((0, 3)), "mean").tolist()) == "[1.0, 0.0, 0.0]"


# ------------------------------------------------------------------ every door: the entity search finds the email


TOPICS = [
    "pricing questions and the budget for next year",
    "onboarding schedule and the training plan",
    "renewal of the support contract",
    "a demo of the reporting module",
    "security review and the data processing agreement",
]


@pytest.fixture(scope="module")
def activity_store(tmp_path_factory, chunk_table, export, embedder):
    """The activities that carry the files, indexed as the similarity_index asset does (bodies that never say
    the facts), with the attachment chunk and fused tables beside them in the same LanceDB folder."""
    import hashlib

    import lancedb

    from holocrm_core.attachments.index import fused_activity_frame, write_fused_table
    from holocrm_core.embedding import embed_documents
    from holocrm_core.store import SimilarityStore
    from holocrm_core.text import DOCUMENT_SCHEMA

    vectors, _ = chunk_table
    rows = []
    for i in range(200):
        text = f"Email to Company {i}: {TOPICS[i % len(TOPICS)]}. Robert Smith replied, Jane Doe follows up."
        row = dict.fromkeys(DOCUMENT_SCHEMA.names())
        row |= {"entity_type": "activity", "entity_id": f"ACT-{i:05d}", "text": text}
        row |= {"content_hash": hashlib.sha1(text.encode()).hexdigest(), "name": f"Email {i}"}
        row |= {"activity_type": "email" if i % 2 else "call", "owner": "Jane Doe"}
        rows.append(row)
    documents = pl.DataFrame(rows, schema=DOCUMENT_SCHEMA)
    bodies = embed_documents(documents, embedder).vectors
    uri = str(tmp_path_factory.mktemp("every_door") / "lancedb")
    store = SimilarityStore(uri, embedder=embedder)
    store.sync(documents, bodies)
    db = lancedb.connect(uri)
    write_chunk_table(db, vectors)
    write_fused_table(db, fused_activity_frame(bodies, vectors))
    return SimilarityStore(uri, version=store.versions(), embedder=embedder)


@pytest.mark.parametrize("mode", ["hybrid", "vector", "fulltext"])
def test_entity_search_finds_the_email_by_its_attachment_in_every_mode(activity_store, export, mode):
    _, _, truth = export
    facts = truth.filter(pl.col("file_name").is_in(truth.unique("kind", keep="first")["file_name"].implode()))
    hits = []
    for query, activity in zip(facts["query"], facts["activity_id"], strict=False):
        found = activity_store.search(query, entity_types=["activity"], mode=mode, limit=3)
        hits.append(activity in [h["id"] for h in found])
    # chance is 3 in 200 and the bodies never say the facts; cosine alone tells "12,400 EUR" from "12,300 EUR"
    # poorly (the attachments' own vector search measures the same), words and the hybrid do it well
    assert float(np.mean(hits)) >= {"hybrid": 0.95, "vector": 0.15, "fulltext": 0.9}[mode]


def test_a_free_text_question_finds_the_email_by_its_attachment(activity_store, export):
    """The NL executor's free-text clause ("activities about X") asks the same store search."""
    from holocrm_core.nlq.executor import semantic_activity_ids

    _, _, truth = export
    facts = truth.filter(pl.col("fact") == "competitor")
    found = [
        a in semantic_activity_ids(activity_store, q, 200)
        for q, a in zip(facts["query"], facts["activity_id"], strict=False)
    ]
    assert float(np.mean(found)) >= 0.9


def test_the_hit_names_the_file_and_page_that_matched(activity_store, export):
    _, _, truth = export
    fact = truth.filter((pl.col("kind") == "pdf") & (pl.col("fact") == "competitor")).row(0, named=True)
    found = activity_store.search(fact["query"], mode="hybrid", limit=5)  # every type, as the CLI's default
    hit = next(h for h in found if h["id"] == fact["activity_id"])
    assert hit["entity_type"] == "activity" and "attachment" in hit["matched_by"]
    assert hit["attachment"]["file_name"] == fact["file_name"] and hit["attachment"]["locator"] == "page 2"
    assert fact["value"] in hit["snippet"] and hit["snippet"].startswith(fact["file_name"])


def test_filters_apply_to_activities_found_by_their_attachments(activity_store, export):
    _, _, truth = export
    fact = truth.filter(pl.col("kind") == "docx").row(0, named=True)
    kind = "email" if int(fact["activity_id"][-5:]) % 2 else "call"
    other = "call" if kind == "email" else "email"
    assert fact["activity_id"] in [
        h["id"] for h in activity_store.search(fact["query"], filters={"activity_type": kind}, limit=3)
    ]
    assert fact["activity_id"] not in [
        h["id"] for h in activity_store.search(fact["query"], filters={"activity_type": other}, limit=10)
    ]


def test_similar_activities_share_their_attachments(activity_store):
    """ACT-00150..159 carry the same terms file (and bodies that differ): fused vectors bring them together."""
    found = [h["id"] for h in activity_store.similar("activity", "ACT-00150", limit=9)]
    shared = {f"ACT-{i:05d}" for i in range(151, 160)}
    assert len(shared & set(found)) >= 6, found


def test_fusing_slice_by_slice_equals_fusing_the_whole_table(monkeypatch):
    from holocrm_core.attachments import index
    from holocrm_core.embedding import DIM

    rng = np.random.default_rng(0)
    n = 50
    embeddings = pl.DataFrame(
        {
            "entity_type": ["activity" if i % 3 else "contact" for i in range(n)],
            "entity_id": [f"E{i}" for i in range(n)],
            "vector": pl.Series(
                rng.normal(size=(n, DIM)).astype(np.float32), dtype=pl.Array(pl.Float32, DIM)
            ),
        }
    )
    chunks = pl.DataFrame(
        {
            "activity_id": ["E1", "E1", "E29", "E47"],
            "vector": pl.Series(
                rng.normal(size=(4, DIM)).astype(np.float32), dtype=pl.Array(pl.Float32, DIM)
            ),
        }
    )
    whole = index.fused_activity_frame(embeddings, chunks)
    monkeypatch.setattr(index, "FUSED_SLICE_ROWS", 7)  # slices that cut between an activity and its chunks
    sliced = pl.concat(list(index.fused_activity_slices(embeddings.lazy(), chunks)))
    assert sliced.equals(whole) and int(sliced["with_attachments"].sum()) == 3
