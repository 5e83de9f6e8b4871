"""`holocrm similar | search | duplicates`: ask the semantic layer from the command line.

Each command calls the same service the API calls (``holocrm_core.services``), so an input gets the same
answer or the same refusal at either door; with `--server URL` (or HOLOCRM_SERVER) it only sends the request
to a running server, which answers in milliseconds. Locally each command loads only what it needs, when it
needs it (the index for `similar`, the index and the embedding model for `search`, one warehouse table for
`duplicates`). Every listing shows each record's label (name, title, company...) beside its id.
"""

from __future__ import annotations

import typer

from holocrm_cli import client
from holocrm_cli.output import echo_json, fail, refuse, show_third_parties

SERVER_OPTION = typer.Option(
    None, "--server", help="URL of a running `holocrm serve` (default: $HOLOCRM_SERVER)"
)
VERBOSE_OPTION = typer.Option(False, "--verbose", help="show third-party warnings and log messages")
MODE_HELP = "hybrid (default), vector (alias semantic) or fulltext (alias text, keyword)"


def _quiet(verbose: bool) -> None:
    """Third-party warnings are silent (the app's callback); this command's ``--verbose`` shows them."""
    if verbose:
        show_third_parties()


def _paths():
    from holocrm_core.settings import HoloPaths

    return HoloPaths.default()


def _store(cached: bool = False):
    """The local similarity index, or None when none was built (the service refuses with what to run).

    ``cached``: answer `similar` from the vector cache, without importing LanceDB (seconds of a cold start)."""
    from holocrm_core.settings import lancedb_built, lancedb_uri

    paths = _paths()
    if not lancedb_built(lancedb_uri(paths)):
        return None
    if cached and "://" not in lancedb_uri(paths):  # the vector cache stamps local table folders
        from holocrm_core.services.vector_cache import CachedSimilarity

        return CachedSimilarity(lancedb_uri(paths), paths.home / "cache" / "vectors")
    from holocrm_core.store import SimilarityStore

    return SimilarityStore(lancedb_uri(paths))


def _labels():
    from holocrm_core.services import RecordLabels
    from holocrm_core.settings import warehouse_root
    from holocrm_core.warehouse import Warehouse

    warehouse = Warehouse(warehouse_root(_paths()))
    return RecordLabels(lambda table: warehouse.scan(table) if warehouse.exists(table) else None)


def _local_search(text: str, **options) -> dict:
    """``search_records`` over the local index; an index of another embedding tier than this process's
    (HOLOCRM_EMBEDDER) is one line naming both tiers and exit 1 (a server answers it 409)."""
    from holocrm_core.services import search_records

    store = _store()
    from holocrm_core.store import EmbeddingModelMismatch  # loaded by _store() already: costs nothing

    try:
        return search_records(store, text, labels=_labels(), **options)
    except EmbeddingModelMismatch as exc:
        fail(str(exc))
        raise  # not reached: fail exits


def _score(value) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _print_hits(results: list[dict], score_key: str) -> None:
    for rank, row in enumerate(results, start=1):
        extra = ", ".join(f"{k}={row[k]}" for k in ("industry", "stage", "owner") if row.get(k))
        typer.echo(
            f"{rank:>2}. {_score(row.get(score_key))}  {row['entity_type']} {row['id']}  "
            f"{row.get('label') or row.get('name') or ''}" + (f"  [{extra}]" if extra else "")
        )
        if row.get("snippet"):
            typer.echo(f"      {row['snippet']}")


def print_search(answer: dict) -> None:
    results = answer.get("results") or []
    passages = answer.get("attachments")
    typer.echo(f"Records ({len(results)}; score: {answer.get('score_kind')})")
    if results:
        _print_hits(results, "score")
    else:
        typer.echo("  no records match")
    if passages is not None:
        typer.echo(f"Attachment passages ({len(passages)}; score: {answer.get('attachments_score_kind')})")
        for rank, hit in enumerate(passages, start=1):
            typer.echo(
                f"{rank:>2}. {_score(hit['score'])}  activity {hit['activity_id']}  "
                f"{hit['file_name']}, {hit.get('locator') or ''}"
            )
            typer.echo(f"      {hit['snippet']}")


def print_similar(answer: dict) -> None:
    results = answer.get("results") or []
    about = f"{answer['entity_type']} {answer['entity_id']}" + (
        f" ({answer['label']})" if answer.get("label") else ""
    )
    if not results:
        typer.echo(f"no records like {about} (at this min-similarity and these filters)")
        return
    typer.echo(f"Records like {about} (score: {answer.get('score_kind')})")
    _print_hits(results, "similarity")


def print_duplicates(answer: dict, entity: str | None) -> None:
    rows = answer.get("results") or []
    if not rows:
        typer.echo(f"no duplicates found{f' among {entity} records' if entity else ''}")
        return
    shown_to = answer["offset"] + len(rows)
    typer.echo(
        f"{answer['total']} likely duplicate pairs; {answer['offset'] + 1} to {shown_to} shown, most certain "
        "first (score: probability the two are one record)"
        + (f"; next page: --offset {shown_to}" if shown_to < answer["total"] else "")
    )
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["entity_type"], []).append(row)
    for entity_type, group in groups.items():
        typer.echo(f"{entity_type}:")
        for row in group:
            typer.echo(
                f"  {_score(row.get('score'))}  {row['id_a']} {row.get('label_a') or ''}"
                f"  ~  {row['id_b']} {row.get('label_b') or ''}"
            )
            if row.get("reasons"):
                typer.echo(f"         {'; '.join(row['reasons'])}")


def _print_proposals(frame, limit: int, offset: int) -> None:
    if frame.is_empty():
        typer.echo("no merge proposals")
        return
    for row in frame.slice(offset, limit).iter_rows(named=True):
        typer.echo(
            f"  {row['entity_type']} {row['cluster_id']}: keep {row['survivor_id']}, "
            f"merge {', '.join(row['merged_ids'])} ({row['moves']})"
        )


def register(app: typer.Typer) -> None:
    @app.command()
    def similar(
        entity_type: str = typer.Argument(..., help="contact, company, deal or activity"),
        entity_id: str = typer.Argument(..., help="the id of the record to find look-alikes of"),
        limit: int = typer.Option(10, "--limit", "-n", help="1 to 100"),
        min_similarity: float = typer.Option(0.0, "--min-similarity", help="-1 to 1"),
        filter: list[str] | None = typer.Option(None, "--filter", "-f", help="column=value (repeatable)"),
        as_json: bool = typer.Option(False, "--json"),
        server: str | None = SERVER_OPTION,
        verbose: bool = VERBOSE_OPTION,
    ):
        """Records most like ENTITY_ID (cosine similarity of their embeddings), with their names."""
        _quiet(verbose)
        from holocrm_core.services import Refusal, rules, similar_records

        url = client.server_url(server)
        try:
            if url:
                kind = rules.entity_type(entity_type)
                rules.filter_pairs(filter)  # refused here as the server would
                answer = client.get(
                    url,
                    f"/api/similar/{kind}/{entity_id}",
                    limit=limit,
                    min_similarity=min_similarity,
                    filter=filter or None,
                )
                answer.pop("index_version", None)
                answer.pop("contact_id", None)
            else:
                answer = similar_records(
                    _store(cached=True),
                    entity_type,
                    entity_id,
                    limit=limit,
                    min_similarity=min_similarity,
                    filters=rules.filter_pairs(filter),
                    labels=_labels(),
                )
        except (Refusal, client.ServerError) as exc:
            refuse(exc)
        echo_json(answer) if as_json else print_similar(answer)

    @app.command()
    def search(
        text: str = typer.Argument(..., help="what to look for, in plain words"),
        entity_type: list[str] | None = typer.Option(None, "--type", "-t", help="restrict to these types"),
        mode: str = typer.Option("hybrid", "--mode", help=MODE_HELP),
        limit: int = typer.Option(10, "--limit", "-n", help="1 to 100"),
        filter: list[str] | None = typer.Option(None, "--filter", "-f", help="column=value (repeatable)"),
        as_json: bool = typer.Option(False, "--json", help="the answer as JSON (the API's shape)"),
        with_text: bool = typer.Option(False, "--with-text", help="add each hit's whole text"),
        attachments: bool | None = typer.Option(
            None,
            "--attachments/--no-attachments",
            help="also list matching attachment passages, in their own section (default: on, off with --json)",
        ),
        server: str | None = SERVER_OPTION,
        verbose: bool = VERBOSE_OPTION,
    ):
        """Search contacts, companies, deals and activities by meaning and words; each hit shows a snippet."""
        _quiet(verbose)
        from holocrm_core.services import Refusal, rules

        with_attachments = attachments if attachments is not None else not as_json
        url = client.server_url(server)
        try:
            if url:
                body = {
                    "query": rules.query_text(text),
                    "mode": rules.search_mode(mode),
                    "limit": rules.page_size(limit),
                    "entity_types": rules.entity_types(entity_type),
                    "filters": rules.filters(rules.filter_pairs(filter)),
                    "with_text": with_text,
                    "attachments": with_attachments,
                }
                answer = client.post(
                    url, "/api/search/semantic", {k: v for k, v in body.items() if v is not None}
                )
                answer.pop("index_versions", None)
            else:
                answer = _local_search(
                    text,
                    entity_types=entity_type,
                    mode=mode,
                    limit=limit,
                    filters=rules.filter_pairs(filter),
                    with_text=with_text,
                    attachments=with_attachments,
                )
        except (Refusal, client.ServerError) as exc:
            refuse(exc)
        echo_json(answer) if as_json else print_search(answer)

    @app.command()
    def duplicates(
        entity: str | None = typer.Option(
            None, "--entity", "-e", help="contact or company (default: every type that has some)"
        ),
        limit: int = typer.Option(20, "--limit", "-n", help="pairs shown, 1 to 100 (page with --offset)"),
        offset: int = typer.Option(0, "--offset", help="pairs to skip (the next page)"),
        min_score: float = typer.Option(0.0, "--min-score", help="0 to 1"),
        proposals: bool = typer.Option(False, "--proposals", help="show merge proposals instead of pairs"),
        as_json: bool = typer.Option(False, "--json"),
        server: str | None = SERVER_OPTION,
    ):
        """Likely duplicates found by the last run (and merge proposals), most certain first. Nothing is merged."""
        from holocrm_core.services import Refusal, duplicate_page, rules

        url = client.server_url(server)
        try:
            kind = rules.entity_type(entity) if entity and entity != "all" else None
            if proposals:
                _proposals(kind, limit, offset, as_json)
                return
            if url:
                answer = client.get(
                    url,
                    "/api/duplicates",
                    entity_type=kind,
                    limit=rules.page_size(limit),
                    offset=rules.offset_of(offset),
                    min_score=min_score,
                )
            else:
                from holocrm_core.settings import warehouse_root
                from holocrm_core.warehouse import Warehouse

                warehouse = Warehouse(warehouse_root(_paths()))
                table = "duplicate_candidates"
                frame = warehouse.read(table) if warehouse.exists(table) else None
                answer = duplicate_page(
                    frame,
                    entity_type=kind,
                    min_score=min_score,
                    limit=limit,
                    offset=offset,
                    labels=_labels(),
                )
                from holocrm_core.services import jsonable

                answer = jsonable(answer)
        except (Refusal, client.ServerError) as exc:
            refuse(exc)
        echo_json(answer) if as_json else print_duplicates(answer, entity)


def _proposals(kind: str | None, limit: int, offset: int, as_json: bool) -> None:
    """Merge proposals (local only: the server does not serve them)."""
    import polars as pl

    from holocrm_core.services import rules
    from holocrm_core.settings import warehouse_root
    from holocrm_core.warehouse import Warehouse

    rules.page_size(limit)
    warehouse = Warehouse(warehouse_root(_paths()))
    if not warehouse.exists("merge_proposals"):
        fail("no merge proposals yet: run `holocrm run` first")
    frame = warehouse.read("merge_proposals")
    if kind is not None and not frame.is_empty():
        frame = frame.filter(pl.col("entity_type") == kind)
    if as_json:
        echo_json(frame.slice(offset, limit).to_dicts())
        return
    _print_proposals(frame, limit, offset)
