"""Drift, decay and freshness (holocrm_core.monitoring): each check fires on what moved and only on that."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from holocrm_core.monitoring import (
    BLOCK,
    OK,
    SKIPPED,
    WARN,
    DriftThresholds,
    asset_freshness,
    embedding_drift,
    estimated_performance,
    frame_drift,
    judge_policy,
    judge_scorer,
    numeric_drift,
    psi,
)
from holocrm_core.settings import HoloPaths
from tests.support.monitoring_exports import (
    IBM_WIN_LOSS,
    IFOOD,
    double_values,
    edited_export,
    generated_export,
    resampled,
    shift_industry,
)


# -- drift on exports --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """The staged tables of one generated export and of the same export with industry and values moved."""
    from holocrm_core.ingest.export import ingest_export

    root = tmp_path_factory.mktemp("drift-exports")
    source = generated_export(root, n_contacts=4000)
    shifted = edited_export(
        source, root / "shifted", {"companies": shift_industry(0.2), "deals": double_values}
    )
    return ingest_export(source).tables, ingest_export(shifted).tables


def _moved(report) -> dict[str, str]:
    return {c.column: c.severity for c in report.moved}


def test_shifted_industry_warns_and_doubled_values_block_on_exactly_those_columns(exports):
    reference, shifted = exports
    companies = frame_drift(reference["companies"], shifted["companies"], name="companies")
    deals = frame_drift(reference["deals"], shifted["deals"], name="deals")
    assert _moved(companies) == {"industry": WARN}, companies.lines()
    assert _moved(deals) == {"value": BLOCK}, deals.lines()
    assert deals.blocking and not companies.blocking
    for name in ("contacts", "activities"):
        assert frame_drift(reference[name], shifted[name], name=name).moved == []
    # the words say which column moved and by how much
    value = deals.blocked[0]
    assert "value: mean" in value.words and "(+100%)" in value.words and "PSI" in value.words
    industry = companies.warned[0]
    assert "software" in industry.words and "->" in industry.words
    assert "block on value" in deals.summary()


def test_a_re_export_of_the_same_world_with_new_ids_fires_nothing(exports):
    reference, _ = exports
    id_columns = {"companies": "company_id", "contacts": "contact_id", "deals": "deal_id"}
    id_columns["activities"] = "activity_id"
    for seed, (name, id_column) in enumerate(id_columns.items()):
        again = resampled(reference[name], id_column, seed=seed)
        report = frame_drift(reference[name], again, name=name)
        assert report.moved == [], report.lines()
        assert report.severity == OK and len(report.judged) >= 2


def test_a_random_split_of_one_export_fires_nothing(exports):
    reference, _ = exports
    deals = reference["contacts"].sample(fraction=1.0, shuffle=True, seed=3)
    half = deals.height // 2
    report = frame_drift(deals[:half], deals[half:], name="contacts halves")
    assert report.moved == [], report.lines()


@pytest.mark.skipif(not IBM_WIN_LOSS.exists(), reason=f"public data absent: {IBM_WIN_LOSS}")
def test_a_real_period_shift_is_named_and_a_random_split_is_not():
    """IBM win/loss ordered by opportunity number (the closest it has to time): oldest 80% vs newest 20%."""
    data = pl.read_csv(IBM_WIN_LOSS).sort("Opportunity Number")
    cut = int(data.height * 0.8)
    skip = ("Opportunity Number", "Opportunity Result")
    period = frame_drift(data[:cut], data[cut:], name="ibm by period", exclude=skip)
    moved = _moved(period)
    assert period.blocking and period.dataset_drift
    # what changed between the periods: client sizes, competitors, sales-cycle lengths
    for column in ("Client Size By Revenue", "Competitor Type", "Elapsed Days In Sales Stage"):
        assert moved.get(column) == BLOCK, period.lines()
    for column in ("Region", "Supplies Group", "Route To Market"):
        assert column not in moved
    shuffled = data.sample(fraction=1.0, shuffle=True, seed=0)
    random_split = frame_drift(shuffled[:cut], shuffled[cut:], name="ibm random", exclude=skip)
    assert random_split.moved == [], random_split.lines()


@pytest.mark.skipif(not IFOOD.exists(), reason=f"public data absent: {IFOOD}")
def test_newest_customers_spend_less_and_a_random_split_does_not():
    """iFood ordered by enrolment date: the newest 20% had less time to buy (a real period shift)."""
    data = pl.read_csv(IFOOD).sort("Dt_Customer")
    cut = int(data.height * 0.8)
    skip = ("ID", "Z_CostContact", "Z_Revenue", "Response", "Dt_Customer")
    period = frame_drift(data[:cut], data[cut:], name="ifood by enrolment", exclude=skip)
    moved = _moved(period)
    assert moved.get("NumWebVisitsMonth") == BLOCK and "MntWines" in moved, period.lines()
    for column in ("Education", "Marital_Status", "Kidhome", "Complain"):
        assert column not in moved
    shuffled = data.sample(fraction=1.0, shuffle=True, seed=0)
    assert frame_drift(shuffled[:cut], shuffled[cut:], exclude=skip).moved == []


# -- drift mechanics ---------------------------------------------------------------------------------------
def test_psi_of_known_shares():
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    expected = (0.7 - 0.5) * np.log(0.7 / 0.5) + (0.3 - 0.5) * np.log(0.3 / 0.5)
    assert psi([0.5, 0.5], [0.7, 0.3]) == pytest.approx(expected)


def test_small_samples_need_significance_not_only_a_large_psi():
    rng = np.random.default_rng(0)
    a, b = pl.Series("x", rng.normal(size=60)), pl.Series("x", rng.normal(size=60))
    result = numeric_drift("x", a, b)
    assert result.psi > 0.1  # ten bins on 60 rows: noise alone looks like drift...
    assert result.severity == OK  # ...but the KS test does not reject, so nothing fires
    shifted = numeric_drift("x", a, pl.Series("x", rng.normal(loc=2.0, size=60)))
    assert shifted.severity == BLOCK


def test_missing_values_count_as_drift_and_tiny_columns_are_skipped_in_words():
    rng = np.random.default_rng(1)
    values = rng.normal(size=5000)
    holes = np.where(rng.random(5000) < 0.4, np.nan, rng.normal(size=5000))
    result = numeric_drift("x", pl.Series("x", values), pl.Series("x", holes).fill_nan(None))
    assert result.severity == BLOCK and "missing 0% -> 39%" in result.words  # 39.4% of 5,000 drawn
    tiny = numeric_drift("y", pl.Series("y", [1.0, 2.0]), pl.Series("y", [3.0, 4.0]))
    assert tiny.severity == SKIPPED and "too few values" in tiny.words


def test_schema_changes_and_unjudged_columns_are_reported():
    ref = pl.DataFrame(
        {"deal_id": ["a", "b"] * 50, "amount": np.arange(100.0), "stage": ["won", "lost"] * 50}
    )
    cur = ref.drop("stage").with_columns(pl.lit(1).alias("new_field"))
    report = frame_drift(ref, cur, name="deals")
    by_column = {c.column: c for c in report.columns}
    assert by_column["stage"].severity == WARN and "missing now" in by_column["stage"].words
    assert by_column["new_field"].severity == WARN
    assert by_column["deal_id"].severity == SKIPPED and "identifier" in by_column["deal_id"].words
    with pytest.raises(ValueError, match="not in the reference"):
        frame_drift(ref, cur, columns=["nope"])


def test_thresholds_are_configurable_and_checked(monkeypatch):
    rng = np.random.default_rng(2)
    a = pl.Series("x", rng.normal(size=20_000))
    b = pl.Series("x", rng.normal(loc=0.35, size=20_000))
    assert numeric_drift("x", a, b).severity == WARN
    strict = DriftThresholds(psi_warn=0.05, psi_block=0.1)
    assert numeric_drift("x", a, b, strict).severity == BLOCK
    monkeypatch.setenv("HOLOCRM_DRIFT_PSI_BLOCK", "0.4")
    assert DriftThresholds.from_env().psi_block == 0.4
    monkeypatch.setenv("HOLOCRM_DRIFT_PSI_WARN", "abc")
    with pytest.raises(ValueError, match="not a number"):
        DriftThresholds.from_env()
    with pytest.raises(ValueError, match="psi_warn <= psi_block"):
        DriftThresholds(psi_warn=0.3, psi_block=0.2)


def test_embedding_drift_sees_a_moved_centroid_and_not_a_resample():
    rng = np.random.default_rng(4)
    reference = rng.normal(size=(800, 32)).astype(np.float32)
    same = rng.normal(size=(800, 32)).astype(np.float32)
    moved = same + np.r_[np.full(4, 0.8), np.zeros(28)].astype(np.float32)
    assert embedding_drift("notes", reference, same).severity == OK
    result = embedding_drift("notes", reference, moved)
    assert result.severity in (WARN, BLOCK) and "AUC" in result.words and result.statistic > 0.75
    with pytest.raises(ValueError, match="same width"):
        embedding_drift("notes", reference, same[:, :10])


# -- decay --------------------------------------------------------------------------------------------------
def _world(n: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    p = 1 / (1 + np.exp(-(x @ np.array([1.5, -1.0, 0.5]) - 1.0)))  # the champion knows the truth
    y = (rng.random(n) < p).astype(int)
    heuristic = 1 / (1 + np.exp(-(x[:, 0] - 1.0)))  # one field only
    return p, y, heuristic, rng


def test_planted_decay_fails_the_check_and_the_clean_outcomes_pass():
    p_then, y_then, _, _ = _world(4000, seed=5)
    promoted = float(judge_scorer("lead", "3", y_then, p_then).auc)
    p, y, heuristic, rng = _world(3000, seed=6)
    clean = judge_scorer("lead", "3", y, p, promoted_auc=promoted, rivals={"heuristic": heuristic})
    assert not clean.failed, clean.words
    assert "holds" in clean.words
    flipped = y.copy()
    flip = rng.random(len(y)) < 0.2
    flipped[flip] = 1 - flipped[flip]
    decayed = judge_scorer("lead", "3", flipped, p, promoted_auc=promoted, rivals={"heuristic": heuristic})
    assert decayed.failed, decayed.words
    assert "DECAYED" in decayed.words and "promoted on" in decayed.words
    assert any("calibration error" in r for r in decayed.reasons)


def test_a_champion_below_its_rival_fails_and_few_outcomes_are_not_judged():
    p, y, heuristic, _ = _world(3000, seed=8)
    judged = judge_scorer("deal", "2", y, heuristic, rivals={"logistic": p})
    assert judged.failed and "below the logistic's" in judged.words
    few = judge_scorer("deal", "2", y[:20], p[:20], promoted_auc=0.8)
    assert not few.failed and "too few to judge" in few.words and few.estimate is not None
    with pytest.raises(ValueError, match="outcomes but"):
        judge_scorer("deal", "2", y, p[:10])


def test_label_free_estimate_matches_the_realised_auc_when_calibrated():
    p, y, _, _ = _world(20_000, seed=9)
    estimate = estimated_performance(p)
    from sklearn.metrics import roc_auc_score

    realised = roc_auc_score(y, p)
    assert estimate.expected_auc == pytest.approx(realised, abs=0.01)
    assert estimate.expected_positive_rate == pytest.approx(y.mean(), abs=0.01)
    # exact on a tiny case, ties counted one half: pairs (i pos, j neg) weighted p_i (1 - p_j)
    q = np.array([0.2, 0.5, 0.5, 0.9])
    num = den = 0.0
    for i in range(4):
        for j in range(4):
            if i != j:
                w = q[i] * (1 - q[j])
                den += w
                num += w * (1.0 if q[i] > q[j] else 0.5 if q[i] == q[j] else 0.0)
    assert estimated_performance(q).expected_auc == pytest.approx(num / den)


def test_policy_decay_on_rewards():
    rng = np.random.default_rng(10)
    baseline = rng.binomial(1, 0.30, 2000)
    holding = judge_policy("action_policy", "4", rng.binomial(1, 0.31, 2000), baseline_rewards=baseline)
    assert not holding.failed, holding.words
    worse = judge_policy("action_policy", "4", rng.binomial(1, 0.22, 2000), baseline_rewards=baseline)
    assert worse.failed and "below the baseline" in worse.words
    broken_promise = judge_policy("outreach_policy", "1", rng.binomial(1, 0.30, 2000), promised=0.4)
    assert broken_promise.failed and "promised" in broken_promise.words
    assert "too few" in judge_policy("outreach_policy", "1", np.ones(5)).words


# -- freshness ----------------------------------------------------------------------------------------------
def test_freshness_names_the_stale_and_the_never_built(tmp_path, monkeypatch):
    paths = HoloPaths(tmp_path).ensure()
    pl.DataFrame({"a": [1]}).write_parquet(paths.warehouse / "staged_contacts.parquet")
    pl.DataFrame({"a": [1]}).write_parquet(paths.warehouse / "scored_leads.parquet")
    old = time.time() - 3 * 86400
    os.utime(paths.warehouse / "scored_leads.parquet", (old, old))
    by_name = {f.name: f for f in asset_freshness(paths)}
    assert not by_name["export"].stale and "fresh" in by_name["export"].words
    assert by_name["lead_model"].stale and "STALE" in by_name["lead_model"].words
    assert by_name["deal_model"].stale and "never built" in by_name["deal_model"].words
    monkeypatch.setenv("HOLOCRM_FRESHNESS_LEAD_MODEL_HOURS", "100")
    assert not {f.name: f for f in asset_freshness(paths)}["lead_model"].stale
    later = datetime.now(UTC) + timedelta(days=2)
    assert {f.name: f for f in asset_freshness(paths, now=later)}["export"].stale


# -- the served champion on an outcome dataset --------------------------------------------------------------
def _outcome_rows(n: int, start: datetime, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    activities = rng.poisson(4, n)
    quiet = rng.exponential(30, n)
    seniority = rng.choice(["individual", "manager", "director", "vp"], n)
    logit = 0.5 * activities - 0.04 * quiet + (seniority == "vp") * 1.0 - 1.5
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    at = [start + timedelta(hours=int(h)) for h in rng.integers(0, 24 * 60, n)]
    return pl.DataFrame(
        {
            "entity": ["contact"] * n,
            "entity_id": [f"C{seed}-{i}" for i in range(n)],
            "label": label,
            "outcome_at": pl.Series(at, dtype=pl.Datetime("us", "UTC")),
            "snapshot_at": pl.Series(at, dtype=pl.Datetime("us", "UTC")),
            "n_activities": activities,
            "days_since_last_activity": quiet,
            "seniority": seniority,
        }
    )


def test_the_served_champion_decays_on_flipped_outcomes_after_its_promotion():
    from holocrm_core.monitoring import Champion, scorer_decay
    from holocrm_core.scoring import make_strategy

    promoted = datetime(2026, 6, 1, tzinfo=UTC)
    before = _outcome_rows(3000, promoted - timedelta(days=70), seed=1)
    after = _outcome_rows(2000, promoted + timedelta(days=1), seed=2)
    model = make_strategy("logistic").fit(before, before["label"].to_numpy())
    auc_then = judge_scorer("x", "1", before["label"].to_numpy(), model.predict_proba(before)[:, 1]).auc
    champion = Champion("holocrm_lead_scorer", "4", promoted, auc_then)
    holds = scorer_decay(pl.concat([before, after]), "contact", champion, model)
    assert not holds.failed and holds.outcomes == 2000 and set(holds.rival_aucs) == {"heuristic", "logistic"}
    flip = np.random.default_rng(3).random(after.height) < 0.2
    flipped = after.with_columns(
        pl.Series("label", np.where(flip, 1 - after["label"], after["label"]), pl.Int8)
    )
    decayed = scorer_decay(pl.concat([before, flipped]), "contact", champion, model)
    assert decayed.failed, decayed.words
    assert "holocrm_lead_scorer v4 DECAYED" in decayed.words


def test_promotion_drift_compares_training_rows_like_for_like():
    from holocrm_core.monitoring import promotion_drift

    promoted = datetime(2026, 6, 1, tzinfo=UTC)
    champion_rows = _outcome_rows(1500, promoted - timedelta(days=70), seed=11)
    same_world = _outcome_rows(1500, promoted, seed=12)
    calm = promotion_drift(champion_rows, same_world)
    assert not calm.blocking, calm.lines()
    assert {c.column for c in calm.judged} == {"n_activities", "days_since_last_activity", "seniority"}
    busier = same_world.with_columns(pl.col("n_activities") * 3)
    moved = promotion_drift(champion_rows, busier)
    assert moved.blocking and [c.column for c in moved.blocked] == ["n_activities"]
    assert "promotion: block on n_activities" in moved.summary()


def test_index_vectors_drift_per_entity_type():
    from holocrm_core.monitoring._watch import embedding_report

    rng = np.random.default_rng(12)

    def vectors(n: int, kind: str, shift: float = 0.0) -> pl.DataFrame:
        v = rng.normal(size=(n, 16)).astype(np.float32)
        v[:, 0] += shift
        return pl.DataFrame(
            {"entity_type": [kind] * n, "vector": v}, schema_overrides={"vector": pl.Array(pl.Float32, 16)}
        )

    then = pl.concat([vectors(300, "contact"), vectors(300, "deal"), vectors(10, "company")])
    now = pl.concat([vectors(300, "contact"), vectors(300, "deal", shift=1.5), vectors(10, "company")])
    report = embedding_report(then, now)
    by_name = {c.column: c.severity for c in report.columns}
    assert by_name == {"company vectors": SKIPPED, "contact vectors": OK, "deal vectors": BLOCK}


def test_the_embedding_sample_keeps_the_same_rows_without_reading_every_vector(tmp_path, monkeypatch):
    """The drift sample is chosen from the entity types alone and only its vectors are read (at 1M contacts
    the whole vector column was 9.5 GB): the same rows, in the same order, as sampling the whole frame."""
    from holocrm_core.monitoring import _watch
    from holocrm_core.warehouse import Warehouse

    monkeypatch.setattr(_watch, "EMBEDDING_ROWS", 30)
    rng = np.random.default_rng(1)
    types = rng.choice(["contact", "company", "activity"], size=500, p=[0.5, 0.05, 0.45])
    frame = pl.DataFrame(
        {
            "entity_type": types,
            "entity_id": [f"e{i}" for i in range(500)],
            "vector": rng.normal(size=(500, 8)),
        },
        schema_overrides={"vector": pl.Array(pl.Float64, 8)},
    )
    wh = Warehouse(tmp_path)
    wh.write("embeddings", frame)
    sample = _watch._embedding_sample(wh)
    expected = frame.select("entity_type", "vector").filter(
        pl.int_range(pl.len()).shuffle(seed=0).over("entity_type") < 30
    )
    assert sample.equals(expected)
    counts = dict(sample.group_by("entity_type").len().iter_rows())
    assert counts == {"contact": 30, "activity": 30, "company": int((types == "company").sum())}
    assert _watch._embedding_sample(Warehouse(tmp_path / "empty")) is None
