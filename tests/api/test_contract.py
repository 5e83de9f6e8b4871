"""The API never answers 500 for input it can validate, and answers what its OpenAPI says it answers."""

from __future__ import annotations

import jsonschema_rs
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api import assert_error, make_client

# Issue 11: each of these answered 500 (DuplicateError, OverflowError, date out of range, ValueError).
CRASHING = [
    {"question": "top 5 leads"},
    {"question": "top 5 contacts"},
    {"question": "deals in the last 5000000 days"},
    {"question": "how many deals", "as_of": "9999-12-31"},
    {"question": "contacts created after 9999-99-99"},
]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from tests.support.api import build_home

    home = tmp_path_factory.mktemp("contract")
    build_home(home)
    with make_client(home) as c:
        yield c


@pytest.mark.parametrize("body", CRASHING, ids=[b["question"] for b in CRASHING])
def test_the_questions_that_crashed_answer_cleanly(client, body):
    r = client.post("/api/query/natural-language", json=body)
    assert r.status_code in (200, 422), r.text
    if r.status_code == 200:
        answer = r.json()
        assert isinstance(answer["understood"], bool) and "rows" in answer and "hints" in answer
    else:
        assert r.json()["error"] == "invalid_request"
    assert "Traceback" not in r.text


def test_as_of_out_of_range_is_not_understood_and_says_why(client):
    r = client.post("/api/query/natural-language", json={"question": "how many deals", "as_of": "9999-12-31"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["understood"] is False and "as_of" in answer["hints"][0] and "1900" in answer["hints"][0]


@pytest.mark.parametrize(
    "error",
    [
        ValueError("month must be in 1..12"),
        OverflowError("date value out of range"),
        pl.exceptions.DuplicateError("duplicate output name 'score'"),
    ],
)
def test_an_engine_error_on_a_question_is_200_not_understood(client, monkeypatch, error):
    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr("holocrm_core.nlq.ask", failing)  # the service calls the engine's entry point
    r = client.post(
        "/api/query/natural-language", json={"question": f"engine fails with {type(error).__name__}"}
    )
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["understood"] is False and answer["rows"] == [] and answer["suggestions"]
    assert "duplicate output name" not in r.text  # the engine's internals stay in the log


WORDS = [
    "top",
    "5",
    "leads",
    "contacts",
    "deals",
    "companies",
    "in",
    "the",
    "last",
    "days",
    "over",
    "$",
    "5000000",
    "9999",
    "created",
    "after",
    "before",
    "2024-02-30",
    "won",
    "lost",
    "by",
    "value",
    "how",
    "many",
    "show",
    "open",
    "0",
    "-1",
    "1e309",
    "quarter",
    "month",
    "week",
    "since",
    "between",
    "and",
]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=8),
    as_of=st.one_of(st.none(), st.dates().map(str)),
)
def test_generated_questions_never_answer_500(client, words, as_of):
    body = {"question": " ".join(words), **({"as_of": as_of} if as_of else {})}
    r = client.post("/api/query/natural-language", json=body)
    assert r.status_code in (200, 422), (body, r.text)


def test_a_boolean_is_not_a_limit(client):
    for path, body in (
        ("/api/query/natural-language", {"question": "how many deals", "limit": True}),
        ("/api/search/semantic", {"query": "cto", "limit": True}),
    ):
        problem = assert_error(client.post(path, json=body), 422, "invalid_request")
        assert "limit" in problem["detail"]


def test_nan_filters_are_refused_without_internal_names(client):
    r = client.post(
        "/api/search/semantic",
        content=b'{"query": "cto", "filters": {"industry": NaN}}',
        headers={"content-type": "application/json"},
    )
    body = assert_error(r, 422, "invalid_request")
    assert "industry" in body["detail"]
    assert "entity_id" not in r.text and "IS NULL" not in r.text
    unknown = assert_error(
        client.post("/api/search/semantic", json={"query": "cto", "filters": {"secret": "x"}}),
        422,
        "invalid_request",
    )
    assert "secret" in unknown["detail"] and "entity_id" not in str(unknown)
    r = client.get("/api/duplicates", params={"min_score": "nan"})
    assert_error(r, 422, "invalid_request")


def test_the_422_body_matches_the_declared_schema(client):
    spec = client.get("/openapi.json").json()
    declared = spec["paths"]["/api/query/natural-language"]["post"]["responses"]["422"]
    ref = declared["content"]["application/json"]["schema"]["$ref"]
    schema = {**spec["components"]["schemas"][ref.rsplit("/", 1)[-1]], "components": spec["components"]}
    validator = jsonschema_rs.validator_for(_resolve_refs(schema, spec))
    body = client.post("/api/query/natural-language", json={"question": ""}).json()
    assert validator.is_valid(body), body
    assert body["problems"][0]["where"].endswith("question")
    assert "HTTPValidationError" not in spec["components"]["schemas"]  # FastAPI's shape is not claimed


def _resolve_refs(node, spec):
    if isinstance(node, dict):
        if "$ref" in node:
            return _resolve_refs(spec["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]], spec)
        return {k: _resolve_refs(v, spec) for k, v in node.items() if k != "components"}
    if isinstance(node, list):
        return [_resolve_refs(v, spec) for v in node]
    return node


def test_404s_and_the_metrics_content_type_are_documented(client):
    spec = client.get("/openapi.json").json()
    for path, method in (
        ("/api/contacts/{contact_id}/score", "get"),
        ("/api/deals/{deal_id}/score", "get"),
        ("/api/contacts/{contact_id}/similar", "get"),
        ("/api/deals/{deal_id}/close", "post"),
        ("/api/contacts/{contact_id}/recommendation", "get"),
    ):
        assert "404" in spec["paths"][path][method]["responses"], path
    metrics = spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")
