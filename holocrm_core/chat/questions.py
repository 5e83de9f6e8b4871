"""Questions in the conversation: a turn read by the NL question layer, follow-ups that refine the previous
question (a filter, a sort, another time window), and picking one of numbered choices or readings."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

from holocrm_core.chat.data import KINDS, ChatData, Rec, name_key
from holocrm_core.chat.errors import ChatError, NotFound
from holocrm_core.chat.text import jsonable as _jsonable


class QuestionIntents:
    """The question intents of ``ChatSession`` (a mixin)."""

    def _do_question(self, args: dict, out: dict, fallback_of: str | None = None) -> None:
        text = _deal_amount(self._about_focus(args["text"]))
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
        # any other list of the focus's ("any open deals with them?", "calls there last month"): the pronoun
        # phrase replaced by the record's name
        if re.search(rf"\b{nouns}\b", text, re.IGNORECASE):
            pronoun = re.compile(
                r"\s*\b(?:(?:with|for|at|of|from|on|by) (?:them|him|her|it|this one|that one)|there|at it|theirs|"
                r"of (?:theirs|his|hers))\b",
                re.IGNORECASE,
            )
            if pronoun.search(text):
                stripped = pronoun.sub("", text).strip(" ?.!")
                return f"{stripped} of {name}"
            owned = re.compile(r"\b(?:its|their|his|her)\s+", re.IGNORECASE)
            if owned.search(text):
                return f"{owned.sub('', text).strip(' ?.!')} of {name}"
        return text

    def _do_refine(self, args: dict, out: dict) -> None:
        if self.question is None:
            raise ChatError("there is no previous question to refine: ask one first, e.g. `open deals`")
        q = dict(self.question, filters=list(self.question["filters"]))
        if args.get("filter"):
            said = re.sub(r"^(?:ones |those |that are |which are |who are )", "", args["filter"])
            if _AMOUNT.match(said) and re.search(
                r"\b(?:deals?|opps?|opportunities|pipeline|wins|won|lost)\b", q["base"], re.I
            ):
                said = f"value {said}"  # "over 50k" of a list of deals: their value
            q["filters"].append(said)
        if args.get("sort"):
            q["sort"] = args["sort"]
            # "how many ...?" then "largest first": the rep wants the records now, not the count sorted
            q["base"] = re.sub(
                r"^(?:how many|count(?: of)?|number of)\s+", "", q["base"], flags=re.IGNORECASE
            )
            q["base"] = re.sub(r"\s+(?:do|did|does) (?:we|i|they) have\b", "", q["base"], flags=re.IGNORECASE)
        if args.get("time"):
            q["base"] = _without_times(q["base"])  # "what about this quarter?" replaces the window
            q["filters"] = [_without_times(f) for f in q["filters"]]
            q["time"] = args["time"]
        self._ask(q, out)

    def _focus_list(self, q: dict[str, Any], out: dict) -> bool:
        """The focus's own deals or contacts ("open deals of Acme Industries Inc."), listed from its rows when
        the NL layer could not read the question (a name whose words it takes for a field)."""
        if self.focus is None or self.focus.kind not in ("company", "contact") or q.get("time"):
            return False
        name = (self.data.row(self.focus.kind, self.focus.id) or {}).get(KINDS[self.focus.kind][2])
        said = re.fullmatch(
            r"(?:any |all |the |list |show(?: me)? )?(?P<state>open |won |lost |closed )?(?P<noun>deals|opportunities|"
            r"opps|contacts|people) (?:of|at|with|for) (?P<name>.+?)[?.!]?",
            q["base"],
            re.IGNORECASE,
        )
        if said is None or not name or name_key(said.group("name")).lower() != name_key(str(name)).lower():
            return False
        started = time.perf_counter()
        noun = said.group("noun").lower()
        if noun in ("contacts", "people"):
            if self.focus.kind != "company":
                return False
            kind, ids = "contact", self.data.contacts_of(self.focus.id)["contact_id"].cast(str).to_list()
        else:
            state = (said.group("state") or "").strip().lower()
            ids = [
                d
                for d in self.data.deals_of(self.focus.kind, self.focus.id)["deal_id"].cast(str).to_list()
                if not state
                or (state == "closed" and self.data.deal_status(d) != "open")
                or self.data.deal_status(d) == state
            ]
            kind = "deal"
        words = f"{said.group('state') or ''}{noun} of {self.focus.label}"
        self._step("question", f"{noun} of {self.focus.kind} {self.focus.id}", len(ids), started, plan=words)
        recs = [self.data.rec(kind, i) for i in ids]
        self._show(out, recs[:20])
        self.question = q
        out["intent"] = "question"
        out["arguments"] = {**out["arguments"], "question": words}
        out["answer"] = {"plan_words": words, "value": None, "record_count": len(ids), "understood": True}
        out.pop("clarify", None)
        out["choices"] = []
        listed = "\n".join(f"  {i}. {r.label}" for i, r in enumerate(recs[:10], 1))
        out["reply"] = f"{len(ids)} record(s) — {words}" + (f"\n{listed}" if listed else "")
        return True

    def _people_at(self, q: dict[str, Any], out: dict) -> bool:
        """ "who do we know at Acme?", "anyone we deal with over at Globex": a "who" question the NL layer does
        not read, about a company named in it: its contacts (the NL layer's "contacts at <company>")."""
        from holocrm_core.chat.understand import spot

        base = q["base"]
        if not re.match(r"^\s*(?:who|whom|anyone|anybody|which people|people)\b", base, re.I):
            return False
        companies = [e for found in spot(self.data, base) for e in found.entries if e[0] == "company"]
        if len({e[1] for e in companies}) != 1:
            return False
        started = time.perf_counter()
        company = self.data.rec("company", companies[0][1])
        people = self.data.contacts_of(company.id)["contact_id"].cast(str).to_list()
        words = f"contacts of {company.label}"
        self._step("question", f"contacts_of({company.id})", len(people), started, plan=words)
        recs = [self.data.rec("contact", c) for c in people]
        self._show(out, recs[:20])
        self.question = {"base": f"contacts at {companies[0][2]}", "filters": [], "time": None, "sort": None}
        out["intent"] = "question"
        out["arguments"] = {**out["arguments"], "question": words}
        out["answer"] = {"plan_words": words, "value": None, "record_count": len(people), "understood": True}
        listed = "\n".join(f"  {i}. {r.label}" for i, r in enumerate(recs[:10], 1))
        out["reply"] = f"{len(people)} record(s) — {words}" + (f"\n{listed}" if listed else "")
        return True

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
            owner = _owner_reading(q, answer) if pick is None else None
            if owner is not None:  # "just Sam's" of a list of deals: the deals Sam owns (a CRM's possessive)
                pick = owner
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
        misread = (
            (not answer.get("understood") or answer.get("readings")) and pick is None and not q["filters"]
        )
        if misread and self._focus_list(
            q, out
        ):  # "open deals of <focus>" the NL layer misread (a name's words)
            return
        if not answer.get("understood") and not answer.get("readings") and pick is None:
            retried = self._people_at(q, out)
            if retried:
                return
        if not answer.get("understood") and not answer.get("readings"):
            if fallback_of is not None:
                raise NotFound(
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


_AMOUNT = re.compile(
    r"^(?:over|above|under|below|more than|less than|bigger than|larger than|smaller than|at least|at most|"
    r"greater than)\s+[$€£]?\d",
    re.IGNORECASE,
)


_COMPARED = re.compile(
    r"\b(?P<cmp>bigger than|larger than|greater than|more than|over|above|under|below|less than|smaller than|"
    r"at least|at most)\s+(?P<amount>[$€£]?\d[\d,.]*\s*(?:k|m|bn|thousand|million)?)\b",
    re.IGNORECASE,
)


def _deal_amount(text: str) -> str:
    """ "wins this year bigger than 5k": an amount said of deals is their value (the NL layer may otherwise
    take a number-typed custom field of another table); said only when no field is named."""
    if not re.search(
        r"\b(?:deals?|wins?|won|lost|losses|opps?|opportunities|pipeline)\b", text, re.IGNORECASE
    ):
        return text
    if re.search(
        r"\b(?:value|worth|amount|revenue|size|employees|established|founded)\b", text, re.IGNORECASE
    ):
        return text
    return _COMPARED.sub(lambda m: f"with value {m.group('cmp')} {m.group('amount')}", text, count=1)


def _owner_reading(q: dict[str, Any], answer: dict[str, Any]) -> int | None:
    """The one reading that filters on an owner, when the last filter is a person's possessive ("Sam's") and
    the readings differ on who the person is (owner or contact)."""
    said = (q.get("filters") or [""])[-1]
    if not re.fullmatch(r"[A-Za-z][\w.'-]*(?: [A-Za-z][\w.'-]*){0,2}'s", said.strip()):
        return None
    owned = [r["pick"] for r in answer.get("readings") or [] if ".owner is" in (r.get("plan_words") or "")]
    return owned[0] if len(owned) == 1 else None


def _without_times(text: str) -> str:
    """The question without its time phrases (the NL layer's own time reader finds them)."""
    from holocrm_core.nlq.normalise import surface
    from holocrm_core.nlq.timeparse import find_times

    text = surface(text, [])  # the NL layer's shorthand ("last qtr") spelled out, so its time is found
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


def time_phrase(text: str) -> str:
    """The time phrase of a question as written ("deals won last quarter" -> "last quarter"), or ""."""
    from holocrm_core.nlq.normalise import surface
    from holocrm_core.nlq.timeparse import find_times

    text = surface(text.lower(), [])  # the NL layer's shorthand ("last qtr") spelled out
    found = find_times(text, datetime.now(UTC))
    return text[found[0].start_char : found[0].end_char] if found else ""
