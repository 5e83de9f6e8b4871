"""Held-out template families over the Maven CRM export: whole kinds of question the parser was not tuned on.

Written before the parser changes of issue 13 and never run while the parser was being changed; run once at
the end. Each family is a kind of question (ordinal quarters of a named year, null-ness, relations, custom
fields by meaning, country names, product names with numbers, "by <role>" as a filter, duration in stage),
not a rephrasing of a tuned template. Gold answers are hand-written polars queries over the staged tables.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from benchmarks.nlq_questions.maven import AS_OF, OPEN, _between, d


def templates(T: dict[str, pl.DataFrame]) -> list[dict]:
    co, de = T["companies"], T["deals"]

    def cids(expr) -> set[str]:
        return set(co.filter(expr)["company_id"].to_list())

    def deals_of(expr) -> set[str]:
        return set(de.filter(expr)["deal_id"].to_list())

    won = pl.col("stage") == "won"
    since = pl.coalesce(pl.col("stage_changed_at"), pl.col("created_at"))
    tomorrow = datetime(AS_OF.year, AS_OF.month, AS_OF.day, tzinfo=UTC) + timedelta(days=1)

    def in_stage_longer(days: int) -> pl.Expr:
        return since.is_not_null() & (
            since < pl.lit(tomorrow - timedelta(days=days), dtype=pl.Datetime("us", "UTC"))
        )

    quarters = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": 4}
    return [
        dict(
            name="ho_ordinal_quarter",
            features=["calendar"],
            slots=[
                {"o": o, "a": d(2017, 3 * (q - 1) + 1), "b": d(2017, 3 * q + 1) if q < 4 else d(2018, 1)}
                for o, q in quarters.items()
                if o != "fourth"
            ],
            held_out=["deals won in the {o} quarter of 2017", "{o} quarter of 2017 wins"],
            gold=lambda s: ("set", deals_of(won & _between("closed_at", s["a"], s["b"]))),
        ),
        dict(
            name="ho_month_of_year",
            features=["calendar"],
            slots=[
                {"m": "march", "a": d(2017, 3), "b": d(2017, 4)},
                {"m": "november", "a": d(2017, 11), "b": d(2017, 12)},
            ],
            held_out=["deals lost in {m} of 2017", "how many deals did we lose in {m} 2017"],
            gold=None,  # two gold kinds: see below
        ),
        dict(
            name="ho_no_account",
            features=["null"],
            slots=[{}],
            held_out=["open deals with no account", "opportunities without an account that are still open"],
            gold=lambda s: ("set", deals_of(pl.col("stage").is_in(OPEN) & pl.col("company_id").is_null())),
        ),
        dict(
            name="ho_subsidiaries",
            features=["relation"],
            slots=[
                {"p": "Acme Corporation", "id": "acme-corporation"},
                {"p": "Bubba Gump", "id": "bubba-gump"},
            ],
            held_out=["subsidiaries of {p}", "which companies are subsidiaries of {p}"],
            gold=lambda s: ("set", cids(pl.col("parent_company_id") == s["id"])),
        ),
        dict(
            name="ho_founded",
            features=["custom_meaning"],
            slots=[{"y": 1990}, {"y": 1985}],
            held_out=["accounts founded before {y}", "companies established before {y}"],
            gold=lambda s: ("set", cids(pl.col("cf_year_established") < s["y"])),
        ),
        dict(
            name="ho_country",
            features=["country"],
            slots=[
                {"c": "the us", "v": "United States"},
                {"c": "the USA", "v": "United States"},
                {"c": "Japan", "v": "Japan"},
            ],
            held_out=["accounts based in {c}", "how many companies are in {c}"],
            gold=None,
        ),
        dict(
            name="ho_product_number",
            features=["precedence"],
            slots=[{"p": "GTK 500"}],
            held_out=["won {p} deals", "{p} opportunities that were lost"],
            gold=None,
        ),
        dict(
            name="ho_role_filter",
            features=["precedence"],
            slots=[{"r": "West"}, {"r": "East"}],
            held_out=["deals won by agents in the {r} office", "lost deals by reps in the {r} office"],
            gold=None,
        ),
        dict(
            name="ho_duration_in_stage",
            features=["duration"],
            slots=[{"n": 60}, {"n": 90}],
            held_out=[
                "deals stuck in qualification for over {n} days",
                "opportunities in prospecting for more than {n} days",
            ],
            gold=None,
        ),
    ]


def expand(T: dict[str, pl.DataFrame]) -> list[tuple[str, str, tuple]]:
    """(family, question, gold) for every held-out question; families whose phrasings differ in gold kind
    (a count and a set) are written out here."""
    co, de = T["companies"], T["deals"]
    won = pl.col("stage") == "won"
    lost = pl.col("stage") == "lost"
    since = pl.coalesce(pl.col("stage_changed_at"), pl.col("created_at"))
    tomorrow = datetime(AS_OF.year, AS_OF.month, AS_OF.day, tzinfo=UTC) + timedelta(days=1)
    out: list[tuple[str, str, tuple]] = []
    for tpl in templates(T):
        if tpl["gold"] is None:
            continue
        for slot in tpl["slots"]:
            for phrasing in tpl["held_out"]:
                out.append((tpl["name"], phrasing.format(**slot), tpl["gold"](slot)))
    for m, a, b in (("march", d(2017, 3), d(2017, 4)), ("november", d(2017, 11), d(2017, 12))):
        hit = de.filter(lost & _between("closed_at", a, b))
        out.append(("ho_month_of_year", f"deals lost in {m} of 2017", ("set", set(hit["deal_id"]))))
        out.append(("ho_month_of_year", f"how many deals did we lose in {m} 2017", ("value", hit.height)))
    for c, v in (("the us", "United States"), ("the USA", "United States"), ("Japan", "Japan")):
        hit = co.filter(pl.col("country") == v)
        out.append(("ho_country", f"accounts based in {c}", ("set", set(hit["company_id"]))))
        out.append(("ho_country", f"how many companies are in {c}", ("value", hit.height)))
    gtk = pl.col("product") == "GTK 500"
    out.append(("ho_product_number", "won GTK 500 deals", ("set", set(de.filter(won & gtk)["deal_id"]))))
    out.append(
        (
            "ho_product_number",
            "GTK 500 opportunities that were lost",
            ("set", set(de.filter(lost & gtk)["deal_id"])),
        )
    )
    for r in ("West", "East"):
        office = pl.col("cf_regional_office") == r
        out.append(
            (
                "ho_role_filter",
                f"deals won by agents in the {r} office",
                ("set", set(de.filter(won & office)["deal_id"])),
            )
        )
        out.append(
            (
                "ho_role_filter",
                f"lost deals by reps in the {r} office",
                ("set", set(de.filter(lost & office)["deal_id"])),
            )
        )
    for n in (60, 90):
        old = since.is_not_null() & (
            since < pl.lit(tomorrow - timedelta(days=n), dtype=pl.Datetime("us", "UTC"))
        )
        for stage, phrasing in (
            ("qualification", "deals stuck in qualification for over {n} days"),
            ("prospecting", "opportunities in prospecting for more than {n} days"),
        ):
            hit = de.filter((pl.col("stage") == stage) & old)
            out.append(("ho_duration_in_stage", phrasing.format(n=n), ("set", set(hit["deal_id"]))))
    return out
