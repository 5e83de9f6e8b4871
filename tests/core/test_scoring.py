"""Scoring strategies: time split, minimum-data fallback, calibration bounds, reasons in words, learning."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import log_loss

from holocrm_core import outcomes
from holocrm_core.scoring import (
    MIN_EACH,
    NaiveBayesScorer,
    ScoringStrategy,
    WeightedHeuristicScorer,
    make_strategy,
    minimum_data,
    score_frame,
    time_split,
    train_scorer,
)
from holocrm_core.scoring.calibration import expected_calibration_error, quality
from tests.support.crm import toy_crm

FAST = {"epochs": 25, "patience": 5}


@pytest.fixture(scope="module")
def toy_dataset() -> pl.DataFrame:
    tables, _ = toy_crm(1600, seed=0)
    return outcomes.build_outcome_dataset(tables)


@pytest.fixture(scope="module")
def trained_leads(toy_dataset):
    return train_scorer(toy_dataset, "contact", **FAST)


def test_time_split_trains_on_older_and_validates_on_the_most_recent():
    times = [
        datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=int(d))
        for d in np.random.default_rng(0).permutation(100)
    ]
    frame = pl.DataFrame({"outcome_at": times, "label": [i % 2 for i in range(100)]})
    train, valid = time_split(frame, 0.2)
    assert train.height == 80 and valid.height == 20
    assert train["outcome_at"].max() < valid["outcome_at"].min()


def test_time_split_keeps_simultaneous_outcomes_on_one_side():
    t = datetime(2025, 1, 1, tzinfo=UTC)
    frame = pl.DataFrame({"outcome_at": [t] * 5 + [t + timedelta(days=1)] * 5, "label": [0, 1] * 5})
    train, valid = time_split(frame, 0.3)
    assert train["outcome_at"].max() < valid["outcome_at"].min()


def test_below_the_minimum_data_the_heuristic_scores_with_a_clear_message(toy_dataset):
    leads = toy_dataset.filter(pl.col("entity") == "contact").unique(
        "entity_id", keep="first", maintain_order=True
    )
    few = pl.concat(
        [leads.filter(pl.col("label") == 1).head(12), leads.filter(pl.col("label") == 0).head(60)]
    )
    trained = train_scorer(few, "contact", **FAST)
    assert trained.strategy == "heuristic" and not trained.learned
    assert isinstance(trained.scorer, WeightedHeuristicScorer)
    message = trained.enough_data.message
    assert "Only 12 converted and 60 disqualified leads" in message
    assert f"at least {MIN_EACH}" in message and "heuristic" in message
    assert minimum_data(np.array([1] * 40 + [0] * 40)).enough


def test_strategies_follow_one_protocol_and_are_chosen_in_one_place(toy_dataset, monkeypatch):
    for name in ("heuristic", "naive_bayes", "neural"):
        strategy = make_strategy(name, **(FAST if name == "neural" else {}))
        assert isinstance(strategy, ScoringStrategy)
    monkeypatch.setenv("HOLOCRM_SCORING_STRATEGY", "naive_bayes")
    assert isinstance(make_strategy(), NaiveBayesScorer)
    with pytest.raises(ValueError, match="unknown scoring strategy"):
        make_strategy("magic")


def test_sklearn_tools_wrap_a_strategy_unchanged(toy_dataset):
    from sklearn.base import clone

    scorer = clone(NaiveBayesScorer(bins=4))
    rows = toy_dataset.filter(pl.col("entity") == "contact")
    scorer.fit(rows, rows["label"].to_numpy())
    proba = scorer.predict_proba(rows.head(5))
    assert proba.shape == (5, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert scorer.get_params()["bins"] == 4


def test_probabilities_are_calibrated_and_never_exactly_zero_or_one(trained_leads):
    scores = trained_leads.validation_scores
    assert ((scores > 0) & (scores < 1)).all()
    # an extreme record (huge counts, unseen categories) still gets a probability strictly inside (0, 1)
    extreme = trained_leads.validation.head(3).with_columns(
        pl.lit(10_000).alias("n_activities"),
        pl.lit(10_000).alias("n_meeting"),
        pl.lit("martian").alias("seniority"),
    )
    p = trained_leads.scorer.predict_proba(extreme)[:, 1]
    assert ((p > 0) & (p < 1)).all()
    assert trained_leads.metrics["ece"] < 0.1


def test_ece_measures_miscalibration():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 5000)
    y = rng.uniform(0, 1, 5000) < p
    assert expected_calibration_error(y, p) < 0.03
    assert expected_calibration_error(y, np.clip(p + 0.3, 0, 1)) > 0.2


def test_the_learned_score_beats_the_heuristic_on_recent_outcomes(trained_leads):
    from holocrm_core.scoring.selection import CANDIDATES

    assert trained_leads.strategy in CANDIDATES and trained_leads.learned
    chosen = trained_leads.selection.candidates[trained_leads.strategy]
    assert all(
        chosen.mean("log_loss") <= c.mean("log_loss") for c in trained_leads.selection.candidates.values()
    )
    assert trained_leads.metrics["auc"] > trained_leads.heuristic_metrics["auc"] + 0.03


def test_reasons_are_sentences_a_salesperson_reads(trained_leads):
    features = trained_leads.validation.head(20).rename({"entity_id": "contact_id"})
    scored = score_frame(trained_leads.scorer, features)
    assert scored.columns == ["contact_id", "score", "band", "reasons"]
    assert set(scored["band"]) <= {"hot", "warm", "cold"}
    reasons = [r for rs in scored["reasons"].to_list() for r in rs]
    assert len(reasons) >= 20
    for reason in reasons:
        assert reason.endswith(("(raises the score)", "(lowers the score)"))
        assert not re.search(r"\b(n_|cf_|text_|days_since)\w*", reason), reason  # no column names
        assert reason[0].isupper() or reason[0].isdigit()
    assert any("raises" in r for r in reasons) and any("lowers" in r for r in reasons)
    assert any("notes mention" in r or "Job level" in r or "Lead source" in r for r in reasons)


def test_heuristic_and_naive_bayes_explain_in_words_too(toy_dataset):
    rows = toy_dataset.filter(pl.col("entity") == "contact")
    for scorer in (WeightedHeuristicScorer(), NaiveBayesScorer()):
        scorer.fit(rows, rows["label"].to_numpy())
        reasons = scorer.reasons(rows.head(20))
        assert any(reasons) and all(r.endswith("the score)") for rs in reasons for r in rs)


def test_more_closed_outcomes_lower_held_out_log_loss():
    tables, _ = toy_crm(2400, seed=7)
    # One snapshot per lead (half-way through its open life): the learning curve counts records.
    leads = outcomes.build_outcome_dataset(tables, every_days=10_000).filter(pl.col("entity") == "contact")
    history, held_out = time_split(leads, 0.25)
    y_held = held_out["label"].to_numpy()
    losses = []
    for size in (150, 300, 600, 1200):
        recent = history.tail(size)  # the most recent closed outcomes, as a CRM accumulates them
        scorer = make_strategy("neural", epochs=40, patience=6).fit(recent, recent["label"].to_numpy())
        losses.append(log_loss(y_held, scorer.predict_proba(held_out)[:, 1]))
    assert losses[-1] < losses[0]
    assert losses[2] < losses[0] and losses[3] <= losses[1] + 0.005, losses


def test_quality_reports_every_figure():
    y = np.array([0, 1, 0, 1, 1, 0, 0, 1, 0, 0])
    p = np.array([0.1, 0.8, 0.3, 0.7, 0.9, 0.2, 0.4, 0.6, 0.1, 0.2])
    q = quality(y, p)
    assert q["auc"] == 1.0 and q["top_decile_lift"] == pytest.approx(2.5)
    assert set(q) >= {"average_precision", "brier", "log_loss", "ece"}


# -- the training cap -------------------------------------------------------------------------------------
def test_training_cap_keeps_every_snapshot_of_the_most_recent_records_in_order(monkeypatch):
    from holocrm_core.scoring import most_recent_records, training_records_cap

    start = datetime(2025, 1, 1, tzinfo=UTC)
    rows = pl.DataFrame(  # three records, two snapshots each, in outcome-time order; one undated
        {
            "entity_id": ["u", "u", "a", "a", "b", "b"],
            "outcome_at": [None, None, start, start, start + timedelta(days=3), start + timedelta(days=3)],
            "label": [0, 0, 1, 1, 0, 0],
        }
    )
    kept, left_out = most_recent_records(rows, 2)
    assert kept["entity_id"].to_list() == ["a", "a", "b", "b"] and left_out == 1  # the undated goes first
    assert most_recent_records(rows, 0) == (rows, 0) and most_recent_records(rows, 3) == (rows, 0)
    monkeypatch.setenv("HOLOCRM_TRAINING_RECORDS", "0")
    assert training_records_cap() == 0
    monkeypatch.setenv("HOLOCRM_TRAINING_RECORDS", "many")
    with pytest.raises(ValueError, match="HOLOCRM_TRAINING_RECORDS"):
        training_records_cap()
