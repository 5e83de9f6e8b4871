"""`holocrm serve`: start the HoloCRM API (FastAPI under uvicorn) over the latest artifacts."""

from __future__ import annotations

from pathlib import Path

import typer

from holocrm_cli import client


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0 for all)"),
        port: int = typer.Option(8000, min=1, max=65535, help="TCP port"),
        api_key_required: bool = typer.Option(
            False,
            "--api-key-required/--no-api-key-required",
            help="Refuse to start without an API key. Any key configured (HOLOCRM_API_KEY, HOLOCRM_API_KEYS, "
            "HOLOCRM_API_KEY_FILE) turns auth on by itself",
            envvar="HOLOCRM_API_KEY_REQUIRED",
        ),
        api_key_file: Path | None = typer.Option(
            None,
            help="File of API keys, one a line; re-read when it changes (rotation without restart)",
            envvar="HOLOCRM_API_KEY_FILE",
        ),
        reload_interval: float = typer.Option(
            15.0,
            help="Seconds between checks for a newer index or champion (0: only POST /api/admin/reload)",
            envvar="HOLOCRM_RELOAD_INTERVAL_S",
        ),
        log_level: str = typer.Option("info", help="uvicorn log level"),
        workers: int = typer.Option(
            1,
            min=1,
            max=64,
            help="Server processes sharing the port. They append to the same outcome and action logs; each "
            "write is recorded once, whichever process takes it (a file lock orders them)",
            envvar="HOLOCRM_WORKERS",
        ),
    ) -> None:
        """Serve similar contacts, search, NL questions, scores, recommendations and outcome capture."""
        import uvicorn
        from pydantic import ValidationError

        from holocrm_api import ServingSettings, create_app

        try:
            settings = ServingSettings.from_env(
                api_key_required=api_key_required,
                api_key_file=api_key_file,
                reload_interval_s=reload_interval,
            )
            if workers > 1:
                from holocrm_api.auth import ApiKeyGuard

                guard = ApiKeyGuard(settings)  # refuse here, not in every worker
            else:
                application = create_app(settings)
                guard = application.state.services.guard
        except (ValueError, ValidationError) as exc:  # keys required but none configured, a bad setting
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2)
        auth = "on (API key required on /api/*)" if guard.enabled else "off (no API key configured)"
        typer.echo(
            f"HoloCRM API on http://{host}:{port} (docs at /docs, health at /health); auth {auth}"
            + (f"; {workers} worker processes" if workers > 1 else "")
        )
        # CLI commands on this home send their requests here while it runs (see holocrm_cli.client)
        client.announce(f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}", guard.enabled)
        try:
            if workers == 1:
                uvicorn.run(application, host=host, port=port, log_level=log_level, access_log=False)
                return
            import os

            # Each worker builds its app from the environment: hand it what the options said.
            os.environ["HOLOCRM_API_KEY_REQUIRED"] = "true" if api_key_required else "false"
            os.environ["HOLOCRM_RELOAD_INTERVAL_S"] = str(reload_interval)
            if api_key_file is not None:
                os.environ["HOLOCRM_API_KEY_FILE"] = str(api_key_file)
            # (an MLflow SQLite store is created, once and under a file lock, by whoever configures it first)
            uvicorn.run(
                "holocrm_api.main:create_app",
                factory=True,
                workers=workers,
                host=host,
                port=port,
                log_level=log_level,
                access_log=False,
            )
        finally:
            client.withdraw()
