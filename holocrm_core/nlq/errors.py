"""Errors a question can raise: input the caller can correct (HTTP 422), never an internal failure."""

from __future__ import annotations

from datetime import UTC, datetime


class QuestionError(ValueError):
    """The question or its as-of date cannot be answered as given; the message says what to change.

    `field` names the part of the request at fault ("question", "as_of") so an API can point at it.
    """

    def __init__(self, message: str, field: str = "question"):
        super().__init__(message)
        self.field = field


# The dates an as-of may take. Relative phrases move from it by centuries at most ("the last 200 years"), so
# every computed bound stays inside what datetime and polars represent.
EARLIEST_AS_OF = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_AS_OF = datetime(2199, 12, 31, tzinfo=UTC)
MAX_QUESTION_CHARS = 2000
