"""`holocrm field simulate --weeks N`: a sales team plays N weeks against a known true world through the API.

Each week every rep's contact is assigned to an arm of the experiment `field-learning` (sticky, exposure
logged by the API), the rep takes the arm's action (the served recommendation, or the fixed cadence), the
true world answers, and at the end of the week (outcomes arrive late) the results are posted to
`POST /api/actions/outcome`, from which the served policy learns online. The experiment report is then read
from the API and printed beside the truth: each arm's true weekly reward, the report's estimate of the
uplift with its always-valid 95% interval, and the true uplift.

It runs against an in-process app over a fresh home (default) or a running server (`--server`).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import typer

EXPERIMENT = "field-learning"


def simulate(weeks: int, contacts: int, seed: int, null: bool, home: Path | None = None, client=None) -> dict:
    """Play the weeks; return the per-week table, the final report and the truth (a plain dict)."""
    import numpy as np

    from holocrm_core.experiments.field import FieldLedger, TrueWorld, cadence_action, field_contacts

    world = TrueWorld(seed=seed, null=null)
    people = field_contacts(contacts, seed)
    owned = client is None
    if owned:
        client = _in_process_client(home or Path(tempfile.mkdtemp(prefix="holocrm-field-")), people)
    rng = np.random.default_rng(seed)
    learning_strategy = "decisions.cadence" if null else "decisions.policy"
    created = client.post(
        "/api/experiments",
        json={
            "name": EXPERIMENT,
            "unit": "contact",
            "variants": [
                {"name": "cadence", "strategy": "decisions.cadence"},
                {"name": "learning", "strategy": learning_strategy},
            ],
            "primary_metric": "mean_reward",
            "window_days": 365,
        },
    )
    if created.status_code not in (201, 409):
        raise RuntimeError(f"could not create the experiment: {created.status_code} {created.text}")
    ledger = FieldLedger()
    weekly = []
    for week in range(weeks):
        rows = []
        for contact in people.iter_rows(named=True):
            cid = contact["contact_id"]
            arm = client.get(
                f"/api/experiments/{EXPERIMENT}/assignment", params={"unit_id": cid, "answer_id": f"w{week}"}
            ).json()["variant"]
            if arm == "learning" and not null:
                action = client.get(f"/api/contacts/{cid}/recommendation").json()["action"]
            else:
                action = cadence_action(week)
            p, reward = world.respond(rng, contact["seniority"], contact["lifecycle_status"], action)
            p_cadence = world.probability(
                contact["seniority"], contact["lifecycle_status"], cadence_action(week)
            )
            rows.append((cid, arm, p, reward, p_cadence, action))
        for cid, arm, _, reward, _, action in rows:  # the week's outcomes arrive at its end
            answer = client.post(
                "/api/actions/outcome",
                json={
                    "contact_id": cid,
                    "action": action,
                    "reward": reward,
                    "policy": arm,
                    "idempotency_key": f"field-w{week}-{cid}",
                },
            )
            if answer.status_code not in (200, 201):
                raise RuntimeError(f"outcome refused: {answer.status_code} {answer.text}")
        ledger.add_week(week, [r[:5] for r in rows])
        report = client.get(f"/api/experiments/{EXPERIMENT}/report").json()
        if "results" not in report:
            raise RuntimeError(f"the experiment report failed: {report}")
        result = next((r for r in report["results"] if r["metric"] == "mean_reward"), None)
        truth = ledger.true_uplift("learning")
        weekly.append(
            {
                "week": week + 1,
                "true_reward": {w.arm: round(w.true_reward, 4) for w in ledger.weeks if w.week == week},
                "estimated_uplift": result and result["diff"],
                "interval": result and result["sequential_ci"],
                "true_uplift": truth,
                "decision": report["decision"],
            }
        )
    final = weekly[-1]
    last = {w.arm: w.true_reward for w in ledger.weeks if w.week == weeks - 1}
    lo, hi = final["interval"] or (None, None)
    summary = {
        "weeks": weekly,
        "final_true_reward": last,
        "learning_over_cadence": (last["learning"] / last["cadence"] - 1) if last.get("cadence") else None,
        "true_uplift": final["true_uplift"],
        "interval": final["interval"],
        "covers_truth": lo is not None and lo <= final["true_uplift"] <= hi,
        "decision": final["decision"],
        "verdict": report["verdict"],
    }
    if owned:
        client.__exit__(None, None, None)
    return summary


def _in_process_client(home: Path, people):
    import os

    from fastapi.testclient import TestClient

    from holocrm_api import ServingSettings, create_app
    from holocrm_core.warehouse import Warehouse

    Warehouse(home / "warehouse").write("staged_contacts", people)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
    settings = ServingSettings.from_env(home=home, reload_interval_s=0, api_keys=(), api_key_required=False)
    client = TestClient(create_app(settings), raise_server_exceptions=True)
    client.__enter__()
    return client


def register(app: typer.Typer) -> None:
    field_app = typer.Typer(help="The field simulation: the product's proof that it learns.")

    @field_app.command("simulate")
    def simulate_command(
        weeks: int = typer.Option(12, min=1, max=104),
        contacts: int = typer.Option(300, min=10, max=100_000, help="contacts the team works each week"),
        seed: int = typer.Option(0),
        null: bool = typer.Option(False, "--null", help="both arms serve the cadence: the truth is 0 uplift"),
        home: Path | None = typer.Option(None, help="where the simulated home goes (default: a temp folder)"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Play WEEKS weeks through the API and print each arm's true reward beside the report's estimate."""
        summary = simulate(weeks, contacts, seed, null, home)
        if as_json:
            typer.echo(json.dumps(summary, default=str))
            return
        typer.echo(
            f"{'week':>4}  {'cadence':>8}  {'learning':>8}  {'estimate':>9}  {'95% interval':>20}  {'truth':>7}"
        )
        for w in summary["weeks"]:
            lo, hi = w["interval"] or (float("nan"), float("nan"))
            est = w["estimated_uplift"] if w["estimated_uplift"] is not None else float("nan")
            typer.echo(
                f"{w['week']:>4}  {w['true_reward'].get('cadence', 0):8.3f}  {w['true_reward'].get('learning', 0):8.3f}"
                f"  {est:+9.3f}  [{lo:+8.3f}, {hi:+8.3f}]  {w['true_uplift']:+7.3f}"
            )
        typer.echo(summary["verdict"])
        gain = summary["learning_over_cadence"]
        typer.echo(
            f"last week: learning {gain:+.0%} over the cadence (true rewards); the interval "
            f"{'covers' if summary['covers_truth'] else 'MISSES'} the true uplift"
        )

    app.add_typer(field_app, name="field")
