"""Words no rule or vocabulary entry knows, matched to the nearest term of the semantic layer.

By spelling always ("revenu" -> revenue, "convertion" -> conversion); by meaning when the context has an
embedder (the packaged sentence-transformers model the server already holds: "territory" -> region). A
question whose every unknown word finds a term is answered with the words replaced, the replacement shown
in the trace ("pipe -> open pipeline [meaning 0.69]") and the confidence lowered below high, never silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from holocrm_core.metrics import SemanticLayer

SPELLING_CUTOFF = 80.0  # rapidfuzz ratio
MEANING_CUTOFF = 0.6  # cosine of sentence embeddings
GUESS_CONFIDENCE = 0.7  # an answer built on a replaced word is never high-confidence
NEGATION_WORDS = frozenset(
    {"not", "no", "never", "without", "none", "nobody", "nothing", "neither", "nor", "non", "except"}
)


def lazy_embed(embedder=None) -> Callable[[list[str]], object]:
    """texts -> vectors for meaning-matching: ``embedder`` (anything with ``encode``, e.g. the server's
    query embedder) or the packaged model, loaded on the first unknown word only (a question whose words are
    all known never loads it)."""
    held = [embedder]

    def embed(texts: list[str]):
        if held[0] is None:
            from holocrm_core.embedding import load_embedder

            held[0] = load_embedder()
        return held[0].encode(list(texts))

    return embed


class TermMatcher:
    def __init__(self, layer: SemanticLayer, embed: Callable | None = None):
        self.terms = sorted(layer.terms())
        self.embed = embed
        self._matrix = None

    def nearest(self, word: str) -> tuple[str, str, float] | None:
        """(term, "spelling" | "meaning", score) for an unknown word, or None when nothing is close."""
        from rapidfuzz import fuzz, process

        if len(word) < 4 or not word.replace(" ", "").isalpha():
            return None
        hit = process.extractOne(word, self.terms, scorer=fuzz.ratio, score_cutoff=SPELLING_CUTOFF)
        if hit is not None:
            return hit[0], "spelling", round(hit[1] / 100, 2)
        if self.embed is None:
            return None
        import numpy as np

        if self._matrix is None:
            matrix = np.asarray(self.embed(self.terms), dtype=np.float32)
            self._matrix = matrix / (np.linalg.norm(matrix, axis=1, keepdims=True) + 1e-9)
        vec = np.asarray(self.embed([word]), dtype=np.float32)[0]
        sims = self._matrix @ (vec / (np.linalg.norm(vec) + 1e-9))
        best = int(sims.argmax())
        if sims[best] < MEANING_CUTOFF:
            return None
        return self.terms[best], "meaning", round(float(sims[best]), 2)


def replace_words(text: str, replacements: dict[str, str]) -> str:
    for word, term in replacements.items():
        text = re.sub(rf"(?<![a-z0-9]){re.escape(word)}(?![a-z0-9])", term, text)
    return text


def unknown_phrases(
    text: str, unknown: list[str], matcher: TermMatcher
) -> dict[str, tuple[str, str, float]] | None:
    """Each unknown word, alone or with the word before or after it ("win rat" -> win rate), mapped to the
    nearest term; None when some unknown word finds none."""
    words = text.split()
    out: dict[str, tuple[str, str, float]] = {}
    for word in dict.fromkeys(unknown):
        if word not in words or word in NEGATION_WORDS:
            return None  # a negation is never replaced by a term: the question would mean the opposite
        i = words.index(word)
        spans = [word]
        if i > 0:
            spans.append(f"{words[i - 1]} {word}")
        if i + 1 < len(words):
            spans.append(f"{word} {words[i + 1]}")
        if i + 1 < len(words) and words[i + 1] in unknown:
            spans.insert(0, f"{word} {words[i + 1]}")
        spans = [span for span in spans if not set(span.split()) & NEGATION_WORDS]
        hits = [(span, matcher.nearest(span)) for span in spans]
        hits = [(span, hit) for span, hit in hits if hit is not None]
        if not hits:
            if any(word in span.split() for span in out):
                continue  # covered by the phrase of the word before
            return None
        span, hit = max(hits, key=lambda sh: (sh[1][2], len(sh[0])))
        out[span] = hit
    return out
