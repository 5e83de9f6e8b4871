"""Serving reloads a newly promoted champion (MLflow registry in a tmp SQLite store) without dropping requests."""

from __future__ import annotations

import threading
import time

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient

from holocrm_api import ServingSettings, create_app
from holocrm_core.registry import GATE_TAG
from holocrm_core.registry import PASSED as GATE_PASSED
from tests.support.api import build_home

MODEL = "holocrm_lead_scorer"


def register_champion(
    tables: dict[str, pl.DataFrame], flip: bool, gate: str | None = GATE_PASSED, alias: bool = True
) -> str:
    """Fit the weighted heuristic on the tiny tables, log it as the real ScorerModel pyfunc, tag its gate
    result (None: no tag, as a killed or failed run leaves it) and move ``champion`` to it."""
    import mlflow

    from holocrm_core.outcomes import build_features_for
    from holocrm_core.scoring import WeightedHeuristicScorer
    from holocrm_core.scoring.pyfunc import ScorerModel

    ids = tables["staged_contacts"]["contact_id"].to_list()
    features = build_features_for("contact", ids, tables)
    labels = np.array([1, 1, 0, 1, 0, 0])
    scorer = WeightedHeuristicScorer().fit(features, 1 - labels if flip else labels)
    mlflow.set_experiment("serving-reload-test")
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=ScorerModel(scorer, "contact", "heuristic"),
            registered_model_name=MODEL,
            pip_requirements=["mlflow", "polars", "numpy"],
        )
    version = str(info.registered_model_version)
    client = mlflow.MlflowClient()
    if gate is not None:
        client.set_model_version_tag(MODEL, version, GATE_TAG, gate)
    if alias:
        client.set_registered_model_alias(MODEL, "champion", version)
    return version


@pytest.fixture
def registry(tmp_path, monkeypatch):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("HOLOCRM_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    wh = build_home(tmp_path)
    tables = {name: wh.read(name) for name in ("staged_contacts", "staged_deals")}
    return tmp_path, wh, tables


@pytest.mark.slow
def test_new_champion_is_served_after_reload_without_dropping_requests(registry):
    home, wh, tables = registry
    v1 = register_champion(tables, flip=False)
    # The pipeline's scored_leads says which model made it: version 1.
    wh.write("scored_leads", wh.read("scored_leads").with_columns(pl.lit(v1).alias("model_version")))

    settings = ServingSettings.from_env(home=home, reload_interval_s=0.3)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        health = client.get("/health").json()
        assert health["models"][MODEL]["version"] == v1
        first = client.get("/api/contacts/C1/score").json()
        assert first["source"] == "scored_table" and first["model"]["version"] == v1

        # Keep asking while the new champion is promoted and picked up by the background reload.
        statuses: list[int] = []
        failures: list[str] = []
        stop = threading.Event()

        def hammer():
            while not stop.is_set():
                response = client.get("/api/contacts/C2/score")
                statuses.append(response.status_code)
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:300]}")

        worker = threading.Thread(target=hammer)
        worker.start()
        try:
            v2 = register_champion(tables, flip=True)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if client.get("/health").json()["models"].get(MODEL, {}).get("version") == v2:
                    break
                time.sleep(0.2)
        finally:
            stop.set()
            worker.join()
        assert v2 != v1
        assert client.get("/health").json()["models"][MODEL]["version"] == v2
        assert statuses and set(statuses) == {200}, f"requests failed during the reload: {failures[:3]}"

        # scored_leads came from v1: the reload rescored its contacts with v2, so a score is still a lookup.
        second = client.get("/api/contacts/C1/score").json()
        assert second["model"]["version"] == v2 and second["source"] == "rescored_at_load"
        assert 0.0 <= second["score"] <= 1.0 and isinstance(second["reasons"], list)
        # The rescoring covered every open lead, also C5 that the pipeline's table lacked: still a lookup.
        newer = client.get("/api/contacts/C5/score").json()
        assert newer["source"] == "rescored_at_load" and newer["model"]["version"] == v2
        assert (
            f'holocrm_model_version{{model="{MODEL}",served_as="champion"}} {float(v2)}'
            in client.get("/metrics").text
        )

        # On-demand reload: nothing changed, nothing swapped.
        assert client.post("/api/admin/reload").json()["swapped"] is False


@pytest.mark.slow
def test_a_champion_whose_gate_did_not_pass_is_never_served(registry):
    """The gate bypass of issue 11: a champion alias on a version without holocrm.gate=passed."""
    home, wh, tables = registry
    v1 = register_champion(tables, flip=False)
    # v2 failed a blocking check, yet the alias moved to it (an older pipeline, or a hand promotion).
    v2 = register_champion(tables, flip=True, gate="failed")
    # The pipeline scored with v2: these scores must not be served either.
    wh.write(
        "scored_leads", wh.read("scored_leads").with_columns(pl.lit(f"{MODEL}/{v2}").alias("model_version"))
    )
    settings = ServingSettings.from_env(home=home, reload_interval_s=0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        served = client.get("/health").json()["models"][MODEL]
        assert served["version"] == v1 and served["served_as"] == "previous_passing"
        assert (
            f"v{v2}" in served["verdict"] and "failed" in served["verdict"] and f"v{v1}" in served["verdict"]
        )
        score = client.get("/api/contacts/C1/score").json()
        assert score["model"] == {"name": MODEL, "version": v1, "served_as": "previous_passing"}
        assert score["source"] == "rescored_at_load"  # v2's table was replaced, not served

        # v3 has no gate tag at all (a run killed before its checks): still v1. Then nothing passed: heuristic.
        v3 = register_champion(tables, flip=True, gate=None)
        assert client.post("/api/admin/reload").json()["models"][MODEL]["version"] == v1
        import mlflow

        mlflow.MlflowClient().set_model_version_tag(MODEL, v1, GATE_TAG, "failed")
        served = client.post("/api/admin/reload").json()["models"][MODEL]
        assert served["served_as"] == "heuristic" and served["version"] == "heuristic"
        assert f"v{v3}" in served["verdict"] and "absent" in served["verdict"]
        assert client.get("/api/contacts/C1/score").json()["model"]["served_as"] == "heuristic"


def test_an_artifact_changed_during_a_build_is_built_again_not_left_for_the_next_check(tmp_path, monkeypatch):
    """The fingerprint is read before a build; a table committed while the build ran may or may not be in
    the snapshot: the loader builds again on the new state, so the served snapshot's fingerprint is one it
    was built from and a reload with nothing changed since swaps nothing (the race behind a flaky
    `swapped is False` at the end of the reload test above)."""
    from holocrm_api.loader import ArtifactLoader

    monkeypatch.setenv("HOLOCRM_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'no-registry' / 'mlflow.db'}")
    wh = build_home(tmp_path)
    loader = ArtifactLoader(
        ServingSettings.from_env(home=tmp_path, reload_interval_s=0, warm_query_embedder=False)
    )
    build, builds = loader._build, []

    def build_while_the_pipeline_commits(fingerprint):
        snapshot = build(fingerprint)
        if not builds:  # the pipeline commits new scores while the first build runs
            wh.write("scored_leads", wh.read("scored_leads").with_columns(pl.lit(0.5).alias("score")))
        builds.append(fingerprint)
        return snapshot

    loader._build = build_while_the_pipeline_commits
    assert loader.reload() is True
    assert len(builds) == 2 and builds[0] != builds[1]
    row, _ = loader.snapshot.scores["contact"].lookup("C1")
    assert row["score"] == 0.5  # the committed scores are served now, not at the next check
    assert loader.reload() is False  # nothing changed since the snapshot served
