"""The canonical tables on disk: versioned Parquet tables under HOLOCRM_HOME/warehouse, one commit per write.

Layout of one table ``NAME``::

    warehouse/NAME.parquet                     the current version (a hard link to one version file)
    warehouse/_versions/NAME/000007.parquet    every kept version, immutable once written
    warehouse/_versions/NAME/000007.json       what that version is: rows, columns, time, operation

A write is complete and validated before it is committed: the new version file is written beside the others,
fsync-ed and read back (row count and columns must match the frame), and only then is ``NAME.parquet``
swapped to it with one ``rename`` (the commit). A reader therefore sees the old version or the new one, never
half a table; a process killed before the rename leaves the previous version current (its half-written
file is an orphan that the next write removes). Readers that open ``NAME.parquet`` directly (the serving
loader, tests) keep working: it is still one Parquet file.

Previous versions stay readable (``read(name, version=N)``, ``history(name)``) and a rollback is itself a new
version whose content is the old one (``rollback(name, to=N)``), so history only ever grows forward. A write
whose file is byte-for-byte the current version (a re-run on the same export) makes no new version, and a
rollback hard-links the old file, so neither costs disk; every changed write costs one more copy of that
table until retention removes it.

Retention (``Retention``; the environment or the settings file's ``[warehouse]`` section, shown by
``holocrm where``), applied to a table after each of its commits:

- at most ``HOLOCRM_WAREHOUSE_VERSIONS`` versions per table, the current one included (default 5);
- at most ``HOLOCRM_WAREHOUSE_SUPERSEDED_MAX`` of superseded (non-current) versions per table, newest first
  (default 2GiB; ``none`` for no bound): at 1M contacts one version of the embeddings is 8.8 GB;
- always the current version (what ``NAME.parquet`` is and readers are served), and, unless
  ``HOLOCRM_WAREHOUSE_VERSIONS`` is 1, the newest superseded version, whatever its size: the version
  ``rollback`` needs to undo the last write (and what a reader that opened the table just before the last
  commit may still be reading, on object storage).

Versions are removed oldest first, so what is kept is always the most recent history without gaps.

On object storage (``s3://``) the same tables are committed with conditional writes of a manifest object
instead (holocrm_core/warehouse_s3.py); ``Warehouse("s3://bucket/prefix")`` returns that implementation.

Why not Delta Lake: measured in docs/architecture.md ("Versioned warehouse tables"); in short, the same
guarantees for this single-writer-per-home layout, and every reader of ``NAME.parquet`` left as it is.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

VERSIONS_DIR = "_versions"
DEFAULT_KEEP = 5
DEFAULT_SUPERSEDED_MAX = "2GiB"
_VERSION_FILE = re.compile(r"^(\d{6,})\.parquet$")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


class TableVersionError(ValueError):
    """A table or version that does not exist (the message names what does)."""


class CommitConflict(RuntimeError):
    """A conditional write lost: the table was not at the version the writer read (``expect_version``), or
    (on object storage) other writers kept winning the commit. Nothing of the write is visible."""


ANY_VERSION = object()  # write()'s default ``expect_version``: commit whatever the current version is


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}


def parse_size(raw: str | int) -> int | None:
    """Bytes from ``1500000``, ``500MB``, ``2GiB``, ``1.5GB`` (kB/MB/GB/TB decimal, KiB/MiB/GiB/TiB binary);
    None for ``none`` / ``unlimited`` (no bound). Raises ValueError naming what is accepted."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        if raw < 0:
            raise ValueError(f"a size cannot be negative: {raw}")
        return raw
    text = str(raw).strip()
    if text.lower() in ("none", "unlimited"):
        return None
    match = _SIZE.match(text)
    if not match:
        raise ValueError(
            f"{raw!r} is not a size: use bytes or a number with kB, MB, GB, TB (or KiB, MiB, GiB, TiB), "
            "or 'none' for no bound"
        )
    unit = (match.group(2) or "").lower()
    base = 1024 ** ("kmgt".index(unit[0]) + 1) if "i" in unit else _UNITS[unit[:1]]
    return int(float(match.group(1)) * base)


def format_size(size: int | None) -> str:
    if size is None:
        return "no bound"
    for unit, base in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= base:
            return f"{size / base:.1f} {unit}"
    return f"{size} bytes"


@dataclass(frozen=True)
class Retention:
    """How many versions of each table are kept, and how many bytes of superseded ones (module docstring)."""

    versions: int = DEFAULT_KEEP  # per table, the current one included; at least 1
    superseded_max: int | None = parse_size(
        DEFAULT_SUPERSEDED_MAX
    )  # bytes of non-current versions; None: any

    @classmethod
    def from_values(cls, versions: str | int = "", superseded_max: str | int = "") -> Retention:
        """From setting values ("" = the default); raises ValueError on a bad one."""
        count = DEFAULT_KEEP
        if versions not in ("", None):
            try:
                count = int(versions)
            except (TypeError, ValueError):
                count = 0
            if count < 1 or isinstance(versions, bool):
                raise ValueError(
                    f"warehouse versions {versions!r} (HOLOCRM_WAREHOUSE_VERSIONS) must be a whole number, at "
                    "least 1 (the current version; 2 or more keeps the version a rollback needs)"
                )
        try:
            limit = parse_size(DEFAULT_SUPERSEDED_MAX if superseded_max in ("", None) else superseded_max)
        except ValueError as exc:
            raise ValueError(f"warehouse superseded_max (HOLOCRM_WAREHOUSE_SUPERSEDED_MAX): {exc}") from exc
        return cls(count, limit)

    @classmethod
    def load(cls) -> Retention:
        """The retention in effect: the environment, then the settings file, then the defaults (raises
        ``holocrm_core.settings.SettingsError`` on a bad value)."""
        from holocrm_core.settings import Backends

        return Backends.load().warehouse_retention

    def describe(self) -> str:
        floor = "" if self.versions == 1 else " (the newest superseded one always: a rollback's)"
        return (
            f"{self.versions} versions per table, the current one included; superseded versions at most "
            f"{format_size(self.superseded_max)} per table{floor}"
        )

    def keep(self, versions: list[tuple[int, int | None]], current: int | None) -> set[int]:
        """Which of ``versions`` ((number, bytes) of the committed versions of one table) to keep, with
        ``current`` the version readers are served. Superseded versions are taken newest first while both
        bounds hold; the newest one is kept even over the byte bound (a rollback needs it) unless only one
        version is kept. Without a current version (a table not versioned yet) the newest ``versions``."""
        ordered = sorted(versions, reverse=True)
        if current is None:
            return {number for number, _ in ordered[: self.versions]}
        kept = {current}
        used = 0
        for rank, (number, size) in enumerate(n for n in ordered if n[0] < current):
            if len(kept) >= self.versions:
                break
            size = size or 0
            if rank > 0 and self.superseded_max is not None and used + size > self.superseded_max:
                break
            kept.add(number)
            used += size
        return kept


def _fsync_path(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _LazyShape:
    """The rows and columns a lazy frame will write (counted from its sources' metadata, not collected)."""

    def __init__(self, frame: pl.LazyFrame):
        self.columns = frame.collect_schema().names()
        self.width = len(self.columns)
        self.height = int(frame.select(pl.len()).collect().item())


class Warehouse:
    """Versioned tables under a folder, or under ``s3://bucket/prefix`` (then an ``ObjectWarehouse``: the same
    API, committed with conditional writes; holocrm_core/warehouse_s3.py)."""

    def __new__(cls, root: str | Path, *args, **kwargs):
        if cls is Warehouse and str(root).startswith("s3://"):
            from holocrm_core.warehouse_s3 import ObjectWarehouse

            return super().__new__(ObjectWarehouse)
        return super().__new__(cls)

    def __init__(self, root: str | Path):
        self.root = Path(root)

    # -- paths ---------------------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        """The current version of ``name`` (one Parquet file)."""
        return self.root / f"{name}.parquet"

    def versions_dir(self, name: str) -> Path:
        return self.root / VERSIONS_DIR / name

    def _version_path(self, name: str, version: int) -> Path:
        return self.versions_dir(name) / f"{version:06d}.parquet"

    def exists(self, name: str) -> bool:
        return self.path(name).exists()

    def tables(self) -> list[str]:
        """The tables with a current version, by name."""
        if not self.root.exists():
            return []
        return sorted(p.name[: -len(".parquet")] for p in self.root.glob("*.parquet"))

    # -- writing -------------------------------------------------------------------------------------
    def write(
        self, name: str, frame: pl.DataFrame, operation: str = "write", expect_version=ANY_VERSION
    ) -> Path:
        """Commit ``frame`` as the new current version of ``name``; returns the current path.

        ``expect_version`` (an int, or None for "no table yet"): commit only if the table is still at that
        version, else raise CommitConflict (compare-and-swap: a writer that derived ``frame`` from what it
        read, such as a union of partitions, re-reads and retries instead of overwriting a newer commit).

        ``frame`` may be a ``pl.LazyFrame`` (a union of partition files): it is streamed to the file
        (``sink_parquet``), so a table larger than memory is written without being collected."""
        self._check_name(name)
        retention = Retention.load()  # a bad setting fails here, before anything is written
        with self._table_lock(name):
            if expect_version is not ANY_VERSION and self.current_version(name) != expect_version:
                raise CommitConflict(
                    f"table {name!r} is at version {self.current_version(name)}, not {expect_version}"
                )
            self._adopt_unversioned(name)
            version = self._next_version(name)
            target = self._version_path(name, version)
            tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
            try:
                # zstd level 1: about 15% faster writes than the default level for about 8% larger files.
                if isinstance(frame, pl.LazyFrame):
                    expected = _LazyShape(frame)
                    frame.sink_parquet(tmp, compression="zstd", compression_level=1, statistics=True)
                    frame = expected
                else:
                    frame.write_parquet(tmp, compression="zstd", compression_level=1, statistics=True)
                digest = _file_digest(tmp)
                current = self.current_version(name)
                if current is not None and self._read_meta(name, current).get("sha1") == digest:
                    tmp.unlink()  # the same table again: the current version stays, no copy is kept
                    return self.path(name)
                _fsync_path(tmp)
                self._validate(tmp, frame)
                os.rename(tmp, target)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            self._write_meta(
                name, version, frame.height, frame.columns, operation, target.stat().st_size, sha1=digest
            )
            self._commit(name, target)
            self._prune(name, retention)
        return self.path(name)

    def rollback(self, name: str, to: int) -> int:
        """Make version ``to`` current again, as a new version (history grows forward); returns its number."""
        self._check_name(name)
        retention = Retention.load()
        with self._table_lock(name):
            source = self._version_path(name, to)
            if not source.exists() or not self._read_meta(name, to).get("committed"):
                raise TableVersionError(self._missing_version(name, to))
            meta = self._read_meta(name, to)
            version = self._next_version(name)
            target = self._version_path(name, version)
            self._link_or_copy(source, target)
            self._write_meta(
                name,
                version,
                meta.get("rows"),
                meta.get("columns", []),
                f"rollback to {to}",
                target.stat().st_size,
                sha1=meta.get("sha1"),
            )
            self._commit(name, target)
            self._prune(name, retention)
        return version

    # -- documents -----------------------------------------------------------------------------------
    def read_document(self, name: str) -> dict | None:
        """A small JSON document kept beside the tables (``NAME.json``: a partition manifest, say), or None."""
        self._check_name(name)
        try:
            return json.loads((self.root / f"{name}.json").read_text())
        except FileNotFoundError:
            return None

    def update_document(self, name: str, change: Callable[[dict | None], dict]) -> dict:
        """Read-modify-write ``NAME.json`` atomically against other writers (a file lock here, a conditional
        PUT on object storage): ``change`` gets the current document (None if absent) and returns the new one,
        which is returned. ``change`` may run more than once (on object storage, after a lost race)."""
        self._check_name(name)
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / f".{name}.json.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            document = change(self.read_document(name))
            path = self.root / f"{name}.json"
            tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
            tmp.write_text(json.dumps(document))
            os.replace(tmp, path)
            return document
        finally:
            os.close(fd)

    def child(self, *parts: str) -> Warehouse:
        """A warehouse rooted below this one (``_partitions/NAME/<batch>``), on the same storage."""
        return Warehouse(self.root.joinpath(*parts))

    # -- reading -------------------------------------------------------------------------------------
    def read(self, name: str, version: int | None = None) -> pl.DataFrame:
        if version is not None:
            path = self._version_path(name, version)
            if not path.exists():
                raise TableVersionError(self._missing_version(name, version))
            return pl.read_parquet(path)
        path = self.path(name)
        if not path.exists():
            raise FileNotFoundError(
                f"table {name!r} has not been built yet ({path} is missing): run `holocrm run` first"
            )
        return pl.read_parquet(path)

    def scan(self, name: str) -> pl.LazyFrame:
        return pl.scan_parquet(self.path(name))

    def scan_version(self, name: str) -> pl.LazyFrame:
        """A scan of the current version's own file (immutable) rather than of ``NAME.parquet``: a reader
        that collects it in several slices sees one version even if a writer commits meanwhile (and fails
        loudly, never mixes two, if retention removed that version before it finished)."""
        version = self.current_version(name)
        return pl.scan_parquet(self.path(name) if version is None else self._version_path(name, version))

    def current_version(self, name: str) -> int | None:
        """The version number ``NAME.parquet`` is, or None (no table, or one written before versioning)."""
        try:
            current = self.path(name).stat()
        except FileNotFoundError:
            return None
        for version in reversed(self._versions(name)):
            try:
                st = self._version_path(name, version).stat()
            except FileNotFoundError:
                continue
            if (st.st_ino, st.st_dev) == (current.st_ino, current.st_dev):
                return version
        return None

    def stamp(self, name: str) -> str | None:
        """What changes whenever ``name`` is committed (None: no such table), cheap enough to poll: the
        current file's inode, mtime and size here, the manifest's ETag on object storage."""
        try:
            st = self.path(name).stat()
        except FileNotFoundError:
            return None
        return f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"

    def modified_at(self, name: str) -> datetime | None:
        """When the current version of ``name`` was committed (None: no such table)."""
        try:
            return datetime.fromtimestamp(self.path(name).stat().st_mtime, UTC)
        except FileNotFoundError:
            return None

    def history(self, name: str) -> list[dict]:
        """Every kept version of ``name``, oldest first: version, rows, columns, written_at, operation,
        bytes, current. Versions written but never committed (a crash before the swap) are not listed."""
        current = self.current_version(name)
        if current is None and not self.exists(name) and not self._versions(name):
            raise TableVersionError(self._unknown_table(name))
        out = []
        for version in self._versions(name):
            meta = self._read_meta(name, version)
            if not meta.get("committed"):
                continue  # written but never made current: a write killed before its commit
            out.append(
                {
                    "version": version,
                    "rows": meta.get("rows"),
                    "columns": len(meta.get("columns", [])),
                    "written_at": meta.get("written_at"),
                    "operation": meta.get("operation", "write"),
                    "bytes": meta.get("bytes"),
                    "current": version == current,
                }
            )
        if current is None and self.exists(name):
            out.append(
                {"version": None, "operation": "unversioned (written before versioning)", "current": True}
            )
        return out

    # -- internals -----------------------------------------------------------------------------------
    @staticmethod
    def _check_name(name: str) -> None:
        if not _NAME.match(name) or name == VERSIONS_DIR:
            raise ValueError(f"{name!r} is not a valid table name (letters, digits, _ . -)")

    @contextmanager
    def _table_lock(self, name: str) -> Iterator[None]:
        """Writers of one table take turns (version numbers stay unique); readers never wait."""
        folder = self.versions_dir(name)
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def _versions(self, name: str) -> list[int]:
        folder = self.versions_dir(name)
        if not folder.exists():
            return []
        found = (_VERSION_FILE.match(p.name) for p in folder.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def _next_version(self, name: str) -> int:
        versions = self._versions(name)
        return (versions[-1] + 1) if versions else 1

    def _meta_path(self, name: str, version: int) -> Path:
        return self.versions_dir(name) / f"{version:06d}.json"

    def _read_meta(self, name: str, version: int) -> dict:
        try:
            return json.loads(self._meta_path(name, version).read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def _write_meta(self, name, version, rows, columns, operation, size, committed=False, sha1=None) -> None:
        meta = {
            "version": version,
            "rows": rows,
            "columns": list(columns),
            "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "operation": operation,
            "bytes": size,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "committed": committed,
            "sha1": sha1,
        }
        path = self._meta_path(name, version)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, path)

    @staticmethod
    def _validate(path: Path, frame: pl.DataFrame) -> None:
        """A version is committed only when the file reads back with the frame's rows and columns."""
        written = pl.scan_parquet(path)
        columns = written.collect_schema().names()
        rows = written.select(pl.len()).collect().item()
        if rows != frame.height or columns != frame.columns:
            raise OSError(
                f"the table file {path} did not read back as written "
                f"({rows} rows, {len(columns)} columns; expected {frame.height}, {frame.width}): not committed"
            )

    @staticmethod
    def _link_or_copy(source: Path, target: Path) -> None:
        tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
        tmp.unlink(missing_ok=True)
        try:
            os.link(source, tmp)
        except OSError:  # a filesystem without hard links: a copy is correct, only bigger
            shutil.copyfile(source, tmp)
            _fsync_path(tmp)
        os.rename(tmp, target)

    def _commit(self, name: str, version_file: Path) -> None:
        """The commit: ``NAME.parquet`` becomes ``version_file`` in one rename."""
        current = self.path(name)
        tmp = current.with_name(f".{current.name}.tmp{os.getpid()}")
        tmp.unlink(missing_ok=True)
        self._link_or_copy(version_file, tmp)
        os.replace(tmp, current)
        _fsync_path(self.root, directory=True)
        version = int(version_file.stem)
        meta = self._read_meta(name, version)
        meta["committed"] = True
        meta_path = self._meta_path(name, version)
        tmp_meta = meta_path.with_name(f".{meta_path.name}.tmp{os.getpid()}")
        tmp_meta.write_text(json.dumps(meta))
        os.replace(tmp_meta, meta_path)

    def _adopt_unversioned(self, name: str) -> None:
        """A table written before versioning (or by hand) becomes a version first, so it can be rolled back to."""
        if self.exists(name) and self.current_version(name) is None:
            version = self._next_version(name)
            target = self._version_path(name, version)
            self._link_or_copy(self.path(name), target)
            try:
                schema = pl.read_parquet_schema(target)
                rows = pl.scan_parquet(target).select(pl.len()).collect().item()
            except Exception:  # an unreadable leftover: keep it as a version anyway, described as such
                schema, rows = {}, None
            self._write_meta(
                name,
                version,
                rows,
                list(schema),
                "adopted (written before versioning)",
                target.stat().st_size,
            )
            self._commit(name, target)

    def _prune(self, name: str, retention: Retention | None = None) -> list[int]:
        """Apply ``retention`` (``Retention.keep``) to ``name``'s versions and remove the orphans of crashed
        writes (temporary files, versions written but never committed, older than the current one). Returns
        the versions removed. Idempotent; the caller holds the table lock."""
        retention = retention or Retention.load()
        folder = self.versions_dir(name)
        for stale in folder.glob(".*.tmp*"):
            pid = stale.name.rsplit("tmp", 1)[-1]
            if not pid.isdigit() or not _pid_alive(int(pid)):
                stale.unlink(missing_ok=True)
        current = self.current_version(name)
        committed, removed = [], []
        for version in self._versions(name):
            meta = self._read_meta(name, version)
            if meta.get("committed") or version == current:
                size = meta.get("bytes")
                if size is None:
                    size = self._version_path(name, version).stat().st_size
                committed.append((version, size))
            elif current is not None and version < current:
                removed.append(version)  # written, never committed (a kill before the swap): no one's
        kept = retention.keep(committed, current)
        removed += [version for version, _ in committed if version not in kept]
        for version in sorted(removed):
            self._version_path(name, version).unlink(missing_ok=True)
            self._meta_path(name, version).unlink(missing_ok=True)
        return sorted(removed)

    def size(self) -> dict[str, int]:
        """Bytes on disk under this warehouse, each file once (a current table and its version file are
        one file, hard-linked): ``current`` (the tables' current versions), ``superseded`` (the other
        kept versions), ``partitions`` (``_partitions``: per-shard tables and their versions), ``total``."""
        seen: set[tuple[int, int]] = set()
        out = {"current": 0, "superseded": 0, "partitions": 0, "other": 0}

        def add(path: Path, kind: str) -> None:
            try:
                st = path.stat()
            except FileNotFoundError:
                return
            if (st.st_ino, st.st_dev) not in seen:
                seen.add((st.st_ino, st.st_dev))
                out[kind] += st.st_size

        if not self.root.exists():
            return {**out, "total": 0}
        for path in self.root.glob("*.parquet"):
            add(path, "current")
        for path in sorted(self.root.rglob("*")):
            if path.is_file():
                relative = path.relative_to(self.root).parts
                kind = (
                    "partitions"
                    if relative[0] == "_partitions"
                    else "superseded"
                    if relative[0] == VERSIONS_DIR and path.suffix == ".parquet"
                    else "other"
                )
                add(path, kind)
        out["total"] = sum(out.values())
        return out

    def _missing_version(self, name: str, version: int) -> str:
        kept = [v for v in self._versions(name) if self._read_meta(name, v).get("committed")]
        if not kept:
            return self._unknown_table(name)
        return f"table {name!r} has no version {version}: kept versions are {', '.join(map(str, kept))}"

    def _unknown_table(self, name: str) -> str:
        known = ", ".join(self.tables()) or "none yet"
        return f"no table {name!r} in {self.root} (tables: {known})"


def _file_digest(path: Path) -> str:
    """SHA-1 of a file's bytes (about 1 GB/s): tells an unchanged rewrite from a new version."""
    import hashlib

    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha1").hexdigest()


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
