"""One settings file (or the environment) switches every backend; `holocrm where` shows them, secrets masked."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from holocrm_cli import app
from holocrm_core.settings import Backends, SettingsError, mask_uri
from holocrm_core.warehouse import Warehouse

SETTINGS = """
[dagster]
storage = "postgresql+psycopg2://dagster:pg-secret@db.internal:5432/dagster"
executor = "celery"
celery_broker = "redis://:redis-secret@redis.internal:6379/0"

[mlflow]
tracking_uri = "http://mlflow.internal:5000"
artifacts = "s3://crm-bucket/mlflow"

[lancedb]
uri = "s3://crm-bucket/lancedb"

[warehouse]
uri = "s3://crm-bucket/warehouse"

[s3]
endpoint_url = "http://minio.internal:9000"
access_key_id = "AKIAEXAMPLEKEY"
secret_access_key = "s3-very-secret-value"
"""

VARIABLES = (
    "HOLOCRM_DAGSTER_STORAGE", "HOLOCRM_EXECUTOR", "HOLOCRM_CELERY_BROKER", "HOLOCRM_CELERY_BACKEND",
    "MLFLOW_TRACKING_URI", "HOLOCRM_MLFLOW_ARTIFACTS", "HOLOCRM_LANCEDB_URI", "HOLOCRM_WAREHOUSE_URI",
    "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
)  # fmt: skip


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOLOCRM_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HOLOCRM_SETTINGS", raising=False)
    return monkeypatch


def test_defaults_are_the_embedded_backends(clean_env, tmp_path):
    backends = Backends.load()
    assert backends.executor == "default" and backends.source == "defaults"
    where = backends.described()
    assert where["dagster instance"].startswith("sqlite in ") and where["warehouse"].endswith("warehouse")
    assert where["s3 endpoint"] == "not used"


def test_the_settings_file_switches_everything_and_the_environment_wins(clean_env, tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text(SETTINGS)
    clean_env.setenv("HOLOCRM_SETTINGS", str(path))
    clean_env.setenv("HOLOCRM_LANCEDB_URI", "s3://other-bucket/lance")
    backends = Backends.load()
    assert backends.executor == "celery" and backends.warehouse_uri == "s3://crm-bucket/warehouse"
    assert backends.lancedb_uri == "s3://other-bucket/lance"  # the environment over the file
    assert backends.storage_options()["allow_http"] == "true"
    assert str(path) in backends.source and "HOLOCRM_LANCEDB_URI" in backends.source
    result = CliRunner().invoke(app, ["where"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["dagster_instance"] == "postgresql+psycopg2://dagster:***@db.internal:5432/dagster"
    assert (
        shown["executor"] == "celery (broker redis://:***@redis.internal:6379/0, visibility timeout 1800 s)"
    )
    assert (
        shown["mlflow"] == "http://mlflow.internal:5000"
        and shown["mlflow_artifacts"] == "s3://crm-bucket/mlflow"
    )
    assert shown["warehouse"] == "s3://crm-bucket/warehouse" and shown["lancedb"] == "s3://other-bucket/lance"
    for secret in ("pg-secret", "redis-secret", "s3-very-secret-value", "AKIAEXAMPLEKEY"):
        assert secret not in result.stdout
    assert isinstance(Warehouse(backends.warehouse_uri), Warehouse)  # an ObjectWarehouse, same API


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("HOLOCRM_EXECUTOR", "threads", "not one of default, in_process, multiprocess, celery, k8s"),
        ("HOLOCRM_DAGSTER_STORAGE", "mysql://u:pw@h/db", "is not a postgresql"),
        ("HOLOCRM_WAREHOUSE_URI", "gs://bucket/wh", "only a local folder or s3://"),
    ],
)
def test_a_bad_value_is_refused_with_its_reason(clean_env, variable, value, message):
    clean_env.setenv(variable, value)
    with pytest.raises(SettingsError, match=message):
        Backends.load()
    result = CliRunner().invoke(app, ["where"])
    assert result.exit_code == 2 and message in result.output
    assert "pw@" not in result.output


def test_celery_without_a_broker_and_a_broken_file_say_what_to_fix(clean_env, tmp_path):
    clean_env.setenv("HOLOCRM_EXECUTOR", "celery")
    with pytest.raises(SettingsError, match="HOLOCRM_CELERY_BROKER"):
        Backends.load()
    clean_env.delenv("HOLOCRM_EXECUTOR")
    bad = tmp_path / "bad.toml"
    bad.write_text("[dagster\nexecutor = 1")
    clean_env.setenv("HOLOCRM_SETTINGS", str(bad))
    with pytest.raises(SettingsError, match="not valid TOML"):
        Backends.load()
    clean_env.setenv("HOLOCRM_SETTINGS", str(tmp_path / "missing.toml"))
    with pytest.raises(SettingsError, match="not a file"):
        Backends.load()


def test_mask_uri_hides_only_the_password():
    assert mask_uri("postgresql://u:p@h:5/d?x=1") == "postgresql://u:***@h:5/d?x=1"
    assert mask_uri("s3://bucket/prefix") == "s3://bucket/prefix"
    assert mask_uri("/a/local/folder") == "/a/local/folder"
