"""The sample generator's truth for the outreach world: for exports the generator made, and nothing else.

The one RL module that reads ``holocrm_core.synth`` (``tests/core/test_layering.py`` lists it as
generated-data-only). Serving never imports it; training imports it (inside a function) only when the export
is the generator's, to draw the reps' history in the true world and to judge the policy there.

``true_response_table(industries)`` tabulates the generator's hidden response model on the grid of a given
industry vocabulary (the one fitted from the export), so the true world, the fitted simulator and the policy
share one vocabulary. ``rename`` maps an export's industry names back to the generator's (an export whose
industries were renamed: the benchmark's foreign-industry sample). The other / unknown slot answers as the
generator's industries outside the vocabulary would on average (weighted by how often the generator makes
them); when the vocabulary covers all of them, as an industry the generator does not know (neutral).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from holocrm_core.rl.baselines import LoggingPolicy
from holocrm_core.rl.world import ResponseTable, check_industries, industry_key
from holocrm_core.synth.outreach import logging_policy_probabilities
from holocrm_core.synth.response import action_response_probability
from holocrm_core.synth.vocabulary import INDUSTRIES, INDUSTRY_WEIGHTS


def generator_industries() -> tuple[str, ...]:
    """The generator's own industry names (the vocabulary a large enough sample export is fitted to)."""
    return tuple(INDUSTRIES)


def _key(name: str) -> str:
    return industry_key(pl.Series([name], dtype=pl.String))[0]


def true_response_table(
    industries: tuple[str, ...] = (), rename: Mapping[str, str] | None = None
) -> ResponseTable:
    """The generator's hidden response model on the grid of ``industries``: the TRUE world."""
    industries = check_industries(industries)
    to_generator = {_key(k): v for k, v in (rename or {}).items()}
    generator_names = [to_generator.get(_key(name), name) for name in industries]
    covered = {_key(name) for name in generator_names}
    folded = [(n, w) for n, w in zip(INDUSTRIES, INDUSTRY_WEIGHTS, strict=True) if _key(n) not in covered]
    translate = dict(zip(industries, generator_names, strict=True))

    def predict(grid: pl.DataFrame) -> np.ndarray:
        named = grid.with_columns(pl.col("industry").replace(translate))
        probs = np.asarray(action_response_probability(named), dtype=np.float64)
        other = grid["industry"].is_null().to_numpy()
        if folded and other.any():
            rows = named.filter(pl.Series(other))
            mix = sum(
                w * np.asarray(action_response_probability(rows.with_columns(pl.lit(n).alias("industry"))))
                for n, w in folded
            )
            probs[other] = mix / sum(w for _, w in folded)
        return probs

    return ResponseTable.from_model(predict, "truth", industries)


def sample_logging_policy() -> LoggingPolicy:
    """The sample world's reps' habits (every action at least 5%, as off-policy checks need)."""
    return LoggingPolicy(logging_policy_probabilities)


@dataclass(frozen=True)
class SampleTruth:
    """What the generator knows about an export it made: its response model and its reps' logging policy.

    ``rename``: the export's industry names -> the generator's (for a sample whose industries were renamed).
    """

    rename: Mapping[str, str] | None = None

    def response_table(self, industries: tuple[str, ...]) -> ResponseTable:
        return true_response_table(industries, self.rename)

    def logging_policy(self) -> LoggingPolicy:
        return sample_logging_policy()
