"""The semantic layer: metrics, dimensions and entity words defined once, as data (CRM defaults, overridable
per export under `semantic:` in the mapping file), and the one way to compute a metric.

from holocrm_core.metrics import SemanticLayer, compute_metric
layer = SemanticLayer.load("mapping.yaml")      # or SemanticLayer.default()
compute_metric(layer, "win_rate", deals, stages).value
"""

from holocrm_core.metrics.compute import MetricResult, StageSets, compute_metric, with_last_touch
from holocrm_core.metrics.layer import (
    Dimension,
    EntityWord,
    Metric,
    SemanticLayer,
    SemanticLayerError,
)

__all__ = [
    "Dimension",
    "EntityWord",
    "Metric",
    "MetricResult",
    "SemanticLayer",
    "SemanticLayerError",
    "StageSets",
    "compute_metric",
    "with_last_touch",
]
