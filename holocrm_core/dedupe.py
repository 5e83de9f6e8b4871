"""Duplicate contacts and companies over the whole table: candidate pairs with reasons, clusters, merge proposals.

How it works (classic record linkage, unsupervised):
1. Blocking: several cheap passes propose pairs (same e-mail, same phone, same name up to nicknames and
   order, same company + similar surname, sorted neighbourhoods on names, and - when vectors are given -
   nearest neighbours in embedding space). Each pass caps its block size so a common key never explodes.
2. Comparison: each pair gets an agreement level per field (exact / very similar / similar / different /
   missing), with Jaro-Winkler on names, nickname and transposition handling, e-mail local parts, phone
   digits, company identity.
3. Scoring: a Fellegi-Sunter model whose "unrelated pair" probabilities come from random record pairs and
   whose "same entity" probabilities are learned by EM on the candidate pairs. ``score`` is the posterior
   probability of a duplicate; ``reasons`` lists the field agreements that weigh the most.
4. Clusters (connected components of likely pairs) and one merge proposal per cluster: which record
   survives and how deals, activities and contacts move. Nothing is merged automatically.

``link_records`` is the generic engine (used for the public febrl benchmark); ``duplicate_candidates``
applies it to staged contacts and companies.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np
import polars as pl

MISSING = -1
DISAGREE, SIMILAR, VERY_SIMILAR, EXACT = 0, 1, 2, 3
LEVELS = 4

# Common English given-name variants -> one canonical form; enough for CRM data, extend freely.
_NICKNAME_GROUPS = {
    "robert": "bob bobby rob robbie bert", "william": "bill billy will willy liam", "katherine": "kate katie kathy kat",
    "catherine": "cathy cat cate", "elizabeth": "liz lizzie beth betty eliza lisa", "james": "jim jimmy jamie",
    "michael": "mike mikey mick", "jennifer": "jen jenny jenn", "christopher": "chris kit", "christina": "tina",
    "daniel": "dan danny", "margaret": "maggie meg peggy marge", "richard": "rick ricky dick rich richie",
    "joseph": "joe joey", "thomas": "tom tommy", "alexander": "alex al xander sasha", "alexandra": "alexa sandra",
    "samantha": "sam sammy", "samuel": "sammie", "jonathan": "jon jonny", "john": "jack johnny", "nicholas": "nick nicky",
    "patricia": "pat patty trish", "patrick": "paddy", "benjamin": "ben benny benji", "matthew": "matt matty",
    "anthony": "tony", "steven": "steve stevie", "stephen": "steph", "rebecca": "becky becca", "victoria": "vicky tori",
    "andrew": "andy drew", "edward": "ed eddie ted ned", "susan": "sue susie suzy", "valentina": "vale vali",
    "natalia": "nata natasha talia", "david": "dave davy", "gregory": "greg", "jeffrey": "jeff", "joshua": "josh",
    "lawrence": "larry", "kenneth": "ken kenny", "timothy": "tim timmy", "frederick": "fred freddie",
    "charles": "charlie chuck chas", "henry": "hank harry", "abigail": "abby abbie", "amanda": "mandy",
    "nathan": "nate", "nathaniel": "nat", "zachary": "zach zack", "ronald": "ron ronnie", "donald": "don donnie",
    "jessica": "jess jessie", "joanna": "jo", "theodore": "theo", "maximilian": "max", "gabriel": "gabe",
    "raymond": "ray", "francis": "frank", "isabella": "bella izzy", "olivia": "liv", "deborah": "deb debbie",
    "philip": "phil", "vincent": "vince", "douglas": "doug", "leonard": "leo len", "walter": "walt",
}
NICKNAMES = {nick: name for name, nicks in _NICKNAME_GROUPS.items() for nick in nicks.split()}
# Legal suffixes that do not distinguish companies ("Acme Corp" is "Acme Corporation").
LEGAL_SUFFIXES = {
    "inc", "incorporated", "corp", "corporation", "co", "company", "llc", "l", "ltd", "limited", "plc", "gmbh",
    "ag", "sa", "sas", "sarl", "srl", "spa", "bv", "nv", "ab", "as", "oy", "kk", "pty", "pte", "lp", "llp", "the",
}  # "Group" / "Holdings" stay: "Acme Holdings" is usually the parent of "Acme", a different record


def fold(text: str | None) -> str:
    """Lower case, accents removed, punctuation to spaces: "Lefèvre-Dubois, Inc." -> "lefevre dubois inc"."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return " ".join(re.sub(r"[^a-z0-9@.+ ]", " ", text).replace(".", " ").split())


def canonical_first_name(name: str | None) -> str:
    folded = fold(name)
    return NICKNAMES.get(folded, folded)


def company_root(name: str | None) -> str:
    """The distinguishing part of a company name (legal suffixes dropped)."""
    return " ".join(w for w in fold(name).split() if w not in LEGAL_SUFFIXES)


def phone_digits(phone: str | None) -> str:
    digits = re.sub(r"\D", "", phone or "")
    return digits[-9:] if len(digits) >= 7 else ""


def email_parts(email: str | None) -> tuple[str, str]:
    email = (email or "").strip().lower()
    if "@" not in email:
        return "", ""
    local, domain = email.rsplit("@", 1)
    return local.split("+")[0].replace(".", "").replace("_", "").replace("-", ""), domain


# ------------------------------------------------------------------------------------------ comparisons
def _jw(a: list[str], b: list[str]) -> np.ndarray:
    from rapidfuzz.distance import JaroWinkler
    from rapidfuzz.process import cpdist

    if not a:
        return np.zeros(0)
    return np.asarray(cpdist(a, b, scorer=JaroWinkler.normalized_similarity, workers=1), dtype=np.float64)


def _levels_from_similarity(a: list[str], b: list[str], very: float = 0.94, similar: float = 0.85) -> np.ndarray:
    sim = _jw(a, b)
    out = np.where(sim >= 1.0 - 1e-9, EXACT, np.where(sim >= very, VERY_SIMILAR, np.where(sim >= similar, SIMILAR, DISAGREE)))
    missing = np.array([not x or not y for x, y in zip(a, b)], dtype=bool)
    out[missing] = MISSING
    return out


def _levels_exact(a: list[str], b: list[str]) -> np.ndarray:
    out = np.array([EXACT if x == y else DISAGREE for x, y in zip(a, b)], dtype=np.int64)
    out[np.array([not x or not y for x, y in zip(a, b)], dtype=bool)] = MISSING
    return out


def _levels_digits(a: list[str], b: list[str]) -> np.ndarray:
    """Numbers and dates: exact, one edit or two digits swapped (a typo), else different."""
    from rapidfuzz.distance import OSA

    out = []
    for x, y in zip(a, b):
        if not x or not y:
            out.append(MISSING)
        elif x == y:
            out.append(EXACT)
        elif OSA.distance(x, y) <= 1:
            out.append(VERY_SIMILAR)
        elif len(x) == len(y) == 8 and x[:4] == y[:4] and x[4:6] == y[6:8] and x[6:8] == y[4:6]:
            out.append(VERY_SIMILAR)  # yyyymmdd with month and day swapped
        elif OSA.distance(x, y) <= 2:
            out.append(SIMILAR)
        else:
            out.append(DISAGREE)
    return np.asarray(out, dtype=np.int64)


@dataclass
class Comparator:
    """One field of the comparison vector: ``kind`` is string, exact, digits or a custom function."""

    name: str
    kind: str = "string"
    very: float = 0.94
    similar: float = 0.85
    function: object = None  # (values_a, values_b) -> levels, for composite fields
    m_prior: tuple | None = None  # prior P(level | duplicate) for DISAGREE..EXACT; None = DEFAULT_M
    reason: dict = field(default_factory=dict)  # level -> sentence for the reasons column

    def levels(self, a: list, b: list) -> np.ndarray:
        if self.function is not None:
            return np.asarray(self.function(a, b), dtype=np.int64)
        if self.kind == "exact":
            return _levels_exact(a, b)
        if self.kind == "digits":
            return _levels_digits(a, b)
        return _levels_from_similarity(a, b, self.very, self.similar)


# ------------------------------------------------------------------------------------------ blocking
def _pairs_from_key(keys: pl.Series, max_block: int) -> np.ndarray:
    frame = pl.DataFrame({"key": keys, "row": np.arange(len(keys), dtype=np.int64)}).filter(
        pl.col("key").is_not_null() & (pl.col("key") != "")
    )
    groups = frame.group_by("key").agg(pl.col("row")).filter(
        (pl.col("row").list.len() > 1) & (pl.col("row").list.len() <= max_block)
    )
    out = []
    for rows in groups.get_column("row").to_list():
        rows = np.asarray(rows)
        i, j = np.triu_indices(len(rows), 1)
        out.append(np.stack([rows[i], rows[j]], axis=1))
    return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.int64)


def _pairs_sorted_neighbourhood(keys: pl.Series, window: int) -> np.ndarray:
    order = np.argsort(keys.fill_null("").to_numpy().astype(str), kind="stable")
    out = [np.stack([order[:-w], order[w:]], axis=1) for w in range(1, min(window, len(order)))]
    return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.int64)


def _pairs_from_vectors(vectors: np.ndarray, k: int, min_similarity: float) -> np.ndarray:
    """Each record with its ``k`` nearest records in embedding space, through the one vector engine."""
    from holocrm_core.vectors import VectorIndex

    return VectorIndex(np.asarray(vectors, dtype=np.float32)).neighbours(k, min_similarity)


def candidate_pairs(
    frame: pl.DataFrame,
    block_keys: list[pl.Expr],
    sorted_keys: list[pl.Expr] = (),
    vectors: np.ndarray | None = None,
    max_block: int = 200,
    window: int = 6,
    vector_k: int = 10,
    vector_min_similarity: float = 0.75,
) -> np.ndarray:
    """Unique row pairs (i < j) proposed by any blocking pass."""
    parts = [np.zeros((0, 2), dtype=np.int64)]
    for expr in block_keys:
        parts.append(_pairs_from_key(frame.select(expr.alias("k")).get_column("k"), max_block))
    for expr in sorted_keys:
        parts.append(_pairs_sorted_neighbourhood(frame.select(expr.alias("k")).get_column("k"), window))
    if vectors is not None and len(vectors) == len(frame):
        parts.append(_pairs_from_vectors(vectors, vector_k, vector_min_similarity))
    pairs = np.concatenate(parts).astype(np.int64)
    pairs = np.sort(pairs, axis=1)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return np.unique(pairs, axis=0) if len(pairs) else pairs


# ------------------------------------------------------------------------------------------ Fellegi-Sunter
@dataclass
class MatchModel:
    """Fellegi-Sunter parameters: P(level | duplicate) = m, P(level | unrelated) = u, prior of a duplicate."""

    fields: list[str]
    m: np.ndarray  # (fields, LEVELS)
    u: np.ndarray
    prior: float
    iterations: int = 0

    def weights(self) -> np.ndarray:
        return np.log(self.m / self.u)

    def log_odds(self, levels: np.ndarray) -> np.ndarray:
        w = self.weights()
        total = np.full(len(levels), np.log(self.prior / (1 - self.prior)))
        for f in range(len(self.fields)):
            lv = levels[:, f]
            seen = lv >= 0
            total[seen] += w[f, lv[seen]]
        return total


# Prior beliefs, as Dirichlet pseudo-counts: they decide on tiny tables and fade as pairs accumulate.
DEFAULT_M = np.array([0.05, 0.10, 0.15, 0.70])  # a duplicate mostly agrees
DEFAULT_U = np.array([0.90, 0.06, 0.02, 0.02])  # two unrelated records mostly differ
PRIOR_PAIRS = 30.0
LEARN_M = False  # see fit_match_model: CRM fields are few and correlated


def _level_frequencies(levels: np.ndarray, weights: np.ndarray | None = None, prior: np.ndarray | None = None,
                       prior_pairs: float = PRIOR_PAIRS) -> np.ndarray:
    n_fields = levels.shape[1]
    out = np.zeros((n_fields, LEVELS))
    w = np.ones(len(levels)) if weights is None else weights
    prior = np.broadcast_to(DEFAULT_M if prior is None else prior, (n_fields, LEVELS))
    for f in range(n_fields):
        seen = levels[:, f] >= 0
        out[f] = np.bincount(levels[seen, f], weights=w[seen], minlength=LEVELS)[:LEVELS] + prior[f] * prior_pairs + 1e-3
        out[f] /= out[f].sum()
    return out


def fit_match_model(
    pair_levels: np.ndarray, random_levels: np.ndarray, fields: list[str], max_iter: int = 100, tol: float = 1e-6,
    m_prior: np.ndarray | None = None, learn_m: bool = True,
) -> MatchModel:
    """EM for m and the prior on the candidate pairs; u is fixed from random pairs (nearly all unrelated).

    ``learn_m=False`` keeps m at its prior and learns only the share of duplicates: the safer choice when
    there are few, correlated fields (names, e-mail and company move together), where a free EM can settle
    on "same family name" or "same company" as its second class instead of "same person".
    """
    u = _level_frequencies(random_levels, prior=DEFAULT_U)
    m_prior = np.tile(DEFAULT_M, (len(fields), 1)) if m_prior is None else np.asarray(m_prior, dtype=np.float64)
    model = MatchModel(fields, m_prior.copy(), u, 0.1)
    if len(pair_levels) == 0:
        return model
    for iteration in range(max_iter):
        posterior = 1.0 / (1.0 + np.exp(-np.clip(model.log_odds(pair_levels), -50, 50)))
        new_m = _level_frequencies(pair_levels, posterior, prior=m_prior) if learn_m else model.m
        new_prior = float(np.clip((posterior.sum() + 1.0) / (len(posterior) + 10.0), 1e-6, 0.5))
        delta = np.abs(new_m - model.m).max() + abs(new_prior - model.prior)
        model = MatchModel(fields, new_m, u, new_prior, iteration + 1)
        if delta < tol:
            break
    return model


@dataclass
class LinkResult:
    pairs: pl.DataFrame  # i, j, score, log_odds and one level column per field
    model: MatchModel
    candidates: int


def link_records(
    frame: pl.DataFrame,
    comparators: list[Comparator],
    block_keys: list[pl.Expr],
    sorted_keys: list[pl.Expr] = (),
    vectors: np.ndarray | None = None,
    random_pairs: int = 20_000,
    seed: int = 0,
    max_block: int = 200,
    window: int = 6,
    learn_m: bool = True,
) -> LinkResult:
    """Score every candidate pair of ``frame``'s rows; ``score`` is P(duplicate | comparison vector)."""
    pairs = candidate_pairs(frame, block_keys, sorted_keys, vectors, max_block=max_block, window=window)
    columns = {c.name: frame.get_column(c.name).to_list() for c in comparators}

    def levels_for(idx: np.ndarray) -> np.ndarray:
        if len(idx) == 0:
            return np.zeros((0, len(comparators)), dtype=np.int64)
        out = []
        for comp in comparators:
            values = columns[comp.name]
            a = [values[i] for i in idx[:, 0]]
            b = [values[j] for j in idx[:, 1]]
            out.append(comp.levels(a, b))
        return np.stack(out, axis=1)

    rng = np.random.default_rng(seed)
    n = len(frame)
    if n * (n - 1) // 2 <= random_pairs:
        # small table: every pair once (sampling with replacement would overweight its few coincidences)
        i, j = np.triu_indices(n, 1)
        random_idx = np.stack([i, j], axis=1).astype(np.int64)
    else:
        random_idx = rng.integers(0, n, size=(random_pairs, 2))
        random_idx = random_idx[random_idx[:, 0] != random_idx[:, 1]]
    fields = [c.name for c in comparators]
    pair_levels = levels_for(pairs)
    m_prior = np.array([np.asarray(c.m_prior, dtype=np.float64) / sum(c.m_prior) if c.m_prior else DEFAULT_M
                        for c in comparators])
    model = fit_match_model(pair_levels, levels_for(random_idx), fields, m_prior=m_prior, learn_m=learn_m)
    log_odds = model.log_odds(pair_levels) if len(pairs) else np.zeros(0)
    result = pl.DataFrame(
        {
            "i": pairs[:, 0] if len(pairs) else np.zeros(0, np.int64),
            "j": pairs[:, 1] if len(pairs) else np.zeros(0, np.int64),
            "score": 1.0 / (1.0 + np.exp(-np.clip(log_odds, -50, 50))),
            "log_odds": log_odds,
        }
        | {f"level_{f}": pair_levels[:, k] if len(pairs) else np.zeros(0, np.int64) for k, f in enumerate(fields)}
    )
    return LinkResult(result, model, len(pairs))


def _reasons(levels_row: dict, weights: np.ndarray, comparators: list[Comparator], top: int = 4) -> list[str]:
    scored = []
    for k, comp in enumerate(comparators):
        level = levels_row[f"level_{comp.name}"]
        if level < 0:
            continue
        text = comp.reason.get(level) or f"{comp.name.replace('_', ' ')} " + (
            {EXACT: "identical", VERY_SIMILAR: "nearly identical", SIMILAR: "similar", DISAGREE: "differs"}[level]
        )
        scored.append((weights[k, level], text))
    scored.sort(key=lambda x: -abs(x[0]))
    return [f"{t} ({w:+.1f})" for w, t in scored[:top]]


# ------------------------------------------------------------------------------------------ CRM entities
def _contact_frame(contacts: pl.DataFrame, companies: pl.DataFrame | None) -> pl.DataFrame:
    company_names = {}
    if companies is not None and not companies.is_empty():
        company_names = dict(zip(companies.get_column("company_id").to_list(), companies.get_column("name").to_list()))
    rows = []
    for r in contacts.iter_rows(named=True):
        first, last = fold(r.get("first_name")), fold(r.get("last_name"))
        if not first and not last and r.get("full_name"):
            parts = fold(r["full_name"]).split()
            first, last = (parts[0], " ".join(parts[1:])) if parts else ("", "")
        local, domain = email_parts(r.get("email"))
        company = r.get("company_id") or ""
        company_name = company_root(r.get("company_name") or company_names.get(company))
        rows.append(
            {
                "id": r["contact_id"],
                "first": first,
                "last": last,
                "first_canonical": canonical_first_name(first),
                "name_key": " ".join(sorted([canonical_first_name(first), last])),
                "email": (r.get("email") or "").strip().lower(),
                "email_local": local,
                "email_domain": domain,
                "phone": phone_digits(r.get("phone")),
                "company": company or company_name,
                "company_name": company_name,
                "title": fold(r.get("title")),
            }
        )
    return pl.DataFrame(rows, schema={k: pl.String for k in (
        "id", "first", "last", "first_canonical", "name_key", "email", "email_local", "email_domain", "phone",
        "company", "company_name", "title")})


def _person_name_levels(first_a, first_b, last_a, last_b) -> tuple[np.ndarray, np.ndarray]:
    """First and last name levels, with nicknames (Bob = Robert) and swapped order (Smith John) counted."""
    first_lv = _levels_from_similarity(first_a, first_b)
    last_lv = _levels_from_similarity(last_a, last_b)
    canon_a = [canonical_first_name(x) for x in first_a]
    canon_b = [canonical_first_name(x) for x in first_b]
    nick = np.array([bool(x) and x == y for x, y in zip(canon_a, canon_b)]) & (first_lv < EXACT)
    first_lv[nick] = VERY_SIMILAR
    swapped_first = _levels_from_similarity(first_a, last_b)
    swapped_last = _levels_from_similarity(last_a, first_b)
    straight = np.maximum(first_lv, 0) + np.maximum(last_lv, 0)
    swapped = np.maximum(swapped_first, 0) + np.maximum(swapped_last, 0)
    use_swap = swapped > straight
    first_lv = np.where(use_swap, swapped_first, first_lv)
    last_lv = np.where(use_swap, swapped_last, last_lv)
    return first_lv, last_lv


def _company_presence_levels(a: list[str], b: list[str]) -> np.ndarray:
    """Same company / only one record has one (a level of its own: duplicates rarely lose it) / different."""
    out = []
    for x, y in zip(a, b):
        if not x and not y:
            out.append(MISSING)
        elif not x or not y:
            out.append(SIMILAR)
        else:
            out.append(EXACT if x == y else DISAGREE)
    return np.asarray(out, dtype=np.int64)


def contact_comparators() -> list[Comparator]:
    return [
        Comparator("first", m_prior=(0.002, 0.05, 0.2, 0.75),
                   reason={EXACT: "same first name", VERY_SIMILAR: "first name matches (nickname or typo)",
                           SIMILAR: "first name similar", DISAGREE: "different first name"}),
        Comparator("last", m_prior=(0.0005, 0.1, 0.15, 0.75),
                   reason={EXACT: "same last name", VERY_SIMILAR: "last name nearly identical (typo)",
                           SIMILAR: "last name similar", DISAGREE: "different last name"}),
        # People use a second or personal address, so a different e-mail is weak evidence. The user name is
        # not compared on its own: it is built from the name, so it would count the name twice.
        Comparator("email", kind="exact", m_prior=(0.4, 0.001, 0.001, 0.6),
                   reason={EXACT: "same e-mail", DISAGREE: "different e-mail"}),
        Comparator("phone", kind="digits", m_prior=(0.2, 0.05, 0.05, 0.7),
                   reason={EXACT: "same phone", VERY_SIMILAR: "phone differs by one digit", DISAGREE: "different phone"}),
        # the same name at another company is usually another person (or a job change: a new record)
        Comparator("company", function=_company_presence_levels, m_prior=(0.002, 0.001, 0.01, 0.99),
                   reason={EXACT: "same company", SIMILAR: "only one record names a company",
                           DISAGREE: "different company"}),
        Comparator("title", kind="string", m_prior=(0.2, 0.1, 0.1, 0.6),
                   reason={EXACT: "same title", DISAGREE: "different title"}),
    ]


def _link_contacts(contacts: pl.DataFrame, companies: pl.DataFrame | None, vectors: np.ndarray | None):
    frame = _contact_frame(contacts, companies).with_row_index("row").with_columns(pl.col("row").cast(pl.Int64))
    base = contact_comparators()
    comparators = list(base)
    # first and last name are compared together (nicknames, swapped order), through the row index
    first_last = _PersonNames(frame)
    comparators[0] = Comparator("row_first", function=first_last.first, reason=base[0].reason, m_prior=base[0].m_prior)
    comparators[1] = Comparator("row_last", function=first_last.last, reason=base[1].reason, m_prior=base[1].m_prior)
    frame = frame.with_columns(pl.col("row").alias("row_first"), pl.col("row").alias("row_last"))
    block_keys = [
        pl.col("email"),
        pl.col("phone"),
        pl.col("name_key"),
        pl.concat_str([pl.col("first_canonical"), pl.col("last")], separator=" "),
        pl.concat_str([pl.col("company"), pl.col("last").str.slice(0, 3)], separator="|"),
        pl.concat_str([pl.col("company"), pl.col("first_canonical").str.slice(0, 3)], separator="|"),
        pl.concat_str([pl.col("company"), pl.col("last").str.slice(-3)], separator="|"),
        pl.concat_str([pl.col("email_local"), pl.col("last").str.slice(0, 1)], separator="|"),
    ]
    sorted_keys = [
        pl.concat_str([pl.col("last"), pl.col("first_canonical")], separator=" "),
        pl.concat_str([pl.col("first_canonical"), pl.col("last")], separator=" "),
        pl.col("email_local"),
    ]
    result = link_records(frame, comparators, block_keys, sorted_keys, vectors=vectors, learn_m=LEARN_M)
    return frame, comparators, result


class _PersonNames:
    """Nickname- and order-aware first/last name levels for row pairs (computed once per pair list)."""

    def __init__(self, frame: pl.DataFrame):
        self.firsts = frame.get_column("first").to_list()
        self.lasts = frame.get_column("last").to_list()
        self._key = None
        self._levels = None

    def _compute(self, a_rows, b_rows):
        key = (len(a_rows), tuple(a_rows[:3]), tuple(b_rows[:3]), tuple(a_rows[-3:]), tuple(b_rows[-3:]))
        if key != self._key:
            self._levels = _person_name_levels(
                [self.firsts[i] for i in a_rows], [self.firsts[i] for i in b_rows],
                [self.lasts[i] for i in a_rows], [self.lasts[i] for i in b_rows],
            )
            self._key = key
        return self._levels

    def first(self, a_rows, b_rows):
        return self._compute(a_rows, b_rows)[0]

    def last(self, a_rows, b_rows):
        return self._compute(a_rows, b_rows)[1]


def _company_frame(companies: pl.DataFrame) -> pl.DataFrame:
    rows = []
    for r in companies.iter_rows(named=True):
        root = company_root(r.get("name"))
        domain = (r.get("domain") or "").strip().lower().removeprefix("www.")
        rows.append(
            {
                "id": r["company_id"],
                "root": root,
                "root_key": "".join(sorted(root.split())),
                "domain": domain,
                "domain_stem": domain.split(".")[0] if domain else "",
                "industry": fold(r.get("industry")),
                "country": fold(r.get("country")),
                "city": fold(r.get("city")),
                "phone": phone_digits(r.get("phone")) if "phone" in companies.columns else "",
            }
        )
    return pl.DataFrame(rows, schema={k: pl.String for k in (
        "id", "root", "root_key", "domain", "domain_stem", "industry", "country", "city", "phone")})


def _company_name_levels(a: list[str], b: list[str]) -> np.ndarray:
    """Company names (legal suffix dropped): same / one or two typing errors / a word more or less / different.

    Edit distance rather than Jaro-Winkler: company names share long prefixes ("Copperway" / "Coppermark")
    that Jaro-Winkler rewards, while a typo is one or two edits.
    """
    from rapidfuzz.distance import OSA

    out = []
    for x, y in zip(a, b):
        if not x or not y:
            out.append(MISSING)
        elif x == y:
            out.append(EXACT)
        elif OSA.distance(x, y) <= (1 if min(len(x), len(y)) < 8 else 2):
            out.append(VERY_SIMILAR)
        elif set(x.split()) <= set(y.split()) or set(y.split()) <= set(x.split()):
            out.append(SIMILAR)
        else:
            out.append(DISAGREE)
    return np.asarray(out, dtype=np.int64)


def company_comparators() -> list[Comparator]:
    return [
        Comparator("root", function=_company_name_levels, m_prior=(0.01, 0.3, 0.04, 0.65), reason={
            EXACT: "same name (legal suffix and case ignored)", VERY_SIMILAR: "name nearly identical (typo)",
            SIMILAR: "one name contains the other", DISAGREE: "different name"}),
        Comparator("domain_stem", kind="exact", m_prior=(0.05, 0.001, 0.001, 0.95),
                   reason={EXACT: "same web domain", DISAGREE: "different web domain"}),
        Comparator("industry", kind="exact", m_prior=(0.05, 0.001, 0.001, 0.95),
                   reason={EXACT: "same industry", DISAGREE: "different industry"}),
        Comparator("country", kind="exact", m_prior=(0.05, 0.001, 0.001, 0.95),
                   reason={EXACT: "same country", DISAGREE: "different country"}),
        Comparator("city", kind="exact", m_prior=(0.1, 0.001, 0.001, 0.9),
                   reason={EXACT: "same city", DISAGREE: "different city"}),
    ]


def _link_companies(companies: pl.DataFrame, vectors: np.ndarray | None):
    frame = _company_frame(companies)
    comparators = company_comparators()
    block_keys = [
        pl.col("root"),
        pl.col("root_key"),
        pl.col("domain_stem"),
        pl.col("root").str.slice(0, 4),
        pl.col("root").str.slice(-4),
    ]
    sorted_keys = [pl.col("root"), pl.col("root").str.reverse()]
    result = link_records(frame, comparators, block_keys, sorted_keys, vectors=vectors)
    return frame, comparators, result


def _pairs_frame(entity_type, frame, comparators, result: LinkResult, min_score: float) -> pl.DataFrame:
    pairs = result.pairs.filter(pl.col("score") >= min_score)
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
                "reasons": _reasons(r, weights, comparators),
            }
        )
    return pl.DataFrame(rows, schema=CANDIDATE_SCHEMA).sort("score", descending=True)


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


# A pair is shown as a likely duplicate from this posterior probability on (measured on the planted pairs of
# the generated export and on febrl: precision and recall both >= 0.97 there; see benchmarks/semantic_quality.py).
LIKELY_DUPLICATE = 0.9

# Vector blocking asks the vector engine for each record's nearest neighbours (exact up to 5k rows, an
# inverted file above); bounded so the in-memory copy stays small, the string passes cover bigger tables.
VECTOR_BLOCKING_MAX_ROWS = 2_000_000


def _aligned_vectors(ids: list[str], vectors, entity_type: str) -> np.ndarray | None:
    """Vectors in row order, from an array (already aligned) or an embeddings frame keyed by entity id."""
    if vectors is None or len(ids) > VECTOR_BLOCKING_MAX_ROWS:
        return None
    if isinstance(vectors, np.ndarray):
        return vectors if len(vectors) == len(ids) else None
    if isinstance(vectors, pl.DataFrame):
        frame = vectors
        if "entity_type" in frame.columns:
            frame = frame.filter(pl.col("entity_type") == entity_type)
        lookup = pl.DataFrame({"entity_id": ids}).join(frame.select("entity_id", "vector"), on="entity_id", how="left")
        if lookup.get_column("vector").null_count():
            return None
        return np.stack(lookup.get_column("vector").to_numpy()).astype(np.float32)
    if isinstance(vectors, dict):
        return _aligned_vectors(ids, vectors.get(entity_type), entity_type)
    return None


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
    if contacts is not None and len(contacts) > 1:
        vec = _aligned_vectors(contacts.get_column("contact_id").to_list(), vectors, "contact")
        frame, comparators, result = _link_contacts(contacts, companies, vec)
        parts.append(_pairs_frame("contact", frame, comparators, result, min_score))
    if companies is not None and len(companies) > 1:
        vec = _aligned_vectors(companies.get_column("company_id").to_list(), vectors, "company")
        frame, comparators, result = _link_companies(companies, vec)
        parts.append(_pairs_frame("company", frame, comparators, result, min_score))
    if not parts:
        return pl.DataFrame(schema=CANDIDATE_SCHEMA)
    return pl.concat(parts).sort(["entity_type", "score"], descending=[False, True])


# ------------------------------------------------------------------------------------------ clusters, merges
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


def _reference_counts(tables: dict[str, pl.DataFrame | None], column: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for name, frame in tables.items():
        if frame is None or frame.is_empty() or column not in frame.columns:
            continue
        counts = frame.group_by(column).len().drop_nulls(column)
        out[name] = dict(zip(counts.get_column(column).to_list(), counts.get_column("len").to_list()))
    return out


def merge_proposals(
    candidates: pl.DataFrame,
    contacts: pl.DataFrame,
    companies: pl.DataFrame,
    deals: pl.DataFrame | None = None,
    activities: pl.DataFrame | None = None,
    min_score: float = LIKELY_DUPLICATE,
) -> pl.DataFrame:
    """One proposal per duplicate cluster: the surviving record and what moves to it. Never applied here.

    The survivor is the record with the most filled fields, then the most linked deals and activities, then
    the oldest. ``moves`` says, per merged record, how many deals / activities (and, for companies,
    contacts) would be re-pointed to the survivor.
    """
    groups = clusters(candidates, min_score)
    schema = {
        "cluster_id": pl.String, "entity_type": pl.String, "survivor_id": pl.String,
        "merged_ids": pl.List(pl.String), "moves": pl.String, "min_score": pl.Float64, "status": pl.String,
    }
    if groups.is_empty():
        return pl.DataFrame(schema=schema)
    sources = {"contact": (contacts, "contact_id"), "company": (companies, "company_id")}
    references = {
        "contact": _reference_counts({"deals": deals, "activities": activities}, "contact_id"),
        "company": _reference_counts({"contacts": contacts, "deals": deals, "activities": activities}, "company_id"),
    }
    scores = {}
    for r in candidates.iter_rows(named=True):
        scores[(r["entity_type"], r["id_a"], r["id_b"])] = r["score"]
    rows = []
    for (cluster_id, entity_type), members in groups.group_by(["cluster_id", "entity_type"], maintain_order=True):
        ids = members.get_column("entity_id").to_list()
        source, id_column = sources[entity_type]
        records = {r[id_column]: r for r in source.filter(pl.col(id_column).is_in(ids)).iter_rows(named=True)}
        refs = references[entity_type]

        def rank(i):
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
            moves.append(f"{i} -> {survivor}: " + (", ".join(parts) if parts else "nothing linked") + " re-pointed")
        pair_scores = [s for (t, a, b), s in scores.items() if t == entity_type and a in ids and b in ids]
        rows.append(
            {
                "cluster_id": cluster_id,
                "entity_type": entity_type,
                "survivor_id": survivor,
                "merged_ids": merged,
                "moves": "; ".join(moves),
                "min_score": float(min(pair_scores)) if pair_scores else None,
                "status": "proposed",
            }
        )
    return pl.DataFrame(rows, schema=schema)
