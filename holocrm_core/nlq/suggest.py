"""Close phrasings of a question that is not understood, offered as suggestions and readings."""

from __future__ import annotations

import re

from holocrm_core.nlq.lexicon import _NEGATION_WORDS, FIELD_WORDS
from holocrm_core.nlq.state import _State


class SuggestPasses:
    """Mixed into Parser: the passes this module's docstring names."""

    def _suggest(self, st: _State, unknown: list[str]) -> list[str]:
        """Close phrasings of the question that the parser does understand, most similar first.

        Each unknown word is replaced by vocabulary phrases spelled like it, or dropped with the filler around
        it; a candidate is offered only when it parses with every word understood."""
        from rapidfuzz import fuzz

        candidates: list[str] = []
        text = st.text
        for word in unknown:
            at = re.search(rf"(?<![a-z0-9]){re.escape(word)}(?![a-z0-9])", text)
            if at is None:
                continue
            for phrase in self.vocab.close_phrases(word) + self._close_terms(word):
                candidates.append(text[: at.start()] + phrase + text[at.end() :])
            if word in _NEGATION_WORDS:
                continue  # a reading without the question's "not" would mean the opposite
            filler = r"(?:\b(?:in|at|from|of|for|with|the|a|an|by|named|called)\s+)*"
            after = r"(?:\s+(?:" + "|".join(sorted(FIELD_WORDS)) + r")\b)?"
            dropped = re.sub(filler + rf"(?<![a-z0-9]){re.escape(word)}(?![a-z0-9])" + after, " ", text)
            candidates.append(re.sub(r"\s+", " ", dropped).strip())
        if len(unknown) > 1 and not set(unknown) & _NEGATION_WORDS:  # every unknown word dropped at once
            rest = text
            for word in unknown:
                rest = re.sub(rf"(?<![a-z0-9]){re.escape(word)}(?![a-z0-9])", " ", rest)
            candidates.append(re.sub(r"\s+", " ", rest).strip())
        ranked = sorted(
            dict.fromkeys(c for c in candidates if c and c != text), key=lambda c: -fuzz.ratio(c, text)
        )
        out: list[str] = []
        self._suggesting = False  # a candidate's own parse offers no suggestions of its own
        try:
            for cand in ranked[:6]:
                if self.parse(cand, st.as_of).understood:
                    out.append(cand)
                if len(out) == 3:
                    break
        finally:
            self._suggesting = True
        return out

    def _close_terms(self, word: str, limit: int = 2) -> list[str]:
        """Semantic-layer words spelled like an unknown word ("revenu" -> revenue, "convertion" -> conversion)."""
        from rapidfuzz import fuzz, process

        if len(word) < 4:
            return []
        hits = process.extract(
            word, list(self.layer.terms()), scorer=fuzz.ratio, limit=limit, score_cutoff=75
        )
        return [h[0] for h in hits]
