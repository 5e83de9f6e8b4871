"""A request the services will not answer, with the reason in one sentence and what kind of refusal it is.

The CLI prints ``message`` on one line and exits non-zero (2 for input to correct, 1 otherwise); the API
answers the matching status (422, 404, 503) with ``message`` as its ``detail``. One refusal, two doors.
"""

from __future__ import annotations

from typing import Literal

RefusalKind = Literal["invalid", "not_found", "not_built"]
EXIT_CODES: dict[str, int] = {"invalid": 2, "not_found": 1, "not_built": 1}
HTTP_STATUS: dict[str, int] = {"invalid": 422, "not_found": 404, "not_built": 503}


class Refusal(Exception):
    """``kind``: invalid (the caller must change the input), not_found (no such record), not_built (run the
    pipeline first); ``where``: the input at fault (``limit``, ``query``...), when there is one."""

    def __init__(self, kind: RefusalKind, message: str, where: str | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.where = where

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.kind]

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.kind]


def invalid(where: str, message: str) -> Refusal:
    return Refusal("invalid", message, where)
