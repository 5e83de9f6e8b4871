"""Malformed CSV records lose no value: ragged rows, unterminated quotes and mixed line endings.

The property test generates random contact exports with planted defects and checks the two promises of the
ingest: rows read = rows staged + rows quarantined, and every input cell is found in the staged table or in
the quarantine.
"""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from holocrm_core.ingest import MissingColumnError, ingest_export

HEADER = ["contact_id", "first_name", "last_name", "lifecycle_status", "created_at", "notes"]
TEXT_COLUMNS = ["first_name", "last_name", "notes"]  # kept as written (trimmed), so searchable verbatim


def _row(i: int, first: str = "Ann", last: str = "Lee", notes: str = "") -> list[str]:
    return [f"C{i}", first, last, "lead", "2024-01-02", notes]


def _line(fields: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(fields)  # the terminator also decides what gets quoted
    return out.getvalue()[:-1]


def _ingest(tmp_path: Path, text: str):
    (tmp_path / "contacts.csv").write_bytes(text.encode("utf-8"))
    return ingest_export(tmp_path)


def _malformed(result) -> dict[int, dict]:
    rows = result.quarantine.filter(result.quarantine["rule"] == "malformed").to_dicts()
    return {row["line"]: row for row in rows}


@pytest.mark.parametrize(
    ("bad_line", "found"),
    [("C2,Bob,Ray,lead,2024-01-02,hi,EXTRA VALUE", "7 fields"), ("C2,Bob,Ray,lead", "4 fields")],
)
def test_a_ragged_row_is_quarantined_with_its_whole_text(tmp_path, bad_line, found):
    text = "\n".join([",".join(HEADER), _line(_row(1)), bad_line, _line(_row(3))]) + "\n"
    result = _ingest(tmp_path, text)
    assert result.tables["contacts"]["contact_id"].to_list() == ["C1", "C3"]
    bad = _malformed(result)[3]
    assert bad["value"] == bad_line and found in bad["reason"] and bad["record_id"] == "C2"
    report = result.files[0]
    assert (report.rows_read, report.rows_staged, report.rows_quarantined) == (3, 2, 1)
    assert result.unbalanced_files() == []


def test_an_unterminated_quote_costs_one_line_not_the_rest_of_the_file(tmp_path):
    lines = [",".join(HEADER), _line(_row(1)), 'C2,"Bob,Ray,lead,2024-01-02,', _line(_row(3)), _line(_row(4))]
    result = _ingest(tmp_path, "\n".join(lines) + "\n")
    assert result.tables["contacts"]["contact_id"].to_list() == ["C1", "C3", "C4"]
    bad = _malformed(result)[3]
    assert "quote" in bad["reason"] and bad["value"] == lines[2]
    assert result.check_rows_read_invariant() == []


def test_a_line_break_in_the_extra_field_of_a_ragged_row_shifts_no_other_row(tmp_path):
    """polars drops a ragged record's extra fields, and with them their line breaks: the rows after it must
    still carry their own lines (found by the property test: C2 was quarantined with C1's text)."""
    lines = [",".join(HEADER), 'C0,0,0,lead,2024-01-02,0,"0\n0"', "C1,0,0,lead,2024-01-02,0,0"]
    result = _ingest(tmp_path, "\n".join([*lines, "C2,0,0,lead,2024-01-02,00"]) + "\n")
    assert result.tables["contacts"].select("contact_id", "notes").rows() == [("C2", "00")]
    bad = _malformed(result)
    assert sorted(bad) == [2, 4] and bad[2]["value"] == lines[1] and bad[4]["value"] == lines[2]
    assert result.check_rows_read_invariant() == []


@pytest.mark.parametrize("endings", [["\r\n", "\n", "\r\n"], ["\r", "\r", "\n"], ["\r", "\n", "\r\n"]])
def test_mixed_line_endings_read_every_row_with_its_line(tmp_path, endings):
    rows = [",".join(HEADER), _line(_row(1)), _line(_row(2, notes="two\nlines")), _line(_row(3, "Zoë"))]
    text = "".join(row + end for row, end in zip(rows, endings + ["\n"], strict=True))
    result = _ingest(tmp_path, text)
    contacts = result.tables["contacts"]
    assert contacts["contact_id"].to_list() == ["C1", "C2", "C3"]
    assert contacts["notes"].to_list()[1] == "two\nlines"
    assert result.quarantine.height == 0


def test_a_contact_file_without_lifecycle_status_defaults_to_lead_with_a_warning(tmp_path):
    header = [c for c in HEADER if c != "lifecycle_status"]
    text = ",".join(header) + "\nC1,Ann,Lee,2024-01-02,\nC2,Bob,Ray,2024-01-03,\n"
    result = _ingest(tmp_path, text)
    assert result.tables["contacts"]["lifecycle_status"].to_list() == ["lead", "lead"]
    assert result.quarantine.height == 0
    assert any("lifecycle_status" in w and "2 rows" in w and "'lead'" in w for w in result.warnings)


def test_a_required_column_missing_from_the_whole_file_is_one_clear_error(tmp_path):
    text = "contact_id,first_name,lifecycle_status\nC1,Ann,lead\n"
    with pytest.raises(MissingColumnError) as err:
        _ingest(tmp_path, text)
    message = str(err.value)
    assert "created_at" in message and "contacts.csv" in message and "mapping" in message


# ------------------------------------------------------------------------------------------ property


# Cells: letters (accents too), digits, spaces inside, the delimiter, quotes and line breaks.
CELL = (
    st.text(alphabet=st.sampled_from(list('abcXYZéß019 ,;"\n')), min_size=1, max_size=12)
    .map(str.strip)
    .filter(bool)
)
# Beside a stray quote: cells that need no quoting (no quote, delimiter or line break)
SAFE_CELL = CELL.map(lambda c: c.replace('"', "'").replace(",", ";").replace("\n", " ").strip()).filter(bool)
DEFECTS = st.sampled_from(["none", "none", "none", "extra", "short"])


@st.composite
def exports(draw):
    """(CSV text, cells per row, {line: defect}) for a contacts file with planted defects."""
    n = draw(st.integers(1, 12))
    unterminated = draw(st.one_of(st.none(), st.integers(0, n - 1)))
    cell = SAFE_CELL if unterminated is not None else CELL  # a stray quote must be the file's only quote
    endings = draw(st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=n + 1, max_size=n + 1))
    lines, cells, defects, line_no = [",".join(HEADER)], [], {}, 2
    for i in range(n):
        first, last, notes = draw(cell), draw(cell), draw(cell)
        fields = _row(i, first, last, notes)
        defect = "quote" if i == unterminated else draw(DEFECTS)
        if defect == "extra":
            fields = fields + [draw(cell)]
        elif defect == "short":
            fields, notes = fields[:-1], None
        text = _line(fields)
        if defect == "quote":
            text = _line([f"C{i}", first.replace("\n", " "), last.replace("\n", " ")]).replace(",", ',"', 1)
            first, last = first.replace("\n", " "), last.replace("\n", " ")
            notes = None
        lines.append(text)
        cells.append([c for c in (first, last, notes, *fields[len(HEADER) :]) if c])
        defects[line_no] = defect
        line_no += 1 + text.count("\n") + (text.count("\r") if "\r" in text else 0)
    body = "".join(line + end for line, end in zip(lines, endings, strict=True))
    return body, cells, defects


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exports())
def test_property_rows_balance_and_every_cell_survives(export):
    text, cells, defects = export
    with tempfile.TemporaryDirectory() as tmp:
        result = _ingest(Path(tmp), text)
    contacts, quarantine = result.tables["contacts"], result.quarantine
    report = next(f for f in result.files if f.entity == "contacts")
    assert report.rows_read == len(cells), text
    assert contacts.height + quarantine.filter(quarantine["line"] > 0).height == len(cells)
    assert result.check_rows_read_invariant() == [] and result.unbalanced_files() == []
    output = [v for c in TEXT_COLUMNS for v in contacts[c].drop_nulls().to_list()]
    for record in quarantine["value"].drop_nulls().to_list():  # a malformed record's text, and its fields
        output += [record, *next(csv.reader(io.StringIO(record, newline=""), strict=False), [])]
    for row in cells:
        for value in row:
            assert any(value in out for out in output), (value, text)
    planted = {line for line, defect in defects.items() if defect != "none"}
    assert planted == set(_malformed(result)), (defects, quarantine.to_dicts())
