"""`holocrm score contact|deal ID`: the current score of one lead or deal, its band and its reasons.

Fast by loading only what is needed: the score the pipeline precomputed (``scored_leads`` /
``scored_deals``, one row read from Parquet) answers first; the staged tables, the feature builder and the
champion model (MLflow, torch) are loaded only for a record that table does not hold yet.
"""

from __future__ import annotations

import json

import typer

SCORED_TABLES = {"contact": ("scored_leads", "contact_id"), "deal": ("scored_deals", "deal_id")}


def _print(entity: str, record_id: str, row: dict, model_version: str, as_json: bool) -> None:
    if as_json:
        keep = ("score", "band", "reasons", "scored_at")
        typer.echo(
            json.dumps(
                {
                    SCORED_TABLES[entity][1]: record_id,
                    **{k: row.get(k) for k in keep},
                    "model_version": model_version,
                },
                default=str,
            )
        )
        return
    typer.echo(f"{entity} {record_id}: {row['score']:.0%} ({row['band']}) — scored by {model_version}")
    for reason in row.get("reasons") or []:
        typer.echo(f"  {'+' if 'raises' in reason else '-'} {reason}")


def _precomputed(entity: str, record_id: str) -> dict | None:
    """The pipeline's score of this record, read as one row of the scored table (None when absent)."""
    import polars as pl

    from holocrm_core.settings import warehouse_root
    from holocrm_core.warehouse import Warehouse

    warehouse = Warehouse(warehouse_root())
    table, id_column = SCORED_TABLES[entity]
    if not warehouse.exists(table):
        return None
    scan = warehouse.scan(table)
    names = scan.collect_schema().names()
    wanted = [c for c in (id_column, "score", "band", "reasons", "model_version", "scored_at") if c in names]
    rows = scan.filter(pl.col(id_column) == record_id).select(wanted).head(1).collect()
    return rows.row(0, named=True) if rows.height else None


def _score_one(entity: str, record_id: str, as_json: bool) -> None:
    row = _precomputed(entity, record_id)
    if row is not None:
        _print(entity, record_id, row, str(row.get("model_version") or "heuristic"), as_json)
        return
    _score_now(entity, record_id, as_json)


def _score_now(entity: str, record_id: str, as_json: bool) -> None:
    """An open record newer than the last pipeline run: scored now by the served scorer. A decided one is
    refused with the API's words (scores are for open records)."""
    from holocrm_core import schema
    from holocrm_core.outcomes import build_features_for, not_open_reason, open_ids, read_field_outcomes
    from holocrm_core.registry import configure, scorer_in_use
    from holocrm_core.scoring import score_frame
    from holocrm_core.settings import HoloPaths, warehouse_root
    from holocrm_core.warehouse import Warehouse

    warehouse = Warehouse(warehouse_root())
    tables = {}
    for record in schema.RECORDS:
        if warehouse.exists(record.staged_asset):
            tables[record.table] = warehouse.read(record.staged_asset)
    table, id_column = schema.entity(entity).table, schema.entity(entity).id_column
    if table not in tables:
        typer.echo(
            f"No {table} staged yet: run `holocrm run` (or materialize the ingest assets) first.", err=True
        )
        raise typer.Exit(1)
    if record_id not in set(tables[table][id_column].to_list()):
        typer.echo(f"No {entity} with id {record_id!r} in the staged {table}.", err=True)
        raise typer.Exit(1)
    field = read_field_outcomes(HoloPaths.default().outcomes_log)
    if record_id not in set(open_ids(entity, tables, field)):
        typer.echo(not_open_reason(entity, record_id), err=True)
        raise typer.Exit(1)
    configure()
    scorer, model_version = scorer_in_use(entity, warehouse)
    features = build_features_for(entity, [record_id], tables)
    row = score_frame(scorer, features).row(0, named=True)
    _print(entity, record_id, row, model_version, as_json)


def model_status_lines() -> list[str]:
    """One line per scoring model: the registry's verdict line (what is served and why), as every door
    shows it."""
    from holocrm_core.registry import configure, verdict_lines

    configure()
    return list(verdict_lines().values())


def register(app: typer.Typer) -> None:
    score_app = typer.Typer(
        help="Learned lead and deal scores with their top positive and negative reasons.",
        no_args_is_help=True,
    )

    @score_app.command("contact")
    def score_contact(
        contact_id: str = typer.Argument(..., help="contact_id of the lead"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    ) -> None:
        """Conversion score of a lead, from the champion model (or the heuristic while there is none)."""
        _score_one("contact", contact_id, as_json)

    @score_app.command("deal")
    def score_deal(
        deal_id: str = typer.Argument(..., help="deal_id of the deal"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    ) -> None:
        """Win score of a deal, from the champion model (or the heuristic while there is none)."""
        _score_one("deal", deal_id, as_json)

    @score_app.command("models")
    def score_models() -> None:
        """Which scorer is in use for leads and deals, and why the newest version was or was not promoted."""
        for line in model_status_lines():
            typer.echo(line)

    app.add_typer(score_app, name="score")
