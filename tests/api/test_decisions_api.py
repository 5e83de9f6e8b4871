"""Decisions through the API and the CLI: online learning, restarts, the PPO champion, one answer at both doors."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from holocrm_api import ServingSettings, create_app
from holocrm_cli import app as cli_app
from tests.support.decision_homes import custom_field_home


def make_client(home, **overrides) -> TestClient:
    settings = ServingSettings.from_env(
        home=home, reload_interval_s=0, warm_query_embedder=False, **overrides
    )
    return TestClient(create_app(settings), raise_server_exceptions=False)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOLOCRM_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    custom_field_home(tmp_path)
    return tmp_path


def post(client, key: str, contact: str, action: str, reward: float):
    r = client.post(
        "/api/actions/outcome",
        json={"contact_id": contact, "action": action, "reward": reward, "idempotency_key": key},
    )
    assert r.status_code in (200, 201), r.text
    return r.json()


def posterior(client, contact: str) -> dict:
    return client.get(f"/api/contacts/{contact}/recommendation", params={"posterior": True}).json()


def test_a_posted_outcome_changes_the_next_recommendations_posterior(home):
    with make_client(home) as c:
        first = posterior(c, "C1")
        assert first["policy"]["served_as"] == "learning_online"
        recorded = post(c, "o-1", "C1", first["action"], 1.0)["record"]
        # logged with what was served: the propensity and the policy version, and the full context
        assert recorded["propensity"] == first["propensity"]
        assert recorded["policy"] == first["policy"]["version"] and recorded["context"]["cf_region"]
        second = posterior(c, "C1")
        assert (
            second["posterior"][first["action"]]["trials"]
            == first["posterior"][first["action"]]["trials"] + 1
        )
        assert (
            second["posterior"][first["action"]]["expected_success_rate"]
            > first["posterior"][first["action"]]["expected_success_rate"]
        )
        post(c, "o-1", "C1", first["action"], 1.0)  # a retry is learned once
        assert posterior(c, "C1")["posterior"] == second["posterior"]


def test_a_restart_keeps_the_online_state(home):
    with make_client(home) as c:
        for i in range(40):
            post(c, f"r-{i}", f"C{1 + i % 9}", "proposal", 1.0 if i % 3 else 0.0)
        before = posterior(c, "C4")["posterior"]
        assert before["proposal"]["trials"] == 40
    assert (home / "models" / "decisions" / "online_policy.json").exists()
    with make_client(home) as c:
        assert posterior(c, "C4")["posterior"] == before
        assert c.get("/api/decisions/policy").json()["online"]["learned_online"] == 40


def test_cli_and_api_give_the_same_answer_on_50_contacts(home):
    ids = [f"C{i}" for i in range(1, 51)]
    with make_client(home) as c:
        for i in range(30):
            post(c, f"p-{i}", f"C{1 + i}", ("email", "call")[i % 2], float(i % 4 == 0))
        api = {i: c.get(f"/api/contacts/{i}/recommendation").json() for i in ids}
    runner = CliRunner()
    for contact in ids:
        result = runner.invoke(cli_app, ["recommend", "contact", contact, "--json"])
        assert result.exit_code == 0, result.output
        cli = json.loads(result.stdout)
        a = api[contact]
        assert (cli["action"], cli["decided"], cli.get("propensity"), cli.get("reason")) == (
            a["action"],
            a["decided"],
            a.get("propensity"),
            a.get("reason"),
        ), contact
        assert (cli["policy"] or {}).get("version") == (a["policy"] or {}).get("version")
    assert sum(api[i]["decided"] for i in ids) == 5  # C10, C20 ... are disqualified at both doors


def _register_gated_ppo(uri: str) -> str:
    """A tiny PPO outreach policy registered with the gate's verdict `passed` and the champion alias."""
    import tempfile
    from pathlib import Path

    import mlflow
    from stable_baselines3 import PPO

    from holocrm_core.registry import configure
    from holocrm_core.rl.env import BatchCRMEnv
    from holocrm_core.rl.tracking import OutreachPolicyModel
    from holocrm_core.rl.world import EpisodeStarts

    configure(uri)
    from holocrm_core.rl.truth import true_response_table

    model = PPO(
        "MlpPolicy", BatchCRMEnv(true_response_table(), EpisodeStarts.uniform(50), 8), n_steps=8, seed=0
    )
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run():
        path = Path(tmp) / "ppo.zip"
        model.save(path)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=OutreachPolicyModel(),
            artifacts={"ppo": str(path)},
            registered_model_name="holocrm_outreach_policy",
        )
    version = str(info.registered_model_version)
    client = mlflow.MlflowClient()
    client.set_model_version_tag("holocrm_outreach_policy", version, "holocrm.gate", "passed")
    client.set_registered_model_alias("holocrm_outreach_policy", "champion", version)
    return version


@pytest.mark.slow
def test_the_gated_ppo_champion_answers_and_the_api_says_so(home):
    version = _register_gated_ppo(f"sqlite:///{home / 'mlflow.db'}")
    with make_client(home) as c:
        body = c.get("/api/contacts/C1/recommendation").json()
        assert body["policy"]["served_as"] == "outreach_champion" and body["policy"]["version"] == version
        assert body["policy"]["name"] == "holocrm_outreach_policy" and "gated PPO" in body["policy"]["why"]
        assert body["action"] in body["action_probabilities"] and 0 < body["propensity"] <= 1
        # a decided contact is decided before any policy answers
        assert c.get("/api/contacts/C10/recommendation").json()["decided"] is True
        assert c.get("/api/decisions/policy").json()["outreach_champion"]["version"] == version
    # the tag is the contract: without `passed` the champion alias alone is not served
    import mlflow

    mlflow.MlflowClient().set_model_version_tag("holocrm_outreach_policy", version, "holocrm.gate", "failed")
    with make_client(home) as c:
        assert c.get("/api/contacts/C1/recommendation").json()["policy"]["served_as"] == "learning_online"
