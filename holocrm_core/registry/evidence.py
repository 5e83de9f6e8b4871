"""What the gate is shown: a training round's newest-fold scores, and the champion on rows it never saw.

The champion is never scored on rows it learned from. A version records the newest outcome it trained on
(``holocrm.trained_until``); the comparison uses the newest-fold outcomes after that time (the candidate's
fold model never saw them either). With too few of those (a rerun on the same export, say), the
champion's recipe (``holocrm.recipe``) is what is compared: its scores from the same rolling folds the
candidate was selected on (refitted on the candidate's training folds when the selection did not run it).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

from holocrm_core.registry.gate import MIN_UNSEEN, ChampionEvidence, GateEvidence
from holocrm_core.registry.store import RECIPE_TAG, TRAINED_UNTIL_TAG, load_champion


def trained_until(rows: pl.DataFrame) -> str | None:
    """The newest outcome time in ``rows`` (ISO), recorded with a version trained on them."""
    if "outcome_at" not in rows.columns or not rows.height:
        return None
    newest = rows["outcome_at"].max()
    return newest.isoformat() if newest is not None else None


def _candidate(outcome, name: str):
    selection = outcome.selection
    if selection is None or name not in selection.candidates:
        return None
    result = selection.candidates[name]
    return result if result.newest_logits is not None and not result.error else None


def _fold_scores(outcome, name: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(scores as served, raw log-odds) of candidate ``name`` on the newest fold; refitted when needed."""
    result = _candidate(outcome, name)
    if result is not None:
        return result.served_newest_scores, result.newest_logits
    if name == outcome.strategy and outcome.validation_scores is not None:
        from holocrm_core.scoring.calibration import logit

        return np.asarray(outcome.validation_scores), logit(np.asarray(outcome.validation_scores))
    from holocrm_core.scoring.selection import make_candidate

    train = outcome.train
    y = train["label"].to_numpy().astype(int)
    if not len(train) or len(np.unique(y)) < 2:
        return None, None
    model = make_candidate(name, **outcome.params).fit(train, y)
    z = model.decision_logit(outcome.validation)
    return 1.0 / (1.0 + np.exp(-z)), z


def _groups(validation: pl.DataFrame) -> np.ndarray | None:
    return validation["entity_id"].to_numpy() if "entity_id" in validation.columns else None


def drift_since(outcome, cutoff: datetime) -> str | None:
    """The promotion-drift summary when the decided rows after ``cutoff`` moved from those before it (at
    least one input column blocks and the data set as a whole drifted), else None. The rows are the training
    round's own outcome rows (training folds and newest fold), so both sides are decided records."""
    from holocrm_core.monitoring import promotion_drift

    frames = [f for f in (outcome.train, outcome.validation) if f is not None and "outcome_at" in f.columns]
    if not frames:
        return None
    rows = pl.concat(frames, how="diagonal_relaxed")
    after = rows["outcome_at"] > cutoff
    before_rows, after_rows = rows.filter(~after.fill_null(True)), rows.filter(after.fill_null(False))
    if min(before_rows.height, after_rows.height) < MIN_UNSEEN:
        return None
    report = promotion_drift(before_rows, after_rows)
    return report.summary() if report.blocking and report.dataset_drift else None


def champion_evidence(outcome, model_name: str, cand_scores, lr_scores) -> ChampionEvidence | None:
    """The current champion (if any) against this round's candidate, on outcomes neither has seen."""
    from holocrm_core.scoring import unwrap

    champion = load_champion(model_name)
    if champion is None:
        return None
    model, info = champion
    tags = info.tags or {}
    valid = outcome.validation
    y = outcome.y_validation
    heur = outcome.heuristic_validation_scores
    cutoff = tags.get(TRAINED_UNTIL_TAG)
    version = str(info.version)
    if cutoff and "outcome_at" in valid.columns:
        mask = (valid["outcome_at"] > datetime.fromisoformat(cutoff)).fill_null(False).to_numpy()
        if mask.sum() >= MIN_UNSEEN and len(np.unique(y[mask])) == 2:
            how = f"{int(mask.sum())} newest outcomes after its training cutoff {cutoff[:10]}"
            try:
                scores, error = unwrap(model).predict_proba(valid.filter(pl.Series(mask)))[:, 1], None
            except Exception as exc:  # noqa: BLE001 - a champion that cannot score today's rows loses
                scores, error = None, f"{type(exc).__name__}: {exc}"[:300]
            return ChampionEvidence(
                version,
                how,
                y[mask],
                scores,
                np.asarray(cand_scores)[mask],
                None if lr_scores is None else np.asarray(lr_scores)[mask],
                None if heur is None else np.asarray(heur)[mask],
                error,
                drift_since(outcome, datetime.fromisoformat(cutoff)),
            )
    recipe = tags.get(RECIPE_TAG) or tags.get("strategy") or outcome.strategy
    try:
        scores, _ = _fold_scores(outcome, recipe)
        error = None if scores is not None else "its recipe could not be refitted"
    except Exception as exc:  # noqa: BLE001 - a recipe that cannot fit these rows loses
        scores, error = None, f"{type(exc).__name__}: {exc}"[:300]
    return ChampionEvidence(
        version,
        f"the newest fold, its recipe ({recipe}) refit on the candidate's training folds",
        y,
        scores,
        np.asarray(cand_scores),
        None if lr_scores is None else np.asarray(lr_scores),
        None if heur is None else np.asarray(heur),
        error,
    )


def gate_evidence(outcome, model_name: str | None, with_champion: bool = True) -> GateEvidence:
    """Everything the gate compares, from a ``TrainingOutcome`` (and the registry's champion)."""
    cand_scores, cand_logits = _fold_scores(outcome, outcome.strategy)
    lr_scores, lr_logits = _fold_scores(outcome, "logistic")
    guard = outcome.guard
    champion = (
        champion_evidence(outcome, model_name, cand_scores, lr_scores)
        if with_champion and model_name
        else None
    )
    return GateEvidence(
        y=outcome.y_validation,
        candidate=outcome.strategy,
        candidate_scores=cand_scores,
        candidate_logits=cand_logits,
        logistic_scores=lr_scores,
        logistic_logits=lr_logits,
        heuristic_scores=outcome.heuristic_validation_scores,
        groups=_groups(outcome.validation),
        adversarial_block=guard.message.replace("\n", " ") if guard is not None and guard.blocks else None,
        champion=champion,
    )
