"""Semantic layer: entity text, embeddings (incremental, spectral scales), the LanceDB store and its assets."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("LANCEDB_LOG", "error")

from holocrm_core.embedding import SpectralRotation, embed_documents, load_embedder, vectors_matrix  # noqa: E402
from holocrm_core.schema import ENTITIES  # noqa: E402
from holocrm_core.store import SimilarityStore, filter_sql  # noqa: E402
from holocrm_core.text import entity_documents  # noqa: E402

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def _table(entity: str, rows: list[dict], extra: dict | None = None) -> pl.DataFrame:
    schema = dict(ENTITIES[entity]) | (extra or {})
    return pl.DataFrame([{c: r.get(c) for c in schema} for r in rows], schema=schema)


def small_crm() -> dict[str, pl.DataFrame]:
    companies = _table(
        "companies",
        [
            {
                "company_id": "co-acme",
                "name": "Acme Payments Inc.",
                "industry": "fintech",
                "size_band": "smb",
                "country": "United States",
                "tags": ["target-account"],
                "notes": "Card processing for online shops.",
            },
            {
                "company_id": "co-mercy",
                "name": "Mercy Health Group",
                "industry": "healthcare",
                "size_band": "enterprise",
                "country": "Germany",
                "tags": ["public-sector"],
                "notes": "Hospital network with 40 clinics.",
            },
            {
                "company_id": "co-steel",
                "name": "Northern Steel Works",
                "industry": "manufacturing",
                "size_band": "mid_market",
                "country": "Canada",
                "tags": [],
                "notes": "Steel beams and rolled products.",
            },
        ],
        extra={"cf_account_tier": pl.String},
    )
    companies = companies.with_columns(pl.Series("cf_account_tier", ["gold", "silver", None]))
    contacts = _table(
        "contacts",
        [
            {
                "contact_id": "ct-alice",
                "first_name": "Alice",
                "last_name": "Smith",
                "full_name": "Alice Smith",
                "email": "alice.smith@acmepay.com",
                "phone": "+14155550100",
                "title": "Chief Financial Officer",
                "seniority": "c_level",
                "company_id": "co-acme",
                "company_name": "Acme Payments Inc.",
                "owner": "dana",
                "lifecycle_status": "lead",
                "tags": ["decision-maker"],
                "created_at": T0,
            },
            {
                "contact_id": "ct-alice-dup",
                "first_name": "Alice",
                "last_name": "Smyth",
                "full_name": "Alice Smyth",
                "email": "asmith@acmepay.com",
                "phone": "+1 415 555 0100",
                "title": "CFO",
                "seniority": "c_level",
                "company_id": "co-acme",
                "company_name": "Acme Payments",
                "owner": "dana",
                "lifecycle_status": "lead",
                "tags": ["decision-maker"],
                "created_at": T0 + timedelta(days=30),
            },
            {
                "contact_id": "ct-bob",
                "first_name": "Robert",
                "last_name": "Jones",
                "full_name": "Robert Jones",
                "email": "rjones@mercy.de",
                "title": "Head of Nursing",
                "seniority": "director",
                "company_id": "co-mercy",
                "company_name": "Mercy Health Group",
                "owner": "eli",
                "lifecycle_status": "customer",
                "tags": ["champion"],
                "created_at": T0,
            },
            {
                "contact_id": "ct-carol",
                "first_name": "Carol",
                "last_name": "Nguyen",
                "full_name": "Carol Nguyen",
                "email": "carol@northernsteel.ca",
                "title": "Plant Manager",
                "seniority": "manager",
                "company_id": "co-steel",
                "company_name": "Northern Steel Works",
                "owner": "eli",
                "lifecycle_status": "qualified",
                "tags": [],
                "created_at": T0,
            },
            {
                "contact_id": "ct-dan",
                "first_name": "Daniel",
                "last_name": "Okafor",
                "full_name": "Daniel Okafor",
                "email": "dan@acmepay.com",
                "title": "Software Engineer",
                "seniority": "individual",
                "company_id": "co-acme",
                "company_name": "Acme Payments Inc.",
                "owner": "dana",
                "lifecycle_status": "lead",
                "tags": ["technical"],
                "created_at": T0,
            },
        ],
        extra={"cf_preferred_language": pl.String},
    )
    contacts = contacts.with_columns(
        pl.Series("cf_preferred_language", ["English", None, "German", None, "Spanish"])
    )
    deals = _table(
        "deals",
        [
            {
                "deal_id": "dl-1",
                "title": "Acme Payments - Analytics Suite",
                "company_id": "co-acme",
                "contact_id": "ct-alice",
                "stage": "negotiation",
                "owner": "dana",
                "product": "Analytics Suite",
                "created_at": T0,
            },
            {
                "deal_id": "dl-2",
                "title": "Mercy Health renewal",
                "company_id": "co-mercy",
                "contact_id": "ct-bob",
                "stage": "won",
                "owner": "eli",
                "product": "Support Plus",
                "created_at": T0,
            },
            {
                "deal_id": "dl-3",
                "title": "Northern Steel pilot",
                "company_id": "co-steel",
                "contact_id": "ct-carol",
                "stage": "prospecting",
                "owner": "eli",
                "product": "Data Platform",
                "created_at": T0,
            },
        ],
    )
    activities = _table(
        "activities",
        [
            {
                "activity_id": "ac-cost",
                "type": "note",
                "contact_id": "ct-alice",
                "deal_id": "dl-1",
                "company_id": "co-acme",
                "occurred_at": T0 + timedelta(days=2),
                "subject": "Call recap",
                "body": "She is worried about the cost and asked whether we can lower the price next year.",
                "owner": "dana",
            },
            {
                "activity_id": "ac-rollout",
                "type": "meeting",
                "contact_id": "ct-bob",
                "deal_id": "dl-2",
                "company_id": "co-mercy",
                "occurred_at": T0 + timedelta(days=3),
                "subject": "Rollout planning",
                "body": "Planned the rollout to the clinics, training for nurses in April.",
                "owner": "eli",
            },
            {
                "activity_id": "ac-safety",
                "type": "email",
                "contact_id": "ct-carol",
                "deal_id": "dl-3",
                "company_id": "co-steel",
                "occurred_at": T0 + timedelta(days=4),
                "subject": "Sensor specs",
                "body": "Sent the temperature sensor specifications for the furnace line.",
                "owner": "eli",
            },
            {
                "activity_id": "ac-dan",
                "type": "call",
                "contact_id": "ct-dan",
                "deal_id": None,
                "company_id": "co-acme",
                "occurred_at": T0 + timedelta(days=5),
                "subject": "API questions",
                "body": "Asked about webhooks and the REST API rate limits.",
                "owner": "dana",
            },
        ],
    )
    return {"companies": companies, "contacts": contacts, "deals": deals, "activities": activities}


@pytest.fixture(scope="session")
def embedder():
    # the reference backend: loads in seconds and needs no export step
    return load_embedder(backend="torch")


@pytest.fixture(scope="session")
def crm():
    return small_crm()


@pytest.fixture()
def store(tmp_path, embedder, crm):
    documents = entity_documents(crm)
    run = embed_documents(documents, embedder)
    store = SimilarityStore(str(tmp_path / "lancedb"), embedder=embedder)
    store.sync(documents, run.vectors)
    return store


# ------------------------------------------------------------------------------------------ text
def test_entity_documents_cover_every_entity_with_custom_fields_and_recent_activity(crm):
    documents = entity_documents(crm)
    assert documents.group_by("entity_type").len().sort("entity_type").rows() == [
        ("activity", 4),
        ("company", 3),
        ("contact", 5),
        ("deal", 3),
    ]
    alice = documents.filter(pl.col("entity_id") == "ct-alice").row(0, named=True)
    assert "Chief Financial Officer" in alice["text"]
    assert "preferred language: English" in alice["text"]
    assert "worried about the cost" in alice["text"]  # recent activity
    assert alice["industry"] == "fintech" and alice["owner"] == "dana" and alice["company_id"] == "co-acme"
    acme = documents.filter(pl.col("entity_id") == "co-acme").row(0, named=True)
    assert "account tier: gold" in acme["text"] and acme["size_band"] == "smb"
    deal = documents.filter(pl.col("entity_id") == "dl-1").row(0, named=True)
    assert deal["stage"] == "negotiation" and "Alice Smith" in deal["text"]
    assert documents.get_column("content_hash").n_unique() == len(documents)


def test_documents_rendered_by_shard_equal_the_whole_batch_cut_to_each_shard(crm):
    from holocrm_core.partitions import in_shards

    whole = entity_documents(crm)
    parts = [entity_documents(crm, shards=[s], count=3) for s in range(3)]
    for shard, part in enumerate(parts):  # same rows, texts (recent activity of any shard) and order
        assert part.equals(in_shards(whole, "entity_id", [shard], 3))
    assert sum(p.height for p in parts) == whole.height


def test_content_hash_changes_only_with_the_text(crm):
    before = entity_documents(crm)
    changed = dict(crm)
    changed["contacts"] = crm["contacts"].with_columns(
        pl.when(pl.col("contact_id") == "ct-carol")
        .then(pl.lit("VP of Operations"))
        .otherwise(pl.col("title"))
        .alias("title")
    )
    after = entity_documents(changed)
    diff = before.join(after, on=["entity_type", "entity_id"]).filter(
        pl.col("content_hash") != pl.col("content_hash_right")
    )
    # Carol's own document and the deal that names her? No: deals name the contact, not the title.
    assert diff.get_column("entity_id").to_list() == ["ct-carol"]


# ------------------------------------------------------------------------------------------ embeddings
def test_embedder_returns_unit_vectors_and_reuses_identical_texts(embedder):
    vectors = embedder.encode(["budget concerns", "worried about the cost", "budget concerns"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors[0], vectors[2])
    assert float(vectors[0] @ vectors[1]) > 0.4


def test_incremental_rerun_embeds_only_changed_rows_and_drops_deleted(embedder, crm):
    documents = entity_documents(crm)
    first = embed_documents(documents, embedder)
    assert first.new == len(documents) and first.reused == 0

    again = embed_documents(documents, embedder, first.vectors)
    assert again.new == 0 and again.reused == len(documents) and again.deleted == 0
    assert np.array_equal(vectors_matrix(again.vectors), vectors_matrix(first.vectors))

    changed = dict(crm)
    changed["companies"] = crm["companies"].with_columns(
        pl.when(pl.col("company_id") == "co-steel")
        .then(pl.lit("Now also aluminium."))
        .otherwise(pl.col("notes"))
        .alias("notes")
    )
    changed["deals"] = crm["deals"].filter(pl.col("deal_id") != "dl-2")
    changed["activities"] = crm["activities"].filter(
        pl.col("deal_id").is_null() | (pl.col("deal_id") != "dl-2")
    )
    later = entity_documents(changed)
    third = embed_documents(later, embedder, again.vectors)
    # the steel company changed; Bob and Mercy lost their recent activity text, so they changed too
    assert third.changed == 3 and third.new == 3
    assert third.deleted == 2  # deal dl-2 and activity ac-rollout
    assert third.reused == len(later) - 3
    assert set(third.vectors.get_column("entity_id")) == set(later.get_column("entity_id"))


def test_spectral_prefixes_reconstruct_better_than_random_dimensions():
    rng = np.random.default_rng(0)
    # anisotropic data, as sentence embeddings are: a few directions carry most of the variance
    basis = np.linalg.qr(rng.normal(size=(384, 384)))[0]
    scales = np.exp(-np.arange(384) / 40.0)
    vectors = (rng.normal(size=(3000, 384)) * scales) @ basis.T + 0.05
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rotation = SpectralRotation.fit(vectors[:2000])
    test = vectors[2000:]
    for scale in (96, 192):
        spectral_error = np.linalg.norm(test - rotation.reconstruct(test, scale), axis=1).mean()
        dims = rng.choice(384, scale, replace=False)
        random_view = np.zeros_like(test)
        random_view[:, dims] = test[:, dims]
        random_error = np.linalg.norm(test - random_view, axis=1).mean()
        assert spectral_error < 0.5 * random_error
    assert rotation.explained_variance(96) > rotation.explained_variance(48) > 0.5
    # orthogonal: at full scale dot products are unchanged
    full = rotation.transform(test[:10], 384)
    assert np.allclose(full @ full.T, test[:10] @ test[:10].T, atol=1e-4)


def test_spectral_rotation_round_trips_through_npz(tmp_path):
    vectors = np.random.default_rng(1).normal(size=(200, 384)).astype(np.float32)
    rotation = SpectralRotation.fit(vectors)
    loaded = SpectralRotation.load(rotation.save(tmp_path / "rotation.npz"))
    assert loaded.version == rotation.version
    assert np.allclose(loaded.transform(vectors, 96), rotation.transform(vectors, 96))


# ------------------------------------------------------------------------------------------ store
def test_paraphrased_note_finds_its_activity(store):
    hits = store.search("budget concerns", entity_types=["activity"], mode="vector", limit=3)
    assert hits[0]["id"] == "ac-cost"
    # word search alone cannot find it: no word in common
    assert all(
        h["id"] != "ac-cost"
        for h in store.search("budget concerns", entity_types=["activity"], mode="fulltext")
    )
    hybrid = store.search("budget concerns", mode="hybrid", limit=5)
    assert hybrid[0]["id"] in {"ac-cost", "ct-alice", "dl-1"}


def test_duplicate_of_alice_is_her_top_similar_contact(store):
    similar = store.similar("contact", "ct-alice", limit=3)
    assert similar[0]["id"] == "ct-alice-dup"
    assert all(r["id"] != "ct-alice" for r in similar)
    assert similar[0]["similarity"] > similar[1]["similarity"]
    assert store.similar("contact", "ct-alice", min_similarity=0.99) == []


def test_filters_exclude_what_they_should(store):
    results = store.similar("contact", "ct-alice", limit=10, filters={"owner": "eli"})
    assert {r["id"] for r in results} == {"ct-bob", "ct-carol"}
    deals = store.search(
        "pilot project", entity_types=["deal"], mode="hybrid", filters={"stage": ["won", "prospecting"]}
    )
    assert {r["id"] for r in deals} <= {"dl-2", "dl-3"} and deals
    fintech = store.search("payments", mode="vector", limit=20, filters={"industry": "fintech"})
    assert fintech and all(r["industry"] == "fintech" for r in fintech)
    with pytest.raises(ValueError):
        filter_sql({"text; drop": "x"})
    assert filter_sql({"owner": "o'neil"}) == "owner = 'o''neil'"


def test_fulltext_finds_exact_words(store):
    hits = store.search("webhooks", mode="fulltext")
    # the call itself, Dan (recent activity) and his company (recent activity): nothing else says "webhooks"
    assert {h["id"] for h in hits} == {"ac-dan", "ct-dan", "co-acme"}
    assert store.search("webhooks", entity_types=["activity"], mode="fulltext")[0]["id"] == "ac-dan"


def test_sync_deletes_gone_entities_and_pinned_version_still_loads(store, embedder, crm):
    pinned = store.versions()
    changed = dict(crm)
    changed["contacts"] = crm["contacts"].filter(pl.col("contact_id") != "ct-alice-dup")
    documents = entity_documents(changed)
    run = embed_documents(documents, embedder)
    reports = store.sync(documents, run.vectors)
    assert reports["contact"].deleted == 1 and reports["contact"].new == 0
    assert reports["deal"].reused == 3 and reports["deal"].updated == 0
    assert store.versions()["contact"] > pinned["contact"]
    assert store.similar("contact", "ct-alice", limit=1)[0]["id"] != "ct-alice-dup"
    with pytest.raises(KeyError):
        store.similar("contact", "ct-alice-dup")

    old = SimilarityStore(store.uri, version=pinned, embedder=embedder)
    assert old.versions()["contact"] == pinned["contact"]
    assert old.similar("contact", "ct-alice", limit=1)[0]["id"] == "ct-alice-dup"


def test_unchanged_sync_writes_nothing_new(store, embedder, crm):
    documents = entity_documents(crm)
    before = store.versions()
    reports = store.sync(documents, embed_documents(documents, embedder).vectors)
    assert all(r.new == 0 and r.updated == 0 and r.deleted == 0 for r in reports.values())
    assert store.versions() == before


def _clustered_documents(n: int, seed: int = 5):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(40, 384))
    vectors = centers[rng.integers(0, 40, n)] + 0.7 * rng.normal(size=(n, 384))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    owners = np.array(["dana", "eli", "fay", "gus"])[rng.integers(0, 4, n)]
    documents = pl.DataFrame(
        {
            "entity_type": ["contact"] * n,
            "entity_id": [f"ct-{i}" for i in range(n)],
            "text": [f"contact number {i}" for i in range(n)],
            "content_hash": [f"h{i}" for i in range(n)],
            "owner": owners.tolist(),
            "industry": [None if i % 7 == 0 else "fintech" for i in range(n)],
        }
    ).with_columns(
        [
            pl.lit(None, dtype=pl.String).alias(c)
            for c in (
                "name",
                "stage",
                "company_id",
                "contact_id",
                "size_band",
                "lifecycle_status",
                "country",
                "activity_type",
            )
        ]
    )
    return documents, vectors, owners


@pytest.mark.parametrize("path", ["exact", "flat", "inverted_file"])
def test_every_search_path_finds_the_exact_neighbours_and_honours_filters(tmp_path, monkeypatch, path):
    from holocrm_core import vectors as engine

    n = 3000
    documents, vectors, owners = _clustered_documents(n)
    store = SimilarityStore(str(tmp_path / "paths"))
    store.sync(documents, vectors)
    monkeypatch.setattr(engine, "EXACT_MAX_ROWS", n if path == "exact" else 0)
    monkeypatch.setattr(engine, "IVF_MIN_ROWS", 0 if path == "inverted_file" else n + 1)
    store = SimilarityStore(store.uri, version=store.versions())
    assert store.warm(["contact"]) == {"contact": n}
    kind = store.entity_vectors("contact").index.kind
    assert kind.startswith({"exact": "exact", "flat": "flat", "inverted_file": "faiss inverted file"}[path])
    hits = filtered_hits = 0
    no_industry = np.array([i % 7 == 0 for i in range(n)])
    for q in range(0, 400, 20):
        exact = np.argsort(-(vectors @ vectors[q]))[1:11]
        found = store.similar("contact", f"ct-{q}", limit=10)
        assert len(found) == 10 and f"ct-{q}" not in {r["id"] for r in found}
        assert [r["similarity"] for r in found] == sorted((r["similarity"] for r in found), reverse=True)
        hits += len({f"ct-{i}" for i in exact} & {r["id"] for r in found})

        allowed = (owners == "eli") & ~no_industry
        sims = np.where(allowed, vectors @ vectors[q], -np.inf)
        sims[q] = -np.inf
        exact_filtered = np.argsort(-sims)[:10]
        found = store.similar(
            "contact", f"ct-{q}", limit=10, filters={"owner": ["eli"], "industry": "fintech"}
        )
        assert found and all(r["owner"] == "eli" and r["industry"] == "fintech" for r in found)
        filtered_hits += len({f"ct-{i}" for i in exact_filtered} & {r["id"] for r in found})
    assert hits / 200 >= 0.95 and filtered_hits / 200 >= 0.95
    assert {r["id"] for r in store.similar("contact", "ct-1", limit=50, filters={"industry": None})} <= {
        f"ct-{i}" for i in range(0, n, 7)
    }
    assert store.similar("contact", "ct-1", filters={"owner": "nobody"}) == []
    assert store.similar("contact", "ct-1", filters={"owner": []}) == []
    only = store.similar("contact", "ct-1", min_similarity=-1.0, filters={"entity_id": ["ct-2", "ct-3"]})
    assert {r["id"] for r in only} == {"ct-2", "ct-3"}
    with pytest.raises(KeyError):
        store.similar("contact", "ct-missing")
    with pytest.raises(ValueError):
        store.similar("contact", "ct-1", filters={"text": "x"})
    searched = store.search_vector("contact", vectors[5], limit=3, exclude_ids=["ct-5"])
    assert "ct-5" not in {r["id"] for r in searched} and searched[0]["id"] in {
        f"ct-{i}" for i in np.argsort(-(vectors @ vectors[5]))[1:4]
    }


def test_in_memory_vectors_follow_the_version_the_store_reads(store, embedder, crm):
    pinned = SimilarityStore(store.uri, version=store.versions(), embedder=embedder)
    assert pinned.similar("contact", "ct-alice", limit=1)[0]["id"] == "ct-alice-dup"
    changed = dict(crm)
    changed["contacts"] = crm["contacts"].filter(pl.col("contact_id") != "ct-alice-dup")
    documents = entity_documents(changed)
    store.sync(documents, embed_documents(documents, embedder).vectors)
    # the writer sees the new version at once; the pinned reader keeps its snapshot until it checks out
    assert store.similar("contact", "ct-alice", limit=1)[0]["id"] != "ct-alice-dup"
    assert pinned.similar("contact", "ct-alice", limit=1)[0]["id"] == "ct-alice-dup"
    pinned.checkout(store.versions())
    assert pinned.similar("contact", "ct-alice", limit=1)[0]["id"] != "ct-alice-dup"


# ------------------------------------------------------------------------------------------ assets
def _write_staged(home, tables):
    from holocrm_core.warehouse import Warehouse

    warehouse = Warehouse(home / "warehouse")
    for entity, frame in tables.items():
        warehouse.write(f"staged_{entity}", frame)
    return warehouse


def test_semantic_assets_materialize_in_process(tmp_path, embedder, crm):

    from pipelines.definitions import materialize
    from pipelines.resources import EmbedderResource, LanceDBResource

    home = tmp_path / "home"
    warehouse = _write_staged(home, crm)
    resources = {
        "lancedb": LanceDBResource(uri=str(tmp_path / "lancedb")),
        "embedder": EmbedderResource(backend="torch"),
    }
    selection = ["entity_documents", "embeddings", "similarity_index", "duplicate_candidates"]
    result = materialize(selection, home=str(home), **resources)
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks)
    meta = {
        e.event_specific_data.materialization.asset_key.path[
            -1
        ]: e.event_specific_data.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    assert meta["embeddings"]["new"].value == 15 and meta["embeddings"]["reused"].value == 0
    assert meta["similarity_index"]["versions"].value["contact"] >= 1

    duplicates = warehouse.read("duplicate_candidates")
    contact_pairs = duplicates.filter(pl.col("entity_type") == "contact")
    assert contact_pairs.select("id_a", "id_b").row(0) == ("ct-alice", "ct-alice-dup")
    proposals = warehouse.read("merge_proposals")
    alice = proposals.filter(pl.col("entity_type") == "contact").row(0, named=True)
    assert alice["survivor_id"] == "ct-alice" and alice["merged_ids"] == ["ct-alice-dup"]
    assert warehouse.read("entity_documents").height == 15

    # a re-run with one contact changed embeds only what changed
    changed = crm["contacts"].with_columns(
        pl.when(pl.col("contact_id") == "ct-dan")
        .then(pl.lit("Staff Engineer"))
        .otherwise(pl.col("title"))
        .alias("title")
    )
    warehouse.write("staged_contacts", changed)
    again = materialize(["entity_documents", "embeddings", "similarity_index"], home=str(home), **resources)
    meta = {
        e.event_specific_data.materialization.asset_key.path[
            -1
        ]: e.event_specific_data.materialization.metadata
        for e in again.get_asset_materialization_events()
    }
    assert meta["embeddings"]["new"].value == 1 and meta["embeddings"]["reused"].value == 14
    assert meta["similarity_index"]["updated"].value == 1


def test_onnx_batches_hold_about_the_token_budget_and_cover_every_text_once():
    from holocrm_core.embedding import OnnxEmbedder

    batcher = object.__new__(OnnxEmbedder)  # the batching rule only, no model
    batcher.batch_size, batcher.token_budget = 64, 1024
    lengths = np.array([200, 12, 45, 45, 140, 3, 60] * 30)
    batches = batcher._batches(lengths)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 64 and (len(batch) == 1 or len(batch) * lengths[batch].max() <= 1024)
    widths = [int(lengths[b].max()) for b in batches]
    assert widths == sorted(widths, reverse=True)  # longest first, so padding stays small
    assert len(batches[0]) == 1024 // 200 and len(batches[-1]) > 5 * len(
        batches[0]
    )  # short texts: bigger batches


@pytest.mark.slow
def test_onnx_fast_paths_stay_within_cosine_099_of_torch(tmp_path_factory, embedder, crm, monkeypatch):
    pytest.importorskip("onnxruntime")
    from holocrm_core.embedding import INT8_SUFFIX, OnnxEmbedder, export_onnx_int8, packaged_model_path

    # the graph is exported here from the packaged weights (no download), then quantized
    target = tmp_path_factory.mktemp("onnx")
    int8_path = export_onnx_int8(packaged_model_path(), target)
    texts = entity_documents(crm).get_column("text").to_list() + ["budget concerns", "worried about the cost"]
    reference = embedder.encode(texts)
    for path in (target / int8_path.name.replace(INT8_SUFFIX, ".fused.onnx"), int8_path):
        fast = OnnxEmbedder(packaged_model_path(), batch_size=4, onnx_path=path)
        vectors = fast.encode(texts)
        assert vectors.shape == reference.shape
        assert float((vectors * reference).sum(axis=1).min()) >= 0.99


# ------------------------------------------------------------------------------------------ whole texts
FILLER = (
    "Quarterly check-in about the onboarding plan, the training calendar and the invoices for the team. "
    "We reviewed dashboards, user counts and the support queue, then agreed on next steps for the rollout. "
)
TAIL = (
    "Last thing she mentioned: their zeppelin hangar lease at the old airfield runs out in March, and they "
    "want to renew it for five more years before the price goes up."
)


def _long_note_crm(crm):
    long_note = (FILLER * 30)[:4800] + " " + TAIL
    assert len(long_note) > 5000 - 200 and long_note.index("zeppelin") > 4500
    contacts = crm["contacts"].with_columns(
        pl.when(pl.col("contact_id") == "ct-carol")
        .then(pl.lit(long_note))
        .otherwise(pl.col("notes"))
        .alias("notes")
    )
    return {**crm, "contacts": contacts}


def test_long_texts_are_chunked_with_overlap_never_cut():
    from holocrm_core.text import CHUNK_CHARS, chunk_spans

    text = (FILLER * 30) + TAIL
    spans = chunk_spans(text)
    assert len(spans) > 5 and spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(b - a <= CHUNK_CHARS for a, b in spans)
    assert all(spans[k + 1][0] < spans[k][1] for k in range(len(spans) - 1))  # overlapping
    assert all(text[a] != " " and (b == len(text) or text[b] == " ") for a, b in spans)  # whole words
    assert chunk_spans("short text") == [(0, 10)]


def test_the_tail_of_a_long_note_is_found_by_its_words_and_by_meaning(tmp_path, embedder, crm):
    tables = _long_note_crm(crm)
    documents = entity_documents(tables)
    carol = documents.filter(pl.col("entity_id") == "ct-carol").get_column("text")[0]
    assert "zeppelin hangar lease" in carol  # nothing cut off before indexing
    run = embed_documents(documents, embedder)
    chunked = run.vectors.filter(pl.col("entity_id") == "ct-carol").get_column("chunk_vectors")[0]
    assert chunked is not None and len(chunked) >= 5
    store = SimilarityStore(str(tmp_path / "long"), embedder=embedder)
    store.sync(documents, run.vectors)

    by_word = store.search("zeppelin", mode="fulltext", entity_types=["contact"])
    assert by_word and by_word[0]["id"] == "ct-carol" and "zeppelin" in by_word[0]["snippet"]
    by_meaning = store.search(
        "renewing the rental of an airship hangar",
        mode="semantic",
        entity_types=["contact"],
        limit=3,
        with_text=True,
    )
    assert by_meaning[0]["id"] == "ct-carol"
    assert "hangar" in by_meaning[0]["snippet"] and len(by_meaning[0]["snippet"]) < 300
    assert by_meaning[0]["text"] == carol
    hybrid = store.search("airship hangar lease renewal", entity_types=["contact"], limit=3)
    assert hybrid[0]["id"] == "ct-carol" and "hangar" in hybrid[0]["snippet"]


def test_search_mode_semantic_is_an_alias_of_vector_in_the_store_and_the_cli(store, monkeypatch):
    import json

    from typer.testing import CliRunner

    from holocrm_cli import app
    from holocrm_cli import semantic as cli_semantic

    assert [r["id"] for r in store.search("worried about the cost", mode="semantic")] == [
        r["id"] for r in store.search("worried about the cost", mode="vector")
    ]
    monkeypatch.setattr(cli_semantic, "_store", lambda: store)
    monkeypatch.delenv("HOLOCRM_SERVER", raising=False)
    result = CliRunner().invoke(
        app, ["search", "worried about the cost", "--mode", "semantic", "--json", "--with-text", "-n", "3"]
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["mode"] == "vector"  # the alias, said as the mode it is
    hits = answer["results"]
    assert hits and all(h["snippet"] and h["text"] for h in hits)
    bad = CliRunner().invoke(app, ["search", "x", "--mode", "telepathy"])
    assert bad.exit_code != 0 and "semantic" in bad.output


def test_metadata_only_columns_from_a_mapping_stay_out_of_the_text(tmp_path, crm):
    from holocrm_core.ingest.mapping import load_mapping

    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("entities:\n  contacts:\n    files: people.csv\n    metadata_only: [Case Number]\n")
    profile = load_mapping(mapping)
    raw = pl.DataFrame({"id": ["ct-x"], "Case Number": ["CASE-99812"], "Hobby": ["sailing"]})
    mapped = profile.map_frame("contacts", raw)
    assert "cf_meta_case_number" in mapped.columns and "cf_hobby" in mapped.columns
    contacts = crm["contacts"].with_columns(
        pl.lit("CASE-99812").alias("cf_meta_case_number"), pl.lit("sailing").alias("cf_hobby")
    )
    text = entity_documents({**crm, "contacts": contacts}).filter(pl.col("entity_id") == "ct-dan")["text"][0]
    assert "sailing" in text and "CASE-99812" not in text


@pytest.mark.parametrize("path", ["exact", "inverted_file"])
def test_duplicate_blocking_neighbours_come_from_the_same_engine(monkeypatch, path):
    from holocrm_core import vectors as engine

    n = 3000
    _, vectors, _ = _clustered_documents(n, seed=7)
    if path == "inverted_file":
        monkeypatch.setattr(engine, "EXACT_MAX_ROWS", 0)
        monkeypatch.setattr(engine, "IVF_MIN_ROWS", 0)
    index = engine.VectorIndex(vectors)
    assert index.kind.startswith("exact" if path == "exact" else "faiss inverted file")
    pairs = index.neighbours(5)
    assert len(pairs) == 5 * n and not (pairs[:, 0] == pairs[:, 1]).any()
    found = {}
    for i, j in pairs.tolist():
        found.setdefault(i, set()).add(j)
    recall = np.mean(
        [len(found[q] & set(np.argsort(-(vectors @ vectors[q]))[1:6].tolist())) / 5 for q in range(0, n, 50)]
    )
    assert recall >= 0.95


def test_cli_commands_use_a_running_server_when_one_is_given(monkeypatch):
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from typer.testing import CliRunner

    from holocrm_cli import app

    seen = []

    class Server(BaseHTTPRequestHandler):
        def _answer(self, body):
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):  # noqa: N802 - the http.server hook name
            length = int(self.headers["Content-Length"])
            seen.append((self.path, json.loads(self.rfile.read(length))))
            self._answer(
                {
                    "query": "worried about cost",
                    "mode": "vector",
                    "score_kind": "similarity",
                    "results": [{"entity_type": "activity", "id": "ac-1", "score": 0.5, "snippet": "cost…"}],
                }
            )

        def do_GET(self):  # noqa: N802
            seen.append((self.path, None))
            self._answer(
                {
                    "total": 2,
                    "offset": 0,
                    "limit": 20,
                    "results": [
                        {
                            "entity_type": "company",
                            "id_a": "co-1",
                            "id_b": "co-2",
                            "score": 0.99,
                            "reasons": ["same phone"],
                        },
                        {
                            "entity_type": "contact",
                            "id_a": "ct-1",
                            "id_b": "ct-2",
                            "score": 0.95,
                            "reasons": ["same e-mail"],
                        },
                    ],
                }
            )

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        found = CliRunner().invoke(
            app, ["search", "worried about cost", "--mode", "semantic", "--server", url]
        )
        assert found.exit_code == 0, found.output
        assert "ac-1" in found.output and "cost…" in found.output
        assert seen[0][0] == "/api/search/semantic" and seen[0][1]["mode"] == "vector"
        monkeypatch.setenv("HOLOCRM_SERVER", url)
        pairs = CliRunner().invoke(app, ["duplicates"])  # no entity: every type that has pairs
        assert pairs.exit_code == 0, pairs.output
        assert "2 likely duplicate pairs" in pairs.output
        assert "company:" in pairs.output and "co-1" in pairs.output and "contact:" in pairs.output
    finally:
        server.shutdown()


def test_vectors_follow_the_documents_with_or_without_the_ordering_join(embedder, crm):
    """A first run's vectors are already in the documents' order (the ordering join is skipped, a copy of
    every vector less); a rerun reusing vectors in another order, and documents repeating a key, still go
    through the join: the same rows as before."""
    documents = entity_documents(crm)
    keys = ["entity_type", "entity_id"]
    first = embed_documents(documents, embedder)
    assert first.vectors.select(keys).equals(documents.select(keys))
    shuffled = documents.sample(fraction=1.0, shuffle=True, seed=3)
    again = embed_documents(shuffled, embedder, first.vectors)
    assert again.reused == len(documents)
    assert again.vectors.equals(shuffled.select(keys).join(first.vectors, on=keys, how="left"))
    doubled = pl.concat([documents, documents.head(2)])
    twice = embed_documents(doubled, embedder)
    assert twice.vectors.height == len(documents) + 6  # the join of a repeated key, as it always was
