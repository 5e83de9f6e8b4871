"""The CRM simulator and the outreach policy: env contract, fit toward the truth, baselines, gate, resume."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import polars as pl
import pytest

from holocrm_core.rl.baselines import CadencePolicy, OraclePolicy, RandomPolicy, always_wait
from holocrm_core.rl.evaluate import paired_difference, play
from holocrm_core.rl.truth import generator_industries, sample_logging_policy, true_response_table
from holocrm_core.rl.world import EpisodeStarts, OutreachWorld, WorldConfig


@pytest.fixture(scope="module")
def truth():
    return true_response_table(generator_industries())


@pytest.fixture(scope="module")
def starts(truth):
    return EpisodeStarts.uniform(600, seed=1, industries=truth.industries)


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
        obs, _reward, done, infos = env.step_wait()
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

    log = record_history(truth, starts, 3000, seed=0, policy=sample_logging_policy())
    small = fit_response_model(log.filter(pl.col("episode") < 150), members=1).table()
    large = fit_response_model(log, members=1).table()
    small_error, large_error = table_error(small, truth, log), table_error(large, truth, log)
    assert large_error < small_error and large_error < 0.02
    calibration = calibration_table(large, truth, log).filter(pl.col("segment") == "lifecycle_status")
    assert calibration["abs_error"].max() < 0.05


def _ope(candidate: float, logging: float):
    from holocrm_core.decisions.ope import Estimate
    from holocrm_core.rl.offpolicy import OffPolicyCheck

    return OffPolicyCheck(
        Estimate("dr", candidate, candidate - 0.01, candidate + 0.01, 100.0, 1000),
        Estimate("dr", logging, logging - 0.01, logging + 0.01, 1000.0, 1000),
        Estimate("dr_difference", candidate - logging, -1, 1, float("nan"), 1000),
    )


def test_promotion_is_refused_when_the_off_policy_check_disagrees(truth, starts):
    from holocrm_core.rl.outreach import promotion_decision

    strong = play(OraclePolicy(), truth, starts, 800, seed=5)
    simulated = {
        "ppo": strong,
        "random": play(RandomPolicy(), truth, starts, 800, seed=5),
        "cadence": play(CadencePolicy(), truth, starts, 800, seed=5),
    }
    promote, reason = promotion_decision(simulated, _ope(0.30, 0.20))
    assert promote, reason
    promote, reason = promotion_decision(simulated, _ope(0.10, 0.20))
    assert not promote and "off-policy" in reason
    simulated["ppo"] = play(RandomPolicy(), truth, starts, 800, seed=5)
    promote, reason = promotion_decision(simulated, _ope(0.30, 0.20))
    assert not promote and "cadence" in reason


def test_ppo_training_resumes_from_its_checkpoint(truth, starts, tmp_path):
    from holocrm_core.rl.train import PPOPolicy, PPOSettings, train_ppo

    settings = PPOSettings(
        total_timesteps=2048, n_envs=64, n_steps=16, batch_size=512, n_epochs=1, checkpoint_every=1024
    )
    first = train_ppo(truth, starts, settings, checkpoint_dir=tmp_path)
    assert first.resumed_from == 0 and (tmp_path / "checkpoint.zip").exists()
    more = PPOSettings(**{**settings.__dict__, "total_timesteps": 4096})
    second = train_ppo(truth, starts, more, checkpoint_dir=tmp_path)
    assert second.resumed_from >= 2048 and second.timesteps >= 4096
    world = OutreachWorld(truth, starts, 10, seed=0)
    world.reset()
    probs = PPOPolicy(second.model).probabilities(world)
    assert probs.shape == (10, 4) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # A checkpoint is never resumed in a simulator whose industry slots mean other industries.
    from holocrm_core.rl.world import IndustryMismatch

    other = true_response_table(truth.industries[::-1])
    with pytest.raises(IndustryMismatch, match="--fresh"):
        train_ppo(
            other, EpisodeStarts.uniform(50, industries=other.industries), more, checkpoint_dir=tmp_path
        )
    progress = tmp_path / "progress.json"
    progress.write_text(progress.read_text().replace('"industries"', '"vocabulary"'))  # an older checkpoint
    with pytest.raises(IndustryMismatch, match="records no industry vocabulary"):
        train_ppo(truth, starts, more, checkpoint_dir=tmp_path)


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


def test_too_little_logged_outreach_is_refused_with_what_is_missing(truth, starts):
    from holocrm_core.rl.fit import NotEnoughOutreach, fit_response_model
    from holocrm_core.rl.history import record_history

    log = record_history(truth, starts, 30, seed=0, policy=sample_logging_policy())
    with pytest.raises(NotEnoughOutreach, match="responses and .* non-responses per action"):
        fit_response_model(log)


# ------------------------------------------------------------------------ the export's own industry vocabulary

FOREIGN = {"software": "Bergbau", "retail": "Fischerei", "healthcare": "Forstwirtschaft", "energy": "Weinbau"}


def _foreign_tables():
    """The toy CRM with its industries renamed to words the sample generator never writes."""
    from tests.support.crm import toy_crm

    tables, _ = toy_crm(400, seed=2)
    companies = tables["companies"].with_columns(pl.col("industry").replace(FOREIGN))
    return {**tables, "companies": companies}


def test_an_export_with_foreign_industries_gets_a_vocabulary_of_its_own_words():
    from holocrm_core.rl.starts import episode_starts, export_industries
    from holocrm_core.rl.world import OTHER_INDUSTRY, fit_industries

    tables = _foreign_tables()
    industries = export_industries(tables)
    assert set(industries) == set(FOREIGN.values())
    starts = episode_starts(tables)
    assert starts.industries == industries and len(starts) > 0
    assert (starts.industry != OTHER_INDUSTRY).all()  # every open contact's industry has its slot
    # Most frequent first, rare values folded into other / unknown, spellings matched case-insensitively.
    values = pl.Series(["Mining"] * 6 + ["mining "] * 2 + ["Fishing"] * 5 + ["Rare"] * 4 + [None, ""])
    assert fit_industries(values) == ("Mining", "Fishing")
    assert (
        fit_industries(pl.Series([f"sector {i}" for i in range(30)] * 5))
        == tuple(sorted(f"sector {i}" for i in range(30)))[:12]
    )


def test_the_fitted_simulator_recovers_a_planted_industry_effect():
    from holocrm_core.rl.fit import fit_response_model

    rng = np.random.default_rng(0)
    n = 6000
    industry = rng.choice(["Bergbau", "Fischerei", "Weinbau"], n)
    rate = np.select([industry == "Bergbau", industry == "Fischerei"], [0.6, 0.08], 0.3)
    log = pl.DataFrame(
        {
            "seniority": rng.choice(["manager", "director", "vp"], n),
            "industry": industry,
            "lifecycle_status": rng.choice(["lead", "qualified"], n),
            "days_since_last_touch": rng.integers(0, 40, n),
            "size_band": rng.choice(["smb", "mid_market"], n),
            "action": rng.choice(["email", "call", "proposal", "wait"], n),
            "responded": rng.random(n) < rate,
        }
    )
    table = fit_response_model(log, members=1).table()
    assert set(table.industries) == {"Bergbau", "Fischerei", "Weinbau"}
    by_industry = {
        name: table.mean_frame(log.with_columns(pl.lit(name).alias("industry"))).mean(axis=0)
        for name in ("Bergbau", "Weinbau", "Fischerei", "an industry never logged")
    }
    assert (by_industry["Bergbau"] > by_industry["Weinbau"] + 0.15).all()
    assert (by_industry["Weinbau"] > by_industry["Fischerei"] + 0.1).all()
    # An industry outside the vocabulary gets the other / unknown slot, not one of the logged ones.
    unknown = by_industry["an industry never logged"]
    assert not any(np.allclose(unknown, by_industry[k], atol=0.01) for k in ("Bergbau", "Fischerei"))


def test_a_vocabulary_mismatch_between_table_and_starts_is_refused(truth):
    from holocrm_core.rl.world import IndustryMismatch

    starts = EpisodeStarts.uniform(20, industries=("Bergbau", "Fischerei"))
    with pytest.raises(IndustryMismatch, match="one world needs one vocabulary"):
        OutreachWorld(truth, starts, 4)
    with pytest.raises(IndustryMismatch):
        play(CadencePolicy(), truth, starts.subset(np.arange(len(starts)) < 10), 10, seed=0)
    with pytest.raises(ValueError, match="at most 12"):
        EpisodeStarts.uniform(5, industries=tuple(f"sector {i}" for i in range(13)))


def test_the_true_world_speaks_the_exports_vocabulary():
    """On a renamed sample the truth, tabulated on the export's words, is the generator's own model."""
    from holocrm_core.rl.world import OTHER_INDUSTRY

    native = true_response_table(("software", "retail"))
    renamed = true_response_table(
        ("Bergbau", "Fischerei"), rename={"Bergbau": "software", "Fischerei": "retail"}
    )
    assert np.allclose(native.probs, renamed.probs)
    assert not np.allclose(native.probs[0, :, 0], native.probs[0, :, 1])  # software and retail differ
    # The other slot answers as the generator's industries outside the vocabulary do on average.
    other = native.probs[0, :, OTHER_INDUSTRY]
    full = true_response_table(generator_industries()).probs[0]
    assert (other >= full[:, :12].min(axis=1) - 1e-9).all() and (
        other <= full[:, :12].max(axis=1) + 1e-9
    ).all()


def test_the_simulator_of_a_foreign_industry_export_uses_its_words_end_to_end():
    from holocrm_core.rl.outreach import OutreachSettings, prepare_simulator
    from holocrm_core.rl.truth import SampleTruth

    tables = _foreign_tables()
    truth = SampleTruth(rename={v: k for k, v in FOREIGN.items()})
    settings = OutreachSettings(history_episodes=1500, simulator_members=1, seed=0)
    sim = prepare_simulator(tables, settings, truth=truth)
    assert set(sim.industries) == set(FOREIGN.values())
    assert sim.truth.industries == sim.table.industries == sim.train_starts.industries == sim.industries
    assert set(sim.log["industry"].unique()) <= set(FOREIGN.values())
    calibration = sim.calibration.filter(pl.col("segment") == "industry")
    assert set(calibration["value"]) <= set(FOREIGN.values())
    # The generator makes software answer more than energy: the fitted simulator sees it in the foreign words.
    rates = {r["value"]: r for r in calibration.filter(pl.col("action") == "email").iter_rows(named=True)}
    truth_order = rates["Bergbau"]["true"] > rates["Weinbau"]["true"]
    assert (rates["Bergbau"]["fitted"] > rates["Weinbau"]["fitted"]) == truth_order
    # A policy trained on another vocabulary is refused, not judged on inputs whose slots mean other things.
    from holocrm_core.rl.outreach import judge_outreach_policy
    from holocrm_core.rl.world import IndustryMismatch

    with pytest.raises(IndustryMismatch, match="the policy and the simulator"):
        judge_outreach_policy(None, sim, settings, industries=generator_industries())


def test_served_observations_of_a_foreign_industry_use_the_policys_vocabulary(tmp_path):
    import mlflow.pyfunc
    from stable_baselines3 import PPO

    from holocrm_core.rl.env import BatchCRMEnv
    from holocrm_core.rl.serving import OutreachChampion, observations, policy_industries
    from holocrm_core.rl.tracking import OutreachPolicyModel, save_policy_artifacts
    from holocrm_core.rl.train import TrainingResult
    from holocrm_core.rl.world import MAX_INDUSTRIES, OTHER_INDUSTRY, SENIORITIES, TABLE_SHAPE, ResponseTable

    industries = ("Bergbau", "Fischerei", "Weinbau")
    table = ResponseTable(np.full((1, *TABLE_SHAPE), 0.2), "flat", industries)
    model = PPO(
        "MlpPolicy", BatchCRMEnv(table, EpisodeStarts.uniform(30, industries=industries), 8), n_steps=8
    )
    training = TrainingResult(model, 0, 0, 0.0, "test", industries=industries)
    (tmp_path / "artifacts").mkdir()
    mlflow.pyfunc.save_model(
        tmp_path / "policy",
        python_model=OutreachPolicyModel(),
        artifacts=save_policy_artifacts(training, tmp_path / "artifacts"),
        pip_requirements=["stable-baselines3"],  # inferring them takes seconds
    )
    served = mlflow.pyfunc.load_model(str(tmp_path / "policy"))
    assert policy_industries(served, {}) == industries
    contexts = pl.DataFrame(
        {
            "seniority": ["director", "director"],
            "industry": ["weinbau", "Software"],
            "lifecycle_status": ["lead", "lead"],
            "size_band": ["smb", "smb"],
            "days_since_last_touch": [3, 3],
        }
    )
    obs = observations(contexts, industries)
    sen_width = len(SENIORITIES) + 1  # the input starts with seniority (and unknown), then the industries
    block = obs[:, sen_width : sen_width + MAX_INDUSTRIES + 1]
    assert block[0].argmax() == 2 and block[0].sum() == 1  # Weinbau's slot, not unknown
    assert block[1].argmax() == OTHER_INDUSTRY  # an industry the policy never saw: unknown
    champion = OutreachChampion(served, "1", "test", industries=policy_industries(served, {}))
    decided = champion.decide(contexts)
    assert len(decided) == 2 and set(decided["action"]) <= {"email", "call", "proposal", "wait"}
    # A policy logged before the vocabulary was: no vocabulary, every industry counts as unknown.
    (tmp_path / "old").mkdir()
    model.save(tmp_path / "old" / "ppo.zip")
    mlflow.pyfunc.save_model(
        tmp_path / "legacy",
        python_model=OutreachPolicyModel(),
        artifacts={"ppo": str(tmp_path / "old" / "ppo.zip")},
        pip_requirements=["stable-baselines3"],
    )
    legacy = mlflow.pyfunc.load_model(str(tmp_path / "legacy"))
    assert policy_industries(legacy, {}) is None
    assert policy_industries(legacy, {"holocrm.rl.industries": '["Bergbau"]'}) == ("Bergbau",)
    old = observations(contexts, ())[:, sen_width : sen_width + MAX_INDUSTRIES + 1]
    assert (old.argmax(axis=1) == OTHER_INDUSTRY).all()
    assert len(OutreachChampion(legacy, "0", "old").decide(contexts)) == 2


@pytest.mark.slow  # an MLflow store, a registration and two loads: about 15 s on a loaded machine
def test_the_registered_policy_carries_its_vocabulary_to_serving(tmp_path, monkeypatch):
    import mlflow
    from stable_baselines3 import PPO

    from holocrm_core import registry
    from holocrm_core.rl.env import BatchCRMEnv
    from holocrm_core.rl.evaluate import comparison_table
    from holocrm_core.rl.outreach import Judgement
    from holocrm_core.rl.serving import load_outreach_champion
    from holocrm_core.rl.tracking import POLICY_MODEL, OutreachPolicyModel, log_outreach_policy
    from holocrm_core.rl.train import PPOPolicy, TrainingResult
    from holocrm_core.rl.world import TABLE_SHAPE, ResponseTable

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    registry.configure()
    industries = ("Bergbau", "Fischerei", "Weinbau")
    table = ResponseTable(np.full((1, *TABLE_SHAPE), 0.2), "flat", industries)
    starts = EpisodeStarts.uniform(30, industries=industries)
    model = PPO("MlpPolicy", BatchCRMEnv(table, starts, 8), n_steps=8, seed=0)
    ev = play(PPOPolicy(model), table, starts, 20, seed=0)
    judgement = Judgement(comparison_table([ev], ev), None, {}, None, True, "a test gate", None)
    training = TrainingResult(model, 0, 0, 0.0, "test", industries=industries)
    registration = log_outreach_policy(training, judgement, {"steps": 0})
    champion = load_outreach_champion()
    assert champion is not None and champion.version == registration.version
    assert champion.industries == industries and "unknown" not in champion.reason
    contexts = pl.DataFrame({"industry": ["Weinbau"], "lifecycle_status": ["lead"], "seniority": ["vp"]})
    assert champion.decide(contexts)["action"].iloc[0] in ("email", "call", "proposal", "wait")
    # A policy logged before the vocabulary was logged with it: served, every industry unknown, said so.
    (tmp_path / "old").mkdir()
    model.save(tmp_path / "old" / "ppo.zip")
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=OutreachPolicyModel(),
            artifacts={"ppo": str(tmp_path / "old" / "ppo.zip")},
            pip_requirements=["stable-baselines3"],
            registered_model_name=POLICY_MODEL,
        )
    client = mlflow.MlflowClient()
    client.set_model_version_tag(POLICY_MODEL, str(info.registered_model_version), "holocrm.gate", "passed")
    client.set_registered_model_alias(POLICY_MODEL, "champion", str(info.registered_model_version))
    legacy = load_outreach_champion()
    assert legacy.industries is None and "every industry counts as unknown" in legacy.reason
    assert len(legacy.decide(contexts)) == 1
