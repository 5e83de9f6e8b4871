"""Exact-answer accuracy of `holocrm ask` measured where it was not tuned; prints JSON.

    .venv/bin/python benchmarks/nlq_eval.py [--show-failures] [--no-perturbations]

Sections, kept apart (the held-out and blind figures are the result, the tuned one is a training score):
- `tuned_families`: the template families the parser was tuned on (benchmarks/nlq_questions/synth.py over the
  generated export, seed 0, 2,000 contacts, as of 2026-10-31; maven.py over the Maven CRM export), all their
  phrasings.
- `held_out_families`: whole kinds of question never tuned on (nlq_questions/held_out.py, Maven), written
  before the parser changes of issue 13 and run only at the end.
- `perturbations`: every question of both, retyped six ways by benchmarks/nlq_perturb.py (shorthand, a typo,
  no apostrophes, lower case, a time clause moved to the front, a synonym), per kind.
- `blind`: nlq_questions/blind.py, written after the last parser change, gold by hand-written polars.
- `trust`: nlq_questions/trust.py (issue 24), managers', reps' and ops people's words over both exports,
  written before the semantic layer; `trust_late`: nlq_questions/trust_late.py, written after the last
  parser change of issue 24. Each question counts as refused when the answer is not high-confidence; a
  refusal is "covered" when one of the answer's readings (clarification) is exactly right.
- `roadmap`: the roadmap's three examples, each must be exact.
- `reliability`: accuracy per band of stated confidence, and wrong answers stated with high confidence.
Maven data from ../shared/data/maven_crm (HOLOCRM_SHARED_DATA overrides); skipped with a message if absent.
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

from benchmarks.nlq_perturb import perturbations  # noqa: E402
from benchmarks.nlq_questions import held_out as held_out_set  # noqa: E402
from benchmarks.nlq_questions import maven as maven_set  # noqa: E402
from benchmarks.nlq_questions import synth as synth_set  # noqa: E402
from holocrm_core.nlq import HIGH_CONFIDENCE, NLQContext, ask  # noqa: E402
from holocrm_core.nlq.meaning import lazy_embed  # noqa: E402

ROADMAP = {
    "hot_leads": "hot leads in fintech",
    "deals_not_contacted": "deals no contact 2 weeks",
    "like_contact": "contacts like {name}",
}


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


def _slot_words(slot: dict) -> list[str]:
    return [str(v) for v in slot.values() if isinstance(v, str)]


def questions(dataset: str, tables, as_of, sim) -> list[dict]:
    """Every phrasing of every tuned template family: dataset, family, question, gold, protected words."""
    items = []
    tpls = synth_set.templates(tables, as_of, sim) if dataset == "synth" else maven_set.templates(tables)
    for tpl in tpls:
        base = dict(dataset=dataset, template=tpl["name"], features=tpl["features"], section="tuned_families")
        if tpl["gold"] is None:
            for phrasing, slot, gold in synth_set.expand_region(tables, tpl):
                items.append(
                    {**base, "question": phrasing.format(**slot), "gold": gold, "protect": _slot_words(slot)}
                )
            continue
        for slot in tpl["slots"]:
            gold = tpl["gold"](slot)
            for phrasing in tpl["tuned"] + tpl["held_out"]:
                items.append(
                    {**base, "question": phrasing.format(**slot), "gold": gold, "protect": _slot_words(slot)}
                )
            if dataset == "synth" and tpl["name"] in ROADMAP and slot is tpl["slots"][0]:
                q = ROADMAP[tpl["name"]].format(**slot)
                items.append(
                    {**base, "section": "roadmap", "question": q, "gold": gold, "protect": _slot_words(slot)}
                )
    return items


def held_out_questions(tables) -> list[dict]:
    return [
        dict(
            dataset="maven",
            template=family,
            features=[family],
            section="held_out_families",
            question=q,
            gold=gold,
            protect=[w for w in q.split() if w[:1].isupper()],
        )
        for family, q, gold in held_out_set.expand(tables)
    ]


def blind_questions(tables_by_dataset: dict) -> list[dict] | None:
    try:
        from benchmarks.nlq_questions import blind
    except ImportError:
        return None
    items = []
    for dataset, question, gold in blind.questions(tables_by_dataset):
        items.append(
            dict(
                dataset=dataset,
                template="blind",
                features=["blind"],
                section="blind",
                question=question,
                gold=gold,
                protect=[],
            )
        )
    return items


def correct(answer, gold) -> bool:
    kind, expected = gold
    if kind == "clarify":  # an honest question back whose readings hold every meaning the asker may have had
        readings = getattr(answer, "readings", None) or []
        return not answer.high_confidence and all(any(correct(r, g) for r in readings) for g in expected)
    if kind == "ratio":
        got = answer.value
        return isinstance(got, (int, float)) and abs(float(got) - float(expected)) < 0.0005
    if kind == "top":
        got = answer.value if isinstance(answer.value, dict) else {}
        if not got:
            return False
        first = str(next(iter(got)))
        parts = first.split()
        if len(parts) > 1 and len(parts[-1]) == 3 and parts[-1].isupper():
            first = " ".join(parts[:-1])  # "Thanh White USD": the group, per currency
        return first == str(expected)
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
        got = {str(k): v for k, v in got.items()}
        want = {str(k): v for k, v in expected.items()}
        if got.keys() != want.keys():
            want = _one_currency_dropped(want)  # one currency only: the engine names no currency
        return got.keys() == want.keys() and all(_close(got[k], want[k]) for k in want)
    return False


def _one_currency_dropped(groups: dict) -> dict:
    tails = {k.rsplit(" ", 1)[-1] for k in groups}
    if len(tails) == 1 and all(" " in k for k in groups):
        tail = tails.pop()
        if len(tail) == 3 and tail.isupper():
            return {k.rsplit(" ", 1)[0]: v for k, v in groups.items()}
    return groups


def _close(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(float(a) - float(b)) < 0.01 * max(1.0, abs(float(b)) * 1e-9)
    return a == b


def covered(answer, gold) -> bool:
    """A refused (not high-confidence) answer whose readings include the right one."""
    return any(correct(r, gold) for r in (getattr(answer, "readings", None) or []))


def trust_questions(tables_by_dataset: dict, as_of_by_dataset: dict, module: str) -> list[dict] | None:
    try:
        mod = __import__(f"benchmarks.nlq_questions.{module}", fromlist=["synth_questions"])
    except ImportError:
        return None
    items = []
    for dataset, fn in (("synth", mod.synth_questions), ("maven", mod.maven_questions)):
        if dataset not in tables_by_dataset:
            continue
        for persona, question, gold in fn(tables_by_dataset[dataset], as_of_by_dataset[dataset]):
            items.append(
                dict(
                    dataset=dataset,
                    template=persona,
                    features=[persona],
                    section=module,
                    question=question,
                    gold=gold,
                    protect=[],
                )
            )
    return items


def summary(rows: list[dict]) -> dict:
    n = len(rows)
    good = sum(r["ok"] for r in rows)
    return {
        "questions": n,
        "exact_accuracy": round(good / n, 4) if n else None,
        "high_confidence_wrong": sum(1 for r in rows if r["high_confidence"] and not r["ok"]),
        "answered_high_confidence": sum(1 for r in rows if r["high_confidence"]),
        "high_confidence_accuracy": round(
            sum(r["ok"] for r in rows if r["high_confidence"])
            / max(1, sum(r["high_confidence"] for r in rows)),
            4,
        ),
    }


def reliability(rows: list[dict]) -> list[dict]:
    bands = [(0.0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, HIGH_CONFIDENCE), (HIGH_CONFIDENCE, 1.01)]
    out = []
    for lo, hi in bands:
        inside = [r for r in rows if lo <= r["confidence"] < hi]
        out.append(
            {
                "confidence": f"[{lo:.1f}, {min(hi, 1.0):.1f}{')' if hi < 1 else ']'}",
                **{k: v for k, v in summary(inside).items() if k in ("questions", "exact_accuracy")},
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show-failures", action="store_true")
    parser.add_argument("--no-perturbations", action="store_true")
    parser.add_argument(
        "--no-meaning", action="store_true", help="no embedder: unknown words matched by spelling only"
    )
    parser.add_argument(
        "--sections",
        default="tuned_families,held_out_families,roadmap,blind,trust,trust_late,trust_final,trust_final2,trust_final3,trust_final4,trust_final5",
    )
    args = parser.parse_args()
    wanted = set(args.sections.split(","))
    started = time.perf_counter()
    skipped = []
    tables, as_of = synth_tables()
    tables["scored_leads"] = synth_set.scored_leads(tables)
    sim = synth_set.HashNeighbours(tables)
    embed = None if args.no_meaning else lazy_embed()  # as the CLI and the API answer
    contexts = {"synth": (NLQContext.from_tables(tables, similarity=sim, embed=embed), as_of)}
    items = questions("synth", tables, as_of, sim)
    all_tables = {"synth": tables}
    maven = maven_tables()
    if maven is None:
        skipped.append(f"maven: skipped, {shared_data() / 'maven_crm'} absent")
    else:
        contexts["maven"] = (NLQContext.from_tables(maven, embed=embed), maven_set.AS_OF)
        items += questions("maven", maven, maven_set.AS_OF, None) + held_out_questions(maven)
        all_tables["maven"] = maven
    blind = blind_questions(all_tables)
    if blind is None:
        skipped.append("blind: benchmarks/nlq_questions/blind.py not written yet")
    else:
        items += blind
    as_ofs = {"synth": as_of, "maven": maven_set.AS_OF}
    for module in (
        "trust",
        "trust_late",
        "trust_final",
        "trust_final2",
        "trust_final3",
        "trust_final4",
        "trust_final5",
    ):
        extra_set = trust_questions(all_tables, as_ofs, module)
        if extra_set is None:
            skipped.append(f"{module}: benchmarks/nlq_questions/{module}.py not written yet")
        else:
            items += extra_set
    items = [i for i in items if i["section"] in wanted]
    if not args.no_perturbations:
        extra = []
        for item in items:
            if item["section"] in ("tuned_families", "held_out_families"):
                for kind, text in perturbations(item["question"], item["protect"]):
                    extra.append(
                        {
                            **item,
                            "section": "perturbations",
                            "perturbation": kind,
                            "source": item["section"],
                            "question": text,
                        }
                    )
        items += extra
    results = []
    for item in items:
        ctx, moment = contexts[item["dataset"]]
        answer = ask(item["question"], ctx, as_of=moment)
        results.append(
            {
                **item,
                "ok": correct(answer, item["gold"]),
                "covered": (not answer.high_confidence) and covered(answer, item["gold"]),
                "high_confidence": answer.high_confidence,
                "confidence": answer.confidence,
                "answer": answer,
            }
        )

    def section(name):
        return [r for r in results if r["section"] == name]

    perturbed = section("perturbations")
    report = {
        "tuned_families": summary(section("tuned_families")),
        "held_out_families": summary(section("held_out_families")),
        "perturbations": {
            "all": summary(perturbed),
            "of_tuned_families": summary([r for r in perturbed if r["source"] == "tuned_families"]),
            "of_held_out_families": summary([r for r in perturbed if r["source"] == "held_out_families"]),
            "per_kind": {
                k: summary([r for r in perturbed if r["perturbation"] == k])
                for k in sorted({r["perturbation"] for r in perturbed})
            },
        },
        "blind": summary(section("blind")) if blind is not None else None,
        **{
            name: {
                **summary(section(name)),
                "refused": sum(1 for r in section(name) if not r["high_confidence"]),
                "refused_with_right_reading": sum(r["covered"] for r in section(name)),
                "per_dataset": {
                    ds: summary([r for r in section(name) if r["dataset"] == ds])
                    for ds in sorted({r["dataset"] for r in section(name)})
                },
                "per_asker": {
                    p: summary([r for r in section(name) if r["template"] == p])
                    for p in sorted({r["template"] for r in section(name)})
                },
            }
            for name in (
                "trust",
                "trust_late",
                "trust_final",
                "trust_final2",
                "trust_final3",
                "trust_final4",
                "trust_final5",
            )
            if section(name)
        },
        "roadmap": {r["question"]: r["ok"] for r in section("roadmap")},
        "high_confidence_wrong_anywhere": sum(1 for r in results if r["high_confidence"] and not r["ok"]),
        "reliability": reliability(results),
        "per_held_out_family": {
            f: summary(rows) for f, rows in sorted(_by(section("held_out_families"), "template").items())
        },
        "per_dataset": {
            ds: summary([r for r in results if r["dataset"] == ds])
            for ds in sorted({r["dataset"] for r in results})
        },
        "skipped": skipped,
        "seconds": round(time.perf_counter() - started, 1),
        "target": {
            "held_out_families": 0.95,
            "perturbations": 0.95,
            "high_confidence_wrong": 0,
            "roadmap": "all exact",
        },
    }
    if args.show_failures:
        report["failures"] = [
            {
                "section": r["section"],
                "kind": r.get("perturbation"),
                "dataset": r["dataset"],
                "question": r["question"],
                "plan": r["answer"].plan_words(),
                "high_confidence": r["high_confidence"],
                "unknown": r["answer"].unknown_words,
                "got": r["answer"].value if r["answer"].value is not None else len(r["answer"].ids),
                "gold": r["gold"][1] if r["gold"][0] in ("value", "ratio", "top") else len(r["gold"][1]),
                "confidence": r["confidence"],
            }
            for r in results
            if not r["ok"]
        ]
    print(json.dumps(report, indent=1, default=str))


def _by(rows: list[dict], key: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        out[r[key]].append(r)
    return out


if __name__ == "__main__":
    main()
