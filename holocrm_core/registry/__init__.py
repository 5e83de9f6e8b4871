"""The served-model contract: one gate, one resolver of what is served, one verdict line.

``store`` (names, tags, the MLflow store), ``gate`` (the judgement, pure figures), ``evidence`` (what the
gate is shown, the champion only on rows it never saw), ``tracking`` (a training round in MLflow:
registration of what is served) and ``served`` (the resolver the pipeline, the CLI and the API ask).
Scoring, decisions and RL supply their payload and verdict; the tag names are defined once, in ``store``.
"""

from holocrm_core.registry.gate import (
    CHAMPION_TOLERANCE,
    LOGISTIC_TOLERANCE,
    MAX_GATE_ECE,
    GateEvidence,
    Verdict,
    judge,
)
from holocrm_core.registry.served import (
    ServedChoice,
    heuristic_scorer,
    load_served,
    nothing_registered_line,
    resolve,
    scorer_in_use,
    verdict_lines,
)
from holocrm_core.registry.store import (
    CHALLENGER,
    CHAMPION,
    DEAL_MODEL,
    FAILED,
    GATE_REASON_TAG,
    GATE_TAG,
    LEAD_MODEL,
    MODEL_NAMES,
    PASSED,
    RECIPE_TAG,
    ROLE_TAG,
    SERVED_ANYWAY,
    SERVED_TAG,
    TRAINED_UNTIL_TAG,
    VERDICT_TAG,
    champion_version,
    configure,
    ensure_experiment,
    gate_passed,
    load_champion,
    model_tags,
    pip_requirements,
    run_url,
)
from holocrm_core.registry.tracking import RegistrationResult, comparison_json, log_training

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "CHAMPION_TOLERANCE",
    "DEAL_MODEL",
    "FAILED",
    "GATE_REASON_TAG",
    "GATE_TAG",
    "LEAD_MODEL",
    "LOGISTIC_TOLERANCE",
    "MAX_GATE_ECE",
    "MODEL_NAMES",
    "PASSED",
    "RECIPE_TAG",
    "ROLE_TAG",
    "SERVED_ANYWAY",
    "SERVED_TAG",
    "TRAINED_UNTIL_TAG",
    "VERDICT_TAG",
    "GateEvidence",
    "RegistrationResult",
    "ServedChoice",
    "Verdict",
    "champion_version",
    "comparison_json",
    "configure",
    "ensure_experiment",
    "gate_passed",
    "heuristic_scorer",
    "judge",
    "load_champion",
    "load_served",
    "log_training",
    "model_tags",
    "nothing_registered_line",
    "pip_requirements",
    "resolve",
    "run_url",
    "scorer_in_use",
    "verdict_lines",
]
