"""`holocrm ask "..."`: answer a plain-English question with the plan that was understood and its trace.

The answer comes from ``holocrm_core.services.answer_question``, the function the API's natural-language
route calls, so `--json` prints what the API returns; with `--server URL` (or HOLOCRM_SERVER) the question
is sent to a running server instead. Rows and grouped aggregates print as tables whose cells are never cut.
"""

from __future__ import annotations

import typer

from holocrm_cli import client
from holocrm_cli.output import echo_json, fail, refuse, table

SERVER_OPTION = typer.Option(
    None, "--server", help="URL of a running `holocrm serve` (default: $HOLOCRM_SERVER)"
)


class _LazySimilarity:
    """Opens the similarity store (and its embedding model) only when a question needs it."""

    def __init__(self, uri: str):
        self.uri = uri
        self._store = None

    def _open(self):
        if self._store is None:
            from holocrm_core.store import SimilarityStore

            self._store = SimilarityStore(self.uri)
        return self._store

    def similar(self, *args, **kwargs):
        return self._open().similar(*args, **kwargs)

    def search(self, *args, **kwargs):
        return self._open().search(*args, **kwargs)


def _similarity_backend(paths):
    """The LanceDB similarity store when the semantic pipeline has built one, else None."""
    from holocrm_core.settings import lancedb_built, lancedb_uri

    if not lancedb_built(lancedb_uri(paths)):
        return None
    return _LazySimilarity(lancedb_uri(paths))


def _value_rows(value) -> list[dict] | None:
    """An aggregate that is not one number (a dict per group, a list of pairs) as table rows."""
    if isinstance(value, dict):
        if value and all(isinstance(v, dict) for v in value.values()):
            return [{"group": k, **v} for k, v in value.items()]
        return [{"": k, "value": v} for k, v in value.items()]
    if isinstance(value, list) and value:
        return [v if isinstance(v, dict) else {"value": v} for v in value]
    return None


def print_answer(answer: dict, max_rows: int = 50) -> None:
    """The answer (a figure, or rows as a table), then the plan in words and the trace."""
    for hint in answer.get("hints") or []:
        typer.echo(f"! {hint}")
    value = answer.get("value")
    rows = answer.get("rows") or []
    if value is not None and not (rows and isinstance(value, (dict, list))):  # else the rows are its table
        rows_of_value = _value_rows(value)
        if rows_of_value is None:
            typer.echo(f"Answer: {value:,}" if isinstance(value, int) else f"Answer: {value}")
        else:
            typer.echo("Answer:")
            typer.echo(table(rows_of_value))
    if rows and not (value is not None and len(rows) == 1 and len(rows[0]) == 1):  # not the figure again
        typer.echo(table(rows[:max_rows]))
        if answer.get("row_count", 0) > len(rows[:max_rows]):
            typer.echo(
                f"... {answer['row_count'] - len(rows[:max_rows])} more rows (use --limit N, up to 100)"
            )
    if value is None:
        typer.echo(f"{answer.get('record_count', 0)} result(s)")
    if answer.get("plan_words"):
        typer.echo(f"Plan: {answer['plan_words']}")
    if answer.get("trace"):
        typer.echo("Trace:")
        for entry in answer["trace"]:
            how = entry.get("how")
            typer.echo(
                f"  {entry.get('words')!r:36} -> {entry.get('meaning')}"
                + ("" if how in ("rule", "exact", None) else f" [{how}]")
            )
    typer.echo(f"As of: {(answer.get('as_of') or 'today')[:10]}")
    level = "high" if answer.get("high_confidence") else "low"
    typer.echo(f"Confidence: {answer.get('confidence', 0.0):.2f} ({level})")
    for item in answer.get("missing") or []:
        typer.echo(f"  missing: {item}")
    if not answer.get("understood") and answer.get("unknown_words"):
        typer.echo(f"Not understood: {', '.join(answer['unknown_words'])}")
    if answer.get("suggestions"):
        typer.echo("Did you mean: " + "; ".join(answer["suggestions"]))
    print_readings(answer)


def print_readings(answer: dict) -> None:
    """The readings of an unclear question, numbered for `--pick N`."""
    readings = answer.get("readings") or []
    if not readings:
        return
    typer.echo("Readings (run one with --pick N):")
    for number, reading in enumerate(readings, 1):
        typer.echo(f"  {number}. {reading.get('question')}")
        figure = reading.get("value")
        figure = figure if figure is not None else f"{reading.get('record_count', 0)} record(s)"
        typer.echo(f"     {reading.get('plan_words')}: {figure}")


def register(app: typer.Typer) -> None:
    @app.command("ask")
    def ask_command(
        question: str = typer.Argument(..., help='e.g. "won deals over $5k in fintech last quarter"'),
        as_json: bool = typer.Option(False, "--json", help="print the answer, plan and trace as JSON"),
        as_of: str = typer.Option(
            "", "--as-of", help="date relative times count from (YYYY-MM-DD); default today"
        ),
        limit: int = typer.Option(50, "--limit", help="rows to print (1 to 100)"),
        partial: bool = typer.Option(
            False, "--partial", help="run the understood part of a partly understood question"
        ),
        server: str | None = SERVER_OPTION,
        pick: int = typer.Option(
            0, "--pick", help="answer with reading N of an unclear question (1, 2, ...)"
        ),
    ) -> None:
        """Answer a plain-English question over the staged CRM tables and show the plan it was read as.

        Reads the nlq_vocabulary artifact the pipeline wrote (rebuilt here only when it is missing or stale)."""
        from holocrm_core.services import Refusal, answer_question, cannot_run, rules
        from holocrm_core.services.questions import as_of_time, question_text

        url = client.server_url(server)
        try:
            checked = question_text(question), rules.page_size(limit), as_of_time(as_of)  # before any loading
            if url:
                body = {
                    "question": checked[0],
                    "as_of": checked[2].isoformat() if checked[2] else None,
                    "limit": checked[1],
                    "partial": partial,
                    "pick": pick or None,
                }
                answer = client.post(
                    url, "/api/query/natural-language", {k: v for k, v in body.items() if v is not None}
                )
                answer.pop("cached", None)
            else:
                answer = answer_question(
                    _context(), question, as_of=as_of or None, limit=limit, partial=partial, pick=pick or None
                )
        except (Refusal, client.ServerError) as exc:
            refuse(exc)
        if as_json:
            echo_json(answer)
        else:
            print_answer(answer, max_rows=limit)
        if cannot_run(answer):
            raise typer.Exit(2)


def _context():
    """The NL context over the staged tables (one question per process: nothing computed ahead)."""
    from holocrm_core import schema
    from holocrm_core.nlq import NLQContext
    from holocrm_core.settings import HoloPaths, warehouse_root
    from holocrm_core.warehouse import Warehouse

    paths = HoloPaths.default()
    warehouse = Warehouse(warehouse_root(paths))
    if not any(warehouse.exists(name) for name in schema.RECORD_STAGED_TABLES):
        fail("no staged tables yet: run `holocrm run` (or materialize the ingest assets) first")
    from holocrm_core.nlq.meaning import lazy_embed

    return NLQContext.from_warehouse(
        warehouse, similarity=_similarity_backend(paths), embed=lazy_embed(), warm=False
    )
