"""The input rules both doors apply: search modes and their aliases, page sizes, entity types, filters, text.

The API declares the same bounds in its OpenAPI (from these constants); the CLI checks with these functions,
so `--mode semantic`, `--limit 26` or an empty search text mean the same thing, or are refused the same way,
at either door.
"""

from __future__ import annotations

from holocrm_core.services.refusal import invalid

MAX_LIMIT = 100  # the most rows one request may ask for (the API pages beyond that with an offset)
MAX_QUERY_CHARS = 1000
# Mode names as people say them -> the store's name. `semantic` is what the README and users say for meaning.
SEARCH_MODES: dict[str, str] = {
    "hybrid": "hybrid",
    "vector": "vector",
    "semantic": "vector",
    "meaning": "vector",
    "fulltext": "fulltext",
    "text": "fulltext",
    "keyword": "fulltext",
    "words": "fulltext",
}
MODE_HELP = "hybrid (default), vector (alias semantic) or fulltext (alias text, keyword)"
ENTITY_TYPES = ("contact", "company", "deal", "activity")
ENTITY_ALIASES = {"contacts": "contact", "companies": "company", "deals": "deal", "activities": "activity"}
EMPTY_QUERY = "the search text is empty: say what to look for, e.g. `budget concerns` or a company name"


def search_mode(name: str) -> str:
    mode = SEARCH_MODES.get(str(name).strip().lower())
    if mode is None:
        raise invalid("mode", f"unknown search mode {name!r}: use {MODE_HELP}")
    return mode


def page_size(limit: int, where: str = "limit") -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise invalid(where, f"{where} must be a whole number from 1 to {MAX_LIMIT}, not {limit!r}")
    return limit


def offset_of(offset: int) -> int:
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise invalid("offset", f"offset must be a whole number of 0 or more, not {offset!r}")
    return offset


def fraction(value: float, where: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise invalid(where, f"{where} must be a number from {low:g} to {high:g}, not {value!r}")
    return float(value)


def entity_type(name: str) -> str:
    key = str(name).strip().lower()
    found = ENTITY_ALIASES.get(key, key)
    if found not in ENTITY_TYPES:
        raise invalid("entity_type", f"unknown entity type {name!r}: use {', '.join(ENTITY_TYPES)}")
    return found


def entity_types(names: list[str] | None) -> list[str] | None:
    return None if not names else list(dict.fromkeys(entity_type(n) for n in names))


def query_text(text: str, where: str = "query") -> str:
    """The search text, stripped; an empty one is refused (it would match arbitrary records)."""
    text = (text or "").strip()
    if not text:
        raise invalid(where, EMPTY_QUERY)
    if len(text) > MAX_QUERY_CHARS:
        raise invalid(where, f"the search text is longer than {MAX_QUERY_CHARS} characters")
    return text


def filter_pairs(pairs: list[str] | None) -> dict:
    """CLI filters ["industry=fintech", "stage=won,lost"] -> {"industry": "fintech", "stage": ["won", "lost"]}."""
    out: dict = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise invalid("filter", f"filter {pair!r} must look like column=value")
        key, value = pair.split("=", 1)
        out[key.strip()] = [v.strip() for v in value.split(",")] if "," in value else value.strip()
    return out


def filters(given: dict | None) -> dict | None:
    """Known filter columns only (the index's scalar columns); a list value means any of them."""
    if not given:
        return None
    from holocrm_core.text import FILTER_COLUMNS  # polars: only when there are filters to check

    unknown = sorted(set(given) - set(FILTER_COLUMNS) - {"entity_id"})
    if unknown:
        raise invalid(
            "filters", f"unknown filter column {unknown[0]!r}: use one of {', '.join(FILTER_COLUMNS)}"
        )
    return dict(given)
