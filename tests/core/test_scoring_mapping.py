"""Mapping rules the scores depend on: YAML yes/no words, status_dates, exclude, a closed deal's Close Date."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from holocrm_core import outcomes
from holocrm_core.ingest import ingest_export
from holocrm_core.ingest.mapping import MappingError, load_mapping

MAPPING = """
name: telemarketing
entities:
  contacts:
    files: "leads.csv"
    columns:
      Lead: contact_id
      Outcome: lifecycle_status
      First Contact: created_at
    values:
      lifecycle_status:
        yes: customer
        no: disqualified
        open: lead
    status_dates:
      customer: Decided
      disqualified: Decided
    exclude: [Call Result]
    optional: [created_at]
  deals:
    files: "deals.csv"
    columns:
      Deal: deal_id
      Stage: stage
      Amount: value
    values:
      stage: {Won: won, Lost: lost, Open: proposal}
    optional: [created_at, title]
"""

LEADS = """Lead,Outcome,First Contact,Decided,Call Result,Budget
L1,yes,2025-01-10,2025-03-01,subscribed,100
L2,no,2025-01-05,2025-02-01,refused,50
L3,open,2025-02-20,,,20
L4,Yes,2025-01-12,,subscribed,70
"""

DEALS = """Deal,Stage,Close Date,Amount
D1,Won,2025-03-05,1000
D2,Open,2025-06-01,500
D3,Lost,,300
"""


@pytest.fixture()
def export(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "leads.csv").write_text(LEADS, encoding="utf-8")
    (folder / "deals.csv").write_text(DEALS, encoding="utf-8")
    (tmp_path / "mapping.yaml").write_text(MAPPING, encoding="utf-8")
    return folder, tmp_path / "mapping.yaml"


def test_yes_no_keys_status_dates_and_exclude_read_as_written(export):
    folder, mapping = export
    result = ingest_export(folder, mapping=mapping)
    contacts = {r["contact_id"]: r for r in result.tables["contacts"].iter_rows(named=True)}
    assert result.quarantine.filter(pl.col("entity") == "contacts").height == 0, result.quarantine
    assert len(contacts) == 4  # unquoted yes:/no: keys are the words, not YAML booleans
    assert [contacts[i]["lifecycle_status"] for i in ("L1", "L2", "L3", "L4")] == [
        "customer",
        "disqualified",
        "lead",
        "customer",
    ]
    # each status is dated from its own column; the other dates of the row stay what they were
    assert contacts["L1"]["customer_at"] == datetime(2025, 3, 1, tzinfo=UTC)
    assert contacts["L2"]["disqualified_at"] == datetime(2025, 2, 1, tzinfo=UTC)
    assert contacts["L2"]["customer_at"] is None and contacts["L3"]["customer_at"] is None
    assert contacts["L1"]["created_at"] == datetime(2025, 1, 10, tzinfo=UTC)
    assert "cf_call_result" not in result.tables["contacts"].columns
    assert "cf_budget" in result.tables["contacts"].columns

    dataset = outcomes.build_outcome_dataset(result.tables)
    leads = dataset.filter(pl.col("entity") == "contact")
    assert set(leads["entity_id"]) == {"L1", "L2", "L4"}  # L4 has no decision date: counted, not lost
    assert outcomes.undated_outcomes(dataset, "contact") == 1
    assert outcomes.open_ids("contact", result.tables) == ["L3"]


def test_a_closed_deals_close_date_is_when_it_closed(export):
    folder, mapping = export
    deals = {
        r["deal_id"]: r for r in ingest_export(folder, mapping=mapping).tables["deals"].iter_rows(named=True)
    }
    assert deals["D1"]["stage"] == "won" and deals["D1"]["closed_at"] == datetime(2025, 3, 5, tzinfo=UTC)
    assert deals["D2"]["closed_at"] is None and deals["D2"]["expected_close_at"] == datetime(
        2025, 6, 1, tzinfo=UTC
    )
    assert deals["D3"]["stage"] == "lost" and deals["D3"]["closed_at"] is None


def test_a_status_without_a_date_column_is_a_clear_mapping_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "entities:\n  contacts:\n    files: a.csv\n    status_dates: {converted: Date}\n", encoding="utf-8"
    )
    with pytest.raises(MappingError, match="'converted' is not a status that has a date"):
        load_mapping(path)
