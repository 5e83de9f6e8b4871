"""What a person recognises a record by, beside its id: a contact's name, title and company, a deal's title,
stage, amount and company, a company's name and industry, an activity's type, date and subject.

``RecordLabels`` reads the staged tables through ``source`` (table name -> polars LazyFrame or DataFrame):
the CLI passes the warehouse's Parquet scans (only the few columns and rows needed are read), the API its
in-memory snapshot, so both doors print the same label for the same record.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # polars is imported when labels are read, not when the CLI starts
    import polars as pl

# entity type -> (staged table, id column, columns the label is made of)
LABEL_COLUMNS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "contact": (
        "staged_contacts",
        "contact_id",
        ("full_name", "first_name", "last_name", "title", "company_name", "company_id"),
    ),
    "company": ("staged_companies", "company_id", ("name", "industry", "country")),
    "deal": ("staged_deals", "deal_id", ("title", "stage", "value", "currency", "company_id")),
    "activity": ("staged_activities", "activity_id", ("type", "occurred_at", "subject", "company_id")),
}
LABEL_CHARS = 120


EVERY_SLICE = 50_000  # rows labelled at a time when every label of a type is made


class LabelColumn(Mapping):
    """id -> label over an id index and an Arrow string array in row order (see ``_every_label``)."""

    def __init__(self, index, values):
        self._index, self._values = index, values

    def get(self, key, default=None):
        n = self._index.get(key)
        return default if n is None else self._values[n].as_py()

    def __getitem__(self, key) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key) -> bool:
        return key in self._index

    def __iter__(self):
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


def _text(value: Any) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def _amount(value: Any, currency: Any) -> str:
    if value is None:
        return ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return _text(value)
    return f"{number:,.0f} {_text(currency)}".strip()


def _join(*parts: str, sep: str = ", ") -> str:
    return sep.join(p for p in parts if p)


class RecordLabels:
    """Labels for records by id, read lazily from the staged tables (missing tables give no label)."""

    def __init__(self, source: Mapping[str, Any] | Callable[[str], Any | None], precompute: bool = False):
        """``precompute``: label every record of a type on its first use (a server answering many requests);
        otherwise only the ids asked for are read (a one-off CLI command)."""
        self._source = source
        self._precompute = precompute
        self._all: dict[str, Mapping[str, str]] = {}
        self._lock = threading.Lock()

    def _frame(self, table: str) -> pl.LazyFrame | None:
        import polars as pl

        frame = self._source(table) if callable(self._source) else self._source.get(table)
        if frame is None:
            return None
        return frame.lazy() if isinstance(frame, pl.DataFrame) else frame

    def _rows(self, entity_type: str, ids: list[str] | None) -> dict[str, dict]:
        """Label columns of these ids (None: of every record)."""
        if self._precompute and ids:  # a server: the few ids by position, not a filter over the whole table
            found = self._rows_by_position(entity_type, ids)
            if found is not None:
                return found
        table, id_column, columns = LABEL_COLUMNS[entity_type]
        frame = self._frame(table)
        if frame is None or ids == []:
            return {}
        present = frame.collect_schema().names()
        if id_column not in present:
            return {}
        wanted = [id_column, *(c for c in columns if c in present)]
        import polars as pl

        if ids is not None:
            frame = frame.filter(pl.col(id_column).cast(pl.String).is_in(ids))
        found = frame.select(wanted).collect()
        return {str(row[id_column]): row for row in found.iter_rows(named=True)}

    def _company_names(self, company_ids: Iterable[Any]) -> dict[str, str]:
        wanted = None if self._precompute else sorted({str(c) for c in company_ids if c})
        return {k: _text(v.get("name")) for k, v in self._rows("company", wanted).items()}

    def for_ids(self, entity_type: str, ids: Iterable[str]) -> dict[str, str]:
        """id -> label for the ids the staged table holds (an id it lacks has no entry)."""
        if entity_type not in LABEL_COLUMNS:
            return {}
        if self._precompute:
            every = self._every(entity_type)
            return {i: every[i] for i in (str(i) for i in ids) if i in every}
        return self._labels(entity_type, list(dict.fromkeys(str(i) for i in ids)))

    def _every(self, entity_type: str) -> Mapping[str, str]:
        if entity_type not in self._all:
            with self._lock:
                if entity_type not in self._all:
                    self._all[entity_type] = self._every_label(entity_type)
        return self._all[entity_type]

    def _every_label(self, entity_type: str) -> Mapping[str, str]:
        """Every record's label: what ``_labels(entity_type, None)`` answers, made ``EVERY_SLICE`` rows at a
        time and held as an Arrow string array behind an id index (``LabelColumn``). At 1M contacts the
        dict of a million row dicts and the dict of a million labels took 13 s and left 880 MB resident."""
        import numpy as np
        import polars as pl
        import pyarrow as pa

        from holocrm_core.id_index import IdIndex, encodable, id_bytes

        table, id_column, columns = LABEL_COLUMNS[entity_type]
        frame = self._frame(table)
        if frame is None:
            return {}
        present = frame.collect_schema().names()
        if id_column not in present:
            return {}
        wanted = [id_column, *(c for c in columns if c in present)]
        found = frame.select(wanted).collect()
        if not found.height:
            return {}
        ids = found.get_column(id_column).cast(pl.String).to_list()
        if not encodable(ids):
            return self._labels(entity_type, None)
        index = IdIndex.build(id_bytes(ids))
        del ids
        # the rows a dict keyed by id keeps: the last of a repeated id (the others are never looked up)
        kept = np.zeros(found.height, dtype=bool)
        kept[index.order[np.r_[index.sorted_ids[1:] != index.sorted_ids[:-1], True]]] = True
        companies = {}
        if entity_type in ("deal", "activity") or self._lacks_company_name(found, kept):
            companies = self._company_names(())
        parts = []
        for start in range(0, found.height, EVERY_SLICE):
            part = found.slice(start, EVERY_SLICE)
            labels = [
                self._label(entity_type, row, companies)[:LABEL_CHARS] for row in part.iter_rows(named=True)
            ]
            parts.append(pa.array(labels, type=pa.large_string()))
        values = pa.chunked_array(parts, type=pa.large_string()).combine_chunks()
        return LabelColumn(index, values)

    @staticmethod
    def _lacks_company_name(found, kept) -> bool:
        """``_labels``'s test: a kept row without a company name but with a company id."""
        if "company_id" not in found.columns:
            return False
        names = found.get_column("company_name").to_list() if "company_name" in found.columns else None
        company_ids = found.get_column("company_id").to_list()
        return any(
            keep and not (names[i] if names is not None else None) and company_ids[i]
            for i, keep in enumerate(kept.tolist())
        )

    def _labels(self, entity_type: str, ids: list[str] | None) -> dict[str, str]:
        rows = self._rows(entity_type, ids)
        companies = {}
        if entity_type in ("deal", "activity") or any(
            not r.get("company_name") and r.get("company_id") for r in rows.values()
        ):
            companies = self._company_names(r.get("company_id") for r in rows.values())
        return {
            record_id: self._label(entity_type, row, companies)[:LABEL_CHARS]
            for record_id, row in rows.items()
        }

    @staticmethod
    def _label(entity_type: str, row: dict, companies: dict[str, str]) -> str:
        company = _text(row.get("company_name")) or companies.get(str(row.get("company_id") or ""), "")
        if entity_type == "contact":
            name = _text(row.get("full_name")) or _join(
                _text(row.get("first_name")), _text(row.get("last_name")), sep=" "
            )
            role = _join(_text(row.get("title")), company, sep=" at ")
            return _join(name or "(no name)", role, sep=" - ")
        if entity_type == "company":
            return _join(
                _text(row.get("name")) or "(no name)",
                _join(_text(row.get("industry")), _text(row.get("country"))),
                sep=" - ",
            )
        if entity_type == "deal":
            details = _join(_text(row.get("stage")), _amount(row.get("value"), row.get("currency")), company)
            return _join(_text(row.get("title")) or "(untitled deal)", details, sep=" - ")
        when = row.get("occurred_at")
        day = when.date().isoformat() if hasattr(when, "date") else _text(when)[:10]
        return _join(
            _join(_text(row.get("type")), day, sep=" "), _text(row.get("subject")) or company, sep=": "
        )

    def label_rows(self, rows: list[dict], id_key: str = "id", type_key: str = "entity_type") -> list[dict]:
        """Each row gets ``label`` (None when the staged table does not hold the record)."""
        by_type: dict[str, list[str]] = {}
        for row in rows:
            by_type.setdefault(row.get(type_key), []).append(str(row.get(id_key)))
        labels = {t: self.for_ids(t, ids) for t, ids in by_type.items() if t}
        for row in rows:
            row["label"] = labels.get(row.get(type_key), {}).get(str(row.get(id_key)))
        return rows

    def knows(self, entity_type: str, record_id: str) -> bool:
        return bool(self.for_ids(entity_type, [record_id]))

    def warm(self, entity_type: str) -> None:
        """Build now what this type's lookups read (a server, before it answers): every label, or for a
        type labelled per request the id -> row index of its table."""
        self.for_ids(entity_type, [])
        if self._precompute and entity_type not in self._all:
            self._rows_by_position(entity_type, [])

    def _rows_by_position(self, entity_type: str, ids: list[str]) -> dict[str, dict] | None:
        """``_rows`` of a few ids of an in-memory table through an id -> row index built once per table
        (about 1 s and 100 MB at 1M rows; a filter over 1M ids costs milliseconds every request). None when
        the source is not an in-memory frame."""
        import polars as pl

        table, id_column, columns = LABEL_COLUMNS[entity_type]
        frame = self._source(table) if callable(self._source) else self._source.get(table)
        if not isinstance(frame, pl.DataFrame) or id_column not in frame.columns:
            return None
        indexes = self.__dict__.setdefault("_positions", {})  # type -> (frame, id -> row)
        entry = indexes.get(entity_type)
        if entry is None or entry[0] is not frame:
            with self._lock:
                entry = indexes.get(entity_type)
                if entry is None or entry[0] is not frame:
                    keys = frame.get_column(id_column).cast(pl.String).to_list()
                    entry = indexes[entity_type] = (frame, {k: i for i, k in enumerate(keys)})
        rows = [entry[1][i] for i in ids if i in entry[1]]
        if not rows:
            return {}
        wanted = [id_column, *(c for c in columns if c in frame.columns)]
        found = frame.select(wanted)[rows]
        return {str(row[id_column]): row for row in found.iter_rows(named=True)}
