"""The one gate, as pure figures: what is served instead, and only when it is not worse."""

from __future__ import annotations

import numpy as np

from holocrm_core.registry.gate import (
    CANDIDATE,
    CHAMPION_ROLE,
    HEURISTIC,
    LOGISTIC,
    ChampionEvidence,
    GateEvidence,
    cross_fitted_platt,
    judge,
)
from holocrm_core.scoring.calibration import expected_calibration_error, sigmoid


def _slice(n: int = 600, rate_shift: float = 0.0, seed: int = 0):
    """Outcomes of the newest slice and a true log-odds; ``rate_shift`` moves the slice's base rate."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(0, 1.2, n)
    y = (rng.random(n) < sigmoid(signal + rate_shift)).astype(int)
    return y, signal, rng


def _evidence(y, cand_logits, lr_logits, heur_scores, **extra) -> GateEvidence:
    return GateEvidence(
        y=y,
        candidate=extra.pop("candidate", "blend"),
        candidate_scores=sigmoid(cand_logits),
        candidate_logits=cand_logits,
        logistic_scores=None if lr_logits is None else sigmoid(lr_logits),
        logistic_logits=lr_logits,
        heuristic_scores=heur_scores,
        groups=np.arange(len(y)),
        **extra,
    )


def test_a_calibration_failure_under_a_planted_shift_is_recalibrated_and_served():
    # Trained where 6% converted; the newest slice converts at about 31%: the ranking holds, the level not.
    y, signal, rng = _slice(rate_shift=-0.6)
    cand = signal - 2.6 + rng.normal(0, 0.3, len(y))  # right order, far too low probabilities
    lr = 0.8 * signal - 2.6 + rng.normal(0, 0.6, len(y))
    heur = sigmoid(0.3 * signal + rng.normal(0, 1.0, len(y)))
    assert 0.25 < y.mean() < 0.4 and expected_calibration_error(y, sigmoid(cand)) > 0.15
    verdict = judge(_evidence(y, cand, lr, heur))
    assert verdict.served_role == CANDIDATE and verdict.passed and verdict.recalibrate
    assert "recalibrated on the newest slice" in verdict.reason
    # the recalibrated probabilities are what the check measured, cross-fitted (no row maps itself)
    assert expected_calibration_error(y, cross_fitted_platt(cand, y)) < 0.1


def test_a_loss_to_the_plain_logistic_regression_serves_the_logistic_regression():
    y, signal, rng = _slice(seed=1)
    lr = signal + rng.normal(0, 0.4, len(y))
    cand = signal + rng.normal(0, 1.6, len(y))  # calibrated enough, but a worse ranking
    heur = sigmoid(0.3 * signal + rng.normal(0, 1.0, len(y)))
    verdict = judge(_evidence(y, cand, lr, heur))
    assert verdict.served_role == LOGISTIC and verdict.served_name == "logistic" and verdict.passed
    assert not verdict.candidate_passed and "trails the plain logistic regression" in verdict.reason
    assert verdict.line("holocrm_lead_scorer", "4").startswith("holocrm_lead_scorer: serving v4 (logistic)")


def test_the_heuristic_is_served_only_when_it_is_not_worse_on_the_gates_figures():
    y, signal, rng = _slice(seed=2)
    cand = 3.0 * signal  # the best ranking, over-confident: fails calibration
    weak = sigmoid(rng.normal(0, 1, len(y)))  # a heuristic at chance
    no_logits = _evidence(y, cand, None, weak)
    no_logits = GateEvidence(**{**no_logits.__dict__, "candidate_logits": None})  # cannot recalibrate
    verdict = judge(no_logits)
    assert verdict.served_role == CANDIDATE and not verdict.passed
    assert "the heuristic is worse" in verdict.reason and "calibration error" in verdict.reason
    # A heuristic as good and as calibrated as the failing model is served instead.
    good = sigmoid(signal)
    fair = GateEvidence(**{**no_logits.__dict__, "heuristic_scores": good})
    verdict = judge(fair)
    assert verdict.served_role == HEURISTIC and not verdict.passed and "not worse" in verdict.reason


def test_an_adversarial_block_serves_no_newly_trained_model():
    y, signal, _ = _slice(seed=3)
    verdict = judge(
        _evidence(y, signal, signal, sigmoid(0.2 * signal), adversarial_block="looks unlike today")
    )
    assert verdict.served_role == HEURISTIC and "looks unlike today" in verdict.reason


def _champion(y, scores, cand, how="80 newest outcomes after its training cutoff 2026-01-01"):
    return ChampionEvidence("3", how, y, scores, cand, None, sigmoid(np.zeros(len(y)) + 0.01 * cand))


def test_a_champion_stays_while_it_is_better_on_rows_neither_has_seen_and_is_demoted_when_it_fails():
    y, signal, rng = _slice(seed=4)
    cand = signal + rng.normal(0, 1.5, len(y))
    better = sigmoid(signal + rng.normal(0, 0.3, len(y)))
    kept = judge(_evidence(y, cand, None, None, champion=_champion(y, better, sigmoid(cand))))
    assert kept.served_role == CHAMPION_ROLE and kept.passed and "champion v3" in kept.reason
    assert "after its training cutoff" in kept.reason and not kept.champion_demoted
    # The same champion, badly calibrated on the new rows: it no longer passes, the candidate is served.
    skewed = np.clip(better * 0.2, 0.001, 0.999)
    replaced = judge(_evidence(y, cand, None, None, champion=_champion(y, skewed, sigmoid(cand))))
    assert replaced.served_role == CANDIDATE and replaced.champion_demoted


def test_the_truth_figures_count_a_record_as_won_with_its_true_probability():
    from holocrm_core.scoring.truth import expected_auc, figures

    p = np.array([0.9, 0.7, 0.4, 0.1])
    assert expected_auc(p, p) > expected_auc(p[::-1].copy(), p)  # the true order beats its reverse
    assert expected_auc(np.ones(4), p) == 0.5  # a constant score ranks nothing
    f = figures(p, p, np.array(["hot", "hot", "warm", "cold"]))
    assert f["rank_correlation"] == 1.0 and f["hot"] == 2 and f["hot_below_10pct"] == 0


def test_when_the_selection_prefers_the_heuristic_a_better_logistic_regression_is_served():
    y, signal, rng = _slice(seed=5)
    lr = signal + rng.normal(0, 0.4, len(y))
    weak = sigmoid(0.2 * signal + rng.normal(0, 1.0, len(y)))
    verdict = judge(_evidence(y, np.log(weak / (1 - weak)), lr, weak, candidate="heuristic"))
    assert verdict.served_role == LOGISTIC and verdict.passed, verdict.reason


def test_a_drifted_world_holds_the_promotion_while_the_champion_still_passes():
    y, signal, rng = _slice(seed=5)
    cand = signal + rng.normal(0, 0.2, len(y))  # a candidate that would win on its own
    sound = sigmoid(signal + rng.normal(0, 0.6, len(y)))
    moved = "promotion: block on amount, industry; the dataset as a whole drifted"
    champion = ChampionEvidence(
        "3", "80 newest outcomes after its training cutoff 2026-01-01", y, sound, sigmoid(cand)
    )
    assert judge(_evidence(y, cand, None, None, champion=champion)).served_role == CANDIDATE
    held = judge(
        _evidence(y, cand, None, None, champion=ChampionEvidence(**{**champion.__dict__, "drift": moved}))
    )
    assert held.served_role == CHAMPION_ROLE and held.passed
    assert held.reason.startswith("promotion held") and "block on amount, industry" in held.reason
    # A champion that fails on the new outcomes is demoted, drift or not.
    skewed = ChampionEvidence(
        **{**champion.__dict__, "champion_scores": np.clip(sound * 0.2, 0.001, 0.999), "drift": moved}
    )
    assert judge(_evidence(y, cand, None, None, champion=skewed)).served_role == CANDIDATE


def test_drift_since_compares_the_decided_rows_before_and_after_the_cutoff():
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace

    import polars as pl

    from holocrm_core.registry.evidence import drift_since

    rng = np.random.default_rng(0)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    cutoff = start + timedelta(days=100)

    def rows(n, day0, amount_mean, industries):
        return pl.DataFrame(
            {
                "entity_id": [f"D{day0}-{i}" for i in range(n)],
                "outcome_at": [start + timedelta(days=day0 + i % 90) for i in range(n)],
                "label": rng.integers(0, 2, n),
                "amount": rng.normal(amount_mean, 10.0, n),
                "industry": rng.choice(industries, n),
            }
        )

    before = rows(400, 0, 100.0, ["software", "retail"])
    same = rows(400, 101, 100.0, ["software", "retail"])
    other = rows(400, 101, 160.0, ["mining", "energy"])
    assert drift_since(SimpleNamespace(train=before, validation=same), cutoff) is None
    moved = drift_since(SimpleNamespace(train=before, validation=other), cutoff)
    assert moved is not None and "amount" in moved and "industry" in moved
    # Too few outcomes after the cutoff to judge: no hold.
    assert drift_since(SimpleNamespace(train=before, validation=other.head(10)), cutoff) is None
