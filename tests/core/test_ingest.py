"""Ingestion: source profiles on small fixture exports, validation rules, quarantine reasons, accounting."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from holocrm_core import schema
from holocrm_core.ingest import (
    PROFILES,
    FileReport,
    IngestResult,
    detect_profile,
    ingest_export,
    read_export,
    stage_entity,
)
from holocrm_core.ingest.mapping import MappingError, load_mapping
from holocrm_core.warehouse import Warehouse

FIXTURES = Path(__file__).parents[1] / "fixtures" / "ingest"
MAPPING = FIXTURES / "custom_mapped" / "mapping.yaml"


@pytest.fixture(scope="module")
def generic() -> IngestResult:
    return ingest_export(FIXTURES / "generic")


def _row(result: IngestResult, entity: str, record_id: str) -> dict:
    table = result.tables[entity]
    rows = table.filter(pl.col(schema.ID_COLUMN[entity]) == record_id).to_dicts()
    assert len(rows) == 1, f"{record_id} staged {len(rows)} times"
    return rows[0]


# (source file, line, record id, rule, column, words the reason must contain)
EXPECTED_QUARANTINE = [
    ("companies.csv", 5, "CMP-4", "required", "name", "name is empty"),
    ("companies.csv", 6, "CMP-5", "number", "employees", "'many' is not a whole number"),
    ("contacts.csv", 4, "CON-3", "email", "email", "email 'jane.doe@' has no domain: fix the address"),
    ("contacts.csv", 5, "CON-4", "phone", "phone", "'call me' contains letters"),
    ("contacts.csv", 6, "CON-5", "date", "created_at", "'2024-13-45' is not a date"),
    ("contacts.csv", 7, "CON-6", "enum", "lifecycle_status", "'banana' is not one of lead, qualified"),
    ("contacts.csv", 8, "CON-7", "reference", "company_id", "'CMP-404' names no staged company"),
    ("contacts.csv", 9, "CON-8", "required", "created_at", "created_at is empty"),
    ("contacts.csv", 10, "CON-9", "email", "email", "phone '12' has 2 digits"),
    ("contacts.csv", 13, "CON-11", "email", "email", "contains a space"),
    ("contacts.csv", 14, "CON-2", "duplicate_id", "contact_id", "already appears on line 3 of contacts.csv"),
    ("deals.csv", 4, "DEA-3", "money", "value", "'twelve grand' is not an amount"),
    ("deals.csv", 5, "DEA-4", "money", "value", "'-500' is negative"),
    ("deals.csv", 6, "DEA-5", "currency", "currency", "'DOLLARS' is not an ISO 4217"),
    ("deals.csv", 7, "DEA-6", "enum", "stage", "'banana' is not one of prospecting"),
    ("deals.csv", 8, "DEA-7", "reference", "contact_id", "'CON-3' names no staged contact"),
    ("deals.csv", 9, "DEA-8", "required", "title", "title is empty"),
    ("activities.csv", 6, "ACT-4", "enum", "type", "'fax' is not one of email"),
    ("activities.csv", 7, "ACT-5", "required", "contact_id", "contact_id is empty"),
    ("activities.csv", 8, "ACT-6", "date", "occurred_at", "'yesterday' is not a date"),
    ("attachments.csv", 3, "ATT-2", "reference", "activity_id", "'ACT-404' names no staged activity"),
    ("attachments.csv", 4, "ATT-3", "number", "size_bytes", "'abc' is not a whole number"),
]


def test_every_bad_row_is_quarantined_once_with_its_rule_line_and_an_actionable_reason(generic):
    quarantine = generic.quarantine
    assert quarantine.schema == schema.QUARANTINE
    assert quarantine.height == len(EXPECTED_QUARANTINE), quarantine
    for source, line, record_id, rule, column, words in EXPECTED_QUARANTINE:
        hits = quarantine.filter((pl.col("source_file") == source) & (pl.col("line") == line)).to_dicts()
        assert len(hits) == 1, (source, line)
        hit = hits[0]
        assert (hit["record_id"], hit["rule"], hit["column"]) == (record_id, rule, column), hit
        assert words in hit["reason"], hit["reason"]


def test_a_record_with_several_problems_names_the_first_and_lists_all(generic):
    hit = generic.quarantine.filter(pl.col("record_id") == "CON-9").row(0, named=True)
    assert (hit["column"], hit["rule"], hit["value"]) == ("email", "email", "gus@")
    assert "email 'gus@' has no domain" in hit["reason"] and "phone '12'" in hit["reason"]


def test_quoted_line_breaks_count_as_physical_lines(generic):
    # CON-10's notes span two lines, so CON-11 sits on line 13, not 12
    assert generic.quarantine.filter(pl.col("record_id") == "CON-11")["line"].to_list() == [13]
    assert _row(generic, "contacts", "CON-10")["notes"] == "Met at the fair\nfollow up in May"


@pytest.mark.parametrize("folder", ["generic", "salesforce", "hubspot", "custom_mapped", "corrupt"])
def test_rows_read_equal_rows_staged_plus_quarantined_per_file(folder):
    mapping = MAPPING if folder == "custom_mapped" else None
    result = ingest_export(FIXTURES / folder, mapping=mapping)
    assert result.check_rows_read_invariant() == []
    for report in result.files:
        if report.entity is not None:
            assert report.rows_read == report.rows_staged + report.rows_quarantined > 0
    staged = sum(t.height for t in result.tables.values())
    assert staged == sum(r.rows_staged for r in result.files)
    assert result.quarantine.filter(pl.col("line") > 0).height == sum(
        r.rows_quarantined for r in result.files
    )


def test_invariant_check_reports_a_file_that_does_not_balance():
    broken = IngestResult(
        {},
        pl.DataFrame(schema=schema.QUARANTINE),
        [FileReport("contacts.csv", "contacts", "generic", rows_read=3, rows_staged=1)],
        {},
        "generic",
    )
    assert [r.path for r in broken.check_rows_read_invariant()] == ["contacts.csv"]


def test_staged_tables_have_the_canonical_schema_then_typed_custom_fields(generic):
    for entity, table in generic.tables.items():
        canonical = list(schema.ENTITIES[entity])
        assert table.columns[: len(canonical)] == canonical
        assert dict(table.schema) | {} == {
            **dict(schema.ENTITIES[entity]),
            **{c: table.schema[c] for c in table.columns[len(canonical) :]},
        }
        assert all(c.startswith("cf_") for c in table.columns[len(canonical) :])
    contacts = generic.tables["contacts"]
    assert contacts.schema["cf_lead_source"] == pl.String
    assert contacts.schema["cf_budget"] == schema.MONEY
    assert contacts.schema["cf_newsletter"] == pl.Boolean
    assert generic.tables["companies"].schema["cf_account_tier"] == pl.String
    assert generic.tables["deals"].schema["cf_discount_pct"] == pl.Float64
    assert generic.tables["activities"].schema["cf_sentiment_score"] == pl.Float64
    assert _row(generic, "contacts", "CON-1")["cf_budget"] == Decimal("12500.00")
    assert generic.custom_fields["contacts"] == ["cf_lead_source", "cf_budget", "cf_newsletter"]
    assert generic.custom_fields["deals"] == ["cf_forecast_category", "cf_discount_pct"]


def test_values_are_normalised_on_the_way(generic):
    jane = _row(generic, "contacts", "CON-1")
    assert jane["email"] == "jane.doe@acme.com"
    assert jane["phone"] == "+14155550134"
    assert jane["full_name"] == "Jane Doe"  # built from first + last
    assert jane["seniority"] == "c_level"
    assert jane["tags"] == ["vip", "tech"]
    john = _row(generic, "contacts", "CON-2")
    assert (john["first_name"], john["last_name"]) == ("John", "Smith")  # split from full_name
    assert john["phone"] == "+14155550199;ext=12"
    assert john["lifecycle_status"] == "lead"
    assert _row(generic, "contacts", "CON-10")["phone"] == "+49301234567"
    acme, globex, initech = (_row(generic, "companies", c) for c in ("CMP-1", "CMP-2", "CMP-3"))
    assert (acme["size_band"], globex["size_band"], initech["size_band"]) == (
        "enterprise",
        "smb",
        "mid_market",
    )
    assert acme["annual_revenue"] == Decimal("12500000.00")
    assert (globex["annual_revenue"], globex["revenue_currency"]) == (Decimal("2500000.00"), "USD")
    won, pilot = _row(generic, "deals", "DEA-1"), _row(generic, "deals", "DEA-2")
    assert (won["stage"], won["probability"]) == ("won", 1.0)
    assert (pilot["value"], pilot["currency"], pilot["probability"]) == (Decimal("12500.00"), "USD", 0.6)
    assert (
        str(_row(generic, "activities", "ACT-1")["occurred_at"]) == "2024-01-11 07:30:00+00:00"
    )  # +02:00 -> UTC
    assert str(_row(generic, "activities", "ACT-2")["occurred_at"]).startswith("2024-01-15")  # MM/DD/YYYY
    assert str(_row(generic, "activities", "ACT-3")["occurred_at"]).startswith("2024-01-15")  # DD.MM.YYYY
    assert str(_row(generic, "activities", "ACT-7")["occurred_at"]) == "2024-01-15 10:00:00+00:00"  # epoch
    assert generic.tables["contacts"].schema["created_at"] == schema.UTC_TIME


def test_salesforce_export_is_detected_and_mapped():
    folder = FIXTURES / "salesforce"
    assert detect_profile(folder) == "salesforce"
    result = ingest_export(folder)
    assert result.profile == "salesforce" and result.quarantine.is_empty()
    deals = result.tables["deals"].sort("deal_id")
    assert deals["stage"].to_list() == ["won", "negotiation", "qualification", "lost"]
    assert deals["probability"].to_list() == [1.0, 0.9, 0.6, 0.0]
    assert deals["value"].to_list()[0] == Decimal("25000.00")
    # one Close Date: the actual close date once closed, the expected one while open
    assert deals["closed_at"].is_null().to_list() == [False, True, True, False]
    assert deals["expected_close_at"].null_count() == 0
    assert "cf_fiscal_period" in result.custom_fields["deals"]
    tasks = result.tables["activities"].sort("activity_id")
    assert tasks["type"].to_list() == ["call", "email", "meeting"]
    # Related To ID is an Opportunity (006...) or an Account (001...)
    assert tasks["deal_id"].to_list() == ["006A000001", None, "006A000003"]
    assert tasks["company_id"].to_list() == [None, "001A000002", None]
    assert str(tasks["occurred_at"][2]) == "2025-01-14 14:30:00+00:00"
    contacts = result.tables["contacts"]
    assert contacts["lifecycle_status"].to_list() == ["lead", "lead"]  # Contact exports carry no lifecycle
    assert contacts["company_id"].to_list() == ["001A000001", "001A000002"]


def test_hubspot_export_is_detected_and_its_vocabulary_mapped():
    folder = FIXTURES / "hubspot"
    assert detect_profile(folder) == "hubspot"
    result = ingest_export(folder)
    assert result.quarantine.is_empty()
    contacts = result.tables["contacts"].sort("contact_id")
    assert contacts["lifecycle_status"].to_list() == ["customer", "qualified", "lead", "lead"]
    assert contacts["company_id"].to_list()[:2] == ["5001", "5002"]
    assert contacts["phone"].to_list()[1] == "030 1234567"  # not a North American number: kept as written
    deals = result.tables["deals"].sort("deal_id")
    assert deals["stage"].to_list() == ["won", "negotiation", "prospecting", "lost"]
    assert deals["contact_id"].to_list() == ["101", "102", "102", "101"]
    activities = result.tables["activities"].sort("activity_id")
    assert activities["type"].to_list() == ["email", "call", "meeting", "note"]
    assert activities["direction"].to_list()[1] == "outbound"
    assert str(activities["occurred_at"][0]) == "2024-01-11 09:30:00+00:00"
    assert result.tables["companies"]["name"].to_list() == ["Acme Corp", "Globex"]


def test_generic_is_the_fallback_and_profiles_are_listed():
    assert detect_profile(FIXTURES / "generic") == "generic"
    assert {"generic", "salesforce", "hubspot", "maven"} <= set(PROFILES)


def test_yaml_mapping_maps_columns_values_dates_currency_and_derives_stable_ids():
    result = ingest_export(FIXTURES / "custom_mapped", mapping=MAPPING)
    assert result.profile == "legacy_de"
    contacts = result.tables["contacts"].sort("contact_id")
    assert contacts["first_name"].to_list() == ["Jürgen", "Zoë"]
    assert contacts["lifecycle_status"].to_list() == ["customer", "lead"]
    # the mapping's day-first format: 04/03/2024 is the 4th of March
    assert str(contacts["created_at"][0]).startswith("2024-03-04")
    assert contacts["cf_lieblingsfarbe"].to_list() == ["grün", "blau"]
    assert result.tables["companies"]["cf_gegrundet"].dtype == pl.Int64
    bad = result.quarantine.row(0, named=True)
    assert (bad["source_file"], bad["line"], bad["rule"], bad["value"]) == (
        "personen.csv",
        4,
        "enum",
        "Unbekannt",
    )
    deals = result.tables["deals"].sort("title")
    assert deals["currency"].to_list() == ["EUR", "EUR"]  # default_currency
    assert deals["stage"].to_list() == ["proposal", "won"]
    assert all(i.startswith("dl_") for i in deals["deal_id"])
    again = ingest_export(FIXTURES / "custom_mapped", mapping=MAPPING)
    assert again.tables["deals"].sort("title")["deal_id"].to_list() == deals["deal_id"].to_list()


def test_mapping_mistakes_are_reported_with_the_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("entities:\n  contacts:\n    files: '*.csv'\n    columns: {Mail: e_mail}\n")
    with pytest.raises(MappingError, match="e_mail.*not a contacts column"):
        load_mapping(bad)
    bad.write_text(
        "entities:\n  contacts:\n    files: '*.csv'\n    values: {lifecycle_status: {Kunde: client}}\n"
    )
    with pytest.raises(MappingError, match="use one of customer"):
        load_mapping(bad)


def test_corrupt_empty_and_unknown_files_get_clear_errors_and_the_rest_is_staged():
    result = ingest_export(FIXTURES / "corrupt")
    assert result.tables["contacts"]["contact_id"].to_list() == ["CON-1", "CON-2"]
    errors = {r.path: r.error for r in result.files if r.error}
    assert set(errors) == {"activities.csv", "companies.parquet", "deals.xlsx", "inventory.csv"}
    assert "empty" in errors["activities.csv"]
    assert "Parquet" in errors["companies.parquet"] and "re-export" in errors["companies.parquet"]
    assert "spreadsheet" in errors["deals.xlsx"]
    assert "cannot tell which CRM table" in errors["inventory.csv"]
    file_rows = result.quarantine.filter(pl.col("rule") == "file")
    assert sorted(file_rows["source_file"]) == sorted(errors)
    assert set(file_rows["line"]) == {0}
    assert all(row["reason"].startswith(row["source_file"]) for row in file_rows.to_dicts())
    # entities without a readable file are empty tables of their schema
    assert result.tables["deals"].schema == schema.ENTITIES["deals"] and result.tables["deals"].is_empty()


def test_reingesting_the_same_files_is_idempotent(tmp_path):
    warehouse = Warehouse(tmp_path / "warehouse")
    first = ingest_export(FIXTURES / "generic", warehouse=warehouse)
    before = {e: warehouse.read(f"staged_{e}") for e in schema.STAGING_ORDER}
    second = ingest_export(FIXTURES / "generic", warehouse=warehouse)
    for entity in schema.STAGING_ORDER:
        after = warehouse.read(f"staged_{entity}")
        assert after.equals(before[entity]), entity
        ids = after[schema.ID_COLUMN[entity]]
        assert ids.n_unique() == after.height
    assert warehouse.read("quarantine").equals(second.quarantine)
    assert first.quarantine.equals(second.quarantine)


def test_ids_derived_from_identifying_fields_are_stable_and_collisions_are_duplicates(tmp_path):
    (tmp_path / "contacts.csv").write_text(
        "full_name,email,lifecycle_status,created_at\n"
        "Jane Doe,jane@acme.com,lead,2024-01-01\n"
        "John Roe,john@acme.com,lead,2024-01-01\n"
        "Jane Doe,JANE@acme.com,lead,2024-01-02\n"
    )
    one, two = ingest_export(tmp_path), ingest_export(tmp_path)
    ids = one.tables["contacts"]["contact_id"].to_list()
    assert ids == two.tables["contacts"]["contact_id"].to_list() and all(i.startswith("ct_") for i in ids)
    assert one.quarantine["rule"].to_list() == ["duplicate_id"]  # same person, same derived id


def test_stage_entity_public_api_checks_only_the_references_it_is_given():
    raw = pl.DataFrame(
        {
            "contact_id": ["C1", "C2"],
            "company_id": ["X1", "X9"],
            "lifecycle_status": ["Customer", "lead"],
            "created_at": ["2024-01-01", "2024-01-02"],
            "cf_score": ["1", "2"],
            "_source_file": ["c.csv", "c.csv"],
            "_line": [2, 3],
        }
    )
    staged, bad = stage_entity("contacts", raw, {"companies": pl.Series(["X1"])})
    assert staged.columns == [*schema.CONTACTS, "cf_score"] and staged["contact_id"].to_list() == ["C1"]
    assert staged["cf_score"].dtype == pl.Int64
    assert bad.select("line", "rule", "column").row(0) == (3, "reference", "company_id")
    unchecked, none_bad = stage_entity("contacts", raw, {})
    assert unchecked.height == 2 and none_bad.is_empty()


def test_stage_entity_on_an_empty_frame_gives_an_empty_table_of_the_schema():
    raw = pl.DataFrame(schema={"_source_file": pl.String, "_line": pl.Int64})
    for entity in schema.STAGING_ORDER:
        staged, bad = stage_entity(entity, raw, {})
        assert staged.schema == schema.ENTITIES[entity] and staged.is_empty() and bad.is_empty()


def test_raw_export_keeps_sources_and_lines_as_strings():
    raw = read_export(FIXTURES / "generic")
    contacts = raw.tables["contacts"]
    assert contacts["_source_file"].unique().to_list() == ["contacts.csv"]
    assert contacts["_line"].dtype == pl.Int64 and contacts["_line"].to_list()[:2] == [2, 3]
    assert all(dtype == pl.String for name, dtype in contacts.schema.items() if name != "_line")
    assert raw.errors.is_empty() and raw.profile == "generic"


def test_allowed_empty_required_column_is_not_quarantined():
    raw = pl.DataFrame(
        {
            "deal_id": ["D1", "D2"],
            "title": ["a", "b"],
            "stage": ["prospecting", "won"],
            "created_at": [None, None],
            "_allow_empty": ["created_at", None],
            "_source_file": ["d.csv"] * 2,
            "_line": [2, 3],
        }
    )
    staged, bad = stage_entity("deals", raw, {})
    assert staged["deal_id"].to_list() == ["D1"]
    assert bad["rule"].to_list() == ["required"]


def test_copy_of_a_fixture_with_extra_blank_lines_keeps_line_numbers(tmp_path):
    shutil.copytree(FIXTURES / "generic", tmp_path / "export")
    path = tmp_path / "export" / "companies.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2] + [""] + lines[2:]) + "\n\n")
    result = ingest_export(tmp_path / "export")
    bad = result.quarantine.filter(pl.col("source_file") == "companies.csv")
    assert bad["line"].to_list() == [6, 7]  # shifted by the blank line, which is not a record
    assert result.check_rows_read_invariant() == []
