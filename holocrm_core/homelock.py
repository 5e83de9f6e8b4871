"""One writer per HOLOCRM_HOME: the lock a run, an ingest or a backfill holds while it writes the home.

The lock is an exclusive ``flock`` on HOLOCRM_HOME/holocrm.lock, and the file says who holds it (pid, host,
start time, what it is doing), so a refused second writer can name the holder. The kernel releases a flock
when its process dies, however it dies, so a killed run never leaves the home locked: the next writer takes
the lock, finds the dead holder's details still in the file, and says it broke a stale lock. A lock whose
flock is still held is never broken, whatever its file says.

A second writer either refuses at once (``HomeLocked``, the default for the CLI) or waits, polling, up to a
timeout. The lock is re-entrant within one process (the CLI's ``run`` and the runner inside it both take it).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

LOCK_FILE = "holocrm.lock"
POLL_S = 0.25


@dataclass(frozen=True)
class LockHolder:
    pid: int | None
    host: str
    started_at: str
    purpose: str

    def describe(self) -> str:
        since = ""
        try:
            began = datetime.fromisoformat(self.started_at)
            since = f", {int((datetime.now(UTC) - began).total_seconds())} s ago"
        except (TypeError, ValueError):
            pass
        return (
            f"{self.purpose or 'a writer'} (pid {self.pid} on {self.host}, started {self.started_at}{since})"
        )


class HomeLocked(RuntimeError):
    """Another writer holds the home's lock."""

    def __init__(self, home: Path, holder: LockHolder | None, waited_s: float):
        who = holder.describe() if holder else "another process (no details in the lock file)"
        waited = f" after waiting {waited_s:.0f} s" if waited_s else ""
        super().__init__(
            f"HOLOCRM_HOME {home} is in use by {who}{waited}: one writer per home. Wait for it to finish, "
            "or pass --wait to queue behind it"
        )
        self.holder = holder


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process holds the pid: alive
        return True
    return True


def read_holder(path: Path) -> LockHolder | None:
    try:
        data = json.loads(path.read_text() or "{}")
    except (FileNotFoundError, ValueError):
        return None
    if not data:
        return None
    pid = data.get("pid")
    return LockHolder(
        pid=pid if isinstance(pid, int) else None,
        host=str(data.get("host", "?")),
        started_at=str(data.get("started_at", "?")),
        purpose=str(data.get("purpose", "")),
    )


_held: dict[Path, tuple[int, int]] = {}  # lock path -> (fd, depth) held by this process
_held_guard = threading.Lock()


@contextmanager
def home_lock(
    home: str | Path,
    purpose: str,
    wait_s: float = 0.0,
    progress: Callable[[str], None] | None = None,
) -> Iterator[LockHolder]:
    """Hold HOLOCRM_HOME's writer lock for the block. ``wait_s``: 0 refuses at once when another writer holds
    it, a positive number waits up to that many seconds, ``float('inf')`` waits as long as it takes."""
    path = Path(home) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    key = path.resolve()
    with _held_guard:
        if key in _held:
            fd, depth = _held[key]
            _held[key] = (fd, depth + 1)
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield read_holder(path) or LockHolder(os.getpid(), socket.gethostname(), "?", purpose)
        finally:
            with _held_guard:
                fd, depth = _held[key]
                _held[key] = (fd, depth - 1)
        return
    fd = _acquire(path, purpose, wait_s, progress)
    with _held_guard:
        _held[key] = (fd, 1)
    try:
        yield read_holder(path)
    finally:
        with _held_guard:
            _held.pop(key, None)
        try:
            os.ftruncate(fd, 0)  # nobody holds it now: a reader must not name us
        finally:
            os.close(fd)  # releases the flock


def _acquire(path: Path, purpose: str, wait_s: float, progress) -> int:
    say = progress or (lambda message: None)
    started = time.monotonic()
    told = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = read_holder(path)
            waited = time.monotonic() - started
            if waited >= wait_s:
                raise HomeLocked(path.parent, holder, waited) from None
            if not told:
                say(f"waiting for {holder.describe() if holder else 'another writer'} to release {path}")
                told = True
            time.sleep(min(POLL_S, max(0.01, wait_s - waited)))
            continue
        if path.exists() and os.path.samestat(os.fstat(fd), os.stat(path)):
            break
        os.close(fd)  # the file was replaced between open and flock: lock the one that is there now
    previous = read_holder(path)
    if previous is not None and previous.pid != os.getpid():
        # The flock was free, so its holder is gone (killed, or it ended without clearing the file).
        say(f"broke a stale lock of {previous.describe()}: that process no longer holds it")
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "purpose": purpose,
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode(), 0)
    os.fsync(fd)
    return fd


def is_commit_conflict(exc: BaseException) -> bool:
    """A LanceDB (Lance) commit that lost a race with a concurrent transaction and may simply be retried."""
    text = str(exc).lower()
    return "commit conflict" in text or "retryable" in text and "conflict" in text


def retry_commit_conflicts(write: Callable[[], object], attempts: int = 6, first_delay_s: float = 0.05):
    """Run ``write`` (a LanceDB write: create_index, merge_insert, optimize ...); retry it with backoff while
    it fails on a commit conflict. The home lock keeps writers of one home apart; this covers what it cannot
    see (a reader's cleanup, a writer on object storage)."""
    for attempt in range(attempts):
        try:
            return write()
        except Exception as exc:  # lance raises RuntimeError/OSError/ValueError depending on the path
            if not is_commit_conflict(exc) or attempt == attempts - 1:
                raise
            time.sleep(first_delay_s * (2**attempt))
    return None
