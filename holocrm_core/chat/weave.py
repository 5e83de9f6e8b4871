"""Woven requests: one turn planned as several steps of the catalogue, each in the turn's trace.

``prepare`` ("prepare me for my call with Acme"): find -> details -> score -> next action -> summary.
``triage`` ("which of my hot leads in fintech haven't heard from us in two weeks, and what should I do with
each?"): retrieve (the segment, through the NL question layer) -> filter (no activity with the contact in the
window) -> score (the precomputed scores; a band named in the segment keeps only that band) -> decide (the
decision service's next action for each), answered per record.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from holocrm_core.chat import catalogue
from holocrm_core.chat.data import Rec
from holocrm_core.chat.text import day, jsonable, plain

TRIAGE_SHOWN = 10  # records answered one by one (best score first); the count covers all
BANDS = ("hot", "warm", "cold")
_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fourteen": 14, "thirty": 30,
}  # fmt: skip
_UNITS = {"day": 1, "week": 7, "fortnight": 14, "month": 30, "quarter": 91, "year": 365}


def window_days(text: str | None) -> int | None:
    """ "two weeks" -> 14, "10 days" -> 10, "a month" -> 30; None: no window said."""
    if not text:
        return None
    found = re.fullmatch(r"(?:(\d+|[a-z]+) )?(day|week|fortnight|month|quarter|year)s?", text.strip().lower())
    if found is None:
        raise ValueError(f"cannot read a time window from {text!r} (say e.g. `two weeks` or `30 days`)")
    count = found.group(1) or "1"
    n = int(count) if count.isdigit() else _NUMBERS.get(count)
    if n is None:
        raise ValueError(f"cannot read a number from {count!r}")
    return n * _UNITS[found.group(2)]


def segment_question(segment: str) -> tuple[str, str | None]:
    """The segment as a question for the NL layer, and the score band it names (applied at the score
    step): "my hot leads in fintech" -> ("leads in fintech", "hot")."""
    words = segment.split()
    while words and words[0].lower() in ("my", "our", "the", "all", "of", "are"):
        words = words[1:]
    band = next((w.lower() for w in words if w.lower() in BANDS), None)
    words = [w for w in words if w.lower() not in BANDS]
    return " ".join(words), band


class WovenIntents:
    """The woven intents of ``ChatSession`` (a mixin)."""

    def _do_prepare(self, args: dict, out: dict) -> None:
        """find -> details -> score -> next action -> summary; every step a catalogue intent, in the trace."""
        from holocrm_core.chat.errors import Chosen, NotFound

        plan = list(catalogue.PREPARE_PLAN)
        assert all(step in catalogue.BY_NAME for step in plan)  # the plan is data from the catalogue
        out["plan"] = plan
        recs = self.find(args["ref"], kinds=("company", "contact"))
        if not recs:
            raise NotFound(f"no company or contact is called anything like {args['ref']!r}")
        if len(recs) > 1:
            raise Chosen(recs)
        self._prepare(recs[0], out)

    def _prepare(self, rec: Rec, out: dict) -> None:
        from holocrm_core.chat.errors import ChatError

        out["plan"] = list(catalogue.PREPARE_PLAN)
        self._details(rec, out)
        out["reply"] = f"Preparing your call with {rec.label}.\n" + out["reply"]
        self._explain(rec, out)
        try:
            self._next_action(rec, out)
        except ChatError as exc:
            out["reply"] += f"\nNext action: {exc}"
        self._summarize(rec, out)
        self._show(out, [rec], focus=rec)

    # ------------------------------------------------------------------------------------------ triage
    def _do_triage(self, args: dict, out: dict) -> None:
        from holocrm_core.chat.errors import ChatError

        out["plan"] = list(catalogue.TRIAGE_PLAN)
        question, band = segment_question(args["segment"])
        days = window_days(args.get("window"))
        out["arguments"] = {**out["arguments"], "question": question, "band": band, "window_days": days}
        as_of = self.data.as_of or datetime.now(UTC)

        started = time.perf_counter()
        kind, records, words = self._segment(question, as_of)
        self._step("retrieve", f"ask({question!r}) -> {kind}s", len(records), started, plan=words)

        started = time.perf_counter()
        touched = self.data.last_touch() if kind == "contact" else self._deal_touches(records)
        if days is not None:
            cutoff = as_of - timedelta(days=days)
            kept = [c for c in records if (touched.get(c) is None or touched[c] < cutoff)]
            ran = f"no activity with the {kind} since {day(cutoff)} ({days} days before {day(as_of)})"
        else:
            kept, ran = list(records), "no time window said: every record kept"
        self._step("filter", ran, len(kept), started)

        started = time.perf_counter()
        scores = self.data.scores_of(kind, kept)
        unbanded = None
        if band is not None:
            table = "scored_leads" if kind == "contact" else "scored_deals"
            if self.data.tables.get(table) is None:
                if kind == "contact" and kept:
                    raise ChatError(
                        f"no lead scores yet, so {band!r} cannot be told: run `holocrm run` first"
                    )
                unbanded = f"no {kind} scores here: {band!r} not applied, every record kept"
            else:
                kept = [c for c in kept if (scores.get(c) or {}).get("band") == band]
        versions = sorted({str(s.get("model_version")) for s in scores.values() if s.get("model_version")})
        self._step(
            "score",
            (f"precomputed {kind} scores" + (f", band {band} kept" if band and not unbanded else ""))
            + (f" ({unbanded})" if unbanded else ""),
            len(kept),
            started,
            model_version=", ".join(versions) or None,
        )

        def order(c: str) -> tuple:
            score = (scores.get(c) or {}).get("score")
            last = touched.get(c)
            return (
                score is None,
                -(float(score) if score is not None else 0.0),
                last is not None,
                last or 0,
                c,
            )

        ranked = sorted(kept, key=order)
        shown = ranked[:TRIAGE_SHOWN]
        whom = {c: c for c in shown} if kind == "contact" else self._deal_contacts(shown)
        started = time.perf_counter()
        answers: dict[str, Any] = {}
        policy = None
        try:
            people = sorted({p for p in whom.values() if p})
            for answer in self.data.decisions.recommend_many(people) if people else ():
                answers[str(answer["contact_id"])] = answer
                policy = policy or answer.get("policy_version") or (answer.get("policy") or {}).get("version")
        except LookupError:
            pass
        self._step("decide", f"DecisionService.recommend_many({len(whom)})", len(answers), started,
                   model_version=policy)  # fmt: skip

        rows = []
        for c in shown:
            s, a, last = scores.get(c) or {}, answers.get(str(whom.get(c))) or {}, touched.get(c)
            rows.append(
                {
                    f"{kind}_id": c,
                    **({"contact_id": whom.get(c)} if kind != "contact" else {}),
                    "label": self.data.label(kind, c),
                    "score": plain(s.get("score")),
                    "band": s.get("band"),
                    "last_touch": day(last) if last else None,
                    "action": None if a.get("decided") else a.get("action"),
                    "priority": a.get("priority"),
                    "why": a.get("reason") if a.get("decided") else a.get("reasoning"),
                }
            )
        recs = [self.data.rec(kind, c) for c in shown]
        self._show(out, recs)
        out["triage"] = jsonable(rows)
        out["answer"] = {"record_count": len(ranked), "value": None, "understood": True, "plan_words": words}
        head = f"{len(ranked)} of {len(records)} record(s) for {question!r}"
        head += f" scored {band}" if band and not unbanded else ""
        head += f" with no activity in {days} days" if days is not None else ""
        head += f" ({unbanded})" if unbanded else ""
        lines = []
        for i, r in enumerate(rows, 1):
            score = f"{r['score']:.0%}" if isinstance(r["score"], float) else "no score"
            todo = r["action"] or f"no action ({r['why'] or 'not in the decision service'})"
            lines.append(f"  {i}. {r['label']}: {score}, last touch {r['last_touch'] or 'never'} -> {todo}")
        more = f"\n  ... and {len(ranked) - len(shown)} more" if len(ranked) > len(shown) else ""
        out["reply"] = f"{head}:\n" + "\n".join(lines) + more if lines else head + "."

    def _deal_touches(self, deals: list[str]) -> dict[str, Any]:
        """deal id -> its latest activity up to the as-of time (its own, else its contact's)."""
        acts = self.data.tables["activities"].drop_nulls(["occurred_at"])
        if self.data.as_of is not None and acts.height:
            acts = acts.filter(pl.col("occurred_at") <= self.data.as_of)
        own = dict(
            acts.filter(pl.col("deal_id").is_in(deals))
            .group_by("deal_id")
            .agg(pl.col("occurred_at").max())
            .iter_rows()
        )
        people = self._deal_contacts(deals)
        touched = self.data.last_touch()
        return {d: own.get(d) or touched.get(str(people.get(d))) for d in deals}

    def _deal_contacts(self, deals: list[str]) -> dict[str, str | None]:
        frame = (
            self.data.tables["deals"].filter(pl.col("deal_id").is_in(deals)).select("deal_id", "contact_id")
        )
        return {str(d): (str(c) if c is not None else None) for d, c in frame.iter_rows()}

    def _segment(self, question: str, as_of: datetime) -> tuple[str, list[str], str]:
        """The records a segment names: its deals when it names deals, else its contacts (a company's)."""
        ids, words, target = self._segment_answer(question, as_of)
        if target == "deals":  # the open ones: a closed deal has no next action
            return "deal", [d for d in ids if self.data.deal_status(d) == "open"], words + ", open only"
        return "contact", self._as_contacts(ids, target, question), words

    def _segment_answer(self, question: str, as_of: datetime) -> tuple[list[str], str, str]:
        from holocrm_core.chat.errors import ChatError
        from holocrm_core.nlq import ask

        if not question:
            raise ChatError("which records? say e.g. `which of my hot leads in fintech ...`")
        try:
            answer = ask(question, self.data.nlq, as_of=as_of, readings=False)
        except LookupError as exc:
            raise ChatError(str(exc)) from None
        if not answer.understood:
            raise ChatError(
                f"I could not read {question!r} as a set of records"
                + (f" (unknown words: {', '.join(answer.unknown_words)})" if answer.unknown_words else "")
            )
        return [str(i) for i in answer.ids], answer.plan_words(), answer.plan.target

    def _as_contacts(self, ids: list[str], target: str, question: str) -> list[str]:
        """The contacts of a segment (companies: their contacts), in answer order."""
        from holocrm_core.chat.errors import ChatError

        if target == "companies":
            frame = self.data.tables["contacts"]
            ids = (
                frame.filter(pl.col("company_id").is_in(ids))["contact_id"]
                .drop_nulls()
                .unique(maintain_order=True)
            )
            return ids.to_list()
        if target != "contacts":
            raise ChatError(f"{question!r} names {target}, not people to act on")
        return ids
