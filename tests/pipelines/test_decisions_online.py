"""The nightly `recommendations` asset continues from what serving learned online, and writes it back."""

from __future__ import annotations

import json

from holocrm_core.decisions.online import online_state_path
from holocrm_core.decisions.service import DecisionService
from tests.support.decision_homes import custom_field_home


def test_the_nightly_recommendations_start_from_the_online_state(tmp_path, monkeypatch):
    from pipelines.assets import decisions
    from pipelines.definitions import materialize

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    wh = custom_field_home(tmp_path)
    tables = {n: wh.read(n) for n in ("staged_contacts", "staged_companies", "staged_activities")}
    serving = DecisionService.build(tables, tmp_path, load_registry=False)
    serving.replay(
        {"idempotency_key": f"s{i}", "contact_id": f"C{1 + i % 9}", "action": "call", "reward": 1.0}
        for i in range(25)
    )
    served = serving.recommend("C2", posterior=True)
    serving.close()  # what the API does at shutdown
    result = materialize([decisions.recommendations.key.to_user_string()], home=str(tmp_path))
    assert result.success
    meta = result.asset_materializations_for_node("recommendations")[0].metadata
    assert meta["learned_online_since_base"].value == 25 and meta["served_as"].value == "learning_online"
    recs = wh.read("recommendations")
    assert recs.height == 54  # 60 contacts, 6 disqualified: decided, so no recommendation
    row = recs.filter(recs["contact_id"] == "C2").row(0, named=True)
    assert (row["action"], row["propensity"]) == (served["action"], served["propensity"])
    assert len(json.loads(online_state_path(tmp_path).read_text())["applied"]) == 25
