"""The semantic layer: metrics, dimensions and entity words defined once, as data.

`SemanticLayer.default()` reads the CRM defaults shipped in ``defaults.yaml``; `SemanticLayer.load(mapping)`
applies an export's overrides from the ``semantic:`` section of its YAML mapping file (same shape as the
defaults: an entry with the same name replaces the default, ``drop: [name, ...]`` removes entries). The NL
planner reads it to know what "pipeline", "leads" and "win rate" mean; `holocrm metrics` lists it; dashboards,
experiments and the chat assistant compute a metric with `holocrm_core.metrics.compute_metric`.

A `where` condition is {column: value or [values]} on the metric's table; for ``stage`` the words ``open``,
``won``, ``lost`` and ``closed`` name the data's own stage sets (see `StageSets`).
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as _field
from pathlib import Path
from typing import Any

import yaml

DEFAULTS_FILE = Path(__file__).with_name("defaults.yaml")
AGGREGATES = ("sum", "mean", "count", "ratio", "derived")
TABLES = ("contacts", "companies", "deals", "activities")
GRAINS = ("quarter", "month", "year")


class SemanticLayerError(ValueError):
    """A semantic-layer definition that cannot be used; the message names the entry and the key."""


@dataclass(frozen=True)
class EntityWord:
    """Words for records: a table plus an optional condition ("leads" = contacts in the lead status)."""

    name: str
    entity: str
    words: tuple[str, ...]
    where: dict[str, Any] = _field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class Metric:
    """A number a business asks for: an aggregate of a table's rows that pass `where`.

    aggregate: sum | mean | count over `field`; ratio = rows (or `field` sums) passing `numerator` over those
    passing `denominator` (all rows when absent); derived = a per-record figure the engine computes (stage age,
    days since last touch). `time_field` is the date a time phrase applies to ("win rate this year" = closed
    this year); `money` amounts are per currency unless the layer has exchange rates."""

    name: str
    label: str
    entity: str
    aggregate: str
    words: tuple[str, ...]
    field: str | None = None
    where: dict[str, Any] = _field(default_factory=dict)
    numerator: dict[str, Any] = _field(default_factory=dict)
    denominator: dict[str, Any] = _field(default_factory=dict)
    time_field: str | None = None
    money: bool = False
    unit: str = ""
    description: str = ""


@dataclass(frozen=True)
class Dimension:
    """What a metric is grouped or filtered by; `grain` buckets a date column (quarter, month, year)."""

    name: str
    entity: str
    field: str
    words: tuple[str, ...]
    grain: str | None = None


@dataclass(frozen=True)
class SemanticLayer:
    entities: dict[str, EntityWord]
    metrics: dict[str, Metric]
    dimensions: dict[str, Dimension]
    reporting_currency: str | None = None
    rates: dict[str, float] = _field(default_factory=dict)
    source: str = "defaults"

    # ---- loading --------------------------------------------------------------------------------------
    @classmethod
    def default(cls) -> SemanticLayer:
        return _DEFAULT if _DEFAULT is not None else cls.from_spec(_read(DEFAULTS_FILE), "defaults")

    @classmethod
    def load(cls, mapping: str | Path | None = None) -> SemanticLayer:
        """The defaults with a mapping file's ``semantic:`` overrides (the defaults alone without one)."""
        if mapping is None:
            return cls.default()
        spec = _read(Path(mapping))
        override = (spec or {}).get("semantic") if isinstance(spec, dict) else None
        if override is None:
            return cls.default()
        return cls.default().with_overrides(override, f"defaults + {Path(mapping).name}")

    @classmethod
    def from_spec(cls, spec: dict, source: str) -> SemanticLayer:
        if not isinstance(spec, dict):
            raise SemanticLayerError(f"semantic layer {source}: expected a mapping of sections")
        entities = {n: _entity(n, b, source) for n, b in (spec.get("entities") or {}).items()}
        metrics = {n: _metric(n, b, source) for n, b in (spec.get("metrics") or {}).items()}
        dimensions = {n: _dimension(n, b, source) for n, b in (spec.get("dimensions") or {}).items()}
        money = spec.get("currency") or {}
        rates = {str(k).upper(): float(v) for k, v in (money.get("rates") or {}).items()}
        reporting = money.get("reporting")
        if rates and not reporting:
            raise SemanticLayerError(f"semantic layer {source}: currency.rates needs currency.reporting")
        return cls(
            entities, metrics, dimensions, str(reporting).upper() if reporting else None, rates, source
        )

    def with_overrides(self, override: dict, source: str) -> SemanticLayer:
        """This layer with entries replaced, added or dropped by `override` (the defaults' shape)."""
        if not isinstance(override, dict):
            raise SemanticLayerError(f"semantic layer {source}: 'semantic:' must be a mapping")
        unknown = set(override) - {"entities", "metrics", "dimensions", "currency", "drop"}
        if unknown:
            raise SemanticLayerError(
                f"semantic layer {source}: unknown section(s) {', '.join(sorted(unknown))} "
                "(use entities, metrics, dimensions, currency, drop)"
            )
        part = SemanticLayer.from_spec({k: v for k, v in override.items() if k != "drop"}, source)
        drop = set(override.get("drop") or ())
        entities = {k: v for k, v in {**self.entities, **part.entities}.items() if k not in drop}
        metrics = {k: v for k, v in {**self.metrics, **part.metrics}.items() if k not in drop}
        dimensions = {k: v for k, v in {**self.dimensions, **part.dimensions}.items() if k not in drop}
        has_money = "currency" in override
        return SemanticLayer(
            entities,
            metrics,
            dimensions,
            part.reporting_currency if has_money else self.reporting_currency,
            part.rates if has_money else self.rates,
            source,
        )

    def to_spec(self) -> dict:
        """The layer in the defaults' shape (`from_spec(layer.to_spec())` gives it back): what the pipeline
        writes next to the vocabulary so every reader sees the export's overrides."""
        return {
            "entities": {
                n: {
                    "entity": e.entity,
                    "where": e.where,
                    "words": list(e.words),
                    "description": e.description,
                }
                for n, e in self.entities.items()
            },
            "metrics": {
                n: {
                    k: v
                    for k, v in {
                        "label": m.label,
                        "description": m.description,
                        "entity": m.entity,
                        "aggregate": m.aggregate,
                        "field": m.field,
                        "where": m.where,
                        "numerator": m.numerator,
                        "denominator": m.denominator,
                        "time_field": m.time_field,
                        "money": m.money,
                        "unit": m.unit,
                        "words": list(m.words),
                    }.items()
                    if v not in (None, "", {})
                }
                for n, m in self.metrics.items()
            },
            "dimensions": {
                n: {"entity": d.entity, "field": d.field, "grain": d.grain, "words": list(d.words)}
                for n, d in self.dimensions.items()
            },
            "currency": {"reporting": self.reporting_currency, "rates": self.rates},
        }

    def write(self, path: str | Path) -> Path:
        import json

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"source": self.source, "layer": self.to_spec()}, indent=1))
        tmp.replace(path)
        return path

    @classmethod
    def read(cls, path: str | Path) -> SemanticLayer:
        import json

        data = json.loads(Path(path).read_text())
        return cls.from_spec(data["layer"], str(data.get("source") or path))

    # ---- reading --------------------------------------------------------------------------------------
    def terms(self) -> dict[str, tuple[str, str]]:
        """Every word or phrase of the layer -> (kind, name): kind is entity, metric or dimension."""
        out: dict[str, tuple[str, str]] = {}
        for kind, table in (
            ("dimension", self.dimensions),
            ("entity", self.entities),
            ("metric", self.metrics),
        ):
            for name, item in table.items():
                for w in item.words:
                    out[w.lower()] = (kind, name)
        return out

    def metric(self, name: str) -> Metric:
        if name not in self.metrics:
            raise SemanticLayerError(f"no metric {name!r} (known: {', '.join(sorted(self.metrics))})")
        return self.metrics[name]

    def describe(self) -> dict:
        """The layer as plain data (what `holocrm metrics --json` prints)."""
        return {
            "source": self.source,
            "entities": {
                n: {"table": e.entity, "where": e.where, "words": list(e.words), "description": e.description}
                for n, e in self.entities.items()
            },
            "metrics": {
                n: {
                    "label": m.label,
                    "description": m.description,
                    "table": m.entity,
                    "aggregate": m.aggregate,
                    "field": m.field,
                    "where": m.where,
                    "numerator": m.numerator,
                    "denominator": m.denominator,
                    "time_field": m.time_field,
                    "money": m.money,
                    "unit": m.unit,
                    "words": list(m.words),
                }
                for n, m in self.metrics.items()
            },
            "dimensions": {
                n: {"table": d.entity, "field": d.field, "grain": d.grain, "words": list(d.words)}
                for n, d in self.dimensions.items()
            },
            "currency": {"reporting": self.reporting_currency, "rates": self.rates},
        }


def _read(path: Path) -> Any:
    # libyaml's safe loader when built in: 10x faster, and the defaults are read in every `holocrm ask`
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    except (OSError, yaml.YAMLError) as exc:
        raise SemanticLayerError(f"semantic layer {path}: cannot be read ({exc})") from exc


def _words(name: str, body: dict, source: str) -> tuple[str, ...]:
    words = body.get("words") or []
    if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
        raise SemanticLayerError(f"semantic layer {source}: {name}.words must be a list of words")
    return tuple(w.strip().lower() for w in words)


def _table(name: str, body: dict, source: str, allow_any: bool = False) -> str:
    entity = body.get("entity")
    if entity not in TABLES and not (allow_any and entity == "*"):
        raise SemanticLayerError(
            f"semantic layer {source}: {name}.entity is {entity!r}; use one of {', '.join(TABLES)}"
        )
    return entity


def _where(name: str, key: str, body: dict, source: str) -> dict[str, Any]:
    where = body.get(key) or {}
    if not isinstance(where, dict):
        raise SemanticLayerError(f"semantic layer {source}: {name}.{key} must be {{column: value}}")
    return {str(k): v for k, v in where.items()}


def _entity(name: str, body: dict, source: str) -> EntityWord:
    body = body or {}
    return EntityWord(
        name,
        _table(name, body, source),
        _words(name, body, source),
        _where(name, "where", body, source),
        str(body.get("description") or ""),
    )


def _metric(name: str, body: dict, source: str) -> Metric:
    body = body or {}
    aggregate = body.get("aggregate")
    if aggregate not in AGGREGATES:
        raise SemanticLayerError(
            f"semantic layer {source}: metrics.{name}.aggregate is {aggregate!r}; use one of {', '.join(AGGREGATES)}"
        )
    if aggregate in ("sum", "mean", "derived") and not body.get("field"):
        raise SemanticLayerError(f"semantic layer {source}: metrics.{name} ({aggregate}) needs a field")
    if aggregate == "ratio" and not body.get("numerator"):
        raise SemanticLayerError(f"semantic layer {source}: metrics.{name} (ratio) needs a numerator")
    return Metric(
        name=name,
        label=str(body.get("label") or name.replace("_", " ")),
        entity=_table(f"metrics.{name}", body, source),
        aggregate=aggregate,
        words=_words(f"metrics.{name}", body, source),
        field=body.get("field"),
        where=_where(f"metrics.{name}", "where", body, source),
        numerator=_where(f"metrics.{name}", "numerator", body, source),
        denominator=_where(f"metrics.{name}", "denominator", body, source),
        time_field=body.get("time_field"),
        money=bool(body.get("money", False)),
        unit=str(body.get("unit") or ""),
        description=str(body.get("description") or ""),
    )


def _dimension(name: str, body: dict, source: str) -> Dimension:
    body = body or {}
    grain = body.get("grain")
    if grain is not None and grain not in GRAINS:
        raise SemanticLayerError(
            f"semantic layer {source}: dimensions.{name}.grain is {grain!r}; use one of {', '.join(GRAINS)}"
        )
    if not body.get("field"):
        raise SemanticLayerError(f"semantic layer {source}: dimensions.{name} needs a field")
    return Dimension(
        name,
        _table(f"dimensions.{name}", body, source, True),
        str(body["field"]),
        _words(name, body, source),
        grain,
    )


_DEFAULT: SemanticLayer | None = None
_DEFAULT = SemanticLayer.from_spec(_read(DEFAULTS_FILE), "defaults")
