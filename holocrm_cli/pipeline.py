"""`holocrm generate | run | ingest | where`: sample export, the main job, and a plain ingest."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import typer

from holocrm_cli.output import fail
from holocrm_core.settings import HoloPaths, mlflow_tracking_uri

SAMPLE_CONTACTS = 2000
SAMPLE_SEED = 7

# Metadata the run summary leaves out (long tables and paths); the first scalar figures of the rest are shown.
SUMMARY_SKIP = {"path", "preview", "export_dir", "files", "null_rates", "rows_by_file", "examples"}
SUMMARY_FIGURES = 6
LOCKED_EXIT = 75  # EX_TEMPFAIL: another writer holds the home; try again later (or --wait)
WAIT_OPTION = typer.Option(
    False,
    "--wait/--no-wait",
    help="When another run, ingest or rollback holds this HOLOCRM_HOME: wait for it (default: refuse at once).",
)


def _echo(line: str) -> None:
    typer.echo(line)


def _progress(line: str) -> None:
    """Progress of long work goes to stderr, so stdout stays the result (JSON where asked)."""
    typer.echo(line, err=True)


def _check_source(export: Path | None, profile: str | None, mapping: Path | None) -> None:
    """A named profile that does not exist or a mapping file that cannot be read: one line, exit 2, before
    anything runs (inside the run it would surface as a step failure far from its cause)."""
    if profile is None and mapping is None:
        return
    from holocrm_core.ingest.export import resolve_profile

    if mapping is not None and not mapping.is_file():
        fail(f"mapping file {mapping} does not exist", 2)
    try:
        resolve_profile(export or Path("."), profile, mapping)
    except ValueError as exc:  # unknown profile, unreadable or invalid mapping
        fail(str(exc), 2)


def _one_line(error: str) -> str:
    """A run error on one line: the step and the innermost cause (the traceback stays in Dagster's log)."""
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    return " ".join(lines[:3])[:300] if lines else "unknown error"


def _sample_export(paths: HoloPaths, n_contacts: int, seed: int) -> Path:
    from holocrm_core.synth import generate_export

    out = paths.landing / f"sample-{n_contacts}-seed{seed}"
    if out.exists() and any(out.glob("*.csv")):
        _echo(f"sample export already in {out}")
        return out
    _echo(f"generating the sample export: {n_contacts} contacts, seed {seed} -> {out}")
    summary = generate_export(
        out, n_contacts=n_contacts, seed=seed, truth_dir=paths.truth, progress=lambda msg: _echo(f"  {msg}")
    )
    _echo(
        f"  {sum(summary.counts.values())} rows in {len(summary.counts)} files ({summary.seconds:.1f}s); "
        f"hidden truth in {summary.truth_dir}"
    )
    return out


SCORING_ASSETS = ("lead_scoring_model", "deal_scoring_model")


def _print_scores(summary, paths: HoloPaths) -> None:
    """What scores the user gets (the registry's verdict lines) and, on the generated sample, how those
    scores do against its hidden truth next to the weighted heuristic."""
    verdicts = {o.asset: o.metadata["verdict"] for o in summary.assets if "verdict" in o.metadata}
    lines = [verdicts[asset] for asset in SCORING_ASSETS if asset in verdicts]  # leads, then deals
    if not lines:
        return
    _echo("scores served:")
    for line in lines:
        _echo(f"  {line}")
    if (paths.truth / "leads.parquet").exists():
        from holocrm_core.scoring.truth import served_vs_truth, summary_lines
        from holocrm_core.settings import warehouse_root
        from holocrm_core.warehouse import Warehouse

        try:
            report = served_vs_truth(Warehouse(warehouse_root(paths)), paths.truth)
        except Exception as exc:  # noqa: BLE001 - a summary line must not fail the run
            _echo(f"  (against the hidden truth: not measured: {type(exc).__name__}: {exc})")
            return
        for line in summary_lines(report):
            _echo(line)


def print_summary(summary, paths: HoloPaths) -> None:
    _echo("")
    _echo(
        f"HoloCRM run {summary.run_id[:8]}: {'succeeded' if summary.success else 'FAILED'} "
        f"in {summary.seconds:.1f}s, {len(summary.assets)} assets materialized"
    )
    width = max((len(a.asset) for a in summary.assets), default=10)
    for outcome in summary.assets:
        figures = []
        for key, value in outcome.metadata.items():
            if (
                key in SUMMARY_SKIP
                or not isinstance(value, (int, float, str, bool))
                or len(figures) >= SUMMARY_FIGURES
            ):
                continue
            if isinstance(value, str) and (len(value) > 60 or "\n" in value):
                continue
            figures.append(f"{key}={value:.3f}" if isinstance(value, float) else f"{key}={value}")
        _echo(f"  {outcome.asset:<{width}}  {'  '.join(figures)[:160]}")
    _print_scores(summary, paths)
    if summary.failed_checks:
        _echo(f"checks not passed: {', '.join(summary.failed_checks)}")
    for error in summary.errors:
        typer.echo(f"error: {_one_line(error)}", err=True)
    _echo("")
    _echo("where things are:")
    _echo(f"  HOLOCRM_HOME   {paths.home}")
    from holocrm_core.settings import lancedb_uri, warehouse_root

    tables = warehouse_root(paths)
    _echo(f"  tables         {tables}  (Parquet, one per asset)")
    _echo(f"  quarantine     {tables}/quarantine_<entity>.parquet")
    _echo(f"  LanceDB        {lancedb_uri(paths)}")
    _echo(f"  MLflow         {mlflow_tracking_uri()}")
    _echo(f"  Dagster        DAGSTER_HOME={paths.dagster_home} .venv/bin/dagster dev -w workspace.yaml")


def _partitioned(only: list[str] | None) -> list[str]:
    """The partitioned assets ``only`` names (all of them when None); an unpartitioned one: exit 2."""
    from pipelines.jobs import PARTITIONED_ASSETS

    unknown = [name for name in only or () if name not in PARTITIONED_ASSETS]
    if unknown:
        fail(
            f"not a partitioned asset: {', '.join(unknown)} (partitioned: {', '.join(PARTITIONED_ASSETS)})", 2
        )
    return list(dict.fromkeys(only)) if only else list(PARTITIONED_ASSETS)


def _shards(values: list[int] | None) -> list[int] | None:
    """``--shards 0,2`` / ``--shard 1``: checked against HOLOCRM_SHARDS (exit 2 outside 0..n-1)."""
    from holocrm_core.partitions import shard_count

    if not values:
        return None
    count = shard_count()
    bad = sorted({v for v in values if not 0 <= v < count})
    if bad:
        fail(
            f"shard {', '.join(map(str, bad))} out of range: there are {count} (0..{count - 1}, HOLOCRM_SHARDS)",
            2,
        )
    return sorted(set(values))


def _batch_of(paths: HoloPaths, export: Path | None) -> str:
    from holocrm_core.landing import resolve_export_dir
    from holocrm_core.partitions import batch_key

    try:
        return batch_key(resolve_export_dir(paths.landing, export).name)
    except FileNotFoundError as exc:
        fail(str(exc), 2)
        raise


def _shard_rerun(
    paths: HoloPaths, export: Path | None, only: list[str] | None, shard: list[int]
) -> list[str]:
    """`holocrm run --shard N`: the partitioned assets (of --only) for shard N of a batch already built. A
    partitioned asset reads every shard of its upstream tables of the batch, so a shard alone runs only once
    the others exist; a batch not built yet is backfilled shard by shard (`holocrm backfill`)."""
    from holocrm_core.partitions import PartitionedTable, shard_count
    from holocrm_core.settings import warehouse_root
    from holocrm_core.warehouse import Warehouse

    selection = _partitioned(only)
    shards = _shards(shard) or []
    if shards != list(range(shards[0], shards[-1] + 1)):
        fail(f"--shard {shards}: one run covers consecutive shards; use `holocrm backfill --shards`", 2)
    from pipelines.jobs import PARTITIONED_ASSETS

    batch = _batch_of(paths, export)
    warehouse = Warehouse(warehouse_root(paths))
    every = set(range(shard_count()))
    unbuilt = [
        name
        for name in PARTITIONED_ASSETS
        if name != "similarity_index" and PartitionedTable(warehouse, name).shards_written(batch) != every
    ]
    if unbuilt:
        fail(
            f"batch {batch!r} is not built yet ({', '.join(unbuilt[:4])}{' ...' if len(unbuilt) > 4 else ''} "
            "lack shards): build it first with `holocrm backfill` (or `holocrm run`), then re-run a shard",
            2,
        )
    return selection


def _batch_export(paths: HoloPaths, export: Path | None, batch: str | None) -> Path | None:
    """The export folder of ``--batch KEY`` (a landing folder whose batch key it is), else ``export``."""
    if batch is None:
        return export
    from holocrm_core.landing import export_batches
    from holocrm_core.partitions import batch_key

    folders = {batch_key(folder.name): folder for folder in export_batches(paths.landing)}
    if batch not in folders:
        known = ", ".join(folders) or "none"
        fail(f"no export batch {batch!r} in {paths.landing} (batches there: {known})", 2)
    if export is not None and export.resolve() != folders[batch].resolve():
        fail(f"--export {export} is not batch {batch!r} ({folders[batch]}): give one of them", 2)
    return folders[batch]


def partition_layout(paths: HoloPaths) -> dict:
    """`holocrm where`'s partitions: the shard count, the key, the partitioned tables, what each batch holds."""
    from holocrm_core.partitions import layout, shard_count
    from holocrm_core.settings import warehouse_root
    from holocrm_core.warehouse import Warehouse
    from pipelines.jobs import PARTITIONED_ASSETS

    names = [name for name in PARTITIONED_ASSETS if name != "similarity_index"]
    count = shard_count()
    try:
        batches = layout(Warehouse(warehouse_root(paths)), names, count)["batches"]
    except Exception as exc:  # noqa: BLE001 - an unreachable store must not hide the rest of `where`
        batches = f"not read: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
    return {
        "key": "<export batch>|<shard>; shard = CRC-32 of the entity id mod shards",
        "shards": count,
        "shards_setting": "HOLOCRM_SHARDS",
        "partitioned_assets": [*names, "similarity_index (LanceDB, merged shard by shard)"],
        "batches": batches,
    }


def register(app: typer.Typer) -> None:
    @app.command()
    def generate(
        contacts: int = typer.Option(
            SAMPLE_CONTACTS,
            "--contacts",
            "-n",
            min=100,
            max=1_000_000,
            help="Number of contacts (100 to 1,000,000).",
        ),
        seed: int = typer.Option(SAMPLE_SEED, help="Random seed: the same seed gives the same export."),
        out: Path = typer.Option(..., "--out", "-o", help="Export folder to write."),
        truth: Path | None = typer.Option(
            None, help="Truth folder (default: beside the export, <out>/../truth)."
        ),
    ) -> None:
        """Generate a realistic CRM export with a hidden ground truth."""
        from holocrm_core.synth import generate_export

        summary = generate_export(
            out, n_contacts=contacts, seed=seed, truth_dir=truth, progress=lambda msg: _progress(f"  {msg}")
        )
        _echo(
            json.dumps(
                {
                    "export": str(summary.out_dir),
                    "truth": str(summary.truth_dir),
                    "rows": summary.counts,
                    "dirty_rows": summary.dirty,
                    "duplicate_pairs": summary.duplicate_pairs,
                    "seconds": round(summary.seconds, 2),
                },
                indent=2,
            )
        )

    @app.command()
    def run(
        export: Path | None = typer.Option(
            None,
            "--export",
            "-e",
            help="Export folder to ingest (default: newest batch in the landing "
            "folder; the sample export is generated when there is none).",
        ),
        profile: str | None = typer.Option(
            None,
            help="Source profile: generic, salesforce, hubspot, maven (default: detected from the headers).",
        ),
        mapping: Path | None = typer.Option(None, help="YAML mapping file describing a custom export."),
        sample_contacts: int = typer.Option(
            SAMPLE_CONTACTS, help="Size of the sample export when one is generated."
        ),
        only: list[str] | None = typer.Option(
            None, "--only", help="Materialize only these assets (repeatable)."
        ),
        shard: list[int] | None = typer.Option(
            None,
            "--shard",
            help="Re-run only this shard (repeatable, consecutive) of the batch's partitioned assets (all of "
            "them, or those of --only); the batch must be built already (`holocrm where` shows it).",
        ),
        wait: bool = WAIT_OPTION,
    ) -> None:
        """The main job: materialize the whole asset graph on an export and print a summary."""
        from holocrm_core.homelock import HomeLocked
        from holocrm_core.landing import export_batches
        from pipelines.runner import run_all

        paths = HoloPaths.default().ensure()
        if export is None and not export_batches(paths.landing) and not shard:
            export = _sample_export(paths, sample_contacts, SAMPLE_SEED)
        if export is not None and not export.is_dir():
            fail(f"export folder {export} does not exist", 2)
        _check_source(export, profile, mapping)
        selection = _shard_rerun(paths, export, only, shard) if shard else only or None
        _echo(f"materializing the HoloCRM asset graph (HOLOCRM_HOME={paths.home})")
        try:
            summary = run_all(
                export_dir=export,
                profile=profile,
                mapping=mapping,
                paths=paths,
                progress=_echo,
                selection=selection,
                wait_s=float("inf") if wait else 0.0,
                shards=sorted(set(shard)) if shard else None,
            )
        except HomeLocked as exc:
            _echo(f"error: {exc}")
            raise typer.Exit(LOCKED_EXIT) from exc
        print_summary(summary, paths)
        if not summary.success:
            raise typer.Exit(1)

    @app.command()
    def backfill(
        export: Path | None = typer.Option(
            None, "--export", "-e", help="Export folder (default: the newest batch in the landing folder)."
        ),
        batch: str | None = typer.Option(
            None,
            "--batch",
            help="The landing folder's export batch to backfill, by key (see `holocrm where`).",
        ),
        shards: str | None = typer.Option(
            None, "--shards", help="Only these shards, e.g. 0,2 (default: every shard, HOLOCRM_SHARDS)."
        ),
        only: list[str] | None = typer.Option(
            None, "--only", help="Only this partitioned asset (repeatable); its upstream must be built."
        ),
        resume: bool = typer.Option(
            True, "--resume/--no-resume", help="Skip partitions already written (default) or rebuild them."
        ),
        wait: bool = WAIT_OPTION,
    ) -> None:
        """Build the partitioned assets of one export batch shard by shard, in dependency order; resumable
        (an interrupted backfill goes on where it stopped). The unpartitioned assets are not run."""
        from holocrm_core.homelock import HomeLocked
        from pipelines.runner import backfill as run_backfill

        paths = HoloPaths.default().ensure()
        if export is not None and not export.is_dir():
            fail(f"export folder {export} does not exist", 2)
        export = _batch_export(paths, export, batch)
        selection = _partitioned(only) if only else None
        wanted = None
        if shards is not None:
            try:
                wanted = [int(part) for part in shards.replace(" ", "").split(",") if part]
            except ValueError:
                fail(f"--shards {shards!r}: give shard numbers separated by commas, e.g. 0,2", 2)
            if not wanted:
                fail("--shards is empty: give shard numbers separated by commas, e.g. 0,2", 2)
        wanted = _shards(wanted)
        key = _batch_of(paths, export)
        _echo(f"backfilling export batch {key} shard by shard (HOLOCRM_HOME={paths.home})")
        started = time.perf_counter()
        try:
            runs = run_backfill(
                export,
                paths=paths,
                progress=_echo,
                shards=wanted,
                resume=resume,
                selection=selection,
                wait_s=float("inf") if wait else 0.0,
            )
        except HomeLocked as exc:
            _echo(f"error: {exc}")
            raise typer.Exit(LOCKED_EXIT) from exc
        failed = [run for run in runs if not run.success]
        for run in failed:
            for error in run.errors:
                typer.echo(f"error: {_one_line(error)}", err=True)
        _echo(
            f"backfill of {key}: {len(runs)} runs, {len(failed)} failed, {time.perf_counter() - started:.1f}s"
            + (
                ""
                if failed
                else "; `holocrm where` shows the partitions, `holocrm run` the rest of the graph"
            )
        )
        if failed:
            raise typer.Exit(1)

    @app.command()
    def ingest(
        export: Path = typer.Argument(..., help="Export folder (CSV, JSON, NDJSON, Parquet, XLSX files)."),
        profile: str | None = typer.Option(
            None, help="generic, salesforce, hubspot, maven (default: detected)."
        ),
        mapping: Path | None = typer.Option(None, help="YAML mapping file describing a custom export."),
        as_json: bool = typer.Option(False, "--json", help="Print the per-file report as JSON."),
        wait: bool = WAIT_OPTION,
    ) -> None:
        """Ingest an export into the warehouse without Dagster (the same read -> stage -> reconcile path as the assets)."""
        from holocrm_core.homelock import HomeLocked, home_lock
        from holocrm_core.ingest import MissingColumnError, NothingToIngestError, ingest_export
        from holocrm_core.settings import warehouse_root
        from holocrm_core.warehouse import Warehouse

        if not export.is_dir():
            fail(f"export folder {export} does not exist", 2)
        _check_source(export, profile, mapping)
        paths = HoloPaths.default().ensure()
        try:
            with home_lock(
                paths.home, "holocrm ingest", wait_s=float("inf") if wait else 0.0, progress=_progress
            ):
                result = ingest_export(
                    export,
                    warehouse=Warehouse(warehouse_root(paths)),
                    profile=profile,
                    mapping=mapping,
                    progress=lambda msg: _progress(f"  {msg}"),
                )
        except (
            MissingColumnError,
            NothingToIngestError,
            ValueError,
        ) as exc:  # a missing column, a bad profile
            fail(str(exc), 2)
        except HomeLocked as exc:
            _echo(f"error: {exc}")
            raise typer.Exit(LOCKED_EXIT) from exc
        report = [vars(f) for f in result.files]
        if as_json:
            _echo(
                json.dumps(
                    {
                        "profile": result.profile,
                        "files": report,
                        "custom_fields": result.custom_fields,
                        "warnings": result.warnings,
                    },
                    indent=2,
                    default=str,
                )
            )
        else:
            _echo(f"profile: {result.profile}")
            for f in result.files:
                status = (
                    f"error: {f.error}"
                    if f.error
                    else (f"{f.rows_read} read = {f.rows_staged} staged + {f.rows_quarantined} quarantined")
                )
                _echo(f"  {f.path:<40} {f.entity or '?':<12} {status}")
            for warning in result.warnings:
                _echo(f"warning: {warning}")
            _echo(f"tables written to {warehouse_root(paths)}")
        unbalanced = [
            f"{f.entity}: {f.path}" for f in result.check_rows_read_invariant()
        ] + result.unbalanced_files()
        if unbalanced:
            _echo(f"error: rows read != staged + quarantined for {', '.join(dict.fromkeys(unbalanced))}")
            sys.exit(1)

    @app.command()
    def history(
        table: str = typer.Argument(..., help="Warehouse table, e.g. staged_contacts."),
        as_json: bool = typer.Option(False, "--json", help="Print the versions as JSON."),
    ) -> None:
        """The kept versions of a warehouse table, oldest first (the current one marked)."""
        from holocrm_core.settings import warehouse_root
        from holocrm_core.warehouse import TableVersionError, Warehouse

        warehouse = Warehouse(warehouse_root())
        try:
            versions = warehouse.history(table)
        except (TableVersionError, ValueError) as exc:
            _echo(f"error: {exc}")
            raise typer.Exit(2) from exc
        if as_json:
            _echo(json.dumps({"table": table, "versions": versions}, indent=2))
            return
        _echo(f"{table}: {len(versions)} versions kept in {warehouse.versions_dir(table)}")
        for v in versions:
            mark = "*" if v.get("current") else " "
            _echo(
                f" {mark} {v.get('version')!s:>6}  {v.get('written_at') or '?':<25}  "
                f"{v.get('rows')!s:>9} rows  {v.get('operation')}"
            )

    @app.command()
    def rollback(
        table: str = typer.Argument(..., help="Warehouse table, e.g. staged_contacts."),
        to: int = typer.Option(
            ..., "--to", help="The version to make current again (see `holocrm history`)."
        ),
        wait: bool = WAIT_OPTION,
    ) -> None:
        """Make an earlier version of a table current again (recorded as a new version; nothing is deleted)."""
        from holocrm_core.homelock import HomeLocked, home_lock
        from holocrm_core.settings import warehouse_root
        from holocrm_core.warehouse import TableVersionError, Warehouse

        paths = HoloPaths.default().ensure()
        warehouse = Warehouse(warehouse_root(paths))
        try:
            with home_lock(paths.home, f"holocrm rollback {table}", wait_s=float("inf") if wait else 0.0):
                version = warehouse.rollback(table, to)
        except (TableVersionError, ValueError) as exc:
            _echo(f"error: {exc}")
            raise typer.Exit(2) from exc
        except HomeLocked as exc:
            _echo(f"error: {exc}")
            raise typer.Exit(LOCKED_EXIT) from exc
        _echo(f"{table}: version {to} is current again, as version {version}")

    @app.command()
    def where() -> None:
        """Print where HoloCRM keeps its state and which backends are in use (Dagster instance storage,
        executor, MLflow tracking and artifact store, LanceDB, warehouse), secrets masked."""
        from holocrm_core.settings import Backends, SettingsError

        paths = HoloPaths.default()
        try:
            backends = Backends.load()
        except SettingsError as exc:
            _echo(f"error: {exc}")
            raise typer.Exit(2) from exc
        described = backends.described(paths)
        _echo(
            json.dumps(
                {
                    "home": str(paths.home),
                    "landing": str(paths.landing),
                    "warehouse": described["warehouse"],
                    "warehouse_retention": described["warehouse retention"],
                    "lancedb": described["lancedb"],
                    "logs": str(paths.logs),
                    "mlflow": described["mlflow tracking"],
                    "mlflow_artifacts": described["mlflow artifacts"],
                    "dagster_home": str(paths.dagster_home),
                    "dagster_instance": described["dagster instance"],
                    "executor": described["executor"],
                    "s3_endpoint": described["s3 endpoint"],
                    "s3_access_key": described["s3 access key"],
                    "s3_secret_key": described["s3 secret key"],
                    "settings": described["settings"],
                    "partitions": partition_layout(paths),
                },
                indent=2,
            )
        )
