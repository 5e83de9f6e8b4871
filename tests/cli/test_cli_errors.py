"""Every CLI failure names its cause in one line and exits non-zero; tracebacks only with --verbose."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import holocrm_cli
from holocrm_cli import app
from holocrm_cli.output import table

runner = CliRunner()


@pytest.fixture
def empty_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOLOCRM_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HOLOCRM_SERVER", raising=False)
    export = tmp_path / "export"
    export.mkdir()
    (export / "contacts.csv").write_text("contact_id,full_name\nc1,Ann Lee\n")
    return export


def _one_error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output and "DagsterExecutionStepExecutionError" not in result.output
    return lines[0]


@pytest.mark.parametrize(
    "args, cause",
    [
        (["run", "--export", "{export}", "--profile", "salesfarce"], "unknown source profile 'salesfarce'"),
        (
            ["run", "--export", "{export}", "--mapping", "{export}/missing.yaml"],
            "missing.yaml does not exist",
        ),
        (["ingest", "{export}", "--profile", "salesfarce"], "unknown source profile 'salesfarce'"),
        (["ingest", "{export}", "--mapping", "{export}/contacts.csv"], "mapping file"),
        (["search", ""], "the search text is empty"),
        (["search", "x", "--mode", "psychic"], "unknown search mode 'psychic'"),
        (["duplicates", "--limit", "500"], "limit must be a whole number from 1 to 100"),
        (["similar", "unicorn", "u1"], "unknown entity type 'unicorn'"),
        (["ask", "  "], "the question is empty"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(empty_home, args, cause):
    result = runner.invoke(app, [a.format(export=empty_home) for a in args])
    assert result.exit_code == 2, result.output
    assert cause in _one_error_line(result)


@pytest.mark.parametrize(
    "args, cause",
    [
        (["similar", "contact", "c1"], "holocrm run"),
        (["search", "renewal"], "holocrm run"),
        (["duplicates"], "holocrm run"),
        (["ask", "open deals"], "holocrm run"),
    ],
)
def test_nothing_built_yet_says_what_to_run(empty_home, args, cause):
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert cause in _one_error_line(result)


def test_an_unexpected_error_is_one_line_unless_verbose(monkeypatch, capsys):
    def broken():
        raise RuntimeError("the disk\nis full")

    monkeypatch.setattr(holocrm_cli, "app", broken)
    monkeypatch.delenv("HOLOCRM_VERBOSE", raising=False)
    monkeypatch.setattr("sys.argv", ["holocrm", "run"])
    with pytest.raises(SystemExit) as stopped:
        holocrm_cli.main()
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert err.strip() == "error: RuntimeError: the disk is full (run with --verbose for the traceback)"
    monkeypatch.setattr("sys.argv", ["holocrm", "--verbose", "run"])
    with pytest.raises(RuntimeError):
        holocrm_cli.main()


def test_tables_wrap_long_cells_instead_of_cutting_them():
    long_title = (
        "Enterprise License renewal for Harborhaven Manufacturing LLC, with support and training " * 2
    )
    text = table(
        [{"deal_id": "D1", "title": long_title, "created_at": "2026-01-25T16:16:00+00:00"}], max_width=80
    )
    assert all(len(line) <= 80 for line in text.splitlines())
    assert " ".join(text.split()).count("Harborhaven") == 2  # every word is there, wrapped
    assert "2026-01-25 16:16" in text


WARN_LIKE_MLFLOW = """
import warnings
from holocrm_cli.output import quiet_third_parties, show_third_parties
quiet_third_parties()
with warnings.catch_warnings():  # what MLflow does inside log_model
    warnings.simplefilter("once", category=UserWarning)
    warnings.warn("\x1b[33mAdd type hints to the predict method\x1b[0m", UserWarning)
import sys; print("--", file=sys.stderr, flush=True)
show_third_parties()
warnings.warn("shown with --verbose", UserWarning)
"""


def test_third_party_warnings_are_silent_unless_verbose():
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop("HOLOCRM_VERBOSE", None)
    env.pop("PYTHONWARNINGS", None)
    done = subprocess.run([sys.executable, "-c", WARN_LIKE_MLFLOW], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    quiet, verbose = done.stderr.split("--\n", 1)
    assert quiet == "" and "shown with --verbose" in verbose


def test_a_failed_step_is_reported_by_its_innermost_cause():
    from dagster._utils.error import SerializableErrorInfo

    from pipelines.runner import _root_cause

    cause = SerializableErrorInfo("ValueError: unknown source profile 'salesfarce'\n", [], "ValueError")
    wrapper = SerializableErrorInfo(
        'Error occurred while executing op "raw_export":\n', [], "DagsterExecutionStepExecutionError", cause
    )
    assert _root_cause(wrapper) == "ValueError: unknown source profile 'salesfarce'"
