"""Duplicate contacts and companies over the whole table: candidate pairs with reasons, clusters, merge proposals.

How it works (classic record linkage, unsupervised), one module per step and one engine for every entity:
1. ``normalise``: each identifying value in its compared form (folded names, nicknames, company roots,
   E.164 phones, address words, identifier keys); ``fields`` types a table's columns, custom ``cf_*`` ones
   included (a customer number, a tax id, an address), and says how each kind is compared and weighed.
2. ``blocking``: several cheap passes propose pairs (same e-mail, phone or identifier, same name up to
   nicknames and order, same company + similar name, rare shared words, sorted neighbourhoods, character
   n-gram and - when vectors are given - embedding neighbours). Each pass caps its block size.
3. ``compare``: each pair gets an agreement level per field (exact / very similar / similar / different /
   missing).
4. ``weights``: a Fellegi-Sunter model whose "unrelated pair" probabilities come from random record pairs
   and whose "same entity" probabilities are learned by EM on the candidate pairs. Within one table the
   prior is that of two random records being one (EM over every record pair: it follows the number of
   duplicates, not the coincidental same-name pairs of a large table), and an exact agreement weighs by
   how common the agreed value is (term frequencies). ``score`` is the posterior probability of a
   duplicate; ``reasons`` lists the field agreements that weigh the most.
5. ``cluster``: coherent clusters (no chains through a weak link); ``merge``: one proposal per cluster,
   which record survives and how deals, activities and contacts move. Nothing is merged automatically.

``link.link_fields`` is the engine; ``duplicate_candidates`` applies it to staged contacts and companies,
``link_sources`` to two exports; ``weights.link_records`` is the scoring core (used for febrl directly).
"""

from holocrm_core.dedupe.blocking import candidate_pairs
from holocrm_core.dedupe.cluster import (
    LIKELY_DUPLICATE,
    MAX_CLUSTER_SIZE,
    best_match_pairs,
    clustered_pairs,
    clusters,
    coherent_clusters,
)
from holocrm_core.dedupe.compare import (
    DISAGREE,
    EXACT,
    LEVELS,
    MISSING,
    SIMILAR,
    VERY_SIMILAR,
    CharGrams,
    Comparator,
    PersonNames,
    TokenIdf,
)
from holocrm_core.dedupe.fields import (
    COMPANY_FIELDS,
    CONTACT_FIELDS,
    FIELD_KINDS,
    TERM_FREQUENCY_KINDS,
    company_fields,
    contact_fields,
    field_comparator,
    identifier_kind,
)
from holocrm_core.dedupe.link import (
    CANDIDATE_SCHEMA,
    FieldLink,
    duplicate_candidates,
    link_columns,
    link_fields,
    link_sources,
)
from holocrm_core.dedupe.merge import merge_proposals
from holocrm_core.dedupe.normalise import (
    NICKNAMES,
    STOP_WORDS,
    address_tokens,
    canonical_first_name,
    code_tokens,
    company_root,
    contact_table,
    e164,
    email_parts,
    fold,
    name_tokens,
    normalise_field,
    phone_digits,
)
from holocrm_core.dedupe.weights import LinkResult, MatchModel, fit_match_model, link_records, reasons

__all__ = [
    "CANDIDATE_SCHEMA",
    "COMPANY_FIELDS",
    "CONTACT_FIELDS",
    "DISAGREE",
    "EXACT",
    "FIELD_KINDS",
    "LEVELS",
    "LIKELY_DUPLICATE",
    "MAX_CLUSTER_SIZE",
    "MISSING",
    "NICKNAMES",
    "SIMILAR",
    "STOP_WORDS",
    "TERM_FREQUENCY_KINDS",
    "VERY_SIMILAR",
    "CharGrams",
    "Comparator",
    "FieldLink",
    "LinkResult",
    "MatchModel",
    "PersonNames",
    "TokenIdf",
    "address_tokens",
    "best_match_pairs",
    "candidate_pairs",
    "canonical_first_name",
    "clustered_pairs",
    "clusters",
    "code_tokens",
    "coherent_clusters",
    "company_fields",
    "company_root",
    "contact_fields",
    "contact_table",
    "duplicate_candidates",
    "e164",
    "email_parts",
    "field_comparator",
    "fit_match_model",
    "fold",
    "identifier_kind",
    "link_columns",
    "link_fields",
    "link_records",
    "link_sources",
    "merge_proposals",
    "name_tokens",
    "normalise_field",
    "phone_digits",
    "reasons",
]
