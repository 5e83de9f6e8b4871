"""Search and "records like this one": the answers `holocrm search|similar` and the API's search and similar
routes give, built here once so both doors agree.

Each function takes an open ``SimilarityStore`` (and ``RecordLabels`` for the names beside the ids), checks
its input with ``holocrm_core.services.rules`` and returns a plain dict: the same JSON at either door.
Entity hits and attachment passages are scored on different scales, so they are two labelled lists, each
with its own ``score_kind``, never one list mixing both.
"""

from __future__ import annotations

from typing import Any

from holocrm_core.services import rules
from holocrm_core.services.labels import RecordLabels
from holocrm_core.services.refusal import Refusal, invalid

SCORE_KINDS = {
    "vector": "cosine similarity (-1 to 1)",
    "fulltext": "BM25 (higher is better; not comparable across queries)",
    "hybrid": "reciprocal-rank fusion of meaning and words (higher is better)",
}
# Attachment passages rank on their own scale (holocrm_core.attachments.index.search_chunks)
ATTACHMENT_SCORE_KINDS = {
    "vector": "cosine similarity (-1 to 1)",
    "fulltext": "BM25 (higher is better; not comparable across queries)",
    "hybrid": "min-max scaled BM25 plus weighted scaled cosine (higher is better)",
}
SIMILARITY_KIND = "cosine similarity (-1 to 1)"
ATTACHMENT_HITS = 5  # attachment passages beside the entity hits (at most `limit`)
SNIPPET_CHARS = 160


def _store_missing(store) -> Refusal:
    where = getattr(store, "uri", None) if store is not None else None
    return Refusal(
        "not_built",
        "no similarity index" + (f" under {where}" if where else "") + " yet: run `holocrm run` first",
    )


def _plain(value: Any) -> Any:
    """numpy scalars and tuples as plain JSON values (the store's rows carry a few)."""
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        return value.item()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _rows(results: list[dict]) -> list[dict]:
    return [{k: _plain(v) for k, v in row.items()} for row in results]


def attachment_passages(uri: str, text: str, mode: str, limit: int, embedder=None) -> list[dict]:
    """Attachment chunks that match, each naming its activity, file and page (their own score scale)."""
    from holocrm_core.attachments.index import search_attachments_at

    hits = search_attachments_at(uri, text, limit=limit, mode=mode, embedder=embedder)
    return [
        {
            "entity_type": "attachment",
            "activity_id": h["activity_id"],
            "file_name": h["file_name"],
            "locator": h["locator"],
            "score": _plain(h["score"]),
            "snippet": " ".join(str(h["text"]).split())[:SNIPPET_CHARS],
        }
        for h in hits
    ]


def search_records(
    store,
    text: str,
    *,
    entity_types: list[str] | None = None,
    mode: str = "hybrid",
    limit: int = 10,
    filters: dict | None = None,
    with_text: bool = False,
    attachments: bool = False,
    labels: RecordLabels | None = None,
) -> dict[str, Any]:
    """Records matching ``text`` best first, each with a snippet and its label; with ``attachments``, the
    attachment passages that match as a second list (``attachments``) on its own scale."""
    text = rules.query_text(text)
    chosen = rules.search_mode(mode)
    limit = rules.page_size(limit)
    types = rules.entity_types(entity_types)
    wanted = rules.filters(filters)
    if store is None:
        raise _store_missing(store)
    try:
        results = store.search(
            text, entity_types=types, mode=chosen, limit=limit, filters=wanted, with_text=with_text
        )
    except ValueError as exc:  # a filter value the index cannot apply
        raise invalid("filters", f"the index cannot apply these filters: {exc}") from None
    results = _rows(results)
    if labels is not None:
        labels.label_rows(results)
    answer: dict[str, Any] = {
        "query": text,
        "mode": chosen,
        "score_kind": SCORE_KINDS[chosen],
        "results": results,
    }
    reranker = next((r["reranked_by"] for r in results if r.get("reranked_by")), None)
    if reranker:  # an index of the static tier: its hits ordered by MiniLM (SimilarityStore.search_uncached)
        answer["score_kind"] = f"cosine similarity of {reranker} re-ranking the index's best hits (-1 to 1)"
    if attachments:
        answer["attachments"] = attachment_passages(
            store.uri, text, chosen, min(limit, ATTACHMENT_HITS), getattr(store, "_embedder", None)
        )
        answer["attachments_score_kind"] = ATTACHMENT_SCORE_KINDS[chosen]
    return answer


def similar_records(
    store,
    entity_type: str,
    entity_id: str,
    *,
    limit: int = 10,
    min_similarity: float = 0.0,
    filters: dict | None = None,
    labels: RecordLabels | None = None,
) -> dict[str, Any]:
    """The ``limit`` records of the same type most like ``entity_id`` (itself excluded), with labels."""
    kind = rules.entity_type(entity_type)
    limit = rules.page_size(limit)
    min_similarity = rules.fraction(min_similarity, "min_similarity", -1.0, 1.0)
    wanted = rules.filters(filters)
    entity_id = str(entity_id).strip()
    if not entity_id:
        raise invalid("entity_id", f"the {kind} id is empty")
    if store is None:
        raise _store_missing(store)
    if kind not in store.entity_types():  # an id of a type the index holds none of: not found, and why
        raise Refusal(
            "not_found",
            f"no {kind} with id {entity_id!r} in the similarity index: it holds no {kind} records "
            "(run `holocrm run` after an export that has some)",
        )
    try:
        results = store.similar(kind, entity_id, limit=limit, min_similarity=min_similarity, filters=wanted)
    except KeyError:
        if labels is not None and labels.knows(kind, entity_id):
            raise Refusal(
                "not_found",
                f"{kind} {entity_id!r} is not in the similarity index yet (it was added after the index "
                "was built): run `holocrm run`",
            ) from None
        raise Refusal("not_found", f"no {kind} with id {entity_id!r}") from None
    except ValueError as exc:
        raise invalid("filters", f"the index cannot apply these filters: {exc}") from None
    results = _rows(results)
    if labels is not None:
        labels.label_rows(results)
    return {
        "entity_type": kind,
        "entity_id": entity_id,
        "label": (labels.for_ids(kind, [entity_id]).get(entity_id) if labels is not None else None),
        "score_kind": SIMILARITY_KIND,
        "results": results,
    }
