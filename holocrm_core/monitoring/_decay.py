"""Decay: a champion re-judged on the outcomes that arrived after its promotion.

A scorer fails when, on those outcomes, its AUC falls below a rival's (the challenger, the plain logistic
baseline, the heuristic) or below the AUC it was promoted on, by more than ``tolerance`` *and* by more than
chance (a paired bootstrap: the whole 95% interval of the gap lies below), or when its calibration error
exceeds both ``max_ece`` and what a perfectly calibrated scorer would show on as many outcomes.

Between outcomes, ``estimated_performance`` is NannyML's CBPE idea: if the probabilities are calibrated,
the expected AUC and positive rate follow from the scores alone. Its estimate moves only when the score
distribution moves, so it warns early; the realised figures decide.

A policy (next-best action, outreach) fails when its mean reward since promotion is below a baseline's
(or below what its off-policy estimate promised) by more than chance (Welch's t-test, one-sided).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from holocrm_core.scoring.calibration import ece_noise_floor, expected_calibration_error


@dataclass(frozen=True)
class DecayThresholds:
    tolerance: float = 0.02  # AUC points a champion may trail a rival or its own promotion figure
    max_ece: float = 0.1
    min_outcomes: int = 50  # fewer: the label-free estimate only
    bootstrap: int = 200
    alpha: float = 0.05


@dataclass(frozen=True)
class Estimate:
    """CBPE-style label-free estimate from calibrated probabilities."""

    rows: int
    expected_auc: float
    expected_positive_rate: float

    def words(self) -> str:
        return (
            f"label-free estimate over {self.rows} scored records: AUC {self.expected_auc:.3f}, "
            f"positive rate {self.expected_positive_rate:.1%} (if the scores are calibrated)"
        )


def estimated_performance(p: np.ndarray) -> Estimate:
    """Expected ROC AUC and positive rate if ``p`` were the true probabilities (CBPE).

    AUC = P(score_i > score_j | i positive, j negative); with outcomes drawn from ``p`` its expectation is
    sum_{i,j: s_i > s_j} p_i (1 - p_j) / sum_{i != j} p_i (1 - p_j), ties counted one half.
    """
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    n = len(p)
    if n < 2:
        return Estimate(n, float("nan"), float(p.mean()) if n else float("nan"))
    order = np.argsort(p, kind="stable")
    ps = p[order]
    q = 1.0 - ps
    # For tied scores, count pairs inside a tie as half.
    _, starts, counts = np.unique(ps, return_index=True, return_counts=True)
    q_before = np.concatenate([[0.0], np.cumsum(q)])[starts]  # negatives' mass strictly below each group
    group_q = np.add.reduceat(q, starts)
    group_p = np.add.reduceat(ps, starts)
    within = np.add.reduceat(ps * q, starts)  # self-pairs to remove from a tie's half
    numerator = float(np.sum(group_p * q_before) + 0.5 * np.sum(group_p * group_q - within))
    denominator = float(ps.sum() * q.sum() - np.sum(ps * q))
    auc = numerator / denominator if denominator > 0 else float("nan")
    return Estimate(n, auc, float(p.mean()))


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from scipy.stats import rankdata

    pos = y == 1
    n1, n0 = int(pos.sum()), int((~pos).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(p)
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _paired_upper_bounds(y, p, rivals: dict[str, np.ndarray], targets: dict[str, float], t, seed=0):
    """95% upper bound of (champion AUC - rival AUC) per rival and of (champion AUC - target) per target."""
    rng = np.random.default_rng(seed)
    n = len(y)
    gaps = {name: [] for name in [*rivals, *targets]}
    for _ in range(t.bootstrap):
        idx = rng.integers(0, n, n)
        yb = y[idx]
        if yb.min() == yb.max():
            continue
        champion = _auc(yb, p[idx])
        for name, q in rivals.items():
            gaps[name].append(champion - _auc(yb, q[idx]))
        for name, value in targets.items():
            gaps[name].append(champion - value)
    return {name: float(np.quantile(v, 1 - t.alpha / 2)) if v else float("nan") for name, v in gaps.items()}


@dataclass(frozen=True)
class ScoreDecay:
    model: str
    version: str
    outcomes: int
    positives: int
    auc: float | None
    ece: float | None
    ece_floor: float | None
    promoted_auc: float | None
    rival_aucs: dict[str, float]
    estimate: Estimate | None
    failed: bool
    reasons: tuple[str, ...]
    words: str

    def as_dict(self) -> dict:
        return asdict(self)


def judge_scorer(
    model: str,
    version: str,
    y: np.ndarray,
    p: np.ndarray,
    *,
    promoted_auc: float | None = None,
    rivals: dict[str, np.ndarray] | None = None,
    unlabelled: np.ndarray | None = None,
    thresholds: DecayThresholds | None = None,
) -> ScoreDecay:
    """Re-judge a scorer on outcomes after its promotion (``y`` 0/1, ``p`` its probabilities then).

    ``rivals``: other scorers' probabilities on the same outcomes (challenger, logistic, heuristic).
    ``unlabelled``: its probabilities on records still open, for the label-free estimate.
    """
    t = thresholds or DecayThresholds()
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=np.float64)
    if len(y) != len(p):
        raise ValueError(f"{model}: {len(y)} outcomes but {len(p)} scores")
    rivals = {k: np.asarray(v, dtype=np.float64) for k, v in (rivals or {}).items()}
    for name, q in rivals.items():
        if len(q) != len(y):
            raise ValueError(f"{model}: rival {name!r} has {len(q)} scores for {len(y)} outcomes")
    basis = unlabelled if unlabelled is not None and len(unlabelled) else p
    estimate = estimated_performance(basis) if len(basis) else None
    label = f"{model} v{version}"
    positives = int(y.sum())
    if len(y) < t.min_outcomes or positives == 0 or positives == len(y):
        why = (
            f"{len(y)} outcomes since promotion ({positives} positive): too few to judge "
            f"(need {t.min_outcomes}, of both kinds)"
        )
        words = f"{label}: {why}"
        if estimate is not None and estimate.rows:
            words += f"; {estimate.words()}"
            if promoted_auc is not None and estimate.expected_auc < promoted_auc - t.tolerance:
                words += f", below the {promoted_auc:.3f} it was promoted on"
        return ScoreDecay(
            model, version, len(y), positives, None, None, None, promoted_auc, {}, estimate, False, (), words
        )
    auc = _auc(y, p)
    rival_aucs = {name: _auc(y, q) for name, q in rivals.items()}
    targets = {"promotion": promoted_auc - t.tolerance} if promoted_auc is not None else {}
    upper = _paired_upper_bounds(y, p, rivals, targets, t)
    reasons = []
    for name, value in rival_aucs.items():
        if auc < value - t.tolerance and upper[name] < 0:
            reasons.append(f"AUC {auc:.3f} is below the {name}'s {value:.3f}")
    if promoted_auc is not None and upper["promotion"] < 0:
        reasons.append(f"AUC {auc:.3f} fell from the {promoted_auc:.3f} it was promoted on")
    ece = expected_calibration_error(y, p)
    floor = ece_noise_floor(p)
    if ece > max(t.max_ece, floor):
        reasons.append(f"calibration error {ece:.3f} exceeds {max(t.max_ece, floor):.3f}")
    observed = float(y.mean())
    detail = (
        f"{len(y)} outcomes since promotion ({observed:.0%} positive, {p.mean():.0%} predicted): AUC {auc:.3f}"
        + (f" (promoted on {promoted_auc:.3f})" if promoted_auc is not None else "")
        + "".join(f", {name} {value:.3f}" for name, value in rival_aucs.items())
        + f", calibration error {ece:.3f}"
    )
    verdict = "DECAYED: " + "; ".join(reasons) if reasons else "holds"
    words = f"{label} {verdict}. {detail}"
    if estimate is not None and unlabelled is not None:
        words += f"; {estimate.words()}"
    return ScoreDecay(
        model,
        version,
        len(y),
        positives,
        auc,
        float(ece),
        float(floor),
        promoted_auc,
        rival_aucs,
        estimate,
        bool(reasons),
        tuple(reasons),
        words,
    )


@dataclass(frozen=True)
class RewardDecay:
    policy: str
    version: str
    decisions: int
    mean_reward: float | None
    baseline_reward: float | None
    promised_reward: float | None
    failed: bool
    reasons: tuple[str, ...] = field(default_factory=tuple)
    words: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def judge_policy(
    policy: str,
    version: str,
    rewards: np.ndarray,
    *,
    baseline_rewards: np.ndarray | None = None,
    promised: float | None = None,
    tolerance: float = 0.0,
    min_decisions: int = 50,
    alpha: float = 0.05,
) -> RewardDecay:
    """Mean reward of the champion policy's decisions since promotion vs a baseline's and its promise."""
    from scipy import stats

    r = np.asarray(rewards, dtype=np.float64)
    label = f"{policy} v{version}"
    if len(r) < min_decisions:
        return RewardDecay(
            policy,
            version,
            len(r),
            float(r.mean()) if len(r) else None,
            None,
            promised,
            False,
            (),
            f"{label}: {len(r)} rewarded decisions since promotion, too few to judge (need {min_decisions})",
        )
    mean = float(r.mean())
    reasons = []
    base_mean = None
    if baseline_rewards is not None and len(baseline_rewards) >= 2:
        b = np.asarray(baseline_rewards, dtype=np.float64)
        base_mean = float(b.mean())
        test = stats.ttest_ind(r, b, equal_var=False, alternative="less")
        if mean < base_mean - tolerance and test.pvalue < alpha:
            reasons.append(f"mean reward {mean:.3f} is below the baseline's {base_mean:.3f}")
    if promised is not None:
        test = stats.ttest_1samp(r, promised - tolerance, alternative="less")
        if test.pvalue < alpha:
            reasons.append(f"mean reward {mean:.3f} is below the {promised:.3f} it promised at promotion")
    verdict = "DECAYED: " + "; ".join(reasons) if reasons else "holds"
    words = f"{label} {verdict}. {len(r)} decisions since promotion, mean reward {mean:.3f}"
    if base_mean is not None:
        words += f" (baseline {base_mean:.3f})"
    return RewardDecay(
        policy, version, len(r), mean, base_mean, promised, bool(reasons), tuple(reasons), words
    )
