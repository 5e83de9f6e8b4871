"""The grammar's word tables: stopwords, field words, entity nouns, group and sort keys, confidence factors."""

from __future__ import annotations

import re

from holocrm_core.nlq.meaning import NEGATION_WORDS
from holocrm_core.schema import ENTITIES as SCHEMA_ENTITIES

# "top 99999999999999999999": as many as there are, not an overflow.
MAX_LIMIT = 1_000_000
# Two readings of a word equally good: the answer may be about the other one.
AMBIGUOUS_CONFIDENCE = 0.75
# Filters that exclude each other ("engaging" and "lost"): the plan is certainly not what was meant.
CONTRADICTION_CONFIDENCE = 0.3
# A corrected typo is a guess: one keeps an answer high-confidence, two do not.
TYPO_CONFIDENCE = 0.88
# Words that carry no meaning of their own in a CRM question.
STOPWORDS = set(
    ["a", "an", "the", "and", "or", "of", "in", "on", "at", "to", "for", "from", "by", "with", "who", "whom", "which", "that", "what", "when", "where", "whose", "is", "are", "was", "were", "be", "been", "being", "have", "has", "had", "do", "does", "did", "show", "me", "list", "find", "get", "give", "all", "any", "some", "my", "our", "their", "its", "this", "these", "those", "there", "here", "it", "them", "they", "we", "i", "you", "your", "us", "please", "can", "could", "would", "will", "shall", "should", "tell", "see", "display", "return", "fetch", "pull", "up", "out", "just", "only", "also", "currently", "now", "still", "ones", "one", "records", "record", "rows", "entries", "there's", "what's", "whats", "who's", "which're", "let", "lets", "let's", "need", "want", "looking", "look", "for", "into", "as", "so", "then", "than", "were", "any", "such", "same", "worth", "owned", "owns", "own", "assigned", "handled", "managed", "belonging", "belong", "having", "got", "getting", "made", "make", "makes", "each", "every", "per", "within", "how", "many", "much", "currently", "working", "work", "works", "employed", "selling", "sell", "sells", "sold", "came", "come", "comes", "coming", "originated", "employing", "based", "located", "headquartered", "situated", "hq", "doing", "performing", "faring", "tracking"]
)  # fmt: skip
# Words that name a field; harmless next to a value ("technology sector", "negotiation stage").
FIELD_WORDS = set(
    ["sector", "sectors", "industry", "industries", "vertical", "verticals", "space", "stage", "stages", "phase", "status", "statuses", "region", "regions", "territory", "territories", "country", "countries", "product", "products", "band", "bands", "size", "segment", "segments", "level", "levels", "seniority", "type", "types", "owner", "owners", "rep", "reps", "named", "called", "value", "values", "amount", "amounts", "deal-size", "lifecycle", "category", "market", "markets", "city", "cities", "currency", "team", "teams"]
)  # fmt: skip

ENTITY_NOUNS = [
    (
        r"contacts?|leads?|people|persons?|prospects?|buyers?|decision[- ]makers?|stakeholders?|champions?|individuals",
        "contacts",
    ),
    (r"customers?|clients?", "contacts"),
    (
        r"compan(?:y|ies)|accounts?|organi[sz]ations?|orgs?|firms?|businesses|business|logos?|enterprises",
        "companies",
    ),
    (r"deals?|opportunit(?:y|ies)|opps?|opptys?|pipeline|contracts?|sales", "deals"),
    (
        r"activit(?:y|ies)|interactions?|touchpoints?|touches|engagements?|emails?|calls?|meetings?|notes?",
        "activities",
    ),
]
_ACTIVITY_TYPE_WORDS = {
    "email": "email", "emails": "email", "emailed": "email", "mail": "email", "e-mail": "email", "e-mailed": "email",
    "call": "call", "calls": "call", "called": "call", "phoned": "call", "rang": "call",
    "meeting": "meeting", "meetings": "meeting", "met": "meeting", "met with": "meeting",
    "note": "note", "notes": "note",
}  # fmt: skip
_ACT_ANY = r"contact(?:ed)?|touch(?:ed|es)?|touchpoints?|reached(?: out(?: to)?)?|engaged|engagement|activit(?:y|ies)|interactions?|outreach|follow[- ]?ups?|followed up(?: with)?|in touch|heard from"
_ACT_TYPED = r"e-?mail(?:s|ed)?|mail(?:s|ed)?|calls?|called|phoned|rang|meetings?|met(?: with)?|notes?"
_NEGATION_BEFORE = re.compile(
    r"(?:\bnot\s+(?:in\s+|from\s+|at\s+)?|\bnon[- ]?|\bexcluding\s+|\bexcept(?:\s+for)?\s+|\bother than\s+|\boutside(?:\s+of)?(?:\s+the)?\s+|\bbut not\s+(?:in\s+)?|\bwithout\s+)$"
)
_GROUP_FIELDS = {
    "stage": ("deals", "stage"), "stages": ("deals", "stage"),
    "owner": ("*", "owner"), "owners": ("*", "owner"), "rep": ("*", "owner"), "reps": ("*", "owner"),
    "sales rep": ("*", "owner"), "agent": ("*", "owner"), "sales agent": ("*", "owner"), "salesperson": ("*", "owner"),
    "industry": ("companies", "industry"), "sector": ("companies", "industry"), "vertical": ("companies", "industry"),
    "product": ("deals", "product"), "region": ("companies", "region"), "country": ("companies", "country"),
    "size": ("companies", "size_band"), "size band": ("companies", "size_band"), "segment": ("companies", "size_band"),
    "seniority": ("contacts", "seniority"), "status": ("contacts", "lifecycle_status"),
    "lifecycle": ("contacts", "lifecycle_status"), "type": ("activities", "type"), "activity type": ("activities", "type"),
    "direction": ("activities", "direction"), "company": ("*", "company_id"), "account": ("*", "company_id"),
    "currency": ("deals", "currency"),
}  # fmt: skip
_GROUP_MEASURES = {  # company measure -> (aggregate over the group's deals, stage restriction)
    "won_value": ("sum", "won"), "open_pipeline": ("sum", "open"), "lost_value": ("sum", "lost"),
    "deal_value": ("sum", None), "deal_count": ("count", None), "won_deal_count": ("count", "won"),
    "open_deal_count": ("count", "open"), "lost_deal_count": ("count", "lost"),
}  # fmt: skip
_GROUP_NOUNS = {  # "top 5 owners by won deals": the noun is a group of deals
    "owners": "owner", "reps": "owner", "sales reps": "owner", "agents": "owner", "sales agents": "owner",
    "salespeople": "owner", "sellers": "owner", "products": "product", "industries": "industry",
    "sectors": "industry", "regions": "region", "stages": "stage",
}  # fmt: skip
# "by X" as an ordering: key -> (is_measure, key)
_SORT_KEYS = [
    (r"(?:open\s+)?pipeline(?:\s+value)?", (True, "open_pipeline")),
    (
        r"won\s+(?:revenue|value|amount|deal value)|revenue\s+won|closed[- ]won\s+(?:revenue|value)|wins?\s+value",
        (True, "won_value"),
    ),
    (r"(?:number of\s+)?won deals|wins|deals won", (True, "won_deal_count")),
    (r"(?:number of\s+)?open deals", (True, "open_deal_count")),
    (r"(?:number of\s+|count of\s+)?deals|deal count", (True, "deal_count")),
    (r"(?:number of\s+)?contacts", (True, "contact_count")),
    (r"(?:number of\s+)?activit(?:y|ies)", (True, "activity_count")),
    (r"(?:annual\s+)?revenue|turnover", (False, "annual_revenue")),
    (r"employees|headcount|employee count|staff|company size", (False, "employees")),
    (r"(?:deal\s+)?(?:value|amount|size)|price", (False, "value")),
    (r"(?:lead\s+)?score", (False, "score")),
    (r"close date|closing date|expected close(?: date)?", (False, "expected_close_at")),
    (r"(?:creation date|created(?: date)?|date created|date added|age)", (False, "created_at")),
    (r"last activity|recent activity|recency|date", (False, "_recency")),
]


# Words a suggested rephrasing may never drop: without them the question means the opposite.
_NEGATION_WORDS = NEGATION_WORDS
# Words that end a record name after "like" / "subsidiaries of".
_NAME_STOP = {"in", "at", "from", "with", "who", "that", "which", "over", "under", "but", "and", "whose", "where", "not",
              "founded", "established", "based", "created", "since", "before", "after"}  # fmt: skip
# "5 companies like X": a leading count of the records asked for.
_LEADING_COUNT = re.compile(
    r"^(?:(?:show|list|give|find|get|pull)\s+(?:me\s+|us\s+)?)?(?:the\s+)?(?P<n>\d{1,3})\s+(?=(?:[a-z]+\s+)?(?:"
    + "|".join(p for p, _ in ENTITY_NOUNS)
    + r")\b)(?!(?:days?|weeks?|months?|years?)\b)"
)
# Clauses that name what activities talked about without a "mentioned" verb: "where price was the problem",
# "lost because of the budget freeze", "with objections about security".
_FREE_TEXT_CLAUSE = re.compile(
    r"\bwhere\s+(?P<t>[a-z0-9 ]+?)\s+(?:was|were|is|are|became)\s+(?:the\s+|an?\s+)?(?:main\s+|big\s+|real\s+|key\s+)?"
    r"(?:problem|issue|concern|objection|blocker|sticking point|reason|topic|question)s?\b"
    r"|\b(?:because of|due to(?!\s+(?:close|closing|renew|sign|expire|be|end|start)\b)|citing|cited|over concerns? (?:about|over)|with (?:concerns?|complaints?|objections?|"
    r"worries|questions) (?:about|over|on|regarding))\s+(?P<t2>[a-z0-9 ]+?)\s*$"
)
# Verbs that date a record's own creation or update; never stage words.
_DATE_VERBS = {"created", "added", "opened", "entered", "started", "engaged", "joined", "logged", "imported", "updated",
               "modified", "changed", "edited", "new"}  # fmt: skip
# Words that name a column whose emptiness a question may ask about ("deals with no account").
NULL_FIELD_WORDS = {
    "account": "company_id", "company": "company_id", "organisation": "company_id", "organization": "company_id",
    "contact": "contact_id", "contact person": "contact_id", "owner": "owner", "rep": "owner", "product": "product",
    "close date": "expected_close_at", "expected close date": "expected_close_at", "email": "email",
    "email address": "email", "phone": "phone", "phone number": "phone", "industry": "industry", "title": "title",
    "job title": "title", "value": "value", "amount": "value", "parent": "parent_company_id",
    "parent company": "parent_company_id", "domain": "domain", "website": "domain", "country": "country",
    "region": "region", "city": "city", "seniority": "seniority",
}  # fmt: skip
ENTITY_COLUMNS = {entity: set(columns) for entity, columns in SCHEMA_ENTITIES.items()}
