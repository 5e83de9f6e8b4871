"""Read one export file (CSV/TSV, JSON, NDJSON, Parquet, XLSX) into an all-string frame with line numbers.

Everything is read as text: typing is the validator's job, so a malformed value can be quarantined with
the exact characters the CRM wrote. Each frame gets ``_line``, the record's position in its file by the
shared convention: for CSV the 1-based physical line (header = line 1, quoted line breaks counted), for
XLSX the sheet row (header = row 1), for JSON/NDJSON/Parquet the record index + 1.

CSV dialects are sniffed: delimiter among ``, ; TAB |`` from the header line; encoding from a BOM (UTF-8,
UTF-16), a UTF-8 trial, NUL-byte layout (BOM-less UTF-16), then Windows-1252 when the bytes decode as such,
else charset-normalizer's guess. Trailing delimiters (an empty, unnamed last column) and blank lines are
tolerated; blank lines are not records.

No value is lost to a malformed CSV record: a record with more or fewer fields than the header, or a line
whose quote is never closed, keeps its row (so it is counted as read) with ``_defect`` (the reason) and
``_record`` (the record's text exactly as written); staging sends such rows to the quarantine. Clean files
take polars' fast reader; a file with an unterminated quote or with bare CR line ends (old Mac exports,
mixed line endings) is read by a record-by-record reader that can resynchronise after the broken line.

A field may be as large as the file itself (a 5 MB e-mail body in ``notes``): Python's csv module, which
checks every record's field count, is given a field limit of at least the file's size (its default, 128 KiB,
made one long field fail the whole file).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl

LINE = "_line"
DEFECT = "_defect"  # why a CSV record could not be split into the header's columns (None when it could)
RECORD = "_record"  # the defective record's text as written, so the quarantine keeps every value
READ_META = (LINE, DEFECT, RECORD)
CSV_SUFFIXES = {".csv", ".tsv", ".txt", ".tab"}
JSON_SUFFIXES = {".json"}
NDJSON_SUFFIXES = {".ndjson", ".jsonl"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"}
DATA_SUFFIXES = CSV_SUFFIXES | JSON_SUFFIXES | NDJSON_SUFFIXES | PARQUET_SUFFIXES | EXCEL_SUFFIXES
DELIMITERS = [",", ";", "\t", "|"]
_SNIFF_BYTES = 1 << 16


class UnreadableFile(Exception):
    """A file that cannot be read as a table; the message says what is wrong and what to do."""


def read_source(
    path: Path, *, delimiter: str | None = None, encoding: str | None = None
) -> list[tuple[str, pl.DataFrame]]:
    """All tables in one file as ``(name, frame)``: one per file, or one per non-empty sheet of a workbook.

    ``name`` is the file name, or ``"book.xlsx[Sheet]"`` for the sheets of a multi-sheet workbook. Frames
    hold String columns plus ``_line`` (Int64). Raises :class:`UnreadableFile` with a clear reason.
    """
    path = Path(path)
    if not path.is_file():
        raise UnreadableFile(f"{path.name}: file not found")
    if path.stat().st_size == 0:
        raise UnreadableFile(f"{path.name}: the file is empty (0 bytes): re-export it")
    suffix = path.suffix.lower()
    try:
        if suffix in JSON_SUFFIXES or suffix in NDJSON_SUFFIXES:
            return [(path.name, _read_json(path, suffix in NDJSON_SUFFIXES, encoding))]
        if suffix in PARQUET_SUFFIXES:
            frame = pl.read_parquet(path)
            return [(path.name, _with_record_lines(_all_strings(frame), first=1))]
        if suffix in EXCEL_SUFFIXES:
            return _read_excel(path)
        return [(path.name, _read_csv(path, delimiter, encoding))]
    except (UnreadableFile, TypeError, AttributeError, NameError, KeyError):
        raise  # our own message, or a programming error that must not pass for a corrupt file
    except Exception as exc:  # polars/fastexcel/pyarrow errors: corrupt or truncated content
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnreadableFile(
            f"{path.name}: cannot be read as {_kind(suffix)} ({first[:200]}): the file looks corrupt or "
            "truncated; re-export it"
        ) from exc


def _kind(suffix: str) -> str:
    if suffix in PARQUET_SUFFIXES:
        return "Parquet"
    if suffix in EXCEL_SUFFIXES:
        return "a spreadsheet"
    if suffix in JSON_SUFFIXES:
        return "JSON"
    if suffix in NDJSON_SUFFIXES:
        return "NDJSON"
    return "CSV"


def peek_headers(path: Path, delimiter: str | None = None) -> list[str]:
    """The column names of a file without reading its records (empty when it cannot be read)."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in PARQUET_SUFFIXES:
            return list(pl.read_parquet_schema(path))
        if suffix in CSV_SUFFIXES:
            with open(path, "rb") as handle:
                head = handle.read(_SNIFF_BYTES)
            text = head.decode(sniff_encoding(head), errors="replace").lstrip("\ufeff")
            line = text.split("\n", 1)[0].rstrip("\r")
            import csv

            return next(csv.reader([line], delimiter=delimiter or sniff_delimiter(line)), [])
        return [c for name, frame in read_source(path) for c in frame.columns if c not in READ_META]
    except Exception:
        return []


# ---------------------------------------------------------------- encodings and dialects


def sniff_encoding(head: bytes, path: Path | None = None) -> str:
    """The text encoding of a file from its first bytes (the whole file when it is not UTF-8)."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith(codecs.BOM_UTF16_LE) or head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16"
    if head.startswith(codecs.BOM_UTF32_LE) or head.startswith(codecs.BOM_UTF32_BE):
        return "utf-32"
    sample = head[:_SNIFF_BYTES]
    if sample and sample.count(b"\x00") > len(sample) // 4:
        # BOM-less UTF-16: ASCII text has a NUL in every other byte
        even_nuls = sample[0::2].count(b"\x00")
        odd_nuls = sample[1::2].count(b"\x00")
        if odd_nuls > even_nuls * 4:
            return "utf-16-le"
        if even_nuls > odd_nuls * 4:
            return "utf-16-be"
        raise UnreadableFile("binary content (NUL bytes), not a text table")
    if b"\x00" in sample:
        raise UnreadableFile("binary content (NUL bytes), not a text table")
    try:
        # a multi-byte character may be cut at the end of the sample
        sample.decode("utf-8") if len(sample) < _SNIFF_BYTES else sample[:-4].decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    return _guess_single_byte(path.read_bytes() if path is not None else head)


def _guess_single_byte(data: bytes) -> str:
    """Windows-1252 when the bytes decode as such (what Windows CRMs and Excel write in the West), else
    charset-normalizer's guess, else latin-1 (which decodes anything)."""
    try:
        data.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data[: 1 << 20]).best()
    return best.encoding if best is not None else "latin-1"


def sniff_delimiter(header_line: str) -> str:
    """The delimiter that splits the header line into the most fields (quotes respected)."""
    counts = dict.fromkeys(DELIMITERS, 0)
    in_quotes = False
    for ch in header_line:
        if ch == '"':
            in_quotes = not in_quotes
        elif not in_quotes and ch in counts:
            counts[ch] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def allow_fields_up_to(size: int) -> None:
    """Raise the csv module's field limit (process-wide, only ever raised) so a field of ``size`` bytes reads."""
    wanted = min(max(size + 1, csv.field_size_limit()), 2**31 - 1)
    if wanted > csv.field_size_limit():
        csv.field_size_limit(wanted)


def _read_csv(path: Path, delimiter: str | None, encoding: str | None) -> pl.DataFrame:
    # utf-16 files double in size once decoded to UTF-8 text: allow twice the file's bytes
    allow_fields_up_to(2 * path.stat().st_size)
    with open(path, "rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if not head.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        raise UnreadableFile(f"{path.name}: the file holds only blank space: re-export it")
    try:
        enc = encoding or sniff_encoding(head, path)
    except UnreadableFile as exc:
        raise UnreadableFile(f"{path.name}: {exc}: it is not a CSV file; re-export it as CSV") from exc
    source: Path | io.BytesIO
    if enc in ("utf-8", "utf-8-sig", "ascii"):
        source = path  # polars reads UTF-8 (BOM included) straight from disk, memory-mapped
        text_head = head.decode("utf-8", errors="replace")
    else:
        try:
            text = path.read_bytes().decode(enc)
        except (UnicodeDecodeError, LookupError) as exc:
            raise UnreadableFile(
                f"{path.name}: cannot be decoded as {enc} ({exc}): save it as UTF-8"
            ) from exc
        text = text.lstrip("\ufeff")
        text_head = text[:_SNIFF_BYTES]
        source = io.BytesIO(text.encode("utf-8"))
        del text
    header_line = re.split(r"\r\n|\r|\n", text_head.lstrip("\ufeff"), maxsplit=1)[0]
    sep = delimiter or sniff_delimiter(header_line)
    frame, failure = None, None
    if source is path:
        # line breaks and field counts (one pass over the bytes, numpy on one thread) while polars parses
        # the same file on its own threads
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="holocrm-csv-scan") as pool:
            scanning = pool.submit(_scan_csv, source, sep)
            try:
                frame = _polars_csv(source, sep)
            except Exception as exc:  # judged below, once the scan says whether polars could read it at all
                failure = exc
            scan = scanning.result()
    else:
        scan = _scan_csv(source, sep)
        if not scan.newlines[2]:
            try:
                frame = _polars_csv(source, sep)
            except pl.exceptions.ComputeError as exc:
                failure = exc
    if scan.newlines[2]:  # bare CR line ends: polars splits records on LF only
        return _read_csv_records(_source_text(source), sep)
    if failure is not None:
        if not isinstance(failure, pl.exceptions.ComputeError):
            raise failure
        if source is path and "utf-8" in str(failure).lower():
            # valid UTF-8 at the start, not further down: decode the whole file with a detected code page
            enc = _guess_single_byte(path.read_bytes())
            source = io.BytesIO(path.read_bytes().decode(enc, errors="replace").encode("utf-8"))
            return _checked_csv(source, sep, _scan_csv(source, sep))
        # an unterminated quote (polars cannot parse past it): the careful reader resynchronises
        return _read_csv_records(_source_text(source), sep)
    return _checked_csv(source, sep, scan, frame)


def _checked_csv(source, sep: str, scan: _Scan, frame: pl.DataFrame | None = None) -> pl.DataFrame:
    """polars' records, numbered, after a field count of every record (the byte scan's, else Python's csv
    module's): records with the wrong number of fields get ``_defect``/``_record``; when the two readers
    disagree on where records start, the careful reader decides."""
    if frame is None:
        try:
            frame = _polars_csv(source, sep)
        except pl.exceptions.ComputeError:
            return _read_csv_records(_source_text(source), sep)
    frame = _csv_lines(frame, scan.newlines)
    if frame is None:
        return _read_csv_records(_source_text(source), sep)
    try:
        width, wrong = (
            scan.counts if scan.counts is not None else _wrong_field_counts_by_csv_module(source, sep)
        )
    except csv.Error:
        return _read_csv_records(_source_text(source), sep)
    if not wrong:
        return frame
    lines = frame[LINE] if LINE in frame.columns else pl.Series(LINE, [], dtype=pl.Int64)
    if not set(wrong) <= set(lines.to_list()):
        return _read_csv_records(_source_text(source), sep)
    text_lines = re.split(r"\r\n|\n", _source_text(source))
    defects, records = {}, {}
    for line, found in wrong.items():
        defects[line] = _field_count_reason(line, found, width)
        records[line] = _record_from(text_lines, line - 1)[0]
    return frame.with_columns(
        lines.replace_strict(defects, default=None, return_dtype=pl.String).alias(DEFECT),
        lines.replace_strict(records, default=None, return_dtype=pl.String).alias(RECORD),
    )


def _wrong_field_counts(source, sep: str) -> tuple[int, dict[int, int]]:
    """(header width, {first physical line of a record: its field count} for records that do not fit)."""
    counted = _field_counts_by_bytes(source, sep)
    if counted is not None:
        return counted
    return _wrong_field_counts_by_csv_module(source, sep)


_SCAN_BYTES = 1 << 21  # bytes per chunk of the vectorised scan: a chunk and its masks stay in cache


class _Scan:
    """What one pass over a CSV file's bytes found: its line breaks (``newlines``: count, whether the file
    ends with one, whether a CR stands without a LF) and its records' field counts (``counts``: the answer
    of ``_wrong_field_counts``, or None when the csv module must decide)."""

    def __init__(self, newlines: tuple[int, bool, bool], counts: tuple[int, dict[int, int]] | None):
        self.newlines = newlines
        self.counts = counts


def _field_counts_by_bytes(source, sep: str) -> tuple[int, dict[int, int]] | None:
    """``_wrong_field_counts`` from the byte scan (:func:`_scan_csv`), or None when the csv module decides."""
    return _scan_csv(source, sep).counts


def _scan_csv(source, sep: str) -> _Scan:
    """Line breaks and ``_wrong_field_counts`` in one pass over the bytes (numpy, chunk by chunk, through one
    reused buffer: the file's pages never count as this process's memory).

    Positions, not per-byte arithmetic: the line feeds, quotes and delimiters of a chunk are located in one
    pass (their positions, told apart by their byte; CRs only in a chunk that has one), and chunks are small
    enough (2 MiB) that a chunk and its masks stay in the CPU cache; a byte is inside a quoted field when an odd number of quotes precede it (an
    escaped "" keeps the parity); a record ends at a line feed outside quotes and has one more field than
    its delimiters outside quotes. That is the csv module's reading when every quote is well placed, so the
    field counts answer only then: None (the caller runs the csv module) when a quote opens other than at a
    field start or closes other than at a field end, a quote is never closed, a CR is not followed by a LF,
    the delimiter is not one byte, or the header does not end in the first chunk. A record with more fields
    than the header is re-read by the csv module (its extra fields may be blank: ``_HeaderShape.fits``)."""
    import numpy as np

    raw_sep = sep.encode()
    counting = len(raw_sep) == 1 and raw_sep not in (b"\n", b"\r", b'"')  # else only line breaks are counted
    sep_byte, quote, lf, cr = (raw_sep[0] if counting else -1), 34, 10, 13
    if isinstance(source, io.BytesIO):
        data = source.getbuffer()
        size = len(data)
        handle = None
    else:
        size = Path(source).stat().st_size
        handle = open(source, "rb", buffering=0)  # noqa: SIM115 (closed below)
        buffer = bytearray(max(1, min(size, _SCAN_BYTES)))
        view = np.frombuffer(buffer, dtype=np.uint8)
    # reused: no page faults per chunk
    flags = np.empty(max(1, min(size, _SCAN_BYTES)), dtype=np.bool_)
    marks = np.empty_like(flags) if counting else flags

    def where(b, byte: int):
        found = flags[: len(b)]
        np.equal(b, byte, out=found)
        return found

    shape: _HeaderShape | None = None
    offset = quotes_before = lines_before = 0
    n_lf = n_cr = n_crlf = 0
    last_byte, pending_close = lf, False
    start, start_line, seps_open = 0, 1, 0  # the record in progress: first byte, first line, delimiters
    long_records: list[tuple[int, int, int]] = []
    wrong: dict[int, int] = {}
    try:
        while offset < size:
            if handle is None:
                b = np.frombuffer(data[offset : offset + _SCAN_BYTES], dtype=np.uint8)
            else:
                got = handle.readinto(buffer)
                if not got:
                    break
                b = view[:got]
            n = len(b)
            if counting:
                # one pass for the three bytes that matter: their positions, told apart by the byte itself
                # (a few percent of the chunk), so that every later step works on positions, not bytes
                found = marks[:n]
                np.equal(b, lf, out=found)
                np.logical_or(found, where(b, quote), out=found)
                np.logical_or(found, where(b, sep_byte), out=found)
                pos = np.flatnonzero(found)
                kind = b[pos]
                is_lf = kind == lf
                feeds = pos[is_lf]
            else:
                feeds = np.flatnonzero(where(b, lf))
            has_cr = (
                buffer.find(b"\r", 0, n) >= 0 if handle is not None else bool(np.count_nonzero(where(b, cr)))
            )
            if has_cr:
                crs = np.flatnonzero(where(b, cr))
                n_cr += len(crs)
                inner = crs[crs < n - 1]
                n_crlf += int(np.count_nonzero(b[inner + 1] == lf))
            if last_byte == cr and b[0] == lf:
                n_crlf += 1
            n_lf += len(feeds)
            if counting and n_cr != n_crlf + (1 if b[-1] == cr else 0):
                counting = False  # a bare CR: the csv module counts it as a line break, even inside quotes
            if counting and pending_close and b[0] not in (sep_byte, cr, lf, quote):
                counting = False
            if counting:
                is_quote = kind == quote
                quotes = pos[is_quote]
                if len(quotes):
                    opens = ((quotes_before + np.arange(len(quotes))) % 2) == 0
                    opening, closing = quotes[opens], quotes[~opens]
                    prev = np.where(opening > 0, b[np.maximum(opening - 1, 0)], last_byte)
                    ok = (prev == sep_byte) | (prev == lf) | (prev == quote)
                    if offset == 0:
                        ok |= opening == 0
                    inner = closing[closing < n - 1]
                    nxt = b[inner + 1]
                    if (
                        not ok.all()
                        or not ((nxt == sep_byte) | (nxt == cr) | (nxt == lf) | (nxt == quote)).all()
                    ):
                        counting = False  # a quote inside an unquoted field, or text after a closing quote
                    pending_close = bool(len(closing) and closing[-1] == n - 1)
                else:
                    pending_close = False
            if counting:
                if len(quotes) or quotes_before % 2 == 1:
                    # a line feed or delimiter is outside quotes when an even number of quotes precede it
                    outside = ((quotes_before + np.cumsum(is_quote)) & 1) == 0
                    at_end = is_lf & outside
                    at_sep = (kind == sep_byte) & outside
                else:
                    at_end, at_sep = is_lf, ~is_lf
                ends = pos[at_end]
                seps_so_far = np.cumsum(at_sep)  # delimiters outside quotes up to each position
                n_seps = int(seps_so_far[-1]) if len(seps_so_far) else 0
                if len(ends) and shape is None:
                    if offset != 0:
                        counting = False
                    else:
                        text = bytes(b[: int(ends[0])]).decode("utf-8-sig", errors="replace")
                        shape = _HeaderShape(
                            next(csv.reader(io.StringIO(text, newline=""), delimiter=sep), [])
                        )
                if counting and len(ends):
                    before = seps_so_far[at_end]  # delimiters before each record end
                    counts = np.diff(before, prepend=0) + 1
                    counts[0] += seps_open
                    bad = np.flatnonzero((counts < shape.named) | (counts > shape.full))
                    for k in bad.tolist():
                        first = start if k == 0 else offset + int(ends[k - 1]) + 1
                        last = offset + int(ends[k])
                        length = last - first
                        before_end = int(b[ends[k] - 1]) if ends[k] > 0 else last_byte
                        if length == 0 or (length == 1 and before_end == cr):
                            continue  # a blank line
                        if first == 0:
                            continue  # the header
                        if k == 0:
                            line = start_line
                        else:
                            line = lines_before + int(np.searchsorted(feeds, ends[k - 1], side="right")) + 1
                        if counts[k] > shape.full:
                            long_records.append((first, last, line))
                        else:
                            wrong[line] = int(counts[k])
                    start = offset + int(ends[-1]) + 1
                    start_line = lines_before + int(np.searchsorted(feeds, ends[-1], side="right")) + 1
                    seps_open = n_seps - int(before[-1])
                elif counting:
                    seps_open += n_seps
                quotes_before += len(quotes)
            lines_before += len(feeds)
            last_byte = int(b[-1])
            offset += n
    finally:
        if handle is not None:
            handle.close()
    newlines = (n_lf, last_byte == lf and offset > 0, n_cr != n_crlf)
    if not counting or quotes_before % 2 or last_byte == cr or shape is None:
        return _Scan(newlines, None)  # see above; a header without a line feed, a bare CR at the end
    if offset > start:  # the last record, without a final line feed
        count = seps_open + 1
        if not (shape.named <= count <= shape.full):
            if count > shape.full:
                long_records.append((start, offset, start_line))
            else:
                wrong[start_line] = count
    if long_records:
        whole = source.getbuffer() if isinstance(source, io.BytesIO) else Path(source).read_bytes()
        for first, last, line in long_records:
            text = bytes(whole[first:last]).decode("utf-8", errors="replace")
            record = next(csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=False), [])
            if record and not shape.fits(record):
                wrong[line] = len(record)
    return _Scan(newlines, (shape.named, dict(sorted(wrong.items()))))


def _wrong_field_counts_by_csv_module(source, sep: str) -> tuple[int, dict[int, int]]:
    is_buffer = isinstance(source, io.BytesIO)
    binary = io.BytesIO(source.getbuffer()) if is_buffer else open(source, "rb")  # noqa: SIM115 (wrapper closes it)
    with io.TextIOWrapper(binary, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=sep, strict=False)
        shape = _HeaderShape(next(reader, []))
        wrong, start = {}, reader.line_num + 1
        for record in reader:
            if record and not shape.fits(record):
                wrong[start] = len(record)
            start = reader.line_num + 1
    return shape.named, wrong


class _HeaderShape:
    """How many fields a record may have: the header's, give or take the unnamed columns that trailing
    delimiters make (data lines may omit them, or carry them empty)."""

    def __init__(self, header: list[str]):
        self.full = len(header)
        named = list(header)
        while named and named[-1].strip() == "":
            named.pop()
        self.named = len(named)

    def fits(self, record: list[str]) -> bool:
        n = len(record)
        if self.named <= n <= self.full:
            return True
        return n > self.full and not "".join(record[self.full :]).strip()


def _polars_csv(source, sep: str) -> pl.DataFrame:
    return pl.read_csv(
        source,
        separator=sep,
        infer_schema=False,
        truncate_ragged_lines=True,
        quote_char='"',
        raise_if_empty=False,
        encoding="utf8",
    )


def _header_names(values: list[str | None]) -> list[str]:
    """Column names as polars gives them: repeats get ``_duplicated_<n>``."""
    names, seen = [], {}
    for value in values:
        name = value or ""
        if name in seen:
            seen[name] += 1
            name = f"{name}_duplicated_{seen[name] - 1}"
        else:
            seen[name] = 0
        names.append(name)
    return names


def _field_count_reason(line: int, found: int, width: int) -> str:
    more = "more" if found > width else "fewer"
    return (
        f"line {line} has {found} fields where the header has {width} ({more}): its values cannot be "
        "matched to columns; quote values that contain the delimiter, or fix the line, and re-export"
    )


def _record_from(lines: list[str], start: int) -> tuple[str, int]:
    """The record beginning on physical line ``start`` (0-based): lines are joined until its quotes balance.

    Returns (text, index of the next line); a record whose quote never closes is just its first line.
    """
    parts, quotes, i = [], 0, start
    while i < len(lines):
        parts.append(lines[i])
        quotes += lines[i].count('"')
        i += 1
        if quotes % 2 == 0:
            return "\n".join(parts), i
    return lines[start], start + 1


def _split_record(record: str, sep: str) -> list[str]:
    return next(csv.reader(io.StringIO(record, newline=""), delimiter=sep, strict=False), [])


def _source_text(source) -> str:
    if isinstance(source, io.BytesIO):
        return bytes(source.getbuffer()).decode("utf-8", errors="replace").lstrip("\ufeff")
    return Path(source).read_bytes().decode("utf-8", errors="replace").lstrip("\ufeff")


def _read_csv_records(text: str, sep: str) -> pl.DataFrame:
    """The careful reader: record by record, any line ending, resynchronising after an unterminated quote.

    A line whose quote never closes is quarantined alone (``_defect``) and reading resumes on the next line,
    so one stray quote costs one record, not the rest of the file.
    """
    lines = re.split(r"\r\n|\r|\n", text)
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        return pl.DataFrame()
    header = _split_record(lines[0], sep)
    names, shape = _header_names(header), _HeaderShape(header)
    width = len(names)
    rows: list[list[str | None]] = []
    numbers, defects, records = [], [], []
    i = 1
    while i < len(lines):
        if lines[i].strip(f" {sep}") == "":
            i += 1
            continue
        record, after = _record_from(lines, i)
        fields = _split_record(record, sep)
        unterminated = after == i + 1 and lines[i].count('"') % 2 == 1
        if unterminated:
            defect = (
                f"line {i + 1} opens a quote that is never closed: the line cannot be split into "
                "columns; close or remove the stray quote and re-export"
            )
        elif not shape.fits(fields):
            defect = _field_count_reason(i + 1, len(fields), shape.named)
        else:
            defect = None
        padded = (fields + [None] * width)[:width]
        rows.append([v if v != "" else None for v in padded])
        numbers.append(i + 1)
        defects.append(defect)
        records.append(record if defect else None)
        i = after
    frame = (
        pl.DataFrame(rows, schema={n: pl.String for n in names}, orient="row")
        if rows
        else pl.DataFrame(schema={n: pl.String for n in names})
    )
    frame = frame.with_columns(pl.Series(LINE, numbers, dtype=pl.Int64))
    if any(defects):
        frame = frame.with_columns(
            pl.Series(DEFECT, defects, dtype=pl.String), pl.Series(RECORD, records, dtype=pl.String)
        )
    return _drop_unnamed_empty_columns(frame)


def _csv_lines(frame: pl.DataFrame, newlines: tuple | None = None) -> pl.DataFrame | None:
    """Number records by physical line and drop blank lines (polars yields them as all-null rows).

    None when polars' records do not account for every line of the file (a line break in a field that
    polars cut from a record with too many fields): their line numbers cannot be trusted."""
    frame = _drop_unnamed_empty_columns(frame)
    if frame.width == 0:
        return frame.with_columns(pl.lit(None, pl.Int64).alias(LINE))
    cols = frame.columns
    plain = newlines is not None and newlines[0] == frame.height + (1 if newlines[1] else 0)
    if plain:  # one line per record: no quoted line breaks anywhere in the file
        frame = frame.with_columns(pl.int_range(2, pl.len() + 2, dtype=pl.Int64).alias(LINE))
    else:
        # quoted fields hold line breaks; each one pushes the following records one line further down
        breaks = pl.sum_horizontal(
            [pl.col(c).str.count_matches("\n", literal=True).fill_null(0).cast(pl.Int64) for c in cols]
        )
        if newlines is not None:
            lines = newlines[0] + (0 if newlines[1] else 1)
            if 1 + frame.height + frame.select(breaks.sum()).item() != lines:
                return None
        frame = frame.with_columns(
            (pl.int_range(2, pl.len() + 2, dtype=pl.Int64) + breaks.cum_sum() - breaks).alias(LINE)
        )
    blank = pl.all_horizontal([pl.col(c).is_null() for c in cols])
    if frame.select(blank.any()).item():
        frame = frame.filter(~blank)
    return frame


def _drop_unnamed_empty_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """A trailing delimiter makes an unnamed column; drop it when it is empty, name it when it is not."""
    renames, drops = {}, []
    for i, col in enumerate(frame.columns):
        if col.strip() == "" or col.startswith("_duplicated_"):
            if frame[col].null_count() == frame.height or (frame[col].str.strip_chars() == "").all():
                drops.append(col)
            else:
                renames[col] = f"column_{i + 1}"
    return frame.drop(drops).rename(renames) if drops or renames else frame


# ---------------------------------------------------------------- JSON, Parquet, XLSX


def _read_json(path: Path, ndjson: bool, encoding: str | None) -> pl.DataFrame:
    raw = path.read_bytes()
    enc = encoding or sniff_encoding(raw[:_SNIFF_BYTES], path)
    if enc not in ("utf-8", "ascii"):
        raw = raw.decode(enc).lstrip("\ufeff").encode("utf-8")
    if not raw.strip():
        raise UnreadableFile(f"{path.name}: the file holds only blank space: re-export it")
    if ndjson:
        frame = pl.read_ndjson(io.BytesIO(raw), infer_schema_length=None)
    else:
        stripped = raw.lstrip()
        if stripped.startswith(b"{"):
            # an API-style envelope such as {"results": [...]}: take its one list of records
            payload = json.loads(raw)
            lists = [v for v in payload.values() if isinstance(v, list)] if isinstance(payload, dict) else []
            if len(lists) != 1:
                raise UnreadableFile(
                    f"{path.name}: JSON object without a single list of records: export an array of objects"
                )
            frame = pl.from_dicts(lists[0], infer_schema_length=None) if lists[0] else pl.DataFrame()
        else:
            frame = pl.read_json(io.BytesIO(raw), infer_schema_length=None)
    return _with_record_lines(_all_strings(frame), first=1)


def _read_excel(path: Path) -> list[tuple[str, pl.DataFrame]]:
    sheets = pl.read_excel(path, engine="calamine", sheet_id=0, infer_schema_length=0, raise_if_empty=False)
    named = [(name, frame) for name, frame in sheets.items() if frame.width > 0]
    if not named:
        raise UnreadableFile(f"{path.name}: the workbook has no sheet with a header row: re-export it")
    out = []
    for name, frame in named:
        label = path.name if len(named) == 1 else f"{path.name}[{name}]"
        frame = _drop_unnamed_empty_columns(_all_strings(frame))
        out.append((label, _with_record_lines(frame, first=2)))
    return out


def _with_record_lines(frame: pl.DataFrame, first: int) -> pl.DataFrame:
    return frame.with_columns(pl.int_range(first, pl.len() + first, dtype=pl.Int64).alias(LINE))


def _all_strings(frame: pl.DataFrame) -> pl.DataFrame:
    """Render every column as text the validator understands (ISO times, ';'-joined lists)."""
    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if dtype == pl.String:
            exprs.append(col)
        elif isinstance(dtype, pl.Datetime):
            if dtype.time_zone is not None:
                col = col.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
            exprs.append(col.dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ").alias(name))
        elif dtype == pl.Date:
            exprs.append(col.dt.strftime("%Y-%m-%d").alias(name))
        elif isinstance(dtype, (pl.List, pl.Array)):
            exprs.append(col.cast(pl.List(pl.String)).list.join(";").alias(name))
        elif isinstance(dtype, pl.Struct):
            exprs.append(col.struct.json_encode().alias(name))
        elif dtype == pl.Boolean:
            exprs.append(pl.when(col).then(pl.lit("true")).when(~col).then(pl.lit("false")).alias(name))
        else:
            exprs.append(col.cast(pl.String).alias(name))
    return frame.select(exprs) if exprs else frame
