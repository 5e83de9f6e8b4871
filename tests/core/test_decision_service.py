"""The context learned from the data and the one decision service: behaviour that can fail."""

from __future__ import annotations

import numpy as np
import polars as pl

from holocrm_core.decisions.actions import ContextEncoder
from holocrm_core.decisions.online import OnlineLearner
from holocrm_core.decisions.policies import ContextualThompson
from holocrm_core.decisions.recommend import contact_contexts, reason_in_words
from holocrm_core.decisions.service import DecisionService
from tests.support.decision_homes import custom_field_home


def _tables(wh):
    return {n: wh.read(n) for n in ("staged_contacts", "staged_companies", "staged_activities")}


def test_the_encoder_learns_a_custom_fields_categories_with_an_other_bucket():
    frame = pl.DataFrame(
        {
            "cf_region": ["nordics"] * 10 + ["dach"] * 8 + ["iberia"] * 2 + [None] * 3,
            "cf_account_manager": [f"am-{i}" for i in range(23)],  # an identifier in disguise: left out
            "cf_fleet_size": list(range(23)),
            "lifecycle_status": ["lead"] * 23,
        }
    )
    encoder = ContextEncoder.fit(frame, min_count=5)
    names = encoder.feature_names
    assert {"cf_region=nordics", "cf_region=dach", "cf_region=other"} <= set(names)
    assert "cf_region=iberia" not in names and not any(n.startswith("cf_account_manager") for n in names)
    assert any(n.startswith("cf_fleet_size in (") for n in names)
    x = encoder.encode(
        pl.DataFrame(
            {"cf_region": ["Nordics", "iberia", "atlantis", None], "cf_fleet_size": [1.0, 30, None, 5]}
        )
    ).features
    col = {n: i for i, n in enumerate(names)}
    assert x[0, col["cf_region=nordics"]] == 1.0  # case and spaces are normalised
    assert x[1, col["cf_region=other"]] == 1.0 and x[2, col["cf_region=other"]] == 1.0
    assert x[3, [col["cf_region=nordics"], col["cf_region=dach"], col["cf_region=other"]]].sum() == 0.0
    # saved with the policy and restored exactly; the version says whether two encoders encode alike
    restored = ContextEncoder.from_state(encoder.state_dict())
    assert restored.feature_names == names and restored.version == encoder.version
    assert ContextEncoder.fit(frame.head(12), min_count=5).version != encoder.version


def test_a_policy_on_the_fitted_encoder_learns_what_a_custom_field_decides():
    rng = np.random.default_rng(0)
    regions = rng.choice(["nordics", "dach", "benelux"], 3000)
    frame = pl.DataFrame({"cf_region": regions})
    encoder = ContextEncoder.fit(frame)
    best = {"nordics": 0, "dach": 1, "benelux": 2}
    policy = ContextualThompson(seed=0, encoder=encoder)
    actions = rng.integers(0, 4, 3000)
    p = np.where(actions == np.array([best[r] for r in regions]), 0.5, 0.1)
    policy.update(encoder.encode(frame), actions, (rng.random(3000) < p).astype(float))
    rate, _ = policy.expected_reward(
        encoder.encode(pl.DataFrame({"cf_region": ["nordics", "dach", "benelux"]}))
    )
    assert list(rate.argmax(axis=1)) == [0, 1, 2]
    # the schema-only encoder cannot see the field: every region looks alike to it
    blind = ContextEncoder().encode(pl.DataFrame({"cf_region": ["nordics", "dach"]})).features
    assert np.array_equal(blind[0], blind[1])


def test_contexts_carry_custom_fields_and_decided_contacts_get_no_recommendation(tmp_path):
    wh = custom_field_home(tmp_path)
    contexts = contact_contexts(*_tables(wh).values())
    assert {"cf_region", "cf_fleet_size", "industry", "days_since_last_touch"} <= set(contexts.columns)
    service = DecisionService.build(_tables(wh), tmp_path, load_registry=False)
    assert any(n.startswith("cf_region=") for n in service.learner.policy.encoder.feature_names)
    decided = service.recommend("C10")
    assert decided["action"] is None and decided["decided"] and "disqualified" in decided["reason"]
    answer = service.recommend("C1", posterior=True)
    assert answer["action"] in {"email", "call", "proposal", "wait"} and answer["policy"]["version"]
    assert set(answer["posterior"]) == {"email", "call", "proposal", "wait"}
    assert service.recommend("C404") is None
    # the same contact, the same state: the same answer at every door
    again = service.recommend("C1")
    assert (again["action"], again["propensity"]) == (answer["action"], answer["propensity"])


def test_online_learning_is_idempotent_and_survives_a_restart(tmp_path):
    wh = custom_field_home(tmp_path)
    service = DecisionService.build(_tables(wh), tmp_path, load_registry=False)
    before = service.recommend("C1", posterior=True)["posterior"]["call"]
    records = [
        {"idempotency_key": f"k{i}", "contact_id": "C1", "action": "call", "reward": 1.0} for i in range(20)
    ]
    assert service.replay(records) == 20 and service.replay(records) == 0  # a key is learned once
    after = service.recommend("C1", posterior=True)["posterior"]["call"]
    assert after["expected_success_rate"] > before["expected_success_rate"] and after["trials"] == 20
    service.close()
    restarted = DecisionService.build(_tables(wh), tmp_path, load_registry=False)
    assert restarted.learner.applied == {f"k{i}" for i in range(20)}
    assert restarted.recommend("C1", posterior=True)["posterior"]["call"] == after
    assert restarted.replay(records) == 0


def test_a_batch_waits_until_a_decision_reads_the_posterior(tmp_path):
    encoder = ContextEncoder()
    learner = OnlineLearner(ContextualThompson(seed=0, encoder=encoder), "b", None, batch_size=100)
    assert learner.observe({"idempotency_key": "a", "action": "call", "reward": 1, "context": {}})
    assert learner.policy.observations == 0 and not learner.observe(
        {"idempotency_key": "a", "action": "call", "reward": 1}
    )
    assert not learner.observe({"idempotency_key": "b", "action": "fax", "reward": 1})
    assert not learner.observe({"idempotency_key": "c", "action": "call", "reward": 3})
    learner.flush()
    assert learner.policy.observations == 1


def test_reasons_are_in_a_salespersons_words():
    assert reason_in_words(["seniority=director", "industry=software"], "call") == (
        "directors at software companies answer calls"
    )
    assert reason_in_words(["cf_region=nordics"], "email") == "contacts with region nordics reply to emails"
    assert reason_in_words(["days_since_last_touch<=1"], "wait").startswith(
        "contacts touched in the last day"
    )
