"""The CRM simulator and the outreach policy: env contract, fitting toward the truth, baselines, gate, resume."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import polars as pl
import pytest

from holocrm_core.rl.baselines import CadencePolicy, OraclePolicy, RandomPolicy, always_wait
from holocrm_core.rl.evaluate import paired_difference, play
from holocrm_core.rl.world import EpisodeStarts, OutreachWorld, WorldConfig, true_response_table


@pytest.fixture(scope="module")
def truth():
    return true_response_table()


@pytest.fixture(scope="module")
def starts():
    return EpisodeStarts.uniform(600, seed=1)


def test_crm_env_passes_gymnasium_check_env():
    from gymnasium.utils.env_checker import check_env

    import holocrm_core.rl.env  # noqa: F401 - registers CRM-v1

    env = gym.make("CRM-v1")
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs) and info["contact_id"].startswith("DEMO-")


def test_batch_env_runs_many_episodes_and_resets_finished_ones(truth, starts):
    from holocrm_core.rl.env import BatchCRMEnv

    env = BatchCRMEnv(truth, starts, n=64, config=WorldConfig(horizon_days=5), seed=0)
    obs = env.reset()
    assert obs.shape == (64, env.observation_space.shape[0])
    for _ in range(5):
        env.step_async(np.full(64, 3))  # waiting never wins a deal: every episode ends at the horizon
        obs, reward, done, infos = env.step_wait()
    assert done.all() and all(info["TimeLimit.truncated"] for info in infos)
    assert all(env.observation_space.contains(o) for o in obs) and (env.world.state.t == 0).all()


def test_always_wait_earns_less_than_the_cadence(truth, starts):
    cadence = play(CadencePolicy(), truth, starts, 800, seed=2)
    waiting = play(always_wait(), truth, starts, 800, seed=2)
    assert waiting.value_closed.sum() == 0
    assert paired_difference(cadence, waiting).low > 0.2


def test_oracle_beats_random_and_over_contacting_is_penalised(truth, starts):
    oracle = play(OraclePolicy(), truth, starts, 800, seed=4)
    random = play(RandomPolicy(), truth, starts, 800, seed=4)
    assert paired_difference(oracle, random).low > 0
    assert random.over_contacted.mean() > 0.5 and oracle.over_contacted.mean() == 0


def test_common_random_numbers_make_the_same_policy_replay_identically(truth, starts):
    a = play(CadencePolicy(), truth, starts, 300, seed=9)
    b = play(CadencePolicy(), truth, starts, 300, seed=9)
    assert np.array_equal(a.value_closed, b.value_closed)


def test_fitted_simulator_moves_toward_the_truth_with_more_data(truth, starts):
    from holocrm_core.rl.fit import calibration_table, fit_response_model, table_error
    from holocrm_core.rl.history import record_history

    log = record_history(truth, starts, 3000, seed=0)
    small = fit_response_model(log.filter(pl.col("episode") < 150), members=1).table()
    large = fit_response_model(log, members=1).table()
    small_error, large_error = table_error(small, truth, log), table_error(large, truth, log)
    assert large_error < small_error and large_error < 0.02
    calibration = calibration_table(large, truth, log).filter(pl.col("segment") == "lifecycle_status")
    assert calibration["abs_error"].max() < 0.05


def _ope(candidate: float, logging: float):
    from holocrm_core.decisions.ope import Estimate
    from holocrm_core.rl.offpolicy import OffPolicyCheck

    return OffPolicyCheck(Estimate("dr", candidate, candidate - 0.01, candidate + 0.01, 100.0, 1000),
                          Estimate("dr", logging, logging - 0.01, logging + 0.01, 1000.0, 1000),
                          Estimate("dr_difference", candidate - logging, -1, 1, float("nan"), 1000))


def test_promotion_is_refused_when_the_off_policy_check_disagrees(truth, starts):
    from holocrm_core.rl.outreach import promotion_decision

    strong = play(OraclePolicy(), truth, starts, 800, seed=5)
    simulated = {"ppo": strong, "random": play(RandomPolicy(), truth, starts, 800, seed=5),
                 "cadence": play(CadencePolicy(), truth, starts, 800, seed=5)}
    promote, reason = promotion_decision(simulated, _ope(0.30, 0.20))
    assert promote, reason
    promote, reason = promotion_decision(simulated, _ope(0.10, 0.20))
    assert not promote and "off-policy" in reason
    simulated["ppo"] = play(RandomPolicy(), truth, starts, 800, seed=5)
    promote, reason = promotion_decision(simulated, _ope(0.30, 0.20))
    assert not promote and "cadence" in reason


def test_ppo_training_resumes_from_its_checkpoint(truth, starts, tmp_path):
    from holocrm_core.rl.train import PPOSettings, PPOPolicy, train_ppo

    settings = PPOSettings(total_timesteps=2048, n_envs=64, n_steps=16, batch_size=512, n_epochs=1,
                           checkpoint_every=1024)
    first = train_ppo(truth, starts, settings, checkpoint_dir=tmp_path)
    assert first.resumed_from == 0 and (tmp_path / "checkpoint.zip").exists()
    more = PPOSettings(**{**settings.__dict__, "total_timesteps": 4096})
    second = train_ppo(truth, starts, more, checkpoint_dir=tmp_path)
    assert second.resumed_from >= 2048 and second.timesteps >= 4096
    world = OutreachWorld(truth, starts, 10, seed=0)
    world.reset()
    probs = PPOPolicy(second.model).probabilities(world)
    assert probs.shape == (10, 4) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_decisions_go_through_the_convergence_engine(truth, starts):
    from stable_baselines3 import PPO

    from holocrm_core.rl.env import BatchCRMEnv
    from holocrm_core.rl.train import decide

    model = PPO("MlpPolicy", BatchCRMEnv(truth, starts, 8), n_steps=8, device="cpu", seed=0)
    world = OutreachWorld(truth, starts, 20, seed=0)
    world.reset()
    decisions, probs = decide(model, world.observe())
    assert np.array_equal(decisions.actions, probs.argmax(axis=1))
    assert np.allclose(decisions.confidence, probs.max(axis=1))
