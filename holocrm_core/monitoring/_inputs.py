"""Drift of a model's inputs and outputs: its training window against the records it scores now.

``model_drift`` judges every feature the two frames share (scalar columns by ``frame_drift``, embedding
columns ``emb_*`` by ``embedding_drift``) and the score when both carry one. ``promotion_drift`` is the
function a gate calls before it moves the champion alias: a blocking drift between what the champion
learned from and what the candidate learned from means the world moved under the gate's own figures, so
the alias stays where it is (the model in use keeps serving; promotion waits for a person or for data that
settles). It never stops serving.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from holocrm_core.monitoring._drift import DriftReport, DriftThresholds, frame_drift
from holocrm_core.monitoring._embedding import embedding_drift
from holocrm_core.outcomes import OUTCOME_COLUMNS

# What the outcome dataset carries beside the features (its own columns, then what scoring adds): labels,
# provenance, times. Never judged as inputs.
NOT_INPUTS = (*OUTCOME_COLUMNS, "as_of", "scored_at", "model_version", "band", "reasons")


def _vectors(series: pl.Series) -> np.ndarray:
    rows = [v for v in series.to_list() if v is not None]
    return np.asarray(rows, dtype=np.float32) if rows else np.empty((0, 0), dtype=np.float32)


def model_drift(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    name: str,
    thresholds: DriftThresholds | None = None,
    exclude: tuple[str, ...] = (),
) -> DriftReport:
    """Every shared input column (and ``score``) of a model, training window vs now, in one report."""
    skip = set(NOT_INPUTS) | set(exclude)
    shared = [c for c in reference.columns if c in current.columns and c not in skip]
    embedded = [c for c in shared if c.startswith("emb_")]
    scalar = [c for c in shared if c not in embedded and not c.startswith("text_")]
    report = frame_drift(reference, current, name=name, columns=scalar, thresholds=thresholds)
    extra = []
    for column in embedded:
        ref, cur = _vectors(reference[column]), _vectors(current[column])
        if ref.ndim == 2 and cur.ndim == 2 and ref.shape[1] == cur.shape[1] and ref.size and cur.size:
            extra.append(embedding_drift(column, ref, cur))
    return DriftReport(name, report.columns + tuple(extra), report.thresholds)


def promotion_drift(
    champion_training: pl.DataFrame,
    candidate_training: pl.DataFrame,
    name: str = "promotion",
    thresholds: DriftThresholds | None = None,
) -> DriftReport:
    """For a gate: the rows the champion learned from against the rows the candidate learned from.

    Both are outcome-dataset snapshots of decided records, so the comparison is like for like (records
    still open differ from decided ones by construction and would block every promotion). When
    ``report.blocking`` (and the data set as a whole moved: ``registry.evidence.drift_since``), keep the
    champion alias where it is and put ``report.summary()`` in the gate
    reason: the newest outcomes come from a world the gate's validation slice cannot vouch for, so a person
    looks first; the champion keeps serving. Thresholds default to ``DriftThresholds.from_env()``.
    """
    return model_drift(champion_training, candidate_training, name, thresholds or DriftThresholds.from_env())
