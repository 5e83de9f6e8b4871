"""The semantic-layer pass: business words read from holocrm_core.metrics, not from grammar rules.

Runs first among the parser's passes. It finds a metric the question asks for ("win rate", "pipeline",
"revenue", "sales cycle"), the dimensions it is broken down by ("by region", "per stage", "by expected close
quarter", a custom field's header words such as "by regional office"), and "which owner has the most ...",
and records them on the parse state; "in the pipe(line)" is read as a condition (open deals), not a metric.
A metric word used as a filter or an ordering of records ("companies with pipeline over $100k", "top 10
accounts by open pipeline") is left to the grammar. Entity words with a condition ("leads" = contacts in the
lead status) are applied when the plan is assembled (`entity_conditions`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from holocrm_core.metrics import Metric, SemanticLayer
from holocrm_core.nlq.plan import FieldFilter, GroupKey
from holocrm_core.nlq.vocabulary import tokens

# A money amount in the question: a metric word next to it is a filter ("pipeline over $100k").
_MONEY = re.compile(r"[$€£]\s*\d|\b\d[\d,.]*\s*(?:k|m|bn|usd|eur|gbp|dollars?|euros?|pounds?)\b")
_FILLER_BEFORE = r"(?:(?:how\s+(?:big|large|much|healthy)\s+(?:is|are|was)|what\s+is|what\s+s|whats|how\s+long\s+is|how\s+long\s+does|how\s+long|total|overall|combined|current|our|the|my|average|avg|mean|typical|total\s+open|show|me|give|tell)\s+)*"
_GROUP_LEAD = r"(?:broken\s+down\s+by|grouped\s+by|group\s+by|split\s+by|for\s+each|for\s+every|in\s+each|by|per|across)"
# Words that only announce a breakdown ("break down open pipeline by ..."): claimed when a group is found.
BREAKDOWN_WORDS = re.compile(r"\b(?:break(?:ing)?\s+down|breakdown|split(?:\s+up)?|show)\b")
_TOP_WORDS = r"(?:the\s+)?(?:most|highest|largest|biggest|best|top|greatest|strongest)"
_BOTTOM_WORDS = r"(?:the\s+)?(?:least|lowest|smallest|worst|weakest)"


@dataclass
class MetricAsk:
    """What the semantic pass found: the metric, its groups, and a ranking ("which owner has the most")."""

    metric: Metric
    words: str
    groups: list[GroupKey]
    limit: int | None = None
    ascending: bool = False


def dimension_terms(layer: SemanticLayer, vocab) -> dict[str, GroupKey]:
    """Words that name a dimension -> its group key: the layer's dimensions, then custom fields by their
    header words ("regional office" -> deals.cf_regional_office)."""
    out: dict[str, GroupKey] = {}
    for dim in layer.dimensions.values():
        for w in dim.words:
            out.setdefault(w, GroupKey(dim.entity, dim.field, dim.grain))
    singles: dict[str, list[GroupKey]] = {}
    for entity, column in vocab.categories:
        if not column.startswith("cf_"):
            continue
        parts = [t for t in tokens(column) if t not in ("cf", "meta")]
        words = " ".join(parts)
        if words and words not in out:
            out[words] = GroupKey(entity, column, None)
        for part in parts:
            if len(part) >= 4 and part not in ("name", "type", "date", "code", "flag"):
                singles.setdefault(part, []).append(GroupKey(entity, column, None))
    # "by source" -> lead source, when one custom field has that word and the word names nothing else
    # ("account" of account_tier is the accounts themselves)
    taken = {w for term in layer.terms() for w in term.split()} | {
        w + "s" for term in layer.terms() for w in term.split()
    }
    for word, keys in singles.items():
        if len(keys) == 1 and word not in out and word not in taken and word + "s" not in taken:
            out[word] = keys[0]
    for grain in ("quarter", "month", "year"):  # on the metric's own date (resolved by the parser)
        out.setdefault(grain, GroupKey("*", TIME_OF_METRIC, grain))
    return out


# The date a metric is dated by ("revenue by quarter" = by close quarter; open pipeline: expected close).
TIME_OF_METRIC = "@time"


def metric_date(metric: Metric) -> str:
    if metric.time_field:
        return metric.time_field
    if metric.entity == "deals" and str(metric.where.get("stage")) == "open":
        return "expected_close_at"
    return "created_at"


def _alternation(words) -> str:
    return "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in sorted(words, key=len, reverse=True))


def find_metric(
    text: str, layer: SemanticLayer, vocab, free, ranks_groups: bool = False
) -> tuple[MetricAsk, tuple[int, int]] | None:
    """The metric a question asks for, or None. `free(start, end)` says whether characters are unclaimed;
    `ranks_groups`: the question ranks a dimension ("top 5 reps by revenue"), so "by <metric>" is the metric."""
    terms = {w: name for name, m in layer.metrics.items() for w in m.words}
    if not terms:
        return None
    for m in re.finditer(rf"\b(?:{_alternation(terms)})\b", text):
        if not free(m.start(), m.end()):
            continue
        metric = layer.metrics[terms[re.sub(r"\s+", " ", m.group())]]
        before = text[: m.start()]
        after = text[m.end() :]
        if (
            metric.aggregate in ("sum", "count", "derived")
            and not ranks_groups
            and re.search(r"\b(?:by|ranked by|sorted by|order by)\s+(?:the\s+)?(?:open\s+)?$", before)
        ):
            return None  # an ordering of records: "top 10 accounts by open pipeline"
        if metric.aggregate == "sum" and _MONEY.search(text):
            return None  # a filter: "accounts with more than $100k in pipeline"
        if metric.aggregate == "derived" and not re.search(r"\b(?:average|avg|mean|typical)\s+$", before):
            return None  # per-record figures are conditions ("in stage over 30 days"); "average ..." is asked
        if re.match(r"\s*(?:deals?|opportunit(?:y|ies)|opps?)\b", after) and metric.name == "open_pipeline":
            return None  # "pipeline deals": a kind of deal
        filler = re.search(rf"{_FILLER_BEFORE}$", before)
        start = filler.start() if filler and filler.group().strip() else m.start()
        return MetricAsk(metric, text[start : m.end()].strip(), [], None), (start, m.end())
    return None


def find_groups(text: str, dims: dict[str, GroupKey], free) -> list[tuple[GroupKey, tuple[int, int], str]]:
    """ "by region", "per stage and currency", "by expected close quarter": the dimensions asked for."""
    out = []
    alt = _alternation(dims)
    for m in re.finditer(rf"\b{_GROUP_LEAD}\s+(?:the\s+|their\s+|each\s+)?(?P<d>{alt})s?\b", text):
        if free(m.start(), m.end()):
            out.append((dims[re.sub(r"\s+", " ", m["d"])], (m.start(), m.end()), m.group()))
    return out


def find_ranking(
    text: str, dims: dict[str, GroupKey], free
) -> tuple[GroupKey, tuple[int, int], int, bool, str] | None:
    """ "which owner has the biggest ...", "top 3 agents by ...": (group, span, limit, ascending, words)."""
    alt = _alternation(dims)
    plural = {w + "s": k for w, k in dims.items()}
    m = re.search(
        rf"\b(?:which|what|whose)\s+(?P<d>{alt})s?\b(?P<mid>.*?)\b(?P<how>{_TOP_WORDS}|{_BOTTOM_WORDS})\b",
        text,
    )
    if m and free(m.start("d"), m.end("d")):
        return (
            dims[re.sub(r"\s+", " ", m["d"])],
            (m.start(), m.end("d")),
            1,
            bool(re.search(_BOTTOM_WORDS, m["how"])),
            m.group(),
        )
    m = re.search(rf"\b(?:top|best|bottom)\s+(?P<n>\d+)\s+(?P<d>{_alternation(plural)})\b", text)
    if m and free(m.start(), m.end()):
        return (
            plural[re.sub(r"\s+", " ", m["d"])],
            (m.start(), m.end()),
            int(m["n"]),
            m.group().startswith("bottom"),
            m.group(),
        )
    m = re.search(r"\bwho\s+(?:has|had|brought|closed|won|made|sold|owns)\b", text)
    if m and free(m.start(), m.end()) and re.search(rf"\b(?:{_TOP_WORDS}|{_BOTTOM_WORDS})\b", text):
        return (
            dims.get("owner", GroupKey("*", "owner", None)),
            (m.start(), m.start() + 3),
            1,
            bool(re.search(_BOTTOM_WORDS, text)),
            "who",
        )
    return None


# The two readings of an entity word next to a field named by it ("leads from events": lead source).
ANY_STATUS = ("meaning", "of any status")
WORD_STATUS = ("meaning", "with the word's own condition")


def entity_conditions(
    nouns, layer: SemanticLayer, vocab, filters: list[FieldFilter], prefer=None, ambiguous=None
) -> list[tuple[str, FieldFilter]]:
    """Conditions an entity word carries ("leads" -> contacts.lifecycle_status = lead), unless the question
    already conditions that column ("disqualified leads") or the data has no such value. Next to a field the
    word names ("web leads", "leads from events" = lead source) it may mean either: read as any status, with
    both readings recorded in `ambiguous` (the asker picks one through `prefer`)."""
    words = {w: e for e in layer.entities.values() for w in e.words}
    out: list[tuple[str, FieldFilter]] = []
    prefer = prefer or {}
    for _, entity, word in nouns:
        spec = words.get(word.lower())
        if spec is None or not spec.where or spec.entity != entity:
            continue
        stem = tokens(word)[0].rstrip("s") if tokens(word) else ""
        if any(f.entity == entity and stem and stem in tokens(f.field) for f in filters):
            choice = prefer.get(word)
            if choice is None and ambiguous is not None:
                ambiguous.append((word, [ANY_STATUS, WORD_STATUS]))
            if tuple(choice or ()) != WORD_STATUS:
                continue
        for column, value in spec.where.items():
            if any(f.entity == entity and f.field == column for f in filters + [f for _, f in out]):
                continue
            known = vocab.categories.get((entity, column), [])
            values = value if isinstance(value, list) else [value]
            present = [v for v in known if v.lower() in {str(x).lower() for x in values}]
            if not present:
                continue
            f = FieldFilter(
                entity,
                column,
                "eq" if len(present) == 1 else "in",
                present[0] if len(present) == 1 else present,
            )
            out.append((word, f))
    return out


_ABSENT = re.compile(
    r"\b(?:with\s+(?:no|zero|not\s+a\s+single|not\s+any)|having\s+no|without(?:\s+any|\s+a\s+single)?|"
    r"that\s+have\s+no|who\s+have\s+no)\s+(?P<w>[a-z]+)\b"
)


def absent_entity_words(st, layer: SemanticLayer, vocab, trace_entry) -> None:
    """ "companies with no leads": no linked record in that word's condition (a negated linked filter: the
    company has no contact in the lead status). Plain words without a condition are the grammar's."""
    words = {w: e for e in layer.entities.values() for w in e.words}
    target = st.noun_target_guess()
    for m in _ABSENT.finditer(st.text):
        spec = words.get(m["w"])
        if spec is None or not spec.where or spec.entity == target or not st.claims.free(m.start(), m.end()):
            continue
        for column, value in spec.where.items():
            known = vocab.categories.get((spec.entity, column), [])
            present = [v for v in known if v.lower() == str(value).lower()]
            if not present:
                break
            st.filters.append(FieldFilter(spec.entity, column, "ne", present[0]))
            st.claims.take(m.start(), m.end())
            st.trace.append(trace_entry(m.group(), f"no linked {spec.entity} with {column} = {present[0]}"))


_DEAL_SIZE_WORD = re.compile(
    r"\b(?P<a>big|bigger|large|larger|huge|major|small|smaller|tiny)\s+(?:open\s+|won\s+|lost\s+|active\s+)?"
    r"(?:deals?|opportunit(?:y|ies)|opps?)\b"
)
_HOW_MUCH_WON = re.compile(
    r"\b(?P<h>how\s+much(?:\s+revenue|\s+business|\s+money)?\s+(?:did|have|has|had|do|does))\s+"
    r"(?:[a-z]+\s+){1,3}?(?P<v>won|win|closed|close|booked|book|brought\s+in|bring\s+in|sold|sell)\b"
)


def deal_words(st, layer: SemanticLayer, trace_entry) -> None:
    """Deal sizes and wins said in a rep's words:
    - "big open deals over $100k": the amount says how big; "big" is no company size here;
    - "how much did Darcel win in 2017", "how much have we won from software companies": the won-value metric
      (the layer's sum of deal value over won deals), the subject left to the other passes."""
    if _MONEY.search(st.text):
        for m in _DEAL_SIZE_WORD.finditer(st.text):
            if st.claims.free(m.start("a"), m.end("a")):
                st.claims.take(m.start("a"), m.end("a"))
                st.trace.append(trace_entry(m["a"], "deal size (the amount says how big)"))
    if st.metric_ask is not None:
        return
    m = _HOW_MUCH_WON.search(st.text)
    won = next(
        (
            x
            for x in layer.metrics.values()
            if x.aggregate == "sum" and x.field == "value" and x.where.get("stage") == "won"
        ),
        None,
    )
    if m is None or won is None or not st.claims.free(m.start("h"), m.end("h")):
        return
    st.claims.take(m.start("h"), m.end("h"))
    st.claims.take(m.start("v"), m.end("v"))
    st.metric_ask = MetricAsk(won, m.group(), [], None)
    st.target_hint = won.entity
    st.trace.append(
        trace_entry(f"{m['h']} ... {m['v']}", f"metric {won.label}: {won.description}", "semantic")
    )
