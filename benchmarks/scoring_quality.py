"""Quality of the learned lead and deal scores: generated data (vs heuristic and hidden truth), learning
curve, and the public x_education leads (5-fold stratified CV, random_state 0). Prints one JSON object.

    .venv/bin/python benchmarks/scoring_quality.py [--contacts 8000] [--skip-synth] [--skip-xedu]
        [--strategies neural,gbm,blend]

Reads ../shared/data (or HOLOCRM_SHARED_DATA) when present; says "skipped" when it is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

# Fields the sales team fills in after the first contact: a model that sees them scores the past, not a new lead.
POST_CONTACT = [
    "Tags",
    "Lead Quality",
    "Lead Profile",
    "Last Activity",
    "Last Notable Activity",
    "Asymmetrique Activity Index",
    "Asymmetrique Profile Index",
    "Asymmetrique Activity Score",
    "Asymmetrique Profile Score",
]


def shared_data() -> Path:
    return Path(os.environ.get("HOLOCRM_SHARED_DATA", ROOT.parent / "shared" / "data"))


def x_education(strategies: list[str], folds: int = 5) -> dict:
    path = shared_data() / "x_education_leads" / "Leads.csv"
    if not path.exists():
        return {"skipped": f"{path} absent"}
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    from holocrm_core.scoring import make_strategy

    raw = pl.read_csv(path, infer_schema_length=10000, null_values=["", "Select"], truncate_ragged_lines=True)
    raw = raw.select([c for c in raw.columns if c and not c.startswith("_duplicated")])
    y = raw["Converted"].to_numpy().astype(int)
    frame = raw.drop("Prospect ID", "Lead Number", "Converted")
    out: dict = {
        "rows": len(y),
        "converted_share": round(float(y.mean()), 4),
        "protocol": f"{folds}-fold stratified, random_state 0",
    }
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    for setting, columns in (
        ("all_fields", frame.columns),
        ("without_post_contact_fields", [c for c in frame.columns if c not in POST_CONTACT]),
    ):
        data = frame.select(columns)
        out[setting] = {}
        for strategy in strategies:
            started = time.perf_counter()
            aucs, weights = [], []
            for train, test in splitter.split(np.zeros(len(y)), y):
                scorer = make_strategy(strategy).fit(data[train], y[train])
                aucs.append(roc_auc_score(y[test], scorer.predict_proba(data[test])[:, 1]))
                if hasattr(scorer, "weights_"):
                    weights.append({k: round(v, 3) for k, v in scorer.weights_.items()})
            out[setting][f"{strategy}_auc"] = round(float(np.mean(aucs)), 4)
            out[setting][f"{strategy}_fold_aucs"] = [round(a, 4) for a in aucs]
            out[setting][f"{strategy}_seconds"] = round(time.perf_counter() - started, 1)
            if weights:
                out[setting][f"{strategy}_weights_per_fold"] = weights
    out["all_fields"]["target_gradient_boosting"] = 0.984
    out["without_post_contact_fields"]["target_gradient_boosting"] = 0.875
    return out


def generated(n_contacts: int, strategies: list[str], seed: int = 0) -> dict:
    """Learned vs heuristic vs hidden truth on the most recent slice, and the learning curve."""
    from sklearn.metrics import log_loss, roc_auc_score

    from holocrm_core.ingest import ingest_export
    from holocrm_core.outcomes import build_outcome_dataset
    from holocrm_core.scoring import entity_rows, make_strategy, time_split, train_scorer
    from holocrm_core.scoring.calibration import quality
    from holocrm_core.synth import generate_export, load_truth

    work = Path(tempfile.mkdtemp(prefix="holocrm-bench-"))
    started = time.perf_counter()
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
    true_p = dict(zip(truth["leads"]["contact_id"], truth["leads"]["p_convert"], strict=True)) | dict(
        zip(truth["deals"]["deal_id"], truth["deals"]["p_win"], strict=True)
    )
    out: dict = {
        "contacts": n_contacts,
        "seed": seed,
        "prepare_seconds": round(time.perf_counter() - started, 1),
    }
    for entity in ("contact", "deal"):
        t0 = time.perf_counter()
        trained = train_scorer(dataset, entity)
        valid = trained.validation
        y = trained.y_validation
        oracle = [true_p[i] for i in valid["entity_id"].to_list()]
        nb = train_scorer(dataset, entity, strategy="naive_bayes")
        entry = {
            "outcomes_train": trained.train.height,
            "outcomes_recent_slice": valid.height,
            "learned": {k: round(v, 4) for k, v in trained.metrics.items()},
            "heuristic": {k: round(v, 4) for k, v in trained.heuristic_metrics.items()},
            "naive_bayes_auc": round(nb.metrics["auc"], 4),
            "true_probability": {k: round(v, 4) for k, v in quality(y, np.array(oracle)).items()},
            "train_seconds": round(time.perf_counter() - t0, 1),
        }
        from holocrm_core.scoring.calibration import ece_bootstrap, ece_noise_floor

        entry["ece_bootstrap"] = {
            k: round(v, 4) for k, v in ece_bootstrap(y, trained.validation_scores).items()
        }
        entry["ece_chance_level_p95"] = round(ece_noise_floor(trained.validation_scores), 4)
        # What a perfectly calibrated scorer shows on this many outcomes, by chance alone (median of simulations):
        # an ECE target below it is a coin flip even for the true probabilities.
        entry["ece_chance_level_median"] = round(ece_noise_floor(trained.validation_scores, quantile=0.5), 4)
        entry["true_probability_ece_bootstrap"] = {
            k: round(v, 4) for k, v in ece_bootstrap(y, np.array(oracle)).items()
        }
        entry["auc_gain_vs_heuristic"] = round(entry["learned"]["auc"] - entry["heuristic"]["auc"], 4)
        entry["auc_gap_to_truth"] = round(entry["true_probability"]["auc"] - entry["learned"]["auc"], 4)
        entry["targets_met"] = {
            "gain_vs_heuristic>=0.10": entry["auc_gain_vs_heuristic"] >= 0.10,
            "within_0.02_of_truth": entry["auc_gap_to_truth"] <= 0.02,
            "ece<=0.05": entry["learned"]["ece"] <= 0.05,
        }
        # Learning curve: the same recent slice, trained on the latest 1x, 2x, 4x closed outcomes.
        history, held_out = time_split(entity_rows(dataset, entity))
        y_held = held_out["label"].to_numpy()
        curve = []
        for share in (0.25, 0.5, 1.0):
            recent = history.tail(max(80, int(share * history.height)))
            scorer = make_strategy("neural").fit(recent, recent["label"].to_numpy())
            p = scorer.predict_proba(held_out)[:, 1]
            curve.append(
                {
                    "closed_outcomes": recent.height,
                    "held_out_log_loss": round(float(log_loss(y_held, p)), 4),
                    "held_out_auc": round(float(roc_auc_score(y_held, p)), 4),
                }
            )
        entry["learning_curve"] = curve
        # The other strategies on the same recent slice (the default strategy's figures are "learned" above).
        entry["other_strategies"] = {}
        for strategy in strategies:
            if strategy == trained.strategy:
                continue
            t0 = time.perf_counter()
            other = train_scorer(dataset, entity, strategy=strategy)
            m = other.metrics
            entry["other_strategies"][strategy] = {
                "auc": round(m["auc"], 4),
                "log_loss": round(m["log_loss"], 4),
                "ece": round(m["ece"], 4),
                "auc_gap_to_truth": round(entry["true_probability"]["auc"] - m["auc"], 4),
                "ece_bootstrap": {
                    k: round(v, 4) for k, v in ece_bootstrap(y, other.validation_scores).items()
                },
                "weights": getattr(other.scorer, "weights_", None),
                "train_seconds": round(time.perf_counter() - t0, 1),
            }
        out[entity] = entry
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=8000)
    parser.add_argument("--skip-synth", action="store_true")
    parser.add_argument("--skip-xedu", action="store_true")
    parser.add_argument(
        "--strategies",
        default="neural,gbm,blend",
        help="comma-separated scoring strategies to compare (holocrm_core.scoring.STRATEGIES)",
    )
    args = parser.parse_args()
    strategies = [s for s in args.strategies.split(",") if s]
    report: dict = {}
    if not args.skip_synth:
        report["generated"] = generated(args.contacts, strategies)
    if not args.skip_xedu:
        report["x_education_leads"] = x_education(strategies)
    report["load_average_1m"] = round(os.getloadavg()[0], 2)  # a shared machine: timings depend on it
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
