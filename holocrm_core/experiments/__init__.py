"""A/B experiments of strategies: definitions as data, sticky assignment, metrics, and the report.

``model`` (Experiment, Variant, ExperimentStore), ``assignment`` (Assigner, assign, exposure_key),
``metrics`` (METRICS by name, events from the field logs), ``stats`` (the estimators), ``report``
(analyse -> Report with a verdict in words, plot).
"""

from holocrm_core.experiments.assignment import Assigner, assign, bucket, exposure_key
from holocrm_core.experiments.metrics import METRICS, Metric, events_from_logs, unit_values
from holocrm_core.experiments.model import (
    STRATEGIES,
    UNITS,
    Experiment,
    ExperimentError,
    ExperimentStore,
    Variant,
)
from holocrm_core.experiments.report import Report, analyse, exposed_units, plot

__all__ = [
    "METRICS",
    "STRATEGIES",
    "UNITS",
    "Assigner",
    "Experiment",
    "ExperimentError",
    "ExperimentStore",
    "Metric",
    "Report",
    "Variant",
    "analyse",
    "assign",
    "bucket",
    "events_from_logs",
    "exposed_units",
    "exposure_key",
    "plot",
    "unit_values",
]
