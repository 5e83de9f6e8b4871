"""The ingest's fast paths give the same tables as the careful paths they stand in for, row for row.

A generated export with the generator's dirty rows plus planted CSV defects (ragged records, quoted line
breaks and delimiters, padded values, blank lines, a quoted empty field) is ingested twice: as the product
does it, and with every shortcut turned off (the csv module counts fields, every column is trimmed,
references are checked against every parent id, staged rows are traced to raw rows by the id join, rows are
counted per file by hashing every row's file name).
Staged tables, quarantine and accounting must be equal.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from holocrm_core import reconcile as reconcile_module
from holocrm_core import schema
from holocrm_core.ingest import ingest_export, readers, validate
from holocrm_core.reconcile import reconcile
from holocrm_core.synth import generate_export
from holocrm_core.warehouse import Warehouse

PLANTED = [
    "CON-9000001,Ann,Lee,Ann Lee,ann@example.com,,,,,,,,too,many,fields,here,x,y,z,a,b,c,d,e,f,g",
    "CON-9000002,Bob",  # too few fields
    "",  # a blank line
    'CON-9000003,"Cy, Jr.",Ray,,cy@example.com,,,,,,,,"two\nlines, one note",lead,,,,,2024-01-02T00:00:00Z,,,,',
    "CON-9000004,  Dee  ,Fox,,  DEE@Example.com ,,,,,,,,,lead,,,,,2024-01-02T00:00:00Z,,,,",
    'CON-9000005,"",Gil,,gil@example.com,,,,,,,,,lead,,,,,2024-01-02T00:00:00Z,,,,',
]


@pytest.fixture(scope="module")
def dirty_export(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dirty-export")
    export = root / "export"
    generate_export(export, n_contacts=600, seed=11, truth_dir=root / "truth", with_attachment_files=False)
    contacts = export / "contacts.csv"
    header = contacts.read_text().split("\n", 1)[0].split(",")
    assert len(header) == 23, header  # the planted rows are written for the generator's 23 columns
    with contacts.open("a") as handle:
        handle.write("\n".join(PLANTED) + "\n")
    return export


def _careful(monkeypatch) -> None:
    """Every shortcut off: field counts by the csv module, every column trimmed, ids traced by the join,
    rows counted per file by a group-by."""
    scan = readers._scan_csv
    monkeypatch.setattr(
        readers, "_scan_csv", lambda source, sep: readers._Scan(scan(source, sep).newlines, None)
    )
    monkeypatch.setattr(validate, "_cleaners", lambda raw, columns: {c: validate._clean(c) for c in columns})
    monkeypatch.setattr(validate, "referenced_ids", lambda values, ids: ids)
    from holocrm_core.ingest import export as export_module

    def rows_by_file(frame, name, column="_source_file"):  # every row's file name hashed
        return frame.group_by(column).len(name).rename({column: "source_file"})

    monkeypatch.setattr(reconcile_module, "rows_by_file", rows_by_file)
    monkeypatch.setattr(export_module, "rows_by_file", rows_by_file)
    monkeypatch.setattr(
        export_module,
        "reconcile",
        lambda raw, staged, quarantined, id_column: reconcile(raw, staged.reverse(), quarantined, id_column),
    )


def test_fast_paths_stage_the_same_tables_as_the_careful_paths(dirty_export, tmp_path, monkeypatch):
    fast = ingest_export(dirty_export, warehouse=Warehouse(tmp_path / "fast"))
    with monkeypatch.context() as patch:
        _careful(patch)
        careful = ingest_export(dirty_export)
    for entity in schema.STAGING_ORDER:
        assert fast.tables[entity].equals(careful.tables[entity]), entity
        assert fast.tables[entity].schema == careful.tables[entity].schema, entity
        written = Warehouse(tmp_path / "fast").read(schema.entity(entity).staged_asset)
        assert written.equals(fast.tables[entity]), entity  # what the warehouse holds, bit for bit
    assert fast.quarantine.equals(careful.quarantine)
    assert fast.accounting.equals(careful.accounting)
    assert fast.check_rows_read_invariant() == [] and fast.unbalanced_files() == []

    # the planted defects took the paths they test
    contacts = fast.tables["contacts"]
    rejected = fast.quarantine.filter(pl.col("entity") == "contacts")
    malformed = dict(rejected.filter(pl.col("rule") == "malformed").select("record_id", "reason").iter_rows())
    assert {"CON-9000001", "CON-9000002"} <= set(malformed)
    cy = contacts.filter(pl.col("contact_id") == "CON-9000003").row(0, named=True)
    assert cy["first_name"] == "Cy, Jr." and cy["notes"] == "two\nlines, one note"
    dee = contacts.filter(pl.col("contact_id") == "CON-9000004").row(0, named=True)
    assert dee["first_name"] == "Dee" and dee["email"] == "dee@example.com"
    gil = contacts.filter(pl.col("contact_id") == "CON-9000005").row(0, named=True)
    assert gil["first_name"] is None
    assert rejected.filter(pl.col("rule") != "malformed").height > 0  # the generator's own dirty rows


def test_referenced_ids_answer_membership_exactly():
    import random

    rng = random.Random(5)
    for _ in range(200):
        ids = pl.Series(
            [f"A{rng.randint(0, 60)}" for _ in range(rng.randint(0, 50))], dtype=pl.String
        ).unique()
        values = pl.Series(
            [None if rng.random() < 0.2 else f"A{rng.randint(0, 80)}" for _ in range(rng.randint(0, 20))],
            dtype=pl.String,
        )
        subset = validate.referenced_ids(values, ids)
        assert set(subset.to_list()) <= set(ids.to_list())
        assert values.is_in(subset.implode()).equals(values.is_in(ids.implode()))


def test_rows_by_file_counts_as_a_group_by_does():
    import random

    from holocrm_core.reconcile import rows_by_file

    rng = random.Random(7)
    for _ in range(200):
        files = [rng.choice(["a.csv", "b.csv", None]) for _ in range(rng.randint(0, 6))]
        if rng.random() < 0.5:
            files = [files[0]] * len(files) if files else []
        frame = pl.DataFrame({"_source_file": pl.Series(files, dtype=pl.String)})
        expected = frame.group_by("_source_file").len("n").rename({"_source_file": "source_file"})
        counted = rows_by_file(frame, "n")
        assert counted.schema == expected.schema
        assert counted.sort("source_file").equals(expected.sort("source_file")), files
