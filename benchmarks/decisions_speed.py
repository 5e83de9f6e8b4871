"""Speed of next-best-action: batch recommendations for many contacts (encode, decide, explain). Prints JSON.

    .venv/bin/python benchmarks/decisions_speed.py [--contacts 100000] [--repeats 3]

The policy is a contextual Thompson policy trained on 20,000 simulated outcomes; contexts are drawn like
the generator's contacts. Reports contacts per second for the whole ``recommend`` call (context encoding,
win probabilities by quadrature, the convergence engine's draw, expected rates, reasons in words) and for
its parts, by wall time and by this process's CPU time (the machine is shared). Single-request latency through the API is measured by benchmarks/serving.py once the
recommendation route serves the champion policy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from holocrm_core.decisions.policies import ContextualThompson, SegmentThompson  # noqa: E402
from holocrm_core.decisions.recommend import recommend  # noqa: E402
from tests.support.decision_worlds import sample_contexts, true_probabilities  # noqa: E402


def trained(make, rng):
    frame = sample_contexts(20_000, rng)
    policy = make(seed=0)
    ctx = policy.encoder.encode(frame)
    a = rng.integers(0, 4, len(frame))
    policy.update(
        ctx, a, (rng.random(len(a)) < true_probabilities(frame)[np.arange(len(a)), a]).astype(float)
    )
    return policy


def best_of(repeats: int, fn, clock=time.perf_counter) -> float:
    times = []
    for _ in range(repeats):
        started = clock()
        fn()
        times.append(clock() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    contexts = (
        sample_contexts(args.contacts, rng)
        .with_row_index("contact_id")
        .with_columns(contact_id=("CON-" + np.char.zfill(np.arange(args.contacts).astype(str), 7)))
    )
    result = {"contacts": args.contacts, "load_average": os.getloadavg()[0]}
    for name, make in (("contextual_thompson", ContextualThompson), ("segment_thompson", SegmentThompson)):
        policy = trained(make, rng)
        encoded = policy.encoder.encode(contexts)
        parts = {
            "encode": best_of(args.repeats, lambda policy=policy: policy.encoder.encode(contexts)),
            "probabilities": best_of(
                args.repeats, lambda policy=policy, encoded=encoded: policy.probabilities(encoded)
            ),
            "recommend_total": best_of(args.repeats, lambda policy=policy: recommend(policy, contexts)),
        }
        result[name] = {f"{k}_seconds": round(v, 3) for k, v in parts.items()}
        result[name]["recommendations_per_second"] = round(args.contacts / parts["recommend_total"])
        # On a shared machine wall time counts other people's work too; CPU time of this process does not.
        cpu = best_of(
            args.repeats, lambda policy=policy: recommend(policy, contexts), clock=time.process_time
        )
        result[name]["recommendations_per_cpu_second"] = round(args.contacts / cpu)
        result[name]["target_50k_per_second_met"] = args.contacts / parts["recommend_total"] >= 50_000
    result["load_average_end"] = os.getloadavg()[0]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
