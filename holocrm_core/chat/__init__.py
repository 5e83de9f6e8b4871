"""The conversational assistant (`holocrm chat`, ``POST /api/chat``): turns in, catalogue intents out.

``catalogue`` (the intents, as data), ``data`` (what it reads), ``engine`` (the session: context, pending
choices and writes, the trace, its state), and the intents by kind: ``reading``, ``questions``, ``writes``,
``weave`` (woven requests), ``experiment_intents``; ``understand`` reads what no pattern matches (follow-ups,
clauses, the catalogue's exemplars by meaning with the packaged MiniLM, names and arguments spotted anywhere);
``sessions`` keeps conversations between turns. No LLM: patterns, exemplars, fuzzy names and the NL question
layer.
"""

from holocrm_core.chat.catalogue import CATALOGUE, classify
from holocrm_core.chat.data import ChatData, Rec
from holocrm_core.chat.engine import ChatSession

__all__ = ["CATALOGUE", "ChatData", "ChatSession", "Rec", "classify"]
