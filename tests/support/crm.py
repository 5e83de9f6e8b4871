"""A small hand-made CRM (contacts, companies, deals, activities) with a known conversion/win probability.

Unit tests of outcomes and scoring build on it: it is fast (no export files, no ingest) and its hidden
probabilities say how good a score can be.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from holocrm_core.schema import ACTIVITIES, COMPANIES, CONTACTS, DEALS

START = datetime(2024, 1, 1, tzinfo=UTC)
SENIORITY_EFFECT = {"c_level": 1.0, "vp": 0.7, "director": 0.3, "manager": -0.2, "individual": -0.7}
SOURCE_EFFECT = {"referral": 0.9, "event": 0.3, "web": -0.2, "cold list": -0.9}
GOOD_NOTES = [
    "budget approved for this quarter",
    "they asked for a proposal",
    "champion is pushing internally",
]
BAD_NOTES = ["pricing concerns raised again", "no reply to the follow-up", "went with a competitor last year"]
NEUTRAL = ["sent the overview deck", "call about the roadmap", "intro meeting booked"]


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def toy_crm(
    n_contacts: int = 800, seed: int = 0, open_share: float = 0.15
) -> tuple[dict[str, pl.DataFrame], dict]:
    """Tables keyed like the warehouse (``contacts`` ...) and the truth {contact_id: p, deal_id: p}."""
    rng = np.random.default_rng(seed)
    n_companies = max(10, n_contacts // 8)
    employees = rng.lognormal(5.5, 1.4, n_companies).astype(int) + 5
    companies = pl.DataFrame(
        {
            "company_id": [f"co{i}" for i in range(n_companies)],
            "name": [f"Company {i}" for i in range(n_companies)],
            "industry": rng.choice(["software", "retail", "healthcare", "energy"], n_companies).tolist(),
            "employees": employees.tolist(),
            "size_band": [
                "enterprise" if e >= 1000 else "mid_market" if e >= 200 else "smb" for e in employees
            ],
        }
    )
    contacts, activities, deals, truth = [], [], [], {}
    seniority = list(SENIORITY_EFFECT)
    sources = list(SOURCE_EFFECT)
    for i in range(n_contacts):
        cid = f"c{i}"
        company = int(rng.integers(n_companies))
        created = START + timedelta(days=float(rng.uniform(0, 400)))
        level = seniority[int(rng.integers(5))]
        source = sources[int(rng.integers(4))]
        interest = rng.normal()
        n_acts = int(rng.poisson(2 + 2 * max(interest, -0.5) + 1))
        logit = -0.3 + SENIORITY_EFFECT[level] + SOURCE_EFFECT[source] + 0.9 * interest
        decided_at = created + timedelta(days=float(rng.uniform(25, 70)))
        for j in range(n_acts):
            if rng.random() < 0.6:
                pool = GOOD_NOTES if rng.random() < _sigmoid(1.5 * interest) else BAD_NOTES
            else:
                pool = NEUTRAL
            activities.append(
                {
                    "activity_id": f"a{i}_{j}",
                    "type": ["email", "call", "meeting", "note"][int(rng.integers(4))],
                    "contact_id": cid,
                    "occurred_at": created + (decided_at - created) * float(rng.uniform(0.02, 0.98)),
                    "direction": "inbound" if rng.random() < 0.3 else "outbound",
                    "subject": "follow-up",
                    "body": pool[int(rng.integers(len(pool)))],
                }
            )
        p = float(_sigmoid(logit))
        truth[cid] = p
        is_open = rng.random() < open_share
        converted = (not is_open) and rng.random() < p
        contacts.append(
            {
                "contact_id": cid,
                "full_name": f"Person {i}",
                "seniority": level,
                "company_id": f"co{company}",
                "lifecycle_status": "lead" if is_open else ("customer" if converted else "disqualified"),
                "lead_at": created,
                "created_at": created,
                "customer_at": decided_at if converted else None,
                "disqualified_at": decided_at if (not is_open and not converted) else None,
                "cf_lead_source": source,
                "cf_budget_k": float(np.round(rng.lognormal(3, 1), 1)),
            }
        )
        if rng.random() < 0.5:  # a deal for half the contacts
            did = f"d{i}"
            value = float(np.round(rng.lognormal(9.5, 1.0), 2))
            deal_logit = -0.2 + 0.8 * interest + SOURCE_EFFECT[source] * 0.5 - 0.25 * (np.log(value) - 9.5)
            pw = float(_sigmoid(deal_logit))
            truth[did] = pw
            deal_open = rng.random() < open_share
            won = (not deal_open) and rng.random() < pw
            closed = decided_at + timedelta(days=float(rng.uniform(5, 40)))
            deals.append(
                {
                    "deal_id": did,
                    "title": f"Deal {i}",
                    "company_id": f"co{company}",
                    "contact_id": cid,
                    "value": value,
                    "currency": "USD",
                    "stage": "proposal" if deal_open else ("won" if won else "lost"),
                    "probability": None if deal_open else float(won),
                    "product": ["core", "plus"][int(rng.integers(2))],
                    "created_at": decided_at,
                    "closed_at": None if deal_open else closed,
                    "cf_deal_type": ["new", "renewal"][int(rng.integers(2))],
                }
            )
            activities.append(
                {
                    "activity_id": f"ad{i}",
                    "type": "proposal",
                    "contact_id": cid,
                    "deal_id": did,
                    "occurred_at": decided_at + timedelta(days=2),
                    "direction": "outbound",
                    "subject": "proposal",
                    "body": GOOD_NOTES[0] if rng.random() < _sigmoid(1.5 * interest) else BAD_NOTES[0],
                }
            )
    tables = {
        "companies": _typed(companies, COMPANIES),
        "contacts": _typed(pl.DataFrame(contacts), CONTACTS),
        "deals": _typed(pl.DataFrame(deals), DEALS),
        "activities": _typed(pl.DataFrame(activities), ACTIVITIES),
    }
    return tables, truth


def _typed(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """Cast to the canonical schema, adding missing canonical columns; cf_* columns stay as they are."""
    columns = []
    for name, dtype in schema.items():
        columns.append(
            frame[name].cast(dtype) if name in frame.columns else pl.lit(None, dtype=dtype).alias(name)
        )
    extra = [c for c in frame.columns if c.startswith("cf_")]
    return frame.select(*columns, *extra)
