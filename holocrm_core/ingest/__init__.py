"""Ingestion: read a CRM export (CSV/JSON/NDJSON/Parquet/XLSX) with a source profile, validate, quarantine.

    raw = read_export("landing/", profile=None)          # profile detected: generic/salesforce/hubspot/maven
    result = stage_all(raw, warehouse=Warehouse(root))   # every entity in dependency order, + reconcile
    one = stage_one("contacts", raw.tables["contacts"], {"companies": company_ids})   # what an asset does
    result = ingest_export("landing/", warehouse=Warehouse(root))   # read_export + stage_all

Nothing is silently dropped: for every file, rows read = rows staged + rows quarantined, and every rejected
record is one ``schema.QUARANTINE`` row saying which line, column and value was wrong and how to fix it.
A user describes their own export in a YAML mapping file (see ``holocrm_core.ingest.mapping``).
"""

from holocrm_core.ingest import maven as _maven  # noqa: F401  (registers the maven profile)
from holocrm_core.ingest.export import (
    PARENTS,
    MissingColumnError,
    NothingToIngestError,
    StagedEntity,
    assemble_quarantine,
    ingest_export,
    read_export,
    require_recognised,
    resolve_profile,
    stage_all,
    stage_one,
)
from holocrm_core.ingest.mapping import load_mapping
from holocrm_core.ingest.profiles import PROFILES, Profile, detect_profile
from holocrm_core.ingest.reports import FileReport, IngestResult, RawExport
from holocrm_core.ingest.validate import stage_entity

__all__ = [
    "PARENTS",
    "PROFILES",
    "MissingColumnError",
    "NothingToIngestError",
    "StagedEntity",
    "assemble_quarantine",
    "stage_all",
    "require_recognised",
    "stage_one",
    "FileReport",
    "IngestResult",
    "Profile",
    "RawExport",
    "detect_profile",
    "ingest_export",
    "load_mapping",
    "read_export",
    "resolve_profile",
    "stage_entity",
]
