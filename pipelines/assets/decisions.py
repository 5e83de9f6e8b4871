"""Decision assets: the action log, the off-policy evaluation that gates the policy champion, recommendations.

``action_log`` joins every outreach action (the export's outreach log and the actions recorded through the
API) to its point-in-time context and outcome. ``policy_evaluation`` trains a contextual Thompson candidate
on older logs, estimates it against the champion and the logging policy on the newest ones, logs the MLflow
run and moves the ``champion`` alias of ``holocrm_action_policy`` only when the DR lower bound clears both.
``recommendations`` writes the champion's next action for every open contact, with reasons; with no
passed champion yet it falls back to per-segment Thompson sampling learned from the log (today's policy).
"""

import dagster as dg
import polars as pl

from pipelines.metadata import markdown_table
from pipelines.resources import ExportResource, MLflowResource, StorageResource

GROUP = "decisions"
ACTIONS_LOG_FILE = "actions.ndjson"  # the API's durable log of recorded action outcomes (holocrm_api)
STAGED = ["staged_contacts", "staged_companies", "staged_activities"]


def _staged(storage: StorageResource) -> dict[str, pl.DataFrame | None]:
    warehouse = storage.warehouse()
    return {name: warehouse.read(name) if warehouse.exists(name) else None for name in STAGED}


@dg.asset(
    group_name=GROUP,
    deps=STAGED,
    check_specs=[dg.AssetCheckSpec("action_log_no_rows_lost", asset="action_log")],
)
def action_log(
    context: dg.AssetExecutionContext, export: ExportResource, storage: StorageResource
) -> dg.MaterializeResult:
    """Every outreach action with its context at that moment, its propensity and outcome (nothing dropped)."""
    from holocrm_core.decisions.action_log import (
        build_action_log,
        read_export_outreach,
        read_recorded_actions,
    )

    export_dir, missing = export.folder_or_none(storage)  # the export raw_export read (one resource)
    if export_dir is None:
        context.log.warning(f"no export outreach log: {missing}")
    exported = read_export_outreach(export_dir)
    recorded = read_recorded_actions(storage.paths().logs / ACTIONS_LOG_FILE)
    staged = _staged(storage)
    logged = pl.concat([exported, recorded], how="vertical_relaxed")
    distinct = logged["action_id"].n_unique() if logged.height else 0
    log = build_action_log(
        logged, staged["staged_contacts"], staged["staged_companies"], staged["staged_activities"]
    )
    storage.warehouse().write("action_log", log)
    problems = dict(log.filter(~pl.col("usable")).group_by("problem").len().iter_rows()) if log.height else {}
    context.log.info(
        f"action_log: {log.height} actions ({exported.height} from the export, {recorded.height} "
        f"recorded through the API), {int(log['usable'].sum()) if log.height else 0} usable"
    )
    return dg.MaterializeResult(
        metadata={
            "rows": log.height,
            "from_export": exported.height,
            "recorded_via_api": recorded.height,
            "usable": int(log["usable"].sum()) if log.height else 0,
            "with_propensity": int(log["propensity"].is_not_null().sum()) if log.height else 0,
            "mean_reward": round(float(log["reward"].mean()), 4)
            if log.height and log["reward"].count()
            else None,
            "problems": dg.MetadataValue.json({str(k): v for k, v in problems.items()}),
            "export_dir": str(export_dir) if export_dir else "(none)",
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="action_log_no_rows_lost",
                passed=log.height == distinct,
                description=f"{distinct} distinct logged actions in, {log.height} rows out "
                "(duplicates of one action id collapse to its last record)",
            )
        ],
    )


@dg.asset(group_name=GROUP, deps=["action_log"])
def policy_evaluation(
    context: dg.AssetExecutionContext, storage: StorageResource, mlflow: MLflowResource
) -> dg.MaterializeResult:
    """Candidate vs champion vs logging policy off-policy; MLflow run; champion only past the gate."""
    from holocrm_core.decisions.champion import (
        evaluable,
        evaluate_candidate,
        load_champion_policy,
        log_evaluation,
    )

    uri = mlflow.configure()
    log = storage.warehouse().read("action_log")
    champion = load_champion_policy()
    try:
        evaluation = evaluate_candidate(log, *(champion or (None, None)))
    except ValueError as exc:
        context.log.warning(f"policy_evaluation: {exc}")
        return dg.MaterializeResult(
            metadata={"evaluated": False, "reason": str(exc), "evaluable_rows": evaluable(log).height}
        )
    run = log_evaluation(evaluation)
    context.log.info(f"holocrm_action_policy: {run.reason}")
    est = evaluation.estimates

    def value(policy: str, estimator: str):
        e = est.get(policy, {}).get(estimator)
        return None if e is None else round(e.value, 4)

    return dg.MaterializeResult(
        metadata={
            "evaluated": True,
            "promoted": run.promoted,
            "decision": run.reason,
            "registered_version": run.version or "(none)",
            "alias": run.alias or "(none)",
            "train_rows": evaluation.train_rows,
            "holdout_rows": evaluation.holdout_rows,
            "holdout_from": evaluation.holdout_from,
            "candidate_dr": value("candidate", "dr"),
            "candidate_dr_low": round(est["candidate"]["dr"].low, 4),
            "candidate_ips": value("candidate", "ips"),
            "candidate_snips": value("candidate", "snips"),
            "candidate_dm": value("candidate", "dm"),
            "candidate_ess": round(est["candidate"]["ips"].ess, 1),
            "champion_dr": value("champion", "dr"),
            "logging_value": value("logging", "on_policy"),
            "champion_before": evaluation.champion_version or "(none)",
            "mlflow_run": dg.MetadataValue.url(run.run_url),
            "mlflow_tracking_uri": uri,
        }
    )


@dg.asset(group_name=GROUP, deps=["policy_evaluation", "scored_leads", *STAGED])
def recommendations(
    context: dg.AssetExecutionContext, storage: StorageResource, mlflow: MLflowResource
) -> dg.MaterializeResult:
    """The champion policy's next action for every open contact, with priority, uncertainty and reasons."""
    from holocrm_core.decisions.action_log import context_frame
    from holocrm_core.decisions.champion import load_champion_policy
    from holocrm_core.decisions.policies import SegmentThompson
    from holocrm_core.decisions.recommend import open_contact_contexts, recommend

    mlflow.configure()
    warehouse = storage.warehouse()
    staged = _staged(storage)
    scored = warehouse.read("scored_leads") if warehouse.exists("scored_leads") else None
    contexts = open_contact_contexts(
        staged["staged_contacts"], staged["staged_companies"], staged["staged_activities"], scored
    )
    champion = load_champion_policy()
    if champion is not None:
        policy, version = champion[0], f"holocrm_action_policy/{champion[1]}"
    else:
        # No version has passed the gate: today's per-segment Thompson sampling, learned from the log.
        policy, version = SegmentThompson(seed=0), "segment_thompson (no champion yet)"
        log = (
            warehouse.read("action_log").filter(pl.col("usable")) if warehouse.exists("action_log") else None
        )
        if log is not None and log.height:
            policy.update(policy.encoder.encode(context_frame(log)), log["action"].to_list(), log["reward"])
    recs = recommend(policy, contexts, version=version)
    warehouse.write("recommendations", recs)
    counts = dict(recs.group_by("action").len().iter_rows()) if recs.height else {}
    context.log.info(f"recommendations: {recs.height} open contacts with {version}")
    return dg.MaterializeResult(
        metadata={
            "rows": recs.height,
            "policy_version": version,
            **{f"action_{a}": int(counts.get(a, 0)) for a in policy.actions},
            "high_priority": int((recs["priority"] == "high").sum()) if recs.height else 0,
            "mean_expected_success": round(float(recs["expected_success_rate"].mean()), 4)
            if recs.height
            else None,
            "preview": markdown_table(
                recs.select("contact_id", "action", "priority", "reasoning"), rows=5, width=200
            ),
        }
    )
