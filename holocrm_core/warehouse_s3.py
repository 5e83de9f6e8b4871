"""The warehouse on object storage (``s3://bucket/prefix``): the same versioned tables and the same public API
as the local ``Warehouse``, committed with conditional writes instead of rename, hard links and file locks.

Layout of one table ``NAME``::

    s3://bucket/prefix/NAME.table.json                  the table's manifest: current version + kept history
    s3://bucket/prefix/_versions/NAME/000007.parquet    one version, immutable once written

A write serialises and validates the frame in memory (it must read back with the frame's rows and columns),
then claims the next version number by creating its Parquet object with ``If-None-Match: *`` (two writers
cannot both own version 7), then commits by replacing the manifest with ``If-Match: <the ETag it read>``
(create-if-absent for a new table). That conditional PUT is the commit: it succeeds only if nobody committed
since the manifest was read; the loser deletes its claimed object and starts again from the new manifest
(bounded retries with jittered backoff), so concurrent writers never lose or overwrite each other's commit.
A process killed between the claim and the commit leaves an object no manifest names: its number is skipped
and the next successful commit deletes it. Readers read the manifest, then the immutable object it names.

A rollback is a new manifest entry naming the old version's object (no copy: the object store's hard link),
and an unchanged rewrite (same bytes as the current version) makes no new version, as locally.
"""

from __future__ import annotations

import io
import json
import random
import time
from datetime import UTC, datetime

import polars as pl

from holocrm_core import objectstore
from holocrm_core.settings import Backends
from holocrm_core.warehouse import (
    ANY_VERSION,
    VERSIONS_DIR,
    CommitConflict,
    Retention,
    TableVersionError,
    Warehouse,
)

MANIFEST_SUFFIX = ".table.json"
COMMIT_ATTEMPTS = 20
_PROBED: set[tuple] = set()


class ObjectWarehouse(Warehouse):
    """Versioned Parquet tables under ``s3://bucket/prefix`` (see the module docstring)."""

    def __init__(self, root: str, backends: Backends | None = None):
        self.root = str(root).rstrip("/")
        self.bucket, self.prefix = objectstore.split_s3_uri(self.root)
        self.backends = backends or Backends.load()
        self.client = objectstore.s3_client(self.backends)

    # -- keys ----------------------------------------------------------------------------------------
    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def _manifest_key(self, name: str) -> str:
        return self._key(f"{name}{MANIFEST_SUFFIX}")

    def _version_key(self, name: str, version: int) -> str:
        return self._key(VERSIONS_DIR, name, f"{version:06d}.parquet")

    def _uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def path(self, name: str) -> str:
        """The current version's object (``s3://...``; immutable, so a reader never sees half a table)."""
        manifest = self._manifest(name)[0]
        if manifest is None:
            return self._uri(self._key(f"{name}.parquet"))  # where nothing is yet, as the local path
        return self._uri(self._current_entry(manifest)["key"])

    def versions_dir(self, name: str) -> str:
        return self._uri(self._key(VERSIONS_DIR, name))

    def exists(self, name: str) -> bool:
        return self._manifest(name)[0] is not None

    def tables(self) -> list[str]:
        prefix = self._key("") + ("/" if self.prefix else "")
        names = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, Delimiter="/"
        ):
            for item in page.get("Contents", []):
                key = item["Key"][len(prefix) :]
                if key.endswith(MANIFEST_SUFFIX):
                    names.append(key[: -len(MANIFEST_SUFFIX)])
        return sorted(names)

    # -- writing -------------------------------------------------------------------------------------
    def write(
        self, name: str, frame: pl.DataFrame, operation: str = "write", expect_version=ANY_VERSION
    ) -> str:
        self._check_name(name)
        self._probe()
        if isinstance(frame, pl.LazyFrame):  # a union of partitions: one object, so collected here
            frame = frame.collect()
        buffer = io.BytesIO()
        frame.write_parquet(buffer, compression="zstd", compression_level=1, statistics=True)
        body = buffer.getvalue()
        self._validate_bytes(body, frame, name)
        import hashlib

        digest = hashlib.sha1(body).hexdigest()
        floor = 0
        for attempt in range(COMMIT_ATTEMPTS):
            manifest, etag = self._manifest(name)
            current = None if manifest is None else int(manifest["current"])
            if expect_version is not ANY_VERSION and current != expect_version:
                raise CommitConflict(f"table {name!r} is at version {current}, not {expect_version}")
            if manifest is not None and self._current_entry(manifest).get("sha1") == digest:
                return self.path(name)  # the same table again: the current version stays, no copy is kept
            version = max(self._newest(manifest), floor) + 1
            key = self._version_key(name, version)
            try:
                objectstore.put_if_absent(self.client, self.bucket, key, body)  # claims the number
            except objectstore.PreconditionFailed:
                floor = version  # taken by a writer in flight (or left by a killed one): the next number
                continue
            entry = self._entry(version, key, frame.height, frame.columns, operation, len(body), digest)
            if self._commit(name, manifest, etag, entry):
                return self._uri(key)
            self.client.delete_object(Bucket=self.bucket, Key=key)
            _backoff(attempt)
        raise CommitConflict(f"table {name!r}: {COMMIT_ATTEMPTS} commits in a row lost to other writers")

    def rollback(self, name: str, to: int) -> int:
        self._check_name(name)
        self._probe()
        for attempt in range(COMMIT_ATTEMPTS):
            manifest, etag = self._manifest(name)
            source = self._find(manifest, to)
            if source is None:
                raise TableVersionError(self._missing(name, manifest, to))
            version = self._newest(manifest) + 1
            entry = {**source, "version": version, "operation": f"rollback to {to}", "written_at": _now()}
            if self._commit(name, manifest, etag, entry):
                return version
            _backoff(attempt)
        raise CommitConflict(
            f"table {name!r}: rollback lost {COMMIT_ATTEMPTS} commits in a row to other writers"
        )

    # -- documents -----------------------------------------------------------------------------------
    def _document_key(self, name: str) -> str:
        return self._key(f"{name}.json")

    def read_document(self, name: str) -> dict | None:
        self._check_name(name)
        found = objectstore.get_object(self.client, self.bucket, self._document_key(name))
        return None if found is None else json.loads(found[0])

    def update_document(self, name: str, change) -> dict:
        """Read-modify-write with a conditional PUT (If-Match the ETag read, or If-None-Match: * for a new
        document); a lost race re-reads and calls ``change`` again."""
        self._check_name(name)
        self._probe()
        key = self._document_key(name)
        for attempt in range(COMMIT_ATTEMPTS):
            found = objectstore.get_object(self.client, self.bucket, key)
            document = change(None if found is None else json.loads(found[0]))
            body = json.dumps(document).encode()
            try:
                if found is None:
                    objectstore.put_if_absent(self.client, self.bucket, key, body)
                else:
                    objectstore.put_if_match(self.client, self.bucket, key, body, found[1])
                return document
            except objectstore.PreconditionFailed:
                _backoff(attempt)
        raise CommitConflict(f"document {name!r}: {COMMIT_ATTEMPTS} updates in a row lost to other writers")

    def child(self, *parts: str) -> ObjectWarehouse:
        return ObjectWarehouse("/".join([self.root, *parts]), self.backends)

    # -- reading -------------------------------------------------------------------------------------
    def read(self, name: str, version: int | None = None) -> pl.DataFrame:
        for _ in range(3):  # the object named can be pruned between the two reads by a newer commit: re-read
            manifest = self._manifest(name)[0]
            if version is None:
                if manifest is None:
                    raise FileNotFoundError(
                        f"table {name!r} has not been built yet ({self._uri(self._manifest_key(name))} is "
                        "missing): run `holocrm run` first"
                    )
                entry = self._current_entry(manifest)
            else:
                entry = self._find(manifest, version)
                if entry is None:
                    raise TableVersionError(self._missing(name, manifest, version))
            found = objectstore.get_object(self.client, self.bucket, entry["key"])
            if found is not None:
                return pl.read_parquet(io.BytesIO(found[0]))
        raise FileNotFoundError(f"table {name!r}: the version its manifest names keeps disappearing")

    def scan(self, name: str) -> pl.LazyFrame:
        return pl.scan_parquet(self.path(name), storage_options=self.backends.storage_options())

    def scan_version(self, name: str) -> pl.LazyFrame:
        return self.scan(name)  # the current version's object: already immutable

    def current_version(self, name: str) -> int | None:
        manifest = self._manifest(name)[0]
        return None if manifest is None else int(manifest["current"])

    def stamp(self, name: str) -> str | None:
        return self._manifest(name)[1]  # the manifest's ETag: every commit replaces the manifest

    def modified_at(self, name: str) -> datetime | None:
        manifest = self._manifest(name)[0]
        written = None if manifest is None else self._current_entry(manifest).get("written_at")
        return datetime.fromisoformat(written) if written else None

    def history(self, name: str) -> list[dict]:
        manifest = self._manifest(name)[0]
        if manifest is None:
            raise TableVersionError(self._unknown_table(name))
        return [
            {
                "version": e["version"],
                "rows": e.get("rows"),
                "columns": len(e.get("columns", [])),
                "written_at": e.get("written_at"),
                "operation": e.get("operation", "write"),
                "bytes": e.get("bytes"),
                "current": e["version"] == manifest["current"],
            }
            for e in manifest["versions"]
        ]

    # -- internals -----------------------------------------------------------------------------------
    def _probe(self) -> None:
        """Once per process and bucket: refuse to commit on a store that ignores conditional writes."""
        marker = (self.backends.s3_endpoint, self.bucket)
        if marker not in _PROBED:
            objectstore.probe_conditional_writes(self.client, self.bucket, self.prefix)
            _PROBED.add(marker)

    def _manifest(self, name: str) -> tuple[dict | None, str | None]:
        found = objectstore.get_object(self.client, self.bucket, self._manifest_key(name))
        if found is None:
            return None, None
        return json.loads(found[0]), found[1]

    @staticmethod
    def _current_entry(manifest: dict) -> dict:
        return next(e for e in manifest["versions"] if e["version"] == manifest["current"])

    @staticmethod
    def _find(manifest: dict | None, version: int) -> dict | None:
        if manifest is None:
            return None
        return next((e for e in manifest["versions"] if e["version"] == version), None)

    @staticmethod
    def _newest(manifest: dict | None) -> int:
        if manifest is None:
            return 0
        return max([e["version"] for e in manifest["versions"]] + [manifest.get("newest", 0)])

    @staticmethod
    def _entry(version, key, rows, columns, operation, size, digest) -> dict:
        return {
            "version": version,
            "key": key,
            "rows": rows,
            "columns": list(columns),
            "written_at": _now(),
            "operation": operation,
            "bytes": size,
            "sha1": digest,
        }

    def _commit(self, name: str, manifest: dict | None, etag: str | None, entry: dict) -> bool:
        """The commit: the manifest with ``entry`` current, written only if it is still the one read.
        True when it won; False when another writer committed first (nothing of this one is visible)."""
        versions = [*(manifest or {}).get("versions", []), entry]
        keep = Retention.load().keep([(e["version"], e.get("bytes")) for e in versions], entry["version"])
        kept = [e for e in versions if e["version"] in keep]
        newest = max(entry["version"], self._newest(manifest))
        body = json.dumps({"table": name, "current": entry["version"], "newest": newest, "versions": kept})
        try:
            if etag is None:
                objectstore.put_if_absent(self.client, self.bucket, self._manifest_key(name), body.encode())
            else:
                objectstore.put_if_match(
                    self.client, self.bucket, self._manifest_key(name), body.encode(), etag
                )
        except objectstore.PreconditionFailed:
            return False
        self._prune(name, kept, entry["version"])
        return True

    def size(self) -> dict[str, int]:
        raise NotImplementedError(
            "the size of an object-storage warehouse: ask the object store (not listed here)"
        )

    def _prune(self, name: str, kept: list[dict], committed: int) -> None:
        """Delete the objects no kept version names, below the version just committed: aged-out versions and
        the claims of writers that lost (their commit can no longer succeed: the manifest moved past them)."""
        referenced = {e["key"] for e in kept}
        prefix = self._key(VERSIONS_DIR, name) + "/"
        for key in objectstore.list_keys(self.client, self.bucket, prefix):
            stem = key[len(prefix) :].removesuffix(".parquet")
            if key in referenced or not stem.isdigit() or int(stem) >= committed:
                continue
            self.client.delete_object(Bucket=self.bucket, Key=key)

    @staticmethod
    def _validate_bytes(body: bytes, frame: pl.DataFrame, name: str) -> None:
        """A version is committed only when its bytes read back with the frame's rows and columns."""
        written = pl.scan_parquet(io.BytesIO(body))
        columns = written.collect_schema().names()
        rows = written.select(pl.len()).collect().item()
        if rows != frame.height or columns != frame.columns:
            raise OSError(
                f"table {name!r} did not serialise as written ({rows} rows, {len(columns)} columns; "
                f"expected {frame.height}, {frame.width}): not committed"
            )

    def _missing(self, name: str, manifest: dict | None, version: int) -> str:
        if manifest is None:
            return self._unknown_table(name)
        kept = ", ".join(str(e["version"]) for e in manifest["versions"])
        return f"table {name!r} has no version {version}: kept versions are {kept}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _backoff(attempt: int) -> None:
    time.sleep(min(1.0, 0.02 * 2**attempt) * random.uniform(0.5, 1.0))
