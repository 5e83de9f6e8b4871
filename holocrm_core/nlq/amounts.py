"""Amounts and numbers: money filters, company measures, numeric columns by their header words."""

from __future__ import annotations

import re

from holocrm_core.nlq.money import Quantity
from holocrm_core.nlq.plan import FieldFilter, GroupFilter
from holocrm_core.nlq.state import TraceEntry, _money_measure, _num, _State


class AmountsPasses:
    """Mixed into Parser: the passes this module's docstring names."""

    def _quantities(self, st: _State, quantities: list[Quantity]) -> None:
        text = st.text
        for q in quantities:
            st.claims.take(q.start_char, q.end_char)
            value = _num(q.amount)
            high = _num(q.high) if q.high is not None else None
            op = q.op if q.op != "between" or high is not None else "gte"
            val = [value, high] if op == "between" else value
            if not q.explicit_op:
                st.confidence *= 0.75
                st.notes.append(f"'{q.phrase}' has no comparison word: read as 'at least {q.phrase}'")
            if q.noun:
                noun = q.noun
                if noun in ("employees", "employee", "staff", "people", "headcount", "workers"):
                    st.filters.append(FieldFilter("companies", "employees", op, val))
                    st.trace.append(TraceEntry(q.phrase, f"companies.employees {op} {val}"))
                    st.target_hint = st.target_hint or "companies"
                    continue
                noun = re.sub(r"\b(?:opportunit(?:y|ies)|opps?)\b", "deals", noun)
                verb = re.search(r"\b(won|win|closed won|lost|lose)\s*$", text[: q.start_char])
                if verb and noun.startswith(("deal", "opp")):
                    noun = "won deals" if verb.group(1) in ("won", "win", "closed won") else "lost deals"
                    st.claims.take(verb.start(1), verb.end(1))
                measure = {
                    "open deals": "open_deal_count", "won deals": "won_deal_count", "lost deals": "lost_deal_count",
                    "contacts": "contact_count", "contact": "contact_count", "leads": "contact_count",
                }.get(noun)  # fmt: skip
                if measure is None:
                    measure = "deal_count" if noun.startswith(("deal", "opp")) else "activity_count"
                st.group_filters.append(GroupFilter(measure, op, val))
                st.trace.append(TraceEntry(q.phrase, f"company {measure} {op} {val}"))
                st.target_hint = st.target_hint or "companies"
                continue
            numeric = self._numeric_column(text, q)
            if numeric is not None:
                (entity, col, top), span = numeric
                scale = 100 if q.percent and top <= 1.0 else 1
                val = [v / scale for v in val] if isinstance(val, list) else val / scale
                st.claims.take(*span)
                st.filters.append(FieldFilter(entity, col, op, val))
                st.trace.append(
                    TraceEntry(
                        text[min(span[0], q.start_char) : max(span[1], q.end_char)],
                        f"{entity}.{col} {op} {val}",
                    )
                )
                st.target_hint = st.target_hint or entity
                continue
            measure, span = _money_measure(text, q)
            if span:
                st.claims.take(*span)
            words = text[
                min(q.start_char, span[0]) if span else q.start_char : max(q.end_char, span[1])
                if span
                else q.end_char
            ]
            if measure == "annual_revenue":
                st.filters.append(FieldFilter("companies", "annual_revenue", op, val, q.currency))
                st.trace.append(
                    TraceEntry(words, f"companies.annual_revenue {op} {val} {q.currency or ''}".strip())
                )
            elif measure:
                st.group_filters.append(GroupFilter(measure, op, val, q.currency))
                st.trace.append(TraceEntry(words, f"company {measure} {op} {val} {q.currency or ''}".strip()))
            else:
                st.filters.append(FieldFilter("deals", "value", op, val, q.currency))
                st.trace.append(TraceEntry(words, f"deals.value {op} {val} {q.currency or ''}".strip()))
                st.target_hint = st.target_hint or "deals"

    def _numeric_column(self, text: str, q: Quantity):
        """A numeric column named right before or after an amount ("probability over 50%", "discount pct")."""
        cols = dict(self.vocab.numeric_columns)
        if not cols:
            return None
        # a custom field by the first words of its header alone ("discount" -> cf_discount_pct) when unique
        prefixes: dict[tuple[str, ...], list] = {}
        for key, col in self.vocab.numeric_columns.items():
            for n in range(1, len(key)):
                if key[0] not in ("value", "id") and len(key[0]) > 3:
                    prefixes.setdefault(key[:n], []).append(col)
        for key, found in prefixes.items():
            if len(found) == 1 and key not in cols:
                cols[key] = found[0]
        before = text[: q.start_char].split()
        after = text[q.end_char :].split()
        for n in (3, 2, 1):
            for lead in range(0, 3):  # allow "of", "is", "above" between the name and the amount
                words = (
                    before[len(before) - n - lead : len(before) - lead] if len(before) >= n + lead else None
                )
                if (
                    words
                    and tuple(w for w in words) in cols
                    and all(
                        w in ("of", "is", "at", "a", "an", "that", "was")
                        for w in before[len(before) - lead :]
                    )
                ):
                    start = text.rfind(" ".join(words), 0, q.start_char)
                    return cols[tuple(words)], (start, q.start_char)
            words = after[:n]
            if len(words) == n and tuple(words) in cols:
                end = text.find(" ".join(words), q.end_char) + len(" ".join(words))
                return cols[tuple(words)], (q.end_char, end)
        return None
