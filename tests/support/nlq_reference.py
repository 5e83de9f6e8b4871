"""Reference answers for NL questions, computed with plain polars over the staged tables (never the engine).

Used by the README-examples test: each README `holocrm ask` example maps to a function here that says what
the example's words mean (the semantic layer's definitions) and returns the ids or the number it must give.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

OPEN = ["prospecting", "qualification", "proposal", "negotiation"]


def _t(moment: datetime) -> pl.Expr:
    return pl.lit(moment, dtype=pl.Datetime("us", "UTC"))


def enterprise_fintech_leads_over_100k(T: dict[str, pl.DataFrame], as_of: datetime) -> set[str]:
    co, ct, de = T["companies"], T["contacts"], T["deals"]
    firms = co.filter((pl.col("industry") == "financial services") & (pl.col("size_band") == "enterprise"))
    pipe = (
        de.filter(pl.col("stage").is_in(OPEN) & (pl.col("currency") == "USD"))
        .group_by("company_id")
        .agg(pl.col("value").cast(pl.Float64).sum().alias("p"))
        .filter(pl.col("p") > 100_000)
    )
    ids = set(firms["company_id"]) & set(pipe["company_id"])
    leads = ct.filter((pl.col("lifecycle_status") == "lead") & pl.col("company_id").is_in(list(ids)))
    return set(leads["contact_id"])


def open_deals_untouched_two_weeks(T: dict[str, pl.DataFrame], as_of: datetime) -> set[str]:
    de, ac = T["deals"], T["activities"]
    end = datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC) + timedelta(days=1)
    touched = ac.filter(
        (pl.col("occurred_at") >= _t(end - timedelta(days=14))) & (pl.col("occurred_at") < _t(end))
    )
    return set(
        de.filter(
            pl.col("stage").is_in(OPEN) & ~pl.col("deal_id").is_in(touched["deal_id"].drop_nulls().to_list())
        )["deal_id"]
    )


def pipeline_by_region(T: dict[str, pl.DataFrame], as_of: datetime) -> dict[str, float]:
    co, de = T["companies"], T["deals"]
    rows = (
        de.filter(pl.col("stage").is_in(OPEN))
        .join(co.select("company_id", "region"), on="company_id", how="left")
        .group_by(["region", "currency"])
        .agg(pl.col("value").cast(pl.Float64).sum().alias("s"))
    )
    several = rows["currency"].n_unique() > 1
    return {
        (f"{r['region']} {r['currency']}" if several else str(r["region"])): r["s"]
        for r in rows.iter_rows(named=True)
    }


def win_rate_this_year(T: dict[str, pl.DataFrame], as_of: datetime) -> float:
    de = T["deals"]
    start = datetime(as_of.year, 1, 1, tzinfo=UTC)
    closed = de.filter(
        pl.col("stage").is_in(["won", "lost"])
        & (pl.col("closed_at") >= _t(start))
        & (pl.col("closed_at") < _t(start.replace(year=start.year + 1)))
    )
    return closed.filter(pl.col("stage") == "won").height / closed.height


def owner_wins_in_year(owner: str, year: int):
    def reference(T: dict[str, pl.DataFrame], as_of: datetime) -> int:
        de = T["deals"]
        start, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
        won = de.filter(
            (pl.col("stage") == "won")
            & (pl.col("owner") == owner)
            & (pl.col("closed_at") >= _t(start))
            & (pl.col("closed_at") < _t(end))
        )
        return won.height

    return reference
