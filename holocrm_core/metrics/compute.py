"""Computing a semantic-layer metric over rows: one definition for the NL answers, dashboards and experiments.

`compute_metric(layer, name, rows, stages)` takes the rows of the metric's table that a question (or a
dashboard tile) selected, already filtered, plus any group columns, and returns the figure: a number, a
{currency: number} when amounts in several currencies meet and the layer has no exchange rates, or one row
per group. Amounts in different currencies are never added together unless the layer gives rates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl

from holocrm_core.metrics.layer import Metric, SemanticLayer

DAY_SECONDS = 86_400.0


@dataclass(frozen=True)
class StageSets:
    """The data's own deal stages by kind (from the NL vocabulary, or given)."""

    open: tuple[str, ...] = ("prospecting", "qualification", "proposal", "negotiation")
    won: tuple[str, ...] = ("won",)
    lost: tuple[str, ...] = ("lost",)

    def resolve(self, column: str, value: Any) -> list[Any]:
        values = value if isinstance(value, (list, tuple)) else [value]
        out: list[Any] = []
        for v in values:
            if column == "stage" and v in ("open", "won", "lost", "closed"):
                out += {
                    "open": self.open,
                    "won": self.won,
                    "lost": self.lost,
                    "closed": self.won + self.lost,
                }[v]
            else:
                out.append(v)
        return out


@dataclass
class MetricResult:
    value: Any  # number, {currency: number}, or {"group [currency]": number}
    rows: pl.DataFrame
    notes: list[str] = field(default_factory=list)


def condition(where: dict[str, Any], stages: StageSets, frame: pl.DataFrame) -> pl.Expr:
    """`where` as a polars expression over `frame` (every column checked to exist)."""
    expr = pl.lit(True)
    for column, value in where.items():
        if column not in frame.columns:
            raise ValueError(f"the metric's condition names {column!r}, which the table does not have")
        expr = expr & pl.col(column).is_in(stages.resolve(column, value))
    return expr


def metric_column(metric: Metric, frame: pl.DataFrame, as_of: datetime | None = None) -> pl.Expr:
    """The per-row figure a metric aggregates ("value", days from creation to close, stage age)."""
    name = metric.field
    if name == "value":
        return pl.col("_value") if "_value" in frame.columns else pl.col("value").cast(pl.Float64)
    if name == "days_to_close":
        return (pl.col("closed_at") - pl.col("created_at")).dt.total_seconds() / DAY_SECONDS
    if name == "days_since_last_touch":
        if "_last_touch" not in frame.columns:
            raise ValueError(
                f"metric {metric.name} needs each row's last touch: add it with with_last_touch()"
            )
        moment = pl.lit(as_of, dtype=pl.Datetime("us", "UTC"))
        return (moment - pl.col("_last_touch")).dt.total_seconds() / DAY_SECONDS
    if name == "stage_age_days":
        since = pl.coalesce(pl.col("stage_changed_at"), pl.col("created_at"))
        moment = pl.lit(as_of, dtype=pl.Datetime("us", "UTC"))
        return (moment - since).dt.total_seconds() / DAY_SECONDS
    if name not in frame.columns:
        raise ValueError(f"metric {metric.name}: the table has no column {name!r}")
    return pl.col(name).cast(pl.Float64)


def compute_metric(
    layer: SemanticLayer,
    name: str,
    rows: pl.DataFrame,
    stages: StageSets | None = None,
    group_keys: list[str] | None = None,
    as_of: datetime | None = None,
) -> MetricResult:
    metric = layer.metric(name)
    stages = stages or StageSets()
    keys = list(group_keys or [])
    notes: list[str] = []
    frame = rows.filter(condition(metric.where, stages, rows)) if metric.where else rows
    per_value = metric.money or (metric.aggregate == "ratio" and metric.field == "value")
    if per_value and "currency" in frame.columns and frame.get_column("currency").drop_nulls().n_unique() > 1:
        if layer.rates and layer.reporting_currency:
            frame = _converted(frame, layer)
            notes.append(f"amounts converted to {layer.reporting_currency} at the mapping's rates")
        else:
            keys.append("currency")
            notes.append("amounts are per currency (no exchange rates in the mapping)")
    if per_value and "currency" in frame.columns and "currency" not in keys:
        value_col = "_value" if "_value" in frame.columns else "value"
        frame = frame.filter(pl.col("currency").is_not_null() | pl.col(value_col).is_not_null())
    expr = _aggregate(metric, frame, stages, as_of).alias(metric.name)
    if keys:
        out = frame.group_by(keys).agg(expr)
        out = out.filter(pl.col(metric.name).is_not_null()) if metric.aggregate in ("ratio", "mean") else out
        out = out.sort([metric.name, *keys], descending=[True] + [False] * len(keys), nulls_last=True)
        value = {" ".join(str(r[k]) for k in keys): _round(r[metric.name]) for r in out.iter_rows(named=True)}
        if keys == ["currency"]:
            value = {str(k): v for k, v in value.items()}
        return MetricResult(value, out, notes)
    out = frame.select(expr)
    return MetricResult(_round(out.item(0, 0)) if out.height else None, out, notes)


def with_last_touch(
    rows: pl.DataFrame, activities: pl.DataFrame, key: str, as_of: datetime | None = None
) -> pl.DataFrame:
    """`rows` with `_last_touch`: the time of the latest activity linked by `key` (contact_id, deal_id or
    company_id) at or before `as_of`; null for a record never touched."""
    acts = activities.filter(pl.col(key).is_not_null() & pl.col("occurred_at").is_not_null())
    if as_of is not None:
        acts = acts.filter(pl.col("occurred_at") <= pl.lit(as_of, dtype=pl.Datetime("us", "UTC")))
    last = acts.group_by(key).agg(pl.col("occurred_at").max().alias("_last_touch"))
    return rows.join(last, on=key, how="left")


def _aggregate(metric: Metric, frame: pl.DataFrame, stages: StageSets, as_of: datetime | None) -> pl.Expr:
    if metric.aggregate == "count":
        return pl.len()
    if metric.aggregate == "ratio":
        num = condition(metric.numerator, stages, frame)
        if metric.denominator:
            den = condition(metric.denominator, stages, frame)
        else:  # a literal True would broadcast to one row, not to every row of the frame
            den = pl.repeat(True, pl.len())
        if metric.field:
            col = metric_column(metric, frame, as_of)
            top, bottom = col.filter(num & den).sum(), col.filter(den).sum()
        else:
            top, bottom = (num & den).sum(), den.sum()
        return pl.when(bottom > 0).then(top.cast(pl.Float64) / bottom).otherwise(None)
    col = metric_column(metric, frame, as_of)
    return col.sum() if metric.aggregate == "sum" else col.mean()  # derived: the average per record


def _converted(frame: pl.DataFrame, layer: SemanticLayer) -> pl.DataFrame:
    rates = {**layer.rates, layer.reporting_currency: 1.0}
    rate = pl.col("currency").str.to_uppercase().replace_strict(rates, default=None, return_dtype=pl.Float64)
    value = "_value" if "_value" in frame.columns else "value"
    return frame.with_columns(
        (pl.col(value).cast(pl.Float64) * rate).alias(value),
        pl.lit(layer.reporting_currency).alias("currency"),
    )


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    return value
