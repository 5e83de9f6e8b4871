"""Validation and quarantine: turn an all-string entity frame into typed canonical rows plus quarantine rows.

The rules are the shared contract with the sample generator (one rule code per problem):

``required``      a REQUIRED column is empty
``email``         not ``^[^@\\s]+@[^@\\s]+\\.[^@\\s]{2,}$`` after trimming and lower-casing
``phone``         letters, or a digit count outside 7..15 (ignoring ``+ ( ) - .`` spaces and an ``ext 12`` suffix)
``date``          none of the accepted formats parse (see ``DATE_FORMATS``, plus epoch seconds/milliseconds)
``money``         not an amount ("12,500.00", "$12,500", "12500", "12.5k" are) or negative
``currency``      not an ISO 4217 code
``enum``          no canonical value after normalisation and synonyms (``vocab.py``)
``number``        an integer/probability column that does not hold a number in range
``duplicate_id``  the id already appeared earlier in this entity's rows (the first occurrence is kept)
``reference``     a non-empty foreign key naming no staged row of the referenced entity (and a
                  ``parent_company_id`` naming no company id of the same export)

Every check is a vectorised polars expression over whole columns; only the few bad rows get their reason
text built. What can be decided on a column's few distinct values (enum mapping, date format) is, and
duplicate ids are found through integer hashes, then confirmed on the strings. A record with several problems yields one quarantine row carrying the first problem in column
order (``column``/``rule``/``value``) and a ``reason`` that lists them all.

Derived on the way: phones normalised to E.164 ("+14155550134", 10-digit numbers taken as US, an extension
kept as ";ext=123"), emails lower-cased, times to UTC (naive times are taken as UTC), money to
Decimal(18,2) with the currency defaulting to USD when an amount has none, ``size_band`` from
``employees`` when empty, ``full_name`` from first + last name and first/last from a two-part full name,
probabilities as 0..1 (values above 1 or with "%" are percentages). Custom ``cf_*`` columns are typed by
inference (integer, float, money-like -> Decimal(18,2), boolean, date -> UTC datetime, else string) and
never cause quarantine.
"""

from __future__ import annotations

import polars as pl

from holocrm_core import schema
from holocrm_core.ingest import vocab
from holocrm_core.ingest.reports import ALLOW_EMPTY, DEFECT, LINE, RECORD, SOURCE_FILE

EMAIL_RE = r"^[^@\s]+@[^@\s]+\.[^@\s]{2,}$"
PHONE_EXT_RE = r"(?i)\s*(?:ext\.?|extension|x|#)\s*(\d{1,6})\s*$"
MONEY_RE = r"^(-)?\s*[$€£¥]?\s*(-)?\s*(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)\s*([kKmM])?$"
DEFAULT_CURRENCY = "USD"

# (format, carries an offset). Naive times are UTC. Ordered most specific first.
DATE_FORMATS: list[tuple[str, bool]] = [
    ("%Y-%m-%dT%H:%M:%SZ", False),  # without fractions first: parsing "%.f" costs 2-3x
    ("%Y-%m-%dT%H:%M:%S%.fZ", False),
    ("%Y-%m-%dT%H:%M:%S%z", True),
    ("%Y-%m-%dT%H:%M:%S%.f%z", True),
    ("%Y-%m-%dT%H:%M:%S%.f", False),
    ("%Y-%m-%dT%H:%MZ", False),
    ("%Y-%m-%dT%H:%M%z", True),
    ("%Y-%m-%dT%H:%M", False),
    ("%Y-%m-%d %H:%M:%S%.fZ", False),
    ("%Y-%m-%d %H:%M:%S%.f%z", True),
    ("%Y-%m-%d %H:%M:%S", False),
    ("%Y-%m-%d %H:%M:%S%.f", False),
    ("%Y-%m-%d %H:%M", False),
    ("%Y-%m-%d", False),
    ("%Y/%m/%d", False),
    ("%m/%d/%Y %H:%M:%S", False),
    ("%m/%d/%Y %H:%M", False),
    ("%m/%d/%Y %I:%M %p", False),
    ("%m/%d/%Y %I:%M:%S %p", False),
    ("%m/%d/%Y", False),
    ("%d.%m.%Y %H:%M:%S", False),
    ("%d.%m.%Y %H:%M", False),
    ("%d.%m.%Y", False),
]
DATE_HELP = (
    "ISO 8601 such as 2025-03-04 or 2025-03-04T10:15:00Z, YYYY-MM-DD HH:MM:SS, MM/DD/YYYY, DD.MM.YYYY "
    "or epoch seconds"
)

SINGULAR = schema.SINGULAR
_CURRENCY_COLUMNS = {"currency", "revenue_currency"}
# References within one table (not in schema.REFERENCES, which links tables): checked against the ids of
# the same entity's rows. The sample generator plants dangling parent companies as ``reference`` rows.
SELF_REFERENCES = {("companies", "parent_company_id"): "companies"}
_AMOUNT_OF = {"currency": "value", "revenue_currency": "annual_revenue"}


def column_kind(entity: str, column: str) -> str:
    dtype = schema.ENTITIES[entity][column]
    if (entity, column) in schema.ENUMS:
        return "enum"
    if dtype == schema.UTC_TIME:
        return "date"
    if dtype == schema.MONEY:
        return "money"
    if dtype == schema.TAGS:
        return "tags"
    if dtype == pl.Int64:
        return "integer"
    if dtype == pl.Float64:
        return "probability"
    if column == "email":
        return "email"
    if column == "phone":
        return "phone"
    if column in _CURRENCY_COLUMNS:
        return "currency"
    return "text"


RULE_OF_KIND = {
    "enum": "enum",
    "date": "date",
    "money": "money",
    "integer": "number",
    "probability": "number",
    "email": "email",
    "phone": "phone",
    "currency": "currency",
}


def _clean(name: str) -> pl.Expr:
    """Trimmed text, empty -> null."""
    trimmed = pl.col(name).cast(pl.String).str.strip_chars()  # callers may pass typed or all-null columns
    return pl.when(trimmed.str.len_bytes() > 0).then(trimmed).alias(name)


def _cleaners(raw: pl.DataFrame, columns: list[str]) -> dict[str, pl.Expr]:
    """Per column: the column itself when nothing needs trimming (the common case: trimming every value of
    millions of rows costs more than validating them), else :func:`_clean`."""
    strings = [c for c in columns if raw.schema[c] == pl.String]
    needs: dict[str, bool] = {c: True for c in columns if c not in strings}
    if strings:
        # comparing lengths is cheap (stripping a string view slices it); materialising stripped text is not.
        # Lazy, so that each column's lengths are computed once (an eager select repeats the subexpression)
        probe = (
            raw.lazy()
            .select(
                [
                    (
                        (pl.col(c).str.strip_chars().str.len_bytes() != pl.col(c).str.len_bytes())
                        | (pl.col(c).str.len_bytes() == 0)
                    )
                    .any()
                    .alias(c)
                    for c in strings
                ]
            )
            .collect()
            .row(0, named=True)
        )
        needs.update(probe)
    return {c: _clean(c) if needs[c] else pl.col(c) for c in columns}


# ---------------------------------------------------------------- dates


def _parse_with(expr: pl.Expr, fmt: str, aware: bool) -> pl.Expr:
    if aware:
        return expr.str.strptime(schema.UTC_TIME, fmt, strict=False)
    return expr.str.strptime(pl.Datetime("us"), fmt, strict=False).dt.replace_time_zone("UTC")


def _parse_any_date(expr: pl.Expr) -> pl.Expr:
    """Every accepted format (slow path, used on the few values the column's main format misses)."""
    epoch_s = pl.when(expr.str.contains(r"^\d{9,11}$")).then(
        pl.from_epoch(expr.cast(pl.Int64, strict=False), "s").dt.replace_time_zone("UTC")
    )
    epoch_ms = pl.when(expr.str.contains(r"^\d{12,13}$")).then(
        pl.from_epoch(expr.cast(pl.Int64, strict=False), "ms").dt.replace_time_zone("UTC")
    )
    parsed = [_parse_with(expr, fmt, aware).cast(schema.UTC_TIME) for fmt, aware in DATE_FORMATS]
    return pl.coalesce([*parsed, epoch_s.cast(schema.UTC_TIME), epoch_ms.cast(schema.UTC_TIME)])


def _main_date_format(values: pl.Series) -> tuple[str, bool] | None:
    """The format most of a column's first values use: parsed over the whole column in one pass."""
    sample = values.drop_nulls().head(200)
    if sample.len() == 0:
        return None
    frame = sample.to_frame("v")
    best, best_hits = None, 0
    for fmt, aware in DATE_FORMATS:
        hits = frame.select(_parse_with(pl.col("v"), fmt, aware).is_not_null().sum()).item()
        if hits > best_hits:
            best, best_hits = (fmt, aware), hits
        if hits == sample.len():
            break
    return best


def parse_dates(values: pl.Series) -> pl.Series:
    """Strings -> UTC datetimes (null where no accepted format parses). Main format first, others for the rest."""
    main = _main_date_format(values)
    frame = values.to_frame("v")
    if main is None:
        return pl.Series(values.name, [None] * values.len(), dtype=schema.UTC_TIME)
    parsed = frame.select(_parse_with(pl.col("v"), *main).cast(schema.UTC_TIME))["v"]
    missed = (parsed.is_null() & values.is_not_null()).arg_true()
    if missed.len():
        fallback = values.gather(missed).to_frame("v").select(_parse_any_date(pl.col("v")))["v"]
        parsed = parsed.scatter(missed, fallback)
    return parsed.alias(values.name)


# ---------------------------------------------------------------- typed values


def _money_prep(col: str) -> list[pl.Expr]:
    value = pl.col(col)
    paren = value.str.starts_with("(") & value.str.ends_with(")")
    inner = pl.when(paren).then(value.str.strip_chars("() ")).otherwise(value)
    return [paren.alias(f"__paren_{col}"), inner.str.extract_groups(MONEY_RE).alias(f"__groups_{col}")]


def _money(col: str) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(amount Decimal(18,2), is bad, is negative) from the helper columns of :func:`_money_prep`."""
    value, groups = pl.col(col), pl.col(f"__groups_{col}")
    number = (
        groups.struct.field("3").str.replace_all(",", "", literal=True).cast(pl.Decimal(38, 6), strict=False)
    )
    unit = groups.struct.field("4").str.to_lowercase()
    factor = pl.when(unit == "k").then(1000).when(unit == "m").then(1_000_000).otherwise(1)
    amount = (number * factor).round(2).cast(schema.MONEY, strict=False)
    negative = value.is_not_null() & (
        pl.col(f"__paren_{col}")
        | groups.struct.field("1").is_not_null()
        | groups.struct.field("2").is_not_null()
    )
    bad = value.is_not_null() & (amount.is_null() | negative)
    return amount, bad, negative


def _phone_prep(col: str) -> tuple[list[pl.Expr], list[pl.Expr]]:
    """Helper columns computed once (polars does not share subexpressions in eager selects)."""
    value = pl.col(col)
    first = [
        value.str.extract(PHONE_EXT_RE, 1).alias("__ph_ext"),
        value.str.replace(PHONE_EXT_RE, "").alias("__ph_base"),
    ]
    second = [
        pl.col("__ph_base").str.contains(r"[^\W\d_]").alias("__phone_letters"),
        pl.col("__ph_base").str.replace_all(r"\D", "").alias("__ph_digits"),
    ]
    return first, second


def _phone(col: str) -> tuple[pl.Expr, pl.Expr]:
    """(E.164-ish phone, is bad) from the helper columns of :func:`_phone_prep`."""
    value, base, digits, extension = (
        pl.col(col),
        pl.col("__ph_base"),
        pl.col("__ph_digits"),
        pl.col("__ph_ext"),
    )
    count = digits.str.len_bytes()
    bad = value.is_not_null() & (pl.col("__phone_letters") | (count < 7) | (count > 15))
    e164 = (
        pl.when(base.str.starts_with("+"))
        .then(pl.lit("+") + digits)
        .when(digits.str.starts_with("00") & (count > 9))
        .then(pl.lit("+") + digits.str.slice(2))
        .when((count == 10) & digits.str.contains(r"^[2-9]"))  # North American number without the 1
        .then(pl.lit("+1") + digits)
        .when((count == 11) & digits.str.starts_with("1"))
        .then(pl.lit("+") + digits)
        .otherwise(base)
    )
    phone = pl.when(extension.is_not_null()).then(e164 + pl.lit(";ext=") + extension).otherwise(e164)
    return phone, bad


def _enum_table(entity: str, column: str, values: pl.Series) -> tuple[dict[str, str], list[str]]:
    """(distinct value -> canonical value, distinct values with no canonical value), from the few distinct
    values of the column rather than its rows."""
    synonyms = vocab.enum_synonyms(entity, column)
    table, unmapped = {}, []
    for value in values.drop_nulls().unique().to_list():
        canonical = synonyms.get(vocab.normalise_value(value))
        if canonical is not None:
            table[value] = canonical
        else:
            unmapped.append(value)
    return table, sorted(unmapped)


def _duplicate_ids(ids: pl.Series) -> pl.Series:
    """True where a non-empty id already appeared on an earlier row (``~is_first_distinct``, exactly).

    Hashing every id string into a hash table costs about 5x more than hashing them to integers and
    sorting those; the exact string comparison then runs only on the rows whose hash repeats (the
    duplicates plus the rare hash collision), so the answer does not depend on the hash.
    """
    hashes = ids.hash()
    ordered = hashes.sort()
    repeated = ordered.filter(ordered == ordered.shift(1))  # not diff(): UInt64 differences overflow
    if repeated.len() == 0:
        return pl.repeat(False, ids.len(), dtype=pl.Boolean, eager=True).alias(ids.name)
    candidates = hashes.is_in(repeated.unique().implode()).arg_true()
    subset = ids.gather(candidates)
    later = (subset.is_not_null() & ~subset.is_first_distinct()).fill_null(False)
    flags = pl.repeat(False, ids.len(), dtype=pl.Boolean, eager=True).alias(ids.name)
    return flags.scatter(candidates.filter(later), True)


def referenced_ids(values: pl.Series, ids: pl.Series) -> pl.Series:
    """The ``ids`` that some of ``values`` name: a value is in the result exactly when it is in ``ids``.

    ``values.is_in(ids)`` hashes every id into a set; when the ids outnumber the values (attachments
    naming activities: 5M ids for 400k references at 1M contacts) the set is built from the values'
    distinct entries instead and the ids are probed against it, which is several times cheaper."""
    if ids.len() <= values.len():
        return ids
    return ids.filter(ids.is_in(values.drop_nulls().unique().implode()))


_INT_RE = r"^[-+]?\d+$"
_LEADING_ZERO_RE = r"^[-+]?0\d"
_FLOAT_RE = r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$"
_MONEYLIKE_RE = r"^[-+]?[$€£¥]?\s*(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d{2})?$"
_TWO_DECIMALS_RE = r"^[-+]?[$€£¥]?\s*[\d,]+\.\d{2}$"
_BOOLEAN = {
    "true": True,
    "false": False,
    "yes": True,
    "no": False,
    "y": True,
    "n": False,
    "t": True,
    "f": False,
}


def infer_custom_type(values: pl.Series) -> pl.Series:
    """A custom attribute typed by what all its values look like (strings stay strings)."""
    present = values.drop_nulls()
    if present.len() == 0:
        return values
    sample = present.head(1000)
    if not sample.str.contains(r"^[-+$€£¥.\d]|^(?i:true|false|yes|no|y|n|t|f)$").all():
        return values  # text: most custom columns, decided from a sample without scanning them all

    def all_match(pattern: str) -> bool:
        return bool(present.str.contains(pattern).all())

    if (
        all_match(_INT_RE)
        and not present.str.contains(_LEADING_ZERO_RE).any()
        and present.str.len_bytes().max() <= 18
    ):
        return values.cast(pl.Int64)
    if all_match(_MONEYLIKE_RE) and (present.str.contains(r"[$€£¥,]").any() or all_match(_TWO_DECIMALS_RE)):
        cleaned = values.str.replace_all(r"[$€£¥,\s]", "")
        return cleaned.cast(pl.Decimal(38, 6), strict=False).round(2).cast(schema.MONEY, strict=False)
    if all_match(_FLOAT_RE) and not present.str.contains(_LEADING_ZERO_RE + r"\d*$").any():
        return values.cast(pl.Float64)
    lowered = present.str.to_lowercase()
    if lowered.is_in(list(_BOOLEAN)).all():
        return values.str.to_lowercase().replace_strict(_BOOLEAN, return_dtype=pl.Boolean)
    if present.head(1).str.contains(r"\d[-/.:]\d|^\d{4}-\d{2}").item():
        parsed = parse_dates(values)
        if parsed.null_count() == values.null_count():
            return parsed
    return values


# ---------------------------------------------------------------- staging


def stage_entity(
    entity: str, raw: pl.DataFrame, known_ids: dict[str, pl.Series]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Validate one entity's raw rows: (staged rows with the schema's columns + typed ``cf_*``, quarantine).

    ``known_ids`` maps a referenced entity to the ids staged for it; references to an entity absent from
    ``known_ids`` are not checked (the export did not include that entity, so nothing can be said).
    """
    staged, quarantine = stage_entity_with_sources(entity, raw, known_ids)
    return staged.drop(SOURCE_FILE), quarantine


def stage_entity_with_sources(
    entity: str, raw: pl.DataFrame, known_ids: dict[str, pl.Series]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """As :func:`stage_entity`, the staged frame keeping ``_source_file`` for per-file accounting."""
    if SOURCE_FILE not in raw.columns:
        raw = raw.with_columns(pl.lit(None, pl.String).alias(SOURCE_FILE))
    if LINE not in raw.columns:
        raw = raw.with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(LINE))
    if DEFECT in raw.columns:  # records the reader could not split into columns: quarantined whole
        malformed = raw.filter(pl.col(DEFECT).is_not_null())
        staged, quarantine = _stage_rows(
            entity, raw.filter(pl.col(DEFECT).is_null()).drop(DEFECT, RECORD), known_ids
        )
        return staged, pl.concat([_malformed_rows(entity, malformed), quarantine], how="vertical")
    return _stage_rows(entity, raw, known_ids)


def _malformed_rows(entity: str, malformed: pl.DataFrame) -> pl.DataFrame:
    """One quarantine row per malformed record, its whole text as the value (so no value is lost)."""
    id_column = schema.ID_COLUMN[entity]
    record_id = (
        pl.col(id_column).str.strip_chars() if id_column in malformed.columns else pl.lit(None, pl.String)
    )
    return malformed.select(
        pl.lit(entity).alias("entity"),
        pl.col(SOURCE_FILE).alias("source_file"),
        pl.col(LINE).cast(pl.Int64).alias("line"),
        record_id.alias("record_id"),
        pl.lit(None, pl.String).alias("column"),
        pl.col(RECORD).alias("value"),
        pl.lit("malformed").alias("rule"),
        pl.col(DEFECT).alias("reason"),
    ).cast(dict(schema.QUARANTINE))


def _stage_rows(
    entity: str, raw: pl.DataFrame, known_ids: dict[str, pl.Series]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    entity_schema = schema.ENTITIES[entity]
    id_column = schema.ID_COLUMN[entity]
    custom = [c for c in raw.columns if c.startswith(schema.CUSTOM_PREFIX)]
    present = [c for c in entity_schema if c in raw.columns]

    tidy = _cleaners(raw, present + custom)
    clean = raw.select(
        [tidy[c] for c in present]
        + [pl.lit(None, pl.String).alias(c) for c in entity_schema if c not in raw.columns]
        + [tidy[c] for c in custom]
        + [pl.col(SOURCE_FILE), pl.col(LINE).cast(pl.Int64)]
        + ([pl.col(ALLOW_EMPTY)] if ALLOW_EMPTY in raw.columns else [])
    )
    # dates and custom attributes need a look at their values first (main format, inferred type)
    date_columns = [c for c in entity_schema if column_kind(entity, c) == "date"]
    clean = clean.with_columns(
        [parse_dates(clean[c]).alias(f"__t_{c}") for c in date_columns]
        + [infer_custom_type(clean[c]).alias(f"__t_{c}") for c in custom]
    )

    typed: dict[str, pl.Expr] = {}
    prep_first: list[pl.Expr] = []  # helper columns, computed before the typed values that use them
    prep_second: list[pl.Expr] = []
    checks: list[tuple[str, str, pl.Expr]] = []  # (column, rule, bad mask) in column order
    helpers: dict[str, pl.Expr] = {}  # extra columns the reasons read
    for column in entity_schema:
        kind = column_kind(entity, column)
        value = pl.col(column)
        if column in schema.REQUIRED[entity]:
            missing = value.is_null()
            if ALLOW_EMPTY in clean.columns:
                missing = missing & ~pl.col(ALLOW_EMPTY).fill_null("").str.contains(rf"\b{column}\b")
            checks.append((column, "required", missing))
        if kind in ("text", "date"):
            if kind == "text":
                typed[column] = value
            else:
                checks.append((column, "date", value.is_not_null() & pl.col(f"__t_{column}").is_null()))
        elif kind == "email":
            lowered = value.str.to_lowercase()
            typed[column] = lowered
            checks.append((column, "email", value.is_not_null() & ~lowered.str.contains(EMAIL_RE)))
        elif kind == "phone":
            first, second = _phone_prep(column)
            prep_first += first
            prep_second += second
            phone, bad = _phone(column)
            typed[column] = phone
            checks.append((column, "phone", bad))
        elif kind == "currency":
            upper = value.str.to_uppercase()
            amount = _AMOUNT_OF[column]
            has_amount = pl.col(amount).is_not_null() if amount in entity_schema else pl.lit(False)
            typed[column] = (
                pl.when(value.is_null() & has_amount).then(pl.lit(DEFAULT_CURRENCY)).otherwise(upper)
            )
            checks.append((column, "currency", value.is_not_null() & ~upper.is_in(sorted(vocab.ISO_4217))))
        elif kind == "enum":
            # decided on the distinct values: a row is bad exactly when its value is one of the unmapped
            # ones, and bad rows are never staged, so their typed value does not matter
            table, unmapped = _enum_table(entity, column, clean[column])
            changed = {k: v for k, v in table.items() if k != v}
            typed[column] = value.replace(changed) if changed else value
            if unmapped:
                checks.append((column, "enum", value.is_in(pl.Series(unmapped, dtype=pl.String).implode())))
        elif kind == "money":
            prep_first += _money_prep(column)
            amount, bad, negative = _money(column)
            typed[column] = amount
            helpers[f"__negative_{column}"] = negative
            checks.append((column, "money", bad))
        elif kind == "integer":
            number = value.str.replace_all(",", "", literal=True)
            as_float = number.cast(pl.Float64, strict=False)
            as_int = pl.coalesce(
                number.cast(pl.Int64, strict=False),
                pl.when(as_float.round(0) == as_float).then(as_float.cast(pl.Int64, strict=False)),
            )
            typed[column] = as_int
            checks.append((column, "number", value.is_not_null() & (as_int.is_null() | (as_int < 0))))
        elif kind == "probability":
            number = value.str.replace("%", "", literal=True).str.strip_chars().cast(pl.Float64, strict=False)
            percent = value.str.contains("%", literal=True) | (number > 1)
            share = pl.when(percent).then(number / 100).otherwise(number)
            typed[column] = share
            checks.append(
                (column, "number", value.is_not_null() & (share.is_null() | (share < 0) | (share > 1)))
            )
        elif kind == "tags":
            typed[column] = value.str.split(";").list.eval(
                pl.element().str.strip_chars().filter(pl.element().str.len_bytes() > 0)
            )
        if column == id_column:
            duplicates = _duplicate_ids(clean[column])
            if duplicates.any():
                clean = clean.with_columns(duplicates.alias(f"__dup_{column}"))
                checks.append((column, "duplicate_id", pl.col(f"__dup_{column}")))
        if (entity, column) in SELF_REFERENCES:
            checks.append(
                (column, "reference", value.is_not_null() & ~value.is_in(pl.col(id_column).implode()))
            )
        reference = schema.REFERENCES.get((entity, column))
        if reference is not None and reference in known_ids:
            ids = referenced_ids(clean[column], known_ids[reference])
            checks.append((column, "reference", value.is_not_null() & ~value.is_in(ids.implode())))

    flags = [f"__bad_{i}" for i in range(len(checks))]
    if prep_first:
        clean = clean.with_columns(prep_first)
    if prep_second:
        clean = clean.with_columns(prep_second)
    evaluated = (
        clean.lazy()
        .with_columns(
            [expr.alias(f"__t_{c}") for c, expr in typed.items()]
            + [mask.fill_null(False).alias(flag) for (_, _, mask), flag in zip(checks, flags, strict=True)]
        )
        .with_columns(pl.any_horizontal(flags).alias("__bad") if flags else pl.lit(False).alias("__bad"))
        .collect()
    )
    # project first, then filter: filtering the wide working frame would copy every helper column
    staged = evaluated.select(
        [pl.col(f"__t_{c}").cast(dtype).alias(c) for c, dtype in entity_schema.items()]
        + [pl.col(f"__t_{c}").alias(c) for c in custom]
        + [pl.col(SOURCE_FILE), pl.col("__bad")]
    )
    staged = (staged.filter(~pl.col("__bad")) if evaluated["__bad"].any() else staged).drop("__bad")
    staged = _derive(entity, staged)
    quarantine = _quarantine_rows(entity, raw, evaluated, checks, helpers)
    return staged, quarantine


def _derive(entity: str, staged: pl.DataFrame) -> pl.DataFrame:
    if entity == "companies":
        employees = pl.col("employees")
        band = (
            pl.when(employees >= 1000)
            .then(pl.lit(schema.SizeBand.ENTERPRISE.value))
            .when(employees >= 200)
            .then(pl.lit(schema.SizeBand.MID_MARKET.value))
            .when(employees >= 0)
            .then(pl.lit(schema.SizeBand.SMB.value))
        )
        return staged.with_columns(pl.coalesce(pl.col("size_band"), band).alias("size_band"))
    if entity == "contacts":
        first, last, full = pl.col("first_name"), pl.col("last_name"), pl.col("full_name")
        joined = pl.concat_str([first, last], separator=" ", ignore_nulls=True)
        # split only what reads as a person's name: "Jane Doe", "Jane van Doe", "Doe, Jane"; never
        # "Primary contact, Acme Corporation" or a company-like full name
        name_part = r"[\p{L}][\p{L}'.\-]*"
        given_first = full.str.extract_groups(rf"^({name_part})\s+({name_part}(?:\s+{name_part})?)$")
        family_first = full.str.extract_groups(rf"^({name_part}),\s*({name_part})$")
        split_ok = first.is_null() & last.is_null()
        if not staged.select((split_ok & full.is_not_null()).any()).item():
            return staged.with_columns(
                pl.coalesce(full, pl.when(first.is_not_null() | last.is_not_null()).then(joined)).alias(
                    "full_name"
                )
            )
        return staged.with_columns(
            pl.coalesce(full, pl.when(first.is_not_null() | last.is_not_null()).then(joined)).alias(
                "full_name"
            ),
            pl.when(split_ok)
            .then(pl.coalesce(given_first.struct.field("1"), family_first.struct.field("2")))
            .otherwise(first)
            .alias("first_name"),
            pl.when(split_ok)
            .then(pl.coalesce(given_first.struct.field("2"), family_first.struct.field("1")))
            .otherwise(last)
            .alias("last_name"),
        )
    return staged


def _reason(entity: str, column: str, rule: str, extras_available: set[str]) -> pl.Expr:
    value = pl.col(f"__raw_{column}").fill_null("")
    required = column in schema.REQUIRED[entity]
    or_empty = "" if required else " or leave it empty"
    if rule == "required":
        what = (
            f"every {SINGULAR[entity]} needs one" if column == schema.ID_COLUMN[entity] else "it is required"
        )
        return pl.lit(f"{column} is empty but {what}: fill it in at the source")
    if rule == "email":
        lowered = value.str.strip_chars().str.to_lowercase()
        detail = (
            pl.when(lowered.str.contains(r"\s"))
            .then(pl.lit("contains a space"))
            .when(~lowered.str.contains("@", literal=True))
            .then(pl.lit("has no @"))
            .when(lowered.str.count_matches("@", literal=True) > 1)
            .then(pl.lit("has more than one @"))
            .when(lowered.str.starts_with("@"))
            .then(pl.lit("has no name before the @"))
            .when(lowered.str.ends_with("@"))
            .then(pl.lit("has no domain"))
            .otherwise(pl.lit("has no valid domain (like acme.com)"))
        )
        return pl.format(f"email '{{}}' {{}}: fix the address{or_empty}", value, detail)
    if rule == "phone":
        detail = (
            pl.when(pl.col("__phone_letters"))
            .then(
                pl.lit("contains letters (a phone holds digits, spaces, + ( ) - . and an optional 'ext 123')")
            )
            .otherwise(
                pl.format(
                    "has {} digits where a phone number has 7 to 15", pl.col("__ph_digits").str.len_bytes()
                )
            )
        )
        return pl.format(f"phone '{{}}' {{}}: fix the number{or_empty}", value, detail)
    if rule == "date":
        return pl.format(
            f"{column} '{{}}' is not a date in an accepted format ({DATE_HELP}): fix it{or_empty}", value
        )
    if rule == "money":
        negative = (
            pl.col(f"__negative_{column}") if f"__negative_{column}" in extras_available else pl.lit(False)
        )
        return (
            pl.when(negative)
            .then(
                pl.format(f"{column} '{{}}' is negative: amounts must be 0 or more; fix it{or_empty}", value)
            )
            .otherwise(
                pl.format(
                    f"{column} '{{}}' is not an amount (write it like 12500.00, 12,500, $12,500 or 12.5k, at most 16 "
                    f"digits before the point): fix it{or_empty}",
                    value,
                )
            )
        )
    if rule == "currency":
        return pl.format(
            f"{column} '{{}}' is not an ISO 4217 currency code (such as USD, EUR, GBP): fix it or leave it "
            f"empty to use {DEFAULT_CURRENCY}",
            value,
        )
    if rule == "enum":
        allowed = ", ".join(m.value for m in schema.ENUMS[(entity, column)])
        return pl.format(
            f"{column} '{{}}' is not one of {allowed} (or a known synonym): fix the value or map it in a "
            f"mapping file{or_empty}",
            value,
        )
    if rule == "number":
        if schema.ENTITIES[entity][column] == pl.Float64:
            return pl.format(
                f"{column} '{{}}' is not a probability (0 to 1, or 0% to 100%): fix it{or_empty}", value
            )
        return pl.format(f"{column} '{{}}' is not a whole number of 0 or more: fix it{or_empty}", value)
    if rule == "duplicate_id":
        return pl.format(
            f"{column} '{{}}' already appears on line {{}} of {{}}: the first occurrence was kept; remove this "
            "row or give it its own id",
            value,
            pl.col("__first_line"),
            pl.col("__first_file"),
        )
    if rule == "reference":
        referenced = schema.REFERENCES.get((entity, column)) or SELF_REFERENCES[(entity, column)]
        return pl.format(
            f"{column} '{{}}' names no staged {SINGULAR[referenced]} (it is missing from the {referenced} "
            "file or was quarantined): fix the reference or leave it empty",
            value,
        )
    return pl.lit(f"{column}: {rule}")


def _quarantine_rows(entity, raw, evaluated, checks, extras) -> pl.DataFrame:
    bad_idx = evaluated["__bad"].arg_true()
    if bad_idx.len() == 0:
        return pl.DataFrame(schema=schema.QUARANTINE)
    id_column = schema.ID_COLUMN[entity]
    columns = sorted({c for c, _, _ in checks})
    sub = evaluated.gather(bad_idx)
    raw_sub = raw.select(
        [
            pl.col(c).alias(f"__raw_{c}") if c in raw.columns else pl.lit(None, pl.String).alias(f"__raw_{c}")
            for c in columns
        ]
    ).gather(bad_idx)
    sub = pl.concat([sub, raw_sub], how="horizontal")
    if extras:
        sub = sub.with_columns([expr.alias(name) for name, expr in extras.items()])
    if any(rule == "duplicate_id" for _, rule, _ in checks):
        dup_ids = sub.select(pl.col(id_column).drop_nulls().unique())[id_column]
        firsts = (
            evaluated.select(id_column, LINE, SOURCE_FILE)
            .filter(pl.col(id_column).is_in(dup_ids.implode()))
            .unique(subset=id_column, keep="first", maintain_order=True)
            .rename({LINE: "__first_line", SOURCE_FILE: "__first_file"})
        )
        sub = sub.join(firsts, on=id_column, how="left", maintain_order="left")
    flags = [pl.col(f"__bad_{i}") for i in range(len(checks))]
    first = lambda pick: pl.coalesce([pl.when(flag).then(pick(i)) for i, flag in enumerate(flags)])  # noqa: E731
    available = set(sub.columns)
    reasons = [
        pl.when(flag).then(_reason(entity, checks[i][0], checks[i][1], available))
        for i, flag in enumerate(flags)
    ]
    return sub.select(
        pl.lit(entity).alias("entity"),
        pl.col(SOURCE_FILE).alias("source_file"),
        pl.col(LINE).cast(pl.Int64).alias("line"),
        pl.col(id_column).alias("record_id"),
        first(lambda i: pl.lit(checks[i][0])).alias("column"),
        first(lambda i: pl.col(f"__raw_{checks[i][0]}")).alias("value"),
        first(lambda i: pl.lit(checks[i][1])).alias("rule"),
        pl.concat_str(reasons, separator="; ", ignore_nulls=True).alias("reason"),
    ).cast(dict(schema.QUARANTINE))
