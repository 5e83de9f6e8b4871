"""The RL assets in process on a small generated export: the outreach policy trained, gated, reported."""

from __future__ import annotations

import json

import pytest

from tests.support.pipelines import ingested_home

pytestmark = pytest.mark.slow

SMALL = {
    "total_timesteps": 16_384,
    "n_envs": 128,
    "history_episodes": 1000,
    "simulator_members": 2,
    "eval_episodes": 300,
    "time_limit_s": 120.0,
}


@pytest.fixture(scope="module")
def home(tmp_path_factory):

    root = tmp_path_factory.mktemp("holocrm")
    ingested_home(root, n_contacts=600, seed=5)
    return root


def test_outreach_policy_assets_register_gate_and_report(home, monkeypatch):
    import mlflow

    from pipelines.definitions import materialize

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
    config = {"ops": {"outreach_policy": {"config": SMALL}}}
    result = materialize(
        ["outcome_dataset", "action_log", "outreach_policy", "outreach_policy_report"],
        home=str(home),
        run_config=config,
    )
    assert result.success
    meta = result.asset_materializations_for_node("outreach_policy")[0].metadata
    assert meta["timesteps"].value >= SMALL["total_timesteps"]
    assert meta["registered_version"].value == "1"
    # Fitted from the reps' history in the sample world plus the export's own outreach log (the action log).
    assert meta["recorded_actions_used"].value > 0
    version = mlflow.MlflowClient().get_model_version("holocrm_outreach_policy", "1")
    # The tag contract: the gate's verdict is on the version; champion only when it passed.
    assert version.tags["holocrm.gate"] == meta["gate"].value
    assert ("champion" in version.aliases) == (meta["gate"].value == "passed")
    # The policy's industry vocabulary is the export's own, logged with the version.
    industries = json.loads(version.tags["holocrm.rl.industries"])
    assert 0 < len(industries) <= 12 and "software" in industries
    report = json.loads((home / "models" / "outreach_policy" / "judgement.json").read_text())
    policies = {row["policy"] for row in report["judgement"]["true_world"]}
    assert {"ppo", "random", "always_email", "cadence", "thompson", "oracle"} <= policies
    from holocrm_core.warehouse import Warehouse

    table = Warehouse(home / "warehouse").read("outreach_policy_report")
    assert set(table["world"].unique()) == {"simulator", "true"}

    # A second materialization with the same simulator and settings resumes the finished checkpoint.
    again = materialize(["outreach_policy"], home=str(home), run_config=config)
    assert again.asset_materializations_for_node("outreach_policy")[0].metadata["resumed_from"].value > 0
