"""Decision assets: the action log, the off-policy evaluation that gates the policy champion, recommendations.

``action_log`` joins every outreach action (the export's outreach log and the actions recorded through the
API) to its point-in-time context and outcome. ``policy_evaluation`` trains a contextual Thompson candidate
on older logs, estimates it against the champion and the logging policy on the newest ones, logs the MLflow
run and moves the ``champion`` alias of ``holocrm_action_policy`` only when the DR lower bound clears both.
``recommendations`` writes every open contact's next action from the decision service that the API and
the CLI answer with (``holocrm_core.decisions.service``), continuing from the state learned while serving.
"""

import dagster as dg
import polars as pl

from pipelines.io_manager import lazy_ins, optional_ins
from pipelines.metadata import markdown_table
from pipelines.resources import ExportResource, MLflowResource, StorageResource

GROUP = "decisions"
STAGED = ["staged_contacts", "staged_companies", "staged_activities"]


def _staged(inputs: dict) -> dict[str, pl.DataFrame | None]:
    """The staged tables' columns a decision context reads (``context_columns``), collected from the lazy
    inputs: at 1M contacts the whole activities table (texts included) is over 2 GB in memory."""
    from holocrm_core.decisions.action_log import context_columns

    tables = {}
    for name in STAGED:
        frame = inputs.get(name)
        if isinstance(frame, pl.LazyFrame):
            frame = frame.select(context_columns(name, frame.collect_schema().names())).collect()
        tables[name] = frame
    return tables


@dg.asset(
    group_name=GROUP,
    ins=lazy_ins(STAGED),
    check_specs=[dg.AssetCheckSpec("action_log_no_rows_lost", asset="action_log")],
)
def action_log(
    context: dg.AssetExecutionContext,
    export: ExportResource,
    storage: StorageResource,
    **inputs: pl.DataFrame | pl.LazyFrame | None,
):  # no return annotation: with check specs Dagster would type the value Nothing
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
    recorded = read_recorded_actions(storage.paths().actions_log)  # the API's durable log of recorded actions
    staged = _staged(inputs)
    logged = pl.concat([exported, recorded], how="vertical_relaxed")
    distinct = logged["action_id"].n_unique() if logged.height else 0
    log = build_action_log(
        logged, staged["staged_contacts"], staged["staged_companies"], staged["staged_activities"]
    )
    problems = dict(log.filter(~pl.col("usable")).group_by("problem").len().iter_rows()) if log.height else {}
    context.log.info(
        f"action_log: {log.height} actions ({exported.height} from the export, {recorded.height} "
        f"recorded through the API), {int(log['usable'].sum()) if log.height else 0} usable"
    )
    return dg.MaterializeResult(
        value=log,
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


@dg.asset(group_name=GROUP, ins={"action_log": dg.AssetIn("action_log"), **lazy_ins(STAGED)})
def policy_evaluation(
    context: dg.AssetExecutionContext,
    mlflow: MLflowResource,
    action_log: pl.DataFrame,
    **inputs: pl.DataFrame | pl.LazyFrame | None,
) -> dg.MaterializeResult:
    """Candidate vs champion vs logging policy off-policy; MLflow run; champion only past the gate."""
    from holocrm_core.decisions.champion import (
        evaluable,
        evaluate_candidate,
        load_champion_policy,
        log_evaluation,
    )
    from holocrm_core.decisions.recommend import fit_context_encoder

    uri = mlflow.configure()
    log = action_log
    champion = load_champion_policy()
    # The context encoder is fitted on the staged tables (every contact, custom fields included) and saved
    # with the candidate: serving encodes what was evaluated.
    encoder = fit_context_encoder(_staged(inputs))
    try:
        evaluation = evaluate_candidate(log, *(champion or (None, None))[:2], encoder=encoder)
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


@dg.asset(
    group_name=GROUP,
    deps=["policy_evaluation"],
    ins={**optional_ins(["action_log"]), **lazy_ins(["scored_leads", *STAGED])},
)
def recommendations(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    mlflow: MLflowResource,
    **inputs: pl.DataFrame | pl.LazyFrame | None,
) -> dg.MaterializeResult:
    """Every open contact's next action from the decision service the API and CLI answer with.

    The service starts from the online state the server learned (HOLOCRM_HOME/models/decisions), rebased on
    a newly promoted champion, and persists it again: the nightly run continues what serving learned.
    """
    from holocrm_core.decisions.recommend import OPEN_STATUSES
    from holocrm_core.decisions.service import DecisionService, read_outcome_records

    mlflow.configure()
    tables = dict(_staged(inputs))
    tables["action_log"] = inputs.get("action_log")
    scored = inputs.get("scored_leads")  # a scan: a context reads each contact's score and band only
    if scored is not None:
        names = scored.collect_schema().names()
        scored = scored.select([c for c in ("contact_id", "score", "band") if c in names]).collect()
    tables["scored_leads"] = scored
    service = DecisionService.build(tables, storage.paths().home)
    learned = service.replay(read_outcome_records(storage.paths().actions_log))
    open_ids = service.contexts.filter(
        pl.col("lifecycle_status").is_in(OPEN_STATUSES) | pl.col("lifecycle_status").is_null()
    )["contact_id"].to_list()
    answers = service.recommend_many(open_ids)
    service.close()
    recs = (
        pl.DataFrame(
            [
                {
                    **{
                        k: a.get(k)
                        for k in (
                            "contact_id",
                            "action",
                            "priority",
                            "expected_success_rate",
                            "uncertainty",
                            "trials",
                            "propensity",
                            "confidence",
                            "runner_up",
                            "reasoning",
                            "policy_version",
                        )
                    },
                    "policy": a["policy"]["name"],
                    "served_as": a["policy"]["served_as"],
                }
                for a in answers
            ],
            schema_overrides={"contact_id": pl.String, "policy_version": pl.String, "action": pl.String},
            infer_schema_length=None,
        )
        if answers
        else pl.DataFrame(schema={"contact_id": pl.String, "action": pl.String, "policy_version": pl.String})
    )
    counts = dict(recs.group_by("action").len().iter_rows()) if recs.height else {}
    info = service.policy_info
    context.log.info(f"recommendations: {recs.height} open contacts with {info['name']} {info['version']}")
    return dg.MaterializeResult(
        value=recs,
        metadata={
            "rows": recs.height,
            "policy": info["name"],
            "policy_version": str(info["version"]),
            "served_as": info["served_as"],
            "outreach_champion": service.outreach.version if service.outreach is not None else "(none)",
            "learned_online_since_base": len(service.learner.applied) if service.learner else 0,
            "replayed_from_api_log": learned,
            **{f"action_{a}": int(counts.get(a, 0)) for a in ("email", "call", "proposal", "wait")},
            "high_priority": int((recs["priority"] == "high").sum()) if recs.height else 0,
            "mean_expected_success": round(float(recs["expected_success_rate"].mean()), 4)
            if recs.height
            else None,
            "preview": markdown_table(
                recs.select("contact_id", "action", "priority", "reasoning"), rows=5, width=200
            )
            if recs.height
            else "(no open contacts)",
        },
    )
