"""An experiment's report: who was exposed, whether the split is healthy, and what each variant did.

``analyse`` is pure (frames in, a :class:`Report` out) so the asset, the CLI, the API and the field
simulation read the same numbers. The verdict is in words and is blocked by a sample-ratio mismatch: with
a broken split no estimate is trusted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl

from holocrm_core.experiments import stats
from holocrm_core.experiments.metrics import METRICS, Metric, unit_values
from holocrm_core.experiments.model import Experiment

ALPHA = 0.05


@dataclass
class MetricResult:
    metric: str
    variant: str
    effect: stats.Effect
    adjusted: bool  # CUPED applied
    variance_reduction: float | None
    bayes: stats.Bayesian
    sequential: stats.Sequential

    def as_dict(self) -> dict:
        return {
            "metric": self.metric,
            "variant": self.variant,
            **self.effect.as_dict(),
            "cuped": self.adjusted,
            "variance_reduction": self.variance_reduction,
            "chance_to_win": self.bayes.chance_to_win,
            "expected_loss": self.bayes.expected_loss,
            "sequential_p_value": self.sequential.p_value,
            "sequential_ci": [self.sequential.ci_low, self.sequential.ci_high],
        }


@dataclass
class Report:
    experiment: str
    units: dict[str, int]
    crossovers: int  # units seen in more than one variant (excluded)
    srm: stats.SampleRatio
    results: list[MetricResult] = field(default_factory=list)
    verdict: str = ""
    decision: str = "continue"  # continue | ship:<variant> | keep_control | blocked
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "experiment": self.experiment,
            "units": self.units,
            "crossovers": self.crossovers,
            "srm": {
                "p_value": self.srm.p_value,
                "mismatch": self.srm.mismatch,
                "observed": self.srm.observed,
            },
            "results": [r.as_dict() for r in self.results],
            "verdict": self.verdict,
            "decision": self.decision,
            "notes": self.notes,
        }


def exposed_units(experiment: Experiment, exposures: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """unit_id, variant, first_exposed_at per unit; units seen in several variants are dropped (counted)."""
    frame = exposures.filter(pl.col("experiment") == experiment.name) if exposures.height else exposures
    if frame.height == 0:
        empty = pl.DataFrame(
            schema={"unit_id": pl.String, "variant": pl.String, "first_exposed_at": pl.Datetime("us", "UTC")}
        )
        return empty, 0
    if frame.schema["served_at"] == pl.String:
        frame = frame.with_columns(pl.col("served_at").str.to_datetime(time_zone="UTC", strict=False))
    units = frame.group_by("unit_id").agg(
        pl.col("variant").min().alias("variant"),
        pl.col("variant").max().alias("last_variant"),
        pl.col("served_at").min().alias("first_exposed_at"),
    )
    crossed = pl.col("variant") != pl.col("last_variant")  # a unit served two variants
    crossovers = units.filter(crossed).height
    return units.filter(~crossed).drop("last_variant"), crossovers


def _compare(
    metric: Metric, post: pl.DataFrame, pre: pl.DataFrame | None, control: str, variant: str, tau_scale: float
) -> MetricResult:
    c = post.filter(pl.col("variant") == control)
    t = post.filter(pl.col("variant") == variant)
    adjusted, reduction = False, None
    if metric.kind == "ratio":
        effect = stats.ratio_delta(c["num"], c["den"], t["num"], t["den"], ALPHA)
    else:
        yc, yt = c["num"].to_numpy(), t["num"].to_numpy()
        if pre is not None:
            covariate = pre.select("unit_id", pl.col("num").alias("pre"))
            xc = c.join(covariate, on="unit_id", how="left")["pre"].fill_null(0.0).to_numpy()
            xt = t.join(covariate, on="unit_id", how="left")["pre"].fill_null(0.0).to_numpy()
            if np.concatenate([xc, xt]).var() > 0:
                adj = stats.cuped(yc, yt, xc, xt)
                reduction = adj.variance_reduction
                if reduction > 0.01:  # only when the covariate helps; the means stay unbiased either way
                    yc, yt, adjusted = adj.control, adj.treatment, True
        effect = stats.welch(yc, yt, ALPHA)
        if adjusted:  # report the raw means, the adjusted difference and interval
            raw_c, raw_t = float(c["num"].mean()), float(t["num"].mean())
            effect = stats.Effect(
                raw_c, raw_t, effect.diff, effect.diff / raw_c if raw_c else None, effect.se,
                effect.ci_low, effect.ci_high, effect.p_value, effect.n_control, effect.n_treatment,
            )  # fmt: skip
    tau = max(tau_scale * abs(effect.control_mean), effect.se * 0.5) if effect.se else None
    return MetricResult(
        metric.name,
        variant,
        effect,
        adjusted,
        reduction,
        stats.bayesian(effect),
        stats.sequential(effect, tau),
    )


def analyse(experiment: Experiment, exposures: pl.DataFrame, events: pl.DataFrame) -> Report:
    """The whole report of one experiment from its exposures and the field events."""
    units, crossovers = exposed_units(experiment, exposures)
    counts = dict(units.group_by("variant").len().iter_rows()) if units.height else {}
    srm = stats.sample_ratio(counts, experiment.weights)
    report = Report(
        experiment.name, {v.name: int(counts.get(v.name, 0)) for v in experiment.variants}, crossovers, srm
    )
    if crossovers:
        report.notes.append(f"{crossovers} units were served more than one variant and are left out")
    control = experiment.control.name
    start = datetime.fromisoformat(experiment.start) if experiment.start else None
    for name in (experiment.primary_metric, *experiment.guardrails):
        metric = METRICS[name]
        post = unit_values(metric, units, events, experiment.window_days)
        pre = None
        if start is not None and metric.kind == "mean":
            pre = unit_values(metric, units, events, experiment.window_days, period="pre", start=start)
        for v in experiment.variants[1:]:
            if min(report.units[control], report.units[v.name]) < 2:
                continue
            try:
                report.results.append(_compare(metric, post, pre, control, v.name, experiment.relative_mde))
            except ValueError as exc:
                report.notes.append(f"{name} / {v.name}: {exc}")
    report.verdict, report.decision = _verdict(experiment, report)
    return report


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.1%}"


def _verdict(experiment: Experiment, report: Report) -> tuple[str, str]:
    if report.srm.mismatch:
        shares = ", ".join(f"{k} {n}" for k, n in report.srm.observed.items())
        return (
            f"BLOCKED: sample-ratio mismatch (p = {report.srm.p_value:.2g} < {stats.SRM_ALPHA}; units {shares}"
            " against the configured weights). Fix the assignment or the exposure logging before reading any"
            " estimate.",
            "blocked",
        )
    primary = [r for r in report.results if r.metric == experiment.primary_metric]
    if not primary:
        return "Not enough exposed units yet to compare the variants.", "continue"
    lines, winners = [], []
    for r in primary:
        e, s = r.effect, r.sequential
        better = e.diff > 0 if METRICS[r.metric].higher_is_better else e.diff < 0
        significant = s.p_value < ALPHA
        words = (
            f"{r.variant} vs {experiment.control.name} on {r.metric}: {e.treatment_mean:.4g} vs {e.control_mean:.4g}"
            f" ({_pct(e.lift)}; always-valid 95% interval of the difference [{s.ci_low:.4g}, {s.ci_high:.4g}],"
            f" p = {s.p_value:.3g}; chance to win {r.bayes.chance_to_win:.0%}"
            + (f"; CUPED cut the variance by {r.variance_reduction:.0%}" if r.adjusted else "")
            + ")"
        )
        if significant and better:
            words += f": {r.variant} is better."
            winners.append(r.variant)
        elif significant:
            words += f": {r.variant} is worse."
        else:
            words += ": no difference detected yet."
        lines.append(words)
    harmed = [
        r
        for r in report.results
        if r.metric in experiment.guardrails
        and r.sequential.p_value < ALPHA
        and ((r.effect.diff < 0) == METRICS[r.metric].higher_is_better)
    ]
    for r in harmed:
        lines.append(f"Guardrail {r.metric} is worse under {r.variant} ({_pct(r.effect.lift)}).")
    winners = [w for w in winners if w not in {r.variant for r in harmed}]
    if winners:
        best = max(
            (r for r in primary if r.variant in winners),
            key=lambda r: r.effect.diff * (1 if METRICS[r.metric].higher_is_better else -1),
        )
        return " ".join(lines) + f" Decision: ship {best.variant}.", f"ship:{best.variant}"
    if primary and all(r.sequential.p_value < ALPHA for r in primary):
        return " ".join(lines) + " Decision: keep the control.", "keep_control"
    return " ".join(lines), "continue"


def plot(report: Report, path: str | Path) -> Path:
    """Estimates with their always-valid intervals, one row per metric and variant (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = report.results
    fig, ax = plt.subplots(figsize=(7, 1 + 0.5 * max(len(rows), 1)))
    for i, r in enumerate(rows):
        ax.errorbar(
            r.effect.diff, i, xerr=[[r.effect.diff - r.sequential.ci_low], [r.sequential.ci_high - r.effect.diff]],
            fmt="o", capsize=4,
        )  # fmt: skip
    ax.axvline(0, color="grey", lw=1)
    ax.set_yticks(range(len(rows)), [f"{r.metric}: {r.variant}" for r in rows])
    ax.set_xlabel("difference vs control (always-valid 95% interval)")
    ax.set_title(f"{report.experiment}: {report.decision}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
