"""The computations behind every data check: plain functions over frames, so assets, CLI and tests agree.

Each returns a :class:`CheckOutcome` (name, passed, figures). The Dagster layer only turns it into an
``AssetCheckResult``; nothing here knows about Dagster.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from holocrm_core import schema


@dataclass(frozen=True)
class CheckOutcome:
    """One check's verdict; ``metadata`` values are plain numbers, strings, dicts or polars frames."""

    name: str
    passed: bool
    metadata: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------- staged tables


def no_rows_lost(accounting: pl.DataFrame) -> CheckOutcome:
    """Per source file: rows read = rows staged + rows quarantined (``reconcile`` output)."""
    return CheckOutcome("no_rows_lost", bool(accounting["balanced"].all()), {"files": accounting})


def unique_ids(staged: pl.DataFrame, id_column: str) -> CheckOutcome:
    """The id column is never empty and unique."""
    ids = staged[id_column]
    distinct = ids.n_unique()
    passed = ids.null_count() == 0 and distinct == staged.height
    return CheckOutcome("unique_ids", passed, {"rows": staged.height, "distinct_ids": distinct})


def referential_integrity(entity: str, staged: pl.DataFrame, known_ids: dict[str, pl.Series]) -> CheckOutcome:
    """Every foreign key present points at a staged row (of a parent in ``known_ids``, or of this table)."""
    from holocrm_core.ingest.validate import referenced_ids

    record = schema.entity(entity)
    ok, detail = True, []
    for (child, column), parent in schema.REFERENCES.items():
        parent_ids = staged[record.id_column] if parent == record.plural else known_ids.get(parent)
        if child != record.plural or column not in staged.columns or parent_ids is None:
            continue
        parent_ids = referenced_ids(staged[column], parent_ids)
        dangling = staged.filter(pl.col(column).is_not_null() & ~pl.col(column).is_in(parent_ids.implode()))
        ok &= dangling.is_empty()
        detail.append(f"{column}->{parent}: {dangling.height} dangling")
    return CheckOutcome("referential_integrity", ok, {"references": "; ".join(detail) or "(none)"})


def null_rates(entity: str, staged: pl.DataFrame) -> dict[str, float]:
    """Share of nulls per canonical column, rounded to 3 places."""
    return {
        c: round(staged[c].null_count() / max(staged.height, 1), 3) for c in schema.ENTITIES[entity].names()
    }


def null_rates_within_bounds(entity: str, staged: pl.DataFrame) -> CheckOutcome:
    """Required columns are never null; the columns a usable export fills are null within their bounds."""
    rates = null_rates(entity, staged)
    required_nulls = {c: rates[c] for c in schema.REQUIRED[entity] if rates[c] > 0}
    limits = schema.NULL_RATE_LIMITS.get(entity, {})
    too_sparse = {c: rates[c] for c, limit in limits.items() if rates[c] > limit} if staged.height else {}
    return CheckOutcome(
        "null_rates_within_bounds",
        not required_nulls and not too_sparse,
        {"required_nulls": required_nulls, "mostly_empty": too_sparse},
    )


def staged_checks(
    entity: str, staged: pl.DataFrame, accounting: pl.DataFrame, known_ids: dict[str, pl.Series]
) -> list[CheckOutcome]:
    """The four checks of a staged table, in the order the asset declares them."""
    return [
        no_rows_lost(accounting),
        unique_ids(staged, schema.entity(entity).id_column),
        referential_integrity(entity, staged, known_ids),
        null_rates_within_bounds(entity, staged),
    ]


# ------------------------------------------------------------------------------------------ semantic layer


def expected_document_keys(staged: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """(entity_type, entity_id) of every staged record that has a document: what must have a vector."""
    parts = [
        staged[e.table].select(pl.col(e.id_column).alias("entity_id"), pl.lit(e.name).alias("entity_type"))
        for e in schema.DOCUMENT_ENTITIES
        if e.table in staged
    ]
    if not parts:
        return pl.DataFrame(schema={"entity_id": pl.String, "entity_type": pl.String})
    return pl.concat(parts, how="vertical")


def one_vector_per_entity(expected: pl.DataFrame, vectors: pl.DataFrame) -> CheckOutcome:
    """Every expected (entity_type, entity_id) has exactly one vector, and no vector is left over."""
    keys = vectors.select("entity_type", "entity_id")
    missing = len(expected.join(keys, on=["entity_type", "entity_id"], how="anti"))
    extra = len(keys.join(expected, on=["entity_type", "entity_id"], how="anti"))
    duplicated = len(keys) - keys.n_unique()
    return CheckOutcome(
        "one_vector_per_entity",
        missing == 0 and extra == 0 and duplicated == 0,
        {"missing": missing, "extra": extra, "duplicated": duplicated, "expected": len(expected)},
    )


def vector_dimension(matrix: np.ndarray, dimension: int) -> CheckOutcome:
    return CheckOutcome("vector_dimension", matrix.shape[1] == dimension, {"dimension": int(matrix.shape[1])})


NORM_TOLERANCE = 1e-3  # a unit vector's norm may differ from 1 by this much (float32 rounding)


def unit_norm_no_nan(matrix: np.ndarray, tolerance: float = NORM_TOLERANCE) -> CheckOutcome:
    """All vectors finite and of unit length (cosine search assumes it)."""
    finite = bool(np.isfinite(matrix).all())
    norms = np.linalg.norm(matrix, axis=1) if len(matrix) else np.ones(1)
    max_norm_error = float(np.abs(norms - 1).max()) if finite else float("nan")
    return CheckOutcome(
        "unit_norm_no_nan",
        finite and max_norm_error < tolerance,
        {"finite": finite, "max_norm_error": max_norm_error},
    )


def vector_checks(frame: pl.DataFrame, dimension: int, column: str = "vector", rows: int = 65_536):
    """``vector_dimension`` and ``unit_norm_no_nan`` of the vectors of ``frame``, read ``rows`` at a time: the
    same outcomes as on one matrix of every vector (each vector's norm is its own), without that second copy
    of the vectors (1.2 GB for a 1M-contact shard)."""
    from holocrm_core.embedding import vectors_matrix

    if frame.is_empty():
        matrix = vectors_matrix(frame, column)
        return [vector_dimension(matrix, dimension), unit_norm_no_nan(matrix)]
    width, finite, max_norm_error = None, True, 0.0
    for start in range(0, len(frame), rows):
        matrix = vectors_matrix(frame.slice(start, rows), column)
        width = matrix.shape[1] if width is None else width
        finite = finite and bool(np.isfinite(matrix).all())
        if finite:
            max_norm_error = max(max_norm_error, float(np.abs(np.linalg.norm(matrix, axis=1) - 1).max()))
    dimension_outcome = CheckOutcome("vector_dimension", width == dimension, {"dimension": int(width)})
    if not finite:
        max_norm_error = float("nan")
    return [
        dimension_outcome,
        CheckOutcome(
            "unit_norm_no_nan",
            finite and max_norm_error < NORM_TOLERANCE,
            {"finite": finite, "max_norm_error": max_norm_error},
        ),
    ]


def index_matches_documents(indexed: dict[str, int], documents: dict[str, int]) -> CheckOutcome:
    """The similarity index holds as many rows per entity type as there are documents."""
    mismatched = {
        t: [indexed.get(t, 0), documents.get(t, 0)]
        for t in sorted(set(indexed) | set(documents))
        if indexed.get(t, 0) != documents.get(t, 0)
    }
    return CheckOutcome(
        "index_matches_documents", not mismatched, {"mismatched (indexed, documents)": mismatched}
    )
