"""Merge proposals: per duplicate cluster, the record that survives and what moves to it. Nothing is merged
automatically."""

from __future__ import annotations

import polars as pl

from holocrm_core.dedupe.cluster import LIKELY_DUPLICATE, clusters


def _reference_counts(
    tables: dict[str, pl.DataFrame | pl.LazyFrame | None], column: str
) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for name, frame in tables.items():
        if frame is None or column not in frame.collect_schema().names():
            continue
        counts = frame.lazy().group_by(column).len().drop_nulls(column).collect()
        if counts.is_empty():
            continue
        out[name] = dict(
            zip(counts.get_column(column).to_list(), counts.get_column("len").to_list(), strict=True)
        )
    return out


def merge_proposals(
    candidates: pl.DataFrame,
    contacts: pl.DataFrame | pl.LazyFrame | None,
    companies: pl.DataFrame | pl.LazyFrame | None,
    deals: pl.DataFrame | pl.LazyFrame | None = None,
    activities: pl.DataFrame | pl.LazyFrame | None = None,
    min_score: float = LIKELY_DUPLICATE,
) -> pl.DataFrame:
    """One proposal per duplicate cluster: the surviving record and what moves to it. Never applied here.

    The survivor is the record with the most filled fields, then the most linked deals and activities, then
    the oldest. ``moves`` says, per merged record, how many deals / activities (and, for companies,
    contacts) would be re-pointed to the survivor. Each table may be a scan (``pl.LazyFrame``): only the
    referencing columns' counts and the clustered records' rows are then read.
    """
    groups = clusters(candidates, min_score)
    schema = {
        "cluster_id": pl.String,
        "entity_type": pl.String,
        "survivor_id": pl.String,
        "merged_ids": pl.List(pl.String),
        "moves": pl.String,
        "min_score": pl.Float64,
        "status": pl.String,
    }
    if groups.is_empty():
        return pl.DataFrame(schema=schema)
    sources = {"contact": (contacts, "contact_id"), "company": (companies, "company_id")}
    references = {
        "contact": _reference_counts({"deals": deals, "activities": activities}, "contact_id"),
        "company": _reference_counts(
            {"contacts": contacts, "deals": deals, "activities": activities}, "company_id"
        ),
    }
    # each cluster's records, references and pair scores gathered in one pass each (not one scan of the
    # whole table and of every candidate per cluster: minutes at a million contacts)
    cluster_of = dict(
        zip(
            zip(
                groups.get_column("entity_type").to_list(),
                groups.get_column("entity_id").to_list(),
                strict=True,
            ),
            groups.get_column("cluster_id").to_list(),
            strict=True,
        )
    )
    pair_scores: dict[str, list[float]] = {}
    for t, a, b, score in candidates.select("entity_type", "id_a", "id_b", "score").iter_rows():
        cluster = cluster_of.get((t, a))
        if cluster is not None and cluster_of.get((t, b)) == cluster:
            pair_scores.setdefault(cluster, []).append(score)
    records_of = {}
    for entity_type, (source, id_column) in sources.items():
        ids = groups.filter(pl.col("entity_type") == entity_type).get_column("entity_id")
        if len(ids) and source is not None:
            members = source.lazy().filter(pl.col(id_column).is_in(ids.to_list())).collect()
            records_of[entity_type] = {r[id_column]: r for r in members.iter_rows(named=True)}
    rows = []
    for (cluster_id, entity_type), members in groups.group_by(
        ["cluster_id", "entity_type"], maintain_order=True
    ):
        ids = members.get_column("entity_id").to_list()
        records = records_of.get(entity_type, {})
        refs = references[entity_type]

        def rank(i, records=records, refs=refs):
            record = records.get(i, {})
            filled = sum(v not in (None, "", []) for v in record.values())
            linked = sum(counts.get(i, 0) for counts in refs.values())
            created = record.get("created_at")
            return (-filled, -linked, created.timestamp() if created else float("inf"), i)

        survivor = min(ids, key=rank)
        merged = [i for i in ids if i != survivor]
        moves = []
        for i in merged:
            parts = [f"{counts[i]} {name}" for name, counts in refs.items() if counts.get(i)]
            moves.append(
                f"{i} -> {survivor}: " + (", ".join(parts) if parts else "nothing linked") + " re-pointed"
            )
        scores = pair_scores.get(cluster_id, [])
        rows.append(
            {
                "cluster_id": cluster_id,
                "entity_type": entity_type,
                "survivor_id": survivor,
                "merged_ids": merged,
                "moves": "; ".join(moves),
                "min_score": float(min(scores)) if scores else None,
                "status": "proposed",
            }
        )
    return pl.DataFrame(rows, schema=schema)
