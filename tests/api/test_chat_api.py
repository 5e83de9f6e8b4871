"""``POST /api/chat`` (issue 29): a conversation kept under its session id; a close confirmed there lands in
the API's own outcome log and deal states, a contradicting one is refused with the reason."""

from __future__ import annotations

import json

from tests.support.api import api_client


def test_chat_session_previews_confirms_and_refuses_writes(home):
    with api_client(home) as client:
        first = client.post("/api/chat", json={"text": "show Fleet renewal"})
        assert first.status_code == 200, first.text
        session = first.json()["session_id"]
        assert [r["id"] for r in first.json()["records"]] == ["D1"]

        def say(text):
            response = client.post("/api/chat", json={"text": text, "session_id": session})
            assert response.status_code == 200, response.text
            return response.json()

        assert say("close it as won")["write"]["status"] == "proposed"
        assert not (home / "logs" / "outcomes.ndjson").read_text().strip()
        made = say("yes")
        assert made["write"]["status"] == "made"
        (record,) = [json.loads(x) for x in (home / "logs" / "outcomes.ndjson").read_text().splitlines()]
        assert (record["kind"], record["deal_id"], record["outcome"]) == ("close", "D1", "won")
        # the API's own route sees the close the chat made: a lost close now contradicts it
        conflict = client.post("/api/deals/D1/close", json={"outcome": "lost"})
        assert conflict.status_code == 409
        assert "not the record in focus" in say("close Pilot as lost")["reply"]
        say("show Expansion")  # won in the export
        refused = say("close it as lost")
        assert refused["write"]["status"] == "refused" and "closed as won" in refused["write"]["reason"]
        assert say("yes")["write"] is None


def test_chat_sessions_do_not_share_their_focus(home):
    with api_client(home) as client:
        client.post("/api/chat", json={"text": "show Fleet renewal", "session_id": "a"})
        other = client.post("/api/chat", json={"text": "close it as won", "session_id": "b"}).json()
        assert other["write"]["status"] == "refused" and "nothing is in focus" in other["reply"]


def test_a_read_key_can_chat_but_not_confirm_a_write(home):
    keys = ("reader-key:read", "writer-key:write")
    with api_client(home, api_keys=keys) as client:
        read = {"X-API-Key": "reader-key"}
        client.post("/api/chat", json={"text": "show Pilot", "session_id": "r"}, headers=read)
        proposed = client.post("/api/chat", json={"text": "close it as won", "session_id": "r"}, headers=read)
        assert proposed.json()["write"]["status"] == "proposed"
        refused = client.post("/api/chat", json={"text": "yes", "session_id": "r"}, headers=read).json()
        assert refused["write"]["status"] == "refused" and "write scope" in refused["reply"]
        assert not (home / "logs" / "outcomes.ndjson").read_text().strip()
        assert client.post("/api/chat", json={"text": "show Pilot"}).status_code == 401


def test_chat_outcomes_and_reopenings_land_in_the_api_logs(home):
    with api_client(home) as client:

        def say(text):
            response = client.post("/api/chat", json={"text": text, "session_id": "w"})
            assert response.status_code == 200, response.text
            return response.json()

        say("show Person 1")
        assert say("the call worked")["write"]["status"] == "proposed"
        assert say("yes")["write"]["status"] == "made"
        (action,) = [json.loads(x) for x in (home / "logs" / "actions.ndjson").read_text().splitlines()]
        assert (action["contact_id"], action["action"], action["reward"]) == ("C1", "call", 1.0)
        say("show Expansion")  # won in the export
        assert say("reopen it: budget approved again")["write"]["status"] == "proposed"
        assert say("yes")["write"]["status"] == "made"
        (reopen,) = [json.loads(x) for x in (home / "logs" / "outcomes.ndjson").read_text().splitlines()]
        assert (reopen["kind"], reopen["deal_id"]) == ("reopen", "D3")
        # the API's own route sees the reopening: the deal may now be closed as lost
        assert client.post("/api/deals/D3/close", json={"outcome": "lost"}).status_code == 201
        assert say("reopen that deal")["write"]["status"] == "proposed"  # closed again: reopenable
