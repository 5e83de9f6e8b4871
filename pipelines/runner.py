"""Run the main job of ``pipelines.definitions.defs`` in process (`holocrm run`), with progress and a summary.

The run is recorded in the Dagster instance under HOLOCRM_HOME/dagster, so `dagster dev` started with the
same DAGSTER_HOME shows it next to scheduled and sensor-started runs. A run whose process was killed stays
STARTED in the instance; every `run_all` first marks such runs (started by a runner on this host whose
process is gone) as failed, and the instance's run monitoring does the same for daemon-launched runs.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from holocrm_core.settings import Backends, HoloPaths, warehouse_root
from pipelines.executors import instance_yaml

DAGSTER_YAML = instance_yaml(Backends())  # the local SQLite instance (the default settings)
PID_TAG = "holocrm/pid"
HOST_TAG = "holocrm/host"
JOB_NAME = "holocrm_all"


def prepare_dagster_home(paths: HoloPaths) -> Path:
    """DAGSTER_HOME under the home, its dagster.yaml written for the settings' instance storage (SQLite, or
    PostgreSQL: pipelines.executors.instance_yaml); a dagster.yaml written by hand is left as it is."""
    home = paths.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    wanted = instance_yaml()
    if not config.exists() or (
        config.read_text().startswith("# Written by holocrm") and config.read_text() != wanted
    ):
        config.write_text(wanted)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


@dataclass
class AssetOutcome:
    asset: str
    metadata: dict
    seconds: float | None = None


@dataclass
class RunSummary:
    run_id: str
    success: bool
    seconds: float
    assets: list[AssetOutcome] = field(default_factory=list)
    failed_steps: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _metadata_value(value) -> object:
    raw = getattr(value, "value", value)
    if isinstance(raw, (int, float, str, bool)) or raw is None:
        return raw
    if isinstance(raw, (dict, list)):
        return raw
    return getattr(raw, "text", None) or getattr(raw, "md_str", None) or str(raw)


PROGRESS_LOGGER = "holocrm.progress"


class ProgressHandler(logging.Handler):
    """One line per step (start, done in N s, failure, check not passed) to a ``progress`` callable."""

    def __init__(self, progress: Callable[[str], None]):
        super().__init__()
        self.progress = progress
        self.started: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        step = meta.get("step_key") or ""
        if event is None:
            if record.levelno >= logging.WARNING:
                self.progress(f"  ! {step}: {record.getMessage()}")
            elif "progress: " in str(meta.get("orig_message") or record.getMessage()):
                text = str(meta.get("orig_message") or record.getMessage())  # a long step's rate, time left
                self.progress(f"    {step}: {text.split('progress: ', 1)[1]}")
            return
        kind = event.event_type_value
        if kind == "STEP_START":
            self.started[step] = time.perf_counter()
            self.progress(f"  > {step} ...")
        elif kind == "STEP_SUCCESS":
            took = time.perf_counter() - self.started.get(step, time.perf_counter())
            self.progress(f"  + {step} done in {took:.1f}s")
        elif kind == "STEP_FAILURE":
            self.progress(f"  x {step} FAILED: {step_error_text(event.event_specific_data.error)[:500]}")
        elif kind == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            if not data.passed:
                self.progress(f"  ! check {data.asset_key.to_user_string()}:{data.check_name} did not pass")


def step_error_text(error) -> str:
    """What went wrong in a failed step, in the product's words: Dagster wraps the asset's own exception in
    "Error occurred while executing op ..."; the innermost cause is the message a person can act on."""
    inner = error
    while getattr(inner, "cause", None) is not None:
        inner = inner.cause
    text = (getattr(inner, "message", None) or str(inner)).strip()
    return text or error.message.strip()


def progress_logger_def():
    """The ``progress`` logger of ``defs``: the python logger ``holocrm.progress``, whose handlers the runner
    attaches for the length of one run (so the same job serves `holocrm run` and `dagster dev`)."""
    import dagster as dg

    @dg.logger(description="One line per step for the terminal (holocrm run)")
    def progress_logger(_init_context):
        logger = logging.getLogger(PROGRESS_LOGGER)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        return logger

    return progress_logger


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user holds the pid: alive
        return True
    return True


def fail_abandoned_runs(instance) -> list[str]:
    """Mark as failed the runs still STARTED/STARTING whose runner process on this host is gone (killed).

    Runs started elsewhere (another host, the daemon) are left to the instance's run monitoring. Returns the
    run ids marked failed.
    """
    import dagster as dg

    host = socket.gethostname()
    marked = []
    runs = instance.get_runs(
        filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING], tags={HOST_TAG: host}
        )
    )
    for run in runs:
        pid = run.tags.get(PID_TAG, "")
        if not pid.isdigit() or int(pid) == os.getpid() or _pid_alive(int(pid)):
            continue
        instance.report_run_failed(
            run,
            message=f"the process running this run (pid {pid} on {host}) ended "
            "without finishing it (killed?): marked failed at the next start",
        )
        marked.append(run.run_id)
    return marked


def run_tags() -> dict[str, str]:
    """Tags that let the next start tell whether this run's process is still alive."""
    return {"holocrm/entrypoint": "cli", PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def run_all(
    export_dir: str | Path | None = None,
    profile: str | None = None,
    mapping: str | Path | None = None,
    paths: HoloPaths | None = None,
    progress: Callable[[str], None] = print,
    selection: list[str] | None = None,
    op_config: dict[str, dict] | None = None,
    wait_s: float = 0.0,
    shards: list[int] | None = None,
) -> RunSummary:
    """Materialize the main job of ``defs`` (or `selection`, asset names) on one export; never raises on a
    failed step. ``op_config``: asset name -> config values that replace its defaults (a smaller PPO budget,
    say: ``{"outreach_policy": {"total_timesteps": 16_384}}``). Holds the home's writer lock for the run:
    raises ``HomeLocked`` when another writer holds it past ``wait_s`` seconds (0: refuse at once).
    ``shards``: the partitioned assets run for these consecutive shards of the batch only (a resumable
    backfill shard by shard; the default is every shard in one run)."""
    from holocrm_core.homelock import home_lock

    paths = (paths or HoloPaths.default()).ensure()
    with home_lock(paths.home, "holocrm run", wait_s=wait_s, progress=progress):
        return _run_all_locked(export_dir, profile, mapping, paths, progress, selection, op_config, shards)


def _run_all_locked(
    export_dir, profile, mapping, paths: HoloPaths, progress, selection, op_config, shards=None
) -> RunSummary:
    import dagster as dg

    from holocrm_core.settings import ensure_mlflow_store
    from pipelines.definitions import defs

    ensure_mlflow_store()  # created once, before any step of this run touches it
    prepare_dagster_home(paths)
    instance = dg.DagsterInstance.get()
    for run_id in fail_abandoned_runs(instance):
        progress(f"marked run {run_id[:8]} failed: its process ended without finishing it")
    export_config = {
        "export_dir": str(export_dir or ""),
        "profile": profile or "",
        "mapping": str(mapping or ""),
    }
    job = defs.resolve_job_def(JOB_NAME)
    asset_selection = _with_siblings(defs, selection) if selection else None
    tags = {**run_tags(), **_batch_tags(instance, defs, paths, export_dir, asset_selection, shards)}
    handler = ProgressHandler(progress)
    logger = logging.getLogger(PROGRESS_LOGGER)
    logger.addHandler(handler)
    started = time.perf_counter()
    try:
        run = execute_job_in_process if _runs_here() else execute_job_on_executor
        result = run(
            job,
            run_config={
                "ops": {
                    name: {"config": values}
                    for name, values in (op_config or {}).items()
                    if selection is None or name in selection
                },
                "loggers": {"progress": {}},
                # defs' storage resource, pointed at this run's HOLOCRM_HOME by run config (no second defs)
                # and the export as the one resource every asset reading it uses (raw_export, attachment
                # files, the outreach log, the RL sample-world check)
                "resources": {
                    "storage": {"config": {"home": str(paths.home)}},
                    "io_manager": {"config": {"home": str(paths.home)}},
                    "export": {"config": export_config},
                },
            },
            instance=instance,
            tags=tags,
            asset_selection=asset_selection,
        )
    finally:
        logger.removeHandler(handler)
    summary = RunSummary(run_id=result.run_id, success=result.success, seconds=time.perf_counter() - started)
    from pipelines.io_manager import PARTITION_METADATA

    seen: set[str] = set()
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            mat = event.event_specific_data.materialization
            name = mat.asset_key.to_user_string()
            if name in seen:  # one materialization per partition (shard) of a run over a batch: one line
                continue
            seen.add(name)
            summary.assets.append(
                AssetOutcome(
                    name,
                    {k: _metadata_value(v) for k, v in mat.metadata.items() if k not in PARTITION_METADATA},
                )
            )
        elif event.event_type_value == "STEP_FAILURE":
            summary.failed_steps.append(event.step_key)
            summary.errors.append(f"{event.step_key}: {_root_cause(event.event_specific_data.error)}")
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            if not data.passed:
                summary.failed_checks.append(f"{data.asset_key.to_user_string()}:{data.check_name}")
    return summary


def backfill(
    export_dir: str | Path | None = None,
    paths: HoloPaths | None = None,
    progress: Callable[[str], None] = print,
    shards: list[int] | None = None,
    resume: bool = True,
    selection: list[str] | None = None,
    wait_s: float = 0.0,
) -> list[RunSummary]:
    """The partitioned assets of one export batch, shard by shard: one run per (level of the graph, shard),
    levels in dependency order (a shard's staged contacts need every shard's staged companies, the way a
    Dagster asset backfill orders its runs). ``resume``: a partition already written for this batch is not
    run again (an interrupted backfill goes on where it stopped; the LanceDB merge is always re-run, being
    idempotent). ``selection``: only these partitioned assets (their upstream must be built). Each step is
    announced as ``backfill <batch>|<shard> [i/n]: assets``. Returns the summaries of the runs made; stops at
    the first failed one. ``wait_s``: how long each run waits for the home's writer lock (``run_all``)."""
    from holocrm_core.landing import resolve_export_dir
    from pipelines.definitions import defs
    from pipelines.jobs import PARTITIONED_ASSETS
    from pipelines.partitions import SHARDS, batch_key

    paths = (paths or HoloPaths.default()).ensure()
    batch = batch_key(resolve_export_dir(paths.landing, export_dir).name)
    unknown = sorted(set(selection or ()) - set(PARTITIONED_ASSETS))
    if unknown:
        raise ValueError(
            f"not partitioned: {', '.join(unknown)} (a backfill runs the partitioned assets: "
            f"{', '.join(PARTITIONED_ASSETS)})"
        )
    wanted = set(selection or PARTITIONED_ASSETS)
    shard_list = sorted(set(shards)) if shards is not None else list(range(SHARDS))
    bad = [s for s in shard_list if not 0 <= s < SHARDS]
    if bad:
        raise ValueError(
            f"shards {bad} out of range: this deployment has {SHARDS} (0..{SHARDS - 1}, HOLOCRM_SHARDS)"
        )
    graph = defs.resolve_asset_graph()
    levels = [
        names
        for level in graph.toposorted_asset_keys_by_level
        if (names := sorted(k.to_user_string() for k in level if k.to_user_string() in wanted))
    ]
    total, step = len(levels) * len(shard_list), 0
    summaries: list[RunSummary] = []
    for names in levels:
        for shard in shard_list:
            step += 1
            where = f"backfill {batch}|{shard} [{step}/{total}]"
            if resume and shard_built(paths, batch, shard, names):
                progress(f"{where}: {', '.join(names)} already built")
                continue
            progress(f"{where}: {', '.join(names)}")
            summary = run_all(
                export_dir, paths=paths, progress=progress, selection=names, shards=[shard], wait_s=wait_s
            )
            summaries.append(summary)
            if not summary.success:
                return summaries
    return summaries


def shard_built(paths: HoloPaths, batch: str, shard: int, names: list[str]) -> bool:
    """Every table of ``names`` has its (batch, shard) partition. The LanceDB index has no partition table:
    its shard merge is idempotent and always re-run."""
    from holocrm_core.partitions import PartitionedTable
    from holocrm_core.warehouse import Warehouse

    if "similarity_index" in names:
        return False
    warehouse = Warehouse(warehouse_root(paths))
    return all(shard in PartitionedTable(warehouse, name).shards_written(batch) for name in names)


def _batch_tags(instance, defs, paths: HoloPaths, export_dir, asset_selection, shards=None) -> dict[str, str]:
    """The export batch this run ingests, registered as a partition, and the tags that make the run cover
    every shard of it (one process: the default path pays no per-shard start-up). No export found: the
    landing folder's FileNotFoundError (what to drop where), before any run starts."""
    from holocrm_core.landing import resolve_export_dir
    from pipelines.partitions import BATCHES, batch_key, batch_shards, shard_range_tags

    graph = defs.resolve_asset_graph()
    keys = asset_selection if asset_selection is not None else graph.get_all_asset_keys()
    if not any(graph.get(key).partitions_def == batch_shards for key in keys):
        return {}
    folder = resolve_export_dir(paths.landing, export_dir)
    batch = batch_key(folder.name)
    if not instance.has_dynamic_partition(BATCHES, batch):
        instance.add_dynamic_partitions(BATCHES, [batch])
    return shard_range_tags(batch, shards)


def _with_siblings(defs, selection: list[str]) -> list:
    """The selected assets and the outputs written with them (``--only staged_contacts`` also commits
    ``quarantine_contacts``: one multi-asset, one step)."""
    import dagster as dg

    expanded = dg.AssetSelection.assets(*selection).required_multi_asset_neighbors()
    return sorted(expanded.resolve(defs.resolve_asset_graph()), key=lambda key: key.to_user_string())


def _runs_here() -> bool:
    """True unless the settings name an executor that runs steps in other processes (multiprocess, Celery,
    Kubernetes jobs): those need the job reconstructable from its module and a persistent instance."""
    return Backends.load().executor in ("default", "in_process")


def execute_job_in_process(job, **kwargs):
    return job.execute_in_process(raise_on_error=False, **kwargs)


def holocrm_job():
    """The main job, as a reconstructable target: executors that run steps elsewhere import it by name."""
    from pipelines.definitions import defs

    return defs.resolve_job_def(JOB_NAME)


def execute_job_on_executor(job, run_config, instance, tags, asset_selection):
    """The run on the settings' executor (``defs``'s executor: pipelines.executors.executor_from_settings)."""
    import dagster as dg

    return dg.execute_job(
        dg.reconstructable(holocrm_job),
        instance=instance,
        run_config=run_config,
        tags=tags,
        asset_selection=asset_selection,
        raise_on_error=False,
    )


def _root_cause(error) -> str:
    """The innermost error of Dagster's wrapped ones, on one line (see ``step_error_text``)."""
    return " ".join(step_error_text(error).split())
