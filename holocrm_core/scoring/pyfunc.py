"""The scorer as one MLflow pyfunc: preprocessing (the fitted feature encoder) and model travel together.

``mlflow.pyfunc.load_model("models:/holocrm_lead_scorer@champion").predict(features)`` returns a frame with
``score`` and ``band`` for every row of a feature frame built by ``holocrm_core.outcomes``. Extra columns
are ignored and missing ones read as unknown, so a champion keeps scoring when the export gains a field.
"""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pandas as pd

from holocrm_core.scoring.calibration import band_for


class ScorerModel(mlflow.pyfunc.PythonModel):
    """Wraps a fitted scoring strategy; ``unwrap_python_model().scorer`` gives it back for reasons."""

    def __init__(self, scorer, entity: str, strategy: str):
        self.scorer = scorer
        self.entity = entity
        self.strategy = strategy

    def predict(self, context, model_input, params=None):
        scores = self.scorer.predict_proba(model_input)[:, 1]
        thresholds = getattr(self.scorer, "band_thresholds_", (0.6, 0.3))
        return pd.DataFrame({"score": np.asarray(scores, dtype=np.float64), "band": band_for(scores, thresholds)})
