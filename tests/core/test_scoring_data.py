"""The toy CRM of the scoring tests (tests/support/crm.py) has what those tests rely on."""

from __future__ import annotations

import polars as pl

from tests.support.crm import toy_crm


def test_toy_crm_has_outcomes_of_both_kinds_and_open_records():
    tables, truth = toy_crm(200, seed=1)
    contacts = tables["contacts"]
    assert contacts.filter(pl.col("customer_at").is_not_null()).height > 20
    assert contacts.filter(pl.col("disqualified_at").is_not_null()).height > 20
    assert contacts.filter(pl.col("lifecycle_status") == "lead").height > 0
    assert set(tables["deals"]["stage"].unique()) >= {"won", "lost"}
    assert all(0 < p < 1 for p in truth.values())
