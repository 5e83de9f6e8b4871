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
from datetime import UTC, datetime
from typing import Any

import polars as pl

from holocrm_core.chat import catalogue
from holocrm_core.chat.data import KINDS, ChatData, Rec, name_key
from holocrm_core.chat.experiment_intents import ExperimentIntents
from holocrm_core.chat.text import clip as _clip
from holocrm_core.chat.text import day as _day
from holocrm_core.chat.text import jsonable as _jsonable
from holocrm_core.chat.text import plain as _plain
from holocrm_core.chat.weave import WovenIntents
from holocrm_core.chat.writes import WriteIntents
from holocrm_core.services.refusal import Refusal

log = logging.getLogger("holocrm.chat")
MATCH_THRESHOLD = 80.0  # rapidfuzz WRatio (0-100) a name must reach to count as a match
AMBIGUOUS_WITHIN = 4.0  # matches this close to the best one are offered as numbered choices
MAX_CHOICES = 5
TIMELINE = 8
SUMMARY_ACTIVITIES = 3
KIND_WORDS = {
    "company": "company",
    "account": "company",
    "contact": "contact",
    "person": "contact",
    "lead": "contact",
    "deal": "deal",
    "opportunity": "deal",
}
EMAIL_TEMPLATE = (
    "Subject: Following up on {topic}\n\n"
    "Hi {first_name},\n\n"
    "Thank you for {last_touch}. {deal_line}"
    "Would you have 20 minutes next week to go over the next steps?\n\n"
    "Best regards,\n{owner}"
)

Writer = Callable[[str, dict[str, Any], Callable[[], None] | None], dict[str, Any]]


class ChatError(Exception):
    """A turn that cannot be answered as asked (the reply says why); nothing was run or written."""


class Chosen(Exception):
    """A name matched several records: the turn becomes a numbered question."""

    def __init__(self, choices: list[Rec]):
        super().__init__("several records match")
        self.choices = choices


class ChatSession(WriteIntents, WovenIntents, ExperimentIntents):
    """One conversation over a ``ChatData``; ``writer`` appends confirmed writes (None: this door can't)."""

    def __init__(self, data: ChatData, writer: Writer | None = None, session_id: str | None = None):
        self.data = data
        self.writer = writer
        self.id = session_id or uuid.uuid4().hex[:12]
        self.focus: Rec | None = None
        self.results: list[Rec] = []
        self.question: dict[str, Any] | None = None  # base, filters, time, sort
        self.pending: dict[str, Any] | None = None
        self.experiment: str | None = None  # the experiment last started or read ("how is it doing?")
        self.turns = 0

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
        read = catalogue.classify(text)
        intent, args = read if read else ("question", {"text": text})
        out["intent"], out["arguments"] = intent, dict(args)
        try:
            if intent == "confirm":
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
        except Refusal as exc:  # a service's refusal (no index yet, an id it does not hold): its words
            out["reply"] = out["error"] = exc.message
        except (ValueError, KeyError, IndexError, TypeError, re.error, pl.exceptions.PolarsError) as exc:
            # a turn the data cannot answer (odd values in the export): said, never a crash of the session
            log.warning("chat turn %r failed: %s: %s", text, type(exc).__name__, exc)
            out["reply"] = out["error"] = f"I could not answer that ({type(exc).__name__}: {exc})"
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
        out["reply"] = f"Sorry, I did not understand that ({why}). Try: " + "; ".join(catalogue.suggestions())
        out["suggestions"] = catalogue.suggestions()
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
        exact = [t for t in self.data.by_name.get(query, []) if kinds is None or t[0] in kinds]
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

    def resolve(self, ref: str | None, kinds: tuple[str, ...] | None = None) -> Rec:
        """The record ``ref`` names: a pronoun: the focus; an ordinal: the last results; else a name."""
        written = (ref or "").strip(" ?.!")
        if written.lower().endswith("'s"):
            written = written[:-2]
        ref = written.lower()
        if not ref or ref in catalogue.REF_PRONOUNS:
            rec = self._from_focus(ref, kinds)
            if rec is None:
                raise ChatError("which record? nothing is in focus yet: find one first, e.g. `find Acme`")
            return rec
        number = re.fullmatch(rf"(?:the )?({'|'.join(catalogue.ORDINALS)}|\d+)(?: one)?", ref)
        if number and self.results:
            n = catalogue.ordinal(
                {"ordinal": number.group(1)} if not number.group(1).isdigit() else {"number": number.group(1)}
            )
            return self._nth(n)
        recs = self.find(written, kinds)
        if not recs:
            raise ChatError(f"no company, contact or deal is called anything like {written!r}")
        if len(recs) > 1:
            raise Chosen(recs)
        return recs[0]

    def _from_focus(self, ref: str, kinds: tuple[str, ...] | None) -> Rec | None:
        focus = self.focus
        if focus is None:
            return None
        wanted = kinds
        for word, kind in KIND_WORDS.items():
            if ref.endswith(word):
                wanted = (kind,)
        if wanted is None or focus.kind in wanted:
            return focus
        if wanted == ("deal",):  # "that deal" said of a company or contact: its one open deal
            open_deals = [
                d
                for d in self.data.deals_of(focus.kind, focus.id)["deal_id"].to_list()
                if self.data.deal_status(d) == "open"
            ]
            if len(open_deals) == 1:
                return self.data.rec("deal", open_deals[0])
            raise ChatError(
                f"{focus.label} has {len(open_deals)} open deals: say which one (e.g. `show deal <title>`)"
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

    # ------------------------------------------------------------------------------------------ reading
    def _do_find(self, args: dict, out: dict) -> None:
        if catalogue.looks_like_question(args["name"]) and not self._exact(args["name"]):
            self._do_question({"text": out["text"]}, out, fallback_of=args["name"])
            return
        recs = self.find(args["name"])
        if not recs:
            self._do_question({"text": out["text"]}, out, fallback_of=args["name"])
            return
        if len(recs) > 1:
            raise Chosen(recs)
        self._show(out, recs, focus=recs[0])
        out["reply"] = f"Found {recs[0].label}."

    def _exact(self, name: str) -> bool:
        return name_key(name).lower() in self.data.by_name

    def _do_details(self, args: dict, out: dict) -> None:
        ref = args.get("ref") or ""
        if ref and catalogue.looks_like_question(ref) and not self._exact(ref):
            self._do_question({"text": out["text"]}, out, fallback_of=ref)
            return
        try:
            rec = self.resolve(args.get("ref"))
        except ChatError:
            if args.get("ref"):  # "show open deals in fintech": a question, not a name
                self._do_question({"text": out["text"]}, out, fallback_of=args["ref"])
                return
            raise
        self._details(rec, out)

    def _details(self, rec: Rec, out: dict) -> dict[str, Any]:
        started = time.perf_counter()
        row = self.data.row(rec.kind, rec.id) or {}
        fields = {k: _plain(v) for k, v in row.items() if v is not None and k not in ("tags",)}
        acts = self.data.activities_of(rec.kind, rec.id)
        shown = acts.head(TIMELINE)
        files = self.data.attachments_of(shown["activity_id"].to_list())
        timeline = [
            {
                "activity_id": a["activity_id"],
                "date": _day(a.get("occurred_at")),
                "type": a.get("type"),
                "subject": a.get("subject"),
                "body": _clip(a.get("body"), 160),
                **({"attachments": files[a["activity_id"]]} if a["activity_id"] in files else {}),
            }
            for a in shown.iter_rows(named=True)
        ]
        deals = self.data.deals_of(rec.kind, rec.id) if rec.kind != "deal" else None
        details = {"fields": fields, "timeline": timeline, "activities": acts.height}
        if deals is not None:
            details["deals"] = [
                {
                    "deal_id": d["deal_id"],
                    "title": d["title"],
                    "status": self.data.deal_status(d["deal_id"]),
                    "value": _plain(d.get("value")),
                }
                for d in deals.iter_rows(named=True)
            ]
        if rec.kind == "company":
            details["contacts"] = self.data.contacts_of(rec.id).height
        if rec.kind == "deal":
            details["status"] = self.data.deal_status(rec.id)
        self._step("details", f"{rec.kind} {rec.id}: fields and activity timeline", acts.height + 1, started)
        self._show(out, [rec], focus=rec)
        out["details"] = details
        lines = [f"{rec.label}"]
        lines += [f"  {k}: {v}" for k, v in fields.items() if k in _SHOWN_FIELDS]
        if deals is not None and deals.height:
            lines.append(
                f"  deals: {', '.join(d['title'] + ' (' + d['status'] + ')' for d in details['deals'])}"
            )
        lines.append(f"  timeline ({acts.height} activities, newest first):")
        for t in timeline:
            lines.append(f"    {t['date']} {t['type']}: {t['subject'] or ''}")
            lines += [
                f"      [{a['file_name']}]" + (f" {_clip(a['text'], 100)}" if a.get("text") else "")
                for a in t.get("attachments", ())
            ]
        out["reply"] = "\n".join(lines)
        return details

    def _do_similar(self, args: dict, out: dict) -> None:
        from holocrm_core.services import similar_records

        rec = self.resolve(args.get("ref"))
        if self.data.similarity is None:
            raise ChatError("no similarity index yet: run `holocrm run` first")
        started = time.perf_counter()
        answer = similar_records(self.data.similarity, rec.kind, rec.id, limit=5)
        recs = [self.data.rec(r.get("entity_type", rec.kind), str(r["id"])) for r in answer["results"]]
        self._step("similar", f"similar_records({rec.kind}, {rec.id})", len(recs), started)
        self._show(out, recs)
        self.focus = rec
        out["reply"] = f"Most like {rec.label}:\n" + "\n".join(
            f"  {i}. {r.label}" for i, r in enumerate(recs, 1)
        )

    def _do_search(self, args: dict, out: dict) -> None:
        from holocrm_core.services import search_records

        if self.data.similarity is None:
            raise ChatError("no search index yet: run `holocrm run` first")
        started = time.perf_counter()
        answer = search_records(self.data.similarity, args["text"], limit=5)
        # a record named exactly so comes first (a person searching a name means that record)
        named = [self.data.rec(k, i) for k, i, _ in self.data.by_name.get(name_key(args["text"]).lower(), [])]
        recs = named + [
            rec
            for rec in (
                self.data.rec(r["entity_type"], str(r["id"]))
                for r in answer["results"]
                if r["entity_type"] in KINDS
            )
            if rec not in named
        ]
        recs = recs[: max(5, len(named))]
        self._step(
            "search",
            f"search_records({args['text']!r}, hybrid)"
            + (f" + {len(named)} named exactly so" if named else ""),
            len(recs),
            started,
        )
        self._show(out, recs)
        out["reply"] = f"Best matches for {args['text']!r}:\n" + "\n".join(
            f"  {i}. {r.label}" for i, r in enumerate(recs, 1)
        )

    def _do_explain_score(self, args: dict, out: dict) -> None:
        rec = self.resolve(args.get("ref"))
        self.focus = rec
        self._explain(rec, out)

    def _explain(self, rec: Rec, out: dict) -> dict[str, Any] | None:
        started = time.perf_counter()
        target = rec
        if rec.kind == "company":  # a company's score: its best-scored contact's
            best = None
            for cid in self.data.contacts_of(rec.id)["contact_id"].to_list():
                s = self.data.score("contact", cid)
                if s and (best is None or (s.get("score") or 0) > (best[1].get("score") or 0)):
                    best = (cid, s)
            target = self.data.rec("contact", best[0]) if best else rec
            scored = best[1] if best else None
        else:
            scored = self.data.score(rec.kind, rec.id)
        version = str((scored or {}).get("model_version") or "") or None
        self._step(
            "explain_score",
            f"score of {target.kind} {target.id} (precomputed)",
            int(scored is not None),
            started,
            model_version=version,
        )
        if scored is None:
            out["reply"] = (
                out["reply"] + "\n" if out["reply"] else ""
            ) + f"{rec.label} has no score (scores are for open leads and open deals)."
            return None
        reasons = [str(r) for r in (scored.get("reasons") or [])]
        explained = {
            "entity_type": target.kind,
            "id": target.id,
            "score": _plain(scored.get("score")),
            "band": scored.get("band"),
            "reasons": reasons,
            "model_version": version,
        }
        out["score"] = explained
        line = f"{target.label}: score {float(scored.get('score') or 0):.0%} ({scored.get('band') or '-'})"
        line += (f", scored by {version}" if version else "") + "".join(f"\n  - {r}" for r in reasons)
        out["reply"] = (out["reply"] + "\n" if out["reply"] else "") + line
        return explained

    def _do_next_action(self, args: dict, out: dict) -> None:
        rec = self.resolve(args.get("ref"))
        self.focus = rec
        self._next_action(rec, out)

    def _contact_for(self, rec: Rec) -> str | None:
        """Whom a next action is for: the contact, a deal's contact, a company's most recently active one."""
        if rec.kind == "contact":
            return rec.id
        if rec.kind in ("deal", "activity"):
            return (self.data.row(rec.kind, rec.id) or {}).get("contact_id")
        from holocrm_core.decisions.recommend import decided_reason

        people = self.data.contacts_of(rec.id).select("contact_id", "lifecycle_status")
        status = dict(people.iter_rows())
        recent = (
            self.data.activities_of("company", rec.id)["contact_id"].drop_nulls().unique(maintain_order=True)
        )
        ranked = [c for c in recent.to_list() if c in status] + [c for c in status if c not in set(recent)]
        open_ones = [c for c in ranked if decided_reason(status[c]) is None]  # still in the pipeline first
        chosen = (open_ones or ranked or [None])[0]
        return str(chosen) if chosen is not None else None

    def _next_action(self, rec: Rec, out: dict) -> dict[str, Any] | None:
        started = time.perf_counter()
        contact = self._contact_for(rec)
        if contact is None:
            raise ChatError(f"{rec.label} has no contact to act on")
        try:
            answer = self.data.decisions.recommend(str(contact))
        except LookupError as exc:
            raise ChatError(str(exc)) from None
        policy = (answer or {}).get("policy") or {}
        self._step(
            "next_action",
            f"DecisionService.recommend({contact})",
            int(answer is not None),
            started,
            model_version=(answer or {}).get("policy_version") or policy.get("version"),
        )
        who = self.data.rec("contact", str(contact))
        if answer is None:
            line = f"{who.label} is not in the decision service's contacts."
        elif answer.get("decided"):
            line = f"{who.label}: no action — {answer.get('reason')}"
        else:
            line = (
                f"Next for {who.label}: {answer['action']} ({answer.get('priority') or '-'} priority), "
                f"{policy.get('name')} {policy.get('version')}: {answer.get('reasoning') or ''}"
            )
        out["next_action"] = _jsonable(answer)
        out["reply"] = (out["reply"] + "\n" if out["reply"] else "") + line
        return answer

    def _do_summarize(self, args: dict, out: dict) -> None:
        rec = self.resolve(args.get("ref"))
        self.focus = rec
        self._summarize(rec, out)

    def _summarize(self, rec: Rec, out: dict) -> list[str]:
        """Extractive: the record's salient facts with their dates, then its latest activities."""
        started = time.perf_counter()
        row = self.data.row(rec.kind, rec.id) or {}
        facts = []
        if row.get("created_at"):
            facts.append(f"{_day(row['created_at'])}: created")
        if rec.kind == "contact":
            facts.append(f"status {row.get('lifecycle_status')}, {row.get('title') or 'no title'}")
        if rec.kind == "deal":
            facts.append(
                f"{self.data.deal_status(rec.id)} at stage {row.get('stage')},"
                f" value {_plain(row.get('value'))}"
                f" {row.get('currency') or ''}".rstrip()
            )
            if row.get("expected_close_at"):
                facts.append(f"{_day(row['expected_close_at'])}: expected to close")
        if rec.kind in ("company", "contact"):
            deals = self.data.deals_of(rec.kind, rec.id)
            opened = [d for d in deals.iter_rows(named=True) if self.data.deal_status(d["deal_id"]) == "open"]
            if opened:
                biggest = max(opened, key=lambda d: float(d.get("value") or 0))
                facts.append(
                    f"{len(opened)} open deal(s), the largest {biggest['title']}"
                    f" ({_plain(biggest.get('value'))})"
                )
        acts = self.data.activities_of(rec.kind, rec.id)
        salient = acts.filter(pl.col("subject").is_not_null()).head(SUMMARY_ACTIVITIES)
        for a in salient.iter_rows(named=True):
            facts.append(f"{_day(a.get('occurred_at'))}: {a.get('type')} — {a.get('subject')}")
        if acts.height:
            facts.append(f"{acts.height} activities in all; the last on {_day(acts['occurred_at'][0])}")
        self._step("summarize", f"extractive summary of {rec.kind} {rec.id}", acts.height + 1, started)
        out["summary"] = facts
        out["reply"] = (
            (out["reply"] + "\n" if out["reply"] else "")
            + f"Summary of {rec.label}:\n"
            + "\n".join(f"  - {f}" for f in facts)
        )
        return facts

    def _do_draft_email(self, args: dict, out: dict) -> None:
        rec = self.resolve(args.get("ref"))
        started = time.perf_counter()
        self.focus = rec
        contact = self._contact_for(rec)
        person = self.data.row("contact", str(contact)) if contact else None
        if person is None:
            raise ChatError(f"{rec.label} has no contact to write to")
        acts = self.data.activities_of("contact", str(contact))
        last = acts.row(0, named=True) if acts.height else None
        deals = self.data.deals_of("contact", str(contact))
        open_deal = next(
            (d for d in deals.iter_rows(named=True) if self.data.deal_status(d["deal_id"]) == "open"), None
        )
        touch = (
            (
                f"our {last.get('type') or 'conversation'} on {_day(last.get('occurred_at'))}"
                + (f" about {last['subject']}" if last.get("subject") else "")
            )
            if last
            else "your time"
        )
        email = EMAIL_TEMPLATE.format(
            topic=(open_deal or {}).get("title") or (last or {}).get("subject") or "our conversation",
            first_name=person.get("first_name") or (person.get("full_name") or "there").split()[0],
            last_touch=touch,
            deal_line=f"I wanted to follow up on {open_deal['title']}. " if open_deal else "",
            owner=person.get("owner") or "your account team",
        )
        self._step("draft_email", f"template filled from contact {contact}", 1, started)
        out["email"] = {"to": person.get("email"), "contact_id": contact, "text": email}
        out["reply"] = f"Draft to {person.get('email') or person.get('full_name')} (not sent):\n\n{email}"

    # ----------------------------------------------------------------------------------------- questions
    def _do_question(self, args: dict, out: dict, fallback_of: str | None = None) -> None:
        text = self._about_focus(args["text"])
        self._ask({"base": text, "filters": [], "time": None, "sort": None}, out, fallback_of)

    def _about_focus(self, text: str) -> str:
        """A question about the record in focus, its name put in: "its open deals" -> "open deals of Acme
        Bank", "who works there?" -> "contacts of Acme Bank", "what deals does it have?" -> "deals of ..."."""
        if self.focus is None or self.focus.kind not in ("company", "contact"):
            return text
        row = self.data.row(self.focus.kind, self.focus.id) or {}
        name = row.get(KINDS[self.focus.kind][2])
        if not name:
            return text
        nouns = r"(?:deals|contacts|activities|opportunities|people|calls|emails|meetings|notes)"
        states = r"(?:(?:open|won|lost|closed) )?"
        rewrites = (
            (rf"^(?:show |list |show me |what are |which are |who are |what about )?(?:its|their|his|her) ({states}{nouns})[?.!]?$",
             rf"\1 of {name}"),
            (rf"^(?:what|which) ({states}{nouns}) (?:does|do|did) (?:it|he|she|they) have[?.!]?$", rf"\1 of {name}"),
            (r"^who (?:works|is) (?:there|at it)[?.!]?$", f"contacts of {name}"),
            (rf"^(?:how many|count) ({states}{nouns}) (?:does|do|did) (?:it|he|she|they) have[?.!]?$",
             rf"how many \1 of {name}"),
        )  # fmt: skip
        for pattern, replacement in rewrites:
            rewritten = re.sub(pattern, replacement, text, flags=re.IGNORECASE)
            if rewritten != text:
                return rewritten.replace("people of", "contacts of")
        return text

    def _do_refine(self, args: dict, out: dict) -> None:
        if self.question is None:
            raise ChatError("there is no previous question to refine: ask one first, e.g. `open deals`")
        q = dict(self.question, filters=list(self.question["filters"]))
        if args.get("filter"):
            q["filters"].append(
                re.sub(r"^(?:ones |those |that are |which are |who are )", "", args["filter"])
            )
        if args.get("sort"):
            q["sort"] = args["sort"]
        if args.get("time"):
            q["base"] = _without_times(q["base"])  # "what about this quarter?" replaces the window
            q["filters"] = [_without_times(f) for f in q["filters"]]
            q["time"] = args["time"]
        self._ask(q, out)

    @staticmethod
    def question_text(q: dict[str, Any]) -> str:
        parts = [q["base"], *q["filters"]]
        if q.get("time"):
            parts.append(q["time"])
        if q.get("sort"):
            parts.append(f"sorted by {q['sort']}")
        return " ".join(parts)

    def _ask(
        self, q: dict[str, Any], out: dict, fallback_of: str | None = None, pick: int | None = None
    ) -> None:
        from holocrm_core.services import Refusal, answer_question

        text = self.question_text(q)
        started = time.perf_counter()
        try:
            answer = answer_question(self.data.nlq, text, as_of=self.data.as_of, limit=20, pick=pick)
            picked = q.get("pick")
            if pick is None and answer.get("readings") and picked and picked <= len(answer["readings"]):
                pick = picked  # refining a picked reading: the same reading
                answer = answer_question(self.data.nlq, text, as_of=self.data.as_of, limit=20, pick=pick)
        except (Refusal, LookupError) as exc:
            raise ChatError(str(exc)) from None
        self._step(
            "question",
            f"answer_question({text!r}" + (f", pick={pick})" if pick else ")"),
            answer.get("record_count", 0),
            started,
            plan=answer.get("plan_words"),
        )
        if not answer.get("understood") and not answer.get("readings"):
            if fallback_of is not None:
                raise ChatError(
                    f"no company, contact or deal is called anything like {fallback_of!r}, and "
                    f"it is not a question I understand"
                )
            self._not_understood(out, "unknown words: " + ", ".join(answer.get("unknown_words") or ["?"]))
            return
        out["intent"] = out["intent"] if out["intent"] in ("refine", "pick") else "question"
        if fallback_of is not None:
            out["intent"] = "question"
            out["arguments"] = {"text": text}
        out["arguments"] = {**out["arguments"], "question": text}
        self.question = dict(q, pick=pick) if pick else q
        out["answer"] = {k: answer.get(k) for k in ("plan_words", "value", "record_count", "understood")}
        if answer.get("readings") and pick is None:
            self.pending = {"kind": "readings", "question": q, "readings": answer["readings"]}
            out["choices"] = [
                {
                    "pick": r["pick"],
                    "plan_words": r["plan_words"],
                    "value": _jsonable(r["value"]),
                    "record_count": r["record_count"],
                }
                for r in answer["readings"]
            ]
            out["clarify"] = True
            out["reply"] = f"{text!r} can mean several things; which one?\n" + "\n".join(
                f"  {r['pick']}. {r['plan_words']}: "
                + (str(r["value"]) if r["value"] is not None else f"{r['record_count']} record(s)")
                for r in answer["readings"]
            )
            return
        recs = _answer_records(self.data, answer)
        self._show(out, recs)
        if answer.get("value") is not None:
            head = f"Answer: {answer['value']}"
        else:
            head = f"{answer.get('record_count', 0)} record(s)"
        listed = "\n".join(f"  {i}. {r.label}" for i, r in enumerate(recs[:10], 1))
        out["reply"] = f"{head} — {answer.get('plan_words')}" + (f"\n{listed}" if listed else "")

    # --------------------------------------------------------------------------------------- choosing
    def _pick(self, pending: dict | None, n: int, out: dict) -> None:
        if pending and pending["kind"] == "readings":
            if not 1 <= n <= len(pending["readings"]):
                raise ChatError(f"pick 1 to {len(pending['readings'])}")
            out["arguments"] = {"pick": n}
            self._ask(pending["question"], out, pick=n)
            return
        if pending and pending["kind"] == "choices":
            choices = pending["choices"]
            index = len(choices) - 1 if n == -1 else n - 1
            if not 0 <= index < len(choices):
                raise ChatError(f"pick 1 to {len(choices)}")
            chosen = choices[index]
            out["arguments"] = {"pick": n, "chosen": chosen.public()}
            self.results = [chosen]
            self.focus = chosen
            intent, args = pending["intent"], dict(pending["args"])
            out["resumed"] = intent
            if intent in ("find",):
                self._show(out, [chosen], focus=chosen)
                out["reply"] = f"Found {chosen.label}."
                return
            for key in ("ref", "name"):
                args.pop(key, None)
            getattr(self, f"_do_{intent}")(args, out)
            return
        if pending and pending["kind"] == "write":
            self.pending = pending  # keep the write waiting for its yes
            raise ChatError("a write is waiting for confirmation: say yes or no")
        rec = self._nth(n)  # "the second one" of the last list shown
        self._show(out, self.results, focus=rec)
        out["records"] = [rec.public()]
        out["arguments"] = {"pick": n, "chosen": rec.public()}
        out["reply"] = f"{rec.label} is in focus."


_SHOWN_FIELDS = (
    "industry",
    "region",
    "country",
    "title",
    "email",
    "lifecycle_status",
    "owner",
    "stage",
    "value",
    "currency",
    "expected_close_at",
)


def _without_times(text: str) -> str:
    """The question without its time phrases (the NL layer's own time reader finds them)."""
    from holocrm_core.nlq.timeparse import find_times

    lowered = text.lower()
    for found in sorted(find_times(lowered, datetime.now(UTC)), key=lambda f: -f.start_char):
        text = text[: found.start_char] + text[found.end_char :]
    return " ".join(text.split())


def _answer_records(data: ChatData, answer: dict[str, Any]) -> list[Rec]:
    recs = []
    for row in answer.get("rows") or []:
        for kind in ("deal", "contact", "company"):
            rid = row.get(KINDS[kind][1])
            if rid is not None and (kind != "company" or "name" in row):
                recs.append(data.rec(kind, str(rid)))
                break
    return recs
