"""Embedding tiers: the setting, the static tier's behaviour, and an index that refuses the other tier's queries."""

from __future__ import annotations

import socket

import numpy as np
import polars as pl
import pytest

from holocrm_core.embedding import DIM, embed_documents, embedding_tier, packaged_model_path
from holocrm_core.static_embedding import StaticEmbedder
from holocrm_core.store import EmbeddingModelMismatch, SimilarityStore
from holocrm_core.text import DOCUMENT_SCHEMA, content_hash

TEXTS = [
    "Call with the CFO about renewing the premium plan before the budget freeze",
    "Demo of the analytics module for the logistics team; they asked about SSO",
    "Invoice overdue: finance asked for a payment plan",
    "Pricing objection from procurement, competitor is cheaper",
]


def _static_artifact(folder, seed: int):
    """A real model2vec static model over MiniLM's tokenizer with seeded vectors: the artifact format the
    distillation writes, without the minutes a distillation takes (the slow test below distils for real)."""
    from model2vec import StaticModel
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(packaged_model_path() / "tokenizer.json"))
    vectors = np.random.default_rng(seed).normal(size=(tokenizer.get_vocab_size(), DIM)).astype(np.float32)
    StaticModel(vectors=vectors, tokenizer=tokenizer, normalize=True).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def two_static_tiers(tmp_path_factory):
    root = tmp_path_factory.mktemp("static")
    return StaticEmbedder(_static_artifact(root / "tier-a", 1)), StaticEmbedder(
        _static_artifact(root / "tier-b", 2)
    )


def _documents(texts: list[str]) -> pl.DataFrame:
    return (
        pl.DataFrame(
            {
                "entity_type": "activity",
                "entity_id": [f"ACT-{i}" for i in range(len(texts))],
                "text": texts,
                "content_hash": [content_hash(t) for t in texts],
                "name": [f"note {i}" for i in range(len(texts))],
            }
        )
        .with_columns(
            [
                pl.lit(None, dtype=pl.String).alias(c)
                for c in DOCUMENT_SCHEMA
                if c not in ("entity_type", "entity_id", "text", "content_hash", "name")
            ]
        )
        .select(list(DOCUMENT_SCHEMA))
    )


def test_tier_setting_defaults_to_minilm_and_names_bad_values(monkeypatch):
    monkeypatch.delenv("HOLOCRM_EMBEDDER", raising=False)
    assert embedding_tier() == "minilm"
    monkeypatch.setenv("HOLOCRM_EMBEDDER", "Static")
    assert embedding_tier() == "static"
    assert embedding_tier("minilm") == "minilm"  # an explicit tier wins over the setting
    monkeypatch.setenv("HOLOCRM_EMBEDDER", "bert")
    with pytest.raises(ValueError, match="unknown embedding tier 'bert'.*minilm, static"):
        embedding_tier()


def test_static_tier_embeds_deterministically_without_network(two_static_tiers, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the static tier tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    tier, _ = two_static_tiers
    together = tier.encode(TEXTS)
    alone = np.stack([tier.encode([t])[0] for t in reversed(TEXTS)])[::-1]
    assert together.shape == (len(TEXTS), DIM) and together.dtype == np.float32
    np.testing.assert_array_equal(together, alone)  # a vector never depends on its batch or order
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, rtol=1e-5)
    reloaded = StaticEmbedder(tier.static_path)
    np.testing.assert_array_equal(reloaded.encode(TEXTS), together)
    assert tier.model_id == "model2vec:tier-a" and reloaded.model_id == tier.model_id


def test_index_refuses_queries_of_another_tier_and_a_tier_switch_rewrites_it(two_static_tiers, tmp_path):
    tier_a, tier_b = two_static_tiers
    documents = _documents(TEXTS)
    store = SimilarityStore(str(tmp_path / "lancedb"), embedder=tier_a)
    store.sync(documents, embed_documents(documents, tier_a).vectors)
    assert store.indexed_model() == tier_a.model_id
    assert store.search(TEXTS[1], entity_types=["activity"], mode="vector", limit=1)[0]["id"] == "ACT-1"

    other = SimilarityStore(str(tmp_path / "lancedb"), embedder=tier_b)
    with pytest.raises(EmbeddingModelMismatch, match="model2vec:tier-a.*model2vec:tier-b.*HOLOCRM_EMBEDDER"):
        other.search(TEXTS[1], entity_types=["activity"], mode="vector", limit=1)

    # documents re-embedded under tier b: every row is rewritten (their texts did not change), then tier b's
    # queries are answered and tier a's refused
    previous = embed_documents(documents, tier_a).vectors
    switched = embed_documents(documents, tier_b, previous=previous)
    assert switched.new == len(TEXTS) and switched.reused == 0
    other.sync(documents, switched.vectors)
    assert other.indexed_model() == tier_b.model_id
    stored = pl.from_arrow(other.table("activity").to_arrow().select(["entity_id", "vector"])).sort(
        "entity_id"
    )
    np.testing.assert_allclose(
        np.stack(stored.get_column("vector").to_list()), tier_b.encode(TEXTS), rtol=1e-5, atol=1e-6
    )
    assert other.search(TEXTS[2], entity_types=["activity"], mode="vector", limit=1)[0]["id"] == "ACT-2"
    with pytest.raises(EmbeddingModelMismatch):
        SimilarityStore(str(tmp_path / "lancedb"), embedder=tier_a).search(TEXTS[0], mode="vector", limit=1)


def test_vectors_of_two_tiers_are_not_synced_together(two_static_tiers, tmp_path):
    tier_a, tier_b = two_static_tiers
    documents = _documents(TEXTS)
    mixed = pl.concat(
        [embed_documents(documents[:2], tier_a).vectors, embed_documents(documents[2:], tier_b).vectors]
    )
    with pytest.raises(ValueError, match="2 embedding models"):
        SimilarityStore(str(tmp_path / "lancedb")).sync(documents, mixed)


@pytest.mark.slow
def test_distilled_static_tier_is_deterministic_and_keeps_meaning(monkeypatch):
    """The real tier: distilled from the packaged MiniLM (minutes on a cold machine, then cached)."""
    from holocrm_core.embedding import load_embedder
    from holocrm_core.static_embedding import build_static_model

    path = build_static_model()
    monkeypatch.setattr(socket.socket, "connect", lambda *a, **k: pytest.fail("network used"))
    static = load_embedder(tier="static")
    assert static.model_id == f"model2vec:{path.name}"
    vectors = static.encode(["renewal of the premium plan", "renew premium subscription", "warehouse robots"])
    np.testing.assert_array_equal(
        vectors,
        StaticEmbedder(path).encode(
            ["renewal of the premium plan", "renew premium subscription", "warehouse robots"]
        ),
    )
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_static_index_hits_are_reranked_by_minilm_over_the_candidates_only(
    two_static_tiers, tmp_path, monkeypatch
):
    from holocrm_core.embedding import MODEL_NAME, load_embedder

    tier_a, _ = two_static_tiers
    documents = _documents(TEXTS)
    store = SimilarityStore(str(tmp_path / "lancedb"), embedder=tier_a)
    store.sync(documents, embed_documents(documents, tier_a).vectors)
    query = "they think we cost too much compared with a rival"
    minilm = load_embedder(tier="minilm")
    expected = [f"ACT-{i}" for i in np.argsort(-(minilm.encode(TEXTS) @ minilm.encode([query])[0]))]

    for mode in ("vector", "hybrid"):
        hits = store.search(query, entity_types=["activity"], mode=mode, limit=3)
        assert [h["id"] for h in hits] == expected[:3]  # the random static vectors only pick the candidates
        assert all(h["reranked_by"] == MODEL_NAME and "text" not in h for h in hits)
        assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert (
        "reranked_by" not in store.search("pricing", entity_types=["activity"], mode="fulltext", limit=3)[0]
    )
    monkeypatch.setenv("HOLOCRM_STATIC_RERANK", "0")
    assert (
        "reranked_by"
        not in store.search_uncached(query, entity_types=["activity"], mode="vector", limit=3)[0]
    )


def test_vector_search_on_a_static_index_reranks_the_hybrid_candidates(
    two_static_tiers, tmp_path, monkeypatch
):
    """The re-rank's candidates come from the static vectors and the words together, in vector mode too: a
    document only its words reach (random static vectors here) is still among what MiniLM orders."""
    from holocrm_core import store as store_module

    tier_a, _ = two_static_tiers
    documents = _documents(TEXTS)
    store = SimilarityStore(str(tmp_path / "lancedb"), embedder=tier_a)
    store.sync(documents, embed_documents(documents, tier_a).vectors)
    monkeypatch.setenv("HOLOCRM_STATIC_RERANK", "1")  # the candidates are the best `limit` of the pool
    query = "invoice overdue"
    words_first = store.search_uncached(query, entity_types=["activity"], mode="fulltext", limit=1)[0]["id"]
    assert words_first == "ACT-2"
    pooled = store.search_uncached(query, entity_types=["activity"], mode="vector", limit=2)
    hybrid = store.search_uncached(query, entity_types=["activity"], mode="hybrid", limit=2)
    assert "ACT-2" in {h["id"] for h in pooled} and [h["id"] for h in pooled] == [h["id"] for h in hybrid]
    monkeypatch.setattr(store_module, "RERANK_POOL", "mode")  # the vector list alone: its own two best
    own = store.search_uncached(query, entity_types=["activity"], mode="vector", limit=2)
    vector_only = store._search_one_stage(query, ["activity"], "vector", 2, None, False)
    assert {h["id"] for h in own} == {h["id"] for h in vector_only}
