"""`holocrm experiment create|list|report|stop|promote`: A/B tests of strategies, read honestly.

The definitions, exposures and reports live under HOLOCRM_HOME (see holocrm_core/experiments). Exposures
are logged by the API when it serves an answer of a variant; the CLI reads them.
"""

from __future__ import annotations

import json

import typer


def _service():
    """Read-only on exposures: the CLI serves no answers, the API logs them."""
    from holocrm_core.experiments.service import ExperimentService
    from holocrm_core.settings import HoloPaths

    return ExperimentService(HoloPaths.default().home)


def _deals():
    from holocrm_core.settings import warehouse_root
    from holocrm_core.warehouse import Warehouse

    warehouse = Warehouse(warehouse_root())
    return warehouse.read("staged_deals") if warehouse.exists("staged_deals") else None


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    exp_app = typer.Typer(help="A/B experiments of strategies: create, list, report, stop, promote.")

    @exp_app.command("create")
    def create(
        name: str,
        unit: str = typer.Option("contact", help="contact, deal or owner"),
        variant: list[str] = typer.Option(
            ...,
            "--variant",
            help="NAME=STRATEGY[:WEIGHT], the first is the control (e.g. control=decisions.cadence)",
        ),
        metric: str = typer.Option("response_rate", help="the primary metric (`holocrm experiment metrics`)"),
        guardrail: list[str] = typer.Option([], "--guardrail", help="a metric that must not get worse"),
        window_days: int = typer.Option(30, help="outcomes count within this many days of exposure"),
        description: str = typer.Option(""),
    ) -> None:
        """Create an experiment; assignment starts at once, by a hash of the experiment and the unit."""
        from holocrm_core.experiments import Experiment, ExperimentError, Variant

        try:
            variants = []
            for spec in variant:
                if "=" not in spec:
                    raise ExperimentError(f"--variant {spec!r}: write NAME=STRATEGY[:WEIGHT]")
                vname, rest = spec.split("=", 1)
                strategy, _, weight = rest.partition(":")
                variants.append(Variant(vname.strip(), strategy.strip(), float(weight) if weight else 1.0))
            experiment = Experiment(
                name, unit, tuple(variants), metric, tuple(guardrail), window_days, description=description
            )
            created = _service().create(experiment)
        except (ExperimentError, ValueError) as exc:
            _fail(exc)
        shares = ", ".join(f"{v.name} -> {v.strategy} ({v.weight:g})" for v in created.variants)
        typer.echo(f"experiment {created.name} started {created.start}: per {created.unit}, {shares}")

    @exp_app.command("list")
    def list_(as_json: bool = typer.Option(False, "--json")) -> None:
        """Every experiment with its state."""
        experiments = _service().list()
        if as_json:
            typer.echo(json.dumps([e.to_json() for e in experiments]))
            return
        if not experiments:
            typer.echo("no experiments yet: `holocrm experiment create NAME --variant ... --variant ...`")
        for e in experiments:
            state = "running" if e.running else f"stopped {e.stop}"
            variants = " vs ".join(f"{v.name}={v.strategy}" for v in e.variants)
            typer.echo(f"{e.name:24} {state:28} per {e.unit:8} {e.primary_metric:22} {variants}")

    @exp_app.command("metrics")
    def metrics() -> None:
        """The metrics an experiment can be judged on."""
        from holocrm_core.experiments import METRICS

        for m in METRICS.values():
            typer.echo(f"{m.name:24} {m.kind:6} {m.description}")

    @exp_app.command("report")
    def report(name: str, as_json: bool = typer.Option(False, "--json")) -> None:
        """The experiment's report: units per variant, SRM check, effects with intervals, the verdict."""
        from holocrm_core.experiments import ExperimentError

        try:
            rep = _service().report(name, _deals())
        except ExperimentError as exc:
            _fail(exc)
        if as_json:
            typer.echo(json.dumps(rep.as_dict(), default=str))
            return
        units = ", ".join(f"{k} {n}" for k, n in rep.units.items())
        typer.echo(f"{name}: {units} units; sample ratio p = {rep.srm.p_value:.3g}")
        header = (
            f"  {'metric':22} {'variant':12} {'control':>10} {'variant':>10} {'lift':>8}  always-valid 95% CI"
        )
        typer.echo(header)
        for r in rep.results:
            e, s = r.effect, r.sequential
            lift = "n/a" if e.lift is None else f"{e.lift:+.1%}"
            typer.echo(
                f"  {r.metric:22} {r.variant:12} {e.control_mean:10.4g} {e.treatment_mean:10.4g} {lift:>8}"
                f"  [{s.ci_low:.4g}, {s.ci_high:.4g}]  P(win) {r.bayes.chance_to_win:.0%}"
            )
        for note in rep.notes:
            typer.echo(f"  note: {note}")
        typer.echo(rep.verdict)
        if rep.decision == "blocked":
            raise typer.Exit(2)

    @exp_app.command("stop")
    def stop(name: str) -> None:
        """Stop assigning and logging exposures (the report stays readable)."""
        from holocrm_core.experiments import ExperimentError

        try:
            stopped = _service().stop(name)
        except ExperimentError as exc:
            _fail(exc)
        typer.echo(f"experiment {name} stopped at {stopped.stop}")

    @exp_app.command("promote")
    def promote(name: str) -> None:
        """Serve the report's winner, through the same gate as every model (refused with the reason)."""
        from holocrm_core.experiments import ExperimentError

        try:
            experiment, message = _service().promote(name, _deals())
        except ExperimentError as exc:
            _fail(exc)
        typer.echo(f"experiment {name}: promoted {experiment.promoted}: {message}")

    app.add_typer(exp_app, name="experiment")
