"""Experiments as data: what is compared, on which units, by which metric, and where they are kept.

An experiment is a JSON document under ``HOLOCRM_HOME/experiments/<name>.json`` (written by atomic
replace, so a reader never sees half of one). Assignment is a pure function of the experiment's name, its
salt and the unit id (``assignment.py``): sticky across restarts and new exports with nothing stored.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

UNITS = ("contact", "deal", "owner")
# What a variant can serve. The score and recommendation endpoints read the variant's strategy.
STRATEGIES = {
    "scoring.champion": "the served lead/deal scorer (registry champion)",
    "scoring.challenger": "the newest registered challenger scorer",
    "scoring.heuristic": "the weighted heuristic score",
    "decisions.policy": "the served next-best-action policy",
    "decisions.cadence": "the fixed outreach cadence (email, then call, then meeting)",
    "decisions.ppo": "the PPO outreach policy",
    "decisions.bandit": "the contextual bandit",
}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class ExperimentError(ValueError):
    """An experiment definition or operation that cannot be carried out (the message says why)."""


@dataclass(frozen=True)
class Variant:
    name: str
    strategy: str
    weight: float = 1.0


@dataclass(frozen=True)
class Experiment:
    name: str
    unit: str
    variants: tuple[Variant, ...]
    primary_metric: str
    guardrails: tuple[str, ...] = ()
    window_days: int = 30  # outcomes count when they arrive within this many days of the first exposure
    salt: str = ""
    start: str | None = None  # ISO timestamps (UTC)
    stop: str | None = None
    relative_mde: float = 0.1  # the sequential test's mixing scale, fixed before the data (10% lift)
    description: str = ""
    promoted: str | None = None  # the variant promoted from a report, once
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def __post_init__(self):
        from holocrm_core.experiments.metrics import METRICS

        if not _NAME.match(self.name):
            raise ExperimentError(
                f"experiment name {self.name!r}: use 1-63 lowercase letters, digits, '-' or '_'"
            )
        if self.unit not in UNITS:
            raise ExperimentError(f"unit {self.unit!r}: expected one of {', '.join(UNITS)}")
        if len(self.variants) < 2:
            raise ExperimentError("an experiment needs at least two variants (the first is the control)")
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ExperimentError(f"variant names repeat: {names}")
        for v in self.variants:
            if v.strategy not in STRATEGIES:
                raise ExperimentError(
                    f"variant {v.name!r}: unknown strategy {v.strategy!r}; known: {', '.join(STRATEGIES)}"
                )
            if not v.weight > 0:
                raise ExperimentError(f"variant {v.name!r}: weight must be > 0")
        for metric in (self.primary_metric, *self.guardrails):
            if metric not in METRICS:
                raise ExperimentError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
        if self.window_days < 1:
            raise ExperimentError("window_days must be >= 1")

    @property
    def control(self) -> Variant:
        return self.variants[0]

    @property
    def weights(self) -> dict[str, float]:
        return {v.name: v.weight for v in self.variants}

    @property
    def running(self) -> bool:
        return self.stop is None

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise ExperimentError(f"experiment {self.name!r} has no variant {name!r}")

    def to_json(self) -> dict:
        data = asdict(self)
        data["variants"] = [asdict(v) for v in self.variants]
        data["guardrails"] = list(self.guardrails)
        return data

    @classmethod
    def from_json(cls, data: dict) -> Experiment:
        data = dict(data)
        data["variants"] = tuple(Variant(**v) for v in data["variants"])
        data["guardrails"] = tuple(data.get("guardrails", ()))
        return cls(**data)


class ExperimentStore:
    """The experiments of one HOLOCRM_HOME, one JSON file each."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _path(self, name: str) -> Path:
        return self.root / f"{name}.json"

    def list(self) -> list[Experiment]:
        if not self.root.exists():
            return []
        return [Experiment.from_json(json.loads(p.read_text())) for p in sorted(self.root.glob("*.json"))]

    def get(self, name: str) -> Experiment:
        path = self._path(name)
        if not path.exists():
            known = ", ".join(e.name for e in self.list()) or "none yet"
            raise ExperimentError(f"no experiment named {name!r} (known: {known})")
        return Experiment.from_json(json.loads(path.read_text()))

    def create(self, experiment: Experiment) -> Experiment:
        if self._path(experiment.name).exists():
            raise ExperimentError(f"an experiment named {experiment.name!r} exists already")
        if experiment.start is None:
            experiment = replace(experiment, start=datetime.now(UTC).isoformat(timespec="seconds"))
        self._write(experiment)
        return experiment

    def stop(self, name: str, at: str | None = None) -> Experiment:
        experiment = self.get(name)
        if experiment.stop is not None:
            return experiment  # stopping twice is the same as once
        stopped = replace(experiment, stop=at or datetime.now(UTC).isoformat(timespec="seconds"))
        self._write(stopped)
        return stopped

    def mark_promoted(self, name: str, variant: str) -> Experiment:
        experiment = self.get(name)
        experiment.variant(variant)
        promoted = replace(experiment, promoted=variant)
        self._write(promoted)
        return promoted

    def _write(self, experiment: Experiment) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{experiment.name}.", suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(experiment.to_json(), fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._path(experiment.name))
