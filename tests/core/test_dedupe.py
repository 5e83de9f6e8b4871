"""Duplicate detection: candidate pairs with reasons, nickname / transposition / typo handling, merge proposals."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

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

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
FIRST = ["Olivia", "Liam", "Emma", "Noah", "Ava", "Lucas", "Mia", "Ethan", "Sofia", "Mateo", "Aiko", "Omar",
         "Priya", "Jonas", "Chloe", "Ivan", "Lena", "Kofi", "Hana", "Diego"]
LAST = ["Garcia", "Müller", "Kim", "Okafor", "Rossi", "Nguyen", "Silva", "Cohen", "Novak", "Larsen", "Tanaka",
        "Dubois", "Patel", "Kowalski", "Haddad", "Byrne", "Costa", "Ivanova", "Mensah", "Lindqvist"]
COMPANIES = [("co-1", "Acme Corp", "acme.com"), ("co-2", "Globex GmbH", "globex.de"),
             ("co-3", "Initech LLC", "initech.io"), ("co-4", "Umbrella Health", "umbrella.health")]


def _frame(entity: str, rows: list[dict]) -> pl.DataFrame:
    schema = ENTITIES[entity]
    return pl.DataFrame([{c: r.get(c) for c in schema} for r in rows], schema=schema)


def _contact(cid, first, last, company, title="Analyst", phone=None, email=None, **extra):
    domain = next(d for c, _, d in COMPANIES if c == company)
    return {"contact_id": cid, "first_name": first, "last_name": last, "full_name": f"{first} {last}",
            "email": email or f"{first.lower()}.{last.lower()}@{domain}", "phone": phone, "title": title,
            "company_id": company, "lifecycle_status": "lead", "created_at": T0, **extra}


@pytest.fixture(scope="module")
def crm():
    rows = []
    for i in range(60):  # background: distinct people spread over the companies
        rows.append(_contact(f"bg-{i:03d}", FIRST[i % 20], LAST[(i * 7 + i // 20) % 20], COMPANIES[i % 4][0],
                             title=["Analyst", "Manager", "Director", "Engineer"][i % 4],
                             phone=f"+4930{1000000 + i * 7919}"))
    rows += [
        _contact("ct-robert", "Robert", "Fischer", "co-1", "VP Sales", phone="+12125550101"),
        _contact("ct-bob", "Bob", "Fischer", "co-1", "VP Sales", email="bob.fischer@acme.com"),
        _contact("ct-maria", "Maria", "Jensen", "co-2", "Head of IT", phone="+49301234567"),
        _contact("ct-jensen", "Jensen", "Maria", "co-2", "Head of IT", phone="+49301234567",
                 email="jensen.maria@globex.de"),
        _contact("ct-katrin", "Katrin", "Schoenberg", "co-3", "CFO"),
        _contact("ct-katrin-typo", "Katrin", "Schonberg", "co-3", "CFO", email="katrin.schonberg@initech.io"),
        _contact("ct-paul", "Paul", "Weber", "co-4", "Nurse", email="paul.weber@umbrella.health"),
        _contact("ct-paul-gmail", "Paul", "Weber", "co-4", "Nurse", email="paul.weber@gmail.com"),
        # same name, other company, other role: a different person
        _contact("ct-anna-a", "Anna", "Schmidt", "co-1", "Engineer", phone="+12125550199"),
        _contact("ct-anna-b", "Anna", "Schmidt", "co-4", "Surgeon", phone="+493077777777"),
    ]
    contacts = _frame("contacts", rows)
    companies = _frame("companies", [
        {"company_id": c, "name": n, "domain": d, "industry": "software", "country": "Germany"} for c, n, d in COMPANIES
    ] + [
        {"company_id": "co-1-dup", "name": "ACME CORPORATION", "domain": "acme.com", "industry": "software",
         "country": "Germany"},
        {"company_id": "co-5", "name": "Acmeo Analytics", "domain": "acmeo.ai", "industry": "retail", "country": "France"},
    ] + [
        {"company_id": f"co-bg-{i}", "name": f"{LAST[i]} {['Labs', 'Logistics', 'Foods', 'Bank'][i % 4]}",
         "domain": f"{LAST[i].lower()}.example", "industry": ["retail", "finance", "energy"][i % 3],
         "country": ["France", "Spain", "Italy"][i % 3]} for i in range(20)
    ])
    deals = _frame("deals", [
        {"deal_id": "dl-1", "title": "Acme renewal", "contact_id": "ct-bob", "company_id": "co-1-dup", "stage": "proposal",
         "created_at": T0},
        {"deal_id": "dl-2", "title": "Acme upsell", "contact_id": "ct-robert", "company_id": "co-1", "stage": "won",
         "created_at": T0},
    ])
    activities = _frame("activities", [
        {"activity_id": f"ac-{i}", "type": "email", "contact_id": "ct-bob", "occurred_at": T0 + timedelta(days=i)}
        for i in range(3)
    ])
    return {"contacts": contacts, "companies": companies, "deals": deals, "activities": activities}


@pytest.fixture(scope="module")
def candidates(crm):
    return duplicate_candidates(crm["contacts"], crm["companies"])


def _pairs(candidates, entity_type):
    return {tuple(r) for r in candidates.filter(pl.col("entity_type") == entity_type).select("id_a", "id_b").rows()}


def test_normalisers():
    assert canonical_first_name("Bob") == canonical_first_name("robert") == "robert"
    assert company_root("ACME Corporation") == company_root("Acme Corp.") == "acme"
    assert phone_digits("+1 (212) 555-0101") == phone_digits("212.555.0101")[-9:]


def test_planted_contact_duplicates_are_found_with_reasons(candidates):
    pairs = _pairs(candidates, "contact")
    expected = {("ct-bob", "ct-robert"), ("ct-jensen", "ct-maria"), ("ct-katrin", "ct-katrin-typo"),
                ("ct-paul", "ct-paul-gmail")}
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
        "ct-bob", "ct-robert"]
    proposals = merge_proposals(candidates, crm["contacts"], crm["companies"], crm["deals"], crm["activities"])
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
