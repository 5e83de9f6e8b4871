"""Labels a server looks up per request read the few rows asked for by position, and say what a scan says."""

from __future__ import annotations

import polars as pl

from holocrm_core.services import RecordLabels


def _tables(n: int = 500) -> dict[str, pl.DataFrame]:
    contacts = pl.DataFrame(
        {
            "contact_id": [f"C{i}" for i in range(n)],
            "full_name": [f"Person {i}" if i % 5 else None for i in range(n)],
            "first_name": [f"First{i}" for i in range(n)],
            "last_name": [f"Last{i}" for i in range(n)],
            "title": ["CTO" if i % 2 else "VP Sales" for i in range(n)],
            "company_name": [None if i % 3 == 0 else f"Acme {i % 7}" for i in range(n)],
            "company_id": [f"CO{i % 7}" for i in range(n)],
        }
    )
    companies = pl.DataFrame(
        {"company_id": [f"CO{i}" for i in range(7)], "name": [f"Company {i}" for i in range(7)]}
    )
    return {"staged_contacts": contacts, "staged_companies": companies}


def test_rows_by_position_match_a_scan_and_skip_unknown_ids():
    tables = _tables()
    served = RecordLabels(tables, precompute=True)
    scanned = RecordLabels(tables)
    ids = ["C3", "C10", "C499", "C-none", "C0"]
    assert served._rows("contact", ids) == scanned._rows("contact", ids)
    assert set(served._rows("contact", ids)) == {"C3", "C10", "C499", "C0"}
    assert served._rows("contact", ["nobody"]) == {}
    # every label the server serves is the one a one-off command prints
    served.warm("contact")
    assert served.for_ids("contact", ids) == scanned.for_ids("contact", ids)
    assert served.for_ids("contact", ["C0"])["C0"].startswith("First0 Last0 - VP Sales at Company 0")


def test_a_new_table_gets_a_new_index():
    tables = _tables(50)
    labels = RecordLabels(lambda name: tables.get(name), precompute=True)
    assert set(labels._rows("contact", ["C1", "C60"])) == {"C1"}
    tables["staged_contacts"] = _tables(100)["staged_contacts"]
    assert set(labels._rows("contact", ["C1", "C60"])) == {"C1", "C60"}
