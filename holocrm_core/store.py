"""The similarity store: one LanceDB table per entity type (contact, company, deal, activity).

Each row is an entity's document (text, scalar filter columns) with its full 384-dim vector and the
96-dim spectral prefix. ``sync`` upserts by entity id and a hash of the row (text + filters), deletes
entities that are gone, maintains a full-text index, a scalar index on the id and, once a table is large
enough, an ANN index. Every sync leaves a table version; ``versions()`` names them and ``checkout`` (or the
``version`` argument) pins a reader to them, which is how a server keeps answering from the index it loaded.

Queries: ``similar`` (entities like this one), ``search_vector``, and ``search`` from free text in
``vector``, ``fulltext`` or ``hybrid`` mode (reciprocal rank fusion of the two lists), each with scalar
prefilters such as industry, stage, owner.

Vector queries are answered from memory: on its first vector query a store handle reads the ids, vectors,
96-dim prefixes and filter columns of the table version it reads, once (``EntityVectors``); each query is
then numpy arithmetic with no LanceDB round trip (a LanceDB point lookup plus an ANN query cost 20 to 50 ms
on this 2-core machine under load). Up to ``IVF_MIN_ROWS`` the 96-dim prefixes are scanned exactly and the
best candidates reranked on the full vector; above it an inverted file over the prefixes (k-means lists,
built at load) limits the scan to the nearest lists. Filters are boolean masks over dictionary-encoded
columns. Tables above ``MEMORY_MAX_ROWS`` are queried through LanceDB and its ANN index instead.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import polars as pl
import pyarrow as pa

from holocrm_core.embedding import DIM, SpectralRotation, vectors_matrix
from holocrm_core.text import ENTITY_TABLES, FILTER_COLUMNS

os.environ.setdefault("LANCEDB_LOG", "error")

COARSE_SCALE = 96
ROTATION_TABLE = "spectral_rotation"
# Vector queries run in memory up to this many rows per entity type (1M rows hold about 1.2 GB: float16 full
# vectors plus float32 prefixes); bigger tables are queried through LanceDB, which needs its ANN index there
# (HNSW over the 96-dim prefix, exact rerank at 384). Below that size the index is not used, so it is not
# built (it took 70 s at 100k rows).
MEMORY_MAX_ROWS = 2_000_000
ANN_MIN_ROWS = MEMORY_MAX_ROWS
# Up to this size the full 384-dim vectors are scanned (exact); above it the 96-dim prefixes, then a rerank.
EXACT_MAX_ROWS = 5_000
# From this size an inverted file over the 96-dim prefixes replaces the full prefix scan. The scan is bound by
# memory bandwidth and by BLAS threads fighting for 2 busy cores: at 100k rows under load 6.5 it took p50 5.7 /
# p95 9.5 ms (recall@10 1.0), the inverted file 0.4 / 0.6 ms (recall@10 0.99); at 1M the scan takes 45 ms.
IVF_MIN_ROWS = 50_000
# From this size the full vectors (used for the rerank only) are held as float16: half the memory, cosine
# error about 1e-3.
FLOAT16_MIN_ROWS = 500_000
# Candidates taken from the prefix scan for the exact rerank: max(RERANK_FACTOR * limit, RERANK_MIN).
RERANK_FACTOR = 10
RERANK_MIN = 100
RRF_K = 60  # reciprocal rank fusion constant (Cormack et al.); damps the weight of the top ranks
# What a result row carries: the id, a display name and the filter fields. Not the text: reading it for every
# candidate costs more than the vector search itself (measured: 8.8 vs 5.2 ms per query at 30k rows).
RESULT_COLUMNS = ["entity_id", *FILTER_COLUMNS]


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
    joined = frame.select(pl.concat_str(parts, separator="\x1f").alias("k")).get_column("k")
    return pl.Series("row_hash", [hashlib.sha1(s.encode()).hexdigest() for s in joined.to_list()])


def _arrow_table(rows: pl.DataFrame, vectors: np.ndarray, coarse: np.ndarray, rotation_version: str) -> pa.Table:
    columns = {c: rows.get_column(c).to_arrow() for c in ["entity_id", "content_hash", "row_hash", "text", *FILTER_COLUMNS]}
    columns = {k: v.cast(pa.string()) for k, v in columns.items()}
    columns["vector"] = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), DIM)
    columns["vector_96"] = pa.FixedSizeListArray.from_arrays(pa.array(coarse.reshape(-1), pa.float32()), COARSE_SCALE)
    columns["rotation_version"] = pa.array([rotation_version] * len(rows), pa.string())
    return pa.table(columns)


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return (vector / norm if norm > 0 else vector).astype(np.float32)


def _as_text(value) -> str:
    """A filter value as the index stores it (every filter column is a string column)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# OpenBLAS runs a matrix-vector product on all cores from about 460k elements; on 2 cores shared with other
# work that cost a full scheduler slice (12 ms for a 10k x 384 product that takes 1 ms on one thread), so
# products are computed in blocks below that size, each on one thread.
_BLOCK_ELEMENTS = 393_216


def _dot(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """matrix @ vector, in single-threaded blocks (see ``_BLOCK_ELEMENTS``)."""
    rows = max(1, _BLOCK_ELEMENTS // max(1, matrix.shape[1]))
    if len(matrix) <= rows:
        return matrix @ vector
    out = np.empty(len(matrix), dtype=np.result_type(matrix.dtype, vector.dtype))
    for start in range(0, len(matrix), rows):
        np.matmul(matrix[start:start + rows], vector, out=out[start:start + rows])
    return out


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest finite scores, best first."""
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    index = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    index = index[np.isfinite(scores[index])]
    return index[np.argsort(-scores[index], kind="stable")]


class InvertedLists:
    """An inverted file over unit prefixes: spherical k-means lists; a query scans only its nearest lists.

    Rows are expected in list order (``fit`` returns the order), so every list is one contiguous slice.
    """

    def __init__(self, centroids: np.ndarray, offsets: np.ndarray, probes: int):
        self.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self.offsets = offsets
        self.probes = probes

    @classmethod
    def fit(cls, coarse: np.ndarray, seed: int = 0, iterations: int = 8) -> tuple["InvertedLists", np.ndarray]:
        n = len(coarse)
        lists = max(16, int(round(np.sqrt(n))))
        rng = np.random.default_rng(seed)
        sample = coarse[np.sort(rng.choice(n, min(n, 48 * lists), replace=False))]
        centroids = sample[rng.choice(len(sample), lists, replace=False)].copy()
        for _ in range(iterations):
            assign = cls._assign(sample, centroids)
            counts = np.bincount(assign, minlength=lists)
            sums = np.zeros_like(centroids)
            np.add.at(sums, assign, sample)
            empty = counts == 0
            sums[empty] = sample[rng.choice(len(sample), int(empty.sum()), replace=False)]
            centroids = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
        assign = cls._assign(coarse, centroids)
        order = np.argsort(assign, kind="stable")
        offsets = np.concatenate([[0], np.cumsum(np.bincount(assign, minlength=lists))])
        # about 6% of the lists: recall@10 0.99 at 100k clustered rows, at 0.4 to 0.6 ms per query (3%: 0.97,
        # 12%: 0.997 at 1 ms), see ``--paths`` in benchmarks/semantic_speed.py
        return cls(centroids, offsets, probes=max(16, lists // 16)), order

    @staticmethod
    def _assign(rows: np.ndarray, centroids: np.ndarray, chunk: int = 32_768) -> np.ndarray:
        out = np.empty(len(rows), dtype=np.int32)
        for start in range(0, len(rows), chunk):
            out[start:start + chunk] = np.argmax(rows[start:start + chunk] @ centroids.T, axis=1)
        return out

    def scan(self, coarse: np.ndarray, query: np.ndarray, probes: int) -> tuple[np.ndarray, np.ndarray]:
        """(row positions, prefix scores) of the rows in the ``probes`` lists nearest to ``query``."""
        nearest = _top(self.centroids @ query, probes)
        slices = [(int(self.offsets[i]), int(self.offsets[i + 1])) for i in nearest]
        positions = np.concatenate([np.arange(a, b) for a, b in slices])
        scores = np.concatenate([coarse[a:b] @ query for a, b in slices])
        return positions, scores


class EntityVectors:
    """One entity table held in memory for vector queries: ids, vectors, 96-dim prefixes, filter columns.

    Read once per table version from LanceDB (``load``); filter columns are dictionary-encoded so a filter
    is an integer comparison over the rows.
    """

    def __init__(self, ids: list[str], vectors: np.ndarray, coarse: np.ndarray, codes: dict[str, np.ndarray],
                 categories: dict[str, list]):
        self.ivf: InvertedLists | None = None
        if len(ids) >= IVF_MIN_ROWS:
            self.ivf, order = InvertedLists.fit(coarse)
            ids = [ids[i] for i in order]
            vectors, coarse = vectors[order], coarse[order]
            codes = {c: v[order] for c, v in codes.items()}
        self.ids = ids
        self.positions = {entity_id: i for i, entity_id in enumerate(ids)}
        self.vectors = vectors
        self.coarse = np.ascontiguousarray(coarse, dtype=np.float32)
        self.codes = codes
        self.categories = categories
        self.lookup = {c: {v: i for i, v in enumerate(values)} for c, values in categories.items()}

    @classmethod
    def load(cls, table, rows: int) -> "EntityVectors":
        import pyarrow.compute as pc

        data = table.search().select(["entity_id", "vector", "vector_96", *FILTER_COLUMNS]).limit(max(rows, 1)).to_arrow()
        n = data.num_rows
        dtype = np.float16 if n >= FLOAT16_MIN_ROWS else np.float32
        vectors = np.empty((n, DIM), dtype=dtype)
        coarse = np.empty((n, COARSE_SCALE), dtype=np.float32)
        for column, out, width in (("vector", vectors, DIM), ("vector_96", coarse, COARSE_SCALE)):
            start = 0
            for chunk in data.column(column).chunks:  # chunk by chunk: no second full-size float32 copy
                block = chunk.flatten().to_numpy(zero_copy_only=False).reshape(-1, width)
                out[start:start + len(block)] = block
                start += len(block)
        codes, categories = {}, {}
        for column in FILTER_COLUMNS:
            encoded = data.column(column).dictionary_encode().combine_chunks()
            codes[column] = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int32)
            categories[column] = encoded.dictionary.to_pylist()
        ids = data.column("entity_id").to_pylist()
        del data
        return cls(ids, vectors, coarse, codes, categories)

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

    def nearest(self, vector: np.ndarray, coarse_query: np.ndarray, limit: int, mask: np.ndarray | None = None,
                exclude: list[int] = ()) -> tuple[np.ndarray, np.ndarray]:
        """(positions, cosine similarities) of the ``limit`` rows nearest to ``vector``, best first."""
        if limit <= 0 or len(self) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        exclude = list(exclude)
        if len(self) <= EXACT_MAX_ROWS:
            positions = np.arange(len(self))
            scores = _dot(self.vectors.astype(np.float32, copy=False), vector)
        else:
            positions = self._candidates(coarse_query, max(RERANK_FACTOR * limit, RERANK_MIN), mask, exclude)
            scores = self.vectors[positions].astype(np.float32) @ vector
            mask, exclude = None, []  # already applied to the candidates
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        if exclude:
            scores[exclude] = -np.inf
        best = _top(scores, limit)
        return positions[best], scores[best]

    def _candidates(self, query: np.ndarray, k: int, mask: np.ndarray | None, exclude: list[int]) -> np.ndarray:
        """Positions of the best ``k`` rows by the 96-dim prefix, among those the mask lets through."""
        query = np.asarray(query, dtype=np.float32)
        allowed = int(mask.sum()) if mask is not None else len(self)
        if self.ivf is None or allowed <= 0.05 * len(self):
            # a selective filter: scanning only the rows it lets through is cheaper than the lists
            positions = np.arange(len(self)) if mask is None else np.flatnonzero(mask)
            scores = _dot(self.coarse if mask is None else self.coarse[positions], query)
        else:
            # a filter moves the nearest passing rows further out: widen the scan with its selectivity
            # (filtered recall@10 at 100k, industry = 1 of 5: 0.96 with the plain probes)
            probes = self.ivf.probes * min(4, int(np.ceil(np.sqrt(len(self) / allowed))))
            while True:
                positions, scores = self.ivf.scan(self.coarse, query, probes)
                if mask is not None:
                    scores = np.where(mask[positions], scores, -np.inf)
                passing = int(np.isfinite(scores).sum())
                if passing >= k + len(exclude) or probes >= len(self.ivf.centroids):
                    break
                probes *= 2  # the filter left too few rows in the nearest lists: widen the scan
        if exclude:
            scores = scores.copy()
            scores[np.isin(positions, exclude)] = -np.inf
        return positions[_top(scores, k)]

    def rows(self, entity_type: str, positions: np.ndarray, similarity: np.ndarray) -> list[dict]:
        out = []
        for position, score in zip(positions.tolist(), similarity.tolist()):
            row = {}
            for column in FILTER_COLUMNS:
                code = self.codes[column][position]
                row[column] = self.categories[column][code] if code >= 0 else None
            row["id"] = self.ids[position]
            row["entity_type"] = entity_type
            row["similarity"] = float(score)
            out.append(row)
        return out


class SimilarityStore:
    """LanceDB-backed similarity index; ``version`` pins each entity table to a given version."""

    def __init__(self, uri: str, version: dict | None = None, embedder=None):
        import lancedb

        self.uri = str(uri)
        self.db = lancedb.connect(self.uri)
        self._embedder = embedder
        self._tables: dict[str, object] = {}
        self._has_ann: dict[str, bool] = {}
        self._pinned: dict[str, int] = {}
        self._rotation: SpectralRotation | None = None
        self._memory: dict[str, EntityVectors | None] = {}
        self._memory_lock = threading.Lock()
        self.memory_max_rows = MEMORY_MAX_ROWS
        if version:
            self.checkout(version)

    # ---------------------------------------------------------------------------------------- tables
    def _table_names(self) -> set[str]:
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
        return out

    def checkout(self, versions: dict[str, int]) -> None:
        """Pin each named table to its version (as returned by ``versions()`` after a sync)."""
        self._pinned.update({k: int(v) for k, v in versions.items()})
        self._tables.clear()
        self._has_ann.clear()
        self._memory.clear()
        self._rotation = None

    def checkout_latest(self) -> None:
        self._pinned.clear()
        self._tables.clear()
        self._has_ann.clear()
        self._memory.clear()
        self._rotation = None

    # ---------------------------------------------------------------------------------------- rotation
    def _rotation_table(self):
        table = self.db.open_table(ROTATION_TABLE)
        if ROTATION_TABLE in self._pinned:
            table.checkout(self._pinned[ROTATION_TABLE])
        return table

    def rotation(self) -> SpectralRotation | None:
        """The spectral rotation the indexed 96-dim prefixes were made with (stored beside them)."""
        if self._rotation is None and ROTATION_TABLE in self._table_names():
            data = self._rotation_table().to_arrow()
            if data.num_rows:
                order = np.argsort(data.column("component").to_numpy())
                rotation = np.stack(data.column("axis").to_numpy(zero_copy_only=False))[order].T
                eigenvalues = data.column("eigenvalue").to_numpy()[order]
                mean = np.stack(data.column("mean").to_numpy(zero_copy_only=False))[0]
                self._rotation = SpectralRotation(rotation, eigenvalues, mean, int(data.column("n_fitted")[0].as_py()))
        return self._rotation

    def _save_rotation(self, rotation: SpectralRotation) -> None:
        dim = rotation.dim
        data = pa.table(
            {
                "component": pa.array(np.arange(dim), pa.int32()),
                "axis": pa.FixedSizeListArray.from_arrays(pa.array(rotation.rotation.T.reshape(-1), pa.float32()), dim),
                "eigenvalue": pa.array(rotation.eigenvalues, pa.float64()),
                "mean": pa.FixedSizeListArray.from_arrays(pa.array(np.tile(rotation.mean, dim), pa.float32()), dim),
                "n_fitted": pa.array([rotation.n_fitted] * dim, pa.int64()),
                "version": pa.array([rotation.version] * dim, pa.string()),
            }
        )
        self.db.create_table(ROTATION_TABLE, data, mode="overwrite")
        self._rotation = rotation

    # ---------------------------------------------------------------------------------------- writes
    def sync(
        self,
        documents: pl.DataFrame,
        vectors: pl.DataFrame | np.ndarray,
        rotation: SpectralRotation | None = None,
        refit_rotation: bool = False,
        ann_min_rows: int = ANN_MIN_ROWS,
    ) -> dict[str, SyncReport]:
        """Make the index hold exactly ``documents`` (all entity types at once) with their vectors.

        ``vectors`` is the embeddings frame (entity_type, entity_id, vector) or an array aligned with
        ``documents``. The spectral rotation is fitted on the first sync and kept afterwards (so unchanged
        rows keep their prefixes) unless ``rotation`` is given or ``refit_rotation`` is set; a new rotation
        rewrites every row. Entity types absent from ``documents`` but indexed before are emptied.
        """
        if isinstance(vectors, pl.DataFrame):
            aligned = documents.select("entity_type", "entity_id").join(
                vectors.select("entity_type", "entity_id", "vector"), on=["entity_type", "entity_id"], how="left"
            )
            if aligned.get_column("vector").null_count():
                raise ValueError("every document needs a vector: embed the documents before syncing the index")
            matrix = vectors_matrix(aligned)
        else:
            matrix = np.asarray(vectors, dtype=np.float32)
        if len(matrix) != len(documents):
            raise ValueError(f"{len(documents)} documents but {len(matrix)} vectors")

        current = self.rotation()
        if rotation is None:
            if current is None or refit_rotation:
                rotation = SpectralRotation.fit(matrix) if len(matrix) >= 2 else None
            else:
                rotation = current
        if rotation is not None and (current is None or rotation.version != current.version):
            self._save_rotation(rotation)
        rotation_version = rotation.version if rotation is not None else "identity"
        coarse = rotation.transform(matrix, COARSE_SCALE) if rotation is not None else matrix[:, :COARSE_SCALE]

        documents = documents.with_columns(_row_hash(documents))
        reports = {}
        types = [t for t in ENTITY_TABLES if t in set(documents.get_column("entity_type").unique().to_list())]
        types += [t for t in self.entity_types() if t not in types]
        for entity_type in types:
            mask = (documents.get_column("entity_type") == entity_type).to_numpy()
            reports[entity_type] = self._sync_table(
                entity_type, documents.filter(pl.Series(mask)), matrix[mask], coarse[mask], rotation_version, ann_min_rows
            )
        self._tables.clear()
        self._has_ann.clear()
        self._memory.clear()
        self._pinned.clear()
        return reports

    def _sync_table(self, entity_type, rows, vectors, coarse, rotation_version, ann_min_rows) -> SyncReport:
        started = time.perf_counter()
        data = _arrow_table(rows, vectors, coarse, rotation_version)
        existing = None
        if entity_type in self._table_names():
            table = self.db.open_table(entity_type)
            existing = pl.from_arrow(table.to_arrow().select(["entity_id", "row_hash", "rotation_version"]))
        if existing is None or len(existing) == 0 or len(rows) == 0 or (
            existing.get_column("rotation_version").unique().to_list() != [rotation_version]
        ):
            # first build, emptied type, or a new rotation: write the whole table
            old_ids = set(existing.get_column("entity_id").to_list()) if existing is not None else set()
            new_ids = set(rows.get_column("entity_id").to_list())
            table = self.db.create_table(entity_type, data, mode="overwrite")
            new, updated, reused, deleted = len(new_ids - old_ids), len(new_ids & old_ids), 0, len(old_ids - new_ids)
            if existing is not None and len(existing) and len(rows):
                unchanged = rows.join(existing, on=["entity_id", "row_hash"], how="semi")
                reused, updated = len(unchanged), updated - len(unchanged)
        else:
            joined = rows.select("entity_id", "row_hash").join(
                existing.select("entity_id", pl.col("row_hash").alias("old")), on="entity_id", how="left"
            )
            new = int(joined.get_column("old").is_null().sum())
            updated = int(((joined.get_column("old") != joined.get_column("row_hash")) & joined.get_column("old").is_not_null()).sum())
            reused = len(rows) - new - updated
            deleted = len(existing.join(rows.select("entity_id"), on="entity_id", how="anti"))
            if deleted:
                gone = existing.join(rows.select("entity_id"), on="entity_id", how="anti").get_column("entity_id").to_list()
                for start in range(0, len(gone), 1000):
                    table.delete(f"entity_id IN ({', '.join(_quote(i) for i in gone[start:start + 1000])})")
            if new or updated:
                changed_ids = joined.filter(pl.col("old").is_null() | (pl.col("old") != pl.col("row_hash")))
                keep = np.isin(rows.get_column("entity_id").to_numpy(), changed_ids.get_column("entity_id").to_numpy())
                table.merge_insert("entity_id").when_matched_update_all().when_not_matched_insert_all().execute(
                    data.filter(pa.array(keep))
                )
        ann = self._ensure_indexes(table, len(rows), ann_min_rows, rebuilt=existing is None or new + updated + deleted > 0)
        return SyncReport(entity_type, len(rows), new, updated, reused, deleted, int(table.version), ann,
                          time.perf_counter() - started)

    def _ensure_indexes(self, table, rows: int, ann_min_rows: int, rebuilt: bool) -> str | None:
        from lancedb.index import FTS, BTree, IvfHnswSq

        names = {getattr(i, "columns", [None])[0]: i for i in table.list_indices()}
        if rows == 0:
            return None
        if "entity_id" not in names:
            table.create_index("entity_id", config=BTree())
        if "text" not in names:
            table.create_index("text", config=FTS(with_position=False))
        ann = None
        if rows >= ann_min_rows:
            ann = "IVF_HNSW_SQ(vector_96)"
            if "vector_96" not in names:
                # HNSW over the 96-dim spectral prefix, reranked on the full vector: measured in
                # benchmarks/semantic_speed.py (build time and p95 well below a 384-dim index at equal recall).
                table.create_index(
                    "vector_96",
                    config=IvfHnswSq(distance_type="cosine", num_partitions=max(1, rows // 200_000)),
                )
        if rebuilt and names:
            # fold new rows into the existing FTS / ANN / scalar indexes; keep older versions for pinned readers
            table.optimize(cleanup_older_than=timedelta(days=7))
        return ann

    # ---------------------------------------------------------------------------------------- reads
    def entity_vectors(self, entity_type: str) -> "EntityVectors | None":
        """The in-memory view of one table at the version this store reads (loaded once per handle).

        None when the table is larger than ``memory_max_rows`` (queries then go through LanceDB).
        """
        if entity_type in self._memory:
            return self._memory[entity_type]
        with self._memory_lock:  # concurrent first requests load it once
            if entity_type not in self._memory:
                table = self.table(entity_type)
                rows = table.count_rows()
                self._memory[entity_type] = (
                    EntityVectors.load(table, rows) if rows <= self.memory_max_rows else None
                )
        return self._memory[entity_type]

    def warm(self, entity_types: Iterable[str] | None = None) -> dict[str, int]:
        """Load the in-memory vectors now (a server calls this before serving); entity type -> rows."""
        out = {}
        for entity_type in entity_types or self.entity_types():
            if entity_type in self._table_names():
                loaded = self.entity_vectors(entity_type)
                out[entity_type] = len(loaded) if loaded is not None else 0
        return out

    def vector_of(self, entity_type: str, entity_id: str) -> np.ndarray:
        loaded = self.entity_vectors(entity_type)
        if loaded is not None:
            return loaded.vector(loaded.position_of(entity_id, entity_type))
        rows = (
            self.table(entity_type).search().where(f"entity_id = {_quote(entity_id)}").select(["vector"]).limit(1).to_arrow()
        )
        if rows.num_rows == 0:
            raise KeyError(f"no {entity_type} with id {entity_id!r} in the index")
        return np.asarray(rows.column("vector")[0].as_py(), dtype=np.float32)

    def _coarse_query(self, vector: np.ndarray) -> np.ndarray:
        rotation = self.rotation()
        return rotation.transform(vector[None, :], COARSE_SCALE)[0] if rotation else _unit(vector[:COARSE_SCALE])

    def search_vector(
        self,
        entity_type: str,
        vector: np.ndarray,
        limit: int = 10,
        filters: dict | None = None,
        exclude_ids: Iterable[str] = (),
        coarse_candidates: int = 5,
    ) -> list[dict]:
        """Entities of one type nearest to ``vector`` (cosine), best first, with the filters applied first.

        Candidates come from the 96-dim spectral prefix and are reranked exactly on the full vector (below
        ``EXACT_MAX_ROWS`` the scan is exact at 384). ``coarse_candidates`` applies to the LanceDB path.
        """
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        loaded = self.entity_vectors(entity_type)
        if loaded is None:
            return self._lance_search_vector(entity_type, vector, limit, filters, exclude_ids, coarse_candidates)
        mask = loaded.mask(filters)
        exclude = [p for p in (loaded.positions.get(i) for i in exclude_ids) if p is not None]
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
        if loaded is None:
            vector = self.vector_of(entity_type, entity_id)
            results = self._lance_search_vector(entity_type, vector, limit, filters, [entity_id], 5)
        else:
            position = loaded.position_of(entity_id, entity_type)
            found, similarity = loaded.nearest(
                loaded.vector(position), loaded.coarse[position], limit, loaded.mask(filters), [position]
            )
            results = loaded.rows(entity_type, found, similarity)
        return [r for r in results if r["similarity"] >= min_similarity]

    def _lance_search_vector(self, entity_type, vector, limit, filters, exclude_ids, coarse_candidates) -> list[dict]:
        """The LanceDB path (tables too big to hold in memory): ANN over the prefix, rerank at 384."""
        table = self.table(entity_type)
        exclude = set(exclude_ids)
        want = limit + len(exclude)
        where = filter_sql(filters)
        columns = [*RESULT_COLUMNS, "vector"]
        if entity_type not in self._has_ann:  # listing indices costs a round trip: once per opened table
            self._has_ann[entity_type] = any(getattr(i, "columns", [None])[0] == "vector_96" for i in table.list_indices())
        if self._has_ann[entity_type]:
            builder = table.search(self._coarse_query(vector), vector_column_name="vector_96").distance_type("cosine")
            builder = builder.limit(want * coarse_candidates).ef(max(64, want * coarse_candidates))
        else:
            builder = table.search(vector, vector_column_name="vector").distance_type("cosine").limit(want)
        if where:
            builder = builder.where(where, prefilter=True)
        found = builder.select([*columns, "_distance"]).to_arrow()
        if found.num_rows == 0:
            return []
        full = np.stack(found.column("vector").to_numpy(zero_copy_only=False)).astype(np.float32)
        similarity = full @ vector
        order = np.argsort(-similarity, kind="stable")
        results = []
        ids = found.column("entity_id").to_pylist()
        for index in order:
            if ids[index] in exclude:
                continue
            row = {c: found.column(c)[int(index)].as_py() for c in RESULT_COLUMNS}
            row["id"] = row.pop("entity_id")
            row["entity_type"] = entity_type
            row["similarity"] = float(similarity[index])
            results.append(row)
            if len(results) >= limit:
                break
        return results

    def _embed_query(self, text: str) -> np.ndarray:
        if self._embedder is None:
            from holocrm_core.embedding import load_embedder

            self._embedder = load_embedder()
        return self._embedder.encode([text])[0]

    def _fulltext(self, entity_type: str, text: str, limit: int, filters: dict | None) -> list[dict]:
        table = self.table(entity_type)
        builder = table.search(text, query_type="fts", fts_columns="text").limit(limit)
        where = filter_sql(filters)
        if where:
            builder = builder.where(where, prefilter=True)
        found = builder.select([*RESULT_COLUMNS, "_score"]).to_arrow()
        results = []
        for i in range(found.num_rows):
            row = {c: found.column(c)[i].as_py() for c in RESULT_COLUMNS}
            row["id"] = row.pop("entity_id")
            row["entity_type"] = entity_type
            row["bm25"] = float(found.column("_score")[i].as_py())
            results.append(row)
        return results

    def search(
        self,
        text: str,
        entity_types: list[str] | None = None,
        mode: str = "hybrid",
        limit: int = 10,
        filters: dict | None = None,
    ) -> list[dict]:
        """Free-text search across entity types, best first.

        ``vector``: meaning ("budget concerns" finds "worried about the cost"); ``fulltext``: BM25 on the
        words; ``hybrid``: both lists fused by reciprocal rank (``score``), which keeps exact names and ids
        findable while paraphrases still match.
        """
        if mode not in ("hybrid", "vector", "fulltext"):
            raise ValueError(f"unknown search mode {mode!r}: use hybrid, vector or fulltext")
        types = entity_types or self.entity_types()
        for t in types:
            if t not in ENTITY_TABLES:
                raise ValueError(f"unknown entity type {t!r}: use one of {list(ENTITY_TABLES)}")
        types = [t for t in types if t in self._table_names()]
        depth = max(limit * 3, 20)
        vector_lists, text_lists = [], []
        if mode in ("hybrid", "vector"):
            query = self._embed_query(text)
            vector_lists = [self.search_vector(t, query, limit=depth, filters=filters) for t in types]
        if mode in ("hybrid", "fulltext"):
            text_lists = [self._fulltext(t, text, depth, filters) for t in types]

        if mode == "vector":
            merged = sorted((r for rs in vector_lists for r in rs), key=lambda r: -r["similarity"])
            for r in merged:
                r["score"] = r["similarity"]
            return merged[:limit]
        if mode == "fulltext":
            merged = sorted((r for rs in text_lists for r in rs), key=lambda r: -r["bm25"])
            for r in merged:
                r["score"] = r["bm25"]
            return merged[:limit]

        fused: dict[tuple[str, str], dict] = {}
        # rank within the merged list of each mode, so types compete on the same scale
        vector_ranked = sorted((r for rs in vector_lists for r in rs), key=lambda r: -r["similarity"])
        text_ranked = sorted((r for rs in text_lists for r in rs), key=lambda r: -r["bm25"])
        for source, ranked in (("vector", vector_ranked), ("fulltext", text_ranked)):
            for rank, row in enumerate(ranked, start=1):
                key = (row["entity_type"], row["id"])
                entry = fused.setdefault(key, {**row, "score": 0.0, "matched_by": []})
                entry.update({k: v for k, v in row.items() if k in ("similarity", "bm25")})
                entry["score"] += 1.0 / (RRF_K + rank)
                entry["matched_by"].append(source)
        return sorted(fused.values(), key=lambda r: -r["score"])[:limit]
