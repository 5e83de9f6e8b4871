"""MLflow for the scorers: one experiment per model, metrics and plots per run, registry with champion gate.

A training round (``holocrm_core.scoring.train_scorer``) is logged as a run of the experiment named after
the model (``holocrm_lead_scorer`` / ``holocrm_deal_scorer``): parameters, the excluded fields and the
guards' findings, every candidate's figures per rolling time fold (``selection.json``), quality on the
newest fold for the chosen scorer, the heuristic, the plain logistic regression and the current champion,
ROC / calibration / lift plots, and the scorer as one pyfunc.

Gate order: every blocking check (calibration on the newest fold, probabilities inside (0, 1), the
adversarial check, beating the heuristic, the plain logistic regression and the current champion on the
newest fold) is decided *before* the version exists. The version is then registered with its verdict in
the same call (tags ``holocrm.gate`` = passed | failed, ``holocrm.gate_reason``), and only a passed version
gets the ``champion`` alias; a failed one is ``challenger`` and the alias stays where it was. A run killed
part-way registers nothing (the model is logged to the run first and registered last), and serving reads
``models:/<name>@champion`` and checks ``holocrm.gate`` = passed. The store is
``holocrm_core.settings.mlflow_tracking_uri()`` unless MLFLOW_TRACKING_URI says otherwise.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from holocrm_core.settings import mlflow_tracking_uri

LEAD_MODEL = "holocrm_lead_scorer"
DEAL_MODEL = "holocrm_deal_scorer"
MODEL_NAMES = {"contact": LEAD_MODEL, "deal": DEAL_MODEL}
CHAMPION = "champion"
CHALLENGER = "challenger"
GATE_TAG = "holocrm.gate"
GATE_REASON_TAG = "holocrm.gate_reason"
ROLE_TAG = "holocrm.role"
PASSED = "passed"
FAILED = "failed"
# The chosen scorer may trail the plain logistic regression by this much AUC on the newest fold (noise).
LOGISTIC_TOLERANCE = 0.005
LOCAL_UI = "http://127.0.0.1:5000"

# What a fresh environment needs to load the pyfunc (the holocrm package itself must be importable too).
RUNTIME_PACKAGES = ["mlflow", "torch", "polars", "numpy", "pandas", "scikit-learn", "pyarrow"]


def configure(tracking_uri: str | None = None) -> str:
    """Point mlflow at ``tracking_uri`` (default: MLFLOW_TRACKING_URI, else the sqlite store in mlruns/)."""
    import mlflow

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    uri = tracking_uri or mlflow_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def pip_requirements() -> list[str]:
    pins = []
    for package in RUNTIME_PACKAGES:
        try:
            # "+cpu" local versions are not installable elsewhere; the public version is.
            pins.append(f"{package}=={version(package).split('+')[0]}")
        except PackageNotFoundError:
            pins.append(package)
    return pins


def _artifact_root(uri: str) -> str | None:
    """Artifacts of a sqlite store live beside its database, not in whatever folder the process runs in."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").resolve().as_uri()
    return None


def ensure_experiment(name: str) -> str:
    import mlflow

    client = mlflow.MlflowClient()
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        experiment_id = existing.experiment_id
    else:
        root = _artifact_root(mlflow.get_tracking_uri())
        experiment_id = client.create_experiment(name, artifact_location=f"{root}/{name}" if root else None)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def run_url(experiment_id: str, run_id: str) -> str:
    import mlflow

    uri = mlflow.get_tracking_uri()
    base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else LOCAL_UI
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


# -- champion ---------------------------------------------------------------------------------------------
def champion_version(model_name: str, alias: str = CHAMPION):
    """The registered version behind ``alias``, or None (no model, or no such alias yet)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.MlflowClient().get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None


def gate_passed(info) -> bool:
    """Did this registered version pass every blocking check of its gate (tag ``holocrm.gate``)?"""
    return info is not None and (getattr(info, "tags", None) or {}).get(GATE_TAG) == PASSED


def load_champion(model_name: str, alias: str = CHAMPION, require_gate: bool = True):
    """``(pyfunc model, model version)`` of the current champion, or None when there is none yet (or,
    with ``require_gate``, when the version behind the alias did not pass its gate)."""
    import mlflow

    info = champion_version(model_name, alias)
    if info is None or (require_gate and not gate_passed(info)):
        return None
    return mlflow.pyfunc.load_model(f"models:/{model_name}@{alias}"), info


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    alias: str
    reason: str
    candidate_auc: float
    heuristic_auc: float
    champion_auc: float | None
    champion_version: str | None = None


def promotion_decision(
    candidate_auc: float,
    heuristic_auc: float,
    champion_auc: float | None = None,
    champion_version: str | None = None,
) -> PromotionDecision:
    """Champion only when the candidate beats the heuristic and the current champion on the recent slice."""

    def fmt(x: float) -> str:
        return f"{x:.3f}"

    def bad(x) -> bool:
        return x is None or (isinstance(x, float) and np.isnan(x))

    if bad(candidate_auc):
        return PromotionDecision(
            False,
            CHALLENGER,
            "the recent slice has only one kind of outcome; nothing to compare on",
            candidate_auc,
            heuristic_auc,
            champion_auc,
            champion_version,
        )
    if not bad(heuristic_auc) and candidate_auc <= heuristic_auc:
        reason = f"AUC {fmt(candidate_auc)} does not beat the weighted heuristic ({fmt(heuristic_auc)})"
        return PromotionDecision(
            False, CHALLENGER, reason, candidate_auc, heuristic_auc, champion_auc, champion_version
        )
    if not bad(champion_auc) and candidate_auc <= champion_auc:
        reason = f"AUC {fmt(candidate_auc)} does not beat champion v{champion_version} ({fmt(champion_auc)})"
        return PromotionDecision(
            False, CHALLENGER, reason, candidate_auc, heuristic_auc, champion_auc, champion_version
        )
    against = f"heuristic {fmt(heuristic_auc)}"
    if not bad(champion_auc):
        against += f", champion v{champion_version} {fmt(champion_auc)}"
    else:
        against += ", no champion yet"
    return PromotionDecision(
        True,
        CHAMPION,
        f"AUC {fmt(candidate_auc)} beats {against}",
        candidate_auc,
        heuristic_auc,
        champion_auc,
        champion_version,
    )


# -- logging a training round -----------------------------------------------------------------------------
@dataclass
class RegistrationResult:
    model_name: str
    run_id: str
    run_url: str
    experiment_id: str
    version: str | None
    alias: str | None
    promoted: bool
    decision: PromotionDecision | None
    message: str
    metrics: dict[str, float] = field(default_factory=dict)


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


def _nan(value) -> bool:
    return value is None or bool(np.isnan(value))


@dataclass(frozen=True)
class GateVerdict:
    """The blocking checks of a candidate, decided before it is registered."""

    passed: bool
    reason: str  # one line: what passed, or every check that failed
    checks: dict[str, bool] = field(default_factory=dict)


def candidate_gate(
    outcome, champion_metrics: dict | None = None, champion_ver: str | None = None
) -> GateVerdict:
    """Every blocking check of a trained candidate on the newest fold (the comparison included)."""
    from holocrm_core.scoring.calibration import ece_noise_floor

    m, heur, plain = outcome.metrics, outcome.heuristic_metrics, outcome.logistic_metrics
    scores = np.asarray(
        outcome.validation_scores if outcome.validation_scores is not None else [], dtype=float
    )
    problems, checks = [], {}
    auc = m.get("auc", float("nan"))
    if _nan(auc):
        problems.append("the newest fold has only one kind of outcome; nothing to compare on")
    ece = m.get("ece", float("nan"))
    if outcome.selection is not None and outcome.strategy in outcome.selection.candidates:
        served = outcome.selection.candidates[
            outcome.strategy
        ].newest_ece  # the calibration the final model has
        ece = ece if _nan(served) else served
    allowed = max(MAX_GATE_ECE, ece_noise_floor(scores)) if len(scores) else MAX_GATE_ECE
    checks["calibrated"] = bool(ece <= allowed)
    if not checks["calibrated"]:
        problems.append(f"calibration error {ece:.3f} above {allowed:.3f}")
    checks["inside_0_1"] = bool(len(scores) == 0 or ((scores > 0) & (scores < 1)).all())
    if not checks["inside_0_1"]:
        problems.append("some probabilities are exactly 0 or 1")
    guard = outcome.guard
    checks["adversarial"] = not (guard is not None and guard.blocks)
    if not checks["adversarial"]:
        problems.append(guard.message)
    h_auc = heur.get("auc", float("nan"))
    checks["beats_heuristic"] = bool(_nan(h_auc) or auc > h_auc)
    if not checks["beats_heuristic"]:
        problems.append(f"AUC {auc:.3f} does not beat the weighted heuristic ({h_auc:.3f})")
    l_auc = plain.get("auc", float("nan"))
    checks["beats_logistic"] = bool(
        outcome.strategy == "logistic" or _nan(l_auc) or auc >= l_auc - LOGISTIC_TOLERANCE
    )
    if not checks["beats_logistic"]:
        problems.append(f"AUC {auc:.3f} trails the plain logistic regression ({l_auc:.3f})")
    c_auc = (champion_metrics or {}).get("auc")
    checks["beats_champion"] = bool(c_auc is None or _nan(c_auc) or auc > c_auc)
    if not checks["beats_champion"]:
        problems.append(f"AUC {auc:.3f} does not beat champion v{champion_ver} ({c_auc:.3f})")
    if problems:
        return GateVerdict(False, "; ".join(problems).replace("\n", " "), checks)
    against = f"heuristic {h_auc:.3f}, logistic regression {l_auc:.3f}"
    against += f", champion v{champion_ver} {c_auc:.3f}" if c_auc is not None else ", no champion yet"
    return GateVerdict(
        True, f"{outcome.strategy}: AUC {auc:.3f}, ECE {ece:.3f} on the newest fold beats {against}", checks
    )


def log_training(outcome, model_name: str | None = None, register: bool = True) -> RegistrationResult:
    """Log a ``TrainingOutcome`` as an MLflow run; gate the learned scorer, then register it with its verdict.

    Below the minimum-data rule nothing is registered: the run records the heuristic's figures and the
    message, and scoring keeps using the current champion or the heuristic.
    """
    import matplotlib.pyplot as plt
    import mlflow

    from holocrm_core.scoring import unwrap
    from holocrm_core.scoring.calibration import quality
    from holocrm_core.scoring.pyfunc import ScorerModel

    model_name = model_name or MODEL_NAMES[outcome.entity]
    experiment_id = ensure_experiment(model_name)
    y = outcome.y_validation if len(outcome.validation) else np.array([], dtype=int)
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
        if not outcome.learned:
            mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
            mlflow.set_tag("fallback", "heuristic")
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

        # The current champion, judged on the same newest fold (it may have drifted since it was promoted).
        champion = load_champion(model_name)
        champion_metrics, champion_ver, curves = (
            None,
            None,
            {
                outcome.strategy: outcome.validation_scores,
                "heuristic": outcome.heuristic_validation_scores,
            },
        )
        if champion is not None:
            champion_ver = str(champion[1].version)
            try:
                champion_scores = unwrap(champion[0]).predict_proba(outcome.validation)[:, 1]
                champion_metrics = quality(y, champion_scores)
                metrics.update({f"champion_{k}": v for k, v in champion_metrics.items()})
                curves[f"champion v{champion_ver}"] = champion_scores
            except Exception as exc:  # noqa: BLE001 - a champion that cannot score today's rows loses
                mlflow.set_tag("champion_error", f"champion v{champion_ver} could not score: {exc}"[:500])
                champion_metrics = {"auc": float("-inf")}
        verdict = candidate_gate(outcome, champion_metrics, champion_ver)
        champion_auc = None if champion_metrics is None else champion_metrics.get("auc")
        decision = PromotionDecision(
            verdict.passed,
            CHAMPION if verdict.passed else CHALLENGER,
            verdict.reason,
            outcome.metrics["auc"],
            outcome.heuristic_metrics.get("auc", float("nan")),
            champion_auc,
            champion_ver,
        )
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)})
        if len(np.unique(y)) == 2:
            for name, figure in _plots(y, {k: v for k, v in curves.items() if v is not None}).items():
                mlflow.log_figure(figure, name)
                plt.close(figure)
        mlflow.log_dict(
            {"decision": asdict(decision), "checks": verdict.checks, "metrics": metrics}, "comparison.json"
        )
        mlflow.set_tags(
            {
                "promotion": decision.alias,
                "promotion_reason": decision.reason,
                GATE_TAG: PASSED if verdict.passed else FAILED,
            }
        )

        version = None
        if register:
            # Logged to the run first, registered last with its verdict: a run killed before this line
            # leaves no registered version, and no version ever exists without its gate tag.
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=ScorerModel(outcome.scorer, outcome.entity, outcome.strategy),
                pip_requirements=pip_requirements(),
            )
            tags = {
                GATE_TAG: PASSED if verdict.passed else FAILED,
                ROLE_TAG: CHAMPION if verdict.passed else CHALLENGER,
                "auc_recent_slice": f"{outcome.metrics['auc']:.4f}",
                "strategy": outcome.strategy,
                "promotion_reason": decision.reason[:5000],
            }
            if not verdict.passed:
                tags[GATE_REASON_TAG] = decision.reason[:5000]
            registered = mlflow.register_model(info.model_uri, model_name, tags=tags)
            version = str(registered.version)
            mlflow.MlflowClient().set_registered_model_alias(model_name, decision.alias, version)
            mlflow.set_tag("registered_version", version)
        return RegistrationResult(
            model_name,
            run.info.run_id,
            url,
            experiment_id,
            version,
            decision.alias,
            decision.promote,
            decision,
            decision.reason,
            metrics,
        )


def comparison_json(result: RegistrationResult) -> str:
    return json.dumps(asdict(result), default=str, indent=2)


# -- the gate downstream scoring waits on -----------------------------------------------------------------
MAX_GATE_ECE = 0.1


@dataclass(frozen=True)
class GateResult:
    passed: bool
    scorer_in_use: str  # "holocrm_lead_scorer v3" or "heuristic"
    description: str
    champion_auc: float | None = None
    heuristic_auc: float | None = None
    champion_ece: float | None = None


def champion_gate(outcome, model_name: str | None = None) -> GateResult:
    """Is the scorer that downstream scoring would use fit for use on the newest outcomes?

    With no champion the heuristic is in use (it is the baseline, so it passes). A champion stays only
    while it still beats the heuristic on the newest fold and its probabilities stay calibrated (ECE at
    most ``MAX_GATE_ECE``, or the chance level of ECE on the slice when larger: ``ece_noise_floor``) and
    strictly inside (0, 1). A champion that fails is demoted (alias removed, version tagged
    ``holocrm.gate`` = failed with the reason) and the heuristic scores: nothing that failed is served.
    """
    import mlflow

    from holocrm_core.scoring import unwrap
    from holocrm_core.scoring.calibration import ece_noise_floor, quality

    model_name = model_name or MODEL_NAMES[outcome.entity]
    champion = load_champion(model_name)
    if champion is None:
        return GateResult(
            True,
            "heuristic",
            f"No champion yet: the weighted heuristic scores. {outcome.enough_data.message}",
        )
    used = f"{model_name} v{champion[1].version}"
    if not len(outcome.validation) or len(np.unique(outcome.y_validation)) < 2:
        return GateResult(True, used, "The newest fold has only one kind of outcome; the champion stays.")
    try:
        scores = unwrap(champion[0]).predict_proba(outcome.validation)[:, 1]
    except Exception as exc:  # noqa: BLE001 - a champion that cannot score today's data fails its gate
        scores, problems, champ = None, [f"cannot score the current outcome data: {exc}"], {}
    if scores is not None:
        champ = quality(outcome.y_validation, scores)
        heur = outcome.heuristic_metrics or quality(outcome.y_validation, outcome.heuristic_validation_scores)
        allowed = max(MAX_GATE_ECE, ece_noise_floor(scores))
        problems = []
        if not champ["auc"] > heur["auc"]:
            problems.append(f"AUC {champ['auc']:.3f} no longer beats the heuristic ({heur['auc']:.3f})")
        if not champ["ece"] <= allowed:
            problems.append(
                f"calibration error {champ['ece']:.3f} above {allowed:.3f} (the larger of "
                f"{MAX_GATE_ECE} and what chance gives on {len(scores)} outcomes)"
            )
        if not ((scores > 0) & (scores < 1)).all():
            problems.append("some probabilities are exactly 0 or 1")
        if not problems:
            return GateResult(
                True,
                used,
                f"{used}: AUC {champ['auc']:.3f} vs heuristic {heur['auc']:.3f}, ECE {champ['ece']:.3f}",
                champ["auc"],
                heur["auc"],
                champ["ece"],
            )
    reason = f"{used} failed its gate on the newest fold: " + "; ".join(problems)
    client = mlflow.MlflowClient()
    version = str(champion[1].version)
    client.set_model_version_tag(model_name, version, GATE_TAG, FAILED)
    client.set_model_version_tag(model_name, version, GATE_REASON_TAG, reason[:5000])
    client.delete_registered_model_alias(model_name, CHAMPION)
    return GateResult(
        True,
        "heuristic",
        reason + "; demoted, the weighted heuristic scores",
        champ.get("auc"),
        None,
        champ.get("ece"),
    )


def scorer_in_use(entity: str, warehouse=None, model_name: str | None = None):
    """``(scorer, model_version)`` that scores ``entity`` now: the champion, else the weighted heuristic.

    The heuristic is calibrated on the outcome dataset in ``warehouse`` when there is one.
    ``model_version`` reads ``holocrm_lead_scorer/3`` for a registered champion, ``heuristic`` otherwise.
    """
    from holocrm_core.scoring import WeightedHeuristicScorer, entity_rows

    model_name = model_name or MODEL_NAMES[entity]
    champion = load_champion(model_name)
    if champion is not None:
        return champion[0], f"{model_name}/{champion[1].version}"
    import polars as pl

    rows = pl.DataFrame()
    if warehouse is not None and warehouse.exists("outcome_dataset"):
        rows = entity_rows(warehouse.read("outcome_dataset"), entity)
    labels = rows["label"].to_numpy() if rows.height else np.array([], dtype=int)
    return WeightedHeuristicScorer().fit(rows, labels), "heuristic"
