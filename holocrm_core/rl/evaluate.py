"""Policies played for many episodes in a world, with 95% intervals and paired comparisons.

Every policy evaluated from the same seed meets the same contacts in the same order and the same random
draws (common random numbers), so the difference between two policies is measured episode by episode and
its interval is much tighter than the two separate intervals suggest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from holocrm_core.rl.world import EpisodeStarts, OutreachWorld, ResponseTable, WorldConfig

Z95 = 1.959964


@dataclass
class Interval:
    mean: float
    low: float
    high: float

    @classmethod
    def of(cls, x: np.ndarray) -> Interval:
        x = np.asarray(x, dtype=np.float64)
        half = Z95 * x.std(ddof=1) / np.sqrt(len(x)) if len(x) > 1 else float("nan")
        return cls(float(x.mean()), float(x.mean() - half), float(x.mean() + half))

    def as_dict(self, digits: int = 4) -> dict:
        return {"mean": round(self.mean, digits), "low": round(self.low, digits), "high": round(self.high, digits)}


@dataclass
class Evaluation:
    policy: str
    world: str
    value_closed: np.ndarray  # per episode, in units of the mean deal value
    reward: np.ndarray
    won: np.ndarray
    touches: np.ndarray
    over_contacted: np.ndarray
    seconds: float

    @property
    def episodes(self) -> int:
        return len(self.value_closed)

    def summary(self) -> dict:
        return {
            "policy": self.policy,
            "world": self.world,
            "episodes": self.episodes,
            "value_closed": Interval.of(self.value_closed).as_dict(),
            "reward": Interval.of(self.reward).as_dict(),
            "win_rate": round(float(self.won.mean()), 4),
            "touches_per_episode": round(float(self.touches.mean()), 2),
            "over_contacted_episodes": round(float(self.over_contacted.mean()), 4),
            "episodes_per_s": round(self.episodes / self.seconds, 1) if self.seconds else None,
        }


def play(policy, table: ResponseTable, starts: EpisodeStarts, episodes: int = 1000, seed: int = 0,
         config: WorldConfig | None = None) -> Evaluation:
    """Run ``episodes`` episodes (contact i % len(starts)) of ``policy`` to the end, all at once."""
    began = time.perf_counter()
    world = OutreachWorld(table, starts, episodes, config, seed=seed)
    world.reset(start_index=np.arange(episodes) % len(starts))
    policy_rng = np.random.default_rng(seed + 1)
    active = np.ones(episodes, bool)
    totals = {k: np.zeros(episodes) for k in ("value_closed", "reward", "won", "touches", "over_contacted")}
    for _ in range(world.config.horizon_days):
        actions = policy.act(world, policy_rng)
        out = world.step(actions, active)
        totals["value_closed"] += out["value_closed"]
        totals["reward"] += out["reward"]
        totals["won"] += out["won"]
        totals["touches"] += (actions != 3) & active
        totals["over_contacted"] = np.maximum(totals["over_contacted"], out["over_contacted"] & active)
        active &= ~out["done"]
        if not active.any():
            break
    return Evaluation(getattr(policy, "name", "policy"), table.name, totals["value_closed"], totals["reward"],
                      totals["won"].astype(bool), totals["touches"], totals["over_contacted"].astype(bool),
                      time.perf_counter() - began)


def paired_difference(a: Evaluation, b: Evaluation, metric: str = "value_closed") -> Interval:
    """Interval of mean(a - b) over the same episodes (same seed and contacts)."""
    return Interval.of(getattr(a, metric) - getattr(b, metric))


def relative_gain(a: Evaluation, b: Evaluation, metric: str = "value_closed", resamples: int = 2000,
                  seed: int = 0) -> Interval:
    """Interval (paired bootstrap over episodes) of mean(a) / mean(b) - 1: "closes x% more deal value"."""
    x, y = getattr(a, metric), getattr(b, metric)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), (resamples, len(x)))
    ratios = x[idx].mean(axis=1) / np.maximum(y[idx].mean(axis=1), 1e-12) - 1.0
    point = float(x.mean() / max(y.mean(), 1e-12) - 1.0)
    low, high = np.quantile(ratios, [0.025, 0.975])
    return Interval(point, float(low), float(high))


def comparison_table(evaluations: list[Evaluation], reference: Evaluation) -> list[dict]:
    """One row per policy: its value, the paired difference to ``reference`` and the relative gain."""
    rows = []
    for ev in evaluations:
        row = ev.summary()
        if ev is not reference:
            row["vs_" + reference.policy] = paired_difference(reference, ev).as_dict()
            row["gain_of_" + reference.policy] = relative_gain(reference, ev).as_dict()
        rows.append(row)
    return rows
