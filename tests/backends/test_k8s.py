"""The Kubernetes deployment (deploy/k8s, deploy/Dockerfile) loads and validates against dagster-k8s's own config
schemas; no cluster needed. The image builds only where a Docker daemon answers (skipped otherwise)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RELEASE = "holocrm"
# The keys chart 1.13's values.schema.json allows under runLauncher.config.k8sRunLauncher (additionalProperties:
# false there: another key fails `helm upgrade`), and under its runK8sConfig.
CHART_K8S_RUN_LAUNCHER_KEYS = {
    "envConfigMaps", "envSecrets", "envVars", "failPodOnRunFailure", "image", "imagePullPolicy", "jobNamespace",
    "kubeconfigFile", "labels", "loadInclusterConfig", "resources", "runK8sConfig", "schedulerName",
    "securityContext", "volumeMounts", "volumes",
}  # fmt: skip
CHART_RUN_K8S_CONFIG_KEYS = {
    "containerConfig", "jobMetadata", "jobSpecConfig", "podSpecConfig", "podTemplateSpecMetadata",
}  # fmt: skip


def _values() -> dict:
    return yaml.safe_load((DEPLOY / "k8s" / "values.yaml").read_text())


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def chart_run_launcher_config(values: dict, namespace: str = RELEASE) -> dict:
    """The run_launcher config the chart renders into the instance's dagster.yaml from these values (its
    `dagsterYaml.runLauncher.k8s` template, for the keys HoloCRM sets)."""
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    config = {
        "load_incluster_config": launcher["loadInclusterConfig"],
        "job_namespace": launcher.get("jobNamespace", namespace),
        "image_pull_policy": launcher["imagePullPolicy"],
        "service_account_name": values["global"]["serviceAccountName"],
        "dagster_home": "/opt/dagster/dagster_home",
        "instance_config_map": f"{RELEASE}-dagster-instance",
        "postgres_password_secret": "dagster-postgresql-secret",
        "env_config_maps": [f"{RELEASE}-dagster-pipeline-env"]
        + [c["name"] for c in launcher.get("envConfigMaps", [])],
        "env_secrets": [s["name"] for s in launcher.get("envSecrets", [])],
        "env_vars": launcher.get("envVars", []),
        "fail_pod_on_run_failure": bool(launcher.get("failPodOnRunFailure")),
    }
    for key in ("labels", "resources", "volumeMounts", "volumes", "schedulerName", "securityContext"):
        if key in launcher:
            config[_snake(key)] = launcher[key]
    if "runK8sConfig" in launcher:
        config["run_k8s_config"] = {_snake(k): v for k, v in launcher["runK8sConfig"].items()}
    return config


def _validate(config_type, value) -> None:
    from dagster._config import validate_config

    result = validate_config(config_type, value)
    assert result.success, [error.message for error in result.errors]


def test_the_run_launcher_values_validate_against_k8s_run_launcher_config():
    from dagster_k8s import K8sRunLauncher

    values = _values()
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    assert set(launcher["config"]["k8sRunLauncher"]) <= CHART_K8S_RUN_LAUNCHER_KEYS
    assert set(launcher["config"]["k8sRunLauncher"]["runK8sConfig"]) <= CHART_RUN_K8S_CONFIG_KEYS
    _validate(K8sRunLauncher.config_type(), chart_run_launcher_config(values))
    broken = chart_run_launcher_config(values)
    broken["env_secrets"] = "holocrm-backends"  # a string where the schema wants a list: the check can fail
    from dagster._config import validate_config

    assert not validate_config(K8sRunLauncher.config_type(), broken).success


def test_the_step_executor_config_validates_and_the_job_accepts_it():
    import dagster as dg
    from dagster_k8s import k8s_job_executor

    from holocrm_core.settings import Backends
    from pipelines.executors import executor_from_settings

    run_config = yaml.safe_load((DEPLOY / "k8s" / "executor.yaml").read_text())
    _validate(k8s_job_executor.config_schema.config_type, run_config["execution"]["config"])
    executor = executor_from_settings(Backends(executor="k8s"))
    assert executor is k8s_job_executor

    @dg.asset
    def staged_contacts() -> None:
        return None

    job = dg.Definitions(assets=[staged_contacts], executor=executor).resolve_implicit_global_asset_job_def()
    assert dg.validate_run_config(job, run_config)["execution"]["k8s"]["max_concurrent"] == 8
    with pytest.raises(dg.DagsterInvalidConfigError):
        dg.validate_run_config(job, {"execution": {"config": {"max_concurrent": "eight"}}})


def test_the_code_location_image_serves_the_definitions_the_chart_names():
    values = _values()
    deployment = values["dagster-user-deployments"]["deployments"][0]
    module = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["dagster"]["module_name"]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", module]
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert f'"--module-name", "{module}"' in dockerfile and f'"--port", "{deployment["port"]}"' in dockerfile
    for source in re.findall(r"^COPY (.+) \S+$", dockerfile, flags=re.M):
        for path in source.split():
            assert (ROOT / path).exists(), f"deploy/Dockerfile copies {path}, which does not exist"
    assert any(s["name"] == "holocrm-backends" for s in deployment["envSecrets"])


def test_the_backends_secret_sets_only_known_settings_and_they_load():
    from holocrm_core.settings import _SOURCES, Backends

    secret = yaml.safe_load((DEPLOY / "k8s" / "secret.example.yaml").read_text())["stringData"]
    known = {variable for variable, _section, _key in _SOURCES.values()}
    assert set(secret) <= known, set(secret) - known
    backends = Backends.load(env=secret)
    assert backends.warehouse_uri.startswith("s3://") and backends.dagster_storage.startswith("postgresql+")


def _docker_works() -> str:
    if shutil.which("docker") is None:
        return "no docker CLI on this machine: the image build is not tried (deploy/Dockerfile checked above)"
    info = subprocess.run(["docker", "info"], capture_output=True, timeout=60)
    if info.returncode != 0:
        return "the docker CLI is here but no daemon answers: the image build is not tried"
    return ""


@pytest.mark.slow  # installs the whole stack into an image: many minutes
def test_the_code_location_image_builds_where_docker_works():
    reason = _docker_works()
    if reason:
        pytest.skip(reason)
    build = subprocess.run(
        ["docker", "build", "-f", str(DEPLOY / "Dockerfile"), "-t", "holocrm:test", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
