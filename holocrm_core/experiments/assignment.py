"""Deterministic assignment: the same unit gets the same variant of the same experiment, always.

``bucket = sha256(name | salt | unit_id)`` read as a number in [0, 1), then the variant whose cumulative
weight covers it. Nothing is stored, so assignment survives restarts, new exports and several servers.
Exposures (an answer of a variant was served) are logged by the serving layer, once per answer.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from itertools import accumulate

from holocrm_core.experiments.model import Experiment


def bucket(experiment: str, salt: str, unit_id: str) -> float:
    digest = hashlib.sha256(f"{experiment}|{salt}|{unit_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class Assigner:
    """Assignment for one experiment, with its cumulative weights computed once."""

    def __init__(self, experiment: Experiment):
        self.experiment = experiment
        total = sum(v.weight for v in experiment.variants)
        self._edges = list(accumulate(v.weight / total for v in experiment.variants))[:-1]
        self._names = [v.name for v in experiment.variants]

    def __call__(self, unit_id: str) -> str:
        e = self.experiment
        return self._names[bisect_right(self._edges, bucket(e.name, e.salt, str(unit_id)))]


def assign(experiment: Experiment, unit_id: str) -> str:
    """The variant name ``unit_id`` sees in ``experiment``."""
    return Assigner(experiment)(unit_id)


def exposure_key(experiment: str, unit_id: str, answer_id: str) -> str:
    """The idempotency key of one served answer's exposure: logged once however often it is retried."""
    return f"exp:{experiment}:{unit_id}:{answer_id}"
