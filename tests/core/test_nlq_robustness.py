"""NLQ never crashes: the questions that used to raise, bounded windows and dates, and a generated fuzz."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from holocrm_core.nlq import NLQContext, QuestionError, ask
from tests.core.test_nlq_data import AS_OF, make_scores, make_tables


@pytest.fixture(scope="module")
def ctx() -> NLQContext:
    tables = make_tables()
    tables["scored_leads"] = make_scores()
    return NLQContext.from_tables(tables)


@pytest.mark.parametrize("question", ["top 5 leads", "top 5 contacts", "top 3 hot leads by score"])
def test_top_k_by_score_shows_the_score_once(ctx, question):
    answer = ask(question, ctx, as_of=AS_OF)
    assert answer.understood and len(answer.ids) <= 5
    assert answer.rows.columns.count("score") == 1
    scores = answer.rows.get_column("score").to_list()
    assert scores == sorted(scores, reverse=True)


def test_a_window_longer_than_the_calendar_is_the_whole_history(ctx):
    everything = ask("deals", ctx, as_of=AS_OF).ids
    answer = ask("deals created in the last 5000000 days", ctx, as_of=AS_OF)
    assert answer.understood and sorted(answer.ids) == sorted(everything)
    assert ask("deals stuck for over 99999999 days", ctx, as_of=AS_OF).ids == []


@pytest.mark.parametrize(
    "as_of", ["9999-12-31", "0001-01-01", "1899-12-31", "2200-01-01", "yesterday", "2026-13-01"]
)
def test_as_of_outside_the_supported_span_is_a_question_error(ctx, as_of):
    with pytest.raises(QuestionError) as err:
        ask("open deals", ctx, as_of=as_of)
    assert err.value.field == "as_of" and isinstance(err.value, ValueError)


@pytest.mark.parametrize("question", ["", "   ", "x" * 5000])
def test_empty_or_huge_question_is_a_question_error(ctx, question):
    with pytest.raises(QuestionError):
        ask(question, ctx, as_of=AS_OF)


@pytest.mark.parametrize("question", ["deals created after 9999-99-99", "contacts added on feb 31 2025"])
def test_impossible_dates_are_not_understood_and_return_nothing(ctx, question):
    answer = ask(question, ctx, as_of=AS_OF)
    assert not answer.understood and answer.ids == [] and answer.rows.height == 0
    assert any("Not understood" in h for h in answer.hints)


FRAGMENTS = [
    "top", "5", "deals", "contacts", "leads", "companies", "won", "lost", "open", "closed", "in", "the", "last",
    "5000000", "days", "weeks", "quarter", "of", "2017", "9999-99-99", "9999", "over", "$", "100k", "between",
    "and", "by", "owner", "stage", "per", "how", "many", "no", "contact", "never", "emailed", "stuck", "for",
    "like", "Alice", "Johnson", "fintech", "hot", "mentioned", "pricing", "sorted", "score", "average",
    "total", "value", "not", "without", "q3", "since", "march", "before", "after", "%", "-", "'", "#", "qtr",
    "havent", "Björn", "cos", "first", "largest", "with", "employees", "0", "-5", "1e309", "99999999999999999999",
    "or", "is", "null", "subsidiaries", "founded", "1990", "us", "the us", "GTK 500", "?", "...", "e-mail",
]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=9))
def test_generated_questions_never_raise(ctx, words):
    answer = ask(" ".join(words), ctx, as_of=AS_OF)
    assert 0.0 <= answer.confidence <= 1.0
    if not answer.understood:
        assert answer.ids == [] and not answer.high_confidence
    answer.to_json()  # the API's shape is always serialisable


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.text(min_size=1, max_size=80),
    moment=st.dates(min_value=date(1900, 1, 1), max_value=date(2199, 12, 31)),
)
def test_arbitrary_text_and_dates_never_raise(ctx, text, moment):
    try:
        answer = ask(text, ctx, as_of=datetime(moment.year, moment.month, moment.day, tzinfo=UTC))
    except QuestionError:
        assert not text.strip()  # only blank text is refused
        return
    answer.to_json()


class _PagedIndex:
    """A stand-in vector index over n activities whose similarity falls with rank; records the page sizes."""

    def __init__(self, n: int, above: int):
        self.n, self.above, self.limits = n, above, []

    def search(self, text, entity_types=None, mode="vector", limit=10, filters=None):
        self.limits.append(limit)
        return [
            {"id": f"a{i}", "similarity": 0.9 if i < self.above else 0.1} for i in range(min(limit, self.n))
        ]


def test_semantic_part_has_no_fixed_cap():
    from holocrm_core.nlq.executor import semantic_activity_ids

    index = _PagedIndex(n=5000, above=1200)
    ids = semantic_activity_ids(index, "pricing", total=5000)
    assert len(ids) == 1200 and index.limits == [256, 1024, 4096]
    small = _PagedIndex(n=5000, above=10)
    assert len(semantic_activity_ids(small, "pricing", total=5000)) == 10 and small.limits == [256]
