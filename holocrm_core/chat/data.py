"""What the assistant reads: the staged tables, the scores, the NL context, the similarity store and the
decision service, each opened at most once per process (lazily: a session that never asks a question never
builds the NL context), plus the deal states folded from the outcome log's records.

No door-specific code here: the CLI and the API build a ``ChatData`` from HOLOCRM_HOME (``from_warehouse``),
the tests from tables in memory (``from_tables``).
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from holocrm_core import schema
from holocrm_core.deal_states import DealStates

KINDS = {  # entity type -> (table, id column, name column)
    "company": ("companies", "company_id", "name"),
    "contact": ("contacts", "contact_id", "full_name"),
    "deal": ("deals", "deal_id", "title"),
    "activity": ("activities", "activity_id", "subject"),
}
NAMED = ("company", "contact", "deal")  # what a name lookup matches (not activities' subjects)
RECORD_TABLES = ("companies", "contacts", "deals", "activities")
SCORED = {"contact": "scored_leads", "deal": "scored_deals"}
_WORD = re.compile(r"[0-9a-z]+")


def name_key(name: str) -> str:
    """A name as it is compared: spaces collapsed, no trailing punctuation or quotes (a turn's "Acme Ltd."
    loses its full stop to the sentence)."""
    return " ".join(str(name).split()).strip(" ?.!'\"")


@dataclass(frozen=True)
class Rec:
    """A record the conversation talks about."""

    kind: str
    id: str
    label: str

    def public(self) -> dict[str, str]:
        return {"entity_type": self.kind, "id": self.id, "label": self.label}


class ChatData:
    """The tables and services one assistant process answers from."""

    def __init__(
        self,
        tables: Mapping[str, pl.DataFrame | None],
        *,
        nlq_factory: Callable[[], Any] | None = None,
        similarity=None,
        decisions_factory: Callable[[], Any] | None = None,
        experiments_factory: Callable[[], Any] | None = None,
        outcome_records: Iterable[Mapping[str, Any]] = (),
        as_of: datetime | None = None,
        embed: Callable | None = None,
    ):
        self.tables = {k: v for k, v in tables.items() if v is not None}
        if not any(name in self.tables for name in RECORD_TABLES):
            raise ValueError("no staged tables yet: run `holocrm run` first")
        for name in RECORD_TABLES:  # a table not built yet holds no records (its columns, no rows)
            frame = self.tables.get(name)
            empty = pl.DataFrame(schema=schema.ENTITIES[name])
            if frame is None:
                self.tables[name] = empty
            else:
                missing = [c for c in empty.columns if c not in frame.columns]
                self.tables[name] = frame.with_columns(
                    pl.lit(None, dtype=empty.schema[c]).alias(c) for c in missing
                )
        self.similarity = similarity
        self.as_of = as_of
        self._nlq_factory = nlq_factory
        self._decisions_factory = decisions_factory
        self._nlq = None
        self._decisions = None
        self._experiments_factory = experiments_factory
        self._experiments = None
        self._touched: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self.deal_states = DealStates()
        deals = self.tables["deals"]
        stages = dict(zip(deals["deal_id"].to_list(), deals["stage"].to_list(), strict=True))
        self._stages = stages
        seen: set[str] = set()
        for record in outcome_records:
            key = record.get("idempotency_key")
            if key in seen:
                continue
            seen.add(key)
            deal_id = str(record.get("deal_id") or "")
            if deal_id in stages:
                self.deal_states.seed_export(deal_id, stages[deal_id])
            self.deal_states.observe(record)
        self.names = self._name_index()
        self.by_name: dict[str, list[tuple[str, str, str]]] = {}
        for entry in self.names:
            self.by_name.setdefault(name_key(entry[2]).lower(), []).append(entry)
        # what a rep types besides a full name: a record id (Maven's opportunity ids) in any case, a company or
        # contact name without its legal suffix ("Acme" for "Acme Holdings Inc.")
        from holocrm_core.chat.understand import short_name

        self.by_id: dict[str, list[tuple[str, str, str]]] = {}
        self.by_short: dict[str, list[tuple[str, str, str]]] = {}
        for entry in self.names:
            self.by_id.setdefault(entry[1].lower(), []).append(entry)
            if entry[0] == "company":
                short = short_name(entry[2])
                if short and short != name_key(entry[2]).lower() and short not in self.by_name:
                    self.by_short.setdefault(short, []).append(entry)
        self.embed = embed
        self._positions: dict[str, dict[str, int]] = {}
        self._pools: dict[Any, Any] = {}

    # -- building -------------------------------------------------------------------------------------------
    @classmethod
    def from_tables(cls, tables: Mapping[str, pl.DataFrame], embed=None, **kw) -> ChatData:
        """Tables keyed ``companies``/``staged_companies``..., ``scored_leads``, ``scored_deals``; ``embed``:
        the NL layer's embedder for words no rule knows (``holocrm_core.nlq.meaning.lazy_embed()``)."""
        plain = {k.removeprefix("staged_"): v for k, v in tables.items()}

        def nlq():
            from holocrm_core.nlq import NLQContext

            return NLQContext.from_tables(dict(tables), similarity=kw.get("similarity"), embed=embed)

        def decisions():
            from holocrm_core.decisions.service import DecisionService

            staged = {f"staged_{k}": plain.get(k) for k in ("contacts", "companies", "activities")}
            staged["scored_leads"] = plain.get("scored_leads")
            return DecisionService.build(staged, None, load_registry=False, persist=False)

        kw.setdefault("nlq_factory", nlq)
        kw.setdefault("decisions_factory", decisions)
        kw.setdefault("embed", embed)
        return cls(plain, **kw)

    # -- lazily opened services ---------------------------------------------------------------------------
    @property
    def nlq(self):
        with self._lock:
            if self._nlq is None:
                if self._nlq_factory is None:
                    raise LookupError("questions cannot be answered here: no NL context")
                self._nlq = self._nlq_factory()
            return self._nlq

    @property
    def decisions(self):
        with self._lock:
            if self._decisions is None:
                if self._decisions_factory is None:
                    raise LookupError("no decision service here")
                self._decisions = self._decisions_factory()
            return self._decisions

    @property
    def experiments(self):
        """The experiment service (``holocrm_core.experiments.service.ExperimentService``) of this home."""
        with self._lock:
            if self._experiments is None:
                if self._experiments_factory is None:
                    raise LookupError("no experiment store here (experiments live under HOLOCRM_HOME)")
                self._experiments = self._experiments_factory()
            return self._experiments

    # -- records ------------------------------------------------------------------------------------------
    def _name_index(self) -> list[tuple[str, str, str]]:
        """(kind, id, name) of every named company, contact and deal: what a name is matched against."""
        out = []
        for kind in NAMED:
            table, id_col, name_col = KINDS[kind]
            frame = self.tables[table].select(id_col, name_col).drop_nulls()
            out.extend((kind, str(i), str(n)) for i, n in frame.iter_rows())
        return out

    def name_pool(self, kinds: tuple[str, ...] | None) -> tuple[list[tuple[str, str, str]], list[str]]:
        """The names a lookup restricted to ``kinds`` matches against, and the same lower-cased (cached)."""
        if kinds not in self._pools:
            pool = [t for t in self.names if kinds is None or t[0] in kinds]
            self._pools[kinds] = (pool, [t[2].lower() for t in pool])
        return self._pools[kinds]

    def prefixes(self, kinds: tuple[str, ...] | None) -> dict[str, list[int]]:
        """The first three letters of every word of every name -> the names' positions in ``name_pool``
        (cached): the cheap prefilter before the fuzzy scorer."""
        key = ("prefixes", kinds)
        if key not in self._pools:
            _, lowered = self.name_pool(kinds)
            index: dict[str, list[int]] = {}
            for i, name in enumerate(lowered):
                for start in {w[:3] for w in _WORD.findall(name) if len(w) >= 3}:
                    index.setdefault(start, []).append(i)
            self._pools[key] = index
        return self._pools[key]

    def warm(self) -> ChatData:
        """Open what the first turns would otherwise open: the NL context (and the embedder it matches unknown
        words with), the decision service, the name pools and their prefixes, the last touches (start-up, not
        a turn's latency)."""
        for opened in (lambda: self.nlq, lambda: self.decisions):
            with contextlib.suppress(LookupError):
                opened()
        matcher = getattr(self._nlq, "term_matcher", None)
        if matcher is not None and getattr(matcher, "embed", None) is not None:
            with contextlib.suppress(
                Exception
            ):  # a warm-up only: the first unknown word would load it anyway
                matcher.nearest("warmup")
        for kinds in (None, ("company", "contact"), ("deal",)):
            self.prefixes(kinds)
        for kind in NAMED:
            self.row(kind, "")  # the id -> row maps
        self.last_touch()
        from holocrm_core.chat import understand

        with contextlib.suppress(Exception):  # a warm-up only: the first turn read by meaning would build it
            understand.rank("warm up", self.meaning_embed)
        return self

    @property
    def meaning_embed(self) -> Callable:
        """texts -> vectors for reading turns by meaning: the embedder given, else the packaged model (one per
        process, loaded on the first turn no pattern matches)."""
        if self.embed is None:
            from holocrm_core.chat.understand import default_embed

            self.embed = default_embed()
        return self.embed

    def row(self, kind: str, record_id: str) -> dict[str, Any] | None:
        table, id_col, _ = KINDS[kind]
        with self._lock:
            if kind not in self._positions:  # id -> row number, built on the kind's first lookup
                ids = self.tables[table][id_col].cast(pl.String).to_list()
                self._positions[kind] = {rid: i for i, rid in reversed(list(enumerate(ids)))}
        position = self._positions[kind].get(str(record_id))
        return None if position is None else self.tables[table].row(position, named=True)

    def label(self, kind: str, record_id: str) -> str:
        row = self.row(kind, record_id) or {}
        name = str(row.get(KINDS[kind][2]) or record_id)
        company = self.company_name(row.get("company_id")) if kind != "company" else None
        return f"{name} ({kind}{', ' + company if company else ''})"

    def rec(self, kind: str, record_id: str) -> Rec:
        return Rec(kind, record_id, self.label(kind, record_id))

    def company_name(self, company_id: Any) -> str | None:
        if not company_id:
            return None
        row = self.row("company", str(company_id))
        return str(row["name"]) if row and row.get("name") else None

    def contacts_of(self, company_id: str) -> pl.DataFrame:
        return self.tables["contacts"].filter(pl.col("company_id") == company_id)

    def deals_of(self, kind: str, record_id: str) -> pl.DataFrame:
        deals = self.tables["deals"]
        if kind == "company":
            return deals.filter(pl.col("company_id") == record_id)
        if kind == "contact":
            return deals.filter(pl.col("contact_id") == record_id)
        return deals.filter(pl.col("deal_id") == record_id)

    def activities_of(self, kind: str, record_id: str) -> pl.DataFrame:
        """The record's activities, newest first (a company's: its own and its contacts')."""
        acts = self.tables["activities"]
        if kind == "contact":
            mine = acts.filter(pl.col("contact_id") == record_id)
        elif kind == "deal":
            mine = acts.filter(pl.col("deal_id") == record_id)
        elif kind == "activity":
            mine = acts.filter(pl.col("activity_id") == record_id)
        else:
            people = self.contacts_of(record_id)["contact_id"].to_list()
            mine = acts.filter((pl.col("company_id") == record_id) | pl.col("contact_id").is_in(people))
        return mine.sort("occurred_at", descending=True, nulls_last=True)

    def attachments_of(self, activity_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """activity id -> its attachments: file name and, where the attachments were read
        (``attachment_texts``), the start of the extracted text."""
        attachments = self.tables.get("attachments")
        if attachments is None or not activity_ids:
            return {}
        mine = attachments.filter(pl.col("activity_id").is_in(activity_ids))
        texts = self.tables.get("attachment_texts")
        if texts is not None and {"attachment_id", "text"} <= set(texts.columns) and mine.height:
            mine = mine.join(
                texts.select("attachment_id", pl.col("text").alias("_text")), on="attachment_id", how="left"
            )
        out: dict[str, list[dict[str, Any]]] = {}
        for row in mine.iter_rows(named=True):
            entry = {"file_name": row.get("file_name")}
            if row.get("_text"):
                entry["text"] = " ".join(str(row["_text"]).split())[:240]
            out.setdefault(str(row["activity_id"]), []).append(entry)
        return out

    def score(self, kind: str, record_id: str) -> dict[str, Any] | None:
        table = self.tables.get(SCORED.get(kind, ""))
        if table is None:
            return None
        id_col = KINDS[kind][1]
        found = table.filter(pl.col(id_col) == record_id)
        return found.row(0, named=True) if found.height else None

    def scores_of(self, kind: str, record_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The score rows of many records at once (id -> row; unscored ids absent)."""
        table = self.tables.get(SCORED.get(kind, ""))
        if table is None or not record_ids:
            return {}
        id_col = KINDS[kind][1]
        found = table.filter(pl.col(id_col).cast(pl.String).is_in(record_ids))
        return {str(r[id_col]): r for r in found.iter_rows(named=True)}

    def last_touch(self) -> dict[str, Any]:
        """contact id -> when the contact's latest activity happened up to the as-of time (built once)."""
        with self._lock:
            if self._touched is None:
                acts = self.tables["activities"].drop_nulls(["contact_id", "occurred_at"])
                if self.as_of is not None and acts.height:
                    acts = acts.filter(pl.col("occurred_at") <= self.as_of)
                latest = acts.group_by("contact_id").agg(pl.col("occurred_at").max())
                self._touched = dict(latest.iter_rows())
            return self._touched

    def deal_status(self, deal_id: str) -> str:
        return self.deal_states.state(deal_id, self._stages.get(deal_id)).status

    def export_stage(self, deal_id: str) -> Any:
        return self._stages.get(deal_id)
