"""Next-best-action for contacts: the context of every contact, who is decided, the decision and its reasons.

``contact_contexts`` builds the decision context of every contact as of the newest activity in the warehouse
(the export's attributes and custom fields, recency, touches, the current lead score and band);
``decided_reason`` says once, for every door, which contacts get no recommendation and why. ``recommend``
decides for a batch (vectorised): for contextual Thompson sampling the draw is seeded by the contact and the
policy state (``decision_draws``), so the CLI, the API and the pipeline give the same answer, and the
propensity is that draw's win probability; other policies go through the convergence engine. Per contact:
the action, its propensity (logged with the outcome for off-policy evaluation), the expected success rate
and its uncertainty, the outcomes it was learned from, a priority, the context features behind it and the
reasons in a salesperson's words (``reason_in_words``), and, when asked, the posterior of every action.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import numpy as np
import polars as pl
from scipy.special import ndtri

from holocrm_core.decisions.action_log import CONTEXT_FROM_WAREHOUSE, contact_attributes, positions
from holocrm_core.decisions.actions import OTHER, ContextEncoder, Contexts, touch_features
from holocrm_core.decisions.convergence import Strategy
from holocrm_core.decisions.policies import ContextualThompson, gaussian_win_probabilities
from holocrm_core.schema import CUSTOM_PREFIX

PRIORITY_THRESHOLDS = (0.25, 0.12)  # expected success rate: high at or above the first, medium the second
MIN_PROPENSITY = 1e-4
OPEN_STATUSES = ("lead", "qualified", "customer")


def contact_contexts(
    contacts: pl.DataFrame,
    companies: pl.DataFrame | None,
    activities: pl.DataFrame | None,
    scored_leads: pl.DataFrame | None = None,
    as_of: datetime | None = None,
) -> pl.DataFrame:
    """contact_id + decision context of every contact (decided ones too), as of ``as_of`` (default: the
    newest activity): the export's attributes and custom fields, recency, touches, lead score and band."""
    people = contact_attributes(contacts, companies)
    if as_of is None:
        as_of = activities["occurred_at"].max() if activities is not None and activities.height else None
    n = people.height
    if as_of is not None and activities is not None and activities.height:
        acts = activities.select("contact_id", pl.col("occurred_at").dt.epoch("s").alias("t")).drop_nulls()
        owner = positions(acts["contact_id"], people["contact_id"])
        keep = owner >= 0
        at = int(as_of.timestamp()) + 1  # "before as_of" includes the newest activity itself
        days, t7, t30 = touch_features(owner[keep], acts["t"].to_numpy()[keep], np.arange(n), np.full(n, at))
    else:
        days, t7, t30 = np.full(n, np.nan), np.zeros(n, int), np.zeros(n, int)
    frame = people.with_columns(
        pl.Series("days_since_last_touch", days).fill_nan(None),
        pl.Series("touches_7d", t7),
        pl.Series("touches_30d", t30),
    )
    if scored_leads is not None and {"contact_id", "score"} <= set(scored_leads.columns):
        bands = scored_leads.select(
            pl.col("contact_id").cast(pl.String),
            pl.col("score").alias("lead_score"),
            (pl.col("band") if "band" in scored_leads.columns else pl.lit(None, pl.String)).alias(
                "lead_band"
            ),
        ).unique("contact_id", keep="first")
        frame = frame.join(bands, on="contact_id", how="left")
    else:
        frame = frame.with_columns(lead_score=pl.lit(None, pl.Float64), lead_band=pl.lit(None, pl.String))
    custom = [
        c
        for c in frame.columns
        if c not in (*CONTEXT_FROM_WAREHOUSE, "contact_id", "lead_score", "lead_band")
    ]
    return frame.select("contact_id", *CONTEXT_FROM_WAREHOUSE, "lead_score", "lead_band", *custom)


def fit_context_encoder(tables) -> ContextEncoder:
    """The context encoder fitted on the staged tables (every contact, custom fields included): what the
    policy evaluation, the online learner and serving all encode with."""
    return ContextEncoder.fit(
        contact_contexts(
            tables["staged_contacts"], tables.get("staged_companies"), tables.get("staged_activities")
        )
    )


def open_contact_contexts(
    contacts: pl.DataFrame,
    companies: pl.DataFrame | None,
    activities: pl.DataFrame | None,
    scored_leads: pl.DataFrame | None = None,
    as_of: datetime | None = None,
) -> pl.DataFrame:
    """The contexts of the contacts a recommendation is made for (``decided_reason`` is None)."""
    frame = contact_contexts(contacts, companies, activities, scored_leads, as_of)
    return frame.filter(
        pl.col("lifecycle_status").is_in(OPEN_STATUSES) | pl.col("lifecycle_status").is_null()
    )


def decided_reason(lifecycle_status: str | None) -> str | None:
    """Why a contact gets no recommendation (decided once, for every door), or None when it gets one."""
    if lifecycle_status is None or lifecycle_status in OPEN_STATUSES:
        return None
    if lifecycle_status == "disqualified":
        return "disqualified: the contact is out of the pipeline, so no outreach is recommended"
    return f"lifecycle status {lifecycle_status!r} is not open (lead, qualified, customer): no outreach"


# -- reasons in a salesperson's words -------------------------------------------------------------------
ACTION_VERBS = {
    "email": "reply to emails",
    "call": "answer calls",
    "proposal": "respond to proposals",
    "wait": "respond better when left alone for now",
}
_PLURAL = {"c_level": "C-level contacts", "vp": "VPs", "individual": "individual contributors"}


def _humanise(value: str) -> str:
    return value.replace("_", " ")


def phrase(feature: str) -> tuple[str, str] | None:
    """(kind, words) for one active feature: kind "who" (a noun phrase) or "where"/"when" (a qualifier)."""
    if feature.startswith("days_since_last_touch"):
        rest = feature.removeprefix("days_since_last_touch")
        if rest.startswith("<="):
            return "when", "touched in the last day" if rest[
                2:
            ] == "1" else f"touched in the last {rest[2:]} days"
        if rest.startswith(">"):
            return "when", f"not touched for over {rest[1:]} days"
        lo, hi = rest.strip(" in()]").split(",")
        return "when", f"last touched {lo}-{hi} days ago"
    if feature.startswith("log1p(touches"):
        return "when", "touched often lately"
    if feature.startswith("lead_score"):
        return None
    if "=" not in feature:
        if " in (" in feature:
            column, bounds = feature.split(" in (", 1)
            lo, hi = bounds.rstrip("]").split(",")
            name = _humanise(column.removeprefix("company_").removeprefix(CUSTOM_PREFIX))
            if lo == "-inf":
                return "where", f"with {name} up to {hi}"
            if hi == "inf":
                return "where", f"with {name} above {lo}"
            return "where", f"with {name} {lo}-{hi}"
        return None
    column, value = feature.split("=", 1)
    if value == OTHER:
        return None
    if column == "seniority":
        return "who", _PLURAL.get(value, f"{_humanise(value)}s")
    if column == "lifecycle_status":
        return "who", f"{_humanise(value)}s"
    if column == "industry":
        return "where", f"at {_humanise(value)} companies"
    if column == "size_band":
        return "where", "at " + {"smb": "small", "mid_market": "mid-market"}.get(
            value, _humanise(value)
        ) + " companies"
    if column == "lead_band":
        return "where", f"with a {value} lead score"
    name = _humanise(column.removeprefix("company_").removeprefix(CUSTOM_PREFIX))
    return "where", f"with {name} {_humanise(value)}"


def reason_in_words(factors: list[str], action: str) -> str:
    """ "directors at software companies answer calls": the strongest factors as a salesperson says them."""
    phrases = [p for p in (phrase(f) for f in factors) if p is not None]
    who = [w for kind, w in phrases if kind == "who"]
    rest = [w for kind, w in phrases if kind != "who"]
    subject = " ".join([who[0] if who else "contacts", *rest[:2]]) if phrases else None
    verb = ACTION_VERBS.get(action, f"respond to {action}")
    return f"{subject} {verb}" if subject else f"{action} has the best record for contacts like this"


def _top_factors(policy, features: np.ndarray, chosen: np.ndarray, runner: np.ndarray, k: int = 3):
    """Per row, the indices (n, k) of the active context features that most favour the chosen action over the
    runner-up, strongest first; -1 where fewer than k favour it. Empty (n, 0) for non-contextual policies."""
    if not isinstance(policy, ContextualThompson):
        return np.full((len(chosen), 0), -1, dtype=np.int64)
    diff = policy.arms.mean[chosen] - policy.arms.mean[runner]  # (n, d)
    contribution = features * diff
    contribution[:, 0] = -np.inf  # the bias is not a reason
    contribution[features == 0] = -np.inf
    k = min(k, contribution.shape[1])
    top = np.argpartition(-contribution, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(contribution, top, axis=1)
    order = np.argsort(-values, axis=1)
    top, values = np.take_along_axis(top, order, axis=1), np.take_along_axis(values, order, axis=1)
    return np.where(np.isfinite(values) & (values > 0), top, -1)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a well-mixed 64-bit value from a counter (vectorised, wraps mod 2^64)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def decision_draws(contact_ids: list[str], k: int, state_key: str) -> np.ndarray:
    """Standard normal draws (n, k), one stream per contact and policy state: the same contact asked twice
    of the same policy state gets the same Thompson draw at every door (CLI, API, pipeline); every learned
    outcome changes the state and so the draw. Vectorised: a stable 64-bit hash of (state, contact) per row
    (blake2b of the key, xxhash-free so every process agrees), mixed with the action index."""
    state = np.uint64(int.from_bytes(hashlib.blake2b(state_key.encode(), digest_size=8).digest(), "little"))
    ids = pl.Series(contact_ids, dtype=pl.String).fill_null("")
    # FNV-1a over the id's bytes, vectorised through polars' binary view would cost a Python loop per
    # contact; the id's own 64-bit digest is cheap enough (about a microsecond each) and stable everywhere.
    contact = np.fromiter(
        (int.from_bytes(hashlib.blake2b(c.encode(), digest_size=8).digest(), "little") for c in ids),
        dtype=np.uint64,
        count=len(ids),
    )
    with np.errstate(over="ignore"):
        base = _mix64(contact ^ state)
        counters = base[:, None] + np.arange(1, k + 1, dtype=np.uint64)[None, :] * np.uint64(
            0x9E3779B97F4A7C15
        )
    u = ((_mix64(counters) >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)
    return ndtri(u)


def recommend(
    policy,
    contexts: pl.DataFrame,
    strategy: Strategy | str | None = None,
    version: str | None = None,
    encoded: Contexts | None = None,
    posterior: bool = True,
    **engine_options: float,
) -> pl.DataFrame:
    """One recommendation per row of ``contexts`` (contact_id + context columns).

    For the contextual Thompson policy (the default strategy) the draw is ``decision_draws``' (deterministic
    per contact and policy state) and the propensity is that draw's win probability; other policies and
    strategies decide through the convergence engine.
    """
    if encoded is None:  # ``encoded``: these rows already encoded by this policy's encoder
        encoded = policy.encoder.encode(contexts)
    n = len(encoded)
    ids = contexts["contact_id"].cast(pl.String).to_list() if "contact_id" in contexts.columns else [None] * n
    rows = np.arange(n)
    if isinstance(policy, ContextualThompson) and strategy in (None, Strategy.PURE_THOMPSON, "pure_thompson"):
        mean, sd = policy.score_posterior(encoded)
        state_key = f"{policy.name}|{version}|{policy.observations}"
        draws = mean + sd * decision_draws([str(c) for c in ids], mean.shape[1], state_key)
        chosen = np.argmax(draws, axis=1)
        # Never log a propensity of 0 (off-policy weights divide by it): a draw can win where the quadrature's
        # win probability rounds to nothing.
        propensity = np.maximum(gaussian_win_probabilities(mean, sd, only=chosen), MIN_PROPENSITY)
        confidence = propensity
        rate, rate_sd = policy.rates_from_scores(mean, sd)
    else:
        decisions = policy.choose(encoded, strategy, **engine_options)
        chosen, propensity, confidence = decisions.actions, decisions.propensity, decisions.confidence
        rate, rate_sd = policy.expected_reward(encoded)
        mean, sd, draws = rate, rate_sd, None
    masked = rate.copy()
    masked[rows, chosen] = -np.inf
    runner = masked.argmax(axis=1) if rate.shape[1] > 1 else chosen
    if hasattr(policy, "trials"):
        trials_all = policy.trials(encoded)
    else:
        trials_all = np.broadcast_to(np.asarray(policy.arms.counts)[None, :], rate.shape)
    names = np.asarray(policy.actions.names, dtype=object)
    factors = _top_factors(policy, encoded.features, chosen, runner)
    high, medium = PRIORITY_THRESHOLDS
    if n == 0:
        return pl.DataFrame(schema={"contact_id": pl.String, "action": pl.String})
    feature_names = np.asarray([*policy.encoder.feature_names, ""], dtype=object)  # index -1 -> ""
    # most contacts share their strongest factors and action: say each combination once
    keys, inverse = np.unique(np.column_stack([factors, chosen]), axis=0, return_inverse=True)
    said = [
        reason_in_words([str(feature_names[f]) for f in key[:-1] if f >= 0], str(names[key[-1]]))
        for key in keys
    ]
    words = np.asarray(said, dtype=object)[inverse.reshape(-1)]
    factor_lists = pl.DataFrame(
        {f"f{c}": pl.Series(feature_names[factors[:, c]].astype(str)) for c in range(factors.shape[1])}
    ).select(
        pl.concat_list(pl.all().replace("", None)).list.drop_nulls().alias("factors")
        if factors.shape[1]
        else pl.lit([], pl.List(pl.String)).alias("factors")
    )["factors"]
    pick = np.arange(n)
    p_chosen, sd_chosen, p_runner = rate[pick, chosen], rate_sd[pick, chosen], rate[pick, runner]
    trials_chosen = np.round(trials_all[pick, chosen]).astype(np.int64)

    def percent(x: np.ndarray) -> pl.Series:
        return pl.Series(np.round(x * 100).astype(np.int64)).cast(pl.String) + "%"

    extra = {}
    if posterior:  # the posterior of every action, for a decision explained on request
        extra["posterior"] = pl.DataFrame(
            {
                str(a): pl.DataFrame(
                    {
                        "expected_success_rate": np.round(rate[:, j], 4),
                        "uncertainty": np.round(rate_sd[:, j], 4),
                        "score_mean": np.round(mean[:, j], 4),
                        "score_sd": np.round(sd[:, j], 4),
                        **({"draw": np.round(draws[:, j], 4)} if draws is not None else {}),
                        "trials": np.round(trials_all[:, j]).astype(np.int64),
                    }
                ).to_struct(str(a))
                for j, a in enumerate(names)
            }
        ).to_struct("posterior")
    reasoning = (
        pl.Series(words.tolist(), dtype=pl.String)
        + ": "
        + percent(p_chosen)
        + " expected success (+/- "
        + percent(sd_chosen)
        + ", from "
        + pl.Series(trials_chosen).cast(pl.String)
        + " outcomes) against "
        + percent(p_runner)
        + " for "
        + pl.Series(names[runner].astype(str))
    )
    return pl.DataFrame(
        {
            "contact_id": pl.Series(ids, dtype=pl.String),
            "action": names[chosen].astype(str),
            "propensity": np.round(propensity, 4),
            "confidence": np.round(confidence, 4),
            "expected_success_rate": np.round(p_chosen, 4),
            "uncertainty": np.round(sd_chosen, 4),
            "trials": trials_chosen,
            "runner_up": names[runner].astype(str),
            "runner_up_success_rate": np.round(p_runner, 4),
            "priority": np.where(p_chosen >= high, "high", np.where(p_chosen >= medium, "medium", "low")),
            "reasoning": reasoning,
            "factors": factor_lists
            if len(factor_lists) == n
            else pl.Series([[]] * n, dtype=pl.List(pl.String)),
            "policy": [policy.name] * n,
            "policy_version": pl.Series([version] * n, dtype=pl.String),
            **extra,
        }
    )
