"""`similar` from the vector cache answers what the LanceDB store answers, and never from a stale table."""

from __future__ import annotations

import numpy as np
import polars as pl

from holocrm_core.services.vector_cache import CachedSimilarity, table_stamp
from holocrm_core.store import SimilarityStore
from holocrm_core.text import entity_documents


def _index(uri, seed: int, title: str = "CTO") -> None:
    contacts = pl.DataFrame(
        {
            "contact_id": [f"C{i}" for i in range(40)],
            "full_name": [f"Person {i}" for i in range(40)],
            "title": [title if i % 2 else "Buyer" for i in range(40)],
            "owner": ["Ann" if i % 3 else "Bob" for i in range(40)],
        }
    )
    docs = entity_documents({"contacts": contacts})
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(len(docs), 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    SimilarityStore(uri).sync(docs, vectors)


def test_the_cache_answers_like_the_store_and_follows_a_new_version(tmp_path):
    uri = str(tmp_path / "lancedb")
    _index(uri, seed=1)
    cache = tmp_path / "cache"
    first = CachedSimilarity(uri, cache).similar("contact", "C1", limit=5, filters={"owner": "Ann"})
    assert first == SimilarityStore(uri).similar("contact", "C1", limit=5, filters={"owner": "Ann"})
    assert len(list(cache.glob("contact-*.npz"))) == 1

    # a fresh process reads the file (no store opened) and gives the same answer
    cold = CachedSimilarity(uri, cache)
    assert cold.similar("contact", "C1", limit=5, filters={"owner": "Ann"}) == first
    assert cold._store is None and cold.entity_types() == ["contact"]

    stamp = table_stamp(uri, "contact")
    _index(uri, seed=2, title="Chief Technology Officer")  # changed texts, new vectors: a new version
    assert table_stamp(uri, "contact") != stamp
    again = CachedSimilarity(uri, cache).similar("contact", "C1", limit=5)
    assert again == SimilarityStore(uri).similar("contact", "C1", limit=5)
    assert len(list(cache.glob("contact-*.npz"))) == 1  # the stale file was replaced
