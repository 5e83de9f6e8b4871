"""Normalisation: every identifying value in the form it is compared in (folded names, nicknames, company
roots without legal suffixes, E.164 phones, address words, identifier keys), and the contact table the
engine links (one row per contact, canonical columns plus the custom ``cf_*`` ones)."""

from __future__ import annotations

import re

import polars as pl

from holocrm_core.folding import ascii_fold

# Common English given-name variants -> one canonical form; enough for CRM data, extend freely.
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
    names = set(
        [
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
        ]
    )
    return frozenset(ENGLISH_STOP_WORDS) - names


STOP_WORDS = _stop_words()
PARENT_WORDS = {"group", "holding", "holdings", "international", "global"}


def fold(text: str | None) -> str:
    """Lower case, accents removed, punctuation to spaces: "Lefèvre-Dubois, Inc." -> "lefevre dubois inc"."""
    if not text:
        return ""
    text = ascii_fold(str(text)).lower()
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


_NANP_E164 = re.compile(r"\+1[2-9]\d{9}")


def e164(phone: str | None, region: str | None = None) -> str:
    """A phone number in E.164 ("+13104560488") by Google's libphonenumber rules; numbers without a country
    code are read in ``region`` (ISO code or country name, default US). Unparseable: its last 9 digits."""
    if not phone:
        return ""
    import phonenumbers

    text = str(phone).split(";ext=")[0]
    if _NANP_E164.fullmatch(text):
        # +1, an area code (2-9) and 7 digits: libphonenumber returns it unchanged (no national prefix to
        # strip, a possible length; tests/core/test_dedupe.py compares), without its ~50 us parse
        return text
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


def _number(value) -> float | None:
    try:
        return float(re.sub(r"[^\d.\-eE]", "", str(value))) if value not in (None, "") else None
    except ValueError:
        return None


def _url_key(value: str | None) -> str:
    text = (value or "").strip().lower()
    text = re.sub(r"^[a-z]+://", "", text).removeprefix("www.")
    return text.rstrip("/")


def per_distinct(function, values: list) -> list:
    """``[function(v) for v in values]``, calling ``function`` once per distinct value."""
    cache: dict = {}
    return [cache[v] if v in cache else cache.setdefault(v, function(v)) for v in values]


def normalise_field(kind: str, values: list, regions: list | None = None) -> list[str]:
    """``values`` of one field in the form its kind compares (see ``fields.FIELD_KINDS``); each distinct
    value (phone: value and region) is normalised once."""
    if kind == "phone":
        regions = regions or [None] * len(values)
        return per_distinct(lambda vr: e164(*vr), list(zip(values, regions, strict=True)))
    return per_distinct(lambda v: _normalise_value(kind, v), values)


def _normalise_value(kind: str, v) -> str:
    if kind in ("company_name", "company_chars"):
        return company_root(v)
    if kind in ("name", "text"):
        return " ".join(name_tokens(v))
    if kind == "address":
        return " ".join(address_tokens(v))
    if kind in ("postcode", "digits"):
        return re.sub(r"[^0-9a-z]", "", fold(v))
    if kind == "email":
        return (v or "").strip().lower()
    if kind == "company_ref":  # already an id or a company root (contact_table)
        return v or ""
    if kind == "code":
        return " ".join(code_tokens(v))
    if kind == "identifier":
        return _url_key(v) if "." in str(v or "") else re.sub(r"[^0-9a-z]", "", fold(v))
    if kind == "number":
        return str(_number(v)) if _number(v) is not None else ""
    return fold(v)


def contact_table(contacts: pl.DataFrame, companies: pl.DataFrame | None = None) -> pl.DataFrame:
    """The contacts the engine links: ``contact_id``, first / last name (split from ``full_name`` when both
    are empty), e-mail, phone, ``company`` (the company id, else the root of the company name), title, and
    every custom ``cf_*`` column and ``country`` unchanged."""
    company_names = {}
    if companies is not None and not companies.is_empty():
        company_names = dict(
            zip(
                companies.get_column("company_id").to_list(),
                companies.get_column("name").to_list(),
                strict=True,
            )
        )

    def column(name: str) -> list:
        return contacts.get_column(name).to_list() if name in contacts.columns else [None] * len(contacts)

    firsts, lasts, full_names = column("first_name"), column("last_name"), column("full_name")
    company_ids, company_name_of = column("company_id"), column("company_name")
    folded = per_distinct(fold, firsts + lasts)
    roots: dict = {}
    out_first, out_last, out_company = [], [], []
    for k in range(len(contacts)):
        first, last = firsts[k] or "", lasts[k] or ""
        if not folded[k] and not folded[len(firsts) + k] and full_names[k]:
            parts = str(full_names[k]).split()
            first, last = (parts[0], " ".join(parts[1:])) if parts else ("", "")
        company = company_ids[k] or ""
        if not company:
            name = company_name_of[k] or company_names.get(company)
            company = roots[name] if name in roots else roots.setdefault(name, company_root(name))
        out_first.append(first)
        out_last.append(last)
        out_company.append(company)
    frame = pl.DataFrame(
        {
            "contact_id": pl.Series(column("contact_id"), dtype=pl.String),
            "first_name": pl.Series(out_first, dtype=pl.String),
            "last_name": pl.Series(out_last, dtype=pl.String),
            "email": pl.Series(column("email"), dtype=pl.String).fill_null(""),
            "phone": pl.Series(column("phone"), dtype=pl.String).fill_null(""),
            "company": pl.Series(out_company, dtype=pl.String),
            "title": pl.Series(column("title"), dtype=pl.String).fill_null(""),
        }
    )
    extra = [c for c in contacts.columns if c.startswith("cf_") or c == "country"]
    return pl.concat([frame, contacts.select(extra)], how="horizontal") if extra else frame
