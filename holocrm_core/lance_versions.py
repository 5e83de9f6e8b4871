"""How long LanceDB keeps old table versions, and how a reader keeps the version it serves.

Every LanceDB commit (a table write, each 50k-row slice of ``SimilarityStore.merge_shards``, a delete, an
index update, a compaction) leaves a version whose files LanceDB keeps for 7 days by default: at 1,000,000
contacts the similarity tables grew to 33 GB, 13 GB once compacted and cleaned. Here every write path
(``SimilarityStore.sync`` / ``merge_shards``, the attachment and fused-vector tables) ends with
``compact``: LanceDB's ``optimize`` (compaction, index update) with a cleanup window computed per table so
that old versions go, except

- the newest ``HOLOCRM_LANCEDB_KEEP_VERSIONS`` versions (default 1: the latest, which LanceDB never removes);
- every version that was the latest at some moment of the last ``HOLOCRM_LANCEDB_RETENTION_S`` seconds
  (default 600): a reader (or a concurrent shard writer) that opened the newest version a moment ago keeps
  its files even if that version was committed long ago;
- every version a reader pinned (``pin``): a LanceDB tag ``holocrm-pin-<unix seconds>-<token>`` on that
  version, which LanceDB's cleanup never removes. The API's snapshot pins the versions it serves
  (``SimilarityStore.hold``), renews the pin while it serves them and drops it when the snapshot is gone. A
  pin not renewed for ``HOLOCRM_LANCEDB_PIN_TTL_S`` seconds (default 21600: a reader that died) is deleted
  by the next cleanup.

Tags work the same on a folder and on object storage, and need no coordination between processes: a
writer reads the tags at cleanup time. LanceDB's cleanup refuses to run (and prunes nothing) when a tagged
version is older than its window; the window here always covers the oldest pinned version, and a pin taken
between the read and the cleanup makes ``compact`` read again and retry.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

PIN_PREFIX = "holocrm-pin-"
log = logging.getLogger(__name__)

DEFAULT_RETENTION_S = 600.0
DEFAULT_KEEP_VERSIONS = 1
DEFAULT_PIN_TTL_S = 6 * 3600.0
# Versions committed this long before the oldest one kept are kept too (clock granularity, writers on
# other machines with a slightly different clock).
MARGIN_S = 5.0
PIN_MARGIN_S = 5.0  # the same before a pinned version (a cleanup that would reach one fails as a whole)
NEVER = timedelta(days=36500)  # a cleanup window that removes nothing (compaction only)


def _env_number(name: str, default: float, minimum: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a number") from exc
    if value < minimum:
        raise ValueError(f"{name}={raw!r}: must be at least {minimum:g}")
    return value


def retention_s() -> float:
    """Seconds a superseded version is kept after it stopped being the latest (``HOLOCRM_LANCEDB_RETENTION_S``)."""
    return _env_number("HOLOCRM_LANCEDB_RETENTION_S", DEFAULT_RETENTION_S, 0.0)


def keep_versions() -> int:
    """The newest versions always kept (``HOLOCRM_LANCEDB_KEEP_VERSIONS``, at least 1)."""
    return int(_env_number("HOLOCRM_LANCEDB_KEEP_VERSIONS", DEFAULT_KEEP_VERSIONS, 1))


def pin_ttl_s() -> float:
    """Seconds a pin lives without renewal (``HOLOCRM_LANCEDB_PIN_TTL_S``)."""
    return _env_number("HOLOCRM_LANCEDB_PIN_TTL_S", DEFAULT_PIN_TTL_S, 1.0)


def _epoch(timestamp) -> float:
    # LanceDB lists versions with naive local datetimes (datetime.fromtimestamp): .timestamp() inverts that
    return float(timestamp.timestamp())


def pin_taken_at(tag: str) -> float | None:
    """The unix time encoded in a pin's tag name; None for a tag that is not a pin."""
    if not tag.startswith(PIN_PREFIX):
        return None
    try:
        return float(tag[len(PIN_PREFIX) :].split("-", 1)[0])
    except ValueError:
        return None


def pin(table, version: int) -> str:
    """Tag ``version`` of ``table`` so that no cleanup removes it; returns the tag (for ``unpin``)."""
    tag = f"{PIN_PREFIX}{int(time.time())}-{secrets.token_hex(4)}"
    table.tags.create(tag, int(version))
    return tag


def unpin(table, tag: str) -> None:
    """Drop a pin (a pin already gone, deleted as expired or by a dropped table, is fine)."""
    # lance raises RuntimeError/ValueError/OSError for a missing tag
    with contextlib.suppress(Exception):
        table.tags.delete(tag)


def renew(table, tag: str, version: int) -> str:
    """A fresh pin of the same version (then the old one dropped): its lifetime restarts now."""
    fresh = pin(table, version)
    unpin(table, tag)
    return fresh


def expire_pins(table, now: float | None = None) -> list[str]:
    """Delete the pins not renewed within ``pin_ttl_s()`` (their reader is gone); returns their names."""
    now = time.time() if now is None else now
    ttl = pin_ttl_s()
    expired = []
    for tag in table.tags.list():
        taken = pin_taken_at(tag)
        if taken is not None and now - taken > ttl:
            unpin(table, tag)
            expired.append(tag)
    return expired


def cleanup_window(versions: list[dict], tagged: set[int], now: float) -> tuple[timedelta, int]:
    """LanceDB's ``cleanup_older_than`` for a table with these versions (``list_versions()``) and tagged
    version numbers: every version from the oldest to keep on stays. Returns (window, oldest kept)."""
    ordered = sorted(versions, key=lambda v: int(v["version"]))
    if not ordered:
        return timedelta(seconds=MARGIN_S), 0
    numbers = [int(v["version"]) for v in ordered]
    stamps = [_epoch(v["timestamp"]) for v in ordered]
    keep = len(ordered) - min(keep_versions(), len(ordered))  # index of the oldest of the newest N
    horizon = now - retention_s()
    for i in range(len(ordered) - 1):
        if stamps[i + 1] >= horizon:  # version i was the latest until after the horizon
            keep = min(keep, i)
            break
    # no margin when only the latest stays: LanceDB never removes it, and a margin would keep the versions
    # just before it (the one a compaction superseded a second ago: a second copy of the rewritten files)
    margin = MARGIN_S if keep < len(ordered) - 1 else 0.0
    for i, number in enumerate(numbers):
        if number in tagged:
            if i <= keep:
                # LanceDB refuses a cleanup whose window leaves out a tagged version: never cut it close
                keep, margin = i, max(MARGIN_S, PIN_MARGIN_S)
            break
    return timedelta(seconds=max(0.0, now - stamps[keep]) + margin), numbers[keep]


@dataclass
class Compaction:
    table: str
    versions_before: int
    versions_after: int
    oldest_kept: int
    expired_pins: int
    bytes_removed: int | None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def compact(table, name: str = "", delete_unverified: bool = False) -> Compaction:
    """Compact ``table`` (merge small files, fold new rows into its indexes) and remove the versions nothing
    needs any more (module docstring). ``delete_unverified`` also removes files of failed writes younger than
    7 days: only when no other process writes this table.

    Two ``optimize`` calls: the first compacts and prunes nothing (at 1M rows a compaction takes minutes,
    and LanceDB measures the cleanup window from the end of it, which would shift the window computed
    before); the second, with the window read just before it, only prunes."""
    from holocrm_core.homelock import retry_commit_conflicts

    expired = expire_pins(table)
    before = len(table.list_versions())
    retry_commit_conflicts(lambda: table.optimize(cleanup_older_than=NEVER))
    removed, oldest = None, 0
    for attempt in range(3):
        tagged = {int(t["version"]) for t in table.tags.list().values()}
        window, oldest = cleanup_window(table.list_versions(), tagged, time.time())
        try:
            stats = retry_commit_conflicts(
                lambda w=window: table.optimize(cleanup_older_than=w, delete_unverified=delete_unverified)
            )
            removed = getattr(getattr(stats, "prune", None), "bytes_removed", None)
            break
        except RuntimeError as exc:
            # a reader pinned an older version since the tags were read: LanceDB refused; read them again
            if "tagged version" not in str(exc):
                raise
            if attempt == 2:  # pins keep moving: leave the old versions to the next cleanup
                log.warning("cleanup of %s skipped: its pinned versions kept changing (%s)", name, exc)
    return Compaction(name, before, len(table.list_versions()), oldest, len(expired), removed)
