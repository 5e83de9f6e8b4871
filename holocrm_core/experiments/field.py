"""The field simulation's world: contacts whose true response to each action is known, and the bookkeeping.

``TrueWorld`` is an evaluation device, named as such: only the field simulation (``holocrm field
simulate``), benchmarks and tests reach it; serving and training never do. A rep takes the action the
contact's experiment arm serves (the learning policy's recommendation, or the fixed cadence) and the world
answers with a draw from the true response probability of that action for that contact. The simulation
keeps, per week and arm, the *true* expected reward of what was served, so the experiment report's estimate
can be compared with the truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

ACTIONS = ("email", "call", "proposal", "wait")
CADENCE = (
    "email",
    "call",
    "proposal",
)  # the fixed-cadence arm: week 1 email, week 2 call, week 3 proposal...
SENIORITIES = ("c_level", "vp", "director", "manager", "individual")
STATUSES = ("lead", "qualified")


@dataclass
class TrueWorld:
    """Response probability per (seniority, lifecycle status, action); the best action differs by segment."""

    seed: int = 0
    null: bool = False  # no action beats another for anyone: the learning arm cannot win
    table: dict[tuple[str, str, str], float] = field(default_factory=dict)

    def __post_init__(self):
        rng = np.random.default_rng(self.seed)
        for s_i, seniority in enumerate(SENIORITIES):
            for status in STATUSES:
                base = 0.06 + 0.04 * (status == "qualified")
                best = ACTIONS[(s_i + (status == "qualified")) % 3]  # never "wait"
                for action in ACTIONS:
                    if self.null:
                        p = base + 0.05
                    elif action == best:
                        p = base + 0.22 + 0.04 * rng.random()
                    elif action == "wait":
                        p = base * 0.5
                    else:
                        p = base + 0.03 * rng.random()
                    self.table[(seniority, status, action)] = float(p)

    def probability(self, seniority: str | None, status: str | None, action: str) -> float:
        return self.table.get((seniority or "manager", status or "lead", action), 0.05)

    def respond(self, rng: np.random.Generator, seniority, status, action) -> tuple[float, float]:
        """(the true probability, a draw of the reward)."""
        p = self.probability(seniority, status, action)
        return p, float(rng.random() < p)

    def oracle(self, seniority, status) -> float:
        return max(self.probability(seniority, status, a) for a in ACTIONS)


def field_contacts(n: int, seed: int) -> pl.DataFrame:
    """Open contacts of a field world (what the API serves recommendations for)."""
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "contact_id": [f"F{seed}-{i:05d}" for i in range(n)],
            "full_name": [f"Field Contact {i}" for i in range(n)],
            "lifecycle_status": rng.choice(STATUSES, n).tolist(),
            "seniority": rng.choice(SENIORITIES, n).tolist(),
        }
    )


def cadence_action(week: int) -> str:
    return CADENCE[week % len(CADENCE)]


@dataclass
class WeekRecord:
    week: int
    arm: str
    served: int
    true_reward: float  # mean true response probability of the actions served
    observed_reward: float


@dataclass
class FieldLedger:
    """What happened, week by week and arm by arm, with the truth beside it."""

    weeks: list[WeekRecord] = field(default_factory=list)
    # contact -> (true p of what was served, true p the cadence would have served), one pair per week
    true_by_unit: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    arm_of: dict[str, str] = field(default_factory=dict)

    def add_week(self, week: int, rows: list[tuple[str, str, float, float, float]]) -> None:
        """``rows``: (contact_id, arm, true probability, reward, the cadence's true probability) of one week."""
        for arm in sorted({r[1] for r in rows}):
            mine = [r for r in rows if r[1] == arm]
            self.weeks.append(
                WeekRecord(
                    week,
                    arm,
                    len(mine),
                    float(np.mean([r[2] for r in mine])),
                    float(np.mean([r[3] for r in mine])),
                )
            )
        for contact_id, arm, p, _, p_cadence in rows:
            self.true_by_unit.setdefault(contact_id, []).append((p, p_cadence))
            self.arm_of[contact_id] = arm

    def true_uplift(self, treatment: str) -> float:
        """The estimand of the report's mean_reward metric: per unit of the treatment arm, the sum over weeks
        of the true probability of what it was served minus what the cadence would have served (the effect
        on the treated; under random assignment the same as the average effect)."""
        gains = [
            sum(p - c for p, c in pairs)
            for unit, pairs in self.true_by_unit.items()
            if self.arm_of[unit] == treatment
        ]
        return float(np.mean(gains)) if gains else 0.0

    def table(self) -> pl.DataFrame:
        return pl.DataFrame([w.__dict__ for w in self.weeks])
