"""Small HOLOCRM_HOMEs for decision tests: staged contacts with custom fields, written straight to the warehouse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from holocrm_core.warehouse import Warehouse

T0 = datetime(2024, 3, 1, tzinfo=UTC)
REGIONS = ("nordics", "dach", "benelux")


def custom_field_home(home: Path, contacts: int = 60, seed: int = 0) -> Warehouse:
    """``contacts`` contacts (C1..): open leads except every tenth, disqualified; a custom field
    ``cf_region`` (nordics / dach / benelux) and ``cf_fleet_size``; one touch each in the last weeks."""
    rng = np.random.default_rng(seed)
    wh = Warehouse(Path(home) / "warehouse")
    ids = [f"C{i}" for i in range(1, contacts + 1)]
    status = [
        "disqualified" if i % 10 == 0 else ("qualified" if i % 3 == 0 else "lead")
        for i in range(1, contacts + 1)
    ]
    wh.write(
        "staged_contacts",
        pl.DataFrame(
            {
                "contact_id": ids,
                "full_name": [f"Person {i}" for i in range(1, contacts + 1)],
                "lifecycle_status": status,
                "seniority": [("director", "manager", "vp")[i % 3] for i in range(contacts)],
                "company_id": [f"A{i % 7}" for i in range(contacts)],
                "cf_region": [REGIONS[i % 3] for i in range(contacts)],
                "cf_fleet_size": rng.integers(1, 500, contacts).astype(float),
                "created_at": [T0] * contacts,
                "updated_at": [T0] * contacts,
            }
        ),
    )
    wh.write(
        "staged_companies",
        pl.DataFrame(
            {
                "company_id": [f"A{i}" for i in range(7)],
                "name": [f"Firm {i}" for i in range(7)],
                "industry": [
                    "logistics",
                    "software",
                    "retail",
                    "software",
                    "logistics",
                    "retail",
                    "software",
                ],
                "size_band": ["smb", "mid_market", "enterprise", "smb", "smb", "mid_market", "enterprise"],
            }
        ),
    )
    wh.write(
        "staged_activities",
        pl.DataFrame(
            {
                "activity_id": [f"X{i}" for i in range(contacts)],
                "type": ["email"] * contacts,
                "contact_id": ids,
                "occurred_at": [T0 - timedelta(days=int(d)) for d in rng.integers(0, 40, contacts)],
            }
        ),
    )
    return wh
