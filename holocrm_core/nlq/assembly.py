"""Plan assembly: the parse state every pass wrote -> one typed plan (the parser's last step but one).

Reads what the passes found (nouns, values, owners, stage words, time phrases, activity conditions, metric
asks, groupings) and decides the target, the filters each implies, which field each time phrase dates, the
aggregate or metric, the order and the limit. The confidence step (confidence.py) then settles how sure the
answer may be. A new phrase family writes to the state in its own pass module and, where it needs a new
kind of plan part, adds it here.
"""

from __future__ import annotations

import re

from holocrm_core.nlq import semantics
from holocrm_core.nlq.confidence import settle
from holocrm_core.nlq.lexicon import _ACTIVITY_TYPE_WORDS, _GROUP_MEASURES, AMBIGUOUS_CONFIDENCE
from holocrm_core.nlq.plan import (
    ActivityCondition,
    Aggregate,
    FieldFilter,
    MetricQuery,
    Plan,
    ScoreBand,
    TimeWindow,
)
from holocrm_core.nlq.state import TraceEntry, _span
from holocrm_core.nlq.timeparse import day_start, shift


def assemble(parser, st):
    """The plan of a parsed question (`parser`: the Parser, for its vocabulary, layer and helpers)."""

    vocab = parser.vocab
    target = st.target()
    if not st.nouns:
        why = "the words about it" if st.target_hint else "no entity named: default"
        st.trace.append(TraceEntry("", f"target {target} ({why})", "default"))
        if st.target_hint is None and st.similar is None:
            st.confidence *= 0.7  # a guessed target is never a high-confidence answer
    filters = list(st.filters)
    windows: list[TimeWindow] = list(st.extra_windows)
    conditions = list(st.conditions)
    group_filters = list(st.group_filters)
    # activity nouns: the target's type, or a presence condition on another target
    for _, entity, word in st.nouns:
        kind = _ACTIVITY_TYPE_WORDS.get(word)
        if entity == "activities" and kind:
            types = tuple(
                v for v in vocab.categories.get(("activities", "type"), []) if v.lower() == kind
            ) or (kind,)
            if target == "activities":
                filters.append(FieldFilter("activities", "type", "in", list(types)))
            else:
                window = parser._adjacent_time(st, st.text.find(word) + len(word))
                start = end = None
                if window is not None:
                    start, end = window.past
                    st.used_times.add(id(window))
                conditions.append(ActivityCondition(True, types, start, end, word))
        if (
            entity == "contacts"
            and word.startswith(("customer", "client"))
            and any(
                v.lower() == "customer" for v in vocab.categories.get(("contacts", "lifecycle_status"), [])
            )
        ):
            st.values.append(
                (
                    "contacts",
                    "lifecycle_status",
                    next(
                        v
                        for v in vocab.categories[("contacts", "lifecycle_status")]
                        if v.lower() == "customer"
                    ),
                    False,
                )
            )
    # field values: several values of one field are alternatives (in), different fields all apply
    grouped: dict[tuple[str, str, bool], list[str]] = {}
    for entity, fld, value, negate in st.values:
        if (
            entity == "deals"
            and fld == "stage"
            and value in vocab.won_stages + vocab.lost_stages
            and not negate
        ):
            st.stage_words.append((0, "won" if value in vocab.won_stages else "lost"))
            continue
        grouped.setdefault((entity, fld, negate), [])
        if value not in grouped[(entity, fld, negate)]:
            grouped[(entity, fld, negate)].append(value)
    for (entity, fld, negate), values in grouped.items():
        op = ("ne" if negate else "eq") if len(values) == 1 else ("not_in" if negate else "in")
        filters.append(FieldFilter(entity, fld, op, values[0] if len(values) == 1 else values))
    # owners apply to the target's own owner column when it has one, else to deals
    owner_values = [o for o, neg in st.owners if not neg]
    for owner, neg in st.owners:
        if neg:
            filters.append(FieldFilter(parser._owner_entity(target, owner), "owner", "ne", owner))
    if owner_values:
        entity = parser._owner_entity(target, owner_values[0])
        filters.append(
            FieldFilter(
                entity,
                "owner",
                "eq" if len(owner_values) == 1 else "in",
                owner_values[0] if len(owner_values) == 1 else owner_values,
            )
        )
    # stage words
    words = {w for _, w in st.stage_words}
    stage_values: list[str] = []
    if "won" in words:
        stage_values += vocab.won_stages or ["won"]
    if "lost" in words:
        stage_values += vocab.lost_stages or ["lost"]
    if "closed" in words and not ({"won", "lost"} & words):
        stage_values += (vocab.won_stages or ["won"]) + (vocab.lost_stages or ["lost"])
    if (
        target == "deals"
        and not words
        and not st.negated_stages
        and not any(f.entity == "deals" and f.field == "stage" for f in filters)
        and any(not c.exists and (c.start is not None or c.end is not None) for c in conditions)
    ):
        # "deals with no contact in 2 weeks": only a deal still open can be waiting for a touch
        st.implied_open = True
        st.trace.append(TraceEntry("", "open deals only (no recent touch is asked of open deals)", "default"))
    if ("open" in words or "closing" in words or st.implied_open or st.stuck_days) and not stage_values:
        stage_values += vocab.open_stages
    if stage_values:
        filters.append(FieldFilter("deals", "stage", "in", sorted(set(stage_values))))
    before = len(st.ambiguous)
    for word, f in semantics.entity_conditions(
        st.nouns, parser.layer, vocab, filters, st.prefer, st.ambiguous
    ):
        filters.append(f)
        st.trace.append(TraceEntry(word, f"{f.words()} (semantic layer: {word})", "semantic"))
    for word, _ in st.ambiguous[before:]:
        st.confidence *= AMBIGUOUS_CONFIDENCE
        st.trace.append(TraceEntry(word, f"any {word} (could also mean only the {word} status)", "default"))
    if st.negated_stages:
        excluded: list[str] = []
        for word in st.negated_stages:
            excluded += {
                "won": vocab.won_stages or ["won"], "lost": vocab.lost_stages or ["lost"], "open": vocab.open_stages,
                "closed": (vocab.won_stages or ["won"]) + (vocab.lost_stages or ["lost"]),
            }[word]  # fmt: skip
        filters.append(FieldFilter("deals", "stage", "not_in", sorted(set(excluded))))
    if st.stuck_days:
        cutoff = shift(day_start(st.as_of), "day", 1 - st.stuck_days)
        windows.append(
            TimeWindow("deals", "stage_changed_at", None, cutoff, f"stuck over {st.stuck_days} days")
        )
    # time phrases not taken by an activity condition go to the field the verb points at
    for t in st.times:
        if id(t) in st.used_times:
            continue
        entity, fld, ahead = parser._time_field(st, t, target, words)
        start, end = t.span_for(ahead)
        windows.append(TimeWindow(entity, fld, start, end, t.phrase))
        st.trace.append(TraceEntry(t.phrase, f"{entity}.{fld} {_span(start, end)}"))
        st.relative_time |= t.relative
    for c in conditions:
        if c.start is not None or c.end is not None:
            st.relative_time |= True
    score_bands = []
    if st.score_band:
        entity = "deals" if target == "deals" else "contacts"
        score_bands.append(ScoreBand(entity, st.score_band))
    if st.group and st.sort_key and st.sort_key[0]:
        # "top 5 products by won value": rank the groups by that measure, computed over their deals
        measure = st.sort_key[1]
        func, stage_kind = _GROUP_MEASURES.get(measure, (None, None))
        if func is None:
            st.confidence *= 0.5
            st.notes.append(f"groups cannot be ranked by {measure}: ranked by number of rows")
        else:
            st.aggregate, st.aggregate_field = func, ("value" if func == "sum" else None)
            target = "deals" if st.group[0] in ("deals", "companies", "*") else target
            extra = {
                "won": vocab.won_stages or ["won"],
                "lost": vocab.lost_stages or ["lost"],
                "open": vocab.open_stages,
            }.get(stage_kind)
            if extra and not any(f.entity == "deals" and f.field == "stage" for f in filters):
                filters.append(FieldFilter("deals", "stage", "in", sorted(extra)))
        st.sort_key = None
        if not st.sort_word:
            st.sort_word = None
    metric_query = None
    if st.metric_ask is not None:
        ask = st.metric_ask
        target = ask.metric.entity
        st.aggregate = None
        st.sort_key = st.sort_word = None
        st.limit = ask.limit if ask.limit is not None else st.limit
        if ask.metric.time_field:
            windows = [
                TimeWindow(target, ask.metric.time_field, w.start, w.end, w.phrase)
                if w.field in ("created_at", "closed_at", "updated_at")
                or (w.field == "expected_close_at" and ask.metric.time_field == "closed_at")
                and not re.search(r"\b(?:created|added|opened|entered|new)\b", st.text)
                else w
                for w in windows
            ]
        groups = tuple(
            semantics.GroupKey(
                target if g.entity == "*" else g.entity,
                semantics.metric_date(ask.metric) if g.field == semantics.TIME_OF_METRIC else g.field,
                g.grain,
            )
            for g in ask.groups
        )
        metric_query = MetricQuery(
            ask.metric.name, ask.metric.label, groups, ask.ascending, ask.metric.description
        )
    aggregate = None
    if st.aggregate:
        gent, gfld = st.group if st.group else (None, None)
        if gent == "*":
            gent = target if gfld != "owner" or target != "companies" else "deals"
            if gfld == "owner" and target not in ("deals", "contacts", "activities"):
                gent = "deals"
        aggregate = Aggregate(st.aggregate, st.aggregate_field, gent, gfld)
    sort = None
    limit = st.limit
    if (st.sort_key or st.sort_word) and not (aggregate and aggregate.group_field):
        sort = parser._sort(st, target)
    if st.group_ranked and limit is None and not st.sort_word:
        limit = None
    plan = Plan(
        target=target,
        filters=tuple(filters),
        windows=tuple(windows),
        activity_conditions=tuple(conditions),
        group_filters=tuple(group_filters),
        score_bands=tuple(score_bands),
        aggregate=aggregate,
        sort=sort,
        limit=limit,
        similar_to=st.similar,
        text=st.text_match,
        as_of=st.as_of,
        confidence=1.0,
        metric=metric_query,
    )
    return settle(parser, st, plan, filters)
