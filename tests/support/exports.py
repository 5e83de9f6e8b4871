"""Generated exports of other shapes than the full sample: one entity only, or one entity missing."""

from __future__ import annotations

import shutil
from pathlib import Path

ENTITY_FILES = {
    "companies": "companies.csv",
    "contacts": "contacts.csv",
    "deals": "deals.csv",
    "activities": "activities.csv",
    "attachments": "attachments.csv",
}
# shape name -> the entity files the export keeps (the outreach log only where contacts and activities are)
SHAPES = {
    "contacts_only": {"contacts"},
    "deals_only": {"deals"},
    "no_activities": {"companies", "contacts", "deals"},
    "no_attachments": {"companies", "contacts", "deals", "activities"},
    "no_companies": {"contacts", "deals", "activities", "attachments"},
}


def export_of_shape(root: Path, shape: str, n_contacts: int = 120, seed: int = 1) -> Path:
    """A generated export under ``root/<shape>`` holding only the files of ``SHAPES[shape]`` (no attachment
    files on disk: their rows point at nothing, which the attachment assets must quarantine, not fail on)."""
    from holocrm_core.synth import generate_export

    keep = SHAPES[shape]
    export = root / shape / "export"
    # the truth is kept away from the export (not in "truth" beside it): an export of another CRM has none,
    # so the assets must not take it for the generator's world
    generate_export(
        export,
        n_contacts=n_contacts,
        seed=seed,
        truth_dir=root / shape / "hidden",
        with_attachment_files=False,
    )
    for entity, file_name in ENTITY_FILES.items():
        if entity not in keep:
            (export / file_name).unlink()
    if not {"contacts", "activities"} <= keep:
        shutil.rmtree(export / "outreach", ignore_errors=True)
    return export
