"""Monitoring assets: drift checks on the staged tables and the models' inputs and outputs, the monitoring
report (drift, decay, freshness in words), freshness policies and checks, and the decay sensor.

Drift checks are WARN-severity and never block the graph: a blocking drift stops *promotion* (the gate
calls ``holocrm_core.monitoring.promotion_drift``), not serving. The decay sensor reads what the
``monitoring_report`` asset wrote and starts ``holocrm_retrain`` once per decayed champion version.
"""

import json
from datetime import timedelta

import dagster as dg

from holocrm_core.monitoring import POLICIES
from holocrm_core.monitoring._watch import REFERENCE_TABLES, SCORED_SKIP, STAGED, reference_store
from pipelines.resources import MLflowResource, StorageResource

GROUP = "monitoring"
CHECK = "drift_since_reference"


# -- drift checks on the staged tables and on the models' outputs (with the inputs beside each score) ------
@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            CHECK,
            asset=table,
            description="Columns that moved since the served champions' reference (PSI warn 0.1, block 0.25)",
        )
        for table in REFERENCE_TABLES
    ],
    can_subset=True,
)
def drift_since_reference(context: dg.AssetCheckExecutionContext, storage: StorageResource):

    from holocrm_core.monitoring import frame_drift

    paths = storage.paths()
    reference, warehouse = reference_store(paths), storage.warehouse()  # a folder or object storage
    for key in context.selected_asset_check_keys:
        table = key.asset_key.to_user_string()
        if not reference.exists(table) or not warehouse.exists(table):
            yield dg.AssetCheckResult(
                asset_key=key.asset_key,
                check_name=CHECK,
                passed=True,
                description="no reference yet: the monitoring_report asset takes one",
            )
            continue
        skip = SCORED_SKIP if table not in STAGED else ()
        report = frame_drift(reference.read(table), warehouse.read(table), table, exclude=skip)
        yield dg.AssetCheckResult(
            asset_key=key.asset_key,
            check_name=CHECK,
            passed=not report.moved,
            severity=dg.AssetCheckSeverity.WARN,
            description=report.summary(),
            metadata={
                "severity": report.severity,
                "moved": "\n".join(report.lines()[1:]) or "(none)",
                "drifted_share": round(report.drifted_share, 3),
            },
        )


# -- the report ---------------------------------------------------------------------------------------------
REPORT_CHECKS = {
    "champions_hold": "Every served champion holds on the outcomes after its promotion (AUC, calibration, reward)",
}


@dg.asset(
    group_name=GROUP,
    # after everything whose freshness it reports, so a first run does not call them "never built"
    deps=[*STAGED, "outcome_dataset", "scored_leads", "scored_deals", "action_log", "recommendations"]
    + ["similarity_index", "outreach_policy_report"],
    check_specs=[
        dg.AssetCheckSpec(name, asset="monitoring_report", description=d) for name, d in REPORT_CHECKS.items()
    ],
)
def monitoring_report(
    context: dg.AssetExecutionContext, storage: StorageResource, mlflow: MLflowResource
) -> dg.MaterializeResult:
    """Drift, decay and freshness in words; renews the drift reference when a champion changed."""
    from holocrm_core.monitoring import served_champions, take_reference, watch, write_state

    mlflow.configure()
    paths = storage.paths()
    champions = served_champions()
    report = watch(paths, champions=champions)
    write_state(paths, report)
    renewed = take_reference(paths, champions)
    for line in report.lines():
        context.log.info(line)
    return dg.MaterializeResult(
        metadata={
            "failing": report.failing(),
            "drift_blocking": ", ".join(r.name for r in report.drift_blocking) or "(none)",
            "decayed": ", ".join(
                f"{d.as_dict().get('model') or d.as_dict().get('policy')}" for d in report.decayed
            )
            or "(none)",
            "stale": ", ".join(f.name for f in report.stale) or "(none)",
            # training window vs open records: reported, not a check (they differ by construction)
            "model_inputs": "; ".join(r.summary() for r in report.inputs) or "(no scorer yet)",
            "reference_renewed": renewed,
            "report": dg.MetadataValue.md("\n".join(f"    {line}" for line in report.lines())),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="champions_hold",
                passed=not report.decayed,
                severity=dg.AssetCheckSeverity.WARN,
                description="; ".join(d.words for d in report.decay) or "no champion to judge",
            ),
        ],
    )


# -- freshness ----------------------------------------------------------------------------------------------
def with_freshness_policies(assets):
    """The assets with a time-window freshness policy (fail past the limit, warn at three quarters): the
    Dagster UI shows each one's freshness; ``/health`` and ``holocrm monitor`` read the same limits
    (``holocrm_core.monitoring.POLICIES``, ``HOLOCRM_FRESHNESS_<NAME>_HOURS``)."""
    limits = {p.asset: timedelta(hours=p.limit_hours()) for p in POLICIES}

    def attach(spec: dg.AssetSpec) -> dg.AssetSpec:
        limit = limits.get(spec.key.to_user_string())
        if limit is None:
            return spec
        return dg.apply_freshness_policy(
            spec, dg.FreshnessPolicy.time_window(fail_window=limit, warn_window=limit * 0.75)
        )

    return dg.map_asset_specs(attach, assets)


# -- decay -> retrain ---------------------------------------------------------------------------------------
retrain_job = dg.define_asset_job(
    "holocrm_retrain",
    selection=dg.AssetSelection.assets(
        "outcome_dataset",
        "lead_scoring_model",
        "deal_scoring_model",
        "scored_leads",
        "scored_deals",
        "monitoring_report",
    ),
    description="Retrain and re-gate the scorers on the newest outcomes (started by the decay sensor).",
)


def decayed_champions(paths) -> list[dict]:
    """The failed decay checks of the ``decay`` document (``decay.json``; what the sensor acts on)."""
    from holocrm_core.monitoring import read_state

    checks = read_state(paths, "decay").get("checks", [])
    return [c for c in checks if isinstance(c, dict) and c.get("failed")]


@dg.sensor(
    job=retrain_job,
    minimum_interval_seconds=3600,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="A champion that decayed on the outcomes after its promotion starts a retrain, once per version.",
)
def decay_sensor(context: dg.SensorEvaluationContext, storage: StorageResource):
    failed = decayed_champions(storage.paths())
    if not failed:
        return dg.SkipReason("every served champion holds (or none has been judged yet)")
    seen = set(json.loads(context.cursor)) if context.cursor else set()
    fresh = [c for c in failed if f"{c['model']}@{c.get('version')}" not in seen]
    if not fresh:
        return dg.SkipReason("the decayed champions already have a retrain requested")
    keys = sorted(seen | {f"{c['model']}@{c.get('version')}" for c in fresh})
    context.update_cursor(json.dumps(keys))
    reason = "; ".join(
        f"{c['model']} v{c.get('version')}: {', '.join(c.get('reasons') or [])}" for c in fresh
    )
    context.log.info(f"decay: retraining because {reason}")
    return dg.RunRequest(
        run_key="|".join(f"{c['model']}@{c.get('version')}" for c in fresh),
        tags={"holocrm/trigger": "decay", "holocrm/decay": reason[:200]},
    )


__all__ = [
    "decay_sensor",
    "drift_since_reference",
    "monitoring_report",
    "retrain_job",
    "with_freshness_policies",
]
