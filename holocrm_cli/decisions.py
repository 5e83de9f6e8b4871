"""`holocrm recommend contact ID` (the next best action and why) and `holocrm policy evaluate` (the gate).

``recommend`` answers from the decision service the API answers with (``holocrm_core.decisions.service``:
the same contacts decided, the same policy, the same online state); ``policy evaluate`` rebuilds the
candidate from the warehouse's ``action_log``, estimates it off-policy against the champion and the logging
policy, logs the MLflow run and moves ``champion`` only past the gate (what the ``policy_evaluation`` asset
does), then prints the decision.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer


def decision_service():
    """The decision service over HOLOCRM_HOME, as the API builds it: staged tables, the registry's gated
    policies, the online state learned while serving, plus the outcomes recorded since it was saved."""
    from holocrm_core.decisions.service import DecisionService, read_outcome_records
    from holocrm_core.registry import configure
    from holocrm_core.settings import HoloPaths, warehouse_root
    from holocrm_core.warehouse import Warehouse

    paths = HoloPaths.default()
    warehouse = Warehouse(warehouse_root(paths))
    if not warehouse.exists("staged_contacts"):
        typer.echo("no staged contacts yet: run `holocrm run` first", err=True)
        raise typer.Exit(1)
    names = ("staged_contacts", "staged_companies", "staged_activities", "scored_leads", "action_log")
    tables = {n: warehouse.read(n) if warehouse.exists(n) else None for n in names}
    uri = configure()
    registry_absent = uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists()
    # read-only: the CLI answers from the saved state and never writes the server's file
    service = DecisionService.build(tables, paths.home, load_registry=not registry_absent, persist=False)
    service.replay(read_outcome_records(paths.logs / "actions.ndjson"))
    return service


def register(app: typer.Typer) -> None:
    recommend_app = typer.Typer(help="Next best action for a contact (email, call, proposal, wait).")
    policy_app = typer.Typer(help="The action policy: off-policy evaluation and the champion gate.")

    @recommend_app.command("contact")
    def recommend_contact(
        contact_id: str,
        as_json: bool = typer.Option(False, "--json"),
        posterior: bool = typer.Option(False, "--posterior", help="Show the posterior behind the decision"),
    ) -> None:
        """The recommended action for CONTACT_ID: which policy answered and why, the reasons, the posterior.

        The same decision service as the API's (and the same online state), so both give the same answer."""
        answer = decision_service().recommend(contact_id, posterior=posterior)
        if answer is None:
            typer.echo(f"contact {contact_id} is not in the staged contacts", err=True)
            raise typer.Exit(1)
        if as_json:
            typer.echo(json.dumps(answer, default=str))
            return
        if answer["decided"]:
            typer.echo(f"contact {contact_id}: no recommendation — {answer['reason']}")
            return
        policy = answer["policy"]
        typer.echo(
            f"contact {contact_id}: {answer['action']} ({answer.get('priority') or '-'} priority) — "
            f"{policy['name']} {policy['version']} ({policy['served_as']})"
        )
        typer.echo(f"  {answer['reasoning']}")
        typer.echo(f"  why this policy: {policy['why']}")
        for action, p in (answer.get("posterior") or {}).items():
            typer.echo(
                f"  {action:9s} {p['expected_success_rate']:.0%} +/- {p['uncertainty']:.0%} ({p['trials']} outcomes)"
            )

    @policy_app.command("evaluate")
    def policy_evaluate(
        register_version: bool = typer.Option(True, "--register/--no-register"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Evaluate a fresh candidate on the action log; promote it only when its DR lower bound clears."""
        from holocrm_core.decisions.champion import evaluate_candidate, load_champion_policy, log_evaluation
        from holocrm_core.decisions.recommend import fit_context_encoder
        from holocrm_core.registry import configure
        from holocrm_core.settings import warehouse_root
        from holocrm_core.warehouse import Warehouse

        warehouse = Warehouse(warehouse_root())
        if not warehouse.exists("action_log"):
            typer.echo("no action_log yet: run `holocrm run` (the action_log asset) first", err=True)
            raise typer.Exit(1)
        configure()
        champion = load_champion_policy()
        names = ("staged_contacts", "staged_companies", "staged_activities")
        encoder = fit_context_encoder({n: warehouse.read(n) if warehouse.exists(n) else None for n in names})
        try:
            evaluation = evaluate_candidate(
                warehouse.read("action_log"), *(champion or (None, None))[:2], encoder=encoder
            )
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
