"""RL assets: the PPO outreach policy trained in a simulator fitted from the logs, gated, and its report.

``outreach_policy`` fits the simulator (response model from the logged outreach; deal values and lead
scores from the export), trains PPO in it (resuming an interrupted run from its checkpoint), plays it and
every baseline on held-out contacts, checks it off-policy on the logged actions, logs an MLflow run and
registers ``holocrm_outreach_policy``; ``champion`` moves only through the gate. ``outreach_policy_report``
turns the judgement into the comparison table a person reads (also attached to the MLflow run).
"""

import hashlib
import json
import shutil
from pathlib import Path

import dagster as dg
import polars as pl

from pipelines.assets.outcomes import STAGED, read_staged
from pipelines.io_manager import optional_ins
from pipelines.metadata import markdown_table
from pipelines.resources import ExportResource, MLflowResource, StorageResource

GROUP = "rl"
JUDGEMENT_FILE = "judgement.json"


class OutreachPolicyConfig(dg.Config):
    """Training budget and world; the defaults keep `./dev run` to a minute or two on the sample export."""

    total_timesteps: int = 300_000
    n_envs: int = 256
    n_steps: int = 32
    batch_size: int = 2048
    n_epochs: int = 4
    learning_rate: float = 1e-3
    gamma: float = 0.98
    ent_coef: float = 0.01
    stage_shaping: float = 0.3
    time_limit_s: float = 240.0
    history_episodes: int = 5000
    simulator_members: int = 3
    eval_episodes: int = 2000
    horizon_days: int = 14
    seed: int = 0
    resume: bool = True
    generated: str = "auto"  # "auto": a sample export when its truth folder holds the response model


def _folder(storage: StorageResource) -> Path:
    return storage.paths().outreach_policy


def sample_world(storage: StorageResource, export: ExportResource) -> bool:
    """Is the export this run read the generator's? Its truth (with the response model) is in
    HOLOCRM_HOME/truth or beside the export folder, where the generator writes it by default."""
    paths = storage.paths()
    candidates = [paths.truth]
    folder, _ = export.folder_or_none(storage)
    if folder is not None:
        candidates.append(folder.parent / "truth")
    return any((folder / "action_response.parquet").exists() for folder in candidates)


def _fingerprint(sim, params: dict) -> str:
    """What a checkpoint was trained on: resume only a run of the same simulator and settings."""
    digest = hashlib.sha256(sim.table.probs.tobytes())
    digest.update(json.dumps(params, sort_keys=True, default=str).encode())
    digest.update(",".join(sim.train_starts.contact_id.tolist()).encode())
    return digest.hexdigest()[:16]


@dg.asset(group_name=GROUP, deps=["outcome_dataset"], ins=optional_ins([*STAGED, "action_log"]))
def outreach_policy(
    context: dg.AssetExecutionContext,
    config: OutreachPolicyConfig,
    storage: StorageResource,
    mlflow: MLflowResource,
    export: ExportResource,
    **inputs: pl.DataFrame | None,
) -> dg.MaterializeResult:
    """PPO outreach policy (email / call / proposal / wait) trained in the fitted CRM simulator, judged on
    held-out contacts against random, always-email, cadence and Thompson sampling, checked off-policy (DR),
    registered as holocrm_outreach_policy; champion only through the gate."""
    from holocrm_core.rl.fit import NotEnoughOutreach
    from holocrm_core.rl.outreach import OutreachSettings, judge_outreach_policy, prepare_simulator
    from holocrm_core.rl.tracking import log_outreach_policy
    from holocrm_core.rl.train import PPOSettings, settings_dict, train_ppo
    from holocrm_core.rl.world import WorldConfig

    uri = mlflow.configure()
    generated = (
        sample_world(storage, export)
        if config.generated == "auto"
        else config.generated.lower() in ("1", "true", "yes")
    )
    recorded = inputs.get("action_log")
    settings = OutreachSettings(
        config.history_episodes,
        config.simulator_members,
        config.eval_episodes,
        seed=config.seed,
        world=WorldConfig(horizon_days=config.horizon_days),
    )
    folder = _folder(storage)
    try:
        sim = prepare_simulator(read_staged(inputs), settings, recorded_log=recorded, generated=generated)
    except NotEnoughOutreach as exc:
        # Too little history is a state of the data, not a failure of the graph: say so, serve nothing new.
        context.log.warning(str(exc))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / JUDGEMENT_FILE).write_text(json.dumps({"skipped": str(exc), "gate": "skipped"}))
        return dg.MaterializeResult(metadata={"gate": "skipped", "decision": str(exc), "promoted": False})
    context.log.info(
        f"simulator fitted on {sim.log.height} logged decisions; {len(sim.train_starts)} training "
        f"and {len(sim.held_out)} held-out contacts"
    )
    ppo = PPOSettings(
        total_timesteps=config.total_timesteps,
        n_envs=config.n_envs,
        n_steps=config.n_steps,
        batch_size=config.batch_size,
        n_epochs=config.n_epochs,
        learning_rate=config.learning_rate,
        gamma=config.gamma,
        ent_coef=config.ent_coef,
        stage_shaping=config.stage_shaping,
        seed=config.seed,
        time_limit_s=config.time_limit_s,
    )
    params = {
        **settings_dict(ppo),
        "history_episodes": config.history_episodes,
        "horizon_days": config.horizon_days,
        "simulator_members": config.simulator_members,
        "eval_episodes": config.eval_episodes,
        "generated": generated,
    }
    fingerprint = _fingerprint(sim, {k: v for k, v in params.items() if k != "time_limit_s"})
    run_folder = folder / f"run-{fingerprint}"
    for old in folder.glob("run-*") if folder.exists() else []:
        if old != run_folder:
            shutil.rmtree(old, ignore_errors=True)  # a different simulator or settings: start afresh
    training = train_ppo(
        sim.table, sim.train_starts, ppo, settings.world, run_folder, config.resume, progress=context.log.info
    )
    judgement = judge_outreach_policy(training.model, sim, settings)
    registration = log_outreach_policy(training, judgement, params, sim.calibration)
    report = {
        "judgement": judgement.as_dict(),
        "run_id": registration.run_id,
        "run_url": registration.run_url,
        "version": registration.version,
        "gate": registration.gate,
        "tracking_uri": uri,
        "training": {
            "timesteps": training.timesteps,
            "resumed_from": training.resumed_from,
            "seconds": round(training.seconds, 1),
            "stopped_because": training.stopped_because,
        },
        "calibration": sim.calibration.to_dicts() if sim.calibration is not None else None,
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / JUDGEMENT_FILE).write_text(json.dumps(report, default=str, indent=1))
    gains = judgement.gains or {}
    context.log.info(
        f"outreach policy v{registration.version}: gate {registration.gate} ({judgement.reason})"
    )
    sim_ppo = judgement.simulated[0]
    return dg.MaterializeResult(
        metadata={
            "timesteps": training.timesteps,
            "resumed_from": training.resumed_from,
            "training_seconds": round(training.seconds, 1),
            "stopped_because": training.stopped_because,
            "logged_decisions": sim.log.height,
            "recorded_actions_used": sim.recorded_actions,
            "held_out_contacts": len(sim.held_out),
            "sim_value_closed_ppo": sim_ppo["value_closed"]["mean"],
            "true_gain_vs_best_heuristic": dg.MetadataValue.json(
                gains.get("gain_vs_best_heuristic_true") or {}
            ),
            "best_heuristic": gains.get("best_heuristic", "(no truth)"),
            "gap_to_oracle_true": dg.MetadataValue.json(gains.get("gap_to_oracle_true") or {}),
            "dr_candidate_vs_logging": dg.MetadataValue.json(
                judgement.off_policy.as_dict() if judgement.off_policy else {}
            ),
            "simulator_calibration_max_error": judgement.calibration_max_error,
            "registered_version": registration.version or "(none)",
            "gate": registration.gate,
            "promoted": registration.promoted,
            "decision": judgement.reason,
            "mlflow_run": dg.MetadataValue.url(registration.run_url),
        }
    )


REPORT_SCHEMA = {
    "world": pl.String,
    "policy": pl.String,
    "episodes": pl.Int64,
    "value_closed": pl.Float64,
    "low": pl.Float64,
    "high": pl.Float64,
    "win_rate": pl.Float64,
    "touches": pl.Float64,
    "over_contacted": pl.Float64,
}


def report_frame(report: dict) -> pl.DataFrame:
    """One row per (world, policy): value closed with its 95% interval, win rate, touches."""
    rows = []
    judgement = report["judgement"]
    for world, table in (("simulator", judgement["simulated"]), ("true", judgement.get("true_world") or [])):
        for row in table:
            v = row["value_closed"]
            rows.append(
                {
                    "world": world,
                    "policy": row["policy"],
                    "episodes": row["episodes"],
                    "value_closed": v["mean"],
                    "low": v["low"],
                    "high": v["high"],
                    "win_rate": row["win_rate"],
                    "touches": row["touches_per_episode"],
                    "over_contacted": row["over_contacted_episodes"],
                }
            )
    return pl.DataFrame(rows, schema=REPORT_SCHEMA)


@dg.asset(group_name=GROUP, deps=["outreach_policy"])
def outreach_policy_report(
    context: dg.AssetExecutionContext, storage: StorageResource, mlflow: MLflowResource
) -> dg.MaterializeResult:
    """Comparison table of the outreach policy vs the baselines (simulator and true world), the simulator's
    calibration against the truth and the off-policy check; also attached to the training's MLflow run."""
    import mlflow as mlflow_client

    report = json.loads((_folder(storage) / JUDGEMENT_FILE).read_text())
    if report.get("skipped"):
        return dg.MaterializeResult(
            value=pl.DataFrame(schema=REPORT_SCHEMA),
            metadata={"rows": 0, "gate": "skipped", "decision": report["skipped"]},
        )
    table = report_frame(report)
    calibration = pl.DataFrame(report["calibration"]) if report.get("calibration") else pl.DataFrame()
    mlflow.configure()
    with mlflow_client.start_run(run_id=report["run_id"]):
        mlflow_client.log_text(table.write_csv(), "outreach_policy_report.csv")
    worst = calibration.sort("abs_error", descending=True) if calibration.height else calibration
    context.log.info(f"outreach policy report: {table.height} rows")
    return dg.MaterializeResult(
        value=table,
        metadata={
            "rows": table.height,
            "comparison": markdown_table(table.with_columns(pl.col(pl.Float64).round(4)), rows=30),
            "worst_calibrated": markdown_table(worst.with_columns(pl.col(pl.Float64).round(4)), rows=8)
            if worst.height
            else dg.MetadataValue.md("_(no truth: not a generated export)_"),
            "off_policy": dg.MetadataValue.json(report["judgement"].get("off_policy") or {}),
            "gate": report["gate"],
            "mlflow_run": dg.MetadataValue.url(report["run_url"]),
        },
    )
