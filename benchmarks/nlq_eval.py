"""Exact-answer accuracy of `holocrm ask` on question sets with hand-written gold queries; prints JSON.

    .venv/bin/python benchmarks/nlq_eval.py [--show-failures] [--split tuned|held_out|all]

Data: the sample export generated here (seed 0, 2,000 contacts, as of 2026-10-31) and the Maven CRM export
in ../shared/data/maven_crm (env HOLOCRM_SHARED_DATA overrides ../shared/data; skipped with a message when
absent). Gold answers come from polars queries written per template (benchmarks/nlq_questions/), never from
the parser. Reports accuracy overall, per feature and per data set, the count of wrong answers marked
high-confidence (target 0), and separately: `held_out` phrasings (written before tuning; the parser was
later fixed on 5 of their failures, see the report) and `fresh` phrasings (written after the last parser
change, never tuned on).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402

from benchmarks.nlq_questions import maven as maven_set  # noqa: E402
from benchmarks.nlq_questions import synth as synth_set  # noqa: E402
from benchmarks.nlq_questions.fresh import FRESH  # noqa: E402
from holocrm_core.nlq import NLQContext, ask  # noqa: E402


def shared_data() -> Path:
    return Path(os.environ.get("HOLOCRM_SHARED_DATA", ROOT.parent / "shared" / "data"))


def synth_tables() -> tuple[dict[str, pl.DataFrame], object]:
    from holocrm_core.ingest import ingest_export
    from holocrm_core.synth import DEFAULT_AS_OF, generate_export

    with tempfile.TemporaryDirectory() as tmp:
        export, truth = Path(tmp) / "export", Path(tmp) / "truth"
        generate_export(export, n_contacts=2000, seed=0, truth_dir=truth, with_attachment_files=False)
        result = ingest_export(export)
    return {e: result.tables[e] for e in ("companies", "contacts", "deals", "activities")}, DEFAULT_AS_OF


def maven_tables() -> dict[str, pl.DataFrame] | None:
    folder = shared_data() / "maven_crm"
    if not folder.exists():
        return None
    from holocrm_core.ingest import ingest_export

    result = ingest_export(folder, profile="maven")
    return {e: result.tables[e] for e in ("companies", "contacts", "deals", "activities")}


def questions(dataset: str, tables, as_of, sim) -> list[dict]:
    items = []
    if dataset == "synth":
        tpls = synth_set.templates(tables, as_of, sim)
    else:
        tpls = maven_set.templates(tables)
    for tpl in tpls:
        if tpl["gold"] is None:
            for phrasing, slot, gold in synth_set.expand_region(tables, tpl):
                items.append(dict(dataset=dataset, template=tpl["name"], features=tpl["features"], split="tuned", question=phrasing.format(**slot), gold=gold))
            continue
        for slot in tpl["slots"]:
            gold = tpl["gold"](slot)
            splits = {"tuned": tpl["tuned"], "held_out": tpl["held_out"], "fresh": FRESH.get(tpl["name"], [])}
            for split, phrasings in splits.items():
                for phrasing in phrasings:
                    items.append(dict(dataset=dataset, template=tpl["name"], features=tpl["features"], split=split, question=phrasing.format(**slot), gold=gold))
    return items


def correct(answer, gold) -> bool:
    kind, expected = gold
    if kind == "set":
        return answer.value is None and set(answer.ids) == set(expected)
    if kind == "list":
        return answer.value is None and list(answer.ids) == list(expected)
    if kind == "value":
        got = answer.value
        if isinstance(got, dict) or got is None:
            return False
        return abs(float(got) - float(expected)) < 0.01
    if kind == "groups":
        got = answer.value if isinstance(answer.value, dict) else {}
        return {str(k): v for k, v in got.items()} == {str(k): v for k, v in expected.items()}
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show-failures", action="store_true")
    parser.add_argument("--split", default="all", choices=["all", "tuned", "held_out", "fresh"])
    args = parser.parse_args()
    started = time.perf_counter()
    runs = []
    skipped = []
    tables, as_of = synth_tables()
    tables["scored_leads"] = synth_set.scored_leads(tables)
    sim = synth_set.HashNeighbours(tables)
    runs.append(("synth", NLQContext.from_tables(tables, similarity=sim), questions("synth", tables, as_of, sim), as_of))
    maven = maven_tables()
    if maven is None:
        skipped.append(f"maven: skipped, {shared_data() / 'maven_crm'} absent")
    else:
        runs.append(("maven", NLQContext.from_tables(maven), questions("maven", maven, maven_set.AS_OF, None), maven_set.AS_OF))
    results = []
    for dataset, ctx, items, moment in runs:
        for item in items:
            if args.split != "all" and item["split"] != args.split:
                continue
            answer = ask(item["question"], ctx, as_of=moment)
            ok = correct(answer, item["gold"])
            results.append({**item, "ok": ok, "high_confidence": answer.high_confidence, "answer": answer})

    def summary(rows):
        n = len(rows)
        good = sum(r["ok"] for r in rows)
        return {
            "questions": n,
            "exact_accuracy": round(good / n, 4) if n else None,
            "high_confidence_wrong": sum(1 for r in rows if r["high_confidence"] and not r["ok"]),
            "answered_high_confidence": sum(1 for r in rows if r["high_confidence"]),
        }

    per_feature = defaultdict(list)
    for r in results:
        for f in r["features"]:
            per_feature[f].append(r)
    report = {
        "overall": summary(results),
        "tuned_phrasings": summary([r for r in results if r["split"] == "tuned"]),
        "held_out_phrasings": summary([r for r in results if r["split"] == "held_out"]),
        "fresh_phrasings": summary([r for r in results if r["split"] == "fresh"]),
        "per_dataset": {ds: summary([r for r in results if r["dataset"] == ds]) for ds in sorted({r["dataset"] for r in results})},
        "per_feature": {f: summary(rows) for f, rows in sorted(per_feature.items())},
        "skipped": skipped,
        "seconds": round(time.perf_counter() - started, 1),
        "target": {"exact_accuracy": 0.95, "high_confidence_wrong": 0},
    }
    if args.show_failures:
        report["failures"] = [
            {
                "dataset": r["dataset"], "split": r["split"], "question": r["question"],
                "plan": r["answer"].plan_words(), "high_confidence": r["high_confidence"],
                "unknown": r["answer"].unknown_words, "got": (r["answer"].value if r["answer"].value is not None else len(r["answer"].ids)),
                "gold": r["item_gold_size"] if "item_gold_size" in r else (r["gold"][1] if r["gold"][0] in ("value", "groups") else len(r["gold"][1])),
            }
            for r in results
            if not r["ok"]
        ]
    print(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
