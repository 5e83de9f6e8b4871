"""Knowing when the world moves: drift of the data, decay of the champions, freshness of the assets.

``frame_drift`` compares what a model trained on with what it scores now, column by column;
``embedding_drift`` does the same for vectors; ``judge_scorer`` / ``judge_policy`` re-judge a champion on
the outcomes after its promotion, ``estimated_performance`` without them; ``asset_freshness`` says how old
each asset is. ``promotion_drift`` is what a gate calls before moving the champion alias. Every answer
carries its verdict in words.
"""

from holocrm_core.monitoring._decay import (
    DecayThresholds,
    Estimate,
    RewardDecay,
    ScoreDecay,
    estimated_performance,
    judge_policy,
    judge_scorer,
)
from holocrm_core.monitoring._drift import (
    BLOCK,
    OK,
    SKIPPED,
    WARN,
    ColumnDrift,
    DriftReport,
    DriftThresholds,
    categorical_drift,
    frame_drift,
    numeric_drift,
    psi,
)
from holocrm_core.monitoring._embedding import EmbeddingThresholds, embedding_drift
from holocrm_core.monitoring._freshness import (
    POLICIES,
    Freshness,
    FreshnessPolicy,
    asset_freshness,
    policy_for,
)
from holocrm_core.monitoring._inputs import NOT_INPUTS, model_drift, promotion_drift
from holocrm_core.monitoring._watch import (
    Champion,
    MonitoringReport,
    monitoring_dir,
    monitoring_store,
    read_state,
    scorer_decay,
    served_champions,
    take_reference,
    watch,
    write_state,
)

__all__ = [
    "Champion",
    "MonitoringReport",
    "monitoring_dir",
    "monitoring_store",
    "read_state",
    "scorer_decay",
    "served_champions",
    "take_reference",
    "watch",
    "write_state",
    "BLOCK",
    "OK",
    "POLICIES",
    "SKIPPED",
    "WARN",
    "ColumnDrift",
    "DecayThresholds",
    "DriftReport",
    "DriftThresholds",
    "EmbeddingThresholds",
    "Estimate",
    "Freshness",
    "FreshnessPolicy",
    "NOT_INPUTS",
    "RewardDecay",
    "ScoreDecay",
    "asset_freshness",
    "categorical_drift",
    "embedding_drift",
    "estimated_performance",
    "frame_drift",
    "judge_policy",
    "judge_scorer",
    "model_drift",
    "numeric_drift",
    "policy_for",
    "promotion_drift",
    "psi",
]
