"""`holocrm chat --script FILE --json` (issue 29): one JSON object per turn; writes reach the API's outcome
log only after "yes", in its format, and the deal-state rules hold across processes."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from holocrm_core.deal_states import latest_valid_outcomes
from holocrm_core.warehouse import Warehouse
from tests.core.test_nlq_data import make_tables

SCRIPT = """
# a lookup, a follow-up, a clarification, a write previewed and confirmed, a write refused
find acme
the first one
open deals
only the ones in financial services
show Acme core banking
close it as won
yes
close Globex pilot as lost
close it as lost
"""


def _home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    warehouse = Warehouse(home / "warehouse")
    for entity, frame in make_tables().items():
        warehouse.write(f"staged_{entity}", frame)
    monkeypatch.setenv("HOLOCRM_HOME", str(home))
    return home


def _run(tmp_path, script: str, *extra: str) -> list[dict]:
    from holocrm_cli import app

    path = tmp_path / "script.txt"
    path.write_text(script)
    result = CliRunner().invoke(
        app, ["chat", "--script", str(path), "--json", "--as-of", "2026-10-31", *extra]
    )
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]


def test_script_turns_as_json_and_the_confirmed_close_in_the_outcome_log(tmp_path, monkeypatch):
    home = _home(tmp_path, monkeypatch)
    turns = _run(tmp_path, SCRIPT)
    assert [t["intent"] for t in turns] == [
        "find", "pick", "question", "refine", "details", "close_deal", "confirm", "close_deal", "close_deal",
    ]  # fmt: skip
    assert [c["id"] for c in turns[0]["choices"]] == ["co1", "d2", "d1"] and turns[0]["clarify"]
    assert [r["id"] for r in turns[1]["records"]] == ["co1"]
    assert [r["id"] for r in turns[3]["records"]] == ["d1", "d4"]
    assert turns[5]["write"]["status"] == "proposed" and turns[6]["write"]["status"] == "made"
    assert turns[7]["write"]["status"] == "refused" and "not the record in focus" in turns[7]["reply"]
    assert turns[8]["write"]["status"] == "refused" and "contradicts" in turns[8]["reply"]
    assert all("trace" in t for t in turns)
    log = [json.loads(line) for line in (home / "logs" / "outcomes.ndjson").read_text().splitlines()]
    assert [(r["kind"], r["deal_id"], r["outcome"]) for r in log] == [("close", "d1", "won")]
    assert latest_valid_outcomes(log)[0]["idempotency_key"] == log[0]["idempotency_key"]
    # a new process reads the log: the deal is closed as won, closing it as lost is still refused
    again = _run(tmp_path, "show Acme core banking\nclose it as lost\nyes\n")
    assert again[1]["write"]["status"] == "refused" and again[2]["write"] is None
    assert len((home / "logs" / "outcomes.ndjson").read_text().splitlines()) == 1


def test_yes_flag_writes_a_note_to_the_notes_log(tmp_path, monkeypatch):
    home = _home(tmp_path, monkeypatch)
    turns = _run(tmp_path, "show Initech rollout\nlog a call: they want a pilot\n", "--yes")
    assert turns[1]["write"]["status"] == "made"
    (note,) = [json.loads(line) for line in (home / "logs" / "notes.ndjson").read_text().splitlines()]
    assert (note["kind"], note["entity_id"], note["text"]) == ("call", "d4", "they want a pilot")


def test_outcomes_reopenings_and_experiments_reach_the_api_logs_after_yes(tmp_path, monkeypatch):
    from holocrm_core.experiments.service import ExperimentService

    home = _home(tmp_path, monkeypatch)
    script = (
        "show Alice Johnson\nthe call worked\nyes\nshow Acme add-on\nreopen it: they came back\nyes\n"
        "start an experiment cadence vs ppo\nyes\nhow is it doing?\n"
    )
    turns = _run(tmp_path, script)
    assert [t["write"]["status"] for t in turns if t["write"]] == ["proposed", "made"] * 3
    (action,) = [json.loads(x) for x in (home / "logs" / "actions.ndjson").read_text().splitlines()]
    assert (action["contact_id"], action["action"], action["reward"]) == ("c1", "call", 1.0)
    (reopen,) = [json.loads(x) for x in (home / "logs" / "outcomes.ndjson").read_text().splitlines()]
    assert (reopen["kind"], reopen["deal_id"], reopen["reopened_from"]) == ("reopen", "d2", "won")
    assert [e.name for e in ExperimentService(home).list()] == ["cadence-vs-ppo"]
    assert turns[-1]["experiment"]["experiment"] == "cadence-vs-ppo"
    # the reopening is in the log: a new process may close the deal as lost now
    again = _run(tmp_path, "show Acme add-on\nclose it as lost\nyes\n")
    assert again[2]["write"]["status"] == "made"


def test_no_staged_tables_is_one_clear_line(tmp_path, monkeypatch):
    from holocrm_cli import app

    monkeypatch.setenv("HOLOCRM_HOME", str(tmp_path / "empty"))
    result = CliRunner().invoke(app, ["chat", "--script", "-", "--json"], input="find acme\n")
    assert result.exit_code == 1 and "run `holocrm run` first" in result.output


def test_script_over_the_sample_graph(sample_env, tmp_path):
    """The real artifacts of `holocrm run`: scores with their model version, the decision service, the NL
    vocabulary; a woven request's trace names each step."""
    import polars as pl

    warehouse = Warehouse(sample_env.home / "warehouse")
    companies = warehouse.read("staged_companies")
    names = companies.group_by("name").len().filter(pl.col("len") == 1)["name"].sort()
    row = companies.filter(pl.col("name") == names[0]).row(0, named=True)
    script = (
        f"show {row['name']}\nprepare me for my call with {row['name']}\nopen deals\nblorp zzz\n"
        f"show {row['name']}\nsimilar to it\nsearch {row['name']}\n"
    )
    turns = _run(tmp_path, script)
    assert [t["intent"] for t in turns] == [
        "details", "prepare", "question", "not_understood", "details", "similar", "search",
    ]  # fmt: skip
    assert [r["id"] for r in turns[0]["records"]] == [row["company_id"]]
    steps = {s["step"]: s for s in turns[1]["trace"]}
    assert list(steps) == ["find", "details", "explain_score", "next_action", "summarize"]
    action = turns[1]["next_action"]
    assert action["decided"] or steps["next_action"]["model_version"] == action["policy_version"]
    if turns[1].get("score"):
        assert steps["explain_score"]["model_version"] == turns[1]["score"]["model_version"]
    open_deals = warehouse.read("staged_deals").filter(
        ~pl.col("stage").is_in(["won", "lost"]) & pl.col("stage").is_not_null()
    )
    assert turns[2]["answer"]["record_count"] == open_deals.height
    similar = turns[5]
    assert "error" not in similar, similar["reply"]
    assert similar["records"] and {r["entity_type"] for r in similar["records"]} == {"company"}
    assert row["company_id"] not in [r["id"] for r in similar["records"]]
    assert "error" not in turns[6], turns[6]["reply"]
    assert turns[6]["records"] and turns[6]["trace"][0]["step"] == "search"
