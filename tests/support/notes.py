"""Generated sales-call notes with buying signals and warnings whose outcome depends on them (note rater tests)."""

from __future__ import annotations

import numpy as np

NAMES = ["Ana", "Ben", "Chen", "Dara", "Eli", "Fay", "Gus", "Hana"]
NEUTRAL = ["Walked through the demo.", "Shared a case study.", "Discussed the integration plan."]
SIGNALS = ["Budget approved for this quarter.", "They asked for a formal quote."]
WARNINGS = ["Went with a competitor for now.", "No response since the demo."]


def note_records(n: int, seed: int = 0):
    """``n`` records of notes: (record index per note, notes, outcome per record)."""
    rng = np.random.default_rng(seed)
    record, notes, y = [], [], []
    for r in range(n):
        signals, warnings = rng.poisson(0.6), rng.poisson(0.6)
        kinds = ["signal"] * signals + ["warning"] * warnings + ["neutral"] * (1 + rng.poisson(2))
        for kind in kinds:
            pool = {"signal": SIGNALS, "warning": WARNINGS, "neutral": NEUTRAL}[kind]
            opener = f"Call with {NAMES[rng.integers(len(NAMES))]}."
            notes.append(f"{opener} {pool[rng.integers(len(pool))]} {NEUTRAL[rng.integers(len(NEUTRAL))]}")
            record.append(r)
        y.append(int(rng.random() < 1 / (1 + np.exp(-(1.2 * signals - 1.2 * warnings)))))
    return np.array(record), notes, np.array(y)
