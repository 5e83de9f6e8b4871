"""The Dagster instance and MLflow on PostgreSQL, MLflow's artifacts on S3: real servers on loopback."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.support.services import free_port, start, stop, wait_for_port

BIN = Path(sys.executable).parent


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg2://", "postgresql://")


@pytest.mark.slow  # imports the whole graph and starts a run: about 25 s here
def test_holocrm_run_records_its_runs_in_the_postgres_instance(postgres, tmp_path, monkeypatch):
    """`HOLOCRM_DAGSTER_STORAGE` alone moves the instance: the runner writes the PostgreSQL dagster.yaml and the
    run, its events and its materializations land in that database."""
    import psycopg2

    from holocrm_core.settings import HoloPaths
    from holocrm_core.synth import generate_export
    from pipelines.runner import run_all

    url = postgres("dagster_instance")
    monkeypatch.setenv("HOLOCRM_DAGSTER_STORAGE", url)
    export = tmp_path / "export"
    generate_export(export, n_contacts=40, seed=2, truth_dir=tmp_path / "truth", with_attachment_files=False)
    paths = HoloPaths(tmp_path / "home")
    raw = ["raw_contacts", "raw_companies", "raw_deals", "raw_activities", "raw_attachments"]
    summary = run_all(export, paths=paths, progress=lambda _line: None, selection=raw)
    assert summary.success, summary.errors
    assert "postgres" in (paths.dagster_home / "dagster.yaml").read_text()
    assert "psycopg2" not in (paths.dagster_home / "dagster.yaml").read_text()  # the URL is read from the env
    with psycopg2.connect(_plain(url)) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT status FROM runs WHERE run_id = %s", (summary.run_id,))
        assert cursor.fetchone() == ("SUCCESS",)
        cursor.execute(
            "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
            (summary.run_id,),
        )
        assert cursor.fetchone()[0] == len(raw)
    assert not (paths.dagster_home / "history").exists() and not list(paths.dagster_home.glob("*.db"))


@pytest.mark.slow  # the tracking server's start (PostgreSQL migrations) takes 20 to 40 s here
def test_mlflow_tracking_server_on_postgres_keeps_artifacts_on_s3(postgres, s3_env, tmp_path, monkeypatch):
    import mlflow
    import psycopg2

    from holocrm_core.objectstore import list_keys
    from holocrm_core.settings import configure_mlflow

    store = postgres("mlflow")
    port = free_port()
    artifacts = f"s3://{s3_env.bucket}/mlflow-artifacts"
    command = [
        str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", store, "--artifacts-destination", artifacts,
    ]  # fmt: skip
    log = tmp_path / "mlflow.log"
    server = start(command, log, env={**s3_env.env(), "MLFLOW_DISABLE_TELEMETRY": "true"})
    try:
        wait_for_port(port, server, log, timeout_s=180)
        uri = f"http://127.0.0.1:{port}"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        assert configure_mlflow() == uri and mlflow.get_tracking_uri() == uri
        mlflow.set_experiment("backends")
        with mlflow.start_run() as run:
            mlflow.log_metric("auc", 0.81)
            mlflow.log_text("champion notes", "notes/summary.txt")
        client = mlflow.MlflowClient()
        client.create_registered_model("holocrm_backends_probe")
        assert client.get_run(run.info.run_id).data.metrics["auc"] == 0.81
        downloaded = mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="notes/summary.txt", dst_path=str(tmp_path / "dl")
        )
        assert Path(downloaded).read_text() == "champion notes"
    finally:
        stop(server)
    keys = list_keys(s3_env.client(), s3_env.bucket, "mlflow-artifacts/")
    assert any(k.endswith(f"{run.info.run_id}/artifacts/notes/summary.txt") for k in keys), keys
    with psycopg2.connect(_plain(store)) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT status FROM runs WHERE run_uuid = %s", (run.info.run_id,))
        assert cursor.fetchone() == ("FINISHED",)
        cursor.execute("SELECT name FROM registered_models")
        assert ("holocrm_backends_probe",) in cursor.fetchall()
    assert os.environ["MLFLOW_TRACKING_URI"] == uri
