"""The one resolver of what is served: the pipeline's scoring, the CLI and the API all ask it.

What is served for an entity is the version behind the ``champion`` alias when its gate passed (tag
``holocrm.gate`` = passed); when the alias sits on a version without that tag (set by hand, say), the newest
earlier version that passed; else the weighted heuristic (calibrated on the outcome dataset). The line
that explains it is the verdict line the last gate wrote on the registered model (``holocrm.verdict``),
so every door shows the same words; only when the registry was changed behind the gate's back is a line
composed here, saying so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from holocrm_core.registry.store import (
    GATE_TAG,
    MODEL_NAMES,
    SERVED_TAG,
    VERDICT_TAG,
    champion_version,
    gate_passed,
    model_tags,
)

HEURISTIC = "heuristic"


def nothing_registered_line(model_name: str) -> str:
    """The verdict line while no learned scorer exists (every door, a registry or not)."""
    return f"{model_name}: serving the weighted heuristic: no learned scorer has been registered yet"


@dataclass(frozen=True)
class ServedChoice:
    """Which scorer answers for one entity, and the line saying why."""

    entity: str
    model_name: str
    version: str  # registered version number, or "heuristic"
    served_as: str  # champion | previous_passing | heuristic
    line: str
    info: Any = None  # the MLflow ModelVersion (None for the heuristic)

    @property
    def model_version(self) -> str:
        """``holocrm_lead_scorer/3`` for a registered version, ``heuristic`` otherwise."""
        return HEURISTIC if self.version == HEURISTIC else f"{self.model_name}/{self.version}"


def resolve(entity: str, model_name: str | None = None) -> ServedChoice:
    """What serves ``entity`` now, by the registry's alias and gate tags (MLflow configured by the caller)."""
    import mlflow

    name = model_name or MODEL_NAMES[entity]
    tags = model_tags(name)
    stored, stored_served = tags.get(VERDICT_TAG), tags.get(SERVED_TAG)
    champion = champion_version(name)
    if champion is not None and gate_passed(champion):
        version = str(champion.version)
        line = stored if stored and stored_served == version else None
        line = line or champion.tags.get(VERDICT_TAG) or f"{name}: serving v{version}, gate passed"
        return ServedChoice(entity, name, version, "champion", line, champion)
    if champion is None:
        if stored and stored_served == HEURISTIC:
            return ServedChoice(entity, name, HEURISTIC, HEURISTIC, stored)
        line = (
            f"{name}: serving the weighted heuristic: the champion alias was removed outside the gate "
            f"(the last verdict: {stored})"
            if stored
            else nothing_registered_line(name)
        )
        return ServedChoice(entity, name, HEURISTIC, HEURISTIC, line)
    why = (
        f"champion v{champion.version} has no {GATE_TAG}=passed tag "
        f"({GATE_TAG}={champion.tags.get(GATE_TAG, 'absent')}): its checks did not all pass"
    )
    earlier = [
        v
        for v in mlflow.MlflowClient().search_model_versions(f"name='{name}'")
        if int(v.version) < int(champion.version) and gate_passed(v)
    ]
    if earlier:
        best = max(earlier, key=lambda v: int(v.version))
        line = f"{name}: serving v{best.version}, the newest version that passed its gate: {why}"
        return ServedChoice(entity, name, str(best.version), "previous_passing", line, best)
    line = f"{name}: serving the weighted heuristic, no version passed its gate: {why}"
    return ServedChoice(entity, name, HEURISTIC, HEURISTIC, line)


def heuristic_scorer(entity: str, warehouse=None):
    """The weighted heuristic, calibrated on the outcome dataset in ``warehouse`` when there is one."""
    import polars as pl

    from holocrm_core.scoring import WeightedHeuristicScorer, entity_rows

    rows = pl.DataFrame()
    if warehouse is not None and warehouse.exists("outcome_dataset"):
        rows = entity_rows(warehouse.read("outcome_dataset"), entity)
    labels = rows["label"].to_numpy() if rows.height else np.array([], dtype=int)
    return WeightedHeuristicScorer().fit(rows, labels)


def load_served(choice: ServedChoice, warehouse=None):
    """The scorer behind a choice: the registered pyfunc by version number, or the fitted heuristic."""
    if choice.version == HEURISTIC:
        return heuristic_scorer(choice.entity, warehouse)
    import mlflow

    # By number, not by alias: the alias may move between reading it and loading.
    return mlflow.pyfunc.load_model(f"models:/{choice.model_name}/{choice.version}")


def scorer_in_use(entity: str, warehouse=None, model_name: str | None = None):
    """``(scorer, model_version)`` that scores ``entity`` now (see ``resolve``)."""
    choice = resolve(entity, model_name)
    return load_served(choice, warehouse), choice.model_version


def verdict_lines() -> dict[str, str]:
    """The verdict line of each scoring model, as every door shows it."""
    return {entity: resolve(entity).line for entity in MODEL_NAMES}
