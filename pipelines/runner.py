"""Run the whole asset graph in process (the main job behind `holocrm run`), with progress and a summary.

The run is recorded in the Dagster instance under HOLOCRM_HOME/dagster, so `dagster dev` started with the
same DAGSTER_HOME shows it next to scheduled and sensor-started runs.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from holocrm_core.settings import HoloPaths

DAGSTER_YAML = """# Written by holocrm: local instance under HOLOCRM_HOME/dagster
telemetry:
  enabled: false
"""


def prepare_dagster_home(paths: HoloPaths) -> Path:
    home = paths.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
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


def _progress_logger(progress: Callable[[str], None]):
    import dagster as dg

    class ProgressHandler(logging.Handler):
        started: dict[str, float] = {}

        def emit(self, record: logging.LogRecord) -> None:
            meta = getattr(record, "dagster_meta", None) or {}
            event = meta.get("dagster_event")
            step = meta.get("step_key") or ""
            if event is None:
                if record.levelno >= logging.WARNING:
                    progress(f"  ! {step}: {record.getMessage()}")
                return
            kind = event.event_type_value
            if kind == "STEP_START":
                self.started[step] = time.perf_counter()
                progress(f"  > {step} ...")
            elif kind == "STEP_SUCCESS":
                took = time.perf_counter() - self.started.get(step, time.perf_counter())
                progress(f"  + {step} done in {took:.1f}s")
            elif kind == "STEP_FAILURE":
                progress(f"  x {step} FAILED: {event.event_specific_data.error.message.strip()[:500]}")
            elif kind == "ASSET_CHECK_EVALUATION":
                data = event.event_specific_data
                if not data.passed:
                    progress(f"  ! check {data.asset_key.to_user_string()}:{data.check_name} did not pass")

    @dg.logger(description="One line per step for the terminal")
    def progress_logger(_init_context):
        logger = logging.getLogger("holocrm.progress")
        logger.setLevel(logging.DEBUG)
        logger.handlers = [ProgressHandler()]
        logger.propagate = False
        return logger

    return progress_logger


def run_all(
    export_dir: str | Path | None = None,
    profile: str | None = None,
    mapping: str | Path | None = None,
    paths: HoloPaths | None = None,
    progress: Callable[[str], None] = print,
    selection: list[str] | None = None,
) -> RunSummary:
    """Materialize the whole graph (or `selection`, asset names) on one export; never raises on a failed step."""
    import dagster as dg

    from pipelines.definitions import all_assets, all_checks, build_resources

    paths = (paths or HoloPaths.default()).ensure()
    prepare_dagster_home(paths)
    instance = dg.DagsterInstance.get()
    config = {"export_dir": str(export_dir or ""), "profile": profile or "", "mapping": str(mapping or "")}
    job = dg.define_asset_job("holocrm_all", selection=selection or dg.AssetSelection.all())
    defs = dg.Definitions(
        assets=all_assets,
        asset_checks=all_checks,
        jobs=[job],
        resources=build_resources(home=str(paths.home)),
        loggers={"progress": _progress_logger(progress)},
    )
    started = time.perf_counter()
    result = defs.resolve_job_def("holocrm_all").execute_in_process(
        run_config={
            "ops": {**({"raw_export": {"config": config}} if _reads_export(selection) else {}),
                    # the attachment files are read from the same export folder (issue 16)
                    **({"attachment_texts": {"config": {"export_dir": config["export_dir"]}}}
                       if selection is None or "attachment_texts" in selection else {})},
            "loggers": {"progress": {}},
        },
        instance=instance,
        raise_on_error=False,
        tags={"holocrm/entrypoint": "cli"},
    )
    summary = RunSummary(run_id=result.run_id, success=result.success, seconds=time.perf_counter() - started)
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            mat = event.event_specific_data.materialization
            summary.assets.append(
                AssetOutcome(mat.asset_key.to_user_string(), {k: _metadata_value(v) for k, v in mat.metadata.items()})
            )
        elif event.event_type_value == "STEP_FAILURE":
            summary.failed_steps.append(event.step_key)
            summary.errors.append(f"{event.step_key}: {event.event_specific_data.error.message.strip()}")
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            if not data.passed:
                summary.failed_checks.append(f"{data.asset_key.to_user_string()}:{data.check_name}")
    return summary



def _reads_export(selection: list[str] | None) -> bool:
    return selection is None or any(name.startswith("raw_") for name in selection)
