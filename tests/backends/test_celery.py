"""The same job on the Celery executor (two workers, a Redis broker) with the Dagster instance on PostgreSQL and
the warehouse and LanceDB on an S3 endpoint gives the same tables as the in-process run (warehouse tables and
LanceDB tables: row counts and order-free content hashes); a worker SIGKILL-ed mid-step loses and duplicates
nothing: the step runs again (pipelines/executors.py says why that is safe)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from holocrm_core.partitions import shard_table
from holocrm_core.settings import Backends
from holocrm_core.warehouse import Warehouse
from pipelines.executors import CELERY_CONFIG_SOURCE
from tests.support.services import start, stop

pytestmark = pytest.mark.slow  # two workers and two runs of the job: a minute or more

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# The partitioned graph (export batch x entity-id shard, pipelines/partitions.py) up to the similarity index, and
# what is derived from it without training: every step a separate Celery task; one run covers every shard of
# the batch (the runner's default), the IO manager writes each shard's partition and the union.
SELECTION = [
    "raw_contacts", "raw_companies", "raw_deals", "raw_activities", "raw_attachments",
    "staged_companies", "staged_contacts", "staged_deals", "staged_activities", "staged_attachments",
    "quarantine", "entity_documents", "outcome_dataset", "embeddings", "similarity_index",
]  # fmt: skip
KILLED_STEP = "entity_documents"  # a partitioned step mid-run (it writes one partition per shard)


def test_the_worker_config_matches_the_executor_config():
    config = yaml.safe_load((ROOT / "deploy" / "celery" / "worker.yaml").read_text())["execution"]["config"]
    assert config["config_source"] == CELERY_CONFIG_SOURCE
    assert config["broker"] == {"env": "HOLOCRM_CELERY_BROKER"}


def _export(tmp_path: Path) -> Path:
    from holocrm_core.synth import generate_export

    export = tmp_path / "export"
    generate_export(export, n_contacts=120, seed=5, truth_dir=tmp_path / "truth", with_attachment_files=False)
    return export


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOLOCRM_", "DAGSTER_", "AWS_"))}
    env.update(
        {
            "HOLOCRM_HOME": str(home),
            "DAGSTER_HOME": str(home / "dagster"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
            "PYTHONPATH": str(ROOT),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "DAGSTER_DISABLE_TELEMETRY": "1",
        }
    )
    env.update(extra)
    return env


def _run(env: dict[str, str], export: Path, log: Path) -> subprocess.CompletedProcess:
    only = [arg for name in SELECTION for arg in ("--only", name)]
    command = [sys.executable, "-m", "holocrm_cli", "run", "--export", str(export), *only]
    with open(log, "wb") as out:
        done = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=900)
    return done


def _is_vector(dtype) -> bool:
    return isinstance(dtype, pl.Array | pl.List) and dtype.inner.is_float()


def _fingerprint(frame: pl.DataFrame) -> tuple[int, str]:
    """Row count and a content hash that does not depend on row order. Float vector columns are left out:
    the int8 embedding model scales each batch, so a text embedded in another batch (a shard's step on a
    worker vs every shard in one run) gets a vector within cosine 0.99, not the same bytes; ``_vectors``
    compares those by cosine."""
    frame = frame.select([c for c, t in frame.schema.items() if not _is_vector(t)])
    rows = sorted(frame.sort(frame.columns).write_ndjson().splitlines())
    return frame.height, hashlib.sha256("\n".join(rows).encode()).hexdigest()


def _vectors(warehouse: Warehouse) -> dict[tuple[str, str], np.ndarray]:
    frame = warehouse.read("embeddings")
    matrix = np.asarray(frame.get_column("vector").to_list(), dtype=np.float64)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True) + 1e-12
    keys = zip(
        frame.get_column("entity_type").to_list(), frame.get_column("entity_id").to_list(), strict=True
    )
    return dict(zip(keys, matrix, strict=True))


def _tables(warehouse: Warehouse, lancedb_uri: str) -> dict[str, tuple[int, str]]:
    """Every warehouse table of the run, every partition of the partitioned ones, and every LanceDB table of
    the index, fingerprinted."""
    from holocrm_core.partitions import PartitionedTable
    from holocrm_core.settings import connect_lancedb

    found = {}
    for name in warehouse.tables():
        found[name] = _fingerprint(warehouse.read(name))
        table = PartitionedTable(warehouse, name)
        if table.exists():
            for batch in table.batches():
                for shard in sorted(table.shards_written(batch)):
                    part = table.batch(batch).read(shard_table(shard))
                    found[f"{name}/{batch}/{shard_table(shard)}"] = _fingerprint(part)
    db = connect_lancedb(lancedb_uri)
    for table_name in db.table_names():
        frame = pl.from_arrow(db.open_table(table_name).to_arrow())
        # the index's rows by id: its other columns (rotation, prefixes, hashes) derive from the vectors
        ids = [c for c in ("entity_id", "component") if c in frame.columns]
        found[f"lancedb/{table_name}"] = _fingerprint(frame.select(ids) if ids else frame.select([]))
    return found


class Workers:
    """``count`` dagster-celery workers (one process each: --concurrency=1), stopped at the end."""

    def __init__(self, env: dict[str, str], folder: Path, count: int = 2):
        config = ROOT / "deploy" / "celery" / "worker.yaml"
        self.processes = []
        for n in range(count):
            command = [
                str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app", "-y", str(config),
                "-n", f"holocrm-{n}", "-l", "info", "--", "--concurrency=1", "--without-gossip",
                "--without-mingle", "--without-heartbeat",
            ]  # fmt: skip
            self.processes.append(start(command, folder / f"worker-{n}.log", env=env))

    def stop(self) -> None:
        for process in self.processes:
            stop(process)


class StepKiller(threading.Thread):
    """Watches the run's event log in PostgreSQL; when ``step`` starts, SIGKILLs the process running it (the
    Celery worker's pool process) and remembers whether the step had already finished (then it was too late)."""

    def __init__(self, postgres_url: str, step: str, timeout_s: float = 600):
        super().__init__(daemon=True)
        self.url = postgres_url.replace("postgresql+psycopg2://", "postgresql://")
        self.step, self.deadline = step, time.monotonic() + timeout_s
        self.killed_pid: int | None = None
        self.finished_before_kill = False
        self.done = threading.Event()

    def _events(self, cursor, kind: str) -> list[dict]:
        cursor.execute(
            "SELECT event FROM event_logs WHERE dagster_event_type = %s AND step_key = %s ORDER BY id",
            (kind, self.step),
        )
        return [json.loads(row[0]) for row in cursor.fetchall()]

    def run(self) -> None:
        import psycopg2

        connection = None
        while not self.done.is_set() and time.monotonic() < self.deadline:
            try:
                connection = connection or psycopg2.connect(self.url)
                connection.autocommit = True
                with connection.cursor() as cursor:
                    started = self._events(cursor, "STEP_START")
                    if started:
                        pid = started[0]["dagster_event"]["pid"]  # the process that runs the step
                        os.kill(pid, signal.SIGKILL)
                        self.killed_pid = pid
                        self.finished_before_kill = bool(self._events(cursor, "STEP_SUCCESS"))
                        return
            except psycopg2.Error:  # the tables appear when the first run starts
                connection = None
            time.sleep(0.02)

    def starts(self) -> int:
        import psycopg2

        with psycopg2.connect(self.url) as connection, connection.cursor() as cursor:
            return len(self._events(cursor, "STEP_START"))


def test_celery_on_postgres_and_s3_gives_the_in_process_tables_after_a_killed_worker(
    tmp_path, postgres, redis_broker, s3_endpoint
):
    export = _export(tmp_path)
    local_home = tmp_path / "local"
    started = time.monotonic()
    done = _run(_env(local_home), export, tmp_path / "local.log")
    local_seconds = time.monotonic() - started
    assert done.returncode == 0, (tmp_path / "local.log").read_text()[-3000:]
    expected = _tables(Warehouse(local_home / "warehouse"), str(local_home / "lancedb"))
    assert {"staged_contacts", "embeddings", "quarantine"} <= set(expected)
    assert any(name.startswith("embeddings/") for name in expected)  # partitions, one per shard
    assert any(name.startswith("lancedb/") for name in expected)

    home = tmp_path / "celery"
    backends = {
        "HOLOCRM_EXECUTOR": "celery",
        "HOLOCRM_CELERY_BROKER": redis_broker,
        "HOLOCRM_CELERY_BACKEND": redis_broker,
        "HOLOCRM_DAGSTER_STORAGE": postgres("dagster_celery"),
        "HOLOCRM_WAREHOUSE_URI": f"s3://{s3_endpoint.bucket}/celery/warehouse",
        "HOLOCRM_LANCEDB_URI": f"s3://{s3_endpoint.bucket}/celery/lancedb",
        **s3_endpoint.env(),
    }
    env = _env(home, **backends)
    (home / "dagster").mkdir(parents=True)
    from pipelines.executors import instance_yaml

    (home / "dagster" / "dagster.yaml").write_text(instance_yaml(Backends.load(backends)))
    workers = Workers(env, tmp_path)
    killer = StepKiller(backends["HOLOCRM_DAGSTER_STORAGE"], KILLED_STEP)
    killer.start()
    try:
        started = time.monotonic()
        done = _run(env, export, tmp_path / "celery.log")
        seconds = time.monotonic() - started
    finally:
        killer.done.set()
        workers.stop()
    output = (tmp_path / "celery.log").read_text()
    assert done.returncode == 0, output[-3000:] + "\n".join(
        (tmp_path / f"worker-{n}.log").read_text()[-2000:] for n in range(2)
    )
    worker_logs = [(tmp_path / f"worker-{n}.log").read_text() for n in range(2)]
    assert all("] received" in log for log in worker_logs), "each of the two workers was given steps"
    assert any("WorkerLostError" in log for log in worker_logs)  # the kill, as Celery saw it
    old = dict(os.environ)
    try:
        os.environ.update(s3_endpoint.env())
        got = _tables(Warehouse(backends["HOLOCRM_WAREHOUSE_URI"]), backends["HOLOCRM_LANCEDB_URI"])
        got_vectors = _vectors(Warehouse(backends["HOLOCRM_WAREHOUSE_URI"]))
    finally:
        os.environ.clear()
        os.environ.update(old)
    assert got == expected, {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}
    expected_vectors = _vectors(Warehouse(local_home / "warehouse"))
    assert got_vectors.keys() == expected_vectors.keys()
    assert min(float(got_vectors[k] @ expected_vectors[k]) for k in expected_vectors) >= 0.99
    # the worker process running the step was killed mid-step, and the step ran again to success
    assert killer.killed_pid is not None, "the step never started"
    assert not killer.finished_before_kill, f"{KILLED_STEP} finished before the kill: the test proved nothing"
    assert killer.starts() >= 2
    print(
        f"{len(SELECTION)} assets: in-process {local_seconds:.1f} s, celery (2 workers, one killed) {seconds:.1f} s"
    )
