"""The decision assets in process on a generated export: action log -> gated policy evaluation -> recommendations."""

from __future__ import annotations

import json

import polars as pl
import pytest

from tests.support.pipelines import copied_home

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def home(tmp_path_factory, pipeline_export):
    from holocrm_core.warehouse import Warehouse

    root = tmp_path_factory.mktemp("holocrm_decisions")
    paths = copied_home(pipeline_export, root)
    contact = Warehouse(paths.warehouse).read("staged_contacts")["contact_id"][0]
    records = [  # recorded through the API since the export: one good, one the log must flag, not drop
        {
            "idempotency_key": "api-1",
            "recorded_at": "2026-10-30T12:00:00Z",
            "contact_id": contact,
            "action": "call",
            "reward": 1.0,
            "propensity": 0.4,
            "policy": "contextual_thompson",
            "context": {"lead_score": 0.7, "band": "hot"},
        },
        {
            "idempotency_key": "api-2",
            "recorded_at": "2026-10-30T13:00:00Z",
            "contact_id": contact,
            "action": "fax",
            "reward": 0.0,
            "propensity": 0.5,
            "policy": "contextual_thompson",
            "context": {},
        },
    ]
    (paths.logs / "actions.ndjson").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root


def _materialize(root, *assets):
    from pipelines.definitions import materialize

    return materialize([a.key.to_user_string() for a in assets], home=str(root))


def test_decision_assets_log_gate_and_recommend(home, monkeypatch):
    from holocrm_core.decisions.champion import GATE_TAG, POLICY_MODEL, champion_info
    from holocrm_core.registry import configure
    from holocrm_core.synth import load_truth
    from holocrm_core.warehouse import Warehouse
    from pipelines.assets import decisions

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
    result = _materialize(home, decisions.action_log, decisions.policy_evaluation, decisions.recommendations)
    assert result.success
    warehouse = Warehouse(home / "warehouse")
    log = warehouse.read("action_log")
    truth = load_truth(home / "truth")["outreach"]
    assert log.height == truth.height + 2  # every exported action and both API records, none dropped
    flagged = log.filter(~pl.col("usable"))
    assert flagged["action_id"].to_list() == ["api-2"] and "not one of" in flagged["problem"].item()
    # the point-in-time context is the one the generator's reps decided on
    joined = log.join(truth, on="action_id", suffix="_truth")
    assert (joined["touches_30d"] == joined["touches_30d_truth"]).all()
    assert (joined["lifecycle_status"] == joined["lifecycle_status_truth"]).all()
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"action_log_no_rows_lost": True}

    meta = result.asset_materializations_for_node("policy_evaluation")[0].metadata
    assert meta["promoted"].value is True, meta["decision"].value
    assert meta["candidate_dr_low"].value > meta["logging_value"].value
    configure()
    info = champion_info()
    assert str(info.version) == meta["registered_version"].value and info.tags[GATE_TAG] == "passed"

    recs = warehouse.read("recommendations")
    open_contacts = warehouse.read("staged_contacts").filter(pl.col("lifecycle_status") != "disqualified")
    assert recs.height == open_contacts.height
    assert (
        set(recs["action"]) <= {"email", "call", "proposal", "wait"} and recs["reasoning"].null_count() == 0
    )
    assert (recs["policy_version"] == f"{POLICY_MODEL}/{info.version}").all()
    assert recs["propensity"].min() > 0 and recs["expected_success_rate"].is_between(0, 1).all()

    # Evaluated again against itself as champion, the new candidate cannot clear it: champion stays put.
    again = _materialize(home, decisions.policy_evaluation)
    meta2 = again.asset_materializations_for_node("policy_evaluation")[0].metadata
    assert meta2["promoted"].value is False and "champion" in meta2["decision"].value
    assert meta2["alias"].value == "challenger"
    assert str(champion_info().version) == str(info.version)
    import mlflow

    failed = mlflow.MlflowClient().get_model_version(POLICY_MODEL, meta2["registered_version"].value)
    assert failed.tags[GATE_TAG] == "failed"


def test_cli_recommends_a_contact_and_evaluates_the_policy(home, monkeypatch):
    from typer.testing import CliRunner

    from holocrm_cli import app
    from holocrm_core.warehouse import Warehouse

    monkeypatch.setenv("HOLOCRM_HOME", str(home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
    contact = Warehouse(home / "warehouse").read("recommendations")["contact_id"][0]
    shown = CliRunner().invoke(app, ["recommend", "contact", contact, "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["action"] in {"email", "call", "proposal", "wait"}
    missing = CliRunner().invoke(app, ["recommend", "contact", "CON-9999999"])
    assert missing.exit_code == 1
    evaluated = CliRunner().invoke(app, ["policy", "evaluate", "--no-register", "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.output.strip().splitlines()[-1])["promote"] is False  # the champion stands
