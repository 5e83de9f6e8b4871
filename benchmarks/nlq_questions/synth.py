"""Question templates over the generated sample export (seed 0), each with hand-written polars gold queries.

A template has: the plan features it exercises, phrasings used while tuning the parser (`tuned`), phrasings
written before tuning and never tuned on (`held_out`), slot values drawn from the data, and a reference
function computing the gold answer directly with polars (never through the parser or the executor).
Gold kinds: ("set", ids) any order; ("list", ids) exact order (top-k); ("value", number); ("groups", dict).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import polars as pl

OPEN = ["prospecting", "qualification", "proposal", "negotiation"]


def _day(as_of: datetime) -> datetime:
    return datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC)


def _between(col: str, start: datetime | None, end: datetime | None) -> pl.Expr:
    e = pl.col(col).is_not_null()
    if start is not None:
        e = e & (pl.col(col) >= pl.lit(start, dtype=pl.Datetime("us", "UTC")))
    if end is not None:
        e = e & (pl.col(col) < pl.lit(end, dtype=pl.Datetime("us", "UTC")))
    return e


class HashNeighbours:
    """Deterministic stand-in similarity backend: neighbours ranked by a hash of (anchor, other)."""

    def __init__(self, tables: dict[str, pl.DataFrame]):
        self.ids = {
            "contact": tables["contacts"]["contact_id"].to_list(),
            "company": tables["companies"]["company_id"].to_list(),
            "deal": tables["deals"]["deal_id"].to_list(),
        }

    def similar(self, entity_type, entity_id, limit=10, min_similarity=None, filters=None):
        scored = []
        for other in self.ids[entity_type]:
            if other == entity_id:
                continue
            h = int(hashlib.sha1(f"{entity_id}|{other}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
            scored.append((round(h, 6), other))
        scored.sort(key=lambda t: (-t[0], t[1]))
        return [{"id": i, "similarity": s} for s, i in scored[:limit]]

    def search(self, *a, **k):
        raise RuntimeError("no semantic index in the evaluation")


def scored_leads(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    ids = tables["contacts"]["contact_id"].to_list()
    scores = [int(hashlib.sha1(i.encode()).hexdigest()[:6], 16) / 0xFFFFFF for i in ids]
    bands = ["hot" if s >= 0.8 else "warm" if s >= 0.5 else "cold" for s in scores]
    return pl.DataFrame({"contact_id": ids, "score": scores, "band": bands})


def templates(T: dict[str, pl.DataFrame], as_of: datetime, sim: HashNeighbours) -> list[dict]:
    co, ct, de, ac = T["companies"], T["contacts"], T["deals"], T["activities"]
    scores = T["scored_leads"]
    today = _day(as_of)
    tomorrow = today + timedelta(days=1)
    q_start = datetime(today.year, (today.month - 1) // 3 * 3 + 1, 1, tzinfo=UTC)
    prev_q = datetime(
        q_start.year - (1 if q_start.month == 1 else 0), (q_start.month - 4) % 12 + 1, 1, tzinfo=UTC
    )
    month_start = today.replace(day=1)
    next_month = (month_start + timedelta(days=32)).replace(day=1)
    prev_month = (month_start - timedelta(days=1)).replace(day=1)
    year_start = today.replace(month=1, day=1)
    march = datetime(today.year if today.month >= 3 else today.year - 1, 3, 1, tzinfo=UTC)

    is_lead = pl.col("lifecycle_status") == "lead"

    def cids(expr) -> set[str]:
        return set(co.filter(expr)["company_id"].to_list())

    def deals_of(expr, companies: set[str] | None = None) -> set[str]:
        f = de.filter(expr)
        if companies is not None:
            f = f.filter(pl.col("company_id").is_in(list(companies)))
        return set(f["deal_id"].to_list())

    def contacts_at(companies: set[str], expr=pl.lit(True)) -> set[str]:
        return set(ct.filter(pl.col("company_id").is_in(list(companies)) & expr)["contact_id"].to_list())

    def open_pipeline(currency: str | None) -> pl.DataFrame:
        f = de.filter(pl.col("stage").is_in(OPEN))
        if currency:
            f = f.filter(pl.col("currency") == currency)
        return f.group_by("company_id").agg(pl.col("value").cast(pl.Float64).sum().alias("p"))

    def acts(types=None, start=None, end=None) -> pl.DataFrame:
        f = ac
        if types:
            f = f.filter(pl.col("type").is_in(types))
        return f.filter(_between("occurred_at", start, end)) if (start or end) else f

    ind_slots = [
        {"ind": "financial services", "w": "fintech"},
        {"ind": "healthcare", "w": "healthcare"},
        {"ind": "software", "w": "saas"},
        {"ind": "telecom", "w": "telco"},
    ]
    wins_2025 = (
        de.filter(
            (pl.col("stage") == "won")
            & _between("closed_at", datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
        )
        .group_by("owner")
        .len()
        .sort(["len", "owner"], descending=[True, False])
    )
    owners = wins_2025["owner"].head(3).to_list()
    named = (
        ct.filter(pl.col("full_name").is_not_null())
        .group_by("full_name")
        .agg(pl.col("contact_id").first(), pl.len())
        .filter(pl.col("len") == 1)
        .sort("contact_id")
    )
    people = [{"name": n, "id": i} for n, i in named.select("full_name", "contact_id").head(3).iter_rows()]
    comp_named = (
        co.group_by("name")
        .agg(pl.col("company_id").first(), pl.len())
        .filter(pl.col("len") == 1)
        .sort("company_id")
    )
    firms = [{"name": n, "id": i} for n, i in comp_named.select("name", "company_id").head(2).iter_rows()]
    products = sorted(de["product"].drop_nulls().unique().to_list())[:3]

    def like(entity, anchor_id, id_col, frame, extra=None):
        hits = [h["id"] for h in sim.similar(entity, anchor_id, limit=50)]
        allowed = set(frame.filter(extra if extra is not None else pl.lit(True))[id_col].to_list())
        order = [h for h in hits if h in allowed]
        return ("list", order[:10])

    hot = set(scores.filter(pl.col("band") == "hot")["contact_id"].to_list())

    return [
        dict(
            name="industry_companies",
            features=["vocabulary", "synonyms"],
            slots=ind_slots,
            tuned=["{w} companies", "companies in {w}", "show me accounts in the {ind} sector"],
            held_out=["which organisations are in {w}?", "list every {ind} firm"],
            gold=lambda s: ("set", cids(pl.col("industry") == s["ind"])),
        ),
        dict(
            name="size_band",
            features=["vocabulary", "synonyms"],
            slots=[
                {"w": "enterprise", "b": "enterprise"},
                {"w": "small", "b": "smb"},
                {"w": "mid-market", "b": "mid_market"},
            ],
            tuned=["{w} companies", "{w} accounts"],
            held_out=["show the {w} organisations"],
            gold=lambda s: ("set", cids(pl.col("size_band") == s["b"])),
        ),
        dict(
            name="deal_stage",
            features=["filters"],
            slots=[
                {"w": "won", "st": ["won"]},
                {"w": "lost", "st": ["lost"]},
                {"w": "open", "st": OPEN},
                {"w": "negotiation", "st": ["negotiation"]},
            ],
            tuned=["{w} deals", "show {w} opportunities"],
            held_out=["list the deals that are {w}"],
            gold=lambda s: ("set", deals_of(pl.col("stage").is_in(s["st"]))),
        ),
        dict(
            name="won_last_quarter",
            features=["time_window"],
            slots=[{}],
            tuned=["deals won last quarter", "won deals last quarter", "which deals did we win last quarter"],
            held_out=["opportunities closed won during the last quarter"],
            gold=lambda s: (
                "set",
                deals_of((pl.col("stage") == "won") & _between("closed_at", prev_q, q_start)),
            ),
        ),
        dict(
            name="created_past_weeks",
            features=["time_window"],
            slots=[{"n": 2}, {"n": 4}],
            tuned=["deals created in the past {n} weeks", "new deals in the last {n} weeks"],
            held_out=["opportunities added over the past {n} weeks"],
            gold=lambda s: (
                "set",
                deals_of(_between("created_at", tomorrow - timedelta(weeks=s["n"]), tomorrow)),
            ),
        ),
        dict(
            name="since_march",
            features=["time_window"],
            slots=[{}],
            tuned=["contacts created since March", "contacts added since march"],
            held_out=["people who joined since March"],
            gold=lambda s: (
                "set",
                set(ct.filter(_between("created_at", march, None))["contact_id"].to_list()),
            ),
        ),
        dict(
            name="in_year",
            features=["time_window"],
            slots=[{"y": 2025}],
            tuned=["deals lost in {y}", "lost deals in {y}"],
            held_out=["which opportunities did we lose during {y}"],
            gold=lambda s: (
                "set",
                deals_of(
                    (pl.col("stage") == "lost")
                    & _between(
                        "closed_at",
                        datetime(s["y"], 1, 1, tzinfo=UTC),
                        datetime(s["y"] + 1, 1, 1, tzinfo=UTC),
                    )
                ),
            ),
        ),
        dict(
            name="closing_this_month",
            features=["time_window"],
            slots=[
                {"w": "this month", "a": month_start, "b": next_month},
                {"w": "next month", "a": next_month, "b": (next_month + timedelta(days=32)).replace(day=1)},
            ],
            tuned=["deals closing {w}", "deals expected to close {w}"],
            held_out=["opportunities due to close {w}"],
            gold=lambda s: (
                "set",
                deals_of(pl.col("stage").is_in(OPEN) & _between("expected_close_at", s["a"], s["b"])),
            ),
        ),
        dict(
            name="money_usd",
            features=["money"],
            slots=[
                {"w": "over $100k", "op": "gt", "v": 100_000},
                {"w": "under $10k", "op": "lt", "v": 10_000},
                {"w": "above $250,000", "op": "gt", "v": 250_000},
            ],
            tuned=["deals {w}", "opportunities {w}"],
            held_out=["show me deals worth {w}"],
            gold=lambda s: (
                "set",
                deals_of(
                    (pl.col("currency") == "USD")
                    & (
                        (pl.col("value").cast(pl.Float64) > s["v"])
                        if s["op"] == "gt"
                        else (pl.col("value").cast(pl.Float64) < s["v"])
                    )
                ),
            ),
        ),
        dict(
            name="money_eur",
            features=["money"],
            slots=[{}],
            tuned=["deals over 5 thousand euros", "deals above 5000 EUR", "deals over €5k"],
            held_out=["opportunities bigger than 5 thousand euros"],
            gold=lambda s: (
                "set",
                deals_of((pl.col("currency") == "EUR") & (pl.col("value").cast(pl.Float64) > 5000)),
            ),
        ),
        dict(
            name="money_between",
            features=["money"],
            slots=[{}],
            tuned=["deals between $20k and $50k"],
            held_out=["opportunities from $20k to $50k in value"],
            gold=lambda s: (
                "set",
                deals_of(
                    (pl.col("currency") == "USD")
                    & pl.col("value").cast(pl.Float64).is_between(20_000, 50_000)
                ),
            ),
        ),
        dict(
            name="won_money_industry_quarter",
            features=["money", "time_window", "vocabulary"],
            slots=ind_slots[:3],
            tuned=[
                "won deals over $5k in the {ind} sector last quarter",
                "{w} deals won last quarter over $5k",
            ],
            held_out=["deals we won last quarter in {w} worth more than $5k"],
            gold=lambda s: (
                "set",
                deals_of(
                    (pl.col("stage") == "won")
                    & _between("closed_at", prev_q, q_start)
                    & (pl.col("currency") == "USD")
                    & (pl.col("value").cast(pl.Float64) > 5000),
                    cids(pl.col("industry") == s["ind"]),
                ),
            ),
        ),
        dict(
            name="no_contact_days",
            features=["absence"],
            slots=[{"n": 14, "w": "14 days"}, {"n": 30, "w": "30 days"}],
            tuned=["contacts with no contact in {w}", "contacts not contacted in {w}"],
            held_out=["people we have not reached out to in {w}"],
            gold=lambda s: (
                "set",
                set(
                    ct.filter(
                        ~pl.col("contact_id").is_in(
                            acts(start=tomorrow - timedelta(days=s["n"]), end=tomorrow)["contact_id"]
                            .unique()
                            .to_list()
                        )
                    )["contact_id"].to_list()
                ),
            ),
        ),
        dict(
            name="deals_not_contacted",
            features=["absence"],
            slots=[{}],
            tuned=[
                "which deals haven't been contacted in 2 weeks?",
                "deals with no activity in the past 2 weeks",
            ],
            held_out=["deals nobody has touched in 2 weeks"],
            # only open deals wait for a touch (semantic layer, issue 24)
            gold=lambda s: (
                "set",
                set(
                    de.filter(
                        pl.col("stage").is_in(OPEN)
                        & ~pl.col("deal_id").is_in(
                            acts(start=tomorrow - timedelta(days=14), end=tomorrow)["deal_id"]
                            .drop_nulls()
                            .unique()
                            .to_list()
                        )
                    )["deal_id"].to_list()
                ),
            ),
        ),
        dict(
            name="open_deals_not_contacted",
            features=["absence", "filters"],
            slots=[{}],
            tuned=["open deals with no contact in 30 days"],
            held_out=["active opportunities without any activity in 30 days"],
            gold=lambda s: (
                "set",
                set(
                    de.filter(
                        pl.col("stage").is_in(OPEN)
                        & ~pl.col("deal_id").is_in(
                            acts(start=tomorrow - timedelta(days=30), end=tomorrow)["deal_id"]
                            .drop_nulls()
                            .unique()
                            .to_list()
                        )
                    )["deal_id"].to_list()
                ),
            ),
        ),
        dict(
            name="never_emailed",
            features=["absence"],
            slots=[{"w": "emailed", "t": "email"}, {"w": "called", "t": "call"}],
            tuned=["contacts never {w}", "contacts we have never {w}"],
            held_out=["people who were never {w}"],
            gold=lambda s: (
                "set",
                set(
                    ct.filter(~pl.col("contact_id").is_in(acts([s["t"]])["contact_id"].unique().to_list()))[
                        "contact_id"
                    ].to_list()
                ),
            ),
        ),
        dict(
            name="presence",
            features=["presence", "time_window"],
            slots=[{}],
            tuned=["contacts emailed in the past week", "contacts we emailed in the last 7 days"],
            held_out=["people who got an email in the past 7 days"],
            gold=lambda s: (
                "set",
                set(acts(["email"], tomorrow - timedelta(days=7), tomorrow)["contact_id"].unique().to_list()),
            ),
        ),
        dict(
            name="pipeline_over",
            features=["group_filter", "money"],
            slots=[{}],
            tuned=["companies with open pipeline over $100k", "accounts with more than $100k in pipeline"],
            held_out=["organisations whose pipeline exceeds $100k"],
            gold=lambda s: (
                "set",
                set(open_pipeline("USD").filter(pl.col("p") > 100_000)["company_id"].to_list()),
            ),
        ),
        dict(
            name="enterprise_leads_pipeline",
            features=["group_filter", "money", "synonyms"],
            slots=ind_slots[:2],
            tuned=[
                "enterprise leads in {w} with >$100k pipeline",
                "enterprise leads in {ind} with pipeline over $100k",
            ],
            held_out=["{w} leads at large companies with over $100k of pipeline"],
            gold=lambda s: (
                "set",
                contacts_at(
                    cids((pl.col("industry") == s["ind"]) & (pl.col("size_band") == "enterprise"))
                    & set(open_pipeline("USD").filter(pl.col("p") > 100_000)["company_id"].to_list()),
                    is_lead,
                ),
            ),
        ),
        dict(
            name="deal_count_filter",
            features=["group_filter"],
            slots=[{"n": 5}],
            tuned=["companies with more than {n} deals", "accounts with over {n} deals"],
            held_out=["organisations having more than {n} opportunities"],
            gold=lambda s: (
                "set",
                set(
                    de.group_by("company_id")
                    .len()
                    .filter(pl.col("len") > s["n"])["company_id"]
                    .drop_nulls()
                    .to_list()
                ),
            ),
        ),
        dict(
            name="count_owner_wins",
            features=["count", "time_window"],
            slots=[{"o": o} for o in owners],
            tuned=["how many deals did {o} win in 2025?", "number of deals {o} won in 2025"],
            held_out=["count the deals won by {o} in 2025"],
            gold=lambda s: (
                "value",
                de.filter(
                    (pl.col("owner") == s["o"])
                    & (pl.col("stage") == "won")
                    & _between(
                        "closed_at", datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
                    )
                ).height,
            ),
        ),
        dict(
            name="count_contacts_industry",
            features=["count", "vocabulary"],
            slots=ind_slots[:3],
            tuned=["how many contacts are in {w}", "number of contacts in {ind}"],
            held_out=["count the people working in {w}"],
            gold=lambda s: ("value", len(contacts_at(cids(pl.col("industry") == s["ind"])))),
        ),
        dict(
            name="count_open",
            features=["count", "filters"],
            slots=[{}],
            tuned=["how many open deals are there", "number of open deals"],
            held_out=["count of active opportunities"],
            gold=lambda s: ("value", de.filter(pl.col("stage").is_in(OPEN)).height),
        ),
        dict(
            name="top_pipeline",
            features=["top_k", "group_filter"],
            slots=[{"k": 10}, {"k": 5}],
            tuned=["top {k} accounts by open pipeline", "top {k} companies by pipeline"],
            held_out=["the {k} biggest accounts ranked by open pipeline"],
            gold=lambda s: (
                "list",
                co.select("company_id")
                .join(open_pipeline(None), on="company_id", how="left")
                .with_columns(pl.col("p").fill_null(0))
                .sort(["p", "company_id"], descending=[True, False])["company_id"]
                .head(s["k"])
                .to_list(),
            ),
        ),
        dict(
            name="largest_deals",
            features=["top_k"],
            slots=[{"k": 5}, {"k": 3}],
            tuned=["{k} largest deals", "top {k} deals by value"],
            held_out=["the {k} biggest opportunities"],
            gold=lambda s: (
                "list",
                de.with_columns(pl.col("value").cast(pl.Float64).alias("v"))
                .sort(["v", "deal_id"], descending=[True, False], nulls_last=True)["deal_id"]
                .head(s["k"])
                .to_list(),
            ),
        ),
        dict(
            name="top_deals_industry",
            features=["top_k", "vocabulary"],
            slots=ind_slots[:2],
            tuned=["top 3 deals in {w}", "3 largest {w} deals"],
            held_out=["the 3 biggest opportunities in {ind}"],
            gold=lambda s: (
                "list",
                de.filter(pl.col("company_id").is_in(list(cids(pl.col("industry") == s["ind"]))))
                .with_columns(pl.col("value").cast(pl.Float64).alias("v"))
                .sort(["v", "deal_id"], descending=[True, False], nulls_last=True)["deal_id"]
                .head(3)
                .to_list(),
            ),
        ),
        dict(
            name="hot_leads",
            features=["score_band", "vocabulary"],
            slots=ind_slots[:2],
            tuned=["hot leads in {w}", "hot leads in {ind}"],
            held_out=["which {w} leads are hot"],
            # "leads" = contacts in the lead status (semantic layer, issue 24)
            gold=lambda s: ("set", contacts_at(cids(pl.col("industry") == s["ind"]), is_lead) & hot),
        ),
        dict(
            name="like_contact",
            features=["similarity"],
            slots=people,
            tuned=["contacts like {name}", "contacts similar to {name}"],
            held_out=["find people resembling {name}"],
            gold=lambda s: like("contact", s["id"], "contact_id", ct),
        ),
        dict(
            name="like_company",
            features=["similarity"],
            slots=firms,
            tuned=["companies like {name}", "accounts similar to {name}"],
            held_out=["organisations comparable to {name}"],
            gold=lambda s: like("company", s["id"], "company_id", co),
        ),
        dict(
            name="free_text",
            features=["free_text"],
            slots=[{"k": "budget"}, {"k": "legal review"}, {"k": "procurement"}],
            tuned=["contacts who mentioned {k}", "contacts that talked about {k}"],
            held_out=["people who talked about {k}"],
            gold=lambda s: _free_text_gold(s, ct, ac),
        ),
        dict(
            name="stuck",
            features=["stuck"],
            slots=[{"w": "stuck deals", "n": 30}, {"w": "deals stuck for over 60 days", "n": 60}],
            tuned=["{w}", "show {w}"],
            held_out=["which of our {w} are there"],
            gold=lambda s: (
                "set",
                deals_of(
                    pl.col("stage").is_in(OPEN)
                    & (
                        pl.coalesce("stage_changed_at", "created_at")
                        < pl.lit(tomorrow - timedelta(days=s["n"]), dtype=pl.Datetime("us", "UTC"))
                    )
                ),
            ),
        ),
        dict(
            name="owner_open",
            features=["vocabulary", "filters"],
            slots=[{"o": o} for o in owners[:2]],
            tuned=["{o}'s open deals", "open deals owned by {o}"],
            held_out=["active opportunities that {o} owns"],
            gold=lambda s: ("set", deals_of(pl.col("stage").is_in(OPEN) & (pl.col("owner") == s["o"]))),
        ),
        dict(
            name="negated_industry",
            features=["negation", "vocabulary"],
            slots=ind_slots[:2],
            tuned=["deals not in {w}", "deals excluding {ind}"],
            held_out=["opportunities outside of {w}"],
            gold=lambda s: (
                "set",
                set(
                    de.filter(~pl.col("company_id").is_in(list(cids(pl.col("industry") == s["ind"]))))[
                        "deal_id"
                    ].to_list()
                ),
            ),
        ),
        dict(
            name="negated_band",
            features=["negation"],
            slots=[{}],
            tuned=["non-enterprise companies", "companies other than enterprise"],
            held_out=["accounts that are not enterprise"],
            gold=lambda s: (
                "set",
                cids((pl.col("size_band") != "enterprise") | pl.col("size_band").is_null()),
            ),
        ),
        dict(
            name="group_by_stage",
            features=["group_by", "count"],
            slots=[{}],
            tuned=["deals by stage", "number of deals per stage"],
            held_out=["how many opportunities in each stage"],
            gold=lambda s: ("groups", {r[0]: r[1] for r in de.group_by("stage").len().iter_rows()}),
        ),
        dict(
            name="region",
            features=["vocabulary", "synonyms"],
            slots=[{"w": "EMEA", "r": "EMEA"}, {"w": "Europe", "r": "EMEA"}, {"w": "APAC", "r": "APAC"}],
            tuned=["companies in {w}", "contacts in {w}"],
            held_out=[],
            gold=None,  # two entities: expanded below
        ),
        dict(
            name="seniority",
            features=["vocabulary", "synonyms"],
            slots=[
                {"w": "c-level", "s": "c_level"},
                {"w": "VPs", "s": "vp"},
                {"w": "directors", "s": "director"},
            ],
            tuned=["{w} at enterprise companies", "{w} in enterprise accounts"],
            held_out=["{w} working for large companies"],
            gold=lambda s: (
                "set",
                contacts_at(cids(pl.col("size_band") == "enterprise"), pl.col("seniority") == s["s"]),
            ),
        ),
        dict(
            name="lifecycle",
            features=["vocabulary"],
            slots=ind_slots[:2],
            tuned=["customers in {w}", "customer contacts in {ind}"],
            held_out=["{w} clients"],
            gold=lambda s: (
                "set",
                contacts_at(cids(pl.col("industry") == s["ind"]), pl.col("lifecycle_status") == "customer"),
            ),
        ),
        dict(
            name="activities_window",
            features=["time_window", "filters"],
            slots=[{"w": "emails", "t": "email"}, {"w": "calls", "t": "call"}],
            tuned=["{w} in the past 2 weeks", "{w} over the last 14 days"],
            held_out=["all {w} logged in the past 2 weeks"],
            gold=lambda s: (
                "set",
                set(acts([s["t"]], tomorrow - timedelta(days=14), tomorrow)["activity_id"].to_list()),
            ),
        ),
        dict(
            name="product",
            features=["vocabulary"],
            slots=[{"p": p} for p in products],
            tuned=["deals for {p}", "{p} deals"],
            held_out=["opportunities selling {p}"],
            gold=lambda s: ("set", deals_of(pl.col("product") == s["p"])),
        ),
        dict(
            name="won_this_year_sum",
            features=["count", "time_window"],
            slots=[{}],
            tuned=["how many deals did we win this year", "number of deals won this year"],
            held_out=["count of wins so far this year"],
            gold=lambda s: (
                "value",
                de.filter(
                    (pl.col("stage") == "won")
                    & _between("closed_at", year_start, datetime(today.year + 1, 1, 1, tzinfo=UTC))
                ).height,
            ),
        ),
        dict(
            name="companies_without",
            features=["absence", "group_filter"],
            slots=[{"w": "deals", "m": None}, {"w": "open deals", "m": OPEN}],
            tuned=["companies without {w}", "accounts with no {w}"],
            held_out=["organisations that have no {w}"],
            gold=lambda s: (
                "set",
                set(co["company_id"].to_list())
                - set(
                    de.filter(pl.col("stage").is_in(s["m"]) if s["m"] else pl.lit(True))["company_id"]
                    .drop_nulls()
                    .to_list()
                ),
            ),
        ),
        dict(
            name="group_rank_measure",
            features=["group_by", "top_k", "aggregate"],
            slots=[{"k": 3}],
            tuned=["top {k} owners by number of won deals", "top {k} reps by won deals"],
            held_out=["the {k} sales reps with the most won deals"],
            gold=lambda s: (
                "groups",
                {
                    r[0]: r[1]
                    for r in de.filter(pl.col("stage") == "won")
                    .group_by("owner")
                    .len()
                    .sort(["len", "owner"], descending=[True, False])
                    .head(s["k"])
                    .iter_rows()
                },
            ),
        ),
        dict(
            name="custom_field",
            features=["custom_fields", "vocabulary"],
            slots=[{"v": "web"}, {"v": "event"}],
            tuned=["contacts with lead source {v}", "{v} leads"],
            held_out=["contacts that came from {v}"],
            gold=lambda s: (
                "set",
                set(ct.filter(pl.col("cf_lead_source") == s["v"])["contact_id"].to_list()),
            ),
        ),
        dict(
            name="lost_last_month",
            features=["time_window"],
            slots=[{}],
            tuned=["deals lost last month", "lost deals last month"],
            held_out=["opportunities we lost during last month"],
            gold=lambda s: (
                "set",
                deals_of((pl.col("stage") == "lost") & _between("closed_at", prev_month, month_start)),
            ),
        ),
    ]


def _free_text_gold(s, ct, ac):
    words = s["k"].split()
    f = ac.with_columns(
        pl.concat_str([pl.col("subject").fill_null(""), pl.col("body").fill_null("")], separator=" ")
        .str.to_lowercase()
        .alias("t")
    )
    for w in words:
        f = f.filter(pl.col("t").str.contains(w, literal=True))
    return ("set", set(f["contact_id"].drop_nulls().to_list()))


def expand_region(T, template) -> list[tuple[str, dict, tuple]]:
    co, ct = T["companies"], T["contacts"]
    out = []
    for s in template["slots"]:
        comp = set(co.filter(pl.col("region") == s["r"])["company_id"].to_list())
        out.append(("companies in {w}", s, ("set", comp)))
        out.append(
            (
                "contacts in {w}",
                s,
                ("set", set(ct.filter(pl.col("company_id").is_in(list(comp)))["contact_id"].to_list())),
            )
        )
    return out
