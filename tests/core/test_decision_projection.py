"""The decision assets read only the staged columns a context needs (lazy inputs, ``context_columns``) and
find each activity's contact by a join (``positions``): the same contexts and action log as from the whole
tables and the Python dict they replace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from holocrm_core.decisions.action_log import build_action_log, context_columns, positions
from holocrm_core.decisions.recommend import contact_contexts


def _dict_positions(keys: list, ids: list) -> np.ndarray:
    index = {c: i for i, c in enumerate(ids)}
    return np.array([index.get(c, -1) for c in keys], dtype=np.int64)


def test_positions_match_a_dict_lookup_with_repeats_nulls_and_unknown_ids():
    rng = np.random.default_rng(7)
    ids = [f"c{int(i)}" for i in rng.integers(0, 300, 400)]  # repeated ids: the last row wins, as in a dict
    keys = [f"c{int(i)}" if i < 350 else None for i in rng.integers(0, 400, 5000)]  # unknown and null keys
    got = positions(pl.Series(keys, dtype=pl.String), pl.Series(ids))
    assert got.dtype == np.int64
    assert np.array_equal(got, _dict_positions(keys, ids))
    assert (got == -1).any() and len(got) == 5000
    assert positions(pl.Series([], dtype=pl.String), pl.Series(ids)).shape == (0,)
    assert np.array_equal(positions(pl.Series(["a"]), pl.Series([], dtype=pl.String)), [-1])


def test_context_columns_keep_what_a_context_reads_in_table_order():
    assert context_columns("staged_contacts", ["email", "cf_b", "contact_id", "seniority", "cf_a"]) == [
        "cf_b",
        "contact_id",
        "seniority",
        "cf_a",
    ]
    assert context_columns(
        "staged_activities", ["activity_id", "contact_id", "body", "occurred_at", "cf_x"]
    ) == [
        "contact_id",
        "occurred_at",
    ]
    with pytest.raises(ValueError, match="staged_deals"):
        context_columns("staged_deals", ["deal_id"])


def _tables(n: int = 300, seed: int = 3) -> dict[str, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    contacts = pl.DataFrame(
        {
            "contact_id": [f"c{i}" for i in range(n)],
            "email": [f"p{i}@x.test" for i in range(n)],
            "first_name": ["Ann"] * n,
            "company_id": [f"k{i % 40}" if i % 7 else None for i in range(n)],
            "seniority": rng.choice(["vp", "c_level", "individual", None], n).tolist(),
            "cf_region": rng.choice(["north", "south"], n).tolist(),
            "lifecycle_status": rng.choice(["lead", "qualified", "customer", "disqualified"], n).tolist(),
            "cf_score": rng.normal(size=n),
        }
    )
    companies = pl.DataFrame(
        {
            "company_id": [f"k{i}" for i in range(40)],
            "name": [f"Firm {i}" for i in range(40)],
            "industry": rng.choice(["saas", "retail"], 40).tolist(),
            "cf_tier": rng.choice(["a", "b"], 40).tolist(),
            "size_band": rng.choice(["1-10", "11-50"], 40).tolist(),
        }
    )
    m = 4000
    activities = pl.DataFrame(
        {
            "activity_id": [f"a{i}" for i in range(m)],
            "contact_id": [f"c{int(i)}" if i < n else f"gone{int(i)}" for i in rng.integers(0, n + 20, m)],
            "subject": ["hello"] * m,
            "body": ["a long text " * 5] * m,
            "occurred_at": [start + timedelta(hours=int(h)) for h in rng.integers(0, 24 * 90, m)],
        }
    ).with_columns(
        pl.when(pl.int_range(pl.len()) % 97 == 0)
        .then(None)
        .otherwise(pl.col("occurred_at"))
        .alias("occurred_at")
    )
    return {"staged_contacts": contacts, "staged_companies": companies, "staged_activities": activities}


def _projected(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    return {
        name: frame.lazy().select(context_columns(name, frame.columns)).collect()
        for name, frame in tables.items()
    }


def test_contexts_and_action_log_from_the_projected_tables_equal_those_from_the_whole_tables():
    tables = _tables()
    projected = _projected(tables)
    assert projected["staged_activities"].columns == ["contact_id", "occurred_at"]
    whole = contact_contexts(*tables.values())
    assert whole.height == 300 and whole["touches_30d"].sum() > 0
    assert contact_contexts(*projected.values()).equals(whole)
    rng = np.random.default_rng(5)
    logged = pl.DataFrame(
        {
            "action_id": [f"x{i}" for i in range(500)],
            "contact_id": [f"c{int(i)}" if i < 300 else None for i in rng.integers(0, 320, 500)],
            "occurred_at": [datetime(2026, 3, 1, tzinfo=UTC) + timedelta(hours=int(h)) for h in range(500)],
            "action": rng.choice(["email", "call", "wait"], 500).tolist(),
            "source": ["export"] * 500,
            "policy": ["logging"] * 500,
            "propensity": rng.uniform(0.1, 1, 500),
            "reward": rng.uniform(0, 1, 500),
            "window_days": [14] * 500,
            "lead_score": [None] * 500,
            "lead_band": [None] * 500,
        },
        schema_overrides={"lead_score": pl.Float64, "lead_band": pl.String},
    )
    log = build_action_log(logged, *tables.values())
    assert log["days_since_last_touch"].is_not_null().sum() > 0
    assert build_action_log(logged, *projected.values()).equals(log)


@pytest.mark.parametrize("n", [1, 999, 10_001])
def test_on_policy_bootstrap_in_slices_gives_the_one_array_result(n, monkeypatch):
    """The logging policy's bootstrap is drawn in slices of rows (memory at 1M contacts): the same draws in
    the same order as one (n_bootstrap, n) array, so the same estimate, whatever the slice size."""
    from holocrm_core.decisions import champion

    rewards = np.random.default_rng(n).uniform(0, 1, n)
    rng = np.random.default_rng(4)
    boots = rewards[rng.integers(0, n, (200, n))].mean(axis=1)
    low, high = np.quantile(boots, [0.025, 0.975])
    for draws in (1, 3 * n, 7 * n + 1, 10**9):  # one row at a time, uneven slices, everything at once
        monkeypatch.setattr(champion, "BOOTSTRAP_DRAWS", draws)
        got = champion.on_policy_value(rewards, 200, 4)
        assert (got.low, got.high, got.value) == (float(low), float(high), float(rewards.mean()))
