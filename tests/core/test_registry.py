"""MLflow registry: champion/challenger promotion on a temporary store, the pyfunc in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from holocrm_core import outcomes, registry
from holocrm_core.registry import CHALLENGER, CHAMPION, LEAD_MODEL, promotion_decision
from holocrm_core.scoring import score_frame, train_scorer
from tests.support.crm import toy_crm

FAST = {"epochs": 20, "patience": 4}


def test_promotion_needs_to_beat_both_the_heuristic_and_the_champion():
    first = promotion_decision(0.80, heuristic_auc=0.70, champion_auc=None)
    assert first.promote and first.alias == CHAMPION and "no champion yet" in first.reason
    assert promotion_decision(0.80, 0.70, champion_auc=0.78, champion_version="1").promote
    worse = promotion_decision(0.76, 0.70, champion_auc=0.78, champion_version="1")
    assert not worse.promote and worse.alias == CHALLENGER and "champion v1" in worse.reason
    weak = promotion_decision(0.69, 0.70)
    assert not weak.promote and "heuristic" in weak.reason
    tie = promotion_decision(0.78, 0.70, champion_auc=0.78, champion_version="1")
    assert not tie.promote


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        registry.configure()
        yield root


@pytest.fixture(scope="module")
def dataset():
    tables, _ = toy_crm(1200, seed=11)
    return outcomes.build_outcome_dataset(tables)


def _versions(client) -> list[str]:
    return sorted(str(v.version) for v in client.search_model_versions(f"name='{LEAD_MODEL}'"))


def test_champion_then_challenger_on_a_temporary_store(store, dataset, tmp_path):
    import mlflow

    assert registry.load_champion(LEAD_MODEL) is None
    good = train_scorer(dataset, "contact", strategy="logistic")
    first = registry.log_training(good)
    assert first.promoted and first.alias == CHAMPION and first.version == "1", first.message
    assert (store / "artifacts").exists()  # artifacts sit beside the sqlite store, not in the working dir
    client = mlflow.MlflowClient()
    v1 = client.get_model_version(LEAD_MODEL, "1")
    assert v1.tags[registry.GATE_TAG] == registry.PASSED and registry.gate_passed(v1)

    # A scorer that learned from shuffled outcomes must not replace the champion.
    shuffled = dataset.with_columns(
        pl.Series("label", np.random.default_rng(0).permutation(dataset["label"].to_numpy()))
    )
    bad = train_scorer(shuffled, "contact", strategy="naive_bayes")
    bad.validation, bad.heuristic_metrics = (
        good.validation,
        good.heuristic_metrics,
    )  # judged on the real slice
    bad.logistic_metrics, bad.selection = good.logistic_metrics, None
    from holocrm_core.scoring.calibration import quality

    bad.validation_scores = bad.scorer.predict_proba(good.validation)[:, 1]
    bad.heuristic_validation_scores = good.heuristic_validation_scores
    bad.metrics = quality(good.y_validation, bad.validation_scores)
    second = registry.log_training(bad)
    assert not second.promoted and second.alias == CHALLENGER and second.version == "2"
    assert "champion v1" in second.message or "heuristic" in second.message

    assert str(client.get_model_version_by_alias(LEAD_MODEL, CHAMPION).version) == "1"
    assert str(client.get_model_version_by_alias(LEAD_MODEL, CHALLENGER).version) == "2"
    v2 = client.get_model_version(LEAD_MODEL, "2")
    assert (
        v2.tags[registry.GATE_TAG] == registry.FAILED and v2.tags[registry.GATE_REASON_TAG] == second.message
    )
    comparison = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(
                run_id=second.run_id, artifact_path="comparison.json", dst_path=str(tmp_path)
            )
        ).read_text()
    )
    assert comparison["decision"]["promote"] is False and comparison["decision"]["champion_version"] == "1"
    run = client.get_run(first.run_id)
    assert {
        "auc",
        "average_precision",
        "brier",
        "log_loss",
        "ece",
        "top_decile_lift",
        "lift_vs_heuristic",
        "logistic_auc",
    } <= set(run.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(first.run_id)}
    assert {
        "roc.png",
        "calibration.png",
        "lift.png",
        "comparison.json",
        "selection.json",
        "guards.json",
    } <= artifacts

    gate = registry.champion_gate(good)
    assert gate.passed and gate.scorer_in_use == f"{LEAD_MODEL} v1"


def test_a_failed_blocking_check_leaves_the_champion_alias_untouched(store, dataset):
    import mlflow

    client = mlflow.MlflowClient()
    before = str(client.get_model_version_by_alias(LEAD_MODEL, CHAMPION).version)
    # A candidate that beats everything on AUC but whose probabilities are far off: calibration blocks it.
    miscalibrated = train_scorer(dataset, "contact", strategy="logistic")
    from holocrm_core.scoring.calibration import quality

    y = miscalibrated.y_validation
    skewed = np.clip(0.35 + 0.6 * (miscalibrated.validation_scores > 0.5), 0.01, 0.99)
    miscalibrated.validation_scores = skewed
    miscalibrated.metrics = quality(y, skewed) | {"auc": 0.999}
    miscalibrated.selection = None
    result = registry.log_training(miscalibrated)
    assert not result.promoted and result.alias == CHALLENGER
    assert result.message.startswith("calibration error") and "\n" not in result.message
    assert str(client.get_model_version_by_alias(LEAD_MODEL, CHAMPION).version) == before
    version = client.get_model_version(LEAD_MODEL, result.version)
    assert version.tags[registry.GATE_TAG] == registry.FAILED
    assert (
        version.tags[registry.GATE_REASON_TAG] == result.message
        and version.tags[registry.ROLE_TAG] == CHALLENGER
    )
    assert str(registry.load_champion(LEAD_MODEL)[1].version) == before


def test_a_training_run_killed_mid_way_registers_nothing(store, dataset, monkeypatch):
    import mlflow

    client = mlflow.MlflowClient()
    before = _versions(client)
    outcome = train_scorer(dataset, "contact", strategy="logistic")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # what a SIGINT mid-way through logging the model looks like

    monkeypatch.setattr(mlflow.pyfunc, "log_model", killed)
    with pytest.raises(KeyboardInterrupt):
        registry.log_training(outcome)
    assert _versions(client) == before


def test_an_unchecked_version_behind_the_alias_is_not_served(store):
    import mlflow

    client = mlflow.MlflowClient()
    version = str(client.get_model_version_by_alias(LEAD_MODEL, CHAMPION).version)
    client.delete_model_version_tag(LEAD_MODEL, version, registry.GATE_TAG)
    try:
        assert registry.load_champion(LEAD_MODEL) is None
        assert registry.scorer_in_use("contact")[1] == "heuristic"
    finally:
        client.set_model_version_tag(LEAD_MODEL, version, registry.GATE_TAG, registry.PASSED)


def test_below_minimum_data_nothing_is_registered(store, dataset):
    few = dataset.filter(pl.col("entity") == "deal").head(30)
    result = registry.log_training(train_scorer(few, "deal"))
    assert result.version is None and not result.promoted and "at least 40" in result.message
    scorer, version = registry.scorer_in_use("deal")
    assert version == "heuristic"


def test_the_champion_reproduces_scores_in_a_fresh_process(store, dataset, tmp_path):
    champion = registry.load_champion(LEAD_MODEL)
    assert champion is not None
    model, info = champion
    leads = dataset.filter(pl.col("entity") == "contact").tail(50).rename({"entity_id": "contact_id"})
    expected = score_frame(model, leads)["score"].to_numpy()
    assert np.allclose(model.predict(leads.to_pandas())["score"].to_numpy(), expected)
    path = tmp_path / "features.parquet"
    leads.write_parquet(path)
    script = (
        "import sys, mlflow, polars as pl\n"
        f"m = mlflow.pyfunc.load_model('models:/{LEAD_MODEL}@champion')\n"
        f"print(list(m.predict(pl.read_parquet(r'{path}').to_pandas())['score']))\n"
    )
    env = os.environ | {"MLFLOW_TRACKING_URI": os.environ["MLFLOW_TRACKING_URI"]}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    fresh = np.array(json.loads(out.stdout.strip().splitlines()[-1]))
    assert np.allclose(fresh, expected, atol=1e-9)
