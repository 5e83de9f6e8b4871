"""Outcome dataset: point-in-time features, outcomes from the export and the field, learning signals."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from holocrm_core import outcomes
from holocrm_core.schema import ACTIVITIES, CONTACTS, DEALS
from tests.support.crm import toy_crm

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def _contact(**values) -> dict:
    base = {
        "contact_id": "c1",
        "lifecycle_status": "customer",
        "created_at": T0 - timedelta(days=60),
        "lead_at": T0 - timedelta(days=60),
        "seniority": "vp",
    }
    return base | values


def _activity(
    activity_id: str, when: datetime, body: str, contact_id: str = "c1", deal_id: str | None = None
) -> dict:
    return {
        "activity_id": activity_id,
        "type": "meeting",
        "contact_id": contact_id,
        "deal_id": deal_id,
        "occurred_at": when,
        "direction": "inbound",
        "subject": "meeting",
        "body": body,
    }


def _tables(contacts: list[dict], activities: list[dict], deals: list[dict] | None = None) -> dict:
    return {
        "contacts": pl.DataFrame(
            contacts, schema_overrides={k: v for k, v in CONTACTS.items() if any(k in c for c in contacts)}
        ),
        "activities": pl.DataFrame(activities, schema_overrides=dict(ACTIVITIES))
        if activities
        else pl.DataFrame(schema=ACTIVITIES),
        "deals": pl.DataFrame(
            deals, schema_overrides={k: v for k, v in DEALS.items() if any(k in d for d in deals)}
        )
        if deals
        else pl.DataFrame(schema=DEALS),
    }


def test_features_for_an_outcome_ignore_activities_dated_after_it():
    converted_at = T0
    tables = _tables(
        # no start date: the lead is seen once, at its conversion
        [
            _contact(
                customer_at=converted_at, qualified_at=T0 + timedelta(days=5), created_at=None, lead_at=None
            )
        ],
        [
            _activity("before", converted_at - timedelta(days=3), "budget approved"),
            _activity("same-instant", converted_at, "signed the contract"),
            _activity("after", converted_at + timedelta(days=1), "kickoff after signing"),
        ],
    )
    row = outcomes.build_outcome_dataset(tables).row(0, named=True)
    assert row["label"] == 1 and row["outcome_at"] == converted_at
    assert row["n_activities"] == 1  # only the one strictly before the conversion
    assert row["days_since_last_activity"] == pytest.approx(3.0)
    notes = " ".join(row["text_notes"])
    assert "budget approved" in notes
    assert "signed" not in notes and "kickoff" not in notes
    # qualified_at lies after the outcome: it must not show as known
    assert row["was_qualified"] is False
    # lifecycle dates are never features
    assert not {"customer_at", "disqualified_at", "lifecycle_status"} & set(row)


def test_the_same_lead_scored_today_sees_all_its_activity():
    tables = _tables(
        [_contact(lifecycle_status="lead")],
        [
            _activity("a1", T0 - timedelta(days=10), "intro"),
            _activity("a2", T0 - timedelta(days=2), "pricing"),
        ],
    )
    today = outcomes.build_features_for("contact", ["c1"], tables, as_of=T0)
    back_then = outcomes.build_features_for("contact", ["c1"], tables, as_of=T0 - timedelta(days=5))
    assert today["n_activities"].item() == 2 and back_then["n_activities"].item() == 1
    assert today["contact_id"].item() == "c1"
    assert outcomes.open_ids("contact", tables) == ["c1"]


def test_deal_features_leave_out_fields_set_at_close():
    deals = [
        {
            "deal_id": "d1",
            "title": "t",
            "stage": "won",
            "contact_id": "c1",
            "value": 5000.0,
            "probability": 1.0,
            "created_at": T0 - timedelta(days=30),
            "closed_at": T0,
            "stage_changed_at": T0,
        }
    ]
    tables = _tables(
        [_contact(lifecycle_status="customer", customer_at=T0 - timedelta(days=31))],
        [
            _activity("on-deal", T0 - timedelta(days=20), "proposal sent", deal_id="d1"),
            _activity("loose", T0 - timedelta(days=22), "call"),
            _activity("after-snapshot", T0 - timedelta(days=5), "negotiating", deal_id="d1"),
            _activity("late", T0 + timedelta(days=1), "thanks", deal_id="d1"),
        ],
        deals,
    )
    # A step longer than the deal's life: one snapshot, half-way through it (15 days in).
    dataset = outcomes.build_outcome_dataset(tables, every_days=10_000)
    deal = dataset.filter(pl.col("entity") == "deal").row(0, named=True)
    assert deal["label"] == 1 and deal["deal_value"] == 5000.0
    # the deal's own activities before the snapshot; the contact's loose call is not the deal's
    assert deal["n_activities"] == 1 and deal["deal_age_days"] == pytest.approx(15.0)
    assert not {"probability", "stage", "stage_changed_at", "closed_at"} & set(deal)


def test_field_outcomes_are_deduplicated_and_override_the_export(tmp_path):
    log = tmp_path / "outcomes.ndjson"
    records = [
        {
            "idempotency_key": "k1",
            "recorded_at": "2025-03-02T10:00:00Z",
            "deal_id": "d1",
            "outcome": "lost",
            "closed_at": "2025-03-02T09:00:00Z",
            "prediction": {"score": 0.7, "model_version": "holocrm_deal_scorer/2"},
        },
        {
            "idempotency_key": "k1",
            "recorded_at": "2025-03-02T10:00:00Z",
            "deal_id": "d1",
            "outcome": "lost",
            "closed_at": "2025-03-02T09:00:00Z",
            "prediction": {"score": 0.7, "model_version": "holocrm_deal_scorer/2"},
        },
        {
            "idempotency_key": "k2",
            "recorded_at": "2025-03-03T10:00:00Z",
            "deal_id": "d2",
            "outcome": "won",
            "closed_at": "2025-03-03T09:00:00Z",
            "prediction": {"score": 0.4, "model_version": "holocrm_deal_scorer/2"},
        },
    ]
    log.write_text("\n".join(json.dumps(r) for r in records) + "\n{half a line", encoding="utf-8")
    field = outcomes.read_field_outcomes(log)
    assert field.height == 2 and set(field["deal_id"]) == {"d1", "d2"}
    assert outcomes.read_field_outcomes(tmp_path / "absent.ndjson").height == 0

    # the latest valid state only: a reopened deal has no field outcome, a contradicting close does not count
    later = [
        {"idempotency_key": "k3", "kind": "reopen", "deal_id": "d1", "outcome": None,
         "recorded_at": "2025-03-04T10:00:00Z"},
        {"idempotency_key": "k4", "deal_id": "d2", "outcome": "lost", "recorded_at": "2025-03-05T10:00:00Z",
         "closed_at": "2025-03-05T09:00:00Z"},
    ]  # fmt: skip
    log.write_text("\n".join(json.dumps(r) for r in records + later) + "\n", encoding="utf-8")
    folded = outcomes.read_field_outcomes(log)
    assert folded["deal_id"].to_list() == ["d2"] and folded["outcome"].to_list() == ["won"]

    deals = [
        {
            "deal_id": "d1",
            "title": "a",
            "stage": "won",
            "created_at": T0 - timedelta(days=9),
            "closed_at": T0,
        },
        {"deal_id": "d2", "title": "b", "stage": "proposal", "created_at": T0 - timedelta(days=9)},
    ]
    tables = _tables([_contact()], [], deals)
    dataset = outcomes.build_outcome_dataset(tables, field_outcomes=field).filter(pl.col("entity") == "deal")
    by_id = {r["entity_id"]: r for r in dataset.iter_rows(named=True)}
    assert by_id["d1"]["outcome"] == "lost" and by_id["d1"]["outcome_source"] == "field"
    assert by_id["d2"]["label"] == 1 and by_id["d2"]["predicted_score"] == pytest.approx(0.4)


def test_a_lead_export_without_activities_still_trains():
    tables, _ = toy_crm(900, seed=3)
    tables["activities"] = pl.DataFrame(schema=ACTIVITIES)
    tables.pop("deals")
    dataset = outcomes.build_outcome_dataset(tables)
    assert dataset.height > 600 and (dataset["n_activities"] == 0).all()
    from holocrm_core.scoring import train_scorer

    trained = train_scorer(dataset, "contact", strategy="logistic")
    assert trained.strategy == "logistic" and trained.learned
    assert trained.metrics["auc"] > 0.6  # seniority and the lead-source custom field carry signal


def test_previous_scores_become_the_prediction_at_the_time():
    tables = _tables([_contact(customer_at=T0)], [])
    previous = pl.DataFrame(
        {
            "contact_id": ["c1"],
            "score": [0.83],
            "model_version": ["holocrm_lead_scorer/1"],
            "scored_at": [T0 - timedelta(days=1)],
        }
    )
    row = outcomes.build_outcome_dataset(tables, previous_scores={"contact": previous}).row(0, named=True)
    assert row["predicted_score"] == pytest.approx(0.83)
    late = previous.with_columns(pl.lit(T0 + timedelta(days=1)).alias("scored_at"))
    row = outcomes.build_outcome_dataset(tables, previous_scores={"contact": late}).row(0, named=True)
    assert row["predicted_score"] is None  # scored after the outcome: not a prediction


def test_learning_signals_report_success_rate_and_what_distinguishes_won_from_lost():
    tables, _ = toy_crm(600, seed=4)
    dataset = outcomes.build_outcome_dataset(tables)
    rng = np.random.default_rng(0)
    dataset = dataset.with_columns(pl.Series("predicted_score", rng.uniform(0.05, 0.95, dataset.height)))
    signals = outcomes.learning_signals(dataset)
    lead = signals["contact"]
    assert 0 < lead["success_rate"] < 1
    assert lead["prediction_error_by_month"] and lead["calibration_error"] > 0
    fields = [d["field"] for d in lead["what_distinguishes"]]
    assert "cf_lead_source" in fields or "seniority" in fields


def test_snapshots_follow_each_record_along_its_open_life():
    created = T0 - timedelta(days=100)
    tables = _tables(
        [_contact(customer_at=T0, created_at=created, lead_at=created)],
        [_activity(f"a{i}", created + timedelta(days=10 * i + 1), "follow-up") for i in range(10)],
    )
    rows = outcomes.build_outcome_dataset(tables, every_days=30, max_snapshots=4).sort("snapshot_at")
    assert 3 <= rows.height <= 4 and set(rows["entity_id"]) == {"c1"} and (rows["label"] == 1).all()
    assert (rows["snapshot_at"] >= created).all() and (rows["snapshot_at"] < T0).all()
    ages = rows["lead_age_days"].to_list()
    assert ages == sorted(ages) and max(ages) < 100  # ages at the snapshot, never at the outcome
    # the same code that scores open records: features as of each snapshot match build_features_for
    again = outcomes.build_features_for("contact", rows["entity_id"], tables, rows["snapshot_at"])
    assert rows["n_activities"].to_list() == again["n_activities"].to_list()
    assert rows["n_activities"].to_list() == sorted(rows["n_activities"].to_list())
    from holocrm_core.scoring.features import feature_columns

    assert not {"snapshot_at", "within_horizon", "outcome_dated", "outcome_at"} & set(feature_columns(rows))


def test_undated_decided_leads_are_counted_not_lost():
    contacts = [_contact(contact_id=f"w{i}", lifecycle_status="customer", customer_at=None) for i in range(3)]
    contacts += [_contact(contact_id=f"l{i}", lifecycle_status="disqualified") for i in range(2)]
    contacts += [_contact(contact_id="dated", lifecycle_status="customer", customer_at=T0)]
    contacts += [_contact(contact_id="open", lifecycle_status="lead")]
    tables = _tables(contacts, [])
    dataset = outcomes.build_outcome_dataset(tables)
    assert set(dataset["entity_id"]) == {"w0", "w1", "w2", "l0", "l1", "dated"}
    assert outcomes.undated_outcomes(dataset, "contact") == 5
    undated = dataset.filter(~pl.col("outcome_dated"))
    assert (undated["outcome_at"] == outcomes.export_time(tables)).all()
    assert outcomes.open_ids("contact", tables) == ["open"]
    from holocrm_core.scoring import minimum_data

    message = minimum_data(np.array([1, 1, 1, 0, 0, 1]), "contact", undated=5).message
    assert (
        "Only 4 converted and 2 disqualified" in message and "5 of them carried no decision date" in message
    )
    assert "customer_at" in message


def test_the_dataset_capped_keeps_the_most_recent_decided_records_of_each_entity():
    tables, _ = toy_crm(300, seed=4)
    full = outcomes.build_outcome_dataset(tables)
    capped = outcomes.build_outcome_dataset(tables, max_records=25)
    for entity in ("contact", "deal"):
        rows = full.filter(pl.col("entity") == entity)
        last = rows.group_by("entity_id").agg(pl.col("outcome_at").max()).sort("outcome_at", "entity_id")
        newest = set(last.tail(25)["entity_id"].to_list())
        kept = capped.filter(pl.col("entity") == entity)
        assert set(kept["entity_id"].to_list()) == newest  # every snapshot of the 25 newest, nothing else
        assert kept.height == rows.filter(pl.col("entity_id").is_in(list(newest))).height
