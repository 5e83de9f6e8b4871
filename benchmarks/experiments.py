"""How trustworthy are experiment reports? A/A false positives, peeking, SRM, CUPED, speed (prints JSON).

    .venv/bin/python benchmarks/experiments.py [--seeds 1000] [--quick]

- fixed: A/A tests through the real assignment (hash of experiment, salt, unit) and the real report
  (``analyse``): share of seeds where Welch's test says p < 0.05 (target 0.04-0.06).
- sequential: A/A with the report read every day for 14 days; share of seeds where the always-valid p-value
  ever dips below 0.05 (target <= 0.05). The fixed-horizon p-value under the same peeking is printed beside
  it (what peeking costs without the sequential test).
- srm: 10% of the treatment's exposures lost (a logging bug): share of runs flagged (target >= 99%), and
  share of clean runs flagged (target <= 0.2%).
- cuped: variance reduction with a pre-period covariate correlated ~0.7 with the outcome (expect 30-60%).
- speed: assignment p95 in process (target < 1 ms); one report over 1,000,000 exposures (target < 10 s).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from holocrm_core.experiments import Assigner, Experiment, Variant, analyse, stats

START = datetime(2026, 1, 1, tzinfo=UTC)


def _experiment(seed: int, metric: str = "mean_reward") -> Experiment:
    return Experiment(
        f"aa-{seed}",
        "contact",
        (Variant("control", "decisions.cadence"), Variant("treatment", "decisions.policy")),
        metric,
        salt=str(seed),
        start=START.isoformat(),
    )


def _frames(exp: Experiment, ids: np.ndarray, variants: list[str], rewards: np.ndarray, days: np.ndarray):
    served = [START + timedelta(days=int(d)) for d in days]
    exposures = pl.DataFrame(
        {"experiment": exp.name, "unit_id": ids, "variant": variants, "served_at": served},
        schema_overrides={"served_at": pl.Datetime("us", "UTC")},
    )
    events = pl.DataFrame(
        {
            "unit_id": ids,
            "at": [s + timedelta(hours=1) for s in served],
            "reward": rewards,
            "responded": (rewards > 0).astype(float),
            "won": 0.0,
            "lost": 0.0,
            "closed": 0.0,
            "won_value": 0.0,
            "won_any": 0.0,
        },
        schema_overrides={"at": pl.Datetime("us", "UTC")},
    )
    return exposures, events


def fixed_aa(seeds: int, n: int) -> dict:
    hits = 0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        exp = _experiment(seed, "response_rate")
        ids = np.array([f"c{seed}-{i}" for i in range(n)])
        variants = [Assigner(exp)(u) for u in ids]
        rewards = (rng.random(n) < 0.2).astype(float)  # a response rate of 20% in both arms
        exposures, events = _frames(exp, ids, variants, rewards, np.zeros(n))
        report = analyse(exp, exposures, events)
        hits += report.results[0].effect.p_value < 0.05
    return {"seeds": seeds, "units": n, "false_positive_rate": hits / seeds, "target": "0.04-0.06"}


def sequential_aa(seeds: int, per_day: int, days: int) -> dict:
    seq_hits = fixed_hits = 0
    for seed in range(seeds):
        rng = np.random.default_rng(10_000 + seed)
        n = per_day * days
        arm = rng.random(n) < 0.5
        y = rng.lognormal(0, 1, n) * (rng.random(n) < 0.3)
        ever_seq = ever_fixed = False
        for day in range(1, days + 1):
            k = per_day * day
            effect = stats.welch(y[:k][~arm[:k]], y[:k][arm[:k]])
            tau = max(0.1 * abs(effect.control_mean), 0.5 * effect.se)
            ever_seq |= stats.sequential(effect, tau).p_value < 0.05
            ever_fixed |= effect.p_value < 0.05
        seq_hits += ever_seq
        fixed_hits += ever_fixed
    return {
        "seeds": seeds,
        "peeks": days,
        "units_per_day": per_day,
        "sequential_false_positive_rate": seq_hits / seeds,
        "fixed_test_under_peeking": fixed_hits / seeds,
        "target": "<= 0.05",
    }


def srm(seeds: int, n: int) -> dict:
    weights = {"control": 1.0, "treatment": 1.0}
    flagged_bias = flagged_clean = 0
    for seed in range(seeds):
        rng = np.random.default_rng(20_000 + seed)
        arm = rng.random(n) < 0.5
        clean = {"control": int((~arm).sum()), "treatment": int(arm.sum())}
        kept = arm & (rng.random(n) < 0.9)  # 10% of the treatment's exposures never logged
        biased = {"control": clean["control"], "treatment": int(kept.sum())}
        flagged_clean += stats.sample_ratio(clean, weights).mismatch
        flagged_bias += stats.sample_ratio(biased, weights).mismatch
    return {
        "seeds": seeds,
        "units": n,
        "detected_with_10pct_bias": flagged_bias / seeds,
        "flagged_clean": flagged_clean / seeds,
        "targets": {"detected": ">= 0.99", "flagged_clean": "<= 0.002"},
    }


def cuped(seeds: int, n: int) -> dict:
    reductions, coverage = [], 0
    for seed in range(seeds):
        rng = np.random.default_rng(30_000 + seed)
        x = rng.normal(10, 3, n)
        y = 0.7 * (x - 10) / 3 + rng.normal(0, 0.714, n) + 5
        arm = rng.random(n) < 0.5
        y = y + 0.05 * arm
        adj = stats.cuped(y[~arm], y[arm], x[~arm], x[arm])
        reductions.append(adj.variance_reduction)
        e = stats.welch(adj.control, adj.treatment)
        coverage += e.ci_low <= 0.05 <= e.ci_high
    return {
        "seeds": seeds,
        "units": n,
        "covariate_correlation": 0.7,
        "variance_reduction_mean": float(np.mean(reductions)),
        "adjusted_ci_coverage": coverage / seeds,
    }


def speed(n_exposures: int) -> dict:
    exp = _experiment(1)
    assigner = Assigner(exp)
    times = []
    for i in range(20_000):
        t = time.perf_counter()
        assigner(f"contact-{i}")
        times.append(time.perf_counter() - t)
    rng = np.random.default_rng(5)
    n_units = n_exposures // 2
    ids = np.array([f"u{i}" for i in range(n_units)])
    variants = np.where(rng.random(n_units) < 0.5, "control", "treatment")
    unit_idx = rng.integers(0, n_units, n_exposures)
    exposures = pl.DataFrame(
        {
            "experiment": exp.name,
            "unit_id": ids[unit_idx],
            "variant": variants[unit_idx],
            "offset": rng.integers(0, 86400 * 7, n_exposures),
        }
    ).with_columns(
        (pl.lit(START).dt.convert_time_zone("UTC") + pl.duration(seconds=pl.col("offset"))).alias("served_at")
    )
    events = pl.DataFrame(
        {
            "unit_id": ids,
            "reward": rng.random(n_units),
        }
    ).with_columns(
        pl.lit(START + timedelta(days=8)).dt.convert_time_zone("UTC").alias("at"),
        (pl.col("reward") > 0.5).cast(pl.Float64).alias("responded"),
        *(pl.lit(0.0).alias(c) for c in ("won", "lost", "closed", "won_value", "won_any")),
    )
    exp = Experiment(
        exp.name, exp.unit, exp.variants, "mean_reward", window_days=30, salt="1", start=START.isoformat()
    )
    t = time.perf_counter()
    report = analyse(exp, exposures, events)
    elapsed = time.perf_counter() - t
    return {
        "assignment_p95_ms": float(np.percentile(times, 95) * 1000),
        "assignment_p50_ms": float(np.percentile(times, 50) * 1000),
        "report_exposures": n_exposures,
        "report_seconds": elapsed,
        "report_units": sum(report.units.values()),
        "targets": {"assignment_p95_ms": "< 1", "report_seconds": "< 10"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="200 seeds, 100k exposures")
    args = parser.parse_args()
    seeds = 200 if args.quick else args.seeds
    out = {"load_average_start": os.getloadavg()[0]}
    out["fixed"] = fixed_aa(seeds, 2000)
    out["sequential"] = sequential_aa(seeds, 100, 14)
    out["srm"] = srm(max(seeds, 1000) if not args.quick else seeds, 20_000)
    out["cuped"] = cuped(seeds, 2000)
    out["speed"] = speed(100_000 if args.quick else 1_000_000)
    out["load_average_end"] = os.getloadavg()[0]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
