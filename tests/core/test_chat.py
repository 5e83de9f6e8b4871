"""The conversation core (issue 29) on the small hand-built CRM of the NL tests: lookups, follow-ups,
clarifications, the woven "prepare me" request, and writes that are previewed, confirmed or refused."""

from __future__ import annotations

import polars as pl
import pytest

from holocrm_core.chat import CATALOGUE, ChatData, ChatSession, classify
from holocrm_core.chat.catalogue import PREPARE_PLAN
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
