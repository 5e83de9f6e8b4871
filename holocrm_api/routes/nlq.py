"""Natural-language questions: the answer with its parsed plan, or a clear "not understood", never a 500.

The route only transports: ``holocrm_core.services.answer_question`` (what `holocrm ask` calls too) checks the
question, asks the NL engine, and answers a plan it cannot run (a window past the calendar's end, a date
that does not exist) or an as-of outside 1900 to 2199 with ``understood: false`` and a hint to rephrase. The
server adds a short-lived answer cache and a bound on questions answered at once.
An unclear question's answer carries `readings`: what it may mean, each with its plan in words, plan, value
and record count (a client sends the same question with `pick: N` to run reading N).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator
from starlette.concurrency import run_in_threadpool

from holocrm_api.deps import Protected, ServicesDep, SnapshotDep
from holocrm_api.errors import ALWAYS, INVALID, NOT_BUILT, PROTECTED, TOO_BIG
from holocrm_api.loader import Snapshot
from holocrm_api.records import ApiBody, IsoTime, PageSize
from holocrm_core.services import Refusal, answer_question
from holocrm_core.services.questions import MAX_QUESTION_CHARS, question_text

router = APIRouter(
    tags=["questions"],
    dependencies=[Protected],
    responses={**PROTECTED, **INVALID, **NOT_BUILT, **TOO_BIG, **ALWAYS},
)
ANSWER_TTL_S = 60.0  # a question without as_of counts "last week" from now: reuse its answer briefly only


class NaturalLanguageRequest(ApiBody):
    question: str = Field(
        max_length=MAX_QUESTION_CHARS,
        json_schema_extra={"minLength": 1},
        description="The question in plain words (an empty one is refused)",
    )
    as_of: IsoTime | None = Field(
        None,
        description="Answer as the data stood at this time (ISO 8601, naive = UTC); outside the years "
        "1900 to 2199 the answer is `understood: false`",
    )
    limit: PageSize = Field(50, description="Rows returned (the answer counts all)")
    partial: StrictBool = Field(False, description="Run the understood part of a partly understood question")

    @field_validator("question")
    @classmethod
    def _question(cls, value: str) -> str:
        try:
            return question_text(value)
        except Refusal as exc:  # the service's own words, as a 422 problem
            raise ValueError(exc.message) from None

    pick: int | None = Field(
        None,
        ge=1,
        le=10,
        description="Answer with reading N (1-based) of the readings an unclear question lists",
    )


class NaturalLanguageAnswer(BaseModel):
    """The answer: ``value`` for a single figure, ``rows`` for a list or a grouped aggregate (a table)."""

    model_config = ConfigDict(extra="allow")
    question: str
    understood: bool
    high_confidence: bool
    confidence: float
    as_of: str | None = None
    plan: Any = None
    plan_words: str | None = None
    trace: list[dict[str, Any]] = []
    value: Any = None
    row_count: int = 0
    record_count: int = 0
    rows: list[dict[str, Any]] = []
    unknown_words: list[str] = []
    suggestions: list[str] = []
    hints: list[str] = []
    missing: list[Any] = []
    readings: list[dict[str, Any]] = []
    cached: bool = False


@router.post(
    "/api/query/natural-language", response_model=NaturalLanguageAnswer, response_model_exclude_unset=True
)
async def natural_language_query(
    body: NaturalLanguageRequest, snap: SnapshotDep, services: ServicesDep
) -> dict[str, Any]:
    """Answer a question about the CRM in plain words; the answer carries the parsed plan (the trace)."""
    snap.require("nlq")
    key = services.answers.key(snap.loaded_at, body.question, body.as_of, body.limit, body.partial, body.pick)
    cached = services.answers.get(key)
    if cached is not None:
        return {**cached, "cached": True}
    async with services.nlq_slots:  # polars already uses every core: more parallel questions only thrash
        payload = await run_in_threadpool(_answer, snap, body)
    services.answers.put(key, payload, ttl=None if body.as_of else ANSWER_TTL_S)
    return {**payload, "cached": False}


def _answer(snap: Snapshot, body: NaturalLanguageRequest) -> dict[str, Any]:
    return answer_question(
        snap.nlq_context,
        body.question,
        as_of=body.as_of,
        limit=body.limit,
        partial=body.partial,
        similarity=snap.store,
        pick=body.pick,
    )
