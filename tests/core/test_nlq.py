"""NLQ: each plan feature on small hand-built tables, honest failure, the as-of hint, the plan as data."""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from holocrm_core.nlq import NLQContext, ask
from holocrm_core.nlq.money import find_quantities
from holocrm_core.nlq.plan import FieldFilter, Plan
from holocrm_core.nlq.timeparse import find_times
from tests.core.test_nlq_data import AS_OF, make_scores, make_tables


@pytest.fixture(scope="module")
def ctx() -> NLQContext:
    tables = make_tables()
    tables["scored_leads"] = make_scores()
    return NLQContext.from_tables(tables)


def ids(question: str, ctx: NLQContext, **kw) -> list[str]:
    answer = ask(question, ctx, as_of=kw.pop("as_of", AS_OF), **kw)
    assert answer.understood, (question, answer.unknown_words)
    return answer.ids


def d(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# ---- time windows relative to the as-of date ---------------------------------------------------------
@pytest.mark.parametrize(
    "phrase, start, end",
    [
        ("won last quarter", "2026-07-01", "2026-10-01"),
        ("in the past 2 weeks", "2026-10-18", "2026-11-01"),
        ("since march", "2026-03-01", None),
        ("in 2017", "2017-01-01", "2018-01-01"),
        ("this month", "2026-10-01", "2026-11-01"),
        ("between jan 2017 and march 2017", "2017-01-01", "2017-04-01"),
    ],
)
def test_time_phrases_resolve_against_as_of(phrase, start, end):
    (found,) = find_times(phrase, AS_OF)
    assert found.past == (d(start), d(end) if end else None)


def test_since_march_before_march_means_last_year():
    (found,) = find_times("since march", d("2026-02-10"))
    assert found.past[0] == d("2025-03-01")


def test_last_quarter_answers_from_closed_date(ctx):
    # d6 won 2026-09-10 (Q3) and d2 won 2026-08-15; d8 won in 2025
    assert sorted(ids("won deals last quarter", ctx)) == ["d2", "d6"]
    assert ids("deals created in the past 4 weeks", ctx) == ["d3"]
    assert sorted(ids("deals created since March", ctx)) == ["d1", "d2", "d3", "d4", "d5", "d6"]
    assert ids("deals won in 2025", ctx) == ["d8"]


def test_as_of_moves_relative_windows(ctx):
    assert ids("won deals last quarter", ctx, as_of="2025-07-15") == ["d8"]


# ---- money ---------------------------------------------------------------------------------------------
def test_money_units_and_currencies():
    (q,) = find_quantities("deals over $100k")
    assert (q.op, int(q.amount), q.currency) == ("gt", 100_000, "USD")
    (q,) = find_quantities("over 5 thousand euros")
    assert (q.op, int(q.amount), q.currency) == ("gt", 5_000, "EUR")
    assert find_quantities("in 2017") == []


def test_money_filters_compare_in_the_named_currency(ctx):
    assert sorted(ids("deals over 5 thousand euros", ctx)) == ["d4", "d7"]
    assert sorted(ids("deals over $100k", ctx)) == ["d1", "d5"]
    assert sorted(ids("deals between $5k and $50k", ctx)) == ["d3", "d6"]


# ---- negation and absence ------------------------------------------------------------------------------
def test_no_contact_in_14_days(ctx):
    # activities in the last 14 days: a1 (c1, d1) and a3 (c3, d3); only open deals wait for a touch
    # (semantic layer, issue 24): d2, d6, d8 are won and d7 lost
    assert sorted(ids("which deals haven't been contacted in 2 weeks?", ctx)) == ["d4", "d5"]
    assert sorted(ids("contacts with no contact in 14 days", ctx)) == ["c2", "c4", "c5", "c6", "c7"]


def test_never_emailed(ctx):
    assert sorted(ids("contacts never emailed", ctx)) == ["c3", "c5", "c6", "c7"]


def test_negated_value(ctx):
    assert sorted(ids("deals not in fintech", ctx)) == ["d3", "d5", "d6", "d8"]


# ---- group aggregates, counts, top-k ------------------------------------------------------------------
def test_pipeline_over_is_a_company_sum_of_open_deals(ctx):
    # open USD pipeline: co1 150k, co4 120k (enterprise, healthcare), co2 40k; "leads" are contacts in the
    # lead status (the semantic layer), so the customer c2 is a contact but not a lead
    assert sorted(ids("enterprise contacts in fintech with >$100k pipeline", ctx)) == ["c1", "c2"]
    assert sorted(ids("enterprise leads in fintech with >$100k pipeline", ctx)) == ["c1"]
    assert sorted(ids("companies with pipeline over $100k", ctx)) == ["co1", "co4"]


def test_counts(ctx):
    answer = ask("how many deals did Sam Rep win in 2026?", ctx, as_of=AS_OF)
    assert answer.value == 1 and answer.ids == ["d2"]
    assert ask("number of open deals", ctx, as_of=AS_OF).value == 4


def test_top_k(ctx):
    assert ids("top 2 accounts by open pipeline", ctx) == ["co1", "co4"]
    assert ids("3 largest deals", ctx) == ["d1", "d5", "d4"]


def test_group_by(ctx):
    answer = ask("deals by stage", ctx, as_of=AS_OF)
    assert answer.value["won"] == 3 and answer.value["lost"] == 1


# ---- vocabulary: synonyms learned against the data's own values ---------------------------------------
def test_synonyms_map_to_data_values(ctx):
    answer = ask("fintech companies", ctx, as_of=AS_OF)
    assert FieldFilter("companies", "industry", "eq", "Financial Services") in answer.plan.filters
    assert sorted(answer.ids) == ["co1", "co3"]
    assert sorted(ids("enterprise companies", ctx)) == ["co1", "co4", "co5"]
    assert sorted(ids("large companies", ctx)) == ["co1", "co4", "co5"]


def test_vocabulary_is_learned_not_hard_coded():
    tables = make_tables()
    tables["companies"] = tables["companies"].with_columns(
        pl.when(pl.col("industry") == "Financial Services")
        .then(pl.lit("Banking & Insurance"))
        .otherwise(pl.col("industry"))
        .alias("industry")
    )
    ctx = NLQContext.from_tables(tables)
    answer = ask("companies in banking and insurance", ctx, as_of=AS_OF)
    assert sorted(answer.ids) == ["co1", "co3"] and answer.understood


def test_typo_is_matched_fuzzily_with_lower_confidence(ctx):
    answer = ask("companies in helthcare", ctx, as_of=AS_OF)
    assert answer.ids == ["co4"]
    assert any(t.how in ("fuzzy", "typo") for t in answer.trace)


def test_hot_uses_scored_leads_and_says_when_missing(ctx):
    assert sorted(ids("hot leads in fintech", ctx)) == ["c1", "c4"]
    bare = NLQContext.from_tables(make_tables())
    answer = ask("hot leads in fintech", bare, as_of=AS_OF)
    assert not answer.high_confidence
    assert any("scored_leads" in m for m in answer.missing)


def test_stuck_means_long_in_stage(ctx):
    assert sorted(ids("stuck deals", ctx)) == ["d1", "d4", "d5"]


# ---- similarity and free text --------------------------------------------------------------------------
class FakeSimilarity:
    def __init__(self):
        self.calls = []

    def similar(self, entity_type, entity_id, limit=10, min_similarity=None, filters=None):
        self.calls.append((entity_type, entity_id))
        return [
            {"id": "c7", "similarity": 0.9},
            {"id": "c5", "similarity": 0.8},
            {"id": "c3", "similarity": 0.5},
        ]

    def search(self, text, entity_types=None, mode="hybrid", limit=10, filters=None):
        self.calls.append(("search", text))
        return [{"id": "a4", "similarity": 0.7}]


def test_similarity_anchor_uses_the_backend(ctx):
    fake = FakeSimilarity()
    answer = ask("contacts like Alice Johnson", ctx, as_of=AS_OF, similarity=fake)
    assert fake.calls == [("contact", "c1")]
    assert answer.ids == ["c7", "c5", "c3"] and answer.high_confidence
    assert ask("contacts like Alice Johnson in fintech", ctx, as_of=AS_OF, similarity=fake).ids == ["c7"]


def test_similarity_without_index_is_flagged(ctx):
    answer = ask("contacts similar to Alice Johnson", ctx, as_of=AS_OF)
    assert answer.ids and "c1" not in answer.ids
    assert not answer.high_confidence and answer.missing


def test_free_text_part(ctx):
    answer = ask("contacts who mentioned pricing concerns", ctx, as_of=AS_OF)
    assert answer.plan.text.text == "pricing concerns" and answer.ids == ["c1"]
    fake = FakeSimilarity()
    assert ask("deals where they talked about budget worries", ctx, as_of=AS_OF, similarity=fake).ids == [
        "d4"
    ]


# ---- honest failure ------------------------------------------------------------------------------------
def test_unknown_words_are_reported_with_suggestions(ctx):
    answer = ask("deals in the zorblax sector", ctx, as_of=AS_OF)
    assert not answer.understood and not answer.high_confidence
    assert "zorblax" in answer.unknown_words
    assert answer.suggestions
    answer = ask("companies in helthcar and softwar", ctx, as_of=AS_OF)
    assert answer.understood or answer.suggestions


def test_unknown_word_near_a_value_suggests_it(ctx):
    answer = ask("deals for analyticz product frobnicate", ctx, as_of=AS_OF)
    assert "frobnicate" in answer.unknown_words
    assert not answer.high_confidence


def test_or_between_different_conditions_is_not_high_confidence(ctx):
    answer = ask("deals over $100k or under $5k", ctx, as_of=AS_OF)
    assert not answer.high_confidence


def test_as_of_hint_for_an_old_export():
    tables = make_tables()
    ctx = NLQContext.from_tables(tables)
    answer = ask("won deals last quarter", ctx, as_of="2028-06-01")
    assert any("--as-of" in h for h in answer.hints)
    assert not answer.high_confidence
    assert not any("--as-of" in h for h in ask("won deals last quarter", ctx, as_of=AS_OF).hints)


# ---- the plan is data ----------------------------------------------------------------------------------
def test_plan_round_trips_as_json_and_words(ctx):
    answer = ask("won deals over $5k in the technology sector last quarter", ctx, as_of=AS_OF)
    data = answer.plan_json()
    assert json.loads(json.dumps(data)) == data
    assert data["target"] == "deals"
    assert "technology" in answer.plan_words().lower()
    assert any(t.words == "last quarter" for t in answer.trace)


def test_injection_attempts_stay_data(ctx):
    answer = ask("deals; DROP TABLE deals; __import__('os').system('echo hi')", ctx, as_of=AS_OF)
    assert not answer.high_confidence and not answer.understood
    assert isinstance(answer.plan, Plan)


def test_executor_rejects_unknown_names(ctx):
    bad = Plan(target="deals", filters=(FieldFilter("deals", "__class__", "eq", "x"),))
    with pytest.raises(ValueError):
        ctx.executor.run(bad)
    with pytest.raises(ValueError):
        ctx.executor.run(Plan(target="deals", filters=(FieldFilter("deals", "stage", "exec", "x"),)))


def test_no_code_path_executes_strings():
    root = Path(__file__).resolve().parents[2] / "holocrm_core" / "nlq"
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in ("eval", "exec", "compile", "__import__"), path
            if isinstance(node, ast.Attribute):
                assert node.attr not in ("sql", "SQLContext"), path


def test_embedding_maps_unknown_words_to_the_nearest_value():
    import numpy as np

    axes = {"financial services": 0, "lenders": 0, "software": 1, "healthcare": 2, "technology": 3}

    def embed(texts):
        out = np.full((len(texts), 8), 0.01, dtype=np.float32)
        for i, t in enumerate(texts):
            if t in axes:
                out[i, axes[t]] = 1.0
            else:
                out[i, 4 + hash(t) % 4] = 1.0
        return out

    calls = []

    def counted(texts):
        calls.append(list(texts))
        return embed(texts)

    ctx = NLQContext.from_tables(make_tables(), embed=counted)
    assert ask("companies in software", ctx, as_of=AS_OF).understood
    assert calls == []  # every word known: the embedder (a model load, in the CLI) is never called
    answer = ask("companies in lenders", ctx, as_of=AS_OF)
    assert sorted(answer.ids) == ["co1", "co3"]
    assert any(t.how == "embedding" for t in answer.trace) and not answer.high_confidence
    assert calls  # the unknown word was embedded


def test_lazy_embed_uses_the_given_embedder_and_loads_nothing_before_the_first_call():
    from holocrm_core.nlq.meaning import lazy_embed

    class Fixed:
        def encode(self, texts):
            return [[float(len(t)), 1.0] for t in texts]

    assert lazy_embed(Fixed())(["ab", "abcd"]) == [[2.0, 1.0], [4.0, 1.0]]


def test_negated_stage_related_absence_and_numeric_columns(ctx):
    assert sorted(ids("deals not won", ctx)) == ["d1", "d3", "d4", "d5", "d7"]
    assert ids("companies without open deals", ctx) == ["co5"]
    assert sorted(ids("companies with more than 1000 employees", ctx)) == ["co1", "co4", "co5"]
    answer = ask("deals with a discount", ctx, as_of=AS_OF)
    assert not answer.understood  # a column's name alone is not a condition: never silently ignored


def test_group_ranked_by_a_measure(ctx):
    answer = ask("top 1 owners by won deals", ctx, as_of=AS_OF)
    assert answer.value == {"Sam Rep": 2}
    answer = ask("which product has the most open pipeline", ctx, as_of=AS_OF)
    assert answer.value == {"Platform USD": 190000.0}


@pytest.mark.parametrize(
    "phrase, start, end",
    [
        ("3 days ago", "2026-10-28", "2026-10-29"),
        ("more than 30 days ago", None, "2026-10-02"),
        ("older than 2 weeks", None, "2026-10-18"),
        ("before 2017", None, "2017-01-01"),
        ("after june 2016", "2016-07-01", None),
        ("in q3", "2026-07-01", "2026-10-01"),
        ("in q1 2017", "2017-01-01", "2017-04-01"),
        ("h1 2017", "2017-01-01", "2017-07-01"),
        ("ytd", "2026-01-01", "2026-11-01"),
        ("yesterday", "2026-10-30", "2026-10-31"),
        ("last week", "2026-10-19", "2026-10-26"),
        ("the past week", "2026-10-25", "2026-11-01"),
        ("last year", "2025-01-01", "2026-01-01"),
        ("since march 5 2026", "2026-03-05", None),
        ("on 2026-03-05", "2026-03-05", "2026-03-06"),
        ("from jan 2017 to march 2017", "2017-01-01", "2017-04-01"),
        ("since last month", "2026-09-01", None),
        ("in december", "2025-12-01", "2026-01-01"),
    ],
)
def test_more_time_phrases(phrase, start, end):
    (found,) = find_times(phrase, AS_OF)
    assert found.past == (d(start) if start else None, d(end) if end else None)


def test_future_phrases_point_ahead():
    (found,) = find_times("next quarter", AS_OF)
    assert found.span_for(False) == (d("2027-01-01"), d("2027-04-01"))
    (found,) = find_times("in 2 weeks", AS_OF)
    assert found.span_for(True) == (d("2026-10-31"), d("2026-11-15"))
    assert find_times("deals that may close", AS_OF) == []


@pytest.mark.parametrize(
    "question",
    [
        "average deal value of won deals",
        "total pipeline",
        "sum of deal value by industry",
        "5 oldest open deals",
        "latest 3 emails",
        "contacts sorted by created date ascending",
        "companies with revenue over $100m",
        "deals between 50 and 100k",
        "deals closing next month over 10k",
        "outbound emails this year",
        "warm leads",
        "contacts we called in the past 30 days",
        "meetings with Alice Johnson",
        "companies like Acme Bank",
        "deals for Hooli",
        "accounts with at least 2 contacts",
        "deals by owner",
        "number of contacts per seniority",
        "which industry has the most won deals",
    ],
)
def test_plans_render_as_json_and_words(ctx, question):
    answer = ask(question, ctx, as_of=AS_OF)
    data = answer.to_json()
    assert json.loads(json.dumps(data, default=str))["plan"]["target"] in (
        "contacts",
        "companies",
        "deals",
        "activities",
    )
    assert answer.plan_words()
    assert answer.understood, (question, answer.unknown_words)


def test_aggregates_answer_with_numbers(ctx):
    assert ask("average deal value of won deals", ctx, as_of=AS_OF).value == 5000.0
    assert ask("total pipeline", ctx, as_of=AS_OF).value == {"EUR": 60000.0, "USD": 310000.0}
    assert ask("accounts with at least 2 contacts", ctx, as_of=AS_OF).ids == ["co1", "co3"]
    assert ask("companies like Acme Bank", ctx, as_of=AS_OF).ids[0] == "co3"  # same industry, no index
