"""`holocrm metrics`: list the semantic layer (metrics, dimensions, entity words) the NL questions read."""

from __future__ import annotations

import json

import typer


def register(app: typer.Typer) -> None:
    @app.command("metrics")
    def metrics_command(
        mapping: str = typer.Option(
            "", "--mapping", help="YAML mapping file whose `semantic:` section overrides the defaults"
        ),
        as_json: bool = typer.Option(False, "--json", help="print the whole layer as JSON"),
    ) -> None:
        """List the metrics, dimensions and entity words questions are answered with (CRM defaults, plus a
        mapping file's overrides)."""
        from holocrm_core.metrics import SemanticLayer, SemanticLayerError

        try:
            if mapping:
                layer = SemanticLayer.load(mapping)
            else:  # what questions are answered with now: the pipeline's copy, else the defaults
                from holocrm_core.nlq.answer import load_semantic_layer
                from holocrm_core.settings import HoloPaths

                layer = load_semantic_layer(HoloPaths.default())  # the settings' warehouse (s3:// too)
        except SemanticLayerError as exc:
            typer.echo(f"Bad input: {exc}", err=True)
            raise typer.Exit(2) from exc
        if as_json:
            typer.echo(json.dumps(layer.describe(), indent=1, default=str))
            return
        typer.echo(f"Semantic layer ({layer.source})")
        typer.echo("Metrics:")
        for name, m in layer.metrics.items():
            typer.echo(f"  {name:24} {m.description or m.label}  [words: {', '.join(m.words[:5])}]")
        typer.echo("Entity words:")
        for name, e in layer.entities.items():
            where = ", ".join(f"{k}={v}" for k, v in e.where.items())
            typer.echo(
                f"  {name:24} {e.entity}{' where ' + where if where else ''}  [{', '.join(e.words[:5])}]"
            )
        typer.echo("Dimensions:")
        for name, d in layer.dimensions.items():
            grain = f" by {d.grain}" if d.grain else ""
            typer.echo(f"  {name:24} {d.entity}.{d.field}{grain}  [{', '.join(d.words[:4])}]")
        money = layer.reporting_currency
        typer.echo(
            f"Currency: converted to {money} at the mapping's rates"
            if money
            else "Currency: amounts per currency (no exchange rates given)"
        )
