"""Question templates over the Maven CRM export (ingested with the maven profile; data ends 2017-12-31).

Gold answers are hand-written polars queries over the staged tables (see synth.py for the format). The
as-of date is the export's last date, as the as-of hint tells a user to do.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

AS_OF = datetime(2017, 12, 31, tzinfo=UTC)
OPEN = ["prospecting", "qualification"]


def _between(col: str, start: datetime | None, end: datetime | None) -> pl.Expr:
    e = pl.col(col).is_not_null()
    if start is not None:
        e = e & (pl.col(col) >= pl.lit(start, dtype=pl.Datetime("us", "UTC")))
    if end is not None:
        e = e & (pl.col(col) < pl.lit(end, dtype=pl.Datetime("us", "UTC")))
    return e


def d(y, m, day=1):
    return datetime(y, m, day, tzinfo=UTC)


def templates(T: dict[str, pl.DataFrame]) -> list[dict]:
    co, de = T["companies"], T["deals"]

    def cids(expr) -> set[str]:
        return set(co.filter(expr)["company_id"].to_list())

    def deals_of(expr, companies=None) -> set[str]:
        f = de.filter(expr)
        if companies is not None:
            f = f.filter(pl.col("company_id").is_in(list(companies)))
        return set(f["deal_id"].to_list())

    won = pl.col("stage") == "won"
    y2017 = _between("closed_at", d(2017, 1), d(2018, 1))
    value = pl.col("value").cast(pl.Float64)
    return [
        dict(
            name="maven_count_owner_wins",
            features=["count", "time_window", "vocabulary"],
            slots=[{"o": "Darcel Schlecht"}, {"o": "Vicki Laflamme"}, {"o": "Moses Frase"}],
            tuned=["how many deals did {o} win in 2017?", "number of deals won by {o} in 2017"],
            held_out=["count {o}'s wins during 2017"],
            gold=lambda s: ("value", de.filter(won & y2017 & (pl.col("owner") == s["o"])).height),
        ),
        dict(
            name="maven_won_tech_over",
            features=["money", "vocabulary", "time_window"],
            slots=[
                {"q": "Q3 2017", "a": d(2017, 7), "b": d(2017, 10)},
                {"q": "last quarter", "a": d(2017, 7), "b": d(2017, 10)},
            ],
            tuned=[
                "won deals over $5k in the technology sector in {q}",
                "technology deals won in {q} over $5k",
            ],
            held_out=["tech opportunities closed won in {q} worth more than $5,000"],
            gold=lambda s: (
                "set",
                deals_of(
                    won
                    & _between("closed_at", s["a"], s["b"])
                    & (value > 5000)
                    & (pl.col("currency") == "USD"),
                    cids(pl.col("industry") == "technology"),
                ),
            ),
        ),
        dict(
            name="maven_product",
            features=["vocabulary"],
            slots=[{"p": "GTX Pro"}, {"p": "GTXPro"}, {"p": "MG Special"}],
            tuned=["deals for {p}", "{p} deals"],
            held_out=["opportunities selling the {p}"],
            gold=lambda s: (
                "set",
                deals_of(pl.col("product") == ("GTX Pro" if s["p"] == "GTXPro" else s["p"])),
            ),
        ),
        dict(
            name="maven_finance",
            features=["synonyms", "vocabulary"],
            slots=[{"w": "fintech"}, {"w": "finance"}, {"w": "financial services"}],
            tuned=["{w} companies", "accounts in {w}"],
            held_out=["which organisations work in {w}"],
            gold=lambda s: ("set", cids(pl.col("industry") == "finance")),
        ),
        dict(
            name="maven_top_won",
            features=["top_k", "group_filter"],
            slots=[{"k": 5}],
            tuned=["top {k} accounts by won revenue", "top {k} companies by won value"],
            held_out=["the {k} accounts with the most won revenue"],
            gold=lambda s: (
                "list",
                co.select("company_id")
                .join(
                    de.filter(won).group_by("company_id").agg(value.sum().alias("w")),
                    on="company_id",
                    how="left",
                )
                .with_columns(pl.col("w").fill_null(0))
                .sort(["w", "company_id"], descending=[True, False])["company_id"]
                .head(s["k"])
                .to_list(),
            ),
        ),
        dict(
            name="maven_lost_last_quarter",
            features=["time_window"],
            slots=[{}],
            tuned=["deals lost last quarter", "lost deals last quarter"],
            held_out=["which opportunities did we lose in the previous quarter"],
            gold=lambda s: (
                "set",
                deals_of((pl.col("stage") == "lost") & _between("closed_at", d(2017, 7), d(2017, 10))),
            ),
        ),
        dict(
            name="maven_custom_office",
            features=["vocabulary", "custom_fields"],
            slots=[{"r": "Central"}, {"r": "West"}],
            tuned=["won deals in the {r} regional office", "{r} office deals that were won"],
            held_out=["wins from the {r} office"],
            gold=lambda s: ("set", deals_of(won & (pl.col("cf_regional_office") == s["r"]))),
        ),
        dict(
            name="maven_employees",
            features=["filters", "money"],
            slots=[{"n": 5000}],
            tuned=["companies with more than {n} employees", "accounts with over {n} employees"],
            held_out=["organisations employing more than {n} people"],
            gold=lambda s: ("set", cids(pl.col("employees") > s["n"])),
        ),
        dict(
            name="maven_won_count_filter",
            features=["group_filter", "vocabulary"],
            slots=[{"i": "medical", "n": 100}, {"i": "retail", "n": 150}],
            tuned=["{i} companies with more than {n} won deals", "{i} accounts with over {n} won deals"],
            held_out=["{i} organisations that won more than {n} deals"],
            gold=lambda s: (
                "set",
                cids(pl.col("industry") == s["i"])
                & set(
                    de.filter(won)
                    .group_by("company_id")
                    .len()
                    .filter(pl.col("len") > s["n"])["company_id"]
                    .drop_nulls()
                    .to_list()
                ),
            ),
        ),
        dict(
            name="maven_open_owner",
            features=["filters", "vocabulary"],
            slots=[{"o": "Darcel Schlecht"}],
            tuned=["open deals owned by {o}", "{o}'s open deals"],
            held_out=["{o} opportunities still in progress"],
            gold=lambda s: ("set", deals_of(pl.col("stage").is_in(OPEN) & (pl.col("owner") == s["o"]))),
        ),
        dict(
            name="maven_group_product",
            features=["group_by", "count"],
            slots=[{}],
            tuned=["won deals by product", "number of won deals per product"],
            held_out=["how many wins for each product"],
            gold=lambda s: (
                "groups",
                {r[0]: r[1] for r in de.filter(won).group_by("product").len().iter_rows()},
            ),
        ),
        dict(
            name="maven_sum_won",
            features=["aggregate", "time_window"],
            slots=[{}],
            tuned=["total value of deals won in 2017", "sum of won deal value in 2017"],
            held_out=["how much did we win in 2017"],
            gold=lambda s: ("value", round(float(de.filter(won & y2017).select(value.sum()).item()), 2)),
        ),
    ]
