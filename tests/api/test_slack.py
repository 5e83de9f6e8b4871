"""The Slack doors to the chat (issue 29): signed slash commands and events, the url_verification challenge,
401 on a bad or stale signature, one session per Slack user and channel, retried events run once."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

from holocrm_api.routes.slack import slack_signature
from tests.support.api import api_client, expect_error

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def signed(body: bytes, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    timestamp = str(int(time.time()) if at is None else at)
    return {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": slack_signature(secret, timestamp, body),
    }


def command(client, text: str, user: str = "U1", channel: str = "C1"):
    body = urlencode(
        {"team_id": "T1", "channel_id": channel, "user_id": user, "command": "/crm", "text": text}
    ).encode()
    headers = {**signed(body), "Content-Type": "application/x-www-form-urlencoded"}
    return client.post("/api/slack/commands", content=body, headers=headers)


def test_the_signature_is_hmac_sha256_of_v0_timestamp_body():
    # Slack's documented example (api.slack.com/authentication/verifying-requests-from-slack)
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&"
        b"channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&"
        b"response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
        b"trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    assert (
        slack_signature(SECRET, "1531420618", body)
        == "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    )


def test_slash_commands_keep_a_session_per_user_and_channel_and_write_after_yes(home):
    with api_client(home, api_keys=("k:write",), slack_signing_secret=SECRET) as client:
        shown = command(client, "show Fleet renewal")
        assert shown.status_code == 200, shown.text
        assert shown.json()["response_type"] == "ephemeral" and "Fleet renewal" in shown.json()["text"]
        assert [r["id"] for r in shown.json()["records"]] == ["D1"]
        other = command(client, "close it as won", user="U2")  # another user: nothing in focus
        assert other.json()["write"]["status"] == "refused"
        proposed = command(client, "close it as won")
        assert (
            proposed.json()["write"]["status"] == "proposed" and "About to change" in proposed.json()["text"]
        )
        assert not (home / "logs" / "outcomes.ndjson").read_text().strip()
        made = command(client, "yes")
        assert made.json()["write"]["status"] == "made"
        (record,) = [json.loads(x) for x in (home / "logs" / "outcomes.ndjson").read_text().splitlines()]
        assert (record["deal_id"], record["outcome"], record["kind"]) == ("D1", "won", "close")
        assert command(client, "").json()["intent"] == "help"  # an empty command lists what it can do


def test_a_bad_missing_or_stale_signature_is_401_and_no_secret_is_404(home):
    body = urlencode({"team_id": "T1", "channel_id": "C1", "user_id": "U1", "text": "show Pilot"}).encode()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    with api_client(home, slack_signing_secret=SECRET) as client:
        wrong = client.post("/api/slack/commands", content=body, headers={**form, **signed(body, "other")})
        expect_error(wrong, 401, "bad_signature")
        stale = client.post(
            "/api/slack/commands", content=body, headers={**form, **signed(body, at=int(time.time()) - 301)}
        )
        expect_error(stale, 401, "bad_signature")
        expect_error(client.post("/api/slack/commands", content=body, headers=form), 401, "bad_signature")
        tampered = signed(body)
        changed = body.replace(b"Pilot", b"Fleet")
        expect_error(
            client.post("/api/slack/commands", content=changed, headers={**form, **tampered}),
            401,
            "bad_signature",
        )
    with api_client(home) as client:
        expect_error(
            client.post("/api/slack/commands", content=body, headers={**form, **signed(body)}),
            404,
            "not_configured",
        )


def test_events_answer_the_challenge_run_mentions_once_and_skip_bots(home):
    with api_client(home, slack_signing_secret=SECRET) as client:

        def event(payload: dict, retry: bool = False):
            body = json.dumps(payload).encode()
            headers = {**signed(body), "Content-Type": "application/json"}
            if retry:
                headers["X-Slack-Retry-Num"] = "1"
            return client.post("/api/slack/events", content=body, headers=headers)

        challenge = event({"type": "url_verification", "token": "t", "challenge": "3eZbrw1aBm2rZgRNFdxV2595"})
        assert challenge.status_code == 200 and challenge.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595"}
        mention = {
            "type": "event_callback",
            "team_id": "T1",
            "event_id": "Ev1",
            "event": {"type": "app_mention", "user": "U1", "channel": "C1", "text": "<@U0BOT> show Pilot"},
        }
        first = event(mention)
        assert first.status_code == 200, first.text
        assert first.json()["intent"] == "details" and "Pilot" in first.json()["reply"]
        assert event(mention, retry=True).json()["duplicate"] is True
        bot = {**mention, "event_id": "Ev2", "event": {**mention["event"], "bot_id": "B1"}}
        assert "ignored" in event(bot).json()
        chatter = {
            **mention,
            "event_id": "Ev3",
            "event": {**mention["event"], "type": "message", "channel_type": "channel"},
        }
        assert "ignored" in event(chatter).json()  # only mentions and direct messages are turns
        direct = {
            **mention,
            "event_id": "Ev4",
            "event": {**chatter["event"], "channel_type": "im", "channel": "D1"},
        }
        assert event(direct).json()["intent"] == "details"
        # the mention's session is the slash command's: same team, channel and user
        assert command(client, "summarize it").json()["intent"] == "summarize"
        forged = json.dumps({"type": "url_verification", "challenge": "x"}).encode()
        bad = client.post("/api/slack/events", content=forged, headers=signed(forged, "other"))
        expect_error(bad, 401, "bad_signature")


def test_two_api_instances_over_one_home_share_the_conversation(home):
    with api_client(home) as first, api_client(home) as second:

        def say(client, text):
            response = client.post("/api/chat", json={"text": text, "session_id": "shared"})
            assert response.status_code == 200, response.text
            return response.json()

        assert [r["id"] for r in say(first, "show Fleet renewal")["records"]] == ["D1"]
        assert say(second, "close it as won")["write"]["status"] == "proposed"  # the focus came through
        assert say(first, "yes")["write"]["status"] == "made"  # and the pending write
        assert say(second, "yes")["write"] is None  # made once: nothing waits any more
        lines = (home / "logs" / "outcomes.ndjson").read_text().splitlines()
        assert len(lines) == 1 and json.loads(lines[0])["deal_id"] == "D1"


def test_with_a_bot_token_an_events_reply_is_posted_to_its_channel(home):
    """chat.postMessage against a local stand-in for Slack's Web API (no network here)."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    posted: list[tuple[str, str, dict]] = []

    class SlackApi(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the stdlib's name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            posted.append((self.path, self.headers["Authorization"], body))
            answer = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), SlackApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/api"
    try:
        with api_client(
            home, slack_signing_secret=SECRET, slack_bot_token="xoxb-test", slack_api_url=url
        ) as client:
            payload = {
                "type": "event_callback",
                "team_id": "T1",
                "event_id": "EvP",
                "event": {
                    "type": "app_mention",
                    "user": "U1",
                    "channel": "C9",
                    "ts": "17.1",
                    "text": "<@U0> show Pilot",
                },
            }
            body = json.dumps(payload).encode()
            answer = client.post("/api/slack/events", content=body, headers=signed(body))
            assert answer.status_code == 200 and answer.json()["posted"] is True
    finally:
        server.shutdown()
    ((path, auth, message),) = posted
    assert (path, auth) == ("/api/chat.postMessage", "Bearer xoxb-test")
    assert message["channel"] == "C9" and message["thread_ts"] == "17.1" and "Pilot" in message["text"]
