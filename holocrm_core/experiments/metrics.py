"""Experiment metrics, defined once by name, computed per unit from the field logs.

A metric turns the events that reached a unit within ``window_days`` of its first exposure into one
number per unit (a mean metric) or a numerator and a denominator (a ratio metric, compared by the delta
method). The same definitions give the pre-period covariate that CUPED uses: the same metric over the
window before the experiment started.

Events come from the durable logs the API writes (``actions.ndjson``: an action and its reward;
``outcomes.ndjson``: a deal closed won or lost) joined to the staged deals for value, contact and owner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import polars as pl


@dataclass(frozen=True)
class Metric:
    name: str
    description: str
    kind: str  # "mean" or "ratio"
    numerator: str  # event column summed per unit
    denominator: str | None = None  # event column summed per unit (ratio metrics)
    higher_is_better: bool = True


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "response_rate", "share of units with a rewarded action within the window", "mean", "responded"
        ),
        Metric("mean_reward", "sum of action rewards per unit within the window", "mean", "reward"),
        Metric("conversion", "share of units with a deal won within the window", "mean", "won_any"),
        Metric("won_value", "won deal value per unit within the window", "mean", "won_value"),
        Metric("win_rate", "won deals / closed deals within the window (ratio)", "ratio", "won", "closed"),
        Metric(
            "value_per_closed_deal",
            "won value / closed deals within the window (ratio)",
            "ratio",
            "won_value",
            "closed",
        ),
        Metric(
            "lost_deals", "deals lost per unit within the window (guardrail)", "mean", "lost", None, False
        ),
    )
}

EVENT_SCHEMA = {
    "unit_id": pl.String,
    "at": pl.Datetime("us", "UTC"),
    "reward": pl.Float64,
    "responded": pl.Float64,
    "won": pl.Float64,
    "lost": pl.Float64,
    "closed": pl.Float64,
    "won_value": pl.Float64,
    "won_any": pl.Float64,  # the won flag, clipped to one per unit by unit_values
}


def _ts(frame: pl.DataFrame, *columns: str) -> pl.Expr:
    """The first of ``columns`` that the frame has and that parses, as a UTC timestamp."""
    present = [
        pl.col(c).cast(pl.String).str.to_datetime(time_zone="UTC", strict=False)
        for c in columns
        if c in frame.columns
    ]
    return pl.coalesce(present) if present else pl.lit(None, pl.Datetime("us", "UTC"))


def events_from_logs(
    unit: str,
    actions: list[dict] | pl.DataFrame,
    outcomes: list[dict] | pl.DataFrame,
    deals: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per field event, keyed by the experiment's unit (contact, deal or owner)."""
    frames = []
    acts = actions if isinstance(actions, pl.DataFrame) else pl.DataFrame(actions, infer_schema_length=None)
    if acts.height:
        acts = acts.with_columns(_ts(acts, "taken_at", "recorded_at").alias("at"))
        key = {"contact": "contact_id", "deal": "deal_id"}.get(unit)
        if unit == "owner" and deals is not None and "contact_id" in acts.columns:
            owners = deals.select("contact_id", "owner").drop_nulls().unique("contact_id")
            acts = acts.join(owners, on="contact_id", how="left")
            key = "owner"
        if key and key in acts.columns:
            reward = pl.col("reward").cast(pl.Float64).fill_null(0.0)
            frames.append(
                acts.select(
                    pl.col(key).cast(pl.String).alias("unit_id"),
                    "at",
                    reward.alias("reward"),
                    (reward > 0).cast(pl.Float64).alias("responded"),
                )
            )
    outs = (
        outcomes if isinstance(outcomes, pl.DataFrame) else pl.DataFrame(outcomes, infer_schema_length=None)
    )
    if outs.height and "deal_id" in outs.columns:
        outs = outs.with_columns(_ts(outs, "closed_at", "recorded_at").alias("at"))
        if deals is not None:
            cols = [c for c in ("deal_id", "contact_id", "owner", "value") if c in deals.columns]
            outs = outs.join(deals.select(cols).unique("deal_id"), on="deal_id", how="left")
        value = (
            pl.col("value").cast(pl.Float64, strict=False).fill_null(0.0)
            if "value" in outs.columns
            else pl.lit(0.0)
        )
        key = {"contact": "contact_id", "deal": "deal_id", "owner": "owner"}[unit]
        if key in outs.columns:
            won = (pl.col("outcome") == "won").cast(pl.Float64)
            frames.append(
                outs.select(
                    pl.col(key).cast(pl.String).alias("unit_id"),
                    "at",
                    won.alias("won"),
                    (pl.col("outcome") == "lost").cast(pl.Float64).alias("lost"),
                    pl.lit(1.0).alias("closed"),
                    (won * value).alias("won_value"),
                )
            )
    if not frames:
        return pl.DataFrame(schema=EVENT_SCHEMA)
    events = pl.concat(frames, how="diagonal_relaxed")
    return events.select(
        pl.col(c).cast(t) if c in events.columns else pl.lit(0.0, t).alias(c) for c, t in EVENT_SCHEMA.items()
    ).with_columns(
        pl.exclude("unit_id", "at", "won_any").fill_null(0.0), pl.col("won").fill_null(0.0).alias("won_any")
    )


def unit_values(
    metric: Metric,
    units: pl.DataFrame,
    events: pl.DataFrame,
    window_days: int,
    period: str = "post",
    start: object | None = None,
) -> pl.DataFrame:
    """Per unit (``units``: unit_id, variant, first_exposed_at): the metric's numerator (and denominator).

    ``period="post"``: events in [first exposure, first exposure + window). ``period="pre"``: events in
    [start - window, start), the CUPED covariate (``start`` = the experiment's start).
    """
    window = timedelta(days=window_days)
    joined = units.select("unit_id", "first_exposed_at").join(events, on="unit_id", how="inner")
    if period == "post":
        lo, hi = pl.col("first_exposed_at"), pl.col("first_exposed_at") + window
    else:
        lo, hi = pl.lit(start) - window, pl.lit(start)
    inside = joined.filter((pl.col("at") >= lo) & (pl.col("at") < hi))
    sums = [pl.col(metric.numerator).sum().alias("num")]
    if metric.denominator:
        sums.append(pl.col(metric.denominator).sum().alias("den"))
    per_unit = inside.group_by("unit_id").agg(sums)
    if metric.numerator in ("responded", "won_any"):
        per_unit = per_unit.with_columns(pl.col("num").clip(0, 1))
    out = units.select("unit_id", "variant").join(per_unit, on="unit_id", how="left")
    fill = [pl.col("num").fill_null(0.0)]
    if metric.denominator:
        fill.append(pl.col("den").fill_null(0.0))
    return out.with_columns(fill)
