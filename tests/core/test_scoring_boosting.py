"""Gradient-boosted and blended strategies (same protocol as the neural scorer), and the note-rating memory."""

from __future__ import annotations

import pickle

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from holocrm_core import outcomes
from holocrm_core.scoring import (
    STRATEGIES,
    ScoringStrategy,
    make_strategy,
    score_frame,
    train_scorer,
)
from holocrm_core.scoring.notes import NoteRater
from tests.support.crm import toy_crm
from tests.support.notes import note_records

FAST_NEURAL = {"epochs": 12, "patience": 3}


@pytest.fixture(scope="module")
def toy_dataset() -> pl.DataFrame:
    tables, _ = toy_crm(1200, seed=3)
    return outcomes.build_outcome_dataset(tables)


def _picklist_leads(n: int, seed: int = 0) -> tuple[pl.DataFrame, np.ndarray]:
    """A lead export with only picklists and numbers (no activity history), an interaction a linear model
    misses: conversion is likely when the source is a referral AND the budget is large."""
    rng = np.random.default_rng(seed)
    source = rng.choice(["referral", "web", "event", "ads"], n)
    budget = rng.lognormal(9, 1, n)
    region = rng.choice(["north", "south", None], n)
    logit = -2.0 + 4.0 * ((source == "referral") & (budget > np.exp(9))) - 1.0 * (source == "ads")
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pl.DataFrame({"lead_source": source, "budget": budget, "region": region.tolist()})
    return frame, y, logit


def test_trees_and_blend_are_strategies_chosen_by_name():
    assert {"gbm", "blend"} <= set(STRATEGIES)
    assert isinstance(make_strategy("gbm"), ScoringStrategy)
    assert isinstance(make_strategy("blend"), ScoringStrategy)


def test_trees_learn_an_interaction_of_picklist_and_number_with_calibrated_probabilities():
    frame, y, _ = _picklist_leads(3000)
    test_frame, y_test, true_logit = _picklist_leads(1500, seed=1)
    scorer = make_strategy("gbm").fit(frame, y)
    p = scorer.predict_proba(test_frame)[:, 1]
    assert roc_auc_score(y_test, p) > roc_auc_score(y_test, true_logit) - 0.02
    assert p.min() > 0 and p.max() < 1
    assert abs(p.mean() - y_test.mean()) < 0.05
    # The single-record path (dict in) gives the batch figure; a missing picklist value is allowed.
    records = test_frame.head(25).to_dicts()
    single = [scorer.score_record(r) for r in records]
    np.testing.assert_allclose(single, p[:25], atol=1e-9)
    reasons = scorer.reasons(test_frame.head(5))
    assert any("Lead source" in r for rs in reasons for r in rs)


def test_blend_weighs_neural_and_trees_on_recent_rows_and_explains(toy_dataset):
    trained = train_scorer(toy_dataset, "contact", strategy="blend", neural=FAST_NEURAL)
    scorer = trained.scorer  # the blend, recalibrated on the newest fold where that helped
    blend = getattr(scorer, "scorer", scorer)
    assert trained.strategy == "blend"
    assert set(blend.weights_) == {"neural", "gbm"} and blend.selected_
    assert all(blend.weights_[name] > 0 for name in blend.selected_)
    assert trained.metrics["auc"] > trained.heuristic_metrics["auc"]
    rows = trained.validation.head(30)
    batch = scorer.predict_proba(rows)[:, 1]
    single = [scorer.score_record(r) for r in rows.to_dicts()]
    np.testing.assert_allclose(single, batch, atol=1e-6)
    scored = score_frame(scorer, rows)
    assert scored["reasons"].list.len().max() > 0
    assert ((scored["score"] > 0) & (scored["score"] < 1)).all()


def test_note_ratings_are_remembered_per_rater_and_not_pickled():
    record, notes, y = note_records(1200, seed=2)
    rater = NoteRater().fit(record, notes, y, 1200)
    assert (
        rater.rate_series(pl.Series(notes[:5]))[0].shape == (5,) and getattr(rater, "_memory", None) is None
    )
    series = pl.Series(notes[:300] * 3)
    first = rater.rate_series(series)
    assert rater._memory.height == len(set(notes[:300]))  # each distinct note rated once
    second = rater.rate_series(series)
    fresh = pickle.loads(pickle.dumps(rater))
    assert getattr(fresh, "_memory", None) is None
    cold = fresh.rate_series(series)
    direct = rater.rate(notes[:300] * 3)
    for got in (first, second, cold):
        np.testing.assert_allclose(got[0], direct[0], atol=1e-9)
        np.testing.assert_allclose(got[1], direct[1], atol=1e-9)
    # New notes join the memory; the ones already there keep their rating.
    more = rater.rate_series(pl.Series(notes[300:400] + [None, ""]))
    np.testing.assert_allclose(more[0][:100], rater.rate(notes[300:400])[0], atol=1e-9)
    assert rater._memory.height == len(set(notes[:400]) | {""})
