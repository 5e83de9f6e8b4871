"""The similarity store: one LanceDB table per entity type (contact, company, deal, activity).

Each row is an entity's document (its whole text, scalar filter columns) with its full 384-dim vector, the
96-dim spectral prefix and, for long texts, one vector per overlapping chunk with the chunk's character
span. ``sync`` upserts by entity id and a hash of the row (text + filters), deletes entities that are gone,
and maintains a full-text index over the whole text and a scalar index on the id. Every sync leaves a
table version; ``versions()`` names them and ``checkout`` (or the ``version`` argument) pins a reader to
them, which is how a server keeps answering from the index it loaded.

Queries: ``similar`` (entities like this one), ``search_vector``, and ``search`` from free text in
``vector`` (alias ``semantic``), ``fulltext`` or ``hybrid`` mode (reciprocal rank fusion of the two lists),
each with scalar prefilters such as industry, stage, owner; every search hit carries a snippet (the matched
chunk, or the passage around the query's words).

Vectors are ranked in memory by the one vector engine, ``holocrm_core.vectors``: on its first vector query
a store handle reads the ids, vectors, prefixes, chunk vectors and filter columns of the table version it
reads, once (``EntityVectors``); filters are boolean masks over dictionary-encoded columns.

The table layout (columns, ``sync`` / ``search`` / ``texts``) is meant to be reused by other document
tables (attachment chunks): one row per document, whole text full-text indexed, vectors ranked here.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import mmap
import os
import shutil
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from holocrm_core.embedding import DIM, MODEL_NAME, TIERS, SpectralRotation
from holocrm_core.id_index import IdIndex, IdList, encodable, id_bytes
from holocrm_core.text import ENTITY_TABLES, FILTER_COLUMNS, snippet_around, snippet_in_span, snippet_of_span
from holocrm_core.vectors import VectorIndex

os.environ.setdefault("LANCEDB_LOG", "error")

COARSE_SCALE = 96
ROTATION_TABLE = "spectral_rotation"
# From this size the full vectors (used for the rerank only) are held as float16: half the memory, cosine
# error about 1e-3.
_log = logging.getLogger("holocrm.store")
FLOAT16_MIN_ROWS = 500_000
MANY_CATEGORIES = 4096  # a filter column with this many distinct values is held as byte arrays
SAVED_VECTORS_FORMAT = 1  # EntityVectors.save / open: bump when the folder's layout or meaning changes
SEARCH_MODE_ALIASES = {"semantic": "vector", "text": "fulltext", "keyword": "fulltext"}
CHUNK_VECTORS = pl.List(pl.Array(pl.Float32, DIM))
CHUNK_SPANS = pl.List(pl.Array(pl.Int32, 2))
RRF_K = 60  # reciprocal rank fusion constant (Cormack et al.); damps the weight of the top ranks
# What a result row carries: the id, a display name and the filter fields. Not the text: reading it for every
# candidate costs more than the vector search itself (measured: 8.8 vs 5.2 ms per query at 30k rows).
RESULT_COLUMNS = ["entity_id", *FILTER_COLUMNS]
SEARCH_CACHE_SIZE = 2048  # searches remembered per pinned store (about 10 rows each)
# An index of the static tier answers vector and hybrid searches in two stages: its own best RERANK_DEPTH
# candidates, re-ranked by MiniLM, which embeds only those texts (cached by content). Measured on the YC
# search set (benchmarks/embedding_tiers.py), P@10 hybrid / vector: static alone 0.444 / 0.438, its top 30
# re-ranked 0.516 / 0.466, top 100 0.525 / 0.494, MiniLM 0.522 / 0.506; the top 30 of the hybrid list
# re-ranked in both modes (RERANK_POOL) 0.516 / 0.516. HOLOCRM_STATIC_RERANK=0 turns it off.
RERANK_DEPTH = 30
# Where the re-rank's candidates come from: "hybrid" (the static vectors' and BM25's lists fused by rank, in
# vector mode too: MiniLM orders them by meaning, the words only widen what it sees) or "mode" (the mode's own
# list). See benchmarks/embedding_tiers.py (static_reranked_*_pool_*).
RERANK_POOL = "hybrid"
MERGE_SLICE_ROWS = 50_000  # rows per LanceDB merge_insert of a shard (its join memory pool is 300 MB)
RERANK_CACHE_SIZE = 50_000  # MiniLM vectors of candidate texts kept per process (1.5 KB each)
_RERANK_CACHE: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
_RERANK_LOCK = threading.Lock()


def model_tier(model_id: str) -> str:
    """The embedding tier a recorded model id belongs to: ``static`` (model2vec), ``minilm`` (the packaged
    MiniLM), else the id itself (a model loaded from another path)."""
    from holocrm_core.static_embedding import STATIC_PREFIX

    if model_id.startswith(f"{STATIC_PREFIX}:"):
        return "static"
    return "minilm" if model_id == MODEL_NAME else model_id


class EmbeddingModelMismatch(RuntimeError):
    """Queries would be embedded by another model (tier) than the one the index's vectors came from.

    ``indexed`` / ``query``: the two model ids; ``indexed_tier`` / ``query_tier``: their tiers (``model_tier``).
    The API answers it 409 ``embedding_model_mismatch`` with the four fields; the CLI exits 1 with the message.
    """

    def __init__(self, indexed: str, query: str):
        self.indexed, self.query = indexed, query
        self.indexed_tier, self.query_tier = model_tier(indexed), model_tier(query)
        super().__init__(
            f"the similarity index holds vectors of the {self.indexed_tier} tier ({indexed!r}) but queries "
            f"would be embedded with the {self.query_tier} tier ({query!r}): use the tier the index was built "
            "with (HOLOCRM_EMBEDDER=static for a model2vec index, minilm otherwise) or rebuild the index under "
            "the new tier (materialize embeddings and similarity_index)"
        )


@dataclass
class SyncReport:
    entity_type: str
    rows: int
    new: int
    updated: int
    reused: int
    deleted: int
    version: int
    ann_index: str | None
    seconds: float

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def _quote(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def filter_sql(filters: dict | None) -> str | None:
    """{"industry": "fintech", "stage": ["won", "lost"]} -> SQL for LanceDB's ``where``.

    Only the known scalar columns are accepted (a filter on anything else is a caller error, not a silent
    no-op); a list means "any of".
    """
    if not filters:
        return None
    allowed = set(FILTER_COLUMNS) | {"entity_id"}
    clauses = []
    for column, value in filters.items():
        if column not in allowed:
            raise ValueError(f"cannot filter on {column!r}: use one of {sorted(allowed)}")
        if value is None:
            clauses.append(f"{column} IS NULL")
        elif isinstance(value, (list, tuple, set)):
            values = list(value)
            if not values:
                clauses.append("false")
            else:
                clauses.append(f"{column} IN ({', '.join(_quote(v) for v in values)})")
        else:
            clauses.append(f"{column} = {_quote(value)}")
    return " AND ".join(clauses)


def _row_hash(frame: pl.DataFrame) -> pl.Series:
    """A hash of what the index stores for a row: text and filter values (an owner change must update)."""
    parts = [pl.col("content_hash")] + [pl.col(c).fill_null("\x00") for c in FILTER_COLUMNS]
    hashes = [pl.Series("row_hash", [], pl.String)]
    for start in range(
        0, frame.height, ROW_HASH_SLICE
    ):  # Python strings slice by slice (1.5 GB at once at 1M)
        joined = frame.slice(start, ROW_HASH_SLICE).select(pl.concat_str(parts, separator="\x1f").alias("k"))
        keys = joined.get_column("k").to_list()
        hashes.append(pl.Series("row_hash", [hashlib.sha1(k.encode()).hexdigest() for k in keys], pl.String))
    return pl.concat(hashes)


ROW_HASH_SLICE = 100_000


def _arrow_table(
    rows: pl.DataFrame, vectors: np.ndarray, coarse: np.ndarray, rotation_version: str
) -> pa.Table:
    columns = {
        c: rows.get_column(c).to_arrow()
        for c in ["entity_id", "content_hash", "row_hash", "text", *FILTER_COLUMNS]
    }
    columns = {k: v.cast(pa.string()) for k, v in columns.items()}
    columns["vector"] = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), DIM)
    columns["vector_96"] = pa.FixedSizeListArray.from_arrays(
        pa.array(coarse.reshape(-1), pa.float32()), COARSE_SCALE
    )
    columns["rotation_version"] = pa.array([rotation_version] * len(rows), pa.string())
    chunk_type = pa.list_(pa.list_(pa.float32(), DIM))
    # not named "*vector*": LanceDB would take a list column so named for a fixed-size vector column
    columns["passages"] = rows.get_column("chunk_vectors").to_arrow().cast(chunk_type)
    columns["chunk_spans"] = rows.get_column("chunk_spans").to_arrow().cast(pa.list_(pa.list_(pa.int32(), 2)))
    return pa.table(columns)


WRITE_BATCH_ROWS = 50_000  # rows per Arrow record batch streamed into LanceDB


class _Rows:
    """The rows of one entity type within a sync or shard merge: positions into the documents and the
    vector matrices, never copied whole. LanceDB receives them as a stream of record batches of
    ``WRITE_BATCH_ROWS`` rows (``reader``): at 1M contacts a shard's 780k rows built as one Arrow table, then
    filtered to the new ones, held three copies of its vectors and texts (8.2-9.2 GB a shard)."""

    def __init__(
        self,
        documents: pl.DataFrame,
        matrix: np.ndarray,
        coarse: np.ndarray,
        positions: np.ndarray,
        rotation_version: str,
    ):
        self.documents, self.matrix, self.coarse = documents, matrix, coarse
        self.positions, self.rotation_version = positions, rotation_version

    def __len__(self) -> int:
        return len(self.positions)

    def keys(self) -> pl.DataFrame:
        """entity_id and row_hash of these rows, in their order."""
        return self.documents.select("entity_id", "row_hash")[self.positions]

    def table(self, subset: np.ndarray | None = None) -> pa.Table:
        """The Arrow table of these rows (``subset``: indexes into them), built at once: for small slices."""
        at = self.positions if subset is None else self.positions[subset]
        return _arrow_table(self.documents[at], self.matrix[at], self.coarse[at], self.rotation_version)

    def reader(self, subset: np.ndarray | None = None) -> pa.RecordBatchReader:
        """The rows (``subset``: indexes into them) as a stream of record batches built one at a time."""
        at = self.positions if subset is None else self.positions[subset]
        schema = _arrow_table(
            self.documents[at[:0]], self.matrix[at[:0]], self.coarse[at[:0]], self.rotation_version
        ).schema

        def batches():
            for start in range(0, len(at), WRITE_BATCH_ROWS):
                part = at[start : start + WRITE_BATCH_ROWS]
                table = _arrow_table(
                    self.documents[part], self.matrix[part], self.coarse[part], self.rotation_version
                )
                yield from table.cast(schema).to_batches()

        return pa.RecordBatchReader.from_batches(schema, batches())

    def data(self, subset: np.ndarray | None = None) -> pa.Table | pa.RecordBatchReader:
        """What a LanceDB write takes: a stream, or the (empty) table when there is nothing to stream (a
        table created from an empty stream would have no schema)."""
        size = len(self.positions) if subset is None else len(self.positions[subset])
        return self.reader(subset) if size else self.table(subset)


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return (vector / norm if norm > 0 else vector).astype(np.float32)


def _release_tags(tags: dict[str, tuple[object, str, int]]) -> None:
    """Drop the pins of a store's ``hold`` (also run when the store is garbage collected)."""
    from holocrm_core.lance_versions import unpin

    for table, tag, _ in tags.values():
        unpin(table, tag)


def _attachment_table_names() -> tuple[str, str]:
    """(the attachment chunk table, the fused activity vector table), named once in attachments.index."""
    from holocrm_core.attachments.index import FUSED_TABLE, TABLE

    return TABLE, FUSED_TABLE


def _merge_best(rows: list[dict], attached: list[dict], key: str) -> list[dict]:
    """Activity rows of one ranked list, each activity scored by the best of its body and its attachments
    (max-sim): an attachment that scores higher replaces the body's score and becomes the hit's evidence."""
    by_id = {row["id"]: row for row in rows}
    for hit in attached:
        row = by_id.get(hit["id"])
        if row is None:
            rows.append(hit)
            by_id[hit["id"]] = hit
        elif hit[key] > row[key]:
            row.update({key: hit[key], "attachment": hit["attachment"]})
            row.pop("span", None)
    return rows


def _as_text(value) -> str:
    """A filter value as the index stores it (every filter column is a string column)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class EntityVectors:
    """One entity table held in memory for vector queries: ids, vectors, 96-dim prefixes, filter columns.

    Read once per table version from LanceDB (``load``); filter columns are dictionary-encoded so a filter
    is an integer comparison over the rows. Long texts add one row per chunk (``chunk_owner`` points to the
    entity's position, ``chunk_spans`` to the characters of its text), searched by free-text queries only.
    """

    def __init__(
        self,
        ids: list[str],
        vectors: np.ndarray,
        coarse: np.ndarray,
        codes: dict[str, np.ndarray],
        categories: dict[str, list],
        chunk_vectors: np.ndarray | None = None,
        chunk_owner: np.ndarray | None = None,
        chunk_spans: np.ndarray | None = None,
        positions: IdIndex | None = None,
        index: VectorIndex | None = None,
    ):
        """``ids``: a list of str (held as byte arrays when they allow it: ``holocrm_core.id_index``), or an
        ``IdList`` with its ``positions`` (``open``). ``index``: the vector index already built (``open``)."""
        if isinstance(ids, IdList):
            self.ids, self.positions = ids, positions if positions is not None else IdIndex.build(ids.values)
        elif encodable(ids):
            values = id_bytes(ids)
            self.ids, self.positions = IdList(values), IdIndex.build(values)
        else:  # an id that is not a plain string: Python containers, as before
            self.ids, self.positions = ids, {entity_id: i for i, entity_id in enumerate(ids)}
        self.vectors = vectors
        self.coarse = (  # a memory-mapped array (``open``) stays mapped
            coarse
            if coarse.dtype == np.float32 and coarse.flags.c_contiguous
            else np.ascontiguousarray(coarse, dtype=np.float32)
        )
        self.index = index if index is not None else VectorIndex(vectors, self.coarse, quantized=True)
        self.codes = codes
        # a filter column's distinct values (code -> value) and value -> code; a column of many values (the
        # contact_id or name of 1M contacts) as byte arrays, like the ids (about 180 MB of Python strings
        # and dicts per such column otherwise)
        self.categories, self.lookup = {}, {}
        for column, values in categories.items():
            if isinstance(values, tuple):  # (IdList, IdIndex): ``open``
                self.categories[column], self.lookup[column] = values
            elif len(values) >= MANY_CATEGORIES and encodable(values):
                held = id_bytes(values)
                self.categories[column], self.lookup[column] = IdList(held), IdIndex.build(held)
            else:
                self.categories[column] = values
                self.lookup[column] = {v: i for i, v in enumerate(values)}
        self.chunk_owner = np.zeros(0, dtype=np.int64) if chunk_owner is None else chunk_owner
        self.chunk_spans = np.zeros((0, 2), dtype=np.int64) if chunk_spans is None else chunk_spans
        self.chunk_index = (
            VectorIndex(chunk_vectors) if chunk_vectors is not None and len(chunk_vectors) else None
        )

    @classmethod
    def load(cls, table, rows: int) -> EntityVectors:
        import pyarrow.compute as pc

        columns = ["entity_id", "vector", "vector_96", *FILTER_COLUMNS]
        has_chunks = "passages" in table.schema.names
        if has_chunks:
            columns += ["passages", "chunk_spans"]
        data = table.search().select(columns).limit(max(rows, 1)).to_arrow()
        n = data.num_rows
        dtype = np.float16 if n >= FLOAT16_MIN_ROWS else np.float32
        vectors = np.empty((n, DIM), dtype=dtype)
        coarse = np.empty((n, COARSE_SCALE), dtype=np.float32)
        for column, out, width in (("vector", vectors, DIM), ("vector_96", coarse, COARSE_SCALE)):
            start = 0
            for chunk in data.column(column).chunks:  # chunk by chunk: no second full-size float32 copy
                block = chunk.flatten().to_numpy(zero_copy_only=False).reshape(-1, width)
                out[start : start + len(block)] = block
                start += len(block)
        codes, categories = {}, {}
        for column in FILTER_COLUMNS:
            encoded = data.column(column).dictionary_encode().combine_chunks()
            codes[column] = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int32)
            categories[column] = encoded.dictionary.to_pylist()
        chunk_vectors = chunk_owner = chunk_spans = None
        if has_chunks:
            lists = data.column("passages").combine_chunks()
            counts = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False)
            if counts.sum():
                chunk_owner = np.repeat(np.arange(n), counts)
                chunk_vectors = lists.flatten().flatten().to_numpy(zero_copy_only=False).reshape(-1, DIM)
                chunk_vectors = chunk_vectors.astype(np.float32)
                spans = data.column("chunk_spans").combine_chunks().flatten().flatten()
                chunk_spans = spans.to_numpy(zero_copy_only=False).reshape(-1, 2).astype(np.int64)
        ids = data.column("entity_id").to_pylist()
        del data
        return cls(ids, vectors, coarse, codes, categories, chunk_vectors, chunk_owner, chunk_spans)

    # -- written once per table version, memory-mapped by every server process ------------------------------
    def save(self, folder: Path) -> None:
        """Write the arrays, the ids and the built index into ``folder`` (a new folder: ``open`` reads it).

        Raises TypeError when the ids are not held as byte arrays (an id that is not a plain string)."""
        import faiss

        if not isinstance(self.ids, IdList):
            raise TypeError("only string ids can be saved")
        folder.mkdir(parents=True)
        arrays = {
            "vectors": self.vectors,
            "coarse": self.coarse,
            "ids": self.ids.values,
            "sorted_ids": self.positions.sorted_ids,
            "order": self.positions.order,
            "chunk_owner": self.chunk_owner,
            "chunk_spans": self.chunk_spans,
            **{f"code.{column}": codes for column, codes in self.codes.items()},
        }
        small = {}
        for column, values in self.categories.items():
            if isinstance(values, IdList):
                arrays[f"values.{column}"] = values.values
                arrays[f"values_sorted.{column}"] = self.lookup[column].sorted_ids
                arrays[f"values_order.{column}"] = self.lookup[column].order
            else:
                small[column] = values
        if self.chunk_index is not None:
            arrays["chunk_vectors"] = self.chunk_index.vectors
        for name, array in arrays.items():
            np.save(folder / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
        if self.index.coarse_index is not None:
            faiss.write_index(self.index.coarse_index, str(folder / "index.faiss"))
        meta = {
            "format": SAVED_VECTORS_FORMAT,
            "columns": list(self.categories),
            "categories": small,
            "index": self.index.saved_state(),
        }
        (folder / "meta.json").write_text(json.dumps(meta))

    @classmethod
    def open(cls, folder: Path) -> EntityVectors:
        """What ``save`` wrote, the arrays memory-mapped read-only (every process that opens the folder shares
        their pages through the page cache) and the faiss index read back. ValueError when the folder is not
        of this format."""
        import faiss

        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("format") != SAVED_VECTORS_FORMAT:
            raise ValueError(f"{folder}: not a saved-vectors folder of format {SAVED_VECTORS_FORMAT}")

        def mapped(name: str) -> np.ndarray:
            array = np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
            # in the page cache and this process's page tables before the first query (one read per page)
            with contextlib.suppress(AttributeError, OSError, ValueError):
                array._mmap.madvise(mmap.MADV_WILLNEED)
            if array.size:
                int(np.asarray(array).reshape(-1).view(np.uint8)[:: mmap.PAGESIZE].sum())
            return array

        vectors, coarse = mapped("vectors"), mapped("coarse")
        coarse_index = None
        if (folder / "index.faiss").exists():
            coarse_index = faiss.read_index(str(folder / "index.faiss"))
        index = VectorIndex.restore(vectors, coarse, coarse_index, meta["index"])
        codes = {column: mapped(f"code.{column}") for column in meta["columns"]}
        categories = {
            column: meta["categories"][column]
            if column in meta["categories"]
            else (
                IdList(mapped(f"values.{column}")),
                IdIndex(mapped(f"values_sorted.{column}"), mapped(f"values_order.{column}")),
            )
            for column in meta["columns"]
        }
        chunk_vectors = mapped("chunk_vectors") if (folder / "chunk_vectors.npy").exists() else None
        return cls(
            IdList(mapped("ids")),
            vectors,
            coarse,
            codes,
            categories,
            None if chunk_vectors is None else np.asarray(chunk_vectors),
            np.asarray(mapped("chunk_owner")),
            np.asarray(mapped("chunk_spans")),
            positions=IdIndex(mapped("sorted_ids"), mapped("order")),
            index=index,
        )

    def __len__(self) -> int:
        return len(self.ids)

    def position_of(self, entity_id: str, entity_type: str = "entity") -> int:
        position = self.positions.get(entity_id)
        if position is None:
            raise KeyError(f"no {entity_type} with id {entity_id!r} in the index")
        return position

    def vector(self, position: int) -> np.ndarray:
        return self.vectors[position].astype(np.float32)

    def mask(self, filters: dict | None) -> np.ndarray | None:
        """Rows passing ``filters`` (the semantics of ``filter_sql``), or None for no filter."""
        if not filters:
            return None
        filter_sql(filters)  # the same validation as the LanceDB path: unknown columns are an error
        mask = np.ones(len(self), dtype=bool)
        for column, value in filters.items():
            if column == "entity_id":
                values = list(value) if isinstance(value, (list, tuple, set)) else [value]
                keep = np.zeros(len(self), dtype=bool)
                keep[[self.positions[v] for v in values if v in self.positions]] = True
            elif value is None:
                keep = self.codes[column] == -1
            else:
                values = list(value) if isinstance(value, (list, tuple, set)) else [value]
                lookup = self.lookup[column]
                # a lookup table indexed by code (its last slot, False, is where null's -1 lands)
                wanted = np.zeros(len(lookup) + 1, dtype=bool)
                wanted[[lookup[_as_text(v)] for v in values if _as_text(v) in lookup]] = True
                keep = wanted[self.codes[column]]
            mask &= keep
        return mask

    def nearest(
        self,
        vector: np.ndarray,
        coarse_query: np.ndarray,
        limit: int,
        mask: np.ndarray | None = None,
        exclude: list[int] = (),
    ) -> tuple[np.ndarray, np.ndarray]:
        """(positions, cosine similarities) of the ``limit`` rows nearest to ``vector``, best first."""
        return self.index.search(vector, limit, coarse_query, mask, exclude)

    def nearest_passages(
        self, vector: np.ndarray, coarse_query: np.ndarray, limit: int, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, list]:
        """Like ``nearest`` over whole entities and the chunks of long texts: each entity counts once, with
        its best-matching part; the third list holds that chunk's (start, end) in the text, or None."""
        found, similarity = self.nearest(vector, coarse_query, limit, mask)
        best = {int(p): (float(s), None) for p, s in zip(found.tolist(), similarity.tolist())}
        if self.chunk_index is not None:
            chunk_mask = None if mask is None else mask[self.chunk_owner]
            chunks, scores = self.chunk_index.search(vector, 3 * limit, mask=chunk_mask)
            for c, score in zip(chunks.tolist(), scores.tolist()):
                owner = int(self.chunk_owner[c])
                if owner not in best or score > best[owner][0]:
                    best[owner] = (float(score), tuple(int(x) for x in self.chunk_spans[c]))
        ranked = sorted(best.items(), key=lambda item: -item[1][0])[:limit]
        positions = np.array([p for p, _ in ranked], dtype=np.int64)
        scores = np.array([v[0] for _, v in ranked], dtype=np.float32)
        return positions, scores, [v[1] for _, v in ranked]

    def rows(self, entity_type: str, positions: np.ndarray, similarity: np.ndarray) -> list[dict]:
        # each filter column's codes gathered once for all rows (numpy scalars one by one cost 0.6 ms a query)
        codes = {column: self.codes[column][positions].tolist() for column in FILTER_COLUMNS}
        out = []
        for i, (position, score) in enumerate(zip(positions.tolist(), similarity.tolist())):
            row = {}
            for column in FILTER_COLUMNS:
                code = codes[column][i]
                row[column] = self.categories[column][code] if code >= 0 else None
            row["id"] = self.ids[position]
            row["entity_type"] = entity_type
            row["similarity"] = float(score)
            out.append(row)
        return out


NO_VECTOR = "every document needs a vector: embed the documents before syncing the index"
VECTOR_SLICE_ROWS = 50_000  # vectors copied into the aligned matrix this many rows at a time


def _aligned(
    documents: pl.DataFrame, vectors: pl.DataFrame | pl.LazyFrame | np.ndarray, model: str = ""
) -> tuple[pl.DataFrame, np.ndarray, str]:
    """The documents with their chunk columns, the matrix of their vectors row for row, and the embedding
    model (tier) the vectors were made with (the frame's ``model`` column, else ``model``).

    ``vectors`` may be a ``pl.LazyFrame`` (the similarity_index asset's scan of its embeddings partition):
    its small columns are collected, and the vectors go straight into the matrix slice by slice
    (``VECTOR_SLICE_ROWS``), so the whole vector column never exists twice. At 1M contacts a shard's vectors
    are 1.2 GB: held as a frame and again as the matrix, they were a quarter of the step's 4.8 GB peak."""
    chunk_columns = ["chunk_vectors", "chunk_spans"]
    if isinstance(vectors, np.ndarray):
        matrix = np.asarray(vectors, dtype=np.float32)
    else:
        lazy = vectors.lazy()
        names = lazy.collect_schema().names()
        keys = ["entity_type", "entity_id"]
        extra = [c for c in chunk_columns if c in names]
        # not the vector column: even its null flags decode it whole (the pass below checks them)
        small = lazy.select(*keys, *extra, *(["model"] if "model" in names else [])).collect()
        if "model" in small.columns:
            models = small.get_column("model").drop_nulls().unique().to_list()
            if len(models) > 1:
                raise ValueError(
                    f"the vectors come from {len(models)} embedding models ({', '.join(sorted(models))}): "
                    "embed every document with one tier before syncing the index"
                )
            model = models[0] if models else model
        # Row positions by a join of the keys only: joining the vectors themselves copied them, and the
        # matrix of the join copied them again (2 x 1.2 GB for a 1M-contact shard)
        at = (
            documents.select(keys)
            .with_row_index("_document")
            .join(small.select(keys).with_row_index("_vector"), on=keys, how="left")
            .sort("_document")
            .get_column("_vector")
        )
        if len(at) != len(documents):
            raise ValueError(f"{len(documents)} documents but {len(at)} vectors: an entity has two vectors")
        missing = at.is_null().to_numpy()
        at = at.fill_null(0).to_numpy().astype(np.int64)
        if missing.any():
            raise ValueError(NO_VECTOR)
        matrix = _gather_vectors(lazy, at, len(small))
        if len(extra) == 2:
            documents = documents.with_columns(small.select(chunk_columns)[at])
        del small
    if len(matrix) != len(documents):
        raise ValueError(f"{len(documents)} documents but {len(matrix)} vectors")
    if "chunk_vectors" not in documents.columns:
        documents = documents.with_columns(
            pl.lit(None, dtype=CHUNK_VECTORS).alias("chunk_vectors"),
            pl.lit(None, dtype=CHUNK_SPANS).alias("chunk_spans"),
        )
    return documents, matrix, model


def _gather_vectors(vectors: pl.LazyFrame, at: np.ndarray, rows: int) -> np.ndarray:
    """``matrix[i]`` = the ``vector`` of row ``at[i]`` of ``vectors`` (``rows`` rows), read in one ordered pass
    of ``VECTOR_SLICE_ROWS``-row batches into the one matrix (each batch's vectors scattered to the documents
    that use them). One pass: slicing the scan at each offset decoded every Parquet row group about three
    times (a 1M-contact shard's unchanged re-run took 109 s instead of 70 s)."""
    if not len(at):
        return np.zeros((0, DIM), dtype=np.float32)
    matrix = None
    document_of = np.full(rows, -1, dtype=np.int64)  # the document each vector row serves (-1: none)
    document_of[at] = np.arange(len(at))
    start = 0
    for part in vectors.select("vector").collect_batches(chunk_size=VECTOR_SLICE_ROWS, maintain_order=True):
        target = document_of[start : start + len(part)]
        start += len(part)
        used = target >= 0
        if not used.any():
            continue
        column = part.get_column("vector")
        if column.null_count() and column.is_null().to_numpy()[used].any():
            raise ValueError(NO_VECTOR)
        values = np.asarray(column.to_numpy(), dtype=np.float32).reshape(len(part), -1)
        if matrix is None:  # the width of the vectors (DIM for the packaged tiers)
            matrix = np.empty((len(at), values.shape[1]), dtype=np.float32)
        matrix[target[used]] = values[used]
        del part, column, values
    if start != rows:
        raise RuntimeError("the vectors' table changed while it was read: run the step again")
    return matrix


def table_columns(table, columns: list[str]) -> pa.Table:
    """Some columns of every row of a LanceDB table, read without the others (``to_arrow()`` reads every
    column: the vectors of 4M activities are several GB, the ids a few hundred MB)."""
    return table.search().select(columns).limit(max(table.count_rows(), 1)).to_arrow()


class SimilarityStore:
    """LanceDB-backed similarity index; ``version`` pins each entity table to a given version."""

    def __init__(
        self, uri: str, version: dict | None = None, embedder=None, vector_cache: Path | None = None
    ):
        """``vector_cache``: a local folder where the in-memory vectors of each pinned table version are written
        once and memory-mapped from then on (``EntityVectors.save`` / ``open``): every server process reading
        the same version shares those pages, and a restart skips the LanceDB read and the index build."""
        from holocrm_core.settings import connect_lancedb

        self.uri = str(uri)
        self.vector_cache = Path(vector_cache) if vector_cache else None
        self.db = connect_lancedb(self.uri)
        self._embedder = embedder
        self._tables: dict[str, object] = {}
        self._pinned: dict[str, int] = {}
        self._rotation: SpectralRotation | None = None
        self._model: str | None = None
        self._memory: dict[str, EntityVectors] = {}
        self._memory_lock = threading.Lock()
        self._search_cache: OrderedDict[tuple, list[dict]] = OrderedDict()
        self._holds: dict[str, tuple[object, str, int]] = {}  # table -> (table, pin tag, version): hold()
        self._holds_at = 0.0
        self._holds_finalizer: weakref.finalize | None = None
        if version:
            self.checkout(version)

    # ---------------------------------------------------------------------------------------- tables
    def _table_names(self) -> set[str]:
        if self._pinned:  # a pinned snapshot serves the tables it pinned (no catalogue round trip per search)
            return set(self._pinned)
        result = self.db.list_tables()
        names = getattr(result, "tables", result)
        return set(names)

    def entity_types(self) -> list[str]:
        names = self._table_names()
        return [t for t in ENTITY_TABLES if t in names]

    def table(self, entity_type: str):
        if entity_type not in ENTITY_TABLES:
            raise ValueError(f"unknown entity type {entity_type!r}: use one of {list(ENTITY_TABLES)}")
        if entity_type not in self._tables:
            if entity_type not in self._table_names():
                raise KeyError(f"no index for {entity_type!r} yet: materialize similarity_index first")
            table = self.db.open_table(entity_type)
            if entity_type in self._pinned:
                table.checkout(self._pinned[entity_type])
            self._tables[entity_type] = table
        return self._tables[entity_type]

    def versions(self) -> dict[str, int]:
        """entity type -> the table version this store reads (latest unless pinned)."""
        out = {}
        for entity_type in self.entity_types():
            out[entity_type] = int(self.table(entity_type).version)
        if ROTATION_TABLE in self._table_names():
            out[ROTATION_TABLE] = int(self._rotation_table().version)
        for name in _attachment_table_names():
            table = self._attachment_table(name)
            if table is not None:
                out[name] = int(table.version)
        return out

    def checkout(self, versions: dict[str, int]) -> None:
        """Pin each named table to its version (as returned by ``versions()`` after a sync)."""
        self._pinned.update({k: int(v) for k, v in versions.items()})
        self._tables.clear()
        self._memory.clear()
        self._search_cache.clear()
        self._rotation = None
        self._model = None

    # ---------------------------------------------------------------------------------------- pins
    def hold(self) -> dict[str, int]:
        """Pin every table version this store reads (a LanceDB tag per table, ``lance_versions.pin``) so that
        no writer's cleanup removes them while it serves; released by ``release`` or when the store is
        garbage collected, renewed by ``renew_hold``. Returns the pinned versions."""
        from holocrm_core import lance_versions

        if not self._pinned:
            self.checkout(self.versions())
        self.release()
        tags: dict[str, tuple[object, str, int]] = {}
        try:
            for name, version in self._pinned.items():
                table = self.db.open_table(name)
                tags[name] = (table, lance_versions.pin(table, version), version)
        except Exception:
            _release_tags(tags)
            raise
        self._holds = tags
        self._holds_at = time.time()
        self._holds_finalizer = weakref.finalize(self, _release_tags, tags)
        return {name: version for name, (_, _, version) in tags.items()}

    def renew_hold(self, force: bool = False) -> bool:
        """Restart the pins' lifetime (``HOLOCRM_LANCEDB_PIN_TTL_S``) once a quarter of it has passed; True
        when renewed. A server calls it on each reload check."""
        from holocrm_core import lance_versions

        if not self._holds or (not force and time.time() - self._holds_at < lance_versions.pin_ttl_s() / 4):
            return False
        for name, (table, tag, version) in list(self._holds.items()):
            self._holds[name] = (table, lance_versions.renew(table, tag, version), version)
        self._holds_at = time.time()
        return True

    def release(self) -> None:
        """Drop the pins taken by ``hold`` (the versions become removable by the next cleanup)."""
        if self._holds_finalizer is not None:
            self._holds_finalizer()  # runs _release_tags once
            self._holds_finalizer = None
        self._holds = {}

    def compact(self, delete_unverified: bool = False) -> dict[str, dict]:
        """Compact every table of the store and remove the table versions nothing needs any more
        (``holocrm_core.lance_versions``: recent, newest and pinned versions stay); table -> figures."""
        from holocrm_core.lance_versions import compact

        out = {}
        listed = self.db.list_tables()
        for name in sorted(getattr(listed, "tables", listed)):  # every table, pinned by this store or not
            table = self.db.open_table(name)
            out[name] = compact(table, name, delete_unverified=delete_unverified).as_dict()
        self._tables.clear()
        return out

    # ---------------------------------------------------------------------------------------- attachments
    def _attachment_table(self, name: str):
        """An attachment table (chunks or fused activity vectors) at the version this store reads; None
        when the attachment assets never ran here."""
        if name not in self._tables:
            if name not in self._table_names():
                return None
            table = self.db.open_table(name)
            if name in self._pinned:
                table.checkout(self._pinned[name])
            self._tables[name] = table
        return self._tables[name]

    def _fused_activities(self) -> VectorIndex | None:
        """Activity vectors fused with their attachments', aligned with the activity table's rows (an
        activity without attachments keeps its body vector); None when there are none to fuse."""
        _, fused_name = _attachment_table_names()
        if fused_name in self._memory:
            return self._memory[fused_name]
        table = self._attachment_table(fused_name)
        if table is None or "activity" not in self._table_names():
            return None
        loaded = self.entity_vectors("activity")
        data = table.search().select(["activity_id", "vector"]).limit(max(table.count_rows(), 1)).to_arrow()
        matrix = loaded.vectors.astype(np.float32)  # a copy: the body vectors stay as they are
        if data.num_rows:
            fused = data.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
            fused = fused.reshape(-1, DIM)
            for row, activity_id in enumerate(data.column("activity_id").to_pylist()):
                position = loaded.positions.get(activity_id)
                if position is not None:
                    matrix[position] = fused[row]
        with self._memory_lock:
            self._memory.setdefault(fused_name, VectorIndex(matrix))
        return self._memory[fused_name]

    def _attachment_hits(
        self, text: str, query: np.ndarray | None, mode: str, depth: int, filters: dict | None
    ) -> list[dict]:
        """Activities found by what their attachments say, best first, each once with its best chunk as
        ``attachment`` evidence (file, kind, page or section, the chunk's text), filtered like the
        activities. The score is the chunk's cosine (``similarity``, vector mode) or BM25 (``bm25``,
        fulltext mode); in hybrid mode only chunks that share words with the query count, in the order of the
        attachments' own hybrid."""
        chunks_name, _ = _attachment_table_names()
        table = self._attachment_table(chunks_name)
        if table is None or "activity" not in self._table_names():
            return []
        rows_key = f"{chunks_name}:rows"
        if rows_key not in self._memory:
            self._memory[rows_key] = table.count_rows()
        if not self._memory[rows_key]:
            return []
        from holocrm_core.attachments.index import search_activities

        loaded = self.entity_vectors("activity")
        mask = loaded.mask(filters)

        def keep(activity_id: str) -> bool:
            position = loaded.positions.get(activity_id)
            return position is not None and (mask is None or bool(mask[position]))

        hits = search_activities(table, text, None, depth, mode=mode, query_vector=query, keep=keep)
        if mode == "hybrid":
            hits = [h for h in hits if "fulltext" in h["matched_by"]]
        positions = np.array([loaded.positions[h["activity_id"]] for h in hits], dtype=np.int64)
        rows = loaded.rows("activity", positions, np.array([h["score"] for h in hits], dtype=np.float32))
        for row, hit in zip(rows, hits):
            if mode != "vector":
                row["bm25" if mode == "fulltext" else "attachment_score"] = row.pop("similarity")
            row["attachment"] = {
                "attachment_id": hit["attachment_id"],
                "file_name": hit["file_name"],
                "kind": hit["kind"],
                "locator": hit["locator"],
                "text": hit["text"],
            }
        return rows

    # ---------------------------------------------------------------------------------------- rotation
    def _rotation_table(self):
        table = self.db.open_table(ROTATION_TABLE)
        if ROTATION_TABLE in self._pinned:
            table.checkout(self._pinned[ROTATION_TABLE])
        return table

    def rotation(self) -> SpectralRotation | None:
        """The spectral rotation the indexed 96-dim prefixes were made with (stored beside them)."""
        if self._rotation is None and ROTATION_TABLE in self._table_names():
            try:
                data = self._rotation_table().to_arrow()
            except ValueError:  # listed but not committed yet: another shard is creating it
                return None
            if data.num_rows:
                order = np.argsort(data.column("component").to_numpy())
                rotation = np.stack(data.column("axis").to_numpy(zero_copy_only=False))[order].T
                eigenvalues = data.column("eigenvalue").to_numpy()[order]
                mean = np.stack(data.column("mean").to_numpy(zero_copy_only=False))[0]
                self._rotation = SpectralRotation(
                    rotation, eigenvalues, mean, int(data.column("n_fitted")[0].as_py())
                )
        return self._rotation

    def indexed_model(self) -> str:
        """The embedding model (tier) the indexed vectors were made with, recorded beside the rotation.

        ``""`` when unknown (an index synced from a bare array); an index written before tiers existed
        holds MiniLM vectors, the only model there was then.
        """
        if self._model is None:
            self._model = ""
            if ROTATION_TABLE in self._table_names():
                table = self._rotation_table()
                if "model" not in table.schema.names:
                    self._model = MODEL_NAME
                else:
                    models = table.to_arrow().column("model").unique().to_pylist()
                    self._model = models[0] if models else ""
        return self._model

    def check_query_model(self, embedder) -> None:
        """Refuse to rank this index's vectors with query vectors of another embedding model (tier): the
        two spaces are unrelated, so the answer would be noise, not a worse answer."""
        indexed = self.indexed_model()
        query = getattr(embedder, "model_id", "")
        if indexed and query and indexed != query:
            raise EmbeddingModelMismatch(indexed, query)

    def _save_rotation(self, rotation: SpectralRotation, model: str = "", mode: str = "overwrite") -> None:
        dim = rotation.dim
        data = pa.table(
            {
                "component": pa.array(np.arange(dim), pa.int32()),
                "axis": pa.FixedSizeListArray.from_arrays(
                    pa.array(rotation.rotation.T.reshape(-1), pa.float32()), dim
                ),
                "eigenvalue": pa.array(rotation.eigenvalues, pa.float64()),
                "mean": pa.FixedSizeListArray.from_arrays(
                    pa.array(np.tile(rotation.mean, dim), pa.float32()), dim
                ),
                "n_fitted": pa.array([rotation.n_fitted] * dim, pa.int64()),
                "version": pa.array([rotation.version] * dim, pa.string()),
                "model": pa.array([model] * dim, pa.string()),
            }
        )
        self.db.create_table(ROTATION_TABLE, data, mode=mode)
        self._rotation = rotation
        self._model = model

    # ---------------------------------------------------------------------------------------- writes
    def sync(
        self,
        documents: pl.DataFrame,
        vectors: pl.DataFrame | pl.LazyFrame | np.ndarray,
        rotation: SpectralRotation | None = None,
        refit_rotation: bool = False,
        model: str = "",
    ) -> dict[str, SyncReport]:
        """Make the index hold exactly ``documents`` (all entity types at once) with their vectors.

        ``vectors`` is the embeddings frame (entity_type, entity_id, vector, and for long texts
        chunk_vectors / chunk_spans) or an array aligned with ``documents``. The spectral rotation is fitted
        on the first sync and kept afterwards (so unchanged rows keep their prefixes) unless ``rotation`` is
        given or ``refit_rotation`` is set; a new rotation rewrites every row. Entity types absent from
        ``documents`` but indexed before are emptied.

        The embedding model of the vectors (the frame's ``model`` column, else ``model``) is recorded with the
        index; vectors of another model than the index holds (a tier switch) refit the rotation, so every row
        is rewritten, and queries are then only embedded with that model (``check_query_model``).
        """
        documents, matrix, model = _aligned(documents, vectors, model)
        current = self.rotation()
        model_changed = current is not None and self.indexed_model() != model
        if rotation is None:
            if current is None or refit_rotation or model_changed:
                rotation = SpectralRotation.fit(matrix) if len(matrix) >= 2 else None
            else:
                rotation = current
        if rotation is not None and (current is None or rotation.version != current.version or model_changed):
            self._save_rotation(rotation, model)
        rotation_version = rotation.version if rotation is not None else "identity"
        coarse = (
            rotation.transform(matrix, COARSE_SCALE) if rotation is not None else matrix[:, :COARSE_SCALE]
        )

        documents = documents.with_columns(_row_hash(documents))
        reports = {}
        types = [t for t in ENTITY_TABLES if t in set(documents.get_column("entity_type").unique().to_list())]
        types += [t for t in self.entity_types() if t not in types]
        kinds = documents.get_column("entity_type")
        for entity_type in types:
            positions = np.flatnonzero((kinds == entity_type).to_numpy())
            reports[entity_type] = self._sync_table(
                entity_type,
                _Rows(documents, matrix, coarse, positions, rotation_version),
                rotation_version,
                rewrite=model_changed,  # unchanged texts carry the old model's vectors: rewrite every row
            )
        self._tables.clear()
        self._memory.clear()
        self._pinned.clear()
        return reports

    def merge_shards(
        self,
        documents: pl.DataFrame,
        vectors: pl.DataFrame | pl.LazyFrame | np.ndarray,
        shards: Iterable[int],
        count: int,
    ) -> dict[str, SyncReport]:
        """Make the index hold exactly ``documents`` for the entities of ``shards`` (of ``count``, by
        ``holocrm_core.partitions.shard_of`` of the entity id), leaving every other shard's rows alone.

        Idempotent: rows are upserted by entity id (``merge_insert``: a re-run of a shard updates, never
        duplicates) and the shard's rows no longer in ``documents`` are deleted by id. Several shards may
        merge into the same tables at once (a backfill's runs in parallel): LanceDB commits optimistically,
        and a writer whose commit lost the race gets a commit conflict; each write here (table creation,
        delete, merge_insert, index build) is retried with backoff (``homelock.retry_commit_conflicts``),
        re-applying the same rows on the new table version, so no shard's rows are lost. A table created by
        another shard meanwhile is merged into; the spectral rotation is fitted by the first shard and
        reused by the others (a race to save it keeps the saved one).
        """
        from holocrm_core.homelock import retry_commit_conflicts
        from holocrm_core.partitions import in_shards

        wanted = sorted(set(shards))
        documents = in_shards(documents, "entity_id", wanted, count)
        if isinstance(vectors, pl.DataFrame):
            vectors = in_shards(vectors, "entity_id", wanted, count)
        documents, matrix, model = _aligned(documents, vectors)
        rotation = self._shared_rotation(matrix, model)
        indexed = self.indexed_model() if rotation is not None else ""
        if indexed and model and indexed != model:
            raise EmbeddingModelMismatch(indexed, model)  # one shard cannot switch tiers: re-sync everything
        rotation_version = rotation.version if rotation is not None else "identity"
        coarse = (
            rotation.transform(matrix, COARSE_SCALE) if rotation is not None else matrix[:, :COARSE_SCALE]
        )
        documents = documents.with_columns(_row_hash(documents))
        reports = {}
        present = set(documents.get_column("entity_type").unique().to_list())
        kinds = documents.get_column("entity_type")
        for entity_type in [t for t in ENTITY_TABLES if t in present or t in self.entity_types()]:
            rows = _Rows(
                documents, matrix, coarse, np.flatnonzero((kinds == entity_type).to_numpy()), rotation_version
            )
            # more attempts than a single writer needs: every shard of a backfill may be merging at once
            reports[entity_type] = retry_commit_conflicts(
                lambda t=entity_type, r=rows: self._merge_table(t, r, wanted, count), attempts=10
            )
        self._tables.clear()
        self._memory.clear()
        self._pinned.clear()
        return reports

    def _shared_rotation(self, matrix: np.ndarray, model: str = "") -> SpectralRotation | None:
        """The stored rotation; the first writer fits and saves it, a concurrent one keeps the saved one."""
        current = self.rotation()
        if current is not None or len(matrix) < 2:
            return current
        fitted = SpectralRotation.fit(matrix)
        try:
            self._save_rotation(fitted, model, mode="create")
        except (ValueError, OSError, RuntimeError):  # another shard saved one first: use it
            for _ in range(50):  # its commit may still be landing: wait for it rather than diverge
                self._rotation = None
                saved = self.rotation()
                if saved is not None:
                    return saved
                time.sleep(0.1)
            return fitted
        return fitted

    def _open_created(self, entity_type: str, attempts: int = 20):
        """Open a table another writer may be creating this instant (listed before its first version is
        readable: "not found" for a moment)."""
        for attempt in range(attempts):
            try:
                return self.db.open_table(entity_type)
            except ValueError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        return None

    def _merge_table(self, entity_type: str, rows: _Rows, shards, count) -> SyncReport:
        from holocrm_core.partitions import shard_of

        started = time.perf_counter()
        if entity_type not in self._table_names():
            if not len(rows):
                return SyncReport(entity_type, 0, 0, 0, 0, 0, 0, None, time.perf_counter() - started)
            try:
                table = self.db.create_table(entity_type, rows.data(), mode="create")
                self._ensure_indexes(table, len(rows), rebuilt=True)
                return SyncReport(
                    entity_type, len(rows), len(rows), 0, 0, 0, int(table.version), None,
                    time.perf_counter() - started,
                )  # fmt: skip
            except (ValueError, OSError, RuntimeError):
                if entity_type not in self._table_names():
                    raise
                # another shard created the table first: merge into it
        try:
            table = self._open_created(entity_type)
        except ValueError:
            # listed, yet not readable after every wait: a writer killed while creating it (a 1M run's shard
            # stopped at its memory budget) left data files and no version. Nothing was committed: drop the
            # torn table and create it from this shard's rows (other shards then merge into it).
            self.db.drop_table(entity_type)
            return self._merge_table(entity_type, rows, shards, count)
        existing = pl.from_arrow(table_columns(table, ["entity_id", "row_hash"]))
        existing = existing.filter(shard_of(existing.get_column("entity_id"), count).is_in(shards))
        keys = rows.keys()
        joined = keys.join(
            existing.select("entity_id", pl.col("row_hash").alias("old")), on="entity_id", how="left"
        )
        changed = joined.filter(pl.col("old").is_null() | (pl.col("old") != pl.col("row_hash")))
        new = int(joined.get_column("old").is_null().sum())
        updated = changed.height - new
        gone = existing.join(keys.select("entity_id"), on="entity_id", how="anti").get_column("entity_id")
        for start in range(0, len(gone), 1000):
            batch = gone[start : start + 1000].to_list()
            table.delete(f"entity_id IN ({', '.join(_quote(i) for i in batch)})")
        if changed.height:
            # membership by polars (hashed): numpy's isin over string ids compares every pair (minutes at
            # a 1M-contact shard's 625k activities)
            ids = keys.get_column("entity_id")
            is_fresh = ids.is_in(joined.filter(pl.col("old").is_null()).get_column("entity_id").implode())
            is_fresh = is_fresh.to_numpy()
            # ids the table does not hold yet are appended, streamed batch by batch in one commit (a shard's
            # ids are its own, so no other writer adds them; a retry re-reads the table first and finds them
            # unchanged); changed ones are upserted in slices: one merge_insert of a 1M-contact shard exceeds
            # LanceDB's 300 MB join pool ("Resources exhausted ... HashJoinInput"), and each slice scans the
            # whole table
            if is_fresh.any():
                table.add(rows.data(np.flatnonzero(is_fresh)))
            is_updated = ids.is_in(changed.get_column("entity_id").implode()).to_numpy() & ~is_fresh
            upsert = np.flatnonzero(is_updated)
            for start in range(0, len(upsert), MERGE_SLICE_ROWS):
                table.merge_insert(
                    "entity_id"
                ).when_matched_update_all().when_not_matched_insert_all().execute(
                    rows.table(upsert[start : start + MERGE_SLICE_ROWS])
                )
        self._ensure_indexes(table, len(rows), rebuilt=changed.height + len(gone) > 0)
        return SyncReport(
            entity_type, len(rows), new, updated, len(rows) - changed.height, len(gone), int(table.version),
            None, time.perf_counter() - started,
        )  # fmt: skip

    def _sync_table(self, entity_type: str, rows: _Rows, rotation_version: str, rewrite=False) -> SyncReport:
        started = time.perf_counter()
        keys = rows.keys()
        existing = None
        if entity_type in self._table_names():
            table = self.db.open_table(entity_type)
            # only the id, hash and rotation columns: to_arrow() would read every vector of the table
            if "passages" in table.schema.names:  # an index written before chunks existed is rewritten
                existing = pl.from_arrow(table_columns(table, ["entity_id", "row_hash", "rotation_version"]))
            else:
                existing = pl.from_arrow(table_columns(table, ["entity_id", "row_hash"])).with_columns(
                    pl.lit("before chunks").alias("rotation_version")
                )
        if (
            existing is None
            or rewrite
            or len(existing) == 0
            or len(rows) == 0
            or (existing.get_column("rotation_version").unique().to_list() != [rotation_version])
        ):
            # first build, emptied type, or a new rotation: write the whole table
            old_ids = (
                existing.get_column("entity_id")
                if existing is not None
                else pl.Series("entity_id", [], pl.String)
            )
            new_ids = keys.get_column("entity_id")
            table = self.db.create_table(entity_type, rows.data(), mode="overwrite")
            kept = int(new_ids.is_in(old_ids.implode()).sum())  # polars membership: hashed, not pairwise
            new, updated, reused, deleted = len(new_ids) - kept, kept, 0, len(old_ids) - kept
            if existing is not None and len(existing) and len(rows):
                unchanged = keys.join(existing, on=["entity_id", "row_hash"], how="semi")
                reused, updated = len(unchanged), updated - len(unchanged)
        else:
            joined = keys.join(
                existing.select("entity_id", pl.col("row_hash").alias("old")), on="entity_id", how="left"
            )
            new = int(joined.get_column("old").is_null().sum())
            updated = int(
                (
                    (joined.get_column("old") != joined.get_column("row_hash"))
                    & joined.get_column("old").is_not_null()
                ).sum()
            )
            reused = len(rows) - new - updated
            gone = (
                existing.join(keys.select("entity_id"), on="entity_id", how="anti")
                .get_column("entity_id")
                .to_list()
            )
            deleted = len(gone)
            for start in range(0, len(gone), 1000):
                table.delete(f"entity_id IN ({', '.join(_quote(i) for i in gone[start : start + 1000])})")
            if new or updated:
                changed_ids = joined.filter(pl.col("old").is_null() | (pl.col("old") != pl.col("row_hash")))
                # membership by polars (hashed), as in _merge_table: numpy's isin over string ids compares
                # every pair (minutes at millions of rows)
                keep = keys.get_column("entity_id").is_in(changed_ids.get_column("entity_id").implode())
                upsert = np.flatnonzero(keep.to_numpy())
                for start in range(0, len(upsert), MERGE_SLICE_ROWS):  # LanceDB's join pool: 300 MB
                    table.merge_insert(
                        "entity_id"
                    ).when_matched_update_all().when_not_matched_insert_all().execute(
                        rows.table(upsert[start : start + MERGE_SLICE_ROWS])
                    )
        self._ensure_indexes(table, len(rows), rebuilt=existing is None or new + updated + deleted > 0)
        return SyncReport(
            entity_type,
            len(rows),
            new,
            updated,
            reused,
            deleted,
            int(table.version),
            None,
            time.perf_counter() - started,
        )

    def _ensure_indexes(self, table, rows: int, rebuilt: bool) -> None:
        """Full-text index over the whole text and a scalar index on the id. No ANN index: vectors are
        ranked in memory by ``holocrm_core.vectors`` (see its docstring for why and the figures)."""
        from lancedb.index import FTS, BTree

        from holocrm_core.homelock import retry_commit_conflicts
        from holocrm_core.lance_versions import compact

        names = {getattr(i, "columns", [None])[0]: i for i in table.list_indices()}
        if rows:
            if "entity_id" not in names:
                retry_commit_conflicts(lambda: table.create_index("entity_id", config=BTree()))
            if "text" not in names:
                retry_commit_conflicts(lambda: table.create_index("text", config=FTS(with_position=False)))
        if rebuilt:
            # fold new rows into the existing FTS / scalar indexes, merge small files, and remove the versions
            # no reader needs (pinned ones and recent ones stay: holocrm_core.lance_versions)
            compact(table, table.name)

    # ---------------------------------------------------------------------------------------- reads
    def entity_vectors(self, entity_type: str) -> EntityVectors:
        """The in-memory view of one table at the version this store reads (loaded once per handle)."""
        if entity_type in self._memory:
            return self._memory[entity_type]
        with self._memory_lock:  # concurrent first requests load it once
            if entity_type not in self._memory:
                cached = self._cache_folder(entity_type)
                if cached is not None:
                    self._memory[entity_type] = self._cached_vectors(entity_type, cached)
                else:
                    table = self.table(entity_type)
                    self._memory[entity_type] = EntityVectors.load(table, table.count_rows())
        return self._memory[entity_type]

    def _cache_folder(self, entity_type: str) -> Path | None:
        """Where the pinned version of ``entity_type`` is saved in ``vector_cache``; None when it is not cached
        (no cache, a table not pinned, or not a local folder whose version manifest can be found)."""
        version = self._pinned.get(entity_type)
        if self.vector_cache is None or version is None:
            return None
        manifests = Path(self.uri) / f"{entity_type}.lance" / "_versions"
        for name in (f"{2**64 - 1 - version}.manifest", f"{version}.manifest"):  # Lance's V2 and V1 naming
            try:
                stat = (manifests / name).stat()
            except OSError:
                continue
            key = (
                SAVED_VECTORS_FORMAT,
                str(manifests.resolve()),
                version,
                name,
                stat.st_size,
                stat.st_mtime_ns,
            )
            digest = hashlib.sha1(repr(key).encode()).hexdigest()[:16]
            return self.vector_cache / f"{entity_type}-v{version}-{digest}"
        return None

    def _cached_vectors(self, entity_type: str, folder: Path) -> EntityVectors:
        """The saved vectors of this version, memory-mapped; saved first when no process has saved them yet.

        Processes starting together (``holocrm serve --workers 2``) take a file lock: the first reads LanceDB,
        builds the index and saves them; the others wait and map what it wrote. Saved folders of the type's
        other versions are removed (a process still mapping one keeps its pages until it lets go)."""
        import fcntl

        try:
            return EntityVectors.open(folder)
        except (OSError, ValueError, KeyError):
            pass  # not saved yet (or damaged): save it under the lock
        try:
            self.vector_cache.mkdir(parents=True, exist_ok=True)
            lock = open(self.vector_cache / f"{entity_type}.lock", "w")  # noqa: SIM115 (held across the block)
        except OSError as exc:
            _log.warning("vector cache %s not writable (%s): vectors held in memory", self.vector_cache, exc)
            table = self.table(entity_type)
            return EntityVectors.load(table, table.count_rows())
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                return EntityVectors.open(folder)
            except (OSError, ValueError, KeyError):
                pass
            table = self.table(entity_type)
            loaded = EntityVectors.load(table, table.count_rows())
            partial = folder.with_name(f".{folder.name}.{os.getpid()}")
            try:
                shutil.rmtree(partial, ignore_errors=True)
                shutil.rmtree(folder, ignore_errors=True)  # a damaged one
                loaded.save(partial)
                os.rename(partial, folder)
            except (OSError, TypeError) as exc:
                shutil.rmtree(partial, ignore_errors=True)
                _log.warning(
                    "could not save the %s vectors to %s (%s): held in memory", entity_type, folder, exc
                )
                return loaded
            for old in self.vector_cache.glob(f"{entity_type}-v*"):
                if old != folder:
                    shutil.rmtree(old, ignore_errors=True)
            del loaded  # the mapped copy replaces the one read from LanceDB
            return EntityVectors.open(folder)

    def in_memory(self) -> list[str]:
        """The entity types whose vectors this handle holds in memory (``warm``, or a first query)."""
        return list(self._memory)

    def warm(self, entity_types: Iterable[str] | None = None) -> dict[str, int]:
        """Load the in-memory vectors now (a server calls this before serving); entity type -> rows.

        ``HOLOCRM_WARM_TYPES`` (comma-separated entity types) limits what a server loads up front; the other
        types load on their first query. At 1M contacts the 5M activity vectors and their fused vectors
        need about 13 GB: a server on a small machine serves contacts, companies and deals from memory and
        leaves activities out (benchmarks/scale.py's serving step)."""
        out = {}
        only = [t.strip() for t in os.environ.get("HOLOCRM_WARM_TYPES", "").split(",") if t.strip()]
        for entity_type in entity_types or only or self.entity_types():
            if entity_type in self._table_names():
                out[entity_type] = len(self.entity_vectors(entity_type))
        if "activity" in out:
            self._fused_activities()
        return out

    def _coarse_query(self, vector: np.ndarray) -> np.ndarray:
        rotation = self.rotation()
        return (
            rotation.transform(vector[None, :], COARSE_SCALE)[0] if rotation else _unit(vector[:COARSE_SCALE])
        )

    def search_vector(
        self,
        entity_type: str,
        vector: np.ndarray,
        limit: int = 10,
        filters: dict | None = None,
        exclude_ids: Iterable[str] = (),
        passages: bool = False,
    ) -> list[dict]:
        """Entities of one type nearest to ``vector`` (cosine), best first, with the filters applied first.

        Ranked by ``holocrm_core.vectors`` (exact, or 96-dim prefix candidates reranked on the full vector).
        ``passages``: also rank the chunks of long texts (each entity once, by its best part); the matched
        chunk's character span is then in ``span``.
        """
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        loaded = self.entity_vectors(entity_type)
        mask = loaded.mask(filters)
        exclude = [p for p in (loaded.positions.get(i) for i in exclude_ids) if p is not None]
        if passages and not exclude:
            found, similarity, spans = loaded.nearest_passages(
                vector, self._coarse_query(vector), limit, mask
            )
            rows = loaded.rows(entity_type, found, similarity)
            for row, span in zip(rows, spans):
                row["span"] = span
            return rows
        found, similarity = loaded.nearest(vector, self._coarse_query(vector), limit, mask, exclude)
        return loaded.rows(entity_type, found, similarity)

    def similar(
        self,
        entity_type: str,
        entity_id: str,
        limit: int = 10,
        min_similarity: float = 0.0,
        filters: dict | None = None,
    ) -> list[dict]:
        """The ``limit`` entities of the same type most like ``entity_id`` (itself excluded)."""
        loaded = self.entity_vectors(entity_type)
        position = loaded.position_of(entity_id, entity_type)
        fused = self._fused_activities() if entity_type == "activity" else None
        if fused is not None:
            # activities are alike by what they say and what their attachments say (fused body + files)
            found, similarity = fused.search(
                fused.vectors[position], limit, mask=loaded.mask(filters), exclude=[position]
            )
        else:
            found, similarity = loaded.nearest(
                loaded.vector(position), loaded.coarse[position], limit, loaded.mask(filters), [position]
            )
        results = loaded.rows(entity_type, found, similarity)
        return [r for r in results if r["similarity"] >= min_similarity]

    def _embed_query(self, text: str) -> np.ndarray:
        if self._embedder is None:
            from holocrm_core.embedding import embedding_tier, load_embedder

            indexed, tier = self.indexed_model(), embedding_tier()
            if indexed and model_tier(indexed) in TIERS and model_tier(indexed) != tier:
                # refused before loading a model whose answers would be noise (a tier switch, seen by name)
                raise EmbeddingModelMismatch(
                    indexed, MODEL_NAME if tier == "minilm" else "model2vec:distilled"
                )
            self._embedder = load_embedder()
        self.check_query_model(self._embedder)
        return self._embedder.encode([text])[0]

    def _fulltext(self, entity_type: str, text: str, limit: int, filters: dict | None) -> list[dict]:
        table = self.table(entity_type)
        builder = table.search(text, query_type="fts", fts_columns="text").limit(limit)
        where = filter_sql(filters)
        if where:
            builder = builder.where(where, prefilter=True)
        found = builder.select([*RESULT_COLUMNS, "_score"]).to_arrow()
        results = []
        # whole-table to_pylist: indexing arrow cells one by one cost 1.5 ms a row under load
        for record in found.select([*RESULT_COLUMNS, "_score"]).to_pylist():
            row = {c: record[c] for c in RESULT_COLUMNS}
            row["id"] = row.pop("entity_id")
            row["entity_type"] = entity_type
            row["bm25"] = float(record["_score"])
            results.append(row)
        return results

    def texts(self, entity_type: str, entity_ids: list[str]) -> dict[str, str]:
        """entity id -> its whole indexed text (one LanceDB lookup for all of them)."""
        if not entity_ids:
            return {}
        found = (
            self.table(entity_type)
            .search()
            .where(f"entity_id IN ({', '.join(_quote(i) for i in entity_ids)})")
            .select(["entity_id", "text"])
            .limit(len(entity_ids))
            .to_arrow()
        )
        return dict(zip(found.column("entity_id").to_pylist(), found.column("text").to_pylist()))

    def _add_snippets(self, results: list[dict], query: str, with_text: bool) -> list[dict]:
        """Each hit gets ``snippet``: the matched chunk of a long text, or the passage around the query's
        words (full-text hits), or the start of the text; ``text`` too when asked."""
        by_type: dict[str, list[str]] = {}
        for row in results:
            by_type.setdefault(row["entity_type"], []).append(row["id"])
        texts = {t: self.texts(t, ids) for t, ids in by_type.items()}
        for row in results:
            text = texts[row["entity_type"]].get(row["id"]) or ""
            span = row.pop("span", None)
            attachment = row.get("attachment")
            if attachment is not None:
                # the attachment decided the hit: the passage of the file that matched, named with its page
                chunk = attachment.pop("text")
                passage = snippet_around(chunk, query) or snippet_of_span(chunk, (0, len(chunk)))
                passage = " ".join(passage.split())  # a sheet's rows or a slide's lines read as one line
                row["snippet"] = f"{attachment['file_name']}, {attachment['locator']}: {passage}"
                if with_text:
                    row["text"] = text
                continue
            words_first = "fulltext" in row.get("matched_by", []) or "bm25" in row and "similarity" not in row
            row["snippet"] = snippet_around(text, query) if words_first or span is None else None
            if row["snippet"] is None and span is not None:
                row["snippet"] = snippet_in_span(text, span, query)
            if row["snippet"] is None:
                row["snippet"] = snippet_of_span(text, (0, len(text)))
            if with_text:
                row["text"] = text
        return results

    def search(
        self,
        text: str,
        entity_types: list[str] | None = None,
        mode: str = "hybrid",
        limit: int = 10,
        filters: dict | None = None,
        with_text: bool = False,
    ) -> list[dict]:
        """:meth:`search_uncached`, remembered per pinned store: a snapshot's index never changes, so a
        repeated search (the same words, types, mode, limit and filters) is answered from memory. An
        unpinned store always searches."""
        if not self._pinned:
            return self.search_uncached(text, entity_types, mode, limit, filters, with_text)
        key = (text, tuple(entity_types or ()), mode, limit, repr(sorted((filters or {}).items())), with_text)
        with self._memory_lock:
            hit = self._search_cache.get(key)
            if hit is not None:
                self._search_cache.move_to_end(key)
        if hit is None:
            hit = self.search_uncached(text, entity_types, mode, limit, filters, with_text)
            with self._memory_lock:
                self._search_cache[key] = hit
                while len(self._search_cache) > SEARCH_CACHE_SIZE:
                    self._search_cache.popitem(last=False)
        return copy.deepcopy(hit)  # callers may change their rows; the cached ones stay as found

    def search_uncached(
        self,
        text: str,
        entity_types: list[str] | None = None,
        mode: str = "hybrid",
        limit: int = 10,
        filters: dict | None = None,
        with_text: bool = False,
    ) -> list[dict]:
        """Free-text search across entity types, best first; each hit carries a ``snippet``.

        See ``_search_one_stage`` for the modes. On an index of the static tier, vector and hybrid searches
        take its best ``RERANK_DEPTH`` hits and order them by MiniLM's cosine (``rerank_similarity``, also
        the ``score``; ``reranked_by`` names the model): MiniLM embeds only the texts a query reaches.
        """
        depth = self._rerank_depth(SEARCH_MODE_ALIASES.get(mode, mode))
        if not depth:
            return self._search_one_stage(text, entity_types, mode, limit, filters, with_text)
        pool = "hybrid" if RERANK_POOL == "hybrid" else mode
        candidates = self._search_one_stage(text, entity_types, pool, max(limit, depth), filters, True)
        return self._rerank(text, candidates, limit, with_text)

    def _rerank_depth(self, mode: str) -> int:
        from holocrm_core.static_embedding import STATIC_PREFIX

        if mode == "fulltext" or not self.indexed_model().startswith(f"{STATIC_PREFIX}:"):
            return 0
        return int(os.environ.get("HOLOCRM_STATIC_RERANK", RERANK_DEPTH))

    def _rerank(self, query: str, rows: list[dict], limit: int, with_text: bool) -> list[dict]:
        from holocrm_core.embedding import _embed_texts, load_embedder

        reranker = load_embedder(tier="minilm")
        texts = [row.get("text") or "" for row in rows]
        keys = [(reranker.model_id, hashlib.blake2b(t.encode(), digest_size=16).hexdigest()) for t in texts]
        with _RERANK_LOCK:
            known = {k: _RERANK_CACHE[k] for k in keys if k in _RERANK_CACHE}
        missing = sorted({i for i, k in enumerate(keys) if k not in known}, key=lambda i: keys[i])
        missing = list({keys[i]: i for i in missing}.values())  # each distinct text once
        if missing:
            vectors, _, _ = _embed_texts(reranker, [texts[i] for i in missing])
            with _RERANK_LOCK:
                for i, vector in zip(missing, vectors):
                    known[keys[i]] = _RERANK_CACHE[keys[i]] = vector
                while len(_RERANK_CACHE) > RERANK_CACHE_SIZE:
                    _RERANK_CACHE.popitem(last=False)
        matrix = np.stack([known[k] for k in keys]) if keys else np.zeros((0, DIM), np.float32)
        similarity = matrix @ reranker.encode([query])[0]
        out = []
        for i in np.argsort(-similarity, kind="stable")[:limit]:
            row = rows[int(i)]
            row.update(
                score=float(similarity[i]),
                rerank_similarity=float(similarity[i]),
                reranked_by=reranker.model_id,
            )
            if not with_text:
                row.pop("text", None)
            out.append(row)
        return out

    def _search_one_stage(
        self,
        text: str,
        entity_types: list[str] | None = None,
        mode: str = "hybrid",
        limit: int = 10,
        filters: dict | None = None,
        with_text: bool = False,
    ) -> list[dict]:
        """Free-text search across entity types in the index's own vectors and words, best first.

        ``vector`` (alias ``semantic``): meaning ("budget concerns" finds "worried about the cost"), over
        whole texts and the chunks of long ones; ``fulltext``: BM25 on the words of the whole text;
        ``hybrid``: both lists fused by reciprocal rank (``score``), which keeps exact names and ids findable
        while paraphrases still match. ``with_text`` adds each hit's whole text.
        """
        mode = SEARCH_MODE_ALIASES.get(mode, mode)
        if mode not in ("hybrid", "vector", "fulltext"):
            raise ValueError(f"unknown search mode {mode!r}: use hybrid, vector (or semantic) or fulltext")
        types = entity_types or self.entity_types()
        for t in types:
            if t not in ENTITY_TABLES:
                raise ValueError(f"unknown entity type {t!r}: use one of {list(ENTITY_TABLES)}")
        types = [t for t in types if t in self._table_names()]
        depth = max(limit * 3, 20)
        vector_lists, text_lists = [], []
        query = None
        if mode in ("hybrid", "vector"):
            query = self._embed_query(text)
            vector_lists = [
                self.search_vector(t, query, limit=depth, filters=filters, passages=True) for t in types
            ]
        if mode in ("hybrid", "fulltext"):
            text_lists = [self._fulltext(t, text, depth, filters) for t in types]
        # An activity is also found by what its attachments say (max-sim over its body and its attachment
        # chunks, the fusion study's winner): in vector and fulltext mode each chunk competes in the list's
        # own scale (cosine, BM25); in hybrid mode by its rank in the attachments' own hybrid (see below).
        attached = self._attachment_hits(text, query, mode, depth, filters) if "activity" in types else []
        if mode != "hybrid" and attached:
            lists = vector_lists if mode == "vector" else text_lists
            key = "similarity" if mode == "vector" else "bm25"
            lists[types.index("activity")] = _merge_best(lists[types.index("activity")], attached, key)

        if mode == "vector":
            merged = sorted((r for rs in vector_lists for r in rs), key=lambda r: -r["similarity"])[:limit]
            for r in merged:
                r["score"] = r["similarity"]
            return self._add_snippets(merged, text, with_text)
        if mode == "fulltext":
            merged = sorted((r for rs in text_lists for r in rs), key=lambda r: -r["bm25"])[:limit]
            for r in merged:
                r["score"] = r["bm25"]
            return self._add_snippets(merged, text, with_text)

        fused: dict[tuple[str, str], dict] = {}
        # rank within the merged list of each mode, so types compete on the same scale
        vector_ranked = sorted((r for rs in vector_lists for r in rs), key=lambda r: -r["similarity"])
        text_ranked = sorted((r for rs in text_lists for r in rs), key=lambda r: -r["bm25"])
        for source, ranked in (("vector", vector_ranked), ("fulltext", text_ranked)):
            for rank, row in enumerate(ranked, start=1):
                key = (row["entity_type"], row["id"])
                entry = fused.setdefault(key, {**row, "score": 0.0, "matched_by": []})
                entry.update(
                    {k: v for k, v in row.items() if k in ("similarity", "bm25", "span", "attachment")}
                )
                entry["score"] += 1.0 / (RRF_K + rank)
                entry["matched_by"].append(source)
        # The attachments' hybrid (BM25 + a little cosine + word pairs, tuned on their own: reciprocal-rank
        # fusion with the chunk cosine list measured 0.47 top-3 on generated facts, the vector list ranks every
        # templated proposal alike) ranks chunks that share words with the query; the activity of the r-th
        # counts as if ranked r-th in both lists, and keeps the better of that and its own score (max-sim).
        for rank, hit in enumerate(attached, start=1):
            credit = 2.0 / (RRF_K + rank)
            entry = fused.setdefault(("activity", hit["id"]), {**hit, "score": 0.0, "matched_by": []})
            if credit > entry["score"]:
                entry.update(score=credit, attachment=hit["attachment"])
                entry.pop("span", None)
            entry["matched_by"].append("attachment")
        return self._add_snippets(sorted(fused.values(), key=lambda r: -r["score"])[:limit], text, with_text)
