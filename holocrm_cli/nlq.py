"""`holocrm ask "..."`: answer a plain-English question with the plan that was understood and its trace."""

from __future__ import annotations

import json

import typer


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
    if not paths.lancedb.exists() or not any(paths.lancedb.iterdir()):
        return None
    return _LazySimilarity(str(paths.lancedb))


def print_answer(answer, max_rows: int = 20) -> None:
    """The rows as a table, then the plan in words and the trace."""
    for hint in answer.hints:
        typer.echo(f"! {hint}")
    if answer.value is not None:
        typer.echo(f"Answer: {answer.value}")
    rows = answer.rows
    if rows.width:
        import polars as pl

        with pl.Config(tbl_rows=max_rows, tbl_cols=10, fmt_str_lengths=40, tbl_hide_dataframe_shape=True):
            typer.echo(str(rows.head(max_rows)))
        if rows.height > max_rows:
            typer.echo(f"... {rows.height - max_rows} more rows (use --json --limit N for more)")
    typer.echo(f"{len(answer.ids)} result(s)" if answer.value is None else "")
    typer.echo(f"Plan: {answer.plan_words()}")
    typer.echo("Trace:")
    for entry in answer.trace:
        typer.echo(
            f"  {entry.words!r:36} -> {entry.meaning}"
            + ("" if entry.how in ("rule", "exact") else f" [{entry.how}]")
        )
    typer.echo(f"As of: {answer.as_of.date().isoformat() if answer.as_of else 'today'}")
    level = "high" if answer.high_confidence else "low"
    typer.echo(f"Confidence: {answer.confidence:.2f} ({level})")
    for item in answer.missing:
        typer.echo(f"  missing: {item}")
    if not answer.understood:
        typer.echo(f"Not understood: {', '.join(answer.unknown_words)}")
    if answer.suggestions:
        typer.echo("Did you mean: " + "; ".join(answer.suggestions))
    print_readings(answer)


def print_readings(answer) -> None:
    """The readings of an unclear question, numbered for `--pick N` (owned with the semantic layer)."""
    if not answer.readings:
        return
    typer.echo("Readings (run one with --pick N):")
    for number, reading in enumerate(answer.readings, 1):
        typer.echo(f"  {number}. {reading.question}")
        typer.echo(f"     {reading.summary()}")


def register(app: typer.Typer) -> None:
    @app.command("ask")
    def ask_command(
        question: str = typer.Argument(..., help='e.g. "won deals over $5k in fintech last quarter"'),
        as_json: bool = typer.Option(False, "--json", help="print the answer, plan and trace as JSON"),
        as_of: str = typer.Option(
            "", "--as-of", help="date relative times count from (YYYY-MM-DD); default today"
        ),
        limit: int = typer.Option(50, "--limit", help="rows to print"),
        partial: bool = typer.Option(
            False, "--partial", help="run the understood part of a partly understood question"
        ),
        pick: int = typer.Option(
            0, "--pick", help="answer with reading N of an unclear question (1, 2, ...)"
        ),
    ) -> None:
        """Answer a plain-English question over the staged CRM tables and show the plan it was read as.

        Reads the nlq_vocabulary artifact the pipeline wrote (rebuilt here only when it is missing or stale)."""
        from holocrm_core import schema
        from holocrm_core.nlq import NLQContext, ask
        from holocrm_core.settings import HoloPaths
        from holocrm_core.warehouse import Warehouse

        paths = HoloPaths.default()
        warehouse = Warehouse(paths.warehouse)
        if not any(warehouse.exists(name) for name in schema.RECORD_STAGED_TABLES):
            typer.echo(
                "No staged tables yet: run `holocrm run` (or materialize the ingest assets) first.", err=True
            )
            raise typer.Exit(1)
        # one question per process: nothing is computed ahead that this question may not need
        ctx = NLQContext.from_warehouse(warehouse, similarity=_similarity_backend(paths), warm=False)
        try:
            answer = ask(question, ctx, as_of=as_of or None, partial=partial)
        except ValueError as exc:  # QuestionError: an empty question, an as-of date out of range
            typer.echo(f"Bad input: {exc}", err=True)
            raise typer.Exit(2) from exc
        if pick:
            if not 1 <= pick <= len(answer.readings):
                typer.echo(
                    f"Bad input: --pick {pick}: this question has {len(answer.readings)} reading(s)", err=True
                )
                raise typer.Exit(2)
            answer = answer.readings[pick - 1]
        if as_json:
            typer.echo(json.dumps(answer.to_json(max_rows=limit), default=str, indent=1))
        else:
            print_answer(answer, max_rows=limit)
