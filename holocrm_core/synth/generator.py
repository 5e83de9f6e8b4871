"""Sample CRM export with a hidden ground truth: companies, contacts, deals, activities, attachments.

The world is drawn with vectorised numpy (no Python loop per row), so a million contacts and about five
million activities take well under two minutes. The truth is causal and point-in-time: every lead's true
conversion probability and every deal's true win probability is a function of what the export shows
*before* the outcome (industry, seniority, size, lead source, deal value, how often and how recently the
contact was touched, and what the notes say); the outcome is then drawn from it. Activities after an
outcome (onboarding notes after a win) exist on purpose, as a trap for a model that ignores time.

Dirty rows (each violating exactly one validation rule) are extra rows inserted among the clean ones and
never referenced by anything, so quarantining them cascades nowhere.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from holocrm_core.synth import vocabulary as V
from holocrm_core.synth.attachment_files import (
    MEDIA_TYPES,
    attachment_content,
    default_fact_counts,
    write_fact_attachments,
)
from holocrm_core.synth.lives import (
    CURRENCIES,
    DAY,
    DEAL_STAGES,
    NEGATIVE,
    NEUTRAL,
    POSITIVE,
    POST_CONVERTED,
    POST_DISQUALIFIED,
    POST_LOST,
    POST_WON,
    SPAN_DAYS,
    _Activities,
    _simulate,
    _snap_business_hours,
    _uniform_between,
)
from holocrm_core.synth.outreach import OUTREACH_DIR, outreach_log
from holocrm_core.synth.response import action_response_grid

DEFAULT_AS_OF = datetime(2026, 10, 31, tzinfo=UTC)
MAX_ATTACHMENT_FILES = 500
ACTIVITY_CHUNK = 500_000
ISO = "%Y-%m-%dT%H:%M:%SZ"

ID_PREFIX = {
    "companies": ("CMP-", 7),
    "contacts": ("CON-", 7),
    "deals": ("DEA-", 7),
    "activities": ("ACT-", 8),
    "attachments": ("ATT-", 7),
}
ID_COLUMN = {
    "companies": "company_id",
    "contacts": "contact_id",
    "deals": "deal_id",
    "activities": "activity_id",
    "attachments": "attachment_id",
}


# Drivers of the true lead conversion probability (log-odds contributions).
@dataclass
class SynthSummary:
    out_dir: Path
    truth_dir: Path
    counts: dict[str, int]
    dirty: int
    duplicate_pairs: int
    seconds: float
    clean_counts: dict[str, int] = field(default_factory=dict)


def _id_series(entity: str, numbers: np.ndarray, name: str) -> pl.Series:
    prefix, width = ID_PREFIX[entity]
    s = pl.Series(name, numbers.astype(np.int64)).cast(pl.String).str.zfill(width)
    return pl.select((pl.lit(prefix) + s).alias(name)).to_series()


def _pick(values: list[str], idx: np.ndarray, name: str = "") -> pl.Series:
    return pl.Series(name, values, dtype=pl.String).gather(idx)


def _iso(seconds: np.ndarray, name: str, valid: np.ndarray | None = None) -> pl.Series:
    s = pl.Series(name, seconds.astype(np.int64))
    out = pl.select(pl.from_epoch(s, time_unit="s").dt.strftime(ISO).alias(name)).to_series()
    if valid is not None:
        out = pl.select(pl.when(pl.Series(valid)).then(out).otherwise(None).alias(name)).to_series()
    return out


def _money(amount: np.ndarray, name: str, valid: np.ndarray | None = None) -> pl.Series:
    cents = np.round(amount * 100).astype(np.int64)
    whole = pl.Series(cents // 100).cast(pl.String)
    frac = pl.Series(cents % 100).cast(pl.String).str.zfill(2)
    out = pl.select((whole + "." + frac).alias(name)).to_series()
    if valid is not None:
        out = pl.select(pl.when(pl.Series(valid)).then(out).otherwise(None).alias(name)).to_series()
    return out


def _later_repeats(frame: pl.DataFrame) -> np.ndarray:
    """True for each row whose key (all columns) already appeared in an earlier row."""
    return ~frame.select(pl.struct(pl.all()).is_first_distinct()).to_series().to_numpy()


def _typo(word: str, rng: np.random.Generator) -> str:
    if len(word) < 3:
        return word + word[-1]
    i = int(rng.integers(1, len(word) - 1))
    kind = int(rng.integers(0, 3))
    if kind == 0 and i + 1 < len(word) and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == 1:
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]


# ----------------------------------------------------------------------------------------------- world
@dataclass
class _Companies:
    n_base: int
    n: int
    industry: np.ndarray
    employees: np.ndarray
    band: np.ndarray  # 0 smb, 1 mid, 2 enterprise
    country: np.ndarray
    city_code: np.ndarray  # index into flat city list
    root: list[str]  # name without legal suffix
    name: list[str]
    domain: list[str | None]
    revenue: np.ndarray
    revenue_valid: np.ndarray
    parent: np.ndarray  # -1 none
    owner: np.ndarray
    dup_source: np.ndarray  # -1 for base companies
    dup_kind: list[str]
    created: np.ndarray = None  # filled after contacts


def _flat_cities():
    cities, areas, city_country, first_city, n_city = [], [], [], [], []
    for ci, (_, _, _, _, _, cl) in enumerate(V.GEOGRAPHY):
        first_city.append(len(cities))
        n_city.append(len(cl))
        for name, area in cl:
            cities.append(name)
            areas.append(area)
            city_country.append(ci)
    return cities, areas, np.array(city_country), np.array(first_city), np.array(n_city)


CITIES, CITY_AREAS, CITY_COUNTRY, COUNTRY_FIRST_CITY, COUNTRY_N_CITY = _flat_cities()
COUNTRY_TLD = {
    "United States": ".com",
    "Canada": ".ca",
    "United Kingdom": ".co.uk",
    "Germany": ".de",
    "France": ".fr",
    "Netherlands": ".nl",
    "Spain": ".es",
    "Ireland": ".ie",
    "Sweden": ".se",
    "Australia": ".com.au",
    "Singapore": ".sg",
    "Japan": ".jp",
    "India": ".in",
    "Brazil": ".com.br",
    "Mexico": ".com.mx",
}
QUALIFIERS = [
    "",
    "",
    "",
    "",
    "Solutions",
    "Partners",
    "Global",
    "International",
    "Worldwide",
    "Holdings",
    "Services",
    "Networks",
    "Consulting",
]


def _build_companies(
    n_contacts: int, dup_fraction: float, n_reps: int, rng: np.random.Generator
) -> _Companies:
    n_base = max(12, int(round(n_contacts / 8)))
    n_dup = int(round(dup_fraction * n_base))
    if dup_fraction > 0:
        n_dup = max(1, n_dup)
    industry = rng.choice(
        len(V.INDUSTRIES), size=n_base, p=np.array(V.INDUSTRY_WEIGHTS) / sum(V.INDUSTRY_WEIGHTS)
    )
    geo_w = np.array([g[4] for g in V.GEOGRAPHY])
    country = rng.choice(len(V.GEOGRAPHY), size=n_base, p=geo_w / geo_w.sum())
    city_code = COUNTRY_FIRST_CITY[country] + (rng.random(n_base) * COUNTRY_N_CITY[country]).astype(np.int64)
    employees = np.clip(np.round(np.exp(rng.normal(np.log(140), 1.5, n_base))), 2, 250_000).astype(np.int64)
    band = np.where(employees >= 1000, 2, np.where(employees >= 200, 1, 0))

    noun_lists = [V.INDUSTRY_NOUNS[i] for i in V.INDUSTRIES]
    noun_len = np.array([len(x) for x in noun_lists])
    head = rng.integers(0, len(V.NAME_HEADS), n_base)
    tail = rng.integers(0, len(V.NAME_TAILS), n_base)
    noun = (rng.random(n_base) * noun_len[industry]).astype(np.int64)
    qual = rng.integers(0, len(QUALIFIERS), n_base)
    # Names must be unique by their root (ignoring the legal suffix): otherwise "Bluepeak Health Inc." and
    # "Bluepeak Health LLC" would be an unplanted duplicate pair.
    noun_flat = pl.Series([w for lst in noun_lists for w in lst])
    noun_offset = np.cumsum(np.r_[0, noun_len[:-1]])
    for _ in range(200):
        # Different industries may share a noun ("Services"): compare the words, not the indices.
        noun_word = noun_flat.gather(noun_offset[industry] + noun)
        compound = pl.Series(V.NAME_HEADS).gather(head) + pl.Series(V.NAME_TAILS).gather(tail)
        root_key = pl.DataFrame({"c": compound, "n": noun_word, "q": pl.Series(QUALIFIERS).gather(qual)})
        dup = _later_repeats(root_key)
        if not dup.any():
            break
        k = int(dup.sum())
        head[dup] = rng.integers(0, len(V.NAME_HEADS), k)
        tail[dup] = rng.integers(0, len(V.NAME_TAILS), k)
        qual[dup] = rng.integers(0, len(QUALIFIERS), k)
    noun_words = noun_word.to_list()
    suffix_w = np.array(V.LEGAL_SUFFIX_WEIGHTS)
    suffix = rng.choice(len(V.LEGAL_SUFFIXES), size=n_base, p=suffix_w / suffix_w.sum())
    tld_choice = rng.random(n_base)
    root, name, domain, suffixes = [], [], [], []
    for i in range(n_base):  # O(companies) string assembly: ~125k at 1M contacts, a fraction of a second
        q = QUALIFIERS[qual[i]]
        compound = V.NAME_HEADS[head[i]] + V.NAME_TAILS[tail[i]]
        r = f"{compound} {noun_words[i]}" + (f" {q}" if q else "")
        sfx = "" if industry[i] == 11 else V.LEGAL_SUFFIXES[suffix[i]]
        root.append(r)
        suffixes.append(sfx)
        name.append(f"{r} {sfx}".strip())
        cname = V.GEOGRAPHY[country[i]][0]
        tld = COUNTRY_TLD[cname]
        if tld == ".com" and tld_choice[i] < 0.15:
            tld = ".io" if industry[i] == 4 else ".net"
        if industry[i] == 11 and cname == "United States":
            tld = ".gov"
        domain.append((compound + noun_words[i] + q).lower() + tld)
    revenue = employees * np.exp(rng.normal(np.log(180_000), 0.5, n_base))
    revenue = np.round(revenue / 1000) * 1000
    revenue_valid = rng.random(n_base) < 0.85
    parent = np.full(n_base, -1)
    has_parent = (rng.random(n_base) < 0.03) & (np.arange(n_base) > 0)
    parent[has_parent] = (rng.random(int(has_parent.sum())) * np.arange(n_base)[has_parent]).astype(np.int64)
    owner = rng.integers(0, n_reps, n_base)

    # Planted near-duplicate companies: clean rows with their own ids.
    src = rng.choice(n_base, size=n_dup, replace=False) if n_dup else np.zeros(0, dtype=np.int64)
    kinds = rng.choice(["suffix_variant", "case_variant", "typo"], size=n_dup, p=[0.4, 0.3, 0.3])
    d_root, d_name, d_domain = [], [], []
    for s, kind in zip(src, kinds):
        r, sfx = root[s], suffixes[s]
        if kind == "suffix_variant":
            new = f"{r} {V.SUFFIX_VARIANTS[sfx][int(rng.integers(0, 3))]}"
        elif kind == "case_variant":
            new = f"{r} {V.SUFFIX_VARIANTS[sfx][int(rng.integers(0, 3))]}".upper()
        else:
            words = r.split(" ")
            words[0] = _typo(words[0], rng)
            new = f"{' '.join(words)} {sfx}".strip()
        d_root.append(r)
        d_name.append(new)
        d_domain.append(domain[s] if rng.random() < 0.6 else None)
    return _Companies(
        n_base=n_base,
        n=n_base + n_dup,
        industry=np.r_[industry, industry[src]],
        employees=np.r_[employees, employees[src]],
        band=np.r_[band, band[src]],
        country=np.r_[country, country[src]],
        city_code=np.r_[city_code, city_code[src]],
        root=root + d_root,
        name=name + d_name,
        domain=domain + d_domain,
        revenue=np.r_[revenue, revenue[src]],
        revenue_valid=np.r_[revenue_valid, np.zeros(n_dup, bool)],
        parent=np.r_[parent, np.full(n_dup, -1)],
        owner=np.r_[owner, owner[src]],
        dup_source=np.r_[np.full(n_base, -1), src],
        dup_kind=[""] * n_base + list(kinds),
    )


def _build_reps(n_contacts: int, rng: np.random.Generator) -> list[str]:
    n_reps = int(np.clip(round(15 + 5 * np.log10(max(n_contacts, 100) / 100)), 15, 40))
    reps: list[str] = []
    while len(reps) < n_reps:
        name = (
            f"{V.FIRST_NAMES[rng.integers(0, len(V.FIRST_NAMES))][0]} "
            f"{V.LAST_NAMES[rng.integers(0, len(V.LAST_NAMES))][0]}"
        )
        if name not in reps:
            reps.append(name)
    return reps


@dataclass
class _Contacts:
    n: int
    company: np.ndarray  # -1 when the contact has no company
    first: pl.Series
    last: pl.Series
    first_ascii: pl.Series
    last_ascii: pl.Series
    seniority: np.ndarray
    title: pl.Series
    source: np.ndarray
    owner: np.ndarray
    country: np.ndarray
    city_code: np.ndarray
    band: np.ndarray  # 0 smb, 1 mid, 2 enterprise, 3 none
    industry: np.ndarray  # 12 = none
    email: pl.Series
    phone: pl.Series
    pairs: list[tuple[int, int, str]]


def _ascii_slug(text: str) -> str:
    import unicodedata

    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    return "".join(ch for ch in plain if ch.isalnum())


def _build_titles() -> tuple[list[str], np.ndarray, np.ndarray]:
    titles, offset, n_var = [], [], []
    for sen in V.SENIORITIES:
        offset.append(len(titles))
        if sen == "c_level":
            patterns = ["{c}"]
        else:
            patterns = V.TITLE_PATTERNS[sen]
        n_var.append(len(patterns))
        for f in V.FUNCTIONS:
            for pattern in patterns:
                titles.append(pattern.format(f=f, c=V.C_LEVEL_TITLES[f]))
    return titles, np.array(offset), np.array(n_var)


TITLES, TITLE_OFFSET, TITLE_N_VAR = _build_titles()


def _phones(country: np.ndarray, city_code: np.ndarray, rng: np.random.Generator) -> pl.Series:
    n = len(country)
    cc = pl.Series([g[3] for g in V.GEOGRAPHY]).gather(country)
    area = pl.Series(CITY_AREAS).gather(city_code)
    p3 = pl.Series(rng.integers(200, 1000, n)).cast(pl.String)
    p4a = pl.Series(rng.integers(1000, 10000, n)).cast(pl.String)
    p4 = pl.Series(rng.integers(0, 10000, n)).cast(pl.String).str.zfill(4)
    style = pl.Series(rng.integers(0, 3, n))
    ext = pl.Series(rng.integers(100, 1000, n)).cast(pl.String)
    has_ext = pl.Series(rng.random(n) < 0.05)
    frame = pl.DataFrame(
        {
            "cc": cc,
            "area": area,
            "p3": p3,
            "p4a": p4a,
            "p4": p4,
            "style": style,
            "ext": ext,
            "has_ext": has_ext,
        }
    )
    nanp = pl.col("cc") == "1"
    L, C = pl.lit, pl.col
    base = (
        pl.when(nanp & (C("style") == 0))
        .then(pl.concat_str([L("+1 "), C("area"), L("-"), C("p3"), L("-"), C("p4")]))
        .when(nanp & (C("style") == 1))
        .then(pl.concat_str([L("("), C("area"), L(") "), C("p3"), L("-"), C("p4")]))
        .when(nanp)
        .then(pl.concat_str([C("area"), L("."), C("p3"), L("."), C("p4")]))
        .when(C("area").str.len_chars() <= 2)
        .then(pl.concat_str([L("+"), C("cc"), L(" "), C("area"), L(" "), C("p4a"), L(" "), C("p4")]))
        .otherwise(pl.concat_str([L("+"), C("cc"), L(" "), C("area"), L(" "), C("p3"), L(" "), C("p4")]))
    )
    phone = pl.when(C("has_ext")).then(pl.concat_str([base, L(" ext "), C("ext")])).otherwise(base)
    return frame.select(phone.alias("phone")).to_series()


def _name_keys(
    company: np.ndarray, personal: np.ndarray, first_id: np.ndarray, last_id: np.ndarray, n_comp: int
) -> pl.DataFrame:
    # A name and its reordering ("Wei Chen" / "Chen Wei") count as the same person at the same company.
    owner_key = np.where(company >= 0, company, n_comp + personal)
    return pl.DataFrame(
        {"o": owner_key, "lo": np.minimum(first_id, last_id), "hi": np.maximum(first_id, last_id)}
    )


def _build_contacts(
    n: int, comp: _Companies, n_reps: int, dup_fraction: float, rng: np.random.Generator
) -> _Contacts:
    has_company = rng.random(n) >= 0.02
    idx_with = np.flatnonzero(has_company)
    n_with = len(idx_with)
    weights = np.sqrt(comp.employees[: comp.n_base].astype(np.float64))
    if n_with >= comp.n_base:
        assigned = np.r_[
            rng.permutation(comp.n_base),
            rng.choice(comp.n_base, size=n_with - comp.n_base, p=weights / weights.sum()),
        ]
        assigned = rng.permutation(assigned)
    else:
        assigned = rng.choice(comp.n_base, size=n_with, p=weights / weights.sum())
    company = np.full(n, -1, dtype=np.int64)
    company[idx_with] = assigned
    personal = rng.integers(0, len(V.PERSONAL_DOMAINS), n)

    nf, nl = len(V.FIRST_NAMES), len(V.LAST_NAMES)
    fi = rng.integers(0, nf, n)
    li = rng.integers(0, nl, n)
    # One vocabulary for first and last names, so "Chen"/"Wei" match whichever column they are in.
    joint = {}
    for _, a in V.FIRST_NAMES + V.LAST_NAMES:
        joint.setdefault(a, len(joint))
    first_joint = np.array([joint[a] for _, a in V.FIRST_NAMES])
    last_joint = np.array([joint[a] for _, a in V.LAST_NAMES])

    seniority = rng.choice(5, size=n, p=V.SENIORITY_WEIGHTS)
    function = rng.integers(0, len(V.FUNCTIONS), n)
    variant = (rng.random(n) * TITLE_N_VAR[seniority]).astype(np.int64)

    # Planted near-duplicate contacts: a second, clean record of the same person with its own id.
    n_pairs = int(round(dup_fraction * n))
    if dup_fraction > 0 and n >= 50:
        n_pairs = max(1, n_pairs)
    n_pairs = min(n_pairs, n_with // 2)
    chosen = rng.choice(idx_with, size=2 * n_pairs, replace=False) if n_pairs else np.zeros(0, np.int64)
    src, dup = chosen[:n_pairs], chosen[n_pairs:]
    kinds = rng.choice(
        ["typo", "nickname", "changed_email_domain", "reordered_name"], size=n_pairs, p=[0.3, 0.25, 0.25, 0.2]
    )
    nick_first = np.array([i for i, (d, _) in enumerate(V.FIRST_NAMES) if d in V.NICKNAMES])
    is_nick = kinds == "nickname"
    fi[src[is_nick]] = nick_first[rng.integers(0, len(nick_first), int(is_nick.sum()))]
    company[dup] = company[src]
    seniority[dup], function[dup], variant[dup] = seniority[src], function[src], variant[src]

    protected = np.zeros(n, bool)
    protected[dup] = True
    for _ in range(100):
        keys = _name_keys(company, personal, first_joint[fi], last_joint[li], comp.n)
        clash = _later_repeats(keys)
        # The planted duplicate rows are meant to clash with their source; every other clash is resampled.
        dup_key_rows = np.flatnonzero(protected)
        clash[dup_key_rows] = False
        if not clash.any():
            break
        # A clash between two ordinary rows: resample the later one's last name.
        li[clash] = rng.integers(0, nl, int(clash.sum()))
    # Dup rows are compared to their sources only: keep their name ids equal to the source's for now.
    fi[dup], li[dup] = fi[src], li[src]

    first = pl.Series("first_name", [d for d, _ in V.FIRST_NAMES]).gather(fi)
    last = pl.Series("last_name", [d for d, _ in V.LAST_NAMES]).gather(li)
    first_ascii = pl.Series([a for _, a in V.FIRST_NAMES]).gather(fi)
    last_ascii = pl.Series([a for _, a in V.LAST_NAMES]).gather(li)
    f_over, l_over, fa_over, la_over, dom_over = [], [], [], [], []
    for s, kind in zip(src, kinds):
        fd, fa = V.FIRST_NAMES[fi[s]]
        ld, la = V.LAST_NAMES[li[s]]
        domain_override = None
        if kind == "typo":
            ld = _typo(ld, rng)
            la = _ascii_slug(ld)
        elif kind == "nickname":
            fd = V.NICKNAMES[fd]
            fa = fd.lower()
        elif kind == "reordered_name":
            fd, ld, fa, la = ld, fd, la, fa
        else:
            if rng.random() < 0.5:
                domain_override = V.PERSONAL_DOMAINS[int(rng.integers(0, len(V.PERSONAL_DOMAINS)))]
            else:
                base = comp.domain[company[s]] or "example.com"
                stem = base.split(".")[0]
                domain_override = stem + (".net" if not base.endswith(".net") else ".co")
        f_over.append(fd)
        l_over.append(ld)
        fa_over.append(fa)
        la_over.append(la)
        dom_over.append(domain_override)
    if n_pairs:
        first = first.scatter(dup, f_over)
        last = last.scatter(dup, l_over)
        first_ascii = first_ascii.scatter(dup, fa_over)
        last_ascii = last_ascii.scatter(dup, la_over)

    title = pl.Series("title", TITLES).gather(
        TITLE_OFFSET[seniority] + function * TITLE_N_VAR[seniority] + variant
    )

    # E-mail at the company domain; the pattern varies by company as it does in real organisations.
    comp_domain = pl.Series(comp.domain, dtype=pl.String)
    company_domain = comp_domain.gather(np.where(company >= 0, company, 0))
    personal_domain = pl.Series(V.PERSONAL_DOMAINS).gather(personal)
    pattern = np.where(
        company >= 0, rng.choice(4, size=comp.n, p=[0.55, 0.2, 0.1, 0.15])[np.maximum(company, 0)], 0
    )
    frame = pl.DataFrame(
        {
            "fa": first_ascii,
            "la": last_ascii,
            "pattern": pattern,
            "has_company": company >= 0,
            "cdom": company_domain,
            "pdom": personal_domain,
        }
    )
    if n_pairs:
        override = pl.Series("odom", [None] * n, dtype=pl.String).scatter(dup, dom_over)
        frame = frame.with_columns(override)
    else:
        frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias("odom"))
    frame = frame.with_columns(
        pl.coalesce("odom", pl.when(pl.col("has_company")).then("cdom").otherwise("pdom")).alias("domain"),
        pl.when(pl.col("pattern") == 1)
        .then(pl.col("fa").str.slice(0, 1) + pl.col("la"))
        .when(pl.col("pattern") == 2)
        .then(pl.col("fa") + "_" + pl.col("la"))
        .when(pl.col("pattern") == 3)
        .then(pl.col("fa") + pl.col("la").str.slice(0, 1))
        .otherwise(pl.col("fa") + "." + pl.col("la"))
        .alias("local"),
    )
    for attempt in range(3):
        email = frame.select((pl.col("local") + "@" + pl.col("domain")).alias("email")).to_series()
        clash = ~email.is_first_distinct()
        if not clash.any():
            break
        rows = pl.Series(np.arange(n)).cast(pl.String)
        frame = frame.with_columns(
            pl.when(pl.Series(clash.to_numpy()))
            .then(pl.col("fa") + "." + pl.col("la") + (pl.lit("") if attempt == 0 else rows))
            .otherwise("local")
            .alias("local")
        )
    email = frame.select((pl.col("local") + "@" + pl.col("domain")).alias("email")).to_series()
    blank_email = rng.random(n) < 0.03
    blank_email[np.r_[src, dup]] = False
    email = pl.select(pl.when(pl.Series(blank_email)).then(None).otherwise(email).alias("email")).to_series()

    random_country = rng.choice(
        len(V.GEOGRAPHY), size=n, p=np.array([g[4] for g in V.GEOGRAPHY]) / sum(g[4] for g in V.GEOGRAPHY)
    )
    country = np.where(company >= 0, comp.country[np.maximum(company, 0)], random_country)
    random_city = COUNTRY_FIRST_CITY[country] + (rng.random(n) * COUNTRY_N_CITY[country]).astype(np.int64)
    city_code = np.where(company >= 0, comp.city_code[np.maximum(company, 0)], random_city)
    phone = _phones(country, city_code, rng)
    same_phone = rng.random(n_pairs) < 0.5
    if n_pairs:
        phone = phone.scatter(dup[same_phone], phone.gather(src[same_phone]))
    blank_phone = rng.random(n) < 0.15
    phone = pl.select(pl.when(pl.Series(blank_phone)).then(None).otherwise(phone).alias("phone")).to_series()

    source_w = np.array(V.LEAD_SOURCE_WEIGHTS)
    source = rng.choice(len(V.LEAD_SOURCES), size=n, p=source_w / source_w.sum())
    owner = np.where(rng.random(n) < 0.85, comp.owner[np.maximum(company, 0)], rng.integers(0, n_reps, n))
    band = np.where(company >= 0, comp.band[np.maximum(company, 0)], 3)
    industry = np.where(company >= 0, comp.industry[np.maximum(company, 0)], 12)
    return _Contacts(
        n=n,
        company=company,
        first=first,
        last=last,
        first_ascii=first_ascii,
        last_ascii=last_ascii,
        seniority=seniority,
        title=title,
        source=source,
        owner=owner,
        country=country,
        city_code=city_code,
        band=band,
        industry=industry,
        email=email,
        phone=phone,
        pairs=[(int(s), int(d), str(k)) for s, d, k in zip(src, dup, kinds)],
    )


# ------------------------------------------------------------------------------------------ dirty rows
RULE_COLUMNS: dict[str, dict[str, list[str]]] = {
    "companies": {
        "required": ["name"],
        "date": ["created_at"],
        "money": ["annual_revenue"],
        "currency": ["revenue_currency"],
        "enum": ["size_band"],
        "duplicate_id": ["company_id"],
        "reference": ["parent_company_id"],
    },
    "contacts": {
        "required": ["lifecycle_status", "created_at"],
        "email": ["email"],
        "phone": ["phone"],
        "date": ["created_at", "lead_at", "updated_at"],
        "enum": ["seniority", "lifecycle_status"],
        "duplicate_id": ["contact_id"],
        "reference": ["company_id"],
    },
    "deals": {
        "required": ["title", "stage", "created_at"],
        "date": ["created_at", "expected_close_at"],
        "money": ["value"],
        "currency": ["currency"],
        "enum": ["stage"],
        "duplicate_id": ["deal_id"],
        "reference": ["company_id", "contact_id"],
    },
    "activities": {
        "required": ["type", "contact_id", "occurred_at"],
        "date": ["occurred_at"],
        "enum": ["type", "direction"],
        "duplicate_id": ["activity_id"],
        "reference": ["contact_id", "deal_id", "company_id"],
    },
    "attachments": {
        "required": ["activity_id", "file_name"],
        "duplicate_id": ["attachment_id"],
        "reference": ["activity_id"],
    },
}
# Each rule once somewhere, whatever the scale, so every validation path is exercised.
GUARANTEED = [
    ("required", "contacts"),
    ("email", "contacts"),
    ("phone", "contacts"),
    ("date", "activities"),
    ("money", "deals"),
    ("currency", "deals"),
    ("enum", "activities"),
    ("duplicate_id", "companies"),
    ("reference", "activities"),
]
BAD_VALUES = {
    "phone": ["call me", "12", "ask reception", "555", "+1 (415) CALL-NOW", "0000", "tbd - see email"],
    "date": ["2024-13-45", "yesterday", "31/31/2024", "2025-02-30", "next tuesday", "13/45/2025", "soon-ish"],
    "money": ["twelve grand", "12.5.0", "-2500.00", "-10", "1.2.3", "ten thousand"],
    "currency": ["DOLLARS", "XYZ", "QQQ", "ZZZ", "BUCKS"],
    "enum": ["banana", "purple", "zzz", "maybe later", "???"],
}
REFERENCED = {
    ("companies", "parent_company_id"): "companies",
    ("contacts", "company_id"): "companies",
    ("deals", "company_id"): "companies",
    ("deals", "contact_id"): "contacts",
    ("activities", "contact_id"): "contacts",
    ("activities", "deal_id"): "deals",
    ("activities", "company_id"): "companies",
    ("attachments", "activity_id"): "activities",
}


@dataclass
class _DirtyPlan:
    base: np.ndarray  # clean row each dirty row copies
    rule: list[str]
    column: list[str]
    value: list[str | None]
    final_base: np.ndarray = None  # clean row index of every physical row
    final_dirty: np.ndarray = None  # -1 for clean rows, else index into the plan


def _bad_email(email: str | None, rng: np.random.Generator) -> str:
    email = email or "jane.doe@example.com"
    local, _, domain = email.partition("@")
    options = [
        f"{local}@",
        f"{local.replace('.', ' ') or 'jane doe'} x@{domain}",
        f"{local}@@{domain}",
        f"{local}@{domain.split('.')[0]}",
        f"{local} at {domain}",
    ]
    return options[int(rng.integers(0, len(options)))]


def _plan_dirty(counts: dict[str, int], fraction: float, rng: np.random.Generator) -> dict[str, list]:
    total = sum(counts.values())
    n_dirty = int(round(fraction * total))
    picks: dict[str, list[str]] = {e: [] for e in counts}
    if fraction <= 0 or n_dirty == 0:
        return picks
    for rule, entity in GUARANTEED:
        if counts.get(entity, 0) > 0:
            picks[entity].append(rule)
    entities = [e for e in counts if counts[e] > 0]
    weights = np.array([counts[e] for e in entities], dtype=np.float64)
    extra = max(0, n_dirty - len(GUARANTEED))
    chosen = rng.choice(len(entities), size=extra, p=weights / weights.sum())
    rule_draw = rng.random(extra)
    for e, u in zip(chosen, rule_draw):
        rules = list(RULE_COLUMNS[entities[e]])
        picks[entities[e]].append(rules[int(u * len(rules))])
    return picks


def _dirty_plan(
    entity: str, rules: list[str], n_clean: int, emails: pl.Series | None, rng: np.random.Generator
) -> _DirtyPlan:
    base = rng.integers(0, n_clean, len(rules))
    columns, values = [], []
    prefix, width = ID_PREFIX[entity]
    for rule, b in zip(rules, base):
        column = RULE_COLUMNS[entity][rule][int(rng.integers(0, len(RULE_COLUMNS[entity][rule])))]
        if rule == "required" or rule == "duplicate_id":
            value = None
        elif rule == "email":
            value = _bad_email(emails[int(b)] if emails is not None else None, rng)
        elif rule == "reference":
            target = REFERENCED[(entity, column)]
            t_prefix, t_width = ID_PREFIX[target]
            value = t_prefix + str(9 * 10 ** (t_width - 1) + int(rng.integers(0, 10 ** (t_width - 1))))
        else:
            options = BAD_VALUES[rule]
            value = options[int(rng.integers(0, len(options)))]
        columns.append(column)
        values.append(value)
    plan = _DirtyPlan(base=base, rule=list(rules), column=columns, value=values)
    # Physical order: a dirty row goes after a random clean row; a repeated id goes after its original.
    after = np.array(
        [
            int(rng.integers(b, n_clean)) if r == "duplicate_id" else int(rng.integers(-1, n_clean))
            for r, b in zip(rules, base)
        ],
        dtype=np.int64,
    )
    primary = np.r_[2 * np.arange(n_clean) + 1, 2 * after + 2]
    secondary = np.r_[np.zeros(n_clean, np.int64), np.arange(len(rules))]
    order = np.lexsort((secondary, primary))
    plan.final_base = np.r_[np.arange(n_clean), base][order]
    plan.final_dirty = np.r_[np.full(n_clean, -1), np.arange(len(rules))][order]
    return plan


def _apply_dirty(
    frame: pl.DataFrame, dirty_idx: np.ndarray, plan: _DirtyPlan, entity: str, first_new_id: int
) -> pl.DataFrame:
    """Overwrite the dirty rows of a chunk: a fresh id (unless the rule is a repeated id) and one bad value."""
    pos = np.flatnonzero(dirty_idx >= 0)
    if len(pos) == 0:
        return frame
    which = dirty_idx[pos]
    id_col = ID_COLUMN[entity]
    fresh = np.array([plan.rule[k] != "duplicate_id" for k in which])
    updates = {}
    if fresh.any():
        new_ids = _id_series(entity, first_new_id + which[fresh], id_col)
        updates[id_col] = frame[id_col].scatter(pos[fresh], new_ids)
    by_column: dict[str, tuple[list[int], list]] = {}
    for p, k in zip(pos, which):
        if plan.rule[k] == "duplicate_id":
            continue
        rows, vals = by_column.setdefault(plan.column[k], ([], []))
        rows.append(int(p))
        vals.append(plan.value[k])
    for column, (rows, vals) in by_column.items():
        series = updates.get(column, frame[column])
        updates[column] = series.scatter(rows, pl.Series(vals, dtype=pl.String))
    return frame.with_columns(**updates)


def _dirty_truth(entity: str, plan: _DirtyPlan, clean_ids: pl.Series, first_new_id: int) -> pl.DataFrame:
    pos = np.flatnonzero(plan.final_dirty >= 0)
    which = plan.final_dirty[pos]
    repeated = np.array([plan.rule[k] == "duplicate_id" for k in which], dtype=bool)
    fresh_ids = _id_series(entity, first_new_id + which, "x")
    base_ids = clean_ids.gather(plan.base[which]) if len(which) else fresh_ids
    record = pl.select(pl.when(pl.Series(repeated)).then(base_ids).otherwise(fresh_ids)).to_series()
    return pl.DataFrame(
        {
            "entity": [entity] * len(pos),
            "source_file": [f"{entity}.csv"] * len(pos),
            "line": (pos + 2).astype(np.int64),
            "record_id": record,
            "column": [
                ID_COLUMN[entity] if plan.rule[k] == "duplicate_id" else plan.column[k] for k in which
            ],
            "rule": [plan.rule[k] for k in which],
        },
        schema={
            "entity": pl.String,
            "source_file": pl.String,
            "line": pl.Int64,
            "record_id": pl.String,
            "column": pl.String,
            "rule": pl.String,
        },
    )


# ------------------------------------------------------------------------------------------ text
def _template_table():
    """Flat list of text fragments (each ending in a space, or empty) and the offset of every section."""
    fragments: list[str] = [""]
    sections: dict[object, tuple[int, int]] = {}

    def add(key, items):
        sections[key] = (len(fragments), len(items))
        fragments.extend(f"{x} " if x else "" for x in items)

    for key, items in V.OPENERS.items():
        add(key, items)
    add(POSITIVE, V.POSITIVE_SIGNALS)
    add(NEGATIVE, V.NEGATIVE_SIGNALS)
    add(NEUTRAL, V.NEUTRAL_SENTENCES)
    add(POST_CONVERTED, V.POST_CONVERTED)
    add(POST_DISQUALIFIED, V.POST_DISQUALIFIED)
    add(POST_WON, V.POST_WON)
    add(POST_LOST, V.POST_LOST)
    add("closer", V.CLOSERS)
    for t, items in V.SUBJECTS.items():
        add(("subject", t), items)
    add(("subject", "post+"), V.POST_SUBJECTS_POSITIVE)
    add(("subject", "post-"), V.POST_SUBJECTS_NEGATIVE)
    return pl.Series("fragment", fragments, dtype=pl.String), sections


FRAGMENTS, SECTIONS = _template_table()


def _section_pick(keys: np.ndarray, key_of: list, rng: np.random.Generator) -> np.ndarray:
    """For each row, a random fragment index from the section named by ``key_of[keys[row]]``."""
    start = np.array([SECTIONS[k][0] for k in key_of])
    size = np.array([SECTIONS[k][1] for k in key_of])
    return start[keys] + (rng.random(len(keys)) * size[keys]).astype(np.int64)


@dataclass
class _ActivityText:
    type: np.ndarray
    direction: np.ndarray
    opener: np.ndarray
    sentence: np.ndarray
    detail: np.ndarray
    closer: np.ndarray
    subject: np.ndarray
    day: np.ndarray
    minutes: np.ndarray


def _activity_text_plan(acts: _Activities, rng: np.random.Generator) -> _ActivityText:
    n = len(acts.t)
    post = acts.group % 2 == 1
    pre_p = np.array([[0.45, 0.25, 0.12, 0.13, 0.05], [0.33, 0.20, 0.20, 0.10, 0.17]])
    u = rng.random(n)
    cum_lead, cum_deal = np.cumsum(pre_p[0]), np.cumsum(pre_p[1])
    cum_post = np.cumsum([0.35, 0.15, 0.2, 0.3, 0.0])
    kind = np.where(
        post,
        np.searchsorted(cum_post, u * cum_post[-1]),
        np.where(acts.group == 2, np.searchsorted(cum_deal, u), np.searchsorted(cum_lead, u)),
    )
    kind = np.minimum(kind, 4).astype(np.int8)
    inbound_p = np.array([0.35, 0.25, 0.15, 0.0, 0.0])[kind]
    direction = np.where(kind == 3, 2, np.where(rng.random(n) < inbound_p, 0, 1)).astype(np.int8)
    opener_keys = list(V.OPENERS)
    key_index = {k: i for i, k in enumerate(opener_keys)}
    combo = np.full((5, 3), 0)
    for (t, d), i in key_index.items():
        combo[V.ACTIVITY_TYPES.index(t), V.DIRECTIONS.index(d)] = i
    opener = _section_pick(combo[kind, direction], opener_keys, rng)
    cat_keys = [NEUTRAL, POSITIVE, NEGATIVE, POST_CONVERTED, POST_DISQUALIFIED, POST_WON, POST_LOST]
    sentence = _section_pick(acts.cat.astype(np.int64), cat_keys, rng)
    sentence = np.where((acts.cat == NEUTRAL) & (rng.random(n) < 0.3), 0, sentence)
    detail = np.where(~post & (rng.random(n) < 0.35), _section_pick(np.zeros(n, np.int64), [NEUTRAL], rng), 0)
    closer = np.where(post, 0, _section_pick(np.zeros(n, np.int64), ["closer"], rng))
    subject_keys = [("subject", t) for t in V.ACTIVITY_TYPES] + [("subject", "post+"), ("subject", "post-")]
    subj_key = np.where(post, np.where(np.isin(acts.cat, [POST_CONVERTED, POST_WON]), 5, 6), kind)
    subject = _section_pick(subj_key, subject_keys, rng)
    # Notes have no subject line in most CRMs.
    subject = np.where((kind == 3) & (rng.random(n) < 0.5), 0, subject)
    return _ActivityText(
        type=kind,
        direction=direction,
        opener=opener,
        sentence=sentence,
        detail=detail,
        closer=closer,
        subject=subject,
        day=rng.integers(0, len(V.DAYS), n),
        minutes=rng.integers(0, len(V.MINUTES), n),
    )


def _fill_slots(expr: pl.Expr) -> pl.Expr:
    for slot in ("person", "company", "product", "rep", "day", "minutes"):
        expr = expr.str.replace_all("{" + slot + "}", pl.col(f"_{slot}"), literal=True)
    return expr


# ------------------------------------------------------------------------------------------ export
def _tags(n: int, vocabulary: list[str], p_counts: list[float], rng: np.random.Generator) -> pl.Series:
    k = rng.choice(3, size=n, p=p_counts)
    a = rng.integers(0, len(vocabulary), n)
    b = (a + 1 + rng.integers(0, len(vocabulary) - 1, n)) % len(vocabulary)
    voc = pl.Series(vocabulary)
    frame = pl.DataFrame({"k": k, "a": voc.gather(a), "b": voc.gather(b)})
    return frame.select(
        pl.when(pl.col("k") == 0)
        .then(None)
        .when(pl.col("k") == 1)
        .then(pl.col("a"))
        .otherwise(pl.col("a") + ";" + pl.col("b"))
        .alias("tags")
    ).to_series()


def _slot_notes(
    n: int,
    templates: list[str],
    fill: float,
    slots: dict[str, pl.Series],
    rng: np.random.Generator,
    name: str,
) -> pl.Series:
    idx = rng.integers(0, len(templates), n)
    frame = pl.DataFrame(
        {
            "t": pl.Series(templates).gather(idx),
            "on": rng.random(n) < fill,
            **{f"_{k}": v for k, v in slots.items()},
        }
    )
    expr = pl.col("t")
    for k in slots:
        expr = expr.str.replace_all("{" + k + "}", pl.col(f"_{k}"), literal=True)
    return frame.select(pl.when(pl.col("on")).then(expr).otherwise(None).alias(name)).to_series()


def _rank_ids(entity: str, order_key: np.ndarray, name: str) -> tuple[np.ndarray, pl.Series]:
    """Ids numbered in ``order_key`` order (creation time), as CRMs assign them; returns (number, id) per row."""
    order = np.argsort(order_key, kind="stable")
    number = np.empty(len(order_key), np.int64)
    number[order] = np.arange(1, len(order_key) + 1)
    return number, _id_series(entity, number, name)


def _nullable_ids(ids: pl.Series, index: np.ndarray, name: str) -> pl.Series:
    out = ids.gather(np.maximum(index, 0)).alias(name)
    return pl.select(pl.when(pl.Series(index >= 0)).then(out).otherwise(None).alias(name)).to_series()


def _write_entity(
    path: Path,
    entity: str,
    clean: pl.DataFrame | None,
    n_clean: int,
    plan: _DirtyPlan,
    build: Callable[[np.ndarray], pl.DataFrame] | None = None,
) -> int:
    first_new_id = n_clean + 1
    rows = len(plan.final_base)
    if clean is not None:
        frame = clean[plan.final_base]
        frame = _apply_dirty(frame, plan.final_dirty, plan, entity, first_new_id)
        frame.write_csv(path)
        return rows
    with open(path, "wb") as fh:
        for start in range(0, max(rows, 1), ACTIVITY_CHUNK):
            stop = min(rows, start + ACTIVITY_CHUNK)
            frame = build(plan.final_base[start:stop])
            frame = _apply_dirty(frame, plan.final_dirty[start:stop], plan, entity, first_new_id)
            frame.write_csv(fh, include_header=start == 0)
    return rows


SIZE_NAMES = ["smb", "mid_market", "enterprise"]
STATUS_NAMES = ["lead", "qualified", "customer", "disqualified"]
STAGE_PROBABILITY = [0.1, 0.2, 0.5, 0.7, 1.0, 0.0]
FILE_KIND_ALLOCATION = {"pdf": 200, "md": 100, "csv": 100, "txt": 100}


def generate_export(
    out_dir: str | Path,
    n_contacts: int = 2000,
    seed: int = 0,
    truth_dir: str | Path | None = None,
    as_of: datetime | None = None,
    dirty_fraction: float = 0.008,
    duplicate_fraction: float = 0.02,
    with_attachment_files: bool = True,
    attachment_fact_counts: dict[str, int] | None = None,
    progress: Callable[[str], None] | None = None,
) -> SynthSummary:
    """Write a realistic CRM export (generic profile) to ``out_dir`` and its hidden truth to ``truth_dir``.

    Deterministic by ``seed``; ``as_of`` (default 2026-10-31T00:00Z) is the export date, and the data
    covers about two years before it. ``truth_dir`` defaults to ``<out_dir>/../truth``.
    """
    started = time.perf_counter()
    say = progress or (lambda message: None)
    if n_contacts < 10:
        raise ValueError("n_contacts must be at least 10")
    out = Path(out_dir)
    truth = Path(truth_dir) if truth_dir is not None else out.parent / "truth"
    as_of = as_of or DEFAULT_AS_OF
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)
    as_of_s = int(as_of.timestamp())
    out.mkdir(parents=True, exist_ok=True)
    truth.mkdir(parents=True, exist_ok=True)
    if (out / "attachments").exists():
        shutil.rmtree(out / "attachments")
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(12)]

    say(f"drawing {n_contacts} contacts, their companies and sales team")
    reps = _build_reps(n_contacts, rngs[0])
    comp = _build_companies(n_contacts, duplicate_fraction, len(reps), rngs[1])
    ct = _build_contacts(n_contacts, comp, len(reps), duplicate_fraction, rngs[2])
    say("simulating lead and deal histories and their true outcomes")
    world = _simulate(ct, comp, as_of_s, rngs[3])
    acts = world.acts
    rng = rngs[4]

    # Companies exist a little before their first contact; duplicate records were created later.
    big = np.iinfo(np.int64).max
    first_seen = np.full(comp.n, big, dtype=np.int64)
    has = ct.company >= 0
    np.minimum.at(first_seen, ct.company[has], world.created[has])
    earliest = as_of_s - (SPAN_DAYS + 60) * DAY
    comp_created = np.where(
        first_seen < big,
        first_seen - (rng.random(comp.n) * 60 * DAY).astype(np.int64),
        _uniform_between(np.full(comp.n, earliest), np.full(comp.n, as_of_s - DAY), rng),
    )
    comp_created = np.maximum(comp_created, earliest)
    dup_rows = np.flatnonzero(comp.dup_source >= 0)
    comp_created[dup_rows] = np.minimum(
        comp_created[comp.dup_source[dup_rows]]
        + ((30 + rng.random(len(dup_rows)) * 270) * DAY).astype(np.int64),
        as_of_s - DAY,
    )
    comp_created = _snap_business_hours(comp_created, rng)

    comp_num, company_ids = _rank_ids("companies", comp_created, "company_id")
    con_num, contact_ids = _rank_ids("contacts", world.created, "contact_id")
    deal_num, deal_ids = _rank_ids("deals", world.deal_created, "deal_id")
    rep_names = pl.Series("owner", reps)
    rep_first = pl.Series([r.split(" ")[0] for r in reps])
    geo = V.GEOGRAPHY

    say("composing companies, contacts and deals")
    comp_order = np.argsort(comp_num)
    band_str = pl.Series(SIZE_NAMES).gather(comp.band)
    currency_of_country = pl.Series([g[2] for g in geo])
    city_series = pl.Series(CITIES).gather(comp.city_code)
    companies = pl.DataFrame(
        {
            "company_id": company_ids,
            "name": pl.Series(comp.name, dtype=pl.String),
            "domain": pl.Series(comp.domain, dtype=pl.String),
            "industry": pl.Series(V.INDUSTRIES).gather(comp.industry),
            "employees": pl.Series(comp.employees).cast(pl.String),
            "size_band": pl.select(pl.when(pl.Series(rng.random(comp.n) < 0.85)).then(band_str)).to_series(),
            "annual_revenue": _money(comp.revenue, "annual_revenue", comp.revenue_valid),
            "revenue_currency": pl.select(
                pl.when(pl.Series(comp.revenue_valid)).then(currency_of_country.gather(comp.country))
            ).to_series(),
            "region": pl.Series([g[1] for g in geo]).gather(comp.country),
            "country": pl.Series([g[0] for g in geo]).gather(comp.country),
            "city": city_series,
            "parent_company_id": _nullable_ids(company_ids, comp.parent, "parent_company_id"),
            "tags": _tags(comp.n, V.COMPANY_TAGS, [0.6, 0.3, 0.1], rng),
            "notes": _slot_notes(comp.n, V.COMPANY_NOTES, 0.25, {"city": city_series}, rng, "notes"),
            "created_at": _iso(comp_created, "created_at"),
            "account_tier": pl.Series(V.ACCOUNT_TIERS).gather(
                np.clip(2 - comp.band + (rng.random(comp.n) < 0.2) * rng.integers(-1, 2, comp.n), 0, 2)
            ),
        }
    )[comp_order]

    # Contacts: lifecycle dates and the last time anything happened to them.
    n = ct.n
    last_touch = world.created.copy()
    np.maximum.at(last_touch, acts.contact, acts.t)
    updated = np.maximum(last_touch, np.where(world.closed, world.end, world.qualified_at))
    updated = np.minimum(np.maximum(updated, world.created), as_of_s - 60)
    status = world.status
    comp_safe = np.maximum(ct.company, 0)
    band_names = pl.Series(["SMB", "Mid-Market", "Enterprise", "Individual"]).gather(ct.band)
    region = pl.Series([g[1] for g in geo]).gather(ct.country)
    budget_amount = (
        np.round(
            np.array([25_000, 90_000, 300_000, 10_000])[ct.band] * np.exp(rng.normal(0, 0.6, n)) / 1000
        ).astype(np.int64)
        * 1000
    )
    budget_amount = np.clip(budget_amount, 1000, 999_000)
    budget_style = rng.random(n)
    budget_frame = pl.DataFrame({"a": budget_amount, "s": budget_style, "on": rng.random(n) < 0.35})
    budget = budget_frame.select(
        pl.when(~pl.col("on"))
        .then(None)
        .when(pl.col("s") < 0.7)
        .then(pl.col("a").cast(pl.String) + ".00")
        .when(pl.col("s") < 0.9)
        .then(pl.lit("$") + (pl.col("a") // 1000).cast(pl.String) + ",000")
        .otherwise((pl.col("a") // 1000).cast(pl.String) + "k")
        .alias("budget")
    ).to_series()
    contacts = pl.DataFrame(
        {
            "contact_id": contact_ids,
            "first_name": ct.first,
            "last_name": ct.last,
            "full_name": pl.select(ct.first + " " + ct.last).to_series(),
            "email": ct.email,
            "phone": ct.phone,
            "title": ct.title,
            "seniority": pl.select(
                pl.when(pl.Series(rng.random(n) < 0.96)).then(pl.Series(V.SENIORITIES).gather(ct.seniority))
            ).to_series(),
            "company_id": _nullable_ids(company_ids, ct.company, "company_id"),
            "company_name": pl.select(
                pl.when(pl.Series(ct.company >= 0)).then(pl.Series(comp.name).gather(comp_safe))
            ).to_series(),
            "owner": rep_names.gather(ct.owner),
            "tags": _tags(n, V.CONTACT_TAGS, [0.55, 0.3, 0.15], rng),
            "notes": _slot_notes(
                n,
                V.CONTACT_NOTES,
                0.2,
                {
                    "event": pl.Series(V.EVENTS).gather(rng.integers(0, len(V.EVENTS), n)),
                    "city": pl.Series(CITIES).gather(ct.city_code),
                    "rep": rep_names.gather(ct.owner),
                },
                rng,
                "notes",
            ),
            "lifecycle_status": pl.Series(STATUS_NAMES).gather(status),
            "lead_at": _iso(world.created, "lead_at"),
            "qualified_at": _iso(world.qualified_at, "qualified_at", world.qualified_at >= 0),
            "customer_at": _iso(world.end, "customer_at", status == 2),
            "disqualified_at": _iso(world.end, "disqualified_at", status == 3),
            "created_at": _iso(world.created, "created_at"),
            "updated_at": _iso(updated, "updated_at"),
            "lead_source": pl.Series(V.LEAD_SOURCES).gather(ct.source),
            "budget": budget,
            "segment": pl.select(
                pl.when(pl.Series(ct.company >= 0))
                .then(band_names + " - " + region)
                .otherwise(pl.lit("Individual"))
            ).to_series(),
        }
    )[np.argsort(con_num)]

    # Deals.
    nd = len(world.deal_contact)
    dc = world.deal_contact
    d_company = ct.company[dc]
    deal_owner = np.where(rng.random(nd) < 0.9, ct.owner[dc], rng.integers(0, len(reps), nd))
    product_names = pl.Series(V.PRODUCTS)
    title_idx = rng.integers(0, len(V.DEAL_TITLE_PATTERNS), nd)
    title_frame = pl.DataFrame(
        {
            "t": pl.Series(V.DEAL_TITLE_PATTERNS).gather(title_idx),
            "company": pl.Series(comp.root).gather(np.maximum(d_company, 0)),
            "product": product_names.gather(world.deal_product),
        }
    )
    deal_title = title_frame.select(
        pl.col("t")
        .str.replace("{company}", pl.col("company"), literal=True)
        .str.replace("{product}", pl.col("product"), literal=True)
    ).to_series()
    forecast = np.where(
        world.deal_stage == 4,
        "closed",
        np.where(
            world.deal_stage == 5,
            "omitted",
            np.where(
                world.deal_stage == 3, "commit", np.where(world.deal_stage == 2, "best_case", "pipeline")
            ),
        ),
    )
    discount = np.where(rng.random(nd) < 0.6, 0, rng.integers(5, 26, nd))
    deals = pl.DataFrame(
        {
            "deal_id": deal_ids,
            "title": deal_title,
            "company_id": _nullable_ids(company_ids, d_company, "company_id"),
            "contact_id": contact_ids.gather(dc),
            "value": _money(world.deal_value, "value"),
            "currency": pl.Series(CURRENCIES).gather(world.deal_currency),
            "stage": pl.Series(DEAL_STAGES).gather(world.deal_stage),
            "probability": pl.Series(STAGE_PROBABILITY).gather(world.deal_stage).cast(pl.String),
            "owner": rep_names.gather(deal_owner),
            "product": product_names.gather(world.deal_product),
            "created_at": _iso(world.deal_created, "created_at"),
            "stage_changed_at": _iso(world.deal_stage_changed, "stage_changed_at"),
            "expected_close_at": _iso(
                world.deal_created
                + (world.deal_planned * DAY * np.exp(rng.normal(0, 0.3, nd))).astype(np.int64),
                "expected_close_at",
            ),
            "closed_at": _iso(world.deal_end, "closed_at", world.deal_closed),
            "forecast_category": pl.Series(forecast.astype(str)),
            "discount_pct": pl.Series(discount).cast(pl.String),
        }
    )[np.argsort(deal_num)]

    say(f"composing {len(acts.t)} activities")
    order = np.argsort(acts.t, kind="stable")
    a_contact, a_deal, a_t, a_cat = acts.contact[order], acts.deal[order], acts.t[order], acts.cat[order]
    a_group = acts.group[order]
    sorted_acts = _Activities(contact=a_contact, deal=a_deal, t=a_t, cat=a_cat, group=a_group)
    text = _activity_text_plan(sorted_acts, rng)
    na = len(a_t)
    activity_ids = _id_series("activities", np.arange(1, na + 1), "activity_id")
    a_owner = np.where(a_deal >= 0, deal_owner[np.maximum(a_deal, 0)], ct.owner[a_contact])
    interest = rng.integers(0, len(V.PRODUCTS), n)
    a_product = np.where(a_deal >= 0, world.deal_product[np.maximum(a_deal, 0)], interest[a_contact])
    company_label = pl.Series(comp.root + ["the client"])
    type_names, dir_names = pl.Series(V.ACTIVITY_TYPES), pl.Series(V.DIRECTIONS)
    day_names, minute_names = pl.Series(V.DAYS), pl.Series(V.MINUTES)

    def build_activities(idx: np.ndarray) -> pl.DataFrame:
        c, d = a_contact[idx], a_deal[idx]
        comp_idx = ct.company[c]
        frame = pl.DataFrame(
            {
                "activity_id": activity_ids.gather(idx),
                "type": type_names.gather(text.type[idx]),
                "contact_id": contact_ids.gather(c),
                "deal_id": _nullable_ids(deal_ids, d, "deal_id"),
                "company_id": _nullable_ids(company_ids, comp_idx, "company_id"),
                "occurred_at": _iso(a_t[idx], "occurred_at"),
                "direction": dir_names.gather(text.direction[idx]),
                "_subject": FRAGMENTS.gather(text.subject[idx]),
                "_o": FRAGMENTS.gather(text.opener[idx]),
                "_s": FRAGMENTS.gather(text.sentence[idx]),
                "_d": FRAGMENTS.gather(text.detail[idx]),
                "_c": FRAGMENTS.gather(text.closer[idx]),
                "owner": rep_names.gather(a_owner[idx]),
                "_person": ct.first.gather(c),
                "_company": company_label.gather(np.where(comp_idx >= 0, comp_idx, comp.n)),
                "_product": product_names.gather(a_product[idx]),
                "_rep": rep_first.gather(a_owner[idx]),
                "_day": day_names.gather(text.day[idx]),
                "_minutes": minute_names.gather(text.minutes[idx]),
            }
        )
        body = _fill_slots(
            pl.concat_str([pl.col("_o"), pl.col("_s"), pl.col("_d"), pl.col("_c")])
        ).str.strip_chars()
        subject = _fill_slots(pl.col("_subject")).str.strip_chars()
        return frame.select(
            "activity_id",
            "type",
            "contact_id",
            "deal_id",
            "company_id",
            "occurred_at",
            "direction",
            pl.when(subject != "").then(subject).alias("subject"),
            body.alias("body"),
            "owner",
        )

    say("writing attachments")
    attach_p = np.array([0.04, 0.0, 0.08, 0.0, 0.8])[text.type]
    att_act = np.flatnonzero(rng.random(na) < attach_p)
    u = rng.random(len(att_act))
    t_att = text.type[att_act]
    file_kind = np.where(
        t_att == 4,
        np.where(u < 0.6, "pdf", "md"),
        np.where(t_att == 0, np.where(u < 0.6, "csv", "pdf"), np.where(u < 0.7, "txt", "md")),
    )
    att_dir = out / "attachments"
    if with_attachment_files and len(att_act):
        att_dir.mkdir(parents=True, exist_ok=True)
    file_name = np.empty(len(att_act), dtype=object)
    file_size = np.zeros(len(att_act), dtype=np.int64)
    for kind, allocation in FILE_KIND_ALLOCATION.items():
        members = np.flatnonzero(file_kind == kind)
        distinct = min(len(members), allocation)
        names, sizes = [], []
        for j in range(distinct):  # at most 500 files in all, whatever the scale
            a = att_act[members[j]]
            c, d = a_contact[a], a_deal[a]
            company = comp.name[ct.company[c]] if ct.company[c] >= 0 else "Independent"
            value, currency = (
                (f"{world.deal_value[d]:.2f}", CURRENCIES[world.deal_currency[d]])
                if d >= 0
                else ("12000.00", "USD")
            )
            fname, content = attachment_content(
                kind,
                j + 1,
                company,
                ct.first[int(c)] + " " + ct.last[int(c)],
                V.PRODUCTS[a_product[a]],
                value,
                currency,
                reps[a_owner[a]],
                V.DAYS[text.day[a]],
            )
            if with_attachment_files:
                (att_dir / fname).write_bytes(content)
            names.append(fname)
            sizes.append(len(content))
        if distinct:
            reuse = np.arange(len(members)) % distinct
            file_name[members] = np.array(names, dtype=object)[reuse]
            file_size[members] = np.array(sizes)[reuse]
    # Fact-bearing attachments of every kind (issue 16), on deal activities that have no other file: their
    # price, date, competitor and decision maker appear nowhere else; the truth lists them with a query.
    free = np.setdiff1d(np.flatnonzero(a_deal >= 0), att_act)
    hosts_idx = rngs[7].permutation(free)[:400]
    hosts = [
        {
            "activity_id": activity_ids[int(a)],
            "person": ct.first[int(a_contact[a])] + " " + ct.last[int(a_contact[a])],
            "company": comp.name[ct.company[a_contact[a]]]
            if ct.company[a_contact[a]] >= 0
            else "Independent",
            "product": V.PRODUCTS[a_product[a]],
            "rep": reps[a_owner[a]],
            "currency": CURRENCIES[world.deal_currency[a_deal[a]]],
        }
        for a in hosts_idx
    ]
    counts_by_kind = default_fact_counts() if attachment_fact_counts is None else attachment_fact_counts
    fact_rows, fact_truth = write_fact_attachments(
        rngs[7], hosts, counts_by_kind, att_dir if with_attachment_files else None
    )
    attachments = pl.DataFrame(
        {
            "attachment_id": _id_series(
                "attachments", np.arange(1, len(att_act) + len(fact_rows) + 1), "attachment_id"
            ),
            "activity_id": pl.concat(
                [
                    activity_ids.gather(att_act),
                    pl.Series([r["activity_id"] for r in fact_rows], dtype=pl.String),
                ]
            ),
            "file_name": pl.Series(file_name.tolist() + [r["file_name"] for r in fact_rows], dtype=pl.String),
            "media_type": pl.Series(
                [MEDIA_TYPES[k] for k in file_kind.tolist()] + [r["media_type"] for r in fact_rows],
                dtype=pl.String,
            ),
            "path": pl.select(
                pl.lit("attachments/")
                + pl.Series(file_name.tolist() + [r["file_name"] for r in fact_rows], dtype=pl.String)
            ).to_series(),
            "size_bytes": pl.Series(file_size.tolist() + [r["size_bytes"] for r in fact_rows]).cast(
                pl.String
            ),
        }
    )
    pl.DataFrame(
        fact_truth,
        schema={
            "activity_id": pl.String,
            "file_name": pl.String,
            "kind": pl.String,
            "fact": pl.String,
            "value": pl.String,
            "query": pl.String,
        },
    ).write_parquet(truth / "attachment_facts.parquet")

    say("planting dirty rows and writing the export files")
    clean_counts = {
        "companies": companies.height,
        "contacts": contacts.height,
        "deals": deals.height,
        "activities": na,
        "attachments": attachments.height,
    }
    picks = _plan_dirty(clean_counts, dirty_fraction, rngs[5])
    counts: dict[str, int] = {}
    dirty_frames = []
    frames = {"companies": companies, "contacts": contacts, "deals": deals, "attachments": attachments}
    for entity in ["companies", "contacts", "deals", "activities", "attachments"]:
        plan = _dirty_plan(
            entity,
            picks[entity],
            clean_counts[entity],
            contacts["email"] if entity == "contacts" else None,
            rngs[6],
        )
        path = out / f"{entity}.csv"
        if entity == "activities":
            counts[path.name] = _write_entity(path, entity, None, na, plan, build_activities)
            clean_id_col = activity_ids
        else:
            counts[path.name] = _write_entity(path, entity, frames[entity], clean_counts[entity], plan)
            clean_id_col = frames[entity][ID_COLUMN[entity]]
        dirty_frames.append(_dirty_truth(entity, plan, clean_id_col, clean_counts[entity] + 1))
        say(f"  {path.name}: {counts[path.name]} rows")

    say("writing the hidden truth")
    dirty_rows = pl.concat(dirty_frames)
    dirty_rows.write_csv(truth / "dirty_rows.csv")
    l_count, l_last, l_pos, l_neg = world.lead_features
    outcome_ts = pl.from_epoch(pl.Series(world.end), time_unit="s").dt.replace_time_zone("UTC")
    last_ts = pl.from_epoch(pl.Series(l_last), time_unit="s").dt.replace_time_zone("UTC")
    leads = pl.DataFrame(
        {
            "contact_id": contact_ids,
            "p_convert": world.p_convert,
            "p_convert_as_of_export": world.p_convert_now,
            "converted": pl.select(
                pl.when(pl.Series(world.closed)).then(pl.Series(world.converted))
            ).to_series(),
            "outcome_at": pl.select(pl.when(pl.Series(world.closed)).then(outcome_ts)).to_series(),
            "closed": world.closed,
            "lifecycle_status": pl.Series(STATUS_NAMES).gather(status),
            "n_activities_before": l_count,
            "last_activity_before_at": pl.select(pl.when(pl.Series(l_last >= 0)).then(last_ts)).to_series(),
            "positive_signals": l_pos.astype(np.int64),
            "negative_signals": l_neg.astype(np.int64),
            "industry": pl.Series(V.INDUSTRIES + [None]).gather(ct.industry),
            "seniority": pl.Series(V.SENIORITIES).gather(ct.seniority),
            "size_band": pl.Series(SIZE_NAMES + [None]).gather(ct.band),
            "lead_source": pl.Series(V.LEAD_SOURCES).gather(ct.source),
        }
    )[np.argsort(con_num)]
    leads.write_parquet(truth / "leads.parquet")
    # The reps' historical outreach under their known logging policy, for off-policy evaluation. Its own
    # random stream (child 12 of the seed), so every other table stays exactly as before.
    outreach, outreach_truth = outreach_log(
        leads.select("contact_id", "seniority", "industry", "lifecycle_status", "size_band").join(
            pl.DataFrame({"contact_id": contact_ids, "created_s": world.created}), on="contact_id"
        ),
        pl.DataFrame({"contact_id": contact_ids.gather(a_contact), "t": a_t}),
        as_of_s,
        np.random.default_rng(np.random.SeedSequence(seed).spawn(13)[12]),
    )
    (out / OUTREACH_DIR).mkdir(exist_ok=True)
    outreach.write_csv(out / OUTREACH_DIR / "outreach_log.csv")
    outreach_truth.write_parquet(truth / "outreach.parquet")
    d_count, d_last, d_pos, d_neg = world.deal_features
    d_end_ts = pl.from_epoch(pl.Series(world.deal_end), time_unit="s").dt.replace_time_zone("UTC")
    d_last_ts = pl.from_epoch(pl.Series(d_last), time_unit="s").dt.replace_time_zone("UTC")
    deals_truth = pl.DataFrame(
        {
            "deal_id": deal_ids,
            "contact_id": contact_ids.gather(dc),
            "p_win": world.p_win,
            "p_win_as_of_export": world.p_win_now,
            "won": pl.select(
                pl.when(pl.Series(world.deal_closed)).then(pl.Series(world.deal_won))
            ).to_series(),
            "closed_at": pl.select(pl.when(pl.Series(world.deal_closed)).then(d_end_ts)).to_series(),
            "stage": pl.Series(DEAL_STAGES).gather(world.deal_stage),
            "value_usd": world.deal_value_usd,
            "n_activities_before": d_count,
            "last_activity_before_at": pl.select(pl.when(pl.Series(d_last >= 0)).then(d_last_ts)).to_series(),
            "positive_signals": d_pos.astype(np.int64),
            "negative_signals": d_neg.astype(np.int64),
        }
    )[np.argsort(deal_num)]
    deals_truth.write_parquet(truth / "deals.parquet")
    pairs = pl.DataFrame(
        {
            "entity": ["contacts"] * len(ct.pairs) + ["companies"] * len(dup_rows),
            "id_a": [contact_ids[s] for s, _, _ in ct.pairs]
            + [company_ids[int(comp.dup_source[r])] for r in dup_rows],
            "id_b": [contact_ids[d] for _, d, _ in ct.pairs] + [company_ids[int(r)] for r in dup_rows],
            "kind": [k for _, _, k in ct.pairs] + [comp.dup_kind[r] for r in dup_rows],
        },
        schema={"entity": pl.String, "id_a": pl.String, "id_b": pl.String, "kind": pl.String},
    )
    pairs.write_csv(truth / "duplicate_pairs.csv")
    action_response_grid().write_parquet(truth / "action_response.parquet")
    manifest = {
        "seed": seed,
        "n_contacts": n_contacts,
        "as_of": as_of.strftime(ISO),
        "counts": counts,
        "clean_counts": {f"{k}.csv": v for k, v in clean_counts.items()},
        "dirty_rows": dirty_rows.height,
        "dirty_by_rule": {r: c for r, c in dirty_rows.group_by("rule").len().sort("rule").iter_rows()},
        "duplicate_pairs": {e: c for e, c in pairs.group_by("entity").len().sort("entity").iter_rows()},
        "closed_leads": int(world.closed.sum()),
        "converted_rate": float(world.converted[world.closed].mean()),
        "closed_deals": int(world.deal_closed.sum()),
        "win_rate": float(world.deal_won[world.deal_closed].mean()),
        "attachment_files": int(len(list(att_dir.glob("*")))) if att_dir.exists() else 0,
        "outreach_actions": outreach.height,
    }
    (truth / "manifest.json").write_text(json.dumps(manifest, indent=2))
    seconds = time.perf_counter() - started
    say(f"done in {seconds:.1f}s")
    return SynthSummary(
        out_dir=out,
        truth_dir=truth,
        counts=counts,
        dirty=dirty_rows.height,
        duplicate_pairs=pairs.height,
        seconds=seconds,
        clean_counts=clean_counts,
    )


def load_truth(truth_dir: str | Path) -> dict[str, pl.DataFrame]:
    """The hidden truth of a generated export: leads, deals, duplicate_pairs, dirty_rows, action_response."""
    root = Path(truth_dir)
    return {
        "leads": pl.read_parquet(root / "leads.parquet"),
        "deals": pl.read_parquet(root / "deals.parquet"),
        "duplicate_pairs": pl.read_csv(root / "duplicate_pairs.csv", infer_schema=False),
        "dirty_rows": pl.read_csv(
            root / "dirty_rows.csv", schema_overrides={"line": pl.Int64, "record_id": pl.String}
        ),
        "action_response": pl.read_parquet(root / "action_response.parquet"),
        **(
            {"outreach": pl.read_parquet(root / "outreach.parquet")}
            if (root / "outreach.parquet").exists()
            else {}
        ),
        **(
            {"attachment_facts": pl.read_parquet(root / "attachment_facts.parquet")}
            if (root / "attachment_facts.parquet").exists()
            else {}
        ),
    }
