"""Stage and score words, entity nouns, field values, names and owners from the vocabulary."""

from __future__ import annotations

import re

from holocrm_core.nlq.lexicon import (
    _NEGATION_BEFORE,
    AMBIGUOUS_CONFIDENCE,
    ENTITY_NOUNS,
    FIELD_WORDS,
    STOPWORDS,
)
from holocrm_core.nlq.plan import FieldFilter
from holocrm_core.nlq.state import TraceEntry, _State
from holocrm_core.nlq.vocabulary import Sense, tokens


class ValuesPasses:
    """Mixed into Parser: the passes this module's docstring names."""

    def _stage_and_score_words(self, st: _State) -> None:
        text = st.text
        for m in re.finditer(
            r"\b(?P<b>hot|warm|cold|hottest|top[- ]scored|high[- ]scoring|low[- ]scoring)\b", text
        ):
            if not st.claims.free(m.start(), m.end()):
                continue
            band = {"hottest": "hot", "top-scored": "hot", "top scored": "hot", "high-scoring": "hot", "high scoring": "hot", "low-scoring": "cold", "low scoring": "cold"}.get(m["b"], m["b"])  # fmt: skip
            st.claims.take(m.start(), m.end())
            st.score_band = band
            st.trace.append(TraceEntry(m.group(), f"score band {band}"))
        # "what did Chloe close last month": a rep's past "close" is a win (only the verb is claimed)
        for m in re.finditer(r"\b(?:did|has|have|had)\s+(?:\w+\s+){0,3}?(?P<c>close)\b(?!\s+dates?\b)", text):
            if st.claims.free(m.start("c"), m.end("c")):
                st.claims.take(m.start("c"), m.end("c"))
                st.stage_words.append((m.start("c"), "won"))
                st.trace.append(TraceEntry(m.group(), "stage won (a past 'close' is a win)"))
        rules = [
            (
                r"\b(?:closing|close|closes|expected to close|due to close|set to close|slated to close|scheduled to close)\b",
                "closing",
            ),
            (r"\b(?:closed[- ]won|won|win|wins|winning)\b", "won"),
            (r"\b(?:closed[- ]lost|lost|lose|losing|losses)\b", "lost"),
            (r"\b(?:open|active|in progress|ongoing|live|in flight)\b", "open"),
            (r"\bclosed\b", "closed"),
        ]
        for pattern, word in rules:
            for m in re.finditer(pattern, text):
                if not st.claims.free(m.start(), m.end()):
                    continue
                neg = re.search(r"\b(?:not|never|non)\s+(?:yet\s+|been\s+)?$", text[: m.start()])
                if (
                    neg
                    and word in ("won", "lost", "open", "closed")
                    and st.claims.free(neg.start(), neg.end())
                ):
                    st.claims.take(neg.start(), m.end())
                    st.negated_stages.add(word)
                    st.trace.append(TraceEntry(text[neg.start() : m.end()], f"stage not {word}"))
                    continue
                st.claims.take(m.start(), m.end())
                st.stage_words.append((m.start(), word))
                st.trace.append(TraceEntry(m.group(), {"closing": "open deals, by expected close date", "won": "stage won (closed)", "lost": "stage lost (closed)", "open": "open stages", "closed": "stage won or lost"}[word]))  # fmt: skip

    def _entity_nouns(self, st: _State) -> None:
        text = st.text
        for pattern, entity in ENTITY_NOUNS:
            for m in re.finditer(rf"\b(?:{pattern})\b", text):
                if not st.claims.free(m.start(), m.end()):
                    continue
                st.claims.take(m.start(), m.end())
                st.nouns.append((m.start(), entity, m.group()))
        st.nouns.sort()

    def _values(self, st: _State) -> None:
        words = st.claims.words()
        target = st.target()
        i = 0
        while i < len(words):
            matched = False
            for n in range(min(6, len(words) - i), 0, -1):
                run = words[i : i + n]
                # a phrase must be contiguous in the text (no claimed words inside it)
                if any(run[k + 1][0] - run[k][1] > 1 for k in range(n - 1)):
                    continue
                key = tokens(" ".join(w for _, _, w in run))
                if not key or (n == 1 and run[0][2] in STOPWORDS):
                    continue
                senses = self.vocab.lookup(key)
                if not senses:
                    continue
                self._apply_senses(st, senses, run[0][0], run[-1][1], target, "exact")
                i += n
                matched = True
                break
            if not matched:
                i += 1
        # typos: fuzzy over the small value sets, then embeddings
        words = [w for w in st.claims.words() if w[2] not in STOPWORDS and w[2] not in FIELD_WORDS]
        i = 0
        while i < len(words):
            matched = False
            for n in range(min(3, len(words) - i), 0, -1):
                run = words[i : i + n]
                if any(run[k + 1][0] - run[k][1] > 1 for k in range(n - 1)):
                    continue
                phrase = " ".join(tokens(" ".join(w for _, _, w in run)))
                hit = self.vocab.fuzzy_value(phrase)
                how = "fuzzy"
                if hit is None:
                    hit = self.vocab.embedding_value(phrase)
                    how = "embedding"
                if hit is None or not hit[0]:
                    continue
                senses, score = hit
                self._apply_senses(st, senses, run[0][0], run[-1][1], target, how)
                st.confidence *= max(0.6, score - 0.05) if how == "fuzzy" else 0.7
                i += n
                matched = True
                break
            if not matched:
                i += 1

    def _apply_senses(
        self, st: _State, senses: list[Sense], start: int, end: int, target: str, how: str
    ) -> None:
        text = st.text
        neg = _NEGATION_BEFORE.search(text[:start])
        negate = neg is not None and st.claims.free(neg.start(), neg.end())
        order = {target: 0}
        # prefer the target's own fields, then its neighbours
        rank = lambda s: (  # noqa: E731
            0 if s.how == "exact" else 1,
            order.get(s.entity, 1 if s.kind == "value" else 2),
            {"value": 0, "owner": 1, "company": 2, "contact": 3}[s.kind],
        )
        best = sorted(senses, key=rank)[0]
        chosen = st.prefer.get(text[start:end])
        picked = [s for s in senses if (s.kind, s.value) == tuple(chosen or ())]
        if picked:
            best, senses = picked[0], picked
        words = text[start:end]
        if negate:
            st.claims.take(neg.start(), neg.end())
            words = text[neg.start() : end]
        st.claims.take(start, end)
        how = how if how != "exact" else best.how
        st.value_spans.append(
            (start, end, f"{best.entity}.{best.field}" if best.kind == "value" else best.kind)
        )
        if best.kind == "value":
            st.values.append((best.entity, best.field, best.value, negate))
            meaning = f"{best.entity}.{best.field} {'!=' if negate else '='} {best.value}"
        elif best.kind == "owner":
            st.owners.append((best.value, negate))
            meaning = f"owner {'!=' if negate else '='} {best.value}"
        elif best.kind == "company":
            st.filters.append(FieldFilter("companies", "company_id", "ne" if negate else "eq", best.value))
            meaning = f"company {best.label} ({best.value})"
        else:
            st.filters.append(FieldFilter("contacts", "contact_id", "ne" if negate else "eq", best.value))
            meaning = f"contact {best.label} ({best.value})"
        ambiguous = [
            s for s in senses if rank(s)[:2] == rank(best)[:2] and s is not best and s.value != best.value
        ]
        if ambiguous:
            st.ambiguous.append((text[start:end], [(s.kind, s.value) for s in [best, *ambiguous]]))
            st.confidence *= AMBIGUOUS_CONFIDENCE
            meaning += f" (also could mean {ambiguous[0].entity}.{ambiguous[0].field}={ambiguous[0].value})"
        st.trace.append(TraceEntry(words, meaning, how))

    def _field_words(self, st: _State) -> None:
        # a column's name is filler next to a condition on that column ("lead source web"); alone it is
        # a condition we did not understand ("deals with a discount") and stays unknown
        used = {fld for _, fld, _, _ in st.values} | {f.field for f in st.filters}
        used_words = {w for fld in used for w in tokens(fld)}
        for start, end, word in st.claims.words():
            if word in FIELD_WORDS or word in used_words:
                st.claims.take(start, end)

    def _owner_entity(self, target: str, owner: str) -> str:
        if target in ("deals", "contacts", "activities") and owner in self.vocab.categories.get(
            (target, "owner"), [owner]
        ):
            return target
        for entity in ("deals", "contacts", "activities"):
            if owner in self.vocab.categories.get((entity, "owner"), []):
                return entity
        return "deals"
