"""A pinned store answers a repeated search from memory; an unpinned one always searches."""

from __future__ import annotations

from holocrm_core.store import SimilarityStore


def counting(store: SimilarityStore) -> list:
    calls = []

    def search_uncached(text, entity_types=None, mode="hybrid", limit=10, filters=None, with_text=False):
        calls.append((text, mode, limit))
        return [{"id": f"C{len(calls)}", "score": 0.5, "reasons": ["x"]}]

    store.search_uncached = search_uncached
    return calls


def test_a_pinned_store_remembers_searches_and_hands_out_copies(tmp_path):
    store = SimilarityStore(str(tmp_path), version={"contact": 3})
    calls = counting(store)
    first = store.search("cfo healthcare", limit=5)
    first[0]["reasons"].append("changed by the caller")
    again = store.search("cfo healthcare", limit=5)
    assert len(calls) == 1 and again == [{"id": "C1", "score": 0.5, "reasons": ["x"]}]
    store.search("cfo healthcare", limit=6)
    store.search("cfo healthcare", limit=5, filters={"country": "DE"})
    assert len(calls) == 3
    store.checkout({"contact": 4})  # another version: nothing remembered carries over
    store.search("cfo healthcare", limit=5)
    assert len(calls) == 4


def test_an_unpinned_store_always_searches(tmp_path):
    store = SimilarityStore(str(tmp_path))
    calls = counting(store)
    store.search("cfo healthcare")
    store.search("cfo healthcare")
    assert len(calls) == 2
