"""`holocrm serve`: start the HoloCRM API (FastAPI under uvicorn) over the latest artifacts."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0 for all)"),
        port: int = typer.Option(8000, min=1, max=65535, help="TCP port"),
        api_key_required: bool = typer.Option(
            False, "--api-key-required/--no-api-key-required",
            help="Require an API key (HOLOCRM_API_KEY / HOLOCRM_API_KEYS) on /api/*",
            envvar="HOLOCRM_API_KEY_REQUIRED",
        ),
        reload_interval: float = typer.Option(
            15.0, help="Seconds between checks for a newer index or champion (0: only POST /api/admin/reload)",
            envvar="HOLOCRM_RELOAD_INTERVAL_S",
        ),
        log_level: str = typer.Option("info", help="uvicorn log level"),
    ) -> None:
        """Serve similar contacts, search, NL questions, scores, recommendations and outcome capture."""
        import uvicorn

        from holocrm_api import ServingSettings, create_app

        settings = ServingSettings.from_env(api_key_required=api_key_required, reload_interval_s=reload_interval)
        try:
            application = create_app(settings)
        except ValueError as exc:  # e.g. keys required but none configured
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2)
        typer.echo(f"HoloCRM API on http://{host}:{port} (docs at /docs, health at /health)")
        uvicorn.run(application, host=host, port=port, log_level=log_level, access_log=False)
