"""What a turn raises when it cannot be answered as asked; the session turns each into its reply."""

from __future__ import annotations


class ChatError(Exception):
    """A turn that cannot be answered as asked (the reply says why); nothing was run or written."""


class Chosen(Exception):
    """A name matched several records: the turn becomes a numbered question."""

    def __init__(self, choices: list):
        super().__init__("several records match")
        self.choices = choices


class NotFound(ChatError):
    """A name that matches no record: the turn is answered so, and the focus is stale after it (a write by
    pronoun on the next turn asks which record)."""
