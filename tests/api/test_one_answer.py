"""One product at every door: the CLI and the API give the same answer, or the same refusal, to the same input.

Both call ``holocrm_core.services``; these tests hold them to it on the session's sample graph: 50 inputs per
endpoint (similar, search, duplicates, ask), each asked through the CLI (`--json`, working locally) and the
API (in process), and the answers compared field by field. A live server checks that `--server` only
transports (the same JSON again, `duplicates --limit 26`, `--mode semantic`, `search ""` refused).
"""

from __future__ import annotations

import json
import math
import socket
import threading
import time

import polars as pl
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from holocrm_api import ServingSettings, create_app
from holocrm_cli import app

PER_ENDPOINT = 50
AS_OF = "2026-10-31"
API_ONLY = {"index_version", "index_versions", "contact_id", "cached"}  # what only a server knows
runner = CliRunner()


def _same(value):
    """Comparable form: floats to 6 places (JSON round trips), API-only keys dropped."""
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, 6)
    if isinstance(value, dict):
        return {k: _same(v) for k, v in value.items() if k not in API_ONLY}
    if isinstance(value, list):
        return [_same(v) for v in value]
    return value


@pytest.fixture(scope="module")
def doors(sample_graph):
    """(cli(args) -> (exit code, JSON or None, output), the API TestClient), both over the sample graph."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in sample_graph.env.items():
            patch.setenv(key, value)
        settings = ServingSettings.from_env(home=sample_graph.home, reload_interval_s=0, load_models=False)
        with TestClient(create_app(settings), raise_server_exceptions=False) as api:

            def cli(*args: str):
                result = runner.invoke(app, list(args))
                try:
                    body = json.loads(result.stdout) if "--json" in args and result.stdout.strip() else None
                except ValueError:
                    body = None
                return result.exit_code, body, result.output

            yield cli, api


def _staged(sample_graph, table: str) -> pl.DataFrame:
    return pl.read_parquet(sample_graph.home / "warehouse" / f"{table}.parquet")


def _agree(cli_answer, api_response, what: str) -> None:
    assert api_response.status_code == 200, (what, api_response.text)
    assert cli_answer is not None, what
    assert _same(cli_answer) == _same(api_response.json()), what


def test_similar_is_the_same_answer_at_both_doors(doors, sample_graph):
    cli, api = doors
    contacts = _staged(sample_graph, "staged_contacts")["contact_id"].to_list()[:PER_ENDPOINT]
    assert len(contacts) == PER_ENDPOINT
    for n, contact_id in enumerate(contacts):
        limit = 1 + n % 10
        code, answer, output = cli("similar", "contact", contact_id, "--limit", str(limit), "--json")
        assert code == 0, output
        _agree(answer, api.get(f"/api/similar/contact/{contact_id}", params={"limit": limit}), contact_id)
        legacy = api.get(f"/api/contacts/{contact_id}/similar", params={"limit": limit})
        _agree(answer, legacy, contact_id)
        assert answer["results"] and all(r["label"] for r in answer["results"])  # a name beside each id
    deal = _staged(sample_graph, "staged_deals")["deal_id"][0]
    code, answer, _ = cli("similar", "deal", deal, "--filter", "stage=won,lost", "--json")
    response = api.get(f"/api/similar/deal/{deal}", params={"filter": ["stage=won,lost"]})
    _agree(answer, response, "deal with a filter")
    assert {r["stage"] for r in answer["results"]} <= {"won", "lost"}


def test_search_is_the_same_answer_at_both_doors_in_every_mode(doors, sample_graph):
    cli, api = doors
    contacts = _staged(sample_graph, "staged_contacts")
    companies = _staged(sample_graph, "staged_companies")["name"].drop_nulls().to_list()
    words = ["budget concerns", "pricing call", "renewal", "security review", "too expensive"]
    queries = (words + companies + contacts["full_name"].drop_nulls().to_list())[:PER_ENDPOINT]
    modes = ["hybrid", "vector", "semantic", "fulltext", "text", "keyword"]
    types = [None, ["contact"], ["company", "deal"], ["activity"]]
    for n, query in enumerate(queries):
        mode, limit, kinds = modes[n % len(modes)], 1 + n % 12, types[n % len(types)]
        args = ["search", query, "--mode", mode, "--limit", str(limit), "--json"]
        for kind in kinds or []:
            args += ["--type", kind]
        code, answer, output = cli(*args)
        assert code == 0, output
        body = {"query": query, "mode": mode, "limit": limit}
        if kinds:
            body["entity_types"] = kinds
        _agree(answer, api.post("/api/search/semantic", json=body), f"{mode}: {query}")
        assert answer["mode"] in ("hybrid", "vector", "fulltext") and "score_kind" in answer


def test_duplicates_is_the_same_page_at_both_doors(doors):
    cli, api = doors
    for n in range(PER_ENDPOINT):
        kind = [None, "contact", "company", "contacts"][n % 4]
        limit, offset, min_score = 1 + n % 30, n % 5, [0.0, 0.5, 0.9][n % 3]
        args = ["duplicates", "--limit", str(limit), "--offset", str(offset), "--min-score", str(min_score)]
        params = {"limit": limit, "offset": offset, "min_score": min_score}
        if kind:
            args += ["--entity", kind]
            params["entity_type"] = kind
        code, answer, output = cli(*args, "--json")
        assert code == 0, output
        _agree(answer, api.get("/api/duplicates", params=params), str(params))
    code, answer, _ = cli("duplicates", "--limit", "26", "--json")
    assert code == 0 and answer["limit"] == 26
    assert all(r["label_a"] and r["label_b"] for r in answer["results"])


def _questions(sample_graph) -> list[str]:
    industries = _staged(sample_graph, "staged_companies")["industry"].drop_nulls().unique().sort().to_list()
    fixed = [
        "how many open deals do we have",
        "won deals last quarter",
        "top 10 companies by open pipeline",
        "open pipeline by industry",
        "average deal value by industry",
        "deals lost this year",
        "contacts with no activity in the last 90 days",
        "top 5 deals by value",
        "how many contacts do we have",
        "deals in the zorblax sector",
        "blorp zxq frobnicate",
        "leads created last month",
    ]
    per_industry = [f"open deals in {i}" for i in industries] + [
        f"how many companies in {i}" for i in industries
    ]
    return (fixed + per_industry + [f"top {n} deals by value" for n in range(1, 60)])[:PER_ENDPOINT]


def test_ask_is_the_same_answer_at_both_doors(doors, sample_graph):
    cli, api = doors
    questions = _questions(sample_graph)
    assert len(questions) == PER_ENDPOINT
    for n, question in enumerate(questions):
        limit, partial = 1 + n % 20, n % 7 == 3
        args = ["ask", question, "--as-of", AS_OF, "--limit", str(limit), "--json"]
        code, answer, output = cli(*(args + (["--partial"] if partial else [])))
        assert code in (0, 2), output
        body = {"question": question, "as_of": AS_OF, "limit": limit, "partial": partial}
        _agree(answer, api.post("/api/query/natural-language", json=body), question)


# input -> (CLI args, API call); each is refused at both doors, for the same reason
REFUSALS = {
    "empty search": (["search", "  "], ("post", "/api/search/semantic", {"query": "  "})),
    "search limit 0": (
        ["search", "x", "--limit", "0"],
        ("post", "/api/search/semantic", {"query": "x", "limit": 0}),
    ),
    "search limit 101": (
        ["search", "x", "--limit", "101"],
        ("post", "/api/search/semantic", {"query": "x", "limit": 101}),
    ),
    "unknown mode": (
        ["search", "x", "--mode", "psychic"],
        ("post", "/api/search/semantic", {"query": "x", "mode": "psychic"}),
    ),
    "unknown type": (
        ["search", "x", "--type", "unicorn"],
        ("post", "/api/search/semantic", {"query": "x", "entity_types": ["unicorn"]}),
    ),
    "unknown filter": (
        ["search", "x", "--filter", "secret=1"],
        ("post", "/api/search/semantic", {"query": "x", "filters": {"secret": "1"}}),
    ),
    "unknown contact": (["similar", "contact", "NOPE-1"], ("get", "/api/similar/contact/NOPE-1", None)),
    "similar limit 500": (
        ["similar", "contact", "NOPE-1", "--limit", "500"],
        ("get", "/api/similar/contact/NOPE-1?limit=500", None),
    ),
    "duplicates of unicorns": (
        ["duplicates", "--entity", "unicorn"],
        ("get", "/api/duplicates?entity_type=unicorn", None),
    ),
    "duplicates limit 101": (["duplicates", "--limit", "101"], ("get", "/api/duplicates?limit=101", None)),
    "empty question": (["ask", " "], ("post", "/api/query/natural-language", {"question": " "})),
    "ask limit 0": (
        ["ask", "open deals", "--limit", "0"],
        ("post", "/api/query/natural-language", {"question": "open deals", "limit": 0}),
    ),
}
SAME_WORDS = {"empty search", "unknown contact", "empty question"}  # refused by the service itself at both


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_the_same_input_is_refused_the_same_way(doors, case):
    cli, api = doors
    args, (method, path, body) = REFUSALS[case]
    code, _, output = cli(*args)
    response = api.post(path, json=body) if method == "post" else api.get(path)
    status = response.status_code
    assert (code, status) in ((2, 422), (1, 404), (1, 503)), (case, code, status, output, response.text)
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in output, output  # one line naming the cause
    detail = response.json()["detail"]
    if case in SAME_WORDS:  # the service's own words at both doors
        assert lines[0].removeprefix("error: ") in detail, (lines[0], detail)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def live_server(sample_graph):
    import uvicorn

    with pytest.MonkeyPatch.context() as patch:
        for key, value in sample_graph.env.items():
            patch.setenv(key, value)
        settings = ServingSettings.from_env(home=sample_graph.home, reload_interval_s=0, load_models=False)
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(settings), port=port, log_level="error"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "the server did not start"
        yield f"http://127.0.0.1:{port}"
        server.should_exit = True
        thread.join(10)


def test_server_mode_only_transports(doors, live_server, sample_graph):
    cli, _ = doors
    contact = _staged(sample_graph, "staged_contacts")["contact_id"][3]
    for args in (
        ["duplicates", "--limit", "26"],
        ["search", "budget concerns", "--mode", "semantic", "--limit", "7"],
        ["search", "pricing", "--mode", "text", "--type", "activity"],
        ["search", "approves the budget", "--attachments"],  # two lists, each on its own scale
        ["similar", "contact", contact, "--limit", "4"],
        ["ask", "open pipeline by industry", "--as-of", AS_OF],
    ):
        local = cli(*args, "--json")
        remote = cli(*args, "--json", "--server", live_server)
        assert local[0] == remote[0] == 0, (args, local[2], remote[2])
        assert _same(local[1]) == _same(remote[1]), args
        if "--attachments" in args:
            assert "attachments" in local[1] and local[1]["attachments_score_kind"] != local[1]["score_kind"]
    code, _, output = cli("search", "", "--server", live_server)
    assert code == 2 and "search text is empty" in output
    code, _, output = cli("similar", "contact", "NOPE-1", "--server", live_server)
    assert code == 1 and "no contact with id 'NOPE-1'" in output
