"""A/B experiments over HTTP: define, assign (logging the exposure once per served answer), report, stop,
promote. The same ``ExperimentService`` as the CLI; exposures go to a durable idempotent log."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from holocrm_api.deps import Protected
from holocrm_api.errors import ALWAYS, INVALID, PROTECTED, UNKNOWN, ApiError, error_doc
from holocrm_api.outcome_log import AppendOnlyLog
from holocrm_api.records import ID_PATTERN, ApiBody
from holocrm_core.experiments import METRICS, STRATEGIES, UNITS, Experiment, ExperimentError, Variant
from holocrm_core.experiments.service import ExperimentService

CONFLICT = {409: error_doc("Well-formed but not coherent: the name is taken, or variant names repeat")}
NOT_PROMOTABLE = {409: error_doc("Nothing to promote (no winner yet), or the winner failed its gate")}
router = APIRouter(
    tags=["experiments"],
    dependencies=[Protected],
    responses={**PROTECTED, **INVALID, **UNKNOWN, **ALWAYS},
)


def experiment_service(request: Request) -> ExperimentService:
    """One service per app, its exposure log opened once (built on first use)."""
    state = request.app.state
    service = getattr(state, "experiments", None)
    if service is None:
        paths = state.services.settings.paths.ensure()
        log = AppendOnlyLog(paths.logs / "exposures.ndjson", fingerprint_fields=("experiment", "unit_id"))
        service = state.experiments = ExperimentService(paths.home, log)
    return service


def _not_found(exc: ExperimentError) -> ApiError:
    status = 404 if str(exc).startswith("no experiment named") else 422
    return ApiError(status, "not_found" if status == 404 else "invalid_request", str(exc))


StrategyName = Literal[tuple(STRATEGIES)]
UnitName = Literal[tuple(UNITS)]
MetricName = Literal[tuple(METRICS)]


class VariantBody(ApiBody):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
    strategy: StrategyName = Field(description="What this variant serves")
    weight: float = Field(1.0, gt=0, le=1000)


class ExperimentBody(ApiBody):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    unit: UnitName = Field("contact", description="contact, deal or owner")
    variants: list[VariantBody] = Field(min_length=2, max_length=10, description="the first is the control")
    primary_metric: MetricName = "response_rate"
    guardrails: list[MetricName] = Field(default_factory=list, max_length=10)
    window_days: int = Field(30, ge=1, le=365)
    description: str = Field("", max_length=500)


class ExperimentOut(BaseModel):
    name: str
    unit: str
    variants: list[dict[str, Any]]
    primary_metric: str
    guardrails: list[str]
    window_days: int
    start: str | None
    stop: str | None
    promoted: str | None
    running: bool


class AssignmentOut(BaseModel):
    experiment: str
    unit_id: str
    variant: str
    strategy: str
    exposure_logged: bool = Field(description="False when this answer's exposure had been logged before")


class ReportOut(BaseModel):
    experiment: str
    units: dict[str, int]
    crossovers: int
    srm: dict[str, Any]
    results: list[dict[str, Any]]
    verdict: str
    decision: str
    notes: list[str]


def _out(e: Experiment) -> ExperimentOut:
    data = e.to_json()
    return ExperimentOut(
        **{k: data[k] for k in ExperimentOut.model_fields if k != "running"}, running=e.running
    )


@router.post("/api/experiments", status_code=201, response_model=ExperimentOut, responses=CONFLICT)
def create_experiment(body: ExperimentBody, request: Request) -> ExperimentOut:
    """Start an experiment: units are assigned by a hash of the experiment and the unit id (sticky)."""
    try:
        experiment = Experiment(
            body.name,
            body.unit,
            tuple(Variant(v.name, v.strategy, v.weight) for v in body.variants),
            body.primary_metric,
            tuple(body.guardrails),
            body.window_days,
            description=body.description,
        )
        created = experiment_service(request).create(experiment)
    except ExperimentError as exc:  # well-formed but not coherent (a name taken, variant names repeated): 409
        raise ApiError(409, "conflict", str(exc)) from exc
    return _out(created)


@router.get("/api/experiments", response_model=list[ExperimentOut])
def list_experiments(request: Request) -> list[ExperimentOut]:
    """Every experiment with its state."""
    return [_out(e) for e in experiment_service(request).list()]


@router.get("/api/experiments/{name}/assignment", response_model=AssignmentOut)
def experiment_assignment(
    name: str,
    request: Request,
    unit_id: str = Query(pattern=ID_PATTERN),
    answer_id: str | None = Query(None, pattern=ID_PATTERN, description="Log the exposure of this answer"),
) -> AssignmentOut:
    """The unit's variant. With ``answer_id`` (the id of what was shown) the exposure is logged once."""
    try:
        result = experiment_service(request).assign(name, unit_id, answer_id or f"srv-{uuid.uuid4()}")
    except ExperimentError as exc:
        raise _not_found(exc) from exc
    return AssignmentOut(**result.as_dict())


@router.get("/api/experiments/{name}/report", response_model=ReportOut)
def experiment_report(name: str, request: Request) -> ReportOut:
    """Units per variant, the sample-ratio check, effects with always-valid intervals, the verdict."""
    snap = request.app.state.services.loader.snapshot
    deals = snap.tables.get("staged_deals") if snap is not None else None
    try:
        report = experiment_service(request).report(name, deals)
    except ExperimentError as exc:
        raise _not_found(exc) from exc
    return ReportOut(**report.as_dict())


@router.post("/api/experiments/{name}/stop", response_model=ExperimentOut)
def stop_experiment(name: str, request: Request) -> ExperimentOut:
    """Stop assigning new exposures; the report stays readable."""
    try:
        return _out(experiment_service(request).stop(name))
    except ExperimentError as exc:
        raise _not_found(exc) from exc


@router.post("/api/experiments/{name}/promote", response_model=dict[str, str], responses=NOT_PROMOTABLE)
def promote_experiment(name: str, request: Request) -> dict[str, str]:
    """Serve the report's winner through the gate contract; 409 with the reason when it cannot be."""
    snap = request.app.state.services.loader.snapshot
    deals = snap.tables.get("staged_deals") if snap is not None else None
    try:
        experiment, message = experiment_service(request).promote(name, deals)
    except ExperimentError as exc:
        if str(exc).startswith("no experiment named"):
            raise _not_found(exc) from exc
        raise ApiError(409, "conflict", str(exc)) from exc
    return {"experiment": name, "promoted": experiment.promoted or "", "detail": message}
