"""Embedding drift: how far the centroid moved, and whether a classifier can tell the two sets apart.

A centroid shift alone misses a change of spread or of mixture at the same mean; a domain classifier
(logistic regression, reference vs current, cross-validated ROC AUC) sees any difference a linear model can
find. AUC 0.5 means indistinguishable; Evidently's default calls 0.55 drift. Small sets give noisy AUCs, so
the AUC must also clear 0.5 by three of its standard errors (Hanley-McNeil) before it counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from holocrm_core.monitoring._drift import BLOCK, OK, SKIPPED, WARN, ColumnDrift


@dataclass(frozen=True)
class EmbeddingThresholds:
    auc_warn: float = 0.55
    auc_block: float = 0.75
    max_rows: int = 5_000  # per side for the classifier: its AUC is stable long before that
    min_rows: int = 30


def _auc_standard_error(n_ref: int, n_cur: int, auc: float = 0.5) -> float:
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_cur - 1) * (q1 - auc * auc) + (n_ref - 1) * (q2 - auc * auc)) / (
        n_ref * n_cur
    )
    return float(np.sqrt(max(var, 1e-12)))


def embedding_drift(
    name: str,
    reference: np.ndarray,
    current: np.ndarray,
    thresholds: EmbeddingThresholds | None = None,
    seed: int = 0,
) -> ColumnDrift:
    """Centroid shift (cosine distance between the means, and in reference spreads) + domain classifier."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import cross_val_predict

    t = thresholds or EmbeddingThresholds()
    ref = np.asarray(reference, dtype=np.float32)
    cur = np.asarray(current, dtype=np.float32)
    if ref.ndim != 2 or cur.ndim != 2 or ref.shape[1] != cur.shape[1]:
        raise ValueError(
            f"{name}: embeddings must be 2-d with the same width, got {ref.shape} and {cur.shape}"
        )
    if len(ref) < t.min_rows or len(cur) < t.min_rows:
        return ColumnDrift(
            name,
            "embedding",
            SKIPPED,
            f"{name}: too few vectors to judge ({len(ref)} in the reference, {len(cur)} now)",
            reference_rows=len(ref),
            current_rows=len(cur),
        )
    rng = np.random.default_rng(seed)
    r = ref[rng.permutation(len(ref))[: t.max_rows]]
    c = cur[rng.permutation(len(cur))[: t.max_rows]]
    mr, mc = r.mean(axis=0), c.mean(axis=0)
    cosine = 1.0 - float(mr @ mc / (np.linalg.norm(mr) * np.linalg.norm(mc) + 1e-12))
    spread = float(np.sqrt(((r - mr) ** 2).sum(axis=1).mean())) or 1.0
    shift = float(np.linalg.norm(mc - mr)) / spread

    x = np.vstack([r, c])
    y = np.r_[np.zeros(len(r)), np.ones(len(c))]
    folds = int(min(5, len(r), len(c)))
    p = cross_val_predict(LogisticRegression(C=1.0, max_iter=500), x, y, cv=folds, method="predict_proba")[
        :, 1
    ]
    auc = float(roc_auc_score(y, p))
    floor = 0.5 + 3 * _auc_standard_error(len(r), len(c))
    severity = OK
    if auc >= max(t.auc_warn, floor):
        severity = BLOCK if auc >= t.auc_block else WARN
    verdict = {
        OK: "stable",
        WARN: f"warn: AUC >= {t.auc_warn}",
        BLOCK: f"block: AUC >= {t.auc_block}",
    }[severity]
    words = (
        f"{name}: centroid moved {shift:.2f} reference spreads (cosine distance {cosine:.3f}); a classifier "
        f"tells now from then with AUC {auc:.2f} ({verdict})"
    )
    return ColumnDrift(
        name, "embedding", severity, words, None, shift, "centroid_shift", auc, None, len(ref), len(cur)
    )
