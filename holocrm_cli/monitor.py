"""`holocrm monitor`: drift, decay and freshness in words, with an exit code for cron and CI.

Exit 0 when every check holds; 1 when a drift blocks, a served champion decayed on the outcomes since its
promotion, or an asset is past its freshness limit (``--ignore-stale`` leaves staleness out); 2 on bad
input. ``--write`` leaves the figures where the API's ``/metrics`` reads them (what the monitoring asset
does after every run).
"""

from __future__ import annotations

import json

import typer


def register(app: typer.Typer) -> None:
    @app.command("monitor")
    def monitor(
        as_json: bool = typer.Option(False, "--json", help="One JSON object instead of words."),
        ignore_stale: bool = typer.Option(False, "--ignore-stale", help="A stale asset does not fail."),
        decay: bool = typer.Option(True, "--decay/--no-decay", help="Re-judge the champions (loads them)."),
        write: bool = typer.Option(False, "--write", help="Update the figures the API's /metrics serves."),
    ) -> None:
        """Print the current drift, decay and freshness; exit 1 when a blocking check fails."""
        from holocrm_core.monitoring import DriftThresholds, watch, write_state
        from holocrm_core.settings import HoloPaths, configure_mlflow

        try:
            thresholds = DriftThresholds.from_env()
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        from holocrm_core.settings import open_warehouse

        paths = HoloPaths.default()
        warehouse = open_warehouse(paths)  # a folder or s3://
        if not warehouse.tables():
            typer.echo(f"nothing to monitor in {warehouse.root}: run `holocrm run` first", err=True)
            raise typer.Exit(2)
        configure_mlflow()
        report = watch(paths, thresholds=thresholds, with_decay=decay)
        if write:
            write_state(paths, report)
        failing = report.failing(include_stale=not ignore_stale)
        if as_json:
            typer.echo(json.dumps({**report.as_dict(), "failing": failing}, default=str))
        else:
            for line in report.lines():
                typer.echo(line)
            typer.echo("FAILING: a blocking check failed" if failing else "OK: every blocking check holds")
        if failing:
            raise typer.Exit(1)
