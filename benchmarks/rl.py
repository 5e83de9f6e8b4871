"""Benchmark of the outreach policy: simulator speed, PPO time to the bar, TRUE-world value, calibration, DR.

Generates a sample export (default 2,000 contacts), fits the simulator from the reps' logged history, trains
PPO in the simulator in chunks and after each chunk plays it against the cadence in the TRUE world (the
generator's response model) on held-out contacts: the wall time to the bar (PPO closes >= 30% more deal
value than the best heuristic, lower 95% bound) counts training only. Then the final judgement on
``--episodes`` held-out episodes (TRUE world and simulator), the off-policy DR estimate next to the simulated
values, the simulator's calibration per action and segment, and how the cadence / oracle gap depends on the
episode horizon. Prints one JSON object.

    .venv/bin/python benchmarks/rl.py [--contacts 2000] [--steps 1500000] [--episodes 2000]
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

import numpy as np  # noqa: E402


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
    return {"batch": n, "steps_per_s": round(n * steps / seconds), "includes": "step + observation + auto-reset"}


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


def horizon_sensitivity(sim, episodes: int) -> list[dict]:
    from holocrm_core.rl.baselines import CadencePolicy, OraclePolicy
    from holocrm_core.rl.evaluate import play, relative_gain
    from holocrm_core.rl.world import WorldConfig

    rows = []
    for days in (14, 21, 30):
        config = WorldConfig(horizon_days=days)
        cadence = play(CadencePolicy(), sim.truth, sim.held_out, episodes, 7, config)
        oracle = play(OraclePolicy(), sim.truth, sim.held_out, episodes, 7, config)
        rows.append({"horizon_days": days, "cadence_value": round(float(cadence.value_closed.mean()), 4),
                     "oracle_value": round(float(oracle.value_closed.mean()), 4),
                     "oracle_gain_vs_cadence": relative_gain(oracle, cadence).as_dict()})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=1_500_000)
    parser.add_argument("--chunk", type=int, default=250_000)
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--history", type=int, default=8000)
    parser.add_argument("--time-limit", type=float, default=540.0, help="PPO wall-clock limit (s)")
    parser.add_argument("--seed", type=int, default=0)
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
        generate_export(root / "landing" / "export", n_contacts=args.contacts, seed=args.seed,
                        truth_dir=root / "truth", with_attachment_files=False)
        paths = HoloPaths(root).ensure()
        ingest_export(root / "landing" / "export", warehouse=Warehouse(paths.warehouse))
        warehouse = Warehouse(paths.warehouse)
        tables = {n: warehouse.read(f"staged_{n}") for n in ("companies", "contacts", "deals", "activities")}
        settings = OutreachSettings(history_episodes=args.history, eval_episodes=args.episodes, seed=args.seed)
        began = time.perf_counter()
        sim = prepare_simulator(tables, settings)
        out["simulator"] = {
            "fit_seconds": round(time.perf_counter() - began, 1), "logged_decisions": sim.log.height,
            "training_contacts": len(sim.train_starts), "held_out_contacts": len(sim.held_out),
            "mean_abs_error_vs_truth": round(table_error(sim.table, sim.truth, sim.log), 4),
            "max_segment_error_vs_truth": round(float(sim.calibration["abs_error"].max()), 4),
            "segments_within_0.03": f"{int((sim.calibration['abs_error'] <= 0.03).sum())}/{sim.calibration.height}",
            "calibration": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}
                            for row in sim.calibration.filter(
                                sim.calibration["segment"] != "industry").iter_rows(named=True)],
        }
        out["simulator_speed"] = simulator_speed(sim.table, sim.train_starts)
        out["single_env_speed"] = single_env_speed()

        cadence = play(CadencePolicy(), sim.truth, sim.held_out, 1000, 99, settings.world)
        bar, trained_s, curve, result = None, 0.0, [], None
        folder = root / "ppo"
        total = 0
        while total < args.steps and trained_s < args.time_limit:
            total = min(total + args.chunk, args.steps)
            ppo = PPOSettings(total_timesteps=total, seed=args.seed, time_limit_s=args.time_limit - trained_s)
            result = train_ppo(sim.table, sim.train_starts, ppo, settings.world, folder)
            trained_s += result.seconds
            ev = play(PPOPolicy(result.model), sim.truth, sim.held_out, 1000, 99, settings.world)
            gain = relative_gain(ev, cadence)
            curve.append({"timesteps": result.timesteps, "train_seconds": round(trained_s, 1),
                          "true_gain_vs_cadence": gain.as_dict()})
            if bar is None and gain.low >= 0.30:
                bar = {"timesteps": result.timesteps, "train_seconds": round(trained_s, 1)}
        out["ppo"] = {"timesteps": result.timesteps, "train_seconds": round(trained_s, 1),
                      "steps_per_s": round(result.timesteps / max(trained_s, 1e-9)),
                      "time_to_bar": bar or "bar not reached", "true_world_curve": curve,
                      "load_average": load()}

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
            "dr_quantity": "return from a logged decision if PPO chose there and the logging policy continued",
            "simulated_episode_reward": {"ppo": round(float(sim_ppo.reward.mean()), 4),
                                         "logging": round(float(sim_log.reward.mean()), 4)},
            "true_episode_reward": {"ppo": round(float(ppo_true.reward.mean()), 4),
                                    "logging": round(float(true_log.reward.mean()), 4)},
        }
        out["gate"] = {"promote": judgement.promote, "reason": judgement.reason}
        out["horizon_sensitivity"] = horizon_sensitivity(sim, 2000)
    out["load_average_end"] = load()
    print(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
