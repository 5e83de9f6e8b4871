"""The similarity store: one LanceDB table per entity type (contact, company, deal, activity).

Each row is an entity's document (text, scalar filter columns) with its full 384-dim vector and the
96-dim spectral prefix. ``sync`` upserts by entity id and a hash of the row (text + filters), deletes
entities that are gone, maintains a full-text index, a scalar index on the id and, once a table is large
enough, an ANN index. Every sync leaves a table version; ``versions()`` names them and ``checkout`` (or the
``version`` argument) pins a reader to them, which is how a server keeps answering from the index it loaded.

Queries: ``similar`` (entities like this one), ``search_vector``, and ``search`` from free text in
``vector``, ``fulltext`` or ``hybrid`` mode (reciprocal rank fusion of the two lists), each with scalar
prefilters such as industry, stage, owner.
"""

from __future__ import annotations

import hashlib
import os
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
# LanceDB's exact scan costs about 20 ms whatever the size (measured at 10k rows: p50 24 ms, while numpy takes
# 0.3 ms), so the ANN index (HNSW over the 96-dim prefix, exact rerank at 384) is built from small sizes on.
ANN_MIN_ROWS = 2_000
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
        self._rotation = None

    def checkout_latest(self) -> None:
        self._pinned.clear()
        self._tables.clear()
        self._has_ann.clear()
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
    def vector_of(self, entity_type: str, entity_id: str) -> np.ndarray:
        rows = (
            self.table(entity_type).search().where(f"entity_id = {_quote(entity_id)}").select(["vector"]).limit(1).to_arrow()
        )
        if rows.num_rows == 0:
            raise KeyError(f"no {entity_type} with id {entity_id!r} in the index")
        return np.asarray(rows.column("vector")[0].as_py(), dtype=np.float32)

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

        With an ANN index the candidates come from the 96-dim spectral prefix (``limit * coarse_candidates``
        of them) and are reranked exactly on the full vector; without one the scan is exact at 384.
        """
        table = self.table(entity_type)
        exclude = set(exclude_ids)
        want = limit + len(exclude)
        where = filter_sql(filters)
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        columns = [*RESULT_COLUMNS, "vector"]
        if entity_type not in self._has_ann:  # listing indices costs a round trip: once per opened table
            self._has_ann[entity_type] = any(getattr(i, "columns", [None])[0] == "vector_96" for i in table.list_indices())
        has_ann = self._has_ann[entity_type]
        if has_ann:
            rotation = self.rotation()
            query = rotation.transform(vector[None, :], COARSE_SCALE)[0] if rotation else vector[:COARSE_SCALE]
            builder = table.search(query, vector_column_name="vector_96").distance_type("cosine")
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

    def similar(
        self,
        entity_type: str,
        entity_id: str,
        limit: int = 10,
        min_similarity: float = 0.0,
        filters: dict | None = None,
    ) -> list[dict]:
        """The ``limit`` entities of the same type most like ``entity_id`` (itself excluded)."""
        vector = self.vector_of(entity_type, entity_id)
        results = self.search_vector(entity_type, vector, limit=limit, filters=filters, exclude_ids=[entity_id])
        return [r for r in results if r["similarity"] >= min_similarity]

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
