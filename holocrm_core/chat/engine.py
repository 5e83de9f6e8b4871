"""The conversation: a turn in, one intent of the catalogue run, one JSON-able turn out (with its trace).

``ChatSession.turn(text)`` reads the turn with ``catalogue.classify``; what no pattern matches goes to the NL
question layer (``holocrm_core.services.answer_question``), and what that does not understand is answered
"not understood" with suggestions. The session keeps the record in focus, the last result set (what "them",
"the second one" point at), the previous question (what "only the ones in fintech" refines) and at most one
pending thing: numbered choices, NL readings, or a previewed write.

Writes (closing a deal, logging a note) are previewed as a diff and run only on the next turn's "yes" (or at
once with ``yes=True``, the CLI's ``--yes``). They go through ``writer(kind, record, check)``, a function the
door supplies (the CLI and the API append to their durable logs there); the core never writes a file. A
write is refused when its record is not the one in focus, and a close that contradicts the deal's state
(``holocrm_core.deal_states``) is refused with the reason.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import polars as pl

from holocrm_core.chat import catalogue
from holocrm_core.chat.data import ChatData, Rec, name_key
from holocrm_core.chat.errors import ChatError, Chosen, NotFound
from holocrm_core.chat.experiment_intents import ExperimentIntents
from holocrm_core.chat.questions import QuestionIntents
from holocrm_core.chat.reading import ReadIntents
from holocrm_core.chat.understand import UnderstandIntents
from holocrm_core.chat.weave import WovenIntents
from holocrm_core.chat.writes import WriteIntents
from holocrm_core.services.refusal import Refusal

log = logging.getLogger("holocrm.chat")
MATCH_THRESHOLD = 80.0  # rapidfuzz WRatio (0-100) a name must reach to count as a match
AMBIGUOUS_WITHIN = 4.0  # matches this close to the best one are offered as numbered choices
MAX_CHOICES = 5
KIND_WORDS = {
    "company": "company",
    "account": "company",
    "contact": "contact",
    "person": "contact",
    "lead": "contact",
    "deal": "deal",
    "opportunity": "deal",
}

Writer = Callable[[str, dict[str, Any], Callable[[], None] | None], dict[str, Any]]


class ChatSession(
    UnderstandIntents, ReadIntents, QuestionIntents, WriteIntents, WovenIntents, ExperimentIntents
):
    """One conversation over a ``ChatData``; ``writer`` appends confirmed writes (None: this door can't)."""

    def __init__(self, data: ChatData, writer: Writer | None = None, session_id: str | None = None):
        self.data = data
        self.writer = writer
        self.id = session_id or uuid.uuid4().hex[:12]
        self._focus: Rec | None = None
        self._focus_set = False  # whether this turn (re)set the focus
        # the turn that named a record the assistant did not resolve (not understood, no such name): the focus
        # is stale then, and a write addressed by pronoun asks which record instead of writing to the focus
        self.stale: dict[str, Any] | None = None
        self._last_intent: str | None = None  # what the previous turn was read as (a prior for this one)
        self.results: list[Rec] = []
        self.question: dict[str, Any] | None = None  # base, filters, time, sort
        self.pending: dict[str, Any] | None = None
        self.experiment: str | None = None  # the experiment last started or read ("how is it doing?")
        self.turns = 0

    @property
    def focus(self) -> Rec | None:
        return self._focus

    @focus.setter
    def focus(self, rec: Rec | None) -> None:
        self._focus = rec
        self._focus_set = rec is not None

    # ----------------------------------------------------------------------------------------- state
    def state(self) -> dict[str, Any]:
        """What the conversation remembers, as JSON (a session store keeps it between turns and workers)."""

        def rec(r: Rec | None) -> list[str] | None:
            return None if r is None else [r.kind, r.id, r.label]

        pending = self.pending
        if pending is not None:
            pending = {
                **pending,
                **({"choices": [rec(c) for c in pending["choices"]]} if "choices" in pending else {}),
                **({"target": rec(pending.get("target"))} if "target" in pending else {}),
            }
        return {
            "id": self.id,
            "turns": self.turns,
            "focus": rec(self.focus),
            "results": [rec(r) for r in self.results],
            "question": self.question,
            "pending": pending,
            "experiment": self.experiment,
            "stale": self.stale,
            "last_intent": self._last_intent,
        }

    @classmethod
    def restore(cls, data: ChatData, state: dict[str, Any], writer: Writer | None = None) -> ChatSession:
        def rec(r) -> Rec | None:
            return None if r is None else Rec(*r)

        session = cls(data, writer=writer, session_id=state["id"])
        session.turns = int(state.get("turns") or 0)
        session.focus = rec(state.get("focus"))
        session.results = [rec(r) for r in state.get("results") or []]
        session.question = state.get("question")
        session.experiment = state.get("experiment")
        session.stale = state.get("stale")
        session._last_intent = state.get("last_intent")
        pending = state.get("pending")
        if pending is not None:
            if "choices" in pending:
                pending["choices"] = [rec(c) for c in pending["choices"]]
            if "target" in pending:
                pending["target"] = rec(pending["target"])
        session.pending = pending
        return session

    # ------------------------------------------------------------------------------------------ the turn
    def turn(self, text: str, yes: bool = False) -> dict[str, Any]:
        self.turns += 1
        text = " ".join((text or "").split())
        out: dict[str, Any] = {
            "turn": self.turns,
            "text": text,
            "intent": None,
            "arguments": {},
            "reply": "",
            "records": [],
            "choices": [],
            "write": None,
            "trace": [],
        }
        self._out = out
        if not text:
            return self._not_understood(out, "the turn is empty")
        pending, self.pending = self.pending, None
        self._pending_kept = pending
        self._focus_set = False
        self._ranked = None
        intent, args, how = self._read(text, pending)
        out["intent"], out["arguments"], out["read"] = intent, dict(args), how
        try:
            if intent == "not_understood":
                self._not_understood(out, "not something I can run here")
            elif intent == "confirm":
                self._confirm(pending, out)
            elif intent == "cancel":
                self._cancel(pending, out)
            elif intent == "pick":
                self._pick(pending, catalogue.ordinal(args), out)
            else:
                getattr(self, f"_do_{intent}")(args, out)
                if yes and self.pending and self.pending.get("kind") == "write":
                    self._confirm(self.pending, out, via="--yes")
                    self.pending = None
        except Chosen as chosen:
            self._ask_which(chosen.choices, intent, args, out)
        except ChatError as exc:
            out["reply"] = str(exc)
            out["error"] = str(exc)
            if isinstance(exc, NotFound):
                out["unresolved"] = True
        except Refusal as exc:  # a service's refusal (no index yet, an id it does not hold): its words
            out["reply"] = out["error"] = exc.message
        except (ValueError, KeyError, IndexError, TypeError, re.error, pl.exceptions.PolarsError) as exc:
            # a turn the data cannot answer (odd values in the export): said, never a crash of the session
            log.warning("chat turn %r failed: %s: %s", text, type(exc).__name__, exc)
            out["reply"] = out["error"] = f"I could not answer that ({type(exc).__name__}: {exc})"
        if (
            out["intent"] == "not_understood"
            or out.get("unresolved")
            or (out.get("clarify") and out["choices"])
        ):
            # the rep named something the assistant did not resolve: the focus is stale until a turn sets it
            self.stale = {"text": text}
        elif self._focus_set:
            self.stale = None
        self._last_intent = out["intent"]
        out["focus"] = self.focus.public() if self.focus else None
        return out

    # ------------------------------------------------------------------------------------------ helpers
    def _step(self, step: str, ran: str, records: int, started: float, **extra) -> None:
        entry = {
            "step": step,
            "ran": ran,
            "records": records,
            "ms": round((time.perf_counter() - started) * 1e3, 1),
        }
        self._out["trace"].append({**entry, **{k: v for k, v in extra.items() if v is not None}})

    def _show(self, out: dict, recs: list[Rec], focus: Rec | None = None) -> None:
        out["records"] = [r.public() for r in recs]
        self.results = recs
        if focus is not None:
            self.focus = focus

    def _do_help(self, args: dict, out: dict) -> None:
        shown = [i for i in catalogue.CATALOGUE if i.name != "help"]
        out["help"] = [{"intent": i.name, "does": i.help, "example": i.example} for i in shown]
        lines = [f"  {i.name:17} {i.help}\n  {'':17} e.g. `{i.example}`" for i in shown]
        out["reply"] = (
            "I can run these (anything else is read as a question, e.g. `open deals in fintech`):\n"
            + "\n".join(lines)
            + "\nFollow-ups: `only the ones in fintech`, `sort by value`, `what about last quarter?`, "
            "`it` / `them` / `that deal`, `the second one`. Writes are previewed and need `yes`."
        )
        self.pending = self._pending_kept  # asking for help does not drop a pending write or choice

    def _not_understood(self, out: dict, why: str) -> dict[str, Any]:
        out["intent"] = "not_understood"
        suggested = catalogue.suggestions()
        near = [r[0] for r in (self._ranked or [])[:3] if r[0] in catalogue.BY_NAME]
        if near:  # the intents nearest in meaning first
            first = [catalogue.BY_NAME[n].example for n in near]
            suggested = first + [s for s in suggested if s not in first]
        out["reply"] = f"Sorry, I did not understand that ({why}). Try: " + "; ".join(suggested)
        out["suggestions"] = suggested
        out["focus"] = self.focus.public() if self.focus else None
        return out

    def _ask_which(self, choices: list[Rec], intent: str, args: dict, out: dict) -> None:
        self.pending = {"kind": "choices", "choices": choices, "intent": intent, "args": args}
        out["choices"] = [{"pick": i, **c.public()} for i, c in enumerate(choices, 1)]
        out["clarify"] = True
        lines = [f"  {i}. {c.label}" for i, c in enumerate(choices, 1)]
        out["reply"] = "Which one do you mean?\n" + "\n".join(lines)

    # ------------------------------------------------------------------------------------- references
    def find(self, name: str, kinds: tuple[str, ...] | None = None) -> list[Rec]:
        """Records whose name matches ``name`` best first (an exact name alone; else the close ones)."""
        from rapidfuzz import fuzz, process

        started = time.perf_counter()
        words = name.split()
        if (
            words
            and words[0].lower() in ("the", "a", "an")
            and name_key(name).lower() not in self.data.by_name
        ):
            words = words[1:]
        if name_key(" ".join(words)).lower() in self.data.by_name:
            pass  # a name as written ("Primary contact, Bluth Company") keeps its kind-like words
        elif len(words) > 1 and words[0].lower() in KIND_WORDS:
            kinds = (KIND_WORDS[words[0].lower()],)
            words = words[1:]
        elif len(words) > 1 and words[-1].lower() in KIND_WORDS and words[-1].lower() not in ("lead",):
            kinds = (KIND_WORDS[words[-1].lower()],)
            words = words[:-1]
        written = name_key(" ".join(words))
        query = written.lower()
        if not query:
            raise ChatError("which record? give a name, e.g. `find Acme`")
        pool, lowered = self.data.name_pool(kinds)
        exact = []
        for index in (self.data.by_name, self.data.by_id, self.data.by_short):  # a name, an id, a short name
            exact = [t for t in index.get(query, []) if kinds is None or t[0] in kinds]
            if exact:
                break
        if len(exact) > 1:  # names equal but for case ("ACME LTD." and "Acme Ltd"): as written wins
            exact = [t for t in exact if name_key(t[2]) == written] or exact
        if exact:
            found = [(t, 100.0) for t in exact]
        else:
            # Prefilter: names with a word starting like one of the query's (3 letters), scored by WRatio;
            # a full scan of every name only when no name shares such a start (a typo in every word's first
            # letters). Cuts a lookup at 100k contacts from ~200 ms to a few.
            prefixes = self.data.prefixes(kinds)
            starts = {w[:3] for w in re.findall(r"[0-9a-z]+", query) if len(w) >= 3}
            candidates = sorted({i for s in starts for i in prefixes.get(s, ())})
            choices = {i: lowered[i] for i in candidates} if candidates else dict(enumerate(lowered))
            hits = process.extract(
                query, choices, scorer=fuzz.WRatio, score_cutoff=MATCH_THRESHOLD, limit=MAX_CHOICES * 10
            )
            scored = sorted(
                ((pool[i], score) for _, score, i in hits), key=lambda s: (-s[1], s[0][0], s[0][2])
            )
            best = scored[0][1] if scored else 0
            found = [s for s in scored if s[1] >= best - AMBIGUOUS_WITHIN][:MAX_CHOICES]
        recs = [self.data.rec(kind, rid) for (kind, rid, _), _ in found]
        scanned = len(pool) if exact else len(choices)
        self._step(
            "find", f"fuzzy name match {query!r} over {scanned} of {len(pool)} names", len(recs), started
        )
        return recs

    def resolve(self, ref: str | None, kinds: tuple[str, ...] | None = None, closed: bool = False) -> Rec:
        """The record ``ref`` names: a pronoun: the focus; an ordinal: the last results; else a name."""
        written = (ref or "").strip(" ?.!")
        if written.lower().endswith("'s"):
            written = written[:-2]
        ref = written.lower()
        if not ref or ref in catalogue.REF_PRONOUNS:
            rec = self._from_focus(ref, kinds, closed)
            if rec is None:
                raise ChatError("which record? nothing is in focus yet: find one first, e.g. `find Acme`")
            return rec
        number = re.fullmatch(
            rf"(?:the )?({'|'.join(catalogue.ORDINALS)}|\d+)(?: (?:one|result|row|record|deal|contact|company|lead))?",
            ref,
        )
        if number and self.results:
            n = catalogue.ordinal(
                {"ordinal": number.group(1)} if not number.group(1).isdigit() else {"number": number.group(1)}
            )
            return self._nth(n)
        recs = self.find(written, kinds)
        if not recs:
            raise NotFound(f"no company, contact or deal is called anything like {written!r}")
        if len(recs) > 1:
            raise Chosen(recs)
        return recs[0]

    def _from_focus(self, ref: str, kinds: tuple[str, ...] | None, closed: bool = False) -> Rec | None:
        """The record a pronoun means: the focus, or what the focus holds of the kind asked ("that deal" of a
        company: its one open deal, or with ``closed`` its one closed deal)."""
        focus = self.focus
        if focus is None:
            return None
        wanted = kinds
        for word, kind in KIND_WORDS.items():
            if ref.endswith(word):
                wanted = (kind,)
        if wanted is None or focus.kind in wanted:
            return focus
        if wanted == ("deal",):  # "that deal" said of a company or contact: its one open (closed) deal
            state = "closed" if closed else "open"
            deals = [
                d
                for d in self.data.deals_of(focus.kind, focus.id)["deal_id"].to_list()
                if (self.data.deal_status(d) == "open") != closed
            ]
            if len(deals) == 1:
                return self.data.rec("deal", deals[0])
            if 1 < len(deals) <= MAX_CHOICES * 2:  # which one? numbered (the pick resumes the turn's intent)
                raise Chosen([self.data.rec("deal", d) for d in deals])
            raise ChatError(
                f"{focus.label} has {len(deals)} {state} deals: say which one (e.g. `show deal <title>`)"
            )
        if wanted == ("contact",) and focus.kind == "deal":
            row = self.data.row("deal", focus.id) or {}
            if row.get("contact_id"):
                return self.data.rec("contact", str(row["contact_id"]))
        if wanted == ("company",) and focus.kind in ("deal", "contact"):
            row = self.data.row(focus.kind, focus.id) or {}
            if row.get("company_id"):
                return self.data.rec("company", str(row["company_id"]))
        return focus

    def _nth(self, n: int) -> Rec:
        if not self.results:
            raise ChatError("there is no list to pick from yet")
        index = len(self.results) - 1 if n == -1 else n - 1
        if not 0 <= index < len(self.results):
            raise ChatError(f"there are {len(self.results)} result(s): pick 1 to {len(self.results)}")
        return self.results[index]
