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
    "robert": "bob bobby rob robbie bert",
    "william": "bill billy will willy liam",
    "katherine": "kate katie kathy kat",
    "catherine": "cathy cat cate",
    "elizabeth": "liz lizzie beth betty eliza lisa",
    "james": "jim jimmy jamie",
    "michael": "mike mikey mick",
    "jennifer": "jen jenny jenn",
    "christopher": "chris kit",
    "christina": "tina",
    "daniel": "dan danny",
    "margaret": "maggie meg peggy marge",
    "richard": "rick ricky dick rich richie",
    "joseph": "joe joey",
    "thomas": "tom tommy",
    "alexander": "alex al xander sasha",
    "alexandra": "alexa sandra",
    "samantha": "sam sammy",
    "samuel": "sammie",
    "jonathan": "jon jonny",
    "john": "jack johnny",
    "nicholas": "nick nicky",
    "patricia": "pat patty trish",
    "patrick": "paddy",
    "benjamin": "ben benny benji",
    "matthew": "matt matty",
    "anthony": "tony",
    "steven": "steve stevie",
    "stephen": "steph",
    "rebecca": "becky becca",
    "victoria": "vicky tori",
    "andrew": "andy drew",
    "edward": "ed eddie ted ned",
    "susan": "sue susie suzy",
    "valentina": "vale vali",
    "natalia": "nata natasha talia",
    "david": "dave davy",
    "gregory": "greg",
    "jeffrey": "jeff",
    "joshua": "josh",
    "lawrence": "larry",
    "kenneth": "ken kenny",
    "timothy": "tim timmy",
    "frederick": "fred freddie",
    "charles": "charlie chuck chas",
    "henry": "hank harry",
    "abigail": "abby abbie",
    "amanda": "mandy",
    "nathan": "nate",
    "nathaniel": "nat",
    "zachary": "zach zack",
    "ronald": "ron ronnie",
    "donald": "don donnie",
    "jessica": "jess jessie",
    "joanna": "jo",
    "theodore": "theo",
    "maximilian": "max",
    "gabriel": "gabe",
    "raymond": "ray",
    "francis": "frank",
    "isabella": "bella izzy",
    "olivia": "liv",
    "deborah": "deb debbie",
    "philip": "phil",
    "vincent": "vince",
    "douglas": "doug",
    "leonard": "leo len",
    "walter": "walt",
}
NICKNAMES = {nick: name for name, nicks in _NICKNAME_GROUPS.items() for nick in nicks.split()}


# Words that never identify a record ("the", "and", "of" ...): scikit-learn's maintained English stop-word
# list. They are dropped from name tokens, never treated as a legal suffix ("The Grill" is not "Grill Inc").
def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    # the list also holds content words that name businesses ("Fire Systems", "Mill Valley", "Top Notch")
    names = {
        "bill",
        "fire",
        "system",
        "interest",
        "amount",
        "computer",
        "mill",
        "front",
        "top",
        "back",
        "side",
        "part",
        "name",
        "full",
        "found",
        "thick",
        "thin",
        "detail",
        "move",
        "call",
        "con",
        "de",
        "empty",
        "fill",
        "find",
        "give",
        "show",
        "well",
        "first",
        "last",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "fifteen",
        "twenty",
        "forty",
        "fifty",
        "sixty",
        "hundred",
        "bottom",
        "east",
        "west",
        "cry",
        "serious",
        "describe",
        "made",
        "put",
        "keep",
        "take",
        "get",
        "go",
        "see",
    }
    return frozenset(ENGLISH_STOP_WORDS) - names


STOP_WORDS = _stop_words()
PARENT_WORDS = {"group", "holding", "holdings", "international", "global"}


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
    """The distinguishing part of a company name: legal suffixes dropped by cleanco's maintained list of
    company types per country ("Acme Corp." / "Globex GmbH"), then stop words ("the", "and")."""
    if not name:
        return ""
    from cleanco import basename

    base = basename(str(name)) or str(name)
    # "Group" / "Holdings" stay: "Acme Holdings" is usually the parent of "Acme", a different record
    kept = [w for w in fold(name).split() if w in PARENT_WORDS and w not in fold(base).split()]
    words = [w for w in fold(base).split() + kept if w not in STOP_WORDS]
    return " ".join(words) or fold(base)


def phone_digits(phone: str | None) -> str:
    digits = re.sub(r"\D", "", phone or "")
    return digits[-9:] if len(digits) >= 7 else ""


def e164(phone: str | None, region: str | None = None) -> str:
    """A phone number in E.164 ("+13104560488") by Google's libphonenumber rules; numbers without a country
    code are read in ``region`` (ISO code or country name, default US). Unparseable: its last 9 digits."""
    if not phone:
        return ""
    import phonenumbers

    text = str(phone).split(";ext=")[0]
    try:
        number = phonenumbers.parse(text, _region_code(region))
        if phonenumbers.is_possible_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        pass
    return phone_digits(text)


# Country names a CRM writes most, for reading national phone numbers; anything else is read as US.
_REGIONS = {
    "united states": "US",
    "usa": "US",
    "us": "US",
    "canada": "CA",
    "united kingdom": "GB",
    "uk": "GB",
    "england": "GB",
    "germany": "DE",
    "deutschland": "DE",
    "france": "FR",
    "spain": "ES",
    "italy": "IT",
    "netherlands": "NL",
    "belgium": "BE",
    "switzerland": "CH",
    "austria": "AT",
    "sweden": "SE",
    "norway": "NO",
    "denmark": "DK",
    "finland": "FI",
    "ireland": "IE",
    "portugal": "PT",
    "poland": "PL",
    "australia": "AU",
    "new zealand": "NZ",
    "japan": "JP",
    "india": "IN",
    "brazil": "BR",
    "mexico": "MX",
    "singapore": "SG",
    "south africa": "ZA",
    "china": "CN",
    "south korea": "KR",
    "israel": "IL",
    "united arab emirates": "AE",
}


def _region_code(region: str | None) -> str:
    if region and len(str(region).strip()) == 2:
        return str(region).strip().upper()
    return _REGIONS.get(fold(region), "US")


_ADDRESS_WORDS = {
    "st": "street",
    "str": "street",
    "rd": "road",
    "ave": "avenue",
    "av": "avenue",
    "blvd": "boulevard",
    "dr": "drive",
    "ln": "lane",
    "ct": "court",
    "pl": "place",
    "sq": "square",
    "hwy": "highway",
    "pkwy": "parkway",
    "cir": "circuit",
    "cres": "crescent",
    "tce": "terrace",
    "n": "north",
    "s": "south",
    "e": "east",
    "w": "west",
    "ste": "suite",
    "fl": "floor",
    "apt": "apartment",
}


def address_tokens(address: str | None) -> list[str]:
    """Street address words with the usual abbreviations spelled out ("5th St." -> ["5th", "street"])."""
    return [_ADDRESS_WORDS.get(w, w) for w in fold(address).split() if w not in ("and",)]


def name_tokens(text: str | None) -> list[str]:
    return [w for w in fold(text).split() if w not in STOP_WORDS]


def code_tokens(text: str | None) -> list[str]:
    """Identifier-like tokens (model numbers, ids): letters and digits mixed, 4+ characters, separators dropped
    ("KDL-46V3000" -> "kdl46v3000")."""
    raw = re.findall(r"[A-Za-z0-9][A-Za-z0-9\-/.]{2,}[A-Za-z0-9]", str(text or ""))
    out = []
    for token in raw:
        token = re.sub(r"[\-/.]", "", token).lower()
        if len(token) >= 4 and re.search(r"\d", token) and re.search(r"[a-z]", token):
            out.append(token)
    return out


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


def _levels_from_similarity(
    a: list[str], b: list[str], very: float = 0.94, similar: float = 0.85
) -> np.ndarray:
    sim = _jw(a, b)
    out = np.where(
        sim >= 1.0 - 1e-9,
        EXACT,
        np.where(sim >= very, VERY_SIMILAR, np.where(sim >= similar, SIMILAR, DISAGREE)),
    )
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
    frame = pl.DataFrame({"t": keys, "row": np.arange(len(keys), dtype=np.int64)}).filter(
        pl.col("t").is_not_null() & (pl.col("t") != "")
    )
    return _pairs_from_key_frame(frame, max_block)


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


def _level_frequencies(
    levels: np.ndarray,
    weights: np.ndarray | None = None,
    prior: np.ndarray | None = None,
    prior_pairs: float = PRIOR_PAIRS,
) -> np.ndarray:
    n_fields = levels.shape[1]
    out = np.zeros((n_fields, LEVELS))
    w = np.ones(len(levels)) if weights is None else weights
    prior = np.broadcast_to(DEFAULT_M if prior is None else prior, (n_fields, LEVELS))
    for f in range(n_fields):
        seen = levels[:, f] >= 0
        out[f] = (
            np.bincount(levels[seen, f], weights=w[seen], minlength=LEVELS)[:LEVELS]
            + prior[f] * prior_pairs
            + 1e-3
        )
        out[f] /= out[f].sum()
    return out


def fit_match_model(
    pair_levels: np.ndarray,
    random_levels: np.ndarray,
    fields: list[str],
    max_iter: int = 100,
    tol: float = 1e-6,
    m_prior: np.ndarray | None = None,
    learn_m: bool = True,
) -> MatchModel:
    """EM for m and the prior on the candidate pairs; u is fixed from random pairs (nearly all unrelated).

    ``learn_m=False`` keeps m at its prior and learns only the share of duplicates: the safer choice when
    there are few, correlated fields (names, e-mail and company move together), where a free EM can settle
    on "same family name" or "same company" as its second class instead of "same person".
    """
    u = _level_frequencies(random_levels, prior=DEFAULT_U)
    m_prior = (
        np.tile(DEFAULT_M, (len(fields), 1)) if m_prior is None else np.asarray(m_prior, dtype=np.float64)
    )
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
    pair_filter=None,
    random_source: np.ndarray | None = None,
) -> LinkResult:
    """Score every candidate pair of ``frame``'s rows; ``score`` is P(duplicate | comparison vector).

    ``pair_filter(pairs) -> pairs`` drops candidates (two-source linking keeps cross-source pairs only);
    ``random_source``: per-row source labels, so the "unrelated pair" sample is drawn across sources too.
    """
    pairs = candidate_pairs(frame, block_keys, sorted_keys, vectors, max_block=max_block, window=window)
    if pair_filter is not None:
        pairs = pair_filter(pairs)
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
    if random_source is not None:
        random_idx = random_idx[random_source[random_idx[:, 0]] != random_source[random_idx[:, 1]]]
    fields = [c.name for c in comparators]
    pair_levels = levels_for(pairs)
    m_prior = np.array(
        [
            np.asarray(c.m_prior, dtype=np.float64) / sum(c.m_prior) if c.m_prior else DEFAULT_M
            for c in comparators
        ]
    )
    model = fit_match_model(pair_levels, levels_for(random_idx), fields, m_prior=m_prior, learn_m=learn_m)
    log_odds = model.log_odds(pair_levels) if len(pairs) else np.zeros(0)
    result = pl.DataFrame(
        {
            "i": pairs[:, 0] if len(pairs) else np.zeros(0, np.int64),
            "j": pairs[:, 1] if len(pairs) else np.zeros(0, np.int64),
            "score": 1.0 / (1.0 + np.exp(-np.clip(log_odds, -50, 50))),
            "log_odds": log_odds,
        }
        | {
            f"level_{f}": pair_levels[:, k] if len(pairs) else np.zeros(0, np.int64)
            for k, f in enumerate(fields)
        }
    )
    return LinkResult(result, model, len(pairs))


def _reasons(levels_row: dict, weights: np.ndarray, comparators: list[Comparator], top: int = 6) -> list[str]:
    """Every compared field's contribution (its log-likelihood weight), strongest first."""
    scored = []
    for k, comp in enumerate(comparators):
        level = levels_row[f"level_{comp.name}"]
        if level < 0:
            continue
        text = (
            comp.reason.get(level)
            or f"{comp.name.replace('_', ' ')} "
            + (
                {
                    EXACT: "identical",
                    VERY_SIMILAR: "nearly identical",
                    SIMILAR: "similar",
                    DISAGREE: "differs",
                }[level]
            )
        )
        scored.append((weights[k, level], text))
    scored.sort(key=lambda x: -abs(x[0]))
    return [f"{t} ({w:+.1f})" for w, t in scored[:top]]


# ------------------------------------------------------------------------------------------ CRM entities
def _contact_frame(contacts: pl.DataFrame, companies: pl.DataFrame | None) -> pl.DataFrame:
    company_names = {}
    if companies is not None and not companies.is_empty():
        company_names = dict(
            zip(companies.get_column("company_id").to_list(), companies.get_column("name").to_list())
        )
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
    return pl.DataFrame(
        rows,
        schema={
            k: pl.String
            for k in (
                "id",
                "first",
                "last",
                "first_canonical",
                "name_key",
                "email",
                "email_local",
                "email_domain",
                "phone",
                "company",
                "company_name",
                "title",
            )
        },
    )


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
        Comparator(
            "first",
            m_prior=(0.002, 0.05, 0.2, 0.75),
            reason={
                EXACT: "same first name",
                VERY_SIMILAR: "first name matches (nickname or typo)",
                SIMILAR: "first name similar",
                DISAGREE: "different first name",
            },
        ),
        Comparator(
            "last",
            m_prior=(0.0005, 0.1, 0.15, 0.75),
            reason={
                EXACT: "same last name",
                VERY_SIMILAR: "last name nearly identical (typo)",
                SIMILAR: "last name similar",
                DISAGREE: "different last name",
            },
        ),
        # People use a second or personal address, so a different e-mail is weak evidence. The user name is
        # not compared on its own: it is built from the name, so it would count the name twice.
        Comparator(
            "email",
            kind="exact",
            m_prior=(0.4, 0.001, 0.001, 0.6),
            reason={EXACT: "same e-mail", DISAGREE: "different e-mail"},
        ),
        Comparator(
            "phone",
            kind="digits",
            m_prior=(0.2, 0.05, 0.05, 0.7),
            reason={
                EXACT: "same phone",
                VERY_SIMILAR: "phone differs by one digit",
                DISAGREE: "different phone",
            },
        ),
        # the same name at another company is usually another person (or a job change: a new record)
        Comparator(
            "company",
            function=_company_presence_levels,
            m_prior=(0.002, 0.001, 0.01, 0.99),
            reason={
                EXACT: "same company",
                SIMILAR: "only one record names a company",
                DISAGREE: "different company",
            },
        ),
        Comparator(
            "title",
            kind="string",
            m_prior=(0.2, 0.1, 0.1, 0.6),
            reason={EXACT: "same title", DISAGREE: "different title"},
        ),
    ]


def _link_contacts(contacts: pl.DataFrame, companies: pl.DataFrame | None, vectors: np.ndarray | None):
    frame = (
        _contact_frame(contacts, companies).with_row_index("row").with_columns(pl.col("row").cast(pl.Int64))
    )
    base = contact_comparators()
    comparators = list(base)
    # first and last name are compared together (nicknames, swapped order), through the row index
    first_last = _PersonNames(frame)
    comparators[0] = Comparator(
        "row_first", function=first_last.first, reason=base[0].reason, m_prior=base[0].m_prior
    )
    comparators[1] = Comparator(
        "row_last", function=first_last.last, reason=base[1].reason, m_prior=base[1].m_prior
    )
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
                [self.firsts[i] for i in a_rows],
                [self.firsts[i] for i in b_rows],
                [self.lasts[i] for i in a_rows],
                [self.lasts[i] for i in b_rows],
            )
            self._key = key
        return self._levels

    def first(self, a_rows, b_rows):
        return self._compute(a_rows, b_rows)[0]

    def last(self, a_rows, b_rows):
        return self._compute(a_rows, b_rows)[1]


# ------------------------------------------------------------------------------------------ identifying fields
class TokenIdf:
    """Inverse document frequencies of the tokens of one field over the table: a rare shared word ("Zuni")
    says more than a common one ("grill"), so containment and overlap are scored by what is shared."""

    def __init__(self, documents: list[str]):
        from collections import Counter

        counts = Counter(t for d in documents for t in set(d.split()))
        n = max(1, len(documents))
        self.n = n
        self.idf = {t: float(np.log((n + 1) / (c + 0.5))) for t, c in counts.items()}
        self.unseen = float(np.log((n + 1) / 0.5))

    def contained_rare(self, a: str, b: str, share: float = 0.6) -> bool:
        """One token set contains the other and the contained words are rare enough to identify: their
        IDF sum reaches ``share`` of log(n) ("Noodle House" in "Noodle House Restaurant" yes, "Grill" in
        "Joe's Grill" no)."""
        x, y = set(a.split()), set(b.split())
        small = x if len(x) <= len(y) else y
        if not small or not (x <= y or y <= x):
            return False
        return sum(self.idf.get(t, self.unseen) for t in small) >= share * float(np.log(self.n + 1))

    def cosine(self, a: str, b: str) -> float:
        """IDF-weighted cosine of the two token sets (1.0 = same words, 0.0 = none shared)."""
        x, y = set(a.split()), set(b.split())
        if not x or not y:
            return 0.0
        w = lambda t: self.idf.get(t, self.unseen) ** 2  # noqa: E731 - a local weight
        shared = sum(w(t) for t in x & y)
        return shared / float(np.sqrt(sum(w(t) for t in x) * sum(w(t) for t in y)))


def _idf_levels(idf: TokenIdf, very: float, similar: float, typo: bool):
    """Levels from IDF-weighted token overlap: same / very similar (or one typo) / similar / different."""
    from rapidfuzz.distance import OSA

    def levels(a: list[str], b: list[str]) -> np.ndarray:
        out = np.empty(len(a), dtype=np.int64)
        for k, (x, y) in enumerate(zip(a, b)):
            if not x or not y:
                out[k] = MISSING
            elif x == y:
                out[k] = EXACT
            else:
                cos = idf.cosine(x, y)
                # for names, a word more or less is containment (below), not "very similar"
                same_shape = not typo or len(x.split()) == len(y.split())
                typing_error = typo and OSA.distance(x, y) <= (1 if min(len(x), len(y)) < 8 else 2)
                if (cos >= very and same_shape) or typing_error:
                    out[k] = VERY_SIMILAR
                elif (typo and idf.contained_rare(x, y)) or (not typo and cos >= similar):
                    out[k] = SIMILAR  # names: one contains the other, and what it contains is rare enough
                else:
                    out[k] = DISAGREE
        return out

    return levels


def _phone_levels(a: list[str], b: list[str]) -> np.ndarray:
    from rapidfuzz.distance import OSA

    out = []
    for x, y in zip(a, b):
        if not x or not y:
            out.append(MISSING)
        elif x == y:
            out.append(EXACT)
        elif len(x) == len(y) and OSA.distance(x, y) <= 1:
            out.append(VERY_SIMILAR)  # one digit mistyped or two swapped
        else:
            out.append(DISAGREE)
    return np.asarray(out, dtype=np.int64)


def _address_levels(idf: TokenIdf):
    words = _idf_levels(idf, 0.75, 0.45, typo=True)

    def levels(a: list[str], b: list[str]) -> np.ndarray:
        out = words(a, b)
        for k, (x, y) in enumerate(zip(a, b)):
            numbers_x = {t for t in x.split() if any(c.isdigit() for c in t)}
            numbers_y = {t for t in y.split() if any(c.isdigit() for c in t)}
            if out[k] > DISAGREE and numbers_x and numbers_y and not numbers_x & numbers_y:
                out[k] = DISAGREE  # same street, another house number: another place
        return out

    return levels


def _number(value) -> float | None:
    try:
        return float(re.sub(r"[^\d.\-eE]", "", str(value))) if value not in (None, "") else None
    except ValueError:
        return None


def _number_levels(a: list[str], b: list[str]) -> np.ndarray:
    """Numbers with a relative tolerance: equal / within 5% / within 20% / further apart."""
    out = []
    for x, y in zip(a, b):
        x, y = _number(x), _number(y)
        if x is None or y is None:
            out.append(MISSING)
            continue
        gap = abs(x - y) / max(abs(x), abs(y), 1e-9)
        out.append(EXACT if x == y else VERY_SIMILAR if gap <= 0.05 else SIMILAR if gap <= 0.2 else DISAGREE)
    return np.asarray(out, dtype=np.int64)


def _code_levels(a: list[str], b: list[str]) -> np.ndarray:
    """Identifier-like tokens (model numbers): one shared / both have some, none shared / missing."""
    out = []
    for x, y in zip(a, b):
        if not x or not y:
            out.append(MISSING)
        else:
            out.append(EXACT if set(x.split()) & set(y.split()) else DISAGREE)
    return np.asarray(out, dtype=np.int64)


def _url_key(value: str | None) -> str:
    text = (value or "").strip().lower()
    text = re.sub(r"^[a-z]+://", "", text).removeprefix("www.")
    return text.rstrip("/")


# Field kinds: how a column is normalised and compared, and the prior P(level | duplicate) (DISAGREE..EXACT).
FIELD_KINDS = {
    "company_name": ("same name (legal suffix and case ignored)", (0.01, 0.3, 0.04, 0.65)),
    "name": ("same name", (0.05, 0.2, 0.2, 0.55)),
    "text": ("same text", (0.2, 0.3, 0.3, 0.2)),
    "phone": ("same phone", (0.15, 0.03, 0.001, 0.82)),
    "address": ("same address", (0.1, 0.25, 0.15, 0.5)),
    "postcode": ("same postcode", (0.1, 0.1, 0.05, 0.75)),
    "city": ("same city", (0.1, 0.1, 0.05, 0.75)),
    "number": ("same number", (0.25, 0.3, 0.15, 0.3)),
    "code": ("same identifier code", (0.2, 0.001, 0.001, 0.8)),
    "chars": ("same spelling", (0.05, 0.25, 0.3, 0.4)),
    "company_chars": ("same spelling", (0.05, 0.25, 0.3, 0.4)),  # chars of the name without legal suffix
    "identifier": ("same identifier", (0.1, 0.001, 0.001, 0.9)),
    "exact": ("same value", (0.1, 0.001, 0.001, 0.9)),
    "digits": ("same number", (0.1, 0.1, 0.05, 0.75)),
}


def identifier_kind(column: str, values: list) -> str | None:
    """The field kind of a custom column whose name or values look like an identifier, else None.

    By name: phone / fax / mobile -> phone; address / street -> address; postcode / zip -> postcode;
    city / town / suburb -> city; website / url / domain / linkedin -> identifier (compared as a URL);
    tax id, VAT, EIN, DUNS, registration, licence, "... id" / "... number" -> identifier; date of birth ->
    digits; manufacturer / brand -> name; authors -> text. By values (when the name says nothing): mostly numbers -> number.
    """
    name = column.lower().removeprefix("cf_")
    if re.search(r"phone|fax|mobile|\btel\b|telephone", name):
        return "phone"
    if re.search(r"address|street", name):
        return "address"
    if re.search(r"post_?code|postal|\bzip", name):
        return "postcode"
    if re.search(r"\b(city|town|suburb|locality)\b", name):
        return "city"
    if re.search(r"birth|dob", name):
        return "digits"
    if re.search(r"manufacturer|brand|maker|vendor", name):
        return "name"
    if re.search(r"author|founder", name):
        return "text"
    if re.search(r"website|\burl\b|domain|linkedin|twitter", name):
        return "identifier"
    if re.search(
        r"\b(tax|vat|ein|duns|siren|siret|registration|licen[cs]e|iban|ssn)\b|(_|\b)(id|number|no)$", name
    ):
        return "identifier"
    present = [v for v in values if v not in (None, "")]
    if (
        re.search(r"\byear\b", name)
        or present
        and all(re.fullmatch(r"(18|19|20)\d\d", str(v)) for v in present)
    ):
        return "exact"  # a year: 1999 and 2001 are different, however close as numbers
    if present and sum(
        _number(v) is not None and not re.search(r"[a-zA-Z]", str(v)) for v in present
    ) >= 0.9 * len(present):
        return "number"
    return None


def _normalise_field(kind: str, values: list, regions: list | None = None) -> list[str]:
    if kind in ("company_name", "company_chars"):
        return [company_root(v) for v in values]
    if kind in ("name", "text"):
        return [" ".join(name_tokens(v)) for v in values]
    if kind == "phone":
        regions = regions or [None] * len(values)
        return [e164(v, r) for v, r in zip(values, regions)]
    if kind == "address":
        return [" ".join(address_tokens(v)) for v in values]
    if kind in ("postcode", "digits"):
        return [re.sub(r"[^0-9a-z]", "", fold(v)) for v in values]
    if kind == "city":
        return [fold(v) for v in values]
    if kind == "code":
        return [" ".join(code_tokens(v)) for v in values]
    if kind == "identifier":
        return [_url_key(v) if "." in str(v or "") else re.sub(r"[^0-9a-z]", "", fold(v)) for v in values]
    if kind == "number":
        return [str(_number(v)) if _number(v) is not None else "" for v in values]
    return [fold(v) for v in values]


class CharGrams:
    """Character 3-5-gram TF-IDF vectors of one field: spelling similarity that survives typos, run-together
    words and reordering ("EZXS88W Linksys switch" / "Linksys EtherFast EZXS88W"); also a blocking pass."""

    def __init__(self, values: list[str]):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.empty = np.array([not v for v in values])
        texts = [v or "" for v in values]
        try:
            self.matrix = (
                TfidfVectorizer(
                    analyzer="char_wb", ngram_range=(3, 5), min_df=1, sublinear_tf=True, dtype=np.float32
                )
                .fit_transform(texts)
                .tocsr()
            )
        except ValueError:  # nothing but empty values
            self.matrix = None

    def similarity(self, a_rows: np.ndarray, b_rows: np.ndarray) -> np.ndarray:
        if self.matrix is None or len(a_rows) == 0:
            return np.zeros(len(a_rows))
        return np.asarray(self.matrix[a_rows].multiply(self.matrix[b_rows]).sum(axis=1)).reshape(-1)

    def levels(self, a: list[str], b: list[str]) -> np.ndarray:
        a_rows, b_rows = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
        sim = self.similarity(a_rows, b_rows)
        out = np.where(
            sim >= 0.95, EXACT, np.where(sim >= 0.7, VERY_SIMILAR, np.where(sim >= 0.45, SIMILAR, DISAGREE))
        )
        out[self.empty[a_rows] | self.empty[b_rows]] = MISSING
        return out.astype(np.int64)

    def neighbours(self, k: int, labels: np.ndarray | None = None, chunk: int = 1024) -> np.ndarray:
        """Each row with its ``k`` most similar rows (of the other source when ``labels`` are given)."""
        if self.matrix is None:
            return np.zeros((0, 2), dtype=np.int64)
        n = self.matrix.shape[0]
        out = []
        for start in range(0, n, chunk):
            rows = np.arange(start, min(n, start + chunk))
            sims = (self.matrix[rows] @ self.matrix.T).toarray()
            sims[np.arange(len(rows)), rows] = -1
            if labels is not None:
                sims[labels[rows][:, None] == labels[None, :]] = -1
            sims[:, self.empty] = -1
            top = np.argpartition(-sims, min(k, n - 1) - 1, axis=1)[:, :k]
            keep = np.take_along_axis(sims, top, axis=1) > 0.1
            out.append(
                np.stack(
                    [np.repeat(rows, top.shape[1])[keep.reshape(-1)], top.reshape(-1)[keep.reshape(-1)]],
                    axis=1,
                )
            )
        return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.int64)


# Character n-gram blocking compares every record with every other (sparse products): up to this size.
CHAR_BLOCKING_MAX_ROWS = 50_000


def _field_comparator(column: str, kind: str, normalised: list[str], label: str | None = None) -> Comparator:
    same, m_prior = FIELD_KINDS[kind]
    label = label or column.removeprefix("cf_").replace("_", " ")
    reason = {
        EXACT: f"same {label}",
        VERY_SIMILAR: f"{label} nearly identical",
        SIMILAR: f"{label} similar",
        DISAGREE: f"different {label}",
    }
    if kind in ("company_name", "name"):
        function = _idf_levels(TokenIdf(normalised), 0.9, 0.6, typo=True)
        reason[SIMILAR] = f"{label} shares its rarer words"
    elif kind == "text":
        function = _idf_levels(TokenIdf(normalised), 0.8, 0.5, typo=False)
    elif kind == "address":
        function = _address_levels(TokenIdf(normalised))
    elif kind == "phone":
        function = _phone_levels
        reason[VERY_SIMILAR] = f"{label} differs by one digit"
    elif kind == "number":
        function = _number_levels
        reason[VERY_SIMILAR], reason[SIMILAR] = f"{label} within 5%", f"{label} within 20%"
    elif kind == "code":
        function = _code_levels
        reason[EXACT] = f"shares an identifier code ({label})"
    elif kind in ("chars", "company_chars"):
        function = CharGrams(normalised).levels
    elif kind in ("postcode", "digits"):
        return Comparator(column, kind="digits", m_prior=m_prior, reason=reason)
    elif kind == "city":
        return Comparator(column, kind="string", m_prior=m_prior, reason=reason)
    else:
        return Comparator(column, kind="exact", m_prior=m_prior, reason=reason)
    return Comparator(column, function=function, m_prior=m_prior, reason=reason)


def _token_block_pairs(values: list[str], max_block: int) -> np.ndarray:
    """Pairs of rows sharing a token that at most ``max_block`` rows have (rare words block, common don't)."""
    frame = pl.DataFrame({"t": [v.split() for v in values], "row": np.arange(len(values), dtype=np.int64)})
    exploded = frame.explode("t").drop_nulls("t").unique(["t", "row"])
    return _pairs_from_key_frame(exploded, max_block)


def _pairs_from_key_frame(frame: pl.DataFrame, max_block: int) -> np.ndarray:
    groups = (
        frame.group_by("t")
        .agg(pl.col("row"))
        .filter((pl.col("row").list.len() > 1) & (pl.col("row").list.len() <= max_block))
    )
    out = []
    for rows in groups.get_column("row").to_list():
        rows = np.asarray(rows)
        i, j = np.triu_indices(len(rows), 1)
        out.append(np.stack([rows[i], rows[j]], axis=1))
    return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.int64)


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
) -> FieldLink:
    """Score candidate duplicate pairs of ``table``'s rows on every identifying field.

    ``fields``: column -> kind (see ``FIELD_KINDS``: company_name, name, text, phone, address, postcode,
    city, number, code, identifier, exact, digits), or key -> (column, kind) to compare one column twice
    (a product name as words and by the model numbers in it). Each field is normalised (E.164 phones, address words,
    legal suffixes dropped), compared by its kind and weighted by a Fellegi-Sunter model whose m
    probabilities are learned by EM on this table. ``source``: a column naming each row's source; then only
    pairs across sources are candidates (linking two exports). Blocking: rare shared words of name / text /
    address / code fields, equal phones / identifiers / postcodes, sorted names, and - with ``vectors`` -
    nearest neighbours from the vector engine.
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
        normalised[key] = _normalise_field(kind, values, regions if kind == "phone" else None)
    comparators = [_field_comparator(c, k, normalised[c]) for c, k in fields.items()]
    labels = table.get_column(source).to_numpy() if source else None
    extra_pairs = [np.zeros((0, 2), dtype=np.int64)]
    rows = [str(i) for i in range(len(table))]
    for key, kind in fields.items():
        if kind in (
            "chars",
            "company_chars",
        ):  # compared through the row index (the n-gram vectors live in the comparator)
            grams = next(c for c in comparators if c.name == key).function.__self__
            if len(table) <= CHAR_BLOCKING_MAX_ROWS:
                extra_pairs.append(grams.neighbours(5, labels))
            normalised[key] = rows
    frame = pl.DataFrame({c: pl.Series(v, dtype=pl.String) for c, v in normalised.items()}).with_columns(
        pl.all().fill_null("")
    )
    block_keys, sorted_keys = [], []
    for column, kind in fields.items():
        if kind in ("company_name", "name", "code", "address"):
            extra_pairs.append(_token_block_pairs(normalised[column], max_block))
        if kind in ("phone", "identifier", "company_name", "name"):
            block_keys.append(pl.col(column))
        if kind in ("company_name", "name"):
            sorted_keys += [pl.col(column), pl.col(column).str.reverse()]
        if kind == "postcode":
            names = [c for c, k in fields.items() if k in ("company_name", "name")]
            if names:
                block_keys.append(
                    pl.concat_str([pl.col(column), pl.col(names[0]).str.slice(0, 2)], separator="|")
                )
    token_pairs = np.concatenate(extra_pairs)

    def keep(pairs: np.ndarray) -> np.ndarray:
        pairs = np.concatenate([pairs, np.sort(token_pairs, axis=1)]) if len(token_pairs) else pairs
        pairs = pairs[pairs[:, 0] != pairs[:, 1]]
        pairs = np.unique(pairs, axis=0) if len(pairs) else pairs
        if labels is not None and len(pairs):
            pairs = pairs[labels[pairs[:, 0]] != labels[pairs[:, 1]]]
        return pairs

    result = link_records(
        frame,
        comparators,
        block_keys,
        sorted_keys,
        vectors=vectors,
        max_block=max_block,
        learn_m=learn_m,
        pair_filter=keep,
        random_source=labels,
    )
    return FieldLink(frame, comparators, result)


# ------------------------------------------------------------------------------------------ clusters without chains
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
    """
    parent = np.arange(n)
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    score_of = {(int(a), int(b)): float(s) for (a, b), s in zip(pairs.tolist(), scores.tolist())}

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


# ------------------------------------------------------------------------------------------ companies
COMPANY_FIELDS = {
    "name": "company_name",
    "domain": "identifier",
    "phone": "phone",
    "address": "address",
    "city": "city",
    "postcode": "postcode",
    "country": "exact",
    "industry": "exact",
}


def company_fields(companies: pl.DataFrame) -> dict[str, str]:
    """The identifying fields of a companies table: the canonical ones it has, then custom ``cf_*`` columns
    typed by ``identifier_kind`` (phone, address, tax id, website ... found by name or by their values)."""
    fields = {
        c: k
        for c, k in COMPANY_FIELDS.items()
        if c in companies.columns and companies.get_column(c).null_count() < len(companies)
    }
    if "name" in fields:
        fields["name_codes"] = ("name", "code")  # model numbers / ids inside names ("KDL-46V3000")
    return fields | _typed_custom_fields(companies)


# Below this many records the m probabilities stay at their priors (EM on a few hundred candidate pairs
# settles on "same industry, similar name" as its duplicate class: measured on the generated export).
EM_MIN_ROWS = 2_000


CONTACT_FIELDS = {"first_name": "name", "last_name": "name", "email": "identifier", "phone": "phone"}


def _typed_custom_fields(table: pl.DataFrame) -> dict[str, str]:
    fields = {}
    for column in table.columns:
        if column.startswith("cf_"):
            kind = identifier_kind(column, table.get_column(column).cast(pl.String).head(500).to_list())
            if kind:
                fields[column] = kind
    return fields


def contact_fields(contacts: pl.DataFrame) -> dict[str, str]:
    """The identifying fields of a contacts table: names, e-mail, phone, then typed custom fields."""
    fields = {
        c: k
        for c, k in CONTACT_FIELDS.items()
        if c in contacts.columns and contacts.get_column(c).null_count() < len(contacts)
    }
    return fields | _typed_custom_fields(contacts)


def link_sources(
    left: pl.DataFrame,
    right: pl.DataFrame,
    entity: str = "companies",
    min_score: float = 0.5,
    fields: dict | None = None,
) -> pl.DataFrame:
    """Records of two exports of the same entity that are the same (an import against what the CRM holds).

    Pairs only across the two tables; each kept pair is the best match of at least one of its records and
    lies inside a coherent cluster (no chains). Columns: id_left, id_right, score, reasons.
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
    region = "country" if "country" in both.columns else None
    link = link_fields(both, fields, source="_source", region_column=region)
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
    for r, (i, j) in zip(scored.filter(pl.Series(keep)).iter_rows(named=True), ij[keep].tolist()):
        a, b = (i, j) if sources[i] == "left" else (j, i)
        rows.append(
            {
                "id_left": ids[a],
                "id_right": ids[b],
                "score": float(r["score"]),
                "reasons": _reasons(r, weights, link.comparators),
            }
        )
    return pl.DataFrame(rows, schema=schema).sort("score", descending=True)


def _link_companies(companies: pl.DataFrame, vectors: np.ndarray | None):
    link = link_fields(
        companies,
        company_fields(companies),
        vectors=vectors,
        region_column="country",
        learn_m=len(companies) >= EM_MIN_ROWS,
    )
    frame = link.frame.with_columns(companies.get_column("company_id").alias("id"))
    return frame, link.comparators, link.result


def _pairs_frame(
    entity_type, frame, comparators, result: LinkResult, min_score: float, max_cluster: int = MAX_CLUSTER_SIZE
) -> pl.DataFrame:
    """The likely pairs, kept only inside coherent clusters (see ``coherent_clusters``): a pair whose
    records ended in different groups would chain them and is not proposed."""
    scored = result.pairs
    if len(scored):
        ij = scored.select("i", "j").to_numpy()
        inside = clustered_pairs(
            len(frame), ij, scored.get_column("score").to_numpy(), max(min_score, 0.5), max_cluster
        )
        scored = scored.filter(pl.Series(inside) | (pl.col("score") < max(min_score, 0.5)))
    pairs = scored.filter(pl.col("score") >= min_score)
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
        lookup = pl.DataFrame({"entity_id": ids}).join(
            frame.select("entity_id", "vector"), on="entity_id", how="left"
        )
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
    scores = {}
    for r in candidates.iter_rows(named=True):
        scores[(r["entity_type"], r["id_a"], r["id_b"])] = r["score"]
    rows = []
    for (cluster_id, entity_type), members in groups.group_by(
        ["cluster_id", "entity_type"], maintain_order=True
    ):
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
            moves.append(
                f"{i} -> {survivor}: " + (", ".join(parts) if parts else "nothing linked") + " re-pointed"
            )
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
