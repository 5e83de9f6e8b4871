"""Benchmark of the outreach policy: simulator speed, PPO time to the bar, TRUE-world value, calibration, DR.

Generates a sample export (default 3,000 contacts), fits the simulator from the reps' logged history, trains
PPO in the simulator in chunks and after each chunk plays it against the cadence in the TRUE world (the
generator's response model) on held-out contacts: the wall time to the bar (PPO closes >= 30% more deal
value than the best heuristic, lower 95% bound) counts training only. Then the final judgement on
``--episodes`` held-out episodes (TRUE world and simulator), the off-policy DR estimate next to the simulated
values, the simulator's calibration per action and segment, and how the cadence / oracle gap depends on the
episode horizon. Prints one JSON object.

``--foreign`` adds the export's own industry vocabulary's figure: the same sample with its industries renamed
to words the generator never writes (its truth knows the renaming), PPO trained once in a simulator fitted
with the export's vocabulary (after) and once with every industry unknown (before: what the world did when it
took its vocabulary from the generator), both played in the TRUE world against the cadence.

    .venv/bin/python benchmarks/rl.py [--contacts 3000] [--steps 3000000] [--episodes 5000] [--foreign]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def simulator_speed(table, starts, n: int = 4096, steps: int = 200) -> dict:
    from holocrm_core.rl.world import OutreachWorld

    world = OutreachWorld(table, starts, n, seed=0)
    world.reset()
    rng = np.random.default_rng(0)
    began = time.perf_counter()
    for _ in range(steps):
        out = world.step(rng.integers(0, 4, n))
        world.observe()
        world.reset(np.flatnonzero(out["done"]))
    seconds = time.perf_counter() - began
    return {
        "batch": n,
        "steps_per_s": round(n * steps / seconds),
        "includes": "step + observation + auto-reset",
    }


def single_env_speed(steps: int = 5000) -> dict:
    import gymnasium as gym

    import holocrm_core.rl.env  # noqa: F401 - registers CRM-v1

    env = gym.make("CRM-v1")
    env.reset(seed=0)
    began = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    return {"steps_per_s": round(steps / (time.perf_counter() - began))}


def data_scaling(sim, truth, sizes=(500, 2000, 8000)) -> list[dict]:
    """The fitted simulator's error against the truth as the logged history grows."""
    import polars as pl

    from holocrm_core.rl.fit import calibration_table, fit_response_model, table_error

    rows = []
    for episodes in sizes:
        log = sim.log.filter(pl.col("episode") < episodes)
        table = fit_response_model(log, members=1, industries=sim.industries).table()
        calibration = calibration_table(table, truth, sim.log)
        rows.append(
            {
                "logged_episodes": episodes,
                "logged_decisions": log.height,
                "mean_abs_error": round(table_error(table, truth, sim.log), 4),
                "max_segment_error": round(float(calibration["abs_error"].max()), 4),
            }
        )
    return rows


def horizon_sensitivity(sim, episodes: int) -> list[dict]:
    from holocrm_core.rl.baselines import CadencePolicy, OraclePolicy
    from holocrm_core.rl.evaluate import play, relative_gain
    from holocrm_core.rl.world import WorldConfig

    rows = []
    for days in (14, 21, 30):
        config = WorldConfig(horizon_days=days)
        cadence = play(CadencePolicy(), sim.truth, sim.held_out, episodes, 7, config)
        oracle = play(OraclePolicy(), sim.truth, sim.held_out, episodes, 7, config)
        rows.append(
            {
                "horizon_days": days,
                "cadence_value": round(float(cadence.value_closed.mean()), 4),
                "oracle_value": round(float(oracle.value_closed.mean()), 4),
                "oracle_gain_vs_cadence": relative_gain(oracle, cadence).as_dict(),
            }
        )
    return rows


# The sample's industries renamed to words the generator never writes (German trades).
FOREIGN_WORDS = (
    "Bankwesen",
    "Gesundheit",
    "Einzelhandel",
    "Fertigung",
    "Softwarehaus",
    "Spedition",
    "Bildung",
    "Energiewirtschaft",
    "Verlagswesen",
    "Immobilien",
    "Fernmeldewesen",
    "Verwaltung",
)


class IndustryBlind:
    """A trained policy that sees every contact's industry as unknown (as the world did on a foreign export
    while its vocabulary was the generator's)."""

    name = "ppo"

    def __init__(self, model):
        from holocrm_core.rl.train import PPOPolicy

        self.inner = PPOPolicy(model)

    def probabilities(self, world):
        from holocrm_core.rl.train import action_probabilities
        from holocrm_core.rl.world import MAX_INDUSTRIES, OTHER_INDUSTRY, SENIORITIES

        obs = world.observe()
        start = len(SENIORITIES) + 1
        obs[:, start : start + MAX_INDUSTRIES + 1] = 0.0
        obs[:, start + OTHER_INDUSTRY] = 1.0
        return action_probabilities(self.inner.model, obs)

    def act(self, world, rng):
        return self.probabilities(world).argmax(axis=1)


def foreign_industries(tables, args, settings) -> dict:
    """PPO vs the cadence in the TRUE world of the sample with renamed industries, before and after."""
    import dataclasses

    import polars as pl

    from holocrm_core.rl.baselines import CadencePolicy, OraclePolicy
    from holocrm_core.rl.evaluate import Interval, paired_difference, play, relative_gain
    from holocrm_core.rl.fit import calibration_table, fit_response_model
    from holocrm_core.rl.outreach import prepare_simulator
    from holocrm_core.rl.train import PPOPolicy, PPOSettings, train_ppo
    from holocrm_core.rl.truth import SampleTruth, generator_industries
    from holocrm_core.rl.world import CONTEXT_COLUMNS, OTHER_INDUSTRY

    rename = dict(zip(generator_industries(), FOREIGN_WORDS, strict=True))
    companies = tables["companies"].with_columns(pl.col("industry").replace(rename))
    foreign = {**tables, "companies": companies}
    sim = prepare_simulator(foreign, settings, truth=SampleTruth({v: k for k, v in rename.items()}))
    n, seed, world = args.episodes, 4242, settings.world
    cadence = play(CadencePolicy(), sim.truth, sim.held_out, n, seed, world)
    oracle = play(OraclePolicy(), sim.truth, sim.held_out, n, seed, world)
    # Before: the same logged history, every industry unknown to the simulator and to the policy.
    blind = fit_response_model(
        sim.log.select(*CONTEXT_COLUMNS, "action", "responded", "episode"),
        members=settings.simulator_members,
        seed=settings.seed,
        industries=(),
    ).table()
    blind_starts = dataclasses.replace(
        sim.train_starts, industry=np.full_like(sim.train_starts.industry, OTHER_INDUSTRY), industries=()
    )
    runs = []
    for ppo_seed in range(args.seed, args.seed + args.foreign_seeds):
        ppo = PPOSettings(total_timesteps=args.foreign_steps, seed=ppo_seed, time_limit_s=args.time_limit)
        after = train_ppo(sim.table, sim.train_starts, ppo, world)
        after_ev = play(PPOPolicy(after.model), sim.truth, sim.held_out, n, seed, world)
        before = train_ppo(blind, blind_starts, ppo, world)
        before_ev = play(IndustryBlind(before.model), sim.truth, sim.held_out, n, seed, world)
        runs.append(
            {
                "ppo_seed": ppo_seed,
                "ppo_steps": after.timesteps,
                "true_value_before_all_unknown": Interval.of(before_ev.value_closed).as_dict(),
                "true_value_after_export_vocabulary": Interval.of(after_ev.value_closed).as_dict(),
                "gain_vs_cadence_before": relative_gain(before_ev, cadence).as_dict(),
                "gain_vs_cadence_after": relative_gain(after_ev, cadence).as_dict(),
                "after_minus_before": paired_difference(after_ev, before_ev).as_dict(),
            }
        )
        print(json.dumps(runs[-1]), file=sys.stderr, flush=True)

    def industry_error(table) -> dict:
        rows = calibration_table(table, sim.truth, sim.log).filter(pl.col("segment") == "industry")
        return {
            "mean": round(float(rows["abs_error"].mean()), 4),
            "max": round(float(rows["abs_error"].max()), 4),
        }

    return {
        "vocabulary": list(sim.industries),
        "simulator_industry_rate_error_vs_truth": {
            "before_all_unknown": industry_error(blind),
            "after_export_vocabulary": industry_error(sim.table),
        },
        "held_out_contacts": len(sim.held_out),
        "episodes": n,
        "true_value_cadence": Interval.of(cadence.value_closed).as_dict(),
        "true_value_oracle": Interval.of(oracle.value_closed).as_dict(),
        "runs": runs,
        "load_average": load(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=3000)
    parser.add_argument("--steps", type=int, default=3_000_000)
    parser.add_argument("--chunk", type=int, default=500_000)
    parser.add_argument("--episodes", type=int, default=5000)
    parser.add_argument("--history", type=int, default=16000)
    parser.add_argument("--time-limit", type=float, default=540.0, help="PPO wall-clock limit (s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--foreign", action="store_true", help="add the renamed-industries figure")
    parser.add_argument("--foreign-steps", type=int, default=400_000, help="PPO steps per foreign policy")
    parser.add_argument("--foreign-seeds", type=int, default=1, help="PPO seeds per foreign policy")
    parser.add_argument("--skip-main", action="store_true", help="only the --foreign figure")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

    from holocrm_core.ingest import ingest_export
    from holocrm_core.rl.baselines import CadencePolicy
    from holocrm_core.rl.evaluate import play, relative_gain
    from holocrm_core.rl.fit import table_error
    from holocrm_core.rl.outreach import OutreachSettings, judge_outreach_policy, prepare_simulator
    from holocrm_core.rl.train import PPOPolicy, PPOSettings, train_ppo
    from holocrm_core.settings import HoloPaths
    from holocrm_core.synth import generate_export
    from holocrm_core.warehouse import Warehouse

    out = {"load_average_start": load(), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate_export(
            root / "landing" / "export",
            n_contacts=args.contacts,
            seed=args.seed,
            truth_dir=root / "truth",
            with_attachment_files=False,
        )
        paths = HoloPaths(root).ensure()
        ingest_export(root / "landing" / "export", warehouse=Warehouse(paths.warehouse))
        warehouse = Warehouse(paths.warehouse)
        tables = {n: warehouse.read(f"staged_{n}") for n in ("companies", "contacts", "deals", "activities")}
        settings = OutreachSettings(
            history_episodes=args.history, eval_episodes=args.episodes, seed=args.seed
        )
        if args.foreign:
            out["foreign_industries"] = foreign_industries(tables, args, settings)
            print(json.dumps(out["foreign_industries"]), file=sys.stderr, flush=True)
        if args.skip_main:
            out["load_average_end"] = load()
            print(json.dumps(out, indent=1, default=str))
            return
        began = time.perf_counter()
        sim = prepare_simulator(tables, settings)
        out["simulator"] = {
            "fit_seconds": round(time.perf_counter() - began, 1),
            "logged_decisions": sim.log.height,
            "training_contacts": len(sim.train_starts),
            "held_out_contacts": len(sim.held_out),
            "mean_abs_error_vs_truth": round(table_error(sim.table, sim.truth, sim.log), 4),
            "max_segment_error_vs_truth": round(float(sim.calibration["abs_error"].max()), 4),
            "segments_within_0.03": f"{int((sim.calibration['abs_error'] <= 0.03).sum())}"
            f"/{sim.calibration.height}",
            "calibration": [
                {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}
                for row in sim.calibration.filter(sim.calibration["segment"] != "industry").iter_rows(
                    named=True
                )
            ],
        }
        out["simulator_data_scaling"] = data_scaling(sim, sim.truth, (500, 2000, args.history))
        out["simulator_speed"] = simulator_speed(sim.table, sim.train_starts)
        out["single_env_speed"] = single_env_speed()

        cadence = play(CadencePolicy(), sim.truth, sim.held_out, 1000, 99, settings.world)
        bar, point_bar, trained_s, curve, result = None, None, 0.0, [], None
        folder = root / "ppo"
        total = 0
        while total < args.steps and trained_s < args.time_limit:
            total = min(total + args.chunk, args.steps)
            ppo = PPOSettings(total_timesteps=total, seed=args.seed, time_limit_s=args.time_limit - trained_s)
            result = train_ppo(sim.table, sim.train_starts, ppo, settings.world, folder)
            trained_s += result.seconds
            ev = play(PPOPolicy(result.model), sim.truth, sim.held_out, 1000, 99, settings.world)
            gain = relative_gain(ev, cadence)
            curve.append(
                {
                    "timesteps": result.timesteps,
                    "train_seconds": round(trained_s, 1),
                    "true_gain_vs_cadence": gain.as_dict(),
                }
            )
            print(json.dumps(curve[-1]), file=sys.stderr, flush=True)
            if point_bar is None and gain.mean >= 0.30:
                point_bar = {"timesteps": result.timesteps, "train_seconds": round(trained_s, 1)}
            if bar is None and gain.low >= 0.30:
                bar = {"timesteps": result.timesteps, "train_seconds": round(trained_s, 1)}
        out["ppo"] = {
            "timesteps": result.timesteps,
            "train_seconds": round(trained_s, 1),
            "steps_per_s": round(result.timesteps / max(trained_s, 1e-9)),
            "time_to_bar_point_estimate": point_bar or "not reached",
            "time_to_bar_lower_95_bound": bar or "not reached",
            "bar_check": "PPO vs cadence in the TRUE world, 1,000 held-out episodes after each chunk",
            "true_world_curve": curve,
            "load_average": load(),
        }

        began = time.perf_counter()
        judgement = judge_outreach_policy(result.model, sim, settings)
        out["judge_seconds"] = round(time.perf_counter() - began, 1)
        ppo_true = judgement.evaluations["true/ppo"]
        out["evaluation_episodes_per_s"] = round(ppo_true.episodes / ppo_true.seconds)
        out["true_world"] = judgement.true_world
        out["simulated"] = judgement.simulated
        out["gains"] = judgement.gains
        sim_ppo, sim_log = judgement.evaluations["sim/ppo"], judgement.evaluations["sim/logging"]
        true_log = judgement.evaluations["true/logging"]
        out["sim_to_real"] = {
            "off_policy_dr": judgement.off_policy.as_dict(),
            "dr_quantity": "return after a logged decision had PPO chosen there (then the logging policy)",
            "simulated_episode_reward": {
                "ppo": round(float(sim_ppo.reward.mean()), 4),
                "logging": round(float(sim_log.reward.mean()), 4),
            },
            "true_episode_reward": {
                "ppo": round(float(ppo_true.reward.mean()), 4),
                "logging": round(float(true_log.reward.mean()), 4),
            },
        }
        out["gate"] = {"promote": judgement.promote, "reason": judgement.reason}
        out["horizon_sensitivity"] = horizon_sensitivity(sim, 2000)
    out["load_average_end"] = load()
    print(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
