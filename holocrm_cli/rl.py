"""`holocrm rl train|evaluate`: train the PPO outreach policy in the fitted simulator, or evaluate it.

``train`` shows progress, stops at its step budget or wall-clock limit, and saves a checkpoint as it goes:
run it again (after Ctrl-C, or with a larger ``--steps``) and it resumes from the last checkpoint.
``evaluate`` plays a policy (the champion by default, or a checkpoint) against the baselines.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer


def _tables():
    from holocrm_core.settings import HoloPaths, warehouse_root
    from holocrm_core.warehouse import Warehouse

    paths = HoloPaths.default()
    warehouse = Warehouse(warehouse_root(paths))
    tables = {
        name: warehouse.read(f"staged_{name}")
        for name in ("companies", "contacts", "deals", "activities")
        if warehouse.exists(f"staged_{name}")
    }
    if "contacts" not in tables:
        typer.echo(
            "No contacts staged yet: run `holocrm run` (or materialize the ingest assets) first.", err=True
        )
        raise typer.Exit(1)
    recorded = warehouse.read("action_log") if warehouse.exists("action_log") else None
    return paths, tables, recorded


def _simulator(horizon: int, history: int, seed: int):
    from holocrm_core.rl.outreach import OutreachSettings, prepare_simulator
    from holocrm_core.rl.world import WorldConfig

    paths, tables, recorded = _tables()
    settings = OutreachSettings(history_episodes=history, seed=seed, world=WorldConfig(horizon_days=horizon))
    generated = (paths.truth / "action_response.parquet").exists()
    typer.echo("fitting the simulator from the logged outreach ...", err=True)
    return paths, settings, prepare_simulator(tables, settings, recorded_log=recorded, generated=generated)


def _print_judgement(judgement, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(judgement.as_dict(), default=str))
        return
    for world, rows in (("simulator", judgement.simulated), ("TRUE world", judgement.true_world or [])):
        typer.echo(f"\n{world} (held-out contacts, deal value closed per episode, 95% interval):")
        for row in rows:
            v = row["value_closed"]
            typer.echo(
                f"  {row['policy']:<14} {v['mean']:.3f} [{v['low']:.3f}, {v['high']:.3f}]  "
                f"win {row['win_rate']:.1%}  touches {row['touches_per_episode']:.1f}"
            )
    if judgement.gains:
        g = judgement.gains["gain_vs_best_heuristic_true"]
        typer.echo(
            f"\nPPO vs {judgement.gains['best_heuristic']} (true world): {g['mean']:+.1%} "
            f"[{g['low']:+.1%}, {g['high']:+.1%}]"
        )
    if judgement.off_policy is not None:
        c, lg = judgement.off_policy.candidate, judgement.off_policy.logging
        typer.echo(
            f"off-policy DR on the logged actions: {c.value:.4f} [{c.low:.4f}, {c.high:.4f}] vs logging "
            f"{lg.value:.4f}"
        )
    typer.echo(f"gate: {'passed' if judgement.promote else 'failed'} ({judgement.reason})")


def register(app: typer.Typer) -> None:
    rl_app = typer.Typer(
        help="The PPO outreach policy: train in the fitted simulator, evaluate against baselines.",
        no_args_is_help=True,
    )

    @rl_app.command("train")
    def train(
        steps: int = typer.Option(
            300_000, help="total PPO timesteps (a resumed run counts those already done)"
        ),
        time_limit: float = typer.Option(600.0, help="stop (and checkpoint) after this many seconds"),
        horizon: int = typer.Option(14, help="days per outreach episode"),
        history: int = typer.Option(5000, help="episodes of logged history (sample world)"),
        seed: int = typer.Option(0),
        fresh: bool = typer.Option(False, "--fresh", help="ignore an existing checkpoint"),
        checkpoint: Path = typer.Option(  # noqa: B008
            None, help="checkpoint folder (default HOLOCRM_HOME/models/outreach_policy, the asset's)"
        ),
        as_json: bool = typer.Option(False, "--json", help="print the judgement as one JSON object"),
    ) -> None:
        """Train PPO in the fitted simulator (resumable), then judge it against the baselines."""
        from holocrm_core.rl.outreach import judge_outreach_policy
        from holocrm_core.rl.train import PPOSettings, train_ppo

        paths, settings, sim = _simulator(horizon, history, seed)
        folder = checkpoint or paths.outreach_policy
        ppo = PPOSettings(total_timesteps=steps, time_limit_s=time_limit, seed=seed)
        try:
            result = train_ppo(
                sim.table,
                sim.train_starts,
                ppo,
                settings.world,
                folder,
                resume=not fresh,
                progress=lambda m: typer.echo(m, err=True),
            )
        except KeyboardInterrupt:
            typer.echo(f"\ninterrupted: checkpoint saved in {folder}; run again to resume", err=True)
            raise typer.Exit(130) from None
        typer.echo(
            f"trained {result.timesteps} steps ({result.stopped_because}) in {result.seconds:.0f} s; "
            f"checkpoint {result.checkpoint}",
            err=True,
        )
        _print_judgement(judge_outreach_policy(result.model, sim, settings), as_json)

    @rl_app.command("evaluate")
    def evaluate(
        checkpoint: Path = typer.Option(  # noqa: B008
            None, help="a checkpoint.zip (default: the registered champion)"
        ),
        horizon: int = typer.Option(14),
        history: int = typer.Option(5000),
        seed: int = typer.Option(0),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Play a trained policy and the baselines on held-out contacts; show the gate's verdict."""
        from stable_baselines3 import PPO

        from holocrm_core.registry import configure
        from holocrm_core.rl.outreach import judge_outreach_policy

        if checkpoint is None:
            configure()
            from holocrm_core.registry import champion_version

            info = champion_version("holocrm_outreach_policy")
            if info is None:
                typer.echo(
                    "No champion outreach policy yet: run `holocrm rl train` or pass --checkpoint.", err=True
                )
                raise typer.Exit(1)
            import mlflow

            policy = mlflow.pyfunc.load_model(
                "models:/holocrm_outreach_policy@champion"
            ).unwrap_python_model()
            model = policy.model
            # the champion's own industry vocabulary: one of another export's is refused, not misjudged
            industries = getattr(policy, "industries", None) or None
        else:
            if not Path(checkpoint).exists():
                typer.echo(f"No checkpoint at {checkpoint}.", err=True)
                raise typer.Exit(1)
            model = PPO.load(checkpoint, device="cpu")
            industries = None
        _, settings, sim = _simulator(horizon, history, seed)
        _print_judgement(judge_outreach_policy(model, sim, settings, industries=industries), as_json)

    app.add_typer(rl_app, name="rl")
