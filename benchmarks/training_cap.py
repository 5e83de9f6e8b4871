"""The learning curve behind the training cap (``HOLOCRM_TRAINING_RECORDS``): the served scorer trained on
the most recent N decided records against the same scorer trained on all of them, judged on the open
records against the generator's hidden truth (records no training round saw; ``holocrm_core.scoring.truth``).

For each entity and cap: seconds of ``train_scorer`` (guards, rolling-fold selection, refit: what
``lead_scoring_model`` / ``deal_scoring_model`` run), the selected candidate, the gate's verdict, AUC vs
truth and rank correlation of the scorer the gate would serve. Prints one JSON object.

    .venv/bin/python benchmarks/training_cap.py --contacts 50000 --caps 5000,10000,20000,0

0 is "no cap". Slow on a shared two-core machine (the uncapped round at 100k contacts is about 10 minutes);
the load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TRUTH = {"contact": ("leads", "contact_id", "p_convert"), "deal": ("deals", "deal_id", "p_win")}


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def curve(n_contacts: int, seed: int, caps: list[int]) -> dict:
    from holocrm_core.ingest import ingest_export
    from holocrm_core.outcomes import build_features_for, build_outcome_dataset, open_ids
    from holocrm_core.registry.evidence import gate_evidence
    from holocrm_core.registry.gate import judge
    from holocrm_core.registry.tracking import served_model
    from holocrm_core.scoring import train_scorer
    from holocrm_core.scoring.truth import figures
    from holocrm_core.synth import generate_export, load_truth

    work = Path(tempfile.mkdtemp(prefix="holocrm-cap-"))
    generate_export(
        work / "export",
        n_contacts=n_contacts,
        seed=seed,
        truth_dir=work / "truth",
        with_attachment_files=False,
    )
    tables = ingest_export(work / "export").tables
    dataset = build_outcome_dataset(tables)
    truth = load_truth(work / "truth")
    out: dict = {"contacts": n_contacts, "seed": seed}
    for entity, (file, id_column, p_column) in TRUTH.items():
        rows = dataset.filter(dataset["entity"] == entity)
        still_open = build_features_for(entity, open_ids(entity, tables), tables)
        p_true = (
            still_open.select(id_column)
            .join(truth[file].select(id_column, p_column), on=id_column, how="left")[p_column]
            .to_numpy()
        )
        cells = {}
        for cap in caps:
            load_before = _load()
            started = time.perf_counter()
            outcome = train_scorer(dataset, entity, open_features=still_open, max_records=cap)
            seconds = time.perf_counter() - started
            verdict = judge(gate_evidence(outcome, None, with_champion=False))
            if verdict.served_role in ("candidate", "logistic"):
                served, _ = served_model(outcome, verdict.served_role, verdict.recalibrate)
            else:
                served = outcome.heuristic
            scores = served.predict_proba(still_open)[:, 1]
            cells[str(cap or "all")] = {
                "records_trained": int(
                    outcome.train["entity_id"].n_unique() + outcome.validation["entity_id"].n_unique()
                ),
                "records_left_out": outcome.records_left_out,
                "selected": outcome.strategy,
                "served": verdict.served_name,
                "gate_passed": verdict.passed,
                "newest_fold_auc": outcome.metrics.get("auc"),
                "served_vs_truth": figures(scores, p_true),
                "seconds": round(seconds, 1),
                "load_avg_1_5_15": {"before": load_before, "after": _load()},
            }
            print(json.dumps({entity: {str(cap or "all"): cells[str(cap or "all")]}}), file=sys.stderr)
        out[entity] = {
            "decided_records": int(rows["entity_id"].n_unique()),
            "snapshot_rows": rows.height,
            "open_records": still_open.height,
            "by_cap": cells,
        }
        full = cells.get("all")
        if full:
            base = full["served_vs_truth"]["auc_vs_truth"]
            out[entity]["auc_vs_truth_minus_uncapped"] = {
                k: round(v["served_vs_truth"]["auc_vs_truth"] - base, 4) for k, v in cells.items()
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--caps", default="5000,10000,20000,0", help="decided records per round; 0 = all")
    args = parser.parse_args()
    caps = [int(c) for c in args.caps.split(",") if c.strip()]
    result = curve(args.contacts, args.seed, caps)
    result["command"] = "benchmarks/training_cap.py " + " ".join(sys.argv[1:])
    print(json.dumps(result, indent=2, default=float))


if __name__ == "__main__":
    main()
