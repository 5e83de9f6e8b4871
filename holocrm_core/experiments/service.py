"""What the CLI, the API, the report asset and the field simulation do with experiments, in one place.

``ExperimentService(paths, exposures)`` keeps the definitions under ``HOLOCRM_HOME/experiments`` and appends
exposures to a durable idempotent log (``logs/exposures.ndjson``; any object with ``append(record)`` and
``records()`` works, the API passes its ``AppendOnlyLog``). A report reads the exposures, the action and
outcome logs and the staged deals; it is written beside the definitions as JSON and PNG.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from holocrm_core.experiments.assignment import Assigner, exposure_key
from holocrm_core.experiments.metrics import events_from_logs
from holocrm_core.experiments.model import Experiment, ExperimentError, ExperimentStore
from holocrm_core.experiments.report import Report, analyse, plot


@dataclass(frozen=True)
class Assignment:
    experiment: str
    unit_id: str
    variant: str
    strategy: str
    exposure_logged: bool  # False: this answer's exposure had been logged before (a retry)

    def as_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "unit_id": self.unit_id,
            "variant": self.variant,
            "strategy": self.strategy,
            "exposure_logged": self.exposure_logged,
        }


def _read_ndjson(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    with path.open("rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                break  # a torn tail was never acknowledged
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict):
                out.append(record)
    return out


class ExperimentService:
    def __init__(self, home: str | Path, exposures=None):
        self.home = Path(home)
        self.store = ExperimentStore(self.home / "experiments")
        self.logs = self.home / "logs"
        self._exposures = exposures
        self._assigners: dict[str, tuple[Experiment, Assigner]] = {}

    @property
    def exposures_path(self) -> Path:
        return self.logs / "exposures.ndjson"

    def _log(self):
        if self._exposures is None:
            # deferred: the durable log lives with the serving layer's writers; a plain reader suffices here
            raise ExperimentError("no exposure log is attached to this service (read-only use)")
        return self._exposures

    # -- definitions -----------------------------------------------------------------------------------
    def create(self, experiment: Experiment) -> Experiment:
        created = self.store.create(experiment)
        self._assigners.pop(created.name, None)
        return created

    def list(self) -> list[Experiment]:
        return self.store.list()

    def get(self, name: str) -> Experiment:
        return self.store.get(name)

    def stop(self, name: str) -> Experiment:
        self._assigners.pop(name, None)
        return self.store.stop(name)

    def running_for(self, unit: str) -> list[Experiment]:
        return [e for e in self.store.list() if e.running and e.unit == unit]

    # -- serving ---------------------------------------------------------------------------------------
    def assign(self, name: str, unit_id: str, answer_id: str | None = None) -> Assignment:
        """The unit's variant; with ``answer_id`` the exposure of that served answer is logged (once)."""
        cached = self._assigners.get(name)
        if cached is None:
            experiment = self.store.get(name)
            cached = self._assigners[name] = (experiment, Assigner(experiment))
        experiment, assigner = cached
        variant = assigner(unit_id)
        logged = False
        if answer_id is not None and experiment.running:
            result = self._log().append(
                {
                    "idempotency_key": exposure_key(name, unit_id, answer_id),
                    "experiment": name,
                    "unit": experiment.unit,
                    "unit_id": unit_id,
                    "variant": variant,
                    "answer_id": answer_id,
                    "served_at": datetime.now(UTC).isoformat(timespec="microseconds"),
                }
            )
            logged = result.created
        return Assignment(name, unit_id, variant, experiment.variant(variant).strategy, logged)

    # -- analysis --------------------------------------------------------------------------------------
    def exposures_frame(self) -> pl.DataFrame:
        records = (
            self._exposures.records() if self._exposures is not None else _read_ndjson(self.exposures_path)
        )
        if not records:
            return pl.DataFrame(
                schema={
                    "experiment": pl.String,
                    "unit_id": pl.String,
                    "variant": pl.String,
                    "served_at": pl.String,
                }
            )
        return pl.DataFrame(records, infer_schema_length=None).select(
            "experiment", pl.col("unit_id").cast(pl.String), "variant", pl.col("served_at").cast(pl.String)
        )

    def report(self, name: str, deals: pl.DataFrame | None = None, write: bool = True) -> Report:
        experiment = self.store.get(name)
        events = events_from_logs(
            experiment.unit,
            _read_ndjson(self.logs / "actions.ndjson"),
            _read_ndjson(self.logs / "outcomes.ndjson"),
            deals,
        )
        report = analyse(experiment, self.exposures_frame(), events)
        if write:
            folder = self.store.root / "reports"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{name}.json").write_text(json.dumps(report.as_dict(), indent=2, default=str))
            plot(report, folder / f"{name}.png")
        return report

    def promote(self, name: str, deals: pl.DataFrame | None = None) -> tuple[Experiment, str]:
        """Promote the report's winner through the gate contract; refuses with the reason otherwise."""
        experiment = self.store.get(name)
        report = self.report(name, deals)
        if not report.decision.startswith("ship:"):
            raise ExperimentError(f"nothing to promote: {report.verdict}")
        variant = experiment.variant(report.decision.split(":", 1)[1])
        message = promote_strategy(variant.strategy, experiment.unit)
        return self.store.mark_promoted(name, variant.name), message


def promote_strategy(strategy: str, unit: str) -> str:
    """Make ``strategy`` the served one, only through its gate: a version that failed its gate is refused."""
    if strategy == "scoring.challenger":
        import mlflow

        from holocrm_core.registry import CHALLENGER, CHAMPION, MODEL_NAMES, champion_version, gate_passed

        model = MODEL_NAMES.get(unit)
        if model is None:
            raise ExperimentError(f"no scorer is served per {unit}")
        info = champion_version(model, CHALLENGER)
        if info is None:
            raise ExperimentError(f"{model} has no challenger version to promote")
        if not gate_passed(info):
            reason = (info.tags or {}).get("holocrm.gate_reason", "no gate verdict recorded")
            raise ExperimentError(f"{model} v{info.version} failed its gate and cannot be served: {reason}")
        mlflow.MlflowClient().set_registered_model_alias(model, CHAMPION, info.version)
        return f"{model} v{info.version} (gate passed) is now the champion"
    if strategy in ("scoring.champion", "decisions.policy"):
        return "the control strategy is already the served one; nothing changes"
    raise ExperimentError(
        f"{strategy!r} is promoted by its own gate (`holocrm policy evaluate` / `holocrm rl train`), "
        "not from an experiment report"
    )
