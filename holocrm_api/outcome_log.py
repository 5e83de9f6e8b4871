"""Durable append-only logs of what happened in the field (deal outcomes, action results) for the learners.

One JSON object per line in HOLOCRM_HOME/logs/<name>.ndjson. A write is acknowledged only after the line
has been handed to the kernel in a single ``write`` on an ``O_APPEND`` descriptor and ``fsync``-ed, so an
acknowledged write survives the server process being killed (and, with a disk that honours fsync, a power
cut). Each record carries an idempotency key; a key is recorded once, however often a client retries.

Several server processes may append to the same log: an exclusive ``flock`` around "catch up on what the
others wrote, check the key, append" keeps the keys unique across processes, and a thread lock does the
same between the threads of one process (flock is per open file description, not per thread).

fsync is the slow part (milliseconds) and is done outside those locks as a group commit: a writer appends
its line, releases the locks, then waits until the file is synced past its line's end. Whoever syncs
first covers every line written before it, so concurrent writers share one fsync instead of queueing
for one each. A repeated key is answered only once its first record is synced too.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


class IdempotencyConflict(Exception):
    """The same idempotency key was used before for a different request body."""

    def __init__(self, key: str, existing: dict[str, Any]):
        super().__init__(f"idempotency key {key!r} was already used for a different request")
        self.key = key
        self.existing = existing


@dataclass(frozen=True)
class AppendResult:
    record: dict[str, Any]
    created: bool  # False: the key had been recorded before and this is the earlier record


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def read_log(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every complete record of a log, oldest first. A torn last line (a crash mid-write) is skipped."""
    path = Path(path)
    if not path.exists():
        return
    with path.open("rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                break  # torn tail: never acknowledged, so never promised to anyone
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record


class AppendOnlyLog:
    """One durable NDJSON log with an in-memory index of the idempotency keys it holds."""

    def __init__(self, path: str | Path, fingerprint_fields: tuple[str, ...] = ()):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Fields that must match for a repeated key to count as the same request (else 409).
        self.fingerprint_fields = fingerprint_fields
        self._thread_lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._synced = 0  # bytes of the file known to be on disk
        # key -> (offset of its line, offset just past it, fingerprint): the records themselves stay on disk,
        # so memory does not grow with every write (a soak of 5,600 writes grew RSS 8 MB holding them)
        self._by_key: dict[str, tuple[int, int, str]] = {}
        self._offset = 0  # bytes of the file already indexed
        self._listeners: list[Any] = []
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._dir_synced = False
        with self._thread_lock:
            self._locked(self._catch_up)
        self._synced = 0  # records found at start may not be on disk yet (a writer crashed before fsync)

    # -- reading -------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._by_key)

    def __contains__(self, key: str) -> bool:
        return key in self._by_key

    def get(self, key: str) -> dict[str, Any] | None:
        """The record of ``key`` (read back from the file), or None."""
        where = self._by_key.get(key)
        if where is None:
            return None
        with self.path.open("rb") as fh:
            fh.seek(where[0])
            return json.loads(fh.read(where[1] - where[0]))

    def end_offset(self, key: str) -> int:
        """The file offset just past ``key``'s record (0 when unknown): durable once ``fsync`` passed it."""
        return self._by_key.get(key, (0, 0, ""))[1]

    def records(self) -> list[dict[str, Any]]:
        """Every record indexed, oldest first (the first record of each key), read from the file."""
        seen, out = set(), []
        for record in read_log(self.path):
            key = record.get("idempotency_key")
            if key in self._by_key and key not in seen:
                seen.add(key)
                out.append(record)
        return out

    def subscribe(self, listener, replay: bool = False) -> None:
        """Call ``listener(record)`` for every record this process indexes from now on (new or caught up);
        with ``replay``, first for every record already indexed, oldest first."""
        with self._thread_lock:
            if replay:
                for record in self.records():
                    listener(record)
            self._listeners.append(listener)

    # -- writing -------------------------------------------------------------------------------------
    def append(self, record: dict[str, Any], check=None) -> AppendResult:
        """Record ``record`` once per ``idempotency_key``; returns after the line is on disk.

        ``check``, when given, is called under the log's locks once every other process's records have been
        read (so state derived from the log by subscribers is current): it raises to refuse the record,
        returns an ``AppendResult`` to answer with instead of appending (a repeat of a state already
        recorded), or None to append.
        """
        key = record.get("idempotency_key")
        if not key:
            raise ValueError("a log record needs an idempotency_key")
        with self._thread_lock:
            result, end = self._locked(lambda: self._append_locked(key, record, check))
        self._sync_through(end)
        return result

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    # -- internals -----------------------------------------------------------------------------------
    def _locked(self, fn):
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            return fn()
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _fingerprint(self, record: dict[str, Any]) -> str:
        picked = {f: record.get(f) for f in self.fingerprint_fields}
        return hashlib.sha256(json.dumps(picked, sort_keys=True, default=str).encode()).hexdigest()

    def _append_locked(self, key: str, record: dict[str, Any], check=None) -> AppendResult:
        self._catch_up()  # another process may have written this key since we last looked
        where = self._by_key.get(key)
        if where is not None:
            existing = self.get(key)
            if self.fingerprint_fields and where[2] != self._fingerprint(record):
                raise IdempotencyConflict(key, existing)
            return AppendResult(existing, created=False), where[1]
        if check is not None:
            instead = check()
            if instead is not None:
                return instead, self._by_key.get(instead.record.get("idempotency_key"), (0, 0, ""))[1]
        line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
        size = os.fstat(self._fd).st_size
        if size > self._offset:
            # A torn line from a crash: start ours on a fresh line so it stays parseable.
            line = b"\n" + line
        written = os.write(self._fd, line)
        while written < len(line):  # regular files write fully, but never trust a short write
            written += os.write(self._fd, line[written:])
        self._offset = size + len(line)
        self._index(record, size, self._offset)
        return AppendResult(record, created=True), self._offset

    def _sync_through(self, end: int) -> None:
        """Return once the file is on disk at least up to ``end`` (one fsync serves every waiting writer)."""
        if self._synced >= end:
            return
        with self._sync_lock:
            if self._synced >= end:  # another writer's fsync covered this line while we waited
                return
            target = os.fstat(self._fd).st_size  # everything written so far is covered by this fsync
            os.fsync(self._fd)
            if not self._dir_synced:
                # The file may have just been created: make its directory entry durable too.
                dir_fd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
                self._dir_synced = True
            self._synced = max(self._synced, target)

    def _catch_up(self) -> None:
        size = os.fstat(self._fd).st_size
        if size <= self._offset:
            return
        with self.path.open("rb") as fh:
            fh.seek(self._offset)
            chunk = fh.read(size - self._offset)
        end = chunk.rfind(b"\n") + 1  # index complete lines only; a torn tail is re-read later or skipped
        position = self._offset
        for raw in chunk[:end].split(b"\n")[:-1]:
            position += len(raw) + 1
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("idempotency_key"):
                if record["idempotency_key"] not in self._by_key:
                    self._index(record, position - len(raw) - 1, position)
        self._offset += end

    def _index(self, record: dict[str, Any], start: int, end: int) -> None:
        self._by_key[record["idempotency_key"]] = (start, end, self._fingerprint(record))
        for listener in self._listeners:
            listener(record)
