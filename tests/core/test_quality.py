"""The check computations in holocrm_core.quality fail on the defects they exist for."""

import numpy as np
import polars as pl

from holocrm_core import quality


def test_referential_integrity_counts_dangling_keys_and_self_references():
    companies = pl.DataFrame({"company_id": ["c1", "c2"], "parent_company_id": ["c1", "zz"]})
    outcome = quality.referential_integrity("companies", companies, {})
    assert not outcome.passed and "1 dangling" in outcome.metadata["references"]
    contacts = pl.DataFrame({"contact_id": ["a", "b"], "company_id": ["c1", None]})
    assert quality.referential_integrity("contacts", contacts, {"companies": pl.Series(["c1"])}).passed
    assert not quality.referential_integrity("contacts", contacts, {"companies": pl.Series(["c9"])}).passed


def test_unique_ids_and_null_rates():
    frame = pl.DataFrame({"contact_id": ["a", "a", None]})
    assert not quality.unique_ids(frame, "contact_id").passed
    assert quality.unique_ids(frame.head(1), "contact_id").passed


def test_no_rows_lost_reads_the_accounting():
    accounting = pl.DataFrame({"source_file": ["a.csv", "b.csv"], "balanced": [True, False]})
    assert not quality.no_rows_lost(accounting).passed
    assert quality.no_rows_lost(accounting.head(1)).passed


def test_vector_checks():
    expected = pl.DataFrame({"entity_type": ["contact", "contact"], "entity_id": ["a", "b"]})
    vectors = pl.DataFrame({"entity_type": ["contact", "contact"], "entity_id": ["a", "a"]})
    outcome = quality.one_vector_per_entity(expected, vectors)
    assert not outcome.passed and outcome.metadata["missing"] == 1 and outcome.metadata["duplicated"] == 1
    unit = np.eye(2, 4, dtype=np.float32)
    assert quality.unit_norm_no_nan(unit).passed and quality.vector_dimension(unit, 4).passed
    assert not quality.unit_norm_no_nan(unit * 2).passed
    assert not quality.unit_norm_no_nan(np.full((1, 4), np.nan)).passed
    assert not quality.index_matches_documents({"contact": 3}, {"contact": 4}).passed
