"""Blocking: cheap passes propose the pairs worth comparing (equal keys, rare shared words, sorted
neighbourhoods, character n-gram and embedding neighbours). Each pass caps its block size, so a common key
never explodes into every pair of its records."""

from __future__ import annotations

import numpy as np
import polars as pl

from holocrm_core.dedupe.normalise import canonical_first_name, email_parts, per_distinct

# Character n-gram blocking compares every record with every other (sparse products): up to this size.
CHAR_BLOCKING_MAX_ROWS = 50_000
# Vector blocking asks the vector engine for each record's nearest neighbours (exact up to 5k rows, a flat
# coarse scan up to BLOCKING_IVF_MIN_ROWS, an inverted file with a bounded scan per row above: see
# vectors.NEIGHBOUR_SCAN_ROWS). Above VECTOR_BLOCKING_MAX_ROWS the string passes alone block: the all-rows
# query costs minutes there on two shared cores (and its vectors a copy of several GB), while on the generated
# export it adds 5 of 2,000 planted pairs at 100k contacts (the string passes find 1,995).
VECTOR_BLOCKING_MAX_ROWS = 300_000
BLOCKING_IVF_MIN_ROWS = 20_000


def _pairs_from_key(keys: pl.Series, max_block: int) -> np.ndarray:
    frame = pl.DataFrame({"t": keys, "row": np.arange(len(keys), dtype=np.int64)}).filter(
        pl.col("t").is_not_null() & (pl.col("t") != "")
    )
    return _pairs_from_key_frame(frame, max_block)


def _pairs_sorted_neighbourhood(keys: pl.Series, window: int) -> np.ndarray:
    """Rows within ``window - 1`` places of each other once sorted by the key (ties in row order)."""
    order = (
        pl.DataFrame({"k": keys.fill_null("").cast(pl.String), "row": np.arange(len(keys), dtype=np.int64)})
        .sort(["k", "row"])
        .get_column("row")
        .to_numpy()
    )
    out = [np.stack([order[:-w], order[w:]], axis=1) for w in range(1, min(window, len(order)))]
    return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.int64)


def _pairs_from_vectors(vectors: np.ndarray, k: int, min_similarity: float) -> np.ndarray:
    """Each record with its ``k`` nearest records in embedding space, through the one vector engine."""
    from holocrm_core.vectors import VectorIndex

    index = VectorIndex(np.asarray(vectors, dtype=np.float32), ivf_min_rows=BLOCKING_IVF_MIN_ROWS)
    return index.neighbours(k, min_similarity)


def candidate_pairs(
    frame: pl.DataFrame,
    block_keys: list[pl.Expr],
    sorted_keys: list[pl.Expr] = (),
    vectors: np.ndarray | None = None,
    max_block: int = 200,
    window: int = 6,
    vector_k: int = 10,
    vector_min_similarity: float = 0.75,
    extra: list[np.ndarray] = (),
) -> np.ndarray:
    """Unique row pairs (i < j) proposed by any blocking pass (``extra``: pairs from passes run elsewhere)."""
    n = len(frame)
    keys = [_pair_keys(part, n) for part in extra]  # each pass's pairs kept as one int64 key each
    for expr in block_keys:
        keys.append(_pair_keys(_pairs_from_key(frame.select(expr.alias("k")).get_column("k"), max_block), n))
    for expr in sorted_keys:
        pairs = _pairs_sorted_neighbourhood(frame.select(expr.alias("k")).get_column("k"), window)
        keys.append(_pair_keys(pairs, n))
    if vectors is not None and len(vectors) == n:
        keys.append(_pair_keys(_pairs_from_vectors(vectors, vector_k, vector_min_similarity), n))
    return _unique_keys(keys, n)


def _pair_keys(part: np.ndarray, n: int) -> np.ndarray:
    """Pairs as ``low * n + high`` (self pairs dropped)."""
    if not len(part):
        return np.zeros(0, dtype=np.int64)
    part = np.asarray(part, dtype=np.int64)
    low, high = np.minimum(part[:, 0], part[:, 1]), np.maximum(part[:, 0], part[:, 1])
    keep = low != high
    return low[keep] * max(n, 1) + high[keep]


def _unique_keys(keys: list[np.ndarray], n: int) -> np.ndarray:
    parts = [k for k in keys if len(k)]
    keys.clear()  # each pass's keys go as soon as they are copied into the one array
    if not parts:
        return np.zeros((0, 2), dtype=np.int64)
    key = np.empty(sum(len(k) for k in parts), dtype=np.int64)
    start = 0
    while parts:
        part = parts.pop(0)
        key[start : start + len(part)] = part
        start += len(part)
        del part
    key.sort()
    key = key[np.r_[True, key[1:] != key[:-1]]]
    out = np.empty((len(key), 2), dtype=np.int64)  # written in place: no temporary per column
    np.floor_divide(key, max(n, 1), out=out[:, 0])
    np.remainder(key, max(n, 1), out=out[:, 1])
    return out


def unique_pairs(parts: list[np.ndarray], n: int) -> np.ndarray:
    """The distinct pairs (i < j) of the pair arrays in ``parts`` over ``n`` rows, sorted, one int64 key per
    pair (a fraction of the memory and time of a row-wise unique)."""
    return _unique_keys([_pair_keys(part, n) for part in parts], n)


def token_block_pairs(values: list[str], max_block: int) -> np.ndarray:
    """Pairs of rows sharing a token that at most ``max_block`` rows have (rare words block, common don't)."""
    frame = pl.DataFrame({"t": [v.split() for v in values], "row": np.arange(len(values), dtype=np.int64)})
    exploded = frame.explode("t").drop_nulls("t").unique(["t", "row"])
    return _pairs_from_key_frame(exploded, max_block)


def _pairs_from_key_frame(frame: pl.DataFrame, max_block: int) -> np.ndarray:
    """Every pair of rows sharing a key ``t``, for keys held by 2 to ``max_block`` rows, without a Python
    loop per block: rows sorted by key, then each row with the rows 1, 2, ... places after it in its block."""
    blocks = (
        frame.select("t", "row")
        .with_columns(pl.len().over("t").alias("size"))
        .filter((pl.col("size") > 1) & (pl.col("size") <= max_block))
        .sort(["t", "row"])
        .with_columns(pl.int_range(pl.len()).over("t").alias("position"))
    )
    if blocks.is_empty():
        return np.zeros((0, 2), dtype=np.int64)
    rows = blocks.get_column("row").to_numpy().astype(np.int64, copy=False)
    size = blocks.get_column("size").to_numpy().astype(np.int64, copy=False)
    left = size - blocks.get_column("position").to_numpy().astype(np.int64) - 1  # rows after it in its block
    del blocks
    out = []
    for offset in range(1, int(size.max())):
        at = np.flatnonzero(left >= offset)
        out.append(np.stack([rows[at], rows[at + offset]], axis=1))
    return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.int64)


def field_passes(
    keys: pl.DataFrame, fields: dict[str, str]
) -> tuple[pl.DataFrame, list[pl.Expr], list[pl.Expr], list[str]]:
    """The blocking passes of a table of normalised fields (column -> kind): ``keys`` with the derived key
    columns added, equal-key expressions, sorted-neighbourhood expressions, and the columns whose rare words
    block (``token_block_pairs``).

    Companies and products: equal phones / identifiers / names, rare shared words of names, codes and
    addresses, sorted names (and reversed), postcode + name prefix. People: equal e-mails, phones, names up to
    nicknames and order, company + name prefixes or suffixes, e-mail user name + initial, sorted names.
    """
    block_keys, sorted_keys, token_columns = [], [], []
    names = [c for c, k in fields.items() if k in ("company_name", "name")]
    for column, kind in fields.items():
        if kind in ("company_name", "name", "code", "address"):
            token_columns.append(column)
        if kind in ("phone", "identifier", "company_name", "name", "email"):
            block_keys.append(pl.col(column))
        if kind in ("company_name", "name"):
            sorted_keys += [pl.col(column), pl.col(column).str.reverse()]
        if kind == "postcode" and names:
            block_keys.append(
                pl.concat_str([pl.col(column), pl.col(names[0]).str.slice(0, 2)], separator="|")
            )
    by_kind = {k: c for c, k in fields.items()}
    if "first_name" in by_kind and "last_name" in by_kind:
        canonical = per_distinct(canonical_first_name, keys.get_column(by_kind["first_name"]).to_list())
        keys = keys.with_columns(pl.Series("_first_canonical", canonical, dtype=pl.String))
        first = pl.col("_first_canonical")
        last = pl.col(by_kind["last_name"])
        name_key = pl.concat_list([first, last]).list.sort().list.join(" ")
        block_keys += [name_key, pl.concat_str([first, last], separator=" ")]
        sorted_keys += [
            pl.concat_str([last, first], separator=" "),
            pl.concat_str([first, last], separator=" "),
        ]
        if "company_ref" in by_kind:
            company = pl.col(by_kind["company_ref"])
            block_keys += [
                pl.concat_str([company, last.str.slice(0, 3)], separator="|"),
                pl.concat_str([company, first.str.slice(0, 3)], separator="|"),
                pl.concat_str([company, last.str.slice(-3)], separator="|"),
            ]
        if "email" in by_kind:
            local_parts = per_distinct(
                lambda v: email_parts(v)[0], keys.get_column(by_kind["email"]).to_list()
            )
            keys = keys.with_columns(pl.Series("_email_local", local_parts, dtype=pl.String))
            local = pl.col("_email_local")
            block_keys.append(pl.concat_str([local, last.str.slice(0, 1)], separator="|"))
            sorted_keys.append(local)
    return keys, block_keys, sorted_keys, token_columns


# A type's rows are read as slices of the scan where they lie in at most this many runs (else filtered).
MAX_TYPE_RUNS = 256


def _type_rows(vectors: pl.LazyFrame, entity_type: str) -> pl.DataFrame:
    """The entity ids and vectors of one entity type from a scan of an embeddings table.

    A filtered scan decodes every row group's vectors before it filters (3.3 GB and 40-50 s for the 127,500
    companies among 6.2M vectors at a million contacts, streaming engine or not); the type column alone
    is cheap to read, and one type's rows lie in a few runs (each shard's documents are written by type),
    so each run is read as a slice of the scan (about 0.6 GB, 24 s there). The same rows, in file order."""
    names = vectors.collect_schema().names()
    if "entity_type" not in names:
        return vectors.select("entity_id", "vector").collect()
    rows = np.flatnonzero(
        vectors.select(pl.col("entity_type") == entity_type).collect().to_series().fill_null(False).to_numpy()
    )
    if len(rows) == 0:
        return vectors.select("entity_id", "vector").clear().collect()
    breaks = np.flatnonzero(np.diff(rows) != 1)
    starts, ends = np.r_[rows[0], rows[breaks + 1]], np.r_[rows[breaks], rows[-1]] + 1
    if len(starts) > MAX_TYPE_RUNS:
        return vectors.filter(pl.col("entity_type") == entity_type).select("entity_id", "vector").collect()
    return pl.concat(
        [
            vectors.slice(int(start), int(end - start)).select("entity_id", "vector").collect()
            for start, end in zip(starts.tolist(), ends.tolist(), strict=True)
        ]
    )


def aligned_vectors(ids: list[str], vectors, entity_type: str) -> np.ndarray | None:
    """Vectors in row order, from an array (already aligned) or an embeddings frame keyed by entity id (a
    LazyFrame is read only here, when the table is small enough for the vector pass)."""
    if vectors is None or len(ids) > VECTOR_BLOCKING_MAX_ROWS:
        return None
    if isinstance(vectors, np.ndarray):
        return vectors if len(vectors) == len(ids) else None
    if isinstance(vectors, pl.LazyFrame):  # read only now, only this type's rows and columns
        return aligned_vectors(ids, _type_rows(vectors, entity_type), entity_type)
    if isinstance(vectors, pl.DataFrame):
        frame = vectors
        if "entity_type" in frame.columns:
            frame = frame.filter(pl.col("entity_type") == entity_type)
        lookup = pl.DataFrame({"entity_id": ids}).join(
            frame.select("entity_id", "vector"), on="entity_id", how="left"
        )
        if lookup.get_column("vector").null_count():
            return None
        array = lookup.get_column("vector").to_numpy()  # an Array column: one 2-D block, no per-row copies
        return (array if array.ndim == 2 else np.stack(array)).astype(np.float32, copy=False)
    if isinstance(vectors, dict):
        return aligned_vectors(ids, vectors.get(entity_type), entity_type)
    return None
