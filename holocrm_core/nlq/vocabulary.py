"""The words a question may use, learned from the staged tables: field values, names, owners, products.

Nothing here lists the sample data's industries or stages. The vocabulary reads every low-cardinality text
column of the staged tables (custom ``cf_`` attributes included) and indexes each value under its words; a
small general lexicon of business synonyms ("fintech" ~ financial services ~ finance, "telco" ~
telecommunications, "large" ~ the largest size band) is attached to whichever values the data actually has, so
a new export with other industries works without code changes. Typos fall back to fuzzy matching (rapidfuzz)
over the small value sets, and an optional embedder maps words no rule knows to the nearest value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from unidecode import unidecode

from holocrm_core.schema import CUSTOM_PREFIX

# (entity, column) pairs whose distinct values become vocabulary, in priority order for ambiguous words.
CATEGORY_FIELDS = [
    ("deals", "stage"),
    ("activities", "type"),
    ("companies", "industry"),
    ("companies", "size_band"),
    ("contacts", "seniority"),
    ("contacts", "lifecycle_status"),
    ("deals", "product"),
    ("companies", "region"),
    ("companies", "country"),
    ("activities", "direction"),
    ("deals", "currency"),
    ("companies", "city"),
]
OWNER_FIELDS = [("deals", "owner"), ("contacts", "owner"), ("activities", "owner")]
MAX_CATEGORY_VALUES = 300
DATE_FIELDS = {
    "contacts": ["created_at", "updated_at"],
    "companies": ["created_at"],
    "deals": ["created_at", "closed_at", "stage_changed_at"],
    "activities": ["occurred_at"],
}

# General business synonyms. A group attaches to a data value when the value is one of its members (or a
# close spelling of one); the other members then mean that value. Groups never mention a specific export.
SYNONYM_GROUPS: dict[str, list[set[str]]] = {
    "industry": [
        {
            "financial services",
            "finance",
            "financial",
            "fintech",
            "fin tech",
            "banking",
            "banks",
            "bank",
            "insurance",
            "financials",
        },
        {"technology", "tech", "information technology", "high tech", "hi tech"},
        {"software", "saas", "software as a service", "software companies"},
        {
            "healthcare",
            "health care",
            "health",
            "medical",
            "healthtech",
            "medtech",
            "hospitals",
            "pharma",
            "pharmaceuticals",
            "life sciences",
            "biotech",
        },
        {"telecommunications", "telecom", "telecoms", "telco", "telcos", "telecommunication"},
        {"retail", "ecommerce", "e commerce", "consumer goods", "stores", "shops"},
        {"manufacturing", "industrial", "industrials", "factories"},
        {"education", "edtech", "schools", "universities", "higher education"},
        {"entertainment", "media", "media and entertainment", "gaming", "games"},
        {"energy", "utilities", "oil and gas", "cleantech", "renewables"},
        {"real estate", "property", "proptech"},
        {"government", "public sector"},
        {"marketing", "advertising", "adtech", "martech", "agencies"},
        {"logistics", "transportation", "shipping", "supply chain"},
        {"professional services", "consulting", "consultancies", "services"},
        {"employment", "staffing", "recruiting", "recruitment", "human resources"},
        {"hospitality", "travel", "hotels"},
        {"nonprofit", "non profit", "ngo", "charity"},
        {"automotive", "cars", "auto"},
        {"agriculture", "agtech", "farming"},
    ],
    "seniority": [
        {
            "c level",
            "c suite",
            "executive",
            "executives",
            "execs",
            "exec",
            "cxo",
            "cxos",
            "chief",
            "chiefs",
            "c levels",
        },
        {"vp", "vps", "vice president", "vice presidents"},
        {"director", "directors", "head of"},
        {"manager", "managers"},
        {"individual", "individual contributor", "individual contributors", "ic", "ics", "individuals"},
    ],
    "lifecycle_status": [
        {"customer", "customers", "client", "clients", "converted"},
        {"qualified", "sql", "sqls", "mql", "mqls"},
        {"disqualified", "unqualified", "dq"},
    ],
    "stage": [
        {"prospecting", "prospect", "prospects", "prospecting stage"},
        {"qualification", "qualifying", "qualified", "engaging", "engaged", "discovery"},
        {"proposal", "proposal stage", "proposal sent", "quote", "quoted"},
        {"negotiation", "negotiating", "negotiations", "in negotiation", "contracting"},
        {"won", "closed won", "win", "wins", "winning"},
        {"lost", "closed lost", "losses", "lose", "losing"},
    ],
    "type": [
        {"email", "emails", "e mail", "e mails", "mail", "mails"},
        {"call", "calls", "phone call", "phone calls", "phone"},
        {"meeting", "meetings", "demo", "demos"},
        {"note", "notes"},
        {"proposal", "proposals"},
    ],
    "direction": [
        {"inbound", "incoming", "received"},
        {"outbound", "outgoing"},
    ],
    "region": [
        {"emea", "europe", "european", "eu"},
        {"north america", "americas", "na"},
        {"apac", "asia", "asia pacific", "asia-pacific", "asian"},
        {"latam", "latin america", "south america"},
    ],
    "country": [
        {"united states", "usa", "u s a", "america", "us"},
        {"united kingdom", "uk", "britain", "great britain", "england"},
        {"germany", "deutschland"},
    ],
    "currency": [
        {"usd", "dollars", "dollar", "us dollars"},
        {"eur", "euros", "euro"},
        {"gbp", "pounds", "sterling"},
    ],
}
# Version of the artifact's layout; a file of another version is rebuilt rather than misread.
ARTIFACT_FORMAT = 3  # bumped: owners by first or last name (issue 24)
# Words with one meaning, used to find a custom column by what its name means ("founded" ~ year_established).
MEANING_GROUPS: list[set[str]] = [
    {"founded", "established", "founding", "incorporated", "inception", "formed", "foundation", "est"},
    {"renewal", "renews", "renewed", "renew"},
    {"signed", "signature", "contracted"},
    {"born", "birth", "birthday"},
    {"launched", "launch"},
]
# Size bands are ordered by the data's employee counts; these words name a position, not a band's label.
SIZE_WORDS = {
    "largest": {
        "enterprise",
        "enterprises",
        "large",
        "large companies",
        "big",
        "big companies",
        "largest",
        "corporates",
        "corporate",
    },
    "smallest": {
        "small",
        "smb",
        "smbs",
        "sme",
        "smes",
        "small business",
        "small businesses",
        "startups",
        "startup",
        "smaller",
    },
    "middle": {
        "mid market",
        "midmarket",
        "mid size",
        "midsize",
        "mid sized",
        "medium",
        "medium sized",
        "mid",
        "middle market",
    },
}
# Words the grammar uses; a name or value that is only one of these is not indexed (a company called "Open").
COMMON_WORDS = set(
    ["a", "an", "the", "and", "or", "not", "no", "of", "in", "on", "at", "to", "for", "from", "by", "with", "without", "who", "whom", "which", "that", "what", "when", "where", "how", "many", "much", "is", "are", "was", "were", "be", "been", "being", "have", "has", "had", "do", "does", "did", "show", "me", "list", "find", "get", "give", "all", "any", "some", "my", "our", "their", "its", "this", "these", "those", "there", "here", "it", "them", "they", "we", "i", "you", "your", "deals", "deal", "contacts", "contact", "companies", "company", "accounts", "account", "activities", "activity", "leads", "lead", "people", "person", "open", "closed", "won", "lost", "new", "top", "first", "last", "next", "since", "before", "after", "between", "over", "under", "above", "below", "more", "less", "than", "most", "least", "per", "each", "every", "like", "similar", "hot", "warm", "cold", "stuck", "total", "number", "count", "sum", "average", "mean", "best", "biggest", "largest", "smallest", "oldest", "newest", "latest", "recent", "please"]
)  # fmt: skip
# Columns whose values are proper names: no plural forms are indexed for them.
PROPER_NAME_FIELDS = {"country", "city", "region", "currency", "owner"}
# Two- and three-letter codes that are English words in a question ("in", "it", "can", "per"): never codes.
_CODE_WORDS = set(
    ["am", "an", "as", "at", "be", "by", "do", "go", "he", "hi", "id", "if", "in", "is", "it", "me", "my", "no", "of", "on", "or", "so", "to", "up", "us", "we", "and", "are", "can", "col", "for", "gab", "had", "has", "her", "him", "his", "its", "let", "man", "may", "mar", "nor", "not", "now", "one", "our", "out", "per", "pol", "sat", "see", "she", "the", "tur", "was", "who", "why", "you"]
)  # fmt: skip
_LEGAL_SUFFIXES = {
    "inc",
    "ltd",
    "llc",
    "corp",
    "corporation",
    "co",
    "gmbh",
    "plc",
    "limited",
    "company",
    "ag",
    "sa",
    "bv",
    "group",
    "holdings",
    "lp",
    "llp",
}


def tokens(text: str) -> tuple[str, ...]:
    """Lower-case ASCII word tokens (diacritics folded: "Björn" -> bjorn): what phrases are indexed by."""
    text = str(text)
    if not text.isascii():
        text = unidecode(text)
    return tuple(re.findall(r"[a-z0-9]+", text.lower().replace("&", " and ")))


def phrase_of(text: str) -> str:
    return " ".join(tokens(text))


@dataclass(frozen=True)
class Sense:
    """One meaning of a phrase: a field value, a named record, or an owner."""

    kind: str  # "value" (entity.field == value), "company", "contact", "owner"
    entity: str
    field: str
    value: str  # the data value (or the record id for names)
    label: str  # what to show
    how: str = "exact"  # exact | synonym | fuzzy | embedding


@dataclass
class Vocabulary:
    categories: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    phrases: dict[tuple[str, ...], list[Sense]] = field(default_factory=dict)
    company_names: dict[str, str] = field(default_factory=dict)  # id -> name
    contact_names: dict[str, str] = field(default_factory=dict)  # id -> full name
    contact_index: dict[str, list[str]] = field(default_factory=dict)  # name phrase -> contact ids
    owners: list[str] = field(default_factory=list)
    size_bands: list[str] = field(default_factory=list)  # smallest -> largest by median employees
    open_stages: list[str] = field(default_factory=list)
    won_stages: list[str] = field(default_factory=list)
    lost_stages: list[str] = field(default_factory=list)
    data_start: datetime | None = None
    data_end: datetime | None = None
    custom_fields: dict[str, list[str]] = field(default_factory=dict)  # "entity.cf_x" -> values
    row_counts: dict[str, int] = field(default_factory=dict)
    column_words: set[str] = field(default_factory=set)  # words of the tables' column names ("lead source")
    numeric_columns: dict[tuple[str, ...], tuple[str, str, float]] = field(
        default_factory=dict
    )  # words -> (entity, column, max)
    _category_choices: list[str] = field(default_factory=list, repr=False)
    _name_choices: dict[str, list[tuple[str, str]]] = field(default_factory=dict, repr=False)
    date_columns: list[tuple[str, str]] = field(default_factory=list)  # custom date columns (entity, column)
    company_parents: dict[str, str] = field(default_factory=dict)  # company id -> parent company id
    parent_relation: tuple[str, bool] | None = None  # (column, holds a name rather than an id)
    _digit_phrases: list[str] | None = field(default=None, repr=False)
    _words: set[str] | None = field(default=None, repr=False)
    _close_choices: list[str] | None = field(default=None, repr=False)
    _fixer: object | None = field(default=None, repr=False)
    _embedder: Callable | None = field(default=None, repr=False)
    _embedded: tuple | None = field(default=None, repr=False)

    # ---- building -------------------------------------------------------------------------------------
    @classmethod
    def from_tables(cls, tables: dict[str, pl.DataFrame]) -> Vocabulary:
        vocab = cls()
        for entity, frame in tables.items():
            if isinstance(frame, pl.DataFrame):
                vocab.row_counts[entity] = frame.height
        for frame in tables.values():
            if isinstance(frame, pl.DataFrame):
                for col in frame.columns:
                    vocab.column_words.update(
                        w for w in tokens(col) if w not in ("cf", "id", "at") and len(w) > 2
                    )
        vocab.column_words -= COMMON_WORDS
        for entity in ("companies", "contacts", "deals", "activities"):
            frame = tables.get(entity)
            if frame is None:
                continue
            for col, dtype in frame.schema.items():
                if (
                    col.startswith("_")
                    or col in ("value",)
                    or not (dtype.is_numeric() or isinstance(dtype, pl.Decimal))
                ):
                    continue
                key = tuple(w for w in tokens(col) if w != "cf")
                top = frame.get_column(col).cast(pl.Float64).max() if frame.height else None
                if key:
                    vocab.numeric_columns[key] = (entity, col, float(top) if top is not None else 0.0)
        fields_ = list(CATEGORY_FIELDS)
        for entity in ("companies", "contacts", "deals", "activities"):
            frame = tables.get(entity)
            if frame is None:
                continue
            for col in frame.columns:
                if col.startswith(CUSTOM_PREFIX) and frame.schema[col] in (
                    pl.String,
                    pl.Categorical,
                    pl.Boolean,
                ):
                    fields_.append((entity, col))
        for entity, col in fields_:
            frame = tables.get(entity)
            if frame is None or col not in frame.columns:
                continue
            series = frame.get_column(col)
            if series.dtype == pl.Boolean:
                continue
            values = series.drop_nulls().cast(pl.String).unique()
            if values.len() == 0 or values.len() > MAX_CATEGORY_VALUES:
                continue
            vals = sorted(v for v in values.to_list() if v.strip())
            vocab.categories[(entity, col)] = vals
            if col.startswith(CUSTOM_PREFIX):
                vocab.custom_fields[f"{entity}.{col}"] = vals
        vocab._learn_relations(tables.get("companies"))
        for entity in ("companies", "contacts", "deals", "activities"):
            frame = tables.get(entity)
            if frame is not None:
                vocab.date_columns += [
                    (entity, c)
                    for c, t in frame.schema.items()
                    if c.startswith(CUSTOM_PREFIX) and t.is_temporal()
                ]
        vocab._learn_stages()
        vocab._learn_size_bands(tables.get("companies"))
        vocab._index_categories()
        vocab._index_names(tables)
        vocab._learn_dates(tables)
        vocab._category_choices = sorted(
            {" ".join(k) for k, senses in vocab.phrases.items() if any(s.kind == "value" for s in senses)}
        )
        return vocab

    def _learn_relations(self, companies: pl.DataFrame | None) -> None:
        """The company hierarchy: the schema's parent_company_id, else a custom field named like one."""
        if companies is None or companies.height == 0:
            return
        if (
            "parent_company_id" in companies.columns
            and companies.get_column("parent_company_id").null_count() < companies.height
        ):
            self.parent_relation = ("parent_company_id", False)
            pairs = companies.select("company_id", "parent_company_id").drop_nulls()
            self.company_parents = dict(pairs.iter_rows())
            return
        for col in companies.columns:
            if col.startswith(CUSTOM_PREFIX) and set(tokens(col)) & {"subsidiary", "parent", "parentcompany"}:
                self.parent_relation = (col, True)
                return

    def _learn_stages(self) -> None:
        stages = self.categories.get(("deals", "stage"), [])
        self.won_stages = [s for s in stages if phrase_of(s) in ("won", "closed won", "win")]
        self.lost_stages = [s for s in stages if phrase_of(s) in ("lost", "closed lost", "lose")]
        self.open_stages = [s for s in stages if s not in self.won_stages + self.lost_stages]

    def _learn_size_bands(self, companies: pl.DataFrame | None) -> None:
        bands = self.categories.get(("companies", "size_band"), [])
        if not bands:
            return
        if companies is not None and "employees" in companies.columns:
            medians = (
                companies.filter(pl.col("size_band").is_not_null())
                .group_by("size_band")
                .agg(pl.col("employees").median().alias("m"))
            )
            order = {
                r["size_band"]: (r["m"] if r["m"] is not None else 0) for r in medians.iter_rows(named=True)
            }
            self.size_bands = sorted(bands, key=lambda b: (order.get(b, 0), b))
        else:
            self.size_bands = sorted(bands)

    def _add(self, phrase: tuple[str, ...] | str, sense: Sense) -> None:
        key = tokens(phrase) if isinstance(phrase, str) else phrase
        if not key:
            return
        bucket = self.phrases.setdefault(key, [])
        if any(
            (s.kind, s.entity, s.field, s.value) == (sense.kind, sense.entity, sense.field, sense.value)
            for s in bucket
        ):
            return
        if sense.how == "exact":
            bucket.insert(sum(1 for s in bucket if s.how == "exact"), sense)
        else:
            bucket.append(sense)

    def _index_categories(self) -> None:
        for (entity, col), values in self.categories.items():
            role = col
            for value in values:
                sense = Sense("value", entity, col, value, value)
                key = tokens(value)
                if not key or (len(key) == 1 and key[0] in COMMON_WORDS and col not in ("stage", "type")):
                    continue
                self._add(key, sense)
                if len(key) > 1:
                    self._add(("".join(key),), sense)  # "GTXPro" and "GTX Pro" are one product
                if col not in PROPER_NAME_FIELDS:  # "norways" is no plural anyone types
                    self._add(
                        key[:-1] + (_plural(key[-1]),), Sense("value", entity, col, value, value, "synonym")
                    )
                if col == "country":
                    for alias in country_aliases(value):
                        if alias not in {phrase_of(v) for v in values}:
                            self._add(alias, Sense("value", entity, col, value, value, "synonym"))
                if col.startswith(CUSTOM_PREFIX):
                    continue
                for group in SYNONYM_GROUPS.get(role, []):
                    if not _belongs(phrase_of(value), group):
                        continue
                    for alias in group:
                        if alias in {phrase_of(v) for v in values}:
                            continue  # the data has that word as its own value
                        self._add(alias, Sense("value", entity, col, value, value, "synonym"))
        # stage shorthand people type ("neg", "qual", "prop"): a prefix that names one stage only
        stages = self.categories.get(("deals", "stage"), [])
        for value in stages:
            key = tokens(value)
            if len(key) != 1 or len(key[0]) < 6:
                continue
            for n in (3, 4):
                prefix = key[0][:n]
                if (prefix,) in self.phrases or sum(phrase_of(v).startswith(prefix) for v in stages) != 1:
                    continue
                self._add((prefix,), Sense("value", "deals", "stage", value, value, "synonym"))
        if self.size_bands:
            positions = {"largest": self.size_bands[-1], "smallest": self.size_bands[0]}
            if len(self.size_bands) >= 3:
                positions["middle"] = self.size_bands[len(self.size_bands) // 2]
            own = {phrase_of(b) for b in self.size_bands}
            for position, words in SIZE_WORDS.items():
                band = positions.get(position)
                if band is None:
                    continue
                for word in words:
                    if word in own and phrase_of(band) != word:
                        continue
                    self._add(word, Sense("value", "companies", "size_band", band, band, "synonym"))

    def _index_names(self, tables: dict[str, pl.DataFrame]) -> None:
        companies = tables.get("companies")
        if companies is not None and {"company_id", "name"} <= set(companies.columns):
            for cid, name in companies.select("company_id", "name").drop_nulls().iter_rows():
                self.company_names[cid] = name
                sense = Sense("company", "companies", "company_id", cid, name)
                key = tokens(name)
                if not key or (len(key) == 1 and key[0] in COMMON_WORDS):
                    continue
                self._add(key, sense)
                stripped = tuple(t for t in key if t not in _LEGAL_SUFFIXES)
                if stripped and stripped != key and not (len(stripped) == 1 and stripped[0] in COMMON_WORDS):
                    self._add(stripped, Sense("company", "companies", "company_id", cid, name, "synonym"))
            # a company by the first word of its name ("deals at peaklight") when no other company shares it
            firsts: dict[str, list[tuple[str, str]]] = {}
            for cid, name in self.company_names.items():
                key = tokens(name)
                if len(key) > 1 and len(key[0]) >= 5 and key[0] not in COMMON_WORDS:
                    firsts.setdefault(key[0], []).append((cid, name))
            for word, owners_ in firsts.items():
                if len(owners_) == 1 and (word,) not in self.phrases:
                    cid, name = owners_[0]
                    self._add((word,), Sense("company", "companies", "company_id", cid, name, "synonym"))
        contacts = tables.get("contacts")
        if contacts is not None and "contact_id" in contacts.columns:
            if "full_name" in contacts.columns:
                names = contacts.select("contact_id", "full_name")
            else:
                names = contacts.select(
                    "contact_id", pl.concat_str(["first_name", "last_name"], separator=" ").alias("full_name")
                )
            for cid, name in names.drop_nulls().iter_rows():
                self.contact_names[cid] = name
                key = tokens(name)
                if len(key) >= 2:
                    # names are kept apart from the phrases: 100k Sense objects would dominate the build and
                    # the artifact's load time; lookup() makes the few it needs
                    self.contact_index.setdefault(" ".join(key), []).append(cid)
        owners: set[str] = set()
        for entity, col in OWNER_FIELDS:
            frame = tables.get(entity)
            if frame is not None and col in frame.columns:
                owners.update(frame.get_column(col).drop_nulls().unique().to_list())
        self.owners = sorted(o for o in owners if o.strip())
        for owner in self.owners:
            key = tokens(owner)
            if key and not (len(key) == 1 and key[0] in COMMON_WORDS):
                self._add(key, Sense("owner", "", "owner", owner, owner))
        # an owner by first or last name alone ("Darcel's deals", "what did Schlecht win"): several owners
        # sharing the word make it ambiguous, which the answer asks about rather than guesses
        taken = set(self.phrases)
        for owner in self.owners:
            key = tokens(owner)
            if len(key) < 2:
                continue
            for part in (key[0], key[-1]):
                if len(part) < 3 or part in COMMON_WORDS or (part,) in taken:
                    continue
                self._add((part,), Sense("owner", "", "owner", owner, owner, "synonym"))

    def _learn_dates(self, tables: dict[str, pl.DataFrame]) -> None:
        ends, starts = [], []
        for entity, cols in DATE_FIELDS.items():
            frame = tables.get(entity)
            if frame is None:
                continue
            for col in cols:
                if col in frame.columns and frame.schema[col] != pl.Null and frame.height:
                    s = frame.get_column(col)
                    if s.null_count() == s.len():
                        continue
                    ends.append(s.max())
                    starts.append(s.min())
        ends = [_utc(e) for e in ends if isinstance(e, datetime)]
        starts = [_utc(s) for s in starts if isinstance(s, datetime)]
        self.data_end = max(ends) if ends else None
        self.data_start = min(starts) if starts else None

    # ---- lookups --------------------------------------------------------------------------------------
    def words(self) -> set[str]:
        """Every word of a phrase the vocabulary knows (values, synonyms, names, owners)."""
        if self._words is None:
            self._words = {w for key in self.phrases for w in key} | {
                w for k in self.contact_index for w in k.split()
            }
        return self._words

    def typo_fixer(self, grammar_words: set[str]):
        """Edit-distance typo correction over the grammar's words and this vocabulary's (built once)."""
        if self._fixer is None:
            from holocrm_core.nlq.normalise import TypoFixer, english_words

            self._fixer = TypoFixer(self.words() | self.column_words | grammar_words, english_words())
        return self._fixer

    def digit_phrases(self) -> list[str]:
        """Phrases with a number in them (product "GTK 500"), longest first: names the grammar must not read
        as amounts."""
        if self._digit_phrases is None:
            found = {
                " ".join(k) for k, senses in self.phrases.items()
                if any(t.isdigit() for t in k) and any(s.kind in ("value", "company", "owner") for s in senses)
                and any(not t.isdigit() for t in k)
            }  # fmt: skip
            self._digit_phrases = sorted(found, key=len, reverse=True)
        return self._digit_phrases

    def value_spelled(self, entity: str, column: str, name: str) -> str | None:
        """The value of a column spelled as the data spells it, for a name typed another way."""
        want = phrase_of(name)
        for value in self.categories.get((entity, column), []):
            if phrase_of(value) == want:
                return value
        return None

    def column_for_meaning(self, word: str) -> tuple[str, str, bool] | None:
        """(entity, column, holds years) of a custom column whose name means what `word` says ("founded" ->
        cf_year_established), from groups of words with one meaning; None when no column fits."""
        groups = [g for g in MEANING_GROUPS if word in g]
        if not groups:
            return self._column_by_embedding(word)
        for key, (entity, column, top) in self.numeric_columns.items():
            if column.startswith(CUSTOM_PREFIX) and any(set(key) & g for g in groups):
                return entity, column, "year" in key or 1800 <= top <= 2200
        for entity, column in self.date_columns:
            if any(set(tokens(column)) & g for g in groups):
                return entity, column, False
        return None

    def _column_by_embedding(self, word: str, threshold: float = 0.55) -> tuple[str, str, bool] | None:
        """With an embedder attached: the custom numeric or date column whose name is nearest in meaning."""
        if self._embedder is None or word in COMMON_WORDS or len(word) < 4:
            return None
        import numpy as np

        columns = [
            (e, c, "year" in k or 1800 <= top <= 2200)
            for k, (e, c, top) in self.numeric_columns.items()
            if c.startswith(CUSTOM_PREFIX)
        ]
        columns += [(e, c, False) for e, c in self.date_columns]
        if not columns:
            return None
        names = [" ".join(t for t in tokens(c) if t != "cf") for _, c, _ in columns]
        matrix = np.asarray(self._embedder([word, *names]), dtype=np.float32)
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True) + 1e-9
        sims = matrix[1:] @ matrix[0]
        best = int(sims.argmax())
        return columns[best] if sims[best] >= threshold else None

    def lookup(self, key: tuple[str, ...]) -> list[Sense]:
        found = self.phrases.get(key, [])
        ids = self.contact_index.get(" ".join(key))
        if ids:
            found = found + [
                Sense("contact", "contacts", "contact_id", i, self.contact_names[i]) for i in ids
            ]
        return found

    def fuzzy_value(self, phrase: str, cutoff: float = 86.0) -> tuple[list[Sense], float] | None:
        """Field values spelled like `phrase` (typos: "tecnology", "finacial services")."""
        if len(phrase.replace(" ", "")) < 5 or not self._category_choices:
            return None
        from rapidfuzz import fuzz, process

        best = process.extractOne(phrase, self._category_choices, scorer=fuzz.ratio, score_cutoff=cutoff)
        if best is None:
            return None
        choice, score, _ = best
        senses = [
            Sense(s.kind, s.entity, s.field, s.value, s.label, "fuzzy")
            for s in self.phrases[tuple(choice.split())]
            if s.kind == "value"
        ]
        return senses, score / 100.0

    def name_choices(self, entity: str) -> list[tuple[str, str]]:
        """(name phrase, id) of every company or contact, built on the first fuzzy name lookup: most
        questions never need it, and at 100k contacts it costs more than loading the artifact."""
        if entity not in self._name_choices:
            names = self.contact_names if entity == "contacts" else self.company_names
            self._name_choices[entity] = [(phrase_of(n), i) for i, n in names.items()]
        return self._name_choices[entity]

    def fuzzy_name(
        self, phrase: str, entities: tuple[str, ...] = ("contacts", "companies"), cutoff: float = 85.0
    ):
        """(entity, id, name, score) of the record whose name is closest to `phrase`, or None."""
        from rapidfuzz import fuzz, process

        best = None
        for entity in entities:
            choices = self.name_choices(entity)
            if not choices:
                continue
            hit = process.extractOne(phrase, [c[0] for c in choices], scorer=fuzz.WRatio, score_cutoff=cutoff)
            if hit and (best is None or hit[1] > best[3]):
                rid = choices[hit[2]][1]
                name = (self.contact_names if entity == "contacts" else self.company_names)[rid]
                best = (entity, rid, name, hit[1])
        return best

    def close_phrases(self, word: str, limit: int = 3, cutoff: float = 70.0) -> list[str]:
        """Vocabulary phrases (values as the data spells them, owners, company names) spelled like `word`."""
        from rapidfuzz import fuzz, process

        if self._close_choices is None:
            exact = {
                " ".join(k) for k, senses in self.phrases.items() if any(s.how == "exact" for s in senses)
            }
            self._close_choices = sorted(exact)
        hits = process.extract(word, self._close_choices, scorer=fuzz.ratio, limit=limit, score_cutoff=cutoff)
        return [choice for choice, _, _ in hits]

    def suggest(self, word: str, limit: int = 3) -> list[str]:
        """Vocabulary phrases spelled like an unknown word, with what they mean."""
        from rapidfuzz import fuzz, process

        choices = self._category_choices + [phrase_of(o) for o in self.owners]
        hits = process.extract(word, choices, scorer=fuzz.WRatio, limit=limit, score_cutoff=60)
        out = []
        for choice, _, _ in hits:
            senses = self.phrases.get(tuple(choice.split()), [])
            what = f"{senses[0].entity}.{senses[0].field}".lstrip(".") if senses else "value"
            out.append(f"{choice} ({what})")
        return out

    def attach_embedder(self, embed: Callable[[list[str]], object]) -> None:
        """Let words no rule knows be matched to the nearest field value by sentence embeddings. Nothing is
        embedded here: the value matrix is built on the first word that needs it (most questions never do,
        and a lazy embedder then never loads its model)."""
        self._embedder, self._embedded = embed, None

    def _value_matrix(self):
        if self._embedded is None and self._embedder is not None and self._category_choices:
            import numpy as np

            choices = self._category_choices
            matrix = np.asarray(self._embedder(choices), dtype=np.float32)
            matrix /= np.linalg.norm(matrix, axis=1, keepdims=True) + 1e-9
            self._embedded = (choices, matrix)
        return self._embedded

    def embedding_value(self, phrase: str, threshold: float = 0.62) -> tuple[list[Sense], float] | None:
        if self._embedder is None or self._value_matrix() is None:
            return None
        import numpy as np

        choices, matrix = self._embedded
        vec = np.asarray(self._embedder([phrase]), dtype=np.float32)[0]
        vec /= np.linalg.norm(vec) + 1e-9
        sims = matrix @ vec
        best = int(sims.argmax())
        if sims[best] < threshold:
            return None
        senses = [
            Sense(s.kind, s.entity, s.field, s.value, s.label, "embedding")
            for s in self.phrases[tuple(choices[best].split())]
            if s.kind == "value"
        ]
        return senses, float(sims[best])

    # ---- artifact -------------------------------------------------------------------------------------
    def to_json(self) -> dict:
        synonyms: dict[str, list[str]] = {}
        for key, senses in self.phrases.items():
            for s in senses:
                if s.kind == "value" and s.how == "synonym":
                    synonyms.setdefault(" ".join(key), []).append(f"{s.entity}.{s.field}={s.value}")
        return {
            "built_at": datetime.now(UTC).isoformat(),
            "categories": {f"{e}.{c}": v for (e, c), v in self.categories.items()},
            "synonyms": synonyms,
            "size_bands_small_to_large": self.size_bands,
            "open_stages": self.open_stages,
            "won_stages": self.won_stages,
            "lost_stages": self.lost_stages,
            "owners": self.owners,
            "company_names": len(self.company_names),
            "contact_names": len(self.contact_names),
            "custom_fields": self.custom_fields,
            "data_start": self.data_start.isoformat() if self.data_start else None,
            "data_end": self.data_end.isoformat() if self.data_end else None,
            "row_counts": self.row_counts,
        }

    def to_artifact(self) -> dict:
        """The summary (to_json) plus everything the parser reads, so the artifact can be loaded back."""
        data = self.to_json()
        data["format"] = ARTIFACT_FORMAT
        data["index"] = {
            "phrases": [
                [" ".join(k), [[x.kind, x.entity, x.field, x.value, x.label, x.how] for x in senses]]
                for k, senses in self.phrases.items()
            ],
            "categories": [[e, c, v] for (e, c), v in self.categories.items()],
            "company_names": self.company_names,
            "contact_names": self.contact_names,
            "contact_index": self.contact_index,
            "column_words": sorted(self.column_words),
            "numeric_columns": [[list(k), list(v)] for k, v in self.numeric_columns.items()],
            "date_columns": [list(x) for x in self.date_columns],
            "company_parents": self.company_parents,
            "parent_relation": list(self.parent_relation) if self.parent_relation else None,
        }
        return data

    @classmethod
    def from_artifact(cls, data: dict) -> Vocabulary:
        """A vocabulary read back from `to_artifact`; ValueError when the file is of another format."""
        if data.get("format") != ARTIFACT_FORMAT or "index" not in data:
            raise ValueError(f"vocabulary artifact format {data.get('format')!r}, expected {ARTIFACT_FORMAT}")
        index = data["index"]
        vocab = cls(
            categories={(e, c): v for e, c, v in index["categories"]},
            phrases={tuple(k.split()): [Sense(*x) for x in senses] for k, senses in index["phrases"]},
            company_names=index["company_names"],
            contact_names=index["contact_names"],
            contact_index=index["contact_index"],
            owners=data["owners"],
            size_bands=data["size_bands_small_to_large"],
            open_stages=data["open_stages"],
            won_stages=data["won_stages"],
            lost_stages=data["lost_stages"],
            data_start=datetime.fromisoformat(data["data_start"]) if data.get("data_start") else None,
            data_end=datetime.fromisoformat(data["data_end"]) if data.get("data_end") else None,
            custom_fields=data["custom_fields"],
            row_counts=data["row_counts"],
            column_words=set(index["column_words"]),
            numeric_columns={tuple(k): tuple(v) for k, v in index["numeric_columns"]},
            date_columns=[tuple(x) for x in index["date_columns"]],
            company_parents=index["company_parents"],
            parent_relation=tuple(index["parent_relation"]) if index["parent_relation"] else None,
        )
        vocab._category_choices = sorted(
            {" ".join(k) for k, senses in vocab.phrases.items() if any(x.kind == "value" for x in senses)}
        )
        return vocab

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_artifact(), sort_keys=True, separators=(",", ":")))
        tmp.replace(path)
        return path

    @classmethod
    def read(cls, path: str | Path) -> Vocabulary:
        return cls.from_artifact(json.loads(Path(path).read_text()))


def country_aliases(value: str) -> list[str]:
    """Other names and ISO codes of the country a data value names ("US" <-> "united states" <-> "usa")."""
    try:
        import pycountry

        country = pycountry.countries.lookup(str(value).strip())
    except (LookupError, ImportError):
        return []
    names = [getattr(country, a, None) for a in ("name", "official_name", "common_name")]
    codes = [c.lower() for c in (country.alpha_2, country.alpha_3) if c.lower() not in _CODE_WORDS]
    aliases = [phrase_of(n) for n in names if n] + codes
    if country.alpha_2 == "US":
        aliases += ["united states of america", "america", "u s", "u s a", "the states"]
    if country.alpha_2 == "GB":
        aliases += ["uk", "britain", "great britain", "england"]
    return [a for a in dict.fromkeys(aliases) if a]


def _plural(word: str) -> str:
    if word.endswith("s"):
        return word
    if word.endswith("y") and len(word) > 2 and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def _belongs(value: str, group: set[str]) -> bool:
    if value in group:
        return True
    if len(value) < 5:
        return False
    from rapidfuzz import fuzz

    # data values with typos ("technolgy") still pick up their group
    return any(len(m) >= 5 and fuzz.ratio(value, m) >= 90 for m in group)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
