"""Clusters: groups of likely duplicates built so a weak link cannot chain two strong groups (greedy
correlation clustering), the best-match constraint of two-source linking, and the connected components
that merge proposals are made of."""

from __future__ import annotations

import numpy as np
import polars as pl

# A pair is shown as a likely duplicate from this posterior probability on (measured on the planted pairs of
# the generated export and on febrl: precision and recall both >= 0.97 there; see benchmarks/semantic_quality.py).
LIKELY_DUPLICATE = 0.9

MAX_CLUSTER_SIZE = 8


def coherent_clusters(
    n: int,
    pairs: np.ndarray,
    scores: np.ndarray,
    min_score: float = 0.5,
    max_size: int = MAX_CLUSTER_SIZE,
    sources: np.ndarray | None = None,
) -> np.ndarray:
    """Cluster label per row, built so a weak link cannot join two strong groups.

    Greedy correlation clustering: pairs are taken best first; two groups merge only when the merged group
    stays within ``max_size`` and the pairs across them are, on balance, duplicates (the sum of
    score - 0.5 over every cross pair, unscored pairs counting as 0, is positive: a coherence check, not a
    single link). With ``sources``, a group holds at most one record per source unless the pair is a clear
    best match (two exports rarely hold the same record twice).

    Only rows with a pair at ``min_score`` or more can join a group: the others keep their own label and
    the pairs touching them are left out before clustering (the same labels, without a dictionary entry
    per candidate pair of a million-row table).
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.arange(n, dtype=np.int64)
    active = np.unique(pairs[scores >= min_score]) if len(pairs) else np.zeros(0, dtype=np.int64)
    if len(active) == 0:
        return labels
    inside = np.isin(pairs[:, 0], active) & np.isin(pairs[:, 1], active)
    # rows renumbered 0..len(active)-1 in their order: the smallest row of a group stays its label
    compact = np.searchsorted(active, pairs[inside])
    local = _coherent_groups(
        len(active),
        compact,
        scores[inside],
        min_score,
        max_size,
        None if sources is None else np.asarray(sources)[active],
    )
    labels[active] = active[local]
    return labels


def _coherent_groups(n, pairs, scores, min_score, max_size, sources) -> np.ndarray:
    parent = np.arange(n)
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    score_of = {(int(a), int(b)): float(s) for (a, b), s in zip(pairs.tolist(), scores.tolist(), strict=True)}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for index in np.argsort(-scores, kind="stable"):
        if scores[index] < min_score:
            break
        a, b = find(int(pairs[index, 0])), find(int(pairs[index, 1]))
        if a == b or len(members[a]) + len(members[b]) > max_size:
            continue
        balance = 0.0
        for x in members[a]:
            for y in members[b]:
                balance += score_of.get((min(x, y), max(x, y)), 0.0) - 0.5
        if balance <= 0:
            continue
        if sources is not None:
            seen = [sources[x] for x in members[a] + members[b]]
            if (
                len(set(seen)) < len(seen)
                and len(members[a]) + len(members[b]) > 2
                and balance < 0.5 * (len(members[a]) * len(members[b])) * 0.8
            ):
                continue
        keep, gone = min(a, b), max(a, b)
        parent[gone] = keep
        members[keep] += members.pop(gone)
    return np.array([find(i) for i in range(n)], dtype=np.int64)


def clustered_pairs(
    n: int,
    pairs: np.ndarray,
    scores: np.ndarray,
    min_score: float,
    max_size: int = MAX_CLUSTER_SIZE,
    sources: np.ndarray | None = None,
) -> np.ndarray:
    """Mask over ``pairs``: scored at ``min_score`` or more AND inside one coherent cluster."""
    labels = coherent_clusters(n, pairs, scores, min_score, max_size, sources)
    return (
        (scores >= min_score) & (labels[pairs[:, 0]] == labels[pairs[:, 1]])
        if len(pairs)
        else np.zeros(0, bool)
    )


def best_match_pairs(pairs: np.ndarray, scores: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """Mask over ``pairs``: the pair is the best-scoring one of at least one of its two records (within
    ``margin`` in log odds), the best-match constraint of two-source linking."""
    if len(pairs) == 0:
        return np.zeros(0, dtype=bool)
    frame = pl.DataFrame({"i": pairs[:, 0], "j": pairs[:, 1], "s": scores, "k": np.arange(len(pairs))})
    best_i = frame.with_columns(
        pl.col("s").max().over("i").alias("bi"), pl.col("s").max().over("j").alias("bj")
    )
    keep = (best_i.get_column("s") >= best_i.get_column("bi") - margin) | (
        best_i.get_column("s") >= best_i.get_column("bj") - margin
    )
    return keep.to_numpy()


def clusters(candidates: pl.DataFrame, min_score: float = LIKELY_DUPLICATE) -> pl.DataFrame:
    """Connected components of the likely pairs: entity_type, cluster_id, entity_id (one row per member)."""
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for r in candidates.filter(pl.col("score") >= min_score).iter_rows(named=True):
        a, b = find((r["entity_type"], r["id_a"])), find((r["entity_type"], r["id_b"]))
        if a != b:
            parent[max(a, b)] = min(a, b)
    members: dict[tuple[str, str], list[str]] = {}
    for node in list(parent):
        members.setdefault(find(node), []).append(node[1])
    rows = []
    for (entity_type, _), ids in members.items():
        ids = sorted(ids)
        cluster_id = f"{entity_type}:{ids[0]}"
        rows += [{"entity_type": entity_type, "cluster_id": cluster_id, "entity_id": i} for i in ids]
    schema = {"entity_type": pl.String, "cluster_id": pl.String, "entity_id": pl.String}
    return pl.DataFrame(rows, schema=schema).sort(["cluster_id", "entity_id"])
