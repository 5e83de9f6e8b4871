"""The functions the CLI and the API both call for search, similar records, duplicates and questions: one
answer (or one refusal) at every door. Plain Python: no web or CLI framework is imported here."""

from holocrm_core.services.duplicates import duplicate_page, ranked_pairs
from holocrm_core.services.jsonable import jsonable
from holocrm_core.services.labels import RecordLabels
from holocrm_core.services.questions import answer_question, cannot_run, not_understood
from holocrm_core.services.refusal import Refusal
from holocrm_core.services.semantic import search_records, similar_records

__all__ = [
    "RecordLabels",
    "Refusal",
    "answer_question",
    "cannot_run",
    "duplicate_page",
    "jsonable",
    "not_understood",
    "ranked_pairs",
    "search_records",
    "similar_records",
]
