"""Slack-compatible doors to the chat: ``POST /api/slack/commands`` (a slash command, form-encoded) and
``POST /api/slack/events`` (the Events API: ``url_verification``, ``app_mention``, direct messages).

Slack does not send an API key; it signs each request. Both routes check that signature before anything
else: ``X-Slack-Signature`` must be ``v0=`` + HMAC-SHA256 of ``v0:{X-Slack-Request-Timestamp}:{raw body}``
under the signing secret (``HOLOCRM_SLACK_SIGNING_SECRET``), compared in constant time, and the timestamp
within five minutes of now (a replayed request is refused): 401 otherwise; without a secret the routes are
not there (404). The
paths are public to the API-key guard for that reason (``holocrm_api.middleware``).

The conversation is the Slack user in the channel (team, channel, user): its session lives in the same store
as ``POST /api/chat``'s, shared by every worker. Writes are previewed and need "yes" as everywhere; a Slack
user may confirm them unless ``HOLOCRM_SLACK_WRITES=false``. Slack retries an event it did not see
acknowledged: an event id already handled (by any worker) is acknowledged again and not run twice. An
event's reply is in the answer and, with a bot token (``HOLOCRM_SLACK_BOT_TOKEN``), posted to its channel
(``chat.postMessage`` at ``HOLOCRM_SLACK_API_URL``, default Slack's) after the acknowledgement.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
import urllib.request
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, BackgroundTasks, Request
from starlette.concurrency import run_in_threadpool

from holocrm_api.chat_turns import run_turn, session_store, writer
from holocrm_api.deps import ServicesDep, SnapshotDep
from holocrm_api.errors import ALWAYS, NOT_BUILT, TOO_BIG, ApiError, error_doc

log = logging.getLogger("holocrm.serving")
REPLAY_WINDOW_S = 300  # Slack's own advice: refuse a request signed more than five minutes ago
SIGNED = {
    401: error_doc("The Slack signature is missing, wrong, or older than five minutes"),
    404: error_doc("Slack is not configured here: no signing secret (HOLOCRM_SLACK_SIGNING_SECRET)"),
}
router = APIRouter(tags=["slack"], responses={**SIGNED, **NOT_BUILT, **TOO_BIG, **ALWAYS})
_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify(secret: str, headers, body: bytes, now: float | None = None) -> None:
    """Raises 401 unless the request carries Slack's valid, fresh signature."""
    if not secret:
        raise ApiError(404, "not_configured", "Slack is not configured: set HOLOCRM_SLACK_SIGNING_SECRET")
    timestamp = headers.get("x-slack-request-timestamp") or ""
    signature = headers.get("x-slack-signature") or ""
    if not timestamp.isdigit() or not signature:
        raise ApiError(401, "bad_signature", "X-Slack-Request-Timestamp and X-Slack-Signature are required")
    if abs((time.time() if now is None else now) - int(timestamp)) > REPLAY_WINDOW_S:
        raise ApiError(401, "bad_signature", "the request timestamp is more than five minutes from now")
    if not hmac.compare_digest(slack_signature(secret, timestamp, body).encode(), signature.encode()):
        raise ApiError(401, "bad_signature", "the Slack signature does not match")


async def _signed_body(request: Request, services) -> bytes:
    body = await request.body()
    verify(services.settings.slack_signing_secret, request.headers, body)
    return body


def _session(team: str, channel: str, user: str) -> str:
    return f"slack-{team or 'team'}-{channel or 'dm'}-{user or 'user'}"


async def _turn(snap, services, session_id: str, text: str) -> dict[str, Any]:
    write = writer(
        services, services.settings.slack_writes, "writes from Slack are off (HOLOCRM_SLACK_WRITES)"
    )
    try:
        return await run_in_threadpool(run_turn, snap, services, session_id, text, False, write)
    except ValueError as exc:
        raise ApiError(503, "not_built", str(exc)) from None


@router.post("/api/slack/commands")
async def slack_command(request: Request, snap: SnapshotDep, services: ServicesDep) -> dict[str, Any]:
    """A slash command (`/crm find acme`): one chat turn; the reply goes back to the user (ephemeral)."""
    body = await _signed_body(request, services)
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
    if form.get("ssl_check") == "1":  # Slack's certificate check: signed, nothing to run
        return {"ok": True}
    text = " ".join((form.get("text") or "").split()) or "help"
    session_id = _session(form.get("team_id", ""), form.get("channel_id", ""), form.get("user_id", ""))
    turn = await _turn(snap, services, session_id, text)
    return {
        "response_type": "ephemeral",
        "text": turn["reply"],
        "session_id": session_id,
        "intent": turn["intent"],
        "write": turn["write"],
        "records": turn["records"],
    }


def post_reply(api_url: str, token: str, channel: str, text: str, thread_ts: str | None) -> None:
    """The reply to an event, posted to its channel (Slack's ``chat.postMessage``; after the ack)."""
    message = {"channel": channel, "text": text, **({"thread_ts": thread_ts} if thread_ts else {})}
    request = urllib.request.Request(
        f"{api_url.rstrip('/')}/chat.postMessage",
        data=json.dumps(message).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=utf-8"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - the configured Slack API URL
            result = json.loads(answer.read() or b"{}")
    except (OSError, ValueError) as exc:
        log.warning("slack: the reply to channel %s could not be posted: %s", channel, exc)
        return
    if not result.get("ok"):
        log.warning("slack: chat.postMessage refused the reply to %s: %s", channel, result.get("error"))


@router.post("/api/slack/events")
async def slack_events(
    request: Request, background: BackgroundTasks, snap: SnapshotDep, services: ServicesDep
) -> dict[str, Any]:
    """Slack's Events API: the ``url_verification`` challenge, and a chat turn for each ``app_mention`` or
    direct message (bots' own messages and edits are acknowledged and skipped). With a bot token
    (``HOLOCRM_SLACK_BOT_TOKEN``) the reply is posted to the channel after the acknowledgement."""
    body = await _signed_body(request, services)
    try:
        payload = json.loads(body)
    except ValueError:
        raise ApiError(422, "invalid_request", "the event body is not JSON") from None
    if not isinstance(payload, dict):
        raise ApiError(422, "invalid_request", "the event body is not a JSON object")
    if payload.get("type") == "url_verification":
        return {"challenge": str(payload.get("challenge", ""))}
    if payload.get("type") != "event_callback" or not isinstance(payload.get("event"), dict):
        return {"ok": True, "ignored": f"event type {payload.get('type')!r}"}
    event = payload["event"]
    if event.get("bot_id") or event.get("subtype"):
        return {"ok": True, "ignored": "a bot's message or an edit"}
    if event.get("type") not in ("app_mention", "message"):
        return {"ok": True, "ignored": f"event {event.get('type')!r}"}
    if event.get("type") == "message" and event.get("channel_type") != "im":
        return {"ok": True, "ignored": "a channel message that does not mention the app"}
    event_id = str(payload.get("event_id") or "")
    store = session_store(services)
    if event_id and not await run_in_threadpool(store.first_time, event_id):
        return {"ok": True, "duplicate": True, "event_id": event_id}
    text = " ".join(_MENTION.sub(" ", str(event.get("text") or "")).split()) or "help"
    session_id = _session(
        str(payload.get("team_id") or ""), str(event.get("channel") or ""), str(event.get("user") or "")
    )
    turn = await _turn(snap, services, session_id, text)
    settings = services.settings
    posted = bool(settings.slack_bot_token and event.get("channel"))
    if posted:
        thread = event.get("thread_ts") or (event.get("ts") if event.get("type") == "app_mention" else None)
        background.add_task(
            post_reply,
            settings.slack_api_url,
            settings.slack_bot_token,
            str(event["channel"]),
            turn["reply"],
            thread,
        )
    return {
        "ok": True,
        "session_id": session_id,
        "intent": turn["intent"],
        "reply": turn["reply"],
        "posted": posted,
    }
