"""Attachment text made findable: chunks by page/slide/sheet, chunk vectors, the `attachment_chunks` LanceDB table
(vector + native full-text index), hybrid search that names the file and page, and the activity embedding
that fuses an activity's body with its attachments.

Chunks never cross a section (a hit always has one locator) and hold at most ``CHUNK_CHARS`` characters
(about 160 word pieces, inside all-MiniLM-L6-v2's 256-token window, so nothing is cut off by the model),
split at line, then sentence, then word boundaries with a small overlap. The embedded text is prefixed
with the file name and locator ("price_sheet_acme.xlsx, sheet Prices: ...") so a chunk keeps its context.

Fusion: three ways to turn (body vector, chunk vectors) into something an activity is found by, compared
in ``fusion_study`` on the generated facts (recall@3 of the fact's activity among all activities):
``mean`` (one vector: body and the attachments' mean chunk, averaged), ``attention`` (one vector: chunks
weighted by a softmax of their similarity to the body, so off-topic boilerplate counts less) and
``maxsim`` (late interaction: the activity scores the best of its body and its chunks for the query).
Single vectors dilute a fact that sits in one chunk of many; the measured winner is recorded in
``FUSION_CHOICE`` and used by search, and the mean vector is kept as the activity's one "fused" vector
for similar-activity lookups, where no query exists.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

CHUNK_CHARS = 700
OVERLAP_CHARS = 80
# Hybrid = min-max BM25 + VECTOR_WEIGHT x min-max cosine. Swept on generated facts (seed 7, 15 text kinds,
# 180 queries, recall@3): weight 0 -> 0.983, 0.1 -> 0.983, 0.2 -> 0.972, 0.5 -> 0.956, 1.0 -> 0.794; equal-weight
# reciprocal-rank fusion (what entity search uses) -> 0.48: the vector list ranks every templated proposal alike.
# Adding PHRASE_WEIGHT x (weighted share of the query's word pairs found side by side in the chunk):
# 0 -> 0.983 there. On seed 3 (8 files per kind among ~500 boilerplate files, 480 queries) unweighted pairs at
# 0.5 gave 0.935 (names like "Priya Lindqvist" lost to "maker Priya"); pairs weighted by 1 / candidates
# holding them: 0.5 -> 0.963, 1.0 -> 1.000, 2.0 -> 1.000 (seed 7: 0.994 / 1.000 / 1.000). Tuned on seeds 7
# and 3; benchmarks/attachments.py reports seed 11, which no weight was chosen on.
VECTOR_WEIGHT = 0.1
PHRASE_WEIGHT = 1.0
TABLE = "attachment_chunks"
# One fused vector per activity (body + attachments), what similar-activity lookups rank by.
FUSED_TABLE = "activity_fused_embeddings"
DIM = 384
# Chosen by fusion_study on the generated export (see benchmarks/attachments.py output "fusion").
FUSION_CHOICE = "maxsim"

CHUNK_SCHEMA = {
    "chunk_id": pl.String,
    "attachment_id": pl.String,
    "activity_id": pl.String,
    "file_name": pl.String,
    "file_hash": pl.String,
    "kind": pl.String,
    "locator": pl.String,
    "chunk_no": pl.Int64,
    "text": pl.String,
}


def _split(text: str, limit: int) -> list[str]:
    if len(text) <= limit:
        return [text]
    pieces, current = [], ""
    units = re.split(r"(?<=\n)|(?<=[.!?;] )", text)
    for unit in units:
        while len(unit) > limit:  # one enormous line: cut at a word boundary
            cut = unit.rfind(" ", 0, limit)
            cut = cut if cut > limit // 2 else limit
            if current:
                pieces.append(current)
                current = ""
            pieces.append(unit[:cut])
            unit = unit[cut:]
        if len(current) + len(unit) > limit and current:
            pieces.append(current)
            tail = current[-OVERLAP_CHARS:]
            current = tail[tail.find(" ") + 1 :] if " " in tail else ""
        current += unit
    if current.strip():
        pieces.append(current)
    return [p.strip() for p in pieces if p.strip()]


def chunk_sections(sections: list[dict], limit: int = CHUNK_CHARS) -> list[tuple[str, str]]:
    """[(locator, chunk text)] for sections [{locator, text}], never crossing a section."""
    out = []
    for section in sections:
        for piece in _split(section["text"], limit):
            out.append((section["locator"], piece))
    return out


def attachment_chunks(texts: pl.DataFrame) -> pl.DataFrame:
    """One row per chunk of every readable attachment in ``texts`` (the attachment_texts table)."""
    import json

    rows = []
    for row in texts.filter(pl.col("status") == "ok").iter_rows(named=True):
        for number, (locator, piece) in enumerate(chunk_sections(json.loads(row["sections"]))):
            rows.append(
                {
                    "chunk_id": f"{row['attachment_id']}:{number}",
                    "attachment_id": row["attachment_id"],
                    "activity_id": row["activity_id"],
                    "file_name": row["file_name"],
                    "file_hash": row["file_hash"],
                    "kind": row["kind"],
                    "locator": locator,
                    "chunk_no": number,
                    "text": piece,
                }
            )
    return pl.DataFrame(rows, schema=CHUNK_SCHEMA)


def embedded_text(frame: pl.DataFrame) -> list[str]:
    return [f"{f}, {loc}: {t}" for f, loc, t in zip(frame["file_name"], frame["locator"], frame["text"])]


def content_key(frame: pl.DataFrame) -> pl.Series:
    """What a chunk vector depends on: the file's content, the chunk's place and text (not the activity)."""
    return pl.Series(
        [
            hashlib.sha256(f"{h}|{loc}|{t}".encode()).hexdigest()[:24]
            for h, loc, t in zip(frame["file_hash"], frame["locator"], frame["text"])
        ]
    )


@dataclass
class ChunkVectors:
    frame: pl.DataFrame  # CHUNK_SCHEMA + key + vector
    new: int
    reused: int


def embed_chunks(chunks: pl.DataFrame, embedder, previous: pl.DataFrame | None = None) -> ChunkVectors:
    """Vectors for ``chunks``; chunks whose content key is in ``previous`` reuse its vector (no re-embedding)."""
    keys = content_key(chunks) if chunks.height else pl.Series([], dtype=pl.String)
    cache: dict[str, np.ndarray] = {}
    if previous is not None and previous.height and "key" in previous.columns:
        cache = dict(zip(previous["key"].to_list(), previous["vector"].to_list()))
    missing = sorted({k for k in keys.to_list() if k not in cache})
    if missing:
        first = {}
        for k, text in zip(keys.to_list(), embedded_text(chunks)):
            first.setdefault(k, text)
        vectors = embedder.encode([first[k] for k in missing])
        cache.update({k: v for k, v in zip(missing, vectors.tolist())})
    vectors = [cache[k] for k in keys.to_list()]
    dim = getattr(embedder, "dim", 384)
    frame = chunks.with_columns(
        keys.alias("key"), pl.Series("vector", vectors, dtype=pl.Array(pl.Float32, dim))
    )
    return ChunkVectors(frame, new=len(missing), reused=len(set(keys.to_list())) - len(missing))


def write_chunk_table(db, vectors: pl.DataFrame):
    """(Re)create the LanceDB `attachment_chunks` table with a native full-text index on ``text``."""
    from lancedb.index import FTS

    data = vectors.drop("key").to_arrow()
    table = db.create_table(TABLE, data=data, mode="overwrite")
    if vectors.height:
        from holocrm_core.homelock import retry_commit_conflicts

        retry_commit_conflicts(
            lambda: table.create_index("text", config=FTS(with_position=False), replace=True)
        )
    from holocrm_core.lance_versions import compact

    compact(table, TABLE)  # the versions of earlier runs go (pinned and recent ones stay)
    return table


def _vector_hits(table, query: np.ndarray, depth: int) -> list[dict]:
    found = (
        table.search(query.astype(np.float32), vector_column_name="vector")
        .metric("cosine")
        .limit(depth)
        .select(["chunk_id", "_distance"])
        .to_list()
    )
    return [{"chunk_id": r["chunk_id"], "similarity": 1.0 - float(r["_distance"])} for r in found]


def _text_hits(table, text: str, depth: int) -> list[dict]:
    try:
        found = (
            table.search(text, query_type="fts", fts_columns="text")
            .limit(depth)
            .select(["chunk_id", "_score"])
            .to_list()
        )
    except Exception:  # noqa: BLE001 - a query of only stop-words / symbols has no full-text match
        return []
    return [{"chunk_id": r["chunk_id"], "bm25": float(r["_score"])} for r in found]


def search_chunks(
    table,
    text: str,
    embedder,
    limit: int = 10,
    mode: str = "hybrid",
    vector_weight: float | None = None,
    query_vector: np.ndarray | None = None,
) -> list[dict]:
    """Chunks best first: ``{chunk_id, attachment_id, activity_id, file_name, locator, text, score}``.

    ``hybrid`` adds min-max-scaled BM25 and VECTOR_WEIGHT x min-max-scaled cosine: exact prices and names
    are found by their words, and a paraphrase that shares no word is still found by meaning. ``vector``
    scores by cosine, ``fulltext`` by BM25 (raw, comparable with the entity tables' own). ``query_vector``:
    the query already embedded (then ``embedder`` is not used).
    """
    if mode not in ("hybrid", "vector", "fulltext"):
        raise ValueError(f"unknown search mode {mode!r}: use hybrid, vector or fulltext")
    depth = max(limit * 3, 30)
    lists = []
    if mode in ("hybrid", "vector"):
        query = query_vector if query_vector is not None else embedder.encode([text])[0]
        lists.append(("vector", _vector_hits(table, np.asarray(query), depth)))
    if mode in ("hybrid", "fulltext"):
        lists.append(("fulltext", _text_hits(table, text, depth)))
    scores: dict[str, dict] = {}
    weight = VECTOR_WEIGHT if vector_weight is None else vector_weight
    for source, hits in lists:
        values = np.array(
            [h["similarity"] if source == "vector" else h["bm25"] for h in hits], dtype=np.float64
        )
        if mode == "hybrid" and len(values):
            # min-max within each list, BM25 at full weight, the vector list scaled down: exact prices and
            # names decide, meaning breaks ties and finds paraphrases that share no word.
            span = values.max() - values.min()
            values = (values - values.min()) / span if span > 0 else np.ones_like(values)
            values *= weight if source == "vector" else 1.0
        for hit, value in zip(hits, values):
            entry = scores.setdefault(hit["chunk_id"], {"score": 0.0, "matched_by": []})
            entry["score"] += float(value)
            entry["matched_by"].append(source)
    if not scores:
        return []
    quoted = ", ".join("'" + c.replace("'", "''") + "'" for c in scores)
    rows = (
        table.search()
        .where(f"chunk_id IN ({quoted})")
        .select(["chunk_id", "attachment_id", "activity_id", "file_name", "kind", "locator", "text"])
        .limit(len(scores))
        .to_list()
    )
    by_id = {r["chunk_id"]: {k: v for k, v in r.items() if not k.startswith("_")} for r in rows}
    if mode == "hybrid":
        # Word pairs of the query found side by side in the chunk: BM25 scores words alone, so "Valtrix
        # Data" would otherwise lose to a short chunk saying "Valtrix Cloud" (see PHRASE_WEIGHT).
        # A pair found in many candidates ("decision maker") says little: each pair weighs 1 / the number of
        # candidates holding it, so "Priya Lindqvist" outweighs "maker Priya".
        pairs = _pairs(text)
        held = {c: _pairs(by_id[c]["text"]) & pairs for c in scores if c in by_id}
        spread = {p: sum(p in h for h in held.values()) for p in pairs}
        weight = {p: 1.0 / max(spread[p], 1) for p in pairs}
        total = sum(weight.values())
        for chunk_id, found in held.items():
            if total:
                scores[chunk_id]["score"] += PHRASE_WEIGHT * sum(weight[p] for p in found) / total
    best = sorted((c for c in scores if c in by_id), key=lambda c: -scores[c]["score"])[:limit]
    return [{**by_id[c], **scores[c]} for c in best]


_WORD = re.compile(r"[\w][\w,.'-]*[\w]|[\w]")


def _pairs(text: str) -> set[tuple[str, str]]:
    words = [w.lower() for w in _WORD.findall(text)]
    return set(zip(words, words[1:]))


def search_activities(
    table,
    text: str,
    embedder,
    limit: int = 10,
    mode: str = "hybrid",
    vector_weight: float | None = None,
    query_vector: np.ndarray | None = None,
    keep=None,
) -> list[dict]:
    """Activities best first by their best-matching attachment chunk (max-sim), with that chunk as evidence.

    ``keep``: a predicate on the activity id (an entity search's filters); the chunks are searched deeper
    when one is given, since it drops hits after ranking.
    """
    seen: dict[str, dict] = {}
    depth = limit * (20 if keep is not None else 5)
    hits = search_chunks(
        table, text, embedder, limit=depth, mode=mode, vector_weight=vector_weight, query_vector=query_vector
    )
    for hit in hits:
        if keep is None or keep(hit["activity_id"]):
            seen.setdefault(hit["activity_id"], hit)
    return list(seen.values())[:limit]


# ------------------------------------------------------------------------------------------------ fusion


def fuse(
    body: np.ndarray | None, chunks: np.ndarray, method: str = "mean", temperature: float = 0.05
) -> np.ndarray:
    """One unit vector for an activity from its body vector and its attachments' chunk vectors."""
    if chunks.size == 0:
        return body
    if method == "attention" and body is not None:
        weights = np.exp((chunks @ body) / temperature)
        attached = (weights[:, None] * chunks).sum(axis=0) / weights.sum()
    else:
        attached = chunks.mean(axis=0)
    vector = attached if body is None else (body + attached) / 2
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def fused_activity_vectors(
    bodies: dict[str, np.ndarray], chunk_frame: pl.DataFrame, method: str = "mean"
) -> dict[str, np.ndarray]:
    """{activity_id: fused vector} for every activity in ``bodies`` (activities without attachments keep
    their body vector)."""
    out = dict(bodies)
    if chunk_frame.height == 0:
        return out
    for (activity,), group in chunk_frame.group_by(["activity_id"]):
        chunks = np.asarray(group["vector"].to_list(), dtype=np.float32)
        out[activity] = fuse(bodies.get(activity), chunks, method)
    return out


def fused_activity_frame(
    embeddings: pl.DataFrame | None, chunk_vectors: pl.DataFrame | None, method: str = "mean"
) -> pl.DataFrame:
    """{activity_id, vector, with_attachments} for every activity of the embeddings frame (entity_type,
    entity_id, vector), fused with its attachment chunk vectors; an empty frame of that schema when the
    export has no activities (or no embeddings at all)."""
    schema = {"activity_id": pl.String, "vector": pl.Array(pl.Float32, DIM), "with_attachments": pl.Boolean}
    if embeddings is None or embeddings.is_empty():
        return pl.DataFrame(schema=schema)
    activities = embeddings.filter(pl.col("entity_type") == "activity")
    if activities.is_empty():  # contacts-only or deals-only exports: nothing to fuse
        return pl.DataFrame(schema=schema)
    ids = activities.get_column("entity_id")
    chunks = chunk_vectors if chunk_vectors is not None else pl.DataFrame(schema={"activity_id": pl.String})
    # a chunk of an activity that is not embedded (rejected at staging) fuses into nothing
    chunks = chunks.filter(pl.col("activity_id").is_in(ids.implode())) if chunks.height else chunks
    # Column-wise: only the activities with attachments are fused (one per-activity array each); every other
    # row keeps its body vector as it is. A dict of 500k arrays written back through Python lists held 8 GB
    # at 100k contacts (benchmarks/scale.py).
    matrix = np.array(activities.get_column("vector").to_numpy(), dtype=np.float32, copy=True).reshape(
        len(activities), -1
    )
    with_files = np.zeros(len(activities), dtype=bool)
    if chunks.height:
        position = {a: i for i, a in enumerate(ids.to_list())}
        attached_ids = set(chunks.get_column("activity_id").unique().to_list())
        bodies = {a: matrix[position[a]] for a in attached_ids}
        for activity, vector in fused_activity_vectors(bodies, chunks, method=method).items():
            matrix[position[activity]] = vector
            with_files[position[activity]] = True
    return pl.DataFrame(
        {
            "activity_id": ids,
            "vector": pl.Series("vector", matrix, dtype=pl.Array(pl.Float32, DIM)),
            "with_attachments": with_files,
        },
        schema=schema,
    )


FUSED_SLICE_ROWS = 500_000  # embeddings rows per slice when fusing a batch larger than memory


def fused_activity_slices(embeddings: pl.LazyFrame, chunk_vectors: pl.DataFrame | None, method: str = "mean"):
    """``fused_activity_frame`` over a lazy embeddings table, one slice of ``FUSED_SLICE_ROWS`` rows at a
    time (5M activity vectors of a 1M-contact export are 7.7 GB): yields the fused frames in the table's
    row order; their concatenation equals ``fused_activity_frame`` of the whole table."""
    total = int(embeddings.select(pl.len()).collect().item())
    columns = ["entity_type", "entity_id", "vector"]
    for offset in range(0, total, FUSED_SLICE_ROWS):
        part = embeddings.slice(offset, FUSED_SLICE_ROWS).select(columns)
        frame = part.filter(pl.col("entity_type") == "activity").collect()
        if frame.height:
            fused = fused_activity_frame(frame, chunk_vectors, method=method)
            del frame  # not kept while the consumer writes the fused slice (0.8 GB a slice at 1M)
            yield fused
            del fused


def write_fused_table(db, frames: pl.DataFrame | Iterable[pl.DataFrame]):
    """(Re)create the LanceDB table of fused activity vectors from one frame or a stream of frames (empty
    when the export has no activities), then remove the versions no reader needs
    (``holocrm_core.lance_versions``: the last run's vectors, 7.7 GB at 1M contacts, are otherwise kept 7 days).

    A stream is written in one commit, batch by batch (only the slice being written is in memory): one
    version, and files at LanceDB's full size, so the cleanup has nothing to compact (500k-row appends were
    one version each, and compacting them rewrote the whole table)."""
    from holocrm_core.lance_versions import compact

    if isinstance(frames, pl.DataFrame):
        frames = [frames]
    schema = fused_activity_frame(None, None).to_arrow().schema

    def batches():
        for frame in frames:
            table = frame.to_arrow().cast(schema)
            del frame
            yield from table.to_batches()
            del table  # before the next slice is computed: one slice in memory at a time

    reader = pa.RecordBatchReader.from_batches(schema, batches())
    table = db.create_table(FUSED_TABLE, data=reader, mode="overwrite")
    compact(table, FUSED_TABLE)
    return table


def fusion_study(
    bodies: dict[str, np.ndarray], chunk_frame: pl.DataFrame, facts: pl.DataFrame, embedder, k: int = 3
) -> dict[str, dict]:
    """Recall@k of each fusion method: a fact's query must rank its activity in the top k among all
    activities in ``bodies`` (plus any that only have attachments). Returns {method: {kind: recall}}."""
    queries = embedder.encode(facts["query"].to_list())
    ids = sorted(set(bodies) | set(chunk_frame["activity_id"].to_list()))
    position = {a: i for i, a in enumerate(ids)}
    dim = queries.shape[1]
    body_matrix = np.stack([bodies.get(a, np.zeros(dim, np.float32)) for a in ids]).astype(np.float32)
    results: dict[str, dict] = {}
    for method in ("body_only", "mean", "attention", "maxsim"):
        if method == "maxsim":
            scores = queries @ body_matrix.T
            chunk_vectors = np.asarray(chunk_frame["vector"].to_list(), dtype=np.float32)
            chunk_scores = queries @ chunk_vectors.T
            owner = np.array([position[a] for a in chunk_frame["activity_id"].to_list()])
            for j in range(scores.shape[0]):
                np.maximum.at(scores[j], owner, chunk_scores[j])
        else:
            fused = bodies if method == "body_only" else fused_activity_vectors(bodies, chunk_frame, method)
            matrix = np.stack([fused.get(a, np.zeros(dim, np.float32)) for a in ids]).astype(np.float32)
            scores = queries @ matrix.T
        top = np.argsort(-scores, axis=1)[:, :k]
        hit = [position[a] in row for a, row in zip(facts["activity_id"].to_list(), top)]
        frame = facts.with_columns(pl.Series("hit", hit))
        results[method] = {
            "all": round(float(np.mean(hit)), 4),
            **{
                kind: round(float(v), 4)
                for kind, v in frame.group_by("kind").agg(pl.col("hit").mean()).iter_rows()
            },
        }
    return results


def retrieval_study(
    table,
    facts: pl.DataFrame,
    embedder,
    k: int = 3,
    modes: tuple[str, ...] = ("hybrid", "vector", "fulltext"),
) -> dict[str, dict]:
    """Recall@k of search_activities per mode and kind: does a fact's query rank its activity in the top k?
    BM25 alone (``fulltext``) is the plain baseline, ``vector`` the embedding alone."""
    results = {}
    for mode in modes:
        hits = []
        for query, activity in zip(facts["query"].to_list(), facts["activity_id"].to_list()):
            found = [h["activity_id"] for h in search_activities(table, query, embedder, limit=k, mode=mode)]
            hits.append(activity in found)
        frame = facts.with_columns(pl.Series("hit", hits))
        results[mode] = {
            "all": round(float(np.mean(hits)), 4) if hits else 0.0,
            **{
                kind: round(float(v), 4)
                for kind, v in frame.group_by("kind").agg(pl.col("hit").mean()).sort("kind").iter_rows()
            },
        }
    return results


def search_attachments_at(
    uri: str, text: str, limit: int = 5, mode: str = "hybrid", embedder=None
) -> list[dict]:
    """search_chunks on the `attachment_chunks` table under the LanceDB ``uri`` ([] when it was never built):
    the entry point for the CLI, the API and hybrid entity search."""
    from holocrm_core.settings import connect_lancedb

    db = connect_lancedb(uri)
    if TABLE not in db.table_names():
        return []
    if embedder is None:
        from holocrm_core.embedding import load_embedder

        embedder = load_embedder()
    return search_chunks(db.open_table(TABLE), text, embedder, limit=limit, mode=mode)
