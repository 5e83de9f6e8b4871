"""Ingest readers: delimiters, encodings, line numbering and the JSON/NDJSON/Parquet/XLSX formats."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from holocrm_core.ingest import ingest_export, read_export
from holocrm_core.ingest.readers import UnreadableFile, read_source, sniff_delimiter

HEADER = ["contact_id", "full_name", "email", "lifecycle_status", "created_at"]
ROWS = [
    ["C1", "Jürgen Müller", "jurgen@example.de", "lead", "2024-01-02T10:00:00Z"],
    ["C2", "Zoë Brontë", "zoe@example.fr", "customer", "2024-01-03"],
    ["C3", "Bad Email", "bad@", "lead", "2024-01-04"],
]


def _csv(sep: str = ",", newline: str = "\n", trailing: str = "") -> str:
    return newline.join(sep.join(row) + trailing for row in [HEADER, *ROWS]) + newline


def _check_contacts(folder: Path, source: str = "contacts.csv", bad_line: int = 4):
    result = ingest_export(folder)
    assert result.tables["contacts"]["full_name"].to_list() == ["Jürgen Müller", "Zoë Brontë"]
    bad = result.quarantine.row(0, named=True)
    assert (bad["source_file"], bad["line"], bad["rule"]) == (source, bad_line, "email")
    assert result.check_rows_read_invariant() == []


@pytest.mark.parametrize(
    ("sep", "encoding", "newline", "trailing"),
    [
        (";", "cp1252", "\r\n", ""),  # a European Excel export
        (",", "utf-8-sig", "\n", ""),  # UTF-8 with BOM
        ("\t", "utf-16", "\r\n", ""),  # Excel "Unicode text": UTF-16 with BOM, tabs
        ("|", "utf-8", "\n", ""),
        (",", "utf-8", "\r\n", ","),  # CRLF and a trailing comma on every line
        (",", "latin-1", "\n", ""),
    ],
)
def test_csv_dialects_and_encodings_are_detected(tmp_path, sep, encoding, newline, trailing):
    (tmp_path / "contacts.csv").write_bytes(_csv(sep, newline, trailing).encode(encoding))
    _check_contacts(tmp_path)


def test_bomless_utf16_is_detected(tmp_path):
    (tmp_path / "contacts.csv").write_bytes(_csv().encode("utf-16-le"))
    _check_contacts(tmp_path)


def test_cp1252_characters_outside_latin1_survive(tmp_path):
    text = (
        "contact_id,full_name,lifecycle_status,created_at,quote\nC1,Ann O’Neil,lead,2024-01-01,“great” – €5\n"
    )
    (tmp_path / "contacts.csv").write_bytes(text.encode("cp1252"))
    contacts = ingest_export(tmp_path).tables["contacts"]
    assert contacts["full_name"].to_list() == ["Ann O’Neil"]
    assert contacts["cf_quote"].to_list() == ["“great” – €5"]


def test_delimiter_sniffing_ignores_quoted_separators():
    assert sniff_delimiter('"a,b";c;d') == ";"
    assert sniff_delimiter("a\tb\tc") == "\t"
    assert sniff_delimiter("single") == ","


def test_json_array_envelope_and_ndjson(tmp_path):
    records = [dict(zip(HEADER, row, strict=True)) for row in ROWS]
    records[0]["tags"] = ["vip", "de"]
    (tmp_path / "contacts.json").write_text(json.dumps(records))
    raw = read_export(tmp_path)
    assert raw.tables["contacts"]["_line"].to_list() == [1, 2, 3]  # record index + 1
    assert raw.tables["contacts"]["tags"].to_list()[0] == "vip;de"
    result = ingest_export(tmp_path)
    assert result.tables["contacts"]["tags"].to_list()[0] == ["vip", "de"]
    assert result.quarantine.select("source_file", "line", "rule").row(0) == ("contacts.json", 3, "email")

    (tmp_path / "contacts.json").write_text(json.dumps({"results": records}))
    assert ingest_export(tmp_path).tables["contacts"].height == 2

    (tmp_path / "contacts.json").unlink()
    (tmp_path / "contacts.ndjson").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    result = ingest_export(tmp_path)
    assert result.quarantine.select("source_file", "line").row(0) == ("contacts.ndjson", 3)


def test_parquet_with_typed_columns(tmp_path):
    frame = pl.DataFrame(
        {
            "contact_id": ["C1", "C2"],
            "full_name": ["Ann Lee", "Bo Chan"],
            "lifecycle_status": ["lead", "customer"],
            "created_at": [dt.datetime(2024, 1, 2, 10, tzinfo=dt.UTC), dt.datetime(2024, 1, 3)],
            "score": [1.5, 2.0],
            "active": [True, False],
            "tags": [["a", "b"], []],
        }
    )
    frame.write_parquet(tmp_path / "contacts.parquet")
    raw = read_export(tmp_path).tables["contacts"]
    assert raw["created_at"].to_list() == ["2024-01-02T10:00:00Z", "2024-01-03T00:00:00Z"]
    assert raw["_line"].to_list() == [1, 2]
    staged = ingest_export(tmp_path).tables["contacts"]
    assert (
        staged["created_at"].to_list()
        == frame["created_at"].dt.replace_time_zone(None).dt.replace_time_zone("UTC").to_list()
    )
    assert staged["cf_score"].dtype == pl.Float64 and staged["cf_active"].to_list() == [True, False]
    assert staged["tags"].to_list() == [["a", "b"], None]  # an empty list is no tags


def test_xlsx_single_and_multi_sheet(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Contacts"
    sheet.append(HEADER)
    sheet.append(["C1", "Ann Lee", "ann@example.com", "lead", dt.datetime(2024, 1, 2, 10, 30)])
    sheet.append(["C2", "Bo Chan", "bo@", "lead", "2024-01-03"])
    book.save(tmp_path / "contacts.xlsx")
    result = ingest_export(tmp_path)
    assert str(result.tables["contacts"]["created_at"][0]) == "2024-01-02 10:30:00+00:00"
    assert result.quarantine.select("source_file", "line", "rule").row(0) == ("contacts.xlsx", 3, "email")

    deals = book.create_sheet("Deals")
    deals.append(["deal_id", "title", "stage", "created_at", "value"])
    deals.append(["D1", "Pilot", "Closed Won", "2024-02-01", 1200.5])
    book.save(tmp_path / "contacts.xlsx")
    result = ingest_export(tmp_path)
    assert result.tables["deals"]["stage"].to_list() == ["won"]
    assert {r.path for r in result.files} == {"contacts.xlsx[Contacts]", "contacts.xlsx[Deals]"}
    assert result.check_rows_read_invariant() == []


def test_empty_and_header_only_files(tmp_path):
    (tmp_path / "contacts.csv").write_text("")
    with pytest.raises(UnreadableFile, match="contacts.csv: the file is empty"):
        read_source(tmp_path / "contacts.csv")
    (tmp_path / "contacts.csv").write_text("\n\n  \n")
    with pytest.raises(UnreadableFile, match="only blank"):
        read_source(tmp_path / "contacts.csv")
    (tmp_path / "contacts.csv").write_text(",".join(HEADER) + "\n")
    result = ingest_export(tmp_path)
    assert result.files[0].error is None and result.files[0].rows_read == 0
    assert result.tables["contacts"].is_empty()


def test_binary_garbage_named_csv_is_rejected_with_the_file_name(tmp_path):
    (tmp_path / "contacts.csv").write_bytes(bytes(range(256)) * 10)
    (tmp_path / "companies.csv").write_text("company_id,name\nCMP-1,Acme\n")
    result = ingest_export(tmp_path)
    errors = {r.path: r.error for r in result.files if r.error}
    assert list(errors) == ["contacts.csv"] and "not a text table" in errors["contacts.csv"]
    assert result.tables["companies"]["name"].to_list() == ["Acme"]


TRICKY_CSV = [  # the first three are well-formed CSV (ragged, blank, quoted lines, CRLF)
    'id,name,note\n1,a,b\n2,"x, y","multi\nline ""quoted"" note"\n3,c\n4,d,e,f\n\n5,e,f,,\n6,"g",h',
    'id,name,\r\n1,a\r\n2,b,\r\n3,"c\r\nd",e\r\n4\r\n\r\n5,"",\r\n',
    'id;name\n1;"a;b"\n2;c;d\n"3";"";\n  \n',
    'id,name\n1,ab"c\n2,d\n',  # a quote inside an unquoted field: the csv module decides
    'id,name\n1,"a"b,c\n',  # text after a closing quote: the csv module decides
    'id,name\n1,"never closed\n2,b\n',
    "id,name\n1,a\r2,b\n",  # a bare CR
    "id,name",
]


@pytest.mark.parametrize("chunk", [2, 3, 7, 1 << 25])
@pytest.mark.parametrize("text", TRICKY_CSV)
def test_vectorised_field_counts_equal_the_csv_modules_or_defer_to_it(tmp_path, monkeypatch, text, chunk):
    import io

    from holocrm_core.ingest import readers

    monkeypatch.setattr(readers, "_SCAN_BYTES", chunk)  # records and quotes across chunk boundaries
    sep = ";" if text.startswith("id;") else ","
    path = tmp_path / "f.csv"
    path.write_bytes(text.encode())
    expected = readers._wrong_field_counts_by_csv_module(path, sep)
    for source in (path, io.BytesIO(text.encode())):
        counted = readers._field_counts_by_bytes(source, sep)
        assert counted is None or counted == expected, (counted, expected)
    if TRICKY_CSV.index(text) < 3 and chunk > len(text):  # well-formed quoting: answered without csv
        assert readers._field_counts_by_bytes(path, sep) == expected
    assert readers._wrong_field_counts(path, sep) == expected


def _random_csv(rng) -> str:
    """A small CSV with the defects exports have: ragged records, quoted delimiters, quotes and line breaks,
    escaped quotes, blank lines, CRLF or bare CR line ends, stray and unclosed quotes, no final line end."""
    width = rng.randint(1, 4)
    fields = ["a", "", "b c", '"x,y"', '"q ""z"""', '"multi\nline"', '""', 'o"dd', '"open', " ", '"x"y']
    weights = [8, 4, 3, 3, 2, 2, 2, 1, 1, 1, 1]
    eol = rng.choice(["\n", "\n", "\r\n", "\r"])
    lines = [",".join(f"h{i}" for i in range(width)) + rng.choice(["", ","])]
    for _ in range(rng.randint(0, 8)):
        if rng.random() < 0.1:
            lines.append("")
            continue
        n = width + rng.choice([0, 0, 0, 0, -1, 1, 2])
        lines.append(",".join(rng.choices(fields, weights, k=max(n, 1))))
    return eol.join(lines) + rng.choice([eol, ""])


@pytest.mark.parametrize("chunk", [1, 3, 16, 1 << 25])
def test_byte_scan_agrees_with_the_csv_module_on_random_exports(tmp_path, monkeypatch, chunk):
    """The one pass over the bytes gives exactly the line breaks and field counts of the slow readers."""
    import io
    import random

    from holocrm_core.ingest import readers

    monkeypatch.setattr(readers, "_SCAN_BYTES", chunk)
    rng = random.Random(chunk)
    answered = 0
    for case in range(300):
        data = _random_csv(rng).encode()
        path = tmp_path / f"{case}.csv"
        path.write_bytes(data)
        newlines = (data.count(b"\n"), data.endswith(b"\n"), data.count(b"\r") != data.count(b"\r\n"))
        expected = readers._wrong_field_counts_by_csv_module(path, ",")
        for source in (path, io.BytesIO(data)):
            scan = readers._scan_csv(source, ",")
            assert scan.newlines == newlines, data
            assert scan.counts is None or scan.counts == expected, (data, scan.counts, expected)
        answered += scan.counts is not None
    if chunk >= 16:  # the header ends in the first chunk: most files are answered without the csv module
        assert answered > 60
