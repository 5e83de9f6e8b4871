"""`holocrm` command line: one typer app; each domain registers its commands from its own module.

Heavy imports (torch, lancedb, mlflow, dagster) stay inside the command functions so `holocrm --help`
answers at once.
"""

from __future__ import annotations

import importlib
import os

import typer

app = typer.Typer(
    name="holocrm",
    help="HoloCRM: CRM exports -> canonical tables, embeddings, search, scores, NL questions, serving.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Modules under holocrm_cli/ that define `register(app)`.
COMMAND_MODULES = ["pipeline", "semantic", "scoring", "nlq", "serve", "rl"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("LANCEDB_LOG", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"holocrm_cli.{_name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"holocrm_cli.{_name}":
            raise
        continue
    _module.register(app)


def main() -> None:
    app()
