"""`holocrm` command line: one typer app; each domain registers its commands from its own module.

Heavy imports (torch, lancedb, mlflow, dagster) stay inside the command functions so `holocrm --help`
answers at once.
"""

from __future__ import annotations

import os

import typer

app = typer.Typer(
    name="holocrm",
    help="HoloCRM: CRM exports -> canonical tables, embeddings, search, scores, NL questions, serving.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("LANCEDB_LOG", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

# One module per domain, each defining `register(app)`; imported by name so a typo fails loudly. They import
# only typer at top level (heavy imports live inside the commands), so this stays fast.
from holocrm_cli import decisions, experiments, field, nlq, pipeline, rl, scoring, semantic, serve  # noqa: E402

COMMAND_MODULES = [pipeline, semantic, scoring, nlq, serve, rl, decisions, experiments, field]
for _module in COMMAND_MODULES:
    _module.register(app)


def main() -> None:
    app()
