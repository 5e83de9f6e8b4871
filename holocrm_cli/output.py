"""What the CLI prints: tables a person reads (cells never cut), and failures as one line with a non-zero exit.

Standard library and typer only, so importing it costs nothing.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from typing import Any

import typer

CELL_CHARS = 400  # a cell longer than this wraps onto the next lines of its column, it is never cut
MAX_WIDTH = 160
_ORIGINAL_SHOWWARNING = warnings.showwarning


def fail(message: str, code: int = 1) -> None:
    """One line on stderr naming the cause, then exit ``code`` (2: input to correct; 1: anything else)."""
    line = " ".join(str(message).split())
    typer.echo(line if line.startswith("error:") else f"error: {line}", err=True)
    raise typer.Exit(code)


def refuse(exc) -> None:
    """A service ``Refusal`` or a client ``ServerError``, as one line and its exit code."""
    code = getattr(exc, "exit_code", None)
    if code is None:  # ServerError: the server's status says whose fault it is
        status = getattr(exc, "status", None)
        code = 2 if status in (400, 413, 422) else 1
    fail(getattr(exc, "message", None) or str(exc), code)


def verbose_requested() -> bool:
    return os.environ.get("HOLOCRM_VERBOSE", "") not in ("", "0")


def _drop_warning(*args, **kwargs) -> None:
    """``warnings.showwarning`` when not verbose: warnings are not printed."""


def quiet_third_parties() -> None:
    """No third-party warnings or info logs on stderr by default (MLflow's are ANSI-coloured)."""
    if verbose_requested():
        return
    import logging

    warnings.filterwarnings("ignore")
    # MLflow re-enables its UserWarnings inside log_model (warnings.catch_warnings + "once"): whatever the
    # filters say, nothing is shown unless verbose
    warnings.showwarning = _drop_warning
    os.environ.setdefault("PYTHONWARNINGS", "ignore")  # worker processes (Dagster steps) too
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("ORT_LOGGING_LEVEL", "3")
    for name in ("mlflow", "alembic", "dagster", "urllib3", "sentence_transformers", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)


def show_third_parties() -> None:
    """A command's own --verbose: warnings and info logs shown again."""
    import logging

    os.environ["HOLOCRM_VERBOSE"] = "1"
    warnings.resetwarnings()
    warnings.showwarning = _ORIGINAL_SHOWWARNING
    for name in ("mlflow", "alembic", "dagster", "urllib3", "sentence_transformers", "transformers"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, default=str, indent=2))


ISO_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(:\d{2}(\.\d+)?)?(\+00:00|Z)?$")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str) and (match := ISO_TIME.match(value)):  # UTC times, to the minute
        return f"{match.group(1)} {match.group(2)}"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 1e15 else f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_cell(v)}" for k, v in value.items())
    return " ".join(str(value).split())


def _wrap(text: str, width: int) -> list[str]:
    text = text[:CELL_CHARS] + ("..." if len(text) > CELL_CHARS else "")
    if len(text) <= width:
        return [text]
    lines, line = [], ""
    for word in text.split(" "):
        while len(word) > width:  # a single long word (a URL): split it
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:width])
            word = word[width:]
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return lines


def table(rows: list[dict], columns: list[str] | None = None, max_width: int = MAX_WIDTH) -> str:
    """Rows as an aligned text table; long cells wrap within their column rather than being cut."""
    if not rows:
        return ""
    columns = columns or list(dict.fromkeys(k for row in rows for k in row))
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    # a column never narrower than its longest word (up to 30): only running text wraps
    floors = [
        min(30, max([len(c)] + [len(w) for r in cells for w in r[i].split()])) for i, c in enumerate(columns)
    ]
    # share the width: the widest columns that can wrap give way first
    while sum(widths) + 2 * (len(widths) - 1) > max_width:
        shrinkable = [i for i, w in enumerate(widths) if w > floors[i]]
        if not shrinkable:
            break
        widest = max(shrinkable, key=lambda i: widths[i])
        widths[widest] = max(floors[widest], widths[widest] - 8)
    lines = [
        "  ".join(
            c.ljust(w)[:w] if len(c) <= w else c[:w] for c, w in zip(columns, widths, strict=False)
        ).rstrip()
    ]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        wrapped = [_wrap(text, w) for text, w in zip(row, widths, strict=False)]
        for n in range(max(len(w) for w in wrapped)):
            parts = [
                (w[n] if n < len(w) else "").ljust(width) for w, width in zip(wrapped, widths, strict=False)
            ]
            lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)
