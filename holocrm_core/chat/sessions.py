"""Conversations kept between turns and across API workers: one SQLite file under HOLOCRM_HOME.

Each session's state (``ChatSession.state()``: focus, last results, previous question, the pending choice or
write) is a JSON row keyed by the session id; every worker process opens the same file (WAL, a busy timeout),
loads the row before a turn and saves it after, so the next turn may land on any worker. Two turns of one
session at the same moment on two workers: the later save wins, and a "yes" confirmed twice is one write
(the write's idempotency key is the session id and turn number). Sessions idle past ``ttl_s`` are dropped.

It also remembers which Slack event ids were handled (Slack retries an event it did not see acknowledged in
time): ``first_time(event_id)``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

DEFAULT_TTL_S = 7 * 24 * 3600.0


class SessionStore:
    def __init__(self, path: str | Path, ttl_s: float = DEFAULT_TTL_S):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, state TEXT NOT NULL, updated_at REAL)"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS seen_events (id TEXT PRIMARY KEY, at REAL)")
        self._saves = 0

    @classmethod
    def under(cls, home: str | Path) -> SessionStore:
        return cls(Path(home) / "chat" / "sessions.sqlite3")

    def load(self, session_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT state, updated_at FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
        if row is None or row[1] < time.time() - self.ttl_s:
            return None
        return json.loads(row[0])

    def save(self, session_id: str, state: dict[str, Any]) -> None:
        text = json.dumps(state, default=str)
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO sessions (id, state, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                (session_id, text, now),
            )
            self._saves += 1
            if self._saves % 500 == 1:  # now and then: forget idle sessions and old event ids
                self._db.execute("DELETE FROM sessions WHERE updated_at < ?", (now - self.ttl_s,))
                self._db.execute("DELETE FROM seen_events WHERE at < ?", (now - self.ttl_s,))

    def first_time(self, event_id: str) -> bool:
        """True the first time an event id is seen (by any worker), False on a retry."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO seen_events (id, at) VALUES (?, ?)", (event_id, time.time())
            )
            return cursor.rowcount == 1

    def close(self) -> None:
        with self._lock:
            self._db.close()
