"""The served scores against the generator's hidden truth, next to the weighted heuristic's.

Only for a generated sample export (its truth folder holds every lead's true conversion probability and
every deal's true win probability, as of the export for open records); the product never reads the truth to
decide anything. Figures over the open records that the served scorer scored (what a user sees):

- ``auc_vs_truth``: the AUC the scores would have against the outcomes drawn from the true probabilities,
  in expectation (each record counts as a conversion with weight p and as a loss with weight 1 - p), so no
  sampling noise is added;
- ``rank_correlation``: Spearman correlation of the scores with the true probabilities;
- ``hot_below_10pct``: how many records banded "hot" have a true probability under 10%.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

TRUTH_FILES = {
    "contact": ("leads.parquet", "contact_id", "p_convert"),
    "deal": ("deals.parquet", "deal_id", "p_win"),
}
SCORED = {"contact": "scored_leads", "deal": "scored_deals"}
NOT_FEATURES = ("score", "band", "reasons", "model_version", "scored_at")
MIN_COVERAGE = 0.9  # a truth that does not describe (almost) every scored record belongs to another export


def expected_auc(scores: np.ndarray, p_true: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    scores, p_true = np.asarray(scores, dtype=float), np.asarray(p_true, dtype=float)
    if len(scores) < 2 or np.ptp(p_true) == 0:
        return float("nan")
    y = np.r_[np.ones(len(scores)), np.zeros(len(scores))]
    return float(roc_auc_score(y, np.r_[scores, scores], sample_weight=np.r_[p_true, 1 - p_true]))


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def figures(scores: np.ndarray, p_true: np.ndarray, bands: np.ndarray | None = None) -> dict[str, float]:
    out = {
        "auc_vs_truth": round(expected_auc(scores, p_true), 4),
        "rank_correlation": round(_spearman(scores, p_true), 4),
        "score_sd": round(float(np.std(scores)), 4),
    }
    if bands is not None:
        hot = np.asarray(bands) == "hot"
        out["hot"] = int(hot.sum())
        out["hot_below_10pct"] = int((hot & (p_true < 0.10)).sum())
    return out


def served_vs_truth(warehouse, truth_dir: str | Path) -> dict[str, dict] | None:
    """Per entity, the served scorer's figures and the heuristic's on the same open records; None when
    there is no truth for this export."""
    from holocrm_core.registry.served import heuristic_scorer

    root = Path(truth_dir)
    out: dict[str, dict] = {}
    for entity, (file, id_column, p_column) in TRUTH_FILES.items():
        table = SCORED[entity]
        if not (root / file).exists() or not warehouse.exists(table):
            continue
        scored = warehouse.read(table)
        truth = pl.read_parquet(root / file).select(id_column, p_column)
        joined = scored.join(truth, on=id_column, how="inner")
        if not scored.height or joined.height < MIN_COVERAGE * scored.height:
            continue
        p_true = joined[p_column].to_numpy()
        features = joined.drop([c for c in (*NOT_FEATURES, p_column) if c in joined.columns])
        heuristic = heuristic_scorer(entity, warehouse).predict_proba(features)[:, 1]
        versions = scored["model_version"].unique().to_list() if "model_version" in scored.columns else []
        out[entity] = {
            "open_records": joined.height,
            "served": ", ".join(str(v) for v in versions) or "(unknown)",
            "served_figures": figures(joined["score"].to_numpy(), p_true, joined["band"].to_numpy()),
            "heuristic_figures": figures(heuristic, p_true),
        }
    return out or None


def summary_lines(report: dict[str, dict] | None) -> list[str]:
    """The run summary's lines: served vs heuristic against the hidden truth."""
    if not report:
        return []
    lines = []
    for entity, r in report.items():
        s, h = r["served_figures"], r["heuristic_figures"]
        noun = "open leads" if entity == "contact" else "open deals"
        lines.append(
            f"  {noun} ({r['open_records']}) scored by {r['served']}: AUC vs truth {s['auc_vs_truth']:.3f} "
            f"(heuristic {h['auc_vs_truth']:.3f}), rank correlation with the true probability "
            f"{s['rank_correlation']:.3f} (heuristic {h['rank_correlation']:.3f}), hot {s.get('hot', 0)} "
            f"of which {s.get('hot_below_10pct', 0)} truly under 10%"
        )
    return lines
