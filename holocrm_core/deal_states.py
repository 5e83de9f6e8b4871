"""The state of each deal after the field's outcome log: one outcome per deal, reopened only explicitly.

The outcome log (HOLOCRM_HOME/logs/outcomes.ndjson, appended by the API) holds two kinds of record, in the
order they were acknowledged: ``close`` (``outcome`` won or lost) and ``reopen``. Folding them in order over
the export's own state gives each deal's *latest valid state*:

- an open deal is closed by a ``close``;
- a ``close`` of a closed deal with the same outcome changes nothing (a repeat), with the other outcome is
  invalid (a contradiction: the API answers 409 and does not log it; a log written before that guard may
  hold one, and it is ignored here);
- a ``reopen`` of a closed deal (closed in the log or in the export) makes it open; of an open deal it is
  invalid.

The API checks each new record against this fold (``DealStates.check_*``) under the log's lock, so the
log only ever holds valid transitions; the outcome dataset learns from :func:`latest_valid_outcomes`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

CLOSED = ("won", "lost")


@dataclass(frozen=True)
class DealState:
    """Where a deal stands: ``status`` open/won/lost, and which record (or the export) put it there."""

    deal_id: str
    status: str
    source: str  # "field" (the outcome log), "export", or "none" (open, nothing recorded)
    record: dict[str, Any] | None = None  # the log record behind the status (close or reopen)

    @property
    def closed(self) -> bool:
        return self.status in CLOSED

    def public(self) -> dict[str, Any]:
        """What the API shows as the deal's current state."""
        out: dict[str, Any] = {"deal_id": self.deal_id, "status": self.status, "source": self.source}
        if self.record is not None:
            out["recorded_at"] = self.record.get("recorded_at")
            out["idempotency_key"] = self.record.get("idempotency_key")
            if self.record.get("closed_at"):
                out["closed_at"] = self.record.get("closed_at")
        return out


class DealStateConflict(Exception):
    """A close or reopen that contradicts the deal's current state."""

    def __init__(self, message: str, current: DealState):
        super().__init__(message)
        self.current = current


def record_kind(record: Mapping[str, Any]) -> str:
    return str(record.get("kind") or "close")  # records written before reopening existed are closes


def export_status(stage: Any) -> str:
    """The status the export gives a deal from its stage: won, lost, or open."""
    value = str(stage or "").strip().lower()
    return value if value in CLOSED else "open"


class DealStates:
    """The fold of the outcome log, kept current record by record (``observe``) in log order."""

    def __init__(self) -> None:
        self._field: dict[str, DealState] = {}

    def observe(self, record: Mapping[str, Any]) -> None:
        """Apply one log record; an invalid one (contradiction, reopen of an open deal) is ignored."""
        deal_id = record.get("deal_id")
        if not deal_id:
            return
        deal_id = str(deal_id)
        current = self._field.get(deal_id)
        kind = record_kind(record)
        if kind == "close":
            outcome = str(record.get("outcome") or "").lower()
            if outcome not in CLOSED:
                return
            if current is None or not current.closed:
                self._field[deal_id] = DealState(deal_id, outcome, "field", dict(record))
            # closed already: the same outcome is a repeat, another is a contradiction; either way no change
        elif kind == "reopen" and (current is None or current.closed):
            # Without the export at hand a reopen is taken as valid; the API checked it against the export.
            self._field[deal_id] = DealState(deal_id, "open", "field", dict(record))

    def seed_export(self, deal_id: str, export_stage: Any) -> None:
        """Start a deal the log has not touched yet from the export's stage (closed there: a close needs a
        reopen first)."""
        exported = export_status(export_stage)
        if deal_id not in self._field and exported in CLOSED:
            self._field[deal_id] = DealState(deal_id, exported, "export")

    def closes_in_force(self) -> list[dict[str, Any]]:
        """The field's close records still in force (deal closed in the log, not reopened since)."""
        return [
            s.record
            for s in self._field.values()
            if s.source == "field" and s.closed and s.record is not None
        ]

    def state(self, deal_id: str, export_stage: Any = None) -> DealState:
        """The deal's current state: the log's latest valid record, else the export's stage."""
        recorded = self._field.get(deal_id)
        if recorded is not None:
            return recorded
        status = export_status(export_stage)
        return DealState(deal_id, status, "export" if status in CLOSED else "none")

    def check_close(self, deal_id: str, outcome: str, export_stage: Any = None) -> DealState | None:
        """None: the close may be logged. A state: the deal is already closed with this outcome (a repeat;
        answer it without logging). Raises ``DealStateConflict`` for the other outcome."""
        current = self.state(deal_id, export_stage)
        if not current.closed:
            return None
        if current.status == outcome:
            return current
        where = "the export holds it" if current.source == "export" else "it was recorded"
        raise DealStateConflict(
            f"deal {deal_id} is closed as {current.status} ({where}); closing it as {outcome} contradicts that: "
            f"reopen it first (POST /api/deals/{deal_id}/reopen) if the outcome really changed",
            current,
        )

    def check_reopen(self, deal_id: str, export_stage: Any = None) -> None:
        """Raises ``DealStateConflict`` when the deal is not closed (nothing to reopen)."""
        current = self.state(deal_id, export_stage)
        if not current.closed:
            raise DealStateConflict(f"deal {deal_id} is open: there is nothing to reopen", current)


def latest_valid_outcomes(
    records: Iterable[Mapping[str, Any]], export_stages: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The close records still in force after folding ``records`` (log order, duplicates of an idempotency
    key dropped): one per deal that the field closed and did not reopen. For the outcome dataset: a deal
    reopened after its close has no field outcome; a contradicting close is never one.

    ``export_stages`` (deal id -> export stage), when given, makes a field close of a deal the export already
    holds closed count only after a reopen, as the API enforces.
    """
    states = DealStates()
    stages = export_stages or {}
    seen: set[str] = set()
    for record in records:
        key = record.get("idempotency_key")
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        deal_id = str(record.get("deal_id") or "")
        if not deal_id:
            continue
        if deal_id in stages:
            states.seed_export(deal_id, stages[deal_id])
        states.observe(record)
    return states.closes_in_force()
