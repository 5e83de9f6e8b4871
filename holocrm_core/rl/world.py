"""Outreach episodes for many contacts at once: the mechanics the true world and the fitted simulator share.

An episode follows one contact from its current lifecycle stage until a deal is won or the horizon (a sales
fortnight by default) runs out. Every day the policy picks one action of ``ACTIONS``. Whether the contact
responds is the only thing a world decides: a ``ResponseTable`` gives, for every context (seniority,
industry, lifecycle stage, company size band, days since the last touch) and action, the probability of a
positive response. The simulator tabulates a model fitted from the logs (``holocrm_core.rl.fit``); on
generated data the true world tabulates the generator's hidden model (``holocrm_core.rl.truth``, the one
module here that reads the generator). Everything else is the same stage logic, written once here:

- a response from a lead qualifies it; a response to a proposal (or a reply, on a waiting day, to the last
  touch when that was a proposal) from a qualified contact or a customer wins the deal; a response from a
  contact that went cold brings it back as a lead;
- more than ``over_contact_limit`` touches in 7 days costs a penalty and may send the contact cold
  (lifecycle ``disqualified``: the response model then answers for a cold contact);
- reward = normalised deal value on a win, minus a cost per action and the over-contacting penalty.

The industry axis is the export's own: ``fit_industries`` keeps the most frequent industries of the staged
contacts (at most ``MAX_INDUSTRIES``, each seen ``MIN_INDUSTRY_COUNT`` times or more) and the rest share the
last slot (other / unknown), so the table and the policy input keep one fixed size whatever the export. The
vocabulary travels with everything that encodes a context (``ResponseTable.industries``,
``EpisodeStarts.industries``, the fitted response model, the logged PPO policy), and a world refuses a table
and starts that disagree on it.

State arrays are numpy, one row per running episode, so one ``step`` advances thousands of episodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from holocrm_core.schema import LifecycleStatus, Seniority, SizeBand

# Same names and order as the decisions action set.
ACTIONS = ("email", "call", "proposal", "wait")
EMAIL, CALL, PROPOSAL, WAIT = range(4)
NO_TOUCH = -1
SENIORITIES = tuple(s.value for s in Seniority)
LIFECYCLES = ("lead", "qualified", "customer", "disqualified")
LEAD, QUALIFIED, CUSTOMER, COLD = range(4)
SIZE_BANDS = tuple(s.value for s in SizeBand)
MAX_INDUSTRIES = 12  # industry slots of the table and the policy input; one more for other / unknown
MIN_INDUSTRY_COUNT = 5  # contacts an industry needs to get its own slot
OTHER_INDUSTRY = MAX_INDUSTRIES  # the slot of every industry outside the vocabulary, and of a missing one
MAX_DAYS = 120  # beyond four months of silence the response no longer changes with the days
HISTORY = 30  # days of touches kept per episode (the 30-day engagement window)
CONTEXT_COLUMNS = ("seniority", "industry", "lifecycle_status", "days_since_last_touch", "size_band")
# Table axes: seniority, industry, lifecycle, size band, days (0..MAX_DAYS), action. The last slot of the
# categorical axes is "unknown".
TABLE_SHAPE = (
    len(SENIORITIES) + 1,
    MAX_INDUSTRIES + 1,
    len(LIFECYCLES),
    len(SIZE_BANDS) + 1,
    MAX_DAYS + 1,
    len(ACTIONS),
)
assert set(LIFECYCLES) == {s.value for s in LifecycleStatus}


@dataclass(frozen=True)
class WorldConfig:
    """Episode rules and the reward's prices (in units of the mean deal value).

    Two weeks of outreach, then the contact goes back to nurturing: within that window a fixed cadence closes
    about half of the sample world's contacts, so timing and the choice of touch matter (with 30 days the
    cadence closes about 80% and every sensible policy looks alike; ``benchmarks/rl.py`` reports both).
    An email costs 0.2% of a mean deal, a call 0.5%, a proposal 1%.
    """

    horizon_days: int = 14
    action_cost: tuple[float, float, float, float] = (0.002, 0.005, 0.01, 0.0)
    over_contact_limit: int = 3  # touches in the last 7 days beyond which the contact is over-contacted
    over_contact_penalty: float = 0.05  # per touch beyond the limit
    cold_probability: float = 0.3  # chance that an over-contacting touch sends the contact cold
    max_value: float = 5.0  # normalised deal values are capped so one whale does not dominate training


def codes(values, vocabulary: tuple[str, ...]) -> np.ndarray:
    """Index of each value in ``vocabulary``; unknown or missing values get ``len(vocabulary)``."""
    lookup = {v: i for i, v in enumerate(vocabulary)}
    series = values if isinstance(values, pl.Series) else pl.Series(list(values), dtype=pl.String)
    return (
        series.cast(pl.String)
        .replace_strict(lookup, default=len(vocabulary), return_dtype=pl.Int64)
        .to_numpy()
    )


class IndustryMismatch(ValueError):
    """Two parts of one world (table, starts, policy) encode industries with different vocabularies."""


def industry_key(values: pl.Series) -> pl.Series:
    """How industries are matched: trimmed, lower case, runs of spaces / underscores as one space."""
    return values.cast(pl.String).str.strip_chars().str.to_lowercase().str.replace_all(r"[\s_]+", " ")


def check_industries(industries) -> tuple[str, ...]:
    """The vocabulary as a tuple of distinct, non-empty names, at most ``MAX_INDUSTRIES`` (else ValueError)."""
    names = tuple(str(v) for v in industries)
    keys = industry_key(pl.Series(names, dtype=pl.String)).to_list()
    if len(names) > MAX_INDUSTRIES or len(set(keys)) != len(keys) or any(not k for k in keys):
        raise ValueError(
            f"an industry vocabulary holds at most {MAX_INDUSTRIES} distinct, non-empty names; got {names}"
        )
    return names


def fit_industries(
    values: pl.Series, max_industries: int = MAX_INDUSTRIES, min_count: int = MIN_INDUSTRY_COUNT
) -> tuple[str, ...]:
    """The industry vocabulary of an export: its most frequent industries (one value per contact), each seen
    ``min_count`` times or more, at most ``max_industries`` (ties by name, so the order is reproducible).

    Industries are matched by ``industry_key``; a name keeps its most frequent spelling.
    """
    frame = pl.DataFrame({"name": values.cast(pl.String).str.strip_chars()}).with_columns(
        industry_key(pl.col("name")).alias("key")
    )
    frame = frame.filter(pl.col("key").is_not_null() & (pl.col("key") != ""))
    spelled = frame.group_by("key", "name").len().sort(["len", "name"], descending=[True, False])
    counted = (
        spelled.group_by("key", maintain_order=True)
        .agg(pl.col("name").first(), pl.col("len").sum().alias("count"))
        .filter(pl.col("count") >= min_count)
        .sort(["count", "key"], descending=[True, False])
        .head(min(max_industries, MAX_INDUSTRIES))
    )
    return tuple(counted["name"].to_list())


def industry_codes(values, industries: tuple[str, ...]) -> np.ndarray:
    """Slot of each industry in ``industries``; outside it or missing: ``OTHER_INDUSTRY``."""
    series = values if isinstance(values, pl.Series) else pl.Series(list(values), dtype=pl.String)
    keys = industry_key(pl.Series(list(industries), dtype=pl.String)).to_list()
    lookup = {k: i for i, k in enumerate(keys)}
    return (
        industry_key(series)
        .replace_strict(lookup, default=OTHER_INDUSTRY, return_dtype=pl.Int64)
        .fill_null(OTHER_INDUSTRY)
        .to_numpy()
    )


def industry_slots(industries: tuple[str, ...]) -> list[str | None]:
    """The names of the ``MAX_INDUSTRIES + 1`` industry slots (unused slots and other / unknown as None)."""
    return [*industries, *[None] * (MAX_INDUSTRIES + 1 - len(industries))]


def require_same_industries(a: tuple[str, ...], b: tuple[str, ...], what: str) -> None:
    if tuple(a) != tuple(b):
        raise IndustryMismatch(
            f"{what} encode industries differently: {list(a)} vs {list(b)}; one world needs one vocabulary "
            "(fit it once from the export: holocrm_core.rl.starts.export_industries, and pass it to both)"
        )


def context_grid(industries: tuple[str, ...]) -> pl.DataFrame:
    """Every context the table holds, in table order (unknown categories as nulls)."""
    axes = [
        list(SENIORITIES) + [None],
        industry_slots(industries),
        list(LIFECYCLES),
        list(SIZE_BANDS) + [None],
        list(range(MAX_DAYS + 1)),
    ]
    idx = np.indices([len(a) for a in axes]).reshape(len(axes), -1)
    return pl.DataFrame(
        {
            "seniority": pl.Series([axes[0][i] for i in idx[0]], dtype=pl.String),
            "industry": pl.Series([axes[1][i] for i in idx[1]], dtype=pl.String),
            "lifecycle_status": pl.Series([axes[2][i] for i in idx[2]], dtype=pl.String),
            "size_band": pl.Series([axes[3][i] for i in idx[3]], dtype=pl.String),
            "days_since_last_touch": pl.Series(idx[4], dtype=pl.Int64),
        }
    )


@dataclass
class ResponseTable:
    """Response probability per context and action, for one or more members (a fitted model's uncertainty).

    ``probs`` has shape ``(members, *TABLE_SHAPE)``; an episode draws one member at its start, so the
    simulator's episodes spread as widely as the fitted model is unsure.
    """

    probs: np.ndarray
    name: str = "table"
    industries: tuple[str, ...] = ()  # the industry axis' vocabulary (the last slot: other / unknown)

    def __post_init__(self):
        self.industries = check_industries(self.industries)

    @classmethod
    def from_model(cls, predict, name: str, industries: tuple[str, ...] = ()) -> ResponseTable:
        """Tabulate ``predict(frame) -> (rows, 4)`` (or a list of such arrays, one per member) on the grid
        of ``industries``."""
        out = predict(context_grid(industries))
        members = out if isinstance(out, list) else [out]
        probs = np.stack([np.asarray(m, dtype=np.float64).reshape(TABLE_SHAPE) for m in members])
        return cls(np.clip(probs, 0.0, 1.0), name, industries)

    @property
    def members(self) -> int:
        return self.probs.shape[0]

    def lookup(self, member, seniority, industry, lifecycle, size_band, days) -> np.ndarray:
        d = np.clip(days, 0, MAX_DAYS).astype(np.int64)
        return self.probs[member, seniority, industry, lifecycle, size_band, d]

    def mean_frame(self, contexts: pl.DataFrame) -> np.ndarray:
        """Mean-over-members probabilities ``(rows, 4)`` for a frame with the context columns."""
        c = encode_contexts(contexts, self.industries)
        return self.probs.mean(axis=0)[
            c["seniority"], c["industry"], c["lifecycle"], c["size_band"], np.clip(c["days"], 0, MAX_DAYS)
        ]


def lifecycle_codes(values) -> np.ndarray:
    """Lifecycle index; an unknown stage counts as a lead (the table has no "unknown" stage)."""
    life = codes(values, LIFECYCLES)
    return np.where(life >= len(LIFECYCLES), LEAD, life)


def encode_contexts(frame: pl.DataFrame, industries: tuple[str, ...]) -> dict[str, np.ndarray]:
    days = frame["days_since_last_touch"].cast(pl.Float64).fill_null(30.0).fill_nan(30.0).to_numpy()
    return {
        "seniority": codes(frame["seniority"], SENIORITIES),
        "industry": industry_codes(frame["industry"], industries),
        "lifecycle": lifecycle_codes(frame["lifecycle_status"]),
        "size_band": codes(frame["size_band"], SIZE_BANDS),
        "days": np.clip(np.round(days), 0, MAX_DAYS).astype(np.int64),
    }


def true_response_table(industries: tuple[str, ...] = ()) -> ResponseTable:
    """The generator's truth: ``holocrm_core.rl.truth.true_response_table`` (generated data only), kept here
    for ``tests/api/test_decisions_api.py``, which imports it from this module; delete it once that import
    reads ``holocrm_core.rl.truth``."""
    from holocrm_core.rl.truth import true_response_table as tabulate

    return tabulate(industries)


@dataclass
class EpisodeStarts:
    """Where episodes begin: one row per contact: segment codes, stage, silence, deal value, lead score."""

    contact_id: np.ndarray
    seniority: np.ndarray
    industry: np.ndarray
    size_band: np.ndarray
    lifecycle: np.ndarray
    days_since_last_touch: np.ndarray
    value: np.ndarray  # deal value in units of the mean deal value
    lead_score: np.ndarray
    mean_deal_value: float = 1.0
    currency: str = "USD"
    industries: tuple[str, ...] = ()  # the vocabulary ``industry`` codes index (OTHER_INDUSTRY: outside it)

    def __post_init__(self):
        self.industries = check_industries(self.industries)
        code = np.asarray(self.industry)
        if ((code >= len(self.industries)) & (code != OTHER_INDUSTRY)).any() or (code < 0).any():
            raise ValueError(
                f"industry codes must index the vocabulary ({len(self.industries)} names) or be "
                f"OTHER_INDUSTRY ({OTHER_INDUSTRY})"
            )

    def __len__(self) -> int:
        return len(self.contact_id)

    def subset(self, mask: np.ndarray) -> EpisodeStarts:
        arrays = {
            k: getattr(self, k)[mask]
            for k in (
                "contact_id",
                "seniority",
                "industry",
                "size_band",
                "lifecycle",
                "days_since_last_touch",
                "value",
                "lead_score",
            )
        }
        return EpisodeStarts(
            **arrays, mean_deal_value=self.mean_deal_value, currency=self.currency, industries=self.industries
        )

    def held_out_mask(self, share: float = 0.3) -> np.ndarray:
        """Stable split by contact id (a hash, not the row order): True for held-out contacts."""
        hashed = pl.Series(self.contact_id.astype(str)).hash(seed=17).to_numpy()
        return (hashed % 1000) < int(share * 1000)

    @classmethod
    def uniform(cls, n: int = 500, seed: int = 0, industries: tuple[str, ...] = ()) -> EpisodeStarts:
        """Contacts drawn uniformly over segments and ``industries`` (none: every industry unknown), a demo
        population when no export is given."""
        rng = np.random.default_rng(seed)
        industries = check_industries(industries)
        return cls(
            contact_id=np.array([f"DEMO-{i:05d}" for i in range(n)]),
            seniority=rng.integers(0, len(SENIORITIES), n),
            industry=rng.integers(0, len(industries), n) if industries else np.full(n, OTHER_INDUSTRY),
            size_band=rng.integers(0, len(SIZE_BANDS), n),
            lifecycle=rng.choice([LEAD, QUALIFIED, CUSTOMER], n, p=[0.7, 0.2, 0.1]),
            days_since_last_touch=rng.integers(0, 60, n),
            value=np.clip(rng.lognormal(0.0, 0.5, n) / np.exp(0.125), 0.1, 5.0),
            lead_score=rng.uniform(0.1, 0.6, n),
            industries=industries,
        )


@dataclass
class EpisodeBatch:
    """The running state of ``n`` episodes (one per row) in one world."""

    n: int
    t: np.ndarray = field(init=False)
    start: np.ndarray = field(init=False)
    member: np.ndarray = field(init=False)
    lifecycle: np.ndarray = field(init=False)
    last_touch_day: np.ndarray = field(init=False)
    last_touch_type: np.ndarray = field(init=False)
    touch_day: np.ndarray = field(init=False)
    touch_type: np.ndarray = field(init=False)

    def __post_init__(self):
        n = self.n
        self.t = np.zeros(n, np.int64)
        self.start = np.zeros(n, np.int64)
        self.member = np.zeros(n, np.int64)
        self.lifecycle = np.zeros(n, np.int64)
        self.last_touch_day = np.zeros(n, np.int64)
        self.last_touch_type = np.full(n, NO_TOUCH, np.int64)
        self.touch_day = np.full((n, HISTORY), -10_000, np.int64)
        self.touch_type = np.full((n, HISTORY), NO_TOUCH, np.int64)


OBS_DIM = (
    (len(SENIORITIES) + 1)
    + (MAX_INDUSTRIES + 1)
    + (len(SIZE_BANDS) + 1)
    + len(LIFECYCLES)
    + 3
    + 3
    + 2
    + 4
    + 3
)
OBS_HIGH = 5.0


class OutreachWorld:
    """``n`` outreach episodes advancing together in the world that ``table`` describes.

    The table and the starts must share one industry vocabulary (``IndustryMismatch`` otherwise): a code
    means the same industry to the response model, to the policy's input and in ``contexts``.
    """

    def __init__(
        self,
        table: ResponseTable,
        starts: EpisodeStarts,
        n: int,
        config: WorldConfig | None = None,
        seed: int | None = None,
    ):
        if len(starts) == 0:
            raise ValueError("no contacts to start episodes from")
        require_same_industries(table.industries, starts.industries, "the response table and the starts")
        self.table, self.starts, self.n = table, starts, n
        self.config = config or WorldConfig()
        self.rng = np.random.default_rng(seed)
        self.state = EpisodeBatch(n)
        self.cost = np.asarray(self.config.action_cost, dtype=np.float64)
        self._rows = np.arange(n)

    # -- episodes ----------------------------------------------------------------------------------------
    def reset(self, which: np.ndarray | None = None, start_index: np.ndarray | None = None) -> None:
        """Start new episodes in rows ``which`` (all by default), from ``start_index`` or random contacts."""
        s, st = self.state, self.starts
        which = self._rows if which is None else np.asarray(which)
        if len(which) == 0:
            return
        idx = self.rng.integers(0, len(st), len(which)) if start_index is None else np.asarray(start_index)
        s.start[which] = idx
        s.member[which] = self.rng.integers(0, self.table.members, len(which))
        s.t[which] = 0
        s.lifecycle[which] = st.lifecycle[idx]
        s.last_touch_day[which] = -np.clip(st.days_since_last_touch[idx], 0, MAX_DAYS)
        s.last_touch_type[which] = NO_TOUCH
        s.touch_day[which] = -10_000
        s.touch_type[which] = NO_TOUCH

    # -- what a policy sees ------------------------------------------------------------------------------
    def days_since_last_touch(self) -> np.ndarray:
        return self.state.t - self.state.last_touch_day

    def touches(self, window: int) -> np.ndarray:
        """Touches per type (email, call, proposal) in the last ``window`` days, shape (n, 3)."""
        s = self.state
        recent = (s.t[:, None] - s.touch_day) < window
        return np.stack([(recent & (s.touch_type == k)).sum(axis=1) for k in (EMAIL, CALL, PROPOSAL)], axis=1)

    def segment(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        st, idx = self.starts, self.state.start
        return st.seniority[idx], st.industry[idx], st.size_band[idx]

    def contexts(self) -> pl.DataFrame:
        """The decision context of every running episode in the CRM's words (the decisions' columns)."""
        sen, ind, size = self.segment()

        def names(vocab, c):
            return pl.Series(np.array([*vocab, None], dtype=object)[c].tolist(), dtype=pl.String)

        return pl.DataFrame(
            {
                "seniority": names(SENIORITIES, sen),
                "industry": pl.Series(
                    np.array(industry_slots(self.starts.industries), dtype=object)[ind].tolist(),
                    dtype=pl.String,
                ),
                "lifecycle_status": names(LIFECYCLES, self.state.lifecycle),
                "days_since_last_touch": pl.Series(np.clip(self.days_since_last_touch(), 0, MAX_DAYS)),
                "size_band": names(SIZE_BANDS, size),
                "touches_7d": pl.Series(self.touches(7).sum(axis=1)),
                "touches_30d": pl.Series(self.touches(30).sum(axis=1)),
                "lead_score": pl.Series(self.starts.lead_score[self.state.start]),
            }
        )

    def true_probabilities(self) -> np.ndarray:
        """This world's response probabilities for every action in the current contexts, (n, 4)."""
        sen, ind, size = self.segment()
        return self.table.lookup(
            self.state.member, sen, ind, self.state.lifecycle, size, self.days_since_last_touch()
        )

    def observe(self) -> np.ndarray:
        """Policy input (n, OBS_DIM), float32 in [0, OBS_HIGH]: segment, stage, engagement, value, time."""
        s, st = self.state, self.starts
        sen, ind, size = self.segment()
        n, rows = self.n, self._rows
        parts = []
        for code, width in (
            (sen, len(SENIORITIES) + 1),
            (ind, MAX_INDUSTRIES + 1),
            (size, len(SIZE_BANDS) + 1),
            (s.lifecycle, len(LIFECYCLES)),
        ):
            one_hot = np.zeros((n, width), np.float32)
            one_hot[rows, code] = 1.0
            parts.append(one_hot)
        d = np.clip(self.days_since_last_touch(), 0, MAX_DAYS).astype(np.float32)
        last = np.zeros((n, 4), np.float32)
        last[rows, s.last_touch_type + 1] = 1.0  # slot 0 = no touch in this episode yet
        parts += [
            self.touches(7) / 3.0,
            self.touches(30) / 10.0,
            np.stack([np.minimum(d / 30.0, 4.0), np.log1p(d) / np.log1p(MAX_DAYS)], axis=1),
            last,
            np.stack(
                [
                    st.lead_score[s.start],
                    np.minimum(st.value[s.start], self.config.max_value) / 2.0,
                    1.0 - s.t / self.config.horizon_days,
                ],
                axis=1,
            ),
        ]
        return np.clip(np.concatenate(parts, axis=1, dtype=np.float32), 0.0, OBS_HIGH)

    # -- one day -----------------------------------------------------------------------------------------
    def step(self, actions: np.ndarray, active: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Apply one action per episode; returns reward, won, value_closed, responded, done, truncated.

        Two uniform draws per row are taken whether or not a row is ``active``, so policies evaluated from
        the same seed meet the same luck (common random numbers make paired comparisons tight).
        """
        s, cfg = self.state, self.config
        a = np.asarray(actions, dtype=np.int64)
        u_response, u_cold = self.rng.random(self.n), self.rng.random(self.n)
        active = np.ones(self.n, bool) if active is None else active
        p = self.true_probabilities()[self._rows, a]
        responded = (u_response < p) & active
        touch = (a != WAIT) & active
        credited = np.where(a == WAIT, s.last_touch_type, a)
        closing = (s.lifecycle == QUALIFIED) | (s.lifecycle == CUSTOMER)
        won = responded & closing & (credited == PROPOSAL)
        s.lifecycle = np.where(responded & (s.lifecycle == LEAD), QUALIFIED, s.lifecycle)
        s.lifecycle = np.where(responded & (s.lifecycle == COLD), LEAD, s.lifecycle)
        # Record the touch in the 30-day ring, then count the week's touches including it.
        slot = s.t % HISTORY
        rows = self._rows[touch]
        s.touch_day[rows, slot[touch]] = s.t[touch]
        s.touch_type[rows, slot[touch]] = a[touch]
        s.last_touch_day = np.where(touch, s.t, s.last_touch_day)
        s.last_touch_type = np.where(touch, a, s.last_touch_type)
        week = self.touches(7).sum(axis=1)
        excess = np.where(touch, np.maximum(week - cfg.over_contact_limit, 0), 0)
        cold = (excess > 0) & (u_cold < cfg.cold_probability) & ~won
        s.lifecycle = np.where(cold, COLD, s.lifecycle)
        value = np.minimum(self.starts.value[s.start], cfg.max_value)
        value_closed = np.where(won, value, 0.0)
        reward = np.where(active, value_closed - self.cost[a] - cfg.over_contact_penalty * excess, 0.0)
        s.t = s.t + active
        truncated = (s.t >= cfg.horizon_days) & ~won & active
        return {
            "reward": reward,
            "won": won,
            "value_closed": value_closed,
            "responded": responded,
            "done": (won | truncated) & active,
            "truncated": truncated,
            "over_contacted": excess > 0,
        }
