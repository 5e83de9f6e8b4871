"""Named records and their relations: subsidiaries, look-alikes, empty fields, free-text clauses."""

from __future__ import annotations

import re

from holocrm_core.nlq.lexicon import (
    _FREE_TEXT_CLAUSE,
    _NAME_STOP,
    ENTITY_COLUMNS,
    NULL_FIELD_WORDS,
    STOPWORDS,
)
from holocrm_core.nlq.plan import FieldFilter, SimilarTo, TextMatch
from holocrm_core.nlq.state import TraceEntry, _State
from holocrm_core.nlq.vocabulary import Sense, tokens


class RecordsPasses:
    """Mixed into Parser: the passes this module's docstring names."""

    def _relations(self, st: _State) -> None:
        """ "subsidiaries of Acme" / "parent company of Codehow": the company hierarchy from the schema's
        foreign key (parent_company_id) or a custom field named like one (subsidiary_of)."""
        m = re.search(
            r"\b(?P<rel>subsidiar(?:y|ies)|child compan(?:y|ies)|daughter compan(?:y|ies)|compan(?:y|ies) owned by|"
            r"parent(?: compan(?:y|ies)| account| organi[sz]ation)?)\s+(?:of|owned by|under|for)\s+",
            st.text,
        )
        if m is None or not st.claims.free(m.start(), m.end()):
            return
        found = self._name_at(st, m.end(), kinds=("company",))
        relation = self.vocab.parent_relation
        if found is None or relation is None:
            return
        sense, end, how = found
        parent = m["rel"].startswith("parent")
        column, by_name = relation
        if parent:
            parent_id = self.vocab.company_parents.get(sense.value)
            if parent_id is None:
                return
            filt = FieldFilter("companies", "company_id", "eq", parent_id)
            meaning = f"the parent company of {sense.label}"
        elif by_name:
            spelled = self.vocab.value_spelled("companies", column, sense.label)
            if spelled is None:
                return
            filt = FieldFilter("companies", column, "eq", spelled)
            meaning = f"companies.{column} = {spelled}"
        else:
            filt = FieldFilter("companies", column, "eq", sense.value)
            meaning = f"companies whose {column} is {sense.label} ({sense.value})"
        st.claims.take(m.start(), end)
        st.filters.append(filt)
        st.target_hint = st.target_hint or "companies"
        st.trace.append(TraceEntry(st.text[m.start() : end], meaning, how))
        if how == "fuzzy":
            st.confidence *= 0.85

    def _name_at(self, st: _State, pos: int, kinds=("contact", "company")):
        """(sense, end, how) of the record name starting at `pos`: exact or synonym first, then fuzzy."""
        words = []
        for w in re.finditer(r"[^\s]+", st.text[pos:]):
            if w.group() in _NAME_STOP or not st.claims.free(pos + w.start(), pos + w.end()):
                break
            words.append((pos + w.start(), pos + w.end(), w.group()))
        for n in range(min(len(words), 6), 0, -1):
            senses = [
                s for s in self.vocab.lookup(tokens(" ".join(w for _, _, w in words[:n]))) if s.kind in kinds
            ]
            if senses:
                pref = [s for s in senses if s.entity == st.noun_target_guess()] or senses
                return pref[0], words[n - 1][1], "exact" if pref[0].how == "exact" else "synonym"
        entities = tuple(k + "s" if k == "contact" else "companies" for k in kinds)
        for n in range(min(len(words), 4), 0, -1):
            hit = self.vocab.fuzzy_name(" ".join(w for _, _, w in words[:n]), entities=entities)
            if hit:
                entity, rid, name, _ = hit
                kind = "contact" if entity == "contacts" else "company"
                return Sense(kind, entity, "", rid, name), words[n - 1][1], "fuzzy"
        return None

    def _nullness(self, st: _State) -> None:
        """ "deals with no account", "contacts without an email": a column of the target that is empty."""
        words = "|".join(sorted((re.escape(w) for w in NULL_FIELD_WORDS), key=len, reverse=True))
        pattern = (
            r"\b(?P<neg>with\s+no|without|missing|lacking|(?:has|have|having)\s+no|no)\s+(?P<art>(?:an?|any|the)\s+)?"
            rf"(?P<w>{words})\b(?P<tail>\s+(?:assigned|set|linked|attached|given|on file))?"
            r"(?!\s+(?:in|for|since|during|over|within|this|last|past|yet)\b)(?!\s+\d)"
        )
        target = st.noun_target_guess()
        for m in re.finditer(pattern, st.text):
            if not st.claims.free(m.start(), m.end()):
                continue
            word = m["w"]
            # "no contact" alone means no activity ("deals no contact 2 weeks"); "without a contact" is the field
            if word == "contact" and not (m["art"] or m["tail"]):
                continue
            column = NULL_FIELD_WORDS[word]
            entity = target if column in ENTITY_COLUMNS.get(target, ()) else None
            if entity is None:
                continue
            st.claims.take(m.start(), m.end())
            st.filters.append(FieldFilter(entity, column, "is_null"))
            st.trace.append(TraceEntry(m.group(), f"{entity}.{column} is empty"))

    def _similarity(self, st: _State) -> None:
        text = st.text
        m = re.search(
            r"\b(?:similar to|similar with|like|resembling|resemble|resembles|lookalikes?\s+(?:of|for|to)|look like|looks like|comparable to|same as|such as|in the mold of)\s+",
            text,
        )
        if not m or not st.claims.free(m.start(), m.end()):
            return
        rest = text[m.end() :]
        words = rest.split()
        stop = {
            "in",
            "at",
            "from",
            "with",
            "who",
            "that",
            "which",
            "over",
            "under",
            "but",
            "and",
            "whose",
            "where",
            "not",
        }
        span_words = []
        for w in words:
            if w in stop:
                break
            span_words.append(w)
        if not span_words:
            return
        best = None
        for n in range(min(len(span_words), 6), 0, -1):
            key = tokens(" ".join(span_words[:n]))
            senses = [s for s in self.vocab.lookup(key) if s.kind in ("contact", "company")]
            if senses:
                pref = [s for s in senses if s.entity == st.noun_target_guess()] or senses
                best = (pref[0], n, 1.0, "exact" if pref[0].how == "exact" else "synonym")
                break
        if best is None:
            for n in range(min(len(span_words), 4), 0, -1):
                phrase = " ".join(span_words[:n])
                hit = self.vocab.fuzzy_name(phrase)
                if hit:
                    entity, rid, name, score = hit
                    best = (
                        Sense(entity[:-1] if entity == "contacts" else "company", entity, "", rid, name),
                        n,
                        score / 100,
                        "fuzzy",
                    )
                    break
        if best is None:
            st.anchor_unresolved = " ".join(span_words[:3])
            st.claims.take(m.start(), m.end())
            return
        sense, n, score, how = best
        end = m.end() + len(" ".join(span_words[:n]))
        st.claims.take(m.start(), end)
        st.similar = SimilarTo(sense.entity, sense.value, sense.label)
        st.trace.append(
            TraceEntry(text[m.start() : end], f"similar to {sense.entity} {sense.label} ({sense.value})", how)
        )
        if how == "fuzzy":
            st.confidence *= max(0.7, score - 0.05)

    def _free_text(self, st: _State) -> None:
        text = st.text
        clause = _FREE_TEXT_CLAUSE.search(text)
        if clause and st.claims.free(clause.start(), clause.end()):
            phrase = " ".join(w for w in (clause["t"] or clause["t2"]).split() if w not in ("the", "a", "an"))
            st.claims.take(clause.start(), clause.end())
            st.text_match = TextMatch(phrase)
            st.trace.append(TraceEntry(clause.group(), f"activity text mentions {phrase!r}"))
            return
        m = re.search(
            r"\b(?:mention(?:ed|s|ing)?|talked about|talking about|talk about|talks about|discussed|discussing|discuss|complained about|complaining about|complain about|asked about|asking about|asks about|raised|raising|brought up|wrote about|writing about|said|saying|says|containing|contains|contain|referencing|referenced|about|regarding|concerning|related to|re)\s+(?:the\s+)?",
            text,
        )
        if not m or not st.claims.free(m.start(), m.end()):
            return
        start = m.end()
        end = start
        for w in re.finditer(r"[^\s]+", text[start:]):
            a, b = start + w.start(), start + w.end()
            if not st.claims.free(a, b):
                break
            end = b
        words = text[start:end].split()
        while words and words[-1] in STOPWORDS:
            words.pop()
        if not words:
            return
        phrase = " ".join(words)
        end = start + len(phrase)
        st.claims.take(m.start(), end)
        st.text_match = TextMatch(phrase)
        st.trace.append(TraceEntry(text[m.start() : end], f"activity text mentions {phrase!r}"))
