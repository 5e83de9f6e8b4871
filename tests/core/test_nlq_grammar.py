"""NLQ as people type it: shorthand, precedence, calendar arithmetic, schema fields, free text, confidence.

Each test is one kind of failure seen by new users (issue 13), on its own small example over the shared
hand-built tables plus a few records that carry what those kinds need (a subsidiary, a founding year, a deal
with no account, a product with a number in its name, a name with diacritics).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import polars as pl
import pytest

from holocrm_core.nlq import NLQContext, ask
from tests.core.test_nlq_data import AS_OF, make_scores, make_tables


def _tables() -> dict[str, pl.DataFrame]:
    t = make_tables()
    co = t["companies"].with_columns(
        pl.Series("parent_company_id", [None, None, "co1", None, None], dtype=pl.String),
        pl.Series("cf_year_established", [1985, 2001, 1999, 1970, 2004], dtype=pl.Int64),
    )
    contact = {c: None for c in t["contacts"].columns} | dict(
        contact_id="c8",
        first_name="Björn",
        last_name="Wright",
        full_name="Björn Wright",
        seniority="vp",
        company_id="co2",
        company_name="Globex Software",
        lifecycle_status="lead",
        owner="Jo Seller",
        created_at=datetime(2026, 6, 1, tzinfo=UTC),
        tags=[],
    )
    contacts = pl.concat([t["contacts"], pl.DataFrame([contact], schema=t["contacts"].schema)])
    deals = t["deals"].with_columns(
        pl.Series("cf_office", ["North", "North", "South", "South", "North", "South", "North", "North"])
    )
    extra = {c: None for c in deals.columns} | dict(
        deal_id="d9",
        title="Walk-in order",
        value=Decimal("900"),
        currency="USD",
        stage="proposal",
        owner="Jo Seller",
        product="X 200",
        created_at=datetime(2026, 10, 20, tzinfo=UTC),
        cf_office="South",
    )
    deals = pl.concat([deals, pl.DataFrame([extra], schema=deals.schema)])
    return {
        "companies": co,
        "contacts": contacts,
        "deals": deals,
        "activities": t["activities"],
        "scored_leads": make_scores(),
    }


@pytest.fixture(scope="module")
def ctx() -> NLQContext:
    return NLQContext.from_tables(_tables())


def answer(question: str, ctx: NLQContext):
    return ask(question, ctx, as_of=AS_OF)


def ids(question: str, ctx: NLQContext) -> list[str]:
    a = answer(question, ctx)
    assert a.understood, (question, a.unknown_words, a.plan_words())
    return sorted(a.ids)


# ---- shorthand and typing habits ----------------------------------------------------------------------
def test_shorthand_cos_qtr_and_hash(ctx):
    assert answer("how many cos in fintech", ctx).value == 2
    assert ids("deals created this qtr", ctx) == ["d3", "d5", "d9"]
    assert answer("# of deals won", ctx).value == 3
    a = answer("how many cos in fintech", ctx)
    assert any(t.how == "normalised" and t.words == "cos" for t in a.trace)


def test_contraction_without_apostrophe(ctx):
    assert (
        ids("contacts we havent emailed", ctx)
        == ids("contacts we haven't emailed", ctx)
        == ["c3", "c5", "c6", "c7", "c8"]
    )


def test_us_means_the_united_states_only_as_a_place(ctx):
    assert ids("deals in the us", ctx) == ["d3", "d4", "d6", "d7", "d8"]
    assert ids("show us deals in fintech", ctx) == ["d1", "d2", "d4", "d7"]
    assert ids("companies based in the USA", ctx) == ids("u.s. companies", ctx) == ["co2", "co3", "co5"]


def test_leading_number_is_a_limit(ctx):
    a = answer("3 companies like Acme Bank", ctx)
    assert a.understood and len(a.ids) == 3 and "co1" not in a.ids


def test_name_typed_without_diacritics(ctx):
    a = answer("contacts like bjorn wright", ctx)
    assert a.understood and a.plan.similar_to.entity_id == "c8"
    assert "c8" not in a.ids


def test_typos_are_corrected_and_reported_as_guesses(ctx):
    a = answer("opne deals in finanse", ctx)
    assert a.understood and sorted(a.ids) == ["d1", "d4"]
    assert [t.words for t in a.trace if t.how == "typo"] == ["opne", "finanse"]
    assert not a.high_confidence  # two guesses: not stated as certain


# ---- words read as the wrong construct ---------------------------------------------------------------
def test_product_name_with_a_number_is_not_an_amount(ctx):
    assert ids("X 200 deals", ctx) == ["d9"]


def test_by_role_followed_by_a_condition_is_a_filter(ctx):
    a = answer("deals won by reps in the North office", ctx)
    assert a.understood and a.value is None and sorted(a.ids) == ["d2", "d8"]
    grouped = answer("number of deals won by rep", ctx)
    assert isinstance(grouped.value, dict)


def test_date_verb_is_not_a_stage(ctx):
    a = answer("lost deals engaged in november 2025", ctx)
    assert a.understood and a.ids == ["d7"]


def test_contradicting_filters_are_never_high_confidence(ctx):
    a = answer("lost deals in negotiation", ctx)
    assert a.ids == [] and not a.high_confidence and any("exclude each other" in h for h in a.hints)


# ---- calendar arithmetic ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "question, expected",
    [
        ("deals won in the third quarter of 2026", ["d2", "d6"]),
        ("deals created in the first quarter of 2025", ["d8"]),
        ("deals won in the last quarter of 2025", []),
        ("deals lost in march of 2026", ["d7"]),
    ],
)
def test_ordinal_quarters_and_months_of_a_named_year(ctx, question, expected):
    assert ids(question, ctx) == expected


def test_roadmap_deals_no_contact_two_weeks(ctx):
    # activities in the last two weeks (since 2026-10-18): d1 (10-28) and d3 (10-25); of the others only the
    # open ones are waiting for a touch (d2, d6, d8 won, d7 lost)
    assert ids("deals no contact 2 weeks", ctx) == ["d4", "d5", "d9"]


# ---- fields the vocabulary never offered ---------------------------------------------------------------
def test_custom_field_by_meaning(ctx):
    assert ids("companies founded before 1990", ctx) == ["co1", "co4"]
    assert ids("accounts established after 2000", ctx) == ["co2", "co5"]


def test_relations_from_the_schema(ctx):
    assert ids("subsidiaries of Acme Bank", ctx) == ["co3"]
    assert ids("parent company of Initech", ctx) == ["co1"]


def test_null_ness(ctx):
    assert ids("deals with no account", ctx) == ["d9"]
    assert ids("deals without a contact", ctx) == ["d9"]


def test_duration_in_stage(ctx):
    assert ids("deals stuck in negotiation for over 30 days", ctx) == ["d1"]
    assert ids("deals in qualification for more than 90 days", ctx) == ["d4"]
    assert ids("deals in qualification for more than 200 days", ctx) == []


def test_free_text_clause(ctx):
    a = answer("deals where price was the problem", ctx)
    assert a.understood and a.plan.text is not None and "price" in a.plan.text.text
    assert sorted(a.ids) == ["d1", "d4", "d6"]


# ---- honest answers -------------------------------------------------------------------------------------
def test_not_understood_returns_no_rows_and_close_phrasings(ctx):
    a = answer("open deals in the zorblax sector", ctx)
    assert not a.understood and a.ids == [] and a.rows.height == 0 and not a.high_confidence
    assert a.suggestions and all(ask(s, ctx, as_of=AS_OF).understood for s in a.suggestions)
    assert "open deals" in a.suggestions
    partial = ask("open deals in the zorblax sector", ctx, as_of=AS_OF, partial=True)
    assert sorted(partial.ids) == ["d1", "d3", "d4", "d5", "d9"]


def test_no_noise_suggestions_for_names(ctx):
    a = answer("deals in norwayy", ctx)
    assert not any("norways" in s for s in a.suggestions)


def test_grouped_answer_counts_groups(ctx):
    data = answer("number of deals by stage", ctx).to_json()
    assert data["row_count"] == len(data["rows"]) == len(data["value"]) == 6
    assert data["record_count"] == 9
