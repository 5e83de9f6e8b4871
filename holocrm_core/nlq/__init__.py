"""Natural-language questions over the CRM: parser -> typed plan -> polars executor -> answer with trace.

from holocrm_core.nlq import NLQContext, ask
ctx = NLQContext.from_warehouse(Warehouse(paths.warehouse))     # once: tables + the nlq_vocabulary artifact
answer = ask("won deals over $5k in fintech last quarter", ctx, as_of="2026-10-31")
answer.rows, answer.plan_words(), answer.trace, answer.high_confidence

Clarification (for a chat assistant or any client): an answer that is not high-confidence carries
`answer.readings`, each itself an Answer (its question, plan_words(), value, ids, confidence), in order; a
client shows `answer.to_json()["readings"]` (pick, question, plan_words, value, record_count) and answers the
asker's choice with `answer.readings[n - 1]`. Business words come from the semantic layer
(holocrm_core.metrics; `NLQContext(..., semantic=layer)`, or the pipeline's semantic_layer.json through
`NLQContext.from_warehouse`).
"""

from holocrm_core.nlq.answer import HIGH_CONFIDENCE, VOCABULARY_FILE, Answer, NLQContext, ask, load_vocabulary
from holocrm_core.nlq.errors import QuestionError
from holocrm_core.nlq.plan import Plan
from holocrm_core.nlq.vocabulary import Vocabulary

__all__ = [
    "HIGH_CONFIDENCE",
    "VOCABULARY_FILE",
    "Answer",
    "NLQContext",
    "Plan",
    "QuestionError",
    "Vocabulary",
    "ask",
    "load_vocabulary",
]
