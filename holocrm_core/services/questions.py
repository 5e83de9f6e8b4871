"""Plain-English questions: the answer `holocrm ask` prints and ``POST /api/query/natural-language`` returns.

``answer_question`` checks the input, calls the NL engine's public entry point (``holocrm_core.nlq.ask``) and
returns its JSON. A question the engine parses into a plan it cannot run (a window past the calendar's end, a
date that does not exist), or an as-of date outside the years it can count in, is answered with
``understood: false`` and a hint to rephrase, the same way at both doors.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from holocrm_core.services import rules
from holocrm_core.services.jsonable import jsonable
from holocrm_core.services.refusal import invalid

log = logging.getLogger("holocrm.services")

MAX_QUESTION_CHARS = 1000
CANNOT_RUN = (
    "This question asks for something the engine cannot compute (a window or date out of range, or "
    "a combination it cannot run yet); rephrase it, e.g. with a shorter window."
)
REPHRASE = ["how many open deals do we have", "top 10 companies by open pipeline", "deals won last quarter"]
EMPTY_QUESTION = "the question is empty: ask in plain words, e.g. `open deals in fintech`"


def question_text(question: str) -> str:
    question = (question or "").strip()
    if not question:
        raise invalid("question", EMPTY_QUESTION)
    if len(question) > MAX_QUESTION_CHARS:
        raise invalid("question", f"the question is longer than {MAX_QUESTION_CHARS} characters")
    return question


def as_of_time(as_of: datetime | str | None) -> datetime | None:
    """An ISO date or time (naive = UTC), or None for now."""
    if as_of is None or as_of == "":
        return None
    if isinstance(as_of, str):
        try:
            as_of = datetime.fromisoformat(as_of.strip())
        except ValueError:
            raise invalid("as_of", f"as_of {as_of!r} is not a date: use YYYY-MM-DD") from None
    return as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)


def not_understood(question: str, as_of: datetime | None, hint: str = CANNOT_RUN) -> dict[str, Any]:
    """The shape of an answer, saying the question could not be turned into a plan that runs."""
    return {
        "question": question,
        "understood": False,
        "high_confidence": False,
        "confidence": 0.0,
        "as_of": as_of.isoformat() if as_of else None,
        "plan": None,
        "plan_words": None,
        "trace": [],
        "value": None,
        "row_count": 0,
        "record_count": 0,
        "rows": [],
        "unknown_words": [],
        "suggestions": REPHRASE,
        "hints": [hint],
        "missing": [],
        "readings": [],
    }


def cannot_run(answer: dict[str, Any]) -> bool:
    """An answer saying the question could not be run at all (the CLI exits non-zero on it)."""
    return answer.get("plan") is None and not answer.get("understood")


def answer_question(
    ctx,
    question: str,
    *,
    as_of: datetime | str | None = None,
    limit: int = 50,
    partial: bool = False,
    similarity=None,
    pick: int | None = None,
) -> dict[str, Any]:
    """The answer (at most ``limit`` rows; the counts cover all) with its plan and trace, as JSON.

    An unclear question's answer lists ``readings`` (each with its plan in words and its figure); ``pick``
    (1-based) answers with one of them instead."""
    import polars as pl

    from holocrm_core.nlq import QuestionError, ask
    from holocrm_core.nlq.errors import EARLIEST_AS_OF, LATEST_AS_OF

    question = question_text(question)
    limit = rules.page_size(limit)
    moment = as_of_time(as_of)
    span = f"{EARLIEST_AS_OF.date().isoformat()} to {LATEST_AS_OF.date().isoformat()}"
    if moment is not None and not EARLIEST_AS_OF <= moment <= LATEST_AS_OF:
        return not_understood(
            question,
            moment,
            f"as_of {moment.date().isoformat()} is outside {span}, the dates questions can be answered "
            "for; send an as_of in that range",
        )
    try:
        answer = ask(question, ctx, as_of=moment, similarity=similarity, partial=partial)
        if pick:
            if not 1 <= pick <= len(answer.readings):
                hint = f"pick {pick}: this question has {len(answer.readings)} reading(s) to pick from"
                return not_understood(question, moment, hint)
            answer = answer.readings[pick - 1]
        return jsonable(answer.to_json(max_rows=limit))
    except QuestionError as exc:
        if exc.field == "as_of":
            return not_understood(question, moment, str(exc))
        raise invalid(exc.field, str(exc)) from None
    except (ValueError, OverflowError, ArithmeticError, pl.exceptions.PolarsError) as exc:
        log.warning("NL question %r could not be answered: %s: %s", question, type(exc).__name__, exc)
        return not_understood(question, moment)
