"""The attachment assets materialized in process on a small generated export: every file accounted for, facts
findable in the LanceDB table by file and page, and a re-run reads no file twice."""

from __future__ import annotations

import polars as pl
import pytest

from holocrm_core import schema
from holocrm_core.settings import HoloPaths
from holocrm_core.synth import generate_export, load_truth
from holocrm_core.synth.attachment_files import default_fact_counts
from pipelines.resources import LanceDBResource, StorageResource

SELECTION = (
    [f"raw_{e}" for e in schema.STAGING_ORDER]
    + [f"staged_{e}" for e in schema.STAGING_ORDER]
    + ["attachment_texts", "attachment_chunks"]
)


@pytest.fixture(scope="module")
def attachment_run(tmp_path_factory):
    from pipelines.runner import run_all

    root = tmp_path_factory.mktemp("attachments")
    export = root / "home" / "landing" / "batch-1"
    generate_export(
        export,
        n_contacts=200,
        seed=5,
        truth_dir=root / "truth",
        attachment_fact_counts=default_fact_counts(per_text_kind=1, per_ocr_kind=0, audio=0),
    )
    paths = HoloPaths(root / "home")
    first = run_all(paths=paths, progress=lambda line: None, selection=SELECTION)
    return root, paths, first


def test_attachment_assets_read_every_staged_attachment(attachment_run):
    root, paths, first = attachment_run
    assert first.success, first.errors
    warehouse = StorageResource(home=str(paths.home)).warehouse()
    texts, staged = warehouse.read("attachment_texts"), warehouse.read("staged_attachments")
    assert texts.height == staged.height
    assert texts.filter(pl.col("status") != "ok").is_empty(), texts.filter(pl.col("status") != "ok")
    facts = load_truth(root / "truth")["attachment_facts"]
    kinds = set(texts.filter(pl.col("file_name").is_in(facts["file_name"].implode()))["kind"].to_list())
    assert {"pdf", "docx", "pptx", "xlsx", "xls", "ods", "eml", "msg", "rtf", "json", "zip", "html"} <= kinds


def test_a_fact_only_in_an_attachment_is_found_with_its_file_and_page(attachment_run):
    from holocrm_core.attachments.index import TABLE, search_activities
    from holocrm_core.embedding import load_embedder

    root, paths, _ = attachment_run
    facts = load_truth(root / "truth")["attachment_facts"]
    table = LanceDBResource().connect(StorageResource(home=str(paths.home))).open_table(TABLE)
    fact = facts.filter((pl.col("kind") == "pptx") & (pl.col("fact") == "decision_maker")).row(0, named=True)
    hits = search_activities(table, fact["query"], load_embedder(), limit=3)
    assert fact["activity_id"] in [h["activity_id"] for h in hits]
    best = next(h for h in hits if h["activity_id"] == fact["activity_id"])
    assert best["file_name"] == fact["file_name"] and best["locator"] == "slide 3 notes"


def test_rerun_reads_no_file_and_embeds_no_chunk_again(attachment_run):
    from pipelines.runner import run_all

    _, paths, _ = attachment_run
    again = run_all(
        paths=paths, progress=lambda line: None, selection=["attachment_texts", "attachment_chunks"]
    )
    assert again.success, again.errors
    meta = {a.asset: a.metadata for a in again.assets}
    assert meta["attachment_texts"]["files_read"] == 0
    assert meta["attachment_chunks"]["embedded"] == 0
