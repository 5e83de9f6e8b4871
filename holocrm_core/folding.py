"""Accent and script folding, written once: "Lefèvre" -> "Lefevre", "Straße" -> "Strasse", "Москва" -> "Moskva".

``unidecode`` (a dependency) transliterates every non-ASCII character; ASCII text passes through untouched.
"""

from __future__ import annotations

from unidecode import unidecode


def ascii_fold(text: str) -> str:
    """``text`` in plain ASCII, case kept: accents dropped, other scripts transliterated."""
    return text if text.isascii() else unidecode(text)
