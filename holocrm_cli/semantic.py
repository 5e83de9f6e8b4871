"""`holocrm similar | search | duplicates`: ask the semantic layer from the command line."""

from __future__ import annotations

import json
from typing import Optional

import typer

from holocrm_core import schema
from holocrm_core.settings import HoloPaths


def _entity(name: str) -> str:
    try:
        record = schema.entity(name)
    except ValueError:
        record = None
    if record is None or record not in schema.DOCUMENT_ENTITIES:
        valid = ", ".join(e.name for e in schema.DOCUMENT_ENTITIES)
        raise typer.BadParameter(f"unknown entity type {name!r}: use {valid}") from None
    return record.name


def _filters(pairs: list[str] | None) -> dict:
    """["industry=fintech", "stage=won,lost"] -> {"industry": "fintech", "stage": ["won", "lost"]}."""
    out: dict = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise typer.BadParameter(f"filter {pair!r} must look like column=value")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.split(",") if "," in value else value
    return out


def _store():
    from holocrm_core.store import SimilarityStore

    paths = HoloPaths.default()
    if not paths.lancedb.exists():
        typer.echo(f"no similarity index under {paths.lancedb}: run `holocrm run` first", err=True)
        raise typer.Exit(1)
    return SimilarityStore(str(paths.lancedb))


def _print_results(results: list[dict], as_json: bool, score_key: str) -> None:
    if as_json:
        typer.echo(json.dumps(results, default=str, indent=2))
        return
    if not results:
        typer.echo("no results")
        return
    for rank, row in enumerate(results, start=1):
        extra = ", ".join(f"{k}={row[k]}" for k in ("industry", "stage", "owner") if row.get(k))
        score = row.get(score_key)
        label = f"{score:.3f}" if isinstance(score, float) else str(score)
        typer.echo(f"{rank:>2}. {label}  {row['entity_type']} {row['id']}  {row.get('name') or ''}"
                   + (f"  [{extra}]" if extra else ""))


def register(app: typer.Typer) -> None:
    @app.command()
    def similar(
        entity_type: str = typer.Argument(..., help="contact, company, deal or activity"),
        entity_id: str = typer.Argument(..., help="the id of the record to find look-alikes of"),
        limit: int = typer.Option(10, "--limit", "-n"),
        min_similarity: float = typer.Option(0.0, "--min-similarity"),
        filter: Optional[list[str]] = typer.Option(None, "--filter", "-f", help="column=value (repeatable)"),
        as_json: bool = typer.Option(False, "--json"),
    ):
        """Records most like ENTITY_ID (cosine similarity of their embeddings), with optional filters."""
        store = _store()
        try:
            results = store.similar(_entity(entity_type), entity_id, limit=limit,
                                    min_similarity=min_similarity, filters=_filters(filter))
        except (KeyError, ValueError) as exc:
            typer.echo(str(exc).strip("'\""), err=True)
            raise typer.Exit(1) from None
        _print_results(results, as_json, "similarity")

    @app.command()
    def search(
        text: str = typer.Argument(..., help="what to look for, in plain words"),
        entity_type: Optional[list[str]] = typer.Option(None, "--type", "-t", help="restrict to these types"),
        mode: str = typer.Option("hybrid", "--mode", help="hybrid, vector or fulltext"),
        limit: int = typer.Option(10, "--limit", "-n"),
        filter: Optional[list[str]] = typer.Option(None, "--filter", "-f", help="column=value (repeatable)"),
        as_json: bool = typer.Option(False, "--json"),
    ):
        """Search contacts, companies, deals and activities by meaning and words."""
        store = _store()
        types = [_entity(t) for t in entity_type] if entity_type else None
        try:
            results = store.search(text, entity_types=types, mode=mode, limit=limit, filters=_filters(filter))
        except (KeyError, ValueError) as exc:
            typer.echo(str(exc).strip("'\""), err=True)
            raise typer.Exit(1) from None
        _print_results(results, as_json, "score")

    @app.command()
    def duplicates(
        entity: str = typer.Option("contacts", "--entity", "-e", help="contacts, companies or all"),
        limit: int = typer.Option(20, "--limit", "-n"),
        proposals: bool = typer.Option(False, "--proposals", help="show merge proposals instead of pairs"),
        as_json: bool = typer.Option(False, "--json"),
    ):
        """Likely duplicates found by the last run (and merge proposals). Nothing is merged."""
        import polars as pl

        from holocrm_core.warehouse import Warehouse

        warehouse = Warehouse(HoloPaths.default().warehouse)
        table = "merge_proposals" if proposals else "duplicate_candidates"
        try:
            frame = warehouse.read(table)
        except FileNotFoundError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
        if entity != "all":
            frame = frame.filter(pl.col("entity_type") == _entity(entity))
        frame = frame.head(limit)
        if as_json:
            typer.echo(json.dumps(frame.to_dicts(), default=str, indent=2))
            return
        if frame.is_empty():
            typer.echo("no duplicates found")
            return
        for row in frame.iter_rows(named=True):
            if proposals:
                typer.echo(f"{row['cluster_id']}: keep {row['survivor_id']}, merge {', '.join(row['merged_ids'])}"
                           f" ({row['moves']})")
            else:
                typer.echo(f"{row['score']:.3f}  {row['entity_type']} {row['id_a']} ~ {row['id_b']}: "
                           + "; ".join(row["reasons"]))
