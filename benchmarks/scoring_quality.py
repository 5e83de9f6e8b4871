"""Quality of the learned lead and deal scores: generated data (vs heuristic and hidden truth), learning
curve, and the public x_education leads (5-fold stratified CV, random_state 0). Prints one JSON object.

    .venv/bin/python benchmarks/scoring_quality.py [--contacts 8000] [--skip-synth] [--skip-xedu]

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


def x_education(folds: int = 5) -> dict:
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
    out: dict = {"rows": len(y), "converted_share": round(float(y.mean()), 4), "protocol": f"{folds}-fold stratified, random_state 0"}
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    for setting, columns in (
        ("all_fields", frame.columns),
        ("without_post_contact_fields", [c for c in frame.columns if c not in POST_CONTACT]),
    ):
        data = frame.select(columns)
        started = time.perf_counter()
        aucs = []
        for train, test in splitter.split(np.zeros(len(y)), y):
            scorer = make_strategy("neural").fit(data[train], y[train])
            aucs.append(roc_auc_score(y[test], scorer.predict_proba(data[test])[:, 1]))
        out[setting] = {
            "neural_auc": round(float(np.mean(aucs)), 4),
            "fold_aucs": [round(a, 4) for a in aucs],
            "seconds": round(time.perf_counter() - started, 1),
        }
    out["all_fields"]["target_gradient_boosting"] = 0.984
    out["without_post_contact_fields"]["target_gradient_boosting"] = 0.875
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=8000)
    parser.add_argument("--skip-synth", action="store_true")
    parser.add_argument("--skip-xedu", action="store_true")
    args = parser.parse_args()
    report: dict = {}
    if not args.skip_xedu:
        report["x_education_leads"] = x_education()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
