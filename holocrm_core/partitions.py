"""Partitioned warehouse tables: export batch x a stable hash shard of the entity id.

The expensive tables (staged records, entity documents, embeddings, attachment texts, scores of open
records) are written one partition at a time so work fans out (``pipelines.partitions`` declares them to
Dagster). A partition is one versioned warehouse table (``holocrm_core.warehouse``)::

    warehouse/_partitions/NAME/_batches.json           batch order (first write first) and the union's batch
    warehouse/_partitions/NAME/<batch>/shard-0003.parquet   (+ its _versions/): one (batch, shard) partition
    warehouse/NAME.parquet                              the union: every shard of the newest complete batch

Writing a partition replaces its rows (a re-run of one shard rewrites that one file and nothing else; the
same rows again make no new version), so rows are never appended twice. The plain table ``NAME`` is the
union of the newest *complete* batch (all of its shards written): each export batch is a full snapshot of
the CRM (``holocrm_core.landing``), so while a new batch is backfilled shard by shard, readers (the CLI, the
API, unpartitioned assets) keep the previous complete batch, and switch in one commit when the last shard
lands. The union is rebuilt after the partition's own commit and committed compare-and-swap over the union
version it was derived from (``Warehouse.write(expect_version=...)``; retried on ``CommitConflict``), so two
shards committing at once cannot lose each other's rows: the later union reads both. The same on a folder or
on object storage (child warehouses, an atomically updated manifest document).

Shards: ``shard_of(ids, n)`` is CRC-32 of the id's UTF-8 bytes modulo ``n`` (stable across processes,
machines and library versions, unlike polars' ``hash``); a row without an id goes to the shard of "".
``HOLOCRM_SHARDS`` sets ``n`` (default 4); changing it changes every partition key, so re-run the graph.
"""

from __future__ import annotations

import os
import re
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import polars as pl

from holocrm_core.warehouse import CommitConflict, Warehouse

DEFAULT_SHARDS = 4
UNION_ATTEMPTS = 20  # union rebuilds retried on a commit conflict (every shard of a batch at once)
PARTITIONS_DIR = "_partitions"
MANIFEST = "_batches"  # a warehouse document: _batches.json beside the batches
_BATCH_KEY = re.compile(r"[^A-Za-z0-9_.-]+")


def shard_count() -> int:
    """How many shards each batch is cut into (``HOLOCRM_SHARDS``, default 4, at least 1)."""
    raw = os.environ.get("HOLOCRM_SHARDS", "")
    if not raw:
        return DEFAULT_SHARDS
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"HOLOCRM_SHARDS must be a whole number of shards, got {raw!r}") from exc
    if value < 1:
        raise ValueError(f"HOLOCRM_SHARDS must be at least 1, got {value}")
    return value


def shard_of(ids: pl.Series | Iterable[str | None], shards: int) -> pl.Series:
    """The shard (0..shards-1) of each id: CRC-32 of its UTF-8 bytes, surrounding spaces stripped (as staging
    strips them, so a raw row and its staged row fall in the same shard), modulo ``shards``."""
    values = ids.cast(pl.String).to_list() if isinstance(ids, pl.Series) else list(ids)
    return pl.Series(
        "shard",
        [zlib.crc32(("" if v is None else str(v).strip()).encode()) % shards for v in values],
        pl.Int32,
    )


def frame_shards(frame: pl.DataFrame, column: str, count: int) -> pl.Series:
    """The shard of each row by ``column``; a frame without that column (an export missing its id
    column, which staging then rejects) falls wholly in the shard of the empty id."""
    if column in frame.columns:
        return shard_of(frame.get_column(column), count)
    return shard_of([""] * frame.height, count)


def in_shards(frame: pl.DataFrame, column: str, shards: Iterable[int], count: int) -> pl.DataFrame:
    """The rows of ``frame`` whose ``column`` falls in one of ``shards``."""
    wanted = set(shards)
    if set(range(count)) <= wanted:
        return frame
    keep = frame_shards(frame, column, count).is_in(sorted(wanted))
    # a partition's input already holds only its shards: no copy (a 1M-contact shard's vectors are 1.2 GB)
    return frame if keep.all() else frame.filter(keep)


def batch_key(name: str) -> str:
    """A partition key for an export batch folder name (letters, digits, _ . - kept; the rest become _)."""
    key = _BATCH_KEY.sub("_", name).strip("_") or "batch"
    return key if key[0].isalnum() or key[0] == "_" else f"b{key}"


def shard_table(shard: int) -> str:
    return f"shard-{shard:04d}"


def split_by_shard(
    name: str, frame: pl.DataFrame, keys: list[tuple[str, int]], column: str | None, count: int
) -> Mapping[tuple[str, int], pl.DataFrame]:
    """One frame of a run over ``keys`` (partitions of one batch) cut into its partitions by the shard of
    ``column``. One key: the whole frame is that partition. A row of a shard outside ``keys`` is an error
    (it would be lost or land in a partition this run does not own), never dropped."""
    keys = sorted(set(keys))
    if len(keys) == 1:
        return {keys[0]: frame}
    if len({b for b, _ in keys}) != 1:
        raise ValueError(
            f"{name}: one output covers partitions of several export batches "
            f"({sorted({b for b, _ in keys})}): run one batch per run"
        )
    if column is None:
        raise ValueError(
            f"{name}: several shards in one output need its shard column (SHARD_COLUMN metadata)"
        )
    batch = keys[0][0]
    shards = frame_shards(frame, column, count)
    stray = set(shards.unique().to_list()) - {s for _, s in keys}
    if stray:
        raise ValueError(f"{name}: rows of shards {sorted(stray)} in a run of shards {[s for _, s in keys]}")
    return ShardParts(frame, shards, [(batch, s) for _, s in keys])


class ShardParts(Mapping):
    """The partitions of one frame, each cut when it is asked for and not kept: a writer that takes them one
    at a time holds one shard's copy beside the frame, not a second copy of the whole frame (at 1M contacts
    the staged activities are about 2 GB)."""

    def __init__(self, frame: pl.DataFrame, shards: pl.Series, keys: list[tuple[str, int]]):
        self._frame, self._shards, self._keys = frame, shards, list(keys)

    def __getitem__(self, key: tuple[str, int]) -> pl.DataFrame:
        if key not in self._keys:
            raise KeyError(key)
        return self._frame.filter(self._shards == key[1])

    def __iter__(self):
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def layout(warehouse: Warehouse, names: Iterable[str], count: int) -> dict:
    """What is built of each partitioned table ``names``, per export batch (``holocrm where``): for each batch
    the tables with every one of the ``count`` shards, those with some (and which), those with none, and
    whether the plain tables are that batch's union. Reads only the manifests and the partitions' listings."""
    tables = {name: PartitionedTable(warehouse, name) for name in names}
    batches = dict.fromkeys(batch for table in tables.values() for batch in table.batches())
    every = set(range(count))
    described = {}
    for batch in batches:
        complete, partial, missing, union = [], {}, [], []
        for name, table in tables.items():
            written = table.shards_written(batch) & every
            if written == every:
                complete.append(name)
            elif written:
                partial[name] = sorted(written)
            else:
                missing.append(name)
            if table.union_batch() == batch:
                union.append(name)
        described[batch] = {
            "complete": len(missing) == 0 and not partial,
            "tables_with_every_shard": len(complete),
            "tables_with_some_shards": partial,
            "tables_with_no_shard": missing,
            "served_as_plain_tables": len(union),
        }
    return {"shards": count, "batches": described}


@dataclass
class PartitionWrite:
    partitions: int
    union_batch: str | None
    union_rows: int | None


class PartitionedTable:
    """One table cut into (batch, shard) partitions beside the warehouse's plain table of the same name.

    Storage-neutral: partitions are child warehouses (``Warehouse.child``), the manifest is a warehouse
    document updated atomically (``update_document``: a file lock locally, a conditional PUT on object
    storage), and the union is committed compare-and-swap (``write(expect_version=...)``): a writer whose
    union was derived from partitions another writer has since extended gets ``CommitConflict``, re-reads
    and rebuilds, so of two shards committing at once the later union holds both."""

    def __init__(self, warehouse: Warehouse, name: str):
        self.warehouse = warehouse
        self.name = name
        self.folder = warehouse.child(PARTITIONS_DIR, name)

    def exists(self) -> bool:
        return self.folder.read_document(MANIFEST) is not None

    def batch(self, batch: str) -> Warehouse:
        return self.folder.child(batch)

    # -- manifest --------------------------------------------------------------------------------------
    def _manifest(self) -> dict:
        return self.folder.read_document(MANIFEST) or {"batches": [], "union": None, "shards": None}

    def union_batch(self) -> str | None:
        """The batch the plain table ``NAME`` is the union of (None before any batch was complete)."""
        return self._manifest().get("union")

    def batches(self) -> list[str]:
        """Batches in the order they were first written."""
        return list(self._manifest()["batches"])

    def shards_written(self, batch: str) -> set[int]:
        names = self.batch(batch).tables()
        return {int(n.split("-")[1]) for n in names if n.startswith("shard-") and n[6:].isdigit()}

    # -- writing ---------------------------------------------------------------------------------------
    def write_partitions(
        self, parts: Mapping[tuple[str, int], pl.DataFrame], count: int, whole: pl.DataFrame | None = None
    ) -> PartitionWrite:
        """Commit each frame of ``parts`` as its (batch, shard) partition (its rows replace the partition's),
        then the union. Partitions commit in parallel (each is its own versioned table); the batch order is
        recorded atomically; the union is rebuilt *after* this writer's partitions committed and committed
        only over the union version it was derived from (retried on a conflict), so of two shards
        committing at once the later union reads both: none is lost, none is counted twice. ``whole``: the
        frame ``parts`` were cut from, when they are every shard of their batch; it becomes the union as it
        is, in its own row order (the default path's union is then the table an unpartitioned run wrote)."""
        for batch, shard in sorted(parts):  # one at a time: a ShardParts cuts each only now
            self.batch(batch).write(shard_table(shard), parts[(batch, shard)])
        touched = {b for b, _ in parts}

        def add_batches(manifest: dict | None) -> dict:
            manifest = dict(manifest or {"batches": [], "union": None})
            manifest["batches"] = list(manifest["batches"]) + sorted(touched - set(manifest["batches"]))
            manifest["shards"] = count
            return manifest

        manifest = self.folder.update_document(MANIFEST, add_batches)
        covers = whole is not None and len(touched) == 1 and {s for _, s in parts} >= set(range(count))
        for attempt in range(UNION_ATTEMPTS):
            try:
                written = self._refresh_union(manifest, count, touched, whole if covers else None)
                break
            except CommitConflict:
                if attempt == UNION_ATTEMPTS - 1:
                    raise
                manifest = self._manifest()  # another shard committed a union meanwhile: rebuild from it
                time.sleep(0.02 * (attempt + 1))
        return PartitionWrite(len(parts), written.union_batch, written.union_rows)

    def _refresh_union(
        self, manifest: dict, count: int, touched: set[str], whole: pl.DataFrame | None
    ) -> PartitionWrite:
        complete = [b for b in manifest["batches"] if set(range(count)) <= self.shards_written(b)]
        newest = complete[-1] if complete else None
        if newest is None:
            return PartitionWrite(0, None, None)
        if newest == manifest.get("union") and newest not in touched and self.warehouse.exists(self.name):
            return PartitionWrite(0, newest, None)  # the union's batch did not change: nothing to rewrite
        derived_from = self.warehouse.current_version(self.name)  # read before the partitions are
        if whole is not None and newest in touched:
            union = whole
        else:  # streamed from the shard files (a union larger than memory, e.g. 1M contacts' vectors)
            union = self._concat_lazy([self.batch(newest).scan(shard_table(s)) for s in range(count)])
        self.warehouse.write(
            self.name,
            union,
            operation=f"union of {count} shards of batch {newest}",
            expect_version=derived_from,
        )

        def set_union(document: dict | None) -> dict:
            return {**(document or {"batches": [newest]}), "union": newest}

        self.folder.update_document(MANIFEST, set_union)
        rows = union.height if isinstance(union, pl.DataFrame) else None
        return PartitionWrite(0, newest, rows)

    def scan_partitions(self, keys: list[tuple[str, int]]) -> pl.LazyFrame | None:
        """The partitions ``keys`` as one lazy scan of their current versions' files (``scan_version``);
        None if none is written, and an error naming a missing one among written ones."""
        frames, missing = [], []
        for batch, shard in sorted(set(keys)):
            if shard in self.shards_written(batch):
                frames.append(self.batch(batch).scan_version(shard_table(shard)))
            else:
                missing.append((batch, shard))
        if not frames:
            return None
        if missing:
            raise FileNotFoundError(
                f"{self.name}: partitions {', '.join(f'{b}|{s}' for b, s in missing)} are not built yet"
            )
        return frames[0] if len(frames) == 1 else self._concat_lazy(frames)

    @staticmethod
    def _concat_lazy(frames: list[pl.LazyFrame]) -> pl.LazyFrame:
        names = [tuple(f.collect_schema().names()) for f in frames]
        how = "vertical_relaxed" if len(set(names)) == 1 else "diagonal_relaxed"  # an empty shard's order
        return pl.concat(frames, how=how)

    @staticmethod
    def _concat(frames: list[pl.DataFrame]) -> pl.DataFrame:
        try:
            return pl.concat(frames, how="vertical_relaxed")
        except pl.exceptions.PolarsError:  # columns in another order (an empty shard's frame): by name
            return pl.concat(frames, how="diagonal_relaxed")

    # -- reading ---------------------------------------------------------------------------------------
    def read_partitions(
        self, keys: list[tuple[str, int]], fallback_to_previous_batch: bool = False
    ) -> pl.DataFrame | None:
        """The partitions ``keys`` concatenated; None if none is written. A missing one among written ones
        is an error naming it. ``fallback_to_previous_batch``: a shard not written in its batch is read from
        the newest earlier batch that has it (a cache of the shard's previous rows)."""
        frames, missing = [], []
        batches = self.batches()
        for batch, shard in sorted(set(keys)):
            source = batch
            if shard not in self.shards_written(batch) and fallback_to_previous_batch:
                earlier = [b for b in batches if b != batch and shard in self.shards_written(b)]
                source = earlier[-1] if earlier else None
            if source is None or shard not in self.shards_written(source):
                missing.append((batch, shard))
                continue
            frames.append(self.batch(source).read(shard_table(shard)))
        if not frames:
            return None
        if missing and not fallback_to_previous_batch:
            raise FileNotFoundError(
                f"{self.name}: partitions {', '.join(f'{b}|{s}' for b, s in missing)} are not built yet"
            )
        return self._concat(frames)
