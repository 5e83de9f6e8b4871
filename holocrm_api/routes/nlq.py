"""Natural-language questions: the answer with its parsed plan, or a clear "not understood", never a 500.

An unclear question's answer carries `readings`: what it may mean, each with its plan in words, plan, value
and record count (a client sends the same question with `pick: N` to run reading N).

The NL engine raises on some plans it builds but cannot run (a window past the calendar's end, a date that
does not exist, duplicate output columns): such a question is answered 200 with ``understood: false`` and a
hint to rephrase, and logged so the engine can learn to parse it. Dates the caller sends are bounded here.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import polars as pl
from fastapi import APIRouter
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from holocrm_api.answers import jsonable
from holocrm_api.deps import Protected, ServicesDep, SnapshotDep
from holocrm_api.errors import ALWAYS, INVALID, NOT_BUILT, PROTECTED, TOO_BIG
from holocrm_api.loader import Snapshot
from holocrm_api.records import ApiBody, IsoTime, PageSize
from holocrm_core.nlq import ask

router = APIRouter(
    tags=["questions"],
    dependencies=[Protected],
    responses={**PROTECTED, **INVALID, **NOT_BUILT, **TOO_BIG, **ALWAYS},
)
log = logging.getLogger("holocrm.serving")

ANSWER_TTL_S = 60.0  # a question without as_of counts "last week" from now: reuse its answer briefly only
EARLIEST_AS_OF = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_AS_OF = datetime(2200, 1, 1, tzinfo=UTC)
# What the engine raises for a plan it cannot run: the question's fault, not the server's.
UNANSWERABLE = (ValueError, OverflowError, ArithmeticError, pl.exceptions.PolarsError)
CANNOT_RUN = (
    "This question asks for something the engine cannot compute (a window or date out of range, or "
    "a combination it cannot run yet); rephrase it, e.g. with a shorter window."
)
REPHRASE = ["how many open deals do we have", "top 10 companies by open pipeline", "deals won last quarter"]


class NaturalLanguageRequest(ApiBody):
    question: str = Field(min_length=1, max_length=1000)
    as_of: IsoTime | None = Field(
        None,
        description="Answer as the data stood at this time (ISO 8601, naive = UTC); outside the years "
        "1900 to 2199 the answer is `understood: false`",
    )
    limit: PageSize = Field(50, description="Rows returned (the answer counts all)")
    pick: int | None = Field(
        None,
        ge=1,
        le=10,
        description="Answer with reading N (1-based) of the readings an unclear question lists",
    )


@router.post("/api/query/natural-language")
async def natural_language_query(
    body: NaturalLanguageRequest, snap: SnapshotDep, services: ServicesDep
) -> dict[str, Any]:
    """Answer a question about the CRM in plain words; the answer carries the parsed plan (the trace)."""
    snap.require("nlq")
    asked = body.question if body.pick is None else f"{body.question}\x00pick={body.pick}"
    key = services.answers.key(snap.loaded_at, asked, body.as_of, body.limit)
    cached = services.answers.get(key)
    if cached is not None:
        return {**cached, "cached": True}
    async with services.nlq_slots:  # polars already uses every core: more parallel questions only thrash
        payload = await run_in_threadpool(answer_question, snap, body)
    services.answers.put(key, payload, ttl=None if body.as_of else ANSWER_TTL_S)
    return {**payload, "cached": False}


def answer_question(snap: Snapshot, body: NaturalLanguageRequest) -> dict[str, Any]:
    # Well-formed but outside the calendar the engine can count in: the question, not the request, is at fault
    # (and JSON Schema cannot say "a date-time before 2200", so a 422 would break the declared contract).
    try:
        if body.as_of is not None and not EARLIEST_AS_OF <= body.as_of < LATEST_AS_OF:
            return not_understood(
                body,
                f"as_of {body.as_of.isoformat()} is outside the years 1900 to 2199 that "
                "questions can be answered for; send an as_of in that range",
            )
        answer = ask(body.question, snap.nlq_context, as_of=body.as_of, similarity=snap.store)
        if body.pick is not None:
            if body.pick > len(answer.readings):
                return not_understood(
                    body,
                    f"pick {body.pick}: this question has {len(answer.readings)} reading(s) to pick from",
                )
            answer = answer.readings[body.pick - 1]
        return jsonable(answer.to_json(max_rows=body.limit))
    except UNANSWERABLE as exc:
        log.warning("NL question %r could not be answered: %s: %s", body.question, type(exc).__name__, exc)
        return not_understood(body)


def not_understood(body: NaturalLanguageRequest, hint: str = CANNOT_RUN) -> dict[str, Any]:
    """The shape of an answer, saying the question could not be turned into a plan that runs."""
    return {
        "question": body.question,
        "understood": False,
        "high_confidence": False,
        "confidence": 0.0,
        "as_of": body.as_of.isoformat() if body.as_of else None,
        "plan": None,
        "plan_words": None,
        "trace": [],
        "value": None,
        "row_count": 0,
        "rows": [],
        "unknown_words": [],
        "suggestions": REPHRASE,
        "hints": [hint],
        "missing": [],
        "readings": [],
    }
