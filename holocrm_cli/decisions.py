"""`holocrm recommend contact ID` (the next best action and why) and `holocrm policy evaluate` (the gate).

``recommend`` reads the pipeline's ``recommendations`` table (one row); ``policy evaluate`` rebuilds the
candidate from the warehouse's ``action_log``, estimates it off-policy against the champion and the logging
policy, logs the MLflow run and moves ``champion`` only past the gate (what the ``policy_evaluation`` asset
does), then prints the decision.
"""

from __future__ import annotations

import json

import typer


def register(app: typer.Typer) -> None:
    recommend_app = typer.Typer(help="Next best action for a contact (email, call, proposal, wait).")
    policy_app = typer.Typer(help="The action policy: off-policy evaluation and the champion gate.")

    @recommend_app.command("contact")
    def recommend_contact(contact_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
        """The recommended action for CONTACT_ID with its expected success rate, uncertainty and reasons."""
        import polars as pl

        from holocrm_core.settings import HoloPaths
        from holocrm_core.warehouse import Warehouse

        warehouse = Warehouse(HoloPaths.default().warehouse)
        if not warehouse.exists("recommendations"):
            typer.echo(
                "no recommendations yet: run `holocrm run` (the recommendations asset) first", err=True
            )
            raise typer.Exit(1)
        rows = warehouse.scan("recommendations").filter(pl.col("contact_id") == contact_id).collect()
        if not rows.height:
            typer.echo(
                f"contact {contact_id} has no recommendation (unknown, or not an open contact)", err=True
            )
            raise typer.Exit(1)
        row = rows.row(0, named=True)
        if as_json:
            typer.echo(json.dumps(row, default=str))
            return
        typer.echo(
            f"contact {contact_id}: {row['action']} ({row['priority']} priority), "
            f"{row['expected_success_rate']:.0%} +/- {row['uncertainty']:.0%} expected success, "
            f"{row['trials']} outcomes — {row['policy_version']}"
        )
        typer.echo(f"  {row['reasoning']}")

    @policy_app.command("evaluate")
    def policy_evaluate(
        register_version: bool = typer.Option(True, "--register/--no-register"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Evaluate a fresh candidate on the action log; promote it only when its DR lower bound clears."""
        from holocrm_core.decisions.champion import evaluate_candidate, load_champion_policy, log_evaluation
        from holocrm_core.registry import configure
        from holocrm_core.settings import HoloPaths
        from holocrm_core.warehouse import Warehouse

        warehouse = Warehouse(HoloPaths.default().warehouse)
        if not warehouse.exists("action_log"):
            typer.echo("no action_log yet: run `holocrm run` (the action_log asset) first", err=True)
            raise typer.Exit(1)
        configure()
        champion = load_champion_policy()
        try:
            evaluation = evaluate_candidate(warehouse.read("action_log"), *(champion or (None, None)))
        except ValueError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from exc
        run = log_evaluation(evaluation, register=register_version)
        summary = {
            **evaluation.summary(),
            "version": run.version,
            "alias": run.alias,
            "mlflow_run": run.run_url,
        }
        if as_json:
            typer.echo(json.dumps(summary, default=str))
            return
        verdict = "promoted to champion" if run.promoted else "not promoted"
        typer.echo(f"candidate {verdict}: {run.reason}")
        for policy, by in evaluation.estimates.items():
            for name, est in by.items():
                typer.echo(
                    f"  {policy:9s} {name:9s} {est.value:.4f}  [{est.low:.4f}, {est.high:.4f}]  ESS {est.ess:.0f}"
                )
        typer.echo(f"  MLflow run: {run.run_url}")

    app.add_typer(recommend_app, name="recommend")
    app.add_typer(policy_app, name="policy")
