"""Value vocabularies shared by every source: currency codes and the synonyms CRMs use for our enums.

A source value is compared after normalisation (lower case, spaces, underscores, hyphens, dots and
slashes removed), so "Closed Won", "closed_won" and "closedwon" are one key. Profiles add their own
synonyms on top of these (see ``profiles.py``); a value that maps to nothing is quarantined with rule
``enum``.
"""

from __future__ import annotations

import re

from holocrm_core import schema

# Active ISO 4217 codes (2024 list) plus the common precious-metal/fund codes a finance export may carry.
ISO_4217 = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN BZD
    CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
    GEL GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW
    KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD
    NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE
    SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED
    VES VND VUV WST XAF XAG XAU XCD XCG XDR XOF XPD XPF XPT XSU XUA YER ZAR ZMW ZWG ZWL
    """.split()
)

_NORMALISE = re.compile(r"[\s_\-./()]+")


def normalise_value(value: str) -> str:
    """The comparison key of an enum value: "Closed Won" -> "closedwon"."""
    return _NORMALISE.sub("", value.strip().lower())


# Synonyms seen in Salesforce, HubSpot, Pipedrive and home-grown exports, keyed by normalised value.
_SYNONYMS: dict[tuple[str, str], dict[str, str]] = {
    ("deals", "stage"): {
        # Salesforce standard opportunity stages
        "prospecting": "prospecting",
        "qualification": "qualification",
        "needsanalysis": "qualification",
        "valueproposition": "qualification",
        "iddecisionmakers": "qualification",
        "perceptionanalysis": "qualification",
        "proposal": "proposal",
        "pricequote": "proposal",
        "proposalpricequote": "proposal",
        "negotiation": "negotiation",
        "review": "negotiation",
        "negotiationreview": "negotiation",
        "closedwon": "won",
        "closedlost": "lost",
        # HubSpot default pipeline (internal values and labels)
        "appointmentscheduled": "prospecting",
        "qualifiedtobuy": "qualification",
        "presentationscheduled": "proposal",
        "decisionmakerboughtin": "proposal",
        "contractsent": "negotiation",
        # generic words
        "lead": "prospecting",
        "new": "prospecting",
        "open": "prospecting",
        "discovery": "qualification",
        "qualified": "qualification",
        "engaging": "qualification",
        "quote": "proposal",
        "commit": "negotiation",
        "win": "won",
        "closewon": "won",
        "loss": "lost",
        "closelost": "lost",
    },
    ("contacts", "lifecycle_status"): {
        # HubSpot lifecycle stages; "other" is HubSpot's catch-all for contacts not yet in the funnel
        "subscriber": "lead",
        "lead": "lead",
        "other": "lead",
        "marketingqualifiedlead": "qualified",
        "mql": "qualified",
        "salesqualifiedlead": "qualified",
        "sql": "qualified",
        "opportunity": "qualified",
        "customer": "customer",
        "evangelist": "customer",
        # Salesforce lead status picklist
        "opennotcontacted": "lead",
        "workingcontacted": "lead",
        "closedconverted": "customer",
        "closednotconverted": "disqualified",
        # generic words
        "new": "lead",
        "prospect": "lead",
        "qualified": "qualified",
        "client": "customer",
        "won": "customer",
        "disqualified": "disqualified",
        "unqualified": "disqualified",
        "lost": "disqualified",
        "junk": "disqualified",
    },
    ("activities", "type"): {
        "email": "email",
        "emails": "email",
        "incomingemail": "email",
        "forwardedemail": "email",
        "mail": "email",
        "call": "call",
        "calls": "call",
        "phonecall": "call",
        "phone": "call",
        "meeting": "meeting",
        "meetings": "meeting",
        "event": "meeting",
        "note": "note",
        "notes": "note",
        "task": "note",
        "other": "note",
        "comment": "note",
        "proposal": "proposal",
        "quote": "proposal",
    },
    ("activities", "direction"): {
        "inbound": "inbound",
        "in": "inbound",
        "incoming": "inbound",
        "received": "inbound",
        "outbound": "outbound",
        "out": "outbound",
        "outgoing": "outbound",
        "sent": "outbound",
        "internal": "internal",
    },
    ("contacts", "seniority"): {
        "clevel": "c_level",
        "cxo": "c_level",
        "csuite": "c_level",
        "executive": "c_level",
        "owner": "c_level",
        "founder": "c_level",
        "vp": "vp",
        "vicepresident": "vp",
        "svp": "vp",
        "evp": "vp",
        "director": "director",
        "head": "director",
        "manager": "manager",
        "individual": "individual",
        "individualcontributor": "individual",
        "ic": "individual",
        "staff": "individual",
        "entry": "individual",
    },
    ("companies", "size_band"): {
        "smb": "smb",
        "small": "smb",
        "smallbusiness": "smb",
        "midmarket": "mid_market",
        "mid": "mid_market",
        "mm": "mid_market",
        "enterprise": "enterprise",
        "ent": "enterprise",
        "large": "enterprise",
    },
}


def enum_synonyms(entity: str, column: str) -> dict[str, str]:
    """Normalised source value -> canonical enum value, for one enum column (canonical values included)."""
    enum = schema.ENUMS[(entity, column)]
    table = {normalise_value(member.value): member.value for member in enum}
    table.update(_SYNONYMS.get((entity, column), {}))
    return table
