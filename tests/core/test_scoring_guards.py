"""Leak guard and adversarial validation: planted leaks are caught and excluded, a planted shift is named."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from holocrm_core import outcomes
from holocrm_core.scoring import entity_rows, train_scorer
from holocrm_core.scoring.guards import (
    ADVERSARIAL_BLOCK,
    ADVERSARIAL_WARN,
    check_training_data,
    leak_guard,
)
from tests.support.crm import toy_crm


@pytest.fixture(scope="module")
def toy():
    tables, _ = toy_crm(1400, seed=21, open_share=0.2)
    return tables


def _open_features(tables):
    return outcomes.build_features_for("contact", outcomes.open_ids("contact", tables), tables)


def test_a_planted_time_to_decision_field_is_caught_and_excluded(toy):
    contacts = toy["contacts"]
    decided_at = pl.coalesce("customer_at", "disqualified_at")
    # What an export's "days to close" column holds: filled in at the decision, empty while open.
    leaky = contacts.with_columns(
        (
            (decided_at - pl.col("created_at")).dt.total_hours() / 24
            + pl.when(pl.col("customer_at").is_not_null()).then(60).otherwise(0)
        ).alias("cf_days_to_decision")
    )
    tables = toy | {"contacts": leaky}
    dataset = outcomes.build_outcome_dataset(tables)
    trained = train_scorer(dataset, "contact", strategy="logistic", open_features=_open_features(tables))
    excluded = {e.field: e.reason for e in trained.guard.excluded}
    assert "cf_days_to_decision" in excluded and "AUC" in excluded["cf_days_to_decision"]
    assert "cf_days_to_decision" in trained.guard.summary()
    fields = {g.name for g in getattr(trained.scorer, "scorer", trained.scorer).encoder_.groups}
    assert "cf_days_to_decision" not in fields and "seniority" in fields
    assert trained.metrics["auc"] < 0.9  # the model did not learn the answer


def test_the_won_dated_by_win_date_export_shape_does_not_leak_through_lead_age(toy):
    """Converted leads dated by their win date, the others by first contact (the shape in the issue)."""
    contacts = toy["contacts"].with_columns(
        pl.when(pl.col("customer_at").is_not_null())
        .then(pl.col("customer_at"))
        .otherwise(pl.col("created_at"))
        .alias("created_at"),
        pl.when(pl.col("customer_at").is_not_null())
        .then(pl.col("customer_at"))
        .otherwise(pl.col("lead_at"))
        .alias("lead_at"),
    )
    tables = toy | {"contacts": contacts}
    dataset = outcomes.build_outcome_dataset(tables)
    rows = entity_rows(dataset, "contact")
    excluded = {e.field for e in leak_guard(rows, _open_features(tables))}
    assert "lead_age_days" in excluded
    trained = train_scorer(dataset, "contact", strategy="logistic", open_features=_open_features(tables))
    assert "lead_age_days" in trained.excluded_fields
    assert trained.metrics["auc"] < 0.95


def test_the_adversarial_check_fires_on_a_planted_shift_and_names_the_field(toy):
    dataset = outcomes.build_outcome_dataset(toy)
    rows = entity_rows(dataset, "contact")
    still_open = _open_features(toy)
    # Keep the comparison to fields that travel (open toy leads are older), then shift one custom field.
    fields = ["seniority", "cf_lead_source", "cf_budget_k", "industry", "employees"]
    decided = rows.select("label", *fields)
    similar = check_training_data(decided, still_open.select(fields))
    assert similar.level == "ok" and similar.adversarial_auc < ADVERSARIAL_WARN
    # A period shift: budgets and company sizes of today's leads run three times higher. Neither field
    # alone tells the two apart almost perfectly (so neither is excluded as a leak), together they do.
    shifted = still_open.select(fields).with_columns(pl.col("cf_budget_k") * 3, pl.col("employees") * 3)
    report = check_training_data(decided, shifted)
    assert not report.excluded
    assert report.level == "block" and report.blocks and report.adversarial_auc > ADVERSARIAL_BLOCK
    assert {name for name, _ in report.separating} == {"cf_budget_k", "employees"}
    assert "cf_budget_k" in report.message and "employees" in report.message


def test_a_field_that_alone_predicts_newer_outcomes_is_named_with_its_auc():
    rng = np.random.default_rng(0)
    n = 600
    y = rng.integers(0, 2, n)
    frame = pl.DataFrame(
        {
            "label": y,
            "outcome_at": pl.datetime_range(
                pl.datetime(2024, 1, 1),
                pl.datetime(2024, 1, 1) + timedelta(hours=n - 1),
                "1h",
                time_zone="UTC",
                eager=True,
            ),
            "cf_forecast": np.where(y == 1, "closed won", "omitted").tolist(),
            "cf_noise": rng.normal(size=n),
        }
    )
    found = leak_guard(frame)
    assert [e.field for e in found] == ["cf_forecast"] and found[0].auc > 0.99
