"""Scripted dialogues with gold outcomes through the chat core (issue 29); prints JSON.

    .venv/bin/python benchmarks/chat_eval.py [--contacts 300] [--seed 11] [--show-failures]

Over a generated export (ingested only: no scores, no similarity index; seed 11 was never used while the
chat code was written, which was developed on the hand-built tables of tests/core/test_nlq_data.py), each
dialogue is a template filled with records drawn from the tables, its gold worked out here with polars from
the tables themselves (not from the chat code): per turn the intent, the records shown (exact ids, or the
count and a superset for a question's answer), and whether a write is proposed, made, refused or cancelled.

Honest limits: the templates and their gold were written by the same person who wrote the chat code (not
held out, not by someone else), on the generated sample only (the Maven export is not covered yet), and
they are far fewer than the issue's 150. Safety is counted from the writer's own log, not from the replies:
``writes_without_confirmation`` (a record written on a turn that was not "yes" and without --yes) and
``writes_to_wrong_record`` (a record written for another id than the dialogue's gold target) must be 0.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from holocrm_core.chat import ChatData, ChatSession  # noqa: E402
from holocrm_core.chat.catalogue import PREPARE_PLAN  # noqa: E402

OPEN = ["prospecting", "qualification", "proposal", "negotiation"]


def load(contacts: int, seed: int) -> dict[str, pl.DataFrame]:
    from holocrm_core.ingest import ingest_export
    from holocrm_core.settings import HoloPaths
    from holocrm_core.synth import generate_export
    from holocrm_core.warehouse import Warehouse

    root = Path(tempfile.mkdtemp(prefix="chat-eval-"))
    export = root / "landing" / "export"
    generate_export(
        export, n_contacts=contacts, seed=seed, truth_dir=root / "truth", with_attachment_files=False
    )
    paths = HoloPaths(root).ensure()
    warehouse = Warehouse(paths.warehouse)
    ingest_export(export, warehouse=warehouse)
    names = ("companies", "contacts", "deals", "activities", "attachments")
    return {n: warehouse.read(f"staged_{n}") for n in names if warehouse.exists(f"staged_{n}")}


def unique(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """Rows whose ``column`` value no other record of any kind shares (a lookup has one right answer)."""
    counts = frame.group_by(column).len().filter(pl.col("len") == 1)
    return frame.join(counts.select(column), on=column).sort(column)


def dialogues(t: dict[str, pl.DataFrame]) -> list[dict]:
    """The scripted dialogues with their gold (templates x records drawn from the tables)."""
    deals, companies, contacts = t["deals"], t["companies"], t["contacts"]
    company_names = unique(companies.drop_nulls("name"), "name")
    contact_names = unique(contacts.drop_nulls("full_name"), "full_name")
    titles = unique(deals.drop_nulls("title"), "title")
    open_deals = titles.filter(pl.col("stage").is_in(OPEN))
    won = titles.filter(pl.col("stage") == "won")
    lost = titles.filter(pl.col("stage") == "lost")
    industry_of = dict(companies.select("company_id", "industry").iter_rows())
    all_open = deals.filter(pl.col("stage").is_in(OPEN))
    out: list[dict] = []

    def add(kind: str, turns: list[tuple[str, dict]], target: str | None = None) -> None:
        out.append({"kind": kind, "turns": turns, "target": target})

    for row in company_names.head(4).iter_rows(named=True):  # lookup by exact name, then a summary
        add(
            "lookup_company",
            [
                (f"show {row['name']}", {"intent": "details", "records": [row["company_id"]]}),
                ("summarize it", {"intent": "summarize", "focus": row["company_id"]}),
            ],
        )
    for row in contact_names.head(4).iter_rows(named=True):  # a contact with one letter dropped
        name = row["full_name"]
        typo = name[:3] + name[4:] if len(name) > 6 else name
        add(
            "lookup_typo",
            [
                (f"find {typo}", {"intent": "find", "records": [row["contact_id"]]}),
                ("draft a follow-up email", {"intent": "draft_email", "focus": row["contact_id"]}),
                ("what should I do next?", {"intent": "next_action", "focus": row["contact_id"]}),
            ],
        )
    industries = [
        i for i in all_open.join(companies, on="company_id")["industry"].unique().sort().to_list() if i
    ]
    for industry in industries[:4]:  # a question, a filter follow-up, a sort follow-up
        gold_ids = set(
            all_open.filter(
                pl.col("company_id").map_elements(industry_of.get, return_dtype=pl.String) == industry
            )["deal_id"]
        )
        add(
            "question_refine",
            [
                (
                    "open deals",
                    {"intent": "question", "count": all_open.height, "within": set(all_open["deal_id"])},
                ),
                (
                    f"only the ones in {industry}",
                    {"intent": "refine", "count": len(gold_ids), "within": gold_ids},
                ),
                ("sort by value", {"intent": "refine", "count": len(gold_ids), "within": gold_ids}),
            ],
        )
    firsts = [o.split()[0] for o in deals["owner"].drop_nulls().unique().to_list()]
    shared = sorted({f for f in firsts if firsts.count(f) > 1})
    for first in shared[:3]:  # an owner's first name shared by two: readings, then "the second one"
        owners = sorted(o for o in deals["owner"].drop_nulls().unique().to_list() if o.split()[0] == first)
        candidates = [set(all_open.filter(pl.col("owner") == o)["deal_id"]) for o in owners]
        add(
            "clarify_reading",
            [
                (f"{first}'s open deals", {"intent": "question", "clarify": True}),
                ("the second one", {"intent": "pick", "one_of": candidates}),
            ],
        )
    for row in open_deals.head(4).iter_rows(named=True):  # previewed, then confirmed
        add(
            "write_confirmed",
            [
                (f"show {row['title']}", {"intent": "details", "records": [row["deal_id"]]}),
                ("close it as won", {"intent": "close_deal", "write": "proposed"}),
                ("yes", {"intent": "confirm", "write": "made"}),
            ],
            target=row["deal_id"],
        )
    pairs = list(zip(open_deals["title"].to_list()[4:8], open_deals["title"].to_list()[:4], strict=False))
    for shown, other in pairs:  # a write naming another record than the one in focus
        add(
            "write_wrong_record",
            [
                (f"show {shown}", {"intent": "details"}),
                (f"close {other} as lost", {"intent": "close_deal", "write": "refused"}),
                ("yes", {"intent": "confirm", "write": None}),
            ],
        )
    for row in won.head(3).iter_rows(named=True):  # a contradiction of the export
        add(
            "write_contradiction",
            [
                (f"show {row['title']}", {"intent": "details", "records": [row["deal_id"]]}),
                ("close it as lost", {"intent": "close_deal", "write": "refused"}),
            ],
        )
    for row in lost.head(2).iter_rows(named=True):  # a repeat of the export's outcome: nothing to change
        add(
            "write_repeat",
            [
                (f"show {row['title']}", {"intent": "details", "records": [row["deal_id"]]}),
                ("mark it lost", {"intent": "close_deal", "write": "refused"}),
            ],
        )
    for row in open_deals.tail(2).iter_rows(named=True):  # previewed, then dropped
        add(
            "write_cancelled",
            [
                (f"show {row['title']}", {"intent": "details", "records": [row["deal_id"]]}),
                ("close it as lost", {"intent": "close_deal", "write": "proposed"}),
                ("no", {"intent": "cancel", "write": "cancelled"}),
            ],
        )
    for row in company_names.tail(3).iter_rows(named=True):  # the woven request
        add(
            "prepare",
            [
                (
                    f"prepare me for my call with {row['name']}",
                    {"intent": "prepare", "records": [row["company_id"]], "steps": list(PREPARE_PLAN)},
                )
            ],
        )
    for row in company_names.slice(4, 3).iter_rows(named=True):  # other words for a lookup; a short name
        first = row["name"].split()[0]
        add(
            "lookup_phrasing",
            [
                (f"tell me about {row['name']}", {"intent": "details", "records": [row["company_id"]]}),
                (f"find {first}", {"intent": "find"}),
                ("the first one", {"intent": "pick", "records": [row["company_id"]]}),
            ],
        )
    for row in contact_names.slice(4, 3).iter_rows(named=True):
        add(
            "contact_pronouns",
            [
                (f"who is {row['full_name']}?", {"intent": "details", "records": [row["contact_id"]]}),
                ("why is she hot?", {"intent": "explain_score", "focus": row["contact_id"]}),
                ("log a call: left a voicemail", {"intent": "log_note", "write": "proposed"}),
                ("yes", {"intent": "confirm", "write": "made"}),
            ],
            target=row["contact_id"],
        )
    for text in ("blorp the frobnicator", "zxqv wibble"):
        add("not_understood", [(text, {"intent": "not_understood"})])
    return out


def check(turn: dict, gold: dict, write_log: list) -> list[str]:
    """What differs between a turn and its gold (empty: exact)."""
    wrong = []
    if turn["intent"] != gold["intent"]:
        wrong.append(f"intent {turn['intent']} != {gold['intent']}")
    shown = [r["id"] for r in turn["records"]]
    if "records" in gold and shown != gold["records"]:
        wrong.append(f"records {shown} != {gold['records']}")
    if "focus" in gold and (turn.get("focus") or {}).get("id") != gold["focus"]:
        wrong.append(f"focus {turn.get('focus')} != {gold['focus']}")
    if "count" in gold and (turn.get("answer") or {}).get("record_count") != gold["count"]:
        wrong.append(f"count {(turn.get('answer') or {}).get('record_count')} != {gold['count']}")
    if "within" in gold and not set(shown) <= gold["within"]:
        wrong.append("records outside the gold set")
    if "one_of" in gold:  # the rows shown (at most 20) and the count are one reading's
        count = (turn.get("answer") or {}).get("record_count")
        if not any(set(shown) <= c and count == len(c) for c in gold["one_of"]):
            wrong.append("records are no reading's")
    if gold.get("clarify") and not turn.get("clarify"):
        wrong.append("no clarification asked")
    if "write" in gold and (turn.get("write") or {}).get("status") != gold["write"]:
        wrong.append(f"write {(turn.get('write') or {}).get('status')} != {gold['write']}")
    if "steps" in gold and [s["step"] for s in turn["trace"]] != gold["steps"]:
        wrong.append(f"steps {[s['step'] for s in turn['trace']]}")
    return wrong


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=300)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--show-failures", action="store_true")
    args = parser.parse_args()
    tables = load(args.contacts, args.seed)
    started = time.perf_counter()
    data = ChatData.from_tables(tables)
    data.nlq  # noqa: B018 - start-up (the NL context and decision service) timed apart from turns
    data.decisions  # noqa: B018
    startup_s = time.perf_counter() - started
    scripted = dialogues(tables)
    turns_total = turns_exact = dialogues_exact = 0
    unconfirmed = wrong_record = 0
    latencies: list[float] = []
    by_intent: dict[str, list[float]] = {}
    by_kind: dict[str, list[int]] = {}
    failures = []
    for dialogue in scripted:
        written: list[tuple[int, str, dict]] = []
        session = ChatSession(data)
        current = {"turn": 0, "text": ""}

        def writer(kind, record, check_state, current=current, written=written):
            if check_state is not None:
                check_state()
            written.append((current["turn"], current["text"], record))
            return {"record": record, "created": True}

        session.writer = writer
        exact = True
        for number, (text, gold) in enumerate(dialogue["turns"], 1):
            current["turn"], current["text"] = number, text
            t0 = time.perf_counter()
            turn = session.turn(text)
            latencies.append((time.perf_counter() - t0) * 1e3)
            by_intent.setdefault(gold["intent"], []).append(latencies[-1])
            wrong = check(turn, gold, written)
            turns_total += 1
            turns_exact += not wrong
            if wrong:
                exact = False
                failures.append(
                    {"kind": dialogue["kind"], "turn": text, "wrong": wrong, "reply": turn["reply"][:200]}
                )
        for _, text, record in written:
            unconfirmed += text.strip().lower() not in ("yes", "y", "confirm", "do it", "go ahead")
            target = record.get("deal_id") or record.get("entity_id")
            wrong_record += target != dialogue["target"]
        dialogues_exact += exact
        by_kind.setdefault(dialogue["kind"], [0, 0])
        by_kind[dialogue["kind"]][0] += exact
        by_kind[dialogue["kind"]][1] += 1
    latencies.sort()
    report = {
        "data": f"generated export, {args.contacts} contacts, seed {args.seed} (ingested; no scores, no index)",
        "rows": {name: frame.height for name, frame in tables.items()},
        "dialogues": len(scripted),
        "turns": turns_total,
        "turn_exactness": round(turns_exact / turns_total, 3),
        "dialogue_exactness": round(dialogues_exact / len(scripted), 3),
        "writes_without_confirmation": unconfirmed,
        "writes_to_wrong_record": wrong_record,
        "by_kind": {k: f"{v[0]}/{v[1]}" for k, v in by_kind.items()},
        "startup_s": round(startup_s, 2),
        "turn_ms_p50": round(statistics.median(latencies), 1),
        "turn_ms_p95": round(latencies[int(0.95 * (len(latencies) - 1))], 1),
        "turn_ms_max_by_intent": {k: round(max(v), 1) for k, v in sorted(by_intent.items())},
        "load_average": os.getloadavg()[0],
        "gold": "written by the chat code's author from templates over the tables (not held out)",
    }
    if args.show_failures:
        report["failures"] = failures
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
