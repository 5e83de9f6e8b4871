"""Small hand-built CRM tables in the staged shape, shared by the NLQ tests (as-of date 2026-10-31)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import polars as pl

from holocrm_core.schema import ACTIVITIES, COMPANIES, CONTACTS, DEALS

AS_OF = datetime(2026, 10, 31, tzinfo=UTC)


def _t(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC)


def _frame(rows: list[dict], schema: pl.Schema) -> pl.DataFrame:
    cols = {name: [r.get(name) for r in rows] for name in schema}
    return pl.DataFrame(cols, schema=schema)


def make_tables() -> dict[str, pl.DataFrame]:
    companies = [
        dict(
            company_id="co1",
            name="Acme Bank",
            industry="Financial Services",
            employees=5000,
            size_band="enterprise",
            region="EMEA",
            country="Germany",
        ),
        dict(
            company_id="co2",
            name="Globex Software",
            industry="Software",
            employees=300,
            size_band="mid_market",
            region="North America",
            country="United States",
        ),
        dict(
            company_id="co3",
            name="Initech",
            industry="Financial Services",
            employees=50,
            size_band="smb",
            region="North America",
            country="United States",
        ),
        dict(
            company_id="co4",
            name="Umbrella Health",
            industry="Healthcare",
            employees=2000,
            size_band="enterprise",
            region="APAC",
            country="Japan",
        ),
        dict(
            company_id="co5",
            name="Hooli",
            industry="Technology",
            employees=1500,
            size_band="enterprise",
            region="North America",
            country="United States",
        ),
    ]
    for c in companies:
        c["created_at"] = _t("2024-01-10")
        c["annual_revenue"] = Decimal(c["employees"] * 100_000)
        c["revenue_currency"] = "USD"
        c["tags"] = []
    contacts = [
        dict(
            contact_id="c1",
            first_name="Alice",
            last_name="Johnson",
            seniority="c_level",
            company_id="co1",
            lifecycle_status="lead",
            owner="Sam Rep",
            created_at=_t("2026-10-20"),
        ),
        dict(
            contact_id="c2",
            first_name="Bob",
            last_name="Smith",
            seniority="vp",
            company_id="co1",
            lifecycle_status="customer",
            owner="Sam Rep",
            created_at=_t("2026-03-15"),
        ),
        dict(
            contact_id="c3",
            first_name="Carol",
            last_name="White",
            seniority="director",
            company_id="co2",
            lifecycle_status="qualified",
            owner="Jo Seller",
            created_at=_t("2026-08-01"),
        ),
        dict(
            contact_id="c4",
            first_name="Dan",
            last_name="Brown",
            seniority="manager",
            company_id="co3",
            lifecycle_status="lead",
            owner="Jo Seller",
            created_at=_t("2025-12-01"),
        ),
        dict(
            contact_id="c5",
            first_name="Eve",
            last_name="Black",
            seniority="c_level",
            company_id="co4",
            lifecycle_status="lead",
            owner="Sam Rep",
            created_at=_t("2026-10-05"),
        ),
        dict(
            contact_id="c6",
            first_name="Frank",
            last_name="Green",
            seniority="c_level",
            company_id="co5",
            lifecycle_status="lead",
            owner="Jo Seller",
            created_at=_t("2026-02-01"),
        ),
        dict(
            contact_id="c7",
            first_name="Grace",
            last_name="Hall",
            seniority="c_level",
            company_id="co3",
            lifecycle_status="lead",
            owner="Sam Rep",
            created_at=_t("2026-09-30"),
        ),
    ]
    names = {c["company_id"]: c["name"] for c in companies}
    for c in contacts:
        c["full_name"] = f"{c['first_name']} {c['last_name']}"
        c["company_name"] = names[c["company_id"]]
        c["tags"] = []
    deals = [
        # open pipeline: co1 = 150k USD, co2 = 40k USD, co3 = 60k EUR, co4 = 120k USD
        dict(
            deal_id="d1",
            title="Acme core banking",
            company_id="co1",
            contact_id="c1",
            value="150000",
            currency="USD",
            stage="negotiation",
            owner="Sam Rep",
            product="Platform",
            created_at="2026-06-01",
            stage_changed_at="2026-09-01",
            expected_close_at="2026-10-25",
        ),
        dict(
            deal_id="d2",
            title="Acme add-on",
            company_id="co1",
            contact_id="c2",
            value="4000",
            currency="USD",
            stage="won",
            owner="Sam Rep",
            product="Add-on",
            created_at="2026-05-01",
            closed_at="2026-08-15",
        ),
        dict(
            deal_id="d3",
            title="Globex pilot",
            company_id="co2",
            contact_id="c3",
            value="40000",
            currency="USD",
            stage="proposal",
            owner="Jo Seller",
            product="Platform",
            created_at="2026-10-10",
            stage_changed_at="2026-10-20",
            expected_close_at="2026-11-20",
        ),
        dict(
            deal_id="d4",
            title="Initech rollout",
            company_id="co3",
            contact_id="c4",
            value="60000",
            currency="EUR",
            stage="qualification",
            owner="Jo Seller",
            product="Platform",
            created_at="2026-07-01",
            stage_changed_at="2026-07-05",
            expected_close_at="2026-10-05",
        ),
        dict(
            deal_id="d5",
            title="Umbrella expansion",
            company_id="co4",
            contact_id="c5",
            value="120000",
            currency="USD",
            stage="prospecting",
            owner="Sam Rep",
            product="Analytics",
            created_at="2026-10-01",
            stage_changed_at="2026-10-01",
            expected_close_at="2026-12-15",
        ),
        dict(
            deal_id="d6",
            title="Hooli analytics",
            company_id="co5",
            contact_id="c6",
            value="8000",
            currency="USD",
            stage="won",
            owner="Jo Seller",
            product="Analytics",
            created_at="2026-04-01",
            closed_at="2026-09-10",
        ),
        dict(
            deal_id="d7",
            title="Initech legacy",
            company_id="co3",
            contact_id="c7",
            value="7000",
            currency="EUR",
            stage="lost",
            owner="Sam Rep",
            product="Add-on",
            created_at="2025-11-01",
            closed_at="2026-03-20",
        ),
        dict(
            deal_id="d8",
            title="Hooli old deal",
            company_id="co5",
            contact_id="c6",
            value="3000",
            currency="USD",
            stage="won",
            owner="Sam Rep",
            product="Platform",
            created_at="2025-01-01",
            closed_at="2025-05-05",
        ),
    ]
    for d in deals:
        d["value"] = Decimal(d["value"])
        for k in ("created_at", "stage_changed_at", "expected_close_at", "closed_at"):
            d[k] = _t(d.get(k))
    activities = [
        dict(
            activity_id="a1",
            type="email",
            contact_id="c1",
            deal_id="d1",
            company_id="co1",
            occurred_at="2026-10-28",
            subject="Pricing",
            body="Alice raised pricing concerns about the platform",
        ),
        dict(
            activity_id="a2",
            type="call",
            contact_id="c2",
            deal_id="d2",
            company_id="co1",
            occurred_at="2026-08-01",
            subject="Check-in",
            body="Renewal call, all good",
        ),
        dict(
            activity_id="a3",
            type="meeting",
            contact_id="c3",
            deal_id="d3",
            company_id="co2",
            occurred_at="2026-10-25",
            subject="Demo",
            body="Demo went well; security review next",
        ),
        dict(
            activity_id="a4",
            type="email",
            contact_id="c4",
            deal_id="d4",
            company_id="co3",
            occurred_at="2026-09-01",
            subject="Proposal",
            body="Sent the proposal; they worry about the price",
        ),
        dict(
            activity_id="a5",
            type="call",
            contact_id="c5",
            deal_id="d5",
            company_id="co4",
            occurred_at="2026-10-02",
            subject="Intro",
            body="Intro call about analytics",
        ),
        dict(
            activity_id="a6",
            type="note",
            contact_id="c6",
            deal_id="d6",
            company_id="co5",
            occurred_at="2026-09-12",
            subject="Won",
            body="Signed, pricing was accepted",
        ),
        dict(
            activity_id="a7",
            type="email",
            contact_id="c2",
            deal_id=None,
            company_id="co1",
            occurred_at="2026-03-10",
            subject="Hello",
            body="Newsletter",
        ),
    ]
    for a in activities:
        a["occurred_at"] = _t(a["occurred_at"])
        a["direction"] = "outbound"
        a["owner"] = "Sam Rep"
    return {
        "companies": _frame(companies, COMPANIES),
        "contacts": _frame(contacts, CONTACTS),
        "deals": _frame(deals, DEALS),
        "activities": _frame(activities, ACTIVITIES),
    }


def make_scores() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "contact_id": ["c1", "c2", "c3", "c4", "c5", "c6", "c7"],
            "score": [0.9, 0.2, 0.5, 0.8, 0.3, 0.1, 0.4],
            "band": ["hot", "cold", "warm", "hot", "cold", "cold", "warm"],
        }
    )
