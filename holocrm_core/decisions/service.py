"""The one decision service behind every door: which contacts get a recommendation, which policy answers, why.

The API (``holocrm_api.loader`` builds one per snapshot), the CLI (``holocrm recommend contact``) and the
``recommendations`` asset all answer through ``DecisionService``, so they agree:

- *who*: a decided contact (disqualified, or any status that is not open) gets no recommendation, with the
  reason (``recommend.decided_reason``), at every door;
- *which policy*: the gated PPO outreach champion (``holocrm_outreach_policy@champion`` with
  ``holocrm.gate=passed``) for the contacts and actions it covers; otherwise the contextual policy (the gated
  ``holocrm_action_policy`` champion, or, before one passed, a contextual Thompson policy over the context
  encoder fitted on this export's staged tables), updated online by every outcome recorded
  (``online.OnlineLearner``); otherwise (no contextual policy could be built) per-segment Thompson sampling;
- *why*: every answer names the policy, its version and why it serves, gives the reasons in a salesperson's
  words and, on request, the posterior behind them.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from holocrm_core.decisions.actions import ContextEncoder
from holocrm_core.decisions.online import OnlineLearner, online_state_path
from holocrm_core.decisions.policies import ContextualThompson, SegmentThompson
from holocrm_core.decisions.recommend import contact_contexts, decided_reason, reason_in_words, recommend
from holocrm_core.id_index import IdIndex, encodable, id_bytes

log = logging.getLogger("holocrm.decisions")
ACTION_POLICY = "holocrm_action_policy"
ONLINE_BASE = "online"  # base name of a contextual policy learned from scratch on this export
# Posterior sd scale of the policy learned from scratch while serving: picked from {0.5, 0.3, 0.2} on the
# tuning seeds 100-102 of benchmarks/decisions_quality.py's served worlds (mean oracle-uplift capture, both
# worlds, 0.77 / 0.78 / 0.77); the reported figures come from seeds 0-4.
ONLINE_EXPLORATION = 0.3


def _json_safe(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, float) and value != value:
        return None
    return value


def read_outcome_records(path: str | Path) -> list[dict[str, Any]]:
    """The action outcomes recorded through the API (HOLOCRM_HOME/logs/actions.ndjson), oldest first; a torn
    last line (a crash mid-write) is skipped, as the API's log does."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for raw in path.read_bytes().split(b"\n"):
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("idempotency_key"):
            records.append(record)
    return records


class DecisionService:
    """Recommendations for contacts from the served policies; learns from outcomes while it serves."""

    def __init__(
        self,
        contexts: pl.DataFrame,
        learner: OnlineLearner | None,
        policy_info: dict[str, Any],
        outreach=None,
        segment: SegmentThompson | None = None,
    ):
        self.contexts = contexts
        ids = contexts["contact_id"].cast(pl.String).to_list()
        # contact id -> row: byte arrays, not a dict (113 MB at 1M contacts in every server process)
        self._row = IdIndex.build(id_bytes(ids)) if encodable(ids) else {c: i for i, c in enumerate(ids)}
        del ids
        self.learner = learner
        # every contact encoded once, vectorised: a decision or an outcome of a known contact is a row lookup
        self._encoded = learner.policy.encoder.encode(contexts) if learner is not None else None
        self.policy_info = policy_info
        self.outreach = outreach
        self.segment = segment
        self._served: dict[str, dict[str, Any]] = {}
        self._served_lock = threading.Lock()

    # -- building ------------------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        tables: Mapping[str, pl.DataFrame | None],
        home: str | Path | None,
        load_registry: bool = True,
        persist: bool = True,
        learner: OnlineLearner | None = None,
    ) -> DecisionService:
        """From the staged tables (and scored_leads, action_log when built) and the registry's gated policies.

        ``learner``: an online learner to keep when it was learned from the same base (a snapshot rebuild).
        """
        contacts = tables.get("staged_contacts")
        if contacts is None:
            raise ValueError("staged_contacts has not been built: run `holocrm run`")
        contexts = contact_contexts(
            contacts,
            tables.get("staged_companies"),
            tables.get("staged_activities"),
            tables.get("scored_leads"),
        )
        action_log = tables.get("action_log")
        champion, outreach = None, None
        if load_registry:
            champion = _load_action_champion()
            outreach = _load_outreach_champion()
        if champion is not None:
            policy, version, reason = champion
            base = f"{ACTION_POLICY}/{version}"
            info = {
                "name": ACTION_POLICY,
                "kind": policy.name,
                "version": version,
                "served_as": "champion",
                "why": f"{ACTION_POLICY} v{version} passed its off-policy gate ({reason}); "
                "updated online by every outcome recorded since",
            }
        else:
            policy = ContextualThompson(
                seed=0, encoder=ContextEncoder.fit(contexts), exploration=ONLINE_EXPLORATION
            )
            base = f"{ONLINE_BASE}/{policy.encoder.version}"
            info = {
                "name": "contextual_thompson",
                "kind": policy.name,
                "version": base,
                "served_as": "learning_online",
                "why": "no action policy has passed its off-policy gate yet: a contextual Thompson policy over "
                "this export's own fields (custom fields included) learns from every outcome recorded",
            }
        path = online_state_path(home) if home is not None else None
        if (
            learner is not None
            and learner.base == base
            and learner.policy.encoder.version == policy.encoder.version
        ):
            served = learner
        else:
            served = OnlineLearner.resume(policy, base, path)
            if not persist:
                served.path = None
            if action_log is not None and action_log.height:
                if champion is None:  # learned from scratch: every usable logged outcome (idempotent)
                    usable = (
                        action_log.filter(pl.col("usable")) if "usable" in action_log.columns else action_log
                    )
                    served.observe_many(_log_records(usable))
                elif not served.applied:
                    # a new champion was trained on every row of this log: they count as learned
                    served.applied |= set(action_log["action_id"].drop_nulls().cast(pl.String).to_list())
        return cls(contexts, served, info, outreach)

    # -- learning ------------------------------------------------------------------------------------------
    def observe(self, record: Mapping[str, Any]) -> bool:
        """Learn from one recorded outcome (its context completed from this service's view of the contact)."""
        if self.learner is None:
            return False
        record = dict(record)
        context = record.get("context")
        if isinstance(context, str):
            try:
                context = json.loads(context)
            except ValueError:
                context = {}
        context = dict(context or {})
        contact = str(record.get("contact_id"))
        known = self.context_of(contact)
        if known is not None and not context.get("_full"):
            overrides = {k: v for k, v in context.items() if v is not None and known.get(k) != v}
            if not overrides and self._encoded is not None:  # the served context: its row is encoded already
                record["_features"] = self._encoded.features[self._row[contact]]
            context = {**known, **overrides}
        record["context"] = context
        return self.learner.observe(record)

    def replay(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Learn the records not learned yet (idempotent: a known key is skipped)."""
        return sum(self.observe(r) for r in records)

    def context_of(self, contact_id: str) -> dict[str, Any] | None:
        """The contact's full decision context (JSON-safe), as the policies see it."""
        i = self._row.get(contact_id)
        if i is None:
            return None
        return {k: _json_safe(v) for k, v in self.contexts.row(i, named=True).items()}

    def served(self, contact_id: str) -> dict[str, Any] | None:
        """The last decision served for this contact (action, propensity, policy): logged with its outcome."""
        with self._served_lock:
            return self._served.get(contact_id)

    # -- deciding ------------------------------------------------------------------------------------------
    def recommend(self, contact_id: str, posterior: bool = False) -> dict[str, Any] | None:
        """The answer for one contact; None when the contact is unknown to this service."""
        answers = self.recommend_many([contact_id], posterior)
        return answers[0] if answers else None

    def recommend_many(self, contact_ids: Iterable[str], posterior: bool = False) -> list[dict[str, Any]]:
        ids = [c for c in contact_ids if c in self._row]
        if not ids:
            return []
        frame = self.contexts[[self._row[c] for c in ids]]
        status = frame["lifecycle_status"].to_list()
        decided = {c: decided_reason(s) for c, s in zip(ids, status, strict=True)}
        open_rows = frame.filter(pl.Series([decided[c] is None for c in ids]))
        answers: dict[str, dict[str, Any]] = {}
        for c in ids:
            if decided[c] is not None:
                answers[c] = {
                    "contact_id": c,
                    "action": None,
                    "decided": True,
                    "reason": decided[c],
                    "policy": None,
                }
        if open_rows.height:
            answers |= self._contextual(open_rows, posterior)
            if self.outreach is not None:
                covered = open_rows.filter(pl.col("lifecycle_status").is_in(self.outreach.statuses))
                if covered.height:
                    answers |= self._outreach(covered, answers, posterior)
        out = [answers[c] for c in ids]
        with self._served_lock:
            for a in out:
                if a.get("action"):
                    self._served[a["contact_id"]] = {
                        "action": a["action"],
                        "propensity": a.get("propensity"),
                        "policy": a["policy"]["name"],
                        "policy_version": a["policy"]["version"],
                    }
        return out

    def _contextual(self, frame: pl.DataFrame, posterior: bool) -> dict[str, dict[str, Any]]:
        if self.learner is not None:
            self.learner.flush()
            rows = np.asarray([self._row[c] for c in frame["contact_id"].cast(pl.String).to_list()])
            encoded = self._encoded.take(rows)
            with self.learner._lock:
                table = recommend(
                    self.learner.policy,
                    frame,
                    version=self.learner.base,
                    encoded=encoded,
                    posterior=posterior,
                )
            info = {**self.policy_info, "observations": int(self.learner.policy.observations)}
        else:
            table = recommend(self.segment, frame, version="segment_thompson", posterior=posterior)
            info = {
                "name": "segment_thompson",
                "kind": "segment_thompson",
                "version": "segment_thompson",
                "served_as": "fallback",
                "why": "no contextual policy could be built: per-segment Thompson sampling answers",
            }
        answers = {}
        for row in table.iter_rows(named=True):
            answers[row["contact_id"]] = _answer(row, info, posterior)
        return answers

    def _outreach(self, frame: pl.DataFrame, contextual: dict, posterior: bool) -> dict[str, dict[str, Any]]:
        decided = self.outreach.decide(frame)
        out = {}
        for i, contact in enumerate(frame["contact_id"].cast(pl.String).to_list()):
            action = str(decided["action"].iloc[i])
            base = contextual.get(contact, {})
            rates = (base.get("posterior") or {}).get(action, {}) if posterior else {}
            words = reason_in_words(base.get("factors") or [], action)
            answer = {
                **base,
                "action": action,
                "propensity": round(float(decided["propensity"].iloc[i]), 4),
                "confidence": round(float(decided["confidence"].iloc[i]), 4),
                "reasoning": f"the outreach policy plans the whole sequence and picks {action} now "
                f"(p {float(decided[f'p_{action}'].iloc[i]):.2f}); contextual view: {words}",
                "policy": {
                    "name": "holocrm_outreach_policy",
                    "kind": "ppo",
                    "version": self.outreach.version,
                    "served_as": "outreach_champion",
                    "why": f"the gated PPO outreach champion v{self.outreach.version} covers open contacts and "
                    f"the actions {', '.join(self.outreach.actions)} ({self.outreach.reason})",
                },
                "policy_version": f"holocrm_outreach_policy/{self.outreach.version}",
                "action_probabilities": {
                    a: round(float(decided[f"p_{a}"].iloc[i]), 4) for a in self.outreach.actions
                },
            }
            if posterior and rates:
                answer["expected_success_rate"] = rates.get("expected_success_rate")
            out[contact] = answer
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "contextual": self.policy_info,
            "online": self.learner.describe() if self.learner is not None else None,
            "outreach_champion": None
            if self.outreach is None
            else {
                "name": "holocrm_outreach_policy",
                "version": self.outreach.version,
                "reason": self.outreach.reason,
            },
            "contacts": self.contexts.height,
        }

    def close(self) -> None:
        if self.learner is not None:
            self.learner.close()


def _answer(row: dict[str, Any], info: dict[str, Any], posterior: bool) -> dict[str, Any]:
    keys = (
        "contact_id",
        "action",
        "priority",
        "expected_success_rate",
        "uncertainty",
        "trials",
        "reasoning",
        "propensity",
        "confidence",
        "runner_up",
        "runner_up_success_rate",
        "factors",
    )
    answer = {k: row.get(k) for k in keys}
    answer |= {
        "decided": False,
        "policy": dict(info),
        "policy_version": row.get("policy_version") or info["version"],
    }
    if posterior:
        answer["posterior"] = row.get("posterior")
    return answer


def _log_records(log_table: pl.DataFrame) -> Iterable[dict[str, Any]]:
    """Action-log rows as outcome records (their point-in-time context is the row itself)."""
    for row in log_table.iter_rows(named=True):
        if row.get("reward") is None or row.get("action_id") is None:
            continue
        context = {k: _json_safe(v) for k, v in row.items()}
        context["_full"] = True
        yield {
            "idempotency_key": row["action_id"],
            "action": row["action"],
            "reward": row["reward"],
            "context": context,
        }


def _load_action_champion():
    """(policy, version, gate reason) of the gated action-policy champion, or None."""
    from holocrm_core.decisions.champion import load_champion_policy

    try:
        loaded = load_champion_policy()
    except Exception as exc:  # an incompatible or unreadable artifact: serve what can be served, say why
        log.warning("the action policy champion could not be loaded: %s", exc)
        return None
    return loaded


def _load_outreach_champion():
    from holocrm_core.rl.serving import load_outreach_champion

    try:
        return load_outreach_champion()
    except Exception as exc:
        log.warning("the outreach champion could not be loaded: %s", exc)
        return None
