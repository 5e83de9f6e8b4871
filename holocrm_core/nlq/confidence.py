"""The confidence step: how sure an assembled plan may be stated, and what the asker is told.

Words no pass claimed are reported as not understood (with rephrasings that parse in full); filters that
exclude each other and an "or" that joins different fields lower the confidence; so do guesses made earlier
(typos fixed, fuzzy or embedded matches, ambiguous words), recorded on the state by the passes.
"""

from __future__ import annotations

import re

from holocrm_core.nlq.lexicon import CONTRADICTION_CONFIDENCE, FIELD_WORDS, STOPWORDS
from holocrm_core.nlq.plan import Plan
from holocrm_core.nlq.state import ParseResult, TraceEntry, _contradictions


def settle(parser, st, plan, filters):
    """The ParseResult of `plan`: understood or not, unknown words, suggestions, final confidence."""
    for a, b in _contradictions(filters):
        st.confidence = min(st.confidence, CONTRADICTION_CONFIDENCE)
        st.notes.append(f"'{a.words()}' and '{b.words()}' exclude each other: no record can match both")
    unknown = [
        w
        for _, _, w in st.claims.words()
        if w not in STOPWORDS and w not in FIELD_WORDS and not re.fullmatch(r"[-,.'&/+]+", w)
    ]
    if st.anchor_unresolved:
        unknown.append(st.anchor_unresolved)
    suggestions = parser._suggest(st, unknown) if unknown and parser._suggesting else []
    # "or" is only understood between alternatives of one field ("fintech or retail")
    for m in re.finditer(r"\bor\b", st.text):
        if not st.claims.free(m.start(), m.end()):
            continue  # part of a phrase ("$5k or more")
        left = [f for a, b, f in st.value_spans if b <= m.start() and not st.text[b : m.start()].strip(" ,")]
        right = [f for a, b, f in st.value_spans if a >= m.end() and not st.text[m.end() : a].strip()]
        if not (left and right and left[0] == right[0]):
            confidence_note = (
                f"'or' at '{st.text[max(0, m.start() - 15) : m.end() + 15]}' joins conditions: read as 'and'"
            )
            st.notes.append(confidence_note)
            st.confidence *= 0.5
            st.trace.append(
                TraceEntry("or", "read as 'and' (only alternatives of one field can be or-ed)", "default")
            )
    understood = not unknown
    confidence = st.confidence
    if unknown:
        confidence = min(confidence, 0.5) * (0.8 ** (len(unknown) - 1))
    plan = Plan(**{**plan.__dict__, "confidence": round(confidence, 3)})
    guessed = [t.words for t in st.trace if t.how in ("typo", "fuzzy", "embedding")]
    return ParseResult(
        plan,
        st.trace,
        unknown,
        suggestions[:6],
        understood,
        confidence,
        st.notes,
        st.relative_time,
        guessed,
        st.text,
        st.ambiguous,
    )
