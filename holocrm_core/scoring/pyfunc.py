"""The scorer as one MLflow pyfunc: preprocessing (the fitted feature encoder) and model travel together.

``mlflow.pyfunc.load_model("models:/holocrm_lead_scorer@champion").predict(features)`` returns a frame with
``score`` and ``band`` for every row of a feature frame built by ``holocrm_core.outcomes``. Extra columns
are ignored and missing ones read as unknown, so a champion keeps scoring when the export gains a field.
"""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pandas as pd

from holocrm_core.scoring.calibration import band_for, band_thresholds


class ScorerModel(mlflow.pyfunc.PythonModel):
    """Wraps a fitted scoring strategy; ``unwrap_python_model().scorer`` gives it back for reasons."""

    def __init__(self, scorer, entity: str, strategy: str):
        self.scorer = scorer
        self.entity = entity
        self.strategy = strategy

    def score_one(self, record: dict) -> float:
        """Probability for one record (field -> value), without frames when the scorer has a fast path."""
        if hasattr(self.scorer, "score_record"):
            return self.scorer.score_record(record)
        import polars as pl

        return float(self.scorer.predict_proba(pl.DataFrame([record]))[0, 1])

    def predict(self, context, model_input, params=None):
        if (
            isinstance(model_input, pd.DataFrame)
            and len(model_input) == 1
            and hasattr(self.scorer, "score_record")
        ):
            scores = np.array([self.score_one(model_input.iloc[0].to_dict())])
        else:
            scores = self.scorer.predict_proba(model_input)[:, 1]
        thresholds = band_thresholds()
        return pd.DataFrame(
            {"score": np.asarray(scores, dtype=np.float64), "band": band_for(scores, thresholds)}
        )
