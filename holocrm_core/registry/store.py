"""The MLflow store behind the served-model contract: configuration, experiments, names and tags, versions.

Every registered model (lead and deal scorers, the decision and outreach policies) carries the same tags,
defined here once: ``holocrm.gate`` (passed | failed | failed_but_best: may this version be served), ``holocrm.gate_reason``,
``holocrm.verdict`` (the one line saying what is served and why, also on the registered model itself),
``holocrm.trained_until`` (the newest outcome the version learned from: a later champion comparison uses
only outcomes after it) and ``holocrm.recipe`` (the strategy, to refit it on other folds). The store is
``holocrm_core.settings.mlflow_tracking_uri()`` unless MLFLOW_TRACKING_URI says otherwise.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

LEAD_MODEL = "holocrm_lead_scorer"
DEAL_MODEL = "holocrm_deal_scorer"
MODEL_NAMES = {"contact": LEAD_MODEL, "deal": DEAL_MODEL}
CHAMPION = "champion"
CHALLENGER = "challenger"
GATE_TAG = "holocrm.gate"
GATE_REASON_TAG = "holocrm.gate_reason"
VERDICT_TAG = "holocrm.verdict"
SERVED_TAG = "holocrm.served"
ROLE_TAG = "holocrm.role"
TRAINED_UNTIL_TAG = "holocrm.trained_until"
RECIPE_TAG = "holocrm.recipe"
PASSED = "passed"
FAILED = "failed"
# Failed a check, yet served: every fallback was worse on the gate's own figures (the verdict line says so).
SERVED_ANYWAY = "failed_but_best"
LOCAL_UI = "http://127.0.0.1:5000"

# What a fresh environment needs to load the pyfunc (the holocrm package itself must be importable too).
RUNTIME_PACKAGES = ["mlflow", "torch", "polars", "numpy", "pandas", "scikit-learn", "pyarrow"]


def configure(tracking_uri: str | None = None) -> str:
    """Point mlflow at ``tracking_uri`` (default: MLFLOW_TRACKING_URI, else the sqlite store in mlruns/)."""
    from holocrm_core.settings import configure_mlflow

    return configure_mlflow(tracking_uri)  # the one place MLflow is pointed at a store


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


def champion_version(model_name: str, alias: str = CHAMPION):
    """The registered version behind ``alias``, or None (no model, or no such alias yet)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.MlflowClient().get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None


def gate_passed(info) -> bool:
    """May this registered version be served (tag ``holocrm.gate`` = passed, or failed_but_best: it failed
    a check and every fallback was worse)?"""
    return info is not None and (getattr(info, "tags", None) or {}).get(GATE_TAG) in (PASSED, SERVED_ANYWAY)


def load_champion(model_name: str, alias: str = CHAMPION, require_gate: bool = True):
    """``(pyfunc model, model version)`` of the current champion, or None when there is none yet (or,
    with ``require_gate``, when the version behind the alias did not pass its gate)."""
    import mlflow

    info = champion_version(model_name, alias)
    if info is None or (require_gate and not gate_passed(info)):
        return None
    return mlflow.pyfunc.load_model(f"models:/{model_name}/{info.version}"), info


def model_tags(model_name: str) -> dict[str, str]:
    """The registered model's own tags (the verdict of its last gate), {} when it does not exist."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return dict(mlflow.MlflowClient().get_registered_model(model_name).tags or {})
    except MlflowException:
        return {}
