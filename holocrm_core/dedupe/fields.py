"""Field kinds: how each identifying column is normalised, compared, weighted a priori and blocked on, for
every entity. ``company_fields`` / ``contact_fields`` type a table's columns (the canonical ones, then custom
``cf_*`` columns by ``identifier_kind``); ``field_comparator`` builds the comparator of one field."""

from __future__ import annotations

import re

import polars as pl

from holocrm_core.dedupe.compare import (
    DISAGREE,
    EXACT,
    SIMILAR,
    VERY_SIMILAR,
    CharGrams,
    Comparator,
    PersonNames,
    TokenIdf,
    _address_levels,
    _code_levels,
    _company_presence_levels,
    _idf_levels,
    _number_levels,
)
from holocrm_core.dedupe.normalise import _number

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
    # people: first and last name compared together (nicknames, swapped order) by Jaro-Winkler
    "first_name": ("same first name", (0.002, 0.05, 0.2, 0.75)),
    "last_name": ("same last name", (0.0005, 0.1, 0.15, 0.75)),
    # people use a second or personal address, so a different e-mail is weak evidence
    "email": ("same e-mail", (0.4, 0.001, 0.001, 0.6)),
    # the same name at another company is usually another person (or a job change: a new record); only one
    # record naming a company is a level of its own (duplicates rarely lose it)
    "company_ref": ("same company", (0.002, 0.001, 0.01, 0.99)),
    "title": ("same title", (0.2, 0.1, 0.1, 0.6)),
}

# Kinds whose exact agreement weighs by how common the agreed value is (term frequencies, see
# ``Comparator.with_term_frequencies``): names, e-mail, phones (a switchboard number shared by a whole
# company), the company of a contact (a large one), places, titles, identifiers and categories.
TERM_FREQUENCY_KINDS = frozenset(
    {
        "first_name",
        "last_name",
        "name",
        "company_name",
        "email",
        "phone",
        "company_ref",
        "address",
        "city",
        "postcode",
        "title",
        "identifier",
        "exact",
        "digits",
    }
)


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


def field_comparator(
    column: str,
    kind: str,
    normalised: list[str],
    label: str | None = None,
    persons: PersonNames | None = None,
) -> Comparator:
    """The comparator of one field of ``kind`` over its ``normalised`` values; ``persons``: the first and
    last names of the table, when it has both (first_name / last_name fields then compare row numbers)."""
    _, m_prior = FIELD_KINDS[kind]
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
    elif kind in ("first_name", "last_name") and persons is not None:
        function = persons.first if kind == "first_name" else persons.last
        reason[VERY_SIMILAR] = f"{label} " + (
            "matches (nickname or typo)" if kind == "first_name" else "nearly identical (typo)"
        )
        return Comparator(column, function=function, m_prior=m_prior, reason=reason, by_row=True)
    elif kind == "company_ref":
        function = _company_presence_levels
        reason[SIMILAR] = "only one record names a company"
    elif kind == "phone":
        reason[VERY_SIMILAR] = f"{label} differs by one digit"
        return Comparator(column, kind="phone", m_prior=m_prior, reason=reason)
    elif kind == "number":
        function = _number_levels
        reason[VERY_SIMILAR], reason[SIMILAR] = f"{label} within 5%", f"{label} within 20%"
    elif kind == "code":
        function = _code_levels
        reason[EXACT] = f"shares an identifier code ({label})"
    elif kind in ("chars", "company_chars"):
        return Comparator(
            column, function=CharGrams(normalised).levels, m_prior=m_prior, reason=reason, by_row=True
        )
    elif kind in ("postcode", "digits"):
        return Comparator(column, kind="digits", m_prior=m_prior, reason=reason)
    elif kind in ("city", "title", "first_name", "last_name"):
        return Comparator(column, kind="string", m_prior=m_prior, reason=reason)
    else:
        return Comparator(column, kind="exact", m_prior=m_prior, reason=reason)
    return Comparator(column, function=function, m_prior=m_prior, reason=reason)


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


CONTACT_FIELDS = {
    "first_name": "first_name",
    "last_name": "last_name",
    "email": "email",
    "phone": "phone",
    "company": "company_ref",  # the company id or the root of its name (normalise.contact_table)
    "title": "title",
}


def _typed_custom_fields(table: pl.DataFrame) -> dict[str, str]:
    fields = {}
    for column in table.columns:
        if column.startswith("cf_"):
            kind = identifier_kind(column, table.get_column(column).cast(pl.String).head(500).to_list())
            if kind:
                fields[column] = kind
    return fields


def contact_fields(contacts: pl.DataFrame) -> dict[str, str]:
    """The identifying fields of a contacts table: names, e-mail, phone, company, title, then custom ``cf_*``
    columns typed by ``identifier_kind`` (a customer number, an address, a date of birth ...).

    A custom column typed "number" only by its values (a budget, a score, an age) describes a person and
    does not identify one: it is left out (on the generated export a budget within 5% made two colleagues
    with the same first name one person: two false pairs of 400).
    """
    fields = {
        c: k
        for c, k in CONTACT_FIELDS.items()
        if c in contacts.columns and contacts.get_column(c).null_count() < len(contacts)
    }
    return fields | {c: k for c, k in _typed_custom_fields(contacts).items() if k != "number"}
