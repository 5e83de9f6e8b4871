"""The executor and the Dagster instance the settings ask for (holocrm_core.settings.Backends): Dagster's default
(``default``: in-process for `holocrm run`, multiprocess for runs launched by the webserver or daemon),
``in_process``, ``multiprocess``, Celery over Redis, or one Kubernetes job per step. README "Backends and executors" shows each configuration.

Celery is configured for at-least-once steps: a task is acknowledged only when it finished
(``task_acks_late``) and a task whose worker process died is put back on the queue
(``task_reject_on_worker_lost``), so a SIGKILL-ed worker's step runs again on another worker. That is safe
because every step is idempotent: the warehouse commits whole tables (or partitions) and LanceDB merges rows by
id, so a retried step rewrites the same content (tests/backends/test_celery.py kills a worker mid-step).

A whole worker killed (its main process too, or its machine) cannot put its step back: Redis redelivers an
unacknowledged message once it is older than the transport's visibility timeout (Redis's default: 1 h).
``HOLOCRM_CELERY_VISIBILITY_TIMEOUT`` (settings ``[dagster] celery_visibility_timeout``, default 1800 s) sets
it for the run and the workers alike (``celery_worker_yaml`` writes the workers' file), and the live workers
sweep for expired messages every tenth of it (at most 10 s), so such a step is retried within about
1.1 x the timeout (tested with 25 s). The timeout must exceed the longest step: a step still running past it
is started again on another worker (harmless, but the work is done twice).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from holocrm_core.settings import DEFAULT_VISIBILITY_TIMEOUT_S, Backends

if TYPE_CHECKING:
    import dagster as dg

# Celery app settings shared by the executor (the run's side) and the workers (deploy/celery/worker.yaml).
CELERY_CONFIG_SOURCE = {
    "task_acks_late": True,  # acknowledge after the step ran: a worker killed mid-step leaves it queued
    "task_reject_on_worker_lost": True,  # ... and a pool process killed mid-step puts it back at once
    "worker_prefetch_multiplier": 1,  # one step at a time per worker process: nothing held by a dying one
    "broker_connection_retry_on_startup": True,
}


def celery_config_source(backends: Backends | None = None) -> dict:
    """The Celery app settings for these settings: ``CELERY_CONFIG_SOURCE`` and the Redis transport's
    visibility timeout with a sweep for expired messages every tenth of it (1 to 10 s, every sweep a scan)."""
    timeout = backends.visibility_timeout_s if backends is not None else DEFAULT_VISIBILITY_TIMEOUT_S
    sweep = max(1, min(10, timeout // 10))
    return {
        **CELERY_CONFIG_SOURCE,
        "broker_transport_options": {
            "visibility_timeout": timeout,
            "unacked_restore_interval": sweep,
            "unacked_restore_throttle": 1,
            # the lock a sweep holds for milliseconds: a worker killed holding it blocks every other sweep
            # until it expires (kombu's default: 300 s), so it expires after three sweeps
            "unacked_mutex_expire": max(10, 3 * sweep),
        },
    }


def celery_executor_config(backends: Backends) -> dict:
    """The dagster-celery executor's config for these settings (broker, result backend, app settings)."""
    return {
        "broker": backends.celery_broker,
        "backend": backends.celery_backend or backends.celery_broker,
        "config_source": celery_config_source(backends),
    }


def celery_worker_yaml(backends: Backends | None = None) -> str:
    """The workers' config file (``dagster-celery worker start -y FILE``) for these settings: the broker and
    backend read from the environment, the app settings (visibility timeout included) as the run's.
    ``python -m pipelines.executors > worker.yaml`` writes it; deploy/celery/worker.yaml is the default's."""
    import yaml

    config = {
        "execution": {
            "config": {
                "broker": {"env": "HOLOCRM_CELERY_BROKER"},
                "backend": {"env": "HOLOCRM_CELERY_BACKEND"},
                "config_source": celery_config_source(backends),
            }
        }
    }
    return WORKER_YAML_HEADER + yaml.safe_dump(config, sort_keys=False)


WORKER_YAML_HEADER = """\
# The Celery workers' configuration: the same block as the run's celery executor (pipelines/executors.py,
# celery_executor_config; tests/backends/test_celery.py checks they agree). Written by
# `python -m pipelines.executors > deploy/celery/worker.yaml` for the default settings: regenerate it with the
# deployment's HOLOCRM_CELERY_VISIBILITY_TIMEOUT. Start each worker with the project on PYTHONPATH and the
# run's environment (DAGSTER_HOME with the PostgreSQL dagster.yaml, HOLOCRM_* backends):
#   dagster-celery worker start -A dagster_celery.app -y deploy/celery/worker.yaml -n worker-1 -- --concurrency=1
"""


def executor_from_settings(backends: Backends | None = None) -> dg.ExecutorDefinition | None:
    """The executor for ``defs`` (None = Dagster's default: in-process or multiprocess)."""
    import dagster as dg

    backends = backends or Backends.load()
    if backends.executor == "in_process":
        return dg.in_process_executor
    if backends.executor == "multiprocess":
        return dg.multiprocess_executor
    if backends.executor == "celery":
        from dagster_celery import celery_executor

        return celery_executor.configured(celery_executor_config(backends), name="celery")
    if backends.executor == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor  # configured by the run launcher's job config (deploy/k8s/values.yaml)
    return None


def instance_yaml(backends: Backends | None = None) -> str:
    """dagster.yaml for these settings: the local SQLite instance, or run/event/schedule storage on PostgreSQL
    (the URL read from HOLOCRM_DAGSTER_STORAGE at load time, so no password is written to disk)."""
    backends = backends or Backends.load()
    common = """telemetry:
  enabled: false
# The daemon marks runs whose worker died as failed (runs launched by `dagster dev`); in-process runs of
# `holocrm run` are cleaned up by pipelines.runner.fail_abandoned_runs.
run_monitoring:
  enabled: true
  poll_interval_seconds: 60
"""
    if not backends.dagster_storage:
        return "# Written by holocrm: local instance under HOLOCRM_HOME/dagster\n" + common
    return (
        "# Written by holocrm: the instance on PostgreSQL (HOLOCRM_DAGSTER_STORAGE; deploy/dagster/dagster.yaml)\n"
        "storage:\n  postgres:\n    postgres_url:\n      env: HOLOCRM_DAGSTER_STORAGE\n" + common
    )


if __name__ == "__main__":  # pragma: no cover - `python -m pipelines.executors > worker.yaml`
    print(celery_worker_yaml(Backends.load()), end="")
