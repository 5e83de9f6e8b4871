"""Ordering, top-k, counts and groupings: the passes over 'by', 'per', 'top 5', 'how many'."""

from __future__ import annotations

import re

from holocrm_core.nlq import semantics
from holocrm_core.nlq.lexicon import _GROUP_FIELDS, _GROUP_NOUNS, _LEADING_COUNT, _SORT_KEYS, MAX_LIMIT
from holocrm_core.nlq.plan import Sort
from holocrm_core.nlq.state import TraceEntry, _State


class GroupingPasses:
    """Mixed into Parser: the passes this module's docstring names."""

    def _sorting(self, st: _State) -> None:
        text = st.text
        for m in re.finditer(r"\b(?:sort(?:ed)?|order(?:ed)?|rank(?:ed)?)\s+by\s+", text):
            st.claims.take(m.start(), m.end())
            st.explicit_by_at = m.end()
        m = re.search(
            r"\b(?P<w1>top|best|first|leading|largest|biggest|highest|smallest|lowest|oldest|newest|latest|most recent|earliest)\s+(?P<n>\d+)\b"
            r"|\b(?P<n2>\d+)\s+(?P<w2>largest|biggest|highest[- ]value|highest|most valuable|top|best|smallest|lowest|cheapest|oldest|newest|latest|most recent|earliest|most)\b"
            r"|\bthe\s+(?P<n3>\d+)(?=\s+[a-z])(?!\s+(?:days?|weeks?|months?|years?|employees|deals|contacts|largest|biggest|"
            r"highest|most|top|best|smallest|lowest|cheapest|oldest|newest|latest|earliest)\b)",
            text,
        )
        if m:
            word = m["w1"] or m["w2"] or "top"
            st.limit = min(int(m["n"] or m["n2"] or m["n3"]), MAX_LIMIT)
            st.sort_word = word
            st.claims.take(m.start(), m.end())
            st.trace.append(TraceEntry(m.group(), f"first {st.limit}, {word}"))
        else:
            m = re.search(
                r"\b(?:the\s+)?(?P<w>largest|biggest|highest[- ]value|most valuable|smallest|cheapest|oldest|newest|latest|most recent|earliest)\b(?!\s+\d)",
                text,
            )
            lead = _LEADING_COUNT.match(text)
            if m is None and lead and st.claims.free(lead.start("n"), lead.end("n")):
                st.limit = int(lead["n"])
                st.claims.take(lead.start(), lead.end("n"))
                st.trace.append(TraceEntry(lead.group().strip(), f"first {st.limit}"))
            if m:
                st.sort_word = m["w"]
                after = text[m.end() :].split()
                plural = bool(after) and after[0].endswith("s")
                st.limit = None if plural else 1
                st.claims.take(m.start(), m.end())
                st.trace.append(TraceEntry(m.group(), f"{m['w']}" + ("" if plural else ", first 1")))
        # "by <measure>" when it names an ordering (not a grouping dimension)
        for m in re.finditer(
            r"\b(?:by|on|in terms of|(?:with|having)\s+the\s+(?:most|highest|largest|biggest))\s+(?:their\s+|the\s+|total\s+|highest\s+|most\s+)?",
            text,
        ):
            rest = text[m.end() :]
            for pattern, (is_measure, key) in _SORT_KEYS:
                km = re.match(rf"(?:{pattern})\b", rest)
                if km and (st.sort_word or st.explicit_by_at == m.end() or st.limit):
                    st.sort_key = (is_measure, key)
                    st.claims.take(m.start(), m.end() + km.end())
                    st.trace.append(TraceEntry(text[m.start() : m.end() + km.end()], f"order by {key}"))
                    break
            if st.sort_key:
                break
        if st.sort_key is None and st.explicit_by_at is not None:
            rest = text[st.explicit_by_at :]
            for pattern, (is_measure, key) in _SORT_KEYS:
                km = re.match(rf"(?:{pattern})\b", rest)
                if km:
                    st.sort_key = (is_measure, key)
                    st.claims.take(st.explicit_by_at, st.explicit_by_at + km.end())
                    st.trace.append(TraceEntry(km.group(), f"order by {key}"))
                    break
        dm = re.search(
            r"\b(asc|ascending|desc|descending|highest first|lowest first|smallest first|largest first)\b",
            text,
        )
        if dm and (st.sort_key or st.sort_word):
            st.sort_desc = dm.group(1) not in ("asc", "ascending", "lowest first", "smallest first")
            st.claims.take(dm.start(), dm.end())

    def _aggregates(self, st: _State) -> None:
        text = st.text
        patterns = [
            (
                r"\bhow many\b|\b(?:the\s+)?(?:total\s+)?number of\b|\bcount(?:\s+of|\s+the|\s+all)?\b|\bhow much of\b",
                ("count", None),
            ),
            (
                r"\b(?:what\s+is\s+|what\s+s\s+)?(?:the\s+)?(?:average|avg|mean|typical)\s+(?:deal\s+)?(?:value|size|amount)?(?:\s+of)?\b",
                ("avg", "value"),
            ),
            (
                r"\b(?:what\s+is\s+|what\s+s\s+)?(?:the\s+)?(?:total|sum|combined)\s+(?:deal\s+)?(?:value|amount|revenue|worth|size)(?:\s+of)?\b|\bsum of\b|\bhow much\b",
                ("sum", "value"),
            ),
            (r"\b(?:the\s+)?(?:total|combined)\s+(?:open\s+)?pipeline\b", ("sum", "pipeline")),
        ]
        for pattern, (func, fld) in patterns:
            m = re.search(pattern, text)
            if m and st.claims.free(m.start(), m.end()):
                st.aggregate = func
                st.aggregate_field = "value" if fld else None
                if fld == "pipeline":
                    st.implied_open = True
                    st.target_hint = st.target_hint or "deals"
                st.claims.take(m.start(), m.end())
                st.trace.append(TraceEntry(m.group().strip(), f"{func}" + (f" of {fld}" if fld else "")))
                if func != "count":
                    st.target_hint = st.target_hint or "deals"
                break
        gm = re.search(
            r"\b(?:by|per|for each|for every|each|broken down by|grouped by|group by|split by|across)\s+(?P<g>"
            + "|".join(sorted((re.escape(k) for k in _GROUP_FIELDS), key=len, reverse=True))
            + r")s?\b",
            text,
        )
        if gm and self._role_filler(st, gm, gm["g"]):
            gm = None
        if gm and st.claims.free(gm.start(), gm.end()):
            st.group = _GROUP_FIELDS[gm["g"]]
            st.claims.take(gm.start(), gm.end())
            st.trace.append(TraceEntry(gm.group(), f"group by {gm['g']}"))
            if st.aggregate is None:
                st.aggregate = "count"
        elif gm is None:
            # a dimension the semantic layer or the export's own custom fields name ("per regional office")
            found = [g for g in semantics.find_groups(text, self.dims, st.claims.free) if g[0].grain is None]
            if found:
                key, (a, b), words = found[0]
                st.group = (key.entity, key.field)
                st.claims.take(a, b)
                st.trace.append(TraceEntry(words, f"group by {key.words()}", "semantic"))
                if st.aggregate is None:
                    st.aggregate = "count"
        # "which owner won the most deals", "top 3 products by won value": a grouping noun
        nm = re.search(
            r"\b(?:which|what|whose)\s+(?P<g1>owner|rep|sales rep|agent|sales agent|salesperson|product|industry|sector|region|stage)\b"
            r"|\b(?P<g2>"
            + "|".join(sorted((re.escape(k) for k in _GROUP_NOUNS), key=len, reverse=True))
            + r")\b"
            r"|^(?P<who>who)\b",
            text,
        )
        most = re.search(r"\b(?:the\s+)?(?:most|highest|largest|biggest|best)\b", text)
        if nm and nm["g2"] and not (most or st.limit) and self._role_filler(st, nm, nm["g2"]):
            nm = None
        if (
            nm
            and st.group is None
            and st.claims.free(nm.start(), nm.end())
            and (most or st.limit or nm["g2"])
        ):
            word = nm["g1"] or nm["g2"] or "owner"
            key = _GROUP_NOUNS.get(word, word)
            st.group = _GROUP_FIELDS.get(key, ("*", "owner"))
            st.group_ranked = True
            st.claims.take(nm.start(), nm.end())
            st.trace.append(TraceEntry(nm.group(), f"group by {st.group[1]}"))
            if most and st.claims.free(most.start(), most.end()):
                st.claims.take(most.start(), most.end())
                rest = st.text[most.end() :].lstrip()
                offset = len(st.text) - len(rest)
                for pattern, (is_measure, key) in _SORT_KEYS:
                    km = re.match(rf"(?:{pattern})\b", rest)
                    if km and is_measure and st.sort_key is None:
                        st.sort_key = (True, key)
                        st.claims.take(offset, offset + km.end())
                        st.trace.append(TraceEntry(km.group(), f"rank by {key}"))
                        break
                if st.limit is None:
                    st.limit = 1
            if st.aggregate is None:
                st.aggregate = "count"
            st.target_hint = st.target_hint or "deals"

    def _role_filler(self, st: _State, m: re.Match, word: str) -> bool:
        """ "deals won by agents in the West office": "by <role>" followed by a condition on those people is a
        filter's filler, not a group-by (a count or total still groups: "number of deals by rep")."""
        role = _GROUP_NOUNS.get(word, word).rstrip("s")
        if role not in ("owner", "rep", "agent", "sales rep", "sales agent", "salesperson", "seller"):
            return False
        if st.aggregate is not None or not re.search(
            r"\bby\s+(?:the\s+|our\s+)?$",
            st.text[: m.start() + 3] if m.group().startswith("by") else st.text[: m.start()],
        ):
            return False
        if not re.match(r"\s+(?:in|at|from|of|on|based|who|with|that|named|working)\b", st.text[m.end() :]):
            return False
        st.claims.take(m.start(), m.end())
        st.trace.append(TraceEntry(m.group(), "the deals' owners (a filter on them follows, not a grouping)"))
        return True

    def _sort(self, st: _State, target: str) -> Sort:
        word = (st.sort_word or "").replace("-", " ")
        desc = word not in ("smallest", "lowest", "cheapest", "oldest", "earliest")
        if st.sort_desc is not None:
            desc = st.sort_desc
        if st.sort_key:
            is_measure, key = st.sort_key
            if key == "_recency":
                key = {"activities": "occurred_at"}.get(target, "created_at")
            if not is_measure and key == "value" and target == "companies":
                is_measure, key = True, "deal_value"
            if not is_measure and key in ("employees", "annual_revenue") and target != "companies":
                pass
            return Sort(key, desc, is_measure)
        time_col = {"activities": "occurred_at"}.get(target, "created_at")
        if word in ("oldest", "newest", "latest", "most recent", "earliest"):
            return Sort(time_col, desc, False)
        if target == "deals":
            return Sort("value", desc, False)
        if target == "companies":
            if word in ("largest", "biggest", "smallest"):
                return Sort("employees", desc, False)
            st.confidence *= 0.85
            st.trace.append(TraceEntry(word, "order by open pipeline (no order named)", "default"))
            return Sort("open_pipeline", desc, True)
        if target == "contacts" and self.has_scores.get("contacts"):
            return Sort("score", desc, False)
        st.confidence *= 0.8
        st.trace.append(TraceEntry(word, f"order by {time_col} (no order named)", "default"))
        return Sort(time_col, desc, False)
