"""Answers to plain-English CRM questions: the context built once per warehouse, and `ask`.

`NLQContext` holds the staged tables (with a few derived columns), the vocabulary learned from them, the
scored_* tables when the scoring pipeline has run, and an optional similarity backend; building it is the
expensive part, so a question afterwards is only parse + execute. `ask` returns an `Answer`: the rows, the
plan (typed, as JSON, in words), the trace of which words meant what, a confidence, and honest notes: words
not understood with suggestions, capabilities whose artifact is missing, and an as-of hint when the export
ends long before the date relative times are counted from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl

from holocrm_core.nlq.errors import EARLIEST_AS_OF, LATEST_AS_OF, MAX_QUESTION_CHARS, QuestionError
from holocrm_core.nlq.executor import ExecutionResult, Executor, PlanError, keyword_stem  # noqa: F401
from holocrm_core.nlq.parser import Parser, TraceEntry
from holocrm_core.nlq.plan import Plan
from holocrm_core.nlq.vocabulary import Vocabulary
from holocrm_core.schema import ENTITIES, ID_COLUMN

NLQ_ENTITIES = ("companies", "contacts", "deals", "activities")
HIGH_CONFIDENCE = 0.8
STALE_AFTER_DAYS = 60  # an export whose newest date is older than this before the as-of date gets a hint
VOCABULARY_FILE = "nlq_vocabulary.json"
SEMANTIC_FILE = (
    "semantic_layer.json"  # the semantic layer with the export's overrides, next to the vocabulary
)
EXAMPLES = [
    "enterprise contacts in {industry} with over $100k pipeline",
    "open deals in {industry} with no contact in 14 days",
    "how many deals did {owner} win last quarter",
    "top 10 companies by open pipeline",
    "deals over $5k closing this month",
]


@dataclass
class Answer:
    question: str
    plan: Plan
    rows: pl.DataFrame
    id_series: pl.Series | list
    value: Any
    trace: list[TraceEntry]
    confidence: float
    understood: bool
    unknown_words: list[str] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    as_of: datetime | None = None
    readings: list[Answer] = field(default_factory=list)  # what the question may mean, when it is unclear

    @property
    def ids(self) -> list[str]:
        """Ids of the records the answer is about, in answer order (for a count: the records counted)."""
        if not isinstance(self.id_series, list):
            self.id_series = self.id_series.to_list()
        return self.id_series

    @property
    def high_confidence(self) -> bool:
        return self.understood and self.confidence >= HIGH_CONFIDENCE

    def plan_json(self) -> dict:
        return self.plan.to_json()

    def plan_words(self) -> str:
        return self.plan.to_words()

    def to_json(self, max_rows: int = 50) -> dict:
        # one chunk: polars 2.1's write_json writes "[]" for a frame whose first chunk is empty (a filtered
        # concat of several files: 2 matching rows in the second chunk came back as no rows at all)
        rows = self.rows.head(max_rows).rechunk()
        return {
            "question": self.question,
            "understood": self.understood,
            "high_confidence": self.high_confidence,
            "confidence": round(self.confidence, 3),
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "plan": self.plan_json(),
            "plan_words": self.plan_words(),
            "trace": [t.as_dict() for t in self.trace],
            "value": self.value,
            "row_count": self.rows.height,  # rows of the answer: groups for a grouped answer
            "record_count": len(self.ids),  # the records the answer is about (for a count: those counted)
            "rows": json.loads(rows.write_json()) if rows.width else [],
            "unknown_words": self.unknown_words,
            "suggestions": self.suggestions,
            "hints": self.hints,
            "missing": self.missing,
            "readings": [r.reading_json(i + 1) for i, r in enumerate(self.readings)],
        }

    def reading_json(self, number: int) -> dict:
        """One reading of an unclear question, as the clarification lists it (`--pick N` runs it)."""
        return {
            "pick": number,
            "question": self.question,
            "plan_words": self.plan_words(),
            "plan": self.plan_json(),
            "value": self.value,
            "record_count": len(self.ids),
            "confidence": round(self.confidence, 3),
        }

    def summary(self) -> str:
        """The reading in one line: its plan and what it finds."""
        found = f"{self.value}" if self.value is not None else f"{len(self.ids)} record(s)"
        return f"{self.plan_words()} -> {found}"


class NLQContext:
    """Everything a question needs, prepared once: tables, vocabulary, scores, similarity backend."""

    def __init__(
        self,
        tables: dict[str, pl.DataFrame],
        vocabulary: Vocabulary | None = None,
        similarity=None,
        scores: dict[str, pl.DataFrame] | None = None,
        embed=None,
        warm: bool = True,
        semantic=None,
    ):
        """`warm`: compute the per-company measures and the time-sorted activities now (a server answering
        many questions) rather than on the first question that needs them (a one-off `holocrm ask`).
        `embed` (optional): texts -> vectors, e.g. the sentence-transformers model's encode; lets words no
        rule or synonym knows match the nearest field value ("lenders" -> financial services).
        `semantic`: the semantic layer (holocrm_core.metrics.SemanticLayer; its CRM defaults when None)."""
        from holocrm_core.metrics import SemanticLayer

        self.semantic = semantic or SemanticLayer.default()
        self.tables = {e: _prepare(e, tables.get(e)) for e in NLQ_ENTITIES}
        self.tables["activities"] = _fill_activity_companies(
            self.tables["activities"], self.tables["contacts"]
        )
        self.vocab = vocabulary or Vocabulary.from_tables(self.tables)
        if embed is not None:
            self.vocab.attach_embedder(embed)
        self.similarity = similarity
        self.scores: dict[str, pl.DataFrame] = {}
        for entity, frame in (scores or {}).items():
            if frame is not None and "band" in frame.columns:
                self.scores[entity] = frame
        self.parser = Parser(self.vocab, has_scores={e: True for e in self.scores}, semantic=self.semantic)
        from holocrm_core.nlq.meaning import TermMatcher

        self.term_matcher = TermMatcher(self.semantic, embed)
        self.executor = Executor(self)
        self._measures: dict[str | None, pl.DataFrame] = {}
        self._has_values: dict[tuple[str, str], bool] = {}
        self._activity_text: pl.Series | None = None
        self._neighbour_frames: dict[str, pl.DataFrame] = {}
        self.cache: dict = {}  # executor results that depend on the tables only
        self.vocabulary_source = "given" if vocabulary is not None else "built from the tables"
        if warm:  # paid once here rather than by the first question that needs them
            self.company_measures(None)
            self.activities_in(None, datetime.max.replace(tzinfo=UTC))

    @classmethod
    def from_tables(cls, tables: dict[str, pl.DataFrame], similarity=None, embed=None) -> NLQContext:
        """Tables keyed by entity ("contacts") or by warehouse name ("staged_contacts", "scored_leads")."""
        plain = {}
        scores = {}
        for name, frame in tables.items():
            if name.startswith("staged_"):
                plain[name.removeprefix("staged_")] = frame
            elif name in ("scored_leads", "scored_contacts"):
                scores["contacts"] = frame
            elif name == "scored_deals":
                scores["deals"] = frame
            else:
                plain[name] = frame
        return cls(plain, similarity=similarity, scores=scores, embed=embed)

    @classmethod
    def from_warehouse(
        cls, warehouse, similarity=None, embed=None, vocabulary: Vocabulary | None = None, warm: bool = True
    ) -> NLQContext:
        """The staged tables and scores of a warehouse, with the nlq_vocabulary artifact the pipeline wrote
        (rebuilt here only when it is missing, of another format or older than the staged tables)."""
        tables = {}
        for entity in NLQ_ENTITIES:
            if warehouse.exists(f"staged_{entity}"):
                tables[entity] = warehouse.read(f"staged_{entity}")
        scores = {}
        for name, entity in (("scored_leads", "contacts"), ("scored_deals", "deals")):
            if warehouse.exists(name):
                scores[entity] = warehouse.read(name)
        if vocabulary is None:
            vocabulary = load_vocabulary(warehouse, tables)
        semantic = load_semantic_layer(warehouse)
        ctx = cls(
            tables,
            vocabulary=vocabulary,
            similarity=similarity,
            scores=scores,
            embed=embed,
            warm=warm,
            semantic=semantic,
        )
        ctx.vocabulary_source = "artifact" if vocabulary is not None else "rebuilt from the staged tables"
        return ctx

    # ---- helpers for the executor -----------------------------------------------------------------
    def table(self, entity: str) -> pl.DataFrame:
        if entity not in self.tables:
            raise PlanError(f"unknown entity {entity!r}")
        return self.tables[entity]

    def activities_in(self, start: datetime | None, end: datetime | None) -> pl.DataFrame:
        """Activities with start <= occurred_at < end, cut from a time-sorted copy by binary search."""
        if start is None and end is None:
            return self.tables["activities"]
        by_time = self.cache.get("activities_by_time")
        if by_time is None:
            by_time = (
                self.tables["activities"].filter(pl.col("occurred_at").is_not_null()).sort("occurred_at")
            )
            self.cache["activities_by_time"] = by_time
        times = by_time.get_column("occurred_at")
        lo = 0 if start is None else int(times.search_sorted(start, side="left"))
        hi = by_time.height if end is None else int(times.search_sorted(end, side="left"))
        return by_time.slice(lo, max(0, hi - lo))

    def has_values(self, entity: str, column: str) -> bool:
        key = (entity, column)
        if key not in self._has_values:
            frame = self.tables[entity]
            self._has_values[key] = (
                column in frame.columns and frame.get_column(column).null_count() < frame.height
            )
        return self._has_values[key]

    def activity_text(self) -> pl.Series:
        if self._activity_text is None:
            acts = self.tables["activities"]
            self._activity_text = acts.select(
                pl.concat_str(
                    [pl.col("subject").fill_null(""), pl.col("body").fill_null("")], separator=" "
                ).str.to_lowercase()
            ).to_series()
        return self._activity_text

    def company_measures(self, currency: str | None = None) -> pl.DataFrame:
        """Per-company sums and counts over deals, contacts and activities (in one currency when given)."""
        if currency in self._measures:
            return self._measures[currency]
        deals = self.tables["deals"]
        if currency:
            deals = deals.filter(pl.col("currency").str.to_uppercase() == currency)
        stage = pl.col("stage").str.to_lowercase()
        won = [s.lower() for s in self.vocab.won_stages] or ["won"]
        lost = [s.lower() for s in self.vocab.lost_stages] or ["lost"]
        open_ = [s.lower() for s in self.vocab.open_stages]
        per_deal = (
            deals.filter(pl.col("company_id").is_not_null())
            .group_by("company_id")
            .agg(
                pl.col("_value").filter(stage.is_in(open_)).sum().alias("open_pipeline"),
                pl.col("_value").filter(stage.is_in(won)).sum().alias("won_value"),
                pl.col("_value").filter(stage.is_in(lost)).sum().alias("lost_value"),
                pl.col("_value").sum().alias("deal_value"),
                pl.len().alias("deal_count"),
                stage.is_in(open_).sum().alias("open_deal_count"),
                stage.is_in(won).sum().alias("won_deal_count"),
                stage.is_in(lost).sum().alias("lost_deal_count"),
            )
        )
        contacts = self.tables["contacts"].group_by("company_id").agg(pl.len().alias("contact_count"))
        acts = self.tables["activities"].group_by("company_id").agg(pl.len().alias("activity_count"))
        measures = (
            self.tables["companies"]
            .select("company_id")
            .join(per_deal, on="company_id", how="left")
            .join(contacts, on="company_id", how="left")
            .join(acts, on="company_id", how="left")
            .fill_null(0)
        )
        self._measures[currency] = measures
        return measures

    def attribute_neighbours(self, entity: str, entity_id: str, limit: int) -> list[dict]:
        """Stand-in for the similarity index: records sharing the most descriptive attributes."""
        attrs = {
            "contacts": ["seniority", "lifecycle_status", "_industry", "_size_band", "owner"],
            "companies": ["industry", "size_band", "region", "country"],
            "deals": ["product", "stage", "owner", "_industry"],
            "activities": ["type", "direction", "owner"],
        }[entity]
        id_col = ID_COLUMN[entity]
        frame = self._neighbour_frames.get(entity)
        if frame is None:
            frame = self.tables[entity]
            if "company_id" in frame.columns and entity != "companies":
                comp = self.tables["companies"].select(
                    "company_id",
                    pl.col("industry").alias("_industry"),
                    pl.col("size_band").alias("_size_band"),
                )
                frame = frame.join(comp, on="company_id", how="left")
            present = [a for a in attrs if a in frame.columns]
            # attributes as small integer codes, rows in id order: a question then compares integers only
            frame = (
                frame.select([id_col, *[pl.col(a).rank("dense").cast(pl.Int32).alias(a) for a in present]])
                .sort(id_col)
                .with_columns((-pl.int_range(pl.len(), dtype=pl.Int64)).alias("_order"))
            )
            self._neighbour_frames[entity] = frame
        attrs = [a for a in attrs if a in frame.columns]
        anchor = frame.filter(pl.col(id_col) == entity_id)
        if anchor.height == 0 or not attrs:
            return []
        row = anchor.row(0, named=True)
        shared = pl.sum_horizontal(
            [(pl.col(a) == row[a]).fill_null(False).cast(pl.Int32) for a in attrs if row[a] is not None]
            or [pl.lit(0)]
        )
        # top_k then a small sort: sorting all 100k rows would cost more than the rest of the question
        scored = (
            frame.select(id_col, "_order", (shared / len(attrs)).alias("similarity"))
            .filter(pl.col(id_col) != entity_id)
            .top_k(limit, by=["similarity", "_order"])
            .sort(["similarity", id_col], descending=[True, False])
        )
        return [{"id": i, "similarity": s} for i, s in scored.select(id_col, "similarity").iter_rows()]

    def write_vocabulary(self, target) -> str:
        """Write the vocabulary artifact into a warehouse (a folder: ``nlq_vocabulary.json``; object storage:
        the same JSON as a warehouse document), stamped with the staged tables it was built from so a reader
        can tell it is stale. Returns where it went."""
        warehouse = _warehouse_of(target)
        artifact = self.vocab.to_artifact()
        artifact[BUILT_FROM] = _staged_stamps(warehouse)
        warehouse.update_document(VOCABULARY_DOC, lambda _: artifact)
        return f"{warehouse.root}/{VOCABULARY_FILE}"


VOCABULARY_DOC = VOCABULARY_FILE.removesuffix(".json")  # the warehouse document's name
SEMANTIC_DOC = SEMANTIC_FILE.removesuffix(".json")
BUILT_FROM = "built_from_staged"  # the staged tables' commit stamps (Warehouse.stamp) the vocabulary reflects


def _warehouse_of(source):
    """A warehouse (returned as is), HoloPaths (its warehouse root: the settings' ``s3://`` one when set) or
    a folder."""
    from holocrm_core.warehouse import Warehouse

    if hasattr(source, "read_document"):
        return source
    if hasattr(source, "warehouse"):
        from holocrm_core.settings import warehouse_root

        return Warehouse(warehouse_root(source))
    return Warehouse(source)


def _staged_stamps(warehouse) -> dict[str, str]:
    return {
        f"staged_{e}": stamp for e in NLQ_ENTITIES if (stamp := warehouse.stamp(f"staged_{e}")) is not None
    }


def write_semantic_layer(target, layer) -> str:
    """The semantic layer (with the export's overrides) beside the vocabulary, on a folder or object storage."""
    warehouse = _warehouse_of(target)
    document = {"source": layer.source, "layer": layer.to_spec()}
    warehouse.update_document(SEMANTIC_DOC, lambda _: document)
    return f"{warehouse.root}/{SEMANTIC_FILE}"


def load_semantic_layer(source):
    """The semantic layer the pipeline wrote into a warehouse (or HoloPaths' warehouse, or a folder), or the
    CRM defaults when there is none or it cannot be read."""
    from holocrm_core.metrics import SemanticLayer, SemanticLayerError

    try:
        data = _warehouse_of(source).read_document(SEMANTIC_DOC)
        if data is not None:
            return SemanticLayer.from_spec(data["layer"], str(data.get("source") or SEMANTIC_FILE))
    except (SemanticLayerError, ValueError, KeyError, TypeError, OSError):
        pass
    return SemanticLayer.default()


def load_vocabulary(source, tables: dict[str, pl.DataFrame] | None = None) -> Vocabulary | None:
    """The nlq_vocabulary artifact of a warehouse (or HoloPaths' warehouse, a folder, or the file itself), or
    None when it is missing, unreadable, of another format, or stale: a staged table was committed after it
    (its stamp differs from the one recorded; an artifact without stamps, on a folder: a staged file newer
    than it), or built from tables whose row counts differ from `tables`."""
    import json
    from pathlib import Path

    try:
        if isinstance(source, (str, Path)) and Path(source).suffix == ".json":
            path = Path(source)
            warehouse = _warehouse_of(path.parent)
            data = json.loads(path.read_text()) if path.is_file() else None
        else:
            warehouse = _warehouse_of(source)
            data = warehouse.read_document(VOCABULARY_DOC)
    except (ValueError, OSError):
        return None
    if data is None:
        return None
    recorded = data.get(BUILT_FROM)
    if recorded is not None:
        if _staged_stamps(warehouse) != recorded:
            return None
    elif isinstance(warehouse.root, Path):  # an artifact written before stamps: file times
        built = (warehouse.root / VOCABULARY_FILE).stat().st_mtime
        if any(staged.stat().st_mtime > built for staged in warehouse.root.glob("staged_*")):
            return None
    try:
        vocab = Vocabulary.from_artifact(data)
    except (ValueError, KeyError, TypeError):
        return None
    if tables is not None:
        counts = {e: f.height for e, f in tables.items() if isinstance(f, pl.DataFrame)}
        if any(vocab.row_counts.get(e, n) != n for e, n in counts.items()):
            return None
    return vocab


def _prepare(entity: str, frame: pl.DataFrame | None) -> pl.DataFrame:
    schema = ENTITIES[entity]
    if frame is None:
        frame = pl.DataFrame(schema=schema)
    missing = [
        pl.lit(None, dtype=dtype).alias(name) for name, dtype in schema.items() if name not in frame.columns
    ]
    if missing:
        frame = frame.with_columns(missing)
    derived = []
    if entity == "deals":
        derived.append(pl.col("value").cast(pl.Float64).alias("_value"))
        derived.append(pl.coalesce(pl.col("stage_changed_at"), pl.col("created_at")).alias("_stage_since"))
    if entity == "companies":
        derived.append(pl.col("annual_revenue").cast(pl.Float64).alias("_annual_revenue"))
    if entity == "contacts" and frame.get_column("full_name").null_count() == frame.height and frame.height:
        derived.append(pl.concat_str(["first_name", "last_name"], separator=" ").alias("full_name"))
    return frame.with_columns(derived) if derived else frame


def _fill_activity_companies(acts: pl.DataFrame, contacts: pl.DataFrame) -> pl.DataFrame:
    """Activities logged against a contact count for the contact's company too."""
    if acts.height == 0 or acts.get_column("company_id").null_count() == 0:
        return acts
    link = contacts.select("contact_id", pl.col("company_id").alias("_contact_company")).unique("contact_id")
    # only the company column is new: the other columns stay the activities' own (a join of the whole table
    # copied every column: 850 MB of a 1M-contact server's 5M activities)
    filled = (
        acts.select("contact_id", "company_id")
        .join(link, on="contact_id", how="left", maintain_order="left")
        .select(pl.coalesce("company_id", "_contact_company").alias("company_id"))
    )
    return acts.with_columns(filled.get_column("company_id"))


def _as_datetime(as_of: datetime | date | str | None) -> datetime:
    """The as-of date in UTC; QuestionError when it is not a date or lies outside the supported span."""
    if as_of is None:
        return datetime.now(UTC)
    if isinstance(as_of, str):
        try:
            as_of = datetime.fromisoformat(as_of.strip())
        except ValueError as exc:
            raise QuestionError(f"as_of {as_of!r} is not a date (use YYYY-MM-DD)", "as_of") from exc
    if isinstance(as_of, datetime):
        moment = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    elif isinstance(as_of, date):
        moment = datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC)
    else:
        raise QuestionError(f"as_of must be a date, not {type(as_of).__name__}", "as_of")
    if not EARLIEST_AS_OF <= moment <= LATEST_AS_OF:
        raise QuestionError(
            f"as_of {moment.date().isoformat()} is outside {EARLIEST_AS_OF.date().isoformat()} .. "
            f"{LATEST_AS_OF.date().isoformat()}",
            "as_of",
        )
    return moment


def _check_question(question: object) -> str:
    if not isinstance(question, str):
        raise QuestionError("the question must be text")
    if not question.strip():
        raise QuestionError("the question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionError(f"the question is longer than {MAX_QUESTION_CHARS} characters")
    return question


def ask(
    question: str,
    tables: dict[str, pl.DataFrame] | NLQContext,
    as_of: datetime | date | str | None = None,
    similarity=None,
    partial: bool = False,
    readings: bool = True,
    prefer: dict | None = None,
) -> Answer:
    """Answer a plain-English question over the CRM with the plan that was understood.

    A question with words that were not understood gets no rows (the plan, what was and was not understood,
    and suggestions instead); `partial=True` runs the understood part anyway. Raises QuestionError (a
    ValueError) for input the caller must correct: an empty or over-long question, an as-of date that is not
    a date or lies outside the supported span. An answer that is not high-confidence carries `readings`
    (when `readings`): what the question may mean, each with its plan and result, for the asker to pick.
    """
    question = _check_question(question)
    ctx = tables if isinstance(tables, NLQContext) else NLQContext.from_tables(tables, similarity=similarity)
    similarity = similarity if similarity is not None else ctx.similarity
    moment = _as_datetime(as_of)
    parsed = ctx.parser.parse(question, moment, prefer=prefer)
    first_suggestions: list[str] = []
    if not parsed.understood and not partial and parsed.unknown_words:
        first_suggestions = list(parsed.suggestions)
        nearest = _nearest_terms(parsed, ctx, moment, prefer)
        if nearest is not None:  # the replaced question is offered as a reading too (it runs as written)
            parsed, first_suggestions = nearest, [nearest.text, *first_suggestions]
    hints = list(parsed.notes)
    confidence = parsed.confidence
    data_end = ctx.vocab.data_end
    if data_end is not None and moment - data_end > timedelta(days=STALE_AFTER_DAYS):
        hints.append(
            f"The data ends on {data_end.date().isoformat()}, {(moment - data_end).days} days before the as-of date "
            f"{moment.date().isoformat()}; relative times such as 'last quarter' count back from the as-of date. "
            f"Ask with --as-of {data_end.date().isoformat()} (API: as_of) to count from the data's latest date."
        )
        if parsed.relative_time:
            confidence *= 0.5
    if parsed.understood or partial:
        try:
            result = ctx.executor.run(parsed.plan, similarity)
        except PlanError as exc:
            result = ExecutionResult(pl.DataFrame(), [], None, [f"plan cannot run: {exc}"])
            confidence = min(confidence, 0.3)
    else:
        result = ExecutionResult(pl.DataFrame(), [], None)
    if result.missing:
        confidence *= 0.6
    if parsed.understood and _empty(result) and parsed.guessed:
        # nothing matched a plan built on a guess (a typo fixed, a synonym, a fuzzy name): the guess may be the
        # reason, so the empty answer is not stated with high confidence
        confidence = min(confidence, HIGH_CONFIDENCE - 0.05)
        hints.append(
            "No records match; part of the question was matched approximately: " + ", ".join(parsed.guessed)
        )
    hints.extend(result.notes)
    suggestions = list(parsed.suggestions)
    if not parsed.understood:
        understood = "; ".join(t.meaning for t in parsed.trace if t.how != "default") or "nothing"
        hints.insert(
            0,
            f"Not understood: {', '.join(repr(w) for w in parsed.unknown_words)}. Understood: {understood}. "
            + (
                "The rows below ignore the words not understood."
                if partial
                else "No rows are returned for a "
                "question that was only partly understood: rephrase it (see the suggestions)."
            ),
        )
    plan = Plan(**{**parsed.plan.__dict__, "confidence": round(confidence, 3)})
    answer = Answer(
        question=question,
        plan=plan,
        rows=result.rows,
        id_series=result.ids,
        value=result.value,
        trace=parsed.trace,
        confidence=round(confidence, 3),
        understood=parsed.understood,
        unknown_words=parsed.unknown_words,
        suggestions=suggestions,
        hints=hints,
        missing=result.missing,
        as_of=moment,
    )
    if readings and not answer.high_confidence:
        answer.readings = _readings(parsed, ctx, moment, similarity, first_suggestions)
        if answer.readings:
            hints.insert(
                0, f"This question can be read {len(answer.readings)} ways: pick one (see the readings)."
            )
    return answer


MAX_READINGS = 4


def _nearest_terms(parsed, ctx: NLQContext, moment: datetime, prefer):
    """The question with every unknown word replaced by the nearest semantic-layer term (by spelling, or by
    meaning when the context has an embedder), parsed again; None unless that parse is understood in full."""
    from holocrm_core.nlq.meaning import GUESS_CONFIDENCE, replace_words, unknown_phrases
    from holocrm_core.nlq.parser import TraceEntry

    found = unknown_phrases(parsed.text, parsed.unknown_words, ctx.term_matcher)
    if not found:
        return None
    again = ctx.parser.parse(
        replace_words(parsed.text, {w: v[0] for w, v in found.items()}), moment, prefer=prefer
    )
    if not again.understood:
        return None
    notes = [f"{w} -> {term} [{how} {score}]" for w, (term, how, score) in found.items()]
    again.trace[:0] = [
        TraceEntry(w, f"read as {term!r} (nearest term of the semantic layer by {how}, {score})", how)
        for w, (term, how, score) in found.items()
    ]
    again.guessed = [*notes, *again.guessed]
    again.confidence = min(again.confidence * GUESS_CONFIDENCE, HIGH_CONFIDENCE - 0.05)
    again.notes.insert(0, "Words not known, read as the nearest terms: " + "; ".join(notes))
    return again


def _readings(parsed, ctx: NLQContext, moment: datetime, similarity, extra: list[str] = ()) -> list[Answer]:
    """What an unclear question may mean, each run: a word with several equally good readings (an owner's
    first name shared by two reps) gives one reading per candidate; a question with words not understood gives
    the close phrasings that are understood in full. Only readings that are understood and high-confidence
    themselves are offered."""
    tries: list[tuple[str, dict]] = []
    for words, senses in parsed.ambiguous[:1]:
        tries += [(parsed.text, {words: sense}) for sense in senses]
    if not parsed.understood:
        tries += [(text, {}) for text in parsed.suggestions]
    tries += [(text, {}) for text in extra]
    out: list[Answer] = []
    seen: set[str] = set()
    for text, prefer in tries:
        key = text + repr(prefer)
        if key in seen or len(out) >= MAX_READINGS:
            continue
        seen.add(key)
        reading = ask(text, ctx, as_of=moment, similarity=similarity, readings=False, prefer=prefer)
        for words, (kind, value) in prefer.items():
            label = ctx.vocab.company_names.get(value) or ctx.vocab.contact_names.get(value) or value
            reading.question = (
                f"{text} [{words}: {label}]" if kind == "meaning" else f"{text} [{words} = {kind} {label}]"
            )
        if reading.understood and reading.confidence >= HIGH_CONFIDENCE * 0.9:
            out.append(reading)
    return out


def _empty(result: ExecutionResult) -> bool:
    if result.value is not None:
        return result.value in (0, {}) or (isinstance(result.value, dict) and not result.value)
    return len(result.ids) == 0
