"""The catalogue of intents the assistant can run: data, not code. A turn is read as one of these or as
"not understood"; nothing outside this list can run (the plan of a woven request is a list of its names).

Each intent: ``name``, ``patterns`` (regular expressions tried in catalogue order, first match wins; named
groups are the arguments), ``writes`` (a write is previewed and needs an explicit "yes"), ``help`` and an
``example`` (what "not understood" suggests).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ORDINALS = {
    "first": 1, "1st": 1, "one": 1, "second": 2, "2nd": 2, "two": 2, "third": 3, "3rd": 3, "three": 3,
    "fourth": 4, "4th": 4, "four": 4, "fifth": 5, "5th": 5, "five": 5, "last": -1, "top": 1, "bottom": -1,
}  # fmt: skip
_ORD = "|".join(sorted(ORDINALS, key=len, reverse=True))
_RESULT = (
    r"worked|paid off|succeeded|was a success|(?:was )?successful|a success|landed|converted|"
    r"got a (?:reply|response|yes)|failed|(?:was )?unsuccessful|did not work|didn't work|went nowhere|"
    r"got no (?:reply|response)|was ignored|bounced|"
    r"(?:reward |scored |was )?(?:0?\.\d+|[01](?:\.0+)?|\d{1,3} ?%)"
)
# a triage's window ("in two weeks", "for the last 30 days") and its ask ("and what should I do with each?")
_WINDOW = r"(?: (?:in|for|during|within) (?:the |over the )?(?:last |past )?(?P<window>[\w ]+?))?"
_EACH = (
    r",? (?:and )?(?:what should (?:i|we) do|what do (?:i|we) do|what(?:'s| is) the (?:next |best |best next )?"
    r"(?:step|action|move)|what next|what to do)(?: (?:with|about|for))? (?:each|each one|each of them|them|"
    r"with each|for each|of them)[?.!]?"
)
REF_PRONOUNS = (
    "it", "them", "that deal", "this deal", "the deal", "that contact", "this contact", "that company",
    "this company", "that one", "this one", "him", "her", "she", "he", "they", "this", "that", "this record",
    "that record", "the company", "the contact", "its", "their", "his", "the record",
)  # fmt: skip


@dataclass(frozen=True)
class Intent:
    name: str
    patterns: tuple[str, ...]
    help: str
    example: str
    writes: bool = False

    def match(self, text: str) -> dict[str, str] | None:
        for pattern in self.patterns:
            found = re.fullmatch(pattern, text, flags=re.IGNORECASE)
            if found:
                return {k: v.strip() for k, v in found.groupdict().items() if v}
        return None


CATALOGUE: tuple[Intent, ...] = (
    Intent(
        "confirm",
        (
            r"(?:yes|y|yep|yeah|yup|sure|ok|okay|confirm(?:ed)?|do it|go ahead|correct|please do)"
            r"(?:[,.!]? ?(?:please|do it|go ahead|confirm(?: it)?|thanks|thank you))*[.!]?",
        ),
        "confirm the write previewed",
        "yes",
    ),
    Intent(
        "cancel",
        (
            r"(?:no|n|nope|nah|cancel|stop|never mind|nevermind|abort|don't|do not|forget it|scrap that)"
            r"(?:[,.!]? ?(?:thanks|thank you|cancel(?: it| that)?|don't do it|do not do it|leave it))*[.!]?",
        ),
        "drop the write previewed",
        "no",
    ),
    Intent(
        "help",
        (r"(?:help|\?|what can you do|what can i (?:ask|say)|commands|examples)[?.!]?",),
        "list what the assistant can do, with an example of each",
        "help",
    ),
    Intent(
        "pick",
        (
            rf"(?:the |take the |pick the |i mean the |number |option |pick |go with the |i want the )?"
            rf"(?P<ordinal>{_ORD})(?: one| deal| contact| company| record| result| option| reading| choice)?[.!]?",
            r"(?:number |option |#|pick |choice )?(?P<number>\d{1,2})[.!]?",
        ),
        "choose one of the numbered choices",
        "the second one",
    ),
    Intent(
        "triage",
        (
            r"(?:which|what|who) (?:of |are )?(?P<segment>.+?) (?:haven't|have not|hasn't|has not|didn't|did not)"
            r" (?:heard from us|been (?:contacted|touched|called|emailed)|had (?:any )?(?:activity|contact))"
            + _WINDOW
            + _EACH,
            r"(?:which|what|who) (?:of )?(?P<segment>.+?) (?:have we not|haven't we|did we not|didn't we|have|did)"
            r"(?: we not)? (?:contacted|contact|touched|touch|called|call|emailed|email|heard from|hear from)"
            + _WINDOW
            + _EACH,
            r"what should (?:i|we) do (?:with|about) (?:each of )?(?P<segment>.+?) (?:that|who|which) (?:we )?"
            r"(?:haven't|have not|hasn't|has not|didn't|did not) (?:heard from us|been (?:contacted|touched|called|"
            r"emailed)|contacted|touched|called|emailed|heard from)(?: (?:them|us))?" + _WINDOW + r"[?.!]?",
            r"triage (?P<segment>.+?)(?: (?:not (?:heard from|contacted|touched)|quiet|silent|untouched)"
            r"(?: (?:in|for) (?:the )?(?:last |past )?(?P<window>[\w ]+?))?)?[?.!]?",
        ),
        "retrieve a segment, keep those not contacted in a window, score them, and decide a next action "
        "for each (a woven request; the trace shows every step)",
        "which of my hot leads in fintech haven't heard from us in two weeks, and what should I do with each?",
    ),
    Intent(
        "prepare",
        (
            r"(?:help me |get me ready for |)prep(?:are)?(?: me)? for (?:my |the |a |our )?(?:[\w']+ ){0,2}"
            r"(?:call|meeting|demo|visit|pitch) with (?P<ref>.+?)[?.!]?",
            r"get me ready for (?:my |the |a |our )?(?:[\w']+ ){0,2}(?:call|meeting|demo|visit|pitch) with"
            r" (?P<ref>.+?)[?.!]?",
            r"brief me (?:for|before) (?:my |the |a |our )?(?:[\w']+ ){0,2}(?:call|meeting|demo|visit|pitch) with"
            r" (?P<ref>.+?)[?.!]?",
        ),
        "find the company or contact, then details, score, next action and summary (a woven request)",
        "prepare me for my call with Acme",
    ),
    Intent(
        "close_deal",
        (
            r"(?:close|mark|set)(?: (?!(?:as|to)\b)(?P<ref>.+?))? (?:as |to )?(?:closed[- ]?)?(?P<outcome>won|lost)[.!]?",
            r"(?P<ref>the deal|that deal|this deal|it) (?:was|is|got|has been) (?P<outcome>won|lost)[.!]?",
            r"(?:we )?(?P<outcome>won|lost) (?P<ref>.+?)[.!]?",
        ),
        "close a deal as won or lost (previewed, needs yes)",
        "close that deal as won",
        writes=True,
    ),
    Intent(
        "reopen_deal",
        (r"re-?open (?P<ref>.+?)(?:(?:\s*[:,]|\s+-|\s+because|\s+since|\s+as)\s+(?P<reason>.+?))?[.!]?",),
        "reopen a closed deal in focus (previewed, needs yes; refused when the deal is open)",
        "reopen that deal: the customer came back",
        writes=True,
    ),
    Intent(
        "record_outcome",
        (
            r"(?:record|log|note) (?:the |an? )?(?:action )?outcome"
            r"(?: of (?:the |my |our )?(?P<action>email|call|proposal|wait))?"
            r"(?: (?:for|with|on) (?P<ref>.+?))?\s*[:,-]?\s*(?:it )?(?P<result>" + _RESULT + r")[.!]?",
            r"(?:the |my |our )?(?P<action>email|call|proposal|wait)(?: (?:to|with) (?P<ref>.+?))?"
            r" (?P<result>" + _RESULT + r")[.!]?",
            r"(?:the |my |our )?(?:next |recommended )?(?:action|step) (?P<result>" + _RESULT + r")[.!]?",
            r"(?:record|log|note) (?:the |an? )?(?:action )?outcome\s*[:,-]?\s*(?:the |my |our )?"
            r"(?P<action>email|call|proposal|wait) (?P<result>" + _RESULT + r")[.!]?",
            r"(?:it|that|this) (?P<result>" + _RESULT + r")[.!]?",
            r"mark (?:the |my |our )?(?P<action>email|call|proposal|wait) as (?P<result>"
            + _RESULT
            + r")[.!]?",
            r"(?:the )?outcome of (?:the |my |our )?(?P<action>email|call|proposal|wait) (?:was|is) (?P<result>"
            + _RESULT
            + r")[.!]?",
        ),
        "record how the next action for the contact in focus turned out (reward 1 worked, 0 did not, or a "
        "share; previewed, needs yes)",
        "the call worked",
        writes=True,
    ),
    Intent(
        "start_experiment",
        (
            r"(?:(?:start|create|launch|run|set up|begin) )?(?:an? |the )?(?:new )?(?:a/?b )?(?:experiment|test)[:,]?"
            r"(?: (?:called|named))?(?: (?!(?:comparing|of|with|between|the)\b)(?P<name>[a-z0-9][a-z0-9_-]*)\b[:,]?)?\s+(?:comparing |of |with |between )?"
            r"(?P<variants>(?:the )?[\w.]+(?: (?:policy|strategy|scorer|model))? (?:vs\.?|versus|against|and|or)"
            r" (?:the )?[\w.]+(?: (?:policy|strategy|scorer|model))?)"
            r"(?: (?:per|by|on) (?P<unit>contact|deal|owner)s?)?"
            r"(?: (?:on|measuring|by|metric) (?P<metric>[a-z_]+))?[.!]?",
        ),
        "start an A/B experiment between two strategies (cadence, ppo, bandit, policy, champion, challenger, "
        "heuristic), per contact by default (previewed, needs yes)",
        "start an experiment cadence vs ppo",
        writes=True,
    ),
    Intent(
        "read_experiment",
        (
            r"(?:how is|how's|how are) (?:the |my |our )?(?:experiment (?P<name>[a-z0-9][a-z0-9_-]*)"
            r"|experiment|it|that experiment) (?:doing|going)[?.!]?",
            r"(?:how is|how's) (?:the |my |our )?(?P<name>[a-z0-9][a-z0-9_-]*) (?:experiment|test) (?:doing|going)"
            r"[?.!]?",
            r"(?:what(?:'s| is) )?(?:the )?status of (?:the )?experiment (?P<name>[a-z0-9][a-z0-9_-]*)[?.!]?",
            r"(?:show(?: me)?|read|report on|report for|results of|results for|open) (?:the |my )?"
            r"(?:experiment|a/?b test)(?: report| results)?(?: (?:of|for))?(?: (?P<name>[a-z0-9][a-z0-9_-]*))?"
            r"[?.!]?",
            r"(?:show |read )?(?:the )?(?:experiment|a/?b test) (?:report|results)(?: (?:of|for))?"
            r"(?: (?P<name>[a-z0-9][a-z0-9_-]*))?[?.!]?",
            r"(?:show |read |open )?(?:the )?(?P<name>[a-z0-9][a-z0-9_-]*) experiment(?:'s)?(?: report| results)?"
            r"[?.!]?",
            r"(?:what are |show me |give me |read )?(?:the )?(?:results|report) (?:of|for|on) (?:the )?experiment"
            r" (?P<name>[a-z0-9][a-z0-9_-]*)[?.!]?",
            r"(?:what are |show me |give me |read )?(?:the )?(?:results|report) (?:of|for|on) (?:the )?"
            r"(?P<name>[a-z0-9][a-z0-9_-]*) experiment[?.!]?",
            r"(?:list |show |which |show me )?(?:the |my |all )?(?:running )?(?P<all>experiments)(?: are running)?[?.!]?",
            r"(?:what|which) (?P<all>experiments) (?:do we have|are there|exist|have we got|are on)[?.!]?",
        ),
        "read an experiment's report: units per variant, effects, the verdict (no name: the experiment in "
        "context, or the list)",
        "how is experiment cadence-vs-ppo doing?",
    ),
    Intent(
        "log_note",
        (
            r"(?:log|add|record) (?:a |an |the )?(?P<kind>note|call|meeting|email)(?: (?:on|with|for|to) (?P<ref>[^:]+?))?"
            r"(?:\s*[:,]|\s+-)\s*(?P<text>.+)",
            r"(?:log|add|record) (?:a |an |the )?(?P<kind>note|call|meeting|email) (?P<text>.+)",
            r"(?P<kind>note|call|meeting|memo)\s*(?::|\s-)\s*(?P<text>.+)",
            r"(?P<kind>note|call|meeting|memo) (?:for|on|to|re|about|with) (?P<ref>[^:]+?)\s*:\s*(?P<text>.+)",
            r"(?P<kind>note) that (?P<text>.+)",
        ),
        "log a note or a call on the record in focus (previewed, needs yes)",
        "log a note: asked for the security review",
        writes=True,
    ),
    Intent(
        "draft_email",
        (
            r"(?:draft|write|compose|prepare) (?:me )?(?:a |an )?(?:follow[- ]?up(?: e-?mail)?|e-?mail)"
            r"(?: (?:to|for) (?P<ref>.+?))?[.!]?",
        ),
        "draft a follow-up email from the template, filled from the record",
        "draft a follow-up email",
    ),
    Intent(
        "summarize",
        (
            r"(?:summari[sz]e|sum up|catch me up on|catch up on|give me a summary of|(?:a |the )?summary of|brief me on|(?:give me )?(?:a |an |the )?(?:rundown|overview|recap) (?:of|on))"
            r"(?: (?P<ref>.+?))?[?.!]?",
            r"(?:give me )?(?:a |the )?summary[?.!]?",
        ),
        "summarize a record: its salient facts and latest activities with their dates",
        "summarize Acme Bank",
    ),
    Intent(
        "explain_score",
        (
            r"why is (?P<ref>.+?) (?:so )?(?:hot|warm|cold|scored \w+)[?.!]?",
            r"why (?:so )?(?:hot|warm|cold)[?.!]?",
            r"what (?:drives|explains|is behind) (?P<ref>.+?)(?:'s)? score[?.!]?",
            r"(?:explain|why) (?:the |its |this |that )?score(?: (?:of|for) (?P<ref>.+?))?[?.!]?",
            r"(?:what is |what's )?(?:the )?score (?:of|for) (?P<ref>.+?)[?.!]?",
            r"how (?:hot|warm|cold|good|likely) is (?P<ref>.+?)[?.!]?",
            r"(?:what is |what's )(?P<ref>.+?)(?:'s) score[?.!]?",
            r"(?:what is |what's )(?P<ref>his|her|its|their|the) score[?.!]?",
            r"why is (?P<ref>.+?)(?:'s)? score so (?:high|low)[?.!]?",
            r"explain (?P<ref>.+?)(?:'s)? score[?.!]?",
        ),
        "a record's score with the reasons behind it",
        "why is Alice Johnson hot?",
    ),
    Intent(
        "next_action",
        (
            r"what should (?:i|we) do (?:next )?(?:with|about|for) (?P<ref>.+?)[?.!]?",
            r"(?:what(?:'s| is) )?the best next (?:action|step|move)(?: (?:for|with|on) (?P<ref>.+?))?[?.!]?",
            r"how should (?:i|we) (?:follow up with|approach|engage|handle|proceed with) (?P<ref>.+?)[?.!]?",
            r"(?:what(?:'s| is) the |give me the |show me the |get the |suggest the |suggest a |the )?next"
            r" (?:best )?(?:action|step|move)(?: (?:for|with|on) (?P<ref>.+?))?[?.!]?",
            r"what (?:do you|would you) (?:recommend|suggest)(?: (?:for|with) (?P<ref>.+?))?[?.!]?",
            r"what(?:'s| is) next(?: (?:for|with) (?P<ref>.+?))?[?.!]?",
            r"(?:recommend|suggest) (?:an? |the )?(?:next )?(?:action|step)(?: (?:for|with) (?P<ref>.+?))?[?.!]?",
            r"what should (?:i|we) do(?: next)?[?.!]?",
        ),
        "the next best action for a contact (the decision service's answer and why)",
        "what should I do with Alice Johnson?",
    ),
    Intent(
        "similar",
        (
            r"(?:(?:show|find|get|list|give)(?: me)? )?(?:other |more )?(?:(?:records|contacts|companies|deals|ones|"
            r"people|accounts|leads|opportunities) )?(?:(?:that|which|who) (?:are |look |looks )?)?"
            r"(?:similar to|like|resembling|resemble|resembles) (?P<ref>.+?)[?.!]?",
            r"(?:(?:show|find|get|list|give)(?: me)? )?(?:more |other |some )?(?:similar|lookalike|comparable)"
            r" (?:ones|records|accounts|companies|contacts|deals|people|leads|opportunities)"
            r"(?: (?:to|for) (?P<ref>.+?))?[?.!]?",
            r"who else is (?:like|similar to) (?P<ref>.+?)[?.!]?",
            r"(?:more|others|find more|show more) like (?P<ref>.+?)[?.!]?",
        ),
        "records of the same kind most like one",
        "similar to it",
    ),
    Intent(
        "search",
        (
            r"(?:semantic search(?: for)?|search for|search|look for notes about|find notes about|mentions of)"
            r" (?P<text>.+)",
            r"(?:find|show|look for|get)(?: me)? (?:any |all )?(?:notes|activities|emails|records|anything|calls)"
            r" (?:about|mentioning|on|that mention|with|regarding) (?P<text>.+)",
        ),
        "semantic search over every record (and attachments)",
        "search pricing objections",
    ),
    Intent(
        "details",
        (
            r"(?:(?:show me |show |open )?(?:the )?(?:timeline|details|history|activities) (?:of|for|on)|"
            r"show me|show|open|tell me about|who is|pull up|bring up|where is|what's going on with|"
            r"what is going on with|what's new with|any news on|status of|what's the status of)"
            r" (?P<ref>.+?)(?:'s)?(?: details| timeline| activity| activities| deals| contacts| history)?[?.!]?",
            r"(?:details|timeline|activity|activities|history)[?.!]?",
            r"(?:show |list |what are )?(?:me )?(?P<ref>its|their|his|her) (?:timeline|history|details)[?.!]?",
        ),
        "a record's fields and its activity timeline",
        "show Acme Bank",
    ),
    Intent(
        "find",
        (
            r"(?:find|look ?up|lookup|look for|locate|get(?! me\b)|search for the record|which record is) (?P<name>.+?)[?.!]?",
        ),
        "find a record by name (fuzzy, asks which when several match)",
        "find acme",
    ),
    Intent(
        "refine",
        (
            r"(?:only|just|keep|filter to)(?: show(?: me)?)? (?:the ones |those |ones |the )?(?P<filter>.+?)"
            r"(?: ones| only)?[?.!]?",
            r"(?:and )?(?:sort(?:ed)?|order(?:ed)?|rank(?:ed)?) (?:them |it )?by (?P<sort>.+?)[?.!]?",
            r"(?:and |what |how )?about"
            r" (?P<time>(?:last|this|next|past|the last|the past|in|since) .+?)[?.!]?",
            r"(?:and|and for|and in|same for|now for) (?P<time>(?:last|this|next|past|the last|the past|in|since) .+?)"
            r"[?.!]?",
            r"(?:and |what |how )?about (?P<time>(?:in )?(?:q[1-4](?: \d{4})?|\d{4}|january|february|march|april|may|"
            r"june|july|august|september|october|november|december)(?: \d{4})?)[?.!]?",
        ),
        "refine the previous question (filter, sort, another time window)",
        "only the ones in fintech",
    ),
)
BY_NAME = {intent.name: intent for intent in CATALOGUE}
WRITE_INTENTS = frozenset(i.name for i in CATALOGUE if i.writes)
# The steps a woven request may run: every one is a catalogue intent (the plan is data, checked against it).
PREPARE_PLAN = ("find", "details", "explain_score", "next_action", "summarize")
# triage: the steps its trace names (retrieve: a question; filter: last touch; score; decide: next action).
TRIAGE_PLAN = ("retrieve", "filter", "score", "decide")


def classify(text: str) -> tuple[str, dict[str, str]] | None:
    """The first intent whose pattern matches the whole turn, with its arguments; None: not in the catalogue
    (the engine then asks the NL question layer)."""
    text = " ".join(text.split())
    plainer = _plainer(text)
    for candidate in dict.fromkeys((plainer, text, _verb_spelled(plainer))):
        for intent in CATALOGUE:
            found = intent.match(candidate)
            if found is not None:
                return intent.name, found
    return None


# The words a turn starts with, spelled right: "sumarize it" / "shwo Acme" read as "summarize" / "show".
VERBS = (
    "show", "find", "open", "summarize", "summarise", "close", "reopen", "draft", "write", "log", "search",
    "prepare", "triage", "explain", "start", "record", "mark", "help", "similar", "details", "timeline",
)  # fmt: skip


def _verb_spelled(text: str) -> str:
    """The turn with its first word corrected to a catalogue verb one edit away (two for long words); a
    word that starts with a verb ("closed", "logged") is an inflection, not a typo, and stays."""
    from rapidfuzz.distance import OSA

    first, _, rest = text.partition(" ")
    word = first.lower()
    if len(word) == 3:  # a short verb only with two letters swapped ("lgo" -> "log")
        swapped = [v for v in VERBS if len(v) == 3 and v != word and sorted(v) == sorted(word)]
        return f"{swapped[0]} {rest}".strip() if len(swapped) == 1 else text
    if len(word) < 4 or word in VERBS or any(word.startswith(v) for v in VERBS):
        return text
    allowed = 2 if len(word) >= 7 else 1
    distance = {v: OSA.distance(word, v) for v in VERBS}
    best = min(distance.values())
    close = [v for v, d in distance.items() if d == best]
    return f"{close[0]} {rest}".strip() if best <= allowed and len(close) == 1 else text


_COURTESY = re.compile(
    r"^(?:(?:please|pls|hey|hi|ok(?:ay)?|so|now|also|then|right|can you|could you|would you|will you|can i|"
    r"could i|i want to|i'd like to|i would like to|i need to|let's|let me|go and|help me)[, ]+)+",
    re.IGNORECASE,
)
_THANKS = re.compile(r"(?:[, ]+(?:please|pls|thanks|thank you|for me|now))+([?.!]?)$", re.IGNORECASE)


def _plainer(text: str) -> str:
    """The turn without courtesy words around it ("can you find Acme, please?" -> "find Acme?")."""
    return _THANKS.sub(r"\1", _COURTESY.sub("", text)).strip() or text


# Words that make "show ..." / "find ..." a question over many records rather than one record's name.
QUESTION_WORDS = frozenset(
    ("deals", "contacts", "companies", "leads", "customers", "accounts", "opportunities", "prospects",
     "pipeline", "won", "lost", "open", "closed", "how", "many", "top", "which", "all", "every", "my", "hot",
     "warm", "cold", "over", "under", "by", "with", "without")
)  # fmt: skip


def looks_like_question(ref: str) -> bool:
    return any(w.strip("?.!,") in QUESTION_WORDS for w in ref.lower().split())


def ordinal(args: dict[str, str]) -> int:
    if "number" in args:
        return int(args["number"])
    return ORDINALS[args["ordinal"].lower()]


def suggestions() -> list[str]:
    return [i.example for i in CATALOGUE if i.name not in ("confirm", "cancel", "pick", "help")]


# ------------------------------------------------------------------------------------------- exemplars
# Paraphrases of each intent, read by meaning (``holocrm_core.chat.understand``): a turn no pattern matches is
# embedded (record names masked as "Acme") and compared with these; the nearest intent, when it stands out
# by a margin, is run with its arguments spotted in the turn (names, outcome, amounts, dates), else the turn
# goes to the NL question layer, else "not understood". Written generically (no evaluation sentence); two
# classes are not intents: ``question`` (the NL layer's) and ``out_of_scope`` (honestly not understood).
EXEMPLARS: dict[str, tuple[str, ...]] = {
    "find": (
        "find Acme", "look up Acme", "search for the record Acme", "is there a record called Acme",
        "do we have Acme in the CRM", "Acme?", "which record is Acme", "locate Acme", "get me Acme",
        "have we got anyone called Acme",
    ),
    "details": (
        "show Acme", "open Acme", "tell me about Acme", "what do we have on Acme", "everything on Acme",
        "what have we got on them", "info on Acme", "give me the details of Acme", "pull up the record",
        "who is Acme", "what is Acme's email address", "what's her phone number", "Acme's contact details",
        "what company does she work for", "which account is this deal with", "who is the contact on this deal",
        "show me its activity history", "the timeline for Acme", "open the record", "tell me more about it",
        "more detail on the third result", "more on the first one", "show me that one", "and Acme?",
        "what about Acme?", "how about Acme", "details please", "what's been happening with Acme",
        "who owns Acme", "what stage is the deal at", "what is the deal worth", "where are we with Acme",
        "let me see Acme", "display the record for Acme", "what's on file for Acme", "the account page for Acme",
        "who's our point of contact there", "when is it expected to close",
    ),
    "summarize": (
        "summarize Acme", "give me a summary of Acme", "sum up the account", "recap Acme",
        "a quick overview of Acme", "catch me up on Acme", "brief me on this account", "the short version on Acme",
        "give me the gist of Acme", "in a nutshell, what's going on with Acme", "too long didn't read Acme",
        "tldr please", "the tl;dr version for Acme", "headlines only for Acme",
        "what's the story so far with Acme", "condense the history of Acme", "key facts on Acme",
        "anything new on this account lately", "any recent news on Acme", "what happened lately with this account",
        "quick rundown on Acme", "headline facts about Acme", "summary of that deal", "fill me in on Acme",
    ),
    "explain_score": (
        "why is Acme hot", "explain Acme's score", "why does this lead score so high", "what drives the score",
        "why is this deal rated like this", "how come they got that score", "what is the score of Acme",
        "why is she so cold", "reasons behind the score", "how likely is Acme to convert",
        "why did the model rate it that way", "what makes this lead warm", "score breakdown for Acme",
        "how good is this lead", "what's his lead score",
        "how did the model score Acme", "is this lead any good", "what's the probability this deal closes",
    ),
    "next_action": (
        "what should I do next with Acme", "next best action for Acme", "what do you recommend for them",
        "how should I approach Acme", "what's my next step with this deal", "what's the best move here",
        "what do I do about Acme now", "suggest an action for this contact", "how do I move this deal forward",
        "recommend a next step", "what would you do with Acme", "how should we follow up with them",
        "what's the plan for Acme",
        "what is the recommended action", "what now with Acme",
        "any suggestions for Acme", "what's the smartest next move", "what would help close this deal",
    ),
    "similar": (
        "similar to Acme", "companies like Acme", "who else resembles Acme", "find lookalikes of Acme",
        "accounts resembling Acme", "more like this one", "show me others like them", "records close to Acme",
        "deals comparable to this one", "anyone similar to her", "records that resemble Acme", "find me more of these",
        "who is most like Acme", "give me companies in the same mould as Acme",
    ),
    "search": (
        "search pricing objections", "find notes about budget cuts", "emails that mention a discount",
        "anything mentioning security questionnaires", "look for calls where they talked about renewal",
        "which notes talk about integrations", "search the activities for a keyword",
        "any meetings discussing the contract terms", "find anything about onboarding delays",
        "records that mention GDPR", "where did someone bring up the invoice", "notes referring to a pilot",
        "find conversations about a price increase", "look through the notes for legal concerns",
        "semantic search for churn risk",
    ),
    "draft_email": (
        "draft a follow-up email", "write them an email", "compose a follow up to Acme", "email draft for her",
        "prepare a follow up message", "write a quick note to send to the contact", "draft something to send them",
        "can you write the email", "put together a follow-up mail for Acme", "draft a reply to them",
        "write me an email to Acme", "send them a follow up, draft it first", "prepare a check-in email",
        "draft a thank-you note to them", "get an email ready for Acme",
    ),
    "log_note": (
        "log a note: they need more time", "add a note to this account", "log a call with Acme",
        "record a meeting with them: agreed on pricing", "note that she is on holiday until May",
        "put a note on the deal", "log it", "save that as a note", "add this to the timeline",
        "I just spoke to them, log the call", "had a meeting with Acme today, record it",
        "write down that they asked for a discount", "jot down that the budget is approved",
        "log that I called them", "make a note of it",
        "add to the record that they want a demo", "save a note: asked for references", "note for the file: on leave",
    ),
    "close_deal": (
        "close the deal as won", "mark it lost", "we won it", "we lost this deal", "set the deal to won",
        "close it out as lost", "they signed, mark it won", "the customer walked away, close it lost",
        "mark Acme as won", "they chose a competitor, set it to lost", "the deal is dead, mark it lost",
        "close that opportunity as won", "it's a win, close it", "flag the deal as lost",
        "they pulled out, close the deal as lost", "book it as won",
        "record this as a loss", "the contract is signed, mark the deal won", "it fell through, mark lost",
    ),
    "reopen_deal": (
        "reopen the deal", "reopen it", "open the deal again", "the customer is back, reopen it",
        "undo the close, put it back in the pipeline", "revive this deal", "bring the deal back to open",
        "they changed their mind, reopen the opportunity", "set the deal back to open",
        "reactivate this deal", "the lost deal is alive again, reopen it",
    ),
    "record_outcome": (
        "the call worked", "the email failed", "it worked", "they replied", "no reply yet, it failed",
        "they answered and agreed to a meeting", "nobody picked up", "no answer, I left a voicemail",
        "she got back to me the next morning", "they said yes to the proposal", "the email bounced",
        "they said no", "he ignored the email", "did it, they responded well", "the proposal landed",
        "done, no response", "sent it and they replied", "called them, they were interested",
        "it went nowhere", "record the outcome: success", "they never got back to us",
        "the follow up paid off", "tried that, didn't work",
        "they booked a meeting after the call", "the email got a positive reply", "he hung up on me",
    ),
    "start_experiment": (
        "start an experiment cadence vs ppo", "launch an a/b test of the bandit against the policy",
        "set up a test comparing the champion and the challenger on deals", "let's try ppo versus cadence",
        "create an experiment: heuristic against champion, win rate as the metric",
        "run a split test between the two policies", "begin testing the bandit against cadence per contact",
        "compare the challenger with the champion in an experiment", "kick off an a/b test",
        "test ppo against the bandit on deals", "new experiment: cadence versus policy",
    ),
    "read_experiment": (
        "how is the experiment doing", "experiment results", "how's the test going", "show the a/b test report",
        "which experiments are running", "list my experiments", "any results from the test yet",
        "is the experiment significant", "how are my tests performing", "who is winning the experiment",
        "report on the experiment", "how is it going so far", "what experiments do we have",
        "how's the test looking", "latest numbers on the experiment",
        "did the experiment find a winner", "show experiment results",
    ),
    "prepare": (
        "prepare me for my call with Acme", "get me ready for the meeting with Acme", "prep for the Acme demo",
        "brief me before my call with them", "I have a meeting with Acme tomorrow, prepare me",
        "help me prepare for Acme", "what do I need to know before calling Acme", "meeting prep for Acme",
        "I'm meeting Acme later, get me ready", "briefing pack for my Acme call",
    ),
    "triage": (
        "which of my hot leads haven't heard from us in two weeks and what should I do with each",
        "warm leads we have not contacted in a month, what to do with them",
        "hot deals nobody touched in 10 days and the next step for each",
        "leads in retail that went quiet for three weeks, and what do I do about each one",
        "which contacts have we ignored for 30 days, what should we do with each",
        "triage my untouched hot leads", "neglected leads this month and an action for every one",
        "which deals have gone cold for two weeks and what next for each",
        "leads nobody has called in a month, and what should I do about them",
    ),
    "refine": (
        "only the ones in fintech", "just the big ones", "sort by value", "largest ones on top", "what about last year",
        "and the month prior", "which of them are over 10k", "which of those are in EMEA", "only mine",
        "keep the ones closing this month", "order them by close date", "just the open ones",
        "same but for last quarter", "filter to healthcare", "those in Europe only", "rank them by size",
        "how about the month before", "only the hot ones", "the smallest first",
    ),
    "confirm": (
        "yes", "yes please", "go ahead", "do it", "confirmed", "sure, go for it", "that's right, proceed",
        "ok do it", "yep, save it", "absolutely", "fine by me, write it", "correct, go on", "ship it", "approved",
        "make it so", "send it through", "commit it", "that's fine, save",
    ),
    "cancel": (
        "no", "cancel", "don't", "never mind", "scrap it", "forget it", "actually no", "stop, don't do that",
        "hold on, cancel that", "leave it", "wait no", "not now", "drop it", "undo that, don't save",
        "no thanks", "on second thought, don't",
    ),
    "help": (
        "help", "what can you do", "what can I ask", "show me the commands", "how do I use this",
        "what are you able to do", "examples please", "what kind of questions can I ask you", "options",
        "what do you support", "list what you can do", "give me some example requests",
    ),
    "pick": (
        "the second one", "the first", "number 3", "option two", "the last one", "the top one", "I mean the third",
        "go with the first one", "2", "that second option",
    ),
    "question": (
        "open deals in fintech", "how many contacts do we have in EMEA", "deals won last quarter",
        "top 10 deals by value", "leads created this month", "what is our win rate", "total pipeline value",
        "which companies are in healthcare", "deals closing next month over 50k", "list all lost deals",
        "contacts at Acme", "open deals of Acme", "who works at Acme", "average deal size by owner",
        "how many deals did Sam win this year", "companies in the retail industry", "activities last week",
        "deals in negotiation", "revenue by region", "number of open opportunities",
        "which deals are stuck in proposal", "new leads in Europe", "biggest deals this year",
        "how much did we close in Q2",
    ),
    "out_of_scope": (
        "book a flight to Berlin", "what's the weather tomorrow", "order lunch for the team",
        "reserve a conference room for Friday", "set an alarm for 7", "put on a song", "tell me a joke",
        "translate this to French", "who won the football game", "schedule my dentist appointment",
        "buy more printer paper", "turn off the lights", "what's the capital of France",
        "remind me to pick up the kids", "set a reminder for my dentist", "call a taxi", "what time is it",
        "send a birthday card to my mother",
    ),
}  # fmt: skip
# Words that are strong evidence of an intent wherever they stand in a turn (lexical features added to the
# meaning score by ``understand.rank``): the vocabulary of each request, not sentences.
CUES: dict[str, tuple[str, ...]] = {
    "details": (
        "details", "more about", "more on", "tell me about", "know about", "info on", "information on",
        "profile", "phone", "phone number", "email address", "contact info", "activity history", "timeline",
        "what company", "which company", "which account", "who is the contact", "who's the contact",
    ),
    "summarize": (
        "tl;dr", "tldr", "summary", "summarize", "summarise", "sum up", "gist", "nutshell", "recap", "rundown",
        "overview", "highlights", "the latest", "catch me up", "catch up", "short version", "brief me on",
    ),
    "next_action": (
        "next step", "next move", "next action", "best move", "should i do", "should we do", "recommend",
        "suggest", "approach",
    ),
    "explain_score": ("score", "scored", "scoring", "rated", "rating", "why is", "why are"),
    "similar": ("similar", "lookalike", "lookalikes", "resembl", "comparable", "looks like", "others like", "like"),
    "search": (
        "mention", "mentions", "mentioning", "mentioned", "talk about", "talked about", "discussing",
        "search", "anything about", "notes about", "referring to",
    ),
    "draft_email": ("draft", "compose", "write an email", "write them", "write her", "write him", "email to"),
    "log_note": (
        "log", "note that", "note:", "jot", "write down", "add a note", "record a call", "record a meeting",
        "record that", "to the notes", "memo",
    ),
    "close_deal": ("won", "lost", "close it", "close the deal", "closed won", "closed lost"),
    "reopen_deal": ("reopen", "re-open", "revive", "back to open", "open again"),
    "record_outcome": (
        "worked", "replied", "responded", "no answer", "no reply", "no response", "voicemail", "bounced",
        "said yes", "said no", "got back", "didn't work", "went nowhere", "ignored",
    ),
    "start_experiment": ("a/b", "experiment", "split test", "versus", " vs ", "against"),
    "read_experiment": ("experiment", "experiments", "a/b test", "a/b tests", "test results", "so far"),
    "prepare": ("prep", "prepare", "get me ready", "before my call", "before my meeting", "before the call"),
    "triage": (
        "haven't heard", "havent heard", "not heard", "not contacted", "nobody has contacted", "untouched",
        "gone quiet", "went quiet", "neglected", "each", "each one", "every one", "haven't been", "havent been",
        "no one has", "not been", "not touched", "haven't touched", "havent touched", "triage",
    ),
    "help": ("help", "what can you", "what can i", "commands", "how do i use"),
    "cancel": ("cancel", "scrap", "never mind", "nevermind", "forget it", "don't", "do not", "hold on"),
    "confirm": ("yes", "go ahead", "do it", "confirm", "proceed"),
    "question": (
        "how many", "count", "total", "average", "sum of", "list", "which deals", "which contacts",
        "which companies", "top", "by region", "by owner", "per ",
    ),
    "out_of_scope": (
        "book", "reserve", "flight", "hotel", "taxi", "weather", "lunch", "dinner", "music", "song", "joke",
        "translate", "alarm", "timer", "meeting room", "conference room", "restaurant", "buy", "order",
    ),
}  # fmt: skip
