"""`holocrm similar | search | duplicates`: ask the semantic layer from the command line.

Each command loads only what it needs, when it needs it (the index for `similar`, the index and the
embedding model for `search`, one warehouse table for `duplicates`), or sends its request to a running
server (`--server URL` or HOLOCRM_SERVER), which answers in milliseconds.
"""

from __future__ import annotations

import json
import os

import typer

from holocrm_cli import client
from holocrm_core import schema
from holocrm_core.settings import HoloPaths

# `--mode semantic` is what people (and the README) say for "by meaning"
MODES = {
    "hybrid": "hybrid",
    "vector": "vector",
    "semantic": "vector",
    "fulltext": "fulltext",
    "text": "fulltext",
}
SERVER_OPTION = typer.Option(
    None, "--server", help="URL of a running `holocrm serve` (default: $HOLOCRM_SERVER)"
)
VERBOSE_OPTION = typer.Option(False, "--verbose", help="show third-party warnings and log messages")


def _entity(name: str) -> str:
    try:
        record = schema.entity(name)
    except ValueError:
        record = None
    if record is None or record not in schema.DOCUMENT_ENTITIES:
        valid = ", ".join(e.name for e in schema.DOCUMENT_ENTITIES)
        raise typer.BadParameter(f"unknown entity type {name!r}: use {valid}") from None
    return record.name


def _mode(name: str) -> str:
    try:
        return MODES[name.lower()]
    except KeyError:
        raise typer.BadParameter(
            f"unknown search mode {name!r}: use hybrid, vector (or semantic) or fulltext"
        ) from None


def _filters(pairs: list[str] | None) -> dict:
    """["industry=fintech", "stage=won,lost"] -> {"industry": "fintech", "stage": ["won", "lost"]}."""
    out: dict = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise typer.BadParameter(f"filter {pair!r} must look like column=value")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.split(",") if "," in value else value
    return out


def _quiet(verbose: bool) -> None:
    """Normal runs print no third-party warnings; ``--verbose`` shows them."""
    if verbose:
        os.environ["HOLOCRM_VERBOSE"] = "1"
        return
    import warnings

    warnings.filterwarnings("ignore")
    os.environ.setdefault("ORT_LOGGING_LEVEL", "3")


def _store():
    from holocrm_core.settings import HoloPaths
    from holocrm_core.store import SimilarityStore

    paths = HoloPaths.default()
    if not paths.lancedb.exists():
        typer.echo(f"no similarity index under {paths.lancedb}: run `holocrm run` first", err=True)
        raise typer.Exit(1)
    return SimilarityStore(str(paths.lancedb))


def _fail(message: str) -> None:
    typer.echo(message.strip("'\""), err=True)
    raise typer.Exit(1)


def _attachment_hits(text: str, mode: str, limit: int, as_json: bool) -> list[dict]:
    """Attachment chunks that match, as result rows naming the activity, file and page (issue 16)."""
    from holocrm_core.attachments.index import search_attachments_at

    hits = search_attachments_at(str(HoloPaths.default().lancedb), text, limit=min(limit, 5), mode=mode)
    return [
        {
            "entity_type": "attachment",
            "id": h["activity_id"],
            "file_name": h["file_name"],
            "locator": h["locator"],
            "score": h["score"],
            "snippet": h["text"][:160],
            "name": f"{h['file_name']}, {h['locator']}: " + h["text"][:80].replace("\n", " "),
        }
        for h in hits
    ]


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
        typer.echo(
            f"{rank:>2}. {label}  {row['entity_type']} {row['id']}  {row.get('name') or ''}"
            + (f"  [{extra}]" if extra else "")
        )
        if row.get("snippet"):
            typer.echo(f"      {row['snippet']}")


def _print_duplicates(frame, proposals: bool, limit: int, entity: str | None) -> None:
    """Pairs (or proposals) per entity type that has any, most certain first."""
    if frame.is_empty():
        typer.echo(f"no duplicates found{f' among {entity} records' if entity else ''}")
        return
    for (entity_type,), group in frame.group_by(["entity_type"], maintain_order=True):
        typer.echo(
            f"{entity_type}: {len(group)} {'merge proposals' if proposals else 'likely duplicate pairs'}"
            + (f" (first {limit})" if len(group) > limit else "")
        )
        for row in group.head(limit).iter_rows(named=True):
            if proposals:
                typer.echo(
                    f"  {row['cluster_id']}: keep {row['survivor_id']}, merge {', '.join(row['merged_ids'])}"
                    f" ({row['moves']})"
                )
            else:
                typer.echo(
                    f"  {row['score']:.3f}  {row['id_a']} ~ {row['id_b']}: " + "; ".join(row["reasons"])
                )


def register(app: typer.Typer) -> None:
    @app.command()
    def similar(
        entity_type: str = typer.Argument(..., help="contact, company, deal or activity"),
        entity_id: str = typer.Argument(..., help="the id of the record to find look-alikes of"),
        limit: int = typer.Option(10, "--limit", "-n"),
        min_similarity: float = typer.Option(0.0, "--min-similarity"),
        filter: list[str] | None = typer.Option(None, "--filter", "-f", help="column=value (repeatable)"),
        as_json: bool = typer.Option(False, "--json"),
        server: str | None = SERVER_OPTION,
        verbose: bool = VERBOSE_OPTION,
    ):
        """Records most like ENTITY_ID (cosine similarity of their embeddings), with optional filters."""
        _quiet(verbose)
        kind = _entity(entity_type)
        url = client.server_url(server)
        if url and kind == "contact" and not filter:  # the server's similar endpoint serves contacts
            try:
                answer = client.get(
                    url, f"/api/contacts/{entity_id}/similar", limit=limit, min_similarity=min_similarity
                )
            except client.ServerError as exc:
                _fail(str(exc))
            _print_results(answer.get("results", []), as_json, "similarity")
            return
        store = _store()
        try:
            results = store.similar(
                kind, entity_id, limit=limit, min_similarity=min_similarity, filters=_filters(filter)
            )
        except (KeyError, ValueError) as exc:
            _fail(str(exc))
        _print_results(results, as_json, "similarity")

    @app.command()
    def search(
        text: str = typer.Argument(..., help="what to look for, in plain words"),
        entity_type: list[str] | None = typer.Option(None, "--type", "-t", help="restrict to these types"),
        mode: str = typer.Option("hybrid", "--mode", help="hybrid, vector (alias semantic) or fulltext"),
        limit: int = typer.Option(10, "--limit", "-n"),
        filter: list[str] | None = typer.Option(None, "--filter", "-f", help="column=value (repeatable)"),
        as_json: bool = typer.Option(False, "--json", help="JSON, with each hit's snippet and whole text"),
        attachments: bool | None = typer.Option(
            None,
            "--attachments/--no-attachments",
            help="also search attachment text (default: on, off with --json)",
        ),
        server: str | None = SERVER_OPTION,
        verbose: bool = VERBOSE_OPTION,
    ):
        """Search contacts, companies, deals and activities by meaning and words; each hit shows a snippet."""
        _quiet(verbose)
        types = [_entity(t) for t in entity_type] if entity_type else None
        chosen = _mode(mode)
        url = client.server_url(server)
        if url:
            body = {
                "query": text,
                "mode": chosen,
                "limit": limit,
                "entity_types": types,
                "filters": _filters(filter) or None,
            }
            try:
                answer = client.post(
                    url, "/api/search/semantic", {k: v for k, v in body.items() if v is not None}
                )
            except client.ServerError as exc:
                _fail(str(exc))
            _print_results(answer.get("results", []), as_json, "score")
            return
        store = _store()
        try:
            results = store.search(
                text,
                entity_types=types,
                mode=chosen,
                limit=limit,
                filters=_filters(filter),
                with_text=as_json,
            )
        except (KeyError, ValueError) as exc:
            _fail(str(exc))
        if attachments if attachments is not None else not as_json:
            results = results + _attachment_hits(text, chosen, limit, as_json)
        _print_results(results, as_json, "score")

    @app.command()
    def duplicates(
        entity: str | None = typer.Option(
            None, "--entity", "-e", help="contacts or companies (default: every type that has some)"
        ),
        limit: int = typer.Option(20, "--limit", "-n", help="rows shown per entity type"),
        proposals: bool = typer.Option(False, "--proposals", help="show merge proposals instead of pairs"),
        as_json: bool = typer.Option(False, "--json"),
        server: str | None = SERVER_OPTION,
    ):
        """Likely duplicates found by the last run (and merge proposals), per entity type. Nothing is merged."""
        import polars as pl

        kind = _entity(entity) if entity and entity != "all" else None
        url = client.server_url(server)
        if url and not proposals:
            try:
                answer = client.get(url, "/api/duplicates", entity_type=kind, limit=min(limit * 4, 1000))
            except client.ServerError as exc:
                _fail(str(exc))
            rows = answer.get("results") or answer.get("pairs") or []
            frame = pl.DataFrame(rows) if rows else pl.DataFrame(schema={"entity_type": pl.String})
        else:
            from holocrm_core.settings import HoloPaths
            from holocrm_core.warehouse import Warehouse

            warehouse = Warehouse(HoloPaths.default().warehouse)
            try:
                frame = warehouse.read("merge_proposals" if proposals else "duplicate_candidates")
            except FileNotFoundError as exc:
                _fail(str(exc))
        if kind is not None and not frame.is_empty():
            frame = frame.filter(pl.col("entity_type") == kind)
        if as_json:
            out = (
                frame.group_by("entity_type", maintain_order=True).head(limit)
                if not frame.is_empty()
                else frame
            )
            typer.echo(json.dumps(out.to_dicts(), default=str, indent=2))
            return
        _print_duplicates(frame, proposals, limit, entity)
