"""The simulated lives of leads and deals: when each is decided, its activity, and the hidden truth.

Every lead and deal lives its whole life here, decided or not by the export date; the export shows only
what happened before it, so an open record's history is the first part of a life like the decided ones'.
The truth is causal: a record's outcome is drawn from a probability that is a function of what its history
shows before the decision (industry, seniority, size, lead source, deal value, how often and how recently
it was touched, and what the notes say); the same formula on what the export shows is the probability as of
the export. Activities after an outcome (onboarding notes after a win) exist on purpose, as a trap for a
model that ignores time. ``generator`` turns a ``_World`` into tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from holocrm_core.synth import vocabulary as V

if TYPE_CHECKING:  # the generator builds them; a world only reads their arrays
    from holocrm_core.synth.generator import _Companies, _Contacts

DAY = 86_400
SPAN_DAYS = 730

LEAD_INDUSTRY = [0.25, -0.10, 0.0, -0.15, 0.35, 0.05, -0.30, -0.15, 0.10, -0.05, 0.0, -0.50]
LEAD_SENIORITY = [0.55, 0.40, 0.20, 0.0, -0.45]
LEAD_SIZE = [0.15, 0.25, -0.25, 0.0]  # smb, mid_market, enterprise, none
LEAD_SOURCE = [1.0, 0.55, 0.35, 0.0, -0.75]  # referral, partner, event, web, cold_list
# Drivers of the true deal win probability.
DEAL_INDUSTRY = [0.20, -0.15, 0.10, -0.10, 0.30, 0.0, -0.25, -0.20, 0.15, 0.0, 0.05, -0.45]
DEAL_SENIORITY = [0.50, 0.35, 0.15, 0.0, -0.30]
DEAL_SIZE = [0.20, 0.10, -0.10, 0.0]
DEAL_SOURCE = [0.50, 0.30, 0.15, 0.0, -0.35]
FX_TO_USD = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27}

# Signal categories of an activity note.
NEUTRAL, POSITIVE, NEGATIVE, POST_CONVERTED, POST_DISQUALIFIED, POST_WON, POST_LOST = range(7)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _calibrate(logit: np.ndarray, mask: np.ndarray, target: float) -> np.ndarray:
    """Shift log-odds so that the mean probability over ``mask`` is ``target`` (deterministic bisection)."""
    lo, hi = -10.0, 10.0
    sub = logit[mask] if mask.any() else logit
    for _ in range(50):
        mid = (lo + hi) / 2
        if _sigmoid(sub + mid).mean() < target:
            lo = mid
        else:
            hi = mid
    return logit + (lo + hi) / 2


def _snap_business_hours(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Move a time to 08:00-18:00 of its day at a minute boundary (CRM activity times look like that)."""
    day = t // DAY * DAY
    return day + (8 * 3600 + rng.integers(0, 600, size=t.shape) * 60)


def _uniform_between(start: np.ndarray, end: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return start + (rng.random(start.shape) * np.maximum(end - start, 0)).astype(np.int64)


# ------------------------------------------------------------------------------------ timelines + truth
@dataclass
class _Activities:
    contact: np.ndarray
    deal: np.ndarray  # -1 none
    t: np.ndarray
    cat: np.ndarray  # NEUTRAL .. POST_LOST
    group: np.ndarray  # 0 lead before outcome, 1 lead after, 2 deal before close, 3 deal after


def _spread(counts: np.ndarray, start: np.ndarray, last: np.ndarray, rng: np.random.Generator):
    """Activity owners and times: per owner, ``counts`` touches, the last one at ``last``, the others between."""
    owner = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    rank = np.arange(len(owner)) - np.repeat(starts, counts)
    is_last = rank == np.repeat(counts - 1, counts)
    s, e = start[owner], last[owner]
    t = s + (rng.random(len(owner)) * np.maximum(e - s, 0)).astype(np.int64)
    t[is_last] = e[is_last]
    return owner, t


def _signals(z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    p_pos = 0.32 * _sigmoid(1.4 * z)
    p_neg = 0.32 * _sigmoid(-1.4 * z)
    u = rng.random(len(z))
    return np.where(u < p_pos, POSITIVE, np.where(u < p_pos + p_neg, NEGATIVE, NEUTRAL)).astype(np.int8)


def _before_features(owner: np.ndarray, t: np.ndarray, cat: np.ndarray, end: np.ndarray, n: int):
    """Count, last time, positive and negative signals of each owner's activities strictly before ``end``."""
    mask = t < end[owner]
    o, tt, cc = owner[mask], t[mask], cat[mask]
    count = np.bincount(o, minlength=n)
    last = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last, o, tt)
    pos = np.bincount(o, weights=((cc == POSITIVE) | (cc == POST_WON)), minlength=n)
    neg = np.bincount(o, weights=((cc == NEGATIVE) | (cc == POST_LOST)), minlength=n)
    return count, last, pos, neg


def _engagement_logit(count, last, pos, neg, end):
    recency_days = np.where(last >= 0, (end - last) / DAY, 365.0)
    return (
        0.55 * np.log1p(count)
        - 0.55 * np.log1p(recency_days / 7.0)
        + 0.85 * np.minimum(pos, 4)
        - 0.95 * np.minimum(neg, 4)
    )


@dataclass
class _World:
    created: np.ndarray
    end: np.ndarray  # lead outcome time, or as_of when still open
    closed: np.ndarray
    converted: np.ndarray
    p_convert: np.ndarray  # at the decision (ahead, for an open lead): what the outcome is drawn from
    p_convert_now: np.ndarray  # the same formula on what the export shows (equal for decided leads)
    qualified_at: np.ndarray  # -1 none
    status: np.ndarray  # 0 lead 1 qualified 2 customer 3 disqualified
    lead_features: tuple
    deal_contact: np.ndarray
    deal_created: np.ndarray
    deal_end: np.ndarray
    deal_closed: np.ndarray
    deal_won: np.ndarray
    p_win: np.ndarray
    p_win_now: np.ndarray
    deal_value: np.ndarray  # in deal currency
    deal_value_usd: np.ndarray
    deal_currency: np.ndarray  # index into ["USD", "EUR", "GBP"]
    deal_product: np.ndarray
    deal_planned: np.ndarray
    deal_stage: np.ndarray  # index into schema stages order below
    deal_stage_changed: np.ndarray
    deal_features: tuple
    acts: _Activities


DEAL_STAGES = ["prospecting", "qualification", "proposal", "negotiation", "won", "lost"]
CURRENCIES = ["USD", "EUR", "GBP"]


def _life(
    n: int,
    typical_days: float,
    stalled_share: float,
    as_of: int,
    created: np.ndarray,
    rng: np.random.Generator,
):
    """When each record is decided, and until when it is worked on.

    Every record lives its whole life in the simulation, decided or not by the export date: an ordinary one
    is worked on until shortly before its decision; a stalled one goes quiet part-way and is decided long
    after (a rep closes out what went cold). The export shows only what happened before ``as_of``, so an
    open record's history is the first part of a life like the decided ones', as of its age.
    """
    stalled = rng.random(n) < stalled_share
    active = np.clip(np.exp(rng.normal(np.log(typical_days), 0.6, n)), 3, 6 * typical_days)
    life = np.where(stalled, active * (1.5 + 1.5 * rng.random(n)), active)
    outcome = created + (life * DAY).astype(np.int64)
    closed = outcome < as_of - 3600
    return stalled, active, life, outcome, closed


def _visible(owner: np.ndarray, t: np.ndarray, cat: np.ndarray, as_of: int):
    """Only what has happened by the export date is in the export."""
    keep = t < as_of - 60
    return owner[keep], t[keep], cat[keep]


def _calibrated_pair(at_decision: np.ndarray, now: np.ndarray, closed: np.ndarray, target: float):
    """True probabilities at the decision (what the outcome is drawn from) and as of the export, with one
    intercept: the decided records' mean is ``target``."""
    shift = _calibrate(at_decision, closed, target) - at_decision
    return _sigmoid(at_decision + shift), _sigmoid(now + shift)


def _simulate(ct: _Contacts, comp: _Companies, as_of: int, rng: np.random.Generator) -> _World:
    n = ct.n
    z = rng.normal(0, 1, n)
    days_before = 1 + (SPAN_DAYS - 1) * rng.random(n) ** 1.2
    created = _snap_business_hours(as_of - (days_before * DAY).astype(np.int64), rng)
    created = np.minimum(created, as_of - DAY)
    stalled, active, life, outcome, closed = _life(n, 70.0, 0.25, as_of, created, rng)
    end = np.where(closed, outcome, as_of)

    # Lead touches over its whole open life (engaged contacts more often, and until closer to the decision);
    # a stalled lead's stop when it goes quiet. The export then shows those before the export date.
    lam = 2.3 * np.exp(0.4 * z) * (0.8 + 0.4 * np.minimum(life, 365) / 365)
    n_pre = 1 + rng.poisson(lam)
    gap = rng.exponential(1.0, n) * 8.0 * np.exp(-0.5 * z) + np.where(stalled, life - active, 0)
    gap = np.minimum(gap, life * 0.95)
    last = outcome - (gap * DAY).astype(np.int64)
    lf_owner, lf_t = _spread(n_pre, created, last, rng)
    lf_t = np.clip(_snap_business_hours(lf_t, rng), created[lf_owner], outcome[lf_owner] - 60)
    lf_cat = _signals(z[lf_owner], rng)
    l_owner, l_t, l_cat = _visible(lf_owner, lf_t, lf_cat, as_of)

    # Deals: engaged contacts at companies get more of them.
    n_deals = max(10, int(round(0.3 * n)))
    eligible = (ct.company >= 0) & (created < as_of - 2 * DAY)
    w = np.exp(0.5 * z) * eligible
    d_contact = rng.choice(n, size=n_deals, p=w / w.sum())
    d_contact.sort()  # deal ids follow the contacts' creation order roughly
    zd = 0.6 * z[d_contact] + 0.8 * rng.normal(0, 1, n_deals)
    c0 = created[d_contact]
    d_created = _snap_business_hours(
        c0 + (rng.random(n_deals) ** 1.5 * (as_of - 2 * DAY - c0)).astype(np.int64), rng
    )
    d_created = np.clip(d_created, c0, as_of - DAY)
    d_stalled, planned, d_life, d_close, d_closed = _life(n_deals, 45.0, 0.15, as_of, d_created, rng)
    d_end = np.where(d_closed, d_close, as_of)
    n_dpre = 1 + rng.poisson(2.6 * np.exp(0.35 * zd))
    d_gap = np.minimum(
        rng.exponential(1.0, n_deals) * 6.0 * np.exp(-0.5 * zd) + np.where(d_stalled, d_life - planned, 0),
        d_life * 0.95,
    )
    d_last = d_close - (d_gap * DAY).astype(np.int64)
    df_owner, df_t = _spread(n_dpre, d_created, d_last, rng)
    df_t = np.clip(_snap_business_hours(df_t, rng), d_created[df_owner], d_close[df_owner] - 60)
    df_cat = _signals(zd[df_owner], rng)
    dp_owner, dp_t, dp_cat = _visible(df_owner, df_t, df_cat, as_of)

    band = ct.band[d_contact]
    median = np.array([9_000, 40_000, 160_000, 9_000])[band]
    value_usd = np.round(np.exp(rng.normal(np.log(median), 0.8)) / 50) * 50
    value_usd = np.maximum(value_usd, 500)
    cur_of_country = np.array([CURRENCIES.index(g[2]) for g in V.GEOGRAPHY])
    currency = cur_of_country[ct.country[d_contact]]
    fx = np.array([FX_TO_USD[c] for c in CURRENCIES])[currency]
    value = np.maximum(np.round(value_usd / fx / 50) * 50, 500)
    value_usd = value * fx
    product = rng.choice(
        len(V.PRODUCTS), size=n_deals, p=np.array(V.PRODUCT_WEIGHTS) / sum(V.PRODUCT_WEIGHTS)
    )

    d_feat = _before_features(dp_owner, dp_t, dp_cat, d_end, n_deals)
    ind = ct.industry[d_contact]
    d_static = (
        np.r_[DEAL_INDUSTRY, 0.0][ind]
        + np.array(DEAL_SENIORITY)[ct.seniority[d_contact]]
        + np.array(DEAL_SIZE)[band]
        + np.array(DEAL_SOURCE)[ct.source[d_contact]]
        - 0.6 * np.log(value_usd / 30_000)
    )
    # The outcome is drawn from what the deal's whole history shows before its close (an open deal's
    # close lies ahead); the export-time probability is the same formula on what the export shows.
    d_at_close = d_static + _engagement_logit(
        *_before_features(df_owner, df_t, df_cat, d_close, n_deals), d_close
    )
    p_win, p_win_now = _calibrated_pair(
        d_at_close, d_static + _engagement_logit(*d_feat, d_end), d_closed, 0.38
    )
    won = d_closed & (rng.random(n_deals) < p_win)
    # After the close: onboarding notes after a win, a loss review after a loss (a trap for leaky models).
    n_dpost = np.where(d_closed, rng.poisson(np.where(won, 1.2, 0.3)), 0)
    post_start = d_end + 60
    post_last = np.minimum(as_of - 60, d_end + 90 * DAY)
    n_dpost = np.where(post_last > post_start, n_dpost, 0)
    dq_owner, dq_t = _spread(n_dpost, post_start, post_last, rng)
    dq_t = np.clip(_snap_business_hours(dq_t, rng), post_start[dq_owner], post_last[dq_owner])
    dq_cat = np.where(won[dq_owner], POST_WON, POST_LOST).astype(np.int8)

    # Lead truth: everything the contact's history shows strictly before the lead's outcome.
    all_owner = np.r_[l_owner, d_contact[dp_owner], d_contact[dq_owner]]
    all_t = np.r_[l_t, dp_t, dq_t]
    all_cat = np.r_[l_cat, dp_cat, dq_cat]
    l_feat = _before_features(all_owner, all_t, all_cat, end, n)
    l_static = (
        np.r_[LEAD_INDUSTRY, 0.0][ct.industry]
        + np.array(LEAD_SENIORITY)[ct.seniority]
        + np.array(LEAD_SIZE)[ct.band]
        + np.array(LEAD_SOURCE)[ct.source]
    )
    full = _before_features(
        np.r_[lf_owner, d_contact[df_owner], d_contact[dq_owner]],
        np.r_[lf_t, df_t, dq_t],
        np.r_[lf_cat, df_cat, dq_cat],
        outcome,
        n,
    )
    p_convert, p_convert_now = _calibrated_pair(
        1.35 * (l_static + _engagement_logit(*full, outcome)),
        1.35 * (l_static + _engagement_logit(*l_feat, end)),
        closed,
        0.40,
    )
    converted = closed & (rng.random(n) < p_convert)
    n_lpost = np.where(closed, rng.poisson(np.where(converted, 1.6, 0.35)), 0)
    lp_start = end + 60
    lp_last = np.minimum(as_of - 60, end + 120 * DAY)
    n_lpost = np.where(lp_last > lp_start, n_lpost, 0)
    lq_owner, lq_t = _spread(n_lpost, lp_start, lp_last, rng)
    lq_t = np.clip(_snap_business_hours(lq_t, rng), lp_start[lq_owner], lp_last[lq_owner])
    lq_cat = np.where(converted[lq_owner], POST_CONVERTED, POST_DISQUALIFIED).astype(np.int8)

    # Lifecycle: qualification happens (or not) independently of the outcome, so it leaks nothing.
    qualified = np.where(closed, rng.random(n) < 0.55, rng.random(n) < 0.35)
    q_end = np.where(closed, end, as_of)
    qualified_at = np.where(qualified, _uniform_between(created, q_end - 3600, rng), -1)
    status = np.where(closed, np.where(converted, 2, 3), np.where(qualified, 1, 0))

    # Open deal stage from how far along the deal is; closed deals are won or lost.
    frac = (as_of - d_created) / (planned * DAY) + rng.normal(0, 0.15, n_deals)
    open_stage = np.clip((frac * 4).astype(np.int64), 0, 3)
    stage = np.where(d_closed, np.where(won, 4, 5), open_stage)
    stage_changed = np.where(d_closed, d_end, _uniform_between(d_created, np.full(n_deals, as_of - 60), rng))

    acts = _Activities(
        contact=np.r_[l_owner, lq_owner, d_contact[dp_owner], d_contact[dq_owner]],
        deal=np.r_[np.full(len(l_owner) + len(lq_owner), -1), dp_owner, dq_owner],
        t=np.r_[l_t, lq_t, dp_t, dq_t],
        cat=np.r_[l_cat, lq_cat, dp_cat, dq_cat],
        group=np.r_[
            np.zeros(len(l_owner), np.int8),
            np.ones(len(lq_owner), np.int8),
            np.full(len(dp_owner), 2, np.int8),
            np.full(len(dq_owner), 3, np.int8),
        ],
    )
    return _World(
        created=created,
        end=end,
        closed=closed,
        converted=converted,
        p_convert=p_convert,
        p_convert_now=p_convert_now,
        qualified_at=qualified_at,
        status=status,
        lead_features=l_feat,
        deal_contact=d_contact,
        deal_created=d_created,
        deal_end=d_end,
        deal_closed=d_closed,
        deal_won=won,
        p_win=p_win,
        p_win_now=p_win_now,
        deal_value=value,
        deal_value_usd=value_usd,
        deal_currency=currency,
        deal_product=product,
        deal_planned=planned,
        deal_stage=stage,
        deal_stage_changed=stage_changed,
        deal_features=d_feat,
        acts=acts,
    )
