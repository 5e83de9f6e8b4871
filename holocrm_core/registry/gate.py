"""The one gate: is this better than what would be served instead? Pure figures in, one verdict out.

A training round offers, judged on the newest time fold by models that never saw it: the selected
candidate, the plain logistic regression, the weighted heuristic and (when there is one) the current
champion, the champion only on outcomes it never saw (``ChampionEvidence``). The gate walks them in order
and serves the first that passes every check:

1. the selected candidate: calibrated (ECE at most ``MAX_GATE_ECE``, or the chance level of ECE on the
   slice when larger), probabilities inside (0, 1), not blocked by the adversarial check, AUC above the
   heuristic's, not below the plain logistic regression's (``LOGISTIC_TOLERANCE``), and not below a sound
   champion's on the rows neither has seen (``CHAMPION_TOLERANCE``);
2. when it fails only on calibration (a shift between the training window and the newest slice), its
   probabilities are recalibrated on the newest slice (a Platt map, its ECE measured cross-fitted: each
   half of the slice mapped by the fit on the other half) and the checks run again;
3. when it fails (trails the plain logistic regression, say), the logistic regression is the candidate
   (same checks, recalibration included);
4. the current champion, when it still passes its own checks on outcomes it never saw;
5. the weighted heuristic, only when it is not worse on the gate's own metrics (AUC within the tolerance,
   ECE no higher) than the best learned model that failed; otherwise that model is served and the line
   says which check it failed and why nothing else was better.

An adversarial block (the training snapshots do not look like the open records) is not a figure a
fallback can be compared on: no newly trained model is served then.

A promotion hold: when the outcomes after the champion's training cutoff drifted from the rows it learned
from (``monitoring.promotion_drift``: at least one input column past the blocking PSI and the data set as a
whole moved), a champion that still passes its own checks on those outcomes keeps the alias whatever the
candidate scores, and the line says which columns moved: the newest slice comes from a world the gate's
validation cannot vouch for, so a person looks first. A champion that fails on them is demoted as usual.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LOGISTIC_TOLERANCE = 0.005  # the candidate may trail the plain logistic regression by this much AUC (noise)
CHAMPION_TOLERANCE = 0.005  # and the champion, on rows neither has seen
MAX_GATE_ECE = 0.1
MIN_UNSEEN = 30  # fewer unseen outcomes than this (or one kind only): the champion's recipe is refitted

CANDIDATE, LOGISTIC, CHAMPION_ROLE, HEURISTIC = "candidate", "logistic", "champion", "heuristic"


def _nan(value) -> bool:
    return value is None or bool(np.isnan(value))


@dataclass
class Judged:
    """One model that could be served, with its figures on the rows it was judged on."""

    name: str  # "blend", "logistic", "champion v3", "heuristic"
    role: str  # candidate | logistic | champion | heuristic
    auc: float
    ece: float
    allowed_ece: float
    inside: bool = True
    recalibrated: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def calibrated(self) -> bool:
        return not _nan(self.ece) and self.ece <= self.allowed_ece


def judge_scores(name: str, role: str, y: np.ndarray, p: np.ndarray) -> Judged:
    from holocrm_core.scoring.calibration import ece_noise_floor, quality

    y, p = np.asarray(y).astype(int), np.asarray(p, dtype=float)
    q = quality(y, p) if len(y) else {"auc": float("nan"), "ece": float("nan")}
    allowed = max(MAX_GATE_ECE, ece_noise_floor(p)) if len(p) else MAX_GATE_ECE
    return Judged(name, role, q["auc"], q["ece"], allowed, bool(((p > 0) & (p < 1)).all()))


def cross_fitted_platt(logits: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """Probabilities of a Platt map fitted on the newest slice, each half mapped by the other half's fit
    (halves by record, so one record's snapshots stay together): an honest ECE for "recalibrate here"."""
    from holocrm_core.scoring.calibration import PlattScaler

    logits, y = np.asarray(logits, dtype=float), np.asarray(y).astype(int)
    if groups is None:
        groups = np.arange(len(y))
    _, codes = np.unique(groups, return_inverse=True)
    half = (codes % 2).astype(bool)
    out = np.empty(len(y))
    for fit_on in (half, ~half):
        if len(np.unique(y[fit_on])) < 2:
            return PlattScaler().fit(logits, y)(logits)
        out[~fit_on] = PlattScaler().fit(logits[fit_on], y[fit_on])(logits[~fit_on])
    return out


@dataclass
class ChampionEvidence:
    """The current champion against the candidate, on outcomes neither has seen."""

    version: str
    how: str  # "N outcomes after its training cutoff ..." or "its recipe (x) refit on the candidate's folds"
    y: np.ndarray
    champion_scores: np.ndarray | None  # None: it could not score these rows
    candidate_scores: np.ndarray
    logistic_scores: np.ndarray | None = None
    heuristic_scores: np.ndarray | None = None
    error: str | None = None
    drift: str | None = None  # the promotion-drift summary when the newest outcomes moved (a hold)

    def judged(self) -> Judged:
        if self.champion_scores is None:
            out = Judged(f"champion v{self.version}", CHAMPION_ROLE, float("nan"), float("nan"), MAX_GATE_ECE)
            out.problems.append(f"champion v{self.version} could not score the newest outcomes: {self.error}")
            return out
        out = judge_scores(f"champion v{self.version}", CHAMPION_ROLE, self.y, self.champion_scores)
        if self.heuristic_scores is not None:
            h = judge_scores(HEURISTIC, HEURISTIC, self.y, self.heuristic_scores)
            if not _nan(h.auc) and not out.auc > h.auc:
                out.problems.append(f"AUC {out.auc:.3f} no longer beats the heuristic ({h.auc:.3f})")
        if not out.calibrated:
            out.problems.append(f"calibration error {out.ece:.3f} above {out.allowed_ece:.3f}")
        if not out.inside:
            out.problems.append("some probabilities are exactly 0 or 1")
        return out

    def auc_of(self, scores: np.ndarray | None) -> float:
        if scores is None:
            return float("nan")
        return judge_scores("", "", self.y, scores).auc


@dataclass(frozen=True)
class GateEvidence:
    """What the gate needs, all on the newest fold (scores of fold models that never saw it)."""

    y: np.ndarray
    candidate: str  # the selected strategy
    candidate_scores: np.ndarray  # as served (with the calibration the final model gets)
    candidate_logits: np.ndarray | None  # raw log-odds, to recalibrate on the newest slice
    logistic_scores: np.ndarray | None
    logistic_logits: np.ndarray | None
    heuristic_scores: np.ndarray | None
    groups: np.ndarray | None = None  # record ids (halves for the cross-fitted recalibration)
    adversarial_block: str | None = None  # the guard's message when it blocks
    champion: ChampionEvidence | None = None


@dataclass(frozen=True)
class Verdict:
    """The gate's one answer: what is served (role + name), whether it passed, and why, in one line."""

    served_role: str  # candidate | logistic | champion | heuristic
    served_name: str
    passed: bool  # the served scorer passed every check (False: heuristic or a learned model despite a fail)
    recalibrate: bool  # the served newly trained model gets a Platt map fitted on the newest slice
    reason: str
    candidate_passed: bool
    checks: dict[str, bool] = field(default_factory=dict)
    figures: dict[str, float] = field(default_factory=dict)
    champion_demoted: bool = False

    @property
    def serves_new_model(self) -> bool:
        return self.served_role in (CANDIDATE, LOGISTIC)

    def line(self, model_name: str, version: str | None = None) -> str:
        """The verdict line every door shows: "<model>: serving <what> — <why>"."""
        if self.served_role == HEURISTIC:
            what = "the weighted heuristic"
        elif self.served_role == CHAMPION_ROLE:
            what = f"{self.served_name} (kept)"
        else:
            what = f"v{version} ({self.served_name})" if version else self.served_name
        state = "gate passed" if self.passed else "gate failed"
        return f"{model_name}: serving {what}, {state}: {self.reason}".replace("\n", " ")


def _problems(
    j: Judged,
    heuristic: Judged | None,
    logistic: Judged | None,
    champion: Judged | None,
    champion_auc_of_this: float,
    adversarial: str | None,
) -> dict[str, bool]:
    """Fill ``j.problems``; return the checks by name."""
    checks = {}
    if _nan(j.auc):
        j.problems.append("the newest fold has only one kind of outcome; nothing to compare on")
    checks["calibrated"] = j.calibrated
    if not checks["calibrated"]:
        j.problems.append(f"calibration error {j.ece:.3f} above {j.allowed_ece:.3f}")
    checks["inside_0_1"] = j.inside
    if not j.inside:
        j.problems.append("some probabilities are exactly 0 or 1")
    checks["adversarial"] = adversarial is None
    if adversarial is not None:
        j.problems.append(adversarial)
    h_auc = heuristic.auc if heuristic is not None else float("nan")
    checks["beats_heuristic"] = bool(_nan(h_auc) or j.auc > h_auc)
    if not checks["beats_heuristic"]:
        j.problems.append(f"AUC {j.auc:.3f} does not beat the weighted heuristic ({h_auc:.3f})")
    l_auc = logistic.auc if logistic is not None and j.role != LOGISTIC else float("nan")
    checks["beats_logistic"] = bool(_nan(l_auc) or j.auc >= l_auc - LOGISTIC_TOLERANCE)
    if not checks["beats_logistic"]:
        j.problems.append(f"AUC {j.auc:.3f} trails the plain logistic regression ({l_auc:.3f})")
    sound = champion is not None and champion.passed
    c_auc = champion.auc if sound else float("nan")
    checks["beats_champion"] = bool(
        _nan(c_auc) or _nan(champion_auc_of_this) or champion_auc_of_this >= c_auc - CHAMPION_TOLERANCE
    )
    if not checks["beats_champion"]:
        j.problems.append(
            f"AUC {champion_auc_of_this:.3f} does not beat {champion.name} ({c_auc:.3f}) on outcomes "
            "neither has seen"
        )
    return checks


def _recalibrated(j: Judged, logits, y, groups) -> Judged | None:
    if logits is None:
        return None
    p = cross_fitted_platt(logits, y, groups)
    out = judge_scores(j.name, j.role, y, p)
    out.auc, out.recalibrated = j.auc, True  # a monotone map: the ranking is the model's own
    return out


def judge(e: GateEvidence) -> Verdict:
    """The verdict of one training round (see the module docstring for the order)."""
    y = np.asarray(e.y).astype(int)
    heuristic = (
        judge_scores(HEURISTIC, HEURISTIC, y, e.heuristic_scores) if e.heuristic_scores is not None else None
    )
    logistic = (
        judge_scores(LOGISTIC, LOGISTIC, y, e.logistic_scores) if e.logistic_scores is not None else None
    )
    champ = e.champion.judged() if e.champion is not None else None
    figures = {"heuristic_auc": heuristic.auc if heuristic else float("nan")}
    if logistic is not None:
        figures |= {"logistic_auc": logistic.auc, "logistic_ece": logistic.ece}
    if champ is not None:
        figures |= {"champion_auc": champ.auc, "champion_ece": champ.ece}
        figures["champion_rows"] = float(len(e.champion.y))

    def on_champion_rows(role: str) -> float:
        if e.champion is None:
            return float("nan")
        return e.champion.auc_of(
            e.champion.candidate_scores if role == CANDIDATE else e.champion.logistic_scores
        )

    def attempt(j: Judged, logits) -> tuple[Judged, dict[str, bool]]:
        checks = _problems(j, heuristic, logistic, champ, on_champion_rows(j.role), e.adversarial_block)
        if not checks["calibrated"] and e.adversarial_block is None:
            again = _recalibrated(j, logits, y, e.groups)
            if again is not None:
                again_checks = _problems(
                    again, heuristic, logistic, champ, on_champion_rows(j.role), e.adversarial_block
                )
                if again_checks["calibrated"]:
                    return again, again_checks
        return j, checks

    if e.candidate == HEURISTIC:
        # The selection preferred the heuristic (lowest log loss): the plain logistic regression is the
        # learned model that would replace it, served only by the same rules.
        if e.logistic_scores is None:
            return Verdict(HEURISTIC, HEURISTIC, False, False, "the selection preferred the heuristic", False)
        e = GateEvidence(
            **{
                **e.__dict__,
                "candidate": LOGISTIC,
                "candidate_scores": e.logistic_scores,
                "candidate_logits": e.logistic_logits,
            }
        )
    name = e.candidate
    role = LOGISTIC if name == LOGISTIC else CANDIDATE
    cand, checks = attempt(judge_scores(name, role, y, e.candidate_scores), e.candidate_logits)
    figures |= {"candidate_auc": cand.auc, "candidate_ece": cand.ece}
    demoted = champ is not None and not champ.passed

    def verdict(served: Judged, passed: bool, reason: str) -> Verdict:
        return Verdict(
            served.role,
            served.name,
            passed,
            served.recalibrated and served.role in (CANDIDATE, LOGISTIC),
            reason,
            cand.passed,
            checks,
            figures,
            demoted,
        )

    def why(j: Judged) -> str:
        recal = " (recalibrated on the newest slice)" if j.recalibrated else ""
        against = []
        if heuristic is not None:
            against.append(f"heuristic {heuristic.auc:.3f}")
        if logistic is not None and j.role != LOGISTIC:
            against.append(f"logistic regression {logistic.auc:.3f}")
        if champ is not None:
            against.append(f"{champ.name} {champ.auc:.3f} on {e.champion.how}")
        return f"{j.name} AUC {j.auc:.3f}, ECE {j.ece:.3f}{recal} on the newest fold; against " + (
            ", ".join(against) or "nothing"
        )

    if champ is not None and champ.passed and e.champion.drift:
        return verdict(
            champ,
            True,
            f"promotion held: the outcomes after {champ.name}'s training cutoff drifted from the rows it "
            f"learned from ({e.champion.drift}); it still passes (AUC {champ.auc:.3f}, ECE {champ.ece:.3f} on "
            f"{e.champion.how}), {name} {'passed' if cand.passed else 'failed'}; a person looks first",
        )
    if cand.passed:
        return verdict(cand, True, why(cand))
    failed = [cand]
    if role == CANDIDATE and logistic is not None:  # the plain baseline, when it passes, is the next best
        plain, _ = attempt(judge_scores(LOGISTIC, LOGISTIC, y, e.logistic_scores), e.logistic_logits)
        if plain.passed:
            return verdict(plain, True, f"{name} failed ({'; '.join(cand.problems)}); " + why(plain))
        failed.append(plain)
    if champ is not None and champ.passed:
        return verdict(
            champ,
            True,
            f"{name} failed ({'; '.join(cand.problems)}); {champ.name} still passes: AUC {champ.auc:.3f}, "
            f"ECE {champ.ece:.3f} on {e.champion.how}",
        )
    best = max(failed, key=lambda j: -np.inf if _nan(j.auc) else j.auc)
    failures = "; ".join(f"{j.name}: {'; '.join(j.problems)}" for j in failed)
    if e.adversarial_block is not None or heuristic is None or _nan(best.auc):
        return verdict(
            heuristic or Judged(HEURISTIC, HEURISTIC, float("nan"), float("nan"), MAX_GATE_ECE),
            False,
            f"no learned model passes ({failures})",
        )
    not_worse = heuristic.auc >= best.auc - LOGISTIC_TOLERANCE and (
        heuristic.ece <= max(best.ece, best.allowed_ece) or _nan(best.ece)
    )
    if not_worse:
        return verdict(
            heuristic,
            False,
            f"no learned model passes ({failures}); the heuristic is not worse "
            f"(AUC {heuristic.auc:.3f}, ECE {heuristic.ece:.3f})",
        )
    return verdict(
        best,
        False,
        f"served although it fails ({failures}): the heuristic is worse on the gate's own figures "
        f"(AUC {heuristic.auc:.3f} vs {best.auc:.3f}, ECE {heuristic.ece:.3f} vs {best.ece:.3f})",
    )
