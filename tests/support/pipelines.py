"""Set-up shared by the pipeline tests: a generated export, ingested into a fresh HOLOCRM_HOME."""

from __future__ import annotations

from pathlib import Path


def ingested_home(root: Path, n_contacts: int, seed: int):
    """Generate an export (no attachment files) under ``root/landing/export``, stage it; the HoloPaths."""
    from holocrm_core.ingest import ingest_export
    from holocrm_core.settings import HoloPaths
    from holocrm_core.synth import generate_export
    from holocrm_core.warehouse import Warehouse

    export = root / "landing" / "export"
    generate_export(
        export, n_contacts=n_contacts, seed=seed, truth_dir=root / "truth", with_attachment_files=False
    )
    paths = HoloPaths(root).ensure()
    ingest_export(export, warehouse=Warehouse(paths.warehouse))
    return paths


def copied_home(template: Path, root: Path):
    """A private copy of an ingested home (``ingested_home``'s ``root``) under ``root``; its HoloPaths."""
    import shutil

    from holocrm_core.settings import HoloPaths

    shutil.copytree(template, root, symlinks=True, dirs_exist_ok=True)
    return HoloPaths(root).ensure()
