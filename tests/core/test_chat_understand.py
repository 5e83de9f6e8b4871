"""The assistant's reading layer (issue 29): a stale focus makes a pronoun write ask which record; turns no
pattern matches are read by meaning over the catalogue's exemplars, with names, ids and slots spotted in any
order; short follow-ups refine the last question. Phrasings here are in no evaluation set."""

from __future__ import annotations

import pytest

from holocrm_core.chat import ChatData, ChatSession
from holocrm_core.chat import understand as u
from tests.core.test_chat import Log
from tests.core.test_nlq_data import AS_OF


@pytest.fixture()
def chat(data):
    log = Log()
    session = ChatSession(ChatData.from_tables({**data.tables}, as_of=AS_OF), writer=log)
    session.log = log
    return session


@pytest.fixture(scope="module")
def data():
    from tests.core.test_nlq_data import make_scores, make_tables

    tables = make_tables()
    tables["scored_leads"] = make_scores()
    return ChatData.from_tables(tables, as_of=AS_OF)


def ids(turn):
    return [r["id"] for r in turn["records"]]


# ------------------------------------------------------------------------------------------- safety
def test_a_pronoun_write_after_a_turn_not_understood_asks_which_record(chat):
    assert chat.turn("show Acme core banking")["focus"]["id"] == "d1"
    lost = chat.turn("blorp the frobnicator quux")  # not understood: the rep may have meant another record
    assert lost["intent"] == "not_understood"
    asked = chat.turn("flag it as won")
    assert asked["clarify"] and asked["write"] != {"status": "proposed"}
    assert asked["choices"][0]["id"] == "d1"  # the focus is one of the numbered choices
    assert not chat.log.records
    picked = chat.turn("1")
    assert picked["write"]["status"] == "proposed" and picked["write"]["target"]["id"] == "d1"
    assert chat.turn("yes")["write"]["status"] == "made"
    assert [r["deal_id"] for _, r in chat.log.records] == ["d1"]


def test_a_pronoun_write_after_an_unresolved_name_offers_the_named_record_too(chat):
    chat.turn("show Acme core banking")
    missed = chat.turn("pull up Wayne Enterprises")  # no record like that: stale focus
    assert missed["focus"]["id"] == "d1" and chat.stale  # the focus is kept but stale
    asked = chat.turn("mark it as lost")
    assert asked["clarify"] and "d1" in [c["id"] for c in asked["choices"]]
    assert not chat.log.records


def test_the_stale_focus_survives_a_session_store_round_trip(chat, data):
    import json

    chat.turn("show Acme core banking")
    chat.turn("blorp the frobnicator quux")
    restored = ChatSession.restore(data, json.loads(json.dumps(chat.state())), writer=chat.log)
    asked = restored.turn("set it to lost")
    assert asked["clarify"] and asked["choices"][0]["id"] == "d1" and not chat.log.records


def test_a_turn_that_sets_the_focus_again_clears_the_stale_state(chat):
    chat.turn("show Acme core banking")
    chat.turn("blorp the frobnicator quux")
    chat.turn("open Globex pilot")
    proposed = chat.turn("mark it as won")
    assert proposed["write"]["status"] == "proposed" and proposed["write"]["target"]["id"] == "d3"


def test_a_company_with_several_open_deals_asks_which_deal_to_close(chat):
    chat.turn("open Initech legacy")
    chat.turn("reopen it: they came back")
    assert chat.turn("yes")["write"]["status"] == "made"  # Initech now has two open deals
    chat.turn("open Initech")
    asked = chat.turn("close that deal as lost")
    assert asked["clarify"] and sorted(c["id"] for c in asked["choices"]) == ["d4", "d7"]
    picked = chat.turn("the second one")
    assert picked["write"]["status"] == "proposed" and picked["write"]["target"]["id"] == "d7"


def test_a_record_id_is_a_name(chat):
    turn = chat.turn("pull up D4")
    assert turn["intent"] == "details" and ids(turn) == ["d4"]


# ----------------------------------------------------------------------------- reading by meaning
@pytest.mark.parametrize(
    ("setup", "text", "intent"),
    [
        ([], "bring me up to speed on Hooli", "summarize"),
        ([], "give me the lowdown on Globex Software", "summarize"),
        ([], "anything I should know about Hooli", "details"),
        ([], "what's Bob Smith's email", "details"),
        (["show Grace Hall"], "any advice on how to proceed?", "next_action"),
        ([], "how do I move Initech rollout along", "next_action"),
        (["show Alice Johnson"], "what's behind her rating", "explain_score"),
        (["show Carol White"], "shoot her an email draft", "draft_email"),
        (["show Dan Brown"], "jot down: wants pricing by friday", "log_note"),
        (["show Initech legacy"], "put it back into the pipeline, reopen", "reopen_deal"),
        (["show Globex pilot", "mark it won"], "sounds good", "confirm"),
        (["show Globex pilot", "mark it won"], "hold on, don't", "cancel"),
        ([], "what can this thing do?", "help"),
        ([], "order pizza for the office", "not_understood"),
        ([], "kick off a test of bandit vs cadence per contact", "start_experiment"),
        (["show Acme Bank"], "how about Initech?", "details"),
    ],
)
def test_unseen_phrasings_are_read_by_meaning(chat, setup, text, intent):
    for said in setup:
        chat.turn(said)
    assert chat.turn(text)["intent"] == intent


def test_an_outcome_said_casually_after_a_next_action_is_previewed(chat):
    chat.turn("show Alice Johnson")
    chat.turn("what should I do next with her?")
    turn = chat.turn("tried, no luck")
    assert turn["intent"] == "record_outcome" and turn["write"]["status"] == "proposed"
    assert chat.pending["record"]["reward"] == 0.0 and not chat.log.records


def test_a_command_clause_wins_and_the_other_clauses_are_its_context(chat):
    chat.turn("show Globex pilot")
    turn = chat.turn("client walked away last week, close it as lost")
    assert turn["intent"] == "close_deal" and turn["read"] == "clause"
    assert turn["write"]["diff"][0]["to"] == "lost" and turn["write"]["target"]["id"] == "d3"


def test_no_record_write_is_read_from_a_question(chat):
    chat.turn("show Globex pilot")
    turn = chat.turn("what did we lose last month")
    assert turn["intent"] == "question" and turn["write"] is None


def test_a_turn_that_is_only_a_name_finds_it(chat):
    turn = chat.turn("Umbrella Health?")
    assert turn["intent"] == "find" and ids(turn) == ["co4"]


def test_a_question_about_the_focus_s_company_shows_that_company(chat):
    chat.turn("show Dan Brown")
    turn = chat.turn("which company is he with?")
    assert turn["intent"] == "details" and ids(turn) == ["co3"]


def test_the_meaning_path_needs_no_model(data):
    """Without an embedder the exemplars are compared by words (the model is never required)."""
    ranked = u.rank("summarise the account for me", None)
    assert ranked[0][0] == "summarize" and u.decide(ranked, lexical=True) == "summarize"


# ---------------------------------------------------------------------------------- names, slots
def test_names_ids_and_short_names_are_spotted_anywhere(data):
    import polars as pl

    from tests.core.test_nlq_data import make_tables

    tables = make_tables()
    extra = (
        tables["companies"]
        .head(1)
        .with_columns(pl.lit("co9").alias("company_id"), pl.lit("Wayne Holdings Inc.").alias("name"))
    )
    tables["companies"] = pl.concat([tables["companies"], extra])
    chat_data = ChatData.from_tables(tables, as_of=AS_OF)
    found = u.spot(chat_data, "remind me what wayne said, and is D4 still open for Initech?")
    assert [(s.how, s.entries[0][1]) for s in found] == [("short", "co9"), ("id", "d4"), ("name", "co3")]


def test_slots_are_read_in_any_order():
    assert u.outcome("they chose a rival - we lost") == "lost" and u.outcome("signed today, won") == "won"
    assert u.result("nobody picked up, left a voicemail") == "failed"
    assert u.result("she wrote back within an hour") == "worked"
    assert u.result("went fine I think") is None
    assert u.experiment_slots("for deals, measure win rate: champion against heuristic") == {
        "variants": "champion vs heuristic",
        "unit": "deal",
        "metric": "win_rate",
    }
    assert u.window("nobody touched them in 3 wks") == "3 weeks"
    assert u.note_kind("spoke to her on the phone") == "call"
    assert u.clauses("they pulled out. mark it lost") == ["they pulled out", "mark it lost"]


# ------------------------------------------------------------------------------------- follow-ups
def test_short_follow_ups_refine_the_last_answer(chat):
    chat.turn("open deals")
    narrowed = chat.turn("which of those are in healthcare")
    assert narrowed["intent"] == "refine" and ids(narrowed) == ["d5"]
    chat.turn("open deals")
    ordered = chat.turn("biggest ones on top")
    assert ordered["intent"] == "refine" and ordered["arguments"]["sort"] == "value"
    assert ids(ordered)[0] == "d1"


def test_the_window_before_the_last_one(chat):
    chat.turn("deals won last quarter")  # Q3 2026 (as of 2026-10-31)
    before = chat.turn("and the quarter before that?")
    assert before["intent"] == "refine" and before["arguments"]["time"] == "q2 2026"


def test_a_count_sorted_becomes_the_list(chat):
    chat.turn("how many open deals do we have")
    listed = chat.turn("largest first")
    assert listed["intent"] == "refine" and len(listed["records"]) == 4


def test_rows_of_a_table_read_in_several_chunks_are_shown(data):
    """A short list whose rows all sit in a later chunk of the table was shown as a count only."""
    import polars as pl

    tables = {**data.tables}
    contacts = tables["contacts"]
    tables["contacts"] = pl.concat([contacts.head(5), contacts.tail(2)], rechunk=False)
    session = ChatSession(ChatData.from_tables(tables, as_of=AS_OF))
    turn = session.turn("contacts at Hooli")
    assert turn["answer"]["record_count"] == 1 and ids(turn) == ["c6"]


def test_lists_of_the_focus_survive_a_name_the_nl_layer_misreads():
    """A company whose name holds a field's word ("Industries") made the NL layer group by industry: the
    focus's deals and contacts, and a who-at question, are listed from its rows then."""
    import polars as pl

    from tests.core.test_nlq_data import make_tables

    tables = make_tables()
    tables["companies"] = tables["companies"].with_columns(
        pl.when(pl.col("company_id") == "co3")
        .then(pl.lit("Polargate Industries International Inc."))
        .otherwise(pl.col("name"))
        .alias("name")
    )
    session = ChatSession(ChatData.from_tables(tables, as_of=AS_OF))
    session.turn("show Polargate Industries International")
    assert ids(session.turn("any open deals there?")) == ["d4"]
    assert ids(session.turn("its contacts")) == ["c4", "c7"]
    who = session.turn("who do we know over at Polargate Industries International Inc.?")
    assert who["intent"] == "question" and who["answer"]["record_count"] == 2


def test_a_possessive_follow_up_on_deals_means_their_owner():
    """ "just Jo Seller's" when a contact is also called Jo Seller: the deals Jo Seller owns (no question)."""
    import polars as pl

    from tests.core.test_nlq_data import make_tables

    tables = make_tables()
    tables["contacts"] = tables["contacts"].with_columns(
        pl.when(pl.col("contact_id") == "c5")
        .then(pl.lit("Jo"))
        .otherwise(pl.col("first_name"))
        .alias("first_name"),
        pl.when(pl.col("contact_id") == "c5")
        .then(pl.lit("Seller"))
        .otherwise(pl.col("last_name"))
        .alias("last_name"),
        pl.when(pl.col("contact_id") == "c5")
        .then(pl.lit("Jo Seller"))
        .otherwise(pl.col("full_name"))
        .alias("full_name"),
    )
    session = ChatSession(ChatData.from_tables(tables, as_of=AS_OF))
    session.turn("open deals")
    mine = session.turn("just Jo Seller's")
    owned = tables["deals"].filter((pl.col("owner") == "Jo Seller") & ~pl.col("stage").is_in(["won", "lost"]))
    assert mine["intent"] == "refine" and not mine.get("clarify")
    assert sorted(ids(mine)) == sorted(owned["deal_id"].to_list())


def test_an_amount_said_of_deals_is_their_value():
    from holocrm_core.chat.questions import _deal_amount

    assert (
        _deal_amount("losses this quarter larger than 20k")
        == "losses this quarter with value larger than 20k"
    )
    assert _deal_amount("companies with more than 500 employees") == "companies with more than 500 employees"
    assert _deal_amount("deals worth over 10k") == "deals worth over 10k"  # a field named: as said


def test_a_follow_up_refines_only_right_after_an_answer(chat):
    """After a question then a record, "and <another deal>?" switches the focus (it refines nothing)."""
    chat.turn("open deals in financial services")
    chat.turn("show Acme core banking")
    switched = chat.turn("and Initech rollout?")
    assert switched["intent"] == "details" and switched["focus"]["id"] == "d4"
    assert chat.turn("mark it won")["write"]["target"]["id"] == "d4"


def test_a_field_asked_of_the_focus_by_pronoun_shows_it(chat):
    chat.turn("show Globex pilot")
    turn = chat.turn("what's the amount on it?")
    assert turn["intent"] == "details" and ids(turn) == ["d3"]


def test_a_note_for_a_surname_of_the_focus_goes_to_the_focus(chat):
    chat.turn("show Dan Brown")
    turn = chat.turn("note for Brown: prefers mornings")
    assert turn["intent"] == "log_note" and turn["write"]["target"]["id"] == "c4"


def test_a_share_said_after_a_next_action_is_the_outcome(chat):
    chat.turn("show Alice Johnson")
    chat.turn("what should I do next with her?")
    turn = chat.turn("she may come back to us, call it 30%")
    assert turn["intent"] == "record_outcome" and chat.pending["record"]["reward"] == 0.3
