"""Parse + execute latency of NL questions at 100k contacts (generated sample export); prints JSON.

    .venv/bin/python benchmarks/nlq_speed.py [--contacts 100000] [--repeats 5]

The context (tables + vocabulary) is built once, as the CLI, API and asset do; each question is then timed
end to end through `ask` (parse, execute, answer). Reports p50/p95/max per question mix and the build time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from holocrm_core.nlq import NLQContext, ask  # noqa: E402

QUESTIONS = [
    "enterprise leads in fintech with >$100k pipeline",
    "which deals haven't been contacted in 2 weeks?",
    "contacts like {person}",
    "hot leads in fintech",
    "deals closing this month",
    "won deals over $5k in the software sector last quarter",
    "top 10 accounts by open pipeline",
    "how many deals did {owner} win in 2025?",
    "deals over 5 thousand euros",
    "contacts never emailed",
    "contacts with no contact in 30 days",
    "contacts who mentioned budget",
    "stuck deals",
    "deals by stage",
    "c-level contacts at enterprise companies in EMEA",
    "emails in the past 2 weeks",
    "companies with more than 5 deals",
    "customers in healthcare created since March",
    "5 largest open deals",
    "deals in the zorblax sector",
    "how many cos in the us havent we contacted this qtr",
    "deals stuck in negotiation for over 60 days",
    "deals with no contact person",
    "deals won in the last quarter of 2025",
    "opne deals in finanse",
    "deals where price was the problem",
    # issue 24: semantic-layer metrics, derived dates, readings of an unclear question
    "pipeline by region",
    "what's our win rate this year?",
    "how many leads do we have?",
    "which owner has the biggest open pipeline?",
    "open deals past their expected close date",
    "break down open pipeline by expected close quarter",
    "{first}'s open deals",
    "whats our win rat this year",
]


def _p95(values: list[float]) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))], 2)


def _cold_start(tables, as_of, runs: int = 3) -> dict:
    """`holocrm ask` as a new process over a warehouse holding these tables and the vocabulary artifact:
    wall time from process start to the printed answer (target < 2 s), and the artifact's read time."""
    import os
    import subprocess

    from holocrm_core.nlq import Vocabulary
    from holocrm_core.warehouse import Warehouse

    with tempfile.TemporaryDirectory() as home:
        warehouse = Warehouse(Path(home) / "warehouse")
        for entity in ("companies", "contacts", "deals", "activities"):
            warehouse.write(f"staged_{entity}", tables[entity])
        path = NLQContext.from_tables(
            {e: tables[e] for e in ("companies", "contacts", "deals", "activities")}
        ).write_vocabulary(warehouse.root)
        t = time.perf_counter()
        Vocabulary.read(path)
        read_s = time.perf_counter() - t
        size_mb = round(path.stat().st_size / 1e6, 1)
        env = {**os.environ, "HOLOCRM_HOME": home, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
        walls = []
        for _ in range(runs):
            t = time.perf_counter()
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "holocrm_cli",
                    "ask",
                    "open deals in fintech",
                    "--as-of",
                    as_of.date().isoformat(),
                ],
                env=env,
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                raise SystemExit(f"holocrm ask failed ({done.returncode}): {done.stderr[-2000:]}")
            walls.append(time.perf_counter() - t)
    return {
        "ask_wall_s_median": round(statistics.median(walls), 2),
        "ask_wall_s_max": round(max(walls), 2),
        "vocabulary_artifact_mb": size_mb,
        "vocabulary_read_s": round(read_s, 2),
        "target_s": 2,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cold-start", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    from holocrm_core.ingest import ingest_export
    from holocrm_core.synth import DEFAULT_AS_OF, generate_export

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        generate_export(
            Path(tmp) / "export",
            n_contacts=args.contacts,
            seed=0,
            truth_dir=Path(tmp) / "truth",
            with_attachment_files=False,
        )
        result = ingest_export(Path(tmp) / "export")
    tables = {e: result.tables[e] for e in ("companies", "contacts", "deals", "activities")}
    generated_s = time.perf_counter() - t0
    import hashlib

    import polars as pl

    ids = tables["contacts"]["contact_id"].to_list()
    scores = [int(hashlib.sha1(i.encode()).hexdigest()[:6], 16) / 0xFFFFFF for i in ids]
    tables["scored_leads"] = pl.DataFrame(
        {"contact_id": ids, "score": scores, "band": ["hot" if s > 0.8 else "cold" for s in scores]}
    )
    t1 = time.perf_counter()
    ctx = NLQContext.from_tables(tables)
    build_s = time.perf_counter() - t1
    person = tables["contacts"]["full_name"].drop_nulls()[0]
    owner = tables["deals"]["owner"].drop_nulls().sort()[0]
    # a first name shared by several owners: the answer runs each reading too (the slowest kind of question)
    firsts = [o.split()[0] for o in tables["deals"]["owner"].drop_nulls().unique().sort().to_list()]
    first = next((f for f in firsts if firsts.count(f) > 1), owner.split()[0])
    questions = [q.format(person=person, owner=owner, first=first) for q in QUESTIONS]
    ask(questions[0], ctx, as_of=DEFAULT_AS_OF)  # first-call warm-up (polars thread pool, caches)
    timings: list[float] = []
    per_question: dict[str, list[float]] = {q: [] for q in questions}
    # questions with a free-text part: without a semantic index they scan every activity's text
    free_text = {q for q in questions if ask(q, ctx, as_of=DEFAULT_AS_OF).plan.text is not None}
    for _ in range(args.repeats):
        for q in questions:
            start = time.perf_counter()
            ask(q, ctx, as_of=DEFAULT_AS_OF)
            ms = (time.perf_counter() - start) * 1000
            timings.append(ms)
            per_question[q].append(ms)
    timings.sort()
    cold = _cold_start(tables, DEFAULT_AS_OF) if args.cold_start else None

    def pct(p: float) -> float:
        return round(timings[min(len(timings) - 1, int(round(p * (len(timings) - 1))))], 2)

    print(
        json.dumps(
            {
                "contacts": tables["contacts"].height,
                "companies": tables["companies"].height,
                "deals": tables["deals"].height,
                "activities": tables["activities"].height,
                "generate_and_ingest_s": round(generated_s, 1),
                "context_build_s": round(build_s, 2),
                "questions": len(questions),
                "timed_calls": len(timings),
                "p50_ms": pct(0.5),
                "p95_ms": pct(0.95),
                "max_ms": round(timings[-1], 2),
                # free text without a semantic index falls back to a substring scan of every activity text
                "p95_ms_without_keyword_fallback": _p95(
                    [t for q, v in per_question.items() if q not in free_text for t in v]
                ),
                "keyword_fallback_questions": sorted(free_text),
                "keyword_fallback_median_ms": round(
                    statistics.median([t for q in free_text for t in per_question[q]]), 2
                ),
                "slowest_questions_median_ms": dict(
                    sorted(
                        ((q, round(statistics.median(v), 2)) for q, v in per_question.items()),
                        key=lambda kv: -kv[1],
                    )[:5]
                ),
                "target_p95_ms": 50,
                "cold_start": cold,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
