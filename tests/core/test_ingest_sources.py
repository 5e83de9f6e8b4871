"""Ingestion of the generated sample export (planted dirty rows) and of the public Maven CRM export."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from holocrm_core import schema
from holocrm_core.ingest import detect_profile, ingest_export

SHARED_DATA = Path(
    os.environ.get("HOLOCRM_SHARED_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data")
)
MAVEN = SHARED_DATA / "maven_crm"


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    synth = pytest.importorskip("holocrm_core.synth", reason="the sample generator is not available")
    root = tmp_path_factory.mktemp("synth")
    synth.generate_export(
        root / "export", n_contacts=300, seed=0, truth_dir=root / "truth", with_attachment_files=False
    )
    return ingest_export(root / "export"), synth.load_truth(root / "truth")["dirty_rows"]


def test_every_planted_dirty_row_is_quarantined_with_its_rule_at_its_line(generated):
    result, dirty = generated
    assert dirty.height > 0
    quarantine = result.quarantine.filter(pl.col("line") > 0)
    caught = dirty.join(
        quarantine.select(
            "source_file", "line", pl.col("rule").alias("caught"), pl.col("record_id").alias("qid")
        ),
        on=["source_file", "line"],
        how="left",
    )
    missed = caught.filter(pl.col("caught").is_null() | (pl.col("caught") != pl.col("rule")))
    assert missed.is_empty(), missed
    assert (caught["qid"] == caught["record_id"]).all()


def test_no_clean_generated_row_is_quarantined_and_nothing_is_lost(generated):
    result, dirty = generated
    quarantine = result.quarantine.filter(pl.col("line") > 0)
    extra = quarantine.join(dirty.select("source_file", "line"), on=["source_file", "line"], how="anti")
    assert extra.is_empty(), extra
    assert result.check_rows_read_invariant() == []
    assert not [r for r in result.files if r.error]
    for entity in schema.STAGING_ORDER:
        report = next(r for r in result.files if r.entity == entity)
        planted = dirty.filter(pl.col("entity") == entity).height
        assert result.tables[entity].height == report.rows_read - planted
    assert "cf_lead_source" in result.custom_fields["contacts"]


@pytest.fixture(scope="module")
def maven():
    if not (MAVEN / "sales_pipeline.csv").exists():
        pytest.skip(f"skipped: Maven CRM export absent at {MAVEN} (set HOLOCRM_SHARED_DATA)")
    return ingest_export(MAVEN)


def test_maven_export_is_detected_and_every_deal_accounted_for(maven):
    assert detect_profile(MAVEN) == "maven" and maven.profile == "maven"
    deals_report = next(r for r in maven.files if r.path == "sales_pipeline.csv")
    assert deals_report.rows_read == 8800
    assert deals_report.rows_staged + deals_report.rows_quarantined == 8800
    assert (
        maven.tables["deals"].height
        + maven.quarantine.filter(pl.col("source_file") == "sales_pipeline.csv").height
        == 8800
    )
    assert maven.check_rows_read_invariant() == []


def test_maven_quirks_are_fixed(maven):
    deals, companies = maven.tables["deals"], maven.tables["companies"]
    assert "GTXPro" not in deals["product"].to_list() and "GTX Pro" in deals["product"].to_list()
    assert (
        "technolgy" not in companies["industry"].to_list() and "technology" in companies["industry"].to_list()
    )
    assert deals.group_by("stage").len().sort("stage").rows() == [
        ("lost", 2473),
        ("prospecting", 500),
        ("qualification", 1589),
        ("won", 4238),
    ]
    # open deals without an account stay unlinked; prospecting deals have no date and are still staged
    assert deals.filter(pl.col("company_id").is_null()).height == 1425
    assert deals.filter(pl.col("stage") == "prospecting")["created_at"].null_count() == 500
    acme = companies.filter(pl.col("name") == "Acme Corporation").row(0, named=True)
    assert acme["company_id"] == "acme-corporation" and str(acme["annual_revenue"]) == "1100040000.00"
    assert {"cf_series", "cf_sales_price", "cf_manager", "cf_regional_office"} <= set(deals.columns)
    contacts = maven.tables["contacts"]
    assert contacts.height == companies.height and contacts["email"].null_count() == contacts.height
    assert set(contacts["lifecycle_status"]) <= {"customer", "lead"}
