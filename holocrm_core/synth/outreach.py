"""The sample world's historical outreach: actions the reps took, with the propensities of their known habits.

The reps of the generated CRM follow a fixed, randomised logging policy (``logging_policy_probabilities``):
mostly email, calls to directors and above, proposals to qualified contacts, waiting right after a touch,
and never less than 5% on any action, so every action is logged in every context and off-policy estimates
have support. ``outreach_log`` draws decision points over each contact's history, takes the context as the
export shows it at that moment (seniority, industry, lifecycle status, size band, days since the last
activity and touches in the last 7 / 30 days, from the same activities the export holds), draws an action
from the logging policy and the response from the true response model (``synth.response``). The export gets
the log a CRM would hold (contact, time, action, propensity, responded); the truth gets every action's true
response probability for each logged context, so the true value of any policy on these contexts is known.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from holocrm_core.synth.response import ACTIONS, action_response_probability

LOGGING_POLICY = "rep_habits_v1"
OUTREACH_DIR = "outreach"  # sub-folder of the export: the entity readers only look at top-level files
MIN_PROPENSITY = 0.05
_SENIOR = {"c_level", "vp", "director"}


def logging_policy_probabilities(contexts: pl.DataFrame) -> np.ndarray:
    """P(rep takes each action in ``ACTIONS``) per context row: (n, 4), rows sum to 1, all >= 5%."""
    n = contexts.height

    def col(name: str, default):
        if name in contexts.columns:
            return contexts[name]
        return pl.Series(name, [default] * n)

    senior = col("seniority", None).is_in(list(_SENIOR)).fill_null(False).to_numpy()
    qualified = (col("lifecycle_status", None) == "qualified").fill_null(False).to_numpy()
    days = col("days_since_last_touch", 30.0).cast(pl.Float64, strict=False).fill_null(30.0).to_numpy()
    logits = np.zeros((n, 4))
    logits[:, 0] = 1.0  # email is the habit
    logits[:, 1] = np.where(senior, 0.8, -0.3)
    logits[:, 2] = np.where(qualified, 0.6, -1.0)
    logits[:, 3] = np.where(days < 2.0, 1.2, -0.8)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return MIN_PROPENSITY + (1.0 - 4 * MIN_PROPENSITY) * p


def outreach_log(
    contacts: pl.DataFrame,
    touches: pl.DataFrame,
    as_of_s: int,
    rng: np.random.Generator,
    per_contact: float = 3.0,
    window_days: int = 14,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(log for the export, truth) of the reps' historical outreach.

    ``contacts``: contact_id, seniority, industry, lifecycle_status, size_band, created_s (epoch seconds).
    ``touches``: contact_id, t (epoch seconds) of every activity. Decision points fall between a contact's
    creation and ``window_days`` before ``as_of_s`` (so every outcome window has closed by the export).
    """
    # Imported here: decisions.actions reads the synth vocabularies, so a top-level import would be circular.
    from holocrm_core.decisions.actions import touch_features

    n = contacts.height
    end = float(as_of_s - window_days * 86400)
    created_all = contacts["created_s"].to_numpy().astype(np.float64)
    k = np.where(created_all < end, rng.poisson(per_contact, n), 0)  # no decisions before a contact exists
    owner = np.repeat(np.arange(n), k)
    start = created_all[owner]
    t = np.floor(start + rng.random(len(owner)) * (end - start)).astype(np.int64)
    ids = contacts["contact_id"]
    index = {c: i for i, c in enumerate(ids.to_list())}
    touch_owner = np.array([index.get(c, -1) for c in touches["contact_id"].to_list()], dtype=np.int64)
    keep = touch_owner >= 0
    days, t7, t30 = touch_features(touch_owner[keep], touches["t"].to_numpy()[keep], owner, t)
    context = pl.DataFrame(
        {
            "seniority": contacts["seniority"].gather(owner),
            "industry": contacts["industry"].gather(owner),
            "lifecycle_status": contacts["lifecycle_status"].gather(owner),
            "size_band": contacts["size_band"].gather(owner),
            "days_since_last_touch": pl.Series(days).fill_nan(None),
            "touches_7d": t7,
            "touches_30d": t30,
        }
    )
    propensities = logging_policy_probabilities(context)
    cdf = np.cumsum(propensities, axis=1)
    action = np.minimum((rng.random((len(owner), 1)) >= cdf).sum(axis=1), 3)
    truth_p = action_response_probability(context)
    responded = (rng.random(len(owner)) < truth_p[np.arange(len(owner)), action]).astype(np.int64)
    order = np.lexsort((owner, t))
    action_ids = pl.Series("action_id", [f"OUT-{i:07d}" for i in range(1, len(owner) + 1)])
    at = pl.from_epoch(pl.Series(t[order]), time_unit="s").dt.replace_time_zone("UTC")
    log = pl.DataFrame(
        {
            "action_id": action_ids,
            "contact_id": ids.gather(owner[order]),
            "occurred_at": at.dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "action": pl.Series(ACTIONS).gather(action[order]),
            "policy": [LOGGING_POLICY] * len(owner),
            "propensity": np.round(propensities[order, action[order]], 6),
            "responded": responded[order],
            "window_days": [window_days] * len(owner),
        }
    )
    truth = pl.concat(
        [
            pl.DataFrame({"action_id": action_ids, "contact_id": ids.gather(owner[order])}),
            context[order.tolist()],
            pl.DataFrame({f"p_{a}": truth_p[order, i] for i, a in enumerate(ACTIONS)}),
            pl.DataFrame({f"logging_{a}": propensities[order, i] for i, a in enumerate(ACTIONS)}),
        ],
        how="horizontal",
    )
    return log, truth
