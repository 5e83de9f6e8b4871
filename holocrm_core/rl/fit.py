"""The simulator's response model, fitted from the action log, and its check against a known truth.

One logistic regression per action on one-hot seniority, industry, lifecycle stage, size band and
days-since-last-touch buckets (the plain model a data scientist tries first; additive log-odds are also
what a response to a touch looks like in marketing data). Uncertainty comes from a bootstrap: each member
is fitted on a resample of the logged contacts' episodes, and the simulator draws one member per episode.
Nothing here reads the generator's truth; ``calibration_table`` compares with it afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from holocrm_core.rl.world import (
    ACTIONS,
    LIFECYCLES,
    MAX_INDUSTRIES,
    SENIORITIES,
    SIZE_BANDS,
    ResponseTable,
    check_industries,
    encode_contexts,
    fit_industries,
)

DAY_BUCKETS = (0, 1, 2, 3, 4, 5, 7, 10, 14, 21, 30, 45, 60, 90)  # lower edges, in days


def design(contexts: pl.DataFrame, industries: tuple[str, ...]) -> np.ndarray:
    """One-hot design matrix of the response contexts (dense; about 45 columns), industries in the slots of
    ``industries`` (the rest in other / unknown)."""
    c = encode_contexts(contexts, industries)
    bucket = np.searchsorted(np.asarray(DAY_BUCKETS), c["days"], side="right") - 1
    blocks = [
        (c["seniority"], len(SENIORITIES) + 1),
        (c["industry"], MAX_INDUSTRIES + 1),
        (c["lifecycle"], len(LIFECYCLES)),
        (c["size_band"], len(SIZE_BANDS) + 1),
        (bucket, len(DAY_BUCKETS)),
    ]
    n = contexts.height
    out = np.zeros((n, sum(w for _, w in blocks)), np.float32)
    offset = 0
    for code, width in blocks:
        out[np.arange(n), offset + code] = 1.0
        offset += width
    return out


@dataclass
class FittedResponse:
    """Bootstrap ensemble of per-action logistic regressions: ``members[m][a]`` is a fitted estimator, on
    the design of the industry vocabulary ``industries``."""

    members: list[list]
    rows: int
    industries: tuple[str, ...] = ()

    def predict_members(self, contexts: pl.DataFrame) -> list[np.ndarray]:
        x = design(contexts, self.industries)
        return [
            np.stack([model.predict_proba(x)[:, 1] for model in member], axis=1) for member in self.members
        ]

    def predict(self, contexts: pl.DataFrame) -> np.ndarray:
        return np.mean(self.predict_members(contexts), axis=0)

    def table(self) -> ResponseTable:
        return ResponseTable.from_model(self.predict_members, "fitted simulator", self.industries)


MIN_OUTCOMES = 20  # responses and non-responses per action below which no simulator is fitted


class NotEnoughOutreach(ValueError):
    """The logged outreach is too thin to fit a response model from (the message says what is missing)."""


def check_enough_outreach(log: pl.DataFrame) -> None:
    counts = {a: (0, 0) for a in ACTIONS}
    if log.height:
        grouped = log.group_by("action").agg(pl.col("responded").cast(pl.Int64).sum().alias("yes"), pl.len())
        counts |= {
            r["action"]: (int(r["yes"]), int(r["len"] - r["yes"])) for r in grouped.iter_rows(named=True)
        }
    thin = [
        f"{a} ({yes} responses, {no} without)"
        for a, (yes, no) in counts.items()
        if min(yes, no) < MIN_OUTCOMES
    ]
    if thin:
        raise NotEnoughOutreach(
            f"not enough logged outreach to fit the simulator: need {MIN_OUTCOMES} responses and "
            f"{MIN_OUTCOMES} non-responses per action; " + ", ".join(thin)
        )


def fit_response_model(
    log: pl.DataFrame,
    members: int = 5,
    seed: int = 0,
    c: float = 1.0,
    industries: tuple[str, ...] | None = None,
) -> FittedResponse:
    """Fit the response model from ``log`` (context columns, ``action``, ``responded``) on the industry
    vocabulary ``industries`` (the export's; None: fitted from the log's own industry column)."""
    from sklearn.linear_model import LogisticRegression

    check_enough_outreach(log)
    industries = fit_industries(log["industry"]) if industries is None else check_industries(industries)
    x = design(log, industries)
    y = log["responded"].cast(pl.Int8).to_numpy()
    action = log["action"].to_numpy()
    group = log["episode"].to_numpy() if "episode" in log.columns else np.arange(log.height)
    groups = np.unique(group)
    rng = np.random.default_rng(seed)
    fitted = []
    for m in range(members):
        # Member 0 sees the whole log; the others a bootstrap resample of whole episodes.
        if m == 0:
            weight = np.ones(log.height)
        else:
            draws = np.bincount(
                np.searchsorted(groups, rng.choice(groups, len(groups))), minlength=len(groups)
            )
            weight = draws[np.searchsorted(groups, group)].astype(np.float64)
        member = []
        for name in ACTIONS:
            rows = (action == name) & (weight > 0)
            model = LogisticRegression(C=c, max_iter=500)
            model.fit(x[rows], y[rows], sample_weight=weight[rows])
            member.append(model)
        fitted.append(member)
    return FittedResponse(fitted, log.height, industries)


SEGMENTS = ("seniority", "lifecycle_status", "size_band", "industry")


def calibration_table(fitted: ResponseTable, truth: ResponseTable, contexts: pl.DataFrame) -> pl.DataFrame:
    """Mean response rate per action and segment value, fitted vs true, over ``contexts``' distribution."""
    pf, pt = fitted.mean_frame(contexts), truth.mean_frame(contexts)
    rows = []
    for segment in SEGMENTS:
        values = contexts[segment].fill_null("(unknown)").to_numpy()
        for value in np.unique(values):
            mask = values == value
            for i, action in enumerate(ACTIONS):
                rows.append(
                    {
                        "segment": segment,
                        "value": str(value),
                        "action": action,
                        "contexts": int(mask.sum()),
                        "fitted": float(pf[mask, i].mean()),
                        "true": float(pt[mask, i].mean()),
                    }
                )
    return pl.DataFrame(rows).with_columns((pl.col("fitted") - pl.col("true")).abs().alias("abs_error"))


def table_error(fitted: ResponseTable, truth: ResponseTable, contexts: pl.DataFrame) -> float:
    """Mean absolute error of the response probabilities over ``contexts`` and all actions."""
    return float(np.abs(fitted.mean_frame(contexts) - truth.mean_frame(contexts)).mean())
