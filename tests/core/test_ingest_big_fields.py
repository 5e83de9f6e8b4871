"""A CSV field of any size is read (a 5 MB e-mail body in notes), and costs nothing but itself when bad."""

from __future__ import annotations

import csv

import polars as pl

from holocrm_core.ingest import ingest_export
from holocrm_core.ingest.readers import read_source
from holocrm_core.synth import generate_export

FIVE_MB = 5 * 1024 * 1024


def email_body(size: int) -> str:
    line = 'Hi team, following up on "the renewal"; figures below, 12,5% off.\n'
    return (line * (size // len(line) + 1))[:size]


def test_a_5mb_field_is_read_with_every_other_row_of_the_file(tmp_path):
    generate_export(tmp_path / "export", n_contacts=120, seed=5, truth_dir=tmp_path / "truth")
    path = tmp_path / "export" / "contacts.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header, data = rows[0], rows[1:]
    notes = header.index("notes")
    data[7][notes] = email_body(FIVE_MB)
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([header, *data])

    [(_, frame)] = read_source(path)
    assert frame.height == len(data)
    assert max(len(v or "") for v in frame["notes"]) == FIVE_MB

    result = ingest_export(tmp_path / "export")
    report = next(f for f in result.files if f.path == "contacts.csv")
    assert report.error is None and report.rows_read == len(data)
    assert report.rows_read == report.rows_staged + report.rows_quarantined
    staged = result.tables["contacts"]
    big = staged.filter(pl.col("notes").str.len_chars() == FIVE_MB)
    assert big.height == 1 and big["contact_id"][0] == data[7][header.index("contact_id")]


def test_a_huge_field_with_a_stray_quote_costs_one_record_not_the_file(tmp_path):
    body = email_body(300_000).replace('"', "").replace("\n", " ")  # one 300 KB line
    lines = [
        "contact_id,full_name,email,notes",
        "C1,Ann Lee,ann@example.com,short",
        f'C2,Bob Roe,bob@example.com,"{body}',  # quote opened, never closed
        "C3,Cy Poe,cy@example.com,fine",
    ]
    (tmp_path / "contacts.csv").write_text("\n".join(lines) + "\n")
    [(_, frame)] = read_source(tmp_path / "contacts.csv")
    assert frame["contact_id"].to_list() == ["C1", "C2", "C3"]
    defects = frame["_defect"].to_list()
    assert defects[0] is None and defects[2] is None and "never closed" in defects[1]
    assert len(frame["_record"][1]) > 250_000  # the quarantine keeps the record as written
