"""Likely duplicate records, most certain first, paged: the answer of `holocrm duplicates` and the API's
``GET /api/duplicates``, with both records' labels beside their ids."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from holocrm_core.services import rules
from holocrm_core.services.labels import RecordLabels
from holocrm_core.services.refusal import Refusal

if TYPE_CHECKING:  # polars is imported when a page is cut, not when the CLI starts
    import polars as pl

NOT_BUILT = "no duplicate candidates yet: run `holocrm run` (the duplicate_candidates asset) first"


def ranked_pairs(frame: pl.DataFrame) -> pl.DataFrame:
    """Most certain first; ties in a stable order (by ids), so a page is the same slice at every door."""
    keys = [c for c in ("score", "entity_type", "id_a", "id_b") if c in frame.columns]
    return frame.sort(keys, descending=[k == "score" for k in keys], nulls_last=True, maintain_order=True)


def duplicate_page(
    frame: pl.DataFrame | None,
    *,
    entity_type: str | None = None,
    min_score: float = 0.0,
    limit: int = 50,
    offset: int = 0,
    labels: RecordLabels | None = None,
    ranked: bool = False,
) -> dict[str, Any]:
    """One page of the duplicate pairs (``ranked``: ``frame`` is already ``ranked_pairs``)."""
    import polars as pl

    kind = rules.entity_type(entity_type) if entity_type not in (None, "", "all") else None
    min_score = rules.fraction(min_score, "min_score", 0.0, 1.0)
    limit = rules.page_size(limit)
    offset = rules.offset_of(offset)
    if frame is None:
        raise Refusal("not_built", NOT_BUILT)
    view = frame if ranked else ranked_pairs(frame)
    if kind is not None:
        view = view.filter(pl.col("entity_type") == kind)
    if min_score > 0:
        view = view.filter(pl.col("score") >= min_score)
    rows = view.slice(offset, limit).to_dicts()
    if labels is not None:
        for side in ("a", "b"):
            labelled = labels.label_rows(
                [{"entity_type": r["entity_type"], "id": r[f"id_{side}"]} for r in rows]
            )
            for row, named in zip(rows, labelled, strict=False):
                row[f"label_{side}"] = named["label"]
    return {"total": view.height, "offset": offset, "limit": limit, "results": rows}
