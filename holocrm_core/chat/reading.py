"""Reading intents of the conversation: find, details and the timeline, similar, search, a score and its
reasons, the next best action, an extractive summary, a follow-up email from a template."""

from __future__ import annotations

import re
import time
from typing import Any

import polars as pl

from holocrm_core.chat import catalogue
from holocrm_core.chat.data import KINDS, Rec, name_key
from holocrm_core.chat.errors import ChatError, Chosen
from holocrm_core.chat.text import clip as _clip
from holocrm_core.chat.text import day as _day
from holocrm_core.chat.text import jsonable as _jsonable
from holocrm_core.chat.text import plain as _plain

TIMELINE = 8
SUMMARY_ACTIVITIES = 3
EMAIL_TEMPLATE = (
    "Subject: Following up on {topic}\n\n"
    "Hi {first_name},\n\n"
    "Thank you for {last_touch}. {deal_line}"
    "Would you have 20 minutes next week to go over the next steps?\n\n"
    "Best regards,\n{owner}"
)


class ReadIntents:
    """The reading intents of ``ChatSession`` (a mixin: it uses the session's focus, data and trace)."""

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
        from holocrm_core.chat.errors import NotFound
        from holocrm_core.chat.understand import residual, spot

        ref = args.get("ref") or ""
        if ref and catalogue.looks_like_question(ref) and not self._exact(ref):
            self._do_question({"text": out["text"]}, out, fallback_of=ref)
            return
        if ref and not self._exact(ref) and _PLURAL.search(out["text"]):
            # "open GTX Pro deals", "show Globex contacts": a list (a question) before a record's name
            try:
                self._do_question({"text": out["text"]}, out, fallback_of=ref)
                return
            except NotFound:
                out["trace"].clear()
        if (
            ref
            and self.focus is not None
            and ref.lower() not in catalogue.REF_PRONOUNS
            and not residual(ref)
            and not spot(self.data, ref)
        ):
            args = {**args, "ref": None}  # "show me the activity history": the record in focus's
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


_PLURAL = re.compile(
    r"\b(?:deals|opps|opportunities|contacts|leads|companies|accounts|customers|prospects|people)\b",
    re.IGNORECASE,
)
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
