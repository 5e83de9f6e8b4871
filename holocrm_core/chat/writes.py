"""The assistant's writes: close or reopen a deal, log a note or call, record an action's outcome, start an
experiment. Each is previewed as a diff and run only on the next turn's "yes" (or ``yes=True``).

A write goes through the door's ``writer(kind, record, check)`` (the CLI and the API append to the same
durable, idempotent logs as the API's own routes: closes and reopenings to the outcome log, action outcomes
to the action log, experiments to the experiment store); the core never writes a file. A write to a record
that is not the one in focus is refused, and so is a close or reopen that contradicts the deal's state.
"""

from __future__ import annotations

import contextlib
import re

from holocrm_core.chat import catalogue
from holocrm_core.chat.data import Rec
from holocrm_core.chat.text import now_iso, plain
from holocrm_core.deal_states import DealStateConflict

# "the call worked" -> 1.0, "it failed" -> 0.0, "50%" / "0.5" -> the share
_WORKED = (
    "worked",
    "paid off",
    "succeeded",
    "was a success",
    "a success",
    "successful",
    "was successful",
    "landed",
    "converted",
    "got a",
)
_FAILED = ("failed", "did not work", "didn't work", "went nowhere", "got no", "was ignored", "bounced",
           "unsuccessful", "was unsuccessful")  # fmt: skip


def reward_of(result: str) -> float:
    """The reward a spoken result stands for (0 to 1)."""
    text = result.lower().strip()
    if text.startswith(_WORKED):
        return 1.0
    if text.startswith(_FAILED):
        return 0.0
    number = re.search(r"(\d+(?:\.\d+)?|\.\d+)\s*(%?)", text)
    if number is None:
        raise ValueError(f"cannot read a result from {result!r}")
    value = float(number.group(1)) / (100.0 if number.group(2) else 1.0)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"a result is a share from 0 to 1 (or 0% to 100%), not {result!r}")
    return value


class WriteIntents:
    """The write intents of ``ChatSession`` (a mixin: it uses the session's focus, data and trace)."""

    def _write_target(self, ref: str | None, kinds: tuple[str, ...], closed: bool = False) -> Rec:
        """The record a write is for; refused unless it is the record in focus (or named by a pronoun)."""
        from holocrm_core.chat.errors import ChatError, Chosen

        named = (ref or "").strip().lower()
        by_pronoun = not named or named in catalogue.REF_PRONOUNS
        if self.focus is None:
            if by_pronoun:
                raise ChatError(
                    "refused: nothing is in focus; open the record first (e.g. `show <name>`), then ask"
                )
            return self.resolve(
                ref, kinds, closed
            )  # named while nothing is in focus: that record (previewed)
        if by_pronoun:
            if self.stale and not self._focus_set:
                # the last turn named something not resolved: "it" may not be the focus; ask, the focus first
                raise Chosen(self._stale_choices(ref, kinds, closed))
            return self.resolve(ref, kinds, closed)
        try:
            target = self.resolve(ref, kinds, closed)
        except Chosen as several:
            if self.focus not in several.choices:
                raise ChatError(
                    f"refused: {ref!r} matches several records; open the one you mean first"
                ) from None
            target = self.focus  # "note for Nguyen: ..." with one of the Nguyens in focus: that one
        try:
            focus_deal = (
                self._from_focus("that deal", ("deal",), closed) if kinds == ("deal",) else self.focus
            )
        except ChatError:  # the focus holds several such deals: only the focus itself is writable
            focus_deal = self.focus
        if target != focus_deal and target != self.focus:
            raise ChatError(
                f"refused: {target.label} is not the record in focus ({self.focus.label}); open it first "
                "(`show ...`) so the write goes to the record you are looking at"
            )
        return target

    def _stale_choices(self, ref: str | None, kinds: tuple[str, ...], closed: bool) -> list[Rec]:
        """What a pronoun may mean after a turn that was not resolved: the focus (or what it holds of the
        kind asked), then the records the unresolved turn's words come close to."""
        from holocrm_core.chat.errors import ChatError, Chosen
        from holocrm_core.chat.understand import residual, spot

        choices: list[Rec] = []
        try:
            choices.append(self._from_focus((ref or "").strip().lower(), kinds, closed) or self.focus)
        except Chosen as several:
            choices.extend(several.choices)
        except ChatError:
            choices.append(self.focus)
        said = (self.stale or {}).get("text") or ""
        wanted = kinds if kinds != ("company", "contact", "deal") else None
        named = [e for s in spot(self.data, said) for e in s.entries if wanted is None or e[0] in wanted]
        candidates = [self.data.rec(kind, rid) for kind, rid, _ in named]
        rest = residual(said)
        if not candidates and rest:
            with contextlib.suppress(ChatError):
                candidates = self.find(rest, wanted)
        for rec in candidates:
            if rec not in choices:
                choices.append(rec)
        return choices[:5]

    def _key(self) -> str:
        return f"chat-{self.id}-{self.turns}"

    # -------------------------------------------------------------------------------------------- deals
    def _deal_target(self, args: dict, out: dict, closed: bool = False) -> Rec:
        from holocrm_core.chat.errors import ChatError

        out["write"] = {"status": "refused"}
        deal = self._write_target(args.get("ref"), ("deal",), closed)
        if deal.kind != "deal":
            raise ChatError(f"refused: {deal.label} is not a deal")
        return deal

    def _do_close_deal(self, args: dict, out: dict) -> None:
        from holocrm_core.chat.errors import ChatError

        deal = self._deal_target(args, out)
        outcome = args["outcome"].lower()
        try:
            same = self.data.deal_states.check_close(deal.id, outcome, self.data.export_stage(deal.id))
        except DealStateConflict as exc:
            out["write"] = {"status": "refused", "reason": str(exc), "deal_id": deal.id}
            raise ChatError(f"refused: {exc}") from None
        if same is not None:
            out["write"] = {"status": "refused", "reason": "already closed as " + outcome, "deal_id": deal.id}
            raise ChatError(f"{deal.label} is already closed as {outcome}: nothing to change")
        scored = self.data.score("deal", deal.id) or {}
        record = {
            "idempotency_key": self._key(),
            "kind": "close",
            "deal_id": deal.id,
            "outcome": outcome,
            "closed_at": now_iso(),
            "prediction": {
                "score": plain(scored.get("score")),
                "model_version": scored.get("model_version"),
                "source": "precomputed" if scored else "none",
            },
            "source": "chat",
        }
        diff = {"deal_id": deal.id, "field": "status", "from": self.data.deal_status(deal.id), "to": outcome}
        self._propose("close_deal", deal, record, [diff], out)

    def _do_reopen_deal(self, args: dict, out: dict) -> None:
        """Reopen a closed deal (the API's ``POST /api/deals/{id}/reopen``); refused when it is open."""
        from holocrm_core.chat.errors import ChatError

        deal = self._deal_target(args, out, closed=True)
        try:
            self.data.deal_states.check_reopen(deal.id, self.data.export_stage(deal.id))
        except DealStateConflict as exc:
            out["write"] = {"status": "refused", "reason": str(exc), "deal_id": deal.id}
            raise ChatError(f"refused: {exc}") from None
        status = self.data.deal_status(deal.id)
        record = {
            "idempotency_key": self._key(),
            "kind": "reopen",
            "deal_id": deal.id,
            "outcome": None,
            "reason": args.get("reason"),
            "reopened_from": status,
            "source": "chat",
        }
        diff = {"deal_id": deal.id, "field": "status", "from": status, "to": "open"}
        self._propose("reopen_deal", deal, record, [diff], out)

    # -------------------------------------------------------------------------------- notes, outcomes
    def _do_log_note(self, args: dict, out: dict) -> None:
        out["write"] = {"status": "refused"}
        rec = self._write_target(args.get("ref"), ("company", "contact", "deal"))
        record = {
            "idempotency_key": self._key(),
            "kind": {"memo": "note"}.get(args.get("kind", "note").lower(), args.get("kind", "note").lower()),
            "entity_type": rec.kind,
            "entity_id": rec.id,
            "text": args["text"],
            "source": "chat",
        }
        diff = {
            "entity_type": rec.kind,
            "id": rec.id,
            "field": "activities",
            "add": f"{record['kind']}: {args['text']}",
        }
        self._propose("log_note", rec, record, [diff], out)

    def _do_record_outcome(self, args: dict, out: dict) -> None:
        """How an action with the contact in focus turned out, in the API's action-outcome record (the
        action: the one named, else the decision service's next action for that contact)."""
        from holocrm_core.chat.errors import ChatError

        out["write"] = {"status": "refused"}
        rec = self._write_target(args.get("ref"), ("contact", "deal", "company"))
        contact = self._contact_for(rec)
        if contact is None:
            raise ChatError(f"refused: {rec.label} has no contact to record an outcome for")
        contact = str(contact)
        reward = reward_of(args["result"])
        decisions = None
        with contextlib.suppress(LookupError):
            decisions = self.data.decisions
        served = decisions.served(contact) if decisions is not None else None
        action = (args.get("action") or "").lower()
        if not action:
            answer = decisions.recommend(contact) if decisions is not None else None
            if not answer or answer.get("decided") or not answer.get("action"):
                raise ChatError(
                    f"refused: no next action is recommended for {self.data.label('contact', contact)}; "
                    "say which one (`the call worked`)"
                )
            action = str(answer["action"])
            served = served or {k: answer.get(k) for k in ("action", "propensity", "policy_version")}
        if served is not None and served.get("action") != action:
            served = None  # another action than the one served: its propensity is unknown
        known = decisions.context_of(contact) if decisions is not None else None
        person = self.data.row("contact", contact) or {}
        deal_id = rec.id if rec.kind == "deal" else None
        record = {
            "idempotency_key": self._key(),
            "contact_id": contact,
            "deal_id": deal_id,
            "action": action,
            "reward": reward,
            "context": known or {k: plain(person.get(k)) for k in ("lifecycle_status", "seniority")},
            "propensity": (served or {}).get("propensity"),
            "policy": (served or {}).get("policy_version"),
            "taken_at": None,
            "source": "chat",
        }
        who = self.data.rec("contact", contact)
        diff = {"contact_id": contact, "field": "action outcomes", "add": f"{action}: reward {reward:g}"}
        self._propose("record_outcome", who, record, [diff], out)

    # ------------------------------------------------------------------------------------ propose, yes
    def _propose(self, kind: str, rec: Rec | None, record: dict, diff: list[dict], out: dict) -> None:
        self.pending = {"kind": "write", "write": kind, "record": record, "target": rec, "diff": diff}
        if rec is not None:
            self._show(out, [rec], focus=rec)
        out["write"] = {
            "status": "proposed",
            "kind": kind,
            "diff": diff,
            "target": rec.public() if rec else None,
        }
        changes = "; ".join(
            f"{d.get('field')}: {d['from']} -> {d['to']}" if "to" in d else f"{d['field']}: + {d['add']}"
            for d in diff
        )
        what = rec.label if rec is not None else "the experiments"
        out["reply"] = f"About to change {what}: {changes}. Say yes to do it, no to drop it."

    def _confirm(self, pending: dict | None, out: dict, via: str = "yes") -> None:
        from holocrm_core.chat.errors import ChatError

        if not pending or pending.get("kind") != "write":
            out["write"] = None
            raise ChatError("there is nothing waiting for a yes")
        if self.writer is None:
            out["write"] = {"status": "refused", "reason": "this door cannot write"}
            raise ChatError("refused: this session cannot write (no log to write to)")
        record = {**pending["record"], "recorded_at": now_iso()}
        check = None
        deal_id = record.get("deal_id")
        if pending["write"] == "close_deal":
            outcome = record["outcome"]

            def check() -> None:  # run by the door under its log's lock: the state may have moved since
                same = self.data.deal_states.check_close(deal_id, outcome, self.data.export_stage(deal_id))
                if same is not None:
                    raise DealStateConflict(f"deal {deal_id} is already closed as {outcome}", same)

        elif pending["write"] == "reopen_deal":

            def check() -> None:
                self.data.deal_states.check_reopen(deal_id, self.data.export_stage(deal_id))

        try:
            result = self.writer(pending["write"], record, check)
        except (DealStateConflict, PermissionError, OSError, ValueError) as exc:
            out["write"] = {"status": "refused", "reason": str(exc), "kind": pending["write"]}
            raise ChatError(f"refused: {exc}") from None
        made = result.get("record", record)
        if pending["write"] in ("close_deal", "reopen_deal"):
            self.data.deal_states.observe(made)
        if pending["write"] == "start_experiment":
            self.experiment = record["experiment"]["name"]
        target = pending.get("target")
        out["write"] = {
            "status": "made",
            "kind": pending["write"],
            "via": via,
            "diff": pending["diff"],
            "target": target.public() if target else None,
            "record": made,
        }
        if target is not None:
            self._show(out, [target], focus=target)
        what = target.label if target is not None else record.get("experiment", {}).get("name")
        out["reply"] = (out["reply"] + "\n" if out["reply"] else "") + f"Done: {pending['write']} on {what}."

    def _cancel(self, pending: dict | None, out: dict) -> None:
        if pending and pending.get("kind") == "write":
            out["write"] = {"status": "cancelled", "kind": pending["write"]}
            out["reply"] = "Dropped: nothing was written."
        else:
            out["reply"] = "Nothing to cancel."
