"""Policy evaluation and the ``holocrm_action_policy`` champion: train on older logs, prove on newer, gate.

``evaluate_candidate`` splits the usable action log by time (older rows train the candidate contextual
Thompson policy and the reward model, the newest ``holdout`` share evaluates it), estimates the candidate,
the current champion and the logging policy on the holdout with DM / IPS / SNIPS / DR / switch-DR and
bootstrap intervals, and applies ``ope.promotion_gate`` on DR. ``log_evaluation`` writes the MLflow run
(estimates, intervals, the regret plot estimated by the reward model), registers the version with its
verdict in the same call (tags ``holocrm.gate`` = passed | failed and ``holocrm.gate_reason``, the contract
the scoring models use) and moves ``champion`` only for a passed version; a failed one becomes
``challenger``. The registered state is the evaluated candidate updated with the holdout rows (the same
Bayesian update the API applies online), so it serves with everything the log knows.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from holocrm_core.decisions import ope
from holocrm_core.decisions.action_log import context_frame
from holocrm_core.decisions.actions import DEFAULT_ACTIONS, ActionSet, ContextEncoder
from holocrm_core.decisions.policies import ContextualThompson

# The tag contract is the registry's, defined once there.
from holocrm_core.registry.store import CHALLENGER, CHAMPION, FAILED, GATE_REASON_TAG, GATE_TAG, PASSED

log = logging.getLogger("holocrm.decisions")
POLICY_MODEL = "holocrm_action_policy"
MIN_ROWS = 200
BOOTSTRAP_DRAWS = 2_000_000  # resampled rewards held at once by on_policy_value (16 MB of indices)


@dataclass
class PolicyEvaluation:
    candidate: Any
    estimates: dict[str, dict[str, ope.Estimate]]  # policy -> estimator -> estimate
    decision: ope.GateDecision
    train_rows: int
    holdout_rows: int
    holdout_from: str
    champion_version: str | None
    regret_curves: dict[str, np.ndarray] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "promote": self.decision.promote,
            "reason": self.decision.reason,
            "train_rows": self.train_rows,
            "holdout_rows": self.holdout_rows,
            "holdout_from": self.holdout_from,
            "champion_version": self.champion_version,
            "estimates": {p: {e: est.as_dict() for e, est in by.items()} for p, by in self.estimates.items()},
        }


def evaluable(log: pl.DataFrame) -> pl.DataFrame:
    """Usable rows whose logging propensity is known (off-policy estimates divide by it)."""
    return log.filter(pl.col("usable") & pl.col("propensity").is_not_null()).sort("occurred_at", "action_id")


def evaluate_candidate(
    log: pl.DataFrame,
    champion=None,
    champion_version: str | None = None,
    actions: tuple[str, ...] | None = None,
    holdout: float = 0.3,
    seed: int = 0,
    n_bootstrap: int = 200,
    discount: float = 1.0,
    encoder: ContextEncoder | None = None,
) -> PolicyEvaluation:
    """Train a contextual Thompson candidate on older logs and estimate it, the champion and the logging
    policy on the newest ``holdout`` share; the gate decides on DR.

    ``encoder``: the context encoder fitted on the staged contacts (``ContextEncoder.fit`` of
    ``recommend.contact_contexts``); by default it is fitted on the log's own contexts. It is saved with the
    candidate, so serving encodes exactly what was evaluated."""
    rows = evaluable(log)
    if rows.height < MIN_ROWS:
        raise ValueError(
            f"{rows.height} usable logged actions with a known propensity; at least {MIN_ROWS} "
            "are needed to evaluate a policy off-policy"
        )
    names = ActionSet(actions or DEFAULT_ACTIONS)
    encoder = encoder or ContextEncoder.fit(context_frame(rows))
    cut = int(rows.height * (1.0 - holdout))
    train, test = rows[:cut], rows[cut:]
    x_train, x_test = encoder.encode(context_frame(train)), encoder.encode(context_frame(test))
    a_train, a_test = names.indices(train["action"].to_list()), names.indices(test["action"].to_list())
    r_train, r_test = train["reward"].to_numpy(), test["reward"].to_numpy()
    candidate = ContextualThompson(names, seed=seed, encoder=encoder, discount=discount)
    candidate.update(x_train, a_train, r_train)
    reward_model = ope.fit_reward_model(x_train, a_train, r_train, names, encoder=encoder)
    predicted = reward_model.expected_reward(x_test)[0]
    logs = ope.LoggedBandit(a_test, r_test, test["propensity"].to_numpy())
    targets = {"candidate": candidate.probabilities(x_test)}
    if champion is not None and list(champion.actions) == list(names):
        targets["champion"] = champion.probabilities(champion.encoder.encode(context_frame(test)))
    estimates = {
        name: ope.evaluate(logs, target, predicted, n_bootstrap=n_bootstrap, seed=seed)
        for name, target in targets.items()
    }
    estimates["logging"] = {"on_policy": on_policy_value(r_test, n_bootstrap, seed)}
    decision = ope.promotion_gate(
        estimates["candidate"]["dr"],
        estimates.get("champion", {}).get("dr"),
        estimates["logging"]["on_policy"],
        champion_version,
    )
    best = predicted.max(axis=1)
    curves = {name: np.cumsum(best - (target * predicted).sum(axis=1)) for name, target in targets.items()}
    candidate.update(x_test, a_test, r_test)  # serve with everything the log knows
    return PolicyEvaluation(
        candidate,
        estimates,
        decision,
        train.height,
        test.height,
        str(test["occurred_at"].min()),
        champion_version,
        curves,
    )


def on_policy_value(rewards: np.ndarray, n_bootstrap: int = 200, seed: int = 0) -> ope.Estimate:
    """The logging policy's value on its own logs: the mean reward, with a bootstrap interval."""
    rng = np.random.default_rng(seed)
    n = len(rewards)
    # the resamples in slices of rows (about 2M draws each, as ope.evaluate): the same draws in the same
    # order, so the same means as one (n_bootstrap, n) array, which at 1M contacts' 870k held-out actions
    # was 2.8 GB of indices and rewards
    chunk = max(1, min(n_bootstrap, BOOTSTRAP_DRAWS // max(n, 1)))
    boots = np.concatenate(
        [
            rewards[rng.integers(0, n, (min(chunk, n_bootstrap - done), n))].mean(axis=1)
            for done in range(0, n_bootstrap, chunk)
        ]
    )
    low, high = np.quantile(boots, [0.025, 0.975])
    return ope.Estimate("on_policy", float(rewards.mean()), float(low), float(high), float(n), n)


# -- MLflow --------------------------------------------------------------------------------------------------
def champion_info(model_name: str = POLICY_MODEL):
    from holocrm_core.registry import champion_version

    return champion_version(model_name, CHAMPION)


def load_champion_policy(model_name: str = POLICY_MODEL):
    """``(policy, version, gate reason)`` behind ``champion`` when that version passed its gate, else None."""
    import mlflow

    info = champion_info(model_name)
    if info is None or (info.tags or {}).get(GATE_TAG) != PASSED:
        return None
    try:
        model = mlflow.pyfunc.load_model(f"models:/{model_name}/{info.version}")
        policy = model.unwrap_python_model().policy
    except ValueError as exc:  # e.g. a policy saved before the context was learned from the data
        log.warning("%s v%s cannot be served: %s", model_name, info.version, exc)
        return None
    return policy, str(info.version), (info.tags or {}).get(GATE_REASON_TAG, "passed its gate")


@dataclass
class EvaluationRun:
    run_id: str
    run_url: str
    version: str | None
    alias: str | None
    promoted: bool
    reason: str


def _plots(evaluation: PolicyEvaluation) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = {}
    fig, ax = plt.subplots(figsize=(7, 4))
    labels, values, lows, highs = [], [], [], []
    for policy, by in evaluation.estimates.items():
        for name, est in by.items():
            labels.append(f"{policy}\n{name}")
            values.append(est.value)
            lows.append(est.value - est.low)
            highs.append(est.high - est.value)
    ax.errorbar(range(len(values)), values, yerr=[lows, highs], fmt="o", capsize=3)
    ax.set_xticks(range(len(values)), labels, fontsize=6, rotation=90)
    ax.set(ylabel="estimated success rate", title="Off-policy estimates on the newest logs (95% bootstrap)")
    fig.tight_layout()
    figures["estimates.png"] = fig
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curve in evaluation.regret_curves.items():
        ax.plot(np.arange(1, len(curve) + 1), curve, label=name)
    ax.set(
        xlabel="holdout round (time order)",
        ylabel="cumulative regret (reward model)",
        title="Regret vs the best action by the reward model",
    )
    ax.legend()
    figures["regret.png"] = fig
    return figures


def log_evaluation(
    evaluation: PolicyEvaluation, model_name: str = POLICY_MODEL, register: bool = True
) -> EvaluationRun:
    """MLflow run of one evaluation; register the candidate with its gate verdict; champion only if passed."""
    import matplotlib.pyplot as plt
    import mlflow

    from holocrm_core.decisions.pyfunc import STATE_ARTIFACT, PolicyModel
    from holocrm_core.registry import ensure_experiment, pip_requirements, run_url

    experiment_id = ensure_experiment(model_name)
    verdict = PASSED if evaluation.decision.promote else FAILED
    with mlflow.start_run(run_name="policy_evaluation") as run:
        url = run_url(experiment_id, run.info.run_id)
        mlflow.log_params(
            {
                "candidate": evaluation.candidate.name,
                "train_rows": evaluation.train_rows,
                "holdout_rows": evaluation.holdout_rows,
                "holdout_from": evaluation.holdout_from,
                "champion_version": evaluation.champion_version or "(none)",
                "actions": ",".join(evaluation.candidate.actions),
            }
        )
        metrics = {}
        for policy, by in evaluation.estimates.items():
            for name, est in by.items():
                metrics.update(
                    {
                        f"{policy}_{name}": est.value,
                        f"{policy}_{name}_low": est.low,
                        f"{policy}_{name}_high": est.high,
                        f"{policy}_{name}_ess": est.ess,
                    }
                )
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)})
        for name, figure in _plots(evaluation).items():
            mlflow.log_figure(figure, name)
            plt.close(figure)
        mlflow.log_dict({"decision": asdict(evaluation.decision), **evaluation.summary()}, "evaluation.json")
        mlflow.set_tags({GATE_TAG: verdict, GATE_REASON_TAG: evaluation.decision.reason[:500]})
        version, alias = None, None
        if register:
            with tempfile.TemporaryDirectory() as tmp:
                state_file = Path(tmp) / "policy_state.json"
                state_file.write_text(json.dumps(evaluation.candidate.state_dict()))
                info = mlflow.pyfunc.log_model(
                    name="policy",
                    python_model=PolicyModel(),
                    artifacts={STATE_ARTIFACT: str(state_file)},
                    pip_requirements=pip_requirements(),
                )
            registered = mlflow.register_model(
                info.model_uri,
                model_name,
                tags={GATE_TAG: verdict, GATE_REASON_TAG: evaluation.decision.reason[:500]},
            )
            version = str(registered.version)
            alias = CHAMPION if evaluation.decision.promote else CHALLENGER
            mlflow.MlflowClient().set_registered_model_alias(model_name, alias, version)
            mlflow.set_tag("registered_version", version)
    return EvaluationRun(
        run.info.run_id, url, version, alias, evaluation.decision.promote, evaluation.decision.reason
    )
