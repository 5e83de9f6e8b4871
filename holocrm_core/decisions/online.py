"""Learning while serving: the served contextual policy updated by every outcome recorded, persisted, idempotent.

``OnlineLearner`` wraps the contextual policy a server answers with. An outcome (``observe``) is validated and
queued; queued outcomes are applied as one batch (one Newton solve per action) when ``batch_size`` are
waiting or before the next decision reads the posterior (``flush``), so a posted outcome always shows in the
next recommendation. Each outcome carries its idempotency key and is applied once, however often it is
delivered (the API's log replays, retries, a restart). The state (policy, encoder, the keys applied, the
reward curve) is written atomically under HOLOCRM_HOME (``models/decisions/online_policy.json``) every
``persist_every`` outcomes and on ``close``; a restart loads it when it was learned from the same base
(the same champion version, or the same fitted encoder for a policy learned from scratch) and then replays
the durable action log's records it had not applied. The nightly pipeline starts from this file too
(``holocrm_core.decisions.champion.rebase_online_state``).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from holocrm_core.decisions.actions import Contexts
from holocrm_core.decisions.policies import policy_from_state

ONLINE_STATE_FILE = Path("models") / "decisions" / "online_policy.json"
CURVE_WINDOW = 100  # outcomes per point of the reward curve


def online_state_path(home: str | Path) -> Path:
    return Path(home) / ONLINE_STATE_FILE


def _context_row(context: Any) -> dict[str, Any]:
    if isinstance(context, str):
        try:
            context = json.loads(context)
        except ValueError:
            return {}
    return dict(context) if isinstance(context, Mapping) else {}


class OnlineLearner:
    """The served contextual policy and what it has learned since its base; thread-safe."""

    def __init__(
        self,
        policy,
        base: str,
        path: str | Path | None = None,
        batch_size: int = 32,
        persist_every: int = 50,
    ):
        self.policy = policy
        self.base = base
        self.path = Path(path) if path else None
        self.batch_size = max(1, int(batch_size))
        self.persist_every = max(1, int(persist_every))
        self.applied: set[str] = set()
        self.rewards: list[float] = []  # every applied reward, in order: the reward curve
        self._queue: list[dict[str, Any]] = []
        self._queued: set[str] = set()
        self._since_persist = 0
        self._lock = threading.RLock()

    # -- state ---------------------------------------------------------------------------------------------
    @classmethod
    def resume(cls, policy, base: str, path: str | Path | None, **options) -> OnlineLearner:
        """Start from ``policy`` unless the file at ``path`` holds a state learned from the same ``base``."""
        learner = cls(policy, base, path, **options)
        if learner.path is not None and learner.path.exists():
            try:
                saved = json.loads(learner.path.read_text())
            except ValueError:
                saved = {}
            if saved.get("base") == base and saved.get("encoder") == policy.encoder.version:
                learner.policy = policy_from_state(saved["policy"])
                learner.applied = set(saved.get("applied", []))
                learner.rewards = [float(r) for r in saved.get("rewards", [])]
        return learner

    def state(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "encoder": self.policy.encoder.version,
            "policy": self.policy.state_dict(),
            "applied": sorted(self.applied),
            "rewards": self.rewards,
        }

    def persist(self) -> None:
        """Write the state atomically (temp file + rename): a crash leaves the old state or the new one."""
        if self.path is None:
            return
        with self._lock:
            self._apply()
            payload = json.dumps(self.state(), separators=(",", ":"))
            self._since_persist = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(payload)
        os.replace(tmp, self.path)

    def close(self) -> None:
        self.persist()

    # -- learning ------------------------------------------------------------------------------------------
    def observe(self, record: Mapping[str, Any]) -> bool:
        """Queue one outcome record (idempotency_key, action, reward, context); False when refused or known."""
        key = record.get("idempotency_key") or record.get("action_id")
        action = record.get("action")
        try:
            reward = float(record.get("reward"))
        except (TypeError, ValueError):
            return False
        if not key or action not in self.policy.actions or not 0.0 <= reward <= 1.0:
            return False
        with self._lock:
            if key in self.applied or key in self._queued:
                return False
            self._queue.append(
                {
                    "key": str(key),
                    "action": action,
                    "reward": reward,
                    "context": record.get("context"),
                    "features": record.get("_features"),  # already encoded by the service, when it could
                }
            )
            self._queued.add(str(key))
            if len(self._queue) >= self.batch_size:
                self._apply()
        return True

    def observe_many(self, records: Iterable[Mapping[str, Any]]) -> int:
        return sum(self.observe(r) for r in records)

    def flush(self) -> None:
        """Apply every queued outcome now (called before a decision reads the posterior)."""
        with self._lock:
            self._apply()

    def _apply(self) -> None:
        if not self._queue:
            return
        batch, self._queue, self._queued = self._queue, [], set()
        features = np.zeros((len(batch), self.policy.encoder.dim))
        todo = [i for i, b in enumerate(batch) if b.get("features") is None]
        for i, b in enumerate(batch):
            if b.get("features") is not None:
                features[i] = b["features"]
        if todo:
            frame = pl.DataFrame(
                [_context_row(batch[i]["context"]) for i in todo], infer_schema_length=None, strict=False
            )
            if frame.width == 0:
                frame = pl.DataFrame({"contact_id": [None] * len(todo)})
            features[todo] = self.policy.encoder.encode(frame).features
        contexts = Contexts(features, np.zeros(len(batch), dtype=np.int64))
        self.policy.update(contexts, [b["action"] for b in batch], np.array([b["reward"] for b in batch]))
        self.applied.update(b["key"] for b in batch)
        self.rewards.extend(b["reward"] for b in batch)
        self._since_persist += len(batch)
        if self._since_persist >= self.persist_every:
            payload = json.dumps(self.state(), separators=(",", ":"))
            self._since_persist = 0
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.path.with_suffix(f".tmp{os.getpid()}")
                tmp.write_text(payload)
                os.replace(tmp, self.path)

    # -- reading -------------------------------------------------------------------------------------------
    def reward_curve(self, window: int = CURVE_WINDOW) -> list[float]:
        """Mean reward of each consecutive ``window`` outcomes learned while serving."""
        r = np.asarray(self.rewards, dtype=float)
        full = len(r) // window
        return (
            [round(float(x), 4) for x in r[: full * window].reshape(full, window).mean(axis=1)]
            if full
            else []
        )

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {
                "base": self.base,
                "encoder_version": self.policy.encoder.version,
                "observations": int(self.policy.observations),
                "learned_online": len(self.applied),
                "queued": len(self._queue),
                "reward_curve": self.reward_curve(),
                "state_file": str(self.path) if self.path else None,
            }
