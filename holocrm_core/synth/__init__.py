"""Sample CRM export generator with a hidden ground truth (the embedded default data set).

``generate_export`` writes companies, contacts, deals, activities and attachments in the generic export
format plus a separate truth folder (true conversion and win probabilities, outcomes, planted duplicates,
dirty rows with their line numbers, the outreach response model); ``load_truth`` reads the truth back;
``action_response_probability`` is the true response model of outreach actions.
"""

from holocrm_core.synth.generator import DEFAULT_AS_OF, SynthSummary, generate_export, load_truth
from holocrm_core.synth.response import ACTIONS, action_response_grid, action_response_probability

__all__ = [
    "ACTIONS",
    "DEFAULT_AS_OF",
    "SynthSummary",
    "action_response_grid",
    "action_response_probability",
    "generate_export",
    "load_truth",
]
