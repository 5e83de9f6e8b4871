"""The blind set: questions as a salesperson would type them, written after the last parser change.

Written once, on 2026-12-02, after commit 6b2c889 (the last change to holocrm_core/nlq/ before this file),
and never used to change the parser. What each question means was decided here, before it was first asked;
the gold answers are hand-written polars queries over the staged tables (generated export seed 0 as of
2026-10-31, and the Maven export as of 2017-12-31), never the parser or the executor.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from benchmarks.nlq_questions.synth import HashNeighbours

OPEN = ["prospecting", "qualification", "proposal", "negotiation"]
MAVEN_OPEN = ["prospecting", "qualification"]


def _d(y: int, m: int, day: int = 1) -> datetime:
    return datetime(y, m, day, tzinfo=UTC)


def _in(col: str, start: datetime | None, end: datetime | None) -> pl.Expr:
    e = pl.col(col).is_not_null()
    if start is not None:
        e = e & (pl.col(col) >= pl.lit(start, dtype=pl.Datetime("us", "UTC")))
    if end is not None:
        e = e & (pl.col(col) < pl.lit(end, dtype=pl.Datetime("us", "UTC")))
    return e


def _ids(frame: pl.DataFrame, col: str) -> tuple:
    return ("set", set(frame[col].to_list()))


def synth_questions(T: dict[str, pl.DataFrame]) -> list[tuple[str, tuple]]:
    co, ct, de, ac = T["companies"], T["contacts"], T["deals"], T["activities"]
    tomorrow = _d(2026, 11, 1)
    value = pl.col("value").cast(pl.Float64)
    is_open = pl.col("stage").is_in(OPEN)

    def companies(expr) -> list[str]:
        return co.filter(expr)["company_id"].to_list()

    def contacts_at(expr, extra=pl.lit(True)) -> pl.DataFrame:
        return ct.filter(pl.col("company_id").is_in(companies(expr)) & extra)

    def deals_at(expr, extra=pl.lit(True)) -> pl.DataFrame:
        return de.filter(pl.col("company_id").is_in(companies(expr)) & extra)

    def touched(col: str, types=None, start=None, end=None) -> list[str]:
        f = ac if types is None else ac.filter(pl.col("type").is_in(types))
        return f.filter(_in("occurred_at", start, end))[col].drop_nulls().unique().to_list()

    sim = HashNeighbours(T)
    liam = ct.filter(pl.col("full_name") == "Liam Watanabe")["contact_id"][0]
    like_liam = [h["id"] for h in sim.similar("contact", liam, limit=10)]
    retail_open = deals_at(pl.col("industry") == "retail", is_open).with_columns(value.alias("v"))
    since = pl.coalesce(pl.col("stage_changed_at"), pl.col("created_at"))
    q = []
    q.append(
        (
            "open opps for Thanh White",
            _ids(de.filter(is_open & (pl.col("owner") == "Thanh White")), "deal_id"),
        )
    )
    lost_ravi = de.filter(
        (pl.col("stage") == "lost")
        & (pl.col("owner") == "Ravi Pérez")
        & _in("closed_at", _d(2026, 1), _d(2027, 1))
    )
    q.append(("how many deals did Ravi Perez lose this yr", ("value", lost_ravi.height)))
    q.append(
        (
            "healthcare accts in emea",
            _ids(
                co.filter((pl.col("industry") == "healthcare") & (pl.col("region") == "EMEA")), "company_id"
            ),
        )
    )
    q.append(
        (
            "enterprise cos in germany",
            _ids(
                co.filter((pl.col("size_band") == "enterprise") & (pl.col("country") == "Germany")),
                "company_id",
            ),
        )
    )
    closing = de.filter(
        is_open
        & _in("expected_close_at", _d(2026, 11), _d(2026, 12))
        & (pl.col("currency") == "USD")
        & (value > 20000)
    )
    q.append(("deals closing next month over $20k", _ids(closing, "deal_id")))
    called = touched("contact_id", ["call"], tomorrow - timedelta(days=30), tomorrow)
    q.append(
        (
            "contacts at software companies we havent called in 30 days",
            _ids(
                contacts_at(pl.col("industry") == "software", ~pl.col("contact_id").is_in(called)),
                "contact_id",
            ),
        )
    )
    q.append(
        (
            "number of won deals per product",
            (
                "groups",
                {
                    r[0]: r[1]
                    for r in de.filter(pl.col("stage") == "won").group_by("product").len().iter_rows()
                },
            ),
        )
    )
    q.append(
        (
            "vps in fintech",
            _ids(
                contacts_at(pl.col("industry") == "financial services", pl.col("seniority") == "vp"),
                "contact_id",
            ),
        )
    )
    q.append(("contacts from web", _ids(ct.filter(pl.col("cf_lead_source") == "web"), "contact_id")))
    q.append(
        (
            "deals stuck in proposal for more than 45 days",
            _ids(
                de.filter(
                    (pl.col("stage") == "proposal")
                    & since.is_not_null()
                    & (since < pl.lit(tomorrow - timedelta(days=45), dtype=pl.Datetime("us", "UTC")))
                ),
                "deal_id",
            ),
        )
    )
    q.append(
        (
            "companies with no deals",
            _ids(
                co.filter(~pl.col("company_id").is_in(de["company_id"].drop_nulls().unique().to_list())),
                "company_id",
            ),
        )
    )
    q.append(
        (
            "deals w/o activity in the past month",
            _ids(  # only open deals wait for a touch: meaning changed by issue 24 (was every deal)
                de.filter(
                    is_open & ~pl.col("deal_id").is_in(touched("deal_id", None, _d(2026, 10), tomorrow))
                ),
                "deal_id",
            ),
        )
    )
    q.append(
        (
            "lost deals in q2 of 2026",
            _ids(
                de.filter((pl.col("stage") == "lost") & _in("closed_at", _d(2026, 4), _d(2026, 7))), "deal_id"
            ),
        )
    )
    q.append(
        (
            "total number of deals created in the first half of 2026",
            ("value", de.filter(_in("created_at", _d(2026, 1), _d(2026, 7))).height),
        )
    )
    q.append(("contacts like Liam Watanabe", ("list", like_liam)))
    q.append(
        (
            "customers in japan",
            _ids(
                contacts_at(pl.col("country") == "Japan", pl.col("lifecycle_status") == "customer"),
                "contact_id",
            ),
        )
    )
    top3 = (
        retail_open.sort(["v", "deal_id"], descending=[True, False], nulls_last=True)["deal_id"]
        .head(3)
        .to_list()
    )
    q.append(("3 biggest open deals in retail", ("list", top3)))
    per_company = ct.group_by("company_id").len()
    q.append(
        (
            "accounts with more than 10 contacts",
            _ids(
                co.filter(
                    pl.col("company_id").is_in(per_company.filter(pl.col("len") > 10)["company_id"].to_list())
                ),
                "company_id",
            ),
        )
    )
    q.append(
        (
            "emails last wk",
            _ids(
                ac.filter(
                    (pl.col("type") == "email") & _in("occurred_at", _d(2026, 10, 19), _d(2026, 10, 26))
                ),
                "activity_id",
            ),
        )
    )
    q.append(
        (
            "open Data Platform deals over $50k",
            _ids(
                de.filter(
                    is_open
                    & (pl.col("product") == "Data Platform")
                    & (pl.col("currency") == "USD")
                    & (value > 50000)
                ),
                "deal_id",
            ),
        )
    )
    q.append(
        (
            "who hasnt been contacted since august",
            _ids(
                ct.filter(~pl.col("contact_id").is_in(touched("contact_id", None, _d(2026, 8), None))),
                "contact_id",
            ),
        )
    )
    q.append(
        (
            "deals in negotiation worth more than €10k",
            _ids(
                de.filter(
                    (pl.col("stage") == "negotiation") & (pl.col("currency") == "EUR") & (value > 10000)
                ),
                "deal_id",
            ),
        )
    )
    q.append(
        (
            "smb companies in the uk",
            _ids(
                co.filter((pl.col("size_band") == "smb") & (pl.col("country") == "United Kingdom")),
                "company_id",
            ),
        )
    )
    q.append(
        (
            "directors at large companies that are customers",
            _ids(
                contacts_at(
                    pl.col("size_band") == "enterprise",
                    (pl.col("seniority") == "director") & (pl.col("lifecycle_status") == "customer"),
                ),
                "contact_id",
            ),
        )
    )
    return q


def maven_questions(T: dict[str, pl.DataFrame]) -> list[tuple[str, tuple]]:
    co, de = T["companies"], T["deals"]
    won, lost = pl.col("stage") == "won", pl.col("stage") == "lost"
    value = pl.col("value").cast(pl.Float64)
    q = []
    darcel = de.filter(
        won & (pl.col("owner") == "Darcel Schlecht") & _in("closed_at", _d(2017, 10), _d(2018, 1))
    )
    q.append(("how many deals did darcel schlecht win in the 4th quarter of 2017", ("value", darcel.height)))
    q.append(
        ("lost GTX Plus Pro deals", _ids(de.filter(lost & (pl.col("product") == "GTX Plus Pro")), "deal_id"))
    )
    q.append(
        (
            "software cos with over 5000 employees",
            _ids(co.filter((pl.col("industry") == "software") & (pl.col("employees") > 5000)), "company_id"),
        )
    )
    q.append(
        (
            "accounts founded in the 1990s",
            _ids(co.filter(pl.col("cf_year_established").is_between(1990, 1999)), "company_id"),
        )
    )
    q.append(
        (
            "subsidiaries of Massive Dynamic",
            _ids(co.filter(pl.col("parent_company_id") == "massive-dynamic"), "company_id"),
        )
    )
    q.append(
        (
            "open deals with no account in the West office",
            _ids(
                de.filter(
                    pl.col("stage").is_in(MAVEN_OPEN)
                    & pl.col("company_id").is_null()
                    & (pl.col("cf_regional_office") == "West")
                ),
                "deal_id",
            ),
        )
    )
    wins = de.filter(won & _in("closed_at", _d(2017, 1), _d(2018, 1))).group_by("cf_regional_office").len()
    q.append(
        ("number of wins per regional office in 2017", ("groups", {r[0]: r[1] for r in wins.iter_rows()}))
    )
    q.append(
        (
            "engaging deals Moses Frase owns",
            _ids(
                de.filter((pl.col("stage") == "qualification") & (pl.col("owner") == "Moses Frase")),
                "deal_id",
            ),
        )
    )
    june = de.filter(
        won & _in("closed_at", _d(2017, 6), _d(2017, 7)) & (pl.col("currency") == "USD") & (value > 3000)
    )
    q.append(("which deals did we win in june 2017 over $3k", _ids(june, "deal_id")))
    return q


def questions(tables_by_dataset: dict[str, dict[str, pl.DataFrame]]) -> list[tuple[str, str, tuple]]:
    out = [("synth", question, gold) for question, gold in synth_questions(tables_by_dataset["synth"])]
    if "maven" in tables_by_dataset:
        out += [("maven", question, gold) for question, gold in maven_questions(tables_by_dataset["maven"])]
    return out
