"""A training round in MLflow: the run, the gate, the registration of what is served, one verdict line.

``log_training`` logs a ``TrainingOutcome`` as a run of the experiment named after the model
(``holocrm_lead_scorer`` / ``holocrm_deal_scorer``): parameters, the guards' findings, every candidate's
figures per rolling time fold (``selection.json``), newest-fold quality of the candidate, the heuristic, the
plain logistic regression and the champion (on rows it never saw), ROC / calibration / lift plots. Then the
gate (``holocrm_core.registry.gate``) decides what is served, *before* any version exists:

- the candidate is always registered with its verdict (tags ``holocrm.gate`` = passed | failed, the reason,
  the verdict line, its training cutoff and recipe); when it is served it gets the ``champion`` alias,
  recalibrated on the newest slice when the gate said so;
- when the plain logistic regression is served instead, it is refitted on every outcome and registered as
  its own version with the ``champion`` alias;
- when the champion stays, the alias does not move; when the heuristic is served, the alias is removed and a
  champion that failed its checks is tagged failed with the reason.

The verdict line is written on the run, the versions and the registered model (``holocrm.verdict``): the
resolver (``holocrm_core.registry.served``), the CLI, ``/health``, the Dagster check and the run summary all
read that line. A run killed part-way registers nothing (models are logged to the run first, registered
last).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from holocrm_core.registry import gate as gate_mod
from holocrm_core.registry.evidence import gate_evidence, trained_until
from holocrm_core.registry.store import (
    CHALLENGER,
    CHAMPION,
    FAILED,
    GATE_REASON_TAG,
    GATE_TAG,
    MODEL_NAMES,
    PASSED,
    RECIPE_TAG,
    ROLE_TAG,
    SERVED_ANYWAY,
    SERVED_TAG,
    TRAINED_UNTIL_TAG,
    VERDICT_TAG,
    champion_version,
    ensure_experiment,
    pip_requirements,
    run_url,
)


@dataclass
class RegistrationResult:
    model_name: str
    run_id: str
    run_url: str
    experiment_id: str
    version: str | None  # the candidate's registered version (None below the minimum data)
    alias: str | None  # the candidate's alias: champion when it is served, else challenger
    promoted: bool  # the candidate is served
    verdict: gate_mod.Verdict | None
    message: str  # the verdict line (or the minimum-data message)
    served_version: str | None = None  # the registered version served now (None: the heuristic)
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def gate_passed(self) -> bool:
        return self.verdict is not None and self.verdict.passed


def _plots(y: np.ndarray, curves: dict[str, np.ndarray]) -> dict[str, object]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    figures = {}
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, p in curves.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, most recent slice")
    ax.legend()
    figures["roc.png"] = fig

    fig, ax = plt.subplots(figsize=(5, 5))
    for name, p in curves.items():
        order = np.argsort(p)
        chunks = [c for c in np.array_split(order, 10) if len(c)]
        ax.plot([p[c].mean() for c in chunks], [y[c].mean() for c in chunks], "o-", label=name)
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set(xlabel="predicted probability", ylabel="observed rate", title="Calibration (deciles)")
    ax.legend()
    figures["calibration.png"] = fig

    fig, ax = plt.subplots(figsize=(5, 5))
    base = y.mean() if len(y) else 1.0
    for name, p in curves.items():
        order = np.argsort(-p, kind="stable")
        shares = np.arange(1, len(y) + 1) / len(y)
        lift = np.cumsum(y[order]) / np.arange(1, len(y) + 1) / (base or 1.0)
        ax.plot(shares, lift, label=name)
    ax.axhline(1.0, color="k", ls=":", lw=1)
    ax.set(xlabel="share of records, best scored first", ylabel="lift", title="Cumulative lift")
    ax.legend()
    figures["lift.png"] = fig
    return figures


def _scorer_params(scorer) -> dict:
    try:
        return {k: str(v) for k, v in scorer.get_params().items()}
    except AttributeError:
        return {}


def _finite(metrics: dict) -> dict:
    return {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}


def served_model(outcome, role: str, recalibrate: bool):
    """The model a verdict serves, fitted on every outcome: the candidate's final scorer, or the plain
    logistic regression; with a Platt map fitted on the newest slice when the gate recalibrated it."""
    import polars as pl

    from holocrm_core.scoring.base import as_polars
    from holocrm_core.scoring.calibration import PlattScaler
    from holocrm_core.scoring.selection import RecalibratedScorer, make_candidate

    name = outcome.strategy if role == gate_mod.CANDIDATE else "logistic"
    rows = pl.concat([outcome.train, outcome.validation], how="diagonal_relaxed")
    y = rows["label"].to_numpy().astype(int)
    selection = outcome.selection
    if name == outcome.strategy:
        model = outcome.scorer
        if recalibrate and isinstance(model, RecalibratedScorer):
            model = model.scorer  # the newest-slice map replaces the previous-slice one
    else:
        model = make_candidate(name).fit(rows, y)
    if not recalibrate:
        if name != outcome.strategy and selection is not None and name in selection.candidates:
            result = selection.candidates[name]
            if result.recalibration_helps and result.newest_logits is not None:
                platt = PlattScaler().fit(result.newest_logits, outcome.y_validation)
                model = RecalibratedScorer(model, platt)
                model._finish_fit(as_polars(rows))
        return model, name
    evidence_logits = None
    if selection is not None and name in selection.candidates:
        evidence_logits = selection.candidates[name].newest_logits
    if evidence_logits is None:
        from holocrm_core.registry.evidence import _fold_scores

        _, evidence_logits = _fold_scores(outcome, name)
    platt = PlattScaler().fit(evidence_logits, outcome.y_validation)
    wrapped = RecalibratedScorer(model, platt)
    wrapped._finish_fit(as_polars(rows))
    return wrapped, name


def _register(outcome, model, strategy: str, model_name: str, tags: dict, alias: str, tag: str) -> str:
    import mlflow

    from holocrm_core.scoring.pyfunc import ScorerModel

    info = mlflow.pyfunc.log_model(
        name=tag,
        python_model=ScorerModel(model, outcome.entity, strategy),
        pip_requirements=pip_requirements(),
    )
    registered = mlflow.register_model(info.model_uri, model_name, tags=tags)
    version = str(registered.version)
    mlflow.MlflowClient().set_registered_model_alias(model_name, alias, version)
    return version


def _record_verdict(client, model_name: str, line: str, served_version: str | None) -> None:
    """The verdict line on the registered model: what the resolver (and so every door) reads."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(model_name)
    except MlflowException:
        client.create_registered_model(model_name)
    client.set_registered_model_tag(model_name, VERDICT_TAG, line[:5000])
    client.set_registered_model_tag(model_name, SERVED_TAG, served_version or "heuristic")


def log_training(outcome, model_name: str | None = None, register: bool = True) -> RegistrationResult:
    """Log a ``TrainingOutcome`` as an MLflow run, gate it, register what is served with the verdict line.

    Below the minimum-data rule nothing is registered: the run records the heuristic's figures and the
    message, and what was served stays served (the champion, else the heuristic).
    """
    import matplotlib.pyplot as plt
    import mlflow

    model_name = model_name or MODEL_NAMES[outcome.entity]
    experiment_id = ensure_experiment(model_name)
    y = outcome.y_validation if len(outcome.validation) else np.array([], dtype=int)
    client = mlflow.MlflowClient()
    with mlflow.start_run(run_name=f"{outcome.entity}-{outcome.strategy}") as run:
        url = run_url(experiment_id, run.info.run_id)
        cutoff = outcome.validation["outcome_at"].min() if len(outcome.validation) else None
        mlflow.log_params(
            {
                "entity": outcome.entity,
                "strategy": outcome.strategy,
                "train_rows": len(outcome.train),
                "validation_rows": len(outcome.validation),
                "positives": outcome.enough_data.positives,
                "negatives": outcome.enough_data.negatives,
                "undated_outcomes": outcome.undated,
                "validation_from": str(cutoff),
                "excluded_fields": ", ".join(outcome.excluded_fields)[:500] or "(none)",
                **{f"scorer_{k}": v[:500] for k, v in _scorer_params(outcome.scorer).items()},
            }
        )
        mlflow.set_tag("minimum_data", outcome.enough_data.message)
        if outcome.guard is not None:
            mlflow.set_tag("guards", outcome.guard.summary()[:5000])
            mlflow.log_dict(
                {
                    "excluded": [asdict(e) for e in outcome.guard.excluded],
                    "adversarial_auc": outcome.guard.adversarial_auc,
                    "level": outcome.guard.level,
                    "separating": outcome.guard.separating,
                },
                "guards.json",
            )
        if outcome.selection is not None:
            mlflow.log_dict(outcome.selection.summary(), "selection.json")
        metrics = {f"heuristic_{k}": v for k, v in outcome.heuristic_metrics.items()}
        metrics.update({f"logistic_{k}": v for k, v in outcome.logistic_metrics.items()})
        if outcome.guard is not None and outcome.guard.adversarial_auc is not None:
            metrics["adversarial_auc"] = outcome.guard.adversarial_auc
        if not outcome.enough_data.enough or (outcome.selection is None and not outcome.learned):
            mlflow.log_metrics(_finite(metrics))
            mlflow.set_tag("fallback", "heuristic")
            if register and champion_version(model_name) is None:
                _record_verdict(
                    client,
                    model_name,
                    f"{model_name}: serving the weighted heuristic, gate not run: "
                    f"{' '.join(outcome.enough_data.message.split())}",
                    None,
                )
            return RegistrationResult(
                model_name,
                run.info.run_id,
                url,
                experiment_id,
                None,
                None,
                False,
                None,
                outcome.enough_data.message,
                None,
                metrics,
            )
        metrics.update(outcome.metrics)
        heuristic_lift = outcome.heuristic_metrics.get("top_decile_lift", float("nan"))
        metrics["lift_vs_heuristic"] = (
            outcome.metrics["top_decile_lift"] / heuristic_lift if heuristic_lift else float("nan")
        )
        metrics["auc_gain_vs_heuristic"] = outcome.metrics["auc"] - outcome.heuristic_metrics.get(
            "auc", float("nan")
        )
        evidence = gate_evidence(outcome, model_name)
        verdict = gate_mod.judge(evidence)
        metrics.update({f"gate_{k}": v for k, v in verdict.figures.items()})
        if verdict.figures.get("champion_auc") is not None:
            metrics["champion_auc"] = verdict.figures["champion_auc"]
        curves = {outcome.strategy: evidence.candidate_scores}
        if evidence.logistic_scores is not None and outcome.strategy != "logistic":
            curves["logistic"] = evidence.logistic_scores
        if evidence.heuristic_scores is not None:
            curves["heuristic"] = evidence.heuristic_scores
        mlflow.log_metrics(_finite(metrics))
        if len(np.unique(y)) == 2 and all(len(v) == len(y) for v in curves.values()):
            for name, figure in _plots(y, curves).items():
                mlflow.log_figure(figure, name)
                plt.close(figure)

        previous = champion_version(model_name)
        candidate_served = verdict.served_role == gate_mod.CANDIDATE or (
            verdict.served_role == gate_mod.LOGISTIC and outcome.strategy == "logistic"
        )
        version = served_version = None
        line = verdict.line(model_name)
        if register:
            # Logged to the run first, registered last with its verdict: a run killed before this point
            # leaves no registered version, and no version ever exists without its gate tag.
            import polars as pl

            every_outcome = pl.concat([outcome.train, outcome.validation], how="diagonal_relaxed")
            if candidate_served:
                model, _ = served_model(outcome, gate_mod.CANDIDATE, verdict.recalibrate)
            else:
                model = outcome.scorer
            learned = outcome.strategy != "heuristic"  # the heuristic itself is never registered
            servable = PASSED if verdict.passed else SERVED_ANYWAY
            tags = {
                TRAINED_UNTIL_TAG: trained_until(every_outcome) or "",
                "auc_recent_slice": f"{outcome.metrics['auc']:.4f}",
                GATE_TAG: servable if candidate_served else FAILED,
                ROLE_TAG: CHAMPION if candidate_served else CHALLENGER,
                RECIPE_TAG: outcome.strategy,
                "strategy": outcome.strategy,
                VERDICT_TAG: f"{model_name}: gate {'passed' if candidate_served else 'failed'}",
            }
            if not (candidate_served and verdict.passed):
                tags[GATE_REASON_TAG] = verdict.reason[:5000]
            if learned:
                version = _register(
                    outcome,
                    model,
                    outcome.strategy,
                    model_name,
                    tags,
                    CHAMPION if candidate_served else CHALLENGER,
                    "model",
                )
            if candidate_served:
                served_version = version
            elif verdict.served_role == gate_mod.LOGISTIC:
                plain, _ = served_model(outcome, gate_mod.LOGISTIC, verdict.recalibrate)
                served_version = _register(
                    outcome,
                    plain,
                    "logistic",
                    model_name,
                    {k: v for k, v in tags.items() if k != GATE_REASON_TAG}
                    | {
                        GATE_TAG: servable,
                        ROLE_TAG: CHAMPION,
                        RECIPE_TAG: "logistic",
                        "strategy": "logistic",
                        "auc_recent_slice": f"{verdict.figures.get('logistic_auc', float('nan')):.4f}",
                    },
                    CHAMPION,
                    "logistic_model",
                )
            elif verdict.served_role == gate_mod.CHAMPION_ROLE and previous is not None:
                served_version = str(previous.version)
            line = verdict.line(model_name, served_version if verdict.serves_new_model else None)
            if verdict.served_role == gate_mod.HEURISTIC and previous is not None:
                client.delete_registered_model_alias(model_name, CHAMPION)
                if verdict.champion_demoted:
                    client.set_model_version_tag(model_name, str(previous.version), GATE_TAG, FAILED)
                    client.set_model_version_tag(
                        model_name, str(previous.version), GATE_REASON_TAG, line[:5000]
                    )
            for v in {version, served_version} - {None}:
                client.set_model_version_tag(model_name, v, VERDICT_TAG, line[:5000])
            _record_verdict(client, model_name, line, served_version)
            mlflow.set_tag("registered_version", version or "(none)")
        mlflow.log_dict(
            {
                "verdict": asdict(verdict),
                "line": line,
                "champion": None if evidence.champion is None else evidence.champion.how,
                "metrics": metrics,
            },
            "comparison.json",
        )
        mlflow.set_tags(
            {
                GATE_TAG: PASSED if verdict.passed else FAILED,
                VERDICT_TAG: line[:5000],
                "promotion": CHAMPION if candidate_served else CHALLENGER,
                "promotion_reason": verdict.reason[:5000],
            }
        )
        return RegistrationResult(
            model_name,
            run.info.run_id,
            url,
            experiment_id,
            version,
            CHAMPION if candidate_served else CHALLENGER,
            candidate_served,
            verdict,
            line,
            served_version,
            metrics,
        )


def comparison_json(result: RegistrationResult) -> str:
    return json.dumps(asdict(result), default=str, indent=2)
