"""`holocrm` command line: one typer app; each domain registers its commands from its own module.

Heavy imports (torch, lancedb, mlflow, dagster) stay inside the command functions so `holocrm --help`
answers at once. A failure prints one line naming its cause and exits non-zero; the traceback and
third-party warnings (MLflow, Dagster, onnxruntime) show only with `holocrm --verbose ...` (or
HOLOCRM_VERBOSE=1).
"""

from __future__ import annotations

import os
import sys

import typer

from holocrm_cli.output import quiet_third_parties

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
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
os.environ.setdefault("LANCEDB_LOG", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@app.callback()
def _options(
    verbose: bool = typer.Option(
        False, "--verbose", help="show tracebacks and third-party warnings (also HOLOCRM_VERBOSE=1)"
    ),
) -> None:
    if verbose:
        os.environ["HOLOCRM_VERBOSE"] = "1"
    quiet_third_parties()  # nothing when verbose


# One module per domain, each defining `register(app)`; imported by name so a typo fails loudly. They import
# only typer at top level (heavy imports live inside the commands), so this stays fast.
from holocrm_cli import (  # noqa: E402
    chat,
    decisions,
    experiments,
    field,
    metrics,
    monitor,
    nlq,
    pipeline,
    rl,
    scoring,
    semantic,
    serve,
)

COMMAND_MODULES = [
    pipeline,
    semantic,
    scoring,
    nlq,
    metrics,
    serve,
    rl,
    decisions,
    monitor,
    experiments,
    field,
    chat,
]
for _module in COMMAND_MODULES:
    _module.register(app)


def main() -> None:
    """Run the CLI; an unexpected error is one line on stderr (its traceback with --verbose) and exit 1."""
    try:
        app()
    except Exception as exc:  # noqa: BLE001 - the last line of defence: a person reads this, not a log
        if os.environ.get("HOLOCRM_VERBOSE", "") not in ("", "0") or "--verbose" in sys.argv[1:]:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        typer.echo(
            f"error: {type(exc).__name__}: {message[:300]} (run with --verbose for the traceback)", err=True
        )
        sys.exit(1)
