"""The assistant's reading layer (issue 29): a stale focus makes a pronoun write ask which record; turns no
pattern matches are read by meaning over the catalogue's exemplars, with names, ids and slots spotted in any
order; short follow-ups refine the last question. Phrasings here are in no evaluation set."""

from __future__ import annotations

import pytest

from holocrm_core.chat import ChatData, ChatSession
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
