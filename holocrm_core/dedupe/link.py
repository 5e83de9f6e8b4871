"""The engine: one path for every entity. ``link_fields`` normalises a table's typed fields, blocks, compares
and weighs every candidate pair; ``duplicate_candidates`` runs it on staged contacts and companies (within
one table), ``link_sources`` on two exports of the same entity (pairs across them only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from holocrm_core.dedupe.blocking import (
    CHAR_BLOCKING_MAX_ROWS,
    aligned_vectors,
    candidate_pairs,
    field_passes,
    token_block_pairs,
)
from holocrm_core.dedupe.cluster import LIKELY_DUPLICATE, MAX_CLUSTER_SIZE, best_match_pairs, clustered_pairs
from holocrm_core.dedupe.compare import CharGrams, Comparator, PersonNames
from holocrm_core.dedupe.fields import (
    COMPANY_FIELDS,
    TERM_FREQUENCY_KINDS,
    company_fields,
    contact_fields,
    field_comparator,
)
from holocrm_core.dedupe.normalise import contact_table, normalise_field
from holocrm_core.dedupe.weights import LEARN_M, LinkResult, link_records, reasons


@dataclass
class FieldLink:
    """The outcome of ``link_fields``: the normalised frame, its comparators and the scored pairs."""

    frame: pl.DataFrame
    comparators: list[Comparator]
    result: LinkResult


def link_fields(
    table: pl.DataFrame,
    fields: dict[str, str],
    source: str | None = None,
    vectors: np.ndarray | None = None,
    region_column: str | None = None,
    max_block: int = 60,
    learn_m: bool = True,
    prior: str = "candidates",
    keep: tuple[float, float] | None = None,
) -> FieldLink:
    """Score candidate duplicate pairs of ``table``'s rows on every identifying field.

    ``fields``: column -> kind (see ``FIELD_KINDS``: company_name, name, text, phone, address, postcode,
    city, number, code, identifier, exact, digits), or key -> (column, kind) to compare one column twice
    (a product name as words and by the model numbers in it). Each field is normalised (E.164 phones, address words,
    legal suffixes dropped), compared by its kind and weighted by a Fellegi-Sunter model whose m
    probabilities are learned by EM on this table. ``source``: a column naming each row's source; then only
    pairs across sources are candidates (linking two exports). Blocking: rare shared words of name / text /
    address / code fields, equal phones / identifiers / postcodes, sorted names, and - with ``vectors`` -
    nearest neighbours from the vector engine. Exact agreements on the kinds of ``TERM_FREQUENCY_KINDS``
    weigh by how common the agreed value is in ``table`` (term frequencies); ``prior`` and ``keep`` (which
    scored pairs the result holds): see ``link_records``.
    """
    regions = (
        table.get_column(region_column).to_list()
        if region_column and region_column in table.columns
        else None
    )
    normalised = {}
    specs = {key: spec if isinstance(spec, tuple) else (key, spec) for key, spec in fields.items()}
    fields = {key: kind for key, (_, kind) in specs.items()}
    for key, (column, kind) in specs.items():
        values = (
            table.get_column(column).cast(pl.String).to_list()
            if column in table.columns
            else [None] * len(table)
        )
        normalised[key] = normalise_field(kind, values, regions if kind == "phone" else None)
    by_kind = {k: c for c, k in fields.items()}
    persons = (
        PersonNames(normalised[by_kind["first_name"]], normalised[by_kind["last_name"]])
        if "first_name" in by_kind and "last_name" in by_kind
        else None
    )
    comparators = [field_comparator(c, k, normalised[c], persons=persons) for c, k in fields.items()]
    for comp, (c, k) in zip(comparators, fields.items(), strict=True):
        if k in TERM_FREQUENCY_KINDS:
            comp.with_term_frequencies(normalised[c])
    labels = table.get_column(source).to_numpy() if source else None

    # blocking reads the normalised values
    keys = pl.DataFrame({c: pl.Series(v, dtype=pl.String) for c, v in normalised.items()}).with_columns(
        pl.all().fill_null("")
    )
    keys, block_keys, sorted_keys, token_columns = field_passes(keys, fields)
    extra = [token_block_pairs(normalised[c], max_block) for c in token_columns]
    for comp in comparators:
        grams = getattr(comp.function, "__self__", None)
        if isinstance(grams, CharGrams) and len(table) <= CHAR_BLOCKING_MAX_ROWS:
            extra.append(grams.neighbours(5, labels))
    pairs = candidate_pairs(keys, block_keys, sorted_keys, vectors, max_block=max_block, extra=extra)
    del vectors, extra  # the vectors (GBs at scale) and the passes' pair lists are not needed from here
    if labels is not None and len(pairs):
        pairs = pairs[labels[pairs[:, 0]] != labels[pairs[:, 1]]]

    # fields compared through the row number (n-gram vectors, first and last name together) get row numbers
    rows = [str(i) for i in range(len(table))]
    through_rows = {"chars", "company_chars"} | ({"first_name", "last_name"} if persons else set())
    frame = keys.select(list(normalised)).with_columns(
        pl.Series(c, rows, dtype=pl.String) for c, k in fields.items() if k in through_rows
    )
    # the per-field value lists (a Python string per row and field) and the blocking keys are not read
    # from here: the comparators hold what they compare by row, ``frame`` the rest
    del keys, normalised, rows, regions
    result = link_records(
        frame,
        comparators,
        [],
        pairs=pairs,
        learn_m=learn_m,
        random_source=labels,
        max_block=max_block,
        prior=prior,
        keep=keep,
    )
    return FieldLink(frame, comparators, result)


def link_sources(
    left: pl.DataFrame,
    right: pl.DataFrame,
    entity: str = "companies",
    min_score: float = 0.5,
    fields: dict | None = None,
    prior: str = "candidates",
) -> pl.DataFrame:
    """Records of two exports of the same entity that are the same (an import against what the CRM holds).

    Pairs only across the two tables; each kept pair is the best match of at least one of its records and
    lies inside a coherent cluster (no chains). Columns: id_left, id_right, score, reasons.

    ``prior``: "candidates" (default: the share of duplicates among the cross-source candidate pairs) or
    "records" (the chance that two random records of the two sources are one, as ``duplicate_candidates``
    uses; see ``link_records``). Across two sources the best-match-per-record step already keeps the
    coincidences of a large table out, and the random-pair prior lost recall where the evidence is thin
    (abt_buy product names: F1 0.879 -> 0.782, recall 0.83 -> 0.65; febrl4 0.9951 both; dblp_acm
    0.9892 -> 0.9883; ``benchmarks/dedupe_public.py``), so the default stays.
    """
    id_column = {"companies": "company_id", "contacts": "contact_id"}[entity]
    both = pl.concat(
        [
            left.with_columns(pl.lit("left").alias("_source")),
            right.with_columns(pl.lit("right").alias("_source")),
        ],
        how="diagonal_relaxed",
    )
    if fields is None:
        fields = company_fields(both) if entity == "companies" else contact_fields(both)
        if "name" in fields:  # exports of other systems: typos, run-together words, another word order
            fields["name_spelling"] = ("name", "company_chars")
        # people across two systems: names compared word by word with rare words blocking (another system
        # splits and orders names its own way): febrl 4a/4b F1 0.9951 so, 0.9946 with the within-table kinds
        fields = {c: "name" if k in ("first_name", "last_name") else k for c, k in fields.items()}
    region = "country" if "country" in both.columns else None
    link = link_fields(both, fields, source="_source", region_column=region, prior=prior)
    scored = link.result.pairs
    schema = {"id_left": pl.String, "id_right": pl.String, "score": pl.Float64, "reasons": pl.List(pl.String)}
    if scored.is_empty():
        return pl.DataFrame(schema=schema)
    ij = scored.select("i", "j").to_numpy()
    scores = scored.get_column("score").to_numpy()
    sources = both.get_column("_source").to_numpy()
    keep = best_match_pairs(ij, scores) & (scores >= min_score)
    keep &= clustered_pairs(len(both), ij, np.where(keep, scores, 0.0), min_score, sources=sources)
    ids = both.get_column(id_column).to_list()
    weights = link.result.model.weights()
    rows = []
    for r, (i, j) in zip(
        scored.filter(pl.Series(keep)).iter_rows(named=True), ij[keep].tolist(), strict=True
    ):
        a, b = (i, j) if sources[i] == "left" else (j, i)
        rows.append(
            {
                "id_left": ids[a],
                "id_right": ids[b],
                "score": float(r["score"]),
                "reasons": reasons(r, weights, link.comparators),
            }
        )
    return pl.DataFrame(rows, schema=schema).sort("score", descending=True)


# Per entity: the table the engine links and its id column. Within one table m is learned by constrained
# EM (LEARN_M, ``weights.learned_m``) at the random-pair prior. Free EM at the candidate-share prior had
# settled on a class like "same industry" or "same company" instead of "same record" (2,550 generated
# companies: 7,990 pairs proposed for 50 planted), so m stayed at the kinds' fixed priors until round 9;
# fixed, a typo'd company name weighed 0.04 / u and planted company typos without a domain fell under 0.9
# as tables grew (recall 0.92 at 300k contacts; 0.99 learned). Contacts allow bigger blocks (200: common
# surnames at one company).
def _link_entity(
    entity_type: str,
    table: pl.DataFrame,
    companies: pl.DataFrame | None,
    vectors,
    keep: tuple[float, float] | None = None,
) -> FieldLink:
    if entity_type == "contact":
        table = contact_table(table, companies)
        fields, id_column, max_block = contact_fields(table), "contact_id", 200
    else:
        fields, id_column, max_block = company_fields(table), "company_id", 60
    ids = table.get_column(id_column).to_list()
    link = link_fields(
        table,
        fields,
        vectors=aligned_vectors(ids, vectors, entity_type),
        region_column="country",
        max_block=max_block,
        learn_m=LEARN_M,
        prior="records",
        keep=keep,
    )
    link.frame = link.frame.with_columns(pl.Series("id", ids, dtype=pl.String))
    return link


def _pairs_frame(
    entity_type, frame, comparators, result: LinkResult, min_score: float, max_cluster: int = MAX_CLUSTER_SIZE
) -> pl.DataFrame:
    """The likely pairs, kept only inside coherent clusters (see ``coherent_clusters``): a pair whose
    records ended in different groups would chain them and is not proposed."""
    scored = result.pairs
    keep = scored.get_column("score").to_numpy() >= min_score
    if len(scored):
        ij = scored.select("i", "j").to_numpy()
        score = scored.get_column("score").to_numpy()
        inside = clustered_pairs(len(frame), ij, score, max(min_score, 0.5), max_cluster)
        keep &= inside | (score < max(min_score, 0.5))
        del ij
    pairs = scored.filter(pl.Series(keep))  # one filter: no copy of every scored pair
    ids = frame.get_column("id").to_list()
    weights = result.model.weights()
    rows = []
    for r in pairs.iter_rows(named=True):
        a, b = ids[r["i"]], ids[r["j"]]
        if a > b:
            a, b = b, a
        rows.append(
            {
                "entity_type": entity_type,
                "id_a": a,
                "id_b": b,
                "score": float(r["score"]),
                "match_weight": float(r["log_odds"]),
                "reasons": reasons(r, weights, comparators),
            }
        )
    return pl.DataFrame(rows, schema=CANDIDATE_SCHEMA).sort("score", descending=True)


# The columns of the staged tables the engine reads (besides every custom ``cf_*`` one): ``contact_table``'s
# and the company fields' (``fields.COMPANY_FIELDS``), so that a caller can scan only these.
CONTACT_LINK_COLUMNS = (
    "contact_id",
    "first_name",
    "last_name",
    "full_name",
    "email",
    "phone",
    "company_id",
    "company_name",
    "title",
    "country",
)
COMPANY_LINK_COLUMNS = ("company_id", *COMPANY_FIELDS)


def link_columns(entity_type: str, columns: list[str]) -> list[str]:
    """The ones of a staged table's ``columns`` that ``duplicate_candidates`` reads for ``entity_type``
    (contact / company), in the table's order: the same answer from a table holding only these."""
    wanted = CONTACT_LINK_COLUMNS if entity_type == "contact" else COMPANY_LINK_COLUMNS
    return [c for c in columns if c in wanted or c.startswith("cf_")]


CANDIDATE_SCHEMA = pl.Schema(
    {
        "entity_type": pl.String,
        "id_a": pl.String,
        "id_b": pl.String,
        "score": pl.Float64,
        "match_weight": pl.Float64,
        "reasons": pl.List(pl.String),
    }
)


def duplicate_candidates(
    contacts: pl.DataFrame,
    companies: pl.DataFrame,
    vectors=None,
    min_score: float = LIKELY_DUPLICATE,
) -> pl.DataFrame:
    """Likely duplicate pairs of contacts and of companies over the whole tables, best first.

    Columns: entity_type (contact / company), id_a < id_b, score (posterior probability of being the same
    person / company), match_weight (log odds) and reasons (the field agreements that weigh most, with their
    weights). ``vectors``: optional embeddings (frame with entity_type, entity_id, vector, or a dict
    entity_type -> aligned array) used as an extra blocking pass.
    """
    parts = []
    # only the pairs _pairs_frame reads are kept: those at min_score and those between two records that its
    # clustering (at max(min_score, 0.5)) groups; the same answer as from every scored candidate
    keep = (min_score, max(min_score, 0.5))
    for entity_type, table in (("contact", contacts), ("company", companies)):
        if table is not None and len(table) > 1:
            link = _link_entity(entity_type, table, companies, vectors, keep=keep)
            parts.append(_pairs_frame(entity_type, link.frame, link.comparators, link.result, min_score))
            del link  # the contacts' frames and pairs go before the companies are linked
    if not parts:
        return pl.DataFrame(schema=CANDIDATE_SCHEMA)
    return pl.concat(parts).sort(["entity_type", "score"], descending=[False, True])
