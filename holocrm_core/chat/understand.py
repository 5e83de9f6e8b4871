"""Reading a turn that no catalogue pattern matches: by meaning, with its arguments spotted anywhere in it.

The pattern path (``catalogue.classify``) stays first where it is precise. What it does not match is read
here, in this order:

1. **follow-up**: a short turn after a question's result set with a filter, sort or time word ("which of
   those are in retail?", "largest first", "and the month before?") refines that question;
2. **clauses**: a turn of several clauses ("they pulled out, mark it as lost") is matched clause by clause
   against the patterns; the command clause wins, the other clauses are its text (a note, a reason);
3. **meaning**: the turn, record names masked as "Acme", is embedded with the packaged sentence model
   (``holocrm_core.nlq.meaning.lazy_embed``: offline, loaded once per process) and compared with the
   catalogue's exemplar phrasings (``catalogue.EXEMPLARS``); the nearest intent is taken when its score
   passes ``MEANING_MIN`` and leads the next intent by ``MEANING_MARGIN``; its arguments are spotted in the
   turn independent of word order (``slots``). Without the model (not installed) the same exemplars are
   compared by words (rapidfuzz), so the path never needs a download.

Record names are spotted anywhere in the turn (``spot``): record ids (Maven's opportunity ids), exact names
and names without their legal suffix by n-gram lookup, then the words no exemplar uses (the residual) by the
session's fuzzy finder. Nothing here writes: a write read by meaning is previewed like any other.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from holocrm_core.chat import catalogue
from holocrm_core.chat.data import ChatData, name_key

MEANING_MIN = 0.4  # cosine of the nearest exemplar (MiniLM, names left out of both) an intent needs
MEANING_MARGIN = 0.05  # ... and its lead over the best exemplar of any other intent
WRITE_MIN = 0.45  # a write read by meaning needs more (it is previewed and needs yes all the same)
SAME_RECORD = frozenset(("details", "summarize", "find"))  # read intents that show the same record
LEXICAL_MIN = 0.72  # the same without the model: rapidfuzz token_set_ratio / 100
RUNNER_UP_WITHIN = 0.1  # the second intent is read when the first lacks arguments and is this close
PRIOR_BONUS = (
    0.05  # what the previous turn makes likelier (an outcome after a next action, yes after a preview)
)
CUE_BONUS = 0.1  # added to an intent's meaning score when one of its cue words is in the turn
MAX_NGRAM = 9  # the longest name spotted, in words
PLACEHOLDER = "Acme"  # what a spotted name is masked as (the exemplars' record name)
_STOP = frozenset(
    (
        "a", "an", "the", "of", "for", "to", "on", "in", "at", "with", "about", "from", "by", "and", "or",
        "but", "is", "are", "was", "were", "be", "been", "do", "does", "did", "have", "has", "had", "i",
        "we", "you", "me", "my", "our", "your", "us", "it", "its", "they", "them", "their", "he", "she",
        "him", "her", "his", "this", "that", "these", "those", "there", "what", "which", "who", "whom",
        "whose", "how", "when", "where", "why", "any", "some", "all", "please", "can", "could", "would",
        "will", "should", "just", "so", "now", "then", "also", "too", "very", "really", "quite", "one",
        "ones", "up", "out", "over", "again", "ok", "okay", "hey", "hi", "thanks",
    )
)  # fmt: skip
_PRONOUN_KIND = re.compile(
    r"\b(?:the|that|this|its|their|his|her|our)\s+(contact|person|company|account|deal|opportunity|opp)\b",
    re.IGNORECASE,
)
_KIND_NEAR_PRONOUN = re.compile(
    r"\b(contact|person|company|account|deal|opportunity)\b.*\b(it|they|them|he|she|him|her|this|that)\b"
    r"|\b(it|they|them|he|she|him|her|this|that)\b.*\b(contact|person|company|account|deal|opportunity)\b",
    re.IGNORECASE,
)
_PLURAL_RECORDS = re.compile(
    r"\b(?:deals|opps|opportunities|contacts|people|companies|accounts|leads|customers)\b", re.IGNORECASE
)
_SINGULAR_KINDS = {
    "contact": "contact", "person": "contact", "company": "company", "account": "company", "deal": "deal",
    "opportunity": "deal", "opp": "deal", "buyer": "contact", "champion": "contact", "stakeholder": "contact",
    "employer": "company", "customer": "company", "client": "company", "organisation": "company",
    "organization": "company", "firm": "company",
}  # fmt: skip
_KIND_WORD = re.compile(rf"\b({'|'.join(_SINGULAR_KINDS)})\b", re.IGNORECASE)
_PLURAL_KINDS = re.compile(
    r"\b(?:deals|opps|opportunities|contacts|people|companies|accounts|activities|calls|emails|meetings|notes)\b",
    re.IGNORECASE,
)
# a turn that asks rather than tells (a write is never read from it)
_ASKS = re.compile(
    r"^\s*(?:what|whats|what's|which|who|who's|whose|how|when|where|why|any|list|show|count|"
    r"(?:did|do|does|is|are|was|were|can|could|have|has) (?:we|you|i|they|he|she|anyone|anybody|the|any|there|"
    r"our|my))\b",
    re.IGNORECASE,
)
_PRONOUN = re.compile(r"\b(it|them|they|him|her|he|she|this one|that one|this|that|there)\b", re.IGNORECASE)
_ORDINAL_REF = re.compile(
    r"\b(?:the\s+)?(first|second|third|fourth|fifth|last|top|bottom|1st|2nd|3rd|4th|5th)"
    r"(?:\s+(?:one|result|row|record|deal|contact|company|lead|item|entry|option))?\b",
    re.IGNORECASE,
)
_SUFFIXES = (
    "inc", "llc", "ltd", "corp", "co", "plc", "gmbh", "ag", "sa", "group", "holdings", "limited", "&", "and",
)  # fmt: skip


# ----------------------------------------------------------------------------------------- names
@dataclass
class Spot:
    """A record name (or id) found in a turn: its words' span, the text as written and how it matched."""

    start: int
    end: int
    text: str
    how: str  # "id", "name" or "short" (the name without its legal suffix)
    entries: list = field(default_factory=list)


def short_name(name: str) -> str:
    """A name without its trailing legal suffixes ("Acme Holdings Inc." -> "acme")."""
    words = name_key(name).lower().replace(",", " ").split()
    while len(words) > 1 and words[-1].strip(".") in _SUFFIXES:
        words = words[:-1]
    return " ".join(words)


def _clean(token: str) -> str:
    token = token.strip('"“”`')
    if token.lower().endswith(("'s", "’s")):
        token = token[:-2]
    return token


def spot(data: ChatData, text: str) -> list[Spot]:
    """Record ids and names in ``text`` (longest first, not overlapping), found by exact lookup of its word
    n-grams (as written, lower-cased, without a legal suffix): a name is one dict lookup per n-gram, so this
    costs the same at 100k contacts as at 100."""
    words = text.split()
    taken = [False] * len(words)
    found: list[Spot] = []
    for size in range(min(MAX_NGRAM, len(words)), 0, -1):
        for start in range(0, len(words) - size + 1):
            if any(taken[start : start + size]):
                continue
            raw = " ".join(_clean(w) for w in words[start : start + size])
            key = name_key(raw.strip(",;:()")).lower()
            if not key:
                continue
            plain_words = [w for w in re.findall(r"[a-z0-9]+", key)]
            if all(w in _STOP or w in catalogue_vocabulary() for w in plain_words):
                continue  # "open", "deal", "the": never a name alone
            hit = None
            if size == 1 and key in data.by_id:
                hit = Spot(start, start + size, key.strip(",;:()"), "id", data.by_id[key])
            elif key in data.by_name:
                hit = Spot(start, start + size, name_key(raw.strip(",;:()")), "name", data.by_name[key])
            elif key in data.by_short and size > 0:
                hit = Spot(start, start + size, name_key(raw.strip(",;:()")), "short", data.by_short[key])
            if hit is not None:
                found.append(hit)
                for i in range(start, start + size):
                    taken[i] = True
    return sorted(found, key=lambda s: s.start)


_VOCAB: set[str] = set()


def catalogue_vocabulary() -> set[str]:
    """Every word the exemplars use (but the placeholder): words that are the request, not a name."""
    if not _VOCAB:
        for phrases in catalogue.EXEMPLARS.values():
            for phrase in phrases:
                _VOCAB.update(re.findall(r"[a-z0-9]+", phrase.lower()))
        _VOCAB.discard(PLACEHOLDER.lower())
        _VOCAB.update(_STOP)
        _VOCAB.update(
            (
                "show", "find", "open", "tell", "know", "latest", "news", "summary", "summarize", "score",
                "scored", "rated", "why", "next", "move", "step", "action", "email", "mail", "note", "call",
                "meeting", "log", "close", "mark", "won", "lost", "win", "lose", "reopen", "deal", "deals",
                "contact", "contacts", "company", "companies", "account", "accounts", "record", "records",
                "lead", "leads", "opportunity", "opportunities", "opp", "opps", "person", "people", "details",
                "detail", "history", "timeline", "activity", "activities", "rundown", "overview", "recap",
                "brief", "tl", "dr", "tldr", "quick", "short", "version", "info", "information", "like",
                "similar", "look", "looks", "lookalike", "lookalikes", "phone", "number", "address", "title",
                "owner", "stage", "value", "worth", "draft", "write", "compose", "send", "followup", "follow",
                "prepare", "prep", "ready", "call", "tomorrow", "today", "yesterday", "more", "about",
                "thing", "stuff",
            )
        )  # fmt: skip
    return _VOCAB


def residual(text: str) -> str:
    """The words of the turn from the first to the last one that is neither a request word nor a stop word
    (what is left for a name: "what's the best move with Olga Jonson?" -> "Olga Jonson")."""
    words = text.split()
    vocab = catalogue_vocabulary()

    def is_request(word: str) -> bool:
        parts = re.findall(r"[a-z0-9]+", _clean(word).lower())
        return not parts or all(p in vocab for p in parts)

    keep = [i for i, w in enumerate(words) if not is_request(w)]
    if not keep:
        return ""
    return " ".join(_clean(w) for w in words[keep[0] : keep[-1] + 1]).strip(" ?.!,;:")


def masked(text: str, spots: list[Spot]) -> str:
    """The turn without the record names spotted in it (what is left is the request: "tl;dr on" for "tl;dr on
    Acme Bank"), compared with the exemplars without their placeholder name."""
    words = text.split()
    for s in sorted(spots, key=lambda s: -s.start):
        words[s.start : s.end] = []
    return " ".join(words)


def unnamed(phrase: str) -> str:
    """An exemplar without its placeholder record name ("tell me about Acme" -> "tell me about")."""
    return " ".join(re.sub(rf"\b{PLACEHOLDER}(?:'s)?\b", " ", phrase).split())


# ---------------------------------------------------------------------------------------- meaning
_DEFAULT_EMBED: list[Callable | None] = [None]
_MATRICES: dict[int, tuple[Any, list[str]]] = {}
_LOCK = threading.Lock()


def default_embed() -> Callable:
    """The packaged sentence model, loaded on first use, one per process (``nlq.meaning.lazy_embed``)."""
    with _LOCK:
        if _DEFAULT_EMBED[0] is None:
            from holocrm_core.nlq.meaning import lazy_embed

            _DEFAULT_EMBED[0] = lazy_embed()
        return _DEFAULT_EMBED[0]


def _exemplars() -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for intent, phrases in catalogue.EXEMPLARS.items():
        for phrase in phrases:
            if len(unnamed(phrase).strip(" ?.!")) >= 2:
                texts.append(unnamed(phrase))
                labels.append(intent)
    return texts, labels


def _matrix(embed: Callable):
    """The exemplars' unit vectors under ``embed`` (built once per embedder and process)."""
    import numpy as np

    with _LOCK:
        held = _MATRICES.get(id(embed))
        if held is None:
            texts, labels = _exemplars()
            matrix = np.asarray(embed(texts), dtype=np.float32)
            matrix /= np.linalg.norm(matrix, axis=1, keepdims=True) + 1e-9
            held = (matrix, labels)
            _MATRICES[id(embed)] = held
        return held


def rank(
    text: str, embed: Callable | None, prior: dict[str, float] | None = None
) -> list[tuple[str, float, str]]:
    """Intents by their nearest exemplar's similarity to ``text`` (plus ``CUE_BONUS`` for a cue word of the
    intent in the turn and the conversation's ``prior``), best first: (intent, score, exemplar)."""
    texts, labels = _exemplars()
    best: dict[str, tuple[float, str]] = {}
    scores = None
    if embed is not None:
        try:
            import numpy as np

            matrix, labels = _matrix(embed)
            vec = np.asarray(embed([text]), dtype=np.float32)[0]
            scores = (matrix @ (vec / (np.linalg.norm(vec) + 1e-9))).tolist()
        except (ImportError, OSError, RuntimeError, ValueError):
            scores = None
    if scores is None:
        from rapidfuzz import fuzz

        lowered = text.lower()
        scores = [fuzz.token_set_ratio(lowered, t.lower()) / 100 for t in texts]
    for score, label, phrase in zip(scores, labels, texts, strict=True):
        if label not in best or score > best[label][0]:
            best[label] = (float(score), phrase)
    lowered = f" {text.lower()} "
    for label, cues in catalogue.CUES.items():
        if label in best and any(_cue(cue).search(lowered) for cue in cues):
            best[label] = (best[label][0] + CUE_BONUS, best[label][1])
    evidence = {
        "record_outcome": result(text) is not None,
        "start_experiment": experiment_slots(text) is not None,
    }
    for label, seen in evidence.items():  # an argument only that intent takes, found in the turn
        if seen and label in best:
            best[label] = (best[label][0] + CUE_BONUS, best[label][1])
    for label, bonus in (prior or {}).items():
        if label in best:
            best[label] = (best[label][0] + bonus, best[label][1])
    return sorted(((k, v[0], v[1]) for k, v in best.items()), key=lambda r: -r[1])


_CUE_PATTERNS: dict[str, re.Pattern] = {}


def _cue(cue: str) -> re.Pattern:
    if cue not in _CUE_PATTERNS:
        edge = r"\b" if cue[:1].isalnum() else ""
        _CUE_PATTERNS[cue] = re.compile(
            edge + re.escape(cue.strip()) + (r"" if cue.endswith(("resembl", " ")) else edge)
        )
    return _CUE_PATTERNS[cue]


def decide(ranked: list[tuple[str, float, str]], lexical: bool) -> str | None:
    """The intent ranked first when it passes the threshold and leads the second by the margin (or when both
    show the same record: details, summary, find: either answer is the record, not a guess)."""
    if not ranked:
        return None
    top, score = ranked[0][0], ranked[0][1]
    runner = ranked[1] if len(ranked) > 1 else ("", 0.0, "")
    if score < (LEXICAL_MIN if lexical else MEANING_MIN):
        return None
    if score - runner[1] >= MEANING_MARGIN or {top, runner[0]} <= SAME_RECORD:
        return top
    return None


# ------------------------------------------------------------------------------------------ slots
_WON = re.compile(r"\b(won|win|wins|signed|closed[- ]won)\b", re.IGNORECASE)
_LOST = re.compile(
    r"\b(lost|lose|loss|closed[- ]lost|dead|walked away|pulled out|backed out|fell through)\b", re.IGNORECASE
)
_POSITIVE = re.compile(
    r"\b(worked|replied|responded|answered|said yes|agreed|accepted|booked|interested|success(?:ful)?|"
    r"landed|converted|signed|got back|called back|wrote back|picked up|paid off|went well|positive|"
    r"confirmed|scheduled|keen)\b",
    re.IGNORECASE,
)
_NEGATIVE = re.compile(
    r"\b(no (?:answer|reply|response|luck)|not (?:interested|answer\w*|repl\w*|respond\w*)|never (?:got back|"
    r"replied|answered|responded)|voicemail|ignored|bounced|declined|said no|failed|didn'?t work|did not work|"
    r"went nowhere|ghosted|unsubscribed|nobody picked up|no one picked up|rejected|no show|didn'?t (?:answer|"
    r"reply|respond|pick up))\b",
    re.IGNORECASE,
)
_ACTIONS = (
    ("proposal", r"\bproposals?\b|\bquote\b"),
    ("email", r"\be-?mail(?:ed|s)?\b|\bsent (?:it|the|them|her|him)\b"),
    ("call", r"\bcall(?:ed|s)?\b|\bphon(?:e|ed)\b|\bvoicemail\b|\brang\b|\bpicked up\b"),
)
_NOTE_KINDS = (
    ("call", r"\bcall(?:ed)?\b|\bphone\b|\bspoke\b|\bspoken\b|\btalked\b|\brang\b"),
    ("meeting", r"\bmeeting\b|\bmet\b|\bdemo\b(?= (?:today|yesterday))"),
    ("email", r"\be-?mail(?:ed)?\b"),
)
_WINDOW = re.compile(
    r"\b(?:in|for|within|over|during|since)?\s*(?:the\s+)?(?:last|past)?\s*"
    r"(\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|twelve|fourteen|thirty)?\s*"
    r"(days?|weeks?|wks?|fortnights?|months?|mths?|quarters?|years?|yrs?)\b",
    re.IGNORECASE,
)
_MONTHS = (
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
    "november", "december",
)  # fmt: skip
_UNIT_WORDS = {"wk": "week", "wks": "weeks", "mth": "month", "mths": "months", "yr": "year", "yrs": "years"}
_METRIC = re.compile(
    r"\b(win rate|response rate|conversion(?: rate)?|reply rate|revenue|deal value)\b", re.IGNORECASE
)


def outcome(text: str) -> str | None:
    won, lost = bool(_WON.search(text)), bool(_LOST.search(text))
    return "won" if won and not lost else "lost" if lost and not won else None


def result(text: str) -> str | None:
    """How an action turned out, as ``writes.reward_of`` reads it ("worked", "failed", "40%"), or None."""
    share = re.search(r"(?<![\w.])(\d{1,3} ?%|0?\.\d+)(?![\d.])", text)
    negative = _NEGATIVE.search(text)
    positive = _POSITIVE.search(re.sub(_NEGATIVE, " ", text))
    if share and not (negative or positive):
        return share.group(1)
    if negative and not positive:
        return "failed"
    if positive and not negative:
        return "worked"
    return None


def action_named(text: str) -> str | None:
    for action, pattern in _ACTIONS:
        if re.search(pattern, text, re.IGNORECASE):
            return action
    return None


def note_kind(text: str) -> str:
    for kind, pattern in _NOTE_KINDS:
        if re.search(pattern, text, re.IGNORECASE):
            return kind
    return "note"


def window(text: str) -> str | None:
    """A triage window said anywhere ("in 2 wks" -> "2 weeks"); None: none said."""
    for found in _WINDOW.finditer(text):
        count, unit = found.group(1), found.group(2).lower()
        unit = _UNIT_WORDS.get(unit, unit)
        if count or found.group(0).strip().lower().startswith(("last", "past", "the", "a ")):
            return f"{count or 'one'} {unit}"
    return None


def experiment_slots(text: str) -> dict[str, str] | None:
    """Variants, unit and metric of "let's test the bandit against cadence for contacts, reply rate as the
    metric" in any order: the first two strategy words named, a unit word, a metric phrase."""
    from holocrm_core.chat.experiment_intents import STRATEGY_WORDS

    lowered = text.lower()
    named = [w for w in re.findall(r"[a-z]+", lowered) if w in STRATEGY_WORDS and w != "policy"]
    if len(named) < 2 and "policy" in lowered.split():
        named.append("policy")
    named = list(dict.fromkeys(named))
    if len(named) < 2:
        return None
    args = {"variants": f"{named[0]} vs {named[1]}"}
    unit = re.search(r"\b(?:per|by|on|for|across)\s+(?:the\s+)?(contact|deal|owner)s?\b", lowered)
    if unit:
        args["unit"] = unit.group(1)
    metric = _METRIC.search(lowered)
    if metric:
        name = metric.group(1).replace(" ", "_")
        args["metric"] = {"conversion_rate": "conversion", "reply_rate": "response_rate"}.get(name, name)
    return args


def ordinal_ref(text: str) -> str | None:
    """ "the 2nd one", "the top one", "number 3", "#2" -> "the <ordinal> one" (what ``resolve`` reads)."""
    numbered = re.search(r"(?:\b(?:number|no\.?|row|option|result)\s*|#)(\d{1,2})\b", text, re.IGNORECASE)
    if numbered:
        return f"the {numbered.group(1)} one"
    found = _ORDINAL_REF.search(text)
    if not found:
        return None
    word = found.group(1).lower()
    return f"the {word} one"


_PICK_WORDS = frozenset(
    ("the", "one", "number", "no", "option", "choice", "result", "row", "i", "mean", "go", "with", "take", "pick",
     "that", "please", "ok", "okay", "lets", "let's", "want", "it's", "its", "is", "#")
)  # fmt: skip


def pronoun_ref(text: str) -> str | None:
    """ "who's the contact on it?" -> "the contact"; "close it" -> "it"; None: no pronoun."""
    kind = _PRONOUN_KIND.search(text)
    if kind:
        return f"the {kind.group(1).lower()}"
    near = _KIND_NEAR_PRONOUN.search(text)
    if near:
        return f"the {(near.group(1) or near.group(4)).lower()}"
    pronoun = _PRONOUN.search(text)
    return pronoun.group(1).lower() if pronoun else None


_CLAUSE = re.compile(r"\s*[;!?]+\s+|\.\s+|,\s+|\s+[-+–—]+\s+|\s+(?:and then|then)\s+", re.IGNORECASE)


def clauses(text: str) -> list[str]:
    parts = [p.strip(" .,;!?") for p in _CLAUSE.split(text)]
    return [p for p in parts if p]


# --------------------------------------------------------------------------------- the session side
_FOLLOW_CUE = re.compile(
    r"^(?:and|but|so|ok|okay|now|only|just|same|what about|how about|and what about|then)\b|"
    r"\b(?:of (?:them|those|these)|those|these|them|ones|first|sorted|sort|order|rank|before that|prior|"
    r"previous)\b",
    re.IGNORECASE,
)
_SORT_CUE = re.compile(
    r"\b(biggest|largest|highest|most valuable|smallest|lowest|least valuable|newest|latest|oldest|earliest)"
    r"(?: ones?)?(?: (?:first|on top))?\b",
    re.IGNORECASE,
)
_SORTS = {
    "biggest": "value", "largest": "value", "highest": "value", "most valuable": "value",
    "smallest": "value ascending", "lowest": "value ascending", "least valuable": "value ascending",
    "newest": "created date", "latest": "created date", "oldest": "created date ascending",
    "earliest": "created date ascending",
}  # fmt: skip
_BEFORE = re.compile(
    r"\b(?:the )?(day|week|month|quarter|year) (?:before|prior)(?: (?:that|it|this|then))?\b|"
    r"\b(?:the )?(?:previous|prior|preceding) (day|week|month|quarter|year)\b",
    re.IGNORECASE,
)
_FILTER_LEAD = re.compile(
    r"^(?:(?:and|but|so|ok|okay|now|then)[, ]+)*(?:(?:which|what|who) (?:of )?(?:them|those|these)"
    r"(?: ones)? (?:are|were|is|was|have|had|got)? ?|(?:only|just|keep|show(?: me)?|filter to) (?:the )?"
    r"(?:ones |those |them )?(?:that are |which are |who are |in )?|(?:of )?(?:them|those|these) (?:that are |"
    r"in )?)",
    re.IGNORECASE,
)
_NOT_TOUCHED = re.compile(
    r"\b(?:nobody|no one|we|that|who|which|have|has|haven'?t|havent|hasn'?t|not|never|untouched|quiet|silent|"
    r"neglected|ignored)\b",
    re.IGNORECASE,
)
_NAVIGATION = frozenset(
    ("and", "now", "then", "also", "switch", "to", "go", "jump", "move", "over", "on", "onto", "what", "about",
     "how", "next", "let's", "lets", "look", "at", "check", "ok", "okay", "so", "the", "one", "deal", "contact",
     "company", "account", "record", "please", "instead", "too", "back", "same", "for", "with", "pull", "up",
     "open", "bring", "show", "me", "see", "view", "us")
)  # fmt: skip
_QUANTIFIERS = frozenset(("each", "each one", "each of them", "every one", "all of them", "them all", "all"))
_ONE_RECORD = frozenset(("details", "summarize", "explain_score", "next_action", "draft_email", "find"))
_CUE_REQUIRED = frozenset(
    ("prepare", "triage", "start_experiment", "read_experiment", "reopen_deal", "similar")
)
_REF_INTENTS = frozenset(
    ("find", "details", "summarize", "explain_score", "next_action", "similar", "draft_email", "prepare")
)


class UnderstandIntents:
    """How ``ChatSession`` reads a turn (a mixin): patterns, follow-ups, clauses, meaning, in that order."""

    def _read(self, text: str, pending: dict | None) -> tuple[str, dict[str, Any], str]:
        """(intent, arguments, how it was read)."""
        spots = spot(self.data, text)
        self._spots = spots
        if pending and pending.get("kind") == "choices":
            chosen = self._choice_named(text, pending["choices"], spots)
            if chosen is not None:
                return "pick", {"number": str(chosen)}, "choice named"
        related = self._related_record(text, spots)
        if related is not None:
            return "details", {"ref": related}, "pronoun"
        read = catalogue.classify(text)
        if read is not None and not (read[0] == "refine" and self.question is None):
            return read[0], read[1], "pattern"
        self._unrefined = read  # a refinement with nothing to refine: said so, unless read otherwise below
        if self.question is not None and self._last_intent in ("question", "refine", "pick"):
            args = self._follow_up(text, spots)
            if args is not None:
                return "refine", args, "follow-up"
        parts = clauses(text)
        if len(parts) > 1:
            found = [(i, catalogue.classify(p)) for i, p in enumerate(parts)]
            found = [
                (i, r)
                for i, r in found
                if r is not None
                and r[0] not in ("refine", "pick", "help")
                and (r[1].get("ref") or "").lower() not in _QUANTIFIERS  # "what do I do with each": triage
            ]
            if found:
                writes = [(i, r) for i, r in found if r[0] in catalogue.WRITE_INTENTS]
                i, (intent, args) = (writes or found)[-1]
                rest = ", ".join(p for j, p in enumerate(parts) if j != i)
                args = dict(args)
                if intent == "reopen_deal" and rest and not args.get("reason"):
                    args["reason"] = rest
                if intent == "close_deal" and args.get("ref", "").lower() in ("as", "to", "it as", "this as"):
                    args.pop("ref")
                return intent, args, "clause"
        bare = self._bare_name(text, spots)
        if bare is not None:
            return "find", {"name": bare}, "name"
        if spots and all(w in _NAVIGATION for w in re.findall(r"[a-z']+", masked(text, spots).lower())):
            return "details", {"ref": spots[0].text}, "name"  # "now Globex", "switch to the Initech deal"
        embed = self.data.meaning_embed
        request = masked(text, spots)
        if not request.strip(" ?.!,"):
            return self._as_question(text)
        ranked = rank(request, embed, self._prior())
        self._ranked = ranked
        floor = LEXICAL_MIN if embed is None else MEANING_MIN
        if not ranked or ranked[0][1] < floor:
            return self._as_question(text)
        clear = decide(ranked, lexical=embed is None) is not None
        # the nearest intents (the first, and the second when as near) in order: the first whose arguments are
        # in the turn is read (a write never from a question); out of scope: honestly not understood
        near = [r for r in ranked[:2] if r[1] >= floor and ranked[0][1] - r[1] <= RUNNER_UP_WITHIN]
        found = []
        for candidate, score, _ in near:
            if candidate == "out_of_scope":
                return "not_understood", {}, "meaning"
            if candidate == "question":
                break
            if candidate in _ONE_RECORD and _PLURAL_KINDS.search(text) and not spots:
                break  # "his deals", "their open opportunities": a list, the question layer's
            if candidate in catalogue.WRITE_INTENTS and (
                _ASKS.match(text)
                or score < WRITE_MIN
                or (candidate != "start_experiment" and _PLURAL_RECORDS.search(text))
            ):
                continue  # a write is for one record, said as a command: never read from a question or a list
            args = self._slots(candidate, text, spots)
            if args is not None:
                found.append((candidate, args))
                if clear or len(near) == 1:
                    break
        if len(found) == 1 or (found and clear):
            return found[0][0], found[0][1], "meaning"
        return self._as_question(text)

    def _as_question(self, text: str) -> tuple[str, dict[str, Any], str]:
        if self._unrefined is not None:
            return self._unrefined[0], self._unrefined[1], "pattern"
        return "question", {"text": text}, "question"

    def _bare_name(self, text: str, spots: list[Spot]) -> str | None:
        """A turn that is only a name ("Wilson?", "the Globex account"): the name to find."""
        said = text.strip(" ?.!")
        if spots and spots[0].start == 0 and spots[0].end == len(text.split()):
            return spots[0].text
        from rapidfuzz import fuzz

        rest = residual(said)
        if not rest or rest != said or len(said.split()) > 4 or len(said) < 2:
            return None
        found = self.find(said)
        self._out["trace"].clear()  # the trial lookup is run again by the find intent
        words = [w for w in re.findall(r"[a-z0-9]+", said.lower()) if w not in _STOP]
        for rec in found[:1]:
            name = re.findall(r"[a-z0-9]+", rec.label.lower())
            if words and all(max(fuzz.ratio(w, n) for n in name) >= 80 for w in words):
                return said
        return None

    def _related_record(self, text: str, spots: list[Spot]) -> str | None:
        """ "what company is she at?", "who's the contact on it?": a question after one record (in focus) about
        another of one kind: that record, by ``_from_focus``."""
        if self.focus is None or spots or not _ASKS.match(text) or len(text.split()) > 9:
            return None
        if not _PRONOUN.search(text) or _PLURAL_KINDS.search(text):
            return None
        kinds = {_SINGULAR_KINDS[w.lower()] for w in _KIND_WORD.findall(text)} - {self.focus.kind}
        if len(kinds) != 1 or self.focus.kind == "company" and kinds == {"deal"}:
            return None  # a company's deal: which one is for `that deal` to resolve, not a question
        return f"the {kinds.pop()}"

    def _prior(self) -> dict[str, float]:
        """What the conversation makes likelier next: an outcome after a next action, yes or no while a write
        waits, a refinement or a pick after a list, a report after an experiment."""
        prior: dict[str, float] = {}
        last = getattr(self, "_last_intent", None)
        if last in ("next_action", "prepare", "triage"):
            prior["record_outcome"] = 2 * PRIOR_BONUS
        if self._pending_kept and self._pending_kept.get("kind") == "write":
            prior["confirm"] = prior["cancel"] = PRIOR_BONUS
        if last in ("question", "refine") and self.results:
            prior["refine"] = prior["pick"] = PRIOR_BONUS / 2
        if self.experiment:
            prior["read_experiment"] = PRIOR_BONUS
        return prior

    # ---------------------------------------------------------------------------------- arguments
    def _ref(self, text: str, spots: list[Spot]) -> str | None:
        """The record a turn points at: a name or id spotted, an ordinal of the last list, a pronoun (with
        the kind it names), else the words no exemplar uses (matched fuzzily by ``find``); None: the focus."""
        if spots:
            return spots[0].text
        if self.results:
            ordinal = ordinal_ref(text)
            if ordinal:
                return ordinal
        rest = residual(text)
        pronoun = pronoun_ref(text)
        if rest and len(rest) >= 3 and not _PRONOUN.fullmatch(rest):
            if pronoun and self.focus is not None and not self.find(rest):
                return pronoun  # "what's the amount on it?": the words left are no name; the pronoun is
            return rest
        return pronoun

    def _slots(self, intent: str, text: str, spots: list[Spot]) -> dict[str, str] | None:
        """The arguments of ``intent`` spotted in ``text`` (order free); None when one it needs is absent."""
        in_context = intent == "read_experiment" and self.experiment  # "how's that going?" after one
        if (
            intent in _CUE_REQUIRED
            and not in_context
            and not any(_cue(c).search(f" {text.lower()} ") for c in catalogue.CUES[intent])
        ):
            return None  # an intent with a word of its own ("prep", "triage"...) is not read without it
        if intent in _REF_INTENTS:
            ref = self._ref(text, spots)
            if intent in ("find", "prepare") and not ref:
                return None
            return {("name" if intent == "find" else "ref"): ref} if ref else {}
        if intent == "search":
            found = re.search(
                r"\b(?:mentioning|mentions?|about|regarding|discussing|referring to|that says?|saying|on|for|where)"
                r"\s+(.+?)(?:\s+(?:came up|was discussed|was mentioned|comes up))?[?.!]?$",
                text,
                re.IGNORECASE,
            )
            words = (found.group(1) if found else residual(text)).strip(" ?.!")
            return {"text": words} if words else None
        if intent == "close_deal":
            said = outcome(text)
            if said is None:
                return None
            ref = spots[0].text if spots else pronoun_ref(text)
            return {"outcome": said, **({"ref": ref} if ref and ref not in ("that", "this") else {})}
        if intent == "reopen_deal":
            if not re.search(
                r"\b(re-?open|revive|open (?:it |this |the deal )?again|back to open)", text, re.I
            ):
                return None
            ref = spots[0].text if spots else None
            return {**({"ref": ref} if ref else {})}
        if intent == "log_note":
            if not re.search(r"\b(log|note|jot|write (?:it |that )?down|record|add|save|put)\b", text, re.I):
                return None
            parts = clauses(text)
            command = [
                p for p in parts if re.search(r"\b(log|note|record|add|save|jot|write down)\b", p, re.I)
            ]
            body = [p for p in parts if p not in command[-1:]] if command else parts
            said = " ".join(body).strip()
            if not said:  # one clause: what follows the command ("please record that he asked for a demo")
                after = re.search(
                    r"\b(?:log|note|jot down|write down|record|add|save)\b(?:\s+(?:a|an|the)\s+(?:note|call|meeting))?"
                    r"(?:\s+(?:that|this|it))?\s+(.+)",
                    text,
                    re.IGNORECASE,
                )
                said = after.group(1).strip() if after else ""
            if ":" in text:
                said = text.split(":", 1)[1].strip()
            if not said:
                return None
            args = {"kind": note_kind(text), "text": said}
            if spots:
                args["ref"] = spots[0].text
            return args
        if intent == "record_outcome":
            said = result(text)
            if said is None:
                return None
            args = {"result": said}
            action = action_named(text)
            if action:
                args["action"] = action
            if spots:
                args["ref"] = spots[0].text
            return args
        if intent == "start_experiment":
            return experiment_slots(text)
        if intent == "read_experiment":
            plural = re.search(r"\b(?:experiments|tests|a/b tests)\b", text, re.IGNORECASE)
            return {"all": "experiments"} if plural and not self.experiment else {}
        if intent == "triage":
            return self._triage_slots(text)
        if intent == "refine":
            return self._follow_up(text, spots, cued=True) if self.question is not None else None
        if intent == "pick":
            words = [w for w in re.findall(r"[a-z0-9#'.]+", text.lower()) if w not in _PICK_WORDS]
            if len([w for w in words if not _ORDINAL_REF.fullmatch(w) and not w.isdigit()]) > 0:
                return None  # "tell me more about the second": a request about a row, not a pick alone
            ordinal = ordinal_ref(text)
            number = re.search(r"\b(\d{1,2})\b", text)
            if ordinal:
                word = ordinal.split()[1]
                return {"ordinal": "first" if word == "top" else word}
            return {"number": number.group(1)} if number else None
        return {}

    def _triage_slots(self, text: str) -> dict[str, str] | None:
        words = text.split()
        cut = next((i for i, w in enumerate(words) if i > 0 and _NOT_TOUCHED.fullmatch(w.strip(",.?"))), None)
        if cut is None:
            return None
        segment = " ".join(words[:cut])
        segment = re.sub(
            r"^(?:which|what|who|show me|list|find)\s+(?:of\s+)?(?:are\s+)?", "", segment, flags=re.I
        )
        if not segment:
            return None
        args = {"segment": segment}
        said = window(" ".join(words[cut:]))
        if said:
            args["window"] = said
        return args

    def _follow_up(self, text: str, spots: list[Spot], cued: bool = False) -> dict[str, str] | None:
        """A refinement of the previous question: a short turn with a follow-up cue and a filter, a sort or
        a time shift ("which of those are in retail?", "largest first", "and the quarter before that?")."""
        words = text.split()
        if len(words) > 9 or (not cued and not _FOLLOW_CUE.search(text) and not _SORT_CUE.search(text)):
            return None
        if any(s.how == "id" for s in spots):
            return None
        args: dict[str, str] = {}
        before = _BEFORE.search(text)
        if before:
            shifted = self._time_before((before.group(1) or before.group(2)).lower())
            if shifted is None:
                return None
            args["time"] = shifted
            text = (text[: before.start()] + text[before.end() :]).strip()
        sort = _SORT_CUE.search(text)
        if sort:
            args["sort"] = _SORTS[sort.group(1).lower()]
            text = (text[: sort.start()] + text[sort.end() :]).strip()
        rest = _FILTER_LEAD.sub("", text.strip(" ?.!")).strip(" ,?.!")
        rest = re.sub(r"\b(?:ones?|only|please)$", "", rest, flags=re.IGNORECASE).strip(" ,")
        rest = re.sub(r"^(?:and|but|so|then|the)\b\s*", "", rest, flags=re.IGNORECASE).strip(" ,")
        if rest and rest.lower() not in ("them", "those", "these", "that", "it"):
            args["filter"] = rest
        return args or None

    def _time_before(self, unit: str) -> str | None:
        """ "the quarter before that": the window of the previous question moved back one ``unit``, said as
        the NL layer reads it ("q2 2026", "june 2026", "2025", "between 2026-06-01 and 2026-06-07"); None when
        the previous question had no window."""
        from datetime import UTC, datetime, timedelta

        from holocrm_core.chat.questions import time_phrase
        from holocrm_core.nlq.timeparse import find_times

        q = self.question or {}
        said = (
            q.get("time")
            or time_phrase(q.get("base", ""))
            or " ".join(time_phrase(f) for f in q.get("filters", []) if time_phrase(f))
        )
        if not said:
            return None
        as_of = self.data.as_of or datetime.now(UTC)
        found = find_times(said.lower(), as_of)
        if not found or found[0].past is None:
            return None
        start = found[0].past[0]
        if unit == "quarter":
            index = start.year * 4 + (start.month - 1) // 3 - 1
            return f"q{index % 4 + 1} {index // 4}"
        if unit == "month":
            index = start.year * 12 + start.month - 2
            return f"{_MONTHS[index % 12]} {index // 12}"
        if unit == "year":
            return str(start.year - 1)
        days = 7 if unit == "week" else 1
        first = start - timedelta(days=days)
        return f"between {first.date().isoformat()} and {(start - timedelta(days=1)).date().isoformat()}"

    def _choice_named(self, text: str, choices: list, spots: list[Spot]) -> int | None:
        """The one of numbered choices the turn names ("the one at Globex"), by its label; None: none or not
        one alone."""
        from rapidfuzz import fuzz

        if catalogue.classify(text) is not None:
            return None
        kinds = {_SINGULAR_KINDS[w.lower()] for w in _KIND_WORD.findall(text)}
        if len(kinds) == 1 and len(text.split()) <= 5:  # "the deal one", "the company"
            of_kind = [i for i, c in enumerate(choices, 1) if c.kind in kinds]
            if len(of_kind) == 1:
                return of_kind[0]
        words = [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in catalogue_vocabulary()]
        if not words:
            return None
        said = " ".join(words)
        scores = [fuzz.partial_ratio(said, c.label.lower()) for c in choices]
        best = max(scores)
        if best >= 85 and scores.count(best) == 1:
            return scores.index(best) + 1
        return None
