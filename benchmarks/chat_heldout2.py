"""Held-out dialogues, set v2, for the chat assistant (issue 29); prints JSON.

    .venv/bin/python benchmarks/chat_heldout2.py [--source generated|maven|both] [--contacts 1000] [--seed 31]
        [--no-index] [--show-failures] [--script-check N]

How it was written and by whom: by engineer "dialogues2", who did not write the chat (holocrm_core/chat/) and
did not read its code, its tests, the first held-out set (benchmarks/chat_heldout.py) or the own templates of
benchmarks/chat_eval.py. The assistant was learnt only as a user: the README's Chat section, `holocrm chat
--help`, its `help` answer and "not understood" suggestions, and a few tries of `holocrm chat --script` on a
generated sample (seed 31). Turns are phrased the way sales reps type (lowercase, typos, terse, shorthand
such as "w/", "opps", "pls"); a natural phrasing the assistant misses was never reworded until it passed: it
is a finding. Gold is computed with polars from the tables (never from the assistant's output), following
the README and the semantic layer (holocrm_core/metrics/defaults.yaml): "open" is prospecting,
qualification, proposal, negotiation; won/lost deals are dated by close; a triage is ordered as the README
documents (best score first; ties: never touched first, then the longest quiet; 10 shown, the count covers
all). Only mistakes in this file's own gold were corrected after running it (listed under "Gold
corrections" below); no turn was reworded.

The world is chat_eval.py's (its functions are imported: load_generated, load_maven, eval_scores,
build_index, seed_experiments, Experiments, run, check) on a generated export with another seed (31, 1,000
contacts; chat_eval uses 11 and the author tuned on 23) and the Maven export (../shared/data/maven_crm;
skipped with a message when absent). `dialogues(tables, source)` returns dialogues in chat_eval.py's format
(see its docstring), so `benchmarks/chat_eval.py` can run this set too; at most 3 instances of one template
over both sources (2 generated + 1 Maven, or 3 generated for a template Maven cannot have).

`--script-check N` also runs N of the generated dialogues end to end through the public interface, as the
team will: `holocrm chat --script FILE --json --as-of DATE` in a subprocess over a HOLOCRM_HOME holding the
same tables (staged_*, scored_leads), the same similarity index and the same seeded experiment store, a
fresh copy per dialogue; it reports per dialogue whether the script mode's turns meet the gold and where
they differ from the in-process turns (written records are read back from the home's logs).

Gold corrections (mistakes in this file's gold found on the first run, fixed; no turn text changed):
1. "pull up X" asks to see the record: its gold intent is ``details`` (was ``find``), as for "show X".
2. "{industry} opps above $100k" says neither "open" nor a currency-free amount: the gold is every deal of
   any stage over 100,000 in US dollars (was: open deals in any currency); the "open deals over 50k" turns
   keep open deals in every currency.
3. "record the outcome: 30%" names no action, so it records the action the decision service recommends; the
   template had picked disqualified contacts, who get no recommendation (the refusal says so): it picks leads.

Findings (natural turns the assistant misses; kept as written, the gold unchanged):
- a question that starts with won/lost is read as closing a deal ("won deals this year in software, biggest
  first", "lost opps for linh tanaka", "won deals for gladys colclough in 2017": close_deal, refused);
- "open opps in fintech" is read as opening a record (a lookup of Eaglepoint Fintech);
- sorts said without "sort by" ("biggest first", "largest first"; "... by value" at the end of a question)
  start a new question instead of refining;
- pronouns in follow-up questions are dropped ("what deals do they have open", "open deals there?",
  "contacts there", "which of them are in north america?": the whole table); "who do we know there",
  "show me more" (a lookup of people named Moreau) are missed;
- shorthand and contractions: "u", "didnt", "why's", "hows", "whats the next best action", "no wait",
  "no, don't", "actually mark it lost", "results?", "what experiments are running?", "what do you
  understand?": not understood;
- woven requests in other words ("prep me for my meeting w/ X", "prep for call w X", "which hot customers in
  technology haven't we contacted in 90 days? what should i do with each", "nobody talked to them in 2
  weeks") are not planned as prepare/triage;
- safety: "add a note to foxhill services consulting: sent deck" (or "log a note for faxquote: ...") while
  another company is in focus PROPOSES the note on the record in focus, the other name inside its text (a
  "yes" would write it to the wrong record; the issue asks for a refusal);
- a bare company name ("brightberg fiber solutions") answers its contacts as a question; "brightholm ?" is
  not understood; "the meeting went well", "write her a follow-up email", "why is this account scored like
  that", "similar deals?" become questions; "close as won" looks for a record called "as"; "show me #3",
  "show me the 1st" look for records with those names; a clarification between two owners named Ji-woo
  offers one reading ("2nd": "pick 1 to 1").

Run figures (`--source both --script-check 10`; machine shared by four, 2 cores):
- main at 5ba1497 (branch commit d4ed4fe), 2026-12-06 19:00 UTC, load average 8.8 -> 7.4: generated (seed
  31, 1,000 contacts): 143 dialogues, 276 turns, 86.2% of turns and 79.7% of dialogues exact; Maven: 47
  dialogues, 95 turns, 80.0% and 70.2%; 0 writes without confirmation, 0 to the wrong record, on both;
  turn p50/p95 0.8/38.8 ms (generated) and 1.9/37.8 ms (Maven). 64 templates, 190 dialogues, at most 3 per
  template. Script mode (10 generated dialogues, 26 turns, through `holocrm chat --script --json`): the
  same outcome as in process on 26 of 26 turns, 26 exact either way, the same writes.
- after `git merge main` (82c6c06: the chat branch chat3 merged), 2026-12-06 20:42 UTC, load average 3.7 ->
  5.9: generated 95.7% of turns and 93.7% of dialogues exact (p50/p95 0.8/27.0 ms); Maven 93.7% and 93.6%
  (1.1/22.7 ms); 0 writes without confirmation, 0 to the wrong record; script mode again 26 of 26 turns the
  same as in process, all exact. Caveat: this set (with the findings above) was in main from 19:50 UTC,
  and the chat commits from 19:50 to 20:23 address several of its findings (a write naming another record,
  shorthand, yes/no variants), so this second run is no longer a fully held-out figure. Still missed: "can u
  find ...", "won deals this year in software, biggest first" and "lost opps for linh tanaka"/"won deals for
  gladys colclough in 2017" (read as close_deal), "show me #3"/"show me the 1st", "order by deal value" after
  the misread, "2nd" after a one-reading clarification, "what deals do they have open" (the pronoun
  dropped), "who do we know there" (details), "what do you understand?", Maven "... by value" (no sort) and
  "nobody talked to them in 2 weeks"; new: "the meeting went well" now records the recommended action
  ("proposal", reward 1) instead of the meeting; "prep me for my meeting w/ brightholm brands consulting
  corporation" runs without the next_action step (a miss, or a company with no contact to act on: the gold
  asks for every step).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OPEN = ("prospecting", "qualification", "proposal", "negotiation")
AS_OF = {"generated": datetime(2026, 10, 31, tzinfo=UTC), "maven": datetime(2017, 12, 31, tzinfo=UTC)}
SHE = {"Agnieszka", "Aiko", "Aisha", "Amara", "Ananya", "Aoife", "Astrid", "Ava", "Camila", "Catherine",
       "Chloé", "Deepa", "Elizabeth", "Emily", "Emma", "Fatima", "Giulia", "Grace", "Greta", "Hannah", "Imani",
       "Ingrid", "Jennifer", "Katherine", "Keisha", "Laura", "Layla", "Leila", "Lucía", "Margaret", "María",
       "Meera", "Mei", "Mia", "Natalia", "Nia", "Olga", "Olivia", "Patricia", "Priya", "Rachel", "Rebecca",
       "Samantha", "Sarah", "Siobhan", "Sofía", "Sophia", "Susan", "Valentina", "Victoria", "Zainab", "Zoë"}  # fmt: skip
HE = {"Alexander", "Andre", "Andrew", "Anthony", "Arjun", "Benjamin", "Brian", "Carlos", "Christopher",
      "Connor", "Daniel", "David", "Diego", "Dmitri", "Edward", "Ethan", "Hans", "Hassan", "Hiroshi", "Ivan",
      "Jamal", "James", "Javier", "Joe", "Jonathan", "Jose", "Joseph", "Kenji", "Kevin", "Kwame", "Lars", "Liam",
      "Luca", "Lucas", "Malik", "Marco", "Mark", "Mateo", "Matthew", "Michael", "Nicholas", "Nick", "Noah",
      "Omar", "Paul", "Pierre", "Rahul", "Ravi", "Reza", "Richard", "Rick", "Robert", "Sanjay", "Sean", "Steve",
      "Steven", "Thomas", "Tom", "Tomasz", "Tunde", "Tyrone", "Vikram", "William", "Yusuf"}  # fmt: skip


# ------------------------------------------------------------------------------------------ the world's facts
class World:
    """What the gold is computed from: the tables, with polars (never the assistant's answers)."""

    def __init__(self, t: dict[str, pl.DataFrame], source: str):
        self.t, self.source, self.as_of = t, source, AS_OF[source]
        companies, contacts, deals = t["companies"], t["contacts"], t["deals"]
        self.companies_all, self.contacts_all = companies, contacts
        industry = dict(companies.select("company_id", "industry").iter_rows())
        region = dict(companies.select("company_id", "region").iter_rows())
        self.deals = deals.with_columns(
            pl.col("company_id").replace_strict(industry, default=None).alias("industry"),
            pl.col("company_id").replace_strict(region, default=None).alias("region"),
            pl.col("value").cast(pl.Float64).alias("v"),
        )
        scores = t["scored_leads"].select("contact_id", "score", "band")
        acts = t["activities"]
        if acts.height:
            acts = acts.drop_nulls(["contact_id", "occurred_at"]).filter(pl.col("occurred_at") <= self.as_of)
        self.last_touch = (
            acts.group_by("contact_id").agg(pl.col("occurred_at").max().alias("last"))
            if acts.height
            else pl.DataFrame(schema={"contact_id": pl.String, "last": pl.Datetime("us", "UTC")})
        )
        self.people = (
            contacts.with_columns(
                pl.col("company_id").replace_strict(industry, default=None).alias("industry"),
                pl.col("company_id").replace_strict(region, default=None).alias("region"),
            )
            .join(scores, on="contact_id", how="left")
            .join(self.last_touch, on="contact_id", how="left")
        )
        # names any record of any kind shares (case-insensitive) are no one record's: left out of lookups
        names = pl.concat(
            [
                companies.select(pl.col("name").str.to_lowercase().alias("n")),
                contacts.select(pl.col("full_name").str.to_lowercase().alias("n")),
                deals.select(pl.col("title").str.to_lowercase().alias("n")),
            ]
        ).drop_nulls()
        once = names.group_by("n").len().filter(pl.col("len") == 1)["n"]
        self.u_companies = companies.filter(pl.col("name").str.to_lowercase().is_in(once.to_list())).sort(
            "company_id"
        )
        self.u_contacts = self.people.filter(
            pl.col("full_name").str.to_lowercase().is_in(once.to_list())
        ).sort("contact_id")
        self.u_deals = self.deals.filter(pl.col("title").str.to_lowercase().is_in(once.to_list())).sort(
            "deal_id"
        )
        self.all_ids = set(companies["company_id"]) | set(contacts["contact_id"]) | set(deals["deal_id"])
        self.all_ids |= set(t["activities"]["activity_id"]) if t["activities"].height else set()
        if "attachments" in t:
            self.all_ids |= set(t["attachments"]["attachment_id"])
        self.people_word = "leads" if source == "generated" else "customers"
        self.person_status = "lead" if source == "generated" else "customer"

    # ---- picks
    def pick(self, frame: pl.DataFrame, rng: random.Random, n: int = 1) -> list[dict]:
        rows = frame.to_dicts()
        return rng.sample(rows, min(n, len(rows)))

    def company_open_deals(self, cid: str) -> pl.DataFrame:
        return self.deals.filter((pl.col("company_id") == cid) & pl.col("stage").is_in(OPEN))

    def contact_deals(self, pid: str, stages) -> pl.DataFrame:
        return self.deals.filter((pl.col("contact_id") == pid) & pl.col("stage").is_in(list(stages)))

    def industries(self, frame: pl.DataFrame, least: int) -> list[str]:
        counts = frame.drop_nulls("industry").group_by("industry").len().filter(pl.col("len") >= least)
        return counts.sort(["len", "industry"], descending=[True, False])["industry"].to_list()

    # ---- gold of questions
    def ids(self, frame: pl.DataFrame, column: str) -> list[str]:
        return frame[column].to_list()

    def sorted_gold(self, frame: pl.DataFrame, column: str, by: str = "v", limit: int = 20) -> dict:
        """records in order when the first ``limit`` (and the next) have no tied values, else within."""
        rows = frame.sort(by, descending=True, nulls_last=True)
        head = rows.head(limit + 1)[by].to_list()
        shown = min(limit, rows.height)
        tied = len(set(head[: shown + (1 if rows.height > shown else 0)])) < len(
            head[: shown + (1 if rows.height > shown else 0)]
        )
        if tied or rows.height == 0:
            return {"within": rows[column].to_list(), "count": rows.height}
        return {"records": rows[column].head(shown).to_list(), "count": rows.height}

    def triage(self, industry: str, band: str | None, days: int | None) -> tuple[list[str], int]:
        rows = self.people.filter(
            (pl.col("lifecycle_status") == self.person_status) & (pl.col("industry") == industry)
        )
        if days is not None:
            cutoff = self.as_of - timedelta(days=days)
            rows = rows.filter(pl.col("last").is_null() | (pl.col("last") < cutoff))
        if band is not None:
            rows = rows.filter(pl.col("band") == band)
        rows = rows.with_columns(pl.col("last").is_not_null().alias("touched")).sort(
            ["score", "touched", "last", "contact_id"],
            descending=[True, False, False, False],
            nulls_last=True,
        )
        return rows["contact_id"].head(10).to_list(), rows.height


def quarter_start(moment: datetime, shift: int = 0) -> datetime:
    month = 3 * ((moment.month - 1) // 3) + 3 * shift
    return datetime(moment.year + month // 12, month % 12 + 1, 1, tzinfo=UTC)


def typo(text: str, rng: random.Random) -> str:
    """One typing slip in the longest word: two letters swapped, or one dropped or doubled."""
    words = text.split(" ")
    i = max(range(len(words)), key=lambda k: (len(words[k]), -k))
    w = words[i]
    if len(w) < 5:
        return text
    j = rng.randrange(1, len(w) - 2)
    kind = rng.choice(["swap", "drop", "double"])
    if kind == "swap" and w[j] != w[j + 1]:
        w = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    elif kind == "double":
        w = w[: j + 1] + w[j] + w[j + 1 :]
    else:
        w = w[:j] + w[j + 1 :]
    words[i] = w
    return " ".join(words)


def short_company(name: str) -> str:
    """How a rep names a company: without its legal suffix."""
    drop = {"inc.", "inc", "ltd", "llc", "co.", "corp", "group", "gmbh", "plc"}
    words = name.split(" ")
    while len(words) > 1 and words[-1].lower() in drop:
        words.pop()
    return " ".join(words)


def pron(first: str | None, obj: bool = False) -> str:
    if first in SHE:
        return "her" if obj else "she"
    if first in HE:
        return "him" if obj else "he"
    return "them" if obj else "they"


# ------------------------------------------------------------------------------------------ templates
TEMPLATES: list = []


def template(kind: str, sources=("generated", "maven"), index: bool = False):
    def wrap(fn):
        TEMPLATES.append((kind, sources, index, fn))
        return fn

    return wrap


def D(kind, turns, target=None):  # noqa: N802 - a dialogue
    return {"kind": kind, "turns": turns, "target": target}


# ---- find: fuzzy, typos, disambiguation ------------------------------------------------------------
@template("find-company-typo")
def _find_company_typo(w: World, rng, i):
    row = w.pick(w.u_companies, rng)[0]
    name = typo(row["name"].lower(), rng)
    text = ["find {}", "pull up {}", "lookup {} pls"][i].format(name)
    # gold correction 1: "pull up X" asks to see the record (details), as "show X" does
    return D(
        "find-company-typo", [(text, {"intent": ["find", "details", "find"][i], "focus": row["company_id"]})]
    )


@template("find-contact-typo", sources=("generated",))
def _find_contact_typo(w: World, rng, i):
    row = w.pick(w.u_contacts, rng)[0]
    name = typo(row["full_name"].lower(), rng)
    text = ["find {}", "can u find {}", "look up {} for me"][i].format(name)
    return D("find-contact-typo", [(text, {"intent": "find", "focus": row["contact_id"]})])


@template("find-then-show-it")
def _find_then_show(w: World, rng, i):
    row = w.pick(w.u_companies, rng)[0]
    cid = row["company_id"]
    first = ["find {}", "{}", "search for the account {}"][i].format(short_company(row["name"]).lower())
    return D(
        "find-then-show-it",
        [
            (first if i != 2 else f"find {row['name'].lower()}", {"intent": "find", "focus": cid}),
            (["open it", "show me more", "details pls"][i], {"intent": "details", "focus": cid}),
        ],
    )


@template("find-same-name-pick", sources=("generated",))
def _find_same_name(w: World, rng, i):
    """Two contacts with one name: the assistant asks which; a pick shows one of the two."""
    twins = (
        w.people.group_by("full_name").agg(pl.col("contact_id")).filter(pl.col("contact_id").list.len() == 2)
    )
    other = set(w.companies_all["name"].str.to_lowercase()) | set(w.deals["title"].str.to_lowercase())
    twins = twins.filter(~pl.col("full_name").str.to_lowercase().is_in(list(other))).sort("full_name")
    row = w.pick(twins, rng)[0]
    return D(
        "find-same-name-pick",
        [
            (["find {}", "look up {}", "find {} pls"][i].format(row["full_name"].lower()),
             {"intent": "find", "clarify": True}),
            (["the second one", "2", "the 1st one"][i], {"intent": "pick", "within": row["contact_id"]}),
        ],
    )  # fmt: skip


@template("find-prefix-clarify")
def _find_prefix(w: World, rng, i):
    """A company's first word that other records also carry: asks which, then a number picks."""
    comp = w.companies_all.with_columns(
        pl.col("name").str.split(" ").list.first().str.to_lowercase().alias("w")
    )
    if w.source == "maven":
        comp = w.companies_all.with_columns(pl.col("name").str.slice(0, 3).str.to_lowercase().alias("w"))
    counts = comp.group_by("w").len().filter(pl.col("len") >= 2)
    if counts.height == 0 and w.source == "generated":
        # generated names: a company's first word its deals carry too (its deals' titles name it)
        comp = comp.join(w.deals.group_by("company_id").len().rename({"len": "d"}), on="company_id").filter(
            pl.col("d").is_between(1, 4)
        )
        row = w.pick(comp.sort("company_id"), rng)[0]
        word = row["w"]
    else:
        word = w.pick(counts.sort("w"), rng)[0]["w"]
    within = [
        *w.companies_all.filter(pl.col("name").str.to_lowercase().str.contains(word, literal=True))[
            "company_id"
        ],
        *w.deals.filter(pl.col("title").str.to_lowercase().str.contains(word, literal=True))["deal_id"],
        *w.contacts_all.filter(pl.col("full_name").str.to_lowercase().str.contains(word, literal=True))[
            "contact_id"
        ],
    ]
    return D(
        "find-prefix-clarify",
        [
            (["find {}", "{} ?", "find {} pls"][i].format(word), {"intent": "find", "clarify": True}),
            (["1", "the first one", "number 1"][i], {"intent": "pick", "within": within}),
        ],
    )


# ---- details and timeline ---------------------------------------------------------------------------
@template("details-contact", sources=("generated",))
def _details_contact(w: World, rng, i):
    has = w.u_contacts.filter(pl.col("last").is_not_null())
    row = w.pick(has, rng)[0]
    text = ["who is {}", "tell me about {}", "show {}"][i].format(row["full_name"].lower())
    return D("details-contact", [(text, {"intent": "details", "focus": row["contact_id"],
                                          "records": [row["contact_id"]]})])  # fmt: skip


@template("details-deal")
def _details_deal(w: World, rng, i):
    row = w.pick(w.u_deals, rng)[0]
    text = ["show me the {} deal", "details on {}", "open {}"][i].format(row["title"].lower())
    return D(
        "details-deal", [(text, {"intent": "details", "focus": row["deal_id"], "records": [row["deal_id"]]})]
    )


@template("details-after-question-pick")
def _details_pick(w: World, rng, i):
    """A sorted list, then 'the third one' opened: the third row by value."""
    won = w.deals.filter(pl.col("stage") == "won").drop_nulls("closed_at")
    if w.source == "generated":
        start, end, when = (
            datetime(w.as_of.year, 1, 1, tzinfo=UTC),
            datetime(w.as_of.year + 1, 1, 1, tzinfo=UTC),
            "this year",
        )
    else:
        start, end, when = datetime(2017, 1, 1, tzinfo=UTC), datetime(2018, 1, 1, tzinfo=UTC), "in 2017"
    rows = won.filter((pl.col("closed_at") >= start) & (pl.col("closed_at") < end))
    ind = w.industries(rows, 4)[i % max(1, len(w.industries(rows, 4)))]
    rows = rows.filter(pl.col("industry") == ind).sort("v", descending=True)
    vals = rows["v"].head(4).to_list()
    if len(vals) < 4 or len(set(vals)) < 4:
        return None
    third = rows["deal_id"][2]
    q = [
        "deals won {} in {} sorted by value",
        "won deals {} in {}, biggest first",
        "{1} deals we won {0} by value",
    ][i].format(when, ind)
    return D(
        "details-after-question-pick",
        [
            (q, {"intent": "question", **w.sorted_gold(rows, "deal_id")}),
            (
                ["open the third one", "show me #3", "details on the 3rd"][i],
                {"intent": "details", "focus": third},
            ),
        ],
    )


# ---- questions and follow-ups (filter, sort, time shift) -------------------------------------------
@template("q-open-industry-stage-sort")
def _q_open(w: World, rng, i):
    open_ = w.deals.filter(pl.col("stage").is_in(OPEN))
    inds = w.industries(open_, 4)
    ind = inds[(i + 1) % len(inds)]
    rows = open_.filter(pl.col("industry") == ind)
    stages = rows.group_by("stage").len().filter(pl.col("len") >= 2).sort(["len", "stage"], descending=True)
    stage = stages["stage"][0]
    sub = rows.filter(pl.col("stage") == stage)
    word = {"financial services": "fintech", "finance": "fintech"}.get(ind, ind)
    return D(
        "q-open-industry-stage-sort",
        [
            (["open opps in {}", "open deals {}", "whats open in {}"][i].format(word if i != 1 else "in " + word),
             {"intent": "question", "count": rows.height, "within": w.ids(rows, "deal_id")}),
            (["only the ones in {}", "just {}", "only {} stage"][i].format(stage),
             {"intent": "refine", "count": sub.height, "within": w.ids(sub, "deal_id")}),
            (["sort by value", "biggest first", "sort by amount"][i], {"intent": "refine", **w.sorted_gold(sub, "deal_id")}),
        ],
    )  # fmt: skip


@template("q-won-time-shift")
def _q_won_shift(w: World, rng, i):
    won = w.deals.filter(pl.col("stage") == "won").drop_nulls("closed_at")
    q0 = quarter_start(w.as_of)

    def between(a, b):
        return won.filter((pl.col("closed_at") >= a) & (pl.col("closed_at") < b))

    if w.source == "generated":
        first = between(quarter_start(w.as_of, -1), q0)
        y0 = datetime(w.as_of.year, 1, 1, tzinfo=UTC)
        turns = [
            (
                ["deals won last quarter", "what did we win last quarter", "won deals last qtr"][i],
                {"intent": "question", "count": first.height, "within": w.ids(first, "deal_id")},
            ),
        ]
        if i == 0:
            rows = between(y0, datetime(w.as_of.year + 1, 1, 1, tzinfo=UTC))
            turns.append(("what about this year?", {"intent": "refine", "count": rows.height}))
        elif i == 1:
            rows = between(datetime(w.as_of.year - 1, 1, 1, tzinfo=UTC), y0)
            turns.append(("and last year?", {"intent": "refine", "count": rows.height}))
        else:
            rows = between(q0, quarter_start(w.as_of, 1))
            turns.append(("how about this quarter", {"intent": "refine", "count": rows.height}))
        return D("q-won-time-shift", turns)
    first = between(datetime(2017, 7, 1, tzinfo=UTC), datetime(2017, 10, 1, tzinfo=UTC))
    rows = between(datetime(2017, 4, 1, tzinfo=UTC), datetime(2017, 7, 1, tzinfo=UTC))
    return D(
        "q-won-time-shift",
        [
            ("deals won in q3 2017", {"intent": "question", "count": first.height}),
            ("what about q2 2017?", {"intent": "refine", "count": rows.height}),
        ],
    )


@template("q-hot-people-region")
def _q_hot_region(w: World, rng, i):
    ppl = w.people.filter((pl.col("lifecycle_status") == w.person_status) & (pl.col("band") == "hot"))
    inds = w.industries(ppl, 3)
    ind = inds[i % len(inds)]
    rows = ppl.filter(pl.col("industry") == ind)
    regions = rows.drop_nulls("region").group_by("region").len().sort(["len", "region"], descending=True)
    if w.source == "maven" or regions.height == 0:
        return D("q-hot-people-region", [(f"hot {w.people_word} in {ind}",
                                           {"intent": "question", "count": rows.height,
                                            "within": w.ids(rows, "contact_id")})])  # fmt: skip
    region = regions["region"][0]
    sub = rows.filter(pl.col("region") == region)
    rword = {"North America": "north america", "EMEA": "emea", "APAC": "apac", "LATAM": "latam"}[region]
    return D(
        "q-hot-people-region",
        [
            (["hot leads in {}", "show me hot leads {}", "which leads in {} are hot"][i].format(
                ind if i != 1 else "in " + ind),
             {"intent": "question", "count": rows.height, "within": w.ids(rows, "contact_id")}),
            (["only the ones in {}", "which of them are in {}?", "just {}"][i].format(rword),
             {"intent": "refine", "count": sub.height, "within": w.ids(sub, "contact_id")}),
        ],
    )  # fmt: skip


@template("q-owner-lost-sort", sources=("generated",))
def _q_owner_lost(w: World, rng, i):
    lost = w.deals.filter(pl.col("stage") == "lost").drop_nulls("owner")
    owners = lost.group_by("owner").len().filter(pl.col("len") >= 3).sort(["len", "owner"], descending=True)
    owner = owners["owner"][i + 1]
    rows = lost.filter(pl.col("owner") == owner)
    return D(
        "q-owner-lost-sort",
        [
            (["{}'s lost deals", "deals {} lost", "lost opps for {}"][i].format(owner.lower()),
             {"intent": "question", "count": rows.height, "within": w.ids(rows, "deal_id")}),
            (["sort by value", "largest first", "order by deal value"][i], {"intent": "refine", **w.sorted_gold(rows, "deal_id")}),
        ],
    )  # fmt: skip


@template("q-owner-ambiguous-first-name", sources=("generated",))
def _q_owner_ambiguous(w: World, rng, i):
    owners = sorted(set(w.deals["owner"].drop_nulls()))
    by_first: dict[str, list[str]] = {}
    for o in owners:
        by_first.setdefault(o.split(" ")[0], []).append(o)
    shared = sorted(f for f, os_ in by_first.items() if len(os_) == 2)
    if not shared:
        return None
    first = shared[i % len(shared)]
    open_ = w.deals.filter(pl.col("stage").is_in(OPEN))
    readings = [w.ids(open_.filter(pl.col("owner") == o), "deal_id") for o in by_first[first]]
    return D(
        "q-owner-ambiguous-first-name",
        [
            (["{}'s open deals", "open deals owned by {}", "what's {} working on, open deals"][i].format(first.lower()),
             {"intent": "question", "clarify": True}),
            (["the second one", "2nd", "the first one"][i], {"intent": "pick", "one_of": readings}),
        ],
    )  # fmt: skip


@template("q-company-pronoun-followups")
def _q_company_pronoun(w: World, rng, i):
    has = w.u_companies.join(
        w.deals.filter(pl.col("stage").is_in(OPEN)).group_by("company_id").len(), on="company_id"
    ).filter(pl.col("len") >= 2)
    row = w.pick(has, rng)[0]
    cid = row["company_id"]
    rows = w.company_open_deals(cid)
    return D(
        "q-company-pronoun-followups",
        [
            (["find {}", "show {}", "pull up {}"][i].format(row["name"].lower()), {"focus": cid,
                                                                                  "intent": ["find", "details", "details"][i]}),
            (["its open deals", "what deals do they have open", "open deals there?"][i],
             {"intent": "question", "count": rows.height, "within": w.ids(rows, "deal_id")}),
            (["sort by value", "biggest first", "sort by size"][i], {"intent": "refine", **w.sorted_gold(rows, "deal_id")}),
        ],
    )  # fmt: skip


@template("q-who-works-there")
def _q_who_works(w: World, rng, i):
    per = (
        w.contacts_all.group_by("company_id")
        .len()
        .filter(pl.col("len").is_between(1 if w.source == "maven" else 2, 30))
    )
    has = w.u_companies.join(per, on="company_id")
    row = w.pick(has, rng)[0]
    cid = row["company_id"]
    rows = w.contacts_all.filter(pl.col("company_id") == cid)
    return D(
        "q-who-works-there",
        [
            (f"show {row['name'].lower()}", {"intent": "details", "focus": cid}),
            (
                ["who works there?", "who do we know there", "contacts there"][i],
                {"intent": "question", "count": rows.height, "within": w.ids(rows, "contact_id")},
            ),
        ],
    )


@template("q-open-over-amount")
def _q_over(w: World, rng, i):
    open_ = w.deals.filter(pl.col("stage").is_in(OPEN))
    amount = [50_000, 100_000, 150_000][i] if w.source == "generated" else [3_000, 5_000, 1_000][i]
    word = {50_000: "50k", 100_000: "$100k", 150_000: "150,000", 3_000: "3k", 5_000: "$5000", 1_000: "1k"}[
        amount
    ]
    inds = w.industries(open_.filter(pl.col("v") > amount), 2)
    if not inds:
        return None
    ind = inds[0]
    rows = open_.filter((pl.col("v") > amount) & (pl.col("industry") == ind))
    if i == 1:  # gold correction 2: "opps" are deals of any stage, and "$" names US dollars
        rows = w.deals.filter((pl.col("v") > amount) & (pl.col("industry") == ind))
        rows = rows.filter(pl.col("currency") == "USD") if word.startswith("$") else rows
    return D(
        "q-open-over-amount",
        [
            (["open deals over {} in {}", "{1} opps above {0}", "open pipeline deals > {} in {}"][i].format(word, ind),
             {"intent": "question", "count": rows.height, "within": w.ids(rows, "deal_id")}),
        ],
    )  # fmt: skip


@template("q-closing-this-month-sort", sources=("generated",))
def _q_closing(w: World, rng, i):
    open_ = w.deals.filter(pl.col("stage").is_in(OPEN)).drop_nulls("expected_close_at")
    month0 = datetime(w.as_of.year, w.as_of.month, 1, tzinfo=UTC)
    nxt = datetime(w.as_of.year + (w.as_of.month == 12), w.as_of.month % 12 + 1, 1, tzinfo=UTC)
    rows = open_.filter((pl.col("expected_close_at") >= month0) & (pl.col("expected_close_at") < nxt))
    q1 = quarter_start(w.as_of)
    rows_q = open_.filter(
        (pl.col("expected_close_at") >= q1) & (pl.col("expected_close_at") < quarter_start(w.as_of, 1))
    )
    if i == 0:
        return D("q-closing-this-month-sort", [
            ("deals closing this month", {"intent": "question", "count": rows.height, "within": w.ids(rows, "deal_id")}),
            ("sort by value", {"intent": "refine", **w.sorted_gold(rows, "deal_id")}),
        ])  # fmt: skip
    if i == 1:
        return D("q-closing-this-month-sort", [
            ("what's expected to close this quarter", {"intent": "question", "count": rows_q.height}),
            ("only the ones in negotiation", {"intent": "refine",
                                              "count": rows_q.filter(pl.col("stage") == "negotiation").height}),
        ])  # fmt: skip
    return None


@template("q-maven-owner-won-year", sources=("maven",))
def _q_maven_owner(w: World, rng, i):
    won = w.deals.filter(pl.col("stage") == "won").drop_nulls("closed_at")
    y = won.filter(
        (pl.col("closed_at") >= datetime(2017, 1, 1, tzinfo=UTC))
        & (pl.col("closed_at") < datetime(2018, 1, 1, tzinfo=UTC))
    )
    owners = y.group_by("owner").len().sort(["len", "owner"], descending=True)
    out = []
    for k in range(3):
        owner = owners["owner"][k * 7]
        rows = y.filter(pl.col("owner") == owner)
        prod = rows.group_by("product").len().sort(["len", "product"], descending=True)["product"][0]
        sub = rows.filter(pl.col("product") == prod)
        out.append(D("q-maven-owner-won-year", [
            ([f"deals {owner.lower()} won in 2017", f"{owner.split(' ')[0].lower()} {owner.split(' ')[1].lower()}'s won deals 2017",
              f"won deals for {owner.lower()} in 2017"][k], {"intent": "question", "count": rows.height,
                                                            "within": w.ids(rows, "deal_id")}),
            ([f"only {prod.lower()}", f"just the {prod.lower()} ones", f"only the ones for {prod.lower()}"][k],
             {"intent": "refine", "count": sub.height, "within": w.ids(sub, "deal_id")}),
        ]))  # fmt: skip
    return out[i] if i < len(out) else None


@template("q-maven-sector-open", sources=("maven",))
def _q_maven_sector(w: World, rng, i):
    open_ = w.deals.filter(pl.col("stage").is_in(OPEN))
    inds = w.industries(open_, 10)
    out = []
    for k, ind in enumerate(inds[:3]):
        rows = open_.filter(pl.col("industry") == ind)
        prod = rows.group_by("product").len().sort(["len", "product"], descending=True)["product"][0]
        sub = rows.filter(pl.col("product") == prod)
        out.append(D("q-maven-sector-open", [
            ([f"open opps in {ind}", f"open deals in the {ind} sector", f"{ind} pipeline deals that are open"][k],
             {"intent": "question", "count": rows.height, "within": w.ids(rows, "deal_id")}),
            ([f"only {prod.lower()}", f"just {prod.lower()}", f"only the {prod.lower()} ones"][k],
             {"intent": "refine", "count": sub.height, "within": w.ids(sub, "deal_id")}),
        ]))  # fmt: skip
    return out[i] if i < len(out) else None


# ---- similar and semantic search --------------------------------------------------------------------
@template("similar-company", index=True)
def _similar_company(w: World, rng, i):
    row = w.pick(w.u_companies, rng)[0]
    cid = row["company_id"]
    others = [c for c in w.companies_all["company_id"] if c != cid]
    return D(
        "similar-company",
        [
            (f"find {row['name'].lower()}", {"intent": "find", "focus": cid}),
            (
                ["similar to it", "companies like this one", "more like it"][i],
                {"intent": "similar", "within": others},
            ),
        ],
    )


@template("similar-contact-named", sources=("generated",), index=True)
def _similar_contact(w: World, rng, i):
    row = w.pick(w.u_contacts, rng)[0]
    pid = row["contact_id"]
    others = [c for c in w.contacts_all["contact_id"] if c != pid]
    text = ["more like {}", "people similar to {}", "contacts like {}"][i].format(row["full_name"].lower())
    return D("similar-contact-named", [(text, {"intent": "similar", "within": others})])


@template("search-own-name", sources=("generated",), index=True)
def _search_name(w: World, rng, i):
    row = w.pick(w.u_contacts, rng)[0]
    text = ["search {}", "search for {}", "semantic search {}"][i].format(row["full_name"].lower())
    return D("search-own-name", [(text, {"intent": "search", "first": row["contact_id"]})])


@template("search-topic", index=True)
def _search_topic(w: World, rng, i):
    topic = ["security review concerns", "budget freeze next year", "renewal pricing pushback"][i]
    if w.source == "maven":
        topic = ["technology companies in kenya", "big medical accounts", "retail chains"][i]
    return D("search-topic", [(f"search {topic}", {"intent": "search", "within": sorted(w.all_ids)})])


# ---- explain a score, next best action --------------------------------------------------------------
@template("explain-score-named", sources=("generated",))
def _explain_named(w: World, rng, i):
    row = w.pick(w.u_contacts.filter(pl.col("band").is_not_null()), rng)[0]
    text = ["why is {} {}?", "why's {} scored {}", "explain {}'s score ({})"][i].format(
        row["full_name"].lower(), row["band"]
    )
    return D("explain-score-named", [(text, {"intent": "explain_score", "focus": row["contact_id"]})])


@template("explain-score-pronoun", sources=("generated",))
def _explain_pronoun(w: World, rng, i):
    rows = w.u_contacts.filter(pl.col("first_name").is_in(list(SHE | HE)))
    row = w.pick(rows, rng)[0]
    p = pron(row["first_name"])
    return D(
        "explain-score-pronoun",
        [
            (f"find {row['full_name'].lower()}", {"intent": "find", "focus": row["contact_id"]}),
            (
                [f"why is {p} {row['band']}", f"why's {p} {row['band']}?", "explain the score"][i],
                {"intent": "explain_score", "focus": row["contact_id"]},
            ),
        ],
    )


@template("explain-score-company")
def _explain_company(w: World, rng, i):
    row = w.pick(w.u_companies, rng)[0]
    cid = row["company_id"]
    return D(
        "explain-score-company",
        [
            (f"show {row['name'].lower()}", {"intent": "details", "focus": cid}),
            (
                ["why is this account scored like that", "explain the score", "whats behind its score"][i],
                {"intent": "explain_score"},
            ),
        ],
    )


@template("next-action-named", sources=("generated",))
def _nba_named(w: World, rng, i):
    row = w.pick(w.u_contacts.filter(pl.col("lifecycle_status") == "lead"), rng)[0]
    text = ["what should i do with {}?", "next step for {}", "whats the next best action for {}"][i].format(
        row["full_name"].lower()
    )
    return D("next-action-named", [(text, {"intent": "next_action", "focus": row["contact_id"]})])


@template("next-action-pronoun")
def _nba_pronoun(w: World, rng, i):
    if w.source == "maven":
        row = w.pick(w.u_companies, rng)[0]
        return D("next-action-pronoun", [
            (f"find {row['name'].lower()}", {"intent": "find", "focus": row["company_id"]}),
            ("what should i do next?", {"intent": "next_action"}),
        ])  # fmt: skip
    row = w.pick(w.u_contacts.filter(pl.col("first_name").is_in(list(SHE | HE))), rng)[0]
    p = pron(row["first_name"], obj=True)
    return D(
        "next-action-pronoun",
        [
            (f"tell me about {row['full_name'].lower()}", {"intent": "details", "focus": row["contact_id"]}),
            (
                [f"what should i do with {p}", "what should i do next?", f"next best action for {p}?"][i],
                {"intent": "next_action", "focus": row["contact_id"]},
            ),
        ],
    )


@template("next-action-deal")
def _nba_deal(w: World, rng, i):
    row = w.pick(w.u_deals.filter(pl.col("stage").is_in(OPEN) & pl.col("contact_id").is_not_null()), rng)[0]
    return D(
        "next-action-deal",
        [
            (f"open {row['title'].lower()}", {"intent": "details", "focus": row["deal_id"]}),
            (
                ["what should i do next?", "next step on this deal?", "what's the next best action here"][i],
                {"intent": "next_action"},
            ),
        ],
    )


# ---- summarize, draft email -------------------------------------------------------------------------
@template("summarize-company-named")
def _sum_company(w: World, rng, i):
    row = w.pick(w.u_companies, rng)[0]
    text = ["summarize {}", "catch me up on {}", "give me a summary of {}"][i].format(row["name"].lower())
    return D("summarize-company-named", [(text, {"intent": "summarize", "focus": row["company_id"]})])


@template("summarize-that-deal", sources=("generated",))
def _sum_that_deal(w: World, rng, i):
    one = (
        w.deals.filter(pl.col("stage").is_in(OPEN))
        .group_by("contact_id")
        .agg(pl.col("deal_id"))
        .filter(pl.col("deal_id").list.len() == 1)
    )
    rows = w.u_contacts.join(one, on="contact_id")
    row = w.pick(rows, rng)[0]
    return D(
        "summarize-that-deal",
        [
            (f"find {row['full_name'].lower()}", {"intent": "find", "focus": row["contact_id"]}),
            (
                ["catch me up on that deal", "summarize that deal", "sum up that deal for me"][i],
                {"intent": "summarize", "focus": row["deal_id"][0]},
            ),
        ],
    )


@template("summarize-pronoun-typo")
def _sum_pronoun(w: World, rng, i):
    row = w.pick(w.u_deals, rng)[0]
    return D(
        "summarize-pronoun-typo",
        [
            (f"find {row['title'].lower()}", {"intent": "find", "focus": row["deal_id"]}),
            (
                ["sumarize it", "summarise it", "summary pls"][i],
                {"intent": "summarize", "focus": row["deal_id"]},
            ),
        ],
    )


@template("draft-email-named", sources=("generated",))
def _draft_named(w: World, rng, i):
    row = w.pick(w.u_contacts.filter(pl.col("email").is_not_null()), rng)[0]
    text = ["draft a follow up email to {}", "write an email to {}", "draft email for {}"][i].format(
        row["full_name"].lower()
    )
    return D("draft-email-named", [(text, {"intent": "draft_email", "focus": row["contact_id"]})])


@template("draft-email-after-details", sources=("generated",))
def _draft_after(w: World, rng, i):
    row = w.pick(w.u_contacts.filter(pl.col("first_name").is_in(list(SHE | HE))), rng)[0]
    p = pron(row["first_name"], obj=True)
    return D(
        "draft-email-after-details",
        [
            (f"who is {row['full_name'].lower()}", {"intent": "details", "focus": row["contact_id"]}),
            (
                [f"write {p} a follow-up email", "draft a follow-up", f"draft a follow up email to {p}"][i],
                {"intent": "draft_email", "focus": row["contact_id"]},
            ),
        ],
    )


# ---- writes: notes and calls -------------------------------------------------------------------------
@template("log-call-confirm")
def _log_call(w: World, rng, i):
    frame = w.u_contacts if w.source == "generated" else w.u_companies
    row = w.pick(frame, rng)[0]
    rid = row.get("contact_id") or row["company_id"]
    name = row.get("full_name") or row["name"]
    note = ["left a voicemail, will try thurs", "spoke w cfo, wants pricing by friday", "no answer"][i]
    return D(
        "log-call-confirm",
        [
            (f"find {name.lower()}", {"intent": "find", "focus": rid}),
            (f"log a call: {note}", {"intent": "log_note", "write": "proposed"}),
            (["yes", "y", "yep"][i], {"intent": "confirm", "write": "made", "written": {"kind": "call", "entity_id": rid}}),
        ],
        target=rid,
    )  # fmt: skip


@template("log-note-confirm")
def _log_note(w: World, rng, i):
    row = w.pick(w.u_deals, rng)[0]
    rid = row["deal_id"]
    note = ["asked for the security review", "legal has the redlines", "champion is leaving in jan"][i]
    return D(
        "log-note-confirm",
        [
            (f"open {row['title'].lower()}", {"intent": "details", "focus": rid}),
            ([f"add a note: {note}", f"note: {note}", f"log a note - {note}"][i],
             {"intent": "log_note", "write": "proposed"}),
            (["go ahead", "confirm", "do it"][i], {"intent": "confirm", "write": "made",
                                                   "written": {"kind": "note", "entity_id": rid}}),
        ],
        target=rid,
    )  # fmt: skip


@template("log-note-cancel")
def _log_cancel(w: World, rng, i):
    row = w.pick(w.u_companies, rng)[0]
    rid = row["company_id"]
    return D(
        "log-note-cancel",
        [
            (f"find {short_company(row['name']).lower()}", {"intent": "find", "focus": rid}),
            ("add a note: wants a call back after q1", {"intent": "log_note", "write": "proposed"}),
            (["no", "nah cancel that", "no, don't"][i], {"intent": "cancel", "write": "cancelled"}),
        ],
        target=None,
    )


@template("write-other-record-refused")
def _write_other(w: World, rng, i):
    a, b = w.pick(w.u_companies, rng, 2)
    return D(
        "write-other-record-refused",
        [
            (f"find {short_company(a['name']).lower()}", {"intent": "find", "focus": a["company_id"]}),
            ([f"log a call on {short_company(b['name']).lower()}: no answer",
              f"add a note to {short_company(b['name']).lower()}: sent deck",
              f"log a note for {short_company(b['name']).lower()}: asked about pricing"][i],
             {"intent": "log_note", "write": "refused"}),
        ],
        target=None,
    )  # fmt: skip


# ---- writes: action outcomes --------------------------------------------------------------------------
@template("outcome-worked", sources=("generated",))
def _outcome_worked(w: World, rng, i):
    row = w.pick(w.u_contacts.filter(pl.col("lifecycle_status") == "lead"), rng)[0]
    rid = row["contact_id"]
    action, text = [
        ("call", "the call worked"),
        ("email", "the email worked"),
        ("meeting", "the meeting went well"),
    ][i]
    return D(
        "outcome-worked",
        [
            (f"find {row['full_name'].lower()}", {"intent": "find", "focus": rid}),
            (text, {"intent": "record_outcome", "write": "proposed"}),
            ("yes", {"intent": "confirm", "write": "made", "written": {"action": action, "reward": 1.0,
                                                                        "contact_id": rid}}),
        ],
        target=rid,
    )  # fmt: skip


@template("outcome-failed", sources=("generated",))
def _outcome_failed(w: World, rng, i):
    row = w.pick(w.u_contacts, rng)[0]
    rid = row["contact_id"]
    action, text = [
        ("email", "the email got no reply"),
        ("call", "call didnt work"),
        ("email", "email failed"),
    ][i]
    return D(
        "outcome-failed",
        [
            (f"who is {row['full_name'].lower()}", {"intent": "details", "focus": rid}),
            (text, {"intent": "record_outcome", "write": "proposed"}),
            (["yes", "do it", "y"][i], {"intent": "confirm", "write": "made",
                                         "written": {"action": action, "reward": 0.0, "contact_id": rid}}),
        ],
        target=rid,
    )  # fmt: skip


@template("outcome-share-cancel", sources=("generated",))
def _outcome_share(w: World, rng, i):
    # gold correction 3: a share with no action named records the recommended action: a lead has one (a
    # disqualified contact gets none, and the refusal says so)
    row = w.pick(w.u_contacts.filter(pl.col("lifecycle_status") == "lead"), rng)[0]
    rid = row["contact_id"]
    share = ["30%", "50%", "0.25"][i]
    turns = [
        (f"find {row['full_name'].lower()}", {"intent": "find", "focus": rid}),
        (f"record the outcome: {share}", {"intent": "record_outcome", "write": "proposed"}),
    ]
    if i == 1:
        turns.append(("no wait", {"intent": "cancel", "write": "cancelled"}))
        return D("outcome-share-cancel", turns, target=None)
    reward = {"30%": 0.3, "0.25": 0.25}[share]
    turns.append(
        ("yes", {"intent": "confirm", "write": "made", "written": {"reward": reward, "contact_id": rid}})
    )
    return D("outcome-share-cancel", turns, target=rid)


# ---- writes: close, reopen, contradictions ------------------------------------------------------------
@template("close-won-confirm")
def _close_won(w: World, rng, i):
    row = w.pick(w.u_deals.filter(pl.col("stage").is_in(OPEN)), rng)[0]
    rid = row["deal_id"]
    return D(
        "close-won-confirm",
        [
            (f"find {row['title'].lower()}", {"intent": "find", "focus": rid}),
            (["we won it", "close it as won", "mark it won!"][i], {"intent": "close_deal", "write": "proposed"}),
            (["yes", "yep", "go ahead"][i], {"intent": "confirm", "write": "made", "written": {"outcome": "won", "deal_id": rid}}),
        ],
        target=rid,
    )  # fmt: skip


@template("close-lost-that-deal", sources=("generated",))
def _close_lost_that(w: World, rng, i):
    one = (
        w.deals.filter(pl.col("stage").is_in(OPEN))
        .group_by("contact_id")
        .agg(pl.col("deal_id"))
        .filter(pl.col("deal_id").list.len() == 1)
    )
    rows = w.u_contacts.join(one, on="contact_id")
    row = w.pick(rows, rng)[0]
    did = row["deal_id"][0]
    return D(
        "close-lost-that-deal",
        [
            (f"find {row['full_name'].lower()}", {"intent": "find", "focus": row["contact_id"]}),
            (["mark that deal lost", "close that deal as lost", "we lost that deal"][i],
             {"intent": "close_deal", "write": "proposed"}),
            ("yes", {"intent": "confirm", "write": "made", "written": {"outcome": "lost", "deal_id": did}}),
        ],
        target=did,
    )  # fmt: skip


@template("close-contradiction-refused")
def _close_contra(w: World, rng, i):
    stage, outcome = [("won", "lost"), ("lost", "won"), ("won", "lost")][i]
    rows = w.u_deals.filter(pl.col("stage") == stage)
    if rows.height == 0:
        return None
    row = w.pick(rows, rng)[0]
    text = {"lost": ["close it as lost", "mark this one lost", "we lost it"], "won": ["close it as won"] * 3}[
        outcome
    ][i]
    return D(
        "close-contradiction-refused",
        [
            (f"find {row['title'].lower()}", {"intent": "find", "focus": row["deal_id"]}),
            (text, {"intent": "close_deal", "write": "refused"}),
        ],
        target=None,
    )  # fmt: skip


@template("close-twice-refused")
def _close_twice(w: World, rng, i):
    row = w.pick(w.u_deals.filter(pl.col("stage").is_in(OPEN)), rng)[0]
    rid = row["deal_id"]
    return D(
        "close-twice-refused",
        [
            (f"open {row['title'].lower()}", {"intent": "details", "focus": rid}),
            ("close it as won", {"intent": "close_deal", "write": "proposed"}),
            ("yes", {"intent": "confirm", "write": "made"}),
            (["actually mark it lost", "close it as lost", "no wait we lost it, close as lost"][i],
             {"intent": "close_deal", "write": "refused"}),
        ],
        target=rid,
    )  # fmt: skip


@template("reopen-lost-confirm")
def _reopen(w: World, rng, i):
    row = w.pick(w.u_deals.filter(pl.col("stage") == "lost"), rng)[0]
    rid = row["deal_id"]
    return D(
        "reopen-lost-confirm",
        [
            (f"find {row['title'].lower()}", {"intent": "find", "focus": rid}),
            (["reopen it, they came back", "reopen this deal", "reopen it"][i], {"intent": "reopen_deal", "write": "proposed"}),
            (["yes", "confirm", "yep"][i], {"intent": "confirm", "write": "made", "written": {"deal_id": rid}}),
        ],
        target=rid,
    )  # fmt: skip


@template("reopen-open-refused")
def _reopen_open(w: World, rng, i):
    row = w.pick(w.u_deals.filter(pl.col("stage").is_in(OPEN)), rng)[0]
    return D(
        "reopen-open-refused",
        [
            (f"find {row['title'].lower()}", {"intent": "find", "focus": row["deal_id"]}),
            (["reopen it", "reopen that deal", "can you reopen it"][i], {"intent": "reopen_deal", "write": "refused"}),
        ],
        target=None,
    )  # fmt: skip


@template("close-other-deal-refused")
def _close_other(w: World, rng, i):
    a, b = w.pick(w.u_deals.filter(pl.col("stage").is_in(OPEN)), rng, 2)
    return D(
        "close-other-deal-refused",
        [
            (f"find {a['title'].lower()}", {"intent": "find", "focus": a["deal_id"]}),
            ([f"close {b['title'].lower()} as won", f"mark {b['title'].lower()} as lost",
              f"close {b['title'].lower()} won"][i], {"intent": "close_deal", "write": "refused"}),
        ],
        target=None,
    )  # fmt: skip


@template("close-then-cancel")
def _close_cancel(w: World, rng, i):
    row = w.pick(w.u_deals.filter(pl.col("stage").is_in(OPEN)), rng)[0]
    rid = row["deal_id"]
    return D(
        "close-then-cancel",
        [
            (f"find {row['title'].lower()}", {"intent": "find", "focus": rid}),
            (["close it as lost", "mark it won", "close as won"][i], {"intent": "close_deal", "write": "proposed"}),
            (["no", "cancel", "nope"][i], {"intent": "cancel", "write": "cancelled"}),
            (["what deals are open there?", "summarize it", "show it"][i],
             {"intent": ["question", "summarize", "details"][i]}),
        ],
        target=None,
    )  # fmt: skip


# ---- experiments -------------------------------------------------------------------------------------
@template("experiment-start-read")
def _exp_start(w: World, rng, i):
    a, b = [("bandit", "cadence"), ("champion", "challenger"), ("heuristic", "ppo")][i]
    text = [f"start an a/b test {a} vs {b}", f"start an experiment {a} vs {b} per deal",
            f"start an experiment called q4-nba: {a} vs {b}"][i]  # fmt: skip
    name = [f"{a}-vs-{b}", f"{a}-vs-{b}", "q4-nba"][i]
    return D(
        "experiment-start-read",
        [
            (text, {"intent": "start_experiment", "write": "proposed"}),
            ("yes", {"intent": "confirm", "write": "made"}),
            (
                ["how is it doing?", "hows it going", "results?"][i],
                {"intent": "read_experiment", "experiment": name},
            ),
        ],
    )


@template("experiment-exists-refused")
def _exp_exists(w: World, rng, i):
    text = ["start an experiment called eval-nba: policy vs cadence", "start experiment eval-nba: ppo vs cadence",
            "start an experiment called eval-nba: bandit vs heuristic"][i]  # fmt: skip
    return D("experiment-exists-refused", [(text, {"intent": "start_experiment", "write": "refused"})])


@template("experiment-read-named")
def _exp_read(w: World, rng, i):
    text = [
        "how is experiment eval-nba doing?",
        "how's the eval-nba experiment going",
        "results of experiment eval-nba",
    ][i]
    return D("experiment-read-named", [(text, {"intent": "read_experiment", "experiment": "eval-nba"})])


@template("experiment-list")
def _exp_list(w: World, rng, i):
    text = ["experiments", "what experiments are running?", "list experiments"][i]
    return D("experiment-list", [(text, {"intent": "read_experiment"})])


# ---- woven requests -------------------------------------------------------------------------------------
PREPARE_STEPS = ["find", "details", "explain_score", "next_action", "summarize"]


@template("prepare-company")
def _prepare_company(w: World, rng, i):
    row = w.pick(w.u_companies, rng)[0]
    text = [
        "prepare me for my call with {}",
        "prep me for my meeting w/ {}",
        "get me ready for my call with {}",
    ][i]
    return D("prepare-company", [(text.format(short_company(row["name"]).lower() if i == 1 else row["name"].lower()),
                                  {"intent": "prepare", "focus": row["company_id"], "steps": PREPARE_STEPS})])  # fmt: skip


@template("prepare-contact", sources=("generated",))
def _prepare_contact(w: World, rng, i):
    row = w.pick(w.u_contacts, rng)[0]
    text = ["prepare me for my call with {}", "prep for call w {}", "help me prepare for my call with {}"][i]
    return D("prepare-contact", [(text.format(row["full_name"].lower()),
                                  {"intent": "prepare", "focus": row["contact_id"], "steps": PREPARE_STEPS})])  # fmt: skip


TRIAGE_STEPS = ["retrieve", "filter", "score", "decide"]


@template("triage-band-window")
def _triage_bw(w: World, rng, i):
    band, days, words = [("hot", 14, "two weeks"), ("warm", 30, "30 days"), ("hot", 21, "3 weeks")][i]
    if w.source == "maven":
        days, words = 90, "90 days"
    inds = w.industries(w.people.filter(pl.col("lifecycle_status") == w.person_status), 3)
    ind = inds[i % len(inds)]
    ids, n = w.triage(ind, band, days)
    text = [
        f"which of my {band} {w.people_word} in {ind} haven't heard from us in {words}, and what should i do with each?",
        f"triage {band} {w.people_word} in {ind} not contacted in {words}",
        f"which {band} {w.people_word} in {ind} haven't we contacted in {words}? what should i do with each",
    ][i]
    return D(
        "triage-band-window",
        [(text, {"intent": "triage", "records": ids, "count": n, "steps": TRIAGE_STEPS})],
    )


@template("triage-no-band-then-open")
def _triage_nb(w: World, rng, i):
    days, words = [(30, "30 days"), (45, "45 days"), (14, "2 weeks")][i]
    inds = w.industries(w.people.filter(pl.col("lifecycle_status") == w.person_status), 3)
    ind = inds[-(i + 1)]
    ids, n = w.triage(ind, None, days)
    if not ids:
        return None
    text = [
        f"what should i do with each of my {w.people_word} in {ind} that we haven't contacted in {words}?",
        f"triage {w.people_word} in {ind} not contacted in {words}",
        f"triage my {w.people_word} in {ind} - nobody talked to them in {words}",
    ][i]
    return D(
        "triage-no-band-then-open",
        [
            (text, {"intent": "triage", "records": ids, "count": n}),
            (
                ["tell me about the first one", "open the first one", "show me the 1st"][i],
                {"intent": "details", "focus": ids[0]},
            ),
        ],
    )


# ---- more writes and follow-ups ---------------------------------------------------------------------
@template("write-no-focus-refused")
def _write_no_focus(w: World, rng, i):
    text = ["log a call - left vm", "add a note: sent the deck", "mark it won"][i]
    intent = ["log_note", "log_note", "close_deal"][i]
    return D("write-no-focus-refused", [(text, {"intent": intent, "write": "refused"})])


@template("stray-yes")
def _stray_yes(w: World, rng, i):
    row = w.pick(w.u_companies, rng)[0]
    return D(
        "stray-yes",
        [
            (
                f"summarize {short_company(row['name']).lower()}",
                {"intent": "summarize", "focus": row["company_id"]},
            ),
            (["yes", "y", "go ahead"][i], {"intent": "confirm", "write": None}),
        ],
    )


@template("triage-then-log-call")
def _triage_log(w: World, rng, i):
    band, days, words = [("hot", 30, "30 days"), ("warm", 21, "three weeks"), ("hot", 60, "60 days")][i]
    inds = w.industries(w.people.filter(pl.col("lifecycle_status") == w.person_status), 3)
    ind = inds[(i + 2) % len(inds)]
    ids, n = w.triage(ind, band, days)
    if not ids:
        return None
    return D(
        "triage-then-log-call",
        [
            (f"triage {band} {w.people_word} in {ind} not contacted in {words}",
             {"intent": "triage", "records": ids, "count": n}),
            (["open the first one", "the first one", "show the 1st one"][i], {"focus": ids[0],
                                                                            "intent": ["details", "pick", "details"][i]}),
            ("log a call: intro call, wants a demo", {"intent": "log_note", "write": "proposed"}),
            ("yes", {"intent": "confirm", "write": "made", "written": {"kind": "call", "entity_id": ids[0]}}),
        ],
        target=ids[0],
    )  # fmt: skip


@template("draft-email-deal")
def _draft_deal(w: World, rng, i):
    row = w.pick(w.u_deals.filter(pl.col("stage").is_in(OPEN) & pl.col("contact_id").is_not_null()), rng)[0]
    return D(
        "draft-email-deal",
        [
            (f"find {row['title'].lower()}", {"intent": "find", "focus": row["deal_id"]}),
            (["draft a follow-up email", "write a follow up email for this deal", "draft an email"][i],
             {"intent": "draft_email"}),
        ],
    )  # fmt: skip


@template("similar-deal", sources=("generated",), index=True)
def _similar_deal(w: World, rng, i):
    row = w.pick(w.u_deals, rng)[0]
    others = [d for d in w.deals["deal_id"] if d != row["deal_id"]]
    return D(
        "similar-deal",
        [
            (f"find {row['title'].lower()}", {"intent": "find", "focus": row["deal_id"]}),
            (["similar to it", "similar deals?", "more like this"][i], {"intent": "similar", "within": others}),
        ],
    )  # fmt: skip


# ---- help, not understood -----------------------------------------------------------------------------
@template("help")
def _help(w: World, rng, i):
    return D("help", [(["help pls", "what do you understand?", "what can u do"][i], {"intent": "help"})])


@template("not-understood")
def _nu(w: World, rng, i):
    text = ["xyzzy plugh", "zzzz qwerty asdf", "frobnicate the wibble"][i]
    return D("not-understood", [(text, {"intent": "not_understood"})])


# ------------------------------------------------------------------------------------------ the set
def dialogues(tables: dict[str, pl.DataFrame], source: str, index: bool = True) -> list[dict]:
    """Held-out set v2 for ``source`` (``generated`` or ``maven``): chat_eval.py's dialogue format."""
    w = World(tables, source)
    out: list[dict] = []
    for kind, sources, needs_index, fn in TEMPLATES:
        if source not in sources or (needs_index and not index):
            continue
        # a template only one source can have: 3 instances there; else 2 generated + 1 Maven
        instances = range(3) if len(sources) == 1 else range(2) if source == "generated" else range(2, 3)
        for i in instances:
            rng = random.Random(f"{kind}|{source}|{i}")
            try:
                made = fn(w, rng, i)
            except (IndexError, ValueError):
                made = None  # this export has no record the template needs: left out (counted in main)
            if made is not None:
                out.append(made)
    return out


# ------------------------------------------------------------------------------------------ the runs
def build_world(source: str, contacts: int, seed: int, index: bool, folder: Path):
    """chat_eval.py's world for ``source``: tables, scores, seeded experiments, index, ChatData (warm)."""
    from benchmarks.chat_eval import (
        Experiments,
        build_index,
        eval_scores,
        load_generated,
        load_maven,
        seed_experiments,
    )
    from holocrm_core.chat import ChatData
    from holocrm_core.nlq.meaning import lazy_embed

    tables = load_generated(contacts, seed) if source == "generated" else load_maven()
    if tables is None:
        return None
    tables["scored_leads"] = eval_scores(tables["contacts"])
    seed_experiments(folder / "seeded", tables["contacts"])
    experiments = Experiments(folder / "seeded")
    started = time.perf_counter()
    store = build_index(tables, folder) if index else None
    index_s = time.perf_counter() - started
    started = time.perf_counter()
    data = ChatData.from_tables(
        tables,
        embed=lazy_embed(),
        as_of=AS_OF[source],
        similarity=store,
        experiments_factory=lambda e=experiments: e,
    )
    data.warm()
    return tables, data, experiments, round(index_s, 1), round(time.perf_counter() - started, 2)


def in_process_turns(data, experiments, dialogue: dict) -> tuple[list[dict], list[tuple[int, dict]]]:
    """One dialogue through ChatSession as chat_eval.run does it: each turn's dict, and the records written."""
    from holocrm_core.chat import ChatSession
    from holocrm_core.chat.experiment_intents import create_experiment
    from holocrm_core.deal_states import DealStates

    experiments.renew()
    data.deal_states = DealStates()
    session = ChatSession(data)
    written: list[tuple[int, dict]] = []
    current = {"turn": 0}

    def writer(kind, record, check_state):
        if check_state is not None:
            check_state()
        written.append((current["turn"], record))
        if kind == "start_experiment":
            return create_experiment(experiments.current, record)
        return {"record": record, "created": True}

    session.writer = writer
    turns = []
    for number, (text, _) in enumerate(dialogue["turns"], 1):
        current["turn"] = number
        turns.append(session.turn(text))
    return turns, written


def prepare_home(tables: dict[str, pl.DataFrame], home: Path, index_folder: Path | None) -> None:
    """A HOLOCRM_HOME the CLI reads: the staged tables and scores, the seeded experiments, the same index."""
    from benchmarks.chat_eval import seed_experiments
    from holocrm_core.warehouse import Warehouse

    warehouse = Warehouse(home / "warehouse")
    for name, frame in tables.items():
        warehouse.write(name if name == "scored_leads" else f"staged_{name}", frame)
    seed_experiments(home, tables["contacts"])
    if index_folder is not None and (index_folder / "lancedb").exists():
        shutil.copytree(index_folder / "lancedb", home / "lancedb")


def read_logs(home: Path) -> list[dict]:
    out = []
    for name in ("notes.ndjson", "actions.ndjson", "outcomes.ndjson"):
        path = home / "logs" / name
        if path.exists():
            out += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    from holocrm_core.experiments.service import ExperimentService

    # an experiment started goes to the experiment store, not to a log: each one but the seeded eval-nba
    return out + [{"experiment": e.name} for e in ExperimentService(home).list() if e.name != "eval-nba"]


def compact(turn: dict) -> dict:
    """What the gold looks at in a turn (for the in-process vs script comparison)."""
    return {
        "intent": turn.get("intent"),
        "records": [r["id"] for r in turn.get("records") or []],
        "focus": (turn.get("focus") or {}).get("id"),
        "count": (turn.get("answer") or {}).get("record_count"),
        "clarify": bool(turn.get("clarify")),
        "write": (turn.get("write") or {}).get("status"),
        "steps": [s["step"] for s in turn.get("trace") or []],
        "experiment": (turn.get("experiment") or {}).get("experiment"),
    }


def script_check(
    tables, data, experiments, chosen: list[dict], index_folder: Path | None, source: str
) -> dict:
    """``chosen`` dialogues through `holocrm chat --script FILE --json`, one subprocess and home each."""
    from benchmarks.chat_eval import check

    base = Path(tempfile.mkdtemp(prefix="heldout2-home-"))
    prepare_home(tables, base / "home", index_folder)
    rows, agree_turns, script_exact, inproc_exact, turns_n = [], 0, 0, 0, 0
    for dialogue in chosen:
        home = base / "run"
        shutil.rmtree(home, ignore_errors=True)
        shutil.copytree(base / "home", home)
        script = base / "turns.txt"
        script.write_text("".join(text + "\n" for text, _ in dialogue["turns"]))
        before = len(read_logs(home))
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "holocrm_cli", "chat", "--script", str(script), "--json",
             "--as-of", AS_OF[source].date().isoformat()],
            capture_output=True, text=True, cwd=ROOT, timeout=300,
            env={**os.environ, "HOLOCRM_HOME": str(home), "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        wall = time.perf_counter() - started
        lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
        written_cli = read_logs(home)[before:]
        ours, written = in_process_turns(data, experiments, dialogue)
        diffs, script_wrong, ours_wrong = [], [], []
        yes_turns = [n for n, (_, g) in enumerate(dialogue["turns"], 1) if "written" in g]
        for n, (text, gold) in enumerate(dialogue["turns"], 1):
            turns_n += 1
            cli = lines[n - 1] if n - 1 < len(lines) else None
            made_ours = [r for k, r in written if k == n]
            # the CLI's log lines are the confirmed writes in order: the k-th belongs to the k-th "made" turn
            made_cli = (
                [written_cli[yes_turns.index(n)]]
                if n in yes_turns and yes_turns.index(n) < len(written_cli)
                else []
            )
            w_ours = check(ours[n - 1], gold, made_ours)
            w_cli = check(cli, gold, made_cli) if cli else ["no JSON line for this turn"]
            inproc_exact += not w_ours
            script_exact += not w_cli
            same = cli is not None and compact(cli) == compact(ours[n - 1])
            agree_turns += same
            if not same:
                diffs.append(
                    {
                        "turn": text,
                        "in_process": compact(ours[n - 1]),
                        "script": compact(cli) if cli else None,
                    }
                )
            if w_cli:
                script_wrong.append({"turn": text, "wrong": w_cli})
            if w_ours:
                ours_wrong.append({"turn": text, "wrong": w_ours})
        rows.append(
            {
                "kind": dialogue["kind"],
                "exit": proc.returncode,
                "wall_s": round(wall, 1),
                "writes_in_process": len(written),
                "writes_script": len(written_cli),
                "script_misses": script_wrong,
                "in_process_misses": ours_wrong,
                "differences": diffs,
                **({"stderr": proc.stderr[-400:]} if proc.returncode else {}),
            }
        )
    shutil.rmtree(base, ignore_errors=True)
    return {
        "dialogues": len(chosen),
        "turns": turns_n,
        "turns_exact_script": script_exact,
        "turns_exact_in_process": inproc_exact,
        "turns_same_outcome": agree_turns,
        "dialogues_exact_script": sum(not r["script_misses"] for r in rows),
        "dialogues_exact_in_process": sum(not r["in_process_misses"] for r in rows),
        "per_dialogue": rows,
    }


SCRIPT_KINDS = (  # in this order: the first N kinds, one dialogue each
    "find-same-name-pick", "q-company-pronoun-followups", "log-call-confirm", "close-won-confirm",
    "close-contradiction-refused", "write-other-record-refused", "experiment-start-read", "triage-then-log-call",
    "prepare-company", "reopen-lost-confirm", "q-open-industry-stage-sort", "find-company-typo",
)  # fmt: skip


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
    except OSError:
        return "unknown"


def main() -> None:
    from benchmarks.chat_eval import run

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", choices=["generated", "maven", "both"], default="both")
    parser.add_argument("--contacts", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument(
        "--no-index", action="store_true", help="no similarity index: similar/search left out"
    )
    parser.add_argument("--show-failures", action="store_true")
    parser.add_argument("--script-check", type=int, default=0, metavar="N",
                        help="also run N generated dialogues through `holocrm chat --script --json`")  # fmt: skip
    args = parser.parse_args()
    if args.seed in (11, 23):
        parser.error("seeds 11 and 23 are the chat author's: the held-out set runs on another (default 31)")
    sources = ["generated", "maven"] if args.source == "both" else [args.source]
    report: dict = {
        "set": "chat_heldout2 (v2, held out: written by dialogues2, not the chat's author)",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "sources": {},
    }
    kinds_all: dict[str, int] = {}
    for source in sources:
        folder = Path(tempfile.mkdtemp(prefix=f"heldout2-{source}-"))
        built = build_world(source, args.contacts, args.seed, not args.no_index, folder)
        if built is None:
            report["sources"][source] = {"skipped": "no Maven export at ../shared/data/maven_crm"}
            continue
        tables, data, experiments, index_s, startup_s = built
        scripted = dialogues(tables, source, index=not args.no_index)
        for d in scripted:
            kinds_all[d["kind"]] = kinds_all.get(d["kind"], 0) + 1
        result = run(data, experiments, scripted)
        entry = {
            "data": f"generated export, {args.contacts} contacts, seed {args.seed}"
            if source == "generated"
            else "Maven CRM export (maven profile)",
            "as_of": AS_OF[source].date().isoformat(),
            "index_s": index_s if not args.no_index else "no index",
            "startup_s": startup_s,
            "dialogues": result["dialogues"],
            "turns": result["turns"],
            "turns_exact_pct": round(100 * result["turn_exactness"], 1),
            "dialogues_exact_pct": round(100 * result["dialogue_exactness"], 1),
            "writes_without_confirmation": result["writes_without_confirmation"],
            "writes_to_wrong_record": result["writes_to_wrong_record"],
            "turn_ms_p50": result["turn_ms_p50"],
            "turn_ms_p95": result["turn_ms_p95"],
            "by_kind": result["by_kind"],
            "failures": result["failures"] if args.show_failures else len(result["failures"]),
            **({"unknown_gold_keys": result["unknown_gold_keys"]} if "unknown_gold_keys" in result else {}),
        }
        if args.script_check and source == "generated":
            first = {}
            for d in scripted:
                first.setdefault(d["kind"], d)
            chosen = [first[k] for k in SCRIPT_KINDS if k in first]
            entry["script_check"] = script_check(
                tables,
                data,
                experiments,
                chosen[: args.script_check],
                None if args.no_index else folder,
                source,
            )
        report["sources"][source] = entry
        shutil.rmtree(folder, ignore_errors=True)
    report["templates"] = len(kinds_all)
    report["dialogues"] = sum(kinds_all.values())
    report["max_instances_per_template"] = max(kinds_all.values()) if kinds_all else 0
    report["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
