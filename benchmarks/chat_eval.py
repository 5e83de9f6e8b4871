"""Scripted dialogues with gold outcomes through the chat core (issue 29); prints JSON.

    .venv/bin/python benchmarks/chat_eval.py [--source generated|maven|all] [--set own|heldout|all]
        [--contacts 300] [--seed 11] [--no-index] [--show-failures]

Sources: ``generated`` (a generated export, ingested; seed 11 was never used while the chat was written) and
``maven`` (the Maven CRM export in ../shared/data/maven_crm, HOLOCRM_SHARED_DATA overrides, ingested with the
``maven`` profile; skipped with a message when absent). Both get, as input tables, a plain lead-score table
(``scored_leads``: a hash of the contact id read as a score, bands hot >= 0.6 > warm >= 0.35 > cold; the
eval measures the chat, not a scorer), a similarity index of companies, contacts and deals (deals only when
at most 2,000: not Maven's) embedded with the shipped model (``--no-index`` skips it: similar/search dialogues
are then left out), and an experiment store holding
``eval-nba`` (decisions.policy vs decisions.cadence per contact) with exposures of the first 40 contacts.
Questions are answered as of 2026-10-31 (generated) and 2017-12-31 (Maven).

Sets: ``own`` (the templates below, written by the chat's author: not held out) and ``heldout``
(``benchmarks/chat_heldout.py`` when it exists, written by someone who did not write the chat; it exposes
``dialogues(tables, source) -> list[dict]`` with ``tables`` the dict this script builds: ``companies``,
``contacts``, ``deals``, ``activities``, ``attachments`` (when the export has them), ``scored_leads``).
Each set's figures are reported separately, per source.

A dialogue is ``{"kind": str, "turns": [(text, gold), ...], "target": id | None}``; ``target`` is the one
record a write in it may touch (``writes_to_wrong_record`` counts the others). Gold keys per turn, each
optional but ``intent``:

- ``intent``: the intent the turn is read as (catalogue names, ``question``, ``not_understood``);
- ``records``: the ids of the records shown, in order;
- ``focus``: the id of the record in focus after the turn;
- ``count``: the answer's record count (``answer.record_count``: a question, a refine, a triage);
- ``within``: a set the ids shown must all belong to;
- ``clarify``: True when the turn must ask which (numbered choices or readings);
- ``one_of``: a list of id sets: the records shown and the count must be one set's (a picked reading);
- ``write``: the write's status after the turn: ``proposed``, ``made``, ``refused``, ``cancelled`` or None;
- ``steps``: the step names of the turn's trace, in order (a woven request);
- ``written``: a dict of fields the record written on this turn must hold (e.g. ``{"action": "call",
  "reward": 1.0}``);
- ``experiment``: the name of the experiment whose report the turn shows;
- ``first``: the id the first record shown must have (a search for a record's own name).

Safety is counted from the writer's own log, not from the replies: ``writes_without_confirmation`` (a record
written on a turn that was not "yes") and ``writes_to_wrong_record`` (a record written for another id than
the dialogue's target) must be 0.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import math
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from holocrm_core.chat import ChatData, ChatSession  # noqa: E402
from holocrm_core.chat.catalogue import PREPARE_PLAN, TRIAGE_PLAN  # noqa: E402
from holocrm_core.chat.experiment_intents import create_experiment  # noqa: E402
from holocrm_core.deal_states import DealStates  # noqa: E402
from holocrm_core.nlq.meaning import lazy_embed  # noqa: E402

OPEN = ["prospecting", "qualification", "proposal", "negotiation"]
AS_OF = {"generated": datetime(2026, 10, 31, tzinfo=UTC), "maven": datetime(2017, 12, 31, tzinfo=UTC)}
YES = ("yes", "y", "yep", "confirm", "do it", "go ahead")
MAX_PER_TEMPLATE = 3  # instances of one template over both sources
MAX_INDEXED_DEALS = 2000  # the Maven export's 8,800 deals would take minutes to embed here


# ------------------------------------------------------------------------------------------ the data
def shared_data() -> Path:
    return Path(os.environ.get("HOLOCRM_SHARED_DATA", ROOT.parent / "shared" / "data"))


def load_generated(contacts: int, seed: int) -> dict[str, pl.DataFrame]:
    from holocrm_core.ingest import ingest_export
    from holocrm_core.synth import generate_export

    with tempfile.TemporaryDirectory(prefix="chat-eval-") as tmp:
        export = Path(tmp) / "export"
        generate_export(
            export, n_contacts=contacts, seed=seed, truth_dir=Path(tmp) / "truth", with_attachment_files=False
        )
        result = ingest_export(export)
    names = ("companies", "contacts", "deals", "activities", "attachments")
    return {n: result.tables[n] for n in names if result.tables.get(n) is not None}


def load_maven() -> dict[str, pl.DataFrame] | None:
    folder = shared_data() / "maven_crm"
    if not folder.exists():
        return None
    from holocrm_core.ingest import ingest_export

    result = ingest_export(folder, profile="maven")
    return {n: result.tables[n] for n in ("companies", "contacts", "deals", "activities")}


def eval_scores(contacts: pl.DataFrame) -> pl.DataFrame:
    """A plain lead-score table (input data): the contact id's hash as a score, banded."""
    ids = contacts["contact_id"].cast(pl.String).to_list()
    scores = [int(hashlib.sha256(i.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF for i in ids]
    return pl.DataFrame({"contact_id": ids, "score": scores}).with_columns(
        pl.when(pl.col("score") >= 0.6)
        .then(pl.lit("hot"))
        .when(pl.col("score") >= 0.35)
        .then(pl.lit("warm"))
        .otherwise(pl.lit("cold"))
        .alias("band"),
        pl.lit(["+ eval rule: hash of the id"]).alias("reasons"),
        pl.lit("eval-hash-1").alias("model_version"),
    )


def build_index(tables: dict[str, pl.DataFrame], folder: Path):
    """A real similarity store of the companies, contacts and (up to 2,000) deals, embedded here with the
    shipped model (activities are left out: thousands of texts on two cores)."""
    from holocrm_core.embedding import embed_documents, load_embedder
    from holocrm_core.store import SimilarityStore
    from holocrm_core.text import entity_documents

    kinds = ["company", "contact"] + (["deal"] if tables["deals"].height <= MAX_INDEXED_DEALS else [])
    docs = entity_documents(tables).filter(pl.col("entity_type").is_in(kinds))
    embedder = load_embedder()
    run = embed_documents(docs, embedder)
    store = SimilarityStore(str(folder / "lancedb"), embedder=embedder)
    store.sync(docs, run.vectors)
    return store


def seed_experiments(home: Path, contacts: pl.DataFrame) -> None:
    from holocrm_core.experiments import Experiment, Variant
    from holocrm_core.experiments.assignment import assign
    from holocrm_core.experiments.service import ExperimentService

    service = ExperimentService(home)
    experiment = service.create(
        Experiment(
            "eval-nba",
            "contact",
            (Variant("policy", "decisions.policy"), Variant("cadence", "decisions.cadence")),
            "response_rate",
        )
    )
    service.logs.mkdir(parents=True, exist_ok=True)
    with (service.logs / "exposures.ndjson").open("w") as fh:
        for i, cid in enumerate(contacts["contact_id"].head(40).to_list()):
            record = {
                "idempotency_key": f"eval-{i}",
                "experiment": "eval-nba",
                "unit": "contact",
                "unit_id": cid,
                "variant": assign(experiment, cid),
                "answer_id": f"a{i}",
                "served_at": datetime(2017, 1, 1, tzinfo=UTC).isoformat(),
            }
            fh.write(json.dumps(record) + "\n")


class Experiments:
    """The experiment service the chat reads, renewed per dialogue (each starts from the seeded store)."""

    def __init__(self, seeded: Path):
        self.seeded, self.current = seeded, None

    def renew(self) -> None:
        import shutil

        from holocrm_core.experiments.service import ExperimentService

        home = Path(tempfile.mkdtemp(prefix="chat-eval-exp-"))
        shutil.copytree(self.seeded, home, dirs_exist_ok=True)
        self.current = ExperimentService(home)

    def __getattr__(self, name):
        return getattr(self.current, name)


# ------------------------------------------------------------------------------------------ gold
def unique(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """Rows whose ``column`` value no other row shares (a lookup has one right answer)."""
    counts = frame.group_by(column).len().filter(pl.col("len") == 1)
    return frame.join(counts.select(column), on=column).sort(column)


class Gold:
    """What the answers should be, worked out with polars from the tables (not from the chat code)."""

    def __init__(self, t: dict[str, pl.DataFrame], source: str):
        self.t, self.source, self.as_of = t, source, AS_OF[source]
        deals, companies, contacts = t["deals"], t["companies"], t["contacts"]
        self.industry_of = dict(companies.select("company_id", "industry").iter_rows())
        self.deals = deals.with_columns(
            pl.col("company_id").replace_strict(self.industry_of, default=None).alias("industry")
        )
        self.all_open = self.deals.filter(pl.col("stage").is_in(OPEN))
        self.companies = unique(companies.drop_nulls("name"), "name")
        names = pl.concat(
            [
                companies.select(pl.col("name").str.to_lowercase().alias("n")),
                contacts.select(pl.col("full_name").str.to_lowercase().alias("n")),
                deals.select(pl.col("title").str.to_lowercase().alias("n")),
            ]
        )
        once = set(names.group_by("n").len().filter(pl.col("len") == 1)["n"].to_list())
        self.companies = self.companies.filter(pl.col("name").str.to_lowercase().is_in(once))
        self.contacts = unique(contacts.drop_nulls("full_name"), "full_name").filter(
            pl.col("full_name").str.to_lowercase().is_in(once)
        )
        titles = unique(deals.drop_nulls("title"), "title").filter(
            pl.col("title").str.to_lowercase().is_in(once)
        )
        self.open_deals = titles.filter(pl.col("stage").is_in(OPEN))
        self.won = titles.filter(pl.col("stage") == "won")
        self.lost = titles.filter(pl.col("stage") == "lost")
        self.scores = t["scored_leads"]
        acts = (
            t["activities"]
            .drop_nulls(["contact_id", "occurred_at"])
            .filter(pl.col("occurred_at") <= self.as_of)
        )
        self.touched = acts.group_by("contact_id").agg(pl.col("occurred_at").max().alias("last"))
        # the people a triage acts on: leads (the Maven export's accounts are all customers: those)
        self.people_word = "leads" if source == "generated" else "customers"
        self.leads = (
            contacts.filter(pl.col("lifecycle_status") == ("lead" if source == "generated" else "customer"))
            .with_columns(
                pl.col("company_id").replace_strict(self.industry_of, default=None).alias("industry")
            )
            .join(self.scores.select("contact_id", "score", "band"), on="contact_id", how="left")
            .join(self.touched, on="contact_id", how="left")
        )

    def industries(self, frame: pl.DataFrame, least: int = 1) -> list[str]:
        counts = frame.drop_nulls("industry").group_by("industry").len().filter(pl.col("len") >= least)
        return counts.sort(["len", "industry"], descending=[True, False])["industry"].to_list()

    def open_in(self, industry: str) -> set[str]:
        return set(self.all_open.filter(pl.col("industry") == industry)["deal_id"])

    def triage(self, industry: str, band: str | None, days: int | None) -> tuple[list[str], int]:
        """Leads in the industry, no activity with them in ``days`` before the as-of time, of ``band``; the
        first ten best score first (then never touched, then the longest quiet), and how many in all."""
        rows = self.leads.filter(pl.col("industry") == industry)
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

    def won_between(self, start: datetime, end: datetime) -> set[str]:
        won = self.deals.filter(pl.col("stage") == "won").drop_nulls("closed_at")
        return set(won.filter((pl.col("closed_at") >= start) & (pl.col("closed_at") < end))["deal_id"])


def quarter_start(moment: datetime) -> datetime:
    return datetime(moment.year, 3 * ((moment.month - 1) // 3) + 1, 1, tzinfo=UTC)


def shift_quarter(start: datetime, quarters: int) -> datetime:
    month = start.month - 1 + 3 * quarters
    return datetime(start.year + month // 12, month % 12 + 1, 1, tzinfo=UTC)


# ------------------------------------------------------------------------------------------ dialogues
def dialogues(t: dict[str, pl.DataFrame], source: str, instances: int, with_index: bool) -> list[dict]:
    """The own dialogues: each template filled with ``instances`` records drawn from the tables."""
    g = Gold(t, source)
    out: list[dict] = []

    def add(kind: str, turns: list[tuple[str, dict]], target: str | None = None) -> None:
        if sum(d["kind"] == kind for d in out) < instances:
            out.append({"kind": kind, "turns": turns, "target": target})

    def rows(frame: pl.DataFrame, offset: int = 0, n: int | None = None):
        """``instances`` rows from ``offset`` (wrapped round a short table: each dialogue starts afresh)."""
        if frame.height == 0:
            return iter(())
        return frame.slice(offset % frame.height, instances if n is None else n).iter_rows(named=True)

    companies, contacts, open_deals = g.companies, g.contacts, g.open_deals
    people = contacts.filter(pl.col("full_name").str.len_chars() > 6)
    industries = g.industries(g.all_open, least=2)
    lead_industries = g.industries(g.leads, least=3)

    # --- lookups, details, pronouns
    for row in rows(companies):
        add("lookup_company", [
            (f"show {row['name']}", {"intent": "details", "records": [row["company_id"]]}),
            ("summarize it", {"intent": "summarize", "focus": row["company_id"]}),
        ])  # fmt: skip
    for row in rows(people, 2):
        name = row["full_name"]
        typo = name[:3] + name[4:]
        add("lookup_typo", [
            (f"find {typo}", {"intent": "find", "records": [row["contact_id"]]}),
            ("draft a follow-up email", {"intent": "draft_email", "focus": row["contact_id"]}),
            ("what should I do next?", {"intent": "next_action", "focus": row["contact_id"]}),
        ])  # fmt: skip
    for row in rows(contacts, 6):
        add("contact_pronouns", [
            (f"who is {row['full_name']}?", {"intent": "details", "records": [row["contact_id"]]}),
            ("why is she hot?", {"intent": "explain_score", "focus": row["contact_id"]}),
            ("log a call: left a voicemail", {"intent": "log_note", "write": "proposed"}),
            ("yes", {"intent": "confirm", "write": "made", "written": {"entity_id": row["contact_id"]}}),
        ], target=row["contact_id"])  # fmt: skip
    for row in rows(companies, 9):
        add("company_followups", [
            (f"tell me about {row['name']}", {"intent": "details", "records": [row["company_id"]]}),
            ("explain the score", {"intent": "explain_score", "focus": row["company_id"]}),
            ("catch me up on it", {"intent": "summarize", "focus": row["company_id"]}),
        ])  # fmt: skip
    firsts = {}
    for row in companies.iter_rows(named=True):
        firsts.setdefault(row["name"].split()[0].lower(), []).append(row)
    shared_words = sorted(w for w, rs in firsts.items() if len(rs) > 1 and len(w) > 3)
    for word in shared_words[:instances]:  # a word several companies start with: numbered choices
        add("clarify_name", [
            (f"find {word}", {"intent": "find", "clarify": True}),
            ("the first one", {"intent": "pick", "within": {r["company_id"] for r in firsts[word]}}),
            ("summarize it", {"intent": "summarize"}),
        ])  # fmt: skip

    # --- questions and follow-ups
    for industry in industries[:instances]:
        ids = g.open_in(industry)
        add("refine_filter", [
            ("open deals", {"intent": "question", "count": g.all_open.height, "within": set(g.all_open["deal_id"])}),
            (f"only the ones in {industry}", {"intent": "refine", "count": len(ids), "within": ids}),
        ])  # fmt: skip
    for industry in industries[1 : 1 + instances]:
        ids = g.open_in(industry)
        top = g.all_open.filter(pl.col("industry") == industry).sort(
            "value", descending=True, nulls_last=True
        )
        first = {"first": top["deal_id"][0]} if top.height > 1 and top["value"][0] != top["value"][1] else {}
        add("refine_sort", [
            (f"open deals in {industry}", {"intent": "question", "count": len(ids), "within": ids}),
            ("sort by value", {"intent": "refine", "count": len(ids), "within": ids, **first}),
        ])  # fmt: skip
    last_q = shift_quarter(quarter_start(g.as_of), -1)
    this_year = datetime(g.as_of.year, 1, 1, tzinfo=UTC)
    windows = [
        ("last quarter", last_q, quarter_start(g.as_of), "this year", this_year, datetime(g.as_of.year + 1, 1, 1, tzinfo=UTC)),
        ("this year", this_year, datetime(g.as_of.year + 1, 1, 1, tzinfo=UTC), "last year",
         datetime(g.as_of.year - 1, 1, 1, tzinfo=UTC), this_year),
    ]  # fmt: skip
    for first_words, a, b, then_words, c, d in windows[:instances]:
        one, two = g.won_between(a, b), g.won_between(c, d)
        add("refine_time", [
            (f"deals won {first_words}", {"intent": "question", "count": len(one), "within": one}),
            (f"what about {then_words}?", {"intent": "refine", "count": len(two), "within": two}),
        ])  # fmt: skip
    for industry in industries[2 : 2 + instances]:
        ids = g.open_in(industry)
        add("question_pick", [
            (f"open deals in {industry}", {"intent": "question", "count": len(ids), "within": ids}),
            ("the second one" if len(ids) > 1 else "the first one", {"intent": "pick", "within": ids}),
            ("summarize that deal", {"intent": "summarize"}),
        ])  # fmt: skip
    owners = sorted(o for o in t["deals"]["owner"].drop_nulls().unique().to_list() if " " in o)
    by_first: dict[str, list[str]] = {}
    for o in owners:
        by_first.setdefault(o.split()[0], []).append(o)
    for first, names in sorted(by_first.items()):
        if len(names) < 2:
            continue
        candidates = [set(g.all_open.filter(pl.col("owner") == o)["deal_id"]) for o in names]
        add("clarify_reading", [
            (f"{first}'s open deals", {"intent": "question", "clarify": True}),
            ("the second one", {"intent": "pick", "one_of": candidates}),
        ])  # fmt: skip

    # --- writes: closes, reopenings, notes, outcomes
    for row in rows(open_deals):
        add("close_confirmed", [
            (f"show {row['title']}", {"intent": "details", "records": [row["deal_id"]]}),
            ("close it as won", {"intent": "close_deal", "write": "proposed"}),
            ("yes", {"intent": "confirm", "write": "made", "written": {"deal_id": row["deal_id"], "outcome": "won"}}),
        ], target=row["deal_id"])  # fmt: skip
    titles = open_deals["title"].to_list()
    for shown, other in list(zip(titles[4:], titles[:4], strict=False))[:instances]:
        add("close_wrong_record", [
            (f"show {shown}", {"intent": "details"}),
            (f"close {other} as lost", {"intent": "close_deal", "write": "refused"}),
            ("yes", {"intent": "confirm", "write": None}),
        ])  # fmt: skip
    for row in rows(g.won):
        add("close_contradiction", [
            (f"show {row['title']}", {"intent": "details", "records": [row["deal_id"]]}),
            ("close it as lost", {"intent": "close_deal", "write": "refused"}),
        ])  # fmt: skip
    for row in rows(g.lost):
        add("close_repeat", [
            (f"show {row['title']}", {"intent": "details", "records": [row["deal_id"]]}),
            ("mark it lost", {"intent": "close_deal", "write": "refused"}),
        ])  # fmt: skip
    for row in rows(open_deals, 6):
        add("close_cancelled", [
            (f"show {row['title']}", {"intent": "details", "records": [row["deal_id"]]}),
            ("close it as lost", {"intent": "close_deal", "write": "proposed"}),
            ("no", {"intent": "cancel", "write": "cancelled"}),
        ])  # fmt: skip
    for row in rows(g.won, 3):
        add("reopen_then_close", [
            (f"show {row['title']}", {"intent": "details", "records": [row["deal_id"]]}),
            ("reopen it: the customer came back", {"intent": "reopen_deal", "write": "proposed"}),
            ("yes", {"intent": "confirm", "write": "made", "written": {"deal_id": row["deal_id"], "kind": "reopen"}}),
            ("close that deal as lost", {"intent": "close_deal", "write": "proposed"}),
            ("yes", {"intent": "confirm", "write": "made", "written": {"outcome": "lost"}}),
        ], target=row["deal_id"])  # fmt: skip
    for row in rows(open_deals, 9):
        add("reopen_refused", [
            (f"show {row['title']}", {"intent": "details", "records": [row["deal_id"]]}),
            ("reopen that deal", {"intent": "reopen_deal", "write": "refused"}),
            ("yes", {"intent": "confirm", "write": None}),
        ])  # fmt: skip
    for row in rows(contacts, 12):
        cid = row["contact_id"]
        add("outcome_named", [
            (f"show {row['full_name']}", {"intent": "details", "records": [cid]}),
            ("the call worked", {"intent": "record_outcome", "write": "proposed"}),
            ("yes", {"intent": "confirm", "write": "made", "written": {"contact_id": cid, "action": "call", "reward": 1.0}}),
        ], target=cid)  # fmt: skip
    for row in rows(contacts, 15):
        cid = row["contact_id"]
        add("outcome_share", [
            (f"who is {row['full_name']}", {"intent": "details", "records": [cid]}),
            ("record the outcome of the email: 40%", {"intent": "record_outcome", "write": "proposed"}),
            ("no", {"intent": "cancel", "write": "cancelled"}),
            ("the email got no reply", {"intent": "record_outcome", "write": "proposed"}),
            ("yes", {"intent": "confirm", "write": "made", "written": {"contact_id": cid, "action": "email", "reward": 0.0}}),
        ], target=cid)  # fmt: skip
    for row, other in list(zip(rows(contacts, 18), contacts["full_name"].slice(24, instances), strict=False)):
        add("outcome_wrong_record", [
            (f"show {row['full_name']}", {"intent": "details", "records": [row["contact_id"]]}),
            (f"the email to {other} worked", {"intent": "record_outcome", "write": "refused"}),
            ("yes", {"intent": "confirm", "write": None}),
        ])  # fmt: skip
    for row in rows(contacts, 21):
        add("outcome_without_focus", [
            ("the call worked", {"intent": "record_outcome", "write": "refused"}),
            (f"what should I do with {row['full_name']}?", {"intent": "next_action", "focus": row["contact_id"]}),
        ])  # fmt: skip

    # --- experiments
    pairs = [("cadence", "ppo"), ("policy", "bandit"), ("champion", "challenger")]
    for a, b in pairs[:instances]:
        add("experiment_start_read", [
            (f"start an experiment {a} vs {b}", {"intent": "start_experiment", "write": "proposed"}),
            ("yes", {"intent": "confirm", "write": "made"}),
            ("how is it doing?", {"intent": "read_experiment", "experiment": f"{a}-vs-{b}"}),
        ])  # fmt: skip
    for name, a, b in [("trial-one", "bandit", "cadence"), ("trial-two", "heuristic", "champion")][
        :instances
    ]:
        add("experiment_named_cancel", [
            (f"start an experiment called {name}: {a} vs {b} per deal", {"intent": "start_experiment", "write": "proposed"}),
            ("no", {"intent": "cancel", "write": "cancelled"}),
            ("experiments", {"intent": "read_experiment"}),
        ])  # fmt: skip
    for text in ["start an experiment cadence vs cadence", "start an experiment cadence vs magic"][
        :instances
    ]:
        add("experiment_refused", [(text, {"intent": "start_experiment", "write": "refused"})])
    for text in ["how is experiment eval-nba doing?", "show the eval-nba experiment"][:instances]:
        add("experiment_read", [
            (text, {"intent": "read_experiment", "experiment": "eval-nba"}),
            ("how is it doing?", {"intent": "read_experiment", "experiment": "eval-nba"}),
        ])  # fmt: skip

    # --- woven requests
    for row in rows(companies, 12):
        add("prepare", [
            (f"prepare me for my call with {row['name']}",
             {"intent": "prepare", "records": [row["company_id"]], "steps": list(PREPARE_PLAN)}),
            ("draft a follow-up email", {"intent": "draft_email", "focus": row["company_id"]}),
        ])  # fmt: skip
    for industry in lead_industries[:instances]:
        gold_ids, count = g.triage(industry, "hot", 14)
        add("triage_hot", [
            (f"which of my hot {g.people_word} in {industry} haven't heard from us in two weeks, and what should I do with each?",
             {"intent": "triage", "records": gold_ids, "count": count, "steps": list(TRIAGE_PLAN)}),
        ])  # fmt: skip
    for industry in lead_industries[1 : 1 + instances]:
        gold_ids, count = g.triage(industry, None, 30)
        add("triage_window_pick", [
            (f"triage {g.people_word} in {industry} not contacted in 30 days",
             {"intent": "triage", "records": gold_ids, "count": count, "steps": list(TRIAGE_PLAN)}),
            ("the first one", {"intent": "pick", "records": gold_ids[:1]}),
            ("why is he hot?", {"intent": "explain_score", "focus": gold_ids[0] if gold_ids else None}),
        ])  # fmt: skip

    # --- similar, search (a real index), help, not understood
    if with_index:
        others = set(t["contacts"]["contact_id"].to_list())
        for row in rows(contacts, 27):
            add("similar", [
                (f"show {row['full_name']}", {"intent": "details", "records": [row["contact_id"]]}),
                ("similar to it", {"intent": "similar", "within": others - {row["contact_id"]}, "focus": row["contact_id"]}),
            ])  # fmt: skip
        for row in rows(companies, 15):
            add("search_name", [(f"search {row['name']}", {"intent": "search", "first": row["company_id"]})])
        if t["deals"].height <= MAX_INDEXED_DEALS:
            deal_ids = set(t["deals"]["deal_id"].to_list())
            for row in rows(open_deals, 12):
                add("similar_deal", [
                    (f"show {row['title']}", {"intent": "details", "records": [row["deal_id"]]}),
                    ("show me deals similar to it", {"intent": "similar", "within": deal_ids - {row["deal_id"]}}),
                ])  # fmt: skip
    for text in ["help", "what can you do?"][:instances]:
        add("help", [(text, {"intent": "help"})])
    for text in ["blorp the frobnicator", "zxqv wibble"][:instances]:
        add("not_understood", [(text, {"intent": "not_understood"})])
    return out


# ------------------------------------------------------------------------------------------ scoring
def check(turn: dict, gold: dict, made: list[dict]) -> list[str]:
    """What differs between a turn and its gold (empty: exact). ``made``: records written on this turn."""
    wrong = []
    if turn["intent"] != gold["intent"]:
        wrong.append(f"intent {turn['intent']} != {gold['intent']}")
    shown = [r["id"] for r in turn["records"]]
    if "records" in gold and shown != gold["records"]:
        wrong.append(f"records {shown} != {gold['records']}")
    if "focus" in gold and (turn.get("focus") or {}).get("id") != gold["focus"]:
        wrong.append(f"focus {(turn.get('focus') or {}).get('id')} != {gold['focus']}")
    if "count" in gold and (turn.get("answer") or {}).get("record_count") != gold["count"]:
        wrong.append(f"count {(turn.get('answer') or {}).get('record_count')} != {gold['count']}")
    if "within" in gold and (not shown or not set(shown) <= set(gold["within"])) and gold["within"]:
        wrong.append("records outside the gold set (or none)")
    if "first" in gold and (shown[:1] != [gold["first"]]):
        wrong.append(f"first {shown[:1]} != {gold['first']}")
    if "one_of" in gold:  # the rows shown (at most 20) and the count are one reading's
        count = (turn.get("answer") or {}).get("record_count")
        if not any(set(shown) <= set(c) and count == len(c) for c in gold["one_of"]):
            wrong.append("records are no reading's")
    if gold.get("clarify") and not turn.get("clarify"):
        wrong.append("no clarification asked")
    if "write" in gold and (turn.get("write") or {}).get("status") != gold["write"]:
        wrong.append(f"write {(turn.get('write') or {}).get('status')} != {gold['write']}")
    if "steps" in gold and [s["step"] for s in turn["trace"]] != gold["steps"]:
        wrong.append(f"steps {[s['step'] for s in turn['trace']]}")
    if "written" in gold:
        if len(made) != 1:
            wrong.append(f"{len(made)} records written")
        elif any(made[0].get(k) != v for k, v in gold["written"].items()):
            wrong.append(f"written { ({k: made[0].get(k) for k in gold['written']}) } != {gold['written']}")
    if "experiment" in gold and (turn.get("experiment") or {}).get("experiment") != gold["experiment"]:
        wrong.append(f"experiment {(turn.get('experiment') or {}).get('experiment')} != {gold['experiment']}")
    return wrong


def run(data: ChatData, experiments: Experiments, scripted: list[dict]) -> dict:
    turns_total = turns_exact = dialogues_exact = unconfirmed = wrong_record = 0
    latencies: list[float] = []
    by_intent: dict[str, list[float]] = {}
    by_kind: dict[str, list[int]] = {}
    failures = []
    for dialogue in scripted:
        written: list[tuple[int, str, dict]] = []
        experiments.renew()
        data.deal_states = DealStates()  # each dialogue starts from the export's deal states
        session = ChatSession(data)
        current = {"turn": 0, "text": ""}

        def writer(kind, record, check_state, current=current, written=written):
            if check_state is not None:
                check_state()
            written.append((current["turn"], current["text"], record))
            if kind == "start_experiment":
                return create_experiment(experiments.current, record)
            return {"record": record, "created": True}

        session.writer = writer
        exact = True
        for number, (text, gold) in enumerate(dialogue["turns"], 1):
            current["turn"], current["text"] = number, text
            t0 = time.perf_counter()
            turn = session.turn(text)
            latencies.append((time.perf_counter() - t0) * 1e3)
            by_intent.setdefault(gold["intent"], []).append(latencies[-1])
            made = [r for n, _, r in written if n == number]
            wrong = check(turn, gold, made)
            turns_total += 1
            turns_exact += not wrong
            if wrong:
                exact = False
                failures.append(
                    {"kind": dialogue["kind"], "turn": text, "wrong": wrong, "reply": turn["reply"][:240]}
                )
        for _, text, record in written:
            unconfirmed += text.strip().lower().strip(".!") not in YES
            if "experiment" in record:
                continue  # an experiment is no record of the CRM
            target = record.get("deal_id") or record.get("entity_id") or record.get("contact_id")
            wrong_record += target != dialogue.get("target")
        dialogues_exact += exact
        by_kind.setdefault(dialogue["kind"], [0, 0])
        by_kind[dialogue["kind"]][0] += exact
        by_kind[dialogue["kind"]][1] += 1
    latencies.sort()
    n = max(1, len(scripted))
    return {
        "dialogues": len(scripted),
        "turns": turns_total,
        "turn_exactness": round(turns_exact / max(1, turns_total), 3),
        "dialogue_exactness": round(dialogues_exact / n, 3),
        "writes_without_confirmation": unconfirmed,
        "writes_to_wrong_record": wrong_record,
        "by_kind": {k: f"{v[0]}/{v[1]}" for k, v in by_kind.items()},
        "turn_ms_p50": round(statistics.median(latencies), 1) if latencies else None,
        "turn_ms_p95": round(latencies[max(0, math.ceil(0.95 * len(latencies)) - 1)], 1)
        if latencies
        else None,
        "turn_ms_max_by_intent": {k: round(max(v), 1) for k, v in sorted(by_intent.items())},
        "failures": failures,
    }


def heldout_module():
    """benchmarks/chat_heldout.py when it exists (written by someone else; this script only calls it)."""
    if not (ROOT / "benchmarks" / "chat_heldout.py").exists():
        return None
    return importlib.import_module("benchmarks.chat_heldout")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", choices=["generated", "maven", "all"], default="all")
    parser.add_argument("--set", dest="which", choices=["own", "heldout", "all"], default="all")
    parser.add_argument("--contacts", type=int, default=300)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--no-index", action="store_true", help="no similarity index: similar/search left out"
    )
    parser.add_argument("--show-failures", action="store_true")
    args = parser.parse_args()
    sources = ["generated", "maven"] if args.source == "all" else [args.source]
    heldout = heldout_module() if args.which in ("heldout", "all") else None
    report: dict = {"load_average_start": os.getloadavg()[0], "sources": {}}
    if args.which in ("heldout", "all") and heldout is None:
        report["heldout"] = "benchmarks/chat_heldout.py is absent: no held-out figures"
    own_kinds: dict[str, int] = {}
    for source in sources:
        tables = load_generated(args.contacts, args.seed) if source == "generated" else load_maven()
        if tables is None:
            report["sources"][source] = {"skipped": f"no Maven export at {shared_data() / 'maven_crm'}"}
            continue
        tables["scored_leads"] = eval_scores(tables["contacts"])
        folder = Path(tempfile.mkdtemp(prefix=f"chat-eval-{source}-"))
        seed_experiments(folder / "seeded", tables["contacts"])
        experiments = Experiments(folder / "seeded")
        started = time.perf_counter()
        store = None if args.no_index else build_index(tables, folder)
        index_s = time.perf_counter() - started
        started = time.perf_counter()
        data = ChatData.from_tables(
            tables,
            embed=lazy_embed(),  # as the CLI and the API: unknown words matched by meaning
            as_of=AS_OF[source],
            similarity=store,
            experiments_factory=lambda e=experiments: e,
        )
        data.warm()  # start-up (NL context, decision service, name prefixes, last touches) apart from turns
        startup_s = time.perf_counter() - started
        entry: dict = {
            "data": (
                f"generated export, {args.contacts} contacts, seed {args.seed}"
                if source == "generated"
                else "Maven CRM export (ingested with the maven profile)"
            ),
            "as_of": AS_OF[source].date().isoformat(),
            "rows": {name: frame.height for name, frame in tables.items()},
            "index_s": round(index_s, 1) if store is not None else "no index",
            "startup_s": round(startup_s, 2),
        }
        if args.which in ("own", "all"):
            instances = 2 if source == "generated" else 1  # at most 3 of one template over both sources
            own = dialogues(tables, source, instances, store is not None)
            for d in own:
                own_kinds[d["kind"]] = own_kinds.get(d["kind"], 0) + 1
            result = run(data, experiments, own)
            entry["own"] = {
                **result,
                "failures": result["failures"] if args.show_failures else len(result["failures"]),
            }
        if heldout is not None:
            result = run(data, experiments, heldout.dialogues(tables, source))
            entry["heldout"] = {
                **result,
                "failures": result["failures"] if args.show_failures else len(result["failures"]),
            }
        report["sources"][source] = entry
    if own_kinds:
        report["own_templates"] = len(own_kinds)
        report["own_dialogues"] = sum(own_kinds.values())
        report["own_max_instances_per_template"] = max(own_kinds.values())
        assert report["own_max_instances_per_template"] <= MAX_PER_TEMPLATE
    report["load_average_end"] = os.getloadavg()[0]
    report["gold"] = (
        "own: written by the chat code's author from templates over the tables (not held out); heldout: "
        "benchmarks/chat_heldout.py, written by someone else"
    )
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
