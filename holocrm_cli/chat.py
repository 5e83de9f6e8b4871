"""`holocrm chat`: the conversational assistant in a terminal, or a script of turns (`--script FILE --json`).

Every turn is read by ``holocrm_core.chat`` (catalogue intents, the NL question layer, the decision service).
Writes are previewed and made only after "yes" (or `--yes`); a made write is appended here, at the door, to
the same durable logs the API writes: deal closes to HOLOCRM_HOME/logs/outcomes.ndjson (checked against the
deal's state under the log's lock) with reopenings, action outcomes to HOLOCRM_HOME/logs/actions.ndjson,
notes to HOLOCRM_HOME/logs/notes.ndjson, experiments to the experiment store.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from pathlib import Path

import typer

TABLES = (
    "staged_companies",
    "staged_contacts",
    "staged_deals",
    "staged_activities",
    "staged_attachments",
    "attachment_texts",  # what the attachments say, shown under their activity in a timeline
    "scored_leads",
    "scored_deals",
)
HISTORY = ".chat_history"


class _LazyStore:
    """The LanceDB similarity store, opened (with its embedding model) on the first search or similar."""

    def __init__(self, uri: str):
        self.uri = uri
        self._store = None

    def __getattr__(self, name):
        if self._store is None:
            from holocrm_core.store import SimilarityStore

            self._store = SimilarityStore(self.uri)
        return getattr(self._store, name)


def chat_data(paths=None, as_of=None):
    """The assistant's data over HOLOCRM_HOME: staged tables, scores, the outcome log's deal states; the NL
    context, similarity store and decision service opened on first use."""
    from holocrm_api.outcome_log import read_log
    from holocrm_core.chat import ChatData
    from holocrm_core.settings import HoloPaths, lancedb_built, lancedb_uri, warehouse_root
    from holocrm_core.warehouse import Warehouse

    paths = paths or HoloPaths.default()
    warehouse = Warehouse(warehouse_root(paths))
    if not warehouse.exists("staged_contacts"):
        raise ValueError("no staged tables yet: run `holocrm run` first")
    tables = {n.removeprefix("staged_"): warehouse.read(n) for n in TABLES if warehouse.exists(n)}
    built = lancedb_built(lancedb_uri(paths))
    store = _LazyStore(lancedb_uri(paths)) if built else None

    def nlq():
        from holocrm_core.nlq import NLQContext
        from holocrm_core.nlq.meaning import lazy_embed

        # as `holocrm ask`: words no rule knows are matched by meaning (the embedder loads on first need)
        return NLQContext.from_warehouse(warehouse, similarity=store, embed=lazy_embed(), warm=False)

    def decisions():
        from holocrm_cli.decisions import decision_service

        return decision_service()

    def experiments():
        from holocrm_core.experiments.service import ExperimentService

        return ExperimentService(paths.home)

    return ChatData(
        tables,
        nlq_factory=nlq,
        similarity=store,
        decisions_factory=decisions,
        experiments_factory=experiments,
        outcome_records=list(read_log(paths.outcomes_log)),
        as_of=as_of,
    )


def log_writer(paths=None):
    """Appends a confirmed write to its durable log (the API's AppendOnlyLog): closes to the outcome log
    (the API's record format, checked under the log's lock), notes to the notes log."""
    from holocrm_api.outcome_log import AppendOnlyLog
    from holocrm_core.settings import HoloPaths

    paths = paths or HoloPaths.default()
    logs: dict[str, AppendOnlyLog] = {}

    def write(kind: str, record: dict, check=None) -> dict:
        if kind == "start_experiment":
            from holocrm_core.chat.experiment_intents import create_experiment
            from holocrm_core.experiments.service import ExperimentService

            return create_experiment(ExperimentService(paths.home), record)
        if kind in ("close_deal", "reopen_deal"):
            log = logs.setdefault(
                "outcomes", AppendOnlyLog(paths.outcomes_log, fingerprint_fields=("deal_id", "outcome"))
            )
        elif kind == "record_outcome":
            log = logs.setdefault(
                kind, AppendOnlyLog(paths.actions_log, fingerprint_fields=("contact_id", "action", "reward"))
            )
        else:
            log = logs.setdefault(kind, AppendOnlyLog(paths.logs / "notes.ndjson"))
        result = log.append(record, check=check)
        return {"record": result.record, "created": result.created}

    return write


def _lines(script: str) -> list[str]:
    text = sys.stdin.read() if script == "-" else Path(script).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _print_turn(turn: dict, trace: bool) -> None:
    typer.echo(turn["reply"])
    if trace and turn.get("trace"):
        typer.echo("trace:")
        for step in turn["trace"]:
            extra = f" [{step['model_version']}]" if step.get("model_version") else ""
            typer.echo(
                f"  {step['step']}: {step['ran']} -> {step['records']} record(s), {step['ms']} ms{extra}"
            )


def _warm(data) -> None:
    with contextlib.suppress(Exception):  # a warm-up failure only means the first turn opens what it needs
        data.warm()


def _completions(data) -> list[str]:
    """What Tab completes a line to: every intent's example and help phrases, and `show`/`find`/`prepare me
    for my call with` + each company's name (at most 5,000 companies)."""
    from holocrm_core.chat.catalogue import CATALOGUE

    lines = [i.example for i in CATALOGUE] + ["help", "quit"]
    companies = data.tables["companies"]["name"].drop_nulls().unique().sort().head(5000).to_list()
    for verb in ("show ", "find ", "summarize ", "prepare me for my call with "):
        lines += [verb + str(name) for name in companies]
    return list(dict.fromkeys(lines))


def _reader(data):
    """A line reader with history (kept in HOLOCRM_HOME/.chat_history) and Tab completion: prompt_toolkit's
    when it is installed, else the standard library's readline, else plain input()."""
    from holocrm_core.settings import HoloPaths

    history = HoloPaths.default().home / HISTORY
    completions = _completions(data)
    try:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.completion import WordCompleter
        from prompt_toolkit.history import FileHistory

        session = PromptSession(
            history=FileHistory(str(history)), completer=WordCompleter(completions, sentence=True)
        )
        return lambda: session.prompt("you> ")
    except ImportError:
        pass
    try:
        import readline
    except ImportError:  # no line editing on this platform: plain input()
        return lambda: input("you> ")
    history.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # no history yet
        readline.read_history_file(history)
    readline.set_history_length(2000)

    def complete(text: str, state: int) -> str | None:
        line = readline.get_line_buffer()
        found = [c for c in completions if c.lower().startswith(line.lower())]
        if state >= len(found):
            return None
        return found[state][len(line) - len(text) :]

    readline.set_completer_delims("")
    readline.set_completer(complete)
    if "libedit" in (readline.__doc__ or ""):
        readline.parse_and_bind("bind ^I rl_complete")
    else:
        readline.parse_and_bind("tab: complete")

    def read() -> str:
        line = input("you> ")
        with contextlib.suppress(
            OSError
        ):  # history is a convenience: a read-only home does not stop the chat
            if history.exists():
                readline.append_history_file(1, history)
            else:
                readline.write_history_file(history)
        return line

    return read


def register(app: typer.Typer) -> None:
    @app.command("chat")
    def chat_command(
        script: str = typer.Option("", "--script", help="run the turns of FILE (one a line; - for stdin)"),
        as_json: bool = typer.Option(False, "--json", help="one JSON object per turn"),
        yes: bool = typer.Option(False, "--yes", help="make previewed writes without asking"),
        trace: bool = typer.Option(False, "--trace", help="show the steps each turn ran"),
        as_of: str = typer.Option(
            "", "--as-of", help="date questions count from (YYYY-MM-DD); default today"
        ),
    ) -> None:
        """Talk to your CRM: find records, ask questions, get next actions; writes are previewed and need yes.

        Try: `find acme`, `open deals`, `only the ones in fintech`, `prepare me for my call with Acme`,
        `which of my hot leads in fintech haven't heard from us in two weeks, and what should I do with each?`,
        `the call worked`, `reopen that deal`, `start an experiment cadence vs ppo`. Say `help` in the chat
        for every intent with an example (the README's Chat section has the same table)."""
        from holocrm_core.chat import ChatSession
        from holocrm_core.services import Refusal
        from holocrm_core.services.questions import as_of_time

        try:
            data = chat_data(as_of=as_of_time(as_of or None))
            session = ChatSession(data, writer=log_writer())
        except (ValueError, Refusal) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        if script:
            for line in _lines(script):
                turn = session.turn(line, yes=yes)
                if as_json:
                    typer.echo(json.dumps(turn, default=str))
                else:
                    typer.echo(f"you> {line}")
                    _print_turn(turn, trace)
            return
        read = _reader(data)
        # the NL context, decision service and name index open while the user types the first turn
        threading.Thread(target=_warm, args=(data,), name="chat-warm", daemon=True).start()
        typer.echo("HoloCRM chat: ask about your records (`help` lists what I can do, `quit` to leave).")
        while True:
            try:
                line = read()
            except (EOFError, KeyboardInterrupt):
                break
            if line.strip().lower() in ("quit", "exit", "bye"):
                break
            turn = session.turn(line, yes=yes)
            if as_json:
                typer.echo(json.dumps(turn, default=str))
            else:
                _print_turn(turn, trace)
