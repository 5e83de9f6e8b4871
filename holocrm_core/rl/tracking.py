"""MLflow for the outreach policy: the training run, its evaluation, the registered pyfunc, the gate.

One run of the ``holocrm_outreach_policy`` experiment per training: PPO and world settings as parameters,
the learning curve (mean return and deal value per rollout, by timestep), every policy's evaluation on
held-out episodes in the simulator and (generated data) the true world, the off-policy check, the
simulator's calibration table and plots. The policy is registered as ``holocrm_outreach_policy``; the
version gets the tag ``holocrm.gate`` (``passed`` / ``failed``, with the reason) first, and the
``champion`` alias moves only after a passed gate. The industry vocabulary the policy's input was encoded
with travels with it: an ``industries`` artifact of the pyfunc (read back as ``OutreachPolicyModel.industries``)
and the version tag ``holocrm.rl.industries`` (JSON), so serving encodes a contact the way training did.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from holocrm_core.registry import CHAMPION, GATE_TAG, ensure_experiment, pip_requirements, run_url

POLICY_MODEL = "holocrm_outreach_policy"
INDUSTRIES_TAG = "holocrm.rl.industries"  # JSON list: the industry vocabulary of the policy's input
INDUSTRIES_ARTIFACT = "industries"

try:
    import mlflow.pyfunc

    _PythonModel = mlflow.pyfunc.PythonModel
except ImportError:  # pragma: no cover - mlflow is a dependency; this keeps the module importable without it
    _PythonModel = object


class OutreachPolicyModel(_PythonModel):
    """Pyfunc: the policy input columns (``obs_0`` ...) in, action probabilities and the decision out.

    ``industries``: the vocabulary the input's industry slots mean (None for a policy logged before the
    vocabulary was logged with it).
    """

    industries: tuple[str, ...] | None = None

    def load_context(self, context):
        from stable_baselines3 import PPO

        self.model = PPO.load(context.artifacts["ppo"], device="cpu")
        path = context.artifacts.get(INDUSTRIES_ARTIFACT)
        self.industries = tuple(json.loads(Path(path).read_text())) if path else None

    def predict(self, context, model_input, params=None):
        from holocrm_core.rl.train import decide

        columns = sorted(
            (c for c in model_input.columns if str(c).startswith("obs_")), key=lambda c: int(c[4:])
        )
        decisions, probs = decide(self.model, model_input[columns].to_numpy(np.float32))
        from holocrm_core.rl.world import ACTIONS

        out = pd.DataFrame(probs, columns=[f"p_{a}" for a in ACTIONS])
        out["action"] = np.array(ACTIONS)[decisions.actions]
        out["propensity"] = decisions.propensity
        out["confidence"] = decisions.confidence
        return out


@dataclass
class PolicyRegistration:
    run_id: str
    run_url: str
    version: str | None
    promoted: bool
    gate: str
    reason: str


def _plots(training, judgement) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = {}
    if training.curve:
        fig, ax = plt.subplots(figsize=(6, 4))
        steps = [c["timesteps"] for c in training.curve]
        ax.plot(steps, [c["mean_value_closed"] for c in training.curve], label="deal value closed / episode")
        ax.plot(steps, [c["mean_return"] for c in training.curve], label="return / episode")
        ax.set(xlabel="timesteps", title="PPO in the fitted simulator")
        ax.legend()
        figures["learning_curve.png"] = fig
    rows = judgement.true_world or judgement.simulated
    fig, ax = plt.subplots(figsize=(7, 4))
    names = [r["policy"] for r in rows]
    means = np.array([r["value_closed"]["mean"] for r in rows])
    errors = np.array(
        [
            [
                r["value_closed"]["mean"] - r["value_closed"]["low"],
                r["value_closed"]["high"] - r["value_closed"]["mean"],
            ]
            for r in rows
        ]
    ).T
    ax.bar(names, means, yerr=errors, capsize=3)
    ax.set(
        ylabel="deal value closed per episode (mean deal = 1)",
        title="held-out episodes, " + ("TRUE world" if judgement.true_world else "simulator"),
    )
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    figures["comparison.png"] = fig
    return figures


def _flat_metrics(judgement) -> dict[str, float]:
    metrics = {}
    for world, rows in (("sim", judgement.simulated), ("true", judgement.true_world or [])):
        for row in rows:
            metrics[f"{world}_{row['policy']}_value_closed"] = row["value_closed"]["mean"]
            metrics[f"{world}_{row['policy']}_win_rate"] = row["win_rate"]
    gains = judgement.gains or {}
    if "gain_vs_best_heuristic_true" in gains:
        metrics["true_gain_vs_best_heuristic"] = gains["gain_vs_best_heuristic_true"]["mean"]
        metrics["true_gain_vs_best_heuristic_low"] = gains["gain_vs_best_heuristic_true"]["low"]
        metrics["true_gap_to_oracle"] = gains["gap_to_oracle_true"]["mean"]
    if judgement.off_policy is not None:
        metrics["dr_candidate"] = judgement.off_policy.candidate.value
        metrics["dr_logging"] = judgement.off_policy.logging.value
    if judgement.calibration_max_error is not None:
        metrics["simulator_calibration_max_error"] = judgement.calibration_max_error
    return {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}


def save_policy_artifacts(training, folder: Path) -> dict[str, str]:
    """The pyfunc's artifacts written into ``folder``: the PPO policy and its industry vocabulary."""
    path, vocabulary = folder / "ppo.zip", folder / "industries.json"
    training.model.save(path)
    vocabulary.write_text(json.dumps(list(training.industries)))
    return {"ppo": str(path), INDUSTRIES_ARTIFACT: str(vocabulary)}


def log_outreach_policy(
    training, judgement, params: dict, calibration=None, register: bool = True
) -> PolicyRegistration:
    """Log the run, register the policy, tag the gate, and move ``champion`` only when it passed."""
    import matplotlib.pyplot as plt
    import mlflow

    experiment_id = ensure_experiment(POLICY_MODEL)
    with mlflow.start_run(run_name="ppo-outreach") as run:
        url = run_url(experiment_id, run.info.run_id)
        mlflow.log_params(
            {k: (json.dumps(v) if isinstance(v, (list, dict, tuple)) else v) for k, v in params.items()}
        )
        for point in training.curve:
            mlflow.log_metrics(
                {
                    "curve_mean_return": point["mean_return"],
                    "curve_mean_value_closed": point["mean_value_closed"],
                },
                step=point["timesteps"],
            )
        mlflow.log_metrics(_flat_metrics(judgement))
        mlflow.log_dict(judgement.as_dict(), "comparison.json")
        if calibration is not None:
            mlflow.log_text(calibration.write_csv(), "simulator_calibration.csv")
        for name, figure in _plots(training, judgement).items():
            mlflow.log_figure(figure, name)
            plt.close(figure)
        gate = "passed" if judgement.promote else "failed"
        mlflow.set_tags(
            {
                GATE_TAG: gate,
                "promotion_reason": judgement.reason[:500],
                "stopped_because": training.stopped_because,
                INDUSTRIES_TAG: json.dumps(list(training.industries)),
            }
        )
        version = None
        if register:
            with tempfile.TemporaryDirectory() as tmp:
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=OutreachPolicyModel(),
                    artifacts=save_policy_artifacts(training, Path(tmp)),
                    pip_requirements=pip_requirements() + ["stable-baselines3", "gymnasium"],
                    registered_model_name=POLICY_MODEL,
                )
            version = str(info.registered_model_version)
            client = mlflow.MlflowClient()
            # The tag contract: the gate's verdict is on the version before any alias moves.
            client.set_model_version_tag(
                POLICY_MODEL, version, INDUSTRIES_TAG, json.dumps(list(training.industries))
            )
            client.set_model_version_tag(POLICY_MODEL, version, GATE_TAG, gate)
            client.set_model_version_tag(POLICY_MODEL, version, "promotion_reason", judgement.reason[:500])
            if judgement.promote:
                client.set_registered_model_alias(POLICY_MODEL, CHAMPION, version)
            mlflow.set_tag("registered_version", version)
    return PolicyRegistration(
        run.info.run_id, url, version, judgement.promote and version is not None, gate, judgement.reason
    )
