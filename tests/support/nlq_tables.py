"""A tiny CRM (three companies, four contacts, five deals) with two owners who share a first name."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from holocrm_core import schema


def _frame(entity: str, rows: list[dict]) -> pl.DataFrame:
    columns = schema.ENTITIES[entity]
    return pl.DataFrame([{c: r.get(c) for c in columns} for r in rows], schema=columns)


def tiny_tables() -> dict[str, pl.DataFrame]:
    day = datetime(2026, 9, 1, tzinfo=UTC)
    companies = _frame(
        "companies",
        [
            {"company_id": "co1", "name": "Acme Bank", "industry": "financial services", "region": "EMEA"},
            {"company_id": "co2", "name": "Initech", "industry": "software", "region": "APAC"},
            {"company_id": "co3", "name": "Globex", "industry": "retail", "region": "EMEA"},
        ],
    )
    contacts = _frame(
        "contacts",
        [
            {"contact_id": "c1", "full_name": "Ann Lee", "company_id": "co1", "lifecycle_status": "lead"},
            {"contact_id": "c2", "full_name": "Bo Chan", "company_id": "co2", "lifecycle_status": "customer"},
            {"contact_id": "c3", "full_name": "Cy Diaz", "company_id": "co3", "lifecycle_status": "lead"},
            {
                "contact_id": "c4",
                "full_name": "Di Ezra",
                "company_id": "co1",
                "lifecycle_status": "qualified",
            },
        ],
    )
    deal = {"currency": "USD", "created_at": day}
    deals = _frame(
        "deals",
        [
            {
                **deal,
                "deal_id": "d1",
                "company_id": "co1",
                "stage": "proposal",
                "value": 100,
                "owner": "Sam Rep",
            },
            {**deal, "deal_id": "d2", "company_id": "co2", "stage": "won", "value": 50, "owner": "Sam Rep"},
            {
                **deal,
                "deal_id": "d3",
                "company_id": "co3",
                "stage": "negotiation",
                "value": 70,
                "owner": "Sam Ode",
            },
            {**deal, "deal_id": "d4", "company_id": "co1", "stage": "lost", "value": 30, "owner": "Kim Vo"},
            {
                **deal,
                "deal_id": "d5",
                "company_id": "co2",
                "stage": "qualification",
                "value": 20,
                "owner": "Kim Vo",
            },
        ],
    )
    return {
        "companies": companies,
        "contacts": contacts,
        "deals": deals,
        "activities": _frame("activities", []),
    }
