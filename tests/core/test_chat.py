"""The conversation core (issue 29) on the small hand-built CRM of the NL tests: lookups, follow-ups,
clarifications, the woven "prepare me" request, and writes that are previewed, confirmed or refused."""

from __future__ import annotations

import polars as pl
import pytest

from holocrm_core.chat import CATALOGUE, ChatData, ChatSession, classify
from holocrm_core.chat.catalogue import PREPARE_PLAN, TRIAGE_PLAN
from holocrm_core.chat.engine import ChatError
from tests.core.test_nlq_data import AS_OF, make_scores, make_tables


@pytest.fixture(scope="module")
def data() -> ChatData:
    tables = make_tables()
    tables["scored_leads"] = make_scores()
    # two owners called Sam: "Sam's open deals" has two readings
    tables["deals"] = tables["deals"].with_columns(
        pl.when(pl.col("deal_id") == "d3").then(pl.lit("Sam Ode")).otherwise(pl.col("owner")).alias("owner")
    )
    return ChatData.from_tables(tables, as_of=AS_OF)


class Log:
    """What a door would append: every record handed to the writer, after the state check."""

    def __init__(self):
        self.records: list[tuple[str, dict]] = []

    def __call__(self, kind, record, check):
        if check is not None:
            check()
        self.records.append((kind, record))
        return {"record": record, "created": True}


@pytest.fixture()
def chat(data):
    log = Log()
    session = ChatSession(ChatData.from_tables({**data.tables}, as_of=AS_OF), writer=log)
    session.log = log
    return session


def ids(turn):
    return [r["id"] for r in turn["records"]]


def test_every_catalogue_intent_has_a_handler():
    handled = {"confirm", "cancel", "pick"}
    for intent in CATALOGUE:
        assert intent.name in handled or hasattr(ChatSession, f"_do_{intent.name}"), intent.name
    assert all(step in {i.name for i in CATALOGUE} for step in PREPARE_PLAN)


def test_a_name_shared_by_several_records_asks_which_and_the_pick_resolves_it(chat):
    turn = chat.turn("find acme")
    assert turn["intent"] == "find" and turn["clarify"]
    assert [c["id"] for c in turn["choices"]] == ["co1", "d2", "d1"]
    picked = chat.turn("the third one")
    assert picked["intent"] == "pick" and ids(picked) == ["d1"] and picked["focus"]["id"] == "d1"


def test_a_misspelt_name_is_found_and_becomes_the_focus(chat):
    turn = chat.turn("show Alice Jonson")
    assert turn["intent"] == "details" and ids(turn) == ["c1"]
    assert turn["details"]["timeline"][0]["subject"] and turn["focus"]["id"] == "c1"
    assert chat.turn("why is she hot?")["score"]["band"] == "hot"
    assert chat.turn("summarize it")["summary"]


def test_follow_ups_refine_the_previous_question(chat):
    assert ids(chat.turn("open deals")) == ["d1", "d3", "d4", "d5"]
    fintech = chat.turn("only the ones in financial services")
    assert fintech["intent"] == "refine" and ids(fintech) == ["d1", "d4"]
    assert fintech["arguments"]["question"] == "open deals in financial services"
    quarter = chat.turn("what about last quarter?")
    assert ids(quarter) == ["d4"]
    assert "pick 1 to 1" in chat.turn("the second one")["error"]  # one record left: said, not guessed
    assert chat.turn("the first one")["focus"]["id"] == "d4"
    by_value = chat.turn("sort by value")
    assert by_value["arguments"]["question"].endswith("last quarter sorted by value")


def test_another_time_window_replaces_the_previous_one(chat):
    assert ids(chat.turn("deals won last quarter")) == ["d2", "d6"]
    this_year = chat.turn("what about this year?")
    assert this_year["arguments"]["question"] == "deals won this year"
    assert set(ids(this_year)) == {"d2", "d6"}


def test_a_question_with_several_readings_asks_and_the_second_one_answers(chat):
    turn = chat.turn("Sam's open deals")
    assert turn["clarify"] and len(turn["choices"]) == 2 and not turn["records"]
    picked = chat.turn("the second one")
    assert picked["intent"] == "pick" and set(ids(picked)) == {"d1", "d5"}  # Sam Rep's open deals


def test_not_understood_is_said_with_suggestions(chat):
    turn = chat.turn("blorp the zzz")
    assert turn["intent"] == "not_understood" and turn["suggestions"] and not turn["records"]


def test_a_close_is_previewed_and_made_only_after_yes(chat):
    chat.turn("show Acme core banking")
    proposed = chat.turn("close it as won")
    assert proposed["write"]["status"] == "proposed" and not chat.log.records
    assert proposed["write"]["diff"] == [{"deal_id": "d1", "field": "status", "from": "open", "to": "won"}]
    made = chat.turn("yes")
    assert made["write"]["status"] == "made" and [r["deal_id"] for _, r in chat.log.records] == ["d1"]
    record = chat.log.records[0][1]
    assert record["kind"] == "close" and record["outcome"] == "won" and record["idempotency_key"]
    # closing it as lost now contradicts the close just made
    refused = chat.turn("close that deal as lost")
    assert refused["write"]["status"] == "refused" and "contradicts" in refused["write"]["reason"]
    assert chat.turn("yes")["write"] is None and len(chat.log.records) == 1


def test_anything_but_yes_drops_the_write(chat):
    chat.turn("show Initech rollout")
    assert chat.turn("mark it lost")["write"]["status"] == "proposed"
    assert chat.turn("open deals")["write"] is None
    assert chat.turn("yes")["write"] is None and not chat.log.records


def test_a_write_to_a_record_not_in_focus_is_refused(chat):
    chat.turn("show Initech rollout")
    refused = chat.turn("close Globex pilot as won")
    assert refused["write"]["status"] == "refused" and "not the record in focus" in refused["reply"]
    assert chat.turn("yes")["write"] is None and not chat.log.records


def test_a_close_contradicting_the_export_is_refused(chat):
    chat.turn("show Acme add-on")  # won in the export
    refused = chat.turn("close it as lost")
    assert refused["write"]["status"] == "refused" and "closed as won" in refused["write"]["reason"]


def test_yes_flag_makes_the_previewed_write_at_once(chat):
    chat.turn("show Umbrella expansion")
    made = chat.turn("log a note: asked for the security review", yes=True)
    assert made["write"]["status"] == "made" and made["write"]["via"] == "--yes"
    kind, record = chat.log.records[0]
    assert (
        kind == "log_note"
        and record["entity_id"] == "d5"
        and record["text"] == "asked for the security review"
    )


def test_a_door_without_a_writer_refuses_the_write(data):
    session = ChatSession(data)
    session.turn("show Globex pilot")
    session.turn("close it as won")
    assert session.turn("yes")["write"]["status"] == "refused"


def test_prepare_weaves_find_details_score_action_summary_in_the_trace(chat):
    turn = chat.turn("prepare me for my call with Initech")
    assert turn["intent"] == "prepare" and turn["plan"] == list(PREPARE_PLAN)
    assert [s["step"] for s in turn["trace"]] == list(PREPARE_PLAN)
    assert ids(turn) == ["co3"] and turn["score"]["id"] == "c4" and turn["summary"]
    assert turn["next_action"]["contact_id"] in {"c4", "c7"}


def test_pronouns_without_a_focus_ask_for_a_record(chat):
    turn = chat.turn("summarize it")
    assert "nothing is in focus" in turn["error"]
    with pytest.raises(ChatError):
        chat.resolve("it")


def test_classify_reads_the_catalogue_only():
    assert classify("close that deal as won") == ("close_deal", {"ref": "that deal", "outcome": "won"})
    assert classify("sort by value") == ("refine", {"sort": "value"})
    assert classify("rm -rf /") is None  # not an intent: goes to the question layer, never run


# ------------------------------------------------------------------------- outcomes, reopening, experiments
@pytest.fixture()
def lab(data, tmp_path):
    """A session whose experiments live in a temporary home and whose writer creates them."""
    from holocrm_core.chat.experiment_intents import create_experiment
    from holocrm_core.experiments.service import ExperimentService

    service = ExperimentService(tmp_path)
    log = Log()

    def writer(kind, record, check):
        log(kind, record, check)
        return create_experiment(service, record) if kind == "start_experiment" else {"record": record}

    tables = {**data.tables}
    session = ChatSession(
        ChatData.from_tables(tables, as_of=AS_OF, experiments_factory=lambda: service), writer=writer
    )
    session.log, session.service = log, service
    return session


def test_an_action_outcome_is_previewed_and_recorded_for_the_contact_in_focus(chat):
    chat.turn("show Alice Johnson")
    proposed = chat.turn("the call worked")
    assert proposed["intent"] == "record_outcome" and proposed["write"]["status"] == "proposed"
    assert not chat.log.records
    assert chat.turn("yes")["write"]["status"] == "made"
    kind, record = chat.log.records[0]
    assert kind == "record_outcome"
    assert (record["contact_id"], record["action"], record["reward"]) == ("c1", "call", 1.0)
    assert record["idempotency_key"] and record["context"]["lifecycle_status"] == "lead"
    # no action named: the one the decision service recommends for her
    advised = chat.turn("what should I do next?")["next_action"]["action"]
    chat.turn("record the outcome: 25%")
    chat.turn("yes")
    assert chat.log.records[-1][1]["action"] == advised and chat.log.records[-1][1]["reward"] == 0.25


def test_an_outcome_for_another_contact_than_the_focus_is_refused(chat):
    chat.turn("show Alice Johnson")
    refused = chat.turn("the email to Dan Brown worked")
    assert refused["write"]["status"] == "refused" and "not the record in focus" in refused["reply"]
    assert chat.turn("the call worked", yes=False)["write"]["status"] == "proposed"
    assert chat.turn("no")["write"]["status"] == "cancelled" and not chat.log.records


def test_a_closed_deal_is_reopened_after_yes_and_an_open_one_is_refused(chat):
    chat.turn("show Acme add-on")  # won in the export
    assert chat.turn("close it as lost")["write"]["status"] == "refused"
    proposed = chat.turn("reopen it: the customer came back")
    assert proposed["write"]["diff"] == [{"deal_id": "d2", "field": "status", "from": "won", "to": "open"}]
    assert chat.turn("yes")["write"]["status"] == "made"
    ((kind, record),) = chat.log.records
    assert (kind, record["kind"], record["reason"]) == ("reopen_deal", "reopen", "the customer came back")
    assert chat.turn("close it as lost")["write"]["status"] == "proposed"  # open now: a close is valid
    chat.turn("show Acme core banking")  # open
    refused = chat.turn("reopen that deal")
    assert refused["write"]["status"] == "refused" and "nothing to reopen" in refused["write"]["reason"]


def test_an_experiment_is_started_after_yes_and_its_report_read(lab):
    proposed = lab.turn("start an experiment cadence vs ppo")
    assert proposed["write"]["status"] == "proposed" and not lab.service.list()
    assert lab.turn("yes")["write"]["status"] == "made"
    (experiment,) = lab.service.list()
    assert experiment.name == "cadence-vs-ppo" and experiment.unit == "contact"
    assert [v.strategy for v in experiment.variants] == ["decisions.cadence", "decisions.ppo"]
    report = lab.turn("how is it doing?")
    assert report["intent"] == "read_experiment" and report["experiment"]["experiment"] == "cadence-vs-ppo"
    again = lab.turn("start an experiment cadence vs ppo")
    assert again["write"]["status"] == "refused" and "exists already" in again["reply"]
    assert lab.turn("start an experiment cadence vs magic")["write"]["status"] == "refused"
    assert lab.turn("experiments")["experiments"][0]["name"] == "cadence-vs-ppo"


def test_triage_retrieves_filters_scores_and_decides_each_with_the_trace(chat):
    turn = chat.turn(
        "which of my hot leads in fintech haven't heard from us in two weeks, and what should I do with each?"
    )
    assert turn["intent"] == "triage" and [s["step"] for s in turn["trace"]] == list(TRIAGE_PLAN)
    counts = [s["records"] for s in turn["trace"]]
    assert counts[0] == 3 and counts[1] == 2  # c1, c4, c7 in fintech; c1 was emailed on 2026-10-28
    assert ids(turn) == ["c4"] and turn["answer"]["record_count"] == 1
    (row,) = turn["triage"]
    assert row["band"] == "hot" and row["last_touch"] == "2026-09-01" and row["action"]
    every = chat.turn("triage leads in financial services")
    assert ids(every) == ["c1", "c4", "c7"]  # best score first
    assert chat.turn("the second one")["focus"]["id"] == "c4"


def test_help_lists_every_intent_and_keeps_a_pending_write(chat):
    chat.turn("show Globex pilot")
    chat.turn("close it as won")
    shown = chat.turn("help")
    assert {h["intent"] for h in shown["help"]} >= {
        "triage",
        "record_outcome",
        "reopen_deal",
        "start_experiment",
    }
    assert chat.turn("yes")["write"]["status"] == "made"


def test_the_session_state_round_trips_through_json(chat, data):
    import json

    chat.turn("find acme")  # numbered choices pending
    state = json.loads(json.dumps(chat.state()))
    again = ChatSession.restore(chat.data, state, writer=chat.log)
    assert again.turn("the third one")["focus"]["id"] == "d1"
    again.turn("close it as won")
    resumed = ChatSession.restore(chat.data, json.loads(json.dumps(again.state())), writer=chat.log)
    assert resumed.turn("yes")["write"]["status"] == "made"
    assert [r["deal_id"] for _, r in chat.log.records] == ["d1"]


def test_session_store_shares_state_and_remembers_event_ids(tmp_path):
    from holocrm_core.chat.sessions import SessionStore

    one, two = SessionStore.under(tmp_path), SessionStore.under(tmp_path)
    one.save("s1", {"id": "s1", "turns": 3})
    assert two.load("s1") == {"id": "s1", "turns": 3} and two.load("nope") is None
    assert one.first_time("Ev1") and not two.first_time("Ev1")


def test_the_timeline_shows_what_attachments_say(data):
    acts = data.tables["activities"]
    act = acts.filter(pl.col("contact_id") == "c1")["activity_id"][0]
    tables = {
        **data.tables,
        "attachments": pl.DataFrame(
            {"attachment_id": ["a1"], "activity_id": [act], "file_name": ["quote.pdf"]}
        ),
        "attachment_texts": pl.DataFrame({"attachment_id": ["a1"], "text": ["Quote: 120 seats at 40 EUR"]}),
    }
    session = ChatSession(ChatData.from_tables(tables, as_of=AS_OF))
    turn = session.turn("show Alice Johnson")
    (entry,) = [t for t in turn["details"]["timeline"] if t["activity_id"] == act]
    assert entry["attachments"] == [{"file_name": "quote.pdf", "text": "Quote: 120 seats at 40 EUR"}]
    assert "[quote.pdf] Quote: 120 seats" in turn["reply"]


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("can you find Alice Johnson, please?", "find"),
        ("pull up Acme Bank", "details"),
        ("show me the timeline for Alice Johnson", "details"),
        ("show me deals similar to Acme core banking", "similar"),
        ("find notes mentioning security review", "search"),
        ("what's her score?", "explain_score"),
        ("give me the next best action for Dan Brown", "next_action"),
        ("summary please", "summarize"),
        ("write a follow-up to her", "draft_email"),
        ("note: called and left a message", "log_note"),
        ("it worked", "record_outcome"),
        ("the email got no reply", "record_outcome"),
        ("set it to won", "close_deal"),
        ("reopen it because the customer came back", "reopen_deal"),
        ("run an experiment comparing the cadence and the ppo policy", "start_experiment"),
        ("what are the results of experiment eval-nba?", "read_experiment"),
        ("help me prepare for my call with Initech", "prepare"),
        ("what should I do with each of my leads in retail that we haven't contacted in 30 days?", "triage"),
        ("and this year?", "refine"),
        ("yes please", "confirm"),
        ("no thanks", "cancel"),
        ("what can you do?", "help"),
        ("sumarize it", "summarize"),  # a verb one edit away
        ("shwo Acme Bank", "details"),
    ],
)
def test_phrasings_read_as_their_intent(text, intent):
    assert classify(text)[0] == intent


def test_an_inflected_verb_is_no_typo():
    assert classify("closed deals last month") is None  # a question, not "close ..."
    assert classify("logged calls this week") is None


def test_a_question_about_the_record_in_focus_names_it(chat):
    chat.turn("show Acme Bank")
    contacts = chat.turn("who are its contacts?")
    assert contacts["intent"] == "question" and contacts["arguments"]["question"] == "contacts of Acme Bank"
    assert ids(contacts) == ["c1", "c2"]
    assert ids(chat.turn("its open deals")) == ["d1"]
    assert chat.turn("the second one")["error"]  # one open deal: nothing to pick as the second


def test_every_example_in_the_readme_intent_table_reads_as_its_intent(data):
    """The held-out dialogues are written from README's table: each example there, said with a record in
    focus, must be answered as its row's intent."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("| intent | what it does | examples |") :]
    section = section[: section.index("\n\n")]
    checked = 0
    for row in section.splitlines()[2:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        names = re.findall(r"`([a-z_]+)`", cells[0])
        for i, example in enumerate(re.findall(r"`([^`]+)`", cells[-1])):
            name = names[min(i, len(names) - 1)]  # `confirm` / `cancel`: one example each
            session = ChatSession(data)
            session.turn("show Acme Bank")
            assert session.turn(example)["intent"] == name, (example, name)
            checked += 1
    assert checked >= 40


def test_that_deal_of_a_contact_is_its_open_deal_to_close_and_its_closed_deal_to_reopen(chat):
    chat.turn("show Bob Smith")  # his deals: Acme add-on (won)
    reopen = chat.turn("reopen that deal")
    assert reopen["write"]["status"] == "proposed" and reopen["write"]["target"]["id"] == "d2"
    assert chat.turn("yes")["write"]["status"] == "made"
    chat.turn("show Alice Johnson")  # her deals: Acme core banking (open)
    assert chat.turn("close that deal as won")["write"]["target"]["id"] == "d1"
