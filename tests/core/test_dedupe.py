"""Duplicate detection: candidate pairs with reasons, nickname / transposition / typo handling, merge proposals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from holocrm_core.dedupe import (
    canonical_first_name,
    clusters,
    company_root,
    duplicate_candidates,
    merge_proposals,
    phone_digits,
)
from holocrm_core.schema import ENTITIES

T0 = datetime(2025, 1, 1, tzinfo=UTC)
FIRST = [
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Ava",
    "Lucas",
    "Mia",
    "Ethan",
    "Sofia",
    "Mateo",
    "Aiko",
    "Omar",
    "Priya",
    "Jonas",
    "Chloe",
    "Ivan",
    "Lena",
    "Kofi",
    "Hana",
    "Diego",
]
LAST = [
    "Garcia",
    "Müller",
    "Kim",
    "Okafor",
    "Rossi",
    "Nguyen",
    "Silva",
    "Cohen",
    "Novak",
    "Larsen",
    "Tanaka",
    "Dubois",
    "Patel",
    "Kowalski",
    "Haddad",
    "Byrne",
    "Costa",
    "Ivanova",
    "Mensah",
    "Lindqvist",
]
COMPANIES = [
    ("co-1", "Acme Corp", "acme.com"),
    ("co-2", "Globex GmbH", "globex.de"),
    ("co-3", "Initech LLC", "initech.io"),
    ("co-4", "Umbrella Health", "umbrella.health"),
]


def _frame(entity: str, rows: list[dict]) -> pl.DataFrame:
    schema = ENTITIES[entity]
    return pl.DataFrame([{c: r.get(c) for c in schema} for r in rows], schema=schema)


def _contact(cid, first, last, company, title="Analyst", phone=None, email=None, **extra):
    domain = next(d for c, _, d in COMPANIES if c == company)
    return {
        "contact_id": cid,
        "first_name": first,
        "last_name": last,
        "full_name": f"{first} {last}",
        "email": email or f"{first.lower()}.{last.lower()}@{domain}",
        "phone": phone,
        "title": title,
        "company_id": company,
        "lifecycle_status": "lead",
        "created_at": T0,
        **extra,
    }


@pytest.fixture(scope="module")
def crm():
    rows = []
    for i in range(60):  # background: distinct people spread over the companies
        rows.append(
            _contact(
                f"bg-{i:03d}",
                FIRST[i % 20],
                LAST[(i * 7 + i // 20) % 20],
                COMPANIES[i % 4][0],
                title=["Analyst", "Manager", "Director", "Engineer"][i % 4],
                phone=f"+4930{1000000 + i * 7919}",
            )
        )
    rows += [
        _contact("ct-robert", "Robert", "Fischer", "co-1", "VP Sales", phone="+12125550101"),
        _contact("ct-bob", "Bob", "Fischer", "co-1", "VP Sales", email="bob.fischer@acme.com"),
        _contact("ct-maria", "Maria", "Jensen", "co-2", "Head of IT", phone="+49301234567"),
        _contact(
            "ct-jensen",
            "Jensen",
            "Maria",
            "co-2",
            "Head of IT",
            phone="+49301234567",
            email="jensen.maria@globex.de",
        ),
        _contact("ct-katrin", "Katrin", "Schoenberg", "co-3", "CFO"),
        _contact("ct-katrin-typo", "Katrin", "Schonberg", "co-3", "CFO", email="katrin.schonberg@initech.io"),
        _contact("ct-paul", "Paul", "Weber", "co-4", "Nurse", email="paul.weber@umbrella.health"),
        _contact("ct-paul-gmail", "Paul", "Weber", "co-4", "Nurse", email="paul.weber@gmail.com"),
        # same name, other company, other role: a different person
        _contact("ct-anna-a", "Anna", "Schmidt", "co-1", "Engineer", phone="+12125550199"),
        _contact("ct-anna-b", "Anna", "Schmidt", "co-4", "Surgeon", phone="+493077777777"),
    ]
    contacts = _frame("contacts", rows)
    companies = _frame(
        "companies",
        [
            {"company_id": c, "name": n, "domain": d, "industry": "software", "country": "Germany"}
            for c, n, d in COMPANIES
        ]
        + [
            {
                "company_id": "co-1-dup",
                "name": "ACME CORPORATION",
                "domain": "acme.com",
                "industry": "software",
                "country": "Germany",
            },
            {
                "company_id": "co-5",
                "name": "Acmeo Analytics",
                "domain": "acmeo.ai",
                "industry": "retail",
                "country": "France",
            },
        ]
        + [
            {
                "company_id": f"co-bg-{i}",
                "name": f"{LAST[i]} {['Labs', 'Logistics', 'Foods', 'Bank'][i % 4]}",
                "domain": f"{LAST[i].lower()}.example",
                "industry": ["retail", "finance", "energy"][i % 3],
                "country": ["France", "Spain", "Italy"][i % 3],
            }
            for i in range(20)
        ],
    )
    deals = _frame(
        "deals",
        [
            {
                "deal_id": "dl-1",
                "title": "Acme renewal",
                "contact_id": "ct-bob",
                "company_id": "co-1-dup",
                "stage": "proposal",
                "created_at": T0,
            },
            {
                "deal_id": "dl-2",
                "title": "Acme upsell",
                "contact_id": "ct-robert",
                "company_id": "co-1",
                "stage": "won",
                "created_at": T0,
            },
        ],
    )
    activities = _frame(
        "activities",
        [
            {
                "activity_id": f"ac-{i}",
                "type": "email",
                "contact_id": "ct-bob",
                "occurred_at": T0 + timedelta(days=i),
            }
            for i in range(3)
        ],
    )
    return {"contacts": contacts, "companies": companies, "deals": deals, "activities": activities}


@pytest.fixture(scope="module")
def candidates(crm):
    return duplicate_candidates(crm["contacts"], crm["companies"])


def _pairs(candidates, entity_type):
    return {
        tuple(r)
        for r in candidates.filter(pl.col("entity_type") == entity_type).select("id_a", "id_b").rows()
    }


def test_normalisers():
    assert canonical_first_name("Bob") == canonical_first_name("robert") == "robert"
    assert company_root("ACME Corporation") == company_root("Acme Corp.") == "acme"
    assert phone_digits("+1 (212) 555-0101") == phone_digits("212.555.0101")[-9:]


def test_planted_contact_duplicates_are_found_with_reasons(candidates):
    pairs = _pairs(candidates, "contact")
    expected = {
        ("ct-bob", "ct-robert"),
        ("ct-jensen", "ct-maria"),
        ("ct-katrin", "ct-katrin-typo"),
        ("ct-paul", "ct-paul-gmail"),
    }
    assert expected <= pairs
    assert pairs == expected  # and nothing else: background people and the two Anna Schmidts stay apart
    reasons = {tuple(r[:2]): r[2] for r in candidates.select("id_a", "id_b", "reasons").rows()}
    assert any("nickname" in x for x in reasons[("ct-bob", "ct-robert")])
    assert any("same company" in x for x in reasons[("ct-jensen", "ct-maria")])
    assert candidates.get_column("score").min() >= 0.9


def test_same_name_at_another_company_is_not_a_duplicate(candidates):
    assert ("ct-anna-a", "ct-anna-b") not in _pairs(candidates, "contact")


def test_company_suffix_and_case_variants_are_duplicates(candidates):
    pairs = _pairs(candidates, "company")
    assert ("co-1", "co-1-dup") in pairs
    assert not any("co-5" in p for p in pairs)


def test_clusters_and_merge_proposals_say_what_moves(crm, candidates):
    groups = clusters(candidates)
    assert groups.filter(pl.col("cluster_id") == "contact:ct-bob").get_column("entity_id").to_list() == [
        "ct-bob",
        "ct-robert",
    ]
    proposals = merge_proposals(
        candidates, crm["contacts"], crm["companies"], crm["deals"], crm["activities"]
    )
    bob = proposals.filter(pl.col("cluster_id") == "contact:ct-bob").row(0, named=True)
    # Robert has a phone (more fields filled): he survives, Bob's deal and 3 activities move to him
    assert bob["survivor_id"] == "ct-robert" and bob["merged_ids"] == ["ct-bob"]
    assert "1 deals" in bob["moves"] and "3 activities" in bob["moves"]
    assert bob["status"] == "proposed"
    acme = proposals.filter(pl.col("entity_type") == "company").row(0, named=True)
    assert acme["survivor_id"] == "co-1" and acme["merged_ids"] == ["co-1-dup"]
    assert acme["moves"] == "co-1-dup -> co-1: 1 deals re-pointed"
    # nothing was merged: the inputs are untouched
    assert crm["contacts"].height == 70


def test_empty_tables_give_empty_frames():
    empty = duplicate_candidates(_frame("contacts", []), _frame("companies", []))
    assert empty.is_empty() and "reasons" in empty.columns
    assert merge_proposals(empty, _frame("contacts", []), _frame("companies", [])).is_empty()


# ------------------------------------------------------------------------------------------ identifying fields
STREETS = ["Oak", "Pine", "Maple", "Cedar", "Elm", "Birch", "Walnut", "Spruce", "Willow", "Ash"]
DISHES = ["Noodle", "Taco", "Curry", "Pasta", "Burger", "Sushi", "Falafel", "Dumpling", "Pizza", "Kebab"]


def _places(extra: list[dict]) -> pl.DataFrame:
    """Restaurants in two cities: 40 distinct background places plus ``extra`` (phone and address set)."""
    rows = [
        {
            "company_id": f"pl-{i:02d}",
            "name": f"{DISHES[i % 10]} {['House', 'Corner', 'Kitchen', 'Bar'][i // 10]}",
            "phone": f"+1 212 555 {1000 + 37 * i}",
            "address": f"{10 + i} {STREETS[(3 * i) % 10]} Street",
            "city": ["New York", "Los Angeles"][i % 2],
            "country": "United States",
            "industry": "restaurants",
        }
        for i in range(40)
    ] + extra
    return _frame("companies", [{**r, "industry": "restaurants"} for r in rows])


def test_phone_and_address_decide_a_company_pair():
    companies = _places(
        [
            {
                "company_id": "r-star",
                "name": "Lucky Star Diner",
                "phone": "(310) 456-0488",
                "address": "12 Ocean Ave.",
                "city": "Santa Monica",
                "country": "United States",
            },
            {
                "company_id": "r-star-2",
                "name": "Lucky Star",
                "phone": "310/456-0488",
                "address": "12 Ocean Avenue",
                "city": "Santa Monica",
                "country": "United States",
            },
            # a chain: the same name at another phone and address is another restaurant
            {
                "company_id": "r-star-chain",
                "name": "Lucky Star Diner",
                "phone": "+1 718 555 0199",
                "address": "881 Flatbush Avenue",
                "city": "Brooklyn",
                "country": "United States",
            },
        ]
    )
    candidates = duplicate_candidates(None, companies)
    pairs = _pairs(candidates, "company")
    assert ("r-star", "r-star-2") in pairs
    assert not {("r-star", "r-star-chain"), ("r-star-2", "r-star-chain")} & pairs
    reasons = candidates.filter(pl.col("id_b") == "r-star-2").get_column("reasons").to_list()[0]
    assert any("same phone" in r for r in reasons) and any("address" in r for r in reasons)


def test_a_phone_mapped_on_companies_is_stored_in_e164():
    from holocrm_core.dedupe import e164

    assert e164("(310) 456-0488") == e164("+1 310 456 0488") == "+13104560488"
    assert e164("020 7946 0958", "United Kingdom") == "+442079460958"
    assert "phone" in ENTITIES["companies"] and "address" in ENTITIES["companies"]


def test_a_hub_name_does_not_chain_a_cluster():
    # "Grill" alone is contained in every "... Grill": without IDF and coherence it joined them all
    hub = [{"company_id": "g-hub", "name": "The Grill", "city": "Chicago", "country": "United States"}]
    words = ["Joe's", "Sam's", "Harbor", "Maple", "Lucky", "Golden"]
    grills = [
        {
            "company_id": "g-" + w.lower().replace("'", ""),
            "name": f"{w} Grill",
            "city": "Chicago",
            "country": "United States",
            "phone": f"+1 312 555 {2000 + k}",
            "address": f"{100 + k} {STREETS[k]} Road",
        }
        for k, w in enumerate(words)
    ]
    twins = [
        {
            "company_id": "g-joes-2",
            "name": "Joes Grill",
            "city": "Chicago",
            "country": "United States",
            "phone": "+1 312 555 2000",
            "address": "100 Oak Rd",
        }
    ]
    candidates = duplicate_candidates(None, _places(hub + grills + twins))
    groups = clusters(candidates)
    sizes = groups.group_by("cluster_id").len().get_column("len").to_list() if len(groups) else []
    assert max(sizes, default=0) <= 2
    assert ("g-joes", "g-joes-2") in _pairs(candidates, "company")
    assert not any("g-hub" in p for p in _pairs(candidates, "company"))


def test_the_is_a_stop_word_not_a_legal_suffix():
    assert company_root("The Corner Bistro, Inc.") == "corner bistro"
    assert company_root("Bistro the Corner") == "bistro corner"
    assert company_root("Siemens AG") == "siemens"


def test_coherent_clusters_keep_two_strong_groups_apart():
    import numpy as np

    from holocrm_core.dedupe import coherent_clusters

    # two triangles of sure duplicates and one borderline link between them
    pairs = np.array([[0, 1], [0, 2], [1, 2], [3, 4], [3, 5], [4, 5], [2, 3]])
    scores = np.array([0.99, 0.98, 0.99, 0.99, 0.97, 0.98, 0.93])
    labels = coherent_clusters(6, pairs, scores, min_score=0.9)
    assert len(set(labels[:3])) == 1 and len(set(labels[3:])) == 1 and labels[0] != labels[3]
    assert len(set(coherent_clusters(6, pairs, scores, min_score=0.9, max_size=2))) >= 3


def test_custom_fields_that_look_like_identifiers_are_typed_and_compared():
    from holocrm_core.dedupe import company_fields, identifier_kind

    assert identifier_kind("cf_vat_number", ["DE123"]) == "identifier"
    assert identifier_kind("cf_fax", ["+49 30 1"]) == "phone"
    assert identifier_kind("cf_zip_code", ["10115"]) == "postcode"
    assert identifier_kind("cf_seats", ["12", "40"]) == "number"
    assert identifier_kind("cf_favourite_colour", ["blue"]) is None
    base = _places([])
    tax = base.with_columns(pl.Series("cf_tax_id", [f"TX-{i:04d}" for i in range(len(base))]))
    assert company_fields(tax)["cf_tax_id"] == "identifier"
    twin = tax.filter(pl.col("company_id") == "pl-00").with_columns(
        pl.lit("pl-00-copy").alias("company_id"),
        pl.lit("Noodle House Restaurant").alias("name"),
        pl.lit(None, dtype=pl.String).alias("phone"),
        pl.lit(None, dtype=pl.String).alias("address"),
    )
    candidates = duplicate_candidates(None, pl.concat([tax, twin]))
    row = candidates.filter((pl.col("id_a") == "pl-00") & (pl.col("id_b") == "pl-00-copy"))
    assert len(row) == 1 and any("tax id" in r for r in row.get_column("reasons")[0])


def test_link_sources_pairs_records_across_two_exports_only():
    from holocrm_core.dedupe import link_sources

    left = _places([])
    right = left.head(10).with_columns(
        pl.concat_str([pl.lit("b-"), pl.col("company_id")]).alias("company_id"),
        pl.col("phone").str.replace_all(" ", "-"),
    )
    expected = {(f"pl-{i:02d}", f"b-pl-{i:02d}") for i in range(10)}
    for prior in ("candidates", "records"):  # the default, and the random-pair prior of one table
        pairs = link_sources(left, right, prior=prior)
        assert set(pairs.select("id_left", "id_right").rows()) == expected, prior
    with pytest.raises(ValueError, match="prior must be"):
        link_sources(left, right, prior="blocked")


def test_a_shared_customer_number_makes_contacts_duplicates(crm):
    """Contacts go through the typed-field engine: a custom identifier column counts. A double-barrelled
    married name, a private e-mail and another title alone stay below the threshold; the same customer
    number (from billing, filled on a third of the records) makes it the same person. The column must be
    filled on enough records to show that two records rarely share a number: on four filled values, two of
    which agree, the random-pair sample cannot tell an identifier from a category."""
    extra = [
        _contact("ct-priya", "Priya", "Raman", "co-3", "Buyer"),
        _contact("ct-priya-new", "Priya", "Raman-Iyer", "co-3", "Purchasing", email="priya@gmail.com"),
    ]
    contacts = pl.concat([crm["contacts"], _frame("contacts", extra)])
    numbers = [None] * len(contacts)
    for row in range(0, len(contacts) - 2, 3):
        numbers[row] = f"CUST-{10001 + row}"
    numbers[-2] = numbers[-1] = "CUST-88123"  # the planted shared customer number
    with_number = contacts.with_columns(pl.Series("cf_customer_number", numbers, dtype=pl.String))
    pair = ("ct-priya", "ct-priya-new")
    found = duplicate_candidates(with_number, crm["companies"])
    assert pair in _pairs(found, "contact")
    reasons = found.filter((pl.col("id_a") == pair[0]) & (pl.col("id_b") == pair[1])).get_column("reasons")[0]
    assert any("same customer number" in r for r in reasons)
    # without the number the two records are not proposed: the custom field decided
    assert pair not in _pairs(duplicate_candidates(contacts, crm["companies"]), "contact")


def test_nanp_phones_skip_the_parser_and_match_libphonenumber():
    import random

    import phonenumbers

    from holocrm_core.dedupe import e164

    rng = random.Random(7)
    numbers = [f"+1{rng.randint(2, 9)}{rng.randint(0, 10**9 - 1):09d}" for _ in range(300)]
    numbers += ["+12062279061;ext=647", "+11234567890", "+1206227906", "+442071234567"]
    for number in numbers:
        text = number.split(";ext=")[0]
        try:
            parsed = phonenumbers.parse(text, "US")
            expected = (
                phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
                if phonenumbers.is_possible_number(parsed)
                else phone_digits(text)
            )
        except phonenumbers.NumberParseException:
            expected = phone_digits(text)
        assert e164(number) == expected, number


def test_vectorised_levels_match_the_pair_by_pair_definitions():
    """The engine compares many pairs at once (sparse token overlap, rapidfuzz in bulk): the levels are
    those of the one-pair definitions (TokenIdf.cosine / contained_rare, edit distances)."""
    import random

    from rapidfuzz.distance import OSA

    from holocrm_core.dedupe.compare import (
        DISAGREE,
        EXACT,
        MISSING,
        SIMILAR,
        VERY_SIMILAR,
        TokenIdf,
        _idf_levels,
        _levels_digits,
    )

    rng = random.Random(3)
    words = ["acme", "zuni", "grill", "noodle", "house", "cafe", "bistro", "north", "star", "blue"]
    names = [" ".join(rng.sample(words, rng.randint(0, 3))) for _ in range(120)]
    names += ["acme grill", "acme grlil", "noodle house", "noodle house cafe"]
    idf = TokenIdf(names)
    a = [rng.choice(names) for _ in range(600)]
    b = [rng.choice(names) for _ in range(600)]
    a += ["acme grill", "noodle house"]
    b += ["acme grlil", "noodle house cafe"]

    def one(x, y):
        if not x or not y:
            return MISSING
        if x == y:
            return EXACT
        same_shape = len(x.split()) == len(y.split())
        typing = OSA.distance(x, y) <= (1 if min(len(x), len(y)) < 8 else 2)
        if (idf.cosine(x, y) >= 0.9 and same_shape) or typing:
            return VERY_SIMILAR
        return SIMILAR if idf.contained_rare(x, y) else DISAGREE

    assert _idf_levels(idf, 0.9, 0.6, typo=True)(a, b).tolist() == [
        one(x, y) for x, y in zip(a, b, strict=True)
    ]
    digits = ["", "19800512", "19801205", "19800513", "1980051", "4155550100", "4155550101", "4155551100"]
    pa = [rng.choice(digits) for _ in range(300)]
    pb = [rng.choice(digits) for _ in range(300)]

    def digit_level(x, y, phone):
        if not x or not y:
            return MISSING
        if x == y:
            return EXACT
        if (not phone or len(x) == len(y)) and OSA.distance(x, y) <= 1:
            return VERY_SIMILAR
        if phone:
            return DISAGREE
        if len(x) == len(y) == 8 and x[:4] == y[:4] and x[4:6] == y[6:8] and x[6:8] == y[4:6]:
            return VERY_SIMILAR
        return SIMILAR if OSA.distance(x, y) <= 2 else DISAGREE

    for phone in (False, True):
        expected = [digit_level(x, y, phone) for x, y in zip(pa, pb, strict=True)]
        assert _levels_digits(pa, pb, phone=phone).tolist() == expected


def test_key_blocks_give_every_pair_of_a_block_once_and_skip_big_blocks():
    import numpy as np

    from holocrm_core.dedupe.blocking import _pairs_from_key, unique_pairs

    keys = pl.Series(["a", "b", "a", None, "a", "c", "c", "", "b", "d", "d", "d", "d"])
    pairs = unique_pairs([_pairs_from_key(keys, max_block=3)], len(keys))
    expected = {(0, 2), (0, 4), (2, 4), (1, 8), (5, 6)}  # "d" has 4 rows: over the cap
    assert {tuple(p) for p in pairs.tolist()} == expected
    assert pairs.tolist() == sorted(pairs.tolist())
    assert unique_pairs([np.array([[3, 1], [1, 3], [2, 2]])], 4).tolist() == [[1, 3]]
