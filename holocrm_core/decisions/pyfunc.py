"""A decision policy as an MLflow pyfunc: the policy's JSON state is the artifact, ``predict`` gives P(action).

The state file (``policy_state.json``) is what ``Policy.state_dict()`` returns, so a loaded champion is the
same object the pipeline evaluated: ``unwrap_python_model().policy``. ``predict`` takes a frame of decision
contexts (the encoder's columns) and returns one ``p_<action>`` column per action.
"""

from __future__ import annotations

import json

import mlflow.pyfunc
import pandas as pd
import polars as pl

STATE_ARTIFACT = "policy_state"


class PolicyModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        from holocrm_core.decisions.policies import policy_from_state

        with open(context.artifacts[STATE_ARTIFACT]) as fh:
            self.policy = policy_from_state(json.load(fh))

    def predict(self, context, model_input, params=None):
        frame = (
            pl.from_pandas(model_input)
            if isinstance(model_input, pd.DataFrame)
            else pl.DataFrame(model_input)
        )
        probabilities = self.policy.probabilities(self.policy.encoder.encode(frame))
        return pd.DataFrame(probabilities, columns=[f"p_{a}" for a in self.policy.actions])
