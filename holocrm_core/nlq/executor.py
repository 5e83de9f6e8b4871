"""Typed plan -> rows: polars expressions over the staged tables, the similarity backend where one is given.

Every expression is built from the plan's names after checking them against the loaded tables (a closed
set of operators, measures and links between entities), so a plan can only ever filter, link, count and
sort the CRM's own tables. Parts whose artifact is missing (no similarity index, no lead scores) are not
silently dropped: the result says so and the answer loses its high confidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import polars as pl

from holocrm_core.nlq.plan import MEASURES, OPERATORS, FieldFilter, Plan, TimeWindow
from holocrm_core.schema import ID_COLUMN

# How a row of `target` is linked to rows of `other`: target column whose value appears in other column.
LINKS: dict[tuple[str, str], tuple[str, str]] = {
    ("contacts", "companies"): ("company_id", "company_id"),
    ("deals", "companies"): ("company_id", "company_id"),
    ("activities", "companies"): ("company_id", "company_id"),
    ("deals", "contacts"): ("contact_id", "contact_id"),
    ("activities", "contacts"): ("contact_id", "contact_id"),
    ("activities", "deals"): ("deal_id", "deal_id"),
    ("companies", "contacts"): ("company_id", "company_id"),
    ("companies", "deals"): ("company_id", "company_id"),
    ("companies", "activities"): ("company_id", "company_id"),
    ("contacts", "deals"): ("contact_id", "contact_id"),
    ("contacts", "activities"): ("contact_id", "contact_id"),
    ("deals", "activities"): ("deal_id", "deal_id"),
}
# What the similarity store calls each entity.
STORE_TYPES = {"contacts": "contact", "companies": "company", "deals": "deal", "activities": "activity"}
DISPLAY_COLUMNS = {
    "contacts": [
        "contact_id",
        "full_name",
        "title",
        "seniority",
        "company_name",
        "lifecycle_status",
        "owner",
    ],
    "companies": ["company_id", "name", "industry", "size_band", "employees", "region"],
    "deals": [
        "deal_id",
        "title",
        "company_id",
        "stage",
        "value",
        "currency",
        "owner",
        "product",
        "created_at",
        "closed_at",
    ],
    "activities": ["activity_id", "type", "contact_id", "deal_id", "occurred_at", "subject", "owner"],
}
MIN_TEXT_SIMILARITY = 0.3
_WORK_COLUMNS = {
    "_value",
    "currency",
    "company_id",
    "contact_id",
    "deal_id",
    "created_at",
    "occurred_at",
    "stage",
}
_STOP_TEXT = set(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "and",
        "or",
        "in",
        "on",
        "for",
        "with",
        "about",
        "our",
        "their",
        "his",
        "her",
        "my",
        "we",
        "i",
        "they",
        "it",
        "is",
        "are",
        "was",
        "be",
    ]
)


class SimilarityBackend(Protocol):
    """What the executor needs from holocrm_core.store.SimilarityStore (or any stand-in)."""

    def similar(
        self,
        entity_type: str,
        entity_id: str,
        limit: int = 10,
        min_similarity: float | None = None,
        filters: dict | None = None,
    ) -> list[dict]: ...

    def search(
        self,
        text: str,
        entity_types: list[str] | None = None,
        mode: str = "hybrid",
        limit: int = 10,
        filters: dict | None = None,
    ) -> list[dict]: ...


@dataclass
class ExecutionResult:
    rows: pl.DataFrame
    ids: pl.Series | list  # ids of the answer's records (a Series: turned into a list only when asked)
    value: Any = None  # scalar aggregate (count, sum, avg)
    missing: list[str] = field(default_factory=list)  # capabilities whose artifact is absent
    notes: list[str] = field(default_factory=list)


class PlanError(ValueError):
    """A plan names something the tables do not have."""


def _dt(moment: datetime) -> pl.Expr:
    return pl.lit(moment, dtype=pl.Datetime("us", "UTC"))


def _column(frame: pl.DataFrame, entity: str, name: str) -> pl.Expr:
    if entity == "deals" and name == "value":
        return pl.col("_value")
    if entity == "companies" and name == "annual_revenue" and "_annual_revenue" in frame.columns:
        return pl.col("_annual_revenue")
    if entity == "deals" and name == "stage_changed_at":
        return pl.col("_stage_since")
    if name not in frame.columns:
        raise PlanError(f"{entity} has no column {name!r}")
    return pl.col(name)


def _compare(col: pl.Expr, op: str, value: Any, is_string: bool) -> pl.Expr:
    if op not in OPERATORS:
        raise PlanError(f"unknown operator {op!r}")
    if is_string:
        # values come from the vocabulary in the data's own spelling, so an exact comparison is right (and
        # lower-casing 100k strings per question would cost more than the rest of the question)
        value = [str(v) for v in value] if isinstance(value, (list, tuple)) else str(value)
    if op == "eq":
        return col == value
    if op == "ne":
        return (col != value) | col.is_null()
    if op == "in":
        return col.is_in(list(value))
    if op == "not_in":
        return ~col.is_in(list(value)) | col.is_null()
    if op == "gt":
        return col > value
    if op == "gte":
        return col >= value
    if op == "lt":
        return col < value
    if op == "lte":
        return col <= value
    if op == "between":
        low, high = value
        return (col >= low) & (col <= high)
    if op == "is_null":
        return col.is_null()
    return col.is_not_null()


def filter_expr(frame: pl.DataFrame, f: FieldFilter) -> pl.Expr:
    col = _column(frame, f.entity, f.field)
    name = {"value": "_value"}.get(f.field, f.field) if f.entity == "deals" else f.field
    dtype = frame.schema.get(name, frame.schema.get(f.field))
    is_string = dtype == pl.String
    expr = _compare(col, f.op, f.value, is_string)
    if f.currency:
        cur = "currency" if f.entity == "deals" else "revenue_currency"
        if cur in frame.columns:
            expr = expr & (pl.col(cur).str.to_uppercase() == f.currency)
    return expr


def window_expr(frame: pl.DataFrame, w: TimeWindow) -> pl.Expr:
    col = _column(frame, w.entity, w.field)
    expr = pl.lit(True)
    if w.start is not None:
        expr = expr & (col >= _dt(w.start))
    if w.end is not None:
        expr = expr & (col < _dt(w.end))
    return expr & col.is_not_null()


class Executor:
    def __init__(self, context):
        self.ctx = context

    def run(self, plan: Plan, similarity: SimilarityBackend | None = None) -> ExecutionResult:
        ctx = self.ctx
        target = plan.target
        if target not in LINKS and target not in ID_COLUMN:
            raise PlanError(f"unknown entity {target!r}")
        frame = ctx.table(target)
        id_col = ID_COLUMN[target]
        missing: list[str] = []
        notes: list[str] = []
        masks: list[pl.Expr] = []
        per_entity: dict[str, list[pl.Expr]] = {}
        negated: dict[str, list[pl.Expr]] = {}
        for f in plan.filters:
            if f.entity != target and f.op in ("ne", "not_in"):
                continue
            other = ctx.table(f.entity)
            per_entity.setdefault(f.entity, []).append(filter_expr(other, f))
        for w in plan.windows:
            other = ctx.table(w.entity)
            per_entity.setdefault(w.entity, []).append(window_expr(other, w))
        for f in plan.filters:
            if f.entity != target and f.op in ("ne", "not_in"):
                # "leads not in healthcare": not linked to a healthcare company (no company at all included)
                other = ctx.table(f.entity)
                positive = FieldFilter(f.entity, f.field, "eq" if f.op == "ne" else "in", f.value, f.currency)
                negated.setdefault(f.entity, []).append(filter_expr(other, positive))
        for entity, exprs in per_entity.items():
            if entity == target:
                masks.extend(exprs)
            elif exprs:
                masks.append(self._linked(target, entity, exprs))
        for entity, exprs in negated.items():
            for expr in exprs:
                masks.append(~self._linked(target, entity, [expr]).fill_null(False))
        for cond in plan.activity_conditions:
            masks.append(self._activity_mask(target, cond))
        for g in plan.group_filters:
            if g.measure not in MEASURES:
                raise PlanError(f"unknown measure {g.measure!r}")
            measures = ctx.company_measures(g.currency)
            passing = measures.filter(_compare(pl.col(g.measure), g.op, g.value, False)).get_column(
                "company_id"
            )
            masks.append(self._company_link(target, passing))
        for band in plan.score_bands:
            scored = ctx.scores.get(band.entity)
            if scored is None:
                missing.append(
                    f"scores: no scored_{'leads' if band.entity == 'contacts' else band.entity} table, so "
                    f"'{band.band}' was not applied (run the scoring pipeline)"
                )
                continue
            sid = ID_COLUMN[band.entity]
            key = ("band", band.entity, band.band, target)
            mask = ctx.cache.get(key)
            if mask is None:
                ids = scored.filter(pl.col("band").str.to_lowercase() == band.band.lower()).get_column(sid)
                if band.entity == target:
                    mask = frame.get_column(id_col).is_in(ids.implode())
                else:
                    mask = frame.select(
                        self._linked(target, band.entity, [pl.col(sid).is_in(ids.implode())])
                    ).to_series()
                ctx.cache[key] = mask.fill_null(False)  # scores change only when the context is rebuilt
            masks.append(pl.lit(ctx.cache[key]))
        if plan.text is not None:
            masks.append(self._text_mask(target, plan.text.text, similarity, missing, notes))
        if plan.metric is not None:
            rows = frame.lazy().filter(pl.all_horizontal(masks)).collect() if masks else frame
            return self._metric(plan, rows, missing, notes)
        # keep only the columns later steps use: filtering 100k wide rows costs more than the filter itself
        keep = set(DISPLAY_COLUMNS[target]) | _WORK_COLUMNS
        if plan.sort is not None:
            keep.add(plan.sort.key)
        if plan.aggregate is not None and plan.aggregate.group_field:
            keep.add(plan.aggregate.group_field)
        keep_cols = [c for c in frame.columns if c in keep]
        if masks:
            result = frame.lazy().filter(pl.all_horizontal(masks)).select(keep_cols).collect()
        else:
            result = frame.select(keep_cols)
        order_by_similarity = None
        if plan.similar_to is not None:
            result, order_by_similarity = self._similar(plan, result, similarity, missing, notes)
        # ordering
        measure_col = None
        if plan.sort is not None:
            result, measure_col = self._sorted(plan, result)
        elif order_by_similarity is not None:
            result = result.join(order_by_similarity, on=id_col, how="inner").sort(
                ["similarity", id_col], descending=[True, False]
            )
        if plan.aggregate is not None:
            return self._aggregate(plan, result, missing, notes)
        if plan.limit is not None:
            result = result.head(plan.limit)
        ids = result.get_column(id_col)
        cols = [c for c in DISPLAY_COLUMNS[target] if c in result.columns]
        # the sort column may itself be "score" or "similarity": each shown once
        extra = [
            c
            for c in dict.fromkeys((measure_col, "similarity", "score"))
            if c and c in result.columns and c not in cols
        ]
        return ExecutionResult(result.select(cols + extra), ids, None, missing, notes)

    # ---- semantic-layer metrics --------------------------------------------------------------------
    def _metric(
        self, plan: Plan, rows: pl.DataFrame, missing: list[str], notes: list[str]
    ) -> ExecutionResult:
        from holocrm_core.metrics import StageSets, compute_metric

        ctx = self.ctx
        target = plan.target
        vocab = ctx.vocab
        stages = StageSets(
            tuple(vocab.open_stages) or StageSets.open,
            tuple(vocab.won_stages) or ("won",),
            tuple(vocab.lost_stages) or ("lost",),
        )
        keys: list[str] = []
        for g in plan.metric.groups:
            entity = target if g.entity in ("*", target) else g.entity
            name = g.field
            if entity != target:
                if (target, entity) not in LINKS or g.field not in ctx.table(entity).columns:
                    raise PlanError(f"cannot group {target} by {entity}.{g.field}")
                mine, theirs = LINKS[(target, entity)]
                name = g.field if g.field not in rows.columns else f"{entity}_{g.field}"
                other = ctx.table(entity).select(theirs, pl.col(g.field).alias(name)).unique(theirs)
                rows = rows.join(other, left_on=mine, right_on=theirs, how="left")
            elif g.field not in rows.columns:
                raise PlanError(f"{target} has no column {g.field!r} to group by")
            if g.grain:
                col = pl.col(name)
                bucket = {
                    "quarter": col.dt.year().cast(pl.String) + "-Q" + col.dt.quarter().cast(pl.String),
                    "month": col.dt.strftime("%Y-%m"),
                    "year": col.dt.year().cast(pl.String),
                }[g.grain]
                rows = rows.with_columns(bucket.alias(f"{name}_{g.grain}"))
                name = f"{name}_{g.grain}"
            keys.append(name)
        metric = ctx.semantic.metric(plan.metric.name)
        if metric.field == "days_since_last_touch":
            from holocrm_core.metrics import with_last_touch

            rows = with_last_touch(rows, ctx.table("activities"), ID_COLUMN[target], plan.as_of)
        try:
            result = compute_metric(ctx.semantic, plan.metric.name, rows, stages, keys, plan.as_of)
        except ValueError as exc:
            raise PlanError(str(exc)) from exc
        notes.extend(result.notes)
        out, value = result.rows, result.value
        if isinstance(value, dict) and (keys or len(value) > 1):
            if plan.metric.ascending:
                out = out.sort([plan.metric.name, *out.columns[:-1]], nulls_last=True)
            if plan.limit is not None:
                out = out.head(plan.limit)
            shown = [c for c in out.columns if c != plan.metric.name]
            value = {
                " ".join(str(r[k]) for k in shown): r[plan.metric.name] for r in out.iter_rows(named=True)
            }
        return ExecutionResult(out, rows.get_column(ID_COLUMN[target]), value, missing, notes)

    # ---- links -------------------------------------------------------------------------------------
    def _linked(self, target: str, entity: str, exprs: list[pl.Expr]) -> pl.Expr:
        ctx = self.ctx
        link = self._link(target, entity)
        if link is None:
            # two hops through companies (contacts <-> deals without a contact on the deal)
            ids = (
                ctx.table(entity)
                .filter(pl.all_horizontal(exprs))
                .get_column("company_id")
                .drop_nulls()
                .unique()
            )
            return pl.col("company_id").is_in(ids.implode())
        mine, theirs = link
        values = ctx.table(entity).filter(pl.all_horizontal(exprs)).get_column(theirs).drop_nulls().unique()
        return pl.col(mine).is_in(values.implode())

    def _link(self, target: str, entity: str) -> tuple[str, str] | None:
        link = LINKS.get((target, entity))
        if link is None:
            raise PlanError(f"no link from {target} to {entity}")
        mine, theirs = link
        if mine == "contact_id" and not self.ctx.has_values(
            entity if target == "contacts" else target, "contact_id"
        ):
            return None  # deals without contacts (Maven): go through the company
        return link

    def _company_link(self, target: str, company_ids: pl.Series) -> pl.Expr:
        return pl.col("company_id").is_in(company_ids.implode())

    def _activity_mask(self, target: str, cond) -> pl.Expr:
        exprs = [pl.lit(True)]
        if cond.types:
            exprs.append(pl.col("type").is_in(list(cond.types)))
        if target == "activities":
            if cond.start is not None:
                exprs.append(pl.col("occurred_at") >= _dt(cond.start))
            if cond.end is not None:
                exprs.append(pl.col("occurred_at") < _dt(cond.end))
            mask = pl.all_horizontal(exprs)
            return mask if cond.exists else ~mask
        mine, theirs = LINKS[(target, "activities")]
        key = ("activity_mask", target, theirs, cond.types, cond.start, cond.end)
        present = self.ctx.cache.get(key)
        if present is None:
            # a time window is a slice of the activities sorted by time (binary search, not a scan)
            acts = self.ctx.activities_in(cond.start, cond.end)
            values = acts.filter(pl.all_horizontal(exprs)).get_column(theirs).drop_nulls().unique()
            present = self.ctx.table(target).get_column(mine).is_in(values.implode()).fill_null(False)
            if cond.start is None and cond.end is None:
                self.ctx.cache[key] = present  # "never emailed" does not depend on the as-of date
        return pl.lit(present) if cond.exists else pl.lit(~present)

    # ---- free text and similarity ------------------------------------------------------------------
    def _text_mask(self, target: str, text: str, similarity, missing: list[str], notes: list[str]) -> pl.Expr:
        acts = self.ctx.table("activities")
        matched = None
        if similarity is not None and hasattr(similarity, "search"):
            try:
                ids = semantic_activity_ids(similarity, text, acts.height)
                notes.append(f"'{text}' matched by the semantic index ({len(ids)} activities)")
                matched = acts.filter(pl.col("activity_id").is_in(pl.Series(ids, dtype=pl.String).implode()))
            except Exception as exc:  # an index that is missing or stale must not hide the rest of the answer
                missing.append(f"semantic index: search failed ({exc}); matched keywords instead")
        else:
            missing.append("semantic index: none given, so the free-text part was matched by keywords")
        if matched is None:
            matched = acts.filter(self._keyword_mask(text))
        if target == "activities":
            return pl.col("activity_id").is_in(matched.get_column("activity_id").implode())
        mine, theirs = LINKS[(target, "activities")]
        values = matched.get_column(theirs).drop_nulls().unique()
        return pl.col(mine).is_in(values.implode())

    def _keyword_mask(self, text: str) -> pl.Series:
        """Activities whose subject + body contain every content word (crudely stemmed) of the text."""
        stems = [keyword_stem(w) for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP_TEXT]
        haystack = self.ctx.activity_text()
        mask = None
        for stem in stems:
            hit = haystack.str.contains(stem, literal=True).fill_null(False)
            mask = hit if mask is None else mask & hit
        return mask if mask is not None else pl.Series([False] * haystack.len())

    def _similar(self, plan: Plan, result: pl.DataFrame, similarity, missing: list[str], notes: list[str]):
        anchor = plan.similar_to
        target = plan.target
        id_col = ID_COLUMN[target]
        want = plan.limit or 10
        if similarity is not None:
            try:
                hits = similarity.similar(
                    STORE_TYPES[anchor.entity], anchor.entity_id, limit=max(want * 5, 50)
                )
            except Exception as exc:
                missing.append(f"similarity index: lookup failed ({exc})")
                hits = None
        else:
            missing.append(
                "similarity index: none given, so 'like' used shared attributes instead of embeddings"
            )
            hits = self.ctx.attribute_neighbours(anchor.entity, anchor.entity_id, max(want * 5, 50))
        if hits is None:
            return result.head(0), None
        order = pl.DataFrame(
            {id_col: [h["id"] for h in hits], "similarity": [float(h.get("similarity", 0.0)) for h in hits]},
            schema={id_col: pl.String, "similarity": pl.Float64},
        )
        if anchor.entity != target:
            # neighbours of another kind (a company's look-alikes when asking for contacts): follow the link
            mine, theirs = LINKS[(target, anchor.entity)]
            order = order.rename({id_col: theirs}) if theirs != id_col else order
            linked = (
                result.select(id_col, mine)
                .join(order.rename({order.columns[0]: mine}), on=mine)
                .group_by(id_col)
                .agg(pl.col("similarity").max())
            )
            order = linked
        order = order.filter(pl.col(id_col) != anchor.entity_id)
        result = result.filter(pl.col(id_col).is_in(order.get_column(id_col).implode()))
        if plan.limit is None:
            result = (
                result.join(order, on=id_col)
                .sort(["similarity", id_col], descending=[True, False])
                .head(want)
            )
            return result.drop("similarity"), order
        return result, order

    # ---- ordering and aggregates -------------------------------------------------------------------
    def _sorted(self, plan: Plan, result: pl.DataFrame) -> tuple[pl.DataFrame, str | None]:
        sort = plan.sort
        target = plan.target
        id_col = ID_COLUMN[target]
        key = sort.key
        if sort.measure:
            if key not in MEASURES:
                raise PlanError(f"unknown measure {key!r}")
            currency = next((g.currency for g in plan.group_filters if g.currency), None)
            measures = self.ctx.company_measures(currency).select("company_id", key)
            result = result.join(measures, on="company_id", how="left").with_columns(pl.col(key).fill_null(0))
            sort_col = key
        elif key == "score":
            scored = self.ctx.scores.get(target)
            if scored is None:
                sort_col = "created_at"
            else:
                result = result.join(scored.select(id_col, "score"), on=id_col, how="left")
                sort_col = "score"
        else:
            entity = target
            if key in ("employees", "annual_revenue") and target != "companies":
                comp = self.ctx.table("companies").select("company_id", pl.col(key).alias(f"company_{key}"))
                result = result.join(comp, on="company_id", how="left")
                sort_col = f"company_{key}"
            else:
                if target == "deals" and key == "value":
                    sort_col = "_value"
                elif key not in result.columns:
                    raise PlanError(f"{entity} has no column {key!r} to sort by")
                else:
                    sort_col = key
        result = result.sort([sort_col, id_col], descending=[sort.descending, False], nulls_last=True)
        shown = sort_col if sort_col not in ("_value",) else None
        return result, shown

    def _aggregate(
        self, plan: Plan, result: pl.DataFrame, missing: list[str], notes: list[str]
    ) -> ExecutionResult:
        agg = plan.aggregate
        target = plan.target
        id_col = ID_COLUMN[target]
        value_expr = pl.len().alias("count")
        name = "count"
        if agg.func != "count":
            if target != "deals" or agg.field not in (None, "value"):
                raise PlanError(f"{agg.func} needs deal values")
            col = pl.col("_value")
            value_expr = {"sum": col.sum(), "avg": col.mean(), "min": col.min(), "max": col.max()}[
                agg.func
            ].alias(agg.func)
            name = agg.func
            currencies = (
                result.get_column("currency").drop_nulls().unique().to_list()
                if "currency" in result.columns
                else []
            )
            if len(currencies) > 1 and agg.group_field is None:
                notes.append(
                    f"amounts in several currencies ({', '.join(sorted(currencies))}) are given per currency"
                )
        if agg.group_field is None:
            if (
                agg.func != "count"
                and "currency" in result.columns
                and result.get_column("currency").n_unique() > 1
            ):
                rows = result.group_by("currency").agg(value_expr, pl.len().alias("deals")).sort("currency")
                value = {r["currency"]: r[name] for r in rows.iter_rows(named=True)}
            else:
                rows = result.select(value_expr)
                value = rows.item(0, 0) if rows.height else 0
                if isinstance(value, float):
                    value = round(value, 2)
            return ExecutionResult(rows, result.get_column(id_col), value, missing, notes)
        gent, gfld = agg.group_entity, agg.group_field
        frame = result
        key = gfld
        if gent != target or gfld not in frame.columns:
            if gfld == "company_id":
                pass
            elif gent == "companies" and "company_id" in frame.columns:
                comp = self.ctx.table("companies").select("company_id", pl.col(gfld).alias(f"company_{gfld}"))
                frame = frame.join(comp, on="company_id", how="left")
                key = f"company_{gfld}"
            elif gent in LINKS and (target, gent) in LINKS and gfld in self.ctx.table(gent).columns:
                mine, theirs = LINKS[(target, gent)]
                other = (
                    self.ctx.table(gent).select(theirs, pl.col(gfld).alias(f"{gent}_{gfld}")).unique(theirs)
                )
                frame = frame.join(other, left_on=mine, right_on=theirs, how="left")
                key = f"{gent}_{gfld}"
            else:
                raise PlanError(f"cannot group {target} by {gent}.{gfld}")
        keys = [key]
        if (
            agg.func != "count"
            and "currency" in frame.columns
            and frame.get_column("currency").drop_nulls().n_unique() > 1
        ):
            keys.append("currency")  # amounts in different currencies are never added together
            notes.append("amounts are summed per currency (no exchange rates in the export)")
        rows = (
            frame.group_by(keys)
            .agg(value_expr)
            .sort([name, *keys], descending=[True] + [False] * len(keys), nulls_last=True)
        )
        if plan.sort is not None and not plan.sort.descending:
            rows = rows.sort([name, *keys], descending=[False] * (len(keys) + 1))
        if plan.limit is not None:
            rows = rows.head(plan.limit)
        if key == "company_id":
            names = self.ctx.table("companies").select("company_id", "name")
            rows = rows.join(names, on="company_id", how="left").select("company_id", "name", *keys[1:], name)
        ids = frame.join(rows.select(keys), on=keys, how="semi").get_column(id_col)
        value = {" ".join(str(r[k]) for k in keys): r[name] for r in rows.iter_rows(named=True)}
        return ExecutionResult(rows, ids, value, missing, notes)


def semantic_activity_ids(similarity, text: str, total: int, first_page: int = 256) -> list[str]:
    """Every activity whose meaning is within MIN_TEXT_SIMILARITY of `text`, with no fixed cap: the index is
    asked for a page, ranked by cosine similarity, and for a page four times larger while the last hit of the
    page still clears the threshold (a common topic keeps its recall)."""
    limit = first_page
    while True:
        hits = similarity.search(text, entity_types=["activity"], mode="vector", limit=limit)
        if (
            len(hits) < limit
            or limit >= total
            or float(hits[-1].get("similarity") or 0.0) < MIN_TEXT_SIMILARITY
        ):
            break
        limit *= 4
    return [h["id"] for h in hits if float(h.get("similarity") or 0.0) >= MIN_TEXT_SIMILARITY]


def keyword_stem(word: str) -> str:
    """A crude stem so 'concerns' finds 'concerned' and 'pricing' finds 'price'."""
    for suffix in ("ations", "ation", "ings", "ing", "ies", "ied", "ers", "ed", "es", "er", "s", "e"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word
