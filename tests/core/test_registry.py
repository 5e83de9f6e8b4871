"""MLflow registry: champion/challenger promotion on a temporary store, the pyfunc in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from holocrm_core import outcomes, registry
from holocrm_core.registry import CHALLENGER, CHAMPION, LEAD_MODEL
from holocrm_core.scoring import score_frame, train_scorer, unwrap
from tests.support.crm import toy_crm

pytestmark = pytest.mark.slow  # trains scorers and logs them to MLflow


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


def _train(dataset, strategy: str):
    return train_scorer(dataset, "contact", strategy=strategy)


def _lines_agree(result) -> None:
    """The verdict line is one text: the round's, the registered model's, the resolver's, the CLI's."""
    import mlflow

    from holocrm_cli.scoring import model_status_lines

    client = mlflow.MlflowClient()
    tags = client.get_registered_model(LEAD_MODEL).tags
    served = registry.resolve("contact")
    assert tags[registry.VERDICT_TAG] == result.message == served.line
    assert client.get_run(result.run_id).data.tags[registry.VERDICT_TAG] == result.message
    assert result.message in model_status_lines()


def test_a_loss_to_the_plain_logistic_regression_registers_and_serves_it(store, dataset, tmp_path):
    import mlflow

    assert registry.load_champion(LEAD_MODEL) is None
    outcome = _train(
        dataset, "naive_bayes"
    )  # measured beside the logistic regression, and worse on this data
    result = registry.log_training(outcome)
    assert result.version == "1" and result.alias == CHALLENGER and not result.promoted
    assert result.served_version == "2" and result.verdict.served_role == "logistic"
    assert (
        "trails the plain logistic regression" in result.message and "serving v2 (logistic)" in result.message
    )
    client = mlflow.MlflowClient()
    assert client.get_model_version(LEAD_MODEL, "1").tags[registry.GATE_TAG] == registry.FAILED
    served = client.get_model_version(LEAD_MODEL, "2")
    assert registry.gate_passed(served) and served.tags[registry.RECIPE_TAG] == "logistic"
    leads = dataset.filter(pl.col("entity") == "contact")
    assert served.tags[registry.TRAINED_UNTIL_TAG] == leads["outcome_at"].max().isoformat()
    model, version = registry.scorer_in_use("contact")
    assert version == f"{LEAD_MODEL}/2" and unwrap(model).name == "logistic"
    _lines_agree(result)
    run = client.get_run(result.run_id)
    assert {"auc", "ece", "logistic_auc", "heuristic_auc", "lift_vs_heuristic"} <= set(run.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"roc.png", "calibration.png", "lift.png", "comparison.json", "selection.json"} <= artifacts
    assert (store / "artifacts").exists()  # artifacts sit beside the sqlite store, not in the working dir


def test_a_rerun_on_the_same_export_can_replace_the_champion(store, dataset):
    """No outcome is newer than the champion's cutoff: its recipe is refit on the candidate's folds, so it
    is never judged on rows it learned from; the better candidate replaces it."""
    import mlflow

    from holocrm_core.registry.tracking import _register

    weak = _train(dataset, "naive_bayes")
    tags = {
        registry.GATE_TAG: registry.PASSED,
        registry.RECIPE_TAG: "naive_bayes",
        registry.TRAINED_UNTIL_TAG: dataset["outcome_at"].max().isoformat(),
    }
    planted = _register(weak, weak.scorer, "naive_bayes", LEAD_MODEL, tags, CHAMPION, "model")
    result = registry.log_training(_train(dataset, "logistic"))
    assert "its recipe (naive_bayes) refit on the candidate's training folds" in result.message
    assert result.promoted and result.served_version == result.version != planted, result.message
    assert (
        str(mlflow.MlflowClient().get_model_version_by_alias(LEAD_MODEL, CHAMPION).version) == result.version
    )
    _lines_agree(result)


def test_twenty_percent_more_outcomes_judge_the_champion_on_the_new_ones_only(store, dataset):
    import mlflow

    from holocrm_core.registry.tracking import _register

    records = (
        dataset.filter(pl.col("entity") == "contact").group_by("entity_id").agg(pl.col("outcome_at").max())
    )
    cutoff = records["outcome_at"].sort()[int(0.8 * records.height)]
    older = dataset.filter(pl.col("outcome_at") < cutoff)
    # A champion fitted on the older 80% with its outcomes shuffled: it knows nothing of the new 20%.
    shuffled = older.with_columns(
        pl.Series("label", np.random.default_rng(0).permutation(older["label"].to_numpy()))
    )
    stale = _train(shuffled, "logistic")
    tags = {
        registry.GATE_TAG: registry.PASSED,
        registry.RECIPE_TAG: "logistic",
        registry.TRAINED_UNTIL_TAG: older["outcome_at"].max().isoformat(),
    }
    planted = _register(stale, stale.scorer, "logistic", LEAD_MODEL, tags, CHAMPION, "model")
    result = registry.log_training(_train(dataset, "logistic"))
    assert "after its training cutoff" in result.message, result.message
    assert result.promoted and result.served_version != planted
    client = mlflow.MlflowClient()
    assert str(client.get_model_version_by_alias(LEAD_MODEL, CHAMPION).version) == result.version


def test_a_calibration_shift_in_the_newest_outcomes_is_recalibrated_and_served(store, dataset):
    from holocrm_core.scoring.selection import RecalibratedScorer

    outcome = _train(dataset, "logistic")
    # Plant a shift: most of the newest slice's losses become conversions (the rate jumps).
    y = outcome.validation["label"].to_numpy().copy()
    flip = (y == 0) & (np.random.default_rng(1).random(len(y)) < 0.6)
    y[flip] = 1
    outcome.validation = outcome.validation.with_columns(pl.Series("label", y, dtype=pl.Int8))
    result = registry.log_training(outcome)
    assert result.promoted and result.verdict.recalibrate, result.message
    assert "recalibrated on the newest slice" in result.message
    model, version = registry.scorer_in_use("contact")
    assert version == f"{LEAD_MODEL}/{result.version}" and isinstance(unwrap(model), RecalibratedScorer)
    newest = unwrap(model).predict_proba(outcome.validation)[:, 1]
    assert abs(newest.mean() - y.mean()) < 0.08  # served at the newest slice's level, not the training one's
    _lines_agree(result)


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
        served = registry.resolve("contact")
        assert served.version != version and "absent" in served.line
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


def test_a_selection_that_prefers_the_heuristic_still_serves_a_better_logistic_regression(store, dataset):
    outcome = _train(dataset, "heuristic")  # the heuristic asked for by name, measured beside the LR
    assert outcome.strategy == "heuristic" and not outcome.learned
    result = registry.log_training(outcome)
    assert result.version is None and result.served_version is not None, (
        result.message
    )  # no heuristic version
    assert result.verdict.served_role == "logistic" and "(logistic)" in result.message
    assert registry.resolve("contact").version == result.served_version
    _lines_agree(result)
